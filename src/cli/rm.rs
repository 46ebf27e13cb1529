//! `berth rm NAME...`: removes containers (their mount, snapshot and state).

use std::process::ExitCode;

use super::GlobalOptions;
use crate::engine::Engine;
use crate::manifest::names::ContainerId;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The containers' names
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Stop running containers first
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?;
    // No apply plans while a record goes away.
    let _removing = global.writer_lock()?;
    for name in &args.names {
        engine.remove(&ContainerId::parse(name)?, args.force)?;
        println!("{name}");
    }
    Ok(ExitCode::SUCCESS)
}
