//! The manifest language: types, reading YAML with positions, the JSON schema,
//! and validation of a whole manifest set.

pub mod cron;
pub mod diagnostic;
pub mod env_file;
pub mod hosts;
pub mod identity;
pub mod known_valid;
pub mod load;
pub mod names;
pub mod net;
pub mod quantity;
pub mod reference;
pub mod schema;
pub mod trust;
pub mod types;
pub mod validate;
pub mod vocabulary;
pub mod yaml;

use known_valid::KnownValid;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

pub use diagnostic::Diagnostic;
use diagnostic::{render_path, PathSegment};
pub use identity::SetIdentity;
pub use load::LoadOptions;
pub use load::SourceFile;
pub use types::*;

/// An object read from a manifest file, with where it came from.
#[derive(Debug, Clone)]
pub struct Located {
    pub object: Object,
    /// The file as shown in messages.
    pub file: String,
    /// The directory the file's relative paths resolve against.
    pub base_dir: PathBuf,
    /// The document's YAML tree, kept for pointing at fields in later checks.
    pub node: yaml::Node,
}

impl Located {
    /// A diagnostic about the field at `path` in this object's document.
    pub fn problem(&self, path: &[PathSegment], message: impl Into<String>) -> Diagnostic {
        self.problem_at(path, false, message)
    }

    pub fn problem_at(
        &self,
        path: &[PathSegment],
        at_key: bool,
        message: impl Into<String>,
    ) -> Diagnostic {
        let pos = self.node.locate(path, at_key);
        Diagnostic {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            path: render_path(path),
            message: message.into(),
        }
    }

    /// `file:line:col` of the field at `path`, for messages naming a second place.
    pub fn place(&self, path: &[PathSegment]) -> String {
        let pos = self.node.locate(path, false);
        format!("{}:{}:{}", self.file, pos.line, pos.column)
    }

    /// The line of the object's `metadata.name`: where it is declared, as
    /// records keep it for messages about the object's owner.
    pub fn name_line(&self) -> usize {
        let path = [PathSegment::from("metadata"), PathSegment::from("name")];
        self.node.locate(&path, false).line
    }
}

/// A valid manifest set.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    pub objects: Vec<Located>,
    pub files: usize,
}

impl ManifestSet {
    /// How many objects of each kind, for summaries.
    pub fn counts(&self) -> BTreeMap<Kind, usize> {
        let mut counts: BTreeMap<Kind, usize> = Kind::ALL.iter().map(|k| (*k, 0)).collect();
        for located in &self.objects {
            *counts.entry(located.object.kind()).or_default() += 1;
        }
        counts
    }
}

/// Reads, checks and types every manifest under `paths`. Either the whole set
/// is valid, or every problem found in it is returned, sorted by place.
pub fn load(paths: &[String], options: LoadOptions) -> Result<ManifestSet, Vec<Diagnostic>> {
    let (sources, problems) = load::read_sources(paths, options);
    load_sources(&sources, problems, &paths.join(", "), options)
}

/// Checks and types manifest files already read (with the problems met
/// reading them): what [`load`] does after reading, for a caller that keeps
/// the files' text, as the daemon keeps its generations. `named` is what the
/// user pointed at, for the message when there are no files.
pub fn load_sources(
    sources: &[SourceFile],
    mut problems: Vec<Diagnostic>,
    named: &str,
    options: LoadOptions,
) -> Result<ManifestSet, Vec<Diagnostic>> {
    let files = sources.len();
    let mut objects = Vec::new();
    let mut broken = Vec::new();
    for source in sources {
        parse_source(
            source,
            options.known_valid,
            &mut objects,
            &mut broken,
            &mut problems,
        );
    }
    if let Some(known) = options.known_valid {
        // Only a shortcut for the next run: without it the schema runs.
        if let Err(error) = known.save() {
            tracing::debug!(%error, "cannot remember the documents found valid");
        }
    }
    if files == 0 && problems.is_empty() {
        problems.push(Diagnostic::for_file(
            named,
            "no manifest files found (berth reads *.yaml and *.yml)",
        ));
    }
    problems.extend(validate::check_set(&objects, &broken));
    if let Some(policy) = options.trust {
        problems.extend(validate::check_referenced_files(&objects, policy));
    }
    problems.extend(validate::check_log_programs(&objects, options.trust));
    if problems.is_empty() {
        Ok(ManifestSet { objects, files })
    } else {
        problems.sort();
        problems.dedup();
        Err(problems)
    }
}

/// The schema's problems with a document; none, without running it, for a
/// document `known_valid` has seen pass (see [`known_valid`]).
fn check_schema(
    json: &serde_json::Value,
    known_valid: Option<&KnownValid>,
) -> Vec<schema::SchemaProblem> {
    let Some(known) = known_valid else {
        return schema::check(json);
    };
    let key = known.key(json);
    if known.contains(&key) {
        return Vec::new();
    }
    let problems = schema::check(json);
    if problems.is_empty() {
        known.insert(key);
    }
    problems
}

