//! `berth image ...`: import, pull, list, inspect, remove, prune, tag and save images.

use std::process::ExitCode;

use serde::Serialize;

use super::progress::{human_bytes, CliProgress};
use super::{GlobalOptions, OutputFormat};
use crate::engine::image::{prune_images, remove_image};
use crate::image::import::{self, ImportOptions};
use crate::image::save::{self, ArchiveFormat};
use crate::image::{ImageRecord, ImageSource, Images, LayerUnpacker};
use crate::snapshot::OverlaySnapshotter;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Import an image from oci-layout:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE
    Import(ImportArgs),
    /// Pull an image from a registry
    Pull(super::pull::PullArgs),
    /// List images
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Show everything berth knows about an image
    Inspect(InspectArgs),
    /// Remove an image and what only it referenced
    Rm(RemoveArgs),
    /// Remove every image no container uses
    Prune(PruneArgs),
    /// Give an image a second name (the same manifest): berth image tag SRC DST
    Tag(TagArgs),
    /// Write an image to an archive other tools import (skopeo, ctr, docker load)
    Save(SaveArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The source: oci-layout:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE
    pub source: String,
    /// The name to record the image under, a reference normalized as docker does
    /// (mybusybox is docker.io/library/mybusybox:latest; default: the source)
    #[arg(long)]
    pub name: Option<String>,
    /// Store the blobs but do not unpack the layers
    #[arg(long)]
    pub no_unpack: bool,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Image name, reference or manifest digest prefix
    pub name: String,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// Image names, references or manifest digest prefixes
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Remove the record even when container snapshots use the image (their layers stay)
    #[arg(short, long)]
    pub force: bool,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The image: name, reference or manifest digest prefix
    pub source: String,
    /// The new name: a reference without a digest (busybox:mine is docker.io/library/busybox:mine)
    pub target: String,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The archive formats of `image save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaveFormat {
    /// A tar of an OCI image layout (skopeo's oci-archive:, ctr import)
    OciArchive,
    /// docker save's format (skopeo's docker-archive:, docker load, ctr import)
    DockerArchive,
}

#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// The image: name, reference or manifest digest prefix
    pub name: String,
    /// The archive to write (replaced whole when it exists)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// The archive's format
    #[arg(long, value_enum, default_value_t = SaveFormat::OciArchive)]
    pub format: SaveFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let paths = global.paths();
    let images = Images::open(&paths)?;
    let snapshots = OverlaySnapshotter::open(&paths.snapshots())?;
    match &args.command {
        ImageCommand::Import(args) => run_import(global, &images, &snapshots, args),
        ImageCommand::Pull(args) => super::pull::run(global, &images, &snapshots, args),
        ImageCommand::Ls(args) => run_list(&images, &snapshots, args),
        ImageCommand::Inspect(args) => run_inspect(&images, args),
        ImageCommand::Rm(args) => run_remove(&images, &snapshots, args),
        ImageCommand::Prune(args) => run_prune(&images, &snapshots, args),
        ImageCommand::Tag(args) => run_tag(&images, args),
        ImageCommand::Save(args) => run_save(&images, args),
    }
}

/// Prints the result of import and pull.
pub fn print_stored(record: &ImageRecord, output: OutputFormat) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json | OutputFormat::Yaml => super::output::print_structured(output, record)?,
        OutputFormat::Text => println!(
            "{} {} ({} layers, {})",
            record.name,
            record.manifest,
            record.layers.len(),
            human_bytes(record.size())
        ),
    }
    Ok(())
}

fn run_import(
    global: &GlobalOptions,
    images: &Images,
    snapshots: &OverlaySnapshotter,
    args: &ImportArgs,
) -> anyhow::Result<ExitCode> {
    let source = ImageSource::parse(&args.source)?.resolve_relative_to(&std::env::current_dir()?);
    let options = ImportOptions {
        name: args.name.clone(),
        limits: global.image_limits(),
        ..ImportOptions::default()
    };
    let progress = CliProgress::new();
    let unpacker = (!args.no_unpack).then_some(snapshots as &dyn LayerUnpacker);
    let result = import::import(images, &source, &options, unpacker, &progress);
    progress.finish();
    print_stored(&result?, args.output)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedImage<'a> {
    name: &'a str,
    manifest: String,
    platform: &'a str,
    layers: usize,
    size: u64,
    created: u64,
    unpacked: bool,
}

fn run_list(
    images: &Images,
    snapshots: &OverlaySnapshotter,
    args: &ListArgs,
) -> anyhow::Result<ExitCode> {
    use crate::snapshot::Snapshotter;
    let records = images.records.list()?;
    let listed: Vec<ListedImage> = records
        .iter()
        .map(|r| ListedImage {
            name: &r.name,
            manifest: r.manifest.to_string(),
            platform: &r.platform,
            layers: r.layers.len(),
            size: r.size(),
            created: r.created,
            unpacked: r.layers.iter().all(|l| snapshots.has_layer(&l.chain_id)),
        })
        .collect();
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            super::output::print_structured(args.output, &listed)?
        }
        OutputFormat::Text => {
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|i| {
                    vec![
                        i.name.to_string(),
                        i.manifest["sha256:".len().."sha256:".len() + 12].to_string(),
                        i.platform.to_string(),
                        i.layers.to_string(),
                        human_bytes(i.size),
                        if i.unpacked {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                    ]
                })
                .collect();
            super::print_table(
                &["NAME", "MANIFEST", "PLATFORM", "LAYERS", "SIZE", "UNPACKED"],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_inspect(images: &Images, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let record = images.records.find(&args.name)?;
    let config: serde_json::Value =
        serde_json::from_slice(&images.store.read_json_blob(&record.config)?)?;
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = serde_json::json!({"image": record, "config": config});
            super::output::print_structured(args.output, &value)?;
        }
        OutputFormat::Text => {
            println!("Name:      {}", record.name);
            println!("Source:    {}", record.source);
            println!(
                "Target:    {} ({})",
                record.target, record.target_media_type
            );
            println!("Manifest:  {}", record.manifest);
            println!("Config:    {}", record.config);
            println!("Platform:  {}", record.platform);
            println!("Size:      {}", human_bytes(record.size()));
            let image_config = &config["config"];
            for (label, key) in [
                ("Entrypoint", "Entrypoint"),
                ("Cmd", "Cmd"),
                ("Env", "Env"),
                ("WorkingDir", "WorkingDir"),
                ("User", "User"),
            ] {
                if let Some(value) = image_config.get(key).filter(|v| !v.is_null()) {
                    println!("{:<10} {}", format!("{label}:"), value);
                }
            }
            println!("Layers:");
            for layer in &record.layers {
                println!(
                    "  {} {} {}",
                    layer.digest,
                    human_bytes(layer.size),
                    layer.media_type
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_remove(
    images: &Images,
    snapshots: &OverlaySnapshotter,
    args: &RemoveArgs,
) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    for name in &args.names {
        let report = remove_image(images, snapshots, name, args.force)?;
        if args.output == OutputFormat::Text {
            println!(
                "removed {name}: {} blobs ({}), {} layers freed",
                report.blobs_removed,
                human_bytes(report.bytes_freed),
                report.layers_removed
            );
        }
        reports.push(serde_json::json!({"name": name, "gc": report}));
    }
    if args.output != OutputFormat::Text {
        super::output::print_structured(args.output, &reports)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_prune(
    images: &Images,
    snapshots: &OverlaySnapshotter,
    args: &PruneArgs,
) -> anyhow::Result<ExitCode> {
    let (removed, report) = prune_images(images, snapshots)?;
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => super::output::print_structured(
            args.output,
            &serde_json::json!({"removed": removed, "gc": report}),
        )?,
        OutputFormat::Text => {
            for name in &removed {
                println!("removed {name}");
            }
            println!(
                "{} images removed; {} blobs ({}) and {} layers freed",
                removed.len(),
                report.blobs_removed,
                human_bytes(report.bytes_freed),
                report.layers_removed
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_tag(images: &Images, args: &TagArgs) -> anyhow::Result<ExitCode> {
    let tagged = images.tag(&args.source, &args.target)?;
    print_stored(&tagged, args.output)?;
    Ok(ExitCode::SUCCESS)
}

fn run_save(images: &Images, args: &SaveArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        SaveFormat::OciArchive => ArchiveFormat::OciArchive,
        SaveFormat::DockerArchive => ArchiveFormat::DockerArchive,
    };
    let record = save::save(images, &args.name, format, &args.file)?;
    println!(
        "saved {} {} to {}",
        record.name,
        record.manifest,
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}
