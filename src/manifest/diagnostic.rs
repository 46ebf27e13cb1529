//! A problem found in a manifest set, pointing at the user's text.

use std::fmt;

use serde::Serialize;

/// One problem: where it is (file, 1-based line and column, field path) and what it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 0 when the problem is the file as a whole (missing, unreadable, untrusted).
    pub line: usize,
    pub column: usize,
    /// The field path inside the document, such as `spec.restart.policy` or `spec.ports[1].hostPort`; empty for the whole document or file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl Diagnostic {
    /// A problem with a file as a whole rather than a place in it.
    pub fn for_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line: 0,
            column: 0,
            path: String::new(),
            message: message.into(),
        }
    }
}

/// A segment of a field path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// Renders `["spec", "ports", 1, "hostPort"]` as `spec.ports[1].hostPort`.
pub fn render_path(segments: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            PathSegment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            PathSegment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Edit distance, for "did you mean" suggestions.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(!ca.eq_ignore_ascii_case(cb));
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// The closest candidate within a distance that still reads as a typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let length = word.chars().count();
    let limit = (length / 3).max(2);
    candidates
        .into_iter()
        // The distance is at least the difference in length: a word far
        // longer than every candidate (hostile input can be megabytes)
        // costs nothing.
        .filter(|candidate| candidate.chars().count().abs_diff(length) <= limit)
        .map(|candidate| (levenshtein(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_with_dots_and_indexes() {
        let path = [
            PathSegment::Key("spec".into()),
            PathSegment::Key("ports".into()),
            PathSegment::Index(1),
            PathSegment::Key("hostPort".into()),
        ];
        assert_eq!(render_path(&path), "spec.ports[1].hostPort");
    }

    #[test]
    fn suggestions_pick_the_closest_typo_only() {
        assert_eq!(
            did_you_mean("imagePullPolcy", ["image", "imagePullPolicy"]),
            Some("imagePullPolicy")
        );
        assert_eq!(
            did_you_mean("restrat", ["restart", "ports"]),
            Some("restart")
        );
        assert_eq!(did_you_mean("zzzzzz", ["restart", "ports"]), None);
    }
}
