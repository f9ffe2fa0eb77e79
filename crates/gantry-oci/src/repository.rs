//! One place artifacts are read from or written to: a registry repository or a layout.

use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use gantry_core::{Digest, Tag};

use crate::error::Result;
use crate::layout::LayoutRepository;
use crate::media::{Descriptor, Manifest};
use crate::registry::RegistryRepository;

pub(crate) type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// How a manifest is named: by a tag, or exactly by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ManifestRef {
    Tag(Tag),
    Digest(Digest),
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(tag) => tag.fmt(f),
            ManifestRef::Digest(digest) => digest.fmt(f),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Repository {
    Registry(RegistryRepository),
    Layout(LayoutRepository),
}

impl Repository {
    pub(crate) fn describe(&self) -> String {
        match self {
            Repository::Registry(r) => r.describe(),
            Repository::Layout(l) => l.describe(),
        }
    }

    pub(crate) async fn fetch_manifest(&self, reference: &ManifestRef) -> Result<Manifest> {
        match self {
            Repository::Registry(r) => r.fetch_manifest(reference).await,
            Repository::Layout(l) => l.fetch_manifest(reference),
        }
    }

    pub(crate) async fn manifest_digest(&self, reference: &ManifestRef) -> Result<Option<Digest>> {
        match self {
            Repository::Registry(r) => r.manifest_digest(reference).await,
            Repository::Layout(l) => l.manifest_digest(reference),
        }
    }

    /// Writes the manifest under `tag`, or by digest only when `tag` is `None`.
    pub(crate) async fn put_manifest(
        &self,
        manifest: &Manifest,
        tag: Option<&Tag>,
    ) -> Result<Digest> {
        match self {
            Repository::Registry(r) => {
                let reference = tag.map_or_else(
                    || ManifestRef::Digest(manifest.digest.clone()),
                    |t| ManifestRef::Tag(t.clone()),
                );
                r.put_manifest(manifest, &reference).await
            }
            Repository::Layout(l) => l.put_manifest(manifest, tag).await,
        }
    }

    /// Writes a manifest that something else written later refers to (an index's
    /// child): by digest in a registry; in a layout, stored but not listed in index.json.
    pub(crate) async fn put_child_manifest(&self, manifest: &Manifest) -> Result<Digest> {
        match self {
            Repository::Registry(r) => {
                r.put_manifest(manifest, &ManifestRef::Digest(manifest.digest.clone()))
                    .await
            }
            Repository::Layout(l) => l.store_manifest(manifest),
        }
    }

    pub(crate) async fn has_blob(&self, descriptor: &Descriptor, digest: &Digest) -> Result<bool> {
        match self {
            Repository::Registry(r) => r.has_blob(descriptor).await,
            Repository::Layout(l) => Ok(l.has_blob(descriptor, digest)),
        }
    }

    pub(crate) async fn open_blob(
        &self,
        descriptor: &Descriptor,
        digest: &Digest,
    ) -> Result<BlobStream> {
        match self {
            Repository::Registry(r) => r.open_blob(descriptor).await,
            Repository::Layout(l) => l.open_blob(digest).await,
        }
    }

    pub(crate) async fn tags(&self) -> Result<Vec<String>> {
        match self {
            Repository::Registry(r) => r.tags().await,
            Repository::Layout(l) => l.tags(),
        }
    }

    /// Referrers through the API (registry) or by subject (layout); `None` when the
    /// registry has no referrers API.
    pub(crate) async fn referrers(&self, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        match self {
            Repository::Registry(r) => r.referrers(digest).await,
            Repository::Layout(l) => l.referrers(digest).map(Some),
        }
    }
}
