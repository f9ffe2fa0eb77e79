//! Gates over evidence: tests, vulnerabilities, SBOM and provenance, and which evidence
//! a decision records as read.

use std::collections::BTreeMap;

use gantry_evidence::Severity;
use gantry_policy::{
    Allowance, Gates, ProvenanceGate, Supplier, TestsGate, VulnerabilitiesGate, evaluate,
};

use gantry_core::Verdict;

use crate::{check, cyclonedx, digest, evidence, facts, junit, provenance, scan, signed, supplied};

fn tests_gate() -> Gates {
    Gates {
        tests: Some(TestsGate {
            max_failures: 0,
            allow_flaky: false,
        }),
        ..Gates::default()
    }
}

#[test]
fn tests_pending_until_every_component_has_a_report() {
    let mut facts = facts();
    facts.evidence = vec![evidence(1, "junit", Some("api"), 30, junit(120, 0, 3, 0))];
    check(
        &tests_gate(),
        &facts,
        "pending
        tests pending: a test report for worker",
    );
    facts
        .evidence
        .push(evidence(2, "junit", Some("worker"), 20, junit(80, 0, 0, 0)));
    check(
        &tests_gate(),
        &facts,
        "allow
        tests pass: api: 120 tests, 0 failed, 3 skipped, 0 flaky; worker: 80 tests, 0 failed, 0 skipped, 0 flaky",
    );
}

#[test]
fn a_release_wide_report_covers_every_component() {
    let mut facts = facts();
    facts.evidence = vec![evidence(1, "junit", None, 30, junit(200, 0, 0, 0))];
    check(
        &tests_gate(),
        &facts,
        "allow
        tests pass: api: 200 tests, 0 failed, 0 skipped, 0 flaky; worker: 200 tests, 0 failed, 0 skipped, 0 flaky",
    );
}

#[test]
fn a_component_report_beats_a_release_wide_one_even_an_older_one() {
    let mut facts = facts();
    facts.evidence = vec![
        evidence(1, "junit", Some("api"), 60, junit(120, 0, 0, 0)),
        // Newer, but about the whole release: `api` keeps its own report.
        evidence(2, "junit", None, 10, junit(200, 4, 0, 0)),
    ];
    check(
        &tests_gate(),
        &facts,
        "deny
        tests fail: worker: 4 of 200 tests failed (at most 0 allowed)",
    );
}

#[test]
fn a_newer_report_of_the_same_kind_replaces_an_older_one() {
    let mut facts = facts();
    facts.evidence = vec![
        evidence(1, "junit", Some("api"), 90, junit(120, 2, 0, 0)),
        evidence(2, "junit", Some("api"), 30, junit(120, 0, 0, 0)),
        evidence(3, "junit", Some("worker"), 30, junit(80, 0, 0, 0)),
    ];
    let decision = check(
        &tests_gate(),
        &facts,
        "allow
        tests pass: api: 120 tests, 0 failed, 0 skipped, 0 flaky; worker: 80 tests, 0 failed, 0 skipped, 0 flaky",
    );
    // The replaced report was not read.
    assert_eq!(decision.evidence, [digest(2), digest(3)]);
    // The other way round, the failing report is the latest.
    facts.evidence[0].added_at = crate::ago(10);
    check(
        &tests_gate(),
        &facts,
        "deny
        tests fail: api: 2 of 120 tests failed (at most 0 allowed)",
    );
}

