//! An OCI image layout on disk: `oci-layout`, `index.json` and `blobs/<alg>/<hex>`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use gantry_core::{Digest, Tag};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use crate::digest::{Hasher, digest_of};
use crate::error::{Error, Result};
use crate::media::{Descriptor, MANIFEST_LIMIT, Manifest, OCI_INDEX, REF_NAME};
use crate::repository::{BlobStream, ManifestRef};

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";

#[derive(Debug)]
pub(crate) struct LayoutRepository {
    root: PathBuf,
    /// index.json is read, changed and replaced as a whole: one writer at a time.
    index_lock: tokio::sync::Mutex<()>,
}

impl LayoutRepository {
    /// Opens a layout that must already exist, as a source.
    pub(crate) fn open(root: &Path) -> Result<LayoutRepository> {
        if !root.is_dir() {
            return Err(layout_error(
                root,
                "does not exist or is not a directory".to_owned(),
            ));
        }
        if !root.join(INDEX_FILE).is_file() {
            return Err(layout_error(
                root,
                "has no index.json: not an OCI image layout".to_owned(),
            ));
        }
        Ok(LayoutRepository {
            root: root.to_owned(),
            index_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Opens a layout as a target, creating it when the directory is missing or empty.
    pub(crate) fn create(root: &Path) -> Result<LayoutRepository> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let layout_file = root.join(LAYOUT_FILE);
        if !layout_file.exists() {
            std::fs::write(&layout_file, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(|e| Error::io(&layout_file, e))?;
        }
        let index_file = root.join(INDEX_FILE);
        if !index_file.exists() {
            let empty = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
            write_atomically(
                &index_file,
                &serde_json::to_vec_pretty(&empty).expect("JSON"),
            )?;
        }
        LayoutRepository::open(root)
    }

    pub(crate) fn describe(&self) -> String {
        format!("oci:{}", self.root.display())
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    fn read_index(&self) -> Result<Value> {
        let path = self.root.join(INDEX_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let index: Value = serde_json::from_slice(&bytes)
            .map_err(|e| layout_error(&self.root, format!("index.json is not valid JSON: {e}")))?;
        if !index.get("manifests").is_some_and(Value::is_array) {
            return Err(layout_error(
                &self.root,
                "index.json has no \"manifests\" list".to_owned(),
            ));
        }
        Ok(index)
    }

    fn entries(&self) -> Result<Vec<Descriptor>> {
        let index = self.read_index()?;
        index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| {
                serde_json::from_value::<Descriptor>(entry.clone()).map_err(|e| {
                    layout_error(
                        &self.root,
                        format!("index.json has an invalid descriptor: {e}"),
                    )
                })
            })
            .collect()
    }

    /// The index entry a tag names, or the only entry when no tag is given.
    fn resolve(&self, tag: Option<&Tag>) -> Result<Descriptor> {
        let entries = self.entries()?;
        match tag {
            Some(tag) => entries
                .into_iter()
                .find(|entry| ref_name(entry) == Some(tag.as_str()))
                .ok_or_else(|| Error::NotFound {
                    what: format!("tag {tag} in {}", self.describe()),
                    detail: String::new(),
                }),
            None if entries.len() == 1 => Ok(entries.into_iter().next().expect("one entry")),
            None => Err(layout_error(
                &self.root,
                format!(
                    "holds {} manifests; name one with :TAG or @DIGEST",
                    entries.len()
                ),
            )),
        }
    }

    pub(crate) fn fetch_manifest(&self, reference: &ManifestRef) -> Result<Manifest> {
        let (digest, media_type) = match reference {
            ManifestRef::Digest(digest) => {
                let listed = self
                    .entries()?
                    .into_iter()
                    .find(|e| e.digest == digest.as_str());
                (digest.clone(), listed.map(|e| e.media_type))
            }
            ManifestRef::Tag(tag) => {
                let entry = self.resolve(Some(tag))?;
                (
                    entry.parsed_digest(&self.describe())?,
                    Some(entry.media_type),
                )
            }
        };
        self.read_manifest(&digest, media_type.as_deref())
    }

    /// The default manifest of a layout named without tag or digest.
    pub(crate) fn default_manifest(&self) -> Result<Manifest> {
        let entry = self.resolve(None)?;
        let digest = entry.parsed_digest(&self.describe())?;
        self.read_manifest(&digest, Some(&entry.media_type))
    }

    fn read_manifest(&self, digest: &Digest, media_type: Option<&str>) -> Result<Manifest> {
        let what = format!("manifest {}@{digest}", self.describe());
        let path = self.blob_path(digest);
        let size = std::fs::metadata(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound {
                    what: what.clone(),
                    detail: format!(": no blob file {}", path.display()),
                },
                _ => Error::io(&path, e),
            })?
            .len();
        if size > MANIFEST_LIMIT as u64 {
            return Err(Error::ManifestTooLarge {
                what,
                limit: MANIFEST_LIMIT,
            });
        }
        let bytes = Bytes::from(std::fs::read(&path).map_err(|e| Error::io(&path, e))?);
        let actual = digest_of(digest.algorithm(), &bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Manifest::parse(bytes, media_type, actual, &what)
    }

    pub(crate) fn manifest_digest(&self, reference: &ManifestRef) -> Result<Option<Digest>> {
        match reference {
            ManifestRef::Tag(tag) => match self.resolve(Some(tag)) {
                Ok(entry) => entry.parsed_digest(&self.describe()).map(Some),
                Err(Error::NotFound { .. }) => Ok(None),
                Err(error) => Err(error),
            },
            ManifestRef::Digest(digest) => {
                Ok(self.blob_path(digest).is_file().then(|| digest.clone()))
            }
        }
    }

    /// Stores a manifest as a blob, without listing it in index.json (an index's child),
    /// and reads it back: the layout's answer to "what digest is stored".
    pub(crate) fn store_manifest(&self, manifest: &Manifest) -> Result<Digest> {
        let path = self.blob_path(&manifest.digest);
        if !path.is_file() {
            let parent = path.parent().expect("blob paths have a parent");
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            write_atomically(&path, &manifest.bytes)?;
        }
        let stored = digest_of(
            manifest.digest.algorithm(),
            &std::fs::read(&path).map_err(|e| Error::io(&path, e))?,
        );
        if stored != manifest.digest {
            return Err(Error::DigestMismatch {
                what: format!("writing manifest to {} (read back)", self.describe()),
                expected: manifest.digest.to_string(),
                actual: stored.to_string(),
            });
        }
        Ok(stored)
    }

    /// Stores the manifest as a blob and lists it in index.json, under `tag` when given
    /// (replacing what the tag named before), otherwise untagged.
    pub(crate) async fn put_manifest(
        &self,
        manifest: &Manifest,
        tag: Option<&Tag>,
    ) -> Result<Digest> {
        let stored = self.store_manifest(manifest)?;
        let _guard = self.index_lock.lock().await;
        let mut index = self.read_index()?;
        let entries = index["manifests"]
            .as_array_mut()
            .expect("checked by read_index");
        let mut descriptor = serde_json::to_value(Descriptor {
            artifact_type: None,
            annotations: None,
            ..manifest.descriptor()
        })
        .expect("JSON");
        match tag {
            Some(tag) => {
                entries.retain(|entry| {
                    entry
                        .pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
                        .and_then(Value::as_str)
                        != Some(tag.as_str())
                });
                descriptor["annotations"] = json!({ REF_NAME: tag.as_str() });
                entries.push(descriptor);
            }
            None => {
                if !entries
                    .iter()
                    .any(|entry| entry["digest"] == manifest.digest.as_str())
                {
                    entries.push(descriptor);
                }
            }
        }
        write_atomically(
            &self.root.join(INDEX_FILE),
            &serde_json::to_vec_pretty(&index).expect("JSON"),
        )?;
        Ok(stored)
    }

    pub(crate) fn has_blob(&self, descriptor: &Descriptor, digest: &Digest) -> bool {
        std::fs::metadata(self.blob_path(digest))
            .is_ok_and(|m| m.is_file() && m.len() == descriptor.size)
    }

    pub(crate) async fn open_blob(&self, digest: &Digest) -> Result<BlobStream> {
        let path = self.blob_path(digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound {
                    what: format!("blob {}@{digest}", self.describe()),
                    detail: format!(": no file {}", path.display()),
                },
                _ => Error::io(&path, e),
            })?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
        Ok(Box::pin(stream.map_err(move |e| Error::io(&path, e))))
    }

    /// Writes a blob from a stream into a temporary file, checks its size and digest,
    /// and only then moves it into place: a blob file is always complete and correct.
    pub(crate) async fn write_blob(
        &self,
        digest: &Digest,
        size: u64,
        mut stream: BlobStream,
    ) -> Result<()> {
        let path = self.blob_path(digest);
        let parent = path.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::io(parent, e))?;
        let temporary = parent.join(format!(".{}.partial-{}", digest.hex(), std::process::id()));
        let result = async {
            let mut file = tokio::fs::File::create(&temporary)
                .await
                .map_err(|e| Error::io(&temporary, e))?;
            let mut hasher = Hasher::new(digest.algorithm());
            let mut written = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                hasher.update(&chunk);
                file.write_all(&chunk)
                    .await
                    .map_err(|e| Error::io(&temporary, e))?;
                written += chunk.len() as u64;
            }
            file.flush().await.map_err(|e| Error::io(&temporary, e))?;
            let what = format!("blob {digest}");
            if written != size {
                return Err(Error::SizeMismatch {
                    what,
                    expected: size,
                    actual: written,
                });
            }
            let actual = hasher.finish();
            if &actual != digest {
                return Err(Error::DigestMismatch {
                    what,
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            tokio::fs::rename(&temporary, &path)
                .await
                .map_err(|e| Error::io(&path, e))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temporary).await;
        }
        result
    }

    pub(crate) fn tags(&self) -> Result<Vec<String>> {
        Ok(self
            .entries()?
            .iter()
            .filter_map(ref_name)
            .map(str::to_owned)
            .collect())
    }

    /// Manifests in index.json whose subject is `digest`: how tools such as oras keep
    /// referrers in a layout, which has no referrers API.
    pub(crate) fn referrers(&self, digest: &Digest) -> Result<Vec<Descriptor>> {
        let mut found = Vec::new();
        for entry in self.entries()? {
            let Ok(entry_digest) = entry.parsed_digest(&self.describe()) else {
                continue;
            };
            let Ok(manifest) = self.read_manifest(&entry_digest, Some(&entry.media_type)) else {
                continue;
            };
            if manifest
                .view
                .subject
                .as_ref()
                .is_some_and(|s| s.digest == digest.as_str())
            {
                found.push(manifest.descriptor());
            }
        }
        Ok(found)
    }
}

fn ref_name(entry: &Descriptor) -> Option<&str> {
    entry
        .annotations
        .as_ref()?
        .get(REF_NAME)
        .map(String::as_str)
}

fn layout_error(root: &Path, reason: String) -> Error {
    Error::Layout {
        path: root.to_owned(),
        reason,
    }
}

/// Write to a sibling temporary file, then rename: readers see the old or the new file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&temporary, bytes).map_err(|e| Error::io(&temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| Error::io(path, e))
}
