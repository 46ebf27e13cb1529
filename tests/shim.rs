//! The shim end to end, as root, with real runc: `berth shim --dir DIR`
//! started the way berth starts it, on a busybox bundle written here.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth::runtime::container_dir::{
    ContainerDir, HealthConfig, HealthProbe, HealthState, LogConfig, Phase, RestartConfig,
    RestartPolicy, ShimConfig, Status,
};
use common::instance::Instance;
use common::{images as img, prereq};
use serde_json::json;

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// The busybox rootfs as an uncompressed tar, built once per test binary.
fn busybox_tar() -> &'static Vec<u8> {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| img::layer_tar(&img::busybox_layer().entries))
}

/// One container directory with a bundle, in an [`Instance`]'s state dir
/// (`state/containers/ID`, runc root `state/runc`) so that dropping the
/// instance SIGKILLs the shim, by pid, and deletes the runc container.
struct Fixture {
    instance: Instance,
    paths: ContainerDir,
    /// The log directory, under the instance's root as berth puts it.
    logs: PathBuf,
    runtime_root: PathBuf,
    runc: PathBuf,
    id: String,
}

impl Fixture {
    /// None (test skipped) without root, runc or busybox.
    fn new(test: &str, args: &[&str]) -> Option<Fixture> {
        Self::with_mounts(test, args, &[])
    }

    fn with_mounts(test: &str, args: &[&str], mounts: &[serde_json::Value]) -> Option<Fixture> {
        if !prereq::require_root(test) || !prereq::require_busybox(test) {
            return None;
        }
        let runc = prereq::require_binary("runc", "runc")?;
        let instance = Instance::new();
        let id = instance.unique_name("shim-test");
        let paths = ContainerDir {
            dir: instance.state().join("containers").join(&id),
        };
        let rootfs = paths.rootfs();
        fs::create_dir_all(&rootfs).unwrap();
        let tar_path = instance.path().join("rootfs.tar");
        fs::write(&tar_path, busybox_tar()).unwrap();
        run_ok(
            Command::new("tar")
                .arg("-xf")
                .arg(&tar_path)
                .arg("-C")
                .arg(&rootfs),
        );
        run_ok(Command::new(&runc).arg("spec").current_dir(paths.bundle()));
        let spec_path = paths.bundle().join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&fs::read(&spec_path).unwrap()).unwrap();
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(args);
        spec["root"]["path"] = json!("rootfs");
        for mount in mounts {
            spec["mounts"].as_array_mut().unwrap().push(mount.clone());
        }
        fs::write(&spec_path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        let runtime_root = instance.runc_root();
        Some(Fixture {
            logs: instance.root().join("logs").join(&id),
            instance,
            paths,
            runtime_root,
            runc,
            id,
        })
    }

    fn config(&self, policy: RestartPolicy) -> ShimConfig {
        ShimConfig {
            id: self.id.clone(),
            bundle: self.paths.bundle(),
            runtime: self.runc.clone(),
            runtime_root: self.runtime_root.clone(),
            restart: RestartConfig {
                policy,
                max_retries: None,
                initial_ms: 100,
                max_ms: 2_000,
                reset_after_ms: 10_000,
            },
            healthcheck: None,
            stop_signal: SIGTERM,
            stop_grace_ms: 5_000,
            log_dir: self.logs.clone(),
            log: LogConfig::default(),
            stdin: false,
            console_socket: None,
            attached_runtime: false,
            events_log: None,
        }
    }

    /// The log file the shim writes now.
    fn log_file(&self) -> PathBuf {
        berth::runtime::logs::current_log(&self.logs)
    }

