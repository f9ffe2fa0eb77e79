//! RFC 5545 recurrence rules: the value of an `RRULE` property, with the first
//! occurrence (`DTSTART`) given separately as a wall-clock date-time.

use std::fmt;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// How many years after its start a rule's `COUNT` is looked for. Resolving `COUNT` walks
/// the rule from the start, so this bounds the walk for rules that rarely or never match;
/// a rule that has not used up its `COUNT` by then ends there.
const COUNT_HORIZON_YEARS: i16 = 100;

/// A parsed recurrence rule with its start (`DTSTART`).
///
/// Supported parts: `FREQ` (`DAILY`, `WEEKLY`, `MONTHLY`, `YEARLY`), `INTERVAL`, `COUNT`,
/// `UNTIL`, `WKST`, `BYMONTH`, `BYMONTHDAY` (negative counts from the month's end),
/// `BYDAY` (with ordinals such as `1MO` or `-1FR` for `MONTHLY` and `YEARLY`), `BYHOUR`,
/// `BYMINUTE` and `BYSECOND`. Parts left out take their value from the start, as RFC 5545
/// says. Not supported: `FREQ` below `DAILY`, `BYYEARDAY`, `BYWEEKNO` and `BYSETPOS`.
///
/// The start bounds the rule and supplies those defaults; like most implementations
/// (and unlike a strict reading of RFC 5545), it is an occurrence only if it matches
/// the rule. `COUNT` counts occurrences from the start, looking at most 100 years
/// ahead. `COUNT` and `UNTIL` cannot be combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRule {
    rule: String,
    start: DateTime,
    frequency: Frequency,
    interval: i64,
    /// Sorted, without duplicates; empty means any month.
    months: Vec<i8>,
    /// Days of the month, negative counting from the end; empty means no `BYMONTHDAY`.
    month_days: Vec<i8>,
    /// Empty means no `BYDAY`.
    weekdays: Vec<WeekdayRule>,
    /// Sorted, without duplicates, never empty.
    hours: Vec<i8>,
    /// Sorted, without duplicates, never empty.
    minutes: Vec<i8>,
    /// Sorted, without duplicates, never empty.
    seconds: Vec<i8>,
    /// The first day of the `WKST` week holding the start; `WEEKLY` periods count from it.
    first_week_start: Date,
    end: End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// One `BYDAY` element: a weekday, optionally the nth (from the end if negative) in the
/// month or year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WeekdayRule {
    ordinal: Option<i8>,
    weekday: Weekday,
}

/// Where a rule stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Never,
    /// `COUNT`, resolved when parsing to the last occurrence it allows.
    AfterWallClock(DateTime),
    /// `UNTIL`, inclusive.
    AfterInstant(Timestamp),
    /// `COUNT` found no occurrence at all.
    Empty,
}

