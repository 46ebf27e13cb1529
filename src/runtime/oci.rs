//! The OCI runtime seam: what berth asks of runc (or crun, or any runtime
//! with runc's command line). The one implementation is the CLI driver in
//! [`crate::runtime::runc`]; the shim and the engine both go through it.

use std::path::PathBuf;
use std::process::ExitStatus;

use serde::Deserialize;

/// An OCI runtime, as berth drives it: one container per id, kept under
/// the runtime's own state root.
///
/// # Lifecycle
///
/// 1. **Run.** The container's shim creates and starts the container in
///    one call (`run --detach --bundle B --pid-file P ID`): it returns once
///    the container's init runs, with the init's pid in the pid file and
///    the init reparented to the shim, which is its subreaper and reaps it.
///    The init leads a session of its own (it is in no process group of
///    the shim). A foreground run (no `--detach`) stays until the init has
///    exited and removes the container itself. Running is the shim's alone,
///    so it is not a method here: the shim spawns and waits on the
///    runtime's processes itself, from the driver's command builders
///    ([`crate::runtime::runc::Runc::run_command`] and the like).
/// 2. **State.** [`state`](OciRuntime::state) reports the init's pid and
///    whether it runs; `None` once the runtime holds no container of the id.
/// 3. **Kill.** [`kill`](OciRuntime::kill) signals the init. It fails when
///    the container is not running (already exited, or not yet started),
///    so callers that must see a container die repeat it.
/// 4. **Exec.** [`exec_attached`](OciRuntime::exec_attached) runs another
///    process in the running container.
/// 5. **Delete.** [`delete_force`](OciRuntime::delete_force) kills what is
///    left of the container and removes the runtime's record of it; the id
///    is free again. Deleting an id the runtime does not know succeeds, so
///    a delete can always be repeated. [`may_have`](OciRuntime::may_have)
///    says, without running the runtime, whether a delete has anything to do.
///
/// Every call may run concurrently with the shim's calls for the same id;
/// the runtime serializes them (runc locks its state dir).
///
/// # Errors
///
/// [`RuntimeError::Spawn`] when the runtime cannot be run at all,
/// [`RuntimeError::Failed`] with its complaint when it refuses,
/// [`RuntimeError::BadState`] when `state` prints what is not a state.
pub trait OciRuntime {
    /// The container's state, or None when the runtime does not know the id.
    fn state(&self, id: &str) -> Result<Option<RuntimeState>, RuntimeError>;

    /// Sends `signal` (a number) to the container's init.
    fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError>;

    /// Kills the container's processes and forgets the container; succeeds
    /// when the runtime does not know the id.
    fn delete_force(&self, id: &str) -> Result<(), RuntimeError>;

    /// Whether the runtime may still hold a container of this id: false
    /// means [`delete_force`](OciRuntime::delete_force) has nothing to do.
    /// A look at the file system, no runtime process.
    fn may_have(&self, id: &str) -> bool;

    /// Runs `command` in the container with this process's stdio attached
    /// and returns its exit status.
    fn exec_attached(
        &self,
        id: &str,
        tty: bool,
        env: &[String],
        command: &[String],
    ) -> Result<ExitStatus, RuntimeError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
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

/// What `state` reports (the OCI runtime spec's state, the fields berth reads).
#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeState {
    pub id: String,
    pub pid: i64,
    /// created, running, paused or stopped.
    pub status: String,
    pub bundle: String,
}

/// A runtime that records its calls for tests and answers as told; a hook
/// sees each call, to make the test's pretend processes react to it.
#[cfg(test)]
pub mod fake {
    use std::cell::{Cell, RefCell};

    use super::*;

    #[derive(Default)]
    pub struct RecordingRuntime<'a> {
        pub calls: RefCell<Vec<String>>,
        /// What `may_have` answers; `delete_force` sets it false.
        pub holds: Cell<bool>,
        #[allow(clippy::type_complexity)]
        pub hook: Option<Box<dyn Fn(&str) + 'a>>,
    }

    impl RecordingRuntime<'_> {
        fn call(&self, call: String) {
            if let Some(hook) = &self.hook {
                hook(&call);
            }
            self.calls.borrow_mut().push(call);
        }

        pub fn calls(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }
    }

    impl OciRuntime for RecordingRuntime<'_> {
        fn state(&self, id: &str) -> Result<Option<RuntimeState>, RuntimeError> {
            self.call(format!("state {id}"));
            Ok(None)
        }

        fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
            self.call(format!("kill {id} {signal}"));
            Ok(())
        }

        fn delete_force(&self, id: &str) -> Result<(), RuntimeError> {
            self.call(format!("delete --force {id}"));
            self.holds.set(false);
            Ok(())
        }

        fn may_have(&self, _id: &str) -> bool {
            self.holds.get()
        }

        fn exec_attached(
            &self,
            id: &str,
            _tty: bool,
            _env: &[String],
            command: &[String],
        ) -> Result<ExitStatus, RuntimeError> {
            self.call(format!("exec {id} {}", command.join(" ")));
            Err(RuntimeError::Spawn {
                runtime: "fake".into(),
                source: std::io::Error::other("the recording runtime runs nothing"),
            })
        }
    }
}
