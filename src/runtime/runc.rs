//! The runc command-line driver: the one implementation of [`OciRuntime`],
//! for runc or any runtime with runc's command line (crun). It also builds
//! the runtime's commands for the shim, which spawns and waits on them
//! itself (`run`, `kill`, `delete`, `exec`): one place knows the command line.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use super::oci::{OciRuntime, RuntimeError, RuntimeState};
pub use super::oci::{RuntimeError as RuncError, RuntimeState as RuncState};

/// A runtime binary and its state root (`--root`).
#[derive(Debug, Clone)]
pub struct Runc {
    pub binary: PathBuf,
    pub root: PathBuf,
}

/// How `run` starts a container.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    pub bundle: &'a Path,
    /// Where the runtime writes the init's pid.
    pub pid_file: &'a Path,
    /// Return once the container runs (`--detach`); else stay until it has
    /// exited, and remove it.
    pub detach: bool,
    /// Give the container a terminal, its master sent to this socket.
    pub console_socket: Option<&'a Path>,
    /// The runtime's own log, as JSON lines (`--log F --log-format json`).
    pub log: Option<&'a Path>,
}

/// How `exec` runs a process in a container.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecOptions<'a> {
    pub tty: bool,
    /// `NAME=VALUE` pairs added to the container's environment.
    pub env: &'a [String],
    /// Where the runtime writes the process's pid.
    pub pid_file: Option<&'a Path>,
}

impl Runc {
    pub fn new(binary: &Path, root: &Path) -> Self {
        Runc {
            binary: binary.to_path_buf(),
            root: root.to_path_buf(),
        }
    }

