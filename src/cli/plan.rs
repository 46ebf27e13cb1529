//! `berth plan -f PATH...`: what apply would do, and why, without doing it.
//! Exits 0 when there is nothing to do, 2 when there is (as `terraform plan
//! -detailed-exitcode`), 1 on error, and 1 on conflicts (apply would refuse
//! the set), listing every one.

use std::process::ExitCode;

use super::{print_table, GlobalOptions, OutputFormat};
use crate::engine::Engine;
use crate::manifest::hosts::{self, HostLabels};
use crate::manifest::{self, SetIdentity};
use crate::reconcile::conflicts::Conflict;
use crate::reconcile::plan::{plan, PlanOptions};
use crate::reconcile::reconciler::conflicts_of;
use crate::reconcile::{desired, observe};

/// A manifest set on the command line, as `plan`, `apply` and `delete` take it.
#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// A manifest file, a directory (read recursively), or - for standard input
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true)]
    pub files: Vec<String>,
    /// The manifest set's identity for pruning (default: the absolute paths given)
    #[arg(long)]
    pub source: Option<String>,
    /// Read manifests that are not root-owned or that others can write, even as root
    #[arg(long)]
    pub allow_untrusted_manifests: bool,
    /// A label of the host to act for (repeatable); objects whose
    /// metadata.hosts does not select the host are left out. `hostname` is
    /// this machine's unless given: with it, plan shows what another host would run
    #[arg(long = "host-label", value_name = "KEY=VALUE", value_parser = HostLabels::parse_arg)]
    pub host_labels: Vec<(String, String)>,
}

impl ManifestArgs {
    /// The validated set, narrowed to the objects that select this host
    /// (see [`HostLabels`]), or None after printing every problem.
    pub fn load(&self, global: &GlobalOptions) -> Option<manifest::ManifestSet> {
        let host = HostLabels::of_this_host(&self.host_labels);
        let loaded = manifest::load(
            &self.files,
            global.load_options_remembering(self.allow_untrusted_manifests),
        )
        .and_then(|set| {
            let declared = set.objects.len();
            let selected = hosts::select(set, &host)?;
            if selected.objects.is_empty() && declared > 0 {
                eprintln!("berth: no object of the set selects this host ({host})");
            }
            Ok(selected)
        });
        match loaded {
            Ok(set) => Some(set),
            Err(problems) => {
                for problem in &problems {
                    eprintln!("{problem}");
                }
                None
            }
        }
    }

    /// Who the set is (for ownership and pruning) and where its relative
    /// paths are read from.
    pub fn identity(&self) -> SetIdentity {
        SetIdentity::of(self.source.as_deref(), &self.files)
    }
}

/// What `plan` and `apply` share: the manifest set and what may be pruned.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Delete what this source created and no longer declares
    #[arg(long)]
    pub prune: bool,
    /// With --prune, volumes too (their data is the user's)
    #[arg(long)]
    pub prune_volumes: bool,
}

impl SetArgs {
    pub fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            prune: self.prune,
            prune_volumes: self.prune_volumes,
            ..PlanOptions::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub set: SetArgs,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let Some(set) = args.set.manifests.load(global) else {
        return Ok(ExitCode::FAILURE);
    };
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let identity = args.set.manifests.identity();
    let wanted = desired::build(&set, &identity.source, &identity.tree, &engine)?;
    let actual = observe::observe(
        &engine,
        observe::ObserveOptions {
            check_networks: true,
        },
    )?;
    let now = crate::state::clock::unix_ms();
    // What Jobs' containers did since their records were written, as apply
    // would settle it first (nothing is saved).
    let mut actual = actual;
    crate::reconcile::jobs::settle(&wanted, &mut actual, now);
    let conflicts = conflicts_of(&set, &identity, &actual);
    if !conflicts.is_empty() {
        print_conflicts(&conflicts, args.output)?;
        return Ok(ExitCode::FAILURE);
    }
    let mut options = args.set.plan_options();
    options.now_unix_ms = now;
    let actions = plan(&wanted, &actual, &options);
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            super::output::print_structured(args.output, &actions)?
        }
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

/// What apply would refuse: one line each (`FILE:LINE:COL: message`), or
/// `{"conflicts": [...]}`.
fn print_conflicts(conflicts: &[Conflict], output: OutputFormat) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json | OutputFormat::Yaml => {
            super::output::print_structured(output, &serde_json::json!({ "conflicts": conflicts }))?
        }
        OutputFormat::Text => {
            for conflict in conflicts {
                eprintln!("{conflict}");
            }
            eprintln!(
                "berth: {} conflict{}: apply would refuse this set and change nothing",
                conflicts.len(),
                if conflicts.len() == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}
