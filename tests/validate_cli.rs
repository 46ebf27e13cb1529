//! `berth validate` end to end: every check, reported with file, line, column
//! and field path, in text and JSON, and clear errors for files that are not
//! manifests at all.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn berth(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("berth finishes");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn validate(path: &Path) -> Output {
    berth(
        &[
            "validate",
            "--allow-untrusted-manifests",
            "-f",
            path.to_str().unwrap(),
        ],
        None,
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// Asserts that `line` (as `FILE:LINE:COL: PATH: message`) is in the output.
fn assert_reports(output: &Output, expected: &str) {
    assert!(
        output.stdout.lines().any(|line| line.contains(expected)),
        "expected a line containing {expected:?} in:\n{}",
        output.stdout
    );
}

const MANY_MISTAKES: &str = r#"apiVersion: berth/v1
kind: Container
metadata:
  name: web
spec:
  image: busybox
  imagePullPolcy: Always
  restart:
    policy: sometimes
  healthcheck:
    exec: ["true"]
    interval: 5 parsecs
  resources:
    memory: 12Gx
  workingDir: srv
---
apiVersion: berth/v1
kind: Job
metadata:
  name: nightly
spec:
  schedule: "61 * * * *"
  template:
    image: busybox
"#;

#[test]
fn several_mistakes_in_one_file_are_all_reported_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "web.yaml", MANY_MISTAKES);
    let output = validate(&file);
    assert_eq!(output.code, 1, "{}{}", output.stdout, output.stderr);
    let f = file.display();
    assert_reports(&output, &format!("{f}:7:3: spec.imagePullPolcy: unknown field \"imagePullPolcy\", did you mean \"imagePullPolicy\"?"));
    assert_reports(&output, &format!("{f}:9:13: spec.restart.policy: \"sometimes\" is not one of always, on-failure, never, unless-stopped"));
    assert_reports(
        &output,
        &format!("{f}:12:15: spec.healthcheck.interval: \"5 parsecs\" is not a valid duration"),
    );
    assert_reports(
        &output,
        &format!("{f}:14:13: spec.resources.memory: \"12Gx\" is not a valid size"),
    );
    assert_reports(
        &output,
        &format!("{f}:15:15: spec.workingDir: \"srv\" must be an absolute path"),
    );
    assert_reports(
        &output,
        &format!("{f}:22:13: spec.schedule: \"61 * * * *\" is not a valid cron schedule"),
    );
    assert_eq!(output.stdout.lines().count(), 6, "{}", output.stdout);
}

#[test]
fn json_output_lists_the_same_problems_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "web.yaml", MANY_MISTAKES);
    let text = validate(&file);
    let json = berth(
        &[
            "validate",
            "--allow-untrusted-manifests",
            "-o",
            "json",
            "-f",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(json.code, 1);
    let problems: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).expect("valid JSON");
    assert_eq!(problems.len(), text.stdout.lines().count());
    for (problem, line) in problems.iter().zip(text.stdout.lines()) {
        let rendered = format!(
            "{}:{}:{}: {}: {}",
            problem["file"].as_str().unwrap(),
            problem["line"],
            problem["column"],
            problem["path"].as_str().unwrap(),
            problem["message"].as_str().unwrap()
        );
        assert_eq!(rendered, line);
    }
}

fn problems_for(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "set.yaml", text);
    let output = validate(&file);
    assert_eq!(
        output.code, 1,
        "expected problems for:\n{text}\ngot:\n{}{}",
        output.stdout, output.stderr
    );
    output
}

const NET: &str =
    "apiVersion: berth/v1\nkind: Network\nmetadata: {name: front}\nspec: {subnet: 10.231.0.0/24}\n";

#[test]
fn yaml_syntax_errors_have_a_position() {
    let output = problems_for("apiVersion: berth/v1\nkind: [Container\nmetadata: {name: x}\n");
    assert!(output.stdout.contains("set.yaml:"), "{}", output.stdout);
    assert!(
        output.stdout.contains("YAML syntax error"),
        "{}",
        output.stdout
    );
}

#[test]
fn duplicate_names_name_both_places() {
    let text = format!("{NET}---\n{NET}");
    let output = problems_for(&text);
    assert_reports(
        &output,
        "set.yaml:8:18: metadata.name: duplicate Network name \"front\": also defined at ",
    );
    assert_reports(&output, "set.yaml:3:18");
}

#[test]
fn unresolved_references_are_reported_with_suggestions() {
    let text = format!(
        "{NET}---\napiVersion: berth/v1\nkind: Container\nmetadata: {{name: web}}\nspec:\n  image: busybox\n  networks: [frnt]\n  mounts: [{{type: volume, source: data, target: /data}}]\n  dependsOn: [db]\n"
    );
    let output = problems_for(&text);
    assert_reports(&output, "spec.networks[0]: Network \"frnt\" is not defined in this manifest set, did you mean \"front\"?");
    assert_reports(
        &output,
        "spec.mounts[0].source: Volume \"data\" is not defined",
    );
    assert_reports(
        &output,
        "spec.dependsOn[0]: Container or Job \"db\" is not defined",
    );
}

#[test]
fn dependency_cycles_are_reported() {
    let container = |name: &str, dep: &str| {
        format!("apiVersion: berth/v1\nkind: Container\nmetadata: {{name: {name}}}\nspec: {{image: busybox, dependsOn: [{dep}]}}\n")
    };
    let text = format!(
        "{}---\n{}---\n{}",
        container("a", "b"),
        container("b", "c"),
        container("c", "a")
    );
    let output = problems_for(&text);
    assert_reports(&output, "dependency cycle: a -> b -> c -> a");
}

