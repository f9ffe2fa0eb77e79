//! JUnit XML evidence: any bytes are parsed or refused, never a panic, a hang or a
//! runaway allocation.

#![no_main]

use gantry_evidence::{Kind, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = parse(&Kind::Junit, bytes);
});
