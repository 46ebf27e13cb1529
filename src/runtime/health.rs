//! Health checks: the state machine, pure. The shim runs the check command
//! (`runtime exec`), kills it when it overruns its timeout, and feeds the
//! result here with the current time.
//!
//! - A new run starts `Starting` with a streak of 0.
//! - A success: `Healthy`, streak 0.
//! - A failure (non-zero exit, or timeout) within `start_period_ms` of the
//!   start is recorded but does not count.
//! - Otherwise a failure adds one to the streak; at `retries` (at least 1)
//!   the state becomes `Unhealthy`.

use crate::runtime::container_dir::{Health, HealthConfig, HealthState};

/// The most output kept from one check.
pub const MAX_OUTPUT: usize = 4096;

/// What one check run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The command's exit code; None when it was killed (timeout) or by a signal.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Its output, stdout and stderr interleaved, at most [`MAX_OUTPUT`] bytes.
    pub output: String,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }
}

/// The health of a run that just started.
pub fn starting() -> Health {
    Health {
        state: HealthState::Starting,
        failing_streak: 0,
        last_output: String::new(),
        last_exit_code: None,
        last_check_unix_ms: 0,
    }
}

/// The health after `result`, for a run that started at `started_unix_ms`.
pub fn record(
    health: &Health,
    config: &HealthConfig,
    result: &CheckResult,
    started_unix_ms: u64,
    now_unix_ms: u64,
) -> Health {
    let mut next = Health {
        last_output: result.output.clone(),
        last_exit_code: result.exit_code,
        last_check_unix_ms: now_unix_ms,
        ..health.clone()
    };
    if result.passed() {
        next.state = HealthState::Healthy;
        next.failing_streak = 0;
    } else if now_unix_ms.saturating_sub(started_unix_ms) >= config.start_period_ms {
        next.failing_streak = next.failing_streak.saturating_add(1);
        if next.failing_streak >= config.retries.max(1) {
            next.state = HealthState::Unhealthy;
        }
    }
    next
}

/// True when this transition is the one into `Unhealthy` (the moment to act).
pub fn became_unhealthy(before: &Health, after: &Health) -> bool {
    before.state != HealthState::Unhealthy && after.state == HealthState::Unhealthy
}

/// Check output as text: at most [`MAX_OUTPUT`] bytes, invalid UTF-8 replaced.
pub fn output_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_OUTPUT)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::container_dir::HealthProbe;

    fn config(retries: u32, start_period_ms: u64) -> HealthConfig {
        HealthConfig {
            check: HealthProbe::Exec(vec!["true".into()]),
            interval_ms: 1000,
            timeout_ms: 500,
            retries,
            start_period_ms,
            restart_on_unhealthy: false,
        }
    }

    fn pass() -> CheckResult {
        CheckResult {
            exit_code: Some(0),
            timed_out: false,
            output: "ok".into(),
        }
    }

    fn fail() -> CheckResult {
        CheckResult {
            exit_code: Some(1),
            timed_out: false,
            output: "bad".into(),
        }
    }

    fn timeout() -> CheckResult {
        CheckResult {
            exit_code: None,
            timed_out: true,
            output: String::new(),
        }
    }

    #[test]
    fn a_success_makes_it_healthy_and_clears_the_streak() {
        let c = config(3, 0);
        let h = record(&starting(), &c, &fail(), 0, 10);
        assert_eq!(h.failing_streak, 1);
        let h = record(&h, &c, &pass(), 0, 20);
        assert_eq!(h.state, HealthState::Healthy);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.last_output, "ok");
        assert_eq!(h.last_exit_code, Some(0));
        assert_eq!(h.last_check_unix_ms, 20);
    }

    #[test]
    fn retries_consecutive_failures_make_it_unhealthy() {
        let c = config(3, 0);
        let mut h = record(&starting(), &c, &pass(), 0, 1);
        for (i, now) in [2u64, 3].into_iter().enumerate() {
            let next = record(&h, &c, &fail(), 0, now);
            assert_eq!(next.state, HealthState::Healthy, "after {} failures", i + 1);
            assert!(!became_unhealthy(&h, &next));
            h = next;
        }
        let next = record(&h, &c, &fail(), 0, 4);
        assert_eq!(next.state, HealthState::Unhealthy);
        assert!(became_unhealthy(&h, &next));
        // Staying unhealthy is not a new transition.
        let again = record(&next, &c, &fail(), 0, 5);
        assert!(!became_unhealthy(&next, &again));
        assert_eq!(again.failing_streak, 4);
    }

    #[test]
    fn a_timeout_counts_as_a_failure() {
        let c = config(1, 0);
        let h = record(&starting(), &c, &timeout(), 0, 1);
        assert_eq!(h.state, HealthState::Unhealthy);
        assert_eq!(h.last_exit_code, None);
    }

    #[test]
    fn failures_during_the_start_period_do_not_count() {
        let c = config(1, 5_000);
        let h = record(&starting(), &c, &fail(), 1_000, 5_999);
        assert_eq!(h.state, HealthState::Starting);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.last_output, "bad");
        let h = record(&h, &c, &fail(), 1_000, 6_000);
        assert_eq!(h.state, HealthState::Unhealthy);
    }

    #[test]
    fn zero_retries_means_one_failure_is_enough() {
        let h = record(&starting(), &config(0, 0), &fail(), 0, 1);
        assert_eq!(h.state, HealthState::Unhealthy);
    }

    #[test]
    fn output_is_cut_at_4k() {
        assert_eq!(output_text(&[b'a'; 5000]).len(), MAX_OUTPUT);
        assert_eq!(output_text(b"fine"), "fine");
    }
}
