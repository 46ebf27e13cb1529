//! The per-container shim: `berth-shim shim --dir DIR` (or `berth shim --dir DIR`).
//!
//! Lifecycle:
//!
//! 1. [`main`] reads `DIR/shim.json`, forks and returns in the parent once
//!    the child reports it is ready (it has written `status.json` and
//!    `shim.pid`), so the spawner learns the shim's pid and nothing more.
//! 2. The child detaches (`setsid`, child subreaper, cwd `DIR`, stdio on
//!    `/dev/null`, diagnostics to `DIR/shim.log`), blocks SIGCHLD, SIGTERM,
//!    SIGINT and SIGHUP and reads them from a signalfd.
//! 3. It runs `runtime run --detach` (stdout and stderr on two pipes it
//!    reads), then one single-threaded poll loop: the signalfd, the log pipes
//!    and the health check's output, with the next timer as the poll timeout
//!    (restart backoff, health interval and timeout, stop grace). The
//!    container's init is reparented to the shim (subreaper) when the
//!    runtime process exits, even if the init has already exited by then;
//!    the shim reaps it with `waitpid`.
//! 4. On every change it rewrites `status.json` atomically. When the init
//!    exits it asks [`restart`] whether and when to start again; before a
//!    restart it deletes the runtime's container, recording the answer
//!    while that delete runs. SIGTERM or SIGINT stops the container (stop
//!    signal, then SIGKILL after the grace period) with no restart.
//! 5. When the container is gone for good it completes the log, records the
//!    final status (`Exited`) and execs `runtime delete`: its last act. So
//!    a live shim pid with an `Exited` status is finishing that delete;
//!    [`crate::runtime::container::Runtime::remove`] lets it.
//!
//! Synchronous runtime calls (`run`, `kill`, `delete`) block the loop for as
//! long as the runtime takes (tens of milliseconds); output the container
//! writes meanwhile waits in the pipes.

// The pure lifecycle, not yet driven by the loop below (the next step).
#[allow(dead_code)]
mod lifecycle;

use std::ffi::OsString;
use std::fmt::Display;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use crate::runtime::health::{self, CheckResult};
use crate::runtime::logs::{now_timestamp, LineSplitter, LogWriter, Stream};
use crate::runtime::restart::{self, ExitKind};
use crate::runtime::state::{unix_ms, ContainerDir, Phase, ShimConfig, Status};
use crate::state::atomic::write_atomic_volatile as write_atomic;

/// The exit code a failed `runtime run` counts as for the restart policy.
pub const START_FAILED_CODE: i32 = 128;

/// Bytes read from a pipe per wakeup.
const READ_CHUNK: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("read shim config {path}: {source}")]
    ReadConfig { path: PathBuf, source: io::Error },
    #[error("no shim config at {path}")]
    NoConfig { path: PathBuf },
    #[error("open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("the shim must fork from a single-threaded process, this one has {threads} threads")]
    NotSingleThreaded { threads: usize },
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: nix::Error,
    },
    #[error("the detached shim failed: {message}")]
    ChildFailed { message: String },
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> ShimError {
    move |source| ShimError::Sys { what, source }
}

