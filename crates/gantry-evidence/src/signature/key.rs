//! Public keys: parsed from PEM or DER `SubjectPublicKeyInfo`, and the signature checks
//! made with them.

use std::fmt;

use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA384_ASN1, ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1,
    ED25519, UnparsedPublicKey, VerificationAlgorithm,
};
use x509_cert::der::Decode;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoRef;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A public key that verifies signatures: ECDSA on P-256 or P-384, or Ed25519.
///
/// ECDSA signatures are ASN.1 DER, over SHA-256 for P-256 keys and SHA-384 for P-384
/// keys (the pairs Sigstore names `PKIX_ECDSA_P256_SHA_256` and
/// `PKIX_ECDSA_P384_SHA_384`); Ed25519 signs the message itself. Public keys are not
/// secret, so `Debug` shows the key's fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    /// The SEC1 uncompressed point for ECDSA, the 32 key bytes for Ed25519.
    bytes: Vec<u8>,
    /// The whole DER `SubjectPublicKeyInfo`, which Sigstore hashes into key and log IDs.
    spki_der: Vec<u8>,
}

/// The kinds of key a [`PublicKey`] can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
            KeyAlgorithm::EcdsaP384 => "ECDSA P-384",
            KeyAlgorithm::Ed25519 => "Ed25519",
        })
    }
}

/// Why bytes are not a usable public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("public key is not PEM: {0}")]
    NotPem(String),
    #[error("PEM block is {0:?}, expected \"PUBLIC KEY\" (a SubjectPublicKeyInfo)")]
    WrongPemLabel(String),
    #[error("public key is not a DER SubjectPublicKeyInfo: {0}")]
    NotSubjectPublicKeyInfo(String),
    #[error("public key algorithm {0} is not supported: use ECDSA P-256, ECDSA P-384 or Ed25519")]
    UnsupportedAlgorithm(String),
    #[error("elliptic curve {0} is not supported: use P-256 or P-384")]
    UnsupportedCurve(String),
    #[error("{algorithm} public key bytes are invalid: {reason}")]
    BadKeyBytes {
        algorithm: KeyAlgorithm,
        reason: String,
    },
}

