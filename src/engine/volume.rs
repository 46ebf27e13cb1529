//! Named volumes: `<root>/volumes/<name>/data` holds the data and
//! `volume.json` beside it the record of the manifest that declared it.
//! Volumes that `berth run -v NAME:/path` made have data and no record:
//! nobody's to prune.
//!
//! A `volume.json` that does not parse is quarantined beside the data
//! (`volume.json.corrupt-<unix-secs>`, see [`crate::state::quarantine`]):
//! the volume then has no record but a quarantined one, and its owner is
//! unknown. It is neither a `berth run` volume nor any set's: its data is
//! kept, nothing prunes it, and no manifest set takes it over until a
//! person decides whose it is.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::labels::Fingerprint;
use crate::state::nofollow::create_dir_beneath;
use crate::state::quarantine::quarantined_copies;
use crate::state::records::{RecordError, RecordStore};

/// What apply records of a volume it created.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRecord {
    pub name: String,
    pub source: Option<String>,
    /// The manifest file that declared it.
    #[serde(default)]
    pub file: Option<String>,
    /// The line of its `metadata.name` in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub fingerprint: Option<Fingerprint>,
}

/// A volume on disk, with its record when apply made it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    /// The data directory containers mount.
    pub path: PathBuf,
    pub record: Option<VolumeRecord>,
    /// Its record was corrupt and moved aside here: who owns it is not
    /// known (see the module docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined_record: Option<PathBuf>,
}

impl Volume {
    /// Why nobody may take it over, when its record was quarantined.
    pub fn unknown_owner(&self) -> Option<String> {
        let quarantined = self.quarantined_record.as_ref()?;
        Some(format!(
            "its record was corrupt and is kept at {}; berth cannot tell which manifest set \
             owns it, so none takes it over (its data is kept; restore the record, or remove \
             that file to make it an unowned volume)",
            quarantined.display()
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {name}: cannot {op} {path}: {source}")]
    Io {
        name: String,
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("no volume named {0}")]
    NotFound(String),
    #[error(transparent)]
    Record(Box<RecordError>),
}

/// `volume.json`.
const RECORD_KEY: &str = "volume";

/// The volumes under one root.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    /// The volumes in `dir` (the layout's `volumes`).
    pub fn new(dir: PathBuf) -> Self {
        Volumes { dir }
    }

    /// The data directory of `name`.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("data")
    }

    /// Creates `name`'s data directory (kept if it exists) through no link:
    /// the volume's own directory is private (0700) so a setuid file a
    /// container leaves in its data is out of other users' reach; the data
    /// directory is 0755 like a fresh directory in an image.
    pub fn create_data_dir(&self, name: &str) -> io::Result<()> {
        let root = self.dir.parent().unwrap_or(&self.dir);
        create_dir_beneath(root, &self.dir, 0o700)?;
        create_dir_beneath(&self.dir, &self.dir.join(name), 0o700)?;
        create_dir_beneath(&self.dir, &self.data_dir(name), 0o755)
    }

    /// The record sits beside the data: `<name>/volume.json`.
    fn records(&self, name: &str) -> RecordStore<VolumeRecord> {
        RecordStore::new(self.dir.join(name), "volume")
    }

    /// Creates the data directory (kept if it exists) and writes the record.
    pub fn put(&self, record: &VolumeRecord) -> Result<(), VolumeError> {
        let io_error = |op, path: &Path| {
            let name = record.name.clone();
            let path = path.to_path_buf();
            move |source| VolumeError::Io {
                name,
                op,
                path,
                source,
            }
        };
        let data = self.data_dir(&record.name);
        self.create_data_dir(&record.name)
            .map_err(io_error("create", &data))?;
        self.records(&record.name)
            .put(RECORD_KEY, record)
            .map_err(|e| VolumeError::Record(Box::new(e)))
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        if !crate::network::is_valid_id(name) || !self.dir.join(name).is_dir() {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        // An unreadable or torn record reads as none (a corrupt one is
        // quarantined): the data is what counts.
        let records = self.records(name);
        let record = records.get(RECORD_KEY).ok().flatten();
        let quarantined_record = match record {
            Some(_) => None,
            None => quarantined_copies(&records.path(RECORD_KEY)).pop(),
        };
        Ok(Volume {
            name: name.to_string(),
            path: self.data_dir(name),
            record,
            quarantined_record,
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.iter().filter_map(|n| self.get(n).ok()).collect()
    }

    /// Deletes the volume and its data.
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        self.get(name)?;
        let dir = self.dir.join(name);
        fs::remove_dir_all(&dir).map_err(|source| VolumeError::Io {
            name: name.to_string(),
            op: "remove",
            path: dir,
            source,
        })
    }
}

impl super::Engine {
    /// A named volume's data directory.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.volumes().data_dir(name)
    }

    pub fn volumes(&self) -> Volumes {
        Volumes::new(self.paths.volumes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_kept_beside_the_data_and_run_volumes_have_none() {
        let root = tempfile::tempdir().unwrap();
        let volumes = Volumes::new(root.path().join("volumes"));
        volumes
            .put(&VolumeRecord {
                name: "data".into(),
                source: Some("/srv/site".into()),
                file: Some("vol.yaml".into()),
                line: None,
                fingerprint: None,
            })
            .unwrap();
        fs::create_dir_all(volumes.data_dir("scratch")).unwrap();
        fs::write(volumes.data_dir("data").join("keep"), "x").unwrap();
        let listed = volumes.list();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].name, "data");
        assert_eq!(
            listed[0].record.as_ref().unwrap().source.as_deref(),
            Some("/srv/site")
        );
        assert!(listed[1].record.is_none());
        // Recording again keeps the data.
        volumes
            .put(&VolumeRecord {
                name: "data".into(),
                source: Some("/srv/site".into()),
                file: None,
                line: None,
                fingerprint: None,
            })
            .unwrap();
        assert!(volumes.data_dir("data").join("keep").exists());
        volumes.remove("data").unwrap();
        assert!(matches!(volumes.get("data"), Err(VolumeError::NotFound(_))));
        assert!(matches!(
            volumes.remove("../etc"),
            Err(VolumeError::NotFound(_))
        ));
    }

    /// Regression: a torn `volume.json` made the volume read as one
    /// `berth run` made, nobody's: its owner was lost without a word.
    #[test]
    fn a_corrupt_record_is_quarantined_and_its_owner_is_unknown_not_nobody() {
        let root = tempfile::tempdir().unwrap();
        let volumes = Volumes::new(root.path().join("volumes"));
        volumes
            .put(&VolumeRecord {
                name: "data".into(),
                source: Some("/srv/site".into()),
                file: None,
                line: None,
                fingerprint: None,
            })
            .unwrap();
        fs::write(volumes.data_dir("data").join("keep"), "x").unwrap();
        let record = root.path().join("volumes/data/volume.json");
        fs::write(&record, "{\"name\": \"da").unwrap();
        let volume = volumes.get("data").unwrap();
        assert!(volume.record.is_none());
        let kept = volume.quarantined_record.clone().expect("quarantined");
        assert!(kept.starts_with(root.path().join("volumes/data")));
        assert_eq!(fs::read_to_string(&kept).unwrap(), "{\"name\": \"da");
        let why = volume.unknown_owner().unwrap();
        assert!(why.contains(&kept.display().to_string()), "{why}");
        // Still so on the next read, and the data is there.
        assert!(volumes.get("data").unwrap().unknown_owner().is_some());
        assert!(volumes.data_dir("data").join("keep").exists());
    }
}
