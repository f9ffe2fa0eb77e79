//! Signature verification: cosign signatures, DSSE envelopes and Sigstore bundles made
//! here with fresh keys and certificates verify, and each broken part is refused with
//! the step that caught it. `interop` has independent verifiers agree.

mod fixtures;
mod interop;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gantry_core::Digest;
use gantry_evidence::signature::{
    IN_TOTO_PAYLOAD_TYPE, IdentityPolicy, KeyAlgorithm, PublicKey, SignatureError, Signed,
    TrustedKey, TrustedRoot, Verified, verify_bundle, verify_cosign, verify_dsse,
};
use serde_json::{Value, json};

use fixtures::{
    BUNDLE_V03, Content, ISSUED_AT, ISSUER, IssuerExtension, LEAF_LIFETIME, LeafSpec, Pki, SUBJECT,
    SigningKey, base64, cosign_payload, der_tlv, digest_of, envelope, pem, statement,
};

/// One line for a verification's outcome: who signed what, or the refusal.
fn outcome(result: Result<Verified, SignatureError>) -> String {
    match result {
        Ok(Verified { signer, signed }) => match signed {
            Signed::Payload { payload_type, .. } => format!("ok {signer}: {payload_type}"),
            Signed::Artifact(digest) => format!("ok {signer}: artifact {digest}"),
        },
        Err(error) => format!("err {error}"),
    }
}

fn flip_last_byte(base64_text: &str) -> String {
    let mut bytes = STANDARD.decode(base64_text).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    base64(&bytes)
}

fn artifact() -> (Vec<u8>, Digest) {
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    (manifest.to_vec(), digest_of(manifest))
}

fn other_digest() -> Digest {
    digest_of(b"another image")
}

#[test]
fn public_keys_parse_from_pem_and_say_what_is_wrong() {
    let p256 = SigningKey::p256();
    let key = PublicKey::from_pem(&p256.public_pem()).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256);
    assert_eq!(key.fingerprint(), hex::encode(p256.key_id()));
    assert_eq!(
        format!("{key:?}"),
        format!("PublicKey(ECDSA P-256 sha256:{})", key.fingerprint())
    );
    let ed25519 = PublicKey::from_pem(&SigningKey::ed25519().public_pem()).unwrap();
    assert_eq!(ed25519.algorithm(), KeyAlgorithm::Ed25519);

    let check = |text: &str, expect: &str| {
        let got = match PublicKey::from_pem(text) {
            Ok(key) => format!("ok {:?}", key.algorithm()),
            Err(error) => format!("err {error}"),
        };
        assert_eq!(got, expect, "{text}");
    };
    let spki = |algorithm: &[u8], key: &[u8]| {
        let bit_string = der_tlv(0x03, &[&[0], key].concat());
        pem(
            "PUBLIC KEY",
            &der_tlv(0x30, &[&der_tlv(0x30, algorithm)[..], &bit_string].concat()),
        )
    };
    let ec_public_key = der_tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
    let secp256k1 = der_tlv(0x06, &[0x2b, 0x81, 0x04, 0x00, 0x0a]);
    let prime256v1 = der_tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    let rsa = [
        &der_tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        )[..],
        &[0x05, 0x00],
    ]
    .concat();
    let mut off_curve = vec![4];
    off_curve.extend([1; 64]);

    check(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
        "err public key is not PEM: malformedframing",
    );
    check(
        &pem("CERTIFICATE", b"not a certificate"),
        "err PEM block is \"CERTIFICATE\", expected \"PUBLIC KEY\" (a SubjectPublicKeyInfo)",
    );
    check(
        &pem("PUBLIC KEY", b"\x30\x03\x02\x01\x00"),
        "err public key is not a DER SubjectPublicKeyInfo: unexpected ASN.1 DER tag: expected SEQUENCE, got INTEGER at DER byte 2",
    );
    check(
        &spki(&rsa, &der_tlv(0x30, &[0x02, 0x01, 0x03, 0x02, 0x01, 0x03])),
        "err public key algorithm RSA (1.2.840.113549.1.1.1) is not supported: use ECDSA P-256, ECDSA P-384 or Ed25519",
    );
    check(
        &spki(&[&ec_public_key[..], &secp256k1].concat(), &off_curve),
        "err elliptic curve 1.3.132.0.10 is not supported: use P-256 or P-384",
    );
    check(
        &spki(&[&ec_public_key[..], &prime256v1].concat(), &off_curve),
        "err ECDSA P-256 public key bytes are invalid: not a point on the curve",
    );
    check(
        &spki(&der_tlv(0x06, &[0x2b, 0x65, 0x70]), &[7; 31]),
        "err Ed25519 public key bytes are invalid: expected 32 bytes, found 31",
    );
}

