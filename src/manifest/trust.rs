//! The trust check: berth acts as root on what manifests say, so whoever can
//! change a manifest, a file it names, or any directory above either of them
//! decides what root runs.
//!
//! Paths are resolved here one component at a time from `/`, each directory
//! opened without following symlinks and checked on its descriptor before
//! anything inside it is looked up (the rule of sshd's StrictModes, applied
//! top-down so that there is no window between check and use). A symlink met
//! on the way is read and its target resolved the same way, so a link is only
//! as good as where it points. A file is read from the descriptor that was
//! checked, never reopened by path.
//!
//! The rule for every file and directory on the way: owned by root or by the
//! invoking user (`SUDO_UID`, who can run berth as root anyway), and neither
//! group- nor world-writable. A sticky world-writable directory such as /tmp
//! is not trusted: any user can create names in it.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};

/// As the kernel's own limit: more links than this on one path is a loop.
const MAX_SYMLINKS: usize = 40;

/// Whose files berth trusts: root's always, and the invoking user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrustPolicy {
    invoking_uid: Option<u32>,
}

impl TrustPolicy {
    /// Trusts files owned by root only.
    pub const ROOT_ONLY: TrustPolicy = TrustPolicy { invoking_uid: None };

    /// Trusts files owned by root or by `uid`, the user who invoked berth.
    pub fn with_invoking_user(uid: u32) -> Self {
        TrustPolicy {
            invoking_uid: (uid != 0).then_some(uid),
        }
    }

    /// The policy for a root process given the value of `SUDO_UID` (absent
    /// or unparsable: root only).
    pub fn from_sudo_uid(sudo_uid: Option<&str>) -> Self {
        sudo_uid
            .and_then(|uid| uid.trim().parse().ok())
            .map_or(Self::ROOT_ONLY, Self::with_invoking_user)
    }

    pub fn trusts_owner(&self, uid: u32) -> bool {
        uid == 0 || self.invoking_uid == Some(uid)
    }

    /// What is wrong with an object of this owner and mode, if anything.
    pub fn fault(&self, uid: u32, gid: u32, mode: u32) -> Option<Fault> {
        let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
        if !self.trusts_owner(uid) {
            return Some(Fault::Owner {
                uid,
                trusted: self.owners(),
            });
        }
        if mode & 0o002 != 0 {
            return Some(if is_dir && mode & 0o1000 != 0 {
                Fault::Sticky
            } else {
                Fault::WorldWritable
            });
        }
        if mode & 0o020 != 0 {
            return Some(Fault::GroupWritable { gid });
        }
        None
    }

    /// Checks one opened object.
    pub fn check(&self, path: &Path, metadata: &Metadata) -> Result<(), TrustError> {
        match self.fault(metadata.uid(), metadata.gid(), metadata.mode()) {
            None => Ok(()),
            Some(fault) => Err(TrustError::Untrusted {
                path: path.to_path_buf(),
                what: what_is(metadata),
                mode: metadata.permissions().mode() & 0o7777,
                fault,
            }),
        }
    }

    fn owners(&self) -> String {
        match self.invoking_uid {
            Some(uid) => format!("root or uid {uid} (SUDO_UID)"),
            None => "root".into(),
        }
    }
}

