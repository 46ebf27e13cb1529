//! Cron schedules in the classic five-field form (`*/15 * * * *`), plus the
//! `@hourly`-style macros, parsed into bit sets so that the matcher
//! ([`CronSchedule::next_after`]) needs no string work. Schedules are read in
//! UTC: berth keeps no time zone database, and a host's local zone would move
//! ticks at every daylight-saving change.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{input:?} is not a valid cron schedule: {reason} (expected five fields: minute hour day-of-month month day-of-week, such as \"*/15 * * * *\", or @hourly, @daily, @weekly, @monthly, @yearly)")]
pub struct CronError {
    input: String,
    reason: String,
}

/// One field of a schedule: the allowed values as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSet(u64);

impl FieldSet {
    pub fn contains(self, value: u32) -> bool {
        value < 64 && self.0 & (1 << value) != 0
    }

    /// The smallest value in the set that is `from` or more.
    fn first_at_or_after(self, from: u32) -> Option<u32> {
        if from >= 64 {
            return None;
        }
        let above = self.0 & (u64::MAX << from);
        (above != 0).then(|| above.trailing_zeros())
    }

    /// The largest value in the set that is `upto` or less.
    fn last_at_or_before(self, upto: u32) -> Option<u32> {
        let below = if upto >= 63 {
            self.0
        } else {
            self.0 & ((1 << (upto + 1)) - 1)
        };
        (below != 0).then(|| 63 - below.leading_zeros())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CronSchedule {
    text: String,
    pub minutes: FieldSet,
    pub hours: FieldSet,
    pub days_of_month: FieldSet,
    pub months: FieldSet,
    /// 0 = Sunday; a written 7 is folded into 0.
    pub days_of_week: FieldSet,
    /// Whether the day-of-month field was written starting with `*` (`*`,
    /// `*/2`): such a field does not restrict the day, which changes how the
    /// two day fields combine (see [`CronSchedule::day_matches`]).
    day_of_month_star: bool,
    /// The same for the day-of-week field.
    day_of_week_star: bool,
}

struct FieldRule {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldRule = FieldRule {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldRule = FieldRule {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldRule = FieldRule {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldRule = FieldRule {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: FieldRule = FieldRule {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

fn expand_macro(text: &str) -> Option<&'static str> {
    Some(match text {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

impl FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| CronError {
            input: input.to_string(),
            reason,
        };
        let trimmed = input.trim();
        let expanded = if trimmed.starts_with('@') {
            expand_macro(trimmed).ok_or_else(|| fail(format!("unknown macro {trimmed}")))?
        } else {
            trimmed
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(fail(format!("it has {} fields", fields.len())));
        }
        let parse = |text, rule: &FieldRule| parse_field(text, rule).map_err(fail);
        let mut days_of_week = parse(fields[4], &DAY_OF_WEEK)?;
        if days_of_week.contains(7) {
            days_of_week = FieldSet((days_of_week.0 & !(1 << 7)) | 1);
        }
        Ok(CronSchedule {
            text: input.to_string(),
            minutes: parse(fields[0], &MINUTE)?,
            hours: parse(fields[1], &HOUR)?,
            days_of_month: parse(fields[2], &DAY_OF_MONTH)?,
            months: parse(fields[3], &MONTH)?,
            days_of_week,
            day_of_month_star: fields[2].starts_with('*'),
            day_of_week_star: fields[4].starts_with('*'),
        })
    }
}

fn parse_field(text: &str, rule: &FieldRule) -> Result<FieldSet, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("{} step {step:?} is not a positive number", rule.name)
                })?;
                (range, step)
            }
            None => (item, 1),
        };
        let (low, high) = if range == "*" {
            (rule.min, rule.max)
        } else if let Some((low, high)) = range.split_once('-') {
            (parse_value(low, rule)?, parse_value(high, rule)?)
        } else {
            let value = parse_value(range, rule)?;
            // `5/10` means "from 5, every 10", as in Vixie cron.
            (value, if item.contains('/') { rule.max } else { value })
        };
        if low > high {
            return Err(format!("{} range {range} runs backwards", rule.name));
        }
        for value in (low..=high).step_by(step as usize) {
            bits |= 1 << value;
        }
    }
    Ok(FieldSet(bits))
}

fn parse_value(text: &str, rule: &FieldRule) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(index) = rule.names.iter().position(|name| *name == lower) {
        return Ok(index as u32 + if rule.min == 1 { 1 } else { 0 });
    }
    let value: u32 = text
        .parse()
        .map_err(|_| format!("{} value {text:?} is not a number", rule.name))?;
    if value < rule.min || value > rule.max {
        return Err(format!(
            "{} value {value} is outside {}-{}",
            rule.name, rule.min, rule.max
        ));
    }
    Ok(value)
}

const MINUTES_PER_DAY: u64 = 24 * 60;
const LAST_MINUTE_OF_DAY: u32 = 24 * 60 - 1;

/// How far [`CronSchedule::next_after`] and
/// [`CronSchedule::latest_at_or_before`] look before giving up. Eight years
/// covers the longest gap between two ticks of a schedule that can fire at
/// all on a leap day (`0 0 29 2 *` fires in 2096 and next in 2104).
const HORIZON_YEARS: i64 = 8;

impl CronSchedule {
    /// The first tick strictly after `unix_secs` (seconds since the Unix
    /// epoch), in seconds since the epoch. Ticks are whole minutes, and the
    /// schedule's fields are read in UTC. `None` when the schedule does not
    /// fire within the next eight years, such as `0 0 30 2 *`.
    ///
    /// Days that fail the month or day fields are skipped whole, so a
    /// schedule that fires once a year costs a few hundred steps, not a
    /// walk over every minute.
    pub fn next_after(&self, unix_secs: u64) -> Option<u64> {
        let first_minute = unix_secs / 60 + 1;
        let mut day = i64::try_from(first_minute / MINUTES_PER_DAY).ok()?;
        let mut from_minute = (first_minute % MINUTES_PER_DAY) as u32;
        let last_year = civil_from_days(day).0 + HORIZON_YEARS;
        loop {
            let (year, month, day_of_month) = civil_from_days(day);
            if year > last_year {
                return None;
            }
            if !self.months.contains(month) {
                day = first_day_of_next_month(year, month);
                from_minute = 0;
                continue;
            }
            if self.day_matches(day, day_of_month) {
                if let Some(minute) = self.first_time_at_or_after(from_minute) {
                    return tick_secs(day, minute);
                }
            }
            day += 1;
            from_minute = 0;
        }
    }

