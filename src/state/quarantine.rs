//! Quarantine: a record of berth's own that does not parse is moved aside,
//! never deleted and never followed, so that one corrupt file costs one
//! object and not every command.
//!
//! A quarantined file keeps its directory and gets a suffix:
//! `<file>.corrupt-<unix-secs>` (then `-1`, `-2`, ... when a file of that
//! second is there already). The stores list only their own names
//! (`<key>.json`), so a quarantined file is never read as a record again;
//! it stays for whoever wants to see what went wrong.
//!
//! The move is race-free against berth's own writers, which replace a
//! record by renaming a new file over it: the reader passes the identity
//! (device and inode) of the file it found corrupt, and a file that is no
//! longer that one (a writer replaced it meanwhile) is left where it is.
//! Every step works on the descriptor of the directory, opened without
//! following a link, and the rename never replaces anything.

use std::fs::{File, Metadata};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fstatat, Mode};

/// What marks a quarantined file's name.
pub const MARK: &str = ".corrupt-";

/// How many names of one second are tried before giving up.
const MAX_SAME_SECOND: u32 = 100;

/// Which file a reader read: a replacement has another inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    pub fn of(metadata: &Metadata) -> Self {
        FileIdentity {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }

    fn of_stat(stat: &nix::sys::stat::FileStat) -> Self {
        FileIdentity {
            dev: stat.st_dev,
            ino: stat.st_ino,
        }
    }
}

/// What became of a file given to [`quarantine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quarantine {
    /// Moved aside to this path.
    Moved(PathBuf),
    /// A writer replaced it after it was read: nothing was moved; read it again.
    Replaced,
    /// It is gone already.
    Gone,
}

/// The name `name` gets in quarantine: `NAME.corrupt-SECS`, with `-N` for
/// the `n`th more of the same second.
pub fn quarantined_name(name: &str, unix_secs: u64, n: u32) -> String {
    match n {
        0 => format!("{name}{MARK}{unix_secs}"),
        n => format!("{name}{MARK}{unix_secs}-{n}"),
    }
}

/// Whether `file_name` is a quarantined copy of `name`.
pub fn is_quarantined_copy(file_name: &str, name: &str) -> bool {
    file_name
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(MARK))
        .is_some_and(|stamp| {
            !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '-')
        })
}

/// The quarantined copies of `path` in its directory, oldest first.
pub fn quarantined_copies(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let mut copies: Vec<(u64, u32, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let file_name = entry.file_name().to_string_lossy().into_owned();
                    if !is_quarantined_copy(&file_name, &name) {
                        return None;
                    }
                    let stamp = &file_name[name.len() + MARK.len()..];
                    let (secs, n) = stamp.split_once('-').unwrap_or((stamp, "0"));
                    Some((secs.parse().ok()?, n.parse().ok()?, entry.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    copies.sort();
    copies.into_iter().map(|(_, _, path)| path).collect()
}

/// Seconds since the epoch, for quarantined names.
pub fn now_unix_secs() -> u64 {
    super::clock::unix_ms() / 1000
}

fn errno_at(path: &Path) -> impl Fn(Errno) -> io::Error + '_ {
    move |errno| {
        io::Error::new(
            io::Error::from(errno).kind(),
            format!("quarantine {}: {errno}", path.display()),
        )
    }
}

/// Moves `path` aside (see the module docs) if it is still the file
/// `seen`, naming it by `unix_secs`.
pub fn quarantine(path: &Path, seen: FileIdentity, unix_secs: u64) -> io::Result<Quarantine> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("quarantine {}: not a file in a directory", path.display()),
        ));
    };
    let dir: OwnedFd = open(
        parent,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(errno_at(path))?;
    let identity_of = |name: &Path| {
        fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map(|s| FileIdentity::of_stat(&s))
    };
    match identity_of(Path::new(name)) {
        Err(Errno::ENOENT) => return Ok(Quarantine::Gone),
        Err(errno) => return Err(errno_at(path)(errno)),
        Ok(now) if now != seen => return Ok(Quarantine::Replaced),
        Ok(_) => {}
    }
    let target = move_aside(&dir, path, name.to_string_lossy().as_ref(), unix_secs)?;
    let Some(target) = target else {
        return Ok(Quarantine::Gone);
    };
    let target_name = target.file_name().unwrap_or_default().to_owned();
    if identity_of(Path::new(&target_name)).map_err(errno_at(path))? != seen {
        // A writer renamed its record into place between the check and the
        // move: that one is good, so it goes back (unless an even newer one
        // is there by now, which makes it stale).
        let _ = renameat2(
            &dir,
            target_name.as_os_str(),
            &dir,
            name,
            RenameFlags::RENAME_NOREPLACE,
        );
        return Ok(Quarantine::Replaced);
    }
    // The move survives a crash as the record's writes do.
    File::from(dir).sync_all()?;
    Ok(Quarantine::Moved(target))
}

