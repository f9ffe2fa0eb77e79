//! What is attached to a digest: OCI 1.1 referrers (through the referrers API, or the
//! `sha256-<hex>` tag schema where a registry lacks it) and cosign's `.sig`, `.att` and
//! `.sbom` tags. [`copy`](crate::copy) carries them along; [`attached`] reads them, so
//! signatures and attestations can be verified where they are.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use futures_util::StreamExt as _;
use gantry_core::{Digest, Tag};

use crate::digest::digest_of;
use crate::error::{Error, Result};
use crate::media::{Descriptor, Manifest};
use crate::open::{Endpoint, Registries, Role};
use crate::repository::{ManifestRef, Repository};

/// The largest attached layer [`attached`] reads into memory; larger ones are listed in
/// [`Attached::skipped`] instead. Signatures and attestations are a few kilobytes.
pub const ATTACHED_LAYER_LIMIT: usize = 16 * 1024 * 1024;

/// The cosign tag suffixes, in the order they are looked at.
const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// Where an attached manifest was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Listed as a referrer of the digest (API or tag schema).
    Referrer,
    /// Under a cosign tag, `sha256-<hex>.sig` and the like.
    CosignTag(Tag),
}

/// One manifest attached to a digest, with its layers read.
#[derive(Debug, Clone)]
pub struct Attached {
    pub manifest: Manifest,
    pub via: Via,
    /// The layers no larger than [`ATTACHED_LAYER_LIMIT`], in manifest order, each
    /// checked against its digest.
    pub layers: Vec<AttachedLayer>,
    /// Layers too large to read.
    pub skipped: Vec<Descriptor>,
}

impl Attached {
    /// The artifact type: the manifest's `artifactType`, else its config's media type.
    pub fn artifact_type(&self) -> Option<&str> {
        self.manifest.view.artifact_type.as_deref().or_else(|| {
            self.manifest
                .view
                .config
                .as_ref()
                .map(|c| c.media_type.as_str())
        })
    }
}

/// A layer of an attached manifest, read whole.
#[derive(Debug, Clone)]
pub struct AttachedLayer {
    pub media_type: String,
    pub digest: Digest,
    pub annotations: BTreeMap<String, String>,
    pub bytes: Bytes,
}

/// What [`discover`] finds attached to a digest, before anything is fetched.
pub(crate) struct Discovered {
    /// Referrers, without repeats.
    pub referrers: Vec<Descriptor>,
    /// Whether they came from the referrers API (`false`: the tag schema, or none).
    pub from_api: bool,
    /// The `sha256-<hex>` referrers index, when the registry has no referrers API and
    /// the tag exists.
    pub schema_index: Option<Manifest>,
    /// The cosign tags that exist.
    pub cosign_tags: Vec<Tag>,
}

/// Lists what is attached to `digest` in `repository`: one referrers call and one tag
/// listing, plus the tag-schema index when the registry has no referrers API.
pub(crate) async fn discover(repository: &Repository, digest: &Digest) -> Result<Discovered> {
    let schema_tag = digest.tag_schema_name();
    let (from_api, tags) = tokio::join!(repository.referrers(digest), repository.tags());
    let (from_api, tags) = (from_api?, tags?);
    let tags: HashSet<&str> = tags.iter().map(String::as_str).collect();
    let mut discovered = Discovered {
        from_api: from_api.is_some(),
        referrers: from_api.unwrap_or_default(),
        schema_index: None,
        cosign_tags: Vec::new(),
    };
    if !discovered.from_api && tags.contains(schema_tag.as_str()) {
        let index = repository
            .fetch_manifest(&ManifestRef::Tag(tag(&schema_tag)?))
            .await?;
        discovered
            .referrers
            .extend(index.view.manifests.iter().cloned());
        discovered.schema_index = Some(index);
    }
    let mut seen = HashSet::new();
    discovered
        .referrers
        .retain(|d| seen.insert(d.digest.clone()));
    for suffix in COSIGN_SUFFIXES {
        let cosign_tag = format!("{schema_tag}.{suffix}");
        if tags.contains(cosign_tag.as_str()) {
            discovered.cosign_tags.push(tag(&cosign_tag)?);
        }
    }
    Ok(discovered)
}

/// Reads everything attached to the digest `endpoint` names: each referrer and each
/// cosign tag's manifest, with its layers. A referrer the registry lists but cannot
/// serve is an error, as in [`copy`](crate::copy).
pub async fn attached(registries: &Registries, endpoint: &Endpoint) -> Result<Vec<Attached>> {
    let repository = registries.open(endpoint, &Role::Pull)?;
    let root = crate::copy::resolve(&repository, &endpoint.reference).await?;
    let discovered = discover(&repository, &root.digest).await?;
    let mut found = Vec::new();
    for descriptor in &discovered.referrers {
        let digest = descriptor.parsed_digest(&repository.describe())?;
        let manifest = repository
            .fetch_manifest(&ManifestRef::Digest(digest))
            .await?;
        found.push(read_layers(&repository, manifest, Via::Referrer).await?);
    }
    for cosign_tag in discovered.cosign_tags {
        let manifest = repository
            .fetch_manifest(&ManifestRef::Tag(cosign_tag.clone()))
            .await?;
        found.push(read_layers(&repository, manifest, Via::CosignTag(cosign_tag)).await?);
    }
    Ok(found)
}

async fn read_layers(repository: &Repository, manifest: Manifest, via: Via) -> Result<Attached> {
    let mut layers = Vec::new();
    let mut skipped = Vec::new();
    for descriptor in &manifest.view.layers {
        if descriptor.size > ATTACHED_LAYER_LIMIT as u64 {
            skipped.push(descriptor.clone());
            continue;
        }
        let what = format!(
            "layer {} of {}@{}",
            descriptor.digest,
            repository.describe(),
            manifest.digest
        );
        let bytes = read_blob(repository, descriptor, &what, ATTACHED_LAYER_LIMIT).await?;
        layers.push(AttachedLayer {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.parsed_digest(&what)?,
            annotations: descriptor.annotations.clone().unwrap_or_default(),
            bytes: Bytes::from(bytes),
        });
    }
    Ok(Attached {
        manifest,
        via,
        layers,
        skipped,
    })
}

/// Reads a small blob whole, refusing more than `limit` bytes and checking its digest.
pub(crate) async fn read_blob(
    repository: &Repository,
    descriptor: &Descriptor,
    what: &str,
    limit: usize,
) -> Result<Vec<u8>> {
    let digest = descriptor.parsed_digest(what)?;
    let mut stream = repository.open_blob(descriptor, &digest).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
        if bytes.len() > limit {
            return Err(Error::TooLarge {
                what: what.to_owned(),
                limit,
            });
        }
    }
    let actual = digest_of(digest.algorithm(), &bytes);
    if actual != digest {
        return Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

pub(crate) fn tag(text: &str) -> Result<Tag> {
    text.parse()
        .map_err(|reason| Error::Usage(format!("tag {text:?} {reason}")))
}
