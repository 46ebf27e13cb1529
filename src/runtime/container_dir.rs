//! A container's runtime directory: the files its shim and the rest of
//! berth share, under `<state>/containers/<id>/` (the layout's
//! `container_dir`), and what they hold:
//!
//! ```text
//! shim.json      ShimConfig, written by berth before it starts the shim
//! shim.pid       the shim's pid and start time (`PID START_TIME`), written
//!                by the shim once it has detached
//! shim.lock      flock held by the shim from its spawn to its exit (and by
//!                its runtime calls), so a shim that has not written its
//!                pid yet is still known to exist
//! status.json    Status, rewritten atomically by the shim on every change
//! init.pid       the container's init pid, written by runc run
//! bundle/        config.json and the rootfs mount point
//! ```
//!
//! The container's logs are not here (a tmpfs, cleared on reboot) but in
//! the directory `ShimConfig::log_dir` names, under `--root`.
//!
//! Signals to the shim: SIGTERM = stop the container (stopSignal, then
//! SIGKILL after the grace period), do not restart it, exit.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::probe::{HttpProbe, TcpProbe};
use super::process::ProcessId;
use crate::manifest::{LogDriver, Logging};
use crate::state::atomic::write_atomic_volatile;
use crate::state::Layout;

/// What the shim needs to run and supervise one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShimConfig {
    pub id: String,
    /// The OCI bundle (config.json + rootfs).
    pub bundle: PathBuf,
    /// The runc-compatible runtime binary.
    pub runtime: PathBuf,
    /// `runc --root`: where the runtime keeps its state.
    pub runtime_root: PathBuf,
    pub restart: RestartConfig,
    pub healthcheck: Option<HealthConfig>,
    /// Signal number sent first on stop.
    pub stop_signal: i32,
    pub stop_grace_ms: u64,
    /// Where the container's log files go (`container.log` and its
    /// rotations): the layout's `container_logs`, under `--root`.
    pub log_dir: PathBuf,
    pub log: LogConfig,
    /// Feed the container's stdin from the `stdin` fifo in the container dir.
    #[serde(default)]
    pub stdin: bool,
    /// Give the container a terminal: runc sends its master to this socket
    /// (where `berth run -t` waits); no log pipes then.
    #[serde(default)]
    pub console_socket: Option<PathBuf>,
    /// Keep the runtime attached for the container's life (`runc run`
    /// without `--detach`): it removes the container itself when the init
    /// exits, so no `runtime delete` follows. For `berth run --rm` without
    /// a terminal, whose container lives only as long as the command: a
    /// runtime process stays resident meanwhile, and a death by signal N is
    /// recorded as the runtime reports it, exit code 128 + N.
    #[serde(default)]
    pub attached_runtime: bool,
    /// berth's events log (its [`Layout::events_log`]), where the shim
    /// records restarts, health changes and a failure for good; none in
    /// the config of a shim from before the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_log: Option<PathBuf>,
}