#[test]
fn failures_and_flaky_tests() {
    let gates = |max_failures, allow_flaky| Gates {
        tests: Some(TestsGate {
            max_failures,
            allow_flaky,
        }),
        ..Gates::default()
    };
    let mut facts = facts();
    facts.evidence = vec![
        evidence(1, "junit", Some("api"), 30, junit(120, 3, 0, 0)),
        evidence(2, "junit", Some("worker"), 30, junit(80, 0, 0, 2)),
    ];
    check(
        &gates(0, false),
        &facts,
        "deny
        tests fail: api: 3 of 120 tests failed (at most 0 allowed); worker: 2 flaky tests (none allowed)",
    );
    check(
        &gates(3, false),
        &facts,
        "deny
        tests fail: worker: 2 flaky tests (none allowed)",
    );
    check(
        &gates(3, true),
        &facts,
        "allow
        tests pass: api: 120 tests, 3 failed, 0 skipped, 0 flaky; worker: 80 tests, 0 failed, 0 skipped, 2 flaky",
    );
    facts.evidence[0] = evidence(1, "junit", Some("api"), 30, junit(120, 3, 0, 1));
    check(
        &gates(0, false),
        &facts,
        "deny
        tests fail: api: 3 of 120 tests failed (at most 0 allowed), 1 flaky test (none allowed); worker: 2 flaky tests (none allowed)",
    );
}

fn vulnerabilities(max: &[(Severity, u64)], ignore_unfixable: bool) -> Gates {
    Gates {
        vulnerabilities: Some(VulnerabilitiesGate {
            max: max.iter().copied().collect::<BTreeMap<_, _>>(),
            ignore_unfixable,
            allowlist: Vec::new(),
        }),
        ..Gates::default()
    }
}

#[test]
fn vulnerabilities_at_most_so_many_per_severity() {
    let gates = vulnerabilities(&[(Severity::Critical, 0), (Severity::High, 1)], false);
    let mut facts = facts();
    facts.evidence = vec![
        evidence(
            1,
            "trivy",
            Some("api"),
            30,
            scan(
                "trivy",
                &[
                    ("CVE-2025-0001", "critical", true),
                    ("CVE-2025-0002", "high", true),
                    ("CVE-2025-0003", "high", false),
                    ("CVE-2025-0004", "medium", true),
                ],
            ),
        ),
        evidence(2, "trivy", Some("worker"), 30, scan("trivy", &[])),
    ];
    check(
        &gates,
        &facts,
        "deny
        vulnerabilities fail: api: trivy: 1 critical (at most 0), 2 high (at most 1)",
    );
    // Unfixable findings do not count when the gate says so.
    facts.evidence[0] = evidence(
        1,
        "trivy",
        Some("api"),
        30,
        scan(
            "trivy",
            &[
                ("CVE-2025-0002", "high", true),
                ("CVE-2025-0003", "high", false),
                ("CVE-2025-0004", "medium", true),
            ],
        ),
    );
    check(
        &gates,
        &facts,
        "deny
        vulnerabilities fail: api: trivy: 2 high (at most 1)",
    );
    check(
        &vulnerabilities(&[(Severity::Critical, 0), (Severity::High, 1)], true),
        &facts,
        "allow
        vulnerabilities pass: api: trivy: 1 high, 1 medium; worker: trivy: no findings that count",
    );
}

#[test]
fn severities_not_named_are_not_limited() {
    let findings: Vec<(String, &str, bool)> = (0..50)
        .map(|n| {
            (
                format!("CVE-2025-{n:04}"),
                if n % 2 == 0 { "low" } else { "medium" },
                true,
            )
        })
        .collect();
    let findings: Vec<(&str, &str, bool)> = findings
        .iter()
        .map(|(id, s, f)| (id.as_str(), *s, *f))
        .collect();
    let mut facts = facts();
    facts.evidence = vec![evidence(1, "grype", None, 30, scan("grype", &findings))];
    check(
        &vulnerabilities(&[(Severity::Critical, 0)], false),
        &facts,
        "allow
        vulnerabilities pass: api: grype: 25 medium, 25 low; worker: grype: 25 medium, 25 low",
    );
}

