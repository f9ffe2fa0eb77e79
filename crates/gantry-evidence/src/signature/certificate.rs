//! X.509 certificates as Sigstore uses them: chain signatures, validity, code-signing
//! usage, subject alternative names and Fulcio's OIDC issuer extension.

use x509_cert::der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, Utf8StringRef};
use x509_cert::der::{Decode, Encode, Reader, SliceReader};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use super::key::{CertificateHash, PublicKey};

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Fulcio's OIDC issuer, a DER `UTF8String` (the "v2" extension).
const FULCIO_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio's first OIDC issuer extension: the issuer's bytes, not DER.
const FULCIO_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's `otherName` SAN for identities that are neither emails nor URIs.
const FULCIO_USERNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7");

/// A parsed certificate, with the bytes its issuer signed.
#[derive(Debug, Clone)]
pub(crate) struct Certificate {
    der: Vec<u8>,
    parsed: x509_cert::Certificate,
    /// The DER `tbsCertificate`, exactly as it came.
    tbs: Vec<u8>,
    signature: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

impl Certificate {
    pub(crate) fn from_der(der: &[u8]) -> Result<Certificate, String> {
        let parsed = x509_cert::Certificate::from_der(der)
            .map_err(|error| format!("not a DER X.509 certificate: {error}"))?;
        let tbs = raw_tbs(der).map_err(|error| format!("not a DER X.509 certificate: {error}"))?;
        let signature = parsed
            .signature
            .as_bytes()
            .ok_or("the certificate's signature has unused bits")?
            .to_vec();
        let validity = &parsed.tbs_certificate.validity;
        Ok(Certificate {
            der: der.to_vec(),
            tbs,
            signature,
            not_before: unix_seconds(validity.not_before),
            not_after: unix_seconds(validity.not_after),
            parsed,
        })
    }

    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject's distinguished name, for messages.
    pub(crate) fn subject(&self) -> String {
        self.parsed.tbs_certificate.subject.to_string()
    }

    pub(crate) fn public_key(&self) -> Result<PublicKey, String> {
        let spki = self
            .parsed
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|error| error.to_string())?;
        PublicKey::from_spki_der(&spki).map_err(|error| error.to_string())
    }

    /// Checks that `issuer` signed this certificate: the names chain and the signature
    /// over the TBS bytes verifies with the issuer's key.
    pub(crate) fn check_issued_by(&self, issuer: &Certificate) -> Result<(), String> {
        if self.parsed.tbs_certificate.issuer != issuer.parsed.tbs_certificate.subject {
            return Err(format!(
                "issuer is {:?}, not {:?}",
                self.parsed.tbs_certificate.issuer.to_string(),
                issuer.subject()
            ));
        }
        let oid = self.parsed.signature_algorithm.oid;
        let hash = if oid == ECDSA_WITH_SHA256 {
            CertificateHash::Sha256
        } else if oid == ECDSA_WITH_SHA384 {
            CertificateHash::Sha384
        } else if oid == ID_ED25519 {
            CertificateHash::None
        } else {
            return Err(format!(
                "signature algorithm {oid} is not supported: use ECDSA with SHA-256 or SHA-384, or Ed25519"
            ));
        };
        let key = issuer
            .public_key()
            .map_err(|error| format!("issuer {:?} key: {error}", issuer.subject()))?;
        if key.verify_with_hash(hash, &self.tbs, &self.signature) {
            Ok(())
        } else {
            Err(format!(
                "signature does not verify with the key of {:?}",
                issuer.subject()
            ))
        }
    }

    /// Whether the certificate may issue others (basic constraints `cA`).
    pub(crate) fn is_ca(&self) -> bool {
        matches!(
            self.parsed.tbs_certificate.get::<BasicConstraints>(),
            Ok(Some((_, BasicConstraints { ca: true, .. })))
        )
    }

    /// Checks that `time` (Unix seconds) lies within the certificate's validity.
    pub(crate) fn check_valid_at(&self, time: i64) -> Result<(), String> {
        if (self.not_before..=self.not_after).contains(&time) {
            Ok(())
        } else {
            Err(format!(
                "{:?} is valid from {} to {} (Unix seconds), not at {time}",
                self.subject(),
                self.not_before,
                self.not_after
            ))
        }
    }

