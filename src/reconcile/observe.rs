//! Actual state, rebuilt from disk on every pass (as containerd rebuilds its
//! shims from their bundle directories): container records checked against
//! their shims' status files, the image store, the network store and the
//! volume directories.

use std::collections::BTreeSet;

use super::conflicts::{self, Claim, NetworkPlaces, Owner};
use super::desired::ImageResolver;
use super::jobs::controller::Seen;
use super::outcome::Exit;
use super::plan::{Actual, ActualContainer, ActualJob, ActualShared, Observed};
use crate::engine::volume::Volume;
use crate::engine::{ContainerRecord, Engine, EngineError, Origin};
use crate::manifest::reference::canonical_name;
use crate::manifest::{Kind, MountType, NetworkMode, RestartPolicy};
use crate::network::store::NetworkRecord;
use crate::runtime::container_dir::{ContainerState, HealthState, Status};
use crate::state::clock::unix_ms;

impl ImageResolver for Engine {
    fn manifest_digest(&self, image_name: &str) -> Option<String> {
        self.image_digest(image_name)
    }
}

/// What a container is when no live shim vouches for it. A status left by
/// a shim that died says it ran: its exit is unknown (apply settles it, see
/// [`Engine::settle_lost_shim`]). With no status either (a reboot emptied
/// `--state`), the record says whether it ran and whether a user stopped
/// it: a `never` or `on-failure` container that ran is not run again, and
/// one stopped on request stays stopped.
fn unknown_container(record: &ContainerRecord, status: Option<&Status>) -> Observed {
    let stopped = record.stopped.is_some() || status.is_some_and(|s| s.stopped);
    let ran_once = matches!(
        record.spec.restart.policy,
        RestartPolicy::Never | RestartPolicy::OnFailure
    ) && record.started_unix_ms.is_some();
    if status.is_some() || stopped || ran_once {
        Observed::Exited {
            code: None,
            stopped,
        }
    } else {
        Observed::Missing
    }
}

/// How deeply to look.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveOptions {
    /// Run CNI CHECK on every live container's attachments (the resync);
    /// it execs the plugins, so the apply loop does it once, not per pass.
    pub check_networks: bool,
}

