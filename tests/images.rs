//! Images end to end, as root on a real filesystem: import from the three
//! local formats, layer sharing, whiteouts through a real overlay mount,
//! pulls from a real registry, and refusal of corrupt or hostile content.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth::image::Images;
use berth::snapshot::{OverlaySnapshotter, Snapshotter};
use common::images::{self as img, Entry, ImageSpec, Layer, LayerCompression};
use common::instance::Instance;
use common::prereq;
use common::registry::Registry;

/// An [`Instance`] and what its image store holds.
struct Berth(Instance);

common::deref_to!(Berth, 0: Instance);

impl Berth {
    fn new() -> Self {
        Berth(Instance::new())
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("JSON output")
    }

    fn layer_dirs(&self) -> Vec<String> {
        common::names_in(&self.root().join("snapshots/layers"))
    }

    fn blob_names(&self) -> Vec<String> {
        common::names_in(&self.root().join("content/blobs/sha256"))
    }
}

/// Every path under `dir`, relative, with a type marker, skipping nothing.
fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                out.insert(format!("{rel}/"));
                walk(base, &path, out);
            } else if kind.is_symlink() {
                out.insert(format!(
                    "{rel} -> {}",
                    fs::read_link(&path).unwrap().display()
                ));
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn source(kind: &str, path: &Path) -> String {
    format!("{kind}:{}", path.display())
}

#[test]
fn busybox_imports_from_each_local_format_and_runs() {
    if !prereq::require_root("busybox_imports_from_each_local_format_and_runs") {
        return;
    }
    let berth = Berth::new();
    let image = img::busybox_image();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(image, "latest")]);
    let archive = work.path().join("image.oci.tar");
    img::write_oci_archive(&archive, &[(image, "v1")]);
    let docker = work.path().join("image.docker.tar");
    img::write_docker_archive(&docker, image, "busybox:latest");

    let from_layout = berth.json(&[
        "image",
        "import",
        &source("oci-layout", &layout),
        "-o",
        "json",
    ]);
    assert_eq!(from_layout["manifest"], image.manifest_digest);
    let from_archive = berth.json(&[
        "image",
        "import",
        &format!("{}:v1", source("oci-archive", &archive)),
        "-o",
        "json",
    ]);
    assert_eq!(from_archive["manifest"], image.manifest_digest);
    let from_docker = berth.json(&[
        "image",
        "import",
        &source("docker-archive", &docker),
        "--name",
        "busybox-docker",
        "-o",
        "json",
    ]);
    assert_eq!(from_docker["config"], image.config_digest);
    assert_eq!(from_docker["layers"][0]["diffId"], image.layers[0].diff_id);
    // A name given is recorded as the naming rule spells it.
    assert_eq!(
        from_docker["name"],
        "docker.io/library/busybox-docker:latest"
    );

    let listed = berth.json(&["image", "ls", "-o", "json"]);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["unpacked"] == true));
    // Three imports of one rootfs: one committed layer.
    assert_eq!(berth.layer_dirs().len(), 1);

    let rootfs = berth
        .root()
        .join("snapshots/layers")
        .join(&berth.layer_dirs()[0])
        .join("fs");
    let status = Command::new("chroot")
        .arg(&rootfs)
        .args(["/bin/busybox", "true"])
        .status()
        .unwrap();
    assert!(status.success(), "the unpacked busybox runs");

    let inspected = berth.json(&["image", "inspect", "busybox-docker", "-o", "json"]);
    assert_eq!(
        inspected["config"]["config"]["Cmd"],
        serde_json::json!(["sh"])
    );
}

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct MountGuard<'a> {
    snapshots: &'a OverlaySnapshotter,
    target: PathBuf,
}

impl Drop for MountGuard<'_> {
    fn drop(&mut self) {
        let _ = self.snapshots.unmount(&self.target);
    }
}

