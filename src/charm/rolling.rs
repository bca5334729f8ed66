//! Rolling restarts through the lock on the `restart` peer relation (protocol in
//! [`crate::restart`]): every unit publishes what its server loaded; the leader grants one
//! behind unit at a time, the quorum leader last, only while every voter serves; the granted
//! unit restarts and publishes again, which wakes the leader for the next grant.

use crate::juju::tools::HookTools as _;
use std::collections::BTreeMap;

use super::hook::Snapshot;
use super::reconcile::desired_fingerprint;
use super::{CharmError, ZooKeeperCharm};
use crate::engine::status::UnitCondition;
use crate::juju::tools::{BagRead, Databag, Status};
use crate::juju::RelationId;
use crate::quorum::plan::{EnsembleState, UnitId};
use crate::restart::{self, LockInput, LockStep, UnitRestart, KEY_GRANTED, KEY_GRANTED_FOR};
use crate::state::credentials;

const KEY_STARTS: &str = "starts";

impl ZooKeeperCharm<'_> {
    /// The `restart` relation id.
    fn restart_relation(&mut self) -> Result<Option<RelationId>, CharmError> {
        Ok(self
            .tools
            .relation_ids(restart::ENDPOINT)?
            .into_iter()
            .next())
    }

    /// What this unit's server loaded; nothing when it serves TLS from stores that changed
    /// since (so the leader sees it behind and grants it a restart).
    fn my_restart_state(&self) -> UnitRestart {
        UnitRestart {
            loaded: self.local.loaded.clone().filter(|_| !self.tls_stale),
            clients: self.local.loaded_clients.clone(),
        }
    }

    /// Publishes `loaded`, `clients` and `starts` in this unit's restart bag when they changed.
    fn publish_restart(&mut self, rel: RelationId) -> Result<(), CharmError> {
        let mut want = self.my_restart_state().to_bag();
        want.insert(KEY_STARTS.into(), self.local.starts.to_string());
        if want != self.local.published_restart {
            let diff: Databag = want
                .iter()
                .filter(|(k, v)| self.local.published_restart.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.tools.relation_set(rel, false, &diff)?;
            self.local.published_restart = want;
        }
        Ok(())
    }

    /// This unit holds the lock and is behind: restart its server, unless it was restarted for
    /// these very inputs by an earlier hook and did not serve in time then (a slow sync): that
    /// server is left to finish (if it serves now, the turn is done; if it still runs, the roll
    /// keeps waiting), and restarted again only if it died. Returns whether the turn is done.
    fn take_turn(&mut self, f: &Snapshot, rel: RelationId) -> Result<bool, CharmError> {
        if let Some((stalled, clients)) = self.local.restart_stalled.clone() {
            if f.desired.as_ref() == Some(&stalled) && self.workload.alive() {
                let serving = f
                    .address
                    .as_ref()
                    .is_some_and(|a| self.ensemble.probe(a).broadcasting());
                if !serving {
                    self.conditions.push(UnitCondition::RestartStalled);
                    return Ok(false);
                }
                tracing::info!("rolling restart: this server serves again; its turn is done");
                self.local.loaded = Some(stalled);
                self.local.loaded_clients = clients;
                self.local.restart_stalled = None;
                self.publish_restart(rel)?;
                return Ok(true);
            }
        }
        self.restart_now(f, rel)
    }

    /// Restarts this unit's server now (it holds the lock) and waits until it serves again.
    /// Returns whether it does (if not, the roll stops with this unit).
    fn restart_now(&mut self, f: &Snapshot, rel: RelationId) -> Result<bool, CharmError> {
        let build = super::upgrade::target(&f.peer);
        if !self.workload.build_available(&build) {
            // The target is a build this unit's charm does not carry (a refresh is under way):
            // it waits for its charm, keeping its server as it is.
            tracing::info!(
                "rolling restart: not restarting server.{}: ZooKeeper {} is not available to this charm yet",
                crate::quorum::plan::server_id(f.me),
                crate::upgrade::label(&build)
            );
            return Ok(false);
        }
        // Checked again right before: whatever the grant saw, restarting now must not take a
        // second server away.
        if let Some(why) = self.others_not_serving(f) {
            tracing::info!(
                "rolling restart: not restarting server.{} yet: {why}",
                crate::quorum::plan::server_id(f.me)
            );
            self.conditions.push(UnitCondition::RestartPending);
            self.meet(super::ensemble_io::Verdict::Defer(why));
            return Ok(false);
        }
        tracing::info!(
            "rolling restart: restarting server.{}",
            crate::quorum::plan::server_id(f.me)
        );
        let upgrading = self.workload.started_build().unwrap_or_default() != build;
        self.show_progress(Status::maintenance(if upgrading {
            "upgrading..."
        } else {
            "restarting zookeeper server (rolling restart)"
        }))?;
        // The files for these very inputs (an earlier step of this hook may have moved them;
        // the memo of what they were rendered from may be older than the files after a failed
        // hook): written whatever the memo says (only what differs changes).
        self.write_server_files(f)?;
        self.tools
            .set_memo(super::reconcile::MEMO_RENDERED, f.render_key());
        self.local.restart_stalled = None;
        self.workload.restart()?;
        self.mark_loaded(f)?;
        let serving = match f.address.clone() {
            Some(a) => self.await_broadcast(&a),
            None => false,
        };
        if !serving {
            // The roll stops here: this unit publishes no loaded inputs (so it stays behind
            // whatever the inputs become, a reverted configuration included) and keeps the lock,
            // so the leader grants nobody else and the rest of the quorum is left alone. Later
            // hooks look whether it serves (a slow sync) before restarting it again.
            if let Some(loaded) = self.local.loaded.take() {
                self.local.restart_stalled = Some((loaded, self.local.loaded_clients.clone()));
            }
            tracing::error!(
                "rolling restart stopped: server.{} does not serve again after its restart; \
                 the other servers are left as they are (check tick-time, init-limit and the server log)",
                crate::quorum::plan::server_id(f.me)
            );
            self.conditions.push(UnitCondition::RestartStalled);
        }
        self.publish_restart(rel)?;
        Ok(serving)
    }

    /// Why restarting this unit's server now would leave the quorum short: no quorum leader,
    /// a member syncing, or another voter not serving.
    fn others_not_serving(&mut self, f: &Snapshot) -> Option<String> {
        let book = self.address_book(&f.peer);
        let ens = self.ensemble.observe(&book);
        quorum_short(&ens, Some(f.me), |v| {
            format!("server.{}", crate::quorum::plan::server_id(v))
        })
    }

    /// The rolling-restart step of the reconcile. The leader gets back what every unit's
    /// `restart` bag says (which servers know which client users, for the answers to clients).
    pub(super) fn rolling(
        &mut self,
        f: &mut Snapshot,
        ens: Option<&EnsembleState>,
    ) -> Result<Option<BTreeMap<UnitId, UnitRestart>>, CharmError> {
        let Some(desired) = f.desired.clone() else {
            return Ok(None);
        };
        if f.dying || !self.workload.initialized() || !self.workload.alive() {
            return Ok(None);
        }
        let Some(rel) = self.restart_relation()? else {
            return Ok(None);
        };
        self.tls_stale = self.tls_stores_changed()?;
        if self.tls_stale {
            tracing::info!(
                "this server's TLS certificate or trust store changed: it restarts in turn"
            );
        }
        self.publish_restart(rel)?;
        let behind = self.my_restart_state().loaded.as_deref() != Some(desired.as_str());
        if f.leader {
            // A rotation can only move on when a roll just completed (or under a new leader).
            let idle = self.lead_restarts(f, rel, &desired, ens)?;
            let check = idle == Some(true) || (idle.is_some() && self.leading_anew());
            if check && self.after_roll(f)? {
                // A rotation moved on: the next roll starts in this hook.
                if let Some(desired) = f.desired.clone() {
                    self.lead_restarts(f, rel, &desired, ens)?;
                }
            }
            // The bags were just read: the hook tools' cache answers without a tool call.
            return Ok(Some(self.read_restart_states(f, rel)?));
        }
        if behind {
            let app = self.tools.relation_get(rel, &self.ctx.app, true)?;
            let mine = app.get(KEY_GRANTED).map(String::as_str) == Some(self.ctx.unit.as_str());
            // A grant for other inputs than this unit's (the inputs changed after the leader
            // granted it) waits for the leader to re-issue it.
            if mine && app.get(KEY_GRANTED_FOR).map(String::as_str) == Some(desired.as_str()) {
                self.take_turn(f, rel)?;
            } else {
                if mine {
                    tracing::info!(
                        "rolling restart: the lock was granted for other inputs; waiting for the leader to grant it for these"
                    );
                }
                self.conditions.push(UnitCondition::RestartPending);
            }
        }
        Ok(None)
    }

    /// What the restart bags say, this unit's own state included (started units only).
    fn read_restart_states(
        &mut self,
        f: &Snapshot,
        rel: RelationId,
    ) -> Result<BTreeMap<UnitId, UnitRestart>, CharmError> {
        let mut states = BTreeMap::new();
        let mut to_read = Vec::new();
        for (u, d) in &f.peer.units {
            if *u == f.me {
                states.insert(*u, self.my_restart_state());
            } else if d.started() {
                to_read.push((*u, d.name.as_str()));
            }
        }
        let reads: Vec<BagRead<'_>> = to_read
            .iter()
            .map(|(_, name)| BagRead {
                relation: rel,
                target: name,
                app: false,
            })
            .collect();
        for ((u, _), bag) in to_read.iter().zip(self.tools.relation_get_many(&reads)) {
            states.insert(*u, UnitRestart::from_bag(&bag?));
        }
        Ok(states)
    }

    /// The lock holder and the fingerprint it was granted for, as the application bag says.
    fn granted_lock(&mut self, rel: RelationId) -> Result<Option<(String, String)>, CharmError> {
        let app = self.tools.relation_get(rel, &self.ctx.app, true)?;
        let g = app.get(KEY_GRANTED).cloned().unwrap_or_default();
        let fp = app.get(KEY_GRANTED_FOR).cloned().unwrap_or_default();
        Ok(Some((g, fp)).filter(|(g, _)| !g.is_empty()))
    }

    /// Writes the lock holder and the inputs it may restart for ("" for nobody).
    fn set_granted(
        &mut self,
        rel: RelationId,
        name: &str,
        desired: &str,
    ) -> Result<(), CharmError> {
        let desired = if name.is_empty() { "" } else { desired };
        self.tools.relation_set(
            rel,
            true,
            &[
                (KEY_GRANTED.to_string(), name.to_string()),
                (KEY_GRANTED_FOR.to_string(), desired.to_string()),
            ]
            .into(),
        )?;
        Ok(())
    }

    /// The leader's side: grant the lock to the next behind unit, restarting itself when its
    /// turn comes (its own grant produces no event for it). `None` while a roll is under way;
    /// `Some(just_completed)` once every unit is current.
    fn lead_restarts(
        &mut self,
        f: &Snapshot,
        rel: RelationId,
        desired: &str,
        ens: Option<&EnsembleState>,
    ) -> Result<Option<bool>, CharmError> {
        let mut grant = self.granted_lock(rel)?;
        let mut states = self.read_restart_states(f, rel)?;
        let mut ens = ens.cloned().unwrap_or_default();
        for _ in 0..=states.len() {
            let granted = grant
                .as_ref()
                .and_then(|(g, _)| crate::juju::UnitName::parse(g))
                .map(|u| u.number());
            let healthy = ens.leader.is_some()
                && !ens.syncing
                && ens.voters().iter().all(|v| ens.broadcasting.contains(v));
            let step = restart::next_step(&LockInput {
                desired,
                units: &states,
                granted,
                quorum_leader: ens.leader,
                healthy,
            });
            match step {
                LockStep::Idle => {
                    if grant.is_some() {
                        self.set_granted(rel, "", "")?;
                        tracing::info!("rolling restart complete");
                    }
                    return Ok(Some(grant.is_some()));
                }
                LockStep::InProgress(u) => {
                    tracing::debug!("rolling restart: unit {u} is restarting");
                    // The inputs changed under the grant: the same unit keeps the lock, now
                    // for these inputs (moving it on could restart two servers at once).
                    if let Some((name, fp)) = grant.clone().filter(|(_, fp)| fp != desired) {
                        tracing::info!(
                            "rolling restart: {name} keeps the lock, now for the current inputs (was for {})",
                            if fp.is_empty() { "unknown inputs" } else { fp.as_str() }
                        );
                        self.set_granted(rel, &name, desired)?;
                        grant = Some((name, desired.to_string()));
                    }
                    if u == f.me {
                        if !self.take_turn(f, rel)? || self.upgrade_view.stack.is_some() {
                            // Under an upgrade, the next grant waits for the upgrade decision
                            // to count this restart (the reconcile runs the roll again).
                            return Ok(None);
                        }
                        states.insert(f.me, self.my_restart_state());
                        let book = self.address_book(&f.peer);
                        ens = self.ensemble.observe(&book);
                        continue;
                    }
                    self.conditions.push(UnitCondition::RestartPending);
                    return Ok(None);
                }
                LockStep::Wait(why) => {
                    tracing::info!("rolling restart: {why}");
                    if states.get(&f.me).and_then(|s| s.loaded.as_deref()) != Some(desired) {
                        self.conditions.push(UnitCondition::RestartPending);
                    }
                    return Ok(None);
                }
                LockStep::Grant(u) => {
                    if let Some(hold) = self.upgrade_hold.clone() {
                        tracing::info!("rolling restart: {hold}");
                        if states.get(&f.me).and_then(|s| s.loaded.as_deref()) != Some(desired) {
                            self.conditions.push(UnitCondition::RestartPending);
                        }
                        return Ok(None);
                    }
                    let name = format!("{}/{u}", self.ctx.app);
                    tracing::info!("rolling restart: {name} may restart now");
                    self.set_granted(rel, &name, desired)?;
                    grant = Some((name, desired.to_string()));
                    if u != f.me {
                        return Ok(None);
                    }
                    if !self.take_turn(f, rel)? || self.upgrade_view.stack.is_some() {
                        return Ok(None);
                    }
                    states.insert(f.me, self.my_restart_state());
                    let book = self.address_book(&f.peer);
                    ens = self.ensemble.observe(&book);
                }
            }
        }
        Ok(None)
    }

    /// After a completed roll (leader): drop the previous super password (no file changes),
    /// or move a staged sync rotation to its next phase (a new roll). Returns whether a new
    /// roll is needed.
    fn after_roll(&mut self, f: &mut Snapshot) -> Result<bool, CharmError> {
        let Some(mut creds) = self.creds()? else {
            return Ok(false);
        };
        if creds
            .values
            .remove(credentials::KEY_SUPER_PREVIOUS)
            .is_some()
        {
            credentials::write_quietly(self.tools, &creds)?;
            tracing::info!("super password rotation complete: every server runs the new password");
        }
        let mut new_roll = false;
        if creds.sync_phase() != 0 {
            let phase = creds.sync_phase();
            creds.advance_sync_rotation();
            let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) else {
                return Ok(false);
            };
            credentials::write(self.tools, peer, &creds)?;
            f.peer = peer.clone();
            match phase {
                1 => tracing::info!("sync rotation: every server accepts both passwords; learners now switch to the new one"),
                _ => tracing::info!("sync rotation: every learner uses the new password; dropping the old one"),
            }
            new_roll = true;
        }
        self.set_creds(creds);
        if new_roll {
            if let Some(config) = &f.config {
                f.desired = Some(desired_fingerprint(config, &f.peer));
            }
            self.write_server_files(f)?;
        }
        Ok(new_roll)
    }
}

/// Why restarting a server now would leave the quorum short: no quorum leader, members syncing,
/// or a voter other than `except` not serving (each named by `name`). The one health rule of
/// rolling restarts and of the pre-upgrade check.
pub(super) fn quorum_short(
    ens: &EnsembleState,
    except: Option<UnitId>,
    name: impl Fn(UnitId) -> String,
) -> Option<String> {
    if ens.leader.is_none() {
        return Some("no quorum leader".into());
    }
    if ens.syncing {
        return Some("members syncing".into());
    }
    let down: Vec<String> = ens
        .voters()
        .into_iter()
        .filter(|v| Some(*v) != except && !ens.broadcasting.contains(v))
        .map(name)
        .collect();
    (!down.is_empty()).then(|| format!("{} not serving", down.join(", ")))
}
