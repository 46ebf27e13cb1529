//! `berth top`, `berth stats`, `berth cp` and restart counts across `berth
//! start`, as root with real runc, overlayfs and CNI: top lists the
//! container's processes by host pid, stats reads its cgroup and network
//! namespace, cp copies both ways and no link inside the container leads a
//! copy onto the host, and a started container goes on counting restarts.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth::manifest::NetworkSpec;
use berth::network::store::{NetworkRecord, NetworkStore};
use common::instance::{self, Instance};
use common::prereq;
use serde_json::Value;

fn ready(test: &str) -> bool {
    prereq::require_root(test)
        && prereq::require_busybox(test)
        && prereq::require_binary("runc", "runc").is_some()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The host pid of `name`'s init once it runs.
fn running_pid(instance: &Instance, name: &str) -> u32 {
    let mut pid = None;
    wait_until(&format!("{name} to run"), || {
        let inspect = instance.inspect(name);
        pid = match (inspect["state"].as_str(), inspect["status"]["pid"].as_u64()) {
            (Some("running"), Some(pid)) => Some(pid as u32),
            _ => None,
        };
        pid.is_some()
    });
    pid.unwrap()
}

fn restarts(instance: &Instance, name: &str) -> u64 {
    instance.inspect(name)["status"]["restarts"]
        .as_u64()
        .unwrap_or(0)
}

/// A command line as the host's /proc shows it.
fn host_cmdline(pid: u64) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

#[test]
fn top_lists_the_containers_processes_by_host_pid() {
    if !ready("top_lists_the_containers_processes_by_host_pid") {
        return;
    }
    let instance = Instance::with_busybox();
    let name = instance.unique_name("top");
    instance.start(&name, &[], &["sh", "-c", "sleep 601 & exec sleep 600"]);
    let init = running_pid(&instance, &name);
    let mut rows = Vec::new();
    wait_until("both sleeps in top", || {
        let json: Value =
            serde_json::from_str(&instance.ok(&["top", &name, "-o", "json"])).unwrap();
        rows = json.as_array().cloned().unwrap_or_default();
        rows.len() == 2
    });
    let init_row = rows
        .iter()
        .find(|row| row["command"] == "sleep 600")
        .unwrap_or_else(|| panic!("no sleep 600 in {rows:?}"));
    // The host's pid, not the container's pid 1.
    assert_eq!(init_row["pid"].as_u64(), Some(u64::from(init)), "{rows:?}");
    let child = rows
        .iter()
        .find(|row| row["command"] == "sleep 601")
        .unwrap_or_else(|| panic!("no sleep 601 in {rows:?}"));
    assert_eq!(child["ppid"].as_u64(), Some(u64::from(init)), "{rows:?}");
    for row in &rows {
        let pid = row["pid"].as_u64().unwrap();
        assert!(pid > 1, "{rows:?}");
        assert_eq!(host_cmdline(pid), row["command"].as_str().unwrap());
        assert_eq!(row["user"], "root", "{rows:?}");
    }

    let text = instance.ok(&["top", &name]);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["PID", "PPID", "USER", "TIME", "CMD"], "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&init.to_string()) && l.ends_with("sleep 600")),
        "{text}"
    );

    instance.ok(&["stop", &name]);
    let stopped = instance.fails(&["top", &name]);
    assert!(stopped.contains("not running"), "{stopped}");
}

#[test]
fn stats_read_cpu_memory_pids_and_no_traffic_without_a_network() {
    if !ready("stats_read_cpu_memory_pids_and_no_traffic_without_a_network") {
        return;
    }
    let instance = Instance::with_busybox();
    let name = instance.unique_name("stats");
    instance.start(
        &name,
        &["--memory", "64Mi"],
        &["sh", "-c", "sleep 601 & exec sleep 600"],
    );
    running_pid(&instance, &name);
    let json: Value =
        serde_json::from_str(&instance.ok(&["stats", "--no-stream", "-o", "json", &name])).unwrap();
    let stats = &json[0];
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(stats["name"], name.as_str());
    let cpu = stats["cpuPercent"].as_f64().expect("cpu measured");
    assert!((0.0..=400.0).contains(&cpu), "{json}");
    let memory = stats["memoryBytes"].as_u64().unwrap();
    assert!(memory > 0 && memory < 64 << 20, "{json}");
    assert_eq!(stats["memoryLimitBytes"].as_u64(), Some(64 << 20), "{json}");
    let pids = stats["pids"].as_u64().unwrap();
    assert!((2..=10).contains(&pids), "{json}");
    // networkMode none: loopback only, which is not counted.
    assert_eq!(stats["net"]["rxBytes"], 0, "{json}");
    assert_eq!(stats["net"]["txBytes"], 0, "{json}");

    let text = instance.ok(&["stats", "--no-stream", &name]);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains("/ 64.0 MiB"), "{text}");
}

