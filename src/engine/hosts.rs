//! Name resolution inside containers: `/etc/hosts` with every peer on a
//! shared network by name and alias, `/etc/resolv.conf` and `/etc/hostname`.

use std::fs;
use std::io::Write;

use super::{io_err, Engine, EngineError};
use crate::manifest::names::ContainerId;
use crate::runtime::container_dir::ContainerDir;
use crate::runtime::spec::{EtcFiles, NetworkNamespace};
use crate::state::atomic::write_atomic_volatile_readable;
use crate::state::lock::{self, Lock, Mode};
use crate::state::nofollow::{create_dir_beneath, open_beneath, Open};

impl Engine {
    /// Containers sharing a network with `id`: (name, aliases, address).
    pub(super) fn peers_of(&self, id: &str) -> Vec<(String, Vec<String>, std::net::IpAddr)> {
        let own = self.networker.attachments(id);
        let mut peers = Vec::new();
        for other in self.networker.cache().containers().unwrap_or_default() {
            if other == id {
                continue;
            }
            for attachment in self.networker.attachments(&other) {
                if own.iter().any(|mine| mine.network == attachment.network) {
                    for ip in &attachment.ips {
                        peers.push((other.clone(), attachment.aliases.clone(), *ip));
                    }
                }
            }
        }
        peers.sort();
        peers.dedup();
        peers
    }

    /// `/etc/hosts` for a container: itself, and every peer by name and alias.
    pub(super) fn hosts_for(&self, id: &str, hostname: &str) -> String {
        crate::network::attach::hosts_file(
            hostname,
            &self.networker.attachments(id),
            &self.peers_of(id),
        )
    }

    /// The lock of [`crate::state::layout::Layout::hosts_lock`]; without
    /// it (it cannot be taken) the files are still written: a stale peer
    /// name is better than no container.
    pub(super) fn hosts_guard(&self) -> Option<Lock> {
        let path = self.paths.hosts_lock();
        lock::acquire(&path, Mode::Exclusive, true)
            .map_err(|error| tracing::warn!(%error, "hosts files written without their lock"))
            .ok()
    }

    /// Rewrites, in place (it is bind-mounted), the hosts file of every
    /// container that shares a network with `id`.
    pub fn refresh_hosts_of_peers(&self, id: &str) {
        let peers: std::collections::BTreeSet<String> = self
            .peers_of(id)
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        for peer in peers {
            self.refresh_hosts(&peer);
        }
    }

    /// Rewrites one container's hosts file in place.
    pub(super) fn refresh_hosts(&self, id: &str) {
        let hostname = ContainerId::parse(id)
            .ok()
            .and_then(|id| self.record(&id).ok())
            .and_then(|r| r.spec.hostname)
            .unwrap_or_else(|| id.to_string());
        let content = self.hosts_for(id, &hostname);
        let path = self.dir(id).etc().join("hosts");
        // In place: the file is a bind mount's source. Through no link: a
        // planted one would choose what root overwrites.
        if let Ok(mut file) = open_beneath(&self.paths.state, &path, Open::Overwrite) {
            let _ = file.write_all(content.as_bytes());
        }
    }

    pub(super) fn write_etc_files(
        &self,
        id: &str,
        dir: &ContainerDir,
        hostname: &str,
        network: &NetworkNamespace,
    ) -> Result<EtcFiles, EngineError> {
        let etc = dir.etc();
        create_dir_beneath(&self.paths.state, &etc, 0o700).map_err(io_err(id, "create", &etc))?;
        let files = EtcFiles {
            hosts: etc.join("hosts"),
            resolv_conf: etc.join("resolv.conf"),
            hostname: etc.join("hostname"),
        };
        let hosts = if *network == NetworkNamespace::Host {
            fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            self.hosts_for(id, hostname)
        };
        let resolv = host_resolv_conf(*network == NetworkNamespace::Host);
        for (path, content) in [
            (&files.hosts, hosts),
            (&files.resolv_conf, resolv),
            (&files.hostname, format!("{hostname}\n")),
        ] {
            write_atomic_volatile_readable(path, content.as_bytes())
                .map_err(io_err(id, "write", path))?;
        }
        Ok(files)
    }
}

/// The host's resolv.conf without loopback nameservers (they would point at
/// the container itself), unless the container shares the host's network.
pub fn host_resolv_conf(host_network: bool) -> String {
    let text = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if host_network {
        return text;
    }
    text.lines()
        .filter(|line| {
            let mut words = line.split_whitespace();
            !(words.next() == Some("nameserver")
                && words.next().is_some_and(|ip| {
                    ip.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
                }))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}
