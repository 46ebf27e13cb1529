//! `berth job run NAME [-f PATH...] [--wait]`: a new run of a declared
//! Job, now. The request is written into the Job's record under the
//! reconcile lock; whoever reconciles the Job next begins the run: the
//! daemon, which is asked to run a pass at once when it follows the set
//! that declares the Job, or with `-f` an apply of those manifests right
//! here, as `berth apply` runs it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::apply::{print_outcome, reconciler};
use super::plan::ManifestArgs;
use super::progress::CliProgress;
use super::{GlobalOptions, OutputFormat};
use crate::daemon::socket::Client;
use crate::engine::Engine;
use crate::manifest::names::ContainerId;
use crate::manifest::quantity::Duration as Quantity;
use crate::manifest::{Kind, ManifestSet};
use crate::reconcile::execute::ApplyReport;
use crate::reconcile::jobs::effects;
use crate::reconcile::jobs::record::{self, JobPhase, JobRecord};
use crate::reconcile::outcome::{job_result, ContainerResult, Verdict};
use crate::reconcile::ApplyOptions;
use crate::state::Layout;

/// How often `--wait` reads the Job's record while the daemon runs it.
const POLL_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Start a new run of a declared Job now
    Run(RunArgs),
}

/// `-f` is optional here (`plan` and `apply` require it), and the other
/// manifest flags only go with it.
#[derive(Debug, clap::Args)]
#[command(
    mut_arg("files", |a| a.required(false).help(
        "A manifest file or directory that declares the Job (repeatable): apply it here and now, as `berth apply` does, instead of leaving the run to the daemon"
    )),
    mut_arg("source", |a| a.requires("files")),
    mut_arg("allow_untrusted_manifests", |a| a.requires("files")),
    mut_arg("host_labels", |a| a.requires("files"))
)]
pub struct RunArgs {
    /// The Job's name
    pub name: String,
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Wait for the run's outcome; exit 1 when it fails
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting (and, with -f, converging) after this long
    #[arg(long, default_value = "2m")]
    pub timeout: Quantity,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum JobRunError {
    #[error("Job {job} is not known: apply its manifest first")]
    NotKnown { job: String },
    #[error("run {run} of Job {job} is still active")]
    Active { job: String, run: u32 },
    #[error("the manifests given do not declare Job {job} for this host")]
    NotDeclared { job: String },
    #[error("nothing would start the run of Job {job} now: {why}; give -f PATH to apply its manifests here")]
    NobodyRunsIt { job: String, why: String },
    #[error("the record of Job {job} went away while waiting (deleted or pruned)")]
    Vanished { job: String },
    #[error("run {run} of Job {job} did not finish within {after}")]
    Timeout {
        job: String,
        run: u32,
        after: Quantity,
    },
}

/// Who begins the requested run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Starter {
    /// The daemon follows the set that declares the Job: asked for a pass now.
    Daemon,
    /// An apply of the Job's manifests, here (`-f`).
    Apply,
    /// The next `berth apply` of the Job's manifests, whenever that is.
    NextApply,
}

/// What `-o json` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunReport {
    job: String,
    run: u32,
    started_by: Starter,
    /// The Job's record when the command ended.
    record: Option<JobRecord>,
    /// The apply's report, with `-f`.
    apply: Option<serde_json::Value>,
}

/// The record of a Job that may run again now: known, and not running.
pub fn may_run(job: &str, record: Option<JobRecord>) -> Result<JobRecord, JobRunError> {
    let record = record.ok_or_else(|| JobRunError::NotKnown {
        job: job.to_string(),
    })?;
    if record.run > 0 && record.phase == JobPhase::Active {
        return Err(JobRunError::Active {
            job: job.to_string(),
            run: record.run,
        });
    }
    Ok(record)
}

