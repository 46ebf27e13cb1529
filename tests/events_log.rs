//! The events log end to end, as root: `berth apply` and a container's
//! shim append to one log that `berth events` reads (with its filters and
//! `--follow`) and `berth inspect` shows a container's share of. Before the
//! log, apply wrote one file per object that only inspect read, and the
//! shim's restarts were recorded nowhere but its status.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::site::{container_yaml, Site};
use common::{host, prereq};
use serde_json::Value;

/// A container that restarts always, its env saying `greeting`.
fn web(name: &str, greeting: &str) -> String {
    container_yaml(
        name,
        &format!(
            "  networkMode: none\n  command: [sleep, '3600']\n  stopGracePeriod: 1s\n  \
             env: {{GREETING: {greeting}}}\n  restart:\n    policy: always\n"
        ),
    )
}

/// `berth events -o json EXTRA...`, one JSON object a line.
fn events(site: &Site, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["events", "-o", "json"];
    args.extend_from_slice(extra);
    site.ok(&args)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["kind"].as_str()).collect()
}

/// The first event of `kind` about `name`.
fn find<'a>(events: &'a [Value], kind: &str, name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == kind && e["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} event for {name}: {events:#?}"))
}

/// Waits up to 20 s for the `n`th `restarted` event of `name`.
fn wait_for_restart(site: &Site, name: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let restarts = events(site, &["--kind", "restarted", "--name", name]);
        if let Some(event) = restarts.get(n - 1) {
            return event.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no restart {n} of {name} recorded: {restarts:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the container's init, by the pid berth recorded for it.
fn kill_init(site: &Site, name: &str) {
    let pid = site.pid_of(name);
    host::kill9(pid);
    assert!(host::wait_gone(pid, Duration::from_secs(20)), "{pid} lives");
}

/// `berth events --follow` in the background; its lines arrive on the channel.
struct Following {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Following {
    fn start(site: &Site, extra: &[&str]) -> Following {
        let mut args = vec!["events", "--follow", "-o", "json"];
        args.extend_from_slice(extra);
        let mut child = site
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("berth runs");
        let stdout = child.stdout.take().expect("piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Following { child, lines }
    }

    /// The next event it prints, waiting up to 20 s.
    fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("berth events --follow printed nothing new");
        serde_json::from_str(&line).expect("one JSON object a line")
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn apply_and_the_shim_append_to_one_log_that_events_and_inspect_read() {
    let test = "apply_and_the_shim_append_to_one_log_that_events_and_inspect_read";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("ev");
    let name = format!("ev-{}", site.tag);
    site.write("web.yaml", &web(&name, "hello"));
    site.apply(&[]);
    let all = events(&site, &[]);
    let created = find(&all, "created", &name);
    assert_eq!(created["target"], "container");
    assert!(
        created["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("/manifests")),
        "the manifest set is the source: {created}"
    );

    site.write("web.yaml", &web(&name, "bonjour"));
    site.apply(&[]);
    let all = events(&site, &[]);
    let replaced = find(&all, "replaced", &name).clone();
    assert_eq!(replaced["reason"], "spec.env changed", "{replaced}");
    assert!(replaced["seq"].as_u64() > created["seq"].as_u64());

    // The shim sees the death of the container's init and restarts it.
    let following = Following::start(&site, &["--name", &name]);
    let history: Vec<Value> = (0..2).map(|_| following.next()).collect();
    assert_eq!(kinds(&history), ["created", "replaced"]);
    kill_init(&site, &name);
    let restarted = wait_for_restart(&site, &name, 1);
    assert_eq!(restarted["exitCode"], 137, "{restarted}");
    assert_eq!(restarted["source"], "shim");
    assert!(
        restarted["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("restart 1: it was killed by signal 9")),
        "{restarted}"
    );
    assert_eq!(following.next(), restarted, "--follow printed it once");
    kill_init(&site, &name);
    let second = wait_for_restart(&site, &name, 2);
    assert_eq!(following.next(), second);
    drop(following);

    // inspect shows the container's share, the reconciler's verbs kept.
    let inspect = site.inspect(&name);
    let shown = inspect["events"].as_array().expect("events").clone();
    assert_eq!(
        kinds(&shown),
        ["created", "replaced", "restarted", "restarted"]
    );
    assert_eq!(shown[0]["verb"], "create");
    assert_eq!(shown[1]["verb"], "replace");
    assert_eq!(shown[2]["exitCode"], 137);
    assert_eq!(inspect["lastPlanReason"], "spec.env changed");

    // --since: a time in unix ms, an RFC 3339 time, a duration ago.
    let since = replaced["unixMs"].as_u64().unwrap().to_string();
    let recent = events(&site, &["--since", &since, "--name", &name]);
    assert_eq!(kinds(&recent), ["replaced", "restarted", "restarted"]);
    let in_the_future = events(&site, &["--since", "2999-01-01T00:00:00Z"]);
    assert!(in_the_future.is_empty(), "{in_the_future:#?}");
    let hour = events(&site, &["--since", "1h", "--name", &name]);
    assert_eq!(hour.len(), 4, "{hour:#?}");

    // For people: one line each.
    let text = site.ok(&["events", "--name", &name, "--kind", "replaced"]);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!("Z  replaced  Container {name}: spec.env changed")),
        "{text}"
    );
}
