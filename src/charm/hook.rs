//! The whole hook in one place: gather -> observe -> decide -> execute, until nothing is left.
//!
//! ```text
//!              Juju (hook tools, through the read cache)        this unit's memory
//!                        |                                             |
//!                        v                                             v
//!                  +-----------+   Snapshot: config, peer bags, ledger, credentials,
//!                  |  gather   |   address book, goal-state, departures (read once)
//!                  +-----------+
//!                        |
//!                        v
//!   +-----------+   Observed: this unit's process, its server's mntr/conf,
//!   |  observe  |   the ensemble (four-letter words) when this unit acts on it
//!   +-----------+ <---------------------------------------------+
//!         |                                                     |
//!         v                                                     |
//!   +-----------------+  Step  +-----------+  what it changed   |
//!   | decide (pure)   |------->|  execute  |--------------------+
//!   +-----------------+        +-----------+   (snapshot updated with its own writes;
//!         | nothing left                        the servers observed again if touched)
//!         v
//!   conditions -> unit status (finish);  the first deferral met -> the hook's outcome
//! ```
//!
//! [`decide`] is a pure function of the snapshot, the observation and what this hook already
//! did ([`Progress`]); it never asks which event runs. Its rules, in order (the first that
//! applies is the next step):
//! 1. install the software (once; a failure ends the hook, blocked);
//! 2. the leader creates the internal users' passwords;
//! 3. publish this unit's `ip`/`hostname`/`fqdn`; then, for a unit whose server never ran,
//!    with the `certificates` relation, the certificate intake (key, request, install,
//!    renewal, CA rotation; [`crate::tls::intake`]): a new unit under TLS starts only with its
//!    certificate;
//! 4. this unit's server, as the quorum planner's local action says: bootstrap, join as an
//!    observer, restart after a crash (with the last good files under an invalid
//!    configuration), or render the files for a later rolling restart; at most one start; a
//!    new server waits while the TLS gate ([`phase::start_gate`]) is closed;
//! 5. announce `state=started`, the step of the TLS switch it serves (`tls-serving`) and the
//!    workload version for what the server now says;
//! 6. membership (the leader, a leaving unit, or one that saw a departure): the planner's next
//!    change, one at a time, observed again after each; then the leader's ledger; then what
//!    the planner holds back becomes a deferral or a block;
//! 7. the leader's client tenancy (grants, revocations, passwords), then the leader's TLS
//!    switch ([`crate::tls::phase`]: `tls-target` one step on evidence), then the rolling
//!    restart lock (every unit), then the leader answers the clients whose user every server
//!    knows (on 2182 with the CAs once every server serves TLS);
//! 8. the certificate intake of a unit whose server ran before; once the relation is gone and
//!    this server serves plaintext again, its TLS stores and evidence go.
//!
//! The quorum planner ([`crate::quorum::plan`]), the client planner ([`crate::clients::plan`])
//! and the restart lock ([`crate::restart`]) are the pure parts behind rules 4, 6 and 7.

use std::collections::{BTreeMap, BTreeSet};

use super::clients::Granted;
use super::ensemble_io::{ChangeError, Probe, Verdict};
use super::{CharmError, ZooKeeperCharm};
use crate::engine::status::{self, UnitCondition};
use crate::engine::Outcome;
use crate::juju::tools::HookTools as _;
use crate::quorum::plan::{
    self, Change, EnsembleState, Hold, LocalAction, LocalServer, UnitId, Wait,
};
use crate::state::config::{self, CharmConfig};
use crate::state::credentials;
use crate::state::peer::{self, PeerState};
use crate::tls::phase;
use crate::tls::serve::Serving;

/// Everything one reconcile knows from Juju and this unit's memory, read once ([`gather`]) and
/// kept up to date with the hook's own writes.
///
/// [`gather`]: ZooKeeperCharm::gather
pub(super) struct Snapshot {
    pub me: UnitId,
    pub leader: bool,
    /// This unit is going away (it saw itself depart, its storage is detaching, or `stop`).
    pub dying: bool,
    /// `None` when the configuration is invalid (the last good files stay in force).
    pub config: Option<CharmConfig>,
    /// Why the configuration is invalid.
    pub config_problem: Option<String>,
    /// The leader created the credentials secret (its URI is in the peer app bag). The secret
    /// itself is read only when needed ([`ZooKeeperCharm::creds`]).
    pub creds_exist: bool,
    pub peer: PeerState,
    pub address: Option<String>,
    pub hostname: String,
    /// Fingerprint of the server's inputs; `None` without valid config and credentials.
    pub desired: Option<String>,
    /// What the server files on disk were rendered from (the hook tools' memo).
    pub rendered: Option<String>,
    /// Units this unit saw depart (its memory).
    pub departed: BTreeSet<UnitId>,
    /// Every address this unit knows for a peer (related now, or seen before).
    pub book: BTreeMap<UnitId, String>,
    /// The units Juju plans (goal-state), read only while this unit has yet to start its
    /// server as a new member.
    pub planned: Option<BTreeSet<UnitId>>,
    /// The `certificates` relation, when there is one.
    pub tls: Option<crate::juju::RelationId>,
    /// The step of the TLS switch the leader asks every server to serve (`tls-target`).
    pub tls_target: Serving,
    /// This unit's charm release (published as `charm-release`) and the ZooKeeper build its
    /// charm carries (`charm-build`).
    pub release: String,
    pub offered: String,
    /// The ZooKeeper build the ensemble runs is available here (a new server starts only
    /// then).
    pub build_ready: bool,
}

