//! Prerequisite checks for integration tests.
//!
//! A test that needs root or a system tool asks here first. Outside CI a
//! missing prerequisite skips the test (with a notice on stderr, and the test
//! returns early and passes); under `CI=true` it is a hard failure, so CI can
//! never go green by skipping everything.

use std::env;
use std::path::{Path, PathBuf};

/// True when running under CI (`CI=true`), where skipping is not allowed.
pub fn in_ci() -> bool {
    env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// The effective uid of this process, from `/proc/self/status`.
pub fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("parse Uid line of /proc/self/status")
}

/// True when the test may use root. Not root: panics under `CI=true`, else
/// prints a skip notice and returns false (the caller returns early).
pub fn require_root(test: &str) -> bool {
    if euid() == 0 {
        return true;
    }
    if in_ci() {
        panic!("{test} needs root; CI must run the suite as root");
    }
    eprintln!("SKIP {test}: needs root (run the suite as root to include it)");
    false
}

/// Finds `name` on PATH (plus /usr/sbin and /sbin). Missing: panics under
/// `CI=true`, else prints a skip notice and returns None.
pub fn require_binary(name: &str, package: &str) -> Option<PathBuf> {
    if let Some(p) = find_binary(name) {
        return Some(p);
    }
    if in_ci() {
        panic!(
            "missing {name}: install the Debian package {package} (scripts/install-deps.sh does)"
        );
    }
    eprintln!(
        "SKIP: missing {name}: install the Debian package {package} (scripts/install-deps.sh does)"
    );
    None
}

/// Finds `name` on PATH (plus /usr/sbin and /sbin) without any skip logic.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// `/bin/busybox` (from busybox-static), needed by `images::busybox_layer`.
/// Missing: panics under `CI=true`, else prints a skip notice and returns false.
pub fn require_busybox(test: &str) -> bool {
    if is_executable(Path::new("/bin/busybox")) {
        return true;
    }
    if in_ci() {
        panic!("{test}: missing /bin/busybox: install the Debian package busybox-static (scripts/install-deps.sh does)");
    }
    eprintln!("SKIP {test}: missing /bin/busybox: install the Debian package busybox-static (scripts/install-deps.sh does)");
    false
}

/// The standard CNI plugins (`bridge` stands for all) in /usr/lib/cni.
/// Missing: panics under `CI=true`, else prints a skip notice and returns false.
pub fn require_cni(test: &str) -> bool {
    if Path::new("/usr/lib/cni/bridge").exists() {
        return true;
    }
    let message = "missing /usr/lib/cni/bridge: install the Debian package containernetworking-plugins (scripts/install-deps.sh does)";
    if in_ci() {
        panic!("{test}: {message}");
    }
    eprintln!("SKIP {test}: {message}");
    false
}

/// What `berth apply` end to end needs: root, runc, busybox, CNI plugins,
/// ip and iptables-save (for leak checks).
pub fn require_apply(test: &str) -> bool {
    require_root(test)
        && require_busybox(test)
        && require_binary("runc", "runc").is_some()
        && require_binary("ip", "iproute2").is_some()
        && require_binary("iptables-save", "iptables").is_some()
        && require_cni(test)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// What an end-to-end network test needs: root, runc and the CNI bridge
/// plugin. Missing: panics under `CI=true`, else a skip notice and false.
pub fn require_networking(test: &str) -> bool {
    require_root(test) && require_binary("runc", "runc").is_some() && require_cni(test)
}
