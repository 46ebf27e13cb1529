//! A container's cgroup as `berth top` and `berth stats` read it: the
//! processes in it and what they use (CPU time, memory, pids).
//!
//! runc puts a container in the cgroup its spec's `cgroupsPath` names
//! ([`crate::state::Layout::cgroup_path`]). Two layouts exist:
//!
//! - **v1** (this test host, a hybrid): one hierarchy per controller,
//!   `<root>/cpuacct/<path>`, `<root>/memory/<path>`, `<root>/pids/<path>`;
//!   CPU time in `cpuacct.usage` (ns), memory in `memory.usage_in_bytes`
//!   and `memory.limit_in_bytes`.
//! - **v2** (stock Debian 12): one unified hierarchy, `<root>/<path>`;
//!   CPU time in `cpu.stat`'s `usage_usec`, memory in `memory.current` and
//!   `memory.max`.
//!
//! Which one is told by `<root>/cgroup.controllers`, which only a unified
//! root has. Memory usage leaves out the inactive page cache, as `docker
//! stats` does (`total_inactive_file` on v1, `inactive_file` on v2): cache
//! the kernel drops at will is not what a container needs.
//!
//! Every file is read with a size bound (a cgroup file is small; one that
//! is not is not a cgroup file).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// Where the host mounts its cgroups.
pub const HOST_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The most of one cgroup file read: `memory.stat` is a few KiB, and
/// `cgroup.procs` holds 8 bytes per process at most (a million processes
/// fit).
const MAX_CGROUP_FILE: u64 = 8 << 20;

/// v1 memory limits at or above this mean "no limit" (the kernel shows
/// `PAGE_COUNTER_MAX` pages, 9223372036854771712 on 4 KiB pages).
const V1_NO_LIMIT: u64 = 1 << 62;

/// The v1 directories the CPU accounting controller may be mounted at.
const V1_CPUACCT_DIRS: [&str; 3] = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"];

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {cgroup} does not exist under {root} (the container is not running)")]
    Missing { cgroup: String, root: PathBuf },
    #[error("cgroup path {cgroup:?} is not a plain absolute path")]
    BadPath { cgroup: String },
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {what} is not a number: {text:?}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        text: String,
    },
}

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
    V1,
    V2,
}

/// What a cgroup's processes use at one instant. A field is None when the
/// controller that counts it is not there (pids not enabled, say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupUsage {
    /// CPU time used since the cgroup was made, in nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Memory in use, inactive page cache left out.
    pub memory_bytes: Option<u64>,
    /// The memory limit; None without one.
    pub memory_limit_bytes: Option<u64>,
    /// Processes and threads in it.
    pub pids: Option<u64>,
}

/// The host's cgroups (or a tree laid out like them, in tests).
#[derive(Debug, Clone)]
pub struct Cgroups {
    root: PathBuf,
    hierarchy: Hierarchy,
}

impl Cgroups {
    /// The host's, at [`HOST_CGROUP_ROOT`].
    pub fn host() -> Cgroups {
        Cgroups::at(Path::new(HOST_CGROUP_ROOT))
    }

