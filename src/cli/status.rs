//! `berth status`: the daemon's view. From the daemon over its socket when
//! one runs; else from the record it left under `--root` (marked not
//! running). Exits 0 when a daemon runs, 1 when none does.

use std::process::ExitCode;

use super::{print_table, GlobalOptions, OutputFormat};
use crate::daemon::socket::Client;
use crate::daemon::status::DaemonStatus;
use crate::engine::Engine;
use crate::runtime::logs::format_seconds as when;
use crate::state::records::RecordStore;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let layout = global.paths();
    let status = match Client::connect(&layout.daemon_socket()).map(Client::status) {
        Some(Ok(status)) => Some(status),
        Some(Err(error)) => {
            tracing::warn!(%error, "the daemon's socket did not answer; reading its record");
            recorded(global)?
        }
        None => recorded(global)?,
    };
    let mut status = status;
    if let Some(status) = &mut status {
        containers_as_they_are(global, status);
    }
    let running = status.as_ref().is_some_and(|s| s.running);
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = match &status {
                Some(status) => serde_json::to_value(status)?,
                None => serde_json::json!({"running": false}),
            };
            super::output::print_structured(args.output, &value)?;
        }
        OutputFormat::Text => match &status {
            Some(status) => print_text(status),
            None => println!(
                "no berth daemon has run with the state root {} (start one: berth daemon --watch DIR)",
                layout.root.display()
            ),
        },
    }
    Ok(if running {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Each declared container's state now, from berth's records and the
/// shims' status files (as `ps` shows it), rather than as the daemon's last
/// pass left it; a failed action stays what the daemon says.
fn containers_as_they_are(global: &GlobalOptions, status: &mut DaemonStatus) {
    let Ok(engine) = Engine::open_for_reading(&global.paths(), global.runtime.as_deref()) else {
        return;
    };
    let Ok(records) = engine.records() else {
        return;
    };
    let containers = status
        .objects
        .iter_mut()
        .filter(|o| o.kind == "Container" && o.state != "failed");
    for object in containers {
        let Some(record) = records.iter().find(|r| r.id.as_str() == object.name) else {
            object.state = "absent".into();
            continue;
        };
        let view = engine.view(record);
        object.state = view.state.as_str().into();
        object.detail = match (view.health(), &view.reason) {
            (Some(health), _) => format!("{:?}", health.state).to_lowercase(),
            (None, Some(reason)) => reason.clone(),
            (None, None) => String::new(),
        };
    }
}

/// What the last daemon recorded, never "running": it does not answer.
fn recorded(global: &GlobalOptions) -> anyhow::Result<Option<DaemonStatus>> {
    let store: RecordStore<DaemonStatus> = RecordStore::new(global.paths().daemon_dir(), "daemon");
    Ok(store.get("status")?.map(|mut status| {
        status.running = false;
        status
    }))
}

fn print_text(status: &DaemonStatus) {
    let state = if status.running {
        format!(
            "running (pid {}, since {})",
            status.pid,
            when(status.started_unix_ms)
        )
    } else {
        format!("not running (last pid {})", status.pid)
    };
    println!("daemon:      {state}");
    println!("watching:    {} (source {})", status.watch, status.source);
    if !status.host_labels.is_empty() {
        let labels: Vec<String> = status
            .host_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("host labels: {}", labels.join(", "));
    }
    match &status.generation {
        Some(g) => {
            let revision = g
                .revision
                .as_deref()
                .map(|r| format!(", git {}", &r[..r.len().min(12)]))
                .unwrap_or_default();
            let applied = g
                .applied_unix_ms
                .map_or("not yet applied".to_string(), |ms| {
                    format!("applied {}", when(ms))
                });
            let restored = if g.restored {
                ", restored from the daemon's record"
            } else {
                ""
            };
            println!(
                "generation:  {}{revision}: {} files, {} objects for this host, read {}, {applied}{restored}",
                g.number,
                g.files,
                g.objects,
                when(g.read_unix_ms)
            );
        }
        None => println!("generation:  none valid yet"),
    }
    if let Some(rejected) = &status.rejected {
        let newer = status
            .generation
            .as_ref()
            .is_none_or(|g| rejected.number > g.number);
        if newer {
            println!(
                "rejected:    generation {} at {} (not applied):",
                rejected.number,
                when(rejected.unix_ms)
            );
            for error in &rejected.errors {
                println!("  {error}");
            }
        }
    }
    if let Some(pass) = &status.last_pass {
        let mut line = format!(
            "last pass:   {} ({}): {} actions",
            when(pass.unix_ms),
            pass.trigger,
            pass.actions
        );
        if !pass.failed.is_empty() {
            line.push_str(&format!(", {} failed", pass.failed.len()));
        }
        if !pass.pending.is_empty() {
            line.push_str(&format!(", {} waiting", pass.pending.len()));
        }
        println!("{line}");
        for problem in pass.error.iter().chain(&pass.failed) {
            println!("  {problem}");
        }
    }
    if !status.objects.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = status
            .objects
            .iter()
            .map(|o| {
                vec![
                    o.kind.clone(),
                    o.name.clone(),
                    o.state.clone(),
                    o.detail.clone(),
                ]
            })
            .collect();
        print_table(&["KIND", "NAME", "STATE", "DETAIL"], &rows);
    }
}
