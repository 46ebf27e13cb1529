//! What `apply` waits for, shown while it waits. Off a terminal (logs, CI):
//! a line for each wait as it begins (or its reason changes), and every
//! wait again every [`PERIOD`]: `waiting 10s for web: running; health check
//! not passed yet (2 of 3 failed)`. On a terminal: one redrawn spinner line
//! with the elapsed time. A pull says that it starts (its bytes follow from
//! the image progress).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::reconcile::plan::{Action, Target, Verb};
use crate::reconcile::ApplyEvent;

/// How often the waits are said again off a terminal.
pub const PERIOD: Duration = Duration::from_secs(5);

/// How often the spinner line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(100);

/// The widest spinner line: a longer one would wrap, and `\r` then
/// redraws only its last row.
const LINE_WIDTH: usize = 79;

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// More waits than this for one reason are said in one line.
const FOLD_AFTER: usize = 5;

pub struct WaitDisplay {
    terminal: bool,
    state: Mutex<Waits>,
}

/// What has been said about which wait, and since when each lasts.
#[derive(Default)]
struct Waits {
    /// When each current wait began, and the reason last said for it.
    current: BTreeMap<(Target, String), (Instant, String)>,
    /// When every wait was last said (off a terminal) or drawn (on one).
    last_round: Option<Instant>,
    spins: usize,
    /// A spinner line is on the screen.
    drawn: bool,
}

impl WaitDisplay {
    pub fn new() -> Self {
        WaitDisplay {
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new(Waits::default()),
        }
    }

    /// Shows what the event says, as is due.
    pub fn event(&self, event: ApplyEvent<'_>) {
        let Ok(mut waits) = self.state.lock() else {
            return;
        };
        match event {
            ApplyEvent::Starting(action) if action.verb == Verb::Pull => {
                waits.clear(&mut std::io::stderr().lock());
                eprintln!("pulling {} ({})", action.name, action.reason);
            }
            ApplyEvent::Starting(_) => {}
            ApplyEvent::Waiting { now, waiting } if self.terminal => {
                if let Some(line) = waits.spinner_line(now, waiting) {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                    waits.drawn = true;
                }
            }
            ApplyEvent::Waiting { now, waiting } => {
                let mut err = std::io::stderr().lock();
                for line in waits.lines_due(now, waiting) {
                    let _ = writeln!(err, "{line}");
                }
            }
        }
    }

    /// Takes the spinner line off the screen, so that other output starts
    /// at the start of a line.
    pub fn clear(&self) {
        if let Ok(mut waits) = self.state.lock() {
            waits.clear(&mut std::io::stderr().lock());
        }
    }
}

impl Default for WaitDisplay {
    fn default() -> Self {
        Self::new()
    }
}

impl Waits {
    fn clear(&mut self, out: &mut impl Write) {
        if self.drawn {
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
            self.drawn = false;
        }
    }

    /// Records the waits of this pass: each keeps the time it began while
    /// it lasts; one that ended is forgotten. Returns the ones that began
    /// or whose reason changed.
    fn update(&mut self, now: Instant, waiting: &[Action]) -> Vec<(Target, String)> {
        let mut changed = Vec::new();
        let mut current = BTreeMap::new();
        for action in waiting {
            let key = (action.target, action.name.clone());
            let since = match self.current.get(&key) {
                Some((since, reason)) if *reason == action.reason => *since,
                Some((since, _)) => {
                    changed.push(key.clone());
                    *since
                }
                None => {
                    changed.push(key.clone());
                    now
                }
            };
            current.insert(key, (since, action.reason.clone()));
        }
        self.current = current;
        changed
    }

    /// The lines to print off a terminal now: the waits that began or
    /// changed, or all of them once [`PERIOD`] has passed since the last
    /// time all were said.
    fn lines_due(&mut self, now: Instant, waiting: &[Action]) -> Vec<String> {
        let changed = self.update(now, waiting);
        let all_due = self
            .last_round
            .is_none_or(|last| now.saturating_duration_since(last) >= PERIOD);
        if all_due {
            self.last_round = Some(now);
        }
        let due: Vec<&Action> = waiting
            .iter()
            .filter(|a| all_due || changed.contains(&(a.target, a.name.clone())))
            .collect();
        self.fold(now, due)
    }

    /// One line per wait, except that many waits for one reason (a
    /// thousand containers starting) are said in one line, naming a few.
    fn fold(&self, now: Instant, due: Vec<&Action>) -> Vec<String> {
        let mut by_reason: BTreeMap<&str, Vec<&Action>> = BTreeMap::new();
        for action in &due {
            by_reason.entry(&action.reason).or_default().push(action);
        }
        let mut lines = Vec::new();
        let mut folded = std::collections::BTreeSet::new();
        for action in due {
            let alike = &by_reason[action.reason.as_str()];
            if alike.len() <= FOLD_AFTER {
                lines.push(self.line(now, action));
            } else if folded.insert(action.reason.as_str()) {
                lines.push(self.folded_line(now, alike));
            }
        }
        lines
    }

    /// `waiting up to 3s for 995 objects: starting (a, b, c and 992 more)`.
    fn folded_line(&self, now: Instant, alike: &[&Action]) -> String {
        let longest = alike
            .iter()
            .filter_map(|a| self.current.get(&(a.target, a.name.clone())))
            .map(|(since, _)| now.saturating_duration_since(*since).as_secs())
            .max()
            .unwrap_or(0);
        let named: Vec<String> = alike.iter().take(3).map(|a| what(a)).collect();
        format!(
            "waiting up to {longest}s for {} objects: {} ({} and {} more)",
            alike.len(),
            alike[0].reason,
            named.join(", "),
            alike.len() - named.len()
        )
    }

