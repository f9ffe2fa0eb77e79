//! DSSE envelopes: any bytes, checked with one trusted P-256 key, are verified or
//! refused, never a panic, a hang or a runaway allocation.
//!
//! The seed in `corpus/dsse/` is an envelope that this key signed (its private half was
//! thrown away after signing), so the path to a verified signature is covered too.

#![no_main]

use std::sync::LazyLock;

use gantry_evidence::signature::{TrustedKey, verify_dsse};
use libfuzzer_sys::fuzz_target;

/// The public half of the key that signed the seeds of `dsse` and `cosign`.
const KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAYCkdwGZ4FR+T4zXFd02HtY7ZYE2
M+wVVAE5Kt+qad7JIro/qpZHVItSRaXDstqpz9xiCduRFXDaMiuLY1x4/w==
-----END PUBLIC KEY-----
";

static KEYS: LazyLock<[TrustedKey; 1]> =
    LazyLock::new(|| [TrustedKey::from_pem("fuzz", KEY_PEM).expect("KEY_PEM is a P-256 key")]);

fuzz_target!(|bytes: &[u8]| {
    let _ = verify_dsse(bytes, &*KEYS);
});
