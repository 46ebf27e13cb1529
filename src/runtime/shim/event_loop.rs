//! The shim's loop: one thread, one `poll` over the signalfd, the log pipes
//! and the health check's output, with the lifecycle's next timer as the
//! timeout. What it observes becomes an [`Event`] for the [`Lifecycle`];
//! the [`Effect`]s that come back are performed here, in order.
//!
//! Synchronous runtime calls (`run`, `delete`, and `kill` for an attached
//! runtime's container) block the loop for as
//! long as the runtime takes (tens of milliseconds); output the container
//! writes meanwhile waits in the pipes, and signals in the signalfd.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::process::Child;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::check::HealthCheck;
use super::lifecycle::{Effect, Event, Lifecycle, Now, Policy, Record};
use super::output::Output;
use super::runtime_calls::{self, read_pid, RuntimeCalls};
use super::{sys, Diag, ShimError};
use crate::runtime::container_dir::{ContainerDir, HealthProbe, ShimConfig};
use crate::runtime::probe::NetworkProbe;
use crate::runtime::process::ProcessId;
use crate::runtime::restart::ExitKind;
use crate::state::atomic::write_atomic_volatile as write_atomic;
use crate::state::clock::unix_ms;
use crate::state::events::{self, EventLog, EventTarget};

/// The longest the loop sleeps with no timer due.
const IDLE_POLL_MS: u64 = 60_000;

/// How often the loop looks for an attached runtime's init pid file.
const INIT_PID_POLL_MS: u64 = 2;

/// The process whose exit ends the current run.
struct RunProcess {
    /// The container's init, or the attached runtime.
    pid: Pid,
    /// `pid` is the container's init (a detached run), not the runtime.
    is_init: bool,
    /// An attached runtime has not written the init's pid file yet.
    awaiting_init_pid: bool,
}

impl RunProcess {
    /// The container's init while it is the shim's child and not yet
    /// reaped: its pid cannot name another process, so a signal sent to it
    /// reaches the container and nothing else.
    fn unreaped_init(&self) -> Option<Pid> {
        self.is_init.then_some(self.pid)
    }
}

/// The monotonic clock the lifecycle's timers count on, and the wall clock.
struct Clock {
    origin: Instant,
}

impl Clock {
    fn now(&self) -> Now {
        Now {
            ms: self.origin.elapsed().as_millis() as u64,
            unix_ms: unix_ms(),
        }
    }
}

pub(super) struct Shim {
    paths: ContainerDir,
    config: ShimConfig,
    lifecycle: Lifecycle,
    clock: Clock,
    diag: Diag,
    signals: SignalFd,
    runtime: RuntimeCalls,
    output: Output,
    run: Option<RunProcess>,
    check: Option<HealthCheck>,
    /// The current run's init, with its start time: what network probes enter.
    init: Option<ProcessId>,
    /// A `runtime delete` begun and not yet waited for.
    delete: Option<Child>,
    /// Events the effects performed so far gave rise to.
    events: VecDeque<Event>,
    /// The lifecycle ended with a runtime container left to delete.
    delete_at_exit: bool,
    /// berth's events log, when the config names one.
    events_log: Option<EventLog>,
}

