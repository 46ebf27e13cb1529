//! The events log: one ordered, size-bounded record on disk of what
//! happened to berth's objects (created, replaced, restarted with an exit
//! code, became unhealthy, ...), appended by whoever saw it happen: the
//! reconciler of `berth apply` (and the daemon), and each container's shim.
//! `berth events` reads it, after a restart too, and `berth inspect` shows
//! an object's share of it.
//!
//! ```text
//! <root>/events/events.jsonl    the current file: one JSON object a line, oldest first
//! <root>/events/events.1.jsonl  the file before it
//! <root>/events/events.lock     appends and rotations hold it exclusively
//! ```
//!
//! - An append takes the lock, writes one whole line with `O_APPEND`, and
//!   gives the event the sequence number after the last one in the log
//!   (read from the log's tail while the lock is held): file order and
//!   `seq` order are the same, and a reader can tell an event it has seen.
//! - When the current file has passed [`ROTATE_AT`] bytes, the append
//!   first renames it over `events.1.jsonl`: at most about twice the bound
//!   is kept, and the oldest events go first.
//! - A line torn by a crash mid-append is closed by the next append and
//!   skipped by every reader. Reads are bounded: a file grown by other
//!   hands is read from its last 5 MiB only.
//! - Every file is opened relative to the events directory's descriptor,
//!   walked from `--root` without following a link (see [`nofollow`]), and
//!   created 0600.
//!
//! Events are a diagnostic aid: [`EventLog::append`] never fails its
//! caller (what the event describes has happened either way).
//!
//! [`nofollow`]: super::nofollow

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::clock::unix_ms;
use super::layout::Layout;
use super::nofollow::{open_dir_beneath, open_in, Open};

/// The current file is rotated once it has grown past this many bytes.
pub const ROTATE_AT: u64 = 4 << 20;

/// The most of one file a reader reads: its last bytes. A file berth wrote
/// is at most [`ROTATE_AT`] and one line.
const MAX_READ: u64 = ROTATE_AT + (1 << 20);

/// The longest `reason` or `error` kept, in bytes: a line stays short, so
/// the tail read for the last sequence number always holds a whole one.
const MAX_FIELD: usize = 4096;

/// How much of the log's tail an append reads for the last sequence number.
const SEQ_TAIL: u64 = 64 << 10;

/// The most a follower reads per batch.
const MAX_BATCH: u64 = 1 << 20;

/// How long an append or a read waits for the lock before it gives up: a
/// holder only opens or appends, so a longer wait means a holder that is
/// stopped, and a shim must not hang on it.
const LOCK_PATIENCE: Duration = Duration::from_secs(2);

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// An image was pulled or imported.
    Pulled,
    Created,
    /// Deleted and created again because its declaration changed.
    Replaced,
    Started,
    Stopped,
    /// Deleted (by `berth delete`, or to leave a network being replaced).
    Removed,
    /// Deleted because the manifests no longer declare it (`--prune`).
    Pruned,
    /// Recreated because it drifted (killed, removed behind berth's back).
    DriftRepaired,
    /// The shim started the container again after its run ended.
    Restarted,
    Unhealthy,
    Healthy,
    /// Ended for good with a failure: no restart follows.
    Failed,
    GenerationApplied,
    GenerationRejected,
    /// A kind this berth does not know (a newer berth wrote it).
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [EventKind; 15] = [
        EventKind::Pulled,
        EventKind::Created,
        EventKind::Replaced,
        EventKind::Started,
        EventKind::Stopped,
        EventKind::Removed,
        EventKind::Pruned,
        EventKind::DriftRepaired,
        EventKind::Restarted,
        EventKind::Unhealthy,
        EventKind::Healthy,
        EventKind::Failed,
        EventKind::GenerationApplied,
        EventKind::GenerationRejected,
        EventKind::Unknown,
    ];

    /// Its name in the log (and on the command line).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Pulled => "pulled",
            EventKind::Created => "created",
            EventKind::Replaced => "replaced",
            EventKind::Started => "started",
            EventKind::Stopped => "stopped",
            EventKind::Removed => "removed",
            EventKind::Pruned => "pruned",
            EventKind::DriftRepaired => "drift-repaired",
            EventKind::Restarted => "restarted",
            EventKind::Unhealthy => "unhealthy",
            EventKind::Healthy => "healthy",
            EventKind::Failed => "failed",
            EventKind::GenerationApplied => "generation-applied",
            EventKind::GenerationRejected => "generation-rejected",
            EventKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("{text:?} is not one of {}", names.join(", "))
            })
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventTarget {
    Container,
    Job,
    Network,
    Volume,
    Image,
    /// A set of manifests read as one (the daemon's).
    Generation,
}

