//! `berth schema`: prints the JSON schema generated from the manifest types.

use std::process::ExitCode;

use crate::manifest::schema;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    print!("{}", schema::generate_text());
    Ok(ExitCode::SUCCESS)
}
