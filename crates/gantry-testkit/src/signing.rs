//! Signatures and attestations as cosign writes them beside an image, made with a fresh
//! ECDSA P-256 key: a `.sig` manifest (simple-signing payload, signature in an
//! annotation) and DSSE-enveloped in-toto statements for `.att` tags or referrers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use crate::image::{Blob, Image, media_types, sha256_digest};

/// DER prefix of a P-256 `SubjectPublicKeyInfo`, before the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// A signing key, P-256 as `cosign generate-key-pair` makes.
#[derive(Debug)]
pub struct TestKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Default for TestKey {
    fn default() -> Self {
        TestKey::generate()
    }
}

impl TestKey {
    pub fn generate() -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("generate a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("read the key back");
        TestKey { pair, rng }
    }

    /// The public key as a `PUBLIC KEY` PEM, as `cosign.pub` holds it.
    pub fn public_pem(&self) -> String {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.pair.public_key().as_ref());
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&self.rng, message)
            .expect("sign")
            .as_ref()
            .to_vec()
    }

    /// A cosign `.sig` manifest signing `digest` (the image's manifest digest) as
    /// `reference` (the repository, as cosign's `docker-reference`).
    pub fn cosign_signature(&self, reference: &str, digest: &str) -> Image {
        let payload = serde_json::to_vec(&json!({
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": null,
        }))
        .expect("JSON");
        let signature = STANDARD.encode(self.sign(&payload));
        attached_manifest(
            Blob::new(SIMPLE_SIGNING, payload),
            json!({"dev.cosignproject.cosign/signature": signature}),
            None,
        )
    }

    /// A DSSE envelope around `statement` (an in-toto statement), signed.
    pub fn dsse(&self, statement: &Value) -> Vec<u8> {
        let payload = serde_json::to_vec(statement).expect("JSON");
        let signature = self.sign(&pae(IN_TOTO, &payload));
        serde_json::to_vec(&json!({
            "payloadType": IN_TOTO,
            "payload": STANDARD.encode(&payload),
            "signatures": [{"keyid": "", "sig": STANDARD.encode(signature)}],
        }))
        .expect("JSON")
    }

    /// A cosign `.att` manifest (or, with `subject`, an OCI 1.1 referrer) holding
    /// `statement` in a signed DSSE envelope.
    pub fn attestation(&self, statement: &Value, subject: Option<&Image>) -> Image {
        let predicate_type = statement["predicateType"].as_str().unwrap_or_default();
        attached_manifest(
            Blob::new(DSSE_ENVELOPE, self.dsse(statement)),
            json!({"predicateType": predicate_type}),
            subject,
        )
    }
}

/// The DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// An in-toto v1 statement about `digest` (`sha256:<hex>`).
pub fn statement(digest: &str, predicate_type: &str, predicate: &Value) -> Value {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "image", "digest": {"sha256": hex}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

fn attached_manifest(layer: Blob, annotations: Value, subject: Option<&Image>) -> Image {
    let config = Blob::new(media_types::OCI_EMPTY, Bytes::from_static(b"{}"));
    let mut layer_descriptor = layer.descriptor();
    layer_descriptor["annotations"] = annotations;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer_descriptor],
    });
    if let Some(subject) = subject {
        manifest["artifactType"] = json!(layer.media_type);
        manifest["subject"] = subject.descriptor();
    }
    let manifest = serde_json::to_vec(&manifest).expect("JSON");
    Image {
        digest: sha256_digest(&manifest),
        manifest,
        media_type: media_types::OCI_MANIFEST.to_owned(),
        config,
        layers: vec![layer],
        foreign: Vec::new(),
    }
}
