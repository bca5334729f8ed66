//! The reconcile, as named steps:
//! 1. `facts`: what Juju says (read once), with the leader creating the passwords once;
//! 2. `publish_identity`: this unit's `ip`/`hostname`/`fqdn` in its peer bag;
//! 3. `local_server`: first start (bootstrap or join as observer), restart after a crash, or
//!    rewriting the files for a later rolling restart;
//! 4. `announce`: `state=started` once the server broadcasts; the workload version;
//! 5. `membership`: observe the ensemble and apply planned changes one at a time (leader adds,
//!    anyone with evidence removes), keep the ledger, defer on the three ensemble answers;
//! 6. rolling restarts (`rolling.rs`);
//! 7. the unit's conditions, from which `finish` sets the status.

use crate::juju::tools::HookTools as _;
use std::collections::{BTreeMap, BTreeSet};

use super::ensemble_io::{ChangeError, Probe};
use super::{CharmError, ZooKeeperCharm};
use crate::engine::status::{self, UnitCondition};
use crate::engine::Outcome;
use crate::juju::tools::{Databag, Status};
use crate::quorum::plan::{
    self, Change, EnsembleState, Hold, LocalAction, LocalServer, UnitId, Wait,
};
use crate::restart;
use crate::secret::Secret;
use crate::state::config::{self, CharmConfig};
use crate::state::credentials;
use crate::state::peer::{self, PeerState};
use crate::workload::render::{self, ServerSettings};

/// What one reconcile works with.
pub(super) struct Facts {
    pub me: UnitId,
    pub leader: bool,
    pub dying: bool,
    /// `None` when the configuration is invalid (the last good files stay in force).
    pub config: Option<CharmConfig>,
    /// The leader created the credentials secret (its URI is in the peer app bag). The secret
    /// itself is read only when needed ([`ZooKeeperCharm::creds`]).
    pub creds_exist: bool,
    pub peer: PeerState,
    pub address: Option<String>,
    /// Fingerprint of the server's inputs; `None` without valid config and credentials.
    pub desired: Option<String>,
}

/// The planner inputs that stay the same within a reconcile.
pub(super) struct PlanBase {
    pub is_leader: bool,
    pub dying: bool,
    pub peers: BTreeMap<UnitId, plan::PeerUnit>,
    pub ledger: BTreeMap<UnitId, plan::Ledger>,
    pub departed: BTreeSet<UnitId>,
    pub credentials: bool,
    pub local: LocalServer,
    pub planned: Option<BTreeSet<UnitId>>,
}

impl PlanBase {
    fn input<'s>(&'s self, me: UnitId, ensemble: Option<&'s EnsembleState>) -> plan::Input<'s> {
        plan::Input {
            me,
            is_leader: self.is_leader,
            dying: self.dying,
            peers: &self.peers,
            ledger: &self.ledger,
            departed: &self.departed,
            credentials: self.credentials,
            local: self.local,
            ensemble,
            planned: self.planned.as_ref(),
        }
    }
}

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
    restart::fingerprint(&format!(
        "init={} sync={} tick={} log={} creds={rev} restart={nonce} render={RENDER_REVISION}",
        config.init_limit,
        config.sync_limit,
        config.tick_time,
        config.log_level.as_str()
    ))
}

/// The memo of what the server files on disk were rendered from.
const MEMO_RENDERED: &str = "rendered";

/// What the server files on disk depend on: the desired inputs and this unit's address.
fn render_key(f: &Facts) -> Option<String> {
    Some(format!("{}@{}", f.desired.as_ref()?, f.address.as_ref()?))
}

fn observed(ens: EnsembleState) -> Option<EnsembleState> {
    (ens.leader.is_some() || !ens.members.is_empty()).then_some(ens)
}

