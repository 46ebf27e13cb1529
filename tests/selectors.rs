//! Label selectors, logs of many containers, `-o yaml` and `inspect -o
//! text`, end to end as root with real runc: `-l` picks containers by the
//! labels their records keep (from `berth run --label` and from manifests'
//! `metadata.labels`) on ps, inspect, stop, rm and logs; `logs` of several
//! containers prefixes and interleaves their lines by time, honours
//! `--since`/`--until` and follows them all with `-f`; `-o yaml` carries the
//! same data as `-o json`; nothing piped carries escape codes.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth::runtime::logs::format_timestamp;
use common::instance::Instance;
use common::prereq;
use common::site::{container_yaml, Site};
use serde_json::Value;

fn ready(test: &str) -> bool {
    prereq::require_root(test)
        && prereq::require_busybox(test)
        && prereq::require_binary("runc", "runc").is_some()
}

/// The container ids among `ps -o json` rows.
fn ids(rows: &Value) -> BTreeSet<String> {
    rows.as_array()
        .expect("an array")
        .iter()
        .filter(|row| row["kind"] == "container")
        .filter_map(|row| row["id"].as_str().map(str::to_string))
        .collect()
}

fn set(names: &[&String]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn ps(instance: &Instance, selector: &str) -> BTreeSet<String> {
    let out = instance.ok(&["ps", "-a", "-o", "json", "-l", selector]);
    ids(&serde_json::from_str(&out).expect("ps -o json prints JSON"))
}

fn wait_for_state(instance: &Instance, name: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = instance.inspect(name)["state"].clone();
        if seen == state {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never {state}: {seen}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A script that prints `NAME early`, waits until `/sync/GO` exists, prints
/// `NAME late` and exits: what it prints after is ordered by the host.
fn gated(name: &str, go: &str) -> String {
    format!("echo {name} early; while [ ! -e /sync/{go} ]; do sleep 0.05; done; echo {name} late")
}

/// Starts `name` with `labels`, running `script`, with `sync` at `/sync`.
fn start_gated(instance: &Instance, name: &str, labels: &[&str], sync: &Path, script: &str) {
    let volume = format!("{}:/sync", sync.display());
    let mut flags = vec!["-v", &volume];
    for label in labels {
        flags.extend(["--label", label]);
    }
    instance.start(name, &flags, &["sh", "-c", script]);
}

/// Waits until `name`'s log has a line saying `text`.
fn wait_for_line(instance: &Instance, name: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !instance.ok(&["logs", name]).lines().any(|l| l == text) {
        assert!(Instant::now() < deadline, "{name} never printed {text:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn selectors_pick_containers_by_label_on_ps_inspect_stop_and_rm() {
    if !ready("selectors_pick_containers_by_label_on_ps_inspect_stop_and_rm") {
        return;
    }
    let instance = Instance::with_busybox();
    let front = instance.unique_name("front");
    let back = instance.unique_name("back");
    let db = instance.unique_name("db");
    let sleep = ["sleep", "300"];
    let tag = format!("test={}", std::process::id());
    instance.start(
        &front,
        &["-l", "app=web", "-l", "tier=front", "-l", &tag],
        &sleep,
    );
    instance.start(&back, &["-l", "app=web", "-l", &tag], &sleep);
    instance.start(
        &db,
        &["--label", "app=db", "--label", "canary", "-l", &tag],
        &sleep,
    );

    assert_eq!(ps(&instance, "app=web"), set(&[&front, &back]));
    assert_eq!(ps(&instance, "app==web,tier=front"), set(&[&front]));
    assert_eq!(ps(&instance, &format!("app!=web,{tag}")), set(&[&db]));
    assert_eq!(ps(&instance, "canary"), set(&[&db]));
    assert_eq!(
        ps(&instance, &format!("!canary,{tag}")),
        set(&[&front, &back])
    );
    // Matching nothing is an empty table, not an error.
    let empty = instance.ok(&["ps", "-l", "app=nothing"]);
    assert_eq!(empty.lines().count(), 1, "only the header: {empty}");
    assert!(empty.starts_with("KIND"), "{empty}");

    let inspected: Value =
        serde_json::from_str(&instance.ok(&["inspect", "-l", "app=web"])).expect("JSON");
    let names: BTreeSet<String> = inspected
        .as_array()
        .expect("a selector gives an array")
        .iter()
        .map(|doc| doc["record"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, set(&[&front, &back]));
    assert_eq!(inspected[0]["record"]["labels"]["app"], "web");
    // One name keeps today's shape: an object.
    assert!(instance.inspect(&db)["record"]["labels"]["canary"] == "");

    for verb in [&["inspect"][..], &["stop"], &["rm", "-f"], &["logs"]] {
        let mut args = verb.to_vec();
        args.extend(["-l", "app=nothing"]);
        let error = instance.fails(&args);
        assert!(
            error.contains("no container matches app=nothing"),
            "{verb:?}: {error}"
        );
    }
    // Names and a selector together are refused, as kubectl refuses them.
    let both = instance.run(&["stop", &db, "-l", "app=db"]);
    assert!(!both.status.success());
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    // A malformed term is named.
    let malformed = instance.run(&["ps", "-l", "app=web=x"]);
    assert!(!malformed.status.success());
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("selector term \"app=web=x\""));

    let stopped = instance.ok(&["stop", "-l", "app=db", "--time", "30"]);
    assert_eq!(stopped.trim(), db);
    wait_for_state(&instance, &db, "exited");
    assert_eq!(instance.inspect(&front)["state"], "running");

    let removed: BTreeSet<String> = instance
        .ok(&["rm", "-f", "-l", "app=web"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(removed, set(&[&front, &back]));
    assert_eq!(ps(&instance, &tag), set(&[&db]));
}

#[test]
fn manifest_labels_are_recorded_and_ps_and_inspect_yaml_read_back_as_their_json() {
    if !ready("manifest_labels_are_recorded_and_ps_and_inspect_yaml_read_back_as_their_json")
        || !prereq::require_apply("manifest_labels_are_recorded")
    {
        return;
    }
    let site = Site::new("ly");
    let name = format!("lab-{}", site.tag);
    let body = "  command: [sleep, '300']\n  networkMode: none\n";
    let yaml = container_yaml(&name, body).replace(
        &format!("  name: {name}\n"),
        // Values YAML would read as other things, to carry through both forms.
        &format!("  name: {name}\n  labels: {{app: web, release: 'true', build: '007'}}\n"),
    );
    site.write("web.yaml", &yaml);
    site.apply(&[]);
    assert_eq!(ps(&site, "app=web,release=true"), set(&[&name]));
    assert_eq!(ps(&site, "build=007"), set(&[&name]));

    for args in [
        vec!["ps", "-l", "app=web"],
        vec!["inspect", name.as_str()],
        vec!["inspect", "-l", "app=web"],
    ] {
        let json: Value =
            serde_json::from_str(&site.ok(&[args.clone(), vec!["-o", "json"]].concat()))
                .expect("JSON");
        let yaml = site.ok(&[args.clone(), vec!["-o", "yaml"]].concat());
        let stream = berth::manifest::yaml::parse_stream(&yaml);
        assert!(stream.errors.is_empty(), "{yaml}\n{:?}", stream.errors);
        assert_eq!(stream.documents.len(), 1, "{yaml}");
        assert_eq!(stream.documents[0].to_json(), json, "{args:?}:\n{yaml}");
    }
}

#[test]
fn logs_of_two_containers_are_prefixed_interleaved_by_time_and_cut_by_since_and_until() {
    if !ready("logs_of_two_containers_are_prefixed_interleaved_by_time_and_cut_by_since_and_until")
    {
        return;
    }
    let instance = Instance::with_busybox();
    let sync = instance.path().join("sync");
    fs::create_dir_all(&sync).unwrap();
    let short = instance.unique_name("lg");
    let long = instance.unique_name("lglonger");
    let label = format!(
        "logs={}",
        std::process::id() % 100_000 * 1000 + common::instance::serial()
    );
    start_gated(&instance, &short, &[&label], &sync, &gated("short", "go"));
    start_gated(&instance, &long, &[&label], &sync, &gated("long", "go"));
    wait_for_line(&instance, &short, "short early");
    wait_for_line(&instance, &long, "long early");
    // Every early line is before the cut, every late one after.
    let cut = format_timestamp(berth::state::clock::since_epoch());
    std::thread::sleep(Duration::from_millis(20));
    fs::write(sync.join("go"), "").unwrap();
    wait_for_state(&instance, &short, "exited");
    wait_for_state(&instance, &long, "exited");

    let width = long.len();
    let prefix = |name: &str| format!("{name:<width$} | ");
    let all = instance.ok(&["logs", "-t", &short, &long]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 4, "{all}");
    let mut times = Vec::new();
    for line in &lines {
        let (name, rest) = if line.starts_with(&prefix(&short)) {
            (&short, &line[prefix(&short).len()..])
        } else {
            assert!(line.starts_with(&prefix(&long)), "{line:?}");
            (&long, &line[prefix(&long).len()..])
        };
        let (time, text) = rest.split_once(' ').expect("TIME TEXT");
        assert!(text.ends_with("early") || text.ends_with("late"), "{line}");
        assert_eq!(name == &short, text.starts_with("short"), "{line}");
        times.push(time.to_string());
    }
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "interleaved by time:\n{all}");
    assert!(lines[..2].iter().all(|l| l.ends_with("early")), "{all}");

    // The same by selector, without timestamps; --since and --until cut at
    // the moment between the early and the late lines.
    let selected = instance.ok(&["logs", "-l", &label]);
    let texts: Vec<&str> = selected
        .lines()
        .map(|l| l.rsplit(" | ").next().unwrap())
        .collect();
    assert_eq!(texts.len(), 4, "{selected}");
    let since = instance.ok(&["logs", "-l", &label, "--since", &cut]);
    let late: BTreeSet<String> = since.lines().map(str::to_string).collect();
    assert_eq!(
        late,
        BTreeSet::from([
            format!("{}long late", prefix(&long)),
            format!("{}short late", prefix(&short))
        ]),
        "{since}"
    );
    let until = instance.ok(&["logs", &short, &long, "--until", &cut]);
    assert_eq!(until.lines().count(), 2, "{until}");
    assert!(until.lines().all(|l| l.ends_with("early")), "{until}");

    // One container keeps today's output: no prefix, unless asked.
    assert_eq!(instance.ok(&["logs", &short]), "short early\nshort late\n");
    assert_eq!(
        instance.ok(&["logs", "--prefix", &short]),
        format!("{short} | short early\n{short} | short late\n")
    );
    // Piped, nothing is coloured.
    for text in [&all, &selected, &since] {
        assert!(!text.contains('\x1b'), "{text:?}");
    }
}

/// Kills a follower the test started if it is still running.
struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn follow_by_selector_prints_a_late_line_of_either_container_and_ends_when_both_exit() {
    if !ready("follow_by_selector_prints_a_late_line_of_either_container_and_ends_when_both_exit") {
        return;
    }
    let instance = Instance::with_busybox();
    let sync = instance.path().join("sync");
    fs::create_dir_all(&sync).unwrap();
    let first = instance.unique_name("fa");
    let second = instance.unique_name("fb");
    let label = format!(
        "follow={}-{}",
        std::process::id(),
        common::instance::serial()
    );
    let script = |name: &str, go: &str| {
        format!(
            "{}; while [ ! -e /sync/end ]; do sleep 0.05; done; echo {name} bye",
            gated(name, go)
        )
    };
    start_gated(
        &instance,
        &first,
        &[&label],
        &sync,
        &script("first", "go-first"),
    );
    start_gated(
        &instance,
        &second,
        &[&label],
        &sync,
        &script("second", "go-second"),
    );
    wait_for_line(&instance, &first, "first early");
    wait_for_line(&instance, &second, "second early");

    let mut follower = Follower(
        instance
            .command(&["logs", "-f", "-l", &label])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("berth logs -f runs"),
    );
    let stdout = follower.0.stdout.take().unwrap();
    let (lines, received) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let expect = |suffix: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = received
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line ending in {suffix:?} came"));
            if line.ends_with(suffix) {
                return line;
            }
        }
    };
    expect("first early");
    expect("second early");
    // The second writes first, then the first: each line appears as it comes.
    fs::write(sync.join("go-second"), "").unwrap();
    let line = expect("second late");
    assert!(line.starts_with(&format!("{second} | ")), "{line}");
    fs::write(sync.join("go-first"), "").unwrap();
    let line = expect("first late");
    assert!(
        line.starts_with(&format!("{first:<width$} | ", width = second.len())),
        "{line}"
    );
    // Both exit: the follower prints their last lines and ends.
    fs::write(sync.join("end"), "").unwrap();
    expect("bye");
    expect("bye");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = follower.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "logs -f kept following exited containers"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
}

#[test]
fn inspect_text_summarises_the_container_without_escape_codes() {
    if !ready("inspect_text_summarises_the_container_without_escape_codes") {
        return;
    }
    let instance = Instance::with_busybox();
    let name = instance.unique_name("it");
    let data = instance.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let volume = format!("{}:/data:ro", data.display());
    instance.start(&name, &["-l", "app=web", "-v", &volume], &["sleep", "300"]);
    wait_for_state(&instance, &name, "running");
    let pid = instance.inspect(&name)["status"]["pid"].clone();

    let text = instance.ok(&["inspect", "-o", "text", &name]);
    for expected in [
        format!("Name:     {name}\n"),
        format!("State:    running (pid {pid})\n"),
        format!("Image:    {}", instance.busybox()),
        "Origin:   berth run\n".to_string(),
        "Created:  ".to_string(),
        "Started:  ".to_string(),
        "Restarts: 0\n".to_string(),
        "Ports:    none\n".to_string(),
        "Networks: none\n".to_string(),
        format!("Mounts:\n  {} -> /data (bind, ro)\n", data.display()),
        "Labels:\n  app=web\n".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} missing in:\n{text}");
    }
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(
        !text.trim_start().starts_with('{'),
        "text, not JSON:\n{text}"
    );
    // JSON stays the default.
    let default: Value = serde_json::from_str(&instance.ok(&["inspect", &name])).expect("JSON");
    assert_eq!(default["record"]["labels"]["app"], "web");
}
