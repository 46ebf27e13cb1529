//! Shared fixtures for integration tests: `mod common;` in a test file.
//!
//! - [`prereq`]: root / system tool checks (skip locally, fail under CI=true)
//! - [`images`]: deterministic OCI images, layouts and archives built in Rust
//! - [`registry`]: a real `docker-registry` on loopback, one per test
//!
//! Each test binary uses a subset, hence the module-wide `dead_code` allow.
#![allow(dead_code)]

pub mod cli;
pub mod images;
pub mod prereq;
pub mod registry;
