//! Snapshots: image layers unpacked once per chain id, and per-container
//! overlay mounts on top of them.
//!
//! Lifecycle of a container snapshot: [`Snapshotter::prepare`] creates its
//! upper and work directories over committed layers and returns the mounts as
//! data; [`Snapshotter::mount`] has its [`Mounter`] mount them at a target;
//! `unmount` and `remove` undo both. Layers are committed by [`Snapshotter::ensure_layers`]:
//! each unpacks into a temp directory and is renamed into place only when
//! complete and its diff id verified, so a crash never leaves a half layer
//! that looks whole. Unpacking is bounded ([`budget`]): a layer or image
//! that unpacks to more than its [`ImageLimits`] is refused mid-stream and
//! its temp directory removed.

pub mod budget;
pub mod mount;
pub mod overlay;
pub mod testsuite;
pub mod unpack;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::image::digest::Digest;
use crate::image::limits::ImageLimits;
use crate::image::record::LayerRecord;
use crate::image::store::ContentStore;
use crate::image::Progress;

pub use budget::{Exceeded, ImageBudget, LayerBudget};
pub use mount::{Mounter, RecordingMounter, SystemMounter};
pub use overlay::OverlaySnapshotter;
pub use unpack::{
    unpack_layer, unpack_layer_with, unpack_layer_within, Ownership, UnpackError, UnpackOptions,
    UnpackStats,
};

/// A mount described as data (what `mount(8)` would be given), so callers can
/// print it, test it, or hand it to a runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// A container's snapshot as recorded on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    pub key: String,
    /// The image it was prepared from, for `berth image rm` and `prune`.
    pub image: String,
    /// Chain ids of its layers, bottom first.
    pub layers: Vec<Digest>,
    pub created: u64,
    /// Mounted `volatile`: skips syncs; discarded with its container.
    #[serde(default)]
    pub ephemeral: bool,
    /// A host directory that is its only lower layer (a `rootfs:DIR`
    /// container; `layers` is then empty). The overlay never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("layer {digest}: {source}")]
    Unpack {
        digest: Digest,
        source: unpack::UnpackError,
    },
    #[error("layer {digest} unpacks to diff id {actual}, but the image config says {expected}; the layer was discarded")]
    DiffIdMismatch {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    /// The layer, or its image, unpacked to more than its limits allow;
    /// what it had unpacked is gone.
    #[error("layer {digest}: {exceeded}; the layer was discarded")]
    TooLarge { digest: Digest, exceeded: Exceeded },
    #[error("layer {0} is not unpacked (its image must be imported or pulled again)")]
    MissingLayer(Digest),
    #[error("snapshot {0:?} already exists")]
    Exists(String),
    #[error("no snapshot {0:?}")]
    NotFound(String),
    #[error("snapshot key {0:?} must be 1-128 characters of [A-Za-z0-9_.-]")]
    InvalidKey(String),
    #[error(
        "overlay options for {layers} layers are {len} bytes, over the kernel's page-size limit"
    )]
    TooManyLayers { layers: usize, len: usize },
    /// A rootfs directory that cannot be an overlay's lower layer as it is.
    #[error("rootfs directory {path}: {reason}")]
    LowerDir { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] crate::image::store::StoreError),
    #[error(transparent)]
    Record(Box<crate::state::records::RecordError>),
}

/// The snapshotter contract; one real implementation ([`OverlaySnapshotter`]).
pub trait Snapshotter {
    /// Unpacks and commits every layer not yet present, in parallel, under
    /// the default [`ImageLimits`].
    fn ensure_layers(
        &self,
        store: &ContentStore,
        layers: &[LayerRecord],
        progress: &dyn Progress,
    ) -> Result<(), SnapshotError> {
        self.ensure_layers_within(store, layers, &ImageLimits::default(), progress)
    }
    /// Unpacks and commits every layer of one image not yet present, in
    /// parallel. A layer that unpacks to more than `limits.max_layer_size`,
    /// or that takes the image's layers (those present included) past
    /// `limits.max_image_size`, is stopped at the first chunk past the
    /// bound ([`SnapshotError::TooLarge`]) and its temp directory removed;
    /// layers not started yet are not started. Layers committed before the
    /// error stay (whole and valid; `gc` removes them when nothing uses
    /// them).
    fn ensure_layers_within(
        &self,
        store: &ContentStore,
        layers: &[LayerRecord],
        limits: &ImageLimits,
        progress: &dyn Progress,
    ) -> Result<(), SnapshotError>;
    /// Chain ids of every committed layer.
    fn layers(&self) -> Result<Vec<Digest>, SnapshotError>;
    fn has_layer(&self, chain_id: &Digest) -> bool;
    fn remove_layer(&self, chain_id: &Digest) -> Result<(), SnapshotError>;
    /// Creates a writable snapshot over committed layers; returns its mounts.
    fn prepare(
        &self,
        key: &str,
        image: &str,
        layers: &[Digest],
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.prepare_with(key, image, layers, false)
    }
    /// Like `prepare`; an `ephemeral` snapshot (a `run --rm` container) is
    /// never synced to disk (overlay `volatile`): it does not outlive its
    /// container, so a crash can cost nothing worth keeping.
    fn prepare_with(
        &self,
        key: &str,
        image: &str,
        layers: &[Digest],
        ephemeral: bool,
    ) -> Result<Vec<Mount>, SnapshotError>;
    /// Like `prepare_with`, over a host directory instead of committed
    /// layers: `lower` (absolute, with no symlink on its path, a directory)
    /// is the overlay's only lower layer, so the container's writes land in
    /// its own upper directory and `lower` is never written. `lower` is
    /// checked again whenever the snapshot is mounted.
    fn prepare_over_dir(
        &self,
        key: &str,
        image: &str,
        lower: &Path,
        ephemeral: bool,
    ) -> Result<Vec<Mount>, SnapshotError>;
    /// The mounts of an existing snapshot.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;
    fn mount(&self, key: &str, target: &Path) -> Result<(), SnapshotError>;
    fn unmount(&self, target: &Path) -> Result<(), SnapshotError>;
    /// Removes the snapshot's writable layer (after it is unmounted).
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;
    fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError>;
}
