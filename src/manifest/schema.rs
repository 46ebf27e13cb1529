//! The JSON schema of the manifest language, generated from the Rust types, and
//! validation of documents against it with a real JSON Schema validator.
//!
//! The root schema dispatches on `kind` with `if`/`then`, so that both the
//! validator and editors (yaml-language-server) check each document against
//! its own kind's schema and report errors inside it, not "matches none of".

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::ValidationError;
use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use super::diagnostic::{did_you_mean, PathSegment};
use super::types::{
    ContainerManifest, JobManifest, Kind, NetworkManifest, VolumeManifest, API_VERSION,
};

/// Where the committed schema lives, relative to the repository root.
pub const SCHEMA_FILE: &str = "schemas/berth.v1.schema.json";

/// The full schema document for `berth/v1` manifests.
pub fn generate() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut dispatch = Vec::new();
    let mut kind_refs = Vec::new();
    for kind in Kind::ALL {
        let reference = match kind {
            Kind::Container => generator.subschema_for::<ContainerManifest>(),
            Kind::Job => generator.subschema_for::<JobManifest>(),
            Kind::Network => generator.subschema_for::<NetworkManifest>(),
            Kind::Volume => generator.subschema_for::<VolumeManifest>(),
        };
        let mut then = reference.to_value();
        if matches!(kind, Kind::Container | Kind::Job) {
            then["required"] = json!(["spec"]);
        }
        dispatch.push(json!({
            "if": {"properties": {"kind": {"const": kind.as_str()}}, "required": ["kind"]},
            "then": then,
        }));
        kind_refs.push(kind.as_str());
    }
    let mut definitions = Value::Object(generator.take_definitions(true));
    add_titles(&mut definitions);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "berth manifest",
        "description": format!("One object of a berth manifest set ({API_VERSION}): a Container, Job, Network or Volume. A YAML file may hold several, separated by ---."),
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"title": "API version", "description": "The version of the manifest language.", "const": API_VERSION},
            "kind": {"title": "Kind", "description": "What this object is.", "enum": kind_refs},
        },
        "allOf": dispatch,
        "$defs": definitions,
    })
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn generate_text() -> String {
    let mut text = serde_json::to_string_pretty(&generate()).unwrap_or_default();
    text.push('\n');
    text
}

/// Gives every property without a title one made from its name
/// (`imagePullPolicy` -> "Image pull policy"), for editors' hover text.
fn add_titles(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if let Value::Object(property) = property {
                        property
                            .entry("title")
                            .or_insert_with(|| Value::String(humanize(name)));
                    }
                }
            }
            for child in map.values_mut() {
                add_titles(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(add_titles),
        _ => {}
    }
}

fn humanize(name: &str) -> String {
    // Split at each lower-to-upper boundary: `imagePullPolicy` -> image, Pull, Policy.
    let mut words: Vec<String> = Vec::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if words.is_empty() || (c.is_ascii_uppercase() && previous_lower) {
            words.push(String::new());
        }
        if let Some(word) = words.last_mut() {
            word.push(c);
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    let words: Vec<String> = words
        .into_iter()
        .enumerate()
        .map(|(i, word)| {
            let acronym = word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase());
            if acronym {
                word
            } else if i == 0 {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|f| f.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            } else {
                word.to_lowercase()
            }
        })
        .collect();
    words.join(" ")
}

/// A schema violation, located in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    pub path: Vec<PathSegment>,
    /// Point at the key rather than the value (unknown fields).
    pub at_key: bool,
    pub message: String,
}

struct Compiled {
    schema: Value,
    validator: jsonschema::Validator,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let schema = generate();
        // The schema is generated from our own types; failing to compile it is a
        // bug caught by the schema tests, never a user error.
        let validator =
            jsonschema::validator_for(&schema).expect("berth's generated schema compiles");
        Compiled { schema, validator }
    })
}

/// Every schema violation in one document.
pub fn check(document: &Value) -> Vec<SchemaProblem> {
    let compiled = compiled();
    let mut problems = Vec::new();
    for error in compiled.validator.iter_errors(document) {
        explain(&compiled.schema, &error, &mut problems);
    }
    problems.sort_by(|a, b| {
        a.path
            .len()
            .cmp(&b.path.len())
            .then(a.message.cmp(&b.message))
    });
    problems.dedup();
    problems
}

fn instance_path(error: &ValidationError<'_>) -> Vec<PathSegment> {
    error
        .instance_path()
        .iter()
        .map(|segment| match segment {
            LocationSegment::Property(key) => {
                PathSegment::Key(key.replace("~1", "/").replace("~0", "~"))
            }
            LocationSegment::Index(index) => PathSegment::Index(index),
        })
        .collect()
}