    /// The cgroups mounted at `root`, v2 when `root` is a unified hierarchy.
    pub fn at(root: &Path) -> Cgroups {
        let hierarchy = if root.join("cgroup.controllers").is_file() {
            Hierarchy::V2
        } else {
            Hierarchy::V1
        };
        Cgroups {
            root: root.to_path_buf(),
            hierarchy,
        }
    }

    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }

    /// The processes in `cgroup` (a `cgroupsPath`, `/berth/web`), by host pid.
    pub fn procs(&self, cgroup: &str) -> Result<Vec<u32>, CgroupError> {
        let dir = match self.hierarchy {
            Hierarchy::V2 => self.v2_dir(cgroup)?,
            // Every v1 hierarchy lists the same processes; pids and memory
            // are there on every host that runs containers.
            Hierarchy::V1 => self.v1_dir(cgroup, &["pids", "memory"])?,
        };
        let path = dir.join("cgroup.procs");
        let text = read_cgroup_file(&path)?.unwrap_or_default();
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| number(&path, "a pid", line))
            .collect()
    }

    /// What `cgroup`'s processes use now.
    pub fn usage(&self, cgroup: &str) -> Result<CgroupUsage, CgroupError> {
        match self.hierarchy {
            Hierarchy::V1 => self.v1_usage(cgroup),
            Hierarchy::V2 => self.v2_usage(cgroup),
        }
    }

    fn v2_usage(&self, cgroup: &str) -> Result<CgroupUsage, CgroupError> {
        let dir = self.v2_dir(cgroup)?;
        let cpu_ns = match read_cgroup_file(&dir.join("cpu.stat"))? {
            Some(text) => keyed(&dir.join("cpu.stat"), &text, "usage_usec")?
                .map(|usec| usec.saturating_mul(1000)),
            None => None,
        };
        let current = read_number(&dir.join("memory.current"), "memory.current")?;
        let inactive = read_keyed(&dir.join("memory.stat"), "inactive_file")?;
        Ok(CgroupUsage {
            cpu_ns,
            memory_bytes: current.map(|used| without_cache(used, inactive)),
            memory_limit_bytes: read_limit(&dir.join("memory.max"), "memory.max")?.flatten(),
            pids: read_number(&dir.join("pids.current"), "pids.current")?,
        })
    }

    fn v1_usage(&self, cgroup: &str) -> Result<CgroupUsage, CgroupError> {
        // The memory hierarchy is the one a container always has; the
        // others may be missing (pids on old kernels).
        let memory = self.v1_dir(cgroup, &["memory"])?;
        let cpu_ns = match self.v1_dir(cgroup, &V1_CPUACCT_DIRS) {
            Ok(dir) => read_number(&dir.join("cpuacct.usage"), "cpuacct.usage")?,
            Err(CgroupError::Missing { .. }) => None,
            Err(other) => return Err(other),
        };
        let pids = match self.v1_dir(cgroup, &["pids"]) {
            Ok(dir) => read_number(&dir.join("pids.current"), "pids.current")?,
            Err(CgroupError::Missing { .. }) => None,
            Err(other) => return Err(other),
        };
        let used = read_number(&memory.join("memory.usage_in_bytes"), "memory usage")?;
        let inactive = read_keyed(&memory.join("memory.stat"), "total_inactive_file")?;
        let limit = read_number(&memory.join("memory.limit_in_bytes"), "memory limit")?
            .filter(|limit| *limit < V1_NO_LIMIT);
        Ok(CgroupUsage {
            cpu_ns,
            memory_bytes: used.map(|used| without_cache(used, inactive)),
            memory_limit_bytes: limit,
            pids,
        })
    }

    /// `<root>/<cgroup>`, which must exist.
    fn v2_dir(&self, cgroup: &str) -> Result<PathBuf, CgroupError> {
        let dir = self.root.join(relative(cgroup)?);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(self.missing(cgroup))
        }
    }

    /// `<root>/<controller>/<cgroup>` for the first of `controllers` that
    /// has the cgroup.
    fn v1_dir(&self, cgroup: &str, controllers: &[&str]) -> Result<PathBuf, CgroupError> {
        let relative = relative(cgroup)?;
        controllers
            .iter()
            .map(|controller| self.root.join(controller).join(&relative))
            .find(|dir| dir.is_dir())
            .ok_or_else(|| self.missing(cgroup))
    }

    fn missing(&self, cgroup: &str) -> CgroupError {
        CgroupError::Missing {
            cgroup: cgroup.to_string(),
            root: self.root.clone(),
        }
    }
}

/// The CPU a cgroup used between two samples `elapsed_ns` apart, in
/// percent of one CPU (a container busy on two CPUs shows 200, as `docker
/// stats` shows it). None without two readings or with no time between.
pub fn cpu_percent(before_ns: Option<u64>, after_ns: Option<u64>, elapsed_ns: u64) -> Option<f64> {
    let (before, after) = (before_ns?, after_ns?);
    if elapsed_ns == 0 {
        return None;
    }
    Some(after.saturating_sub(before) as f64 * 100.0 / elapsed_ns as f64)
}

/// `used` without the inactive page cache, as docker counts it; `used`
/// itself when the cache figure is missing or larger (a torn read).
fn without_cache(used: u64, inactive: Option<u64>) -> u64 {
    match inactive {
        Some(cache) if cache < used => used - cache,
        _ => used,
    }
}

/// `cgroup` below the root: its components, none of them `..`.
fn relative(cgroup: &str) -> Result<PathBuf, CgroupError> {
    let path = Path::new(cgroup);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !plain || !cgroup.starts_with('/') {
        return Err(CgroupError::BadPath {
            cgroup: cgroup.to_string(),
        });
    }
    Ok(path.components().skip(1).collect())
}

