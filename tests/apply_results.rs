//! What `berth apply` says of each container, end to end as root.
//!
//! Honest results: a container that exits 7 at once, or after two seconds,
//! makes `apply --wait` fail naming it and 7 (before, the first gave exit 1
//! without the 7 and the second "converged" and exit 0); a container
//! declared to run once that exits 0 is a success; a missing binary's start
//! error shows in apply's output and in `ps`, not only in `inspect`.
//!
//! Configuration vs data: a container writing into a read-write bind
//! directory of the manifest tree is not replaced for it (before, every
//! plan said replace: 9 replacements in one `apply --wait`), while a changed
//! file in a read-only bind directory replaces exactly its container.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::prereq;
use common::site::{container_yaml, Site};

fn ready(test: &str) -> bool {
    prereq::require_apply(test)
}

/// stdout and stderr of a berth command, one after the other.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `apply --wait` of the site's tree, expected to fail cleanly (exit 1).
fn apply_wait_fails(site: &Site) -> String {
    let output = site.run_set("apply", &["--wait", "--timeout", "60s"]);
    let text = text(&output);
    assert_eq!(output.status.code(), Some(1), "expected a failure:\n{text}");
    text
}

/// A container of the site's tree: `command` run by `sh -c`, no network,
/// restart policy `policy` (with a short backoff; on-failure restarts once).
fn shell_container(name: &str, command: &str, policy: &str) -> String {
    let retries = if policy == "on-failure" {
        ", maxRetries: 1"
    } else {
        ""
    };
    container_yaml(
        name,
        &format!(
            "  command: [sh, -c, {command:?}]\n  networkMode: none\n  stopGracePeriod: 1s\n  \
             restart: {{policy: {policy}{retries}, backoff: {{initial: 100ms}}}}\n"
        ),
    )
}

