//! A container's logs: where they live (under `--root`, beside nothing of
//! the runtime directory, so that they survive a reboot and take no
//! memory), and their removal, with the container by `rm` (and so by a
//! replacement in `apply`) or by `gc` once berth no longer knows it.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::{io_err, Engine, EngineError};
use crate::runtime::logs::current_log;
use crate::state::nofollow::create_dir_beneath;

impl Engine {
    /// Container `id`'s log directory.
    pub fn log_dir(&self, id: &str) -> PathBuf {
        self.paths.container_logs(id)
    }

    /// The log file container `id`'s shim writes now.
    pub fn log_file(&self, id: &str) -> PathBuf {
        current_log(&self.log_dir(id))
    }

    /// Creates container `id`'s log directory (0700, no link followed on
    /// the way); returns it.
    pub(super) fn create_log_dir(&self, id: &str) -> Result<PathBuf, EngineError> {
        let dir = self.log_dir(id);
        create_dir_beneath(&self.paths.root, &dir, 0o700).map_err(io_err(id, "create", &dir))?;
        Ok(dir)
    }

    /// Removes container `id`'s logs (nothing when it has none).
    pub(super) fn remove_logs(&self, id: &str) -> Result<(), EngineError> {
        let dir = self.log_dir(id);
        remove_dir_if_present(&dir).map_err(io_err(id, "remove", &dir))
    }

    /// Removes the logs of containers that have no record (left by a crash
    /// between `rm`'s steps, or by a hand); returns how many. A container
    /// gets its record before its log directory, so none being created is
    /// taken for a leftover.
    pub fn sweep_log_leftovers(&self) -> Result<usize, EngineError> {
        let known: Vec<String> = self
            .records()?
            .into_iter()
            .map(|r| r.id.to_string())
            .collect();
        let root = self.paths.container_logs_root();
        let entries = match fs::read_dir(&root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            other => other.map_err(io_err("", "list", &root))?,
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(io_err("", "list", &root))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            if known.contains(&id) {
                continue;
            }
            let path = entry.path();
            remove_dir_if_present(&path).map_err(io_err(&id, "remove", &path))?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// `remove_dir_all`, which removes a link in the directory's place (or
/// inside it) without following it; fine when nothing is there.
fn remove_dir_if_present(path: &std::path::Path) -> io::Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::Logging;
    use crate::runtime::container_dir::LogConfig;

    #[test]
    fn the_default_rotation_is_kubelets() {
        let default = LogConfig::default();
        assert_eq!((default.max_bytes, default.max_files), (10 << 20, 5));
        let set = LogConfig::of(Some(&Logging {
            max_size: Some("64Ki".parse().unwrap()),
            max_files: None,
            ..Logging::default()
        }));
        assert_eq!((set.max_bytes, set.max_files), (64 << 10, 5));
    }
}
