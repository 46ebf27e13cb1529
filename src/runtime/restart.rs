//! Restart policy and backoff, as pure functions of the facts (policy, how
//! the container ended, how long it ran, how many restarts came before).
//! The shim asks these and acts; time is passed in, never read or slept here.

use crate::runtime::container_dir::{RestartConfig, RestartPolicy};

/// How a container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// It exited with this code.
    Code(i32),
    /// A signal (this number) killed it.
    Signal(i32),
}

impl ExitKind {
    /// Exit code 0. A signal is never success.
    pub fn is_success(self) -> bool {
        self == ExitKind::Code(0)
    }
}

/// Whether the shim starts the container again after it ended with `exit`.
///
/// - `always`, `unless-stopped`: yes, unless a stop was requested (the two
///   differ only for the reconciler, after a host reboot).
/// - `on-failure`: on a non-zero code or a signal, while `restarts_so_far`
///   is below `max_retries` (None = no limit).
/// - `never`: no.
pub fn should_restart(
    policy: RestartPolicy,
    max_retries: Option<u32>,
    restarts_so_far: u32,
    exit: ExitKind,
    stopped: bool,
) -> bool {
    if stopped {
        return false;
    }
    match policy {
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure => {
            !exit.is_success() && max_retries.is_none_or(|max| restarts_so_far < max)
        }
        RestartPolicy::Never => false,
    }
}

/// Whether the shim starts the container again after killing it because it
/// became unhealthy (`restart_on_unhealthy`): yes unless stopped, whatever
/// the policy (the user asked for it), but `on-failure` still honours
/// `max_retries` (the kill is a failure).
pub fn should_restart_unhealthy(
    policy: RestartPolicy,
    max_retries: Option<u32>,
    restarts_so_far: u32,
    stopped: bool,
) -> bool {
    match policy {
        RestartPolicy::OnFailure => should_restart(
            policy,
            max_retries,
            restarts_so_far,
            ExitKind::Signal(9),
            stopped,
        ),
        _ => !stopped,
    }
}

/// The wait before the next start, in ms: `initial_ms` doubled once per
/// consecutive failure before this one, capped at `max_ms`. A run that
/// lasted at least `reset_after_ms` is not part of a streak: the wait is
/// `initial_ms` again.
pub fn next_delay(config: &RestartConfig, consecutive_failures: u32, ran_for_ms: u64) -> u64 {
    let streak = if ran_for_ms >= config.reset_after_ms {
        0
    } else {
        consecutive_failures
    };
    let factor = 1u64.checked_shl(streak.min(63)).unwrap_or(u64::MAX);
    config.initial_ms.saturating_mul(factor).min(config.max_ms)
}

/// The backoff bookkeeping after one run: the delay before the next start
/// and the streak to carry into the run after it.
pub fn plan_backoff(config: &RestartConfig, streak: u32, ran_for_ms: u64) -> (u64, u32) {
    let streak = if ran_for_ms >= config.reset_after_ms {
        0
    } else {
        streak
    };
    (
        next_delay(config, streak, ran_for_ms),
        streak.saturating_add(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RestartConfig {
        RestartConfig {
            policy: RestartPolicy::Always,
            max_retries: None,
            initial_ms: 100,
            max_ms: 1000,
            reset_after_ms: 10_000,
        }
    }

    #[test]
    fn always_restarts_on_any_exit_unless_stopped() {
        for policy in [RestartPolicy::Always, RestartPolicy::UnlessStopped] {
            for exit in [ExitKind::Code(0), ExitKind::Code(1), ExitKind::Signal(9)] {
                assert!(should_restart(policy, Some(0), 50, exit, false));
                assert!(!should_restart(policy, None, 0, exit, true));
            }
        }
    }

    #[test]
    fn never_does_not_restart() {
        for exit in [ExitKind::Code(0), ExitKind::Code(1), ExitKind::Signal(9)] {
            assert!(!should_restart(RestartPolicy::Never, None, 0, exit, false));
        }
    }

    #[test]
    fn on_failure_restarts_on_nonzero_code_or_signal_only() {
        let p = RestartPolicy::OnFailure;
        assert!(!should_restart(p, None, 0, ExitKind::Code(0), false));
        assert!(should_restart(p, None, 0, ExitKind::Code(1), false));
        assert!(should_restart(p, None, 0, ExitKind::Code(128), false));
        assert!(should_restart(p, None, 0, ExitKind::Signal(9), false));
        assert!(!should_restart(p, None, 0, ExitKind::Code(1), true));
    }

    #[test]
    fn on_failure_stops_after_max_retries() {
        let p = RestartPolicy::OnFailure;
        let fail = ExitKind::Code(1);
        assert!(should_restart(p, Some(2), 0, fail, false));
        assert!(should_restart(p, Some(2), 1, fail, false));
        assert!(!should_restart(p, Some(2), 2, fail, false));
        assert!(!should_restart(p, Some(0), 0, fail, false));
        assert!(should_restart(p, None, 1_000_000, fail, false));
    }

    #[test]
    fn an_unhealthy_kill_restarts_under_any_policy_but_honours_max_retries() {
        for policy in [
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            RestartPolicy::Never,
            RestartPolicy::OnFailure,
        ] {
            assert!(should_restart_unhealthy(policy, None, 3, false));
            assert!(!should_restart_unhealthy(policy, None, 3, true));
        }
        assert!(!should_restart_unhealthy(
            RestartPolicy::OnFailure,
            Some(3),
            3,
            false
        ));
        assert!(should_restart_unhealthy(
            RestartPolicy::Always,
            Some(3),
            3,
            false
        ));
    }

    #[test]
    fn restart_backoff_doubles_and_caps_at_max() {
        let c = config();
        let delays: Vec<u64> = (0..7).map(|n| next_delay(&c, n, 0)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(next_delay(&c, u32::MAX, 0), 1000);
    }

    #[test]
    fn backoff_resets_after_running_long_enough() {
        let c = config();
        assert_eq!(next_delay(&c, 5, 9_999), 1000);
        assert_eq!(next_delay(&c, 5, 10_000), 100);
        // The streak the shim carries restarts too.
        assert_eq!(plan_backoff(&c, 5, 10_000), (100, 1));
        assert_eq!(plan_backoff(&c, 1, 10), (200, 2));
    }

    #[test]
    fn consecutive_quick_failures_grow_the_wait() {
        let c = config();
        let mut streak = 0;
        let mut waits = Vec::new();
        for _ in 0..4 {
            let (delay, next) = plan_backoff(&c, streak, 5);
            waits.push(delay);
            streak = next;
        }
        assert_eq!(waits, [100, 200, 400, 800]);
    }
}
