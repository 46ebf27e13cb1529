//! Starting a container that exited (`berth start`, and `berth restart`
//! after its stop): the same container again, from its record.
//!
//! When everything its last run stood on is still in place (the runtime
//! directory with its bundle and shim config, the rootfs mounted, the
//! pinned network namespace), a new shim runs it in place: its writable
//! layer, its logs and its network addresses are kept, as `docker start`
//! keeps them. When they are gone (a reboot emptied `--state`) or broken,
//! it is created again from its record as `apply` repairs a container:
//! the same spec, image, origin and fingerprint, made ready before what is
//! left of the old one is removed, and starting afresh (a new writable
//! layer, no old logs).

use std::time::Duration;

use super::create::CreateRequest;
use super::record::{ContainerRecord, Origin};
use super::{Engine, EngineError};
use crate::image::{ImageSource, Progress};
use crate::manifest::names::ContainerId;
use crate::manifest::PullPolicy;
use crate::runtime::container_dir::{ContainerState, LogConfig};

/// What `start` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Its shim looks after it already (running, restarting or created):
    /// nothing was done.
    AlreadyLive(ContainerState),
    /// A new shim runs it on what its last run left in place.
    InPlace,
    /// It was created again from its record.
    Recreated,
}

impl Engine {
    /// Starts container `id` again if no shim looks after it, and clears
    /// the stop a user asked for. A Job's attempt is refused: its Job
    /// decides when attempts run.
    pub fn start(&self, id: &ContainerId, progress: &dyn Progress) -> Result<Started, EngineError> {
        let mut record = self.startable(id)?;
        let view = self.view(&record);
        if view.state.is_live() {
            return Ok(Started::AlreadyLive(view.state));
        }
        if view.shim_lost {
            // Whatever the runtime still runs of it goes, and its exit is
            // recorded, before anything starts it again.
            self.settle_lost_shim(id)?;
        }
        self.let_the_last_shim_finish(id);
        if record.stopped.take().is_some() {
            self.rewrite_record(&record, false)?;
        }
        if self.can_start_in_place(&record) {
            self.start_in_place(id)?;
            Ok(Started::InPlace)
        } else {
            self.recreate(&record, progress)?;
            Ok(Started::Recreated)
        }
    }

    /// `berth restart`: stops the container as `berth stop` does (its
    /// stop signal, then SIGKILL after the grace period or `timeout`),
    /// then starts it. One that cannot be started is not stopped either.
    pub fn restart(
        &self,
        id: &ContainerId,
        timeout: Option<Duration>,
        progress: &dyn Progress,
    ) -> Result<Started, EngineError> {
        self.startable(id)?;
        self.stop_on_request(id, timeout)?;
        self.start(id, progress)
    }

    /// Container `id`'s record, unless it is a Job's attempt: its Job
    /// decides when attempts run.
    fn startable(&self, id: &ContainerId) -> Result<ContainerRecord, EngineError> {
        let record = self.record(id)?;
        match &record.origin {
            Origin::Job { job, .. } => Err(EngineError::Invalid {
                id: id.to_string(),
                message: format!(
                    "it is an attempt of Job {job}, which runs its attempts itself \
                     (berth job run {job} starts a new run)"
                ),
            }),
            _ => Ok(record),
        }
    }

    /// A shim that recorded the exit is deleting the runtime's container
    /// (its last act, milliseconds): it is waited for, and killed if it
    /// does not finish (see [`super::stop::SHIM_FINISH_TIMEOUT`]).
    fn let_the_last_shim_finish(&self, id: &str) {
        let dir = self.dir(id);
        let control = self.shim_control(id, &dir);
        if let Some(shim) = control.live_shim() {
            control.await_shim(shim, || {});
        }
    }

    /// Whether what its last run stood on is all there: the bundle and the
    /// shim config, the rootfs mounted and (outside host networking) the
    /// pinned network namespace. A container with a terminal or a stdin
    /// feeder had them from the command that ran it, which is gone: it is
    /// created again without them.
    fn can_start_in_place(&self, record: &ContainerRecord) -> bool {
        let dir = self.dir(&record.id);
        let Ok(Some(shim)) = dir.read_shim_config() else {
            return false;
        };
        !shim.stdin
            && shim.console_socket.is_none()
            && dir.runtime_spec().is_file()
            && self.plumbing_fault(record, false).is_none()
    }

    /// Runs a new shim on the container's runtime directory. The runtime's
    /// container is deleted first, should a killed shim have left it.
    fn start_in_place(&self, id: &str) -> Result<(), EngineError> {
        let dir = self.dir(id);
        let control = self.shim_control(id, &dir);
        if control.runtime.may_have(id) {
            let _ = control.runtime.delete_force(id);
        }
        self.start_shim(id)
    }

    /// Creates the container again from its record: checked first (make
    /// before break), so that a start that cannot work leaves the exited
    /// container and its record as they were.
    fn recreate(
        &self,
        record: &ContainerRecord,
        progress: &dyn Progress,
    ) -> Result<(), EngineError> {
        let request = request_from_record(record)?;
        self.refuse_a_moved_image(record, &request.image)?;
        self.preflight(&request, progress)?;
        self.remove(&record.id, true)?;
        self.create(request, progress).map(drop)
    }

