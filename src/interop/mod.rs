//! Moving a berth set to and from other tools: pure translations, manifests
//! in and objects out (no engine, runtime, network or state).

pub mod kube;
