//! Container names become file names, a cgroup path, a CNI container id,
//! a runc id and a network namespace pin. One rule, checked where a name
//! enters berth (a manifest, the command line, a record read back), so no
//! path built from one can leave berth's directories.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a valid {what}: {reason}")]
pub struct NameError {
    pub name: String,
    /// "container name" or "volume name".
    pub what: &'static str,
    pub reason: &'static str,
}

/// A container's name, valid by construction: a lowercase DNS label, the
/// same rule as `metadata.name` in the schema.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let fail = |reason| {
            Err(NameError {
                name: name.to_string(),
                what: "container name",
                reason,
            })
        };
        let bytes = name.as_bytes();
        if bytes.is_empty() {
            return fail("it is empty");
        }
        if bytes.len() > 63 {
            return fail("it is longer than 63 characters");
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return fail("it has a character other than a-z, 0-9 and '-' (a DNS label, at most 63 characters)");
        }
        if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
            return fail("it starts or ends with '-' (a DNS label: lowercase letters, digits and '-', at most 63 characters)");
        }
        Ok(ContainerId(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for ContainerId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record read back is input too: an id that breaks the rule is refused.
impl<'de> Deserialize<'de> for ContainerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ContainerId::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// A named volume's name, which becomes a directory under the layout's
/// `volumes`: letters, digits, `_`, `.` and `-`, starting with a letter or
/// digit, at most 128 characters (docker's rule), so never `..` or a `/`.
pub fn check_volume_name(name: &str) -> Result<(), NameError> {
    let fail = |reason| {
        Err(NameError {
            name: name.to_string(),
            what: "volume name",
            reason,
        })
    };
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return fail("it must start with a letter or digit");
    }
    if name.len() > 128 {
        return fail("it is longer than 128 characters");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return fail(
            "it may hold only letters, digits, '_', '.' and '-' (a bind mount's source starts with / or .)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_lowercase_dns_labels() {
        for good in ["web", "a", "web-1", "0abc", &"x".repeat(63)] {
            assert!(ContainerId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-web",
            "web-",
            "Web",
            "web.1",
            "../x",
            "a/b",
            "web_1",
            &"x".repeat(64),
        ] {
            assert!(ContainerId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn volume_names_never_leave_the_volumes_directory() {
        for good in ["data", "pg_data", "v1.2", "A-b"] {
            assert!(check_volume_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            ".x",
            "x/../../tmp/out",
            "a/b",
            "-x",
            &"v".repeat(129),
        ] {
            assert!(check_volume_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_record_with_a_hostile_id_does_not_deserialize() {
        assert!(serde_json::from_str::<ContainerId>("\"web\"").is_ok());
        let error = serde_json::from_str::<ContainerId>("\"../../etc\"").unwrap_err();
        assert!(
            error.to_string().contains("not a valid container name"),
            "{error}"
        );
    }
}