fn explain(schema: &Value, error: &ValidationError<'_>, out: &mut Vec<SchemaProblem>) {
    let path = instance_path(error);
    let instance = error.instance();
    let problem = |message: String| SchemaProblem {
        path: path.clone(),
        at_key: false,
        message,
    };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = known_properties(schema, error);
            for field in unexpected {
                let mut message = format!("unknown field {field:?}");
                if let Some(suggestion) = did_you_mean(field, known.iter().map(String::as_str)) {
                    message.push_str(&format!(", did you mean {suggestion:?}?"));
                } else if !known.is_empty() {
                    message.push_str(&format!(" (known fields: {})", known.join(", ")));
                }
                let mut field_path = path.clone();
                field_path.push(PathSegment::Key(field.clone()));
                out.push(SchemaProblem {
                    path: field_path,
                    at_key: true,
                    message,
                });
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(problem(format!("required field {name:?} is missing")));
        }
        ValidationErrorKind::Enum { options } => {
            out.push(problem(format!(
                "{} is not one of {}",
                short(instance),
                list_options(options)
            )));
        }
        ValidationErrorKind::Constant { expected_value } => {
            out.push(problem(format!(
                "{} must be {}",
                short(instance),
                short(expected_value)
            )));
        }
        ValidationErrorKind::Type { kind } => {
            out.push(problem(format!(
                "expected {}, found {}",
                type_names(kind),
                json_type(instance)
            )));
        }
        ValidationErrorKind::Pattern { .. } => {
            let message = match subschema_at(schema, error).and_then(hint_for) {
                Some(hint) => format!("{} is not a valid {hint}", short(instance)),
                None => match error.instance_path().as_str() {
                    "/metadata/name" => format!(
                        "{} is not a valid name: use lowercase letters, digits and '-', starting and ending with a letter or digit",
                        short(instance)
                    ),
                    _ => error.to_string(),
                },
            };
            out.push(problem(message));
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            explain_alternatives(schema, error, context, out);
        }
        _ => out.push(problem(error.to_string())),
    }
}

/// For `anyOf`/`oneOf` (an `Option`, or a field that takes a name or a
/// mapping), reports the errors of the one alternative whose type fits the
/// value; when none or several fit, says which forms are accepted.
fn explain_alternatives(
    schema: &Value,
    error: &ValidationError<'_>,
    context: &[Vec<ValidationError<'static>>],
    out: &mut Vec<SchemaProblem>,
) {
    let own_path = error.instance_path().as_str().to_string();
    let type_mismatch = |errors: &Vec<ValidationError<'static>>| {
        errors.iter().any(|e| {
            e.instance_path().as_str() == own_path
                && matches!(e.kind(), ValidationErrorKind::Type { .. })
        })
    };
    if let Some(allowed) = constant_choices(context, &own_path) {
        out.push(SchemaProblem {
            path: instance_path(error),
            at_key: false,
            message: format!(
                "{} is not one of {}",
                short(error.instance()),
                allowed.join(", ")
            ),
        });
        return;
    }
    let fitting: Vec<&Vec<ValidationError<'static>>> = context
        .iter()
        .filter(|errors| !type_mismatch(errors))
        .collect();
    if let [errors] = fitting.as_slice() {
        for inner in errors.iter() {
            explain(schema, inner, out);
        }
        return;
    }
    let mut accepted: Vec<String> = context
        .iter()
        .flat_map(|errors| errors.iter())
        .filter(|e| e.instance_path().as_str() == own_path)
        .filter_map(|e| match e.kind() {
            ValidationErrorKind::Type { kind } => Some(type_names(kind)),
            _ => None,
        })
        .collect();
    accepted.sort();
    accepted.dedup();
    let message = if accepted.is_empty() {
        error.to_string()
    } else {
        format!(
            "expected {}, found {}",
            accepted.join(" or "),
            json_type(error.instance())
        )
    };
    out.push(SchemaProblem {
        path: instance_path(error),
        at_key: false,
        message,
    });
}