#[test]
fn whiteouts_and_opaque_dirs_mount_to_exactly_the_expected_tree() {
    if !prereq::require_root("whiteouts_and_opaque_dirs_mount_to_exactly_the_expected_tree") {
        return;
    }
    let lower = Layer::gzip(vec![
        Entry::dir("a"),
        Entry::file("a/keep", "keep"),
        Entry::file("a/gone", "gone"),
        Entry::dir("a/gone-dir"),
        Entry::file("a/gone-dir/inner", "x"),
        Entry::dir("b"),
        Entry::file("b/old1", "1"),
        Entry::dir("b/old-dir"),
        Entry::file("b/old-dir/f", "f"),
        Entry::symlink("link", "a/keep"),
    ]);
    let upper = Layer {
        entries: vec![
            Entry::dir("a"),
            Entry::whiteout("a/gone"),
            Entry::whiteout("a/gone-dir"),
            Entry::dir("b"),
            Entry::opaque("b"),
            Entry::file("b/new", "new"),
            Entry::file("c", "c"),
        ],
        compression: LayerCompression::Zstd,
    };
    let top = Layer {
        entries: vec![Entry::whiteout("link"), Entry::file("a/keep", "changed")],
        compression: LayerCompression::None,
    };
    let image = img::build_image(&ImageSpec {
        layers: vec![lower, upper, top],
        ..Default::default()
    });
    let berth = Berth::new();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(&image, "latest")]);
    berth.ok(&[
        "image",
        "import",
        &source("oci-layout", &layout),
        "--name",
        "layers",
    ]);

    let images = Images::open(&berth.layout()).unwrap();
    let snapshots = OverlaySnapshotter::open(&berth.layout().snapshots()).unwrap();
    let record = images.records.find("layers").unwrap();
    snapshots
        .prepare("merged-test", &record.name, &record.chain_ids())
        .unwrap();
    let target = work.path().join("rootfs");
    snapshots.mount("merged-test", &target).unwrap();
    let _guard = MountGuard {
        snapshots: &snapshots,
        target: target.clone(),
    };
    let expected: BTreeSet<String> = ["a/", "a/keep", "b/", "b/new", "c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(tree(&target), expected);
    assert_eq!(
        fs::read_to_string(target.join("a/keep")).unwrap(),
        "changed"
    );
    // The container's writes land in its own upper directory.
    fs::write(target.join("c"), "written").unwrap();
    let upper = berth
        .root()
        .join("snapshots/containers/merged-test/upper/c");
    assert_eq!(fs::read_to_string(upper).unwrap(), "written");

    drop(_guard);
    snapshots.remove("merged-test").unwrap();
    assert!(snapshots.list().unwrap().is_empty());
}

#[test]
fn two_images_sharing_a_base_layer_store_and_unpack_it_once() {
    if !prereq::require_root("two_images_sharing_a_base_layer_store_and_unpack_it_once") {
        return;
    }
    let base = img::busybox_layer();
    let one = img::build_image(&ImageSpec {
        layers: vec![base.clone(), Layer::gzip(vec![Entry::file("one", "1")])],
        ..Default::default()
    });
    let two = img::build_image(&ImageSpec {
        layers: vec![base, Layer::gzip(vec![Entry::file("two", "2")])],
        ..Default::default()
    });
    let berth = Berth::new();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(&one, "one"), (&two, "two")]);
    berth.ok(&[
        "image",
        "import",
        &format!("{}:one", source("oci-layout", &layout)),
        "--name",
        "one",
    ]);
    berth.ok(&[
        "image",
        "import",
        &format!("{}:two", source("oci-layout", &layout)),
        "--name",
        "two",
    ]);
    // 1 shared base + 2 tops.
    assert_eq!(berth.layer_dirs().len(), 3, "{:?}", berth.layer_dirs());
    // 2 manifests + 2 configs + 1 shared base blob + 2 top blobs.
    assert_eq!(berth.blob_names().len(), 7, "{:?}", berth.blob_names());

    // Removing one image keeps what the other still needs.
    berth.ok(&["image", "rm", "one"]);
    assert_eq!(berth.layer_dirs().len(), 2);
    assert_eq!(berth.blob_names().len(), 4);
    berth.ok(&["image", "prune"]);
    assert!(berth.layer_dirs().is_empty());
    assert!(berth.blob_names().is_empty());
}

fn arm64_image() -> img::BuiltImage {
    img::build_image(&ImageSpec {
        layers: vec![Layer::gzip(vec![Entry::file("arch", "arm64")])],
        architecture: "arm64".into(),
        variant: "v8".into(),
        ..Default::default()
    })
}

