//! Images: references, the content store, image records, import from local
//! sources, registry pull, and garbage collection.

pub mod digest;
pub mod gc;
pub mod import;
pub mod oci;
pub mod pull;
pub mod record;
pub mod reference;
pub mod store;

use std::path::PathBuf;

pub use digest::Digest;
pub use record::{ImageRecord, ImageRecords};
pub use reference::{ImageSource, Reference, ReferenceError};
pub use store::ContentStore;

use crate::snapshot::{OverlaySnapshotter, Progress, SnapshotError, Snapshotter};
use crate::state::lock::{self, Lock, LockError};
use crate::state::Paths;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Record(#[from] record::RecordError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("invalid image: {0}")]
    Invalid(String),
    #[error("{source_name}: {message}")]
    Source {
        source_name: String,
        message: String,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("image index {target} has no manifest for {wanted} (it has: {})", if .available.is_empty() { "none with a platform".to_string() } else { .available.join(", ") })]
    NoPlatform {
        target: digest::Digest,
        wanted: String,
        available: Vec<String>,
    },
    #[error("image {name:?} is used by container snapshot(s) {}; remove them first or use --force", .users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("pull {reference}: {message}")]
    Pull { reference: String, message: String },
}

/// The image subsystem over one berth root: content store, records and layer
/// snapshots, with the lock that keeps imports and garbage collection apart.
pub struct Images {
    pub paths: Paths,
    pub store: ContentStore,
    pub records: ImageRecords,
    pub snapshots: OverlaySnapshotter,
}

impl Images {
    pub fn open(paths: &Paths) -> Result<Self, ImageError> {
        Ok(Images {
            paths: paths.clone(),
            store: ContentStore::open(&paths.root)?,
            records: ImageRecords::open(&paths.root)?,
            snapshots: OverlaySnapshotter::open(&paths.root)?,
        })
    }

    /// Held while adding content: many imports at once, never during gc.
    pub fn shared_lock(&self) -> Result<Lock, ImageError> {
        Ok(lock::acquire(
            &self.paths.store_lock(),
            lock::Mode::Shared,
            true,
        )?)
    }

    /// Held while removing content.
    pub fn exclusive_lock(&self) -> Result<Lock, ImageError> {
        Ok(lock::acquire(
            &self.paths.store_lock(),
            lock::Mode::Exclusive,
            true,
        )?)
    }

    /// Unpacks the image's layers that are not unpacked yet.
    pub fn unpack(&self, record: &ImageRecord, progress: &dyn Progress) -> Result<(), ImageError> {
        Ok(self
            .snapshots
            .ensure_layers(&self.store, &record.layers, progress)?)
    }

    /// Unpacks (when asked) and then records an image: the record comes
    /// last, so a bad layer leaves no image behind.
    pub fn store_resolved(
        &self,
        record: ImageRecord,
        unpack: bool,
        progress: &dyn Progress,
    ) -> Result<ImageRecord, ImageError> {
        if unpack {
            self.unpack(&record, progress)?;
        }
        self.records.put(&record)?;
        Ok(record)
    }

    /// Container snapshots prepared from `name`.
    pub fn users_of(&self, name: &str) -> Result<Vec<String>, ImageError> {
        Ok(self
            .snapshots
            .list()?
            .into_iter()
            .filter(|s| s.image == name)
            .map(|s| s.key)
            .collect())
    }

    /// Removes an image and then what only it referenced.
    pub fn remove(&self, name: &str, force: bool) -> Result<gc::GcReport, ImageError> {
        let _lock = self.exclusive_lock()?;
        let record = self.records.find(name)?;
        let users = self.users_of(&record.name)?;
        if !users.is_empty() && !force {
            return Err(ImageError::InUse {
                name: record.name,
                users,
            });
        }
        self.records.remove(&record.name)?;
        gc::collect(self)
    }

    /// Removes every image no container snapshot uses, then collects garbage.
    pub fn prune(&self) -> Result<(Vec<String>, gc::GcReport), ImageError> {
        let _lock = self.exclusive_lock()?;
        let mut removed = Vec::new();
        for record in self.records.list()? {
            if self.users_of(&record.name)?.is_empty() {
                self.records.remove(&record.name)?;
                removed.push(record.name);
            }
        }
        Ok((removed, gc::collect(self)?))
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
