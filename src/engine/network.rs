//! Networks as the loop sees them: declared records, their removal (bridge
//! and addresses first), the networks a container is attached to, and the
//! sweep of attachments no container owns any more.

use std::net::IpAddr;

use super::{Engine, EngineError};
use crate::manifest::net::Cidr;
use crate::manifest::{NetworkDriver, NetworkSpec};
use crate::network::conflist::{bridge_name, NetworkDef};
use crate::network::link;
use crate::network::store::NetworkRecord;
use crate::state::labels::Fingerprint;

/// A network as a manifest set declares it.
pub struct DeclaredNetwork<'a> {
    pub name: &'a str,
    pub spec: &'a NetworkSpec,
    pub source: &'a str,
    pub file: &'a str,
    /// The line of its `metadata.name` in `file`.
    pub line: usize,
    pub fingerprint: &'a Fingerprint,
}

/// A network record that a manifest set made (the built-in default is none).
pub struct ManagedNetwork {
    pub name: String,
    pub source: String,
    pub fingerprint: Option<Fingerprint>,
}

/// What on the host a bridge network's subnet would take over: an address
/// of another interface (the host would lose its route to it) or a default
/// gateway. Pure: the caller reads the host.
pub fn host_conflict(
    subnet: Cidr,
    own_bridge: &str,
    addresses: &[(String, IpAddr)],
    gateways: &[(String, IpAddr)],
) -> Option<String> {
    if let Some((iface, ip)) = gateways.iter().find(|(_, ip)| subnet.contains(*ip)) {
        return Some(format!(
            "subnet {subnet} contains the host's default gateway {ip} (via {iface}); pick a range the host does not route"
        ));
    }
    addresses
        .iter()
        .find(|(iface, ip)| iface != own_bridge && subnet.contains(*ip))
        .map(|(iface, ip)| {
            format!(
                "subnet {subnet} contains {ip}, an address of the host's interface {iface}; pick a range the host does not use"
            )
        })
}

impl Engine {
    /// Records a declared network; containers attach to it by its record.
    /// A bridge network may not claim the host's own addresses or gateway.
    pub fn put_network(&self, network: &DeclaredNetwork<'_>) -> Result<(), EngineError> {
        if let (NetworkDriver::Bridge, Some(subnet)) = (network.spec.driver, network.spec.subnet) {
            let bridge = bridge_name(&NetworkDef {
                name: network.name.to_string(),
                spec: network.spec.clone(),
            });
            let conflict = host_conflict(
                subnet,
                &bridge,
                &link::host_addresses(),
                &link::default_gateways(),
            );
            if let Some(message) = conflict {
                return Err(EngineError::NetworkConflict {
                    network: network.name.to_string(),
                    message,
                });
            }
        }
        self.networks
            .put(&NetworkRecord {
                name: network.name.to_string(),
                spec: network.spec.clone(),
                source: Some(network.source.to_string()),
                file: Some(network.file.to_string()),
                line: Some(network.line),
                fingerprint: Some(network.fingerprint.clone()),
            })
            .map_err(|e| EngineError::NetworkStore(Box::new(e)))
    }

    /// Removes a network: its bridge and host-local's addresses, then its
    /// record. Refused while containers are attached.
    pub fn delete_network(&self, name: &str) -> Result<(), EngineError> {
        self.networker
            .delete_network(&self.networks, name)
            .map_err(|e| EngineError::Network {
                id: name.to_string(),
                source: Box::new(e),
            })
    }

    /// Makes the next CHECK look at the networks' own iptables rules on
    /// the host again rather than trust what this engine saw before.
    pub fn forget_network_rules_seen(&self) {
        self.networker.forget_rules_seen();
    }

    /// The networks manifest sets made.
    pub fn managed_networks(&self) -> Result<Vec<ManagedNetwork>, EngineError> {
        Ok(self
            .networks
            .list()
            .map_err(|e| EngineError::NetworkStore(Box::new(e)))?
            .into_iter()
            .filter_map(|n| {
                Some(ManagedNetwork {
                    source: n.source?,
                    name: n.name,
                    fingerprint: n.fingerprint,
                })
            })
            .collect())
    }

    /// The networks container `id` is attached to, sorted, once each.
    pub fn attached_networks(&self, id: &str) -> Vec<String> {
        let mut networks: Vec<String> = self
            .networker
            .attachments(id)
            .into_iter()
            .map(|a| a.network)
            .collect();
        networks.sort();
        networks.dedup();
        networks
    }

    /// Drops IP reservations and cached attachments of containers that
    /// have no record (after a crash or a reboot), then the iptables rules
    /// the CNI plugins left for such containers on this root's own
    /// networks; says how many of each. A container whose record was
    /// quarantined keeps them while its runtime directory is there: `rm -f`
    /// removes it whole.
    pub fn sweep_network_leftovers(&self) -> Result<NetworkSweep, EngineError> {
        let mut live: Vec<String> = self
            .records()?
            .into_iter()
            .map(|r| r.id.to_string())
            .collect();
        live.extend(self.orphans());
        let network_error = |e| EngineError::Network {
            id: String::new(),
            source: Box::new(e),
        };
        let attachments = self.networker.sweep_stale(&live).map_err(network_error)?;
        let rules = self
            .networker
            .sweep_rules(&live, &self.own_networks()?)
            .map_err(network_error)?;
        Ok(NetworkSweep { attachments, rules })
    }

    /// The networks this root has a record of. The built-in `default` is
    /// not one: every state root on the host shares its name, bridge and
    /// subnet, so its rules cannot be told apart by root (a declared
    /// `default` has a record and counts).
    fn own_networks(&self) -> Result<Vec<NetworkDef>, EngineError> {
        let store_error = |e| EngineError::NetworkStore(Box::new(e));
        let mut own = Vec::new();
        for network in self.networks.list().map_err(store_error)? {
            if self
                .networks
                .get_record(&network.name)
                .map_err(store_error)?
                .is_some()
            {
                own.push(NetworkDef {
                    name: network.name,
                    spec: network.spec,
                });
            }
        }
        Ok(own)
    }
}

/// What [`Engine::sweep_network_leftovers`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkSweep {
    /// Cached attachments, pinned namespaces and IP reservations.
    pub attachments: usize,
    /// iptables rules (and the chains holding them).
    pub rules: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(iface: &str, ip: &str) -> (String, IpAddr) {
        (iface.to_string(), ip.parse().unwrap())
    }

    #[test]
    fn a_subnet_holding_the_gateway_or_another_interface_is_named() {
        let subnet: Cidr = "192.0.2.0/24".parse().unwrap();
        let gateway = host_conflict(subnet, "br0", &[], &[at("eth0", "192.0.2.1")]).unwrap();
        assert!(
            gateway.contains("default gateway 192.0.2.1 (via eth0)"),
            "{gateway}"
        );
        let address = host_conflict(subnet, "br0", &[at("eth0", "192.0.2.2")], &[]).unwrap();
        assert!(
            address.contains("192.0.2.2, an address of the host's interface eth0"),
            "{address}"
        );
    }

    #[test]
    fn the_networks_own_bridge_and_other_ranges_are_fine() {
        let subnet: Cidr = "10.231.0.0/24".parse().unwrap();
        let host = [at("br0", "10.231.0.1"), at("eth0", "192.0.2.2")];
        assert_eq!(
            host_conflict(subnet, "br0", &host, &[at("eth0", "192.0.2.1")]),
            None
        );
    }
}
