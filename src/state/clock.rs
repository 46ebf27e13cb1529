//! Time, behind one seam: the reconciler's loop asks a [`Clock`] for "now"
//! and to wait, so tests can drive it with a clock they move by hand
//! instead of sleeping.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Monotonic time and waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    /// Waits `duration` (a test clock advances itself instead).
    fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_secs() -> u64 {
    unix_ms() / 1000
}

/// Time since the Unix epoch, with nanoseconds (log timestamps).
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A clock that moves only when it is told to or when asked to sleep: the
/// loop under test runs at full speed and sees exactly the time it waited.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<Instant>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            now: std::sync::Mutex::new(Instant::now()),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_or_slept() {
        let clock = ManualClock::default();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.sleep(Duration::from_secs(3));
        clock.advance(Duration::from_millis(500));
        assert_eq!(clock.now() - start, Duration::from_millis(3500));
    }
}
