//! Reading an untrusted image rootfs safely: every lookup is resolved inside
//! the rootfs with `openat2(RESOLVE_IN_ROOT)`, so a symlink in the image can
//! never point a read (or a check) at the host.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, SFlag};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("open rootfs {path}: {source}")]
    Open { path: PathBuf, source: nix::Error },
    #[error("the image's {path} is a symlink; berth refuses images whose /dev, /proc or /sys is one (they could redirect the runtime's mounts onto the host)")]
    SymlinkedSpecialDir { path: String },
    #[error("{what} {path:?} resolves through {through} inside the image, which berth refuses")]
    ThroughKernelFs {
        what: &'static str,
        path: String,
        through: String,
    },
    #[error("{what} {path:?} must be an absolute path without '..'")]
    NotAbsolute { what: &'static str, path: String },
}

/// An open image rootfs.
pub struct Rootfs {
    fd: OwnedFd,
}

const MAX_SMALL_FILE: u64 = 4 << 20;

/// Opens `path` of the container whose root directory is `root`, as if
/// `root` were `/`: absolute links and `..` stay inside it, and no magic
/// link of /proc leads out (the one way berth resolves container paths).
pub(crate) fn open_in_root(root: BorrowedFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    fcntl::openat2(
        root,
        path,
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
}

impl Rootfs {
    pub fn open(path: &Path) -> Result<Self, RootfsError> {
        let fd = fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|source| RootfsError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Rootfs { fd })
    }

    fn open_in_root(&self, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
        open_in_root(self.fd.as_fd(), path, flags)
    }

    /// Reads a small text file of the image (`/etc/passwd`), or None when it
    /// does not exist or is not readable as a regular file.
    pub fn read_small_file(&self, path: &str) -> Option<String> {
        let fd = self
            .open_in_root(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)
            .ok()?;
        let file = File::from(fd);
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut text = String::new();
        file.take(MAX_SMALL_FILE).read_to_string(&mut text).ok()?;
        Some(text)
    }

    /// Refuses an image whose `/dev`, `/proc` or `/sys` is a symlink: runc
    /// 1.1 mounts onto those paths, and a symlink there could redirect the
    /// mount to the host (CVE-2025-31133 and kin).
    pub fn check_special_dirs(&self) -> Result<(), RootfsError> {
        for dir in ["dev", "proc", "sys"] {
            if let Ok(stat) = fstatat(self.fd.as_fd(), dir, AtFlags::AT_SYMLINK_NOFOLLOW) {
                if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                    return Err(RootfsError::SymlinkedSpecialDir {
                        path: format!("/{dir}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks that a container path (a working directory, a mount target)
    /// resolves inside the rootfs to somewhere other than /proc or /sys.
    /// Paths that do not exist yet are fine: the runtime creates them.
    pub fn check_container_path(&self, what: &'static str, path: &str) -> Result<(), RootfsError> {
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(RootfsError::NotAbsolute {
                what,
                path: path.to_string(),
            });
        }
        // Resolve each existing prefix in the root and see where it lands.
        let mut prefix = String::new();
        for component in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            prefix.push('/');
            prefix.push_str(component);
            let Ok(fd) = self.open_in_root(&prefix, OFlag::O_PATH) else {
                return Ok(());
            };
            let resolved = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))
            .unwrap_or_default();
            let root = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&self.fd)
            ))
            .unwrap_or_default();
            let inside = resolved
                .strip_prefix(&root)
                .map(|p| format!("/{}", p.display()))
                .unwrap_or_default();
            for kernel_fs in ["/proc", "/sys"] {
                if inside == kernel_fs || inside.starts_with(&format!("{kernel_fs}/")) {
                    return Err(RootfsError::ThroughKernelFs {
                        what,
                        path: path.to_string(),
                        through: kernel_fs.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_confined_to_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("etc/evil")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc/hostname", root.join("etc/evil2")).unwrap();
        let rootfs = Rootfs::open(root).unwrap();
        assert!(rootfs
            .read_small_file("/etc/passwd")
            .unwrap()
            .starts_with("root:"));
        // Both symlinks resolve inside the rootfs, where there is no etc/hostname.
        assert_eq!(rootfs.read_small_file("/etc/evil"), None);
        assert_eq!(rootfs.read_small_file("/etc/evil2"), None);
    }

    #[test]
    fn symlinked_special_dirs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("proc")).unwrap();
        let rootfs = Rootfs::open(dir.path()).unwrap();
        assert!(matches!(
            rootfs.check_special_dirs(),
            Err(RootfsError::SymlinkedSpecialDir { .. })
        ));
    }

    #[test]
    fn container_paths_through_proc_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::os::unix::fs::symlink("/proc/self", dir.path().join("app")).unwrap();
        std::fs::create_dir_all(dir.path().join("srv")).unwrap();
        let rootfs = Rootfs::open(dir.path()).unwrap();
        assert!(matches!(
            rootfs.check_container_path("working directory", "/app/cwd"),
            Err(RootfsError::ThroughKernelFs { .. })
        ));
        assert!(rootfs
            .check_container_path("working directory", "/srv/data")
            .is_ok());
        assert!(rootfs
            .check_container_path("working directory", "/not/yet")
            .is_ok());
        assert!(rootfs
            .check_container_path("working directory", "rel")
            .is_err());
    }
}