#[test]
fn exit_7_at_once_fails_apply_wait_naming_the_container_and_its_code() {
    if !ready("exit_7_at_once_fails_apply_wait_naming_the_container_and_its_code") {
        return;
    }
    let site = Site::new("rn");
    let never = format!("now-{}", site.tag);
    let retried = format!("retry-{}", site.tag);
    site.write("now.yaml", &shell_container(&never, "exit 7", "never"));
    // on-failure restarts it once (maxRetries 1), then it is done for.
    site.write(
        "retry.yaml",
        &shell_container(&retried, "exit 7", "on-failure"),
    );
    let out = apply_wait_fails(&site);
    assert!(
        out.contains(&format!(
            "failed Container {never}: it exited with code 7 and will not restart (restart: never)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "failed Container {retried}: it exited with code 7 and will not restart"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("{never} (exit code 7)")), "{out}");
    assert!(out.contains(&format!("{retried} (exit code 7)")), "{out}");
    assert!(!out.contains("converged"), "{out}");

    // -o json is as true to the outcome as the text: not converged.
    let output = site.run_set("apply", &["--wait", "--timeout", "60s", "-o", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["converged"], false, "{report}");
    let failed = report["failed"].as_array().expect("a list of what failed");
    assert!(failed.iter().any(|f| f == never.as_str()), "{report}");
}

#[test]
fn exit_7_after_two_seconds_fails_apply_wait_naming_the_container_and_its_code() {
    if !ready("exit_7_after_two_seconds_fails_apply_wait_naming_the_container_and_its_code") {
        return;
    }
    let site = Site::new("rl");
    let later = format!("later-{}", site.tag);
    let web = format!("web-{}", site.tag);
    // Declared to run once: apply --wait waits for it to end, however long
    // that takes, so no settle time decides this.
    site.write(
        "later.yaml",
        &shell_container(&later, "sleep 2; exit 7", "never"),
    );
    site.write(
        "web.yaml",
        &shell_container(&web, "exec sleep 100000", "always"),
    );
    let started = Instant::now();
    let out = apply_wait_fails(&site);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the wait saw it end: {out}"
    );
    assert!(
        out.contains(&format!(
            "failed Container {later}: it exited with code 7 and will not restart (restart: never)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("up Container {web}: running")),
        "{out}"
    );
    assert!(out.contains(&format!("{later} (exit code 7)")), "{out}");
    assert!(!out.contains("converged"), "{out}");
}

#[test]
fn a_run_once_container_that_exits_0_is_a_success() {
    if !ready("a_run_once_container_that_exits_0_is_a_success") {
        return;
    }
    let site = Site::new("ro");
    let once = format!("once-{}", site.tag);
    let until = format!("until-{}", site.tag);
    site.write(
        "once.yaml",
        &shell_container(&once, "sleep 1; exit 0", "never"),
    );
    site.write(
        "until.yaml",
        &shell_container(&until, "exit 0", "on-failure"),
    );
    let out = site.apply(&["--wait"]);
    for name in [&once, &until] {
        assert!(
            out.contains(&format!(
                "completed Container {name}: ran once and exited with code 0"
            )),
            "{out}"
        );
    }
    assert!(out.contains("converged"), "{out}");
    // Applying again: still a success, nothing is started again.
    let again = site.apply(&["--wait"]);
    assert!(
        again.contains(&format!("completed Container {once}")),
        "{again}"
    );
    assert!(again.contains("nothing to do"), "{again}");
}

#[test]
fn a_missing_binary_shows_its_start_error_in_apply_and_in_ps() {
    if !ready("a_missing_binary_shows_its_start_error_in_apply_and_in_ps") {
        return;
    }
    let site = Site::new("rb");
    let never = format!("nobin-{}", site.tag);
    let always = format!("retrybin-{}", site.tag);
    let body = |policy: &str| {
        format!(
            "  command: [/no/such/binary]\n  networkMode: none\n  \
             restart: {{policy: {policy}, backoff: {{initial: 100ms, max: 1s}}}}\n"
        )
    };
    site.write("nobin.yaml", &container_yaml(&never, &body("never")));
    site.write("retrybin.yaml", &container_yaml(&always, &body("always")));
    let gist = "exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory";

    // Without --wait too: apply returns once each has started or failed to.
    let output = site.run_set("apply", &["--timeout", "60s"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "failed Container {never}: it could not start: {gist}; it will not restart (restart: never)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{never} (could not start: {gist})")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "waiting Container {always}: restarting: it could not start: {gist}"
        )),
        "{out}"
    );

    let ps = site.ok(&["ps", "-a"]);
    assert!(ps.lines().next().unwrap().ends_with("REASON"), "{ps}");
    for name in [&never, &always] {
        let row = ps
            .lines()
            .find(|line| line.contains(name.as_str()))
            .unwrap_or_else(|| panic!("{name} is listed: {ps}"));
        assert!(row.contains("exec: \"/no/such/binary\""), "{ps}");
    }
    for container in site.ps() {
        assert_eq!(container["reason"], gist, "{container}");
    }

    // --wait waits for the one that may still start, until the deadline
    // (the other's outcome is final already: it is known on the first pass).
    let output = site.run_set("apply", &["--wait", "--timeout", "5s"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "failed Container {never}: it could not start: {gist}"
        )),
        "{out}"
    );
    // Pending, whatever phase of its restart loop the deadline finds it in
    // ("restarting: it could not start: ...", or "starting" while the shim
    // runs the runtime again).
    assert!(
        out.contains(&format!("pending Container {always}: ")),
        "{out}"
    );
}

/// Polls `what` until it holds, for up to 20 seconds.
fn eventually(what: &str, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !holds() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_read_write_bind_dir_is_data_and_a_read_only_one_configuration() {
    if !ready("a_read_write_bind_dir_is_data_and_a_read_only_one_configuration") {
        return;
    }
    let site = Site::new("rd");
    let writer = format!("writer-{}", site.tag);
    let reader = format!("reader-{}", site.tag);
    // It writes into ./data all the time: files and directories.
    site.write(
        "writer.yaml",
        &container_yaml(
            &writer,
            "  command: [sh, -c, \"i=0; while true; do i=$((i+1)); echo $i > /data/count; \
             mkdir -p /data/d$((i % 5)); sleep 0.1; done\"]\n  networkMode: none\n  \
             stopGracePeriod: 1s\n  mounts:\n  - {type: bind, source: ./data, target: /data}\n",
        ),
    );
    site.write(
        "reader.yaml",
        &container_yaml(
            &reader,
            "  command: [sleep, \"100000\"]\n  networkMode: none\n  stopGracePeriod: 1s\n  \
             mounts:\n  - {type: bind, source: ./conf, target: /conf, readOnly: true}\n",
        ),
    );
    site.write("conf/app.conf", "level = 1\n");
    std::fs::create_dir_all(site.manifests.join("data")).unwrap();

    site.apply(&[]);
    let writer_pid = site.pid_of(&writer);
    let reader_pid = site.pid_of(&reader);
    let count = site.manifests.join("data/count");
    let written = || std::fs::read_to_string(&count).unwrap_or_default();
    eventually("the writer writing", || !written().is_empty());
    let first = written();
    eventually("the writer writing more", || written() != first);

    let again = site.apply(&[]);
    assert!(again.contains("nothing to do"), "{again}");
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 0, "what it wrote is no change: {plan}");
    let waited = site.apply(&["--wait"]);
    assert!(!waited.contains("replace"), "{waited}");
    assert!(
        waited.contains(&format!("up Container {writer}")),
        "{waited}"
    );
    assert_eq!(site.pid_of(&writer), writer_pid, "{waited}");
    assert_eq!(site.pid_of(&reader), reader_pid);

    site.write("conf/app.conf", "level = 2\n");
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "{plan}");
    assert!(
        plan.contains(&reader) && plan.contains("read-only bind mount ./conf changed"),
        "{plan}"
    );
    assert!(!plan.contains(&writer), "only {reader} changes: {plan}");
    let replaced = site.apply(&["--wait"]);
    assert!(
        replaced.contains(&format!("replace Container {reader}")),
        "{replaced}"
    );
    assert_ne!(site.pid_of(&reader), reader_pid, "{replaced}");
    assert_eq!(site.pid_of(&writer), writer_pid, "{replaced}");
    assert_eq!(site.sh(&reader, "cat /conf/app.conf"), "level = 2\n");
}
