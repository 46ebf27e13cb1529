//! `berth convert compose`: every compose file of the corpus in
//! tests/fixtures/compose/ converts into manifests that the real `berth
//! validate` accepts; the warnings name what did not carry over at its
//! file:line:col; `--strict` makes them errors and writes nothing; and the
//! two stacks built on the busybox test image (busybox-web,
//! busybox-pipeline) apply and run as root with real runc and CNI.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth::manifest::NetworkSpec;
use berth::network::conflist::bridge_name;
use berth::network::NetworkDef;

use common::site::Site;
use common::{instance, prereq};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose")
}

fn stacks() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(corpus())
        .expect("read the corpus")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("compose.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// `berth ARGS...` in `dir` with only `env` (and PATH, HOME) in its
/// environment, so the caller's variables never leak into interpolation.
fn berth(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/root")
        .args(args)
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("berth runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Converts `stack` into `out`, expecting success; stderr.
fn convert_into(stack: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> String {
    let out_arg = out.display().to_string();
    let mut args = vec!["convert", "compose", ".", "-o", &out_arg];
    args.extend_from_slice(extra);
    let output = berth(stack, &args, env);
    assert!(
        output.status.success(),
        "convert {} failed:\n{}{}",
        stack.display(),
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stderr)
}

fn validate(out: &Path) -> Output {
    let out_arg = out.display().to_string();
    berth(
        out,
        &["validate", "--allow-untrusted-manifests", "-f", &out_arg],
        &[],
    )
}

fn yaml_files(dir: &Path) -> Vec<String> {
    common::names_in(dir)
        .into_iter()
        .filter(|n| n.ends_with(".yaml"))
        .collect()
}

#[test]
fn every_corpus_stack_converts_into_manifests_that_validate() {
    let stacks = stacks();
    assert!(stacks.len() >= 10, "the corpus has {} stacks", stacks.len());
    for stack in &stacks {
        let out = tempfile::tempdir().expect("temp dir");
        convert_into(stack, out.path(), &[], &[]);
        assert!(!yaml_files(out.path()).is_empty(), "{}", stack.display());
        let checked = validate(out.path());
        assert!(
            checked.status.success(),
            "berth validate refused the conversion of {}:\n{}{}",
            stack.display(),
            text(&checked.stdout),
            text(&checked.stderr)
        );
        for file in yaml_files(out.path()) {
            let written = fs::read_to_string(out.path().join(&file)).unwrap();
            assert!(
                written.starts_with("# yaml-language-server: $schema=berth.v1.schema.json\n"),
                "{file}: {written}"
            );
        }
        assert!(out.path().join("berth.v1.schema.json").is_file());
    }
}

#[test]
fn the_stdout_stream_validates_as_one_set() {
    let stack = corpus().join("web-db-cache");
    let converted = berth(&stack, &["convert", "compose", "compose.yaml"], &[]);
    assert!(converted.status.success(), "{}", text(&converted.stderr));
    let stream = text(&converted.stdout);
    assert_eq!(stream.matches("\n---\n").count(), 6, "{stream}");
    let mut validate = Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(&stack)
        .args(["validate", "--allow-untrusted-manifests", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth validate runs");
    validate
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    let checked = validate.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "{}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
    assert!(
        text(&checked.stdout).contains("4 Containers, 0 Jobs, 1 Network, 2 Volumes"),
        "{}",
        text(&checked.stdout)
    );
}

#[test]
fn unsupported_keys_are_warned_at_their_file_and_line() {
    let out = tempfile::tempdir().unwrap();
    let stderr = convert_into(&corpus().join("unsupported"), out.path(), &[], &[]);
    for expected in [
        "warning: ./compose.yaml:9:7: services.app.build: berth builds no images",
        "warning: ./compose.yaml:11:5: services.app.extends: not resolved",
        "warning: ./compose.yaml:14:5: services.app.secrets:",
        "warning: ./compose.yaml:16:5: services.app.links:",
        "warning: ./compose.yaml:17:5: services.app.extra_hosts:",
        "warning: ./compose.yaml:24:19: services.sidecar.network_mode: network_mode service:app",
        "warning: ./compose.yaml:27:15: services.debug.profiles: service debug is only in profiles debug",
        "warning: ./compose.yaml:32:1: secrets:",
        "(13 warnings)",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    // The service of an inactive profile is left out; --profile brings it in.
    assert!(!out.path().join("container-unsupported-debug.yaml").exists());
    let with_profile = tempfile::tempdir().unwrap();
    convert_into(
        &corpus().join("unsupported"),
        with_profile.path(),
        &["--profile", "debug"],
        &[],
    );
    assert!(with_profile
        .path()
        .join("container-unsupported-debug.yaml")
        .exists());
}

#[test]
fn deploy_and_volume_options_without_equivalent_are_warned() {
    let out = tempfile::tempdir().unwrap();
    let queue = convert_into(&corpus().join("worker-queue"), out.path(), &[], &[]);
    assert!(
        queue.contains("compose.yaml:29:7: services.worker.deploy.replicas"),
        "{queue}"
    );
    assert!(
        queue.contains("compose.yaml:35:9: services.worker.deploy.resources.reservations"),
        "{queue}"
    );
    let worker = fs::read_to_string(out.path().join("container-worker-queue-worker.yaml")).unwrap();
    for expected in [
        "cpus: 0.5",
        "memory: \"256Mi\"",
        "pids: 200",
        "maxRetries: 5",
        "stopSignal: SIGINT",
        "stopGracePeriod: \"90s\"",
        "condition: healthy",
    ] {
        assert!(
            worker.contains(expected),
            "missing {expected:?} in:\n{worker}"
        );
    }
    let volumes = tempfile::tempdir().unwrap();
    let stderr = convert_into(&corpus().join("named-volumes"), volumes.path(), &[], &[]);
    assert!(
        stderr.contains("compose.yaml:26:5: volumes.certs.external"),
        "{stderr}"
    );
    assert!(
        stderr.contains("compose.yaml:29:5: volumes.nfs-share.driver_opts"),
        "{stderr}"
    );
    // An external volume keeps its own name, without the project prefix.
    assert!(volumes.path().join("volume-shared-certs.yaml").exists());
}

#[test]
fn strict_makes_warnings_errors_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().display().to_string();
    let refused = berth(
        &corpus().join("unsupported"),
        &["convert", "compose", ".", "-o", &out_arg, "--strict"],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("error: ./compose.yaml:9:7: services.app.build"),
        "{stderr}"
    );
    assert!(
        stderr.contains("13 warnings with --strict: nothing written"),
        "{stderr}"
    );
    assert!(
        common::names_in(out.path()).is_empty(),
        "{:?}",
        common::names_in(out.path())
    );
    // A stack with nothing to warn about converts under --strict too.
    convert_into(
        &corpus().join("custom-networks"),
        out.path(),
        &["--strict"],
        &[],
    );
}

#[test]
fn interpolation_reads_dotenv_and_the_environment_wins() {
    let stack = corpus().join("interpolation");
    let converted = berth(
        &stack,
        &["convert", "compose", "."],
        &[("HTTP_PORT", "9099"), ("HTTPD_TAG", "2.5"), ("WHO", "you")],
    );
    assert!(converted.status.success(), "{}", text(&converted.stderr));
    let stream = text(&converted.stdout);
    for expected in [
        "name: interp-app",
        "image: docker.io/library/httpd:2.5",
        "hostPort: 9099",
        "hostIP: \"127.0.0.1\"",
        "ADMIN_EMAIL: ops@example.com",
        "GREETING: \"price: $5 for you\"",
        "FEATURE: enabled",
        "LOG: warn",
        "cpus: 0.25",
        "memory: \"64Mi\"",
    ] {
        assert!(
            stream.contains(expected),
            "missing {expected:?} in:\n{stream}"
        );
    }
}

#[test]
fn a_required_variable_that_is_unset_is_an_error_naming_it_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: \"registry/app:${TAG:?give the release tag}\"\n",
    )
    .unwrap();
    let refused = berth(dir.path(), &["convert", "compose", "compose.yaml"], &[]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(
            "compose.yaml:3:12: required variable TAG is not set or empty: give the release tag"
        ),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty());
    let unset = berth(
        dir.path(),
        &["convert", "compose", "compose.yaml"],
        &[("TAG", "1.0")],
    );
    assert!(
        text(&unset.stdout).contains("image: registry/app:1.0"),
        "{}",
        text(&unset.stderr)
    );
}

#[test]
fn names_come_from_the_project_and_an_existing_set_is_not_overwritten() {
    let out = tempfile::tempdir().unwrap();
    convert_into(
        &corpus().join("web-db-cache"),
        out.path(),
        &["-p", "Shop_1"],
        &[],
    );
    assert_eq!(
        yaml_files(out.path()),
        [
            "container-shop-1-app.yaml",
            "container-shop-1-cache.yaml",
            "container-shop-1-db.yaml",
            "container-shop-1-web.yaml",
            "network-shop-1-default.yaml",
            "volume-shop-1-pgdata.yaml",
            "volume-shop-1-redisdata.yaml",
        ]
    );
    let app = fs::read_to_string(out.path().join("container-shop-1-app.yaml")).unwrap();
    assert!(
        app.contains("- name: shop-1-db\n      condition: healthy"),
        "{app}"
    );
    assert!(app.contains("- shop-1-cache\n"), "{app}");
    assert!(app.contains("- gunicorn\n"), "{app}");
    let out_arg = out.path().display().to_string();
    let again = berth(
        &corpus().join("web-db-cache"),
        &["convert", "compose", ".", "-o", &out_arg],
        &[],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("pass --force"),
        "{}",
        text(&again.stderr)
    );
}

/// The fixture stack `name` copied beside the site's busybox layout (as
/// `compose/`, so its `oci-layout:../images/busybox` finds it).
fn copy_stack(site: &Site, name: &str) -> PathBuf {
    let to = site.path().join("compose");
    copy_tree(&corpus().join(name), &to);
    to
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `GET path` on 127.0.0.1:port: the body of a 200 answer, else `None`.
fn http_body(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_string())
}

fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A subnet and host port no other test on the host uses now.
fn private_subnet_and_port() -> (String, u16) {
    let n = std::process::id() + instance::serial();
    (
        format!("10.251.{}.0/24", n % 250),
        40_000 + (n % 10_000) as u16,
    )
}

fn ready(test: &str) -> bool {
    prereq::require_networking(test) && prereq::require_busybox(test)
}

#[test]
fn busybox_web_stack_applies_and_serves_through_its_healthy_dependency() {
    if !ready("busybox_web_stack_applies_and_serves_through_its_healthy_dependency") {
        return;
    }
    let site = Site::new("cw");
    let stack = copy_stack(&site, "busybox-web");
    let bridge = format!("b{}", site.tag);
    site.own_bridge(&bridge);
    let (subnet, port) = private_subnet_and_port();
    let port_text = port.to_string();
    let project = site.tag.clone();
    let manifests = site.manifests.display().to_string();
    let converted = berth(
        &stack,
        &[
            "convert", "compose", ".", "-o", &manifests, "-p", &project, "--strict",
        ],
        &[
            ("BRIDGE", &bridge),
            ("SUBNET", &subnet),
            ("WEB_PORT", &port_text),
            ("GREETING", "berth"),
        ],
    );
    assert!(converted.status.success(), "{}", text(&converted.stderr));
    let applied = site.apply(&["--wait"]);
    let (web, db) = (format!("{project}-web"), format!("{project}-db"));
    assert!(applied.contains(&web) && applied.contains(&db), "{applied}");
    let page = eventually("the web page", || http_body(port, "/"));
    assert_eq!(page.trim(), "hello from berth");
    // web reached db by its network alias, after db was healthy.
    let from_db = eventually("the db's answer", || http_body(port, "/db.txt"));
    assert_eq!(from_db.trim(), "pong");
    assert_eq!(
        site.inspect(&db)["status"]["health"]["state"],
        "healthy",
        "{}",
        site.inspect(&db)
    );
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 0, "a second look finds nothing to do:\n{plan}");
}

#[test]
fn busybox_pipeline_runs_the_app_after_its_migration_completed() {
    if !ready("busybox_pipeline_runs_the_app_after_its_migration_completed") {
        return;
    }
    let site = Site::new("cp");
    let stack = copy_stack(&site, "busybox-pipeline");
    let project = site.tag.clone();
    // The stack's default network gets berth's hashed bridge name: the
    // site removes it (and its rules) when the test ends.
    site.own_bridge(&bridge_name(&NetworkDef {
        name: format!("{project}-default"),
        spec: NetworkSpec::default(),
    }));
    let manifests = site.manifests.display().to_string();
    let converted = berth(
        &stack,
        &[
            "convert", "compose", ".", "-o", &manifests, "-p", &project, "--strict",
        ],
        &[],
    );
    assert!(converted.status.success(), "{}", text(&converted.stderr));
    site.apply(&["--wait"]);
    let (app, migrate) = (format!("{project}-app"), format!("{project}-migrate"));
    let logs = eventually("the app's output", || {
        let logs = site.ok(&["logs", &app]);
        logs.contains("ready").then_some(logs)
    });
    assert!(
        logs.contains("schema-v7"),
        "the migration ran first: {logs}"
    );
    assert!(logs.contains("pipeline ready"), "LABEL from .env: {logs}");
    assert_eq!(
        site.inspect(&migrate)["status"]["exitCode"],
        0,
        "{}",
        site.inspect(&migrate)
    );
    assert_eq!(site.sh(&app, "cat /srv/static/index.html").trim(), "static");
}
