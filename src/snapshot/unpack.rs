//! Safe, fast unpacking of one OCI image layer into its own directory.
//!
//! [`unpack_layer`] reads a (possibly compressed) layer tar, writes every
//! entry below `dest` and returns the layer's diff id: the sha256 of the
//! uncompressed tar stream, computed in-stream and over every byte up to EOF
//! (trailing bytes after the end-of-archive blocks included). The caller
//! unpacks into a temporary directory, compares the diff id with the image
//! config's `rootfs.diff_ids` and only then renames the directory into place.
//!
//! # Containment
//!
//! Nothing is ever created through a path string. The layer directory is
//! opened once; every parent directory of an entry is opened from that fd with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV)`, and the final, single-component name is acted on with
//! the `*at` syscalls (`mkdirat`, `mknodat`, `symlinkat`, `linkat`, `openat`
//! with `O_NOFOLLOW | O_CREAT | O_EXCL`, `fchownat(AT_SYMLINK_NOFOLLOW)`,
//! `utimensat(AT_SYMLINK_NOFOLLOW)`, `unlinkat`). Missing parents are created
//! one component at a time (0755, owned by the unpacking user, root) under the
//! same rules. The tar crate only parses; its `unpack` functions are not used.
//!
//! Each layer unpacks into its own, initially empty directory, so a lower
//! layer can never redirect a path of this one: the only symlinks the kernel
//! could meet while resolving a parent are ones this same layer created, and
//! those are refused.
//!
//! | what the tar says                                   | what happens                                         |
//! |-----------------------------------------------------|------------------------------------------------------|
//! | absolute name (`/etc/x`)                            | contained: taken relative to the layer root (GNU tar) |
//! | `..` component anywhere in a name                   | layer rejected ([`UnpackError::DotDot`])              |
//! | parent path goes through a symlink (`link/passwd`)  | layer rejected ([`UnpackError::ThroughSymlink`])      |
//! | symlink entry with any target (absolute, `../..`)   | created as is, never followed                        |
//! | hardlink target absolute                            | resolved relative to the layer root                  |
//! | hardlink target with `..`, missing, not a regular file, or through a symlink | layer rejected ([`UnpackError::Hardlink`]) |
//! | whiteout `.wh.NAME`                                 | 0:0 character device `NAME` (overlayfs whiteout)      |
//! | opaque marker `.wh..wh..opq`                        | xattr `trusted.overlay.opaque=y` on its directory     |
//! | whiteout naming `.`, `..`, empty, or containing `/` | layer rejected ([`UnpackError::Whiteout`])            |
//! | whiteout whose directory is reached through a symlink | layer rejected ([`UnpackError::ThroughSymlink`])  |
//! | other `.wh..wh.*` names (aufs metadata)             | skipped                                              |
//! | `trusted.overlay.*` xattrs in PAX records           | skipped with a warning: only whiteouts express those |
//! | device nodes                                        | created as given (see below)                         |
//! | a later entry with the same path                    | replaces the earlier one (dir over dir: metadata only) |
//! | entry types other than file, dir, symlink, hardlink, char, block, fifo | layer rejected |
//!
//! Device nodes are created as the tar gives them: the unpacker runs as root
//! and the image is untrusted, but the snapshotter mounts layer directories as
//! overlay lowerdirs with `nodev`, so a node can not open a host device.
//!
//! # Without root
//!
//! The table above is [`Ownership::Apply`], the default, and needs root
//! (`CAP_CHOWN`, `CAP_MKNOD`, `CAP_SYS_ADMIN` for `trusted.*`). With
//! [`Ownership::Skip`] ([`UnpackOptions::unprivileged`]) an ordinary user
//! unpacks the same layer with the same containment rules and errors; only
//! what needs privilege differs, and what is left out is counted in
//! [`UnpackStats::skipped`]:
//!
//! | what the tar says              | with `Ownership::Skip`                                          |
//! |--------------------------------|-----------------------------------------------------------------|
//! | owners (uid, gid)              | not applied: everything belongs to the unpacking user          |
//! | character and block devices    | not created (whatever the path held before is still removed)   |
//! | xattrs outside `user.*`        | not set (`trusted.*`, `security.*`, ...)                        |
//! | `user.overlay.*` xattrs        | skipped with a warning, like `trusted.overlay.*` above         |
//! | whiteout `.wh.NAME`            | 0/0 character device `NAME` owned by the user (Linux >= 5.8 lets anyone make one) |
//! | opaque marker `.wh..wh..opq`   | xattr `user.overlay.opaque=y` on its directory                  |
//! | directory modes                | owner `rwx` while the layer unpacks; the tar's mode at the end |
//!
//! That is overlayfs's `userxattr` format (Linux >= 5.11), which an overlay
//! mounted inside a user namespace reads; a root mount without `userxattr`
//! would not see the opaque markers. Skip is for tests and rootless tools,
//! never for layers that a root overlay mount will use.
//!
//! # Metadata
//!
//! Ownership is applied with lchown semantics (never following), modes after
//! ownership (so setuid, setgid and sticky bits survive), xattrs from PAX
//! `SCHILY.xattr.*` records (after the data is written and the owner set,
//! which would both clear `security.capability`), and mtimes with
//! nanoseconds from a PAX `mtime` record when present. Directory mtimes are
//! set last, after all of their children exist.
//!
//! # Size
//!
//! [`unpack_layer_within`] counts every byte the decompressor yields (tar
//! headers, file contents, padding, whatever follows the archive) against a
//! [`LayerBudget`] before the tar parser sees it, and stops with
//! [`UnpackError::TooLarge`] at the first chunk that would cross the bound:
//! a gzip bomb writes no more than the bound before it is refused.
//!
//! # Speed
//!
//! Decompression runs on its own thread and hands reusable 1 MiB buffers over
//! a bounded channel to the calling thread, which hashes, parses and writes, so
//! both cores work like `zcat | tar -x` does with two processes.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use sha2::{Digest, Sha256};
use tar::EntryType;

use super::budget::{Exceeded, ImageBudget, LayerBudget};
use crate::image::compression::ZstdFrames;
pub use crate::image::Compression;

/// Size of one buffer handed from the decompressor to the writer.
const CHUNK: usize = 1 << 20;
/// Buffers in flight between the two threads.
const QUEUE: usize = 4;
/// Read-ahead on the compressed input.
const INPUT_BUFFER: usize = 256 << 10;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const USER_XATTR_PREFIX: &[u8] = b"user.";
const USER_OVERLAY_XATTR_PREFIX: &[u8] = b"user.overlay.";

