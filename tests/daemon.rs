//! `berth daemon --watch DIR` end to end as root: the daemon follows a
//! manifest tree as people change it (add, edit, delete, a broken edit, a
//! git-sync link swap, the tree removed), repairs drift by itself, acts on
//! a shim's news at once, and a restarted daemon adopts what runs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::site::{container_yaml, Site};
use common::{host, prereq};
use serde_json::Value;

/// Generous: the machine is busy; every wait ends as soon as it is met.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `berth daemon`, stopped with SIGTERM (by its pid) on drop.
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn start(site: &Site, watch: &Path, extra: &[&str]) -> Daemon {
        let log = site
            .path()
            .join(format!("daemon-{}.log", common::instance::serial()));
        let watch = watch.display().to_string();
        let mut args = vec![
            "--log-level",
            "info",
            "daemon",
            "--allow-untrusted-manifests",
            "--watch",
            &watch,
            "--debounce",
            "100ms",
        ];
        args.extend_from_slice(extra);
        let child = site
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("berth daemon starts");
        Daemon {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the daemon's exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        host::signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                host::kill9(child.id());
                panic!("the daemon ignored SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// Waits until `check` holds; the panic shows what the daemon logged.
fn until(daemon: &Daemon, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "never: {what}\ndaemon log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(site: &Site) -> Value {
    let output = site.run(&["status", "-o", "json"]);
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

/// The events of the state root, oldest first.
fn events(site: &Site) -> Vec<Value> {
    site.ok(&["events", "-o", "json"])
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn count_events(site: &Site, kind: &str, name: Option<&str>) -> usize {
    events(site)
        .iter()
        .filter(|e| e["kind"] == kind && name.is_none_or(|n| e["name"] == n))
        .count()
}

/// The container's pid while it runs, else None.
fn running_pid(site: &Site, name: &str) -> Option<u64> {
    let output = site.run(&["inspect", name]);
    let inspect: Value = serde_json::from_slice(&output.stdout).ok()?;
    (inspect["status"]["phase"] == "running")
        .then(|| inspect["status"]["pid"].as_u64())
        .flatten()
}

fn sleeper(name: &str, env: &str) -> String {
    container_yaml(
        name,
        &format!("  networkMode: none\n  command: [sleep, '3600']\n  env:\n    V: '{env}'\n"),
    )
}

fn exists(site: &Site, name: &str) -> bool {
    site.run(&["inspect", name]).status.success()
}

#[test]
fn the_daemon_follows_adds_edits_and_deletes() {
    let test = "the_daemon_follows_adds_edits_and_deletes";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("da");
    let (a, b) = (format!("a-{}", site.tag), format!("b-{}", site.tag));
    site.write("a.yaml", &sleeper(&a, "1"));
    let daemon = Daemon::start(&site, &site.manifests, &["--prune", "--resync", "1h"]);
    until(&daemon, "a runs", || running_pid(&site, &a).is_some());

    site.write("b.yaml", &sleeper(&b, "1"));
    until(&daemon, "an added manifest runs", || {
        running_pid(&site, &b).is_some()
    });
    let before = running_pid(&site, &b).unwrap();

    site.write("b.yaml", &sleeper(&b, "2"));
    until(&daemon, "an edited manifest replaces its container", || {
        running_pid(&site, &b).is_some_and(|pid| pid != before)
    });
    assert_eq!(site.sh(&b, "echo $V").trim(), "2");
    until(&daemon, "the replace is an event", || {
        count_events(&site, "replaced", Some(&b)) == 1
    });

    site.remove("b.yaml");
    until(&daemon, "a deleted manifest's container is pruned", || {
        !exists(&site, &b)
    });
    assert!(running_pid(&site, &a).is_some(), "the rest stays");
    let status = status(&site);
    assert_eq!(status["running"], true, "{status}");
    assert!(
        status["generation"]["number"].as_u64().unwrap() >= 4,
        "{status}"
    );
}

#[test]
fn an_invalid_generation_changes_nothing_until_it_is_fixed() {
    let test = "an_invalid_generation_changes_nothing_until_it_is_fixed";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("dv");
    let name = format!("v-{}", site.tag);
    site.write("c.yaml", &sleeper(&name, "1"));
    let daemon = Daemon::start(&site, &site.manifests, &["--prune", "--resync", "1h"]);
    until(&daemon, "it runs", || running_pid(&site, &name).is_some());
    let pid = running_pid(&site, &name).unwrap();
    until(&daemon, "generation 1 applied", || {
        status(&site)["generation"]["appliedUnixMs"].is_u64()
    });

    // An edit with a typo in a field name: the whole generation is refused.
    let broken = sleeper(&name, "2").replace("networkMode", "netwrkMode");
    site.write("c.yaml", &broken);
    until(&daemon, "the rejection is in status", || {
        !status(&site)["rejected"].is_null()
    });
    let status_now = status(&site);
    let errors = status_now["rejected"]["errors"].to_string();
    assert!(errors.contains("c.yaml:"), "file:line:col: {errors}");
    assert!(errors.contains("netwrkMode"), "{errors}");
    assert_eq!(status_now["generation"]["number"], 1, "{status_now}");
    until(&daemon, "the rejection is an event", || {
        count_events(&site, "generation-rejected", None) == 1
    });
    assert_eq!(running_pid(&site, &name), Some(pid), "nothing changed");

    site.write("c.yaml", &sleeper(&name, "2"));
    until(&daemon, "the fixed generation applies", || {
        running_pid(&site, &name).is_some_and(|p| p != pid)
    });
    assert_eq!(site.sh(&name, "echo $V").trim(), "2");
}

#[test]
fn a_git_sync_link_swap_applies_once_and_a_removed_tree_deletes_nothing() {
    let test = "a_git_sync_link_swap_applies_once_and_a_removed_tree_deletes_nothing";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("dg");
    let name = format!("g-{}", site.tag);
    // git-sync's layout: DIR -> rev-N, each a full checkout beside the
    // images directory the manifests name relatively.
    let top = site.path();
    let (rev1, rev2) = (top.join("rev-1"), top.join("rev-2"));
    for (rev, env) in [(&rev1, "1"), (&rev2, "2")] {
        fs::create_dir_all(rev).unwrap();
        fs::write(rev.join("c.yaml"), sleeper(&name, env)).unwrap();
    }
    let link = top.join("current");
    std::os::unix::fs::symlink("rev-1", &link).unwrap();
    let daemon = Daemon::start(&site, &link, &["--prune", "--resync", "2s"]);
    until(&daemon, "it runs", || running_pid(&site, &name).is_some());
    let pid = running_pid(&site, &name).unwrap();

    std::os::unix::fs::symlink("rev-2", top.join("next")).unwrap();
    fs::rename(top.join("next"), &link).unwrap();
    until(&daemon, "the swapped tree applies", || {
        running_pid(&site, &name).is_some_and(|p| p != pid)
    });
    assert_eq!(site.sh(&name, "echo $V").trim(), "2");
    let swapped = running_pid(&site, &name).unwrap();
    // Two resyncs later, still once.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(count_events(&site, "replaced", Some(&name)), 1);
    assert_eq!(count_events(&site, "generation-applied", None), 2);
    assert_eq!(running_pid(&site, &name), Some(swapped));

    // The tree vanishes (a failed sync, an unmounted disk): nothing is
    // deleted, through resyncs too.
    fs::remove_file(&link).unwrap();
    until(&daemon, "the missing tree is rejected", || {
        status(&site)["rejected"]["errors"]
            .to_string()
            .contains("does not exist")
    });
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(running_pid(&site, &name), Some(swapped), "nothing deleted");
    assert_eq!(count_events(&site, "pruned", None), 0);
}

#[test]
fn drift_is_repaired_and_a_restarted_daemon_restarts_nothing() {
    let test = "drift_is_repaired_and_a_restarted_daemon_restarts_nothing";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("dr");
    let name = format!("r-{}", site.tag);
    site.write("c.yaml", &sleeper(&name, "1"));
    let mut daemon = Daemon::start(&site, &site.manifests, &["--resync", "2s"]);
    until(&daemon, "it runs", || running_pid(&site, &name).is_some());

    // Drift: the container and its shim are killed behind berth's back.
    let (shim, init) = (site.shim_pid(&name), running_pid(&site, &name).unwrap());
    host::kill9(shim);
    host::kill9(init as u32);
    assert!(host::wait_gone(init as u32, PATIENCE));
    until(&daemon, "drift is repaired", || {
        running_pid(&site, &name).is_some_and(|p| p != init)
    });
    let pid = running_pid(&site, &name).unwrap();

    assert!(daemon.stop().success(), "SIGTERM ends the daemon with 0");
    assert_eq!(
        running_pid(&site, &name),
        Some(pid),
        "containers outlive it"
    );
    assert_eq!(status(&site)["running"], false);
    let events_before = events(&site).len();

    let again = Daemon::start(&site, &site.manifests, &["--resync", "2s"]);
    until(&again, "the new daemon made a pass", || {
        status(&site)["lastPass"]["unixMs"].is_u64() && status(&site)["running"] == true
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        running_pid(&site, &name),
        Some(pid),
        "adopted, not restarted"
    );
    let new_events: Vec<Value> = events(&site).split_off(events_before);
    assert!(
        new_events
            .iter()
            .all(|e| e["kind"] != "created" && e["kind"] != "replaced"),
        "{new_events:?}"
    );
}

/// A dependent waits for its dependency's health; with no resync in sight
/// the shim's status change is what wakes the daemon.
#[test]
fn a_dependency_turning_healthy_is_acted_on_without_a_resync() {
    let test = "a_dependency_turning_healthy_is_acted_on_without_a_resync";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("dh");
    let (db, web) = (format!("db-{}", site.tag), format!("web-{}", site.tag));
    site.write(
        "db.yaml",
        &container_yaml(
            &db,
            "  networkMode: none\n  command: [sh, -c, 'sleep 2; touch /tmp/ready; exec sleep 3600']\n  healthcheck:\n    exec: [test, -f, /tmp/ready]\n    interval: 300ms\n",
        ),
    );
    site.write(
        "web.yaml",
        &container_yaml(
            &web,
            &format!("  networkMode: none\n  command: [sleep, '3600']\n  dependsOn:\n  - name: {db}\n    condition: healthy\n"),
        ),
    );
    let daemon = Daemon::start(&site, &site.manifests, &["--resync", "1h"]);
    until(
        &daemon,
        "the dependent starts once its dependency is healthy",
        || running_pid(&site, &web).is_some(),
    );
    // Then the daemon is idle: db's health checks (every 300 ms) rewrite its
    // status file, but nothing a pass acts on changes, and berth's own reads
    // of status files and manifests wake nothing.
    let last_pass = || status(&site)["lastPass"]["unixMs"].as_u64();
    let mut before = last_pass();
    let deadline = Instant::now() + PATIENCE;
    loop {
        std::thread::sleep(Duration::from_secs(3));
        let after = last_pass();
        if after == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never went idle:\n{}",
            daemon.log()
        );
        before = after;
    }
}

/// A scheduled Job runs at its cron tick under the daemon (not when it is
/// declared), with no resync in sight: the daemon wakes for the tick.
#[test]
fn a_scheduled_job_runs_at_its_tick() {
    let test = "a_scheduled_job_runs_at_its_tick";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("ds");
    let job = format!("s-{}", site.tag);
    site.write(
        "job.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Job\nmetadata:\n  name: {job}\nspec:\n  schedule: '* * * * *'\n  concurrencyPolicy: Forbid\n  template:\n    image: oci-layout:../images/busybox\n    networkMode: none\n    command: [echo, tick]\n"
        ),
    );
    let daemon = Daemon::start(&site, &site.manifests, &["--resync", "1h"]);
    let record_path = site.root().join(format!("jobs/{job}.json"));
    let record = || -> Value {
        fs::read_to_string(&record_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null)
    };
    until(&daemon, "the Job is declared", || record()["run"].is_u64());
    // A tick comes within a minute; wait for two, on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(150);
    while record()["phase"] != "complete" || record()["run"].as_u64() < Some(1) {
        assert!(
            Instant::now() < deadline,
            "no run at a tick: {}\n{}",
            record(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let record = record();
    assert_eq!(record["trigger"], "schedule", "{record}");
    assert!(
        record["scheduleTick"].as_u64().unwrap() % 60 == 0,
        "{record}"
    );
    assert_eq!(record["attempts"][0]["exitCode"], 0, "{record}");
}
