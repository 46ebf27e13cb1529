//! The overlayfs snapshotter.
//!
//! ```text
//! <root>/snapshots/layers/<chain-id-hex>/fs          a committed layer
//! <root>/snapshots/layers/<chain-id-hex>/layer.json  its diff id and size
//! <root>/snapshots/tmp/                              layers being unpacked
//! <root>/snapshots/containers/<key>/{upper,work}     a container's writable layer
//! <root>/snapshots/containers/<key>/snapshot.json    its image and layers
//! ```

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

use super::unpack::{unpack_layer, Compression};
use super::{Mount, SnapshotError, SnapshotInfo, Snapshotter};
use crate::image::digest::Digest;
use crate::image::record::LayerRecord;
use crate::image::store::ContentStore;
use crate::image::{Progress, ProgressEvent};
use crate::state::atomic::{fsync_dir, temp_path_for, write_json_atomic};

/// The kernel copies mount options into one page.
const MAX_MOUNT_OPTIONS: usize = 4000;

#[derive(Debug, Clone)]
pub struct OverlaySnapshotter {
    dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerMeta {
    chain_id: Digest,
    diff_id: Digest,
    blob: Digest,
    bytes: u64,
    entries: u64,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl OverlaySnapshotter {
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        let dir = root.join("snapshots");
        for sub in ["layers", "tmp", "containers"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(io("create", &path))?;
        }
        Ok(OverlaySnapshotter { dir })
    }

    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(chain_id.hex())
    }

    fn container_dir(&self, key: &str) -> PathBuf {
        self.dir.join("containers").join(key)
    }

