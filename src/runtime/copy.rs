//! `berth cp`: files and directories into and out of a container's root
//! filesystem, which the container's processes control and may have
//! filled with hostile links.
//!
//! - Every container path is resolved with `openat2(RESOLVE_IN_ROOT |
//!   RESOLVE_NO_MAGICLINKS)` from a descriptor of the container's root, so
//!   a link inside it (`/tmp/evil -> /`, `-> ../../../../etc`) resolves as
//!   it would inside the container and never leads out of it.
//! - Below the resolved directory every step is relative to the descriptor
//!   of the step before, and the entry itself is never followed: a link is
//!   copied as a link, a file is opened with `O_NOFOLLOW`, and a new entry
//!   is made with `O_CREAT | O_EXCL` after whatever stood at its name was
//!   removed, so nothing is ever written through a link (or into a file
//!   hard-linked elsewhere).
//! - Copied in, entries belong to the container's root (uid 0, gid 0:
//!   berth gives containers no user namespace) and keep their mode.
//!   Copied out, they belong to whoever runs berth and lose set-user-id
//!   and set-group-id, as `cp` without `-p` does: a container's binary
//!   does not become a set-uid-root program on the host.
//! - Regular files, directories and symbolic links are copied; devices,
//!   fifos and sockets are skipped and listed. Directories nest at most
//!   [`MAX_DEPTH`] deep.
//!
//! Only the container's own filesystem is reached (the overlay's merged
//! directory): its volumes, bind mounts and the `/etc/hosts` berth mounts
//! are not part of it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use serde::Serialize;

/// How deep directories nest before a copy gives up (the kernel's own
/// path limit, 4096 bytes, allows about 2000 one-letter levels).
pub const MAX_DEPTH: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("open the container's root filesystem {path}: {source}")]
    OpenRoot { path: PathBuf, source: Errno },
    #[error("{path}: {why}")]
    BadPath { path: String, why: &'static str },
    #[error("{syscall} {path}: {source}")]
    Sys {
        syscall: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("{path}: directories nest deeper than {max}")]
    TooDeep { path: String, max: usize },
    #[error("cannot replace directory {path} with a non-directory")]
    WouldReplaceDirectory { path: String },
    #[error("cannot copy a directory onto {path}: it is not a directory")]
    NotADirectory { path: String },
}

/// What a copy made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Copied {
    pub files: u64,
    pub directories: u64,
    pub links: u64,
    pub bytes: u64,
    /// Devices, fifos and sockets, which are not copied.
    pub skipped: Vec<String>,
}

/// Which way a copy goes: it decides the new entries' owner and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    In,
    Out,
}

/// A container's root filesystem, open.
pub struct ContainerFs {
    root: OwnedFd,
}

/// One end of a copy: an entry `name` in an open directory, and how the
/// entry is called in messages.
struct At<'a> {
    dir: BorrowedFd<'a>,
    name: &'a OsStr,
    shown: String,
}

impl ContainerFs {
    /// Opens the root filesystem at `rootfs` (a path under berth's own
    /// state, not the container's to choose).
    pub fn open(rootfs: &Path) -> Result<ContainerFs, CopyError> {
        let root = fcntl::open(
            rootfs,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|source| CopyError::OpenRoot {
            path: rootfs.to_path_buf(),
            source,
        })?;
        Ok(ContainerFs { root })
    }

    /// Copies the container's `path` to `host` on the host: into `host`
    /// when that is a directory, else as `host`.
    pub fn copy_out(&self, path: &str, host: &Path) -> Result<Copied, CopyError> {
        let (parent, name) = split_container_path(path)?;
        let source_dir = self.resolve_dir(&parent, path)?;
        let (target_dir, target_name) = host_target(host, &name)?;
        let mut copied = Copied::default();
        copy_entry(
            &At {
                dir: source_dir.as_fd(),
                name: &name,
                shown: path.to_string(),
            },
            &At {
                dir: target_dir.as_fd(),
                name: &target_name,
                shown: host.display().to_string(),
            },
            0,
            Direction::Out,
            &mut copied,
        )?;
        Ok(copied)
    }

