//! `berth apply` end to end, as root: the quickstart example converges,
//! a second apply touches nothing, a changed env var replaces exactly that
//! container, pruning deletes only what is no longer declared, and an
//! invalid set changes nothing.

mod common;

use std::fs;
use std::path::Path;

use common::images as img;
use common::prereq;

/// A copy of the quickstart with its own subnet, bridge and host port.
struct Site {
    dir: tempfile::TempDir,
    manifests: String,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
        let target = dir.path().join("quickstart");
        fs::create_dir_all(target.join("site")).unwrap();
        let third = 100 + pid % 100;
        for file in ["network.yaml", "web.yaml", "client.yaml", "site/index.html"] {
            let text = fs::read_to_string(quickstart.join(file))
                .unwrap()
                .replace("10.231.0.", &format!("10.242.{third}."))
                .replace("berth-qs0", &format!("bap{}", pid % 100_000))
                .replace("18080", &(30_000 + pid % 20_000).to_string());
            fs::write(target.join(file), text).unwrap();
        }
        img::write_oci_layout(
            &dir.path().join("images/busybox"),
            &[(img::busybox_image(), "latest")],
        );
        Site {
            manifests: target.display().to_string(),
            dir,
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        common::cli::ok(self.dir.path(), args)
    }

    fn apply(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "apply",
            "--allow-untrusted-manifests",
            "--timeout",
            "60s",
            "-f",
            &self.manifests,
        ];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    /// The container's pid once it runs.
    fn pid_of(&self, name: &str) -> i64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let inspect: serde_json::Value =
                serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
            if let Some(pid) = inspect["status"]["pid"]
                .as_i64()
                .filter(|_| inspect["status"]["phase"] == "running")
            {
                return pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never ran: {inspect}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        for name in ["client", "web", "extra"] {
            let _ = common::cli::run(self.dir.path(), &["rm", "-f", name]);
        }
        let _ = std::process::Command::new("ip")
            .args([
                "link",
                "del",
                &format!("bap{}", std::process::id() % 100_000),
            ])
            .output();
    }
}

#[test]
fn apply_converges_is_idempotent_replaces_exactly_and_prunes() {
    if !prereq::require_root("apply_converges_is_idempotent_replaces_exactly_and_prunes")
        || prereq::require_binary("runc", "runc").is_none()
    {
        return;
    }
    let site = Site::new();
    let first = site.apply(&[]);
    assert!(first.contains("create Container web"), "{first}");
    assert!(first.contains("converged"), "{first}");
    assert!(
        !first.contains("replace"),
        "nothing is created twice: {first}"
    );
    let (web, client) = (site.pid_of("web"), site.pid_of("client"));
    assert!(web > 0 && client > 0);

    let second = site.apply(&[]);
    assert!(second.contains("nothing to do"), "{second}");
    assert_eq!(
        (site.pid_of("web"), site.pid_of("client")),
        (web, client),
        "the same processes"
    );

    let client_file = Path::new(&site.manifests).join("client.yaml");
    let text = fs::read_to_string(&client_file).unwrap();
    fs::write(
        &client_file,
        text.replace("TARGET:", "EXTRA: \"1\"\n    TARGET:"),
    )
    .unwrap();
    let third = site.apply(&[]);
    assert!(
        third.contains("replace Container client: spec.env changed"),
        "{third}"
    );
    assert!(!third.contains("Container web"), "web untouched: {third}");
    assert_eq!(site.pid_of("web"), web);

    fs::write(
        &client_file,
        "# yaml-language-server: $schema=../../schemas/berth.v1.schema.json\n{",
    )
    .unwrap();
    let invalid = common::cli::run(
        site.dir.path(),
        &[
            "apply",
            "--allow-untrusted-manifests",
            "-f",
            &site.manifests,
        ],
    );
    assert_eq!(invalid.status.code(), Some(1));
    assert_eq!(site.pid_of("web"), web, "an invalid set changes nothing");

    fs::remove_file(&client_file).unwrap();
    let pruned = site.apply(&["--prune"]);
    assert!(
        pruned.contains("delete Container client: pruned"),
        "{pruned}"
    );
    assert!(!pruned.contains("Container web"), "{pruned}");
    let ps: serde_json::Value =
        serde_json::from_str(&site.ok(&["ps", "-a", "-o", "json"])).unwrap();
    let names: Vec<&str> = ps
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "container")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
}
