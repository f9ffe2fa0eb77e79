//! Releases: an immutable set {component → digest}, identified by its content.

use std::collections::BTreeMap;
use std::fmt;

use sha2::Digest as _;

use crate::digest::{Algorithm, Digest};
use crate::name::Name;

/// A release's identity: the SHA-256 of its canonical form. Two requests for the same
/// components at the same digests name the same release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReleaseId(Digest);

/// How many hex digits of the id make the alias people type.
pub const ALIAS_LENGTH: usize = 10;

impl ReleaseId {
    pub fn from_digest(digest: Digest) -> ReleaseId {
        ReleaseId(digest)
    }

    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The short name people type and read: the first hex digits of the id, as git does.
    pub fn alias(&self) -> &str {
        &self.0.hex()[..ALIAS_LENGTH]
    }
}

/// Shows the alias; the full id is [`ReleaseId::digest`].
impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alias())
    }
}

/// The content of a release: which digest each component of a project is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseContent {
    pub project: Name,
    pub artifacts: BTreeMap<Name, Digest>,
}

impl ReleaseContent {
    /// The canonical form the id is computed from: JSON with sorted keys and no
    /// whitespace (names and digests need no escaping, so this is RFC 8785 form).
    /// Metadata such as labels is deliberately not part of it: a release is what runs.
    pub fn canonical_form(&self) -> String {
        let artifacts: Vec<String> = self
            .artifacts
            .iter()
            .map(|(name, digest)| format!("\"{name}\":\"{digest}\""))
            .collect();
        format!(
            "{{\"artifacts\":{{{}}},\"project\":\"{}\"}}",
            artifacts.join(","),
            self.project
        )
    }

    pub fn id(&self) -> ReleaseId {
        let hash = sha2::Sha256::digest(self.canonical_form().as_bytes());
        ReleaseId(
            Digest::from_parts(Algorithm::Sha256, &hex::encode(hash))
                .expect("a SHA-256 is a valid digest"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_the_content() {
        let digest = |c: char| {
            format!("sha256:{}", c.to_string().repeat(64))
                .parse::<Digest>()
                .unwrap()
        };
        let content = ReleaseContent {
            project: "payments".parse().unwrap(),
            artifacts: BTreeMap::from([
                ("worker".parse().unwrap(), digest('b')),
                ("api".parse().unwrap(), digest('a')),
            ]),
        };
        assert_eq!(
            content.canonical_form(),
            format!(
                "{{\"artifacts\":{{\"api\":\"{}\",\"worker\":\"{}\"}},\"project\":\"payments\"}}",
                digest('a'),
                digest('b')
            )
        );
        let id = content.id();
        assert_eq!(id, content.clone().id());
        assert_eq!(id.alias().len(), ALIAS_LENGTH);
        assert_eq!(id.to_string(), id.alias());
        let mut other = content;
        other.artifacts.insert("api".parse().unwrap(), digest('c'));
        assert_ne!(other.id(), id);
    }
}