    /// The last tick at or before `unix_secs`, read like
    /// [`CronSchedule::next_after`] (whole minutes, UTC); `None` when the
    /// schedule did not fire in the eight years before, or before 1970.
    pub fn latest_at_or_before(&self, unix_secs: u64) -> Option<u64> {
        let minute = unix_secs / 60;
        let mut day = i64::try_from(minute / MINUTES_PER_DAY).ok()?;
        let mut upto_minute = (minute % MINUTES_PER_DAY) as u32;
        let first_year = civil_from_days(day).0 - HORIZON_YEARS;
        while day >= 0 {
            let (year, month, day_of_month) = civil_from_days(day);
            if year < first_year {
                return None;
            }
            if !self.months.contains(month) {
                day = days_from_civil(year, month, 1) - 1;
                upto_minute = LAST_MINUTE_OF_DAY;
                continue;
            }
            if self.day_matches(day, day_of_month) {
                if let Some(minute) = self.last_time_at_or_before(upto_minute) {
                    return tick_secs(day, minute);
                }
            }
            day -= 1;
            upto_minute = LAST_MINUTE_OF_DAY;
        }
        None
    }

    /// Whether the schedule fires on this day (days since 1970-01-01, and
    /// its day of the month). As in Vixie cron: when both day fields are
    /// restricted, a day matches if either does (`0 0 13 * 5` fires on every
    /// 13th and every Friday); when either starts with `*`, both must match.
    fn day_matches(&self, day: i64, day_of_month: u32) -> bool {
        // 1970-01-01 was a Thursday (4).
        let day_of_week = (day + 4).rem_euclid(7) as u32;
        let by_month = self.days_of_month.contains(day_of_month);
        let by_week = self.days_of_week.contains(day_of_week);
        if self.day_of_month_star || self.day_of_week_star {
            by_month && by_week
        } else {
            by_month || by_week
        }
    }

