//! When a scheduled Job's runs are due: a pure decision from the schedule,
//! the concurrency policy, the last tick acted on and the current time, so
//! the daemon's loop only carries it out and every case is tested with time
//! passed in.
//!
//! Ticks are whole minutes in UTC (see [`CronSchedule::next_after`]). Ticks
//! missed while the daemon was down are folded into one run of the latest
//! of them, as Kubernetes CronJobs and anacron do, not replayed one by one.

use crate::manifest::cron::CronSchedule;
use crate::manifest::ConcurrencyPolicy;

/// Missed ticks are counted up to this many; a daemon down for months under
/// `* * * * *` needs no exact count, and counting costs one search per tick.
pub const MISSED_CAP: u32 = 1000;

/// What the daemon does about a scheduled Job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing to do until `next` (unix secs), if any.
    NotYet { next: Option<u64> },
    /// Start a run now, for the tick at `tick` (the latest due tick; missed
    /// older ticks are folded into it).
    Start { tick: u64, missed: u32 },
    /// A tick came while a run is active and the policy is Forbid: skip it
    /// (record it as seen).
    Skip { tick: u64 },
    /// Replace: stop the active run, then start a new one for `tick`.
    Replace { tick: u64 },
}

/// Decides what a scheduled Job needs at `now` (unix secs).
///
/// `last_tick`: the tick (unix secs) the last run was started for, or that
/// was last skipped; None if the Job was never scheduled (then the first due
/// tick is the first one after `created`: a Job never runs at creation for a
/// tick before it). The baseline is the later of `last_tick` and `created`.
/// `active`: whether a run of the Job is still running.
///
/// The due tick is the latest tick after the baseline and at or before
/// `now`. With none, the answer is [`Due::NotYet`] with the next tick after
/// both the baseline and `now`. With one, an idle Job starts a run for it
/// (counting the older ticks it stands for in `missed`); an active one
/// follows `policy`: Allow starts another run, Forbid skips the tick,
/// Replace stops the active run and starts a new one.
pub fn due(
    schedule: &CronSchedule,
    policy: ConcurrencyPolicy,
    last_tick: Option<u64>,
    created: u64,
    active: bool,
    now: u64,
) -> Due {
    let baseline = last_tick.map_or(created, |tick| tick.max(created));
    let Some(tick) = latest_due_tick(schedule, baseline, now) else {
        return Due::NotYet {
            next: schedule.next_after(baseline.max(now)),
        };
    };
    // Ticks are whole minutes, so `tick - 1` leaves out only `tick` itself.
    let start = || Due::Start {
        tick,
        missed: ticks_between(schedule, baseline, tick - 1, MISSED_CAP),
    };
    match (active, policy) {
        (false, _) | (true, ConcurrencyPolicy::Allow) => start(),
        (true, ConcurrencyPolicy::Forbid) => Due::Skip { tick },
        (true, ConcurrencyPolicy::Replace) => Due::Replace { tick },
    }
}

/// The latest tick `t` with `baseline < t <= now`.
fn latest_due_tick(schedule: &CronSchedule, baseline: u64, now: u64) -> Option<u64> {
    schedule
        .latest_at_or_before(now)
        .filter(|tick| *tick > baseline)
}

/// How many ticks fall after `after` and at or before `until`, counting no
/// further than `cap`.
pub fn ticks_between(schedule: &CronSchedule, after: u64, until: u64, cap: u32) -> u32 {
    let mut count = 0;
    let mut cursor = after;
    while count < cap {
        match schedule.next_after(cursor) {
            Some(tick) if tick <= until => {
                count += 1;
                cursor = tick;
            }
            _ => break,
        }
    }
    count
}

