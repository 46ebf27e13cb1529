//! What the reconciler did, in the events log ([`crate::state::events`]):
//! each executed action becomes one event whose kind says what the verb
//! and its reason came to (a deletion because the manifests no longer
//! declare the object is `pruned`, a repair is `drift-repaired`), and
//! `berth inspect` reads one object's share of the log back.
//!
//! An earlier berth kept one file per object instead,
//! `events/<target>/<name>.jsonl`. Those are read too, beside the log,
//! and never written again: nothing they hold is lost, and nothing has to
//! be moved under the feet of a berth that still writes them.

use std::io::Read;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::plan::{Action, Target, Verb};
use crate::state::events::{Event, EventKind, EventLog, EventTarget};
use crate::state::nofollow::{open_beneath, Open};
use crate::state::Layout;

/// Events shown per object: its newest.
pub const KEEP: usize = 50;

/// The most of an earlier berth's per-object file read (it kept 100 lines).
const MAX_LEGACY_BYTES: u64 = 4 << 20;

/// One event of an object, as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectEvent {
    pub unix_ms: u64,
    pub kind: EventKind,
    /// The reconciler's verb, when the event is an action it carried out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verb: Option<Verb>,
    pub reason: String,
    /// None when the action succeeded.
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Who saw it: the manifest set applied, or the container's shim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What carrying out `action` comes to as an event; None for a verb that
/// changes nothing.
pub fn kind_of(action: &Action) -> Option<EventKind> {
    Some(match action.verb {
        Verb::Pull => EventKind::Pulled,
        Verb::Create => EventKind::Created,
        Verb::Replace => EventKind::Replaced,
        Verb::Repair => EventKind::DriftRepaired,
        // The planner gives every prune a reason that starts so.
        Verb::Delete if action.reason.starts_with("pruned") => EventKind::Pruned,
        Verb::Delete => EventKind::Removed,
        Verb::Start => EventKind::Started,
        Verb::Stop => EventKind::Stopped,
        Verb::Wait | Verb::Blocked => return None,
    })
}

/// The verb an event of `kind` the reconciler recorded stands for.
fn verb_of(kind: EventKind) -> Option<Verb> {
    Some(match kind {
        EventKind::Pulled => Verb::Pull,
        EventKind::Created => Verb::Create,
        EventKind::Replaced => Verb::Replace,
        EventKind::DriftRepaired => Verb::Repair,
        EventKind::Removed | EventKind::Pruned => Verb::Delete,
        EventKind::Started => Verb::Start,
        EventKind::Stopped => Verb::Stop,
        _ => return None,
    })
}

pub fn target_of(target: Target) -> EventTarget {
    match target {
        Target::Image => EventTarget::Image,
        Target::Container => EventTarget::Container,
        Target::Job => EventTarget::Job,
        Target::Network => EventTarget::Network,
        Target::Volume => EventTarget::Volume,
    }
}

/// Appends what carrying out `action` did (`error` when it failed) for the
/// manifest set `source`. Events are a diagnostic aid: failing to write
/// one is logged, never fatal to the action it describes.
pub fn record(log: &EventLog, action: &Action, error: Option<&str>, source: Option<&str>) {
    let Some(kind) = kind_of(action) else { return };
    let mut event = Event::new(kind, action.reason.clone())
        .about(target_of(action.target), action.name.clone())
        .with_error(error);
    if let Some(source) = source {
        event = event.from_source(source);
    }
    log.append(&event);
}

/// The object's newest [`KEEP`] events, oldest first: the log's, and an
/// earlier berth's per-object file's.
pub fn read(layout: &Layout, target: Target, name: &str) -> Vec<ObjectEvent> {
    let about = target_of(target);
    let mut events = read_legacy(layout, target, name);
    events.extend(
        EventLog::new(layout)
            .read_since(None)
            .into_iter()
            .filter(|e| e.is_about(about, name))
            .map(|e| ObjectEvent {
                unix_ms: e.unix_ms,
                kind: e.kind,
                verb: verb_of(e.kind),
                reason: e.reason,
                error: e.error,
                exit_code: e.exit_code,
                source: e.source,
            }),
    );
    // Stable: the log's order among events of the same millisecond.
    events.sort_by_key(|e| e.unix_ms);
    let surplus = events.len().saturating_sub(KEEP);
    events.drain(..surplus);
    events
}

/// A line of an earlier berth's per-object file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyEvent {
    unix_ms: u64,
    verb: Verb,
    reason: String,
    error: Option<String>,
}

/// Where an earlier berth kept the object's events.
fn legacy_path(layout: &Layout, target: Target, name: &str) -> PathBuf {
    layout
        .events()
        .join(format!("{target:?}").to_lowercase())
        .join(format!("{name}.jsonl"))
}