/// Without `-f`: the daemon begins the run if it follows the set that
/// declares the Job (the same source); else the next apply does.
pub fn starter_without_files(record: &JobRecord, daemon_source: Option<&str>) -> Starter {
    if daemon_source == Some(record.source.as_str()) {
        Starter::Daemon
    } else {
        Starter::NextApply
    }
}

/// Why no one begins the run now, when the next apply must.
fn why_nobody(record: &JobRecord, daemon_source: Option<&str>) -> String {
    match daemon_source {
        None => "no daemon runs on this state root".to_string(),
        Some(source) => format!(
            "the daemon follows {source}, and Job {} was applied from {}",
            record.name, record.source
        ),
    }
}

/// The run at `run` or later, once it has finished (complete or failed).
pub fn finished_run(record: &JobRecord, run: u32) -> Option<&JobRecord> {
    (record.run >= run && record.phase != JobPhase::Active).then_some(record)
}

/// The line apply prints for a Job's outcome, from its record:
/// `completed Job batch: run 2: 2 succeeded, 0 failed in 1.3s`.
pub fn summary_line(record: &JobRecord) -> String {
    result_line(&job_result(&record.name, record.completions, record))
}

/// The line apply prints for a result: `completed Job batch: run 2: ...`.
fn result_line(result: &ContainerResult) -> String {
    format!(
        "{} {:?} {}: {}",
        result.verdict.as_str(),
        result.kind,
        result.name,
        result.detail
    )
}

fn load_record(layout: &Layout, job: &str) -> anyhow::Result<Option<JobRecord>> {
    Ok(record::store(layout).get(job)?)
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        JobCommand::Run(args) => {
            // Job names follow the rule of container names (attempts are
            // named after them), which keeps the record's path in its dir.
            ContainerId::parse(&args.name).map_err(|e| {
                anyhow::anyhow!("{:?} is not a valid Job name: {}", e.name, e.reason)
            })?;
            if args.manifests.files.is_empty() {
                run_by_request(global, args)
            } else {
                run_with_manifests(global, args, &args.manifests)
            }
        }
    }
}

/// `-f`: one apply of the set, under the reconcile lock taken before the
/// request, so that nothing else begins (or refuses) the run in between.
fn run_with_manifests(
    global: &GlobalOptions,
    args: &RunArgs,
    manifests: &ManifestArgs,
) -> anyhow::Result<ExitCode> {
    let Some(set) = manifests.load(global) else {
        eprintln!("berth: the manifest set is invalid; nothing was changed");
        return Ok(ExitCode::FAILURE);
    };
    if !declares_job(&set, &args.name) {
        return Err(JobRunError::NotDeclared {
            job: args.name.clone(),
        }
        .into());
    }
    if super::apply::names_missing_files(&set) {
        return Ok(ExitCode::FAILURE);
    }
    let reconciler = reconciler(global, args.timeout.as_std())?;
    let layout = reconciler.engine().paths.clone();
    let record = may_run(&args.name, load_record(&layout, &args.name)?)?;
    effects::request_run(reconciler.engine(), &args.name)?;
    let run = record.run + 1;
    let text = args.output == OutputFormat::Text;
    if text {
        println!(
            "run {run} of Job {} requested; applying its manifests",
            args.name
        );
    }
    let options = ApplyOptions {
        timeout: args.timeout.as_std(),
        wait: args.wait,
        ..ApplyOptions::default()
    };
    let report = reconciler.apply(
        &set,
        &manifests.identity(),
        &options,
        &CliProgress::new(),
        &mut |outcome| {
            if text {
                print_outcome(outcome);
            }
        },
    )?;
    drop(reconciler);
    let job_result = report
        .results
        .iter()
        .find(|r| r.kind == Kind::Job && r.name == args.name);
    let failed = report.failed()
        || (args.wait && job_result.is_none_or(|r| r.verdict != Verdict::Completed));
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => print_json(
            args.output,
            RunReport {
                job: args.name.clone(),
                run,
                started_by: Starter::Apply,
                record: load_record(&layout, &args.name)?,
                apply: Some(report.to_json()),
            },
        )?,
        OutputFormat::Text => print_apply_end(&report, job_result, failed),
    }
    Ok(exit(failed))
}