impl RRule {
    /// Parses `rule`; the error is the reason. A local (floating) `UNTIL` is read in
    /// `time_zone`.
    pub(super) fn parse(
        rule: &str,
        start: DateTime,
        time_zone: &TimeZone,
    ) -> Result<RRule, String> {
        let trimmed = rule.trim();
        let body = match trimmed.get(..6) {
            Some(prefix) if prefix.eq_ignore_ascii_case("RRULE:") => &trimmed[6..],
            _ => trimmed,
        };
        let mut parts = Parts::default();
        let mut seen: Vec<String> = Vec::new();
        for part in body.split(';').filter(|part| !part.trim().is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(format!("part {part:?} is not NAME=VALUE"));
            };
            let (name, value) = (name.trim(), value.trim());
            let upper = name.to_ascii_uppercase();
            if seen.contains(&upper) {
                return Err(format!("part {upper} appears more than once"));
            }
            parts.set(&upper, name, value, time_zone)?;
            seen.push(upper);
        }
        parts.into_rule(trimmed, start, time_zone)
    }

    /// The rule as written.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The start (`DTSTART`) as a wall-clock date-time in the window's time zone.
    pub fn start(&self) -> DateTime {
        self.start
    }

    /// The occurrences from `from` (inclusive) to `limit` (inclusive) as wall-clock
    /// date-times, in increasing order. `time_zone` is needed to compare with `UNTIL`.
    pub(super) fn starts<'a>(
        &'a self,
        time_zone: &'a TimeZone,
        from: DateTime,
        limit: DateTime,
    ) -> RRuleStarts<'a> {
        RRuleStarts {
            rule: self,
            time_zone,
            from,
            limit,
            period: self.first_period_reaching(from),
            pending: Vec::new().into_iter(),
            done: self.end == End::Empty,
        }
    }

    /// The index of the first period that can hold an occurrence at or after `from`.
    /// Periods before it end before `from`, so a walk may skip them (`COUNT` is resolved
    /// when parsing, so nothing needs counting).
    fn first_period_reaching(&self, from: DateTime) -> i64 {
        if from <= self.start {
            return 0;
        }
        let (from_date, start_date) = (from.date(), self.start.date());
        let periods = match self.frequency {
            Frequency::Daily => days_between(start_date, from_date),
            Frequency::Weekly => days_between(self.first_week_start, from_date).div_euclid(7),
            Frequency::Monthly => month_index(from_date) - month_index(start_date),
            Frequency::Yearly => i64::from(from_date.year()) - i64::from(start_date.year()),
        };
        periods.div_euclid(self.interval).max(0)
    }

    /// The first day of period `index` and its candidate dates, sorted; `None` when the
    /// period lies outside the supported calendar.
    fn period_dates(&self, index: i64) -> Option<(Date, Vec<Date>)> {
        let step = index.checked_mul(self.interval)?;
        let start = self.start.date();
        match self.frequency {
            Frequency::Daily => {
                let date = add_days(start, step)?;
                let allowed = self.month_allowed(date.month())
                    && (self.month_days.is_empty() || self.month_day_matches(date))
                    && (self.weekdays.is_empty()
                        || self
                            .weekdays
                            .iter()
                            .any(|rule| rule.weekday == date.weekday()));
                Some((date, if allowed { vec![date] } else { Vec::new() }))
            }
            Frequency::Weekly => {
                let week_start = add_days(self.first_week_start, step.checked_mul(7)?)?;
                let mut dates = Vec::new();
                for offset in 0..7 {
                    let date = add_days(week_start, offset)?;
                    let weekday_allowed = if self.weekdays.is_empty() {
                        date.weekday() == start.weekday()
                    } else {
                        self.weekdays
                            .iter()
                            .any(|rule| rule.weekday == date.weekday())
                    };
                    if weekday_allowed && self.month_allowed(date.month()) {
                        dates.push(date);
                    }
                }
                Some((week_start, dates))
            }
            Frequency::Monthly => {
                let index = month_index(start).checked_add(step)?;
                let year = i16::try_from(index.div_euclid(12)).ok()?;
                let first = Date::new(year, (index.rem_euclid(12) + 1) as i8, 1).ok()?;
                let mut dates = Vec::new();
                if self.month_allowed(first.month()) {
                    self.push_month_dates(first, &mut dates);
                }
                Some((first, dates))
            }
            Frequency::Yearly => {
                let year = i16::try_from(i64::from(start.year()).checked_add(step)?).ok()?;
                let first = Date::new(year, 1, 1).ok()?;
                let mut dates = Vec::new();
                if self.months.is_empty() && !self.weekdays.is_empty() {
                    // BYDAY without BYMONTH: ordinals count within the year.
                    self.push_year_weekday_dates(first, &mut dates);
                } else {
                    let months: Vec<i8> = if !self.months.is_empty() {
                        self.months.clone()
                    } else if self.month_days.is_empty() {
                        vec![start.month()]
                    } else {
                        (1..=12).collect()
                    };
                    for month in months {
                        self.push_month_dates(first.with().month(month).build().ok()?, &mut dates);
                    }
                }
                Some((first, dates))
            }
        }
    }

    /// Pushes the candidate dates of the month starting at `first`: `BYMONTHDAY` and
    /// `BYDAY` (ordinals within the month) both have to match; without either, the
    /// start's day of the month.
    fn push_month_dates(&self, first: Date, dates: &mut Vec<Date>) {
        let days_in_month = first.days_in_month();
        for day in 1..=days_in_month {
            let Ok(date) = first.with().day(day).build() else {
                continue;
            };
            let month_day = if self.month_days.is_empty() {
                !self.weekdays.is_empty() || day == self.start.day()
            } else {
                self.month_day_matches(date)
            };
            let weekday = self.weekdays.is_empty()
                || self.weekdays.iter().any(|rule| {
                    let from_start = (day - 1) / 7 + 1;
                    let from_end = (days_in_month - day) / 7 + 1;
                    rule.matches(date.weekday(), from_start, from_end)
                });
            if month_day && weekday {
                dates.push(date);
            }
        }
    }

    /// Pushes the dates of the year starting at `first` that match `BYDAY` with ordinals
    /// counted within the year (and `BYMONTHDAY`, if given).
    fn push_year_weekday_dates(&self, first: Date, dates: &mut Vec<Date>) {
        let days_in_year = first.days_in_year();
        for day_of_year in 1..=days_in_year {
            let Ok(date) = first.with().day_of_year(day_of_year).build() else {
                continue;
            };
            let from_start = ((day_of_year - 1) / 7 + 1) as i8;
            let from_end = ((days_in_year - day_of_year) / 7 + 1) as i8;
            if (self.month_days.is_empty() || self.month_day_matches(date))
                && self
                    .weekdays
                    .iter()
                    .any(|rule| rule.matches(date.weekday(), from_start, from_end))
            {
                dates.push(date);
            }
        }
    }

    fn month_allowed(&self, month: i8) -> bool {
        self.months.is_empty() || self.months.contains(&month)
    }

    fn month_day_matches(&self, date: Date) -> bool {
        let from_end = date.day() - date.days_in_month() - 1;
        self.month_days
            .iter()
            .any(|&day| day == date.day() || day == from_end)
    }

    /// Whether `candidate` lies past the rule's end (`COUNT` or `UNTIL`).
    fn ended_before(&self, candidate: DateTime, time_zone: &TimeZone) -> bool {
        match self.end {
            End::Never => false,
            End::AfterWallClock(last) => candidate > last,
            End::AfterInstant(until) => {
                time_zone.to_timestamp(candidate).is_ok_and(|at| at > until)
            }
            End::Empty => true,
        }
    }
}

