//! Layer unpack against the real filesystem. Every tar is built here,
//! hostile ones with raw header bytes because `tar::Builder` refuses `..`.
//!
//! Containment and format tests run as any user: as root they unpack the way
//! berth does (`Ownership::Apply`), as an ordinary user with
//! `Ownership::Skip`. Tests of owners, device nodes and `trusted.*` xattrs
//! say that they need root (`prereq::require_root`); tests named `without_root_*`
//! pin what `Ownership::Skip` does, as any user.

mod common;

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth::snapshot::unpack::{
    unpack_layer, unpack_layer_with, Compression, Skipped, UnpackError, UnpackOptions,
};
use berth::snapshot::UnpackStats;
use common::prereq;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

/// How the containment and format tests unpack: as berth does when root,
/// else what an ordinary user can.
fn options() -> UnpackOptions {
    if prereq::euid() == 0 {
        UnpackOptions::default()
    } else {
        UnpackOptions::unprivileged()
    }
}

/// A tar under construction.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn header(kind: EntryType, name: &[u8], size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name);
        h
    }

    fn raw(&mut self, mut h: Header, link: &[u8], data: &[u8]) -> &mut Self {
        if !link.is_empty() {
            let field = &mut h.as_old_mut().linkname;
            field.fill(0);
            field[..link.len()].copy_from_slice(link);
        }
        h.set_cksum();
        self.0.append(&h, data).expect("append");
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let h = Self::header(EntryType::Regular, name.as_bytes(), data.len() as u64);
        self.raw(h, b"", data)
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let mut h = Self::header(EntryType::Directory, name.as_bytes(), 0);
        h.set_mode(mode);
        self.raw(h, b"", b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(EntryType::Symlink, name.as_bytes(), 0);
        self.raw(h, target.as_bytes(), b"")
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(EntryType::Link, name.as_bytes(), 0);
        self.raw(h, target.as_bytes(), b"")
    }

    /// A PAX extended header describing the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = 1 + key.len() + 1 + value.len() + 1; // " key=value\n"
            let mut len = body + 1;
            while len.to_string().len() + body != len {
                len += 1;
            }
            data.extend_from_slice(len.to_string().as_bytes());
            data.push(b' ');
            data.extend_from_slice(key.as_bytes());
            data.push(b'=');
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let h = Self::header(EntryType::XHeader, b"PaxHeader", data.len() as u64);
        self.raw(h, b"", &data)
    }

    fn finish(self) -> Vec<u8> {
        self.0.into_inner().expect("finish tar")
    }
}

/// A temp dir with `dest` (empty, the layer dir) and `outside` (a sibling).
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::create_dir(tmp.path().join("dest")).expect("dest");
        fs::create_dir(tmp.path().join("outside")).expect("outside");
        Self { tmp }
    }

    fn dest(&self) -> PathBuf {
        self.tmp.path().join("dest")
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    fn unpack(&self, tar: &[u8]) -> Result<UnpackStats, UnpackError> {
        self.unpack_compressed(tar, Compression::None)
    }

    fn unpack_compressed(
        &self,
        layer: &[u8],
        compression: Compression,
    ) -> Result<UnpackStats, UnpackError> {
        unpack_layer_with(layer, compression, &self.dest(), options())
    }

    fn unpack_unprivileged(&self, tar: &[u8]) -> Result<UnpackStats, UnpackError> {
        unpack_layer_with(
            tar,
            Compression::None,
            &self.dest(),
            UnpackOptions::unprivileged(),
        )
    }

    /// Asserts that the temp dir holds nothing but `dest/...` and an empty
    /// `outside`.
    fn assert_contained(&self) {
        let mut top: Vec<_> = fs::read_dir(self.tmp.path())
            .expect("read tmp")
            .map(|e| e.expect("entry").file_name())
            .collect();
        top.sort();
        assert_eq!(top, ["dest", "outside"], "something appeared beside dest");
        let outside: Vec<_> = fs::read_dir(self.outside()).expect("outside").collect();
        assert!(
            outside.is_empty(),
            "something appeared outside: {outside:?}"
        );
    }
}

fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let path = CString::new(path.as_os_str().as_bytes()).expect("path");
    let name = CString::new(name).expect("name");
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings and a live buffer of the given length.
    #[allow(unsafe_code)]
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

fn sha256_id(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

const LONG_NAME: &str = "usr/share/a-directory-name-that-is-rather-long/and-a-file-name-that-pushes-the-path-well-past-one-hundred-bytes.txt";

/// A layer with one of every entry type and interesting metadata.
fn full_layer() -> Vec<u8> {
    let mut t = Tar::new();
    let mut h = Tar::header(EntryType::Directory, b"etc/", 0);
    h.set_mode(0o755);
    h.set_mtime(1_000_000);
    t.raw(h, b"", b"");
    t.pax(&[("SCHILY.xattr.user.berth", b"hello")]);
    let mut h = Tar::header(EntryType::Regular, b"etc/passwd", 5);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mode(0o4755);
    h.set_mtime(1_234_567);
    t.raw(h, b"", b"root\n");
    t.hardlink("etc/passwd-hard", "etc/passwd");
    let mut h = Tar::header(EntryType::Symlink, b"etc/link", 0);
    h.set_uid(5);
    h.set_gid(6);
    t.raw(h, b"/etc/passwd", b"");
    let mut h = Tar::header(EntryType::Char, b"dev/null", 0);
    h.set_device_major(1).expect("major");
    h.set_device_minor(3).expect("minor");
    h.set_mode(0o666);
    t.raw(h, b"", b"");
    let mut h = Tar::header(EntryType::Fifo, b"run/fifo", 0);
    h.set_mode(0o640);
    t.raw(h, b"", b"");
    // Long names go through GNU long-name records.
    let mut h = Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_mtime(1);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(EntryType::Regular);
    t.0.append_data(&mut h, LONG_NAME, &b"long"[..])
        .expect("long name");
    let mut tar = t.finish();
    // Bytes after the end-of-archive blocks still count for the diff id.
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// What any user's unpack of [`full_layer`] holds (no owners, no device nodes).
fn check_full_layer(dest: &Path) {
    let passwd = dest.join("etc/passwd");
    let meta = fs::symlink_metadata(&passwd).expect("passwd");
    assert_eq!(fs::read(&passwd).expect("read"), b"root\n");
    assert_eq!(meta.mode() & 0o7777, 0o4755, "setuid survives");
    assert_eq!(meta.mtime(), 1_234_567);
    assert_eq!(
        lgetxattr(&passwd, "user.berth").as_deref(),
        Some(&b"hello"[..])
    );

    let hard = fs::symlink_metadata(dest.join("etc/passwd-hard")).expect("hardlink");
    assert_eq!(hard.ino(), meta.ino(), "hardlink shares the inode");

    let link = dest.join("etc/link");
    assert_eq!(
        fs::read_link(&link).expect("readlink"),
        Path::new("/etc/passwd")
    );

    let fifo = fs::symlink_metadata(dest.join("run/fifo")).expect("fifo");
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o640);

    assert_eq!(fs::read(dest.join(LONG_NAME)).expect("long"), b"long");

    let etc = fs::symlink_metadata(dest.join("etc")).expect("etc");
    assert_eq!(etc.mtime(), 1_000_000, "dir mtime set after its children");
    assert_eq!(etc.mode() & 0o7777, 0o755);

    let implicit = fs::symlink_metadata(dest.join("run")).expect("run");
    assert!(implicit.is_dir());
    assert_eq!(implicit.mode() & 0o7777, 0o755, "missing parents are 0755");
}

/// What only root's unpack of [`full_layer`] holds: owners and device nodes.
fn check_full_layer_ownership(dest: &Path) {
    let passwd = fs::symlink_metadata(dest.join("etc/passwd")).expect("passwd");
    assert_eq!((passwd.uid(), passwd.gid()), (1000, 1001));
    assert_eq!(passwd.mode() & 0o7777, 0o4755, "setuid survives chown");

    let link = fs::symlink_metadata(dest.join("etc/link")).expect("link");
    assert_eq!((link.uid(), link.gid()), (5, 6));

    let null = fs::symlink_metadata(dest.join("dev/null")).expect("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);

    let implicit = fs::symlink_metadata(dest.join("dev")).expect("dev");
    assert_eq!(implicit.mode() & 0o7777, 0o755, "missing parents are 0755");
    assert_eq!((implicit.uid(), implicit.gid()), (0, 0));
}

#[test]
fn plain_layer_keeps_every_entry_type_and_its_metadata() {
    let sandbox = Sandbox::new();
    let tar = full_layer();
    let stats = sandbox.unpack(&tar).expect("unpack");
    check_full_layer(&sandbox.dest());
    assert_eq!(stats.diff_id, sha256_id(&tar));
    assert_eq!(stats.bytes, tar.len() as u64);
    assert_eq!(stats.entries, 7);
    sandbox.assert_contained();
}

#[test]
fn as_root_owners_device_nodes_and_trusted_xattrs_are_applied() {
    if !prereq::require_root("as_root_owners_device_nodes_and_trusted_xattrs_are_applied") {
        return;
    }
    let sandbox = Sandbox::new();
    let mut tar = full_layer();
    let stats = unpack_layer(&tar[..], Compression::None, &sandbox.dest()).expect("unpack");
    check_full_layer(&sandbox.dest());
    check_full_layer_ownership(&sandbox.dest());
    assert_eq!(stats.skipped, Skipped::default());

    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.pax(&[("SCHILY.xattr.trusted.berth", b"t")])
        .file("f", b"x");
    tar = t.finish();
    unpack_layer(&tar[..], Compression::None, &sandbox.dest()).expect("unpack");
    assert_eq!(
        lgetxattr(&sandbox.dest().join("f"), "trusted.berth").as_deref(),
        Some(&b"t"[..])
    );
}

#[test]
fn without_root_owners_devices_and_privileged_xattrs_are_skipped_and_counted() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.pax(&[
        ("SCHILY.xattr.trusted.berth", b"t"),
        ("SCHILY.xattr.security.berth", b"s"),
        ("SCHILY.xattr.user.kept", b"u"),
        ("SCHILY.xattr.user.overlay.opaque", b"y"),
    ])
    .dir("d", 0o755);
    // A skipped device still replaces what its path held.
    t.file("dev/replaced", b"old");
    let mut h = Tar::header(EntryType::Block, b"dev/replaced", 0);
    h.set_device_major(8).expect("major");
    h.set_device_minor(0).expect("minor");
    t.raw(h, b"", b"");
    let mut tar = t.finish();
    let full = full_layer();
    tar.truncate(tar.len() - 1024); // drop the end-of-archive blocks
    tar.extend_from_slice(&full);
    let stats = sandbox.unpack_unprivileged(&tar).expect("unpack");
    let dest = sandbox.dest();
    check_full_layer(&dest);
    let me = (prereq::euid(), fs::metadata(&dest).expect("dest").gid());
    let passwd = fs::symlink_metadata(dest.join("etc/passwd")).expect("passwd");
    assert_eq!(
        (passwd.uid(), passwd.gid()),
        me,
        "owned by the unpacking user"
    );
    assert!(fs::symlink_metadata(dest.join("dev/null")).is_err());
    assert!(fs::symlink_metadata(dest.join("dev/replaced")).is_err());
    let d = dest.join("d");
    assert_eq!(lgetxattr(&d, "user.kept").as_deref(), Some(&b"u"[..]));
    for name in ["trusted.berth", "security.berth", "user.overlay.opaque"] {
        assert!(lgetxattr(&d, name).is_none(), "{name} was set");
    }
    // Entries the tar gives another owner than the unpacking user: as root
    // etc/passwd (1000:1001) and etc/link (5:6); else all 10 but the
    // hardlink, which has no owner of its own.
    let owners = if me == (0, 0) { 2 } else { 9 };
    assert_eq!(
        stats.skipped,
        Skipped {
            owners,
            devices: 2,
            xattrs: 2,
        }
    );
    sandbox.assert_contained();
}

#[test]
fn without_root_directories_keep_their_mode_but_still_get_their_children() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.dir("ro", 0o555)
        .file("ro/f", b"f")
        .dir("ro/sub", 0o500)
        .file("ro/sub/g", b"g")
        // Listed after its child: the child's mode is set first.
        .dir("late/inner", 0o700)
        .file("late/inner/h", b"h")
        .dir("late", 0o100)
        // Two entries for one directory: the last one wins.
        .dir("twice", 0o700)
        .dir("twice", 0o511);
    sandbox.unpack_unprivileged(&t.finish()).expect("unpack");
    let dest = sandbox.dest();
    let mode = |p: &str| fs::symlink_metadata(dest.join(p)).expect(p).mode() & 0o7777;
    assert_eq!(mode("ro"), 0o555);
    assert_eq!(mode("ro/sub"), 0o500);
    assert_eq!(mode("late"), 0o100);
    assert_eq!(mode("twice"), 0o511);
    if prereq::euid() != 0 {
        // Root reads through any mode; an ordinary user only through r-x.
        assert_eq!(fs::read(dest.join("ro/sub/g")).expect("g"), b"g");
    }
    for dir in ["ro", "ro/sub", "late", "twice"] {
        let path = dest.join(dir);
        let mut perms = fs::metadata(&path).expect(dir).permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        fs::set_permissions(&path, perms).expect("let the temp dir go");
    }
    assert_eq!(fs::read(dest.join("late/inner/h")).expect("h"), b"h");
    assert_eq!(fs::read(dest.join("ro/f")).expect("f"), b"f");
}

