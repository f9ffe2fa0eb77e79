//! Deterministic, seed-driven images, indexes and artifacts.
//!
//! Layer bytes come from a `SplitMix64` generator: they look random (so they do not compress)
//! and a gibibyte is generated in well under a second. They are not valid tar archives; no
//! registry or copy tool looks inside layers.

use bytes::Bytes;
use serde_json::{Map, Value, json};

/// Media types used by the generated content.
pub mod media_types {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI non-distributable (foreign) gzip layer.
    pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// The OCI 1.1 empty descriptor's media type (`{}`).
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker foreign gzip layer.
    pub const DOCKER_LAYER_FOREIGN: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// The four manifest media types, as sent in `Accept` headers.
    pub const ALL_MANIFESTS: [&str; 4] = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ];
}

/// The URL that foreign layer descriptors point at; it never resolves.
pub const FOREIGN_LAYER_URL: &str = "https://example.invalid/layer.tar.gz";

/// The creation time written in every generated config, fixed so that images are deterministic.
const CREATED: &str = "2024-01-01T00:00:00Z";

/// `"sha256:<hex>"` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    format!("sha256:{}", hex::encode(digest.as_ref()))
}

/// A piece of content addressed by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The media type its descriptor carries.
    pub media_type: String,
    /// `"sha256:<hex>"` of `data`.
    pub digest: String,
    /// The bytes.
    pub data: Bytes,
}

impl Blob {
    /// A blob of `data`, its digest computed.
    pub fn new(media_type: &str, data: impl Into<Bytes>) -> Blob {
        let data = data.into();
        Blob {
            media_type: media_type.to_owned(),
            digest: sha256_digest(&data),
            data,
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// Its OCI descriptor: media type, digest and size.
    pub fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size() })
    }
}

/// An image (or artifact) manifest together with the blobs it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The manifest's exact bytes; `digest` is computed over them.
    pub manifest: Vec<u8>,
    /// The manifest's media type.
    pub media_type: String,
    /// `"sha256:<hex>"` of `manifest`.
    pub digest: String,
    /// The config blob.
    pub config: Blob,
    /// Every distinct distributable layer, once each, in the order of first appearance in the
    /// manifest. A [duplicated](ImageBuilder::duplicate_layer) layer appears here once although
    /// the manifest lists it twice.
    pub layers: Vec<Blob>,
    /// Non-distributable (foreign) layers: listed in the manifest with `urls`, never pushed,
    /// and absent from registries. Their bytes are kept only so that tests can compare digests.
    pub foreign: Vec<Blob>,
}

impl Image {
    /// The blobs a registry must hold for this image: the config, then the layers. Foreign
    /// layers are excluded.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(&self.layers)
    }

    /// The manifest's size in bytes.
    pub fn size(&self) -> u64 {
        self.manifest.len() as u64
    }

    /// The total size of the manifest and its distributable blobs.
    pub fn total_size(&self) -> u64 {
        self.size() + self.blobs().map(Blob::size).sum::<u64>()
    }

    /// The manifest's descriptor: media type, digest and size.
    pub fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size() })
    }

    /// The platform from the config: `{"architecture", "os", "variant"?}`; `None` when the config
    /// names none (artifacts).
    pub fn platform(&self) -> Option<Value> {
        let config: Value = serde_json::from_slice(&self.config.data).ok()?;
        let mut platform = Map::new();
        for key in ["architecture", "os", "variant"] {
            if let Some(value) = config.get(key) {
                platform.insert(key.to_owned(), value.clone());
            }
        }
        (platform.contains_key("architecture") && platform.contains_key("os"))
            .then_some(Value::Object(platform))
    }
}

/// An image index (OCI) or manifest list (Docker) with its images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The index's exact bytes; `digest` is computed over them.
    pub manifest: Vec<u8>,
    /// The index's media type.
    pub media_type: String,
    /// `"sha256:<hex>"` of `manifest`.
    pub digest: String,
    /// The images it lists, in order.
    pub images: Vec<Image>,
}

impl Index {
    /// The index's size in bytes.
    pub fn size(&self) -> u64 {
        self.manifest.len() as u64
    }

