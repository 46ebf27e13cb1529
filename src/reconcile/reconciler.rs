//! The loop, as kube-rs runs a controller: the [`Reconciler`] holds the
//! engine and the state root's reconcile lock; each pass observes, plans and
//! decides what comes next ([`next`], pure), and the loop carries that out
//! under an injected [`Clock`], so its timing is tested without sleeping.
//! `berth apply` runs passes until converged or its deadline; the daemon
//! will run them for ever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conflicts::{self, Conflict};
use super::desired::{self, Desired};
use super::execute::{carry_out, ApplyReport, Outcome};
use super::jobs;
use super::lock::{self, ReconcileLockError};
use super::observe::{observe, ObserveOptions};
use super::outcome::{results, waiting};
use super::parallel::{default_parallelism, ordering, run_ordered};
use super::plan::{plan, plan_delete, Action, Actual, PlanOptions, Target, Verb};
use crate::engine::gc::GcReport;
use crate::engine::network::NetworkSweep;
use crate::engine::Progress;
use crate::engine::{Engine, EngineError};
use crate::manifest::{ManifestSet, SetIdentity};
use crate::state::clock::Clock;
use crate::state::lock::{Lock, LockError};

/// How long a container without a health check must have run for
/// `apply --wait` to count it as up.
pub const READY_AFTER_MS: u64 = 1000;

/// How long a pass that only waits (for a dependency, a shim starting, a
/// health check) sleeps before it looks again.
pub const REQUEUE_AFTER: Duration = Duration::from_millis(50);

/// The longest a waiting pass backs off because looking was slow.
const MOST_LOOKING_BACKOFF: Duration = Duration::from_secs(2);

