//! `berth convert compose FILE|DIR [-o DIR] [--strict]`: a compose project
//! as berth manifests, on standard output (one YAML stream) or one file per
//! object in a directory. Warnings name what did not carry over, at the
//! compose file's `file:line:col`; `--strict` makes them errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::output;
use crate::interop::compose::{self, Conversion, Converted, Input};
use crate::manifest::{schema, Kind};

/// The schema file `-o DIR` writes beside the manifests, which their
/// modeline names (unless `--schema` names another).
const SCHEMA_FILE: &str = "berth.v1.schema.json";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub from: From,
}

#[derive(Debug, clap::Subcommand)]
pub enum From {
    /// Convert a compose project (compose.yaml, docker-compose.yml) into berth manifests
    Compose(ComposeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ComposeArgs {
    /// The compose file, or a directory holding compose.yaml (or compose.yml, docker-compose.yaml, docker-compose.yml)
    #[arg(value_name = "FILE|DIR")]
    pub path: PathBuf,
    /// Write one manifest file per object into DIR (created if missing) instead of one YAML stream on standard output
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Make every warning an error: exit 1 and write nothing
    #[arg(long)]
    pub strict: bool,
    /// The project name, which prefixes every object's name (default: COMPOSE_PROJECT_NAME, the file's name:, or its directory's name)
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Also convert the services of this profile (repeatable; * for every profile)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Write into a DIR that already holds YAML files (files of the same name are replaced, others kept)
    #[arg(long)]
    pub force: bool,
    /// The schema the modeline names (default: berth.v1.schema.json, which -o writes into DIR)
    #[arg(long, value_name = "PATH|URL")]
    pub schema: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.from {
        From::Compose(args) => compose(args),
    }
}

fn compose(args: &ComposeArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("find the current directory")?;
    let file = compose::locate(&args.path)?;
    let files = compose::read_input(&file)?;
    let out_dir = cwd.join(args.output.as_deref().unwrap_or(Path::new(".")));
    let read = |path: &Path| compose::load::read_text(path);
    let input = Input {
        file: cwd.join(&file),
        display: file.display().to_string(),
        text: files.text,
        dotenv: files.dotenv,
        environment: std::env::vars().collect::<BTreeMap<_, _>>(),
        project_name: args.project_name.clone(),
        profiles: args.profiles.clone(),
        out_dir: out_dir.clone(),
        overrides: files
            .overrides
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        read: &read,
    };
    let conversion = compose::convert(&input)?;
    let severity = if args.strict { "error" } else { "warning" };
    for warning in &conversion.warnings {
        eprintln!("{severity}: {warning}");
    }
    if args.strict && !conversion.warnings.is_empty() {
        eprintln!(
            "berth: {} warning{} with --strict: nothing written",
            conversion.warnings.len(),
            plural(conversion.warnings.len())
        );
        return Ok(ExitCode::FAILURE);
    }
    let schema_ref = args
        .schema
        .clone()
        .unwrap_or_else(|| SCHEMA_FILE.to_string());
    match &args.output {
        Some(dir) => write_dir(dir, &conversion, &input.display, &schema_ref, args)?,
        None => print!("{}", stream(&conversion, &input.display, &schema_ref)),
    }
    eprintln!("{}", summary(&conversion, args.output.as_deref()));
    Ok(ExitCode::SUCCESS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Every object as one multi-document YAML stream, the modeline first.
fn stream(conversion: &Conversion, source: &str, schema_ref: &str) -> String {
    let mut out = modeline(schema_ref);
    for (i, converted) in conversion.objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&document(converted, source));
    }
    out
}

fn modeline(schema_ref: &str) -> String {
    format!("# yaml-language-server: $schema={schema_ref}\n")
}

/// One object: a comment saying where it came from, then its YAML.
fn document(converted: &Converted, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {} {}: converted by berth convert compose from {source}:{} ({})",
        converted.object.kind(),
        converted.object.name(),
        converted.line,
        converted.from
    );
    out.push_str(&output::to_yaml_ordered(
        &compose::document(&converted.object),
        &key_rank,
    ));
    out
}

/// Keys in the order a person reads a manifest: envelope first, then
/// what a container runs, how it is wired, how it is kept alive.
const KEY_ORDER: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "name",
    "type",
    "source",
    "target",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "user",
    "hostname",
    "env",
    "envFiles",
    "ports",
    "mounts",
    "networkMode",
    "networks",
    "dependsOn",
    "healthcheck",
    "restart",
];

fn key_rank(key: &str) -> usize {
    KEY_ORDER
        .iter()
        .position(|k| *k == key)
        .unwrap_or(KEY_ORDER.len())
}

/// `container-shop-web.yaml`: the kind first, so a listing groups them.
fn file_name(converted: &Converted) -> String {
    let kind = match converted.object.kind() {
        Kind::Container => "container",
        Kind::Job => "job",
        Kind::Network => "network",
        Kind::Volume => "volume",
    };
    format!("{kind}-{}.yaml", converted.object.name())
}

fn write_dir(
    dir: &Path,
    conversion: &Conversion,
    source: &str,
    schema_ref: &str,
    args: &ComposeArgs,
) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let existing = yaml_files_in(dir)?;
    if !existing.is_empty() && !args.force {
        anyhow::bail!(
            "{} already holds YAML files ({}): pass --force to write the converted manifests beside them",
            dir.display(),
            existing.join(", ")
        );
    }
    // A modeline relative to the manifest resolves in editors; the
    // default one names the schema file written beside them.
    if args.schema.is_none() {
        write_file(&dir.join(SCHEMA_FILE), &schema::generate_text())?;
    }
    for converted in &conversion.objects {
        let text = format!("{}{}", modeline(schema_ref), document(converted, source));
        write_file(&dir.join(file_name(converted)), &text)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::state::atomic::write_atomic_volatile_readable(path, text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

fn yaml_files_in(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn summary(conversion: &Conversion, dir: Option<&Path>) -> String {
    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    for converted in &conversion.objects {
        *counts.entry(converted.object.kind()).or_default() += 1;
    }
    let objects: Vec<String> = counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}{}", plural(*n)))
        .collect();
    let into = dir.map_or(String::new(), |d| format!(" into {}", d.display()));
    let warnings = conversion.warnings.len();
    format!(
        "berth: converted compose project {}: {}{into} ({warnings} warning{})",
        conversion.project,
        objects.join(", "),
        plural(warnings)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keys_come_first_then_image() {
        let mut keys = vec![
            "spec",
            "metadata",
            "kind",
            "apiVersion",
            "restart",
            "image",
            "zzz",
        ];
        keys.sort_by_key(|k| key_rank(k));
        assert_eq!(
            keys,
            [
                "apiVersion",
                "kind",
                "metadata",
                "spec",
                "image",
                "restart",
                "zzz"
            ]
        );
    }
}
