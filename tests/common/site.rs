//! A berth instance driven by manifests, as `berth apply` users drive it: an
//! [`Instance`] with the busybox layout at `images/busybox` and a manifest
//! tree at `manifests/` (whose manifests name the image
//! `oci-layout:../images/busybox`).
//!
//! [`Site::tag`] is unique per test process and site, for the names of
//! cgroups, bridges and iptables rules; dropping the site drops its
//! instance, which cleans up (see [`super::instance`]).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::instance::Instance;

/// An [`Instance`] (which it derefs to) with a busybox layout and a
/// manifest tree.
pub struct Site {
    pub instance: Instance,
    /// The manifest tree that `berth apply -f` is given.
    pub manifests: PathBuf,
    /// Unique to this instance: `PREFIX` + pid + counter, at most 10 characters.
    pub tag: String,
}

super::deref_to!(Site, instance: Instance);

impl Site {
    /// An empty manifest tree; `prefix` (two letters) says which test it is.
    pub fn new(prefix: &str) -> Site {
        let instance = Instance::with_busybox();
        let manifests = instance.path().join("manifests");
        fs::create_dir_all(&manifests).unwrap();
        Site {
            tag: instance.short_name(prefix),
            instance,
            manifests,
        }
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
        super::cli::succeeded("berth apply", &output)
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

    /// Every container in `names` runs under exactly one shim, and runc
    /// knows exactly them.
    pub fn assert_one_shim_and_runc_container_each(&self, names: &[String]) {
        let mut expected = names.to_vec();
        expected.sort();
        let mut shims: Vec<String> = super::host::shims(&self.state())
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        shims.sort();
        assert_eq!(shims, expected, "one shim per container");
        assert_eq!(super::host::runc_list(&self.runc_root()), expected);
    }

    /// `berth exec NAME -- sh -c SCRIPT`, expected to succeed; its stdout.
    pub fn sh(&self, name: &str, script: &str) -> String {
        self.ok(&["exec", name, "--", "sh", "-c", script])
    }
}

/// A Container manifest named `name` on the site's busybox image; `body`
/// holds the rest of its spec, indented by two spaces.
pub fn container_yaml(name: &str, body: &str) -> String {
    format!(
        "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: {name}\nspec:\n  image: oci-layout:../images/busybox\n{body}"
    )
}