#[test]
fn cosign_signatures_verify_with_a_trusted_key() {
    let (_, digest) = artifact();
    let payload = cosign_payload(&digest);
    let release = SigningKey::p256();
    let ed25519 = SigningKey::ed25519();
    let keys = [
        SigningKey::p256().trusted("staging"),
        release.trusted("release"),
        ed25519.trusted("offline"),
    ];
    let check = |key: &SigningKey, expect: &str| {
        let signature = base64(&key.sign(&payload));
        assert_eq!(
            outcome(verify_cosign(&payload, &signature, &digest, &keys)),
            expect
        );
    };
    check(
        &release,
        "ok key release: application/vnd.dev.cosign.simplesigning.v1+json",
    );
    check(
        &ed25519,
        "ok key offline: application/vnd.dev.cosign.simplesigning.v1+json",
    );
}

#[test]
fn cosign_signatures_are_refused_for_the_wrong_bytes_key_or_digest() {
    let (_, digest) = artifact();
    let payload = cosign_payload(&digest);
    let key = SigningKey::p256();
    let keys = [key.trusted("release")];
    let signature = base64(&key.sign(&payload));
    let check =
        |payload: &[u8], signature: &str, digest: &Digest, keys: &[TrustedKey], expect: &str| {
            assert_eq!(
                outcome(verify_cosign(payload, signature, digest, keys)),
                expect
            );
        };
    let not_verified = "err cosign signature does not verify with any trusted key (tried release)";

    let mut flipped = payload.clone();
    let brace = flipped.iter().rposition(|b| *b == b'}').unwrap();
    flipped.insert(brace, b' ');
    check(&flipped, &signature, &digest, &keys, not_verified);
    check(
        &payload,
        &flip_last_byte(&signature),
        &digest,
        &keys,
        not_verified,
    );
    check(
        &payload,
        &signature,
        &digest,
        &[
            SigningKey::p256().trusted("other"),
            SigningKey::ed25519().trusted("third"),
        ],
        "err cosign signature does not verify with any trusted key (tried other, third)",
    );
    check(
        &payload,
        &signature,
        &digest,
        &[],
        "err no trusted keys are configured, so no cosign signature can verify",
    );
    check(
        &payload,
        "not base64!",
        &digest,
        &keys,
        "err cosign signature is malformed: not base64 (Invalid symbol 32, offset 3.)",
    );
    check(
        &payload,
        &signature,
        &other_digest(),
        &keys,
        &format!(
            "err cosign payload names {digest}, expected {}",
            other_digest()
        ),
    );

    let mut document: Value = serde_json::from_slice(&payload).unwrap();
    document["critical"]["type"] = json!("atomic container signature");
    let retyped = serde_json::to_vec(&document).unwrap();
    check(
        &retyped,
        &base64(&key.sign(&retyped)),
        &digest,
        &keys,
        "err cosign payload has type \"atomic container signature\", expected \"cosign container image signature\"",
    );
    let unsigned_json = br#"{"critical": {}}"#;
    check(
        unsigned_json,
        &base64(&key.sign(unsigned_json)),
        &digest,
        &keys,
        "err cosign payload is malformed: missing field `type` at line 1 column 15",
    );
}

