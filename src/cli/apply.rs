//! `berth apply -f PATH...`: validate the whole set, then plan, execute and
//! observe until the host matches it. An invalid set changes nothing.

use std::process::ExitCode;

use super::plan::{tree_of, SetArgs};
use super::progress::CliProgress;
use super::{GlobalOptions, OutputFormat};
use crate::manifest::quantity::Duration;
use crate::reconcile::execute::{apply, ApplyOptions};
use crate::runtime::container::Runtime;
use crate::state::lock;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub set: SetArgs,
    /// Give up converging after this long
    #[arg(long, default_value = "2m")]
    pub timeout: Duration,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let Some(set) = args.set.load() else {
        eprintln!("berth: the manifest set is invalid; nothing was changed");
        return Ok(ExitCode::FAILURE);
    };
    // One reconciler at a time on a state root.
    let lock_path = global.state.join("reconcile.lock");
    let _lock = match lock::acquire(&lock_path, lock::Mode::Exclusive, false) {
        Ok(lock) => lock,
        Err(lock::LockError::Busy { .. }) => anyhow::bail!(
            "another berth apply is running on {} (lock {})",
            global.state.display(),
            lock_path.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let runtime = Runtime::open(&global.paths(), global.runtime.as_deref())?;
    let progress = CliProgress::new();
    let options = ApplyOptions {
        plan: args.set.plan_options(),
        timeout: args.timeout.as_std(),
    };
    let text = args.output == OutputFormat::Text;
    let report = apply(
        &runtime,
        &set,
        &args.set.source_id(),
        &tree_of(&args.set.files),
        &options,
        &progress,
        &mut |outcome| {
            if text {
                let verb = serde_json::to_value(outcome.action.verb)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                match &outcome.error {
                    None => println!(
                        "{verb} {:?} {}: {} ... ok",
                        outcome.action.target, outcome.action.name, outcome.action.reason
                    ),
                    Some(error) => println!(
                        "{verb} {:?} {}: {} ... FAILED: {error}",
                        outcome.action.target, outcome.action.name, outcome.action.reason
                    ),
                }
            }
        },
    )
    .map_err(anyhow::Error::msg)?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => {
            for pending in &report.pending {
                println!(
                    "pending {:?} {}: {}",
                    pending.target, pending.name, pending.reason
                );
            }
            if report.outcomes.is_empty() && report.converged {
                println!("nothing to do: the host matches the manifests");
            } else if report.converged && !report.failed() {
                println!("converged");
            }
        }
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
