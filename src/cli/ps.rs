//! `berth ps`: every object berth manages: containers with their state,
//! restarts, age, published ports, source file and why their last start
//! failed, then the networks and volumes apply made.

use std::net::IpAddr;
use std::process::ExitCode;

use super::selector::Selector;
use super::{print_table, GlobalOptions, OutputFormat};
use crate::engine::{ContainerView, Engine, Origin};
use crate::manifest::{PortMapping, Protocol};
use crate::runtime::container_dir::ContainerState;
use crate::state::clock::unix_ms;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show exited containers too
    #[arg(short, long)]
    pub all: bool,
    #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Only containers whose labels match: key=value, key!=value, key, !key; comma-separated terms all hold (networks, volumes and Jobs are then left out)
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<Selector>,
}

/// The widest REASON cell; the whole reason is in `ps -o json`, the whole
/// error in `inspect`.
const REASON_WIDTH: usize = 60;

/// The widest PORTS cell, short of the first entry.
const PORTS_WIDTH: usize = 40;

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

/// One line of `ps`'s table; objects other than containers leave the
/// columns that do not apply to them empty.
#[derive(Default)]
struct TextRow {
    kind: String,
    name: String,
    image: String,
    state: String,
    health: String,
    restarts: String,
    exit: String,
    age: String,
    ports: String,
    source: String,
    reason: String,
}

impl TextRow {
    const HEADER: [&'static str; 11] = [
        "KIND", "NAME", "IMAGE", "STATE", "HEALTH", "RESTARTS", "EXIT", "AGE", "PORTS", "SOURCE",
        "REASON",
    ];

    fn cells(self) -> Vec<String> {
        vec![
            self.kind,
            self.name,
            self.image,
            self.state,
            self.health,
            self.restarts,
            self.exit,
            self.age,
            self.ports,
            self.source,
            clip(&self.reason, REASON_WIDTH),
        ]
    }
}

