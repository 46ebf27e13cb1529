//! The planner: a pure function from desired and actual state to an ordered
//! list of actions, each with the reason it is needed. It touches nothing,
//! so every decision is unit-tested without root.
//!
//! Order: images; containers that must go before a network they use is
//! replaced; volumes and networks; containers and jobs in dependency order;
//! then, with `--prune`, deletions in reverse dependency order.

use std::collections::BTreeSet;

use serde::Serialize;

use super::conflicts::Claim;
use super::desired::{Desired, DesiredObject, DesiredSpec, IMAGE_PART};
use super::jobs::controller::{self, NewAttempt, Seen};
use super::jobs::record::{JobPhase, JobRecord};
use super::outcome::Exit;
use crate::manifest::reference::ImageSource;
use crate::manifest::{DependencyCondition, Kind, PullPolicy, RestartPolicy};
use crate::state::labels::Fingerprint;

/// What berth observed of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Created,
    Running,
    Restarting,
    /// Exited for good; `stopped` when berth stopped it on purpose.
    Exited {
        code: Option<i32>,
        stopped: bool,
    },
    /// The record exists but the container does not (shim and runtime gone).
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActualContainer {
    pub kind: Kind,
    pub name: String,
    /// The manifest source it came from; None for `berth run` containers.
    pub source: Option<String>,
    pub fingerprint: Option<Fingerprint>,
    pub observed: Observed,
    pub healthy: Option<bool>,
    /// Health checks failed in a row (after the start period), per its shim.
    pub failing_checks: u32,
    pub restart: RestartPolicy,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// Plumbing of a live container that is broken (its pinned netns gone,
    /// a CNI CHECK failed, its rootfs unmounted), or why the state of a
    /// Missing one cannot be told (its status file is corrupt), in words.
    pub fault: Option<String>,
    /// How long its current process has run, when it runs.
    pub running_for_ms: Option<u64>,
    /// How its last run ended, when one has.
    pub last_exit: Option<Exit>,
    /// Why its last start failed, in a few words, when it did.
    pub start_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActualShared {
    pub name: String,
    pub source: Option<String>,
    pub fingerprint: Option<Fingerprint>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actual {
    /// Image names present in the store.
    pub images: BTreeSet<String>,
    pub containers: Vec<ActualContainer>,
    pub networks: Vec<ActualShared>,
    pub volumes: Vec<ActualShared>,
    /// What each of them holds (names, host ports, subnets, bridges), for
    /// the conflict check before a set is planned.
    pub claims: Vec<Claim>,
    /// Volumes whose record was corrupt (and quarantined), by name, with
    /// why nobody may take them over.
    pub unknown_owners: Vec<(String, String)>,
    /// Containers whose shim died before it recorded their exit: apply
    /// settles them (see [`crate::engine::Engine::settle_lost_shim`]) before
    /// it plans.
    pub lost_shims: Vec<String>,
    /// Jobs, with their records and their attempts' containers (which are
    /// not in `containers`).
    pub jobs: Vec<ActualJob>,
}

/// A Job as berth finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualJob {
    pub name: String,
    /// The manifest set that declared it; None when its record is gone.
    pub source: Option<String>,
    pub record: Option<JobRecord>,
    /// Its attempts' containers and what each did.
    pub attempts: Vec<(String, Seen)>,
}

impl ActualJob {
    /// What the container of attempt `id` did; Missing when it is gone.
    pub fn seen(&self, id: &str) -> Seen {
        self.attempts
            .iter()
            .find(|(attempt, _)| attempt == id)
            .map_or(Seen::Missing, |(_, seen)| *seen)
    }
}

impl Actual {
    fn container(&self, kind: Kind, name: &str) -> Option<&ActualContainer> {
        self.containers
            .iter()
            .find(|c| c.kind == kind && c.name == name)
    }

    /// Why nobody may take the volume `name` over, when its owner is unknown.
    fn unknown_owner(&self, name: &str) -> Option<&str> {
        self.unknown_owners
            .iter()
            .find(|(volume, _)| volume == name)
            .map(|(_, why)| why.as_str())
    }

    fn workload(&self, name: &str) -> Option<&ActualContainer> {
        self.containers
            .iter()
            .find(|c| c.name == name && matches!(c.kind, Kind::Container | Kind::Job))
    }
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub prune: bool,
    pub prune_volumes: bool,
    /// Images this apply pass has pulled already: `imagePullPolicy: Always`
    /// means one pull per pass, not one per plan.
    pub pulled: BTreeSet<String>,
    /// Now, in unix ms: Jobs' backoffs, deadlines and ttls are counted
    /// from it.
    pub now_unix_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// Fetch or import an image.
    Pull,
    Create,
    /// Delete and create again because the fingerprint changed.
    Replace,
    /// Recreate what drifted (killed, removed behind berth's back).
    Repair,
    Delete,
    /// Start one attempt of a Job's run.
    Start,
    /// Stop an attempt a finished Job no longer needs (its container and
    /// logs stay until `ttlAfterFinished`).
    Stop,
    /// Not yet: a dependency has not reached its condition.
    Wait,
    /// Cannot: doing it would disrupt something the plan does not own.
    Blocked,
}

/// What an action acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Target {
    Image,
    Container,
    Job,
    Network,
    Volume,
}

