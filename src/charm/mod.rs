//! The ZooKeeper charm: which events it acts on, and the one idempotent reconcile most of them
//! run.
//!
//! A reconcile reads Juju state once per hook (cached across replayed events), asks the pure
//! planner what should happen, applies it through the workload (this unit's server), the
//! ensemble (four-letter words, reconfig) and the hook tools, and returns an [`Outcome`]:
//! `Defer` only when the ensemble answered "members syncing", "member not ready" or "no quorum
//! leader" while there was work to do. The unit status is set once, at the end of the hook.

pub mod ensemble;
pub mod zk_ensemble;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::actions;
use crate::engine::status::{self, UnitCondition};
use crate::engine::{Charm, Outcome, Summary};
use crate::juju::tools::{Databag, HookTools, Status};
use crate::juju::{Context, Event, RelationPhase, ToolError};
use crate::quorum::plan::{self, Change, Ensemble, Hold, LocalAction, LocalServer, UnitId, Wait};
use crate::state::config::{self, CharmConfig, ConfigError};
use crate::state::credentials::{self, Credentials, CredentialsError};
use crate::state::local::LocalState;
use crate::state::peer::{self, PeerState, PEER_ENDPOINT};
use crate::workload::render::{self, QuorumAuth, ServerSettings};
use crate::workload::{Workload, WorkloadError};
use ensemble::{ChangeError, EnsembleIo};

#[derive(Debug, thiserror::Error)]
pub enum CharmError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("{0}")]
    Workload(#[from] WorkloadError),
    #[error(transparent)]
    Plan(#[from] plan::InvariantViolation),
    #[error("cannot save the unit state in the charm directory: {0}")]
    LocalState(std::io::Error),
}

/// Tunables (the environment may override them for tests; see [`Options::from_env`]).
#[derive(Clone, Debug)]
pub struct Options {
    /// How long a hook waits for a freshly started server to reach "... - broadcast".
    pub start_wait: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            start_wait: Duration::from_secs(60),
        }
    }
}

impl Options {
    pub fn from_env(env: &BTreeMap<String, String>) -> Options {
        let mut o = Options::default();
        if let Some(s) = env
            .get("ZOOKEEPER_CHARM_START_WAIT")
            .and_then(|v| v.parse::<u64>().ok())
        {
            o.start_wait = Duration::from_secs(s);
        }
        o
    }
}

/// Juju state read once per hook.
struct View {
    leader: bool,
    config: Result<CharmConfig, Vec<ConfigError>>,
    peer: Option<PeerState>,
    creds: Option<Credentials>,
}

pub struct ZooKeeperCharm<'a> {
    ctx: &'a Context,
    tools: &'a dyn HookTools,
    workload: &'a dyn Workload,
    ensemble: &'a mut dyn EnsembleIo,
    opts: Options,
    local: LocalState,
    local_before: LocalState,
    view: Option<View>,
    /// Conditions found by the last reconcile (the unit status comes from them).
    conditions: Vec<UnitCondition>,
    /// The leader's application status, when it computed one.
    app_status: Option<Status>,
    workload_version_set: bool,
}

