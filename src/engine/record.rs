//! Container records: what berth made, from what, for whom. One JSON file
//! per container, written before anything else exists and removed last.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError};
use crate::manifest::names::ContainerId;
use crate::manifest::ContainerSpec;
use crate::state::labels::Fingerprint;
use crate::state::records::RecordStore;

/// Who asked for a container, so that apply never prunes `berth run`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Origin {
    /// `berth run`.
    Run,
    /// A manifest set applied from `source`, declared in `file` at `line`
    /// (its `metadata.name`; records older than lines have none).
    Manifest {
        source: String,
        file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    pub id: ContainerId,
    pub image: String,
    pub image_manifest: String,
    pub spec: ContainerSpec,
    pub origin: Origin,
    pub created_unix_ms: u64,
    /// The desired-state fingerprint it was created from (manifests only).
    #[serde(default)]
    pub fingerprint: Option<Fingerprint>,
}

impl Engine {
    /// Container records: `<root>/containers/<id>.json`.
    pub fn container_records(&self) -> RecordStore<ContainerRecord> {
        RecordStore::new(self.paths.container_records(), "container")
    }

    pub(super) fn record_path(&self, id: &str) -> PathBuf {
        self.container_records().path(id)
    }

    pub fn record(&self, id: &ContainerId) -> Result<ContainerRecord, EngineError> {
        self.container_records()
            .get(id)
            .map_err(|e| EngineError::Record(Box::new(e)))?
            .ok_or_else(|| EngineError::NotFound(id.to_string()))
    }

    /// Every container record, by id.
    pub fn records(&self) -> Result<Vec<ContainerRecord>, EngineError> {
        self.container_records()
            .list()
            .map_err(|e| EngineError::Record(Box::new(e)))
    }
}
