//! cosign signatures: any payload and signature text, checked with one trusted P-256
//! key for one image digest, are verified or refused, never a panic, a hang or a
//! runaway allocation.
//!
//! The input is the payload, a 0xff byte, then the signature text (base64); without a
//! 0xff byte it is all payload and the signature is empty. 0xff never occurs in UTF-8,
//! so a JSON payload and its signature always split where they were joined. The
//! signature text is taken lossily as UTF-8, so bytes that are not still reach the
//! base64 decoder (as U+FFFD).
//!
//! The seed in `corpus/cosign/` is a simple-signing payload for `EXPECTED` that the key
//! signed (its private half was thrown away after signing). The payload is only parsed
//! once the signature verifies, so mutated payloads mostly stop at the signature check.

#![no_main]

use std::sync::LazyLock;

use gantry_core::Digest;
use gantry_evidence::signature::{TrustedKey, verify_cosign};
use libfuzzer_sys::fuzz_target;

/// The public half of the key that signed the seeds of `dsse` and `cosign`.
const KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAYCkdwGZ4FR+T4zXFd02HtY7ZYE2
M+wVVAE5Kt+qad7JIro/qpZHVItSRaXDstqpz9xiCduRFXDaMiuLY1x4/w==
-----END PUBLIC KEY-----
";

/// The image the seed's payload names.
const EXPECTED: &str = "sha256:b22c7289dd3b4785a3795c90e15d16bd66bd29b444b8974fe29ed0443ce50405";

static KEYS: LazyLock<[TrustedKey; 1]> =
    LazyLock::new(|| [TrustedKey::from_pem("fuzz", KEY_PEM).expect("KEY_PEM is a P-256 key")]);
static DIGEST: LazyLock<Digest> = LazyLock::new(|| EXPECTED.parse().expect("EXPECTED is a digest"));

fuzz_target!(|bytes: &[u8]| {
    let (payload, signature) = match bytes.iter().position(|&byte| byte == 0xff) {
        Some(split) => (&bytes[..split], &bytes[split + 1..]),
        None => (bytes, &[][..]),
    };
    let signature = String::from_utf8_lossy(signature);
    let _ = verify_cosign(payload, &signature, &DIGEST, &*KEYS);
});
