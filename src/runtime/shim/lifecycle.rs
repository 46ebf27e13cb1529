//! The container's life under its shim, as a pure state machine.
//!
//! The shim's loop observes things (the runtime started the container, the
//! run ended, SIGTERM arrived, a health check finished, time passed) and
//! feeds each to [`Lifecycle::step`] as an [`Event`] with the time it read.
//! The answer is a list of [`Effect`]s: data the loop performs in order.
//! Nothing here reads a clock, touches a file or starts a process, so every
//! transition is unit-tested below; the restart policy and the backoff are
//! [`restart`]'s, the health bookkeeping [`health`]'s.
//!
//! ```text
//!           Begin             Started                  check became unhealthy
//! Created ───────> Starting ──────────> Running ─────────────────────────> KillingUnhealthy
//!                   │   ^                 │    (restart_on_unhealthy: SIGKILL)     │
//!       StartFailed │   │ timer           │ RunExited                              │ RunExited
//!                   v   │                 v                                        v
//!                  (the restart policy decides) ──restart──> BackingOff ── timer ──> Starting
//!                   │
//!                   └──no restart──> Exited   (final status written, then the runtime's
//!                                              container deleted by the shim's exec)
//!
//! StopRequested: Running / KillingUnhealthy -> Stopping (stop signal, SIGKILL at the end
//! of the grace period) -> RunExited -> Exited; BackingOff -> Exited at once; Starting
//! stays Starting with the stop noted (the signal again once the init's pid is known).
//! ```
//!
//! Illegal transitions (a start while running, an exit with nothing
//! running, ...) are errors, which the loop notes and otherwise ignores.

use crate::runtime::container_dir::{
    HealthConfig, HealthState, Phase, RestartConfig, RestartPolicy, ShimConfig, Status,
};
use crate::runtime::health::{self, CheckResult};
use crate::runtime::restart::{self, ExitKind};
use crate::state::events::EventKind;

/// The exit code a failed `runtime run` counts as for the restart policy.
pub const START_FAILED_CODE: i32 = 128;

/// The time of an event, as the loop read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (from any fixed origin): all timers.
    pub ms: u64,
    /// Milliseconds since the epoch: only what the status records.
    pub unix_ms: u64,
}

/// What the lifecycle needs from the shim's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub restart: RestartConfig,
    pub healthcheck: Option<HealthConfig>,
    /// Signal number sent first on stop.
    pub stop_signal: i32,
    pub stop_grace_ms: u64,
    /// See [`ShimConfig::attached_runtime`].
    pub attached_runtime: bool,
}

impl Policy {
    pub fn of(config: &ShimConfig) -> Policy {
        Policy {
            restart: config.restart.clone(),
            healthcheck: config.healthcheck.clone(),
            stop_signal: config.stop_signal,
            stop_grace_ms: config.stop_grace_ms,
            attached_runtime: config.attached_runtime,
        }
    }
}

/// Where the container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing started yet.
    Created,
    /// `runtime run` is under way and the init's pid is not known yet
    /// (detached, the loop is blocked in `runtime run`; attached, the
    /// runtime runs until it writes the pid file). `stop`: a stop was asked
    /// for meanwhile.
    Starting { since: Now, stop: Option<Grace> },
    /// The init runs, started at `started`.
    Running { started: Now, check: Check },
    /// The shim SIGKILLed it because it became unhealthy: the restart
    /// follows its exit.
    KillingUnhealthy { started: Now },
    /// A stop was asked for: no restart follows the exit.
    Stopping { grace: Grace },
    /// Ended; the next start is due at `until` (monotonic ms).
    BackingOff { until: u64 },
    /// Gone for good, the final status written. A stop asked for in the
    /// same round is still recorded; nothing else happens.
    Exited,
}

/// A stop under way: the stop signal was sent, SIGKILL follows at `kill_at`
/// (None once sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace {
    pub kill_at: Option<u64>,
}

/// The health check of a running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// No health check is configured.
    Off,
    /// The next check runs at `at`.
    Due { at: u64 },
    /// A check runs; it times out at `deadline` (None once it has: it was
    /// killed and its exit is awaited).
    InFlight { deadline: Option<u64> },
}

/// What the loop observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The shim is ready: the first start.
    Begin,
    /// The container's init runs as `init_pid` (detached, `runtime run`
    /// returned; attached, the runtime wrote the pid file).
    Started { init_pid: u32 },
    /// The runtime did not start the container: `message` says why.
    /// `container_left`: the runtime may still hold a container of this id.
    StartFailed {
        message: String,
        container_left: bool,
    },
    /// The run ended (the init exited, or the attached runtime did after
    /// it). `container_left` as in `StartFailed`: an attached runtime
    /// removes the container itself.
    RunExited {
        exit: ExitKind,
        container_left: bool,
    },
    /// SIGTERM or SIGINT.
    StopRequested,
    /// The health check in flight finished (or could not be run).
    CheckFinished(CheckResult),
    /// Time passed: fire what is due. Legal in every state.
    Tick,
}

/// What the loop does, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Run `runtime run`, then report `Started` or `StartFailed` (attached:
    /// `Started` once the init's pid file appears).
    StartContainer,
    /// Send the container's init this signal number: the shim itself for
    /// a detached init (its own child), `runtime kill` for an attached one.
    Kill { signal: i32 },
    /// Log what the output pipes hold now.
    DrainOutput,
    /// Log everything the pipes hold, unterminated last lines included,
    /// and flush: the log is complete.
    CompleteLogs,
    /// Start the health check command (report `CheckFinished` if it cannot
    /// be started).
    SpawnCheck,
    /// Kill the overrunning check; its exit then counts as a timeout.
    TimeOutCheck,
    /// Kill the check in flight and forget it.
    CancelCheck,
    /// `runtime delete --force`, waited for.
    DeleteContainer,
    /// Start `runtime delete --force`, not waiting for it.
    BeginDelete,
    /// Wait for the delete `BeginDelete` started.
    AwaitDelete,
    /// Write [`Lifecycle::status`] to `status.json`.
    WriteStatus,
    /// A line for the shim's diagnostics.
    Note(String),
    /// An event for berth's events log: what happened to the container.
    Record(Record),
    /// The end: once the loop has finished the round it is in, exec
    /// `runtime delete --force`, the shim's last act.
    ExecDeleteAndExit,
    /// The end, with no runtime container left to delete: the loop ends
    /// after this round.
    Exit,
}

/// What [`Effect::Record`] adds to the events log about the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: EventKind,
    pub reason: String,
    /// How the run that ended ended (128 + N for a death by signal N).
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition: {event} while {state}")]
pub struct IllegalTransition {
    pub state: &'static str,
    pub event: &'static str,
}

/// The container's lifecycle: its state, the status it shows, and the
/// bookkeeping the restart backoff needs.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    policy: Policy,
    state: State,
    status: Status,
    /// Consecutive quick failures, for the backoff.
    streak: u32,
    /// The runtime may hold a container of this id (asked to run it, not
    /// deleted since).
    container_left: bool,
    /// Restarts counted by the container's earlier shims: `status.restarts`
    /// goes on from them, while the policy's `maxRetries` counts this
    /// shim's own (a `berth start` gives it its retries again).
    restarts_before: u32,
}

/// How a run ended, for the restart decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// On its own (or killed by someone else); it ran for this long.
    OnItsOwn { ran_for_ms: u64 },
    /// The shim killed it for being unhealthy; it ran for this long.
    KilledUnhealthy { ran_for_ms: u64 },
    /// After a stop request.
    Stopped,
}

impl Lifecycle {
    pub fn new(policy: Policy, shim_pid: u32) -> Lifecycle {
        Lifecycle {
            policy,
            state: State::Created,
            status: Status::new(Phase::Created, shim_pid),
            streak: 0,
            container_left: false,
            restarts_before: 0,
        }
    }

