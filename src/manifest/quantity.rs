//! Durations (`500ms`, `10s`, `1m30s`) and byte sizes (`64Mi`, `1Gi`, `100M`) as
//! users write them in manifests.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuantityError {
    #[error("{input:?} is not a valid duration: {reason} (expected a number and a unit such as 500ms, 10s, 5m, 1h30m)")]
    Duration { input: String, reason: &'static str },
    #[error("{input:?} is not a valid size: {reason} (expected a number and an optional unit such as 64Mi, 1Gi, 100M, 4096)")]
    Size { input: String, reason: &'static str },
}

/// A length of time written as a number and a unit, possibly repeated: `500ms`, `10s`, `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    pub fn as_std(self) -> std::time::Duration {
        self.0
    }
}

const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
];

impl FromStr for Duration {
    type Err = QuantityError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| QuantityError::Duration {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(fail("it is empty"));
        }
        let mut rest = input;
        let mut total_nanos: u128 = 0;
        while !rest.is_empty() {
            let (number, after_number) = split_number(rest);
            if number.is_empty() {
                return Err(fail("a number must come before each unit"));
            }
            let (unit, after_unit) = split_unit(after_number);
            let Some(&(_, nanos_per_unit)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit)
            else {
                return Err(if unit.is_empty() {
                    fail("the unit is missing")
                } else {
                    fail("unknown unit")
                });
            };
            total_nanos = total_nanos
                .checked_add(scale(number, nanos_per_unit).ok_or_else(|| fail("number too large"))?)
                .ok_or_else(|| fail("number too large"))?;
            rest = after_unit;
        }
        let secs =
            u64::try_from(total_nanos / 1_000_000_000).map_err(|_| fail("number too large"))?;
        let nanos = (total_nanos % 1_000_000_000) as u32;
        Ok(Duration(std::time::Duration::new(secs, nanos)))
    }
}

/// Splits a leading decimal number (`12`, `1.5`) from the rest.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

fn split_unit(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|(_, c)| c.is_ascii_digit() || *c == '.')
        .map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

/// `number * multiplier` for a decimal number with at most 9 fractional digits,
/// in integer arithmetic so that `0.1s` is exactly 100ms.
fn scale(number: &str, multiplier: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || fraction.len() > 9 {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut result = whole.checked_mul(multiplier)?;
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().ok()?;
        let denominator = 10u128.pow(fraction.len() as u32);
        result = result.checked_add(digits.checked_mul(multiplier)? / denominator)?;
    }
    Some(result)
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for &(unit, size) in DURATION_UNITS.iter().rev() {
            if unit != "µs" && nanos % size == 0 {
                return write!(f, "{}{unit}", nanos / size);
            }
        }
        write!(f, "{nanos}ns")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// The pattern shared by the schema and editors; the parser above is the authority.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d))+$";

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "Duration",
            "description": "A length of time: a number and a unit (ns, us, ms, s, m, h, d), possibly repeated, such as 500ms, 10s, 5m or 1h30m.",
            "type": "string",
            "pattern": DURATION_PATTERN,
            "examples": ["500ms", "10s", "5m", "1h30m"],
        })
    }
}

/// A number of bytes written with an optional decimal (k, M, G, T) or binary (Ki, Mi, Gi, Ti) unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const SIZE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("B", 1),
    ("k", 1_000),
    ("K", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
];

impl FromStr for ByteSize {
    type Err = QuantityError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| QuantityError::Size {
            input: input.to_string(),
            reason,
        };
        let (number, unit) = split_number(input.trim());
        if number.is_empty() {
            return Err(fail("it must start with a number"));
        }
        let Some(&(_, multiplier)) = SIZE_UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(fail("unknown unit"));
        };
        let bytes = scale(number, u128::from(multiplier)).ok_or_else(|| fail("not a number"))?;
        u64::try_from(bytes)
            .map(ByteSize)
            .map_err(|_| fail("number too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &(unit, size) in SIZE_UNITS.iter().rev() {
            if size > 1 && self.0 >= size && self.0 % size == 0 {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(bytes) => Ok(ByteSize(bytes)),
            Raw::Text(text) => text.parse().map_err(de::Error::custom),
        }
    }
}

