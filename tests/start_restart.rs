//! `berth start` and `berth restart`, as root with real runc: a stopped
//! container runs again, in place while its runtime state is there (its
//! writable layer and logs kept), created again from its record once a
//! reboot took that state away; restart stops it and starts it again.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::instance::Instance;
use common::{cli, host, prereq};
use serde_json::Value;

fn ready(test: &str) -> bool {
    prereq::require_root(test)
        && prereq::require_busybox(test)
        && prereq::require_binary("runc", "runc").is_some()
}

/// A container that says it ran, says whether its writable layer kept the
/// mark an earlier run left, marks it, and runs until SIGTERM.
const SLEEPER: &str = "trap 'exit 0' TERM; echo ran; [ -e /mark ] && echo kept; touch /mark; \
                       while :; do sleep 1; done";

/// The pid of `name`'s init once it runs.
fn running_pid(instance: &Instance, name: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let inspect = instance.inspect(name);
        if let (Some("running"), Some(pid)) =
            (inspect["state"].as_str(), inspect["status"]["pid"].as_u64())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "{name} never ran: {inspect}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state_of(instance: &Instance, name: &str) -> Value {
    instance.inspect(name)["state"].clone()
}

/// The container's log lines, once there are at least `count`.
fn log_lines(instance: &Instance, name: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = instance.ok(&["logs", name]);
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never logged {count} lines: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn start_runs_a_stopped_container_in_place_and_restart_gives_it_a_new_pid() {
    if !ready("start_runs_a_stopped_container_in_place_and_restart_gives_it_a_new_pid") {
        return;
    }
    let instance = Instance::with_busybox();
    let name = instance.unique_name("start");
    instance.start(&name, &[], &["sh", "-c", SLEEPER]);
    let first = running_pid(&instance, &name);
    assert_eq!(log_lines(&instance, &name, 1), ["ran"]);

    instance.ok(&["stop", &name]);
    assert_eq!(state_of(&instance, &name), "exited");
    assert!(!host::alive(first as u32));
    let inspect = instance.inspect(&name);
    assert_eq!(
        inspect["record"]["stopped"]["by"], "berth stop",
        "{inspect}"
    );

    assert_eq!(instance.ok(&["start", &name]), format!("{name}\n"));
    let second = running_pid(&instance, &name);
    assert_ne!(second, first);
    // The same container: its writable layer and its log go on.
    assert_eq!(log_lines(&instance, &name, 3), ["ran", "ran", "kept"]);
    let inspect = instance.inspect(&name);
    assert_eq!(inspect["record"]["stopped"], Value::Null, "{inspect}");

    // Started while it runs: said so, nothing changes.
    let output = instance.run(&["start", &name]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("container {name} is already running")),
        "{stderr}"
    );
    assert_eq!(running_pid(&instance, &name), second);

    assert_eq!(instance.ok(&["restart", &name]), format!("{name}\n"));
    let third = running_pid(&instance, &name);
    assert_ne!(third, second);
    assert!(!host::alive(second as u32));
    assert_eq!(
        log_lines(&instance, &name, 5),
        ["ran", "ran", "kept", "ran", "kept"],
        "one more run on the same layer"
    );
    let inspect = instance.inspect(&name);
    assert_eq!(inspect["record"]["stopped"], Value::Null, "{inspect}");

    let missing = instance.fails(&["start", "no-such-container"]);
    assert!(
        missing.contains("no container \"no-such-container\""),
        "{missing}"
    );
}

#[test]
fn after_a_reboot_start_creates_the_container_again_from_its_record() {
    if !ready("after_a_reboot_start_creates_the_container_again_from_its_record") {
        return;
    }
    let instance = Instance::with_busybox();
    let name = instance.unique_name("reboot");
    // A relative bind source: it resolves where `run` ran, and so again.
    fs::create_dir(instance.path().join("data")).unwrap();
    fs::write(instance.path().join("data/greeting"), "hello\n").unwrap();
    let image = instance.busybox();
    let command = format!("cat /data/greeting; {SLEEPER}");
    let run = [
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        "./data:/data:ro",
        &image,
        "sh",
        "-c",
        &command,
    ];
    let output = instance
        .command(&run)
        .current_dir(instance.path())
        .output()
        .unwrap();
    cli::succeeded("berth run", &output);
    let first = running_pid(&instance, &name);
    let created = instance.inspect(&name)["record"].clone();
    instance.ok(&["stop", &name]);

    // What a reboot does: mounts and --state (a tmpfs) gone, --root kept.
    host::unmount_all_under(&instance.state());
    fs::remove_dir_all(instance.state()).unwrap();
    assert_eq!(state_of(&instance, &name), "unknown");

    let output = instance
        .command(&["start", &name])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(cli::succeeded("berth start", &output), format!("{name}\n"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("created again from its record"), "{stderr}");
    assert_ne!(running_pid(&instance, &name), first);
    assert_eq!(log_lines(&instance, &name, 2), ["hello", "ran"]);
    let record = instance.inspect(&name)["record"].clone();
    for field in ["image", "imageManifest", "spec", "origin", "baseDir"] {
        assert_eq!(record[field], created[field], "{field}: {record}");
    }
    assert_eq!(record["stopped"], Value::Null, "{record}");
}
