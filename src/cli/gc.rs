//! `berth gc`: removes blobs, layers and temp files nothing references,
//! and the network leftovers and logs of containers berth no longer knows.

use std::process::ExitCode;

use super::apply::reconciler;
use super::progress::human_bytes;
use super::{GlobalOptions, OutputFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    // host-local has no garbage collection: the reconciler also drops the IP
    // reservations and cached attachments of containers berth no longer
    // knows (after a crash or a reboot), so a subnet never runs out, and
    // the iptables rules the CNI plugins left for them.
    let (report, swept) = reconciler(global, std::time::Duration::from_secs(120))?.gc()?;
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let mut value = serde_json::to_value(&report)?;
            value["networkAttachmentsSwept"] = swept.attachments.into();
            value["iptablesRulesRemoved"] = swept.rules.into();
            super::output::print_structured(args.output, &value)?
        }
        OutputFormat::Text => println!(
            "removed {} blobs ({}), {} layers, {} temp files, {} stale network attachments, {} leftover iptables rules, {} leftover log dirs",
            report.blobs_removed,
            human_bytes(report.bytes_freed),
            report.layers_removed,
            report.temp_files_removed,
            swept.attachments,
            swept.rules,
            report.log_dirs_removed
        ),
    }
    Ok(ExitCode::SUCCESS)
}
