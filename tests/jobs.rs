//! Jobs end to end as root: completions and parallelism, retries with a
//! backoff (state kept in a volume), the backoffLimit, activeDeadline,
//! Indexed mode, idempotent re-apply and a new run for a changed spec,
//! ttlAfterFinished, and a Job as a dependency (completed, or failed and
//! blocking).

mod common;

use std::fs;

use common::prereq;
use common::site::Site;
use serde_json::Value;

/// A Job manifest on the site's busybox image: `spec` holds the Job's
/// fields (indented by two spaces), `template` the template's (by four).
fn job_yaml(name: &str, spec: &str, template: &str) -> String {
    format!(
        "apiVersion: berth/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{spec}  template:\n    image: oci-layout:../images/busybox\n    networkMode: none\n{template}"
    )
}

/// Writes a Volume and a Job whose template mounts it at /data and runs
/// `script`; returns the Job's and the volume's names.
fn job_on_a_volume(site: &Site, hint: &str, spec: &str, script: &str) -> (String, String) {
    let (job, volume) = (format!("{hint}-{}", site.tag), format!("v-{}", site.tag));
    site.write(
        "vol.yaml",
        &format!("apiVersion: berth/v1\nkind: Volume\nmetadata:\n  name: {volume}\n"),
    );
    site.write(
        "job.yaml",
        &job_yaml(
            &job,
            spec,
            &format!(
                "    mounts: [{{type: volume, source: {volume}, target: /data}}]\n    command: [sh, -c, '{script}']\n"
            ),
        ),
    );
    (job, volume)
}

