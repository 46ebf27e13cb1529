//! The mount table a runtime call sees.
//!
//! Every container berth runs puts mounts in the host's table: its rootfs
//! overlay and its pinned network namespace. runc reads the whole table
//! (`/proc/self/mountinfo`) several times per call, and the kernel prints
//! every line of it each time, so with a thousand containers a `runc run -d`
//! cost 3.5 times its CPU on a bare host (measured: 38 ms with the host's
//! 21 mounts, 140 ms with 1000 overlays and 1000 pins). None of those mounts
//! is the call's business but its own container's.
//!
//! So a detached `runtime run` and a `runtime delete` start in a mount
//! namespace of their own, made between fork and exec: every mount in it
//! becomes a slave of the host's (what the host mounts or unmounts later
//! still reaches it; what is unmounted in it never reaches the host), then
//! the mounts under the directories where berth keeps other containers'
//! mounts are detached, except those the container's bundle names. The
//! namespace ends with the runtime process; the container's own namespace
//! is the runtime's to make, from this one, as before.
//!
//! Whatever goes wrong leaves the call in the host's namespace as before:
//! no `unshare`, no slave marking (then nothing is detached: a detach in a
//! namespace whose mounts are still shared would reach the host), or a
//! mount gone by the time it is detached.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// The largest mount table read: about 2 MiB is ten thousand mounts.
const MAX_MOUNTINFO_BYTES: u64 = 64 << 20;

/// The largest bundle config read for the paths it names.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The mounts a runtime call is to run without, as C strings made before
/// the fork (nothing may allocate between fork and exec).
#[derive(Debug, Default)]
pub(super) struct MountView {
    detach: Vec<CString>,
}

impl MountView {
    /// The mounts under `hide_under` in this process's table, but for
    /// those `bundle`'s config.json names (namespace paths, mount sources)
    /// and those in `own_dir`. Empty when there is nothing to hide or the
    /// table or config cannot be read.
    pub fn for_bundle(hide_under: &[PathBuf], own_dir: &Path, bundle: &Path) -> MountView {
        if hide_under.is_empty() {
            return MountView::default();
        }
        let (Ok(table), Ok(config)) = (
            read_bounded(Path::new("/proc/self/mountinfo"), MAX_MOUNTINFO_BYTES),
            read_bounded(&bundle.join("config.json"), MAX_CONFIG_BYTES),
        ) else {
            return MountView::default();
        };
        let Ok(config) = serde_json::from_slice::<BundlePaths>(&config) else {
            return MountView::default();
        };
        let mut keep = config.paths();
        keep.push(own_dir.to_path_buf());
        let detach = mounts_to_hide(&String::from_utf8_lossy(&table), hide_under, &keep)
            .into_iter()
            .filter_map(|path| CString::new(path.as_os_str().as_bytes()).ok())
            .collect();
        MountView { detach }
    }

    /// Makes `command` start in its own mount namespace without these
    /// mounts. Nothing happens when there are none.
    pub fn apply_to(self, command: &mut Command) {
        if self.detach.is_empty() {
            return;
        }
        let detach = self.detach;
        // SAFETY: the hook runs between fork and exec in the child of a
        // single-threaded shim; it only makes system calls on strings built
        // before the fork, and allocates nothing.
        #[allow(unsafe_code)] // reason: pre_exec is unsafe; std offers no other hook
        unsafe {
            command.pre_exec(move || {
                enter_namespace_without(&detach);
                Ok(())
            });
        }
    }
}

/// `unshare(CLONE_NEWNS)`, every mount a slave, then each of `detach`
/// detached. Any failure stops it where it is (see the module's text).
#[allow(unsafe_code)] // reason: raw system calls, the only async-signal-safe way here
fn enter_namespace_without(detach: &[CString]) {
    // SAFETY: plain system calls on valid NUL-terminated strings.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return;
        }
        let root = c"/";
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        ) != 0
        {
            return;
        }
        for path in detach {
            libc::umount2(path.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW);
        }
    }
}

/// The mount points of `table` (mountinfo) at or under one of
/// `hide_under` (not a directory itself) that are not at, above or under
/// one of `keep`; deepest first.
pub(super) fn mounts_to_hide(
    table: &str,
    hide_under: &[PathBuf],
    keep: &[PathBuf],
) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| {
            hide_under
                .iter()
                .any(|dir| point != dir && point.starts_with(dir))
        })
        .filter(|point| {
            !keep
                .iter()
                .any(|kept| point.starts_with(kept) || kept.starts_with(point))
        })
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.as_os_str().len()));
    points.dedup();
    points
}

