//! The CNI result cache: one record per (container, network) at
//! `<root>/cni/results/<container>/<network>.json`.
//!
//! Protocol: a record without a result is written (atomically) *before* ADD
//! starts, and rewritten with the result after ADD succeeded. So a crash at
//! any instant leaves either no record (nothing was started), a started
//! record (DEL without prevResult), or a full record (DEL with prevResult).
//! A record is removed only after its DEL succeeded.
//!
//! A directory per container (instead of `<container>-<network>.json`) keeps
//! names unambiguous: both may contain `-`.
//!
//! A record that does not parse (a torn write, a bad disk) would leave the
//! attachment with no DEL for ever: [`Cache::load_rebuilding`] quarantines
//! it (`<network>.json.corrupt-<unix-secs>`, see [`crate::state::quarantine`])
//! and puts in its place one its caller rebuilds from what else is known
//! (the network's definition, the container's id), marked `rebuilt`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cni::RuntimeConf;
use crate::state::atomic::{fsync_dir, write_json_atomic};
use crate::state::nofollow::{create_dir_beneath, refuse_links_beneath};
use crate::state::quarantine::{now_unix_secs, quarantine, FileIdentity, Quarantine};
use crate::state::records::read_bounded_identified;

/// Everything DEL and CHECK need, and what the caller wants back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub container: String,
    pub network: String,
    /// Position in the container's network list (eth<index>).
    pub index: usize,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The exact list ADD ran with.
    pub conflist: Value,
    /// The exact runtime inputs ADD ran with (ifname, netns, args, capabilities).
    pub runtime: RuntimeConf,
    /// The ADD result; `None` while the ADD is started but not finished.
    #[serde(default)]
    pub result: Option<Value>,
    /// While the ADD is unfinished: the last result a plugin in the chain
    /// returned, which a DEL after a crash uses as `prevResult`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<Value>,
    /// Rebuilt in place of a record that did not parse: its result (when
    /// any) is what berth could piece together, enough for DEL and for
    /// `/etc/hosts`, not for CHECK.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebuilt: bool,
}