/// Renames `name` in `dir` to its first free quarantined name; None when
/// it vanished meanwhile.
fn move_aside(
    dir: &OwnedFd,
    path: &Path,
    name: &str,
    unix_secs: u64,
) -> io::Result<Option<PathBuf>> {
    for n in 0..MAX_SAME_SECOND {
        let target = quarantined_name(name, unix_secs, n);
        match renameat2(
            dir,
            name,
            dir,
            target.as_str(),
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => return Ok(Some(path.with_file_name(target))),
            Err(Errno::EEXIST) => continue,
            Err(Errno::ENOENT) => return Ok(None),
            Err(errno) => return Err(errno_at(path)(errno)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "quarantine {}: {MAX_SAME_SECOND} quarantined copies of this second exist already",
            path.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn identity(path: &Path) -> FileIdentity {
        FileIdentity::of(&fs::symlink_metadata(path).unwrap())
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_with_its_second_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.json");
        fs::write(&path, "{ torn").unwrap();
        let moved = quarantine(&path, identity(&path), 1700).unwrap();
        let expected = dir.path().join("web.json.corrupt-1700");
        assert_eq!(moved, Quarantine::Moved(expected.clone()));
        assert!(!path.exists());
        assert_eq!(fs::read_to_string(&expected).unwrap(), "{ torn");
    }

    #[test]
    fn a_second_quarantine_in_the_same_second_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.json");
        for content in ["one", "two", "three"] {
            fs::write(&path, content).unwrap();
            quarantine(&path, identity(&path), 1700).unwrap();
        }
        let copies = quarantined_copies(&path);
        let names: Vec<String> = copies
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "web.json.corrupt-1700",
                "web.json.corrupt-1700-1",
                "web.json.corrupt-1700-2"
            ]
        );
        assert_eq!(fs::read_to_string(&copies[2]).unwrap(), "three");
    }

    #[test]
    fn a_file_a_writer_replaced_after_the_read_stays_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.json");
        fs::write(&path, "{ torn").unwrap();
        let seen = identity(&path);
        // What berth's atomic writes do: a new file renamed over the old.
        let temp = dir.path().join(".web.json.tmp");
        fs::write(&temp, "{}").unwrap();
        fs::rename(&temp, &path).unwrap();
        assert_eq!(quarantine(&path, seen, 1700).unwrap(), Quarantine::Replaced);
        assert_eq!(fs::read_to_string(&path).unwrap(), "{}");
        assert!(quarantined_copies(&path).is_empty());
    }

    #[test]
    fn a_file_gone_already_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.json");
        fs::write(&path, "x").unwrap();
        let seen = identity(&path);
        fs::remove_file(&path).unwrap();
        assert_eq!(quarantine(&path, seen, 1).unwrap(), Quarantine::Gone);
    }

    #[test]
    fn a_link_in_place_of_the_directory_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("web.json"), "x").unwrap();
        let seen = identity(&real.join("web.json"));
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        assert!(quarantine(&dir.path().join("link/web.json"), seen, 1).is_err());
        assert!(real.join("web.json").exists());
    }

    #[test]
    fn quarantined_copies_are_told_from_other_names() {
        assert!(is_quarantined_copy("volume.json.corrupt-17", "volume.json"));
        assert!(is_quarantined_copy(
            "volume.json.corrupt-17-2",
            "volume.json"
        ));
        assert!(!is_quarantined_copy("volume.json", "volume.json"));
        assert!(!is_quarantined_copy("volume.json.corrupt-", "volume.json"));
        assert!(!is_quarantined_copy("volume.json.corrupt-x", "volume.json"));
        assert!(!is_quarantined_copy("other.json.corrupt-17", "volume.json"));
    }
}
