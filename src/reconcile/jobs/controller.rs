//! The Job state machine, pure: [`settle`] brings a Job's record up to date
//! with what its containers did (exits, restarts in place, a deadline
//! passed) and [`steps`] says what to do next (start attempts, stop those
//! a finished Job left running, remove containers after
//! `ttlAfterFinished`, or wait for a backoff), both with the time passed in.
//!
//! As Kubernetes counts them: the Job is Complete once `completions` runs
//! succeeded (in Indexed mode: once each index succeeded), and Failed once
//! its failures exceed `backoffLimit` or `activeDeadline` has passed since
//! it started. A failure is an attempt that exited non-zero (or vanished),
//! or, with restartPolicy OnFailure, a restart in place.

use std::time::Duration;

use super::record::{attempt_id, Attempt, AttemptState, JobPhase, JobRecord};
use crate::manifest::{CompletionMode, JobRestartPolicy, JobSpec};

pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(360);

/// What became of an attempt's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Created; its shim has not started it yet.
    Starting,
    Running {
        restarts: u32,
    },
    Exited {
        code: Option<i32>,
        restarts: u32,
        stopped: bool,
    },
    /// No container (removed, or lost with its shim before it recorded an
    /// exit).
    Missing,
}

/// An attempt to start now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAttempt {
    pub id: String,
    pub number: u32,
    pub index: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steps {
    pub start: Vec<NewAttempt>,
    /// Attempts still running that the Job no longer needs.
    pub stop: Vec<String>,
    /// Containers `ttlAfterFinished` removes.
    pub remove: Vec<String>,
    /// Why nothing starts now although runs are needed, and until when
    /// (unix ms) when a time ends it.
    pub waiting: Option<(String, Option<u64>)>,
}

fn indexed(spec: &JobSpec) -> bool {
    spec.completion_mode == CompletionMode::Indexed
}

/// The wait before the next attempt after `failures` failures.
pub fn backoff(spec: &JobSpec, failures: u32) -> Duration {
    let initial = spec
        .backoff
        .and_then(|b| b.initial)
        .map_or(DEFAULT_BACKOFF, |d| d.0);
    let max = spec
        .backoff
        .and_then(|b| b.max)
        .map_or(DEFAULT_MAX_BACKOFF, |d| d.0);
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32 << failures.saturating_sub(1).min(20);
    initial.saturating_mul(factor).min(max)
}

/// Updates `record` from what its containers did by `now` (unix ms);
/// returns whether anything changed.
pub fn settle(
    spec: &JobSpec,
    record: &mut JobRecord,
    seen: &dyn Fn(&str) -> Seen,
    now: u64,
) -> bool {
    let before = record.clone();
    for attempt in record
        .attempts
        .iter_mut()
        .filter(|a| a.state == AttemptState::Running)
    {
        settle_attempt(attempt, seen(&attempt.id), now);
    }
    if record.phase == JobPhase::Active {
        if let Some(end) = finished(spec, record, now) {
            finish(record, end, now);
        }
    }
    if ttl_passed(spec, record, now) && record.attempts.iter().all(|a| seen(&a.id) == Seen::Missing)
    {
        // What the ttl removes is gone (the removal, or by hand).
        record.cleaned = true;
    }
    *record != before
}

/// Whether a finished run's `ttlAfterFinished` has passed (and its
/// containers have not been found gone yet).
fn ttl_passed(spec: &JobSpec, record: &JobRecord, now: u64) -> bool {
    let (Some(ttl), Some(finished)) = (spec.ttl_after_finished, record.finished_unix_ms) else {
        return false;
    };
    record.phase != JobPhase::Active
        && !record.cleaned
        && now >= finished.saturating_add(ttl.0.as_millis() as u64)
}

