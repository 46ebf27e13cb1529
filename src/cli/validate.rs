//! `berth validate -f PATH...`: reports every problem in a manifest set.

use std::process::ExitCode;

use super::{GlobalOptions, OutputFormat};
use crate::manifest::hosts::{self, HostLabels};
use crate::manifest::{self, Kind, ManifestSet};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A manifest file, a directory (read recursively), or - for standard input
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true)]
    pub files: Vec<String>,
    /// Read manifests that are not root-owned or that others can write, even as root
    #[arg(long)]
    pub allow_untrusted_manifests: bool,
    /// Also check the set as the host with this label sees it (repeatable):
    /// a reference to an object that host does not run is a problem, and the
    /// text output names what it runs. `hostname` is this machine's unless given
    #[arg(long = "host-label", value_name = "KEY=VALUE", value_parser = HostLabels::parse_arg)]
    pub host_labels: Vec<(String, String)>,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let options = global.load_options(args.allow_untrusted_manifests);
    let loaded = manifest::load(&args.files, options).and_then(|set| {
        let host =
            (!args.host_labels.is_empty()).then(|| HostLabels::of_this_host(&args.host_labels));
        let selected = match host {
            Some(host) => Some((hosts::select(set.clone(), &host)?, host)),
            None => None,
        };
        Ok((set, selected))
    });
    match loaded {
        Ok((set, selected)) => {
            let warnings = manifest::validate::check_missing_references(&set.objects);
            match args.output {
                OutputFormat::Json | OutputFormat::Yaml => {
                    super::output::print_structured(args.output, &as_warnings(&warnings)?)?
                }
                OutputFormat::Text => {
                    for warning in &warnings {
                        println!("warning: {warning}");
                    }
                    println!("{}", summary(&set));
                    if let Some((selected, host)) = &selected {
                        println!("{}", host_runs(host, &set, selected));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            match args.output {
                OutputFormat::Json | OutputFormat::Yaml => {
                    super::output::print_structured(args.output, &problems)?
                }
                OutputFormat::Text => {
                    for problem in &problems {
                        println!("{problem}");
                    }
                    let plural = if problems.len() == 1 { "" } else { "s" };
                    eprintln!("{} problem{plural} found", problems.len());
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Diagnostics marked `"severity": "warning"` for `-o json`, so that a
/// reader tells them from the problems of an invalid set (which have no
/// severity and exit 1).
fn as_warnings(warnings: &[manifest::Diagnostic]) -> serde_json::Result<Vec<serde_json::Value>> {
    warnings
        .iter()
        .map(|warning| {
            let mut value = serde_json::to_value(warning)?;
            if let Some(fields) = value.as_object_mut() {
                fields.insert("severity".into(), "warning".into());
            }
            Ok(value)
        })
        .collect()
}

/// `this host (hostname=web1, role=edge) runs 2 of 3 objects: Container
/// agent, Container proxy`.
fn host_runs(host: &HostLabels, set: &ManifestSet, selected: &ManifestSet) -> String {
    let names: Vec<String> = selected
        .objects
        .iter()
        .map(|l| format!("{} {}", l.object.kind(), l.object.name()))
        .collect();
    let total = set.objects.len();
    if names.is_empty() {
        format!("this host ({host}) runs none of the {total} objects")
    } else {
        format!(
            "this host ({host}) runs {} of {total} objects: {}",
            names.len(),
            names.join(", ")
        )
    }
}

fn summary(set: &ManifestSet) -> String {
    let counts = set.counts();
    let parts: Vec<String> = Kind::ALL
        .iter()
        .map(|kind| {
            let n = counts.get(kind).copied().unwrap_or(0);
            format!("{n} {}{}", kind.as_str(), if n == 1 { "" } else { "s" })
        })
        .collect();
    let files = if set.files == 1 { "file" } else { "files" };
    format!("valid: {} {files}, {}", set.files, parts.join(", "))
}
