//! Opens and creates beneath berth's own directories that follow no
//! symbolic link. Nothing berth keeps under `--root` or `--state` is ever a
//! link: one found there was planted (or left by corruption), and following
//! it would let whoever planted it choose where root writes. So each path is
//! walked one component at a time from a trusted base with `O_NOFOLLOW`
//! (race-free: every step is relative to the descriptor of the step before),
//! and a link anywhere on the way is an error naming its path.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

/// The error for a symbolic link found where berth keeps its own state.
pub fn planted_link(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is a symbolic link or not a directory where berth keeps its own state: \
             berth follows no links there (corrupt or tampered state; remove it)",
            path.display()
        ),
    )
}

/// The components of `path` below `base`, or an error when `path` is not
/// beneath it or climbs out with `..`.
fn components_beneath<'a>(base: &Path, path: &'a Path) -> io::Result<Vec<&'a Path>> {
    let rest = path.strip_prefix(base).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not beneath {}", path.display(), base.display()),
        )
    })?;
    rest.components()
        .map(|component| match component {
            Component::Normal(name) => Ok(Path::new(name)),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} leaves {}", path.display(), base.display()),
            )),
        })
        .collect()
}

fn open_base(base: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        base,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    );
    fd.map_err(|errno| at_error(errno, base))
}

/// Maps the errno of a no-follow step to an error naming `path`.
fn at_error(errno: Errno, path: &Path) -> io::Error {
    match errno {
        Errno::ELOOP | Errno::ENOTDIR => planted_link(path),
        other => io::Error::new(
            io::Error::from(other).kind(),
            format!("{}: {other}", path.display()),
        ),
    }
}

fn open_dir_at(dir: impl AsFd, name: &Path) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
}

/// Walks from `base` through `names`, creating missing directories when
/// `create` is set (0700, the last one `mode`); returns the last directory's
/// descriptor.
fn walk(base: &Path, names: &[&Path], create: bool, mode: u32) -> io::Result<OwnedFd> {
    let mut dir = open_base(base)?;
    let mut shown = base.to_path_buf();
    for (i, name) in names.iter().enumerate() {
        shown.push(name);
        let mode = if i + 1 == names.len() { mode } else { 0o700 };
        let next = match open_dir_at(&dir, name) {
            Err(Errno::ENOENT) if create => {
                match mkdirat(&dir, *name, Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(at_error(errno, &shown)),
                }
                open_dir_at(&dir, name)
            }
            other => other,
        };
        dir = next.map_err(|errno| at_error(errno, &shown))?;
    }
    Ok(dir)
}

/// Creates `path` (mode `mode`) and its missing parents (0700) beneath
/// `base`, refusing a link on the way or in its place.
pub fn create_dir_beneath(base: &Path, path: &Path, mode: u32) -> io::Result<()> {
    let names = components_beneath(base, path)?;
    walk(base, &names, true, mode).map(drop)
}

/// Fails, naming it, when any component of `path` below `base` (the last
/// one too) is a symbolic link. A missing component is fine: nothing there
/// can redirect a write that creates it through these functions.
pub fn refuse_links_beneath(base: &Path, path: &Path) -> io::Result<()> {
    let names = components_beneath(base, path)?;
    let Some((last, parents)) = names.split_last() else {
        return open_base(base).map(drop);
    };
    let dir = match walk(base, parents, false, 0) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    match nix::sys::stat::fstatat(&dir, *last, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if stat.st_mode & libc::S_IFMT == libc::S_IFLNK => Err(planted_link(path)),
        Ok(_) | Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(at_error(errno, path)),
    }
}

/// Opens the directory `path` beneath `base` without following a link on
/// the way or in its place, creating it and its missing parents (0700)
/// when `create` is set; for a store that works on its files relative to
/// its directory's descriptor ([`open_in`], `renameat`), so a link planted
/// between two steps redirects nothing.
pub fn open_dir_beneath(base: &Path, path: &Path, create: bool) -> io::Result<OwnedFd> {
    let names = components_beneath(base, path)?;
    walk(base, &names, create, 0o700)
}

