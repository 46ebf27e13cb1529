//! What the executor does for a Job: begin a run (the earlier one, if
//! any, stopped, its containers removed and its summary kept in the
//! history), start an attempt (a container from the template, owned by the
//! Job), stop one, remove one, and forget a Job no longer declared.

use super::controller::{backoff, NewAttempt, DEFAULT_MAX_BACKOFF};
use super::record::{self, Attempt, AttemptState, JobPhase, JobRecord};
use crate::engine::{CreateRequest, Engine, EngineError, Origin};
use crate::manifest::names::ContainerId;
use crate::manifest::quantity::Duration as Quantity;
use crate::manifest::{Backoff, JobRestartPolicy, JobSpec, PullPolicy, RestartPolicy};
use crate::reconcile::desired::DesiredObject;
use crate::runtime::container_dir::LogConfig;
use crate::state::clock::unix_ms;
use crate::state::records::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("job {job}: {source}")]
    Record {
        job: String,
        #[source]
        source: RecordError,
    },
    #[error("job {0}: no record of its run (a bug in berth's planner)")]
    NoRecord(String),
    #[error("job {job}: the attempt to start names no image (a bug in berth's planner)")]
    NoImage { job: String },
}

fn load(engine: &Engine, job: &str) -> Result<Option<JobRecord>, JobError> {
    record::store(&engine.paths)
        .get(job)
        .map_err(|source| JobError::Record {
            job: job.to_string(),
            source,
        })
}

fn save(engine: &Engine, record: &JobRecord) -> Result<(), JobError> {
    record::store(&engine.paths)
        .put(&record.name, record)
        .map_err(|source| JobError::Record {
            job: record.name.clone(),
            source,
        })
}

/// The containers of Job `job`'s attempts that exist, by id.
fn attempt_containers(engine: &Engine, job: &str) -> Result<Vec<ContainerId>, EngineError> {
    Ok(engine
        .records()?
        .into_iter()
        .filter(|r| matches!(&r.origin, Origin::Job { job: owner, .. } if owner == job))
        .map(|r| r.id)
        .collect())
}

fn remove_attempts(engine: &Engine, job: &str) -> Result<(), JobError> {
    for id in attempt_containers(engine, job)? {
        engine.remove(&id, true)?;
    }
    Ok(())
}

/// Begins a new run of `object` (its spec changed, it never ran, a
/// schedule tick or `berth job run`).
pub fn begin_run(
    engine: &Engine,
    object: &DesiredObject,
    spec: &JobSpec,
    source: &str,
    trigger: &str,
    schedule_tick: Option<u64>,
) -> Result<(), JobError> {
    let old = load(engine, &object.name)?;
    remove_attempts(engine, &object.name)?;
    let now = unix_ms();
    let mut history = Vec::new();
    if let Some(old) = &old {
        history = old.history.clone();
        let mut summary = old.summary();
        if old.phase == JobPhase::Active {
            summary.reason = Some(format!("replaced by run {} ({trigger})", old.run + 1));
            summary.finished_unix_ms = Some(now);
        }
        history.push(summary);
        let keep = spec.history_limit as usize;
        let drop = history.len().saturating_sub(keep);
        history.drain(..drop);
    }
    let idle = trigger == "declared";
    let record = JobRecord {
        name: object.name.clone(),
        source: source.to_string(),
        file: object.file.clone(),
        fingerprint: object.fingerprint.clone(),
        run: old.as_ref().map_or(0, |o| o.run) + u32::from(!idle),
        phase: if idle {
            JobPhase::Complete
        } else {
            JobPhase::Active
        },
        reason: idle.then(|| "scheduled: waits for its next tick".to_string()),
        trigger: trigger.to_string(),
        started_unix_ms: now,
        finished_unix_ms: None,
        attempts: Vec::new(),
        cleaned: false,
        schedule_tick: schedule_tick.or(old.as_ref().and_then(|o| o.schedule_tick)),
        declared_unix_ms: old.as_ref().map_or(now, |o| o.declared_unix_ms),
        history,
        run_requested: None,
        completions: spec.completions,
        schedule: spec.schedule.as_ref().map(ToString::to_string),
    };
    save(engine, &record)
}

/// A scheduled Job declared or changed: its record follows the spec, and
/// runs come at its ticks (a run in progress goes on).
pub fn declare_scheduled(
    engine: &Engine,
    object: &DesiredObject,
    spec: &JobSpec,
    source: &str,
) -> Result<(), JobError> {
    match load(engine, &object.name)? {
        Some(mut record) if record.run > 0 => {
            record.fingerprint = object.fingerprint.clone();
            record.file = object.file.clone();
            record.completions = spec.completions;
            record.schedule = spec.schedule.as_ref().map(ToString::to_string);
            save(engine, &record)
        }
        _ => begin_run(engine, object, spec, source, "declared", None),
    }
}

