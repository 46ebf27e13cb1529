//! What the reconciler did to each object, and why: one JSON line per
//! action in `<target>/<name>.jsonl` under the layout's events directory,
//! the newest last, so `berth inspect` can say why a container was last
//! replaced or repaired.
//! Each log keeps its newest [`KEEP`] events.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::{Action, Target, Verb};
use crate::state::clock::unix_ms;
use crate::state::nofollow::{open_beneath, Open};

/// Events kept per object.
pub const KEEP: usize = 50;

/// The most of one log berth reads: [`KEEP`] events are far less, and a
/// log grown by hand stops here instead of filling memory.
const MAX_LOG_BYTES: u64 = 4 << 20;

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
    if let Err(error) = append(base_of(dir), &path, &event) {
        tracing::warn!(path = %path.display(), %error, "cannot record event");
    }
}

/// The directory the events directory lives in: walks to an events file
/// start there, so a link planted in place of the events directory, a
/// target's directory or a log is refused, never followed.
fn base_of(dir: &Path) -> &Path {
    dir.parent().unwrap_or(dir)
}

fn read_existing(base: &Path, path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match open_beneath(base, path, Open::Read) {
        Ok(file) => {
            file.take(MAX_LOG_BYTES).read_to_end(&mut bytes)?;
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(bytes),
        Err(e) => Err(e),
    }
}

fn append(base: &Path, path: &Path, event: &Event) -> std::io::Result<()> {
    let existing = read_existing(base, path)?;
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
    open_beneath(base, path, Open::AppendOrCreate(0o600))?.write_all(&line)
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
    let bytes = read_existing(base_of(dir), &log_path(dir, target, name)).unwrap_or_default();
    parse(&String::from_utf8_lossy(&bytes))
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
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"unixMs\":1,\"ver").unwrap();
        assert_eq!(read(root.path(), Target::Container, "web").len(), 1);
        record(root.path(), &action(Verb::Repair, "after the crash"), None);
        let events = read(root.path(), Target::Container, "web");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].reason, "after the crash");
    }

    /// Regression: a link planted in place of a target's events directory
    /// was followed, so berth appended where the link pointed.
    #[test]
    fn a_planted_link_is_not_written_through() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join("container")).unwrap();
        record(root.path(), &action(Verb::Create, "declared"), None);
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        assert!(read(root.path(), Target::Container, "web").is_empty());
    }
}
