//! Actual state, rebuilt from disk on every pass (as containerd rebuilds its
//! shims from their bundle directories): container records checked against
//! their shims' status files, the image store, the network store and the
//! volume directories.

use std::collections::BTreeSet;

use super::desired::ImageResolver;
use super::plan::{Actual, ActualContainer, ActualShared, Observed};
use crate::image::Images;
use crate::manifest::{Kind, MountType};
use crate::runtime::container::{ContainerError, Origin, Runtime};
use crate::runtime::state::HealthState;

impl ImageResolver for Images {
    fn manifest_digest(&self, image_name: &str) -> Option<String> {
        self.records
            .get_exact(image_name)
            .ok()
            .flatten()
            .map(|r| r.manifest.to_string())
    }
}

/// What exists on this host now.
pub fn observe(runtime: &Runtime) -> Result<Actual, ContainerError> {
    let images: BTreeSet<String> = runtime
        .images
        .records
        .list()
        .map(|records| records.into_iter().map(|r| r.name).collect())
        .unwrap_or_default();
    let mut containers = Vec::new();
    for record in runtime.records()? {
        let view = runtime.view(&record);
        let status = view.status.as_ref();
        let observed = match view.state.as_str() {
            // Its shim was told to stop (by `berth stop`, or by a removal
            // that a kill interrupted): it is on its way out, and exits
            // when the grace period ends, whatever it shows until then.
            "running" | "restarting" | "created" if status.is_some_and(|s| s.stopped) => {
                Observed::Exited {
                    code: None,
                    stopped: true,
                }
            }
            "running" => Observed::Running,
            "restarting" => Observed::Restarting,
            "created" => Observed::Created,
            "exited" => Observed::Exited {
                code: status
                    .and_then(|s| s.exit_code)
                    .filter(|_| status.is_some_and(|s| s.signal.is_none())),
                stopped: status.is_some_and(|s| s.stopped),
            },
            _ => Observed::Missing,
        };
        let healthy = status
            .and_then(|s| s.health.as_ref())
            .and_then(|h| match h.state {
                HealthState::Healthy => Some(true),
                HealthState::Unhealthy => Some(false),
                HealthState::Starting => None,
            });
        let mut networks: Vec<String> = runtime
            .networker
            .attachments(&record.id)
            .into_iter()
            .map(|a| a.network)
            .collect();
        networks.sort();
        networks.dedup();
        containers.push(ActualContainer {
            kind: Kind::Container,
            name: record.id.clone(),
            source: match &record.origin {
                Origin::Manifest { source, .. } => Some(source.clone()),
                Origin::Run => None,
            },
            fingerprint: record.fingerprint.clone(),
            observed,
            healthy,
            restart: record.spec.restart.policy,
            networks,
            volumes: record
                .spec
                .mounts
                .iter()
                .filter(|m| m.kind == MountType::Volume)
                .filter_map(|m| m.source.clone())
                .collect(),
        });
    }
    let networks = runtime
        .networks
        .list()
        .map_err(|e| ContainerError::Invalid {
            id: String::new(),
            message: e.to_string(),
        })?
        .into_iter()
        .filter(|n| n.source.is_some())
        .map(|n| ActualShared {
            name: n.name,
            source: n.source,
            fingerprint: n.fingerprint,
        })
        .collect();
    let volumes = std::fs::read_dir(runtime.paths.root.join("volumes"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    // Volumes made by `berth run -v` have no record: nobody's to prune.
                    let record: Option<super::execute::VolumeRecord> =
                        std::fs::read(e.path().join("volume.json"))
                            .ok()
                            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
                    ActualShared {
                        name,
                        source: record.as_ref().and_then(|r| r.source.clone()),
                        fingerprint: record.and_then(|r| r.fingerprint),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Actual {
        images,
        containers,
        networks,
        volumes,
    })
}
