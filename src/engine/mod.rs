//! Ordering and deferral come from the `charm-engine` crate (re-exported here); this module adds
//! the charm's status table.

pub use charm_engine::dispatch::*;
pub use charm_engine::queue;

pub mod status;
