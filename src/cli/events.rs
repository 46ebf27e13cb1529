//! `berth events [--since WHEN] [--follow] [-o json] [--name NAME] [--kind KIND]`:
//! what happened to berth's objects (created, replaced, restarted with an
//! exit code, unhealthy, drift repaired, pruned, ...), oldest first, from
//! the events log on disk that `apply`, the shims and the daemon append to
//! ([`crate::state::events`]); so it works with no daemon and after a
//! restart. With `--follow` it goes on printing new events as they are
//! appended until interrupted.

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use super::{GlobalOptions, OutputFormat};
use crate::daemon::socket::Client;
use crate::runtime::logs::format_seconds;
use crate::state::clock::unix_ms;
use crate::state::events::{Event, EventKind, EventLog, EventTarget, Follower};

/// How often `--follow` looks for new events.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only events since then: a duration ago (10m, 2h), an RFC 3339 time
    /// (2026-12-02T06:00:00Z) or milliseconds since the epoch
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<u64>,
    /// Go on printing new events as they happen, until interrupted
    #[arg(short, long)]
    pub follow: bool,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json for scripts (one JSON object a line), yaml (one document per event)", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Only events about objects of this name
    #[arg(long)]
    pub name: Option<String>,
    /// Only events of this kind (repeatable): created, replaced, restarted,
    /// unhealthy, drift-repaired, pruned, failed, ...
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<EventKind>,
}

impl Args {
    fn wants(&self, event: &Event) -> bool {
        self.since.is_none_or(|since| event.unix_ms >= since)
            && self
                .name
                .as_ref()
                .is_none_or(|name| event.name.as_ref() == Some(name))
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind))
    }
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(daemon) = Client::connect(&global.paths().daemon_socket()) {
        if from_daemon(daemon, args) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    // The events come from the log on disk.
    let log = EventLog::new(&global.paths());
    // Made before the history is read, so that nothing appended in between
    // is missed; what both return is printed once.
    let follower = args.follow.then(|| log.follower());
    let history = log.read_since(args.since);
    let mut out = std::io::stdout().lock();
    for event in history.iter().filter(|e| args.wants(e)) {
        if print(&mut out, event, args.output).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if out.flush().is_err() {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(follower) = follower {
        drop(out);
        follow(follower, history.iter().map(identity).collect(), args);
    }
    Ok(ExitCode::SUCCESS)
}

/// The daemon's stream: the same log, and new events as it sees them.
/// Returns false when the daemon gave nothing (an older daemon, a broken
/// socket): the log on disk is read instead.
fn from_daemon(daemon: Client, args: &Args) -> bool {
    let mut out = std::io::stdout().lock();
    let (mut answered, mut reader_left) = (false, false);
    let streamed = daemon.events(args.since, args.follow, &mut |event| {
        answered = true;
        let printed = !args.wants(&event)
            || (print(&mut out, &event, args.output).is_ok() && out.flush().is_ok());
        reader_left |= !printed;
        printed
    });
    match streamed {
        Err(error) if !answered => {
            tracing::debug!(%error, "the daemon's event stream failed; reading the log");
            false
        }
        _ => {
            if args.follow && !reader_left {
                eprintln!("berth: the daemon stopped; no more events follow");
            }
            true
        }
    }
}

/// Tells an event from every other (its number alone may repeat after a
/// log was damaged and numbered anew).
fn identity(event: &Event) -> (u64, u64) {
    (event.seq, event.unix_ms)
}

/// Prints what the follower finds, until stdout is closed (or a signal
/// ends berth: SIGINT, or SIGPIPE, whose default action `events` keeps).
fn follow(mut follower: Follower, mut printed: HashSet<(u64, u64)>, args: &Args) {
    loop {
        let mut out = std::io::stdout().lock();
        for event in follower.next_batch() {
            // Appended between the follower's start and the history's read.
            if printed.remove(&identity(&event)) {
                continue;
            }
            if args.wants(&event) && print(&mut out, &event, args.output).is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
        drop(out);
        std::thread::sleep(FOLLOW_INTERVAL);
    }
}

fn print(out: &mut impl Write, event: &Event, format: OutputFormat) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer(&mut *out, event)?;
            writeln!(out)
        }
        // A stream of YAML documents, one per event, as a follower can
        // print them one at a time.
        OutputFormat::Yaml => {
            let value = serde_json::to_value(event).map_err(std::io::Error::other)?;
            write!(out, "---\n{}", super::output::to_yaml(&value))
        }
        OutputFormat::Text => writeln!(out, "{}", text_line(event)),
    }
}