#[test]
fn gzip_layer_unpacks_and_diff_id_is_sha256_of_the_uncompressed_tar() {
    let sandbox = Sandbox::new();
    let tar = full_layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    let gz = gz.finish().expect("gzip");
    assert_eq!(Compression::sniff(&gz), Compression::Gzip);
    let stats = sandbox
        .unpack_compressed(&gz, Compression::Gzip)
        .expect("unpack");
    check_full_layer(&sandbox.dest());
    assert_eq!(stats.diff_id, sha256_id(&tar));
}

#[test]
fn zstd_layer_unpacks_and_diff_id_is_sha256_of_the_uncompressed_tar() {
    let sandbox = Sandbox::new();
    let tar = full_layer();
    let zst =
        ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
    assert_eq!(Compression::sniff(&zst), Compression::Zstd);
    let stats = sandbox
        .unpack_compressed(&zst, Compression::Zstd)
        .expect("unpack");
    check_full_layer(&sandbox.dest());
    assert_eq!(stats.diff_id, sha256_id(&tar));
}

#[test]
fn large_file_spanning_many_pipeline_chunks_is_written_whole() {
    let sandbox = Sandbox::new();
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut t = Tar::new();
    t.file("big.bin", &data);
    let tar = t.finish();
    let stats = sandbox.unpack(&tar).expect("unpack");
    assert_eq!(
        fs::read(sandbox.dest().join("big.bin")).expect("read"),
        data
    );
    assert_eq!(stats.diff_id, sha256_id(&tar));
}

