//! A small framework for Juju charms written in Rust: one binary dispatched by Juju for every
//! hook and action.
//!
//! - [`juju::Context`]: the hook's environment, parsed (pure): the unit, the event, the relation
//!   and remote unit, the action, the secret.
//! - [`juju::tools::HookTools`]: every hook tool the charm may run, as a trait;
//!   [`juju::process::ProcessTools`] runs the real ones (argument lists as Juju 3.6 parses them, JSON
//!   output, Juju's error strings turned into typed errors).
//! - [`dispatch::dispatch`]: one dispatch: deferred events replayed oldest first, then the current
//!   one; a handler returns an [`dispatch::Outcome`] (done, defer with a reason, blocked), never
//!   defers by itself; the queue is saved only when the dispatch succeeded ([`queue`]).
//! - [`logging`]: `tracing` events forwarded to `juju-log`; [`secret::Secret`] keeps passwords out
//!   of every log line; [`files`] moves a corrupt state file aside instead of failing.
//!
//! It knows nothing about the workload: see the crate's README for a complete minimal charm.

pub mod dispatch;
pub mod files;
pub mod juju;
pub mod logging;
pub mod queue;
pub mod secret;

pub use dispatch::{dispatch, load_queue, Charm, DispatchError, Outcome, Summary};

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The process environment as a map, for [`juju::Context::from_env`] (variables whose name or
/// value is not UTF-8 are left out: Juju sets none).
pub fn environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Unix seconds now (0 if the clock is before 1970): the time a dispatch records.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The README's minimal charm, compiled as a doctest so that it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
