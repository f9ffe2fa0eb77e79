//! Sigstore bundles, verified offline against a trusted root and an identity policy.

use gantry_core::{Algorithm, Digest};
use regex::Regex;
use serde::Deserialize;

use super::certificate::Certificate;
use super::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, pae};
use super::key::{CertificateHash, PublicKey};
use super::tlog::{DsseRekord, Entry, HashValue, HashedRekord, IntotoRekord, recorded_certificate};
use super::trusted_root::{CertificateAuthority, TrustedRoot, WireRawBytes};
use super::{BundleStep, SignatureError, Signed, Signer, Verified, decode_base64};

/// The bundle media types read here.
const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
];

/// Who may sign: the OIDC issuer, exactly, and a pattern for the certificate's subject
/// (its email or URI subject alternative name, or Fulcio's username).
///
/// The pattern is a regular expression in the `regex` crate's syntax that must match
/// the *whole* subject: it is anchored at both ends, so `.*@example\.com` admits every
/// address at example.com and nothing else. Escape the dots that mean dots. For one
/// exact subject, [`IdentityPolicy::exact`] escapes it.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    issuer: String,
    subject_pattern: String,
    subject: Regex,
}

/// A subject pattern that is not a regular expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subject pattern {pattern:?} is not a valid regular expression: {reason}")]
pub struct IdentityPolicyError {
    pub pattern: String,
    pub reason: String,
}

impl IdentityPolicy {
    /// A policy admitting subjects that `subject_pattern` matches whole, from `issuer`.
    pub fn new(
        issuer: impl Into<String>,
        subject_pattern: impl Into<String>,
    ) -> Result<IdentityPolicy, IdentityPolicyError> {
        let subject_pattern = subject_pattern.into();
        let subject = Regex::new(&format!("^(?:{subject_pattern})$")).map_err(|error| {
            IdentityPolicyError {
                pattern: subject_pattern.clone(),
                reason: error.to_string(),
            }
        })?;
        Ok(IdentityPolicy {
            issuer: issuer.into(),
            subject_pattern,
            subject,
        })
    }

    /// A policy admitting exactly one subject from `issuer`.
    pub fn exact(issuer: impl Into<String>, subject: &str) -> IdentityPolicy {
        IdentityPolicy::new(issuer, regex::escape(subject))
            .expect("an escaped string is a valid regular expression")
    }

    /// A policy admitting subjects that `glob` matches whole, where `*` stands for any
    /// run of characters and everything else for itself: the form project files use.
    pub fn glob(issuer: impl Into<String>, glob: &str) -> IdentityPolicy {
        let pattern = glob
            .split('*')
            .map(regex::escape)
            .collect::<Vec<_>>()
            .join(".*");
        IdentityPolicy::new(issuer, pattern).expect("escaped text joined by .* is a valid pattern")
    }

