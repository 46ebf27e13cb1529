//! `berth stop NAME...`: stop signal, then SIGKILL after the grace period.

use std::process::ExitCode;
use std::time::Duration;

use super::GlobalOptions;
use crate::engine::Engine;
use crate::manifest::names::ContainerId;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The containers' names
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Seconds to wait before giving up on the shim (default: the grace period + 5s)
    #[arg(long)]
    pub time: Option<u64>,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?;
    // No apply plans (or restarts it) while a container is being stopped.
    let _stopping = global.writer_lock()?;
    for name in &args.names {
        engine.stop_on_request(
            &ContainerId::parse(name)?,
            args.time.map(Duration::from_secs),
        )?;
        println!("{name}");
    }
    Ok(ExitCode::SUCCESS)
}
