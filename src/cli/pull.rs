//! `berth image pull REF`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::image::print_stored;
use super::progress::CliProgress;
use super::{GlobalOptions, OutputFormat};
use crate::image::pull::{self, PullOptions};
use crate::image::{Images, LayerUnpacker, Reference};
use crate::snapshot::OverlaySnapshotter;

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// A registry reference: busybox, registry:5000/app:1.0, app@sha256:...
    pub reference: String,
    /// A registry (host[:port]) that may be reached over plain HTTP; loopback registries always may
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// A docker config.json with registry credentials
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Store the blobs but do not unpack the layers
    #[arg(long)]
    pub no_unpack: bool,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(
    global: &GlobalOptions,
    images: &Images,
    snapshots: &OverlaySnapshotter,
    args: &PullArgs,
) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let options = PullOptions {
        insecure_registries: args.insecure_registries.clone(),
        credentials_file: args.credentials.clone(),
        limits: global.image_limits(),
        ..PullOptions::default()
    };
    let progress = CliProgress::new();
    let unpacker = (!args.no_unpack).then_some(snapshots as &dyn LayerUnpacker);
    let result = pull::pull(images, &reference, &options, unpacker, &progress);
    progress.finish();
    print_stored(&result?, args.output)?;
    Ok(ExitCode::SUCCESS)
}
