//! Make before break: everything a replacement container needs that can
//! fail is made ready before the container it replaces is touched. Its
//! image is found or fetched (and unpacked), its config read, the files it
//! names read, and its spec built against the image's own rootfs (a
//! throw-away snapshot, so a user or working directory the image lacks is
//! caught here). When any of it fails, the old container keeps running.

use std::path::PathBuf;

use super::create::CreateRequest;
use super::{io_err, Engine, EngineError};
use crate::image::Progress;
use crate::runtime::spec::NetworkNamespace;
use crate::snapshot::Snapshotter;
use crate::state::nofollow::create_dir_beneath;

/// The snapshot key of `id`'s throw-away preflight rootfs.
pub fn preflight_key(id: &str) -> String {
    format!("{id}.preflight")
}

impl Engine {
    /// Checks that `request` can be created, as far as it can be without
    /// the container it replaces gone.
    pub fn preflight(
        &self,
        request: &CreateRequest,
        progress: &dyn Progress,
    ) -> Result<(), EngineError> {
        let id = request.id.to_string();
        let image = self.ensure_base(&id, &request.image, request.pull_policy, progress)?;
        let image_config = self.base_config(&id, &image, &request.spec)?;
        let key = preflight_key(&id);
        let target = self.preflight_dir(&id);
        self.discard_preflight(&id);
        let snapshot_err = |source| EngineError::Snapshot {
            id: id.clone(),
            source: Box::new(source),
        };
        let checked = (|| {
            create_dir_beneath(&self.paths.state, &target, 0o700)
                .map_err(io_err(&id, "create", &target))?;
            self.prepare_snapshot_over(&key, &image, true)
                .map_err(snapshot_err)?;
            self.snapshots.mount(&key, &target).map_err(snapshot_err)?;
            self.build_spec(
                &id,
                request,
                &image_config,
                &target,
                None,
                NetworkNamespace::New,
            )
            .map(drop)
        })();
        self.discard_preflight(&id);
        checked
    }

    fn preflight_dir(&self, id: &str) -> PathBuf {
        self.paths.state.join("preflight").join(id)
    }

    /// Removes what a preflight of `id` left (also after a crash): the
    /// mount, the snapshot, the mount point. Best effort: a leftover is
    /// removed by the next preflight or `rm`.
    pub(super) fn discard_preflight(&self, id: &str) {
        let target = self.preflight_dir(id);
        if target.exists() {
            let _ = self.snapshots.unmount(&target);
            let _ = std::fs::remove_dir(&target);
        }
        let _ = self.snapshots.remove(&preflight_key(id));
    }
}
