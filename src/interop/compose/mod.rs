//! `berth convert compose`: a compose project in, a berth manifest set out.
//!
//! The flow follows compose's own: parse the YAML (keeping positions),
//! interpolate every string value from the environment and `.env`, then read
//! the typed fields. Services become Containers named `PROJECT-SERVICE`,
//! networks and volumes become Networks and Volumes named `PROJECT-NAME`
//! (or their `name:` as written). Whatever berth cannot say is a [`Warning`]
//! at the compose file's `file:line:col`; nothing is dropped silently.

mod health;
pub mod interpolate;
pub mod load;
mod mounts;
mod names;
mod networks;
mod paths;
mod ports;
mod render;
mod resources;
mod service;
mod shell;
mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use load::{locate, read_input, LoadError};
pub use render::document;

use crate::manifest::yaml::{self, Node, Value};
use crate::manifest::Object;
use interpolate::Variables;
use tree::Ctx;

/// A compose project to convert: the file's text and everything it may use.
pub struct Input<'a> {
    /// The compose file (absolute); relative host paths resolve against its directory.
    pub file: PathBuf,
    /// The file as shown in messages.
    pub display: String,
    pub text: String,
    /// The `.env` file beside the compose file, if there is one.
    pub dotenv: Option<String>,
    /// The process environment (wins over `.env`).
    pub environment: BTreeMap<String, String>,
    /// `-p`: the project name, over `COMPOSE_PROJECT_NAME`, `name:` and the directory's.
    pub project_name: Option<String>,
    /// Profiles to enable; services with other profiles are left out, as compose does.
    pub profiles: Vec<String>,
    /// Where the manifests will be (absolute): relative paths are written relative to it.
    pub out_dir: PathBuf,
    /// Override files beside the compose file (compose would merge them; berth does not).
    pub overrides: Vec<String>,
    /// Reads a file the compose file names (env files), or `None`.
    pub read: &'a dyn Fn(&Path) -> Option<String>,
}

/// The manifest set, with what did not carry over.
#[derive(Debug)]
pub struct Conversion {
    pub project: String,
    pub objects: Vec<Converted>,
    pub warnings: Vec<Warning>,
}

/// One berth object and what it was made from.
#[derive(Debug)]
pub struct Converted {
    pub object: Object,
    /// `services.web`, `networks.backend`, ...
    pub from: String,
    /// The line of the compose file it was made from.
    pub line: usize,
}

/// Something in the compose file berth has no equivalent for, or says
/// differently; `--strict` makes these errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The compose field, as `services.web.ports[0]`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{file}:{line}:{column}: {message}")]
    Yaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Interpolation {
        file: String,
        line: usize,
        column: usize,
        variable: Option<String>,
        message: String,
    },
    #[error("{file}:{line}:{column}: {field}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    #[error("{file}: {message}")]
    Project { file: String, message: String },
}

/// Converts the compose project. Errors are what compose itself would
/// refuse (bad YAML, a required variable unset, a port that does not
/// parse); everything berth merely cannot say is a warning.
pub fn convert(input: &Input<'_>) -> Result<Conversion, ComposeError> {
    let mut root = parse(input)?;
    let mut warnings = Vec::new();
    let variables = variables(input)?;
    interpolate_tree(&mut root, &variables, &input.display, &mut warnings)?;
    let compose_dir = input
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let project = project_name(input, &root, &compose_dir)?;
    let mut ctx = Ctx {
        file: input.display.clone(),
        project: project.clone(),
        compose_dir,
        out_dir: input.out_dir.clone(),
        variables: &variables,
        read: input.read,
        warnings,
    };
    for skipped in &input.overrides {
        ctx.warn(
            root.pos,
            "file",
            format!("{skipped} is not merged: berth converts one compose file; merge the override into it first"),
        );
    }
    let objects = service::convert_project(&mut ctx, &root, &input.profiles)?;
    Ok(Conversion {
        project,
        objects,
        warnings: ctx.warnings,
    })
}

