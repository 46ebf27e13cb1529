//! `berth apply --wait` says what it waits for while it waits: off a
//! terminal a plain line per wait as it begins and again every 5 s, naming
//! the container and what it lacks, with no escape codes.

mod common;

use std::process::Stdio;

use common::prereq;
use common::site::{container_yaml, Site};

#[test]
fn apply_wait_says_it_waits_for_a_health_check_before_it_converges() {
    if !prereq::require_apply("apply_wait_says_it_waits_for_a_health_check_before_it_converges") {
        return;
    }
    let site = Site::new("aw");
    let name = format!("w{}", site.tag);
    // Ready after 6 s: long enough for the 5 s repeat to come round once.
    site.write(
        "slow.yaml",
        &container_yaml(
            &name,
            "  command: [sh, -c, \"sleep 6; touch /tmp/ready; exec sleep 1000\"]\n  networkMode: none\n  healthcheck:\n    exec: [test, -f, /tmp/ready]\n    interval: 300ms\n    retries: 1000\n",
        ),
    );
    let output = site
        .apply_command(&["--wait"])
        .stdin(Stdio::null())
        .output()
        .expect("berth runs");
    let stdout = common::cli::succeeded("berth apply --wait", &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("converged"), "{stdout}\n{stderr}");
    let waits: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("waiting ") && l.contains(&format!(" for {name}: ")))
        .collect();
    assert!(
        waits.iter().any(|l| l.contains("health check")),
        "no line says it waits for {name}'s health check:\n{stderr}"
    );
    assert!(
        waits.iter().any(|l| !l.starts_with("waiting 0s ")),
        "the wait is said again later, with the time it has lasted:\n{stderr}"
    );
    assert!(
        !stderr.contains('\x1b') && !stdout.contains('\x1b'),
        "escape codes off a terminal:\n{stderr}"
    );
    assert!(!stderr.contains('\r'), "redraws off a terminal:\n{stderr}");
}
