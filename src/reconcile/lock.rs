//! One writer at a time per state root: `apply`, `delete`, `gc` and the
//! daemon take this lock before they change anything and hold it while
//! they reconcile, so two of them never fight over the same objects.
//! `berth run`, `rm` and `stop` take it too, briefly: around checking and
//! creating (or removing, or stopping) a container's record, never while
//! the container runs. So a name `run` takes is never taken over by an
//! apply that planned before it existed, and the reverse.
//!
//! The lock is a flock on a file of its own, taken by a new open: a
//! process that holds it must not ask for it again (it would wait for
//! itself), so only the command's entry point takes it, never the engine.

use std::path::PathBuf;
use std::time::Duration;

use crate::state::clock::Clock;
use crate::state::lock::{self, Lock, LockError};
use crate::state::Layout;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileLockError {
    #[error("another reconciler still runs on {state} after {}s of waiting: {busy}; try again when it is done", .waited.as_secs())]
    StillBusy {
        state: PathBuf,
        busy: LockError,
        waited: Duration,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Takes the state root's reconcile lock. A second reconciler (a file
/// watcher firing twice, a timer during a manual apply) is told whom it
/// waits for through `on_wait` (once), waits up to `patience`, and then
/// fails naming the holder.
pub fn acquire(
    layout: &Layout,
    patience: Duration,
    clock: &dyn Clock,
    on_wait: &mut dyn FnMut(&LockError),
) -> Result<Lock, ReconcileLockError> {
    let path = layout.reconcile_lock();
    let deadline = clock.now() + patience;
    let mut said = false;
    loop {
        match lock::acquire(&path, lock::Mode::Exclusive, false) {
            Ok(held) => {
                // The holder's pid, for the message a waiting reconciler prints.
                let _ = std::fs::write(&path, std::process::id().to_string());
                return Ok(held);
            }
            Err(busy @ LockError::Busy { .. }) => {
                if clock.now() >= deadline {
                    return Err(ReconcileLockError::StillBusy {
                        state: layout.state.clone(),
                        busy,
                        waited: patience,
                    });
                }
                if !said {
                    on_wait(&busy);
                    said = true;
                }
                clock.sleep(Duration::from_millis(100));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::clock::ManualClock;

    #[test]
    fn a_second_reconciler_is_told_once_then_gives_up_at_its_patience() {
        let dir = tempfile::tempdir().unwrap();
        let state = Layout::new(&dir.path().join("root"), &dir.path().join("state"));
        let clock = ManualClock::default();
        let first = acquire(&state, Duration::ZERO, &clock, &mut |_| {}).unwrap();
        let mut told = 0;
        let start = clock.now();
        let second = acquire(&state, Duration::from_secs(2), &clock, &mut |_| told += 1);
        assert!(
            matches!(second, Err(ReconcileLockError::StillBusy { .. })),
            "{second:?}"
        );
        assert_eq!(told, 1);
        assert!(clock.now() - start >= Duration::from_secs(2));
        drop(first);
        assert!(acquire(&state, Duration::ZERO, &clock, &mut |_| {}).is_ok());
    }
}
