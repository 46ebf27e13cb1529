//! `berth man [--dir DIR]`: manual pages generated from the clap
//! definition. Without `--dir`, berth(1) goes to standard output; with it,
//! berth.1 and one page per (visible) subcommand, berth-image-pull.1 and
//! so on, are written into DIR.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write berth.1 and a page per subcommand into this directory (made if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.dir {
        None => print_main_page()?,
        Some(dir) => write_pages(dir)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_main_page() -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&out)
        .context("write the man page to standard output")
}

/// Writes every page into `dir`; the hidden `shim` verb gets none.
pub fn write_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("create man page directory {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("write man pages to {}", dir.display()))
}
