//! `berth stop NAME... | -l SELECTOR`: stop signal, then SIGKILL after the
//! grace period.

use std::process::ExitCode;
use std::time::Duration;

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
    /// Seconds to wait before giving up on the shim (default: the grace period + 5s)
    #[arg(long)]
    pub time: Option<u64>,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?;
    // No apply plans (or restarts it) while a container is being stopped.
    let _stopping = global.writer_lock()?;
    for id in chosen_ids(&engine, &args.names, args.selector.as_ref())? {
        engine.stop_on_request(&id, args.time.map(Duration::from_secs))?;
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}