/// A cgroup file's text, None when it does not exist (its controller is
/// not enabled there).
fn read_cgroup_file(path: &Path) -> Result<Option<String>, CgroupError> {
    let read_error = |source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    let mut text = String::new();
    file.take(MAX_CGROUP_FILE)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    Ok(Some(text))
}

fn number<T: std::str::FromStr>(
    path: &Path,
    what: &'static str,
    text: &str,
) -> Result<T, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        what,
        text: text.trim().chars().take(64).collect(),
    })
}

/// A file holding one number.
fn read_number(path: &Path, what: &'static str) -> Result<Option<u64>, CgroupError> {
    read_cgroup_file(path)?
        .map(|text| number(path, what, &text))
        .transpose()
}

/// A v2 limit: a number, or `max` for none (`Some(None)`).
fn read_limit(path: &Path, what: &'static str) -> Result<Option<Option<u64>>, CgroupError> {
    match read_cgroup_file(path)? {
        None => Ok(None),
        Some(text) if text.trim() == "max" => Ok(Some(None)),
        Some(text) => number(path, what, &text).map(|n| Some(Some(n))),
    }
}

/// The value of `key` in a flat keyed file (`memory.stat`, `cpu.stat`).
fn read_keyed(path: &Path, key: &'static str) -> Result<Option<u64>, CgroupError> {
    match read_cgroup_file(path)? {
        Some(text) => keyed(path, &text, key),
        None => Ok(None),
    }
}

