//! The approvals gate: who counts, who does not and why.

use std::collections::BTreeSet;

use gantry_core::Verdict;
use gantry_policy::{ApprovalsGate, Approver, EmergencyRule, Gates, approval_standing, evaluate};
use jiff::SignedDuration;
use proptest::prelude::*;

use crate::{approval, check, facts};

fn gates(count: u32, from: Vec<Approver>) -> Gates {
    Gates {
        approvals: Some(ApprovalsGate {
            count,
            from,
            expire_after: Some(SignedDuration::from_hours(24)),
        }),
        ..Gates::default()
    }
}

fn release_managers() -> Vec<Approver> {
    vec![Approver::Group("release-managers".to_owned())]
}

#[test]
fn counts_approvals_from_the_named_group_or_user() {
    let mut facts = facts();
    check(
        &gates(2, release_managers()),
        &facts,
        "pending
        approvals pending: 2 more approvals from group release-managers",
    );
    facts.approvals = vec![approval("bob", true, 30)];
    let decision = check(
        &gates(2, release_managers()),
        &facts,
        "pending
        approvals pending: 1 more approval from group release-managers",
    );
    assert_eq!(
        decision.needs(),
        "1 more approval from group release-managers"
    );
    facts.approvals.push(approval("carol", true, 5));
    check(
        &gates(2, release_managers()),
        &facts,
        "allow
        approvals pass: approved by bob, carol",
    );
    // A named user counts besides the group.
    facts.approvals = vec![approval("bob", true, 30), approval("frank", true, 10)];
    check(
        &gates(
            2,
            vec![
                Approver::User("frank".to_owned()),
                Approver::Group("release-managers".to_owned()),
            ],
        ),
        &facts,
        "allow
        approvals pass: approved by bob, frank",
    );
}

#[test]
fn the_creator_and_the_requester_do_not_count() {
    let mut facts = facts();
    facts.approvals = vec![
        approval("ci", true, 60),
        approval("alice", true, 50),
        approval("bob", true, 40),
    ];
    check(
        &gates(2, Vec::new()),
        &facts,
        "pending
        approvals pending: 1 more approval (ci created the release and cannot approve it; alice asked for the promotion and cannot approve it)",
    );
}

#[test]
fn one_person_counts_once() {
    let mut facts = facts();
    facts.approvals = vec![approval("bob", true, 60), approval("bob", true, 10)];
    check(
        &gates(2, release_managers()),
        &facts,
        "pending
        approvals pending: 1 more approval from group release-managers",
    );
}