impl PublicKey {
    /// Parses a PEM `-----BEGIN PUBLIC KEY-----` block (as `cosign generate-key-pair`
    /// and `openssl pkey -pubout` write).
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let block = pem::parse(text).map_err(|error| KeyError::NotPem(error.to_string()))?;
        if block.tag() != "PUBLIC KEY" {
            return Err(KeyError::WrongPemLabel(block.tag().to_owned()));
        }
        PublicKey::from_spki_der(block.contents())
    }

    /// Parses a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|error| KeyError::NotSubjectPublicKeyInfo(error.to_string()))?;
        let Some(bytes) = spki.subject_public_key.as_bytes() else {
            return Err(KeyError::NotSubjectPublicKeyInfo(
                "the key bit string has unused bits".to_owned(),
            ));
        };
        let oid = spki.algorithm.oid;
        let algorithm = if oid == ID_EC_PUBLIC_KEY {
            let curve = spki.algorithm.parameters_oid().map_err(|_| {
                KeyError::UnsupportedCurve("(parameters are not a named curve)".to_owned())
            })?;
            if curve == SECP256R1 {
                KeyAlgorithm::EcdsaP256
            } else if curve == SECP384R1 {
                KeyAlgorithm::EcdsaP384
            } else {
                return Err(KeyError::UnsupportedCurve(curve.to_string()));
            }
        } else if oid == ID_ED25519 {
            KeyAlgorithm::Ed25519
        } else if oid == RSA_ENCRYPTION {
            return Err(KeyError::UnsupportedAlgorithm(format!("RSA ({oid})")));
        } else {
            return Err(KeyError::UnsupportedAlgorithm(oid.to_string()));
        };
        let bytes = check_key_bytes(algorithm, bytes)?;
        Ok(PublicKey {
            algorithm,
            bytes,
            spki_der: der.to_vec(),
        })
    }

    /// Which kind of key this is.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The SHA-256 of the DER `SubjectPublicKeyInfo`: the ID by which Sigstore names
    /// transparency logs and keys, as lower-case hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.key_id())
    }

    pub(crate) fn key_id(&self) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.spki_der);
        let mut id = [0; 32];
        id.copy_from_slice(digest.as_ref());
        id
    }

    /// Whether `signature` is this key's signature over `message`, with this key's own
    /// hash (SHA-256 for P-256, SHA-384 for P-384, none for Ed25519).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let algorithm: &'static dyn VerificationAlgorithm = match self.algorithm {
            KeyAlgorithm::EcdsaP256 => &ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::EcdsaP384 => &ECDSA_P384_SHA384_ASN1,
            KeyAlgorithm::Ed25519 => &ED25519,
        };
        UnparsedPublicKey::new(algorithm, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }

    /// Verifies an X.509 signature, whose hash the certificate names rather than the key.
    pub(crate) fn verify_with_hash(
        &self,
        hash: CertificateHash,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let algorithm: &'static dyn VerificationAlgorithm = match (self.algorithm, hash) {
            (KeyAlgorithm::EcdsaP256, CertificateHash::Sha256) => &ECDSA_P256_SHA256_ASN1,
            (KeyAlgorithm::EcdsaP256, CertificateHash::Sha384) => &ECDSA_P256_SHA384_ASN1,
            (KeyAlgorithm::EcdsaP384, CertificateHash::Sha256) => &ECDSA_P384_SHA256_ASN1,
            (KeyAlgorithm::EcdsaP384, CertificateHash::Sha384) => &ECDSA_P384_SHA384_ASN1,
            (KeyAlgorithm::Ed25519, CertificateHash::None) => &ED25519,
            _ => return false,
        };
        UnparsedPublicKey::new(algorithm, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }

    /// Verifies an ECDSA signature over an already computed digest, as a Sigstore
    /// message signature is made: the artifact is hashed once (SHA-256, whatever the
    /// curve), and only its digest is at hand here. `ring` hashes the message itself,
    /// so this uses `p256` and `p384`.
    pub(crate) fn verify_prehashed(&self, digest: &[u8], signature: &[u8]) -> Result<(), String> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let mismatch = || "the signature does not match the artifact digest".to_owned();
        let not_der = || "the signature is not an ASN.1 DER ECDSA signature".to_owned();
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes)
                    .map_err(|_| "the P-256 key is not a curve point".to_owned())?;
                let signature =
                    p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| not_der())?;
                key.verify_prehash(digest, &signature)
                    .map_err(|_| mismatch())
            }
            KeyAlgorithm::EcdsaP384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes)
                    .map_err(|_| "the P-384 key is not a curve point".to_owned())?;
                let signature =
                    p384::ecdsa::DerSignature::from_bytes(signature).map_err(|_| not_der())?;
                key.verify_prehash(digest, &signature)
                    .map_err(|_| mismatch())
            }
            KeyAlgorithm::Ed25519 => Err(
                "an Ed25519 key cannot sign a message by its digest: use a DSSE envelope"
                    .to_owned(),
            ),
        }
    }
}

/// The hashes X.509 signatures here may use (`None` for Ed25519, which hashes itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertificateHash {
    Sha256,
    Sha384,
    None,
}

fn check_key_bytes(algorithm: KeyAlgorithm, bytes: &[u8]) -> Result<Vec<u8>, KeyError> {
    let bad = |reason: &str| KeyError::BadKeyBytes {
        algorithm,
        reason: reason.to_owned(),
    };
    match algorithm {
        KeyAlgorithm::EcdsaP256 => {
            // `p256` checks that the point is on the curve and turns a compressed point
            // into the uncompressed form that `ring` takes.
            let key = p256::PublicKey::from_sec1_bytes(bytes)
                .map_err(|_| bad("not a point on the curve"))?;
            Ok(
                p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, false)
                    .as_bytes()
                    .to_vec(),
            )
        }
        KeyAlgorithm::EcdsaP384 => {
            // `ring` checks the point itself when it verifies.
            if bytes.len() == 97 && bytes[0] == 4 {
                Ok(bytes.to_vec())
            } else {
                Err(bad("expected a 97-byte uncompressed point"))
            }
        }
        KeyAlgorithm::Ed25519 => {
            if bytes.len() == 32 {
                Ok(bytes.to_vec())
            } else {
                Err(bad(&format!("expected 32 bytes, found {}", bytes.len())))
            }
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({} sha256:{})",
            self.algorithm,
            self.fingerprint()
        )
    }
}

/// A key the configuration trusts, under the name that reports and errors use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub name: String,
    pub key: PublicKey,
}

impl TrustedKey {
    /// A trusted key named `name`, from PEM text.
    pub fn from_pem(name: impl Into<String>, pem: &str) -> Result<TrustedKey, KeyError> {
        Ok(TrustedKey {
            name: name.into(),
            key: PublicKey::from_pem(pem)?,
        })
    }
}
