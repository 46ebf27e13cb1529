//! `berth delete -f PATH...`: removes what those manifests declare and this
//! source owns. Volumes are kept unless `--volumes`: their data is the user's.

use std::process::ExitCode;

use super::apply::{print_outcome, reconciler};
use super::plan::ManifestArgs;
use super::progress::CliProgress;
use super::{GlobalOptions, OutputFormat};
use crate::manifest::Kind;
use crate::reconcile::DeleteOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Delete the declared volumes too, and their data
    #[arg(long)]
    pub volumes: bool,
    /// How many independent removals run at once (default: 4 per CPU, at most 32)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let Some(set) = args.manifests.load(global) else {
        eprintln!("berth: the manifest set is invalid; nothing was deleted");
        return Ok(ExitCode::FAILURE);
    };
    let reconciler = reconciler(global, std::time::Duration::from_secs(120))?;
    let text = args.output == OutputFormat::Text;
    let (wanted, actual, report) = reconciler.delete(
        &set,
        &args.manifests.identity(),
        &DeleteOptions {
            volumes: args.volumes,
            parallel: args.parallel.map_or(0, usize::from),
        },
        &CliProgress::new(),
        &mut |outcome| {
            if text {
                print_outcome(outcome);
            }
        },
    )?;
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            super::output::print_structured(args.output, &report.to_json())?
        }
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
