//! OCI and Docker media types, and the parts of manifests Gantry reads.
//!
//! These structs are read-only views: Gantry never serializes a manifest it copies,
//! it moves the original bytes. Unknown fields are ignored, so new fields in the
//! specifications pass through untouched.

use std::collections::BTreeMap;

use gantry_core::{Digest, Platform};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Everything Gantry accepts when it asks for a manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Manifests larger than this are refused, as registries refuse them.
pub const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;

/// Annotation naming a tag in an OCI layout's index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_MANIFEST_LIST
    )
}

/// Layers that registries may not redistribute: referenced by URL, never copied.
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        || media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
}

/// An OCI descriptor as it appears on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<WirePlatform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// The digest, checked. A descriptor with a malformed digest is an invalid manifest.
    pub fn parsed_digest(&self, what: &str) -> Result<Digest> {
        self.digest.parse().map_err(|e| Error::InvalidManifest {
            what: what.to_owned(),
            reason: format!("descriptor {e}"),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePlatform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl WirePlatform {
    pub fn to_platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// The fields of an image manifest or index that Gantry needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestView {
    #[serde(default)]
    pub schema_version: Option<u32>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest as fetched: its exact bytes, its media type and its verified digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: bytes::Bytes,
    pub media_type: String,
    pub digest: Digest,
    pub view: ManifestView,
}

impl Manifest {
    /// Parses `bytes` whose digest has already been checked. `content_type` is what the
    /// server said; the manifest's own `mediaType` field wins when present.
    pub fn parse(
        bytes: bytes::Bytes,
        content_type: Option<&str>,
        digest: Digest,
        what: &str,
    ) -> Result<Manifest> {
        let invalid = |reason: String| Error::InvalidManifest {
            what: what.to_owned(),
            reason,
        };
        let view: ManifestView =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if view.schema_version == Some(1) {
            return Err(Error::Unsupported {
                what: what.to_owned(),
                reason: "Docker schema 1 manifests are deprecated and not supported".to_owned(),
            });
        }
        let content_type = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim())
            .filter(|c| is_manifest_type(c));
        let media_type = match (&view.media_type, content_type) {
            (Some(own), _) => own.clone(),
            (None, Some(header)) => header.to_owned(),
            // OCI allows the field to be absent; the shape tells index from manifest.
            (None, None) if !view.manifests.is_empty() => OCI_INDEX.to_owned(),
            (None, None) => OCI_MANIFEST.to_owned(),
        };
        if !is_manifest_type(&media_type) {
            return Err(invalid(format!(
                "media type {media_type:?} is not an image manifest or index"
            )));
        }
        if is_index(&media_type) {
            for child in &view.manifests {
                child.parsed_digest(what)?;
            }
        } else {
            let config = view
                .config
                .as_ref()
                .ok_or_else(|| invalid("image manifest has no config".to_owned()))?;
            config.parsed_digest(what)?;
            for layer in &view.layers {
                layer.parsed_digest(what)?;
            }
        }
        if let Some(subject) = &view.subject {
            subject.parsed_digest(what)?;
        }
        Ok(Manifest {
            bytes,
            media_type,
            digest,
            view,
        })
    }

    pub fn is_index(&self) -> bool {
        is_index(&self.media_type)
    }

    /// This manifest as a descriptor, for listing it in an index.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.to_string(),
            size: self.bytes.len() as u64,
            urls: None,
            platform: None,
            artifact_type: self
                .view
                .artifact_type
                .clone()
                .or_else(|| self.view.config.as_ref().map(|c| c.media_type.clone()))
                .filter(|_| self.view.subject.is_some()),
            annotations: self.view.annotations.clone(),
        }
    }

    /// The blobs an image manifest needs: config then layers, foreign layers excluded.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.view
            .config
            .iter()
            .chain(self.view.layers.iter())
            .filter(|d| !is_foreign_layer(&d.media_type))
    }
}

/// The parts of an image config Gantry shows: platform, creation time and labels.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: Option<ImageConfigInner>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfigInner {
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// An index listing referrers, as the OCI referrers API and tag schema return it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrersIndex {
    pub schema_version: u32,
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}