#[test]
fn dsse_envelopes_verify_when_one_signature_is_by_a_trusted_key() {
    let (_, digest) = artifact();
    let payload = statement(&digest);
    let untrusted = SigningKey::p256();
    let ci = SigningKey::p256();
    let keys = [SigningKey::ed25519().trusted("offline"), ci.trusted("ci")];
    let envelope = envelope(IN_TOTO_PAYLOAD_TYPE, &payload, &[&untrusted, &ci]);
    let result = verify_dsse(&serde_json::to_vec(&envelope).unwrap(), &keys).unwrap();
    assert_eq!(
        outcome(Ok(result.clone())),
        "ok key ci: application/vnd.in-toto+json"
    );
    assert_eq!(
        result.payload(),
        Some((IN_TOTO_PAYLOAD_TYPE, payload.as_slice()))
    );

    // DSSE allows URL-safe base64, with or without padding.
    let url_safe = |text: &Value| {
        json!(URL_SAFE_NO_PAD.encode(STANDARD.decode(text.as_str().unwrap()).unwrap()))
    };
    let mut recoded = envelope.clone();
    recoded["payload"] = url_safe(&envelope["payload"]);
    recoded["signatures"][1]["sig"] = url_safe(&envelope["signatures"][1]["sig"]);
    assert_eq!(
        outcome(verify_dsse(&serde_json::to_vec(&recoded).unwrap(), &keys)),
        "ok key ci: application/vnd.in-toto+json"
    );

    let ed25519 = SigningKey::ed25519();
    let envelope = envelope_with(&ed25519, "text/plain", b"hello");
    assert_eq!(
        outcome(verify_dsse(&envelope, &[ed25519.trusted("ed")])),
        "ok key ed: text/plain"
    );
}

fn envelope_with(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&envelope(payload_type, payload, &[key])).unwrap()
}

#[test]
fn dsse_envelopes_are_refused_when_nothing_trusted_signed_them() {
    let key = SigningKey::p256();
    let keys = [key.trusted("ci")];
    let good = envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", &[&key]);
    let check = |envelope: Value, expect: &str| {
        assert_eq!(
            outcome(verify_dsse(&serde_json::to_vec(&envelope).unwrap(), &keys)),
            expect
        );
    };
    let not_verified = "err DSSE envelope does not verify with any trusted key (tried ci)";

    let mut changed = good.clone();
    changed["payload"] = json!(base64(b"{ }"));
    check(changed, not_verified);
    let mut changed = good.clone();
    changed["payloadType"] = json!("application/json");
    check(changed, not_verified);
    let mut changed = good.clone();
    changed["signatures"][0]["sig"] = json!(flip_last_byte(
        good["signatures"][0]["sig"].as_str().unwrap()
    ));
    check(changed, not_verified);
    check(
        envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", &[&SigningKey::p256()]),
        not_verified,
    );
    let mut changed = good.clone();
    changed["signatures"] = json!([]);
    check(changed, "err DSSE envelope has no signatures");
    check(
        json!({"payload": "e30="}),
        "err DSSE envelope is malformed: missing field `payloadType` at line 1 column 18",
    );
    let mut changed = good.clone();
    changed["payload"] = json!("e30+_");
    check(
        changed,
        "err DSSE envelope is malformed: payload: not base64 (Invalid symbol 95, offset 4.)",
    );
}

/// A Sigstore deployment, a leaf from it, and the policy admitting that leaf.
struct Sigstore {
    pki: Pki,
    root: TrustedRoot,
    policy: IdentityPolicy,
}

impl Sigstore {
    fn new() -> Sigstore {
        let pki = Pki::new();
        let root = pki.trusted_root();
        Sigstore {
            pki,
            root,
            policy: IdentityPolicy::new(ISSUER, r"https://github\.com/acme/shop/.*").unwrap(),
        }
    }

    fn verify(&self, bundle: &Value, digest: &Digest) -> String {
        outcome(verify_bundle(
            &serde_json::to_vec(bundle).unwrap(),
            digest,
            &self.root,
            &self.policy,
        ))
    }

