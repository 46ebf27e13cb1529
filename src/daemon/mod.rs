//! `berth daemon --watch DIR`: the reconcile loop of `berth apply`, run for
//! ever. It wakes when the tree changes (debounced), when a shim rewrites
//! its status (an exit, a restart, a health change), on the resync timer,
//! and on SIGHUP; each time it reads the tree as one generation if it
//! changed ([`generations`]), and runs one pass of the same
//! [`Reconciler`] apply uses toward the generation in force. A generation
//! that does not validate is never applied; a missing or empty tree is
//! never "delete everything". The reconcile lock is held for a pass at a
//! time, so `run`, `stop` and a manual `apply` get their turn in between.
//!
//! SIGTERM or SIGINT: the action in flight finishes, containers stay with
//! their shims, and the daemon exits 0. A restarted daemon plans against
//! what runs and so adopts it without restarting anything.

pub mod generations;
pub mod signals;
pub mod socket;
pub mod status;
pub mod systemd;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use generations::{Decision, Generations, InForce};
use status::{DaemonStatus, GenerationInfo, ObjectState, PassInfo, Rejection};

use crate::engine::Engine;
use crate::image::progress::NoProgress;
use crate::manifest::hosts::{self, HostLabels};
use crate::manifest::{self, Diagnostic, LoadOptions, ManifestSet, SetIdentity};
use crate::reconcile::execute::ApplyReport;
use crate::reconcile::lock;
use crate::reconcile::plan::PlanOptions;
use crate::reconcile::{ApplyOptions, ReconcileError, Reconciler};
use crate::state::clock::{unix_ms, SystemClock};
use crate::state::events::{Event, EventKind, EventLog, EventTarget};
use crate::state::lock::{Lock, LockError};
use crate::state::records::RecordStore;
use crate::watch::debounce::Debounce;
use crate::watch::generation::{self, Reading, Snapshot};
use crate::watch::shims::ShimWatch;
use crate::watch::tree::{TreeWatch, WatchError};

/// How soon a pass that could not take the reconcile lock (a manual
/// `apply` held it) is tried again. A pass that left waits (a shim
/// starting, a dependency's health) is not retried on a timer: the shim's
/// status change wakes the daemon, and the resync catches anything else.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Shims' status changes come in bursts (a pass starts many): one pass
/// after the burst.
const SHIM_QUIET: Duration = Duration::from_millis(100);

