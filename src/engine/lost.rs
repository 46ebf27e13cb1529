//! A container whose shim is gone while its status says it runs: its shim
//! was killed (or died) before it could record the exit. Nothing supervises
//! it any more and nothing will record how it ends, so berth settles it:
//! what the runtime still runs of it is killed (its output has nowhere to
//! go) and the exit is recorded as unknown. Its restart policy then decides,
//! as for any exit: `always` restarts it, `never` and `on-failure` leave it
//! exited, never run twice.

use super::stop::ShimControl;
use super::{io_err, Engine, EngineError};
use crate::runtime::container_dir::{Phase, Status};
use crate::state::clock::unix_ms;
use crate::state::lock;

impl Engine {
    /// Settles container `id` if its shim is lost; whether it was.
    pub fn settle_lost_shim(&self, id: &str) -> Result<bool, EngineError> {
        let dir = self.dir(id);
        let Ok(Some(status)) = dir.read_status() else {
            return Ok(false);
        };
        if status.phase == Phase::Exited {
            return Ok(false);
        }
        let control = self.shim_control(id, &dir);
        if control.live_shim().is_some() {
            return Ok(false);
        }
        // Held while settling: a shim that starts now (an apply killed
        // mid-start would have left one spawning) waits, or we skip.
        let lock_path = dir.shim_lock();
        let _no_shim = match lock::acquire(&lock_path, lock::Mode::Exclusive, false) {
            Ok(held) => held,
            Err(lock::LockError::Busy { .. }) => return Ok(false),
            Err(error) => {
                return Err(io_err(id, "lock", &lock_path)(std::io::Error::other(error)));
            }
        };
        stop_orphan(&control);
        let settled = lost_exit(status);
        dir.write_status(&settled)
            .map_err(io_err(id, "write", &dir.status()))?;
        tracing::warn!(container = %id, "its shim was lost; exit unknown");
        Ok(true)
    }
}

/// Kills what the runtime still runs of the container and deletes the
/// runtime's container.
fn stop_orphan(control: &ShimControl<'_>) {
    if control.runtime.may_have(control.id) {
        // --force: SIGKILL first, as for a container that still runs.
        let _ = control.runtime.delete_force(control.id);
    }
}

/// `status` as it ends for a container whose shim is lost.
fn lost_exit(status: Status) -> Status {
    Status {
        phase: Phase::Exited,
        pid: None,
        exit_code: None,
        signal: None,
        next_start_unix_ms: None,
        exited_unix_ms: Some(unix_ms()),
        health: None,
        shim_lost: true,
        ..status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_exit_is_exited_with_nothing_known_of_how() {
        let mut running = Status::new(Phase::Running, 42);
        running.pid = Some(7);
        running.exit_code = Some(3);
        running.restarts = 2;
        let lost = lost_exit(running);
        assert_eq!(lost.phase, Phase::Exited);
        assert_eq!((lost.pid, lost.exit_code, lost.signal), (None, None, None));
        assert!(lost.shim_lost && lost.exited_unix_ms.is_some());
        assert_eq!(lost.restarts, 2);
        assert_eq!(lost.start_error_reason(), None);
    }
}