    /// The same lifecycle with `restarts` counted already (by the shims that
    /// ran the container before this one).
    pub fn counting_restarts_from(mut self, restarts: u32) -> Lifecycle {
        self.status.restarts = restarts;
        self.restarts_before = restarts;
        self
    }

    /// Restarts since this shim began, which the restart policy counts.
    fn restarts_since_start(&self) -> u32 {
        self.status.restarts.saturating_sub(self.restarts_before)
    }

    /// Where it is (the loop needs only the effects and the deadline).
    #[cfg(test)]
    pub fn state(&self) -> State {
        self.state
    }

    /// What `status.json` shows.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Gone for good: the loop ends.
    pub fn is_over(&self) -> bool {
        self.state == State::Exited
    }

    /// When the next timer is due (monotonic ms): the latest the loop may
    /// wait before its next [`Event::Tick`].
    pub fn next_deadline(&self) -> Option<u64> {
        match self.state {
            State::Starting {
                stop: Some(Grace { kill_at }),
                ..
            }
            | State::Stopping {
                grace: Grace { kill_at },
            } => kill_at,
            State::Running {
                check: Check::Due { at },
                ..
            } => Some(at),
            State::Running {
                check: Check::InFlight { deadline },
                ..
            } => deadline,
            State::BackingOff { until } => Some(until),
            _ => None,
        }
    }

    /// Applies `event`, observed at `now`; returns what to do about it.
    pub fn step(&mut self, event: Event, now: Now) -> Result<Vec<Effect>, IllegalTransition> {
        let illegal = IllegalTransition {
            state: self.state.name(),
            event: event.name(),
        };
        let mut effects = Vec::new();
        match (self.state, event) {
            (State::Created, Event::Begin) => self.start(now, &mut effects),
            (State::Starting { since, stop }, Event::Started { init_pid }) => {
                self.started(since, stop, init_pid, now, &mut effects)
            }
            (
                State::Starting { stop, .. },
                Event::StartFailed {
                    message,
                    container_left,
                },
            ) => self.start_failed(message, container_left, stop.is_some(), now, &mut effects),
            (
                State::Running { .. } | State::KillingUnhealthy { .. } | State::Stopping { .. },
                Event::RunExited {
                    exit,
                    container_left,
                },
            ) => self.run_exited(exit, container_left, now, &mut effects),
            (State::Created, Event::StopRequested) => return Err(illegal),
            (_, Event::StopRequested) => self.stop_requested(now, &mut effects),
            (
                State::Running {
                    started,
                    check: Check::InFlight { .. },
                },
                Event::CheckFinished(result),
            ) => {
                let Some(config) = self.policy.healthcheck.clone() else {
                    return Err(illegal);
                };
                self.check_finished(&config, started, &result, now, &mut effects)
            }
            (_, Event::Tick) => self.tick(now, &mut effects),
            _ => return Err(illegal),
        }
        Ok(effects)
    }

    /// Asks the runtime to run the container, recording that it is starting.
    fn start(&mut self, now: Now, effects: &mut Vec<Effect>) {
        self.status.phase = Phase::Created;
        self.status.pid = None;
        self.status.next_start_unix_ms = None;
        // From the moment the runtime is asked, it may hold a container.
        self.container_left = true;
        self.state = State::Starting {
            since: now,
            stop: None,
        };
        effects.push(Effect::WriteStatus);
        effects.push(Effect::StartContainer);
    }

    /// Records the started container, its init `init_pid`.
    fn started(
        &mut self,
        since: Now,
        stop: Option<Grace>,
        init_pid: u32,
        now: Now,
        effects: &mut Vec<Effect>,
    ) {
        // A detached run starts when `runtime run` returns (the container's
        // process runs); an attached one when the runtime was started,
        // since its pid file appears only some polls later.
        let started = if self.policy.attached_runtime {
            since
        } else {
            now
        };
        self.status.phase = Phase::Running;
        self.status.pid = Some(init_pid);
        self.status.started_unix_ms = Some(started.unix_ms);
        self.status.exited_unix_ms = None;
        self.status.exit_code = None;
        self.status.signal = None;
        self.status.error = None;
        let check = match &self.policy.healthcheck {
            Some(config) => {
                self.status.health = Some(health::starting());
                Check::Due {
                    at: started.ms + config.interval_ms,
                }
            }
            None => Check::Off,
        };
        effects.push(Effect::WriteStatus);
        match stop {
            None => self.state = State::Running { started, check },
            Some(grace) => {
                // The stop signal sent while it was starting may have found
                // nothing to signal: again, now that it runs.
                effects.push(Effect::Kill {
                    signal: self.policy.stop_signal,
                });
                self.state = State::Stopping { grace };
            }
        }
    }

    /// A start that failed counts as an exit with [`START_FAILED_CODE`],
    /// which the restart policy then sees.
    fn start_failed(
        &mut self,
        message: String,
        container_left: bool,
        stopped: bool,
        now: Now,
        effects: &mut Vec<Effect>,
    ) {
        effects.push(Effect::DrainOutput);
        if container_left {
            // Whatever the runtime got to, before the next start reuses the id.
            effects.push(Effect::DeleteContainer);
        }
        self.container_left = false;
        effects.push(Effect::Note(format!("start failed: {message}")));
        self.status.error = Some(message);
        self.status.exited_unix_ms = Some(now.unix_ms);
        self.status.exit_code = Some(START_FAILED_CODE);
        self.status.signal = None;
        let ending = if stopped {
            Ending::Stopped
        } else {
            Ending::OnItsOwn { ran_for_ms: 0 }
        };
        let exit = ExitKind::Code(START_FAILED_CODE);
        let again = self.restarts_after(exit, ending);
        self.after_end(again, ending, now, effects);
    }

    /// The run ended: record how, then restart (after a backoff) or end.
    fn run_exited(
        &mut self,
        exit: ExitKind,
        container_left: bool,
        now: Now,
        effects: &mut Vec<Effect>,
    ) {
        // A line written just before the exit is logged before the exit.
        effects.push(Effect::DrainOutput);
        let ending = match self.state {
            State::Running { started, check } => {
                if matches!(check, Check::InFlight { .. }) {
                    effects.push(Effect::CancelCheck);
                }
                Ending::OnItsOwn {
                    ran_for_ms: now.ms.saturating_sub(started.ms),
                }
            }
            State::KillingUnhealthy { started } => Ending::KilledUnhealthy {
                ran_for_ms: now.ms.saturating_sub(started.ms),
            },
            _ => Ending::Stopped,
        };
        self.container_left = container_left;
        self.status.pid = None;
        self.status.exited_unix_ms = Some(now.unix_ms);
        (self.status.exit_code, self.status.signal) = match exit {
            ExitKind::Code(code) => (Some(code), None),
            ExitKind::Signal(signal) => (None, Some(signal)),
        };
        let again = self.restarts_after(exit, ending);
        // Before a restart the runtime's delete starts first (its start-up
        // is most of what it costs) and the exit is recorded meanwhile. An
        // exit for good is recorded first, its log complete: whoever waits
        // for it (`berth run --rm`) takes the rootfs and the network down
        // while the delete runs, which is then the shim's last act.
        let delete_meanwhile = again && self.container_left;
        if delete_meanwhile {
            effects.push(Effect::BeginDelete);
            self.container_left = false;
        }
        self.after_end(again, ending, now, effects);
        if delete_meanwhile {
            effects.push(Effect::AwaitDelete);
        }
    }

