//! `berth ps`: containers and their state.

use std::process::ExitCode;

use super::{print_table, GlobalOptions, OutputFormat};
use crate::runtime::container::{Origin, Runtime};
use crate::runtime::state::unix_ms;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show exited containers too
    #[arg(short, long)]
    pub all: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
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

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::open(&global.paths(), global.runtime.as_deref())?;
    let views: Vec<_> = runtime
        .records()?
        .iter()
        .map(|record| runtime.view(record))
        .filter(|view| args.all || view.state != "exited")
        .collect();
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&views)?),
        OutputFormat::Text => {
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|v| {
                    let status = v.status.as_ref();
                    let exit = status
                        .and_then(|s| match (s.exit_code, s.signal) {
                            (_, Some(signal)) => Some(format!("signal {signal}")),
                            (Some(code), None) if v.state == "exited" => Some(code.to_string()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    let health = status
                        .and_then(|s| s.health.as_ref())
                        .map(|h| format!("{:?}", h.state).to_lowercase())
                        .unwrap_or_default();
                    vec![
                        v.id.clone(),
                        v.image.clone(),
                        v.state.clone(),
                        health,
                        status.map_or(0, |s| s.restarts).to_string(),
                        exit,
                        age(v.created_unix_ms),
                        match &v.origin {
                            Origin::Run => "run".to_string(),
                            Origin::Manifest { file, .. } => file.clone(),
                        },
                    ]
                })
                .collect();
            print_table(
                &[
                    "NAME", "IMAGE", "STATE", "HEALTH", "RESTARTS", "EXIT", "AGE", "SOURCE",
                ],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
