//! Stopping a container: its shim sends the stop signal, then SIGKILL after
//! the grace period; berth waits for the shim to finish.

use std::time::{Duration, Instant};

use super::{Engine, EngineError};
use crate::runtime::process::pid_alive;

impl Engine {
    /// Asks the shim to stop the container (stop signal, then SIGKILL after
    /// the grace period) and waits for it to be gone.
    pub fn stop(&self, id: &str, timeout: Option<Duration>) -> Result<(), EngineError> {
        let record = self.record(id)?;
        let dir = self.dir(id);
        let grace = record
            .spec
            .stop_grace_period
            .map_or(Duration::from_secs(10), |d| d.as_std());
        let Some(shim_pid) = dir.read_shim_pid().filter(|pid| pid_alive(*pid)) else {
            return Ok(());
        };
        let pid = nix::unistd::Pid::from_raw(shim_pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + timeout.unwrap_or(grace + Duration::from_secs(5));
        while pid_alive(shim_pid) {
            if Instant::now() > deadline {
                self.kill_then_wait_for_shim(id, shim_pid);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Past the grace period: SIGKILL the container (again every 100 ms,
    /// for one the runtime was still starting) and let the shim record the
    /// exit, delete the runtime's container and exit. The shim itself is
    /// killed only if it does not finish within [`SHIM_FINISH_TIMEOUT`]:
    /// killed while it runs the runtime, it would orphan that process (a
    /// `runc run` could then create the container after `remove` took its
    /// rootfs away).
    pub(super) fn kill_then_wait_for_shim(&self, id: &str, shim_pid: u32) {
        let mut next_kill = Instant::now();
        await_shim(shim_pid, || {
            if Instant::now() >= next_kill {
                let _ = self.runc.kill(id, 9);
                next_kill = Instant::now() + Duration::from_millis(100);
            }
        });
    }
}

/// How long `stop` and `remove` wait for a shim to finish (record the exit,
/// delete the runtime's container: normally milliseconds) before they kill it.
const SHIM_FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for the shim `pid` to exit, calling `tick` between looks; kills it
/// if it has not exited within [`SHIM_FINISH_TIMEOUT`].
pub(super) fn await_shim(pid: u32, mut tick: impl FnMut()) {
    let give_up = Instant::now() + SHIM_FINISH_TIMEOUT;
    while pid_alive(pid) {
        if Instant::now() > give_up {
            kill_shim(pid);
            return;
        }
        tick();
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub(super) fn kill_shim(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}
