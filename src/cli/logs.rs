//! `berth logs NAME [-f] [--tail N] [--timestamps]`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::GlobalOptions;
use crate::engine::Engine;
use crate::manifest::names::ContainerId;
use crate::runtime::container_dir::{LogConfig, Phase};
use crate::runtime::log_reader::{LogLine, LogSet, Stream};

/// How often `-f` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name
    pub name: String,
    /// Keep printing new output until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,
}

fn print(line: &LogLine, timestamps: bool) {
    let text = if timestamps {
        format!("{} {}", line.timestamp, line.text)
    } else {
        line.text.clone()
    };
    let _ = match line.stream {
        Stream::Stdout => writeln!(std::io::stdout(), "{text}"),
        Stream::Stderr => writeln!(std::io::stderr(), "{text}"),
    };
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let record = engine.record(&ContainerId::parse(&args.name)?)?;
    let driver = LogConfig::of(record.spec.logging.as_ref()).driver;
    if !driver.is_file() {
        anyhow::bail!(
            "container {} logs to driver {}; berth keeps no logs of it",
            record.id,
            driver.describe()
        );
    }
    let dir = engine.dir(&record.id);
    let log_file = engine.log_file(&record.id);
    let log = LogSet::open(&log_file).with_context(|| format!("open the log of {}", record.id))?;
    let lines = match args.tail {
        Some(n) => log.tail(n),
        None => log.lines(),
    }
    .with_context(|| format!("read {}", log_file.display()))?;
    for line in &lines {
        print(line, args.timestamps);
    }
    if args.follow {
        // Goes on exactly where the read above stopped.
        let mut follower = log.follow();
        loop {
            for line in follower.poll() {
                print(&line, args.timestamps);
            }
            let _ = std::io::stdout().flush();
            let exited = dir.read_status()?.is_none_or(|s| s.phase == Phase::Exited);
            if exited {
                for line in follower.poll() {
                    print(&line, args.timestamps);
                }
                break;
            }
            std::thread::sleep(FOLLOW_INTERVAL);
        }
    }
    Ok(ExitCode::SUCCESS)
}
