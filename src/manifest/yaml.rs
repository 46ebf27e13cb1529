//! A YAML reader that keeps the source position of every node.
//!
//! saphyr-parser gives a stream of spanned events; this module builds a small
//! node tree from it (resolving scalars by the YAML 1.2 core schema, expanding
//! aliases and `<<` merge keys with limits) so that every later error, from the
//! schema or from berth's own checks, can point at `file:line:col`.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::diagnostic::PathSegment;

/// Nesting deeper than this is refused instead of risking the stack.
pub const MAX_DEPTH: usize = 128;
/// Alias expansion beyond this many nodes is refused ("billion laughs").
pub const MAX_ALIAS_NODES: usize = 100_000;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A problem in the YAML text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// The documents of one YAML stream, with the problems met while reading it.
/// A syntax error ends the stream; documents before it are kept.
#[derive(Debug, Default)]
pub struct Stream {
    pub documents: Vec<Node>,
    pub errors: Vec<YamlError>,
}

pub fn parse_stream(text: &str) -> Stream {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(pair) => pair,
            Err(error) => {
                let marker = error.marker();
                let pos = Pos {
                    line: marker.line(),
                    column: marker.col() + 1,
                };
                builder.stream.errors.push(YamlError {
                    pos: within(text, pos),
                    message: format!("YAML syntax error: {}", error.info()),
                });
                break;
            }
        };
        if let Err(error) = builder.handle(event, &span) {
            builder.stream.errors.push(error);
            break;
        }
    }
    builder.stream
}

/// `pos`, or the end of the text when `pos` lies past its last line: saphyr
/// reports an error at the end of a text without a final line break on the
/// line after the last one.
fn within(text: &str, pos: Pos) -> Pos {
    // YAML breaks lines at \n, \r\n and a lone \r.
    let bytes = text.as_bytes();
    let mut lines = 1;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            lines += 1;
        }
    }
    if pos.line <= lines {
        return pos;
    }
    let last = text.rfind(['\n', '\r']).map_or(text, |i| &text[i + 1..]);
    Pos {
        line: lines,
        column: last.chars().count() + 1,
    }
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        pending_key: Option<(String, Pos)>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
    stream: Stream,
}

impl Builder {
    fn handle(&mut self, event: Event<'_>, span: &Span) -> Result<(), YamlError> {
        let pos = Pos::from_span(span);
        match event {
            Event::DocumentStart(_) => {
                self.anchors.clear();
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve_scalar(&text, style, tag.as_deref());
                self.complete(Node { value, pos }, anchor)
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    pos,
                    message: "alias refers to an unknown anchor".into(),
                })?;
                self.alias_nodes += count_nodes(&node);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(YamlError {
                        pos,
                        message: format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                    });
                }
                // The copy lands at this depth: anchors nesting each other
                // would otherwise build trees far deeper than the limit.
                if self.stack.len() + nesting(&node) > MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: format!("alias nests deeper than {MAX_DEPTH} levels"),
                    });
                }
                self.complete(Node { pos, ..node }, 0)
            }
            Event::SequenceStart(anchor, _) => self.open(Frame::Seq {
                pos,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.open(Frame::Map {
                pos,
                anchor,
                entries: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => Ok(()),
        }
    }

    fn open(&mut self, frame: Frame) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            let pos = match &frame {
                Frame::Seq { pos, .. } | Frame::Map { pos, .. } => *pos,
            };
            return Err(YamlError {
                pos,
                message: format!("nested deeper than {MAX_DEPTH} levels"),
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self) -> Result<(), YamlError> {
        match self.stack.pop() {
            Some(Frame::Seq { pos, anchor, items }) => self.complete(
                Node {
                    value: Value::Seq(items),
                    pos,
                },
                anchor,
            ),
            Some(Frame::Map {
                pos,
                anchor,
                entries,
                ..
            }) => {
                let entries = apply_merge_keys(entries)?;
                self.complete(
                    Node {
                        value: Value::Map(entries),
                        pos,
                    },
                    anchor,
                )
            }
            None => Ok(()),
        }
    }

    /// Hands a finished node to its parent (or ends the document).
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if node.value != Value::Null {
                    self.stream.documents.push(node);
                }
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    let key = key_text(&node)?;
                    *pending_key = Some((key, node.pos));
                    Ok(())
                }
                Some((key, key_pos)) => {
                    if let Some(first) = entries.iter().find(|e| e.key == key) {
                        return Err(YamlError {
                            pos: key_pos,
                            message: format!(
                                "duplicate key {key:?} (first at line {})",
                                first.key_pos.line
                            ),
                        });
                    }
                    entries.push(Entry {
                        key,
                        key_pos,
                        value: node,
                    });
                    Ok(())
                }
            },
        }
    }
}