/// An enum whose variants carry descriptions is a `oneOf` of constants; its
/// failure reads best as the list of allowed values.
fn constant_choices(
    context: &[Vec<ValidationError<'static>>],
    own_path: &str,
) -> Option<Vec<String>> {
    let mut allowed = Vec::new();
    for errors in context {
        let [only] = errors.as_slice() else {
            return None;
        };
        if only.instance_path().as_str() != own_path {
            return None;
        }
        match only.kind() {
            ValidationErrorKind::Constant { expected_value } => {
                allowed.push(
                    expected_value
                        .as_str()
                        .map_or_else(|| expected_value.to_string(), str::to_string),
                );
            }
            ValidationErrorKind::Enum { options } => allowed.push(list_options(options)),
            _ => return None,
        }
    }
    (!allowed.is_empty()).then_some(allowed)
}

/// The schema object that holds the failing keyword.
fn subschema_at<'s>(schema: &'s Value, error: &ValidationError<'_>) -> Option<&'s Value> {
    let pointer = error.schema_path().as_str();
    let parent = &pointer[..pointer.rfind('/')?];
    schema.pointer(parent)
}

/// "duration (expected e.g. 500ms, 10s)" from a subschema's title and examples.
fn hint_for(subschema: &Value) -> Option<String> {
    let title = subschema.get("title")?.as_str()?.to_lowercase();
    let examples: Vec<&str> = subschema
        .get("examples")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    Some(format!(
        "{title} (expected a value such as {})",
        examples.join(", ")
    ))
}

/// The field names allowed where an unknown one was found.
fn known_properties(schema: &Value, error: &ValidationError<'_>) -> Vec<String> {
    subschema_at(schema, error)
        .and_then(|sub| sub.get("properties"))
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

fn list_options(options: &Value) -> String {
    match options.as_array() {
        Some(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map_or_else(|| item.to_string(), str::to_string)
            })
            .collect::<Vec<_>>()
            .join(", "),
        None => options.to_string(),
    }
}

fn type_names(kind: &TypeKind) -> String {
    let name = |t: &jsonschema::JsonType| match t.to_string().as_str() {
        "object" => "a mapping".to_string(),
        "array" => "a list".to_string(),
        "null" => "nothing".to_string(),
        "integer" => "an integer".to_string(),
        other => format!("a {other}"),
    };
    match kind {
        TypeKind::Single(t) => name(t),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| name(&t))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanized_titles_read_as_words() {
        assert_eq!(humanize("imagePullPolicy"), "Image pull policy");
        assert_eq!(humanize("hostIP"), "Host IP");
        assert_eq!(humanize("name"), "Name");
    }

    #[test]
    fn every_property_has_a_title_and_a_description() {
        fn walk(value: &Value, path: &str, missing: &mut Vec<String>) {
            if let Value::Object(map) = value {
                if let Some(Value::Object(properties)) = map.get("properties") {
                    for (name, property) in properties {
                        let has = |k: &str| {
                            property
                                .get(k)
                                .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                        };
                        let documented = has("title") && has("description");
                        if !documented && !path.contains("/if") {
                            missing.push(format!("{path}/{name}"));
                        }
                    }
                }
                for (key, child) in map {
                    walk(child, &format!("{path}/{key}"), missing);
                }
            } else if let Value::Array(items) = value {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}/{i}"), missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&generate(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "properties without title or description: {missing:?}"
        );
    }

    #[test]
    fn a_valid_container_passes() {
        let doc = json!({"apiVersion": "berth/v1", "kind": "Container", "metadata": {"name": "web"}, "spec": {"image": "busybox"}});
        assert_eq!(check(&doc), vec![]);
    }

    #[test]
    fn enum_errors_list_the_allowed_values() {
        let doc = json!({"apiVersion": "berth/v1", "kind": "Container", "metadata": {"name": "web"},
            "spec": {"image": "busybox", "restart": {"policy": "sometimes"}}});
        let problems = check(&doc);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].message,
            "\"sometimes\" is not one of always, on-failure, never, unless-stopped"
        );
        assert_eq!(
            crate::manifest::diagnostic::render_path(&problems[0].path),
            "spec.restart.policy"
        );
    }

    #[test]
    fn unknown_fields_suggest_the_close_one() {
        let doc = json!({"apiVersion": "berth/v1", "kind": "Container", "metadata": {"name": "web"},
            "spec": {"image": "busybox", "imagePullPolcy": "Always"}});
        let problems = check(&doc);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].at_key);
        assert!(
            problems[0]
                .message
                .contains("did you mean \"imagePullPolicy\""),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn errors_inside_optional_fields_are_reported_precisely() {
        let doc = json!({"apiVersion": "berth/v1", "kind": "Container", "metadata": {"name": "web"},
            "spec": {"image": "busybox", "healthcheck": {"exec": ["true"], "interval": "5 parsecs"}}});
        let problems = check(&doc);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            crate::manifest::diagnostic::render_path(&problems[0].path),
            "spec.healthcheck.interval"
        );
        assert!(
            problems[0].message.contains("not a valid duration"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn unknown_kind_is_one_error() {
        let doc = json!({"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": "web"}});
        let problems = check(&doc);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0]
            .message
            .contains("Container, Job, Network, Volume"));
    }
}
