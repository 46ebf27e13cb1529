//! Interop: other tools' files in, berth manifests out. Pure translation:
//! nothing here touches images, containers, networks or berth's state.

pub mod compose;
