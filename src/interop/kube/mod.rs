//! `berth export kubernetes`: a validated berth set as Kubernetes objects.
//!
//! Every object is built from k8s-openapi's types, so what comes out is
//! well-formed by construction (the field names, nesting and types are the
//! API's own); what the API server would refuse on values (a name, a
//! label) is checked here. What has no counterpart in Kubernetes is not
//! dropped silently: it is a warning pointing at the manifest's
//! `file:line:col`, as validation's diagnostics do.
//!
//! The mapping, object by object:
//!
//! - Container -> Deployment (one replica; `Recreate` when it mounts a
//!   volume), or a bare Pod with [`ExportOptions::pods`]; its published ports
//!   -> a ClusterIP Service of the same name.
//! - Job -> batch/v1 Job; a scheduled Job -> CronJob (in UTC, as berth reads
//!   schedules).
//! - Volume -> PersistentVolumeClaim of [`ExportOptions::volume_size`].
//! - Network -> a NetworkPolicy when `internal`, a warning otherwise.
//! - env files -> a ConfigMap, and a Secret for the variables whose names
//!   look secret, both read through `envFrom`.
//!
//! Pure: manifests in, objects out. The one thing read from outside, the
//! env files' text, comes through [`Files`].

mod env;
mod names;
mod network;
mod object;
mod pod;
mod probe;
mod storage;
mod workload;

use std::path::{Path, PathBuf};

pub use object::KubeObject;

use crate::manifest::diagnostic::PathSegment;
use crate::manifest::{Diagnostic, Located, ManifestSet, Object};

/// The image an init container waits for dependencies with: it needs `sh`,
/// `nc` and `sleep`, which busybox has.
pub const DEFAULT_WAIT_IMAGE: &str = "busybox:1.36";

/// What a PersistentVolumeClaim asks for: berth's volumes have no size.
pub const DEFAULT_VOLUME_SIZE: &str = "1Gi";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{manifest}: cannot read env file {}: {source}", path.display())]
    EnvFile {
        manifest: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--volume-size {size:?} is not a Kubernetes quantity (such as 1Gi or 500Mi)")]
    VolumeSize { size: String },
    #[error("--wait-image must name an image")]
    WaitImage,
}

/// Reads the files a manifest names (env files), given as absolute paths.
pub trait Files {
    fn read(&self, path: &Path) -> std::io::Result<String>;
}

/// How to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Containers become bare Pods (keeping `never` and `on-failure`
    /// restart policies) instead of Deployments.
    pub pods: bool,
    /// The image of the init containers that wait for dependencies.
    pub wait_image: String,
    /// The storage a PersistentVolumeClaim requests, as a quantity.
    pub volume_size: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            pods: false,
            wait_image: DEFAULT_WAIT_IMAGE.to_string(),
            volume_size: DEFAULT_VOLUME_SIZE.to_string(),
        }
    }
}

/// The objects made, in the order `kubectl apply -f` should create them
/// (claims, configuration and policies before the workloads that use
/// them), and what did not map.
#[derive(Debug, Clone, Default)]
pub struct Export {
    pub objects: Vec<KubeObject>,
    pub warnings: Vec<Diagnostic>,
}

/// Turns a valid set into Kubernetes objects.
pub fn export(
    set: &ManifestSet,
    options: &ExportOptions,
    files: &dyn Files,
) -> Result<Export, KubeError> {
    check_options(options)?;
    let mut out = Output {
        set,
        options,
        files,
        objects: Vec::new(),
        warnings: Vec::new(),
    };
    for located in &set.objects {
        match &located.object {
            Object::Container(manifest) => workload::container(&mut out, located, manifest)?,
            Object::Job(manifest) => workload::job(&mut out, located, manifest)?,
            Object::Volume(manifest) => storage::volume(&mut out, located, manifest),
            Object::Network(manifest) => network::network(&mut out, located, manifest),
        }
    }
    let mut objects = out.objects;
    objects.sort_by_key(KubeObject::apply_rank);
    let mut warnings = out.warnings;
    warnings.sort();
    warnings.dedup();
    Ok(Export { objects, warnings })
}

fn check_options(options: &ExportOptions) -> Result<(), KubeError> {
    if names::parse_quantity_bytes(&options.volume_size).is_none() {
        return Err(KubeError::VolumeSize {
            size: options.volume_size.clone(),
        });
    }
    if options.wait_image.trim().is_empty() {
        return Err(KubeError::WaitImage);
    }
    Ok(())
}

/// What an export gathers as it walks the set.
struct Output<'a> {
    set: &'a ManifestSet,
    options: &'a ExportOptions,
    files: &'a dyn Files,
    objects: Vec<KubeObject>,
    warnings: Vec<Diagnostic>,
}

impl Output<'_> {
    /// A warning about the field at `path` of `located`'s document.
    fn warn(&mut self, located: &Located, path: &[PathSegment], message: impl Into<String>) {
        self.warnings.push(located.problem(path, message));
    }

    /// The object of `kind` named `name` in the set.
    fn find(&self, name: &str, kind: crate::manifest::Kind) -> Option<&Located> {
        self.set
            .objects
            .iter()
            .find(|l| l.object.kind() == kind && l.object.name() == name)
    }
}

/// A field path from its parts: `at(&["spec", "ports"])`.
fn at(keys: &[&str]) -> Vec<PathSegment> {
    keys.iter().map(|k| PathSegment::from(*k)).collect()
}

#[cfg(test)]
mod tests;
