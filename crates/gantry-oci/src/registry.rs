//! One repository in a registry, spoken to through the OCI distribution API.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use gantry_core::Digest;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LINK, LOCATION};
use reqwest::{Method, Response, StatusCode};

use crate::client::{Session, Target, check};
use crate::digest::digest_of;
use crate::error::{Error, Result, chain};
use crate::media::{
    Descriptor, MANIFEST_ACCEPT, MANIFEST_LIMIT, Manifest, OCI_INDEX, ReferrersIndex,
};
use crate::repository::{BlobStream, ManifestRef};

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

#[derive(Debug)]
pub(crate) struct RegistryRepository {
    pub(crate) session: Arc<Session>,
    pub(crate) name: String,
}

/// What starting an upload gave: the blob was mounted from another repository, or
/// here is where to send it.
pub(crate) enum UploadStart {
    Mounted,
    Location(String),
}

impl RegistryRepository {
    pub(crate) fn describe(&self) -> String {
        format!("{}/{}", self.session.registry, self.name)
    }

    fn what(&self, kind: &str, reference: &str) -> String {
        let separator = if reference.contains(':') { '@' } else { ':' };
        format!("{kind} {}{separator}{reference}", self.describe())
    }

    pub(crate) async fn fetch_manifest(&self, reference: &ManifestRef) -> Result<Manifest> {
        let reference_text = reference.to_string();
        let what = self.what("manifest", &reference_text);
        let response = self
            .session
            .send(
                Method::GET,
                Target::Path(&format!("/v2/{}/manifests/{reference_text}", self.name)),
                &what,
                |r| r.header(ACCEPT, MANIFEST_ACCEPT),
            )
            .await?;
        let response = check(response, &what).await?;
        let content_type = header(&response, CONTENT_TYPE.as_str());
        let claimed = header(&response, DOCKER_CONTENT_DIGEST);
        let bytes = read_limited(response, &what).await?;
        let expected = match reference {
            ManifestRef::Digest(digest) => Some(digest.clone()),
            // By tag, trust nothing but the bytes; the header, when present, must agree.
            ManifestRef::Tag(_) => claimed.as_deref().and_then(|c| c.parse::<Digest>().ok()),
        };
        let digest = match expected {
            Some(expected) => {
                let actual = digest_of(expected.algorithm(), &bytes);
                if actual != expected {
                    return Err(Error::DigestMismatch {
                        what,
                        expected: expected.to_string(),
                        actual: actual.to_string(),
                    });
                }
                actual
            }
            None => digest_of(gantry_core::Algorithm::Sha256, &bytes),
        };
        Manifest::parse(bytes, content_type.as_deref(), digest, &what)
    }

    /// The digest a tag or digest names here, or `None` if there is no such manifest.
    pub(crate) async fn manifest_digest(&self, reference: &ManifestRef) -> Result<Option<Digest>> {
        let reference_text = reference.to_string();
        let what = self.what("manifest", &reference_text);
        let response = self
            .session
            .send(
                Method::HEAD,
                Target::Path(&format!("/v2/{}/manifests/{reference_text}", self.name)),
                &what,
                |r| r.header(ACCEPT, MANIFEST_ACCEPT),
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response, &what).await?;
        match header(&response, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse().ok()) {
            Some(digest) => Ok(Some(digest)),
            // A registry that does not say: read the manifest and hash it.
            None => Ok(Some(self.fetch_manifest(reference).await?.digest)),
        }
    }

    /// Writes the exact bytes under a tag or digest; returns the digest the registry
    /// reports for what it stored, checked against the bytes' own.
    pub(crate) async fn put_manifest(
        &self,
        manifest: &Manifest,
        reference: &ManifestRef,
    ) -> Result<Digest> {
        let reference_text = reference.to_string();
        let what = self.what("writing manifest", &reference_text);
        let response = self
            .session
            .send(
                Method::PUT,
                Target::Path(&format!("/v2/{}/manifests/{reference_text}", self.name)),
                &what,
                |r| {
                    r.header(CONTENT_TYPE, &manifest.media_type)
                        .body(manifest.bytes.clone())
                },
            )
            .await?;
        let response = check(response, &what).await?;
        let stored =
            match header(&response, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok()) {
                Some(digest) => digest,
                None => self
                    .manifest_digest(reference)
                    .await?
                    .ok_or_else(|| Error::NotFound {
                        what: what.clone(),
                        detail: ": the manifest is missing right after it was written".to_owned(),
                    })?,
            };
        if stored != manifest.digest {
            return Err(Error::DigestMismatch {
                what: format!("{what} (read back)"),
                expected: manifest.digest.to_string(),
                actual: stored.to_string(),
            });
        }
        Ok(stored)
    }

