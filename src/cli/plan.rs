//! `berth plan -f PATH...`: what apply would do, and why, without doing it.
//! Exits 0 when there is nothing to do, 2 when there is (as `terraform plan
//! -detailed-exitcode`), 1 on error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{print_table, GlobalOptions, OutputFormat};
use crate::manifest::{self, LoadOptions};
use crate::reconcile::plan::{plan, PlanOptions};
use crate::reconcile::{desired, observe};
use crate::runtime::container::Runtime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A manifest file, a directory (read recursively), or - for standard input
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true)]
    pub files: Vec<String>,
    /// The manifest set's identity for pruning (default: the absolute paths given)
    #[arg(long)]
    pub source: Option<String>,
    /// Plan deleting what this source created and no longer declares
    #[arg(long)]
    pub prune: bool,
    /// With --prune, volumes too (their data is the user's)
    #[arg(long)]
    pub prune_volumes: bool,
    #[arg(long)]
    pub allow_untrusted_manifests: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The source id of a manifest set: `--source`, or its absolute paths.
pub fn source_id(explicit: Option<&str>, files: &[String]) -> String {
    if let Some(source) = explicit {
        return source.to_string();
    }
    files
        .iter()
        .map(|f| {
            std::fs::canonicalize(f)
                .unwrap_or_else(|_| PathBuf::from(f))
                .display()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The manifest tree: the directory given, or the directory of the file.
pub fn tree_of(files: &[String]) -> PathBuf {
    let first = files
        .first()
        .map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| PathBuf::from(f)))
        .unwrap_or_default();
    if first.is_dir() {
        first
    } else {
        first.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let set = match manifest::load(
        &args.files,
        LoadOptions::for_current_user(args.allow_untrusted_manifests),
    ) {
        Ok(set) => set,
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let runtime = Runtime::open(&global.paths(), global.runtime.as_deref())?;
    let source = source_id(args.source.as_deref(), &args.files);
    let wanted = desired::build(&set, &source, &tree_of(&args.files), &runtime.images)?;
    let actual = observe::observe(&runtime)?;
    let actions = plan(
        &wanted,
        &actual,
        &PlanOptions {
            prune: args.prune,
            prune_volumes: args.prune_volumes,
        },
    );
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&actions)?),
        OutputFormat::Text => {
            if actions.is_empty() {
                println!("nothing to do: the host matches the manifests");
            } else {
                let rows: Vec<Vec<String>> = actions
                    .iter()
                    .map(|a| {
                        vec![
                            format!("{:?}", a.target),
                            a.name.clone(),
                            serde_json::to_value(a.verb)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                            a.reason.clone(),
                        ]
                    })
                    .collect();
                print_table(&["OBJECT", "NAME", "ACTION", "REASON"], &rows);
            }
        }
    }
    Ok(if actions.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
