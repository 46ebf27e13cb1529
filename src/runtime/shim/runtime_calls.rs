//! The shim's calls to the OCI runtime binary (runc or crun): `run`,
//! `kill`, `delete`, `exec`. The command lines come from the one runtime
//! driver ([`Runc`]); the shim spawns, waits on and reaps the processes
//! itself. Each call returns what happened; the shim notes failures in its
//! diagnostics and feeds the rest to its lifecycle.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::Pid;

use crate::runtime::container_dir::{ContainerDir, ShimConfig};
use crate::runtime::oci::OciRuntime;
use crate::runtime::runc::{ExecOptions, RunOptions, Runc};

/// The runtime driver and the container's id.
pub(super) struct RuntimeCalls {
    runc: Runc,
    id: String,
}

/// Where a run's stdout and stderr go (the log driver's choice).
pub(super) struct RunIo {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The read ends of stdout's and stderr's pipes when the shim reads
    /// them (driver `file`): a failed detached run's errors are there too.
    pub readers: Option<(OwnedFd, OwnedFd)>,
}

/// A `runtime run` under way or done: the process whose exit ends the run
/// and the container's output pipes, if the shim reads them.
pub(super) struct Launched {
    /// Detached: the container's init. Attached: the runtime itself, the
    /// init's pid following in the pid file.
    pub pid: Pid,
    pub attached: bool,
    pub readers: Option<(OwnedFd, OwnedFd)>,
}

/// A `runtime run` that did not start the container.
pub(super) struct LaunchFailed {
    pub message: String,
    /// The runtime may hold a container of this id all the same.
    pub container_left: bool,
}

impl LaunchFailed {
    fn before_the_runtime(message: String) -> LaunchFailed {
        LaunchFailed {
            message,
            container_left: false,
        }
    }
}

impl RuntimeCalls {
    pub fn new(config: &ShimConfig) -> RuntimeCalls {
        RuntimeCalls {
            runc: Runc::new(&config.runtime, &config.runtime_root),
            id: config.id.clone(),
        }
    }

    /// Whether the runtime holds a container of this id (its state dir).
    pub fn holds_container(&self) -> bool {
        self.runc.may_have(&self.id)
    }

    /// `runtime run`: one runtime process creates and starts the container
    /// (where `create` then `start` would be two, each paying the runtime's
    /// start-up). Detached, it returns once the container runs; attached
    /// ([`ShimConfig::attached_runtime`]), it stays until the container is
    /// gone and removed.
    pub fn run(
        &self,
        config: &ShimConfig,
        paths: &ContainerDir,
        io: RunIo,
    ) -> Result<Launched, LaunchFailed> {
        let attached = config.attached_runtime;
        let init_pid = paths.init_pid();
        let _ = fs::remove_file(&init_pid);
        let runtime_log = paths.runtime_log();
        let _ = fs::remove_file(&runtime_log);
        let RunIo {
            stdout: out_write,
            stderr: err_write,
            readers,
        } = io;
        // Without pipes the shim reads, the runtime's errors would go where
        // the container's output goes: they go to a file of their own.
        let own_log = attached || readers.is_none();
        let stdin = container_stdin(config, paths).map_err(LaunchFailed::before_the_runtime)?;
        // Attached, its errors would mix with the container's on the pipes
        // it relays: they also go to a file of their own. With a terminal,
        // its master goes to `berth run -t`; the runtime's own stdio then
        // carries only its errors.
        let options = RunOptions {
            bundle: &config.bundle,
            pid_file: &init_pid,
            detach: !attached,
            console_socket: config.console_socket.as_deref(),
            log: own_log.then_some(runtime_log.as_path()),
        };
        let mut command = self.runc.run_command(&self.id, &options);
        command
            .stdin(stdin)
            .stdout(Stdio::from(out_write))
            .stderr(Stdio::from(err_write));
        let runtime = self.runc.binary.to_string_lossy().into_owned();
        let not_run =
            |e: io::Error| LaunchFailed::before_the_runtime(format!("run {runtime} run: {e}"));
        let pid = if attached {
            // The run ends when the runtime exits; the init's pid follows.
            let child = command.spawn();
            drop(command); // our copies of the pipes' write ends
            Pid::from_raw(child.map_err(not_run)?.id() as i32)
        } else {
            let status = command.status();
            // The container keeps its own copies of the pipes' write ends:
            // what it writes waits in the pipes until the loop reads them.
            drop(command);
            let status = status.map_err(not_run)?;
            if !status.success() {
                let message = match &readers {
                    Some((out_read, err_read)) => {
                        let mut text = drain_to_vec(err_read);
                        text.extend(drain_to_vec(out_read));
                        runtime_error("run", status, &text)
                    }
                    None => attached_run_failure(paths, &status.to_string()),
                };
                return Err(LaunchFailed {
                    message,
                    container_left: true,
                });
            }
            // `run --detach` returns once the container's process runs.
            read_pid(&init_pid).ok_or_else(|| LaunchFailed {
                message: format!("no pid in {} after run", init_pid.display()),
                container_left: true,
            })?
        };
        Ok(Launched {
            pid,
            attached,
            readers,
        })
    }

