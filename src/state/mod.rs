//! The ground: berth's on-disk state. Where everything lives ([`layout`]),
//! typed JSON records ([`records`]), crash-safe writes ([`atomic`]), locks,
//! the events log ([`events`]),
//! ownership labels, the clock, and the quarantine of records that do
//! not parse ([`quarantine`]). It imports nothing above it.

pub mod atomic;
pub mod clock;
pub mod error_chain;
pub mod events;
pub mod hex;
pub mod labels;
pub mod layout;
pub mod limits;
pub mod lock;
pub mod nofollow;
pub mod quarantine;
pub mod records;

pub use layout::{Layout, DEFAULT_ROOT, DEFAULT_STATE};
