//! A container name on the command line is checked by the one rule before
//! it becomes any path: `berth rm ../../x` and friends are refused with the
//! rule, and nothing outside berth's directories is read or removed.
//!
//! Regression: the record path was `<root>/containers/<name>.json` built
//! from whatever the user typed.

mod common;

use std::fs;

#[test]
fn a_name_that_would_leave_berths_directories_is_refused_by_every_verb() {
    let dir = tempfile::tempdir().unwrap();
    // What `rm ../victim` would have reached: <root>/containers/../victim.json.
    let victim = dir.path().join("root/victim.json");
    fs::create_dir_all(victim.parent().unwrap()).unwrap();
    fs::write(&victim, "{}").unwrap();
    for args in [
        &["rm", "-f", "../victim"][..],
        &["stop", "../victim"],
        &["inspect", "../victim"],
        &["logs", "../victim"],
        &["exec", "../victim", "--", "true"],
        &["run", "--name", "../victim", "busybox"],
    ] {
        let output = common::cli::run(dir.path(), args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains("\"../victim\" is not a valid container name"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "{}", "left alone");
}

#[test]
fn a_record_whose_id_breaks_the_rule_is_corrupt_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("root/containers");
    fs::create_dir_all(&records).unwrap();
    fs::write(records.join("web.json"), r#"{"id": "../../etc"}"#).unwrap();
    let output = common::cli::run(dir.path(), &["inspect", "web"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("web.json is corrupt"), "{stderr}");
}

#[test]
fn a_volume_name_that_is_a_path_is_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    // Regression: the volume "x/../../../out" became <root>/volumes/x/../../../out.
    let output = common::cli::run(
        dir.path(),
        &["run", "--rm", "-v", "x/../../../out:/v", "busybox", "true"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is not a valid"), "{stderr}");
    assert!(stderr.contains("volume name"), "{stderr}");
    assert!(!dir.path().join("out").exists());
}
