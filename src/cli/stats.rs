//! `berth stats [NAME...] [--no-stream] [-o json]`: what running
//! containers use: CPU, memory against its limit, processes, network
//! traffic.
//!
//! CPU use is a rate, so every figure comes from two samples one second
//! apart: `--no-stream` waits that second and prints once (as `docker stats
//! --no-stream` does), instead of printing an unknown CPU. Without it the
//! figures are printed again every second until interrupted: redrawn in
//! place on a terminal, one table (or one JSON array per line) after
//! another otherwise. Without names: every running container, those
//! started meanwhile joining a second after they are first seen.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use super::progress::human_bytes;
use super::{print_table, GlobalOptions, OutputFormat};
use crate::engine::stats::{ContainerStats, Sample};
use crate::engine::{ContainerRecord, Engine};
use crate::manifest::names::ContainerId;

/// Between two samples.
const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The containers' names (default: every running container)
    pub names: Vec<String>,
    /// Print one sample (taken over one second) and exit
    #[arg(long)]
    pub no_stream: bool,
    /// Output: text for people, json for scripts
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let named = !args.names.is_empty();
    // A container named that does not run is an error, said at once.
    let mut before = samples(&engine, &chosen(&engine, &args.names)?, named)?;
    let redraw = !args.no_stream && std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(INTERVAL);
        // Later, one that stopped drops out instead of ending the stream.
        let after = samples(&engine, &chosen(&engine, &args.names)?, false)?;
        let stats = between(&before, &after);
        show(&stats, args, redraw)?;
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        before = after;
    }
}

/// The named containers' records, or every running container's.
fn chosen(engine: &Engine, names: &[String]) -> anyhow::Result<Vec<ContainerRecord>> {
    if names.is_empty() {
        let records = engine.records()?;
        return Ok(records
            .into_iter()
            .filter(|record| engine.view(record).is_running())
            .collect());
    }
    names
        .iter()
        .map(|name| Ok(engine.record(&ContainerId::parse(name)?)?))
        .collect()
}

/// A sample of each container; one that fails is an error when
/// `strict`, else left out (it stopped between the listing and the read).
fn samples(
    engine: &Engine,
    records: &[ContainerRecord],
    strict: bool,
) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::with_capacity(records.len());
    for record in records {
        match engine.sample(record) {
            Ok(sample) => samples.push(sample),
            Err(error) if strict => return Err(error.into()),
            Err(error) => tracing::debug!(container = %record.id, %error, "no sample"),
        }
    }
    Ok(samples)
}

/// The stats of each container sampled both times, in the order of `after`.
fn between(before: &[Sample], after: &[Sample]) -> Vec<ContainerStats> {
    let earlier: HashMap<&str, &Sample> = before.iter().map(|s| (s.id.as_str(), s)).collect();
    after
        .iter()
        .filter_map(|now| Some(ContainerStats::between(earlier.get(now.id.as_str())?, now)))
        .collect()
}

fn show(stats: &[ContainerStats], args: &Args, redraw: bool) -> anyhow::Result<()> {
    match (args.output, args.no_stream) {
        (OutputFormat::Json, true) => println!("{}", serde_json::to_string_pretty(stats)?),
        // One array per line: a stream a script reads line by line.
        (OutputFormat::Json, false) => println!("{}", serde_json::to_string(stats)?),
        _ => {
            if redraw {
                // Home, then clear the screen: the table redrawn in place.
                print!("\x1b[H\x1b[2J");
            }
            let rows: Vec<Vec<String>> = stats.iter().map(cells).collect();
            print_table(
                &[
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "NET I/O",
                    "PIDS",
                ],
                &rows,
            );
        }
    }
    std::io::stdout().flush()?;
    Ok(())
}

const UNKNOWN: &str = "--";

fn cells(stats: &ContainerStats) -> Vec<String> {
    let known = |value: Option<String>| value.unwrap_or_else(|| UNKNOWN.to_string());
    let limit = stats
        .memory_limit_bytes
        .map_or_else(|| "no limit".to_string(), human_bytes);
    vec![
        stats.name.clone(),
        known(stats.cpu_percent.map(|cpu| format!("{cpu:.2}%"))),
        format!("{} / {limit}", known(stats.memory_bytes.map(human_bytes))),
        known(memory_percent(stats).map(|p| format!("{p:.2}%"))),
        known(stats.net.map(|net| {
            format!(
                "{} / {}",
                human_bytes(net.rx_bytes),
                human_bytes(net.tx_bytes)
            )
        })),
        known(stats.pids.map(|pids| pids.to_string())),
    ]
}

/// Memory in use as a share of the limit, when there is one.
fn memory_percent(stats: &ContainerStats) -> Option<f64> {
    let (used, limit) = (stats.memory_bytes?, stats.memory_limit_bytes?);
    (limit > 0).then(|| used as f64 * 100.0 / limit as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::procfs::NetCounters;

    #[test]
    fn a_row_says_what_is_unknown_and_what_has_no_limit() {
        let stats = ContainerStats {
            name: "web".into(),
            cpu_percent: None,
            memory_bytes: Some(2 << 20),
            memory_limit_bytes: None,
            pids: Some(3),
            net: None,
        };
        assert_eq!(
            cells(&stats),
            ["web", "--", "2.0 MiB / no limit", "--", "--", "3"]
        );
        let limited = ContainerStats {
            cpu_percent: Some(12.345),
            memory_limit_bytes: Some(8 << 20),
            net: Some(NetCounters {
                rx_bytes: 1536,
                tx_bytes: 10,
            }),
            ..stats
        };
        assert_eq!(
            cells(&limited),
            [
                "web",
                "12.35%",
                "2.0 MiB / 8.0 MiB",
                "25.00%",
                "1.5 KiB / 10 B",
                "3"
            ]
        );
    }
}
