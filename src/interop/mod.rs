//! Interop: berth and other tools' files, translated both ways. Compose
//! projects in (`compose`), Kubernetes objects out (`kube`). Pure
//! translation: nothing here touches images, containers, networks or
//! berth's state.

pub mod compose;
pub mod kube;