    /// Removes unpacks that a crash interrupted (call only while no unpack runs).
    pub fn clean_tmp(&self) -> Result<u64, SnapshotError> {
        let tmp = self.dir.join("tmp");
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(io("list", &tmp))?.flatten() {
            if fs::remove_dir_all(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Unpacks one layer blob into a temp directory, checks its diff id and
    /// renames it into place.
    fn unpack_one(
        &self,
        store: &ContentStore,
        layer: &LayerRecord,
    ) -> Result<(u64, u64), SnapshotError> {
        let final_dir = self.layer_dir(&layer.chain_id);
        let staging = temp_path_for(&self.dir.join("tmp").join(layer.chain_id.hex()));
        let fs_dir = staging.join("fs");
        fs::create_dir_all(&fs_dir).map_err(io("create", &fs_dir))?;
        let result = (|| {
            let blob = store.open_blob(&layer.digest)?;
            let mut reader = BufReader::with_capacity(1 << 20, blob);
            let compression = match Compression::from_media_type(&layer.media_type) {
                Some(compression) => compression,
                None => {
                    let mut magic = [0u8; 4];
                    let path = store.blob_path(&layer.digest);
                    File::open(&path)
                        .and_then(|mut f| f.read(&mut magic))
                        .map_err(io("read", &path))?;
                    Compression::sniff(&magic)
                }
            };
            let stats = unpack_layer(&mut reader, compression, &fs_dir).map_err(|source| {
                SnapshotError::Unpack {
                    digest: layer.digest.clone(),
                    source,
                }
            })?;
            let actual: Digest =
                stats
                    .diff_id
                    .parse()
                    .map_err(|_| SnapshotError::DiffIdMismatch {
                        digest: layer.digest.clone(),
                        expected: layer.diff_id.clone(),
                        actual: layer.diff_id.clone(),
                    })?;
            if actual != layer.diff_id {
                return Err(SnapshotError::DiffIdMismatch {
                    digest: layer.digest.clone(),
                    expected: layer.diff_id.clone(),
                    actual,
                });
            }
            let meta = LayerMeta {
                chain_id: layer.chain_id.clone(),
                diff_id: layer.diff_id.clone(),
                blob: layer.digest.clone(),
                bytes: stats.bytes,
                entries: stats.entries,
            };
            let meta_path = staging.join("layer.json");
            write_json_atomic(&meta_path, &meta).map_err(io("write", &meta_path))?;
            fsync_dir(&staging).map_err(io("fsync", &staging))?;
            // Commit: the rename is the moment the layer exists. Another
            // unpack of the same chain may have won the race; either is whole.
            match fs::rename(&staging, &final_dir) {
                Ok(()) => {}
                Err(_) if final_dir.join("layer.json").is_file() => {
                    let _ = fs::remove_dir_all(&staging);
                }
                Err(e) => return Err(io("commit layer", &final_dir)(e)),
            }
            let layers = self.dir.join("layers");
            fsync_dir(&layers).map_err(io("fsync", &layers))?;
            Ok((stats.bytes, stats.entries))
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        result
    }

    fn read_info(&self, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        let path = self.container_dir(key).join("snapshot.json");
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SnapshotError::NotFound(key.to_string()),
            _ => io("read", &path)(e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| io("parse", &path)(std::io::Error::other(e)))
    }

    fn overlay_mounts(
        &self,
        key: &str,
        layers: &[Digest],
        ephemeral: bool,
    ) -> Result<Vec<Mount>, SnapshotError> {
        let lower: Vec<String> = layers
            .iter()
            .rev()
            .map(|chain| self.layer_dir(chain).join("fs").display().to_string())
            .collect();
        let dir = self.container_dir(key);
        let mut options = vec![
            format!("lowerdir={}", lower.join(":")),
            format!("upperdir={}", dir.join("upper").display()),
            format!("workdir={}", dir.join("work").display()),
        ];
        if ephemeral {
            options.push("volatile".into());
        }
        let len = options.iter().map(|o| o.len() + 1).sum();
        if len > MAX_MOUNT_OPTIONS {
            return Err(SnapshotError::TooManyLayers {
                layers: layers.len(),
                len,
            });
        }
        Ok(vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
        }])
    }
}

/// Whether an overlay filesystem is mounted at `path` (a container's
/// rootfs that somebody unmounted behind berth's back is not).
pub fn is_overlay_mounted(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
        .unwrap_or(false)
}

fn validate_key(key: &str) -> Result<(), SnapshotError> {
    let valid = !key.is_empty()
        && key.len() <= 128
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(SnapshotError::InvalidKey(key.to_string()))
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn ensure_layers(
        &self,
        store: &ContentStore,
        layers: &[LayerRecord],
        progress: &dyn Progress,
    ) -> Result<(), SnapshotError> {
        let missing: Vec<(usize, &LayerRecord)> = layers
            .iter()
            .enumerate()
            .filter(|(_, layer)| {
                let present = self.has_layer(&layer.chain_id);
                if present {
                    progress.event(ProgressEvent::LayerExists {
                        digest: &layer.digest,
                    });
                }
                !present
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(missing.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<(), SnapshotError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| -> Result<(), SnapshotError> {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&(index, layer)) = missing.get(i) else {
                                return Ok(());
                            };
                            progress.event(ProgressEvent::UnpackStart {
                                digest: &layer.digest,
                                index,
                                count: layers.len(),
                            });
                            let (bytes, entries) = self.unpack_one(store, layer)?;
                            progress.event(ProgressEvent::Unpacked {
                                digest: &layer.digest,
                                bytes,
                                entries,
                            });
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(SnapshotError::NotFound("unpack worker panicked".into()))
                    })
                })
                .collect()
        });
        results.into_iter().collect()
    }