impl From<Kind> for Target {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Container => Target::Container,
            Kind::Job => Target::Job,
            Kind::Network => Target::Network,
            Kind::Volume => Target::Volume,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub target: Target,
    pub name: String,
    pub verb: Verb,
    pub reason: String,
    /// For a pull: the policy that asks for it, which the executor obeys.
    #[serde(rename = "pullPolicy", skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// For a pull: the image, as the desired state resolved it.
    #[serde(skip)]
    pub image: Option<ImageSource>,
    /// For a Job's Start, Stop or Delete: the attempt it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<NewAttempt>,
    /// For a Wait that a time ends (a Job's backoff): when, in unix ms.
    #[serde(skip)]
    pub until_unix_ms: Option<u64>,
    /// For a scheduled Job's new run: the tick (unix seconds) it is for.
    #[serde(skip)]
    pub schedule_tick: Option<u64>,
}

impl Action {
    pub fn new(target: Target, name: &str, verb: Verb, reason: impl Into<String>) -> Self {
        Action {
            target,
            name: name.to_string(),
            verb,
            reason: reason.into(),
            pull_policy: None,
            image: None,
            attempt: None,
            until_unix_ms: None,
            schedule_tick: None,
        }
    }

    fn about_attempt(mut self, attempt: NewAttempt) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// Whether the action changes anything (Wait and Blocked do not).
    pub fn is_change(&self) -> bool {
        !matches!(self.verb, Verb::Wait | Verb::Blocked)
    }
}

/// Says in words which parts of a fingerprint changed.
pub fn describe_changes(parts: &[String]) -> String {
    let phrases: Vec<String> = parts
        .iter()
        .map(|part| {
            if let Some(field) = part.strip_prefix("spec.") {
                format!("spec.{field} changed")
            } else if let Some(file) = part.strip_prefix("envFile:") {
                format!("env file {file} changed")
            } else if let Some(source) = part.strip_prefix("bind:") {
                format!("read-only bind mount {source} changed")
            } else if let Some(network) = part.strip_prefix("network:") {
                format!("network {network} changed")
            } else if let Some(volume) = part.strip_prefix("volume:") {
                format!("volume {volume} changed")
            } else if part == "image" {
                "the image changed".to_string()
            } else {
                format!("{part} changed")
            }
        })
        .collect();
    phrases.join("; ")
}

/// Workloads in dependency order (dependencies first), ties by kind and name.
fn dependency_order(desired: &Desired) -> Vec<&DesiredObject> {
    let mut workloads: Vec<&DesiredObject> = desired
        .objects
        .iter()
        .filter(|o| matches!(o.kind, Kind::Container | Kind::Job))
        .collect();
    workloads.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    // The smallest ready workload each step: a deterministic topological order.
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < workloads.len() {
        let next = workloads.iter().find(|object| {
            !placed.contains(&object.name)
                && object.dependencies().iter().all(|(dep, _)| {
                    placed.contains(dep) || !workloads.iter().any(|w| &w.name == dep)
                })
        });
        match next {
            Some(object) => {
                placed.insert(object.name.clone());
                order.push(*object);
            }
            None => {
                // A cycle (validation rejects them): keep the rest in name order.
                order.extend(
                    workloads
                        .iter()
                        .filter(|o| !placed.contains(&o.name))
                        .copied(),
                );
                break;
            }
        }
    }
    order
}