    /// The index's size plus the total size of all its images.
    pub fn total_size(&self) -> u64 {
        self.size() + self.images.iter().map(Image::total_size).sum::<u64>()
    }
}

/// Which family of media types to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flavor {
    /// OCI image spec media types.
    #[default]
    Oci,
    /// Docker schema 2 media types.
    Docker,
}

impl Flavor {
    fn manifest(self) -> &'static str {
        match self {
            Flavor::Oci => media_types::OCI_MANIFEST,
            Flavor::Docker => media_types::DOCKER_MANIFEST,
        }
    }

    fn index(self) -> &'static str {
        match self {
            Flavor::Oci => media_types::OCI_INDEX,
            Flavor::Docker => media_types::DOCKER_MANIFEST_LIST,
        }
    }

    fn config(self) -> &'static str {
        match self {
            Flavor::Oci => media_types::OCI_CONFIG,
            Flavor::Docker => media_types::DOCKER_CONFIG,
        }
    }

    fn layer(self) -> &'static str {
        match self {
            Flavor::Oci => media_types::OCI_LAYER_GZIP,
            Flavor::Docker => media_types::DOCKER_LAYER_GZIP,
        }
    }

    fn foreign_layer(self) -> &'static str {
        match self {
            Flavor::Oci => media_types::OCI_LAYER_NONDISTRIBUTABLE_GZIP,
            Flavor::Docker => media_types::DOCKER_LAYER_FOREIGN,
        }
    }
}

/// Builds an [`Image`] whose every byte is determined by the seed and the options.
///
/// ```
/// use gantry_testkit::{Flavor, ImageBuilder};
/// let image = ImageBuilder::new(7).flavor(Flavor::Docker).layers(&[10, 20]).build();
/// assert_eq!(image.layers.len(), 2);
/// assert_eq!(image, ImageBuilder::new(7).flavor(Flavor::Docker).layers(&[10, 20]).build());
/// ```
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    seed: u64,
    flavor: Flavor,
    layer_sizes: Vec<usize>,
    duplicate_layer: bool,
    empty_layer: bool,
    foreign_layer: bool,
    labels: Map<String, Value>,
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl ImageBuilder {
    /// An OCI `linux/amd64` image with one 1024-byte layer, seeded with `seed`.
    pub fn new(seed: u64) -> ImageBuilder {
        ImageBuilder {
            seed,
            flavor: Flavor::Oci,
            layer_sizes: vec![1024],
            duplicate_layer: false,
            empty_layer: false,
            foreign_layer: false,
            labels: Map::new(),
            os: "linux".to_owned(),
            architecture: "amd64".to_owned(),
            variant: None,
        }
    }

    /// Uses the media types of `flavor`.
    #[must_use]
    pub fn flavor(mut self, flavor: Flavor) -> ImageBuilder {
        self.flavor = flavor;
        self
    }

    /// One layer of random-looking bytes per size given, replacing the default layer.
    #[must_use]
    pub fn layers(mut self, sizes: &[usize]) -> ImageBuilder {
        sizes.clone_into(&mut self.layer_sizes);
        self
    }

    /// Lists the first layer a second time, after the sized layers.
    #[must_use]
    pub fn duplicate_layer(mut self) -> ImageBuilder {
        self.duplicate_layer = true;
        self
    }

    /// Adds a zero-length layer.
    #[must_use]
    pub fn empty_layer(mut self) -> ImageBuilder {
        self.empty_layer = true;
        self
    }

    /// Adds a non-distributable layer whose descriptor carries
    /// `"urls": ["https://example.invalid/layer.tar.gz"]`; it goes in [`Image::foreign`].
    #[must_use]
    pub fn foreign_layer(mut self) -> ImageBuilder {
        self.foreign_layer = true;
        self
    }

    /// Sets a label in the config's `config.Labels`.
    #[must_use]
    pub fn label(mut self, key: &str, value: &str) -> ImageBuilder {
        self.labels
            .insert(key.to_owned(), Value::String(value.to_owned()));
        self
    }

    /// Sets the platform (default `linux/amd64`).
    #[must_use]
    pub fn platform(mut self, os: &str, architecture: &str, variant: Option<&str>) -> ImageBuilder {
        os.clone_into(&mut self.os);
        architecture.clone_into(&mut self.architecture);
        self.variant = variant.map(str::to_owned);
        self
    }

    /// Generates the layers, the config and the manifest.
    pub fn build(self) -> Image {
        let flavor = self.flavor;
        let mut layers: Vec<Blob> = self
            .layer_sizes
            .iter()
            .enumerate()
            .map(|(position, &size)| {
                Blob::new(
                    flavor.layer(),
                    random_bytes(mix(self.seed, position as u64), size),
                )
            })
            .collect();
        // Manifest order: the sized layers, the duplicate, the empty layer, the foreign layer.
        let mut listed: Vec<Value> = layers.iter().map(Blob::descriptor).collect();
        let mut diff_ids: Vec<String> = layers.iter().map(|layer| layer.digest.clone()).collect();
        if self.duplicate_layer {
            let first = layers
                .first()
                .expect("duplicate_layer needs at least one layer");
            listed.push(first.descriptor());
            diff_ids.push(first.digest.clone());
        }
        if self.empty_layer {
            let empty = Blob::new(flavor.layer(), Bytes::new());
            listed.push(empty.descriptor());
            diff_ids.push(empty.digest.clone());
            if !layers.iter().any(|layer| layer.digest == empty.digest) {
                layers.push(empty);
            }
        }
        let mut foreign = Vec::new();
        if self.foreign_layer {
            let blob = Blob::new(
                flavor.foreign_layer(),
                random_bytes(mix(self.seed, u64::MAX), 512),
            );
            let mut descriptor = blob.descriptor();
            descriptor["urls"] = json!([FOREIGN_LAYER_URL]);
            listed.push(descriptor);
            diff_ids.push(blob.digest.clone());
            foreign.push(blob);
        }

        let mut config = json!({
            "architecture": self.architecture,
            "os": self.os,
            "created": CREATED,
            "config": { "Labels": self.labels },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": [],
        });
        if let Some(variant) = &self.variant {
            config["variant"] = json!(variant);
        }
        let config = Blob::new(flavor.config(), to_json(&config));

        let manifest = to_json(&json!({
            "schemaVersion": 2,
            "mediaType": flavor.manifest(),
            "config": config.descriptor(),
            "layers": listed,
        }));
        Image {
            digest: sha256_digest(&manifest),
            manifest,
            media_type: flavor.manifest().to_owned(),
            config,
            layers,
            foreign,
        }
    }
}

