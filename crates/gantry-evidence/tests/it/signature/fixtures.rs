//! Keys, certificates, transparency-log entries and Sigstore bundles, all made fresh
//! for each test: a small private Sigstore (root and intermediate CA, a Rekor-like
//! log, a CT log) whose trusted root the verifier is given.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_core::Digest;
use gantry_evidence::signature::{TrustedKey, TrustedRoot, pae};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, SanType, SerialNumber,
};
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use serde_json::{Value, json};

/// DER prefix of a P-256 `SubjectPublicKeyInfo`, before the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// DER prefix of an Ed25519 `SubjectPublicKeyInfo`, before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const SUBJECT: &str =
    "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.2.3";

pub fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// PEM as OpenSSL and Python's `cryptography` write it: LF line ends, 64 columns.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = base64(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap());
        text.push('\n');
    }
    text.push_str("-----END ");
    text.push_str(label);
    text.push_str("-----\n");
    text
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest(&SHA256, bytes).as_ref().try_into().unwrap()
}

pub fn digest_of(bytes: &[u8]) -> Digest {
    format!("sha256:{}", hex::encode(sha256(bytes)))
        .parse()
        .unwrap()
}

/// DER prefix of a P-384 `SubjectPublicKeyInfo`, before the 97-byte point.
const P384_SPKI_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

/// A signing key of a kind that trusted keys or certificates may have.
pub enum SigningKey {
    P256(EcdsaKeyPair),
    /// `ring` signs P-384 with SHA-384 only; Sigstore message signatures need SHA-256
    /// digests signed as they are, which `p384` does.
    P384(p384::ecdsa::SigningKey),
    Ed25519(Ed25519KeyPair),
}

/// The public half of a P-384 key, as rcgen takes it for a certificate's subject.
struct P384Public(Vec<u8>);

impl rcgen::PublicKeyData for P384Public {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &PKCS_ECDSA_P384_SHA384
    }
}

impl SigningKey {
    pub fn p256() -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        SigningKey::p256_from_pkcs8(pkcs8.as_ref())
    }

    pub fn p256_from_pkcs8(pkcs8: &[u8]) -> SigningKey {
        let rng = SystemRandom::new();
        SigningKey::P256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng).unwrap(),
        )
    }

    pub fn p384() -> SigningKey {
        use ring::rand::SecureRandom;
        let rng = SystemRandom::new();
        loop {
            let mut scalar = [0; 48];
            rng.fill(&mut scalar).unwrap();
            if let Ok(key) = p384::ecdsa::SigningKey::from_slice(&scalar) {
                return SigningKey::P384(key);
            }
        }
    }

    fn point(&self) -> Vec<u8> {
        match self {
            SigningKey::P256(key) => key.public_key().as_ref().to_vec(),
            SigningKey::P384(key) => key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            SigningKey::Ed25519(key) => key.public_key().as_ref().to_vec(),
        }
    }

    pub fn ed25519() -> SigningKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        SigningKey::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    pub fn spki_der(&self) -> Vec<u8> {
        let prefix: &[u8] = match self {
            SigningKey::P256(_) => &P256_SPKI_PREFIX,
            SigningKey::P384(_) => &P384_SPKI_PREFIX,
            SigningKey::Ed25519(_) => &ED25519_SPKI_PREFIX,
        };
        [prefix, &self.point()].concat()
    }

    pub fn public_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der())
    }

    pub fn trusted(&self, name: &str) -> TrustedKey {
        TrustedKey::from_pem(name, &self.public_pem()).unwrap()
    }

    /// The log ID Sigstore gives a key: the SHA-256 of its DER `SubjectPublicKeyInfo`.
    pub fn key_id(&self) -> [u8; 32] {
        sha256(&self.spki_der())
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::P256(key) => key
                .sign(&SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec(),
            SigningKey::P384(key) => {
                let signature: p384::ecdsa::DerSignature =
                    p384::ecdsa::signature::Signer::sign(key, message);
                signature.as_bytes().to_vec()
            }
            SigningKey::Ed25519(key) => key.sign(message).as_ref().to_vec(),
        }
    }

    /// Signs an artifact as a Sigstore message signature: its SHA-256 digest, signed as
    /// it is (for P-256 this is the same as signing the artifact).
    pub fn sign_artifact(&self, artifact: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::P384(key) => {
                let signature: p384::ecdsa::DerSignature =
                    p384::ecdsa::signature::hazmat::PrehashSigner::sign_prehash(
                        key,
                        &sha256(artifact),
                    )
                    .unwrap();
                signature.as_bytes().to_vec()
            }
            _ => self.sign(artifact),
        }
    }
}