fn key_text(node: &Node) -> Result<String, YamlError> {
    match &node.value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Int(n) => Ok(n.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Seq(_) | Value::Map(_) => Err(YamlError {
            pos: node.pos,
            message: "a mapping key must be a plain value, not a list or mapping".into(),
        }),
    }
}

/// `<<: *base` (or a list of them) copies the keys the mapping does not set itself.
fn apply_merge_keys(entries: Vec<Entry>) -> Result<Vec<Entry>, YamlError> {
    if !entries.iter().any(|e| e.key == "<<") {
        return Ok(entries);
    }
    let (merges, mut own): (Vec<Entry>, Vec<Entry>) =
        entries.into_iter().partition(|e| e.key == "<<");
    for merge in merges {
        let sources = match merge.value.value {
            Value::Map(map) => vec![map],
            Value::Seq(items) => items
                .into_iter()
                .map(|item| match item.value {
                    Value::Map(map) => Ok(map),
                    _ => Err(YamlError {
                        pos: item.pos,
                        message: "a << merge list may hold only mappings".into(),
                    }),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(YamlError {
                    pos: merge.value.pos,
                    message: "the value of << must be a mapping or a list of mappings".into(),
                })
            }
        };
        for source in sources {
            for entry in source {
                if !own.iter().any(|e| e.key == entry.key) {
                    own.push(entry);
                }
            }
        }
    }
    Ok(own)
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count_nodes).sum(),
        Value::Map(entries) => entries.iter().map(|e| 1 + count_nodes(&e.value)).sum(),
        _ => 0,
    }
}

/// How many collections deep `node` is: 0 for a scalar, 1 for `[1]`.
fn nesting(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Value::Map(entries) => 1 + entries.iter().map(|e| nesting(&e.value)).max().unwrap_or(0),
        _ => 0,
    }
}

/// Resolves a scalar by the YAML 1.2 core schema: only plain scalars can be
/// null, booleans or numbers (so `no` and `on` stay strings).
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag {
        if tag.is_yaml_core_schema() || tag.handle == "!!" {
            match tag.suffix.as_str() {
                "str" => return Value::String(text.to_string()),
                "null" => return Value::Null,
                _ => {}
            }
        }
    }
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Int(n);
    }
    if looks_like_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return i64::from_str_radix(octal, 8).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn looks_like_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = {
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        (!whole.is_empty() || !fraction.is_empty())
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit())
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

