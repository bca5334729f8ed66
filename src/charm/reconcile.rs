//! What the reconcile's executor does to this unit's server and its peer bag (see [`super::hook`]
//! for the whole hook): start it (bootstrap, join, restart), render its files, write this unit's
//! bag, and the inputs that decide when a server must restart.

use std::collections::BTreeMap;

use super::hook::Snapshot;
use super::{CharmError, ZooKeeperCharm};
use crate::engine::status::UnitCondition;
use crate::juju::tools::HookTools as _;
use crate::juju::tools::{Databag, Status};
use crate::quorum::plan::{self, LocalAction, UnitId};
use crate::restart;
use crate::secret::Secret;
use crate::state::config::CharmConfig;
use crate::state::peer::{self, PeerState};
use crate::tls::serve::Serving;
use crate::workload::render::{self, ServerSettings};

/// The revision of how this charm renders the server's files and flags: bumped when a change
/// must reach running servers (a rolling restart follows an upgrade to it). 2: forced snapshot
/// sync and the digest on (issue 12).
pub(super) const RENDER_REVISION: u32 = 2;

/// The inputs that require a server restart when they change: configuration values, the
/// credentials revision, the operator's restart requests, the render revision. No secret
/// material.
pub(super) fn desired_fingerprint(config: &CharmConfig, peer: &PeerState) -> String {
    let rev = peer
        .app
        .get(peer::KEY_CREDENTIALS_REV)
        .map(String::as_str)
        .unwrap_or("0");
    let nonce = peer
        .app
        .get(peer::KEY_RESTART_NONCE)
        .map(String::as_str)
        .unwrap_or("0");
    // The TLS step only when above plain: servers that never served TLS keep their inputs.
    let tls = match super::tls::target(peer) {
        Serving::Plain => String::new(),
        t => format!(" tls={}", t.as_str()),
    };
    // The build only when one is pinned: servers on the distribution's package keep theirs.
    let build = match super::upgrade::target(peer) {
        b if b.is_empty() => String::new(),
        b => format!(" build={b}"),
    };
    restart::fingerprint(&format!(
        "init={} sync={} tick={} log={} creds={rev} restart={nonce} render={RENDER_REVISION}{tls}{build}",
        config.init_limit,
        config.sync_limit,
        config.tick_time,
        config.log_level.as_str()
    ))
}

/// The memo of what the server files on disk were rendered from.
pub(super) const MEMO_RENDERED: &str = "rendered";

