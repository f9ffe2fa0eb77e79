//! The decision as a whole: verdicts from the gates' states, what a waiting release
//! needs, and when it may change by itself.

use gantry_policy::{ApprovalsGate, Approver, Gates, TestsGate, UpstreamFact};
use jiff::SignedDuration;

use crate::{ago, check, evidence, facts, junit};

#[test]
fn no_gates_allow() {
    let gates = Gates::default();
    assert!(gates.is_empty());
    let decision = check(&gates, &facts(), "allow");
    assert!(decision.evidence.is_empty() && decision.policies.is_empty());
    assert_eq!(decision.needs(), "");
    assert_eq!(decision.failures(), "");
}

fn waiting_gates() -> Gates {
    Gates {
        tests: Some(TestsGate {
            max_failures: 0,
            allow_flaky: false,
        }),
        soak: Some(SignedDuration::from_hours(1)),
        approvals: Some(ApprovalsGate {
            count: 1,
            from: vec![Approver::Group("release-managers".to_owned())],
            expire_after: None,
        }),
        ..Gates::default()
    }
}

#[test]
fn needs_joins_what_pending_gates_wait_for() {
    let mut facts = facts();
    facts.upstreams = vec![UpstreamFact {
        environment: "staging".to_owned(),
        reached_at: Some(ago(48)),
    }];
    facts.evidence = vec![evidence(1, "junit", Some("api"), 30, junit(10, 0, 0, 0))];
    let decision = check(
        &waiting_gates(),
        &facts,
        "pending
        tests pending: a test report for worker
        soak pending: soak 12m left in staging
        approvals pending: 1 more approval from group release-managers
        wake at 2025-03-12T10:12:00Z",
    );
    assert_eq!(
        decision.needs(),
        "a test report for worker; soak 12m left in staging; 1 more approval from group release-managers"
    );
    assert_eq!(decision.failures(), "");
}

#[test]
fn a_denied_release_has_no_wake_up() {
    let mut facts = facts();
    facts.upstreams = vec![UpstreamFact {
        environment: "staging".to_owned(),
        reached_at: Some(ago(48)),
    }];
    facts.evidence = vec![evidence(1, "junit", None, 30, junit(10, 1, 0, 0))];
    let decision = check(
        &waiting_gates(),
        &facts,
        "deny
        tests fail: api: 1 of 10 tests failed (at most 0 allowed); worker: 1 of 10 tests failed (at most 0 allowed)
        soak pending: soak 12m left in staging
        approvals pending: 1 more approval from group release-managers",
    );
    assert_eq!(decision.wake_at, None);
    assert_eq!(
        decision.failures(),
        "tests: api: 1 of 10 tests failed (at most 0 allowed); worker: 1 of 10 tests failed (at most 0 allowed)"
    );
    // Pending for something only a person can give: no wake-up either.
    facts.evidence = vec![evidence(1, "junit", None, 30, junit(10, 0, 0, 0))];
    facts.upstreams[0].reached_at = Some(ago(90));
    let decision = check(
        &waiting_gates(),
        &facts,
        "pending
        tests pass: api: 10 tests, 0 failed, 0 skipped, 0 flaky; worker: 10 tests, 0 failed, 0 skipped, 0 flaky
        soak pass: soaked at least 1h
        approvals pending: 1 more approval from group release-managers",
    );
    assert_eq!(decision.wake_at, None);
}
