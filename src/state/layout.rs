//! Where everything berth keeps lives: one [`Layout`] names every directory
//! and file under `--root` and `--state`, so no other module joins path
//! segments onto them. A subsystem is handed its own directory by the
//! layout and names what it keeps inside it in one place.
//!
//! ```text
//! <root>/   (--root, /var/lib/berth: survives a reboot)
//!   content/              blobs by digest, ingests           (image::store)
//!   images/               image records                      (image::record)
//!   snapshots/            unpacked layers, container upper dirs (snapshot)
//!   containers/<id>.json  container records                  (engine::record)
//!   networks/<name>.json  network records                    (network::store)
//!   volumes/<name>/       volume data and record             (engine::volume)
//!   cni/results/          the CNI result cache               (network::cache)
//!   cni/ipam/             host-local reservations            (network)
//!   events/events.jsonl   the events log, one JSON line per event (state::events)
//!   events/events.1.jsonl its previous file, replaced at each rotation
//!   events/events.lock    appends and rotations one at a time
//!   logs/<id>/            container logs, rotated             (runtime::logs)
//!   store.lock            imports (shared) against gc (exclusive)
//! <state>/  (--state, /run/berth: a reboot clears it)
//!   runc/                 the OCI runtime's root
//!   containers/<id>/      the shim's files, bundle            (runtime::container_dir)
//!   netns/<id>            pinned network namespaces, their locks
//!   consoles/<id>.sock    terminal sockets of `berth run -t`
//!   reconcile.lock        one reconciler at a time
//! ```

use std::path::{Path, PathBuf};

/// Persistent data: content blobs, snapshots, container records and logs, CNI result cache.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
/// Runtime data that a reboot clears: runc root, shim dirs, pinned netns, lock.
pub const DEFAULT_STATE: &str = "/run/berth";

/// The two directories one berth instance owns; tests give each instance its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub root: PathBuf,
    pub state: PathBuf,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            root: PathBuf::from(DEFAULT_ROOT),
            state: PathBuf::from(DEFAULT_STATE),
        }
    }
}

