//! The host seam: the processes berth looks at and signals by pid, and the
//! clock it waits on. The real host ([`crate::runtime::process::ProcHost`])
//! reads `/proc`; a test host answers from a table, so the protocols that
//! stop and remove containers can be tested without processes or waiting.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::process::ProcessId;

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

    /// Sends `signal` to `process` if it still is that process (same pid,
    /// same start time), never to whatever has taken its pid since; one
    /// that is gone is not an error.
    fn signal(&self, process: ProcessId, signal: Signal);

    /// Whether `process` still lives: its pid is alive and started when
    /// the recorded one did.
    fn is_alive(&self, process: ProcessId) -> bool {
        self.start_time(process.pid) == Some(process.start_time)
    }

    /// The shim that holds the shim lock `lock` of the container directory
    /// `dir`, found by the lock itself: for a shim whose pid file is
    /// missing, garbage or names another process.
    fn shim_holding(&self, lock: &Path, dir: &Path) -> Option<ProcessId> {
        let _ = (lock, dir);
        None
    }

    /// The monotonic clock.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Waits `duration` before the next look.
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A host of pretend processes for tests: a table of pids with their
/// groups and the (virtual) time each exits, the signals sent, and a clock
/// that only [`Host::sleep`] advances, so waits cost no time.
#[cfg(test)]
pub mod fake {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Default)]
    struct Process {
        group: u32,
        started: u64,
        exits_at: Option<Duration>,
        dies_of: Vec<Signal>,
    }

    pub struct FakeHost {
        origin: Instant,
        elapsed: RefCell<Duration>,
        processes: RefCell<BTreeMap<u32, Process>>,
        signals: RefCell<Vec<(u32, Signal)>>,
    }

    impl Default for FakeHost {
        fn default() -> Self {
            FakeHost {
                origin: Instant::now(),
                elapsed: RefCell::default(),
                processes: RefCell::default(),
                signals: RefCell::default(),
            }
        }
    }

    impl FakeHost {
        /// A live process `pid` in group `group`, which dies of `dies_of`.
        pub fn spawn(&self, pid: u32, group: u32, dies_of: &[Signal]) {
            self.spawn_started(pid, group, u64::from(pid), dies_of);
        }

        /// Like [`FakeHost::spawn`], started at tick `started` (a process
        /// that reused a pid started later than the one recorded).
        pub fn spawn_started(&self, pid: u32, group: u32, started: u64, dies_of: &[Signal]) {
            let process = Process {
                group,
                started,
                exits_at: None,
                dies_of: dies_of.to_vec(),
            };
            self.processes.borrow_mut().insert(pid, process);
        }

        /// `pid` exits `after` from now.
        pub fn exit_after(&self, pid: u32, after: Duration) {
            let at = self.elapsed() + after;
            if let Some(process) = self.processes.borrow_mut().get_mut(&pid) {
                process.exits_at = Some(process.exits_at.map_or(at, |t| t.min(at)));
            }
        }

        /// Virtual time since the host was made.
        pub fn elapsed(&self) -> Duration {
            *self.elapsed.borrow()
        }

        pub fn signals(&self) -> Vec<(u32, Signal)> {
            self.signals.borrow().clone()
        }

        fn live(&self, pid: u32) -> bool {
            let now = self.elapsed();
            self.processes
                .borrow()
                .get(&pid)
                .is_some_and(|p| p.exits_at.is_none_or(|t| now < t))
        }
    }

    impl Host for FakeHost {
        fn pid_alive(&self, pid: u32) -> bool {
            self.live(pid)
        }

        fn start_time(&self, pid: u32) -> Option<u64> {
            let started = self.processes.borrow().get(&pid).map(|p| p.started);
            started.filter(|_| self.live(pid))
        }

        fn group_members(&self, pgid: u32) -> Vec<u32> {
            let pids: Vec<u32> = self.processes.borrow().keys().copied().collect();
            pids.into_iter()
                .filter(|&pid| self.live(pid) && self.processes.borrow()[&pid].group == pgid)
                .collect()
        }

        fn signal(&self, process: ProcessId, signal: Signal) {
            if !self.is_alive(process) {
                return;
            }
            let pid = process.pid;
            self.signals.borrow_mut().push((pid, signal));
            let dies = self
                .processes
                .borrow()
                .get(&pid)
                .is_some_and(|p| p.dies_of.contains(&signal));
            if dies {
                self.exit_after(pid, Duration::ZERO);
            }
        }

        fn now(&self) -> Instant {
            self.origin + self.elapsed()
        }

        fn sleep(&self, duration: Duration) {
            *self.elapsed.borrow_mut() += duration;
        }
    }
}
