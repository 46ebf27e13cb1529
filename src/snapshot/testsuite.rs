//! The [`Snapshotter`] conformance suite: the trait's contract, written once,
//! run against every implementation (containerd's `core/snapshots/testsuite`).
//!
//! An implementation supplies a [`Harness`] (how to open one, how to tell
//! whether something is mounted) and expands [`snapshotter_testsuite!`] in a
//! test module; each case becomes its own `#[test]`:
//!
//! ```ignore
//! berth::snapshotter_testsuite!(MyHarness::new(), tempfile::tempdir().expect("tempdir"));
//! ```
//!
//! The suite lives in the library, not under `#[cfg(test)]` or in one
//! `tests/` file, so that unit tests (`src/snapshot/overlay.rs`, with a
//! recording mounter) and integration tests (`tests/snapshotter.rs`, with
//! real mounts as root) run the same cases. Its functions are generic, so
//! nothing of it is compiled into berth unless a test instantiates it.
//!
//! Every case builds the same three layers (bottom first) and commits them
//! with [`Snapshotter::ensure_layers`]:
//!
//! ```text
//! layer 0: layer="0", bottom-only, hidden, dir/
//! layer 1: layer="1", .wh.hidden (a whiteout of layer 0's file)
//! layer 2: layer="2", top-only
//! ```
//!
//! Cases panic (they are test code) with a message naming what broke.

use std::path::{Path, PathBuf};

use super::{Mount, SnapshotError, Snapshotter};
use crate::image::digest::{chain_ids, Digest};
use crate::image::record::LayerRecord;
use crate::image::{ContentStore, NoProgress};

/// What the suite needs from an implementation besides the trait.
pub trait Harness {
    type Snapshotter: Snapshotter;
    /// A new snapshotter keeping its state under `root`, an empty directory.
    /// It must be able to unpack layers as the user running the tests.
    fn open(&self, root: &Path) -> Self::Snapshotter;
    /// Whether `snapshotter` has something mounted at `target` now.
    fn is_mounted(&self, snapshotter: &Self::Snapshotter, target: &Path) -> bool;
    /// Whether mounts are real, so the suite can read the merged tree at the
    /// target (a recording mounter's are not).
    fn real_mounts(&self) -> bool;
}

/// Expands to one `#[test]` per case of the suite.
///
/// `$harness` is evaluated at the start of each test (it may `return` to
/// skip, e.g. when a real mounter needs root); `$tempdir` gives a fresh
/// scratch directory guard with a `path()` (such as `tempfile::TempDir`).
#[macro_export]
macro_rules! snapshotter_testsuite {
    ($harness:expr, $tempdir:expr) => {
        $crate::snapshotter_testsuite!(@cases ($harness, $tempdir)
            prepare_returns_the_mounts_that_mounts_reports_and_remove_forgets_them,
            prepare_twice_is_an_exists_error,
            prepare_over_a_missing_layer_is_refused_and_records_nothing,
            remove_of_an_unknown_key_is_not_found,
            invalid_keys_are_refused_by_every_call,
            committed_layers_are_listed_and_removed,
            ephemeral_flag_is_recorded,
            lowerdirs_are_the_layers_top_first,
            mount_and_unmount_at_a_target,
            mount_of_an_unknown_key_is_not_found_and_mounts_nothing,
            remove_keeps_the_layers_for_the_next_prepare,
        );
    };
    (@cases ($harness:expr, $tempdir:expr) $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                let harness = $harness;
                let scratch = $tempdir;
                $crate::snapshot::testsuite::$case(&harness, scratch.path());
            }
        )*
    };
}

/// The image every snapshot in the suite is prepared from.
const IMAGE: &str = "suite.test/image:latest";

/// A snapshotter with the suite's three layers committed.
struct World<S> {
    snapshotter: S,
    /// Chain ids, bottom first.
    chain: Vec<Digest>,
    layers: Vec<LayerRecord>,
    store: ContentStore,
    root: PathBuf,
}