    /// A good bundle: the default leaf signs `content`, logged a minute after issue.
    fn bundle(&self, content: &Content) -> Value {
        let leaf = self.pki.issue(&LeafSpec::default());
        self.pki
            .bundle(&leaf, None, content, ISSUED_AT + 60, BUNDLE_V03)
    }
}

fn in_toto(digest: &Digest) -> Content {
    Content::Dsse {
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_owned(),
        payload: statement(digest),
    }
}

#[test]
fn sigstore_bundles_verify_offline_in_every_version() {
    let sigstore = Sigstore::new();
    let (manifest, digest) = artifact();
    let leaf = sigstore.pki.issue(&LeafSpec::default());
    let signer = format!("{SUBJECT} (issuer {ISSUER})");
    for media_type in [
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        BUNDLE_V03,
    ] {
        let time = ISSUED_AT + 60;
        let message = sigstore.pki.bundle(
            &leaf,
            None,
            &Content::Message(manifest.clone()),
            time,
            media_type,
        );
        assert_eq!(
            sigstore.verify(&message, &digest),
            format!("ok {signer}: artifact {digest}"),
            "{media_type}"
        );
        let intoto = Content::Intoto {
            payload_type: IN_TOTO_PAYLOAD_TYPE.to_owned(),
            payload: statement(&digest),
        };
        let attestation = sigstore.pki.bundle(&leaf, None, &intoto, time, media_type);
        assert_eq!(
            sigstore.verify(&attestation, &digest),
            format!("ok {signer}: application/vnd.in-toto+json"),
            "{media_type}, intoto entry"
        );
        let attestation = sigstore
            .pki
            .bundle(&leaf, None, &in_toto(&digest), time, media_type);
        assert_eq!(
            sigstore.verify(&attestation, &digest),
            format!("ok {signer}: application/vnd.in-toto+json"),
            "{media_type}"
        );
    }

    // A P-384 leaf, as sigstore-python makes: the message signature is over the SHA-256
    // digest; the envelope is hashed with SHA-384 here (sigstore-python uses SHA-256).
    let leaf = sigstore.pki.issue(&LeafSpec {
        p384: true,
        ..LeafSpec::default()
    });
    let p384_bundle = |content: &Content| {
        let bundle = sigstore
            .pki
            .bundle(&leaf, None, content, ISSUED_AT + 1, BUNDLE_V03);
        sigstore.verify(&bundle, &digest)
    };
    assert_eq!(
        p384_bundle(&Content::Message(manifest.clone())),
        format!("ok {signer}: artifact {digest}")
    );
    assert_eq!(
        p384_bundle(&in_toto(&digest)),
        format!("ok {signer}: application/vnd.in-toto+json")
    );

    // Only the issuer extension Fulcio writes now.
    let leaf = sigstore.pki.issue(&LeafSpec {
        issuer_extension: IssuerExtension::V2,
        ..LeafSpec::default()
    });
    let bundle = sigstore
        .pki
        .bundle(&leaf, None, &in_toto(&digest), ISSUED_AT + 1, BUNDLE_V03);
    assert_eq!(
        sigstore.verify(&bundle, &digest),
        format!("ok {signer}: application/vnd.in-toto+json")
    );

    // An email identity, and only the first issuer extension Fulcio wrote.
    let leaf = sigstore.pki.issue(&LeafSpec {
        email: Some("release@acme.example".to_owned()),
        uri: None,
        issuer: "https://accounts.google.com".to_owned(),
        issuer_extension: IssuerExtension::V1,
        ..LeafSpec::default()
    });
    let bundle = sigstore
        .pki
        .bundle(&leaf, None, &in_toto(&digest), ISSUED_AT + 1, BUNDLE_V03);
    let policy = IdentityPolicy::new("https://accounts.google.com", r".*@acme\.example").unwrap();
    let verified = verify_bundle(
        &serde_json::to_vec(&bundle).unwrap(),
        &digest,
        &sigstore.root,
        &policy,
    );
    assert_eq!(
        outcome(verified),
        "ok release@acme.example (issuer https://accounts.google.com): application/vnd.in-toto+json"
    );
}