fn declares_job(set: &ManifestSet, job: &str) -> bool {
    set.objects
        .iter()
        .any(|o| o.object.kind() == Kind::Job && o.object.name() == job)
}

/// The Job's line, what is still pending, and on failure a last word.
fn print_apply_end(report: &ApplyReport, job: Option<&ContainerResult>, failed: bool) {
    if let Some(result) = job {
        println!("{}", result_line(result));
    }
    for pending in &report.pending {
        println!(
            "pending {:?} {}: {}",
            pending.target, pending.name, pending.reason
        );
    }
    if failed {
        let failures: Vec<String> = report
            .failed_containers()
            .map(|r| format!("{:?} {} ({})", r.kind, r.name, r.cause()))
            .collect();
        if failures.is_empty() {
            eprintln!("berth: the apply did not go as declared (see above)");
        } else {
            eprintln!("berth: failed: {}", failures.join(", "));
        }
    }
}

/// Without `-f`: the request is recorded; the daemon, when it follows the
/// Job's set, is asked for a pass now, else the next apply begins the run.
fn run_by_request(global: &GlobalOptions, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let layout = global.paths();
    let socket = layout.daemon_socket();
    // Asked before the lock is taken: the daemon holds it during its passes.
    let daemon_source = Client::connect(&socket)
        .and_then(|client| client.status().ok())
        .map(|status| status.source);
    let (record, starter) = {
        let _lock = global.writer_lock()?;
        let record = may_run(&args.name, load_record(&layout, &args.name)?)?;
        let starter = starter_without_files(&record, daemon_source.as_deref());
        if args.wait && starter == Starter::NextApply {
            return Err(JobRunError::NobodyRunsIt {
                job: args.name.clone(),
                why: why_nobody(&record, daemon_source.as_deref()),
            }
            .into());
        }
        let engine = Engine::open(&layout, global.runtime.as_deref())?;
        effects::request_run(&engine, &args.name)?;
        (record, starter)
    };
    let run = record.run + 1;
    let text = args.output == OutputFormat::Text;
    if starter == Starter::Daemon {
        let poked = Client::connect(&socket).map(Client::resync);
        if text {
            match poked {
                Some(Ok(())) => println!(
                    "run {run} of Job {} requested; the daemon starts it now",
                    args.name
                ),
                _ => println!(
                    "run {run} of Job {} requested; the daemon did not answer, its next pass starts it",
                    args.name
                ),
            }
        }
    } else if text {
        println!(
            "run {run} of Job {} requested; {}: it begins at the next `berth apply` of its manifests ({}), or now with `berth job run {} -f PATH`",
            args.name,
            why_nobody(&record, daemon_source.as_deref()),
            record.file,
            args.name
        );
    }
    let mut failed = false;
    let mut last = None;
    if args.wait {
        let finished = wait_for_run(&layout, &args.name, run, args.timeout)?;
        failed = finished.phase != JobPhase::Complete;
        if text {
            println!("{}", summary_line(&finished));
        }
        last = Some(finished);
    }
    if !text {
        let record = match last {
            Some(record) => Some(record),
            None => load_record(&layout, &args.name)?,
        };
        print_json(
            args.output,
            RunReport {
                job: args.name.clone(),
                run,
                started_by: starter,
                record,
                apply: None,
            },
        )?;
    }
    Ok(exit(failed))
}

