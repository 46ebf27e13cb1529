//! Garbage collection: everything reachable from an image record or a
//! container snapshot stays; every other blob, layer and leftover temp file
//! goes, and so do the logs of containers that have no record. Run under the exclusive store lock, so no import is mid-way.

use std::collections::HashSet;

use serde::Serialize;

use super::image::unpack_error;
use crate::image::{ImageError, Images};
use crate::snapshot::{OverlaySnapshotter, Snapshotter};

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub layers_removed: usize,
    pub temp_files_removed: u64,
    /// Log directories of containers berth no longer knows.
    pub log_dirs_removed: usize,
}

/// Removes unreferenced blobs and layers. The caller holds the exclusive lock.
pub fn collect(images: &Images, snapshotter: &OverlaySnapshotter) -> Result<GcReport, ImageError> {
    let records = images.records.list()?;
    let snapshots = snapshotter.list().map_err(unpack_error)?;
    let mut keep_blobs = HashSet::new();
    let mut keep_layers = HashSet::new();
    for record in &records {
        keep_blobs.extend(record.blobs());
        keep_layers.extend(record.chain_ids());
    }
    // A container's layers stay even when its image record is gone.
    for snapshot in &snapshots {
        keep_layers.extend(snapshot.layers.iter().cloned());
    }
    let mut report = GcReport::default();
    for (digest, size) in images.store.list()? {
        if !keep_blobs.contains(&digest) {
            images.store.delete(&digest)?;
            report.blobs_removed += 1;
            report.bytes_freed += size;
        }
    }
    for chain_id in snapshotter.layers().map_err(unpack_error)? {
        if !keep_layers.contains(&chain_id) {
            snapshotter.remove_layer(&chain_id).map_err(unpack_error)?;
            report.layers_removed += 1;
        }
    }
    report.temp_files_removed =
        images.store.clean_ingests()? + snapshotter.clean_tmp().map_err(unpack_error)?;
    Ok(report)
}

/// `berth gc`: collect under the exclusive lock.
pub fn run(images: &Images, snapshotter: &OverlaySnapshotter) -> Result<GcReport, ImageError> {
    let _lock = images.exclusive_lock()?;
    collect(images, snapshotter)
}

impl super::Engine {
    /// `gc` over this engine's image store and snapshotter, and the logs
    /// of containers that have no record.
    pub fn collect_garbage(&self) -> Result<GcReport, super::EngineError> {
        let mut report = run(&self.images, &self.snapshots)
            .map_err(|e| super::EngineError::Store(Box::new(e)))?;
        report.log_dirs_removed = self.sweep_log_leftovers()?;
        Ok(report)
    }
}
