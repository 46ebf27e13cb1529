//! The networks berth knows: one record per network under
//! `<root>/networks/<name>.json` (created by apply from Network manifests),
//! plus the built-in `default`, which a record named `default` overrides.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::conflist::NetworkDef;
use super::DEFAULT_NETWORK;
use crate::manifest::NetworkSpec;
use crate::state::atomic::{remove_stale_temps, write_json_atomic};

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
    /// The desired-state fingerprint it was created from.
    #[serde(default)]
    pub fingerprint: Option<crate::state::labels::Fingerprint>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} network record {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("network record {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("network {0:?} does not exist (declare it in a Network manifest and apply it; see berth network ls)")]
    NotFound(String),
}

#[derive(Debug, Clone)]
pub struct NetworkStore {
    dir: PathBuf,
}

impl NetworkStore {
    pub fn new(root: &Path) -> Self {
        NetworkStore {
            dir: root.join("networks"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub fn put(&self, record: &NetworkRecord) -> Result<(), StoreError> {
        fs::create_dir_all(&self.dir).map_err(|source| StoreError::Io {
            op: "create",
            path: self.dir.clone(),
            source,
        })?;
        // A put killed before its rename left a temp file.
        remove_stale_temps(&self.dir);
        let path = self.path(&record.name);
        write_json_atomic(&path, record).map_err(|source| StoreError::Io {
            op: "write",
            path,
            source,
        })
    }

    pub fn get_record(&self, name: &str) -> Result<Option<NetworkRecord>, StoreError> {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Corrupt { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                op: "read",
                path,
                source,
            }),
        }
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
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(name.to_string()))
            }
            Err(source) => Err(StoreError::Io {
                op: "remove",
                path,
                source,
            }),
        }
    }

    /// Every recorded network, plus the built-in default when not overridden.
    pub fn list(&self) -> Result<Vec<NetworkRecord>, StoreError> {
        let mut records = Vec::new();
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(network) = name.strip_suffix(".json").filter(|n| !n.starts_with('.')) {
                    if let Some(record) = self.get_record(network)? {
                        records.push(record);
                    }
                }
            }
        }
        if !records.iter().any(|r| r.name == DEFAULT_NETWORK) {
            let default = NetworkDef::builtin_default();
            records.push(NetworkRecord {
                name: default.name,
                spec: default.spec,
                source: None,
                file: None,
                fingerprint: None,
            });
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }
}
