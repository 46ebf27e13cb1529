//! `berth delete -f PATH...`: removes what those manifests declare and this
//! source owns. Volumes are kept unless `--volumes`: their data is the user's.

use std::process::ExitCode;

use super::apply::{print_outcome, reconcile_lock};
use super::plan::ManifestArgs;
use super::progress::CliProgress;
use super::{GlobalOptions, OutputFormat};
use crate::engine::Engine;
use crate::manifest::Kind;
use crate::reconcile::desired;
use crate::reconcile::execute::execute_plan;
use crate::reconcile::observe::{observe, ObserveOptions};
use crate::reconcile::plan::plan_delete;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Delete the declared volumes too, and their data
    #[arg(long)]
    pub volumes: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let Some(set) = args.manifests.load() else {
        eprintln!("berth: the manifest set is invalid; nothing was deleted");
        return Ok(ExitCode::FAILURE);
    };
    let _lock = reconcile_lock(global, std::time::Duration::from_secs(120))?;
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?;
    let wanted = desired::build(
        &set,
        &args.manifests.source_id(),
        &args.manifests.tree(),
        &engine.images,
    )?;
    let actual = observe(&engine, ObserveOptions::default())?;
    let actions = plan_delete(&wanted, &actual, args.volumes);
    let text = args.output == OutputFormat::Text;
    let report = execute_plan(
        &engine,
        &wanted,
        actions,
        &CliProgress::new(),
        &mut |outcome| {
            if text {
                print_outcome(outcome);
            }
        },
    );
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => {
            for left in &report.pending {
                println!("left {:?} {}: {}", left.target, left.name, left.reason);
            }
            if !args.volumes {
                let kept: Vec<&str> = wanted
                    .objects
                    .iter()
                    .filter(|o| o.kind == Kind::Volume)
                    .filter(|o| actual.volumes.iter().any(|v| v.name == o.name))
                    .map(|o| o.name.as_str())
                    .collect();
                if !kept.is_empty() {
                    println!(
                        "kept volumes {} (their data is yours; --volumes deletes them)",
                        kept.join(", ")
                    );
                }
            }
            if report.outcomes.is_empty() && report.pending.is_empty() {
                println!("nothing to delete");
            }
        }
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
