//! Networks as the loop sees them: declared records, their removal (bridge
//! and addresses first), the networks a container is attached to, and the
//! sweep of attachments no container owns any more.

use super::{Engine, EngineError};
use crate::manifest::NetworkSpec;
use crate::network::store::NetworkRecord;
use crate::state::labels::Fingerprint;

/// A network as a manifest set declares it.
pub struct DeclaredNetwork<'a> {
    pub name: &'a str,
    pub spec: &'a NetworkSpec,
    pub source: &'a str,
    pub file: &'a str,
    pub fingerprint: &'a Fingerprint,
}

/// A network record that a manifest set made (the built-in default is none).
pub struct ManagedNetwork {
    pub name: String,
    pub source: String,
    pub fingerprint: Option<Fingerprint>,
}

impl Engine {
    /// Records a declared network; containers attach to it by its record.
    pub fn put_network(&self, network: &DeclaredNetwork<'_>) -> Result<(), EngineError> {
        self.networks
            .put(&NetworkRecord {
                name: network.name.to_string(),
                spec: network.spec.clone(),
                source: Some(network.source.to_string()),
                file: Some(network.file.to_string()),
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
    /// have no record (after a crash or a reboot); returns how many.
    pub fn sweep_network_leftovers(&self) -> Result<usize, EngineError> {
        let live: Vec<String> = self
            .records()?
            .into_iter()
            .map(|r| r.id.to_string())
            .collect();
        self.networker
            .sweep_stale(&live)
            .map_err(|e| EngineError::Network {
                id: String::new(),
                source: Box::new(e),
            })
    }
}