fn keyed(path: &Path, text: &str, key: &'static str) -> Result<Option<u64>, CgroupError> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(name, _)| *name == key)
        .map(|(_, value)| number(path, key, value))
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const CGROUP: &str = "/berth-0123456789ab-web";

    fn write(dir: &Path, name: &str, text: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(name), text).unwrap();
    }

    /// A unified hierarchy with the container's cgroup, as the kernel
    /// lays it out (the files berth reads, with real-looking contents).
    fn v2_tree() -> tempfile::TempDir {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        write(root, "cgroup.controllers", "cpuset cpu io memory pids\n");
        let dir = root.join("berth-0123456789ab-web");
        write(&dir, "cgroup.procs", "4242\n4250\n");
        write(
            &dir,
            "cpu.stat",
            "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 0\n",
        );
        write(&dir, "memory.current", "10485760\n");
        write(
            &dir,
            "memory.stat",
            "anon 6291456\nfile 4194304\nactive_file 1048576\ninactive_file 3145728\n",
        );
        write(&dir, "memory.max", "67108864\n");
        write(&dir, "pids.current", "3\n");
        temp
    }

    /// The same container on a v1 host: one hierarchy per controller, CPU
    /// accounting at `cpu,cpuacct` as Debian mounts it.
    fn v1_tree() -> tempfile::TempDir {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        let cpu = root.join("cpu,cpuacct/berth-0123456789ab-web");
        write(&cpu, "cpuacct.usage", "2500000000\n");
        write(&cpu, "cgroup.procs", "4242\n4250\n");
        let memory = root.join("memory/berth-0123456789ab-web");
        write(&memory, "cgroup.procs", "4242\n4250\n");
        write(&memory, "memory.usage_in_bytes", "20971520\n");
        write(
            &memory,
            "memory.stat",
            "cache 8388608\nrss 12582912\ninactive_file 100\ntotal_cache 8388608\ntotal_inactive_file 4194304\n",
        );
        write(&memory, "memory.limit_in_bytes", "9223372036854771712\n");
        let pids = root.join("pids/berth-0123456789ab-web");
        write(&pids, "cgroup.procs", "4242\n4250\n");
        write(&pids, "pids.current", "2\n");
        temp
    }

    #[test]
    fn a_unified_root_is_v2_and_a_per_controller_root_is_v1() {
        assert_eq!(Cgroups::at(v2_tree().path()).hierarchy(), Hierarchy::V2);
        assert_eq!(Cgroups::at(v1_tree().path()).hierarchy(), Hierarchy::V1);
    }

    #[test]
    fn v2_usage_reads_cpu_stat_memory_current_without_inactive_file_and_the_limit() {
        let tree = v2_tree();
        let usage = Cgroups::at(tree.path()).usage(CGROUP).unwrap();
        assert_eq!(
            usage,
            CgroupUsage {
                cpu_ns: Some(1_500_000_000),
                memory_bytes: Some(10_485_760 - 3_145_728),
                memory_limit_bytes: Some(67_108_864),
                pids: Some(3),
            }
        );
    }

    #[test]
    fn v2_memory_max_of_max_is_no_limit_and_a_missing_controller_is_unknown() {
        let tree = v2_tree();
        let dir = tree.path().join("berth-0123456789ab-web");
        fs::write(dir.join("memory.max"), "max\n").unwrap();
        fs::remove_file(dir.join("pids.current")).unwrap();
        let usage = Cgroups::at(tree.path()).usage(CGROUP).unwrap();
        assert_eq!(usage.memory_limit_bytes, None);
        assert_eq!(usage.pids, None);
        assert_eq!(usage.memory_bytes, Some(10_485_760 - 3_145_728));
    }

    #[test]
    fn v1_usage_reads_cpuacct_usage_memory_without_total_inactive_file_and_pids() {
        let tree = v1_tree();
        let usage = Cgroups::at(tree.path()).usage(CGROUP).unwrap();
        assert_eq!(
            usage,
            CgroupUsage {
                cpu_ns: Some(2_500_000_000),
                memory_bytes: Some(20_971_520 - 4_194_304),
                // The kernel's "no limit" is no limit, not 8 EiB.
                memory_limit_bytes: None,
                pids: Some(2),
            }
        );
    }

    #[test]
    fn v1_finds_cpuacct_mounted_alone_and_reads_a_set_limit() {
        let tree = v1_tree();
        let root = tree.path();
        fs::rename(root.join("cpu,cpuacct"), root.join("cpuacct")).unwrap();
        fs::write(
            root.join("memory/berth-0123456789ab-web/memory.limit_in_bytes"),
            "33554432\n",
        )
        .unwrap();
        let usage = Cgroups::at(root).usage(CGROUP).unwrap();
        assert_eq!(usage.cpu_ns, Some(2_500_000_000));
        assert_eq!(usage.memory_limit_bytes, Some(33_554_432));
    }

    #[test]
    fn procs_lists_host_pids_on_both_layouts() {
        for tree in [v1_tree(), v2_tree()] {
            let procs = Cgroups::at(tree.path()).procs(CGROUP).unwrap();
            assert_eq!(procs, [4242, 4250]);
        }
    }

    #[test]
    fn a_cgroup_that_is_not_there_says_the_container_is_not_running() {
        for tree in [v1_tree(), v2_tree()] {
            let error = Cgroups::at(tree.path())
                .usage("/berth-0123456789ab-gone")
                .unwrap_err();
            assert!(matches!(error, CgroupError::Missing { .. }), "{error}");
            assert!(error.to_string().contains("not running"), "{error}");
        }
    }

    #[test]
    fn a_path_that_climbs_out_of_the_root_is_refused() {
        let tree = v2_tree();
        let error = Cgroups::at(tree.path()).procs("/../etc").unwrap_err();
        assert!(matches!(error, CgroupError::BadPath { .. }), "{error}");
        let error = Cgroups::at(tree.path()).procs("berth/web").unwrap_err();
        assert!(matches!(error, CgroupError::BadPath { .. }), "{error}");
    }

    #[test]
    fn a_garbled_number_names_its_file() {
        let tree = v2_tree();
        let dir = tree.path().join("berth-0123456789ab-web");
        fs::write(dir.join("memory.current"), "lots\n").unwrap();
        let error = Cgroups::at(tree.path()).usage(CGROUP).unwrap_err();
        assert!(error.to_string().contains("memory.current"), "{error}");
    }

    #[test]
    fn cpu_percent_is_of_one_cpu_and_unknown_without_two_readings() {
        assert_eq!(
            cpu_percent(Some(1_000_000_000), Some(1_500_000_000), 1_000_000_000),
            Some(50.0)
        );
        assert_eq!(
            cpu_percent(Some(0), Some(2_000_000_000), 1_000_000_000),
            Some(200.0)
        );
        assert_eq!(cpu_percent(None, Some(5), 1_000_000_000), None);
        assert_eq!(cpu_percent(Some(1), Some(5), 0), None);
        // A counter that went back (a new cgroup) is no negative CPU.
        assert_eq!(cpu_percent(Some(9), Some(5), 10), Some(0.0));
    }
}
