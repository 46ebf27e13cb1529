//! The shims' status files as a notification: a shim rewrites its
//! `status.json` (by rename) when its container starts, exits, restarts or
//! changes health, so watching each container directory (never into the
//! bundle's rootfs) wakes the daemon at once without reading every record.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::tree::{OnEvent, WatchError};

const STATUS_FILE: &str = "status.json";

pub struct ShimWatch {
    /// The layout's container directories.
    root: PathBuf,
    watcher: RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
}

impl ShimWatch {
    pub fn start(root: &Path, on_event: OnEvent) -> Result<Self, WatchError> {
        let watch_error = |source| WatchError::Watch {
            path: root.to_path_buf(),
            source,
        };
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
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
            watched: BTreeSet::new(),
        };
        watch.refresh();
        Ok(watch)
    }

    /// Watches the container directories made since the last look.
    pub fn refresh(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        let now: BTreeSet<PathBuf> = entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| entry.path())
            .collect();
        for dir in now.difference(&self.watched) {
            if let Err(error) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::debug!(dir = %dir.display(), %error, "cannot watch a container directory");
            }
        }
        // The kernel drops the watch of a removed directory by itself.
        self.watched = now;
    }

    /// A status rewritten, or a container directory made or removed.
    pub fn is_relevant(&self, path: &Path) -> bool {
        path.file_name().is_some_and(|name| name == STATUS_FILE) || path.parent() == Some(&self.root)
    }
}