/// Whether an unpack applies what only root may: owners, device nodes,
/// `trusted.*` xattrs (see the module documentation, "Without root").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ownership {
    /// Everything as the tar says; needs root. What berth's layers use.
    #[default]
    Apply,
    /// Only what an ordinary user may do; the rest is counted in
    /// [`UnpackStats::skipped`].
    Skip,
}

/// How [`unpack_layer_with`] writes a layer. The default is what berth
/// itself uses (as root).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackOptions {
    pub ownership: Ownership,
}

impl UnpackOptions {
    /// What an ordinary user can unpack: [`Ownership::Skip`].
    pub fn unprivileged() -> Self {
        Self {
            ownership: Ownership::Skip,
        }
    }
}

/// What an unpack with [`Ownership::Skip`] left out; all zero with
/// [`Ownership::Apply`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Entries the tar gives another owner than the unpacking user (they
    /// keep the unpacking user's).
    pub owners: u64,
    /// Character and block device nodes not created.
    pub devices: u64,
    /// Xattrs outside `user.*` not set.
    pub xattrs: u64,
}

/// What [`unpack_layer`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// `sha256:<hex>` of the whole uncompressed tar stream.
    pub diff_id: String,
    /// Tar entries read: every member, including whiteouts and PAX global
    /// headers; local PAX and GNU long-name headers belong to their member.
    pub entries: u64,
    /// Length of the uncompressed tar stream in bytes.
    pub bytes: u64,
    /// What [`Ownership::Skip`] left out.
    pub skipped: Skipped,
}

/// Why a layer could not be unpacked. Entry names are given as the tar spells
/// them.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("open layer directory {}", dest.display())]
    OpenDest {
        dest: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("start decompressor thread")]
    Spawn {
        #[source]
        source: io::Error,
    },
    #[error("decompressor thread panicked")]
    DecompressorPanicked,
    /// The layer's uncompressed stream crossed a bound: nothing past it
    /// was written.
    #[error("after {entries} entries: {exceeded}")]
    TooLarge { entries: u64, exceeded: Exceeded },
    #[error("read layer stream after {entries} entries")]
    Read {
        entries: u64,
        #[source]
        source: io::Error,
    },
    #[error("entry {entry:?}: read data")]
    ReadData {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("entry {entry:?}: write data")]
    WriteData {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("entry {entry:?}: data ends after {copied} of {size} bytes")]
    Truncated {
        entry: String,
        copied: u64,
        size: u64,
    },
    #[error("entry {entry:?}: invalid {field} in header")]
    Header {
        entry: String,
        field: &'static str,
        #[source]
        source: Option<io::Error>,
    },
    #[error("entry {entry:?}: name has a `..` component")]
    DotDot { entry: String },
    #[error("entry {entry:?}: {reason}")]
    InvalidName { entry: String, reason: &'static str },
    #[error("entry {entry:?}: path goes through symlink {symlink:?} (-> {target:?})")]
    ThroughSymlink {
        entry: String,
        symlink: String,
        target: String,
    },
    #[error("entry {entry:?}: path leaves the layer directory")]
    Escapes {
        entry: String,
        #[source]
        source: Errno,
    },
    #[error("entry {entry:?}: hardlink target {target:?} {reason}")]
    Hardlink {
        entry: String,
        target: String,
        reason: &'static str,
    },
    #[error("entry {entry:?}: whiteout name {name:?} is not a plain file name")]
    Whiteout { entry: String, name: String },
    #[error("entry {entry:?}: unsupported entry type {kind:?}")]
    UnsupportedType { entry: String, kind: char },
    #[error("entry {entry:?}: {syscall} {name:?}")]
    Syscall {
        entry: String,
        syscall: &'static str,
        name: String,
        #[source]
        source: Errno,
    },
}

/// Unpacks one layer into `dest`, an existing empty directory, and returns the
/// diff id of what it read.
///
/// See the module documentation for what is created and what is refused. On
/// error `dest` holds a partial tree that the caller discards. Needs root;
/// [`unpack_layer_with`] takes options.
pub fn unpack_layer(
    reader: impl Read + Send,
    compression: Compression,
    dest: &Path,
) -> Result<UnpackStats, UnpackError> {
    unpack_layer_with(reader, compression, dest, UnpackOptions::default())
}

/// [`unpack_layer`] with options: [`UnpackOptions::unprivileged`] unpacks
/// without root.
pub fn unpack_layer_with(
    reader: impl Read + Send,
    compression: Compression,
    dest: &Path,
    options: UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let unlimited = ImageBudget::unlimited();
    unpack_layer_within(reader, compression, dest, options, &mut unlimited.layer())
}

/// [`unpack_layer_with`] under a size bound: every uncompressed byte is
/// taken from `budget` before it is parsed, and the unpack stops with
/// [`UnpackError::TooLarge`] at the first chunk the budget refuses.
pub fn unpack_layer_within(
    reader: impl Read + Send,
    compression: Compression,
    dest: &Path,
    options: UnpackOptions,
    budget: &mut LayerBudget<'_>,
) -> Result<UnpackStats, UnpackError> {
    let root = fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| UnpackError::OpenDest {
        dest: dest.to_path_buf(),
        source,
    })?;
    let (chunk_tx, chunk_rx) = mpsc::sync_channel(QUEUE);
    let (pool_tx, pool_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let producer = std::thread::Builder::new()
            .name("unpack-decompress".into())
            .spawn_scoped(scope, move || {
                decompress(reader, compression, &chunk_tx, &pool_rx)
            })
            .map_err(|source| UnpackError::Spawn { source })?;
        // `unpack_stream` owns the receiving end, so when it returns early the
        // producer's next send fails and the thread ends before the join.
        let result = unpack_stream(Stream::new(chunk_rx, pool_tx, budget), root, options);
        let joined = producer.join();
        match (result, joined) {
            (Err(err), _) => Err(err),
            (Ok(_), Err(_)) => Err(UnpackError::DecompressorPanicked),
            (Ok(stats), Ok(())) => Ok(stats),
        }
    })
}

// ---------------------------------------------------------------------------
// Decompression thread and the hashing stream.

type Chunk = (Vec<u8>, usize);

