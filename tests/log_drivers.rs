//! Where a container's output goes (`spec.logging.driver`, `berth run
//! --log-driver`), end to end as root with real runc: `none` writes
//! nothing, `binary` starts a program per start of the container that
//! reads stdout on fd 3 and stderr on fd 4, and `berth logs` says when
//! berth keeps no logs. Bad paths are refused with their position.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::host;
use common::site::{container_yaml, Site};
use common::trusted::TrustedDir;
use common::{names_in, prereq};

fn ready(test: &str) -> bool {
    prereq::require_apply(test)
}

/// A log program that copies fd 3 and fd 4 into `OUT/stdout.PID` and
/// `OUT/stderr.PID` (OUT is its first argument), after noting its pid and
/// the container's name and id from its environment in `OUT/env.PID`.
const LOGGER: &str = r#"#!/bin/sh
out=$1
echo "$BERTH_CONTAINER_NAME $CONTAINER_ID" > "$out/env.$$"
cat <&3 > "$out/stdout.$$" &
cat <&4 > "$out/stderr.$$"
wait
echo done > "$out/done.$$"
"#;

/// Writes [`LOGGER`] as a 0755 file (root's, as the tests run as root) in
/// the site's dir, and its output dir beside it; returns both.
fn write_logger(site: &Site) -> (PathBuf, PathBuf) {
    let program = site.path().join("logger.sh");
    fs::write(&program, LOGGER).unwrap();
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
    let out = site.path().join("logger-out");
    fs::create_dir(&out).unwrap();
    (program, out)
}

/// The pids of the logger's runs so far (one `env.PID` file each).
fn logger_runs(out: &Path) -> Vec<String> {
    names_in(out)
        .into_iter()
        .filter_map(|name| name.strip_prefix("env.").map(str::to_string))
        .collect()
}

fn read(out: &Path, what: &str, pid: &str) -> String {
    fs::read_to_string(out.join(format!("{what}.{pid}"))).unwrap_or_default()
}

/// Waits until `done` holds, for at most a minute.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exited(site: &Site, name: &str) {
    wait_for(&format!("{name} to exit"), || {
        site.inspect(name)["status"]["phase"] == "exited"
    });
}

/// A container of the site running `script` with `restart` and `logging`.
fn container(name: &str, script: &str, restart: &str, logging: &str) -> String {
    container_yaml(
        name,
        &format!(
            "  command: [sh, -c, {script:?}]\n  networkMode: none\n  restart: {restart}\n  logging: {logging}\n"
        ),
    )
}