    /// The OIDC issuer a certificate must name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The subject pattern as written (before anchoring).
    pub fn subject_pattern(&self) -> &str {
        &self.subject_pattern
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: VerificationMaterial,
    message_signature: Option<MessageSignature>,
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationMaterial {
    certificate: Option<WireRawBytes>,
    x509_certificate_chain: Option<CertificateChain>,
    public_key: Option<serde_json::Value>,
    #[serde(default)]
    tlog_entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct CertificateChain {
    certificates: Vec<WireRawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignature {
    message_digest: Option<HashOutput>,
    signature: String,
}

#[derive(Deserialize)]
struct HashOutput {
    algorithm: String,
    digest: String,
}

/// What the bundle signs, decoded.
enum Content {
    Message {
        /// The digest the bundle says it signed, if it says.
        named: Option<(String, Vec<u8>)>,
        signature: Vec<u8>,
    },
    Envelope {
        payload_type: String,
        payload: Vec<u8>,
        signatures: Vec<Vec<u8>>,
    },
}

fn refuse(step: BundleStep, reason: impl Into<String>) -> SignatureError {
    SignatureError::Bundle {
        step,
        reason: reason.into(),
    }
}

/// Verifies a Sigstore bundle (JSON bytes) for the artifact `expected`, offline.
///
/// The steps, each named by the error when it fails ([`BundleStep`]):
/// 1. *bundle format*: a bundle of media type v0.1, v0.2 or v0.3, with a signing
///    certificate (`verificationMaterial.certificate`, or the first of
///    `x509CertificateChain`), a transparency log entry (the first is used), and either
///    a message signature or a DSSE envelope. A message signature whose
///    `messageDigest` names another artifact is refused here already, at *artifact
///    digest*;
/// 2. *transparency log*: the entry's log is in `root` and its key was valid at the
///    entry's `integratedTime`; the signed entry timestamp (inclusion promise) verifies
///    with it, which is what makes `integratedTime` the log's word; and an inclusion
///    proof, when present, leads to a root that the log signed in its checkpoint;
/// 3. *log entry consistency*: the entry (`hashedrekord` 0.0.1 for a message
///    signature; `dsse` 0.0.1 or `intoto` 0.0.2 for an envelope) records this
///    bundle's signature and certificate, so an entry cannot be borrowed from another
///    signature (a `hashedrekord` entry for another digest is refused at *artifact
///    digest*);
/// 4. *certificate chain*: a certificate authority of `root` issued the certificate,
///    each certificate of its chain signed by the next (ECDSA P-256/P-384 with SHA-256
///    or SHA-384, or Ed25519), the issuers marked as CAs;
/// 5. *certificate validity*: the leaf, its chain and the authority's `validFor` all
///    held at the integrated time;
/// 6. *certificate usage*: the leaf is no CA, its key usage includes digital
///    signatures and its extended key usage code signing;
/// 7. *certificate issuer*: Fulcio's OIDC issuer extension (1.3.6.1.4.1.57264.1.8, or
///    else .1.1) equals the policy's issuer;
/// 8. *certificate identity*: a subject alternative name matches the policy's pattern;
/// 9. *content signature* and *artifact digest*: a message signature must verify over
///    `expected` with the leaf's key (ECDSA P-256 or P-384: the artifact is known by
///    its digest, so Ed25519 cannot be checked); a DSSE envelope's signature must
///    verify over its PAE, and its payload must be an in-toto statement with `expected`
///    among its subjects.
///
/// Not verified: the certificate's embedded SCT against the root's CT logs, RFC 3161
/// timestamps, and Rekor v2 entries (which have no signed entry timestamp).
pub fn verify_bundle(
    bundle: &[u8],
    expected: &Digest,
    root: &TrustedRoot,
    policy: &IdentityPolicy,
) -> Result<Verified, SignatureError> {
    let format = |reason: String| refuse(BundleStep::Format, reason);
    let bundle: Bundle =
        serde_json::from_slice(bundle).map_err(|error| format(error.to_string()))?;
    if !MEDIA_TYPES.contains(&bundle.media_type.as_str()) {
        return Err(format(format!(
            "media type {:?} is not supported: use {}",
            bundle.media_type,
            MEDIA_TYPES.join(", ")
        )));
    }
    let leaf = leaf_certificate(&bundle.verification_material).map_err(format)?;
    let [entry, ..] = bundle.verification_material.tlog_entries.as_slice() else {
        return Err(format(
            "the bundle has no transparency log entry".to_owned(),
        ));
    };
    let content = match (bundle.message_signature, bundle.dsse_envelope) {
        (Some(message), None) => {
            let named = message
                .message_digest
                .map(|digest| {
                    decode_base64(&digest.digest)
                        .map(|bytes| (digest.algorithm, bytes))
                        .map_err(|reason| {
                            format!("messageSignature.messageDigest.digest: {reason}")
                        })
                })
                .transpose()
                .map_err(format)?;
            let signature = decode_base64(&message.signature)
                .map_err(|reason| format(format!("messageSignature.signature: {reason}")))?;
            Content::Message { named, signature }
        }
        (None, Some(envelope)) => {
            let envelope = envelope
                .decode()
                .map_err(|reason| format(format!("dsseEnvelope.{reason}")))?;
            if envelope.signatures.is_empty() {
                return Err(format("the DSSE envelope has no signatures".to_owned()));
            }
            Content::Envelope {
                payload_type: envelope.payload_type,
                payload: envelope.payload,
                signatures: envelope.signatures,
            }
        }
        _ => {
            return Err(format(
                "the bundle must hold exactly one of messageSignature and dsseEnvelope".to_owned(),
            ));
        }
    };

    // A message signature that names another artifact is refused before anything is
    // verified, with the clearest reason; the signature check below proves the rest.
    if let Content::Message {
        named: Some((algorithm, digest)),
        ..
    } = &content
    {
        check_named_digest(algorithm, digest, expected)?;
    }
    let time = check_log_entry(entry, root)?;
    check_entry_matches(entry, &leaf, &content, expected)?;

    let authority = check_chain(&leaf, root)?;
    check_validity(&leaf, authority, time)?;
    leaf.check_code_signing()
        .map_err(|reason| refuse(BundleStep::CertificateUsage, reason))?;
    let issuer = leaf
        .fulcio_issuer()
        .map_err(|reason| refuse(BundleStep::Issuer, reason))?;
    if issuer != policy.issuer {
        return Err(refuse(
            BundleStep::Issuer,
            format!(
                "the certificate's OIDC issuer is {issuer:?}, expected {:?}",
                policy.issuer
            ),
        ));
    }
    let identities = leaf
        .identities()
        .map_err(|reason| refuse(BundleStep::Identity, reason))?;
    let subject = identities
        .iter()
        .find(|identity| policy.subject.is_match(identity))
        .ok_or_else(|| {
            refuse(
                BundleStep::Identity,
                format!(
                    "no subject of the certificate ({}) matches {:?}",
                    identities
                        .iter()
                        .map(|identity| format!("{identity:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    policy.subject_pattern
                ),
            )
        })?
        .clone();

    let key = leaf
        .public_key()
        .map_err(|reason| refuse(BundleStep::ContentSignature, format!("leaf key: {reason}")))?;
    let signed = check_content(content, &key, expected)?;
    Ok(Verified {
        signer: Signer::Identity { issuer, subject },
        signed,
    })
}

fn leaf_certificate(material: &VerificationMaterial) -> Result<Certificate, String> {
    let raw = if let Some(certificate) = &material.certificate {
        certificate
    } else if let Some(chain) = &material.x509_certificate_chain {
        chain
            .certificates
            .first()
            .ok_or("verificationMaterial.x509CertificateChain has no certificates")?
    } else if material.public_key.is_some() {
        return Err(
            "the bundle is signed with a public key, not a certificate: \
                    verify key-signed content with a trusted key instead"
                .to_owned(),
        );
    } else {
        return Err("verificationMaterial has no certificate".to_owned());
    };
    let der =
        decode_base64(&raw.raw_bytes).map_err(|reason| format!("signing certificate: {reason}"))?;
    Certificate::from_der(&der).map_err(|reason| format!("signing certificate: {reason}"))
}

/// Verifies the log entry, and returns the integrated time it vouches for.
fn check_log_entry(entry: &Entry, root: &TrustedRoot) -> Result<i64, SignatureError> {
    let step = |reason: String| refuse(BundleStep::TransparencyLog, reason);
    let log_id = decode_base64(&entry.log_id.key_id)
        .map_err(|reason| step(format!("logId.keyId: {reason}")))?;
    let log = root.log(&log_id).ok_or_else(|| {
        step(format!(
            "log {} is not in the trusted root",
            hex::encode(&log_id)
        ))
    })?;
    if !log.valid_for.contains(entry.integrated_time) {
        return Err(step(format!(
            "the key of log {} was not valid at the integrated time {}",
            log.name, entry.integrated_time
        )));
    }
    entry.verify_signed_entry_timestamp(log).map_err(step)?;
    entry.verify_inclusion_proof(log).map_err(step)?;
    Ok(entry.integrated_time)
}

/// Checks that the log entry records this bundle's signature by this certificate.
fn check_entry_matches(
    entry: &Entry,
    leaf: &Certificate,
    content: &Content,
    expected: &Digest,
) -> Result<(), SignatureError> {
    let step = |reason: String| refuse(BundleStep::LogEntryConsistency, reason);
    let body = entry.body().map_err(step)?;
    let kind = (
        entry.kind_version.kind.as_str(),
        entry.kind_version.version.as_str(),
    );
    match (kind, content) {
        (("hashedrekord", "0.0.1"), Content::Message { signature, .. }) => {
            let record: HashedRekord = serde_json::from_slice(&body)
                .map_err(|error| step(format!("the hashedrekord body is malformed: {error}")))?;
            let hash = &record.spec.data.hash;
            if hash.algorithm != expected.algorithm().name() || hash.value != expected.hex() {
                // The signature is then about another artifact (or the entry about
                // another signature): say what it names.
                return Err(refuse(
                    BundleStep::ArtifactDigest,
                    format!(
                        "the log entry records a signature over {}:{}, expected {expected}",
                        hash.algorithm, hash.value
                    ),
                ));
            }
            let recorded = decode_base64(&record.spec.signature.content).map_err(step)?;
            if &recorded != signature {
                return Err(step("the entry records another signature".to_owned()));
            }
            let certificate = recorded_certificate(&record.spec.signature.public_key.content)
                .map_err(|reason| step(format!("the entry's public key: {reason}")))?;
            if certificate != leaf.der() {
                return Err(step("the entry records another certificate".to_owned()));
            }
            Ok(())
        }
        (
            ("dsse", "0.0.1"),
            Content::Envelope {
                payload,
                signatures,
                ..
            },
        ) => {
            let record: DsseRekord = serde_json::from_slice(&body)
                .map_err(|error| step(format!("the dsse body is malformed: {error}")))?;
            check_payload_hash(&record.spec.payload_hash, payload).map_err(step)?;
            let recorded = record
                .spec
                .signatures
                .iter()
                .map(|recorded| {
                    Ok((
                        decode_base64(&recorded.signature)?,
                        recorded_certificate(&recorded.verifier)?,
                    ))
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|reason| step(format!("the entry's signatures: {reason}")))?;
            check_recorded_signatures(&recorded, signatures, leaf).map_err(step)
        }
        (
            ("intoto", "0.0.2"),
            Content::Envelope {
                payload_type,
                payload,
                signatures,
            },
        ) => {
            let record: IntotoRekord = serde_json::from_slice(&body)
                .map_err(|error| step(format!("the intoto body is malformed: {error}")))?;
            let content = record.spec.content;
            check_payload_hash(&content.payload_hash, payload).map_err(step)?;
            if content.envelope.payload_type != *payload_type {
                return Err(step(format!(
                    "the entry records payload type {:?}, the envelope has {payload_type:?}",
                    content.envelope.payload_type
                )));
            }
            let recorded = content
                .envelope
                .signatures
                .iter()
                .map(|recorded| {
                    let signature = String::from_utf8(decode_base64(&recorded.sig)?)
                        .map_err(|_| "a signature is not base64 text".to_owned())?;
                    Ok((
                        decode_base64(&signature)?,
                        recorded_certificate(&recorded.public_key)?,
                    ))
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|reason| step(format!("the entry's signatures: {reason}")))?;
            check_recorded_signatures(&recorded, signatures, leaf).map_err(step)
        }
        ((kind, version), Content::Message { .. }) => Err(step(format!(
            "a message signature must be logged as hashedrekord 0.0.1, not {kind} {version}"
        ))),
        ((kind, version), Content::Envelope { .. }) => Err(step(format!(
            "a DSSE envelope must be logged as dsse 0.0.1 or intoto 0.0.2, not {kind} {version}"
        ))),
    }
}

fn check_payload_hash(recorded: &HashValue, payload: &[u8]) -> Result<(), String> {
    let payload_hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, payload));
    if recorded.algorithm == "sha256" && recorded.value == payload_hash {
        return Ok(());
    }
    Err(format!(
        "the entry records payload hash {}:{}, but the envelope's payload is sha256:{payload_hash}",
        recorded.algorithm, recorded.value
    ))
}

/// Checks that the entry records the envelope's signatures, in order, each by `leaf`.
fn check_recorded_signatures(
    recorded: &[(Vec<u8>, Vec<u8>)],
    signatures: &[Vec<u8>],
    leaf: &Certificate,
) -> Result<(), String> {
    if recorded.len() != signatures.len() {
        return Err(format!(
            "the entry records {} signatures, the envelope has {}",
            recorded.len(),
            signatures.len()
        ));
    }
    for ((recorded_signature, certificate), signature) in recorded.iter().zip(signatures) {
        if recorded_signature != signature {
            return Err("the entry records another signature".to_owned());
        }
        if certificate != leaf.der() {
            return Err("the entry records another certificate".to_owned());
        }
    }
    Ok(())
}

/// Finds the trusted authority that issued `leaf`, and checks its chain up to its root.
fn check_chain<'r>(
    leaf: &Certificate,
    root: &'r TrustedRoot,
) -> Result<&'r CertificateAuthority, SignatureError> {
    let step = |reason: String| refuse(BundleStep::CertificateChain, reason);
    if root.authorities.is_empty() {
        return Err(step(
            "the trusted root has no certificate authorities".to_owned(),
        ));
    }
    let mut refusals = Vec::new();
    for authority in &root.authorities {
        match check_authority_issued(leaf, authority) {
            Ok(()) => return Ok(authority),
            Err(reason) => refusals.push(format!("{}: {reason}", authority.name)),
        }
    }
    Err(step(format!(
        "no trusted certificate authority issued the certificate ({})",
        refusals.join("; ")
    )))
}

fn check_authority_issued(
    leaf: &Certificate,
    authority: &CertificateAuthority,
) -> Result<(), String> {
    let mut child = leaf;
    for issuer in &authority.chain {
        if !issuer.is_ca() {
            return Err(format!("{:?} is not a CA certificate", issuer.subject()));
        }
        child.check_issued_by(issuer)?;
        child = issuer;
    }
    Ok(())
}

fn check_validity(
    leaf: &Certificate,
    authority: &CertificateAuthority,
    time: i64,
) -> Result<(), SignatureError> {
    let step = |reason: String| refuse(BundleStep::CertificateValidity, reason);
    if !authority.valid_for.contains(time) {
        return Err(step(format!(
            "certificate authority {} was not trusted at the integrated time {time}",
            authority.name
        )));
    }
    for certificate in std::iter::once(leaf).chain(&authority.chain) {
        certificate.check_valid_at(time).map_err(step)?;
    }
    Ok(())
}

fn check_named_digest(
    algorithm: &str,
    digest: &[u8],
    expected: &Digest,
) -> Result<(), SignatureError> {
    let expected_algorithm = match expected.algorithm() {
        Algorithm::Sha256 => "SHA2_256",
        Algorithm::Sha512 => "SHA2_512",
    };
    if algorithm == expected_algorithm && hex::encode(digest) == expected.hex() {
        return Ok(());
    }
    Err(refuse(
        BundleStep::ArtifactDigest,
        format!(
            "the message signature names {algorithm}:{}, expected {expected}",
            hex::encode(digest)
        ),
    ))
}

/// Verifies the content signature with the leaf's key, and that it is about `expected`.
fn check_content(
    content: Content,
    key: &PublicKey,
    expected: &Digest,
) -> Result<Signed, SignatureError> {
    match content {
        Content::Message { signature, .. } => {
            let digest = hex::decode(expected.hex()).expect("a digest is hex");
            key.verify_prehashed(&digest, &signature)
                .map_err(|reason| {
                    refuse(
                        BundleStep::ContentSignature,
                        format!("message signature over {expected}: {reason}"),
                    )
                })?;
            Ok(Signed::Artifact(expected.clone()))
        }
        Content::Envelope {
            payload_type,
            payload,
            signatures,
        } => {
            let message = pae(&payload_type, &payload);
            // A P-384 leaf's envelope is hashed with SHA-384 by some clients (the key's
            // own hash) and SHA-256 by others (sigstore-python); either is its signature.
            let verifies = |signature: &Vec<u8>| {
                key.verify(&message, signature)
                    || key.verify_with_hash(CertificateHash::Sha256, &message, signature)
            };
            if !signatures.iter().any(verifies) {
                return Err(refuse(
                    BundleStep::ContentSignature,
                    "the DSSE envelope's signature does not verify with the certificate's key",
                ));
            }
            check_statement_subject(&payload_type, &payload, expected)?;
            Ok(Signed::Payload {
                payload_type,
                payload,
            })
        }
    }
}

#[derive(Deserialize)]
struct Statement {
    #[serde(default)]
    subject: Vec<Subject>,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

fn check_statement_subject(
    payload_type: &str,
    payload: &[u8],
    expected: &Digest,
) -> Result<(), SignatureError> {
    let step = |reason: String| refuse(BundleStep::ArtifactDigest, reason);
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(step(format!(
            "the DSSE payload type is {payload_type:?}, expected {IN_TOTO_PAYLOAD_TYPE:?}"
        )));
    }
    let statement: Statement = serde_json::from_slice(payload)
        .map_err(|error| step(format!("the in-toto statement is malformed: {error}")))?;
    let algorithm = expected.algorithm().name();
    let names_expected = |subject: &Subject| {
        subject
            .digest
            .get(algorithm)
            .is_some_and(|hex| hex.eq_ignore_ascii_case(expected.hex()))
    };
    if statement.subject.iter().any(names_expected) {
        return Ok(());
    }
    let named: Vec<String> = statement
        .subject
        .iter()
        .flat_map(|subject| {
            subject
                .digest
                .iter()
                .map(|(algorithm, hex)| format!("{algorithm}:{hex}"))
        })
        .collect();
    Err(step(format!(
        "the in-toto statement names {}, not {expected}",
        if named.is_empty() {
            "no subject".to_owned()
        } else {
            named.join(", ")
        }
    )))
}