fn decompress(
    reader: impl Read,
    compression: Compression,
    tx: &SyncSender<io::Result<Chunk>>,
    pool: &Receiver<Vec<u8>>,
) {
    match compression {
        Compression::None => fill_chunks(reader, tx, pool),
        Compression::Gzip => fill_chunks(
            flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(INPUT_BUFFER, reader)),
            tx,
            pool,
        ),
        Compression::Zstd => fill_chunks(
            ZstdFrames::new(BufReader::with_capacity(INPUT_BUFFER, reader)),
            tx,
            pool,
        ),
    }
}

/// Reads `src` to EOF in full chunks and sends them; stops at the first error
/// (which it sends) or when the receiver is gone.
fn fill_chunks(mut src: impl Read, tx: &SyncSender<io::Result<Chunk>>, pool: &Receiver<Vec<u8>>) {
    loop {
        let mut buf = pool.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        let mut filled = 0;
        let mut eof = false;
        while filled < buf.len() {
            match src.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let _ = tx.send(Err(err));
                    return;
                }
            }
        }
        if filled > 0 && tx.send(Ok((buf, filled))).is_err() {
            return;
        }
        if eof {
            return;
        }
    }
}

/// The writer side of the pipeline: counts every chunk against the budget
/// and hashes it as it arrives, then serves it to the tar parser.
struct Stream<'b, 'i> {
    rx: Receiver<io::Result<Chunk>>,
    pool: Sender<Vec<u8>>,
    cur: Vec<u8>,
    len: usize,
    pos: usize,
    hasher: Sha256,
    bytes: u64,
    failed: bool,
    budget: &'b mut LayerBudget<'i>,
    /// Set when the budget refused a chunk: the reason the stream failed,
    /// whatever error the tar parser made of it.
    exceeded: Option<Exceeded>,
}

impl<'b, 'i> Stream<'b, 'i> {
    fn new(
        rx: Receiver<io::Result<Chunk>>,
        pool: Sender<Vec<u8>>,
        budget: &'b mut LayerBudget<'i>,
    ) -> Self {
        Self {
            rx,
            pool,
            cur: Vec::new(),
            len: 0,
            pos: 0,
            hasher: Sha256::new(),
            bytes: 0,
            failed: false,
            budget,
            exceeded: None,
        }
    }

    /// Moves to the next chunk; `false` at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.failed {
            return Err(io::Error::other("layer stream failed earlier"));
        }
        match self.rx.recv() {
            Ok(Ok((buf, len))) => {
                // Counted before anything of the chunk is parsed or
                // written: a refused chunk never reaches the disk.
                if let Err(exceeded) = self.budget.take(len as u64) {
                    self.failed = true;
                    self.exceeded = Some(exceeded);
                    return Err(io::Error::other(exceeded));
                }
                self.hasher.update(&buf[..len]);
                self.bytes += len as u64;
                let old = std::mem::replace(&mut self.cur, buf);
                if !old.is_empty() {
                    let _ = self.pool.send(old);
                }
                self.len = len;
                self.pos = 0;
                Ok(true)
            }
            Ok(Err(err)) => {
                self.failed = true;
                Err(err)
            }
            Err(mpsc::RecvError) => Ok(false),
        }
    }

    /// Reads (and so hashes) whatever follows the end of the archive.
    fn drain(&mut self) -> io::Result<()> {
        while self.next_chunk()? {}
        Ok(())
    }
}

impl Read for Stream<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len && !self.next_chunk()? {
            return Ok(0);
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn unpack_stream(
    stream: Stream<'_, '_>,
    root: OwnedFd,
    options: UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let mut archive = tar::Archive::new(stream);
    let mut layer = Layer::new(root, options);
    let mut entries = 0u64;
    let read = unpack_entries(&mut archive, &mut layer, &mut entries);
    let mut stream = archive.into_inner();
    // Whatever the parser made of a refused chunk (a read error, a
    // truncated entry), the bound is the reason.
    let too_large = |stream: &Stream<'_, '_>, entries| {
        stream
            .exceeded
            .map(|exceeded| UnpackError::TooLarge { entries, exceeded })
    };
    if let Some(error) = too_large(&stream, entries) {
        return Err(error);
    }
    read?;
    layer.finish_dirs()?;
    if let Err(source) = stream.drain() {
        return Err(too_large(&stream, entries).unwrap_or(UnpackError::Read { entries, source }));
    }
    Ok(UnpackStats {
        diff_id: format!(
            "sha256:{}",
            crate::state::hex::encode(&stream.hasher.finalize())
        ),
        entries,
        bytes: stream.bytes,
        skipped: layer.skipped,
    })
}

/// Writes every entry of `archive` into `layer`, counting them.
fn unpack_entries(
    archive: &mut tar::Archive<Stream<'_, '_>>,
    layer: &mut Layer,
    entries: &mut u64,
) -> Result<(), UnpackError> {
    let iter = archive.entries().map_err(|source| UnpackError::Read {
        entries: *entries,
        source,
    })?;
    for entry in iter {
        let mut entry = entry.map_err(|source| UnpackError::Read {
            entries: *entries,
            source,
        })?;
        layer.entry(&mut entry)?;
        *entries += 1;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Writing entries.

const RESOLVE: ResolveFlag = ResolveFlag::RESOLVE_BENEATH
    .union(ResolveFlag::RESOLVE_NO_SYMLINKS)
    .union(ResolveFlag::RESOLVE_NO_MAGICLINKS)
    .union(ResolveFlag::RESOLVE_NO_XDEV);

/// Opens the directory `path` (relative, no `..`) below `base`, refusing
/// symlinks, magic links, mount crossings and escapes.
fn open_dir_beneath(base: &OwnedFd, path: &[u8]) -> nix::Result<OwnedFd> {
    fcntl::openat2(
        base,
        path,
        OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(RESOLVE),
    )
}

/// Opens `path` below `root`, creating missing directories one component at
/// a time under the same resolve rules.
fn open_or_create_dirs(root: &OwnedFd, path: &[u8]) -> nix::Result<OwnedFd> {
    match open_dir_beneath(root, path) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let mut cur: Option<OwnedFd> = None;
    for comp in path.split(|&b| b == b'/') {
        let base = cur.as_ref().unwrap_or(root);
        let next = match open_dir_beneath(base, comp) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match stat::mkdirat(base, comp, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(err) => return Err(err),
                }
                let fd = open_dir_beneath(base, comp)?;
                stat::fchmod(&fd, Mode::from_bits_truncate(0o755))?;
                fd
            }
            Err(err) => return Err(err),
        };
        cur = Some(next);
    }
    match cur {
        Some(fd) => Ok(fd),
        None => Err(Errno::ENOENT),
    }
}

/// Finds the first symlink on `path` below `root`: its path and its target.
fn find_symlink(root: &OwnedFd, path: &[u8]) -> Option<(String, String)> {
    let mut cur: Option<OwnedFd> = None;
    let mut end = 0;
    for comp in path.split(|&b| b == b'/') {
        end += comp.len();
        let base = cur.as_ref().unwrap_or(root);
        let st = stat::fstatat(base, comp, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
            let target = fcntl::readlinkat(base, comp)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Some((lossy(&path[..end]), target));
        }
        cur = Some(open_dir_beneath(base, comp).ok()?);
        end += 1;
    }
    None
}

/// Removes `name` in `dir`, recursively if it is a directory.
fn remove_all(dir: &OwnedFd, name: &[u8]) -> nix::Result<()> {
    match unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::EISDIR) => {}
        other => return other,
    }
    let fd = fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let children: Vec<Vec<u8>> = {
        let mut listing = nix::dir::Dir::from_fd(fd.try_clone().map_err(|_| Errno::EMFILE)?)?;
        let mut names = Vec::new();
        for child in listing.iter() {
            let child = child?;
            let child = child.file_name().to_bytes();
            if child != b"." && child != b".." {
                names.push(child.to_vec());
            }
        }
        names
    };
    for child in &children {
        remove_all(&fd, child)?;
    }
    unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// Runs `create`; if the name exists, removes it and runs `create` again.