    /// The first minute of the day (0..1440) at or after `from` whose hour
    /// and minute both match.
    fn first_time_at_or_after(&self, from: u32) -> Option<u32> {
        let (from_hour, from_minute) = (from / 60, from % 60);
        let hour = self.hours.first_at_or_after(from_hour)?;
        if hour == from_hour {
            if let Some(minute) = self.minutes.first_at_or_after(from_minute) {
                return Some(hour * 60 + minute);
            }
            let later = self.hours.first_at_or_after(from_hour + 1)?;
            return Some(later * 60 + self.minutes.first_at_or_after(0)?);
        }
        Some(hour * 60 + self.minutes.first_at_or_after(0)?)
    }

    /// The last minute of the day at or before `upto` whose hour and minute
    /// both match.
    fn last_time_at_or_before(&self, upto: u32) -> Option<u32> {
        let (upto_hour, upto_minute) = (upto / 60, upto % 60);
        let hour = self.hours.last_at_or_before(upto_hour)?;
        if hour == upto_hour {
            if let Some(minute) = self.minutes.last_at_or_before(upto_minute) {
                return Some(hour * 60 + minute);
            }
            let earlier = self.hours.last_at_or_before(upto_hour.checked_sub(1)?)?;
            return Some(earlier * 60 + self.minutes.last_at_or_before(59)?);
        }
        Some(hour * 60 + self.minutes.last_at_or_before(59)?)
    }
}

/// Seconds since the epoch of a minute (0..1440) of a day since 1970-01-01.
fn tick_secs(day: i64, minute_of_day: u32) -> Option<u64> {
    let minutes = u64::try_from(day)
        .ok()?
        .checked_mul(MINUTES_PER_DAY)?
        .checked_add(u64::from(minute_of_day))?;
    minutes.checked_mul(60)
}

fn first_day_of_next_month(year: i64, month: u32) -> i64 {
    if month == 12 {
        days_from_civil(year + 1, 1, 1)
    } else {
        days_from_civil(year, month + 1, 1)
    }
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31) in the
/// proleptic Gregorian calendar, after Howard Hinnant's `civil_from_days`:
/// years are counted from March so that the leap day falls at the end.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`] (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for CronSchedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for CronSchedule {
    fn schema_name() -> Cow<'static, str> {
        "CronSchedule".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "Cron schedule",
            "description": "Five fields: minute hour day-of-month month day-of-week, each `*`, a value, a range `a-b`, a step `*/n` or a list; or one of @hourly, @daily, @weekly, @monthly, @yearly.",
            "type": "string",
            "examples": ["*/15 * * * *", "0 3 * * mon-fri", "@daily"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fifteen_minutes_sets_four_minutes() {
        let schedule: CronSchedule = "*/15 * * * *".parse().unwrap();
        for minute in 0..60 {
            assert_eq!(
                schedule.minutes.contains(minute),
                minute % 15 == 0,
                "minute {minute}"
            );
        }
        assert!((0..24).all(|h| schedule.hours.contains(h)));
    }

    #[test]
    fn names_ranges_lists_and_sunday_as_seven() {
        let schedule: CronSchedule = "0,30 9-17 1 jan-mar,DEC 7".parse().unwrap();
        assert!(schedule.minutes.contains(30) && !schedule.minutes.contains(15));
        assert!(
            schedule.hours.contains(9)
                && schedule.hours.contains(17)
                && !schedule.hours.contains(18)
        );
        assert!(
            schedule.months.contains(1)
                && schedule.months.contains(3)
                && schedule.months.contains(12)
        );
        assert!(!schedule.months.contains(4));
        assert!(schedule.days_of_week.contains(0) && !schedule.days_of_week.contains(7));
    }

    #[test]
    fn macros_expand() {
        let daily: CronSchedule = "@daily".parse().unwrap();
        assert!(daily.minutes.contains(0) && !daily.minutes.contains(1));
        assert!(daily.hours.contains(0) && !daily.hours.contains(1));
        assert_eq!(daily.to_string(), "@daily");
    }

    #[test]
    fn invalid_schedules_are_rejected_with_a_reason() {
        for (bad, reason) in [
            ("* * * *", "4 fields"),
            ("60 * * * *", "outside 0-59"),
            ("* 24 * * *", "outside 0-23"),
            ("* * 0 * *", "outside 1-31"),
            ("*/0 * * * *", "positive"),
            ("5-1 * * * *", "backwards"),
            ("* * * foo *", "not a number"),
            ("@sometimes", "unknown macro"),
        ] {
            let error = bad.parse::<CronSchedule>().unwrap_err().to_string();
            assert!(error.contains(reason), "{bad:?}: {error}");
        }
    }

    /// Seconds since the epoch of a UTC date and time, for readable tests.
    fn at(year: i64, month: u32, day: u32, hour: u64, minute: u64) -> u64 {
        let days = u64::try_from(days_from_civil(year, month, day)).unwrap();
        days * 86_400 + hour * 3600 + minute * 60
    }

    fn next(schedule: &str, after: u64) -> Option<u64> {
        schedule.parse::<CronSchedule>().unwrap().next_after(after)
    }

    #[test]
    fn date_math_agrees_with_known_epoch_seconds() {
        // Values from `date -u -d DATE +%s`.
        for (year, month, day, secs) in [
            (1970, 1, 1, 0),
            (2000, 3, 1, 951_868_800),
            (2024, 2, 29, 1_709_164_800),
            (2026, 1, 1, 1_767_225_600),
            (2100, 3, 1, 4_107_542_400),
        ] {
            assert_eq!(at(year, month, day, 0, 0), secs, "{year}-{month}-{day}");
            let days = (secs / 86_400) as i64;
            assert_eq!(civil_from_days(days), (year, month, day));
        }
    }

    #[test]
    fn every_fifteen_minutes_fires_at_the_next_quarter_strictly_after() {
        let noon = at(2025, 6, 10, 12, 0);
        assert_eq!(next("*/15 * * * *", noon), Some(at(2025, 6, 10, 12, 15)));
        assert_eq!(next("*/15 * * * *", noon - 1), Some(noon));
        assert_eq!(
            next("*/15 * * * *", at(2025, 6, 10, 23, 50)),
            Some(at(2025, 6, 11, 0, 0))
        );
    }

    #[test]
    fn daily_at_three_fires_today_or_tomorrow() {
        assert_eq!(
            next("0 3 * * *", at(2025, 6, 10, 2, 59)),
            Some(at(2025, 6, 10, 3, 0))
        );
        assert_eq!(
            next("0 3 * * *", at(2025, 6, 10, 3, 0)),
            Some(at(2025, 6, 11, 3, 0))
        );
    }

    #[test]
    fn monthly_rolls_over_the_month_and_the_year() {
        assert_eq!(
            next("30 2 1 * *", at(2025, 6, 1, 2, 30)),
            Some(at(2025, 7, 1, 2, 30))
        );
        assert_eq!(
            next("30 2 1 * *", at(2025, 12, 15, 0, 0)),
            Some(at(2026, 1, 1, 2, 30))
        );
        assert_eq!(
            next("@yearly", at(2025, 12, 31, 23, 59)),
            Some(at(2026, 1, 1, 0, 0))
        );
    }

    #[test]
    fn sunday_midnight_fires_on_the_next_sunday() {
        // 2025-06-10 is a Tuesday; the next Sunday is the 15th.
        assert_eq!(
            next("0 0 * * 0", at(2025, 6, 10, 0, 0)),
            Some(at(2025, 6, 15, 0, 0))
        );
        assert_eq!(
            next("0 0 * * sun", at(2025, 6, 15, 0, 0)),
            Some(at(2025, 6, 22, 0, 0))
        );
    }

    #[test]
    fn leap_day_fires_only_in_leap_years() {
        assert_eq!(
            next("0 0 29 2 *", at(2024, 3, 1, 0, 0)),
            Some(at(2028, 2, 29, 0, 0))
        );
        // 2100 is not a leap year: the gap is eight years.
        assert_eq!(
            next("0 0 29 2 *", at(2096, 3, 1, 0, 0)),
            Some(at(2104, 2, 29, 0, 0))
        );
    }

    #[test]
    fn the_thirty_first_skips_short_months() {
        assert_eq!(
            next("0 0 31 * *", at(2025, 1, 31, 0, 0)),
            Some(at(2025, 3, 31, 0, 0))
        );
        assert_eq!(
            next("0 0 31 * *", at(2025, 5, 31, 0, 0)),
            Some(at(2025, 7, 31, 0, 0))
        );
    }

    #[test]
    fn restricted_day_of_month_and_day_of_week_match_either() {
        // June 2025: Fridays are the 13th, 20th and 27th; the 6th is a Friday too.
        let schedule = "0 0 13 * 5";
        assert_eq!(
            next(schedule, at(2025, 6, 1, 0, 0)),
            Some(at(2025, 6, 6, 0, 0))
        );
        assert_eq!(
            next(schedule, at(2025, 6, 6, 0, 0)),
            Some(at(2025, 6, 13, 0, 0))
        );
        // July 13th 2025 is a Sunday: it fires for the day of the month alone.
        assert_eq!(
            next(schedule, at(2025, 7, 11, 0, 0)),
            Some(at(2025, 7, 13, 0, 0))
        );
    }

    #[test]
    fn a_day_field_starting_with_a_star_makes_both_day_fields_required() {
        // Odd days that are also Mondays: June 2025 Mondays are 2, 9, 16, 23, 30.
        assert_eq!(
            next("0 0 */2 * 1", at(2025, 6, 1, 0, 0)),
            Some(at(2025, 6, 9, 0, 0))
        );
    }

    #[test]
    fn a_schedule_that_never_fires_has_no_next_tick() {
        assert_eq!(next("0 0 30 2 *", at(2025, 1, 1, 0, 0)), None);
        assert_eq!(next("0 0 31 4,6,9,11 *", at(2025, 1, 1, 0, 0)), None);
    }

    #[test]
    fn far_future_instants_do_not_overflow() {
        assert_eq!(next("* * * * *", u64::MAX), None);
        assert!(next("* * * * *", u64::MAX / 2).is_some());
    }

    /// Minute-by-minute matching written without the field skipping, to
    /// check the skipping against.
    fn fires_at(schedule: &CronSchedule, secs: u64) -> bool {
        let minute = secs / 60;
        let day = (minute / MINUTES_PER_DAY) as i64;
        let (_, month, day_of_month) = civil_from_days(day);
        let day_of_week = ((day + 4) % 7) as u32;
        let by_month = schedule.days_of_month.contains(day_of_month);
        let by_week = schedule.days_of_week.contains(day_of_week);
        let day_ok = if schedule.day_of_month_star || schedule.day_of_week_star {
            by_month && by_week
        } else {
            by_month || by_week
        };
        day_ok
            && schedule.months.contains(month)
            && schedule
                .hours
                .contains(((minute % MINUTES_PER_DAY) / 60) as u32)
            && schedule.minutes.contains((minute % 60) as u32)
    }

    #[test]
    fn skipping_by_field_agrees_with_walking_every_minute() {
        let schedules = [
            "*/7 * * * *",
            "5 */5 * * *",
            "0 12 13 * 5",
            "0 0 */3 * 2",
            "59 23 28-31 * *",
            "15 3 * feb,mar mon-wed",
        ];
        let starts = [
            at(2024, 2, 26, 23, 58) + 17,
            at(2025, 12, 30, 12, 0),
            at(2100, 2, 27, 6, 1),
        ];
        for text in schedules {
            let schedule: CronSchedule = text.parse().unwrap();
            for start in starts {
                let mut after = start;
                let end = start + 40 * 86_400;
                loop {
                    let walked = (after / 60 + 1..end / 60)
                        .map(|minute| minute * 60)
                        .find(|secs| fires_at(&schedule, *secs));
                    let skipped = schedule.next_after(after).filter(|tick| *tick < end);
                    assert_eq!(skipped, walked, "{text} after {after}");
                    let Some(tick) = walked else { break };
                    assert_eq!(schedule.latest_at_or_before(tick + 59), Some(tick));
                    assert_eq!(
                        schedule
                            .latest_at_or_before(tick - 1)
                            .and_then(|previous| schedule.next_after(previous)),
                        Some(tick),
                        "{text} before {tick}"
                    );
                    after = tick;
                }
            }
        }
    }

    #[test]
    fn latest_at_or_before_includes_the_instant_and_stops_at_the_epoch() {
        let schedule: CronSchedule = "0 3 * * *".parse().unwrap();
        let tick = at(2025, 6, 10, 3, 0);
        assert_eq!(schedule.latest_at_or_before(tick), Some(tick));
        assert_eq!(
            schedule.latest_at_or_before(tick - 1),
            Some(at(2025, 6, 9, 3, 0))
        );
        assert_eq!(schedule.latest_at_or_before(3600), None);
        let never: CronSchedule = "0 0 30 2 *".parse().unwrap();
        assert_eq!(never.latest_at_or_before(tick), None);
    }
}