#[test]
fn truncated_gzip_stream_is_an_error_not_a_panic() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    t.file("a.bin", &data).file("b.bin", &data);
    let tar = t.finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    let gz = gz.finish().expect("gzip");
    for cut in [gz.len() / 3, gz.len() - 4] {
        let result = sandbox.unpack_compressed(&gz[..cut], Compression::Gzip);
        assert!(result.is_err(), "cut at {cut} of {} accepted", gz.len());
    }
}

#[test]
fn truncated_tar_data_is_an_error() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.file("a.bin", &[7u8; 10_000]);
    let tar = t.finish();
    let err = sandbox.unpack(&tar[..512 + 4000]).expect_err("truncated");
    assert!(
        matches!(
            err,
            UnpackError::Truncated { .. } | UnpackError::Read { .. }
        ),
        "{err:?}"
    );
}

fn whiteout_layer() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("etc/", 0o755)
        .file("etc/.wh.hosts", b"")
        .file("var/lib/.wh..wh..opq", b"")
        .file("var/lib/kept", b"k")
        .file(".wh..wh.plnk", b"");
    t.finish()
}

/// Checks an unpacked [`whiteout_layer`] whose opaque marker is `opaque_xattr`
/// and whose whiteout is owned by `owner`.
fn check_whiteout_layer(dest: &Path, opaque_xattr: &str, owner: (u32, u32)) {
    let hosts = fs::symlink_metadata(dest.join("etc/hosts")).expect("whiteout");
    assert!(hosts.file_type().is_char_device());
    assert_eq!(hosts.rdev(), 0);
    assert_eq!((hosts.uid(), hosts.gid()), owner);
    assert!(!dest.join("etc/.wh.hosts").exists());
    assert_eq!(
        lgetxattr(&dest.join("var/lib"), opaque_xattr).as_deref(),
        Some(&b"y"[..])
    );
    assert!(fs::symlink_metadata(dest.join("var/lib/.wh..wh..opq")).is_err());
    assert!(fs::symlink_metadata(dest.join(".wh..wh.plnk")).is_err());
    assert_eq!(fs::read(dest.join("var/lib/kept")).expect("kept"), b"k");
}

