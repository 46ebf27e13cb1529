//! One typed JSON record store for every kind of record berth keeps
//! (containers, images, networks): one file per record, `<dir>/<key>.json`,
//! written atomically (temp file, fsync, rename, fsync the directory) with
//! mode 0600. A reader sees the old record or the new, never a torn one.
//!
//! Records are berth's own files but are read as untrusted input: a read is
//! bounded in size, and a record that is a symlink is refused (`O_NOFOLLOW`)
//! and reported with its path, never followed. A record that does not
//! parse is quarantined ([`super::quarantine`]): moved aside to
//! `<key>.json.corrupt-<unix-secs>`, named in a warning, and read as none.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::marker::PhantomData;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::atomic::{remove_stale_temps, write_atomic_volatile, write_json_atomic};
use super::quarantine::{now_unix_secs, quarantine, FileIdentity, Quarantine};

/// No record berth writes comes near this; a larger file is not one of them.
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{op} {kind} record {path}: {source}")]
    Io {
        op: &'static str,
        kind: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{kind} record {path} is corrupt: {reason}")]
    Corrupt {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{kind} record {path} is corrupt ({reason}) and cannot be moved aside: {source}")]
    Quarantine {
        kind: &'static str,
        path: PathBuf,
        reason: String,
        source: io::Error,
    },
}

/// What one read of a record found.
enum Found<T> {
    Parsed(T),
    Missing,
    /// It does not parse: `reason` says why; `identity` is the file read.
    Corrupt {
        reason: String,
        identity: FileIdentity,
    },
}

/// Records of one kind, in one directory.
#[derive(Debug, Clone)]
pub struct RecordStore<T> {
    dir: PathBuf,
    kind: &'static str,
    _records: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> RecordStore<T> {
    /// A store of `kind` records (the word used in messages) in `dir`,
    /// which is created on the first write.
    pub fn new(dir: PathBuf, kind: &'static str) -> Self {
        RecordStore {
            dir,
            kind,
            _records: PhantomData,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the record `key` (keys are validated by their owners:
    /// container ids, network names, digests).
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn io(&self, op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RecordError + '_ {
        let path = path.to_path_buf();
        move |source| RecordError::Io {
            op,
            kind: self.kind,
            path,
            source,
        }
    }

    /// Writes the record `key`, replacing what was there.
    pub fn put(&self, key: &str, record: &T) -> Result<(), RecordError> {
        create_private_dir(&self.dir).map_err(self.io("create", &self.dir))?;
        // A put killed before its rename left a temp file.
        remove_stale_temps(&self.dir);
        let path = self.path(key);
        write_json_atomic(&path, record).map_err(self.io("write", &path))
    }

    /// [`RecordStore::put`] without fsync: for a record that need not
    /// survive a power loss (a `run --rm` container's).
    pub fn put_volatile(&self, key: &str, record: &T) -> Result<(), RecordError> {
        create_private_dir(&self.dir).map_err(self.io("create", &self.dir))?;
        remove_stale_temps(&self.dir);
        let path = self.path(key);
        let mut bytes = serde_json::to_vec_pretty(record)
            .map_err(io::Error::other)
            .map_err(self.io("encode", &path))?;
        bytes.push(b'\n');
        write_atomic_volatile(&path, &bytes).map_err(self.io("write", &path))
    }

    /// The record `key`, or None when there is none. A record that does
    /// not parse is quarantined (see [`super::quarantine`]): moved aside,
    /// named in a warning, and read as none, so that it costs its own
    /// object only. A symbolic link is an error, never followed.
    pub fn get(&self, key: &str) -> Result<Option<T>, RecordError> {
        // A writer may replace the corrupt record while it is moved aside:
        // then the new one is read.
        for _ in 0..3 {
            match self.read(key)? {
                Found::Parsed(record) => return Ok(Some(record)),
                Found::Missing => return Ok(None),
                Found::Corrupt { reason, identity } => {
                    if self.quarantine(key, &reason, identity)? {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(None)
    }

    fn read(&self, key: &str) -> Result<Found<T>, RecordError> {
        let path = self.path(key);
        let (bytes, identity) = match read_bounded_identified(&path) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(RecordError::Corrupt {
                    kind: self.kind,
                    path,
                    reason: "it is a symbolic link, which berth never follows".into(),
                })
            }
            Err(source) => return Err(self.io("read", &path)(source)),
        };
        Ok(match serde_json::from_slice(&bytes) {
            Ok(record) => Found::Parsed(record),
            Err(e) => Found::Corrupt {
                reason: e.to_string(),
                identity,
            },
        })
    }

    /// Moves the corrupt record `key` aside and says so; false when a
    /// writer replaced it meanwhile (nothing moved: read it again).
    fn quarantine(
        &self,
        key: &str,
        reason: &str,
        identity: FileIdentity,
    ) -> Result<bool, RecordError> {
        let path = self.path(key);
        match quarantine(&path, identity, now_unix_secs()) {
            Ok(Quarantine::Moved(to)) => {
                tracing::warn!(
                    "{kind} record {path} is corrupt ({reason}); moved it aside to {to}; \
                     berth treats {kind} {key} as unknown",
                    kind = self.kind,
                    path = path.display(),
                    to = to.display(),
                );
                Ok(true)
            }
            Ok(Quarantine::Gone) => Ok(true),
            Ok(Quarantine::Replaced) => Ok(false),
            Err(source) => Err(RecordError::Quarantine {
                kind: self.kind,
                path,
                reason: reason.to_string(),
                source,
            }),
        }
    }

    /// The keys of every record, sorted (temp files and dot-files are not
    /// records). A missing directory holds none.
    pub fn keys(&self) -> Result<Vec<String>, RecordError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io("list", &self.dir)(source)),
        };
        let mut temps = false;
        let mut keys: Vec<String> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                temps |= name.starts_with('.') && name.contains(".tmp-");
                name.strip_suffix(".json")
                    .filter(|key| !key.starts_with('.'))
                    .map(str::to_string)
            })
            .collect();
        if temps {
            // A write killed before its rename: an apply that finds nothing
            // to change writes no record, so the listing sweeps them too.
            remove_stale_temps(&self.dir);
        }
        keys.sort();
        Ok(keys)
    }

    /// Every record, in key order; one that cannot be read is an error.
    pub fn list(&self) -> Result<Vec<T>, RecordError> {
        let mut records = Vec::new();
        for key in self.keys()? {
            // Removed between the listing and the read: gone, not an error.
            if let Some(record) = self.get(&key)? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Removes the record `key`; false when there was none.
    pub fn remove(&self, key: &str) -> Result<bool, RecordError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => {
                remove_stale_temps(&self.dir);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(self.io("remove", &path)(source)),
        }
    }
}

/// Reads at most [`MAX_RECORD_BYTES`] of `path`, refusing a symlink in its
/// last component (ELOOP) and anything that is not a regular file.
pub fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    read_bounded_identified(path).map(|(bytes, _)| bytes)
}

/// [`read_bounded`], and which file it read (for [`quarantine`]).
pub fn read_bounded_identified(path: &Path) -> io::Result<(Vec<u8>, FileIdentity)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if metadata.len() > MAX_RECORD_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is {} bytes, over the {MAX_RECORD_BYTES}-byte bound of a record",
                path.display(),
                metadata.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes)?;
    Ok((bytes, FileIdentity::of(&metadata)))
}