    /// Checks the certificate may sign code: it is no CA, its key usage includes digital
    /// signatures, and its extended key usage names code signing (as Fulcio issues them
    /// and as Sigstore's clients check).
    pub(crate) fn check_code_signing(&self) -> Result<(), String> {
        if self.is_ca() {
            return Err("the signing certificate is a CA certificate".to_owned());
        }
        match self.parsed.tbs_certificate.get::<KeyUsage>() {
            Ok(Some((_, usage))) if usage.digital_signature() => {}
            Ok(Some(_)) => return Err("key usage does not include digital signatures".to_owned()),
            Ok(None) => return Err("the certificate has no key usage".to_owned()),
            Err(error) => return Err(format!("key usage is malformed: {error}")),
        }
        match self.parsed.tbs_certificate.get::<ExtendedKeyUsage>() {
            Ok(Some((_, usage))) if usage.0.contains(&CODE_SIGNING) => Ok(()),
            Ok(Some(_)) => Err("extended key usage does not include code signing".to_owned()),
            Ok(None) => Err("the certificate has no extended key usage".to_owned()),
            Err(error) => Err(format!("extended key usage is malformed: {error}")),
        }
    }

    /// The identities the certificate names: email and URI subject alternative names,
    /// and Fulcio's `otherName` username.
    pub(crate) fn identities(&self) -> Result<Vec<String>, String> {
        let names = match self.parsed.tbs_certificate.get::<SubjectAltName>() {
            Ok(Some((_, names))) => names.0,
            Ok(None) => return Err("the certificate has no subject alternative name".to_owned()),
            Err(error) => return Err(format!("subject alternative name is malformed: {error}")),
        };
        Ok(names
            .iter()
            .filter_map(|name| match name {
                GeneralName::Rfc822Name(email) => Some(email.as_str().to_owned()),
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.as_str().to_owned()),
                GeneralName::OtherName(other) if other.type_id == FULCIO_USERNAME => other
                    .value
                    .decode_as::<Utf8StringRef<'_>>()
                    .ok()
                    .map(|text| text.as_str().to_owned()),
                _ => None,
            })
            .collect())
    }

    /// The OIDC issuer Fulcio recorded: the DER `UTF8String` extension, or else the older
    /// raw one.
    pub(crate) fn fulcio_issuer(&self) -> Result<String, String> {
        let extensions = self
            .parsed
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[]);
        if let Some(extension) = extensions.iter().find(|e| e.extn_id == FULCIO_ISSUER_V2) {
            return Utf8StringRef::from_der(extension.extn_value.as_bytes())
                .map(|text| text.as_str().to_owned())
                .map_err(|error| {
                    format!("the issuer extension {FULCIO_ISSUER_V2} is not a UTF8String: {error}")
                });
        }
        if let Some(extension) = extensions.iter().find(|e| e.extn_id == FULCIO_ISSUER_V1) {
            return String::from_utf8(extension.extn_value.as_bytes().to_vec())
                .map_err(|_| format!("the issuer extension {FULCIO_ISSUER_V1} is not UTF-8"));
        }
        Err(format!(
            "the certificate has no OIDC issuer extension ({FULCIO_ISSUER_V2} or {FULCIO_ISSUER_V1})"
        ))
    }
}

/// X.509 times run from 1950 to 9999, so they fit Unix seconds in an `i64`.
fn unix_seconds(time: x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The `tbsCertificate` bytes as they are in `der`. Re-encoding the parsed form could
/// differ from what the issuer signed, so the bytes are cut out of the input instead.
fn raw_tbs(der: &[u8]) -> x509_cert::der::Result<Vec<u8>> {
    let mut reader = SliceReader::new(der)?;
    let tbs = reader.sequence(|certificate| {
        let tbs: AnyRef<'_> = certificate.decode()?;
        let _algorithm: AnyRef<'_> = certificate.decode()?;
        let _signature: BitStringRef<'_> = certificate.decode()?;
        Ok(tbs)
    })?;
    reader.finish(())?;
    tbs.to_der()
}
