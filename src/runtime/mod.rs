//! The runtime: OCI runtime spec generation, the runc driver, the
//! per-container shim that owns each container, logs, restart policy and
//! health checks.

pub mod health;
pub mod logs;
pub mod restart;
pub mod shim;
pub mod state;
