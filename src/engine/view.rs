//! What `ps` and `inspect` show of a container.

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::{ContainerRecord, Origin};
use super::Engine;
use crate::manifest::{NetworkMode, PortMapping};
use crate::network::attach::CheckFailure;
use crate::runtime::container_dir::{ContainerState, Health, Phase, Status, SHIM_LOST};
use crate::runtime::process::ProcessId;
use crate::snapshot::overlay::is_overlay_mounted;

/// What `ps` and `inspect` show.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    pub id: String,
    pub image: String,
    pub origin: Origin,
    pub created_unix_ms: u64,
    /// Its labels, from its record (what `-l` selectors match).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    /// The ports it publishes, from its spec, each with its host port
    /// filled in (the container port where the spec gives none).
    pub ports: Vec<PortMapping>,
    pub status: Option<Status>,
    /// Whether the shim process is alive.
    pub shim_alive: bool,
    /// The live shim, identified by pid and start time.
    pub shim: Option<ProcessId>,
    /// Its shim died before recording the exit: its status says it runs
    /// (or will), and nothing supervises it (see [`Engine::settle_lost_shim`]).
    pub shim_lost: bool,
    /// Why its last start failed, in a few words (the whole error is in
    /// `status.error`), or why its status cannot be read; None once a
    /// start succeeds.
    pub reason: Option<String>,
    /// Why its status file cannot be read, naming it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable_status: Option<String>,
}

impl ContainerView {
    pub fn is_running(&self) -> bool {
        self.state.is_live()
    }

    /// Its health, while it runs: a check's result belongs to the run it
    /// checked, not to the container restarting or exited since.
    pub fn health(&self) -> Option<&Health> {
        self.status
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .filter(|_| self.state == ContainerState::Running)
    }
}

/// Why the status file at `path` cannot be read, naming it once.
fn unreadable_status(path: &std::path::Path, error: &std::io::Error) -> String {
    let text = error.to_string();
    let shown = path.display().to_string();
    let detail = text
        .strip_prefix(&format!("{shown}: "))
        .unwrap_or(&text)
        .to_string();
    format!("corrupt status file {shown}: {detail}")
}

/// `ports` with every host port spelled out, so that readers need not
/// know the default.
fn published_ports(ports: &[PortMapping]) -> Vec<PortMapping> {
    ports
        .iter()
        .map(|port| PortMapping {
            host_port: Some(port.effective_host_port()),
            ..port.clone()
        })
        .collect()
}

impl Engine {
    /// What a reconciler can act on in container `id`'s status file, in
    /// short: phase, pid, restarts, exit, health state, whether stopped or
    /// failed to start. Not the health check's timestamps and output, which
    /// change at every check. None when there is no readable status.
    pub fn status_gist(&self, id: &str) -> Option<String> {
        let status = self.dir(id).read_status().ok().flatten()?;
        Some(format!(
            "{:?} {:?} {} {:?} {:?} {:?} {} {}",
            status.phase,
            status.pid,
            status.restarts,
            status.exit_code,
            status.signal,
            status.health.as_ref().map(|h| h.state),
            status.stopped,
            status.error.is_some()
        ))
    }

    /// What berth knows of a container right now.
    pub fn view(&self, record: &ContainerRecord) -> ContainerView {
        let dir = self.dir(&record.id);
        // A status that does not parse leaves the state unknown, saying why
        // (it is the shim's file, rewritten on its next change: not moved).
        let (status, unreadable) = match dir.read_status() {
            Ok(status) => (status, None),
            Err(error) => (None, Some(unreadable_status(&dir.status(), &error))),
        };
        let shim = if status.as_ref().is_some_and(|s| s.phase == Phase::Exited) {
            // A shim that recorded the exit is finishing or gone: its pid
            // file, still valid, is all there is to check. The search by
            // lock (a read of /proc/locks per container) is for live ones.
            dir.read_shim_process().filter(ProcessId::lives)
        } else {
            self.shim_control(&record.id, &dir).live_shim()
        };
        let shim_alive = shim.is_some();
        let state = match unreadable {
            Some(_) => ContainerState::Unknown,
            None => ContainerState::of(status.as_ref(), shim_alive),
        };
        let shim_lost = state == ContainerState::Unknown && status.is_some();
        ContainerView {
            id: record.id.to_string(),
            image: record.image.clone(),
            origin: record.origin.clone(),
            created_unix_ms: record.created_unix_ms,
            labels: record.labels.clone(),
            state,
            ports: published_ports(&record.spec.ports),
            reason: match &status {
                _ if unreadable.is_some() => unreadable.clone(),
                _ if shim_lost => {
                    Some("its shim is gone: the next apply records an unknown exit".into())
                }
                Some(status) if status.shim_lost => Some(SHIM_LOST.into()),
                status => status.as_ref().and_then(Status::start_error_reason),
            },
            unreadable_status: unreadable,
            status,
            shim_alive,
            shim,
            shim_lost,
        }
    }

    /// What is broken under a live container: its rootfs unmounted, its pinned
    /// network namespace gone, or an attachment that fails CNI CHECK.
    pub fn plumbing_fault(&self, record: &ContainerRecord, check_networks: bool) -> Option<String> {
        let dir = self.dir(&record.id);
        if !is_overlay_mounted(&dir.rootfs()) {
            return Some("its root filesystem is no longer mounted".into());
        }
        if record.spec.network_mode == NetworkMode::Host {
            return None;
        }
        if !self
            .networker
            .namespaces
            .is_mounted(&self.networker.netns_path(&record.id))
        {
            return Some("its network namespace is gone".into());
        }
        // Loopback only: no attachment to CHECK.
        if !check_networks || record.spec.network_mode == NetworkMode::None {
            return None;
        }
        match self.networker.check(&record.id) {
            Ok(outcomes) => outcomes.into_iter().find_map(|(network, outcome)| {
                outcome.err().map(|failure| match failure {
                    CheckFailure::Cni(error) => {
                        format!("CNI CHECK of network {network} failed: {error}")
                    }
                    rules => format!("network {network}: {rules}"),
                })
            }),
            // A check that cannot run (a read-only or full --state, say)
            // is no evidence that anything is broken: replacing a working
            // container for it would break what works.
            Err(error) => {
                tracing::warn!(container = %record.id, %error, "CNI CHECK could not run");
                None
            }
        }
    }
}
