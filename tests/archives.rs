//! Archives from other tools and for them, end to end as root: OCI and
//! docker archives written by skopeo and by GNU tar (with `./` prefixes,
//! directory members and either order of members) import and run;
//! hostile members are refused; `berth image save` writes archives that
//! skopeo reads back with the same digest and layers, and that berth
//! imports again.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::images::{self as img, RawEntry};
use common::instance::Instance;
use common::prereq;
use serde_json::Value;

fn require(test: &str) -> bool {
    prereq::require_root(test)
        && prereq::require_busybox(test)
        && prereq::require_binary("runc", "runc").is_some()
        && prereq::require_binary("skopeo", "skopeo").is_some()
        && prereq::require_binary("tar", "tar").is_some()
}

/// Runs a tool, expects success, returns its stdout.
fn tool(program: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let mut all = vec!["--insecure-policy"];
    all.extend_from_slice(args);
    tool("skopeo", &all)
}

fn skopeo_inspect(image: &str) -> Value {
    serde_json::from_slice(&skopeo(&["inspect", image])).expect("skopeo prints JSON")
}

fn member_names(archive: &Path) -> Vec<String> {
    String::from_utf8(tool("tar", &["-tf", &archive.display().to_string()]))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// An instance with the test busybox layout, and a scratch dir for archives.
struct Archives {
    berth: Instance,
    scratch: PathBuf,
}

common::deref_to!(Archives, berth: Instance);

impl Archives {
    fn new() -> Archives {
        let berth = Instance::with_busybox();
        let scratch = berth.path().join("archives");
        fs::create_dir_all(&scratch).unwrap();
        Archives { berth, scratch }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    fn layout_ref(&self) -> String {
        format!("oci:{}:latest", self.busybox_dir().display())
    }

    /// Imports `source` under `name`, runs it, and returns the record.
    fn import_and_run(&self, source: &str, name: &str) -> Value {
        let record: Value = serde_json::from_str(
            &self.ok(&["image", "import", source, "--name", name, "-o", "json"]),
        )
        .expect("import prints JSON");
        let ran = self.ok(&["run", "--rm", name, "sh", "-c", "echo ran from $0"]);
        assert_eq!(ran.trim(), "ran from sh", "{source}");
        record
    }
}

/// A GNU tar of the busybox layout with these members in this order:
/// `./` prefixes and a member per directory, as `tar -C DIR -cf F .` writes.
fn gnu_tar(archives: &Archives, name: &str, members: &[&str]) -> PathBuf {
    let path = archives.file(name);
    let mut args = vec![
        "--numeric-owner".to_string(),
        "-C".into(),
        archives.busybox_dir().display().to_string(),
        "-cf".into(),
        path.display().to_string(),
    ];
    args.extend(members.iter().map(|m| m.to_string()));
    tool("tar", &args.iter().map(String::as_str).collect::<Vec<_>>());
    path
}

#[test]
fn oci_archives_from_skopeo_and_gnu_tar_import_in_either_order_and_run() {
    if !require("oci_archives_from_skopeo_and_gnu_tar_import_in_either_order_and_run") {
        return;
    }
    let archives = Archives::new();
    let manifest = &img::busybox_image().manifest_digest;

    let by_skopeo = archives.file("skopeo.oci.tar");
    skopeo(&[
        "copy",
        &archives.layout_ref(),
        &format!("oci-archive:{}", by_skopeo.display()),
    ]);
    assert!(
        member_names(&by_skopeo).contains(&"blobs/sha256/".to_string()),
        "skopeo writes directory members"
    );
    // Regression: the `blobs/sha256/` member was read as a blob named "".
    let record = archives.import_and_run(&format!("oci-archive:{}", by_skopeo.display()), "sk");
    assert_eq!(&record["manifest"], manifest);

    let whole_dir = gnu_tar(&archives, "dot.oci.tar", &["."]);
    assert!(member_names(&whole_dir).contains(&"./blobs/sha256/".to_string()));
    let record = archives.import_and_run(&format!("oci-archive:{}", whole_dir.display()), "dot");
    assert_eq!(&record["manifest"], manifest);

    for (name, members) in [
        ("index-last", ["./oci-layout", "./blobs", "./index.json"]),
        ("index-first", ["./index.json", "./oci-layout", "./blobs"]),
    ] {
        let archive = gnu_tar(&archives, &format!("{name}.oci.tar"), &members);
        let names = member_names(&archive);
        let index = names.iter().position(|n| n == "./index.json").unwrap();
        let blob = names
            .iter()
            .position(|n| n.starts_with("./blobs/sha256/"))
            .unwrap();
        assert_eq!(index > blob, name == "index-last", "{names:?}");
        let record =
            archives.import_and_run(&format!("oci-archive:{}:latest", archive.display()), name);
        assert_eq!(&record["manifest"], manifest, "{name}");
    }
}

#[test]
fn docker_archives_from_skopeo_and_gnu_tar_import_with_manifest_json_first_or_last() {
    if !require("docker_archives_from_skopeo_and_gnu_tar_import_with_manifest_json_first_or_last") {
        return;
    }
    let archives = Archives::new();
    let image = img::busybox_image();
    let by_skopeo = archives.file("skopeo.docker.tar");
    skopeo(&[
        "copy",
        &archives.layout_ref(),
        &format!("docker-archive:{}:mybb:v1", by_skopeo.display()),
    ]);
    let names = member_names(&by_skopeo);
    assert_eq!(
        names.last().map(String::as_str),
        Some("repositories"),
        "{names:?}"
    );
    let record = archives.import_and_run(&format!("docker-archive:{}", by_skopeo.display()), "skd");
    assert_eq!(record["config"], image.config_digest);
    assert_eq!(record["layers"][0]["diffId"], image.layers[0].diff_id);

    // The same members again by GNU tar, manifest.json first and last
    // (skopeo's legacy `ID/layer.tar` links come along, unread).
    let tree = archives.file("docker-tree");
    fs::create_dir_all(&tree).unwrap();
    let tree_arg = tree.display().to_string();
    tool(
        "tar",
        &["-C", &tree_arg, "-xf", &by_skopeo.display().to_string()],
    );
    let mut rest: Vec<String> = common::names_in(&tree)
        .into_iter()
        .filter(|n| n != "manifest.json")
        .map(|n| format!("./{n}"))
        .collect();
    rest.sort();
    for (name, first) in [("manifest-first", true), ("manifest-last", false)] {
        let archive = archives.file(&format!("{name}.docker.tar"));
        let mut members = rest.clone();
        if first {
            members.insert(0, "./manifest.json".into());
        } else {
            members.push("./manifest.json".into());
        }
        let mut args = vec!["-C".to_string(), tree_arg.clone(), "-cf".into()];
        args.push(archive.display().to_string());
        args.extend(members);
        tool("tar", &args.iter().map(String::as_str).collect::<Vec<_>>());
        let record =
            archives.import_and_run(&format!("docker-archive:{}", archive.display()), name);
        assert_eq!(record["config"], image.config_digest, "{name}");
    }
}

/// An OCI archive of the busybox image with `extra` members first and,
/// when `link_layer`, its layer blob as a symlink instead of a file.
fn hostile_oci_archive(archives: &Archives, extra: &[RawEntry], link_layer: bool) -> PathBuf {
    let image = img::busybox_image();
    let mut entries = extra.to_vec();
    entries.push(RawEntry::file(
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    let layout = archives.busybox_dir();
    entries.push(RawEntry::file(
        "index.json",
        fs::read(layout.join("index.json")).unwrap(),
    ));
    for (digest, data) in image.blobs() {
        let name = format!("blobs/sha256/{}", img::digest_hex(digest));
        if link_layer && digest == image.layers[0].digest {
            entries.push(RawEntry::symlink(&name, "/etc/shadow"));
        } else {
            entries.push(RawEntry::file(&name, data.to_vec()));
        }
    }
    let path = archives.file(&format!("hostile-{}.tar", common::instance::serial()));
    fs::write(&path, img::hostile_tar(&entries)).unwrap();
    path
}

#[test]
fn hostile_archive_members_are_still_refused() {
    if !require("hostile_archive_members_are_still_refused") {
        return;
    }
    let archives = Archives::new();
    for (extra, link_layer, expected) in [
        (
            vec![RawEntry::file("../escape", b"x".to_vec())],
            false,
            "climbs out",
        ),
        (
            vec![RawEntry::file("/etc/escape", b"x".to_vec())],
            false,
            "absolute",
        ),
        (
            vec![RawEntry::dir("./blobs/../../up/")],
            false,
            "climbs out",
        ),
        (Vec::new(), true, "link"),
    ] {
        let archive = hostile_oci_archive(&archives, &extra, link_layer);
        let source = format!("oci-archive:{}", archive.display());
        let error = archives.fails(&["image", "import", &source, "--name", "hostile"]);
        assert!(error.contains(expected), "{expected}: {error}");
        let listed = archives.ok(&["image", "ls"]);
        assert!(!listed.contains("hostile"), "{listed}");
    }
    // The same archive without the hostile member imports: the refusals
    // above were for the members, not the rest.
    let clean = hostile_oci_archive(&archives, &[RawEntry::dir("./blobs/sha256/")], false);
    archives.import_and_run(&format!("oci-archive:{}", clean.display()), "clean");
}

#[test]
fn saved_archives_read_back_with_skopeo_and_import_again() {
    if !require("saved_archives_read_back_with_skopeo_and_import_again") {
        return;
    }
    let archives = Archives::new();
    let image = img::busybox_image();
    archives.ok(&[
        "image",
        "import",
        &archives.busybox(),
        "--name",
        "mybusybox",
    ]);
    archives.ok(&["image", "tag", "mybusybox", "example.test/team/tool:v2"]);

    let oci = archives.file("saved.oci.tar");
    archives.ok(&[
        "image",
        "save",
        "example.test/team/tool:v2",
        "-o",
        &oci.display().to_string(),
    ]);
    // By the tag the annotation gives, as skopeo names images in a layout.
    let inspected = skopeo_inspect(&format!("oci-archive:{}:v2", oci.display()));
    assert_eq!(inspected["Digest"], image.manifest_digest);
    let layers: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(inspected["Layers"], serde_json::json!(layers));

    let docker = archives.file("saved.docker.tar");
    archives.ok(&[
        "image",
        "save",
        "mybusybox",
        "-o",
        &docker.display().to_string(),
        "--format",
        "docker-archive",
    ]);
    // A docker archive holds plain tars: skopeo names them by diff id.
    let inspected = skopeo_inspect(&format!("docker-archive:{}", docker.display()));
    let diff_ids: Vec<&str> = image.layers.iter().map(|l| l.diff_id.as_str()).collect();
    assert_eq!(inspected["Layers"], serde_json::json!(diff_ids));
    let config: Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        "--config",
        &format!("docker-archive:{}", docker.display()),
    ]))
    .unwrap();
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));
    let manifest: Value = serde_json::from_slice(&tool(
        "tar",
        &["-xOf", &docker.display().to_string(), "manifest.json"],
    ))
    .unwrap();
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["docker.io/library/mybusybox:latest"])
    );

    // And back into a berth that has never seen the image.
    let other = Archives::new();
    let record = other.import_and_run(&format!("oci-archive:{}", oci.display()), "again");
    assert_eq!(record["manifest"], image.manifest_digest);
    let record = other.import_and_run(&format!("docker-archive:{}", docker.display()), "again-d");
    assert_eq!(record["config"], image.config_digest);

    // A save that cannot finish leaves nothing at the output path.
    let missing = archives.file("never.tar");
    let error = archives.fails(&[
        "image",
        "save",
        "absent",
        "-o",
        &missing.display().to_string(),
    ]);
    assert!(error.contains("no image named"), "{error}");
    assert!(!missing.exists());
    assert_eq!(
        common::names_in(&archives.scratch)
            .iter()
            .filter(|n| n.starts_with('.'))
            .count(),
        0
    );
}