impl ShimConfig {
    /// The log file the shim writes now.
    pub fn log_file(&self) -> PathBuf {
        crate::runtime::logs::current_log(&self.log_dir)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
    UnlessStopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartConfig {
    pub policy: RestartPolicy,
    /// With on-failure: restarts allowed (None = unlimited).
    pub max_retries: Option<u32>,
    pub initial_ms: u64,
    pub max_ms: u64,
    pub reset_after_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthConfig {
    /// What is checked: `exec` (the form shims before probes knew), `http`
    /// or `tcp`, one key beside the timings.
    #[serde(flatten)]
    pub check: HealthProbe,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
    pub start_period_ms: u64,
    /// Restart the container when it becomes unhealthy.
    pub restart_on_unhealthy: bool,
}

/// How the shim checks a container's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HealthProbe {
    /// A command run in the container (`runtime exec`); exit 0 passes.
    Exec(Vec<String>),
    /// An HTTP GET from inside the container's network namespace.
    Http(HttpProbe),
    /// A TCP connection from inside the container's network namespace.
    Tcp(TcpProbe),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfig {
    /// Rotate when the current file passes this size.
    pub max_bytes: u64,
    /// Files kept, the current one included.
    pub max_files: u32,
    /// Where the output goes; absent in the config of a shim from before
    /// drivers existed, which wrote files.
    #[serde(default, skip_serializing_if = "LogDriverConfig::is_file")]
    pub driver: LogDriverConfig,
}

/// Where the shim sends the container's output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum LogDriverConfig {
    /// The CRI-format log files in `ShimConfig::log_dir`.
    #[default]
    File,
    /// Nowhere: the container's stdout and stderr are /dev/null.
    None,
    /// A program started with each start of the container, stdout on its
    /// fd 3 and stderr on its fd 4 (see the shim's `log_program`).
    Binary { path: PathBuf, args: Vec<String> },
}

impl LogDriverConfig {
    pub fn is_file(&self) -> bool {
        matches!(self, LogDriverConfig::File)
    }

    /// How `berth logs` and `inspect` name it: `none`, `binary PATH`.
    pub fn describe(&self) -> String {
        match self {
            LogDriverConfig::File => "file".to_string(),
            LogDriverConfig::None => "none".to_string(),
            LogDriverConfig::Binary { path, .. } => format!("binary {}", path.display()),
        }
    }
}

impl LogConfig {
    /// The rotation a container's `logging` settings ask for (defaults
    /// where they say nothing).
    pub fn of(logging: Option<&Logging>) -> Self {
        let logging = logging.cloned().unwrap_or_default();
        LogConfig {
            max_bytes: logging.max_size().0,
            max_files: logging.max_files(),
            driver: match logging.driver() {
                LogDriver::File => LogDriverConfig::File,
                LogDriver::None => LogDriverConfig::None,
                LogDriver::Binary => LogDriverConfig::Binary {
                    path: PathBuf::from(logging.path.unwrap_or_default()),
                    args: logging.args,
                },
            },
        }
    }
}

impl Default for LogConfig {
    /// The manifest's defaults (kubelet's): 10 MiB x 5 files.
    fn default() -> Self {
        LogConfig::of(None)
    }
}

/// Where the container is in its life, as the shim last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The shim is setting it up (runc run).
    Created,
    Running,
    /// Exited; waiting out the backoff before the next start.
    Restarting,
    /// Exited for good (policy says no restart, or stopped on request).
    Exited,
}

/// A container's state as berth reports it, from the shim's phase to `ps`:
/// the phase, or Unknown when no live shim vouches for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Restarting,
    Exited,
    /// No status and no shim, or a status that says it runs while its shim
    /// is gone.
    Unknown,
}

impl ContainerState {
    /// What the shim's last status and whether the shim lives say.
    pub fn of(status: Option<&Status>, shim_alive: bool) -> Self {
        match status {
            Some(status) if !shim_alive && status.phase != Phase::Exited => Self::Unknown,
            Some(status) => match status.phase {
                Phase::Created => Self::Created,
                Phase::Running => Self::Running,
                Phase::Restarting => Self::Restarting,
                Phase::Exited => Self::Exited,
            },
            None if shim_alive => Self::Created,
            None => Self::Unknown,
        }
    }

    /// Whether a shim still looks after it (it runs, or will again).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Created | Self::Running | Self::Restarting)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub state: HealthState,
    pub failing_streak: u32,
    /// The last check's output (truncated) and exit code.
    pub last_output: String,
    pub last_exit_code: Option<i32>,
    pub last_check_unix_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub phase: Phase,
    pub shim_pid: u32,
    /// The container's init pid while running.
    pub pid: Option<u32>,
    pub started_unix_ms: Option<u64>,
    pub exited_unix_ms: Option<u64>,
    pub exit_code: Option<i32>,
    /// Set when the container was killed by a signal.
    pub signal: Option<i32>,
    /// Starts after the first.
    pub restarts: u32,
    /// When the next start is due (Restarting).
    pub next_start_unix_ms: Option<u64>,
    /// A stop was requested; no restart will follow.
    pub stopped: bool,
    pub health: Option<Health>,
    /// Why the last start failed, if it did (runc run's error).
    pub error: Option<String>,
    /// Its shim died before the container's exit could be recorded: berth
    /// settled it (stopped what still ran) and the exit is unknown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shim_lost: bool,
}