/// `berth shim --dir DIR`: detaches and supervises the container described
/// by `DIR/shim.json`. Returns in the calling process once the detached
/// shim is ready; returns in the detached shim when the container is gone
/// for good.
pub fn main(dir: &Path) -> Result<ExitCode, ShimError> {
    let dir = std::path::absolute(dir).map_err(|source| ShimError::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let paths = ContainerDir { dir: dir.clone() };
    let config = paths
        .read_shim_config()
        .map_err(|source| ShimError::ReadConfig {
            path: paths.shim_config(),
            source,
        })?
        .ok_or_else(|| ShimError::NoConfig {
            path: paths.shim_config(),
        })?;
    let diag_path = dir.join("shim.log");
    let diag = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&diag_path)
        .map_err(|source| ShimError::Open {
            path: diag_path,
            source,
        })?;
    let (ready_read, ready_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    match fork_process()? {
        ForkResult::Parent { .. } => {
            drop(ready_write);
            wait_ready(ready_read)
        }
        ForkResult::Child => {
            drop(ready_read);
            let diag = Diag(diag);
            let mut ready = File::from(ready_write);
            match Shim::setup(paths, config, diag) {
                Ok(mut shim) => {
                    let _ = ready.write_all(b"ok");
                    drop(ready);
                    shim.run();
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    let _ = write!(ready, "{error}");
                    Diag::note_to(&dir.join("shim.log"), &error);
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// Forks the shim process.
#[allow(unsafe_code)]
fn fork_process() -> Result<ForkResult, ShimError> {
    let threads = thread_count();
    if threads != 1 {
        return Err(ShimError::NotSingleThreaded { threads });
    }
    // SAFETY: fork is only unsound when another thread could hold a lock
    // (malloc, stdio, a mutex) the child then needs. We checked just above
    // that this process has exactly one thread (berth's CLI starts none
    // before dispatching to the shim), so the child is a full copy of a
    // single-threaded process and may run any code, not only
    // async-signal-safe calls.
    unsafe { nix::unistd::fork() }.map_err(sys("fork"))
}

/// Threads in this process, from /proc/self/status (0 if unreadable).
fn thread_count() -> usize {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The parent's side: succeed once the child says "ok"; else report what
/// the child wrote before it gave up.
fn wait_ready(ready: OwnedFd) -> Result<ExitCode, ShimError> {
    let mut message = String::new();
    let _ = File::from(ready).read_to_string(&mut message);
    if message == "ok" {
        Ok(ExitCode::SUCCESS)
    } else if message.is_empty() {
        Err(ShimError::ChildFailed {
            message: "it exited before it was ready".into(),
        })
    } else {
        Err(ShimError::ChildFailed { message })
    }
}

/// The shim's own diagnostics, appended to `DIR/shim.log`.
struct Diag(File);

impl Diag {
    fn note(&self, message: impl Display) {
        let _ = writeln!(&self.0, "{} {message}", now_timestamp());
    }

    fn note_to(path: &Path, message: impl Display) {
        if let Ok(file) = OpenOptions::new().create(true).append(true).open(path) {
            Diag(file).note(message);
        }
    }
}

/// One start of the container.
struct Run {
    /// The process whose exit ends the run: the container's init, or the
    /// attached runtime ([`ShimConfig::attached_runtime`]).
    pid: Pid,
    /// The init's pid is in the status (an attached runtime writes its
    /// pid file once the container has started).
    init_recorded: bool,
    started: Instant,
    started_unix_ms: u64,
}

/// A pipe the container writes its stdout or stderr to.
struct Output {
    fd: OwnedFd,
    stream: Stream,
    lines: LineSplitter,
}

/// A health check command in flight.
struct Check {
    pid: Pid,
    deadline: Option<Instant>,
    out: Option<OwnedFd>,
    output: Vec<u8>,
    timed_out: bool,
}

struct Shim {
    paths: ContainerDir,
    config: ShimConfig,
    status: Status,
    diag: Diag,
    signals: SignalFd,
    log: LogWriter,
    buf: Vec<u8>,
    run: Option<Run>,
    outputs: Vec<Output>,
    check: Option<Check>,
    /// When the next start is due (backoff).
    next_start: Option<Instant>,
    /// When the next health check is due.
    next_check: Option<Instant>,
    /// When a stopping container gets SIGKILL.
    kill_at: Option<Instant>,
    /// Consecutive quick failures, for the backoff.
    streak: u32,
    /// The shim killed the container because it became unhealthy.
    killed_unhealthy: bool,
    /// The runtime may hold a container of this id (run, not yet deleted).
    runtime_container: bool,
    done: bool,
}

impl Shim {
    /// The detached child's setup, up to and including `shim.pid`.
    fn setup(paths: ContainerDir, config: ShimConfig, diag: Diag) -> Result<Shim, ShimError> {
        nix::unistd::setsid().map_err(sys("setsid"))?;
        nix::sys::prctl::set_child_subreaper(true).map_err(sys("PR_SET_CHILD_SUBREAPER"))?;
        std::env::set_current_dir(&paths.dir).map_err(|source| ShimError::Open {
            path: paths.dir.clone(),
            source,
        })?;
        let null = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|source| ShimError::Open {
                path: "/dev/null".into(),
                source,
            })?;
        nix::unistd::dup2_stdin(&null).map_err(sys("dup2 stdin"))?;
        nix::unistd::dup2_stdout(&null).map_err(sys("dup2 stdout"))?;
        nix::unistd::dup2_stderr(&null).map_err(sys("dup2 stderr"))?;

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

        let log = LogWriter::open(&paths.log_file(), config.log.clone()).map_err(|source| {
            ShimError::Open {
                path: paths.log_file(),
                source,
            }
        })?;
        let status = Status {
            phase: Phase::Created,
            shim_pid: std::process::id(),
            pid: None,
            started_unix_ms: None,
            exited_unix_ms: None,
            exit_code: None,
            signal: None,
            restarts: 0,
            next_start_unix_ms: None,
            stopped: false,
            health: None,
            error: None,
        };
        paths
            .write_status(&status)
            .map_err(|source| ShimError::Write {
                path: paths.status(),
                source,
            })?;
        write_atomic(
            &paths.shim_pid(),
            format!("{}\n", std::process::id()).as_bytes(),
        )
        .map_err(|source| ShimError::Write {
            path: paths.shim_pid(),
            source,
        })?;
        diag.note(format_args!(
            "shim {} supervising {} (restart {:?})",
            std::process::id(),
            config.id,
            config.restart.policy
        ));
        Ok(Shim {
            paths,
            config,
            status,
            diag,
            signals,
            log,
            buf: vec![0; READ_CHUNK],
            run: None,
            outputs: Vec::new(),
            check: None,
            next_start: None,
            next_check: None,
            kill_at: None,
            streak: 0,
            killed_unhealthy: false,
            runtime_container: false,
            done: false,
        })
    }

    /// The event loop, until the container is gone for good.
    fn run(&mut self) {
        self.start_container();
        while !self.done {
            self.wait_and_dispatch();
            self.fire_timers();
        }
        self.finish();
    }

    fn wait_and_dispatch(&mut self) {
        let timeout = self.poll_timeout();
        let (signals_ready, outputs_ready, check_ready) = {
            let mut fds = Vec::with_capacity(2 + self.outputs.len());
            fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
            for output in &self.outputs {
                fds.push(PollFd::new(output.fd.as_fd(), PollFlags::POLLIN));
            }
            let check_fd: Option<BorrowedFd<'_>> = self
                .check
                .as_ref()
                .and_then(|c| c.out.as_ref())
                .map(|fd| fd.as_fd());
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
            let outputs: Vec<bool> = fds[1..1 + self.outputs.len()].iter().map(ready).collect();
            let check = check_fd.is_some() && fds.last().is_some_and(ready);
            (ready(&fds[0]), outputs, check)
        };
        // Logs before signals: a line written just before an exit is logged
        // before the exit is recorded.
        for index in (0..outputs_ready.len()).rev() {
            if outputs_ready[index] {
                self.read_output(index, false);
            }
        }
        if check_ready {
            self.read_check_output();
        }
        if signals_ready {
            self.handle_signals();
        }
    }

    /// Time until the earliest timer, at most a minute.
    fn poll_timeout(&self) -> PollTimeout {
        let check_deadline = self.check.as_ref().and_then(|c| c.deadline);
        let next_check = if self.check.is_none() {
            self.next_check
        } else {
            None
        };
        // An attached runtime writes the init's pid file once it started.
        let pid_file = self
            .run
            .as_ref()
            .filter(|r| !r.init_recorded)
            .map(|_| Instant::now() + Duration::from_millis(2));
        let earliest = [
            self.next_start,
            self.kill_at,
            check_deadline,
            next_check,
            pid_file,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(at) = earliest else {
            return PollTimeout::from(60_000u16);
        };
        let wait = at.saturating_duration_since(Instant::now());
        let ms = wait.as_nanos().div_ceil(1_000_000).min(60_000) as u16;
        PollTimeout::from(ms)
    }

    fn fire_timers(&mut self) {
        self.record_init_pid();
        let now = Instant::now();
        if self.kill_at.is_some_and(|at| at <= now) {
            self.kill_at = None;
            self.diag.note("stop grace period over: SIGKILL");
            self.runtime_kill(Signal::SIGKILL as i32);
        }
        if self
            .check
            .as_ref()
            .and_then(|c| c.deadline)
            .is_some_and(|at| at <= now)
        {
            self.time_out_check();
        }
        if self.check.is_none()
            && self.run.is_some()
            && !self.status.stopped
            && self.next_check.is_some_and(|at| at <= now)
        {
            self.next_check = None;
            self.spawn_check();
        }
        if self.next_start.is_some_and(|at| at <= now) && !self.status.stopped {
            self.status.restarts += 1;
            self.start_container();
        }
    }

    // ---- signals and children -------------------------------------------

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
            self.stop();
        }
    }

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
                self.on_container_exit(exit);
            } else if self.check.as_ref().is_some_and(|c| c.pid == pid) {
                self.on_check_exit(exit);
            }
        }
    }

    // ---- the container ----------------------------------------------------

    fn start_container(&mut self) {
        self.next_start = None;
        self.status.phase = Phase::Created;
        self.status.pid = None;
        self.status.next_start_unix_ms = None;
        self.save();
        match self.start_runtime() {
            Ok(run) => {
                let init = run.init_recorded.then_some(run.pid);
                self.run = Some(run);
                // An attached runtime's init: see `record_init_pid`.
                if let Some(pid) = init {
                    self.mark_running(pid);
                }
            }
            Err(message) => self.record_start_failure(message),
        }
    }

    /// `runtime run`: one runtime process creates and starts the container
    /// (where `create` then `start` would be two, each paying the runtime's
    /// start-up). Detached, it returns once the container runs; attached
    /// ([`ShimConfig::attached_runtime`]), it stays until the container is
    /// gone and removed. On failure the runtime's error text.
    fn start_runtime(&mut self) -> Result<Run, String> {
        let attached = self.config.attached_runtime;
        let init_pid = self.paths.init_pid();
        let _ = fs::remove_file(&init_pid);
        let runtime_log = self.paths.dir.join("runtime.log");
        let _ = fs::remove_file(&runtime_log);
        let (out_read, out_write) = log_pipe().map_err(|e| format!("pipe: {e}"))?;
        let (err_read, err_write) = log_pipe().map_err(|e| format!("pipe: {e}"))?;
        let stdin = self.container_stdin()?;
        self.runtime_container = true;
        let mut command = self.runtime();
        if attached {
            // Its errors would mix with the container's on the pipes it
            // relays: they also go to a file of their own.
            command
                .arg("--log")
                .arg(&runtime_log)
                .arg("--log-format")
                .arg("json");
        }
        command.arg("run");
        if !attached {
            command.arg("--detach");
        }
        command.arg("--bundle").arg(&self.config.bundle);
        if let Some(socket) = &self.config.console_socket {
            // The terminal's master goes to `berth run -t`; runc's own
            // stdio then carries only its errors.
            command.arg("--console-socket").arg(socket);
        }
        command
            .arg("--pid-file")
            .arg(&init_pid)
            .arg(&self.config.id)
            .stdin(stdin)
            .stdout(Stdio::from(out_write))
            .stderr(Stdio::from(err_write));
        let runtime = self.config.runtime.to_string_lossy().into_owned();
        let started = Instant::now();
        let started_unix_ms = unix_ms();
        let run = if attached {
            // The run ends when the runtime exits; the init's pid follows
            // (`record_init_pid`).
            let child = command.spawn();
            drop(command); // our copies of the pipes' write ends
            let child = child.map_err(|e| {
                self.runtime_container = false;
                format!("run {runtime} run: {e}")
            })?;
            Run {
                pid: Pid::from_raw(child.id() as i32),
                init_recorded: false,
                started,
                started_unix_ms,
            }
        } else {
            let status = command.status();
            // The container keeps its own copies of the pipes' write ends:
            // what it writes waits in the pipes until the loop reads them.
            drop(command);
            let status = status.map_err(|e| {
                self.runtime_container = false;
                format!("run {runtime} run: {e}")
            })?;
            if !status.success() {
                let mut text = drain_to_vec(&err_read);
                text.extend(drain_to_vec(&out_read));
                self.runtime_delete();
                return Err(runtime_error("run", status, &text));
            }
            let Some(pid) = read_pid(&init_pid) else {
                self.runtime_delete();
                return Err(format!("no pid in {} after run", init_pid.display()));
            };
            // `run --detach` returns once the container's process runs.
            Run {
                pid,
                init_recorded: true,
                started: Instant::now(),
                started_unix_ms: unix_ms(),
            }
        };
        self.outputs.push(Output {
            fd: out_read,
            stream: Stream::Stdout,
            lines: LineSplitter::default(),
        });
        self.outputs.push(Output {
            fd: err_read,
            stream: Stream::Stderr,
            lines: LineSplitter::default(),
        });
        Ok(run)
    }

    /// An attached runtime has written the init's pid: the container runs.
    fn record_init_pid(&mut self) {
        let Some(run) = self.run.as_mut().filter(|r| !r.init_recorded) else {
            return;
        };
        let Some(pid) = read_pid(&self.paths.init_pid()) else {
            return;
        };
        run.init_recorded = true;
        self.mark_running(pid);
        if self.status.stopped {
            // A stop asked for while it was starting may have found nothing.
            self.runtime_kill(self.config.stop_signal);
        }
    }

    /// Records the started container, its init `pid`.
    fn mark_running(&mut self, pid: Pid) {
        let Some(run) = &self.run else { return };
        self.diag
            .note(format_args!("started {} as pid {pid}", self.config.id));
        self.status.phase = Phase::Running;
        self.status.pid = Some(pid.as_raw() as u32);
        self.status.started_unix_ms = Some(run.started_unix_ms);
        self.status.exited_unix_ms = None;
        self.status.exit_code = None;
        self.status.signal = None;
        self.status.error = None;
        if let Some(check) = &self.config.healthcheck {
            self.status.health = Some(health::starting());
            self.next_check = Some(run.started + Duration::from_millis(check.interval_ms));
        }
        self.save();
    }

    fn container_stdin(&self) -> Result<Stdio, String> {
        if !self.config.stdin {
            return Ok(Stdio::null());
        }
        let fifo = self.paths.stdin_fifo();
        if !fifo.exists() {
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| format!("mkfifo {}: {e}", fifo.display()))?;
        }
        // Read-only, so the container sees end-of-file when its feeder
        // (`berth run -i`, which opened the write end before this shim
        // started) closes it; non-blocking to open, so a restart after the
        // feeder left does not hang here, then blocking for the container.
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .map_err(|e| format!("open {}: {e}", fifo.display()))?;
        let flags = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| format!("fcntl {}: {e}", fifo.display()))?;
        let blocking =
            nix::fcntl::OFlag::from_bits_truncate(flags) & !nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(blocking))
            .map_err(|e| format!("fcntl {}: {e}", fifo.display()))?;
        Ok(Stdio::from(reader))
    }

    fn on_container_exit(&mut self, exit: ExitKind) {
        if self.run.as_ref().is_some_and(|r| !r.init_recorded) {
            // It may have started and ended between two looks.
            self.record_init_pid();
        }
        let Some(run) = self.run.take() else { return };
        if self.config.attached_runtime {
            // The runtime has removed the container, unless it died first.
            self.runtime_container = self.config.runtime_root.join(&self.config.id).exists();
            if !run.init_recorded {
                return self.on_attached_start_failure(exit);
            }
        }
        self.diag.note(format_args!(
            "container {} exited: {exit:?}",
            self.config.id
        ));
        self.drain_outputs();
        self.cancel_check();
        self.next_check = None;
        self.kill_at = None;
        self.status.pid = None;
        self.status.exited_unix_ms = Some(unix_ms());
        match exit {
            ExitKind::Code(code) => {
                self.status.exit_code = Some(code);
                self.status.signal = None;
            }
            ExitKind::Signal(signal) => {
                self.status.exit_code = None;
                self.status.signal = Some(signal);
            }
        }
        let ran_for = run.started.elapsed().as_millis() as u64;
        // Before a restart the runtime's delete starts first (its start-up
        // is most of what it costs) and the exit is recorded meanwhile. An
        // exit for good is recorded first, its log complete: whoever waits
        // for it (`berth run --rm`) takes the rootfs and the network down
        // while the delete runs, which is then the shim's last act (see
        // `finish`).
        let delete = if self.runtime_container && self.restarts_after(exit) {
            self.start_runtime_delete()
        } else {
            None
        };
        self.after_exit(exit, ran_for);
        self.wait_runtime_delete(delete);
    }

    /// The attached runtime exited before it started the container: a
    /// failed start, as when a detached `runtime run` fails.
    fn on_attached_start_failure(&mut self, exit: ExitKind) {
        self.drain_outputs();
        let log = fs::read_to_string(self.paths.dir.join("runtime.log")).unwrap_or_default();
        let message = log
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|record| record["level"] == "error")
            .and_then(|record| record["msg"].as_str().map(str::to_string))
            .unwrap_or_default();
        let status = match exit {
            ExitKind::Code(code) => format!("exit status: {code}"),
            ExitKind::Signal(signal) => format!("signal: {signal}"),
        };
        let message = if message.is_empty() {
            format!("runtime run failed: {status}")
        } else {
            format!("runtime run failed: {status}: {message}")
        };
        if self.runtime_container {
            self.runtime_delete();
        }
        self.record_start_failure(message);
    }

    /// A start that failed counts as an exit with [`START_FAILED_CODE`],
    /// which the restart policy then sees.
    fn record_start_failure(&mut self, message: String) {
        self.diag.note(format_args!("start failed: {message}"));
        self.status.error = Some(message);
        self.status.exited_unix_ms = Some(unix_ms());
        self.status.exit_code = Some(START_FAILED_CODE);
        self.status.signal = None;
        self.after_exit(ExitKind::Code(START_FAILED_CODE), 0);
    }

    /// Whether the restart policy starts the container again after `exit`.
    fn restarts_after(&self, exit: ExitKind) -> bool {
        let policy = &self.config.restart;
        if self.killed_unhealthy {
            restart::should_restart_unhealthy(
                policy.policy,
                policy.max_retries,
                self.status.restarts,
                self.status.stopped,
            )
        } else {
            restart::should_restart(
                policy.policy,
                policy.max_retries,
                self.status.restarts,
                exit,
                self.status.stopped,
            )
        }
    }

    /// Decides between a (delayed) restart and the end, and records it.
    fn after_exit(&mut self, exit: ExitKind, ran_for_ms: u64) {
        let again = self.restarts_after(exit);
        self.killed_unhealthy = false;
        let policy = &self.config.restart;
        if again {
            let (delay, streak) = restart::plan_backoff(policy, self.streak, ran_for_ms);
            self.streak = streak;
            self.next_start = Some(Instant::now() + Duration::from_millis(delay));
            self.status.phase = Phase::Restarting;
            self.status.next_start_unix_ms = Some(unix_ms() + delay);
            self.diag.note(format_args!("restart in {delay} ms"));
        } else {
            self.exit_for_good();
        }
        self.save();
    }

    /// SIGTERM/SIGINT: stop signal now, SIGKILL after the grace period, no restart.
    fn stop(&mut self) {
        if self.status.stopped {
            return;
        }
        self.diag.note("stop requested");
        self.status.stopped = true;
        self.next_start = None;
        self.next_check = None;
        self.cancel_check();
        if self.run.is_some() {
            self.runtime_kill(self.config.stop_signal);
            self.kill_at = Some(Instant::now() + Duration::from_millis(self.config.stop_grace_ms));
        } else {
            self.exit_for_good();
        }
        self.save();
    }

    /// No restart follows: the logs are complete and the status final.
    fn exit_for_good(&mut self) {
        self.finish_logs();
        self.status.phase = Phase::Exited;
        self.status.next_start_unix_ms = None;
        self.done = true;
    }

    /// The end: no more output, final status, no runtime container left.
    fn finish(&mut self) {
        self.cancel_check();
        self.finish_logs();
        if self.status.phase != Phase::Exited || self.status.pid.is_some() {
            self.status.phase = Phase::Exited;
            self.status.pid = None;
            self.save();
        }
        if self.runtime_container {
            self.exec_runtime_delete();
        }
        self.diag.note("shim exiting");
    }

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
        let mut command = self.runtime();
        command
            .arg("delete")
            .arg("--force")
            .arg(&self.config.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Ok(log) = self.diag.0.try_clone() {
            // The runtime's complaints, if any, go to shim.log.
            command.stderr(log);
        }
        let error = command.exec();
        self.diag.note(format_args!("exec runtime delete: {error}"));
        self.runtime_delete();
    }

    // ---- logs -------------------------------------------------------------

    /// Reads once from output `index` (or until it would block, with
    /// `drain`); drops it at end of file.
    fn read_output(&mut self, index: usize, drain: bool) {
        let timestamp = now_timestamp();
        let mut eof = false;
        loop {
            let output = &mut self.outputs[index];
            match nix::unistd::read(&output.fd, &mut self.buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    let (log, stream, diag) = (&mut self.log, output.stream, &self.diag);
                    output.lines.push(&self.buf[..n], |text, partial| {
                        if let Err(e) = log.record(&timestamp, stream, partial, text) {
                            diag.note(format_args!("write log: {e}"));
                        }
                    });
                    if !drain {
                        break;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(error) => {
                    self.diag.note(format_args!("read log pipe: {error}"));
                    eof = true;
                    break;
                }
            }
        }
        if eof {
            let mut output = self.outputs.remove(index);
            let (log, stream) = (&mut self.log, output.stream);
            output.lines.finish(|text, partial| {
                let _ = log.record(&timestamp, stream, partial, text);
            });
        }
        if let Err(e) = self.log.flush() {
            self.diag.note(format_args!("write log: {e}"));
        }
    }

    /// Everything the pipes hold, each stream's unterminated last line
    /// included, written and flushed: the log is complete.
    fn finish_logs(&mut self) {
        self.drain_outputs();
        for mut output in std::mem::take(&mut self.outputs) {
            let (log, stream) = (&mut self.log, output.stream);
            let timestamp = now_timestamp();
            output.lines.finish(|text, partial| {
                let _ = log.record(&timestamp, stream, partial, text);
            });
        }
        if let Err(e) = self.log.flush() {
            self.diag.note(format_args!("write log: {e}"));
        }
    }

    /// Reads everything the pipes hold right now.
    fn drain_outputs(&mut self) {
        for index in (0..self.outputs.len()).rev() {
            self.read_output(index, true);
        }
    }

    // ---- health checks ----------------------------------------------------

    fn spawn_check(&mut self) {
        let Some(config) = self.config.healthcheck.clone() else {
            return;
        };
        let spawned = (|| -> io::Result<(Pid, OwnedFd)> {
            let (read, write) = log_pipe()?;
            let write2 = write.try_clone()?;
            let pid_file = self.paths.dir.join("health.pid");
            let _ = fs::remove_file(&pid_file);
            let child = self
                .runtime()
                .arg("exec")
                .arg("--pid-file")
                .arg(&pid_file)
                .arg(&self.config.id)
                .args(&config.exec)
                .stdin(Stdio::null())
                .stdout(Stdio::from(write))
                .stderr(Stdio::from(write2))
                .spawn()?;
            Ok((Pid::from_raw(child.id() as i32), read))
        })();
        match spawned {
            Ok((pid, out)) => {
                self.check = Some(Check {
                    pid,
                    deadline: Some(Instant::now() + Duration::from_millis(config.timeout_ms)),
                    out: Some(out),
                    output: Vec::new(),
                    timed_out: false,
                });
            }
            Err(e) => self.record_check(CheckResult {
                exit_code: None,
                timed_out: false,
                output: format!("run health check: {e}"),
            }),
        }
    }

    fn read_check_output(&mut self) {
        let Some(check) = self.check.as_mut() else {
            return;
        };
        let Some(fd) = check.out.as_ref() else { return };
        loop {
            match nix::unistd::read(fd, &mut self.buf) {
                Ok(0) => {
                    check.out = None;
                    return;
                }
                Ok(n) => {
                    let room = health::MAX_OUTPUT.saturating_sub(check.output.len());
                    check.output.extend_from_slice(&self.buf[..n.min(room)]);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    check.out = None;
                    return;
                }
            }
        }
    }

    fn on_check_exit(&mut self, exit: ExitKind) {
        self.read_check_output();
        let Some(check) = self.check.take() else {
            return;
        };
        let exit_code = match exit {
            ExitKind::Code(code) if !check.timed_out => Some(code),
            _ => None,
        };
        let output = if check.timed_out {
            "health check timed out".to_string()
        } else {
            health::output_text(&check.output)
        };
        self.record_check(CheckResult {
            exit_code,
            timed_out: check.timed_out,
            output,
        });
    }

    fn record_check(&mut self, result: CheckResult) {
        let (Some(config), Some(run)) = (self.config.healthcheck.clone(), self.run.as_ref()) else {
            return;
        };
        let before = self.status.health.clone().unwrap_or_else(health::starting);
        let after = health::record(&before, &config, &result, run.started_unix_ms, unix_ms());
        if health::became_unhealthy(&before, &after) {
            self.diag.note(format_args!(
                "unhealthy after {} failures: {}",
                after.failing_streak,
                after.last_output.trim()
            ));
            if config.restart_on_unhealthy && !self.status.stopped {
                self.killed_unhealthy = true;
                self.runtime_kill(Signal::SIGKILL as i32);
            }
        }
        self.status.health = Some(after);
        if !self.killed_unhealthy && !self.status.stopped {
            self.next_check = Some(Instant::now() + Duration::from_millis(config.interval_ms));
        }
        self.save();
    }

    /// The check overran its timeout: kill it; its exit then counts as a failure.
    fn time_out_check(&mut self) {
        if let Some(check) = self.check.as_mut() {
            check.timed_out = true;
            check.deadline = None;
            let pid = check.pid;
            self.kill_check_processes(pid);
        }
    }

    /// Forgets a running check (the container is going away).
    fn cancel_check(&mut self) {
        if let Some(check) = self.check.take() {
            self.kill_check_processes(check.pid);
        }
    }

    fn kill_check_processes(&self, runtime_pid: Pid) {
        let _ = kill(runtime_pid, Signal::SIGKILL);
        let exec_pid = fs::read_to_string(self.paths.dir.join("health.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|&p| p > 0);
        if let Some(pid) = exec_pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    // ---- the runtime ------------------------------------------------------

    fn runtime(&self) -> Command {
        let mut command = Command::new(&self.config.runtime);
        command.arg("--root").arg(&self.config.runtime_root);
        command
    }

    fn runtime_kill(&self, signal: i32) {
        let out = self
            .runtime()
            .arg("kill")
            .arg(&self.config.id)
            .arg(signal.to_string())
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => self
                .diag
                .note(runtime_error("kill", out.status, &out.stderr)),
            Err(e) => self.diag.note(format_args!("run runtime kill: {e}")),
        }
    }

    fn runtime_delete(&mut self) {
        let delete = self.start_runtime_delete();
        self.wait_runtime_delete(delete);
    }

    /// Starts `runtime delete --force` without waiting for it.
    fn start_runtime_delete(&mut self) -> Option<Child> {
        self.runtime_container = false;
        let spawned = self
            .runtime()
            .arg("delete")
            .arg("--force")
            .arg(&self.config.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        spawned
            .map_err(|e| self.diag.note(format_args!("run runtime delete: {e}")))
            .ok()
    }

    /// Waits for a delete [`Self::start_runtime_delete`] started. Nothing
    /// else may reap children meanwhile.
    fn wait_runtime_delete(&self, delete: Option<Child>) {
        match delete.map(Child::wait_with_output) {
            None => {}
            Some(Ok(out)) if out.status.success() => {}
            Some(Ok(out)) => self
                .diag
                .note(runtime_error("delete", out.status, &out.stderr)),
            Some(Err(e)) => self.diag.note(format_args!("wait for runtime delete: {e}")),
        }
    }

    fn save(&self) {
        if let Err(e) = self.paths.write_status(&self.status) {
            self.diag.note(format_args!("write status: {e}"));
        }
    }
}

/// A pipe for a child's output: both ends close-on-exec (the child gets a
/// dup), the read end non-blocking so the shim can drain it.
fn log_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((read, write))
}

/// A pid file's positive pid.
fn read_pid(path: &Path) -> Option<Pid> {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|&p| p > 0)
        .map(Pid::from_raw)
}

/// Whatever a non-blocking pipe holds now, up to 64 KiB.
fn drain_to_vec(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < 64 * 1024 {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    out
}

fn runtime_error(verb: &str, status: std::process::ExitStatus, stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        format!("runtime {verb} failed: {status}")
    } else {
        format!("runtime {verb} failed: {status}: {text}")
    }
}

/// The container directory when the command line is exactly `PROGRAM shim
/// --dir DIR`, the form [`crate::runtime::container::Runtime`] starts shims
/// with. Both `berth` and `berth-shim` check it before any other start-up
/// work, so a shim touches (and keeps resident) as little as possible.
pub fn dir_from_args(args: &[OsString]) -> Option<&Path> {
    match args {
        [_, verb, flag, dir] if verb == "shim" && flag == "--dir" => Some(Path::new(dir)),
        _ => None,
    }
}

/// The shim's entry from `main`: its own error reporting, no CLI set-up.
pub fn run_from_main(dir: &Path) -> ExitCode {
    match main(dir) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("berth shim: {error}");
            ExitCode::FAILURE
        }
    }
}
