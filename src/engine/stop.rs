//! Stopping a container: its shim sends the stop signal, then SIGKILL after
//! the grace period; berth waits for the shim to finish.
//!
//! The protocol lives on [`ShimControl`], which needs only the container's
//! runtime directory, the OCI runtime and the host: no record, snapshot or
//! network, so it runs in tests against a fake runtime as an ordinary user.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::record::StopIntent;
use super::{Engine, EngineError};
use crate::manifest::names::ContainerId;
use crate::runtime::container_dir::ContainerDir;
use crate::runtime::host::Host;
use crate::runtime::oci::OciRuntime;
use crate::runtime::process::{ProcHost, ProcessId};
use crate::state::clock::unix_ms;

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
    pub fn stop(&self, id: &ContainerId, timeout: Option<Duration>) -> Result<(), EngineError> {
        let record = self.record(id)?;
        let dir = self.dir(id);
        let grace = record
            .spec
            .stop_grace_period
            .map_or(Duration::from_secs(10), |d| d.as_std());
        self.shim_control(id, &dir).stop(grace, timeout);
        Ok(())
    }

    /// `berth stop`: notes the user's intent in the record (under
    /// `--root`, so that it outlives a reboot), then stops the container.
    pub fn stop_on_request(
        &self,
        id: &ContainerId,
        timeout: Option<Duration>,
    ) -> Result<(), EngineError> {
        let mut record = self.record(id)?;
        record.stopped = Some(StopIntent {
            unix_ms: unix_ms(),
            by: "berth stop".into(),
        });
        self.rewrite_record(&record, false)?;
        self.stop(id, timeout)
    }

    /// The container's live shim, identified (see [`ShimControl::live_shim`]).
    pub fn live_shim(&self, id: &str) -> Option<ProcessId> {
        let dir = self.dir(id);
        self.shim_control(id, &dir).live_shim()
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
    /// The container's shim, if it lives, identified beyond its pid: the
    /// process `shim.pid` names when its start time still matches, else
    /// (that file missing, garbage, or naming a process that reused the
    /// pid) the process that holds the container's shim lock as its
    /// shim. Nothing else is ever signalled as the shim.
    pub fn live_shim(&self) -> Option<ProcessId> {
        self.dir
            .read_shim_process()
            .filter(|shim| self.host.is_alive(*shim))
            .or_else(|| self.host.shim_holding(&self.dir.shim_lock(), &self.dir.dir))
    }

    /// Asks the shim to stop the container (SIGTERM to the shim, which
    /// sends the stop signal, then SIGKILL after the grace period) and
    /// waits for the shim to exit: until `timeout`, by default the grace
    /// period and 5 s more. Past it, kills the container itself and waits
    /// for the shim to finish ([`Self::kill_then_wait_for_shim`]). Without
    /// a live shim there is nothing to ask: it returns at once.
    pub fn stop(&self, grace: Duration, timeout: Option<Duration>) {
        let Some(shim) = self.live_shim() else {
            return;
        };
        self.host.signal(shim, Signal::SIGTERM);
        let deadline = self.host.now() + timeout.unwrap_or(grace + Duration::from_secs(5));
        while self.host.is_alive(shim) {
            if self.host.now() > deadline {
                self.kill_then_wait_for_shim(shim);
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
    pub(super) fn kill_then_wait_for_shim(&self, shim: ProcessId) {
        let mut next_kill = self.host.now();
        self.await_shim(shim, || {
            if self.host.now() >= next_kill {
                let _ = self.runtime.kill(self.id, 9);
                next_kill = self.host.now() + Duration::from_millis(100);
            }
        });
    }

    /// Waits for `shim` to exit, calling `tick` between looks; kills it
    /// if it has not exited within [`SHIM_FINISH_TIMEOUT`].
    pub(super) fn await_shim(&self, shim: ProcessId, mut tick: impl FnMut()) {
        let give_up = self.host.now() + SHIM_FINISH_TIMEOUT;
        while self.host.is_alive(shim) {
            if self.host.now() > give_up {
                self.kill_shim(shim);
                return;
            }
            tick();
            self.host.sleep(Duration::from_millis(1));
        }
    }

    pub(super) fn kill_shim(&self, shim: ProcessId) {
        self.host.signal(shim, Signal::SIGKILL);
    }
}

/// How long `stop` and `remove` wait for a shim to finish (record the exit,
/// delete the runtime's container: normally milliseconds) before they kill it.
pub const SHIM_FINISH_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
pub(super) mod tests {
    use std::fs;

    use super::*;
    use crate::runtime::host::fake::FakeHost;
    use crate::runtime::oci::fake::RecordingRuntime;
    use crate::state::Layout;

    pub const SHIM: u32 = 100;

    /// A container dir whose `shim.pid` names [`SHIM`].
    pub fn container_dir() -> (tempfile::TempDir, ContainerDir) {
        let temp = tempfile::tempdir().unwrap();
        let dir = ContainerDir::new(&Layout::new(temp.path(), temp.path()), "c");
        fs::create_dir_all(&dir.dir).unwrap();
        // The fake host's processes started at their pid's tick.
        fs::write(dir.shim_pid(), format!("{SHIM} {SHIM}\n")).unwrap();
        (temp, dir)
    }

    pub fn control<'a>(
        dir: &'a ContainerDir,
        runtime: &'a RecordingRuntime,
        host: &'a FakeHost,
    ) -> ShimControl<'a> {
        ShimControl {
            id: "c",
            dir,
            runtime,
            host,
        }
    }

    #[test]
    fn stop_without_a_live_shim_signals_nothing_and_returns_at_once() {
        let (_temp, dir) = container_dir();
        let host = FakeHost::default();
        let runtime = RecordingRuntime::default();
        control(&dir, &runtime, &host).stop(Duration::from_secs(10), None);
        assert_eq!(host.signals(), []);
        assert_eq!(runtime.calls(), [""; 0]);
        assert_eq!(host.elapsed(), Duration::ZERO);
    }

    #[test]
    fn a_process_that_took_over_the_shims_pid_is_never_signalled() {
        let (_temp, dir) = container_dir();
        let host = FakeHost::default();
        // The shim is gone and an unrelated process, started later, has
        // its pid now.
        host.spawn_started(SHIM, SHIM, SHIM as u64 + 1, &[Signal::SIGTERM]);
        let runtime = RecordingRuntime::default();
        let control = control(&dir, &runtime, &host);
        assert_eq!(control.live_shim(), None);
        control.stop(Duration::from_secs(10), None);
        assert_eq!(host.signals(), []);
        assert!(host.pid_alive(SHIM));
    }

    #[test]
    fn a_bare_or_garbage_pid_file_identifies_no_shim() {
        let (_temp, dir) = container_dir();
        let host = FakeHost::default();
        host.spawn(SHIM, SHIM, &[Signal::SIGTERM]);
        let runtime = RecordingRuntime::default();
        for text in [format!("{SHIM}\n"), "garbage".into(), format!("{SHIM} x")] {
            fs::write(dir.shim_pid(), text).unwrap();
            control(&dir, &runtime, &host).stop(Duration::from_secs(10), None);
        }
        assert_eq!(host.signals(), []);
    }

    #[test]
    fn stop_sends_sigterm_to_the_shim_and_waits_for_it_to_exit() {
        let (_temp, dir) = container_dir();
        let host = FakeHost::default();
        host.spawn(SHIM, SHIM, &[Signal::SIGKILL]);
        host.exit_after(SHIM, Duration::from_secs(3));
        let runtime = RecordingRuntime::default();
        control(&dir, &runtime, &host).stop(Duration::from_secs(10), None);
        assert_eq!(host.signals(), [(SHIM, Signal::SIGTERM)]);
        assert_eq!(runtime.calls(), [""; 0]);
        assert!(host.elapsed() >= Duration::from_secs(3));
    }

    #[test]
    fn past_the_timeout_stop_kills_the_container_every_100ms_and_lets_the_shim_finish() {
        let (_temp, dir) = container_dir();
        let host = FakeHost::default();
        host.spawn(SHIM, SHIM, &[Signal::SIGKILL]);
        let kills_at = std::cell::RefCell::new(Vec::new());
        // The container was still starting: the third kill ends it, and
        // the shim finishes 50 ms later.
        let runtime = RecordingRuntime {
            hook: Some(Box::new(|call: &str| {
                assert_eq!(call, "kill c 9");
                kills_at.borrow_mut().push(host.elapsed());
                if kills_at.borrow().len() == 3 {
                    host.exit_after(SHIM, Duration::from_millis(50));
                }
            })),
            ..RecordingRuntime::default()
        };
        control(&dir, &runtime, &host).stop(Duration::from_secs(10), Some(Duration::from_secs(1)));
        // The shim was asked, then left to finish: never killed.
        assert_eq!(host.signals(), [(SHIM, Signal::SIGTERM)]);
        let kills_at = kills_at.borrow();
        assert_eq!(kills_at.len(), 3, "{kills_at:?}");
        assert!(kills_at[0] > Duration::from_secs(1));
        for pair in kills_at.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(100),
                "{kills_at:?}"
            );
        }
    }

    #[test]
    fn a_shim_that_does_not_finish_within_the_timeout_is_sigkilled() {
        let (_temp, dir) = container_dir();
        let host = FakeHost::default();
        host.spawn(SHIM, SHIM, &[Signal::SIGKILL]);
        let runtime = RecordingRuntime::default();
        control(&dir, &runtime, &host).stop(Duration::from_secs(10), Some(Duration::ZERO));
        assert_eq!(
            host.signals(),
            [(SHIM, Signal::SIGTERM), (SHIM, Signal::SIGKILL)]
        );
        assert!(host.elapsed() >= SHIM_FINISH_TIMEOUT);
        assert!(runtime.calls().iter().all(|c| c == "kill c 9"));
        assert!(!host.pid_alive(SHIM));
    }
}