#[test]
fn sigstore_bundles_are_refused_at_the_step_that_fails() {
    let sigstore = Sigstore::new();
    let (manifest, digest) = artifact();
    let message = Content::Message(manifest.clone());
    let good = sigstore.bundle(&message);
    let good_dsse = sigstore.bundle(&in_toto(&digest));
    let check = |bundle: &Value, expect: &str| {
        let got = sigstore.verify(bundle, &digest);
        assert!(got.starts_with(expect), "got:    {got}\nexpect: {expect}…");
    };
    let edit = |bundle: &Value, pointer: &str, value: Value| {
        let mut bundle = bundle.clone();
        *bundle.pointer_mut(pointer).unwrap() = value;
        bundle
    };
    let entry = "/verificationMaterial/tlogEntries/0";

    // Format.
    check(
        &edit(
            &good,
            "/mediaType",
            json!("application/vnd.dev.sigstore.bundle+json;version=0.4"),
        ),
        "err Sigstore bundle refused at bundle format: media type \"application/vnd.dev.sigstore.bundle+json;version=0.4\" is not supported",
    );
    check(
        &edit(&good, "/verificationMaterial/tlogEntries", json!([])),
        "err Sigstore bundle refused at bundle format: the bundle has no transparency log entry",
    );
    let mut both = good.clone();
    both["dsseEnvelope"] = good_dsse["dsseEnvelope"].clone();
    check(
        &both,
        "err Sigstore bundle refused at bundle format: the bundle must hold exactly one of messageSignature and dsseEnvelope",
    );
    check(
        &edit(
            &good,
            "/verificationMaterial/certificate/rawBytes",
            json!(base64(b"garbage")),
        ),
        "err Sigstore bundle refused at bundle format: signing certificate: not a DER X.509 certificate",
    );

    // Transparency log.
    let set = format!("{entry}/inclusionPromise/signedEntryTimestamp");
    let flipped_set = flip_last_byte(good.pointer(&set).unwrap().as_str().unwrap());
    let bad_set = "err Sigstore bundle refused at transparency log: the signed entry timestamp does not verify with the key of log https://rekor.gantry.test";
    check(&edit(&good, &set, json!(flipped_set)), bad_set);
    // The integrated time is what the SET vouches for: moving it breaks the SET.
    check(
        &edit(
            &good,
            &format!("{entry}/integratedTime"),
            json!((ISSUED_AT + 61).to_string()),
        ),
        bad_set,
    );
    check(
        &edit(&good, &format!("{entry}/inclusionPromise"), Value::Null),
        "err Sigstore bundle refused at transparency log: the entry has no inclusion promise",
    );
    let first_hash = format!("{entry}/inclusionProof/hashes/0");
    check(
        &edit(
            &good,
            &first_hash,
            json!(flip_last_byte(
                good.pointer(&first_hash).unwrap().as_str().unwrap()
            )),
        ),
        "err Sigstore bundle refused at transparency log: the inclusion proof leads to root",
    );
    let checkpoint = format!("{entry}/inclusionProof/checkpoint/envelope");
    let forged = good
        .pointer(&checkpoint)
        .unwrap()
        .as_str()
        .unwrap()
        .replacen("\n5\n", "\n6\n", 1);
    check(
        &edit(&good, &checkpoint, json!(forged)),
        "err Sigstore bundle refused at transparency log: the checkpoint carries no signature that verifies with the key of log https://rekor.gantry.test",
    );
    let stranger = Pki::new().bundle(
        &sigstore.pki.issue(&LeafSpec::default()),
        None,
        &message,
        ISSUED_AT + 60,
        BUNDLE_V03,
    );
    check(
        &stranger,
        "err Sigstore bundle refused at transparency log: log ",
    );
    assert!(
        sigstore
            .verify(&stranger, &digest)
            .ends_with(" is not in the trusted root")
    );

    // Log entry consistency: an entry cannot be borrowed from another signature.
    let signature = "/messageSignature/signature";
    check(
        &edit(
            &good,
            signature,
            json!(flip_last_byte(
                good.pointer(signature).unwrap().as_str().unwrap()
            )),
        ),
        "err Sigstore bundle refused at log entry consistency: the entry records another signature",
    );
    let other = sigstore.bundle(&message);
    check(
        &edit(
            &good,
            "/verificationMaterial/certificate",
            other["verificationMaterial"]["certificate"].clone(),
        ),
        "err Sigstore bundle refused at log entry consistency: the entry records another certificate",
    );
    let dsse_signature = "/dsseEnvelope/signatures/0/sig";
    check(
        &edit(
            &good_dsse,
            dsse_signature,
            json!(flip_last_byte(
                good_dsse.pointer(dsse_signature).unwrap().as_str().unwrap()
            )),
        ),
        "err Sigstore bundle refused at log entry consistency: the entry records another signature",
    );
    let good_intoto = sigstore.bundle(&Content::Intoto {
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_owned(),
        payload: statement(&digest),
    });
    let flipped = flip_last_byte(
        good_intoto
            .pointer(dsse_signature)
            .unwrap()
            .as_str()
            .unwrap(),
    );
    check(
        &edit(&good_intoto, dsse_signature, json!(flipped)),
        "err Sigstore bundle refused at log entry consistency: the entry records another signature",
    );
    check(
        &edit(
            &good_intoto,
            "/dsseEnvelope/payloadType",
            json!("text/plain"),
        ),
        "err Sigstore bundle refused at log entry consistency: the entry records payload type \"application/vnd.in-toto+json\", the envelope has \"text/plain\"",
    );
    check(
        &edit(
            &good_dsse,
            "/dsseEnvelope/payload",
            json!(base64(&statement(&other_digest()))),
        ),
        "err Sigstore bundle refused at log entry consistency: the entry records payload hash sha256:",
    );

    // Certificate chain: a leaf from another authority, logged in the trusted log.
    let elsewhere = sigstore.pki.another_authority();
    let foreign = elsewhere.bundle(
        &elsewhere.issue(&LeafSpec::default()),
        None,
        &message,
        ISSUED_AT + 60,
        BUNDLE_V03,
    );
    check(
        &foreign,
        "err Sigstore bundle refused at certificate chain: no trusted certificate authority issued the certificate (https://fulcio.gantry.test: signature does not verify with the key of \"CN=gantry-test-intermediate,O=gantry-test\")",
    );

    // Certificate validity at the integrated time.
    let leaf = sigstore.pki.issue(&LeafSpec::default());
    let late = sigstore.pki.bundle(
        &leaf,
        None,
        &message,
        ISSUED_AT + LEAF_LIFETIME + 1,
        BUNDLE_V03,
    );
    check(
        &late,
        &format!(
            "err Sigstore bundle refused at certificate validity: \"CN=gantry-test-leaf,O=gantry-test\" is valid from {ISSUED_AT} to {} (Unix seconds), not at {}",
            ISSUED_AT + LEAF_LIFETIME,
            ISSUED_AT + LEAF_LIFETIME + 1
        ),
    );
    let early = sigstore
        .pki
        .bundle(&leaf, None, &message, ISSUED_AT - 1, BUNDLE_V03);
    check(
        &early,
        "err Sigstore bundle refused at certificate validity: ",
    );

    // Certificate usage.
    let leaf = sigstore.pki.issue(&LeafSpec {
        code_signing: false,
        ..LeafSpec::default()
    });
    check(
        &sigstore
            .pki
            .bundle(&leaf, None, &message, ISSUED_AT + 60, BUNDLE_V03),
        "err Sigstore bundle refused at certificate usage: extended key usage does not include code signing",
    );
    let leaf = sigstore.pki.issue(&LeafSpec {
        digital_signature: false,
        ..LeafSpec::default()
    });
    check(
        &sigstore
            .pki
            .bundle(&leaf, None, &message, ISSUED_AT + 60, BUNDLE_V03),
        "err Sigstore bundle refused at certificate usage: key usage does not include digital signatures",
    );

    // Issuer and identity.
    let leaf = sigstore.pki.issue(&LeafSpec {
        issuer: "https://gitlab.com".to_owned(),
        ..LeafSpec::default()
    });
    check(
        &sigstore
            .pki
            .bundle(&leaf, None, &message, ISSUED_AT + 60, BUNDLE_V03),
        &format!(
            "err Sigstore bundle refused at certificate issuer: the certificate's OIDC issuer is \"https://gitlab.com\", expected \"{ISSUER}\""
        ),
    );
    let leaf = sigstore.pki.issue(&LeafSpec {
        uri: Some(
            "https://github.com/mallory/shop/.github/workflows/release.yml@refs/heads/main"
                .to_owned(),
        ),
        ..LeafSpec::default()
    });
    check(
        &sigstore
            .pki
            .bundle(&leaf, None, &message, ISSUED_AT + 60, BUNDLE_V03),
        "err Sigstore bundle refused at certificate identity: no subject of the certificate (\"https://github.com/mallory/shop/.github/workflows/release.yml@refs/heads/main\") matches \"https://github\\\\.com/acme/shop/.*\"",
    );

    // Content signature: logged as it is, but not made by the certificate's key.
    let leaf = sigstore.pki.issue(&LeafSpec::default());
    let impostor = SigningKey::p256();
    check(
        &sigstore
            .pki
            .bundle(&leaf, Some(&impostor), &message, ISSUED_AT + 60, BUNDLE_V03),
        &format!(
            "err Sigstore bundle refused at content signature: message signature over {digest}: the signature does not match the artifact digest"
        ),
    );
    check(
        &sigstore.pki.bundle(
            &leaf,
            Some(&impostor),
            &in_toto(&digest),
            ISSUED_AT + 60,
            BUNDLE_V03,
        ),
        "err Sigstore bundle refused at content signature: the DSSE envelope's signature does not verify with the certificate's key",
    );

    // Artifact digest: a good bundle, for another artifact.
    let wrong = other_digest();
    assert_eq!(
        sigstore.verify(&good, &wrong),
        format!(
            "err Sigstore bundle refused at artifact digest: the message signature names SHA2_256:{}, expected {wrong}",
            digest.hex()
        )
    );
    let no_digest = edit(&good, "/messageSignature/messageDigest", Value::Null);
    assert_eq!(
        sigstore.verify(&no_digest, &wrong),
        format!(
            "err Sigstore bundle refused at artifact digest: the log entry records a signature over {digest}, expected {wrong}"
        )
    );
    assert_eq!(
        sigstore.verify(&good_dsse, &wrong),
        format!(
            "err Sigstore bundle refused at artifact digest: the in-toto statement names {digest}, not {wrong}"
        )
    );
}

