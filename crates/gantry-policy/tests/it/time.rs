//! Gates that time alone changes: soak and freeze windows, and the decision's `wake_at`.

use gantry_policy::schedule::FreezeWindow;
use gantry_policy::{Gates, UpstreamFact};
use jiff::{SignedDuration, Timestamp};

use crate::{ago, check, facts};

fn soak(minutes: i64) -> Gates {
    Gates {
        soak: Some(SignedDuration::from_mins(minutes)),
        ..Gates::default()
    }
}

fn upstream(environment: &str, reached_minutes_ago: Option<i64>) -> UpstreamFact {
    UpstreamFact {
        environment: environment.to_owned(),
        reached_at: reached_minutes_ago.map(ago),
    }
}

#[test]
fn soak_waits_for_the_time_left_in_each_upstream() {
    let mut facts = facts();
    facts.upstreams = vec![upstream("staging", Some(48))];
    let decision = check(
        &soak(60),
        &facts,
        "pending
        soak pending: soak 12m left in staging
        wake at 2025-03-12T10:12:00Z",
    );
    assert_eq!(
        decision.wake_at,
        Some(ago(48) + SignedDuration::from_mins(60))
    );
    assert_eq!(decision.needs(), "soak 12m left in staging");

    // The earliest change wakes the release, even if another soak is still running then.
    facts.upstreams.push(upstream("perf", Some(10)));
    check(
        &soak(60),
        &facts,
        "pending
        soak pending: soak 12m left in staging, soak 50m left in perf
        wake at 2025-03-12T10:12:00Z",
    );

    facts.upstreams = vec![upstream("staging", Some(60)), upstream("perf", Some(61))];
    check(
        &soak(60),
        &facts,
        "allow
        soak pass: soaked at least 1h",
    );
}

#[test]
fn soak_in_an_upstream_not_reached_waits_without_a_wake_up() {
    let mut facts = facts();
    facts.upstreams = vec![upstream("staging", None)];
    check(
        &soak(90),
        &facts,
        "pending
        soak pending: soak 1h 30m in staging (not there yet)",
    );
}

#[test]
fn an_entry_environment_soaks_from_the_release_creation() {
    // The release was created three hours ago and the environment has no upstream.
    check(
        &soak(4 * 60 + 5),
        &facts(),
        "pending
        soak pending: soak 1h 5m left since creation
        wake at 2025-03-12T11:05:00Z",
    );
    check(
        &soak(3 * 60),
        &facts(),
        "allow
        soak pass: soaked at least 3h",
    );
    check(
        &soak(2 * 24 * 60),
        &facts(),
        "pending
        soak pending: soak 1d 21h left since creation
        wake at 2025-03-14T07:00:00Z",
    );
}

/// Friday 18:00 to Monday 08:00 in Berlin.
fn weekend() -> FreezeWindow {
    FreezeWindow::cron("weekend", "0 18 * * FRI", "62h", "Europe/Berlin").unwrap()
}

/// Christmas to New Year, every year.
fn holidays() -> FreezeWindow {
    FreezeWindow::rrule(
        "holidays",
        "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24",
        "2024-12-24T00:00",
        "8d",
        "Europe/Berlin",
    )
    .unwrap()
}

#[test]
fn a_freeze_window_holds_the_release_until_it_ends() {
    let gates = Gates {
        freeze: vec![weekend(), holidays()],
        ..Gates::default()
    };
    // Wednesday: no window is active.
    check(&gates, &facts(), "allow");

    let mut facts = facts();
    facts.now = "2025-03-15T12:00:00Z".parse().unwrap();
    let decision = check(
        &gates,
        &facts,
        "pending
        freeze pending: frozen by weekend (cron 0 18 * * FRI, 62h, Europe/Berlin) until 2025-03-17T07:00:00Z
        wake at 2025-03-17T07:00:00Z",
    );
    // Monday 08:00 in Berlin (CET, UTC+1).
    assert_eq!(
        decision.wake_at,
        Some(Timestamp::from_second(1_742_194_800).unwrap())
    );

    facts.now = "2025-12-27T12:00:00Z".parse().unwrap();
    check(
        &gates,
        &facts,
        "pending
        freeze pending: frozen by weekend (cron 0 18 * * FRI, 62h, Europe/Berlin) until 2025-12-29T07:00:00Z
        freeze pending: frozen by holidays (rrule FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24 from 2024-12-24T00:00, 192h, Europe/Berlin) until 2025-12-31T23:00:00Z
        wake at 2025-12-29T07:00:00Z",
    );
}