fn create_replacing<T>(
    dir: &OwnedFd,
    name: &[u8],
    replaced: &mut bool,
    mut create: impl FnMut() -> nix::Result<T>,
) -> nix::Result<T> {
    match create() {
        Err(Errno::EEXIST) => {
            *replaced = true;
            remove_all(dir, name)?;
            create()
        }
        other => other,
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Splits a normalized path into its parent and final component.
fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

enum NameError {
    DotDot,
    Nul,
}

/// Writes `raw` into `out` without leading `/`, empty and `.` components.
fn normalize(raw: &[u8], out: &mut Vec<u8>) -> Result<(), NameError> {
    out.clear();
    if raw.contains(&0) {
        return Err(NameError::Nul);
    }
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(NameError::DotDot),
            comp => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(comp);
            }
        }
    }
    Ok(())
}

/// Metadata of one entry.
struct Meta {
    uid: Uid,
    gid: Gid,
    mode: Mode,
    mtime: TimeSpec,
}

/// The cached fd of the last parent directory used: tars list siblings
/// together, so most entries reuse it.
struct ParentCache {
    path: Vec<u8>,
    fd: Option<OwnedFd>,
}

impl ParentCache {
    fn get<'a>(&'a mut self, root: &'a OwnedFd, path: &[u8]) -> nix::Result<&'a OwnedFd> {
        if path.is_empty() {
            return Ok(root);
        }
        if self.fd.is_none() || self.path != path {
            self.fd = None;
            let fd = open_or_create_dirs(root, path)?;
            self.path.clear();
            self.path.extend_from_slice(path);
            self.fd = Some(fd);
        }
        match &self.fd {
            Some(fd) => Ok(fd),
            None => Err(Errno::EBADF),
        }
    }

    fn clear(&mut self) {
        self.fd = None;
        self.path.clear();
    }
}

struct Layer {
    root: OwnedFd,
    parents: ParentCache,
    /// The entry name as the tar spells it (for errors).
    raw: Vec<u8>,
    /// The normalized relative path.
    path: Vec<u8>,
    /// The normalized hardlink target.
    link: Vec<u8>,
    /// PAX xattrs of the current entry.
    xattrs: Vec<(CString, Vec<u8>)>,
    /// Copy buffer for file data.
    buf: Vec<u8>,
    /// Directory paths, concatenated; `dirs` indexes them.
    dir_paths: Vec<u8>,
    dirs: Vec<DirDone>,
    options: UnpackOptions,
    skipped: Skipped,
    /// The unpacking user, to count the owners [`Ownership::Skip`] leaves out.
    user: (Uid, Gid),
}

/// A directory whose mtime (and, without root, mode) is set once all of its
/// children exist: `dir_paths[start..end]`.
struct DirDone {
    start: usize,
    end: usize,
    mtime: TimeSpec,
    mode: Mode,
}

impl Layer {
    fn new(root: OwnedFd, options: UnpackOptions) -> Self {
        Self {
            root,
            parents: ParentCache {
                path: Vec::new(),
                fd: None,
            },
            raw: Vec::new(),
            path: Vec::new(),
            link: Vec::new(),
            xattrs: Vec::new(),
            buf: vec![0; CHUNK],
            dir_paths: Vec::new(),
            dirs: Vec::new(),
            options,
            skipped: Skipped::default(),
            user: (unistd::geteuid(), unistd::getegid()),
        }
    }

    fn apply_ownership(&self) -> bool {
        self.options.ownership == Ownership::Apply
    }

    /// `fchown` with root; nothing without.
    fn chown_fd(&self, fd: &OwnedFd, name: &[u8], meta: &Meta) -> Result<(), UnpackError> {
        if !self.apply_ownership() {
            return Ok(());
        }
        unistd::fchown(fd, Some(meta.uid), Some(meta.gid)).map_err(|e| self.sys("fchown", name, e))
    }

