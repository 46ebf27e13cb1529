//! `berth validate` on a first run: local files a set names (image layouts,
//! env files, bind sources) that do not exist are warned of with their place,
//! and `apply` refuses them before it changes anything; a document with an
//! invalid name still has its references checked in the same run.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("berth runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `validate` of `dir`, trusting whatever owns it (a temp directory).
fn validate(dir: &Path, format: &str) -> Output {
    berth(&[
        "validate",
        "--allow-untrusted-manifests",
        "-o",
        format,
        "-f",
        dir.to_str().expect("utf-8 temp path"),
    ])
}

/// A container whose image is an `oci-layout:` path next to nothing, as in a
/// copy of examples/quickstart; `extra` is appended under `spec`.
fn container(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: {name}\nspec:\n  image: oci-layout:../images/busybox\n  command: [sleep, \"60\"]\n{extra}"
    )
}

#[test]
fn a_missing_oci_layout_is_a_warning_with_its_place() {
    let root = tempfile::tempdir().unwrap();
    let set = root.path().join("set");
    fs::create_dir(&set).unwrap();
    fs::write(set.join("web.yaml"), container("web", "")).unwrap();

    let output = validate(&set, "text");
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.lines().any(|line| line.starts_with("warning: ")
            && line.contains("web.yaml:6:10: spec.image: image layout")
            && line.ends_with("images/busybox does not exist")),
        "no warning for the missing layout in:\n{stdout}"
    );
    assert!(stdout.contains("valid: 1 file"), "{stdout}");

    let json = validate(&set, "json");
    assert_eq!(json.status.code(), Some(0));
    let warnings: Vec<serde_json::Value> =
        serde_json::from_slice(&json.stdout).expect("validate -o json prints JSON");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["severity"], "warning");
    assert_eq!(warnings[0]["path"], "spec.image");
    assert_eq!(
        (warnings[0]["line"].as_u64(), warnings[0]["column"].as_u64()),
        (Some(6), Some(10))
    );
}

#[test]
fn missing_env_files_and_bind_sources_are_warned_of_and_present_ones_are_not() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("images")).unwrap();
    fs::create_dir(root.path().join("images/busybox")).unwrap();
    fs::write(root.path().join("images/busybox/index.json"), "{}").unwrap();
    let set = root.path().join("set");
    fs::create_dir(&set).unwrap();
    fs::write(set.join("present.env"), "A=1\n").unwrap();
    let spec = "  envFiles: [present.env, absent.env]\n  mounts:\n    - {type: bind, source: ./absent-dir, target: /data}\n    - {type: bind, source: ./present.env, target: /etc/a.env}\n";
    fs::write(set.join("web.yaml"), container("web", spec)).unwrap();

    let output = validate(&set, "text");
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 2, "{stdout}");
    assert!(
        warnings[0].contains("spec.envFiles[1]: env file") && warnings[0].contains("absent.env"),
        "{stdout}"
    );
    assert!(
        warnings[1].contains("spec.mounts[0].source: bind mount source")
            && warnings[1].contains("absent-dir"),
        "{stdout}"
    );
}

#[test]
fn apply_refuses_a_missing_oci_layout_before_changing_anything() {
    let root = tempfile::tempdir().unwrap();
    let set = root.path().join("set");
    fs::create_dir(&set).unwrap();
    fs::write(set.join("web.yaml"), container("web", "")).unwrap();
    let state = root.path().join("state");

    let output = berth(&[
        "--state",
        state.to_str().unwrap(),
        "apply",
        "--allow-untrusted-manifests",
        "-f",
        set.to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("web.yaml:6:10: spec.image: image layout")
            && stderr.contains("images/busybox does not exist"),
        "the refusal does not name the place:\n{stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert!(!state.exists(), "apply touched its state root");
}

#[test]
fn unknown_references_are_reported_beside_an_invalid_name() {
    let root = tempfile::tempdir().unwrap();
    let manifest = "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: Bad_Name\nspec:\n  image: busybox\n  networks: [nope]\n  dependsOn: [ghost]\n";
    fs::write(root.path().join("bad.yaml"), manifest).unwrap();

    let output = validate(root.path(), "text");
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let expected = [
        "bad.yaml:4:9: metadata.name: \"Bad_Name\" is not a valid name",
        "bad.yaml:7:14: spec.networks[0]: Network \"nope\" is not defined",
        "bad.yaml:8:15: spec.dependsOn[0]: Container or Job \"ghost\" is not defined",
    ];
    for line in expected {
        assert!(stdout.contains(line), "expected {line:?} in:\n{stdout}");
    }
    assert_eq!(stdout.lines().count(), 3, "only those three:\n{stdout}");
}