    pub(crate) async fn has_blob(&self, descriptor: &Descriptor) -> Result<bool> {
        let what = self.what("blob", &descriptor.digest);
        let response = self
            .session
            .send(
                Method::HEAD,
                Target::Path(&format!("/v2/{}/blobs/{}", self.name, descriptor.digest)),
                &what,
                |r| r,
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        check(response, &what).await.map(|_| true)
    }

    pub(crate) async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobStream> {
        let what = self.what("blob", &descriptor.digest);
        let response = self
            .session
            .send(
                Method::GET,
                Target::Path(&format!("/v2/{}/blobs/{}", self.name, descriptor.digest)),
                &what,
                |r| r,
            )
            .await?;
        let response = check(response, &what).await?;
        Ok(Box::pin(response.bytes_stream().map(move |chunk| {
            chunk.map_err(|e| Error::Transfer {
                what: what.clone(),
                detail: chain(&e),
            })
        })))
    }

    /// Starts an upload, asking the registry to mount the blob from `mount_from` (a
    /// repository in the same registry) when given.
    pub(crate) async fn start_upload(
        &self,
        digest: &Digest,
        mount_from: Option<&str>,
    ) -> Result<UploadStart> {
        let what = self.what("starting upload of blob", digest.as_str());
        let mut path = format!("/v2/{}/blobs/uploads/", self.name);
        if let Some(from) = mount_from {
            write!(path, "?mount={digest}&from={from}").expect("writing to a String");
        }
        let response = self
            .session
            .send(Method::POST, Target::Path(&path), &what, |r| {
                r.header(CONTENT_LENGTH, 0)
            })
            .await?;
        let response = check(response, &what).await?;
        if response.status() == StatusCode::CREATED && mount_from.is_some() {
            return Ok(UploadStart::Mounted);
        }
        location(&response, &what).map(UploadStart::Location)
    }

    /// One streamed PUT with a known length: the fast path.
    pub(crate) async fn upload_monolithic(
        &self,
        upload: &str,
        digest: &Digest,
        size: u64,
        body: BlobStream,
    ) -> Result<(), UploadError> {
        let what = self.what("uploading blob", digest.as_str());
        let url = self.session.url(&Target::Url(upload));
        let url = with_digest(&url, digest, &what)?;
        let request = self
            .session
            .http(&url)?
            .put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(body));
        let response = self.session.send_once(request, &what).await?;
        self.finish_upload(response, &what).await
    }

    /// Chunked upload (PATCH with Content-Range, then PUT): for registries that refuse a
    /// monolithic body. Still streams: each chunk's body is fed from the source as sent.
    pub(crate) async fn upload_chunked(
        &self,
        upload: &str,
        digest: &Digest,
        size: u64,
        mut source: BlobStream,
        chunk_size: u64,
    ) -> Result<(), UploadError> {
        let what = self.what("uploading blob (chunked)", digest.as_str());
        let mut location = upload.to_owned();
        let mut leftover: Option<Bytes> = None;
        let mut offset = 0u64;
        while offset < size {
            let length = chunk_size.min(size - offset);
            let url = self.session.url(&Target::Url(&location));
            let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes>>(4);
            let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|item| (item, receiver))
            });
            let request = self
                .session
                .http(&url)?
                .patch(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, length)
                .header(CONTENT_RANGE, format!("{offset}-{}", offset + length - 1))
                .body(reqwest::Body::wrap_stream(body));
            let feed = feed_chunk(&mut source, &mut leftover, sender, length);
            let (response, feeding) = tokio::join!(self.session.send_once(request, &what), feed);
            feeding?;
            let response = response?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(check(response, &what)
                    .await
                    .err()
                    .unwrap_or_else(|| Error::Transfer {
                        what: what.clone(),
                        detail: "the registry did not accept the chunk".to_owned(),
                    })
                    .into());
            }
            location = self::location(&response, &what)?;
            offset += length;
        }
        let url = self.session.url(&Target::Url(&location));
        let url = with_digest(&url, digest, &what)?;
        let request = self.session.http(&url)?.put(&url).header(CONTENT_LENGTH, 0);
        let response = self.session.send_once(request, &what).await?;
        self.finish_upload(response, &what).await
    }

    async fn finish_upload(&self, response: Response, what: &str) -> Result<(), UploadError> {
        match response.status() {
            StatusCode::CREATED => Ok(()),
            StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED => {
                Err(UploadError::MonolithicRefused(response.status().as_u16()))
            }
            status => {
                if status == StatusCode::UNAUTHORIZED {
                    // The next attempt of this blob fetches a fresh token.
                    self.session.forget_token().await;
                }
                let error = check(response, what)
                    .await
                    .err()
                    .unwrap_or_else(|| Error::Status {
                        what: what.to_owned(),
                        status: status.as_u16(),
                        detail: ": unexpected answer to an upload".to_owned(),
                        retry_after: None,
                    });
                Err(error.into())
            }
        }
    }

    /// The referrers of `digest` through the OCI 1.1 referrers API, or `None` when the
    /// registry does not offer it.
    pub(crate) async fn referrers(&self, digest: &Digest) -> Result<Option<Vec<Descriptor>>> {
        let what = self.what("referrers of", digest.as_str());
        let response = self
            .session
            .send(
                Method::GET,
                Target::Path(&format!("/v2/{}/referrers/{digest}", self.name)),
                &what,
                |r| r.header(ACCEPT, OCI_INDEX),
            )
            .await?;
        if matches!(
            response.status(),
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::METHOD_NOT_ALLOWED
        ) {
            return Ok(None);
        }
        let response = check(response, &what).await?;
        let is_index =
            header(&response, CONTENT_TYPE.as_str()).is_some_and(|c| c.starts_with(OCI_INDEX));
        if !is_index {
            return Ok(None);
        }
        let bytes = read_limited(response, &what).await?;
        let index: ReferrersIndex =
            serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest {
                what,
                reason: e.to_string(),
            })?;
        Ok(Some(index.manifests))
    }

    /// Every tag of the repository, following pagination; empty for an unknown repository.
    pub(crate) async fn tags(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let what = format!("tag list of {}", self.describe());
        let mut tags = Vec::new();
        let mut next = format!("/v2/{}/tags/list?n=1000", self.name);
        loop {
            let response = self
                .session
                .send(Method::GET, Target::Url(&next), &what, |r| r)
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            let response = check(response, &what).await?;
            let link = header(&response, LINK.as_str());
            let bytes = read_limited(response, &what).await?;
            let list: TagList = serde_json::from_slice(&bytes).map_err(|e| Error::Status {
                what: what.clone(),
                status: 200,
                detail: format!(": not a tag list: {e}"),
                retry_after: None,
            })?;
            tags.extend(list.tags.unwrap_or_default());
            match link.as_deref().and_then(next_link) {
                Some(link) => next = link,
                None => return Ok(tags),
            }
        }
    }
}

