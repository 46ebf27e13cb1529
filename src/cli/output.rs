//! Structured output for scripts: `-o json` and `-o yaml` print the same
//! value. YAML is written by a small block-style emitter from a JSON value
//! (serde_yaml is deprecated upstream; berth's YAML parser, saphyr, only
//! reads), quoting every string that a YAML reader would take for something
//! else.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::OutputFormat;

/// Prints `value` as pretty JSON or as YAML; `Text` (a verb with no text
/// form of this value) prints JSON.
pub fn print_structured(format: OutputFormat, value: &impl Serialize) -> anyhow::Result<()> {
    let text = structured(format, value)?;
    println!("{}", text.trim_end_matches('\n'));
    Ok(())
}

/// What [`print_structured`] prints, without the last newline's guarantee.
pub fn structured(format: OutputFormat, value: &impl Serialize) -> anyhow::Result<String> {
    Ok(match format {
        OutputFormat::Yaml => to_yaml(&serde_json::to_value(value)?),
        OutputFormat::Json | OutputFormat::Text => serde_json::to_string_pretty(value)?,
    })
}

/// `value` as a YAML document in block style (two-space indents,
/// sequences indented under their key), ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    to_yaml_ordered(value, &|_| 0)
}

/// Which of a mapping's keys come first: lower ranks first, equal ranks
/// in the order of the keys' text.
pub type KeyRank<'a> = &'a dyn Fn(&str) -> usize;

/// [`to_yaml`] with each mapping's keys in `rank`'s order, for documents
/// people read first to last (a manifest's `apiVersion`, `kind`,
/// `metadata`, `spec`, and `image` before the rest).
pub fn to_yaml_ordered(value: &Value, rank: KeyRank<'_>) -> String {
    let mut out = String::new();
    if is_inline(value) {
        out.push_str(&inline(value));
        out.push('\n');
    } else {
        write_block(&mut out, value, 0, rank);
    }
    out
}

/// Scalars and empty collections go on the line of their key or dash.
fn is_inline(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => true,
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// A non-empty mapping or sequence, each entry on its own line at `indent`.
fn write_block(out: &mut String, value: &Value, indent: usize, rank: KeyRank<'_>) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
            for (key, item) in entries {
                let _ = write!(out, "{pad}{}:", scalar(key));
                write_after_key(out, item, indent, rank);
            }
        }
        Value::Array(items) => {
            for item in items {
                let _ = write!(out, "{pad}-");
                write_after_dash(out, item, indent, rank);
            }
        }
        scalar_value => {
            let _ = writeln!(out, "{pad}{}", inline(scalar_value));
        }
    }
}

fn write_after_key(out: &mut String, value: &Value, indent: usize, rank: KeyRank<'_>) {
    if is_inline(value) {
        let _ = writeln!(out, " {}", inline(value));
    } else {
        out.push('\n');
        write_block(out, value, indent + 2, rank);
    }
}

/// A sequence item: a scalar after the dash, or a collection whose first
/// line goes on the dash's line and the rest under it (`- name: web`).
fn write_after_dash(out: &mut String, value: &Value, indent: usize, rank: KeyRank<'_>) {
    if is_inline(value) {
        let _ = writeln!(out, " {}", inline(value));
        return;
    }
    let mut nested = String::new();
    write_block(&mut nested, value, indent + 2, rank);
    out.push(' ');
    out.push_str(&nested[indent + 2..]);
}

/// A string as a YAML scalar: plain when every reader takes it back as the
/// same string, double-quoted with escapes otherwise.
fn scalar(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_string()
    } else {
        double_quoted(text)
    }
}

/// Words YAML 1.2 reads as null or booleans, and YAML 1.1 (PyYAML and
/// other older readers) as booleans too.
const KEYWORDS: &[&str] = &[
    "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n",
];

/// Characters that mean something at the start of a plain scalar.
const LEADING_INDICATORS: &str = "-?:,[]{}#&*!|>'\"%@`";

/// Whether `text` reads back as itself without quotes. Conservative: a
/// string that merely looks like a number, a date or a special float
/// (anything starting with a digit, a sign or a dot) is quoted, as are
/// keywords in any letter case.
fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if LEADING_INDICATORS.contains(first)
        || first.is_ascii_digit()
        || matches!(first, '+' | '.')
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
        || text.ends_with(':')
        || text.contains(": ")
        || text.contains(" #")
        || text.contains(":\t")
        || text.chars().any(needs_escape)
    {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    !KEYWORDS.contains(&lower.as_str())
}

