//! Image records: a name mapped to what it resolved to, stored one JSON file
//! per image under `<root>/images`, each written atomically.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use crate::manifest::reference::Reference;
use crate::state::records::RecordStore;

/// What berth knows about one stored image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// The name the image is known by (a normalized reference or a local source).
    pub name: String,
    /// Where it came from, as given to import or pull.
    pub source: String,
    /// What the name points to: an image index or a manifest.
    pub target: Digest,
    pub target_media_type: String,
    /// The manifest for this host's platform.
    pub manifest: Digest,
    pub config: Digest,
    /// `os/architecture[/variant]`.
    pub platform: String,
    /// Bottom layer first.
    pub layers: Vec<LayerRecord>,
    /// Seconds since the epoch when it was stored.
    pub created: u64,
}

impl ImageRecord {
    /// Compressed size of the layers plus config.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Every blob the image needs kept.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut blobs = vec![
            self.target.clone(),
            self.manifest.clone(),
            self.config.clone(),
        ];
        blobs.extend(self.layers.iter().map(|l| l.digest.clone()));
        blobs
    }

    pub fn chain_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.chain_id.clone()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRecord {
    /// The blob's digest (compressed, as stored).
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The digest of the uncompressed tar, from the image config.
    pub diff_id: Digest,
    /// The snapshot key of this layer and everything below it.
    pub chain_id: Digest,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] crate::state::records::RecordError),
    #[error("no image named {0:?} (see berth image ls)")]
    NotFound(String),
    #[error("{name:?} matches several images: {}", .matches.join(", "))]
    Ambiguous { name: String, matches: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct ImageRecords {
    store: RecordStore<ImageRecord>,
}

impl ImageRecords {
    /// The records in `dir` (the layout's `images`).
    pub fn open(dir: &Path) -> Result<Self, RecordError> {
        Ok(ImageRecords {
            store: RecordStore::new(dir.to_path_buf(), "image"),
        })
    }

    /// Names contain `/`, `:` and `@`, so files are named by the name's digest.
    fn key(name: &str) -> String {
        Digest::of(name.as_bytes()).hex().to_string()
    }

    pub fn put(&self, record: &ImageRecord) -> Result<(), RecordError> {
        Ok(self.store.put(&Self::key(&record.name), record)?)
    }

    pub fn get_exact(&self, name: &str) -> Result<Option<ImageRecord>, RecordError> {
        Ok(self.store.get(&Self::key(name))?)
    }

    /// Finds an image by its exact name, by a reference that normalizes to it
    /// (`busybox` for `docker.io/library/busybox:latest`), or by a prefix of
    /// at least 12 hex characters of its manifest digest.
    pub fn find(&self, name: &str) -> Result<ImageRecord, RecordError> {
        if let Some(record) = self.get_exact(name)? {
            return Ok(record);
        }
        if let Ok(reference) = Reference::parse(name) {
            if let Some(record) = self.get_exact(&reference.to_string())? {
                return Ok(record);
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<ImageRecord> = self
                .list()?
                .into_iter()
                .filter(|r| r.manifest.hex().starts_with(hex) || r.target.hex().starts_with(hex))
                .collect();
            match matches.len() {
                1 => return Ok(matches.into_iter().next().expect("one match")),
                0 => {}
                _ => {
                    return Err(RecordError::Ambiguous {
                        name: name.to_string(),
                        matches: matches.into_iter().map(|r| r.name).collect(),
                    })
                }
            }
        }
        Err(RecordError::NotFound(name.to_string()))
    }

    pub fn remove(&self, name: &str) -> Result<(), RecordError> {
        if self.store.remove(&Self::key(name))? {
            Ok(())
        } else {
            Err(RecordError::NotFound(name.to_string()))
        }
    }

    /// Every record, sorted by name; unreadable files are errors, not skipped.
    pub fn list(&self) -> Result<Vec<ImageRecord>, RecordError> {
        let mut records = self.store.list()?;
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }
}
