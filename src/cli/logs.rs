//! `berth logs NAME [-f] [--tail N] [--timestamps]`, and `berth logs JOB
//! [--index N] [--attempt K]`: a Job's output is its attempts' containers'
//! (`JOB-RUN-ATTEMPT`); the current run's attempt is picked from the Job's
//! record. `berth logs NAME NAME...` or `-l SELECTOR` interleaves several
//! containers' lines by time, each after its container's name (`web | `),
//! as docker compose does.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::events::{parse_rfc3339, parse_since};
use super::selector::{pick, Selector};
use super::GlobalOptions;
use crate::engine::{ContainerRecord, Engine, EngineError};
use crate::manifest::names::ContainerId;
use crate::reconcile::jobs::record::{self as job_record, Attempt, JobRecord};
use crate::runtime::container_dir::{ContainerDir, LogConfig, Phase};
use crate::runtime::log_reader::{Follower, LogLine, LogSet, Stream};

/// How often `-f` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Containers' names, or a Job's (then its latest attempt's output); with several, each line is prefixed with its container's name
    #[arg(required_unless_present = "selector", conflicts_with = "selector")]
    pub names: Vec<String>,
    /// The containers whose labels match instead: key=value, key!=value, key, !key, comma-separated
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<Selector>,
    /// A Job's latest attempt at completion index N (Indexed Jobs)
    #[arg(long, value_name = "N")]
    pub index: Option<u32>,
    /// A Job's attempt number K of its current run (1, 2, ...)
    #[arg(long, value_name = "K")]
    pub attempt: Option<u32>,
    /// Keep printing new output until the containers exit
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines (of each container)
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines written since then: a duration ago (10m, 2h) or an RFC 3339 time
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<u64>,
    /// Only lines written before then: a duration ago (10m, 2h) or an RFC 3339 time
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub until: Option<u64>,
    /// Prefix each line with its container's name even when there is one container
    #[arg(long)]
    pub prefix: bool,
}

/// How lines are printed: which are shown, and what goes before them.
struct Printer {
    timestamps: bool,
    since: Option<u64>,
    until: Option<u64>,
    /// Per container (in the order of [`Source`]s): `web | `, padded to the
    /// longest name and coloured at a terminal; empty for one container.
    prefixes: Vec<String>,
}

impl Printer {
    /// Whether the line falls between `--since` and `--until` (a line
    /// whose timestamp does not parse is shown: it is not known to be out).
    fn shows(&self, line: &LogLine) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(at) = parse_rfc3339(&line.timestamp) else {
            return true;
        };
        self.since.is_none_or(|since| at >= since) && self.until.is_none_or(|until| at < until)
    }

    fn print(&self, source: usize, line: &LogLine) {
        if !self.shows(line) {
            return;
        }
        let prefix = self.prefixes.get(source).map_or("", String::as_str);
        let text = if self.timestamps {
            format!("{prefix}{} {}", line.timestamp, line.text)
        } else {
            format!("{prefix}{}", line.text)
        };
        let _ = match line.stream {
            Stream::Stdout => writeln!(std::io::stdout(), "{text}"),
            Stream::Stderr => writeln!(std::io::stderr(), "{text}"),
        };
    }

    /// Lines of one or several containers, in the order they were written.
    fn print_interleaved(&self, mut lines: Vec<(usize, LogLine)>) {
        for (source, line) in interleaved(&mut lines) {
            self.print(*source, line);
        }
    }
}

/// `lines` in the order they were written (CRI timestamps are fixed-width
/// UTC, so text order is time order; a stable sort keeps each container's
/// own order among equal ones). One container's lines keep their order in
/// its files, whatever the clock did.
fn interleaved(lines: &mut [(usize, LogLine)]) -> &[(usize, LogLine)] {
    let first = lines.first().map(|(source, _)| *source);
    if lines.iter().any(|(source, _)| Some(*source) != first) {
        lines.sort_by(|a, b| a.1.timestamp.cmp(&b.1.timestamp));
    }
    lines
}