impl Status {
    /// A status in `phase` written by shim `shim_pid`, with nothing else
    /// known yet.
    pub fn new(phase: Phase, shim_pid: u32) -> Self {
        Status {
            phase,
            shim_pid,
            pid: None,
            started_unix_ms: None,
            exited_unix_ms: None,
            exit_code: None,
            signal: None,
            restarts: 0,
            next_start_unix_ms: None,
            stopped: false,
            health: None,
            error: None,
            shim_lost: false,
        }
    }
}

impl Status {
    /// Why the last start failed, in a few words for `ps` and `apply`
    /// (the whole message stays in `error`, which `inspect` shows).
    pub fn start_error_reason(&self) -> Option<String> {
        self.error.as_deref().map(start_error_reason)
    }
}

/// The reason of a container whose shim died before recording its exit.
pub const SHIM_LOST: &str = "exit unknown (shim lost)";

/// Prefixes that say only that a start failed, which the reader knows.
const START_ERROR_PREFIXES: [&str; 4] = [
    "runc run failed: ",
    "unable to start container process: ",
    "error during container init: ",
    "unable to apply cgroup configuration: ",
];

/// The gist of a start error as the shim records it: the runtime's own
/// message (runc logs `time=... level=error msg="..."`), without the
/// wrappers that repeat that a start failed, on one line.
pub fn start_error_reason(error: &str) -> String {
    let message = match error.rfind("msg=\"") {
        Some(at) => unquote(&error[at + 4..]),
        None => {
            let rest = error.strip_prefix("runtime run failed: ").unwrap_or(error);
            strip_exit_status(rest).to_string()
        }
    };
    let mut reason = message.trim();
    while let Some(rest) = START_ERROR_PREFIXES
        .iter()
        .find_map(|prefix| reason.strip_prefix(prefix))
    {
        reason = rest.trim_start();
    }
    reason.lines().next().unwrap_or_default().trim().to_string()
}

/// `exit status: 1: MESSAGE` -> `MESSAGE` (a runtime that exited with
/// nothing to say keeps its status, the only thing known).
fn strip_exit_status(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("exit status: ") else {
        return text;
    };
    match rest.split_once(": ") {
        Some((code, message)) if code.parse::<i32>().is_ok() => message,
        _ => text,
    }
}

/// The text of a Go-quoted string at the start of `quoted` (up to its
/// closing quote), with `\"` and `\\` unescaped.
fn unquote(quoted: &str) -> String {
    let mut text = String::new();
    let mut chars = quoted.chars().skip(1);
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => text.push(' '),
                Some('t') => text.push(' '),
                Some(other) => text.push(other),
                None => break,
            },
            c => text.push(c),
        }
    }
    text
}

/// Paths of one container's runtime directory.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub dir: PathBuf,
}

impl ContainerDir {
    /// The runtime directory of container `id` in `layout`.
    pub fn new(layout: &Layout, id: &str) -> Self {
        ContainerDir {
            dir: layout.container_dir(id),
        }
    }

    pub fn shim_config(&self) -> PathBuf {
        self.dir.join("shim.json")
    }
    pub fn shim_pid(&self) -> PathBuf {
        self.dir.join("shim.pid")
    }
    pub fn shim_lock(&self) -> PathBuf {
        self.dir.join("shim.lock")
    }
    pub fn status(&self) -> PathBuf {
        self.dir.join("status.json")
    }
    pub fn init_pid(&self) -> PathBuf {
        self.dir.join("init.pid")
    }
    pub fn stdin_fifo(&self) -> PathBuf {
        self.dir.join("stdin")
    }
    /// The shim's own diagnostics.
    pub fn shim_log(&self) -> PathBuf {
        self.dir.join("shim.log")
    }

