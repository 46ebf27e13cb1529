//! `berth plan`: what apply would do, with reasons and terraform-style exit
//! codes. Read-only: it never changes the host.

mod common;

use std::fs;
use std::path::Path;

use common::images as img;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_quickstart_plans_pulls_creates_and_waits_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"),
        &dir.path().join("quickstart"),
    );
    img::write_oci_layout(
        &dir.path().join("images/busybox"),
        &[(img::busybox_image(), "latest")],
    );
    let manifests = dir.path().join("quickstart").display().to_string();
    let output = common::cli::command(
        dir.path(),
        &[
            "plan",
            "--allow-untrusted-manifests",
            "-o",
            "json",
            "-f",
            &manifests,
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let actions: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let summary: Vec<String> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["verb"].as_str().unwrap(),
                a["target"].as_str().unwrap(),
                a["name"].as_str().unwrap()
            )
        })
        .collect();
    let image = format!(
        "oci-layout:{}",
        fs::canonicalize(dir.path().join("images/busybox"))
            .unwrap()
            .display()
    );
    assert_eq!(
        summary,
        [
            format!("pull Image {image}"),
            "create Network quickstart".to_string(),
            "create Container web".to_string(),
            "wait Container client".to_string(),
        ]
    );
    assert!(actions[3]["reason"]
        .as_str()
        .unwrap()
        .starts_with("waiting for web to be healthy"));
    // Planning changed nothing.
    assert!(
        !dir.path().join("root/images").exists()
            || fs::read_dir(dir.path().join("root/images"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn nothing_to_do_exits_0_and_an_invalid_set_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vol.yaml");
    fs::write(
        &file,
        "apiVersion: berth/v1\nkind: Volume\nmetadata: {name: data}\n",
    )
    .unwrap();
    fs::create_dir_all(dir.path().join("root/volumes/data")).unwrap();
    let file = file.display().to_string();
    let output = common::cli::command(
        dir.path(),
        &["plan", "--allow-untrusted-manifests", "-f", &file],
    )
    .output()
    .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("nothing to do"));

    fs::write(
        dir.path().join("vol.yaml"),
        "apiVersion: berth/v1\nkind: Volume\nmetadata: {name: Bad_Name}\n",
    )
    .unwrap();
    let output = common::cli::command(
        dir.path(),
        &["plan", "--allow-untrusted-manifests", "-f", &file],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("metadata.name"));
}

#[test]
fn documents_found_valid_are_remembered_and_an_edited_one_is_checked_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vol.yaml");
    fs::write(
        &file,
        "apiVersion: berth/v1\nkind: Volume\nmetadata:\n  name: data\n  labels: {tier: db}\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let plan = || {
        common::cli::command(
            dir.path(),
            &["plan", "--allow-untrusted-manifests", "-f", &file],
        )
        .output()
        .unwrap()
    };
    let validate = common::cli::command(
        dir.path(),
        &["validate", "--allow-untrusted-manifests", "-f", &file],
    )
    .output()
    .unwrap();
    assert_eq!(validate.status.code(), Some(0));
    let cache = dir.path().join("root/cache/known-valid");
    assert!(!cache.exists(), "validate writes nothing");

    assert_eq!(plan().status.code(), Some(2), "the volume is to be created");
    let remembered = fs::read_to_string(&cache).expect("plan remembers the valid document");
    assert_eq!(
        remembered.lines().count(),
        2,
        "its binary and one digest: {remembered}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        plan().status.code(),
        Some(2),
        "the same verdict from the cache"
    );

    // The same document with a label the schema refuses: checked again.
    fs::write(
        dir.path().join("vol.yaml"),
        "apiVersion: berth/v1\nkind: Volume\nmetadata:\n  name: data\n  labels: {tier: [db]}\n",
    )
    .unwrap();
    let output = plan();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("metadata.labels.tier"), "{stderr}");
}