#[test]
fn pulls_from_a_local_registry_by_tag_digest_and_platform_index() {
    if !prereq::require_root("pulls_from_a_local_registry_by_tag_digest_and_platform_index") {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let image = img::busybox_image();
    let arm = arm64_image();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(image, "plain")]);
    let index_digest = img::write_oci_layout_index(&layout, &[&arm, image], "multi");
    registry.push_oci_layout(&layout, "plain", "test/busybox:plain");
    registry.push_oci_layout(&layout, "multi", "test/busybox:multi");

    let berth = Berth::new();
    let plain = berth.json(&[
        "image",
        "pull",
        &registry.reference("test/busybox:plain"),
        "-o",
        "json",
    ]);
    assert_eq!(plain["manifest"], image.manifest_digest);
    assert_eq!(plain["name"], registry.reference("test/busybox:plain"));

    let multi = berth.json(&[
        "image",
        "pull",
        &registry.reference("test/busybox:multi"),
        "-o",
        "json",
    ]);
    assert_eq!(multi["target"], index_digest);
    assert_eq!(
        multi["manifest"], image.manifest_digest,
        "the amd64 manifest is chosen"
    );
    assert_eq!(multi["platform"], "linux/amd64");

    let by_digest = format!("{}/test/busybox@{}", registry.addr, image.manifest_digest);
    let pinned = berth.json(&["image", "pull", &by_digest, "-o", "json"]);
    assert_eq!(pinned["manifest"], image.manifest_digest);
    // The arm64 layer of the index was never fetched.
    assert!(!berth
        .blob_names()
        .contains(&img::digest_hex(&arm.layers[0].digest).to_string()));
    assert_eq!(berth.layer_dirs().len(), 1);
}