#[test]
fn container_paths_must_be_absolute() {
    let output = problems_for(
        "apiVersion: berth/v1\nkind: Container\nmetadata: {name: a}\nspec:\n  image: busybox\n  workingDir: app\n  mounts: [{type: tmpfs, target: tmp}]\n",
    );
    assert_reports(
        &output,
        "set.yaml:6:15: spec.workingDir: \"app\" must be an absolute path",
    );
    assert_reports(
        &output,
        "spec.mounts[0].target: \"tmp\" must be an absolute path",
    );
}

#[test]
fn bad_durations_sizes_and_cron_are_reported() {
    let output = problems_for(
        "apiVersion: berth/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  schedule: '* * *'\n  activeDeadline: soon\n  template:\n    image: busybox\n    resources: {memory: lots}\n",
    );
    assert_reports(
        &output,
        "set.yaml:5:13: spec.schedule: \"* * *\" is not a valid cron schedule: it has 3 fields",
    );
    assert_reports(
        &output,
        "set.yaml:6:19: spec.activeDeadline: \"soon\" is not a valid duration",
    );
    assert_reports(
        &output,
        "spec.template.resources.memory: \"lots\" is not a valid size",
    );
}

#[test]
fn a_static_ip_outside_its_subnet_is_reported() {
    let text = format!(
        "{NET}---\napiVersion: berth/v1\nkind: Container\nmetadata: {{name: web}}\nspec:\n  image: busybox\n  networks: [{{name: front, ip: 10.9.0.5}}]\n"
    );
    let output = problems_for(&text);
    assert_reports(
        &output,
        "spec.networks[0].ip: 10.9.0.5 is outside network \"front\"'s subnet 10.231.0.0/24",
    );
}

#[test]
fn a_host_port_published_twice_is_reported() {
    let container = |name: &str| {
        format!("apiVersion: berth/v1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: busybox\n  ports: [{{containerPort: 80, hostPort: 8080}}]\n")
    };
    let output = problems_for(&format!("{}---\n{}", container("a"), container("b")));
    assert_reports(
        &output,
        "set.yaml:13:11: spec.ports[0]: host port 8080/tcp is already published at ",
    );
}

#[test]
fn a_valid_set_prints_a_summary_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "net.yaml", NET);
    write(
        dir.path(),
        "web.yml",
        "apiVersion: berth/v1\nkind: Container\nmetadata: {name: web}\nspec: {image: busybox, networks: [front]}\n---\napiVersion: berth/v1\nkind: Volume\nmetadata: {name: data}\n",
    );
    let output = validate(dir.path());
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert_eq!(
        output.stdout.trim(),
        "valid: 2 files, 1 Container, 0 Jobs, 1 Network, 1 Volume"
    );
    let json = berth(
        &[
            "validate",
            "--allow-untrusted-manifests",
            "-o",
            "json",
            "-f",
            dir.path().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!((json.code, json.stdout.trim()), (0, "[]"));
}

#[test]
fn stdin_is_read_with_dash() {
    let output = berth(&["validate", "-f", "-"], Some(NET.as_bytes()));
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    let broken = berth(&["validate", "-f", "-"], Some(b"kind: Nope\n"));
    assert_eq!(broken.code, 1);
    assert!(broken.stdout.starts_with("<stdin>:"), "{}", broken.stdout);
}

fn assert_clear_failure(output: &Output, expected: &str) {
    assert_eq!(
        output.code, 1,
        "exit code (101 would be a panic): {}{}",
        output.stdout, output.stderr
    );
    assert!(!output.stderr.contains("panicked"), "{}", output.stderr);
    assert!(
        output.stdout.contains(expected),
        "expected {expected:?} in {}",
        output.stdout
    );
}

#[test]
fn broken_yaml_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "broken.yaml",
        "apiVersion: berth/v1\nkind: Container\n  metadata: : :\n\t- x\n",
    );
    assert_clear_failure(&validate(&file), "broken.yaml:");
}

#[test]
fn an_empty_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "empty.yaml", "");
    assert_clear_failure(
        &validate(&file),
        "empty.yaml:1:1: the file holds no berth objects",
    );
    let comments = write(dir.path(), "comments.yaml", "# nothing here\n---\n");
    assert_clear_failure(&validate(&comments), "holds no berth objects");
}

#[test]
fn a_ten_megabyte_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("apiVersion: berth/v1\nkind: Container\nmetadata: {name: big}\nspec:\n  image: busybox\n  env:\n");
    let mut i = 0;
    while text.len() < 10 << 20 {
        text.push_str(&format!("    VAR_{i}: \"{}\"\n", "x".repeat(100)));
        i += 1;
    }
    let file = write(dir.path(), "big.yaml", &text);
    assert_clear_failure(&validate(&file), "manifest files are limited to 4 MiB");
}

#[test]
fn binary_junk_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let file = dir.path().join("junk.yaml");
    fs::write(&file, &junk).unwrap();
    assert_clear_failure(&validate(&file), "not a UTF-8 text file");
    // Valid UTF-8 control characters are junk too, and must not panic the parser.
    let control = write(dir.path(), "control.yaml", "\u{1}\u{2}kind: \u{7f}\u{0}\n");
    let output = validate(&control);
    assert_eq!(output.code, 1, "{}{}", output.stdout, output.stderr);
}

#[test]
fn deep_nesting_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "deep.yaml",
        &format!("a: {}", "[".repeat(200_000)),
    );
    assert_clear_failure(&validate(&file), "deep.yaml:");
}

// The trust check as root (what was refused here, and more) is tests/trust.rs.
