//! `berth top NAME [-o json]`: the processes a running container runs, as
//! `docker top` shows them: host pids, parent pids, user, CPU time and
//! command line.

use std::process::ExitCode;

use super::{print_table, GlobalOptions, OutputFormat};
use crate::engine::Engine;
use crate::manifest::names::ContainerId;
use crate::runtime::procfs::ProcessRow;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name
    pub name: String,
    /// Output: text for people, json for scripts
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let record = engine.record(&ContainerId::parse(&args.name)?)?;
    let rows = engine.top(&record)?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let cells: Vec<Vec<String>> = rows.iter().map(cells).collect();
    print_table(&["PID", "PPID", "USER", "TIME", "CMD"], &cells);
    Ok(ExitCode::SUCCESS)
}

fn cells(row: &ProcessRow) -> Vec<String> {
    vec![
        row.pid.to_string(),
        row.ppid.to_string(),
        row.user.clone(),
        cpu_time(row.cpu_seconds),
        row.command.clone(),
    ]
}

/// CPU time as `ps` prints it: `HH:MM:SS`, hours growing past 99.
fn cpu_time(seconds: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_reads_as_ps_prints_it() {
        assert_eq!(cpu_time(0), "00:00:00");
        assert_eq!(cpu_time(3 * 3600 + 25 * 60 + 7), "03:25:07");
        assert_eq!(cpu_time(120 * 3600), "120:00:00");
    }
}