#[test]
fn stats_count_the_traffic_of_a_ping_to_the_bridge_and_list_every_running_container() {
    if !prereq::require_networking(
        "stats_count_the_traffic_of_a_ping_to_the_bridge_and_list_every_running_container",
    ) || !prereq::require_busybox("stats_count_the_traffic")
    {
        return;
    }
    let instance = Instance::with_busybox();
    let n = instance::serial();
    let third = (std::process::id() % 200) as u8 + n as u8 + 20;
    let bridge = instance.short_name("bs");
    instance.own_bridge(&bridge);
    let network = format!("statsnet{n}");
    let spec: NetworkSpec = serde_json::from_value(serde_json::json!({
        "subnet": format!("10.234.{third}.0/24"),
        "bridge": bridge,
    }))
    .unwrap();
    NetworkStore::new(instance.root().join("networks"))
        .put(&NetworkRecord {
            name: network.clone(),
            spec,
            source: None,
            file: None,
            line: None,
            fingerprint: None,
        })
        .unwrap();
    let name = instance.unique_name("netstats");
    instance.start(&name, &["--net", &network], &["sleep", "600"]);
    running_pid(&instance, &name);
    let gateway = format!("10.234.{third}.1");
    instance.ok(&["exec", &name, "ping", "-c", "2", "-W", "5", &gateway]);

    // No names: every running container, this one among them.
    let json: Value =
        serde_json::from_str(&instance.ok(&["stats", "--no-stream", "-o", "json"])).unwrap();
    let stats = json
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name.as_str()))
        .unwrap_or_else(|| panic!("{name} not in {json}"));
    // Two echo requests and replies are 2 x 98 bytes each way, at least.
    assert!(stats["net"]["rxBytes"].as_u64().unwrap() >= 196, "{json}");
    assert!(stats["net"]["txBytes"].as_u64().unwrap() >= 196, "{json}");
    assert!(stats["memoryBytes"].as_u64().unwrap() > 0, "{json}");
}

#[test]
fn stats_stream_until_interrupted_and_print_plain_tables_off_a_terminal() {
    if !ready("stats_stream_until_interrupted_and_print_plain_tables_off_a_terminal") {
        return;
    }
    let instance = Instance::with_busybox();
    let name = instance.unique_name("stream");
    instance.start(&name, &[], &["sleep", "600"]);
    running_pid(&instance, &name);
    let mut child = instance
        .command(&["stats", "-o", "json", &name])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    for _ in 0..2 {
        let line = lines.next().unwrap().unwrap();
        let sample: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(sample[0]["name"], name.as_str(), "{line}");
    }
    common::host::signal(child.id(), libc::SIGINT);
    let status = child.wait().unwrap();
    assert!(!status.success(), "interrupted, not finished: {status:?}");
}

/// What `cp` tests share: a running container and a host directory.
fn cp_rig(test: &str) -> Option<(Instance, String, tempfile::TempDir)> {
    if !ready(test) {
        return None;
    }
    let instance = Instance::with_busybox();
    let name = instance.unique_name("cp");
    instance.start(&name, &[], &["sleep", "600"]);
    running_pid(&instance, &name);
    Some((instance, name, tempfile::tempdir().unwrap()))
}

fn exec(instance: &Instance, name: &str, script: &str) -> String {
    instance.ok(&["exec", name, "sh", "-c", script])
}