    fn layers(&self) -> Result<Vec<Digest>, SnapshotError> {
        let dir = self.dir.join("layers");
        let mut layers: Vec<Digest> = fs::read_dir(&dir)
            .map_err(io("list", &dir))?
            .flatten()
            .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok())
            .collect();
        layers.sort();
        Ok(layers)
    }

    fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_dir(chain_id).join("layer.json").is_file()
    }

    fn remove_layer(&self, chain_id: &Digest) -> Result<(), SnapshotError> {
        let dir = self.layer_dir(chain_id);
        // Move aside first so that a crash mid-delete never leaves a layer
        // that looks committed but is missing files.
        let doomed = temp_path_for(&self.dir.join("tmp").join(chain_id.hex()));
        match fs::rename(&dir, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed).map_err(io("remove", &doomed)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &dir)(e)),
        }
    }

    fn prepare_with(
        &self,
        key: &str,
        image: &str,
        layers: &[Digest],
        ephemeral: bool,
    ) -> Result<Vec<Mount>, SnapshotError> {
        validate_key(key)?;
        if let Some(missing) = layers.iter().find(|chain| !self.has_layer(chain)) {
            return Err(SnapshotError::MissingLayer(missing.clone()));
        }
        let dir = self.container_dir(key);
        if dir.join("snapshot.json").exists() {
            return Err(SnapshotError::Exists(key.to_string()));
        }
        for sub in ["upper", "work"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(io("create", &path))?;
        }
        let info = SnapshotInfo {
            key: key.to_string(),
            image: image.to_string(),
            layers: layers.to_vec(),
            created: now(),
            ephemeral,
        };
        let path = dir.join("snapshot.json");
        let written = if ephemeral {
            serde_json::to_vec(&info)
                .map_err(std::io::Error::other)
                .and_then(|bytes| crate::state::atomic::write_atomic_volatile(&path, &bytes))
        } else {
            write_json_atomic(&path, &info)
        };
        written.map_err(io("write", &path))?;
        self.overlay_mounts(key, layers, ephemeral)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        validate_key(key)?;
        let info = self.read_info(key)?;
        self.overlay_mounts(key, &info.layers, info.ephemeral)
    }

    fn mount(&self, key: &str, target: &Path) -> Result<(), SnapshotError> {
        for m in self.mounts(key)? {
            fs::create_dir_all(target).map_err(io("create", target))?;
            // nodev: device nodes in an untrusted image never work in the
            // rootfs; the runtime mounts /dev itself.
            let mount_with = |options: &[String]| {
                mount(
                    Some(m.source.as_str()),
                    target,
                    Some(m.kind.as_str()),
                    MsFlags::MS_NODEV,
                    Some(options.join(",").as_str()),
                )
            };
            let mut result = mount_with(&m.options);
            if result == Err(nix::Error::EINVAL) && m.options.iter().any(|o| o == "volatile") {
                // Kernels before 5.10 lack `volatile`: a synced mount is merely slower.
                let synced: Vec<String> = m
                    .options
                    .iter()
                    .filter(|o| *o != "volatile")
                    .cloned()
                    .collect();
                result = mount_with(&synced);
            }
            result.map_err(|source| SnapshotError::Sys {
                op: "mount overlay at",
                path: target.to_path_buf(),
                source,
            })?;
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), SnapshotError> {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => Ok(()),
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()), // not mounted
            Err(nix::Error::EBUSY) => {
                umount2(target, MntFlags::MNT_DETACH).map_err(|source| SnapshotError::Sys {
                    op: "unmount",
                    path: target.to_path_buf(),
                    source,
                })
            }
            Err(source) => Err(SnapshotError::Sys {
                op: "unmount",
                path: target.to_path_buf(),
                source,
            }),
        }
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        validate_key(key)?;
        let dir = self.container_dir(key);
        if !dir.exists() {
            return Err(SnapshotError::NotFound(key.to_string()));
        }
        let doomed = temp_path_for(&self.dir.join("tmp").join(format!("container-{key}")));
        fs::rename(&dir, &doomed).map_err(io("remove", &dir))?;
        fs::remove_dir_all(&doomed).map_err(io("remove", &doomed))
    }

    fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let dir = self.dir.join("containers");
        let mut infos = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io("list", &dir))?.flatten() {
            let key = entry.file_name().to_string_lossy().into_owned();
            match self.read_info(&key) {
                Ok(info) => infos.push(info),
                // A directory without a record is a prepare a crash cut short.
                Err(SnapshotError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        infos.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(infos)
    }
}
