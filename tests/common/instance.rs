//! One berth instance in a temp dir: the fixture every end-to-end test
//! builds on.
//!
//! Lifecycle: [`Instance::new`] (or [`Instance::with_busybox`], which also
//! writes a busybox OCI layout at `images/busybox`) makes a temp dir whose
//! `root/` and `state/` the berth binary is pointed at by
//! [`Instance::command`], [`Instance::run`], [`Instance::ok`] and
//! [`Instance::fails`]; [`Instance::layout`] gives the same two dirs to the
//! library. Names from [`Instance::unique_name`] and [`Instance::short_name`]
//! are unique across the test binaries running side by side and across
//! reruns (pid and a process-wide counter), because cgroups, bridges and
//! iptables rules are shared by every test on the host.
//!
//! Dropping an instance removes every container its state dir holds (`berth
//! rm -f`), then whatever a crash left behind: shims (killed by the pids
//! found under this state dir, never by name), runc containers of its runc
//! root, stale reservations (`berth gc`) and mounts under its dir; last the
//! bridges it was told about ([`Instance::own_bridge`]).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use berth::state::Layout;
use serde_json::Value;

use super::images as img;
use super::{host, prereq};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The next number of this test process: with the pid, unique on the host.
pub fn serial() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

pub struct Instance {
    dir: tempfile::TempDir,
    bridges: RefCell<Vec<String>>,
}

impl Instance {
    /// An instance with nothing in it yet.
    pub fn new() -> Instance {
        Instance {
            dir: tempfile::tempdir().expect("temp dir"),
            bridges: RefCell::default(),
        }
    }

    /// An instance with a busybox OCI layout at `images/busybox`
    /// ([`Instance::busybox`] names it as an image).
    pub fn with_busybox() -> Instance {
        let instance = Instance::new();
        img::write_oci_layout(&instance.busybox_dir(), &[(img::busybox_image(), "latest")]);
        instance
    }

    /// The temp dir that holds everything of this instance.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> PathBuf {
        self.path().join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    /// The runc root berth uses (`<state>/runc`).
    pub fn runc_root(&self) -> PathBuf {
        self.state().join("runc")
    }

    /// The root and state the berth binary is given, for the library.
    pub fn layout(&self) -> Layout {
        Layout::new(&self.root(), &self.state())
    }

    /// Where [`Instance::with_busybox`] writes its layout.
    pub fn busybox_dir(&self) -> PathBuf {
        self.path().join("images/busybox")
    }

    /// The busybox image as `berth run` takes it: `oci-layout:ABSOLUTE`.
    pub fn busybox(&self) -> String {
        format!("oci-layout:{}", self.busybox_dir().display())
    }

    /// `HINT-PID-N`: a container name no other test uses, now or in a rerun.
    pub fn unique_name(&self, hint: &str) -> String {
        format!("{hint}-{}-{}", std::process::id(), serial())
    }

    /// `PREFIXPIDN` with the pid cut to five digits: short enough (about 10
    /// characters for a two-letter prefix) to go into bridge names.
    pub fn short_name(&self, prefix: &str) -> String {
        format!("{prefix}{}{}", std::process::id() % 100_000, serial())
    }

    /// A bridge this instance's networks use: deleted when it is dropped.
    pub fn own_bridge(&self, name: &str) {
        assert!(
            name.len() <= 15,
            "{name}: bridge names have 15 characters at most"
        );
        self.bridges.borrow_mut().push(name.to_string());
    }

    /// `berth --root DIR/root --state DIR/state ARGS...`.
    pub fn command(&self, args: &[&str]) -> Command {
        super::cli::command(self.path(), args)
    }

    /// Runs berth with no standard input and collects its output.
    pub fn run(&self, args: &[&str]) -> Output {
        super::cli::run(self.path(), args)
    }

    /// Runs berth, expects success and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        super::cli::ok(self.path(), args)
    }

    /// Runs berth, expects a clean failure (exit code 1, not a panic) and
    /// returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "berth {args:?} should fail:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert_eq!(
            output.status.code(),
            Some(1),
            "a clean failure, not a panic: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    pub fn inspect(&self, name: &str) -> Value {
        serde_json::from_str(&self.ok(&["inspect", name])).expect("inspect prints JSON")
    }

    /// `berth run -d --name NAME FLAGS... BUSYBOX COMMAND...`, expected to
    /// succeed.
    pub fn start(&self, name: &str, flags: &[&str], command: &[&str]) {
        let image = self.busybox();
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(flags);
        args.push(&image);
        args.extend_from_slice(command);
        self.ok(&args);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // No state dir: berth never ran a container here.
        if self.state().exists() {
            let listed = self.run(&["ps", "-a", "-o", "json"]);
            let names: Vec<String> = serde_json::from_slice::<Value>(&listed.stdout)
                .ok()
                .and_then(|ps| ps.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter(|o| o["kind"] == "container")
                .filter_map(|c| c["id"].as_str().map(str::to_string))
                .collect();
            for name in &names {
                let _ = self.run(&["rm", "-f", name]);
            }
            // What berth lost track of (a test failed at a crash point).
            for (pid, _) in host::shims(&self.state()) {
                host::kill9(pid);
            }
            if let Some(runc) = prereq::find_binary("runc").filter(|_| self.runc_root().exists()) {
                let runc_root = self.runc_root();
                let runc = |args: &[&str]| {
                    Command::new(&runc)
                        .arg("--root")
                        .arg(&runc_root)
                        .args(args)
                        .stdin(Stdio::null())
                        .output()
                };
                if let Ok(listed) = runc(&["list", "-q"]) {
                    for id in String::from_utf8_lossy(&listed.stdout).lines() {
                        let _ = runc(&["delete", "-f", id]);
                    }
                }
            }
            let _ = self.run(&["gc"]);
        }
        host::unmount_all_under(self.path());
        for bridge in self.bridges.borrow().iter() {
            host::remove_network_rules(bridge);
            host::delete_link(bridge);
        }
    }
}
