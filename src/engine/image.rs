//! Ensuring a container's image: found in the store, or imported or pulled
//! by its pull policy, then unpacked into layer snapshots.

use super::{gc, Engine, EngineError};
use crate::image::import::{self, ImportOptions};
use crate::image::pull::{self, PullOptions};
use crate::image::{
    ContentStore, ImageError, ImageLimits, ImageRecord, ImageSource, Images, LayerUnpacker,
    Progress, TooLarge,
};
use crate::manifest::reference::canonical_name;
use crate::manifest::PullPolicy;
use crate::snapshot::{OverlaySnapshotter, SnapshotError, Snapshotter};

impl Engine {
    /// Finds or fetches the image a container needs, by its pull policy,
    /// under the engine's [`ImageLimits`]. `source` is resolved already
    /// (local paths absolute): the caller parsed it once.
    pub fn ensure_image(
        &self,
        source: &ImageSource,
        policy: PullPolicy,
        progress: &dyn Progress,
    ) -> Result<ImageRecord, EngineError> {
        let name = source.to_string();
        let wrap = |error| EngineError::Image {
            image: name.clone(),
            source: Box::new(error),
        };
        if policy != PullPolicy::Always {
            // By the one naming rule: `mybusybox` is the image imported
            // as `--name mybusybox`, found here without a registry.
            if let Some(record) = self
                .images
                .records
                .resolve(&name)
                .map_err(|e| wrap(e.into()))?
            {
                self.unpack(&record, progress).map_err(wrap)?;
                return Ok(record);
            }
            if policy == PullPolicy::Never {
                return Err(wrap(ImageError::Invalid(format!(
                    "{name} is not in the image store and imagePullPolicy is Never"
                ))));
            }
        }
        match source {
            ImageSource::Registry(reference) => pull::pull(
                &self.images,
                reference,
                &PullOptions {
                    limits: self.image_limits,
                    ..PullOptions::default()
                },
                Some(&self.snapshots),
                progress,
            )
            .map_err(wrap),
            _ => import::import(
                &self.images,
                source,
                &ImportOptions {
                    limits: self.image_limits,
                    ..ImportOptions::default()
                },
                Some(&self.snapshots),
                progress,
            )
            .map_err(wrap),
        }
    }

    /// The manifest digest image `name` resolves to in the store now (by
    /// [`ImageRecords::resolve`](crate::image::ImageRecords::resolve)).
    pub fn image_digest(&self, name: &str) -> Option<String> {
        self.images
            .records
            .resolve(name)
            .ok()
            .flatten()
            .map(|r| r.manifest.to_string())
    }

    /// Unpacks the image's layers that are not unpacked yet, under the
    /// engine's [`ImageLimits`].
    pub fn unpack(&self, record: &ImageRecord, progress: &dyn Progress) -> Result<(), ImageError> {
        self.snapshots
            .unpack(&self.images.store, record, &self.image_limits, progress)
    }
}

/// Container snapshots prepared from image `name`, compared by the naming
/// rule: a snapshot that names its image `base` (as records from before
/// the rule did) uses `docker.io/library/base:latest`.
pub fn users_of(snapshots: &OverlaySnapshotter, name: &str) -> Result<Vec<String>, ImageError> {
    let name = canonical_name(name);
    Ok(snapshots
        .list()
        .map_err(unpack_error)?
        .into_iter()
        .filter(|s| canonical_name(&s.image) == name)
        .map(|s| s.key)
        .collect())
}

/// Removes an image and then what only it referenced.
pub fn remove_image(
    images: &Images,
    snapshots: &OverlaySnapshotter,
    name: &str,
    force: bool,
) -> Result<gc::GcReport, ImageError> {
    let _lock = images.exclusive_lock()?;
    let record = images.records.find(name)?;
    let users = users_of(snapshots, &record.name)?;
    if !users.is_empty() && !force {
        return Err(ImageError::InUse {
            name: record.name,
            users,
        });
    }
    images.records.remove(&record.name)?;
    gc::collect(images, snapshots)
}

/// Removes every image no container snapshot uses, then collects garbage.
pub fn prune_images(
    images: &Images,
    snapshots: &OverlaySnapshotter,
) -> Result<(Vec<String>, gc::GcReport), ImageError> {
    let _lock = images.exclusive_lock()?;
    let mut removed = Vec::new();
    for record in images.records.list()? {
        if users_of(snapshots, &record.name)?.is_empty() {
            images.records.remove(&record.name)?;
            removed.push(record.name);
        }
    }
    Ok((removed, gc::collect(images, snapshots)?))
}

/// A snapshot error as the image subsystem reports it.
pub(super) fn unpack_error(error: SnapshotError) -> ImageError {
    ImageError::Unpack(Box::new(error))
}

/// The engine's snapshotter unpacks what the image subsystem fetched; a
/// bound crossed while unpacking becomes an error naming the image.
impl LayerUnpacker for OverlaySnapshotter {
    fn unpack(
        &self,
        store: &ContentStore,
        record: &ImageRecord,
        limits: &ImageLimits,
        progress: &dyn Progress,
    ) -> Result<(), ImageError> {
        self.ensure_layers_within(store, &record.layers, limits, progress)
            .map_err(|error| match error {
                SnapshotError::TooLarge { digest, exceeded } => ImageError::TooLarge(TooLarge {
                    image: record.name.clone(),
                    layer: digest,
                    bound: exceeded.bound,
                    limit: exceeded.limit,
                    declared: None,
                }),
                error => unpack_error(error),
            })
    }
}
