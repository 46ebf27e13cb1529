//! `berth inspect NAME`: everything berth knows about a container, as JSON.

use std::process::ExitCode;

use super::GlobalOptions;
use crate::engine::Engine;
use crate::manifest::names::ContainerId;
use crate::reconcile::events;
use crate::reconcile::plan::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name
    pub name: String,
    /// Accepted for symmetry with the other read verbs; the output is always JSON
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = super::OutputFormat::Json)]
    pub output: super::OutputFormat,
    /// Show the values of environment variables (names only by default: they often hold secrets)
    #[arg(long)]
    pub show_env: bool,
}

/// What stands in for a value `inspect` does not show.
const HIDDEN: &str = "<hidden: berth inspect --show-env>";

/// Replaces every env value in a container spec's JSON (map or list form).
fn hide_env_values(spec: &mut serde_json::Value) {
    match spec.get_mut("env") {
        Some(serde_json::Value::Object(map)) => {
            for value in map.values_mut() {
                *value = HIDDEN.into();
            }
        }
        Some(serde_json::Value::Array(list)) => {
            for var in list {
                if let Some(value) = var.get_mut("value") {
                    *value = HIDDEN.into();
                }
            }
        }
        _ => {}
    }
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let record = engine.record(&ContainerId::parse(&args.name)?)?;
    let view = engine.view(&record);
    let dir = engine.dir(&record.id);
    let events = events::read(&engine.paths, Target::Container, &record.id);
    let mut value = serde_json::json!({
        "record": record,
        "state": view.state,
        "status": view.status,
        "shimAlive": view.shim_alive,
        "shimPid": view.shim.map(|shim| shim.pid),
        "shim": dir.read_shim_config().ok().flatten(),
        "paths": {"runtime": dir.dir, "bundle": dir.bundle(), "logs": engine.log_file(&record.id)},
        // Why the reconciler last acted on it (not what its shim saw
        // since), and what happened to it before.
        "lastPlanReason": events.iter().rev().find(|e| e.verb.is_some()).map(|e| &e.reason),
        "events": events,
    });
    if !args.show_env {
        hide_env_values(&mut value["record"]["spec"]);
    }
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_hidden_in_both_forms_and_names_kept() {
        let mut map = serde_json::json!({"env": {"TOKEN": "s3cret"}});
        hide_env_values(&mut map);
        assert_eq!(map["env"]["TOKEN"], HIDDEN);
        let mut list = serde_json::json!({"env": [{"name": "TOKEN", "value": "s3cret"}]});
        hide_env_values(&mut list);
        assert_eq!(list["env"][0]["name"], "TOKEN");
        assert_eq!(list["env"][0]["value"], HIDDEN);
    }
}