fn layer_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        if let Some(dir) = path.strip_suffix('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, dir, &[][..])
                .expect("build suite layer");
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            builder
                .append_data(&mut header, path, *data)
                .expect("build suite layer");
        }
    }
    builder.into_inner().expect("finish suite layer")
}

impl<S: Snapshotter> World<S> {
    fn new(harness: &impl Harness<Snapshotter = S>, root: &Path) -> Self {
        let tars = [
            layer_tar(&[
                ("layer", b"0"),
                ("bottom-only", b"b"),
                ("hidden", b"h"),
                ("dir/", b""),
            ]),
            layer_tar(&[("layer", b"1"), (".wh.hidden", b"")]),
            layer_tar(&[("layer", b"2"), ("top-only", b"t")]),
        ];
        let store = ContentStore::open(root).expect("open content store");
        let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::of(t)).collect();
        let chain = chain_ids(&diff_ids);
        let layers = tars
            .iter()
            .zip(&chain)
            .map(|(tar, chain_id)| LayerRecord {
                digest: store.write_bytes(tar).expect("store suite layer"),
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                size: tar.len() as u64,
                diff_id: Digest::of(tar),
                chain_id: chain_id.clone(),
            })
            .collect::<Vec<_>>();
        let snapshotter = harness.open(root);
        snapshotter
            .ensure_layers(&store, &layers, &NoProgress)
            .expect("ensure_layers commits the suite's layers");
        World {
            snapshotter,
            chain,
            layers,
            store,
            root: root.to_path_buf(),
        }
    }

    fn prepare(&self, key: &str) -> Vec<Mount> {
        self.snapshotter
            .prepare(key, IMAGE, &self.chain)
            .unwrap_or_else(|e| panic!("prepare {key}: {e}"))
    }

    fn keys(&self) -> Vec<String> {
        let infos = self.snapshotter.list().expect("list");
        infos.into_iter().map(|i| i.key).collect()
    }

    fn target(&self, name: &str) -> PathBuf {
        self.root.join("targets").join(name)
    }
}

/// Unmounts its target when dropped, so a failing case leaks no mount.
struct Mounted<'a, S: Snapshotter> {
    snapshotter: &'a S,
    target: &'a Path,
}

impl<S: Snapshotter> Drop for Mounted<'_, S> {
    fn drop(&mut self) {
        let _ = self.snapshotter.unmount(self.target);
    }
}

pub fn prepare_returns_the_mounts_that_mounts_reports_and_remove_forgets_them<H: Harness>(
    harness: &H,
    root: &Path,
) {
    let world = World::new(harness, root);
    let prepared = world.prepare("c1");
    assert!(!prepared.is_empty(), "prepare returned no mounts");
    let reported = world.snapshotter.mounts("c1").expect("mounts of c1");
    assert_eq!(
        prepared, reported,
        "mounts() differs from what prepare returned"
    );
    let infos = world.snapshotter.list().expect("list");
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert_eq!(infos[0].key, "c1");
    assert_eq!(infos[0].image, IMAGE);
    assert_eq!(
        infos[0].layers, world.chain,
        "layers are recorded bottom first"
    );

    world.snapshotter.remove("c1").expect("remove c1");
    assert!(
        matches!(
            world.snapshotter.mounts("c1"),
            Err(SnapshotError::NotFound(_))
        ),
        "mounts of a removed snapshot must be NotFound"
    );
    assert!(world.keys().is_empty(), "removed snapshot still listed");
}

pub fn prepare_twice_is_an_exists_error<H: Harness>(harness: &H, root: &Path) {
    let world = World::new(harness, root);
    let first = world.prepare("twice");
    let again = world.snapshotter.prepare("twice", IMAGE, &world.chain);
    assert!(
        matches!(again, Err(SnapshotError::Exists(ref key)) if key == "twice"),
        "second prepare: {again:?}"
    );
    assert_eq!(
        world.snapshotter.mounts("twice").expect("mounts"),
        first,
        "a refused prepare changed the snapshot"
    );
}