    /// Starts the shim as berth does and returns its pid once the spawner
    /// has exited 0.
    fn spawn(&self, config: &ShimConfig) -> u32 {
        fs::write(
            self.paths.shim_config(),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("shim")
            .arg("--dir")
            .arg(&self.paths.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth shim: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        self.paths
            .read_shim_process()
            .expect("shim.pid after the spawner exits")
            .pid
    }

    /// Polls status.json until `done` says so; panics after `timeout`.
    fn wait_status(&self, timeout: Duration, what: &str, done: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.paths.read_status() {
                if done(&status) {
                    return status;
                }
                if Instant::now() > deadline {
                    panic!(
                        "timed out waiting for {what}; status: {status:#?}\nshim.log:\n{}",
                        self.shim_log()
                    );
                }
            } else if Instant::now() > deadline {
                panic!("timed out waiting for {what}: no status.json");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the shim as [`Self::spawn`] does, then waits until the
    /// container's init runs and has set its SIGTERM trap: the shim signals
    /// at once, and a shell without the trap yet would die of the signal.
    fn spawn_trapping(&self, config: &ShimConfig) -> u32 {
        let shim = self.spawn(config);
        let running = self.wait_status(Duration::from_secs(20), "running", |s| {
            s.phase == Phase::Running && s.pid.is_some()
        });
        let init = running.pid.unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !catches_sigterm(init) {
            assert!(Instant::now() < deadline, "the init never set its trap");
            std::thread::sleep(Duration::from_millis(20));
        }
        shim
    }

    /// Asks the shim to stop the container as berth does (SIGTERM to the
    /// shim); returns the recorded exit once the shim is gone.
    fn stop_via_shim(&self, shim: u32) -> Status {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(shim.to_string())
            .status();
        let status = self.wait_exited(Duration::from_secs(20));
        assert!(wait_gone(shim, Duration::from_secs(10)), "shim exits");
        status
    }

    fn wait_exited(&self, timeout: Duration) -> Status {
        self.wait_status(timeout, "phase exited", |s| s.phase == Phase::Exited)
    }

    fn shim_log(&self) -> String {
        fs::read_to_string(self.paths.dir.join("shim.log")).unwrap_or_default()
    }

    fn runc(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.runc)
            .arg("--root")
            .arg(&self.runtime_root)
            .args(args)
            .output()
            .unwrap()
    }

    /// Log records of the current file, as (timestamp, stream, tag, text).
    fn log_records(&self, path: &Path) -> Vec<(String, String, String, String)> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| {
                let mut parts = line.splitn(4, ' ');
                let mut next = || parts.next().unwrap_or_default().to_string();
                (next(), next(), next(), next())
            })
            .collect()
    }
}

fn run_ok(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fields of /proc/PID/stat after the command name.
fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Alive and not a zombie (an exited shim is reparented to pid 1, which
/// may reap it late).
fn is_alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|f| f[0] != "Z" && f[0] != "X")
}

fn session_of(pid: u32) -> u32 {
    proc_stat(pid).unwrap()[3].parse().unwrap()
}

/// A `kB` field of /proc/PID/status.
fn status_kib(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Seconds within the day of a CRI timestamp `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
fn time_of_day(timestamp: &str) -> f64 {
    let clock = &timestamp[11..timestamp.len() - 1];
    let mut parts = clock.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + s
}

#[test]
fn exit_codes_zero_and_three_are_recorded() {
    for code in [0, 3] {
        let script = format!("echo bye; exit {code}");
        let Some(fx) = Fixture::new("exit_codes", &["sh", "-c", &script]) else {
            return;
        };
        fx.spawn(&fx.config(RestartPolicy::Never));
        let status = fx.wait_exited(Duration::from_secs(20));
        assert_eq!(status.exit_code, Some(code), "{status:#?}");
        assert_eq!(status.signal, None);
        assert_eq!(status.restarts, 0);
        assert!(status.started_unix_ms.is_some() && status.exited_unix_ms.is_some());
        // The runtime's container is gone once the shim is: it records the
        // exit first, then deletes the container, then exits.
        assert!(wait_gone(status.shim_pid, Duration::from_secs(20)));
        let state = fx.runc(&["state", &fx.id]);
        assert!(!state.status.success(), "runc still knows {}", fx.id);
    }
}

#[test]
fn never_policy_records_a_kill_as_a_signal_and_does_not_restart() {
    let Some(fx) = Fixture::new("never_kill", &["sleep", "1000"]) else {
        return;
    };
    fx.spawn(&fx.config(RestartPolicy::Never));
    fx.wait_status(Duration::from_secs(20), "running", |s| {
        s.phase == Phase::Running
    });
    let kill = fx.runc(&["kill", &fx.id, "KILL"]);
    assert!(kill.status.success());
    let status = fx.wait_exited(Duration::from_secs(20));
    assert_eq!(status.signal, Some(SIGKILL), "{status:#?}");
    assert_eq!(status.exit_code, None);
    assert_eq!(status.restarts, 0);
    assert!(!status.stopped);
}

#[test]
fn shim_survives_its_parent_in_its_own_session_and_stays_small() {
    let Some(fx) = Fixture::new("survives", &["sleep", "1000"]) else {
        return;
    };
    let shim = fx.spawn(&fx.config(RestartPolicy::Never));
    let status = fx.wait_status(Duration::from_secs(20), "running", |s| {
        s.phase == Phase::Running
    });
    assert_eq!(status.shim_pid, shim);
    // The process that spawned it has exited (spawn waited for it); the
    // shim lives on, in a session of its own, not a child of this test.
    assert!(is_alive(shim));
    let me = std::process::id();
    assert_ne!(session_of(shim), session_of(me));
    assert_eq!(session_of(shim), shim, "the shim leads its session");
    assert_ne!(proc_stat(shim).unwrap()[1].parse::<u32>().unwrap(), me);
    // The container's init is the shim's child (subreaper).
    let init = status.pid.unwrap();
    assert_eq!(proc_stat(init).unwrap()[1].parse::<u32>().unwrap(), shim);
    // Let it settle, then measure.
    std::thread::sleep(Duration::from_millis(300));
    let rss = status_kib(shim, "VmRSS");
    let anon = status_kib(shim, "RssAnon");
    let file = status_kib(shim, "RssFile");
    println!(
        "shim VmRSS: {rss} KiB (RssAnon {anon} KiB, RssFile {file} KiB; {})",
        env!("CARGO_BIN_EXE_berth")
    );
    if std::env::var_os("SHIM_SMAPS").is_some() {
        println!(
            "{}",
            fs::read_to_string(format!("/proc/{shim}/smaps")).unwrap()
        );
    }
    // RssFile is the binary's code in the page cache, shared by every shim;
    // a debug build's is large (and this kernel maps file pages in large
    // folios). What each shim costs on its own is RssAnon.
    assert!(anon < 2048, "shim private memory {anon} KiB");
    assert!(rss < 16384, "shim RSS {rss} KiB");
}

#[test]
fn logs_are_cri_records_and_rotate_by_size() {
    let script =
        "i=0; while [ $i -lt 300 ]; do echo \"out $i\"; echo \"err $i\" >&2; i=$((i+1)); done";
    let Some(fx) = Fixture::new("logs", &["sh", "-c", script]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::Never);
    config.log = LogConfig {
        max_bytes: 4_000,
        max_files: 3,
        ..LogConfig::default()
    };
    fx.spawn(&config);
    fx.wait_exited(Duration::from_secs(20));
    let log = fx.log_file();
    let mut names: Vec<String> = fs::read_dir(&fx.logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["container.log", "container.log.1", "container.log.2"]
    );
    let mut all = Vec::new();
    for name in names.iter().rev() {
        let path = fx.logs.join(name);
        assert!(
            fs::metadata(&path).unwrap().len() <= 4_000,
            "{name} too big"
        );
        all.extend(fx.log_records(&path));
    }
    for (ts, stream, tag, text) in &all {
        assert_eq!(ts.len(), 30, "timestamp {ts}");
        assert!(
            ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "timestamp {ts}"
        );
        assert_eq!(tag, "F");
        match stream.as_str() {
            "stdout" => assert!(text.starts_with("out "), "{text}"),
            "stderr" => assert!(text.starts_with("err "), "{text}"),
            other => panic!("stream {other}"),
        }
    }
    // The newest lines survive, in order per stream, the oldest rotated
    // away. The two pipes are drained independently, so which stream fills
    // the files kept last may vary; whichever is there ends with line 299.
    let mut last_lines = Vec::new();
    for (stream, prefix) in [("stdout", "out "), ("stderr", "err ")] {
        let numbers: Vec<u32> = all
            .iter()
            .filter(|r| r.1 == stream)
            .map(|r| r.3.strip_prefix(prefix).unwrap().parse().unwrap())
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "{stream}: {numbers:?}"
        );
        last_lines.extend(numbers.last().copied());
    }
    assert!(
        last_lines.contains(&299),
        "the newest line is kept: {last_lines:?}"
    );
    assert!(all.len() < 600, "the oldest lines were rotated out");
    assert!(!fs::read_to_string(&log).unwrap().is_empty());
}

#[test]
fn long_lines_are_split_into_partial_records() {
    // 40000 bytes without a newline, then a newline: 16384 P, 16384 P, 7232 F.
    let script = "head -c 40000 /dev/zero | tr '\\0' x; echo";
    let Some(fx) = Fixture::new("partial", &["sh", "-c", script]) else {
        return;
    };
    fx.spawn(&fx.config(RestartPolicy::Never));
    fx.wait_exited(Duration::from_secs(20));
    let records = fx.log_records(&fx.log_file());
    let shape: Vec<(&str, usize)> = records.iter().map(|r| (r.2.as_str(), r.3.len())).collect();
    assert_eq!(shape, [("P", 16384), ("P", 16384), ("F", 7232)]);
}

#[test]
fn on_failure_with_max_retries_two_runs_three_times_with_growing_gaps() {
    let Some(fx) = Fixture::new("on_failure", &["sh", "-c", "echo start; exit 1"]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::OnFailure);
    config.restart.max_retries = Some(2);
    config.restart.initial_ms = 400;
    fx.spawn(&config);
    let status = fx.wait_exited(Duration::from_secs(30));
    assert_eq!(status.restarts, 2, "{status:#?}");
    assert_eq!(status.exit_code, Some(1));
    let starts: Vec<f64> = fx
        .log_records(&fx.log_file())
        .iter()
        .filter(|r| r.3 == "start")
        .map(|r| time_of_day(&r.0))
        .collect();
    assert_eq!(starts.len(), 3, "three runs");
    let gap = |a: f64, b: f64| if b >= a { b - a } else { b + 86_400.0 - a };
    let (first, second) = (gap(starts[0], starts[1]), gap(starts[1], starts[2]));
    println!("gaps between starts: {first:.3}s, {second:.3}s");
    assert!(first >= 0.4, "first gap {first}");
    assert!(second >= 0.8, "second gap {second}");
    // Lower bounds only: load stretches gaps, so comparing two wall-clock
    // gaps is no test; the lifecycle's unit tests pin the doubling.
}

#[test]
fn always_restarts_after_a_runtime_kill() {
    let Some(fx) = Fixture::new("always", &["sleep", "1000"]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::Always);
    config.stop_grace_ms = 500;
    let shim = fx.spawn(&config);
    let first = fx.wait_status(Duration::from_secs(20), "running", |s| {
        s.phase == Phase::Running
    });
    assert!(fx.runc(&["kill", &fx.id, "KILL"]).status.success());
    let second = fx.wait_status(Duration::from_secs(20), "running again", |s| {
        s.phase == Phase::Running && s.restarts == 1
    });
    assert_ne!(first.pid, second.pid);
    assert_eq!(second.signal, None, "a new run clears the last exit");
    // Stop it (sleep as pid 1 ignores SIGTERM: SIGKILL after 500 ms).
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(shim.to_string())
        .status();
    let last = fx.wait_exited(Duration::from_secs(20));
    assert!(last.stopped);
    assert_eq!(last.restarts, 1);
    assert!(wait_gone(shim, Duration::from_secs(10)), "shim exits");
}

#[test]
fn sigterm_stops_the_container_within_the_grace_period_and_the_shim_exits() {
    let script = "trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done";
    let Some(fx) = Fixture::new("sigterm", &["sh", "-c", script]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::Always);
    config.stop_grace_ms = 10_000;
    let shim = fx.spawn_trapping(&config);
    let asked = Instant::now();
    let status = fx.stop_via_shim(shim);
    let took = asked.elapsed();
    println!("stopped in {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "well within the 10 s grace: {took:?}"
    );
    assert!(status.stopped);
    assert_eq!(status.exit_code, Some(0), "{status:#?}");
    assert_eq!(status.restarts, 0);
    assert!(!fx.runc(&["state", &fx.id]).status.success());
}

/// A runtime that notes each call's arguments, a line each, in `log`,
/// then runs the real one.
fn logging_runtime(fx: &Fixture, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = fx.instance.path().join("logging-runtime");
    let text = format!(
        "#!/bin/sh\necho \"$*\" >>'{}'\nexec '{}' \"$@\"\n",
        log.display(),
        fx.runc.display()
    );
    fs::write(&script, text).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The runtime subcommands a [`logging_runtime`] saw, in order.
fn runtime_calls(log: &Path) -> Vec<String> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            // Global options (`--root DIR`, `--log F`, ...) take a value each.
            let mut words = line.split_whitespace();
            while let Some(word) = words.next() {
                if !word.starts_with("--") {
                    return Some(word.to_string());
                }
                words.next();
            }
            None
        })
        .collect()
}

/// Whether process `pid` has a SIGTERM handler (`SigCgt` in its status).
fn catches_sigterm(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (SIGTERM - 1)) != 0)
}

/// Starts a container whose init exits 0 on SIGTERM, on a
/// [`logging_runtime`] (attached or not), stops it as berth does (SIGTERM
/// to the shim) and returns its final status and the runtime calls seen.
fn stop_with_logged_runtime(test: &str, attached: bool) -> Option<(Status, Vec<String>)> {
    let script = "trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done";
    let fx = Fixture::new(test, &["sh", "-c", script])?;
    let log = fx.instance.path().join("runtime-calls.log");
    let mut config = fx.config(RestartPolicy::Always);
    config.runtime = logging_runtime(&fx, &log);
    config.attached_runtime = attached;
    let shim = fx.spawn_trapping(&config);
    let status = fx.stop_via_shim(shim);
    // The trap ran: the stop signal reached the container's init.
    assert_eq!(status.exit_code, Some(0), "{status:#?}\n{}", fx.shim_log());
    assert!(status.stopped);
    Some((status, runtime_calls(&log)))
}

#[test]
fn a_detached_container_is_signalled_by_the_shim_without_a_runtime_kill() {
    let Some((_, calls)) = stop_with_logged_runtime("direct_kill", false) else {
        return;
    };
    assert_eq!(calls, ["run", "delete"]);
}

#[test]
fn an_attached_runtime_is_asked_to_signal_its_container() {
    let Some((_, calls)) = stop_with_logged_runtime("attached_kill", true) else {
        return;
    };
    // Its init is the runtime's child, not the shim's: the runtime signals it.
    assert_eq!(calls, ["run", "kill"]);
}

#[test]
fn a_container_ignoring_the_stop_signal_is_killed_after_the_grace_period() {
    // sleep as pid 1 has no SIGTERM handler: the kernel drops SIGTERM.
    let Some(fx) = Fixture::new("grace", &["sleep", "1000"]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::Always);
    config.stop_grace_ms = 700;
    let shim = fx.spawn(&config);
    fx.wait_status(Duration::from_secs(20), "running", |s| {
        s.phase == Phase::Running
    });
    let asked = Instant::now();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(shim.to_string())
        .status();
    let status = fx.wait_exited(Duration::from_secs(20));
    let took = asked.elapsed();
    println!("killed after {took:?}");
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(status.signal, Some(SIGKILL));
    assert!(wait_gone(shim, Duration::from_secs(10)));
}

#[test]
fn a_failing_health_check_with_restart_on_unhealthy_restarts_it() {
    let Some(fx) = Fixture::new("health", &["sleep", "1000"]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::Never);
    config.healthcheck = Some(HealthConfig {
        check: HealthProbe::Exec(vec!["sh".into(), "-c".into(), "echo sick; exit 2".into()]),
        interval_ms: 200,
        timeout_ms: 5_000,
        retries: 2,
        start_period_ms: 0,
        restart_on_unhealthy: true,
    });
    fx.spawn(&config);
    let failing = fx.wait_status(Duration::from_secs(20), "a failed check", |s| {
        s.health.as_ref().is_some_and(|h| h.failing_streak >= 1)
    });
    let health = failing.health.unwrap();
    assert_eq!(health.last_output.trim(), "sick");
    assert_eq!(health.last_exit_code, Some(2));
    let restarted = fx.wait_status(Duration::from_secs(30), "a restart", |s| {
        s.restarts >= 1 && s.phase == Phase::Running
    });
    assert!(
        fx.shim_log().contains("unhealthy after 2 failures"),
        "{}",
        fx.shim_log()
    );
    assert_eq!(
        restarted.health.map(|h| h.state),
        Some(HealthState::Starting),
        "a new run starts over"
    );
}

#[test]
fn a_health_check_that_overruns_its_timeout_fails() {
    let Some(fx) = Fixture::new("health_timeout", &["sleep", "1000"]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::Never);
    config.healthcheck = Some(HealthConfig {
        check: HealthProbe::Exec(vec!["sleep".into(), "30".into()]),
        interval_ms: 200,
        timeout_ms: 300,
        retries: 1,
        start_period_ms: 0,
        restart_on_unhealthy: false,
    });
    fx.spawn(&config);
    let status = fx.wait_status(Duration::from_secs(20), "unhealthy", |s| {
        s.health
            .as_ref()
            .is_some_and(|h| h.state == HealthState::Unhealthy)
    });
    let health = status.health.unwrap();
    assert_eq!(health.last_output, "health check timed out");
    assert_eq!(health.last_exit_code, None);
    assert_eq!(status.phase, Phase::Running, "no restart asked for");
}

#[test]
fn a_failed_create_is_recorded_and_backs_off() {
    let Some(fx) = Fixture::new("create_fails", &["/no/such/binary"]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::OnFailure);
    config.restart.max_retries = Some(1);
    config.restart.initial_ms = 300;
    let spawned = Instant::now();
    fx.spawn(&config);
    let status = fx.wait_exited(Duration::from_secs(30));
    assert!(
        spawned.elapsed() >= Duration::from_millis(300),
        "backed off"
    );
    assert_eq!(status.restarts, 1);
    assert_eq!(status.exit_code, Some(128));
    let error = status.error.expect("runc's error");
    assert!(error.contains("/no/such/binary"), "{error}");
}

#[test]
fn an_attached_runtime_removes_the_container_itself_and_the_exit_is_recorded() {
    let Some(fx) = Fixture::new("attached", &["sh", "-c", "echo bye; printf tail; exit 3"]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::Never);
    config.attached_runtime = true;
    fx.spawn(&config);
    let status = fx.wait_exited(Duration::from_secs(20));
    assert_eq!(status.exit_code, Some(3), "{status:#?}");
    assert_eq!(status.signal, None);
    assert!(status.started_unix_ms.is_some() && status.error.is_none());
    // The log is complete when the exit is recorded, the last line too.
    let texts: Vec<String> = fx
        .log_records(&fx.log_file())
        .into_iter()
        .map(|r| r.3)
        .collect();
    assert_eq!(texts, ["bye", "tail"]);
    assert!(wait_gone(status.shim_pid, Duration::from_secs(20)));
    let state = fx.runc(&["state", &fx.id]);
    assert!(!state.status.success(), "runc still knows {}", fx.id);
    // The runtime cleaned up after itself: the shim ran no delete.
    assert!(
        !fx.shim_log().contains("deleting the runtime's container"),
        "{}",
        fx.shim_log()
    );
}

#[test]
fn an_attached_runtime_that_cannot_start_the_container_is_a_failed_start() {
    let Some(fx) = Fixture::new("attached_fails", &["/no/such/binary"]) else {
        return;
    };
    let mut config = fx.config(RestartPolicy::OnFailure);
    config.attached_runtime = true;
    config.restart.max_retries = Some(1);
    fx.spawn(&config);
    let status = fx.wait_exited(Duration::from_secs(30));
    assert_eq!(status.restarts, 1);
    assert_eq!(status.exit_code, Some(128));
    assert_eq!(status.started_unix_ms, None);
    let error = status.error.expect("runc's error");
    assert!(error.contains("/no/such/binary"), "{error}");
    assert!(wait_gone(status.shim_pid, Duration::from_secs(20)));
    assert!(!fx.runc(&["state", &fx.id]).status.success());
}