/// Whether a workload's dependencies allow it to start now, given what the
/// plan starts earlier in this pass.
/// Returns the verb (Wait, or Blocked when a Job it needs has failed) and
/// why.
fn blocking_dependency(
    object: &DesiredObject,
    actual: &Actual,
    starting: &BTreeSet<String>,
    replacing: &BTreeSet<String>,
) -> Option<(Verb, String)> {
    for (dep, condition) in object.dependencies() {
        if let Some(job) = actual
            .jobs
            .iter()
            .find(|j| j.name == dep && j.record.is_some())
        {
            if let Some(blocked) = job_dependency(&dep, condition, job, starting, replacing) {
                return Some(blocked);
            }
            continue;
        }
        let observed = actual.workload(&dep);
        let satisfied = match condition {
            DependencyCondition::Started => {
                starting.contains(&dep)
                    || observed.is_some_and(|c| {
                        matches!(c.observed, Observed::Running | Observed::Restarting)
                    })
            }
            DependencyCondition::Healthy => {
                !replacing.contains(&dep)
                    && observed
                        .is_some_and(|c| c.observed == Observed::Running && c.healthy == Some(true))
            }
            DependencyCondition::Completed => {
                !replacing.contains(&dep)
                    && observed.is_some_and(|c| {
                        matches!(c.observed, Observed::Exited { code: Some(0), .. })
                    })
            }
        };
        if !satisfied {
            let word = match condition {
                DependencyCondition::Started => "started",
                DependencyCondition::Healthy => "healthy",
                DependencyCondition::Completed => "completed",
            };
            return Some((Verb::Wait, format!("waiting for {dep} to be {word}")));
        }
    }
    None
}

/// A dependency on a Job: `completed` once its run is Complete (a new run
/// planned in this pass is not), `started` once its run began; a Failed
/// run blocks its dependents, saying why.
fn job_dependency(
    dep: &str,
    condition: DependencyCondition,
    job: &ActualJob,
    starting: &BTreeSet<String>,
    replacing: &BTreeSet<String>,
) -> Option<(Verb, String)> {
    let record = job.record.as_ref()?;
    if replacing.contains(dep) {
        return Some((Verb::Wait, format!("waiting for Job {dep}'s new run")));
    }
    match (record.phase, condition) {
        (JobPhase::Failed, _) => Some((
            Verb::Blocked,
            format!(
                "Job {dep} failed ({}); its dependents do not start until it is fixed and runs again",
                record.reason.as_deref().unwrap_or("no reason recorded")
            ),
        )),
        (JobPhase::Complete, _) => None,
        (JobPhase::Active, DependencyCondition::Started) if starting.contains(dep) || record.running().next().is_some() => None,
        (JobPhase::Active, _) => Some((Verb::Wait, format!("waiting for Job {dep} to complete"))),
    }
}

fn restart_policy(object: &DesiredObject) -> RestartPolicy {
    match &object.spec {
        DesiredSpec::Container(spec) => spec.restart.policy,
        _ => RestartPolicy::Never,
    }
}

fn pull_policy(object: &DesiredObject) -> PullPolicy {
    match &object.spec {
        DesiredSpec::Container(spec) => spec.image_pull_policy,
        DesiredSpec::Job(spec) => spec.template.image_pull_policy,
        _ => PullPolicy::IfNotPresent,
    }
}

/// Whether to fetch `image`: when it is missing (unless the policy is
/// Never), and once per apply pass when the policy is Always.
fn decide_pull(
    image: &ImageSource,
    policy: PullPolicy,
    actual: &Actual,
    options: &PlanOptions,
) -> Option<Action> {
    if image.rootfs_dir().is_some() {
        return None; // a directory is used where it is: nothing to fetch
    }
    let name = image.to_string();
    let missing = !actual.images.contains(&name);
    let reason = if missing && policy != PullPolicy::Never {
        "not in the image store"
    } else if policy == PullPolicy::Always && !options.pulled.contains(&name) {
        "imagePullPolicy is Always"
    } else {
        return None;
    };
    let mut action = Action::new(Target::Image, &name, Verb::Pull, reason);
    action.pull_policy = Some(policy);
    action.image = Some(image.clone());
    Some(action)
}

