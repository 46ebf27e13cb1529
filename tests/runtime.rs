//! The runtime end to end, as root with real runc, overlayfs and cgroups:
//! exit codes, shims that outlive berth, logs, exec, capabilities, read-only
//! filesystems, limits, users, restart policies and health checks.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::instance::Instance;
use common::prereq;

/// An [`Instance`] with a busybox layout, and the runtime's waits.
struct Berth {
    instance: Instance,
    image: String,
}

common::deref_to!(Berth, instance: Instance);

impl Berth {
    fn new() -> Self {
        let instance = Instance::with_busybox();
        Berth {
            image: instance.busybox(),
            instance,
        }
    }

    fn status(&self, name: &str) -> serde_json::Value {
        self.inspect(name)["status"].clone()
    }

    /// Waits until `check` holds for the container's status.
    fn wait_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status(name);
            if check(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: timed out waiting for {what}; last status: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_exited(&self, name: &str) -> serde_json::Value {
        self.wait_for(name, "exit", Duration::from_secs(20), |s| {
            s["phase"] == "exited"
        })
    }

    /// Waits for a container started in the foreground (its status file may
    /// not exist yet) to be running.
    fn wait_started(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.runtime_dir(name).join("status.json").exists()
            || self.status(name)["phase"] != "running"
        {
            assert!(Instant::now() < deadline, "{name} never started");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_running(&self, name: &str) -> serde_json::Value {
        self.wait_for(name, "running", Duration::from_secs(20), |s| {
            s["phase"] == "running"
        })
    }

    fn exec(&self, name: &str, command: &[&str]) -> Output {
        let mut args = vec!["exec", name, "--"];
        args.extend_from_slice(command);
        self.run(&args)
    }

    fn runtime_dir(&self, name: &str) -> PathBuf {
        self.state().join("containers").join(name)
    }
}

/// Whether a process exists and is not a zombie (this sandbox's init may
/// be slow to reap the shim's detached process).
fn alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn ready(test: &str) -> bool {
    prereq::require_root(test) && prereq::require_binary("runc", "runc").is_some()
}

#[test]
fn exit_codes_and_signals_are_recorded_and_returned() {
    if !ready("exit_codes_and_signals_are_recorded_and_returned") {
        return;
    }
    let berth = Berth::new();
    let zero = berth.unique_name("exit0");
    let output = berth.run(&[
        "run",
        "--name",
        &zero,
        &berth.image,
        "sh",
        "-c",
        "echo hello; exit 0",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), "hello\n");
    let three = berth.unique_name("exit3");
    let output = berth.run(&[
        "run",
        "--name",
        &three,
        &berth.image,
        "sh",
        "-c",
        "echo oops >&2; exit 3",
    ]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&output.stderr).trim_end(), "oops");
    assert_eq!(berth.status(&three)["exitCode"], 3);

    let killed = berth.unique_name("killed");
    berth.start(&killed, &[], &["sleep", "1000"]);
    berth.wait_running(&killed);
    let pid = berth.status(&killed)["pid"].as_i64().unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let status = berth.wait_exited(&killed);
    assert_eq!(status["signal"], 9);

    let ps: serde_json::Value =
        serde_json::from_str(&berth.ok(&["ps", "-a", "-o", "json"])).unwrap();
    let states: Vec<(&str, &str)> = ps
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&(three.as_str(), "exited")), "{states:?}");
    let table = berth.ok(&["ps", "-a"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("container") && l.contains(&killed) && l.contains("signal 9")),
        "{table}"
    );
}

