//! Privileged without the host's devices (`ctr run
//! --privileged-without-host-devices`), end to end as root with real runc:
//! `berth run --privileged --no-host-devices` and `privileged: {hostDevices:
//! false}` give every capability but only the default devices, and bad uses
//! of either are refused with a clear error.

mod common;

use std::fs;

use common::instance::Instance;
use common::prereq;
use common::site::{container_yaml, Site};

fn ready(test: &str) -> bool {
    prereq::require_root(test)
        && prereq::require_busybox(test)
        && prereq::require_binary("runc", "runc").is_some()
}

/// The hex CapEff of the container's first process.
const CAP_EFF: &str = "grep CapEff /proc/self/status";
/// Every block device the container's /dev holds, one per line, sorted.
const BLOCK_DEVICES: &str = "find /dev -type b | sort";

/// `berth run --rm FLAGS BUSYBOX sh -c SCRIPT`: its stdout.
fn run_sh(instance: &Instance, flags: &[&str], script: &str) -> String {
    let image = instance.busybox();
    let name = instance.unique_name("priv");
    let mut args = vec!["run", "--rm", "--name", &name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&image, "sh", "-c", script]);
    instance.ok(&args)
}

fn cap_eff(text: &str) -> u64 {
    let hex = text.split_whitespace().nth(1).unwrap_or_default();
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("no CapEff in {text:?}"))
}

/// The host's block devices directly in /dev (vda, loop0, ...): what a
/// privileged container with host devices sees and one without must not.
fn host_block_devices() -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    let mut found: Vec<String> = fs::read_dir("/dev")
        .expect("read /dev")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_block_device()))
        .map(|e| format!("/dev/{}", e.file_name().to_string_lossy()))
        .collect();
    found.sort();
    found
}

/// A host block device this process may open, as `(path, major, minor)`:
/// the one a container tries to reach through a node it makes itself (the
/// device cgroup refuses at open, so opening is what tells).
fn openable_host_disk() -> Option<(String, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    host_block_devices().into_iter().find_map(|path| {
        let opens = fs::File::open(&path).is_ok();
        let rdev = fs::metadata(&path).ok()?.rdev();
        opens.then(|| {
            (
                path,
                nix::sys::stat::major(rdev),
                nix::sys::stat::minor(rdev),
            )
        })
    })
}

/// A script that makes a node for the disk and opens it for reading:
/// `opened` or `refused`. The node goes on a tmpfs of the container's own
/// (the rootfs is mounted nodev, and the host's /dev must not get it).
fn open_through_own_node(major: u64, minor: u64) -> String {
    format!(
        "mkdir /own && mount -t tmpfs own /own && mknod /own/disk b {major} {minor} && \\
         if (: < /own/disk) 2>/dev/null; then echo opened; else echo refused; fi"
    )
}

#[test]
fn privileged_without_host_devices_has_every_capability_and_no_host_block_device() {
    let test = "privileged_without_host_devices_has_every_capability_and_no_host_block_device";
    if !ready(test) {
        return;
    }
    let host = host_block_devices();
    assert!(
        !host.is_empty(),
        "this host has no block device in /dev to compare with"
    );
    let instance = Instance::with_busybox();

    let full_caps = cap_eff(&run_sh(&instance, &["--privileged"], CAP_EFF));
    let bare_caps = cap_eff(&run_sh(
        &instance,
        &["--privileged", "--no-host-devices"],
        CAP_EFF,
    ));
    let default_caps = cap_eff(&run_sh(&instance, &[], CAP_EFF));
    assert_eq!(
        bare_caps, full_caps,
        "every capability --privileged gives ({full_caps:x})"
    );
    assert_ne!(bare_caps, default_caps, "more than the default set");

    let full_devices = run_sh(&instance, &["--privileged"], BLOCK_DEVICES);
    for device in &host {
        assert!(
            full_devices.lines().any(|l| l == device),
            "--privileged sees the host's {device}: {full_devices:?}"
        );
    }
    let bare_devices = run_sh(
        &instance,
        &["--privileged", "--no-host-devices"],
        BLOCK_DEVICES,
    );
    assert_eq!(bare_devices, "", "no block device at all in /dev");
    let bare_dev = run_sh(&instance, &["--privileged", "--no-host-devices"], "ls /dev");
    for default in ["null", "zero", "full", "random", "urandom", "tty", "pts"] {
        assert!(
            bare_dev.split_whitespace().any(|d| d == default),
            "the default /dev/{default} is there: {bare_dev:?}"
        );
    }
    assert!(
        !bare_dev.split_whitespace().any(|d| d == "kmsg"),
        "no host character device beyond the defaults: {bare_dev:?}"
    );

    // With CAP_MKNOD it could make the node itself: the device cgroup must
    // still keep it off the host's disk, as it does not for --privileged.
    if let Some((disk, major, minor)) = openable_host_disk() {
        let script = open_through_own_node(major, minor);
        assert_eq!(
            run_sh(&instance, &["--privileged"], &script).trim(),
            "opened",
            "--privileged opens {disk}"
        );
        assert_eq!(
            run_sh(&instance, &["--privileged", "--no-host-devices"], &script).trim(),
            "refused",
            "without host devices {disk} stays out of reach"
        );
    } else {
        eprintln!("{test}: no host block device opens here; the device cgroup part is skipped");
    }
}