/// The parts of `object` that changed since `old`, less what is not a
/// change of configuration:
/// - its image when berth cannot resolve it now (record missing or
///   unreadable): an unknown image is not a changed one, and replacing a
///   working container for it would destroy what cannot be recreated;
/// - a `bind:` part that only the old one has: a read-write bind mount is
///   data, not hashed (earlier versions of berth hashed it); a mount that
///   was removed or made read-write shows in `spec.mounts` anyway.
fn known_changes(object: &DesiredObject, old: &Fingerprint) -> Vec<String> {
    let new = &object.fingerprint;
    let image_unknown = object.image.is_some() && !new.parts.contains_key(IMAGE_PART);
    let mut parts = new.changed_parts(old);
    parts.retain(|part| !part.starts_with("bind:") || new.parts.contains_key(part));
    if image_unknown {
        parts.retain(|part| part != IMAGE_PART);
    }
    parts
}

/// What to do about one desired workload that exists.
fn decide_existing(
    object: &DesiredObject,
    current: &ActualContainer,
    source: &str,
) -> Option<(Verb, String)> {
    if current.source.as_deref() != Some(source) {
        let owner = current
            .source
            .as_deref()
            .map_or("berth run".to_string(), |s| format!("manifest set {s}"));
        return Some((Verb::Blocked, format!("a {:?} named {} already exists and belongs to {owner}; berth will not take it over", current.kind, object.name)));
    }
    let changed = current
        .fingerprint
        .as_ref()
        .map(|old| known_changes(object, old));
    match changed {
        None => return Some((Verb::Replace, "it was created without a fingerprint".into())),
        Some(parts) if !parts.is_empty() => return Some((Verb::Replace, describe_changes(&parts))),
        _ => {}
    }
    match &current.observed {
        // A fault here says why berth cannot tell its state (a corrupt
        // status file): repaired as gone, and said so.
        Observed::Missing => Some((
            Verb::Repair,
            current.fault.as_ref().map_or_else(
                || "drift: it is gone (removed or killed behind berth's back)".into(),
                |fault| format!("drift: {fault}"),
            ),
        )),
        Observed::Exited { code, stopped } => {
            let keeps_running = matches!(
                restart_policy(object),
                RestartPolicy::Always | RestartPolicy::UnlessStopped
            );
            let unless_stopped_by_user =
                restart_policy(object) == RestartPolicy::UnlessStopped && *stopped;
            if object.kind == Kind::Container && keeps_running && !unless_stopped_by_user {
                let how = code.map_or("was killed".to_string(), |c| {
                    format!("exited with code {c}")
                });
                Some((
                    Verb::Repair,
                    format!(
                        "drift: it {how} and its shim is gone; restart policy says it should run"
                    ),
                ))
            } else {
                None
            }
        }
        Observed::Created | Observed::Running | Observed::Restarting => current
            .fault
            .as_ref()
            .map(|fault| (Verb::Repair, format!("drift: {fault}"))),
    }
}

/// Whether a network or volume was made by a manifest set other than `source`.
fn owned_by_another_set(current: &ActualShared, source: &str) -> bool {
    current
        .source
        .as_deref()
        .is_some_and(|owner| owner != source)
}

