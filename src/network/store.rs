//! The networks berth knows: one record per network under
//! `<root>/networks/<name>.json` (created by apply from Network manifests),
//! plus the built-in `default`, which a record named `default` overrides.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::conflist::NetworkDef;
use super::DEFAULT_NETWORK;
use crate::manifest::NetworkSpec;
use crate::state::records::{RecordError, RecordStore};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRecord {
    pub name: String,
    pub spec: NetworkSpec,
    /// The manifest set that declared it (None for the built-in default).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    /// The line of its `metadata.name` in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The desired-state fingerprint it was created from.
    #[serde(default)]
    pub fingerprint: Option<crate::state::labels::Fingerprint>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("network {0:?} does not exist (declare it in a Network manifest and apply it; see berth network ls)")]
    NotFound(String),
}

#[derive(Debug, Clone)]
pub struct NetworkStore {
    records: RecordStore<NetworkRecord>,
}

impl NetworkStore {
    /// The store in `dir` (the layout's `networks`).
    pub fn new(dir: PathBuf) -> Self {
        NetworkStore {
            records: RecordStore::new(dir, "network"),
        }
    }

    pub fn put(&self, record: &NetworkRecord) -> Result<(), StoreError> {
        Ok(self.records.put(&record.name, record)?)
    }

    pub fn get_record(&self, name: &str) -> Result<Option<NetworkRecord>, StoreError> {
        Ok(self.records.get(name)?)
    }

    /// The definition containers attach with: a record, or the built-in default.
    pub fn get(&self, name: &str) -> Result<NetworkDef, StoreError> {
        match self.get_record(name)? {
            Some(record) => Ok(NetworkDef {
                name: record.name,
                spec: record.spec,
            }),
            None if name == DEFAULT_NETWORK => Ok(NetworkDef::builtin_default()),
            None => Err(StoreError::NotFound(name.to_string())),
        }
    }

    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        if self.records.remove(name)? {
            Ok(())
        } else {
            Err(StoreError::NotFound(name.to_string()))
        }
    }

    /// Every recorded network, plus the built-in default when not overridden.
    pub fn list(&self) -> Result<Vec<NetworkRecord>, StoreError> {
        let mut records = self.records.list()?;
        if !records.iter().any(|r| r.name == DEFAULT_NETWORK) {
            let default = NetworkDef::builtin_default();
            records.push(NetworkRecord {
                name: default.name,
                spec: default.spec,
                source: None,
                file: None,
                line: None,
                fingerprint: None,
            });
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }
}