    /// `fchownat(AT_SYMLINK_NOFOLLOW)` with root; nothing without.
    fn chown_at(&self, dir: &OwnedFd, name: &[u8], uid: Uid, gid: Gid) -> nix::Result<()> {
        if !self.apply_ownership() {
            return Ok(());
        }
        unistd::fchownat(
            dir,
            name,
            Some(uid),
            Some(gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
    }

    fn entry_name(&self) -> String {
        lossy(&self.raw)
    }

    fn sys(&self, syscall: &'static str, name: &[u8], source: Errno) -> UnpackError {
        UnpackError::Syscall {
            entry: self.entry_name(),
            syscall,
            name: lossy(name),
            source,
        }
    }

    /// Maps a failure to open the parent directories `parent` of the entry.
    fn parent_error(&self, parent: &[u8], source: Errno) -> UnpackError {
        if source == Errno::ELOOP || source == Errno::EXDEV {
            if let Some((symlink, target)) = find_symlink(&self.root, parent) {
                return UnpackError::ThroughSymlink {
                    entry: self.entry_name(),
                    symlink,
                    target,
                };
            }
            return UnpackError::Escapes {
                entry: self.entry_name(),
                source,
            };
        }
        self.sys("openat2", parent, source)
    }

    fn header_error(&self, field: &'static str, source: Option<io::Error>) -> UnpackError {
        UnpackError::Header {
            entry: self.entry_name(),
            field,
            source,
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        self.raw.clear();
        self.raw.extend_from_slice(&entry.path_bytes());
        match normalize(&self.raw, &mut self.path) {
            Ok(()) => {}
            Err(NameError::DotDot) => {
                return Err(UnpackError::DotDot {
                    entry: self.entry_name(),
                })
            }
            Err(NameError::Nul) => {
                return Err(UnpackError::InvalidName {
                    entry: self.entry_name(),
                    reason: "name contains a NUL byte",
                })
            }
        }
        let meta = self.meta(entry)?;
        if !self.apply_ownership()
            && kind != EntryType::Link
            && (meta.uid, meta.gid) != self.user
            && !split_parent(&self.path).1.starts_with(WHITEOUT_PREFIX)
        {
            self.skipped.owners += 1;
        }
        let path = std::mem::take(&mut self.path);
        let result = self.dispatch(entry, kind, &path, &meta);
        self.path = path;
        result
    }

    fn dispatch<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        path: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let (parent, name) = split_parent(path);
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(parent, name);
        }
        if path.is_empty() {
            // The layer root itself ("./" or "/").
            if kind.is_dir() {
                return self.root_dir(meta);
            }
            return Err(UnpackError::InvalidName {
                entry: self.entry_name(),
                reason: "names the layer root but is not a directory",
            });
        }
        let mut replaced = false;
        let result = match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, parent, name, meta, &mut replaced)
            }
            EntryType::Directory => self.directory(path, meta, &mut replaced),
            EntryType::Symlink => self.symlink(entry, parent, name, meta, &mut replaced),
            EntryType::Link => self.hardlink(entry, parent, name, &mut replaced),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.node(entry, kind, parent, name, meta, &mut replaced)
            }
            other => Err(UnpackError::UnsupportedType {
                entry: self.entry_name(),
                kind: char::from(other.as_byte()),
            }),
        };
        if replaced {
            // Whatever was removed may have been (an ancestor of) the cached
            // parent directory.
            self.parents.clear();
        }
        result
    }

    fn meta<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<Meta, UnpackError> {
        let header = entry.header();
        let uid = header
            .uid()
            .map_err(|e| self.header_error("uid", Some(e)))?;
        let uid = u32::try_from(uid).map_err(|_| self.header_error("uid", None))?;
        let gid = header
            .gid()
            .map_err(|e| self.header_error("gid", Some(e)))?;
        let gid = u32::try_from(gid).map_err(|_| self.header_error("gid", None))?;
        let mode = header
            .mode()
            .map_err(|e| self.header_error("mode", Some(e)))?;
        let mtime = header
            .mtime()
            .map_err(|e| self.header_error("mtime", Some(e)))?;
        let mtime = i64::try_from(mtime).map_err(|_| self.header_error("mtime", None))?;
        let mut mtime = TimeSpec::new(mtime, 0);
        self.xattrs.clear();
        let pax = entry
            .pax_extensions()
            .map_err(|e| self.header_error("pax records", Some(e)))?;
        if let Some(pax) = pax {
            for record in pax {
                let record = record.map_err(|e| self.header_error("pax records", Some(e)))?;
                let key = record.key_bytes();
                if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                    let skip = !self.apply_ownership();
                    if skip && !name.starts_with(USER_XATTR_PREFIX) {
                        self.skipped.xattrs += 1;
                        continue;
                    }
                    if name.starts_with(OVERLAY_XATTR_PREFIX)
                        || (skip && name.starts_with(USER_OVERLAY_XATTR_PREFIX))
                    {
                        tracing::warn!(
                            entry = %lossy(&self.raw),
                            xattr = %lossy(name),
                            "skipping overlay xattr from layer tar"
                        );
                        continue;
                    }
                    let name =
                        CString::new(name).map_err(|_| self.header_error("xattr name", None))?;
                    self.xattrs.push((name, record.value_bytes().to_vec()));
                } else if key == b"mtime" {
                    if let Some(precise) = parse_pax_time(record.value_bytes()) {
                        mtime = precise;
                    }
                }
            }
        }
        Ok(Meta {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            mode: Mode::from_bits_truncate(mode & 0o7777),
            mtime,
        })
    }

    fn set_xattrs_fd(&self, fd: &OwnedFd, name: &[u8]) -> Result<(), UnpackError> {
        for (key, value) in &self.xattrs {
            xattr::fset(fd, key, value).map_err(|e| self.sys("fsetxattr", name, e))?;
        }
        Ok(())
    }

    /// Sets xattrs on a symlink or node through `/proc/self/fd/<dir>/<name>`
    /// with the `l` call, so the final component is never followed.
    fn set_xattrs_at(&self, dir: &OwnedFd, name: &[u8]) -> Result<(), UnpackError> {
        if self.xattrs.is_empty() {
            return Ok(());
        }
        let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        path.extend_from_slice(name);
        let path = CString::new(path).map_err(|_| self.sys("lsetxattr", name, Errno::EINVAL))?;
        for (key, value) in &self.xattrs {
            xattr::lset(&path, key, value).map_err(|e| self.sys("lsetxattr", name, e))?;
        }
        Ok(())
    }

    /// Opens (creating if needed) the parent directory into the cache; use
    /// [`Layer::dir`] afterwards.
    fn ensure_parent(&mut self, parent: &[u8]) -> Result<(), UnpackError> {
        match self.parents.get(&self.root, parent) {
            Ok(_) => Ok(()),
            Err(err) => {
                self.parents.clear();
                Err(self.parent_error(parent, err))
            }
        }
    }

    /// The parent directory opened by [`Layer::ensure_parent`].
    fn dir(&self, parent: &[u8]) -> Result<&OwnedFd, UnpackError> {
        if parent.is_empty() {
            return Ok(&self.root);
        }
        match &self.parents.fd {
            Some(fd) if self.parents.path == parent => Ok(fd),
            _ => Err(self.sys("openat2", parent, Errno::EBADF)),
        }
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &[u8],
        name: &[u8],
        meta: &Meta,
        replaced: &mut bool,
    ) -> Result<(), UnpackError> {
        self.ensure_parent(parent)?;
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.write_regular(entry, parent, name, meta, replaced, &mut buf);
        self.buf = buf;
        result
    }

    fn write_regular<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        parent: &[u8],
        name: &[u8],
        meta: &Meta,
        replaced: &mut bool,
        buf: &mut [u8],
    ) -> Result<(), UnpackError> {
        let dir = self.dir(parent)?;
        let fd = create_replacing(dir, name, replaced, || {
            fcntl::openat(
                dir,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        })
        .map_err(|e| self.sys("openat", name, e))?;
        let mut file = File::from(fd);
        let copied = match copy_data(entry, &mut file, buf) {
            Ok(n) => n,
            Err(CopyError::Read(source)) => {
                return Err(UnpackError::ReadData {
                    entry: self.entry_name(),
                    source,
                })
            }
            Err(CopyError::Write(source)) => {
                return Err(UnpackError::WriteData {
                    entry: self.entry_name(),
                    source,
                })
            }
        };
        let size = entry.size();
        if entry.header().entry_type() != EntryType::GNUSparse && copied != size {
            return Err(UnpackError::Truncated {
                entry: self.entry_name(),
                copied,
                size,
            });
        }
        let fd = OwnedFd::from(file);
        self.chown_fd(&fd, name, meta)?;
        self.set_xattrs_fd(&fd, name)?;
        stat::fchmod(&fd, meta.mode).map_err(|e| self.sys("fchmod", name, e))?;
        stat::futimens(&fd, &meta.mtime, &meta.mtime).map_err(|e| self.sys("futimens", name, e))
    }

    fn directory(
        &mut self,
        path: &[u8],
        meta: &Meta,
        replaced: &mut bool,
    ) -> Result<(), UnpackError> {
        let (parent, name) = split_parent(path);
        self.ensure_parent(parent)?;
        let dir = self.dir(parent)?;
        let initial = Mode::from_bits_truncate(0o700);
        match stat::mkdirat(dir, name, initial) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let st = stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| self.sys("fstatat", name, e))?;
                if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
                    *replaced = true;
                    remove_all(dir, name).map_err(|e| self.sys("unlinkat", name, e))?;
                    stat::mkdirat(dir, name, initial).map_err(|e| self.sys("mkdirat", name, e))?;
                }
            }
            Err(err) => return Err(self.sys("mkdirat", name, err)),
        }
        let fd = fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.sys("openat", name, e))?;
        self.dir_metadata(&fd, name, meta)?;
        let start = self.dir_paths.len();
        self.dir_paths.extend_from_slice(path);
        self.dirs.push(DirDone {
            start,
            end: self.dir_paths.len(),
            mtime: meta.mtime,
            mode: meta.mode,
        });
        Ok(())
    }

    fn root_dir(&mut self, meta: &Meta) -> Result<(), UnpackError> {
        let fd = self
            .root
            .try_clone()
            .map_err(|_| self.sys("dup", b".", Errno::EMFILE))?;
        self.dir_metadata(&fd, b".", meta)?;
        self.dirs.push(DirDone {
            start: self.dir_paths.len(),
            end: self.dir_paths.len(),
            mtime: meta.mtime,
            mode: meta.mode,
        });
        Ok(())
    }

    /// Without root the owner keeps `rwx` until [`Layer::finish_dirs`]: an
    /// ordinary user could not create the children of a 0555 directory.
    fn dir_metadata(&self, fd: &OwnedFd, name: &[u8], meta: &Meta) -> Result<(), UnpackError> {
        self.chown_fd(fd, name, meta)?;
        self.set_xattrs_fd(fd, name)?;
        let mode = if self.apply_ownership() {
            meta.mode
        } else {
            meta.mode | Mode::S_IRWXU
        };
        stat::fchmod(fd, mode).map_err(|e| self.sys("fchmod", name, e))
    }

    fn symlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        parent: &[u8],
        name: &[u8],
        meta: &Meta,
        replaced: &mut bool,
    ) -> Result<(), UnpackError> {
        let target = match entry.link_name_bytes() {
            Some(target) if !target.is_empty() => target,
            _ => return Err(self.header_error("symlink target", None)),
        };
        self.ensure_parent(parent)?;
        let dir = self.dir(parent)?;
        create_replacing(dir, name, replaced, || {
            unistd::symlinkat(target.as_ref(), dir, name)
        })
        .map_err(|e| self.sys("symlinkat", name, e))?;
        self.link_metadata(dir, name, meta)
    }

    /// Owner, xattrs, mode (not for symlinks) and mtime of a non-directory
    /// that has no open fd, never following the final component.
    fn link_metadata(&self, dir: &OwnedFd, name: &[u8], meta: &Meta) -> Result<(), UnpackError> {
        self.chown_at(dir, name, meta.uid, meta.gid)
            .map_err(|e| self.sys("fchownat", name, e))?;
        self.set_xattrs_at(dir, name)?;
        stat::utimensat(
            dir,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.sys("utimensat", name, e))
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        parent: &[u8],
        name: &[u8],
        replaced: &mut bool,
    ) -> Result<(), UnpackError> {
        let raw_target = match entry.link_name_bytes() {
            Some(target) => target.into_owned(),
            None => return Err(self.header_error("hardlink target", None)),
        };
        let reject = |this: &Self, reason| UnpackError::Hardlink {
            entry: this.entry_name(),
            target: lossy(&raw_target),
            reason,
        };
        let mut link = std::mem::take(&mut self.link);
        let normalized = normalize(&raw_target, &mut link);
        let result = match normalized {
            Err(NameError::DotDot) => Err(reject(self, "has a `..` component")),
            Err(NameError::Nul) => Err(reject(self, "contains a NUL byte")),
            Ok(()) if link.is_empty() => Err(reject(self, "names the layer root")),
            Ok(()) => self.hardlink_to(&link, parent, name, replaced, &reject),
        };
        self.link = link;
        result
    }

    fn hardlink_to(
        &mut self,
        target: &[u8],
        parent: &[u8],
        name: &[u8],
        replaced: &mut bool,
        reject: &dyn Fn(&Self, &'static str) -> UnpackError,
    ) -> Result<(), UnpackError> {
        let (target_parent, target_name) = split_parent(target);
        let target_dir = if target_parent.is_empty() {
            self.root
                .try_clone()
                .map_err(|_| self.sys("dup", b".", Errno::EMFILE))?
        } else {
            match open_dir_beneath(&self.root, target_parent) {
                Ok(fd) => fd,
                Err(Errno::ELOOP | Errno::EXDEV) => {
                    return Err(reject(self, "goes through a symlink"))
                }
                Err(Errno::ENOENT | Errno::ENOTDIR) => {
                    return Err(reject(self, "does not exist in this layer"))
                }
                Err(err) => return Err(self.sys("openat2", target_parent, err)),
            }
        };
        match stat::fstatat(&target_dir, target_name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG => {}
            Ok(_) => return Err(reject(self, "is not a regular file")),
            Err(Errno::ENOENT) => return Err(reject(self, "does not exist in this layer")),
            Err(err) => return Err(self.sys("fstatat", target_name, err)),
        }
        self.ensure_parent(parent)?;
        let dir = self.dir(parent)?;
        create_replacing(dir, name, replaced, || {
            unistd::linkat(&target_dir, target_name, dir, name, AtFlags::empty())
        })
        .map_err(|e| self.sys("linkat", name, e))
    }

    fn node<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        kind: EntryType,
        parent: &[u8],
        name: &[u8],
        meta: &Meta,
        replaced: &mut bool,
    ) -> Result<(), UnpackError> {
        let (sflag, dev) = match kind {
            EntryType::Fifo => (SFlag::S_IFIFO, 0),
            _ => {
                let header = entry.header();
                let major = header
                    .device_major()
                    .map_err(|e| self.header_error("device major", Some(e)))?
                    .unwrap_or(0);
                let minor = header
                    .device_minor()
                    .map_err(|e| self.header_error("device minor", Some(e)))?
                    .unwrap_or(0);
                let sflag = if kind == EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                (sflag, stat::makedev(major.into(), minor.into()))
            }
        };
        self.ensure_parent(parent)?;
        let dir = self.dir(parent)?;
        if !self.apply_ownership() && sflag != SFlag::S_IFIFO {
            // Not created, but it still replaces what the path held.
            match remove_all(dir, name) {
                Ok(()) => *replaced = true,
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(self.sys("unlinkat", name, e)),
            }
            self.skipped.devices += 1;
            return Ok(());
        }
        create_replacing(dir, name, replaced, || {
            stat::mknodat(dir, name, sflag, Mode::from_bits_truncate(0o600), dev)
        })
        .map_err(|e| self.sys("mknodat", name, e))?;
        self.chown_at(dir, name, meta.uid, meta.gid)
            .map_err(|e| self.sys("fchownat", name, e))?;
        self.set_xattrs_at(dir, name)?;
        // `name` is the node just created, not a symlink, and Linux has no
        // non-following fchmodat for it.
        stat::fchmodat(dir, name, meta.mode, FchmodatFlags::FollowSymlink)
            .map_err(|e| self.sys("fchmodat", name, e))?;
        stat::utimensat(
            dir,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.sys("utimensat", name, e))
    }

    fn whiteout(&mut self, parent: &[u8], name: &[u8]) -> Result<(), UnpackError> {
        if name == WHITEOUT_OPAQUE {
            self.ensure_parent(parent)?;
            let dir = self.dir(parent)?;
            let opaque = if self.apply_ownership() {
                c"trusted.overlay.opaque"
            } else {
                c"user.overlay.opaque"
            };
            return xattr::fset(dir, opaque, b"y").map_err(|e| self.sys("fsetxattr", parent, e));
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Err(UnpackError::Whiteout {
                entry: self.entry_name(),
                name: lossy(hidden),
            });
        }
        let mut replaced = false;
        self.ensure_parent(parent)?;
        let dir = self.dir(parent)?;
        let result = create_replacing(dir, hidden, &mut replaced, || {
            stat::mknodat(dir, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
        })
        .and_then(|()| self.chown_at(dir, hidden, Uid::from_raw(0), Gid::from_raw(0)))
        .map_err(|e| self.sys("mknodat", hidden, e));
        if replaced {
            self.parents.clear();
        }
        result
    }

    /// Sets directory mtimes (and, without root, modes) now that all
    /// children exist. The last entry for a path wins; deeper directories go
    /// first, so a parent's final mode never locks the unpacking user out of
    /// its children. A directory that was replaced later by something else
    /// is skipped.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let mut seen = std::collections::HashSet::new();
        let mut last: Vec<&DirDone> = self
            .dirs
            .iter()
            .rev()
            .filter(|d| seen.insert(&self.dir_paths[d.start..d.end]))
            .collect();
        let depth = |d: &DirDone| {
            let path = &self.dir_paths[d.start..d.end];
            path.iter().filter(|&&b| b == b'/').count() + usize::from(!path.is_empty())
        };
        last.sort_by_key(|d| std::cmp::Reverse(depth(d)));
        for done in last {
            let path = &self.dir_paths[done.start..done.end];
            let fd = if path.is_empty() {
                self.root.try_clone().map_err(|_| Errno::EMFILE)
            } else {
                open_dir_beneath(&self.root, path)
            };
            let fd = match fd {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                Err(source) => {
                    return Err(UnpackError::Syscall {
                        entry: lossy(path),
                        syscall: "openat2",
                        name: lossy(path),
                        source,
                    })
                }
            };
            let failed = |syscall| {
                move |source| UnpackError::Syscall {
                    entry: lossy(path),
                    syscall,
                    name: lossy(path),
                    source,
                }
            };
            if !self.apply_ownership() {
                stat::fchmod(&fd, done.mode).map_err(failed("fchmod"))?;
            }
            stat::futimens(&fd, &done.mtime, &done.mtime).map_err(failed("futimens"))?;
        }
        Ok(())
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies an entry's data through the reusable buffer. Reads return whole
/// pieces of the 1 MiB pipeline chunks, so files are written in large writes
/// (`io::copy` would use 8 KiB ones), and read and write errors stay apart.
fn copy_data(src: &mut impl Read, dst: &mut File, buf: &mut [u8]) -> Result<u64, CopyError> {
    let mut copied = 0u64;
    loop {
        let n = match src.read(buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(CopyError::Read(err)),
        };
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        copied += n as u64;
    }
}

/// Parses a PAX time (`secs[.fraction]`, possibly negative).
fn parse_pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    // Digits only: a second sign (`--9223372036854775808`) parsed as i64::MIN
    // and overflowed the negation below.
    if !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    let mut scale = 100_000_000;
    for digit in frac.bytes().take(9) {
        if !digit.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(digit - b'0') * scale;
        scale /= 10;
    }
    if negative {
        if nanos == 0 {
            Some(TimeSpec::new(-secs, 0))
        } else {
            Some(TimeSpec::new(-secs - 1, 1_000_000_000 - nanos))
        }
    } else {
        Some(TimeSpec::new(secs, nanos))
    }
}

