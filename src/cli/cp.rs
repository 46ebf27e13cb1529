//! `berth cp SRC DST`: copies files and directories between the host and
//! a container, one side written `NAME:PATH` (PATH absolute, in the
//! container). A directory is copied whole; into DST when DST is a
//! directory, else as DST. Links are copied as links, and none inside the
//! container ever leads a copy out of it (see [`crate::runtime::copy`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::progress::human_bytes;
use super::GlobalOptions;
use crate::engine::Engine;
use crate::manifest::names::ContainerId;
use crate::runtime::copy::Copied;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to copy: a host path, or NAME:PATH in a container
    pub source: String,
    /// Where to: a host path, or NAME:PATH in a container (exactly one side is a container)
    pub destination: String,
}

/// One side of a copy.
#[derive(Debug, PartialEq, Eq)]
enum Side {
    Host(PathBuf),
    Container { name: String, path: String },
}

/// `NAME:PATH` is a container's side; anything else, and anything that
/// starts with `/` or `.` (`./a:b` is a file), is a host path, as docker
/// tells them apart.
fn side(arg: &str) -> Side {
    if !arg.starts_with(['/', '.']) {
        if let Some((name, path)) = arg.split_once(':') {
            if ContainerId::parse(name).is_ok() {
                return Side::Container {
                    name: name.to_string(),
                    path: path.to_string(),
                };
            }
        }
    }
    Side::Host(PathBuf::from(arg))
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let copied = match (side(&args.source), side(&args.destination)) {
        (Side::Container { name, path }, Side::Host(host)) => {
            let record = engine.record(&ContainerId::parse(&name)?)?;
            engine.copy_out(&record, &path, &host)?
        }
        (Side::Host(host), Side::Container { name, path }) => {
            let record = engine.record(&ContainerId::parse(&name)?)?;
            engine.copy_in(&record, &host, &path)?
        }
        (Side::Host(_), Side::Host(_)) => {
            anyhow::bail!("one side of berth cp is a container's NAME:PATH (cp copies on the host)")
        }
        (Side::Container { .. }, Side::Container { .. }) => anyhow::bail!(
            "berth cp copies between the host and a container, not between two containers"
        ),
    };
    report(&copied, Path::new(&args.destination));
    Ok(ExitCode::SUCCESS)
}

/// What was copied, on stderr (stdout stays empty, as for `cp`).
fn report(copied: &Copied, destination: &Path) {
    for skipped in &copied.skipped {
        eprintln!("berth: skipped {skipped}: not a file, directory or link");
    }
    eprintln!(
        "berth: copied {} to {} ({} files, {} directories, {} links)",
        human_bytes(copied.bytes),
        destination.display(),
        copied.files,
        copied.directories,
        copied.links
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_colon_path_is_a_container_and_paths_that_look_like_paths_are_the_hosts() {
        assert_eq!(
            side("web:/etc/hosts"),
            Side::Container {
                name: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(side("./web:/x"), Side::Host("./web:/x".into()));
        assert_eq!(side("/tmp/a:b"), Side::Host("/tmp/a:b".into()));
        assert_eq!(side("Not_A_Name:/x"), Side::Host("Not_A_Name:/x".into()));
        assert_eq!(side("file"), Side::Host("file".into()));
    }
}