/// A cosign simple-signing payload for `digest`.
pub fn cosign_payload(digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": "registry.example/acme/shop"},
            "image": {"docker-manifest-digest": digest.as_str()},
            "type": "cosign container image signature",
        },
        "optional": {"creator": "gantry tests"},
    }))
    .unwrap()
}

/// An in-toto v1 statement about `digest`.
pub fn statement(digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.example/acme/shop", "digest": {"sha256": digest.hex()}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://example.com/test"}},
    }))
    .unwrap()
}

/// A DSSE envelope signed by `keys`.
pub fn envelope(payload_type: &str, payload: &[u8], keys: &[&SigningKey]) -> Value {
    let message = pae(payload_type, payload);
    json!({
        "payloadType": payload_type,
        "payload": base64(payload),
        "signatures": keys
            .iter()
            .map(|key| json!({"keyid": "", "sig": base64(&key.sign(&message))}))
            .collect::<Vec<_>>(),
    })
}

/// Noon on 2024-06-01 UTC, in Unix seconds: when test certificates are issued.
pub const ISSUED_AT: u64 = 1_717_243_200;
/// Fulcio's certificates live ten minutes.
pub const LEAF_LIFETIME: u64 = 600;

fn dn(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "gantry-test");
    name.push(DnType::CommonName, common_name);
    name
}

/// A DER TLV with a definite length.
pub fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The `tbsCertificate` element of a DER certificate.
fn tbs_of(certificate: &[u8]) -> Vec<u8> {
    fn header(bytes: &[u8]) -> (usize, usize) {
        let first = bytes[1] as usize;
        if first < 0x80 {
            (2, first)
        } else {
            let count = first & 0x7f;
            let len = bytes[2..2 + count]
                .iter()
                .fold(0, |acc, b| acc << 8 | *b as usize);
            (2 + count, len)
        }
    }
    let (outer, _) = header(certificate);
    let inner = &certificate[outer..];
    let (head, len) = header(inner);
    inner[..head + len].to_vec()
}

/// How a leaf names its OIDC issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuerExtension {
    /// 1.3.6.1.4.1.57264.1.8, a DER `UTF8String`.
    V2,
    /// 1.3.6.1.4.1.57264.1.1, the raw bytes.
    V1,
    /// Both, as Fulcio writes today (and as sigstore-python's policy reads .1.1).
    Both,
}

/// What a leaf certificate says and when it holds.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    pub email: Option<String>,
    pub uri: Option<String>,
    pub issuer: String,
    pub issuer_extension: IssuerExtension,
    pub not_before: u64,
    pub not_after: u64,
    pub code_signing: bool,
    /// Key usage `digitalSignature`, or else `keyEncipherment`.
    pub digital_signature: bool,
    /// A P-384 key, as some Sigstore clients make, rather than P-256.
    pub p384: bool,
}

impl Default for LeafSpec {
    fn default() -> LeafSpec {
        LeafSpec {
            email: None,
            uri: Some(SUBJECT.to_owned()),
            issuer: ISSUER.to_owned(),
            issuer_extension: IssuerExtension::Both,
            not_before: ISSUED_AT,
            not_after: ISSUED_AT + LEAF_LIFETIME,
            code_signing: true,
            digital_signature: true,
            p384: false,
        }
    }
}

/// A signing certificate and its key.
pub struct Leaf {
    pub der: Vec<u8>,
    pub key: SigningKey,
}

/// What a bundle signs.
pub enum Content {
    /// A message signature over the artifact's bytes.
    Message(Vec<u8>),
    /// A DSSE envelope, logged as a `dsse` entry.
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
    },
    /// A DSSE envelope, logged as an `intoto` 0.0.2 entry (as cosign and npm did).
    Intoto {
        payload_type: String,
        payload: Vec<u8>,
    },
}