impl WeekdayRule {
    /// Whether a day with this weekday, the `from_start`th such weekday of its month or
    /// year and the `from_end`th from the end, matches.
    fn matches(self, weekday: Weekday, from_start: i8, from_end: i8) -> bool {
        weekday == self.weekday
            && match self.ordinal {
                None => true,
                Some(ordinal) if ordinal > 0 => ordinal == from_start,
                Some(ordinal) => -ordinal == from_end,
            }
    }
}

impl fmt::Display for RRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} from {}",
            self.rule,
            self.start.strftime("%Y-%m-%dT%H:%M")
        )?;
        if self.start.second() != 0 {
            write!(f, ":{:02}", self.start.second())?;
        }
        Ok(())
    }
}

/// Iterator over the occurrences of an [`RRule`]; see [`RRule::starts`].
#[derive(Debug)]
pub(super) struct RRuleStarts<'a> {
    rule: &'a RRule,
    time_zone: &'a TimeZone,
    from: DateTime,
    limit: DateTime,
    period: i64,
    pending: std::vec::IntoIter<DateTime>,
    done: bool,
}

impl Iterator for RRuleStarts<'_> {
    type Item = DateTime;

    fn next(&mut self) -> Option<DateTime> {
        loop {
            if let Some(candidate) = self.pending.next() {
                if candidate < self.rule.start || candidate < self.from {
                    continue;
                }
                if candidate > self.limit || self.rule.ended_before(candidate, self.time_zone) {
                    self.done = true;
                    self.pending = Vec::new().into_iter();
                    return None;
                }
                return Some(candidate);
            }
            if self.done {
                return None;
            }
            let Some((first_day, dates)) = self.rule.period_dates(self.period) else {
                self.done = true;
                return None;
            };
            if first_day > self.limit.date() {
                self.done = true;
                return None;
            }
            self.period += 1;
            let rule = self.rule;
            let mut candidates = Vec::new();
            for date in dates {
                for &hour in &rule.hours {
                    for &minute in &rule.minutes {
                        for &second in &rule.seconds {
                            if let Ok(time) = Time::new(hour, minute, second, 0) {
                                candidates.push(date.to_datetime(time));
                            }
                        }
                    }
                }
            }
            self.pending = candidates.into_iter();
        }
    }
}

/// The rule parts as read, before defaults and checks.
#[derive(Debug, Default)]
struct Parts {
    frequency: Option<Frequency>,
    interval: Option<i64>,
    count: Option<usize>,
    until: Option<Timestamp>,
    week_start: Option<Weekday>,
    months: Vec<i8>,
    month_days: Vec<i8>,
    weekdays: Vec<WeekdayRule>,
    hours: Vec<i8>,
    minutes: Vec<i8>,
    seconds: Vec<i8>,
}