#[test]
fn as_root_whiteout_becomes_0_0_char_device_and_opaque_marker_a_trusted_xattr() {
    if !prereq::require_root(
        "as_root_whiteout_becomes_0_0_char_device_and_opaque_marker_a_trusted_xattr",
    ) {
        return;
    }
    let sandbox = Sandbox::new();
    let tar = whiteout_layer();
    unpack_layer(&tar[..], Compression::None, &sandbox.dest()).expect("unpack");
    check_whiteout_layer(&sandbox.dest(), "trusted.overlay.opaque", (0, 0));
}

#[test]
fn without_root_whiteout_is_a_users_char_device_and_opaque_marker_a_user_xattr() {
    let sandbox = Sandbox::new();
    sandbox
        .unpack_unprivileged(&whiteout_layer())
        .expect("unpack");
    let dest = sandbox.dest();
    let me = fs::metadata(&dest).expect("dest");
    check_whiteout_layer(&dest, "user.overlay.opaque", (me.uid(), me.gid()));
    assert!(lgetxattr(&dest.join("var/lib"), "trusted.overlay.opaque").is_none());
}

#[test]
fn later_entry_with_the_same_path_replaces_the_earlier_one() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.file("a", b"first")
        .file("a", b"second")
        .dir("d", 0o700)
        .file("d/child", b"c")
        .dir("d", 0o751)
        .file("x", b"file")
        .dir("x", 0o755)
        .dir("y", 0o755)
        .file("y/z/deep", b"deep")
        .symlink("y", "/nowhere")
        .symlink("s", "/one")
        .file("s", b"now a file");
    sandbox.unpack(&t.finish()).expect("unpack");
    let dest = sandbox.dest();
    assert_eq!(fs::read(dest.join("a")).expect("a"), b"second");
    let d = fs::symlink_metadata(dest.join("d")).expect("d");
    assert_eq!(d.mode() & 0o7777, 0o751, "dir over dir updates metadata");
    assert_eq!(fs::read(dest.join("d/child")).expect("child"), b"c");
    assert!(fs::symlink_metadata(dest.join("x")).expect("x").is_dir());
    assert_eq!(
        fs::read_link(dest.join("y")).expect("y"),
        Path::new("/nowhere")
    );
    let s = fs::symlink_metadata(dest.join("s")).expect("s");
    assert!(s.is_file());
    sandbox.assert_contained();
}

#[test]
fn absolute_entry_name_is_contained_in_the_layer() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    let outside = sandbox.outside().join("pwned");
    t.file(outside.to_str().expect("utf-8"), b"x")
        .file("/etc/x", b"y");
    sandbox.unpack(&t.finish()).expect("unpack");
    assert_eq!(fs::read(sandbox.dest().join("etc/x")).expect("x"), b"y");
    let contained = sandbox
        .dest()
        .join(outside.strip_prefix("/").expect("absolute"));
    assert_eq!(fs::read(contained).expect("contained"), b"x");
    sandbox.assert_contained();
}

