//! Jobs: batch workloads that run a container to completion, many times.
//! A Job's record ([`record`]) says which run it is in and what each
//! attempt did; the pure [`controller`] settles it against the attempts'
//! containers and says what to start, stop or remove; the planner turns
//! that into actions and the executor carries them out through the
//! engine, as for any other object.

pub mod controller;
pub mod record;