    /// `runtime kill ID SIGNAL`; the runtime's complaint if it failed.
    pub fn kill(&self, signal: i32) -> Result<(), String> {
        let out = self
            .runc
            .kill_command(&self.id, signal)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(runtime_error("kill", out.status, &out.stderr)),
            Err(e) => Err(format!("run runtime kill: {e}")),
        }
    }

    /// `runtime delete --force ID`, waited for.
    pub fn delete(&self) -> Result<(), String> {
        let delete = self.begin_delete()?;
        await_delete(delete)
    }

    /// Starts `runtime delete --force ID` without waiting for it.
    pub fn begin_delete(&self) -> Result<Child, String> {
        self.delete_command()
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("run runtime delete: {e}"))
    }

    /// Becomes `runtime delete --force ID`, its complaints on `stderr`.
    /// Returns only if the exec failed.
    pub fn exec_delete(&self, stderr: Option<File>) -> io::Error {
        let mut command = self.delete_command();
        if let Some(stderr) = stderr {
            command.stderr(stderr);
        }
        command.exec()
    }

    fn delete_command(&self) -> Command {
        let mut command = self.runc.delete_command(&self.id);
        command.stdin(Stdio::null()).stdout(Stdio::null());
        command
    }

    /// `runtime exec --pid-file PID_FILE ID EXEC...`, stdio for the caller to set.
    pub fn exec_command(&self, exec: &[String], pid_file: &Path) -> Command {
        let options = ExecOptions {
            pid_file: Some(pid_file),
            ..ExecOptions::default()
        };
        self.runc.exec_command(&self.id, &options, exec)
    }
}

/// Waits for a delete [`RuntimeCalls::begin_delete`] started. It reaps only
/// its own pid, so the shim's children stay for the loop to reap.
pub(super) fn await_delete(delete: Child) -> Result<(), String> {
    match delete.wait_with_output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(runtime_error("delete", out.status, &out.stderr)),
        Err(e) => Err(format!("wait for runtime delete: {e}")),
    }
}

/// Why an attached runtime exited before it started the container: the
/// last error in its JSON log, after its exit status.
pub(super) fn attached_run_failure(paths: &ContainerDir, status: &str) -> String {
    let log = fs::read_to_string(paths.runtime_log()).unwrap_or_default();
    let message = log
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|record| record["level"] == "error")
        .and_then(|record| record["msg"].as_str().map(str::to_string))
        .unwrap_or_default();
    if message.is_empty() {
        format!("runtime run failed: {status}")
    } else {
        format!("runtime run failed: {status}: {message}")
    }
}

/// The container's stdin: /dev/null, or the read end of the `stdin` fifo.
fn container_stdin(config: &ShimConfig, paths: &ContainerDir) -> Result<Stdio, String> {
    if !config.stdin {
        return Ok(Stdio::null());
    }
    let fifo = paths.stdin_fifo();
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
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&fifo)
        .map_err(|e| format!("open {}: {e}", fifo.display()))?;
    let flags =
        fcntl(&reader, FcntlArg::F_GETFL).map_err(|e| format!("fcntl {}: {e}", fifo.display()))?;
    let blocking = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    fcntl(&reader, FcntlArg::F_SETFL(blocking))
        .map_err(|e| format!("fcntl {}: {e}", fifo.display()))?;
    Ok(Stdio::from(reader))
}

/// A pipe for a child's output: both ends close-on-exec (the child gets a
/// dup), the read end non-blocking so the shim can drain it.
pub(super) fn output_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((read, write))
}

/// A pid file's positive pid.
pub(super) fn read_pid(path: &Path) -> Option<Pid> {
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

fn runtime_error(verb: &str, status: ExitStatus, stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        format!("runtime {verb} failed: {status}")
    } else {
        format!("runtime {verb} failed: {status}: {text}")
    }
}