fn settle_attempt(attempt: &mut Attempt, seen: Seen, now: u64) {
    match seen {
        Seen::Starting => {}
        Seen::Running { restarts } => attempt.restarts = restarts,
        Seen::Exited {
            code,
            restarts,
            stopped,
        } => {
            attempt.restarts = restarts;
            attempt.exit_code = code;
            attempt.finished_unix_ms = Some(now);
            attempt.state = if code == Some(0) {
                AttemptState::Succeeded
            } else {
                AttemptState::Failed
            };
            attempt.reason = match (code, stopped) {
                (_, true) => Some("stopped".into()),
                (None, false) => Some("killed, or its exit is unknown".into()),
                _ => None,
            };
        }
        Seen::Missing => {
            attempt.state = AttemptState::Failed;
            attempt.finished_unix_ms = Some(now);
            attempt.reason = Some("its container is gone".into());
        }
    }
}

/// How the Job ends, if it does now: (phase, reason).
fn finished(spec: &JobSpec, record: &JobRecord, now: u64) -> Option<(JobPhase, String)> {
    let succeeded = record.succeeded();
    if succeeded >= spec.completions {
        return Some((
            JobPhase::Complete,
            format!("{succeeded} of {} runs succeeded", spec.completions),
        ));
    }
    let failed = record.failed();
    if failed > spec.backoff_limit {
        return Some((
            JobPhase::Failed,
            format!(
                "BackoffLimitExceeded: {failed} failed runs, backoffLimit {}",
                spec.backoff_limit
            ),
        ));
    }
    let deadline = spec.active_deadline?.0.as_millis() as u64;
    (now >= record.started_unix_ms.saturating_add(deadline)).then(|| {
        (
            JobPhase::Failed,
            format!(
                "DeadlineExceeded: still running after activeDeadline {}s",
                deadline / 1000
            ),
        )
    })
}

fn finish(record: &mut JobRecord, (phase, reason): (JobPhase, String), now: u64) {
    record.phase = phase;
    record.reason = Some(reason.clone());
    record.finished_unix_ms = Some(now);
    for attempt in record
        .attempts
        .iter_mut()
        .filter(|a| a.state == AttemptState::Running)
    {
        attempt.state = AttemptState::Stopped;
        attempt.reason = Some(format!("the Job ended: {reason}"));
    }
}

/// What to do next for a settled record.
pub fn steps(spec: &JobSpec, record: &JobRecord, seen: &dyn Fn(&str) -> Seen, now: u64) -> Steps {
    let mut steps = Steps::default();
    if record.phase != JobPhase::Active {
        steps.stop = record
            .attempts
            .iter()
            .filter(|a| a.state == AttemptState::Stopped)
            .filter(|a| matches!(seen(&a.id), Seen::Starting | Seen::Running { .. }))
            .map(|a| a.id.clone())
            .collect();
        steps.remove = expired(spec, record, seen, now);
        return steps;
    }
    let wanted = wanted_now(spec, record);
    if wanted.is_empty() {
        let running = record.running().count() as u32;
        let more = spec
            .completions
            .saturating_sub(record.succeeded())
            .saturating_sub(running);
        if more > 0 {
            // Every slot is taken: the rest start as these end.
            steps.waiting = Some((
                format!("{running} running, {more} more to start as they finish"),
                None,
            ));
        }
        return steps;
    }
    if let Some(until) = backoff_until(spec, record).filter(|until| *until > now) {
        steps.waiting = Some((
            format!(
                "retrying after a backoff of {}s ({} failed so far)",
                (until - now).div_ceil(1000),
                record.failed()
            ),
            Some(until),
        ));
        return steps;
    }
    let mut number = record.attempts.len() as u32;
    for index in wanted {
        number += 1;
        steps.start.push(NewAttempt {
            id: attempt_id(&record.name, record.run, number),
            number,
            index,
        });
    }
    steps
}