pub const SIZE_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(B|k|K|M|G|T|Ki|Mi|Gi|Ti)?$";

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "Size",
            "description": "A number of bytes, with an optional decimal (k, M, G, T) or binary (Ki, Mi, Gi, Ti) unit, such as 64Mi, 1Gi or 100M.",
            "type": ["string", "integer"],
            "minimum": 0,
            "pattern": SIZE_PATTERN,
            "examples": ["64Mi", "1Gi", "100M"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(s: &str) -> std::time::Duration {
        s.parse::<Duration>().unwrap().0
    }

    #[test]
    fn durations_parse_each_unit() {
        assert_eq!(dur("500ms"), std::time::Duration::from_millis(500));
        assert_eq!(dur("10s"), std::time::Duration::from_secs(10));
        assert_eq!(dur("5m"), std::time::Duration::from_secs(300));
        assert_eq!(dur("2h"), std::time::Duration::from_secs(7200));
        assert_eq!(dur("1d"), std::time::Duration::from_secs(86400));
        assert_eq!(dur("250us"), std::time::Duration::from_micros(250));
        assert_eq!(dur("7ns"), std::time::Duration::from_nanos(7));
    }

    #[test]
    fn durations_combine_units_and_fractions_exactly() {
        assert_eq!(dur("1h30m"), std::time::Duration::from_secs(5400));
        assert_eq!(dur("1m30s500ms"), std::time::Duration::from_millis(90_500));
        assert_eq!(dur("0.1s"), std::time::Duration::from_millis(100));
        assert_eq!(dur("1.5m"), std::time::Duration::from_secs(90));
    }

    #[test]
    fn durations_reject_what_is_not_a_duration() {
        for bad in [
            "",
            "10",
            "s",
            "10 s",
            "-5s",
            "5parsecs",
            "1..5s",
            "5S",
            "99999999999999999999999h",
        ] {
            assert!(
                bad.parse::<Duration>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn duration_error_names_the_input_and_the_expected_form() {
        let message = "5x".parse::<Duration>().unwrap_err().to_string();
        assert!(message.contains("\"5x\""), "{message}");
        assert!(message.contains("500ms"), "{message}");
    }

    #[test]
    fn durations_display_in_the_largest_exact_unit() {
        assert_eq!(Duration::from_secs(300).to_string(), "5m");
        assert_eq!(dur_display("1500ms"), "1500ms");
        assert_eq!(dur_display("0s"), "0s");
    }

    fn dur_display(s: &str) -> String {
        s.parse::<Duration>().unwrap().to_string()
    }

    #[test]
    fn sizes_parse_decimal_and_binary_units() {
        let size = |s: &str| s.parse::<ByteSize>().unwrap().0;
        assert_eq!(size("64Mi"), 64 << 20);
        assert_eq!(size("1Gi"), 1 << 30);
        assert_eq!(size("100M"), 100_000_000);
        assert_eq!(size("4096"), 4096);
        assert_eq!(size("1.5Ki"), 1536);
        assert_eq!(size("2k"), 2000);
        assert_eq!(size("512B"), 512);
    }

    #[test]
    fn sizes_reject_unknown_units_and_overflow() {
        for bad in ["", "Mi", "12Mb", "1 Gi", "-1", "99999999999Ti", "1.2.3M"] {
            assert!(
                bad.parse::<ByteSize>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn sizes_deserialize_from_numbers_and_strings() {
        let from_json = |v: serde_json::Value| serde_json::from_value::<ByteSize>(v).map(|s| s.0);
        assert_eq!(from_json(serde_json::json!(1024)).unwrap(), 1024);
        assert_eq!(from_json(serde_json::json!("1Mi")).unwrap(), 1 << 20);
        assert!(from_json(serde_json::json!("lots")).is_err());
    }

    #[test]
    fn sizes_display_round_trip() {
        for text in ["64Mi", "1Gi", "100M", "4097"] {
            assert_eq!(text.parse::<ByteSize>().unwrap().to_string(), text);
        }
    }
}
