//! The reconciler: desired state from manifests, actual state from the host,
//! a pure plan between them, and the executor that carries it out.

pub mod desired;
pub mod events;
pub mod execute;
pub mod observe;
pub mod plan;

#[cfg(test)]
mod plan_tests;