impl Shim {
    /// The detached child's set-up after [`super::detach`], up to and
    /// including `shim.pid`: signals, the log, the first status.
    pub fn new(paths: ContainerDir, config: ShimConfig, diag: Diag) -> Result<Shim, ShimError> {
        let mut mask = SigSet::empty();
        for signal in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
        ] {
            mask.add(signal);
        }
        mask.thread_block().map_err(sys("block signals"))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(sys("signalfd"))?;
        let output = Output::open(&config).map_err(|source| ShimError::Open {
            path: config.log_file(),
            source,
        })?;
        // Started again (`berth start`), the container goes on counting its
        // restarts from what the shim before recorded: the count is the
        // container's, not this shim's. A new container has no status yet.
        let restarts_before = paths.read_status().ok().flatten().map_or(0, |s| s.restarts);
        let lifecycle = Lifecycle::new(Policy::of(&config), std::process::id())
            .counting_restarts_from(restarts_before);
        paths
            .write_status(lifecycle.status())
            .map_err(|source| ShimError::Write {
                path: paths.status(),
                source,
            })?;
        // With its start time: a bare pid would name whatever process
        // takes it over once this shim is gone.
        let me = ProcessId::current().ok_or_else(|| ShimError::Write {
            path: paths.shim_pid(),
            source: std::io::Error::other("cannot read this process's start time in /proc"),
        })?;
        write_atomic(&paths.shim_pid(), me.render().as_bytes()).map_err(|source| {
            ShimError::Write {
                path: paths.shim_pid(),
                source,
            }
        })?;
        diag.note(format_args!(
            "shim {} supervising {} (restart {:?})",
            std::process::id(),
            config.id,
            config.restart.policy
        ));
        let events_log = config.events_log.as_deref().and_then(|path| {
            let log = EventLog::for_file(path);
            if log.is_none() {
                diag.note(format_args!(
                    "{} is not an events log; no events recorded",
                    path.display()
                ));
            }
            log
        });
        Ok(Shim {
            events_log,
            runtime: RuntimeCalls::new(&config),
            paths,
            config,
            lifecycle,
            clock: Clock {
                origin: Instant::now(),
            },
            diag,
            signals,
            output,
            run: None,
            check: None,
            init: None,
            delete: None,
            events: VecDeque::new(),
            delete_at_exit: false,
        })
    }

    /// The loop, until the container is gone for good. Returns only if the
    /// shim's last act, the exec of `runtime delete`, was not needed or failed.
    pub fn run(&mut self) {
        self.feed(Event::Begin);
        // A round ends whole, even once the lifecycle is over: a stop read
        // with the final exit is still recorded before the last act.
        while !self.lifecycle.is_over() {
            self.wait_and_dispatch();
            self.look_for_init_pid();
            self.feed(Event::Tick);
        }
        if self.delete_at_exit {
            self.exec_runtime_delete();
        }
        self.diag.note("shim exiting");
    }

    /// Steps the lifecycle with `event` and performs its effects, and the
    /// same for each event those give rise to.
    fn feed(&mut self, event: Event) {
        self.events.push_back(event);
        while let Some(event) = self.events.pop_front() {
            match self.lifecycle.step(event, self.clock.now()) {
                Ok(effects) => {
                    for effect in effects {
                        self.perform(effect);
                    }
                }
                Err(illegal) => self.diag.note(illegal),
            }
        }
    }

    fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::StartContainer => self.start_container(),
            Effect::Kill { signal } => self.signal_container(signal),
            Effect::DrainOutput => self.output.drain(&self.diag),
            Effect::CompleteLogs => self.output.complete(&self.diag),
            Effect::SpawnCheck => self.spawn_check(),
            Effect::TimeOutCheck => {
                if let Some(check) = self.check.as_mut() {
                    check.time_out();
                }
            }
            Effect::CancelCheck => {
                if let Some(check) = self.check.take() {
                    check.cancel();
                }
            }
            Effect::DeleteContainer => {
                if let Err(e) = self.runtime.delete() {
                    self.diag.note(e);
                }
            }
            Effect::BeginDelete => match self.runtime.begin_delete() {
                Ok(child) => self.delete = Some(child),
                Err(e) => self.diag.note(e),
            },
            Effect::AwaitDelete => {
                // Before the loop's next `waitpid(-1)`, which would reap
                // the delete first and leave this wait with nothing to wait for.
                if let Some(Err(e)) = self.delete.take().map(runtime_calls::await_delete) {
                    self.diag.note(e);
                }
            }
            Effect::WriteStatus => {
                if let Err(e) = self.paths.write_status(self.lifecycle.status()) {
                    self.diag.note(format_args!("write status: {e}"));
                }
            }
            Effect::Note(text) => self.diag.note(text),
            Effect::Record(record) => self.record(record),
            // The loop ends after this round (see `run`).
            Effect::ExecDeleteAndExit => self.delete_at_exit = true,
            Effect::Exit => {}
        }
    }

    /// Appends `record` to the events log; a failure goes to the shim's
    /// diagnostics (the container goes on either way).
    fn record(&self, record: Record) {
        let Some(log) = self.events_log.as_ref() else {
            return;
        };
        let event = events::Event::new(record.kind, record.reason)
            .about(EventTarget::Container, self.config.id.clone())
            .with_exit_code(record.exit_code)
            .from_source("shim");
        if let Err(e) = log.try_append(&event) {
            self.diag.note(format_args!("record event: {e}"));
        }
    }

    // ---- waiting ----------------------------------------------------------

    fn wait_and_dispatch(&mut self) {
        let timeout = self.poll_timeout();
        let (signals_ready, outputs_ready, check_ready) = {
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            fds.extend(
                self.output
                    .fds()
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            );
            let outputs = fds.len() - 1;
            let check_fd = self.check.as_ref().and_then(HealthCheck::fd);
            if let Some(fd) = check_fd {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => return,
                Err(error) => {
                    self.diag.note(format_args!("poll: {error}"));
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            let outputs_ready: Vec<bool> = fds[1..1 + outputs].iter().map(ready).collect();
            let check_ready = check_fd.is_some() && fds.last().is_some_and(ready);
            (ready(&fds[0]), outputs_ready, check_ready)
        };
        // Logs before signals: a line written just before an exit is logged
        // before the exit is recorded.
        self.output.read_ready(&outputs_ready, &self.diag);
        if check_ready {
            if let Some(check) = self.check.as_mut() {
                check.read_output();
            }
        }
        if signals_ready {
            self.handle_signals();
        }
    }

    /// Time until the lifecycle's next timer, at most a minute.
    fn poll_timeout(&self) -> PollTimeout {
        let now = self.clock.now().ms;
        let mut wait = self
            .lifecycle
            .next_deadline()
            .map_or(IDLE_POLL_MS, |at| at.saturating_sub(now));
        if self.run.as_ref().is_some_and(|r| r.awaiting_init_pid) {
            // An attached runtime writes the init's pid file once it started.
            wait = wait.min(INIT_PID_POLL_MS);
        }
        PollTimeout::from(wait.min(IDLE_POLL_MS) as u16)
    }

    // ---- signals and children ---------------------------------------------

    fn handle_signals(&mut self) {
        let mut child = false;
        let mut stop = false;
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => child = true,
                    Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => stop = true,
                    _ => {}
                },
                Ok(None) => break,
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    self.diag.note(format_args!("read signalfd: {error}"));
                    break;
                }
            }
        }
        if child {
            self.reap_children();
        }
        if stop {
            self.feed(Event::StopRequested);
        }
    }

    /// Reaps every exited child: the run's process and the health check's
    /// are reported, the log program's noted (it is not signalled after),
    /// the rest (orphans the shim inherits as subreaper) only reaped.
    fn reap_children(&mut self) {
        loop {
            let status = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    self.diag.note(format_args!("waitpid: {error}"));
                    return;
                }
                Ok(status) => status,
            };
            let (pid, exit) = match status {
                WaitStatus::Exited(pid, code) => (pid, ExitKind::Code(code)),
                WaitStatus::Signaled(pid, signal, _) => (pid, ExitKind::Signal(signal as i32)),
                _ => continue,
            };
            if self.run.as_ref().is_some_and(|r| r.pid == pid) {
                self.on_run_exit(exit);
            } else if self.output.reaped(pid) {
                self.diag
                    .note(format_args!("log program pid {pid} exited: {exit:?}"));
            } else if self.check.as_ref().is_some_and(|c| c.pid() == pid) {
                let result = self.check.take().map(|check| check.finish(exit));
                if let Some(result) = result {
                    self.feed(Event::CheckFinished(result));
                }
            }
        }
    }

    // ---- the container ----------------------------------------------------

    /// `runtime run`, and what it came to for the lifecycle.
    fn start_container(&mut self) {
        let io = match self.output.prepare_run(&self.diag) {
            Ok(io) => io,
            Err(message) => {
                return self.events.push_back(Event::StartFailed {
                    message,
                    container_left: false,
                })
            }
        };
        match self.runtime.run(&self.config, &self.paths, io) {
            Ok(launched) => {
                if let Some((stdout, stderr)) = launched.readers {
                    self.output.add(stdout, stderr);
                }
                self.run = Some(RunProcess {
                    pid: launched.pid,
                    is_init: !launched.attached,
                    awaiting_init_pid: launched.attached,
                });
                if !launched.attached {
                    let started = self.started(launched.pid);
                    self.events.push_back(started);
                }
            }
            Err(failed) => self.events.push_back(Event::StartFailed {
                message: failed.message,
                container_left: failed.container_left,
            }),
        }
    }

    /// Sends the container's init `signal`. A detached init is the shim's
    /// own child (the runtime exited and left it to the subreaper), so the
    /// shim signals it directly: `runtime kill` would start a runtime
    /// process per stop only to do the same. An attached runtime's init is
    /// the runtime's child, which only the runtime may signal.
    fn signal_container(&mut self, signal: i32) {
        let direct = self.run.as_ref().and_then(RunProcess::unreaped_init);
        let result = match direct {
            Some(pid) => send_signal(pid, signal),
            None => self.runtime.kill(signal),
        };
        if let Err(e) = result {
            self.diag.note(e);
        }
    }

    /// An attached runtime has written the init's pid: the container runs.
    fn look_for_init_pid(&mut self) {
        let Some(run) = self.run.as_mut().filter(|r| r.awaiting_init_pid) else {
            return;
        };
        let Some(pid) = read_pid(&self.paths.init_pid()) else {
            return;
        };
        run.awaiting_init_pid = false;
        let started = self.started(pid);
        self.feed(started);
    }

    fn started(&mut self, init_pid: Pid) -> Event {
        self.diag
            .note(format_args!("started {} as pid {init_pid}", self.config.id));
        // Read now, while the init is still ours to reap (so its pid names
        // it): a probe enters its namespace only if it is still that process.
        self.init = ProcessId::of(init_pid.as_raw() as u32);
        Event::Started {
            init_pid: init_pid.as_raw() as u32,
        }
    }

    /// The run's process exited: the container's end, or (an attached
    /// runtime that never wrote the init's pid) a failed start.
    fn on_run_exit(&mut self, exit: ExitKind) {
        // It may have started and ended between two looks.
        self.look_for_init_pid();
        let Some(run) = self.run.take() else { return };
        // The attached runtime has removed the container, unless it died first.
        let container_left = !self.config.attached_runtime || self.runtime.holds_container();
        if run.awaiting_init_pid {
            // The attached runtime exited before it started the container:
            // a failed start, as when a detached `runtime run` fails.
            let status = match exit {
                ExitKind::Code(code) => format!("exit status: {code}"),
                ExitKind::Signal(signal) => format!("signal: {signal}"),
            };
            let message = runtime_calls::attached_run_failure(&self.paths, &status);
            return self.feed(Event::StartFailed {
                message,
                container_left,
            });
        }
        self.diag.note(format_args!(
            "container {} exited: {exit:?}",
            self.config.id
        ));
        self.feed(Event::RunExited {
            exit,
            container_left,
        });
    }

    // ---- health checks ----------------------------------------------------

    fn spawn_check(&mut self) {
        let Some(config) = self.config.healthcheck.as_ref() else {
            return;
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        let spawned = match &config.check {
            HealthProbe::Exec(exec) => {
                HealthCheck::spawn(&self.runtime, exec, self.paths.health_pid())
                    .map_err(|e| e.to_string())
            }
            HealthProbe::Http(http) => self.spawn_probe(NetworkProbe::Http(http), timeout),
            HealthProbe::Tcp(tcp) => self.spawn_probe(NetworkProbe::Tcp(*tcp), timeout),
        };
        match spawned {
            Ok(check) => self.check = Some(check),
            Err(e) => {
                let result = HealthCheck::failed_to_spawn(e);
                self.events.push_back(Event::CheckFinished(result));
            }
        }
    }

    /// A network probe of the running container, from inside its namespace.
    fn spawn_probe(
        &self,
        probe: NetworkProbe<'_>,
        timeout: Duration,
    ) -> Result<HealthCheck, String> {
        let init = self
            .init
            .ok_or("the container's init process is not known (its start time was unreadable)")?;
        HealthCheck::spawn_probe(probe, init, timeout)
    }

    // ---- the end ----------------------------------------------------------

    /// The shim's last act: it becomes `runtime delete --force`, one
    /// process fewer to start, wait for and reap on the way out of `berth
    /// run --rm`. Whoever waits for the shim's pid to go waits for the
    /// delete. Returns only if the exec failed, after deleting the usual way.
    fn exec_runtime_delete(&mut self) {
        self.diag
            .note("shim exiting: deleting the runtime's container");
        // Queued signals would be delivered once the exec unblocks them (a
        // SIGTERM would end us before the delete); nothing is left for them
        // to do.
        while let Ok(Some(_)) = self.signals.read_signal() {}
        // The runtime's complaints, if any, go to shim.log.
        let error = self.runtime.exec_delete(self.diag.0.try_clone().ok());
        self.diag.note(format_args!("exec runtime delete: {error}"));
        if let Err(e) = self.runtime.delete() {
            self.diag.note(e);
        }
    }
}

/// `kill(2)` of `pid` with the signal numbered `signal`; by number, since
/// a stop signal may be a real-time one, which [`Signal`] does not name.
#[allow(unsafe_code)] // reason: nix's kill takes only the signals it names
fn send_signal(pid: Pid, signal: i32) -> Result<(), String> {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    let result = unsafe { libc::kill(pid.as_raw(), signal) };
    Errno::result(result)
        .map(drop)
        .map_err(|e| format!("kill({pid}, {signal}): {e}"))
}