/// Colours of name prefixes at a terminal, one per container in turn
/// (red is left out: it reads as an error).
const PREFIX_COLOURS: [u8; 5] = [36, 33, 32, 35, 34];

/// Colour only for a person at a terminal, never with `NO_COLOR` set (as
/// for berth's own log on stderr): piped output stays plain text.
fn colour_on_stdout() -> bool {
    super::colour_on(&std::io::stdout())
}

/// `web   | `, `cache | `: each name padded to the longest, as docker
/// compose prints them.
fn name_prefixes(names: &[&str], colour: bool) -> Vec<String> {
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let padded = format!("{name:<width$}");
            if colour {
                let code = PREFIX_COLOURS[i % PREFIX_COLOURS.len()];
                format!("\x1b[{code}m{padded} |\x1b[0m ")
            } else {
                format!("{padded} | ")
            }
        })
        .collect()
}

/// Why no attempt of a Job is shown.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    #[error("{name} is not a Job berth knows; --index and --attempt pick a Job's attempt")]
    NotAJob { name: String },
    #[error("Job {job} has not run yet (it waits for its schedule)")]
    NeverRan { job: String },
    #[error("run {run} of Job {job} has started no attempt yet")]
    NoAttempt { job: String, run: u32 },
    #[error("run {run} of Job {job} has no attempt {number}")]
    NoSuchAttempt { job: String, run: u32, number: u32 },
    #[error("run {run} of Job {job} has no attempt with index {index}")]
    NoSuchIndex { job: String, run: u32, index: u32 },
    #[error("attempt {number} of run {run} of Job {job} has index {actual}, not {index}")]
    IndexMismatch {
        job: String,
        run: u32,
        number: u32,
        index: u32,
        actual: String,
    },
    #[error("the container {id} of attempt {number} of run {run} of Job {job} was removed{why}; its logs went with it")]
    Removed {
        job: String,
        run: u32,
        number: u32,
        id: String,
        why: &'static str,
    },
}

/// The attempt of the Job's current run to show: number `attempt`, else
/// the latest with index `index`, else the latest of all. With both, the
/// attempt must have that index.
pub fn pick_attempt(
    record: &JobRecord,
    index: Option<u32>,
    attempt: Option<u32>,
) -> Result<&Attempt, AttemptError> {
    let (job, run) = (record.name.clone(), record.run);
    if run == 0 {
        return Err(AttemptError::NeverRan { job });
    }
    let attempts = record.attempts.iter();
    let chosen = match (attempt, index) {
        (Some(number), _) => attempts.clone().find(|a| a.number == number),
        (None, Some(index)) => latest(attempts.clone().filter(|a| a.index == Some(index))),
        (None, None) => latest(attempts.clone()),
    };
    let Some(chosen) = chosen else {
        return Err(match (attempt, index) {
            (Some(number), _) => AttemptError::NoSuchAttempt { job, run, number },
            (None, Some(index)) => AttemptError::NoSuchIndex { job, run, index },
            (None, None) => AttemptError::NoAttempt { job, run },
        });
    };
    match index {
        Some(index) if chosen.index != Some(index) => Err(AttemptError::IndexMismatch {
            job,
            run,
            number: chosen.number,
            index,
            actual: chosen
                .index
                .map_or_else(|| "none".to_string(), |i| i.to_string()),
        }),
        _ => Ok(chosen),
    }
}

/// `Job batch run 2 attempt 3 (index 1): container batch-2-3`, said on
/// standard error so that the output stays the container's.
fn describe(job: &JobRecord, attempt: &Attempt) -> String {
    let index = attempt
        .index
        .map(|i| format!(" (index {i})"))
        .unwrap_or_default();
    format!(
        "Job {} run {} attempt {}{index}: container {}",
        job.name, job.run, attempt.number, attempt.id
    )
}