#[test]
fn identity_patterns_match_whole_subjects() {
    let check = |pattern: &str, subject: &str, expect: bool| {
        let policy = IdentityPolicy::new(ISSUER, pattern).unwrap();
        let sigstore = Sigstore::new();
        let leaf = sigstore.pki.issue(&LeafSpec {
            uri: Some(subject.to_owned()),
            ..LeafSpec::default()
        });
        let (manifest, digest) = artifact();
        let bundle = sigstore.pki.bundle(
            &leaf,
            None,
            &Content::Message(manifest),
            ISSUED_AT + 60,
            BUNDLE_V03,
        );
        let verified = verify_bundle(
            &serde_json::to_vec(&bundle).unwrap(),
            &digest,
            &sigstore.root,
            &policy,
        );
        assert_eq!(
            verified.is_ok(),
            expect,
            "{pattern:?} against {subject:?}: {verified:?}"
        );
    };
    check(r"https://github\.com/acme/.*", SUBJECT, true);
    check(r"acme", SUBJECT, false);
    check(r"https://github\.com/acme/shop", SUBJECT, false);
    check(&regex::escape(SUBJECT), SUBJECT, true);
    assert_eq!(
        IdentityPolicy::exact(ISSUER, "a.b").subject_pattern(),
        r"a\.b"
    );
    // Project files write globs: `*` is any run, everything else (dots too) itself.
    assert_eq!(
        IdentityPolicy::glob(ISSUER, "https://github.com/acme/*@refs/tags/*").subject_pattern(),
        r"https://github\.com/acme/.*@refs/tags/.*"
    );
    check(
        IdentityPolicy::glob(ISSUER, "https://github.com/acme/*").subject_pattern(),
        SUBJECT,
        true,
    );
    check(
        IdentityPolicy::glob(ISSUER, "https://github?com/acme/*").subject_pattern(),
        SUBJECT,
        false,
    );
    assert_eq!(
        IdentityPolicy::new(ISSUER, "(")
            .unwrap_err()
            .to_string()
            .lines()
            .next()
            .unwrap(),
        "subject pattern \"(\" is not a valid regular expression: regex parse error:"
    );
}

