//! The `binary` log driver: a program the shim starts with each start of
//! the container, which reads the container's stdout on its fd 3 and its
//! stderr on its fd 4 (as containerd's `binary://` log URIs do).
//!
//! Lifecycle, per start of the container:
//!
//! 1. [`LogProgram::start`] makes two pipes, starts the program with their
//!    read ends on fds 3 and 4 (stdin and stdout on /dev/null, stderr to
//!    the shim's `shim.log`, cwd `/`, an environment of `PATH`,
//!    `CONTAINER_ID` and `BERTH_CONTAINER_NAME` only) and returns the write
//!    ends for the runtime to hand the container. The shim keeps no copy of
//!    either end, so when the container (and a detached runtime) are gone
//!    the program reads end of file.
//! 2. When the container starts again, or has exited for good, the
//!    previous program is stopped ([`LogProgram::stop`]): it is given
//!    [`EOF_GRACE`] to finish what it read and exit on its own, then
//!    SIGTERM, then SIGKILL after [`TERM_GRACE`]. A well-behaved program has
//!    exited long before (it saw end of file); an ill-behaved one holds the
//!    shim's loop up to both graces.
//!
//! The loop's `waitpid(-1)` may reap the program first: it reports the pid
//! through [`LogProgram::reaped`], so no signal goes to a recycled pid.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::Diag;

/// How long a program that read end of file may take to exit on its own.
pub(super) const EOF_GRACE: Duration = Duration::from_secs(1);

/// How long it may take after SIGTERM before SIGKILL.
pub(super) const TERM_GRACE: Duration = Duration::from_secs(2);

/// How often the stop looks whether the program has exited.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// The program's `PATH`: the environment is not inherited from the shim.
const PROGRAM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The fds the program reads the container's stdout and stderr on.
const STDOUT_FD: i32 = 3;
const STDERR_FD: i32 = 4;

/// The driver's program for one container, and its current process.
pub(super) struct LogProgram {
    path: PathBuf,
    args: Vec<String>,
    container: String,
    running: Option<Pid>,
}

/// The write ends the runtime hands the container as stdout and stderr.
pub(super) struct ProgramInputs {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl LogProgram {
    pub fn new(path: &Path, args: &[String], container: &str) -> LogProgram {
        LogProgram {
            path: path.to_path_buf(),
            args: args.to_vec(),
            container: container.to_string(),
            running: None,
        }
    }

