//! Cron schedules in the classic five-field form (`*/15 * * * *`), plus the
//! `@hourly`-style macros, parsed into bit sets so that a later matcher needs
//! no string work.

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
}
