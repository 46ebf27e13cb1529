//! berth's on-disk state: where it lives and how it is laid out.

pub mod atomic;
pub mod clock;
pub mod labels;
pub mod lock;

use std::path::{Path, PathBuf};

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

impl Paths {
    /// The cgroup of container `id`. cgroups are host-wide while container
    /// names are unique per state root only, so an instance with its own
    /// state root (tests, a second berth) names its containers' cgroups
    /// `/berth-<hash of the state path>-<id>`: one level, which runc removes
    /// with the container, so nothing is left behind. The default instance
    /// keeps `/berth/<id>`.
    pub fn cgroup_path(&self, id: &str) -> String {
        if self.state == Path::new(DEFAULT_STATE) {
            return format!("/berth/{id}");
        }
        use sha2::{Digest as _, Sha256};
        let digest = Sha256::digest(self.state.as_os_str().as_encoded_bytes());
        let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("/berth-{short}-{id}")
    }
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

#[cfg(test)]
mod cgroup_tests {
    use super::*;

    #[test]
    fn instances_with_their_own_state_get_their_own_cgroups() {
        assert_eq!(Paths::default().cgroup_path("web"), "/berth/web");
        let one = Paths {
            root: "/tmp/a/root".into(),
            state: "/tmp/a/state".into(),
        };
        let two = Paths {
            root: "/tmp/b/root".into(),
            state: "/tmp/b/state".into(),
        };
        assert_ne!(one.cgroup_path("web"), two.cgroup_path("web"));
        assert_eq!(one.cgroup_path("web"), one.cgroup_path("web"));
        assert!(one.cgroup_path("web").starts_with("/berth-"));
        assert_eq!(one.cgroup_path("web").matches('/').count(), 1);
    }
}