#[test]
fn the_container_outlives_a_sigkilled_berth() {
    if !ready("the_container_outlives_a_sigkilled_berth") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("survivor");
    let mut foreground = berth
        .command(&[
            "run",
            "--name",
            &name,
            &berth.image,
            "sh",
            "-c",
            "echo started; sleep 1000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    berth.wait_started(&name);
    foreground.kill().unwrap();
    foreground.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = berth.status(&name);
    assert_eq!(status["phase"], "running", "{status}");
    assert_eq!(berth.inspect(&name)["shimAlive"], true);
    // And its exit is still recorded when it finally ends.
    let pid = status["pid"].as_i64().unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert_eq!(berth.wait_exited(&name)["signal"], 9);
}

#[test]
fn logs_are_captured_with_timestamps_and_rotated() {
    if !ready("logs_are_captured_with_timestamps_and_rotated") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("logs");
    let run = berth.run(&[
        "run",
        "--name",
        &name,
        "--log-max-size",
        "4Ki",
        "--log-max-files",
        "3",
        &berth.image,
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done; echo done >&2",
    ]);
    // The foreground run follows the log across rotations. (With files this
    // small, rotations can outpace the follower; the defaults are 10 MiB.)
    let streamed = stdout(&run);
    assert!(streamed.ends_with("line-1999\n"), "{streamed}");
    let logs = berth.root().join("logs").join(&name);
    let files = fs::read_dir(&logs).unwrap().count();
    assert_eq!(files, 3, "rotated down to the 3 files kept");
    let total: u64 = fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        total <= 3 * 4096 + 200,
        "rotation bounds the disk use: {total} bytes"
    );
    let all = berth.run(&["logs", "--timestamps", &name]);
    let out = String::from_utf8_lossy(&all.stdout);
    assert!(out.trim_end().ends_with("Z line-1999"), "{out}");
    let tail = berth.run(&["logs", "--tail", "5", &name]);
    assert_eq!(
        tail.stdout
            .iter()
            .chain(&tail.stderr)
            .filter(|b| **b == b'\n')
            .count(),
        5
    );
    let current = fs::read_to_string(logs.join("container.log")).unwrap();
    let record = current.lines().next().unwrap();
    let fields: Vec<&str> = record.splitn(4, ' ').collect();
    assert!(
        fields[0].ends_with('Z') && fields[0].contains('T'),
        "CRI timestamp: {record}"
    );
    assert!(fields[1] == "stdout" || fields[1] == "stderr");
    assert_eq!(fields[2], "F");
}

#[test]
fn exec_runs_in_the_container() {
    if !ready("exec_runs_in_the_container") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("exec");
    berth.start(&name, &["--hostname", "inside"], &["sleep", "1000"]);
    berth.wait_running(&name);
    let output = berth.exec(&name, &["sh", "-c", "hostname; exit 7"]);
    assert_eq!(stdout(&output), "inside\n");
    assert_eq!(output.status.code(), Some(7));
}

fn cap_eff(berth: &Berth, flags: &[&str]) -> String {
    let name = berth.unique_name("caps");
    let mut args = vec!["run", "--name", &name];
    args.extend_from_slice(flags);
    args.push(&berth.image);
    args.extend_from_slice(&["sh", "-c", "grep CapEff /proc/self/status"]);
    let out = berth.ok(&args);
    out.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn default_capabilities_are_the_documented_set_and_privileged_has_all() {
    if !ready("default_capabilities_are_the_documented_set_and_privileged_has_all") {
        return;
    }
    let berth = Berth::new();
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    assert_eq!(cap_eff(&berth, &[]), "00000000a80425fb");
    let all = u64::from_str_radix(&cap_eff(&berth, &["--privileged"]), 16).unwrap();
    let bounding = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("CapBnd:")
                .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        })
        .unwrap();
    let known = (1u64 << 41) - 1; // the 41 capabilities berth knows, CHOWN..CHECKPOINT_RESTORE
    assert_eq!(
        all,
        known & bounding,
        "privileged gets every capability the host lets berth give"
    );
    assert_eq!(
        cap_eff(&berth, &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]),
        "0000000000001000"
    );
}

#[test]
fn read_only_rootfs_and_read_only_mounts_refuse_writes() {
    if !ready("read_only_rootfs_and_read_only_mounts_refuse_writes") {
        return;
    }
    let berth = Berth::new();
    let host = berth.path().join("host-data");
    fs::create_dir_all(&host).unwrap();
    let name = berth.unique_name("ro");
    let volume = format!("{}:/data:ro", host.display());
    let output = berth.run(&[
        "run", "--name", &name, "--read-only", "-v", &volume, &berth.image, "sh", "-c",
        "touch /rootfile 2>/dev/null && echo rootfs-writable; touch /data/f 2>/dev/null && echo mount-writable; echo checked",
    ]);
    assert_eq!(stdout(&output), "checked\n");
    assert!(!host.join("f").exists());
}

