//! Signature verification: who signed a digest, checked before any policy reads what
//! they signed.
//!
//! Three forms are verified, all offline and from bytes the caller hands in:
//! - [`verify_cosign`]: a cosign key-based signature, the simple-signing payload and the
//!   `dev.cosignproject.cosign/signature` annotation of a cosign `.sig` layer;
//! - [`verify_dsse`]: a DSSE envelope signed by a configured key;
//! - [`verify_bundle`]: a Sigstore bundle (v0.1 to v0.3) whose Fulcio-style certificate
//!   chains to a [`TrustedRoot`], whose identity meets an [`IdentityPolicy`], and whose
//!   transparency-log entry the log signed.
//!
//! Each answers with a [`Verified`]: the [`Signer`] and what was signed. A refusal is a
//! [`SignatureError`] that names the step that failed.
//!
//! Deliberately absent: fetching anything (no TUF refresh of the trusted root, no
//! Rekor look-ups), RSA keys, RFC 3161 timestamps, Rekor v2 entries, and the check of a
//! certificate's embedded SCT against the trusted root's CT logs. See [`verify_bundle`].

mod bundle;
mod certificate;
mod cosign;
mod dsse;
mod key;
mod tlog;
mod trusted_root;

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use gantry_core::Digest;

pub use bundle::{IdentityPolicy, IdentityPolicyError, verify_bundle};
pub use cosign::{COSIGN_SIGNATURE_TYPE, SIMPLE_SIGNING_PAYLOAD_TYPE, verify_cosign};
pub use dsse::{IN_TOTO_PAYLOAD_TYPE, pae, verify_dsse};
pub use key::{KeyAlgorithm, KeyError, PublicKey, TrustedKey};
pub use trusted_root::{TrustedRoot, TrustedRootError};

/// Who made a verified signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Signer {
    /// A configured key, by its [`TrustedKey::name`].
    Key { name: String },
    /// A Sigstore certificate identity: the OIDC issuer and the certificate's subject
    /// (its email or URI subject alternative name).
    Identity { issuer: String, subject: String },
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Key { name } => write!(f, "key {name}"),
            Signer::Identity { issuer, subject } => write!(f, "{subject} (issuer {issuer})"),
        }
    }
}

/// What a verified signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// A payload and its type: a cosign simple-signing document
    /// ([`SIMPLE_SIGNING_PAYLOAD_TYPE`]), or a DSSE payload such as an in-toto
    /// statement ([`IN_TOTO_PAYLOAD_TYPE`]).
    Payload {
        payload_type: String,
        payload: Vec<u8>,
    },
    /// The artifact itself, known by its digest: a Sigstore message signature.
    Artifact(Digest),
}

/// A signature that verified: who signed, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub signer: Signer,
    pub signed: Signed,
}

impl Verified {
    /// The payload type and bytes, when a payload was signed.
    pub fn payload(&self) -> Option<(&str, &[u8])> {
        match &self.signed {
            Signed::Payload {
                payload_type,
                payload,
            } => Some((payload_type, payload)),
            Signed::Artifact(_) => None,
        }
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The input is not of its format: `what` names it (`DSSE envelope`, `cosign
    /// signature`, …).
    #[error("{what} is malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("no trusted keys are configured, so no {what} can verify")]
    NoTrustedKeys { what: &'static str },
    #[error("{what} has no signatures")]
    NoSignatures { what: &'static str },
    /// No signature verified with any trusted key; `tried` names the keys.
    #[error("{what} does not verify with any trusted key (tried {})", tried.join(", "))]
    NotVerified {
        what: &'static str,
        tried: Vec<String>,
    },
    #[error("cosign payload has type {found:?}, expected {COSIGN_SIGNATURE_TYPE:?}")]
    WrongCosignType { found: String },
    /// The signed document names another artifact than the one being checked.
    #[error("{what} names {found}, expected {expected}")]
    WrongDigest {
        what: &'static str,
        expected: Digest,
        found: String,
    },
    /// A Sigstore bundle failed at `step`.
    #[error("Sigstore bundle refused at {step}: {reason}")]
    Bundle { step: BundleStep, reason: String },
}

/// The steps of Sigstore bundle verification, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BundleStep {
    /// Reading the bundle: JSON, media type, base64 fields.
    Format,
    /// The transparency log entry's signed entry timestamp and inclusion proof.
    TransparencyLog,
    /// The log entry's body against the bundle's signature and certificate.
    LogEntryConsistency,
    /// The leaf certificate chains to a certificate authority of the trusted root.
    CertificateChain,
    /// The certificates were valid when the log integrated the entry.
    CertificateValidity,
    /// The leaf may sign code (extended key usage).
    CertificateUsage,
    /// The certificate's OIDC issuer extension.
    Issuer,
    /// The certificate's subject alternative name.
    Identity,
    /// The content signature with the leaf's key.
    ContentSignature,
    /// The signed content names the expected artifact digest.
    ArtifactDigest,
}

impl fmt::Display for BundleStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BundleStep::Format => "bundle format",
            BundleStep::TransparencyLog => "transparency log",
            BundleStep::LogEntryConsistency => "log entry consistency",
            BundleStep::CertificateChain => "certificate chain",
            BundleStep::CertificateValidity => "certificate validity",
            BundleStep::CertificateUsage => "certificate usage",
            BundleStep::Issuer => "certificate issuer",
            BundleStep::Identity => "certificate identity",
            BundleStep::ContentSignature => "content signature",
            BundleStep::ArtifactDigest => "artifact digest",
        })
    }
}

/// Decodes base64 as the formats here allow it: the standard or the URL-safe alphabet,
/// padded or not (DSSE asks verifiers to accept both alphabets; protobuf JSON, which
/// Sigstore bundles and trusted roots are, writes standard base64 and reads either).
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    let text = text.trim();
    // When both fail, the standard alphabet's complaint is the one to show.
    STANDARD.decode(text).or_else(|error| {
        URL_SAFE
            .decode(text)
            .map_err(|_| format!("not base64 ({error})"))
    })
}

/// Tries every trusted key against a signature; the name of the first that verifies.
fn first_verifying_key<'k>(
    keys: &'k [TrustedKey],
    message: &[u8],
    signature: &[u8],
) -> Option<&'k TrustedKey> {
    keys.iter().find(|key| key.key.verify(message, signature))
}

fn key_names(keys: &[TrustedKey]) -> Vec<String> {
    keys.iter().map(|key| key.name.clone()).collect()
}
