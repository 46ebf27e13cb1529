//! What became of each declared container, as `apply` reports it: up,
//! finished as declared, stopped on request, still on its way, or failed
//! for good (it exited, or could not start, and its restart policy will not
//! start it again). Pure: [`results`] reads the desired and the observed
//! state and decides; the reconciler acts on it and the CLI prints it.
//!
//! A container whose restart policy is `never` is declared to run once:
//! `apply --wait` waits for it to finish, so an exit a few seconds after
//! the start is reported as surely as one at once. Exit code 0 is then a
//! success (also under `on-failure`, which does not restart it either).

use std::fmt;

use serde::Serialize;

use super::desired::{Desired, DesiredSpec};
use super::jobs::record::{JobPhase, JobRecord};
use super::plan::{Action, Actual, ActualContainer, Observed, Target, Verb};
use crate::manifest::{ContainerSpec, Healthcheck, Kind, RestartPolicy};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with code {code}"),
            Exit::Signal(signal) => write!(f, "was killed by signal {signal}"),
        }
    }
}

/// Where a declared container stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It runs as declared: settled, and healthy where it has a check.
    Up,
    /// Declared to run once, and finished with code 0: what it was for.
    Completed,
    /// Stopped on request (`berth stop`): no failure of its own.
    Stopped,
    /// Not there yet: starting, settling, restarting, or running once.
    Waiting,
    /// Exited, or could not start, and will not start again.
    Failed,
    /// Declared to run once, and ran; how it ended is not known (its shim
    /// was lost, or the host rebooted since): not run again, not a failure
    /// this apply can tell.
    Unknown,
}

impl Verdict {
    /// Whether it has reached where it stays (nothing more to wait for).
    pub fn is_final(self) -> bool {
        self != Verdict::Waiting
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::Completed => "completed",
            Verdict::Stopped => "stopped",
            Verdict::Waiting => "waiting",
            Verdict::Failed => "failed",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One declared container's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResult {
    /// Container, or Job (whose verdict is its run's: completed once
    /// `completions` succeeded, failed past its backoffLimit or deadline).
    pub kind: Kind,
    pub name: String,
    pub verdict: Verdict,
    /// In words: what it does now, or how it ended and why that is final.
    pub detail: String,
    /// How its last run ended, when one has (not after a failed start:
    /// that is `start_error`).
    pub exit: Option<Exit>,
    /// Why its last start failed (bad command, missing binary, a mount).
    pub start_error: Option<String>,
}

impl ContainerResult {
    fn new(name: &str, verdict: Verdict, detail: impl Into<String>) -> Self {
        ContainerResult {
            kind: Kind::Container,
            name: name.to_string(),
            verdict,
            detail: detail.into(),
            exit: None,
            start_error: None,
        }
    }

    pub fn target(&self) -> Target {
        self.kind.into()
    }

