//! Processes as `/proc` shows them: whether one lives, when it started, who
//! is in a group. [`ProcHost`] is the real [`Host`].

use std::fs;
use std::path::Path;

use nix::sys::signal::Signal;

use super::host::Host;

/// The host itself: `/proc`, `kill(2)` and the system clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcHost;

impl Host for ProcHost {
    fn pid_alive(&self, pid: u32) -> bool {
        pid_alive(pid)
    }

    fn start_time(&self, pid: u32) -> Option<u64> {
        start_time(pid)
    }

    fn group_members(&self, pgid: u32) -> Vec<u32> {
        group_members(pgid)
    }

    fn signal(&self, pid: u32, signal: Signal) {
        let Ok(pid) = i32::try_from(pid) else { return };
        // Never 0 or negative: those would signal a whole group.
        if pid > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }
}

/// The fields of a stat file after the parenthesised command name, from
/// the state on (field 3 of proc(5) is the first).
fn stat_fields(stat_path: &Path) -> Option<Vec<String>> {
    let stat = fs::read_to_string(stat_path).ok()?;
    let fields = stat.rsplit_once(')')?.1.split_whitespace();
    Some(fields.map(str::to_string).collect())
}

/// Whether a stat file's state is a live one (not zombie or dead).
fn live(fields: &[String]) -> bool {
    fields
        .first()
        .is_some_and(|state| state != "Z" && state != "X")
}

/// The process group of a live (not zombie) process, from its stat file.
fn live_process_group(stat_path: &Path) -> Option<u32> {
    let fields = stat_fields(stat_path)?;
    // state, ppid, pgrp.
    let group = fields.get(2)?.parse().ok()?;
    live(&fields).then_some(group)
}

/// Whether a process with this pid exists (and is not a zombie we could see).
pub fn pid_alive(pid: u32) -> bool {
    live_process_group(Path::new(&format!("/proc/{pid}/stat"))).is_some()
}

/// When a live process started, in clock ticks since boot (field 22 of
/// `/proc/PID/stat`).
pub fn start_time(pid: u32) -> Option<u64> {
    let fields = stat_fields(Path::new(&format!("/proc/{pid}/stat")))?;
    let ticks = fields.get(22 - 3)?.parse().ok()?;
    live(&fields).then_some(ticks)
}

/// The live processes in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            (live_process_group(&entry.path().join("stat"))? == pgid).then_some(pid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn group_members_are_the_live_processes_of_the_group() {
        let mut leader = Command::new("sleep")
            .arg("10")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = leader.id();
        assert!(pid_alive(pgid));
        assert_eq!(group_members(pgid), [pgid]);
        leader.kill().unwrap();
        // Not reaped yet: a zombie is not a member.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !group_members(pgid).is_empty() {
            assert!(Instant::now() < deadline, "killed leader still counted");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!pid_alive(pgid));
        leader.wait().unwrap();
    }

    #[test]
    fn start_time_is_stable_for_a_live_process_and_none_for_a_zombie() {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let pid = child.id();
        let started = start_time(pid).expect("a live child's start time");
        assert_eq!(start_time(pid), Some(started));
        // Our own process started no later than the child.
        assert!(start_time(std::process::id()).is_some_and(|mine| mine <= started));
        ProcHost.signal(pid, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while start_time(pid).is_some() {
            assert!(
                Instant::now() < deadline,
                "killed child still has a start time"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
    }

    #[test]
    fn the_real_host_sees_what_the_functions_see() {
        let host: &dyn Host = &ProcHost;
        let me = std::process::id();
        assert!(host.pid_alive(me));
        assert_eq!(host.start_time(me), start_time(me));
        assert!(!host.pid_alive(u32::MAX));
        // A pid beyond i32 is never signalled (it would be a group).
        host.signal(u32::MAX, Signal::SIGKILL);
    }
}
