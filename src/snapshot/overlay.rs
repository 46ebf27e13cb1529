//! The overlayfs snapshotter.
//!
//! ```text
//! <root>/snapshots/layers/<chain-id-hex>/fs          a committed layer
//! <root>/snapshots/layers/<chain-id-hex>/layer.json  its diff id and size
//! <root>/snapshots/tmp/                              layers being unpacked
//! <root>/snapshots/containers/<key>/{upper,work}     a container's writable layer
//! <root>/snapshots/containers/<key>/snapshot.json    its image and layers
//! ```
//!
//! The snapshotter builds overlay mounts as data; a [`Mounter`] performs
//! them ([`SystemMounter`] unless a test hands in another).

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::budget::ImageBudget;
use super::mount::{Mounter, SystemMounter};
use super::unpack::{unpack_layer_within, Compression, UnpackError, UnpackOptions};
use super::{Mount, SnapshotError, SnapshotInfo, Snapshotter};
use crate::image::digest::Digest;
use crate::image::limits::ImageLimits;
use crate::image::record::LayerRecord;
use crate::image::store::ContentStore;
use crate::image::{Progress, ProgressEvent};
use crate::state::atomic::{fsync_dir, temp_path_for, write_json_atomic};
use crate::state::clock::unix_secs;
use crate::state::nofollow::{create_dir_beneath, open_beneath, refuse_links_beneath, Open};
use crate::state::records::RecordStore;

/// The kernel copies mount options into one page.
const MAX_MOUNT_OPTIONS: usize = 4000;

/// A committed layer's `layer.json` is a few hundred bytes.
const MAX_LAYER_META: u64 = 64 << 10;

/// Overlay snapshots under `<root>/snapshots`, mounted by `M`.
#[derive(Debug, Clone)]
pub struct OverlaySnapshotter<M = SystemMounter> {
    dir: PathBuf,
    mounter: M,
    unpack: UnpackOptions,
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

/// `snapshot.json` in a container snapshot's directory.
const INFO_KEY: &str = "snapshot";

impl OverlaySnapshotter {
    /// The snapshotter berth uses, in `dir` (the layout's `snapshots`):
    /// real mounts, layers unpacked as root.
    pub fn open(dir: &Path) -> Result<Self, SnapshotError> {
        Self::open_with(dir, SystemMounter)
    }
}

impl<M: Mounter> OverlaySnapshotter<M> {
    /// A snapshotter whose mounts `mounter` performs.
    pub fn open_with(dir: &Path, mounter: M) -> Result<Self, SnapshotError> {
        let dir = dir.to_path_buf();
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        for sub in ["layers", "tmp", "containers"] {
            let path = dir.join(sub);
            create_dir_beneath(&dir, &path, 0o700).map_err(io("create", &path))?;
        }
        Ok(OverlaySnapshotter {
            dir,
            mounter,
            unpack: UnpackOptions::default(),
        })
    }

    /// Unpacks layers with `options` from now on
    /// ([`UnpackOptions::unprivileged`] for tests without root).
    pub fn with_unpack_options(mut self, options: UnpackOptions) -> Self {
        self.unpack = options;
        self
    }

