//! `berth start NAME...` and `berth restart NAME...`: a container that
//! exited runs again (see [`crate::engine::start`]); restart stops it
//! first, with its grace period, as `berth stop` does.
//!
//! A manifest's container may be started too, as docker allows: the next
//! apply decides about it by its plan as for any other.

use std::process::ExitCode;
use std::time::Duration;

use super::progress::CliProgress;
use super::GlobalOptions;
use crate::engine::{Engine, EngineError, Started};
use crate::manifest::names::ContainerId;
use crate::runtime::container_dir::ContainerState;

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The containers' names
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RestartArgs {
    /// The containers' names
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Seconds to wait for the stop before the container is killed (default: the grace period + 5s)
    #[arg(long)]
    pub time: Option<u64>,
}

pub fn start(global: &GlobalOptions, args: &StartArgs) -> anyhow::Result<ExitCode> {
    each(global, &args.names, |engine, id| {
        engine.start(id, &CliProgress::new())
    })
}

pub fn restart(global: &GlobalOptions, args: &RestartArgs) -> anyhow::Result<ExitCode> {
    let timeout = args.time.map(Duration::from_secs);
    each(global, &args.names, |engine, id| {
        engine.restart(id, timeout, &CliProgress::new())
    })
}

/// Acts on each named container under the writer lock (no apply plans
/// while a container is stopped or started), printing each name once done.
fn each(
    global: &GlobalOptions,
    names: &[String],
    act: impl Fn(&Engine, &ContainerId) -> Result<Started, EngineError>,
) -> anyhow::Result<ExitCode> {
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?
        .with_image_limits(global.image_limits())
        .with_input_limits(global.input_limits());
    let _starting = global.writer_lock()?;
    for name in names {
        let id = ContainerId::parse(name)?;
        say_how(&id, act(&engine, &id)?);
        println!("{name}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What stderr says beside the name: a start that did nothing, or one
/// that had to create the container again.
fn say_how(id: &ContainerId, started: Started) {
    match started {
        Started::AlreadyLive(state) => {
            // Created: its shim has it, and runc is starting it.
            let doing = match state {
                ContainerState::Created => "starting",
                other => other.as_str(),
            };
            eprintln!("berth: container {id} is already {doing}")
        }
        Started::InPlace => {}
        Started::Recreated => eprintln!(
            "berth: container {id} was created again from its record (its runtime state was gone): \
             its writable layer and logs start afresh"
        ),
    }
}