impl ZooKeeperCharm<'_> {
    fn ensure_installed(&mut self) -> bool {
        if self.local.installed {
            return true;
        }
        match self.workload.install() {
            Ok(()) => {
                self.local.installed = true;
                true
            }
            Err(e) => {
                tracing::error!("installing the ZooKeeper software failed: {e}");
                self.conditions
                    .push(UnitCondition::InstallFailed(e.to_string()));
                false
            }
        }
    }

    /// Step 1. `None` before the peer relation exists.
    fn facts(&mut self) -> Result<Option<Facts>, CharmError> {
        self.load_view()?;
        let dying = self.local.dying;
        let Some(view) = self.view.as_mut() else {
            return Ok(None);
        };
        let Some(peer) = view.peer.as_mut() else {
            return Ok(None);
        };
        if view.leader && !dying && peer.credentials_secret().is_none() {
            let (creds, created) = credentials::ensure(self.tools, peer, &self.ctx.app, None)?;
            if created {
                tracing::info!(
                    "created the internal users' passwords (secret {})",
                    credentials::label(&self.ctx.app)
                );
            }
            view.creds = Some(creds);
            view.creds_loaded = true;
        }
        let config = match &view.config {
            Ok(c) => Some(c.clone()),
            Err(errs) => {
                let msg = config::describe(errs);
                tracing::warn!("{msg}; keeping the last good configuration");
                self.conditions.push(UnitCondition::InvalidConfig(msg));
                None
            }
        };
        let me = self.ctx.unit.number();
        let address = peer.unit(me).and_then(|u| {
            u.bag
                .get("ingress-address")
                .or(u.bag.get("private-address"))
                .cloned()
        });
        let creds_exist = peer.credentials_secret().is_some();
        let desired = match (&config, creds_exist) {
            (Some(c), true) => Some(desired_fingerprint(c, peer)),
            _ => None,
        };
        Ok(Some(Facts {
            me,
            leader: view.leader,
            dying,
            config,
            creds_exist,
            peer: peer.clone(),
            address,
            desired,
        }))
    }

    fn peer_mut(&mut self) -> Option<&mut PeerState> {
        self.view.as_mut().and_then(|v| v.peer.as_mut())
    }

    /// Writes to this unit's peer bag only what differs.
    fn write_unit_bag(&mut self, want: Databag) -> Result<(), CharmError> {
        let me = self.me();
        let tools = self.tools;
        let Some(peer) = self.peer_mut() else {
            return Ok(());
        };
        let bag = peer.unit(me).map(|u| u.bag.clone()).unwrap_or_default();
        let diff: Databag = want
            .into_iter()
            .filter(|(k, v)| bag.get(k).map(String::as_str).unwrap_or("") != v.as_str())
            .collect();
        if !diff.is_empty() {
            tools.relation_set(peer.relation, false, &diff)?;
            peer.apply_unit_write(me, &diff);
        }
        Ok(())
    }

    /// Step 2.
    fn publish_identity(&mut self, address: &str) -> Result<(), CharmError> {
        let host = hostname();
        self.write_unit_bag(
            [
                (peer::KEY_IP.to_string(), address.to_string()),
                (peer::KEY_HOSTNAME.to_string(), host.clone()),
                (peer::KEY_FQDN.to_string(), host),
            ]
            .into(),
        )
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
    pub(super) fn write_server_files(&mut self, f: &Facts) -> Result<bool, CharmError> {
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
        Ok(changed)
    }

    /// The server now runs on the current inputs.
    pub(super) fn mark_loaded(&mut self, f: &Facts) -> Result<(), CharmError> {
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
        Ok(())
    }

    /// Renders the files when the inputs changed since they were last rendered; true if any
    /// file changed. What they were rendered from is a memo of the hook tools, forgotten when
    /// the charm changes (a new charm version may render differently).
    pub(super) fn refresh_server_files(&mut self, f: &Facts) -> Result<bool, CharmError> {
        let key = render_key(f);
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

    /// The units Juju plans (goal-state), asked only while this unit still has to start its
    /// server as a new member: the join order depends on them.
    fn planned_units(
        &self,
        f: &Facts,
        local: LocalServer,
        ledger: &BTreeMap<UnitId, plan::Ledger>,
    ) -> Result<Option<BTreeSet<UnitId>>, CharmError> {
        let member = ledger.get(&f.me) == Some(&plan::Ledger::Added);
        if f.dying || local.running || (local.initialized && member) {
            return Ok(None);
        }
        let goal = self.tools.goal_state()?;
        Ok(Some(
            goal.iter()
                .filter(|(u, status)| u.app() == self.ctx.app && status.as_str() != "dying")
                .map(|(u, _)| u.number())
                .collect(),
        ))
    }

    /// Step 3.
    fn local_server(&mut self, f: &Facts, base: &PlanBase) -> Result<(), CharmError> {
        // A server that ran before, is down, and that the ledger does not list: ask ZooKeeper
        // whether it is a voter before joining again (the ledger lags a committed reconfig).
        let evidence = base.local.initialized
            && !base.local.running
            && !f.dying
            && base.ledger.get(&f.me) != Some(&plan::Ledger::Added);
        let ens = if evidence {
            let book = self.address_book(&f.peer);
            observed(self.ensemble.observe(&book))
        } else {
            None
        };
        let action = plan::plan(&base.input(f.me, ens.as_ref()))?.local;
        match (action, &f.address) {
            (Some(LocalAction::Wait(w)), _) => self.conditions.push(match w {
                Wait::Credentials => UnitCondition::WaitingCredentials,
                Wait::Bootstrap => UnitCondition::WaitingBootstrap,
                Wait::OwnAddress | Wait::ParticipantAddresses => UnitCondition::WaitingAddress,
                Wait::OtherUnitsFirst => UnitCondition::WaitingOtherUnits,
                w @ Wait::LowerThanMembers(_) => UnitCondition::CannotJoin(w.to_string()),
            }),
            (Some(LocalAction::Bootstrap | LocalAction::Join { .. }), _) if f.desired.is_none() => {
                // Nothing valid to start a new server with (the configuration is invalid, which
                // the unit shows): it starts once the configuration is fixed.
                tracing::info!("not starting the ZooKeeper server: no valid configuration yet");
            }
            (Some(LocalAction::Restart), _)
                if f.desired.is_none() && !self.workload.initialized() => {}
            (Some(LocalAction::Restart), Some(addr)) if f.desired.is_none() => {
                // Invalid config: bring the server back with the last good files on disk.
                tracing::warn!("the ZooKeeper server was not running; starting it again with its last good configuration");
                self.show_progress(Status::maintenance(
                    "restarting zookeeper server (it was not running)",
                ))?;
                self.workload.start()?;
                self.local.starts += 1;
                self.await_broadcast(addr);
            }
            (
                Some(
                    a @ (LocalAction::Bootstrap | LocalAction::Join { .. } | LocalAction::Restart),
                ),
                Some(addr),
            ) => {
                let addr = addr.clone();
                self.write_server_files(f)?;
                self.tools.set_memo(MEMO_RENDERED, render_key(f));
                if self.workload.initialized() && !matches!(a, LocalAction::Restart) {
                    // A re-join: point the server back at a fresh initial configuration.
                    self.workload.reset_dynamic_config()?;
                }
                let flavor = self.workload.flavor();
                let dynamic = self.workload.paths().dynamic();
                match &a {
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
                        let text =
                            render::initial_dynamic(flavor, participants, Some((f.me, &addr)));
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
                self.mark_loaded(f)?;
                self.await_broadcast(&addr);
            }
            (Some(LocalAction::Nothing), Some(_)) if !f.dying && self.workload.alive() => {
                // Files follow the inputs at once; the server loads them at its rolling restart.
                let changed = self.refresh_server_files(f)?;
                tracing::debug!(changed, "server configuration files checked");
            }
            _ => {}
        }
        Ok(())
    }

    /// Step 4. With `observe` (the address book, when this hook looks at the whole
    /// ensemble) the server is probed within that observation, which is returned too.
    fn announce(
        &mut self,
        f: &Facts,
        observe: Option<&BTreeMap<UnitId, String>>,
    ) -> Result<(Probe, Option<EnsembleState>), CharmError> {
        let (probe, ens) = match (&f.address, observe) {
            (Some(a), Some(book)) if self.workload.initialized() && book.contains_key(&f.me) => {
                let (ens, probe) = self.ensemble.observe_with_probe(book, a);
                (probe, Some(ens))
            }
            (Some(a), _) if self.workload.initialized() => (self.ensemble.probe(a), None),
            _ => (Probe::default(), None),
        };
        if !f.dying && probe.broadcasting() {
            self.write_unit_bag(
                [(peer::KEY_STATE.to_string(), peer::STATE_STARTED.to_string())].into(),
            )?;
        }
        if let Some(v) = &probe.version {
            self.tools.application_version_set(v)?;
        }
        Ok((probe, ens))
    }

    /// Applies planned changes one at a time, re-observing after each, until none is left or
    /// one must wait. Returns the last observation, plan and transient hold met on the way.
    /// `first` is an observation made just before (nothing changed since), used for the first
    /// step.
    fn converge(
        &mut self,
        base: &PlanBase,
        book: &BTreeMap<UnitId, String>,
        mut first: Option<EnsembleState>,
    ) -> Result<(Option<EnsembleState>, plan::Plan, Option<Hold>), CharmError> {
        let me = self.me();
        let mut super_pws: Vec<Secret> = Vec::new();
        let max_steps = base.peers.len() + base.departed.len() + 2;
        for _ in 0..max_steps {
            let obs = observed(first.take().unwrap_or_else(|| self.ensemble.observe(book)));
            let p = plan::plan(&base.input(me, obs.as_ref()))?;
            let Some(change) = p.changes.first().copied() else {
                return Ok((obs, p, None));
            };
            if super_pws.is_empty() {
                // A change to make: now the super password is needed.
                super_pws = self.super_candidates()?;
                if super_pws.is_empty() {
                    return Ok((obs, p, None));
                }
            }
            let addr = match change {
                Change::Add(u) => book.get(&u).cloned(),
                Change::Remove(_) => None,
            };
            tracing::info!("quorum change: {change}");
            match self
                .ensemble
                .apply(change, addr.as_deref(), book, &super_pws)
            {
                Ok(()) => {}
                Err(ChangeError::Transient(h)) => {
                    let obs = observed(self.ensemble.observe(book));
                    let p = plan::plan(&base.input(me, obs.as_ref()))?;
                    return Ok((obs, p, Some(h)));
                }
                Err(ChangeError::Failed(msg)) => {
                    tracing::error!("quorum change {change} failed: {msg}");
                    self.conditions
                        .push(UnitCondition::Held(format!("{change} failed: {msg}")));
                    return Ok((obs, p, None));
                }
            }
        }
        let obs = observed(self.ensemble.observe(book));
        let p = plan::plan(&base.input(me, obs.as_ref()))?;
        Ok((obs, p, None))
    }

    /// The leader drives membership; another unit only when it has evidence of a removal (it is
    /// leaving, or saw a member depart).
    fn acts_on_membership(
        &self,
        f: &Facts,
        base: &PlanBase,
        book: &BTreeMap<UnitId, String>,
    ) -> bool {
        let known: BTreeSet<UnitId> = base.ledger.keys().chain(book.keys()).copied().collect();
        f.leader || f.dying || self.local.departed.iter().any(|u| known.contains(u))
    }

    /// Step 5 (when this unit `acts` on membership, [`Self::acts_on_membership`]). Returns the
    /// outcome and the last observation (when one was made).
    fn membership(
        &mut self,
        f: &Facts,
        base: &PlanBase,
        book: &BTreeMap<UnitId, String>,
        acts: bool,
        first: Option<EnsembleState>,
    ) -> Result<(Outcome, Option<EnsembleState>), CharmError> {
        if !acts {
            return Ok((Outcome::Done, None));
        }
        let (obs, p, transient) = self.converge(base, book, first)?;
        if f.leader && !p.ledger.is_empty() {
            let data = peer::ledger_writes(&p.ledger);
            self.tools.relation_set(f.peer.relation, true, &data)?;
            if let Some(pv) = self.peer_mut() {
                pv.apply_app_write(&data);
            }
            tracing::info!("membership ledger updated: {:?}", p.ledger);
            self.ledger_moved = true;
        }
        let mut outcome = Outcome::Done;
        if let Some(h) = transient.or_else(|| p.defer_reason().cloned()) {
            outcome = Outcome::defer(h.to_string());
            self.conditions.push(UnitCondition::Deferred(h.to_string()));
        }
        for (c, h) in &p.held {
            if !h.is_transient() {
                tracing::warn!("not applying {c}: {h}");
                self.conditions.push(UnitCondition::Held(h.to_string()));
            }
        }
        Ok((outcome, Some(obs.unwrap_or_default())))
    }

    /// Step 7.
    fn unit_conditions(&mut self, f: &Facts, probe: &Probe, ens: Option<&EnsembleState>) {
        if f.dying {
            self.conditions.push(UnitCondition::Leaving);
            return;
        }
        if !self.workload.initialized() {
            return;
        }
        let members = match ens {
            Some(e) if !e.members.is_empty() => e.members.clone(),
            _ => probe.members.clone().unwrap_or_default(),
        };
        // The count grows with every transaction once the trees differ: logged when it starts,
        // shown as long as the server reports it (it restarts from 0 with the server).
        match probe.digest_mismatches {
            Some(n) if n > 0 => {
                if !self.local.digest_mismatch {
                    tracing::error!(
                        "this server's data tree differed from the quorum leader's after {n} \
                         transactions (zk_digest_mismatches_count): one of the two lacks writes \
                         the ensemble acknowledged; see get-quorum-status and the README"
                    );
                }
                self.local.digest_mismatch = true;
                self.conditions.push(UnitCondition::DataMismatch);
            }
            Some(_) => self.local.digest_mismatch = false,
            None => {}
        }
        if !probe.broadcasting() {
            self.conditions.push(UnitCondition::NotServing);
        } else if !members.get(&f.me).is_some_and(|m| m.voting) {
            self.conditions.push(UnitCondition::NotInQuorum);
        }
        if f.leader {
            if let Some(e) = ens {
                let units = f.peer.units.len();
                let serving = e
                    .voters()
                    .iter()
                    .filter(|u| f.peer.units.contains_key(u) && e.broadcasting.contains(u))
                    .count();
                self.app_status = Some(status::app_status(serving, units, e.leader.is_some()));
            }
        }
    }

    /// The reconcile: everything this unit should do, whatever the event was.
    pub(super) fn reconcile(&mut self) -> Result<Outcome, CharmError> {
        self.conditions.clear();
        self.app_status = None;
        if !self.ensure_installed() {
            return Ok(Outcome::Done);
        }
        // Start the round of four-letter words the last hook began with, so that it overlaps
        // the hook-tool reads; the first observation uses it only if it asks the same servers.
        if let (Some(hosts), true) = (&self.local.observe_hosts, self.workload.initialized()) {
            self.ensemble.prefetch(hosts);
        }
        let Some(mut f) = self.facts()? else {
            self.conditions.push(UnitCondition::NoPeerRelation);
            return Ok(Outcome::Done);
        };
        if let (Some(a), false) = (&f.address, f.dying) {
            self.publish_identity(&a.clone())?;
        }
        let local = LocalServer {
            initialized: self.workload.initialized(),
            running: self.workload.alive(),
        };
        let ledger = f.peer.ledger();
        let base = PlanBase {
            is_leader: f.leader,
            dying: f.dying,
            peers: f.peer.planner_units(),
            planned: self.planned_units(&f, local, &ledger)?,
            ledger,
            departed: self.local.departed.clone(),
            credentials: f.creds_exist,
            local,
        };
        self.local_server(&f, &base)?;
        let book = self.address_book(&f.peer);
        let observes = self.acts_on_membership(&f, &base, &book);
        // The early round still shows the ensemble as it is unless this unit's server was
        // started, stopped or is going away in this hook.
        if !f.dying
            && self.local.starts == self.local_before.starts
            && base.local.running == self.workload.alive()
        {
            self.ensemble.use_prefetch();
        }
        let (probe, first) = self.announce(&f, observes.then_some(&book))?;
        self.ensemble.discard_prefetch();
        // Re-read our own writes into the planner's view (state=started may be new).
        let peers = self
            .view
            .as_ref()
            .and_then(|v| v.peer.as_ref())
            .map(PeerState::planner_units)
            .unwrap_or_default();
        let base = PlanBase {
            peers,
            local: LocalServer {
                initialized: self.workload.initialized(),
                running: self.workload.alive(),
            },
            ..base
        };
        let (mut outcome, ens) = self.membership(&f, &base, &book, observes, first)?;
        let granted = if f.leader && !f.dying {
            let (granted, hold) = self.clients_prepare(&mut f, ens.as_ref())?;
            if let (Some(h), Outcome::Done) = (hold, &outcome) {
                self.conditions.push(UnitCondition::Deferred(h.to_string()));
                outcome = Outcome::defer(h.to_string());
            }
            Some(granted)
        } else {
            None
        };
        self.rolling(&mut f, ens.as_ref())?;
        if let Some(h) = self.restart_hold.take() {
            self.conditions.push(UnitCondition::Deferred(h.clone()));
            if matches!(outcome, Outcome::Done) {
                outcome = Outcome::defer(h);
            }
        }
        let probe = if self.local.starts != self.local_before.starts || probe.peer_state.is_none() {
            self.announce(&f, None)?.0
        } else {
            probe
        };
        if let Some(granted) = &granted {
            self.clients_publish(&f, granted, probe.version.as_deref())?;
        }
        self.unit_conditions(&f, &probe, ens.as_ref());
        self.local.observe_hosts = self.ensemble.first_round();
        // The leader added the unit its own server waited for (it joins after lower-numbered
        // units): nothing else will wake it (no unit gets -changed for its own writes), so it
        // goes on now, in a second pass over what it just wrote.
        if f.leader
            && !f.dying
            && std::mem::take(&mut self.ledger_moved)
            && !self.workload.alive()
            && !self.second_pass
        {
            self.second_pass = true;
            tracing::info!("the membership ledger moved and this unit's server is not running: reconciling again");
            return self.reconcile();
        }
        Ok(outcome)
    }
}

fn hostname() -> String {
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
