//! An operator's bad day, end to end as root: shims killed, their pid
//! files recycled or garbage, a reboot, a reader that hangs up. Each test
//! failed on the main before shim identity, settled lost shims and intent
//! under `--root`:
//! - a recycled pid in `shim.pid` was believed (ps said running) and
//!   `berth stop` signalled the process that had the pid;
//! - a garbage pid made apply start a second shim;
//! - a `never` container whose shim was killed ran again at the next apply;
//! - an `unless-stopped` container stopped by the user started again after
//!   a reboot;
//! - `berth inspect X | head` panicked on the closed pipe.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::site::{container_yaml, Site};
use common::{host, prereq};

fn wait_gone(pid: u32) {
    assert!(
        host::wait_gone(pid, Duration::from_secs(20)),
        "pid {pid} never went away"
    );
}

/// SIGKILL to a shim berth started (the test read its pid from berth).
fn kill_shim(pid: u32) {
    host::kill9(pid);
    wait_gone(pid);
}

fn container_dir(site: &Site, name: &str) -> PathBuf {
    site.state().join("containers").join(name)
}

/// The live shims of container `name`.
fn shims_of(site: &Site, name: &str) -> Vec<u32> {
    host::shims(&site.state())
        .into_iter()
        .filter(|(_, id)| id == name)
        .map(|(pid, _)| pid)
        .collect()
}