/// What a declared Job needs: a new run when it never ran or its spec
/// changed (once its dependencies allow), else what its controller says
/// for the run in progress: attempts to start, to stop, containers the ttl
/// removes, a backoff to wait out. A finished Job whose spec did not
/// change needs nothing (applying it again runs nothing).
fn plan_job(
    object: &DesiredObject,
    spec: &crate::manifest::JobSpec,
    job: Option<&ActualJob>,
    source: &str,
    dependency_wait: Option<(Verb, String)>,
    now: u64,
) -> Vec<Action> {
    let action = |verb, reason: String| Action::new(Target::Job, &object.name, verb, reason);
    if let Some(owner) = job
        .and_then(|j| j.source.as_deref())
        .filter(|s| *s != source)
    {
        return vec![action(
            Verb::Blocked,
            format!("a Job named {} already exists and belongs to manifest set {owner}; berth will not take it over", object.name),
        )];
    }
    let record = job.and_then(|j| j.record.as_ref());
    let scheduled = spec.schedule.is_some();
    let new_run = match record {
        None if scheduled => Some((
            Verb::Create,
            "declared; runs at its schedule's ticks".to_string(),
            None,
        )),
        None => Some((Verb::Create, "declared, never ran".to_string(), None)),
        Some(record) => {
            let changed = object.fingerprint.changed_parts(&record.fingerprint);
            if !changed.is_empty() {
                let what = if scheduled {
                    "the next tick runs it"
                } else {
                    "a new run"
                };
                Some((
                    Verb::Replace,
                    format!("{}: {what}", describe_changes(&changed)),
                    None,
                ))
            } else {
                requested_or_due(spec, record, now)
            }
        }
    };
    if let Some((verb, reason, tick)) = new_run {
        return match dependency_wait {
            Some((wait_verb, wait)) => vec![action(wait_verb, format!("{wait} ({reason})"))],
            None => {
                let mut run = action(verb, reason);
                run.schedule_tick = tick;
                vec![run]
            }
        };
    }
    let (Some(job), Some(record)) = (job, record) else {
        return Vec::new();
    };
    let seen = |id: &str| job.seen(id);
    let steps = controller::steps(spec, record, &seen, now);
    let mut actions = Vec::new();
    for attempt in steps.start {
        let reason = match attempt.index {
            Some(index) => format!(
                "run {} attempt {} (index {index})",
                record.run, attempt.number
            ),
            None => format!("run {} attempt {}", record.run, attempt.number),
        };
        actions.push(action(Verb::Start, reason).about_attempt(attempt));
    }
    for id in steps.stop {
        let reason = format!("{id}: {}", record.reason.clone().unwrap_or_default());
        actions.push(action(Verb::Stop, reason).about_attempt(known_attempt(record, &id)));
    }
    for id in steps.remove {
        let reason = format!("{id}: ttlAfterFinished has passed since the Job finished");
        actions.push(action(Verb::Delete, reason).about_attempt(known_attempt(record, &id)));
    }
    if let Some((reason, until)) = steps.waiting {
        let mut wait = action(Verb::Wait, reason);
        wait.until_unix_ms = until;
        actions.push(wait);
    }
    actions
}

/// A new run that `berth job run` asked for, or that a schedule tick
/// brings (Replace stops the active run first; Forbid's skipped ticks are
/// settled before planning).
fn requested_or_due(
    spec: &crate::manifest::JobSpec,
    record: &JobRecord,
    now: u64,
) -> Option<(Verb, String, Option<u64>)> {
    let active = record.phase == JobPhase::Active;
    if record.run_requested.is_some() && !active {
        return Some((
            Verb::Replace,
            "berth job run asked for a new run".into(),
            None,
        ));
    }
    let at = |tick: u64| crate::runtime::logs::format_seconds(tick * 1000);
    match super::jobs::schedule_due(spec, record, now)? {
        super::schedule::Due::Start { tick, missed } => {
            let missed = if missed > 0 {
                format!(" ({missed} earlier ticks missed; one run for all)")
            } else {
                String::new()
            };
            Some((
                Verb::Replace,
                format!("schedule tick {}{missed}", at(tick)),
                Some(tick),
            ))
        }
        super::schedule::Due::Replace { tick } => Some((
            Verb::Replace,
            format!(
                "schedule tick {}: replaces the active run (concurrencyPolicy Replace)",
                at(tick)
            ),
            Some(tick),
        )),
        super::schedule::Due::Skip { .. } | super::schedule::Due::NotYet { .. } => None,
    }
}

fn known_attempt(record: &JobRecord, id: &str) -> NewAttempt {
    let attempt = record.attempts.iter().find(|a| a.id == id);
    NewAttempt {
        id: id.to_string(),
        number: attempt.map_or(0, |a| a.number),
        index: attempt.and_then(|a| a.index),
    }
}

