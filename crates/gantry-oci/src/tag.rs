//! Tag-based promotion inside one repository: one manifest read, one write per tag.

use gantry_core::{Digest, Tag};

use crate::copy::resolve;
use crate::error::{Error, Result};
use crate::open::{Endpoint, Registries, Role};

/// What `tag` did.
#[derive(Debug, Clone)]
pub struct TagReport {
    pub source: String,
    pub digest: Digest,
    pub media_type: String,
    pub tags: Vec<Tag>,
}

/// Points each of `tags` at the manifest `endpoint` names, in the same repository.
/// No blob moves; each write's digest is checked against the source's.
pub async fn tag(registries: &Registries, endpoint: &Endpoint, tags: &[Tag]) -> Result<TagReport> {
    if tags.is_empty() {
        return Err(Error::Usage("name at least one new tag".to_owned()));
    }
    let repository = registries.open(endpoint, &Role::Push { mount_from: None })?;
    let manifest = resolve(&repository, &endpoint.reference).await?;
    for tag in tags {
        repository.put_manifest(&manifest, Some(tag)).await?;
    }
    Ok(TagReport {
        source: endpoint.reference.to_string(),
        digest: manifest.digest,
        media_type: manifest.media_type,
        tags: tags.to_vec(),
    })
}
