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
/// The super password before the last rotation, kept until every server runs the new one
/// (the charm's own admin session falls back to it meanwhile).
pub const KEY_SUPER_PREVIOUS: &str = "super-password-previous";
/// The quorum (learner) user; absent means `sync`.
pub const KEY_SYNC_USER: &str = "sync-user";
/// A staged sync rotation: the next user and password, and the phase (1: every server accepts
/// both, learners still use the old one; 2: learners use the new one).
pub const KEY_SYNC_NEXT: &str = "sync-password-next";
pub const KEY_SYNC_USER_NEXT: &str = "sync-user-next";
pub const KEY_SYNC_PHASE: &str = "sync-rotation";
/// Length of generated passwords (as Charmed ZooKeeper).
pub const PASSWORD_LEN: usize = 32;

pub fn label(app: &str) -> String {
    format!("cluster.{app}.app")
}

pub fn client_key(rel: RelationId) -> String {
    crate::clients::ClientUser::of(rel).to_string()
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
    /// Passwords to try for the super user, the current one first.
    pub fn super_candidates(&self) -> Vec<Secret> {
        [self.super_password(), self.get(KEY_SUPER_PREVIOUS)]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn sync_user(&self) -> String {
        self.get(KEY_SYNC_USER)
            .map(|u| u.expose().to_string())
            .unwrap_or_else(|| "sync".into())
    }

    /// The staged sync rotation phase (0: none).
    pub fn sync_phase(&self) -> u8 {
        match self.get(KEY_SYNC_PHASE).map(Secret::expose) {
            Some("1") => 1,
            Some("2") => 2,
            _ => 0,
        }
    }

    /// Quorum users every server accepts, and the one its learner logs in with, for the
    /// current rotation phase.
    pub fn quorum_auth(&self) -> Option<crate::workload::render::QuorumAuth> {
        let cur = (self.sync_user(), self.sync_password()?.clone());
        let next = match (self.get(KEY_SYNC_USER_NEXT), self.get(KEY_SYNC_NEXT)) {
            (Some(u), Some(p)) => Some((u.expose().to_string(), p.clone())),
            _ => None,
        };
        let (accepted, learner) = match (self.sync_phase(), next) {
            (1, Some(n)) => ([cur.clone(), n].into_iter().collect(), cur),
            (2, Some(n)) => ([cur, n.clone()].into_iter().collect(), n),
            _ => ([cur.clone()].into_iter().collect(), cur),
        };
        Some(crate::workload::render::QuorumAuth { accepted, learner })
    }

    /// Starts a staged rotation of the sync password (phase 1).
    pub fn begin_sync_rotation(&mut self, password: Secret) {
        let next_user = if self.sync_user() == "sync" {
            "sync2"
        } else {
            "sync"
        };
        self.values
            .insert(KEY_SYNC_USER_NEXT.into(), Secret::new(next_user.into()));
        self.values.insert(KEY_SYNC_NEXT.into(), password);
        self.values
            .insert(KEY_SYNC_PHASE.into(), Secret::new("1".into()));
    }

    /// Moves a staged sync rotation one phase on: 1 -> 2 (log in with the new user), 2 -> done
    /// (drop the old user). Returns whether anything changed.
    pub fn advance_sync_rotation(&mut self) -> bool {
        match self.sync_phase() {
            1 => {
                self.values
                    .insert(KEY_SYNC_PHASE.into(), Secret::new("2".into()));
                true
            }
            2 => {
                if let (Some(u), Some(p)) = (
                    self.values.remove(KEY_SYNC_USER_NEXT),
                    self.values.remove(KEY_SYNC_NEXT),
                ) {
                    self.values.insert(KEY_SYNC_USER.into(), u);
                    self.values.insert(KEY_SYNC.into(), p);
                }
                self.values.remove(KEY_SYNC_PHASE);
                true
            }
            _ => false,
        }
    }

    /// Every SASL client user (`relation-<id>`) with its password.
    pub fn client_users(&self) -> BTreeMap<String, Secret> {
        self.values
            .iter()
            .filter(|(k, v)| crate::clients::ClientUser::parse(k).is_some() && !v.is_empty())
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
    let Some(uri) = peer.credentials_secret() else {
        return Ok(None);
    };
    let content = tools.secret_get(Some(uri), None, SecretRead::Refresh)?;
    Ok(Some(Credentials {
        uri: uri.to_string(),
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

/// Leader only: store a new content that changes no server file (e.g. dropping the previous
/// super password): no revision bump, so no rolling restart.
pub fn write_quietly(tools: &dyn HookTools, creds: &Credentials) -> ToolResult<()> {
    tools.secret_set(&creds.uri, Some(&creds.content()), None)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        let mut c = Credentials::default();
        c.values.insert(KEY_SUPER.into(), Secret::new("S".into()));
        c.values.insert(KEY_SYNC.into(), Secret::new("old".into()));
        c
    }

    fn shown(c: &Credentials) -> (Vec<(String, String)>, (String, String)) {
        let q = c.quorum_auth().unwrap();
        (
            q.accepted
                .iter()
                .map(|(u, p)| (u.clone(), p.expose().to_string()))
                .collect(),
            (q.learner.0.clone(), q.learner.1.expose().to_string()),
        )
    }

    #[test]
    fn staged_sync_rotation_never_leaves_a_peer_unaccepted() {
        let mut c = creds();
        assert_eq!(
            shown(&c),
            (
                vec![("sync".into(), "old".into())],
                ("sync".into(), "old".into())
            )
        );
        c.begin_sync_rotation(Secret::new("new".into()));
        // Phase 1: both accepted, learners still on the old user.
        assert_eq!(
            shown(&c),
            (
                vec![
                    ("sync".into(), "old".into()),
                    ("sync2".into(), "new".into())
                ],
                ("sync".into(), "old".into())
            )
        );
        assert!(c.advance_sync_rotation());
        // Phase 2: both accepted, learners on the new user.
        assert_eq!(
            shown(&c),
            (
                vec![
                    ("sync".into(), "old".into()),
                    ("sync2".into(), "new".into())
                ],
                ("sync2".into(), "new".into())
            )
        );
        assert!(c.advance_sync_rotation());
        // Done: only the new one.
        assert_eq!(
            shown(&c),
            (
                vec![("sync2".into(), "new".into())],
                ("sync2".into(), "new".into())
            )
        );
        assert_eq!(c.sync_password().unwrap().expose(), "new");
        assert!(!c.advance_sync_rotation());
        // The next rotation goes back to the user `sync`.
        c.begin_sync_rotation(Secret::new("newer".into()));
        assert_eq!(
            shown(&c).0,
            vec![
                ("sync".into(), "newer".into()),
                ("sync2".into(), "new".into())
            ]
        );
    }

    #[test]
    fn super_candidates_current_first() {
        let mut c = creds();
        assert_eq!(c.super_candidates().len(), 1);
        c.values
            .insert(KEY_SUPER_PREVIOUS.into(), Secret::new("P".into()));
        let cands: Vec<String> = c
            .super_candidates()
            .iter()
            .map(|s| s.expose().to_string())
            .collect();
        assert_eq!(cands, ["S", "P"]);
    }
}
