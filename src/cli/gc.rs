//! `berth gc`: removes blobs, layers and temp files nothing references.

use std::process::ExitCode;

use super::progress::human_bytes;
use super::{GlobalOptions, OutputFormat};
use crate::engine::gc;
use crate::image::Images;
use crate::snapshot::OverlaySnapshotter;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let images = Images::open(&global.paths())?;
    let snapshots = OverlaySnapshotter::open(&global.root)?;
    let report = gc::run(&images, &snapshots)?;
    // host-local has no garbage collection: drop IP reservations and cached
    // attachments of containers berth no longer knows (after a crash or a
    // reboot), so a subnet never runs out.
    let live: Vec<String> = std::fs::read_dir(global.root.join("containers"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .strip_suffix(".json")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let swept =
        crate::network::attach::Networker::new(&global.root, &global.state).sweep_stale(&live)?;
    match args.output {
        OutputFormat::Json => {
            let mut value = serde_json::to_value(&report)?;
            value["networkAttachmentsSwept"] = swept.into();
            println!("{}", serde_json::to_string_pretty(&value)?)
        }
        OutputFormat::Text => println!(
            "removed {} blobs ({}), {} layers, {} temp files, {} stale network attachments",
            report.blobs_removed,
            human_bytes(report.bytes_freed),
            report.layers_removed,
            report.temp_files_removed,
            swept
        ),
    }
    Ok(ExitCode::SUCCESS)
}
