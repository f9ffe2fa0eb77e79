//! The digest-exact copy: blobs, then child manifests, then the index, then the tag;
//! referrers travel along.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, TryStreamExt as _};
use gantry_core::{Digest, Platform, Reference, Tag};

use crate::attached::{discover, read_blob, tag};
use crate::digest::digest_of;
use crate::error::{Error, Result};
use crate::media::{Descriptor, ImageConfig, Manifest, OCI_INDEX, ReferrersIndex};
use crate::open::{Endpoint, Registries, Role};
use crate::registry::{UploadError, UploadStart};
use crate::repository::{BlobStream, ManifestRef, Repository};

/// Choices for one copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Copy only this platform's manifest out of an index.
    pub platform: Option<Platform>,
    /// Copy signatures, SBOMs and attestations attached to the digest.
    pub referrers: bool,
    /// Blobs transferred at once.
    pub jobs: usize,
    /// Chunk size for registries that refuse a monolithic upload.
    pub chunk_size: u64,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            platform: None,
            referrers: true,
            jobs: 4,
            chunk_size: 16 * 1024 * 1024,
        }
    }
}

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    Copied,
    /// Already at the target.
    Skipped,
    /// Mounted from another repository of the same registry: no bytes moved.
    Mounted,
}

/// Hears about a copy as it goes, e.g. to draw progress bars. Every method has a
/// default that does nothing.
pub trait Progress: Send + Sync {
    /// The blobs that will be looked at, and their total size.
    fn planned(&self, _blobs: usize, _bytes: u64) {}
    fn blob_started(&self, _digest: &Digest, _size: u64) {}
    fn blob_bytes(&self, _digest: &Digest, _bytes: u64) {}
    /// The blob failed and starts again; bytes counted so far for it no longer count.
    fn blob_restarted(&self, _digest: &Digest, _attempt: u32, _error: &Error) {}
    fn blob_finished(&self, _digest: &Digest, _size: u64, _outcome: BlobOutcome) {}
}

/// The progress observer that observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// What a copy did.
#[derive(Debug, Clone)]
pub struct CopyReport {
    pub source: String,
    pub target: String,
    /// The digest the source reference named (an index, when `--platform` picked a child).
    pub source_digest: Digest,
    /// The digest now at the target: the platform's manifest when one was picked.
    pub target_digest: Digest,
    pub media_type: String,
    pub platform: Option<Platform>,
    /// Nothing needed writing: the target already held this digest under this name.
    pub up_to_date: bool,
    pub manifests_written: usize,
    pub manifests_present: usize,
    pub blobs_copied: usize,
    pub blobs_skipped: usize,
    pub blobs_mounted: usize,
    /// Non-distributable layers, referenced and never copied.
    pub blobs_foreign: usize,
    pub bytes_copied: u64,
    pub referrers_copied: usize,
    pub duration: Duration,
}

#[derive(Default)]
struct Tally {
    manifests_written: AtomicUsize,
    manifests_present: AtomicUsize,
    blobs_copied: AtomicUsize,
    blobs_skipped: AtomicUsize,
    blobs_mounted: AtomicUsize,
    blobs_foreign: AtomicUsize,
    bytes_copied: AtomicU64,
    referrers_copied: AtomicUsize,
}

struct Copy<'a> {
    source: Repository,
    target: Repository,
    options: &'a CopyOptions,
    progress: Arc<dyn Progress>,
    tally: Tally,
}