    /// What ended it, for a one-line summary: `exit code 7`, `killed by
    /// signal 9`, `could not start: ...`.
    pub fn cause(&self) -> String {
        match (&self.start_error, self.exit) {
            (Some(error), _) => format!("could not start: {error}"),
            (None, Some(Exit::Code(code))) => format!("exit code {code}"),
            (None, Some(Exit::Signal(signal))) => format!("killed by signal {signal}"),
            (None, None) => self.detail.clone(),
        }
    }
}

/// The outcome of every Container the set declares, by name, then of
/// every Job.
pub fn results(desired: &Desired, actual: &Actual, settle_ms: u64) -> Vec<ContainerResult> {
    let mut results = container_results(desired, actual, settle_ms);
    results.extend(job_results(desired, actual));
    results
}

/// Each declared Job's run as its record tells it; a Job whose record is
/// for another spec (or that has none) has not started its run yet.
fn job_results(desired: &Desired, actual: &Actual) -> Vec<ContainerResult> {
    desired
        .objects
        .iter()
        .filter_map(|object| {
            let DesiredSpec::Job(spec) = &object.spec else {
                return None;
            };
            let record = actual
                .jobs
                .iter()
                .find(|j| j.name == object.name)
                .and_then(|j| j.record.as_ref())
                .filter(|r| object.fingerprint.changed_parts(&r.fingerprint).is_empty());
            let mut result = match record {
                None => {
                    ContainerResult::new(&object.name, Verdict::Waiting, "its run has not started")
                }
                Some(record) => job_result(&object.name, spec.completions, record),
            };
            result.kind = Kind::Job;
            Some(result)
        })
        .collect()
}

/// A Job's outcome from its record: `completed`, `run 1: 4 succeeded, 0
/// failed in 8.2s`; `failed`, with the reason first; else waiting, with
/// how far the run got of its `completions`.
pub fn job_result(name: &str, completions: u32, record: &JobRecord) -> ContainerResult {
    let (succeeded, failed) = (record.succeeded(), record.failed());
    let counts = format!("{succeeded} succeeded, {failed} failed{}", record.took());
    let (verdict, detail) = match record.phase {
        _ if record.run == 0 => (Verdict::Up, "scheduled; no run yet".to_string()),
        JobPhase::Complete => (Verdict::Completed, format!("run {}: {counts}", record.run)),
        JobPhase::Failed => (
            Verdict::Failed,
            format!(
                "run {}: {}; {counts}",
                record.run,
                record.reason.as_deref().unwrap_or("failed")
            ),
        ),
        JobPhase::Active => (
            Verdict::Waiting,
            format!(
                "run {}: {succeeded} of {completions} succeeded, {} running, {failed} failed",
                record.run,
                record.running().count()
            ),
        ),
    };
    let mut result = ContainerResult::new(name, verdict, detail);
    result.kind = Kind::Job;
    result
}

fn container_results(desired: &Desired, actual: &Actual, settle_ms: u64) -> Vec<ContainerResult> {
    desired
        .objects
        .iter()
        .filter(|o| o.kind == Kind::Container)
        .filter_map(|object| {
            let DesiredSpec::Container(spec) = &object.spec else {
                return None;
            };
            let current = actual
                .containers
                .iter()
                .find(|c| c.kind == Kind::Container && c.name == object.name);
            Some(judge(&object.name, spec, current, settle_ms))
        })
        .collect()
}

/// What `apply --wait` still waits for, as the plan's Wait actions.
pub fn waiting(results: &[ContainerResult]) -> Vec<Action> {
    results
        .iter()
        .filter(|r| !r.verdict.is_final())
        .map(|r| Action::new(r.target(), &r.name, Verb::Wait, r.detail.clone()))
        .collect()
}

/// One container's outcome. `settle_ms` is how long a container without a
/// health check must have run to count as up: it keeps one that crashes
/// right after its start from counting.
pub fn judge(
    name: &str,
    spec: &ContainerSpec,
    current: Option<&ActualContainer>,
    settle_ms: u64,
) -> ContainerResult {
    let Some(current) = current else {
        return ContainerResult::new(name, Verdict::Waiting, "not created yet");
    };
    let policy = spec.restart.policy;
    let waiting = |detail: &str| ContainerResult::new(name, Verdict::Waiting, detail);
    let mut result = match &current.observed {
        Observed::Missing => match &current.fault {
            Some(fault) => waiting(&format!("{fault}; the next pass repairs it")),
            None => waiting("gone; the next pass repairs it"),
        },
        Observed::Created => waiting("created, not yet started"),
        Observed::Restarting => waiting(&restarting(current)),
        Observed::Running if policy == RestartPolicy::Never => {
            waiting("running; declared to run once (restart: never), waiting for it to finish")
        }
        Observed::Running => running(name, spec, current, settle_ms),
        Observed::Exited { stopped: true, .. } => {
            ContainerResult::new(name, Verdict::Stopped, "stopped on request")
        }
        Observed::Exited { code, .. } => ended(name, policy, *code, current),
    };
    result.start_error = current.start_error.clone();
    result.exit = match result.start_error {
        // The shim records a failed start as exit code 128: not the
        // container's own code, since it never ran.
        Some(_) => None,
        None => current.last_exit,
    };
    result
}

/// A running container that keeps running by its policy: up once settled
/// (or healthy, where it has a health check).
fn running(
    name: &str,
    spec: &ContainerSpec,
    current: &ActualContainer,
    settle_ms: u64,
) -> ContainerResult {
    let checks = spec.healthcheck.as_ref();
    let (verdict, detail) = match (checks, current.healthy) {
        (Some(_), Some(true)) => (Verdict::Up, "running and healthy".to_string()),
        (Some(check), healthy) => (
            Verdict::Waiting,
            health_check_detail(healthy, current.failing_checks, check.retries),
        ),
        (None, _) if current.running_for_ms.unwrap_or(0) >= settle_ms => {
            (Verdict::Up, "running".to_string())
        }
        (None, _) => (Verdict::Waiting, "running, not yet settled".to_string()),
    };
    ContainerResult::new(name, verdict, detail)
}

/// What a running container still lacks to be healthy: `running; health
/// check not passed yet (2 of 3 failed)`, or that it failed them all.
fn health_check_detail(healthy: Option<bool>, failed: u32, retries: Option<u32>) -> String {
    let retries = retries.unwrap_or(Healthcheck::DEFAULT_RETRIES).max(1);
    match (healthy, failed) {
        (Some(false), _) => {
            format!("running but unhealthy: health check failed {failed} times in a row")
        }
        (_, 0) => "running; health check not passed yet".to_string(),
        (_, failed) => {
            format!("running; health check not passed yet ({failed} of {retries} failed)")
        }
    }
}

/// Why it is restarting: how its last run ended.
fn restarting(current: &ActualContainer) -> String {
    match (&current.start_error, current.last_exit) {
        (Some(error), _) => format!("restarting: it could not start: {error}"),
        (None, Some(exit)) => format!("restarting: it {exit}"),
        (None, None) => "restarting".to_string(),
    }
}

/// A container that exited for good (not on request): done when it was
/// declared to run once and exited 0, failed otherwise.
fn ended(
    name: &str,
    policy: RestartPolicy,
    code: Option<i32>,
    current: &ActualContainer,
) -> ContainerResult {
    let runs_once = matches!(policy, RestartPolicy::Never | RestartPolicy::OnFailure);
    if runs_once && code == Some(0) && current.start_error.is_none() {
        return ContainerResult::new(name, Verdict::Completed, "ran once and exited with code 0");
    }
    let nothing_known = code.is_none() && current.last_exit.is_none();
    if runs_once && nothing_known && current.start_error.is_none() {
        return ContainerResult::new(
            name,
            Verdict::Unknown,
            "it ran, but how it ended is not known (its shim was lost, or the host \
             rebooted since); it will not run again",
        );
    }
    let policy_words = match policy {
        RestartPolicy::Never => "restart: never",
        RestartPolicy::OnFailure => "restart: on-failure, its retries used up",
        // The plan restarts these; it gets here only when that failed.
        RestartPolicy::Always | RestartPolicy::UnlessStopped => "its restart failed",
    };
    let detail = match (&current.start_error, current.last_exit, code) {
        (Some(error), _, _) => {
            format!("it could not start: {error}; it will not restart ({policy_words})")
        }
        (None, Some(exit), _) => format!("it {exit} and will not restart ({policy_words})"),
        (None, None, Some(code)) => {
            format!("it exited with code {code} and will not restart ({policy_words})")
        }
        (None, None, None) => format!("it was killed and will not restart ({policy_words})"),
    };
    ContainerResult::new(name, Verdict::Failed, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: RestartPolicy) -> ContainerSpec {
        let mut spec = ContainerSpec {
            image: "busybox".into(),
            ..ContainerSpec::default()
        };
        spec.restart.policy = policy;
        spec
    }

    fn observed(observed: Observed) -> ActualContainer {
        ActualContainer {
            kind: Kind::Container,
            name: "c".into(),
            source: Some("/srv".into()),
            fingerprint: None,
            observed,
            healthy: None,
            failing_checks: 0,
            restart: RestartPolicy::Always,
            networks: vec![],
            volumes: vec![],
            fault: None,
            running_for_ms: None,
            last_exit: None,
            start_error: None,
        }
    }

    fn exited(code: Option<i32>) -> ActualContainer {
        let mut c = observed(Observed::Exited {
            code,
            stopped: false,
        });
        c.last_exit = code.map(Exit::Code);
        c
    }

    fn running_for(ms: u64) -> ActualContainer {
        let mut c = observed(Observed::Running);
        c.running_for_ms = Some(ms);
        c
    }

    fn verdict(policy: RestartPolicy, current: &ActualContainer) -> (Verdict, String) {
        let result = judge("c", &spec(policy), Some(current), 1000);
        (result.verdict, result.detail)
    }

    #[test]
    fn a_run_once_container_that_exits_7_failed_and_says_its_code() {
        let result = judge(
            "c",
            &spec(RestartPolicy::Never),
            Some(&exited(Some(7))),
            1000,
        );
        assert_eq!(result.verdict, Verdict::Failed);
        assert_eq!(result.exit, Some(Exit::Code(7)));
        assert_eq!(
            result.detail,
            "it exited with code 7 and will not restart (restart: never)"
        );
        assert_eq!(result.cause(), "exit code 7");
    }

    #[test]
    fn a_run_once_container_still_running_is_waited_for_however_long_it_ran() {
        // Regression: a `sleep 2; exit 7` counted as up after a second.
        let (verdict, detail) = verdict(RestartPolicy::Never, &running_for(3_600_000));
        assert_eq!(verdict, Verdict::Waiting);
        assert!(detail.contains("waiting for it to finish"), "{detail}");
    }

    #[test]
    fn exit_0_under_never_or_on_failure_is_completed() {
        for policy in [RestartPolicy::Never, RestartPolicy::OnFailure] {
            assert_eq!(
                verdict(policy, &exited(Some(0))).0,
                Verdict::Completed,
                "{policy:?}"
            );
        }
    }

    #[test]
    fn on_failure_with_its_retries_used_up_failed() {
        let (verdict, detail) = verdict(RestartPolicy::OnFailure, &exited(Some(3)));
        assert_eq!(verdict, Verdict::Failed);
        assert!(detail.contains("retries used up"), "{detail}");
    }

    #[test]
    fn a_start_error_is_the_cause_and_hides_the_stand_in_exit_code() {
        let mut current = exited(Some(128));
        current.start_error = Some("exec: \"/nope\": no such file or directory".into());
        let result = judge("c", &spec(RestartPolicy::Never), Some(&current), 1000);
        assert_eq!(result.verdict, Verdict::Failed);
        assert_eq!(result.exit, None);
        assert_eq!(
            result.cause(),
            "could not start: exec: \"/nope\": no such file or directory"
        );
        assert!(result.detail.starts_with("it could not start: exec"));
        assert!(result
            .detail
            .ends_with("; it will not restart (restart: never)"));
    }

    #[test]
    fn a_restarting_container_waits_and_says_how_its_last_run_ended() {
        let mut current = observed(Observed::Restarting);
        current.last_exit = Some(Exit::Code(7));
        assert_eq!(
            verdict(RestartPolicy::Always, &current),
            (Verdict::Waiting, "restarting: it exited with code 7".into())
        );
        current.start_error = Some("exec: bad".into());
        assert_eq!(
            verdict(RestartPolicy::Always, &current).1,
            "restarting: it could not start: exec: bad"
        );
    }

    #[test]
    fn a_service_is_up_once_settled_or_healthy() {
        assert_eq!(
            verdict(RestartPolicy::Always, &running_for(10)).0,
            Verdict::Waiting
        );
        assert_eq!(
            verdict(RestartPolicy::Always, &running_for(1000)).0,
            Verdict::Up
        );
        assert_eq!(
            verdict(RestartPolicy::OnFailure, &running_for(1000)).0,
            Verdict::Up
        );
        let mut checked = spec(RestartPolicy::Always);
        checked.healthcheck = Some(Healthcheck {
            exec: vec!["true".into()],
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
            on_unhealthy: Default::default(),
        });
        let mut current = running_for(60_000);
        let judged = |c: &ActualContainer| judge("c", &checked, Some(c), 1000);
        assert_eq!(
            judged(&current).detail,
            "running; health check not passed yet"
        );
        current.failing_checks = 2;
        assert_eq!(
            judged(&current).detail,
            "running; health check not passed yet (2 of 3 failed)"
        );
        current.healthy = Some(false);
        assert_eq!(judged(&current).verdict, Verdict::Waiting);
        current.healthy = Some(true);
        assert_eq!(judged(&current).verdict, Verdict::Up);
    }

    #[test]
    fn stopped_on_request_is_not_a_failure_and_a_kill_is() {
        let stopped = observed(Observed::Exited {
            code: None,
            stopped: true,
        });
        assert_eq!(
            verdict(RestartPolicy::UnlessStopped, &stopped).0,
            Verdict::Stopped
        );
        let mut killed = exited(None);
        killed.last_exit = Some(Exit::Signal(9));
        let result = judge("c", &spec(RestartPolicy::Never), Some(&killed), 1000);
        assert_eq!(result.verdict, Verdict::Failed);
        assert_eq!(result.cause(), "killed by signal 9");
    }

    #[test]
    fn results_cover_every_declared_container_and_waiting_lists_the_unfinished() {
        use std::path::PathBuf;

        use super::super::desired::DesiredObject;
        use crate::state::labels::Fingerprint;
        let object = |name: &str, policy| DesiredObject {
            kind: Kind::Container,
            name: name.into(),
            file: format!("{name}.yaml"),
            line: 1,
            base_dir: PathBuf::from("/srv"),
            spec: DesiredSpec::Container(spec(policy)),
            fingerprint: Fingerprint::default(),
            image: None,
        };
        let desired = Desired {
            source: "/srv".into(),
            tree: PathBuf::from("/srv"),
            objects: vec![
                object("done", RestartPolicy::Never),
                object("later", RestartPolicy::Never),
                object("missing", RestartPolicy::Always),
            ],
        };
        let mut done = exited(Some(0));
        done.name = "done".into();
        let mut later = running_for(5000);
        later.name = "later".into();
        let actual = Actual {
            containers: vec![done, later],
            ..Actual::default()
        };
        let all = results(&desired, &actual, 1000);
        let verdicts: Vec<(&str, Verdict)> =
            all.iter().map(|r| (r.name.as_str(), r.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                ("done", Verdict::Completed),
                ("later", Verdict::Waiting),
                ("missing", Verdict::Waiting)
            ]
        );
        let names: Vec<String> = waiting(&all).into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["later", "missing"]);
    }
}
