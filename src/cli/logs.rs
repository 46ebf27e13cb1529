//! `berth logs NAME [-f] [--tail N] [--timestamps]`, and `berth logs JOB
//! [--index N] [--attempt K]`: a Job's output is its attempts' containers'
//! (`JOB-RUN-ATTEMPT`); the current run's attempt is picked from the Job's
//! record.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::GlobalOptions;
use crate::engine::{ContainerRecord, Engine, EngineError};
use crate::manifest::names::ContainerId;
use crate::reconcile::jobs::record::{self as job_record, Attempt, JobRecord};
use crate::runtime::container_dir::{LogConfig, Phase};
use crate::runtime::log_reader::{LogLine, LogSet, Stream};

/// How often `-f` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name, or a Job's (then its latest attempt's output)
    pub name: String,
    /// A Job's latest attempt at completion index N (Indexed Jobs)
    #[arg(long, value_name = "N")]
    pub index: Option<u32>,
    /// A Job's attempt number K of its current run (1, 2, ...)
    #[arg(long, value_name = "K")]
    pub attempt: Option<u32>,
    /// Keep printing new output until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,
}

fn print(line: &LogLine, timestamps: bool) {
    let text = if timestamps {
        format!("{} {}", line.timestamp, line.text)
    } else {
        line.text.clone()
    };
    let _ = match line.stream {
        Stream::Stdout => writeln!(std::io::stdout(), "{text}"),
        Stream::Stderr => writeln!(std::io::stderr(), "{text}"),
    };
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
fn container_to_show(engine: &Engine, args: &Args) -> anyhow::Result<ContainerRecord> {
    // Job names follow the rule of container names (attempts are named
    // after them), which also keeps the record's path inside berth's dir.
    let name = ContainerId::parse(&args.name)?;
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
                name: args.name.clone(),
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

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let record = container_to_show(&engine, args)?;
    let driver = LogConfig::of(record.spec.logging.as_ref()).driver;
    if !driver.is_file() {
        anyhow::bail!(
            "container {} logs to driver {}; berth keeps no logs of it",
            record.id,
            driver.describe()
        );
    }
    let dir = engine.dir(&record.id);
    let log_file = engine.log_file(&record.id);
    let log = LogSet::open(&log_file).with_context(|| format!("open the log of {}", record.id))?;
    let lines = match args.tail {
        Some(n) => log.tail(n),
        None => log.lines(),
    }
    .with_context(|| format!("read {}", log_file.display()))?;
    for line in &lines {
        print(line, args.timestamps);
    }
    if args.follow {
        // Goes on exactly where the read above stopped.
        let mut follower = log.follow();
        loop {
            for line in follower.poll() {
                print(&line, args.timestamps);
            }
            let _ = std::io::stdout().flush();
            let exited = dir.read_status()?.is_none_or(|s| s.phase == Phase::Exited);
            if exited {
                for line in follower.poll() {
                    print(&line, args.timestamps);
                }
                break;
            }
            std::thread::sleep(FOLLOW_INTERVAL);
        }
    }
    Ok(ExitCode::SUCCESS)
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