/// A private Sigstore: root and intermediate CA, a transparency log and a CT log.
pub struct Pki {
    root: rcgen::Certificate,
    intermediate_key: KeyPair,
    intermediate: rcgen::Certificate,
    log_pkcs8: Vec<u8>,
    pub log: SigningKey,
    ct_log_pkcs8: Vec<u8>,
    pub ct_log: SigningKey,
}

fn p256_pkcs8() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

impl Pki {
    pub fn new() -> Pki {
        Pki::with_logs(p256_pkcs8(), p256_pkcs8())
    }

    /// Another certificate authority, with the same logs.
    pub fn another_authority(&self) -> Pki {
        Pki::with_logs(self.log_pkcs8.clone(), self.ct_log_pkcs8.clone())
    }

    fn with_logs(log_pkcs8: Vec<u8>, ct_log_pkcs8: Vec<u8>) -> Pki {
        let ca = |name: &str| {
            let mut params = CertificateParams::default();
            params.distinguished_name = dn(name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2040, 1, 1);
            params
        };
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let root = ca("gantry-test-root").self_signed(&root_key).unwrap();
        let intermediate_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = ca("gantry-test-intermediate");
        params.use_authority_key_identifier_extension = true;
        let intermediate = params
            .signed_by(&intermediate_key, &root, &root_key)
            .unwrap();
        Pki {
            root,
            intermediate_key,
            intermediate,
            log: SigningKey::p256_from_pkcs8(&log_pkcs8),
            log_pkcs8,
            ct_log: SigningKey::p256_from_pkcs8(&ct_log_pkcs8),
            ct_log_pkcs8,
        }
    }