/// An OCI image index (or, for [`Flavor::Docker`], a manifest list) of `images`, each entry
/// with the platform from that image's config (none for artifacts).
pub fn index(images: Vec<Image>, flavor: Flavor) -> Index {
    let manifests: Vec<Value> = images
        .iter()
        .map(|image| {
            let mut descriptor = image.descriptor();
            if let Some(platform) = image.platform() {
                descriptor["platform"] = platform;
            }
            descriptor
        })
        .collect();
    let manifest = to_json(&json!({
        "schemaVersion": 2,
        "mediaType": flavor.index(),
        "manifests": manifests,
    }));
    Index {
        digest: sha256_digest(&manifest),
        manifest,
        media_type: flavor.index().to_owned(),
        images,
    }
}

/// An OCI 1.1 artifact: an image manifest with `artifactType`, the empty config descriptor,
/// one layer holding `payload` (its media type is `artifact_type`), and a `subject` given as
/// (media type, digest, size) when `subject` is `Some`. This models signatures and SBOMs
/// attached to an image. The seed goes into an annotation so that artifacts with equal
/// payloads can still differ.
pub fn artifact(
    seed: u64,
    artifact_type: &str,
    subject: Option<(&str, &str, u64)>,
    payload: &[u8],
) -> Image {
    let config = Blob::new(media_types::OCI_EMPTY, Bytes::from_static(b"{}"));
    let layer = Blob::new(artifact_type, Bytes::copy_from_slice(payload));
    let mut config_descriptor = config.descriptor();
    config_descriptor["data"] = json!("e30=");
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config_descriptor,
        "layers": [layer.descriptor()],
        "annotations": { "dev.gantry.testkit.seed": seed.to_string() },
    });
    if let Some((media_type, digest, size)) = subject {
        manifest["subject"] = json!({ "mediaType": media_type, "digest": digest, "size": size });
    }
    let manifest = to_json(&manifest);
    Image {
        digest: sha256_digest(&manifest),
        manifest,
        media_type: media_types::OCI_MANIFEST.to_owned(),
        config,
        layers: vec![layer],
        foreign: Vec::new(),
    }
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serializes")
}