impl Layout {
    pub fn new(root: &Path, state: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
            state: state.to_path_buf(),
        }
    }

    /// Creates `--root` and `--state` private to root (0700), and tightens
    /// them when an older berth (or a hand) left them open: nothing under
    /// them is for other local users (unpacked layers keep their setuid
    /// bits, records and specs hold secrets). Refuses a symlink in their
    /// place.
    pub fn make_private(&self) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        for dir in [&self.root, &self.state] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            let metadata = std::fs::symlink_metadata(dir)?;
            if !metadata.is_dir() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} is not a directory (a symbolic link?); berth keeps its state only in a real directory",
                        dir.display()
                    ),
                ));
            }
            if metadata.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        self.refuse_planted_links()
    }

    /// berth's own top-level directories, whose every store lives below.
    fn top_level_dirs(&self) -> Vec<PathBuf> {
        let containers = self.container_dirs();
        vec![
            self.content(),
            self.image_records(),
            self.snapshots(),
            self.container_records(),
            self.job_records(),
            self.network_records(),
            self.volumes(),
            self.root.join("cni"),
            self.cni_results(),
            self.cni_ipam(),
            self.events(),
            self.container_logs_root(),
            self.runc_root(),
            containers,
            self.netns(),
            self.consoles(),
        ]
    }

    /// A symbolic link in place of one of berth's own directories would
    /// send every write of a store where its planter chose: refused on
    /// every start, naming it.
    fn refuse_planted_links(&self) -> std::io::Result<()> {
        for dir in self.top_level_dirs() {
            let base = if dir.starts_with(&self.state) {
                &self.state
            } else {
                &self.root
            };
            super::nofollow::refuse_links_beneath(base, &dir)?;
        }
        Ok(())
    }

    // Under --root.

    /// The content store: blobs by digest and ingests in flight.
    /// Digests of the manifest documents this binary found valid (see
    /// `manifest::known_valid`): a cache, rebuilt when missing.
    pub fn known_valid_documents(&self) -> PathBuf {
        self.root.join("cache").join("known-valid")
    }

    pub fn content(&self) -> PathBuf {
        self.root.join("content")
    }

    pub fn image_records(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Unpacked layers and containers' writable layers.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub fn container_records(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// Jobs: each one's current run, its attempts and its history.
    pub fn job_records(&self) -> PathBuf {
        self.root.join("jobs")
    }

    pub fn network_records(&self) -> PathBuf {
        self.root.join("networks")
    }

    /// Named volumes: `<name>/data` and `<name>/volume.json`.
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// Every CNI ADD's inputs and result, per container.
    pub fn cni_results(&self) -> PathBuf {
        self.root.join("cni/results")
    }

    /// host-local's reservations, per network.
    pub fn cni_ipam(&self) -> PathBuf {
        self.root.join("cni/ipam")
    }

    /// The events log's directory.
    pub fn events(&self) -> PathBuf {
        self.root.join("events")
    }

    /// The events log: what happened to berth's objects, oldest first.
    pub fn events_log(&self) -> PathBuf {
        self.events().join("events.jsonl")
    }

    /// The events log's previous file: the current one becomes it when it
    /// passes its size bound.
    pub fn events_log_rotated(&self) -> PathBuf {
        self.events().join("events.1.jsonl")
    }

    /// Held exclusively by each append and rotation of the events log,
    /// shared by a reader while it opens the log's files.
    pub fn events_lock(&self) -> PathBuf {
        self.events().join("events.lock")
    }

    /// Every container's log directory: on disk, not in the tmpfs of
    /// `--state`, so that logs neither fill memory nor vanish on a reboot.
    pub fn container_logs_root(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Container `id`'s log files (`container.log` and its rotations).
    pub fn container_logs(&self, id: &str) -> PathBuf {
        self.container_logs_root().join(id)
    }

    /// Held shared by imports and unpacks, exclusively by garbage collection.
    pub fn store_lock(&self) -> PathBuf {
        self.root.join("store.lock")
    }

    // Under --state.

    /// Held while a container's `/etc/hosts` and its peers' are written, so
    /// that containers coming up side by side each end up naming all the
    /// others (whoever writes last reads every attachment made before).
    pub fn hosts_lock(&self) -> PathBuf {
        self.state.join("hosts.lock")
    }

    /// The OCI runtime's `--root`.
    pub fn runc_root(&self) -> PathBuf {
        self.state.join("runc")
    }

    /// A container's runtime directory: the shim's files and bundle.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.container_dirs().join(id)
    }

    /// Where the containers' runtime directories are.
    pub fn container_dirs(&self) -> PathBuf {
        self.state.join("containers")
    }

    /// Pinned network namespaces and their locks.
    pub fn netns(&self) -> PathBuf {
        self.state.join("netns")
    }

    /// Terminal sockets of `berth run -t`.
    pub fn consoles(&self) -> PathBuf {
        self.state.join("consoles")
    }

    /// One reconciler per state root.
    pub fn reconcile_lock(&self) -> PathBuf {
        self.state.join("reconcile.lock")
    }

    // The daemon's.

    /// The daemon's last good generation and last status, under `--root`
    /// so that a restarted daemon keeps the generation in force.
    pub fn daemon_dir(&self) -> PathBuf {
        self.root.join("daemon")
    }

    /// The daemon's status and event stream, for the CLI (mode 0600).
    pub fn daemon_socket(&self) -> PathBuf {
        self.state.join("daemon.sock")
    }

    /// One daemon per state root.
    pub fn daemon_lock(&self) -> PathBuf {
        self.state.join("daemon.lock")
    }

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
        let short = super::hex::encode(&digest[..6]);
        format!("/berth-{short}-{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_with_their_own_state_get_their_own_cgroups() {
        assert_eq!(Layout::default().cgroup_path("web"), "/berth/web");
        let one = Layout::new(Path::new("/tmp/a/root"), Path::new("/tmp/a/state"));
        let two = Layout::new(Path::new("/tmp/b/root"), Path::new("/tmp/b/state"));
        assert_ne!(one.cgroup_path("web"), two.cgroup_path("web"));
        assert_eq!(one.cgroup_path("web"), one.cgroup_path("web"));
        assert!(one.cgroup_path("web").starts_with("/berth-"));
        assert_eq!(one.cgroup_path("web").matches('/').count(), 1);
    }

    #[test]
    fn the_roots_are_made_private_and_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(&dir.path().join("root"), &dir.path().join("state"));
        std::fs::create_dir(&layout.root).unwrap();
        std::fs::set_permissions(&layout.root, std::fs::Permissions::from_mode(0o755)).unwrap();
        layout.make_private().unwrap();
        for made in [&layout.root, &layout.state] {
            let mode = std::fs::metadata(made).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", made.display());
        }
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let planted = Layout::new(&dir.path().join("link"), &layout.state);
        std::os::unix::fs::symlink(&elsewhere, &planted.root).unwrap();
        let error = planted.make_private().unwrap_err().to_string();
        assert!(error.contains("not a directory"), "{error}");
    }

    /// Regression: a link in place of one of berth's directories (here the
    /// snapshot store) was followed by every write below it.
    #[test]
    fn a_link_in_place_of_a_store_directory_is_refused_on_start() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(&dir.path().join("root"), &dir.path().join("state"));
        layout.make_private().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), layout.snapshots()).unwrap();
        let error = layout.make_private().unwrap_err().to_string();
        assert!(
            error.contains("root/snapshots is a symbolic link"),
            "{error}"
        );
        std::fs::remove_file(layout.snapshots()).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), layout.netns()).unwrap();
        assert!(layout.make_private().is_err());
        std::fs::remove_file(layout.netns()).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), layout.container_logs_root()).unwrap();
        let error = layout.make_private().unwrap_err().to_string();
        assert!(error.contains("root/logs is a symbolic link"), "{error}");
    }

    #[test]
    fn everything_lives_under_its_own_root() {
        let layout = Layout::new(Path::new("/r"), Path::new("/s"));
        for persistent in [
            layout.content(),
            layout.image_records(),
            layout.snapshots(),
            layout.container_records(),
            layout.network_records(),
            layout.volumes(),
            layout.cni_results(),
            layout.cni_ipam(),
            layout.events(),
            layout.events_log(),
            layout.events_log_rotated(),
            layout.events_lock(),
            layout.container_logs("web"),
            layout.store_lock(),
        ] {
            assert!(persistent.starts_with("/r"), "{}", persistent.display());
        }
        for volatile in [
            layout.runc_root(),
            layout.container_dir("web"),
            layout.netns(),
            layout.consoles(),
            layout.reconcile_lock(),
        ] {
            assert!(volatile.starts_with("/s"), "{}", volatile.display());
        }
    }
}