    /// Starts the program for a new run of the container (stopping the
    /// previous run's first); returns the pipes' write ends.
    pub fn start(&mut self, diag: &Diag) -> Result<ProgramInputs, String> {
        self.stop(diag);
        let (out_read, out_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let (err_read, err_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let mut command = Command::new(&self.path);
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", PROGRAM_PATH)
            .env("CONTAINER_ID", &self.container)
            .env("BERTH_CONTAINER_NAME", &self.container)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(program_stderr(diag));
        let child = read_ends_on_3_and_4(&mut command, out_read, err_read)
            .and_then(|()| command.spawn())
            .map_err(|e| format!("start log program {}: {e}", self.path.display()))?;
        // Dropping `command` closes the shim's copies of the read ends.
        drop(command);
        let pid = Pid::from_raw(child.id() as i32);
        diag.note(format_args!(
            "log program {} started as pid {pid}",
            self.path.display()
        ));
        self.running = Some(pid);
        Ok(ProgramInputs {
            stdout: out_write,
            stderr: err_write,
        })
    }

    /// The loop reaped `pid`: whether it was this program (now gone).
    pub fn reaped(&mut self, pid: Pid) -> bool {
        let ours = self.running == Some(pid);
        if ours {
            self.running = None;
        }
        ours
    }

    /// Stops the current program, if one runs: end of file, then SIGTERM,
    /// then SIGKILL (see the module doc), and reaps it.
    pub fn stop(&mut self, diag: &Diag) {
        let Some(pid) = self.running.take() else {
            return;
        };
        if exited_within(pid, EOF_GRACE) {
            return;
        }
        diag.note(format_args!(
            "log program pid {pid} still runs after end of file: SIGTERM"
        ));
        let _ = kill(pid, Signal::SIGTERM);
        if exited_within(pid, TERM_GRACE) {
            return;
        }
        diag.note(format_args!(
            "log program pid {pid} still runs after SIGTERM: SIGKILL"
        ));
        let _ = kill(pid, Signal::SIGKILL);
        loop {
            match waitpid(pid, None) {
                Err(Errno::EINTR) => continue,
                _ => return,
            }
        }
    }
}

/// Whether child `pid` exits (and is reaped) within `within`.
fn exited_within(pid: Pid, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Err(Errno::EINTR) => continue,
            // Exited, killed, or no longer our child to wait for.
            _ => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(EXIT_POLL);
    }
}

/// A blocking pipe, both ends close-on-exec (the program and the runtime
/// get dups of the end each needs).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// The program's stderr: the shim's diagnostics file, so its complaints
/// are found beside the shim's; /dev/null if that cannot be shared.
fn program_stderr(diag: &Diag) -> Stdio {
    match diag.0.try_clone() {
        Ok(file) => Stdio::from(file),
        Err(_) => OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_or_else(|_| Stdio::null(), Stdio::from),
    }
}

/// Arranges for the child of `command` to find `stdout` on fd 3 and
/// `stderr` on fd 4.
#[allow(unsafe_code)]
fn read_ends_on_3_and_4(command: &mut Command, stdout: OwnedFd, stderr: OwnedFd) -> io::Result<()> {
    // Moved above fd 4 first, so neither dup2 in the child overwrites the
    // other's source; close-on-exec, so only the dups reach the program.
    let stdout = dup_above_4(&stdout)?;
    let stderr = dup_above_4(&stderr)?;
    let (stdout_fd, stderr_fd) = (stdout.as_raw_fd(), stderr.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and calls
    // only dup2 (async-signal-safe, allocation-free); the two fds it reads
    // stay open in the parent until `command` is dropped after the spawn,
    // because the closure owns them.
    unsafe {
        command.pre_exec(move || {
            let _keep = (&stdout, &stderr);
            for (from, to) in [(stdout_fd, STDOUT_FD), (stderr_fd, STDERR_FD)] {
                // dup2 clears close-on-exec on the new fd.
                if libc::dup2(from, to) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// A close-on-exec duplicate of `fd` numbered 10 or above.
#[allow(unsafe_code)]
fn dup_above_4(fd: &OwnedFd) -> io::Result<File> {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(10))?;
    // SAFETY: fcntl just returned this new descriptor, owned by nobody else.
    Ok(unsafe { File::from_raw_fd(raw) })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn diag() -> (Diag, tempfile::NamedTempFile) {
        let file = tempfile::NamedTempFile::new().unwrap();
        (Diag(file.reopen().unwrap()), file)
    }

    #[test]
    fn a_program_deaf_to_end_of_file_and_sigterm_is_killed() {
        let (diag, mut notes) = diag();
        // It ignores SIGTERM (kept across the exec) and never reads fd 3.
        let args = [
            "-c".to_string(),
            "trap '' TERM; exec sleep 1000".to_string(),
        ];
        let mut program = LogProgram::new(Path::new("/bin/sh"), &args, "deaf");
        let inputs = program.start(&diag).unwrap();
        let pid = program.running.unwrap();
        drop(inputs);
        program.stop(&diag);
        assert_eq!(kill(pid, None), Err(Errno::ESRCH), "killed and reaped");
        assert!(program.running.is_none());
        let mut text = String::new();
        notes.read_to_string(&mut text).unwrap();
        assert!(
            text.contains("still runs after end of file: SIGTERM"),
            "{text}"
        );
        assert!(text.contains("still runs after SIGTERM: SIGKILL"), "{text}");
    }

    #[test]
    fn a_program_reaped_by_the_loop_is_not_signalled() {
        let (diag, _notes) = diag();
        let args = ["-c".to_string(), "exit 0".to_string()];
        let mut program = LogProgram::new(Path::new("/bin/sh"), &args, "quick");
        drop(program.start(&diag).unwrap());
        let pid = program.running.unwrap();
        assert!(!program.reaped(Pid::from_raw(1)), "not its pid");
        waitpid(pid, None).unwrap();
        assert!(program.reaped(pid));
        // Nothing left to stop: no wait, no signal to a recycled pid.
        program.stop(&diag);
        assert!(program.running.is_none());
    }
}
