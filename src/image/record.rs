//! Image records: a name mapped to what it resolved to, stored one JSON file
//! per image under `<root>/images`, each written atomically.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use crate::manifest::reference::Reference;
use crate::state::atomic::write_json_atomic;

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
    #[error("{op} image record {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("image record {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no image named {0:?} (see berth image ls)")]
    NotFound(String),
    #[error("{name:?} matches several images: {}", .matches.join(", "))]
    Ambiguous { name: String, matches: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct ImageRecords {
    dir: PathBuf,
}

impl ImageRecords {
    pub fn open(root: &Path) -> Result<Self, RecordError> {
        let dir = root.join("images");
        fs::create_dir_all(&dir).map_err(|source| RecordError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        Ok(ImageRecords { dir })
    }

    /// Names contain `/`, `:` and `@`, so files are named by the name's digest.
    fn path(&self, name: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", Digest::of(name.as_bytes()).hex()))
    }

    pub fn put(&self, record: &ImageRecord) -> Result<(), RecordError> {
        let path = self.path(&record.name);
        write_json_atomic(&path, record).map_err(|source| RecordError::Io {
            op: "write",
            path,
            source,
        })
    }

    pub fn get_exact(&self, name: &str) -> Result<Option<ImageRecord>, RecordError> {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| RecordError::Corrupt { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RecordError::Io {
                op: "read",
                path,
                source,
            }),
        }
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
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(RecordError::NotFound(name.to_string()))
            }
            Err(source) => Err(RecordError::Io {
                op: "remove",
                path,
                source,
            }),
        }
    }

    /// Every record, sorted by name; unreadable files are errors, not skipped.
    pub fn list(&self) -> Result<Vec<ImageRecord>, RecordError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| RecordError::Io {
            op: "list",
            path: self.dir.clone(),
            source,
        })?;
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = fs::read(&path).map_err(|source| RecordError::Io {
                op: "read",
                path: path.clone(),
                source,
            })?;
            let record = serde_json::from_slice(&bytes)
                .map_err(|source| RecordError::Corrupt { path, source })?;
            records.push(record);
        }
        records.sort_by(|a: &ImageRecord, b| a.name.cmp(&b.name));
        Ok(records)
    }
}