impl Snapshot {
    /// The quorum planner's input for this snapshot and an observation.
    pub fn input<'s>(
        &'s self,
        peers: &'s BTreeMap<UnitId, plan::PeerUnit>,
        ledger: &'s BTreeMap<UnitId, plan::Ledger>,
        local: LocalServer,
        ensemble: Option<&'s EnsembleState>,
    ) -> plan::Input<'s> {
        plan::Input {
            me: self.me,
            is_leader: self.leader,
            dying: self.dying,
            peers,
            ledger,
            departed: &self.departed,
            credentials: self.creds_exist,
            local,
            ensemble,
            planned: self.planned.as_ref(),
        }
    }

    /// The quorum plan for an observation.
    pub fn plan(
        &self,
        local: LocalServer,
        ensemble: Option<&EnsembleState>,
    ) -> Result<plan::Plan, plan::InvariantViolation> {
        let peers = self.peer.planner_units();
        let ledger = self.peer.ledger();
        plan::plan(&self.input(&peers, &ledger, local, ensemble))
    }

    /// What the server files depend on: the desired inputs and this unit's address.
    pub fn render_key(&self) -> Option<String> {
        Some(format!(
            "{}@{}",
            self.desired.as_ref()?,
            self.address.as_ref()?
        ))
    }

    /// The leader drives membership; another unit only with evidence of a removal (it is
    /// leaving, or saw a member depart).
    pub fn acts_on_membership(&self) -> bool {
        let ledger = self.peer.ledger();
        self.leader
            || self.dying
            || self
                .departed
                .iter()
                .any(|u| ledger.contains_key(u) || self.book.contains_key(u))
    }

    /// A server that ran before, is down, and that the ledger does not list: ZooKeeper is asked
    /// whether it is a voter before it joins again (the ledger lags a committed reconfig).
    pub fn crash_evidence_needed(&self, local: LocalServer) -> bool {
        local.initialized
            && !local.running
            && !self.dying
            && self.peer.ledger().get(&self.me) != Some(&plan::Ledger::Added)
    }

    /// Why this unit's server may not start yet for TLS (see [`phase::start_gate`]).
    pub fn tls_gate(&self) -> Option<&'static str> {
        let formed = self.peer.units.values().any(|u| u.started());
        let holds = self
            .peer
            .unit(self.me)
            .is_some_and(|u| super::tls::holds_cert(&u.bag));
        phase::start_gate(self.tls.is_some(), self.tls_target, holds, formed)
    }

    /// The relation is gone, the target is plain and this unit's server serves plaintext, yet
    /// its bag still shows TLS evidence: its stores and evidence can go.
    pub fn tls_done_here(&self) -> bool {
        let Some(bag) = self.peer.unit(self.me).map(|u| &u.bag) else {
            return false;
        };
        let serving = bag
            .get(super::tls::KEY_TLS_SERVING)
            .filter(|v| !v.is_empty())
            .map_or(Some(Serving::Plain), |v| Serving::parse(v));
        self.tls.is_none()
            && !self.dying
            && self.tls_target == Serving::Plain
            && serving == Some(Serving::Plain)
            && [
                super::tls::KEY_TLS_CERT,
                super::tls::KEY_TLS_CA,
                super::tls::KEY_TLS_TRUST,
            ]
            .iter()
            .any(|k| bag.get(*k).is_some_and(|v| !v.is_empty()))
    }

    /// This unit's peer bag holds `value` at `key` (a missing key holds "", as the tools
    /// write: an empty value deletes).
    fn bag_has(&self, key: &str, value: &str) -> bool {
        self.peer
            .unit(self.me)
            .and_then(|u| u.bag.get(key))
            .map_or("", String::as_str)
            == value
    }
}

/// What the servers say now.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Observed {
    pub local: LocalServer,
    /// This unit's server (`mntr` + `conf`).
    pub probe: Probe,
    /// The ensemble, when this unit acts on membership or needs evidence after a crash.
    pub ensemble: Option<EnsembleState>,
}

impl Observed {
    /// The ensemble as the planner takes it: `None` when nothing answered.
    fn planner_view(&self) -> Option<&EnsembleState> {
        self.ensemble
            .as_ref()
            .filter(|e| e.leader.is_some() || !e.members.is_empty())
    }
}

/// What this hook already did (the executor's record, read by [`decide`]).
#[derive(Debug, Default)]
pub(super) struct Progress {
    pub install_failed: bool,
    pub creds_tried: bool,
    /// This unit's server was started (or restarted) in this hook.
    pub started: bool,
    /// The probe the last announcement was made for.
    pub announced: Option<Probe>,
    /// Membership changes applied in this hook.
    pub changes: usize,
    /// No more membership changes in this hook (a hold, a failure, no super password).
    pub changes_stopped: bool,
    /// The transient hold a change met.
    pub transient: Option<Hold>,
    /// The number of changes when the membership verdicts were last drawn.
    pub settled_at: Option<usize>,
    pub tenancy: bool,
    pub roll: bool,
    pub published: bool,
    /// The leader's granted client requests (from tenancy, for the answers).
    pub granted: Option<Granted>,
    /// What the `restart` bags said in the roll (the leader's, for the answers).
    pub restart_states: Option<BTreeMap<UnitId, crate::restart::UnitRestart>>,
    pub tls: bool,
    pub tls_switch: bool,
    pub tls_forgotten: bool,
    pub upgrade: bool,
    pub upgrade_recorded: bool,
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Install,
    CreateCredentials,
    PublishIdentity,
    /// Bootstrap, join or restart this unit's server.
    StartServer(LocalAction),
    /// Start it again with the last good files (the configuration is invalid).
    RestartLastGood,
    /// Render the files for the server's next (rolling) restart.
    RenderFiles,
    Announce,
    ApplyChange(Change),
    WriteLedger(BTreeMap<UnitId, plan::Ledger>),
    /// Turn what the planner holds back into deferrals and blocks.
    SettleMembership,
    Tenancy,
    Roll,
    AnswerClients,
    /// The certificates relation: key, request, certificate, renewal, CA rotation.
    TlsIntake(crate::juju::RelationId),
    /// The leader moves the TLS switch on evidence.
    TlsSwitch,
    /// TLS is off again here: drop the stores and the evidence.
    TlsForget,
    /// The leader moves the upgrade target on evidence (and marks the peer-data schema).
    UpgradeTarget,
    /// Charmed ZooKeeper's `upgrade` relation keys for this unit (and the leader's).
    UpgradeRecord,
}