/// Copies what `source` names to `target`, digest-exact.
pub async fn copy(
    registries: &Registries,
    source: &Endpoint,
    target: &Endpoint,
    options: &CopyOptions,
    progress: Arc<dyn Progress>,
) -> Result<CopyReport> {
    let started = Instant::now();
    if options.jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".to_owned()));
    }
    let mount_from = match (&source.reference, &target.reference) {
        (Reference::Registry(from), Reference::Registry(to))
            if from.registry() == to.registry() =>
        {
            Some(from.repository())
        }
        _ => None,
    };
    let copy = Copy {
        source: registries.open(source, &Role::Pull)?,
        target: registries.open(target, &Role::Push { mount_from })?,
        options,
        progress,
        tally: Tally::default(),
    };
    let tag = target.reference.tag();
    // What the target's name holds now is asked while the source resolves: a copy with
    // nothing to do then takes one round trip per side, in parallel.
    let (root, current) = match tag {
        Some(tag) => {
            let name = ManifestRef::Tag(tag.clone());
            let (root, current) = tokio::join!(
                copy.resolve_source(&source.reference),
                copy.target.manifest_digest(&name)
            );
            (root?, Some(current?))
        }
        None => (copy.resolve_source(&source.reference).await?, None),
    };
    let source_digest = root.digest.clone();
    let (root, platform) = match &options.platform {
        Some(wanted) => (
            copy.select_platform(root, wanted).await?,
            Some(wanted.clone()),
        ),
        None => (root, None),
    };
    if let Some(expected) = target.reference.digest() {
        if *expected != root.digest {
            return Err(Error::Usage(format!(
                "the target names digest {expected}, but the source is {}; a copy never changes a digest",
                root.digest
            )));
        }
    }
    let current = match current {
        Some(current) => current,
        None => {
            copy.target
                .manifest_digest(&ManifestRef::Digest(root.digest.clone()))
                .await?
        }
    };
    let up_to_date = current.as_ref() == Some(&root.digest);
    if up_to_date {
        copy.tally.manifests_present.fetch_add(1, Ordering::Relaxed);
    } else {
        let present = tag.is_some()
            && copy
                .target
                .manifest_digest(&ManifestRef::Digest(root.digest.clone()))
                .await?
                .is_some();
        if !present {
            copy.copy_content(&root).await?;
        }
        copy.target.put_manifest(&root, tag).await?;
        copy.tally.manifests_written.fetch_add(1, Ordering::Relaxed);
    }
    if options.referrers {
        copy.copy_referrers(&root).await?;
    }
    let tally = &copy.tally;
    Ok(CopyReport {
        source: source.reference.to_string(),
        target: target.reference.to_string(),
        source_digest,
        target_digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        platform,
        up_to_date,
        manifests_written: tally.manifests_written.load(Ordering::Relaxed),
        manifests_present: tally.manifests_present.load(Ordering::Relaxed),
        blobs_copied: tally.blobs_copied.load(Ordering::Relaxed),
        blobs_skipped: tally.blobs_skipped.load(Ordering::Relaxed),
        blobs_mounted: tally.blobs_mounted.load(Ordering::Relaxed),
        blobs_foreign: tally.blobs_foreign.load(Ordering::Relaxed),
        bytes_copied: tally.bytes_copied.load(Ordering::Relaxed),
        referrers_copied: tally.referrers_copied.load(Ordering::Relaxed),
        duration: started.elapsed(),
    })
}

/// Reads the manifest a reference names: by digest when it has one, else by tag;
/// a layout named without either must hold exactly one manifest.
pub(crate) async fn resolve(repository: &Repository, reference: &Reference) -> Result<Manifest> {
    if let Some(digest) = reference.digest() {
        return repository
            .fetch_manifest(&ManifestRef::Digest(digest.clone()))
            .await;
    }
    match (reference.tag(), repository) {
        (Some(tag), _) => {
            repository
                .fetch_manifest(&ManifestRef::Tag(tag.clone()))
                .await
        }
        (None, Repository::Layout(layout)) => layout.default_manifest(),
        (None, Repository::Registry(_)) => Err(Error::Usage(format!(
            "{reference} names neither a tag nor a digest"
        ))),
    }
}

/// Picks the manifest for `wanted` out of an index (or checks a single manifest's config).
pub(crate) async fn select_platform(
    repository: &Repository,
    root: Manifest,
    wanted: &Platform,
) -> Result<Manifest> {
    let what = repository.describe();
    if !root.is_index() {
        let config = read_config(repository, &root).await?;
        let actual = Platform {
            os: config.os.unwrap_or_default(),
            architecture: config.architecture.unwrap_or_default(),
            variant: config.variant,
        };
        if wanted.matches(&actual) {
            return Ok(root);
        }
        return Err(Error::NotFound {
            what: format!("platform {wanted} in {what}@{}", root.digest),
            detail: format!(": it is a single-platform image for {actual}"),
        });
    }
    let available: Vec<String> = root
        .view
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| p.to_platform().to_string())
        .collect();
    let child = root
        .view
        .manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| wanted.matches(&p.to_platform()))
        })
        .ok_or_else(|| Error::NotFound {
            what: format!("platform {wanted} in {what}@{}", root.digest),
            detail: format!(
                ": the index has {}",
                if available.is_empty() {
                    "no platforms".to_owned()
                } else {
                    available.join(", ")
                }
            ),
        })?;
    let digest = child.parsed_digest(&what)?;
    repository
        .fetch_manifest(&ManifestRef::Digest(digest))
        .await
}