#[test]
fn an_allowlist_entry_counts_until_it_expires() {
    let allowance = |expires: &str| Allowance {
        id: "CVE-2025-0001".to_owned(),
        expires: expires.parse().unwrap(),
        reason: "not reachable: the vulnerable parser is not linked".to_owned(),
    };
    let gates = |allowance| {
        let mut gates = vulnerabilities(&[(Severity::Critical, 0)], false);
        gates.vulnerabilities.as_mut().unwrap().allowlist = vec![allowance];
        gates
    };
    let mut facts = facts();
    facts.evidence = vec![evidence(
        1,
        "trivy",
        None,
        30,
        scan(
            "trivy",
            &[
                ("CVE-2025-0001", "critical", true),
                ("CVE-2025-0002", "low", true),
            ],
        ),
    )];
    check(
        &gates(allowance("2025-04-01T00:00:00Z")),
        &facts,
        "allow
        vulnerabilities pass: api: trivy: 1 low (1 allowlisted); worker: trivy: 1 low (1 allowlisted)",
    );
    check(
        &gates(allowance("2025-03-01T00:00:00Z")),
        &facts,
        "deny
        vulnerabilities fail: api: trivy: 1 critical (at most 0); worker: trivy: 1 critical (at most 0)
        warning: allowlist entry CVE-2025-0001 expired at 2025-03-01T00:00:00Z",
    );
}

#[test]
fn every_scanner_counts() {
    let mut facts = facts();
    facts.evidence = vec![
        evidence(
            1,
            "trivy",
            None,
            30,
            scan("trivy", &[("CVE-2025-0002", "high", true)]),
        ),
        evidence(
            2,
            "grype",
            Some("worker"),
            30,
            scan("grype", &[("GHSA-xxxx-yyyy-zzzz", "critical", true)]),
        ),
    ];
    let decision = check(
        &vulnerabilities(&[(Severity::Critical, 0)], false),
        &facts,
        "deny
        vulnerabilities fail: worker: grype: 1 critical (at most 0)",
    );
    assert_eq!(decision.evidence, [digest(1), digest(2)]);
    facts.evidence[1] = evidence(2, "grype", Some("worker"), 30, scan("grype", &[]));
    check(
        &vulnerabilities(&[(Severity::Critical, 0)], false),
        &facts,
        "allow
        vulnerabilities pass: api: trivy: 1 high; worker: trivy: 1 high; worker: grype: no findings that count",
    );
}

#[test]
fn sbom() {
    let gates = Gates {
        sbom: true,
        ..Gates::default()
    };
    let mut facts = facts();
    facts.evidence = vec![evidence(1, "cyclonedx", Some("api"), 30, cyclonedx(412))];
    check(
        &gates,
        &facts,
        "pending
        sbom pending: an SBOM for worker",
    );
    facts
        .evidence
        .push(evidence(2, "cyclonedx", Some("worker"), 30, cyclonedx(97)));
    check(
        &gates,
        &facts,
        "allow
        sbom pass: api: CycloneDX 1.5 with 412 components; worker: CycloneDX 1.5 with 97 components",
    );
}

const BUILDER: &str = "https://github.com/actions/runner/github-hosted";
const SOURCE: &str = "git+https://github.com/acme/shop";

fn provenance_gate() -> Gates {
    Gates {
        provenance: Some(ProvenanceGate {
            builder_ids: vec![BUILDER.to_owned()],
            source_repositories: vec![SOURCE.to_owned()],
        }),
        ..Gates::default()
    }
}

#[test]
fn provenance_from_the_right_builder_and_source() {
    let mut facts = facts();
    facts.evidence = vec![signed(
        evidence(1, "slsa-provenance", None, 30, provenance(BUILDER, SOURCE)),
        "release",
    )];
    check(
        &provenance_gate(),
        &facts,
        "allow
        provenance pass: api: built by https://github.com/actions/runner/github-hosted from git+https://github.com/acme/shop at 4f2a9c1; worker: built by https://github.com/actions/runner/github-hosted from git+https://github.com/acme/shop at 4f2a9c1",
    );
    facts.evidence.push(signed(
        evidence(
            2,
            "slsa-provenance",
            Some("worker"),
            10,
            provenance(
                "https://ci.mallory.example/builder",
                "git+https://github.com/mallory/shop",
            ),
        ),
        "release",
    ));
    check(
        &provenance_gate(),
        &facts,
        "deny
        provenance fail: worker: built by https://ci.mallory.example/builder, not by https://github.com/actions/runner/github-hosted, built from git+https://github.com/mallory/shop, not from git+https://github.com/acme/shop",
    );
}

