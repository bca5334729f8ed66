//! The ZooKeeper charm: which events it acts on, and the one idempotent reconcile most of them
//! run.
//!
//! The reconcile ([`hook`], the whole hook in one file) gathers every Juju read once, observes
//! the servers, and alternates a pure decision with one executed step until nothing is left;
//! [`reconcile`] holds what the executor does to this unit's server, [`clients`] and
//! [`rolling`] the client tenancy and the rolling-restart lock. It returns an [`Outcome`]:
//! `Defer` only when the ensemble answered "members syncing", "member not ready" or "no quorum
//! leader" ([`ensemble_io::Verdict`], the one error policy). The unit status is set once, at the
//! end of the hook, from the conditions the reconcile found.

mod actions;
mod clients;
pub mod ensemble_io;
mod hook;
mod reconcile;
mod rolling;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod testing;
mod tls;
mod upgrade;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::status::{self, UnitCondition};
use crate::engine::{Charm, Outcome, Summary};
use crate::juju::cached::CachedTools;
use crate::juju::tools::{HookTools, Status};
use crate::juju::{Context, Event, RelationPhase, ToolError};
use crate::quorum::plan::{self, UnitId};
use crate::state::config::{CharmConfig, ConfigError};
use crate::state::credentials::{self, Credentials, CredentialsError};
use crate::state::local::LocalState;
use crate::state::peer::{PeerState, PEER_ENDPOINT};
use crate::workload::{Workload, WorkloadError};
use ensemble_io::{EnsembleIo, Verdict};

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
    #[error(transparent)]
    Ownership(#[from] crate::clients::ownership::Violation),
    #[error("cannot save the unit state in the charm directory: {0}")]
    LocalState(std::io::Error),
}

/// The endpoints whose bags the hook tools keep between hooks ([`CachedTools`]); the peer
/// `cluster` bags are read afresh in every hook.
pub const CACHED_ENDPOINTS: [&str; 2] = [crate::restart::ENDPOINT, clients::ENDPOINT];

/// The charm's hook tools: the real (or fake) ones behind the read cache.
pub fn cached_tools<'t>(tools: &'t dyn HookTools, ctx: &Context) -> CachedTools<'t> {
    CachedTools::load(
        tools,
        &ctx.charm_dir,
        &ctx.event,
        Some(&ctx.unit),
        &CACHED_ENDPOINTS,
    )
}

/// Tunables.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long a hook waits for a freshly started server to reach "... - broadcast".
    pub start_wait: Duration,
    /// Now, unix seconds (injected: records carry timestamps).
    pub now: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            start_wait: Duration::from_secs(60),
            now: crate::unix_now(),
        }
    }
}

impl Options {
    /// `ZOOKEEPER_CHARM_START_WAIT` (seconds) overrides the start wait.
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
    /// The credentials secret, read on first use ([`ZooKeeperCharm::creds`]).
    creds: Option<Credentials>,
    creds_loaded: bool,
}

pub struct ZooKeeperCharm<'a> {
    ctx: &'a Context,
    tools: &'a CachedTools<'a>,
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
    /// The first deferral met in this reconcile ([`Self::meet`]): the hook's outcome.
    deferred: Option<String>,
    /// The leader's TLS switch progress, for the application status.
    tls_progress: Option<String>,
    /// This unit's server serves TLS from stores that changed since it started.
    tls_stale: bool,
    /// Why the leader grants no further restart now (the upgrade is paused).
    upgrade_hold: Option<String>,
    /// The leader's view of an upgrade in this hook.
    upgrade_view: upgrade::UpgradeView,
}

