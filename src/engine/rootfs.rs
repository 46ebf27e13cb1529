//! What a container's root filesystem is made over: an image's unpacked
//! layers, or a plain directory (`rootfs:DIR`, as `ctr run --rootfs`). A
//! directory is the overlay's only lower layer, as it is: no layers, no
//! image config (so the command must be given; the environment is PATH
//! only, the user root, the working directory `/`), and never written.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Engine, EngineError};
use crate::image::{ImageRecord, ImageSource, Progress};
use crate::manifest::{ContainerSpec, PullPolicy};
use crate::runtime::spec::ImageConfig;
use crate::snapshot::overlay::check_lower_dir;
use crate::snapshot::{SnapshotError, Snapshotter};

/// What a container's rootfs is made over.
#[derive(Debug, Clone)]
pub enum Base {
    /// A stored image, its layers unpacked.
    Image(ImageRecord),
    /// A host directory (`rootfs:DIR`, absolute and checked).
    Directory(PathBuf),
}

impl Base {
    /// The name records, `ps` and `inspect` show: the image's, or `rootfs:DIR`.
    pub fn name(&self) -> String {
        match self {
            Base::Image(image) => image.name.clone(),
            Base::Directory(dir) => ImageSource::Rootfs { path: dir.clone() }.to_string(),
        }
    }

    /// What the name resolved to: the image's manifest digest, or the
    /// directory's [`identity`] (empty when it cannot be read now).
    pub fn resolved(&self) -> String {
        match self {
            Base::Image(image) => image.manifest.to_string(),
            Base::Directory(dir) => identity(dir).unwrap_or_default(),
        }
    }
}

/// A rootfs directory's identity as fingerprints see it:
/// `rootfs:DEV:INODE:MTIME_NS`, where the change marker is the newest
/// modification time among the directory itself and its top-level entries
/// (links not followed). Cheap by design: a change deeper in the tree that
/// touches nothing at the top is not seen (replace the tree, or touch it).
pub fn identity(dir: &Path) -> std::io::Result<String> {
    let metadata = fs::symlink_metadata(dir)?;
    if !metadata.is_dir() {
        return Err(std::io::Error::from(std::io::ErrorKind::NotADirectory));
    }
    let mut newest = mtime_ns(&metadata);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        newest = newest.max(mtime_ns(&entry.metadata()?));
    }
    Ok(format!(
        "rootfs:{}:{}:{newest}",
        metadata.dev(),
        metadata.ino()
    ))
}

fn mtime_ns(metadata: &fs::Metadata) -> i128 {
    i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec())
}

impl Engine {
    /// The image `source` names, found or fetched by `policy`; or, for
    /// `rootfs:DIR`, the directory, checked (it exists, is a directory, and
    /// has no symlink on its path).
    pub fn ensure_base(
        &self,
        id: &str,
        source: &ImageSource,
        policy: PullPolicy,
        progress: &dyn Progress,
    ) -> Result<Base, EngineError> {
        match source.rootfs_dir() {
            Some(dir) => {
                check_lower_dir(dir).map_err(|e| snapshot_error(id, e))?;
                Ok(Base::Directory(dir.to_path_buf()))
            }
            None => self.ensure_image(source, policy, progress).map(Base::Image),
        }
    }

    /// The process-shaping config of `base`: the image's, or for a
    /// directory the defaults, once the spec gives the command a directory
    /// has no config to supply.
    pub(super) fn base_config(
        &self,
        id: &str,
        base: &Base,
        spec: &ContainerSpec,
    ) -> Result<ImageConfig, EngineError> {
        match base {
            Base::Image(image) => self.image_config(id, image),
            Base::Directory(dir) => {
                let given = |c: &Option<Vec<String>>| c.as_ref().is_some_and(|c| !c.is_empty());
                if !given(&spec.command) && !given(&spec.args) {
                    return Err(EngineError::Invalid {
                        id: id.to_string(),
                        message: format!(
                            "rootfs:{} has no image config to take a command from: give one \
                             (berth run --rootfs DIR COMMAND..., or command: in the manifest)",
                            dir.display()
                        ),
                    });
                }
                Ok(ImageConfig::default())
            }
        }
    }

    /// Prepares snapshot `key` over `base`.
    pub(super) fn prepare_snapshot_over(
        &self,
        key: &str,
        base: &Base,
        ephemeral: bool,
    ) -> Result<(), SnapshotError> {
        match base {
            Base::Image(image) => {
                self.snapshots
                    .prepare_with(key, &image.name, &image.chain_ids(), ephemeral)
            }
            Base::Directory(dir) => {
                self.snapshots
                    .prepare_over_dir(key, &base.name(), dir, ephemeral)
            }
        }
        .map(drop)
    }
}

fn snapshot_error(id: &str, source: SnapshotError) -> EngineError {
    EngineError::Snapshot {
        id: id.to_string(),
        source: Box::new(source),
    }
}
