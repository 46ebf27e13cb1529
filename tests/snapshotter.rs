//! The snapshotter conformance suite (`berth::snapshot::testsuite`) against
//! the overlay snapshotter exactly as berth runs it: layers unpacked as root,
//! real overlay mounts. Needs root; every case says so and skips without it.
//! The same suite runs without root, with a recording mounter, among the
//! unit tests of `src/snapshot/overlay.rs`.

mod common;

use std::path::Path;

use berth::snapshot::overlay::is_overlay_mounted;
use berth::snapshot::testsuite::Harness;
use berth::snapshot::OverlaySnapshotter;
use common::prereq;

struct RealMounts;

impl Harness for RealMounts {
    type Snapshotter = OverlaySnapshotter;

    fn open(&self, root: &Path) -> Self::Snapshotter {
        OverlaySnapshotter::open(root).expect("open snapshotter")
    }

    fn is_mounted(&self, _: &Self::Snapshotter, target: &Path) -> bool {
        is_overlay_mounted(target)
    }

    fn real_mounts(&self) -> bool {
        true
    }
}

berth::snapshotter_testsuite!(
    {
        if !prereq::require_root("snapshotter conformance with real overlay mounts") {
            return;
        }
        RealMounts
    },
    tempfile::tempdir().expect("tempdir")
);