    /// Copies `host` from the host to the container's `path`: into `path`
    /// when that is a directory in the container, else as `path`.
    pub fn copy_in(&self, host: &Path, path: &str) -> Result<Copied, CopyError> {
        let (source_dir, name) = host_source(host)?;
        let (target_dir, target_name) = self.container_target(path, &name)?;
        let mut copied = Copied::default();
        copy_entry(
            &At {
                dir: source_dir.as_fd(),
                name: &name,
                shown: host.display().to_string(),
            },
            &At {
                dir: target_dir.as_fd(),
                name: &target_name,
                shown: path.to_string(),
            },
            0,
            Direction::In,
            &mut copied,
        )?;
        Ok(copied)
    }

    /// Container directory `dir`, resolved inside the container's root,
    /// on the way to `asked` (which an error names).
    fn resolve_dir(&self, dir: &str, asked: &str) -> Result<OwnedFd, CopyError> {
        self.open_dir_in_root(dir).map_err(|errno| CopyError::Sys {
            syscall: "resolve",
            path: asked.to_string(),
            source: errno.into(),
        })
    }

    fn open_dir_in_root(&self, path: &str) -> nix::Result<OwnedFd> {
        super::rootfs::open_in_root(
            self.root.as_fd(),
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        )
    }

    /// Where a copy in of an entry called `name` goes: into container
    /// directory `path`, or to `path` itself in its parent.
    fn container_target(&self, path: &str, name: &OsStr) -> Result<(OwnedFd, OsString), CopyError> {
        match self.open_dir_in_root(path) {
            Ok(dir) => Ok((dir, name.to_os_string())),
            Err(Errno::ENOENT | Errno::ENOTDIR) if !path.ends_with('/') => {
                let (parent, last) = split_container_path(path)?;
                Ok((self.resolve_dir(&parent, path)?, last))
            }
            Err(errno) => Err(CopyError::Sys {
                syscall: "resolve",
                path: path.to_string(),
                source: errno.into(),
            }),
        }
    }
}

/// An absolute container path's parent and last name (`/tmp/x` ->
/// `/tmp`, `x`). The last name must be a name: `/`, `.` and `..` do not
/// say what to call a copy.
fn split_container_path(path: &str) -> Result<(String, OsString), CopyError> {
    let bad = |why| CopyError::BadPath {
        path: path.to_string(),
        why,
    };
    if !path.starts_with('/') {
        return Err(bad("a container path must be absolute (start it with /)"));
    }
    let trimmed = path.trim_end_matches('/');
    let (parent, last) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    if last.is_empty() || last == "." || last == ".." {
        return Err(bad("name a file or directory below /, not / . or .."));
    }
    let parent = if parent.is_empty() { "/" } else { parent };
    Ok((parent.to_string(), OsString::from(last)))
}

/// The host side of a copy in: the directory holding `host` and its name.
fn host_source(host: &Path) -> Result<(OwnedFd, OsString), CopyError> {
    // `.`, `..` and `dir/..` have no name of their own: the real path has.
    let host = match host.file_name() {
        Some(_) => host.to_path_buf(),
        None => std::fs::canonicalize(host).map_err(|source| CopyError::Sys {
            syscall: "resolve",
            path: host.display().to_string(),
            source,
        })?,
    };
    let name = host.file_name().ok_or_else(|| CopyError::BadPath {
        path: host.display().to_string(),
        why: "name a file or directory, not /",
    })?;
    Ok((open_host_dir(parent_of(&host))?, name.to_os_string()))
}

