//! `berth exec [-t] NAME -- CMD...`: runs a command in a running container.

use std::process::ExitCode;

use super::GlobalOptions;
use crate::engine::Engine;
use crate::manifest::names::ContainerId;
use crate::runtime::oci::OciRuntime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (NAME=VALUE)
    #[arg(short, long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// The container's name
    pub name: String,
    /// The command and its arguments, run in the container
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?;
    let record = engine.record(&ContainerId::parse(&args.name)?)?;
    if !engine.view(&record).is_running() {
        anyhow::bail!("container {} is not running", record.id);
    }
    let status = engine
        .runc
        .exec_attached(&record.id, args.tty, &args.env, &args.command)?;
    Ok(
        match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => ExitCode::from(code.clamp(0, 255) as u8),
            (None, Some(signal)) => ExitCode::from((128 + signal).clamp(0, 255) as u8),
            _ => ExitCode::FAILURE,
        },
    )
}