fn state_of(site: &Site, name: &str) -> String {
    site.inspect(name)["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn sleeper(name: &str, restart: &str) -> String {
    container_yaml(
        name,
        &format!(
            "  networkMode: none\n  command: [sleep, '3600']\n  restart:\n    policy: {restart}\n"
        ),
    )
}

/// The shim died and its pid now belongs to an unrelated process, started
/// after it: that process is never signalled, and apply repairs the
/// container.
#[test]
fn a_recycled_shim_pid_is_never_signalled_and_the_container_is_repaired() {
    let test = "a_recycled_shim_pid_is_never_signalled_and_the_container_is_repaired";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("rp");
    let name = format!("rp-{}", site.tag);
    site.write("c.yaml", &sleeper(&name, "always"));
    site.apply(&[]);
    let dir = container_dir(&site, &name);
    let shim = site.shim_pid(&name);
    let recorded = fs::read_to_string(dir.join("shim.pid")).unwrap();
    let start_time = recorded.split_whitespace().nth(1).expect("a start time");
    kill_shim(shim);

    let mut unrelated = Command::new("sleep").arg("3600").spawn().unwrap();
    let pid = unrelated.id();
    // As an older berth wrote it (a bare pid), then as berth writes it now
    // (the pid with the dead shim's start time): neither names `unrelated`.
    for text in [format!("{pid}\n"), format!("{pid} {start_time}\n")] {
        fs::write(dir.join("shim.pid"), text).unwrap();
        assert_ne!(
            state_of(&site, &name),
            "running",
            "a recycled pid was believed"
        );
        let _ = site.run(&["stop", &name]);
        assert!(
            unrelated.try_wait().unwrap().is_none(),
            "berth signalled the process that took the shim's pid"
        );
    }
    site.apply(&[]);
    assert!(
        unrelated.try_wait().unwrap().is_none(),
        "berth signalled the process that took the shim's pid"
    );
    assert_eq!(state_of(&site, &name), "running");
    let shims = shims_of(&site, &name);
    assert_eq!(shims.len(), 1, "{shims:?}");
    assert_ne!(shims[0], pid);
    unrelated.kill().unwrap();
    unrelated.wait().unwrap();
}

/// A garbage `shim.pid` while the shim lives: berth finds the shim by the
/// lock it holds, plans nothing, starts no second shim, and `rm -f` ends it.
#[test]
fn a_garbage_shim_pid_leaves_one_shim() {
    if !prereq::require_apply("a_garbage_shim_pid_leaves_one_shim") {
        return;
    }
    let site = Site::new("gp");
    let name = format!("gp-{}", site.tag);
    site.write("c.yaml", &sleeper(&name, "always"));
    site.apply(&[]);
    let dir = container_dir(&site, &name);
    let shim = site.shim_pid(&name);
    fs::write(dir.join("shim.pid"), "garbage\n").unwrap();

    assert_eq!(state_of(&site, &name), "running");
    assert_eq!(site.inspect(&name)["shimPid"], shim);
    let (code, text) = site.plan(&[]);
    assert_eq!(code, 0, "plan wants changes:\n{text}");
    site.apply(&[]);
    assert_eq!(shims_of(&site, &name), [shim]);
    site.ok(&["rm", "-f", &name]);
    wait_gone(shim);
    assert_eq!(shims_of(&site, &name), [0u32; 0]);
}

/// A `never` container whose shim was killed: the next apply settles it
/// (the orphaned container is stopped, the exit recorded as unknown) and
/// never runs it again.
#[test]
fn a_never_container_whose_shim_was_killed_is_not_run_again() {
    if !prereq::require_apply("a_never_container_whose_shim_was_killed_is_not_run_again") {
        return;
    }
    let site = Site::new("nv");
    let name = format!("nv-{}", site.tag);
    site.write("c.yaml", &sleeper(&name, "never"));
    site.apply(&[]);
    let init = site.pid_of(&name);
    let shim = site.shim_pid(&name);
    kill_shim(shim);

    site.apply(&[]);
    wait_gone(init);
    let inspect = site.inspect(&name);
    assert_eq!(inspect["state"], "exited", "{inspect}");
    assert_eq!(inspect["status"]["shimLost"], true, "{inspect}");
    assert_eq!(inspect["status"]["exitCode"], serde_json::Value::Null);
    let ps = site.ok(&["ps", "-a"]);
    assert!(ps.contains("exit unknown (shim lost)"), "{ps}");
    // Applied again: still exited, never started again.
    site.apply(&[]);
    assert_eq!(state_of(&site, &name), "exited");
    assert_eq!(shims_of(&site, &name), [0u32; 0]);
    let (code, text) = site.plan(&[]);
    assert_eq!(code, 0, "plan wants changes:\n{text}");
}

/// What a reboot does to berth: every process gone, every mount gone,
/// `--state` (a tmpfs) empty; `--root` stays.
fn simulate_reboot(site: &Site) {
    for (shim, _) in host::shims(&site.state()) {
        kill_shim(shim);
    }
    for id in host::runc_list(&site.runc_root()) {
        host::runc_delete_force(&site.runc_root(), &id);
    }
    host::unmount_all_under(&site.state());
    fs::remove_dir_all(site.state()).unwrap();
}

/// Across a reboot: a container the user stopped stays stopped
/// (`unless-stopped`), a `never` container that ran is not run again, and
/// an `always` container comes back.
#[test]
fn intent_survives_a_reboot() {
    if !prereq::require_apply("intent_survives_a_reboot") {
        return;
    }
    let site = Site::new("rb");
    let stopped = format!("rbs-{}", site.tag);
    let once = format!("rbo-{}", site.tag);
    let always = format!("rba-{}", site.tag);
    site.write("stopped.yaml", &sleeper(&stopped, "unless-stopped"));
    site.write(
        "once.yaml",
        &container_yaml(
            &once,
            "  networkMode: none\n  command: ['true']\n  restart:\n    policy: never\n",
        ),
    );
    site.write("always.yaml", &sleeper(&always, "always"));
    site.apply(&[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while state_of(&site, &once) != "exited" {
        assert!(Instant::now() < deadline, "{once} never exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    site.ok(&["stop", &stopped]);
    let started_once = site.inspect(&once)["record"]["startedUnixMs"].clone();
    assert!(started_once.is_u64(), "{}", site.inspect(&once));

    simulate_reboot(&site);
    site.apply(&[]);

    assert_eq!(state_of(&site, &always), "running");
    let inspect = site.inspect(&stopped);
    assert_eq!(inspect["status"], serde_json::Value::Null, "{inspect}");
    assert_eq!(
        inspect["record"]["stopped"]["by"], "berth stop",
        "{inspect}"
    );
    let inspect = site.inspect(&once);
    assert_eq!(
        inspect["status"],
        serde_json::Value::Null,
        "ran again: {inspect}"
    );
    assert_eq!(inspect["record"]["startedUnixMs"], started_once);
    let (code, text) = site.plan(&[]);
    assert_eq!(code, 0, "plan wants changes after the reboot:\n{text}");
}

/// `berth inspect X | head`: the reader goes away; berth ends as `cat`
/// would (SIGPIPE), without a panic.
#[test]
fn a_closed_pipe_ends_a_read_verb_quietly() {
    if !prereq::require_apply("a_closed_pipe_ends_a_read_verb_quietly") {
        return;
    }
    let site = Site::new("cp");
    let name = format!("cp-{}", site.tag);
    site.write("c.yaml", &sleeper(&name, "always"));
    site.apply(&[]);
    for args in [
        vec!["inspect", name.as_str()],
        vec!["ps", "-a", "-o", "json"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = site
            .command(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        use std::os::unix::process::ExitStatusExt;
        assert!(
            output.status.success() || output.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            output.status
        );
    }
}

/// `--state` made read-only under a running container (`mount --rbind`
/// onto itself, remounted read-only; undone when dropped).
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn over(path: &Path) -> ReadOnly {
        use nix::mount::{mount, MsFlags};
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .unwrap();
        let guard = ReadOnly(path.to_path_buf());
        mount(
            None::<&str>,
            path,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .unwrap();
        guard
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        // The read-only bind on top, with the copies of the mounts below it
        // that --rbind made (a plain unmount fails on those: busy); the
        // original mounts beneath stay. Left in place, the site could not
        // remove its container and would leak its network rules.
        nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
}

/// On a read-only `--state`, plan cannot take the locks a CNI CHECK needs:
/// that is no reason to call a healthy container broken (it said "repair"
/// for every networked container).
#[test]
fn a_read_only_state_is_no_reason_to_repair() {
    if !prereq::require_networking("a_read_only_state_is_no_reason_to_repair") {
        return;
    }
    let site = Site::new("ro");
    let name = format!("ro-{}", site.tag);
    let network = format!("n{}", site.tag);
    let bridge = format!("b{}", site.tag);
    site.own_bridge(&bridge);
    let third = 100 + std::process::id() % 100;
    site.write(
        "net.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata: {{name: {network}}}\n\
             spec: {{bridge: {bridge}, subnet: 10.242.{third}.0/24}}\n"
        ),
    );
    site.write(
        "c.yaml",
        &container_yaml(
            &name,
            &format!("  networks: [{network}]\n  command: [sleep, '3600']\n"),
        ),
    );
    site.apply(&[]);
    let read_only = ReadOnly::over(&site.state());
    assert!(fs::write(site.state().join("probe"), b"x").is_err());
    let (code, text) = site.plan(&[]);
    drop(read_only);
    assert_eq!(
        code, 0,
        "plan wants changes on a read-only --state:\n{text}"
    );
    // Writable again: the container goes with its network rules.
    site.ok(&["rm", "-f", &name]);
    assert_eq!(host::iptables_rules_with(&name), Vec::<String>::new());
}

/// Diagnostics on a pipe are plain text: no colour escape codes unless
/// stderr is a terminal (regression: tracing's colour codes went into
/// piped output and log files).
#[test]
fn piped_diagnostics_carry_no_escape_codes() {
    if !prereq::require_apply("piped_diagnostics_carry_no_escape_codes") {
        return;
    }
    let site = Site::new("pe");
    let image = site.busybox();
    let output = site.run(&[
        "--log-level",
        "debug",
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "true",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("DEBUG"),
        "no diagnostics to look at: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in piped stderr: {stderr:?}"
    );
}
