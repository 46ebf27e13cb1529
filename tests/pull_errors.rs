//! A pull that cannot reach its registry says why, once: the DNS lookup or
//! the connection that failed, with the host, not reqwest's "error sending
//! request for url" (which `berth run --rm busybox` on a host without DNS
//! printed twice, never naming the cause).
//!
//! The registry host is under `.invalid` (RFC 6761), which never resolves:
//! the lookup may reach the host's configured resolver, which answers
//! NXDOMAIN (or fails at once without one); no registry is ever contacted.

mod common;

use common::{cli, prereq};

/// Each `: `-separated part of `text` once (a cause repeated by its
/// wrappers shows up as the same part twice).
fn assert_said_once(text: &str) {
    let parts: Vec<&str> = text.trim().split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[..i].contains(part),
            "{part:?} is said twice in: {text}"
        );
    }
}

#[test]
fn a_pull_from_a_host_that_does_not_resolve_names_the_dns_lookup_once() {
    let dir = tempfile::tempdir().unwrap();
    let output = cli::run(dir.path(), &["image", "pull", "nonexistent.invalid/x:1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .matches("dns lookup of nonexistent.invalid failed")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.starts_with("berth: pull nonexistent.invalid/x:1: dns lookup"),
        "{stderr}"
    );
    assert!(!stderr.contains("error sending request"), "{stderr}");
    assert_said_once(&stderr);
}

#[test]
fn run_of_an_image_whose_registry_does_not_resolve_names_the_lookup_once() {
    if !prereq::require_root("run_of_an_image_whose_registry_does_not_resolve") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = cli::run(dir.path(), &["run", "--rm", "nonexistent.invalid/x:1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .matches("dns lookup of nonexistent.invalid failed")
            .count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("nonexistent.invalid/x:1").count(),
        1,
        "{stderr}"
    );
    assert_said_once(&stderr);
}

#[test]
fn a_refused_connection_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there, so the connect is refused
    // without leaving the host.
    let output = cli::run(dir.path(), &["image", "pull", "127.0.0.1:1/x:1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("connect to 127.0.0.1 failed: Connection refused"),
        "{stderr}"
    );
    assert_said_once(&stderr);
}
