//! Network namespaces pinned by a bind mount, so they outlive the process
//! (and the thread) that made them.
//!
//! [`create`] runs in a short-lived thread: `unshare(CLONE_NEWNET)` moves that
//! thread alone into a new namespace, `lo` is set up there with an ioctl on a
//! socket that thread opens, then `/proc/thread-self/ns/net` is bind-mounted
//! onto an empty file at the target. The thread ends; the mount keeps the
//! namespace alive. The calling thread never changes namespace.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot prepare netns file {path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error("{path} is already a network namespace")]
    Exists { path: PathBuf },
    #[error("cannot create a network namespace: {0}")]
    Unshare(nix::Error),
    #[error("cannot bring lo up in the new namespace: {0}")]
    Loopback(String),
    #[error("cannot bind-mount the new namespace onto {path}: {source}")]
    Mount { path: PathBuf, source: nix::Error },
    #[error("cannot unmount network namespace {path}: {source}")]
    Unmount { path: PathBuf, source: nix::Error },
    #[error("the netns thread panicked")]
    Thread,
    #[error("process {pid} is in berth's own network namespace, not a container's")]
    OwnNamespace { pid: u32 },
}

/// Pinned network namespaces, the networker's seam to the kernel.
///
/// Lifecycle: [`Namespaces::create`] makes a new namespace (with `lo` up)
/// and pins it at a path; a runtime joins it by that path; after a loss of
/// the pin while the container still runs, [`Namespaces::pin_from_process`]
/// pins its init's namespace again; [`Namespaces::remove`] unpins it (the
/// namespace ends with its last user). Pins live as long as the host runs.
pub trait Namespaces: Send + Sync + std::fmt::Debug {
    fn create(&self, path: &Path) -> Result<(), NetnsError>;
    fn pin_from_process(&self, pid: u32, path: &Path) -> Result<(), NetnsError>;
    fn is_mounted(&self, path: &Path) -> bool;
    /// Unpins `path`; a path that is not pinned is fine.
    fn remove(&self, path: &Path) -> Result<(), NetnsError>;
}

/// The kernel's namespaces: `unshare` and bind mounts, as root.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelNamespaces;

impl Namespaces for KernelNamespaces {
    fn create(&self, path: &Path) -> Result<(), NetnsError> {
        create(path)
    }

    fn pin_from_process(&self, pid: u32, path: &Path) -> Result<(), NetnsError> {
        pin_from_process(pid, path)
    }

    fn is_mounted(&self, path: &Path) -> bool {
        is_mounted(path)
    }

    fn remove(&self, path: &Path) -> Result<(), NetnsError> {
        remove(path)
    }
}

/// Whether `path` is a mounted network namespace (an nsfs file).
pub fn is_mounted(path: &Path) -> bool {
    statfs(path)
        .map(|s| s.filesystem_type() == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Creates a new network namespace with `lo` up, pinned at `path`.
pub fn create(path: &Path) -> Result<(), NetnsError> {
    if is_mounted(path) {
        return Err(NetnsError::Exists {
            path: path.to_path_buf(),
        });
    }
    let file_error = |source| NetnsError::File {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(file_error)?;
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(file_error)?;
    let target = path.to_path_buf();
    let outcome = std::thread::spawn(move || -> Result<(), NetnsError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
        loopback_up()?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| NetnsError::Mount {
            path: target.clone(),
            source,
        })
    })
    .join()
    .unwrap_or(Err(NetnsError::Thread));
    if outcome.is_err() {
        let _ = fs::remove_file(path);
    }
    outcome
}

/// Pins the network namespace that process `pid` lives in at `path`: for a
/// pin removed behind berth's back while the namespace lives on in its
/// container. Refuses berth's own namespace (the host's), which a stale pid
/// could point at.
pub fn pin_from_process(pid: u32, path: &Path) -> Result<(), NetnsError> {
    use std::os::unix::fs::MetadataExt;

    let source = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let theirs = fs::metadata(&source).map_err(|e| NetnsError::File {
        path: source.clone(),
        source: e,
    })?;
    let ours = fs::metadata("/proc/self/ns/net").map_err(|e| NetnsError::File {
        path: "/proc/self/ns/net".into(),
        source: e,
    })?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Err(NetnsError::OwnNamespace { pid });
    }
    if is_mounted(path) {
        return Err(NetnsError::Exists {
            path: path.to_path_buf(),
        });
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| NetnsError::File {
            path: path.to_path_buf(),
            source: e,
        })?;
    mount(
        Some(&source),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| NetnsError::Mount {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Sets `lo` up in the calling thread's network namespace with an ioctl:
/// no `ip` process to spawn on every container start.
fn loopback_up() -> Result<(), NetnsError> {
    super::link::set_up("lo").map_err(|e| NetnsError::Loopback(e.to_string()))
}

/// Unmounts (lazily) and unlinks the namespace at `path`. Idempotent: a
/// missing path or a plain file is fine.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    // A path may carry stacked mounts after a crash in create; unmount all.
    while is_mounted(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(|source| NetnsError::Unmount {
            path: path.to_path_buf(),
            source,
        })?;
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(NetnsError::File {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Namespaces that exist only in a list: for tests of the networker's
/// bookkeeping without root.
#[cfg(test)]
pub mod fake {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use super::{Namespaces, NetnsError};

    #[derive(Debug, Default)]
    pub struct FakeNamespaces {
        pub pinned: Mutex<BTreeSet<PathBuf>>,
    }

    impl FakeNamespaces {
        pub fn pinned(&self) -> Vec<PathBuf> {
            self.pinned.lock().unwrap().iter().cloned().collect()
        }
    }

    impl Namespaces for FakeNamespaces {
        fn create(&self, path: &Path) -> Result<(), NetnsError> {
            if !self.pinned.lock().unwrap().insert(path.to_path_buf()) {
                return Err(NetnsError::Exists {
                    path: path.to_path_buf(),
                });
            }
            Ok(())
        }

        fn pin_from_process(&self, _pid: u32, path: &Path) -> Result<(), NetnsError> {
            self.pinned.lock().unwrap().insert(path.to_path_buf());
            Ok(())
        }

        fn is_mounted(&self, path: &Path) -> bool {
            self.pinned.lock().unwrap().contains(path)
        }

        fn remove(&self, path: &Path) -> Result<(), NetnsError> {
            self.pinned.lock().unwrap().remove(path);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_refuses_berths_own_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c1");
        assert!(matches!(
            pin_from_process(std::process::id(), &path),
            Err(NetnsError::OwnNamespace { .. })
        ));
        assert!(!path.exists());
    }
}