    /// A start never changes a container's image: when its name now
    /// resolves to another manifest (pulled or imported since), the start
    /// is refused rather than run on the other one.
    fn refuse_a_moved_image(
        &self,
        record: &ContainerRecord,
        image: &ImageSource,
    ) -> Result<(), EngineError> {
        if image.rootfs_dir().is_some() {
            return Ok(());
        }
        match self.image_digest(&record.image) {
            Some(now) if now != record.image_manifest => Err(EngineError::Invalid {
                id: record.id.to_string(),
                message: format!(
                    "image {} is now {now}, not {} that it was created from; start does not change \
                     its image (berth apply replaces a manifest's container; berth rm and run \
                     again for another)",
                    record.image, record.image_manifest
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// The request that creates `record`'s container again: its spec, image,
/// origin and fingerprint, the image as found in the store (never
/// fetched), no terminal or stdin (the command that had them is gone).
fn request_from_record(record: &ContainerRecord) -> Result<CreateRequest, EngineError> {
    let invalid = |message: String| EngineError::Invalid {
        id: record.id.to_string(),
        message,
    };
    let base_dir = record.base_dir.clone().ok_or_else(|| {
        invalid(
            "its record predates the one that keeps where its relative paths resolve, and its \
             runtime state is gone: berth apply creates a manifest's container again; berth rm \
             and run again for another"
                .into(),
        )
    })?;
    // The record names the image as the store does (local paths absolute).
    let image = ImageSource::parse(&record.image).map_err(|e| invalid(e.to_string()))?;
    Ok(CreateRequest {
        id: record.id.clone(),
        spec: record.spec.clone(),
        image,
        pull_policy: PullPolicy::Never,
        base_dir,
        origin: record.origin.clone(),
        fingerprint: record.fingerprint.clone(),
        stdin: false,
        berth_env: Vec::new(),
        log: LogConfig::of(record.spec.logging.as_ref()),
        ephemeral: false,
        console_socket: None,
        labels: record.labels.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageRecord, NoProgress};
    use crate::state::Layout;

    const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const NEW: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn record(base_dir: Option<&str>) -> ContainerRecord {
        serde_json::from_value(serde_json::json!({
            "id": "web",
            "image": "oci-layout:/srv/images/busybox:latest",
            "imageManifest": OLD,
            "spec": {"image": "oci-layout:../images/busybox", "restart": {"policy": "always"}},
            "origin": {"kind": "manifest", "source": "/srv/site", "file": "web.yaml"},
            "createdUnixMs": 1,
            "fingerprint": null,
            "baseDir": base_dir,
        }))
        .unwrap()
    }

    #[test]
    fn the_request_keeps_the_records_spec_origin_and_stored_image_and_never_fetches() {
        let record = record(Some("/srv/site"));
        let request = request_from_record(&record).unwrap();
        assert_eq!(request.id, record.id);
        assert_eq!(request.spec, record.spec);
        assert_eq!(request.origin, record.origin);
        assert_eq!(
            request.image.to_string(),
            "oci-layout:/srv/images/busybox:latest"
        );
        assert_eq!(request.pull_policy, PullPolicy::Never);
        assert_eq!(request.base_dir, std::path::PathBuf::from("/srv/site"));
        assert!(!request.stdin && request.console_socket.is_none());
    }

    #[test]
    fn a_record_without_its_base_directory_is_not_guessed_at() {
        let error = request_from_record(&record(None)).err().unwrap();
        assert!(error.to_string().contains("berth apply"), "{error}");
    }

    /// An engine on a temp state with `record` written; no runtime needed.
    fn engine_with(record: &ContainerRecord) -> (tempfile::TempDir, Engine) {
        let temp = tempfile::tempdir().unwrap();
        let layout = Layout::new(&temp.path().join("root"), &temp.path().join("state"));
        let engine = Engine::open_for_reading(&layout, None).unwrap();
        engine.rewrite_record(record, false).unwrap();
        (temp, engine)
    }

    #[test]
    fn a_jobs_attempt_is_neither_started_nor_stopped_by_restart() {
        let mut attempt = record(Some("/srv/site"));
        attempt.origin = Origin::Job {
            source: "/srv/site".into(),
            file: "job.yaml".into(),
            job: "migrate".into(),
            run: 1,
            attempt: 1,
            index: None,
        };
        let (_temp, engine) = engine_with(&attempt);
        let error = engine.start(&attempt.id, &NoProgress).err().unwrap();
        assert!(
            error.to_string().contains("attempt of Job migrate"),
            "{error}"
        );
        let error = engine
            .restart(&attempt.id, None, &NoProgress)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("berth job run migrate"),
            "{error}"
        );
        assert_eq!(engine.record(&attempt.id).unwrap().stopped, None);
    }

    #[test]
    fn a_start_that_would_change_the_image_is_refused_and_the_record_kept() {
        let exited = record(Some("/srv/site"));
        let (_temp, engine) = engine_with(&exited);
        // The name was imported again since: it names another manifest now.
        let image: ImageRecord = serde_json::from_value(serde_json::json!({
            "name": exited.image,
            "source": exited.image,
            "target": NEW,
            "targetMediaType": "application/vnd.oci.image.manifest.v1+json",
            "manifest": NEW,
            "config": NEW,
            "platform": "linux/amd64",
            "layers": [],
            "created": 1,
        }))
        .unwrap();
        engine.images.records.put(&image).unwrap();
        let error = engine.start(&exited.id, &NoProgress).err().unwrap();
        let message = error.to_string();
        assert!(message.contains(NEW) && message.contains(OLD), "{message}");
        assert!(
            message.contains("start does not change its image"),
            "{message}"
        );
        assert_eq!(engine.record(&exited.id).unwrap().image_manifest, OLD);
    }
}