    /// The `trusted_root.json` of this Sigstore.
    pub fn trusted_root_json(&self) -> Value {
        let log = |key: &SigningKey, url: &str| {
            json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": base64(&key.spki_der()),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2020-01-01T00:00:00Z"},
                },
                "logId": {"keyId": base64(&key.key_id())},
            })
        };
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(&self.log, "https://rekor.gantry.test")],
            "certificateAuthorities": [{
                "subject": {"organization": "gantry-test", "commonName": "gantry-test-intermediate"},
                "uri": "https://fulcio.gantry.test",
                "certChain": {"certificates": [
                    {"rawBytes": base64(self.intermediate.der())},
                    {"rawBytes": base64(self.root.der())},
                ]},
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }],
            "ctlogs": [log(&self.ct_log, "https://ctfe.gantry.test")],
            "timestampAuthorities": [],
        })
    }

    pub fn trusted_root(&self) -> TrustedRoot {
        TrustedRoot::from_json(&serde_json::to_vec(&self.trusted_root_json()).unwrap()).unwrap()
    }

    /// Issues a leaf as Fulcio does: a precertificate's TBS is logged to the CT log,
    /// and the final certificate carries the SCT.
    pub fn issue(&self, spec: &LeafSpec) -> Leaf {
        let p256 = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let key = if spec.p384 {
            SigningKey::p384()
        } else {
            SigningKey::p256_from_pkcs8(p256.serialized_der())
        };
        let p384 = P384Public(key.point());
        let sign_certificate = |params: CertificateParams| {
            if spec.p384 {
                params.signed_by(&p384, &self.intermediate, &self.intermediate_key)
            } else {
                params.signed_by(&p256, &self.intermediate, &self.intermediate_key)
            }
            .unwrap()
        };
        let serial: [u8; 16] = sha256(&key.spki_der())[..16].try_into().unwrap();
        let params = |sct: Option<CustomExtension>| {
            let mut params = CertificateParams::default();
            params.distinguished_name = dn("gantry-test-leaf");
            params.serial_number =
                Some(SerialNumber::from_slice(&[&[0x01], &serial[1..]].concat()));
            params.not_before =
                rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(spec.not_before);
            params.not_after =
                rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(spec.not_after);
            params.use_authority_key_identifier_extension = true;
            params.key_usages = vec![if spec.digital_signature {
                KeyUsagePurpose::DigitalSignature
            } else {
                KeyUsagePurpose::KeyEncipherment
            }];
            params.extended_key_usages = vec![if spec.code_signing {
                ExtendedKeyUsagePurpose::CodeSigning
            } else {
                ExtendedKeyUsagePurpose::EmailProtection
            }];
            if let Some(email) = &spec.email {
                params
                    .subject_alt_names
                    .push(SanType::Rfc822Name(email.as_str().try_into().unwrap()));
            }
            if let Some(uri) = &spec.uri {
                params
                    .subject_alt_names
                    .push(SanType::URI(uri.as_str().try_into().unwrap()));
            }
            let v2 = || {
                CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
                    der_tlv(0x0c, spec.issuer.as_bytes()),
                )
            };
            let v1 = || {
                CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
                    spec.issuer.as_bytes().to_vec(),
                )
            };
            match spec.issuer_extension {
                IssuerExtension::V2 => params.custom_extensions.push(v2()),
                IssuerExtension::V1 => params.custom_extensions.push(v1()),
                IssuerExtension::Both => params.custom_extensions.extend([v1(), v2()]),
            }
            params.custom_extensions.extend(sct);
            params
        };
        let precertificate = sign_certificate(params(None));
        let sct = self.sct_extension(&tbs_of(precertificate.der()), spec.not_before * 1000);
        let certificate = sign_certificate(params(Some(sct)));
        Leaf {
            der: certificate.der().to_vec(),
            key,
        }
    }

    /// An RFC 6962 SCT list extension for a precertificate, signed by the CT log.
    fn sct_extension(&self, precertificate_tbs: &[u8], timestamp_ms: u64) -> CustomExtension {
        let mut signed = vec![0, 0];
        signed.extend(timestamp_ms.to_be_bytes());
        signed.extend([0, 1]);
        signed.extend(sha256(&self.intermediate_key.public_key_der()));
        signed.extend(&(precertificate_tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend(precertificate_tbs);
        signed.extend([0, 0]);
        let signature = self.ct_log.sign(&signed);
        let mut sct = vec![0];
        sct.extend(self.ct_log.key_id());
        sct.extend(timestamp_ms.to_be_bytes());
        sct.extend([0, 0, 4, 3]);
        sct.extend((signature.len() as u16).to_be_bytes());
        sct.extend(signature);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(sct);
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2], der_tlv(0x04, &list))
    }

    /// A Rekor-style entry for `body`, third of five in the log, with a signed entry
    /// timestamp and an inclusion proof with a signed checkpoint.
    pub fn log_entry(&self, kind: &str, body: &[u8], integrated_time: u64) -> Value {
        const INDEX: usize = 2;
        let version = if kind == "intoto" { "0.0.2" } else { "0.0.1" };
        let mut leaves: Vec<[u8; 32]> = (0..5)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect();
        leaves[INDEX] = leaf_hash(body);
        let (root, proof) = merkle_tree(&leaves, INDEX);
        let key_id = self.log.key_id();
        let note = format!(
            "rekor.gantry.test - 4242\n{}\n{}\n",
            leaves.len(),
            base64(&root)
        );
        let note_signature = [&key_id[..4], &self.log.sign(note.as_bytes())].concat();
        let checkpoint = format!(
            "{note}\n\u{2014} rekor.gantry.test {}\n",
            base64(&note_signature)
        );
        let promise = serde_json::to_vec(&json!({
            "body": base64(body),
            "integratedTime": integrated_time,
            "logID": hex::encode(key_id),
            "logIndex": INDEX,
        }))
        .unwrap();
        json!({
            "logIndex": INDEX.to_string(),
            "logId": {"keyId": base64(&key_id)},
            "kindVersion": {"kind": kind, "version": version},
            "integratedTime": integrated_time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": base64(&self.log.sign(&promise))},
            "inclusionProof": {
                "logIndex": INDEX.to_string(),
                "rootHash": base64(&root),
                "treeSize": leaves.len().to_string(),
                "hashes": proof.iter().map(|hash| base64(hash)).collect::<Vec<_>>(),
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": base64(body),
        })
    }

    /// A bundle of `media_type` in which `leaf` signs `content` (with `signer`, which is
    /// the leaf's key unless a test says otherwise), logged at `integrated_time`.
    pub fn bundle(
        &self,
        leaf: &Leaf,
        signer: Option<&SigningKey>,
        content: &Content,
        integrated_time: u64,
        media_type: &str,
    ) -> Value {
        let signer = signer.unwrap_or(&leaf.key);
        let certificate_pem = base64(pem("CERTIFICATE", &leaf.der).as_bytes());
        let (body, kind, content) = match content {
            Content::Message(artifact) => {
                let signature = signer.sign_artifact(artifact);
                let body = json!({
                    "apiVersion": "0.0.1",
                    "kind": "hashedrekord",
                    "spec": {
                        "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sha256(artifact))}},
                        "signature": {"content": base64(&signature), "publicKey": {"content": certificate_pem}},
                    },
                });
                let content = json!({
                    "messageSignature": {
                        "messageDigest": {"algorithm": "SHA2_256", "digest": base64(&sha256(artifact))},
                        "signature": base64(&signature),
                    },
                });
                (body, "hashedrekord", content)
            }
            Content::Dsse {
                payload_type,
                payload,
            } => {
                let envelope = envelope(payload_type, payload, &[signer]);
                let body = json!({
                    "apiVersion": "0.0.1",
                    "kind": "dsse",
                    "spec": {
                        "envelopeHash": {"algorithm": "sha256", "value": hex::encode(sha256(&serde_json::to_vec(&envelope).unwrap()))},
                        "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(payload))},
                        "signatures": [{"signature": envelope["signatures"][0]["sig"], "verifier": certificate_pem}],
                    },
                });
                (body, "dsse", json!({"dsseEnvelope": envelope}))
            }
            Content::Intoto {
                payload_type,
                payload,
            } => {
                let envelope = envelope(payload_type, payload, &[signer]);
                let signature = envelope["signatures"][0]["sig"].as_str().unwrap();
                let body = json!({
                    "apiVersion": "0.0.2",
                    "kind": "intoto",
                    "spec": {"content": {
                        "envelope": {
                            "payloadType": payload_type,
                            "signatures": [{"sig": base64(signature.as_bytes()), "publicKey": certificate_pem}],
                        },
                        "hash": {"algorithm": "sha256", "value": hex::encode(sha256(&serde_json::to_vec(&envelope).unwrap()))},
                        "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(payload))},
                    }},
                });
                (body, "intoto", json!({"dsseEnvelope": envelope}))
            }
        };
        let body = serde_json::to_vec(&body).unwrap();
        let mut material = json!({
            "tlogEntries": [self.log_entry(kind, &body, integrated_time)],
        });
        if media_type.contains("0.3") {
            material["certificate"] = json!({"rawBytes": base64(&leaf.der)});
        } else {
            material["x509CertificateChain"] =
                json!({"certificates": [{"rawBytes": base64(&leaf.der)}]});
        }
        let mut bundle = json!({"mediaType": media_type, "verificationMaterial": material});
        for (field, value) in content.as_object().unwrap() {
            bundle[field] = value.clone();
        }
        bundle
    }
}

pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

pub fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    sha256(&[&[0], leaf].concat())
}

fn node_hash(left: &[u8], right: &[u8]) -> [u8; 32] {
    sha256(&[&[1], left, right].concat())
}

/// The RFC 6962 root of `leaves` and the inclusion proof of leaf `index`.
fn merkle_tree(leaves: &[[u8; 32]], index: usize) -> ([u8; 32], Vec<[u8; 32]>) {
    if leaves.len() == 1 {
        return (leaves[0], Vec::new());
    }
    let split = leaves.len().next_power_of_two() / 2;
    let (left, right) = leaves.split_at(split);
    let (left_root, left_proof) = merkle_tree(left, index.min(split - 1));
    let (right_root, right_proof) = merkle_tree(right, index.saturating_sub(split));
    let proof = if index < split {
        [left_proof, vec![right_root]].concat()
    } else {
        [right_proof, vec![left_root]].concat()
    };
    (node_hash(&left_root, &right_root), proof)
}
