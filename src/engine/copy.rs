//! `berth cp`: copies into and out of a container's own filesystem, the
//! overlay mounted at its bundle's rootfs (while it runs, and after it
//! exited until it is removed). How a container path is resolved so that
//! no link in it leads out is [`crate::runtime::copy`]'s part.

use std::path::Path;

use super::record::ContainerRecord;
use super::{Engine, EngineError};
use crate::runtime::copy::{ContainerFs, Copied, CopyError};
use crate::snapshot::overlay::is_overlay_mounted;

impl Engine {
    /// Copies the container's `path` to `host`.
    pub fn copy_out(
        &self,
        record: &ContainerRecord,
        path: &str,
        host: &Path,
    ) -> Result<Copied, EngineError> {
        let fs = self.container_fs(record)?;
        fs.copy_out(path, host)
            .map_err(|source| copy_error(record, source))
    }

    /// Copies `host` to the container's `path`.
    pub fn copy_in(
        &self,
        record: &ContainerRecord,
        host: &Path,
        path: &str,
    ) -> Result<Copied, EngineError> {
        let fs = self.container_fs(record)?;
        fs.copy_in(host, path)
            .map_err(|source| copy_error(record, source))
    }

    /// The container's root filesystem, open, while it is mounted.
    fn container_fs(&self, record: &ContainerRecord) -> Result<ContainerFs, EngineError> {
        let rootfs = self.dir(&record.id).rootfs();
        if !is_overlay_mounted(&rootfs) {
            return Err(EngineError::Invalid {
                id: record.id.to_string(),
                message: "its root filesystem is not mounted (berth start mounts it again)".into(),
            });
        }
        ContainerFs::open(&rootfs).map_err(|source| copy_error(record, source))
    }
}

fn copy_error(record: &ContainerRecord, source: CopyError) -> EngineError {
    EngineError::Copy {
        id: record.id.to_string(),
        source: Box::new(source),
    }
}