fn latest<'a>(attempts: impl Iterator<Item = &'a Attempt>) -> Option<&'a Attempt> {
    attempts.max_by_key(|a| a.number)
}

/// The container whose logs NAME means: the container of that name; else,
/// or with `--index`/`--attempt`, the picked attempt of the Job of that name.
fn container_to_show(engine: &Engine, name: &str, args: &Args) -> anyhow::Result<ContainerRecord> {
    // Job names follow the rule of container names (attempts are named
    // after them), which also keeps the record's path inside berth's dir.
    let name = ContainerId::parse(name)?;
    let for_a_job = args.index.is_some() || args.attempt.is_some();
    let container = (!for_a_job).then(|| engine.record(&name));
    if let Some(found) = container {
        if !matches!(found, Err(EngineError::NotFound(_))) {
            return Ok(found?);
        }
    }
    let Some(job) = job_record::store(&engine.paths).get(&name)? else {
        if for_a_job {
            return Err(AttemptError::NotAJob {
                name: name.to_string(),
            }
            .into());
        }
        // Neither a container nor a Job: the container's error says why.
        return Ok(engine.record(&name)?);
    };
    let attempt = pick_attempt(&job, args.index, args.attempt)?;
    eprintln!("berth: {}", describe(&job, attempt));
    let id = ContainerId::parse(&attempt.id)?;
    match engine.record(&id) {
        Err(EngineError::NotFound(_)) => Err(AttemptError::Removed {
            job: job.name.clone(),
            run: job.run,
            number: attempt.number,
            id: attempt.id.clone(),
            why: if job.cleaned {
                " by ttlAfterFinished"
            } else {
                ""
            },
        }
        .into()),
        found => Ok(found?),
    }
}

/// One container whose log is shown.
struct Source {
    record: ContainerRecord,
    dir: ContainerDir,
    log: LogSet,
}

/// The containers to show: those named (a Job's name meaning its picked
/// attempt), or those the selector matches.
fn containers_to_show(engine: &Engine, args: &Args) -> anyhow::Result<Vec<ContainerRecord>> {
    if args.selector.is_some() {
        return pick(engine, &args.names, args.selector.as_ref());
    }
    if args.names.len() > 1 && (args.index.is_some() || args.attempt.is_some()) {
        anyhow::bail!("--index and --attempt pick one Job's attempt: give one name");
    }
    args.names
        .iter()
        .map(|name| container_to_show(engine, name, args))
        .collect()
}

/// Why a container's logs cannot be shown, when its driver keeps none.
fn without_logs(record: &ContainerRecord) -> Option<String> {
    let driver = LogConfig::of(record.spec.logging.as_ref()).driver;
    (!driver.is_file()).then(|| {
        format!(
            "container {} logs to driver {}; berth keeps no logs of it",
            record.id,
            driver.describe()
        )
    })
}

