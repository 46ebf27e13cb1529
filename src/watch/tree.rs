//! Watching a manifest tree the ways real trees change: files edited in
//! place or replaced by an editor's rename, `git checkout` and `git pull`
//! (many events, one debounce), a `..data` link swapped inside the tree
//! (mounted config maps), and the tree itself replaced: git-sync swaps a
//! link `DIR -> rev-XXXX` atomically, a directory is removed and made
//! again. The parent of DIR is watched too, so such a swap is seen and the
//! recursive watch moves to the new target.

use std::path::{Component, Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// Called with the paths of each file event (none: events were lost,
/// read everything again).
pub type OnEvent = Box<dyn Fn(Vec<PathBuf>) + Send + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("{}: berth watches a directory in an existing parent directory", .0.display())]
    NoParent(PathBuf),
}

/// Whether an event may mean new content: not an open, a read or a close
/// after reading (berth's own reading of the tree would wake it again);
/// a close after writing is the end of an edit in place.
pub fn changes_something(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        notify::EventKind::Access(_) => false,
        _ => true,
    }
}

pub struct TreeWatch {
    /// The directory as given (absolute): a link that may be swapped.
    dir: PathBuf,
    watcher: RecommendedWatcher,
    /// Where `dir` led when last looked at, watched recursively.
    target: Option<PathBuf>,
}

impl TreeWatch {
    pub fn start(dir: &Path, on_event: OnEvent) -> Result<Self, WatchError> {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let parent = dir
            .parent()
            .filter(|parent| parent.is_dir())
            .ok_or_else(|| WatchError::NoParent(dir.clone()))?
            .to_path_buf();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) if event.need_rescan() => on_event(Vec::new()),
                Ok(event) if !changes_something(&event.kind) => {}
                Ok(event) => on_event(event.paths),
                Err(error) => {
                    tracing::warn!(%error, "file watch error; reading the tree again");
                    on_event(Vec::new());
                }
            })
            .map_err(|source| WatchError::Watch {
                path: dir.clone(),
                source,
            })?;
        watcher
            .watch(&parent, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Watch {
                path: parent.clone(),
                source,
            })?;
        let mut watch = TreeWatch {
            dir,
            watcher,
            target: None,
        };
        watch.rearm();
        Ok(watch)
    }

    /// Looks where the directory leads now and moves the recursive watch
    /// there when it changed (a swapped link, a directory made again).
    /// Returns whether it moved.
    pub fn rearm(&mut self) -> bool {
        let now = std::fs::canonicalize(&self.dir)
            .ok()
            .filter(|path| path.is_dir());
        if now == self.target {
            return false;
        }
        if let Some(old) = self.target.take() {
            // Gone with its directory, as often as not.
            let _ = self.watcher.unwatch(&old);
        }
        if let Some(new) = &now {
            if let Err(error) = self.watcher.watch(new, RecursiveMode::Recursive) {
                tracing::warn!(path = %new.display(), %error, "cannot watch the manifest tree; the resync timer still reads it");
                return true;
            }
            tracing::info!(dir = %self.dir.display(), target = %new.display(), "watching");
        }
        self.target = now;
        true
    }

    /// Whether an event at `path` may change the manifest set: the
    /// directory itself (swapped, removed) or anything in the tree but
    /// git's own files.
    pub fn is_relevant(&self, path: &Path) -> bool {
        if path == self.dir {
            return true;
        }
        let Some(inside) = self
            .target
            .as_ref()
            .and_then(|target| path.strip_prefix(target).ok())
        else {
            return false;
        };
        !inside
            .components()
            .any(|part| part == Component::Normal(".git".as_ref()))
    }

    /// Whether any of one event's paths matter; an event without paths
    /// means events were lost.
    pub fn any_relevant(&self, paths: &[PathBuf]) -> bool {
        paths.is_empty() || paths.iter().any(|path| self.is_relevant(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Waits for an event the watch finds relevant; drains the rest.
    fn saw_relevant(watch: &TreeWatch, events: &mpsc::Receiver<Vec<PathBuf>>) -> bool {
        let mut seen = false;
        while let Ok(paths) = events.recv_timeout(Duration::from_secs(if seen { 0 } else { 10 })) {
            seen |= watch.any_relevant(&paths);
            if seen {
                break;
            }
        }
        while events.try_recv().is_ok() {}
        seen
    }

    fn watch(dir: &Path) -> (TreeWatch, mpsc::Receiver<Vec<PathBuf>>) {
        let (send, events) = mpsc::channel();
        let watch = TreeWatch::start(
            dir,
            Box::new(move |paths| {
                let _ = send.send(paths);
            }),
        )
        .unwrap();
        (watch, events)
    }

    #[test]
    fn edits_renames_and_a_swapped_link_are_seen_and_git_is_not() {
        let top = tempfile::tempdir().unwrap();
        let rev1 = top.path().join("rev-1");
        let rev2 = top.path().join("rev-2");
        std::fs::create_dir_all(rev1.join(".git")).unwrap();
        std::fs::create_dir_all(&rev2).unwrap();
        let link = top.path().join("current");
        std::os::unix::fs::symlink(&rev1, &link).unwrap();
        let (mut watch, events) = watch(&link);

        std::fs::write(rev1.join("web.yaml"), "a: 1").unwrap();
        assert!(saw_relevant(&watch, &events), "a new file");
        let rev1_real = std::fs::canonicalize(&rev1).unwrap();
        assert!(
            !watch.is_relevant(&rev1_real.join(".git/index")),
            "git's own files"
        );
        assert!(!watch.is_relevant(&top.path().join("rev-3")), "a sibling");
        std::fs::write(rev1.join(".web.yaml.tmp"), "a: 2").unwrap();
        std::fs::rename(rev1.join(".web.yaml.tmp"), rev1.join("web.yaml")).unwrap();
        assert!(saw_relevant(&watch, &events), "an editor's rename");

        // git-sync: a new link renamed over the old one.
        std::os::unix::fs::symlink(&rev2, top.path().join("tmp-link")).unwrap();
        std::fs::rename(top.path().join("tmp-link"), &link).unwrap();
        assert!(saw_relevant(&watch, &events), "the swap");
        assert!(watch.rearm(), "the watch moves to the new target");
        assert!(!watch.rearm());
        std::fs::write(rev2.join("db.yaml"), "a: 1").unwrap();
        assert!(saw_relevant(&watch, &events), "a file in the new target");
    }
}