/// Why an object is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Owner {
        uid: u32,
        trusted: String,
    },
    GroupWritable {
        gid: u32,
    },
    WorldWritable,
    /// World-writable with the sticky bit, as /tmp.
    Sticky,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{}", untrusted_message(.what, .path, *.mode, .fault))]
    Untrusted {
        path: PathBuf,
        what: &'static str,
        mode: u32,
        fault: Fault,
    },
    #[error("too many levels of symlinks at {} (a symlink cycle)", .link.display())]
    TooManyLinks { link: PathBuf },
    #[error("cannot open {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl TrustError {
    /// Whether the path does not exist (then there is nothing to trust, and
    /// every directory above the missing name was checked).
    pub fn is_not_found(&self) -> bool {
        matches!(self, TrustError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    fn io(path: PathBuf, errno: Errno) -> Self {
        TrustError::Io {
            path,
            source: std::io::Error::from(errno),
        }
    }
}

fn untrusted_message(what: &str, path: &Path, mode: u32, fault: &Fault) -> String {
    let path = path.display();
    match fault {
        Fault::Owner { uid, trusted } => format!(
            "{what} {path} is owned by uid {uid}, not {trusted}: that user could change what berth runs as root (fix: chown root {path})"
        ),
        Fault::GroupWritable { gid } => format!(
            "{what} {path} is group-writable (mode {mode:04o}): members of group {gid} could change what berth runs as root (fix: chmod go-w {path})"
        ),
        Fault::WorldWritable => format!(
            "{what} {path} is world-writable (mode {mode:04o}): any local user could change what berth runs as root (fix: chmod go-w {path})"
        ),
        Fault::Sticky => format!(
            "{what} {path} is world-writable with the sticky bit (mode {mode:04o}), as /tmp is: any local user can create names in it (fix: keep manifests and the files they name in a directory that only root can write, such as one under /etc or /srv)"
        ),
    }
}

fn what_is(metadata: &Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_dir() {
        "directory"
    } else if kind.is_file() {
        "file"
    } else if kind.is_symlink() {
        "symlink"
    } else {
        "special file"
    }
}

/// One directory on a resolved path, opened (`O_PATH`) and checked.
#[derive(Debug)]
pub struct DirHandle {
    fd: OwnedFd,
    /// The physical path, for messages and as the base of relative paths.
    pub path: PathBuf,
    /// (device, inode): the directory's identity.
    pub id: (u64, u64),
}

/// The directories from `/` down to one directory, each opened and checked
/// before the next was looked up in it.
#[derive(Debug, Clone)]
pub struct DirChain(Vec<Rc<DirHandle>>);

impl DirChain {
    pub fn top(&self) -> &DirHandle {
        // A chain always holds `/` at least.
        &self.0[self.0.len() - 1]
    }

    /// Whether the directory `id` is on this chain: an ancestor of (or) its top.
    pub fn contains(&self, id: (u64, u64)) -> bool {
        self.0.iter().any(|dir| dir.id == id)
    }

    /// Opens the top directory for listing (a fresh descriptor of the same,
    /// already checked directory).
    pub fn list(&self) -> Result<Vec<OsString>, TrustError> {
        let top = self.top();
        let mut dir = nix::dir::Dir::openat(
            top.fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| TrustError::io(top.path.clone(), e))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| TrustError::io(top.path.clone(), e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                names.push(name.to_os_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// How `name` in the top directory looks without following it: whether
    /// it is a symlink, and (following it, unchecked) whether it leads to a
    /// directory. Only for deciding what a walk looks at; nothing is trusted
    /// on this basis.
    pub fn peek(&self, name: &OsStr) -> Result<Peek, TrustError> {
        let top = self.top();
        let stat = fstatat(top.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| TrustError::io(top.path.join(name), e))?;
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        let is_link = kind == SFlag::S_IFLNK;
        let leads_to_dir = if is_link {
            fstatat(top.fd.as_fd(), name, AtFlags::empty())
                .map(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
                .unwrap_or(false)
        } else {
            kind == SFlag::S_IFDIR
        };
        Ok(Peek {
            is_link,
            leads_to_dir,
        })
    }

    /// The target of the symlink `name` in the top directory, for messages.
    pub fn link_target(&self, name: &OsStr) -> Option<PathBuf> {
        readlinkat(self.top().fd.as_fd(), name)
            .ok()
            .map(PathBuf::from)
    }
}

/// See [`DirChain::peek`].
#[derive(Debug, Clone, Copy)]
pub struct Peek {
    pub is_link: bool,
    pub leads_to_dir: bool,
}

/// The object a path resolved to: opened without following symlinks
/// (`O_PATH`), checked, with the chain of directories above it.
#[derive(Debug)]
pub struct Resolved {
    fd: OwnedFd,
    /// The directories above the object (for `/` itself: `/`).
    pub parent: DirChain,
    /// Its name in `parent`'s top directory (None for a directory reached by `..` or `/`).
    name: Option<OsString>,
    /// The physical path.
    pub path: PathBuf,
    pub metadata: Metadata,
}

impl Resolved {
    pub fn id(&self) -> (u64, u64) {
        (self.metadata.dev(), self.metadata.ino())
    }

    /// The chain down to this directory, to walk it.
    pub fn into_dir_chain(self) -> Result<DirChain, TrustError> {
        if !self.metadata.is_dir() {
            return Err(TrustError::io(self.path, Errno::ENOTDIR));
        }
        let id = self.id();
        let mut chain = self.parent;
        if chain.top().id != id {
            chain.0.push(Rc::new(DirHandle {
                fd: self.fd,
                path: self.path,
                id,
            }));
        }
        Ok(chain)
    }

    /// Opens the resolved regular file for reading. The descriptor is opened
    /// in the checked parent directory without following symlinks and must
    /// be the very file that was checked; it is checked again itself.
    pub fn open_file(&self, policy: Option<TrustPolicy>) -> Result<CheckedFile, OpenError> {
        if !self.metadata.is_file() {
            return Err(OpenError::NotRegular);
        }
        let Some(name) = &self.name else {
            return Err(OpenError::NotRegular);
        };
        let fd = openat(
            self.parent.top().fd.as_fd(),
            name.as_os_str(),
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| OpenError::Trust(TrustError::io(self.path.clone(), e)))?;
        let file = File::from(fd);
        let metadata = file.metadata().map_err(|source| {
            OpenError::Trust(TrustError::Io {
                path: self.path.clone(),
                source,
            })
        })?;
        if (metadata.dev(), metadata.ino()) != self.id() || !metadata.is_file() {
            return Err(OpenError::Replaced);
        }
        if let Some(policy) = policy {
            policy
                .check(&self.path, &metadata)
                .map_err(OpenError::Trust)?;
        }
        Ok(CheckedFile { file, metadata })
    }
}

/// A regular file opened for reading, whose descriptor passed the check.
#[derive(Debug)]
pub struct CheckedFile {
    file: File,
    pub metadata: Metadata,
}

impl CheckedFile {
    /// Reads at most `limit` bytes from the checked descriptor; a longer file
    /// is an error carrying its length.
    pub fn read_bounded(mut self, limit: u64) -> Result<Vec<u8>, OpenError> {
        if self.metadata.len() > limit {
            return Err(OpenError::TooLarge(self.metadata.len()));
        }
        // Sized from the checked length: read in one call, not in probes
        // from 32 bytes up.
        let mut bytes = Vec::with_capacity(self.metadata.len() as usize);
        (&mut self.file)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(OpenError::Read)?;
        if bytes.len() as u64 > limit {
            return Err(OpenError::TooLarge(bytes.len() as u64));
        }
        Ok(bytes)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Trust(TrustError),
    #[error("not a regular file")]
    NotRegular,
    #[error("the file was replaced while it was being opened")]
    Replaced,
    #[error("file is {0} bytes")]
    TooLarge(u64),
    #[error("cannot read: {0}")]
    Read(std::io::Error),
}

/// Resolves paths from `/`, checking every object on the way when a policy
/// is given (without one, the same walk runs with no owner or mode checks).
#[derive(Debug, Clone, Copy)]
pub struct Resolver {
    pub policy: Option<TrustPolicy>,
}

impl Resolver {
    pub fn new(policy: Option<TrustPolicy>) -> Self {
        Resolver { policy }
    }

    /// The chain holding `/` alone.
    pub fn root(&self) -> Result<DirChain, TrustError> {
        let root = Path::new("/");
        let fd = nix::fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| TrustError::io(root.into(), e))?;
        let (fd, metadata) = self.checked(fd, root)?;
        Ok(DirChain(vec![Rc::new(DirHandle {
            fd,
            path: root.into(),
            id: (metadata.dev(), metadata.ino()),
        })]))
    }

    /// Resolves an absolute path, or a relative one against the current directory.
    pub fn resolve(&self, path: &Path) -> Result<Resolved, TrustError> {
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|source| TrustError::Io {
                    path: ".".into(),
                    source,
                })?
                .join(path)
        };
        let root = self.root()?;
        self.resolve_in(&root, root.clone(), &absolute)
    }

    /// Resolves `path` relative to the top of `start` (absolute paths and
    /// absolute symlink targets restart at `root`).
    pub fn resolve_in(
        &self,
        root: &DirChain,
        start: DirChain,
        path: &Path,
    ) -> Result<Resolved, TrustError> {
        let mut chain = start;
        let mut queue: VecDeque<Step> = steps(path).collect();
        let mut links = 0;
        while let Some(step) = queue.pop_front() {
            let name = match step {
                Step::Root => {
                    chain = root.clone();
                    continue;
                }
                Step::Up => {
                    if chain.0.len() > 1 {
                        chain.0.pop();
                    }
                    continue;
                }
                Step::Name(name) => name,
            };
            let top = chain.top();
            let here = top.path.join(&name);
            let stat = fstatat(
                top.fd.as_fd(),
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| TrustError::io(here.clone(), e))?;
            if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(TrustError::TooManyLinks { link: here });
                }
                let target = readlinkat(top.fd.as_fd(), name.as_os_str())
                    .map_err(|e| TrustError::io(here.clone(), e))?;
                for step in steps(Path::new(&target))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    queue.push_front(step);
                }
                continue;
            }
            // O_PATH|O_NOFOLLOW opens the name itself: should it have become
            // a symlink since the look above, the type check below refuses it.
            let fd = openat(
                top.fd.as_fd(),
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| TrustError::io(here.clone(), e))?;
            let (fd, metadata) = self.checked(fd, &here)?;
            if metadata.file_type().is_symlink() {
                return Err(TrustError::io(here, Errno::ELOOP));
            }
            if queue.is_empty() {
                return Ok(Resolved {
                    fd,
                    parent: chain,
                    name: Some(name),
                    path: here,
                    metadata,
                });
            }
            if !metadata.is_dir() {
                return Err(TrustError::io(here, Errno::ENOTDIR));
            }
            let id = (metadata.dev(), metadata.ino());
            chain.0.push(Rc::new(DirHandle { fd, path: here, id }));
        }
        // The path ended at a directory already on the chain (`/`, `..`, `.`).
        let top = chain.top();
        let fd = top.fd.try_clone().map_err(|source| TrustError::Io {
            path: top.path.clone(),
            source,
        })?;
        let path = top.path.clone();
        let metadata = File::from(fd.try_clone().map_err(|source| TrustError::Io {
            path: path.clone(),
            source,
        })?)
        .metadata()
        .map_err(|source| TrustError::Io {
            path: path.clone(),
            source,
        })?;
        let parent = if chain.0.len() > 1 {
            DirChain(chain.0[..chain.0.len() - 1].to_vec())
        } else {
            chain.clone()
        };
        Ok(Resolved {
            fd,
            parent,
            name: None,
            path,
            metadata,
        })
    }

    /// fstat of an opened descriptor, and the policy's verdict on it.
    fn checked(&self, fd: OwnedFd, path: &Path) -> Result<(OwnedFd, Metadata), TrustError> {
        let file = File::from(fd);
        let metadata = file.metadata().map_err(|source| TrustError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(policy) = self.policy {
            policy.check(path, &metadata)?;
        }
        Ok((OwnedFd::from(file), metadata))
    }
}

/// Checks a file a manifest refers to (and every directory above it, and
/// every symlink's target on the way). A path that does not exist passes:
/// every directory above the missing name was checked, so nobody untrusted
/// can create it, and whoever uses the path reports it missing.
pub fn check_path(policy: TrustPolicy, path: &Path) -> Result<Option<Resolved>, TrustError> {
    match Resolver::new(Some(policy)).resolve(path) {
        Ok(resolved) => Ok(Some(resolved)),
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(error),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Root,
    Up,
    Name(OsString),
}

fn steps(path: &Path) -> impl Iterator<Item = Step> + '_ {
    path.components().filter_map(|component| match component {
        Component::RootDir => Some(Step::Root),
        Component::ParentDir => Some(Step::Up),
        Component::CurDir | Component::Prefix(_) => None,
        Component::Normal(name) => Some(Step::Name(name.to_os_string())),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::manifest::{self, Diagnostic, LoadOptions};

    /// Trusts root and the user running the tests, as sudo would.
    fn policy() -> TrustPolicy {
        TrustPolicy::with_invoking_user(nix::unistd::geteuid().as_raw())
    }

    fn write(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mkdir(path: &Path, mode: u32) {
        fs::create_dir_all(path).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A 0755 directory whose every ancestor passes [`policy`]: not under
    /// /tmp, which is sticky and world-writable. Tried: this crate's target
    /// dir, then $HOME.
    fn trusted_base(test: &str) -> tempfile::TempDir {
        let candidates = [
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target")),
            std::env::var_os("HOME").map(PathBuf::from),
        ];
        for candidate in candidates.into_iter().flatten() {
            let Ok(dir) = tempfile::Builder::new()
                .prefix("trust-unit-")
                .tempdir_in(&candidate)
            else {
                continue;
            };
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
            if Resolver::new(Some(policy())).resolve(dir.path()).is_ok() {
                return dir;
            }
        }
        panic!("{test}: neither this crate's target dir nor $HOME has only trusted ancestors (owned by root or you, not group/world-writable) to test in");
    }

    fn load_trusted(path: &Path) -> Vec<Diagnostic> {
        load_with(path, LoadOptions::trusting(policy()))
    }

    fn load_with(path: &Path, options: LoadOptions) -> Vec<Diagnostic> {
        match manifest::load(&[path.display().to_string()], options) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    const WEB: &str =
        "apiVersion: berth/v1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: busybox\n";

    #[test]
    fn the_rule_refuses_foreign_owners_and_group_or_world_writable_modes() {
        let p = TrustPolicy::ROOT_ONLY;
        let file = libc::S_IFREG;
        let dir = libc::S_IFDIR;
        assert_eq!(p.fault(0, 0, file | 0o644), None);
        assert_eq!(p.fault(0, 0, dir | 0o755), None);
        assert_eq!(
            p.fault(1000, 0, file | 0o600),
            Some(Fault::Owner {
                uid: 1000,
                trusted: "root".into()
            })
        );
        assert_eq!(
            p.fault(0, 27, file | 0o664),
            Some(Fault::GroupWritable { gid: 27 })
        );
        assert_eq!(p.fault(0, 0, file | 0o666), Some(Fault::WorldWritable));
        assert_eq!(p.fault(0, 0, dir | 0o1777), Some(Fault::Sticky));
        assert_eq!(
            p.fault(0, 0, dir | 0o1775),
            Some(Fault::GroupWritable { gid: 0 })
        );
    }

    #[test]
    fn the_sudo_user_owner_is_accepted_and_named_in_refusals() {
        let p = TrustPolicy::from_sudo_uid(Some("1000"));
        assert_eq!(p.fault(1000, 1000, libc::S_IFDIR | 0o750), None);
        let message = untrusted_message(
            "directory",
            Path::new("/home/bob"),
            0o755,
            &p.fault(1001, 1001, libc::S_IFDIR | 0o755).unwrap(),
        );
        assert!(
            message.contains("uid 1001, not root or uid 1000 (SUDO_UID)"),
            "{message}"
        );
        assert!(message.contains("chown root /home/bob"), "{message}");
        assert_eq!(
            TrustPolicy::from_sudo_uid(Some("0")),
            TrustPolicy::ROOT_ONLY
        );
        assert_eq!(TrustPolicy::from_sudo_uid(None), TrustPolicy::ROOT_ONLY);
    }

    #[test]
    fn a_file_owned_by_the_sudo_user_loads_and_a_foreign_one_does_not() {
        // chown needs root; tests/trust.rs covers SUDO_UID end to end as root.
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let base = trusted_base("sudo_user_owner");
        let file = base.path().join("web.yaml");
        write(&file, WEB, 0o644);
        let uid = nix::unistd::Uid::from_raw(4242);
        nix::unistd::chown(&file, Some(uid), None).unwrap();
        let sudo = LoadOptions::trusting(TrustPolicy::from_sudo_uid(Some("4242")));
        assert_eq!(load_with(&file, sudo), []);
        let problems = load_with(&file, LoadOptions::trusting(TrustPolicy::ROOT_ONLY));
        assert!(
            problems[0].message.contains("owned by uid 4242, not root")
                && problems[0].message.contains("chown root"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_trusted_tree_loads() {
        let base = trusted_base("a_trusted_tree_loads");
        write(&base.path().join("web.yaml"), WEB, 0o644);
        assert_eq!(load_trusted(base.path()), []);
    }

    #[test]
    fn a_writable_manifest_is_refused_with_chmod_advice() {
        let base = trusted_base("writable_manifest");
        let file = base.path().join("web.yaml");
        write(&file, WEB, 0o666);
        let problems = load_trusted(base.path());
        assert_eq!(problems.len(), 1, "{problems:?}");
        let message = &problems[0].message;
        assert_eq!(problems[0].file, file.display().to_string());
        assert!(message.contains("world-writable (mode 0666)"), "{message}");
        assert!(
            message.contains(&format!("chmod go-w {}", file.display())),
            "{message}"
        );
        assert!(message.contains("--allow-untrusted-manifests"), "{message}");
        assert_eq!(load_with(base.path(), LoadOptions::default()), []);
    }

    #[test]
    fn a_writable_parent_directory_is_refused() {
        let base = trusted_base("writable_parent");
        let shared = base.path().join("shared");
        mkdir(&shared, 0o775);
        mkdir(&shared.join("m"), 0o755);
        let file = shared.join("m/web.yaml");
        write(&file, WEB, 0o644);
        // Named directly, the file itself is fine; the directory above is not.
        let problems = load_trusted(&file);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let message = &problems[0].message;
        assert!(
            message.contains(&format!("directory {} is group-writable", shared.display())),
            "{message}"
        );
        assert!(
            message.contains(&format!("chmod go-w {}", shared.display())),
            "{message}"
        );
    }

    #[test]
    fn a_sticky_world_writable_parent_is_not_trusted() {
        let base = trusted_base("sticky_parent");
        let sticky = base.path().join("tmp");
        mkdir(&sticky, 0o1777);
        let file = sticky.join("web.yaml");
        write(&file, WEB, 0o644);
        let problems = load_trusted(&file);
        assert!(
            problems[0]
                .message
                .contains("world-writable with the sticky bit (mode 1777)"),
            "{problems:?}"
        );
    }

    #[test]
    fn manifests_under_the_real_tmp_are_refused() {
        let tmp = fs::metadata("/tmp").unwrap();
        if tmp.permissions().mode() & 0o1002 != 0o1002 {
            return; // an unusual /tmp: the sticky rule is tested on a made one above
        }
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        write(&dir.path().join("web.yaml"), WEB, 0o644);
        let problems = load_trusted(dir.path());
        assert!(
            problems[0]
                .message
                .contains("directory /tmp is world-writable with the sticky bit"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_symlink_to_an_untrusted_target_is_refused_naming_the_link() {
        let base = trusted_base("symlink_untrusted");
        let tree = base.path().join("tree");
        let outside = base.path().join("outside");
        mkdir(&tree, 0o755);
        mkdir(&outside, 0o777);
        write(&outside.join("web.yaml"), WEB, 0o644);
        symlink(outside.join("web.yaml"), tree.join("web.yaml")).unwrap();
        let problems = load_trusted(&tree);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].file,
            tree.join("web.yaml").display().to_string()
        );
        let message = &problems[0].message;
        assert!(message.contains("symlink to"), "{message}");
        assert!(
            message.contains(&format!(
                "directory {} is world-writable",
                outside.display()
            )),
            "{message}"
        );
        // Once the target's directory is fixed, the link is followed.
        mkdir(&outside, 0o755);
        assert_eq!(load_trusted(&tree), []);
    }

    #[test]
    fn a_symlink_to_root_is_an_error_naming_the_link_and_nothing_is_walked() {
        let base = trusted_base("symlink_to_root");
        write(&base.path().join("web.yaml"), WEB, 0o644);
        symlink("/", base.path().join("host")).unwrap();
        for options in [LoadOptions::trusting(policy()), LoadOptions::default()] {
            let problems = load_with(base.path(), options);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(
                problems[0].file,
                base.path().join("host").display().to_string()
            );
            assert!(
                problems[0].message.contains("symlink to / leads to /"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn a_symlink_to_an_ancestor_directory_is_a_cycle() {
        let base = trusted_base("symlink_to_ancestor");
        mkdir(&base.path().join("sub"), 0o755);
        write(&base.path().join("sub/web.yaml"), WEB, 0o644);
        symlink("..", base.path().join("sub/up")).unwrap();
        let problems = load_trusted(base.path());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].file,
            base.path().join("sub/up").display().to_string()
        );
        assert!(problems[0].message.contains("would loop"), "{problems:?}");
    }

    #[test]
    fn a_symlink_cycle_is_an_error_naming_the_link() {
        let base = trusted_base("symlink_cycle");
        symlink("b.yaml", base.path().join("a.yaml")).unwrap();
        symlink("a.yaml", base.path().join("b.yaml")).unwrap();
        let problems = load_trusted(base.path());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0].file,
            base.path().join("a.yaml").display().to_string()
        );
        assert!(
            problems[0].message.contains("too many levels of symlinks"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_content_comes_from_the_checked_descriptor_not_the_path() {
        // Guards the check-then-read race: a swap after the check must not
        // change what is read.
        let base = trusted_base("checked_descriptor");
        let file = base.path().join("web.yaml");
        write(&file, "checked", 0o644);
        let resolver = Resolver::new(Some(policy()));
        let opened = resolver
            .resolve(&file)
            .unwrap()
            .open_file(Some(policy()))
            .unwrap();
        let swap = base.path().join("swap.yaml");
        write(&swap, "swapped in", 0o666);
        fs::rename(&swap, &file).unwrap();
        let bytes = opened.read_bounded(1 << 20).unwrap();
        assert_eq!(bytes, b"checked");
    }

    #[test]
    fn a_file_replaced_between_resolving_and_opening_is_refused() {
        let base = trusted_base("replaced_file");
        let file = base.path().join("web.yaml");
        write(&file, "checked", 0o644);
        let resolved = Resolver::new(Some(policy())).resolve(&file).unwrap();
        let swap = base.path().join("swap.yaml");
        write(&swap, "swapped in", 0o644);
        fs::rename(&swap, &file).unwrap();
        assert!(matches!(
            resolved.open_file(Some(policy())),
            Err(OpenError::Replaced)
        ));
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_from_the_descriptor() {
        let base = trusted_base("size_limit");
        let file = base.path().join("big.yaml");
        write(&file, "0123456789", 0o644);
        let opened = Resolver::new(None)
            .resolve(&file)
            .unwrap()
            .open_file(None)
            .unwrap();
        assert!(matches!(
            opened.read_bounded(4),
            Err(OpenError::TooLarge(10))
        ));
    }

    /// A Container naming `field` in its spec, in `base/m/web.yaml`.
    fn container_naming(base: &Path, spec_lines: &str) -> PathBuf {
        let tree = base.join("m");
        mkdir(&tree, 0o755);
        let file = tree.join("web.yaml");
        write(&file, &format!("{WEB}{spec_lines}"), 0o644);
        tree
    }

    #[test]
    fn an_env_file_in_a_writable_directory_is_refused_at_its_field() {
        let base = trusted_base("env_file");
        let tree = container_naming(base.path(), "  envFiles: [../shared/app.env]\n");
        let shared = base.path().join("shared");
        mkdir(&shared, 0o777);
        write(&shared.join("app.env"), "A=1\n", 0o644);
        let problems = load_trusted(&tree);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert_eq!(
            (p.line, p.column, p.path.as_str()),
            (6, 14, "spec.envFiles[0]"),
            "{p}"
        );
        assert!(p.message.contains("untrusted env file"), "{p}");
        assert!(
            p.message
                .contains(&format!("directory {} is world-writable", shared.display())),
            "{p}"
        );
        assert_eq!(load_with(&tree, LoadOptions::default()), []);
    }

    #[test]
    fn a_writable_env_file_is_refused() {
        let base = trusted_base("writable_env_file");
        let tree = container_naming(base.path(), "  envFiles: [app.env]\n");
        write(&tree.join("app.env"), "A=1\n", 0o664);
        let problems = load_trusted(&tree);
        assert!(
            problems[0].message.contains("app.env is group-writable"),
            "{problems:?}"
        );
    }

    #[test]
    fn bind_sources_inside_and_outside_the_tree_are_checked() {
        let base = trusted_base("bind_sources");
        let outside = base.path().join("data");
        let tree = container_naming(
            base.path(),
            &format!(
                "  mounts:\n  - {{type: bind, source: ./site, target: /srv}}\n  - {{type: bind, source: {}, target: /data}}\n",
                outside.display()
            ),
        );
        mkdir(&tree.join("site"), 0o775);
        mkdir(&outside, 0o757);
        // Named alone: walking the tree would refuse `site` as a manifest directory too.
        let problems = load_trusted(&tree.join("web.yaml"));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].path, "spec.mounts[0].source");
        assert!(
            problems[0].message.contains("untrusted bind mount source"),
            "{problems:?}"
        );
        assert!(
            problems[0].message.contains("site is group-writable"),
            "{problems:?}"
        );
        assert_eq!(problems[1].path, "spec.mounts[1].source");
        assert!(
            problems[1].message.contains("data is world-writable"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_untrusted_oci_layout_is_refused_once() {
        let base = trusted_base("oci_layout");
        let tree = container_naming(base.path(), "");
        let file = tree.join("web.yaml");
        write(&file, &WEB.replace("busybox", "oci-layout:img:v1"), 0o644);
        mkdir(&tree.join("img"), 0o777);
        write(&tree.join("img/index.json"), "{}", 0o644);
        let problems = load_trusted(&tree.join("web.yaml"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.image");
        assert!(
            problems[0].message.contains("untrusted image layout"),
            "{problems:?}"
        );
        // The directory fixed, its index is checked too.
        mkdir(&tree.join("img"), 0o755);
        write(&tree.join("img/index.json"), "{}", 0o666);
        let problems = load_trusted(&tree.join("web.yaml"));
        assert!(
            problems[0].message.contains("untrusted image index"),
            "{problems:?}"
        );
    }

    #[test]
    fn archives_and_seccomp_profiles_are_checked_and_missing_files_pass() {
        let base = trusted_base("archives_seccomp");
        let tree = container_naming(base.path(), "  seccomp: profile.json\n");
        let file = tree.join("web.yaml");
        write(
            &file,
            &format!(
                "{}  seccomp: profile.json\n",
                WEB.replace("busybox", "docker-archive:missing.tar")
            ),
            0o644,
        );
        write(&tree.join("profile.json"), "{}", 0o646);
        let problems = load_trusted(&tree);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.seccomp");
        assert!(
            problems[0].message.contains("untrusted seccomp profile"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_job_template_s_files_are_checked_too() {
        let base = trusted_base("job_files");
        let tree = base.path().join("m");
        mkdir(&tree, 0o755);
        write(
            &tree.join("job.yaml"),
            "apiVersion: berth/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    image: busybox\n    envFiles: [app.env]\n",
            0o644,
        );
        write(&tree.join("app.env"), "A=1\n", 0o666);
        let problems = load_trusted(&tree);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.template.envFiles[0]");
    }
}
