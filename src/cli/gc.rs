//! `berth gc`: removes blobs, layers and temp files nothing references.

use std::process::ExitCode;

use super::progress::human_bytes;
use super::{GlobalOptions, OutputFormat};
use crate::image::{gc, Images};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let images = Images::open(&global.paths())?;
    let report = gc::run(&images)?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => println!(
            "removed {} blobs ({}), {} layers, {} temp files",
            report.blobs_removed,
            human_bytes(report.bytes_freed),
            report.layers_removed,
            report.temp_files_removed
        ),
    }
    Ok(ExitCode::SUCCESS)
}
