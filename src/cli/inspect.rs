//! `berth inspect NAME`: everything berth knows about a container, as JSON.

use std::process::ExitCode;

use super::GlobalOptions;
use crate::engine::Engine;
use crate::manifest::names::ContainerId;
use crate::reconcile::events;
use crate::reconcile::plan::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub name: String,
    /// Accepted for symmetry with the other read verbs; the output is always JSON
    #[arg(short = 'o', long = "output", value_enum, default_value_t = super::OutputFormat::Json)]
    pub output: super::OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let record = engine.record(&ContainerId::parse(&args.name)?)?;
    let view = engine.view(&record);
    let dir = engine.dir(&record.id);
    let events = events::read(&engine.paths.events(), Target::Container, &record.id);
    let value = serde_json::json!({
        "record": record,
        "state": view.state,
        "status": view.status,
        "shimAlive": view.shim_alive,
        "shimPid": dir.read_shim_pid(),
        "shim": dir.read_shim_config().ok().flatten(),
        "paths": {"runtime": dir.dir, "bundle": dir.bundle(), "logs": dir.log_file()},
        // Why the reconciler last acted on it, and what it did before.
        "lastPlanReason": events.last().map(|e| &e.reason),
        "events": events,
    });
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}