/// The next step for this snapshot and observation, `None` when nothing is left (pure).
pub(super) fn decide(
    s: &Snapshot,
    o: &Observed,
    p: &Progress,
    installed: bool,
) -> Result<Option<Step>, plan::InvariantViolation> {
    if p.install_failed {
        return Ok(None);
    }
    if !installed {
        return Ok(Some(Step::Install));
    }
    if s.leader && !s.dying && !s.creds_exist && !p.creds_tried {
        return Ok(Some(Step::CreateCredentials));
    }
    if let (Some(a), false) = (&s.address, s.dying) {
        if !(s.bag_has(peer::KEY_IP, a)
            && s.bag_has(peer::KEY_HOSTNAME, &s.hostname)
            && s.bag_has(peer::KEY_FQDN, &s.hostname)
            && s.bag_has(crate::upgrade::KEY_RELEASE, &s.release)
            && s.bag_has(crate::upgrade::KEY_OFFERED, &s.offered))
        {
            return Ok(Some(Step::PublishIdentity));
        }
    }
    // The leader's upgrade target before any server starts (a new ensemble starts on the
    // charm's build at once); with its own server running, once it announced what it runs.
    if s.leader
        && !s.dying
        && s.creds_exist
        && !p.upgrade
        && (!o.local.running || p.announced.as_ref() == Some(&o.probe))
    {
        return Ok(Some(Step::UpgradeTarget));
    }
    // Before a new server: it starts under TLS only with its certificate (a running or
    // crashed one is seen to first; its intake comes last).
    if let (Some(r), false, false, true, false) = (
        s.tls,
        p.tls,
        s.dying,
        s.address.is_some(),
        o.local.initialized,
    ) {
        return Ok(Some(Step::TlsIntake(r)));
    }
    if !p.started {
        let evidence = s.crash_evidence_needed(o.local);
        let ens = if evidence { o.planner_view() } else { None };
        let local = s.plan(o.local, ens)?.local;
        match (local, &s.address, &s.desired) {
            (Some(a @ (LocalAction::Bootstrap | LocalAction::Join { .. })), Some(_), Some(_))
                if s.tls_gate().is_none() && s.build_ready =>
            {
                return Ok(Some(Step::StartServer(a)));
            }
            (Some(LocalAction::Restart), Some(_), Some(_)) => {
                return Ok(Some(Step::StartServer(LocalAction::Restart)));
            }
            (Some(LocalAction::Restart), Some(_), None) if o.local.initialized => {
                return Ok(Some(Step::RestartLastGood));
            }
            (Some(LocalAction::Nothing), Some(_), _)
                if !s.dying
                    && o.local.running
                    && s.render_key().is_some()
                    && s.render_key() != s.rendered =>
            {
                return Ok(Some(Step::RenderFiles));
            }
            _ => {}
        }
    }
    if p.announced.as_ref() != Some(&o.probe) {
        return Ok(Some(Step::Announce));
    }
    if s.acts_on_membership() {
        let plan = s.plan(o.local, o.planner_view())?;
        let max_changes = s.peer.units.len() + s.departed.len() + 2;
        if !p.changes_stopped && p.changes < max_changes {
            if let Some(c) = plan.changes.first() {
                return Ok(Some(Step::ApplyChange(*c)));
            }
        }
        if s.leader && !plan.ledger.is_empty() {
            return Ok(Some(Step::WriteLedger(plan.ledger)));
        }
        if p.settled_at != Some(p.changes) {
            return Ok(Some(Step::SettleMembership));
        }
    }
    if s.leader && !s.dying && !p.tenancy {
        return Ok(Some(Step::Tenancy));
    }
    if s.leader && !s.dying && !p.tls_switch {
        return Ok(Some(Step::TlsSwitch));
    }
    if !p.roll {
        return Ok(Some(Step::Roll));
    }
    if !s.dying && !p.upgrade_recorded {
        return Ok(Some(Step::UpgradeRecord));
    }
    if s.leader && !s.dying && !p.published {
        return Ok(Some(Step::AnswerClients));
    }
    if let (Some(r), false, false, true) = (s.tls, p.tls, s.dying, s.address.is_some()) {
        return Ok(Some(Step::TlsIntake(r)));
    }
    if s.tls_done_here() && !p.tls_forgotten {
        return Ok(Some(Step::TlsForget));
    }
    Ok(None)
}

/// What an executed step changed on the servers: what to observe again.
enum Touched {
    Nothing,
    /// This unit's server was started (observe it, and the ensemble when observed, again).
    Server,
    /// This unit's server may have restarted in a roll (probe it again).
    Probe,
    /// The ensemble's membership.
    Ensemble,
}

/// At most this many steps in one reconcile (a bug guard: every rule above is finite).
const MAX_STEPS: usize = 200;