    /// SIGTERM/SIGINT: the stop signal now, SIGKILL after the grace period,
    /// no restart. Asking again changes nothing.
    ///
    /// After the end (the container exited for good in the same round of
    /// the loop, before its last act) the request is still recorded, as it
    /// was asked for, and the status written again.
    fn stop_requested(&mut self, now: Now, effects: &mut Vec<Effect>) {
        if self.status.stopped {
            // Asked before: the stop is under way, or recorded.
            return;
        }
        self.note_stop(effects);
        let grace = Grace {
            kill_at: Some(now.ms + self.policy.stop_grace_ms),
        };
        let kill = Effect::Kill {
            signal: self.policy.stop_signal,
        };
        match self.state {
            // After the end the request is only recorded. (`step` rejects
            // it before the start; a stop under way has `stopped` set.)
            State::Exited | State::Created | State::Stopping { .. } => {}
            State::Starting { since, .. } => {
                // Sent now, in case the runtime already started it; sent
                // again once the init's pid is known (`started`).
                effects.push(kill);
                self.state = State::Starting {
                    since,
                    stop: Some(grace),
                };
            }
            State::Running { check, .. } => {
                if matches!(check, Check::InFlight { .. }) {
                    effects.push(Effect::CancelCheck);
                }
                effects.push(kill);
                self.state = State::Stopping { grace };
            }
            State::KillingUnhealthy { .. } => {
                effects.push(kill);
                self.state = State::Stopping { grace };
            }
            State::BackingOff { .. } => return self.exit_for_good(effects),
        }
        effects.push(Effect::WriteStatus);
    }

    fn note_stop(&mut self, effects: &mut Vec<Effect>) {
        effects.push(Effect::Note("stop requested".into()));
        self.status.stopped = true;
    }

    /// A health check's result: the health it makes, and what it asks for.
    fn check_finished(
        &mut self,
        config: &HealthConfig,
        started: Now,
        result: &CheckResult,
        now: Now,
        effects: &mut Vec<Effect>,
    ) {
        let before = self.status.health.clone().unwrap_or_else(health::starting);
        let after = health::record(&before, config, result, started.unix_ms, now.unix_ms);
        let mut killed = false;
        if health::became_unhealthy(&before, &after) {
            let reason = format!(
                "unhealthy after {} failures: {}",
                after.failing_streak,
                after.last_output.trim()
            );
            effects.push(Effect::Note(reason.clone()));
            effects.push(Effect::Record(Record {
                kind: EventKind::Unhealthy,
                reason,
                exit_code: None,
            }));
            if config.restart_on_unhealthy {
                effects.push(Effect::Kill {
                    signal: libc::SIGKILL,
                });
                killed = true;
            }
        }
        if before.state != HealthState::Healthy && after.state == HealthState::Healthy {
            effects.push(Effect::Record(Record {
                kind: EventKind::Healthy,
                reason: "its health check passed".into(),
                exit_code: None,
            }));
        }
        self.status.health = Some(after);
        self.state = if killed {
            State::KillingUnhealthy { started }
        } else {
            State::Running {
                started,
                check: Check::Due {
                    at: now.ms + config.interval_ms,
                },
            }
        };
        effects.push(Effect::WriteStatus);
    }

    /// Fires the current state's timer if it is due.
    fn tick(&mut self, now: Now, effects: &mut Vec<Effect>) {
        let due = |at: u64| at <= now.ms;
        match self.state {
            State::Starting {
                since,
                stop: Some(Grace { kill_at: Some(at) }),
            } if due(at) => {
                self.grace_over(effects);
                self.state = State::Starting {
                    since,
                    stop: Some(Grace { kill_at: None }),
                };
            }
            State::Stopping {
                grace: Grace { kill_at: Some(at) },
            } if due(at) => {
                self.grace_over(effects);
                self.state = State::Stopping {
                    grace: Grace { kill_at: None },
                };
            }
            State::Running {
                started,
                check:
                    Check::InFlight {
                        deadline: Some(deadline),
                    },
            } if due(deadline) => {
                effects.push(Effect::TimeOutCheck);
                self.state = State::Running {
                    started,
                    check: Check::InFlight { deadline: None },
                };
            }
            State::Running {
                started,
                check: Check::Due { at },
            } if due(at) => {
                let timeout_ms = self.policy.healthcheck.as_ref().map_or(0, |c| c.timeout_ms);
                effects.push(Effect::SpawnCheck);
                self.state = State::Running {
                    started,
                    check: Check::InFlight {
                        deadline: Some(now.ms + timeout_ms),
                    },
                };
            }
            State::BackingOff { until } if due(until) => {
                self.status.restarts += 1;
                effects.push(Effect::Record(Record {
                    kind: EventKind::Restarted,
                    reason: format!("restart {}: {}", self.status.restarts, self.how_it_ended()),
                    exit_code: self.last_exit_code(),
                }));
                self.start(now, effects);
            }
            _ => {}
        }
    }

    fn grace_over(&self, effects: &mut Vec<Effect>) {
        effects.push(Effect::Note("stop grace period over: SIGKILL".into()));
        effects.push(Effect::Kill {
            signal: libc::SIGKILL,
        });
    }

    /// Whether the restart policy starts the container again after it
    /// ended with `exit`.
    fn restarts_after(&self, exit: ExitKind, ending: Ending) -> bool {
        let policy = &self.policy.restart;
        match ending {
            Ending::KilledUnhealthy { .. } => restart::should_restart_unhealthy(
                policy.policy,
                policy.max_retries,
                self.restarts_since_start(),
                self.status.stopped,
            ),
            Ending::OnItsOwn { .. } | Ending::Stopped => restart::should_restart(
                policy.policy,
                policy.max_retries,
                self.restarts_since_start(),
                exit,
                self.status.stopped,
            ),
        }
    }

    /// Records the restart decision taken: a start after a backoff, or the end.
    fn after_end(&mut self, again: bool, ending: Ending, now: Now, effects: &mut Vec<Effect>) {
        if !again {
            if ending != Ending::Stopped && !self.status.stopped && !self.ended_well() {
                effects.push(self.gave_up());
            }
            return self.exit_for_good(effects);
        }
        let ran_for_ms = match ending {
            Ending::OnItsOwn { ran_for_ms } | Ending::KilledUnhealthy { ran_for_ms } => ran_for_ms,
            Ending::Stopped => 0,
        };
        let (delay, streak) = restart::plan_backoff(&self.policy.restart, self.streak, ran_for_ms);
        self.streak = streak;
        self.status.phase = Phase::Restarting;
        self.status.next_start_unix_ms = Some(now.unix_ms + delay);
        self.state = State::BackingOff {
            until: now.ms + delay,
        };
        effects.push(Effect::Note(format!("restart in {delay} ms")));
        effects.push(Effect::WriteStatus);
    }

    /// Whether the run that ended (as the status records it) succeeded.
    fn ended_well(&self) -> bool {
        self.status.exit_code == Some(0) && self.status.signal.is_none()
    }

    /// The exit code of the run that ended; a death by signal N as 128 + N,
    /// as a shell says it.
    fn last_exit_code(&self) -> Option<i32> {
        self.status
            .exit_code
            .or(self.status.signal.map(|signal| 128 + signal))
    }

    /// How the run that ended ended, in words.
    fn how_it_ended(&self) -> String {
        match (
            self.status.exit_code,
            self.status.signal,
            &self.status.error,
        ) {
            (Some(START_FAILED_CODE), _, Some(error)) => format!("it could not start: {error}"),
            (Some(code), _, _) => format!("it exited with code {code}"),
            (None, Some(signal), _) => format!("it was killed by signal {signal}"),
            (None, None, _) => "it ended".into(),
        }
    }

    /// The event of a run that failed and is not restarted.
    fn gave_up(&self) -> Effect {
        let policy = match self.policy.restart.policy {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
            RestartPolicy::UnlessStopped => "unless-stopped",
        };
        Effect::Record(Record {
            kind: EventKind::Failed,
            reason: format!(
                "{}; not restarted (restart policy {policy}, {} restarts)",
                self.how_it_ended(),
                self.status.restarts
            ),
            exit_code: self.last_exit_code(),
        })
    }

