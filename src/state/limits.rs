//! Bounds on what berth reads from files a manifest names and on what a
//! container's spec may hold: documented defaults, raised or lowered by
//! global options (`--max-env-file-size`, `--max-env-entries`).

/// The bounds one berth command works under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// The most berth reads of a file a manifest names (an env file, a
    /// seccomp profile).
    pub max_referenced_file: u64,
    /// The most environment variables a container gets (image, env files,
    /// manifest and berth's own together).
    pub max_env_entries: usize,
}

/// Far more than any real env file or seccomp profile: a `/dev/zero` or a
/// runaway file stops here instead of filling memory.
pub const MAX_REFERENCED_FILE_BYTES: u64 = 4 << 20;

/// Far more than any real image or manifest sets (the kernel refuses an
/// exec whose strings pass a few MiB anyway), so a hostile image config
/// stops here.
pub const MAX_ENV_ENTRIES: usize = 65_536;

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_referenced_file: MAX_REFERENCED_FILE_BYTES,
            max_env_entries: MAX_ENV_ENTRIES,
        }
    }
}
