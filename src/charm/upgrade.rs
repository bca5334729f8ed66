//! In-place upgrades in the reconcile: the leader moves the `workload-build` target on
//! evidence ([`crate::upgrade::decide`]); the rolling restart carries it out; every unit
//! publishes its charm release, the build its server runs, and Charmed ZooKeeper's `upgrade`
//! relation keys (`upgrade-stack`, `dependencies`, unit `state`) for its tools and operators.

use std::collections::BTreeMap;

use super::hook::{Observed, Snapshot};
use super::{CharmError, ZooKeeperCharm};
use crate::engine::status::UnitCondition;
use crate::juju::tools::{Databag, HookTools as _, Status};
use crate::quorum::plan::{server_id, UnitId};
use crate::restart::KEY_GRANTED;
use crate::state::credentials;
use crate::state::peer::PeerState;
use crate::upgrade::{self, schema, Decision, UnitState, UnitView};

/// The file in the charm directory naming the charm release (`cargo xtask pack` writes it).
pub const RELEASE_FILE: &str = "version";

/// What the leader decided in this hook, for the unit statuses and the `upgrade` relation.
#[derive(Clone, Debug, Default)]
pub(super) struct UpgradeView {
    /// Units still to upgrade (Charmed ZooKeeper's stack order), while one is in flight.
    pub stack: Option<Vec<UnitId>>,
    /// The application status while an upgrade waits or runs.
    pub progress: Option<Status>,
}

/// The build each unit's running server was started with, and its charm release.
pub(super) fn unit_views(peer: &PeerState) -> BTreeMap<UnitId, UnitView> {
    peer.units
        .iter()
        .map(|(u, d)| {
            (
                *u,
                UnitView {
                    release: d
                        .bag
                        .get(upgrade::KEY_RELEASE)
                        .filter(|r| !r.is_empty())
                        .cloned(),
                    offered: d.bag.get(upgrade::KEY_OFFERED).cloned(),
                    build: d.bag.get(upgrade::KEY_BUILD).cloned().or_else(|| {
                        // A unit that started before builds were published ran the
                        // distribution's package.
                        d.started().then(String::new)
                    }),
                    started: d.started(),
                },
            )
        })
        .collect()
}

/// The target in peer data ("" when unset: the distribution's package).
pub(super) fn target(peer: &PeerState) -> String {
    peer.app
        .get(upgrade::KEY_TARGET)
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}

/// Some server does not run the target yet.
pub(super) fn in_flight(peer: &PeerState) -> bool {
    let (done, of) = upgrade::progress(&unit_views(peer), &target(peer));
    done < of
}

