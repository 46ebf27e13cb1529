//! The reconciler: desired state from manifests, actual state from the host,
//! a pure plan between them, the executor that carries it out, and the loop
//! ([`reconciler::Reconciler`]) that holds the lock and runs passes under a
//! clock.

pub mod conflicts;
pub mod desired;
pub mod events;
pub mod execute;
pub mod jobs;
pub mod lock;
pub mod observe;
pub mod outcome;
pub mod parallel;
pub mod plan;
pub mod reconciler;
pub mod schedule;

#[cfg(test)]
mod plan_tests;

pub use reconciler::{ApplyEvent, ApplyOptions, DeleteOptions, ReconcileError, Reconciler};