impl Parts {
    fn set(
        &mut self,
        upper: &str,
        name: &str,
        value: &str,
        time_zone: &TimeZone,
    ) -> Result<(), String> {
        match upper {
            "FREQ" => {
                self.frequency = Some(match value.to_ascii_uppercase().as_str() {
                    "DAILY" => Frequency::Daily,
                    "WEEKLY" => Frequency::Weekly,
                    "MONTHLY" => Frequency::Monthly,
                    "YEARLY" => Frequency::Yearly,
                    "SECONDLY" | "MINUTELY" | "HOURLY" => {
                        return Err(format!(
                            "FREQ={value} is not supported (use DAILY, WEEKLY, MONTHLY or YEARLY)"
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "FREQ {value:?} is not one of DAILY, WEEKLY, MONTHLY, YEARLY"
                        ));
                    }
                });
            }
            "INTERVAL" => match value.parse::<u32>() {
                Ok(interval) if interval > 0 => self.interval = Some(i64::from(interval)),
                _ => return Err(format!("INTERVAL {value:?} is not a positive number")),
            },
            "COUNT" => match value.parse::<u32>() {
                Ok(count) if count > 0 => self.count = Some(count as usize),
                _ => return Err(format!("COUNT {value:?} is not a positive number")),
            },
            "UNTIL" => self.until = Some(parse_until(value, time_zone)?),
            "WKST" => {
                self.week_start = Some(parse_weekday(value).ok_or_else(|| {
                    format!("WKST {value:?} is not one of MO, TU, WE, TH, FR, SA, SU")
                })?);
            }
            "BYMONTH" => self.months = parse_list(upper, value, 1, 12)?,
            "BYMONTHDAY" => self.month_days = parse_list(upper, value, -31, 31)?,
            "BYHOUR" => self.hours = parse_list(upper, value, 0, 23)?,
            "BYMINUTE" => self.minutes = parse_list(upper, value, 0, 59)?,
            "BYSECOND" => self.seconds = parse_list(upper, value, 0, 59)?,
            "BYDAY" => {
                self.weekdays = value
                    .split(',')
                    .map(parse_weekday_rule)
                    .collect::<Result<_, _>>()?;
            }
            "BYYEARDAY" | "BYWEEKNO" | "BYSETPOS" => {
                return Err(format!("{upper} is not supported"));
            }
            _ => return Err(format!("unknown RRULE part {name:?}")),
        }
        Ok(())
    }

    fn into_rule(self, rule: &str, start: DateTime, time_zone: &TimeZone) -> Result<RRule, String> {
        let frequency = self
            .frequency
            .ok_or("missing FREQ (one of DAILY, WEEKLY, MONTHLY, YEARLY)")?;
        if matches!(frequency, Frequency::Daily | Frequency::Weekly)
            && self.weekdays.iter().any(|rule| rule.ordinal.is_some())
        {
            return Err(
                "BYDAY ordinals like 1MO or -1FR need FREQ=MONTHLY or FREQ=YEARLY".to_owned(),
            );
        }
        if frequency == Frequency::Weekly && !self.month_days.is_empty() {
            return Err("BYMONTHDAY cannot be used with FREQ=WEEKLY".to_owned());
        }
        if self.count.is_some() && self.until.is_some() {
            return Err("COUNT and UNTIL cannot both be given".to_owned());
        }
        let week_start = self.week_start.unwrap_or(Weekday::Monday);
        let mut parsed = RRule {
            rule: rule.to_owned(),
            start,
            frequency,
            interval: self.interval.unwrap_or(1),
            months: self.months,
            month_days: self.month_days,
            weekdays: self.weekdays,
            hours: or_default(self.hours, start.hour()),
            minutes: or_default(self.minutes, start.minute()),
            seconds: or_default(self.seconds, start.second()),
            first_week_start: add_days(start.date(), -i64::from(start.weekday().since(week_start)))
                .ok_or("the start is too early")?,
            end: self.until.map_or(End::Never, End::AfterInstant),
        };
        if let Some(count) = self.count {
            // Resolving COUNT once here lets every later search start anywhere.
            let horizon = Date::new(start.year().saturating_add(COUNT_HORIZON_YEARS), 12, 31)
                .map_or(DateTime::MAX, |last_day| last_day.to_datetime(Time::MAX));
            let last = parsed.starts(time_zone, start, horizon).take(count).last();
            parsed.end = last.map_or(End::Empty, End::AfterWallClock);
        }
        Ok(parsed)
    }
}

