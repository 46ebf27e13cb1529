//! Images: references, content store, import and pull.

pub mod reference;

pub use reference::{ImageSource, Reference, ReferenceError};