fn parse(input: &Input<'_>) -> Result<Node, ComposeError> {
    let stream = yaml::parse_stream(&input.text);
    if let Some(error) = stream.errors.first() {
        return Err(ComposeError::Yaml {
            file: input.display.clone(),
            line: error.pos.line,
            column: error.pos.column,
            message: error.message.clone(),
        });
    }
    let mut documents = stream.documents.into_iter();
    let root = documents.next().ok_or_else(|| ComposeError::Project {
        file: input.display.clone(),
        message: "the file is empty".into(),
    })?;
    if let Some(extra) = documents.next() {
        return Err(ComposeError::Yaml {
            file: input.display.clone(),
            line: extra.pos.line,
            column: extra.pos.column,
            message: "a compose file holds one YAML document".into(),
        });
    }
    if !matches!(root.value, Value::Map(_)) {
        return Err(ComposeError::Yaml {
            file: input.display.clone(),
            line: root.pos.line,
            column: root.pos.column,
            message: "a compose file is a mapping (services:, networks:, volumes:)".into(),
        });
    }
    Ok(root)
}

fn variables(input: &Input<'_>) -> Result<Variables, ComposeError> {
    let dotenv = match &input.dotenv {
        Some(text) => interpolate::parse_dotenv(text, &input.environment).map_err(|e| {
            ComposeError::Interpolation {
                file: dotenv_display(&input.display),
                line: e.line,
                column: 1,
                variable: e.problem.variable,
                message: e.problem.message,
            }
        })?,
        None => BTreeMap::new(),
    };
    Ok(Variables {
        environment: input.environment.clone(),
        dotenv,
    })
}

/// The `.env` beside the compose file, as messages show it.
fn dotenv_display(compose: &str) -> String {
    match Path::new(compose).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(".env").display().to_string(),
        _ => ".env".to_string(),
    }
}

/// Interpolates every string value (not keys, as compose) in place.
fn interpolate_tree(
    node: &mut Node,
    variables: &Variables,
    file: &str,
    warnings: &mut Vec<Warning>,
) -> Result<(), ComposeError> {
    match &mut node.value {
        Value::String(text) => {
            let done = interpolate::interpolate(text, variables).map_err(|problem| {
                ComposeError::Interpolation {
                    file: file.to_string(),
                    line: node.pos.line,
                    column: node.pos.column,
                    variable: problem.variable,
                    message: problem.message,
                }
            })?;
            for name in done.unset {
                warnings.push(Warning {
                    file: file.to_string(),
                    line: node.pos.line,
                    column: node.pos.column,
                    field: "interpolation".into(),
                    message: format!("variable {name} is not set; using an empty string"),
                });
            }
            *text = done.text;
        }
        Value::Seq(items) => {
            for item in items {
                interpolate_tree(item, variables, file, warnings)?;
            }
        }
        Value::Map(entries) => {
            for entry in entries {
                interpolate_tree(&mut entry.value, variables, file, warnings)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
    Ok(())
}

/// `-p`, else `COMPOSE_PROJECT_NAME`, else `name:`, else the directory's
/// name, as compose picks it.
fn project_name(input: &Input<'_>, root: &Node, dir: &Path) -> Result<String, ComposeError> {
    let given = input
        .project_name
        .clone()
        .or_else(|| input.environment.get("COMPOSE_PROJECT_NAME").cloned())
        .filter(|n| !n.is_empty())
        .or_else(|| tree::get(root, "name").and_then(tree::text))
        .unwrap_or_else(|| {
            names::project_from_dir(
                &dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        });
    let name = names::sanitize(&given);
    if name.is_empty() {
        return Err(ComposeError::Project {
            file: input.display.clone(),
            message: format!(
                "no project name can be made from {given:?}: give one with -p NAME or name:"
            ),
        });
    }
    Ok(name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A context for mapping tests: project `test`, compose file
    /// `/srv/app/compose.yaml`, manifests written beside it, no files.
    pub fn with_ctx<T>(f: impl FnOnce(&mut Ctx<'_>) -> T) -> T {
        let variables = Variables::default();
        let read = |_: &Path| None;
        let mut ctx = Ctx {
            file: "compose.yaml".into(),
            project: "test".into(),
            compose_dir: PathBuf::from("/srv/app"),
            out_dir: PathBuf::from("/srv/app"),
            variables: &variables,
            read: &read,
            warnings: Vec::new(),
        };
        f(&mut ctx)
    }

    /// The one document of `text`.
    pub fn node(text: &str) -> Node {
        let stream = yaml::parse_stream(text);
        assert!(stream.errors.is_empty(), "{:?}", stream.errors);
        stream.documents.into_iter().next().expect("a document")
    }
}
