//! The read verbs show berth's records and the shims' status files: they
//! need no OCI runtime (and no root), while the verbs that change
//! containers still say when there is none.

mod common;

#[test]
fn read_verbs_work_without_an_oci_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-runtime");
    let runtime = missing.to_str().unwrap();
    let ps = common::cli::ok(
        dir.path(),
        &["--runtime", runtime, "ps", "-a", "-o", "json"],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ps).unwrap(),
        serde_json::json!([])
    );
    common::cli::ok(
        dir.path(),
        &["--runtime", runtime, "volume", "ls", "-o", "json"],
    );
    let inspect = common::cli::run(dir.path(), &["--runtime", runtime, "inspect", "web"]);
    let stderr = String::from_utf8_lossy(&inspect.stderr);
    assert!(stderr.contains("no container \"web\""), "{stderr}");

    let rm = common::cli::run(dir.path(), &["--runtime", runtime, "rm", "web"]);
    let stderr = String::from_utf8_lossy(&rm.stderr);
    assert!(!rm.status.success());
    assert!(stderr.contains("no OCI runtime"), "{stderr}");
}