/// `berth job run NAME`: asks for a new run, which the next reconcile pass
/// (the daemon's, or an apply's) begins.
pub fn request_run(engine: &Engine, job: &str) -> Result<JobRecord, JobError> {
    let mut record = load(engine, job)?.ok_or_else(|| JobError::NoRecord(job.to_string()))?;
    record.run_requested = Some(unix_ms());
    save(engine, &record)?;
    Ok(record)
}

/// The container spec of one attempt: the template, with the restart
/// policy the Job's says (OnFailure: restarts in place, as many as the
/// backoffLimit leaves, with the Job's backoff).
fn attempt_spec(spec: &JobSpec, failed_so_far: u32) -> crate::manifest::ContainerSpec {
    let mut container = spec.template.to_container_spec();
    container.restart.policy = RestartPolicy::Never;
    if spec.restart_policy == JobRestartPolicy::OnFailure {
        container.restart.policy = RestartPolicy::OnFailure;
        container.restart.max_retries = Some(spec.backoff_limit.saturating_sub(failed_so_far));
        container.restart.backoff = Some(Backoff {
            initial: Some(Quantity(backoff(spec, 1))),
            max: Some(Quantity(
                spec.backoff
                    .and_then(|b| b.max)
                    .map_or(DEFAULT_MAX_BACKOFF, |d| d.0),
            )),
            reset_after: None,
        });
    }
    container
}

/// Starts one attempt and records it; an attempt that cannot start is
/// recorded as failed (it counts toward the backoffLimit), so a Job whose
/// template cannot run ends instead of trying for ever.
pub fn start_attempt(
    engine: &Engine,
    object: &DesiredObject,
    spec: &JobSpec,
    source: &str,
    attempt: &NewAttempt,
) -> Result<(), JobError> {
    let mut record =
        load(engine, &object.name)?.ok_or_else(|| JobError::NoRecord(object.name.clone()))?;
    let id = ContainerId::parse(&attempt.id).map_err(EngineError::from)?;
    let container = attempt_spec(spec, record.failed());
    let mut env = vec![
        ("BERTH_JOB_NAME".to_string(), object.name.clone()),
        ("BERTH_JOB_RUN".to_string(), record.run.to_string()),
        ("BERTH_JOB_ATTEMPT".to_string(), attempt.number.to_string()),
    ];
    if let Some(index) = attempt.index {
        env.push(("BERTH_JOB_INDEX".to_string(), index.to_string()));
    }
    let request = CreateRequest {
        id: id.clone(),
        log: LogConfig::of(container.logging.as_ref()),
        pull_policy: match container.image_pull_policy {
            PullPolicy::Always => PullPolicy::IfNotPresent,
            other => other,
        },
        spec: container,
        image: object.image.clone().ok_or_else(|| JobError::NoImage {
            job: object.name.clone(),
        })?,
        base_dir: object.base_dir.clone(),
        origin: Origin::Job {
            source: source.to_string(),
            file: object.file.clone(),
            job: object.name.clone(),
            run: record.run,
            attempt: attempt.number,
            index: attempt.index,
        },
        fingerprint: Some(object.fingerprint.clone()),
        stdin: false,
        berth_env: env,
        ephemeral: false,
        console_socket: None,
        labels: object.labels.clone(),
    };
    if engine.record(&id).is_ok() || engine.has_leftovers(&id) {
        engine.remove(&id, true)?;
    }
    let now = unix_ms();
    let started = engine.create(request, &crate::image::progress::NoProgress);
    record.attempts.push(Attempt {
        id: attempt.id.clone(),
        number: attempt.number,
        index: attempt.index,
        started_unix_ms: now,
        finished_unix_ms: started.is_err().then_some(now),
        state: if started.is_ok() {
            AttemptState::Running
        } else {
            AttemptState::Failed
        },
        exit_code: None,
        restarts: 0,
        reason: started
            .as_ref()
            .err()
            .map(|e| format!("could not start: {e}")),
    });
    save(engine, &record)?;
    started.map(|_| ()).map_err(JobError::from)
}

pub fn stop_attempt(engine: &Engine, id: &str) -> Result<(), JobError> {
    let id = ContainerId::parse(id).map_err(EngineError::from)?;
    Ok(engine.stop(&id, None)?)
}

/// Removes one attempt's container (the next settle notes the run cleaned).
pub fn remove_attempt(engine: &Engine, id: &str) -> Result<(), JobError> {
    let id = ContainerId::parse(id).map_err(EngineError::from)?;
    Ok(engine.remove(&id, true)?)
}

/// A Job no longer declared: its containers and its record go.
pub fn forget(engine: &Engine, job: &str) -> Result<(), JobError> {
    remove_attempts(engine, job)?;
    record::store(&engine.paths)
        .remove(job)
        .map(|_| ())
        .map_err(|source| JobError::Record {
            job: job.to_string(),
            source,
        })
}

/// Saves records the controller settled (exits, a finished run).
pub fn save_settled(engine: &Engine, records: &[JobRecord]) -> Result<(), JobError> {
    records.iter().try_for_each(|record| save(engine, record))
}