fn container_row(v: &ContainerView) -> TextRow {
    let status = v.status.as_ref();
    let exit = status
        .and_then(|s| match (s.exit_code, s.signal) {
            (_, Some(signal)) => Some(format!("signal {signal}")),
            (Some(code), None) if v.state == ContainerState::Exited => Some(code.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    TextRow {
        kind: "container".to_string(),
        name: v.id.clone(),
        image: v.image.clone(),
        state: v.state.as_str().to_string(),
        health: v
            .health()
            .map(|h| format!("{:?}", h.state).to_lowercase())
            .unwrap_or_default(),
        restarts: status.map_or(0, |s| s.restarts).to_string(),
        exit,
        age: age(v.created_unix_ms),
        ports: ports_cell(&v.ports),
        source: match &v.origin {
            Origin::Job { file, job, .. } => format!("{file} (Job {job})"),
            other => other.file().to_string(),
        },
        reason: v.reason.clone().unwrap_or_default(),
    }
}

/// A published port as docker shows it: `8080->80/tcp`, with the host
/// address when it is bound to one (`127.0.0.1:53->53/udp`, `[::1]:80->80/tcp`).
pub(super) fn published(port: &PortMapping) -> String {
    let host_port = port.effective_host_port();
    let protocol = match port.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    let host = match port.host_ip {
        Some(IpAddr::V4(ip)) => format!("{ip}:{host_port}"),
        Some(IpAddr::V6(ip)) => format!("[{ip}]:{host_port}"),
        None => host_port.to_string(),
    };
    format!("{host}->{}/{protocol}", port.container_port)
}

/// The PORTS cell: every published port, comma-separated, up to
/// [`PORTS_WIDTH`] characters; past that, whole entries only and how many
/// more there are (every one is in `ps -o json`).
fn ports_cell(ports: &[PortMapping]) -> String {
    let mut cell = String::new();
    for (shown, port) in ports.iter().enumerate() {
        let entry = published(port);
        let separator = if cell.is_empty() { "" } else { "," };
        let more = format!(",+{} more", ports.len() - shown);
        let last = shown + 1 == ports.len();
        let room = if last { 0 } else { more.len() };
        if shown > 0 && cell.len() + separator.len() + entry.len() + room > PORTS_WIDTH {
            cell.push_str(&more);
            break;
        }
        cell.push_str(separator);
        cell.push_str(&entry);
    }
    cell
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let views: Vec<_> = engine
        .records()?
        .iter()
        .filter(|record| {
            args.selector
                .as_ref()
                .is_none_or(|s| s.matches(&record.labels))
        })
        .map(|record| engine.view(record))
        .filter(|view| args.all || view.state != ContainerState::Exited)
        .collect();
    // A selector picks containers by their labels: what has no recorded
    // labels (networks, volumes, Jobs, unrecorded containers) is not listed.
    let selecting = args.selector.is_some();
    let shared = if selecting {
        Vec::new()
    } else {
        managed_shared(&engine)?
    };
    let jobs = if selecting {
        Vec::new()
    } else {
        jobs(&engine)?
    };
    let orphans: Vec<OrphanRow> = engine
        .orphans()
        .into_iter()
        .filter(|_| !selecting)
        .map(|id| OrphanRow {
            kind: "container",
            id,
            state: ContainerState::Unknown.as_str(),
            reason: ORPHAN_REASON,
        })
        .collect();
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
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
            super::output::print_structured(args.output, &rows)?;
        }
        OutputFormat::Text => {
            let mut rows: Vec<TextRow> = views.iter().map(container_row).collect();
            rows.extend(orphans.iter().map(|o| TextRow {
                kind: o.kind.to_string(),
                name: o.id.clone(),
                state: o.state.to_string(),
                reason: o.reason.to_string(),
                ..TextRow::default()
            }));
            rows.extend(jobs.iter().map(|j| TextRow {
                kind: j.kind.to_string(),
                name: j.id.clone(),
                state: j.state.to_string(),
                source: j.file.clone(),
                reason: j.reason.clone().unwrap_or_default(),
                ..TextRow::default()
            }));
            rows.extend(shared.iter().map(|o| TextRow {
                kind: o.kind.to_string(),
                name: o.id.clone(),
                state: o.state.to_string(),
                source: o.file.clone().unwrap_or_default(),
                ..TextRow::default()
            }));
            let cells: Vec<Vec<String>> = rows.into_iter().map(TextRow::cells).collect();
            print_table(&TextRow::HEADER, &cells);
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

    fn port(host_ip: Option<&str>, host: Option<u16>, container: u16, udp: bool) -> PortMapping {
        PortMapping {
            container_port: container,
            host_port: host,
            protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
        }
    }

    #[test]
    fn ports_read_as_docker_shows_them_with_the_host_address_when_bound() {
        assert_eq!(
            published(&port(None, Some(8080), 80, false)),
            "8080->80/tcp"
        );
        assert_eq!(
            published(&port(Some("127.0.0.1"), None, 53, true)),
            "127.0.0.1:53->53/udp"
        );
        assert_eq!(
            published(&port(Some("::1"), Some(8443), 443, false)),
            "[::1]:8443->443/tcp"
        );
        assert_eq!(
            ports_cell(&[
                port(None, Some(8080), 80, false),
                port(Some("127.0.0.1"), None, 53, true)
            ]),
            "8080->80/tcp,127.0.0.1:53->53/udp"
        );
        assert_eq!(ports_cell(&[]), "");
    }

    #[test]
    fn many_ports_keep_the_table_narrow_and_say_how_many_more() {
        let ports: Vec<PortMapping> = (0..10)
            .map(|i| port(None, Some(8000 + i), 80 + i, false))
            .collect();
        let cell = ports_cell(&ports);
        assert!(cell.len() <= PORTS_WIDTH, "{cell}");
        assert!(cell.starts_with("8000->80/tcp,8001->81/tcp"), "{cell}");
        let shown = cell.matches("->").count();
        assert!(cell.ends_with(&format!(",+{} more", 10 - shown)), "{cell}");
    }
}
