//! `berth inspect NAME... | -l SELECTOR`: everything berth knows about
//! containers, as JSON (the default, which scripts read), YAML, or a summary
//! for people (`-o text`).

use std::process::ExitCode;

use super::output::print_structured;
use super::ps::published;
use super::selector::{pick, Selector};
use super::{GlobalOptions, OutputFormat};
use crate::engine::{ContainerRecord, ContainerView, Engine, Origin};
use crate::manifest::Mount;
use crate::network::attach::Attachment;
use crate::reconcile::events::{self, ObjectEvent};
use crate::reconcile::plan::Target;
use crate::runtime::container_dir::{ContainerState, Health};
use crate::runtime::logs::format_seconds;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The containers' names (one prints an object, several an array)
    #[arg(required_unless_present = "selector", conflicts_with = "selector")]
    pub names: Vec<String>,
    /// The containers whose labels match instead (an array): key=value, key!=value, key, !key, comma-separated
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<Selector>,
    /// json (default, what scripts read), yaml (the same data), or text: a summary for people
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,
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

/// Everything `inspect` shows of one container.
struct Inspected {
    record: ContainerRecord,
    view: ContainerView,
    attachments: Vec<Attachment>,
    events: Vec<ObjectEvent>,
    /// The JSON document: what `-o json` and `-o yaml` print.
    document: serde_json::Value,
}