/// The containers' logs, opened. One that keeps no logs is an error when
/// it is the only one, and is passed over with a warning among several
/// (`logs -l app=web` shows what there is).
fn open_logs(engine: &Engine, records: Vec<ContainerRecord>) -> anyhow::Result<Vec<Source>> {
    let single = records.len() == 1;
    let mut sources = Vec::new();
    for record in records {
        if let Some(why) = without_logs(&record) {
            if single {
                anyhow::bail!(why);
            }
            eprintln!("berth: {why}");
            continue;
        }
        let log_file = engine.log_file(&record.id);
        let log =
            LogSet::open(&log_file).with_context(|| format!("open the log of {}", record.id))?;
        let dir = engine.dir(&record.id);
        sources.push(Source { record, dir, log });
    }
    if sources.is_empty() {
        anyhow::bail!("none of the chosen containers keeps logs berth can show");
    }
    Ok(sources)
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let sources = open_logs(&engine, containers_to_show(&engine, args)?)?;
    let names: Vec<&str> = sources.iter().map(|s| s.record.id.as_str()).collect();
    let printer = Printer {
        timestamps: args.timestamps,
        since: args.since,
        until: args.until,
        prefixes: if sources.len() > 1 || args.prefix {
            name_prefixes(&names, colour_on_stdout())
        } else {
            Vec::new()
        },
    };
    let mut lines = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let read = match args.tail {
            Some(n) => source.log.tail(n),
            None => source.log.lines(),
        }
        .with_context(|| format!("read the log of {}", source.record.id))?;
        lines.extend(read.into_iter().map(|line| (i, line)));
    }
    printer.print_interleaved(lines);
    if args.follow {
        follow(sources, &printer)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints new lines of every container as they come, until each has
/// exited (after its last lines), as `logs -f` of one container does.
fn follow(sources: Vec<Source>, printer: &Printer) -> anyhow::Result<()> {
    // Each goes on exactly where the read before stopped.
    let mut following: Vec<(usize, ContainerDir, Follower)> = sources
        .into_iter()
        .enumerate()
        .map(|(i, source)| (i, source.dir, source.log.follow()))
        .collect();
    while !following.is_empty() {
        let mut lines = Vec::new();
        let mut still = Vec::new();
        for (i, dir, mut follower) in following {
            lines.extend(follower.poll().into_iter().map(|line| (i, line)));
            let exited = dir.read_status()?.is_none_or(|s| s.phase == Phase::Exited);
            if exited {
                // What it wrote before its exit was recorded.
                lines.extend(follower.poll().into_iter().map(|line| (i, line)));
            } else {
                still.push((i, dir, follower));
            }
        }
        printer.print_interleaved(lines);
        let _ = std::io::stdout().flush();
        following = still;
        if !following.is_empty() {
            std::thread::sleep(FOLLOW_INTERVAL);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::jobs::record::{AttemptState, JobPhase};

    fn attempt(number: u32, index: Option<u32>, state: AttemptState) -> Attempt {
        Attempt {
            id: format!("batch-2-{number}"),
            number,
            index,
            started_unix_ms: 1_000,
            finished_unix_ms: Some(2_000),
            state,
            exit_code: None,
            restarts: 0,
            reason: None,
        }
    }

    /// Run 2 of an Indexed Job: index 0 failed once, then succeeded; index
    /// 1 succeeded.
    fn job() -> JobRecord {
        JobRecord {
            name: "batch".into(),
            source: "/srv".into(),
            file: "batch.yaml".into(),
            fingerprint: Default::default(),
            run: 2,
            phase: JobPhase::Complete,
            reason: None,
            trigger: "apply".into(),
            started_unix_ms: 1_000,
            finished_unix_ms: Some(3_000),
            attempts: vec![
                attempt(1, Some(0), AttemptState::Failed),
                attempt(2, Some(1), AttemptState::Succeeded),
                attempt(3, Some(0), AttemptState::Succeeded),
            ],
            cleaned: false,
            schedule_tick: None,
            declared_unix_ms: 1_000,
            history: Vec::new(),
            run_requested: None,
            completions: 2,
            schedule: None,
        }
    }

    fn number(picked: Result<&Attempt, AttemptError>) -> u32 {
        picked.expect("an attempt is picked").number
    }

    fn line(timestamp: &str, text: &str) -> LogLine {
        LogLine {
            timestamp: timestamp.into(),
            stream: Stream::Stdout,
            text: text.into(),
        }
    }

    #[test]
    fn names_are_padded_to_the_longest_and_coloured_only_when_asked() {
        assert_eq!(
            name_prefixes(&["web", "cache"], false),
            ["web   | ", "cache | "]
        );
        let coloured = name_prefixes(&["web", "cache"], true);
        assert_eq!(coloured[0], "\x1b[36mweb   |\x1b[0m ");
        assert_ne!(coloured[0], coloured[1]);
    }

    #[test]
    fn several_containers_lines_interleave_by_time_and_one_keeps_its_order() {
        let mut two = vec![
            (0, line("2026-12-02T06:00:01.000000000Z", "web 1")),
            (0, line("2026-12-02T06:00:03.000000000Z", "web 2")),
            (1, line("2026-12-02T06:00:02.000000000Z", "db 1")),
            (1, line("2026-12-02T06:00:03.000000000Z", "db 2")),
        ];
        let order: Vec<&str> = interleaved(&mut two)
            .iter()
            .map(|(_, l)| l.text.as_str())
            .collect();
        assert_eq!(order, ["web 1", "db 1", "web 2", "db 2"]);
        // A clock that stepped back does not reorder one container's lines.
        let mut one = vec![
            (0, line("2026-12-02T06:00:05.000000000Z", "first")),
            (0, line("2026-12-02T06:00:01.000000000Z", "second")),
        ];
        let order: Vec<&str> = interleaved(&mut one)
            .iter()
            .map(|(_, l)| l.text.as_str())
            .collect();
        assert_eq!(order, ["first", "second"]);
    }

    #[test]
    fn since_is_inclusive_until_exclusive_and_an_unreadable_time_is_shown() {
        let printer = Printer {
            timestamps: false,
            since: parse_rfc3339("2026-12-02T06:00:02Z"),
            until: parse_rfc3339("2026-12-02T06:00:04Z"),
            prefixes: Vec::new(),
        };
        let shown = |at: &str| printer.shows(&line(at, "x"));
        assert!(!shown("2026-12-02T06:00:01.999000000Z"));
        assert!(shown("2026-12-02T06:00:02.000000000Z"));
        assert!(shown("2026-12-02T06:00:03.500000000Z"));
        assert!(!shown("2026-12-02T06:00:04.000000000Z"));
        assert!(shown("garbled"));
    }

    #[test]
    fn without_a_choice_the_latest_attempt_is_shown() {
        assert_eq!(number(pick_attempt(&job(), None, None)), 3);
    }

    #[test]
    fn an_index_picks_its_latest_attempt() {
        assert_eq!(number(pick_attempt(&job(), Some(0), None)), 3);
        assert_eq!(number(pick_attempt(&job(), Some(1), None)), 2);
        assert_eq!(
            pick_attempt(&job(), Some(5), None).unwrap_err().to_string(),
            "run 2 of Job batch has no attempt with index 5"
        );
    }

    #[test]
    fn an_attempt_number_picks_that_attempt_and_must_match_a_given_index() {
        assert_eq!(number(pick_attempt(&job(), None, Some(1))), 1);
        assert_eq!(number(pick_attempt(&job(), Some(0), Some(1))), 1);
        assert_eq!(
            pick_attempt(&job(), Some(1), Some(1))
                .unwrap_err()
                .to_string(),
            "attempt 1 of run 2 of Job batch has index 0, not 1"
        );
        assert_eq!(
            pick_attempt(&job(), None, Some(9)).unwrap_err().to_string(),
            "run 2 of Job batch has no attempt 9"
        );
    }

    #[test]
    fn a_job_without_attempts_says_so() {
        let mut scheduled = job();
        scheduled.run = 0;
        scheduled.attempts.clear();
        assert_eq!(
            pick_attempt(&scheduled, None, None).unwrap_err(),
            AttemptError::NeverRan {
                job: "batch".into()
            }
        );
        let mut starting = job();
        starting.attempts.clear();
        assert_eq!(
            pick_attempt(&starting, None, None).unwrap_err().to_string(),
            "run 2 of Job batch has started no attempt yet"
        );
    }

    #[test]
    fn the_attempt_shown_is_named_with_its_index_and_container() {
        let job = job();
        assert_eq!(
            describe(&job, &job.attempts[2]),
            "Job batch run 2 attempt 3 (index 0): container batch-2-3"
        );
    }
}