/// The host side of a copy out: into directory `host`, or as `host`.
fn host_target(host: &Path, name: &OsStr) -> Result<(OwnedFd, OsString), CopyError> {
    if host.is_dir() {
        return Ok((open_host_dir(host)?, name.to_os_string()));
    }
    let last = host
        .file_name()
        .filter(|_| !host.as_os_str().as_bytes().ends_with(b"/"))
        .ok_or_else(|| CopyError::BadPath {
            path: host.display().to_string(),
            why: "no such directory",
        })?;
    Ok((open_host_dir(parent_of(host))?, last.to_os_string()))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// A host directory the person running berth named: their path, followed
/// as they would follow it.
fn open_host_dir(path: &Path) -> Result<OwnedFd, CopyError> {
    fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open directory", &path.display().to_string()))
}

fn sys(syscall: &'static str, path: &str) -> impl FnOnce(Errno) -> CopyError {
    let path = path.to_string();
    move |errno| CopyError::Sys {
        syscall,
        path,
        source: errno.into(),
    }
}

fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

/// The entry `name` in `dir`, never following it.
fn lstat_at(at: &At) -> nix::Result<FileStat> {
    stat::fstatat(at.dir, at.name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Copies one entry of whichever kind, as it is (a link stays a link).
fn copy_entry(
    from: &At,
    to: &At,
    depth: usize,
    direction: Direction,
    copied: &mut Copied,
) -> Result<(), CopyError> {
    let stat = lstat_at(from).map_err(sys("stat", &from.shown))?;
    match file_type(&stat) {
        SFlag::S_IFREG => copy_file(from, to, &stat, direction, copied),
        SFlag::S_IFDIR => copy_dir(from, to, &stat, depth, direction, copied),
        SFlag::S_IFLNK => copy_link(from, to, direction, copied),
        _ => {
            copied.skipped.push(from.shown.clone());
            Ok(())
        }
    }
}

fn copy_file(
    from: &At,
    to: &At,
    stat: &FileStat,
    direction: Direction,
    copied: &mut Copied,
) -> Result<(), CopyError> {
    // O_NOFOLLOW: an entry swapped for a link since it was looked at is
    // not followed; O_NONBLOCK: one swapped for a fifo does not hang us.
    let source = fcntl::openat(
        from.dir,
        from.name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", &from.shown))?;
    let opened = stat::fstat(&source).map_err(sys("stat", &from.shown))?;
    if file_type(&opened) != SFlag::S_IFREG {
        copied.skipped.push(from.shown.clone());
        return Ok(());
    }
    clear_non_directory(to)?;
    let target = fcntl::openat(
        to.dir,
        to.name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(sys("create", &to.shown))?;
    let mut reader = File::from(source);
    let mut writer = File::from(target);
    let bytes = io::copy(&mut reader, &mut writer).map_err(|source| CopyError::Sys {
        syscall: "copy to",
        path: to.shown.clone(),
        source,
    })?;
    set_metadata(writer.as_fd(), stat, direction, &to.shown)?;
    copied.files += 1;
    copied.bytes += bytes;
    Ok(())
}

fn copy_dir(
    from: &At,
    to: &At,
    stat: &FileStat,
    depth: usize,
    direction: Direction,
    copied: &mut Copied,
) -> Result<(), CopyError> {
    if depth >= MAX_DEPTH {
        return Err(CopyError::TooDeep {
            path: from.shown.clone(),
            max: MAX_DEPTH,
        });
    }
    let source = fcntl::openat(
        from.dir,
        from.name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", &from.shown))?;
    let (target, made) = open_or_make_dir(to)?;
    for name in entry_names(&source, &from.shown)? {
        copy_entry(
            &At {
                dir: source.as_fd(),
                name: &name,
                shown: format!(
                    "{}/{}",
                    from.shown.trim_end_matches('/'),
                    name.to_string_lossy()
                ),
            },
            &At {
                dir: target.as_fd(),
                name: &name,
                shown: format!(
                    "{}/{}",
                    to.shown.trim_end_matches('/'),
                    name.to_string_lossy()
                ),
            },
            depth + 1,
            direction,
            copied,
        )?;
    }
    // Last, so that a read-only directory was writable while filled. A
    // directory that was there keeps its owner and mode.
    if made {
        set_metadata(target.as_fd(), stat, direction, &to.shown)?;
        copied.directories += 1;
    }
    Ok(())
}

/// The target directory, and whether it was made now: one already there
/// is copied into, anything else there is an error.
fn open_or_make_dir(to: &At) -> Result<(OwnedFd, bool), CopyError> {
    let made = match lstat_at(to) {
        Ok(existing) if file_type(&existing) == SFlag::S_IFDIR => false,
        Ok(_) => {
            return Err(CopyError::NotADirectory {
                path: to.shown.clone(),
            })
        }
        Err(Errno::ENOENT) => {
            stat::mkdirat(to.dir, to.name, Mode::from_bits_truncate(0o700))
                .map_err(sys("mkdir", &to.shown))?;
            true
        }
        Err(errno) => return Err(sys("stat", &to.shown)(errno)),
    };
    let dir = fcntl::openat(
        to.dir,
        to.name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", &to.shown))?;
    Ok((dir, made))
}

/// The names in directory `dir`, without `.` and `..`.
fn entry_names(dir: &OwnedFd, shown: &str) -> Result<Vec<OsString>, CopyError> {
    let own = dir.try_clone().map_err(|source| CopyError::Sys {
        syscall: "dup",
        path: shown.to_string(),
        source,
    })?;
    let mut listing = Dir::from_fd(own).map_err(sys("read directory", shown))?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry.map_err(sys("read directory", shown))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

fn copy_link(
    from: &At,
    to: &At,
    direction: Direction,
    copied: &mut Copied,
) -> Result<(), CopyError> {
    let target = fcntl::readlinkat(from.dir, from.name).map_err(sys("readlink", &from.shown))?;
    clear_non_directory(to)?;
    unistd::symlinkat(target.as_os_str(), to.dir, to.name).map_err(sys("symlink", &to.shown))?;
    if direction == Direction::In && owns_as_root() {
        unistd::fchownat(
            to.dir,
            to.name,
            Some(Uid::from_raw(0)),
            Some(Gid::from_raw(0)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(sys("chown", &to.shown))?;
    }
    copied.links += 1;
    Ok(())
}

/// Whether copies in are given to the container's root: berth runs as
/// root (containers need it); run by another user (its unit tests), the
/// copies stay that user's, who could not give them away.
fn owns_as_root() -> bool {
    unistd::geteuid().is_root()
}

/// Removes a file or link standing at the target's name (replaced, as
/// `cp` replaces it, but never written through); a directory there is an
/// error.
fn clear_non_directory(to: &At) -> Result<(), CopyError> {
    match lstat_at(to) {
        Ok(existing) if file_type(&existing) == SFlag::S_IFDIR => {
            Err(CopyError::WouldReplaceDirectory {
                path: to.shown.clone(),
            })
        }
        Ok(_) => unistd::unlinkat(to.dir, to.name, UnlinkatFlags::NoRemoveDir)
            .map_err(sys("remove", &to.shown)),
        Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(sys("stat", &to.shown)(errno)),
    }
}

/// The copy's owner, mode and modification time. In: the container's
/// root owns it, with the mode it had. Out: whoever runs berth owns it,
/// without set-uid and set-gid.
fn set_metadata(
    fd: BorrowedFd,
    stat: &FileStat,
    direction: Direction,
    shown: &str,
) -> Result<(), CopyError> {
    let mode = match direction {
        Direction::In => {
            if owns_as_root() {
                unistd::fchown(fd, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
                    .map_err(sys("chown", shown))?;
            }
            stat.st_mode & 0o7777
        }
        Direction::Out => stat.st_mode & 0o1777,
    };
    stat::fchmod(fd, Mode::from_bits_truncate(mode)).map_err(sys("chmod", shown))?;
    let accessed = TimeSpec::new(stat.st_atime, stat.st_atime_nsec);
    let modified = TimeSpec::new(stat.st_mtime, stat.st_mtime_nsec);
    stat::futimens(fd, &accessed, &modified).map_err(sys("set times of", shown))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    /// A root filesystem with a hostile link, and the "host" around it.
    struct Rig {
        temp: tempfile::TempDir,
    }

    impl Rig {
        fn new() -> Rig {
            let temp = tempfile::tempdir().unwrap();
            let root = temp.path().join("rootfs");
            fs::create_dir_all(root.join("etc")).unwrap();
            fs::create_dir_all(root.join("tmp")).unwrap();
            fs::write(root.join("etc/shadow"), "container shadow\n").unwrap();
            // Outside the container's root: the "host's" secret.
            fs::create_dir_all(temp.path().join("etc")).unwrap();
            fs::write(temp.path().join("etc/shadow"), "host shadow\n").unwrap();
            symlink("../../../../etc", root.join("tmp/up")).unwrap();
            symlink("/", root.join("tmp/slash")).unwrap();
            Rig { temp }
        }

        fn root(&self) -> PathBuf {
            self.temp.path().join("rootfs")
        }

        fn fs(&self) -> ContainerFs {
            ContainerFs::open(&self.root()).unwrap()
        }

        fn out(&self) -> PathBuf {
            let out = self.temp.path().join("out");
            fs::create_dir_all(&out).unwrap();
            out
        }
    }

    #[test]
    fn a_link_climbing_out_resolves_inside_the_root() {
        let rig = Rig::new();
        let out = rig.out();
        rig.fs().copy_out("/tmp/up/shadow", &out).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("shadow")).unwrap(),
            "container shadow\n"
        );
    }

    #[test]
    fn writing_through_a_link_to_slash_lands_in_the_container() {
        let rig = Rig::new();
        let source = rig.temp.path().join("x");
        fs::write(&source, "data").unwrap();
        rig.fs().copy_in(&source, "/tmp/slash/etc/x").unwrap();
        assert_eq!(fs::read(rig.root().join("etc/x")).unwrap(), b"data");
        assert!(!rig.temp.path().join("etc/x").exists());
    }

    #[test]
    fn a_link_is_copied_as_a_link_and_a_link_at_the_target_is_replaced_not_followed() {
        let rig = Rig::new();
        let out = rig.out();
        rig.fs().copy_out("/tmp/slash", &out).unwrap();
        assert_eq!(fs::read_link(out.join("slash")).unwrap(), Path::new("/"));
        // The container plants /tmp/trap -> the host's shadow; a copy onto
        // it replaces the link.
        let host_secret = rig.temp.path().join("etc/shadow");
        symlink(&host_secret, rig.root().join("tmp/trap")).unwrap();
        let source = rig.temp.path().join("payload");
        fs::write(&source, "payload").unwrap();
        rig.fs().copy_in(&source, "/tmp/trap").unwrap();
        assert_eq!(fs::read_to_string(&host_secret).unwrap(), "host shadow\n");
        assert_eq!(fs::read(rig.root().join("tmp/trap")).unwrap(), b"payload");
        assert!(!fs::symlink_metadata(rig.root().join("tmp/trap"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_tree_goes_in_with_its_modes_and_comes_out_the_same() {
        let rig = Rig::new();
        let tree = rig.temp.path().join("tree");
        fs::create_dir_all(tree.join("sub/deeper")).unwrap();
        fs::write(tree.join("a"), "alpha").unwrap();
        fs::write(tree.join("sub/deeper/b"), "beta").unwrap();
        fs::set_permissions(tree.join("a"), fs::Permissions::from_mode(0o751)).unwrap();
        symlink("a", tree.join("link")).unwrap();
        let copied = rig.fs().copy_in(&tree, "/tmp").unwrap();
        assert_eq!(
            (copied.files, copied.directories, copied.links, copied.bytes),
            (2, 3, 1, 9)
        );
        let inside = rig.root().join("tmp/tree");
        assert_eq!(fs::read(inside.join("sub/deeper/b")).unwrap(), b"beta");
        let mode = fs::metadata(inside.join("a")).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o751);
        let out = rig.out();
        rig.fs().copy_out("/tmp/tree/", &out.join("back")).unwrap();
        assert_eq!(fs::read(out.join("back/a")).unwrap(), b"alpha");
        assert_eq!(
            fs::read_link(out.join("back/link")).unwrap(),
            Path::new("a")
        );
    }

    #[test]
    fn set_uid_is_dropped_on_the_way_out() {
        let rig = Rig::new();
        fs::write(rig.root().join("etc/su"), "x").unwrap();
        fs::set_permissions(
            rig.root().join("etc/su"),
            fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        let out = rig.out();
        rig.fs().copy_out("/etc/su", &out).unwrap();
        let mode = fs::metadata(out.join("su")).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o755);
    }

    #[test]
    fn nesting_deeper_than_the_bound_is_refused() {
        let rig = Rig::new();
        let mut deep = rig.root().join("tmp/deep");
        for _ in 0..MAX_DEPTH + 1 {
            deep.push("d");
        }
        fs::create_dir_all(&deep).unwrap();
        let error = rig.fs().copy_out("/tmp/deep", &rig.out()).unwrap_err();
        assert!(matches!(error, CopyError::TooDeep { .. }), "{error}");
    }

    #[test]
    fn paths_without_a_name_are_refused() {
        for path in ["/", "relative", "/tmp/..", "/tmp/."] {
            let error = split_container_path(path).unwrap_err();
            assert!(
                matches!(error, CopyError::BadPath { .. }),
                "{path}: {error}"
            );
        }
        assert_eq!(
            split_container_path("/x/").unwrap(),
            ("/".to_string(), OsString::from("x"))
        );
    }
}