/// Characters a plain scalar cannot hold as they are: controls (tab and
/// newline included), and the Unicode line breaks and byte-order mark that
/// readers treat specially.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::manifest::yaml::parse_stream;

    /// What berth's own YAML reader makes of `text`.
    fn read_back(text: &str) -> Value {
        let stream = parse_stream(text);
        assert!(stream.errors.is_empty(), "{text}\n{:?}", stream.errors);
        assert_eq!(stream.documents.len(), 1, "{text}");
        stream.documents[0].to_json()
    }

    fn round_trips(value: Value) {
        let text = to_yaml(&value);
        assert_eq!(read_back(&text), value, "emitted:\n{text}");
    }

    const TRICKY: &[&str] = &[
        "",
        " ",
        "true",
        "True",
        "no",
        "NO",
        "off",
        "y",
        "null",
        "Null",
        "~",
        "0",
        "-1",
        "+1",
        "1.5",
        "1e3",
        "0x1f",
        "0o17",
        ".inf",
        "-.inf",
        ".nan",
        "2026-12-02",
        "2026-12-02T06:00:00Z",
        "10.88.0.2",
        "12:30",
        "a: b",
        "a:",
        ":a",
        "a #b",
        "a#b",
        "#comment",
        "- item",
        "-",
        "?",
        "key: value # note",
        "line one\nline two",
        "trailing newline\n",
        "tab\there",
        "cr\rhere",
        "quote \" inside",
        "'single'",
        "\"double\"",
        "back\\slash",
        "&anchor",
        "*alias",
        "!tag",
        "|",
        ">",
        "%directive",
        "@at",
        "`tick",
        "[flow]",
        "{flow}",
        ",comma",
        " leading space",
        "trailing space ",
        "bell\u{7}",
        "nul\0",
        "nel\u{85}",
        "ls\u{2028}ps\u{2029}",
        "bom\u{feff}",
        "ünïcödé 名前",
        "plain words",
        "web-1",
        "/var/lib/berth",
        "oci-layout:/srv/images/busybox:latest",
        "sha256:abc",
        "http://example.com/a?b=c#d",
    ];

    #[test]
    fn tricky_strings_read_back_as_the_same_strings() {
        for text in TRICKY {
            round_trips(json!(text));
            round_trips(json!({ "key": text }));
            round_trips(json!([text]));
        }
    }

    #[test]
    fn tricky_strings_as_keys_read_back_as_the_same_keys() {
        for text in TRICKY {
            round_trips(json!({ *text: 1 }));
        }
    }

    #[test]
    fn scalars_keep_their_types() {
        round_trips(json!({
            "null": null, "yes": true, "no": false, "int": -42, "big": 9_007_199_254_740_993_i64,
            "float": 1.5, "whole float": 2.0, "tiny": 1e-7, "huge": 1e300,
        }));
    }

    #[test]
    fn nested_collections_read_back_the_same() {
        round_trips(json!({
            "record": {
                "id": "web",
                "labels": {"app": "web", "tier": ""},
                "spec": {"command": ["sh", "-c", "echo hi; sleep 1"], "env": {}},
                "ports": [],
            },
            "events": [
                {"verb": "create", "reason": "declared: new"},
                {"verb": null, "nested": [[1, 2], [], [{"a": [3]}], {}]},
            ],
            "matrix": [[["deep"]]],
        }));
        round_trips(json!([]));
        round_trips(json!({}));
        round_trips(json!([{}, [], null]));
    }

    #[test]
    fn ranked_keys_come_first_and_the_rest_in_order() {
        let value =
            json!({"spec": {"b": 1, "image": "x", "a": [{"z": 1, "name": "web"}]}, "kind": "K"});
        let rank = |key: &str| match key {
            "kind" => 0,
            "name" | "image" => 1,
            _ => 2,
        };
        assert_eq!(
            to_yaml_ordered(&value, &rank),
            "kind: K\nspec:\n  image: x\n  a:\n    - name: web\n      z: 1\n  b: 1\n"
        );
        assert_eq!(read_back(&to_yaml_ordered(&value, &rank)), value);
    }

    #[test]
    fn plain_strings_stay_plain_and_others_are_quoted() {
        assert_eq!(to_yaml(&json!({"name": "web"})), "name: web\n");
        assert_eq!(to_yaml(&json!({"on": "true"})), "\"on\": \"true\"\n");
        assert_eq!(to_yaml(&json!("a\nb")), "\"a\\nb\"\n");
        assert_eq!(
            to_yaml(&json!({"list": ["a", {"b": 1, "c": [2]}]})),
            "list:\n  - a\n  - b: 1\n    c:\n      - 2\n"
        );
    }
}
