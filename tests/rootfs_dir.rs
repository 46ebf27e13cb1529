//! A plain rootfs directory instead of an image, end to end as root with
//! real runc and overlayfs: `berth run --rootfs DIR COMMAND...` and
//! `image: rootfs:DIR` in a manifest. The container writes to its own
//! overlay layer and DIR stays byte-identical; a change at DIR's top level
//! makes plan replace the container; a missing, world-writable or
//! command-less DIR is refused with a clear message.
//!
//! Rootfs trees live in a root-owned 0755 directory under /var/lib (not
//! /tmp: that is sticky and world-writable, and berth trusts nothing under
//! it), made fresh per test and removed on drop.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::instance::Instance;
use common::prereq::{require_apply, require_binary, require_busybox, require_root};
use common::site::Site;
use common::trusted::TrustedDir;

/// A debootstrap-free rootfs at `dir`: the host's static busybox as
/// `/bin/busybox`, a few applets linked to it, and empty `/proc`, `/sys`,
/// `/dev` and `/etc`.
fn make_rootfs(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    for applet in ["sh", "echo", "cat", "mkdir", "sleep", "pwd", "id", "env"] {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    for empty in ["proc", "sys", "dev", "etc"] {
        fs::create_dir(dir.join(empty)).unwrap();
    }
    for path in [dir.to_path_buf(), dir.join("bin")] {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Every entry under `dir` (itself included) by relative path: its type and
/// mode, owner, and content (a file's bytes, a link's target).
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = fs::symlink_metadata(&path).unwrap();
        let content = if metadata.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
            String::new()
        } else if metadata.file_type().is_symlink() {
            fs::read_link(&path).unwrap().display().to_string()
        } else {
            let bytes = fs::read(&path).unwrap();
            format!(
                "{} bytes, sha256 {}",
                bytes.len(),
                common::images::sha256_hex(&bytes)
            )
        };
        entries.insert(
            path.strip_prefix(dir).unwrap().to_path_buf(),
            format!(
                "mode {:o} owner {}:{} {content}",
                metadata.mode(),
                metadata.uid(),
                metadata.gid()
            ),
        );
    }
    entries
}

fn require_run(test: &str) -> bool {
    require_root(test) && require_busybox(test) && require_binary("runc", "runc").is_some()
}

#[test]
fn run_rootfs_runs_the_command_on_dir_and_leaves_dir_byte_identical() {
    if !require_run("run_rootfs_runs_the_command_on_dir_and_leaves_dir_byte_identical") {
        return;
    }
    let trusted = TrustedDir::new("rootfs");
    let rootfs = trusted.path().join("rootfs");
    make_rootfs(&rootfs);
    let before = tree(&rootfs);
    let instance = Instance::new();
    let dir = rootfs.display().to_string();
    let out = instance.ok(&[
        "run",
        "--rm",
        "--rootfs",
        &dir,
        "sh",
        "-c",
        "echo written > /new; echo more >> /bin/busybox; mkdir -p /var/x; echo e > /etc/e; \
         cat /new; pwd; id -u; echo \"$PATH\"",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "written",
            "/",
            "0",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ],
        "the command ran as root in / with PATH only: {out}"
    );

    // Detached: ps and inspect name the directory as the image.
    let name = instance.unique_name("rootfs");
    instance.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--rootfs",
        &dir,
        "sh",
        "-c",
        "echo detached > /tmp-file; sleep 1000",
    ]);
    let image = format!("rootfs:{dir}");
    assert_eq!(instance.inspect(&name)["record"]["image"], image.as_str());
    let ps = instance.ok(&["ps", "-a"]);
    assert!(
        ps.lines().any(|l| l.contains(&name) && l.contains(&image)),
        "{ps}"
    );
    instance.ok(&["rm", "-f", &name]);

    assert_eq!(tree(&rootfs), before, "the rootfs directory was written");
}