pub struct Options {
    /// The watched directory, as given.
    pub watch: PathBuf,
    /// The set's identity; default: the absolute path of `watch` (not
    /// where a link there leads, so a swapped link keeps ownership).
    pub source: Option<String>,
    pub resync: Duration,
    pub debounce: Duration,
    pub plan: PlanOptions,
    pub host: HostLabels,
    pub load: LoadOptions,
    /// The longest one pass runs before the loop looks at its wake-ups.
    pub pass_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another berth daemon runs on the state root {}: {busy}", state.display())]
    AlreadyRunning { state: PathBuf, busy: LockError },
    #[error(transparent)]
    Lock(LockError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What wakes the loop.
enum Wake {
    Tree(Vec<PathBuf>),
    Shim(Vec<PathBuf>),
    Signal(signals::Asked),
}

/// What the daemon keeps in its record under `--root`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredGeneration {
    number: u64,
    snapshot: Snapshot,
    /// So that a restarted daemon does not announce it applied again.
    #[serde(default)]
    applied_unix_ms: Option<u64>,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(engine: Engine, options: Options) -> Result<(), DaemonError> {
    let _one_daemon = take_daemon_lock(&engine)?;
    let (wake, wakes) = mpsc::channel();
    let mut daemon = Daemon::new(engine, options);
    let tree = {
        let wake = wake.clone();
        TreeWatch::start(
            &daemon.options.watch,
            Box::new(move |paths| {
                let _ = wake.send(Wake::Tree(paths));
            }),
        )?
    };
    let containers = daemon.layout().container_dirs();
    crate::state::records::create_private_dir(&containers).map_err(|source| DaemonError::Io {
        what: "create",
        path: containers.clone(),
        source,
    })?;
    let shims = {
        let wake = wake.clone();
        ShimWatch::start(
            &containers,
            Box::new(move |paths| {
                let _ = wake.send(Wake::Shim(paths));
            }),
        )?
    };
    {
        let wake = wake.clone();
        signals::install(daemon.stop.clone(), move |asked| {
            let _ = wake.send(Wake::Signal(asked));
        })
        .map_err(|source| DaemonError::Io {
            what: "install signal handlers for",
            path: daemon.options.watch.clone(),
            source,
        })?;
    }
    let socket_path = daemon.layout().daemon_socket();
    // A `resync` request (`berth job run`) wakes the loop as SIGHUP does.
    let poke = move || {
        let _ = wake.send(Wake::Signal(signals::Asked::Resync));
    };
    let shared = daemon.shared(Arc::new(poke));
    socket::serve(&socket_path, shared).map_err(|source| DaemonError::Io {
        what: "listen on",
        path: socket_path.clone(),
        source,
    })?;
    daemon.run_loop(tree, shims, wakes);
    let _ = std::fs::remove_file(&socket_path);
    Ok(())
}

fn take_daemon_lock(engine: &Engine) -> Result<Lock, DaemonError> {
    let layout = &engine.paths;
    layout.make_private().map_err(|source| DaemonError::Io {
        what: "prepare",
        path: layout.state.clone(),
        source,
    })?;
    let path = layout.daemon_lock();
    match crate::state::lock::acquire(&path, crate::state::lock::Mode::Exclusive, false) {
        Ok(lock) => {
            let _ = std::fs::write(&path, std::process::id().to_string());
            Ok(lock)
        }
        Err(busy @ LockError::Busy { .. }) => Err(DaemonError::AlreadyRunning {
            state: layout.state.clone(),
            busy,
        }),
        Err(error) => Err(DaemonError::Lock(error)),
    }
}

struct Daemon {
    /// None only during a pass (the reconciler holds it).
    engine: Option<Engine>,
    options: Options,
    /// The watched directory as messages show it.
    display: String,
    source: String,
    generations: Generations,
    events: Arc<EventLog>,
    status: Arc<Mutex<DaemonStatus>>,
    stop: Arc<AtomicBool>,
    /// The engine's, kept here since the engine is lent out during passes.
    layout: crate::state::Layout,
    records: RecordStore<serde_json::Value>,
    /// When the waits the last pass left end by themselves (Jobs' backoffs).
    waits_until: Vec<u64>,
    /// Containers whose status files changed since the last look.
    touched: std::collections::BTreeSet<String>,
    /// What each container's status said at the last look.
    gists: std::collections::BTreeMap<String, Option<String>>,
}

impl Daemon {
    fn new(engine: Engine, options: Options) -> Self {
        let absolute = std::path::absolute(&options.watch).unwrap_or(options.watch.clone());
        let display = options.watch.display().to_string();
        let source = options
            .source
            .clone()
            .unwrap_or_else(|| absolute.display().to_string());
        let layout = engine.paths.clone();
        let records = RecordStore::new(layout.daemon_dir(), "daemon");
        let status = DaemonStatus {
            running: true,
            pid: std::process::id(),
            started_unix_ms: unix_ms(),
            watch: display.clone(),
            source: source.clone(),
            host_labels: options
                .host
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..DaemonStatus::default()
        };
        let mut daemon = Daemon {
            engine: Some(engine),
            display,
            source,
            generations: Generations::default(),
            events: Arc::new(EventLog::new(&layout)),
            status: Arc::new(Mutex::new(status)),
            stop: Arc::new(AtomicBool::new(false)),
            records,
            layout: layout.clone(),
            options,
            waits_until: Vec::new(),
            touched: Default::default(),
            gists: Default::default(),
        };
        daemon.generations = daemon.restore();
        daemon
    }

    fn layout(&self) -> &crate::state::Layout {
        &self.layout
    }

    fn shared(&self, poke: Arc<dyn Fn() + Send + Sync>) -> socket::Shared {
        socket::Shared {
            status: self.status.clone(),
            events: self.events.clone(),
            stopping: self.stop.clone(),
            poke,
        }
    }

    /// The generation in force when the last daemon stopped, checked again
    /// (trust, host selection): it stays in force until the tree gives a
    /// valid one, so a tree missing at start deletes nothing and drift is
    /// still repaired.
    fn restore(&self) -> Generations {
        let numbered = self
            .records
            .get("status")
            .ok()
            .flatten()
            .and_then(|value| serde_json::from_value::<DaemonStatus>(value).ok())
            .map_or(0, |status| status.generations_read);
        let stored = self
            .records
            .get("generation")
            .ok()
            .flatten()
            .and_then(|value| serde_json::from_value::<StoredGeneration>(value).ok());
        let restored = stored.and_then(|stored| match self.validate(&stored.snapshot) {
            Ok(set) => Some(InForce {
                number: stored.number,
                snapshot: stored.snapshot,
                set,
                applied_unix_ms: stored.applied_unix_ms,
                restored: true,
            }),
            Err(problems) => {
                tracing::warn!(
                    generation = stored.number,
                    problems = problems.len(),
                    "the recorded generation no longer validates; waiting for a valid tree"
                );
                None
            }
        });
        Generations::resume(numbered, restored)
    }

    fn run_loop(&mut self, mut tree: TreeWatch, mut shims: ShimWatch, wakes: mpsc::Receiver<Wake>) {
        let mut files = Debounce::new(self.options.debounce);
        let mut shim_changes = Debounce::new(SHIM_QUIET);
        let containers = self.layout().container_dirs();
        self.read_tree();
        let mut retry = self.pass("start");
        systemd::notify("READY=1");
        let mut next_resync = Instant::now() + self.options.resync;
        let mut retry_at = retry.then(|| Instant::now() + RETRY_AFTER);
        let mut timer_at = self.timer();
        while !self.stop.load(Ordering::SeqCst) {
            let wake_at = [
                Some(next_resync),
                files.due(),
                shim_changes.due(),
                retry_at,
                timer_at,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_resync);
            let timeout = wake_at.saturating_duration_since(Instant::now());
            match wakes.recv_timeout(timeout) {
                Ok(Wake::Tree(paths)) if tree.any_relevant(&paths) => files.event(Instant::now()),
                Ok(Wake::Shim(paths)) if paths.iter().any(|p| shims.is_relevant(p)) => {
                    self.touched
                        .extend(paths.iter().filter_map(|p| container_of(&containers, p)));
                    shim_changes.event(Instant::now())
                }
                Ok(Wake::Signal(signals::Asked::Stop)) => break,
                Ok(Wake::Signal(signals::Asked::Resync)) => next_resync = Instant::now(),
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            let mut trigger = None;
            if files.fire(now) {
                tree.rearm();
                if self.read_tree() {
                    trigger = Some("files");
                }
            }
            if now >= next_resync {
                tree.rearm();
                self.read_tree();
                next_resync = now + self.options.resync;
                trigger = trigger.or(Some("resync"));
            }
            if shim_changes.fire(now) && self.news_in_touched() {
                trigger = trigger.or(Some("shim"));
            }
            if retry_at.is_some_and(|at| now >= at) {
                trigger = trigger.or(Some("retry"));
            }
            if timer_at.is_some_and(|at| now >= at) {
                trigger = trigger.or(Some("timer"));
            }
            if let Some(trigger) = trigger {
                retry = self.pass(trigger);
                retry_at = retry.then(|| Instant::now() + RETRY_AFTER);
                timer_at = self.timer();
                let added = shims.refresh();
                if !added.is_empty() {
                    // New containers: their first status may predate the watch.
                    self.touched
                        .extend(added.iter().filter_map(|p| container_of(&containers, p)));
                    shim_changes.event(Instant::now());
                }
            }
        }
        systemd::notify("STOPPING=1");
        tracing::info!("stopping; containers keep running under their shims");
        self.lock_status().running = false;
        self.persist_status();
    }

    /// Whether a container whose status file was rewritten since the last
    /// look changed in a way a pass acts on (not a health check's
    /// timestamp: a checked container rewrites its status at every check).
    fn news_in_touched(&mut self) -> bool {
        let Some(engine) = self.engine.as_ref() else {
            return true;
        };
        let mut news = false;
        for id in std::mem::take(&mut self.touched) {
            let gist = engine.status_gist(&id);
            if self.gists.get(&id) != Some(&gist) {
                news = true;
                self.gists.insert(id, gist);
            }
        }
        news
    }

    /// When a time, not an event, is next due: a Job's backoff ending (the
    /// last pass left it waiting) or a scheduled Job's next tick.
    fn timer(&self) -> Option<Instant> {
        let now_ms = unix_ms();
        let backoffs = self.waits_until.iter().copied();
        let ticks = self.generations.in_force().into_iter().flat_map(|g| {
            g.set
                .objects
                .iter()
                .filter_map(|located| match &located.object {
                    manifest::Object::Job(job) => job
                        .spec
                        .schedule
                        .as_ref()
                        .and_then(|s| s.next_after(now_ms / 1000))
                        .map(|tick| tick * 1000),
                    _ => None,
                })
        });
        let at = backoffs.chain(ticks).min()?;
        Some(Instant::now() + Duration::from_millis(at.saturating_sub(now_ms)))
    }

    /// Reads the tree; returns whether a new generation is in force. A
    /// tree git is changing is read again after the next debounce.
    fn read_tree(&mut self) -> bool {
        let dir = self.options.watch.clone();
        let snapshot = match generation::read(&dir, &self.display, self.options.load) {
            Reading::Read(snapshot) => snapshot,
            Reading::GitBusy => {
                tracing::info!("git is changing the tree; reading it once git is done");
                return false;
            }
        };
        let (digest, revision) = (snapshot.digest.clone(), snapshot.revision.clone());
        // Taken out while validation borrows the rest of the daemon.
        let mut generations = std::mem::take(&mut self.generations);
        let decision = generations.consider(snapshot, |snapshot| self.validate(snapshot));
        self.generations = generations;
        match decision {
            Decision::Unchanged => false,
            Decision::Accepted(number) => {
                tracing::info!(generation = number, %digest, revision = ?revision, "new generation");
                self.persist_generation();
                true
            }
            Decision::Rejected(number, problems) => {
                self.reject(number, digest, revision, &problems);
                false
            }
        }
    }

    /// Whether a reading may be applied: it was read whole, it validates,
    /// and the files it names exist. Then its objects for this host.
    fn validate(&self, snapshot: &Snapshot) -> Result<ManifestSet, Vec<Diagnostic>> {
        if !snapshot.problems.is_empty() {
            return Err(snapshot.problems.clone());
        }
        let set = manifest::load_sources(
            &snapshot.files,
            Vec::new(),
            &self.display,
            self.options.load,
        )?;
        let missing = manifest::validate::check_missing_references(&set.objects);
        if !missing.is_empty() {
            return Err(missing);
        }
        hosts::select(set, &self.options.host)
    }

    fn reject(
        &mut self,
        number: u64,
        digest: String,
        revision: Option<String>,
        problems: &[Diagnostic],
    ) {
        let kept = self
            .generations
            .in_force()
            .map_or("no generation is in force yet".to_string(), |g| {
                format!("generation {} stays in force", g.number)
            });
        for problem in problems {
            tracing::error!(generation = number, "{problem}");
        }
        tracing::error!(
            generation = number,
            "generation rejected: {kept}; nothing was changed"
        );
        let errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
        self.generation_event(
            EventKind::GenerationRejected,
            number,
            format!(
                "{}: {}; {kept}",
                plural(errors.len(), "problem"),
                errors.first().map(String::as_str).unwrap_or("")
            ),
        );
        {
            let mut status = self.lock_status();
            status.generations_read = self.generations.numbered();
            status.rejected = Some(Rejection {
                number,
                digest,
                revision,
                unix_ms: unix_ms(),
                errors,
            });
        }
        self.persist_status();
    }

    /// One pass toward the generation in force; returns whether it should
    /// be tried again soon (the reconcile lock was busy).
    fn pass(&mut self, trigger: &str) -> bool {
        let Some(in_force) = self.generations.in_force() else {
            self.record_pass(PassInfo {
                unix_ms: unix_ms(),
                trigger: trigger.into(),
                error: Some("no valid generation has been read yet; nothing is changed".into()),
                ..PassInfo::default()
            });
            return false;
        };
        let number = in_force.number;
        let set = in_force.set.clone();
        let identity = SetIdentity {
            source: self.source.clone(),
            tree: std::fs::canonicalize(&self.options.watch)
                .unwrap_or_else(|_| self.options.watch.clone()),
        };
        let result = self.apply(&set, &identity);
        let mut info = PassInfo {
            unix_ms: unix_ms(),
            trigger: trigger.into(),
            generation: number,
            ..PassInfo::default()
        };
        let retry = match result {
            Ok(report) => {
                self.note_applied(number, &report);
                self.update_objects(&set, &report);
                info.actions = report.outcomes.len();
                info.failed = report
                    .outcomes
                    .iter()
                    .filter_map(|o| {
                        let error = o.error.as_ref()?;
                        Some(format!("{:?} {}: {error}", o.action.target, o.action.name))
                    })
                    .collect();
                info.pending = report
                    .pending
                    .iter()
                    .map(|a| format!("{:?} {}: {}", a.target, a.name, a.reason))
                    .collect();
                self.waits_until = report
                    .pending
                    .iter()
                    .filter_map(|a| a.until_unix_ms)
                    .collect();
                false
            }
            Err(error) => {
                tracing::error!(generation = number, "{error}");
                info.error = Some(error.to_string());
                // The lock was busy (a manual apply): look again soon. A
                // conflict waits for a change (files, resync).
                matches!(error, PassError::Busy(_))
            }
        };
        self.record_pass(info);
        retry
    }

    fn apply(
        &mut self,
        set: &ManifestSet,
        identity: &SetIdentity,
    ) -> Result<ApplyReport, PassError> {
        let engine = self.engine.take().ok_or(PassError::NoEngine)?;
        let held = match lock::acquire(
            &engine.paths,
            self.options.resync,
            &SystemClock,
            &mut |busy| tracing::info!(%busy, "waiting for another berth command to finish with the state root"),
        ) {
            Ok(held) => held,
            Err(error) => {
                self.engine = Some(engine);
                return Err(PassError::Busy(error));
            }
        };
        let reconciler = Reconciler::holding(engine, Box::new(SystemClock), held);
        let options = ApplyOptions {
            plan: self.options.plan.clone(),
            timeout: self.options.pass_timeout,
            wait: false,
            return_when_waiting: true,
            stop: Some(self.stop.clone()),
            parallel: 0,
            observer: None,
        };
        let result =
            reconciler.apply(
                set,
                identity,
                &options,
                &NoProgress,
                &mut |outcome| match &outcome.error {
                    None => tracing::info!(
                        target_kind = ?outcome.action.target,
                        name = %outcome.action.name,
                        verb = ?outcome.action.verb,
                        reason = %outcome.action.reason,
                        "done"
                    ),
                    Some(error) => tracing::error!(
                        target_kind = ?outcome.action.target,
                        name = %outcome.action.name,
                        verb = ?outcome.action.verb,
                        %error,
                        "failed"
                    ),
                },
            );
        self.engine = Some(reconciler.release());
        result.map_err(PassError::Reconcile)
    }

    /// The first pass of a generation with no failed action applied it.
    fn note_applied(&mut self, number: u64, report: &ApplyReport) {
        let failed = report.outcomes.iter().any(|o| o.error.is_some());
        let Some(in_force) = self.generations.in_force_mut() else {
            return;
        };
        if failed || in_force.applied_unix_ms.is_some() {
            return;
        }
        let now = unix_ms();
        in_force.applied_unix_ms = Some(now);
        let revision = in_force
            .snapshot
            .revision
            .as_deref()
            .map(|r| format!(" (git {})", &r[..r.len().min(12)]))
            .unwrap_or_default();
        let reason = format!(
            "{} for this host, {}{revision}",
            plural(in_force.set.objects.len(), "object"),
            plural(report.outcomes.len(), "action")
        );
        self.generation_event(EventKind::GenerationApplied, number, reason);
        self.persist_generation();
    }

    fn update_objects(&mut self, set: &ManifestSet, report: &ApplyReport) {
        let objects = set
            .objects
            .iter()
            .map(|located| {
                let kind = format!("{:?}", located.object.kind());
                let name = located.object.name().to_string();
                let failed = report.outcomes.iter().find(|o| {
                    o.error.is_some()
                        && o.action.name == name
                        && format!("{:?}", o.action.target) == kind
                });
                let result = report
                    .results
                    .iter()
                    .find(|r| r.name == name && format!("{:?}", r.kind) == kind);
                match (failed, result) {
                    (Some(outcome), _) => ObjectState {
                        kind,
                        name,
                        state: "failed".into(),
                        detail: outcome.error.clone().unwrap_or_default(),
                    },
                    (None, Some(result)) => ObjectState {
                        kind,
                        name,
                        state: result.verdict.as_str().into(),
                        detail: result.detail.clone(),
                    },
                    _ => ObjectState {
                        kind,
                        name,
                        state: "declared".into(),
                        detail: String::new(),
                    },
                }
            })
            .collect();
        let info = self.generations.in_force().map(generation_info);
        let mut status = self.lock_status();
        status.objects = objects;
        status.generation = info;
        status.generations_read = self.generations.numbered();
    }

    fn record_pass(&mut self, info: PassInfo) {
        let line = format!(
            "STATUS=generation {}, {} actions, {} failed, {} waiting",
            info.generation,
            info.actions,
            info.failed.len(),
            info.pending.len()
        );
        self.lock_status().last_pass = Some(info);
        systemd::notify(&line);
        self.persist_status();
    }

    /// An event about generation `number` in the events log.
    fn generation_event(&self, kind: EventKind, number: u64, reason: String) {
        let event = Event::new(kind, reason)
            .with_generation(number)
            .from_source(self.source.clone());
        self.events.append(&Event {
            target: Some(EventTarget::Generation),
            ..event
        });
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, DaemonStatus> {
        // A panicked socket thread cannot leave the status half written:
        // it only clones it.
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Without fsync: it is rewritten after every pass, and what matters
    /// after a crash (the generation in force) is in its own record.
    fn persist_status(&self) {
        let status = self.lock_status().clone();
        if let Ok(value) = serde_json::to_value(status) {
            if let Err(error) = self.records.put_volatile("status", &value) {
                tracing::warn!(%error, "cannot record the daemon's status");
            }
        }
    }

    fn persist_generation(&self) {
        let Some(in_force) = self.generations.in_force() else {
            return;
        };
        let stored = StoredGeneration {
            number: in_force.number,
            snapshot: in_force.snapshot.clone(),
            applied_unix_ms: in_force.applied_unix_ms,
        };
        if let Ok(value) = serde_json::to_value(stored) {
            if let Err(error) = self.records.put("generation", &value) {
                tracing::warn!(%error, "cannot record the generation in force");
            }
        }
        let info = generation_info(in_force);
        {
            let mut status = self.lock_status();
            status.generation = Some(info);
            status.generations_read = self.generations.numbered();
        }
        self.persist_status();
    }
}

/// The container a file event under the container directories is about.
fn container_of(containers: &std::path::Path, path: &std::path::Path) -> Option<String> {
    let inside = path.strip_prefix(containers).ok()?;
    let id = inside.components().next()?;
    Some(id.as_os_str().to_string_lossy().into_owned())
}

/// `1 object`, `2 objects`.
fn plural(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

fn generation_info(in_force: &InForce) -> GenerationInfo {
    GenerationInfo {
        number: in_force.number,
        digest: in_force.snapshot.digest.clone(),
        revision: in_force.snapshot.revision.clone(),
        files: in_force.snapshot.files.len(),
        objects: in_force.set.objects.len(),
        read_unix_ms: in_force.snapshot.read_unix_ms,
        applied_unix_ms: in_force.applied_unix_ms,
        restored: in_force.restored,
    }
}

#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("the engine is in use")]
    NoEngine,
    #[error(transparent)]
    Busy(lock::ReconcileLockError),
    #[error(transparent)]
    Reconcile(ReconcileError),
}
