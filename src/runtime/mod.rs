//! The runtime: OCI runtime spec generation, the runc driver, the
//! per-container shim that owns each container, logs, restart policy and
//! health checks.

pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod user;
