//! The host seam: the processes berth looks at and signals by pid, and the
//! clock it waits on. The real host ([`crate::runtime::process::ProcHost`])
//! reads `/proc`; a test host answers from a table, so the protocols that
//! stop and remove containers can be tested without processes or waiting.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// Processes by pid, as the host shows them, and time.
///
/// A pid names a process only while it lives: callers that keep one across
/// waits compare [`start_time`](Host::start_time) to know it is the same
/// process. A zombie (exited, not yet reaped) counts as gone everywhere.
pub trait Host {
    /// Whether a process with this pid lives (is not a zombie).
    fn pid_alive(&self, pid: u32) -> bool;

    /// When the process started, in clock ticks since boot; None when it
    /// is gone.
    fn start_time(&self, pid: u32) -> Option<u64>;

    /// The live processes in process group `pgid`.
    fn group_members(&self, pgid: u32) -> Vec<u32>;

    /// Sends `signal` to `pid`; a pid that is gone is not an error.
    fn signal(&self, pid: u32, signal: Signal);

    /// The monotonic clock.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Waits `duration` before the next look.
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}
