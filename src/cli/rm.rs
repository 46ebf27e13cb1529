//! `berth rm NAME... | -l SELECTOR`: removes containers (their mount,
//! snapshot and state).

use std::process::ExitCode;

use super::selector::{chosen_ids, Selector};
use super::GlobalOptions;
use crate::engine::Engine;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The containers' names
    #[arg(required_unless_present = "selector", conflicts_with = "selector")]
    pub names: Vec<String>,
    /// The containers whose labels match instead: key=value, key!=value, key, !key, comma-separated
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<Selector>,
    /// Stop running containers first
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?;
    // No apply plans while a record goes away.
    let _removing = global.writer_lock()?;
    for id in chosen_ids(&engine, &args.names, args.selector.as_ref())? {
        engine.remove(&id, args.force)?;
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}