#[test]
fn a_manifest_runs_on_a_rootfs_dir_and_a_top_level_change_replaces_it() {
    if !require_apply("a_manifest_runs_on_a_rootfs_dir_and_a_top_level_change_replaces_it") {
        return;
    }
    let site = Site::new("rf");
    // Beside the manifest tree, named relative to the manifest's directory.
    let rootfs = fs::canonicalize(site.path()).unwrap().join("rootfs");
    make_rootfs(&rootfs);
    let before = tree(&rootfs);
    let name = format!("{}-c", site.tag);
    site.write(
        "c.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: {name}\nspec:\n  \
             image: rootfs:../rootfs\n  networkMode: none\n  \
             command: [sh, -c, 'echo from-manifest > /w; exec sleep 1000']\n"
        ),
    );
    site.apply(&[]);
    site.pid_of(&name);
    assert_eq!(site.sh(&name, "cat /w").trim(), "from-manifest");
    let image = format!("rootfs:{}", rootfs.display());
    assert_eq!(site.inspect(&name)["record"]["image"], image.as_str());
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 0, "nothing changed: {plan}");
    assert_eq!(tree(&rootfs), before, "the rootfs directory was written");

    // A new top-level entry is the documented change marker.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(rootfs.join("marker"), b"v2").unwrap();
    let changed = tree(&rootfs);
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "{plan}");
    assert!(
        plan.lines()
            .any(|l| l.contains("replace") && l.contains(&name) && l.contains("image")),
        "plan replaces the container: {plan}"
    );
    site.apply(&[]);
    site.pid_of(&name);
    assert_eq!(site.sh(&name, "cat /marker").trim(), "v2");
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 0, "replaced once: {plan}");
    site.ok(&["rm", "-f", &name]);
    assert_eq!(tree(&rootfs), changed, "the rootfs directory was written");
}

#[test]
fn a_missing_world_writable_or_command_less_rootfs_is_refused_clearly() {
    if !require_run("a_missing_world_writable_or_command_less_rootfs_is_refused_clearly") {
        return;
    }
    let trusted = TrustedDir::new("rootfs");
    let rootfs = trusted.path().join("rootfs");
    make_rootfs(&rootfs);
    let instance = Instance::new();
    let missing = trusted.path().join("missing").display().to_string();
    let dir = rootfs.display().to_string();

    let error = instance.fails(&["run", "--rm", "--rootfs", &missing, "sh"]);
    assert!(
        error.contains(&missing) && error.contains("does not exist"),
        "{error}"
    );
    let error = instance.fails(&["run", "--rm", "--rootfs", &dir]);
    assert!(error.contains("give one"), "{error}");
    let file = rootfs.join("bin/busybox").display().to_string();
    let error = instance.fails(&["run", "--rm", "--rootfs", &file, "sh"]);
    assert!(error.contains("is not a directory"), "{error}");

    // The manifest path: each problem at its file, line, column and field.
    let manifests = trusted.path().join("manifests");
    fs::create_dir(&manifests).unwrap();
    fs::set_permissions(&manifests, fs::Permissions::from_mode(0o755)).unwrap();
    let yaml = |name: &str, image: &str, command: &str| {
        format!(
            "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: {name}\nspec:\n  \
             image: {image}\n{command}"
        )
    };
    let with_command = "  command: [sh]\n";
    fs::write(
        manifests.join("gone.yaml"),
        yaml("gone", "rootfs:../missing", with_command),
    )
    .unwrap();
    fs::write(
        manifests.join("bare.yaml"),
        yaml("bare", "rootfs:../rootfs", ""),
    )
    .unwrap();
    let validate = |paths: &Path| {
        let output = instance.run(&["validate", "-f", &paths.display().to_string()]);
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    };
    let report = validate(&manifests);
    assert!(
        report.contains("gone.yaml:6:10: spec.image")
            && report.contains("rootfs directory")
            && report.contains("does not exist"),
        "{report}"
    );
    assert!(
        report.contains("bare.yaml:6:10: spec.image") && report.contains("set command"),
        "{report}"
    );

    // World-writable: another user could change what runs as root.
    fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o777)).unwrap();
    let error = instance.fails(&["run", "--rm", "--rootfs", &dir, "sh"]);
    assert!(
        error.contains(&dir) && error.contains("world-writable"),
        "{error}"
    );
    fs::remove_file(manifests.join("gone.yaml")).unwrap();
    fs::write(
        manifests.join("bare.yaml"),
        yaml("bare", "rootfs:../rootfs", with_command),
    )
    .unwrap();
    let report = validate(&manifests);
    assert!(
        report.contains("bare.yaml:6:10: spec.image") && report.contains("world-writable"),
        "{report}"
    );
}