/// The events an earlier berth kept for the object; none when it kept no
/// file (or the file cannot be read: a link in its place is not followed).
fn read_legacy(layout: &Layout, target: Target, name: &str) -> Vec<ObjectEvent> {
    let path = legacy_path(layout, target, name);
    let Ok(file) = open_beneath(&layout.root, &path, Open::Read) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    if file.take(MAX_LEGACY_BYTES).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| serde_json::from_str::<LegacyEvent>(line).ok())
        .filter_map(|old| {
            let action = Action::new(target, name, old.verb, old.reason);
            Some(ObjectEvent {
                unix_ms: old.unix_ms,
                kind: kind_of(&action)?,
                verb: Some(old.verb),
                reason: action.reason,
                error: old.error,
                exit_code: None,
                source: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn action(target: Target, name: &str, verb: Verb, reason: &str) -> Action {
        Action::new(target, name, verb, reason)
    }

    fn layout(dir: &std::path::Path) -> Layout {
        let layout = Layout::new(&dir.join("root"), &dir.join("state"));
        fs::create_dir_all(&layout.root).unwrap();
        layout
    }

    #[test]
    fn each_verb_and_reason_comes_to_its_kind() {
        let cases = [
            (Verb::Pull, "not present", Some(EventKind::Pulled)),
            (Verb::Create, "declared", Some(EventKind::Created)),
            (Verb::Replace, "spec.env changed", Some(EventKind::Replaced)),
            (
                Verb::Repair,
                "drift: its process is gone",
                Some(EventKind::DriftRepaired),
            ),
            (
                Verb::Delete,
                "pruned: no longer declared",
                Some(EventKind::Pruned),
            ),
            (
                Verb::Delete,
                "pruned with --prune-volumes: no longer declared",
                Some(EventKind::Pruned),
            ),
            (
                Verb::Delete,
                "declared in the deleted set",
                Some(EventKind::Removed),
            ),
            (Verb::Wait, "waits for db", None),
            (Verb::Blocked, "still used by web", None),
        ];
        for (verb, reason, kind) in cases {
            let action = action(Target::Container, "web", verb, reason);
            assert_eq!(kind_of(&action), kind, "{verb:?} {reason}");
            if let Some(kind) = kind {
                assert_eq!(verb_of(kind), Some(verb));
            }
        }
    }

    #[test]
    fn an_objects_events_are_its_own_with_the_verb_and_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let log = EventLog::new(&layout);
        let web = |verb, reason| action(Target::Container, "web", verb, reason);
        record(&log, &web(Verb::Create, "declared"), None, Some("/m"));
        record(
            &log,
            &action(Target::Network, "web", Verb::Create, "declared"),
            None,
            None,
        );
        record(
            &log,
            &web(Verb::Replace, "spec.env changed"),
            Some("boom"),
            Some("/m"),
        );
        record(&log, &web(Verb::Wait, "waits"), None, None);
        log.append(
            &Event::new(EventKind::Restarted, "restart 1: killed by signal 9")
                .about(EventTarget::Container, "web")
                .with_exit_code(Some(137))
                .from_source("shim"),
        );
        let events = read(&layout, Target::Container, "web");
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Created,
                EventKind::Replaced,
                EventKind::Restarted
            ]
        );
        assert_eq!(events[1].verb, Some(Verb::Replace));
        assert_eq!(events[1].error.as_deref(), Some("boom"));
        assert_eq!(events[1].source.as_deref(), Some("/m"));
        assert_eq!(events[2].verb, None);
        assert_eq!(events[2].exit_code, Some(137));
        let json = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(json["verb"], "create");
        assert_eq!(json["kind"], "created");
        assert_eq!(read(&layout, Target::Network, "web").len(), 1);
    }

    #[test]
    fn only_the_newest_are_kept_and_a_deleted_objects_history_stays() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let log = EventLog::new(&layout);
        for i in 0..KEEP + 10 {
            let reason = format!("drift {i}");
            record(
                &log,
                &action(Target::Container, "web", Verb::Repair, &reason),
                None,
                None,
            );
        }
        record(
            &log,
            &action(
                Target::Container,
                "web",
                Verb::Delete,
                "pruned: no longer declared",
            ),
            None,
            None,
        );
        let events = read(&layout, Target::Container, "web");
        assert_eq!(events.len(), KEEP);
        assert_eq!(events.last().unwrap().kind, EventKind::Pruned);
        assert_eq!(events[0].reason, "drift 11");
    }

    /// An earlier berth's per-object file is read beside the log, in time order.
    #[test]
    fn an_earlier_berths_per_object_file_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let legacy = legacy_path(&layout, Target::Container, "web");
        fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        fs::write(
            &legacy,
            "{\"unixMs\":1,\"verb\":\"create\",\"reason\":\"declared\",\"error\":null}\n\
             {\"unixMs\":2,\"verb\":\"repair\",\"reason\":\"drift: gone\",\"error\":null}\n\
             {\"unixMs\":3,\"ve",
        )
        .unwrap();
        record(
            &EventLog::new(&layout),
            &action(Target::Container, "web", Verb::Replace, "spec.env changed"),
            None,
            None,
        );
        let events = read(&layout, Target::Container, "web");
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Created,
                EventKind::DriftRepaired,
                EventKind::Replaced
            ]
        );
        assert_eq!(events[1].verb, Some(Verb::Repair));
    }
}