impl ZooKeeperCharm<'_> {
    /// Writes to this unit's peer bag only what differs.
    pub(super) fn write_unit_bag(
        &mut self,
        s: &mut Snapshot,
        want: Databag,
    ) -> Result<(), CharmError> {
        let me = self.me();
        let bag = s.peer.unit(me).map(|u| u.bag.clone()).unwrap_or_default();
        let diff: Databag = want
            .into_iter()
            .filter(|(k, v)| bag.get(k).map(String::as_str).unwrap_or("") != v.as_str())
            .collect();
        if !diff.is_empty() {
            self.tools.relation_set(s.peer.relation, false, &diff)?;
            s.peer.apply_unit_write(me, &diff);
            if let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
                peer.apply_unit_write(me, &diff);
            }
        }
        Ok(())
    }

    /// Every address this unit knows for a peer (related now, or seen before).
    pub(super) fn address_book(&mut self, peer: &PeerState) -> BTreeMap<UnitId, String> {
        for (u, d) in &peer.units {
            if let Some(a) = d.address() {
                self.local.addresses.insert(*u, a.to_string());
            }
        }
        self.local.addresses.clone()
    }

    /// Renders and writes the server's files; true if any changed.
    pub(super) fn write_server_files(&mut self, f: &Snapshot) -> Result<bool, CharmError> {
        let (Some(config), Some(address)) = (&f.config, &f.address) else {
            return Ok(false);
        };
        let Some(creds) = self.creds()? else {
            return Ok(false);
        };
        let (Some(super_pw), Some(quorum)) = (creds.super_password(), creds.quorum_auth()) else {
            return Ok(false);
        };
        let clients = creds.client_users();
        let paths = self.workload.paths().clone();
        let settings = ServerSettings {
            config,
            flavor: self.workload.flavor(),
            paths: &paths,
            unit: f.me,
            address,
            super_password: super_pw,
            quorum: &quorum,
            client_users: &clients,
            tls: super::tls::target(&f.peer),
        };
        let mut changed = false;
        for (path, content) in render::server_files(&settings) {
            let content = if path == paths.zoo_cfg() {
                let current = self.workload.read(&path)?;
                if current
                    .as_deref()
                    .is_some_and(|cur| render::cfg_equivalent(cur, &content))
                {
                    continue;
                }
                render::keep_dynamic_line(&content, current.as_deref())
            } else {
                content
            };
            changed |= self
                .workload
                .write(&path, &content, render::is_private(&paths, &path))?;
        }
        changed |= self.workload.set_jvm_flags(&render::jvm_flags(&settings))?;
        // The ZooKeeper build the next start runs: the target, when this unit has it (else the
        // one it has stays: a crashed server comes back as it was).
        let build = super::upgrade::target(&f.peer);
        if self.workload.build_available(&build) {
            changed |= self.workload.set_build(&build)?;
        }
        Ok(changed)
    }

    /// The server now runs on the current inputs.
    pub(super) fn mark_loaded(&mut self, f: &Snapshot) -> Result<(), CharmError> {
        self.local.loaded = f.desired.clone();
        self.local.loaded_clients = self
            .creds()?
            .map(|c| {
                c.client_users()
                    .keys()
                    .filter_map(|k| crate::clients::ClientUser::parse(k).map(|u| u.0))
                    .collect()
            })
            .unwrap_or_default();
        self.local.starts += 1;
        // What the files it started from say (rendered from the same snapshot).
        let serving = super::tls::target(&f.peer);
        self.local.tls_serving = Some(serving.as_str().to_string());
        self.local.tls_loaded = self.tls_stores_fingerprint()?;
        (self.local.tls_loaded_ca, self.local.tls_loaded_trust) = self.stores_cas()?;
        self.tls_stale = false;
        Ok(())
    }

    /// Renders the files when the inputs changed since they were last rendered; true if any
    /// file changed. What they were rendered from is a memo of the hook tools, forgotten when
    /// the charm changes (a new charm version may render differently).
    pub(super) fn refresh_server_files(&mut self, f: &Snapshot) -> Result<bool, CharmError> {
        let key = f.render_key();
        if key.is_none() || self.tools.memo(MEMO_RENDERED) == key {
            return Ok(false);
        }
        let changed = self.write_server_files(f)?;
        self.tools.set_memo(MEMO_RENDERED, key);
        Ok(changed)
    }

    /// Passwords to try for super (current first), read only when a ZooKeeper session is needed.
    pub(super) fn super_candidates(&mut self) -> Result<Vec<Secret>, CharmError> {
        Ok(self
            .creds()?
            .map(|c| c.super_candidates())
            .unwrap_or_default())
    }

    /// Waits for this server to broadcast; records a condition if it died.
    pub(super) fn await_broadcast(&mut self, address: &str) -> bool {
        let wait = self
            .view
            .as_ref()
            .and_then(|v| v.config.as_ref().ok())
            .map(|c| std::time::Duration::from_secs(c.server_start_timeout.into()))
            .unwrap_or(self.opts.start_wait);
        let workload = self.workload;
        if self
            .ensemble
            .wait_broadcast(address, wait, &|| workload.alive())
        {
            return true;
        }
        if !self.workload.alive() {
            let tail = self.workload.log_tail(5);
            let last = tail.lines().last().unwrap_or("no log output").to_string();
            tracing::error!("the ZooKeeper server exited after starting; last log lines:\n{tail}");
            self.conditions.push(UnitCondition::ServiceNotRunning(last));
        } else {
            tracing::info!("server started but not yet broadcasting after {wait:?}");
        }
        false
    }

    /// Starts this unit's server as the planner said (`action`: bootstrap alone, join as an
    /// observer of the members, or restart after a crash), with freshly rendered files, and
    /// waits until it serves (bounded; a server that exits is a condition).
    pub(super) fn start_server(
        &mut self,
        f: &Snapshot,
        action: &LocalAction,
    ) -> Result<(), CharmError> {
        let Some(addr) = f.address.clone() else {
            return Ok(());
        };
        self.write_server_files(f)?;
        self.tools.set_memo(MEMO_RENDERED, f.render_key());
        if self.workload.initialized() && !matches!(action, LocalAction::Restart) {
            // A re-join: point the server back at a fresh initial configuration.
            self.workload.reset_dynamic_config()?;
        }
        let flavor = self.workload.flavor();
        let dynamic = self.workload.paths().dynamic();
        match action {
            LocalAction::Bootstrap => {
                let me: BTreeMap<UnitId, String> = [(f.me, addr.clone())].into();
                self.workload.write(
                    &dynamic,
                    &render::initial_dynamic(flavor, &me, None),
                    false,
                )?;
                tracing::info!(
                    "bootstrapping the ensemble: starting server.{} alone",
                    plan::server_id(f.me)
                );
                self.show_progress(Status::maintenance(
                    "starting zookeeper server (bootstrapping the ensemble)",
                ))?;
            }
            LocalAction::Join { participants } => {
                let text = render::initial_dynamic(flavor, participants, Some((f.me, &addr)));
                self.workload.write(&dynamic, &text, false)?;
                tracing::info!(
                    "starting server.{} as an observer of {:?}",
                    plan::server_id(f.me),
                    participants
                        .keys()
                        .map(|u| plan::server_id(*u))
                        .collect::<Vec<_>>()
                );
                self.show_progress(Status::maintenance(
                    "starting zookeeper server (joining the ensemble)",
                ))?;
            }
            _ => {
                tracing::warn!("the ZooKeeper server was not running; starting it again");
                self.show_progress(Status::maintenance(
                    "restarting zookeeper server (it was not running)",
                ))?;
            }
        }
        self.workload.start()?;
        if self
            .workload
            .build_available(&super::upgrade::target(&f.peer))
        {
            self.mark_loaded(f)?;
        } else {
            // It came back on the build it had (the target's is not here yet): not current,
            // so the roll restarts it onto the target once its charm carries it.
            tracing::info!("server restarted on its previous ZooKeeper build");
        }
        self.await_broadcast(&addr);
        Ok(())
    }

    /// The configuration is invalid and the server is down: bring it back with the last good
    /// files on disk.
    pub(super) fn restart_last_good(&mut self, f: &Snapshot) -> Result<(), CharmError> {
        let Some(addr) = f.address.clone() else {
            return Ok(());
        };
        tracing::warn!(
            "the ZooKeeper server was not running; starting it again with its last good configuration"
        );
        self.show_progress(Status::maintenance(
            "restarting zookeeper server (it was not running)",
        ))?;
        self.workload.start()?;
        self.local.starts += 1;
        self.await_broadcast(&addr);
        Ok(())
    }
}

