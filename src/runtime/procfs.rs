//! What `/proc` says about a container's processes (`berth top`) and its
//! network namespace (`berth stats`). Every file is read with a size
//! bound: a process's command line is the process's to choose.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The most of a command line shown (docker's `ps` cuts too).
const MAX_CMDLINE: u64 = 16 << 10;
/// `stat` and `status` are a few hundred bytes; `net/dev` a line per
/// interface.
const MAX_PROC_FILE: u64 = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: unexpected contents: {what}")]
    Garbled { path: PathBuf, what: &'static str },
}

/// One process as `berth top` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRow {
    /// Its pid on the host (not in the container's pid namespace).
    pub pid: u32,
    pub ppid: u32,
    /// Its real uid, and the host's name for it when the host has one.
    pub uid: u32,
    pub user: String,
    /// CPU time used, user and system together, in clock ticks' seconds.
    pub cpu_seconds: u64,
    /// Its command line, or `[comm]` for one without (a kernel thread, a
    /// zombie), as `ps` shows them.
    pub command: String,
}

/// A container's network traffic, every interface but loopback together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// `/proc` of the host (or a tree laid out like it, in tests).
#[derive(Debug, Clone)]
pub struct Procfs {
    root: PathBuf,
}

impl Default for Procfs {
    fn default() -> Self {
        Procfs {
            root: PathBuf::from("/proc"),
        }
    }
}

impl Procfs {
    pub fn at(root: &Path) -> Procfs {
        Procfs {
            root: root.to_path_buf(),
        }
    }

    /// Process `pid`'s row; None once it is gone (processes end between
    /// listing a cgroup and reading them).
    pub fn process(
        &self,
        pid: u32,
        ticks_per_second: u64,
    ) -> Result<Option<ProcessRow>, ProcError> {
        let dir = self.root.join(pid.to_string());
        let Some(stat) = read_bounded(&dir.join("stat"), MAX_PROC_FILE)? else {
            return Ok(None);
        };
        let Some(status) = read_bounded(&dir.join("status"), MAX_PROC_FILE)? else {
            return Ok(None);
        };
        let cmdline = read_bounded(&dir.join("cmdline"), MAX_CMDLINE)?.unwrap_or_default();
        let stat = parse_stat(&dir.join("stat"), &stat)?;
        let uid = real_uid(&status).ok_or_else(|| ProcError::Garbled {
            path: dir.join("status"),
            what: "no Uid line",
        })?;
        Ok(Some(ProcessRow {
            pid,
            ppid: stat.ppid,
            uid,
            user: user_name(uid),
            cpu_seconds: stat.cpu_ticks / ticks_per_second.max(1),
            command: command_line(&cmdline, &stat.comm),
        }))
    }

    /// The traffic of process `pid`'s network namespace (`/proc/PID/net/dev`).
    pub fn net_counters(&self, pid: u32) -> Result<Option<NetCounters>, ProcError> {
        let path = self.root.join(pid.to_string()).join("net/dev");
        match read_bounded(&path, MAX_PROC_FILE)? {
            Some(text) => parse_net_dev(&path, &text).map(Some),
            None => Ok(None),
        }
    }
}

/// The clock ticks per second `/proc/PID/stat` counts CPU time in.
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|ticks| u64::try_from(ticks).ok())
        .unwrap_or(100)
}

/// At most `limit` bytes of `path` as text; None when it does not exist
/// (the process ended).
fn read_bounded(path: &Path, limit: u64) -> Result<Option<String>, ProcError> {
    let read_error = |source| ProcError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        // ESRCH: the process ended while its file was open.
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            return Ok(None)
        }
        Err(e) => return Err(read_error(e)),
    };
    let mut bytes = Vec::new();
    match file.take(limit).read_to_end(&mut bytes) {
        Ok(_) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        Err(e) => Err(read_error(e)),
    }
}

struct Stat {
    comm: String,
    ppid: u32,
    cpu_ticks: u64,
}

/// `PID (COMM) STATE PPID ... UTIME STIME ...`: COMM may hold spaces and
/// parentheses, so the fields after it are found from the last `)`.
fn parse_stat(path: &Path, text: &str) -> Result<Stat, ProcError> {
    let garbled = |what| ProcError::Garbled {
        path: path.to_path_buf(),
        what,
    };
    let open = text.find('(').ok_or_else(|| garbled("no command name"))?;
    let close = text.rfind(')').ok_or_else(|| garbled("no command name"))?;
    let comm = text.get(open + 1..close).unwrap_or_default().to_string();
    // Fields from 3 (state) on.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64, ProcError> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| garbled("too few fields"))
    };
    Ok(Stat {
        comm,
        ppid: u32::try_from(field(4)?).map_err(|_| garbled("ppid out of range"))?,
        cpu_ticks: field(14)?.saturating_add(field(15)?),
    })
}

