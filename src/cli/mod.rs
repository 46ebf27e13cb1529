//! The command line: one file per verb. Each parses its arguments, calls the
//! library and formats the result; `-o json` gives scripts the same data.

mod apply;
mod completion;
mod convert;
mod cp;
mod daemon;
mod delete;
mod events;
mod exec;
mod export;
mod gc;
mod image;
mod inspect;
mod job;
mod jobs;
mod logs;
mod man;
mod network;
pub mod output;
mod plan;
mod progress;
mod ps;
mod pull;
mod rm;
mod run;
mod schema;
pub mod selector;
pub mod shim;
mod start;
mod stats;
mod status;
mod stop;
mod top;
mod validate;
mod volume;
mod waits;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{Parser, Subcommand, ValueEnum};

use crate::image::ImageLimits;
use crate::manifest::known_valid::KnownValid;
use crate::manifest::quantity::ByteSize;
use crate::state::limits::InputLimits;
use crate::state::{Layout, DEFAULT_ROOT, DEFAULT_STATE};

/// What `berth --version` says: `0.1.0 (commit abc1234)`, the commit
/// being the one berth was built from (`-dirty` with local changes,
/// `unknown` outside a git checkout; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BERTH_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version = VERSION,
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
    /// Largest uncompressed size of one image layer (512Mi, 2G, ...); a layer
    /// that unpacks to more is refused as it crosses the bound
    #[arg(
        long,
        global = true,
        env = "BERTH_MAX_LAYER_SIZE",
        value_name = "SIZE",
        default_value = "16Gi"
    )]
    pub max_layer_size: ByteSize,
    /// Largest uncompressed size of one image, all its layers together
    #[arg(
        long,
        global = true,
        env = "BERTH_MAX_IMAGE_SIZE",
        value_name = "SIZE",
        default_value = "64Gi"
    )]
    pub max_image_size: ByteSize,
    /// Largest manifest file read
    #[arg(
        long,
        global = true,
        env = "BERTH_MAX_MANIFEST_SIZE",
        value_name = "SIZE",
        default_value = "4Mi"
    )]
    pub max_manifest_size: ByteSize,
    /// Largest file a manifest names that berth reads (env files, seccomp
    /// profiles)
    #[arg(
        long,
        global = true,
        env = "BERTH_MAX_ENV_FILE_SIZE",
        value_name = "SIZE",
        default_value = "4Mi"
    )]
    pub max_env_file_size: ByteSize,
    /// Most environment variables a container gets (image, env files and
    /// manifest together)
    #[arg(
        long,
        global = true,
        env = "BERTH_MAX_ENV_ENTRIES",
        value_name = "N",
        default_value_t = crate::state::limits::MAX_ENV_ENTRIES
    )]
    pub max_env_entries: usize,
    /// How long run, rm, stop, start and restart wait for a running apply or delete to let go of the state root
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

    /// The bounds on files manifests name and on containers' environments.
    pub fn input_limits(&self) -> InputLimits {
        InputLimits {
            max_referenced_file: self.max_env_file_size.0,
            max_env_entries: self.max_env_entries,
        }
    }

    /// How to read manifests: trusted as the current user requires (unless
    /// `allow_untrusted`), bounded in size.
    pub fn load_options(&self, allow_untrusted: bool) -> crate::manifest::LoadOptions {
        crate::manifest::LoadOptions {
            max_file_bytes: self.max_manifest_size.0,
            ..crate::manifest::LoadOptions::for_current_user(allow_untrusted)
        }
    }

    /// [`Self::load_options`] for the verbs that act on a state root (plan,
    /// apply, delete, job run, the daemon): documents found valid before
    /// under this `--root` are not put through the schema again. `validate`
    /// writes nothing anywhere, so it checks every document.
    pub fn load_options_remembering(&self, allow_untrusted: bool) -> crate::manifest::LoadOptions {
        crate::manifest::LoadOptions {
            known_valid: Some(self.known_valid()),
            ..self.load_options(allow_untrusted)
        }
    }

    /// The documents found valid before under this `--root` (one reading per
    /// process: the daemon loads its tree again and again).
    fn known_valid(&self) -> &'static KnownValid {
        static KNOWN: OnceLock<KnownValid> = OnceLock::new();
        KNOWN.get_or_init(|| {
            KnownValid::open(Layout::new(&self.root, &self.state).known_valid_documents())
        })
    }

    /// The bounds on the images this command imports, pulls or unpacks.
    pub fn image_limits(&self) -> ImageLimits {
        ImageLimits {
            max_layer_size: self.max_layer_size.0,
            max_image_size: self.max_image_size.0,
        }
    }

    /// The state root's reconcile lock, for `run`, `rm`, `stop`, `start`
    /// and `restart`, which
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
    /// For scripts and people: the same data as json, in YAML
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests against the schema and berth's rules; report every problem
    Validate(validate::Args),
    /// Print the JSON schema of the manifest language
    Schema(schema::Args),
    /// Convert another tool's files into berth manifests (compose)
    Convert(convert::Args),
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
    /// Show containers' records and status (JSON, YAML, or a summary with -o text)
    Inspect(inspect::Args),
    /// Print a container's output, or a Job attempt's
    Logs(logs::Args),
    /// List Jobs: their run, status, counts, times and next scheduled run
    Jobs(jobs::Args),
    /// Act on a declared Job: run (start a new run now)
    Job(job::Args),
    /// Show what happened to berth's objects (created, replaced, restarted, ...)
    Events(events::Args),
    /// Run a command in a running container
    Exec(exec::Args),
    /// Show the processes a running container runs (host pids)
    Top(top::Args),
    /// Show what running containers use: CPU, memory, processes, network
    Stats(stats::Args),
    /// Copy files and directories between the host and a container (NAME:PATH)
    Cp(cp::Args),
    /// Start exited containers again (the same container, from its record)
    Start(start::StartArgs),
    /// Stop containers
    Stop(stop::Args),
    /// Stop containers (with their grace period), then start them again
    Restart(start::RestartArgs),
    /// Remove containers
    Rm(rm::Args),
    /// Follow a manifest directory: apply every valid change, repair drift, for ever
    Daemon(daemon::Args),
    /// Show the daemon's view: the generation in force, the last rejected, each object
    Status(status::Args),
    /// Print a shell completion script (bash, zsh, fish)
    Completion(completion::Args),
    /// Print berth's man page, or write every page into a directory
    Man(man::Args),
    /// Translate the manifests for another tool: kubernetes
    Export(export::Args),
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
    init_logging(&cli.global, matches!(cli.command, Command::Daemon(_)));
    if only_reads(&cli.command) {
        die_quietly_on_a_closed_pipe();
    }
    let result = match &cli.command {
        Command::Validate(args) => validate::run(&cli.global, args),
        Command::Schema(args) => schema::run(args),
        Command::Convert(args) => convert::run(args),
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
        Command::Jobs(args) => jobs::run(&cli.global, args),
        Command::Job(args) => job::run(&cli.global, args),
        Command::Events(args) => events::run(&cli.global, args),
        Command::Exec(args) => exec::run(&cli.global, args),
        Command::Top(args) => top::run(&cli.global, args),
        Command::Stats(args) => stats::run(&cli.global, args),
        Command::Cp(args) => cp::run(&cli.global, args),
        Command::Start(args) => start::start(&cli.global, args),
        Command::Stop(args) => stop::run(&cli.global, args),
        Command::Restart(args) => start::restart(&cli.global, args),
        Command::Rm(args) => rm::run(&cli.global, args),
        Command::Daemon(args) => daemon::run(&cli.global, args),
        Command::Status(args) => status::run(&cli.global, args),
        Command::Completion(args) => completion::run(args),
        Command::Man(args) => man::run(args),
        Command::Export(args) => export::run(&cli.global, args),
        Command::Shim(args) => crate::runtime::shim::main(&args.dir).map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("berth: {}", error_message(&error));
            ExitCode::FAILURE
        }
    }
}

