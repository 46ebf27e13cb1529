//! Removing a container: its shim, the runtime's container, the network,
//! the rootfs mount, the snapshot, its logs and, last, the record.

use std::fs;
use std::time::Duration;

use super::stop::ShimControl;
use super::{io_err, Engine, EngineError};
use crate::manifest::names::ContainerId;
use crate::runtime::container_dir::{ContainerDir, Phase};
use crate::runtime::oci::OciRuntime;
use crate::runtime::oci::RuntimeError;
use crate::runtime::process::ProcessId;
use crate::snapshot::{SnapshotError, Snapshotter};
use crate::state::lock;

/// How long `remove` waits for a killed shim's runtime calls to finish.
pub const SHIM_GROUP_TIMEOUT: Duration = Duration::from_secs(10);

impl Engine {
    /// Pins the container's network namespace again from its init when the
    /// pin was removed behind berth's back and the container still runs, so
    /// that teardown's DEL can clean inside it.
    pub(super) fn repin_lost_netns(&self, id: &str) {
        if !self.networker.pin_lost(id) {
            return;
        }
        let init = self
            .runc
            .state(id)
            .ok()
            .flatten()
            .filter(|state| state.pid > 0 && state.status != "stopped");
        if let Some(state) = init {
            if let Err(error) = self.networker.repin(id, state.pid as u32) {
                tracing::warn!(container = %id, %error, "cannot pin the network namespace again");
            }
        }
    }

    /// Removes the container: its runtime state, mount, snapshot and record.
    pub fn remove(&self, id: &ContainerId, force: bool) -> Result<(), EngineError> {
        let dir = self.dir(id);
        self.repin_lost_netns(id);
        let control = self.shim_control(id, &dir);
        // The shim before it is stopped: what it has in flight may outlive it.
        let live_shim = control.live_shim();
        if let Ok(record) = self.record(id) {
            if self.view(&record).is_running() {
                if !force {
                    return Err(EngineError::Running(id.to_string()));
                }
                self.stop(id, Some(Duration::from_secs(0)))?;
            }
        } else if !self.has_leftovers(id) {
            // No record (none, or a quarantined one) and nothing left of it.
            return Err(EngineError::NotFound(id.to_string()));
        }
        let _no_second_shim =
            control.remove(live_shim, || self.remove_mounts_and_network(id, &dir))?;
        if dir.dir.exists() {
            fs::remove_dir_all(&dir.dir).map_err(io_err(id, "remove", &dir.dir))?;
        }
        // The logs go with the container, as they did while they lived in
        // its runtime directory: a container created again starts afresh.
        self.remove_logs(id)?;
        // The record goes last: until then `rm` finds whatever is left.
        self.container_records()
            .remove(id)
            .map_err(|e| EngineError::Record(Box::new(e)))?;
        Ok(())
    }

    /// What `remove` takes away while no shim can start the container
    /// again: the network, peers' `/etc/hosts`, the rootfs mount, the snapshot.
    fn remove_mounts_and_network(&self, id: &str, dir: &ContainerDir) -> Result<(), EngineError> {
        self.discard_preflight(id);
        let peers = self.peer_names(id);
        self.networker
            .teardown(id)
            .map_err(|e| EngineError::Network {
                id: id.to_string(),
                source: Box::new(e),
            })?;
        let hosts_guard = self.hosts_guard();
        self.refresh_hosts(&peers);
        drop(hosts_guard);
        let snapshots = &self.snapshots;
        snapshots
            .unmount(&dir.rootfs())
            .map_err(|source| EngineError::Snapshot {
                id: id.to_string(),
                source: Box::new(source),
            })?;
        match snapshots.remove(id) {
            Ok(()) | Err(SnapshotError::NotFound(_)) => {}
            Err(source) => {
                return Err(EngineError::Snapshot {
                    id: id.to_string(),
                    source: Box::new(source),
                })
            }
        }
        tracing::debug!(container = %id, "snapshot removed");
        Ok(())
    }
}