    /// `runtime --root ROOT`, ready for a verb.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.root);
        command
    }

    /// `runtime [--log F --log-format json] run [--detach] --bundle B
    /// [--console-socket S] --pid-file P ID`; stdio as the caller sets it.
    pub fn run_command(&self, id: &str, options: &RunOptions) -> Command {
        let mut command = self.command();
        if let Some(log) = options.log {
            command
                .arg("--log")
                .arg(log)
                .arg("--log-format")
                .arg("json");
        }
        command.arg("run");
        if options.detach {
            command.arg("--detach");
        }
        command.arg("--bundle").arg(options.bundle);
        if let Some(socket) = options.console_socket {
            command.arg("--console-socket").arg(socket);
        }
        command.arg("--pid-file").arg(options.pid_file).arg(id);
        command
    }

    /// `runtime state ID`.
    pub fn state_command(&self, id: &str) -> Command {
        let mut command = self.command();
        command.arg("state").arg(id);
        command
    }

    /// `runtime kill ID SIGNAL` (the signal follows the id).
    pub fn kill_command(&self, id: &str, signal: i32) -> Command {
        let mut command = self.command();
        command.arg("kill").arg(id).arg(signal.to_string());
        command
    }

    /// `runtime delete --force ID`.
    pub fn delete_command(&self, id: &str) -> Command {
        let mut command = self.command();
        command.arg("delete").arg("--force").arg(id);
        command
    }

    /// `runtime exec [--tty] [--env V]... [--pid-file P] ID COMMAND...`.
    pub fn exec_command(&self, id: &str, options: &ExecOptions, exec: &[String]) -> Command {
        let mut command = self.command();
        command.arg("exec");
        if options.tty {
            command.arg("--tty");
        }
        for var in options.env {
            command.arg("--env").arg(var);
        }
        if let Some(pid_file) = options.pid_file {
            command.arg("--pid-file").arg(pid_file);
        }
        command.arg(id).args(exec);
        command
    }

    /// Runs `command` (stdin on /dev/null) and returns its stdout, or the
    /// runtime's complaint.
    fn output(
        &self,
        verb: &'static str,
        id: &str,
        mut command: Command,
    ) -> Result<Vec<u8>, RuntimeError> {
        let output =
            command
                .stdin(Stdio::null())
                .output()
                .map_err(|source| RuntimeError::Spawn {
                    runtime: self.binary.clone(),
                    source,
                })?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(RuntimeError::Failed {
                runtime: self.binary.clone(),
                verb,
                id: id.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }
}

/// runc's command line (and crun's, which is the same).
impl OciRuntime for Runc {
    /// See [`OciRuntime::state`].
    fn state(&self, id: &str) -> Result<Option<RuntimeState>, RuntimeError> {
        match self.output("state", id, self.state_command(id)) {
            Ok(stdout) => {
                serde_json::from_slice(&stdout)
                    .map(Some)
                    .map_err(|source| RuntimeError::BadState {
                        runtime: self.binary.clone(),
                        id: id.to_string(),
                        source,
                    })
            }
            Err(RuntimeError::Failed { stderr, .. })
                if stderr.contains("does not exist") || stderr.contains("not exist") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// See [`OciRuntime::kill`].
    fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        self.output("kill", id, self.kill_command(id, signal))
            .map(|_| ())
    }

    /// See [`OciRuntime::may_have`]: runc and crun keep one directory per
    /// container under `--root`.
    fn may_have(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    /// See [`OciRuntime::delete_force`].
    fn delete_force(&self, id: &str) -> Result<(), RuntimeError> {
        match self.output("delete", id, self.delete_command(id)) {
            Err(RuntimeError::Failed { stderr, .. }) if stderr.contains("does not exist") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// See [`OciRuntime::exec_attached`].
    fn exec_attached(
        &self,
        id: &str,
        tty: bool,
        env: &[String],
        command: &[String],
    ) -> Result<ExitStatus, RuntimeError> {
        let options = ExecOptions {
            tty,
            env,
            pid_file: None,
        };
        self.exec_command(id, &options, command)
            .status()
            .map_err(|source| RuntimeError::Spawn {
                runtime: self.binary.clone(),
                source,
            })
    }
}

/// The runtime binary: an explicit path, else `runc` on PATH (or /usr/sbin).
/// A bare name (`crun`) is looked up like runc; a path must exist.
pub fn find_runtime(explicit: Option<&Path>) -> Option<PathBuf> {
    let name = match explicit {
        Some(path) if path.components().count() > 1 => {
            return path.is_file().then(|| path.to_path_buf());
        }
        Some(name) => name,
        None => Path::new("runc"),
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn runc() -> Runc {
        Runc::new(Path::new("/usr/bin/runc"), Path::new("/run/b/runc"))
    }

    #[test]
    fn detached_run_passes_bundle_pid_file_and_id_last() {
        let options = RunOptions {
            bundle: Path::new("/b"),
            pid_file: Path::new("/d/init.pid"),
            detach: true,
            console_socket: None,
            log: None,
        };
        assert_eq!(
            args(&runc().run_command("c1", &options)),
            [
                "--root",
                "/run/b/runc",
                "run",
                "--detach",
                "--bundle",
                "/b",
                "--pid-file",
                "/d/init.pid",
                "c1"
            ]
        );
    }

    #[test]
    fn attached_run_logs_json_before_the_verb_and_takes_a_console_socket() {
        let options = RunOptions {
            bundle: Path::new("/b"),
            pid_file: Path::new("/p"),
            detach: false,
            console_socket: Some(Path::new("/s")),
            log: Some(Path::new("/l")),
        };
        assert_eq!(
            args(&runc().run_command("c1", &options)),
            [
                "--root",
                "/run/b/runc",
                "--log",
                "/l",
                "--log-format",
                "json",
                "run",
                "--bundle",
                "/b",
                "--console-socket",
                "/s",
                "--pid-file",
                "/p",
                "c1"
            ]
        );
    }

    #[test]
    fn kill_puts_the_signal_after_the_id_and_delete_forces_before_it() {
        assert_eq!(
            args(&runc().kill_command("c1", 9)),
            ["--root", "/run/b/runc", "kill", "c1", "9"]
        );
        assert_eq!(
            args(&runc().delete_command("c1")),
            ["--root", "/run/b/runc", "delete", "--force", "c1"]
        );
    }

    #[test]
    fn exec_puts_options_before_the_id_and_the_command_after() {
        let env = ["A=1".to_string()];
        let options = ExecOptions {
            tty: true,
            env: &env,
            pid_file: Some(Path::new("/h.pid")),
        };
        let command = ["ls".to_string(), "-l".to_string()];
        assert_eq!(
            args(&runc().exec_command("c1", &options, &command)),
            [
                "--root",
                "/run/b/runc",
                "exec",
                "--tty",
                "--env",
                "A=1",
                "--pid-file",
                "/h.pid",
                "c1",
                "ls",
                "-l"
            ]
        );
    }

    #[test]
    fn the_trait_reaches_the_driver_and_an_unknown_runtime_is_a_spawn_error() {
        let runtime: &dyn OciRuntime =
            &Runc::new(Path::new("/nonexistent/runc"), Path::new("/nonexistent"));
        assert!(matches!(
            runtime.kill("c1", 9),
            Err(RuntimeError::Spawn { .. })
        ));
        assert!(!runtime.may_have("c1"));
    }
}
