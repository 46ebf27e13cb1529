//! One exported Kubernetes object, typed.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::{at, names, Output};
use crate::manifest::Located;

/// A Kubernetes object; it serializes with its `apiVersion` and `kind`.
// An export holds a handful of objects, built once: boxing the larger
// variants would save nothing worth the noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum KubeObject {
    PersistentVolumeClaim(PersistentVolumeClaim),
    ConfigMap(ConfigMap),
    Secret(Secret),
    NetworkPolicy(NetworkPolicy),
    Service(Service),
    Deployment(Deployment),
    Pod(Pod),
    Job(Job),
    CronJob(CronJob),
}

impl KubeObject {
    pub fn kind(&self) -> &'static str {
        match self {
            KubeObject::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            KubeObject::ConfigMap(_) => "ConfigMap",
            KubeObject::Secret(_) => "Secret",
            KubeObject::NetworkPolicy(_) => "NetworkPolicy",
            KubeObject::Service(_) => "Service",
            KubeObject::Deployment(_) => "Deployment",
            KubeObject::Pod(_) => "Pod",
            KubeObject::Job(_) => "Job",
            KubeObject::CronJob(_) => "CronJob",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            KubeObject::PersistentVolumeClaim(o) => &o.metadata,
            KubeObject::ConfigMap(o) => &o.metadata,
            KubeObject::Secret(o) => &o.metadata,
            KubeObject::NetworkPolicy(o) => &o.metadata,
            KubeObject::Service(o) => &o.metadata,
            KubeObject::Deployment(o) => &o.metadata,
            KubeObject::Pod(o) => &o.metadata,
            KubeObject::Job(o) => &o.metadata,
            KubeObject::CronJob(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The file `-o DIR` writes it to: `deployment-web.yaml`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.yaml", self.kind().to_ascii_lowercase(), self.name())
    }

    /// Objects that others use come first, so that one `kubectl apply -f`
    /// of the whole stream finds every claim and config map it needs.
    pub fn apply_rank(&self) -> u8 {
        match self {
            KubeObject::PersistentVolumeClaim(_) => 0,
            KubeObject::ConfigMap(_) | KubeObject::Secret(_) => 1,
            KubeObject::NetworkPolicy(_) => 2,
            KubeObject::Service(_) => 3,
            KubeObject::Deployment(_)
            | KubeObject::Pod(_)
            | KubeObject::Job(_)
            | KubeObject::CronJob(_) => 4,
        }
    }
}

/// Metadata with a name and labels.
pub fn meta(
    name: &str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: (!labels.is_empty()).then_some(labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    }
}

/// A berth object's labels as Kubernetes labels; the ones Kubernetes would
/// refuse (berth's labels are free-form) become annotations, with a warning
/// at `path`.
pub(super) fn labels_and_annotations(
    out: &mut Output,
    located: &Located,
    path: &[&str],
    labels: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let (valid, other): (BTreeMap<_, _>, BTreeMap<_, _>) = labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, v)| names::is_label_key(k) && names::is_label_value(v));
    if !other.is_empty() {
        let keys: Vec<&str> = other.keys().map(String::as_str).collect();
        out.warn(
            located,
            &at(path),
            format!(
                "labels {} are not valid Kubernetes labels (keys: [prefix/]name, values: at most 63 letters, digits, '-', '_', '.'): they become annotations, which selectors cannot use",
                keys.join(", ")
            ),
        );
    }
    (valid, other)
}