/// Parses one file's documents; each valid document becomes an object.
pub fn parse_source(
    source: &SourceFile,
    known_valid: Option<&KnownValid>,
    objects: &mut Vec<Located>,
    broken: &mut Vec<BrokenObject>,
    problems: &mut Vec<Diagnostic>,
) {
    let stream = yaml::parse_stream(&source.text);
    for error in &stream.errors {
        problems.push(Diagnostic {
            file: source.display.clone(),
            line: error.pos.line,
            column: error.pos.column,
            path: String::new(),
            message: error.message.clone(),
        });
    }
    if stream.documents.is_empty() && stream.errors.is_empty() {
        problems.push(Diagnostic {
            file: source.display.clone(),
            line: 1,
            column: 1,
            path: String::new(),
            message: "the file holds no berth objects (it is empty or only comments)".into(),
        });
    }
    for node in stream.documents {
        let json = node.to_json();
        let schema_problems = check_schema(&json, known_valid);
        let locate = |path: &[PathSegment], at_key: bool, message: String| {
            let pos = node.locate(path, at_key);
            Diagnostic {
                file: source.display.clone(),
                line: pos.line,
                column: pos.column,
                path: render_path(path),
                message,
            }
        };
        let mut json = json;
        let mut pruned = false;
        for problem in schema_problems {
            if !is_kept_name(&json, &problem.path) {
                pruned |= prune(&mut json, &problem.path);
            }
            problems.push(locate(&problem.path, problem.at_key, problem.message));
        }
        // A document with problems is still typed without the fields at fault,
        // so that the set-wide checks can report everything else in one run;
        // it never reaches a valid set, since problems exist.
        loop {
            match into_object(json.clone()) {
                Ok(object) => {
                    objects.push(Located {
                        object,
                        file: source.display.clone(),
                        base_dir: source.base_dir.clone(),
                        node,
                    });
                    break;
                }
                Err((path, message)) => {
                    // A field removed above may be a required one; that is not news.
                    if !(pruned && message.starts_with("missing field")) {
                        problems.push(locate(&path, false, message));
                    }
                    if !prune(&mut json, &path) {
                        broken.push(BrokenObject::from_json(&json));
                        break;
                    }
                    pruned = true;
                }
            }
        }
    }
}

/// A document too broken to type; its kind and name still count as defined,
/// so that references to it are not reported as missing.
#[derive(Debug, Clone)]
pub struct BrokenObject {
    pub kind: Option<Kind>,
    pub name: Option<String>,
}

impl BrokenObject {
    fn from_json(json: &serde_json::Value) -> Self {
        let kind = json
            .get("kind")
            .cloned()
            .and_then(|k| serde_json::from_value(k).ok());
        let name = json
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .map(str::to_string);
        BrokenObject { kind, name }
    }
}

/// Whether the problem at `path` is a `metadata.name` that is a string but
/// breaks the naming rules: it stays, so that the document is still typed
/// and its references (networks, dependsOn, ...) are checked in the same
/// run; without a name the whole document would be untypeable.
fn is_kept_name(json: &serde_json::Value, path: &[PathSegment]) -> bool {
    let name_path = [PathSegment::from("metadata"), PathSegment::from("name")];
    path == name_path
        && json
            .pointer("/metadata/name")
            .is_some_and(|n| n.is_string())
}

/// Removes the mapping entry that holds the problem at `path` (a whole list
/// when the problem is inside one, so that list indexes keep their meaning).
/// Returns whether anything was removed.
fn prune(json: &mut serde_json::Value, path: &[PathSegment]) -> bool {
    let keys: Vec<&str> = path
        .iter()
        .map_while(|segment| match segment {
            PathSegment::Key(key) => Some(key.as_str()),
            PathSegment::Index(_) => None,
        })
        .collect();
    let Some((last, parents)) = keys.split_last() else {
        return false;
    };
    let mut node = json;
    for key in parents {
        match node.get_mut(*key) {
            Some(child) => node = child,
            None => return false,
        }
    }
    node.as_object_mut()
        .is_some_and(|map| map.remove(*last).is_some())
}

/// Types a schema-valid document. What the schema cannot express (a duration's
/// arithmetic, an address's syntax) fails here, with the field's path.
fn into_object(json: serde_json::Value) -> Result<Object, (Vec<PathSegment>, String)> {
    let kind = json
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "Container" => typed(json).map(Object::Container),
        "Job" => typed(json).map(Object::Job),
        "Network" => typed(json).map(Object::Network),
        "Volume" => typed(json).map(Object::Volume),
        other => Err((
            vec![PathSegment::Key("kind".into())],
            format!("unknown kind {other:?}"),
        )),
    }
}

fn typed<T: DeserializeOwned>(json: serde_json::Value) -> Result<T, (Vec<PathSegment>, String)> {
    serde_path_to_error::deserialize(json).map_err(|error| {
        let path = error
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(PathSegment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(PathSegment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        (path, error.into_inner().to_string())
    })
}