#[test]
fn dotdot_in_an_entry_name_rejects_the_layer() {
    for name in ["../outside/pwned", "a/../../outside/pwned", "a/b/.."] {
        let sandbox = Sandbox::new();
        let mut t = Tar::new();
        t.file(name, b"x");
        let err = sandbox.unpack(&t.finish()).expect_err(name);
        match &err {
            UnpackError::DotDot { entry } => assert_eq!(entry, name),
            other => panic!("{name}: unexpected {other:?}"),
        }
        assert!(err.to_string().contains(name), "{err}");
        sandbox.assert_contained();
    }
}

#[test]
fn writing_through_an_absolute_symlink_rejects_the_layer() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.symlink("link", sandbox.outside().to_str().expect("utf-8"))
        .file("link/pwned", b"x");
    let err = sandbox.unpack(&t.finish()).expect_err("through symlink");
    match &err {
        UnpackError::ThroughSymlink { entry, symlink, .. } => {
            assert_eq!(entry, "link/pwned");
            assert_eq!(symlink, "link");
        }
        other => panic!("unexpected {other:?}"),
    }
    sandbox.assert_contained();
}

#[test]
fn writing_through_a_relative_symlink_rejects_the_layer() {
    for (link, entry) in [
        ("../outside", "sub/link/pwned"),
        ("../../..", "sub/link/x"),
        (".", "sub/link/pwned"),
    ] {
        let sandbox = Sandbox::new();
        let mut t = Tar::new();
        t.dir("sub", 0o755)
            .symlink("sub/link", link)
            .file(entry, b"x");
        let err = sandbox.unpack(&t.finish()).expect_err(entry);
        match &err {
            UnpackError::ThroughSymlink {
                entry: e, symlink, ..
            } => {
                assert_eq!(e, entry);
                assert_eq!(symlink, "sub/link");
            }
            other => panic!("{link}: unexpected {other:?}"),
        }
        sandbox.assert_contained();
    }
}

#[test]
fn creating_a_directory_through_a_symlink_rejects_the_layer() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.symlink("link", "../outside").dir("link/newdir", 0o755);
    let err = sandbox
        .unpack(&t.finish())
        .expect_err("dir through symlink");
    assert!(matches!(err, UnpackError::ThroughSymlink { .. }), "{err:?}");
    sandbox.assert_contained();
}

#[test]
fn symlinks_may_point_anywhere_and_are_never_followed() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.symlink("abs", "/etc/shadow")
        .symlink("rel", "../../../../outside")
        .symlink("dangling", "/does/not/exist");
    sandbox.unpack(&t.finish()).expect("unpack");
    let dest = sandbox.dest();
    assert_eq!(
        fs::read_link(dest.join("abs")).expect("abs"),
        Path::new("/etc/shadow")
    );
    assert_eq!(
        fs::read_link(dest.join("rel")).expect("rel"),
        Path::new("../../../../outside")
    );
    sandbox.assert_contained();
}

fn expect_hardlink_rejected(t: Tar, sandbox: &Sandbox, reason_part: &str) {
    let err = sandbox.unpack(&t.finish()).expect_err("hardlink");
    match &err {
        UnpackError::Hardlink { reason, .. } => {
            assert!(reason.contains(reason_part), "{err}")
        }
        other => panic!("unexpected {other:?}"),
    }
    sandbox.assert_contained();
}

#[test]
fn hardlink_to_host_path_is_resolved_in_the_layer_and_rejected_when_missing() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.hardlink("shadow", "/etc/shadow");
    expect_hardlink_rejected(t, &sandbox, "does not exist");
    assert!(!sandbox.dest().join("shadow").exists());
}

#[test]
fn hardlink_with_absolute_target_in_the_layer_is_allowed() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.file("etc/shadow", b"s").hardlink("copy", "/etc/shadow");
    sandbox.unpack(&t.finish()).expect("unpack");
    let a = fs::metadata(sandbox.dest().join("etc/shadow")).expect("a");
    let b = fs::metadata(sandbox.dest().join("copy")).expect("b");
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn hardlink_with_dotdot_target_rejects_the_layer() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.outside().join("x"), b"secret").expect("outside file");
    let mut t = Tar::new();
    t.hardlink("x", "../outside/x");
    let err = sandbox.unpack(&t.finish()).expect_err("dotdot hardlink");
    assert!(
        matches!(&err, UnpackError::Hardlink { reason, .. } if reason.contains("..")),
        "{err:?}"
    );
    assert!(!sandbox.dest().join("x").exists());
    fs::remove_file(sandbox.outside().join("x")).expect("cleanup");
    sandbox.assert_contained();
}