impl std::fmt::Display for EventTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EventTarget::Container => "Container",
            EventTarget::Job => "Job",
            EventTarget::Network => "Network",
            EventTarget::Volume => "Volume",
            EventTarget::Image => "Image",
            EventTarget::Generation => "Generation",
        })
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub unix_ms: u64,
    /// Its place in the log, given by [`EventLog::append`]: one more than
    /// the event before it.
    #[serde(default)]
    pub seq: u64,
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<EventTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub reason: String,
    /// Set when what the event describes was tried and failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How the container's run ended (128 + N for a death by signal N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Who saw it: the manifest set applied, `daemon` or `shim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Event {
    /// An event that happens now; the builders below add the rest.
    pub fn new(kind: EventKind, reason: impl Into<String>) -> Event {
        Event {
            unix_ms: unix_ms(),
            seq: 0,
            kind,
            target: None,
            name: None,
            reason: reason.into(),
            error: None,
            exit_code: None,
            generation: None,
            source: None,
        }
    }

    /// About the object `name` of `target`.
    pub fn about(mut self, target: EventTarget, name: impl Into<String>) -> Event {
        self.target = Some(target);
        self.name = Some(name.into());
        self
    }

    pub fn with_error(mut self, error: Option<impl Into<String>>) -> Event {
        self.error = error.map(Into::into);
        self
    }

    pub fn with_exit_code(mut self, exit_code: Option<i32>) -> Event {
        self.exit_code = exit_code;
        self
    }

    pub fn with_generation(mut self, generation: u64) -> Event {
        self.generation = Some(generation);
        self
    }

    pub fn from_source(mut self, source: impl Into<String>) -> Event {
        self.source = Some(source.into());
        self
    }

    /// Whether it is about the object `name` of `target`.
    pub fn is_about(&self, target: EventTarget, name: &str) -> bool {
        self.target == Some(target) && self.name.as_deref() == Some(name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("lock {path}: {source}")]
    Lock { path: PathBuf, source: Errno },
    #[error("lock {path}: still held by another process after {}s", .waited.as_secs())]
    Busy { path: PathBuf, waited: Duration },
    #[error("rotate {path}: {source}")]
    Rotate { path: PathBuf, source: Errno },
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("append to {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("encode an event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The events log of one berth instance. Cheap to make: it opens its
/// files for each operation.
#[derive(Debug, Clone)]
pub struct EventLog {
    /// `--root`: no link is followed below it.
    root: PathBuf,
    dir: PathBuf,
    current: PathBuf,
    rotated: PathBuf,
    lock: PathBuf,
    rotate_at: u64,
}

impl EventLog {
    pub fn new(layout: &Layout) -> EventLog {
        EventLog {
            root: layout.root.clone(),
            dir: layout.events(),
            current: layout.events_log(),
            rotated: layout.events_log_rotated(),
            lock: layout.events_lock(),
            rotate_at: ROTATE_AT,
        }
    }

    /// The log whose current file is `events_log`, as a shim is told it
    /// ([`Layout::events_log`] of its berth); None when it is not one.
    pub(crate) fn for_file(events_log: &Path) -> Option<EventLog> {
        let root = events_log.parent()?.parent()?;
        let layout = Layout::new(root, Path::new(""));
        (layout.events_log() == events_log).then(|| EventLog::new(&layout))
    }

    /// Appends `event`, giving it the next sequence number; a failure is
    /// logged as a warning, never returned.
    pub fn append(&self, event: &Event) {
        if let Err(error) = self.try_append(event) {
            tracing::warn!(%error, "cannot record an event in the events log");
        }
    }

    /// [`EventLog::append`] with its failure, for a caller that logs it
    /// elsewhere (the shim, whose stderr goes nowhere). Returns the
    /// event's sequence number.
    pub(crate) fn try_append(&self, event: &Event) -> Result<u64, EventLogError> {
        let dir = open_dir_beneath(&self.root, &self.dir, true).map_err(|source| {
            EventLogError::Open {
                path: self.dir.clone(),
                source,
            }
        })?;
        let _held = self.hold_lock(&dir, true)?;
        let mut file = self.open_current_for_append(&dir)?;
        let mut size = self.size_of(&file, &self.current)?;
        if size >= self.rotate_at {
            self.rotate(&dir)?;
            file = self.open_current_for_append(&dir)?;
            size = 0;
        }
        let last = match last_seq(&file, size) {
            Some(seq) => seq,
            None => self.last_seq_of_rotated(&dir).unwrap_or(0),
        };
        let mut stamped = event.clone();
        stamped.seq = last + 1;
        shorten(&mut stamped.reason);
        if let Some(error) = stamped.error.as_mut() {
            shorten(error);
        }
        let mut line = Vec::new();
        if size > 0 && !ends_with_newline(&file, size) {
            // Close the line a crash cut short, so this one parses.
            line.push(b'\n');
        }
        serde_json::to_writer(&mut line, &stamped)?;
        line.push(b'\n');
        file.write_all(&line)
            .map_err(|source| EventLogError::Write {
                path: self.current.clone(),
                source,
            })?;
        Ok(stamped.seq)
    }

    /// The events at or after `since_unix_ms` (all without it), oldest
    /// first, from both files; empty when there is no log or it cannot be
    /// read (logged as a warning).
    pub fn read_since(&self, since_unix_ms: Option<u64>) -> Vec<Event> {
        match self.try_read() {
            Ok(mut events) => {
                if let Some(since) = since_unix_ms {
                    events.retain(|e| e.unix_ms >= since);
                }
                events
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the events log");
                Vec::new()
            }
        }
    }

    /// A reader of the events appended from now on.
    pub fn follower(&self) -> Follower {
        let mut follower = Follower {
            log: self.clone(),
            followed: None,
        };
        // Where the current file ends now, taken under the lock (if it can
        // be had) so no append is half way; a missing log is followed from
        // its start.
        let Ok(dir) = open_dir_beneath(&self.root, &self.dir, false) else {
            return follower;
        };
        let _held = self.hold_lock(&dir, false);
        if let Ok(Some(file)) = self.open_existing(&dir, &self.current) {
            follower.followed = Followed::at_end(file).ok();
        }
        follower
    }

    // ---- appending --------------------------------------------------------

    /// Takes the lock (exclusive to write, shared to read), waiting at most
    /// [`LOCK_PATIENCE`]. A reader finds no lock file when nothing was ever
    /// appended: None then.
    fn hold_lock(&self, dir: &OwnedFd, write: bool) -> Result<Option<Flock<File>>, EventLogError> {
        let open = if write {
            open_in(
                dir,
                name_of(&self.lock),
                Open::AppendOrCreate(0o600),
                &self.lock,
            )
        } else {
            open_in(dir, name_of(&self.lock), Open::Read, &self.lock)
        };
        let mut file = match open {
            Ok(file) => file,
            Err(e) if !write && e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(EventLogError::Open {
                    path: self.lock.clone(),
                    source,
                })
            }
        };
        let arg = if write {
            FlockArg::LockExclusiveNonblock
        } else {
            FlockArg::LockSharedNonblock
        };
        let began = Instant::now();
        loop {
            match Flock::lock(file, arg) {
                Ok(held) => return Ok(Some(held)),
                Err((back, Errno::EWOULDBLOCK | Errno::EINTR)) => {
                    if began.elapsed() > LOCK_PATIENCE {
                        return Err(EventLogError::Busy {
                            path: self.lock.clone(),
                            waited: LOCK_PATIENCE,
                        });
                    }
                    file = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((_, source)) => {
                    return Err(EventLogError::Lock {
                        path: self.lock.clone(),
                        source,
                    })
                }
            }
        }
    }

    fn open_current_for_append(&self, dir: &OwnedFd) -> Result<File, EventLogError> {
        open_in(
            dir,
            name_of(&self.current),
            Open::ReadAppendOrCreate(0o600),
            &self.current,
        )
        .map_err(|source| EventLogError::Open {
            path: self.current.clone(),
            source,
        })
    }

    fn size_of(&self, file: &File, path: &Path) -> Result<u64, EventLogError> {
        file.metadata()
            .map(|m| m.len())
            .map_err(|source| EventLogError::Read {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The current file becomes the previous one (the one before that is
    /// dropped); the next open creates a new current file.
    fn rotate(&self, dir: &OwnedFd) -> Result<(), EventLogError> {
        nix::fcntl::renameat(dir, name_of(&self.current), dir, name_of(&self.rotated)).map_err(
            |source| EventLogError::Rotate {
                path: self.current.clone(),
                source,
            },
        )
    }

    fn last_seq_of_rotated(&self, dir: &OwnedFd) -> Option<u64> {
        let file = self.open_existing(dir, &self.rotated).ok()??;
        let size = file.metadata().ok()?.len();
        last_seq(&file, size)
    }

    // ---- reading ----------------------------------------------------------

    /// The events directory and the lock held shared (when there is one);
    /// None when there is no log at all.
    #[allow(clippy::type_complexity)]
    fn open_for_reading(&self) -> Result<Option<(OwnedFd, Option<Flock<File>>)>, EventLogError> {
        let dir = match open_dir_beneath(&self.root, &self.dir, false) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(EventLogError::Open {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let held = self.hold_lock(&dir, false)?;
        Ok(Some((dir, held)))
    }

    /// The file at `path` in the events directory; None when missing.
    fn open_existing(&self, dir: &OwnedFd, path: &Path) -> Result<Option<File>, EventLogError> {
        match open_in(dir, name_of(path), Open::Read, path) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(EventLogError::Open {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn try_read(&self) -> Result<Vec<Event>, EventLogError> {
        // Both files are opened while the lock is held, so no rotation
        // falls between the two opens; they are read after it is let go
        // (a rotation then renames, it does not change what they hold).
        let (older, newer) = {
            let Some((dir, _held)) = self.open_for_reading()? else {
                return Ok(Vec::new());
            };
            (
                self.open_existing(&dir, &self.rotated)?,
                self.open_existing(&dir, &self.current)?,
            )
        };
        let mut events = Vec::new();
        for (file, path) in [(older, &self.rotated), (newer, &self.current)] {
            if let Some(file) = file {
                let bytes = read_tail(&file, MAX_READ).map_err(|source| EventLogError::Read {
                    path: path.clone(),
                    source,
                })?;
                events.extend(parse_lines(&bytes));
            }
        }
        Ok(events)
    }
}

/// The last path component, for an `*at` call in the events directory.
fn name_of(path: &Path) -> &Path {
    path.file_name().map_or(path, Path::new)
}

/// Cuts `text` to [`MAX_FIELD`] bytes at a character boundary.
fn shorten(text: &mut String) {
    if text.len() <= MAX_FIELD {
        return;
    }
    let mut end = MAX_FIELD;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

fn ends_with_newline(file: &File, size: u64) -> bool {
    let mut last = [0u8];
    file.read_exact_at(&mut last, size - 1).is_ok() && last[0] == b'\n'
}

/// The last `max` bytes of `file`, from the start of the first whole line
/// in them.
fn read_tail(file: &File, max: u64) -> io::Result<Vec<u8>> {
    let size = file.metadata()?.len();
    let start = size.saturating_sub(max);
    let mut bytes = vec![0u8; (size - start) as usize];
    let read = read_at_most(file, &mut bytes, start)?;
    bytes.truncate(read);
    if start > 0 {
        // Begun mid-line: that line's rest is not an event.
        let first = bytes
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        bytes.drain(..first);
    }
    Ok(bytes)
}

/// Reads into `buffer` from `offset` until it is full or the file ends.
fn read_at_most(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The events in whole lines of `bytes`; a line that does not parse (torn
/// by a crash, or not an event) is skipped.
fn parse_lines(bytes: &[u8]) -> Vec<Event> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect()
}

/// The sequence number of the last event in the `size` bytes of `file`.
fn last_seq(file: &File, size: u64) -> Option<u64> {
    if size == 0 {
        return None;
    }
    let tail = read_tail(file, SEQ_TAIL).ok()?;
    tail.split(|b| *b == b'\n')
        .rev()
        .filter(|line| !line.is_empty())
        .find_map(|line| serde_json::from_slice::<Event>(line).ok())
        .map(|event| event.seq)
}

/// Reads the events appended to a log after it was made, across
/// rotations: [`Follower::next_batch`] returns each event once, in order.
/// (An event is missed only when the log rotates twice between two
/// batches: more than [`ROTATE_AT`] bytes of events in between.)
#[derive(Debug)]
pub struct Follower {
    log: EventLog,
    followed: Option<Followed>,
}

/// The file a follower reads, and how far.
#[derive(Debug)]
struct Followed {
    file: File,
    identity: (u64, u64),
    offset: u64,
}

impl Followed {
    fn at_end(file: File) -> io::Result<Followed> {
        let metadata = file.metadata()?;
        Ok(Followed {
            identity: (metadata.dev(), metadata.ino()),
            offset: metadata.len(),
            file,
        })
    }

    fn at_start(file: File) -> io::Result<Followed> {
        let mut followed = Followed::at_end(file)?;
        followed.offset = 0;
        Ok(followed)
    }

    /// Parses the whole lines appended since the last read (at most
    /// [`MAX_BATCH`] bytes) into `events`; true when it read to the end (a
    /// line still being written is left for the next read).
    fn read_new(&mut self, events: &mut Vec<Event>) -> bool {
        let Ok(size) = self.file.metadata().map(|m| m.len()) else {
            return true;
        };
        if size <= self.offset {
            return true;
        }
        let start = self.offset;
        let want = (size - start).min(MAX_BATCH);
        let mut bytes = vec![0u8; want as usize];
        let Ok(read) = read_at_most(&self.file, &mut bytes, start) else {
            return true;
        };
        bytes.truncate(read);
        match bytes.iter().rposition(|b| *b == b'\n') {
            Some(last) => {
                events.extend(parse_lines(&bytes[..last]));
                self.offset = start + last as u64 + 1;
            }
            // A whole batch with no line end is no line berth wrote.
            None if want == MAX_BATCH => self.offset = start + MAX_BATCH,
            None => {}
        }
        start + read as u64 >= size
    }
}

impl Follower {
    /// The events appended since the last call (since the follower was
    /// made, the first time), oldest first.
    pub fn next_batch(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let Ok(dir) = open_dir_beneath(&self.log.root, &self.log.dir, false) else {
            return events;
        };
        // Looked at before the file is drained: once the current name is
        // another file, the one followed gets no more appends.
        let current = nix::sys::stat::fstatat(
            &dir,
            name_of(&self.log.current),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ok()
        .map(|stat| (stat.st_dev, stat.st_ino));
        if let Some(followed) = self.followed.as_mut() {
            let at_end = followed.read_new(&mut events);
            if !at_end {
                return events;
            }
            if current == Some(followed.identity) {
                return events;
            }
            // Rotated away (or removed): on to the new current file.
            self.followed = None;
        }
        if let Ok(Some(file)) = self.log.open_existing(&dir, &self.log.current) {
            if let Ok(mut followed) = Followed::at_start(file) {
                followed.read_new(&mut events);
                self.followed = Some(followed);
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn layout(dir: &Path) -> Layout {
        Layout::new(&dir.join("root"), &dir.join("state"))
    }

    fn log_in(dir: &Path, rotate_at: u64) -> EventLog {
        let layout = layout(dir);
        std::fs::create_dir_all(&layout.root).unwrap();
        EventLog {
            rotate_at,
            ..EventLog::new(&layout)
        }
    }

    fn created(name: &str) -> Event {
        Event::new(EventKind::Created, "declared, does not exist")
            .about(EventTarget::Container, name)
            .from_source("/srv/manifests")
    }

    fn names(events: &[Event]) -> Vec<String> {
        events.iter().filter_map(|e| e.name.clone()).collect()
    }

    #[test]
    fn appends_are_read_back_in_order_with_rising_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), ROTATE_AT);
        assert!(log.read_since(None).is_empty(), "no log yet");
        for name in ["a", "b", "c"] {
            log.append(&created(name));
        }
        let events = log.read_since(None);
        assert_eq!(names(&events), ["a", "b", "c"]);
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(events[0].source.as_deref(), Some("/srv/manifests"));
        let mode = std::fs::metadata(layout(dir.path()).events_log())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn concurrent_appenders_get_distinct_numbers_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), ROTATE_AT);
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let log = log.clone();
                scope.spawn(move || {
                    for i in 0..25 {
                        log.append(&created(&format!("t{thread}-{i}")));
                    }
                });
            }
        });
        let seqs: Vec<u64> = log.read_since(None).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=100).collect::<Vec<u64>>());
    }

    #[test]
    fn the_json_is_camel_case_with_kebab_case_kinds_and_no_empty_fields() {
        let event = Event::new(EventKind::DriftRepaired, "drift: its process is gone")
            .about(EventTarget::Container, "web")
            .with_exit_code(Some(137))
            .with_generation(7);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["kind"], "drift-repaired");
        assert_eq!(json["target"], "container");
        assert_eq!(json["exitCode"], 137);
        assert_eq!(json["generation"], 7);
        assert!(json.get("unixMs").is_some());
        assert!(json.get("error").is_none() && json.get("source").is_none());
        let unknown: Event =
            serde_json::from_str(r#"{"unixMs":1,"seq":1,"kind":"teleported","reason":"r"}"#)
                .unwrap();
        assert_eq!(unknown.kind, EventKind::Unknown);
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert!("sometimes".parse::<EventKind>().is_err());
    }

    #[test]
    fn since_keeps_the_events_at_or_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), ROTATE_AT);
        for (name, at) in [("old", 1_000), ("edge", 2_000), ("new", 3_000)] {
            let mut event = created(name);
            event.unix_ms = at;
            log.append(&event);
        }
        assert_eq!(names(&log.read_since(Some(2_000))), ["edge", "new"]);
        assert!(log.read_since(Some(3_001)).is_empty());
    }

    #[test]
    fn the_log_rotates_past_its_bound_keeping_two_files_and_counting_on() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), 1_000);
        for i in 0..100 {
            log.append(&created(&format!("c{i}")));
        }
        let paths = layout(dir.path());
        let current = std::fs::metadata(paths.events_log()).unwrap().len();
        let rotated = std::fs::metadata(paths.events_log_rotated()).unwrap().len();
        assert!(current < 1_200 && rotated < 1_200, "{current} {rotated}");
        let files = std::fs::read_dir(paths.events()).unwrap().count();
        assert_eq!(files, 3, "current, rotated and the lock");
        let events = log.read_since(None);
        assert!(events.len() < 20, "bounded: {}", events.len());
        assert_eq!(events.last().unwrap().name.as_deref(), Some("c99"));
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (101 - seqs.len() as u64..=100).collect();
        assert_eq!(seqs, expected, "in order, none lost between the two files");
    }

    #[test]
    fn a_torn_line_is_skipped_and_closed_by_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), ROTATE_AT);
        log.append(&created("before"));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(layout(dir.path()).events_log())
            .unwrap();
        file.write_all(br#"{"unixMs":1,"seq":2,"ki"#).unwrap();
        assert_eq!(names(&log.read_since(None)), ["before"]);
        log.append(&created("after"));
        let events = log.read_since(None);
        assert_eq!(names(&events), ["before", "after"]);
        assert_eq!(events[1].seq, 2, "counted on from the last whole event");
    }

    #[test]
    fn reads_are_bounded_to_the_tail_of_a_grown_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), ROTATE_AT);
        log.append(&created("first"));
        let line = serde_json::to_string(&created("filler")).unwrap() + "\n";
        let filler = line.repeat((MAX_READ as usize / line.len()) + 10);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(layout(dir.path()).events_log())
            .unwrap();
        file.write_all(filler.as_bytes()).unwrap();
        log.append(&created("last"));
        let events = log.read_since(None);
        assert!(!names(&events).contains(&"first".to_string()));
        assert_eq!(events.last().unwrap().name.as_deref(), Some("last"));
        let bytes: usize = events.len() * line.len();
        assert!(bytes as u64 <= MAX_READ + line.len() as u64, "{bytes}");
    }

    #[test]
    fn long_reasons_are_shortened_so_lines_stay_short() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), ROTATE_AT);
        let long = "é".repeat(MAX_FIELD);
        log.append(&created("a").with_error(Some(long.clone())));
        log.append(&Event::new(EventKind::Failed, long));
        let events = log.read_since(None);
        assert!(events[0].error.as_ref().unwrap().len() <= MAX_FIELD + 3);
        assert!(events[1].reason.len() <= MAX_FIELD + 3);
        assert_eq!(events[1].seq, 2);
    }

    /// A link planted in place of the log would send root's appends where
    /// its planter chose: refused, the target untouched, nothing read.
    #[test]
    fn a_link_in_place_of_the_log_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), ROTATE_AT);
        let paths = layout(dir.path());
        std::fs::create_dir_all(paths.events()).unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep\n").unwrap();
        std::os::unix::fs::symlink(&target, paths.events_log()).unwrap();
        assert!(log.try_append(&created("a")).is_err());
        log.append(&created("a"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        assert!(log.read_since(None).is_empty());
        // The same for the directory.
        std::fs::remove_file(paths.events_log()).unwrap();
        std::fs::remove_file(paths.events_lock()).unwrap();
        std::fs::remove_dir(paths.events()).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), paths.events()).unwrap();
        assert!(log.try_append(&created("a")).is_err());
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_follower_sees_each_new_event_once_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), 1_000);
        log.append(&created("history"));
        let mut follower = log.follower();
        assert!(follower.next_batch().is_empty(), "only what comes after");
        let mut seen = Vec::new();
        for i in 0..40 {
            log.append(&created(&format!("c{i}")));
            if i % 3 == 0 {
                seen.extend(follower.next_batch());
            }
        }
        seen.extend(follower.next_batch());
        assert!(follower.next_batch().is_empty());
        let expected: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
        assert_eq!(names(&seen), expected);
        assert!(std::fs::metadata(layout(dir.path()).events_log_rotated()).is_ok());
    }

    #[test]
    fn a_follower_made_before_the_log_exists_reads_it_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), ROTATE_AT);
        let mut follower = log.follower();
        assert!(follower.next_batch().is_empty());
        log.append(&created("a"));
        log.append(&created("b"));
        assert_eq!(names(&follower.next_batch()), ["a", "b"]);
    }

    #[test]
    fn a_follower_leaves_a_half_written_line_for_its_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), ROTATE_AT);
        log.append(&created("a"));
        let mut follower = log.follower();
        let line = serde_json::to_string(&created("b")).unwrap();
        let (first, rest) = line.split_at(line.len() / 2);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(layout(dir.path()).events_log())
            .unwrap();
        file.write_all(first.as_bytes()).unwrap();
        assert!(follower.next_batch().is_empty());
        file.write_all(rest.as_bytes()).unwrap();
        file.write_all(b"\n").unwrap();
        assert_eq!(names(&follower.next_batch()), ["b"]);
    }

    #[test]
    fn a_shims_path_names_the_same_log() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        std::fs::create_dir_all(&layout.root).unwrap();
        let shim = EventLog::for_file(&layout.events_log()).unwrap();
        shim.append(&created("a"));
        assert_eq!(names(&EventLog::new(&layout).read_since(None)), ["a"]);
        assert!(EventLog::for_file(Path::new("/somewhere/else.jsonl")).is_none());
    }
}