    /// No restart follows: the log complete, the final status written, and
    /// then the end, the runtime's container deleted last of all (a live
    /// shim with an `Exited` status is finishing that delete, which
    /// `Runtime::remove` lets it).
    fn exit_for_good(&mut self, effects: &mut Vec<Effect>) {
        effects.push(Effect::CompleteLogs);
        self.status.phase = Phase::Exited;
        self.status.pid = None;
        self.status.next_start_unix_ms = None;
        self.state = State::Exited;
        effects.push(Effect::WriteStatus);
        effects.push(if self.container_left {
            Effect::ExecDeleteAndExit
        } else {
            Effect::Exit
        });
        self.container_left = false;
    }
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Created => "created",
            State::Starting { .. } => "starting",
            State::Running { .. } => "running",
            State::KillingUnhealthy { .. } => "killing-unhealthy",
            State::Stopping { .. } => "stopping",
            State::BackingOff { .. } => "backing-off",
            State::Exited => "exited",
        }
    }
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Begin => "begin",
            Event::Started { .. } => "started",
            Event::StartFailed { .. } => "start-failed",
            Event::RunExited { .. } => "run-exited",
            Event::StopRequested => "stop-requested",
            Event::CheckFinished(_) => "check-finished",
            Event::Tick => "tick",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::container_dir::{HealthProbe, HealthState, RestartPolicy};

    const SIGTERM: i32 = libc::SIGTERM;
    const SIGKILL: i32 = libc::SIGKILL;
    const INIT: u32 = 4242;
    /// The wall clock when the monotonic clock reads 0.
    const UNIX0: u64 = 1_700_000_000_000;
    /// No effects.
    const NONE: [Effect; 0] = [];

    fn at(ms: u64) -> Now {
        Now {
            ms,
            unix_ms: UNIX0 + ms,
        }
    }

    /// Backoff 100 ms doubling to 1 s, reset after 10 s; stop grace 500 ms.
    fn policy(restart: RestartPolicy) -> Policy {
        Policy {
            restart: RestartConfig {
                policy: restart,
                max_retries: None,
                initial_ms: 100,
                max_ms: 1_000,
                reset_after_ms: 10_000,
            },
            healthcheck: None,
            stop_signal: SIGTERM,
            stop_grace_ms: 500,
            attached_runtime: false,
        }
    }

    /// Checks every 1 s with a 300 ms timeout; unhealthy after 2 failures.
    fn checked(restart: RestartPolicy, restart_on_unhealthy: bool) -> Policy {
        Policy {
            healthcheck: Some(HealthConfig {
                check: HealthProbe::Exec(vec!["true".into()]),
                interval_ms: 1_000,
                timeout_ms: 300,
                retries: 2,
                start_period_ms: 0,
                restart_on_unhealthy,
            }),
            ..policy(restart)
        }
    }

    fn step(lifecycle: &mut Lifecycle, event: Event, ms: u64) -> Vec<Effect> {
        let before = lifecycle.state();
        lifecycle
            .step(event.clone(), at(ms))
            .unwrap_or_else(|e| panic!("{event:?} at {ms} ms from {before:?}: {e}"))
    }

    /// The effects without the diagnostics and the events.
    fn acts(effects: Vec<Effect>) -> Vec<Effect> {
        effects
            .into_iter()
            .filter(|e| !matches!(e, Effect::Note(_) | Effect::Record(_)))
            .collect()
    }

    /// The events among the effects, as (kind, reason, exit code).
    fn records(effects: &[Effect]) -> Vec<(EventKind, &str, Option<i32>)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Record(r) => Some((r.kind, r.reason.as_str(), r.exit_code)),
                _ => None,
            })
            .collect()
    }

    fn notes(effects: &[Effect]) -> Vec<&str> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Note(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Asked to start at 0 ms.
    fn starting(policy: Policy) -> Lifecycle {
        let mut lifecycle = Lifecycle::new(policy, 7);
        step(&mut lifecycle, Event::Begin, 0);
        lifecycle
    }

    /// Asked to start at 0 ms, running since 10 ms.
    fn running(policy: Policy) -> Lifecycle {
        let mut lifecycle = starting(policy);
        step(&mut lifecycle, Event::Started { init_pid: INIT }, 10);
        lifecycle
    }

    fn exit(code: i32) -> Event {
        Event::RunExited {
            exit: ExitKind::Code(code),
            container_left: true,
        }
    }

    fn failed_start(container_left: bool) -> Event {
        Event::StartFailed {
            message: "exec: no such file".into(),
            container_left,
        }
    }

    fn check(exit_code: i32) -> Event {
        Event::CheckFinished(CheckResult {
            exit_code: Some(exit_code),
            timed_out: false,
            output: format!("exit {exit_code}\n"),
        })
    }

    /// Running since 10 ms, its first check (due at 1010) spawned.
    fn checking(policy: Policy) -> Lifecycle {
        let mut lifecycle = running(policy);
        assert_eq!(
            step(&mut lifecycle, Event::Tick, 1_010),
            [Effect::SpawnCheck]
        );
        lifecycle
    }

    fn kill(signal: i32) -> Effect {
        Effect::Kill { signal }
    }

    // ---- created ----------------------------------------------------------

    #[test]
    fn a_new_lifecycle_shows_created_with_no_timer() {
        let lifecycle = Lifecycle::new(policy(RestartPolicy::Always), 7);
        assert_eq!(lifecycle.state(), State::Created);
        assert_eq!(lifecycle.status().phase, Phase::Created);
        assert_eq!(lifecycle.status().shim_pid, 7);
        assert_eq!(lifecycle.next_deadline(), None);
        assert!(!lifecycle.is_over());
    }

    #[test]
    fn begin_writes_the_status_then_starts_the_container() {
        let mut lifecycle = Lifecycle::new(policy(RestartPolicy::Always), 7);
        let effects = step(&mut lifecycle, Event::Begin, 0);
        assert_eq!(effects, [Effect::WriteStatus, Effect::StartContainer]);
        assert_eq!(
            lifecycle.state(),
            State::Starting {
                since: at(0),
                stop: None
            }
        );
        assert_eq!(lifecycle.status().phase, Phase::Created);
        assert_eq!(lifecycle.status().restarts, 0);
    }

    // ---- starting ---------------------------------------------------------

    #[test]
    fn started_records_the_init_and_runs() {
        let mut lifecycle = starting(policy(RestartPolicy::Always));
        let effects = step(&mut lifecycle, Event::Started { init_pid: INIT }, 30);
        assert_eq!(effects, [Effect::WriteStatus]);
        assert_eq!(
            lifecycle.state(),
            State::Running {
                started: at(30),
                check: Check::Off
            }
        );
        let status = lifecycle.status();
        assert_eq!(status.phase, Phase::Running);
        assert_eq!(status.pid, Some(INIT));
        assert_eq!(status.started_unix_ms, Some(UNIX0 + 30));
        assert_eq!(status.health, None);
        assert_eq!(lifecycle.next_deadline(), None);
    }

    #[test]
    fn a_detached_run_counts_from_when_runtime_run_returned() {
        let mut lifecycle = starting(checked(RestartPolicy::Always, false));
        step(&mut lifecycle, Event::Started { init_pid: INIT }, 40);
        assert_eq!(lifecycle.status().started_unix_ms, Some(UNIX0 + 40));
        assert_eq!(lifecycle.next_deadline(), Some(1_040));
    }

    #[test]
    fn an_attached_run_counts_from_when_the_runtime_was_started() {
        let mut policy = checked(RestartPolicy::Always, false);
        policy.attached_runtime = true;
        let mut lifecycle = starting(policy);
        step(&mut lifecycle, Event::Started { init_pid: INIT }, 40);
        assert_eq!(lifecycle.status().started_unix_ms, Some(UNIX0));
        assert_eq!(lifecycle.next_deadline(), Some(1_000));
    }

    #[test]
    fn started_with_a_healthcheck_starts_health_over_and_schedules_the_first_check() {
        let mut lifecycle = starting(checked(RestartPolicy::Always, false));
        step(&mut lifecycle, Event::Started { init_pid: INIT }, 10);
        assert_eq!(
            lifecycle.state(),
            State::Running {
                started: at(10),
                check: Check::Due { at: 1_010 }
            }
        );
        assert_eq!(lifecycle.status().health, Some(health::starting()));
    }

    #[test]
    fn start_failure_deletes_what_the_runtime_left_and_counts_as_exit_128() {
        let mut lifecycle = starting(policy(RestartPolicy::Always));
        let effects = step(&mut lifecycle, failed_start(true), 20);
        assert_eq!(
            notes(&effects),
            ["start failed: exec: no such file", "restart in 100 ms"]
        );
        assert_eq!(
            acts(effects),
            [
                Effect::DrainOutput,
                Effect::DeleteContainer,
                Effect::WriteStatus
            ]
        );
        assert_eq!(lifecycle.state(), State::BackingOff { until: 120 });
        let status = lifecycle.status();
        assert_eq!(status.phase, Phase::Restarting);
        assert_eq!(status.exit_code, Some(START_FAILED_CODE));
        assert_eq!(status.exited_unix_ms, Some(UNIX0 + 20));
        assert_eq!(status.error.as_deref(), Some("exec: no such file"));
        assert_eq!(status.next_start_unix_ms, Some(UNIX0 + 120));
    }

    #[test]
    fn start_failure_with_nothing_left_deletes_nothing() {
        let mut lifecycle = starting(policy(RestartPolicy::Always));
        let effects = acts(step(&mut lifecycle, failed_start(false), 20));
        assert_eq!(effects, [Effect::DrainOutput, Effect::WriteStatus]);
    }

    #[test]
    fn start_failure_with_policy_never_deletes_first_and_exits_with_nothing_left() {
        let mut lifecycle = starting(policy(RestartPolicy::Never));
        let effects = acts(step(&mut lifecycle, failed_start(true), 20));
        assert_eq!(
            effects,
            [
                Effect::DrainOutput,
                Effect::DeleteContainer,
                Effect::CompleteLogs,
                Effect::WriteStatus,
                Effect::Exit
            ]
        );
        assert!(lifecycle.is_over());
        assert_eq!(lifecycle.status().phase, Phase::Exited);
    }

    #[test]
    fn a_start_failure_counts_against_on_failure_max_retries() {
        let mut policy = policy(RestartPolicy::OnFailure);
        policy.restart.max_retries = Some(1);
        let mut lifecycle = starting(policy);
        step(&mut lifecycle, failed_start(true), 20);
        step(&mut lifecycle, Event::Tick, 120);
        let effects = acts(step(&mut lifecycle, failed_start(true), 130));
        assert_eq!(effects.last(), Some(&Effect::Exit));
        assert_eq!(lifecycle.status().restarts, 1);
        assert_eq!(lifecycle.status().exit_code, Some(START_FAILED_CODE));
    }

    #[test]
    fn stop_request_while_starting_signals_now_and_again_once_started() {
        let mut lifecycle = starting(policy(RestartPolicy::Always));
        let effects = step(&mut lifecycle, Event::StopRequested, 5);
        assert_eq!(notes(&effects), ["stop requested"]);
        assert_eq!(acts(effects), [kill(SIGTERM), Effect::WriteStatus]);
        assert!(lifecycle.status().stopped);
        assert_eq!(lifecycle.next_deadline(), Some(505));
        let effects = step(&mut lifecycle, Event::Started { init_pid: INIT }, 30);
        assert_eq!(effects, [Effect::WriteStatus, kill(SIGTERM)]);
        assert_eq!(
            lifecycle.state(),
            State::Stopping {
                grace: Grace { kill_at: Some(505) }
            }
        );
        assert_eq!(lifecycle.status().pid, Some(INIT));
    }

    #[test]
    fn a_second_stop_request_while_starting_changes_nothing() {
        let mut lifecycle = starting(policy(RestartPolicy::Always));
        step(&mut lifecycle, Event::StopRequested, 5);
        let state = lifecycle.state();
        assert_eq!(step(&mut lifecycle, Event::StopRequested, 50), NONE);
        assert_eq!(lifecycle.state(), state);
    }

    #[test]
    fn sigkill_follows_when_a_stop_during_start_outlives_the_grace() {
        let mut lifecycle = starting(policy(RestartPolicy::Always));
        step(&mut lifecycle, Event::StopRequested, 5);
        assert_eq!(step(&mut lifecycle, Event::Tick, 504), NONE);
        let effects = step(&mut lifecycle, Event::Tick, 505);
        assert_eq!(notes(&effects), ["stop grace period over: SIGKILL"]);
        assert_eq!(acts(effects), [kill(SIGKILL)]);
        assert_eq!(lifecycle.next_deadline(), None);
        assert_eq!(step(&mut lifecycle, Event::Tick, 2_000), NONE);
        // Started late: the stop signal again, no second SIGKILL timer.
        step(&mut lifecycle, Event::Started { init_pid: INIT }, 2_100);
        assert_eq!(
            lifecycle.state(),
            State::Stopping {
                grace: Grace { kill_at: None }
            }
        );
    }

    #[test]
    fn start_failure_after_a_stop_request_exits_for_good() {
        let mut lifecycle = starting(policy(RestartPolicy::Always));
        step(&mut lifecycle, Event::StopRequested, 5);
        let effects = acts(step(&mut lifecycle, failed_start(false), 20));
        assert_eq!(
            effects,
            [
                Effect::DrainOutput,
                Effect::CompleteLogs,
                Effect::WriteStatus,
                Effect::Exit
            ]
        );
        assert!(lifecycle.is_over());
        assert!(lifecycle.status().stopped);
    }

    // ---- running ----------------------------------------------------------

    #[test]
    fn init_exit_with_policy_never_records_exit_and_deletes() {
        let mut lifecycle = running(policy(RestartPolicy::Never));
        let effects = step(&mut lifecycle, exit(3), 500);
        assert_eq!(
            records(&effects),
            [(
                EventKind::Failed,
                "it exited with code 3; not restarted (restart policy never, 0 restarts)",
                Some(3)
            )]
        );
        // The status is final before the delete: the delete is the last act.
        assert_eq!(
            acts(effects),
            [
                Effect::DrainOutput,
                Effect::CompleteLogs,
                Effect::WriteStatus,
                Effect::ExecDeleteAndExit
            ]
        );
        assert_eq!(lifecycle.state(), State::Exited);
        let status = lifecycle.status();
        assert_eq!(status.phase, Phase::Exited);
        assert_eq!(status.pid, None);
        assert_eq!(status.exit_code, Some(3));
        assert_eq!(status.signal, None);
        assert_eq!(status.exited_unix_ms, Some(UNIX0 + 500));
        assert_eq!(status.next_start_unix_ms, None);
        assert!(!status.stopped);
    }

    #[test]
    fn a_death_by_signal_is_recorded_as_the_signal() {
        let mut lifecycle = running(policy(RestartPolicy::Never));
        let killed = Event::RunExited {
            exit: ExitKind::Signal(SIGKILL),
            container_left: true,
        };
        step(&mut lifecycle, killed, 500);
        assert_eq!(lifecycle.status().signal, Some(SIGKILL));
        assert_eq!(lifecycle.status().exit_code, None);
    }

    #[test]
    fn init_exit_with_restart_deletes_while_it_records_the_restart() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        let effects = step(&mut lifecycle, exit(0), 500);
        assert_eq!(notes(&effects), ["restart in 100 ms"]);
        assert_eq!(
            acts(effects),
            [
                Effect::DrainOutput,
                Effect::BeginDelete,
                Effect::WriteStatus,
                Effect::AwaitDelete
            ]
        );
        assert_eq!(lifecycle.state(), State::BackingOff { until: 600 });
        assert_eq!(lifecycle.status().phase, Phase::Restarting);
        assert_eq!(lifecycle.status().next_start_unix_ms, Some(UNIX0 + 600));
    }

    #[test]
    fn an_attached_runtime_that_removed_the_container_leaves_nothing_to_delete() {
        let mut policy = policy(RestartPolicy::Always);
        policy.attached_runtime = true;
        let removed = Event::RunExited {
            exit: ExitKind::Code(1),
            container_left: false,
        };
        let mut lifecycle = running(policy.clone());
        let effects = acts(step(&mut lifecycle, removed.clone(), 500));
        assert_eq!(effects, [Effect::DrainOutput, Effect::WriteStatus]);

        policy.restart.policy = RestartPolicy::Never;
        let mut lifecycle = running(policy);
        let effects = acts(step(&mut lifecycle, removed, 500));
        assert_eq!(effects.last(), Some(&Effect::Exit));
    }

    #[test]
    fn on_failure_does_not_restart_after_exit_zero() {
        let mut lifecycle = running(policy(RestartPolicy::OnFailure));
        step(&mut lifecycle, exit(0), 500);
        assert!(lifecycle.is_over());
    }

    #[test]
    fn on_failure_runs_max_retries_more_times_with_growing_backoff() {
        let mut policy = policy(RestartPolicy::OnFailure);
        policy.restart.max_retries = Some(2);
        let mut lifecycle = running(policy);
        let mut waits = Vec::new();
        let mut now = 10;
        while !lifecycle.is_over() {
            now += 5; // a quick failure
            step(&mut lifecycle, exit(1), now);
            if let State::BackingOff { until } = lifecycle.state() {
                waits.push(until - now);
                step(&mut lifecycle, Event::Tick, until);
                now = until;
                step(&mut lifecycle, Event::Started { init_pid: INIT }, now);
            }
        }
        assert_eq!(waits, [100, 200]);
        assert_eq!(lifecycle.status().restarts, 2);
        assert_eq!(lifecycle.status().exit_code, Some(1));
    }

    #[test]
    fn a_container_started_again_goes_on_counting_and_gets_its_retries_again() {
        let mut policy = policy(RestartPolicy::OnFailure);
        policy.restart.max_retries = Some(2);
        // Its last shim restarted it 5 times (and gave up): `berth start`.
        let mut lifecycle = Lifecycle::new(policy, 7).counting_restarts_from(5);
        assert_eq!(lifecycle.status().restarts, 5);
        step(&mut lifecycle, Event::Begin, 0);
        step(&mut lifecycle, Event::Started { init_pid: INIT }, 10);
        assert_eq!(lifecycle.status().restarts, 5);
        let mut restarts_seen = Vec::new();
        let mut now = 10;
        while !lifecycle.is_over() {
            now += 5;
            step(&mut lifecycle, exit(1), now);
            if let State::BackingOff { until } = lifecycle.state() {
                step(&mut lifecycle, Event::Tick, until);
                restarts_seen.push(lifecycle.status().restarts);
                now = until;
                step(&mut lifecycle, Event::Started { init_pid: INIT }, now);
            }
        }
        // Two more restarts (maxRetries counts this start's), numbered on.
        assert_eq!(restarts_seen, [6, 7]);
        assert_eq!(lifecycle.status().restarts, 7);
    }

    #[test]
    fn restart_backoff_doubles_for_quick_failures_and_caps_at_max() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        let mut waits = Vec::new();
        let mut now = 10;
        for _ in 0..6 {
            now += 50;
            step(&mut lifecycle, exit(1), now);
            let State::BackingOff { until } = lifecycle.state() else {
                panic!("{:?}", lifecycle.state());
            };
            waits.push(until - now);
            assert_eq!(lifecycle.next_deadline(), Some(until));
            assert_eq!(step(&mut lifecycle, Event::Tick, until - 1), NONE);
            step(&mut lifecycle, Event::Tick, until);
            now = until + 20;
            step(&mut lifecycle, Event::Started { init_pid: INIT }, now);
        }
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(lifecycle.status().restarts, 6);
    }

    #[test]
    fn restart_backoff_starts_over_after_a_run_long_enough() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        let mut now = 10;
        let mut run_for = |lifecycle: &mut Lifecycle, ms: u64| {
            step(lifecycle, exit(1), now + ms);
            let State::BackingOff { until } = lifecycle.state() else {
                panic!("{:?}", lifecycle.state());
            };
            let wait = until - (now + ms);
            now = until;
            step(lifecycle, Event::Tick, now);
            step(lifecycle, Event::Started { init_pid: INIT }, now);
            wait
        };
        let waits: Vec<u64> = [10, 10, 10, 9_999, 10_000, 10]
            .into_iter()
            .map(|ms| run_for(&mut lifecycle, ms))
            .collect();
        // A run of 10 s is not part of the streak: the wait starts over.
        assert_eq!(waits, [100, 200, 400, 800, 100, 200]);
    }

    #[test]
    fn the_backoff_timer_starts_the_container_again_and_counts_the_restart() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        step(&mut lifecycle, exit(1), 500);
        assert_eq!(step(&mut lifecycle, Event::Tick, 599), NONE);
        let effects = step(&mut lifecycle, Event::Tick, 600);
        assert_eq!(
            records(&effects),
            [(
                EventKind::Restarted,
                "restart 1: it exited with code 1",
                Some(1)
            )]
        );
        assert_eq!(acts(effects), [Effect::WriteStatus, Effect::StartContainer]);
        let status = lifecycle.status();
        assert_eq!(status.restarts, 1);
        assert_eq!(status.phase, Phase::Created);
        assert_eq!(status.next_start_unix_ms, None);
        assert_eq!(
            status.exit_code,
            Some(1),
            "the last exit shows until the next start"
        );
        step(&mut lifecycle, Event::Started { init_pid: INIT + 1 }, 650);
        assert_eq!(
            lifecycle.status().exit_code,
            None,
            "a new run clears the last exit"
        );
        assert_eq!(lifecycle.status().pid, Some(INIT + 1));
    }

    #[test]
    fn stop_request_while_running_sends_the_stop_signal_and_arms_sigkill() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        let effects = step(&mut lifecycle, Event::StopRequested, 100);
        assert_eq!(notes(&effects), ["stop requested"]);
        assert_eq!(acts(effects), [kill(SIGTERM), Effect::WriteStatus]);
        assert_eq!(
            lifecycle.state(),
            State::Stopping {
                grace: Grace { kill_at: Some(600) }
            }
        );
        assert!(lifecycle.status().stopped);
        assert_eq!(lifecycle.status().phase, Phase::Running);
    }

    #[test]
    fn stop_request_while_a_check_runs_cancels_the_check() {
        let mut lifecycle = checking(checked(RestartPolicy::Always, false));
        let effects = acts(step(&mut lifecycle, Event::StopRequested, 1_100));
        assert_eq!(
            effects,
            [Effect::CancelCheck, kill(SIGTERM), Effect::WriteStatus]
        );
        assert_eq!(lifecycle.next_deadline(), Some(1_600));
    }

    #[test]
    fn init_exit_while_a_check_runs_cancels_the_check() {
        let mut lifecycle = checking(checked(RestartPolicy::Never, false));
        let effects = step(&mut lifecycle, exit(0), 1_100);
        assert_eq!(&effects[..2], [Effect::DrainOutput, Effect::CancelCheck]);
    }

    #[test]
    fn illegal_start_while_running_is_an_error() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        let before = lifecycle.state();
        for event in [
            Event::Begin,
            Event::Started { init_pid: 1 },
            failed_start(true),
        ] {
            let error = lifecycle.step(event, at(100)).unwrap_err();
            assert_eq!(error.state, "running");
        }
        assert_eq!(
            lifecycle.state(),
            before,
            "an illegal event changes nothing"
        );
        let error = lifecycle.step(Event::Begin, at(100)).unwrap_err();
        assert_eq!(error.to_string(), "illegal transition: begin while running");
    }

    #[test]
    fn a_check_result_with_no_check_in_flight_is_an_error() {
        let mut lifecycle = running(checked(RestartPolicy::Always, false));
        assert!(lifecycle.step(check(0), at(100)).is_err());
        let mut lifecycle = running(policy(RestartPolicy::Always));
        assert!(lifecycle.step(check(0), at(100)).is_err());
    }

    // ---- health checks ----------------------------------------------------

    #[test]
    fn a_due_check_is_spawned_with_its_timeout_as_deadline() {
        let mut lifecycle = running(checked(RestartPolicy::Always, false));
        assert_eq!(step(&mut lifecycle, Event::Tick, 1_009), NONE);
        assert_eq!(
            step(&mut lifecycle, Event::Tick, 1_010),
            [Effect::SpawnCheck]
        );
        assert_eq!(
            lifecycle.state(),
            State::Running {
                started: at(10),
                check: Check::InFlight {
                    deadline: Some(1_310)
                }
            }
        );
        assert_eq!(
            step(&mut lifecycle, Event::Tick, 1_100),
            NONE,
            "one at a time"
        );
    }

    #[test]
    fn an_overrunning_check_is_timed_out_once() {
        let mut lifecycle = checking(checked(RestartPolicy::Always, false));
        assert_eq!(step(&mut lifecycle, Event::Tick, 1_309), NONE);
        assert_eq!(
            step(&mut lifecycle, Event::Tick, 1_310),
            [Effect::TimeOutCheck]
        );
        assert_eq!(lifecycle.next_deadline(), None, "its exit is awaited");
        assert_eq!(step(&mut lifecycle, Event::Tick, 5_000), NONE);
        let timed_out = Event::CheckFinished(CheckResult {
            exit_code: None,
            timed_out: true,
            output: "health check timed out".into(),
        });
        step(&mut lifecycle, timed_out, 5_010);
        let health = lifecycle.status().health.clone().unwrap();
        assert_eq!(health.failing_streak, 1);
        assert_eq!(health.last_output, "health check timed out");
    }

    #[test]
    fn a_passing_check_makes_it_healthy_and_schedules_the_next() {
        let mut lifecycle = checking(checked(RestartPolicy::Always, false));
        let effects = step(&mut lifecycle, check(0), 1_050);
        assert_eq!(
            records(&effects),
            [(EventKind::Healthy, "its health check passed", None)]
        );
        assert_eq!(acts(effects), [Effect::WriteStatus]);
        let health = lifecycle.status().health.clone().unwrap();
        assert_eq!(health.state, HealthState::Healthy);
        assert_eq!(health.last_check_unix_ms, UNIX0 + 1_050);
        assert_eq!(lifecycle.next_deadline(), Some(2_050));
    }

    #[test]
    fn unhealthy_without_restart_keeps_it_running_and_checking() {
        let mut lifecycle = checking(checked(RestartPolicy::Always, false));
        step(&mut lifecycle, check(1), 1_050);
        step(&mut lifecycle, Event::Tick, 2_050);
        let effects = step(&mut lifecycle, check(1), 2_060);
        assert_eq!(notes(&effects), ["unhealthy after 2 failures: exit 1"]);
        assert_eq!(acts(effects), [Effect::WriteStatus]);
        assert_eq!(
            lifecycle.status().health.as_ref().map(|h| h.state),
            Some(HealthState::Unhealthy)
        );
        assert_eq!(lifecycle.next_deadline(), Some(3_060));
    }

    #[test]
    fn unhealthy_with_restart_kills_and_restarts() {
        let mut lifecycle = checking(checked(RestartPolicy::Never, true));
        step(&mut lifecycle, check(2), 1_050);
        step(&mut lifecycle, Event::Tick, 2_050);
        let effects = step(&mut lifecycle, check(2), 2_060);
        assert_eq!(notes(&effects), ["unhealthy after 2 failures: exit 2"]);
        assert_eq!(acts(effects), [kill(SIGKILL), Effect::WriteStatus]);
        assert_eq!(
            lifecycle.state(),
            State::KillingUnhealthy { started: at(10) }
        );
        assert_eq!(lifecycle.next_deadline(), None, "no more checks");
        assert_eq!(step(&mut lifecycle, Event::Tick, 9_000), NONE);
        // Killed: a restart, even though the policy is `never`.
        let killed = Event::RunExited {
            exit: ExitKind::Signal(SIGKILL),
            container_left: true,
        };
        let effects = acts(step(&mut lifecycle, killed, 2_070));
        assert_eq!(
            effects,
            [
                Effect::DrainOutput,
                Effect::BeginDelete,
                Effect::WriteStatus,
                Effect::AwaitDelete
            ]
        );
        assert_eq!(lifecycle.state(), State::BackingOff { until: 2_170 });
        step(&mut lifecycle, Event::Tick, 2_170);
        step(&mut lifecycle, Event::Started { init_pid: INIT }, 2_200);
        assert_eq!(
            lifecycle.status().health.as_ref().map(|h| h.state),
            Some(HealthState::Starting),
            "a new run starts over"
        );
    }

    #[test]
    fn events_say_health_changes_restarts_with_the_exit_code_and_a_failure_for_good() {
        let mut policy = checked(RestartPolicy::OnFailure, true);
        policy.restart.max_retries = Some(1);
        let mut lifecycle = checking(policy);
        assert_eq!(records(&step(&mut lifecycle, check(2), 1_050)), []);
        step(&mut lifecycle, Event::Tick, 2_050);
        assert_eq!(
            records(&step(&mut lifecycle, check(2), 2_060)),
            [(
                EventKind::Unhealthy,
                "unhealthy after 2 failures: exit 2",
                None
            )]
        );
        let killed = Event::RunExited {
            exit: ExitKind::Signal(SIGKILL),
            container_left: true,
        };
        assert_eq!(records(&step(&mut lifecycle, killed, 2_070)), []);
        assert_eq!(
            records(&step(&mut lifecycle, Event::Tick, 2_170)),
            [(
                EventKind::Restarted,
                "restart 1: it was killed by signal 9",
                Some(137)
            )]
        );
        step(&mut lifecycle, Event::Started { init_pid: INIT }, 2_200);
        step(&mut lifecycle, Event::Tick, 3_200);
        assert_eq!(
            records(&step(&mut lifecycle, check(0), 3_210)),
            [(EventKind::Healthy, "its health check passed", None)]
        );
        assert_eq!(
            records(&step(&mut lifecycle, exit(1), 4_000)),
            [(
                EventKind::Failed,
                "it exited with code 1; not restarted (restart policy on-failure, 1 restarts)",
                Some(1)
            )]
        );
        assert!(lifecycle.is_over());
    }

    #[test]
    fn no_failure_is_recorded_for_a_clean_exit_or_a_stop_but_one_for_a_failed_start() {
        let mut lifecycle = running(policy(RestartPolicy::OnFailure));
        assert_eq!(records(&step(&mut lifecycle, exit(0), 500)), []);
        let mut lifecycle = running(policy(RestartPolicy::Never));
        step(&mut lifecycle, Event::StopRequested, 500);
        let stopped = Event::RunExited {
            exit: ExitKind::Signal(SIGTERM),
            container_left: true,
        };
        assert_eq!(records(&step(&mut lifecycle, stopped, 600)), []);
        let mut lifecycle = starting(policy(RestartPolicy::Never));
        assert_eq!(
            records(&step(&mut lifecycle, failed_start(false), 5)),
            [(
                EventKind::Failed,
                "it could not start: exec: no such file; not restarted (restart policy never, 0 restarts)",
                Some(START_FAILED_CODE)
            )]
        );
    }

    #[test]
    fn an_unhealthy_kill_honours_on_failure_max_retries() {
        let mut policy = checked(RestartPolicy::OnFailure, true);
        policy.restart.max_retries = Some(0);
        let mut lifecycle = checking(policy);
        step(&mut lifecycle, check(2), 1_050);
        step(&mut lifecycle, Event::Tick, 2_050);
        step(&mut lifecycle, check(2), 2_060);
        let killed = Event::RunExited {
            exit: ExitKind::Signal(SIGKILL),
            container_left: true,
        };
        let effects = step(&mut lifecycle, killed, 2_070);
        assert_eq!(effects.last(), Some(&Effect::ExecDeleteAndExit));
    }

    #[test]
    fn stop_request_while_killing_unhealthy_stops_for_good() {
        let mut lifecycle = checking(checked(RestartPolicy::Always, true));
        step(&mut lifecycle, check(2), 1_050);
        step(&mut lifecycle, Event::Tick, 2_050);
        step(&mut lifecycle, check(2), 2_060);
        let effects = acts(step(&mut lifecycle, Event::StopRequested, 2_065));
        assert_eq!(effects, [kill(SIGTERM), Effect::WriteStatus]);
        let effects = step(&mut lifecycle, exit(137), 2_070);
        assert_eq!(effects.last(), Some(&Effect::ExecDeleteAndExit));
        assert!(lifecycle.status().stopped);
    }

    // ---- stopping ---------------------------------------------------------

    #[test]
    fn sigkill_follows_stop_signal_after_grace() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        step(&mut lifecycle, Event::StopRequested, 100);
        assert_eq!(step(&mut lifecycle, Event::Tick, 599), NONE);
        let effects = step(&mut lifecycle, Event::Tick, 600);
        assert_eq!(notes(&effects), ["stop grace period over: SIGKILL"]);
        assert_eq!(acts(effects), [kill(SIGKILL)]);
        assert_eq!(lifecycle.next_deadline(), None);
        assert_eq!(step(&mut lifecycle, Event::Tick, 5_000), NONE, "only once");
    }

    #[test]
    fn init_exit_after_a_stop_never_restarts() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        step(&mut lifecycle, Event::StopRequested, 100);
        let effects = step(&mut lifecycle, exit(0), 200);
        assert_eq!(
            effects,
            [
                Effect::DrainOutput,
                Effect::CompleteLogs,
                Effect::WriteStatus,
                Effect::ExecDeleteAndExit
            ]
        );
        let status = lifecycle.status();
        assert!(status.stopped);
        assert_eq!(status.phase, Phase::Exited);
        assert_eq!(status.exit_code, Some(0));
        assert_eq!(status.restarts, 0);
    }

    #[test]
    fn a_second_stop_request_changes_nothing() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        step(&mut lifecycle, Event::StopRequested, 100);
        assert_eq!(step(&mut lifecycle, Event::StopRequested, 300), NONE);
        assert_eq!(
            lifecycle.next_deadline(),
            Some(600),
            "the grace is not extended"
        );
    }

    // ---- backing off ------------------------------------------------------

    #[test]
    fn stop_request_while_backing_off_exits_without_starting() {
        let mut lifecycle = running(policy(RestartPolicy::Always));
        step(&mut lifecycle, exit(1), 500);
        let effects = step(&mut lifecycle, Event::StopRequested, 550);
        assert_eq!(notes(&effects), ["stop requested"]);
        // The runtime's container went before the backoff: nothing to delete.
        assert_eq!(
            acts(effects),
            [Effect::CompleteLogs, Effect::WriteStatus, Effect::Exit]
        );
        let status = lifecycle.status();
        assert_eq!(status.phase, Phase::Exited);
        assert!(status.stopped);
        assert_eq!(status.next_start_unix_ms, None);
        assert_eq!(status.restarts, 0);
        assert_eq!(
            step(&mut lifecycle, Event::Tick, 600),
            NONE,
            "no start after all"
        );
    }

    // ---- exited -----------------------------------------------------------

    #[test]
    fn exited_only_ticks_and_records_a_late_stop_request() {
        let mut lifecycle = running(policy(RestartPolicy::Never));
        step(&mut lifecycle, exit(0), 500);
        assert_eq!(step(&mut lifecycle, Event::Tick, 10_000), NONE);
        // Read in the same round as the exit, before the shim's last act.
        let effects = step(&mut lifecycle, Event::StopRequested, 510);
        assert_eq!(notes(&effects), ["stop requested"]);
        assert_eq!(acts(effects), [Effect::WriteStatus]);
        assert!(lifecycle.status().stopped);
        assert_eq!(lifecycle.state(), State::Exited);
        assert_eq!(lifecycle.status().phase, Phase::Exited);
        assert_eq!(step(&mut lifecycle, Event::StopRequested, 520), NONE);
        assert_eq!(lifecycle.next_deadline(), None);
    }

    // ---- every state against every event --------------------------------

    /// One lifecycle in each state.
    fn one_of_each_state() -> Vec<Lifecycle> {
        let created = Lifecycle::new(checked(RestartPolicy::Always, true), 7);
        let starting = starting(checked(RestartPolicy::Always, true));
        let running = running(checked(RestartPolicy::Always, true));
        let checking = checking(checked(RestartPolicy::Always, true));
        let mut killing = checking.clone();
        step(&mut killing, check(1), 1_050);
        step(&mut killing, Event::Tick, 2_050);
        step(&mut killing, check(1), 2_060);
        let mut stopping = running.clone();
        step(&mut stopping, Event::StopRequested, 100);
        let mut backing_off = running.clone();
        step(&mut backing_off, exit(1), 100);
        let mut exited = backing_off.clone();
        step(&mut exited, Event::StopRequested, 150);
        vec![
            created,
            starting,
            running,
            checking,
            killing,
            stopping,
            backing_off,
            exited,
        ]
    }

    fn every_event() -> Vec<Event> {
        vec![
            Event::Begin,
            Event::Started { init_pid: INIT },
            failed_start(true),
            exit(0),
            Event::StopRequested,
            check(0),
            Event::Tick,
        ]
    }

    #[test]
    fn every_state_accepts_exactly_its_legal_events() {
        // Rows: states as in one_of_each_state; columns: events as in
        // every_event (begin, started, start-failed, run-exited,
        // stop-requested, check-finished, tick).
        let legal = [
            ("created", [1, 0, 0, 0, 0, 0, 1]),
            ("starting", [0, 1, 1, 0, 1, 0, 1]),
            ("running", [0, 0, 0, 1, 1, 0, 1]),
            ("running", [0, 0, 0, 1, 1, 1, 1]), // a check in flight
            ("killing-unhealthy", [0, 0, 0, 1, 1, 0, 1]),
            ("stopping", [0, 0, 0, 1, 1, 0, 1]),
            ("backing-off", [0, 0, 0, 0, 1, 0, 1]),
            ("exited", [0, 0, 0, 0, 1, 0, 1]),
        ];
        for (lifecycle, (state, row)) in one_of_each_state().into_iter().zip(legal) {
            assert_eq!(lifecycle.state().name(), state);
            for (event, legal) in every_event().into_iter().zip(row) {
                let mut copy = lifecycle.clone();
                let name = event.name();
                let outcome = copy.step(event, at(3_000));
                assert_eq!(
                    outcome.is_ok(),
                    legal == 1,
                    "{name} while {state}: {outcome:?}"
                );
                if let Err(error) = outcome {
                    assert_eq!((error.state, error.event), (state, name));
                    assert_eq!(copy.state(), lifecycle.state());
                    assert_eq!(copy.status(), lifecycle.status());
                }
            }
        }
    }

    #[test]
    fn next_deadline_is_the_current_states_timer() {
        let deadlines: Vec<Option<u64>> = one_of_each_state()
            .iter()
            .map(Lifecycle::next_deadline)
            .collect();
        assert_eq!(
            deadlines,
            [
                None,        // created
                None,        // starting
                Some(1_010), // running: the first check
                Some(1_310), // the check's timeout
                None,        // killing-unhealthy
                Some(600),   // stopping: SIGKILL
                Some(200),   // backing off: the next start
                None,        // exited
            ]
        );
    }

    #[test]
    fn the_exited_status_is_final() {
        for lifecycle in one_of_each_state() {
            if lifecycle.is_over() {
                assert_eq!(lifecycle.status().phase, Phase::Exited);
                assert_eq!(lifecycle.status().pid, None);
                assert_eq!(lifecycle.status().next_start_unix_ms, None);
            }
        }
    }
}