    /// `waiting 10s for web: REASON`.
    fn line(&self, now: Instant, action: &Action) -> String {
        let since = self
            .current
            .get(&(action.target, action.name.clone()))
            .map_or(now, |(since, _)| *since);
        format!(
            "waiting {}s for {}: {}",
            now.saturating_duration_since(since).as_secs(),
            what(action),
            action.reason
        )
    }

    /// The spinner line, when a redraw is due: the longest wait, with the
    /// time it has lasted, and how many more there are.
    fn spinner_line(&mut self, now: Instant, waiting: &[Action]) -> Option<String> {
        self.update(now, waiting);
        if self
            .last_round
            .is_some_and(|last| now.saturating_duration_since(last) < REDRAW)
        {
            return None;
        }
        self.last_round = Some(now);
        let longest = waiting.iter().min_by_key(|a| {
            self.current
                .get(&(a.target, a.name.clone()))
                .map_or(now, |(since, _)| *since)
        })?;
        self.spins = self.spins.wrapping_add(1);
        let since = self
            .current
            .get(&(longest.target, longest.name.clone()))
            .map_or(now, |(since, _)| *since);
        let more = match waiting.len() - 1 {
            0 => String::new(),
            n => format!(" (and {n} more)"),
        };
        let line = format!(
            "{} waiting {:.1}s for {}: {}{more}",
            SPINNER[self.spins % SPINNER.len()],
            now.saturating_duration_since(since).as_secs_f64(),
            what(longest),
            longest.reason
        );
        Some(line.chars().take(LINE_WIDTH).collect())
    }
}

/// A container by its name (most waits are for one), anything else by
/// kind and name: `Job nightly`.
fn what(action: &Action) -> String {
    match action.target {
        Target::Container => action.name.clone(),
        other => format!("{other:?} {}", action.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(name: &str, reason: &str) -> Action {
        Action::new(Target::Container, name, Verb::Wait, reason)
    }

    #[test]
    fn a_wait_is_said_at_once_then_every_period_with_its_elapsed_time() {
        let start = Instant::now();
        let mut waits = Waits::default();
        let web = [wait("web", "health check not passed yet")];
        assert_eq!(
            waits.lines_due(start, &web),
            vec!["waiting 0s for web: health check not passed yet"]
        );
        let quiet = waits.lines_due(start + Duration::from_secs(2), &web);
        assert!(quiet.is_empty(), "{quiet:?}");
        assert_eq!(
            waits.lines_due(start + Duration::from_secs(5), &web),
            vec!["waiting 5s for web: health check not passed yet"]
        );
    }

    #[test]
    fn a_new_wait_or_a_changed_reason_is_said_at_once() {
        let start = Instant::now();
        let mut waits = Waits::default();
        waits.lines_due(start, &[wait("web", "starting")]);
        let later = start + Duration::from_secs(1);
        let lines = waits.lines_due(
            later,
            &[
                wait("web", "health check (1 of 3 failed)"),
                wait("db", "created"),
            ],
        );
        assert_eq!(
            lines,
            vec![
                "waiting 1s for web: health check (1 of 3 failed)",
                "waiting 0s for db: created"
            ]
        );
    }

    #[test]
    fn many_waits_for_one_reason_are_said_in_one_line() {
        let start = Instant::now();
        let mut waits = Waits::default();
        let mut many: Vec<Action> = (0..40)
            .map(|i| wait(&format!("c{i:02}"), "starting"))
            .collect();
        many.push(wait("db", "health check not passed yet"));
        let lines = waits.lines_due(start, &many);
        assert_eq!(
            lines,
            vec![
                "waiting up to 0s for 40 objects: starting (c00, c01, c02 and 37 more)",
                "waiting 0s for db: health check not passed yet",
            ]
        );
    }

    #[test]
    fn a_wait_that_ended_and_began_again_counts_from_its_new_start() {
        let start = Instant::now();
        let mut waits = Waits::default();
        waits.lines_due(start, &[wait("web", "starting")]);
        waits.lines_due(start + Duration::from_secs(1), &[]);
        let again = waits.lines_due(start + Duration::from_secs(2), &[wait("web", "starting")]);
        assert_eq!(again, vec!["waiting 0s for web: starting"]);
    }

    #[test]
    fn the_spinner_shows_the_longest_wait_and_how_many_more() {
        let start = Instant::now();
        let mut waits = Waits::default();
        waits.spinner_line(start, &[wait("db", "created")]);
        let line = waits
            .spinner_line(
                start + Duration::from_millis(2500),
                &[wait("web", "starting"), wait("db", "created")],
            )
            .unwrap();
        assert!(
            line.ends_with("waiting 2.5s for db: created (and 1 more)"),
            "{line}"
        );
        let too_soon = waits.spinner_line(
            start + Duration::from_millis(2550),
            &[wait("db", "created")],
        );
        assert_eq!(too_soon, None, "redrawn at most every {REDRAW:?}");
    }

    #[test]
    fn a_job_is_named_with_its_kind() {
        let job = Action::new(Target::Job, "nightly", Verb::Wait, "running");
        assert_eq!(what(&job), "Job nightly");
    }
}
