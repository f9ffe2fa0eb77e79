//! Freeze windows: recurring periods (cron-style or RFC 5545 RRULE, in a time zone)
//! during which an environment takes no promotions.
//!
//! An occurrence starts at a wall-clock time produced by the recurrence in the window's
//! IANA time zone, so an 18:00 start stays 18:00 local across daylight-saving changes.
//! It then lasts a fixed [`SignedDuration`] of elapsed time: a 62 hour weekend freeze
//! from Friday 18:00 ends Monday 08:00 on most weekends, but 09:00 on the weekend the
//! clocks go forward and 07:00 on the weekend they go back.
//!
//! A wall-clock start that does not exist (it falls in a daylight-saving gap) is moved
//! forward by the length of the gap, and one that happens twice (in a fold) is the
//! earlier of the two: jiff's "compatible" disambiguation, which is also what RFC 5545
//! prescribes.
//!
//! Searches are bounded so that a rule that never or rarely matches (February 30th)
//! answers quickly: [`FreezeWindow::next_start_after`] looks at most
//! [`SEARCH_HORIZON`] ahead, and [`FreezeWindow::active_at`] merges at most
//! [`MAX_MERGED_OCCURRENCES`] chained occurrences.
//!
//! Architecture invariant: no I/O besides reading the time zone database when a window
//! is built, and no clock: callers pass the instant they ask about.

mod cron;
mod rrule;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};

pub use self::cron::Cron;
pub use self::rrule::RRule;

/// How far past the instant asked about searches look for an occurrence start (five
/// years of 366 days). A window whose next occurrence is further away counts as having
/// none.
pub const SEARCH_HORIZON: SignedDuration = SignedDuration::from_hours(5 * 366 * 24);

/// The longest duration an occurrence may have.
pub const MAX_DURATION: SignedDuration = SignedDuration::from_hours(366 * 24);

/// How many chained occurrences [`FreezeWindow::active_at`] merges into one frozen span.
/// A window that is frozen for longer (say, every minute for an hour) reports the end
/// of the first this many occurrences; the caller asks again then.
pub const MAX_MERGED_OCCURRENCES: usize = 10_000;

/// The most a time zone's daylight-saving and other offset changes may shuffle the
/// order of wall-clock times; more than any real zone needs.
const MAX_WALL_CLOCK_SLACK: SignedDuration = SignedDuration::from_hours(72);

/// A freeze window that cannot be built, naming the input at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ScheduleError {
    /// The input at fault: `"cron"`, `"rrule"`, `"start"`, `"duration"` or `"timezone"`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ScheduleError {
    fn new(field: &'static str, reason: impl Into<String>) -> ScheduleError {
        ScheduleError {
            field,
            reason: reason.into(),
        }
    }
}

/// How a freeze window's occurrences recur.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recurrence {
    /// A five-field cron expression.
    Cron(Cron),
    /// An RFC 5545 recurrence rule with its start.
    RRule(RRule),
}

impl fmt::Display for Recurrence {
    /// `cron 0 18 * * FRI` or `rrule FREQ=YEARLY;COUNT=3 from 2026-12-20T00:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recurrence::Cron(cron) => write!(f, "cron {cron}"),
            Recurrence::RRule(rule) => write!(f, "rrule {rule}"),
        }
    }
}

/// A recurring period during which an environment takes no promotions: each occurrence
/// starts when the recurrence fires (wall-clock time in `time_zone`) and lasts
/// `duration`.
#[derive(Debug, Clone)]
pub struct FreezeWindow {
    name: String,
    recurrence: Recurrence,
    duration: SignedDuration,
    time_zone: TimeZone,
}

impl FreezeWindow {
    /// A window whose occurrences start when a cron `expression` fires.
    ///
    /// `expression` has five fields, `minute hour day-of-month month day-of-week`, each
    /// a list of `*`, values, ranges and steps (`0,30`, `9-17`, `*/15`, `MON-FRI`); see
    /// [`Cron`] for the full syntax. As in Vixie cron, when both day fields are
    /// restricted a day matching either one matches.
    ///
    /// `duration` is like `62h`, `90m`, `2d` (24 hours a day), `1h30m` or `PT62H`,
    /// greater than zero and at most [`MAX_DURATION`]. `time_zone` is an IANA name such
    /// as `Europe/Berlin`.
    pub fn cron(
        name: &str,
        expression: &str,
        duration: &str,
        time_zone: &str,
    ) -> Result<FreezeWindow, ScheduleError> {
        let time_zone = parse_time_zone(time_zone)?;
        let duration = parse_duration(duration)?;
        let cron = Cron::parse(expression).map_err(|reason| ScheduleError::new("cron", reason))?;
        Ok(FreezeWindow {
            name: name.to_owned(),
            recurrence: Recurrence::Cron(cron),
            duration,
            time_zone,
        })
    }

