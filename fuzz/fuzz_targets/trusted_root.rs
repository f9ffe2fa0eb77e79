//! Sigstore trusted roots (`trusted_root.json`): any bytes are parsed or refused,
//! never a panic, a hang or a runaway allocation.

#![no_main]

use gantry_evidence::signature::TrustedRoot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = TrustedRoot::from_json(bytes);
});