/// Reads a regular file a manifest names (links followed: the trust check
/// vetted them), refusing anything else and anything over `limit` bytes
/// with an error that says so.
pub fn read_referenced_file(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file (berth reads only files here)",
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than the {limit}-byte bound on files a manifest names \
                 (raise it with --max-env-file-size)"
            ),
        ));
    }
    Ok(bytes)
}

/// Creates `dir` (and missing parents) with mode 0700: nothing berth keeps
/// is for other local users.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Thing {
        name: String,
        size: u32,
    }

    fn store() -> (tempfile::TempDir, RecordStore<Thing>) {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::new(dir.path().join("things"), "thing");
        (dir, store)
    }

    fn thing(name: &str) -> Thing {
        Thing {
            name: name.into(),
            size: 7,
        }
    }

    #[test]
    fn put_get_list_remove_round_trip() {
        let (_dir, store) = store();
        assert_eq!(store.list().unwrap(), []);
        assert_eq!(store.get("a").unwrap(), None);
        store.put("b", &thing("b")).unwrap();
        store.put("a", &thing("a")).unwrap();
        assert_eq!(store.get("a").unwrap(), Some(thing("a")));
        assert_eq!(store.keys().unwrap(), ["a", "b"]);
        assert_eq!(store.list().unwrap(), [thing("a"), thing("b")]);
        assert!(store.remove("a").unwrap());
        assert!(!store.remove("a").unwrap());
        assert_eq!(store.keys().unwrap(), ["b"]);
    }

    #[test]
    fn records_and_their_directory_are_private() {
        let (_dir, store) = store();
        store.put("a", &thing("a")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.path("a")), 0o600);
    }

    #[test]
    fn a_corrupt_record_is_quarantined_and_the_others_still_list() {
        let (_dir, store) = store();
        store.put("a", &thing("a")).unwrap();
        store.put("b", &thing("b")).unwrap();
        fs::write(store.path("a"), "{ not json").unwrap();
        assert_eq!(store.list().unwrap(), [thing("b")]);
        assert!(!store.path("a").exists());
        let copies = super::super::quarantine::quarantined_copies(&store.path("a"));
        assert_eq!(copies.len(), 1, "{copies:?}");
        assert_eq!(fs::read_to_string(&copies[0]).unwrap(), "{ not json");
        assert_eq!(
            store.keys().unwrap(),
            ["b"],
            "a quarantined copy is no record"
        );
        assert_eq!(store.get("a").unwrap(), None);
        store.put("a", &thing("a")).unwrap();
        assert_eq!(store.get("a").unwrap(), Some(thing("a")));
    }

    #[test]
    fn a_truncated_or_empty_record_is_quarantined_too() {
        let (_dir, store) = store();
        for torn in ["", "{\"name\": \"a\", \"si"] {
            store.put("a", &thing("a")).unwrap();
            fs::write(store.path("a"), torn).unwrap();
            assert_eq!(store.get("a").unwrap(), None);
        }
        let copies = super::super::quarantine::quarantined_copies(&store.path("a"));
        assert_eq!(copies.len(), 2, "{copies:?}");
    }

    #[test]
    fn a_planted_symlink_is_reported_not_followed() {
        let (dir, store) = store();
        store.put("a", &thing("a")).unwrap();
        let elsewhere = dir.path().join("elsewhere.json");
        fs::write(&elsewhere, serde_json::to_vec(&thing("evil")).unwrap()).unwrap();
        fs::remove_file(store.path("a")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, store.path("a")).unwrap();
        let error = store.get("a").unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        assert!(error.contains("a.json"), "{error}");
    }

    #[test]
    fn an_oversized_or_special_file_is_refused_without_reading_it_all() {
        let (_dir, store) = store();
        store.put("a", &thing("a")).unwrap();
        let big = fs::OpenOptions::new()
            .write(true)
            .open(store.path("a"))
            .unwrap();
        big.set_len(MAX_RECORD_BYTES + 1).unwrap();
        assert!(store.get("a").is_err());
        fs::remove_file(store.path("a")).unwrap();
        nix::unistd::mkfifo(&store.path("a"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let error = store.get("a").unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
    }

    #[test]
    fn a_referenced_file_is_bounded_and_regular() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.env");
        fs::write(&file, "A=1\n").unwrap();
        assert_eq!(read_referenced_file(&file, 16).unwrap(), b"A=1\n");
        let error = read_referenced_file(&file, 2).unwrap_err().to_string();
        assert!(error.contains("2-byte bound"), "{error}");
        let error = read_referenced_file(Path::new("/dev/zero"), 16)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");
    }

    #[test]
    fn listing_sweeps_the_temp_files_of_dead_writers_only() {
        let (_dir, store) = store();
        store.put("a", &thing("a")).unwrap();
        let dead = store.dir().join(format!(".a.json.tmp-{}-0", u32::MAX - 1));
        let live = store
            .dir()
            .join(format!(".a.json.tmp-{}-9", std::process::id()));
        fs::write(&dead, "{").unwrap();
        fs::write(&live, "{").unwrap();
        assert_eq!(store.keys().unwrap(), ["a"]);
        assert!(!dead.exists(), "a killed writer's temp file goes");
        assert!(live.exists(), "a write in flight stays");
    }

    #[test]
    fn temp_files_are_not_records() {
        let (_dir, store) = store();
        store.put("a", &thing("a")).unwrap();
        fs::write(store.dir().join(".a.json.tmp-1-0"), "{").unwrap();
        assert_eq!(store.keys().unwrap(), ["a"]);
    }
}