impl<'a> ZooKeeperCharm<'a> {
    pub fn new(
        ctx: &'a Context,
        tools: &'a CachedTools<'a>,
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
            deferred: None,
            tls_progress: None,
            tls_stale: false,
            upgrade_hold: None,
            upgrade_view: Default::default(),
        }
    }

    fn me(&self) -> UnitId {
        self.ctx.unit.number()
    }

    /// Reads (once per hook) what the reconcile needs from Juju; the credentials secret only
    /// when something needs it ([`Self::creds`]).
    fn load_view(&mut self) -> Result<(), CharmError> {
        if self.view.is_some() {
            return Ok(());
        }
        let leader = self.tools.is_leader()?;
        let config = CharmConfig::from_json(&self.tools.config_get()?);
        let peer = PeerState::read(self.tools, &self.ctx.unit)?;
        self.view = Some(View {
            leader,
            config,
            peer,
            creds: None,
            creds_loaded: false,
        });
        Ok(())
    }

    /// The credentials (complete ones only), reading the secret on first use in this hook.
    fn creds(&mut self) -> Result<Option<Credentials>, CharmError> {
        self.load_view()?;
        let tools = self.tools;
        let Some(view) = self.view.as_mut() else {
            return Ok(None);
        };
        if !view.creds_loaded {
            view.creds = match &view.peer {
                Some(p) => credentials::read(tools, p)?,
                None => None,
            };
            view.creds_loaded = true;
        }
        Ok(view.creds.clone().filter(Credentials::complete))
    }

    /// Replaces the credentials after this hook wrote them.
    fn set_creds(&mut self, creds: Credentials) {
        if let Some(view) = self.view.as_mut() {
            view.creds = Some(creds);
            view.creds_loaded = true;
        }
    }

    /// Shows a status at once (long steps: starting a server, restarting in a roll).
    fn show_progress(&mut self, status: Status) -> Result<(), CharmError> {
        Ok(self.tools.status_set(false, &status)?)
    }

    /// Records what a condition met on the way means ([`Verdict`]): a deferral (the first one
    /// is the hook's outcome) or a block, each shown in the unit status.
    fn meet(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Defer(why) => {
                if !self
                    .conditions
                    .iter()
                    .any(|c| matches!(c, UnitCondition::Deferred(w) if *w == why))
                {
                    self.conditions.push(UnitCondition::Deferred(why.clone()));
                }
                self.deferred.get_or_insert(why);
            }
            Verdict::Blocked(message) => {
                tracing::warn!("{message}");
                self.conditions.push(UnitCondition::Held(message));
            }
        }
    }

    /// The reconcile's outcome: deferred if it met a deferral.
    fn outcome(&mut self) -> Outcome {
        self.deferred.take().map_or(Outcome::Done, Outcome::defer)
    }

    /// This unit leads, and did not in its last hook that finished: a new leader reads
    /// everything the old one may have left half done.
    fn leading_anew(&self) -> bool {
        self.view.as_ref().is_some_and(|v| v.leader) && !self.local.led
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
            if let Err(e) = self.reconcile() {
                tracing::warn!("leaving the quorum before stopping failed: {e}");
            }
        }
        self.workload.stop()?;
        self.conditions = vec![UnitCondition::Leaving];
        Ok(Outcome::Done)
    }
}

impl Charm for ZooKeeperCharm<'_> {
    type Error = CharmError;

    /// Whatever deferred it, a replay only reconciles (what the event meant was recorded when
    /// it first ran): one queue entry, and a hook runs one reconcile however long the backlog.
    fn deferred_as(&self, _event: &Event) -> Event {
        Event::Reconcile
    }

    fn handle(&mut self, event: &Event, replayed: bool) -> Result<Outcome, CharmError> {
        if replayed {
            // What the event itself meant (a departure, a detaching storage) was recorded when it
            // first ran, in the hook that deferred it; a replay only reconciles. An entry that
            // never defers (stop, remove, an action: a corrupt or hand-edited queue) is dropped.
            if !event.deferrable() || matches!(event, Event::Unknown { .. }) {
                tracing::warn!("dropping {event} from the deferred queue: it is never replayed");
                return Ok(Outcome::Done);
            }
            return self.reconcile();
        }
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
            // The `data` storage is required: Juju detaches it only from a unit that is going
            // away, and it runs this hook before the relation teardown. Leave now, so a crashed
            // server is not started again on its way out.
            Event::Storage {
                phase: crate::juju::context::StoragePhase::Detaching,
                ..
            } => {
                tracing::info!("storage detaching: this unit is leaving the ensemble");
                self.local.dying = true;
                self.reconcile()
            }
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
        if !matches!(self.ctx.event, Event::Action { .. } | Event::Unknown { .. }) {
            self.set_statuses(summary)?;
        }
        if let Some(v) = &self.view {
            self.local.led = v.leader;
        }
        if self.local != self.local_before {
            self.local
                .save(&self.ctx.charm_dir)
                .map_err(CharmError::LocalState)?;
        }
        // This hook's reads and statuses are remembered: the next one may trust them.
        self.tools.save().map_err(CharmError::LocalState)?;
        Ok(())
    }
}

impl ZooKeeperCharm<'_> {
    /// The unit status from the conditions found (and the leader's application status).
    fn set_statuses(&mut self, summary: &Summary) -> Result<(), CharmError> {
        let mut conditions = self.conditions.clone();
        if let Some((_, reason)) = summary.still_deferred.first() {
            if !conditions
                .iter()
                .any(|c| matches!(c, UnitCondition::Deferred(_)))
            {
                conditions.push(UnitCondition::Deferred(reason.clone()));
            }
        }
        // Only what changed: "since" then says when a status really changed, and a converged
        // hook runs no status tool at all.
        self.tools
            .status_set(false, &status::unit_status(&conditions))?;
        if self.view.as_ref().is_some_and(|v| !v.leader) {
            // Another unit leads: forget what only the leader keeps (the application status it
            // set, its copies of ZooKeeper's answers), so that leading again starts afresh.
            self.tools.forget_app_status();
            self.local.client_facts.clear();
        }
        if let Some(app) = self.app_status.clone() {
            let app = status::app_status_with(app, &conditions);
            self.tools.status_set(true, &app)?;
        }
        Ok(())
    }
}
