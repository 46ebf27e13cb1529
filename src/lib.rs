//! berth: a declarative container runner for one Linux host.
//!
//! Manifests flow through [`manifest`] (load, schema, validation) into the
//! reconciler; see DESIGN.md for the whole data flow.

#![deny(unsafe_code)]

pub mod cli;
pub mod daemon;
pub mod engine;
pub mod image;
pub mod interop;
pub mod manifest;
pub mod network;
pub mod reconcile;
pub mod runtime;
pub mod snapshot;
pub mod state;
pub mod watch;