pub fn prepare_over_a_missing_layer_is_refused_and_records_nothing<H: Harness>(
    harness: &H,
    root: &Path,
) {
    let world = World::new(harness, root);
    let missing = Digest::of(b"no such layer");
    let mut layers = world.chain.clone();
    layers.push(missing.clone());
    let result = world.snapshotter.prepare("orphan", IMAGE, &layers);
    assert!(
        matches!(result, Err(SnapshotError::MissingLayer(ref d)) if *d == missing),
        "{result:?}"
    );
    assert!(world.keys().is_empty(), "a refused prepare was recorded");
}

pub fn remove_of_an_unknown_key_is_not_found<H: Harness>(harness: &H, root: &Path) {
    let world = World::new(harness, root);
    let result = world.snapshotter.remove("never-prepared");
    assert!(
        matches!(result, Err(SnapshotError::NotFound(ref key)) if key == "never-prepared"),
        "{result:?}"
    );
}

pub fn invalid_keys_are_refused_by_every_call<H: Harness>(harness: &H, root: &Path) {
    let world = World::new(harness, root);
    let long = "k".repeat(129);
    let invalid = [
        "",
        ".",
        "..",
        "a/b",
        "../escape",
        "/abs",
        "with space",
        "nul\0byte",
        long.as_str(),
    ];
    let target = world.target("invalid");
    for key in invalid {
        let refused = |what: &str, result: Result<(), SnapshotError>| {
            assert!(
                matches!(result, Err(SnapshotError::InvalidKey(ref k)) if k == key),
                "{what}({key:?}): {result:?}"
            );
        };
        refused(
            "prepare",
            world
                .snapshotter
                .prepare(key, IMAGE, &world.chain)
                .map(drop),
        );
        refused("mounts", world.snapshotter.mounts(key).map(drop));
        refused("mount", world.snapshotter.mount(key, &target));
        refused("remove", world.snapshotter.remove(key));
    }
    assert!(world.keys().is_empty(), "an invalid key was recorded");
    assert!(!harness.is_mounted(&world.snapshotter, &target));
    let longest = "k".repeat(128);
    for key in ["a.b_c-D", longest.as_str()] {
        world.prepare(key);
    }
}

pub fn committed_layers_are_listed_and_removed<H: Harness>(harness: &H, root: &Path) {
    let world = World::new(harness, root);
    let snapshotter = &world.snapshotter;
    let mut expected = world.chain.clone();
    expected.sort();
    assert_eq!(snapshotter.layers().expect("layers"), expected);
    for chain_id in &world.chain {
        assert!(snapshotter.has_layer(chain_id), "{chain_id} not committed");
    }

    let top = world.chain[2].clone();
    snapshotter.remove_layer(&top).expect("remove top layer");
    assert!(!snapshotter.has_layer(&top));
    assert!(!snapshotter.layers().expect("layers").contains(&top));
    snapshotter
        .remove_layer(&top)
        .expect("removing an absent layer is not an error");
    let result = snapshotter.prepare("c", IMAGE, &world.chain);
    assert!(
        matches!(result, Err(SnapshotError::MissingLayer(ref d)) if *d == top),
        "{result:?}"
    );

    snapshotter
        .ensure_layers(&world.store, &world.layers, &NoProgress)
        .expect("ensure_layers commits the removed layer again");
    assert!(snapshotter.has_layer(&top));
    world.prepare("c");
}

pub fn ephemeral_flag_is_recorded<H: Harness>(harness: &H, root: &Path) {
    let world = World::new(harness, root);
    world.prepare("kept");
    world
        .snapshotter
        .prepare_with("scratch", IMAGE, &world.chain, true)
        .expect("prepare ephemeral");
    let infos = world.snapshotter.list().expect("list");
    let flags: Vec<(&str, bool)> = infos
        .iter()
        .map(|i| (i.key.as_str(), i.ephemeral))
        .collect();
    assert_eq!(flags, [("kept", false), ("scratch", true)]);
}