impl ZooKeeperCharm<'_> {
    /// This charm's release: its `version` file, else the crate version.
    pub(super) fn charm_release(&self) -> String {
        std::fs::read_to_string(self.ctx.charm_dir.join(RELEASE_FILE))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string())
    }

    /// Why restarting a server now would leave the quorum short (the pre-upgrade check on the
    /// servers): no quorum leader, members syncing, a voter not serving.
    pub(super) fn ensemble_unhealthy(&self, s: &Snapshot, o: &Observed) -> Option<String> {
        let Some(ens) = o.ensemble.as_ref() else {
            return Some("the ensemble was not observed".into());
        };
        super::rolling::quorum_short(ens, None, |v| match s.peer.unit(v) {
            Some(d) => format!("server.{} ({})", server_id(v), d.name),
            None => format!("server.{}", server_id(v)),
        })
    }

    /// Procedures an upgrade must not overlap: a TLS switch, a password rotation, a rolling
    /// restart.
    pub(super) fn upgrade_busy(&mut self, s: &Snapshot) -> Result<Option<String>, CharmError> {
        if self.tls_in_flight(s) {
            return Ok(Some("a TLS switch is in flight".into()));
        }
        if let Some(creds) = self.creds()? {
            if creds.sync_phase() != 0 || creds.values.contains_key(credentials::KEY_SUPER_PREVIOUS)
            {
                return Ok(Some("a password rotation is in flight".into()));
            }
        }
        let restart = self
            .tools
            .relation_ids(crate::restart::ENDPOINT)?
            .into_iter()
            .next();
        if let Some(rel) = restart {
            let app = self.tools.relation_get(rel, &self.ctx.app, true)?;
            if let Some(g) = app.get(KEY_GRANTED).filter(|g| !g.is_empty()) {
                return Ok(Some(format!(
                    "a rolling restart is in flight ({g} holds the lock)"
                )));
            }
        }
        Ok(None)
    }

    /// The leader's step: move the target on evidence, note how far an upgrade is, hold the
    /// roll when the pause option says so, mark the peer-data schema.
    pub(super) fn upgrade_target(
        &mut self,
        s: &mut Snapshot,
        o: &Observed,
    ) -> Result<bool, CharmError> {
        self.upgrade_hold = None;
        // What gather read once for this hook.
        let offered = s.offered.clone();
        let release = s.release.clone();
        let current = target(&s.peer);
        let mut writes = Databag::new();
        let found = s.peer.app.get(schema::KEY).map(String::as_str);
        if let schema::Compat::Newer(v) = schema::compat(found) {
            tracing::info!(
                "peer data was written by a newer charm (schema {v}, this charm knows {}): keys it does not know are left alone",
                schema::CURRENT
            );
        }
        if let Some(v) = schema::to_write(found) {
            writes.insert(schema::KEY.into(), v);
        }
        let units = unit_views(&s.peer);
        let (pause, resumed) = match &s.config {
            Some(c) => (c.pause_after_unit_refresh, resumed(&s.peer)),
            None => (upgrade::Pause::None, resumed(&s.peer)),
        };
        let mut input = upgrade::Input {
            release: &release,
            offered: &offered,
            target: &current,
            units,
            unhealthy: None,
            busy: None,
            quorum_leader: o.ensemble.as_ref().and_then(|e| e.leader),
            pause,
            resumed,
            rollback: rolling_back(&s.peer),
        };
        // The pre-upgrade check only where it decides (reading the credentials and the lock
        // costs tool calls, and a rollback must not wait on them).
        if upgrade::needs_check(&input) {
            input.unhealthy = self.ensemble_unhealthy(s, o);
            input.busy = self.upgrade_busy(s)?;
        }
        let decision = upgrade::decide(&input);
        let mut moved = false;
        let mut view = UpgradeView::default();
        match &decision {
            Decision::Idle => {
                if resumed > 0 {
                    writes.insert(upgrade::KEY_RESUMED.into(), String::new());
                }
                writes.insert(upgrade::KEY_ROLLBACK.into(), String::new());
            }
            Decision::Move { from, to, rollback } => {
                if input.units.values().any(|u| u.started) {
                    tracing::info!(
                        "{} ZooKeeper {} -> {}: servers restart one at a time, the quorum leader last",
                        if *rollback { "rolling back" } else { "upgrading" },
                        upgrade::label(from),
                        upgrade::label(to)
                    );
                } else {
                    tracing::info!("this ensemble runs ZooKeeper {}", upgrade::label(to));
                }
                writes.insert(upgrade::KEY_TARGET.into(), to.clone());
                writes.insert(upgrade::KEY_RESUMED.into(), String::new());
                writes.insert(
                    upgrade::KEY_ROLLBACK.into(),
                    if *rollback { "true" } else { "" }.into(),
                );
                moved = true;
            }
            Decision::InFlight {
                done,
                of,
                stack,
                hold,
            } => {
                view.stack = Some(stack.clone());
                let text = format!(
                    "upgrading ZooKeeper to {}: {done} of {of} servers",
                    upgrade::label(&current)
                );
                view.progress = Some(match hold {
                    Some(h) => {
                        self.upgrade_hold = Some(h.clone());
                        Status::blocked(format!("{text}; {h}"))
                    }
                    None => Status::maintenance(text),
                });
            }
            Decision::Waiting { why, hold } => {
                tracing::info!("{why}");
                view.progress = Some(Status::waiting(why.clone()));
                if *hold {
                    self.upgrade_hold = Some(why.clone());
                }
                if why.contains("pre-upgrade check") {
                    self.meet(super::ensemble_io::Verdict::Defer(why.clone()));
                }
            }
        }
        let writes: Databag = writes
            .into_iter()
            .filter(|(k, v)| s.peer.app.get(k).map(String::as_str).unwrap_or("") != v.as_str())
            .collect();
        if !writes.is_empty() {
            self.tools.relation_set(s.peer.relation, true, &writes)?;
            s.peer.apply_app_write(&writes);
            if let Some(pv) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
                pv.apply_app_write(&writes);
            }
            if let Some(config) = &s.config {
                if s.desired.is_some() {
                    s.desired = Some(super::reconcile::desired_fingerprint(config, &s.peer));
                }
            }
        }
        if moved && input.units.values().any(|u| u.started) {
            let started: Vec<UnitId> = input
                .units
                .iter()
                .filter(|(_, v)| v.started)
                .map(|(u, _)| *u)
                .collect();
            let behind: Vec<UnitId> = started
                .iter()
                .copied()
                .filter(|u| input.units[u].build.as_deref() != Some(offered.as_str()))
                .collect();
            view.progress = Some(Status::maintenance(format!(
                "upgrading ZooKeeper to {}: {} of {} servers",
                upgrade::label(&offered),
                started.len() - behind.len(),
                started.len()
            )));
            view.stack = Some(upgrade::stack(&behind, input.quorum_leader));
        }
        self.upgrade_view = view;
        Ok(moved)
    }

    /// This unit's keys on the `upgrade` relation (and the leader's): Charmed ZooKeeper's
    /// `state`, `upgrade-stack` and `dependencies`, written only when they change.
    pub(super) fn upgrade_record(&mut self, s: &Snapshot, o: &Observed) -> Result<(), CharmError> {
        let Some(rel) = self
            .tools
            .relation_ids(upgrade::ENDPOINT)?
            .into_iter()
            .next()
        else {
            return Ok(());
        };
        let t = target(&s.peer);
        let running = self
            .workload
            .alive()
            .then(|| self.workload.started_build().unwrap_or_default());
        let stalled = self.local.restart_stalled.is_some();
        let state = upgrade::unit_state(&t, running.as_deref(), in_flight(&s.peer), stalled);
        if self.local.upgrade_state.as_deref() != Some(state.as_str()) {
            self.tools.relation_set(
                rel,
                false,
                &[(
                    upgrade::KEY_UNIT_STATE.to_string(),
                    state.as_str().to_string(),
                )]
                .into(),
            )?;
            self.local.upgrade_state = Some(state.as_str().to_string());
        }
        if !s.leader {
            return Ok(());
        }
        // What the leader wrote before (read once: a stack Charmed ZooKeeper's pre-upgrade
        // check left behind expires here instead of freezing anything).
        let before = match self.local.upgrade_app.clone() {
            Some(b) if !self.leading_anew() => b,
            _ => self.tools.relation_get(rel, &self.ctx.app, true)?,
        };
        let stack = self
            .upgrade_view
            .stack
            .as_ref()
            .map(|st| upgrade::stack_json(st))
            .unwrap_or_default();
        let version = o.probe.version.clone().unwrap_or_else(|| "3.8.0".into());
        let want: Databag = [
            (upgrade::KEY_STACK.to_string(), stack),
            (
                upgrade::KEY_DEPENDENCIES.to_string(),
                upgrade::dependencies(&version),
            ),
        ]
        .into();
        let diff: Databag = want
            .iter()
            .filter(|(k, v)| before.get(*k).map(String::as_str).unwrap_or("") != v.as_str())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !diff.is_empty() {
            if let (true, Some(old)) = (
                want[upgrade::KEY_STACK].is_empty(),
                before
                    .get(upgrade::KEY_STACK)
                    .filter(|_| diff.contains_key(upgrade::KEY_STACK)),
            ) {
                tracing::info!("upgrade-stack cleared (no upgrade in flight; was {old})");
            }
            self.tools.relation_set(rel, true, &diff)?;
        }
        self.local.upgrade_app = Some(want);
        Ok(())
    }

    /// This unit's upgrade condition: behind the target while an upgrade is in flight, done
    /// while others are not, or its restart onto the new build stalled.
    pub(super) fn upgrade_condition(&self, s: &Snapshot) -> Option<UnitCondition> {
        let t = target(&s.peer);
        let running = self
            .workload
            .alive()
            .then(|| self.workload.started_build().unwrap_or_default())?;
        let state = upgrade::unit_state(
            &t,
            Some(&running),
            in_flight(&s.peer),
            self.local.restart_stalled.is_some(),
        );
        // A rollback is never paused (as the leader decides).
        if matches!(state, UnitState::Ready | UnitState::Completed) && !rolling_back(&s.peer) {
            let (done, _) = upgrade::progress(&unit_views(&s.peer), &t);
            let pause = s
                .config
                .as_ref()
                .map(|c| c.pause_after_unit_refresh)
                .unwrap_or_default();
            if let Some(h) = upgrade::hold(pause, done, resumed(&s.peer)) {
                return Some(UnitCondition::UpgradePaused(h));
            }
        }
        match state {
            UnitState::Ready => Some(if self.workload.build_available(&t) {
                UnitCondition::UpgradeReady
            } else {
                UnitCondition::UpgradeWaitingCharm(upgrade::label(&t).to_string())
            }),
            UnitState::Completed => Some(UnitCondition::UpgradeCompleted),
            UnitState::Failed => Some(UnitCondition::UpgradeFailed(upgrade::label(&t).into())),
            _ => None,
        }
    }
}

/// The leader moved the target back to a build servers ran before.
fn rolling_back(peer: &PeerState) -> bool {
    peer.app
        .get(upgrade::KEY_ROLLBACK)
        .is_some_and(|v| !v.is_empty())
}

/// Upgraded units `resume-upgrade` let the upgrade go on from.
fn resumed(peer: &PeerState) -> usize {
    peer.app
        .get(upgrade::KEY_RESUMED)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