/// Verbs that change nothing, whose output is often cut short (`berth
/// inspect X | head`): for them a reader that went away ends berth as it
/// ends `cat`. Verbs that change things keep going (a write to the closed
/// pipe fails and is ignored) so that they never stop half way.
fn only_reads(command: &Command) -> bool {
    matches!(
        command,
        Command::Validate(_)
            | Command::Schema(_)
            | Command::Plan(_)
            | Command::Ps(_)
            | Command::Inspect(_)
            | Command::Logs(_)
            | Command::Jobs(_)
            | Command::Events(_)
            | Command::Status(_)
            | Command::Top(_)
            | Command::Stats(_)
            | Command::Completion(_)
            | Command::Man(_)
            | Command::Export(_)
            | Command::Convert(_)
    )
}

/// Restores SIGPIPE's default action, which Rust's runtime sets to ignore
/// (whereupon `println!` panics on a closed pipe).
#[allow(unsafe_code)] // reason: one libc call at start-up, before any thread exists
fn die_quietly_on_a_closed_pipe() {
    // SAFETY: signal(2) with a constant disposition; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes, each said once: berth's errors already carry
/// their cause in their own message (`container web: user ...`), so a
/// cause whose text is already there is not repeated.
pub fn error_message(error: &anyhow::Error) -> String {
    crate::state::error_chain::messages(error.as_ref()).join(": ")
}

/// Colour (escape codes) only for a person at a terminal, and never with
/// `NO_COLOR` set (no-color.org): piped output stays plain text.
fn colour_on_stderr() -> bool {
    colour_on(&std::io::stderr())
}

/// Colour on `stream` only for a person at a terminal, and never with
/// `NO_COLOR` set (no-color.org).
pub(crate) fn colour_on(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// berth's own log; the daemon, which runs unattended, says what it does
/// (info) unless a level was chosen.
fn init_logging(global: &GlobalOptions, daemon: bool) {
    let chosen = global.log_level != "warn" || std::env::var_os("BERTH_LOG").is_some();
    let level = if daemon && !chosen {
        "info"
    } else {
        global.log_level.as_str()
    };
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_on_stderr())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("inner problem")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("container web: {source}")]
    struct Outer {
        source: Inner,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start")]
    struct Context {
        #[source]
        source: Inner,
    }

    #[test]
    fn each_cause_is_said_once() {
        let repeated = anyhow::Error::new(Outer { source: Inner });
        assert_eq!(error_message(&repeated), "container web: inner problem");
        let chained = anyhow::Error::new(Context { source: Inner });
        assert_eq!(error_message(&chained), "cannot start: inner problem");
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_version_names_the_crate_version_and_the_commit() {
        let version = Cli::command().render_version();
        assert!(
            version.starts_with(&format!("berth {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{version}"
        );
        let commit = env!("BERTH_COMMIT");
        assert!(!commit.is_empty(), "{version}");
        assert!(
            version.trim_end().ends_with(&format!("(commit {commit})")),
            "{version}"
        );
    }

    /// Every flag and argument of every verb, with the path of verbs to it,
    /// that has no help text.
    fn without_help(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" || arg.is_hide_set() {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands() {
            if sub.is_hide_set() {
                continue;
            }
            without_help(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    #[test]
    fn every_flag_and_argument_has_help_text() {
        let mut missing = Vec::new();
        without_help(&Cli::command(), "berth", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