#[test]
fn trusted_roots_name_what_is_wrong() {
    let pki = Pki::new();
    let good = pki.trusted_root_json();
    let check = |root: Value, expect: &str| {
        let got = match TrustedRoot::from_json(&serde_json::to_vec(&root).unwrap()) {
            Ok(_) => "ok".to_owned(),
            Err(error) => format!("err {error}"),
        };
        assert!(got.starts_with(expect), "got:    {got}\nexpect: {expect}…");
    };
    check(good.clone(), "ok");
    let edit = |pointer: &str, value: Value| {
        let mut root = good.clone();
        *root.pointer_mut(pointer).unwrap() = value;
        root
    };
    check(
        edit("/mediaType", json!("application/json")),
        "err trusted root is invalid at mediaType: \"application/json\" is not a Sigstore trusted root media type",
    );
    check(
        edit(
            "/certificateAuthorities/0/certChain/certificates/1/rawBytes",
            json!("AAAA"),
        ),
        "err trusted root is invalid at certificateAuthorities[0].certChain.certificates[1]: not a DER X.509 certificate",
    );
    check(
        edit("/tlogs/0/publicKey/rawBytes", json!(base64(b"key"))),
        "err trusted root is invalid at tlogs[0].publicKey.rawBytes: public key is not a DER SubjectPublicKeyInfo",
    );
    check(
        edit("/tlogs/0/publicKey/validFor/start", json!("last tuesday")),
        "err trusted root is invalid at tlogs[0].publicKey.validFor.start: \"last tuesday\" is not an RFC 3339 time",
    );
    check(
        edit("/tlogs", json!("none")),
        "err trusted root is invalid: invalid type: string",
    );
}