    /// A window whose occurrences follow an RFC 5545 recurrence rule, such as
    /// `FREQ=WEEKLY;BYDAY=FR;BYHOUR=18;BYMINUTE=0`, from `start` (`DTSTART`), a
    /// wall-clock date-time such as `2026-12-20T18:00` in `time_zone`.
    ///
    /// See [`RRule`] for the parts supported; `duration` and `time_zone` are as for
    /// [`FreezeWindow::cron`].
    pub fn rrule(
        name: &str,
        rule: &str,
        start: &str,
        duration: &str,
        time_zone: &str,
    ) -> Result<FreezeWindow, ScheduleError> {
        let time_zone = parse_time_zone(time_zone)?;
        let duration = parse_duration(duration)?;
        let start = start.trim().parse::<DateTime>().map_err(|error| {
            ScheduleError::new(
                "start",
                format!("{start:?} is not a date-time like 2026-12-20T18:00: {error}"),
            )
        })?;
        let rule = RRule::parse(rule, start, &time_zone)
            .map_err(|reason| ScheduleError::new("rrule", reason))?;
        Ok(FreezeWindow {
            name: name.to_owned(),
            recurrence: Recurrence::RRule(rule),
            duration,
            time_zone,
        })
    }

    /// If `at` falls inside an occurrence (`start <= at < start + duration`), the end of
    /// the frozen span holding it: occurrences that overlap or touch are merged, up to
    /// [`MAX_MERGED_OCCURRENCES`] of them starting within [`SEARCH_HORIZON`] of `at`.
    /// `None` when `at` is not frozen.
    pub fn active_at(&self, at: Timestamp) -> Option<Timestamp> {
        // Occurrences holding `at` started less than one duration before it.
        let after = at.checked_sub(self.duration).unwrap_or(Timestamp::MIN);
        let mut starts = self.starts(
            after,
            at.saturating_add(SEARCH_HORIZON).unwrap_or(Timestamp::MAX),
        );
        let first = starts.next().filter(|&first| first <= at)?;
        let mut end = self.end_of(first);
        for start in starts.take(MAX_MERGED_OCCURRENCES - 1) {
            if start > end {
                break;
            }
            end = end.max(self.end_of(start));
        }
        Some(end)
    }

    /// The first occurrence start strictly after `at`, if one comes within
    /// [`SEARCH_HORIZON`] (and before the rule's `COUNT` or `UNTIL` ends it).
    pub fn next_start_after(&self, at: Timestamp) -> Option<Timestamp> {
        self.starts(
            at,
            at.saturating_add(SEARCH_HORIZON).unwrap_or(Timestamp::MAX),
        )
        .next()
    }

    /// The window's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the window recurs.
    pub fn recurrence(&self) -> &Recurrence {
        &self.recurrence
    }

    /// How long each occurrence lasts.
    pub fn duration(&self) -> SignedDuration {
        self.duration
    }

    /// The time zone the recurrence is read in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// A one-line description for explanations, such as
    /// `weekend (cron 0 18 * * FRI, 62h, Europe/Berlin)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {:#}, {})",
            self.name,
            self.recurrence,
            self.duration,
            self.time_zone.iana_name().unwrap_or("unnamed time zone")
        )
    }

    fn end_of(&self, start: Timestamp) -> Timestamp {
        start
            .saturating_add(self.duration)
            .unwrap_or(Timestamp::MAX)
    }

    /// The occurrence starts strictly after `after` and at most `limit`, in order.
    fn starts(&self, after: Timestamp, limit: Timestamp) -> Starts<'_> {
        let margin = MAX_WALL_CLOCK_SLACK;
        let slack = wall_clock_slack(
            &self.time_zone,
            after.saturating_sub(margin).unwrap_or(Timestamp::MIN),
            limit.saturating_add(margin).unwrap_or(Timestamp::MAX),
        );
        let from = self.time_zone.to_datetime(after).saturating_sub(slack);
        let civil_limit = self.time_zone.to_datetime(limit).saturating_add(slack);
        let wall_clock = match &self.recurrence {
            Recurrence::Cron(cron) => WallClockStarts::Cron(cron.starts(from, civil_limit)),
            Recurrence::RRule(rule) => {
                WallClockStarts::RRule(rule.starts(&self.time_zone, from, civil_limit))
            }
        };
        Starts {
            wall_clock,
            time_zone: &self.time_zone,
            after,
            limit,
            slack,
            pending: BinaryHeap::new(),
            latest_wall_clock: None,
            exhausted: false,
            last_emitted: None,
        }
    }
}

fn parse_time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    TimeZone::get(name.trim()).map_err(|error| {
        ScheduleError::new("timezone", format!("unknown time zone {name:?} ({error})"))
    })
}

