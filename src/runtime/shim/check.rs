//! The health check process. For `exec`: `runtime exec` of the configured
//! command in the container, its output collected from a pipe. For `http`
//! and `tcp`: a child forked from the (single-threaded) shim that enters
//! the container's network namespace, runs the probe
//! ([`crate::runtime::probe`]), writes its one-line outcome to the same
//! kind of pipe and exits 0 (passed) or 1; the shim itself never changes
//! namespace. When a check runs and when it has overrun its timeout is the
//! lifecycle's to say; this runs it, kills it, and turns its end into a
//! [`CheckResult`].

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{ForkResult, Pid};

use super::runtime_calls::{output_pipe, read_pid, RuntimeCalls};
use crate::runtime::health::{self, CheckResult};
use crate::runtime::probe::{self, NetworkProbe, Outcome};
use crate::runtime::process::ProcessId;
use crate::runtime::restart::ExitKind;

/// A health check in flight.
pub(super) struct HealthCheck {
    /// The `runtime exec` process, or the probe's child.
    pid: Pid,
    /// Where `runtime exec` writes the pid of the command in the container
    /// (none for a probe, which starts nothing there).
    pid_file: Option<PathBuf>,
    /// Its stdout and stderr, until end of file.
    out: Option<OwnedFd>,
    output: Vec<u8>,
    timed_out: bool,
    /// The result's output when it overran its timeout.
    timeout_message: String,
}

impl HealthCheck {
    /// Starts `exec` in the container.
    pub fn spawn(runtime: &RuntimeCalls, exec: &[String], pid_file: PathBuf) -> io::Result<Self> {
        let (read, write) = output_pipe()?;
        let write2 = write.try_clone()?;
        let _ = fs::remove_file(&pid_file);
        let child = runtime
            .exec_command(exec, &pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::from(write2))
            .spawn()?;
        Ok(HealthCheck {
            pid: Pid::from_raw(child.id() as i32),
            pid_file: Some(pid_file),
            out: Some(read),
            output: Vec::new(),
            timed_out: false,
            timeout_message: "health check timed out".into(),
        })
    }

    /// Forks the child that runs `probe` from inside the network namespace
    /// of the container whose init is `init`, within `timeout`.
    pub fn spawn_probe(
        probe: NetworkProbe<'_>,
        init: ProcessId,
        timeout: Duration,
    ) -> Result<Self, String> {
        let (read, write) = output_pipe().map_err(|e| format!("pipe: {e}"))?;
        match super::fork_process().map_err(|e| e.to_string())? {
            ForkResult::Child => {
                drop(read);
                probe_child(probe, init, timeout, write)
            }
            ForkResult::Parent { child } => Ok(HealthCheck {
                pid: child,
                pid_file: None,
                out: Some(read),
                output: Vec::new(),
                timed_out: false,
                timeout_message: format!(
                    "{} probe timed out after {}",
                    probe.kind(),
                    probe::human(timeout)
                ),
            }),
        }
    }

    /// The result of a check that could not be started.
    pub fn failed_to_spawn(error: impl std::fmt::Display) -> CheckResult {
        CheckResult {
            exit_code: None,
            timed_out: false,
            output: format!("run health check: {error}"),
        }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Its output pipe, while open.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.out.as_ref().map(|fd| fd.as_fd())
    }

    /// Keeps what the pipe holds, up to [`health::MAX_OUTPUT`] bytes (the
    /// rest is read and dropped, so the command never blocks on it).
    pub fn read_output(&mut self) {
        let Some(fd) = self.out.as_ref() else { return };
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = health::MAX_OUTPUT.saturating_sub(self.output.len());
                    self.output.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => break,
            }
        }
        // End of file, or a pipe that can no longer be read.
        self.out = None;
    }

    /// It overran its timeout: kill it; its exit then counts as a failure.
    pub fn time_out(&mut self) {
        self.timed_out = true;
        self.kill_processes();
    }

    /// Kills it and forgets it (the container is going away).
    pub fn cancel(self) {
        self.kill_processes();
    }

    /// What the check came to, now that its `runtime exec` exited with `exit`.
    pub fn finish(mut self, exit: ExitKind) -> CheckResult {
        self.read_output();
        let exit_code = match exit {
            ExitKind::Code(code) if !self.timed_out => Some(code),
            _ => None,
        };
        let output = if self.timed_out {
            std::mem::take(&mut self.timeout_message)
        } else {
            health::output_text(&self.output)
        };
        CheckResult {
            exit_code,
            timed_out: self.timed_out,
            output,
        }
    }

    /// The `runtime exec` process and the command it started in the
    /// container, which killing the runtime alone would leave running.
    fn kill_processes(&self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        if let Some(pid) = self.pid_file.as_deref().and_then(read_pid) {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

/// The probe's child: enters the container's network namespace, probes,
/// writes the outcome's line to `out` and exits, 0 when it passed. Never
/// returns into the shim's loop, not even by a panic.
fn probe_child(probe: NetworkProbe<'_>, init: ProcessId, timeout: Duration, out: OwnedFd) -> ! {
    let outcome = std::panic::catch_unwind(|| probe_from_inside(probe, init, timeout))
        .unwrap_or_else(|_| Outcome::failed("the probe panicked"));
    let _ = fs::File::from(out).write_all(outcome.message.as_bytes());
    exit_now(if outcome.passed { 0 } else { 1 })
}

/// `_exit(2)`: nothing of the shim's (atexit handlers, buffers) runs a
/// second time in its fork.
#[allow(unsafe_code)] // reason: nix 0.30 does not wrap _exit
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes a plain int, touches no memory of ours and does
    // not return.
    unsafe { libc::_exit(code) }
}

fn probe_from_inside(probe: NetworkProbe<'_>, init: ProcessId, timeout: Duration) -> Outcome {
    let namespace = match probe::enter_network_of(init) {
        Ok(namespace) => namespace,
        Err(e) => return Outcome::failed(e.to_string()),
    };
    let address = probe::probe_address(namespace, &probe::interface_addresses());
    probe::run(probe, address, timeout)
}
