//! Jobs: batch workloads that run a container to completion, many times.
//! A Job's record ([`record`]) says which run it is in and what each
//! attempt did; the pure [`controller`] settles it against the attempts'
//! containers and says what to start, stop or remove; the planner turns
//! that into actions and the executor carries them out through the
//! engine, as for any other object.

pub mod controller;
pub mod effects;
pub mod record;

use crate::reconcile::desired::{Desired, DesiredSpec};
use crate::reconcile::plan::Actual;
use record::JobRecord;

/// Settles each declared Job's record for its current spec against what
/// its attempts' containers did by `now` (unix ms), in `actual`; returns
/// the records that changed, for the caller to save (`plan` does not).
pub fn settle(desired: &Desired, actual: &mut Actual, now: u64) -> Vec<JobRecord> {
    let mut changed = Vec::new();
    for object in &desired.objects {
        let DesiredSpec::Job(spec) = &object.spec else {
            continue;
        };
        let Some(job) = actual.jobs.iter_mut().find(|j| j.name == object.name) else {
            continue;
        };
        let attempts = job.attempts.clone();
        let Some(record) = job.record.as_mut() else {
            continue;
        };
        if !object
            .fingerprint
            .changed_parts(&record.fingerprint)
            .is_empty()
        {
            continue; // a new run is planned
        }
        let seen = |id: &str| {
            attempts
                .iter()
                .find(|(attempt, _)| attempt == id)
                .map_or(controller::Seen::Missing, |(_, seen)| *seen)
        };
        let mut record_changed = controller::settle(spec, record, &seen, now);
        record_changed |= skip_forbidden_tick(spec, record, now);
        if record_changed {
            changed.push(record.clone());
        }
    }
    changed
}

/// concurrencyPolicy Forbid: a tick that came while a run was active is
/// skipped for good (noted in the record), not run once the run ends.
fn skip_forbidden_tick(spec: &crate::manifest::JobSpec, record: &mut JobRecord, now: u64) -> bool {
    match schedule_due(spec, record, now) {
        Some(crate::reconcile::schedule::Due::Skip { tick }) => {
            record.schedule_tick = Some(tick);
            true
        }
        _ => false,
    }
}

/// What a scheduled Job's schedule says at `now` (unix ms), given the
/// tick its record last acted on; None for a Job without a schedule.
pub fn schedule_due(
    spec: &crate::manifest::JobSpec,
    record: &JobRecord,
    now: u64,
) -> Option<crate::reconcile::schedule::Due> {
    let schedule = spec.schedule.as_ref()?;
    Some(crate::reconcile::schedule::due(
        schedule,
        spec.concurrency_policy,
        record.schedule_tick,
        record.declared_unix_ms / 1000,
        record.phase == record::JobPhase::Active,
        now / 1000,
    ))
}