/// The Job's record, as berth keeps it.
fn record(site: &Site, job: &str) -> Value {
    let text = fs::read_to_string(site.root().join(format!("jobs/{job}.json")))
        .unwrap_or_else(|e| panic!("no record of Job {job}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn attempts(record: &Value) -> Vec<Value> {
    record["attempts"].as_array().cloned().unwrap_or_default()
}

/// `berth apply --wait`: (succeeded, stdout + stderr).
fn apply_wait(site: &Site) -> (bool, String) {
    let output = site
        .apply_command(&["--wait"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The most attempts whose recorded [start, finish] overlap: each finish is
/// recorded when berth saw the exit, no earlier, so this never undercounts.
fn most_at_once(attempts: &[Value]) -> usize {
    let span = |a: &Value| {
        (
            a["startedUnixMs"].as_u64().unwrap(),
            a["finishedUnixMs"].as_u64().unwrap_or(u64::MAX),
        )
    };
    attempts
        .iter()
        .map(|a| {
            let (start, _) = span(a);
            attempts
                .iter()
                .filter(|b| {
                    let (s, f) = span(b);
                    s <= start && start < f
                })
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn completions_run_at_most_parallelism_at_once_until_done() {
    let test = "completions_run_at_most_parallelism_at_once_until_done";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("jp");
    let job = format!("p-{}", site.tag);
    site.write(
        "job.yaml",
        &job_yaml(
            &job,
            "  completions: 4\n  parallelism: 2\n",
            "    command: [sh, -c, 'sleep 0.5']\n",
        ),
    );
    let (ok, text) = apply_wait(&site);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "completed Job {job}: run 1: 4 succeeded, 0 failed"
        )),
        "{text}"
    );
    let record = record(&site, &job);
    assert_eq!(record["phase"], "complete");
    let attempts = attempts(&record);
    assert_eq!(attempts.len(), 4, "{record}");
    assert!(attempts.iter().all(|a| a["state"] == "succeeded"));
    assert_eq!(most_at_once(&attempts), 2, "{record}");
}

#[test]
fn a_run_that_fails_twice_then_succeeds_completes_with_its_failures_recorded() {
    let test = "a_run_that_fails_twice_then_succeeds_completes_with_its_failures_recorded";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("jr");
    let (job, _) = job_on_a_volume(
        &site,
        "r",
        "  backoffLimit: 3\n  backoff: {initial: 200ms, max: 1s}\n",
        "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; test $n -ge 3",
    );
    let (ok, text) = apply_wait(&site);
    assert!(ok, "{text}");
    assert!(text.contains("1 succeeded, 2 failed"), "{text}");
    let record = record(&site, &job);
    let states: Vec<String> = attempts(&record)
        .iter()
        .map(|a| a["state"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(states, ["failed", "failed", "succeeded"], "{record}");
    let codes: Vec<Value> = attempts(&record)
        .iter()
        .map(|a| a["exitCode"].clone())
        .collect();
    assert_eq!(codes, [Value::from(1), Value::from(1), Value::from(0)]);
    // Each attempt kept its own container (and so its logs and exit code).
    assert_eq!(site.ps().len(), 3);
}

#[test]
fn a_job_that_always_fails_stops_at_its_backoff_limit_and_blocks_its_dependents() {
    let test = "a_job_that_always_fails_stops_at_its_backoff_limit_and_blocks_its_dependents";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("jf");
    let (job, web) = (format!("f-{}", site.tag), format!("w-{}", site.tag));
    site.write(
        "job.yaml",
        &job_yaml(
            &job,
            "  backoffLimit: 2\n  backoff: {initial: 100ms, max: 200ms}\n",
            "    command: [sh, -c, 'exit 7']\n",
        ),
    );
    site.write(
        "web.yaml",
        &common::site::container_yaml(
            &web,
            &format!("  networkMode: none\n  command: [sleep, '3600']\n  dependsOn:\n  - name: {job}\n    condition: completed\n"),
        ),
    );
    let (ok, text) = apply_wait(&site);
    assert!(!ok, "a failed Job fails apply --wait: {text}");
    assert!(text.contains(&format!("failed Job {job}")), "{text}");
    assert!(text.contains("BackoffLimitExceeded"), "{text}");
    let record = record(&site, &job);
    assert_eq!(record["phase"], "failed");
    assert_eq!(
        attempts(&record).len(),
        3,
        "backoffLimit 2: three attempts: {record}"
    );
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains(&format!("Job {job} failed")), "{plan}");
    assert!(
        site.ps().iter().all(|c| c["id"] != web.as_str()),
        "the dependent never started"
    );
    let ps: Value = serde_json::from_str(&site.ok(&["ps", "-a", "-o", "json"])).unwrap();
    let row = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "job" && o["id"] == job.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("ps lists the Job: {ps}"));
    assert_eq!(row["state"], "failed");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .contains("BackoffLimitExceeded"),
        "{row}"
    );
}

#[test]
fn an_active_deadline_fails_the_job_and_stops_its_run() {
    let test = "an_active_deadline_fails_the_job_and_stops_its_run";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("jd");
    let job = format!("d-{}", site.tag);
    site.write(
        "job.yaml",
        &job_yaml(
            &job,
            "  activeDeadline: 2s\n",
            "    command: [sleep, '3600']\n    stopGracePeriod: 1s\n",
        ),
    );
    let (ok, text) = apply_wait(&site);
    assert!(!ok, "{text}");
    assert!(text.contains("DeadlineExceeded"), "{text}");
    let record = record(&site, &job);
    assert_eq!(record["phase"], "failed");
    let attempt = attempts(&record)[0].clone();
    let id = attempt["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while site.inspect(id)["state"] == "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the run was never stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn indexed_mode_runs_each_index_exactly_once() {
    let test = "indexed_mode_runs_each_index_exactly_once";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("ji");
    let (_, volume) = job_on_a_volume(
        &site,
        "i",
        "  completions: 3\n  parallelism: 2\n  completionMode: Indexed\n",
        "echo run >> /data/index-$BERTH_JOB_INDEX",
    );
    let (ok, text) = apply_wait(&site);
    assert!(ok, "{text}");
    let data = site.root().join(format!("volumes/{volume}/data"));
    let mut seen: Vec<(String, String)> = fs::read_dir(&data)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("index-0".to_string(), "run\n".to_string()),
            ("index-1".to_string(), "run\n".to_string()),
            ("index-2".to_string(), "run\n".to_string()),
        ]
    );
}

#[test]
fn a_finished_job_applied_again_does_nothing_and_a_changed_one_runs_again_then_its_ttl_clears_it() {
    let test = "a_finished_job_applied_again_does_nothing_and_a_changed_one_runs_again_then_its_ttl_clears_it";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("jt");
    let job = format!("t-{}", site.tag);
    let write = |word: &str| {
        site.write(
            "job.yaml",
            &job_yaml(
                &job,
                "  ttlAfterFinished: 1s\n",
                &format!("    command: [echo, {word}]\n"),
            ),
        )
    };
    write("one");
    let (ok, text) = apply_wait(&site);
    assert!(ok, "{text}");
    assert_eq!(record(&site, &job)["run"], 1);

    let again = site.apply(&[]);
    assert!(again.contains("nothing to do"), "{again}");
    assert_eq!(record(&site, &job)["run"], 1, "no new run");
    assert_eq!(attempts(&record(&site, &job)).len(), 1);

    write("two");
    let (ok, text) = apply_wait(&site);
    assert!(ok, "{text}");
    let second = record(&site, &job);
    assert_eq!(second["run"], 2, "{second}");
    assert_eq!(
        second["history"][0]["run"], 1,
        "the first run is history: {second}"
    );
    let id = attempts(&second)[0]["id"].as_str().unwrap().to_string();
    assert!(site.ps().iter().any(|c| c["id"] == id.as_str()));

    // Past the ttl, the next pass removes the run's containers, not the record.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    site.apply(&[]);
    assert!(site.ps().is_empty(), "{:?}", site.ps());
    let cleaned = record(&site, &job);
    assert_eq!(cleaned["cleaned"], true, "{cleaned}");
    assert_eq!(cleaned["phase"], "complete");
}

#[test]
fn a_dependent_starts_once_its_job_completed() {
    let test = "a_dependent_starts_once_its_job_completed";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("jc");
    let (job, web) = (format!("m-{}", site.tag), format!("w-{}", site.tag));
    site.write(
        "job.yaml",
        &job_yaml(&job, "", "    command: [sh, -c, 'sleep 1']\n"),
    );
    site.write(
        "web.yaml",
        &common::site::container_yaml(
            &web,
            &format!("  networkMode: none\n  command: [sleep, '3600']\n  dependsOn:\n  - name: {job}\n    condition: completed\n"),
        ),
    );
    let (ok, text) = apply_wait(&site);
    assert!(ok, "{text}");
    let finished = record(&site, &job)["finishedUnixMs"].as_u64().unwrap();
    let created = site.inspect(&web)["record"]["createdUnixMs"]
        .as_u64()
        .unwrap();
    assert!(
        created >= finished,
        "web was created before its Job completed"
    );
}