/// A mountinfo field with its octal escapes (`\040` for a space, ...)
/// turned back into bytes.
fn unescape(field: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        let octal = digits.filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// The paths a bundle's config.json hands the runtime: namespaces to join
/// and mount sources. Those must stay in the call's namespace.
#[derive(Deserialize, Default)]
struct BundlePaths {
    #[serde(default)]
    mounts: Vec<PathField>,
    #[serde(default)]
    linux: Option<LinuxPaths>,
}

#[derive(Deserialize, Default)]
struct LinuxPaths {
    #[serde(default)]
    namespaces: Vec<PathField>,
}

#[derive(Deserialize)]
struct PathField {
    #[serde(default, alias = "source")]
    path: Option<PathBuf>,
}

impl BundlePaths {
    fn paths(self) -> Vec<PathBuf> {
        let namespaces = self.linux.map(|l| l.namespaces).unwrap_or_default();
        self.mounts
            .into_iter()
            .chain(namespaces)
            .filter_map(|field| field.path)
            .filter(|path| path.is_absolute())
            .collect()
    }
}

fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "{} is over {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
25 22 0:23 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
90 25 0:50 / /run/berth/containers/web/bundle/rootfs rw shared:40 - overlay overlay rw,lowerdir=/l
91 25 0:4 net:[4026532] /run/berth/netns/web rw shared:5 - nsfs nsfs rw
92 25 0:51 / /run/berth/containers/db/bundle/rootfs rw shared:41 - overlay overlay rw,lowerdir=/l
93 25 0:4 net:[4026533] /run/berth/netns/db rw shared:5 - nsfs nsfs rw
94 25 0:52 / /run/berth/containers/my\\040app/bundle/rootfs rw shared:42 - overlay overlay rw
95 25 0:53 / /run/berth/netns rw shared:43 - tmpfs tmpfs rw
96 22 0:54 / /srv/data rw shared:44 - ext4 /dev/vdb rw
";

    fn hide() -> Vec<PathBuf> {
        vec!["/run/berth/containers".into(), "/run/berth/netns".into()]
    }

    #[test]
    fn other_containers_mounts_go_and_the_containers_own_stay() {
        let keep = [
            PathBuf::from("/run/berth/containers/web"),
            PathBuf::from("/run/berth/netns/web"),
        ];
        let hidden = mounts_to_hide(TABLE, &hide(), &keep);
        assert_eq!(
            hidden,
            [
                PathBuf::from("/run/berth/containers/my app/bundle/rootfs"),
                PathBuf::from("/run/berth/containers/db/bundle/rootfs"),
                PathBuf::from("/run/berth/netns/db"),
            ]
        );
    }

    #[test]
    fn what_the_bundle_names_stays_and_so_does_what_holds_it() {
        // The bundle joins db's namespace and bind-mounts a path inside
        // my app's rootfs: both stay (and the directories themselves are
        // never detached); its own namespace pin, not named, goes.
        let keep = [
            PathBuf::from("/run/berth/containers/web"),
            PathBuf::from("/run/berth/netns/db"),
            PathBuf::from("/run/berth/containers/my app/bundle/rootfs/srv"),
        ];
        let hidden = mounts_to_hide(TABLE, &hide(), &keep);
        assert_eq!(
            hidden,
            [
                PathBuf::from("/run/berth/containers/db/bundle/rootfs"),
                PathBuf::from("/run/berth/netns/web"),
            ]
        );
    }

    #[test]
    fn nothing_outside_the_hidden_directories_is_touched() {
        let hidden = mounts_to_hide(TABLE, &[PathBuf::from("/srv")], &[]);
        assert_eq!(hidden, [PathBuf::from("/srv/data")]);
        assert!(mounts_to_hide(TABLE, &[], &[]).is_empty());
    }

    #[test]
    fn escapes_are_read_back_and_malformed_ones_kept_as_they_are() {
        assert_eq!(unescape("/a\\040b\\011c"), "/a b\tc");
        assert_eq!(unescape("/a\\9b\\04"), "/a\\9b\\04");
    }

    #[test]
    fn the_bundle_paths_are_its_namespaces_and_mount_sources() {
        let config = r#"{"mounts":[{"destination":"/data","type":"bind","source":"/srv/data"},
            {"destination":"/proc","type":"proc","source":"proc"}],
            "linux":{"namespaces":[{"type":"network","path":"/run/berth/netns/web"},{"type":"pid"}]}}"#;
        let paths = serde_json::from_str::<BundlePaths>(config).unwrap().paths();
        assert_eq!(
            paths,
            [
                PathBuf::from("/srv/data"),
                PathBuf::from("/run/berth/netns/web")
            ]
        );
    }
}