/// The real uid from `status`'s `Uid:` line (real, effective, saved, fs).
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The host's name for `uid`, or the number (as `ps` shows an unknown one).
fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

/// The NUL-separated arguments joined by spaces; `[comm]` for none.
fn command_line(cmdline: &str, comm: &str) -> String {
    let args: Vec<&str> = cmdline.split('\0').filter(|a| !a.is_empty()).collect();
    if args.is_empty() {
        format!("[{comm}]")
    } else {
        args.join(" ")
    }
}

/// `net/dev`: two header lines, then `IFACE: RX_BYTES ... (8 rx fields)
/// TX_BYTES ...`; loopback is the container talking to itself.
fn parse_net_dev(path: &Path, text: &str) -> Result<NetCounters, ProcError> {
    let mut counters = NetCounters::default();
    for line in text.lines().skip(2) {
        let Some((name, fields)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = fields
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| ProcError::Garbled {
                path: path.to_path_buf(),
                what: "a counter is not a number",
            })?;
        let (Some(rx), Some(tx)) = (fields.first(), fields.get(8)) else {
            return Err(ProcError::Garbled {
                path: path.to_path_buf(),
                what: "too few counters",
            });
        };
        counters.rx_bytes = counters.rx_bytes.saturating_add(*rx);
        counters.tx_bytes = counters.tx_bytes.saturating_add(*tx);
    }
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0:    1500      12    0    0    0     0          0         0      700       7    0    0    0     0       0          0
  eth1:     100       1    0    0    0     0          0         0       50       1    0    0    0     0       0          0
";

    #[test]
    fn net_dev_sums_every_interface_but_loopback() {
        let counters = parse_net_dev(Path::new("net/dev"), NET_DEV).unwrap();
        assert_eq!(
            counters,
            NetCounters {
                rx_bytes: 1600,
                tx_bytes: 750
            }
        );
    }

    #[test]
    fn a_namespace_with_loopback_only_moved_nothing() {
        let only_lo: String = NET_DEV.lines().take(3).map(|l| format!("{l}\n")).collect();
        let counters = parse_net_dev(Path::new("net/dev"), &only_lo).unwrap();
        assert_eq!(counters, NetCounters::default());
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let stat =
            "77 (we (ird) name) S 12 77 77 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 1 0 500 0 0";
        let parsed = parse_stat(Path::new("stat"), stat).unwrap();
        assert_eq!(parsed.comm, "we (ird) name");
        assert_eq!(parsed.ppid, 12);
        assert_eq!(parsed.cpu_ticks, 380);
    }

    #[test]
    fn a_process_row_comes_from_stat_status_and_cmdline() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("4242");
        fs::create_dir(&dir).unwrap();
        fs::write(
            dir.join("stat"),
            "4242 (sleep) S 4200 4242 4242 0 -1 0 0 0 0 0 300 100 0 0 20 0 1 0 9 0 0\n",
        )
        .unwrap();
        fs::write(
            dir.join("status"),
            "Name:\tsleep\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n",
        )
        .unwrap();
        fs::write(dir.join("cmdline"), b"sleep\x00600\x00").unwrap();
        let row = Procfs::at(temp.path()).process(4242, 100).unwrap().unwrap();
        assert_eq!(row.pid, 4242);
        assert_eq!(row.ppid, 4200);
        assert_eq!(row.uid, 0);
        assert_eq!(row.user, "root");
        assert_eq!(row.cpu_seconds, 4);
        assert_eq!(row.command, "sleep 600");
        // Gone between the listing and the read: no row, no error.
        assert_eq!(Procfs::at(temp.path()).process(4243, 100).unwrap(), None);
    }

    #[test]
    fn a_process_without_arguments_shows_its_name_in_brackets() {
        assert_eq!(command_line("", "kworker"), "[kworker]");
    }

    #[test]
    fn the_real_procfs_describes_this_test() {
        let me = std::process::id();
        let row = Procfs::default()
            .process(me, ticks_per_second())
            .unwrap()
            .unwrap();
        assert_eq!(row.pid, me);
        assert_eq!(row.uid, nix::unistd::getuid().as_raw());
        assert!(!row.command.is_empty());
    }
}