/// The `lowerdir=` of an overlay mount, split (top first, by overlayfs's rule).
fn lowerdirs(mounts: &[Mount]) -> Vec<PathBuf> {
    let overlay = mounts
        .iter()
        .find(|m| m.kind == "overlay")
        .unwrap_or_else(|| panic!("no overlay mount in {mounts:?}"));
    let lower = overlay
        .options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap_or_else(|| panic!("no lowerdir in {overlay:?}"));
    lower.split(':').map(PathBuf::from).collect()
}

pub fn lowerdirs_are_the_layers_top_first<H: Harness>(harness: &H, root: &Path) {
    let world = World::new(harness, root);
    let read = |dirs: &[PathBuf]| -> Vec<String> {
        dirs.iter()
            .map(|dir| {
                std::fs::read_to_string(dir.join("layer"))
                    .unwrap_or_else(|e| panic!("{}/layer: {e}", dir.display()))
            })
            .collect()
    };
    let all = lowerdirs(&world.prepare("all"));
    assert_eq!(read(&all), ["2", "1", "0"], "lowerdirs {all:?}");
    let two = world
        .snapshotter
        .prepare("two", IMAGE, &world.chain[..2])
        .expect("prepare over two layers");
    assert_eq!(read(&lowerdirs(&two)), ["1", "0"]);
    assert_eq!(
        read(&lowerdirs(
            &world.snapshotter.mounts("all").expect("mounts")
        )),
        ["2", "1", "0"],
        "mounts() rebuilds the same order"
    );
}

pub fn mount_and_unmount_at_a_target<H: Harness>(harness: &H, root: &Path) {
    let world = World::new(harness, root);
    let snapshotter = &world.snapshotter;
    world.prepare("m");
    let target = world.target("m");
    assert!(!harness.is_mounted(snapshotter, &target));
    snapshotter
        .unmount(&target)
        .expect("unmounting a target that was never mounted is fine");
    {
        snapshotter.mount("m", &target).expect("mount");
        let _guard = Mounted {
            snapshotter,
            target: &target,
        };
        assert!(harness.is_mounted(snapshotter, &target), "not mounted");
        if harness.real_mounts() {
            let read = |name: &str| std::fs::read_to_string(target.join(name)).ok();
            assert_eq!(read("layer").as_deref(), Some("2"), "the top layer wins");
            assert_eq!(read("bottom-only").as_deref(), Some("b"));
            assert_eq!(read("top-only").as_deref(), Some("t"));
            assert_eq!(read("hidden"), None, "layer 1's whiteout hides it");
            assert!(target.join("dir").is_dir());
            std::fs::write(target.join("written"), b"w").expect("the rootfs is writable");
        }
        snapshotter.unmount(&target).expect("unmount");
    }
    assert!(!harness.is_mounted(snapshotter, &target), "still mounted");
    if harness.real_mounts() {
        assert!(
            !target.join("layer").exists(),
            "target still shows the rootfs"
        );
    }
    snapshotter
        .unmount(&target)
        .expect("second unmount is fine");
}

pub fn mount_of_an_unknown_key_is_not_found_and_mounts_nothing<H: Harness>(
    harness: &H,
    root: &Path,
) {
    let world = World::new(harness, root);
    let target = world.target("unknown");
    let result = world.snapshotter.mount("unknown", &target);
    assert!(
        matches!(result, Err(SnapshotError::NotFound(ref key)) if key == "unknown"),
        "{result:?}"
    );
    assert!(!harness.is_mounted(&world.snapshotter, &target));
}

pub fn remove_keeps_the_layers_for_the_next_prepare<H: Harness>(harness: &H, root: &Path) {
    let world = World::new(harness, root);
    world.prepare("first");
    world.snapshotter.remove("first").expect("remove");
    for chain_id in &world.chain {
        assert!(
            world.snapshotter.has_layer(chain_id),
            "remove took {chain_id}"
        );
    }
    world.prepare("first");
    assert_eq!(
        world.keys(),
        ["first"],
        "a removed key can be prepared again"
    );
}
