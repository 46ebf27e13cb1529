//! berth's on-disk state: where it lives and how it is laid out.

pub mod atomic;
pub mod lock;

use std::path::PathBuf;

/// Persistent data: content blobs, snapshots, container records, CNI result cache.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
/// Runtime data that a reboot clears: runc root, shim dirs, pinned netns, lock.
pub const DEFAULT_STATE: &str = "/run/berth";

/// The two directories one berth instance owns; tests give each instance its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub root: PathBuf,
    pub state: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            root: PathBuf::from(DEFAULT_ROOT),
            state: PathBuf::from(DEFAULT_STATE),
        }
    }
}

impl Paths {
    /// Held shared by imports and unpacks, exclusively by garbage collection.
    pub fn store_lock(&self) -> PathBuf {
        self.root.join("store.lock")
    }
}
