//! In-process scenario tests of the whole charm: real dispatch, real reconcile, with
//! [`charm_engine::juju::fake`] for the hook tools and a recording fake ensemble and workload
//! for the servers. No process, no ZooKeeper, no Juju.
//!
//! A [`Model`] holds one [`FakeJuju`] view per unit and a shared [`World`]: which servers run,
//! the committed membership, the quorum leader, the znodes. A unit's hook runs in place; when it
//! succeeds its relation writes (and, for the leader, its application secrets) are copied into
//! every other unit's view, which queues `-relation-changed` for them, as Juju does after a
//! commit. A failed hook's writes are dropped (its statuses stay: status-set is immediate).
//! [`Model::settle`] runs the queued hooks, then the deferred queues (through update-status),
//! until nothing is left.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use charm_engine::juju::fake::{FakeJuju, FakeRelation, FakeSecret, FakeTools};
use charm_engine::juju::tools::{Databag, LogLevel, Status};
use charm_engine::juju::{Context, Event, RelationId, RelationPhase, UnitName};
use charm_engine::{Outcome, Summary};

use super::ensemble_io::{Admin, ChangeError, EnsembleIo, MemberReport, Probe, QuorumReport};
use super::{Options, ZooKeeperCharm};
use crate::quorum::plan::{Change, EnsembleState, Hold, Member, UnitId};
use crate::secret::Secret;
use crate::workload::render::{Flavor, Paths};
use crate::workload::{Workload, WorkloadError};
use crate::zk::acl::AclEntry;

pub const APP: &str = "zookeeper";
pub const PEER: u32 = 0;
pub const RESTART: u32 = 1;

pub fn address(u: UnitId) -> String {
    format!("10.0.0.{}", 10 + u)
}

fn unit_at(address: &str) -> Option<UnitId> {
    address
        .strip_prefix("10.0.0.")?
        .split(':')
        .next()?
        .parse::<u32>()
        .ok()?
        .checked_sub(10)
}

/// One server process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Server {
    pub running: bool,
    /// SIGSTOPped: alive, answers nothing.
    pub frozen: bool,
    /// Times started.
    pub starts: u32,
    /// Started while listed in [`World::no_serve_on_start`]: runs, never syncs.
    pub silent: bool,
    /// The ZooKeeper build it was started with ("" = the distribution's package).
    pub build: String,
    /// The build its next start runs.
    pub next_build: String,
    /// Builds installed on its machine.
    pub installed: BTreeSet<String>,
}

/// What the servers are: shared by every unit's fake workload and fake ensemble.
#[derive(Debug, Default)]
pub struct World {
    pub servers: BTreeMap<UnitId, Server>,
    /// The committed configuration.
    pub members: BTreeMap<UnitId, Member>,
    pub leader: Option<UnitId>,
    pub version: u64,
    /// The leader reports syncing learners.
    pub syncing: bool,
    /// Answers the next membership changes get instead of applying (front first).
    pub refusals: VecDeque<ChangeError>,
    /// Membership changes applied, in order.
    pub applied: Vec<Change>,
    /// Znodes: data and ACL.
    pub znodes: BTreeMap<String, (Vec<u8>, Vec<AclEntry>)>,
    /// Znode operations, in order (`create /x`, `setAcl /x`, `delete /x`).
    pub zk_ops: Vec<String>,
    /// A started server serves (false: it starts and never syncs).
    pub no_serve_on_start: BTreeSet<UnitId>,
    /// These servers exit right after they start.
    pub exit_on_start: BTreeSet<UnitId>,
    /// What `mntr` says of digest mismatches, by server (0 when not listed).
    pub digest_mismatches: BTreeMap<UnitId, u64>,
    /// Every server start, in order.
    pub started: Vec<UnitId>,
    /// Installing the software fails on these units.
    pub install_fails: BTreeSet<UnitId>,
    /// The ZooKeeper build each unit's charm carries (none: the distribution's package).
    pub offered: BTreeMap<UnitId, String>,
}

impl World {
    fn serving(&self, u: UnitId) -> bool {
        self.servers
            .get(&u)
            .is_some_and(|s| s.running && !s.frozen && !s.silent)
    }

    /// The quorum leader follows the servers: the current one while it serves and a majority of
    /// voters serve; else the lowest serving voter if a majority serves.
    pub fn elect(&mut self) {
        let voters: Vec<UnitId> = self
            .members
            .iter()
            .filter(|(_, m)| m.voting)
            .map(|(u, _)| *u)
            .collect();
        let serving = voters.iter().filter(|u| self.serving(**u)).count();
        if voters.is_empty() || serving * 2 <= voters.len() {
            self.leader = None;
            return;
        }
        if self
            .leader
            .is_some_and(|l| voters.contains(&l) && self.serving(l))
        {
            return;
        }
        self.leader = voters.iter().copied().find(|u| self.serving(*u));
    }

    fn has_quorum(&self) -> bool {
        self.leader.is_some()
    }

    /// Serving as part of the ensemble ("... - broadcast").
    fn broadcasting(&self, u: UnitId) -> bool {
        self.serving(u) && self.has_quorum()
    }

