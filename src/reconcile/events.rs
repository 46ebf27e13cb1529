//! What the reconciler did to each object, and why: one JSON line per
//! action in `<target>/<name>.jsonl` under the layout's events directory,
//! the newest last, so `berth inspect` can say why a container was last
//! replaced or repaired.
//! Each log keeps its newest [`KEEP`] events.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::{Action, Target, Verb};
use crate::state::clock::unix_ms;

/// Events kept per object.
pub const KEEP: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub unix_ms: u64,
    pub verb: Verb,
    pub reason: String,
    /// None when the action succeeded.
    pub error: Option<String>,
}

/// `dir` is the layout's events directory.
fn log_path(dir: &Path, target: Target, name: &str) -> PathBuf {
    dir.join(format!("{target:?}").to_lowercase())
        .join(format!("{name}.jsonl"))
}

/// Appends what happened to `action`'s object. Events are a diagnostic aid:
/// failing to write one is logged, never fatal to the action it describes.
pub fn record(dir: &Path, action: &Action, error: Option<&str>) {
    if action.target == Target::Image {
        return;
    }
    let path = log_path(dir, action.target, &action.name);
    let event = Event {
        unix_ms: unix_ms(),
        verb: action.verb,
        reason: action.reason.clone(),
        error: error.map(str::to_string),
    };
    if let Err(error) = append(&path, &event) {
        tracing::warn!(path = %path.display(), %error, "cannot record event");
    }
}

fn append(path: &Path, event: &Event) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let existing = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    if existing.iter().filter(|b| **b == b'\n').count() >= 2 * KEEP {
        // Trim seldom: once the log doubles, rewrite it with the newest KEEP.
        let mut events = parse(&String::from_utf8_lossy(&existing));
        events.push(event.clone());
        let mut text = Vec::new();
        for event in &events[events.len().saturating_sub(KEEP)..] {
            text.extend(serde_json::to_vec(event)?);
            text.push(b'\n');
        }
        return crate::state::atomic::write_atomic(path, &text);
    }
    let mut line = Vec::new();
    if existing.last().is_some_and(|b| *b != b'\n') {
        // Close a line a crash cut short, so this one parses.
        line.push(b'\n');
    }
    line.extend(serde_json::to_vec(event)?);
    line.push(b'\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(&line)
}

/// The events in a log's text; a line torn by a crash mid-append is
/// skipped, not fatal.
fn parse(text: &str) -> Vec<Event> {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The object's events, oldest first.
pub fn read(dir: &Path, target: Target, name: &str) -> Vec<Event> {
    parse(&fs::read_to_string(log_path(dir, target, name)).unwrap_or_default())
}

/// Forgets a deleted object's events.
pub fn forget(dir: &Path, target: Target, name: &str) {
    let _ = fs::remove_file(log_path(dir, target, name));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(verb: Verb, reason: &str) -> Action {
        Action {
            target: Target::Container,
            name: "web".into(),
            verb,
            reason: reason.into(),
            pull_policy: None,
            image: None,
        }
    }

    #[test]
    fn events_are_kept_newest_last_and_trimmed() {
        let root = tempfile::tempdir().unwrap();
        record(root.path(), &action(Verb::Create, "declared"), None);
        record(
            root.path(),
            &action(Verb::Replace, "spec.env changed"),
            Some("boom"),
        );
        let events = read(root.path(), Target::Container, "web");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].verb, Verb::Replace);
        assert_eq!(events[1].reason, "spec.env changed");
        assert_eq!(events[1].error.as_deref(), Some("boom"));
        for i in 0..2 * KEEP {
            record(
                root.path(),
                &action(Verb::Repair, &format!("drift {i}")),
                None,
            );
        }
        let events = read(root.path(), Target::Container, "web");
        assert!(events.len() <= 2 * KEEP && events.len() >= KEEP);
        assert_eq!(
            events.last().unwrap().reason,
            format!("drift {}", 2 * KEEP - 1)
        );
        forget(root.path(), Target::Container, "web");
        assert!(read(root.path(), Target::Container, "web").is_empty());
    }

    #[test]
    fn a_torn_line_is_skipped() {
        let root = tempfile::tempdir().unwrap();
        record(root.path(), &action(Verb::Create, "declared"), None);
        let path = log_path(root.path(), Target::Container, "web");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"unixMs\":1,\"ver").unwrap();
        assert_eq!(read(root.path(), Target::Container, "web").len(), 1);
        record(root.path(), &action(Verb::Repair, "after the crash"), None);
        let events = read(root.path(), Target::Container, "web");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].reason, "after the crash");
    }
}