    pub fn mounter(&self) -> &M {
        &self.mounter
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

    /// The uncompressed bytes of a committed layer, as its `layer.json`
    /// says; 0 when that cannot be read (the image bound is then looser by
    /// that layer, never stricter than it should be).
    fn committed_bytes(&self, chain_id: &Digest) -> u64 {
        let path = self.layer_dir(chain_id).join("layer.json");
        let mut text = Vec::new();
        let read = open_beneath(&self.dir, &path, Open::Read)
            .and_then(|f| f.take(MAX_LAYER_META).read_to_end(&mut text));
        match read
            .ok()
            .and_then(|_| serde_json::from_slice::<LayerMeta>(&text).ok())
        {
            Some(meta) => meta.bytes,
            None => 0,
        }
    }

    /// Unpacks one layer blob into a temp directory, checks its diff id and
    /// renames it into place; stops (and removes the temp directory) when
    /// it takes more than `budget` allows.
    fn unpack_one(
        &self,
        store: &ContentStore,
        layer: &LayerRecord,
        budget: &ImageBudget,
    ) -> Result<(u64, u64), SnapshotError> {
        let final_dir = self.layer_dir(&layer.chain_id);
        refuse_links_beneath(&self.dir, &final_dir).map_err(io("unpack", &final_dir))?;
        let staging = temp_path_for(&self.dir.join("tmp").join(layer.chain_id.hex()));
        let fs_dir = staging.join("fs");
        create_dir_beneath(&self.dir, &fs_dir, 0o755).map_err(io("create", &fs_dir))?;
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
            let mut layer_budget = budget.layer();
            let stats = unpack_layer_within(
                &mut reader,
                compression,
                &fs_dir,
                self.unpack,
                &mut layer_budget,
            )
            .map_err(|source| match source {
                UnpackError::TooLarge { exceeded, .. } => SnapshotError::TooLarge {
                    digest: layer.digest.clone(),
                    exceeded,
                },
                source => SnapshotError::Unpack {
                    digest: layer.digest.clone(),
                    source,
                },
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

    /// A container snapshot's record: `<key>/snapshot.json`.
    fn info_store(&self, key: &str) -> RecordStore<SnapshotInfo> {
        RecordStore::new(self.container_dir(key), "snapshot")
    }

    fn read_info(&self, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        // Its upper and work dirs are mounted by path: a link in place of
        // the snapshot's directory would choose where the container writes.
        let dir = self.container_dir(key);
        refuse_links_beneath(&self.dir, &dir).map_err(io("open", &dir))?;
        self.info_store(key)
            .get(INFO_KEY)
            .map_err(|e| SnapshotError::Record(Box::new(e)))?
            .ok_or_else(|| SnapshotError::NotFound(key.to_string()))
    }

    /// Creates a container snapshot over `layers`, or over `lower_dir`
    /// when given (then `layers` is empty).
    fn prepare_snapshot(
        &self,
        key: &str,
        image: &str,
        layers: &[Digest],
        lower_dir: Option<&Path>,
        ephemeral: bool,
    ) -> Result<Vec<Mount>, SnapshotError> {
        validate_key(key)?;
        if let Some(missing) = layers.iter().find(|chain| !self.has_layer(chain)) {
            return Err(SnapshotError::MissingLayer(missing.clone()));
        }
        let dir = self.container_dir(key);
        let store = self.info_store(key);
        if store.path(INFO_KEY).exists() {
            return Err(SnapshotError::Exists(key.to_string()));
        }
        // Checked before anything is written: options the kernel would
        // refuse must not leave a snapshot behind.
        let mounts = self.overlay_mounts(key, layers, lower_dir, ephemeral)?;
        for sub in ["upper", "work"] {
            let path = dir.join(sub);
            create_dir_beneath(&self.dir, &path, 0o755).map_err(io("create", &path))?;
        }
        let info = SnapshotInfo {
            key: key.to_string(),
            image: image.to_string(),
            layers: layers.to_vec(),
            created: unix_secs(),
            ephemeral,
            lower_dir: lower_dir.map(Path::to_path_buf),
        };
        let written = if ephemeral {
            store.put_volatile(INFO_KEY, &info)
        } else {
            store.put(INFO_KEY, &info)
        };
        written.map_err(|e| SnapshotError::Record(Box::new(e)))?;
        Ok(mounts)
    }

    fn overlay_mounts(
        &self,
        key: &str,
        layers: &[Digest],
        lower_dir: Option<&Path>,
        ephemeral: bool,
    ) -> Result<Vec<Mount>, SnapshotError> {
        let layer_dirs: Vec<PathBuf> = layers
            .iter()
            .rev()
            .map(|chain| self.layer_dir(chain).join("fs"))
            .collect();
        let dir = self.container_dir(key);
        // The kernel resolves these paths following links: none may be one.
        for path in layer_dirs
            .iter()
            .chain(&[dir.join("upper"), dir.join("work")])
        {
            refuse_links_beneath(&self.dir, path).map_err(io("open", path))?;
        }
        let lower_dirs = match lower_dir {
            Some(lower) => {
                check_lower_dir(lower)?;
                vec![lower.to_path_buf()]
            }
            None => layer_dirs,
        };
        let lower: Vec<String> = lower_dirs.iter().map(|p| p.display().to_string()).collect();
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
        // A mount flag, not overlay data (so not counted above): device
        // nodes in an untrusted image never work in the rootfs; the runtime
        // mounts /dev itself.
        options.insert(0, "nodev".into());
        Ok(vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
        }])
    }
}

/// Checks a host directory that is to be an overlay's lower layer, each
/// time it is mounted: the kernel resolves the path again, following links,
/// so it must have none on it now (a link swapped in later could only come
/// from whoever may write the directories above it, which the manifest
/// trust check limits to root and the invoking user), it must be a
/// directory, and nothing in it may read as an overlay option separator.
pub fn check_lower_dir(lower: &Path) -> Result<(), SnapshotError> {
    let refuse = |reason: String| SnapshotError::LowerDir {
        path: lower.to_path_buf(),
        reason,
    };
    if !lower.is_absolute() {
        return Err(refuse("is not an absolute path".into()));
    }
    let text = lower.to_str().unwrap_or_default();
    if text.is_empty() || text.contains(crate::manifest::reference::ROOTFS_FORBIDDEN_CHARS) {
        return Err(refuse(
            "contains a character overlayfs options cannot carry (':', ',', '\\', a newline) or is not UTF-8".into(),
        ));
    }
    let metadata = fs::symlink_metadata(lower).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => refuse("does not exist".into()),
        _ => refuse(e.to_string()),
    })?;
    if !metadata.is_dir() && !metadata.file_type().is_symlink() {
        return Err(refuse("is not a directory".into()));
    }
    match fs::canonicalize(lower) {
        Ok(physical) if physical == lower => Ok(()),
        Ok(physical) => Err(refuse(format!(
            "has a symlink on its path (it resolves to {}); name the directory itself",
            physical.display()
        ))),
        Err(e) => Err(refuse(e.to_string())),
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

impl<M: Mounter> Snapshotter for OverlaySnapshotter<M> {
    fn ensure_layers_within(
        &self,
        store: &ContentStore,
        layers: &[LayerRecord],
        limits: &ImageLimits,
        progress: &dyn Progress,
    ) -> Result<(), SnapshotError> {
        let mut committed = 0u64;
        let missing: Vec<(usize, &LayerRecord)> = layers
            .iter()
            .enumerate()
            .filter(|(_, layer)| {
                let present = self.has_layer(&layer.chain_id);
                if present {
                    committed = committed.saturating_add(self.committed_bytes(&layer.chain_id));
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
        let budget = ImageBudget::new(*limits, committed);
        // Set by the first worker that fails: the others start no new
        // layer (a refused image should not keep unpacking).
        let failed = std::sync::atomic::AtomicBool::new(false);
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(missing.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<(), SnapshotError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| -> Result<(), SnapshotError> {
                        loop {
                            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                                return Ok(());
                            }
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&(index, layer)) = missing.get(i) else {
                                return Ok(());
                            };
                            progress.event(ProgressEvent::UnpackStart {
                                digest: &layer.digest,
                                index,
                                count: layers.len(),
                            });
                            let (bytes, entries) =
                                self.unpack_one(store, layer, &budget).inspect_err(|_| {
                                    failed.store(true, std::sync::atomic::Ordering::Relaxed)
                                })?;
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
        let dir = self.layer_dir(chain_id);
        fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) && dir.join("layer.json").is_file()
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
        self.prepare_snapshot(key, image, layers, None, ephemeral)
    }

    fn prepare_over_dir(
        &self,
        key: &str,
        image: &str,
        lower: &Path,
        ephemeral: bool,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.prepare_snapshot(key, image, &[], Some(lower), ephemeral)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        validate_key(key)?;
        let info = self.read_info(key)?;
        self.overlay_mounts(key, &info.layers, info.lower_dir.as_deref(), info.ephemeral)
    }

    fn mount(&self, key: &str, target: &Path) -> Result<(), SnapshotError> {
        for m in self.mounts(key)? {
            fs::create_dir_all(target).map_err(io("create", target))?;
            self.mounter.mount(&m, target)?;
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), SnapshotError> {
        self.mounter.unmount(target)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::limits::Bound;
    use crate::image::NoProgress;
    use crate::snapshot::mount::{MountCall, RecordingMounter};
    use crate::snapshot::testsuite::Harness;

    /// The overlay snapshotter as an ordinary user can run it: layers
    /// unpacked without root, mounts recorded instead of made.
    struct Recorded;

    impl Harness for Recorded {
        type Snapshotter = OverlaySnapshotter<RecordingMounter>;

        fn open(&self, root: &Path) -> Self::Snapshotter {
            OverlaySnapshotter::open_with(root, RecordingMounter::new())
                .expect("open snapshotter")
                .with_unpack_options(UnpackOptions::unprivileged())
        }

        fn is_mounted(&self, snapshotter: &Self::Snapshotter, target: &Path) -> bool {
            !snapshotter.mounter().mounted_at(target).is_empty()
        }

        fn real_mounts(&self) -> bool {
            false
        }
    }

    mod conformance {
        use super::Recorded;

        crate::snapshotter_testsuite!(Recorded, tempfile::tempdir().expect("tempdir"));
    }

    /// A snapshotter with one empty layer committed by hand, and its chain id.
    fn with_layer(root: &Path) -> (OverlaySnapshotter<RecordingMounter>, Digest) {
        let snapshotter = Recorded.open(root);
        let chain = Digest::of(b"layer");
        let dir = snapshotter.layer_dir(&chain);
        fs::create_dir_all(dir.join("fs")).expect("layer fs");
        fs::write(dir.join("layer.json"), b"{}").expect("layer.json");
        (snapshotter, chain)
    }

    /// A gzip layer of one file of `size` zeros, stored in `store`.
    fn zero_layer(store: &ContentStore, size: u64, parent: Option<&Digest>) -> LayerRecord {
        let (blob, diff_id) = super::super::unpack::zeros::gzip_zero_file("zeros", size);
        let diff_id: Digest = diff_id.parse().expect("diff id");
        let chain_id = match parent {
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
            None => diff_id.clone(),
        };
        LayerRecord {
            digest: store.write_bytes(&blob).expect("store layer"),
            media_type: crate::image::oci::OCI_LAYER_GZIP.into(),
            size: blob.len() as u64,
            diff_id,
            chain_id,
        }
    }

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir).expect("list").count()
    }

    fn limits(max_layer_size: u64, max_image_size: u64) -> ImageLimits {
        ImageLimits {
            max_layer_size,
            max_image_size,
        }
    }

    #[test]
    fn a_layer_past_its_bound_is_refused_and_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(&tmp.path().join("content")).expect("store");
        let snapshotter = Recorded.open(&tmp.path().join("snapshots"));
        let small = zero_layer(&store, 1000, None);
        let bomb = zero_layer(&store, 64 << 20, Some(&small.chain_id));
        let error = snapshotter
            .ensure_layers_within(
                &store,
                &[small.clone(), bomb.clone()],
                &limits(1 << 20, 1 << 30),
                &NoProgress,
            )
            .expect_err("the bomb is refused");
        match error {
            SnapshotError::TooLarge { digest, exceeded } => {
                assert_eq!(digest, bomb.digest);
                assert_eq!((exceeded.bound, exceeded.limit), (Bound::Layer, 1 << 20));
            }
            other => panic!("expected the layer bound, got {other}"),
        }
        assert!(!snapshotter.has_layer(&bomb.chain_id));
        assert_eq!(entries(&tmp.path().join("snapshots/tmp")), 0);
    }

    #[test]
    fn the_image_bound_counts_the_layers_unpacked_before() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(&tmp.path().join("content")).expect("store");
        let snapshotter = Recorded.open(&tmp.path().join("snapshots"));
        let base = zero_layer(&store, 600 << 10, None);
        let top = zero_layer(&store, 600 << 10, Some(&base.chain_id));
        let bounds = limits(1 << 20, 1 << 20);
        // Each layer alone fits, and the base is unpacked (by another image).
        snapshotter
            .ensure_layers_within(&store, std::slice::from_ref(&base), &bounds, &NoProgress)
            .expect("the base alone fits");
        let error = snapshotter
            .ensure_layers_within(&store, &[base.clone(), top.clone()], &bounds, &NoProgress)
            .expect_err("both together do not");
        assert!(
            matches!(&error, SnapshotError::TooLarge { digest, exceeded }
                if *digest == top.digest && exceeded.bound == Bound::Image),
            "{error}"
        );
        assert!(!snapshotter.has_layer(&top.chain_id));
        assert_eq!(entries(&tmp.path().join("snapshots/tmp")), 0);
    }

    #[test]
    fn mount_hands_the_mounts_of_the_snapshot_to_the_mounter_nodev() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (snapshotter, chain) = with_layer(tmp.path());
        let mounts = snapshotter
            .prepare("c", "image", std::slice::from_ref(&chain))
            .expect("prepare");
        assert_eq!(mounts[0].options[0], "nodev");
        let target = tmp.path().join("rootfs");
        snapshotter.mount("c", &target).expect("mount");
        snapshotter.unmount(&target).expect("unmount");
        assert_eq!(
            snapshotter.mounter().calls(),
            [
                MountCall::Mount {
                    mount: mounts[0].clone(),
                    target: target.clone(),
                },
                MountCall::Unmount { target },
            ]
        );
    }

    #[test]
    fn a_failed_mount_is_reported_with_its_target_and_leaves_nothing_mounted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (snapshotter, chain) = with_layer(tmp.path());
        snapshotter
            .prepare("c", "image", std::slice::from_ref(&chain))
            .expect("prepare");
        let target = tmp.path().join("rootfs");
        snapshotter.mounter().fail_next_mount(nix::Error::EPERM);
        let err = snapshotter.mount("c", &target).expect_err("mount fails");
        assert!(
            matches!(&err, SnapshotError::Sys { path, source: nix::Error::EPERM, .. } if *path == target),
            "{err:?}"
        );
        assert!(snapshotter.mounter().mounted_at(&target).is_empty());
        snapshotter
            .mount("c", &target)
            .expect("the next mount works");
    }

    #[test]
    fn ephemeral_snapshot_mounts_volatile_and_options_length_is_capped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (snapshotter, chain) = with_layer(tmp.path());
        let mounts = snapshotter
            .prepare_with("e", "image", std::slice::from_ref(&chain), true)
            .expect("prepare");
        assert!(mounts[0].options.iter().any(|o| o == "volatile"));
        assert_eq!(snapshotter.mounts("e").expect("mounts"), mounts);
        let many = vec![chain; 200];
        let result = snapshotter.prepare("many", "image", &many);
        assert!(
            matches!(
                result,
                Err(SnapshotError::TooManyLayers { layers: 200, .. })
            ),
            "{result:?}"
        );
        // Regression: the record used to be written before the options were
        // checked, leaving a snapshot that could never be mounted.
        let keys: Vec<String> = snapshotter
            .list()
            .expect("list")
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(keys, ["e"]);
    }

