//! Stopping the line, and the emergency path past freezes and stops.

use gantry_policy::schedule::FreezeWindow;
use gantry_policy::{ApprovalsGate, Approver, EmergencyRule, Gates, StopFact};

use crate::{ago, approval, check, facts};

/// Members of `oncall` may take the emergency path, with one approval more; Saturday
/// is frozen.
fn gates() -> Gates {
    Gates {
        approvals: Some(ApprovalsGate {
            count: 1,
            from: vec![Approver::Group("release-managers".to_owned())],
            expire_after: None,
        }),
        freeze: vec![
            FreezeWindow::cron("weekend", "0 18 * * FRI", "62h", "Europe/Berlin").unwrap(),
        ],
        emergency: Some(EmergencyRule {
            group: "oncall".to_owned(),
            extra_approvals: 1,
        }),
        ..Gates::default()
    }
}

/// Saturday noon, one approval from bob.
fn saturday() -> gantry_policy::Facts {
    let mut facts = facts();
    facts.now = "2025-03-15T12:00:00Z".parse().unwrap();
    facts.approvals = vec![approval("bob", true, 30)];
    facts
}

#[test]
fn a_freeze_holds_a_normal_promotion() {
    let decision = check(
        &gates(),
        &saturday(),
        "pending
        approvals pass: approved by bob
        freeze pending: frozen by weekend (cron 0 18 * * FRI, 62h, Europe/Berlin) until 2025-03-17T07:00:00Z
        wake at 2025-03-17T07:00:00Z",
    );
    assert!(!decision.emergency);
}

#[test]
fn the_emergency_path_passes_a_freeze_for_more_approvals() {
    let mut facts = saturday();
    facts.emergency = true;
    check(
        &gates(),
        &facts,
        "pending
        approvals pending: 1 more approval from group release-managers
        freeze pass: emergency: passes freeze window weekend (cron 0 18 * * FRI, 62h, Europe/Berlin) (until 2025-03-17T07:00:00Z)
        emergency",
    );
    facts.approvals.push(approval("carol", true, 5));
    let decision = check(
        &gates(),
        &facts,
        "allow
        approvals pass: approved by bob, carol
        freeze pass: emergency: passes freeze window weekend (cron 0 18 * * FRI, 62h, Europe/Berlin) (until 2025-03-17T07:00:00Z)
        emergency",
    );
    assert!(decision.emergency);
}

#[test]
fn only_members_of_the_emergency_group_may_ask() {
    let mut facts = saturday();
    facts.emergency = true;
    facts.requested_by = Some("bob".to_owned());
    facts.approvals = vec![approval("carol", true, 30)];
    check(
        &gates(),
        &facts,
        "deny
        emergency fail: only members of group oncall may ask for an emergency promotion
        approvals pass: approved by carol
        freeze pending: frozen by weekend (cron 0 18 * * FRI, 62h, Europe/Berlin) until 2025-03-17T07:00:00Z",
    );
    // Nor anyone where the environment has no emergency path.
    let mut gates = gates();
    gates.emergency = None;
    facts.requested_by = Some("alice".to_owned());
    check(
        &gates,
        &facts,
        "deny
        emergency fail: prod has no emergency path
        approvals pass: approved by carol
        freeze pending: frozen by weekend (cron 0 18 * * FRI, 62h, Europe/Berlin) until 2025-03-17T07:00:00Z",
    );
}

fn stop(environment: Option<&str>) -> StopFact {
    StopFact {
        environment: environment.map(str::to_owned),
        reason: "INC-4711: checkout errors".to_owned(),
        by: "erin".to_owned(),
        since: ago(45),
    }
}

#[test]
fn a_stopped_line_holds_promotions_until_lifted() {
    let gates = Gates {
        emergency: gates().emergency,
        ..Gates::default()
    };
    let mut facts = facts();
    facts.stops = vec![stop(None)];
    let decision = check(
        &gates,
        &facts,
        "pending
        stop pending: the line is stopped for project shop by erin: INC-4711: checkout errors",
    );
    // Only a person lifts a stop: there is nothing to wake up for.
    assert_eq!(decision.wake_at, None);
    facts.stops = vec![stop(Some("prod"))];
    check(
        &gates,
        &facts,
        "pending
        stop pending: the line is stopped for environment prod by erin: INC-4711: checkout errors",
    );
    facts.emergency = true;
    // The emergency path costs its extra approval even without an approvals gate.
    check(
        &gates,
        &facts,
        "pending
        approvals pending: 1 more approval
        stop pass: emergency: passes the stop of environment prod by erin: INC-4711: checkout errors
        emergency",
    );
    facts.approvals = vec![approval("bob", true, 5)];
    check(
        &gates,
        &facts,
        "allow
        approvals pass: approved by bob
        stop pass: emergency: passes the stop of environment prod by erin: INC-4711: checkout errors
        emergency",
    );
}

#[test]
fn extra_emergency_approvals_apply_without_an_approvals_gate() {
    let gates = Gates {
        emergency: Some(EmergencyRule {
            group: "oncall".to_owned(),
            extra_approvals: 1,
        }),
        ..Gates::default()
    };
    let mut facts = saturday();
    facts.approvals = Vec::new();
    facts.emergency = true;
    check(
        &gates,
        &facts,
        "pending
        approvals pending: 1 more approval
        emergency",
    );
    // Under the same separation of duties: the requester (alice) and the release's
    // creator (ci) do not count, nor a service account no gate names.
    facts.approvals = vec![
        approval("alice", true, 5),
        approval("ci", true, 4),
        approval("service:deployer", true, 3),
    ];
    check(
        &gates,
        &facts,
        "pending
        approvals pending: 1 more approval (alice asked for the promotion and cannot approve it; ci created the release and cannot approve it; service:deployer is a service account: it approves only where the gate's from: names it)
        emergency",
    );
    facts.approvals.push(approval("erin", true, 1));
    check(
        &gates,
        &facts,
        "allow
        approvals pass: approved by erin (alice asked for the promotion and cannot approve it; ci created the release and cannot approve it; service:deployer is a service account: it approves only where the gate's from: names it)
        emergency",
    );
}

#[test]
fn a_rollback_passes_a_stop_and_nothing_else() {
    let gates = gates();
    let mut facts = facts();
    facts.now = "2025-03-12T12:00:00Z".parse().unwrap();
    facts.stops = vec![stop(Some("prod"))];
    facts.rollback = true;
    check(
        &gates,
        &facts,
        "pending
        approvals pending: 1 more approval from group release-managers
        stop pass: rollback: passes the stop of environment prod by erin: INC-4711: checkout errors",
    );
    // A freeze still holds a rollback: the emergency path is the way through it.
    let mut facts = saturday();
    facts.stops = vec![stop(None)];
    facts.rollback = true;
    check(
        &gates,
        &facts,
        "pending
        approvals pass: approved by bob
        freeze pending: frozen by weekend (cron 0 18 * * FRI, 62h, Europe/Berlin) until 2025-03-17T07:00:00Z
        stop pass: rollback: passes the stop of project shop by erin: INC-4711: checkout errors
        wake at 2025-03-17T07:00:00Z",
    );
}
