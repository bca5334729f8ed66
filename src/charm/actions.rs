//! Actions (same names and result keys as Charmed ZooKeeper, plus `get-quorum-status` and
//! `restart`). They never defer: each succeeds with results or fails with a message saying why
//! and what to do. Actions that change the ensemble's configuration (`set-password`, `restart`)
//! start the rolling restart themselves, since the leader gets no event for its own writes.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ensemble_io::Admin;
use super::{CharmError, ZooKeeperCharm};
use crate::clients::ownership::{self, Stored};
use crate::clients::request::Chroot;
use crate::juju::tools::{Databag, HookTools, ToolError};
use crate::secret::Secret;
use crate::state::credentials::{self, Credentials, KEY_SUPER, KEY_SUPER_PREVIOUS, PASSWORD_LEN};
use crate::state::peer::KEY_RESTART_NONCE;

/// An action's failure: the message `action-fail` shows the operator.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Tool(#[from] ToolError),
}

pub type ActionResult = Result<Databag, ActionError>;

/// Ends one action: results via `action-set`, failures via `action-fail`.
fn report(tools: &dyn HookTools, name: &str, result: ActionResult) -> Result<(), ToolError> {
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

/// Users whose password `set-password` manages.
pub const USERS: &[&str] = &["super", "sync"];

fn refused(msg: impl Into<String>) -> ActionError {
    ActionError::Refused(msg.into())
}

/// Shortest and longest password `set-password` accepts (characters).
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 256;

/// A password an operator typed, accepted only if every client and ZooKeeper's own parsers
/// take it literally: 8 to 256 printable ASCII characters (DIGEST-MD5 implementations disagree
/// on the charset of anything else), and no `${` (Java's JAAS parser would expand it as a
/// system property, so the servers would expect another password, or fail to start).
pub fn check_password(pw: &str) -> Result<(), String> {
    const RULE: &str = "passwords are 8 to 256 printable ASCII characters (letters, digits, space and punctuation) without \"${\"";
    if pw.is_empty() {
        return Err(format!(
            "the password must not be empty (leave the parameter out to generate one); {RULE}"
        ));
    }
    if let Some(c) = pw.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!(
            "the password contains {c:?} (U+{:04X}), which not every ZooKeeper client can send; {RULE}",
            c as u32
        ));
    }
    let n = pw.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        return Err(format!("the password has {n} characters; {RULE}"));
    }
    if pw.contains("${") {
        return Err(format!(
            "the password contains \"${{\", which Java's JAAS parser expands as a property; {RULE}"
        ));
    }
    Ok(())
}

