//! The per-container shim: `berth-shim shim --dir DIR` (or `berth shim --dir DIR`).
//!
//! Lifecycle:
//!
//! 1. [`main`] reads `DIR/shim.json`, forks and returns in the parent once
//!    the child reports it is ready (it has written `status.json` and
//!    `shim.pid`), so the spawner learns the shim's pid and nothing more.
//! 2. The child detaches (`setsid`, child subreaper, cwd `DIR`, stdio on
//!    `/dev/null`, diagnostics to `DIR/shim.log`), blocks SIGCHLD, SIGTERM,
//!    SIGINT and SIGHUP and reads them from a signalfd. It keeps every
//!    descriptor it inherited, the `shim.lock` its spawner handed it
//!    included: holding that until it exits (its runtime calls too) is
//!    what tells berth a shim still runs for the container.
//! 3. It runs `runtime run --detach` (stdout and stderr on two pipes it
//!    reads; with log driver `none` on /dev/null, with `binary` on the
//!    pipes of a program it starts first: [`log_program`]), then one
//!    single-threaded poll loop ([`event_loop`]): the signalfd, the log
//!    pipes and the health check's output, with the next timer as the
//!    poll timeout (restart backoff, health interval and
//!    timeout, stop grace). The container's init is reparented to the shim
//!    (subreaper) when the runtime process exits, even if the init has
//!    already exited by then; the shim reaps it with `waitpid`.
//! 4. What to do about each thing it observes is decided by a pure state
//!    machine ([`lifecycle`]), which answers with effects for the loop to
//!    perform. On every change it rewrites `status.json` atomically. When
//!    the init exits it asks [`restart`] whether and when to start again;
//!    before a restart it deletes the runtime's container, recording the
//!    answer while that delete runs. SIGTERM or SIGINT stops the container
//!    (stop signal, then SIGKILL after the grace period) with no restart.
//! 5. When the container is gone for good it completes the log, records the
//!    final status (`Exited`) and execs `runtime delete`: its last act. So
//!    a live shim pid with an `Exited` status is finishing that delete;
//!    `engine::remove` lets it.
//!
//! A foreground `berth run --rm` keeps the runtime attached instead
//! ([`attached_runtime`]): the runtime process is what the run
//! waits for, the init's pid comes from the pid file the runtime writes,
//! and the runtime removes the container itself.
//!
//! [`restart`]: crate::runtime::restart
//! [`attached_runtime`]: crate::runtime::container_dir::ShimConfig::attached_runtime

mod check;
mod event_loop;
mod lifecycle;
mod log_program;
mod output;
mod runtime_calls;

use std::ffi::OsString;
use std::fmt::Display;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::fcntl::OFlag;
use nix::unistd::ForkResult;

use self::event_loop::Shim;
pub use self::lifecycle::START_FAILED_CODE;
use crate::runtime::container_dir::ContainerDir;
use crate::runtime::logs::now_timestamp;
use crate::state::nofollow::open_append_nofollow;

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
    let diag_path = paths.shim_log();
    let diag = open_append_nofollow(&diag_path, 0o600).map_err(|source| ShimError::Open {
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
            let diag_path = paths.shim_log();
            match detach(&paths).and_then(|()| Shim::new(paths, config, diag)) {
                Ok(mut shim) => {
                    let _ = ready.write_all(b"ok");
                    drop(ready);
                    shim.run();
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    let _ = write!(ready, "{error}");
                    Diag::note_to(&diag_path, &error);
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
        if let Ok(file) = open_append_nofollow(path, 0o600) {
            Diag(file).note(message);
        }
    }
}

/// The detached child's first steps: a session of its own, subreaper for
/// the container's orphans, `DIR` as cwd, stdio on `/dev/null`.
fn detach(paths: &ContainerDir) -> Result<(), ShimError> {
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
    Ok(())
}

/// The container directory when the command line is exactly `PROGRAM shim
/// --dir DIR`, the form the engine starts shims with. Both `berth` and `berth-shim` check it before any other start-up
/// work, so a shim touches (and keeps resident) as little as possible.
pub fn dir_from_args(args: &[OsString]) -> Option<&Path> {
    match args {
        [_, verb, flag, dir] if verb == "shim" && flag == "--dir" => Some(Path::new(dir)),
        _ => None,
    }
}
