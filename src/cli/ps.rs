//! `berth ps`: every object berth manages: containers with their state,
//! restarts, age, source file and why their last start failed, then the
//! networks and volumes apply made.

use std::process::ExitCode;

use super::{print_table, GlobalOptions, OutputFormat};
use crate::engine::{Engine, Origin};
use crate::runtime::container_dir::ContainerState;
use crate::state::clock::unix_ms;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show exited containers too
    #[arg(short, long)]
    pub all: bool,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The widest REASON cell; the whole reason is in `ps -o json`, the whole
/// error in `inspect`.
const REASON_WIDTH: usize = 60;

/// `text` cut to `width` characters, an ellipsis saying it was cut.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

pub fn age(since_ms: u64) -> String {
    let seconds = unix_ms().saturating_sub(since_ms) / 1000;
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m", seconds / 60),
        3600..=86399 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

/// A network or volume that manifests declared, as `ps` lists it.
#[derive(serde::Serialize)]
struct SharedRow {
    kind: &'static str,
    id: String,
    state: &'static str,
    source: Option<String>,
    file: Option<String>,
}

/// A Job, as `ps` lists it: its run's phase and why (a failed Job's
/// reason is why its dependents do not start).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JobRow {
    kind: &'static str,
    id: String,
    state: &'static str,
    run: u32,
    source: String,
    file: String,
    reason: Option<String>,
}

fn jobs(engine: &Engine) -> anyhow::Result<Vec<JobRow>> {
    Ok(crate::reconcile::jobs::record::store(&engine.paths)
        .list()?
        .into_iter()
        .map(|record| JobRow {
            kind: "job",
            state: if record.run == 0 {
                "scheduled"
            } else {
                record.phase.as_str()
            },
            id: record.name,
            run: record.run,
            source: record.source,
            file: record.file,
            reason: record.reason,
        })
        .collect())
}

/// What `ps` says of a container with a runtime directory and no record.
const ORPHAN_REASON: &str =
    "berth has no record of it (a corrupt one was moved aside); berth rm -f removes it";

/// A container berth has no record of, as `ps` lists it.
#[derive(serde::Serialize)]
struct OrphanRow {
    kind: &'static str,
    id: String,
    state: &'static str,
    reason: &'static str,
}

/// The networks and volumes apply created (not ad-hoc or built-in ones).
fn managed_shared(engine: &Engine) -> anyhow::Result<Vec<SharedRow>> {
    let mut rows: Vec<SharedRow> = engine
        .networks
        .list()?
        .into_iter()
        .filter(|n| n.source.is_some())
        .map(|n| SharedRow {
            kind: "network",
            id: n.name,
            state: "present",
            source: n.source,
            file: n.file,
        })
        .collect();
    rows.extend(engine.volumes().list().into_iter().filter_map(|v| {
        if v.quarantined_record.is_some() {
            return Some(SharedRow {
                kind: "volume",
                id: v.name,
                state: "owner unknown",
                source: None,
                file: None,
            });
        }
        let record = v.record?;
        Some(SharedRow {
            kind: "volume",
            id: v.name,
            state: "present",
            source: record.source,
            file: record.file,
        })
    }));
    Ok(rows)
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let views: Vec<_> = engine
        .records()?
        .iter()
        .map(|record| engine.view(record))
        .filter(|view| args.all || view.state != ContainerState::Exited)
        .collect();
    let shared = managed_shared(&engine)?;
    let jobs = jobs(&engine)?;
    let orphans: Vec<OrphanRow> = engine
        .orphans()
        .into_iter()
        .map(|id| OrphanRow {
            kind: "container",
            id,
            state: ContainerState::Unknown.as_str(),
            reason: ORPHAN_REASON,
        })
        .collect();
    match args.output {
        OutputFormat::Json => {
            let mut rows = Vec::new();
            for view in &views {
                let mut row = serde_json::to_value(view)?;
                row["kind"] = "container".into();
                rows.push(row);
            }
            for orphan in &orphans {
                rows.push(serde_json::to_value(orphan)?);
            }
            for object in &shared {
                rows.push(serde_json::to_value(object)?);
            }
            for job in &jobs {
                rows.push(serde_json::to_value(job)?);
            }
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        OutputFormat::Text => {
            let mut rows: Vec<Vec<String>> = views
                .iter()
                .map(|v| {
                    let status = v.status.as_ref();
                    let exit = status
                        .and_then(|s| match (s.exit_code, s.signal) {
                            (_, Some(signal)) => Some(format!("signal {signal}")),
                            (Some(code), None) if v.state == ContainerState::Exited => {
                                Some(code.to_string())
                            }
                            _ => None,
                        })
                        .unwrap_or_default();
                    let health = v
                        .health()
                        .map(|h| format!("{:?}", h.state).to_lowercase())
                        .unwrap_or_default();
                    vec![
                        "container".to_string(),
                        v.id.clone(),
                        v.image.clone(),
                        v.state.as_str().to_string(),
                        health,
                        status.map_or(0, |s| s.restarts).to_string(),
                        exit,
                        age(v.created_unix_ms),
                        match &v.origin {
                            Origin::Job { file, job, .. } => format!("{file} (Job {job})"),
                            other => other.file().to_string(),
                        },
                        v.reason
                            .as_deref()
                            .map(|r| clip(r, REASON_WIDTH))
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            rows.extend(orphans.iter().map(|o| {
                let mut row = vec![String::new(); 10];
                row[0] = o.kind.to_string();
                row[1] = o.id.clone();
                row[3] = o.state.to_string();
                row[9] = clip(o.reason, REASON_WIDTH);
                row
            }));
            rows.extend(jobs.iter().map(|j| {
                let mut row = vec![String::new(); 10];
                row[0] = j.kind.to_string();
                row[1] = j.id.clone();
                row[3] = j.state.to_string();
                row[8] = j.file.clone();
                row[9] = clip(j.reason.as_deref().unwrap_or(""), REASON_WIDTH);
                row
            }));
            rows.extend(shared.iter().map(|o| {
                let mut row = vec![String::new(); 10];
                row[0] = o.kind.to_string();
                row[1] = o.id.clone();
                row[3] = o.state.to_string();
                row[8] = o.file.clone().unwrap_or_default();
                row
            }));
            print_table(
                &[
                    "KIND", "NAME", "IMAGE", "STATE", "HEALTH", "RESTARTS", "EXIT", "AGE",
                    "SOURCE", "REASON",
                ],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_clipped_with_an_ellipsis_and_a_short_one_kept() {
        assert_eq!(clip("no such file", 60), "no such file");
        let long = "x".repeat(80);
        let clipped = clip(&long, 60);
        assert_eq!(clipped.chars().count(), 60);
        assert!(clipped.ends_with('…'));
    }
}