impl ShimControl<'_> {
    /// The shim's part of `remove`, around `teardown` (the network, the
    /// rootfs, the snapshot), for a container that is stopped or was just
    /// asked to stop. `live_shim` is the shim that lived before the stop:
    /// what it had in flight may outlive it.
    ///
    /// A live shim that has recorded the final exit is deleting the
    /// runtime's container (see `shim`): `teardown` runs meanwhile, then
    /// this waits for it. Any other live shim is stuck: it goes, with the
    /// runtime calls it had in flight, and the runtime's container (its
    /// processes killed) before `teardown`.
    ///
    /// Returns the container's shim lock, held (when it could be taken):
    /// keep it until the container's directory is gone, so that no shim a
    /// killed berth spawned starts the container again meanwhile.
    pub fn remove<E: From<RuntimeError>>(
        &self,
        live_shim: Option<ProcessId>,
        teardown: impl FnOnce() -> Result<(), E>,
    ) -> Result<Option<lock::Lock>, E> {
        let shim = self.live_shim();
        let exited = || {
            self.dir
                .read_status()
                .ok()
                .flatten()
                .is_some_and(|s| s.phase == Phase::Exited)
        };
        let finishing = shim.filter(|_| exited());
        let mut no_second_shim = None;
        if finishing.is_none() {
            if let Some(shim) = shim {
                self.kill_shim(shim);
            }
            if let Some(shim) = live_shim.or(shim) {
                self.wait_for_shim_group(shim.pid);
            }
            self.delete_runtime_container()?;
            no_second_shim = self.kill_unrecorded_shims();
        }
        teardown()?;
        if let Some(shim) = finishing {
            self.await_shim(shim, || {});
            // The pid file named the finishing shim; a shim spawned later by
            // a killed berth may not have written its pid yet.
            no_second_shim = self.kill_unrecorded_shims();
            self.delete_runtime_container()?;
        }
        Ok(no_second_shim)
    }

    /// Waits until a shim we killed, and the runtime calls it had in flight,
    /// are gone. The shim leads its own process group (it called setsid);
    /// a SIGKILL ends the shim alone: a `runc create` it started runs on,
    /// writes `init.pid` into the directory being removed and creates the
    /// container after our `runc delete` (whereupon the next shim's create
    /// fails for good: "container with given ID already exists"). The
    /// container's processes are not in the group (runc's init calls setsid);
    /// a health check's `runc exec` ends once the container is killed.
    pub(super) fn wait_for_shim_group(&self, shim: u32) {
        let started = self.host.now();
        let mut container_killed = false;
        while !self.host.group_members(shim).is_empty() {
            let elapsed = self.host.now().saturating_duration_since(started);
            if !container_killed && elapsed > Duration::from_millis(500) {
                let _ = self.runtime.kill(self.id, 9);
                container_killed = true;
            }
            if elapsed > SHIM_GROUP_TIMEOUT {
                tracing::warn!(container = %self.id, shim, "runtime calls of the killed shim still run");
                return;
            }
            self.host.sleep(Duration::from_millis(10));
        }
    }

    /// Waits until no process holds the container's shim lock, killing the
    /// shim `shim.pid` names as it appears; returns the lock, held. A shim
    /// holds the lock from the moment `start_shim` spawns it: this finds
    /// one whose spawner was killed before it wrote its pid, which would
    /// otherwise go on to run a second container under this id beside the
    /// next one (the one it loses to then fails to create for ever).
    pub(super) fn kill_unrecorded_shims(&self) -> Option<lock::Lock> {
        if !self.dir.dir.exists() {
            return None;
        }
        let deadline = self.host.now() + SHIM_GROUP_TIMEOUT;
        loop {
            match lock::acquire(&self.dir.shim_lock(), lock::Mode::Exclusive, false) {
                Ok(held) => return Some(held),
                Err(lock::LockError::Busy { .. }) => {}
                Err(error) => {
                    tracing::warn!(container = %self.id, %error, "cannot check for a shim");
                    return None;
                }
            }
            if let Some(shim) = self.live_shim() {
                self.kill_shim(shim);
                self.wait_for_shim_group(shim.pid);
                let _ = self.runtime.delete_force(self.id);
            }
            if self.host.now() > deadline {
                tracing::warn!(container = %self.id, "a process still holds the shim lock");
                return None;
            }
            self.host.sleep(Duration::from_millis(10));
        }
    }

    /// `runtime delete --force`, unless the runtime holds nothing of this id
    /// (a shim that finished has deleted it).
    pub fn delete_runtime_container(&self) -> Result<(), RuntimeError> {
        if self.runtime.may_have(self.id) {
            self.runtime.delete_force(self.id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use nix::sys::signal::Signal;

    use super::super::stop::tests::{container_dir, control, SHIM};
    use super::*;

    /// The fake host's [`SHIM`], started at its pid's tick.
    fn shim_process() -> ProcessId {
        ProcessId {
            pid: SHIM,
            start_time: u64::from(SHIM),
        }
    }
    use crate::runtime::container_dir::Status;
    use crate::runtime::host::fake::FakeHost;
    use crate::runtime::host::Host;
    use crate::runtime::oci::fake::RecordingRuntime;

    /// A `runc run` the shim had in flight, in the shim's process group.
    const RUNTIME_CALL: u32 = 101;

    fn write_phase(dir: &ContainerDir, phase: Phase) {
        dir.write_status(&Status::new(phase, SHIM)).unwrap();
    }

    #[test]
    fn remove_lets_a_finishing_shim_delete_and_tears_down_meanwhile() {
        let (_temp, dir) = container_dir();
        write_phase(&dir, Phase::Exited);
        let host = FakeHost::default();
        host.spawn(SHIM, SHIM, &[Signal::SIGKILL]);
        host.exit_after(SHIM, Duration::from_secs(1));
        // The shim's own delete removes the runtime's container.
        let runtime = RecordingRuntime::default();
        let torn_down = Cell::new(false);
        let lock = control(&dir, &runtime, &host)
            .remove(Some(shim_process()), || {
                assert!(host.pid_alive(SHIM), "teardown after the shim");
                torn_down.set(true);
                Ok::<(), RuntimeError>(())
            })
            .unwrap();
        assert!(torn_down.get());
        assert!(lock.is_some());
        assert_eq!(host.signals(), [], "a finishing shim is not killed");
        assert_eq!(runtime.calls(), [""; 0], "nothing left to delete");
        assert!(!host.pid_alive(SHIM));
    }

    #[test]
    fn remove_kills_a_stuck_shim_and_its_runtime_calls_and_deletes_the_container_before_teardown() {
        let (_temp, dir) = container_dir();
        write_phase(&dir, Phase::Running);
        let host = FakeHost::default();
        host.spawn(SHIM, SHIM, &[Signal::SIGKILL]);
        host.spawn(RUNTIME_CALL, SHIM, &[]);
        host.exit_after(RUNTIME_CALL, Duration::from_millis(200));
        let runtime = RecordingRuntime::default();
        runtime.holds.set(true);
        let lock = control(&dir, &runtime, &host)
            .remove(Some(shim_process()), || {
                assert!(!host.pid_alive(SHIM));
                assert!(
                    !host.pid_alive(RUNTIME_CALL),
                    "teardown under a runtime call"
                );
                assert_eq!(runtime.calls(), ["delete --force c"]);
                Ok::<(), RuntimeError>(())
            })
            .unwrap();
        assert!(lock.is_some());
        assert_eq!(host.signals(), [(SHIM, Signal::SIGKILL)]);
    }

    #[test]
    fn a_lingering_runtime_call_gets_the_container_killed_once_after_half_a_second() {
        let (_temp, dir) = container_dir();
        let host = FakeHost::default();
        host.spawn(RUNTIME_CALL, SHIM, &[]);
        // A `runc exec` ends once the container is killed.
        let runtime = RecordingRuntime {
            hook: Some(Box::new(|call: &str| {
                if call == "kill c 9" {
                    host.exit_after(RUNTIME_CALL, Duration::from_millis(30));
                }
            })),
            ..RecordingRuntime::default()
        };
        control(&dir, &runtime, &host).wait_for_shim_group(SHIM);
        assert_eq!(runtime.calls(), ["kill c 9"]);
        assert!(host.elapsed() > Duration::from_millis(500));
        assert!(host.group_members(SHIM).is_empty());
    }

    #[test]
    fn waiting_for_the_shims_group_gives_up_after_its_timeout() {
        let (_temp, dir) = container_dir();
        let host = FakeHost::default();
        host.spawn(RUNTIME_CALL, SHIM, &[]);
        let runtime = RecordingRuntime::default();
        control(&dir, &runtime, &host).wait_for_shim_group(SHIM);
        assert_eq!(runtime.calls(), ["kill c 9"]);
        assert!(host.elapsed() > SHIM_GROUP_TIMEOUT);
        assert_eq!(host.signals(), [], "only the shim is ever signalled");
    }
}