/// Parses a duration, counting days as 24 hours.
fn parse_duration(text: &str) -> Result<SignedDuration, ScheduleError> {
    let invalid = |reason: String| ScheduleError::new("duration", reason);
    let span = text.trim().parse::<Span>().map_err(|error| {
        invalid(format!(
            "{text:?} is not a duration like 62h, 1h30m, 2d or PT62H ({error})"
        ))
    })?;
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| {
            invalid(format!(
                "{text:?} uses months or years, which have no fixed length"
            ))
        })?;
    if !duration.is_positive() {
        return Err(invalid(format!("{text:?} is not longer than zero")));
    }
    if duration > MAX_DURATION {
        return Err(invalid(format!(
            "{text:?} is longer than the maximum of 366 days"
        )));
    }
    Ok(duration)
}

/// The total forward jump of `time_zone`'s offset between `from` and `to`, capped at
/// [`MAX_WALL_CLOCK_SLACK`].
///
/// Wall-clock times map to instants in increasing order except across a forward jump
/// (a gap): a time inside the gap moves forward past times just after it. So among
/// wall-clock times further apart than this, the later one is always the later instant.
fn wall_clock_slack(time_zone: &TimeZone, from: Timestamp, to: Timestamp) -> SignedDuration {
    let mut previous = time_zone.to_offset(from);
    let mut total = SignedDuration::ZERO;
    for transition in time_zone.following(from) {
        if transition.timestamp() > to || total >= MAX_WALL_CLOCK_SLACK {
            break;
        }
        let jump = transition.offset().duration_since(previous);
        if jump.is_positive() {
            total = total.saturating_add(jump);
        }
        previous = transition.offset();
    }
    total.min(MAX_WALL_CLOCK_SLACK)
}

/// The wall-clock starts of either kind of recurrence, in increasing order.
#[derive(Debug)]
enum WallClockStarts<'a> {
    Cron(cron::CronStarts<'a>),
    RRule(rrule::RRuleStarts<'a>),
}

impl Iterator for WallClockStarts<'_> {
    type Item = DateTime;

    fn next(&mut self) -> Option<DateTime> {
        match self {
            WallClockStarts::Cron(starts) => starts.next(),
            WallClockStarts::RRule(starts) => starts.next(),
        }
    }
}

/// Occurrence starts as instants, strictly after `after` and at most `limit`, in
/// increasing order and without repeats.
///
/// The recurrences produce wall-clock times in order; their instants are in order too
/// except near a daylight-saving gap. So instants wait in a heap until the wall clock
/// has moved more than `slack` past them, after which nothing earlier can come.
#[derive(Debug)]
struct Starts<'a> {
    wall_clock: WallClockStarts<'a>,
    time_zone: &'a TimeZone,
    after: Timestamp,
    limit: Timestamp,
    slack: SignedDuration,
    pending: BinaryHeap<Reverse<(Timestamp, DateTime)>>,
    latest_wall_clock: Option<DateTime>,
    exhausted: bool,
    last_emitted: Option<Timestamp>,
}