pub(super) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(app: &[(&str, &str)]) -> PeerState {
        PeerState {
            relation: crate::juju::RelationId(0),
            units: BTreeMap::new(),
            app: app
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn fingerprint_follows_restart_relevant_inputs_only() {
        let c = CharmConfig::default();
        let base = desired_fingerprint(&c, &peer(&[]));
        assert_eq!(
            base,
            desired_fingerprint(
                &c,
                &peer(&[("0", "added"), ("internal-secret", "secret:x")])
            )
        );
        assert_ne!(
            base,
            desired_fingerprint(&c, &peer(&[("credentials-rev", "2")]))
        );
        assert_ne!(
            base,
            desired_fingerprint(&c, &peer(&[("restart-nonce", "1")]))
        );
        assert_ne!(
            base,
            desired_fingerprint(
                &CharmConfig {
                    tick_time: 500,
                    ..c.clone()
                },
                &peer(&[])
            )
        );
        let policy = CharmConfig {
            client_znode_policy: crate::state::config::ZnodePolicy::Delete,
            ..c.clone()
        };
        assert_eq!(
            base,
            desired_fingerprint(&policy, &peer(&[])),
            "the znode policy needs no restart"
        );
        assert!(
            restart::fingerprint(&format!(
                "init=5 sync=2 tick=2000 log=INFO creds=0 restart=0 render={}",
                RENDER_REVISION - 1
            )) != base,
            "a new render revision rolls the servers after an upgrade"
        );
    }
}
