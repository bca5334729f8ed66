//! The passwords the charm manages, in one application-owned Juju secret labelled
//! `cluster.<app>.app` (Charmed ZooKeeper's label and field names): `super-password`,
//! `sync-password`, and one `relation-<id>` password per client relation.
//!
//! Only the leader writes it. Its URI sits in the peer app bag (`internal-secret`); every unit of
//! the application reads it by URI. Each change also bumps `credentials-rev` in the peer app bag,
//! so every unit gets a `cluster-relation-changed` at once instead of waiting for a
//! `secret-changed` or an update-status.

use std::collections::BTreeMap;

use crate::juju::tools::{
    Databag, HookTools, SecretAddOptions, SecretOwner, SecretRead, ToolResult,
};
use crate::juju::RelationId;
use crate::secret::Secret;
use crate::state::peer::{PeerState, KEY_CREDENTIALS_REV, KEY_SECRET};

pub const KEY_SUPER: &str = "super-password";
pub const KEY_SYNC: &str = "sync-password";
/// Length of generated passwords (as Charmed ZooKeeper).
pub const PASSWORD_LEN: usize = 32;

pub fn label(app: &str) -> String {
    format!("cluster.{app}.app")
}

pub fn client_key(rel: RelationId) -> String {
    format!("relation-{}", rel.0)
}

/// The secret's content. Values are [`Secret`]s: never printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub uri: String,
    pub values: BTreeMap<String, Secret>,
}

impl Credentials {
    pub fn get(&self, key: &str) -> Option<&Secret> {
        self.values.get(key).filter(|s| !s.is_empty())
    }
    pub fn super_password(&self) -> Option<&Secret> {
        self.get(KEY_SUPER)
    }
    pub fn sync_password(&self) -> Option<&Secret> {
        self.get(KEY_SYNC)
    }
    pub fn complete(&self) -> bool {
        self.super_password().is_some() && self.sync_password().is_some()
    }
    pub fn client_password(&self, rel: RelationId) -> Option<&Secret> {
        self.get(&client_key(rel))
    }
    /// Every SASL client user (`relation-<id>`) with its password.
    pub fn client_users(&self) -> BTreeMap<String, Secret> {
        self.values
            .iter()
            .filter(|(k, v)| k.starts_with("relation-") && !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn content(&self) -> Databag {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect()
    }
}

/// Reads the credentials through the URI in the peer app bag; `None` if the leader has not
/// created them yet.
pub fn read(tools: &dyn HookTools, peer: &PeerState) -> ToolResult<Option<Credentials>> {
    let Some(uri) = peer.app.get(KEY_SECRET).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let content = tools.secret_get(Some(uri), None, SecretRead::Refresh)?;
    Ok(Some(Credentials {
        uri: uri.clone(),
        values: content
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect(),
    }))
}

/// Leader only: make sure the secret exists and holds `super` and `sync` passwords. Returns the
/// credentials and whether anything was created.
pub fn ensure(
    tools: &dyn HookTools,
    peer: &mut PeerState,
    app: &str,
    current: Option<Credentials>,
) -> Result<(Credentials, bool), CredentialsError> {
    let mut creds = current.unwrap_or_default();
    let mut missing = false;
    for key in [KEY_SUPER, KEY_SYNC] {
        if creds.get(key).is_none() {
            creds.values.insert(
                key.to_string(),
                Secret::generate(PASSWORD_LEN).map_err(CredentialsError::Random)?,
            );
            missing = true;
        }
    }
    if !missing {
        return Ok((creds, false));
    }
    if creds.uri.is_empty() {
        let opts = SecretAddOptions {
            label: Some(label(app)),
            description: Some("ZooKeeper internal users (super, sync) and client passwords".into()),
            owner: Some(SecretOwner::Application),
        };
        creds.uri = tools.secret_add(&creds.content(), &opts)?;
        publish(tools, peer, &creds)?;
    } else {
        write(tools, peer, &creds)?;
    }
    Ok((creds, true))
}

/// Leader only: store a new content (new secret revision) and tell every unit.
pub fn write(tools: &dyn HookTools, peer: &mut PeerState, creds: &Credentials) -> ToolResult<()> {
    tools.secret_set(&creds.uri, Some(&creds.content()), None)?;
    publish(tools, peer, creds)
}

fn publish(tools: &dyn HookTools, peer: &mut PeerState, creds: &Credentials) -> ToolResult<()> {
    let rev = peer
        .app
        .get(KEY_CREDENTIALS_REV)
        .and_then(|r| r.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let data: Databag = [
        (KEY_SECRET.to_string(), creds.uri.clone()),
        (KEY_CREDENTIALS_REV.to_string(), rev.to_string()),
    ]
    .into();
    tools.relation_set(peer.relation, true, &data)?;
    peer.apply_app_write(&data);
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot generate a password: {0}")]
    Random(#[source] std::io::Error),
    #[error(transparent)]
    Tool(#[from] crate::juju::ToolError),
}
