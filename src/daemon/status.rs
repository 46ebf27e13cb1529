//! What the daemon tells `berth status`: the generation in force and where
//! it came from, the last one rejected and why, the last pass, and each
//! declared object's state. Kept in memory for the socket and written
//! under `--root` after each change, so `berth status` still answers when
//! no daemon runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonStatus {
    /// Whether a daemon answered (false: read from its last record).
    #[serde(default)]
    pub running: bool,
    pub pid: u32,
    pub started_unix_ms: u64,
    /// The watched directory, as given.
    pub watch: String,
    /// The manifest set's identity (ownership, pruning).
    pub source: String,
    pub host_labels: BTreeMap<String, String>,
    /// The highest generation number given so far (accepted or rejected).
    pub generations_read: u64,
    pub generation: Option<GenerationInfo>,
    pub rejected: Option<Rejection>,
    pub last_pass: Option<PassInfo>,
    pub objects: Vec<ObjectState>,
}

/// The generation in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationInfo {
    pub number: u64,
    pub digest: String,
    /// The git commit of the tree, when it is a checkout.
    pub revision: Option<String>,
    pub files: usize,
    /// The objects that select this host.
    pub objects: usize,
    pub read_unix_ms: u64,
    /// When a pass first carried it out without a failed action.
    pub applied_unix_ms: Option<u64>,
    /// Taken from the daemon's record at start, since the tree itself was
    /// missing or invalid then.
    #[serde(default)]
    pub restored: bool,
}

/// The last generation that was not applied, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub number: u64,
    pub digest: String,
    pub revision: Option<String>,
    pub unix_ms: u64,
    /// `file:line:col: message`, one per problem.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassInfo {
    pub unix_ms: u64,
    /// What woke it: start, files, resync, shim, retry.
    pub trigger: String,
    pub generation: u64,
    /// Actions carried out.
    pub actions: usize,
    /// `Kind name: error`, per failed action.
    pub failed: Vec<String>,
    /// `Kind name: reason`, per action left waiting.
    pub pending: Vec<String>,
    /// Why the pass did not run (the lock, a conflict).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectState {
    pub kind: String,
    pub name: String,
    /// A container's verdict (up, waiting, failed, finished, ...); declared
    /// for other kinds; failed when its last action failed.
    pub state: String,
    pub detail: String,
}
