//! Documents already known to pass the schema, so that a no-op `apply`
//! (or a daemon pass, or `plan`) over an unchanged tree does not generate,
//! compile and run the JSON schema again for every document.
//!
//! A document is known by the digest of what the schema sees (its JSON)
//! together with the identity of the berth binary that checked it: a new
//! binary may have a new schema, so it starts afresh. Only the schema's
//! verdict is remembered; berth's own rules across the set run every time.
//! The file lives under `--root` (0700, root's), is read without following
//! links and within a bound, and anything in it that is not a digest, or a
//! file written by another binary, is ignored: at worst the schema runs.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::state::atomic::write_atomic_volatile;
use crate::state::hex;

/// The most digests kept: a tree of a few thousand documents, edited for a
/// while. Past it the file starts again from the documents of this run.
const MAX_ENTRIES: usize = 16_384;

/// The largest file read: the entries and the identity line, with room.
const MAX_FILE_BYTES: u64 = (MAX_ENTRIES as u64 + 16) * 66;

#[derive(Debug)]
pub struct KnownValid {
    path: PathBuf,
    identity: String,
    digests: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    known: BTreeSet<String>,
    added: bool,
}

impl KnownValid {
    /// What `path` remembers for this binary (nothing when it is missing,
    /// unreadable, or written by another one).
    pub fn open(path: PathBuf) -> Self {
        let identity = binary_identity();
        let known = read_digests(&path, &identity).unwrap_or_default();
        KnownValid {
            path,
            identity,
            digests: Mutex::new(Remembered {
                known,
                added: false,
            }),
        }
    }

    /// The key of a document: this binary's identity and the document.
    pub fn key(&self, document: &serde_json::Value) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.identity.as_bytes());
        hasher.update(b"\n");
        hasher.update(document.to_string().as_bytes());
        hex::encode(&hasher.finalize())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.remembered().known.contains(key)
    }

    pub fn insert(&self, key: String) {
        let mut remembered = self.remembered();
        if remembered.known.len() >= MAX_ENTRIES {
            remembered.known.clear();
        }
        remembered.added |= remembered.known.insert(key);
    }

    /// Writes what was learnt (nothing when nothing was), under a new name
    /// renamed over the old: a reader never sees half of it.
    pub fn save(&self) -> std::io::Result<()> {
        let mut remembered = self.remembered();
        if !remembered.added {
            return Ok(());
        }
        let mut text = format!("{}\n", self.identity);
        for digest in &remembered.known {
            text.push_str(digest);
            text.push('\n');
        }
        if let Some(dir) = self.path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        write_atomic_volatile(&self.path, text.as_bytes())?;
        remembered.added = false;
        Ok(())
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.digests.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// This binary, as the file it runs from: its version, device, inode, size
/// and modification time (a rebuilt or upgraded berth differs).
fn binary_identity() -> String {
    let version = env!("CARGO_PKG_VERSION");
    match std::fs::metadata("/proc/self/exe") {
        Ok(m) => format!(
            "berth {version} {}:{}:{}:{}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        ),
        // Unknown: a key no file matches, so nothing is trusted.
        Err(_) => format!("berth {version} unknown {}", std::process::id()),
    }
}

/// The digests in `path` if its first line is `identity`; links are not
/// followed and at most [`MAX_FILE_BYTES`] are read.
fn read_digests(path: &Path, identity: &str) -> Option<BTreeSet<String>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES).read_to_string(&mut text).ok()?;
    let mut lines = text.lines();
    if lines.next()? != identity {
        return None;
    }
    Some(
        lines
            .filter(|line| line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_checked_once_is_known_to_the_next_run_of_the_same_binary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/known-valid");
        let first = KnownValid::open(path.clone());
        let key = first.key(&json!({"kind": "Volume", "metadata": {"name": "v"}}));
        assert!(!first.contains(&key));
        first.insert(key.clone());
        first.save().unwrap();

        let second = KnownValid::open(path);
        assert!(second.contains(&key));
        let other = second.key(&json!({"kind": "Volume", "metadata": {"name": "w"}}));
        assert!(!second.contains(&other), "another document is not known");
    }

    #[test]
    fn a_file_of_another_binary_or_with_garbage_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known-valid");
        let key = KnownValid::open(path.clone()).key(&json!({}));
        std::fs::write(&path, format!("berth 0.0.0 another\n{key}\n")).unwrap();
        assert!(!KnownValid::open(path.clone()).contains(&key));

        let identity = binary_identity();
        std::fs::write(&path, format!("{identity}\nnot-a-digest\n{key}\n")).unwrap();
        let known = KnownValid::open(path);
        assert!(known.contains(&key));
        assert!(!known.contains("not-a-digest"));
    }

    #[test]
    fn a_link_in_its_place_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let path = dir.path().join("known-valid");
        let key = KnownValid::open(path.clone()).key(&json!({}));
        std::fs::write(&target, format!("{}\n{key}\n", binary_identity())).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(!KnownValid::open(path).contains(&key));
    }

    #[test]
    fn nothing_learnt_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known-valid");
        KnownValid::open(path.clone()).save().unwrap();
        assert!(!path.exists());
    }
}
