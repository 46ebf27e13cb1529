//! The executor: carries out one action of a plan through the engine and
//! records it in the events log. A failing object does not stop unrelated
//! ones; every action and its result is reported. Which actions run side by
//! side is [`super::parallel`]'s business; the loop that plans again and
//! again lives in [`super::reconciler`].

use serde::Serialize;

use super::desired::{Desired, DesiredObject, DesiredSpec};
use super::events;
use super::jobs::effects::{self, JobError};
use super::outcome::{ContainerResult, Verdict};
use super::plan::{Action, Target, Verb};
use crate::engine::network::DeclaredNetwork;
use crate::engine::volume::{VolumeError, VolumeRecord};
use crate::engine::Progress;
use crate::engine::{CreateRequest, Engine, EngineError, Origin};
use crate::manifest::names::ContainerId;
use crate::manifest::{Kind, PullPolicy};
use crate::runtime::container_dir::LogConfig;
use crate::state::events::EventLog;

/// One action carried out, and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub action: Action,
    /// None when it succeeded.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub outcomes: Vec<Outcome>,
    /// The loop ended with nothing left to do or wait for. Not the same as
    /// success (an action may have failed): `-o json` says
    /// [`ApplyReport::failed`] as `converged`, see [`ApplyReport::to_json`].
    #[serde(skip)]
    pub converged: bool,
    /// Actions still pending when the deadline passed (waits, blocks).
    pub pending: Vec<Action>,
    /// What became of each declared container (apply only).
    pub results: Vec<ContainerResult>,
}

impl ApplyReport {
    /// Whether something did not go as declared: an action failed, the
    /// deadline passed first, or a container failed for good.
    pub fn failed(&self) -> bool {
        !self.converged
            || self.outcomes.iter().any(|o| o.error.is_some())
            || self.failed_containers().next().is_some()
    }

    /// What `-o json` prints: the report, with `converged` true only when
    /// everything went as declared, and `failed` naming what did not.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        let mut failed: Vec<&str> = self
            .outcomes
            .iter()
            .filter(|o| o.error.is_some())
            .map(|o| o.action.name.as_str())
            .chain(self.failed_containers().map(|r| r.name.as_str()))
            .collect();
        failed.dedup();
        value["converged"] = serde_json::json!(!self.failed());
        value["failed"] = serde_json::json!(failed);
        value
    }

    /// The containers that exited (or could not start) and will not start again.
    pub fn failed_containers(&self) -> impl Iterator<Item = &ContainerResult> {
        self.results.iter().filter(|r| r.verdict == Verdict::Failed)
    }
}

/// Executes one action and records it in the events log (a deleted
/// object's events stay: they are its history).
pub(super) fn carry_out(
    engine: &Engine,
    wanted: &Desired,
    action: Action,
    progress: &dyn Progress,
) -> Outcome {
    let error = execute(engine, wanted, &action, progress)
        .err()
        .map(|e| e.to_string());
    events::record(
        &EventLog::new(&engine.paths),
        &action,
        error.as_deref(),
        Some(&wanted.source),
    );
    Outcome { action, error }
}

/// Why an action failed; reported in its outcome and its object's events.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("{kind} {name} is not declared")]
    NotDeclared { kind: Kind, name: String },
    #[error("the plan's pull of {0} names no image (a bug in berth's planner)")]
    NoImage(String),
    #[error("{name} cannot be replaced, so the existing one is left as it is: {source}")]
    KeptOld {
        name: String,
        source: Box<EngineError>,
    },
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("{verb:?} of a {target:?} is not something berth does")]
    Unsupported { target: Target, verb: Verb },
}

/// A Job's action: a new run, an attempt started, stopped or removed, or
/// the whole Job forgotten (deleted, pruned).
fn execute_job(
    engine: &Engine,
    wanted: &Desired,
    action: &Action,
    verb: Verb,
) -> Result<(), ActionError> {
    let name = action.name.as_str();
    let declared = || -> Result<(&DesiredObject, &crate::manifest::JobSpec), ActionError> {
        let object = object(wanted, Kind::Job, name)?;
        match &object.spec {
            DesiredSpec::Job(spec) => Ok((object, spec)),
            _ => Err(ActionError::NotDeclared {
                kind: Kind::Job,
                name: name.to_string(),
            }),
        }
    };
    match (verb, &action.attempt) {
        (Verb::Create | Verb::Replace, _) => {
            let (object, spec) = declared()?;
            let trigger = if action.schedule_tick.is_some() {
                "schedule"
            } else if action.reason.starts_with("berth job run") {
                "manual"
            } else {
                "apply"
            };
            if spec.schedule.is_some() && trigger == "apply" {
                return Ok(effects::declare_scheduled(
                    engine,
                    object,
                    spec,
                    &wanted.source,
                )?);
            }
            Ok(effects::begin_run(
                engine,
                object,
                spec,
                &wanted.source,
                trigger,
                action.schedule_tick,
            )?)
        }
        (Verb::Start, Some(attempt)) => {
            let (object, spec) = declared()?;
            Ok(effects::start_attempt(
                engine,
                object,
                spec,
                &wanted.source,
                attempt,
            )?)
        }
        (Verb::Stop, Some(attempt)) => Ok(effects::stop_attempt(engine, &attempt.id)?),
        (Verb::Delete, Some(attempt)) => Ok(effects::remove_attempt(engine, &attempt.id)?),
        (Verb::Delete, None) => Ok(effects::forget(engine, name)?),
        (verb, _) => Err(ActionError::Unsupported {
            target: Target::Job,
            verb,
        }),
    }
}

