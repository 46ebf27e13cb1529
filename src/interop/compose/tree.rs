//! Reading the positioned YAML tree of a compose file: typed accessors that
//! accept what compose accepts after interpolation (numbers and booleans
//! written as strings), errors and warnings that point at `file:line:col`.

use std::path::{Path, PathBuf};

use crate::manifest::quantity::Duration;
use crate::manifest::yaml::{Entry, Node, Pos, Value};

use super::interpolate::Variables;
use super::{ComposeError, Warning};

/// Reads a file the conversion needs to look into (an env file), or `None`
/// when it cannot be read.
pub type FileReader<'a> = &'a dyn Fn(&Path) -> Option<String>;

/// What every mapping step needs: where it is, where it writes, and the
/// warnings so far.
pub struct Ctx<'a> {
    /// The compose file as shown in messages.
    pub file: String,
    pub project: String,
    /// The directory compose resolves relative host paths against.
    pub compose_dir: PathBuf,
    /// The directory the manifests will be in.
    pub out_dir: PathBuf,
    /// The environment and `.env`: bare `environment:` keys take their values here.
    pub variables: &'a Variables,
    pub read: FileReader<'a>,
    pub warnings: Vec<Warning>,
}

impl Ctx<'_> {
    pub fn warn(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            field: field.to_string(),
            message: message.into(),
        });
    }

    pub fn invalid(&self, pos: Pos, field: &str, message: impl Into<String>) -> ComposeError {
        ComposeError::Invalid {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A host path of the compose file, rewritten for the manifests.
    pub fn host_path(&self, path: &str) -> String {
        let home = self.variables.environment.get("HOME").map(String::as_str);
        super::paths::rebase(path, &self.compose_dir, &self.out_dir, home)
    }

    /// A host path of the compose file, absolute.
    pub fn absolute_host_path(&self, path: &str) -> PathBuf {
        super::paths::normalize(&self.compose_dir.join(path))
    }

    /// A scalar as text (`8080` and `"8080"` alike).
    pub fn string(&self, node: &Node, field: &str) -> Result<String, ComposeError> {
        text(node).ok_or_else(|| self.invalid(node.pos, field, "expected a string"))
    }

    /// A list of scalars, or one string (the short form of many fields).
    pub fn strings(&self, node: &Node, field: &str) -> Result<Vec<String>, ComposeError> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.string(item, &format!("{field}[{i}]")))
                .collect(),
            Value::Null => Ok(Vec::new()),
            _ => Ok(vec![self.string(node, field)?]),
        }
    }

    pub fn boolean(&self, node: &Node, field: &str) -> Result<bool, ComposeError> {
        match &node.value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(self.invalid(node.pos, field, "expected true or false")),
        }
    }

    pub fn integer(&self, node: &Node, field: &str) -> Result<i64, ComposeError> {
        match &node.value {
            Value::Int(n) => Ok(*n),
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| self.invalid(node.pos, field, format!("{s:?} is not a whole number"))),
            _ => Err(self.invalid(node.pos, field, "expected a whole number")),
        }
    }

    pub fn float(&self, node: &Node, field: &str) -> Result<f64, ComposeError> {
        match &node.value {
            Value::Int(n) => Ok(*n as f64),
            Value::Float(f) => Ok(*f),
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| self.invalid(node.pos, field, format!("{s:?} is not a number"))),
            _ => Err(self.invalid(node.pos, field, "expected a number")),
        }
    }

    /// A Go duration (`1m30s`, `500ms`), as compose writes them.
    pub fn duration(&self, node: &Node, field: &str) -> Result<Duration, ComposeError> {
        let text = self.string(node, field)?;
        text.trim()
            .parse()
            .map_err(|e| self.invalid(node.pos, field, format!("{e}")))
    }

    /// A byte count as docker writes them: a number, or a number and one of
    /// b, k, m, g (optionally with a trailing b), all binary.
    pub fn bytes(&self, node: &Node, field: &str) -> Result<u64, ComposeError> {
        let text = self.string(node, field)?;
        docker_bytes(&text)
            .ok_or_else(|| self.invalid(node.pos, field, format!("{text:?} is not a size")))
    }

    /// The entries of a mapping (an empty one for `~`).
    pub fn entries<'n>(&self, node: &'n Node, field: &str) -> Result<&'n [Entry], ComposeError> {
        match &node.value {
            Value::Map(entries) => Ok(entries),
            Value::Null => Ok(&[]),
            _ => Err(self.invalid(node.pos, field, "expected a mapping")),
        }
    }

    /// `KEY: value` mappings or `KEY=value` lists (labels, environment):
    /// each key with its value, `None` for a bare `KEY` or `KEY: ~`.
    pub fn key_values(
        &self,
        node: &Node,
        field: &str,
    ) -> Result<Vec<(String, Option<String>, Pos)>, ComposeError> {
        match &node.value {
            Value::Map(entries) => Ok(entries
                .iter()
                .map(|e| (e.key.clone(), text(&e.value), e.key_pos))
                .collect()),
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let line = self.string(item, &format!("{field}[{i}]"))?;
                    Ok(match line.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string()), item.pos),
                        None => (line, None, item.pos),
                    })
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            _ => Err(self.invalid(node.pos, field, "expected a mapping or a list of KEY=VALUE")),
        }
    }
}

/// A scalar's text; `None` for null and collections.
pub fn text(node: &Node) -> Option<String> {
    match &node.value {
        Value::String(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Seq(_) | Value::Map(_) => None,
    }
}

/// The value at `key` of a mapping node.
pub fn get<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
        _ => None,
    }
}

pub fn docker_bytes(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let unit = unit.trim();
    let unit = unit
        .strip_suffix('b')
        .filter(|u| !u.is_empty())
        .unwrap_or(unit);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    (value >= 0.0).then(|| (value * multiplier as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::docker_bytes;

    #[test]
    fn docker_sizes_are_binary() {
        assert_eq!(docker_bytes("512m"), Some(512 << 20));
        assert_eq!(docker_bytes("1GB"), Some(1 << 30));
        assert_eq!(docker_bytes("1.5g"), Some(3 << 29));
        assert_eq!(docker_bytes("4096"), Some(4096));
        assert_eq!(docker_bytes("64kb"), Some(64 << 10));
        assert_eq!(docker_bytes("lots"), None);
    }
}
