//! File events -> generations, for the daemon: the manifest tree watched
//! the ways real trees change ([`tree`]), bursts of events settled into one
//! reading ([`debounce`]), the tree read whole as one snapshot with its
//! digest and git revision ([`generation`], [`git`]), and the shims' status
//! files as the wake-up for exits and health changes ([`shims`]).

pub mod debounce;
pub mod generation;
pub mod git;
pub mod shims;
pub mod tree;
