//! The runtime: OCI runtime spec generation, the OCI runtime seam
//! ([`oci::OciRuntime`]) and its runc driver ([`runc`]), the host's
//! processes ([`host::Host`], read from `/proc` by [`process`]), the
//! per-container shim that owns each container, logs, restart policy and
//! health checks.

pub mod cgroup_stats;
pub mod console;
pub mod container_dir;
pub mod copy;
pub mod health;
pub mod host;
pub mod log_reader;
pub mod logs;
pub mod oci;
pub mod process;
pub mod procfs;
pub mod restart;
pub mod rootfs;
pub mod runc;
pub mod seccomp;
pub mod shim;
pub mod spec;
pub mod user;