#[test]
fn memory_and_pids_limits_are_in_the_cgroup() {
    if !ready("memory_and_pids_limits_are_in_the_cgroup") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("limits");
    berth.start(
        &name,
        &["--memory", "32Mi", "--pids-limit", "42", "--cpus", "0.5"],
        &["sleep", "1000"],
    );
    berth.wait_running(&name);
    let read = |path: &str| berth.exec(&name, &["cat", path]);
    let v1_memory = read("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    if v1_memory.status.success() {
        assert_eq!(stdout(&v1_memory).trim(), (32u64 << 20).to_string());
        assert_eq!(stdout(&read("/sys/fs/cgroup/pids/pids.max")).trim(), "42");
        assert_eq!(
            stdout(&read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")).trim(),
            "50000"
        );
    } else {
        assert_eq!(
            stdout(&read("/sys/fs/cgroup/memory.max")).trim(),
            (32u64 << 20).to_string()
        );
        assert_eq!(stdout(&read("/sys/fs/cgroup/pids.max")).trim(), "42");
        assert!(stdout(&read("/sys/fs/cgroup/cpu.max")).starts_with("50000 "));
    }
}

#[test]
fn users_resolve_by_name_from_the_image() {
    if !ready("users_resolve_by_name_from_the_image") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("user");
    let out = berth.ok(&[
        "run",
        "--name",
        &name,
        "--user",
        "app",
        &berth.image,
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(out, "1000\n1000\n");
}

/// Start times of each run of a restarting container, from its log.
fn start_times(berth: &Berth, name: &str) -> Vec<f64> {
    berth
        .ok(&["logs", name])
        .lines()
        .filter_map(|l| l.strip_prefix("start "))
        .filter_map(|t| t.trim().parse::<f64>().ok())
        .collect()
}

#[test]
fn on_failure_with_max_retries_2_runs_exactly_3_times_with_growing_gaps() {
    if !ready("on_failure_with_max_retries_2_runs_exactly_3_times_with_growing_gaps") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("onfail");
    berth.start(
        &name,
        &["--restart", "on-failure:2", "--restart-delay", "300ms"],
        &[
            "sh",
            "-c",
            "echo start $(cat /proc/uptime | cut -d' ' -f1); exit 1",
        ],
    );
    let status = berth.wait_exited(&name);
    assert_eq!(status["restarts"], 2);
    assert_eq!(status["exitCode"], 1);
    std::thread::sleep(Duration::from_millis(300));
    let starts = start_times(&berth, &name);
    assert_eq!(starts.len(), 3, "{starts:?}");
    // Bounds from below only: load can stretch a gap, never shrink it. The
    // doubling itself is pinned with injected time by the shim lifecycle's
    // unit tests (a ratio of two wall-clock gaps failed under load).
    let (first_gap, second_gap) = (starts[1] - starts[0], starts[2] - starts[1]);
    assert!(
        first_gap >= 0.25,
        "the first restart waits the initial delay: {starts:?}"
    );
    assert!(
        second_gap >= 0.55,
        "the second waits twice the initial delay: {starts:?}"
    );
}

#[test]
fn always_restarts_after_a_kill_and_never_does_not() {
    if !ready("always_restarts_after_a_kill_and_never_does_not") {
        return;
    }
    let berth = Berth::new();
    let always = berth.unique_name("always");
    berth.start(&always, &["--restart", "always"], &["sleep", "1000"]);
    let first = berth.wait_running(&always)["pid"].as_i64().unwrap();
    Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    let restarted = berth.wait_for(&always, "a restart", Duration::from_secs(20), |s| {
        s["phase"] == "running" && s["restarts"] == 1 && s["pid"].as_i64() != Some(first)
    });
    assert_eq!(restarted["restarts"], 1);

    let never = berth.unique_name("never");
    berth.start(&never, &["--restart", "never"], &["sleep", "1000"]);
    let pid = berth.wait_running(&never)["pid"].as_i64().unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let status = berth.wait_exited(&never);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(berth.status(&never)["restarts"], 0);
    assert_eq!(status["signal"], 9);
}

#[test]
fn a_failing_health_check_with_restart_restarts_the_container() {
    if !ready("a_failing_health_check_with_restart_restarts_the_container") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("health");
    berth.start(
        &name,
        &[
            "--restart",
            "always",
            "--health-cmd",
            "test -f /tmp/healthy",
            "--health-interval",
            "200ms",
            "--health-timeout",
            "1s",
            "--health-retries",
            "2",
            "--health-restart",
        ],
        &["sleep", "1000"],
    );
    let status = berth.wait_for(
        &name,
        "an unhealthy restart",
        Duration::from_secs(30),
        |s| s["restarts"].as_u64().unwrap_or(0) >= 1,
    );
    assert!(status["restarts"].as_u64().unwrap() >= 1);
    // A healthy container stays up and says so.
    let healthy = berth.unique_name("healthy");
    berth.start(
        &healthy,
        &["--health-cmd", "true", "--health-interval", "200ms"],
        &["sleep", "1000"],
    );
    let status = berth.wait_for(&healthy, "healthy", Duration::from_secs(20), |s| {
        s["health"]["state"] == "healthy"
    });
    assert_eq!(status["restarts"], 0);
}

#[test]
fn stop_and_rm_leave_nothing_running_or_mounted() {
    if !ready("stop_and_rm_leave_nothing_running_or_mounted") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("stop");
    berth.start(&name, &[], &["sleep", "1000"]);
    let pid = berth.wait_running(&name)["pid"].as_i64().unwrap();
    let shim_pid = berth.inspect(&name)["shimPid"].as_i64().unwrap();
    berth.ok(&["stop", &name]);
    assert_eq!(berth.status(&name)["phase"], "exited");
    assert!(!alive(pid), "the container is gone");
    assert!(!alive(shim_pid), "the shim is gone");
    let rootfs = berth.runtime_dir(&name).join("bundle/rootfs");
    berth.ok(&["rm", &name]);
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&rootfs.display().to_string()),
        "the rootfs is unmounted"
    );
    assert!(!berth.runtime_dir(&name).exists());
    let ps: serde_json::Value =
        serde_json::from_str(&berth.ok(&["ps", "-a", "-o", "json"])).unwrap();
    assert!(ps.as_array().unwrap().is_empty());
}

/// Regression: a shim whose spawner (an apply) was killed before the shim
/// wrote its pid was unknown to `rm`, and went on to run a second
/// container under the same id beside the next one. Every shim holds the
/// container's shim lock from its spawn on: rm waits for the lock and kills
/// the shim once its pid shows up. A stand-in plays the late shim here.
#[test]
fn rm_kills_a_shim_that_writes_its_pid_late() {
    use std::os::fd::AsRawFd;

    use berth::state::lock;

    if !ready("rm_kills_a_shim_that_writes_its_pid_late") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("late");
    berth.start(&name, &["--net", "none"], &["true"]);
    berth.wait_exited(&name);
    let dir = berth.runtime_dir(&name);
    // The real shim records the exit before its last act (the runtime's
    // delete), which holds the lock until it ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = loop {
        match lock::acquire_for_child(&dir.join("shim.lock")) {
            Ok(held) => break held,
            Err(lock::LockError::Busy { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    };
    let mut command = Command::new("sh");
    command.arg("-c").arg(format!(
        "sleep 0.5; echo \"$$ $(cut -d' ' -f22 /proc/$$/stat)\" > {}; exec sleep 1000",
        dir.join("shim.pid").display()
    ));
    lock::share_with_child(&mut command, held.as_raw_fd());
    let mut late = command.spawn().unwrap();
    drop(held);

    let started = Instant::now();
    berth.ok(&["rm", "-f", &name]);
    let killed = late.try_wait().unwrap().is_some();
    if !killed {
        late.kill().unwrap();
    }
    late.wait().unwrap();
    assert!(killed, "rm -f left the late shim running");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!dir.exists());
}

#[test]
fn run_rm_removes_the_container_after_it_exits() {
    if !ready("run_rm_removes_the_container_after_it_exits") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("rm");
    let output = berth.run(&["run", "--rm", "--name", &name, &berth.image, "true"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!berth.runtime_dir(&name).exists());
    let ps: serde_json::Value =
        serde_json::from_str(&berth.ok(&["ps", "-a", "-o", "json"])).unwrap();
    assert!(ps.as_array().unwrap().is_empty());
}

#[test]
fn signals_to_a_foreground_run_reach_the_container() {
    if !ready("signals_to_a_foreground_run_reach_the_container") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("signal");
    // PID 1 ignores signals it has no handler for, so the container traps it.
    let output = sigterm_to_a_foreground_run(&berth, &name, &[]);
    assert_eq!(stdout(&output), "got TERM\n");
    assert_eq!(
        output.status.code(),
        Some(3),
        "berth exits as the container did"
    );
}

/// Runs a container in the foreground that traps SIGTERM, sends SIGTERM to
/// `berth run` once it runs, and returns berth's output.
fn sigterm_to_a_foreground_run(berth: &Berth, name: &str, flags: &[&str]) -> Output {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[
        "--name",
        name,
        &berth.image,
        "sh",
        "-c",
        "trap 'echo got TERM; exit 3' TERM; sleep 1000 & wait",
    ]);
    let child = berth
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    berth.wait_started(name);
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `run --rm` keeps the runtime attached (no `runc delete` afterwards): the
/// output, the exit code and forwarded signals behave as without it.
#[test]
fn run_rm_streams_output_forwards_signals_and_exits_as_the_container() {
    if !ready("run_rm_streams_output_forwards_signals_and_exits_as_the_container") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("rmcode");
    let script = "echo out; echo err >&2; printf last; exit 5";
    let output = berth.run(&[
        "run",
        "--rm",
        "--name",
        &name,
        &berth.image,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(output.status.code(), Some(5));
    assert_eq!(stdout(&output), "out\nlast\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("err"));
    assert!(!berth.runtime_dir(&name).exists());

    let name = berth.unique_name("rmsignal");
    let output = sigterm_to_a_foreground_run(&berth, &name, &["--rm"]);
    assert_eq!(stdout(&output), "got TERM\n");
    assert_eq!(output.status.code(), Some(3));
    assert!(!berth.runtime_dir(&name).exists());
    let ps: serde_json::Value =
        serde_json::from_str(&berth.ok(&["ps", "-a", "-o", "json"])).unwrap();
    assert!(ps.as_array().unwrap().is_empty());
}

#[test]
fn end_of_input_ends_an_interactive_container() {
    if !ready("end_of_input_ends_an_interactive_container") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("eof");
    let mut child = berth
        .command(&["run", "-i", "--rm", "--name", &name, &berth.image, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"one\ntwo\n").unwrap();
    drop(input);
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cat never saw end-of-file");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(stdout(&output), "one\ntwo\n");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn interactive_stdin_reaches_the_container() {
    if !ready("interactive_stdin_reaches_the_container") {
        return;
    }
    let berth = Berth::new();
    let name = berth.unique_name("stdin");
    let mut child = berth
        .command(&[
            "run",
            "-i",
            "--name",
            &name,
            &berth.image,
            "sh",
            "-c",
            "read line; echo got:$line",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        stdout(&output),
        "got:hello\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_terminal_is_allocated_with_the_callers_window_size() {
    if !ready("a_terminal_is_allocated_with_the_callers_window_size") {
        return;
    }
    let Some(script) = prereq::require_binary("script", "bsdutils") else {
        return;
    };
    let berth = Berth::new();
    let name = berth.unique_name("tty");
    let berth_command = format!(
        "stty rows 33 cols 77; {} --root {} --state {} run -t --rm --name {name} {} sh -c 'tty; stty size; exit 4'",
        env!("CARGO_BIN_EXE_berth"),
        berth.root().display(),
        berth.state().display(),
        berth.image
    );
    // `script` gives berth a terminal of its own, as a user's shell would.
    let output = Command::new(script)
        .args(["-qec", &berth_command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("/dev/pts/0"),
        "the container's stdout is a terminal: {text}"
    );
    assert!(
        text.contains("33 77"),
        "with the caller's window size: {text}"
    );
    assert_eq!(output.status.code(), Some(4), "{text}");
}
