//! `scripts/check-rust.sh`, which the quickstart and the test script run
//! before they install anything: a missing or too old Rust toolchain stops
//! them at once, naming the version Cargo.toml requires and how to get it.
//! Runs the script with fake `cargo` and `rustc` first on PATH; no root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Cargo.toml's `rust-version`, which the script reads for itself.
const REQUIRED: &str = env!("CARGO_PKG_RUST_VERSION");

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-rust.sh")
}

/// A directory of fake tools, each printing its `--version` line.
struct FakeTools(tempfile::TempDir);

impl FakeTools {
    fn new() -> Self {
        FakeTools(tempfile::tempdir().expect("temp dir"))
    }

    fn with(self, tool: &str, version_line: &str) -> Self {
        let path = self.0.path().join(tool);
        fs::write(&path, format!("#!/bin/sh\necho '{version_line}'\n")).expect("write fake tool");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod fake tool");
        self
    }

    /// Runs the script with only the fakes and the system's own tools on
    /// PATH (rustup's real cargo lives in ~/.cargo/bin, not there).
    fn check(&self) -> Output {
        let path = format!("{}:/usr/bin:/bin", self.0.path().display());
        Command::new("bash")
            .arg(script())
            .env("PATH", path)
            .output()
            .expect("run scripts/check-rust.sh")
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The install advice every refusal gives.
fn assert_says_what_to_install(output: &Output) {
    let text = stderr(output);
    assert!(!output.status.success(), "passed: {text}");
    assert!(
        text.contains(&format!("berth needs Rust {REQUIRED} or newer")),
        "{text}"
    );
    assert!(
        text.contains("curl https://sh.rustup.rs -sSf | sh -s -- -y --default-toolchain stable"),
        "{text}"
    );
    assert!(text.contains("Debian's own cargo and rustc"), "{text}");
}

#[test]
fn debians_rustc_1_65_is_refused_naming_the_required_version() {
    let output = FakeTools::new()
        .with("cargo", "cargo 1.95.0 (f2d3ce0bd 2026-03-21)")
        .with("rustc", "rustc 1.65.0 (897e37553 2022-11-02)")
        .check();
    assert_says_what_to_install(&output);
    assert!(
        stderr(&output).contains("rustc 1.65.0 ("),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_old_cargo_is_refused_even_beside_a_new_rustc() {
    let output = FakeTools::new()
        .with("cargo", "cargo 1.65.0 (4bc8f24d3 2022-10-20)")
        .with("rustc", "rustc 1.95.0 (59807616e 2026-04-14)")
        .check();
    assert_says_what_to_install(&output);
    assert!(
        stderr(&output).contains("cargo 1.65.0"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn no_cargo_at_all_is_refused_saying_it_is_missing() {
    let output = FakeTools::new()
        .with("rustc", "rustc 1.95.0 (59807616e 2026-04-14)")
        .check();
    assert_says_what_to_install(&output);
    assert!(
        stderr(&output).contains("cargo is missing"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn versions_compare_as_numbers_not_text() {
    // 1.9 is older than 1.85 although "1.9" sorts after "1.85".
    let old = FakeTools::new()
        .with("cargo", "cargo 1.9.0")
        .with("rustc", "rustc 1.9.0")
        .check();
    assert_says_what_to_install(&old);
    let newer = FakeTools::new()
        .with("cargo", "cargo 1.100.0")
        .with("rustc", "rustc 1.100.2 (abc 2030-01-01)")
        .check();
    assert!(newer.status.success(), "{}", stderr(&newer));
}

#[test]
fn exactly_the_required_version_passes() {
    let output = FakeTools::new()
        .with("cargo", &format!("cargo {REQUIRED}.0 (x 2025-01-01)"))
        .with("rustc", &format!("rustc {REQUIRED}.0 (x 2025-01-01)"))
        .check();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
}