fn or_default(mut values: Vec<i8>, default: i8) -> Vec<i8> {
    if values.is_empty() {
        values.push(default);
    }
    values
}

/// Parses a comma-separated list of integers in `min..=max` (zero excluded when the
/// range is signed), sorted and without duplicates.
fn parse_list(part: &str, value: &str, min: i8, max: i8) -> Result<Vec<i8>, String> {
    let mut values = Vec::new();
    for item in value.split(',') {
        match item.trim().parse::<i8>() {
            Ok(number) if (min..=max).contains(&number) && (min >= 0 || number != 0) => {
                values.push(number);
            }
            _ if min < 0 => {
                return Err(format!(
                    "{part} value {item:?} is not in {min}..=-1 or 1..={max}"
                ));
            }
            _ => return Err(format!("{part} value {item:?} is not in {min}..={max}")),
        }
    }
    values.sort_unstable();
    values.dedup();
    Ok(values)
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text.to_ascii_uppercase().as_str() {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

/// Parses one `BYDAY` element such as `FR`, `1MO`, `+2TU` or `-1FR`.
fn parse_weekday_rule(text: &str) -> Result<WeekdayRule, String> {
    let text = text.trim();
    let invalid = || format!("BYDAY value {text:?} is not a weekday like FR, 1MO or -1FR");
    let split = text.len().checked_sub(2).ok_or_else(invalid)?;
    let (ordinal, weekday) = (text.get(..split).ok_or_else(invalid)?, &text[split..]);
    let weekday = parse_weekday(weekday).ok_or_else(invalid)?;
    let ordinal = if ordinal.is_empty() {
        None
    } else {
        match ordinal.parse::<i8>() {
            Ok(number) if number != 0 && (-53..=53).contains(&number) => Some(number),
            _ => {
                return Err(format!(
                    "BYDAY ordinal in {text:?} is not in -53..=-1 or 1..=53"
                ));
            }
        }
    };
    Ok(WeekdayRule { ordinal, weekday })
}

/// Parses `UNTIL`: `YYYYMMDDTHHMMSSZ` (UTC), `YYYYMMDDTHHMMSS` (wall clock in the
/// window's zone) or `YYYYMMDD` (through the end of that day, wall clock).
fn parse_until(value: &str, time_zone: &TimeZone) -> Result<Timestamp, String> {
    let invalid = || {
        format!(
            "UNTIL {value:?} is not a date-time like 20261231T235959Z, 20261231T235959 or 20261231"
        )
    };
    let (local, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(local) => (local, true),
        None => (value, false),
    };
    let (date, time) = match local.split_once(['T', 't']) {
        Some((date, time)) => (date, Some(time)),
        None => (local, None),
    };
    let digits = |text: &str, count: usize| {
        text.len() == count && text.bytes().all(|byte| byte.is_ascii_digit())
    };
    if !digits(date, 8) || !time.map_or(!utc, |time| digits(time, 6)) {
        return Err(invalid());
    }
    // All ASCII digits now, so slicing and parsing cannot fail.
    let number = |text: &str| text.parse::<i16>().unwrap_or_default();
    let date = Date::new(
        number(&date[..4]),
        number(&date[4..6]) as i8,
        number(&date[6..]) as i8,
    )
    .map_err(|_| invalid())?;
    let time = match time {
        Some(time) => Time::new(
            number(&time[..2]) as i8,
            number(&time[2..4]) as i8,
            number(&time[4..]) as i8,
            0,
        )
        .map_err(|_| invalid())?,
        None => Time::MAX,
    };
    let until = date.to_datetime(time);
    let zone = if utc { &TimeZone::UTC } else { time_zone };
    zone.to_timestamp(until).map_err(|_| invalid())
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(SignedDuration::try_from_hours(days.checked_mul(24)?)?)
        .ok()
}

fn days_between(earlier: Date, later: Date) -> i64 {
    later.duration_since(earlier).as_secs().div_euclid(86_400)
}

fn month_index(date: Date) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month()) - 1
}