#[test]
fn approvals_expire() {
    let mut facts = facts();
    facts.approvals = vec![
        approval("bob", true, 25 * 60),
        approval("carol", true, 23 * 60),
    ];
    check(
        &gates(2, release_managers()),
        &facts,
        "pending
        approvals pending: 1 more approval from group release-managers (bob's approval expired)",
    );
    // Without an expiry they keep counting.
    let mut gates = gates(2, release_managers());
    gates.approvals.as_mut().unwrap().expire_after = None;
    check(
        &gates,
        &facts,
        "allow
        approvals pass: approved by bob, carol",
    );
}

#[test]
fn people_who_may_not_approve_are_named() {
    let mut facts = facts();
    facts.approvals = vec![approval("mallory", true, 30), approval("bob", true, 20)];
    check(
        &gates(1, release_managers()),
        &facts,
        "allow
        approvals pass: approved by bob (mallory may not approve here)",
    );
}

#[test]
fn a_rejection_by_an_eligible_approver_denies() {
    let mut facts = facts();
    facts.approvals = vec![
        approval("bob", true, 30),
        approval("carol", true, 20),
        approval("dave", false, 10),
    ];
    facts.approvals[2].comment = Some("the migration is not reversible".to_owned());
    check(
        &gates(2, release_managers()),
        &facts,
        "deny
        approvals fail: rejected by dave: the migration is not reversible",
    );
    facts.approvals[2].comment = None;
    check(
        &gates(2, release_managers()),
        &facts,
        "deny
        approvals fail: rejected by dave",
    );
}

#[test]
fn a_rejection_that_does_not_count_is_ignored() {
    let mut facts = facts();
    facts.approvals = vec![
        approval("bob", true, 30),
        approval("carol", true, 20),
        approval("mallory", false, 10),
        approval("alice", false, 10),
        approval("dave", false, 25 * 60),
    ];
    check(
        &gates(2, release_managers()),
        &facts,
        "allow
        approvals pass: approved by bob, carol (mallory may not approve here; alice may not approve here; dave's rejection expired)",
    );
}

/// The people who may appear in an approval, eligible or not.
const PEOPLE: [&str; 6] = ["ci", "alice", "bob", "carol", "dave", "mallory"];

proptest! {
    /// However approvals and rejections combine, a release is never allowed with fewer
    /// approvals that count than the gate asks for; and with enough and no rejection at
    /// all, it is.
    #[test]
    fn never_allowed_below_the_count(
        count in 1u32..4,
        from_group in any::<bool>(),
        given in prop::collection::vec((0..PEOPLE.len(), any::<bool>(), 0i64..3000), 0..10),
    ) {
        let mut facts = facts();
        facts.approvals = given
            .iter()
            .map(|&(person, approve, minutes)| approval(PEOPLE[person], approve, minutes))
            .collect();
        let from = if from_group { release_managers() } else { Vec::new() };
        let decision = evaluate(&gates(count, from), &facts);
        let counting: BTreeSet<&str> = facts
            .approvals
            .iter()
            .filter(|a| a.approve && a.at > crate::ago(24 * 60))
            .map(|a| a.user.as_str())
            .filter(|user| !["ci", "alice"].contains(user))
            .filter(|user| !from_group || ["bob", "carol", "dave"].contains(user))
            .collect();
        if counting.len() < count as usize {
            prop_assert_ne!(decision.verdict, Verdict::Allow, "{:?}", decision);
        }
        if counting.len() >= count as usize && facts.approvals.iter().all(|a| a.approve) {
            prop_assert_eq!(decision.verdict, Verdict::Allow, "{:?}", decision);
        }
    }
}

/// The rule that refuses an approval before it is recorded is the one the gate counts by.
#[test]
fn approval_standing_says_why_an_approval_would_not_count() {
    let facts = facts();
    let standing = |gates: &Gates, requested_by: Option<&str>, user: &str| {
        approval_standing(gates, &facts.groups, "ci", requested_by, user)
    };
    let managers = gates(1, release_managers());
    assert_eq!(standing(&managers, Some("alice"), "bob"), Ok(()));
    assert_eq!(
        standing(&managers, Some("alice"), "mallory"),
        Err("mallory may not approve here".to_owned())
    );
    assert_eq!(
        standing(&gates(1, Vec::new()), Some("alice"), "ci"),
        Err("ci created the release and cannot approve it".to_owned())
    );
    assert_eq!(
        standing(&gates(1, Vec::new()), Some("alice"), "alice"),
        Err("alice asked for the promotion and cannot approve it".to_owned())
    );
    // Service accounts approve only where from: names them, never through a group or
    // an open gate.
    let service = "service:release-bot";
    assert!(
        standing(&gates(1, Vec::new()), None, service)
            .unwrap_err()
            .contains("is a service account")
    );
    let named = gates(1, vec![Approver::User(service.to_owned())]);
    assert_eq!(standing(&named, None, service), Ok(()));
    // Where nothing reads approvals, none can count.
    assert!(
        standing(&Gates::default(), None, "bob")
            .unwrap_err()
            .contains("no gate here reads approvals")
    );
    let emergency = Gates {
        emergency: Some(EmergencyRule {
            group: "oncall".to_owned(),
            extra_approvals: 1,
        }),
        ..Gates::default()
    };
    assert_eq!(standing(&emergency, None, "bob"), Ok(()));
    // Where only policies read approvals, the same separation of duties holds.
    let policy = gantry_policy::Policy::load(
        "p.rego",
        "package gantry\n\ndecision := {\"allow\": true}\n",
    )
    .unwrap();
    let policies = Gates {
        policies: vec![std::sync::Arc::new(policy)],
        ..Gates::default()
    };
    assert_eq!(standing(&policies, Some("alice"), "bob"), Ok(()));
    assert!(standing(&policies, Some("alice"), "alice").is_err());
    assert!(standing(&policies, None, "ci").is_err());
    assert!(standing(&policies, None, "service:bot").is_err());
}

#[test]
fn service_accounts_count_only_where_named() {
    let mut facts = facts();
    facts.approvals = vec![
        approval("service:release-bot", true, 10),
        approval("bob", true, 5),
    ];
    check(
        &gates(2, Vec::new()),
        &facts,
        "pending
        approvals pending: 1 more approval (service:release-bot is a service account: it approves only where the gate's from: names it)",
    );
    check(
        &gates(
            2,
            vec![
                Approver::User("service:release-bot".to_owned()),
                Approver::User("bob".to_owned()),
            ],
        ),
        &facts,
        "allow
        approvals pass: approved by bob, service:release-bot",
    );
}