    /// The OCI runtime's log (`--log`), read when a start fails.
    pub fn runtime_log(&self) -> PathBuf {
        self.dir.join("runtime.log")
    }

    /// The pid of the health check's `exec`, while one runs.
    pub fn health_pid(&self) -> PathBuf {
        self.dir.join("health.pid")
    }

    /// `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` as berth writes
    /// them for the container (bind-mounted in).
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }

    /// The bundle's OCI runtime spec.
    pub fn runtime_spec(&self) -> PathBuf {
        self.bundle().join("config.json")
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    pub fn read_status(&self) -> io::Result<Option<Status>> {
        read_json(&self.status())
    }

    /// Atomic, not fsynced: the state directory does not outlive a reboot.
    pub fn write_status(&self, status: &Status) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(status).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomic_volatile(&self.status(), &bytes)
    }

    pub fn read_shim_config(&self) -> io::Result<Option<ShimConfig>> {
        read_json(&self.shim_config())
    }

    /// The shim `shim.pid` names (pid and start time), whether or not it
    /// still lives; None when the file is missing or does not parse.
    pub fn read_shim_process(&self) -> Option<ProcessId> {
        let bytes = crate::state::records::read_bounded(&self.shim_pid()).ok()?;
        ProcessId::parse(std::str::from_utf8(&bytes).ok()?)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match crate::state::records::read_bounded(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_config_keeps_the_exec_form_of_shims_before_probes() {
        let old = r#"{"exec":["true"],"intervalMs":1000,"timeoutMs":500,"retries":3,"startPeriodMs":0,"restartOnUnhealthy":false}"#;
        let config: HealthConfig = serde_json::from_str(old).unwrap();
        assert_eq!(config.check, HealthProbe::Exec(vec!["true".into()]));
        assert_eq!(serde_json::to_string(&config).unwrap(), old);
        let tcp = old.replace(r#""exec":["true"]"#, r#""tcp":{"port":80}"#);
        let config: HealthConfig = serde_json::from_str(&tcp).unwrap();
        assert_eq!(config.check, HealthProbe::Tcp(TcpProbe { port: 80 }));
    }

    #[test]
    fn a_detached_runc_start_error_is_reduced_to_runcs_own_message() {
        let error = "runtime run failed: exit status: 1: time=\"2026-12-02T00:58:21Z\" \
                     level=error msg=\"runc run failed: unable to start container process: \
                     exec: \\\"/nonexistent\\\": stat /nonexistent: no such file or directory\"";
        assert_eq!(
            start_error_reason(error),
            "exec: \"/nonexistent\": stat /nonexistent: no such file or directory"
        );
    }

    #[test]
    fn an_attached_start_error_loses_its_wrappers() {
        let error = "runtime run failed: exit status: 1: runc run failed: unable to start \
                     container process: error during container init: error mounting \"/x\"";
        assert_eq!(start_error_reason(error), "error mounting \"/x\"");
    }

    #[test]
    fn an_error_from_before_the_runtime_is_kept_as_it_is() {
        assert_eq!(
            start_error_reason("run runc run: No such file or directory (os error 2)"),
            "run runc run: No such file or directory (os error 2)"
        );
        assert_eq!(
            start_error_reason("runtime run failed: exit status: 1"),
            "exit status: 1"
        );
        assert_eq!(start_error_reason("first line\nsecond"), "first line");
    }

    #[test]
    fn a_status_without_an_error_has_no_reason() {
        let mut status = Status::new(Phase::Running, 1);
        assert_eq!(status.start_error_reason(), None);
        status.error = Some("runtime run failed: exit status: 2: bad".into());
        assert_eq!(status.start_error_reason().as_deref(), Some("bad"));
    }
}
