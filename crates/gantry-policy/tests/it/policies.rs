//! Rego policies as gates: violations become gates of their own, anything unexpected
//! fails closed, and the decision records which policies it used.

use std::sync::Arc;

use gantry_core::Digest;
use gantry_policy::{Gates, Policy, evaluate};
use sha2::{Digest as _, Sha256};

use crate::{check, evidence, facts, scan};

const RELEASE: &str = r#"
package gantry

decision := {"allow": count(violations) == 0, "violations": violations, "warnings": warnings}

violations contains {"gate": "revision", "msg": "the release has no org.opencontainers.image.revision label"} if {
    not input.release.labels["org.opencontainers.image.revision"]
}

violations contains {"gate": "critical", "msg": sprintf("%s: %d critical findings", [e.component, e.summary.by_severity.critical])} if {
    some e in input.evidence
    e.summary.family == "vulnerabilities"
    e.summary.by_severity.critical > 0
}

warnings contains sprintf("%s asked for the promotion on their own", [input.requested_by]) if {
    count(input.approvals) == 0
}
"#;

fn policy(name: &str, source: &str) -> Arc<Policy> {
    Arc::new(Policy::load(name, source).unwrap_or_else(|error| panic!("{error}")))
}

fn sha256(source: &str) -> Digest {
    format!("sha256:{}", hex::encode(Sha256::digest(source.as_bytes())))
        .parse()
        .unwrap()
}

fn gates(policies: &[(&str, &str)]) -> Gates {
    Gates {
        policies: policies
            .iter()
            .map(|(name, source)| policy(name, source))
            .collect(),
        ..Gates::default()
    }
}

#[test]
fn a_policy_that_allows_passes_its_warnings_on() {
    let decision = check(
        &gates(&[("release.rego", RELEASE)]),
        &facts(),
        "allow
        policy:release.rego pass: allowed
        warning: release.rego: alice asked for the promotion on their own",
    );
    assert_eq!(
        decision.policies,
        [("release.rego".to_owned(), sha256(RELEASE))]
    );
}

#[test]
fn each_violation_is_a_gate() {
    let mut facts = facts();
    facts.release.labels.clear();
    facts.approvals = vec![crate::approval("bob", true, 10)];
    facts.evidence = vec![evidence(
        1,
        "trivy",
        Some("worker"),
        30,
        scan(
            "trivy",
            &[
                ("CVE-2025-0001", "critical", true),
                ("CVE-2025-0002", "critical", false),
            ],
        ),
    )];
    let decision = check(
        &gates(&[("release.rego", RELEASE)]),
        &facts,
        "deny
        policy:release.rego/critical fail: worker: 2 critical findings
        policy:release.rego/revision fail: the release has no org.opencontainers.image.revision label",
    );
    // The policy read the scan, but no built-in gate did.
    assert!(decision.evidence.is_empty());
}

#[test]
fn policies_answer_in_order_and_each_is_recorded() {
    let deny = "package gantry\n\ndecision := {\"allow\": false}\n";
    let decision = check(
        &gates(&[("project.rego", RELEASE), ("prod.rego", deny)]),
        &facts(),
        "deny
        policy:project.rego pass: allowed
        policy:prod.rego fail: allow is false and no violation says why
        warning: project.rego: alice asked for the promotion on their own",
    );
    assert_eq!(
        decision.policies,
        [
            ("project.rego".to_owned(), sha256(RELEASE)),
            ("prod.rego".to_owned(), sha256(deny)),
        ]
    );
}

#[test]
fn a_policy_that_fails_to_run_denies() {
    let broken = r#"
package gantry

decision := {"allow": to_number(input.release.alias) > 0}
"#;
    let decision = evaluate(&gates(&[("broken.rego", broken)]), &facts());
    assert_eq!(decision.verdict, gantry_core::Verdict::Deny);
    let [gate] = decision.gates.as_slice() else {
        panic!("one gate expected: {decision:?}");
    };
    assert_eq!(gate.gate, "policy:broken.rego");
    assert_eq!(gate.state, gantry_core::GateState::Fail);
    // The rest is regorus's message, which names the place.
    assert!(
        gate.reason
            .starts_with("the policy failed, so it does not allow: ")
            && gate.reason.contains("broken.rego:4"),
        "{}",
        gate.reason
    );
    assert_eq!(
        decision.policies,
        [("broken.rego".to_owned(), sha256(broken))]
    );
}

#[test]
fn a_policy_that_takes_too_much_memory_denies() {
    // The limit is on the whole process's heap; this test binary holds little.
    gantry_policy::rego::set_memory_limit(48 * 1024 * 1024);
    let greedy = r#"
package gantry

numbers_seen := [sprintf("%d-%s", [x, "padding-padding-padding"]) | some x in numbers.range(1, 4000000)]

decision := {"allow": count(numbers_seen) > 0}
"#;
    let decision = evaluate(&gates(&[("greedy.rego", greedy)]), &facts());
    gantry_policy::rego::set_memory_limit(gantry_policy::rego::DEFAULT_MEMORY_LIMIT);
    assert_eq!(decision.verdict, gantry_core::Verdict::Deny);
    let [gate] = decision.gates.as_slice() else {
        panic!("one gate expected: {decision:?}");
    };
    assert_eq!(gate.state, gantry_core::GateState::Fail);
    assert!(
        gate.reason
            .starts_with("the policy failed, so it does not allow: ")
            && gate.reason.contains("memory limit"),
        "{}",
        gate.reason
    );
}

#[test]
fn the_cached_input_is_the_json_input() {
    let mut facts = facts();
    let report = br#"<testsuite name="api" tests="2" failures="1"><testcase name="a"/><testcase name="b"><failure/></testcase></testsuite>"#;
    let summary = gantry_evidence::parse(&gantry_evidence::Kind::Junit, report)
        .unwrap()
        .summary;
    for component in [Some("api".to_owned()), None] {
        facts.evidence.push(gantry_policy::EvidenceFact {
            digest: format!("sha256:{:064x}", 7).parse().unwrap(),
            kind: gantry_evidence::Kind::Junit,
            component,
            summary: summary.clone(),
            added_at: "2025-03-12T09:00:00Z".parse().unwrap(),
            supplied_by: "service:ci".to_owned(),
            supplier_may_promote: true,
            signer: None,
        });
    }
    let from_json = gantry_policy::rego::Input::from_json(&facts.to_input()).unwrap();
    // Twice: the second time the evidence comes from the conversion cache.
    assert_eq!(facts.to_policy_input().unwrap(), from_json);
    assert_eq!(facts.to_policy_input().unwrap(), from_json);
    assert_eq!(facts.to_input()["evidence"][0]["summary"]["failed"], 1);
}
