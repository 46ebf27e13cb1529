//! Volumes and mounts: a Volume becomes a PersistentVolumeClaim; a
//! container's mounts become the pod's volumes (a claim, a hostPath, an
//! in-memory emptyDir) and the container's volumeMounts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, HostPathVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::object::{labels_and_annotations, meta, KubeObject};
use super::pod::Template;
use super::{at, names, Output};
use crate::manifest::diagnostic::PathSegment;
use crate::manifest::{Located, MountType, VolumeManifest};

/// A Volume: a claim of the export's default size, which the warning names
/// (berth's volumes have no size; their data is not carried over).
pub fn volume(out: &mut Output, located: &Located, manifest: &VolumeManifest) {
    let mut labels = manifest.metadata.labels.clone();
    labels.extend(manifest.spec.labels.clone());
    let (labels, annotations) =
        labels_and_annotations(out, located, &["metadata", "labels"], &labels);
    let size = out.options.volume_size.clone();
    out.warn(
        located,
        &at(&["metadata", "name"]),
        format!(
            "volume {} becomes a PersistentVolumeClaim asking for {size} (berth volumes have no size: set --volume-size or edit resources.requests.storage; its data is not copied)",
            manifest.metadata.name
        ),
    );
    out.objects
        .push(KubeObject::PersistentVolumeClaim(PersistentVolumeClaim {
            metadata: meta(&manifest.metadata.name, labels, annotations),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_string()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_string(), Quantity(size))])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        }));
}

/// What a container's mounts make: the pod's volumes and the container's mounts.
#[derive(Debug, Default)]
pub struct Mounts {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    /// Whether a claim is mounted: a Deployment then replaces its pod with
    /// `Recreate`, since a ReadWriteOnce claim cannot be in two pods at once.
    pub has_claim: bool,
}

pub fn mounts(out: &mut Output, template: &Template) -> Mounts {
    let mut made = Mounts::default();
    for (index, mount) in template.spec.mounts.iter().enumerate() {
        let path = template.path(&[PathSegment::from("mounts"), PathSegment::Index(index)]);
        let name = match mount.kind {
            MountType::Volume => {
                let claim = mount.source.clone().unwrap_or_default();
                made.has_claim = true;
                if !made.volumes.iter().any(|v| v.name == claim) {
                    made.volumes.push(Volume {
                        name: claim.clone(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: claim.clone(),
                            read_only: None,
                        }),
                        ..Volume::default()
                    });
                }
                unknown_options(out, template.located, &path, &mount.options, &[]);
                claim
            }
            MountType::Bind => {
                let name = format!("bind-{index}");
                let source = mount.source.clone().unwrap_or_default();
                let host = names::host_path(&template.located.base_dir, &source);
                out.warn(
                    template.located,
                    &path,
                    format!(
                        "bind mount of {host} becomes a hostPath volume: it reads that path on whichever node runs the pod, and most clusters' Pod Security refuses hostPath; prefer a ConfigMap (read-only files) or a PersistentVolumeClaim"
                    ),
                );
                made.volumes.push(Volume {
                    name: name.clone(),
                    host_path: Some(HostPathVolumeSource {
                        path: host,
                        type_: None,
                    }),
                    ..Volume::default()
                });
                unknown_options(out, template.located, &path, &mount.options, &["ro", "rw"]);
                name
            }
            MountType::Tmpfs => {
                let name = format!("tmpfs-{index}");
                let size = mount
                    .options
                    .iter()
                    .find_map(|o| o.strip_prefix("size="))
                    .and_then(names::tmpfs_size);
                made.volumes.push(Volume {
                    name: name.clone(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        medium: Some("Memory".to_string()),
                        size_limit: size.map(|bytes| Quantity(names::bytes_quantity(bytes))),
                    }),
                    ..Volume::default()
                });
                unknown_options(out, template.located, &path, &mount.options, &["size="]);
                name
            }
        };
        made.mounts.push(VolumeMount {
            name,
            mount_path: mount.target.clone(),
            read_only: mount.read_only.then_some(true),
            ..VolumeMount::default()
        });
    }
    made
}

/// Mount options have no counterpart in a volumeMount, except those
/// `known` (an exact option, or a prefix ending in `=`).
fn unknown_options(
    out: &mut Output,
    located: &Located,
    path: &[PathSegment],
    options: &[String],
    known: &[&str],
) {
    let unknown: Vec<&str> = options
        .iter()
        .map(String::as_str)
        .filter(|o| {
            !known
                .iter()
                .any(|k| *o == *k || (k.ends_with('=') && o.starts_with(k)))
        })
        .collect();
    if !unknown.is_empty() {
        let mut options_path = path.to_vec();
        options_path.push(PathSegment::from("options"));
        out.warn(
            located,
            &options_path,
            format!(
                "mount options {} have no counterpart in a Kubernetes volumeMount and are left out",
                unknown.join(", ")
            ),
        );
    }
}
