//! Properties: no input makes a parser panic, and `JUnit` counts match the test cases
//! a report is made of.

use std::fmt::Write as _;

use gantry_evidence::{Summary, TestSummary, parse};
use proptest::prelude::*;

use crate::{KINDS, data, kind};

/// Each kind with a sample of it, for mutations that stay close to real documents.
const SAMPLES: [(&str, &str); 8] = [
    ("junit", "junit-surefire.xml"),
    ("sarif", "sarif-codeql.sarif"),
    ("trivy", "trivy-image.json"),
    ("grype", "grype-image.json"),
    ("cyclonedx", "cyclonedx-1.5.json"),
    ("spdx", "spdx-2.3.json"),
    ("slsa-provenance", "slsa-github.dsse.json"),
    ("generic:load-test", "generic-load-test.json"),
];

/// How one generated test case ends.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Passed,
    Failed,
    Errored,
    Skipped,
    Flaky,
    FailedAfterReruns,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Passed),
        Just(Outcome::Failed),
        Just(Outcome::Errored),
        Just(Outcome::Skipped),
        Just(Outcome::Flaky),
        Just(Outcome::FailedAfterReruns),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(kind_index in 0..KINDS.len(), bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&kind(KINDS[kind_index]), &bytes);
    }

    #[test]
    fn mutated_samples_never_panic(
        sample in 0..SAMPLES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        cut_it in any::<bool>(),
    ) {
        let (name, file) = SAMPLES[sample];
        let mut bytes = data(file);
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        if cut_it {
            bytes.truncate(cut.index(bytes.len()));
        }
        let _ = parse(&kind(name), &bytes);
    }

    #[test]
    fn junit_counts_what_it_is_made_of(suites in proptest::collection::vec(proptest::collection::vec(outcome(), 0..6), 0..5)) {
        let mut xml = String::from("<?xml version=\"1.0\"?>\n<testsuites>\n");
        let mut expected = TestSummary::default();
        for (suite, cases) in suites.iter().enumerate() {
            writeln!(xml, "<testsuite name=\"s{suite}\">").unwrap();
            for (case, outcome) in cases.iter().enumerate() {
                expected.total += 1;
                let body = match outcome {
                    Outcome::Passed => "",
                    Outcome::Failed => { expected.failed += 1; "<failure message=\"a &lt; b\"/>" }
                    Outcome::Errored => { expected.failed += 1; "<error><![CDATA[<boom>]]></error>" }
                    Outcome::Skipped => { expected.skipped += 1; "<skipped/>" }
                    Outcome::Flaky => { expected.flaky += 1; "<flakyFailure><stackTrace>x</stackTrace></flakyFailure>" }
                    Outcome::FailedAfterReruns => { expected.failed += 1; "<failure/><rerunFailure/>" }
                };
                if body.is_empty() && case % 2 == 0 {
                    writeln!(xml, "<testcase name=\"c{case}\"/>").unwrap();
                } else {
                    writeln!(xml, "<testcase name=\"c{case}\">{body}</testcase>").unwrap();
                }
            }
            xml.push_str("</testsuite>\n");
        }
        xml.push_str("</testsuites>\n");
        let parsed = parse(&kind("junit"), xml.as_bytes()).unwrap();
        prop_assert_eq!(parsed.summary, Summary::Tests(expected));
    }
}
