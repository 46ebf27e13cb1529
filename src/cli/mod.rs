//! The command line: one file per verb. Each parses its arguments, calls the
//! library and formats the result; `-o json` gives scripts the same data.

mod apply;
mod delete;
mod exec;
mod gc;
mod image;
mod inspect;
mod logs;
mod network;
mod plan;
mod progress;
mod ps;
mod pull;
mod rm;
mod run;
mod schema;
pub mod shim;
mod stop;
mod validate;
mod volume;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::state::{Layout, DEFAULT_ROOT, DEFAULT_STATE};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A declarative container runner for one Linux host"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct GlobalOptions {
    /// Persistent state: images, snapshots, container records
    #[arg(long, global = true, env = "BERTH_ROOT", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Runtime state cleared by a reboot: runc root, shims, netns, lock
    #[arg(long, global = true, env = "BERTH_STATE", default_value = DEFAULT_STATE)]
    pub state: PathBuf,
    /// berth's own log level (error, warn, info, debug, trace) or a tracing filter
    #[arg(long, global = true, env = "BERTH_LOG", default_value = "warn")]
    pub log_level: String,
    /// berth's own log format
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The OCI runtime binary (anything with runc's command line); default runc
    #[arg(long, global = true, env = "BERTH_RUNTIME", value_name = "PATH")]
    pub runtime: Option<PathBuf>,
    /// How long run, rm and stop wait for a running apply or delete to let go of the state root
    #[arg(
        long,
        global = true,
        env = "BERTH_LOCK_TIMEOUT",
        value_name = "DURATION",
        default_value = "2m"
    )]
    pub lock_timeout: crate::manifest::quantity::Duration,
}

impl GlobalOptions {
    pub fn paths(&self) -> Layout {
        Layout {
            root: self.root.clone(),
            state: self.state.clone(),
        }
    }

    /// The state root's reconcile lock, for `run`, `rm` and `stop`, which
    /// hold it only while they check and change a container's record: says
    /// whom it waits for, and gives up after `--lock-timeout`.
    pub fn writer_lock(&self) -> anyhow::Result<crate::state::lock::Lock> {
        Ok(crate::reconcile::lock::acquire(
            &self.paths(),
            self.lock_timeout.as_std(),
            &crate::state::clock::SystemClock,
            &mut |busy| {
                eprintln!(
                    "berth: waiting for another berth command to finish with the state root (up to {}s, --lock-timeout): {busy}",
                    self.lock_timeout.as_std().as_secs()
                )
            },
        )?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How a read command prints its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people
    #[default]
    Text,
    /// For scripts
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests against the schema and berth's rules; report every problem
    Validate(validate::Args),
    /// Print the JSON schema of the manifest language
    Schema(schema::Args),
    /// Manage images: import, pull, ls, inspect, rm, prune
    Image(image::Args),
    /// Remove blobs, layers and temp files nothing references
    Gc(gc::Args),
    /// Make the host match the manifests (validate, plan, execute, repeat)
    Apply(apply::Args),
    /// Show what apply would do, and why (exit 0: nothing; 2: changes; 1: error)
    Plan(plan::Args),
    /// Remove what manifests declare (volumes kept unless --volumes)
    Delete(delete::Args),
    /// Show networks: ls, inspect, rm
    Network(network::Args),
    /// Show volumes: ls, inspect, rm
    Volume(volume::Args),
    /// Run an ad-hoc container
    Run(Box<run::Args>),
    /// List containers
    Ps(ps::Args),
    /// Show a container's record and status as JSON
    Inspect(inspect::Args),
    /// Print a container's output
    Logs(logs::Args),
    /// Run a command in a running container
    Exec(exec::Args),
    /// Stop containers
    Stop(stop::Args),
    /// Remove containers
    Rm(rm::Args),
    /// Supervise one container (started by berth, not by people)
    #[command(hide = true)]
    Shim(ShimArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShimArgs {
    /// The container's runtime directory (shim.json, bundle, logs)
    #[arg(long)]
    pub dir: PathBuf,
}

/// Parses the command line, runs the command and maps its result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let result = match &cli.command {
        Command::Validate(args) => validate::run(&cli.global, args),
        Command::Schema(args) => schema::run(args),
        Command::Image(args) => image::run(&cli.global, args),
        Command::Gc(args) => gc::run(&cli.global, args),
        Command::Run(args) => run::run(&cli.global, args),
        Command::Network(args) => network::run(&cli.global, args),
        Command::Volume(args) => volume::run(&cli.global, args),
        Command::Plan(args) => plan::run(&cli.global, args),
        Command::Apply(args) => apply::run(&cli.global, args),
        Command::Delete(args) => delete::run(&cli.global, args),
        Command::Ps(args) => ps::run(&cli.global, args),
        Command::Inspect(args) => inspect::run(&cli.global, args),
        Command::Logs(args) => logs::run(&cli.global, args),
        Command::Exec(args) => exec::run(&cli.global, args),
        Command::Stop(args) => stop::run(&cli.global, args),
        Command::Rm(args) => rm::run(&cli.global, args),
        Command::Shim(args) => crate::runtime::shim::main(&args.dir).map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("berth: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(global: &GlobalOptions) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Prints rows under a header, columns padded to their widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let render = |cells: Vec<&str>| {
        let line: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("{}", line.join("  ").trim_end());
    };
    render(header.to_vec());
    for row in rows {
        render(row.iter().map(String::as_str).collect());
    }
}
