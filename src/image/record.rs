//! Image records: a name mapped to what it resolved to, stored one JSON file
//! per image under `<root>/images`, each written atomically.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use crate::manifest::reference::canonical_name;
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

    /// The image `name` names by berth's one naming rule
    /// ([`canonical_name`]): the record of its canonical name (`mybusybox`
    /// finds `docker.io/library/mybusybox:latest`); else a record under
    /// the name exactly as given; else a record written before names were
    /// normalized whose name normalizes to the same (an old `--name
    /// mybusybox` import), the newest when several do. None when no record
    /// matches: the caller pulls or imports by its policy.
    pub fn resolve(&self, name: &str) -> Result<Option<ImageRecord>, RecordError> {
        let canonical = canonical_name(name);
        if let Some(record) = self.get_exact(&canonical)? {
            return Ok(Some(record));
        }
        if canonical != name {
            if let Some(record) = self.get_exact(name)? {
                return Ok(Some(record));
            }
        }
        Ok(self
            .list()?
            .into_iter()
            .filter(|record| canonical_name(&record.name) == canonical)
            .max_by_key(|record| record.created))
    }

    /// Finds an image by name ([`ImageRecords::resolve`]) or by a prefix of
    /// at least 12 hex characters of its manifest digest.
    pub fn find(&self, name: &str) -> Result<ImageRecord, RecordError> {
        if let Some(record) = self.resolve(name)? {
            return Ok(record);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, manifest: &[u8], created: u64) -> ImageRecord {
        ImageRecord {
            name: name.to_string(),
            source: "oci-layout:/srv/busybox".into(),
            target: Digest::of(manifest),
            target_media_type: super::super::oci::OCI_MANIFEST.into(),
            manifest: Digest::of(manifest),
            config: Digest::of(b"config"),
            platform: "linux/amd64".into(),
            layers: Vec::new(),
            created,
        }
    }

    fn records_with(records: &[ImageRecord]) -> (tempfile::TempDir, ImageRecords) {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageRecords::open(dir.path()).unwrap();
        for record in records {
            store.put(record).unwrap();
        }
        (dir, store)
    }

    fn resolved(store: &ImageRecords, name: &str) -> Option<Digest> {
        store.resolve(name).unwrap().map(|r| r.manifest)
    }

    #[test]
    fn a_short_name_resolves_to_the_record_of_its_normalized_reference() {
        let (_dir, store) = records_with(&[record("docker.io/library/mybusybox:latest", b"m", 1)]);
        for name in [
            "mybusybox",
            "mybusybox:latest",
            "library/mybusybox",
            "docker.io/library/mybusybox:latest",
        ] {
            assert_eq!(resolved(&store, name), Some(Digest::of(b"m")), "{name}");
        }
        assert_eq!(resolved(&store, "mybusybox:v2"), None);
        assert_eq!(resolved(&store, "other"), None);
    }

    #[test]
    fn a_record_named_before_names_were_normalized_still_resolves() {
        // Regression: `image import --name mybusybox` used to record the
        // name as given; such records must stay reachable by either name.
        let (_dir, store) = records_with(&[record("mybusybox", b"old", 1)]);
        assert_eq!(resolved(&store, "mybusybox"), Some(Digest::of(b"old")));
        assert_eq!(
            resolved(&store, "docker.io/library/mybusybox:latest"),
            Some(Digest::of(b"old"))
        );
    }

    #[test]
    fn the_normalized_record_wins_over_old_ones_and_the_newest_old_one_over_older() {
        let (_dir, store) = records_with(&[
            record("mybusybox", b"old", 1),
            record("mybusybox:latest", b"newer", 2),
        ]);
        assert_eq!(resolved(&store, "mybusybox"), Some(Digest::of(b"old")));
        assert_eq!(
            resolved(&store, "docker.io/library/mybusybox"),
            Some(Digest::of(b"newer"))
        );
        store
            .put(&record("docker.io/library/mybusybox:latest", b"new", 0))
            .unwrap();
        assert_eq!(resolved(&store, "mybusybox"), Some(Digest::of(b"new")));
    }

    #[test]
    fn local_sources_and_digest_prefixes_still_find_their_records() {
        let source = "oci-layout:/srv/busybox:latest";
        let (_dir, store) = records_with(&[record(source, b"local", 1)]);
        assert_eq!(resolved(&store, source), Some(Digest::of(b"local")));
        let digest = Digest::of(b"local");
        let prefix = &digest.hex()[..12];
        assert_eq!(store.find(prefix).unwrap().name, source);
        assert!(matches!(
            store.find("busybox"),
            Err(RecordError::NotFound(name)) if name == "busybox"
        ));
    }
}