impl Record {
    /// What DEL gets as `prevResult`: the result, else the partial one.
    pub fn prev_result(&self) -> Option<&Value> {
        self.result.as_ref().or(self.partial.as_ref())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot write CNI cache record {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read CNI cache {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("CNI cache record {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("CNI cache record {path} is not valid ({reason}) and cannot be moved aside: {source}")]
    Quarantine {
        path: PathBuf,
        reason: String,
        source: io::Error,
    },
    #[error("CNI cache record {path} is not valid ({reason}; moved aside to {quarantined}) and cannot be rebuilt: {why}")]
    Rebuild {
        path: PathBuf,
        reason: String,
        quarantined: PathBuf,
        why: String,
    },
}

/// Makes a record in place of a lost one, given the records that parsed;
/// an error says why it cannot.
pub type Rebuild<'a> = dyn Fn(&Lost, &[Record]) -> Result<Record, String> + 'a;

/// Decides about a record file that does not parse: an error, or a record
/// in its place, or none.
type OnCorrupt<'a> =
    dyn FnMut(FileIdentity, &Path, serde_json::Error) -> Result<Option<Record>, CacheError> + 'a;

/// A cache record that did not parse and was moved aside, for its
/// rebuilding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub container: String,
    pub network: String,
    /// Where it was moved.
    pub quarantined: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (the layout's `cni/results`).
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, container: &str, network: &str) -> PathBuf {
        self.dir.join(container).join(format!("{network}.json"))
    }

    /// Writes `record` atomically (temp file, fsync, rename, fsync dir).
    pub fn write(&self, record: &Record) -> Result<(), CacheError> {
        let path = self.path(&record.container, &record.network);
        let error = |source| CacheError::Write {
            path: path.clone(),
            source,
        };
        let parent = self.dir.join(&record.container);
        if !parent.exists() {
            fs::create_dir_all(&self.dir).map_err(error)?;
            create_dir_beneath(&self.dir, &parent, 0o700).map_err(error)?;
            fsync_dir(&self.dir).map_err(error)?;
        }
        refuse_links_beneath(&self.dir, &path).map_err(error)?;
        write_json_atomic(&path, record).map_err(error)
    }

    /// The container's records in attach order; one that does not parse
    /// is an error (see [`Cache::load_rebuilding`]).
    pub fn load(&self, container: &str) -> Result<Vec<Record>, CacheError> {
        self.load_with(container, &mut |_, path, source| {
            Err(CacheError::Parse {
                path: path.to_path_buf(),
                source,
            })
        })
    }

    /// [`Cache::load`], where a record that does not parse is quarantined
    /// and replaced by the one `rebuild` makes of the others and what it
    /// lost (written back, so the next load finds it); the warning names
    /// both files.
    pub fn load_rebuilding(
        &self,
        container: &str,
        rebuild: &Rebuild<'_>,
    ) -> Result<Vec<Record>, CacheError> {
        let mut lost = Vec::new();
        let mut records = self.load_with(container, &mut |identity, path, source| {
            let reason = source.to_string();
            let quarantined = match quarantine(path, identity, now_unix_secs()) {
                Ok(Quarantine::Moved(to)) => to,
                // Rewritten or removed meanwhile: the next load sees that.
                Ok(Quarantine::Replaced | Quarantine::Gone) => return Ok(None),
                Err(source) => {
                    return Err(CacheError::Quarantine {
                        path: path.to_path_buf(),
                        reason,
                        source,
                    })
                }
            };
            let network = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            lost.push((
                Lost {
                    container: container.to_string(),
                    network,
                    quarantined,
                },
                path.to_path_buf(),
                reason,
            ));
            Ok(None)
        })?;
        for (lost, path, reason) in lost {
            let mut record = rebuild(&lost, &records).map_err(|why| CacheError::Rebuild {
                path: path.clone(),
                reason: reason.clone(),
                quarantined: lost.quarantined.clone(),
                why,
            })?;
            record.rebuilt = true;
            self.write(&record)?;
            tracing::warn!(
                "CNI cache record {path} is not valid ({reason}); moved it aside to {quarantined} \
                 and rebuilt it from network {network}'s definition, so that its DEL can run",
                path = path.display(),
                quarantined = lost.quarantined.display(),
                network = lost.network,
            );
            records.push(record);
        }
        records.sort_by_key(|r| r.index);
        Ok(records)
    }

    /// The container's records in attach order; `corrupt` decides about
    /// one that does not parse (an error, or a record in its place, or none).
    fn load_with(
        &self,
        container: &str,
        corrupt: &mut OnCorrupt<'_>,
    ) -> Result<Vec<Record>, CacheError> {
        let dir = self.dir.join(container);
        refuse_links_beneath(&self.dir, &dir).map_err(|source| CacheError::Read {
            path: dir.clone(),
            source,
        })?;
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CacheError::Read { path: dir, source }),
        };
        let mut records = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| CacheError::Read {
                    path: dir.clone(),
                    source,
                })?
                .path();
            let is_record = path.extension().is_some_and(|e| e == "json")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_record {
                continue;
            }
            let (bytes, identity) =
                read_bounded_identified(&path).map_err(|source| CacheError::Read {
                    path: path.clone(),
                    source,
                })?;
            match serde_json::from_slice(&bytes) {
                Ok(record) => records.push(record),
                Err(source) => records.extend(corrupt(identity, &path, source)?),
            }
        }
        records.sort_by_key(|r| r.index);
        Ok(records)
    }

    /// Every container with a cache directory.
    pub fn containers(&self) -> Result<Vec<String>, CacheError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(CacheError::Read {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes one record, and the container's directory once it holds no
    /// record (see [`Cache::remove_leftovers`]).
    pub fn remove(&self, container: &str, network: &str) -> Result<(), CacheError> {
        let path = self.path(container, network);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(CacheError::Write { path, source: e })
            }
            _ => {}
        }
        self.remove_leftovers(container);
        Ok(())
    }

    /// Removes the container's directory if it holds no record: empty, or
    /// only temp files of writes a crash interrupted (a kill before the
    /// first record was renamed into place leaves just such a directory).
    pub fn remove_leftovers(&self, container: &str) {
        let dir = self.dir.join(container);
        let only_temps = fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .all(|e| e.file_name().to_string_lossy().starts_with('.'))
            })
            .unwrap_or(false);
        if only_temps {
            let _ = fs::remove_dir_all(&dir);
            let _ = fsync_dir(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(container: &str, network: &str, index: usize) -> Record {
        Record {
            container: container.into(),
            network: network.into(),
            index,
            aliases: vec!["db".into()],
            conflist: json!({"name": network}),
            runtime: RuntimeConf {
                container_id: container.into(),
                ifname: format!("eth{index}"),
                ..RuntimeConf::default()
            },
            result: None,
            partial: None,
            rebuilt: false,
        }
    }

    #[test]
    fn records_round_trip_in_attach_order_and_names_with_dashes_do_not_mix() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path().join("results"));
        cache.write(&record("web", "b", 1)).unwrap();
        cache.write(&record("web", "a-x", 0)).unwrap();
        cache.write(&record("web-a", "x", 0)).unwrap();
        let mut done = record("web", "b", 1);
        done.result = Some(json!({"ips": []}));
        cache.write(&done).unwrap();
        let web = cache.load("web").unwrap();
        assert_eq!(web.len(), 2);
        assert_eq!(web[0].network, "a-x");
        assert_eq!(web[1], done);
        assert_eq!(cache.containers().unwrap(), ["web", "web-a"]);
        cache.remove("web", "a-x").unwrap();
        cache.remove("web", "b").unwrap();
        cache.remove("web", "b").unwrap();
        assert!(cache.load("web").unwrap().is_empty());
        assert_eq!(cache.containers().unwrap(), ["web-a"]);
    }

    /// Regression: a truncated record made every load fail, so neither a
    /// repair nor `rm -f` could DEL the container's attachments.
    #[test]
    fn a_record_that_does_not_parse_is_quarantined_and_rebuilt() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path().join("results"));
        cache.write(&record("web", "a", 0)).unwrap();
        cache.write(&record("web", "b", 1)).unwrap();
        let torn = cache.path("web", "b");
        fs::write(&torn, "{\"container\": \"web\", \"netw").unwrap();
        assert!(matches!(cache.load("web"), Err(CacheError::Parse { .. })));
        let records = cache
            .load_rebuilding("web", &|lost, others| {
                assert_eq!(lost.network, "b");
                assert_eq!(others.len(), 1, "the records that parsed");
                Ok(record(&lost.container, &lost.network, 1))
            })
            .unwrap();
        assert_eq!(records.len(), 2);
        assert!(records[1].rebuilt && !records[0].rebuilt);
        let kept = crate::state::quarantine::quarantined_copies(&torn);
        assert_eq!(kept.len(), 1);
        assert!(fs::read_to_string(&kept[0]).unwrap().ends_with("netw"));
        // Written back: a plain load reads it now.
        assert_eq!(cache.load("web").unwrap(), records);
    }

    #[test]
    fn a_record_that_cannot_be_rebuilt_is_an_error_naming_both_files() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path().join("results"));
        cache.write(&record("web", "a", 0)).unwrap();
        fs::write(cache.path("web", "a"), "").unwrap();
        let error = cache
            .load_rebuilding("web", &|_, _| Err("network a is unknown".into()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("web/a.json is not valid"), "{error}");
        assert!(error.contains("a.json.corrupt-"), "{error}");
        assert!(error.contains("network a is unknown"), "{error}");
    }

    #[test]
    fn a_directory_with_only_an_interrupted_write_is_a_leftover_and_one_with_a_record_is_not() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path().join("results"));
        cache.write(&record("web", "a", 0)).unwrap();
        let crashed = cache.dir().join("db");
        fs::create_dir_all(&crashed).unwrap();
        fs::write(crashed.join(".a.json.tmp-1-0"), "{").unwrap();
        cache.remove_leftovers("web");
        cache.remove_leftovers("db");
        assert_eq!(cache.containers().unwrap(), ["web"]);
    }
}