impl ZooKeeperCharm<'_> {
    pub(super) fn run_action(&mut self, name: &str) -> Result<(), CharmError> {
        let result = match name {
            "get-super-password" | "get-sync-password" => self.get_password(name),
            "set-password" => self.set_password(),
            "get-quorum-status" => self.quorum_status(),
            "restart" => self.restart_action(),
            "release-client-znode" => self.release_client_znode(),
            "set-tls-private-key" => self.set_tls_private_key(),
            "pre-upgrade-check" => self.pre_upgrade_check(),
            "resume-upgrade" => self.resume_upgrade(),
            "create-backup" | "list-backups" | "restore" => Err(refused(format!(
                "{name} is not supported by this charm yet (backups are not implemented); \
                 nothing was changed"
            ))),
            other => Err(refused(format!("unknown action {other}"))),
        };
        report(self.tools, name, result)?;
        Ok(())
    }

    fn leader_only(&self, action: &str) -> Result<(), ActionError> {
        if self.tools.is_leader()? {
            Ok(())
        } else {
            Err(refused(format!(
                "{action} must run on the leader unit, which this one ({}) is not: juju run {}/leader {action}",
                self.ctx.unit, self.ctx.app
            )))
        }
    }

    fn current_credentials(&mut self) -> Result<Credentials, ActionError> {
        self.creds()
            .map_err(|e| refused(e.to_string()))?
            .ok_or_else(|| {
                refused(
                    "the internal passwords do not exist yet; wait for the deployment to settle",
                )
            })
    }

    fn get_password(&mut self, action: &str) -> ActionResult {
        let user = action
            .trim_start_matches("get-")
            .trim_end_matches("-password");
        let creds = self.current_credentials()?;
        let pw = if user == "super" {
            creds.super_password()
        } else {
            creds.sync_password()
        };
        let pw = pw.ok_or_else(|| refused(format!("no {user} password yet")))?;
        Ok([(format!("{user}-password"), pw.expose().to_string())].into())
    }

    /// Runs the reconcile after a change an action made (new files, first grant of the roll).
    fn apply_now(&mut self) -> Result<(), ActionError> {
        match self.reconcile() {
            Ok(outcome) => {
                tracing::debug!(?outcome, "reconcile after the action");
                Ok(())
            }
            Err(e) => Err(refused(format!(
                "the change is stored, but applying it failed: {e}; the next hook retries"
            ))),
        }
    }

    fn set_password(&mut self) -> ActionResult {
        let params = self.tools.action_get()?;
        let user = params
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or("super")
            .to_string();
        if !USERS.contains(&user.as_str()) {
            return Err(refused(format!(
                "unknown username {user:?}: set-password manages the charm's internal users only, which are {}",
                USERS.join(", ")
            )));
        }
        self.leader_only("set-password")?;
        let password = match params.get("password") {
            Some(Value::String(pw)) => {
                check_password(pw).map_err(refused)?;
                Secret::new(pw.clone())
            }
            Some(other) => return Err(refused(format!("password must be a string, got {other}"))),
            None => Secret::generate(PASSWORD_LEN)
                .map_err(|e| refused(format!("cannot generate a password: {e}")))?,
        };
        let mut creds = self.current_credentials()?;
        let key = format!("{user}-password");
        let result: Databag = [(key.clone(), password.expose().to_string())].into();
        if user == "sync" && creds.sync_phase() != 0 {
            return Err(refused(
                "a sync password rotation is already in progress (rolling restarts, see juju status); run set-password again once it finished",
            ));
        }
        if creds.get(&key) == Some(&password) {
            tracing::info!("the new {user} password equals the current one; nothing to change");
            return Ok(result);
        }
        match user.as_str() {
            "super" => {
                if let Some(old) = creds.super_password().cloned() {
                    creds.values.insert(KEY_SUPER_PREVIOUS.into(), old);
                }
                creds.values.insert(KEY_SUPER.into(), password);
            }
            _ => creds.begin_sync_rotation(password),
        }
        self.store_credentials(creds)?;
        tracing::info!("{user} password changed; a rolling restart applies it");
        self.tools.action_log(&format!("{user} password stored; the servers pick it up through a rolling restart (see juju status)"))?;
        self.apply_now()?;
        Ok(result)
    }

    /// `set-tls-private-key [internal-key=<PEM or base64 PEM>]`: this unit's TLS key (a new
    /// one when left out), before or after the certificates relation exists. With the
    /// relation, a certificate request for the new key goes out at once; the current
    /// certificate stays in force until the provider answers it.
    fn set_tls_private_key(&mut self) -> ActionResult {
        use crate::tls::material::UnitKey;
        let params = self.tools.action_get()?;
        let key = match params.get("internal-key") {
            Some(Value::String(k)) if !k.trim().is_empty() => {
                UnitKey::from_operator(k).map_err(|e| refused(e.to_string()))?
            }
            Some(Value::String(_)) | None => {
                UnitKey::generate().map_err(|e| refused(format!("cannot make a key: {e}")))?
            }
            Some(other) => {
                return Err(refused(format!(
                    "internal-key must be a string (PEM or base64 PEM), got {other}"
                )))
            }
        };
        let path = super::tls::key_path(&self.workload.paths().conf_dir);
        self.workload
            .write(&path, key.pem(), true)
            .map_err(|e| refused(format!("cannot write the key: {e}")))?;
        tracing::info!("this unit's TLS private key was replaced by the operator");
        self.apply_now()?;
        Ok([(
            "message".to_string(),
            "key stored; with the certificates relation, a certificate for it is requested now"
                .to_string(),
        )]
        .into())
    }

    fn store_credentials(&mut self, creds: Credentials) -> Result<(), ActionError> {
        let tools = self.tools;
        let Some(view) = self.view.as_mut() else {
            return Err(refused("no view"));
        };
        let Some(peer) = view.peer.as_mut() else {
            return Err(refused("the cluster peer relation does not exist yet"));
        };
        credentials::write(tools, peer, &creds)?;
        self.set_creds(creds);
        Ok(())
    }

    /// Reports whether an upgrade could start now; changes nothing (the same check runs by
    /// itself whenever the leader would move the upgrade target).
    fn pre_upgrade_check(&mut self) -> ActionResult {
        self.leader_only("pre-upgrade-check")?;
        let Some(snap) = self.gather().map_err(|e| refused(e.to_string()))? else {
            return Err(refused(
                "Could not find upgrade relation: the cluster peer relation does not exist yet",
            ));
        };
        let observed = super::hook::Observed {
            ensemble: Some(self.ensemble.observe(&snap.book)),
            ..Default::default()
        };
        let mut problems: Vec<String> = Vec::new();
        problems.extend(self.ensemble_unhealthy(&snap, &observed));
        problems.extend(
            self.upgrade_busy(&snap)
                .map_err(|e| refused(e.to_string()))?,
        );
        let views = super::upgrade::unit_views(&snap.peer);
        let old: Vec<String> = views
            .iter()
            .filter(|(_, v)| v.release.as_deref() != Some(snap.release.as_str()))
            .map(|(u, _)| format!("{}/{u}", self.ctx.app))
            .collect();
        let target = super::upgrade::target(&snap.peer);
        if !problems.is_empty() {
            tracing::warn!("pre-upgrade check: {}", problems.join("; "));
            return Err(refused(format!(
                "Pre-upgrade check failed and cannot safely upgrade: {}",
                problems.join("; ")
            )));
        }
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        out.insert(
            "message".into(),
            "the ensemble can upgrade now: every voter serves, nothing syncs, no TLS switch, password rotation or rolling restart is in flight (this check also runs by itself after juju refresh; nothing was changed)".into(),
        );
        out.insert(
            "workload-build".into(),
            crate::upgrade::label(&target).to_string(),
        );
        out.insert("charm-release".into(), snap.release.clone());
        if !old.is_empty() {
            out.insert("units-on-another-charm".into(), old.join(", "));
        }
        Ok(out)
    }

    /// Lets an upgrade held by `pause-after-unit-refresh` go on to its next server.
    fn resume_upgrade(&mut self) -> ActionResult {
        self.leader_only("resume-upgrade")?;
        self.load_view().map_err(|e| refused(e.to_string()))?;
        let tools = self.tools;
        let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) else {
            return Err(refused("the cluster peer relation does not exist yet"));
        };
        let target = super::upgrade::target(peer);
        let (done, of) = crate::upgrade::progress(&super::upgrade::unit_views(peer), &target);
        if done == of {
            return Err(refused(
                "no upgrade is in flight: every server runs the target build; nothing to resume",
            ));
        }
        let data: Databag = [(crate::upgrade::KEY_RESUMED.to_string(), done.to_string())].into();
        tools.relation_set(peer.relation, true, &data)?;
        peer.apply_app_write(&data);
        self.tools
            .action_log(&format!("upgrade resumed after {done} of {of} servers"))?;
        self.apply_now()?;
        Ok([(
            "message".to_string(),
            format!(
                "upgrade to ZooKeeper {} resumed after {done} of {of} servers; follow it in juju status",
                crate::upgrade::label(&target)
            ),
        )]
        .into())
    }

    fn restart_action(&mut self) -> ActionResult {
        self.leader_only("restart")?;
        self.load_view().map_err(|e| refused(e.to_string()))?;
        let tools = self.tools;
        let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) else {
            return Err(refused("the cluster peer relation does not exist yet"));
        };
        let nonce = peer
            .app
            .get(KEY_RESTART_NONCE)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        let data: Databag = [(KEY_RESTART_NONCE.to_string(), nonce.to_string())].into();
        tools.relation_set(peer.relation, true, &data)?;
        peer.apply_app_write(&data);
        self.tools.action_log(
            "rolling restart requested: one server at a time, the quorum leader last",
        )?;
        self.apply_now()?;
        Ok([(
            "message".to_string(),
            "rolling restart started; follow it in juju status".to_string(),
        )]
        .into())
    }

    /// Lets go of a chroot kept for a former (or moved) client: the data becomes the operator's
    /// (super only, granted to nobody), or is deleted with `delete=true`.
    fn release_client_znode(&mut self) -> ActionResult {
        self.leader_only("release-client-znode")?;
        let params = self.tools.action_get()?;
        let raw = match params.get("path") {
            Some(Value::String(p)) => p.clone(),
            Some(other) => return Err(refused(format!("path must be a string, got {other}"))),
            None => return Err(refused("path is required: the kept chroot to release")),
        };
        let delete = match params.get("delete") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(refused(format!(
                    "delete must be true or false, got {other}"
                )))
            }
        };
        let path = Chroot::parse(&raw)
            .map_err(|e| refused(e.to_string().replacen("database", "path", 1)))?;
        self.load_view().map_err(|e| refused(e.to_string()))?;
        let Some(peer) = self.view.as_ref().and_then(|v| v.peer.clone()) else {
            return Err(refused("the cluster peer relation does not exist yet"));
        };
        let Stored::Valid(mut record) =
            Stored::parse(peer.app.get(ownership::KEY).map(String::as_str))
        else {
            return Err(refused(
                "the charm has not recorded its clients' znodes yet (it does once the ensemble serves); try again when the deployment settled",
            ));
        };
        let kept: Vec<String> = record
            .chroots
            .iter()
            .filter(|(_, o)| o.state == ownership::State::Kept)
            .map(|(p, o)| format!("{p} ({})", o.app))
            .collect();
        let owned = match record.chroots.get(path.as_str()) {
            None => {
                return Err(refused(format!(
                    "{path} is not a chroot the charm keeps; kept chroots: {}",
                    if kept.is_empty() {
                        "none".to_string()
                    } else {
                        kept.join(", ")
                    }
                )))
            }
            Some(o) if o.state != ownership::State::Kept => {
                return Err(refused(format!(
                    "{path} is {}; only kept chroots can be released (remove the relation first, or wait for the deployment to settle)",
                    o.describe()
                )))
            }
            Some(o) => o.clone(),
        };
        if delete {
            let book = self.address_book(&peer);
            let pws = self
                .super_candidates()
                .map_err(|e| refused(e.to_string()))?;
            let admin = Admin {
                known: book,
                super_passwords: pws,
            };
            self.ensemble
                .delete_znode(path.as_str(), true, &admin)
                .map_err(|e| {
                    refused(format!(
                        "deleting {path} failed: {}; nothing was released, try again",
                        e.message()
                    ))
                })?;
        }
        record.chroots.remove(path.as_str());
        let data: Databag = [(ownership::KEY.to_string(), record.to_json())].into();
        let tools = self.tools;
        if let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
            tools.relation_set(peer.relation, true, &data)?;
            peer.apply_app_write(&data);
        }
        // What ZooKeeper said about paths clients asked for may have changed.
        self.local.client_facts.clear();
        let what = if delete {
            format!("{path}, kept for {}, is deleted", owned.app)
        } else {
            format!(
                "{path}, kept for {}, is released: its data stays, readable by the super user only, and is no longer reserved for any application",
                owned.app
            )
        };
        tracing::info!("{what}");
        self.apply_now()?;
        Ok([
            ("path".to_string(), path.to_string()),
            ("kept-for".to_string(), owned.app),
            ("deleted".to_string(), delete.to_string()),
            ("message".to_string(), what),
        ]
        .into())
    }

    fn quorum_status(&mut self) -> ActionResult {
        self.load_view().map_err(|e| refused(e.to_string()))?;
        let Some(peer) = self.view.as_ref().and_then(|v| v.peer.clone()) else {
            return Err(refused("the cluster peer relation does not exist yet"));
        };
        // The units related now (the members' configuration names any other server).
        let book: BTreeMap<u32, String> = peer
            .units
            .iter()
            .filter_map(|(u, d)| Some((*u, d.address()?.to_string())))
            .collect();
        let report = self.ensemble.report(&book);
        if report.members.is_empty() && report.others.is_empty() {
            return Err(refused(
                "no server answered: none of this application's servers runs or is reachable from this unit; see juju status",
            ));
        }
        let unit_name = |u: Option<u32>| {
            u.map(|n| format!("{}/{n}", self.ctx.app))
                .unwrap_or_default()
        };
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        out.insert(
            "leader".into(),
            report.leader.clone().unwrap_or_else(|| "none".into()),
        );
        if report.leader.is_none() {
            out.insert(
                "message".into(),
                "no quorum leader: what each reachable server says is below (the configuration is the newest one a server holds)".into(),
            );
        }
        out.insert(
            "config-version".into(),
            report.config_version.clone().unwrap_or_default(),
        );
        out.insert("syncing".into(), report.syncing.to_string());
        if let Some(r) = &report.syncing_reason {
            out.insert("syncing-reason".into(), r.clone());
        }
        for (group, list) in [("members", &report.members), ("others", &report.others)] {
            for m in list.iter() {
                let prefix = format!("{group}.server-{}", m.server_id);
                out.insert(format!("{prefix}.unit"), unit_name(m.unit));
                out.insert(format!("{prefix}.address"), m.address.clone());
                out.insert(format!("{prefix}.role"), m.role.clone());
                out.insert(format!("{prefix}.state"), m.state.clone());
                out.insert(format!("{prefix}.reachable"), m.reachable.to_string());
                if let Some(z) = &m.zxid {
                    out.insert(format!("{prefix}.zxid"), z.clone());
                }
                if let Some(b) = &m.build {
                    out.insert(format!("{prefix}.build"), b.clone());
                }
                if let Some(n) = m.digest_mismatches {
                    out.insert(format!("{prefix}.digest-mismatches"), n.to_string());
                }
            }
        }
        let json = serde_json::to_string(&report).unwrap_or_default();
        out.insert("json".into(), json);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_checks() {
        assert!(check_password("s3cret-Pass word").is_ok());
        assert!(
            check_password("a$b{c}d\"e\\f").is_ok(),
            "$ alone, quotes, backslashes"
        );
        assert!(check_password(&"x".repeat(256)).is_ok());
        for (pw, why) in [
            ("", "leave the parameter out"),
            ("a\nbcdefghi", "U+000A"),
            ("pässwörd1", "U+00E4"),
            ("abc", "has 3 characters"),
            ("pw${user.name}x", "expands"),
            ("x${nosuchprop}y", "expands"),
        ] {
            let e = check_password(pw).unwrap_err();
            assert!(e.contains(why), "{pw:?}: {e}");
            assert!(e.contains("8 to 256 printable ASCII"), "{e}");
        }
        assert!(check_password(&"x".repeat(257))
            .unwrap_err()
            .contains("257 characters"));
        // Characters, not bytes.
        assert!(check_password(&"é".repeat(100)).is_err());
    }
}
