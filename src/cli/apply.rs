//! `berth apply -f PATH...`: validate the whole set, then plan, execute and
//! observe until the host matches it. An invalid set changes nothing.

use std::process::ExitCode;

use super::plan::SetArgs;
use super::progress::CliProgress;
use super::waits::WaitDisplay;
use super::{GlobalOptions, OutputFormat};
use crate::engine::Engine;
use crate::manifest;
use crate::manifest::quantity::Duration;
use crate::reconcile::execute::{ApplyReport, Outcome};
use crate::reconcile::outcome::{ContainerResult, Verdict};
use crate::reconcile::{ApplyOptions, Reconciler};
use crate::state::clock::SystemClock;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub set: SetArgs,
    /// Also wait until every container runs (and is healthy, where it has a
    /// health check), and every one with restart policy never has finished;
    /// print each container's outcome
    #[arg(long)]
    pub wait: bool,
    /// Give up converging (and waiting) after this long
    #[arg(long, default_value = "2m")]
    pub timeout: Duration,
    /// How many independent actions run at once (default: 4 per CPU, at most 32)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let Some(set) = args.set.manifests.load(global) else {
        eprintln!("berth: the manifest set is invalid; nothing was changed");
        return Ok(ExitCode::FAILURE);
    };
    if names_missing_files(&set) {
        return Ok(ExitCode::FAILURE);
    }
    let reconciler = reconciler(global, args.timeout.as_std())?;
    let progress = CliProgress::new();
    let waits = std::sync::Arc::new(WaitDisplay::new());
    let shown = waits.clone();
    let options = ApplyOptions {
        plan: args.set.plan_options(),
        timeout: args.timeout.as_std(),
        wait: args.wait,
        parallel: args.parallel.map_or(0, usize::from),
        observer: Some(Box::new(move |event| shown.event(event))),
        ..ApplyOptions::default()
    };
    let text = args.output == OutputFormat::Text;
    let report = reconciler.apply(
        &set,
        &args.set.manifests.identity(),
        &options,
        &progress,
        &mut |outcome| {
            // A progress or spinner line on the terminal ends first.
            progress.finish();
            waits.clear();
            if text {
                print_outcome(outcome);
            }
        },
    );
    progress.finish();
    waits.clear();
    let report = report?;
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            super::output::print_structured(args.output, &report.to_json())?
        }
        OutputFormat::Text => {
            print_results(&report, args.wait);
            for pending in &report.pending {
                println!(
                    "pending {:?} {}: {}",
                    pending.target, pending.name, pending.reason
                );
            }
            if report.outcomes.is_empty() && report.converged && !report.failed() {
                println!("nothing to do: the host matches the manifests");
            } else if report.converged && !report.failed() {
                println!("converged");
            }
            print_failed_containers(&report);
        }
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Says so, naming each, when the set names local files that do not exist
/// (apply refuses it before anything changes).
pub fn names_missing_files(set: &manifest::ManifestSet) -> bool {
    let missing = manifest::validate::check_missing_references(&set.objects);
    for problem in &missing {
        eprintln!("{problem}");
    }
    if !missing.is_empty() {
        eprintln!(
            "berth: the manifest set names local files that do not exist; nothing was changed"
        );
    }
    !missing.is_empty()
}

/// The reconciler of this state root, once no other one runs: says whom it
/// waits for while it waits, up to `patience`.
pub fn reconciler(
    global: &GlobalOptions,
    patience: std::time::Duration,
) -> anyhow::Result<Reconciler> {
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?
        .with_image_limits(global.image_limits())
        .with_input_limits(global.input_limits());
    Ok(Reconciler::acquire(
        engine,
        Box::new(SystemClock),
        patience,
        &mut |busy| eprintln!("berth: waiting for another reconciler: {busy}"),
    )?)
}

/// One line per action carried out: what, why, and how it went.
pub fn print_outcome(outcome: &Outcome) {
    let action = &outcome.action;
    let verb = serde_json::to_value(action.verb)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match &outcome.error {
        None => println!(
            "{verb} {:?} {}: {} ... ok",
            action.target, action.name, action.reason
        ),
        Some(error) => println!(
            "{verb} {:?} {}: {} ... FAILED: {error}",
            action.target, action.name, action.reason
        ),
    }
}

/// Which results to print: with `--wait`, every container's; without, only
/// the ones that went wrong (failed, or whose last start failed), since
/// apply did not wait for the rest.
fn shown(result: &ContainerResult, wait: bool) -> bool {
    wait || result.verdict == Verdict::Failed || result.start_error.is_some()
}

/// One line per container, as actions are printed: `VERDICT Container
/// NAME: DETAIL` (`failed Container db: it exited with code 7 ...`); one still
/// waiting that the plan left pending is said by its pending line, which
/// knows more (a dependency it waits for).
fn print_results(report: &ApplyReport, wait: bool) {
    let pending = |result: &ContainerResult| {
        report
            .pending
            .iter()
            .any(|a| a.target == result.target() && a.name == result.name)
    };
    for result in report.results.iter().filter(|r| shown(r, wait)) {
        if result.verdict == Verdict::Waiting && pending(result) {
            continue;
        }
        println!(
            "{} {:?} {}: {}",
            result.verdict.as_str(),
            result.kind,
            result.name,
            result.detail
        );
    }
}

/// The last word when containers failed for good: each, with its exit code
/// or start error, on standard error.
fn print_failed_containers(report: &ApplyReport) {
    let failed: Vec<String> = report
        .failed_containers()
        .map(|r| format!("{} ({})", r.name, r.cause()))
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "berth: {} failed and will not restart: {}",
            if failed.len() == 1 {
                "a container"
            } else {
                "containers"
            },
            failed.join(", ")
        );
    }
}