    #[test]
    fn a_snapshot_over_a_directory_has_it_as_its_only_lower_layer() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let snapshotter = Recorded.open(&tmp.path().join("snapshots"));
        let tree = fs::canonicalize(tmp.path()).expect("physical").join("tree");
        fs::create_dir(&tree).expect("tree");
        let mounts = snapshotter
            .prepare_over_dir("r", "rootfs:tree", &tree, false)
            .expect("prepare");
        let lower = format!("lowerdir={}", tree.display());
        assert!(mounts[0].options.contains(&lower), "{:?}", mounts[0]);
        assert_eq!(mounts[0].options[0], "nodev");
        // Mounted again later (after a reboot), from its record alone.
        assert_eq!(snapshotter.mounts("r").expect("mounts"), mounts);
        let info = &snapshotter.list().expect("list")[0];
        assert_eq!(info.lower_dir.as_deref(), Some(tree.as_path()));
        assert!(info.layers.is_empty());
    }

    #[test]
    fn a_directory_that_is_missing_a_file_or_behind_a_symlink_is_no_lower_layer() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let snapshotter = Recorded.open(&tmp.path().join("snapshots"));
        let root = fs::canonicalize(tmp.path()).expect("physical");
        fs::create_dir(root.join("tree")).expect("tree");
        fs::write(root.join("file"), b"x").expect("file");
        std::os::unix::fs::symlink(root.join("tree"), root.join("link")).expect("link");
        for (lower, reason) in [
            (root.join("missing"), "does not exist"),
            (root.join("file"), "is not a directory"),
            (root.join("link"), "symlink"),
            (PathBuf::from("tree"), "absolute"),
        ] {
            let error = snapshotter
                .prepare_over_dir("r", "rootfs", &lower, false)
                .expect_err("refused");
            assert!(error.to_string().contains(reason), "{lower:?}: {error}");
        }
        // Refused before anything was written.
        assert!(snapshotter.list().expect("list").is_empty());
    }
}
