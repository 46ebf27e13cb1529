//! Advisory locks on berth's directories, so that two berth processes never
//! interleave changes (an import and a garbage collection, two reconcilers).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

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
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })?;
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
}
