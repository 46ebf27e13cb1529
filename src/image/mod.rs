//! Images: references, the content store, image records, import from local
//! sources, registry pull, and garbage collection.

pub mod archive;
pub mod compression;
pub mod digest;
pub mod import;
pub mod limits;
pub mod oci;
pub mod progress;
pub mod pull;
pub mod record;
pub mod request_error;
pub mod save;
pub mod store;

use std::path::PathBuf;

pub use crate::manifest::reference::{ImageSource, Reference, ReferenceError};
pub use compression::Compression;
pub use digest::Digest;
pub use limits::{Bound, ImageLimits, TooLarge};
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use record::{ImageRecord, ImageRecords};
pub use store::ContentStore;

use crate::state::lock::{self, Lock, LockError};
use crate::state::Layout;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Record(#[from] record::RecordError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The unpacker (the engine's snapshotter) refused a layer.
    #[error(transparent)]
    Unpack(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The image crossed one of the [`ImageLimits`].
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
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

/// The image subsystem over one berth root: content store and records, with
/// the lock that keeps imports and garbage collection apart.
pub struct Images {
    pub paths: Layout,
    pub store: ContentStore,
    pub records: ImageRecords,
}

impl Images {
    pub fn open(paths: &Layout) -> Result<Self, ImageError> {
        paths.make_private().map_err(|source| ImageError::Io {
            op: "make private",
            path: paths.root.clone(),
            source,
        })?;
        Ok(Images {
            paths: paths.clone(),
            store: ContentStore::open(&paths.content())?,
            records: ImageRecords::open(&paths.image_records())?,
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

    /// Gives the image `source` names a second name, `target` (normalized
    /// by the naming rule): a record for the same manifest, no new content.
    /// A record already under that name is replaced, as a pull would.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord, ImageError> {
        let name = crate::manifest::reference::image_name(target)?;
        // Shared: no garbage collection may drop the blobs in between.
        let _lock = self.shared_lock()?;
        let record = self.records.find(source)?;
        let tagged = ImageRecord {
            name,
            created: crate::state::clock::unix_secs(),
            ..record
        };
        self.records.put(&tagged)?;
        Ok(tagged)
    }

    /// Unpacks (with `unpacker`, when given, under `limits`) and then
    /// records an image: the record comes last, so a bad layer leaves no
    /// image behind.
    pub fn store_resolved(
        &self,
        record: ImageRecord,
        unpacker: Option<&dyn LayerUnpacker>,
        limits: &ImageLimits,
        progress: &dyn Progress,
    ) -> Result<ImageRecord, ImageError> {
        if let Some(unpacker) = unpacker {
            unpacker.unpack(&self.store, &record, limits, progress)?;
        }
        self.records.put(&record)?;
        Ok(record)
    }
}

/// What turns an image's layers into something a container can run on,
/// between fetching the blobs and writing the record. The engine passes its
/// snapshotter; the image subsystem knows nothing of snapshots.
pub trait LayerUnpacker: Sync {
    /// Unpacks every layer of `record` not unpacked yet; an error refuses
    /// the image. A layer, or the image, that unpacks to more than `limits`
    /// allow is [`ImageError::TooLarge`], and what it had unpacked so far is
    /// gone.
    fn unpack(
        &self,
        store: &ContentStore,
        record: &ImageRecord,
        limits: &ImageLimits,
        progress: &dyn Progress,
    ) -> Result<(), ImageError>;
}
