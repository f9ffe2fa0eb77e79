//! Resolving a reference to its digest and describing what it names.

use std::collections::BTreeMap;

use bytes::Bytes;
use gantry_core::{Digest, Platform};

use crate::copy::{read_config, resolve, select_platform};
use crate::error::Result;
use crate::media::{Descriptor, Manifest};
use crate::open::{Endpoint, Registries, Role};
use crate::repository::{ManifestRef, Repository};

/// What a reference names, for people and for scripts.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub reference: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    /// The manifests of an index, with their platforms; empty for a single manifest.
    pub manifests: Vec<Descriptor>,
    /// The image the config below was read from (the index's first image, or the
    /// platform asked for).
    pub config_source: Option<Digest>,
    pub platform: Option<Platform>,
    pub created: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The manifest's exact bytes.
    pub raw: Bytes,
}

/// Resolves `endpoint` and reads its config. With `platform`, the config comes from
/// that platform's image; otherwise from the first image of an index.
pub async fn inspect(
    registries: &Registries,
    endpoint: &Endpoint,
    platform: Option<&Platform>,
) -> Result<Inspection> {
    let repository = registries.open(endpoint, &Role::Pull)?;
    let root = resolve(&repository, &endpoint.reference).await?;
    let image = match (platform, root.is_index()) {
        (Some(wanted), _) => Some(select_platform(&repository, root.clone(), wanted).await?),
        (None, false) => Some(root.clone()),
        (None, true) => first_image(&repository, &root).await?,
    };
    let mut inspection = Inspection {
        reference: endpoint.reference.to_string(),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        size: root.bytes.len() as u64,
        artifact_type: root.view.artifact_type.clone(),
        manifests: root.view.manifests.clone(),
        config_source: None,
        platform: None,
        created: None,
        labels: BTreeMap::new(),
        annotations: root.view.annotations.clone().unwrap_or_default(),
        raw: root.bytes.clone(),
    };
    if let Some(image) = image.filter(|image| !image.is_index()) {
        let config = read_config(&repository, &image).await?;
        inspection.config_source = Some(image.digest.clone());
        inspection.platform = match (config.os, config.architecture) {
            (Some(os), Some(architecture)) if !os.is_empty() => Some(Platform {
                os,
                architecture,
                variant: config.variant,
            }),
            _ => None,
        };
        inspection.created = config.created;
        inspection.labels = config.config.and_then(|c| c.labels).unwrap_or_default();
    }
    Ok(inspection)
}

/// The first runnable image of an index, skipping attestation manifests
/// (platform `unknown/unknown`).
async fn first_image(repository: &Repository, index: &Manifest) -> Result<Option<Manifest>> {
    let what = repository.describe();
    let Some(child) = index
        .view
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown"))
    else {
        return Ok(None);
    };
    let digest = child.parsed_digest(&what)?;
    repository
        .fetch_manifest(&ManifestRef::Digest(digest))
        .await
        .map(Some)
}

/// Every tag of the repository `endpoint` names (its tag or digest is ignored),
/// following pagination; empty for a repository that does not exist.
pub async fn list_tags(registries: &Registries, endpoint: &Endpoint) -> Result<Vec<String>> {
    registries.open(endpoint, &Role::Pull)?.tags().await
}

/// The digest `endpoint` names now: one manifest request.
pub async fn resolve_digest(registries: &Registries, endpoint: &Endpoint) -> Result<Digest> {
    let repository = registries.open(endpoint, &Role::Pull)?;
    Ok(resolve(&repository, &endpoint.reference).await?.digest)
}