/// Make before break: the replacement is made ready (image, snapshot,
/// spec) before the old container is removed; when that fails, the old one
/// keeps running and the action fails saying so.
fn replace_existing(
    engine: &Engine,
    request: &CreateRequest,
    progress: &dyn Progress,
) -> Result<(), ActionError> {
    engine
        .preflight(request, progress)
        .map_err(|source| ActionError::KeptOld {
            name: request.id.to_string(),
            source: Box::new(source),
        })?;
    stop_then_remove(engine, &request.id)
}

/// Removes a container the reconciler replaces or deletes after stopping
/// it as `berth stop` does: its stop signal, then SIGKILL once its grace
/// period (`stopGracePeriod`, default 10 s) has passed. A database that is
/// replaced or pruned gets to shut down cleanly, not killed mid-write.
fn stop_then_remove(engine: &Engine, id: &ContainerId) -> Result<(), ActionError> {
    if engine.record(id).is_ok() {
        engine.stop(id, None)?;
    }
    engine.remove(id, true).map_err(ActionError::from)
}

fn object<'a>(
    wanted: &'a Desired,
    kind: Kind,
    name: &str,
) -> Result<&'a DesiredObject, ActionError> {
    wanted
        .get(kind, name)
        .ok_or_else(|| ActionError::NotDeclared {
            kind,
            name: name.to_string(),
        })
}

/// Carries out one action.
fn execute(
    engine: &Engine,
    wanted: &Desired,
    action: &Action,
    progress: &dyn Progress,
) -> Result<(), ActionError> {
    let name = action.name.as_str();
    match (action.target, action.verb) {
        (Target::Image, Verb::Pull) => {
            let policy = action.pull_policy.unwrap_or(PullPolicy::IfNotPresent);
            let image = action
                .image
                .as_ref()
                .ok_or_else(|| ActionError::NoImage(name.to_string()))?;
            engine
                .ensure_image(image, policy, progress)
                .map(|_| ())
                .map_err(ActionError::from)
        }
        (Target::Network, Verb::Create | Verb::Replace) => {
            if action.verb == Verb::Replace {
                // Its containers left first (the plan orders them so): the
                // old bridge and its addresses go before the new record.
                engine.delete_network(name)?;
            }
            let object = object(wanted, Kind::Network, name)?;
            let DesiredSpec::Network(spec) = &object.spec else {
                return Err(ActionError::NotDeclared {
                    kind: Kind::Network,
                    name: name.to_string(),
                });
            };
            Ok(engine.put_network(&DeclaredNetwork {
                name,
                spec,
                source: &wanted.source,
                file: &object.file,
                line: object.line,
                fingerprint: &object.fingerprint,
            })?)
        }
        (Target::Network, Verb::Delete) => Ok(engine.delete_network(name)?),
        (Target::Volume, Verb::Create | Verb::Replace) => {
            let object = object(wanted, Kind::Volume, name)?;
            engine
                .volumes()
                .put(&VolumeRecord {
                    name: name.to_string(),
                    source: Some(wanted.source.clone()),
                    file: Some(object.file.clone()),
                    line: Some(object.line),
                    fingerprint: Some(object.fingerprint.clone()),
                })
                .map_err(ActionError::from)
        }
        (Target::Volume, Verb::Delete) => engine.volumes().remove(name).map_err(ActionError::from),
        (Target::Container, Verb::Create | Verb::Replace | Verb::Repair) => {
            let id = ContainerId::parse(name).map_err(EngineError::from)?;
            let object = object(wanted, Kind::Container, name)?;
            let DesiredSpec::Container(spec) = &object.spec else {
                return Err(ActionError::NotDeclared {
                    kind: Kind::Container,
                    name: name.to_string(),
                });
            };
            let request = CreateRequest {
                id: id.clone(),
                spec: spec.clone(),
                image: object.image.clone().ok_or(ActionError::NotDeclared {
                    kind: Kind::Container,
                    name: name.to_string(),
                })?,
                // The planner's pull of an `Always` image ran earlier in
                // this pass: no second one here.
                pull_policy: match spec.image_pull_policy {
                    PullPolicy::Always => PullPolicy::IfNotPresent,
                    other => other,
                },
                base_dir: object.base_dir.clone(),
                origin: Origin::Manifest {
                    source: wanted.source.clone(),
                    file: object.file.clone(),
                    line: Some(object.line),
                },
                fingerprint: Some(object.fingerprint.clone()),
                stdin: false,
                berth_env: Vec::new(),
                log: LogConfig::of(spec.logging.as_ref()),
                ephemeral: false,
                console_socket: None,
                labels: object.labels.clone(),
            };
            // A container created again after its record was quarantined
            // may still run: what is left of it goes first.
            if action.verb != Verb::Create
                || engine.record(&id).is_ok()
                || engine.has_leftovers(&id)
            {
                replace_existing(engine, &request, progress)?;
            }
            engine
                .create(request, progress)
                .map(|_| ())
                .map_err(ActionError::from)
        }
        (Target::Container, Verb::Delete) => {
            let id = ContainerId::parse(name).map_err(EngineError::from)?;
            stop_then_remove(engine, &id)
        }
        (Target::Job, verb) => execute_job(engine, wanted, action, verb),
        (target, verb) => Err(ActionError::Unsupported { target, verb }),
    }
}
