//! Processes as `/proc` shows them: whether one lives, when it started, who
//! is in a group. [`ProcHost`] is the real [`Host`].

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use serde::Serialize;

use super::host::Host;

/// A process as berth knows it: its pid and when it started (clock ticks
/// since boot, `/proc/PID/stat` field 22). A pid alone names whatever
/// process has it now, and pids are reused (pid_max is 32768 on many
/// hosts); with the start time it names one process for as long as the
/// machine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessId {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcessId {
    /// The live process `pid`, as it is now.
    pub fn of(pid: u32) -> Option<ProcessId> {
        Some(ProcessId {
            pid,
            start_time: start_time(pid)?,
        })
    }

    /// This process.
    pub fn current() -> Option<ProcessId> {
        ProcessId::of(std::process::id())
    }

    /// Whether this process still lives on this host (not a process that
    /// took its pid over).
    pub fn lives(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }

    /// `PID START_TIME`, as a pid file holds it.
    pub fn render(&self) -> String {
        format!("{} {}\n", self.pid, self.start_time)
    }

    /// A pid file's `PID START_TIME`; None for anything else (a bare pid,
    /// as older berth wrote, identifies nothing).
    pub fn parse(text: &str) -> Option<ProcessId> {
        let mut fields = text.split_whitespace();
        let pid = fields.next()?.parse().ok().filter(|pid| *pid > 0)?;
        let start_time = fields.next()?.parse().ok()?;
        fields
            .next()
            .is_none()
            .then_some(ProcessId { pid, start_time })
    }
}

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

    fn signal(&self, process: ProcessId, signal: Signal) {
        signal_process(process, signal);
    }

    fn shim_holding(&self, lock: &Path, dir: &Path) -> Option<ProcessId> {
        shim_holding(lock, dir)
    }
}

/// Sends `signal` to `process` if it is still that process. With a pidfd
/// (Linux 5.3+) the check and the signal name the same process, so a pid
/// reused between them is never hit; without one the window is the few
/// microseconds between the check and `kill(2)`.
pub fn signal_process(process: ProcessId, signal: Signal) {
    let Ok(pid) = i32::try_from(process.pid) else {
        return;
    };
    // Never 0 or negative: those would signal a whole group.
    if pid <= 0 {
        return;
    }
    let is_it = || start_time(process.pid) == Some(process.start_time);
    match pidfd_open(pid) {
        Ok(pidfd) => {
            if is_it() {
                let _ = pidfd_send_signal(&pidfd, signal);
            }
        }
        Err(Errno::ENOSYS) => {
            if is_it() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
        }
        // Gone (ESRCH), or not ours to signal.
        Err(_) => {}
    }
}

#[allow(unsafe_code)] // reason: nix 0.30 has no pidfd_open; one syscall, an fd we own
fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; nothing is borrowed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the descriptor was just returned to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[allow(unsafe_code)] // reason: nix 0.30 has no pidfd_send_signal; one syscall on a borrowed fd
fn pidfd_send_signal(pidfd: &OwnedFd, signal: Signal) -> Result<(), Errno> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as i32,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if result < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// How `/proc/locks` and fdinfo name a file: `MAJOR:MINOR:INODE` of its
/// filesystem's device (two hex digits at least) and inode.
fn lock_key(path: &Path) -> Option<String> {
    let metadata = fs::symlink_metadata(path).ok()?;
    let dev = metadata.dev();
    Some(format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        metadata.ino()
    ))
}

/// Whether a `lock:` line (fdinfo) or a `/proc/locks` line is a flock on
/// the file `key` names.
fn is_flock_on(line: &str, key: &str) -> bool {
    let mut fields = line.split_whitespace();
    fields.any(|f| f == "FLOCK") && fields.any(|f| f == key)
}

/// Whether process `pid` holds a flock on the file `key` through one of
/// its descriptors.
fn holds_flock(pid: u32, key: &str) -> bool {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return false;
    };
    entries.flatten().any(|entry| {
        fs::read_to_string(entry.path()).is_ok_and(|info| {
            info.lines()
                .filter_map(|line| line.strip_prefix("lock:"))
                .any(|line| is_flock_on(line, key))
        })
    })
}

/// Whether process `pid` was started as `... shim --dir DIR`.
fn is_shim_of(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    matches!(
        args.as_slice(),
        [_, b"shim", b"--dir", shown, b""] if *shown == dir.as_os_str().as_bytes()
    )
}

/// The shim of container directory `dir`, found by the shim lock `lock`
/// it holds: only when `/proc/locks` says the lock is held is `/proc`
/// searched for a process started as that directory's shim that holds it
/// itself (its runtime calls inherit the lock, but not the command line).
pub fn shim_holding(lock: &Path, dir: &Path) -> Option<ProcessId> {
    let key = lock_key(lock)?;
    let locks = fs::read_to_string("/proc/locks").ok()?;
    if !locks.lines().any(|line| is_flock_on(line, &key)) {
        return None;
    }
    fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_shim_of(*pid, dir) && holds_flock(*pid, &key))
        .find_map(ProcessId::of)
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
        ProcHost.signal(ProcessId::of(pid).unwrap(), Signal::SIGKILL);
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
    fn a_process_is_signalled_only_while_its_start_time_matches() {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let real = ProcessId::of(child.id()).unwrap();
        // As a pid file names a process that has since given its pid up.
        let recycled = ProcessId {
            start_time: real.start_time + 1,
            ..real
        };
        assert!(real.lives() && !recycled.lives());
        signal_process(recycled, Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(50));
        assert!(real.lives(), "a process with another start time was killed");
        signal_process(real, Signal::SIGKILL);
        child.wait().unwrap();
        assert!(!real.lives());
    }

    #[test]
    fn pid_files_hold_a_pid_and_a_start_time() {
        let me = ProcessId::current().unwrap();
        assert_eq!(ProcessId::parse(&me.render()), Some(me));
        for bad in ["", "123", "123 x", "0 5", "-1 5", "1 2 3", "garbage"] {
            assert_eq!(ProcessId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_flock_is_seen_in_proc_locks_and_in_the_holders_fdinfo() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("shim.lock");
        let file = std::fs::File::create(&path).unwrap();
        let key = lock_key(&path).unwrap();
        let in_proc_locks = || {
            fs::read_to_string("/proc/locks")
                .unwrap()
                .lines()
                .any(|line| is_flock_on(line, &key))
        };
        assert!(!in_proc_locks());
        assert!(!holds_flock(std::process::id(), &key));
        let locked = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| e)
            .unwrap();
        assert!(in_proc_locks(), "{key} not in /proc/locks");
        assert!(holds_flock(std::process::id(), &key));
        // This test is not a shim of that directory.
        assert_eq!(shim_holding(&path, temp.path()), None);
        drop(locked);
    }

    #[test]
    fn the_real_host_sees_what_the_functions_see() {
        let host: &dyn Host = &ProcHost;
        let me = std::process::id();
        assert!(host.pid_alive(me));
        assert_eq!(host.start_time(me), start_time(me));
        assert!(!host.pid_alive(u32::MAX));
        // A pid beyond i32 is never signalled (it would be a group).
        host.signal(
            ProcessId {
                pid: u32::MAX,
                start_time: 0,
            },
            Signal::SIGKILL,
        );
    }
}
