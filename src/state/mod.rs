//! Typed views of what Juju holds for this charm (relation data, config), read once per hook.

pub mod config;