/// The next scheduled run after `now`, for `berth jobs`.
pub fn next_run(schedule: &CronSchedule, now: u64) -> Option<u64> {
    schedule.next_after(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-06-10T12:00:00Z, a Tuesday.
    const NOON: u64 = 1_749_556_800;
    const MINUTE: u64 = 60;
    const HOUR: u64 = 3600;

    fn cron(text: &str) -> CronSchedule {
        text.parse().expect("a valid schedule")
    }

    fn idle(schedule: &str, last_tick: Option<u64>, created: u64, now: u64) -> Due {
        due(
            &cron(schedule),
            ConcurrencyPolicy::Forbid,
            last_tick,
            created,
            false,
            now,
        )
    }

    #[test]
    fn noon_is_a_tuesday_noon() {
        // `date -u -d 2025-06-10T12:00:00Z +%s`; the tests below lean on it.
        assert_eq!(
            cron("0 12 * * 2").latest_at_or_before(NOON + MINUTE),
            Some(NOON)
        );
    }

    #[test]
    fn before_the_first_tick_nothing_is_due_and_the_next_tick_is_named() {
        let created = NOON + MINUTE;
        assert_eq!(
            idle("*/15 * * * *", None, created, NOON + 10 * MINUTE),
            Due::NotYet {
                next: Some(NOON + 15 * MINUTE)
            }
        );
    }

    #[test]
    fn a_tick_is_due_exactly_at_its_second() {
        let created = NOON;
        let tick = NOON + 15 * MINUTE;
        assert_eq!(
            idle("*/15 * * * *", None, created, tick - 1),
            Due::NotYet { next: Some(tick) }
        );
        assert_eq!(
            idle("*/15 * * * *", None, created, tick),
            Due::Start { tick, missed: 0 }
        );
    }

    #[test]
    fn a_tick_already_acted_on_is_not_due_again() {
        let tick = NOON + 15 * MINUTE;
        assert_eq!(
            idle("*/15 * * * *", Some(tick), NOON, tick + 5 * MINUTE),
            Due::NotYet {
                next: Some(NOON + 30 * MINUTE)
            }
        );
    }

    #[test]
    fn ticks_missed_while_down_fold_into_one_start_for_the_latest() {
        // Last run at 12:00; the daemon comes back at 13:07, after four
        // ticks (12:15, 12:30, 12:45, 13:00): one run, for 13:00.
        assert_eq!(
            idle(
                "*/15 * * * *",
                Some(NOON),
                NOON - HOUR,
                NOON + HOUR + 7 * MINUTE
            ),
            Due::Start {
                tick: NOON + HOUR,
                missed: 3
            }
        );
    }

    #[test]
    fn missed_ticks_are_counted_up_to_the_cap() {
        let thirty_days = 30 * 24 * HOUR;
        assert_eq!(
            idle("* * * * *", Some(NOON), NOON, NOON + thirty_days),
            Due::Start {
                tick: NOON + thirty_days,
                missed: MISSED_CAP
            }
        );
    }

    #[test]
    fn a_tick_before_creation_never_runs() {
        // Created at 12:01, just after the noon tick: not due at 12:02.
        let created = NOON + MINUTE;
        assert_eq!(
            idle("0 12 * * *", None, created, NOON + 2 * MINUTE),
            Due::NotYet {
                next: Some(NOON + 24 * HOUR)
            }
        );
        // A last tick older than the Job itself does not bring it back either.
        assert_eq!(
            idle(
                "0 12 * * *",
                Some(NOON - 24 * HOUR),
                created,
                NOON + 2 * MINUTE
            ),
            Due::NotYet {
                next: Some(NOON + 24 * HOUR)
            }
        );
    }

    #[test]
    fn forbid_skips_a_tick_while_a_run_is_active_then_starts_at_the_next_when_idle() {
        let schedule = cron("*/15 * * * *");
        let first = NOON + 15 * MINUTE;
        let skipped = due(
            &schedule,
            ConcurrencyPolicy::Forbid,
            Some(NOON),
            NOON,
            true,
            first + MINUTE,
        );
        assert_eq!(skipped, Due::Skip { tick: first });
        // The daemon records the skipped tick; the run ends before the next.
        let recorded = first;
        let idle_later = |now| {
            due(
                &schedule,
                ConcurrencyPolicy::Forbid,
                Some(recorded),
                NOON,
                false,
                now,
            )
        };
        assert_eq!(
            idle_later(first + 5 * MINUTE),
            Due::NotYet {
                next: Some(first + 15 * MINUTE)
            }
        );
        assert_eq!(
            idle_later(first + 15 * MINUTE),
            Due::Start {
                tick: first + 15 * MINUTE,
                missed: 0
            }
        );
    }

    #[test]
    fn allow_starts_another_run_while_one_is_active() {
        let tick = NOON + 15 * MINUTE;
        assert_eq!(
            due(
                &cron("*/15 * * * *"),
                ConcurrencyPolicy::Allow,
                Some(NOON),
                NOON,
                true,
                tick
            ),
            Due::Start { tick, missed: 0 }
        );
    }

    #[test]
    fn replace_stops_the_active_run_for_the_new_tick() {
        let tick = NOON + 15 * MINUTE;
        assert_eq!(
            due(
                &cron("*/15 * * * *"),
                ConcurrencyPolicy::Replace,
                Some(NOON),
                NOON,
                true,
                tick + 30
            ),
            Due::Replace { tick }
        );
    }

    #[test]
    fn a_clock_set_back_before_the_last_tick_waits_for_the_tick_after_it() {
        assert_eq!(
            idle("*/15 * * * *", Some(NOON), NOON - HOUR, NOON - 30 * MINUTE),
            Due::NotYet {
                next: Some(NOON + 15 * MINUTE)
            }
        );
    }

    #[test]
    fn ticks_between_counts_after_and_up_to_until() {
        let schedule = cron("*/15 * * * *");
        assert_eq!(ticks_between(&schedule, NOON, NOON + HOUR, 100), 4);
        assert_eq!(ticks_between(&schedule, NOON, NOON + HOUR - 1, 100), 3);
        assert_eq!(ticks_between(&schedule, NOON, NOON + HOUR, 2), 2);
        assert_eq!(ticks_between(&schedule, NOON, NOON, 100), 0);
    }

    #[test]
    fn next_run_is_the_tick_strictly_after_now() {
        let schedule = cron("0 3 * * *");
        assert_eq!(next_run(&schedule, NOON), Some(NOON + 15 * HOUR));
        assert_eq!(next_run(&cron("0 0 30 2 *"), NOON), None);
    }
}
