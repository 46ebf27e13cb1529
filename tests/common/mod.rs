//! Shared fixtures for integration tests: `mod common;` in a test file.
//!
//! - [`prereq`]: root / system tool checks (skip locally, fail under CI=true)
//! - [`images`]: deterministic OCI images, layouts and archives built in Rust
//! - [`cli`]: the berth binary against an isolated root and state
//! - [`instance`]: one berth instance in a temp dir, cleaned up on drop
//! - [`site`]: a berth instance driven by a manifest tree (`berth apply`)
//! - [`host`]: processes, mounts, runc containers and links, for leak checks
//! - [`registry`]: a real `docker-registry` on loopback, one per test
//! - [`trusted`]: a directory the manifest trust rules accept
//!
//! Each test binary uses a subset, hence the module-wide `dead_code` allow.
#![allow(dead_code)]

pub mod cli;
pub mod host;
pub mod images;
pub mod instance;
pub mod prereq;
pub mod registry;
pub mod site;
pub mod trusted;

/// `impl Deref for FIXTURE` to its field `FIELD: TARGET`: a per-file fixture
/// that wraps an [`instance::Instance`] (or a [`site::Site`]) keeps all of
/// the wrapped fixture's methods and adds its own.
macro_rules! deref_to {
    ($fixture:ty, $field:tt: $target:ty) => {
        impl std::ops::Deref for $fixture {
            type Target = $target;

            fn deref(&self) -> &$target {
                &self.$field
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use deref_to;

/// The names in `dir`, sorted; none when it is missing.
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
