//! `berth export kubernetes -f PATH... [-o DIR] [--pods]`: the set as
//! Kubernetes objects, as a multi-document YAML stream on stdout or one
//! file per object; what does not map is a warning on stderr.

use crate::state::atomic::write_atomic_volatile_readable;
use crate::state::records::read_referenced_file;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::GlobalOptions;
use crate::interop::kube::{self, ExportOptions, Files, KubeObject};
use crate::manifest::hosts::{self, HostLabels};
use crate::manifest::{self, ManifestSet};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub target: Target,
}

#[derive(Debug, clap::Subcommand)]
pub enum Target {
    /// Deployments (or Pods), Services, Jobs, CronJobs, claims, config maps
    /// and network policies; what does not map is a warning with its file:line
    Kubernetes(KubeArgs),
}

#[derive(Debug, clap::Args)]
pub struct KubeArgs {
    /// A manifest file, a directory (read recursively), or - for standard input
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true)]
    pub files: Vec<String>,
    /// Write one file per object (KIND-NAME.yaml) into DIR instead of a stream on stdout
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Containers become bare Pods (keeping never and on-failure restart policies), not Deployments
    #[arg(long)]
    pub pods: bool,
    /// The image of the init containers that wait for dependencies (needs sh and nc)
    #[arg(long, value_name = "IMAGE", default_value = kube::DEFAULT_WAIT_IMAGE)]
    pub wait_image: String,
    /// The storage each PersistentVolumeClaim asks for
    #[arg(long, value_name = "QUANTITY", default_value = kube::DEFAULT_VOLUME_SIZE)]
    pub volume_size: String,
    /// Export only what the host with this label runs (repeatable); without it, the whole
    /// set, with metadata.hosts label selectors as nodeSelectors
    #[arg(long = "host-label", value_name = "KEY=VALUE", value_parser = HostLabels::parse_arg)]
    pub host_labels: Vec<(String, String)>,
    /// Read manifests that are not root-owned or that others can write, even as root
    #[arg(long)]
    pub allow_untrusted_manifests: bool,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    match &args.target {
        Target::Kubernetes(args) => kubernetes(global, args),
    }
}

fn kubernetes(global: &GlobalOptions, args: &KubeArgs) -> anyhow::Result<ExitCode> {
    let Some(set) = load(global, args) else {
        return Ok(ExitCode::FAILURE);
    };
    let options = ExportOptions {
        pods: args.pods,
        wait_image: args.wait_image.clone(),
        volume_size: args.volume_size.clone(),
    };
    let limit = global.input_limits().max_referenced_file;
    let export = kube::export(&set, &options, &DiskFiles { limit })?;
    for warning in &export.warnings {
        eprintln!("warning: {warning}");
    }
    match &args.output_dir {
        Some(dir) => write_files(dir, &export.objects)?,
        None => print!("{}", stream(&export.objects)?),
    }
    let plural = if export.objects.len() == 1 { "" } else { "s" };
    eprintln!(
        "exported {} Kubernetes object{plural}, {} warning{}",
        export.objects.len(),
        export.warnings.len(),
        if export.warnings.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

/// The valid set, or None after printing every problem; with host labels,
/// only what that host runs.
fn load(global: &GlobalOptions, args: &KubeArgs) -> Option<ManifestSet> {
    let loaded = manifest::load(
        &args.files,
        global.load_options(args.allow_untrusted_manifests),
    )
    .and_then(|set| match args.host_labels.is_empty() {
        true => Ok(set),
        false => hosts::select(set, &HostLabels::of_this_host(&args.host_labels)),
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

/// Every object as a YAML document, each opened with `---`.
pub fn stream(objects: &[KubeObject]) -> anyhow::Result<String> {
    let mut text = String::new();
    for object in objects {
        text.push_str("---\n");
        text.push_str(&super::output::to_yaml(&serde_json::to_value(object)?));
    }
    Ok(text)
}

fn write_files(dir: &Path, objects: &[KubeObject]) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for object in objects {
        let path = dir.join(object.file_name());
        let text = super::output::to_yaml(&serde_json::to_value(object)?);
        write_atomic_volatile_readable(&path, text.as_bytes())
            .with_context(|| format!("write {}", path.display()))?;
    }
    eprintln!("wrote {} files to {}", objects.len(), dir.display());
    Ok(())
}

/// Env files, read as the engine reads them for a container: a regular
/// file within `--max-env-file-size`, refused (not cut short) beyond it
/// (loading has already checked their trust as root).
struct DiskFiles {
    limit: u64,
}

impl Files for DiskFiles {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        String::from_utf8(read_referenced_file(path, self.limit)?).map_err(std::io::Error::other)
    }
}
