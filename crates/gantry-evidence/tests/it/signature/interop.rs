//! An independent verifier agrees: Python's `cryptography`, `securesystemslib` and
//! `sigstore` sign what Gantry verifies, and verify what the tests here sign.
//!
//! The Python side is `tests/data/signature/interop.py`, run with `python3`. A missing
//! interpreter or package fails the test with the command that installs it.

use std::path::Path;
use std::process::Command;

use gantry_evidence::signature::{
    IN_TOTO_PAYLOAD_TYPE, PublicKey, TrustedKey, verify_cosign, verify_dsse,
};
use serde_json::json;

use super::fixtures::{
    BUNDLE_V03, Content, ISSUED_AT, ISSUER, LeafSpec, Pki, SUBJECT, SigningKey, base64,
    cosign_payload, digest_of, envelope, statement,
};
use super::outcome;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/signature/interop.py"
);

fn python(command: &str, folder: &Path) -> String {
    let output = Command::new("python3")
        .arg(SCRIPT)
        .arg(command)
        .arg(folder)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run python3 ({error}): install Python 3 (apt-get install python3 python3-pip), \
                 then pip install cryptography securesystemslib sigstore"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "interop.py {command} failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn read(folder: &Path, name: &str) -> Vec<u8> {
    std::fs::read(folder.join(name)).unwrap()
}

fn read_text(folder: &Path, name: &str) -> String {
    std::fs::read_to_string(folder.join(name)).unwrap()
}

fn write(folder: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(folder.join(name), contents).unwrap();
}

#[test]
fn signatures_made_by_python_verify() {
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    let digest = digest_of(b"a manifest signed from python");
    write(folder, "digest.txt", digest.as_str());
    python("sign", folder);

    let python_key = TrustedKey::from_pem("python", &read_text(folder, "python-p256.pem")).unwrap();
    let keys = [SigningKey::p256().trusted("unrelated"), python_key];
    let payload = read(folder, "cosign.payload");
    let signature = read_text(folder, "cosign.sig");
    assert_eq!(
        outcome(verify_cosign(&payload, &signature, &digest, &keys)),
        "ok key python: application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert_eq!(
        outcome(verify_cosign(
            &payload,
            &signature,
            &digest_of(b"other"),
            &keys
        )),
        format!(
            "err cosign payload names {digest}, expected {}",
            digest_of(b"other")
        )
    );

    let verified = verify_dsse(&read(folder, "python.dsse.json"), &keys).unwrap();
    assert_eq!(
        outcome(Ok(verified.clone())),
        "ok key python: application/vnd.in-toto+json"
    );
    let (_, statement) = verified.payload().unwrap();
    let statement: serde_json::Value = serde_json::from_slice(statement).unwrap();
    assert_eq!(statement["subject"][0]["digest"]["sha256"], digest.hex());

    let ed25519 =
        TrustedKey::from_pem("python-ed25519", &read_text(folder, "python-ed25519.pem")).unwrap();
    assert_eq!(
        outcome(verify_dsse(
            &read(folder, "python-ed25519.dsse.json"),
            &[ed25519]
        )),
        "ok key python-ed25519: text/plain"
    );

    let sslib = TrustedKey::from_pem("sslib", &read_text(folder, "sslib-p256.pem")).unwrap();
    assert_eq!(
        outcome(verify_dsse(&read(folder, "sslib.dsse.json"), &[sslib])),
        "ok key sslib: application/vnd.in-toto+json"
    );
    // And the Python key is not the securesystemslib one.
    assert_eq!(
        outcome(verify_dsse(&read(folder, "sslib.dsse.json"), &keys)),
        "err DSSE envelope does not verify with any trusted key (tried unrelated, python)"
    );
}

#[test]
fn signatures_made_here_verify_in_python() {
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    let digest = digest_of(b"a manifest signed from rust");
    let key = SigningKey::p256();
    let ed25519 = SigningKey::ed25519();
    write(folder, "digest.txt", digest.as_str());
    write(folder, "rust-p256.pem", key.public_pem());
    write(folder, "rust-ed25519.pem", ed25519.public_pem());
    // What Gantry accepts, Python must accept too.
    let payload = cosign_payload(&digest);
    let signature = base64(&key.sign(&payload));
    let trusted = [key.trusted("rust"), ed25519.trusted("rust-ed25519")];
    verify_cosign(&payload, &signature, &digest, &trusted).unwrap();
    write(folder, "cosign.payload", &payload);
    write(folder, "cosign.sig", &signature);
    let mut dsse = envelope(IN_TOTO_PAYLOAD_TYPE, &statement(&digest), &[&key]);
    dsse["signatures"][0]["keyid"] = json!("gantry-test");
    let dsse = serde_json::to_vec(&dsse).unwrap();
    verify_dsse(&dsse, &trusted).unwrap();
    write(folder, "rust.dsse.json", &dsse);
    let ed_dsse =
        serde_json::to_vec(&envelope("text/plain", b"hello from rust", &[&ed25519])).unwrap();
    verify_dsse(&ed_dsse, &trusted).unwrap();
    write(folder, "rust-ed25519.dsse.json", &ed_dsse);

    assert_eq!(python("verify", folder).trim(), "verified");
    // The public key Python loads is the one Gantry parsed.
    assert_eq!(
        PublicKey::from_pem(&key.public_pem()).unwrap().spki_der(),
        key.spki_der()
    );
}

#[test]
fn sigstore_bundles_made_here_verify_with_sigstore_python() {
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    let pki = Pki::new();
    let leaf = pki.issue(&LeafSpec::default());
    let manifest = b"a manifest signed through sigstore".to_vec();
    let digest = digest_of(&manifest);
    let time = ISSUED_AT + 60;
    let message = pki.bundle(
        &leaf,
        None,
        &Content::Message(manifest.clone()),
        time,
        BUNDLE_V03,
    );
    let dsse = pki.bundle(
        &leaf,
        None,
        &Content::Dsse {
            payload_type: IN_TOTO_PAYLOAD_TYPE.to_owned(),
            payload: statement(&digest),
        },
        time,
        BUNDLE_V03,
    );
    let p384_leaf = pki.issue(&LeafSpec {
        p384: true,
        ..LeafSpec::default()
    });
    let p384_message = pki.bundle(
        &p384_leaf,
        None,
        &Content::Message(manifest.clone()),
        time,
        BUNDLE_V03,
    );
    let impostor = pki.bundle(
        &leaf,
        Some(&SigningKey::p256()),
        &Content::Message(manifest),
        time,
        BUNDLE_V03,
    );

    // Gantry's verdicts first, so both sides are asked the same questions.
    let root = pki.trusted_root();
    let policy = gantry_evidence::signature::IdentityPolicy::exact(ISSUER, SUBJECT);
    let verify = |bundle: &serde_json::Value| {
        gantry_evidence::signature::verify_bundle(
            &serde_json::to_vec(bundle).unwrap(),
            &digest,
            &root,
            &policy,
        )
    };
    verify(&message).unwrap();
    verify(&dsse).unwrap();
    verify(&p384_message).unwrap();
    verify(&impostor).unwrap_err();

    write(
        folder,
        "trusted_root.json",
        serde_json::to_vec(&pki.trusted_root_json()).unwrap(),
    );
    write(
        folder,
        "message.bundle.json",
        serde_json::to_vec(&message).unwrap(),
    );
    write(
        folder,
        "dsse.bundle.json",
        serde_json::to_vec(&dsse).unwrap(),
    );
    write(
        folder,
        "message-p384.bundle.json",
        serde_json::to_vec(&p384_message).unwrap(),
    );
    write(
        folder,
        "impostor.bundle.json",
        serde_json::to_vec(&impostor).unwrap(),
    );
    write(folder, "digest.txt", digest.as_str());
    write(folder, "identity.txt", SUBJECT);
    write(folder, "issuer.txt", ISSUER);
    let said = python("sigstore", folder);
    assert!(said.ends_with("verified\n"), "{said}");
    assert!(said.contains("impostor refused: "), "{said}");
}