#[test]
fn an_index_without_this_platform_is_a_clear_error() {
    if !prereq::require_root("an_index_without_this_platform_is_a_clear_error") {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let arm = arm64_image();
    img::write_oci_layout_index(&layout, &[&arm], "arm");
    registry.push_oci_layout(&layout, "arm", "test/arm:only");
    let berth = Berth::new();
    let error = berth.fails(&["image", "pull", &registry.reference("test/arm:only")]);
    assert!(
        error.contains("has no manifest for linux/amd64 (it has: linux/arm64)"),
        "{error}"
    );
    assert!(berth
        .json(&["image", "ls", "-o", "json"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn pulls_with_basic_auth_from_a_docker_credentials_file() {
    if !prereq::require_root("pulls_with_basic_auth_from_a_docker_credentials_file") {
        return;
    }
    let Some(registry) = Registry::start_with_htpasswd("alice", "s3cret") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(img::busybox_image(), "latest")]);
    registry.push_oci_layout(&layout, "latest", "private/busybox:latest");

    let berth = Berth::new();
    let reference = registry.reference("private/busybox:latest");
    let empty = work.path().join("empty.json");
    fs::write(&empty, "{}").unwrap();
    let refused = berth.fails(&[
        "image",
        "pull",
        &reference,
        "--credentials",
        empty.to_str().unwrap(),
    ]);
    assert!(
        refused.to_lowercase().contains("not authorized"),
        "{refused}"
    );

    let credentials = work.path().join("config.json");
    let auth = common::registry::base64(b"alice:s3cret");
    fs::write(
        &credentials,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let pulled = berth.json(&[
        "image",
        "pull",
        &reference,
        "--credentials",
        credentials.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(pulled["manifest"], img::busybox_image().manifest_digest);
}

#[test]
fn a_corrupted_blob_is_rejected_and_nothing_is_recorded() {
    if !prereq::require_root("a_corrupted_blob_is_rejected_and_nothing_is_recorded") {
        return;
    }
    let image = img::build_image(&ImageSpec {
        layers: vec![Layer::gzip(vec![Entry::file(
            "data",
            "payload".repeat(100),
        )])],
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(&image, "latest")]);
    let blob = layout
        .join("blobs/sha256")
        .join(img::digest_hex(&image.layers[0].digest));
    let mut bytes = fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&blob, bytes).unwrap();

    let berth = Berth::new();
    let error = berth.fails(&["image", "import", &source("oci-layout", &layout)]);
    assert!(error.contains("does not match its content"), "{error}");
    assert!(!berth
        .blob_names()
        .contains(&img::digest_hex(&image.layers[0].digest).to_string()));
    assert!(berth.layer_dirs().is_empty());
    assert!(berth
        .json(&["image", "ls", "-o", "json"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_wrong_diff_id_is_rejected_and_the_layer_discarded() {
    if !prereq::require_root("a_wrong_diff_id_is_rejected_and_the_layer_discarded") {
        return;
    }
    let mut layer = img::build_layer(&Layer::gzip(vec![Entry::file("data", "payload")]));
    layer.diff_id = img::sha256_digest(b"not this layer");
    let image = img::assemble_image(&ImageSpec::default(), vec![layer]);
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(&image, "latest")]);
    let berth = Berth::new();
    let error = berth.fails(&["image", "import", &source("oci-layout", &layout)]);
    assert!(error.contains("but the image config says"), "{error}");
    assert!(berth.layer_dirs().is_empty());
    assert!(
        common::names_in(&berth.root().join("snapshots/tmp")).is_empty(),
        "the partial unpack is removed"
    );
    assert!(berth
        .json(&["image", "ls", "-o", "json"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_hostile_layer_is_refused_at_import_and_writes_nothing_outside() {
    if !prereq::require_root("a_hostile_layer_is_refused_at_import_and_writes_nothing_outside") {
        return;
    }
    let tar = img::hostile_tar(&[
        img::RawEntry::symlink("escape", "/"),
        img::RawEntry::file("escape/tmp/berth-hostile-marker", "owned"),
    ]);
    let layer = img::layer_from_tar(&tar, LayerCompression::Gzip);
    let image = img::assemble_image(&ImageSpec::default(), vec![layer]);
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(&image, "latest")]);
    let berth = Berth::new();
    let error = berth.fails(&["image", "import", &source("oci-layout", &layout)]);
    assert!(error.contains("escape"), "{error}");
    assert!(!Path::new("/tmp/berth-hostile-marker").exists());
    assert!(berth.layer_dirs().is_empty());
}

#[test]
fn kill_during_unpack_leaves_a_store_the_next_import_completes() {
    if !prereq::require_root("kill_during_unpack_leaves_a_store_the_next_import_completes") {
        return;
    }
    // Many small files make the unpack last long enough to be interrupted.
    let mut entries = Vec::new();
    for d in 0..60 {
        entries.push(Entry::dir(&format!("d{d}")));
        for f in 0..1000 {
            entries.push(Entry::file(&format!("d{d}/f{f}"), format!("{d}/{f}")));
        }
    }
    let image = img::build_image(&ImageSpec {
        layers: vec![Layer {
            entries,
            compression: LayerCompression::None,
        }],
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(&image, "latest")]);
    let berth = Berth::new();
    let src = source("oci-layout", &layout);

    let mut child = berth
        .command(&["image", "import", &src])
        .spawn()
        .expect("berth starts");
    let tmp = berth.root().join("snapshots/tmp");
    let started = std::time::Instant::now();
    while common::names_in(&tmp).is_empty() && started.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    child.kill().expect("SIGKILL berth by its pid");
    let status = child.wait().unwrap();
    assert!(
        status.code().is_none(),
        "berth was killed mid-unpack, not finished: {status:?}"
    );
    assert!(
        berth.layer_dirs().is_empty(),
        "no half layer looks committed"
    );
    assert!(berth
        .json(&["image", "ls", "-o", "json"])
        .as_array()
        .unwrap()
        .is_empty());

    berth.ok(&["image", "import", &src]);
    let layer = berth
        .root()
        .join("snapshots/layers")
        .join(&berth.layer_dirs()[0])
        .join("fs");
    let files: usize = (0..60)
        .map(|d| common::names_in(&layer.join(format!("d{d}"))).len())
        .sum();
    assert_eq!(files, 60_000);
    assert_eq!(
        fs::read_to_string(layer.join("d59/f999")).unwrap(),
        "59/999"
    );
    let gc = berth.json(&["gc", "-o", "json"]);
    assert!(
        gc["tempFilesRemoved"].as_u64().unwrap() >= 1,
        "the killed unpack's leftovers are collected: {gc}"
    );
    assert!(common::names_in(&tmp).is_empty());
}

#[test]
fn layers_a_container_snapshot_uses_survive_image_removal_and_gc() {
    if !prereq::require_root("layers_a_container_snapshot_uses_survive_image_removal_and_gc") {
        return;
    }
    let berth = Berth::new();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    img::write_oci_layout(&layout, &[(img::busybox_image(), "latest")]);
    berth.ok(&[
        "image",
        "import",
        &source("oci-layout", &layout),
        "--name",
        "base",
    ]);
    let images = Images::open(&berth.layout()).unwrap();
    let snapshots = OverlaySnapshotter::open(&berth.layout().snapshots()).unwrap();
    let record = images.records.find("base").unwrap();
    snapshots
        .prepare("in-use", "base", &record.chain_ids())
        .unwrap();

    let refused = berth.fails(&["image", "rm", "base"]);
    assert!(
        refused.contains("used by container snapshot(s) in-use"),
        "{refused}"
    );
    berth.ok(&["image", "rm", "--force", "base"]);
    berth.ok(&["gc"]);
    assert_eq!(berth.layer_dirs().len(), 1, "the container's layer stays");
    assert!(snapshots.has_layer(&record.chain_ids()[0]));

    snapshots.remove("in-use").unwrap();
    berth.ok(&["gc"]);
    assert!(berth.layer_dirs().is_empty());
}