#[test]
fn hardlink_to_missing_path_rejects_the_layer() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.hardlink("x", "not/there");
    expect_hardlink_rejected(t, &sandbox, "does not exist");
}

#[test]
fn hardlink_through_a_symlink_or_to_a_non_file_rejects_the_layer() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.outside().join("f"), b"secret").expect("outside file");
    let mut t = Tar::new();
    t.symlink("link", "../outside").hardlink("x", "link/f");
    let err = sandbox.unpack(&t.finish()).expect_err("through symlink");
    assert!(
        matches!(&err, UnpackError::Hardlink { reason, .. } if reason.contains("symlink")),
        "{err:?}"
    );
    fs::remove_file(sandbox.outside().join("f")).expect("cleanup");
    sandbox.assert_contained();

    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.symlink("link", "/etc/shadow").hardlink("x", "link");
    expect_hardlink_rejected(t, &sandbox, "not a regular file");
}

#[test]
fn whiteout_of_dot_or_dotdot_rejects_the_layer() {
    for name in ["etc/.wh...", "etc/.wh..", ".wh."] {
        let sandbox = Sandbox::new();
        let mut t = Tar::new();
        t.file(name, b"");
        let err = sandbox.unpack(&t.finish()).expect_err(name);
        assert!(
            matches!(err, UnpackError::Whiteout { .. }),
            "{name}: {err:?}"
        );
        sandbox.assert_contained();
    }
}

#[test]
fn whiteout_through_a_symlink_rejects_the_layer() {
    for name in ["link/.wh.passwd", "link/.wh..wh..opq"] {
        let sandbox = Sandbox::new();
        let mut t = Tar::new();
        t.symlink("link", sandbox.outside().to_str().expect("utf-8"))
            .file(name, b"");
        let err = sandbox.unpack(&t.finish()).expect_err(name);
        assert!(
            matches!(err, UnpackError::ThroughSymlink { .. }),
            "{name}: {err:?}"
        );
        assert!(lgetxattr(&sandbox.outside(), "trusted.overlay.opaque").is_none());
        assert!(lgetxattr(&sandbox.outside(), "user.overlay.opaque").is_none());
        sandbox.assert_contained();
    }
}

#[test]
fn overlay_xattrs_in_the_tar_are_not_applied() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("d", 0o755);
    sandbox.unpack(&t.finish()).expect("unpack");
    assert!(lgetxattr(&sandbox.dest().join("d"), "trusted.overlay.opaque").is_none());
}

#[test]
fn pax_path_and_mtime_are_honoured() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.pax(&[("path", b"pax/named/file"), ("mtime", b"1700000000.25")])
        .file("short", b"p");
    sandbox.unpack(&t.finish()).expect("unpack");
    let meta = fs::metadata(sandbox.dest().join("pax/named/file")).expect("pax path");
    assert_eq!(meta.mtime(), 1_700_000_000);
    assert_eq!(meta.mtime_nsec(), 250_000_000);
    assert!(!sandbox.dest().join("short").exists());
}

/// Rough speed check against `zcat | tar -x` (release mode, by hand):
/// `cargo test --release --test unpack -- --ignored --nocapture`.
/// Uses `/tmp/usr.tgz` if it exists.
#[test]
#[ignore]
fn unpack_speed_on_a_real_layer() {
    let layer = Path::new("/tmp/usr.tgz");
    let Ok(file) = fs::File::open(layer) else {
        eprintln!("no {} to measure", layer.display());
        return;
    };
    let sandbox = Sandbox::new();
    let start = std::time::Instant::now();
    let stats = unpack_layer(file, Compression::Gzip, &sandbox.dest()).expect("unpack");
    let took = start.elapsed();
    eprintln!(
        "unpacked {} entries, {} MB in {:.3}s ({})",
        stats.entries,
        stats.bytes / 1_000_000,
        took.as_secs_f64(),
        stats.diff_id
    );
}
