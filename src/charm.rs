//! The ZooKeeper charm's event handling: which events it acts on, and how.

use std::collections::BTreeMap;

use crate::engine::{Charm, Outcome, Summary};
use crate::juju::{Context, Event, HookTools, ToolError};

#[derive(Debug, thiserror::Error)]
pub enum CharmError {
    #[error(transparent)]
    Tool(#[from] ToolError),
}

pub struct ZooKeeperCharm<'a> {
    ctx: &'a Context,
    tools: &'a dyn HookTools,
}

impl<'a> ZooKeeperCharm<'a> {
    pub fn new(
        ctx: &'a Context,
        tools: &'a dyn HookTools,
        _env: &BTreeMap<String, String>,
    ) -> ZooKeeperCharm<'a> {
        ZooKeeperCharm { ctx, tools }
    }
}

impl Charm for ZooKeeperCharm<'_> {
    type Error = CharmError;

    fn handle(&mut self, event: &Event, _replayed: bool) -> Result<Outcome, CharmError> {
        match event {
            Event::Unknown { hook } => {
                tracing::info!("no handler for hook {hook:?} in this charm version; nothing to do");
            }
            Event::Action { name, .. } => {
                self.tools.action_fail(&format!(
                    "action {name} is not implemented by this charm version"
                ))?;
            }
            other => tracing::debug!(unit = %self.ctx.unit, "{other}: nothing to do"),
        }
        Ok(Outcome::Done)
    }

    fn finish(&mut self, _summary: &Summary) -> Result<(), CharmError> {
        Ok(())
    }
}
