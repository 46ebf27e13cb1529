//! Shared fixtures for integration tests: `mod common;` in a test file.
//!
//! - [`prereq`]: root / system tool checks (skip locally, fail under CI=true)
//! - [`images`]: deterministic OCI images, layouts and archives built in Rust
//! - [`cli`]: the berth binary against an isolated root and state
//! - [`site`]: a berth instance driven by a manifest tree (`berth apply`)
//! - [`host`]: processes, mounts, runc containers and links, for leak checks
//! - [`registry`]: a real `docker-registry` on loopback, one per test
//!
//! Each test binary uses a subset, hence the module-wide `dead_code` allow.
#![allow(dead_code)]

pub mod cli;
pub mod host;
pub mod images;
pub mod prereq;
pub mod registry;
pub mod site;