/// Reads the Job's record until run `run` (or a later one) has finished.
fn wait_for_run(
    layout: &Layout,
    job: &str,
    run: u32,
    timeout: Quantity,
) -> anyhow::Result<JobRecord> {
    let deadline = Instant::now() + timeout.as_std();
    loop {
        let record = load_record(layout, job)?.ok_or_else(|| JobRunError::Vanished {
            job: job.to_string(),
        })?;
        if finished_run(&record, run).is_some() {
            return Ok(record);
        }
        if Instant::now() >= deadline {
            return Err(JobRunError::Timeout {
                job: job.to_string(),
                run,
                after: timeout,
            }
            .into());
        }
        std::thread::sleep(POLL_EVERY);
    }
}

fn print_json(format: OutputFormat, report: RunReport) -> anyhow::Result<()> {
    super::output::print_structured(format, &report)
}

fn exit(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::jobs::record::{Attempt, AttemptState};

    fn record(run: u32, phase: JobPhase) -> JobRecord {
        JobRecord {
            name: "batch".into(),
            source: "/srv/site".into(),
            file: "batch.yaml".into(),
            fingerprint: Default::default(),
            run,
            phase,
            reason: None,
            trigger: "apply".into(),
            started_unix_ms: 10_000,
            finished_unix_ms: Some(11_300),
            attempts: Vec::new(),
            cleaned: false,
            schedule_tick: None,
            declared_unix_ms: 10_000,
            history: Vec::new(),
            run_requested: None,
            completions: 1,
            schedule: None,
        }
    }

    #[test]
    fn an_unknown_job_is_refused_with_what_to_do() {
        let error = may_run("batch", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Job batch is not known: apply its manifest first"
        );
    }

    #[test]
    fn an_active_run_is_refused_and_a_finished_or_scheduled_one_is_not() {
        let error = may_run("batch", Some(record(3, JobPhase::Active))).unwrap_err();
        assert_eq!(error.to_string(), "run 3 of Job batch is still active");
        assert!(may_run("batch", Some(record(3, JobPhase::Complete))).is_ok());
        assert!(may_run("batch", Some(record(3, JobPhase::Failed))).is_ok());
        // A scheduled Job before its first tick.
        assert!(may_run("batch", Some(record(0, JobPhase::Complete))).is_ok());
    }

    #[test]
    fn the_daemon_starts_the_run_only_when_it_follows_the_jobs_set() {
        let job = record(1, JobPhase::Complete);
        assert_eq!(
            starter_without_files(&job, Some("/srv/site")),
            Starter::Daemon
        );
        assert_eq!(
            starter_without_files(&job, Some("/srv/other")),
            Starter::NextApply
        );
        assert_eq!(starter_without_files(&job, None), Starter::NextApply);
        assert_eq!(why_nobody(&job, None), "no daemon runs on this state root");
        assert!(why_nobody(&job, Some("/srv/other")).contains("applied from /srv/site"));
    }

    #[test]
    fn waiting_ends_once_the_requested_run_or_a_later_one_has_finished() {
        assert!(finished_run(&record(1, JobPhase::Complete), 2).is_none());
        assert!(finished_run(&record(2, JobPhase::Active), 2).is_none());
        assert!(finished_run(&record(2, JobPhase::Failed), 2).is_some());
        assert!(finished_run(&record(3, JobPhase::Complete), 2).is_some());
    }

    #[test]
    fn the_summary_says_the_outcome_counts_and_duration_as_apply_does() {
        let mut done = record(2, JobPhase::Complete);
        done.attempts.push(Attempt {
            id: "batch-2-1".into(),
            number: 1,
            index: None,
            started_unix_ms: 10_000,
            finished_unix_ms: Some(11_000),
            state: AttemptState::Succeeded,
            exit_code: Some(0),
            restarts: 0,
            reason: None,
        });
        assert_eq!(
            summary_line(&done),
            "completed Job batch: run 2: 1 succeeded, 0 failed in 1.3s"
        );
        let mut failed = record(2, JobPhase::Failed);
        failed.reason = Some("backoffLimit 0 reached".into());
        assert!(
            summary_line(&failed).starts_with("failed Job batch: run 2: backoffLimit 0 reached; ")
        );
    }
}
