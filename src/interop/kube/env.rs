//! The environment: `env` stays a list of variables; `envFiles` are read
//! and become a ConfigMap (and a Secret for the variables whose names look
//! secret) that the container reads whole with `envFrom`. Kubernetes gives
//! `env` precedence over `envFrom` and a later file over an earlier one,
//! as berth does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, EnvFromSource, EnvVar, EnvVarSource, ObjectFieldSelector,
    Secret, SecretEnvSource,
};

use super::object::{meta, KubeObject};
use super::pod::Template;
use super::{KubeError, Output};
use crate::manifest::diagnostic::PathSegment;

/// Parts of a variable's name that say its value is a secret.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
    "AUTH",
];

/// The annotation Kubernetes puts an Indexed Job pod's index in.
const COMPLETION_INDEX_FIELD: &str =
    "metadata.annotations['batch.kubernetes.io/job-completion-index']";

/// The container's environment: the manifest's `env` (plus
/// `BERTH_JOB_INDEX` for an Indexed Job) and the `envFrom` of its env files.
pub struct Environment {
    pub env: Vec<EnvVar>,
    pub env_from: Vec<EnvFromSource>,
}

pub fn environment(
    out: &mut Output,
    template: &Template,
    indexed_job: bool,
) -> Result<Environment, KubeError> {
    let mut env: Vec<EnvVar> = template
        .spec
        .env
        .iter()
        .flat_map(|vars| vars.pairs())
        .map(|(name, value)| EnvVar {
            name: name.to_string(),
            value: Some(value.to_string()),
            value_from: None,
        })
        .collect();
    if indexed_job {
        // berth gives each run its index here; Kubernetes keeps it in an
        // annotation (and JOB_COMPLETION_INDEX), so the name keeps working.
        env.push(EnvVar {
            name: "BERTH_JOB_INDEX".to_string(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: COMPLETION_INDEX_FIELD.to_string(),
                }),
                ..EnvVarSource::default()
            }),
        });
    }
    let env_from = env_files(out, template)?;
    Ok(Environment { env, env_from })
}

/// Reads the env files into one ConfigMap and one Secret named
/// `NAME-env`, merged in order (a later file wins, as in berth).
fn env_files(out: &mut Output, template: &Template) -> Result<Vec<EnvFromSource>, KubeError> {
    let mut plain = BTreeMap::new();
    let mut secret = BTreeMap::new();
    for (index, file) in template.spec.env_files.iter().enumerate() {
        let path = template.located.base_dir.join(file);
        let text = out.files.read(&path).map_err(|source| KubeError::EnvFile {
            manifest: template.located.file.clone(),
            path: path.clone(),
            source,
        })?;
        let field = template.path(&[PathSegment::from("envFiles"), PathSegment::Index(index)]);
        let mut secret_names = Vec::new();
        for (name, value) in crate::manifest::env_file::parse(&text) {
            if !is_config_key(&name) {
                out.warn(
                    template.located,
                    &field,
                    format!("{name:?} in {file} is not a valid environment variable name for Kubernetes and is left out"),
                );
                continue;
            }
            if looks_secret(&name) {
                plain.remove(&name);
                secret_names.push(name.clone());
                secret.insert(name, value);
            } else {
                secret.remove(&name);
                plain.insert(name, value);
            }
        }
        if !secret_names.is_empty() {
            out.warn(
                template.located,
                &field,
                format!(
                    "{} from {file} look secret: they go into Secret {}-env, whose stringData holds them in clear text in this output (keep it out of version control, or create the Secret another way)",
                    secret_names.join(", "),
                    template.name
                ),
            );
        }
    }
    let name = format!("{}-env", template.name);
    let mut sources = Vec::new();
    if !plain.is_empty() {
        out.objects.push(KubeObject::ConfigMap(ConfigMap {
            metadata: meta(&name, template.labels.clone(), BTreeMap::new()),
            data: Some(plain),
            ..ConfigMap::default()
        }));
        sources.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: name.clone(),
                optional: None,
            }),
            ..EnvFromSource::default()
        });
    }
    if !secret.is_empty() {
        out.objects.push(KubeObject::Secret(Secret {
            metadata: meta(&name, template.labels.clone(), BTreeMap::new()),
            string_data: Some(secret),
            type_: Some("Opaque".to_string()),
            ..Secret::default()
        }));
        sources.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name,
                optional: None,
            }),
            ..EnvFromSource::default()
        });
    }
    Ok(sources)
}

/// Whether a variable's name says it holds a secret (`DB_PASSWORD`, `API_KEY`).
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| upper.contains(word))
}

/// ConfigMap and Secret keys: letters, digits, `-`, `_` and `.`.
fn is_config_key(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        assert!(looks_secret("DB_PASSWORD"));
        assert!(looks_secret("api_key"));
        assert!(!looks_secret("LOG_LEVEL"));
    }
}
