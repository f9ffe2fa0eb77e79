//! Sigstore bundles: any bytes, checked against one trusted root for one artifact
//! digest, are verified or refused, never a panic, a hang or a runaway allocation.
//!
//! The trusted root is the `trusted_root` target's seed, a private Sigstore (a root and
//! an intermediate CA, a transparency log) whose private keys were thrown away once the
//! seeds in `corpus/sigstore_bundle/` were signed with them. Those seeds (a v0.3
//! message signature, a v0.3 DSSE envelope logged as `dsse`, a v0.2 DSSE envelope
//! logged as `intoto`) verify for `EXPECTED` under the policy here, so every step of
//! `verify_bundle` is reachable.

#![no_main]

use std::sync::LazyLock;

use gantry_core::Digest;
use gantry_evidence::signature::{IdentityPolicy, TrustedRoot, verify_bundle};
use libfuzzer_sys::fuzz_target;

const TRUSTED_ROOT: &[u8] = include_bytes!("../corpus/trusted_root/seed-trusted-root.json");

/// The OIDC issuer of the seeds' signing certificates.
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The artifact the seeds sign.
const EXPECTED: &str = "sha256:b22c7289dd3b4785a3795c90e15d16bd66bd29b444b8974fe29ed0443ce50405";

static ROOT: LazyLock<TrustedRoot> = LazyLock::new(|| {
    TrustedRoot::from_json(TRUSTED_ROOT).expect("the trusted_root seed is a trusted root")
});
static DIGEST: LazyLock<Digest> = LazyLock::new(|| EXPECTED.parse().expect("EXPECTED is a digest"));
static POLICY: LazyLock<IdentityPolicy> = LazyLock::new(|| IdentityPolicy::glob(ISSUER, "*"));

fuzz_target!(|bytes: &[u8]| {
    let _ = verify_bundle(bytes, &DIGEST, &ROOT, &POLICY);
});
