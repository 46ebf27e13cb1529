//! Container records: what berth made, from what, for whom. One JSON file
//! per container, written before anything else exists and removed last.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{io_err, Engine, EngineError};
use crate::manifest::ContainerSpec;

/// Who asked for a container, so that apply never prunes `berth run`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Origin {
    /// `berth run`.
    Run,
    /// A manifest set applied from `source`, declared in `file`.
    Manifest { source: String, file: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    pub id: String,
    pub image: String,
    pub image_manifest: String,
    pub spec: ContainerSpec,
    pub origin: Origin,
    pub created_unix_ms: u64,
    /// The desired-state fingerprint it was created from (manifests only).
    #[serde(default)]
    pub fingerprint: Option<crate::state::labels::Fingerprint>,
}

impl Engine {
    pub(super) fn record_path(&self, id: &str) -> PathBuf {
        self.paths
            .root
            .join("containers")
            .join(format!("{id}.json"))
    }

    pub fn record(&self, id: &str) -> Result<ContainerRecord, EngineError> {
        let path = self.record_path(id);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EngineError::NotFound(id.to_string()),
            _ => io_err(id, "read", &path)(e),
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| io_err(id, "parse", &path)(std::io::Error::other(e)))
    }

    pub fn records(&self) -> Result<Vec<ContainerRecord>, EngineError> {
        let dir = self.paths.root.join("containers");
        let mut records = Vec::new();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(records);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                if !id.starts_with('.') {
                    records.push(self.record(id)?);
                }
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }
}