impl ZooKeeperCharm<'_> {
    /// The reconcile: everything this unit should do, whatever the event was.
    pub(super) fn reconcile(&mut self) -> Result<Outcome, CharmError> {
        self.conditions.clear();
        self.deferred = None;
        self.app_status = None;
        self.tls_progress = None;
        self.upgrade_hold = None;
        self.upgrade_view = Default::default();
        // Start the round of four-letter words the last hook began with, so that it overlaps
        // the hook-tool reads; the first observation uses it if it asks the same servers.
        if let (Some(hosts), true) = (&self.local.observe_hosts, self.workload.initialized()) {
            self.ensemble.prefetch(hosts);
        }
        let Some(mut snap) = self.gather()? else {
            self.ensemble.discard_prefetch();
            if !self.local.installed {
                self.execute_install();
            }
            if !self
                .conditions
                .iter()
                .any(|c| matches!(c, UnitCondition::InstallFailed(_)))
            {
                self.conditions.push(UnitCondition::NoPeerRelation);
            }
            return Ok(self.outcome());
        };
        if !snap.dying {
            self.ensemble.use_prefetch();
        }
        let mut obs = self.observe(&snap);
        self.ensemble.discard_prefetch();
        let mut progress = Progress::default();
        for _ in 0..MAX_STEPS {
            let Some(step) = decide(&snap, &obs, &progress, self.local.installed)? else {
                break;
            };
            tracing::debug!(?step, "reconcile step");
            match self.execute(step, &mut snap, &obs, &mut progress)? {
                Touched::Nothing => {}
                Touched::Server => obs = self.observe(&snap),
                Touched::Probe => {
                    obs.local = LocalServer {
                        initialized: self.workload.initialized(),
                        running: self.workload.alive(),
                    };
                    obs.probe = match (&snap.address, obs.local.initialized) {
                        (Some(a), true) => self.ensemble.probe(a),
                        _ => Probe::default(),
                    };
                }
                Touched::Ensemble => {
                    obs.ensemble = Some(self.ensemble.observe(&snap.book));
                }
            }
        }
        self.unit_conditions(&snap, &obs, &progress)?;
        self.local.observe_hosts = self.ensemble.first_round();
        Ok(self.outcome())
    }

    /// Every Juju read the reconcile needs, once. `None` before the peer relation exists.
    pub(super) fn gather(&mut self) -> Result<Option<Snapshot>, CharmError> {
        self.load_view()?;
        let me = self.me();
        let dying = self.local.dying;
        let Some(view) = self.view.as_ref() else {
            return Ok(None);
        };
        let Some(peer) = view.peer.clone() else {
            return Ok(None);
        };
        let (config, config_problem) = match &view.config {
            Ok(c) => (Some(c.clone()), None),
            Err(errs) => (None, Some(config::describe(errs))),
        };
        let leader = view.leader;
        let address = peer.unit(me).and_then(|u| {
            u.bag
                .get("ingress-address")
                .or(u.bag.get("private-address"))
                .cloned()
        });
        let creds_exist = peer.credentials_secret().is_some();
        let desired = match (&config, creds_exist) {
            (Some(c), true) => Some(super::reconcile::desired_fingerprint(c, &peer)),
            _ => None,
        };
        let book = self.address_book(&peer);
        let local = LocalServer {
            initialized: self.workload.initialized(),
            running: self.workload.alive(),
        };
        let member = peer.ledger().get(&me) == Some(&plan::Ledger::Added);
        let planned = if dying || local.running || (local.initialized && member) {
            None
        } else {
            let goal = self.tools.goal_state()?;
            Some(
                goal.iter()
                    .filter(|(u, status)| u.app() == self.ctx.app && status.as_str() != "dying")
                    .map(|(u, _)| u.number())
                    .collect(),
            )
        };
        let build_ready = self
            .workload
            .build_available(&super::upgrade::target(&peer));
        Ok(Some(Snapshot {
            release: self.charm_release(),
            offered: self.workload.offered_build(),
            build_ready,
            tls_target: super::tls::target(&peer),
            me,
            leader,
            dying,
            config,
            config_problem,
            creds_exist,
            peer,
            address,
            hostname: super::reconcile::hostname(),
            tls: self
                .tools
                .relation_ids(super::tls::ENDPOINT)?
                .first()
                .copied(),

            desired,
            rendered: self.tools.memo(super::reconcile::MEMO_RENDERED),
            departed: self.local.departed.clone(),
            book,
            planned,
        }))
    }

    /// This unit's server and, when this unit acts on membership (or needs evidence after a
    /// crash), the ensemble: in one round of four-letter words where possible.
    fn observe(&mut self, s: &Snapshot) -> Observed {
        let local = LocalServer {
            initialized: self.workload.initialized(),
            running: self.workload.alive(),
        };
        let whole = s.acts_on_membership() || s.crash_evidence_needed(local);
        let (probe, ensemble) = match (&s.address, whole) {
            (Some(a), true) if local.initialized && s.book.contains_key(&s.me) => {
                let (ens, probe) = self.ensemble.observe_with_probe(&s.book, a);
                (probe, Some(ens))
            }
            (Some(a), false) if local.initialized => (self.ensemble.probe(a), None),
            (Some(a), true) if local.initialized => {
                (self.ensemble.probe(a), Some(self.ensemble.observe(&s.book)))
            }
            (_, true) => (Probe::default(), Some(self.ensemble.observe(&s.book))),
            (_, false) => (Probe::default(), None),
        };
        Observed {
            local,
            probe,
            ensemble,
        }
    }

    /// Applies one step; says what it changed on the servers.
    fn execute(
        &mut self,
        step: Step,
        s: &mut Snapshot,
        o: &Observed,
        p: &mut Progress,
    ) -> Result<Touched, CharmError> {
        match step {
            Step::Install => {
                if !self.execute_install() {
                    p.install_failed = true;
                }
                Ok(Touched::Nothing)
            }
            Step::CreateCredentials => {
                p.creds_tried = true;
                if let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
                    let (creds, created) =
                        credentials::ensure(self.tools, peer, &self.ctx.app, None)?;
                    if created {
                        tracing::info!(
                            "created the internal users' passwords (secret {})",
                            credentials::label(&self.ctx.app)
                        );
                    }
                    self.set_creds(creds);
                }
                if let Some(fresh) = self.gather()? {
                    *s = fresh;
                }
                Ok(Touched::Nothing)
            }
            Step::PublishIdentity => {
                if let Some(a) = s.address.clone() {
                    self.write_unit_bag(
                        s,
                        [
                            (peer::KEY_IP.to_string(), a),
                            (peer::KEY_HOSTNAME.to_string(), s.hostname.clone()),
                            (peer::KEY_FQDN.to_string(), s.hostname.clone()),
                            (crate::upgrade::KEY_RELEASE.to_string(), s.release.clone()),
                            (crate::upgrade::KEY_OFFERED.to_string(), s.offered.clone()),
                        ]
                        .into(),
                    )?;
                }
                Ok(Touched::Nothing)
            }
            Step::StartServer(action) => {
                p.started = true;
                self.start_server(s, &action)?;
                // What it was started into, before it serves: the switch counts this server
                // from now on (it must not move two steps past a server still syncing).
                if let Some(serving) = self.local.tls_serving.as_deref().and_then(Serving::parse) {
                    self.write_unit_bag(s, super::tls::serving_keys(serving))?;
                }
                Ok(Touched::Server)
            }
            Step::RestartLastGood => {
                p.started = true;
                self.restart_last_good(s)?;
                Ok(Touched::Server)
            }
            Step::RenderFiles => {
                let changed = self.refresh_server_files(s)?;
                tracing::debug!(changed, "server configuration files checked");
                s.rendered = s.render_key();
                Ok(Touched::Nothing)
            }
            Step::Announce => {
                p.announced = Some(o.probe.clone());
                if !s.dying && o.probe.broadcasting() {
                    let mut bag = super::tls::serving_keys(self.served_step());
                    bag.insert(peer::KEY_STATE.to_string(), peer::STATE_STARTED.to_string());
                    bag.insert(
                        crate::upgrade::KEY_BUILD.to_string(),
                        self.workload.started_build().unwrap_or_default(),
                    );
                    self.write_unit_bag(s, bag)?;
                }
                if let Some(v) = &o.probe.version {
                    self.tools.application_version_set(v)?;
                }
                Ok(Touched::Nothing)
            }
            Step::ApplyChange(change) => {
                let super_pws = self.super_candidates()?;
                if super_pws.is_empty() {
                    p.changes_stopped = true;
                    return Ok(Touched::Nothing);
                }
                let addr = match change {
                    Change::Add(u) => s.book.get(&u).cloned(),
                    Change::Remove(_) => None,
                };
                tracing::info!("quorum change: {change}");
                p.changes += 1;
                match self
                    .ensemble
                    .apply(change, addr.as_deref(), &s.book, &super_pws)
                {
                    Ok(()) => Ok(Touched::Ensemble),
                    Err(ChangeError::Transient(h)) => {
                        p.transient = Some(h);
                        p.changes_stopped = true;
                        Ok(Touched::Ensemble)
                    }
                    Err(ChangeError::Failed(msg)) => {
                        p.changes_stopped = true;
                        self.meet(Verdict::Blocked(format!("{change} failed: {msg}")));
                        Ok(Touched::Nothing)
                    }
                }
            }
            Step::WriteLedger(ledger) => {
                let data = peer::ledger_writes(&ledger);
                self.tools.relation_set(s.peer.relation, true, &data)?;
                s.peer.apply_app_write(&data);
                if let Some(pv) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
                    pv.apply_app_write(&data);
                }
                tracing::info!("membership ledger updated: {ledger:?}");
                Ok(Touched::Nothing)
            }
            Step::SettleMembership => {
                p.settled_at = Some(p.changes);
                let plan = s.plan(o.local, o.planner_view())?;
                if let Some(h) = p.transient.clone().or_else(|| plan.defer_reason().cloned()) {
                    self.meet(Verdict::from(&h));
                }
                for (c, h) in &plan.held {
                    if !h.is_transient() {
                        tracing::warn!("not applying {c}");
                        self.meet(Verdict::from(h));
                    }
                }
                Ok(Touched::Nothing)
            }
            Step::Tenancy => {
                p.tenancy = true;
                let ens = self.ensemble_for_operations(s, o);
                p.granted = Some(self.clients_prepare(s, ens.as_ref())?);
                Ok(Touched::Nothing)
            }
            Step::Roll => {
                p.roll = true;
                let starts = self.local.starts;
                let ens = self.ensemble_for_operations(s, o);
                p.restart_states = self.rolling(s, ens.as_ref())?;
                if self.local.starts != starts {
                    // This server restarted: announce what it serves now, and let the leader's
                    // switch look again (the last restart of a step may be its own).
                    p.announced = None;
                    p.tls_switch = false;
                    p.upgrade = false;
                    p.upgrade_recorded = false;
                    // The leader's roll goes on after its upgrade decision saw this restart
                    // (the pause counts it).
                    p.roll = !s.leader;
                    return Ok(Touched::Probe);
                }
                // A server that did not serve at first: look again.
                if o.probe.peer_state.is_none() {
                    return Ok(Touched::Probe);
                }
                Ok(Touched::Nothing)
            }
            Step::AnswerClients => {
                p.published = true;
                // Kept (not taken): new TLS stores later in the hook answer the clients again.
                if let Some(granted) = p.granted.as_ref() {
                    let states = p.restart_states.clone().unwrap_or_default();
                    let version = o.probe.version.clone();
                    self.clients_publish(s, granted, &states, version.as_deref())?;
                }
                Ok(Touched::Nothing)
            }
            Step::TlsIntake(rel) => {
                p.tls = true;
                let evidence = |s: &Snapshot| {
                    s.peer
                        .unit(s.me)
                        .and_then(|u| u.bag.get(super::tls::KEY_TLS_CERT).cloned())
                };
                let before = evidence(s);
                let stores = self.tls_stores_fingerprint()?;
                self.tls_intake(s, rel)?;
                if s.leader && evidence(s) != before {
                    // The leader's own certificate changed: its switch looks again (no other
                    // hook would tell it; a single unit would wait for update-status).
                    p.tls_switch = false;
                }
                if self.tls_stores_fingerprint()? != stores {
                    // New stores (a renewal, a rotation): the roll takes them in and the
                    // clients' CAs follow, in this hook (no other hook would come for them).
                    p.roll = false;
                    p.published = false;
                }
                Ok(Touched::Nothing)
            }
            Step::TlsSwitch => {
                p.tls_switch = true;
                if self.tls_switch(s)? {
                    // A new step: its files and its rolling restart, in this hook already.
                    p.roll = false;
                }
                Ok(Touched::Nothing)
            }
            Step::TlsForget => {
                p.tls_forgotten = true;
                self.tls_forget(s)?;
                Ok(Touched::Nothing)
            }
            Step::UpgradeTarget => {
                p.upgrade = true;
                if self.upgrade_target(s, o)? {
                    // A moved target: its files and its rolling restart, in this hook already.
                    p.roll = false;
                    p.upgrade_recorded = false;
                }
                Ok(Touched::Nothing)
            }
            Step::UpgradeRecord => {
                p.upgrade_recorded = true;
                self.upgrade_record(s, o)?;
                Ok(Touched::Nothing)
            }
        }
    }

    /// The ensemble client and restart operations work with: the last observation when this
    /// unit acts on membership (empty when nothing answered), else none.
    fn ensemble_for_operations(&self, s: &Snapshot, o: &Observed) -> Option<EnsembleState> {
        s.acts_on_membership()
            .then(|| o.planner_view().cloned().unwrap_or_default())
    }

    /// Installs the software unless done before; false (with a condition) if that failed.
    fn execute_install(&mut self) -> bool {
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

    /// The unit's conditions at the end of the reconcile (the unit status comes from them),
    /// and the leader's application status.
    fn unit_conditions(
        &mut self,
        s: &Snapshot,
        o: &Observed,
        p: &Progress,
    ) -> Result<(), CharmError> {
        if p.install_failed {
            return Ok(());
        }
        if let Some(problem) = &s.config_problem {
            tracing::warn!("{problem}; keeping the last good configuration");
            self.conditions
                .insert(0, UnitCondition::InvalidConfig(problem.clone()));
        }
        if !p.started {
            let evidence = s.crash_evidence_needed(o.local);
            let ens = if evidence { o.planner_view() } else { None };
            let local = s.plan(o.local, ens)?.local;
            if let (Some(LocalAction::Bootstrap | LocalAction::Join { .. }), Some(why)) =
                (&local, s.tls_gate())
            {
                self.conditions
                    .push(UnitCondition::TlsWaiting(why.to_string()));
            }
            if matches!(
                local,
                Some(LocalAction::Bootstrap | LocalAction::Join { .. })
            ) && !s.build_ready
            {
                self.conditions.push(UnitCondition::UpgradeWaitingCharm(
                    crate::upgrade::label(&super::upgrade::target(&s.peer)).to_string(),
                ));
            }
            if let Some(LocalAction::Wait(w)) = local {
                self.conditions.push(match w {
                    Wait::Credentials => UnitCondition::WaitingCredentials,
                    Wait::Bootstrap => UnitCondition::WaitingBootstrap,
                    Wait::OwnAddress | Wait::ParticipantAddresses => UnitCondition::WaitingAddress,
                    Wait::OtherUnitsFirst => UnitCondition::WaitingOtherUnits,
                    w @ Wait::LowerThanMembers(_) => UnitCondition::CannotJoin(w.to_string()),
                });
            }
        }
        if s.dying {
            self.conditions.push(UnitCondition::Leaving);
            return Ok(());
        }
        if !self.workload.initialized() {
            return Ok(());
        }
        let probe = &o.probe;
        let ens = self.ensemble_for_operations(s, o);
        let members = match &ens {
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
        if let Some(c) = self.upgrade_condition(s) {
            self.conditions.push(c);
        }
        if !probe.broadcasting() {
            self.conditions.push(UnitCondition::NotServing);
        } else if !members.get(&s.me).is_some_and(|m| m.voting) {
            self.conditions.push(UnitCondition::NotInQuorum);
        }
        if s.leader {
            if let Some(e) = &ens {
                let units = s.peer.units.len();
                let serving = e
                    .voters()
                    .iter()
                    .filter(|u| s.peer.units.contains_key(u) && e.broadcasting.contains(u))
                    .count();
                let quorum = status::app_status(serving, units, e.leader.is_some());
                let quorum = match &self.upgrade_view.progress {
                    Some(progress) => status::app_status_upgrade(quorum, progress),
                    None => quorum,
                };
                self.app_status = Some(match &self.tls_progress {
                    Some(progress) => status::app_status_tls(quorum, progress),
                    None => quorum,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::{RelationId, UnitName};
    use crate::quorum::plan::Member;
    use crate::state::peer::PeerUnitData;

    /// Unit `me` of units `0..n`, each with its address, identity and `state=started` as
    /// `started` says; the ledger lists `added`; the credentials exist.
    fn snapshot(
        me: UnitId,
        leader: bool,
        n: u32,
        started: &[UnitId],
        added: &[UnitId],
    ) -> Snapshot {
        let units = (0..n)
            .map(|u| {
                let a = format!("10.0.0.{}", 10 + u);
                let mut bag: crate::juju::tools::Databag = [
                    ("ingress-address".to_string(), a.clone()),
                    (peer::KEY_IP.to_string(), a),
                    (peer::KEY_HOSTNAME.to_string(), "host".to_string()),
                    (peer::KEY_FQDN.to_string(), "host".to_string()),
                    (crate::upgrade::KEY_RELEASE.to_string(), "test".to_string()),
                    (crate::upgrade::KEY_OFFERED.to_string(), String::new()),
                ]
                .into();
                if started.contains(&u) {
                    bag.insert(peer::KEY_STATE.into(), peer::STATE_STARTED.into());
                }
                let name = UnitName::parse(&format!("zookeeper/{u}")).expect("name");
                (u, PeerUnitData { name, bag })
            })
            .collect();
        let mut app: crate::juju::tools::Databag =
            [(peer::KEY_SECRET.to_string(), "secret:x".to_string())].into();
        for u in added {
            app.insert(u.to_string(), "added".into());
        }
        let peer = PeerState {
            relation: RelationId(0),
            units,
            app,
        };
        let config = CharmConfig::default();
        let desired = Some(super::super::reconcile::desired_fingerprint(&config, &peer));
        let book = (0..n).map(|u| (u, format!("10.0.0.{}", 10 + u))).collect();
        let rendered = Some(format!(
            "{}@10.0.0.{}",
            desired.clone().unwrap_or_default(),
            10 + me
        ));
        Snapshot {
            me,
            leader,
            dying: false,
            config: Some(config),
            config_problem: None,
            creds_exist: true,
            address: Some(format!("10.0.0.{}", 10 + me)),
            hostname: "host".into(),
            desired,
            rendered,
            departed: BTreeSet::new(),
            book,
            planned: Some((0..n).collect()),
            tls: None,
            tls_target: Serving::Plain,
            release: "test".into(),
            offered: String::new(),
            build_ready: true,
            peer,
        }
    }

    fn running() -> LocalServer {
        LocalServer {
            initialized: true,
            running: true,
        }
    }

    fn serving(voters: &[UnitId], leader: UnitId) -> EnsembleState {
        EnsembleState {
            leader: Some(leader),
            members: voters
                .iter()
                .map(|u| {
                    (
                        *u,
                        Member {
                            address: format!("10.0.0.{}", 10 + u),
                            voting: true,
                        },
                    )
                })
                .collect(),
            version: Some(1),
            broadcasting: voters.iter().copied().collect(),
            ..EnsembleState::default()
        }
    }

    fn broadcasting() -> Probe {
        Probe {
            peer_state: Some("following - broadcast".into()),
            version: Some("3.8.0".into()),
            ..Probe::default()
        }
    }

    /// Unit 0 leads a one-voter ensemble; unit 1's server serves as a joiner.
    fn joiner_serving() -> Observed {
        let mut ensemble = serving(&[0], 0);
        ensemble.broadcasting.insert(1);
        Observed {
            local: running(),
            probe: broadcasting(),
            ensemble: Some(ensemble),
        }
    }

    /// The next step, the upgrade steps taken as done (their place is tested on its own).
    fn next(s: &Snapshot, o: &Observed, p: &Progress) -> Option<Step> {
        let mut p2 = Progress {
            upgrade: p.upgrade,
            upgrade_recorded: p.upgrade_recorded,
            ..Progress::default()
        };
        loop {
            // Progress is not Clone: decide on a copy of the flags that matter here.
            let step = decide_with(s, o, p, &p2);
            match step {
                Some(Step::UpgradeTarget) => p2.upgrade = true,
                Some(Step::UpgradeRecord) => p2.upgrade_recorded = true,
                other => return other,
            }
        }
    }

    fn decide_with(s: &Snapshot, o: &Observed, p: &Progress, up: &Progress) -> Option<Step> {
        let merged = Progress {
            install_failed: p.install_failed,
            creds_tried: p.creds_tried,
            started: p.started,
            announced: p.announced.clone(),
            changes: p.changes,
            changes_stopped: p.changes_stopped,
            transient: p.transient.clone(),
            settled_at: p.settled_at,
            tenancy: p.tenancy,
            roll: p.roll,
            published: p.published,
            granted: None,
            restart_states: None,
            tls: p.tls,
            tls_switch: p.tls_switch,
            tls_forgotten: p.tls_forgotten,
            upgrade: up.upgrade,
            upgrade_recorded: up.upgrade_recorded,
        };
        decide(s, o, &merged, true).expect("a plan")
    }

    #[test]
    fn the_leader_sets_the_upgrade_target_before_any_start_and_every_unit_records_after_the_roll() {
        let s = snapshot(0, true, 3, &[], &[]);
        let o = Observed::default();
        assert_eq!(
            decide(&s, &o, &Progress::default(), true).expect("plan"),
            Some(Step::UpgradeTarget)
        );
        let f = snapshot(1, false, 2, &[0, 1], &[0, 1]);
        let o = joiner_serving();
        let done = Progress {
            announced: Some(o.probe.clone()),
            roll: true,
            ..Progress::default()
        };
        assert_eq!(
            decide(&f, &o, &done, true).expect("plan"),
            Some(Step::UpgradeRecord)
        );
    }

    /// Runs `decide`, marking each step done as the executor would, until nothing is left;
    /// returns the steps.
    fn drain(s: &mut Snapshot, o: &Observed, p: &mut Progress) -> Vec<Step> {
        let mut steps = Vec::new();
        while let Some(step) = decide(s, o, p, true).expect("a plan") {
            if matches!(step, Step::UpgradeTarget | Step::UpgradeRecord) {
                match step {
                    Step::UpgradeTarget => p.upgrade = true,
                    _ => p.upgrade_recorded = true,
                }
                continue;
            }
            match &step {
                Step::Announce => p.announced = Some(o.probe.clone()),
                Step::SettleMembership => p.settled_at = Some(p.changes),
                Step::Tenancy => p.tenancy = true,
                Step::Roll => p.roll = true,
                Step::AnswerClients => p.published = true,
                Step::TlsSwitch => p.tls_switch = true,
                Step::UpgradeTarget => p.upgrade = true,
                Step::UpgradeRecord => p.upgrade_recorded = true,
                Step::RenderFiles => s.rendered = s.render_key(),
                other => panic!("unexpected {other:?} after {steps:?}"),
            }
            steps.push(step);
            assert!(steps.len() < 20, "{steps:?}");
        }
        steps
    }

    #[test]
    fn the_software_comes_first_and_a_failed_install_ends_the_hook() {
        let s = snapshot(0, true, 1, &[], &[]);
        let o = Observed::default();
        assert_eq!(
            decide(&s, &o, &Progress::default(), false),
            Ok(Some(Step::Install))
        );
        let failed = Progress {
            install_failed: true,
            ..Progress::default()
        };
        assert_eq!(decide(&s, &o, &failed, false), Ok(None));
    }

    #[test]
    fn only_the_leader_creates_the_passwords_once() {
        let mut s = snapshot(0, true, 1, &[], &[]);
        s.creds_exist = false;
        let o = Observed::default();
        assert_eq!(
            next(&s, &o, &Progress::default()),
            Some(Step::CreateCredentials)
        );
        let tried = Progress {
            creds_tried: true,
            ..Progress::default()
        };
        assert_ne!(next(&s, &o, &tried), Some(Step::CreateCredentials));
        s.leader = false;
        assert_ne!(
            next(&s, &o, &Progress::default()),
            Some(Step::CreateCredentials)
        );
    }

    #[test]
    fn a_missing_or_stale_identity_is_published_but_not_by_a_dying_unit() {
        let mut s = snapshot(1, false, 2, &[0, 1], &[0, 1]);
        s.hostname = "renamed".into();
        let o = Observed {
            local: running(),
            probe: broadcasting(),
            ..Observed::default()
        };
        assert_eq!(
            next(&s, &o, &Progress::default()),
            Some(Step::PublishIdentity)
        );
        s.dying = true;
        assert_ne!(
            next(&s, &o, &Progress::default()),
            Some(Step::PublishIdentity)
        );
    }

    #[test]
    fn the_lowest_unit_bootstraps_once_per_hook() {
        let s = snapshot(0, true, 3, &[], &[]);
        let o = Observed::default();
        assert_eq!(
            next(&s, &o, &Progress::default()),
            Some(Step::StartServer(LocalAction::Bootstrap))
        );
        let started = Progress {
            started: true,
            ..Progress::default()
        };
        assert_eq!(next(&s, &o, &started), Some(Step::Announce));
    }

    #[test]
    fn without_a_valid_configuration_nothing_new_starts_but_a_crashed_server_comes_back() {
        let mut s = snapshot(0, true, 1, &[0], &[0]);
        s.desired = None;
        let fresh = Observed::default();
        assert_eq!(next(&s, &fresh, &Progress::default()), Some(Step::Announce));
        let crashed = Observed {
            local: LocalServer {
                initialized: true,
                running: false,
            },
            ..Observed::default()
        };
        assert_eq!(
            next(&s, &crashed, &Progress::default()),
            Some(Step::RestartLastGood)
        );
    }

    #[test]
    fn a_converged_leader_runs_tenancy_roll_and_answers_then_stops() {
        let mut s = snapshot(0, true, 3, &[0, 1, 2], &[0, 1, 2]);
        let o = Observed {
            local: running(),
            probe: broadcasting(),
            ensemble: Some(serving(&[0, 1, 2], 0)),
        };
        let steps = drain(&mut s, &o, &mut Progress::default());
        assert_eq!(
            steps,
            [
                Step::Announce,
                Step::SettleMembership,
                Step::Tenancy,
                Step::TlsSwitch,
                Step::Roll,
                Step::AnswerClients
            ]
        );
    }

    #[test]
    fn under_tls_a_new_server_starts_only_with_its_certificate_and_the_leaders_target() {
        // The relation exists before anything started: the intake runs first, then nobody
        // bootstraps until the leader's target says TLS.
        let mut s = snapshot(0, true, 3, &[], &[]);
        s.tls = Some(crate::juju::RelationId(9));
        let o = Observed::default();
        assert_eq!(
            next(&s, &o, &Progress::default()),
            Some(Step::TlsIntake(crate::juju::RelationId(9)))
        );
        let after_intake = Progress {
            tls: true,
            ..Progress::default()
        };
        assert_ne!(
            next(&s, &o, &after_intake),
            Some(Step::StartServer(LocalAction::Bootstrap))
        );
        assert!(s.tls_gate().is_some());
        // The leader asked for TLS, but this unit holds no certificate yet.
        s.tls_target = Serving::Tls;
        assert!(s.tls_gate().is_some());
        let mut bag = s.peer.units[&0].bag.clone();
        bag.insert(super::super::tls::KEY_TLS_CERT.into(), "ab:cd".into());
        s.peer.units.get_mut(&0).expect("unit 0").bag = bag;
        assert_eq!(s.tls_gate(), None);
        assert_eq!(
            next(&s, &o, &after_intake),
            Some(Step::StartServer(LocalAction::Bootstrap))
        );
        // Without the relation and with a plain target, nothing waits for TLS.
        let plain = snapshot(0, true, 3, &[], &[]);
        assert_eq!(plain.tls_gate(), None);
    }

    #[test]
    fn a_running_server_comes_first_and_tls_is_forgotten_once_off_here() {
        let mut s = snapshot(1, false, 3, &[0, 1, 2], &[0, 1, 2]);
        s.tls = Some(crate::juju::RelationId(9));
        let o = Observed {
            local: running(),
            probe: broadcasting(),
            ensemble: None,
        };
        // The intake of a running server comes after the rest of the hook.
        let p = Progress {
            announced: Some(o.probe.clone()),
            roll: true,
            ..Progress::default()
        };
        assert_eq!(
            next(&s, &o, &p),
            Some(Step::TlsIntake(crate::juju::RelationId(9)))
        );
        // The relation gone, the target plain, this server plain: its evidence goes once.
        s.tls = None;
        let mut bag = s.peer.units[&1].bag.clone();
        bag.insert(super::super::tls::KEY_TLS_CERT.into(), "ab".into());
        bag.insert(super::super::tls::KEY_TLS_SERVING.into(), "plain".into());
        s.peer.units.get_mut(&1).expect("unit 1").bag = bag.clone();
        assert_eq!(next(&s, &o, &p), Some(Step::TlsForget));
        let forgotten = Progress {
            tls_forgotten: true,
            ..p
        };
        assert_eq!(next(&s, &o, &forgotten), None);
        // Not while this server still serves a TLS step.
        bag.insert(super::super::tls::KEY_TLS_SERVING.into(), "unified".into());
        s.peer.units.get_mut(&1).expect("unit 1").bag = bag;
        let p = Progress {
            announced: Some(o.probe.clone()),
            roll: true,
            ..Progress::default()
        };
        assert_eq!(next(&s, &o, &p), None);
    }

    #[test]
    fn a_converged_follower_announces_and_takes_part_in_the_roll_only() {
        let mut s = snapshot(1, false, 3, &[0, 1, 2], &[0, 1, 2]);
        // Its files were rendered for other inputs (a configuration change): render them now
        // for the next rolling restart.
        s.rendered = Some("older".into());
        let o = Observed {
            local: running(),
            probe: broadcasting(),
            ensemble: None,
        };
        let steps = drain(&mut s, &o, &mut Progress::default());
        assert_eq!(steps, [Step::RenderFiles, Step::Announce, Step::Roll]);
    }

    #[test]
    fn the_leader_adds_a_started_joiner_then_records_it() {
        let s = snapshot(0, true, 2, &[0, 1], &[0]);
        let mut o = joiner_serving();
        let p = Progress {
            announced: Some(o.probe.clone()),
            ..Progress::default()
        };
        assert_eq!(next(&s, &o, &p), Some(Step::ApplyChange(Change::Add(1))));
        // Applied: ZooKeeper lists it; the ledger follows.
        o.ensemble = Some(serving(&[0, 1], 0));
        let p = Progress { changes: 1, ..p };
        match next(&s, &o, &p) {
            Some(Step::WriteLedger(l)) => assert_eq!(l.get(&1), Some(&plan::Ledger::Added)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_hold_stops_changes_but_the_hook_goes_on() {
        let s = snapshot(0, true, 2, &[0, 1], &[0]);
        let o = joiner_serving();
        let p = Progress {
            announced: Some(o.probe.clone()),
            changes: 1,
            changes_stopped: true,
            transient: Some(Hold::MembersSyncing),
            ..Progress::default()
        };
        assert_eq!(next(&s, &o, &p), Some(Step::SettleMembership));
    }

    #[test]
    fn the_step_budget_bounds_changes() {
        let s = snapshot(0, true, 2, &[0, 1], &[0]);
        let o = joiner_serving();
        let p = Progress {
            announced: Some(o.probe.clone()),
            changes: 4,
            ..Progress::default()
        };
        assert_ne!(next(&s, &o, &p), Some(Step::ApplyChange(Change::Add(1))));
    }
}
