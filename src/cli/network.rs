//! `berth network ls|inspect`: networks, their subnets and who is attached.

use std::process::ExitCode;

use serde::Serialize;

use super::{print_table, GlobalOptions, OutputFormat};
use crate::network::attach::Networker;
use crate::network::conflist::{bridge_name, NetworkDef};
use crate::network::store::{NetworkRecord, NetworkStore};
use crate::reconcile::events;
use crate::reconcile::plan::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: NetworkCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum NetworkCommand {
    /// List networks with their subnets and attached containers
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Remove a network record; refused while containers are attached
    Rm {
        /// The name
        name: String,
    },
    /// Show a network and every container attached to it
    Inspect {
        /// The network's name
        name: String,
        #[arg(short = 'o', long = "output", value_enum, help = "Output: text for people, json or yaml for scripts", default_value_t = OutputFormat::Json)]
        output: OutputFormat,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    container: String,
    interface: String,
    ips: Vec<String>,
    aliases: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct View {
    name: String,
    driver: String,
    subnet: Option<String>,
    bridge: Option<String>,
    internal: bool,
    source: Option<String>,
    containers: Vec<Member>,
}

fn members(networker: &Networker, network: &str) -> Vec<Member> {
    networker
        .members(network)
        .into_iter()
        .map(|(container, attachment)| Member {
            container,
            interface: attachment.ifname,
            ips: attachment.ips.iter().map(ToString::to_string).collect(),
            aliases: attachment.aliases,
        })
        .collect()
}

fn view(networker: &Networker, record: &NetworkRecord) -> View {
    let def = NetworkDef {
        name: record.name.clone(),
        spec: record.spec.clone(),
    };
    View {
        name: record.name.clone(),
        driver: format!("{:?}", record.spec.driver).to_lowercase(),
        subnet: Some(crate::network::conflist::subnet(&def).to_string()),
        bridge: (record.spec.driver == crate::manifest::NetworkDriver::Bridge)
            .then(|| bridge_name(&def)),
        internal: record.spec.internal,
        source: record.source.clone(),
        containers: members(networker, &record.name),
    }
}

pub fn run(global: &GlobalOptions, args: &Args) -> anyhow::Result<ExitCode> {
    let layout = global.paths();
    let store = NetworkStore::new(layout.network_records());
    let networker = Networker::new(&layout);
    match &args.command {
        NetworkCommand::Ls { output } => {
            let views: Vec<View> = store.list()?.iter().map(|r| view(&networker, r)).collect();
            match output {
                OutputFormat::Json | OutputFormat::Yaml => {
                    super::output::print_structured(*output, &views)?
                }
                OutputFormat::Text => {
                    let rows: Vec<Vec<String>> = views
                        .iter()
                        .map(|v| {
                            vec![
                                v.name.clone(),
                                v.driver.clone(),
                                v.subnet.clone().unwrap_or_default(),
                                v.bridge.clone().unwrap_or_default(),
                                v.containers
                                    .iter()
                                    .map(|m| format!("{}({})", m.container, m.ips.join(",")))
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            ]
                        })
                        .collect();
                    print_table(&["NAME", "DRIVER", "SUBNET", "BRIDGE", "CONTAINERS"], &rows);
                }
            }
        }
        NetworkCommand::Rm { name } => {
            networker.delete_network(&store, name)?;
            println!("{name}");
        }
        NetworkCommand::Inspect { name, output } => {
            let record = match store.get_record(name)? {
                Some(record) => record,
                None => {
                    let def = store.get(name)?;
                    NetworkRecord {
                        name: def.name,
                        spec: def.spec,
                        source: None,
                        file: None,
                        line: None,
                        fingerprint: None,
                    }
                }
            };
            let v = view(&networker, &record);
            match output {
                OutputFormat::Json | OutputFormat::Yaml => super::output::print_structured(
                    *output,
                    &serde_json::json!({
                        "network": v,
                        "spec": record.spec,
                        "events": events::read(&global.paths(), Target::Network, name),
                    }),
                )?,
                OutputFormat::Text => {
                    println!(
                        "Name:    {}\nDriver:  {}\nSubnet:  {}\nBridge:  {}",
                        v.name,
                        v.driver,
                        v.subnet.clone().unwrap_or_default(),
                        v.bridge.clone().unwrap_or_default()
                    );
                    for m in &v.containers {
                        println!("  {} {} {}", m.container, m.interface, m.ips.join(","));
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