impl<'a> ZooKeeperCharm<'a> {
    pub fn new(
        ctx: &'a Context,
        tools: &'a dyn HookTools,
        workload: &'a dyn Workload,
        ensemble: &'a mut dyn EnsembleIo,
        opts: Options,
    ) -> ZooKeeperCharm<'a> {
        let local = LocalState::load(&ctx.charm_dir);
        ZooKeeperCharm {
            ctx,
            tools,
            workload,
            ensemble,
            opts,
            local_before: local.clone(),
            local,
            view: None,
            conditions: Vec::new(),
            app_status: None,
            workload_version_set: false,
        }
    }

    fn me(&self) -> UnitId {
        self.ctx.unit.number()
    }

    /// Reads (once) what the reconcile needs from Juju.
    fn load_view(&mut self) -> Result<(), CharmError> {
        if self.view.is_some() {
            return Ok(());
        }
        let leader = self.tools.is_leader()?;
        let config = CharmConfig::from_json(&self.tools.config_get()?);
        let peer = PeerState::read(self.tools, &self.ctx.unit)?;
        let creds = match &peer {
            Some(p) => credentials::read(self.tools, p)?,
            None => None,
        };
        self.view = Some(View {
            leader,
            config,
            peer,
            creds,
        });
        Ok(())
    }

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

    /// Writes `ip`, `hostname` and `fqdn` to this unit's peer bag when they differ.
    fn publish_identity(&mut self, address: &str) -> Result<(), CharmError> {
        let me = self.me();
        let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) else {
            return Ok(());
        };
        let host = hostname();
        let want: Databag = [
            (peer::KEY_IP.to_string(), address.to_string()),
            (peer::KEY_HOSTNAME.to_string(), host.clone()),
            (peer::KEY_FQDN.to_string(), host),
        ]
        .into();
        let bag = peer.unit(me).map(|u| u.bag.clone()).unwrap_or_default();
        let diff: Databag = want
            .into_iter()
            .filter(|(k, v)| bag.get(k) != Some(v))
            .collect();
        if !diff.is_empty() {
            self.tools.relation_set(peer.relation, false, &diff)?;
            peer.apply_unit_write(me, &diff);
        }
        Ok(())
    }

    fn set_started(&mut self, started: bool) -> Result<(), CharmError> {
        let me = self.me();
        let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) else {
            return Ok(());
        };
        if peer.unit(me).is_some_and(|u| u.started()) == started {
            return Ok(());
        }
        let value = if started { peer::STATE_STARTED } else { "" };
        let data: Databag = [(peer::KEY_STATE.to_string(), value.to_string())].into();
        self.tools.relation_set(peer.relation, false, &data)?;
        peer.apply_unit_write(me, &data);
        Ok(())
    }

    /// Every address this unit knows for a peer (related now, or seen before).
    fn address_book(&mut self) -> BTreeMap<UnitId, String> {
        if let Some(peer) = self.view.as_ref().and_then(|v| v.peer.as_ref()) {
            for (u, d) in &peer.units {
                if let Some(a) = d.address() {
                    self.local.addresses.insert(*u, a.to_string());
                }
            }
        }
        self.local.addresses.clone()
    }

    /// Renders and writes the server's files. Returns whether the running server would need a
    /// restart to pick them up.
    fn write_server_files(
        &self,
        config: &CharmConfig,
        creds: &Credentials,
        address: &str,
    ) -> Result<bool, CharmError> {
        let (Some(super_pw), Some(sync_pw)) = (creds.super_password(), creds.sync_password())
        else {
            return Ok(false);
        };
        let quorum = QuorumAuth::single(sync_pw);
        let clients = creds.client_users();
        let paths = self.workload.paths().clone();
        let settings = ServerSettings {
            config,
            flavor: self.workload.flavor(),
            paths: &paths,
            unit: self.me(),
            address,
            super_password: super_pw,
            quorum: &quorum,
            client_users: &clients,
        };
        let mut changed = false;
        for (path, content) in render::server_files(&settings) {
            let content = if path == paths.zoo_cfg() {
                let current = self.workload.read(&path)?;
                if let Some(cur) = &current {
                    if render::cfg_equivalent(cur, &content) {
                        continue;
                    }
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

    /// First start (bootstrap or join) or restart after a crash, then a bounded wait for the
    /// server to reach broadcast.
    fn start_server(
        &mut self,
        action: &LocalAction,
        config: &CharmConfig,
        creds: &Credentials,
        address: &str,
    ) -> Result<(), CharmError> {
        self.write_server_files(config, creds, address)?;
        let flavor = self.workload.flavor();
        match action {
            LocalAction::Bootstrap => {
                let me: BTreeMap<UnitId, String> = [(self.me(), address.to_string())].into();
                self.workload.write(
                    &self.workload.paths().dynamic(),
                    &render::initial_dynamic(flavor, &me, None),
                    false,
                )?;
                tracing::info!(
                    "bootstrapping the ensemble: starting server.{} alone",
                    plan::server_id(self.me())
                );
            }
            LocalAction::Join { participants } => {
                let dynamic =
                    render::initial_dynamic(flavor, participants, Some((self.me(), address)));
                self.workload
                    .write(&self.workload.paths().dynamic(), &dynamic, false)?;
                tracing::info!(
                    "starting server.{} as an observer of {:?}",
                    plan::server_id(self.me()),
                    participants
                        .keys()
                        .map(|u| plan::server_id(*u))
                        .collect::<Vec<_>>()
                );
            }
            LocalAction::Restart => {
                tracing::warn!("the ZooKeeper server was not running; starting it again")
            }
            _ => return Ok(()),
        }
        self.workload.start()?;
        if !self.ensemble.wait_broadcast(address, self.opts.start_wait) {
            if !self.workload.alive() {
                let tail = self.workload.log_tail(5);
                let last = tail.lines().last().unwrap_or("no log output").to_string();
                tracing::error!(
                    "the ZooKeeper server exited after starting; last log lines:\n{tail}"
                );
                self.conditions.push(UnitCondition::ServiceNotRunning(last));
            } else {
                tracing::info!(
                    "server started but not yet broadcasting after {:?}",
                    self.opts.start_wait
                );
            }
        }
        Ok(())
    }

    /// Applies planned membership changes one at a time, re-observing after each, until none
    /// is left or one must wait. Returns the last observation and plan.
    fn converge(
        &mut self,
        input_base: &PlanBase,
        super_pw: Option<&crate::secret::Secret>,
    ) -> Result<(Option<Ensemble>, plan::Plan, Option<Hold>), CharmError> {
        let book = self.address_book();
        let mut transient: Option<Hold> = None;
        let max_steps = input_base.peers.len() + input_base.departed.len() + 2;
        let mut step = 0;
        loop {
            let ens = self.ensemble.observe(&book);
            let observed = if ens.leader.is_some() || !ens.members.is_empty() {
                Some(ens)
            } else {
                None
            };
            let p = plan::plan(&input_base.input(self.me(), observed.as_ref()))?;
            let next = p.changes.first().copied();
            let (Some(change), Some(pw)) = (next, super_pw) else {
                return Ok((observed, p, transient));
            };
            step += 1;
            if step > max_steps {
                return Ok((observed, p, transient));
            }
            let addr = match change {
                Change::Add(u) => book.get(&u).cloned(),
                Change::Remove(_) => None,
            };
            tracing::info!("quorum change: {change}");
            match self.ensemble.apply(change, addr.as_deref(), &book, pw) {
                Ok(()) => {}
                Err(ChangeError::Transient(h)) => {
                    transient = Some(h);
                    let ens = self.ensemble.observe(&book);
                    let observed = if ens.leader.is_some() || !ens.members.is_empty() {
                        Some(ens)
                    } else {
                        None
                    };
                    let p = plan::plan(&input_base.input(self.me(), observed.as_ref()))?;
                    return Ok((observed, p, transient));
                }
                Err(ChangeError::Failed(msg)) => {
                    tracing::error!("quorum change {change} failed: {msg}");
                    self.conditions
                        .push(UnitCondition::Held(format!("{change} failed: {msg}")));
                    return Ok((observed, p, transient));
                }
            }
        }
    }

    /// The reconcile: everything this unit should do, whatever the event was.
    fn reconcile(&mut self) -> Result<Outcome, CharmError> {
        self.conditions.clear();
        self.app_status = None;
        if !self.ensure_installed() {
            return Ok(Outcome::Done);
        }
        self.load_view()?;
        let me = self.me();
        let dying = self.local.dying;
        let Some(view) = self.view.as_mut() else {
            return Ok(Outcome::Done);
        };
        let leader = view.leader;
        let Some(peer) = view.peer.as_mut() else {
            self.conditions.push(UnitCondition::NoPeerRelation);
            return Ok(Outcome::Done);
        };

        // Credentials: the leader creates them once.
        if leader && !dying && !view.creds.as_ref().is_some_and(Credentials::complete) {
            let (creds, created) =
                credentials::ensure(self.tools, peer, &self.ctx.app, view.creds.take())?;
            if created {
                tracing::info!(
                    "created the internal users' passwords (secret {})",
                    credentials::label(&self.ctx.app)
                );
            }
            view.creds = Some(creds);
        }
        let peer_snapshot = peer.clone();
        let config = match &view.config {
            Ok(c) => Some(c.clone()),
            Err(errs) => {
                let msg = config::describe(errs);
                tracing::warn!("{msg}; keeping the last good configuration");
                self.conditions.push(UnitCondition::InvalidConfig(msg));
                None
            }
        };
        let creds = view.creds.clone();
        let my_address = peer_snapshot.unit(me).and_then(|u| {
            u.bag
                .get("ingress-address")
                .or(u.bag.get("private-address"))
                .cloned()
        });
        if let Some(a) = &my_address {
            if !dying {
                self.publish_identity(a)?;
            }
        }

        // This unit's server.
        let base = PlanBase {
            is_leader: leader,
            dying,
            peers: peer_snapshot.planner_units(),
            ledger: peer_snapshot.ledger(),
            departed: self.local.departed.clone(),
            credentials: creds.as_ref().is_some_and(Credentials::complete),
            local: LocalServer {
                initialized: self.workload.initialized(),
                running: self.workload.alive(),
            },
        };
        let local_plan = plan::plan(&base.input(me, None))?;
        match (&local_plan.local, &config, &creds, &my_address) {
            (
                Some(
                    a @ (LocalAction::Bootstrap | LocalAction::Join { .. } | LocalAction::Restart),
                ),
                Some(cfg),
                Some(c),
                Some(addr),
            ) => {
                let (a, cfg, c, addr) = (a.clone(), cfg.clone(), c.clone(), addr.clone());
                self.start_server(&a, &cfg, &c, &addr)?;
            }
            (Some(LocalAction::Restart), None, _, _) => {
                // Invalid config: restart with the last good files on disk.
                self.workload.start()?;
            }
            (Some(LocalAction::Wait(w)), _, _, _) => self.conditions.push(match w {
                Wait::Credentials => UnitCondition::WaitingCredentials,
                Wait::Bootstrap => UnitCondition::WaitingBootstrap,
                Wait::OwnAddress | Wait::ParticipantAddresses => UnitCondition::WaitingAddress,
            }),
            (Some(LocalAction::Nothing), Some(cfg), Some(c), Some(addr))
                if !dying && self.workload.alive() =>
            {
                let (cfg, c, addr) = (cfg.clone(), c.clone(), addr.clone());
                if self.write_server_files(&cfg, &c, &addr)? {
                    tracing::info!(
                        "server configuration changed; restarting the server to apply it"
                    );
                    self.workload.restart()?;
                    self.ensemble.wait_broadcast(&addr, self.opts.start_wait);
                }
            }
            _ => {}
        }

        // Tell the others when this server serves.
        let probe = match &my_address {
            Some(a) if self.workload.initialized() => self.ensemble.probe(a),
            _ => ensemble::Probe::default(),
        };
        if !dying && probe.broadcasting() {
            self.set_started(true)?;
        }
        if let (false, Some(v)) = (self.workload_version_set, &probe.version) {
            self.tools.application_version_set(v)?;
            self.workload_version_set = true;
        }

        // Membership: the leader adds and keeps the ledger; anyone with evidence removes.
        let peer_now = self
            .view
            .as_ref()
            .and_then(|v| v.peer.clone())
            .unwrap_or_else(unreachable_peer);
        let base = PlanBase {
            peers: peer_now.planner_units(),
            ..base
        };
        let ledger_members: BTreeSet<UnitId> = base.ledger.keys().copied().collect();
        let removal_evidence = dying
            || self
                .local
                .departed
                .iter()
                .any(|u| ledger_members.contains(u) || self.local.addresses.contains_key(u));
        let mut outcome = Outcome::Done;
        if leader || removal_evidence {
            let super_pw = creds.as_ref().and_then(|c| c.super_password().cloned());
            let (observed, p, transient) = self.converge(&base, super_pw.as_ref())?;
            if leader && !p.ledger.is_empty() {
                let data = peer::ledger_writes(&p.ledger);
                self.tools.relation_set(peer_now.relation, true, &data)?;
                if let Some(pv) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
                    pv.apply_app_write(&data);
                }
                tracing::info!("membership ledger: {:?}", p.ledger);
            }
            let hold = transient.or_else(|| p.defer_reason().cloned());
            if let Some(h) = &hold {
                outcome = Outcome::defer(h.to_string());
                self.conditions.push(UnitCondition::Deferred(h.to_string()));
            }
            for (c, h) in &p.held {
                if !h.is_transient() {
                    tracing::warn!("not applying {c}: {h}");
                    self.conditions.push(UnitCondition::Held(h.to_string()));
                }
            }
            if let Some(ens) = &observed {
                self.unit_conditions_from(ens, &probe, dying);
                if leader {
                    let units = peer_now.units.len();
                    let voters = ens.voters();
                    let serving = voters
                        .iter()
                        .filter(|u| peer_now.units.contains_key(u) && ens.broadcasting.contains(u))
                        .count();
                    self.app_status =
                        Some(status::app_status(serving, units, ens.leader.is_some()));
                }
            } else {
                self.unit_conditions_from(&Ensemble::default(), &probe, dying);
                if leader {
                    self.app_status = Some(status::app_status(0, peer_now.units.len(), false));
                }
            }
        } else {
            // A non-leader with nothing to change: its own server's view is enough for status.
            let ens = Ensemble {
                members: probe.members.clone().unwrap_or_default(),
                broadcasting: if probe.broadcasting() {
                    [me].into()
                } else {
                    BTreeSet::new()
                },
                ..Ensemble::default()
            };
            self.unit_conditions_from(&ens, &probe, dying);
        }
        Ok(outcome)
    }

    fn unit_conditions_from(&mut self, ens: &Ensemble, probe: &ensemble::Probe, dying: bool) {
        let me = self.me();
        if dying {
            self.conditions.push(UnitCondition::Leaving);
            return;
        }
        if !self.workload.initialized() {
            return;
        }
        if !probe.broadcasting() {
            self.conditions.push(UnitCondition::NotServing);
        } else if !ens.members.get(&me).is_some_and(|m| m.voting) {
            self.conditions.push(UnitCondition::NotInQuorum);
        }
    }

    fn on_departed(&mut self, departing: UnitId) {
        if departing == self.me() {
            self.local.dying = true;
        } else {
            self.local.departed.insert(departing);
        }
    }

    /// `stop`: the unit is going away. Leave the quorum if still in it (best effort: nothing
    /// can be deferred any more), then stop the server.
    fn on_stop(&mut self) -> Result<Outcome, CharmError> {
        self.local.dying = true;
        if self.workload.initialized() && self.workload.alive() {
            let _ = self.reconcile();
        }
        self.workload.stop()?;
        self.conditions = vec![UnitCondition::Leaving];
        Ok(Outcome::Done)
    }
}

/// The peer view used when the relation is missing; callers check for it first.
fn unreachable_peer() -> PeerState {
    PeerState {
        relation: crate::juju::RelationId(0),
        units: BTreeMap::new(),
        app: Databag::new(),
    }
}

/// The planner inputs that stay the same within a reconcile.
struct PlanBase {
    is_leader: bool,
    dying: bool,
    peers: BTreeMap<UnitId, plan::PeerUnit>,
    ledger: BTreeMap<UnitId, plan::Ledger>,
    departed: BTreeSet<UnitId>,
    credentials: bool,
    local: LocalServer,
}

impl PlanBase {
    fn input<'s>(&'s self, me: UnitId, ensemble: Option<&'s Ensemble>) -> plan::Input<'s> {
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
        }
    }
}

impl ZooKeeperCharm<'_> {
    fn run_action(&mut self, name: &str) -> Result<(), CharmError> {
        let peer = PeerState::read(self.tools, &self.ctx.unit)?;
        let result = match name {
            "get-super-password" => actions::get_password(self.tools, peer.as_ref(), "super"),
            "get-sync-password" => actions::get_password(self.tools, peer.as_ref(), "sync"),
            other => Err(actions::ActionError::Refused(format!(
                "action {other} is not supported by this charm version"
            ))),
        };
        actions::report(self.tools, name, result)?;
        Ok(())
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

impl Charm for ZooKeeperCharm<'_> {
    type Error = CharmError;

    fn handle(&mut self, event: &Event, _replayed: bool) -> Result<Outcome, CharmError> {
        match event {
            Event::Unknown { hook } => {
                tracing::info!("no handler for hook {hook:?} in this charm version; nothing to do");
                Ok(Outcome::Done)
            }
            Event::Action { name, .. } => {
                self.run_action(name)?;
                Ok(Outcome::Done)
            }
            Event::Stop => self.on_stop(),
            Event::Remove => {
                self.workload.stop()?;
                Ok(Outcome::Done)
            }
            Event::Relation {
                endpoint,
                phase: RelationPhase::Departed,
                departing_unit: Some(d),
                ..
            } if endpoint == PEER_ENDPOINT => {
                self.on_departed(d.number());
                self.reconcile()
            }
            _ => self.reconcile(),
        }
    }

    fn finish(&mut self, summary: &Summary) -> Result<(), CharmError> {
        if self.local != self.local_before {
            self.local
                .save(&self.ctx.charm_dir)
                .map_err(CharmError::LocalState)?;
        }
        if matches!(self.ctx.event, Event::Action { .. } | Event::Unknown { .. }) {
            return Ok(());
        }
        let mut conditions = self.conditions.clone();
        if let Some((_, reason)) = summary.still_deferred.first() {
            if !conditions
                .iter()
                .any(|c| matches!(c, UnitCondition::Deferred(_)))
            {
                conditions.push(UnitCondition::Deferred(reason.clone()));
            }
        }
        self.tools
            .status_set(false, &status::unit_status(&conditions))?;
        if let Some(app) = &self.app_status {
            self.tools.status_set(true, app)?;
        }
        Ok(())
    }
}