    /// The server process dies (SIGKILL).
    pub fn kill(&mut self, u: UnitId) {
        if let Some(s) = self.servers.get_mut(&u) {
            s.running = false;
        }
        self.elect();
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`).
    pub fn freeze(&mut self, u: UnitId, frozen: bool) {
        if let Some(s) = self.servers.get_mut(&u) {
            s.frozen = frozen;
        }
        self.elect();
    }

    pub fn voters(&self) -> BTreeSet<UnitId> {
        self.members
            .iter()
            .filter(|(_, m)| m.voting)
            .map(|(u, _)| *u)
            .collect()
    }
}

pub type Shared = Rc<RefCell<World>>;

/// The ensemble through the [`World`], recording what it is asked to do.
pub struct FakeEnsemble {
    world: Shared,
}

impl FakeEnsemble {
    pub fn new(world: Shared) -> FakeEnsemble {
        FakeEnsemble { world }
    }

    fn admin_ok(&self) -> Result<(), ChangeError> {
        if self.world.borrow().has_quorum() {
            Ok(())
        } else {
            Err(ChangeError::Transient(Hold::NoQuorumLeader))
        }
    }
}

impl EnsembleIo for FakeEnsemble {
    fn probe(&mut self, address: &str) -> Probe {
        let w = self.world.borrow();
        let Some(u) = unit_at(address) else {
            return Probe::default();
        };
        if !w.broadcasting(u) {
            return Probe::default();
        }
        let mut members = w.members.clone();
        members.entry(u).or_insert(Member {
            address: address.to_string(),
            voting: false,
        });
        let state = if w.leader == Some(u) {
            "leading"
        } else if members[&u].voting {
            "following"
        } else {
            "observing"
        };
        Probe {
            peer_state: Some(format!("{state} - broadcast")),
            members: Some(members),
            version: Some("3.8.0".into()),
            digest_mismatches: Some(w.digest_mismatches.get(&u).copied().unwrap_or(0)),
        }
    }

    fn observe(&mut self, addresses: &BTreeMap<UnitId, String>) -> EnsembleState {
        let w = self.world.borrow();
        let asked: BTreeSet<UnitId> = addresses
            .values()
            .filter_map(|a| unit_at(a))
            .chain(w.members.keys().copied())
            .collect();
        if !w.has_quorum() {
            return EnsembleState::default();
        }
        EnsembleState {
            leader: w.leader,
            members: w.members.clone(),
            version: Some(w.version),
            syncing: w.syncing,
            catching_up: BTreeSet::new(),
            broadcasting: asked.into_iter().filter(|u| w.broadcasting(*u)).collect(),
        }
    }

    fn apply(
        &mut self,
        change: Change,
        address: Option<&str>,
        _known: &BTreeMap<UnitId, String>,
        _super_passwords: &[Secret],
    ) -> Result<(), ChangeError> {
        let mut w = self.world.borrow_mut();
        if let Some(e) = w.refusals.pop_front() {
            return Err(e);
        }
        if !w.has_quorum() {
            return Err(ChangeError::Transient(Hold::NoQuorumLeader));
        }
        match change {
            Change::Add(u) => {
                if !w.broadcasting(u) {
                    return Err(ChangeError::Transient(Hold::MemberNotReady(u)));
                }
                let address = address
                    .map(str::to_string)
                    .unwrap_or_else(|| self::address(u));
                w.members.insert(
                    u,
                    Member {
                        address,
                        voting: true,
                    },
                );
            }
            Change::Remove(u) => {
                w.members.remove(&u);
            }
        }
        w.version += 1;
        w.applied.push(change);
        w.elect();
        Ok(())
    }

    fn acls_of(
        &mut self,
        paths: &[String],
        _admin: &Admin,
    ) -> Result<BTreeMap<String, Option<Vec<AclEntry>>>, ChangeError> {
        self.admin_ok()?;
        let w = self.world.borrow();
        Ok(paths
            .iter()
            .map(|p| (p.clone(), w.znodes.get(p).map(|(_, a)| a.clone())))
            .collect())
    }

    fn tree_acls(
        &mut self,
        skip: &[String],
        _admin: &Admin,
    ) -> Result<Vec<(String, Vec<AclEntry>)>, ChangeError> {
        self.admin_ok()?;
        let w = self.world.borrow();
        Ok(w.znodes
            .iter()
            .filter(|(p, _)| !skip.iter().any(|s| crate::zk::path::is_within(p, s)))
            .map(|(p, (_, a))| (p.clone(), a.clone()))
            .collect())
    }

    fn create_znode(
        &mut self,
        path: &str,
        data: &[u8],
        acls: &[AclEntry],
        parent_acls: &[AclEntry],
        _admin: &Admin,
    ) -> Result<bool, ChangeError> {
        self.admin_ok()?;
        let mut w = self.world.borrow_mut();
        for p in crate::zk::path::ancestors(path) {
            if !w.znodes.contains_key(&p) {
                w.zk_ops.push(format!("create {p}"));
                w.znodes.insert(p, (Vec::new(), parent_acls.to_vec()));
            }
        }
        if w.znodes.contains_key(path) {
            return Ok(false);
        }
        w.zk_ops.push(format!("create {path}"));
        w.znodes
            .insert(path.to_string(), (data.to_vec(), acls.to_vec()));
        Ok(true)
    }

    fn set_acls(
        &mut self,
        path: &str,
        acls: &[AclEntry],
        tree: bool,
        except: &[String],
        _admin: &Admin,
    ) -> Result<usize, ChangeError> {
        self.admin_ok()?;
        let mut w = self.world.borrow_mut();
        let targets: Vec<String> = w
            .znodes
            .keys()
            .filter(|p| {
                p.as_str() == path
                    || (tree
                        && crate::zk::path::is_within(p, path)
                        && !except.iter().any(|e| crate::zk::path::is_within(p, e)))
            })
            .cloned()
            .collect();
        for p in &targets {
            w.zk_ops.push(format!("setAcl {p}"));
            if let Some(n) = w.znodes.get_mut(p) {
                n.1 = acls.to_vec();
            }
        }
        Ok(targets.len())
    }

    fn delete_znode(
        &mut self,
        path: &str,
        recursive: bool,
        _admin: &Admin,
    ) -> Result<(), ChangeError> {
        self.admin_ok()?;
        let mut w = self.world.borrow_mut();
        let doomed: Vec<String> = w
            .znodes
            .keys()
            .filter(|p| p.as_str() == path || (recursive && crate::zk::path::is_within(p, path)))
            .cloned()
            .collect();
        for p in doomed.iter().rev() {
            w.zk_ops.push(format!("delete {p}"));
            w.znodes.remove(p);
        }
        Ok(())
    }

    fn children_data(
        &mut self,
        path: &str,
        _admin: &Admin,
    ) -> Result<Vec<(String, Vec<u8>)>, ChangeError> {
        self.admin_ok()?;
        let w = self.world.borrow();
        let prefix = format!("{}/", path.trim_end_matches('/'));
        Ok(w.znodes
            .iter()
            .filter_map(|(p, (d, _))| {
                let rest = p.strip_prefix(&prefix)?;
                (!rest.contains('/')).then(|| (rest.to_string(), d.clone()))
            })
            .collect())
    }

    fn report(&mut self, addresses: &BTreeMap<UnitId, String>) -> QuorumReport {
        let w = self.world.borrow();
        QuorumReport {
            leader: w.leader.map(|l| format!("server.{}", l + 1)),
            config_version: Some(format!("{:x}", w.version)),
            members: w
                .members
                .iter()
                .map(|(u, m)| MemberReport {
                    server_id: u + 1,
                    unit: Some(*u),
                    address: m.address.clone(),
                    role: if m.voting { "participant" } else { "observer" }.into(),
                    state: if w.broadcasting(*u) {
                        "broadcast".into()
                    } else {
                        "unreachable".into()
                    },
                    reachable: w.broadcasting(*u),
                    ..MemberReport::default()
                })
                .collect(),
            others: addresses
                .keys()
                .filter(|u| !w.members.contains_key(u))
                .map(|u| MemberReport {
                    unit: Some(*u),
                    ..MemberReport::default()
                })
                .collect(),
            ..QuorumReport::default()
        }
    }

    fn wait_broadcast(
        &mut self,
        address: &str,
        _timeout: Duration,
        _alive: &dyn Fn() -> bool,
    ) -> bool {
        self.probe(address).broadcasting()
    }
}

/// One unit's server through the [`World`]; its files are real, in a directory of its own.
pub struct FakeWorkload {
    unit: UnitId,
    world: Shared,
    paths: Paths,
    pub flags: RefCell<Vec<String>>,
}

impl FakeWorkload {
    pub fn new(unit: UnitId, world: Shared, dir: &Path) -> FakeWorkload {
        FakeWorkload {
            unit,
            world,
            paths: Paths {
                conf_dir: dir.join("conf"),
                data_dir: dir.join("data"),
                data_log_dir: dir.join("data-log"),
                log_dir: dir.join("logs"),
            },
            flags: RefCell::new(Vec::new()),
        }
    }
}

impl Workload for FakeWorkload {
    fn flavor(&self) -> Flavor {
        Flavor::Local
    }

    fn paths(&self) -> &Paths {
        &self.paths
    }

    fn install(&self) -> Result<(), WorkloadError> {
        if self.world.borrow().install_fails.contains(&self.unit) {
            return Err(WorkloadError::Missing {
                what: "/usr/bin/java".into(),
                hint: "apt-get install -y default-jre-headless".into(),
            });
        }
        for d in [
            &self.paths.conf_dir,
            &self.paths.data_dir,
            &self.paths.data_log_dir,
            &self.paths.log_dir,
        ] {
            std::fs::create_dir_all(d).map_err(crate::workload::io_err(d))?;
        }
        Ok(())
    }

    fn set_jvm_flags(&self, flags: &[String]) -> Result<bool, WorkloadError> {
        let changed = *self.flags.borrow() != flags;
        *self.flags.borrow_mut() = flags.to_vec();
        Ok(changed)
    }

    /// Starts the server: one that finds itself the only participant of its initial
    /// configuration while no ensemble exists bootstraps one.
    fn start(&self) -> Result<(), WorkloadError> {
        let dynamic = std::fs::read_to_string(self.paths.dynamic()).unwrap_or_default();
        let participants: Vec<&str> = dynamic
            .lines()
            .filter(|l| l.starts_with("server.") && l.contains(":participant"))
            .collect();
        let mut w = self.world.borrow_mut();
        let silent = w.no_serve_on_start.contains(&self.unit);
        let s = w.servers.entry(self.unit).or_default();
        s.silent = silent;
        s.running = true;
        s.frozen = false;
        s.starts += 1;
        s.build = s.next_build.clone();
        w.started.push(self.unit);
        if w.exit_on_start.contains(&self.unit) {
            if let Some(s) = w.servers.get_mut(&self.unit) {
                s.running = false;
            }
            return Ok(());
        }
        if w.members.is_empty() && participants.len() == 1 {
            w.members.insert(
                self.unit,
                Member {
                    address: address(self.unit),
                    voting: true,
                },
            );
            w.version = 0x1_0000_0000;
        }
        w.elect();
        Ok(())
    }

    fn stop(&self) -> Result<(), WorkloadError> {
        let mut w = self.world.borrow_mut();
        if let Some(s) = w.servers.get_mut(&self.unit) {
            s.running = false;
        }
        w.elect();
        Ok(())
    }

    fn alive(&self) -> bool {
        self.world
            .borrow()
            .servers
            .get(&self.unit)
            .is_some_and(|s| s.running)
    }

    fn offered_build(&self) -> String {
        self.world
            .borrow()
            .offered
            .get(&self.unit)
            .cloned()
            .unwrap_or_default()
    }

    fn build_available(&self, build: &str) -> bool {
        build.is_empty()
            || build == self.offered_build()
            || self
                .world
                .borrow()
                .servers
                .get(&self.unit)
                .is_some_and(|s| s.installed.contains(build))
    }

    fn set_build(&self, build: &str) -> Result<bool, WorkloadError> {
        if !self.build_available(build) {
            return Err(WorkloadError::Missing {
                what: format!("ZooKeeper build {build}"),
                hint: "not carried by this charm".into(),
            });
        }
        let mut w = self.world.borrow_mut();
        let s = w.servers.entry(self.unit).or_default();
        s.installed.insert(build.to_string());
        let changed = s.next_build != build;
        s.next_build = build.to_string();
        Ok(changed)
    }

    fn started_build(&self) -> Option<String> {
        self.world
            .borrow()
            .servers
            .get(&self.unit)
            .filter(|s| s.running)
            .map(|s| s.build.clone())
    }
}

/// One unit of the model.
pub struct Unit {
    pub juju: FakeJuju,
    pub charm_dir: PathBuf,
    pub workload: FakeWorkload,
    /// Hooks Juju owes this unit (relation id, the remote unit or app whose bag changed).
    pub pending: BTreeSet<(u32, String)>,
}

/// One hook that ran.
#[derive(Clone, Debug)]
pub struct Ran {
    pub unit: UnitId,
    pub event: Event,
    pub result: Result<Summary, String>,
    /// Tool calls it made.
    pub calls: Vec<String>,
}

impl Ran {
    pub fn outcome(&self) -> Option<&Outcome> {
        self.result
            .as_ref()
            .ok()?
            .ran
            .iter()
            .rev()
            .map(|(_, o, _)| o)
            .next()
    }

    pub fn deferred(&self) -> Option<&str> {
        match self.outcome()? {
            Outcome::Defer { reason } => Some(reason),
            _ => None,
        }
    }
}

pub struct Model {
    /// [`Model::settle`] runs this unit's owed hooks before the others'.
    pub first: Option<UnitId>,
    /// A unit's owed hooks run `restart` relation first (else `cluster` first).
    pub restart_hooks_first: bool,
    pub world: Shared,
    pub units: BTreeMap<UnitId, Unit>,
    pub history: Vec<Ran>,
    pub now: u64,
    _tmp: tempfile::TempDir,
}

/// The charm's configuration defaults, as `config-get` gives them.
pub fn default_config() -> serde_json::Map<String, serde_json::Value> {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(include_str!("../../charm/config.yaml")).expect("config.yaml");
    let mut out = serde_json::Map::new();
    if let Some(opts) = yaml.get("options").and_then(|o| o.as_mapping()) {
        for (k, v) in opts {
            if let (Some(k), Some(d)) = (k.as_str(), v.get("default")) {
                out.insert(
                    k.to_string(),
                    serde_json::to_value(d).expect("a yaml default is json"),
                );
            }
        }
    }
    out
}

pub fn unit_name(u: UnitId) -> String {
    format!("{APP}/{u}")
}

impl Model {
    /// `n` units of one application, related with each other (peer and restart relations),
    /// unit 0 the Juju leader; no hook has run.
    pub fn new(n: u32) -> Model {
        let tmp = tempfile::tempdir().expect("tempdir");
        let world: Shared = Rc::default();
        let mut m = Model {
            first: None,
            restart_hooks_first: false,
            world,
            units: BTreeMap::new(),
            history: Vec::new(),
            now: 1_700_000_000,
            _tmp: tmp,
        };
        for u in 0..n {
            m.add_unit_quietly(u);
        }
        m
    }

    /// A unit's directory (its workload files are under `conf/`, `data/`, ...).
    pub fn unit_dir(&self, u: UnitId) -> std::path::PathBuf {
        self._tmp.path().join(format!("unit-{u}"))
    }

    fn add_unit_quietly(&mut self, u: UnitId) {
        let dir = self.unit_dir(u);
        let charm_dir = dir.join("charm");
        // A fresh machine: nothing of an earlier unit of this number.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&charm_dir).expect("charm dir");
        let mut juju = FakeJuju::unit(&unit_name(u)).leader(self.units.is_empty() && u == 0);
        juju.address = address(u);
        juju.config = default_config();
        let own = [
            ("ingress-address", address(u)),
            ("private-address", address(u)),
        ];
        let own: Vec<(&str, &str)> = own.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for (id, endpoint) in [(PEER, "cluster"), (RESTART, "restart")] {
            let mut rel = FakeRelation::new(endpoint, APP).with_bag(&unit_name(u), &own);
            // Everything the others already have.
            if let Some(other) = self.units.values().next() {
                if let Some(r) = other.juju.relations.get(&id) {
                    for (owner, bag) in &r.bags {
                        rel.bags.insert(owner.clone(), bag.clone());
                    }
                    for o in self.units.keys() {
                        if let Some(n) = UnitName::parse(&unit_name(*o)) {
                            if !rel.units.contains(&n) {
                                rel.units.push(n);
                            }
                        }
                    }
                }
            }
            juju.relations.insert(id, rel);
        }
        if let Some(other) = self.units.values().next() {
            juju.secrets = other.juju.secrets.clone();
            for (id, r) in &other.juju.relations {
                if *id >= 10 {
                    let mut r = r.clone();
                    r.bags
                        .retain(|owner, _| !owner.starts_with(&format!("{APP}/")));
                    juju.relations.insert(*id, r);
                }
            }
        }
        let name = UnitName::parse(&unit_name(u)).expect("unit name");
        for other in self.units.values_mut() {
            for id in [PEER, RESTART] {
                if let Some(r) = other.juju.relations.get_mut(&id) {
                    r.units.push(name.clone());
                    r.bags.insert(
                        unit_name(u),
                        own.iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    );
                }
            }
        }
        let workload = FakeWorkload::new(u, self.world.clone(), &dir.join("workload"));
        self.units.insert(
            u,
            Unit {
                juju,
                charm_dir,
                workload,
                pending: BTreeSet::new(),
            },
        );
        self.set_goal();
    }

    fn set_goal(&mut self) {
        let goal: BTreeMap<String, String> = self
            .units
            .keys()
            .map(|u| (unit_name(*u), "active".to_string()))
            .collect();
        for unit in self.units.values_mut() {
            unit.juju.goal = goal.clone();
        }
    }

    /// `n` units deployed and settled: every server a voter.
    pub fn deployed(n: u32) -> Model {
        let mut m = Model::new(n);
        m.deploy_hooks();
        m.settle();
        m
    }

    /// The hooks Juju runs on a new unit, for every unit.
    pub fn deploy_hooks(&mut self) {
        let units: Vec<UnitId> = self.units.keys().copied().collect();
        for u in units {
            self.install_hooks(u);
        }
    }

    fn install_hooks(&mut self, u: UnitId) {
        self.run(u, Event::Install);
        for (id, ep) in [(PEER, "cluster"), (RESTART, "restart")] {
            self.run(u, relation_event(ep, RelationPhase::Created, id, None));
        }
        if self.unit(u).juju.leader {
            self.run(u, Event::LeaderElected);
        } else {
            self.run(u, Event::LeaderSettingsChanged);
        }
        self.run(u, Event::ConfigChanged);
        self.run(u, Event::Start);
    }

    /// Adds a unit (`juju add-unit`) and runs its first hooks.
    pub fn add_unit(&mut self) -> UnitId {
        let u = self.units.keys().max().map_or(0, |m| m + 1);
        self.add_unit_as(u)
    }

    /// Adds unit `u` (a number Juju would not reuse: for states only a lost disk makes).
    pub fn add_unit_as(&mut self, u: UnitId) -> UnitId {
        self.add_unit_quietly(u);
        // The others hear of it.
        for (o, unit) in self.units.iter_mut() {
            if *o != u {
                unit.pending.insert((PEER, unit_name(u)));
            }
        }
        self.install_hooks(u);
        u
    }

    pub fn unit(&self, u: UnitId) -> &Unit {
        &self.units[&u]
    }

    pub fn unit_mut(&mut self, u: UnitId) -> &mut Unit {
        self.units.get_mut(&u).expect("unit")
    }

    pub fn leader(&self) -> UnitId {
        self.units
            .iter()
            .find(|(_, x)| x.juju.leader)
            .map(|(u, _)| *u)
            .expect("a leader")
    }

    /// Moves Juju leadership to `u` (no hook runs: see [`Model::elect_and_run`]).
    pub fn set_leader(&mut self, u: UnitId) {
        for (o, unit) in self.units.iter_mut() {
            unit.juju.leader = *o == u;
        }
    }

    /// Runs one hook of unit `u` and commits it like Juju.
    pub fn run(&mut self, u: UnitId, event: Event) -> Ran {
        let unit = self.units.get_mut(&u).expect("unit");
        let ctx = Context {
            unit: UnitName::parse(&unit_name(u)).expect("unit name"),
            app: APP.into(),
            model_name: "test".into(),
            model_uuid: "00000000-0000-4000-8000-000000000000".into(),
            charm_dir: unit.charm_dir.clone(),
            juju_version: "3.6.0".into(),
            dispatch_path: format!("hooks/{}", event.hook_name()),
            event: event.clone(),
        };
        let before = unit.juju.clone();
        let mut start = unit.juju.clone();
        start.calls.clear();
        let tools = FakeTools::new(start);
        let mut ensemble = FakeEnsemble::new(self.world.clone());
        let opts = Options {
            start_wait: Duration::from_millis(1),
            now: self.now,
        };
        let queue = charm_engine::load_queue(&unit.charm_dir);
        let result = {
            let cached = super::cached_tools(&tools, &ctx);
            let mut charm = ZooKeeperCharm::new(&ctx, &cached, &unit.workload, &mut ensemble, opts);
            charm_engine::dispatch(&mut charm, &event, queue, self.now)
        };
        let after = tools.into_juju();
        let calls = after.calls.clone();
        let result = result.map_err(|e| e.to_string());
        if result.is_ok() {
            unit.juju = after;
            unit.juju.fail_call = None;
            self.commit(u, &before);
        } else {
            let mut kept = before;
            kept.unit_status = after.unit_status;
            kept.app_status = after.app_status;
            kept.unit_statuses = after.unit_statuses;
            kept.fail_call = None;
            kept.logs = after.logs;
            unit.juju = kept;
        }
        self.now += 1;
        let ran = Ran {
            unit: u,
            event,
            result,
            calls,
        };
        self.history.push(ran.clone());
        ran
    }

    /// What unit `u` committed reaches the others' views; changed bags queue hooks for them.
    fn commit(&mut self, u: UnitId, before: &FakeJuju) {
        let me = unit_name(u);
        let after = self.units[&u].juju.clone();
        for (id, rel) in &after.relations {
            for owner in [me.clone(), APP.to_string()] {
                if owner == APP && !after.leader {
                    continue;
                }
                let Some(bag) = rel.bags.get(&owner) else {
                    continue;
                };
                let old = before.relations.get(id).and_then(|r| r.bags.get(&owner));
                if old == Some(bag) {
                    continue;
                }
                for (o, other) in self.units.iter_mut() {
                    if *o == u {
                        continue;
                    }
                    if let Some(r) = other.juju.relations.get_mut(id) {
                        r.bags.insert(owner.clone(), bag.clone());
                        if *id < 10 {
                            other.pending.insert((*id, owner.clone()));
                        }
                    }
                }
            }
        }
        if after.leader {
            for (o, other) in self.units.iter_mut() {
                if *o == u {
                    continue;
                }
                let mut secrets: BTreeMap<String, FakeSecret> = after.secrets.clone();
                for (k, s) in secrets.iter_mut() {
                    if let Some(old) = other.juju.secrets.get(k) {
                        s.tracked = old.tracked;
                    }
                }
                other.juju.secrets = secrets;
            }
        }
    }

    /// Runs the hooks Juju owes, then the deferred queues, until nothing is left. Panics (with
    /// the history) if it does not end.
    pub fn settle(&mut self) {
        for _ in 0..400 {
            let pick = |x: &Unit| {
                if self.restart_hooks_first {
                    x.pending.iter().next_back().cloned()
                } else {
                    x.pending.iter().next().cloned()
                }
            };
            let first = self
                .first
                .and_then(|f| self.units.get(&f).map(|x| (f, x)))
                .and_then(|(f, x)| pick(x).map(|p| (f, p)));
            if let Some((u, (id, owner))) = first.or_else(|| {
                self.units
                    .iter()
                    .find_map(|(u, x)| pick(x).map(|p| (*u, p)))
            }) {
                self.unit_mut(u).pending.remove(&(id, owner.clone()));
                let endpoint = self.unit(u).juju.relations[&id].endpoint.clone();
                let remote = UnitName::parse(&owner);
                let ev = Event::Relation {
                    endpoint,
                    phase: RelationPhase::Changed,
                    id: RelationId(id),
                    remote_app: Some(APP.into()),
                    remote_unit: remote,
                    departing_unit: None,
                };
                self.run(u, ev);
                continue;
            }
            let deferred: Vec<UnitId> = self
                .units
                .iter()
                .filter(|(_, x)| !queue_of(&x.charm_dir).is_empty())
                .map(|(u, _)| *u)
                .collect();
            if deferred.is_empty() {
                return;
            }
            let before = self.fingerprint();
            for u in deferred {
                self.run(u, Event::UpdateStatus);
            }
            if self.fingerprint() == before && self.units.values().all(|x| x.pending.is_empty()) {
                // Deferred for a reason nothing here will change.
                return;
            }
        }
        panic!("the model did not settle:\n{}", self.describe());
    }

    fn fingerprint(&self) -> String {
        let w = self.world.borrow();
        format!(
            "{:?}{:?}{:?}{:?}",
            w.members,
            w.leader,
            w.servers,
            self.units
                .values()
                .map(|x| (&x.juju.relations, queue_of(&x.charm_dir)))
                .collect::<Vec<_>>()
        )
    }

    pub fn describe(&self) -> String {
        let mut s = String::new();
        for r in self.history.iter().rev().take(40).rev() {
            s.push_str(&format!(
                "  {}: {} -> {:?}\n",
                unit_name(r.unit),
                r.event.describe(),
                r.result.as_ref().map(|x| x
                    .ran
                    .iter()
                    .map(|(_, o, _)| o.clone())
                    .collect::<Vec<_>>())
            ));
        }
        s.push_str(&format!("world: {:?}\n", self.world.borrow()));
        s
    }

    pub fn status(&self, u: UnitId) -> Status {
        self.unit(u)
            .juju
            .unit_status
            .clone()
            .unwrap_or_else(|| Status::new(charm_engine::juju::tools::StatusKind::Unknown, ""))
    }

    /// Every unit status message `u` showed, in order.
    pub fn shown(&self, u: UnitId) -> Vec<String> {
        self.unit(u)
            .juju
            .unit_statuses
            .iter()
            .map(|s| s.message.clone())
            .collect()
    }

    /// Runs `name` on unit `u` with `params`; the action's results, or its failure message.
    pub fn act(
        &mut self,
        u: UnitId,
        name: &str,
        params: &[(&str, serde_json::Value)],
    ) -> Result<Databag, String> {
        let unit = self.unit_mut(u);
        unit.juju.action_params = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        unit.juju.action_results.clear();
        unit.juju.action_failed = None;
        self.run(u, action(name));
        let j = &self.unit(u).juju;
        match &j.action_failed {
            Some(f) => Err(f.clone()),
            None => Ok(j.action_results.clone()),
        }
    }

    pub fn app_status(&self) -> Option<Status> {
        self.unit(self.leader()).juju.app_status.clone()
    }

    pub fn peer_app(&self) -> Databag {
        self.bag(self.leader(), PEER, APP)
    }

    pub fn bag(&self, u: UnitId, rel: u32, owner: &str) -> Databag {
        self.unit(u)
            .juju
            .relations
            .get(&rel)
            .and_then(|r| r.bags.get(owner))
            .cloned()
            .unwrap_or_default()
    }

    pub fn voters(&self) -> BTreeSet<UnitId> {
        self.world.borrow().voters()
    }

    pub fn logs(&self, u: UnitId, level: LogLevel) -> Vec<String> {
        self.unit(u)
            .juju
            .logged(level)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Changes the configuration every unit sees; no hook runs.
    pub fn set_config(&mut self, key: &str, value: serde_json::Value) {
        for x in self.units.values_mut() {
            x.juju.config.insert(key.into(), value.clone());
        }
    }

    /// Changes the configuration on every unit and runs config-changed everywhere.
    pub fn config(&mut self, key: &str, value: serde_json::Value) {
        self.set_config(key, value);
        let units: Vec<UnitId> = self.units.keys().copied().collect();
        for u in units {
            self.run(u, Event::ConfigChanged);
        }
    }

    /// A client application `app` related on relation `id` (>= 10) with one unit, its
    /// application bag `bag`; runs -created/-joined/-changed on every unit.
    pub fn relate_client(&mut self, id: u32, app: &str, bag: &[(&str, &str)]) {
        self.add_client_quietly(id, app, bag);
        let remote = format!("{app}/0");
        let units: Vec<UnitId> = self.units.keys().copied().collect();
        for u in units {
            for phase in [RelationPhase::Created, RelationPhase::Joined] {
                self.run(u, client_event(phase, id, app, Some(&remote)));
            }
            self.run(u, client_event(RelationPhase::Changed, id, app, None));
        }
    }

    /// A client relation that exists on every unit with its application bag, no hook run (a
    /// relation made before the charm was upgraded).
    pub fn add_client_quietly(&mut self, id: u32, app: &str, bag: &[(&str, &str)]) {
        assert!(id >= 10);
        let remote = format!("{app}/0");
        for x in self.units.values_mut() {
            let rel = FakeRelation::new(super::clients::ENDPOINT, app)
                .with_unit(&remote, &[("ingress-address", "10.1.0.1")])
                .with_bag(app, bag);
            x.juju.relations.insert(id, rel);
        }
    }

    /// The client rewrites its application bag; every unit runs -changed.
    pub fn client_writes(&mut self, id: u32, bag: &[(&str, &str)]) {
        let mut app = String::new();
        for x in self.units.values_mut() {
            if let Some(r) = x.juju.relations.get_mut(&id) {
                app = r.remote_app.clone();
                r.bags
                    .insert(app.clone(), charm_engine::juju::fake::bag_of(bag));
            }
        }
        let units: Vec<UnitId> = self.units.keys().copied().collect();
        for u in units {
            self.run(u, client_event(RelationPhase::Changed, id, &app, None));
        }
    }

    /// The client relation goes away: -departed and -broken on every unit.
    pub fn unrelate_client(&mut self, id: u32) {
        let app = self.unit(0).juju.relations[&id].remote_app.clone();
        let remote = format!("{app}/0");
        let units: Vec<UnitId> = self.units.keys().copied().collect();
        for u in &units {
            let mut ev = client_event(RelationPhase::Departed, id, &app, Some(&remote));
            if let Event::Relation { departing_unit, .. } = &mut ev {
                *departing_unit = UnitName::parse(&remote);
            }
            self.run(*u, ev);
        }
        for u in &units {
            self.run(*u, client_event(RelationPhase::Broken, id, &app, None));
            self.unit_mut(*u).juju.relations.remove(&id);
        }
    }

    /// What the charm published to client relation `id`.
    pub fn client_reply(&self, id: u32) -> Databag {
        self.bag(self.leader(), id, APP)
    }

    /// The content of the secret `uri` (latest revision), as the leader sees it.
    pub fn secret(&self, uri: &str) -> Option<Databag> {
        let bare = uri.rsplit(':').next().unwrap_or(uri);
        self.unit(self.leader())
            .juju
            .secrets
            .iter()
            .find(|(k, _)| k.rsplit(':').next() == Some(bare))
            .and_then(|(_, s)| s.revisions.last().cloned())
    }

    /// Unit `observer` sees `gone` depart from the peer relations (only it: the others' hooks
    /// have not run yet).
    pub fn depart(&mut self, observer: UnitId, gone: UnitId) {
        let name = UnitName::parse(&unit_name(gone)).expect("unit name");
        for id in [PEER, RESTART] {
            let ep = if id == PEER { "cluster" } else { "restart" };
            let mut ev = relation_event(ep, RelationPhase::Departed, id, Some(&name));
            if let Event::Relation { departing_unit, .. } = &mut ev {
                *departing_unit = Some(name.clone());
            }
            if let Some(r) = self.unit_mut(observer).juju.relations.get_mut(&id) {
                r.units.retain(|n| *n != name);
                r.bags.remove(&unit_name(gone));
            }
            self.run(observer, ev);
        }
    }

    /// Unit `u` goes away (`juju remove-unit`): the others see it depart, it runs its own
    /// departure, stop and remove.
    pub fn remove_unit(&mut self, u: UnitId) {
        let name = UnitName::parse(&unit_name(u)).expect("unit name");
        for x in self.units.values_mut() {
            x.juju.goal.insert(unit_name(u), "dying".into());
        }
        let others: Vec<UnitId> = self.units.keys().copied().filter(|o| *o != u).collect();
        for id in [PEER, RESTART] {
            let ep = if id == PEER { "cluster" } else { "restart" };
            let mut ev = relation_event(ep, RelationPhase::Departed, id, Some(&name));
            if let Event::Relation { departing_unit, .. } = &mut ev {
                *departing_unit = Some(name.clone());
            }
            for o in &others {
                if let Some(r) = self.unit_mut(*o).juju.relations.get_mut(&id) {
                    r.units.retain(|n| *n != name);
                    r.bags.remove(&unit_name(u));
                }
                self.run(*o, ev.clone());
            }
            // The dying unit sees itself depart.
            self.run(u, ev);
        }
        self.run(u, Event::Stop);
        self.run(u, Event::Remove);
        self.units.remove(&u);
        self.set_goal();
    }
}

pub fn queue_of(charm_dir: &Path) -> Vec<(Event, String)> {
    charm_engine::load_queue(charm_dir)
        .entries()
        .iter()
        .map(|e| (e.event.clone(), e.reason.clone()))
        .collect()
}

pub fn relation_event(
    endpoint: &str,
    phase: RelationPhase,
    id: u32,
    remote: Option<&UnitName>,
) -> Event {
    Event::Relation {
        endpoint: endpoint.into(),
        phase,
        id: RelationId(id),
        remote_app: Some(APP.into()),
        remote_unit: remote.cloned(),
        departing_unit: None,
    }
}

pub fn client_event(phase: RelationPhase, id: u32, app: &str, remote: Option<&str>) -> Event {
    Event::Relation {
        endpoint: super::clients::ENDPOINT.into(),
        phase,
        id: RelationId(id),
        remote_app: Some(app.into()),
        remote_unit: remote.and_then(UnitName::parse),
        departing_unit: None,
    }
}

pub fn action(name: &str) -> Event {
    Event::Action {
        name: name.into(),
        uuid: "1".into(),
    }
}
