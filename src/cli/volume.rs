//! `berth volume ls|inspect|rm`: named volumes, who declared them and who
//! mounts them.

use std::process::ExitCode;

use serde::Serialize;

use super::{print_table, GlobalOptions, OutputFormat};
use crate::engine::volume::Volume;
use crate::engine::Engine;
use crate::manifest::MountType;
use crate::reconcile::events;
use crate::reconcile::plan::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    /// List volumes with their source and the containers that mount them
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show a volume as JSON
    Inspect {
        /// The volume's name
        name: String,
        #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Json)]
        output: OutputFormat,
    },
    /// Delete a volume and its data; refused while containers mount it
    Rm {
        /// The name
        name: String,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct View {
    #[serde(flatten)]
    volume: Volume,
    /// Containers whose spec mounts it.
    used_by: Vec<String>,
}

fn users(engine: &Engine, volume: &str) -> anyhow::Result<Vec<String>> {
    Ok(engine
        .records()?
        .into_iter()
        .filter(|record| {
            record
                .spec
                .mounts
                .iter()
                .any(|m| m.kind == MountType::Volume && m.source.as_deref() == Some(volume))
        })
        .map(|record| record.id.to_string())
        .collect())
}

fn view(engine: &Engine, volume: Volume) -> anyhow::Result<View> {
    Ok(View {
        used_by: users(engine, &volume.name)?,
        volume,
    })
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let engine = Engine::open_for_reading(&global.paths(), global.runtime.as_deref())?;
    let volumes = engine.volumes();
    match &args.command {
        VolumeCommand::Ls { output } => {
            let views = volumes
                .list()
                .into_iter()
                .map(|v| view(&engine, v))
                .collect::<anyhow::Result<Vec<_>>>()?;
            match output {
                OutputFormat::Json | OutputFormat::Yaml => {
                    super::output::print_structured(*output, &views)?
                }
                OutputFormat::Text => {
                    let rows: Vec<Vec<String>> = views
                        .iter()
                        .map(|v| {
                            let record = v.volume.record.as_ref();
                            vec![
                                v.volume.name.clone(),
                                record
                                    .and_then(|r| r.file.clone())
                                    .unwrap_or_else(|| "run".into()),
                                v.used_by.join(" "),
                                v.volume.path.display().to_string(),
                            ]
                        })
                        .collect();
                    print_table(&["NAME", "SOURCE", "USED BY", "PATH"], &rows);
                }
            }
        }
        VolumeCommand::Inspect { name, output } => {
            let view = view(&engine, volumes.get(name)?)?;
            let mut value = serde_json::to_value(&view)?;
            value["events"] =
                serde_json::to_value(events::read(&engine.paths, Target::Volume, name))?;
            // No text form: text prints JSON, as it always did.
            super::output::print_structured(*output, &value)?;
        }
        VolumeCommand::Rm { name } => {
            volumes.get(name)?;
            let users = users(&engine, name)?;
            if !users.is_empty() {
                anyhow::bail!(
                    "volume {name} is mounted by {}; remove those containers first",
                    users.join(", ")
                );
            }
            volumes.remove(name)?;
            println!("{name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
