//! The health check process: `runtime exec` of the configured command in
//! the container, its output collected from a pipe. When it runs and when
//! it has overrun its timeout is the lifecycle's to say; this runs it,
//! kills it, and turns its end into a [`CheckResult`].

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::runtime_calls::{output_pipe, read_pid, RuntimeCalls};
use crate::runtime::health::{self, CheckResult};
use crate::runtime::restart::ExitKind;

/// A health check command in flight.
pub(super) struct HealthCheck {
    /// The `runtime exec` process.
    pid: Pid,
    /// Where `runtime exec` writes the pid of the command in the container.
    pid_file: PathBuf,
    /// Its stdout and stderr, until end of file.
    out: Option<OwnedFd>,
    output: Vec<u8>,
    timed_out: bool,
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
            pid_file,
            out: Some(read),
            output: Vec::new(),
            timed_out: false,
        })
    }

    /// The result of a check that could not be started.
    pub fn failed_to_spawn(error: io::Error) -> CheckResult {
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
            "health check timed out".to_string()
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
        if let Some(pid) = read_pid(&self.pid_file) {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}
