//! When a burst of file events has settled: a `git pull` or an editor's
//! save is many events within milliseconds, and reading the tree in the
//! middle of one would see half of it. Pure, with the time passed in.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Debounce {
    /// Fire once no event came for this long.
    quiet: Duration,
    /// But never later than this after the burst's first event, so a tree
    /// that never stops changing is still read.
    longest: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Debounce {
    pub fn new(quiet: Duration) -> Self {
        Debounce {
            quiet,
            longest: quiet * 10,
            first: None,
            last: None,
        }
    }

    /// An event came at `now`.
    pub fn event(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the burst in progress settles; None when there is none.
    pub fn due(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + self.quiet).min(first + self.longest))
    }

    /// Whether the burst has settled at `now`; if so, it is over.
    pub fn fire(&mut self, now: Instant) -> bool {
        match self.due() {
            Some(due) if now >= due => {
                self.first = None;
                self.last = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(200);

    #[test]
    fn a_burst_fires_once_after_it_went_quiet() {
        let start = Instant::now();
        let mut debounce = Debounce::new(QUIET);
        assert_eq!(debounce.due(), None);
        for ms in [0, 30, 60, 90] {
            debounce.event(start + Duration::from_millis(ms));
        }
        assert!(!debounce.fire(start + Duration::from_millis(200)));
        assert_eq!(debounce.due(), Some(start + Duration::from_millis(290)));
        assert!(debounce.fire(start + Duration::from_millis(290)));
        assert!(!debounce.fire(start + Duration::from_millis(900)), "once");
    }

    #[test]
    fn a_tree_that_never_settles_is_still_read() {
        let start = Instant::now();
        let mut debounce = Debounce::new(QUIET);
        let mut fired = 0;
        for step in 0..100 {
            let now = start + Duration::from_millis(step * 100);
            debounce.event(now);
            if debounce.fire(now) {
                fired += 1;
            }
        }
        // Events every 100 ms never leave 200 ms of quiet: the bound of
        // ten quiet periods (2 s) fires it every 2 s of the 10 s.
        assert!((4..=5).contains(&fired), "fired {fired} times");
    }
}
