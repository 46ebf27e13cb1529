//! What is on the host right now, for leak checks: processes, mounts, runc
//! containers, links. Read from /proc and the real tools, never from berth's
//! own records, so a test sees what berth may have lost track of.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The state letter of a process (`R`, `S`, `Z`, ...), None when it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Whether the process exists and is not a zombie. (The sandbox's PID 1 may
/// not reap, so processes that exited can linger as zombies: they count as gone.)
pub fn alive(pid: u32) -> bool {
    process_state(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// Waits up to `timeout` for the process to be gone.
pub fn wait_gone(pid: u32, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while alive(pid) {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// SIGKILL by pid.
pub fn kill9(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Live (non-zombie) processes whose command line is `ARGS...` containing
/// `needle` (arguments joined by spaces), as (pid, command line).
pub fn processes_with(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        if line.contains(needle) && alive(pid) {
            found.push((pid, line));
        }
    }
    found.sort();
    found
}

/// The live shims of a berth state dir, as (pid, container id).
pub fn shims(state: &Path) -> Vec<(u32, String)> {
    let prefix = format!("shim --dir {}/", state.join("containers").display());
    processes_with(&prefix)
        .into_iter()
        .filter_map(|(pid, line)| {
            let id = line.split_once(&prefix)?.1.split(' ').next()?.to_string();
            Some((pid, id))
        })
        .collect()
}

/// Mount points at or below `dir` with their filesystem types, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = PathBuf::from(unescape(fields.get(4)?));
            let dash = fields.iter().position(|f| *f == "-")?;
            let fstype = fields.get(dash + 1)?.to_string();
            point.starts_with(dir).then_some((point, fstype))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            if let Ok(byte) = u8::from_str_radix(&code, 8) {
                out.push(byte as char);
                continue;
            }
            out.push(c);
            out.push_str(&code);
        } else {
            out.push(c);
        }
    }
    out
}

/// Lazily unmounts everything at or below `dir`, deepest first.
pub fn unmount_all_under(dir: &Path) {
    for (point, _) in mounts_under(dir).into_iter().rev() {
        let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The container ids `runc --root ROOT list` knows, sorted.
pub fn runc_list(runc_root: &Path) -> Vec<String> {
    let output = Command::new("runc")
        .arg("--root")
        .arg(runc_root)
        .args(["list", "-q"])
        .output()
        .expect("runc runs");
    let mut ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

/// `runc --root ROOT delete -f ID`, behind berth's back.
pub fn runc_delete_force(runc_root: &Path, id: &str) {
    let output = Command::new("runc")
        .arg("--root")
        .arg(runc_root)
        .args(["delete", "-f", id])
        .output()
        .expect("runc runs");
    assert!(
        output.status.success(),
        "runc delete -f {id}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Names of the links enslaved to `bridge` (veths), sorted.
pub fn links_on(bridge: &str) -> Vec<String> {
    let output = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .expect("ip runs");
    let mut links: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect();
    links.sort();
    links
}

/// Whether a network link of this name exists.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Deletes a link (a bridge a test made); fine when it is gone.
pub fn delete_link(name: &str) {
    let _ = Command::new("ip").args(["link", "del", name]).output();
}

/// The `-A` lines of berth's own network rules on `bridge` (see
/// `berth::network::rules`), from every table of both families.
pub fn network_rules_on(bridge: &str) -> Vec<String> {
    network_rule_lines(bridge)
        .into_iter()
        .map(|(_, _, line)| line)
        .collect()
}

/// Removes berth's own network rules on `bridge`: berth removes them with
/// the network, but a test that stops early does not get that far.
pub fn remove_network_rules(bridge: &str) {
    for (tool, table, line) in network_rule_lines(bridge) {
        let Some(rule) = line.strip_prefix("-A ") else {
            continue;
        };
        let _ = Command::new(tool)
            .args(["-w", "-t", &table, "-D"])
            .args(split_quoted(rule))
            .output();
    }
}

/// (tool, table, line) of each rule whose comment says `on BRIDGE`.
fn network_rule_lines(bridge: &str) -> Vec<(&'static str, String, String)> {
    let marker = format!(" on {bridge}\"");
    let mut found = Vec::new();
    for (save, tool) in [
        ("iptables-save", "iptables"),
        ("ip6tables-save", "ip6tables"),
    ] {
        let Ok(output) = Command::new(save).output() else {
            continue;
        };
        let mut table = String::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some(name) = line.strip_prefix('*') {
                table = name.to_string();
            } else if line.starts_with("-A ")
                && line.contains("\"berth network ")
                && line.contains(&marker)
            {
                found.push((tool, table.clone(), line.to_string()));
            }
        }
    }
    found
}

/// Words of an `iptables-save` rule, double-quoted ones whole.
fn split_quoted(rule: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in rule.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// iptables rules (all tables) that mention `needle`.
pub fn iptables_rules_with(needle: &str) -> Vec<String> {
    let output = Command::new("iptables-save")
        .output()
        .expect("iptables-save runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// `signal` (a libc signal number) to the process `pid`, which the test
/// started or read from berth.
pub fn signal(pid: u32, signal: i32) {
    if let Ok(signal) = nix::sys::signal::Signal::try_from(signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
    }
}