/// Why an upload failed: the registry refused a monolithic body (try chunked), or else.
#[derive(Debug)]
pub(crate) enum UploadError {
    MonolithicRefused(u16),
    Other(Error),
}

impl From<Error> for UploadError {
    fn from(error: Error) -> Self {
        UploadError::Other(error)
    }
}

/// Sends the next `length` bytes of `source` into `sender`, keeping what is left over.
async fn feed_chunk(
    source: &mut BlobStream,
    leftover: &mut Option<Bytes>,
    sender: tokio::sync::mpsc::Sender<Result<Bytes>>,
    length: u64,
) -> Result<()> {
    let mut remaining = length;
    while remaining > 0 {
        let mut piece = match leftover.take() {
            Some(piece) => piece,
            None => match source.next().await {
                Some(Ok(piece)) => piece,
                Some(Err(error)) => {
                    let detail = error.to_string();
                    let _ = sender.send(Err(error)).await;
                    return Err(Error::Transfer {
                        what: "reading the source blob".to_owned(),
                        detail,
                    });
                }
                None => {
                    return Err(Error::Transfer {
                        what: "reading the source blob".to_owned(),
                        detail: "the source ended early".to_owned(),
                    });
                }
            },
        };
        if piece.len() as u64 > remaining {
            *leftover = Some(piece.split_off(remaining as usize));
        }
        remaining -= piece.len() as u64;
        if sender.send(Ok(piece)).await.is_err() {
            // The request ended early; its own error says why.
            return Ok(());
        }
    }
    Ok(())
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn location(response: &Response, what: &str) -> Result<String> {
    header(response, LOCATION.as_str()).ok_or_else(|| Error::Status {
        what: what.to_owned(),
        status: response.status().as_u16(),
        detail: ": the registry gave no upload location".to_owned(),
        retry_after: None,
    })
}

fn with_digest(url: &str, digest: &Digest, what: &str) -> Result<String> {
    let mut url = reqwest::Url::parse(url).map_err(|e| Error::Status {
        what: what.to_owned(),
        status: 202,
        detail: format!(": the upload location {url:?} is not a URL: {e}"),
        retry_after: None,
    })?;
    url.query_pairs_mut().append_pair("digest", digest.as_str());
    Ok(url.into())
}

/// `</v2/x/tags/list?last=y&n=1000>; rel="next"` → the path.
fn next_link(link: &str) -> Option<String> {
    let start = link.find('<')? + 1;
    let end = link[start..].find('>')? + start;
    link[end..]
        .contains("rel=\"next\"")
        .then(|| link[start..end].to_owned())
}

/// Reads a manifest-sized body, refusing anything over the limit without reading it all.
async fn read_limited(mut response: Response, what: &str) -> Result<Bytes> {
    if response
        .content_length()
        .is_some_and(|length| length > MANIFEST_LIMIT as u64)
    {
        return Err(Error::ManifestTooLarge {
            what: what.to_owned(),
            limit: MANIFEST_LIMIT,
        });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Error::Transfer {
        what: what.to_owned(),
        detail: chain(&e),
    })? {
        if body.len() + chunk.len() > MANIFEST_LIMIT {
            return Err(Error::ManifestTooLarge {
                what: what.to_owned(),
                limit: MANIFEST_LIMIT,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
