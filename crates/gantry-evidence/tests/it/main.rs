//! The evidence parsers at their boundary: `gantry_evidence::parse` on documents
//! shaped like real tools' output (`tests/data`), on broken ones, and on arbitrary
//! bytes.

mod generic;
mod junit;
mod properties;
mod provenance;
mod refusals;
mod sboms;
mod scans;
mod signature;

use std::path::Path;

use gantry_evidence::{Kind, parse};

/// The bytes of a file in `tests/data`.
fn data(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

fn kind(name: &str) -> Kind {
    name.parse()
        .unwrap_or_else(|error| panic!("test names a bad kind: {error}"))
}

/// Parses `file` as `kind` and compares the summary, as the JSON it is stored as, and
/// the subjects with what is expected.
fn check(kind_name: &str, file: &str, summary: &serde_json::Value, subjects: &[&str]) {
    let parsed = parse(&kind(kind_name), &data(file))
        .unwrap_or_else(|error| panic!("{file} as {kind_name}: {error}"));
    let got = serde_json::to_value(&parsed.summary).expect("summaries serialize");
    assert!(
        got == *summary,
        "{file} as {kind_name}: summary differs\n got: {}\nwant: {}",
        serde_json::to_string_pretty(&got).unwrap(),
        serde_json::to_string_pretty(summary).unwrap(),
    );
    let got: Vec<String> = parsed.subjects.iter().map(ToString::to_string).collect();
    assert_eq!(got, subjects, "{file} as {kind_name}: subjects");
}

/// Parses `bytes` as `kind` and compares the refusal's text with `expected`.
fn refuse(kind_name: &str, bytes: impl AsRef<[u8]>, expected: &str) {
    match parse(&kind(kind_name), bytes.as_ref()) {
        Ok(parsed) => panic!("{kind_name}: accepted, expected {expected:?}: {parsed:?}"),
        Err(error) => assert_eq!(error.to_string(), expected, "{kind_name}"),
    }
}

/// Every kind, for tests that go over all of them.
const KINDS: [&str; 8] = [
    "junit",
    "sarif",
    "trivy",
    "grype",
    "cyclonedx",
    "spdx",
    "slsa-provenance",
    "generic:load-test",
];

const INDEX: &str = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6";
const MANIFEST: &str = "sha256:05b3abf2579a5eb66403cd78be557fd860633a1fe2103c7642030defe32c657f";
const BLOB: &str = "sha256:fa2c8cc4f28176bbeed4b736df569a34c79cd3723e9ec42f9674b4d46ac6b8b8";
