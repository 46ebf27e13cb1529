//! The shims' status files as a notification: a shim rewrites its
//! `status.json` (by rename) when its container starts, exits, restarts or
//! changes health, so watching each container directory (never into the
//! bundle's rootfs) wakes the daemon at once without reading every record.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::tree::{changes_something, OnEvent, WatchError};

const STATUS_FILE: &str = "status.json";

pub struct ShimWatch {
    /// The layout's container directories.
    root: PathBuf,
    watcher: RecommendedWatcher,
    /// Each watched directory and its inode: a container replaced under
    /// the same name has a new directory at the same path.
    watched: BTreeMap<PathBuf, u64>,
}

impl ShimWatch {
    pub fn start(root: &Path, on_event: OnEvent) -> Result<Self, WatchError> {
        let watch_error = |source| WatchError::Watch {
            path: root.to_path_buf(),
            source,
        };
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Some(event) = event.ok().filter(|e| changes_something(&e.kind)) {
                    on_event(event.paths);
                }
            })
            .map_err(watch_error)?;
        watcher
            .watch(root, RecursiveMode::NonRecursive)
            .map_err(watch_error)?;
        let mut watch = ShimWatch {
            root: root.to_path_buf(),
            watcher,
            watched: BTreeMap::new(),
        };
        let _ = watch.refresh();
        Ok(watch)
    }

    /// Watches the container directories made since the last look.
    /// Returns them: a status they hold may have been written before the
    /// watch, so the caller looks at them once.
    pub fn refresh(&mut self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let now: BTreeMap<PathBuf, u64> = entries
            .flatten()
            .filter_map(|entry| {
                let metadata = entry.metadata().ok().filter(|m| m.is_dir())?;
                Some((entry.path(), metadata.ino()))
            })
            .collect();
        let mut added = Vec::new();
        for (dir, inode) in &now {
            if self.watched.get(dir) == Some(inode) {
                continue;
            }
            added.push(dir.clone());
            if let Err(error) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::debug!(dir = %dir.display(), %error, "cannot watch a container directory");
            }
        }
        // The kernel drops the watch of a removed directory by itself.
        self.watched = now;
        added
    }

    /// A status rewritten, or a container directory made or removed.
    pub fn is_relevant(&self, path: &Path) -> bool {
        path.file_name().is_some_and(|name| name == STATUS_FILE)
            || path.parent() == Some(&self.root)
    }
}