/// How [`open_beneath`] opens the last component.
#[derive(Debug, Clone, Copy)]
pub enum Open {
    Read,
    /// Append, creating the file with the given mode when missing.
    AppendOrCreate(u32),
    /// Read and append (a log that reads its own tail before it appends),
    /// creating the file with the given mode when missing.
    ReadAppendOrCreate(u32),
    /// Truncate and write an existing file in place (it may be a bind
    /// mount's source, which a rename would cut off).
    Overwrite,
}

/// Opens `path` for appending, creating it with `mode`, refusing a link in
/// its last component: for files in a directory berth made (and checked)
/// beneath its own root.
pub fn open_append_nofollow(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => planted_link(path),
            _ => e,
        })
}

/// Opens the file `path` beneath `base` without following a link anywhere
/// on the way, creating missing parent directories (0700) for an append.
pub fn open_beneath(base: &Path, path: &Path, how: Open) -> io::Result<File> {
    let names = components_beneath(base, path)?;
    let Some((last, parents)) = names.split_last() else {
        return Err(planted_link(path));
    };
    let create = matches!(how, Open::AppendOrCreate(_) | Open::ReadAppendOrCreate(_));
    let dir = walk(base, parents, create, 0o700)?;
    open_in(&dir, last, how, path)
}

/// Opens the file `name` in the directory `dir` (from [`open_dir_beneath`])
/// without following a link in its place; `shown` is its path, for errors.
pub fn open_in(dir: &OwnedFd, name: &Path, how: Open, shown: &Path) -> io::Result<File> {
    let common = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let append = OFlag::O_APPEND | OFlag::O_CREAT;
    let (flags, mode) = match how {
        Open::Read => (OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0),
        Open::AppendOrCreate(mode) => (OFlag::O_WRONLY | append, mode),
        Open::ReadAppendOrCreate(mode) => (OFlag::O_RDWR | append, mode),
        Open::Overwrite => (OFlag::O_WRONLY | OFlag::O_TRUNC, 0),
    };
    let fd = openat(dir, name, common | flags, Mode::from_bits_truncate(mode))
        .map_err(|errno| at_error(errno, shown))?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", shown.display()),
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::{symlink, MetadataExt};

    use super::*;

    #[test]
    fn directories_are_created_with_their_mode() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("a/b/c");
        create_dir_beneath(base.path(), &path, 0o700).unwrap();
        create_dir_beneath(base.path(), &path, 0o700).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_link_on_the_way_is_named_and_not_followed() {
        let base = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        symlink(elsewhere.path(), base.path().join("a")).unwrap();
        let error = create_dir_beneath(base.path(), &base.path().join("a/b"), 0o700).unwrap_err();
        assert!(
            error.to_string().contains("/a is a symbolic link"),
            "{error}"
        );
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        let error = open_beneath(
            base.path(),
            &base.path().join("a/log"),
            Open::AppendOrCreate(0o600),
        )
        .unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        assert!(refuse_links_beneath(base.path(), &base.path().join("a")).is_err());
        assert!(refuse_links_beneath(base.path(), &base.path().join("a/x/y")).is_err());
    }

    #[test]
    fn a_link_in_place_of_the_file_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("target");
        std::fs::write(&target, "secret").unwrap();
        symlink(&target, base.path().join("log")).unwrap();
        let path = base.path().join("log");
        assert!(open_beneath(base.path(), &path, Open::Read).is_err());
        assert!(open_beneath(base.path(), &path, Open::AppendOrCreate(0o600)).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret");
    }

    #[test]
    fn files_are_created_appended_and_read_beneath() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("events/container-web.jsonl");
        for line in ["one\n", "two\n"] {
            open_beneath(base.path(), &path, Open::AppendOrCreate(0o600))
                .unwrap()
                .write_all(line.as_bytes())
                .unwrap();
        }
        let mut text = String::new();
        open_beneath(base.path(), &path, Open::Read)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\n");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(refuse_links_beneath(base.path(), &path).is_ok());
        assert!(refuse_links_beneath(base.path(), &base.path().join("missing/x")).is_ok());
    }

    #[test]
    fn paths_outside_the_base_are_refused() {
        let base = tempfile::tempdir().unwrap();
        assert!(create_dir_beneath(base.path(), Path::new("/etc/x"), 0o700).is_err());
        let climbing = base.path().join("a/../../x");
        assert!(create_dir_beneath(base.path(), &climbing, 0o700).is_err());
    }
}
