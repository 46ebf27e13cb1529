//! Container records: what berth made, from what, for whom. One JSON file
//! per container, written before anything else exists and removed last.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
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
    /// An attempt of a Job that manifest set `source` declares in `file`:
    /// the Job's, not an object of its own (never pruned as undeclared).
    #[serde(rename_all = "camelCase")]
    Job {
        source: String,
        file: String,
        job: String,
        run: u32,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
    },
}

impl Origin {
    /// The manifest set it belongs to; None for `berth run`'s.
    pub fn source(&self) -> Option<&str> {
        match self {
            Origin::Run => None,
            Origin::Manifest { source, .. } | Origin::Job { source, .. } => Some(source),
        }
    }

    /// The file that declared it, or `run`.
    pub fn file(&self) -> &str {
        match self {
            Origin::Run => "run",
            Origin::Manifest { file, .. } | Origin::Job { file, .. } => file,
        }
    }
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
    /// When its shim first started it. Kept under `--root` with the record,
    /// so that a `never` or `on-failure` container that ran is not run
    /// again once the shim's status is gone (a reboot empties `--state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<u64>,
    /// Set by `berth stop`: the user's intent outlives a reboot, so that
    /// `unless-stopped` stays stopped. A new container (replace, repair)
    /// gets a new record without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopIntent>,
    /// Where its relative host paths (bind sources, env files, a seccomp
    /// profile) resolve: the manifest's directory, or `berth run`'s working
    /// directory. `berth start` creates it again from the record with it;
    /// records older than this field have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dir: Option<PathBuf>,
    /// Its labels: the manifest's `metadata.labels` (a Job's, for its
    /// attempts) or `berth run --label`; what `-l` selectors match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A stop a user asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopIntent {
    pub unix_ms: u64,
    /// Who asked: `berth stop`.
    pub by: String,
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

    /// Rewrites `record` (durably, unless it is a `run --rm` container's,
    /// whose record need not outlive a power loss).
    pub(super) fn rewrite_record(
        &self,
        record: &ContainerRecord,
        volatile: bool,
    ) -> Result<(), EngineError> {
        let records = self.container_records();
        let written = if volatile {
            records.put_volatile(&record.id, record)
        } else {
            records.put(&record.id, record)
        };
        written.map_err(|e| EngineError::Record(Box::new(e)))
    }

    /// Every container record, by id (one that does not parse is
    /// quarantined and left out: see [`RecordStore::get`]).
    pub fn records(&self) -> Result<Vec<ContainerRecord>, EngineError> {
        self.container_records()
            .list()
            .map_err(|e| EngineError::Record(Box::new(e)))
    }

    /// Whether anything of container `id` is on the host besides its
    /// record: its runtime directory (shim, bundle, rootfs mount) or
    /// network attachments. A container whose record was quarantined has
    /// them while it runs on: they go before a container of that name is
    /// created again, so that it is neither leaked nor doubled.
    pub fn has_leftovers(&self, id: &str) -> bool {
        self.dir(id).dir.exists()
            || self
                .networker
                .records(id)
                .is_ok_and(|records| !records.is_empty())
    }

    /// Containers that have a runtime directory but no record (it was
    /// quarantined): unknown to berth, but not to be leaked. `ps` lists
    /// them, `rm -f` removes them, and the network sweep spares them.
    pub fn orphans(&self) -> Vec<String> {
        let known: BTreeSet<String> = self
            .container_records()
            .keys()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut orphans: Vec<String> = fs::read_dir(self.paths.container_dirs())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|id| ContainerId::parse(id).is_ok() && !known.contains(id))
                    .collect()
            })
            .unwrap_or_default();
        orphans.sort();
        orphans
    }
}
