//! The OCI runtime's command line (runc, or any runtime with runc's CLI), for
//! the verbs berth itself runs: state, kill, exec, delete, list. `run` is
//! the shim's.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    #[error("cannot run {runtime}: {source}")]
    Spawn {
        runtime: PathBuf,
        source: std::io::Error,
    },
    #[error("{runtime} {verb} {id}: {stderr}")]
    Failed {
        runtime: PathBuf,
        verb: &'static str,
        id: String,
        stderr: String,
    },
    #[error("{runtime} state {id}: unreadable output: {source}")]
    BadState {
        runtime: PathBuf,
        id: String,
        source: serde_json::Error,
    },
}

/// What `runc state` reports.
#[derive(Debug, Clone, Deserialize)]
pub struct RuncState {
    pub id: String,
    pub pid: i64,
    /// created, running, paused or stopped.
    pub status: String,
    pub bundle: String,
}

#[derive(Debug, Clone)]
pub struct Runc {
    pub binary: PathBuf,
    pub root: PathBuf,
}

impl Runc {
    pub fn new(binary: &Path, root: &Path) -> Self {
        Runc {
            binary: binary.to_path_buf(),
            root: root.to_path_buf(),
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.root);
        command
    }

    fn run(&self, verb: &'static str, id: &str, args: &[&str]) -> Result<Vec<u8>, RuncError> {
        self.run_with(verb, args, id, &[])
    }

    /// `runtime VERB FLAGS... ID AFTER...`.
    fn run_with(
        &self,
        verb: &'static str,
        flags: &[&str],
        id: &str,
        after: &[&str],
    ) -> Result<Vec<u8>, RuncError> {
        let output = self
            .command()
            .arg(verb)
            .args(flags)
            .arg(id)
            .args(after)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RuncError::Spawn {
                runtime: self.binary.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(RuncError::Failed {
                runtime: self.binary.clone(),
                verb,
                id: id.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }

    /// The container's state, or None when the runtime does not know it.
    pub fn state(&self, id: &str) -> Result<Option<RuncState>, RuncError> {
        match self.run("state", id, &[]) {
            Ok(stdout) => {
                serde_json::from_slice(&stdout)
                    .map(Some)
                    .map_err(|source| RuncError::BadState {
                        runtime: self.binary.clone(),
                        id: id.to_string(),
                        source,
                    })
            }
            Err(RuncError::Failed { stderr, .. })
                if stderr.contains("does not exist") || stderr.contains("not exist") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `runc kill ID SIGNAL` (the signal follows the id).
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), RuncError> {
        self.run_with("kill", &[], id, &[&signal.to_string()])
            .map(|_| ())
    }

    /// Whether the runtime may still hold a container of this id: runc and
    /// crun keep one directory per container under `--root`. A file-system
    /// check, no runtime process; when it says no, `delete` has nothing to do.
    pub fn may_have(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    pub fn delete_force(&self, id: &str) -> Result<(), RuncError> {
        match self.run("delete", id, &["--force"]) {
            Err(RuncError::Failed { stderr, .. }) if stderr.contains("does not exist") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Runs a command in the container with this process's stdio attached.
    pub fn exec_attached(
        &self,
        id: &str,
        tty: bool,
        env: &[String],
        command: &[String],
    ) -> Result<ExitStatus, RuncError> {
        let mut cmd = self.command();
        cmd.arg("exec");
        if tty {
            cmd.arg("--tty");
        }
        for var in env {
            cmd.arg("--env").arg(var);
        }
        cmd.arg(id).args(command);
        cmd.status().map_err(|source| RuncError::Spawn {
            runtime: self.binary.clone(),
            source,
        })
    }
}

/// The runtime binary: an explicit path, else `runc` on PATH (or /usr/sbin).
pub fn find_runtime(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("runc"))
        .find(|candidate| candidate.is_file())
}
