//! Name resolution inside containers: `/etc/hosts` with every peer on a
//! shared network by name and alias, `/etc/resolv.conf` and `/etc/hostname`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::net::IpAddr;

use super::{io_err, Engine, EngineError};
use crate::manifest::names::ContainerId;
use crate::network::Attachment;
use crate::runtime::container_dir::ContainerDir;
use crate::runtime::spec::{EtcFiles, NetworkNamespace};
use crate::state::atomic::write_atomic_volatile_readable;
use crate::state::lock::{self, Lock, Mode};
use crate::state::nofollow::{create_dir_beneath, open_beneath, Open};

/// Every attached container's attachments, by container: read from the
/// cache once for all the hosts files one change rewrites (per peer, it
/// made a start on a network of n containers read n² records).
pub(super) type Membership = BTreeMap<String, Vec<Attachment>>;

/// Containers sharing a network with `id`: (name, aliases, address).
fn peers_in(all: &Membership, id: &str) -> Vec<(String, Vec<String>, IpAddr)> {
    let own = all.get(id).map(Vec::as_slice).unwrap_or_default();
    let mut peers = Vec::new();
    for (other, attachments) in all {
        if other == id {
            continue;
        }
        for attachment in attachments {
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

/// The names of the containers sharing a network with `id`.
fn peer_names(all: &Membership, id: &str) -> BTreeSet<String> {
    peers_in(all, id)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect()
}

impl Engine {
    /// Every container's finished attachments, from the result cache.
    pub(super) fn membership(&self) -> Membership {
        self.networker
            .cache()
            .containers()
            .unwrap_or_default()
            .into_iter()
            .map(|container| {
                let attachments = self.networker.attachments(&container);
                (container, attachments)
            })
            .filter(|(_, attachments)| !attachments.is_empty())
            .collect()
    }

    /// The names of the containers sharing a network with `id`.
    pub(super) fn peer_names(&self, id: &str) -> BTreeSet<String> {
        peer_names(&self.membership(), id)
    }

    /// `/etc/hosts` for a container: itself, and every peer by name and alias.
    fn hosts_in(all: &Membership, id: &str, hostname: &str) -> String {
        let own = all.get(id).map(Vec::as_slice).unwrap_or_default();
        crate::network::attach::hosts_file(hostname, own, &peers_in(all, id))
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
    /// container that shares a network with `id`, as `all` has them.
    pub(super) fn refresh_hosts_of_peers(&self, all: &Membership, id: &str) {
        for peer in peer_names(all, id) {
            self.refresh_hosts_from(all, &peer);
        }
    }

    /// Rewrites the hosts files of `peers` (after a container left them).
    pub(super) fn refresh_hosts(&self, peers: &BTreeSet<String>) {
        let all = self.membership();
        for peer in peers {
            self.refresh_hosts_from(&all, peer);
        }
    }

    /// Rewrites one container's hosts file in place, from `all`.
    fn refresh_hosts_from(&self, all: &Membership, id: &str) {
        let hostname = ContainerId::parse(id)
            .ok()
            .and_then(|id| self.record(&id).ok())
            .and_then(|r| r.spec.hostname)
            .unwrap_or_else(|| id.to_string());
        let content = Self::hosts_in(all, id, &hostname);
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
        all: &Membership,
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
            Self::hosts_in(all, id, hostname)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn on(network: &str, ip: &str, aliases: &[&str]) -> Attachment {
        Attachment {
            network: network.into(),
            ifname: "eth0".into(),
            ips: vec![ip.parse().unwrap()],
            mac: None,
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn peers_are_the_containers_sharing_a_network_once_each() {
        let all: Membership = [
            (
                "web",
                vec![
                    on("front", "10.0.0.2", &["www"]),
                    on("back", "10.1.0.2", &[]),
                ],
            ),
            ("db", vec![on("back", "10.1.0.3", &["database"])]),
            ("proxy", vec![on("front", "10.0.0.3", &[])]),
            ("alone", vec![on("other", "10.2.0.2", &[])]),
        ]
        .into_iter()
        .map(|(name, attachments)| (name.to_string(), attachments))
        .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            peers_in(&all, "web"),
            [
                (
                    "db".to_string(),
                    vec!["database".to_string()],
                    ip("10.1.0.3")
                ),
                ("proxy".to_string(), vec![], ip("10.0.0.3")),
            ]
        );
        assert_eq!(peer_names(&all, "db"), BTreeSet::from(["web".to_string()]));
        assert!(peer_names(&all, "alone").is_empty());
        assert!(peer_names(&all, "unknown").is_empty());
        let hosts = Engine::hosts_in(&all, "proxy", "proxy");
        assert!(
            hosts.contains("10.0.0.2") && hosts.contains("www"),
            "{hosts}"
        );
        assert!(!hosts.contains("10.1.0."), "{hosts}");
    }
}