/// Plans what makes `actual` match `desired`.
pub fn plan(desired: &Desired, actual: &Actual, options: &PlanOptions) -> Vec<Action> {
    let mut images = Vec::new();
    let mut before_networks = Vec::new();
    let mut shared = Vec::new();
    let mut workloads = Vec::new();
    let mut prunes = Vec::new();

    // Images.
    let mut seen_images = BTreeSet::new();
    for object in &desired.objects {
        let Some(image) = &object.image else {
            continue;
        };
        if !seen_images.insert(image.to_string()) {
            continue;
        }
        if let Some(pull) = decide_pull(image, pull_policy(object), actual, options) {
            images.push(pull);
        }
    }

    // Volumes and networks.
    let mut replaced_networks = BTreeSet::new();
    for object in desired
        .objects
        .iter()
        .filter(|o| matches!(o.kind, Kind::Volume | Kind::Network))
    {
        let existing = match object.kind {
            Kind::Volume => actual.volumes.iter().find(|v| v.name == object.name),
            _ => actual.networks.iter().find(|n| n.name == object.name),
        };
        let unknown_owner = match object.kind {
            Kind::Volume => actual.unknown_owner(&object.name),
            _ => None,
        };
        if let Some(why) = unknown_owner {
            shared.push(Action::new(
                Target::Volume,
                &object.name,
                Verb::Blocked,
                why,
            ));
            continue;
        }
        match existing {
            None => shared.push(Action::new(
                object.kind.into(),
                &object.name,
                Verb::Create,
                "declared, does not exist",
            )),
            Some(current) if owned_by_another_set(current, &desired.source) => {
                // Apply refuses such a set before planning (see conflicts);
                // the plan never takes it over either.
                shared.push(Action::new(
                    object.kind.into(),
                    &object.name,
                    Verb::Blocked,
                    format!(
                        "belongs to manifest set {}; berth will not take it over",
                        current.source.as_deref().unwrap_or_default()
                    ),
                ));
            }
            Some(current) => {
                let changed = current
                    .fingerprint
                    .as_ref()
                    .map(|old| object.fingerprint.changed_parts(old))
                    .unwrap_or_default();
                if changed.is_empty() {
                    continue;
                }
                if object.kind == Kind::Volume {
                    // A volume's data is the user's: record the new labels, never recreate.
                    shared.push(Action::new(
                        Target::Volume,
                        &object.name,
                        Verb::Replace,
                        format!("{}; data kept", describe_changes(&changed)),
                    ));
                    continue;
                }
                let outside: Vec<&str> = actual
                    .containers
                    .iter()
                    .filter(|c| c.networks.contains(&object.name))
                    .filter(|c| {
                        c.source.as_deref() != Some(desired.source.as_str())
                            || desired.get(c.kind, &c.name).is_none()
                    })
                    .map(|c| c.name.as_str())
                    .collect();
                if outside.is_empty() {
                    replaced_networks.insert(object.name.clone());
                    shared.push(Action::new(
                        Target::Network,
                        &object.name,
                        Verb::Replace,
                        describe_changes(&changed),
                    ));
                } else {
                    shared.push(Action::new(
                        Target::Network,
                        &object.name,
                        Verb::Blocked,
                        format!(
                            "{} but containers this plan does not replace use it: {}",
                            describe_changes(&changed),
                            outside.join(", ")
                        ),
                    ));
                }
            }
        }
    }

    // Containers and jobs, dependencies first.
    let mut starting = BTreeSet::new();
    let mut replacing = BTreeSet::new();
    for object in dependency_order(desired) {
        if let DesiredSpec::Job(spec) = &object.spec {
            let job = actual.jobs.iter().find(|j| j.name == object.name);
            let wait = blocking_dependency(object, actual, &starting, &replacing);
            let actions = plan_job(
                object,
                spec,
                job,
                &desired.source,
                wait,
                options.now_unix_ms,
            );
            if actions
                .iter()
                .any(|a| matches!(a.verb, Verb::Create | Verb::Replace))
            {
                replacing.insert(object.name.clone());
            }
            workloads.extend(actions);
            continue;
        }
        let current = actual.container(object.kind, &object.name);
        let decision = match current {
            None => Some((Verb::Create, "declared, does not exist".to_string())),
            Some(current) => decide_existing(object, current, &desired.source),
        };
        let Some((verb, reason)) = decision else {
            if current.is_some_and(|c| c.observed == Observed::Created) {
                // Not converged until it runs: its shim is still starting it.
                workloads.push(Action::new(
                    object.kind.into(),
                    &object.name,
                    Verb::Wait,
                    "starting",
                ));
            }
            continue;
        };
        if verb == Verb::Blocked {
            workloads.push(Action::new(object.kind.into(), &object.name, verb, reason));
            continue;
        }
        if let Some((verb, wait)) = blocking_dependency(object, actual, &starting, &replacing) {
            workloads.push(Action::new(
                object.kind.into(),
                &object.name,
                verb,
                format!("{wait} ({reason})"),
            ));
            continue;
        }
        let uses_replaced_network = object
            .networks()
            .iter()
            .any(|n| replaced_networks.contains(n));
        if current.is_some() && uses_replaced_network {
            // Off the network before it is replaced, back on after.
            before_networks.push(Action::new(
                object.kind.into(),
                &object.name,
                Verb::Delete,
                format!("{reason}: leaves the network before it is replaced"),
            ));
            workloads.push(Action::new(
                object.kind.into(),
                &object.name,
                Verb::Create,
                reason,
            ));
        } else {
            workloads.push(Action::new(object.kind.into(), &object.name, verb, reason));
        }
        if verb == Verb::Replace {
            replacing.insert(object.name.clone());
        }
        starting.insert(object.name.clone());
    }

    // Pruning: only what this manifest set created and no longer declares.
    if options.prune {
        let ours = |source: &Option<String>| source.as_deref() == Some(desired.source.as_str());
        let mut doomed: Vec<&ActualContainer> = actual
            .containers
            .iter()
            .filter(|c| ours(&c.source) && desired.get(c.kind, &c.name).is_none())
            .collect();
        doomed.sort_by(|a, b| b.name.cmp(&a.name));
        for job in actual
            .jobs
            .iter()
            .filter(|j| ours(&j.source) && desired.get(Kind::Job, &j.name).is_none())
        {
            prunes.push(Action::new(
                Target::Job,
                &job.name,
                Verb::Delete,
                "pruned: no longer declared (its containers and its record go)",
            ));
        }
        for container in &doomed {
            prunes.push(Action::new(
                container.kind.into(),
                &container.name,
                Verb::Delete,
                "pruned: no longer declared",
            ));
        }
        let remaining_users = |network: &str| -> Vec<String> {
            actual
                .containers
                .iter()
                .filter(|c| c.networks.iter().any(|n| n == network))
                .filter(|c| !doomed.iter().any(|d| d.name == c.name && d.kind == c.kind))
                .map(|c| c.name.clone())
                .collect()
        };
        for network in actual
            .networks
            .iter()
            .filter(|n| ours(&n.source) && desired.get(Kind::Network, &n.name).is_none())
        {
            let users = remaining_users(&network.name);
            if users.is_empty() {
                prunes.push(Action::new(
                    Target::Network,
                    &network.name,
                    Verb::Delete,
                    "pruned: no longer declared",
                ));
            } else {
                prunes.push(Action::new(
                    Target::Network,
                    &network.name,
                    Verb::Blocked,
                    format!("no longer declared but still used by {}", users.join(", ")),
                ));
            }
        }
        if options.prune_volumes {
            for volume in actual
                .volumes
                .iter()
                .filter(|v| ours(&v.source) && desired.get(Kind::Volume, &v.name).is_none())
            {
                let users: Vec<&str> = actual
                    .containers
                    .iter()
                    .filter(|c| {
                        c.volumes.contains(&volume.name) && !doomed.iter().any(|d| d.name == c.name)
                    })
                    .map(|c| c.name.as_str())
                    .collect();
                if users.is_empty() {
                    prunes.push(Action::new(
                        Target::Volume,
                        &volume.name,
                        Verb::Delete,
                        "pruned with --prune-volumes: no longer declared",
                    ));
                } else {
                    prunes.push(Action::new(
                        Target::Volume,
                        &volume.name,
                        Verb::Blocked,
                        format!("no longer declared but still used by {}", users.join(", ")),
                    ));
                }
            }
        }
    }

    let mut actions = images;
    actions.extend(before_networks);
    // Volumes before networks, each group by name (shared is built in object order).
    shared.sort_by(|a, b| {
        (b.target == Target::Volume)
            .cmp(&(a.target == Target::Volume))
            .then(a.name.cmp(&b.name))
    });
    actions.extend(shared);
    actions.extend(workloads);
    actions.extend(prunes);
    actions
}