/// The attempts to start if nothing held them back: as many as free
/// slots allow, each with its index in Indexed mode.
fn wanted_now(spec: &JobSpec, record: &JobRecord) -> Vec<Option<u32>> {
    let running = record.running().count() as u32;
    let slots = spec.parallelism.saturating_sub(running);
    if indexed(spec) {
        let busy: Vec<u32> = record
            .attempts
            .iter()
            .filter(|a| matches!(a.state, AttemptState::Running | AttemptState::Succeeded))
            .filter_map(|a| a.index)
            .collect();
        (0..spec.completions)
            .filter(|i| !busy.contains(i))
            .take(slots as usize)
            .map(Some)
            .collect()
    } else {
        let needed = spec
            .completions
            .saturating_sub(record.succeeded())
            .saturating_sub(running);
        vec![None; needed.min(slots) as usize]
    }
}

/// With restartPolicy Never, after a failure: when the next attempt may
/// start (OnFailure retries inside the container, with the shim's backoff).
fn backoff_until(spec: &JobSpec, record: &JobRecord) -> Option<u64> {
    if spec.restart_policy == JobRestartPolicy::OnFailure {
        return None;
    }
    let last_failure = record
        .attempts
        .iter()
        .filter(|a| a.state == AttemptState::Failed)
        .filter_map(|a| a.finished_unix_ms)
        .max()?;
    Some(last_failure + backoff(spec, record.failed()).as_millis() as u64)
}

