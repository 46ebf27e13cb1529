//! A berth instance driven by manifests, as `berth apply` users drive it: a
//! temp dir with its own `root/` and `state/` (see [`super::cli`]), a busybox
//! OCI layout at `images/busybox` and a manifest tree at `manifests/` (whose
//! manifests name the image `oci-layout:../images/busybox`).
//!
//! Names are unique per test process and instance ([`Site::tag`]), because
//! cgroups, bridges and iptables rules are shared by every test on the host.
//! Dropping a site removes every container it has, then whatever a crash
//! left behind (shims, runc containers, mounts, stale reservations) and the
//! bridges it was told about.

use std::cell::RefCell;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::host;
use super::images as img;

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Site {
    pub dir: tempfile::TempDir,
    /// The manifest tree that `berth apply -f` is given.
    pub manifests: PathBuf,
    /// Unique to this instance: `PREFIX` + pid + counter, at most 10 characters.
    pub tag: String,
    bridges: RefCell<Vec<String>>,
}

impl Site {
    /// An empty manifest tree; `prefix` (two letters) says which test it is.
    pub fn new(prefix: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifests = dir.path().join("manifests");
        fs::create_dir_all(&manifests).unwrap();
        img::write_oci_layout(
            &dir.path().join("images/busybox"),
            &[(img::busybox_image(), "latest")],
        );
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Site {
            dir,
            manifests,
            tag: format!("{prefix}{}{n}", std::process::id() % 100_000),
            bridges: RefCell::default(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The runc root berth uses (`<state>/runc`).
    pub fn runc_root(&self) -> PathBuf {
        self.state().join("runc")
    }

    /// A bridge this site's networks use: deleted when the site is dropped.
    pub fn own_bridge(&self, name: &str) {
        assert!(
            name.len() <= 15,
            "{name}: bridge names have 15 characters at most"
        );
        self.bridges.borrow_mut().push(name.to_string());
    }

    /// Writes a file of the manifest tree the way `git checkout` does: a new
    /// file renamed over the old one (so a running container's bind mount
    /// of the old file keeps the old content).
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.manifests.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let temp = path.with_extension("tmp~");
        fs::write(&temp, text).unwrap();
        fs::rename(&temp, &path).unwrap();
    }

    pub fn remove(&self, relative: &str) {
        fs::remove_file(self.manifests.join(relative)).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        super::cli::command(self.dir.path(), args)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        super::cli::run(self.dir.path(), args)
    }

    /// Runs berth, expects success and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        super::cli::ok(self.dir.path(), args)
    }

    /// `berth VERB --allow-untrusted-manifests -f MANIFESTS EXTRA...`: a
    /// command that takes the manifest tree (plan, apply, delete).
    pub fn set_command(&self, verb: &str, extra: &[&str]) -> Command {
        let manifests = self.manifests.display().to_string();
        let mut args = vec![verb, "--allow-untrusted-manifests", "-f", &manifests];
        args.extend_from_slice(extra);
        self.command(&args)
    }

    /// [`Site::set_command`] run with no standard input; its output.
    pub fn run_set(&self, verb: &str, extra: &[&str]) -> Output {
        self.set_command(verb, extra)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("berth runs")
    }

    /// `berth apply` of the manifest tree, with `extra` flags.
    pub fn apply_command(&self, extra: &[&str]) -> Command {
        let mut args = vec!["--timeout", "60s"];
        args.extend_from_slice(extra);
        self.set_command("apply", &args)
    }

    /// Applies the manifest tree, expects success, returns the output.
    pub fn apply(&self, extra: &[&str]) -> String {
        let output = self
            .apply_command(extra)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("berth runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "berth apply failed ({}):\n{text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    /// `berth plan` of the manifest tree: (exit code, stdout).
    pub fn plan(&self, extra: &[&str]) -> (i32, String) {
        let output = self.run_set("plan", extra);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let code = output.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 2,
            "berth plan failed ({}):\n{text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        (code, text)
    }

    pub fn inspect(&self, name: &str) -> Value {
        serde_json::from_str(&self.ok(&["inspect", name])).expect("inspect prints JSON")
    }

    /// The containers `ps -a -o json` lists (not the networks and volumes).
    pub fn ps(&self) -> Vec<Value> {
        let ps: Value =
            serde_json::from_str(&self.ok(&["ps", "-a", "-o", "json"])).expect("ps prints JSON");
        ps.as_array()
            .expect("ps prints a list")
            .iter()
            .filter(|o| o["kind"] == "container")
            .cloned()
            .collect()
    }

    /// The container's pid once it runs (apply returns when its shim has
    /// started, which may be before runc has).
    pub fn pid_of(&self, name: &str) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let inspect = self.inspect(name);
            if let Some(pid) = inspect["status"]["pid"]
                .as_u64()
                .filter(|_| inspect["status"]["phase"] == "running")
            {
                return pid as u32;
            }
            assert!(Instant::now() < deadline, "{name} never ran: {inspect}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The shim's pid, from `berth inspect`.
    pub fn shim_pid(&self, name: &str) -> u32 {
        let inspect = self.inspect(name);
        inspect["shimPid"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} has no shim pid: {inspect}")) as u32
    }

    /// `berth exec NAME -- sh -c SCRIPT`, expected to succeed; its stdout.
    pub fn sh(&self, name: &str, script: &str) -> String {
        self.ok(&["exec", name, "--", "sh", "-c", script])
    }
}

impl Drop for Site {
    fn drop(&mut self) {
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
        for id in host::runc_list(&self.runc_root()) {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(self.runc_root())
                .args(["delete", "-f", &id])
                .output();
        }
        let _ = self.run(&["gc"]);
        host::unmount_all_under(self.dir.path());
        for bridge in self.bridges.borrow().iter() {
            host::delete_link(bridge);
        }
    }
}

/// A Container manifest named `name` on the site's busybox image; `body`
/// holds the rest of its spec, indented by two spaces.
pub fn container_yaml(name: &str, body: &str) -> String {
    format!(
        "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: {name}\nspec:\n  image: oci-layout:../images/busybox\n{body}"
    )
}