#[test]
fn the_decision_lists_the_evidence_its_gates_read() {
    let gates = Gates {
        tests: Some(TestsGate {
            max_failures: 0,
            allow_flaky: true,
        }),
        sbom: true,
        ..Gates::default()
    };
    let mut facts = facts();
    facts.evidence = vec![
        evidence(5, "junit", None, 30, junit(200, 0, 0, 0)),
        evidence(4, "cyclonedx", Some("worker"), 30, cyclonedx(97)),
        evidence(3, "cyclonedx", Some("api"), 30, cyclonedx(412)),
        // No gate reads scans or generic evidence here.
        evidence(2, "trivy", None, 30, scan("trivy", &[])),
        evidence(
            1,
            "generic:load-test",
            None,
            30,
            gantry_evidence::Summary::Generic(gantry_evidence::GenericSummary {
                declared_type: "load-test".to_owned(),
                document: serde_json::json!({"p99_ms": 180}),
            }),
        ),
    ];
    let decision = evaluate(&gates, &facts);
    assert_eq!(decision.evidence, [digest(3), digest(4), digest(5)]);
}

/// Prod's scanner found a critical finding; a dev-only CI account then hands in a clean
/// scan. It does not count, so it cannot hide the failing one.
#[test]
fn evidence_from_a_supplier_who_may_not_promote_here_does_not_count() {
    let gates = Gates {
        vulnerabilities: Some(VulnerabilitiesGate {
            max: BTreeMap::from([(Severity::Critical, 0)]),
            ignore_unfixable: false,
            allowlist: Vec::new(),
        }),
        ..Gates::default()
    };
    let mut facts = facts();
    facts.evidence = vec![
        supplied(
            evidence(
                1,
                "trivy",
                None,
                60,
                scan("trivy", &[("CVE-2025-1", "CRITICAL", true)]),
            ),
            "service:ci-prod",
            true,
        ),
        supplied(
            evidence(2, "trivy", None, 5, scan("trivy", &[])),
            "service:ci-dev",
            false,
        ),
    ];
    let decision = check(
        &gates,
        &facts,
        "deny
        vulnerabilities fail: api: trivy: 1 critical (at most 0); worker: trivy: 1 critical (at most 0)",
    );
    let uses: Vec<(bool, &str, &str)> = decision
        .evidence_use
        .iter()
        .map(|u| (u.counted, u.supplied_by.as_str(), u.reason.as_str()))
        .collect();
    assert_eq!(
        uses,
        [
            (
                true,
                "service:ci-prod",
                "service:ci-prod may promote into prod"
            ),
            (
                false,
                "service:ci-dev",
                "service:ci-dev may not promote into prod and it is not signed by a key in trust:"
            ),
        ]
    );
    // Signed by a trusted key, it counts whoever handed it in: the newest counted scan
    // decides.
    facts.evidence[1] = signed(facts.evidence[1].clone(), "release");
    let decision = check(
        &gates,
        &facts,
        "allow
        vulnerabilities pass: api: trivy: no findings that count; worker: trivy: no findings that count",
    );
    assert_eq!(decision.evidence_use[1].reason, "signed by key release");
    assert_eq!(
        decision.evidence_use[0].reason,
        "another report of its kind decides (a newer one, or one about its component)"
    );
}

