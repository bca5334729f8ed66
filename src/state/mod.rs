//! Typed views of what Juju holds for this charm (relation data, config, secrets), read once per
//! hook, and what the unit remembers between hooks.

pub mod config;
pub mod credentials;
pub mod local;
pub mod peer;