fn inspect(engine: &Engine, record: ContainerRecord, show_env: bool) -> Inspected {
    let view = engine.view(&record);
    let dir = engine.dir(&record.id);
    let events = events::read(&engine.paths, Target::Container, &record.id);
    let attachments = engine.networker.attachments(&record.id);
    let mut document = serde_json::json!({
        "record": record,
        "state": view.state,
        "status": view.status,
        "shimAlive": view.shim_alive,
        "shimPid": view.shim.map(|shim| shim.pid),
        "shim": dir.read_shim_config().ok().flatten(),
        "paths": {"runtime": dir.dir, "bundle": dir.bundle(), "logs": engine.log_file(&record.id)},
        "networks": attachments.iter().map(|a| serde_json::json!({
            "network": a.network, "interface": a.ifname, "ips": a.ips, "mac": a.mac,
        })).collect::<Vec<_>>(),
        // Why the reconciler last acted on it (not what its shim saw
        // since), and what happened to it before.
        "lastPlanReason": events.iter().rev().find(|e| e.verb.is_some()).map(|e| &e.reason),
        "events": events,
    });
    if !show_env {
        hide_env_values(&mut document["record"]["spec"]);
    }
    Inspected {
        record,
        view,
        attachments,
        events,
        document,
    }
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let inspected: Vec<Inspected> = pick(&engine, &args.names, args.selector.as_ref())?
        .into_iter()
        .map(|record| inspect(&engine, record, args.show_env))
        .collect();
    match args.output {
        OutputFormat::Text => {
            let summaries: Vec<String> = inspected.iter().map(summary).collect();
            print!("{}", summaries.join("\n"));
        }
        // One name gives one object, as it always did; several names or a
        // selector an array, however many match.
        format => match inspected.as_slice() {
            [one] if args.selector.is_none() => print_structured(format, &one.document)?,
            many => {
                let documents: Vec<&serde_json::Value> = many.iter().map(|i| &i.document).collect();
                print_structured(format, &documents)?
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// How many of its latest events the summary shows (all are in `-o json`).
const SUMMARY_EVENTS: usize = 5;

/// A readable summary: one `Field:  value` line each, lists indented under
/// their field, fields with nothing to say left out.
fn summary(inspected: &Inspected) -> String {
    let Inspected {
        record,
        view,
        attachments,
        events,
        ..
    } = inspected;
    let status = view.status.as_ref();
    let mut lines: Vec<(&str, String)> =
        vec![("Name", record.id.to_string()), ("State", state_line(view))];
    if let Some(reason) = &view.reason {
        lines.push(("Reason", reason.clone()));
    }
    lines.push((
        "Image",
        format!("{} ({})", record.image, record.image_manifest),
    ));
    lines.push(("Origin", origin_line(&record.origin)));
    lines.push(("Created", format_seconds(record.created_unix_ms)));
    if let Some(started) = status.and_then(|s| s.started_unix_ms) {
        lines.push(("Started", format_seconds(started)));
    }
    if let Some(exited) = status.and_then(|s| s.exited_unix_ms) {
        lines.push(("Exited", format_seconds(exited)));
    }
    lines.push(("Restarts", status.map_or(0, |s| s.restarts).to_string()));
    if let Some(health) = view.health() {
        lines.push(("Health", health_line(health)));
    }
    let mut text = String::new();
    for (field, value) in lines {
        text.push_str(&format!("{:<10}{value}\n", format!("{field}:")));
    }
    let ports: Vec<String> = view.ports.iter().map(published).collect();
    list(&mut text, "Ports", &ports);
    let networks: Vec<String> = attachments.iter().map(network_line).collect();
    list(&mut text, "Networks", &networks);
    let mounts: Vec<String> = record.spec.mounts.iter().map(mount_line).collect();
    list(&mut text, "Mounts", &mounts);
    let labels: Vec<String> = record
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    list(&mut text, "Labels", &labels);
    let latest = events.len().saturating_sub(SUMMARY_EVENTS);
    let events: Vec<String> = events[latest..].iter().map(event_line).collect();
    list(&mut text, "Events", &events);
    text
}

/// `Field:` and its entries, one a line; `Field:    none` without any.
fn list(text: &mut String, field: &str, entries: &[String]) {
    if entries.is_empty() {
        text.push_str(&format!("{:<10}none\n", format!("{field}:")));
        return;
    }
    text.push_str(&format!("{field}:\n"));
    for entry in entries {
        text.push_str(&format!("  {entry}\n"));
    }
}

/// `running (pid 1234)`, `exited (code 1)`, `exited (signal 9)`,
/// `restarting (next start 2026-...)`.
fn state_line(view: &ContainerView) -> String {
    let state = view.state.as_str();
    let Some(status) = view.status.as_ref() else {
        return state.to_string();
    };
    let detail = match view.state {
        ContainerState::Running => status.pid.map(|pid| format!("pid {pid}")),
        ContainerState::Exited => match (status.exit_code, status.signal) {
            (_, Some(signal)) => Some(format!("signal {signal}")),
            (Some(code), None) => Some(format!("code {code}")),
            (None, None) => None,
        },
        ContainerState::Restarting => status
            .next_start_unix_ms
            .map(|at| format!("next start {}", format_seconds(at))),
        _ => None,
    };
    let stopped = if status.stopped {
        ", stopped by request"
    } else {
        ""
    };
    match detail {
        Some(detail) => format!("{state} ({detail}{stopped})"),
        None if status.stopped => format!("{state} (stopped by request)"),
        None => state.to_string(),
    }
}

fn origin_line(origin: &Origin) -> String {
    match origin {
        Origin::Run => "berth run".to_string(),
        Origin::Manifest { source, file, .. } => format!("{file} of {source}"),
        Origin::Job {
            source,
            file,
            job,
            run,
            attempt,
            ..
        } => format!("Job {job} run {run} attempt {attempt}, {file} of {source}"),
    }
}

fn health_line(health: &Health) -> String {
    let state = format!("{:?}", health.state).to_lowercase();
    match health.failing_streak {
        0 => state,
        streak => format!("{state} ({streak} failing checks in a row)"),
    }
}

/// `default  10.88.0.2  eth0`.
fn network_line(attachment: &Attachment) -> String {
    let ips: Vec<String> = attachment.ips.iter().map(ToString::to_string).collect();
    format!(
        "{}  {}  {}",
        attachment.network,
        ips.join(","),
        attachment.ifname
    )
}

/// `2026-12-02T06:12:03Z  created  declared: new (failed: ...)`.
fn event_line(event: &ObjectEvent) -> String {
    let mut line = format!(
        "{}  {}  {}",
        format_seconds(event.unix_ms),
        event.kind,
        event.reason
    );
    if let Some(error) = &event.error {
        line.push_str(&format!(" (failed: {error})"));
    }
    line
}

/// `./site -> /srv (bind, ro)`.
fn mount_line(mount: &Mount) -> String {
    let kind = serde_json::to_value(mount.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let source = mount.source.as_deref().unwrap_or("");
    let read_only = if mount.read_only { ", ro" } else { "" };
    format!("{source} -> {} ({kind}{read_only})", mount.target)
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