#[test]
fn a_gate_naming_its_suppliers_counts_only_theirs() {
    let gates = Gates {
        tests: Some(TestsGate {
            max_failures: 0,
            allow_flaky: true,
        }),
        evidence_from: BTreeMap::from([(
            "tests".to_owned(),
            vec![
                Supplier::Principal("service:qa".to_owned()),
                Supplier::Group("release-managers".to_owned()),
                Supplier::Key("qa".to_owned()),
            ],
        )]),
        ..Gates::default()
    };
    let mut facts = facts();
    // A prod promoter is not enough where from: names the suppliers.
    facts.evidence = vec![supplied(
        evidence(1, "junit", None, 30, junit(10, 0, 0, 0)),
        "service:ci-prod",
        true,
    )];
    let decision = check(
        &gates,
        &facts,
        "pending
        tests pending: a test report for api, worker",
    );
    assert_eq!(
        decision.evidence_use[0].reason,
        "not from service:qa or group:release-managers or key:qa (supplied by service:ci-prod)"
    );
    for (n, supplier) in [(2, "service:qa"), (3, "carol")] {
        facts.evidence = vec![supplied(
            evidence(n, "junit", None, 30, junit(10, 0, 0, 0)),
            supplier,
            false,
        )];
        check(
            &gates,
            &facts,
            "allow
            tests pass: api: 10 tests, 0 failed, 0 skipped, 0 flaky; worker: 10 tests, 0 failed, 0 skipped, 0 flaky",
        );
    }
    // Signed by the named key, whoever handed it in; by another key, not.
    facts.evidence = vec![signed(
        supplied(
            evidence(4, "junit", None, 30, junit(10, 0, 0, 0)),
            "mallory",
            false,
        ),
        "qa",
    )];
    let decision = evaluate(&gates, &facts);
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(
        decision.evidence_use[0].reason,
        "from signed by key qa, whom the gate names (from: service:qa, group:release-managers, key:qa)"
    );
    facts.evidence[0] = signed(facts.evidence[0].clone(), "other");
    assert_eq!(evaluate(&gates, &facts).verdict, Verdict::Pending);
}

#[test]
fn unsigned_provenance_never_counts() {
    let mut facts = facts();
    facts.evidence = vec![evidence(
        1,
        "slsa-provenance",
        None,
        30,
        provenance(BUILDER, SOURCE),
    )];
    let decision = check(
        &provenance_gate(),
        &facts,
        "pending
        provenance pending: provenance for api, worker",
    );
    assert!(!decision.evidence_use[0].counted);
    assert_eq!(
        decision.evidence_use[0].reason,
        "unsigned: provenance counts only with a signature that verifies against trust:"
    );
}

/// A keyless signature counts by default only when this environment's own `signed_by`
/// names the identity: another environment's signers do not vouch here.
#[test]
fn keyless_signers_count_only_where_signed_by_names_them() {
    let identity = |subject: &str| gantry_policy::Signer::Identity {
        issuer: "https://token.actions.githubusercontent.com".to_owned(),
        subject: subject.to_owned(),
    };
    let mut gates = provenance_gate();
    let mut facts = facts();
    let mut statement = supplied(
        evidence(1, "slsa-provenance", None, 30, provenance(BUILDER, SOURCE)),
        "engine",
        false,
    );
    statement.signer = Some(identity(
        "https://github.com/acme/shop/.github/workflows/dev.yml@refs/heads/main",
    ));
    facts.evidence = vec![statement];
    let decision = check(
        &gates,
        &facts,
        "pending
        provenance pending: provenance for api, worker",
    );
    assert_eq!(
        decision.evidence_use[0].reason,
        "engine may not promote into prod and it is not signed by a key in trust:"
    );
    gates.signed_by = Some(gantry_policy::SignedByGate {
        keys: Vec::new(),
        identities: vec![gantry_policy::IdentityRule {
            issuer: "https://token.actions.githubusercontent.com".to_owned(),
            subject: "https://github.com/acme/shop/.github/workflows/release.yml@*".to_owned(),
        }],
    });
    assert_eq!(
        evaluate(&gates, &facts).gates[0].state,
        gantry_core::GateState::Pending
    );
    facts.evidence[0].signer = Some(identity(
        "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1",
    ));
    let decision = evaluate(&gates, &facts);
    let provenance = decision
        .gates
        .iter()
        .find(|g| g.gate == "provenance")
        .unwrap();
    assert_eq!(
        provenance.state,
        gantry_core::GateState::Pass,
        "{provenance:?}"
    );
}
