//! Images by name as people expect, end to end as root: one naming rule
//! (`mybusybox` is `docker.io/library/mybusybox:latest`) for `image import
//! --name`, `image tag`, `run`, a manifest's `image:` and `image
//! ls/inspect/rm`, with local images found first and no registry asked.
//!
//! "No registry asked" is proven, not assumed: every berth here runs with
//! `HTTPS_PROXY`, `HTTP_PROXY` and `ALL_PROXY` pointing at a listener the
//! test owns on 127.0.0.1 (and no `NO_PROXY`). berth's registry client
//! (oci-client over reqwest) sends every request through that proxy, so
//! any pull attempt is a connection the listener counts; a control pull
//! per test shows that the trap does catch one.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use berth::image::{ImageRecord, Images};
use common::images as img;
use common::instance::Instance;
use common::prereq;
use common::site::Site;

/// A TCP listener on 127.0.0.1 posing as the HTTP(S) proxy: it counts and
/// drops every connection, so a berth that tries a registry fails fast
/// and the test sees that it tried.
struct ProxyTrap {
    url: String,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProxyTrap {
    fn new() -> ProxyTrap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (connections, stop) = (connections.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            connections.fetch_add(1, Ordering::SeqCst);
                            drop(stream);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        ProxyTrap {
            url,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    /// `command` with every proxy variable pointing here and no exceptions.
    fn wrap<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"] {
            command.env(name, &self.url);
            command.env(name.to_lowercase(), &self.url);
        }
        command.env_remove("NO_PROXY").env_remove("no_proxy")
    }

    /// Connections so far, after a moment for one in flight to be accepted.
    fn connections(&self) -> usize {
        std::thread::sleep(Duration::from_millis(50));
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ProxyTrap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `command` behind `trap`; its output.
fn run_trapped(trap: &ProxyTrap, command: &mut Command) -> Output {
    trap.wrap(command)
        .stdin(Stdio::null())
        .output()
        .expect("berth runs")
}

/// The control: a pull of a name no store holds goes through the trap,
/// so a zero count later means berth asked no registry.
fn assert_the_trap_catches_a_pull(instance: &Instance, trap: &ProxyTrap) {
    let before = trap.connections();
    let output = run_trapped(
        trap,
        &mut instance.command(&["image", "pull", "registry.invalid/berth/absent:1"]),
    );
    assert!(!output.status.success(), "a pull through the trap failed");
    assert!(
        trap.connections() > before,
        "the pull never reached the trap; the proxy variables are not honoured, so \
         nothing here proves berth asks no registry: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn require(test: &str) -> bool {
    prereq::require_root(test)
        && prereq::require_busybox(test)
        && prereq::require_binary("runc", "runc").is_some()
}

#[test]
fn an_image_imported_with_a_short_name_runs_by_it_without_asking_a_registry() {
    if !require("an_image_imported_with_a_short_name_runs_by_it_without_asking_a_registry") {
        return;
    }
    let berth = Instance::with_busybox();
    let trap = ProxyTrap::new();
    assert_the_trap_catches_a_pull(&berth, &trap);
    let caught = trap.connections();

    let imported: serde_json::Value = serde_json::from_str(&berth.ok(&[
        "image",
        "import",
        &berth.busybox(),
        "--name",
        "mybusybox",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(imported["name"], "docker.io/library/mybusybox:latest");
    assert_eq!(imported["manifest"], img::busybox_image().manifest_digest);

    // Regression: run looked up docker.io/library/mybusybox:latest while
    // the record said mybusybox, and went to the registry.
    for name in [
        "mybusybox",
        "mybusybox:latest",
        "docker.io/library/mybusybox",
    ] {
        let output = run_trapped(
            &trap,
            &mut berth.command(&["run", "--rm", name, "sh", "-c", "echo ran"]),
        );
        let stdout = common::cli::succeeded(&format!("berth run --rm {name}"), &output);
        assert_eq!(stdout.trim(), "ran");
    }
    assert_eq!(trap.connections(), caught, "berth run asked a registry");

    // ls, inspect and rm by the same rule.
    let listed: serde_json::Value =
        serde_json::from_str(&berth.ok(&["image", "ls", "-o", "json"])).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["docker.io/library/mybusybox:latest"]);
    let inspected: serde_json::Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", "mybusybox", "-o", "json"])).unwrap();
    assert_eq!(
        inspected["image"]["manifest"],
        img::busybox_image().manifest_digest
    );
    berth.ok(&["image", "rm", "mybusybox"]);
    assert!(
        berth.ok(&["image", "ls"]).lines().count() <= 1,
        "one header line only"
    );
}

#[test]
fn a_manifest_naming_a_local_image_by_short_name_applies_without_asking_a_registry() {
    if !require("a_manifest_naming_a_local_image_by_short_name_applies_without_asking_a_registry") {
        return;
    }
    let site = Site::new("in");
    let trap = ProxyTrap::new();
    assert_the_trap_catches_a_pull(&site, &trap);
    let caught = trap.connections();
    site.ok(&["image", "import", &site.busybox(), "--name", "mybusybox"]);
    let name = site.unique_name("short");
    site.write(
        "app.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: {name}\nspec:\n  \
             image: mybusybox\n  networkMode: none\n  command: [sleep, '3600']\n"
        ),
    );

    let output = run_trapped(&trap, &mut site.apply_command(&[]));
    common::cli::succeeded("berth apply", &output);
    assert_eq!(trap.connections(), caught, "berth apply asked a registry");
    site.pid_of(&name);
    let inspect = site.inspect(&name);
    assert_eq!(
        inspect["record"]["imageManifest"],
        img::busybox_image().manifest_digest,
        "{inspect}"
    );
    // Converged: a second plan has nothing to pull or change.
    let output = run_trapped(&trap, &mut site.set_command("plan", &[]));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(trap.connections(), caught, "berth plan asked a registry");
}

#[test]
fn a_second_name_from_image_tag_runs_and_removing_it_keeps_the_first() {
    if !require("a_second_name_from_image_tag_runs_and_removing_it_keeps_the_first") {
        return;
    }
    let berth = Instance::with_busybox();
    let trap = ProxyTrap::new();
    berth.ok(&["image", "import", &berth.busybox()]);
    let tagged: serde_json::Value = serde_json::from_str(&berth.ok(&[
        "image",
        "tag",
        &berth.busybox(),
        "mine:v2",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(tagged["name"], "docker.io/library/mine:v2");
    assert_eq!(tagged["manifest"], img::busybox_image().manifest_digest);

    let output = run_trapped(
        &trap,
        &mut berth.command(&["run", "--rm", "mine:v2", "true"]),
    );
    common::cli::succeeded("berth run --rm mine:v2 true", &output);
    assert_eq!(trap.connections(), 0, "berth run asked a registry");

    // A digest is what an image is, not a name for it.
    let digest = &img::busybox_image().manifest_digest;
    let refused = berth.fails(&["image", "tag", "mine:v2", &format!("mine@{digest}")]);
    assert!(refused.contains("not a digest"), "{refused}");

    berth.ok(&["image", "rm", "mine:v2"]);
    let listed = berth.ok(&["image", "ls"]);
    assert!(!listed.contains("mine"), "{listed}");
    assert!(listed.contains(&berth.busybox()), "{listed}");
    // The content stayed for the first name.
    berth.ok(&["run", "--rm", &berth.busybox(), "true"]);
}

#[test]
fn a_record_named_before_names_were_normalized_still_runs_by_its_name() {
    if !require("a_record_named_before_names_were_normalized_still_runs_by_its_name") {
        return;
    }
    let berth = Instance::with_busybox();
    let trap = ProxyTrap::new();
    berth.ok(&["image", "import", &berth.busybox()]);
    // What an import with `--name mybusybox` recorded before the naming
    // rule: the name as given.
    let images = Images::open(&berth.layout()).unwrap();
    let record = images.records.find(&berth.busybox()).unwrap();
    images.records.remove(&record.name).unwrap();
    images
        .records
        .put(&ImageRecord {
            name: "mybusybox".into(),
            ..record
        })
        .unwrap();

    for name in ["mybusybox", "docker.io/library/mybusybox:latest"] {
        let output = run_trapped(&trap, &mut berth.command(&["run", "--rm", name, "true"]));
        common::cli::succeeded(&format!("berth run --rm {name} true"), &output);
    }
    assert_eq!(trap.connections(), 0, "berth run asked a registry");
    berth.ok(&["image", "inspect", "docker.io/library/mybusybox"]);
    berth.ok(&["image", "rm", "mybusybox"]);
}
