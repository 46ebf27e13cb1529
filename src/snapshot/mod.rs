//! Snapshots: safe layer unpack, overlay snapshotter, garbage collection.
//!
//! Each image layer unpacks into its own directory (keyed by chain id) through
//! [`unpack::unpack_layer`]; a container's rootfs is an overlay of those
//! directories with its own upper and work dirs.

pub mod unpack;

pub use unpack::{unpack_layer, Compression, UnpackError, UnpackStats};
