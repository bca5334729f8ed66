//! Actions: never deferred; each succeeds with results or fails with a message saying why and
//! what to do. Same names and result keys as Charmed ZooKeeper.

use crate::juju::tools::{Databag, HookTools, ToolError};
use crate::state::credentials::{self, Credentials};
use crate::state::peer::PeerState;

/// An action's failure: the message `action-fail` shows the operator.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Tool(#[from] ToolError),
}

pub type ActionResult = Result<Databag, ActionError>;

/// Credentials as this unit can read them, or a failure that says what to wait for.
fn credentials(
    tools: &dyn HookTools,
    peer: Option<&PeerState>,
) -> Result<Credentials, ActionError> {
    let Some(peer) = peer else {
        return Err(ActionError::Refused(
            "the cluster peer relation does not exist yet; wait for the deployment to settle"
                .into(),
        ));
    };
    match credentials::read(tools, peer)? {
        Some(c) if c.complete() => Ok(c),
        _ => Err(ActionError::Refused("the leader has not created the internal passwords yet; wait for the deployment to settle".into())),
    }
}

pub fn get_password(tools: &dyn HookTools, peer: Option<&PeerState>, user: &str) -> ActionResult {
    let creds = credentials(tools, peer)?;
    let pw = match user {
        "super" => creds.super_password(),
        _ => creds.sync_password(),
    };
    let pw = pw.ok_or_else(|| ActionError::Refused(format!("no {user} password yet")))?;
    Ok([(format!("{user}-password"), pw.expose().to_string())].into())
}

/// Runs one action end to end: results via `action-set`, failures via `action-fail`.
pub fn report(tools: &dyn HookTools, name: &str, result: ActionResult) -> Result<(), ToolError> {
    match result {
        Ok(results) => tools.action_set(&results),
        Err(ActionError::Refused(msg)) => {
            tracing::warn!("action {name} failed: {msg}");
            tools.action_fail(&msg)
        }
        Err(ActionError::Tool(e)) => {
            tracing::error!("action {name} failed: {e}");
            tools.action_fail(&format!("{name} failed: {e}"))
        }
    }
}
