//! Processes as `/proc` shows them: whether one lives, who is in a group.

use std::fs;
use std::path::Path;

/// The process group of a live (not zombie) process, from its stat file.
fn live_process_group(stat_path: &Path) -> Option<u32> {
    let stat = fs::read_to_string(stat_path).ok()?;
    // The fields after the parenthesised command name: state, ppid, pgrp.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?;
    let group = fields.nth(1)?.parse().ok()?;
    (state != "Z" && state != "X").then_some(group)
}

/// Whether a process with this pid exists (and is not a zombie we could see).
pub fn pid_alive(pid: u32) -> bool {
    live_process_group(Path::new(&format!("/proc/{pid}/stat"))).is_some()
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
}
