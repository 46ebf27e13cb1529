//! The Job CLI end to end, as root: `berth jobs` lists a Job from its
//! record (run, status, counts, start and finish), `berth logs JOB --index
//! N` prints that index's output, and `berth job run` starts a new run,
//! with `-f` by applying the manifests right there, without it at the next
//! apply (no daemon runs) or at once by the daemon that follows the Job's
//! manifests; the earlier run is kept in the history. The logs of an
//! attempt whose container ttlAfterFinished removed say so.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::instance::Instance;
use common::site::Site;
use common::{host, prereq};
use serde_json::Value;

/// Generous: the machine is busy; every wait ends as soon as it is met.
const PATIENCE: Duration = Duration::from_secs(60);

/// `berth daemon --watch MANIFESTS` with a resync far away (its timer does
/// not start the run); stopped with SIGTERM (by its pid) on drop.
struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(site: &Site) -> Daemon {
        let log = site.path().join("daemon.log");
        let watch = site.manifests.display().to_string();
        let child = site
            .command(&[
                "daemon",
                "--allow-untrusted-manifests",
                "--watch",
                &watch,
                "--resync",
                "1h",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("berth daemon starts");
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        host::signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + PATIENCE;
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                host::kill9(self.child.id());
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An Indexed Job of two completions, each printing its index.
fn indexed_job(name: &str) -> String {
    format!(
        "apiVersion: berth/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  \
         completions: 2\n  parallelism: 2\n  completionMode: Indexed\n  template:\n    \
         image: oci-layout:../images/busybox\n    networkMode: none\n    \
         command: [\"sh\", \"-c\", \"echo task $BERTH_JOB_INDEX\"]\n"
    )
}

/// The Job's row of `berth jobs -o json`.
fn job_row(site: &Site, name: &str) -> Value {
    let rows: Value =
        serde_json::from_str(&site.ok(&["jobs", "-o", "json"])).expect("jobs prints JSON");
    rows.as_array()
        .expect("jobs prints a list")
        .iter()
        .find(|row| row["name"] == name)
        .unwrap_or_else(|| panic!("berth jobs does not list {name}: {rows}"))
        .clone()
}

/// `2026-12-02T06:12:03Z`.
fn is_rfc3339_to_the_second(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| text.len() == 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T')
}

#[test]
fn jobs_lists_logs_shows_an_index_and_job_run_starts_a_new_run() {
    if !prereq::require_apply("jobs_lists_logs_shows_an_index_and_job_run_starts_a_new_run") {
        return;
    }
    let site = Site::new("jc");
    let name = format!("batch-{}", site.tag);
    site.write("job.yaml", &indexed_job(&name));

    let applied = site.apply(&["--wait"]);
    assert!(
        applied.contains(&format!("completed Job {name}: run 1: 2 succeeded")),
        "{applied}"
    );

    let row = job_row(&site, &name);
    assert_eq!(row["run"], 1, "{row}");
    assert_eq!(row["status"], "complete", "{row}");
    assert_eq!(row["succeeded"], 2, "{row}");
    assert_eq!(row["completions"], 2, "{row}");
    assert_eq!(row["failed"], 0, "{row}");
    assert!(is_rfc3339_to_the_second(&row["started"]), "{row}");
    assert!(is_rfc3339_to_the_second(&row["finished"]), "{row}");
    assert_eq!(row["next"], Value::Null, "{row}");
    assert_eq!(row["attempts"].as_array().map(Vec::len), Some(2), "{row}");
    let table = site.ok(&["jobs"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("complete") && l.contains("2/2")),
        "{table}"
    );

    assert_eq!(site.ok(&["logs", &name, "--index", "1"]), "task 1\n");
    assert_eq!(site.ok(&["logs", &name, "--index", "0"]), "task 0\n");
    let missing = site.fails(&["logs", &name, "--index", "7"]);
    assert!(missing.contains("has no attempt with index 7"), "{missing}");

    // -f: the run begins in this very command, which waits for its outcome.
    let manifests = site.manifests.display().to_string();
    let ran = site.ok(&[
        "job",
        "run",
        &name,
        "--allow-untrusted-manifests",
        "-f",
        &manifests,
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert!(
        ran.contains(&format!("completed Job {name}: run 2: 2 succeeded")),
        "{ran}"
    );
    let row = job_row(&site, &name);
    assert_eq!(row["run"], 2, "{row}");
    assert_eq!(row["status"], "complete", "{row}");
    let history = row["history"].as_array().expect("a history");
    assert_eq!(history.len(), 1, "{row}");
    assert_eq!(history[0]["run"], 1, "{row}");
    assert_eq!(history[0]["phase"], "complete", "{row}");
    assert_eq!(history[0]["succeeded"], 2, "{row}");

    // No daemon, no -f: the request waits for the next apply.
    let requested = site.ok(&["job", "run", &name]);
    assert!(requested.contains("no daemon runs"), "{requested}");
    assert_eq!(job_row(&site, &name)["run"], 2, "nothing ran yet");
    let applied = site.apply(&["--wait"]);
    assert!(
        applied.contains(&format!("completed Job {name}: run 3: 2 succeeded")),
        "{applied}"
    );
    assert_eq!(job_row(&site, &name)["history"][1]["run"], 2);
}

#[test]
fn job_run_of_a_job_berth_does_not_know_fails_saying_so() {
    let instance = Instance::new();
    let error = instance.fails(&["job", "run", "nope"]);
    assert!(
        error.contains("Job nope is not known: apply its manifest first"),
        "{error}"
    );
}

#[test]
fn job_run_asks_the_daemon_that_follows_the_job_to_start_the_run_now() {
    if !prereq::require_apply("job_run_asks_the_daemon_that_follows_the_job_to_start_the_run_now") {
        return;
    }
    let site = Site::new("jd");
    let name = format!("batch-{}", site.tag);
    site.write("job.yaml", &indexed_job(&name));
    let daemon = Daemon::start(&site);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let output = site.run(&["jobs", "-o", "json"]);
        let rows: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        let done = rows.as_array().into_iter().flatten().any(|row| {
            row["name"] == name.as_str() && row["run"] == 1 && row["status"] == "complete"
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never completed run 1:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The daemon follows the Job's manifests: it is asked for a pass, and
    // says it took the request ("starts it now").
    let output = site.run(&["job", "run", &name, "--wait", "--timeout", "60s"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        daemon.log()
    );
    assert!(stdout.contains("the daemon starts it now"), "{stdout}");
    assert!(
        stdout.contains(&format!("completed Job {name}: run 2: 2 succeeded")),
        "{stdout}"
    );
    let row = job_row(&site, &name);
    assert_eq!(row["run"], 2, "{row}");
    assert_eq!(row["history"][0]["run"], 1, "{row}");
}

#[test]
fn logs_of_an_attempt_whose_container_ttl_removed_say_so() {
    if !prereq::require_apply("logs_of_an_attempt_whose_container_ttl_removed_say_so") {
        return;
    }
    let site = Site::new("jt");
    let name = format!("once-{}", site.tag);
    site.write(
        "job.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  \
             ttlAfterFinished: 1s\n  template:\n    image: oci-layout:../images/busybox\n    \
             networkMode: none\n    command: [\"echo\", \"done\"]\n"
        ),
    );
    site.apply(&["--wait"]);
    // The ttl passes while no berth runs; the next apply removes the container.
    let deadline = Instant::now() + PATIENCE;
    while site
        .run(&["inspect", &format!("{name}-1-1")])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the ttl never removed the attempt"
        );
        std::thread::sleep(Duration::from_millis(500));
        site.apply(&[]);
    }
    let error = site.fails(&["logs", &name]);
    assert!(
        error.contains(&format!(
            "the container {name}-1-1 of attempt 1 of run 1 of Job {name} was removed by ttlAfterFinished"
        )),
        "{error}"
    );
    assert_eq!(job_row(&site, &name)["status"], "complete");
}
