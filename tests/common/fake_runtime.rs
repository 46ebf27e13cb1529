//! A container run by a real shim on the fake OCI runtime
//! (`tests/fixtures/fake-runtime`): no root, no image, no network. The
//! container is `sh BUNDLE/fake-init`, an ordinary process.
//!
//! Include with `#[path = "common/fake_runtime.rs"] mod fake_runtime;`.
#![allow(dead_code)]

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth::runtime::container_dir::{
    ContainerDir, LogConfig, RestartConfig, RestartPolicy, ShimConfig, Status,
};
use berth::runtime::host::Host;
use berth::runtime::oci::OciRuntime;
use berth::runtime::process::ProcHost;
use berth::runtime::runc::Runc;
use berth::state::{lock, Layout};
use nix::sys::signal::Signal;

pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

/// The fake runtime, as committed.
pub fn fake_runtime() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-runtime")
}

/// A process berth started, known by pid and start time, so that a test
/// never mistakes a reused pid for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub pid: u32,
    pub start_time: u64,
}

impl Started {
    pub fn of(pid: u32) -> Option<Started> {
        ProcHost
            .start_time(pid)
            .map(|start_time| Started { pid, start_time })
    }

    /// Still the same live process.
    pub fn alive(&self) -> bool {
        ProcHost.start_time(self.pid) == Some(self.start_time)
    }

    /// SIGKILL, only if it is still the same process.
    pub fn kill(&self) {
        if self.alive() {
            let process = berth::runtime::process::ProcessId {
                pid: self.pid,
                start_time: self.start_time,
            };
            ProcHost.signal(process, Signal::SIGKILL);
        }
    }
}

/// Polls `done` every 10 ms; panics with `what` after `timeout` (a
/// generous bound: only a hang should reach it).
pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One container directory, bundle and runtime root in a temp dir of its
/// own. Drop SIGKILLs the shim and the init it saw (by pid and start time)
/// and deletes the runtime's container.
pub struct FakeContainer {
    pub temp: tempfile::TempDir,
    pub dir: ContainerDir,
    pub runtime: Runc,
    pub id: String,
    seen: std::cell::RefCell<Vec<Started>>,
}

impl FakeContainer {
    /// A container whose init runs the shell script `init`.
    pub fn new(init: &str) -> FakeContainer {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "fake-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let temp = tempfile::tempdir().unwrap();
        let dir = ContainerDir::new(&Layout::new(temp.path(), temp.path()), &id);
        fs::create_dir_all(dir.bundle()).unwrap();
        fs::write(dir.bundle().join("fake-init"), init).unwrap();
        let runtime = Runc::new(&fake_runtime(), &temp.path().join("runtime"));
        FakeContainer {
            temp,
            dir,
            runtime,
            id,
            seen: Default::default(),
        }
    }

    /// A shim config on the fake runtime: no restart, SIGTERM first, then
    /// SIGKILL after `grace`.
    pub fn config(&self, grace: Duration) -> ShimConfig {
        ShimConfig {
            id: self.id.clone(),
            bundle: self.dir.bundle(),
            runtime: self.runtime.binary.clone(),
            runtime_root: self.runtime.root.clone(),
            restart: RestartConfig {
                policy: RestartPolicy::Never,
                max_retries: None,
                initial_ms: 100,
                max_ms: 1_000,
                reset_after_ms: 10_000,
            },
            healthcheck: None,
            stop_signal: SIGTERM,
            stop_grace_ms: grace.as_millis() as u64,
            log_dir: self.temp.path().join("logs").join(&self.id),
            log: LogConfig::default(),
            stdin: false,
            console_socket: None,
            attached_runtime: false,
            events_log: None,
        }
    }

    /// Starts `berth shim --dir DIR` as the engine does (the shim lock
    /// handed over, stdio on /dev/null) and returns the shim once the
    /// spawner has exited 0.
    pub fn spawn_shim(&self, config: &ShimConfig) -> Started {
        fs::write(
            self.dir.shim_config(),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
        let shim_lock = lock::acquire_for_child(&self.dir.shim_lock()).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .arg("shim")
            .arg("--dir")
            .arg(&self.dir.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        lock::share_with_child(&mut command, shim_lock.as_raw_fd());
        let out = command.output().unwrap();
        drop(shim_lock);
        assert!(
            out.status.success(),
            "berth shim: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let recorded = self
            .dir
            .read_shim_process()
            .expect("shim.pid after the spawner");
        let shim = Started::of(recorded.pid).expect("the shim runs");
        assert_eq!(
            shim.start_time, recorded.start_time,
            "shim.pid names the shim"
        );
        self.seen.borrow_mut().push(shim);
        shim
    }

    /// Waits for status.json to satisfy `done`; panics with the shim's log.
    pub fn wait_status(&self, what: &str, done: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.dir.read_status() {
                if done(&status) {
                    return status;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status {:?}\nshim.log:\n{}",
                self.dir.read_status(),
                self.shim_log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the container to run and returns its init.
    pub fn wait_running(&self) -> Started {
        let status = self.wait_status("the container to run", |s| {
            s.pid.is_some() && s.phase == berth::runtime::container_dir::Phase::Running
        });
        let init = Started::of(status.pid.unwrap()).expect("the init runs");
        self.seen.borrow_mut().push(init);
        init
    }

    /// The runtime calls so far, as "VERB ARGS..." lines, in order.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.runtime.root.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Where the first call matching `verb args` came, if it did.
    pub fn call_index(&self, call: &str) -> Option<usize> {
        self.calls().iter().position(|c| c == call)
    }

    /// Makes the fake runtime's `delete` wait until [`Self::release_delete`].
    pub fn hold_delete(&self) {
        fs::create_dir_all(&self.runtime.root).unwrap();
        fs::write(self.runtime.root.join("hold-delete"), "").unwrap();
    }

    pub fn release_delete(&self) {
        let _ = fs::remove_file(self.runtime.root.join("hold-delete"));
    }

    pub fn shim_log(&self) -> String {
        fs::read_to_string(self.dir.dir.join("shim.log")).unwrap_or_default()
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        self.release_delete();
        for process in self.seen.borrow().iter() {
            process.kill();
        }
        let _ = self.runtime.delete_force(&self.id);
    }
}
