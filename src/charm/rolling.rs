//! Rolling restarts through the lock on the `restart` peer relation (protocol in
//! [`crate::restart`]): every unit publishes what its server loaded; the leader grants one
//! behind unit at a time, the quorum leader last, only while every voter serves; the granted
//! unit restarts and publishes again, which wakes the leader for the next grant.

use std::collections::BTreeMap;

use super::reconcile::{desired_fingerprint, Facts};
use super::{CharmError, ZooKeeperCharm};
use crate::engine::status::UnitCondition;
use crate::juju::tools::{Databag, Status};
use crate::juju::RelationId;
use crate::quorum::plan::{Ensemble, UnitId};
use crate::restart::{self, LockInput, LockStep, UnitRestart, KEY_GRANTED};
use crate::state::credentials;

const KEY_STARTS: &str = "starts";

impl ZooKeeperCharm<'_> {
    /// The `restart` relation id (cached: peer relation ids never change).
    fn restart_relation(&mut self) -> Result<Option<RelationId>, CharmError> {
        if let Some(id) = self.local.restart_relation {
            return Ok(Some(RelationId(id)));
        }
        let id = self
            .tools
            .relation_ids(restart::ENDPOINT)?
            .into_iter()
            .next();
        self.local.restart_relation = id.map(|r| r.0);
        Ok(id)
    }

    fn my_restart_state(&self) -> UnitRestart {
        UnitRestart {
            loaded: self.local.loaded.clone(),
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

    /// Restarts this unit's server now (it holds the lock) and waits until it serves again.
    fn restart_now(&mut self, f: &Facts, rel: RelationId) -> Result<(), CharmError> {
        tracing::info!(
            "rolling restart: restarting server.{}",
            crate::quorum::plan::server_id(f.me)
        );
        self.show_progress(Status::maintenance(
            "restarting zookeeper server (rolling restart)",
        ))?;
        self.workload.restart()?;
        self.mark_loaded(f);
        if let Some(a) = f.address.clone() {
            self.await_broadcast(&a);
        }
        self.publish_restart(rel)
    }

    /// Step 6 of the reconcile.
    pub(super) fn rolling(
        &mut self,
        f: &mut Facts,
        ens: Option<&Ensemble>,
    ) -> Result<(), CharmError> {
        let Some(desired) = f.desired.clone() else {
            return Ok(());
        };
        if f.dying || !self.workload.initialized() || !self.workload.alive() {
            return Ok(());
        }
        let Some(rel) = self.restart_relation()? else {
            return Ok(());
        };
        self.publish_restart(rel)?;
        let behind = self.local.loaded.as_deref() != Some(desired.as_str());
        if f.leader {
            let idle = self.lead_restarts(f, rel, &desired, ens)?;
            if idle && self.after_roll(f)? {
                // A rotation moved on: the next roll starts in this hook.
                if let Some(desired) = f.desired.clone() {
                    self.lead_restarts(f, rel, &desired, ens)?;
                }
            }
            return Ok(());
        }
        if behind {
            let app = self.tools.relation_get(rel, &self.ctx.app, true)?;
            if app.get(KEY_GRANTED).map(String::as_str) == Some(self.ctx.unit.as_str()) {
                self.restart_now(f, rel)?;
            } else {
                self.conditions.push(UnitCondition::RestartPending);
            }
        }
        Ok(())
    }

    /// What the restart bags say, this unit's own state included (started units only).
    fn read_restart_states(
        &self,
        f: &Facts,
        rel: RelationId,
    ) -> Result<BTreeMap<UnitId, UnitRestart>, CharmError> {
        let mut states = BTreeMap::new();
        for (u, d) in &f.peer.units {
            if *u == f.me {
                states.insert(*u, self.my_restart_state());
            } else if d.started() {
                states.insert(
                    *u,
                    UnitRestart::from_bag(&self.tools.relation_get(rel, d.name.as_str(), false)?),
                );
            }
        }
        Ok(states)
    }

    /// The leader's side: grant the lock to the next behind unit, restarting itself when its
    /// turn comes (its own grant produces no event for it).
    fn lead_restarts(
        &mut self,
        f: &Facts,
        rel: RelationId,
        desired: &str,
        ens: Option<&Ensemble>,
    ) -> Result<bool, CharmError> {
        let app = self.tools.relation_get(rel, &self.ctx.app, true)?;
        let mut granted_name = app.get(KEY_GRANTED).cloned().filter(|g| !g.is_empty());
        let mut states = self.read_restart_states(f, rel)?;
        self.restart_states = Some(states.clone());
        let mut ens = ens.cloned().unwrap_or_default();
        for _ in 0..=states.len() {
            let granted = granted_name
                .as_ref()
                .and_then(|g| crate::juju::UnitName::parse(g))
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
                    if granted_name.is_some() {
                        self.tools.relation_set(
                            rel,
                            true,
                            &[(KEY_GRANTED.to_string(), String::new())].into(),
                        )?;
                        tracing::info!("rolling restart complete");
                    }
                    return Ok(true);
                }
                LockStep::InProgress(u) => {
                    tracing::debug!("rolling restart: unit {u} is restarting");
                    if u == f.me {
                        self.restart_now(f, rel)?;
                        states.insert(f.me, self.my_restart_state());
                        let book = self.address_book(&f.peer);
                        ens = self.ensemble.observe(&book);
                        continue;
                    }
                    self.conditions.push(UnitCondition::RestartPending);
                    return Ok(false);
                }
                LockStep::Wait(why) => {
                    tracing::info!("rolling restart: {why}");
                    if states.get(&f.me).and_then(|s| s.loaded.as_deref()) != Some(desired) {
                        self.conditions.push(UnitCondition::RestartPending);
                    }
                    return Ok(false);
                }
                LockStep::Grant(u) => {
                    let name = format!("{}/{u}", self.ctx.app);
                    tracing::info!("rolling restart: {name} may restart now");
                    self.tools.relation_set(
                        rel,
                        true,
                        &[(KEY_GRANTED.to_string(), name.clone())].into(),
                    )?;
                    granted_name = Some(name);
                    if u != f.me {
                        return Ok(false);
                    }
                    self.restart_now(f, rel)?;
                    states.insert(f.me, self.my_restart_state());
                    let book = self.address_book(&f.peer);
                    ens = self.ensemble.observe(&book);
                }
            }
        }
        Ok(false)
    }

    /// After a completed roll (leader): drop the previous super password (no file changes),
    /// or move a staged sync rotation to its next phase (a new roll). Returns whether a new
    /// roll is needed.
    fn after_roll(&mut self, f: &mut Facts) -> Result<bool, CharmError> {
        let Some(mut creds) = f.creds.clone() else {
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
        if let Some(view) = self.view.as_mut() {
            view.creds = Some(creds.clone());
        }
        f.creds = Some(creds);
        if new_roll {
            if let Some(config) = &f.config {
                f.desired = Some(desired_fingerprint(config, &f.peer));
            }
            self.write_server_files(f)?;
        }
        Ok(new_roll)
    }
}