/// `2026-12-02T06:12:03Z  replaced  Container web: spec.env changed`.
fn text_line(event: &Event) -> String {
    let time = format_seconds(event.unix_ms);
    let mut subject = Vec::new();
    if let Some(target) = event.target {
        subject.push(target.to_string());
    }
    match (&event.name, event.generation) {
        (Some(name), _) => subject.push(name.clone()),
        (None, Some(generation)) if event.target == Some(EventTarget::Generation) => {
            subject.push(generation.to_string())
        }
        (None, Some(generation)) => subject.push(format!("generation {generation}")),
        (None, None) => {}
    }
    let mut line = if subject.is_empty() {
        format!("{time}  {}  {}", event.kind, event.reason)
    } else {
        format!(
            "{time}  {}  {}: {}",
            event.kind,
            subject.join(" "),
            event.reason
        )
    };
    if let Some(error) = &event.error {
        line.push_str(&format!(" (failed: {error})"));
    }
    line
}

/// `--since`: a duration ago, an RFC 3339 time, or epoch milliseconds.
pub(super) fn parse_since(text: &str) -> Result<u64, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|e| format!("{text:?}: {e}"));
    }
    if let Ok(ago) = text.parse::<crate::manifest::quantity::Duration>() {
        return Ok(unix_ms().saturating_sub(ago.as_std().as_millis() as u64));
    }
    parse_rfc3339(text).ok_or_else(|| {
        format!(
            "{text:?} is neither a duration ago (10m, 2h), an RFC 3339 time \
             (2026-12-02T06:00:00Z) nor milliseconds since the epoch"
        )
    })
}

/// Milliseconds since the epoch of `2026-12-02T06:12:03[.123][Z|+01:00]`.
pub(super) fn parse_rfc3339(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = text.get(from..to)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if bytes.len() < 20
        || separators.iter().any(|(at, sep)| bytes[*at] != *sep)
        || !matches!(bytes[10], b'T' | b't' | b' ')
    {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = first3.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = &rest[1..];
            if zone.len() != 5 || zone.as_bytes()[2] != b':' {
                return None;
            }
            let hours: i64 = zone[..2].parse().ok()?;
            let minutes: i64 = zone[3..].parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1_000 + millis).ok()
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_ago_a_timestamp_or_epoch_milliseconds() {
        assert_eq!(parse_since("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_since("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_since("2023-11-14T23:13:20.5+01:00"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(
            parse_since("2024-02-29T00:00:00.123456z"),
            Ok(1_709_164_800_123)
        );
        let before = unix_ms();
        let ago = parse_since("10m").unwrap();
        assert!(ago <= before.saturating_sub(600_000) + 1_000 && ago + 600_000 >= before);
        for bad in [
            "",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20",
            "10x",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_text_line_says_when_what_which_and_why() {
        let mut event = Event::new(EventKind::Replaced, "spec.env changed")
            .about(EventTarget::Container, "web");
        event.unix_ms = 1_700_000_000_123;
        assert_eq!(
            text_line(&event),
            "2023-11-14T22:13:20Z  replaced  Container web: spec.env changed"
        );
        let event = event.with_error(Some("no such image"));
        assert!(text_line(&event).ends_with("spec.env changed (failed: no such image)"));
        let mut rejected =
            Event::new(EventKind::GenerationRejected, "web.yaml:3:1: bad").with_generation(7);
        rejected.target = Some(EventTarget::Generation);
        assert!(text_line(&rejected)
            .ends_with("  generation-rejected  Generation 7: web.yaml:3:1: bad"));
    }

    #[test]
    fn the_filters_keep_what_was_asked_for() {
        let args = Args {
            since: Some(10),
            follow: false,
            output: OutputFormat::Text,
            name: Some("web".into()),
            kinds: vec![EventKind::Restarted],
        };
        let mut event = Event::new(EventKind::Restarted, "r").about(EventTarget::Container, "web");
        event.unix_ms = 10;
        assert!(args.wants(&event));
        let mut other = event.clone();
        other.unix_ms = 9;
        assert!(!args.wants(&other));
        let other = Event {
            name: Some("db".into()),
            ..event.clone()
        };
        assert!(!args.wants(&other));
        let other = Event {
            kind: EventKind::Created,
            ..event
        };
        assert!(!args.wants(&other));
    }
}