/// What exists on this host now.
pub fn observe(engine: &Engine, options: ObserveOptions) -> Result<Actual, EngineError> {
    // Each record under its name and its canonical name: a record named
    // before names were normalized (`mybusybox`) is present for a manifest's
    // `image: mybusybox`, which the planner names canonically.
    let images: BTreeSet<String> = engine
        .images
        .records
        .list()
        .map(|records| {
            records
                .into_iter()
                .flat_map(|r| [canonical_name(&r.name), r.name])
                .collect()
        })
        .unwrap_or_default();
    let records = engine.records()?;
    let mut containers = Vec::new();
    let mut attempts = Vec::new();
    let mut lost_shims = Vec::new();
    for record in &records {
        let view = engine.view(record);
        if view.shim_lost {
            lost_shims.push(record.id.to_string());
        }
        let status = view.status.as_ref();
        let observed = match view.state {
            // Its shim was told to stop (by `berth stop`, or by a removal
            // that a kill interrupted): it is on its way out, and exits
            // when the grace period ends, whatever it shows until then.
            state if state.is_live() && status.is_some_and(|s| s.stopped) => Observed::Exited {
                code: None,
                stopped: true,
            },
            ContainerState::Running => Observed::Running,
            ContainerState::Restarting => Observed::Restarting,
            ContainerState::Created => Observed::Created,
            ContainerState::Exited => Observed::Exited {
                code: status
                    .and_then(|s| s.exit_code)
                    .filter(|_| status.is_some_and(|s| s.signal.is_none())),
                stopped: status.is_some_and(|s| s.stopped),
            },
            ContainerState::Unknown => unknown_container(record, status),
        };
        let failing_checks = view.health().map_or(0, |h| h.failing_streak);
        let healthy = view.health().and_then(|h| match h.state {
            HealthState::Healthy => Some(true),
            HealthState::Unhealthy => Some(false),
            HealthState::Starting => None,
        });
        if let Origin::Job { job, .. } = &record.origin {
            attempts.push((
                job.clone(),
                record.id.to_string(),
                seen_of(&observed, status),
            ));
            continue;
        }
        // Only a bridge-mode container joins CNI networks: the others have
        // no attachment to look up (a cache read per container).
        let networks = if record.spec.network_mode == NetworkMode::Bridge {
            engine.attached_networks(&record.id)
        } else {
            Vec::new()
        };
        containers.push(ActualContainer {
            kind: Kind::Container,
            name: record.id.to_string(),
            source: record.origin.source().map(str::to_string),
            fingerprint: record.fingerprint.clone(),
            observed,
            healthy,
            failing_checks,
            restart: record.spec.restart.policy,
            running_for_ms: status
                .filter(|_| view.state == ContainerState::Running)
                .and_then(|s| s.started_unix_ms)
                .map(|started| unix_ms().saturating_sub(started)),
            fault: if view.is_running() {
                engine.plumbing_fault(record, options.check_networks)
            } else {
                view.unreadable_status.clone()
            },
            last_exit: status.and_then(last_exit),
            start_error: status.and_then(|s| s.start_error_reason()),
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
    let network_records = engine
        .networks
        .list()
        .map_err(|e| EngineError::NetworkStore(Box::new(e)))?;
    // The built-in default has no source: nobody's to replace or prune.
    let networks = network_records
        .iter()
        .filter_map(|n| {
            Some(ActualShared {
                name: n.name.clone(),
                source: Some(n.source.clone()?),
                fingerprint: n.fingerprint.clone(),
            })
        })
        .collect();
    let volume_list = engine.volumes().list();
    let volumes = volume_list
        .iter()
        .map(|volume| ActualShared {
            name: volume.name.clone(),
            source: volume.record.as_ref().and_then(|r| r.source.clone()),
            fingerprint: volume.record.as_ref().and_then(|r| r.fingerprint.clone()),
        })
        .collect();
    let unknown_owners = volume_list
        .iter()
        .filter_map(|v| Some((v.name.clone(), v.unknown_owner()?)))
        .collect();
    Ok(Actual {
        images,
        containers,
        networks,
        volumes,
        claims: claims_of(&records, &network_records, &volume_list),
        unknown_owners,
        lost_shims,
        jobs: jobs_of(engine, attempts),
    })
}

/// What an attempt's container did, for the Job controller.
fn seen_of(observed: &Observed, status: Option<&Status>) -> Seen {
    let restarts = status.map_or(0, |s| s.restarts);
    match observed {
        Observed::Created => Seen::Starting,
        Observed::Running | Observed::Restarting => Seen::Running { restarts },
        Observed::Exited { code, stopped } => Seen::Exited {
            code: *code,
            restarts,
            stopped: *stopped,
        },
        Observed::Missing => Seen::Missing,
    }
}

/// Every Job berth keeps a record of, with its attempts' containers; an
/// attempt whose Job has no record (it was quarantined) still shows, so
/// that it is removed with the Job.
fn jobs_of(engine: &Engine, attempts: Vec<(String, String, Seen)>) -> Vec<ActualJob> {
    let store = crate::reconcile::jobs::record::store(&engine.paths);
    let mut jobs: Vec<ActualJob> = store
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|record| ActualJob {
            name: record.name.clone(),
            source: Some(record.source.clone()),
            record: Some(record),
            attempts: Vec::new(),
        })
        .collect();
    for (job, id, seen) in attempts {
        let index = match jobs.iter().position(|j| j.name == job) {
            Some(index) => index,
            None => {
                jobs.push(ActualJob {
                    name: job,
                    source: None,
                    record: None,
                    attempts: Vec::new(),
                });
                jobs.len() - 1
            }
        };
        jobs[index].attempts.push((id, seen));
    }
    jobs
}

/// How the container's last run ended, as its shim recorded it.
fn last_exit(status: &Status) -> Option<Exit> {
    match (status.signal, status.exit_code) {
        (Some(signal), _) => Some(Exit::Signal(signal)),
        (None, Some(code)) => Some(Exit::Code(code)),
        (None, None) => None,
    }
}

/// What the host holds now, for [`conflicts::find`], read afresh (as `berth
/// run` needs it; the reconcile loop takes it from [`Actual::claims`]).
pub fn claims(engine: &Engine) -> Result<Vec<Claim>, EngineError> {
    let networks = engine
        .networks
        .list()
        .map_err(|e| EngineError::NetworkStore(Box::new(e)))?;
    Ok(claims_of(
        &engine.records()?,
        &networks,
        &engine.volumes().list(),
    ))
}

/// Each container's name and published host ports (exited ones too: their
/// port mappings stay until they are removed), each network's name, subnet
/// and bridge (the built-in `default` too, unless a record replaces it),
/// and the names of volumes a manifest set made. A volume that `berth run
/// -v` made is nobody's.
fn claims_of(
    records: &[ContainerRecord],
    networks: &[NetworkRecord],
    volumes: &[Volume],
) -> Vec<Claim> {
    let mut claims = Vec::new();
    for record in records {
        let (owner, place) = match &record.origin {
            Origin::Manifest { source, file, line } => (
                Owner::Set(source.clone()),
                conflicts::record_place(Some(file), *line),
            ),
            Origin::Job { source, file, .. } => (
                Owner::Set(source.clone()),
                conflicts::record_place(Some(file), None),
            ),
            Origin::Run => (Owner::Run, None),
        };
        claims.extend(conflicts::container_claims(
            &record.id,
            record.spec.network_mode,
            &record.spec.ports,
            &owner,
            place,
        ));
    }
    for network in networks {
        let owner = network.source.clone().map_or(Owner::BuiltIn, Owner::Set);
        let place = conflicts::record_place(network.file.as_deref(), network.line);
        claims.push(conflicts::name_claim(
            Kind::Network,
            &network.name,
            &owner,
            place.clone(),
        ));
        let places = NetworkPlaces {
            subnet: place.clone(),
            bridge: place,
        };
        claims.extend(conflicts::network_claims(
            &network.name,
            &network.spec,
            &owner,
            places,
        ));
    }
    for volume in volumes {
        let Some(record) = &volume.record else {
            continue;
        };
        let Some(source) = &record.source else {
            continue;
        };
        claims.push(conflicts::name_claim(
            Kind::Volume,
            &volume.name,
            &Owner::Set(source.clone()),
            conflicts::record_place(record.file.as_deref(), record.line),
        ));
    }
    claims
}
