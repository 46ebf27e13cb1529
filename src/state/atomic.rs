//! Crash-safe file writes: temp file, fsync, rename, fsync the directory. A
//! reader sees the old content or the new, never a torn file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A name for a temp file next to `path` that no other writer in this or
/// another process picks.
pub fn temp_path_for(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// The writer's pid in a name [`temp_path_for`] made (`.NAME.tmp-PID-N`).
fn temp_writer(file_name: &str) -> Option<u32> {
    let (_, suffix) = file_name.strip_prefix('.')?.rsplit_once(".tmp-")?;
    let (pid, n) = suffix.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Removes the temp files in `dir` whose writer is gone: what a kill
/// between creating a temp file and renaming it left. A live writer's temp
/// file is a write in flight and stays. Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| {
            temp_writer(&entry.file_name().to_string_lossy())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .filter(|entry| fs::remove_file(entry.path()).is_ok())
        .count()
}

/// Mode of what berth writes: its records and generated specs hold secrets
/// (env values) and are nobody else's business.
const PRIVATE: u32 = 0o600;
/// Mode of the few files a container's own user must read through a bind
/// mount (`/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`).
const READABLE: u32 = 0o644;

/// Writes `bytes` to `path` atomically and durably, mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_via_temp(path, bytes, true, PRIVATE)
}

/// Writes `bytes` to `path` atomically but without fsync, mode 0600: for
/// the runtime state directory (tmpfs under /run, cleared by a reboot),
/// where a reader must never see a torn file but durability across power
/// loss is moot.
pub fn write_atomic_volatile(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_via_temp(path, bytes, false, PRIVATE)
}

/// [`write_atomic_volatile`] of a file every user may read (0644): for what
/// a container's user reads through a bind mount, and for files berth writes
/// for people (converted manifests, exported objects), never for its records.
pub fn write_atomic_volatile_readable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_via_temp(path, bytes, false, READABLE)
}

fn write_via_temp(path: &Path, bytes: &[u8], durable: bool, mode: u32) -> io::Result<()> {
    let temp = temp_path_for(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&temp, path)?;
        if durable {
            fsync_parent(path)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Makes a rename or create in `path`'s directory durable.
pub fn fsync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fsync_dir(parent),
        _ => Ok(()),
    }
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_are_those_of_dead_writers() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(format!(".web.json.tmp-{}-0", u32::MAX - 1));
        let live = temp_path_for(&dir.path().join("db.json"));
        for path in [&dead, &live] {
            fs::write(path, "{").unwrap();
        }
        fs::write(dir.path().join(".hidden"), "").unwrap();
        fs::write(dir.path().join("x.tmp-1-0"), "").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(!dead.exists() && live.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
        assert_eq!(remove_stale_temps(&dir.path().join("missing")), 0);
    }
}
