//! The trust check end to end, as root: berth refuses manifests, and the
//! files they name, that another local user could change, says which file
//! or directory broke which rule and how to fix it, and reads what it checked.
//!
//! Every tree here lives in a root-owned 0755 directory under /var/lib (not
//! /tmp or /var/tmp: those are sticky and world-writable, so nothing under
//! them is trusted). The unprivileged user `berthtest` is created once and
//! reused.

mod common;

use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::prereq::require_root;
use common::trusted::TrustedDir;

const USER: &str = "berthtest";

const NET: &str =
    "apiVersion: berth/v1\nkind: Network\nmetadata: {name: front}\nspec: {subnet: 10.231.0.0/24}\n";

fn mkdir(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The uid and gid of `berthtest`, created when missing.
fn test_user() -> (u32, u32) {
    let lookup = || -> Option<(u32, u32)> {
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, USER]).output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        Some((id("-u")?, id("-g")?))
    };
    if let Some(ids) = lookup() {
        return ids;
    }
    // Another test process may be creating it at the same moment.
    let _ = Command::new("useradd").args(["-m", USER]).status();
    lookup().expect("useradd -m berthtest")
}

/// `berth validate ARGS...` with no SUDO_UID (unless `sudo_uid`).
fn validate(args: &[&str], sudo_uid: Option<u32>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command.arg("validate").args(args).env_remove("SUDO_UID");
    if let Some(uid) = sudo_uid {
        command.env("SUDO_UID", uid.to_string());
    }
    command.stdin(Stdio::null()).output().expect("berth runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_manifest_in_a_directory_another_user_can_write_is_refused() {
    if !require_root("a_manifest_in_a_directory_another_user_can_write_is_refused") {
        return;
    }
    let (uid, gid) = test_user();
    let base = TrustedDir::new("trust");
    let tree = base.path().join("manifests");
    mkdir(&tree, 0o755);
    write(&tree.join("net.yaml"), NET, 0o644);
    let arg = tree.to_str().unwrap();
    assert!(validate(&["-f", arg], None).status.success());

    // Owned by the user: refused, with the fix; trusted when that user is the one running sudo.
    chown(&tree, Some(uid), Some(gid)).unwrap();
    let refused = validate(&["-f", arg], None);
    assert_eq!(refused.status.code(), Some(1));
    let text = stdout(&refused);
    assert!(
        text.contains(&format!(
            "refusing untrusted manifest: directory {arg} is owned by uid {uid}, not root"
        )) && text.contains(&format!("chown root {arg}")),
        "{text}"
    );
    assert!(
        validate(&["-f", arg], Some(uid)).status.success(),
        "SUDO_UID's own directory is trusted"
    );
    assert!(validate(&["--allow-untrusted-manifests", "-f", arg], None)
        .status
        .success());

    // Root-owned but writable by the user's group: refused.
    chown(&tree, Some(0), Some(gid)).unwrap();
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o775)).unwrap();
    let text = stdout(&validate(&["-f", arg], None));
    assert!(
        text.contains(&format!("directory {arg} is group-writable (mode 0775)"))
            && text.contains(&format!("chmod go-w {arg}")),
        "{text}"
    );

    // A writable directory above the one named: refused too.
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o755)).unwrap();
    chown(base.path(), Some(uid), None).unwrap();
    let file = tree.join("net.yaml");
    let text = stdout(&validate(&["-f", file.to_str().unwrap()], None));
    assert!(
        text.contains(&format!(
            "directory {} is owned by uid {uid}",
            base.path().display()
        )),
        "{text}"
    );
    chown(base.path(), Some(0), None).unwrap();

    // A world-writable manifest file.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let text = stdout(&validate(&["-f", arg], None));
    assert!(
        text.contains(&format!(
            "file {} is world-writable (mode 0666)",
            file.display()
        )),
        "{text}"
    );
}

#[test]
fn an_env_file_the_user_controls_is_refused_naming_it() {
    if !require_root("an_env_file_the_user_controls_is_refused_naming_it") {
        return;
    }
    let (uid, _) = test_user();
    let base = TrustedDir::new("trust");
    let web = base.path().join("web.yaml");
    write(
        &web,
        "apiVersion: berth/v1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: busybox\n  envFiles: [app.env]\n",
        0o644,
    );
    let env_file = base.path().join("app.env");
    write(&env_file, "A=1\n", 0o644);
    let arg = base.path().to_str().unwrap();
    assert!(validate(&["-f", arg], None).status.success());

    chown(&env_file, Some(uid), None).unwrap();
    let refused = validate(&["-f", arg], None);
    assert_eq!(refused.status.code(), Some(1));
    let text = stdout(&refused);
    assert!(
        text.contains(&format!(
            "{}:6:14: spec.envFiles[0]: refusing untrusted env file {}: file {} is owned by uid {uid}, not root",
            web.display(),
            env_file.display(),
            env_file.display()
        )),
        "{text}"
    );
    assert!(validate(&["--allow-untrusted-manifests", "-f", arg], None)
        .status
        .success());
}

#[test]
fn a_symlink_to_root_in_the_tree_is_an_error_naming_the_link() {
    if !require_root("a_symlink_to_root_in_the_tree_is_an_error_naming_the_link") {
        return;
    }
    let base = TrustedDir::new("trust");
    write(&base.path().join("net.yaml"), NET, 0o644);
    let link = base.path().join("host");
    symlink("/", &link).unwrap();
    let arg = base.path().to_str().unwrap();
    let started = Instant::now();
    for args in [
        vec!["-f", arg],
        vec!["--allow-untrusted-manifests", "-f", arg],
    ] {
        let output = validate(&args, None);
        assert_eq!(output.status.code(), Some(1));
        let text = stdout(&output);
        assert!(
            text.contains(&format!("{}: symlink to / leads to /", link.display())),
            "{text}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the host was not walked"
    );
}

/// Regression for the check-then-read race: berth used to check a file's
/// metadata and then read it again by path, so swapping the file in between
/// got unchecked content read. Here a thread keeps exchanging a checked
/// manifest with a world-writable one holding an object the schema rejects;
/// validate must either read the checked file, or refuse, never parse the
/// swapped-in text.
#[test]
fn a_file_swapped_in_after_the_check_is_never_read() {
    if !require_root("a_file_swapped_in_after_the_check_is_never_read") {
        return;
    }
    let base = TrustedDir::new("trust");
    let tree = base.path().join("m");
    mkdir(&tree, 0o755);
    let manifest = tree.join("net.yaml");
    write(&manifest, NET, 0o644);
    let evil = tree.join(".evil");
    write(
        &evil,
        "apiVersion: berth/v1\nkind: Swapped\nmetadata: {name: evil}\n",
        0o666,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, manifest, evil) = (stop.clone(), manifest.clone(), evil.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &manifest,
                    nix::fcntl::AT_FDCWD,
                    &evil,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .expect("exchange");
                swaps += 1;
            }
            swaps
        })
    };
    let (mut read, mut refused) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let output = validate(&["-f", manifest.to_str().unwrap()], None);
        let text = stdout(&output);
        assert!(
            !text.contains("Swapped"),
            "unchecked content was read:\n{text}"
        );
        if output.status.success() {
            read += 1;
        } else {
            assert!(
                text.contains("world-writable") || text.contains("replaced"),
                "{text}"
            );
            refused += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0 && read + refused > 0);
    eprintln!("{swaps} swaps; {read} runs read the checked file, {refused} refused");
}