/// Reads and checks an image's config blob (small, so read whole).
pub(crate) async fn read_config(
    repository: &Repository,
    manifest: &Manifest,
) -> Result<ImageConfig> {
    let what = format!("config of {}@{}", repository.describe(), manifest.digest);
    let descriptor = manifest
        .view
        .config
        .as_ref()
        .ok_or_else(|| Error::InvalidManifest {
            what: what.clone(),
            reason: "no config".to_owned(),
        })?;
    let bytes = read_blob(repository, descriptor, &what, crate::media::MANIFEST_LIMIT).await?;
    // Artifacts have configs that are not image configs ("{}"); they show no labels.
    Ok(serde_json::from_slice(&bytes).unwrap_or_default())
}

impl Copy<'_> {
    async fn resolve_source(&self, reference: &Reference) -> Result<Manifest> {
        resolve(&self.source, reference).await
    }

    async fn select_platform(&self, root: Manifest, wanted: &Platform) -> Result<Manifest> {
        select_platform(&self.source, root, wanted).await
    }

    /// Everything `root` needs at the target, written in order: blobs, then child
    /// manifests (deepest first). `root` itself is left to the caller.
    async fn copy_content(&self, root: &Manifest) -> Result<()> {
        let mut children = Vec::new();
        let mut blobs = Vec::new();
        self.collect(root, &mut children, &mut blobs, &mut HashSet::new(), 0)
            .await?;
        self.copy_blobs(blobs).await?;
        for child in &children {
            self.target.put_child_manifest(child).await?;
            self.tally.manifests_written.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Walks an index down to its images, skipping children the target already has
    /// (a manifest there is complete), and gathers the blobs still needed.
    fn collect<'s>(
        &'s self,
        manifest: &'s Manifest,
        children: &'s mut Vec<Manifest>,
        blobs: &'s mut Vec<(Descriptor, Digest)>,
        seen: &'s mut HashSet<Digest>,
        depth: usize,
    ) -> futures_util::future::BoxFuture<'s, Result<()>> {
        Box::pin(async move {
            let what = self.source.describe();
            if !manifest.is_index() {
                for descriptor in &manifest.view.layers {
                    if crate::media::is_foreign_layer(&descriptor.media_type) {
                        self.tally.blobs_foreign.fetch_add(1, Ordering::Relaxed);
                    }
                }
                for descriptor in manifest.blobs() {
                    let digest = descriptor.parsed_digest(&what)?;
                    if seen.insert(digest.clone()) {
                        blobs.push((descriptor.clone(), digest));
                    }
                }
                return Ok(());
            }
            if depth > 4 {
                return Err(Error::Unsupported {
                    what: format!("{what}@{}", manifest.digest),
                    reason: "indexes nested more than 4 deep".to_owned(),
                });
            }
            let mut wanted = Vec::new();
            for descriptor in &manifest.view.manifests {
                let digest = descriptor.parsed_digest(&what)?;
                if seen.insert(digest.clone()) {
                    wanted.push(digest);
                }
            }
            let fetched: Vec<Option<Manifest>> = futures_util::stream::iter(wanted)
                .map(|digest| async move {
                    let reference = ManifestRef::Digest(digest);
                    if self.target.manifest_digest(&reference).await?.is_some() {
                        self.tally.manifests_present.fetch_add(1, Ordering::Relaxed);
                        return Ok(None);
                    }
                    self.source.fetch_manifest(&reference).await.map(Some)
                })
                .buffered(self.options.jobs)
                .try_collect()
                .await?;
            for child in fetched.into_iter().flatten() {
                self.collect(&child, children, blobs, seen, depth + 1)
                    .await?;
                children.push(child);
            }
            Ok(())
        })
    }

    async fn copy_blobs(&self, blobs: Vec<(Descriptor, Digest)>) -> Result<()> {
        let total: u64 = blobs.iter().map(|(d, _)| d.size).sum();
        self.progress.planned(blobs.len(), total);
        futures_util::stream::iter(blobs)
            .map(|(descriptor, digest)| async move {
                let outcome = self.copy_blob(&descriptor, &digest).await?;
                let counter = match outcome {
                    BlobOutcome::Copied => {
                        self.tally
                            .bytes_copied
                            .fetch_add(descriptor.size, Ordering::Relaxed);
                        &self.tally.blobs_copied
                    }
                    BlobOutcome::Skipped => &self.tally.blobs_skipped,
                    BlobOutcome::Mounted => &self.tally.blobs_mounted,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.progress
                    .blob_finished(&digest, descriptor.size, outcome);
                Ok::<_, Error>(())
            })
            .buffer_unordered(self.options.jobs)
            .try_collect::<()>()
            .await
    }

    /// One blob: skip it if present, mount it inside one registry, else stream it;
    /// transient failures restart this blob alone, after the registry's `Retry-After` or
    /// a backoff.
    async fn copy_blob(&self, descriptor: &Descriptor, digest: &Digest) -> Result<BlobOutcome> {
        let mount_from = match (&self.source, &self.target) {
            (Repository::Registry(from), Repository::Registry(to))
                if from.session.registry == to.session.registry && from.name != to.name =>
            {
                Some(from.name.as_str())
            }
            _ => None,
        };
        // Inside one registry the mount is the check: mounting a blob the target already
        // links is a no-op that answers 201, so a HEAD first would only add a round trip.
        if mount_from.is_none() && self.target.has_blob(descriptor, digest).await? {
            return Ok(BlobOutcome::Skipped);
        }
        self.progress.blob_started(digest, descriptor.size);
        let retry = match &self.target {
            Repository::Registry(r) => r.session.retry().clone(),
            Repository::Layout(_) => crate::client::RetryPolicy::default(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .try_copy_blob(
                    descriptor,
                    digest,
                    if attempt == 1 { mount_from } else { None },
                )
                .await;
            match result {
                Ok(outcome) => return Ok(outcome),
                // A short blob from a registry shows up as a transfer error (the body ended
                // before its Content-Length) and is retried; a short file in a layout is not
                // going to grow.
                Err(error) if attempt < retry.attempts && error.is_retryable() => {
                    tracing::debug!(%digest, attempt, %error, "blob transfer failed, restarting it");
                    self.progress.blob_restarted(digest, attempt, &error);
                    tokio::time::sleep(retry.wait(attempt, error.retry_after())).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn try_copy_blob(
        &self,
        descriptor: &Descriptor,
        digest: &Digest,
        mount_from: Option<&str>,
    ) -> Result<BlobOutcome> {
        match &self.target {
            Repository::Layout(layout) => {
                let stream = self.source_stream(descriptor, digest).await?;
                layout.write_blob(digest, descriptor.size, stream).await?;
                Ok(BlobOutcome::Copied)
            }
            Repository::Registry(target) => {
                let location = match target.start_upload(digest, mount_from).await? {
                    UploadStart::Mounted => return Ok(BlobOutcome::Mounted),
                    UploadStart::Location(location) => location,
                };
                let stream = self.source_stream(descriptor, digest).await?;
                match target
                    .upload_monolithic(&location, digest, descriptor.size, stream)
                    .await
                {
                    Ok(()) => Ok(BlobOutcome::Copied),
                    Err(UploadError::Other(error)) => Err(error),
                    Err(UploadError::MonolithicRefused(status)) => {
                        tracing::debug!(%digest, status, "monolithic upload refused, uploading in chunks");
                        let UploadStart::Location(location) =
                            target.start_upload(digest, None).await?
                        else {
                            unreachable!("an upload without mount is never mounted")
                        };
                        let stream = self.source_stream(descriptor, digest).await?;
                        match target
                            .upload_chunked(
                                &location,
                                digest,
                                descriptor.size,
                                stream,
                                self.options.chunk_size,
                            )
                            .await
                        {
                            Ok(()) => Ok(BlobOutcome::Copied),
                            Err(UploadError::Other(error)) => Err(error),
                            Err(UploadError::MonolithicRefused(status)) => Err(Error::Status {
                                what: format!("uploading blob {digest} to {}", target.describe()),
                                status,
                                detail:
                                    ": the registry refused both monolithic and chunked uploads"
                                        .to_owned(),
                                retry_after: None,
                            }),
                        }
                    }
                }
            }
        }
    }

    /// The source blob as a stream that reports progress and fails if it ends short
    /// or runs long: a truncated blob is never passed off as complete.
    async fn source_stream(&self, descriptor: &Descriptor, digest: &Digest) -> Result<BlobStream> {
        struct State {
            inner: BlobStream,
            counted: u64,
            expected: u64,
            finished: bool,
            digest: Digest,
            what: String,
            progress: Arc<dyn Progress>,
        }
        let state = State {
            inner: self.source.open_blob(descriptor, digest).await?,
            counted: 0,
            expected: descriptor.size,
            finished: false,
            digest: digest.clone(),
            what: format!("blob {}@{digest}", self.source.describe()),
            progress: self.progress.clone(),
        };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            if state.finished {
                return None;
            }
            let size_mismatch = |state: &State| Error::SizeMismatch {
                what: state.what.clone(),
                expected: state.expected,
                actual: state.counted,
            };
            let item = match state.inner.next().await {
                Some(Ok(chunk)) => {
                    state.counted += chunk.len() as u64;
                    if state.counted > state.expected {
                        Err(size_mismatch(&state))
                    } else {
                        state.progress.blob_bytes(&state.digest, chunk.len() as u64);
                        Ok(chunk)
                    }
                }
                Some(Err(error)) => Err(error),
                None if state.counted == state.expected => return None,
                None => Err(size_mismatch(&state)),
            };
            state.finished = item.is_err();
            Some((item, state))
        });
        Ok(Box::pin(stream))
    }

    /// Copies what is attached to `root`: referrers (API, or the `sha256-<hex>` tag
    /// schema) and cosign's `.sig`, `.att` and `.sbom` tags.
    async fn copy_referrers(&self, root: &Manifest) -> Result<()> {
        let digest = &root.digest;
        let discovered = discover(&self.source, digest).await?;
        for descriptor in &discovered.referrers {
            let referrer = self
                .source
                .fetch_manifest(&ManifestRef::Digest(
                    descriptor.parsed_digest(&self.source.describe())?,
                ))
                .await?;
            self.copy_attached(&referrer, None).await?;
        }
        if !discovered.referrers.is_empty() {
            if let Repository::Registry(target) = &self.target {
                if target.referrers(digest).await?.is_none() {
                    self.update_schema_tag(
                        &digest.tag_schema_name(),
                        &discovered.referrers,
                        discovered.schema_index,
                    )
                    .await?;
                }
            }
        }
        for cosign_tag in &discovered.cosign_tags {
            let attached = self
                .source
                .fetch_manifest(&ManifestRef::Tag(cosign_tag.clone()))
                .await?;
            self.copy_attached(&attached, Some(cosign_tag)).await?;
        }
        Ok(())
    }

    /// Copies one attached manifest, unless the target already has it under that name.
    async fn copy_attached(&self, manifest: &Manifest, tag: Option<&Tag>) -> Result<()> {
        let name = tag.map_or_else(
            || ManifestRef::Digest(manifest.digest.clone()),
            |t| ManifestRef::Tag(t.clone()),
        );
        if self.target.manifest_digest(&name).await? == Some(manifest.digest.clone()) {
            return Ok(());
        }
        self.copy_content(manifest).await?;
        self.target.put_manifest(manifest, tag).await?;
        self.tally.referrers_copied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Keeps the target's `sha256-<hex>` referrers index up to date for registries
    /// without the referrers API, as the OCI 1.1 distribution spec asks of clients.
    async fn update_schema_tag(
        &self,
        schema_tag: &str,
        referrers: &[Descriptor],
        source_index: Option<Manifest>,
    ) -> Result<()> {
        let schema_tag = tag(schema_tag)?;
        let existing = match self
            .target
            .fetch_manifest(&ManifestRef::Tag(schema_tag.clone()))
            .await
        {
            Ok(existing) => Some(existing),
            Err(Error::NotFound { .. }) => None,
            Err(error) => return Err(error),
        };
        let index = match existing {
            Some(existing) => {
                let mut manifests = existing.view.manifests.clone();
                let missing: Vec<&Descriptor> = referrers
                    .iter()
                    .filter(|r| !manifests.iter().any(|m| m.digest == r.digest))
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                manifests.extend(missing.into_iter().cloned());
                generated_index(manifests)?
            }
            // Nothing there yet: the source's own index, byte for byte, when it had one.
            None => match source_index {
                Some(index) => index,
                None => generated_index(referrers.to_vec())?,
            },
        };
        self.target.put_manifest(&index, Some(&schema_tag)).await?;
        Ok(())
    }
}

fn generated_index(manifests: Vec<Descriptor>) -> Result<Manifest> {
    let index = ReferrersIndex {
        schema_version: 2,
        media_type: OCI_INDEX.to_owned(),
        manifests,
    };
    let bytes = bytes::Bytes::from(serde_json::to_vec(&index).expect("JSON"));
    let digest = digest_of(gantry_core::Algorithm::Sha256, &bytes);
    Manifest::parse(bytes, Some(OCI_INDEX), digest, "referrers index")
}