impl Iterator for Starts<'_> {
    type Item = Timestamp;

    fn next(&mut self) -> Option<Timestamp> {
        loop {
            if let Some(&Reverse((instant, wall_clock))) = self.pending.peek() {
                let settled = self.exhausted
                    || self
                        .latest_wall_clock
                        .is_some_and(|latest| latest > wall_clock.saturating_add(self.slack));
                if settled {
                    self.pending.pop();
                    // A time in a gap can land on the instant of another start.
                    if self.last_emitted == Some(instant) {
                        continue;
                    }
                    self.last_emitted = Some(instant);
                    return Some(instant);
                }
            }
            if self.exhausted {
                return None;
            }
            match self.wall_clock.next() {
                None => self.exhausted = true,
                Some(wall_clock) => {
                    self.latest_wall_clock = Some(wall_clock);
                    if let Ok(instant) = self.time_zone.to_timestamp(wall_clock) {
                        if instant > self.after && instant <= self.limit {
                            self.pending.push(Reverse((instant, wall_clock)));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;

    use super::*;

    const BERLIN: &str = "Europe/Berlin";

    fn cron(expression: &str, duration: &str) -> FreezeWindow {
        FreezeWindow::cron("test", expression, duration, BERLIN)
            .unwrap_or_else(|error| panic!("{expression}: {error}"))
    }

    fn rrule(rule: &str, start: &str, duration: &str) -> FreezeWindow {
        FreezeWindow::rrule("test", rule, start, duration, BERLIN)
            .unwrap_or_else(|error| panic!("{rule}: {error}"))
    }

    /// Parses an instant written with its offset, like `2026-03-27T18:00+01:00`.
    fn instant(text: &str) -> Timestamp {
        text.parse()
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    /// Writes an instant as wall-clock time and offset in the window's zone.
    fn local(window: &FreezeWindow, at: Timestamp) -> String {
        at.to_zoned(window.time_zone().clone())
            .strftime("%Y-%m-%dT%H:%M%:z")
            .to_string()
    }

    /// Checks what `window` answers at `at`: the end of the frozen span holding it and
    /// the next start after it, all written as local time with offset.
    #[track_caller]
    fn check(
        window: &FreezeWindow,
        at: &str,
        expected_active_end: Option<&str>,
        expected_next_start: Option<&str>,
    ) {
        let moment = instant(at);
        let actual = (
            window.active_at(moment).map(|end| local(window, end)),
            window
                .next_start_after(moment)
                .map(|start| local(window, start)),
        );
        let expected = (
            expected_active_end.map(str::to_owned),
            expected_next_start.map(str::to_owned),
        );
        assert_eq!(
            actual,
            expected,
            "{} at {at} (active end, next start)",
            window.describe()
        );
    }

    /// Checks the next `expected.len()` starts after `after`.
    #[track_caller]
    fn check_starts(window: &FreezeWindow, after: &str, expected: &[&str]) {
        let mut actual = Vec::new();
        let mut at = instant(after);
        while actual.len() < expected.len() {
            let Some(start) = window.next_start_after(at) else {
                break;
            };
            actual.push(local(window, start));
            at = start;
        }
        assert_eq!(actual, expected, "{} after {after}", window.describe());
    }

    #[test]
    fn weekend_freeze_across_daylight_saving_changes() {
        let windows = [
            cron("0 18 * * FRI", "62h"),
            cron("0 18 * * 5", "2d14h"),
            rrule(
                "FREQ=WEEKLY;BYDAY=FR;BYHOUR=18;BYMINUTE=0",
                "2026-01-02T18:00",
                "PT62H",
            ),
        ];
        for window in &windows {
            check(
                window,
                "2026-03-20T17:59+01:00",
                None,
                Some("2026-03-20T18:00+01:00"),
            );
            check(
                window,
                "2026-03-20T18:00+01:00",
                Some("2026-03-23T08:00+01:00"),
                Some("2026-03-27T18:00+01:00"),
            );
            check(
                window,
                "2026-03-23T07:59+01:00",
                Some("2026-03-23T08:00+01:00"),
                Some("2026-03-27T18:00+01:00"),
            );
            check(
                window,
                "2026-03-23T08:00+01:00",
                None,
                Some("2026-03-27T18:00+01:00"),
            );
            // Clocks go forward on Sunday 29 March: 62 hours end at 09:00 summer time,
            // and the next start is 18:00 summer time.
            check(
                window,
                "2026-03-28T12:00+01:00",
                Some("2026-03-30T09:00+02:00"),
                Some("2026-04-03T18:00+02:00"),
            );
            check(
                window,
                "2026-03-30T08:30+02:00",
                Some("2026-03-30T09:00+02:00"),
                Some("2026-04-03T18:00+02:00"),
            );
            // Clocks go back on Sunday 25 October: 62 hours end at 07:00 winter time.
            check(
                window,
                "2026-10-23T18:00+02:00",
                Some("2026-10-26T07:00+01:00"),
                Some("2026-10-30T18:00+01:00"),
            );
            check(
                window,
                "2026-10-25T02:30+01:00",
                Some("2026-10-26T07:00+01:00"),
                Some("2026-10-30T18:00+01:00"),
            );
            check(
                window,
                "2026-10-26T07:00+01:00",
                None,
                Some("2026-10-30T18:00+01:00"),
            );
        }
    }

    #[test]
    fn nightly_window_crosses_midnight() {
        let window = cron("0 22 * * *", "8h");
        check(
            &window,
            "2026-06-10T21:59+02:00",
            None,
            Some("2026-06-10T22:00+02:00"),
        );
        check(
            &window,
            "2026-06-10T23:30+02:00",
            Some("2026-06-11T06:00+02:00"),
            Some("2026-06-11T22:00+02:00"),
        );
        check(
            &window,
            "2026-06-11T05:59+02:00",
            Some("2026-06-11T06:00+02:00"),
            Some("2026-06-11T22:00+02:00"),
        );
        check(
            &window,
            "2026-06-11T06:00+02:00",
            None,
            Some("2026-06-11T22:00+02:00"),
        );
        // The night the clocks go forward still lasts 8 hours of elapsed time.
        check(
            &window,
            "2026-03-29T01:00+01:00",
            Some("2026-03-29T07:00+02:00"),
            Some("2026-03-29T22:00+02:00"),
        );
    }

    #[test]
    fn cron_lists_ranges_steps_and_names() {
        // Hours 8, 13 and 18 on weekdays, on the hour and half past.
        let window = cron("0,30 8-18/5 * * MON-FRI", "15m");
        check(
            &window,
            "2026-06-08T13:10+02:00",
            Some("2026-06-08T13:15+02:00"),
            Some("2026-06-08T13:30+02:00"),
        );
        check(
            &window,
            "2026-06-08T13:20+02:00",
            None,
            Some("2026-06-08T13:30+02:00"),
        );
        check(
            &window,
            "2026-06-08T08:31+02:00",
            Some("2026-06-08T08:45+02:00"),
            Some("2026-06-08T13:00+02:00"),
        );
        check(
            &window,
            "2026-06-12T18:50+02:00",
            None,
            Some("2026-06-15T08:00+02:00"),
        );
        check(
            &window,
            "2026-06-13T08:00+02:00",
            None,
            Some("2026-06-15T08:00+02:00"),
        );

        let cases: [(&str, &str, &[&str]); 6] = [
            // Both day fields restricted: the 13th or a Friday.
            (
                "0 12 13 * FRI",
                "2026-06-09T00:00+02:00",
                &[
                    "2026-06-12T12:00+02:00",
                    "2026-06-13T12:00+02:00",
                    "2026-06-19T12:00+02:00",
                ],
            ),
            // Day of month starts with `*`: odd days that are Fridays.
            (
                "0 12 */2 * FRI",
                "2026-06-06T00:00+02:00",
                &["2026-06-19T12:00+02:00", "2026-07-03T12:00+02:00"],
            ),
            (
                "0 0 1 jan,Jul *",
                "2026-02-01T00:00+01:00",
                &["2026-07-01T00:00+02:00", "2027-01-01T00:00+01:00"],
            ),
            // 7 is Sunday too.
            (
                "0 0 * * 7",
                "2026-06-08T00:00+02:00",
                &["2026-06-14T00:00+02:00", "2026-06-21T00:00+02:00"],
            ),
            // `5/20` is 5, 25 and 45.
            (
                "5/20 12 * * *",
                "2026-06-08T12:06+02:00",
                &[
                    "2026-06-08T12:25+02:00",
                    "2026-06-08T12:45+02:00",
                    "2026-06-09T12:05+02:00",
                ],
            ),
            (
                "@weekly",
                "2026-06-08T00:00+02:00",
                &["2026-06-14T00:00+02:00"],
            ),
        ];
        for (expression, after, expected) in cases {
            check_starts(&cron(expression, "1h"), after, expected);
        }
    }

    #[test]
    fn nonexistent_and_repeated_local_times() {
        // 02:30 does not exist on 29 March and moves to 03:30 summer time; on 25
        // October it happens twice and only the first counts.
        let window = cron("30 2 * * *", "10m");
        check(
            &window,
            "2026-03-29T00:00+01:00",
            None,
            Some("2026-03-29T03:30+02:00"),
        );
        check(
            &window,
            "2026-03-29T03:35+02:00",
            Some("2026-03-29T03:40+02:00"),
            Some("2026-03-30T02:30+02:00"),
        );
        check(
            &window,
            "2026-10-25T02:35+02:00",
            Some("2026-10-25T02:40+02:00"),
            Some("2026-10-26T02:30+01:00"),
        );
        check(
            &window,
            "2026-10-25T02:35+01:00",
            None,
            Some("2026-10-26T02:30+01:00"),
        );
        // Moved times keep instants in order and do not repeat: 02:00 becomes 03:00 and
        // 02:45 becomes 03:45, which the wall clock reaches again after 03:00.
        check_starts(
            &cron("0,45 2,3 * * *", "10m"),
            "2026-03-29T00:00+01:00",
            &[
                "2026-03-29T03:00+02:00",
                "2026-03-29T03:45+02:00",
                "2026-03-30T02:00+02:00",
            ],
        );
    }

    #[test]
    fn yearly_rule_with_count() {
        let window = rrule("FREQ=YEARLY;COUNT=3", "2026-12-20T00:00", "14d");
        check(
            &window,
            "2026-12-19T12:00+01:00",
            None,
            Some("2026-12-20T00:00+01:00"),
        );
        check(
            &window,
            "2027-01-02T12:00+01:00",
            Some("2027-01-03T00:00+01:00"),
            Some("2027-12-20T00:00+01:00"),
        );
        check(
            &window,
            "2028-12-25T00:00+01:00",
            Some("2029-01-03T00:00+01:00"),
            None,
        );
        check(&window, "2029-12-25T00:00+01:00", None, None);

        check_starts(
            &rrule(
                "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=20;BYHOUR=18;COUNT=2",
                "2026-01-01T00:00",
                "1h",
            ),
            "2026-06-01T00:00+02:00",
            &["2026-12-20T18:00+01:00", "2027-12-20T18:00+01:00"],
        );
        check(
            &rrule(
                "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=20;BYHOUR=18;COUNT=2",
                "2026-01-01T00:00",
                "1h",
            ),
            "2027-12-21T00:00+01:00",
            None,
            None,
        );
    }

    #[test]
    fn monthly_and_yearly_weekday_rules() {
        let last_friday = rrule(
            "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=12;BYMINUTE=0",
            "2026-01-01T00:00",
            "12h",
        );
        check(
            &last_friday,
            "2026-01-01T00:00+01:00",
            None,
            Some("2026-01-30T12:00+01:00"),
        );
        check(
            &last_friday,
            "2026-01-30T13:00+01:00",
            Some("2026-01-31T00:00+01:00"),
            Some("2026-02-27T12:00+01:00"),
        );
        check(
            &last_friday,
            "2026-05-01T00:00+02:00",
            None,
            Some("2026-05-29T12:00+02:00"),
        );

        let cases: [(&str, &str, &[&str]); 5] = [
            (
                "FREQ=MONTHLY;BYDAY=1MO",
                "2026-01-15T09:00+01:00",
                &["2026-02-02T09:00+01:00", "2026-03-02T09:00+01:00"],
            ),
            (
                "FREQ=MONTHLY;BYMONTHDAY=-1",
                "2026-01-15T09:00+01:00",
                &["2026-01-31T09:00+01:00", "2026-02-28T09:00+01:00"],
            ),
            // Last Friday of the year, and the fourth Thursday of November.
            (
                "FREQ=YEARLY;BYDAY=-1FR",
                "2026-01-15T09:00+01:00",
                &["2026-12-25T09:00+01:00"],
            ),
            (
                "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
                "2026-01-15T09:00+01:00",
                &["2026-11-26T09:00+01:00"],
            ),
            (
                "FREQ=DAILY;INTERVAL=3;BYDAY=MO,TU,WE,TH,FR",
                "2026-01-15T09:00+01:00",
                &[
                    "2026-01-21T09:00+01:00",
                    "2026-01-27T09:00+01:00",
                    "2026-01-30T09:00+01:00",
                ],
            ),
        ];
        for (rule, after, expected) in cases {
            check_starts(&rrule(rule, "2026-01-15T09:00", "1h"), after, expected);
        }

        // RFC 5545's own example of WKST mattering (every other week, New York time).
        let new_york = |rule| {
            FreezeWindow::rrule("test", rule, "1997-08-05T09:00", "1h", "America/New_York").unwrap()
        };
        check_starts(
            &new_york("FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO"),
            "1997-08-01T00:00-04:00",
            &[
                "1997-08-05T09:00-04:00",
                "1997-08-10T09:00-04:00",
                "1997-08-19T09:00-04:00",
                "1997-08-24T09:00-04:00",
            ],
        );
        check_starts(
            &new_york("FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU"),
            "1997-08-01T00:00-04:00",
            &[
                "1997-08-05T09:00-04:00",
                "1997-08-17T09:00-04:00",
                "1997-08-19T09:00-04:00",
                "1997-08-31T09:00-04:00",
            ],
        );
    }

    #[test]
    fn until_ends_the_rule() {
        let window = rrule(
            "FREQ=DAILY;BYHOUR=22;UNTIL=20260105T230000Z",
            "2026-01-01T22:00",
            "1h",
        );
        check(
            &window,
            "2026-01-04T23:30+01:00",
            None,
            Some("2026-01-05T22:00+01:00"),
        );
        check(
            &window,
            "2026-01-05T22:30+01:00",
            Some("2026-01-05T23:00+01:00"),
            None,
        );
        check(&window, "2026-01-06T22:30+01:00", None, None);
        // A local UNTIL, and a date through the end of that day.
        for rule in [
            "FREQ=DAILY;UNTIL=20260103T220000",
            "FREQ=DAILY;UNTIL=20260103",
        ] {
            let window = rrule(rule, "2026-01-01T22:00", "1h");
            check(
                &window,
                "2026-01-02T22:30+01:00",
                Some("2026-01-02T23:00+01:00"),
                Some("2026-01-03T22:00+01:00"),
            );
            check(
                &window,
                "2026-01-03T22:30+01:00",
                Some("2026-01-03T23:00+01:00"),
                None,
            );
        }
    }

    #[test]
    fn overlapping_and_touching_occurrences_merge() {
        let overlapping = cron("0 9,12 * * *", "4h");
        check(
            &overlapping,
            "2026-06-10T10:00+02:00",
            Some("2026-06-10T16:00+02:00"),
            Some("2026-06-10T12:00+02:00"),
        );
        check(
            &overlapping,
            "2026-06-10T12:30+02:00",
            Some("2026-06-10T16:00+02:00"),
            Some("2026-06-11T09:00+02:00"),
        );
        check(
            &overlapping,
            "2026-06-10T16:00+02:00",
            None,
            Some("2026-06-11T09:00+02:00"),
        );
        let touching = cron("0 9,13 * * *", "4h");
        check(
            &touching,
            "2026-06-10T10:00+02:00",
            Some("2026-06-10T17:00+02:00"),
            Some("2026-06-10T13:00+02:00"),
        );

        // Always frozen: the answer is the end of the first MAX_MERGED_OCCURRENCES.
        let always = cron("* * * * *", "1h");
        let at = instant("2026-06-10T12:00:30+02:00");
        let merged_minutes = i64::try_from(MAX_MERGED_OCCURRENCES).unwrap();
        assert_eq!(
            always.active_at(at),
            Some(
                instant("2026-06-10T11:01+02:00") + SignedDuration::from_mins(merged_minutes + 59)
            )
        );
    }

    #[test]
    fn rules_that_never_match_answer_none() {
        let windows = [
            cron("0 0 30 2 *", "1h"),
            cron("0 0 31 4,6,9,11 *", "1h"),
            rrule(
                "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
                "2026-01-01T00:00",
                "1h",
            ),
            rrule(
                "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=31",
                "2026-01-01T00:00",
                "1h",
            ),
            rrule(
                "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=5",
                "2026-01-01T00:00",
                "1h",
            ),
            rrule("FREQ=MONTHLY;BYDAY=6MO", "2026-01-01T00:00", "1h"),
            rrule("FREQ=YEARLY;BYMONTH=2;BYDAY=-6SU", "2026-01-01T00:00", "1h"),
        ];
        for window in &windows {
            check(window, "2026-06-10T12:00+02:00", None, None);
        }
        // Beyond the search horizon counts as never.
        check(
            &rrule("FREQ=YEARLY;INTERVAL=10", "2020-06-01T00:00", "1h"),
            "2020-07-01T00:00+02:00",
            None,
            None,
        );
    }

    #[test]
    fn durations() {
        let cases = [
            ("62h", SignedDuration::from_hours(62)),
            ("90m", SignedDuration::from_mins(90)),
            ("2d", SignedDuration::from_hours(48)),
            ("1h30m", SignedDuration::from_mins(90)),
            ("PT62H", SignedDuration::from_hours(62)),
            ("P14D", SignedDuration::from_hours(14 * 24)),
            ("1 day 2 hours", SignedDuration::from_hours(26)),
            ("1w", SignedDuration::from_hours(7 * 24)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn describe() {
        assert_eq!(
            FreezeWindow::cron("weekend", "0  18 * *\tFRI", "62h", BERLIN)
                .unwrap()
                .describe(),
            "weekend (cron 0 18 * * FRI, 62h, Europe/Berlin)"
        );
        assert_eq!(
            FreezeWindow::rrule(
                "holidays",
                "FREQ=YEARLY;COUNT=3",
                "2026-12-20T00:00",
                "1h30m",
                BERLIN
            )
            .unwrap()
            .describe(),
            "holidays (rrule FREQ=YEARLY;COUNT=3 from 2026-12-20T00:00, 1h 30m, Europe/Berlin)"
        );
    }

    #[test]
    fn errors_name_the_field_and_reason() {
        let cron = |expression: &str, duration: &str, time_zone: &str| {
            FreezeWindow::cron("test", expression, duration, time_zone).map(|_| ())
        };
        let rrule = |rule: &str, start: &str| {
            FreezeWindow::rrule("test", rule, start, "1h", BERLIN).map(|_| ())
        };
        let cases = [
            (
                cron("0 18 * * FRI", "62h", "Europe/Berln"),
                "timezone",
                "unknown time zone \"Europe/Berln\"",
            ),
            (
                cron("0 25 * * *", "1h", BERLIN),
                "cron",
                "field \"hour\": value 25 out of range 0-23",
            ),
            (
                cron("0 18 * *", "1h", BERLIN),
                "cron",
                "expected 5 fields (minute hour day-of-month month day-of-week), found 4",
            ),
            (
                cron("0 18 * * FRX", "1h", BERLIN),
                "cron",
                "field \"day-of-week\": \"FRX\" is not a number in 0-7 or one of SUN, MON,",
            ),
            (
                cron("0 18 5-2 * *", "1h", BERLIN),
                "cron",
                "field \"day-of-month\": range 5-2 goes backwards",
            ),
            (
                cron("*/0 18 * * *", "1h", BERLIN),
                "cron",
                "field \"minute\": step \"0\" is not a positive number",
            ),
            (
                cron("0 18 1,,2 * *", "1h", BERLIN),
                "cron",
                "field \"day-of-month\": empty list element in \"1,,2\"",
            ),
            (
                cron("@reboot", "1h", BERLIN),
                "cron",
                "unknown macro \"@reboot\" (expected @yearly, @annually, @monthly,",
            ),
            (
                cron("0 18 * * FRI", "0h", BERLIN),
                "duration",
                "\"0h\" is not longer than zero",
            ),
            (
                cron("0 18 * * FRI", "-5h", BERLIN),
                "duration",
                "\"-5h\" is not longer than zero",
            ),
            (
                cron("0 18 * * FRI", "400d", BERLIN),
                "duration",
                "\"400d\" is longer than the maximum of 366 days",
            ),
            (
                cron("0 18 * * FRI", "1mo", BERLIN),
                "duration",
                "\"1mo\" uses months or years, which have no fixed length",
            ),
            (
                rrule("BYDAY=FR", "2026-01-01T00:00"),
                "rrule",
                "missing FREQ (one of DAILY, WEEKLY, MONTHLY, YEARLY)",
            ),
            (
                rrule("FREQ=WEEKLY;FOO=1", "2026-01-01T00:00"),
                "rrule",
                "unknown RRULE part \"FOO\"",
            ),
            (
                rrule("FREQ=HOURLY", "2026-01-01T00:00"),
                "rrule",
                "FREQ=HOURLY is not supported (use DAILY, WEEKLY, MONTHLY or YEARLY)",
            ),
            (
                rrule("FREQ=WEEKLY;BYSETPOS=1", "2026-01-01T00:00"),
                "rrule",
                "BYSETPOS is not supported",
            ),
            (
                rrule("FREQ=WEEKLY;BYDAY=1FR", "2026-01-01T00:00"),
                "rrule",
                "BYDAY ordinals like 1MO or -1FR need FREQ=MONTHLY or FREQ=YEARLY",
            ),
            (
                rrule("FREQ=MONTHLY;BYDAY=FRI", "2026-01-01T00:00"),
                "rrule",
                "BYDAY value \"FRI\" is not a weekday like FR, 1MO or -1FR",
            ),
            (
                rrule("FREQ=MONTHLY;BYMONTHDAY=0", "2026-01-01T00:00"),
                "rrule",
                "BYMONTHDAY value \"0\" is not in -31..=-1 or 1..=31",
            ),
            (
                rrule("FREQ=DAILY;BYHOUR=24", "2026-01-01T00:00"),
                "rrule",
                "BYHOUR value \"24\" is not in 0..=23",
            ),
            (
                rrule("FREQ=DAILY;COUNT=2;UNTIL=20270101", "2026-01-01T00:00"),
                "rrule",
                "COUNT and UNTIL cannot both be given",
            ),
            (
                rrule("FREQ=DAILY;UNTIL=2027-01-01", "2026-01-01T00:00"),
                "rrule",
                "UNTIL \"2027-01-01\" is not a date-time like 20261231T235959Z,",
            ),
            (
                rrule("FREQ=DAILY;FREQ=WEEKLY", "2026-01-01T00:00"),
                "rrule",
                "part FREQ appears more than once",
            ),
            (
                rrule("FREQ=DAILY", "2026-12-32T18:00"),
                "start",
                "\"2026-12-32T18:00\" is not a date-time like 2026-12-20T18:00",
            ),
        ];
        // Each reason is checked as a prefix: the time zone and start messages go on with
        // jiff's own explanation.
        for (result, field, reason) in cases {
            let error = result.expect_err(reason);
            assert_eq!(error.field, field, "{error}");
            assert!(
                error.reason.starts_with(reason),
                "{error}\nexpected reason starting with: {reason}"
            );
            assert_eq!(
                error.to_string(),
                format!("invalid {field}: {}", error.reason)
            );
        }
    }

    /// Windows of every kind for the property test.
    static SAMPLE_WINDOWS: LazyLock<Vec<FreezeWindow>> = LazyLock::new(|| {
        vec![
            cron("0 18 * * FRI", "62h"),
            cron("0 22 * * *", "8h"),
            cron("0 9,12 * * *", "4h"),
            cron("0,45 2,3 * * *", "30m"),
            rrule(
                "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=12",
                "2024-01-01T00:00",
                "12h",
            ),
            rrule("FREQ=YEARLY;COUNT=10", "2024-12-20T00:00", "14d"),
            rrule(
                "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;UNTIL=20320101T000000Z",
                "2024-01-02T23:30",
                "2d",
            ),
        ]
    });

    proptest! {
        #[test]
        fn answers_are_consistent(
            seconds in 1_704_067_200_i64..2_051_222_400,
            which in 0..SAMPLE_WINDOWS.len(),
        ) {
            let window = &SAMPLE_WINDOWS[which];
            let at = Timestamp::from_second(seconds).unwrap();
            let active_end = window.active_at(at);
            if let Some(end) = active_end {
                prop_assert!(end > at);
                if let Some(later) = window.active_at(end) {
                    prop_assert!(later > end);
                }
            }
            if let Some(next) = window.next_start_after(at) {
                prop_assert!(next > at);
                prop_assert!(window.active_at(next).is_some());
            }
            // Frozen exactly when an occurrence starts less than one duration before.
            let recent_start = window.next_start_after(at - window.duration());
            prop_assert_eq!(active_end.is_some(), recent_start.is_some_and(|start| start <= at));
        }
    }
}
