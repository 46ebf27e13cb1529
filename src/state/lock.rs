//! Advisory locks on berth's directories, so that two berth processes never
//! interleave changes (an import and a garbage collection, two reconcilers).
//!
//! A flock belongs to the open file, not to the process: a child that
//! inherits the descriptor ([`share_with_child`]) holds the lock too, until
//! the last process holding the descriptor has closed it or exited.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lock file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: nix::Error },
    #[error("{path} is locked by another berth process{}", holder_hint(.path))]
    Busy { path: PathBuf },
}

fn holder_hint(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .map(|pid| pid.trim().to_string())
        .filter(|pid| !pid.is_empty())
        .map(|pid| format!(" (pid {pid})"))
        .unwrap_or_default()
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _flock: Flock<File>,
}

/// An exclusive lock taken to be passed on to a child process (with
/// [`share_with_child`]) that goes on holding it after this process lets
/// go or dies. Dropping it closes this process's descriptor without
/// unlocking: an unlock through any descriptor of the shared open file
/// (which is what a [`Lock`] does when dropped) would release the child's
/// hold too.
#[derive(Debug)]
pub struct HandOff {
    file: File,
}

impl AsRawFd for HandOff {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// Takes the exclusive lock at `path` to hand it to a child; fails with
/// [`LockError::Busy`] instead of waiting.
pub fn acquire_for_child(path: &Path) -> Result<HandOff, LockError> {
    let file = open(path)?;
    // Not nix's Flock: it unlocks on drop (see HandOff).
    #[allow(deprecated)]
    match nix::fcntl::flock(file.as_raw_fd(), FlockArg::LockExclusiveNonblock) {
        Ok(()) => Ok(HandOff { file }),
        Err(nix::Error::EWOULDBLOCK) => Err(LockError::Busy {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(LockError::Lock {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Opens (creating it and its directory) the lock file at `path`.
fn open(path: &Path) -> Result<File, LockError> {
    let error = |source| LockError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(error)?;
        // A link in the directory's place would choose where root creates
        // the lock file: refused, like every link under berth's dirs.
        if !std::fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir()) {
            return Err(error(super::nofollow::planted_link(parent)));
        }
    }
    // 0600 and never through a planted link: a lock another user could
    // open is a lock another user could hold.
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(error)
}

/// The process `command` spawns inherits `fd`: close-on-exec is cleared in
/// the child only, between fork and exec (clearing it here would leak the
/// descriptor to every process spawned meanwhile). Given a held lock, the
/// child holds it too, and keeps holding it if this process dies.
#[allow(unsafe_code)]
pub fn share_with_child(command: &mut Command, fd: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // calls fcntl, which is async-signal-safe, on a descriptor the child
    // inherited; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Many holders at once (imports, unpacks).
    Shared,
    /// One holder, no shared holders (garbage collection, reconcile).
    Exclusive,
}

/// Takes the lock at `path`, waiting for it when `wait` is true and failing
/// with [`LockError::Busy`] otherwise.
pub fn acquire(path: &Path, mode: Mode, wait: bool) -> Result<Lock, LockError> {
    let file = open(path)?;
    let arg = match (mode, wait) {
        (Mode::Shared, true) => FlockArg::LockShared,
        (Mode::Shared, false) => FlockArg::LockSharedNonblock,
        (Mode::Exclusive, true) => FlockArg::LockExclusive,
        (Mode::Exclusive, false) => FlockArg::LockExclusiveNonblock,
    };
    match Flock::lock(file, arg) {
        Ok(flock) => Ok(Lock { _flock: flock }),
        Err((_, nix::Error::EWOULDBLOCK)) => Err(LockError::Busy {
            path: path.to_path_buf(),
        }),
        Err((_, source)) => Err(LockError::Lock {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_shared_and_shared_share() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = acquire(&path, Mode::Shared, false).unwrap();
        let second = acquire(&path, Mode::Shared, false).unwrap();
        assert!(matches!(
            acquire(&path, Mode::Exclusive, false),
            Err(LockError::Busy { .. })
        ));
        drop((first, second));
        let exclusive = acquire(&path, Mode::Exclusive, false).unwrap();
        assert!(matches!(
            acquire(&path, Mode::Shared, false),
            Err(LockError::Busy { .. })
        ));
        drop(exclusive);
    }

    #[test]
    fn a_child_given_a_handed_off_lock_holds_it_after_we_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let lock = acquire_for_child(&path).unwrap();
        assert!(matches!(
            acquire_for_child(&path),
            Err(LockError::Busy { .. })
        ));
        let mut command = Command::new("sleep");
        command.arg("10");
        share_with_child(&mut command, lock.as_raw_fd());
        let mut child = command.spawn().unwrap();
        drop(lock);
        assert!(matches!(
            acquire(&path, Mode::Exclusive, false),
            Err(LockError::Busy { .. })
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        acquire(&path, Mode::Exclusive, false).unwrap();
    }
}