/// A finished Job's containers that `ttlAfterFinished` removes now.
fn expired(
    spec: &JobSpec,
    record: &JobRecord,
    seen: &dyn Fn(&str) -> Seen,
    now: u64,
) -> Vec<String> {
    if !ttl_passed(spec, record, now) {
        return Vec::new();
    }
    record
        .attempts
        .iter()
        .filter(|a| seen(&a.id) != Seen::Missing)
        .map(|a| a.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::quantity::Duration as Quantity;
    use crate::manifest::JobBackoff;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn spec(completions: u32, parallelism: u32) -> JobSpec {
        JobSpec {
            completions,
            parallelism,
            backoff_limit: 2,
            backoff: Some(JobBackoff {
                initial: Some(Quantity(Duration::from_secs(1))),
                max: Some(Quantity(Duration::from_secs(4))),
            }),
            history_limit: 3,
            ..JobSpec::default()
        }
    }

    fn record() -> JobRecord {
        JobRecord {
            name: "batch".into(),
            source: "/srv".into(),
            file: "batch.yaml".into(),
            fingerprint: Default::default(),
            run: 1,
            phase: JobPhase::Active,
            reason: None,
            trigger: "apply".into(),
            started_unix_ms: 1_000,
            finished_unix_ms: None,
            attempts: Vec::new(),
            cleaned: false,
            schedule_tick: None,
            declared_unix_ms: 1_000,
            history: Vec::new(),
            run_requested: None,
            completions: 0,
            schedule: None,
        }
    }

    /// The host: each attempt's container as the test says, else missing.
    struct Host(BTreeMap<String, Seen>);

    impl Host {
        fn new() -> Self {
            Host(BTreeMap::new())
        }
        fn seen(&self) -> impl Fn(&str) -> Seen + '_ {
            |id| self.0.get(id).copied().unwrap_or(Seen::Missing)
        }
        fn set(&mut self, id: &str, seen: Seen) {
            self.0.insert(id.to_string(), seen);
        }
    }

    /// Starts what `steps` says, as the executor records it.
    fn start(record: &mut JobRecord, host: &mut Host, steps: &Steps, now: u64) {
        for new in &steps.start {
            record.attempts.push(Attempt {
                id: new.id.clone(),
                number: new.number,
                index: new.index,
                started_unix_ms: now,
                finished_unix_ms: None,
                state: AttemptState::Running,
                exit_code: None,
                restarts: 0,
                reason: None,
            });
            host.set(&new.id, Seen::Running { restarts: 0 });
        }
    }

    fn exit(code: i32) -> Seen {
        Seen::Exited {
            code: Some(code),
            restarts: 0,
            stopped: false,
        }
    }

    #[test]
    fn completions_run_at_most_parallelism_at_a_time_until_done() {
        let spec = spec(4, 2);
        let (mut record, mut host) = (record(), Host::new());
        let mut now = 1_000;
        let mut most_at_once = 0;
        for _ in 0..10 {
            settle(&spec, &mut record, &host.seen(), now);
            if record.phase != JobPhase::Active {
                break;
            }
            let steps = steps(&spec, &record, &host.seen(), now);
            start(&mut record, &mut host, &steps, now);
            most_at_once = most_at_once.max(record.running().count());
            let first_running = record.running().next().map(|a| a.id.clone());
            if let Some(id) = first_running {
                host.set(&id, exit(0));
            }
            now += 100;
        }
        assert_eq!(most_at_once, 2);
        assert_eq!(record.phase, JobPhase::Complete);
        assert_eq!(record.succeeded(), 4);
        assert_eq!(
            record.attempts.len(),
            4,
            "no attempt beyond what was needed"
        );
    }

    #[test]
    fn failures_back_off_exponentially_then_fail_the_job_past_the_limit() {
        let spec = spec(1, 1);
        let (mut record, mut host) = (record(), Host::new());
        let steps1 = steps(&spec, &record, &host.seen(), 1_000);
        start(&mut record, &mut host, &steps1, 1_000);
        host.set("batch-1-1", exit(3));
        settle(&spec, &mut record, &host.seen(), 2_000);
        assert_eq!(record.failed(), 1);
        let waiting = steps(&spec, &record, &host.seen(), 2_500);
        assert!(waiting.start.is_empty());
        assert_eq!(
            waiting.waiting.as_ref().unwrap().1,
            Some(3_000),
            "1 s after the failure"
        );
        let retry = steps(&spec, &record, &host.seen(), 3_000);
        assert_eq!(retry.start[0].id, "batch-1-2");
        start(&mut record, &mut host, &retry, 3_000);
        host.set("batch-1-2", exit(3));
        settle(&spec, &mut record, &host.seen(), 3_500);
        assert_eq!(
            steps(&spec, &record, &host.seen(), 3_600)
                .waiting
                .unwrap()
                .1,
            Some(5_500),
            "2 s after the second failure"
        );
        let third = steps(&spec, &record, &host.seen(), 5_500);
        start(&mut record, &mut host, &third, 5_500);
        host.set("batch-1-3", exit(3));
        settle(&spec, &mut record, &host.seen(), 6_000);
        assert_eq!(record.phase, JobPhase::Failed);
        assert!(record
            .reason
            .as_deref()
            .unwrap()
            .starts_with("BackoffLimitExceeded"));
        assert_eq!(record.attempts.len(), 3, "backoffLimit 2: three attempts");
        assert!(steps(&spec, &record, &host.seen(), 9_000).start.is_empty());
    }

    #[test]
    fn the_backoff_doubles_up_to_its_bound() {
        let spec = spec(1, 1);
        let secs: Vec<u64> = (0..6).map(|n| backoff(&spec, n).as_secs()).collect();
        assert_eq!(secs, [0, 1, 2, 4, 4, 4]);
        let defaults = JobSpec::default();
        assert_eq!(backoff(&defaults, 1), Duration::from_secs(10));
        assert_eq!(backoff(&defaults, 30), Duration::from_secs(360));
    }

    #[test]
    fn a_deadline_fails_the_job_and_stops_what_runs() {
        let mut spec = spec(1, 1);
        spec.active_deadline = Some(Quantity(Duration::from_secs(5)));
        let (mut record, mut host) = (record(), Host::new());
        let first = steps(&spec, &record, &host.seen(), 1_000);
        start(&mut record, &mut host, &first, 1_000);
        assert!(!settle(&spec, &mut record, &host.seen(), 5_999));
        assert!(settle(&spec, &mut record, &host.seen(), 6_000));
        assert_eq!(record.phase, JobPhase::Failed);
        assert!(record
            .reason
            .as_deref()
            .unwrap()
            .starts_with("DeadlineExceeded"));
        let steps = steps(&spec, &record, &host.seen(), 6_000);
        assert_eq!(steps.stop, ["batch-1-1"]);
        assert!(steps.start.is_empty());
    }

    #[test]
    fn indexed_mode_completes_each_index_once_retrying_only_the_failed_one() {
        let mut spec = spec(3, 3);
        spec.completion_mode = CompletionMode::Indexed;
        let (mut record, mut host) = (record(), Host::new());
        let first = steps(&spec, &record, &host.seen(), 1_000);
        let indexes: Vec<Option<u32>> = first.start.iter().map(|a| a.index).collect();
        assert_eq!(indexes, [Some(0), Some(1), Some(2)]);
        start(&mut record, &mut host, &first, 1_000);
        host.set("batch-1-1", exit(0));
        host.set("batch-1-2", exit(1));
        host.set("batch-1-3", exit(0));
        settle(&spec, &mut record, &host.seen(), 2_000);
        let retry = steps(&spec, &record, &host.seen(), 10_000);
        assert_eq!(retry.start.len(), 1);
        assert_eq!(retry.start[0].index, Some(1), "only the failed index again");
        start(&mut record, &mut host, &retry, 10_000);
        host.set("batch-1-4", exit(0));
        settle(&spec, &mut record, &host.seen(), 11_000);
        assert_eq!(record.phase, JobPhase::Complete);
        assert_eq!(record.succeeded(), 3);
    }

    #[test]
    fn on_failure_counts_restarts_in_place_as_failures() {
        let mut spec = spec(1, 1);
        spec.restart_policy = JobRestartPolicy::OnFailure;
        let (mut record, mut host) = (record(), Host::new());
        let first = steps(&spec, &record, &host.seen(), 1_000);
        start(&mut record, &mut host, &first, 1_000);
        host.set("batch-1-1", Seen::Running { restarts: 2 });
        settle(&spec, &mut record, &host.seen(), 2_000);
        assert_eq!(record.failed(), 2);
        assert_eq!(record.phase, JobPhase::Active);
        assert!(
            steps(&spec, &record, &host.seen(), 2_000).start.is_empty(),
            "it retries in its slot"
        );
        host.set(
            "batch-1-1",
            Seen::Exited {
                code: Some(0),
                restarts: 2,
                stopped: false,
            },
        );
        settle(&spec, &mut record, &host.seen(), 3_000);
        assert_eq!(record.phase, JobPhase::Complete);
    }

    #[test]
    fn a_finished_jobs_containers_go_after_the_ttl_and_the_record_stays() {
        let mut spec = spec(1, 1);
        spec.ttl_after_finished = Some(Quantity(Duration::from_secs(10)));
        let (mut record, mut host) = (record(), Host::new());
        let first = steps(&spec, &record, &host.seen(), 1_000);
        start(&mut record, &mut host, &first, 1_000);
        host.set("batch-1-1", exit(0));
        settle(&spec, &mut record, &host.seen(), 2_000);
        assert!(steps(&spec, &record, &host.seen(), 11_999)
            .remove
            .is_empty());
        assert_eq!(
            steps(&spec, &record, &host.seen(), 12_000).remove,
            ["batch-1-1"]
        );
        host.0.clear();
        assert!(settle(&spec, &mut record, &host.seen(), 12_500));
        assert!(
            record.cleaned,
            "the removal is noted once the container is gone"
        );
        assert!(steps(&spec, &record, &host.seen(), 20_000)
            .remove
            .is_empty());
    }

    #[test]
    fn a_vanished_container_is_a_failure() {
        let spec = spec(1, 1);
        let (mut record, mut host) = (record(), Host::new());
        let first = steps(&spec, &record, &host.seen(), 1_000);
        start(&mut record, &mut host, &first, 1_000);
        host.0.clear();
        settle(&spec, &mut record, &host.seen(), 2_000);
        assert_eq!(record.attempts[0].state, AttemptState::Failed);
        assert_eq!(record.failed(), 1);
    }
}
