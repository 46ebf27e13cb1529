//! Running the berth binary against an isolated instance: every test has
//! its own `--root` and `--state` under a temp dir.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `berth --root DIR/root --state DIR/state ARGS...`.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--state")
        .arg(dir.join("state"))
        .args(args);
    command
}

/// Runs berth with no standard input and collects its output.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args)
        .stdin(Stdio::null())
        .output()
        .expect("berth runs")
}

/// Runs berth, expects success and returns its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    succeeded(&format!("berth {args:?}"), &run(dir, args))
}

/// Expects `output` (of `what`) to be a success and returns its stdout; the
/// panic shows the exit status, stdout and stderr.
pub fn succeeded(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
