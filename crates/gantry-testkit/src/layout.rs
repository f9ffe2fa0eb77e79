//! OCI image layouts on disk.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::image::{Blob, Image, Index};

/// The annotation that names a manifest's tag in a layout's `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image layout to be written to a directory.
///
/// ```no_run
/// # let (dir, image, index) = (std::path::Path::new("/tmp/x"), gantry_testkit::ImageBuilder::new(1).build(),
/// #     gantry_testkit::index(vec![], gantry_testkit::Flavor::Oci));
/// gantry_testkit::Layout::new(dir).add_image(Some("v1"), &image).add_index(None, &index).write();
/// ```
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
    /// Everything to write under `blobs/`, duplicates included (they are written once).
    blobs: Vec<(String, Vec<u8>)>,
    /// The descriptors of `index.json`, in order.
    descriptors: Vec<Value>,
}

impl Layout {
    /// A layout in `dir` (created on [`write`](Layout::write) if missing).
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_owned(),
            blobs: Vec::new(),
            descriptors: Vec::new(),
        }
    }

    /// Adds `image` (manifest, config and distributable layers) and lists its manifest in
    /// `index.json`, with the tag as `org.opencontainers.image.ref.name` when given.
    #[must_use]
    pub fn add_image(mut self, tag: Option<&str>, image: &Image) -> Layout {
        self.add_image_content(image);
        self.descriptors
            .push(with_ref_name(image.descriptor(), tag));
        self
    }

    /// Adds `index`, its images and their blobs, and lists the index in `index.json`, with the
    /// tag as `org.opencontainers.image.ref.name` when given.
    #[must_use]
    pub fn add_index(mut self, tag: Option<&str>, index: &Index) -> Layout {
        for image in &index.images {
            self.add_image_content(image);
        }
        self.blobs
            .push((index.digest.clone(), index.manifest.clone()));
        let descriptor = json!({
            "mediaType": index.media_type,
            "digest": index.digest,
            "size": index.size(),
        });
        self.descriptors.push(with_ref_name(descriptor, tag));
        self
    }

    /// Writes `oci-layout`, `blobs/sha256/<hex>` for every blob and manifest, and `index.json`.
    pub fn write(&self) {
        let blob_dir = self.dir.join("blobs").join("sha256");
        fs::create_dir_all(&blob_dir)
            .unwrap_or_else(|error| panic!("creating {}: {error}", blob_dir.display()));
        write_file(
            &self.dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        for (digest, data) in &self.blobs {
            let hex = digest.strip_prefix("sha256:").expect("sha256 digests only");
            write_file(&blob_dir.join(hex), data);
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": crate::image::media_types::OCI_INDEX,
            "manifests": self.descriptors,
        });
        write_file(
            &self.dir.join("index.json"),
            &serde_json::to_vec(&index).expect("a JSON value serializes"),
        );
    }

    fn add_image_content(&mut self, image: &Image) {
        self.blobs
            .push((image.digest.clone(), image.manifest.clone()));
        self.blobs.extend(
            image
                .blobs()
                .map(|blob: &Blob| (blob.digest.clone(), blob.data.to_vec())),
        );
    }
}

fn with_ref_name(mut descriptor: Value, tag: Option<&str>) -> Value {
    if let Some(tag) = tag {
        descriptor["annotations"] = json!({ REF_NAME: tag });
    }
    descriptor
}

fn write_file(path: &Path, data: &[u8]) {
    fs::write(path, data).unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Flavor, ImageBuilder, index, sha256_digest};

    #[test]
    fn writes_a_layout() {
        let dir = tempfile::tempdir().unwrap();
        let image = ImageBuilder::new(1).build();
        let list = index(vec![ImageBuilder::new(2).build()], Flavor::Oci);
        Layout::new(dir.path())
            .add_image(Some("v1"), &image)
            .add_index(None, &list)
            .write();
        let index_json: Value =
            serde_json::from_slice(&fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index_json["manifests"][0]["annotations"][REF_NAME], "v1");
        assert_eq!(index_json["manifests"][1]["digest"], list.digest.as_str());
        for digest in [
            &image.digest,
            &image.config.digest,
            &list.digest,
            &list.images[0].digest,
        ] {
            let hex = digest.strip_prefix("sha256:").unwrap();
            let data = fs::read(dir.path().join("blobs/sha256").join(hex)).unwrap();
            assert_eq!(&sha256_digest(&data), digest);
        }
    }
}