impl Node {
    /// The tree as JSON, for the schema validator and for serde.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(n) => J::from(*n),
            // JSON has no infinities; keep the text so the schema reports a type error.
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map_or_else(|| J::String(f.to_string()), J::Number)
            }
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// The position of the node at `path`, or of the deepest node on the way
    /// when the path leaves the tree (a missing field points at its parent).
    /// With `at_key`, a mapping entry points at its key rather than its value.
    pub fn locate(&self, path: &[PathSegment], at_key: bool) -> Pos {
        let mut node = self;
        for (i, segment) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match (segment, &node.value) {
                (PathSegment::Key(key), Value::Map(entries)) => {
                    let Some(entry) = entries.iter().find(|e| &e.key == key) else {
                        return node.pos;
                    };
                    if last && at_key {
                        return entry.key_pos;
                    }
                    node = &entry.value;
                }
                (PathSegment::Index(index), Value::Seq(items)) => {
                    let Some(item) = items.get(*index) else {
                        return node.pos;
                    };
                    node = item;
                }
                _ => return node.pos,
            }
        }
        node.pos
    }

    /// Whether the document holds a node at `path`, as it was written
    /// (before any field at fault was pruned from the typed object).
    pub fn contains(&self, path: &[PathSegment]) -> bool {
        let mut node = self;
        for segment in path {
            let next = match (segment, &node.value) {
                (PathSegment::Key(key), Value::Map(entries)) => {
                    entries.iter().find(|e| &e.key == key).map(|e| &e.value)
                }
                (PathSegment::Index(index), Value::Seq(items)) => items.get(*index),
                _ => None,
            };
            match next {
                Some(found) => node = found,
                None => return false,
            }
        }
        true
    }

    /// The string at a top-level key of a mapping, if any.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match &self.value {
            Value::Map(entries) => {
                entries
                    .iter()
                    .find(|e| e.key == key)
                    .and_then(|e| match &e.value.value {
                        Value::String(s) => Some(s.as_str()),
                        _ => None,
                    })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let stream = parse_stream(text);
        assert!(stream.errors.is_empty(), "{:?}", stream.errors);
        assert_eq!(stream.documents.len(), 1);
        stream.documents.into_iter().next().unwrap()
    }

    fn key(s: &str) -> PathSegment {
        PathSegment::Key(s.into())
    }

    #[test]
    fn positions_are_one_based_and_point_at_values_or_keys() {
        let doc = one("a: 1\nspec:\n  restart:\n    policy: sometimes\n");
        let path = [key("spec"), key("restart"), key("policy")];
        assert_eq!(
            doc.locate(&path, false),
            Pos {
                line: 4,
                column: 13
            }
        );
        assert_eq!(doc.locate(&path, true), Pos { line: 4, column: 5 });
        // A missing field points at the mapping that lacks it.
        assert_eq!(
            doc.locate(&[key("spec"), key("nope")], false),
            Pos { line: 3, column: 3 }
        );
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let doc = one("a: 1\nb: 1.5\nc: true\nd: no\ne: ~\nf: '1'\ng: 0x10\nh: 1e3\ni: !!str 7\n");
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"a": 1, "b": 1.5, "c": true, "d": "no", "e": null, "f": "1", "g": 16, "h": 1000.0, "i": "7"})
        );
    }

    #[test]
    fn multiple_documents_skip_empty_ones() {
        let stream = parse_stream("---\na: 1\n---\n---\nb: 2\n");
        assert_eq!(stream.documents.len(), 2);
        assert_eq!(stream.documents[1].pos.line, 5);
    }

    #[test]
    fn duplicate_keys_are_errors_naming_both_lines() {
        let stream = parse_stream("a: 1\nb: 2\na: 3\n");
        assert_eq!(stream.errors.len(), 1);
        assert_eq!(stream.errors[0].pos, Pos { line: 3, column: 1 });
        assert!(stream.errors[0].message.contains("first at line 1"));
    }

    #[test]
    fn syntax_errors_carry_a_position_and_keep_earlier_documents() {
        let stream = parse_stream("a: 1\n---\nb: [1, 2\nc: 3\n");
        assert_eq!(stream.documents.len(), 1);
        assert_eq!(stream.errors.len(), 1);
        assert!(stream.errors[0].pos.line >= 3, "{:?}", stream.errors[0]);
    }

    #[test]
    fn aliases_and_merge_keys_expand() {
        let doc = one("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n");
        assert_eq!(doc.to_json()["use"], serde_json::json!({"x": 1, "y": 3}));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let stream = parse_stream(&text);
        assert!(
            stream.errors[0].message.contains("aliases expand"),
            "{:?}",
            stream.errors
        );
    }

    /// Regression (found by tests/fuzz_inputs.rs): an error at the end of a
    /// text without a final line break pointed at a line past the last one.
    #[test]
    fn an_error_at_the_end_of_the_text_points_inside_it() {
        for (text, expected) in [
            ("a: 1\nb: [1", Pos { line: 2, column: 6 }),
            ("a: 1\r\nb: [1", Pos { line: 2, column: 6 }),
            ("a: 1\rb: {x", Pos { line: 2, column: 6 }),
            ("a: 1\nb", Pos { line: 2, column: 2 }),
        ] {
            let stream = parse_stream(text);
            assert_eq!(stream.errors.len(), 1, "{text:?}: {:?}", stream.errors);
            assert_eq!(
                stream.errors[0].pos, expected,
                "{text:?}: {:?}",
                stream.errors
            );
        }
        // With the final line break, the end of the text is the empty last line.
        let stream = parse_stream("a: 1\nb: [1\n");
        assert_eq!(stream.errors[0].pos.line, 3, "{:?}", stream.errors);
    }

    /// Regression (found by tests/fuzz_inputs.rs): aliases were copied
    /// without a depth check, so anchors that nest each other inside
    /// brackets built a tree thousands of levels deep from a few KiB of
    /// text, and the recursive steps after parsing overflowed the stack.
    #[test]
    fn aliases_cannot_nest_deeper_than_the_depth_limit() {
        let (open, close) = ("[".repeat(100), "]".repeat(100));
        let text = format!("a: &a {open}1{close}\nb: {open}*a{close}\n");
        let stream = parse_stream(&text);
        assert_eq!(stream.errors.len(), 1, "{:?}", stream.errors);
        assert!(
            stream.errors[0].message.contains("deeper than 128 levels"),
            "{:?}",
            stream.errors
        );
        assert_eq!(stream.errors[0].pos.line, 2);
        let mut chain = format!("a0: &a0 {open}1{close}\n");
        for i in 1..40 {
            chain.push_str(&format!("a{i}: &a{i} {open}*a{}{close}\n", i - 1));
        }
        assert!(!parse_stream(&chain).errors.is_empty());
        let shallow = one("a: &a [[1]]\nb: [[*a]]\n");
        assert_eq!(shallow.to_json()["b"], serde_json::json!([[[[1]]]]));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let text = "[".repeat(100_000);
        let stream = parse_stream(&text);
        assert!(!stream.errors.is_empty());
    }
}