#[test]
fn authorities_and_logs_are_trusted_only_within_their_validity() {
    let sigstore = Sigstore::new();
    let (manifest, digest) = artifact();
    let bundle = sigstore.bundle(&Content::Message(manifest));
    let check = |pointer: &str, value: Value, expect: &str| {
        let mut root = sigstore.pki.trusted_root_json();
        *root.pointer_mut(pointer).unwrap() = value;
        let root = TrustedRoot::from_json(&serde_json::to_vec(&root).unwrap()).unwrap();
        let got = outcome(verify_bundle(
            &serde_json::to_vec(&bundle).unwrap(),
            &digest,
            &root,
            &sigstore.policy,
        ));
        assert_eq!(got, expect);
    };
    check(
        "/certificateAuthorities/0/validFor",
        json!({"start": "2020-01-01T00:00:00Z", "end": "2024-06-01T11:00:00Z"}),
        &format!(
            "err Sigstore bundle refused at certificate validity: certificate authority https://fulcio.gantry.test was not trusted at the integrated time {}",
            ISSUED_AT + 60
        ),
    );
    check(
        "/tlogs/0/publicKey/validFor",
        json!({"start": "2024-06-02T00:00:00.000Z"}),
        &format!(
            "err Sigstore bundle refused at transparency log: the key of log https://rekor.gantry.test was not valid at the integrated time {}",
            ISSUED_AT + 60
        ),
    );
}