mod xattr {
    //! Thin wrappers over the xattr syscalls, which nix does not offer.
    #![allow(unsafe_code)] // reason: two libc calls on a borrowed fd and C strings

    use std::ffi::CStr;
    use std::os::fd::{AsFd, AsRawFd};

    use nix::errno::Errno;

    /// `fsetxattr(fd, name, value, 0)`.
    pub(super) fn fset(fd: impl AsFd, name: &CStr, value: &[u8]) -> nix::Result<()> {
        // SAFETY: the fd is borrowed for the call, `name` is NUL-terminated and
        // `value` is a live slice whose length is passed with it.
        let res = unsafe {
            libc::fsetxattr(
                fd.as_fd().as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        Errno::result(res).map(drop)
    }

    /// `lsetxattr(path, name, value, 0)`: never follows the final component.
    pub(super) fn lset(path: &CStr, name: &CStr, value: &[u8]) -> nix::Result<()> {
        // SAFETY: `path` and `name` are NUL-terminated and `value` is a live
        // slice whose length is passed with it.
        let res = unsafe {
            libc::lsetxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        Errno::result(res).map(drop)
    }
}

/// Layers for tests of the size bounds: one file of zeros, gzip'd as it is
/// written, so a layer of hundreds of MiB costs a few hundred KiB.
#[cfg(test)]
pub(crate) mod zeros {
    use std::io::Write;

    use sha2::{Digest, Sha256};

    /// Feeds the tar stream to the compressor and the hash at once.
    struct Tee {
        gzip: flate2::write::GzEncoder<Vec<u8>>,
        hash: Sha256,
    }

    impl Tee {
        fn put(&mut self, bytes: &[u8]) {
            self.hash.update(bytes);
            self.gzip.write_all(bytes).expect("gzip in memory");
        }
    }

    /// A gzip'd tar holding `name`, `size` zero bytes, and the tar's diff id
    /// (`sha256:<hex>`).
    pub(crate) fn gzip_zero_file(name: &str, size: u64) -> (Vec<u8>, String) {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).expect("tar path");
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut tee = Tee {
            gzip: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best()),
            hash: Sha256::new(),
        };
        tee.put(header.as_bytes());
        let block = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len() as u64);
            tee.put(&block[..n as usize]);
            left -= n;
        }
        let padding = (512 - size % 512) % 512;
        tee.put(&block[..padding as usize]);
        tee.put(&[0u8; 1024]);
        let diff_id = format!("sha256:{}", crate::state::hex::encode(&tee.hash.finalize()));
        (tee.gzip.finish().expect("gzip finish"), diff_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::limits::{Bound, ImageLimits};

    fn unpack_bounded(
        layer: &[u8],
        dest: &Path,
        max_layer_size: u64,
    ) -> (Result<UnpackStats, UnpackError>, u64) {
        let image = ImageBudget::new(
            ImageLimits {
                max_layer_size,
                max_image_size: u64::MAX,
            },
            0,
        );
        let mut budget = image.layer();
        let result = unpack_layer_within(
            layer,
            Compression::Gzip,
            dest,
            UnpackOptions::unprivileged(),
            &mut budget,
        );
        (result, budget.used())
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_bound_having_written_no_more_than_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (bomb, _) = zeros::gzip_zero_file("zeros", 64 << 20);
        assert!(bomb.len() < 1 << 20, "the bomb is {} bytes", bomb.len());
        let bound = (4 << 20) + 100;
        let (result, counted) = unpack_bounded(&bomb, dir.path(), bound);
        match result {
            Err(UnpackError::TooLarge {
                exceeded:
                    Exceeded {
                        bound: Bound::Layer,
                        limit,
                    },
                ..
            }) => assert_eq!(limit, bound),
            other => panic!("expected the layer bound, got {other:?}"),
        }
        let written = std::fs::metadata(dir.path().join("zeros"))
            .expect("the partial file")
            .len();
        assert!(written <= bound, "{written} bytes written");
        // Counting stopped at the first chunk past the bound, not at the end
        // of the 64 MiB stream.
        assert!(counted <= bound + CHUNK as u64, "{counted} bytes counted");
    }

    #[test]
    fn a_layer_within_its_bound_unpacks_whole_with_its_diff_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (layer, diff_id) = zeros::gzip_zero_file("zeros", 3 << 20);
        let tar_len = 512 + (3 << 20) + 1024;
        let (result, counted) = unpack_bounded(&layer, dir.path(), tar_len);
        let stats = result.expect("a layer of exactly the bound unpacks");
        assert_eq!((stats.diff_id, stats.bytes), (diff_id, tar_len));
        assert_eq!(counted, tar_len);
        let (result, _) = unpack_bounded(&layer, dir.path(), tar_len - 1);
        assert!(
            matches!(result, Err(UnpackError::TooLarge { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn normalize_strips_root_and_dots_and_rejects_dotdot() {
        let mut out = Vec::new();
        assert!(normalize(b"/etc//./passwd", &mut out).is_ok());
        assert_eq!(out, b"etc/passwd");
        assert!(normalize(b"./", &mut out).is_ok());
        assert!(out.is_empty());
        assert!(matches!(
            normalize(b"a/../../b", &mut out),
            Err(NameError::DotDot)
        ));
    }

    #[test]
    fn pax_time_keeps_nanoseconds() {
        assert_eq!(
            parse_pax_time(b"1700000000.123456789"),
            Some(TimeSpec::new(1_700_000_000, 123_456_789))
        );
        assert_eq!(parse_pax_time(b"5"), Some(TimeSpec::new(5, 0)));
        assert_eq!(
            parse_pax_time(b"-1.5"),
            Some(TimeSpec::new(-2, 500_000_000))
        );
        assert_eq!(parse_pax_time(b"x"), None);
    }

    /// Regression (found by tests/fuzz_inputs.rs): a PAX mtime with a
    /// second sign panicked with "attempt to negate with overflow".
    #[test]
    fn pax_time_with_a_second_sign_is_ignored_not_a_panic() {
        assert_eq!(parse_pax_time(b"--9223372036854775808"), None);
        assert_eq!(parse_pax_time(b"--9223372036854775808.5"), None);
        assert_eq!(parse_pax_time(b"-+5"), None);
        assert_eq!(parse_pax_time(b"+5"), None);
        assert_eq!(
            parse_pax_time(b"-9223372036854775807.5"),
            Some(TimeSpec::new(i64::MIN, 500_000_000))
        );
    }
}