/// What `berth delete -f PATH` does: removes the declared objects this
/// source owns. Workloads go first, in reverse dependency order; then
/// networks nobody else uses; then, only with `volumes`, volumes. Objects
/// another source or `berth run` owns are left alone, and said so.
pub fn plan_delete(desired: &Desired, actual: &Actual, volumes: bool) -> Vec<Action> {
    let ours = |source: &Option<String>| source.as_deref() == Some(desired.source.as_str());
    let owner = |source: &Option<String>| {
        source
            .as_deref()
            .map_or("berth run".to_string(), |s| format!("manifest set {s}"))
    };
    let mut actions = Vec::new();
    let mut doomed: BTreeSet<&str> = BTreeSet::new();
    for object in dependency_order(desired).into_iter().rev() {
        if object.kind == Kind::Job {
            if let Some(job) = actual.jobs.iter().find(|j| j.name == object.name) {
                let action = if job.source.is_none() || ours(&job.source) {
                    Action::new(
                        Target::Job,
                        &object.name,
                        Verb::Delete,
                        "declared in the deleted set",
                    )
                } else {
                    Action::new(
                        Target::Job,
                        &object.name,
                        Verb::Blocked,
                        format!("belongs to {}; left alone", owner(&job.source)),
                    )
                };
                actions.push(action);
            }
            continue;
        }
        let Some(current) = actual.container(object.kind, &object.name) else {
            continue;
        };
        if ours(&current.source) {
            doomed.insert(&current.name);
            actions.push(Action::new(
                object.kind.into(),
                &object.name,
                Verb::Delete,
                "declared in the deleted set",
            ));
        } else {
            actions.push(Action::new(
                object.kind.into(),
                &object.name,
                Verb::Blocked,
                format!("belongs to {}; left alone", owner(&current.source)),
            ));
        }
    }
    let users_left = |uses: &dyn Fn(&ActualContainer) -> bool| -> Vec<String> {
        actual
            .containers
            .iter()
            .filter(|c| uses(c) && !doomed.contains(c.name.as_str()))
            .map(|c| c.name.clone())
            .collect()
    };
    let mut shared: Vec<&DesiredObject> = desired
        .objects
        .iter()
        .filter(|o| o.kind == Kind::Network || (volumes && o.kind == Kind::Volume))
        .collect();
    // Networks before volumes, each by name.
    shared.sort_by(|a, b| {
        (a.kind != Kind::Network, &a.name).cmp(&(b.kind != Kind::Network, &b.name))
    });
    for object in shared {
        let existing = match object.kind {
            Kind::Network => actual.networks.iter().find(|n| n.name == object.name),
            _ => actual.volumes.iter().find(|v| v.name == object.name),
        };
        let Some(current) = existing else {
            continue;
        };
        let users = match object.kind {
            Kind::Network => users_left(&|c| c.networks.contains(&object.name)),
            _ => users_left(&|c| c.volumes.contains(&object.name)),
        };
        let unknown_owner = match object.kind {
            Kind::Volume => actual.unknown_owner(&object.name),
            _ => None,
        };
        let (verb, reason) = if let Some(why) = unknown_owner {
            (Verb::Blocked, format!("{why}; left alone"))
        } else if !ours(&current.source) {
            (
                Verb::Blocked,
                format!("belongs to {}; left alone", owner(&current.source)),
            )
        } else if !users.is_empty() {
            (Verb::Blocked, format!("still used by {}", users.join(", ")))
        } else {
            (Verb::Delete, "declared in the deleted set".to_string())
        };
        actions.push(Action::new(object.kind.into(), &object.name, verb, reason));
    }
    actions
}
