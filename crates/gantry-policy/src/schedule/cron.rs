//! Five-field cron expressions (`minute hour day-of-month month day-of-week`) with
//! Vixie cron semantics, matched against wall-clock (civil) date-times.

use std::fmt;

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime};

/// A parsed cron expression.
///
/// Each field is a comma-separated list of `*`, `value`, `low-high`, each optionally
/// followed by `/step`; `value/step` means `value-max/step`. Months accept `JAN`..`DEC`
/// and days of the week `SUN`..`SAT` (case-insensitive); `0` and `7` are both Sunday.
/// The macros `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` and
/// `@hourly` are accepted too.
///
/// As in Vixie cron, when both day-of-month and day-of-week are restricted (neither
/// field starts with `*`), a day matches if *either* matches; otherwise both must.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    expression: String,
    /// Bit `n` set: minute `n` matches.
    minutes: u64,
    /// Bit `n` set: hour `n` matches.
    hours: u32,
    /// Bit `n` set: day of month `n` (1..=31) matches.
    days_of_month: u32,
    /// Bit `n` set: month `n` (1..=12) matches.
    months: u16,
    /// Bit `n` set: the weekday `n` days after Sunday matches.
    days_of_week: u8,
    day_of_month_is_star: bool,
    day_of_week_is_star: bool,
}

/// The range and names of one cron field, for parsing and error messages.
struct FieldSpec {
    name: &'static str,
    min: u8,
    max: u8,
    /// Names for the values `min..`, in order.
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

impl Cron {
    /// Parses an expression; the error is the reason, naming the offending field.
    pub(super) fn parse(expression: &str) -> Result<Cron, String> {
        let trimmed = expression.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(format!(
                    "unknown macro {trimmed:?} (expected @yearly, @annually, @monthly, @weekly, \
                     @daily, @midnight or @hourly)"
                ));
            }
            _ => trimmed,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        };
        let weekday_bits = parse_field(day_of_week, &DAY_OF_WEEK)?;
        // Sunday is both 0 and 7; fold 7 onto 0.
        let weekday_bits = (weekday_bits | (weekday_bits >> 7)) & 0x7f;
        Ok(Cron {
            expression: if trimmed.starts_with('@') {
                trimmed.to_owned()
            } else {
                fields.join(" ")
            },
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)? as u32,
            days_of_month: parse_field(day_of_month, &DAY_OF_MONTH)? as u32,
            months: parse_field(month, &MONTH)? as u16,
            days_of_week: weekday_bits as u8,
            day_of_month_is_star: day_of_month.starts_with('*'),
            day_of_week_is_star: day_of_week.starts_with('*'),
        })
    }

    /// The expression as written (whitespace normalized).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The matching wall-clock times from `from` (inclusive) to `limit` (inclusive), in
    /// increasing order.
    pub(super) fn starts(&self, from: DateTime, limit: DateTime) -> CronStarts<'_> {
        CronStarts {
            cron: self,
            next_from: Some(from),
            limit,
        }
    }

    fn matches_date(&self, date: Date) -> bool {
        let day_of_month = self.days_of_month & (1 << date.day()) != 0;
        let day_of_week = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.day_of_month_is_star || self.day_of_week_is_star {
            day_of_month && day_of_week
        } else {
            day_of_month || day_of_week
        }
    }

    /// The first matching time of day at or after `hour:minute`, if any that day.
    fn first_time_at_or_after(&self, hour: i8, minute: i8) -> Option<(i8, i8)> {
        (hour..24)
            .filter(|&h| self.hours & (1 << h) != 0)
            .find_map(|h| {
                let first_minute = if h == hour { minute } else { 0 };
                (first_minute..60)
                    .find(|&m| self.minutes & (1 << m) != 0)
                    .map(|m| (h, m))
            })
    }

    /// The first matching wall-clock time at or after `from` and at most `limit`.
    ///
    /// Walks day by day (skipping whole months that cannot match), so a rule that never
    /// matches, like February 30th, costs one step per day up to `limit`.
    fn first_at_or_after(&self, from: DateTime, limit: DateTime) -> Option<DateTime> {
        let mut date = from.date();
        let mut hour = from.hour();
        let mut minute = from.minute();
        // Cron fires on whole minutes: round a time with seconds up to the next minute.
        // Minute 60 is past every minute of the hour, so the search moves on.
        if from.second() != 0 || from.subsec_nanosecond() != 0 {
            minute += 1;
        }
        loop {
            if date > limit.date() {
                return None;
            }
            if self.months & (1 << date.month()) == 0 {
                date = date.last_of_month().tomorrow().ok()?;
                (hour, minute) = (0, 0);
                continue;
            }
            if self.matches_date(date) {
                if let Some((h, m)) = self.first_time_at_or_after(hour, minute) {
                    let found = date.at(h, m, 0, 0);
                    return (found <= limit).then_some(found);
                }
            }
            date = date.tomorrow().ok()?;
            (hour, minute) = (0, 0);
        }
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

/// Iterator over the wall-clock times a [`Cron`] matches; see [`Cron::starts`].
#[derive(Debug)]
pub(super) struct CronStarts<'a> {
    cron: &'a Cron,
    next_from: Option<DateTime>,
    limit: DateTime,
}

impl Iterator for CronStarts<'_> {
    type Item = DateTime;

    fn next(&mut self) -> Option<DateTime> {
        let found = self.cron.first_at_or_after(self.next_from?, self.limit);
        self.next_from =
            found.and_then(|found| found.checked_add(SignedDuration::from_mins(1)).ok());
        found
    }
}

/// Parses one field into a bit set of the values it allows.
fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, String> {
    let name = spec.name;
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("field {name:?}: empty list element in {text:?}"));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(step, spec)?)),
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((low, high)) = range.split_once('-') {
            let (low, high) = (parse_value(low, spec)?, parse_value(high, spec)?);
            if low > high {
                return Err(format!("field {name:?}: range {range} goes backwards"));
            }
            (low, high)
        } else {
            let value = parse_value(range, spec)?;
            // `5/15` means "from 5 to the end, every 15" (as in Vixie cron and cronie).
            (value, if step.is_some() { spec.max } else { value })
        };
        for value in (low..=high).step_by(step.unwrap_or(1)) {
            bits |= 1 << value;
        }
    }
    Ok(bits)
}

fn parse_step(text: &str, spec: &FieldSpec) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(step) if step > 0 => Ok(step),
        _ => Err(format!(
            "field {:?}: step {text:?} is not a positive number",
            spec.name
        )),
    }
}

fn parse_value(text: &str, spec: &FieldSpec) -> Result<u8, String> {
    let name = spec.name;
    let (min, max) = (spec.min, spec.max);
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return match text.parse::<u64>() {
            Ok(value) if (u64::from(min)..=u64::from(max)).contains(&value) => Ok(value as u8),
            _ => Err(format!(
                "field {name:?}: value {text} out of range {min}-{max}"
            )),
        };
    }
    match spec
        .names
        .iter()
        .position(|candidate| candidate.eq_ignore_ascii_case(text))
    {
        Some(index) => Ok(min + index as u8),
        None if spec.names.is_empty() => Err(format!(
            "field {name:?}: {text:?} is not a number in {min}-{max}"
        )),
        None => Err(format!(
            "field {name:?}: {text:?} is not a number in {min}-{max} or one of {}",
            spec.names.join(", ")
        )),
    }
}