#[test]
fn no_host_devices_without_privileged_is_refused() {
    if !ready("no_host_devices_without_privileged_is_refused") {
        return;
    }
    let instance = Instance::with_busybox();
    let image = instance.busybox();
    let name = instance.unique_name("nohost");
    let error = instance.fails(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--no-host-devices",
        &image,
        "true",
    ]);
    assert!(
        error.contains("--no-host-devices applies only with --privileged"),
        "{error}"
    );
    assert!(
        !instance.state().join("containers").join(&name).exists(),
        "nothing was created"
    );
}

#[test]
fn a_manifest_with_host_devices_false_runs_privileged_without_them() {
    if !prereq::require_apply("a_manifest_with_host_devices_false_runs_privileged_without_them") {
        return;
    }
    let site = Site::new("pd");
    let bare = format!("{}-bare", site.tag);
    let full = format!("{}-full", site.tag);
    let body = |privileged: &str| {
        format!("  networkMode: none\n  privileged: {privileged}\n  command: [sleep, '1000']\n")
    };
    site.write(
        "bare.yaml",
        &container_yaml(&bare, &body("{hostDevices: false}")),
    );
    site.write("full.yaml", &container_yaml(&full, &body("{}")));
    site.apply(&[]);
    site.pid_of(&bare);
    site.pid_of(&full);

    assert_eq!(
        cap_eff(&site.sh(&bare, CAP_EFF)),
        cap_eff(&site.sh(&full, CAP_EFF)),
        "every capability, as `privileged: {{}}` (hostDevices true by default)"
    );
    assert_eq!(site.sh(&bare, BLOCK_DEVICES), "");
    let full_devices = site.sh(&full, BLOCK_DEVICES);
    for device in host_block_devices() {
        assert!(
            full_devices.lines().any(|l| l == device),
            "`privileged: {{}}` sees the host's {device}: {full_devices:?}"
        );
    }

    // Spelling `{}` as `true` changes nothing; dropping the host devices
    // replaces the container.
    site.write("full.yaml", &container_yaml(&full, &body("true")));
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 0, "`true` is `{{}}`: nothing to do\n{plan}");
    site.write(
        "full.yaml",
        &container_yaml(&full, &body("{hostDevices: false}")),
    );
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "a change to apply\n{plan}");
    assert!(
        plan.contains(&full) && plan.contains("spec.privileged"),
        "{plan}"
    );
}

#[test]
fn bad_privileged_values_name_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    let check = |privileged: &str| {
        let text = format!(
            "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: web\nspec:\n  image: busybox\n  privileged:\n{privileged}"
        );
        fs::write(&file, text).unwrap();
        let output = common::cli::run(
            dir.path(),
            &[
                "validate",
                "--allow-untrusted-manifests",
                "-f",
                file.to_str().unwrap(),
            ],
        );
        assert!(!output.status.success(), "{privileged} is refused");
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    };
    let reported = |output: &str, expected: &str| {
        assert!(
            output.lines().any(|line| line.contains(expected)),
            "expected a line containing {expected:?} in:\n{output}"
        );
    };

    let output = check("    hostDevices: 3\n");
    reported(
        &output,
        "web.yaml:8:18: spec.privileged.hostDevices: expected a boolean, found an integer",
    );
    let output = check("    hostDevices: false\n    hostDevice: true\n");
    reported(&output, "web.yaml:9:5: spec.privileged.hostDevice: unknown field \"hostDevice\", did you mean \"hostDevices\"?");
    let output = check("    devices: false\n");
    reported(
        &output,
        "web.yaml:8:5: spec.privileged.devices: unknown field \"devices\"",
    );
    let output = check("    - true\n");
    reported(
        &output,
        "web.yaml:8:5: spec.privileged: expected a boolean or a mapping, found a list",
    );
}
