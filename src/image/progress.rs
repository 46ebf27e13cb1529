//! Progress of long operations (fetching, storing, unpacking), reported to
//! whoever shows it: the CLI draws it, the library only emits events.

use super::digest::Digest;

/// Reports progress of long operations to whoever shows it.
pub trait Progress: Sync {
    fn event(&self, event: ProgressEvent<'_>);
}

#[derive(Debug, Clone, Copy)]
pub enum ProgressEvent<'a> {
    /// Bytes of a blob transferred so far.
    Fetch {
        digest: &'a Digest,
        done: u64,
        total: u64,
    },
    /// A blob is stored and verified.
    Stored { digest: &'a Digest, size: u64 },
    /// A layer started unpacking.
    UnpackStart {
        digest: &'a Digest,
        index: usize,
        count: usize,
    },
    /// A layer is unpacked and committed.
    Unpacked {
        digest: &'a Digest,
        bytes: u64,
        entries: u64,
    },
    /// A layer was already unpacked.
    LayerExists { digest: &'a Digest },
}

/// Progress that goes nowhere (library callers and tests).
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: ProgressEvent<'_>) {}
}