/// How long a waiting pass sleeps: what the schedule asks, and at least
/// twice what the pass itself took (up to [`MOST_LOOKING_BACKOFF`]), so
/// that looking never takes more than a third of a CPU from the containers
/// it waits for: with 1000 containers a pass reads 1000 records and
/// statuses, about 0.3 s, and passes 50 ms apart slowed their start.
fn requeue_delay(asked: Duration, pass: Duration) -> Duration {
    asked.max((pass * 2).min(MOST_LOOKING_BACKOFF))
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Lock(#[from] ReconcileLockError),
    #[error(transparent)]
    Desired(#[from] desired::DesiredError),
    #[error("observe the host: {0}")]
    Observe(#[source] EngineError),
    #[error("garbage collection: {0}")]
    Gc(#[source] EngineError),
    #[error("{}", describe_conflicts(.0))]
    Conflicts(Vec<Conflict>),
    #[error("record what Jobs did: {0}")]
    Jobs(#[source] Box<jobs::effects::JobError>),
}

/// The refusal of a set with conflicts: how many, then one per line.
fn describe_conflicts(conflicts: &[Conflict]) -> String {
    let mut text = format!(
        "refusing the manifest set: {} conflict{} with itself or with what others hold; nothing was changed",
        conflicts.len(),
        if conflicts.len() == 1 { "" } else { "s" }
    );
    for conflict in conflicts {
        text.push_str(&format!("\n  {conflict}"));
    }
    text
}

/// What a manifest set would take that another writer holds (or that two
/// of its own objects both want): a name, a host port, a subnet, a bridge.
pub fn conflicts_of(set: &ManifestSet, identity: &SetIdentity, actual: &Actual) -> Vec<Conflict> {
    conflicts::find(&conflicts::declared(set, &identity.source), &actual.claims)
}

#[derive(Default)]
pub struct ApplyOptions {
    pub plan: PlanOptions,
    pub timeout: Duration,
    /// After the plan is done, wait until every container runs (and is
    /// healthy, where it has a health check).
    pub wait: bool,
    /// Return as soon as only waits are left (a dependency's health, a
    /// shim starting), with them pending, instead of polling for them: the
    /// daemon is woken by the shims' status changes and plans again then.
    pub return_when_waiting: bool,
    /// Set from elsewhere (a signal): finish the actions in flight, then
    /// return with the rest pending.
    pub stop: Option<Arc<AtomicBool>>,
    /// How many independent actions run at once (0: a few per CPU).
    pub parallel: usize,
    /// Told what the loop is about to do and what it waits for, so the
    /// face can show it while it lasts (a pull, a health check, a
    /// dependency, a Job can take minutes); nothing below the CLI prints.
    pub observer: Option<ApplyObserver>,
}

/// Whom an apply tells what it does and waits for (see [`ApplyEvent`]).
pub type ApplyObserver = Box<dyn Fn(ApplyEvent<'_>) + Send + Sync>;

/// What an apply in progress tells its [`ApplyOptions::observer`].
#[derive(Debug, Clone, Copy)]
pub enum ApplyEvent<'a> {
    /// This action is about to be carried out (its outcome follows).
    Starting(&'a Action),
    /// A pass found nothing to change, only these to wait for; the loop
    /// looks again after [`REQUEUE_AFTER`]. `now` is the loop's clock.
    Waiting { now: Instant, waiting: &'a [Action] },
}

/// What `berth delete` removes, and how many removals run at once.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Volumes too (their data goes).
    pub volumes: bool,
    /// How many independent removals run at once (0: a few per CPU).
    pub parallel: usize,
}

impl ApplyOptions {
    fn tell(&self, event: ApplyEvent<'_>) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }

    fn stop_requested(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|stop| stop.load(Ordering::SeqCst))
    }
}

/// What the loop does after a pass, decided from its plan alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Carry these out, then plan again.
    Execute(Vec<Action>),
    /// Nothing to change now; look again after this long.
    Requeue {
        after: Duration,
        waiting: Vec<Action>,
    },
    /// The host matches the manifests (with `wait`: every container has
    /// reached its outcome, which may be a failure the report names).
    Converged,
    /// Stop without converging: the deadline passed.
    GiveUp { pending: Vec<Action> },
}

/// Decides the next step of the loop (pure). `failed` are the objects whose
/// action failed earlier in this run: they are not retried, their error is
/// reported. `ready` says, when `wait` is on and nothing else is left, what
/// the containers still lack to reach their outcome (up, finished, or
/// failed for good: a failed one is not waited for, the others still are).
pub fn next(
    actions: Vec<Action>,
    failed: &[(Target, String)],
    wait: bool,
    ready: impl FnOnce() -> Vec<Action>,
    now: Instant,
    deadline: Instant,
) -> Next {
    let (changes, mut waiting): (Vec<Action>, Vec<Action>) =
        actions.into_iter().partition(Action::is_change);
    // What is blocked stays blocked however long the loop waits (another
    // set owns it, a Job it needs failed): reported, not waited for.
    let (blocked, waits): (Vec<Action>, Vec<Action>) = waiting
        .iter()
        .cloned()
        .partition(|a| a.verb == Verb::Blocked);
    let to_do: Vec<Action> = changes
        .iter()
        .filter(|a| !failed.iter().any(|(t, n)| *t == a.target && *n == a.name))
        .cloned()
        .collect();
    if now > deadline {
        let mut pending = changes;
        pending.append(&mut waiting);
        if pending.is_empty() && wait {
            // What --wait waits for is as unfinished as the plan's waits.
            pending = ready();
        }
        return if pending.is_empty() {
            Next::Converged
        } else {
            Next::GiveUp { pending }
        };
    }
    if !to_do.is_empty() {
        return Next::Execute(to_do);
    }
    if waits.is_empty() && wait {
        // Not what is blocked: it will not become ready by waiting.
        let is_blocked = |a: &Action| {
            blocked
                .iter()
                .any(|b| b.target == a.target && b.name == a.name)
        };
        waiting.extend(ready().into_iter().filter(|a| !is_blocked(a)));
    }
    if waiting.len() == blocked.len() {
        // What failed stays failed; the report says so.
        return if blocked.is_empty() {
            Next::Converged
        } else {
            Next::GiveUp { pending: blocked }
        };
    }
    Next::Requeue {
        after: REQUEUE_AFTER,
        waiting,
    }
}

/// How a batch of actions is carried out: at most `parallel` at once (0: a
/// few per CPU), none started once `stop` says so, each announced to
/// `starting` as it begins.
struct Pool<'a> {
    parallel: usize,
    stop: &'a (dyn Fn() -> bool + Sync),
    starting: &'a (dyn Fn(&Action) + Sync),
}

/// The reconciler of one state root: the engine, and the lock that makes it
/// the only one.
pub struct Reconciler {
    engine: Engine,
    clock: Box<dyn Clock>,
    _lock: Lock,
}

impl Reconciler {
    /// Takes the reconcile lock (see [`lock::acquire`]) for `engine`.
    pub fn acquire(
        engine: Engine,
        clock: Box<dyn Clock>,
        patience: Duration,
        on_wait: &mut dyn FnMut(&LockError),
    ) -> Result<Self, ReconcileError> {
        let held = lock::acquire(&engine.paths, patience, clock.as_ref(), on_wait)?;
        Ok(Self::holding(engine, clock, held))
    }

    /// The reconciler of `engine` under a reconcile lock the caller took
    /// (see [`lock::acquire`]): the daemon takes it for one pass at a time,
    /// so `run`, `stop` and a manual `apply` get their turn between passes.
    pub fn holding(engine: Engine, clock: Box<dyn Clock>, lock: Lock) -> Self {
        Reconciler {
            engine,
            clock,
            _lock: lock,
        }
    }

    /// Lets go of the reconcile lock; the engine stays usable.
    pub fn release(self) -> Engine {
        self.engine
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn desired(
        &self,
        set: &ManifestSet,
        identity: &SetIdentity,
    ) -> Result<Desired, ReconcileError> {
        Ok(desired::build(
            set,
            &identity.source,
            &identity.tree,
            &self.engine,
        )?)
    }

    fn observe(&self, options: ObserveOptions) -> Result<Actual, ReconcileError> {
        observe(&self.engine, options).map_err(ReconcileError::Observe)
    }

    /// Applies a validated manifest set until converged or `options.timeout`.
    /// A set with conflicts (see [`conflicts_of`]) is refused before
    /// anything changes: under the lock, nothing else changes meanwhile.
    pub fn apply(
        &self,
        set: &ManifestSet,
        identity: &SetIdentity,
        options: &ApplyOptions,
        progress: &dyn Progress,
        report_each: &mut dyn FnMut(&Outcome),
    ) -> Result<ApplyReport, ReconcileError> {
        let deadline = self.clock.now() + options.timeout;
        let mut report = ApplyReport::default();
        let mut failed: Vec<(Target, String)> = Vec::new();
        let mut plan_options = options.plan.clone();
        // The first pass is the resync: it also CHECKs every network attachment.
        let mut observe_options = ObserveOptions {
            check_networks: true,
        };
        // A daemon's engine lives across passes: look at the host again.
        self.engine.forget_network_rules_seen();
        loop {
            let pass_started = self.clock.now();
            let wanted = self.desired(set, identity)?;
            let mut actual = self.observe(observe_options)?;
            if !actual.lost_shims.is_empty() {
                // Containers whose shim died get a recorded (unknown) exit
                // first, so that their restart policy decides what follows.
                for id in &actual.lost_shims {
                    self.engine
                        .settle_lost_shim(id)
                        .map_err(ReconcileError::Observe)?;
                }
                actual = self.observe(observe_options)?;
            }
            let now = crate::state::clock::unix_ms();
            let settled = jobs::settle(&wanted, &mut actual, now);
            jobs::effects::save_settled(&self.engine, &settled)
                .map_err(|e| ReconcileError::Jobs(Box::new(e)))?;
            plan_options.now_unix_ms = now;
            let first_pass = observe_options.check_networks;
            if first_pass {
                // Before anything changed; under the lock, nobody else
                // changes anything later.
                let found = conflicts_of(set, identity, &actual);
                if !found.is_empty() {
                    return Err(ReconcileError::Conflicts(found));
                }
            }
            observe_options.check_networks = false;
            let actions = plan(&wanted, &actual, &plan_options);
            let outcomes = results(&wanted, &actual, READY_AFTER_MS);
            let ready = || waiting(&outcomes);
            match next(
                actions,
                &failed,
                options.wait,
                ready,
                self.clock.now(),
                deadline,
            ) {
                Next::Converged => {
                    report.converged = true;
                    report.results = outcomes;
                    return Ok(report);
                }
                Next::GiveUp { pending } => {
                    report.pending = pending;
                    report.results = outcomes;
                    return Ok(report);
                }
                Next::Requeue { waiting, .. }
                    if options.return_when_waiting || options.stop_requested() =>
                {
                    report.pending = waiting;
                    report.results = outcomes;
                    return Ok(report);
                }
                Next::Requeue { after, waiting } => {
                    options.tell(ApplyEvent::Waiting {
                        now: self.clock.now(),
                        waiting: &waiting,
                    });
                    let pass = self.clock.now().saturating_duration_since(pass_started);
                    self.clock.sleep(requeue_delay(after, pass))
                }
                Next::Execute(to_do) => {
                    // Fingerprints include an image's digest, known once it
                    // is pulled: the pulls (first in a plan) go alone, and
                    // the plan is made again before anything is created.
                    let batch = if to_do.first().is_some_and(|a| a.verb == Verb::Pull) {
                        to_do
                            .into_iter()
                            .take_while(|a| a.verb == Verb::Pull)
                            .collect()
                    } else {
                        to_do
                    };
                    let stop = || options.stop_requested();
                    let starting = |action: &Action| options.tell(ApplyEvent::Starting(action));
                    let (done, not_started) = self.carry_out_all(
                        &wanted,
                        batch,
                        Pool {
                            parallel: options.parallel,
                            stop: &stop,
                            starting: &starting,
                        },
                        progress,
                        report_each,
                    );
                    for outcome in done {
                        if outcome.error.is_some() {
                            failed.push((outcome.action.target, outcome.action.name.clone()));
                        } else if outcome.action.verb == Verb::Pull {
                            plan_options.pulled.insert(outcome.action.name.clone());
                        }
                        report.outcomes.push(outcome);
                    }
                    if !not_started.is_empty() {
                        // Stopped: what was in flight is done, the rest waits.
                        report.pending = not_started;
                        report.results = outcomes;
                        return Ok(report);
                    }
                }
            }
        }
    }

    /// Removes what the set declares and this source owns, once: dependents
    /// first, then networks nobody else uses; volumes only with `volumes`.
    /// Returns the desired and actual state it planned from, for the report.
    pub fn delete(
        &self,
        set: &ManifestSet,
        identity: &SetIdentity,
        options: &DeleteOptions,
        progress: &dyn Progress,
        report_each: &mut dyn FnMut(&Outcome),
    ) -> Result<(Desired, Actual, ApplyReport), ReconcileError> {
        let wanted = self.desired(set, identity)?;
        let actual = self.observe(ObserveOptions::default())?;
        let (changes, pending): (Vec<Action>, Vec<Action>) =
            plan_delete(&wanted, &actual, options.volumes)
                .into_iter()
                .partition(Action::is_change);
        let (outcomes, _) = self.carry_out_all(
            &wanted,
            changes,
            Pool {
                parallel: options.parallel,
                stop: &|| false,
                starting: &|_| {},
            },
            progress,
            report_each,
        );
        let report = ApplyReport {
            outcomes,
            converged: pending.is_empty(),
            pending,
            results: Vec::new(),
        };
        Ok((wanted, actual, report))
    }

    /// Carries out `actions`, independent ones side by side (at most
    /// `parallel` at once; 0: [`default_parallelism`]), in the order
    /// [`ordering`] keeps. `report_each` sees each outcome as it finishes;
    /// the outcomes come back in plan order, with the actions that never
    /// started because `stop` said so.
    fn carry_out_all(
        &self,
        wanted: &Desired,
        actions: Vec<Action>,
        pool: Pool<'_>,
        progress: &dyn Progress,
        report_each: &mut dyn FnMut(&Outcome),
    ) -> (Vec<Outcome>, Vec<Action>) {
        let after = ordering(&actions, wanted);
        let workers = match pool.parallel {
            0 => default_parallelism(),
            n => n,
        };
        let work = |action: &Action| {
            (pool.starting)(action);
            carry_out(&self.engine, wanted, action.clone(), progress)
        };
        let results = run_ordered(
            &actions,
            &after,
            workers,
            pool.stop,
            &work,
            &mut |_, outcome| report_each(outcome),
        );
        let mut done = Vec::new();
        let mut not_started = Vec::new();
        for (action, result) in actions.into_iter().zip(results) {
            match result {
                Some(outcome) => done.push(outcome),
                None => not_started.push(action),
            }
        }
        (done, not_started)
    }

    /// `berth gc`: blobs and layers nothing references, then the network
    /// attachments (IP reservations, cached results, iptables rules) of
    /// containers berth no longer knows; under the reconcile lock, so no
    /// setup runs meanwhile.
    pub fn gc(&self) -> Result<(GcReport, NetworkSweep), ReconcileError> {
        let engine = &self.engine;
        let report = engine.collect_garbage().map_err(ReconcileError::Gc)?;
        let swept = engine
            .sweep_network_leftovers()
            .map_err(ReconcileError::Observe)?;
        Ok((report, swept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::RestartPolicy;
    use crate::reconcile::outcome::{ContainerResult, Exit};
    use crate::reconcile::plan::{ActualContainer, Observed};
    use crate::state::clock::ManualClock;

    fn action(verb: Verb, name: &str) -> Action {
        Action::new(Target::Container, name, verb, "because")
    }

    fn times() -> (Instant, Instant) {
        let now = Instant::now();
        (now, now + Duration::from_secs(60))
    }

    #[test]
    fn a_slow_look_backs_off_the_next_one_within_bounds() {
        let ms = Duration::from_millis;
        // A quick pass sleeps what the schedule asks.
        assert_eq!(requeue_delay(REQUEUE_AFTER, ms(5)), REQUEUE_AFTER);
        // A slow one sleeps twice its own time...
        assert_eq!(requeue_delay(REQUEUE_AFTER, ms(300)), ms(600));
        // ...but never more than the bound, unless the schedule asks more.
        assert_eq!(requeue_delay(REQUEUE_AFTER, ms(5000)), MOST_LOOKING_BACKOFF);
        assert_eq!(requeue_delay(ms(10_000), ms(5000)), ms(10_000));
    }

    #[test]
    fn changes_are_executed_before_anything_is_waited_for() {
        let (now, deadline) = times();
        let next = next(
            vec![action(Verb::Wait, "b"), action(Verb::Create, "a")],
            &[],
            true,
            || panic!("readiness is not asked while there is work"),
            now,
            deadline,
        );
        assert_eq!(next, Next::Execute(vec![action(Verb::Create, "a")]));
    }

    #[test]
    fn a_failed_object_is_not_retried_and_the_rest_converges() {
        let (now, deadline) = times();
        let failed = [(Target::Container, "a".to_string())];
        let next = next(
            vec![action(Verb::Create, "a")],
            &failed,
            false,
            Vec::new,
            now,
            deadline,
        );
        assert_eq!(next, Next::Converged);
    }

    #[test]
    fn what_is_blocked_is_reported_at_once_not_waited_for() {
        let (now, deadline) = times();
        let mut blocked = action(Verb::Blocked, "web");
        blocked.reason = "Job migrate failed".into();
        let next = next(
            vec![blocked.clone()],
            &[],
            true,
            || vec![action(Verb::Wait, "web"), action(Verb::Wait, "db")],
            now,
            deadline,
        );
        assert_eq!(
            next,
            Next::Requeue {
                after: REQUEUE_AFTER,
                waiting: vec![blocked.clone(), action(Verb::Wait, "db")]
            },
            "what is not blocked is still waited for"
        );
        let next = next_alone(blocked.clone(), now, deadline);
        assert_eq!(
            next,
            Next::GiveUp {
                pending: vec![blocked]
            }
        );
    }

    fn next_alone(blocked: Action, now: Instant, deadline: Instant) -> Next {
        next(vec![blocked], &[], true, Vec::new, now, deadline)
    }

    #[test]
    fn waiting_requeues_after_a_short_pause() {
        let (now, deadline) = times();
        let next = next(
            vec![action(Verb::Wait, "b")],
            &[],
            false,
            Vec::new,
            now,
            deadline,
        );
        assert_eq!(
            next,
            Next::Requeue {
                after: REQUEUE_AFTER,
                waiting: vec![action(Verb::Wait, "b")]
            }
        );
    }

    /// A set of two Containers: `once` (restart never) and `web`.
    fn set() -> Desired {
        let object = |name: &str, policy| {
            let mut spec = crate::manifest::ContainerSpec {
                image: "busybox".into(),
                ..Default::default()
            };
            spec.restart.policy = policy;
            super::super::desired::DesiredObject {
                kind: crate::manifest::Kind::Container,
                name: name.into(),
                file: format!("{name}.yaml"),
                line: 1,
                base_dir: "/srv".into(),
                spec: super::super::desired::DesiredSpec::Container(spec),
                fingerprint: Default::default(),
                image: None,
                labels: Default::default(),
            }
        };
        Desired {
            source: "/srv".into(),
            tree: "/srv".into(),
            objects: vec![
                object("once", RestartPolicy::Never),
                object("web", RestartPolicy::Always),
            ],
        }
    }

    /// What observe sees: `once` as given, `web` running for a minute.
    fn host(once: Observed, last_exit: Option<Exit>) -> Actual {
        let container = |name: &str, observed, last_exit| ActualContainer {
            kind: crate::manifest::Kind::Container,
            name: name.into(),
            source: Some("/srv".into()),
            fingerprint: None,
            observed,
            healthy: None,
            failing_checks: 0,
            restart: RestartPolicy::Never,
            networks: vec![],
            volumes: vec![],
            fault: None,
            running_for_ms: Some(60_000),
            last_exit,
            start_error: None,
        };
        Actual {
            containers: vec![
                container("once", once, last_exit),
                container("web", Observed::Running, None),
            ],
            ..Actual::default()
        }
    }

    /// One `apply --wait` pass with the plan done, as the loop decides it.
    fn pass(actual: &Actual, now: Instant, deadline: Instant) -> (Next, Vec<ContainerResult>) {
        let outcomes = results(&set(), actual, READY_AFTER_MS);
        let next = next(Vec::new(), &[], true, || waiting(&outcomes), now, deadline);
        (next, outcomes)
    }

    #[test]
    fn wait_sees_a_run_once_container_through_to_its_late_exit_code() {
        // Regression: `sleep 2; exit 7` under restart never gave
        // "converged" and exit 0, since it had run for the settle time.
        let clock = ManualClock::default();
        let deadline = clock.now() + Duration::from_secs(120);
        let running = host(Observed::Running, None);
        let (first, _) = pass(&running, clock.now(), deadline);
        let Next::Requeue { after, waiting } = first else {
            panic!("a run-once container still running is waited for: {first:?}");
        };
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].name, "once");
        clock.sleep(after + Duration::from_secs(2));
        let exited = host(
            Observed::Exited {
                code: Some(7),
                stopped: false,
            },
            Some(Exit::Code(7)),
        );
        let (second, outcomes) = pass(&exited, clock.now(), deadline);
        assert_eq!(second, Next::Converged, "its outcome is final");
        let report = ApplyReport {
            converged: true,
            results: outcomes,
            ..ApplyReport::default()
        };
        assert!(report.failed());
        let failed: Vec<(&str, String)> = report
            .failed_containers()
            .map(|r| (r.name.as_str(), r.cause()))
            .collect();
        assert_eq!(failed, [("once", "exit code 7".to_string())]);
    }

    #[test]
    fn a_run_once_container_that_exits_0_converges_without_failing() {
        let clock = ManualClock::default();
        let deadline = clock.now() + Duration::from_secs(120);
        let done = host(
            Observed::Exited {
                code: Some(0),
                stopped: false,
            },
            Some(Exit::Code(0)),
        );
        let (next, outcomes) = pass(&done, clock.now(), deadline);
        assert_eq!(next, Next::Converged);
        let report = ApplyReport {
            converged: true,
            results: outcomes,
            ..ApplyReport::default()
        };
        assert!(!report.failed());
    }

    #[test]
    fn at_the_deadline_a_container_still_waited_for_is_pending() {
        // Regression: past the deadline the loop said converged without
        // asking what --wait waits for.
        let clock = ManualClock::default();
        let deadline = clock.now() + Duration::from_secs(1);
        clock.sleep(Duration::from_secs(2));
        let (next, _) = pass(&host(Observed::Running, None), clock.now(), deadline);
        let Next::GiveUp { pending } = next else {
            panic!("{next:?}");
        };
        assert_eq!(pending[0].name, "once");
    }

    #[test]
    fn past_the_deadline_everything_left_is_pending() {
        let (now, _) = times();
        let deadline = now - Duration::from_millis(1);
        let left = vec![action(Verb::Create, "a"), action(Verb::Wait, "b")];
        assert_eq!(
            next(left.clone(), &[], false, Vec::new, now, deadline),
            Next::GiveUp { pending: left }
        );
        assert_eq!(
            next(Vec::new(), &[], false, Vec::new, now, deadline),
            Next::Converged
        );
    }
}
