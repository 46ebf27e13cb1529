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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cni::RuntimeConf;
use crate::state::atomic::{fsync_dir, write_json_atomic};
use crate::state::nofollow::{create_dir_beneath, refuse_links_beneath};
use crate::state::records::read_bounded;

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

    /// The container's records in attach order.
    pub fn load(&self, container: &str) -> Result<Vec<Record>, CacheError> {
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
            let bytes = read_bounded(&path).map_err(|source| CacheError::Read {
                path: path.clone(),
                source,
            })?;
            let record: Record = serde_json::from_slice(&bytes)
                .map_err(|source| CacheError::Parse { path, source })?;
            records.push(record);
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
