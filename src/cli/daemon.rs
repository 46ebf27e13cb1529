//! `berth daemon --watch DIR`: keep the host at what DIR says, for ever
//! (see [`crate::daemon`]).

use std::path::PathBuf;
use std::process::ExitCode;

use super::GlobalOptions;
use crate::daemon::{self, Options};
use crate::engine::Engine;
use crate::manifest::hosts::HostLabels;
use crate::manifest::quantity::Duration;
use crate::reconcile::plan::PlanOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest directory to follow (read recursively; a link that is
    /// swapped, as git-sync does, is followed to its new target)
    #[arg(long, value_name = "DIR")]
    pub watch: PathBuf,
    /// Reconcile this often even when nothing changed: repairs drift and
    /// catches file events that were lost
    #[arg(long, default_value = "30s")]
    pub resync: Duration,
    /// Wait for file events to pause this long before reading the tree
    #[arg(long, default_value = "200ms")]
    pub debounce: Duration,
    /// Delete what this source created and no longer declares (or no
    /// longer selects this host)
    #[arg(long)]
    pub prune: bool,
    /// With --prune, volumes too (their data is the user's)
    #[arg(long)]
    pub prune_volumes: bool,
    /// This host's label for `metadata.hosts` selectors (repeatable;
    /// `hostname` is set from the machine's name unless given)
    #[arg(long = "host-label", value_name = "KEY=VALUE", value_parser = HostLabels::parse_arg)]
    pub host_labels: Vec<(String, String)>,
    /// The manifest set's identity for ownership and pruning (default: the
    /// absolute path of --watch)
    #[arg(long)]
    pub source: Option<String>,
    /// Read manifests that are not root-owned or that others can write, even as root
    #[arg(long)]
    pub allow_untrusted_manifests: bool,
    /// The longest one reconcile pass runs before the daemon looks at new
    /// events again
    #[arg(long, default_value = "2m")]
    pub pass_timeout: Duration,
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open(&global.paths(), global.runtime.as_deref())?
        .with_image_limits(global.image_limits())
        .with_input_limits(global.input_limits());
    let options = Options {
        watch: args.watch.clone(),
        source: args.source.clone(),
        resync: args.resync.as_std(),
        debounce: args.debounce.as_std(),
        plan: PlanOptions {
            prune: args.prune,
            prune_volumes: args.prune_volumes,
            ..PlanOptions::default()
        },
        host: HostLabels::of_this_host(&args.host_labels),
        load: global.load_options_remembering(args.allow_untrusted_manifests),
        pass_timeout: args.pass_timeout.as_std(),
    };
    daemon::run(engine, options)?;
    Ok(ExitCode::SUCCESS)
}
