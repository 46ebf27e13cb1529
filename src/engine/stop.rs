//! Stopping a container: its shim sends the stop signal, then SIGKILL after
//! the grace period; berth waits for the shim to finish.
//!
//! The protocol lives on [`ShimControl`], which needs only the container's
//! runtime directory, the OCI runtime and the host: no record, snapshot or
//! network, so it runs in tests against a fake runtime as an ordinary user.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::{Engine, EngineError};
use crate::runtime::host::Host;
use crate::runtime::oci::OciRuntime;
use crate::runtime::process::ProcHost;
use crate::runtime::state::ContainerDir;

/// One container's shim, the runtime's container and the host they run on:
/// what `stop` and `remove` act on.
pub struct ShimControl<'a> {
    pub id: &'a str,
    pub dir: &'a ContainerDir,
    pub runtime: &'a dyn OciRuntime,
    pub host: &'a dyn Host,
}

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
        self.shim_control(id, &dir).stop(grace, timeout);
        Ok(())
    }

    /// The stop and remove protocols for container `id` in `dir`, on this
    /// engine's runtime and the real host.
    pub(super) fn shim_control<'a>(
        &'a self,
        id: &'a str,
        dir: &'a ContainerDir,
    ) -> ShimControl<'a> {
        ShimControl {
            id,
            dir,
            runtime: &self.runc,
            host: &ProcHost,
        }
    }
}

impl ShimControl<'_> {
    /// The shim `shim.pid` names, if it lives.
    pub fn live_shim(&self) -> Option<u32> {
        self.dir
            .read_shim_pid()
            .filter(|pid| self.host.pid_alive(*pid))
    }

    /// Asks the shim to stop the container (SIGTERM to the shim, which
    /// sends the stop signal, then SIGKILL after the grace period) and
    /// waits for the shim to exit: until `timeout`, by default the grace
    /// period and 5 s more. Past it, kills the container itself and waits
    /// for the shim to finish ([`Self::kill_then_wait_for_shim`]). Without
    /// a live shim there is nothing to ask: it returns at once.
    pub fn stop(&self, grace: Duration, timeout: Option<Duration>) {
        let Some(shim_pid) = self.live_shim() else {
            return;
        };
        self.host.signal(shim_pid, Signal::SIGTERM);
        let deadline = self.host.now() + timeout.unwrap_or(grace + Duration::from_secs(5));
        while self.host.pid_alive(shim_pid) {
            if self.host.now() > deadline {
                self.kill_then_wait_for_shim(shim_pid);
                break;
            }
            self.host.sleep(Duration::from_millis(10));
        }
    }

    /// Past the grace period: SIGKILL the container (again every 100 ms,
    /// for one the runtime was still starting) and let the shim record the
    /// exit, delete the runtime's container and exit. The shim itself is
    /// killed only if it does not finish within [`SHIM_FINISH_TIMEOUT`]:
    /// killed while it runs the runtime, it would orphan that process (a
    /// `runc run` could then create the container after `remove` took its
    /// rootfs away).
    pub(super) fn kill_then_wait_for_shim(&self, shim_pid: u32) {
        let mut next_kill = self.host.now();
        self.await_shim(shim_pid, || {
            if self.host.now() >= next_kill {
                let _ = self.runtime.kill(self.id, 9);
                next_kill = self.host.now() + Duration::from_millis(100);
            }
        });
    }

    /// Waits for the shim `pid` to exit, calling `tick` between looks; kills it
    /// if it has not exited within [`SHIM_FINISH_TIMEOUT`].
    pub(super) fn await_shim(&self, pid: u32, mut tick: impl FnMut()) {
        let give_up = self.host.now() + SHIM_FINISH_TIMEOUT;
        while self.host.pid_alive(pid) {
            if self.host.now() > give_up {
                self.kill_shim(pid);
                return;
            }
            tick();
            self.host.sleep(Duration::from_millis(1));
        }
    }

    pub(super) fn kill_shim(&self, pid: u32) {
        self.host.signal(pid, Signal::SIGKILL);
    }
}

/// How long `stop` and `remove` wait for a shim to finish (record the exit,
/// delete the runtime's container: normally milliseconds) before they kill it.
pub const SHIM_FINISH_TIMEOUT: Duration = Duration::from_secs(5);
