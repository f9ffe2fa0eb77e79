//! The `trust:` section: whose signatures count. Public keys by name (PEM files, ECDSA
//! P-256 or P-384 or Ed25519), and a Sigstore trusted root for keyless signatures. The
//! identities keyless signatures may carry come from the `signed_by` gates.
//!
//! ```yaml
//! trust:
//!   keys:
//!     release: keys/release.pub               # paths are relative to this file
//!   sigstore_root: sigstore/trusted_root.json # `sigstore trust-instance` or TUF's trusted_root.json
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use gantry_evidence::signature::{IdentityPolicy, TrustedKey, TrustedRoot};
use marked_yaml::Spanned;
use serde::Deserialize;

use super::{Converter, start};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct TrustWire {
    #[serde(default)]
    keys: HashMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    sigstore_root: Option<Spanned<String>>,
}

/// Whose signatures count, as the project file says.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub keys: Vec<TrustedKey>,
    pub sigstore_root: Option<Arc<TrustedRoot>>,
    /// Every identity any `signed_by` gate of the project names: a keyless signature
    /// is verified against these, and the gates then match the identity found.
    pub identities: Vec<IdentityPolicy>,
}

impl Trust {
    /// Whether anything is configured to verify signatures with.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.sigstore_root.is_none()
    }

    pub fn has_key(&self, name: &str) -> bool {
        self.keys.iter().any(|k| k.name == name)
    }

    /// Adds an identity unless one with the same issuer and pattern is there.
    pub(super) fn add_identity(&mut self, issuer: &str, subject_glob: &str) {
        let policy = IdentityPolicy::glob(issuer, subject_glob);
        let known = self.identities.iter().any(|p| {
            p.issuer() == policy.issuer() && p.subject_pattern() == policy.subject_pattern()
        });
        if !known {
            self.identities.push(policy);
        }
    }
}

impl Converter<'_> {
    fn read_beside(&mut self, what: &str, path: &Spanned<String>) -> Option<Vec<u8>> {
        let full = Path::new(self.file)
            .parent()
            .unwrap_or(Path::new("."))
            .join(path.as_str());
        match std::fs::read(&full) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.error(
                    start(path),
                    format!("cannot read {what} {}: {e}", full.display()),
                );
                None
            }
        }
    }

    pub(super) fn trust(&mut self, wire: TrustWire) -> Trust {
        let mut trust = Trust::default();
        let mut keys: Vec<_> = wire.keys.into_iter().collect();
        keys.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (name, path) in keys {
            let Some(bytes) = self.read_beside("key", &path) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            match TrustedKey::from_pem(name.as_str(), &text) {
                Ok(key) => trust.keys.push(key),
                Err(e) => self.error(start(&path), format!("trust.keys.{}: {e}", name.as_str())),
            }
        }
        if let Some(path) = wire.sigstore_root {
            if let Some(bytes) = self.read_beside("Sigstore trusted root", &path) {
                match TrustedRoot::from_json(&bytes) {
                    Ok(root) => trust.sigstore_root = Some(Arc::new(root)),
                    Err(e) => self.error(start(&path), format!("trust.sigstore_root: {e}")),
                }
            }
        }
        trust
    }
}