#[test]
fn cp_copies_a_file_and_a_directory_into_and_out_of_a_running_container() {
    let Some((instance, name, host)) =
        cp_rig("cp_copies_a_file_and_a_directory_into_and_out_of_a_running_container")
    else {
        return;
    };
    let host = host.path();
    fs::write(host.join("note"), "from the host\n").unwrap();
    fs::create_dir_all(host.join("tree/sub")).unwrap();
    fs::write(host.join("tree/sub/leaf"), "leaf\n").unwrap();
    std::os::unix::fs::symlink("sub/leaf", host.join("tree/link")).unwrap();

    let file = host.join("note");
    instance.ok(&["cp", file.to_str().unwrap(), &format!("{name}:/tmp/")]);
    instance.ok(&[
        "cp",
        host.join("tree").to_str().unwrap(),
        &format!("{name}:/srv"),
    ]);
    assert_eq!(exec(&instance, &name, "cat /tmp/note"), "from the host\n");
    assert_eq!(exec(&instance, &name, "cat /srv/link"), "leaf\n");
    assert_eq!(
        exec(&instance, &name, "stat -c '%u:%g' /srv/sub/leaf"),
        "0:0\n"
    );

    exec(
        &instance,
        &name,
        "mkdir -p /data/logs && echo made inside > /data/logs/out.txt && echo one > /data/one",
    );
    let out = host.join("out");
    fs::create_dir(&out).unwrap();
    instance.ok(&["cp", &format!("{name}:/data"), out.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(out.join("data/logs/out.txt")).unwrap(),
        "made inside\n"
    );
    instance.ok(&[
        "cp",
        &format!("{name}:/data/one"),
        out.join("renamed").to_str().unwrap(),
    ]);
    assert_eq!(fs::read_to_string(out.join("renamed")).unwrap(), "one\n");

    let missing = instance.fails(&["cp", &format!("{name}:/no/such"), out.to_str().unwrap()]);
    assert!(missing.contains("/no/such"), "{missing}");
}

/// A name no file on the host has.
fn unused_name(hint: &str) -> String {
    format!(
        "berth-cp-{hint}-{}-{}",
        std::process::id(),
        instance::serial()
    )
}

#[test]
fn links_inside_the_container_never_lead_a_copy_onto_the_host() {
    let Some((instance, name, host)) =
        cp_rig("links_inside_the_container_never_lead_a_copy_onto_the_host")
    else {
        return;
    };
    let host = host.path();
    exec(
        &instance,
        &name,
        "echo container shadow > /etc/shadow; ln -s / /tmp/evil; ln -s ../../../../etc /tmp/up; \
         ln -s /etc/shadow /tmp/shadow-link",
    );

    // Out: /tmp/up/shadow is the container's /etc/shadow, never the host's;
    // /tmp/evil/shadow is the container's /shadow, which does not exist.
    let out = host.join("out");
    fs::create_dir(&out).unwrap();
    instance.ok(&[
        "cp",
        &format!("{name}:/tmp/up/shadow"),
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(out.join("shadow")).unwrap(),
        "container shadow\n"
    );
    let refused = instance.fails(&[
        "cp",
        &format!("{name}:/tmp/evil/shadow"),
        out.join("evil").to_str().unwrap(),
    ]);
    assert!(refused.contains("/tmp/evil/shadow"), "{refused}");
    assert!(!out.join("evil").exists());
    // A link is copied as the link, not as what it names.
    instance.ok(&[
        "cp",
        &format!("{name}:/tmp/shadow-link"),
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_link(out.join("shadow-link")).unwrap(),
        Path::new("/etc/shadow")
    );

    // In: through /tmp/evil and /tmp/up, the copy lands in the container.
    let payload = host.join("payload");
    fs::write(&payload, "payload\n").unwrap();
    let at_root = unused_name("root");
    let in_etc = unused_name("etc");
    instance.ok(&[
        "cp",
        payload.to_str().unwrap(),
        &format!("{name}:/tmp/evil/{at_root}"),
    ]);
    instance.ok(&[
        "cp",
        payload.to_str().unwrap(),
        &format!("{name}:/tmp/up/{in_etc}"),
    ]);
    assert!(
        !PathBuf::from("/").join(&at_root).exists(),
        "written on the host's /"
    );
    assert!(
        !PathBuf::from("/etc").join(&in_etc).exists(),
        "written on the host's /etc"
    );
    assert_eq!(
        exec(&instance, &name, &format!("cat /{at_root}")),
        "payload\n"
    );
    assert_eq!(
        exec(&instance, &name, &format!("cat /etc/{in_etc}")),
        "payload\n"
    );

    // Onto a link to a file: the link is replaced, nothing written through it.
    let victim = host.join("victim");
    fs::write(&victim, "untouched\n").unwrap();
    exec(
        &instance,
        &name,
        &format!("ln -s {} /tmp/trap", victim.display()),
    );
    instance.ok(&[
        "cp",
        payload.to_str().unwrap(),
        &format!("{name}:/tmp/trap"),
    ]);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched\n");
    assert_eq!(exec(&instance, &name, "cat /tmp/trap"), "payload\n");
}

#[test]
fn start_after_restarts_keeps_counting_them() {
    if !ready("start_after_restarts_keeps_counting_them") {
        return;
    }
    let instance = Instance::with_busybox();
    let name = instance.unique_name("count");
    instance.start(
        &name,
        &[
            "--restart",
            "always",
            "--restart-delay",
            "100ms",
            "--restart-max-delay",
            "200ms",
        ],
        &["sh", "-c", "sleep 0.2; exit 3"],
    );
    wait_until("two restarts", || restarts(&instance, &name) >= 2);
    instance.ok(&["stop", &name]);
    let before = restarts(&instance, &name);
    assert!(before >= 2, "{before}");

    instance.ok(&["start", &name]);
    assert!(
        restarts(&instance, &name) >= before,
        "start reset the count: {}",
        instance.inspect(&name)
    );
    wait_until("a restart after the start, counted on", || {
        restarts(&instance, &name) > before
    });
    let ps: Value = serde_json::from_str(&instance.ok(&["ps", "-a", "-o", "json"])).unwrap();
    let row = ps
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == name.as_str()))
        .unwrap_or_else(|| panic!("{name} not in {ps}"));
    assert!(
        row["status"]["restarts"].as_u64().unwrap() > before,
        "{row}"
    );
    instance.ok(&["stop", &name]);
}
