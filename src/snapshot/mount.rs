//! Performing mounts that a snapshotter describes as data.
//!
//! A [`Snapshotter`](super::Snapshotter) decides *what* to mount (a list of
//! [`Mount`]s); a [`Mounter`] does it. [`SystemMounter`] makes the syscalls
//! (root); [`RecordingMounter`] only records, so tests can check what would be
//! mounted, and make a mount fail, without root.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{Mount, SnapshotError};

/// Mounts and unmounts [`Mount`]s.
///
/// Contract: `mount` mounts one `Mount` on `target`, an existing directory,
/// on top of whatever is mounted there. `unmount` removes the topmost mount
/// at `target`; a target with nothing mounted (or no target at all) is not an
/// error, so callers may unmount before mounting and clean up twice.
pub trait Mounter: Send + Sync {
    fn mount(&self, mount: &Mount, target: &Path) -> Result<(), SnapshotError>;
    fn unmount(&self, target: &Path) -> Result<(), SnapshotError>;
}

/// `mount(2)` and `umount2(2)`: the real thing, as root.
///
/// Options that `mount(8)` turns into flags (`nodev`, `nosuid`, `noexec`,
/// `ro`) become mount flags; the rest is the filesystem's data string. An
/// overlay `volatile` option that the kernel refuses (before 5.10) is
/// dropped and the mount retried: a synced mount is merely slower.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemMounter;

/// Splits `options` into mount flags and the filesystem's options.
fn flags_and_data(options: &[String]) -> (MsFlags, Vec<&str>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        match option.as_str() {
            "nodev" => flags |= MsFlags::MS_NODEV,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "ro" => flags |= MsFlags::MS_RDONLY,
            other => data.push(other),
        }
    }
    (flags, data)
}

impl Mounter for SystemMounter {
    fn mount(&self, m: &Mount, target: &Path) -> Result<(), SnapshotError> {
        let (flags, data) = flags_and_data(&m.options);
        let mount_with = |data: &[&str]| {
            mount(
                Some(m.source.as_str()),
                target,
                Some(m.kind.as_str()),
                flags,
                Some(data.join(",").as_str()),
            )
        };
        let mut result = mount_with(&data);
        if result == Err(nix::Error::EINVAL) && data.contains(&"volatile") {
            let synced: Vec<&str> = data.iter().copied().filter(|o| *o != "volatile").collect();
            result = mount_with(&synced);
        }
        result.map_err(|source| SnapshotError::Sys {
            op: "mount overlay at",
            path: target.to_path_buf(),
            source,
        })
    }

    fn unmount(&self, target: &Path) -> Result<(), SnapshotError> {
        let failed = |source| SnapshotError::Sys {
            op: "unmount",
            path: target.to_path_buf(),
            source,
        };
        match umount2(target, MntFlags::empty()) {
            Ok(()) => Ok(()),
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()), // not mounted
            Err(nix::Error::EBUSY) => umount2(target, MntFlags::MNT_DETACH).map_err(failed),
            Err(source) => Err(failed(source)),
        }
    }
}

/// One call a [`RecordingMounter`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountCall {
    Mount { mount: Mount, target: PathBuf },
    Unmount { target: PathBuf },
}

#[derive(Debug, Default)]
struct Recording {
    calls: Vec<MountCall>,
    /// What is "mounted" now, in mount order.
    active: Vec<(PathBuf, Mount)>,
    /// Errors for the next `mount` calls, first one first.
    failures: Vec<nix::Error>,
}

/// A [`Mounter`] for tests: records every call and what would be mounted
/// where, touches nothing, and fails the next mounts on request. Clones
/// share one record, so a test keeps a clone of the mounter it hands over.
#[derive(Debug, Clone, Default)]
pub struct RecordingMounter {
    recording: Arc<Mutex<Recording>>,
}

impl RecordingMounter {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Recording> {
        // A test that panicked while holding the lock poisons it; the record
        // is still what it was.
        self.recording
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<MountCall> {
        self.lock().calls.clone()
    }

    /// The mounts active at `target`, bottom first (empty when none).
    pub fn mounted_at(&self, target: &Path) -> Vec<Mount> {
        self.lock()
            .active
            .iter()
            .filter(|(at, _)| at == target)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Makes the next `mount` fail with `error` (after earlier queued ones).
    pub fn fail_next_mount(&self, error: nix::Error) {
        self.lock().failures.push(error);
    }
}

impl Mounter for RecordingMounter {
    fn mount(&self, mount: &Mount, target: &Path) -> Result<(), SnapshotError> {
        let mut recording = self.lock();
        recording.calls.push(MountCall::Mount {
            mount: mount.clone(),
            target: target.to_path_buf(),
        });
        if !recording.failures.is_empty() {
            let source = recording.failures.remove(0);
            return Err(SnapshotError::Sys {
                op: "mount overlay at",
                path: target.to_path_buf(),
                source,
            });
        }
        recording.active.push((target.to_path_buf(), mount.clone()));
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), SnapshotError> {
        let mut recording = self.lock();
        recording.calls.push(MountCall::Unmount {
            target: target.to_path_buf(),
        });
        if let Some(top) = recording.active.iter().rposition(|(at, _)| at == target) {
            recording.active.remove(top);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_options_become_mount_flags_and_the_rest_is_data() {
        let options: Vec<String> = ["lowerdir=/a:/b", "nodev", "volatile", "ro"]
            .map(String::from)
            .to_vec();
        let (flags, data) = flags_and_data(&options);
        assert_eq!(flags, MsFlags::MS_NODEV | MsFlags::MS_RDONLY);
        assert_eq!(data, ["lowerdir=/a:/b", "volatile"]);
    }

    #[test]
    fn recording_mounter_unmounts_the_topmost_mount_and_fails_on_request() {
        let mounter = RecordingMounter::new();
        let target = Path::new("/t");
        let m = |source: &str| Mount {
            kind: "overlay".into(),
            source: source.into(),
            options: vec![],
        };
        mounter.mount(&m("a"), target).expect("mount a");
        mounter.mount(&m("b"), target).expect("mount b");
        mounter.unmount(target).expect("unmount");
        assert_eq!(mounter.mounted_at(target), [m("a")]);
        mounter.unmount(target).expect("unmount");
        mounter.unmount(target).expect("nothing mounted is fine");
        assert!(mounter.mounted_at(target).is_empty());

        mounter.fail_next_mount(nix::Error::EPERM);
        let err = mounter.mount(&m("c"), target).expect_err("injected");
        assert!(matches!(
            err,
            SnapshotError::Sys {
                source: nix::Error::EPERM,
                ..
            }
        ));
        assert!(mounter.mounted_at(target).is_empty());
        assert_eq!(mounter.calls().len(), 6);
    }
}