/// `berth logs NAME` fails with one line that says so.
fn assert_logs_refused(site: &Site, name: &str, driver: &str) {
    let stderr = site.fails(&["logs", name]);
    let expected = format!("container {name} logs to driver {driver}; berth keeps no logs of it");
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn driver_none_writes_no_log_file_and_logs_says_so() {
    if !ready("driver_none_writes_no_log_file_and_logs_says_so") {
        return;
    }
    let site = Site::new("ln");
    let name = format!("none-{}", site.tag);
    site.write(
        "none.yaml",
        &container(
            &name,
            "echo to-nowhere; echo also-nowhere >&2",
            "{policy: never}",
            "{driver: none}",
        ),
    );
    site.apply(&[]);
    wait_exited(&site, &name);
    assert_eq!(site.inspect(&name)["status"]["exitCode"], 0);
    let logs = site.root().join("logs");
    assert!(
        !logs.join(&name).exists(),
        "no log dir, no log file: {:?}",
        names_in(&logs)
    );
    assert_logs_refused(&site, &name, "none");
}

#[test]
fn a_failed_start_without_log_pipes_still_says_why() {
    if !ready("a_failed_start_without_log_pipes_still_says_why") {
        return;
    }
    // runc's complaint would go where the container's output goes: with
    // driver none it must come from runc's own log instead.
    let site = Site::new("lf");
    let name = format!("nostart-{}", site.tag);
    site.write(
        "nostart.yaml",
        &container_yaml(
            &name,
            "  command: [/no/such/program]\n  networkMode: none\n  restart: {policy: never}\n  logging: {driver: none}\n",
        ),
    );
    let _ = site.apply_command(&[]).output();
    wait_exited(&site, &name);
    let error = site.inspect(&name)["status"]["error"].clone();
    assert!(
        error
            .as_str()
            .is_some_and(|e| e.contains("/no/such/program")),
        "{error}"
    );
}

/// `spec.logging` for the test's logger program, which writes what it reads
/// into files under `out`.
fn binary_logging(program: &Path, out: &Path) -> String {
    format!(
        "{{driver: binary, path: {}, args: [{}]}}",
        program.display(),
        out.display()
    )
}

#[test]
fn a_binary_driver_reads_both_streams_with_the_containers_name() {
    if !ready("a_binary_driver_reads_both_streams_with_the_containers_name") {
        return;
    }
    let site = Site::new("lb");
    let name = format!("bin-{}", site.tag);
    let (program, out) = write_logger(&site);
    let logging = binary_logging(&program, &out);
    site.write(
        "bin.yaml",
        &container(
            &name,
            "echo out-1; echo err-1 >&2; echo out-2; echo err-2 >&2",
            "{policy: never}",
            &logging,
        ),
    );
    site.apply(&[]);
    wait_exited(&site, &name);
    // The container's end is the program's end of file: it finishes.
    wait_for("the log program to finish", || {
        names_in(&out).iter().any(|n| n.starts_with("done."))
    });
    let runs = logger_runs(&out);
    assert_eq!(runs.len(), 1, "one start, one program: {runs:?}");
    let pid = &runs[0];
    assert_eq!(read(&out, "stdout", pid), "out-1\nout-2\n");
    assert_eq!(read(&out, "stderr", pid), "err-1\nerr-2\n");
    assert_eq!(read(&out, "env", pid), format!("{name} {name}\n"));
    assert!(!site.root().join("logs").join(&name).exists());
    assert_logs_refused(&site, &name, &format!("binary {}", program.display()));
}

#[test]
fn the_log_program_restarts_with_the_container_and_stops_with_it() {
    if !ready("the_log_program_restarts_with_the_container_and_stops_with_it") {
        return;
    }
    let site = Site::new("lr");
    let name = format!("again-{}", site.tag);
    let (program, out) = write_logger(&site);
    let logging = binary_logging(&program, &out);
    site.write(
        "again.yaml",
        &container(
            &name,
            "echo run-$(cat /proc/sys/kernel/random/uuid); exit 3",
            "{policy: always, backoff: {initial: 100ms, max: 200ms}}",
            &logging,
        ),
    );
    site.apply(&[]);
    wait_for("two starts of the container", || {
        site.inspect(&name)["status"]["restarts"]
            .as_u64()
            .is_some_and(|n| n >= 2)
    });
    wait_for("a log program per start", || logger_runs(&out).len() >= 2);
    site.ok(&["rm", "-f", &name]);
    let runs = logger_runs(&out);
    for pid in &runs {
        // Each run's program got that run's output, and none outlives
        // the container.
        let text = read(&out, "stdout", pid);
        assert!(
            text.is_empty() || (text.starts_with("run-") && text.lines().count() == 1),
            "{pid}: {text:?}"
        );
        assert!(
            host::wait_gone(pid.parse().unwrap(), Duration::from_secs(20)),
            "log program {pid} outlived its container"
        );
    }
    let distinct: std::collections::BTreeSet<String> = runs
        .iter()
        .map(|pid| read(&out, "stdout", pid))
        .filter(|text| !text.is_empty())
        .collect();
    assert!(
        distinct.len() >= 2,
        "each program read its own run: {distinct:?}"
    );
}

#[test]
fn run_takes_a_log_driver() {
    if !ready("run_takes_a_log_driver") {
        return;
    }
    let site = Site::new("lc");
    let (program, out) = write_logger(&site);
    let driver = format!("binary:{}", program.display());
    let arg = format!("arg={}", out.display());
    let name = format!("runbin-{}", site.tag);
    let image = site.busybox();
    let output = site.run(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--log-driver",
        &driver,
        "--log-opt",
        &arg,
        &image,
        "sh",
        "-c",
        "echo hello; echo oops >&2",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("hello"),
        "the output went to the program, not to berth: {output:?}"
    );
    wait_for("the log program to finish", || {
        names_in(&out).iter().any(|n| n.starts_with("done."))
    });
    let runs = logger_runs(&out);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(read(&out, "stdout", &runs[0]), "hello\n");
    assert_eq!(read(&out, "stderr", &runs[0]), "oops\n");
    assert_eq!(read(&out, "env", &runs[0]), format!("{name} {name}\n"));

    let quiet = format!("runnone-{}", site.tag);
    site.ok(&[
        "run",
        "-d",
        "--name",
        &quiet,
        "--log-driver",
        "none",
        &image,
        "echo",
        "unseen",
    ]);
    wait_exited(&site, &quiet);
    assert!(!site.root().join("logs").join(&quiet).exists());
    assert_logs_refused(&site, &quiet, "none");

    let stderr = site.fails(&["run", "--log-driver", "binary:logger.sh", &image, "true"]);
    assert!(
        stderr.contains("--log-driver: \"logger.sh\" is not an absolute path"),
        "{stderr}"
    );
    let stderr = site.fails(&["run", "--log-driver", "syslog", &image, "true"]);
    assert!(
        stderr.contains("--log-driver: \"syslog\" is not one of file, none, binary:PATH"),
        "{stderr}"
    );
}

#[test]
fn relative_and_missing_log_programs_are_refused_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let text = format!(
        "{}---\n{}---\n{}",
        container_yaml(
            "relative",
            "  logging:\n    driver: binary\n    path: bin/logger\n"
        ),
        container_yaml(
            "missing",
            "  logging:\n    driver: binary\n    path: /nonexistent/berth-logger\n"
        ),
        container_yaml("stray", "  logging: {driver: none, maxSize: 1Mi}\n"),
    );
    fs::write(&file, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["validate", "--allow-untrusted-manifests", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for expected in [
        "bad.yaml:9:11: spec.logging.path: \"bin/logger\" is not an absolute path: the log program's path must be absolute",
        "bad.yaml:19:11: spec.logging.path: log program /nonexistent/berth-logger does not exist",
        "bad.yaml:27:36: spec.logging.maxSize: driver none keeps no log files to rotate",
    ] {
        assert!(stdout.contains(expected), "{expected}\nin:\n{stdout}");
    }
}

#[test]
fn a_log_program_others_could_change_is_refused() {
    if !prereq::require_root("a_log_program_others_could_change_is_refused") {
        return;
    }
    let dir = TrustedDir::new("logdriver");
    let program = dir.path().join("logger.sh");
    fs::write(&program, LOGGER).unwrap();
    let manifest = dir.path().join("app.yaml");
    fs::write(
        &manifest,
        container_yaml(
            "app",
            &format!(
                "  logging: {{driver: binary, path: {}}}\n",
                program.display()
            ),
        )
        .replace("oci-layout:../images/busybox", "busybox"),
    )
    .unwrap();
    fs::set_permissions(&manifest, fs::Permissions::from_mode(0o644)).unwrap();
    let validate = || {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["validate", "-f"])
            .arg(&manifest)
            .env_remove("SUDO_UID")
            .output()
            .unwrap()
    };
    fs::set_permissions(&program, fs::Permissions::from_mode(0o775)).unwrap();
    let output = validate();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let expected = format!(
        "app.yaml:7:35: spec.logging.path: refusing untrusted log program {}",
        program.display()
    );
    assert!(stdout.contains(&expected), "{expected}\nin:\n{stdout}");
    assert!(stdout.contains("group-writable"), "{stdout}");

    fs::set_permissions(&program, fs::Permissions::from_mode(0o644)).unwrap();
    let stdout = String::from_utf8_lossy(&validate().stdout).into_owned();
    assert!(stdout.contains("is not executable"), "{stdout}");

    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
    let output = validate();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