/// Derives an independent stream seed for part `part` of the content seeded with `seed`.
fn mix(seed: u64, part: u64) -> u64 {
    let mut state = seed ^ part.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    splitmix64(&mut state)
}

/// One step of `SplitMix64`: fast, full-period and statistically good enough to defeat
/// compression.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `size` random-looking bytes determined by `seed`.
fn random_bytes(seed: u64, size: usize) -> Bytes {
    let mut state = seed;
    let mut data = vec![0_u8; size];
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    let tail = chunks.into_remainder();
    let last = splitmix64(&mut state).to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
    Bytes::from(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_deterministic_and_seed_dependent() {
        let a = ImageBuilder::new(1).layers(&[100, 3]).build();
        assert_eq!(a, ImageBuilder::new(1).layers(&[100, 3]).build());
        let b = ImageBuilder::new(2).layers(&[100, 3]).build();
        assert_ne!(a.layers[0].digest, b.layers[0].digest);
        assert_eq!(a.layers[0].data.len(), 100);
        assert_eq!(a.layers[1].data.len(), 3);
    }

    #[test]
    fn manifest_lists_duplicate_empty_and_foreign_layers() {
        let image = ImageBuilder::new(3)
            .flavor(Flavor::Docker)
            .layers(&[10])
            .duplicate_layer()
            .empty_layer()
            .foreign_layer()
            .label("a", "b")
            .platform("linux", "arm64", Some("v8"))
            .build();
        let manifest: Value = serde_json::from_slice(&image.manifest).unwrap();
        let listed = manifest["layers"].as_array().unwrap();
        assert_eq!(listed.len(), 4);
        assert_eq!(listed[0], listed[1]);
        assert_eq!(listed[2]["size"], 0);
        assert_eq!(listed[3]["mediaType"], media_types::DOCKER_LAYER_FOREIGN);
        assert_eq!(listed[3]["urls"][0], FOREIGN_LAYER_URL);
        assert_eq!(image.layers.len(), 2);
        assert_eq!(image.foreign.len(), 1);
        assert_eq!(image.blobs().count(), 3);
        let config: Value = serde_json::from_slice(&image.config.data).unwrap();
        assert_eq!(config["config"]["Labels"]["a"], "b");
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
        assert_eq!(
            image.platform().unwrap(),
            json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
        );
        assert_eq!(image.digest, sha256_digest(&image.manifest));
    }

    #[test]
    fn index_carries_platforms() {
        let amd = ImageBuilder::new(1).build();
        let arm = ImageBuilder::new(2)
            .platform("linux", "arm64", None)
            .build();
        let index = index(vec![amd.clone(), arm], Flavor::Oci);
        let parsed: Value = serde_json::from_slice(&index.manifest).unwrap();
        assert_eq!(parsed["mediaType"], media_types::OCI_INDEX);
        assert_eq!(parsed["manifests"][0]["digest"], amd.digest.as_str());
        assert_eq!(parsed["manifests"][1]["platform"]["architecture"], "arm64");
    }

    #[test]
    fn artifact_has_empty_config_and_subject() {
        let subject = ImageBuilder::new(1).build();
        let signature = artifact(
            9,
            "application/vnd.dev.cosign.simplesigning.v1+json",
            Some((&subject.media_type, &subject.digest, subject.size())),
            b"{\"critical\":{}}",
        );
        let parsed: Value = serde_json::from_slice(&signature.manifest).unwrap();
        assert_eq!(parsed["config"]["digest"], sha256_digest(b"{}"));
        assert_eq!(parsed["config"]["size"], 2);
        assert_eq!(parsed["subject"]["digest"], subject.digest.as_str());
        assert!(signature.platform().is_none());
    }
}
