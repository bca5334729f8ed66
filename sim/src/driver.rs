//! The event driver: a small uniter per unit. For every unit it compares what the unit has seen
//! (its `Local` state) with the world and picks the next hook with Juju's priorities (reference
//! §4) and the per-relation chooser (§3.4); coalescing falls out of comparing versions. One
//! hook runs at a time in the whole model; which unit goes next is round-robin by default, or
//! drawn from a seeded RNG.
//!
//! Each hook is a transaction: see [`crate::tools::ctx`]. Committing a hook also advances the
//! unit's local state (installed, started, members seen, ...).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::charm;
use crate::error::{Result, SimError};
use crate::model::{app_of, parse_unit, HookError, HookKind, HookSpec, Life, Paths, Status, World};
use crate::procs;
use crate::runner;
use crate::timeline;
use crate::tools::ctx::{ActionCtx, HookCtx};
use crate::tools::server::{lock, Core, Shared};
use crate::util::Rng;

#[derive(Debug, Clone)]
pub struct Options {
    pub hook_timeout: Duration,
    pub seed: Option<u64>,
    /// Safety net against charms that keep triggering each other forever.
    pub max_hooks: usize,
}

/// The next thing a unit's agent would do.
#[derive(Debug, Clone, PartialEq)]
enum Work {
    Hook(HookSpec),
    Action(u64),
    /// Drop local leadership (no hook: Juju 3 never fires leader-deposed).
    Resign,
    /// A dying unit is done with its peer relation (peers get no -broken).
    LeavePeer(u64),
    /// Nothing left for a dying unit: remove it from the model.
    Bury,
}

pub struct Driver {
    pub shared: Shared,
    pub paths: Paths,
    pub opts: Options,
    rng: Option<Rng>,
    /// Hooks and actions run by this driver.
    pub hooks_run: usize,
    /// Things the CLI should tell the operator (hook failures, timeouts).
    pub notes: Vec<String>,
}

/// Effective config as the text config-changed compares.
pub fn config_text(world: &World, app: &str) -> String {
    world
        .apps
        .get(app)
        .map(|a| serde_json::to_string(&a.effective_config()).unwrap_or_default())
        .unwrap_or_default()
}

/// Gives every application without a (living) leader a new one: the lowest-numbered alive unit,
/// or a seeded choice. The previous leader keeps the lease until it is removed.
pub fn ensure_leaders(world: &mut World, rng: &mut Option<Rng>) {
    for app in world.apps.values_mut() {
        let current_ok = app
            .leader
            .as_ref()
            .and_then(|l| parse_unit(l))
            .is_some_and(|(_, n)| app.units.contains_key(&n));
        if current_ok {
            continue;
        }
        let alive: Vec<String> = app
            .units
            .values()
            .filter(|u| u.life == Life::Alive)
            .map(|u| u.name.clone())
            .collect();
        let had = app.leader.is_some();
        app.leader = match (alive.is_empty(), rng.as_mut()) {
            (true, _) => None,
            (false, Some(r)) => Some(alive[r.below(alive.len())].clone()),
            (false, None) => Some(alive[0].clone()),
        };
        if had || app.leader.is_some() {
            app.leader_settings_version += 1;
        }
    }
}

fn ordered(mut ids: Vec<u64>, rng: &mut Option<Rng>) -> Vec<u64> {
    ids.sort_unstable();
    if let Some(r) = rng.as_mut() {
        r.shuffle(&mut ids);
    }
    ids
}

fn unit_bag_version(world: &World, rel: u64, unit: &str) -> u64 {
    world
        .relations
        .get(&rel)
        .and_then(|r| r.unit_bags.get(unit))
        .map(|s| s.version)
        .unwrap_or(0)
}

/// Relation hooks owed by `unit` (reference §3.4), non-peer relations first, then peers.
fn relation_work(world: &World, unit: &str, rng: &mut Option<Rng>) -> Option<Work> {
    let u = world.unit(unit)?;
    let app = app_of(unit);
    let dying = u.life != Life::Alive;
    let ids: Vec<u64> = u.local.relations.keys().copied().collect();
    let (mut peers, mut others): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    for id in ids {
        match world.relations.get(&id) {
            Some(r) if r.is_peer() => peers.push(id),
            _ => others.push(id),
        }
    }
    let mut all = ordered(others, rng);
    all.extend(ordered(peers, rng));
    for id in all {
        let lr = &u.local.relations[&id];
        let Some(rel) = world.relations.get(&id) else {
            // The relation vanished under us: nothing can be delivered any more.
            return Some(Work::LeavePeer(id));
        };
        let Some(end) = rel.end(app) else { continue };
        let remote_app = rel.remote_app(app).unwrap_or_default().to_string();
        let spec = |kind: HookKind| HookSpec {
            kind,
            relation: Some(id),
            endpoint: Some(end.endpoint.clone()),
            remote_app: Some(remote_app.clone()),
            ..HookSpec::simple(kind)
        };
        let remote = world.remote_members(rel, unit);
        // 1. -changed right after -joined.
        if let Some(m) = &lr.changed_pending {
            return Some(Work::Hook(HookSpec {
                remote_unit: Some(m.clone()),
                version: unit_bag_version(world, id, m),
                ..spec(HookKind::RelationChanged)
            }));
        }
        // 2. -departed for members gone on the remote side (sorted).
        if let Some(m) = lr.members.keys().find(|m| !remote.contains(m)) {
            return Some(Work::Hook(HookSpec {
                remote_unit: Some(m.clone()),
                departing: Some(if dying { unit.to_string() } else { m.clone() }),
                ..spec(HookKind::RelationDeparted)
            }));
        }
        // 3. -broken when the relation or the unit is dying (never for peers).
        if rel.life != Life::Alive || dying {
            if rel.is_peer() {
                return Some(Work::LeavePeer(id));
            }
            return Some(Work::Hook(spec(HookKind::RelationBroken)));
        }
        // 4. application-bag -changed (not for the leader of a peer relation, not at version 0).
        if !(rel.is_peer() && world.is_leader(unit)) {
            let v = rel
                .app_bags
                .get(&remote_app)
                .map(|s| s.version)
                .unwrap_or(0);
            if v > 0 && v != lr.app_version {
                return Some(Work::Hook(HookSpec {
                    remote_unit: None,
                    version: v,
                    ..spec(HookKind::RelationChanged)
                }));
            }
        }
        // 5. -joined for new members (sorted).
        if let Some(m) = remote.iter().find(|m| !lr.members.contains_key(*m)) {
            return Some(Work::Hook(HookSpec {
                remote_unit: Some(m.clone()),
                version: unit_bag_version(world, id, m),
                ..spec(HookKind::RelationJoined)
            }));
        }
        // 6. -changed for members whose settings version moved (sorted).
        for m in &remote {
            let v = unit_bag_version(world, id, m);
            if lr.members.get(m) != Some(&v) {
                return Some(Work::Hook(HookSpec {
                    remote_unit: Some(m.clone()),
                    version: v,
                    ..spec(HookKind::RelationChanged)
                }));
            }
        }
    }
    None
}

/// The unit's next work, by the uniter's priorities (reference §4).
fn next_work(world: &World, unit: &str, rng: &mut Option<Rng>) -> Option<Work> {
    let u = world.unit(unit)?;
    let app = world.apps.get(app_of(unit))?;
    if app.stub {
        return None;
    }
    let l = &u.local;
    let dying = u.life != Life::Alive;
    let leader = world.is_leader(unit);
    if l.leader && (!leader || dying) {
        return Some(Work::Resign);
    }
    let settled = l.error.is_none() && l.queued.is_none();
    if l.installed && !dying && settled {
        // 3. relation-created for relations the unit has not entered yet.
        let fresh: Vec<u64> = world
            .relations
            .values()
            .filter(|r| r.life == Life::Alive && r.involves(&app.name))
            .filter(|r| !l.relations.contains_key(&r.id))
            .map(|r| r.id)
            .collect();
        if let Some(id) = ordered(fresh, rng).first() {
            let rel = &world.relations[id];
            let end = rel.end(&app.name)?;
            return Some(Work::Hook(HookSpec {
                relation: Some(*id),
                endpoint: Some(end.endpoint.clone()),
                remote_app: rel.remote_app(&app.name).map(str::to_string),
                ..HookSpec::simple(HookKind::RelationCreated)
            }));
        }
        // 4. leadership.
        if leader && !l.leader {
            return Some(Work::Hook(HookSpec::simple(HookKind::LeaderElected)));
        }
        if !l.leader && l.leader_settings_version != app.leader_settings_version {
            return Some(Work::Hook(HookSpec {
                version: app.leader_settings_version,
                ..HookSpec::simple(HookKind::LeaderSettingsChanged)
            }));
        }
        // 6. secrets.
        if let Some(x) = l.secret_changed.iter().next() {
            return Some(Work::Hook(HookSpec {
                id: Some(x.clone()),
                ..HookSpec::simple(HookKind::SecretChanged)
            }));
        }
    }
    // 7. actions: when the agent is idle (installed, nothing queued) and also while a hook
    // waits in error (even a failed install), as Juju's actions resolver does.
    if l.error.is_some() || (l.installed && l.queued.is_none()) {
        if let Some(a) = world
            .actions
            .values()
            .find(|a| a.unit == unit && a.status == "pending")
        {
            return Some(Work::Action(a.id));
        }
    }
    // 9. storage.
    if l.error.is_none() {
        for s in &u.storage {
            let kind = match (dying, s.attached) {
                (false, false) => HookKind::StorageAttached,
                (true, true) => HookKind::StorageDetaching,
                _ => continue,
            };
            return Some(Work::Hook(HookSpec {
                endpoint: Some(s.name.clone()),
                id: Some(s.id.clone()),
                ..HookSpec::simple(kind)
            }));
        }
    }
    // 10. a failed hook waits for retry.
    if let Some(e) = &l.error {
        return e.retry.then(|| Work::Hook(e.hook.clone()));
    }
    // 11. a queued hook.
    if let Some(q) = &l.queued {
        return Some(Work::Hook(q.clone()));
    }
    if dying {
        if let Some(w) = relation_work(world, unit, rng) {
            return Some(w);
        }
        if l.started {
            return Some(Work::Hook(HookSpec::simple(HookKind::Stop)));
        }
        if l.installed {
            return Some(Work::Hook(HookSpec::simple(HookKind::Remove)));
        }
        return Some(Work::Bury);
    }
    // 12. install.
    if !l.installed {
        return Some(Work::Hook(HookSpec::simple(HookKind::Install)));
    }
    // 14. config-changed when the config changed (always once after install).
    let cfg = config_text(world, &app.name);
    if l.config_seen.as_deref() != Some(cfg.as_str()) {
        return Some(Work::Hook(HookSpec {
            config: Some(cfg),
            ..HookSpec::simple(HookKind::ConfigChanged)
        }));
    }
    // 15. relations.
    if let Some(w) = relation_work(world, unit, rng) {
        return Some(w);
    }
    // 16. update-status.
    if l.update_status_pending && l.started {
        return Some(Work::Hook(HookSpec::simple(HookKind::UpdateStatus)));
    }
    None
}

/// Removes dying applications without units, then relations nobody holds any more.
pub fn gc(world: &mut World) {
    let gone: Vec<String> = world
        .apps
        .values()
        .filter(|a| a.life == Life::Dying && a.units.is_empty())
        .map(|a| a.name.clone())
        .collect();
    for app in gone {
        world.apps.remove(&app);
        world.secrets.retain(|_, s| s.owner.app() != app);
        for r in world.relations.values_mut() {
            if r.involves(&app) {
                r.life = Life::Dying;
            }
        }
    }
    let held: std::collections::BTreeSet<u64> = world
        .apps
        .values()
        .flat_map(|a| a.units.values())
        .flat_map(|u| u.local.relations.keys().copied())
        .collect();
    world
        .relations
        .retain(|id, r| r.life == Life::Alive || held.contains(id));
}

/// Takes a unit out of the model once it is dead: its workload processes are stopped, the
/// leadership passes on, relations it held are cleaned up.
pub fn bury(world: &mut World, paths: &Paths, unit: &str) -> Vec<procs::PidEntry> {
    let Some((app, n)) = parse_unit(unit).map(|(a, n)| (a.to_string(), n)) else {
        return Vec::new();
    };
    if let Some(a) = world.apps.get_mut(&app) {
        a.units.remove(&n);
    }
    world
        .secrets
        .retain(|_, s| s.owner != crate::model::SecretOwner::Unit(unit.to_string()));
    for s in world.secrets.values_mut() {
        s.consumers.remove(unit);
    }
    world
        .actions
        .retain(|_, a| a.unit != unit || a.status != "pending");
    let stopped = procs::stop_all(&[paths.workload_dir(unit)]);
    gc(world);
    stopped
}

/// Things that keep `settle` going (contract 3).
pub fn unsettled(world: &World, paths: &Paths) -> Vec<String> {
    let mut why = Vec::new();
    for app in world.apps.values().filter(|a| !a.stub) {
        for u in app.units.values() {
            if let Some(e) = &u.local.error {
                why.push(format!("{}: hook failed: {:?}", u.name, e.hook.name()));
                continue;
            }
            let n = deferred_entries(paths, &u.name);
            if n > 0 {
                why.push(format!("{}: {n} deferred event(s)", u.name));
            }
            if matches!(
                u.workload.status.as_str(),
                "maintenance" | "waiting" | "unknown"
            ) {
                why.push(format!(
                    "{}: workload {} {:?}",
                    u.name, u.workload.status, u.workload.message
                ));
            }
        }
    }
    why
}

/// Entries in `<charm dir>/.deferred.json` (contract 3); 0 if absent or unreadable.
pub fn deferred_entries(paths: &Paths, unit: &str) -> usize {
    std::fs::read(paths.charm_dir(unit).join(".deferred.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("entries").and_then(Value::as_array).map(Vec::len))
        .unwrap_or(0)
}

/// Marks update-status due on every started unit.
pub fn tick(world: &mut World) {
    for app in world.apps.values_mut().filter(|a| !a.stub) {
        for u in app.units.values_mut() {
            if u.local.started && u.life == Life::Alive {
                u.local.update_status_pending = true;
            }
        }
    }
}

/// Asks every unit in hook error to retry its hook.
pub fn retry_errors(world: &mut World) {
    for app in world.apps.values_mut() {
        for u in app.units.values_mut() {
            if let Some(e) = &mut u.local.error {
                e.retry = true;
            }
        }
    }
}

/// Settles a committed hook's relation writes and secret revisions: new bag versions (so the
/// other units get -changed) and secret-changed for consumers tracking an older revision.
fn publish(world: &mut World, before: &World, ctx: &HookCtx) {
    for (id, owner) in &ctx.touched {
        let old = before.relations.get(id).and_then(|r| {
            r.unit_bags
                .get(owner)
                .or_else(|| r.app_bags.get(owner))
                .cloned()
        });
        let Some(rel) = world.relations.get_mut(id) else {
            continue;
        };
        let bag = if parse_unit(owner).is_some() {
            rel.unit_bags.get_mut(owner)
        } else {
            rel.app_bags.get_mut(owner)
        };
        if let Some(bag) = bag {
            let old = old.unwrap_or_default();
            bag.version = if old.data != bag.data {
                old.version + 1
            } else {
                old.version
            };
        }
    }
    for xid in &ctx.new_revisions {
        let Some(s) = world.secrets.get(xid) else {
            continue;
        };
        let latest = s.latest;
        let snapshot = s.clone();
        let due: Vec<String> = s
            .consumers
            .iter()
            .filter(|(_, c)| c.revision > 0 && c.revision < latest)
            .map(|(u, _)| u.clone())
            .filter(|u| crate::tools::secret::granted(world, u, &snapshot))
            .collect();
        for u in due {
            if world.is_stub(app_of(&u)) {
                continue;
            }
            if let Some(unit) = world.unit_mut(&u) {
                unit.local.secret_changed.insert(xid.clone());
            }
        }
    }
}

/// Puts the world back as it was before a failed hook or action, keeping only the changes Juju
/// applies immediately (status, application version, leader settings).
fn rollback(world: &mut World, snapshot: World, ctx: &HookCtx) {
    *world = snapshot;
    for i in &ctx.immediates {
        i.apply(world);
    }
}

fn env_unit(env: &BTreeMap<String, String>) -> String {
    env.get("JUJU_UNIT_NAME").cloned().unwrap_or_default()
}

/// Advances a unit's local state after `spec` ran (or was skipped as missing).
fn transition(world: &mut World, paths: &Paths, unit: &str, spec: &HookSpec) {
    if spec.kind == HookKind::Remove {
        bury(world, paths, unit);
        return;
    }
    let lsv = world
        .apps
        .get(app_of(unit))
        .map(|a| a.leader_settings_version)
        .unwrap_or(0);
    let Some(u) = world.unit_mut(unit) else {
        return;
    };
    let l = &mut u.local;
    if l.queued.as_ref() == Some(spec) {
        l.queued = None;
    }
    match spec.kind {
        HookKind::Install => l.installed = true,
        HookKind::Start => {
            l.started = true;
            if !u.status_set {
                u.workload = Status::new("unknown", "");
            }
        }
        HookKind::ConfigChanged => {
            l.config_seen = spec.config.clone();
            if !l.started {
                l.queued = Some(HookSpec::simple(HookKind::Start));
            }
        }
        HookKind::UpdateStatus => l.update_status_pending = false,
        HookKind::Stop => {
            l.started = false;
            u.workload = Status::new("maintenance", "");
        }
        HookKind::Remove => {}
        HookKind::LeaderElected => {
            l.leader = true;
            l.leader_settings_version = lsv;
        }
        HookKind::LeaderSettingsChanged => l.leader_settings_version = spec.version,
        HookKind::RelationCreated => {
            if let Some(id) = spec.relation {
                l.relations.entry(id).or_default();
            }
        }
        HookKind::RelationJoined => {
            if let (Some(id), Some(m)) = (spec.relation, &spec.remote_unit) {
                let lr = l.relations.entry(id).or_default();
                lr.members.insert(m.clone(), spec.version);
                lr.changed_pending = Some(m.clone());
            }
        }
        HookKind::RelationChanged => {
            if let Some(lr) = spec.relation.and_then(|id| l.relations.get_mut(&id)) {
                match &spec.remote_unit {
                    Some(m) => {
                        if lr.members.contains_key(m) {
                            lr.members.insert(m.clone(), spec.version);
                        }
                        if lr.changed_pending.as_ref() == Some(m) {
                            lr.changed_pending = None;
                        }
                    }
                    None => lr.app_version = spec.version,
                }
            }
        }
        HookKind::RelationDeparted => {
            if let (Some(lr), Some(m)) = (
                spec.relation.and_then(|id| l.relations.get_mut(&id)),
                &spec.remote_unit,
            ) {
                lr.members.remove(m);
                if lr.changed_pending.as_ref() == Some(m) {
                    lr.changed_pending = None;
                }
            }
        }
        HookKind::RelationBroken => {
            if let Some(id) = spec.relation {
                l.relations.remove(&id);
            }
        }
        HookKind::SecretChanged => {
            if let Some(x) = &spec.id {
                l.secret_changed.remove(x);
            }
        }
        HookKind::StorageAttached | HookKind::StorageDetaching => {
            let attach = spec.kind == HookKind::StorageAttached;
            for s in u
                .storage
                .iter_mut()
                .filter(|s| Some(&s.id) == spec.id.as_ref())
            {
                s.attached = attach;
            }
        }
    }
    if spec.kind == HookKind::RelationBroken {
        gc(world);
    }
}

/// `resolve --no-retry`: the failed hook counts as done without running again.
pub fn skip(world: &mut World, paths: &Paths, unit: &str, spec: &HookSpec) {
    transition(world, paths, unit, spec);
}

/// Effects the uniter applies before a hook runs, whatever its outcome.
fn before_hook(world: &mut World, unit: &str, spec: &HookSpec) {
    let addr = world.unit_address(unit).unwrap_or_default();
    let Some(u) = world.unit_mut(unit) else {
        return;
    };
    match spec.kind {
        HookKind::Install if !u.status_set => {
            u.workload = Status::new("maintenance", "installing charm software")
        }
        HookKind::Stop => u.workload = Status::new("maintenance", "stopping charm software"),
        HookKind::Remove => {
            u.workload = Status::new("maintenance", "cleaning up prior to charm deletion")
        }
        HookKind::RelationJoined | HookKind::RelationChanged => {
            if let (Some(lr), Some(m)) = (
                spec.relation.and_then(|id| u.local.relations.get_mut(&id)),
                &spec.remote_unit,
            ) {
                lr.cache.remove(m);
            }
        }
        _ => {}
    }
    if spec.kind == HookKind::RelationCreated {
        if let Some(id) = spec.relation {
            enter_scope(world, id, unit, &addr);
        }
    }
}

/// Writes the Juju-owned keys into a unit's bag as it enters a relation.
pub fn enter_scope(world: &mut World, rel: u64, unit: &str, addr: &str) {
    let Some(r) = world.relations.get_mut(&rel) else {
        return;
    };
    let bag = r.unit_bags.entry(unit.to_string()).or_default();
    let before = bag.data.clone();
    bag.data.insert("private-address".into(), addr.to_string());
    bag.data.insert("ingress-address".into(), addr.to_string());
    bag.data
        .insert("egress-subnets".into(), format!("{addr}/32"));
    if bag.data != before || bag.version == 0 {
        bag.version += 1;
    }
}

fn hook_vars(world: &World, unit: &str, spec: &HookSpec) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let (Some(id), Some(ep)) = (spec.relation, &spec.endpoint) {
        if matches!(
            spec.kind,
            HookKind::RelationCreated
                | HookKind::RelationJoined
                | HookKind::RelationChanged
                | HookKind::RelationDeparted
                | HookKind::RelationBroken
        ) {
            env.push(("JUJU_RELATION", ep.clone()));
            env.push(("JUJU_RELATION_ID", format!("{ep}:{id}")));
            env.push((
                "JUJU_REMOTE_APP",
                spec.remote_app.clone().unwrap_or_default(),
            ));
            env.push((
                "JUJU_REMOTE_UNIT",
                spec.remote_unit.clone().unwrap_or_default(),
            ));
            if spec.kind == HookKind::RelationDeparted {
                env.push((
                    "JUJU_DEPARTING_UNIT",
                    spec.departing.clone().unwrap_or_default(),
                ));
            }
        }
    }
    match spec.kind {
        HookKind::SecretChanged => {
            let xid = spec.id.clone().unwrap_or_default();
            env.push(("JUJU_SECRET_ID", world.secret_uri(&xid)));
            let label = world
                .secrets
                .get(&xid)
                .and_then(|s| s.consumers.get(unit).and_then(|c| c.label.clone()))
                .unwrap_or_default();
            env.push(("JUJU_SECRET_LABEL", label));
        }
        HookKind::StorageAttached | HookKind::StorageDetaching => {
            env.push(("JUJU_STORAGE_ID", spec.id.clone().unwrap_or_default()));
            if let Some(s) = world
                .unit(unit)
                .and_then(|u| u.storage.iter().find(|s| Some(&s.id) == spec.id.as_ref()))
            {
                env.push(("JUJU_STORAGE_LOCATION", s.location.clone()));
                env.push(("JUJU_STORAGE_KIND", s.kind.clone()));
            }
        }
        _ => {}
    }
    env
}

impl Driver {
    pub fn new(shared: Shared, paths: Paths, opts: Options) -> Driver {
        let rng = opts.seed.map(|s| {
            let commands = lock(&shared).world.commands;
            Rng::new(s ^ commands.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        });
        Driver {
            shared,
            paths,
            opts,
            rng,
            hooks_run: 0,
            notes: Vec::new(),
        }
    }

    /// Runs hooks until no unit has anything to do. Returns the number of hooks and actions run.
    pub fn run_until_idle(&mut self) -> Result<usize> {
        let start = self.hooks_run;
        while self.step()? {
            if self.hooks_run - start > self.opts.max_hooks {
                return Err(SimError::Failed(format!(
                    "the model did not become idle after {} hooks: charms may be triggering each \
                     other in a loop (see `jujusim log`); raise the limit with --max-hooks",
                    self.opts.max_hooks
                )));
            }
        }
        Ok(self.hooks_run - start)
    }

    /// Runs at most `n` hooks or actions of pending work (fault-injection tests stop between
    /// hooks this way). Returns how many ran; fewer than `n` means the model is idle.
    pub fn run_steps(&mut self, n: usize) -> Result<usize> {
        let start = self.hooks_run;
        for _ in 0..n {
            if !self.step()? {
                break;
            }
        }
        Ok(self.hooks_run - start)
    }

    /// One step: applies zero-cost local transitions, then runs one hook or action of the
    /// chosen unit. Returns false when idle.
    fn step(&mut self) -> Result<bool> {
        let mut core = lock(&self.shared);
        let mut dirty = false;
        let mut candidates = 'outer: loop {
            ensure_leaders(&mut core.world, &mut self.rng);
            let mut candidates: Vec<(String, Work)> = Vec::new();
            for unit in core.world.unit_names() {
                match next_work(&core.world, &unit, &mut self.rng) {
                    Some(Work::Resign) => {
                        if let Some(u) = core.world.unit_mut(&unit) {
                            u.local.leader = false;
                        }
                        dirty = true;
                        continue 'outer;
                    }
                    Some(Work::LeavePeer(id)) => {
                        if let Some(u) = core.world.unit_mut(&unit) {
                            u.local.relations.remove(&id);
                        }
                        gc(&mut core.world);
                        dirty = true;
                        continue 'outer;
                    }
                    Some(Work::Bury) => {
                        let paths = self.paths.clone();
                        bury(&mut core.world, &paths, &unit);
                        dirty = true;
                        continue 'outer;
                    }
                    Some(w) => candidates.push((unit, w)),
                    None => {}
                }
            }
            break candidates;
        };
        if candidates.is_empty() {
            if dirty {
                core.world.save(&self.paths)?;
            }
            return Ok(false);
        }
        let idx = match self.rng.as_mut() {
            Some(r) => r.below(candidates.len()),
            None => {
                let order = core.world.unit_names();
                let last = core
                    .world
                    .last_unit
                    .as_ref()
                    .and_then(|l| order.iter().position(|u| u == l));
                let pos = |u: &str| order.iter().position(|x| x == u).unwrap_or(0);
                match last {
                    Some(lp) => candidates
                        .iter()
                        .position(|(u, _)| pos(u) > lp)
                        .unwrap_or(0),
                    None => 0,
                }
            }
        };
        let (unit, work) = candidates.swap_remove(idx);
        drop(core);
        match work {
            Work::Hook(spec) => self.run_hook(&unit, spec)?,
            Work::Action(id) => self.run_action(&unit, id)?,
            Work::Resign | Work::LeavePeer(_) | Work::Bury => {}
        }
        Ok(true)
    }

    /// Runs `ctx`'s process with the world unlocked (the tool server needs it). Returns the run,
    /// the context with its tool calls, the world from before (for a rollback), and the lock.
    fn execute<'a>(
        &mut self,
        shared: &'a Shared,
        mut core: MutexGuard<'a, Core>,
        ctx: HookCtx,
        entry: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<(runner::Run, HookCtx, World, MutexGuard<'a, Core>)> {
        let snapshot = core.world.clone();
        core.ctx = Some(ctx);
        drop(core);
        let charm_dir = self.paths.charm_dir(&env_unit(env));
        let run = runner::run(entry, &charm_dir, env, self.opts.hook_timeout);
        self.hooks_run += 1;
        let mut core = lock(shared);
        let Some(ctx) = core.ctx.take() else {
            return Err(SimError::Failed("internal error: hook context lost".into()));
        };
        Ok((run, ctx, snapshot, core))
    }

    /// Appends the run to the timeline and saves the world.
    fn record(
        &self,
        core: &mut Core,
        (hook, action, action_id): (Option<String>, Option<String>, Option<u64>),
        env: BTreeMap<String, String>,
        ctx: HookCtx,
        run: runner::Run,
    ) -> Result<()> {
        let seq = core.world.next_seq;
        core.world.next_seq += 1;
        let entry = timeline::Entry {
            seq,
            unit: ctx.unit,
            hook,
            action,
            action_id,
            env,
            tool_calls: ctx.calls,
            exit_code: run.exit_code,
            duration_ms: run.duration.as_millis() as u64,
            cpu_ms: run.cpu.as_secs_f64() * 1000.0,
            max_rss_kib: run.max_rss_kib,
            stdout: run.stdout,
            stderr: run.stderr,
            timed_out: run.timed_out,
        };
        timeline::append(&self.paths, &entry)?;
        core.world.save(&self.paths)
    }

    fn context_id(world: &mut World, unit: &str, what: &str) -> String {
        let n = world.next_context;
        world.next_context += 1;
        format!("{unit}-{what}-{n}")
    }

    fn run_hook(&mut self, unit: &str, spec: HookSpec) -> Result<()> {
        let name = spec.name();
        let dispatch_path = format!("hooks/{name}");
        let shared = self.shared.clone();
        let mut core = lock(&shared);
        core.world.last_unit = Some(unit.to_string());
        before_hook(&mut core.world, unit, &spec);
        let Some(entry) = charm::entry_point(&self.paths.charm_dir(unit), &dispatch_path) else {
            // A missing hook: skipped silently and committed as if it ran.
            if let Some(u) = core.world.unit_mut(unit) {
                u.local.error = None;
            }
            transition(&mut core.world, &self.paths, unit, &spec);
            return core.world.save(&self.paths);
        };
        let ctx_id = Self::context_id(&mut core.world, unit, &name);
        let mut ctx = HookCtx::new(ctx_id.clone(), unit);
        ctx.kind = Some(spec.kind);
        let storage = matches!(
            spec.kind,
            HookKind::StorageAttached | HookKind::StorageDetaching
        );
        ctx.relation = spec.relation.filter(|_| !storage);
        ctx.storage_id = spec.id.clone().filter(|_| storage);
        ctx.endpoint = spec.endpoint.clone();
        ctx.remote_app = spec.remote_app.clone();
        ctx.remote_unit = spec.remote_unit.clone();
        ctx.departing = spec.departing.clone();
        let extra = hook_vars(&core.world, unit, &spec);
        let env = runner::hook_env(
            &core.world,
            &self.paths,
            unit,
            &ctx_id,
            &dispatch_path,
            &name,
            &extra,
        );
        let (run, ctx, snapshot, mut core) = self.execute(&shared, core, ctx, &entry, &env)?;
        if run.success() {
            publish(&mut core.world, &snapshot, &ctx);
            if let Some(u) = core.world.unit_mut(unit) {
                u.local.error = None;
                if u.agent.status != "idle" {
                    u.agent = Status::new("idle", "");
                }
            }
            transition(&mut core.world, &self.paths, unit, &spec);
        } else {
            rollback(&mut core.world, snapshot, &ctx);
            let why = if run.timed_out {
                format!("timed out after {} s", self.opts.hook_timeout.as_secs_f64())
            } else {
                format!("exit code {}", run.exit_code)
            };
            self.notes
                .push(format!("{unit}: hook failed: {name:?} ({why})"));
            if let Some(u) = core.world.unit_mut(unit) {
                u.local.error = Some(HookError {
                    hook: spec.clone(),
                    retry: false,
                });
                u.agent = Status::new("error", &format!("hook failed: {name:?}"));
            }
        }
        self.record(&mut core, (Some(name), None, None), env, ctx, run)
    }

    fn run_action(&mut self, unit: &str, id: u64) -> Result<()> {
        let shared = self.shared.clone();
        let mut core = lock(&shared);
        core.world.last_unit = Some(unit.to_string());
        let Some(action) = core.world.actions.get_mut(&id) else {
            return Ok(());
        };
        action.status = "running".into();
        let name = action.name.clone();
        let params = action.params.as_object().cloned().unwrap_or_default();
        let dispatch_path = format!("actions/{name}");
        let Some(entry) = charm::entry_point(&self.paths.charm_dir(unit), &dispatch_path) else {
            if let Some(a) = core.world.actions.get_mut(&id) {
                a.status = "failed".into();
                a.message = format!("action not implemented on unit {unit:?}");
            }
            return core.world.save(&self.paths);
        };
        let ctx_id = Self::context_id(&mut core.world, unit, &format!("run-action-{id}"));
        let mut ctx = HookCtx::new(ctx_id.clone(), unit);
        ctx.action = Some(ActionCtx {
            params,
            results: Default::default(),
            failed: None,
            log: Vec::new(),
        });
        let extra = [
            ("JUJU_ACTION_NAME", name.clone()),
            ("JUJU_ACTION_UUID", id.to_string()),
            ("JUJU_ACTION_TAG", format!("action-{id}")),
        ];
        let env = runner::hook_env(
            &core.world,
            &self.paths,
            unit,
            &ctx_id,
            &dispatch_path,
            "",
            &extra,
        );
        let (run, ctx, snapshot, mut core) = self.execute(&shared, core, ctx, &entry, &env)?;
        // Exit 0 commits (even after action-fail); any other exit drops the changes, and the
        // unit is not put in error.
        if run.success() {
            publish(&mut core.world, &snapshot, &ctx);
        } else {
            rollback(&mut core.world, snapshot, &ctx);
        }
        if let (Some(a), Some(act)) = (core.world.actions.get_mut(&id), &ctx.action) {
            let mut results = act.results.clone();
            results.insert("return-code".into(), json!(run.exit_code));
            if !run.stdout.is_empty() {
                results.insert("stdout".into(), json!(run.stdout));
            }
            if !run.stderr.is_empty() {
                results.insert("stderr".into(), json!(run.stderr));
            }
            a.results = results;
            a.log = act.log.clone();
            (a.status, a.message) = if run.timed_out {
                (
                    "failed".into(),
                    format!("timed out after {} s", self.opts.hook_timeout.as_secs_f64()),
                )
            } else if run.exit_code != 0 {
                ("failed".into(), format!("exit status {}", run.exit_code))
            } else if let Some(m) = &act.failed {
                ("failed".into(), m.clone())
            } else {
                ("completed".into(), String::new())
            };
        }
        self.record(&mut core, (None, Some(name), Some(id)), env, ctx, run)
    }

    /// `exec` (as `juju exec --unit`): runs a command in a hook context on `unit`, its
    /// relation and state writes committed if it exits 0. Recorded in the timeline as action
    /// `juju-exec`.
    pub fn run_exec(&mut self, unit: &str, argv: &[String]) -> Result<runner::Run> {
        let Some((program, args)) = argv.split_first() else {
            return Err(SimError::Usage("exec needs a command after --".into()));
        };
        let shared = self.shared.clone();
        let mut core = lock(&shared);
        core.world.last_unit = Some(unit.to_string());
        let ctx_id = Self::context_id(&mut core.world, unit, "exec");
        let ctx = HookCtx::new(ctx_id.clone(), unit);
        let env = runner::hook_env(&core.world, &self.paths, unit, &ctx_id, "", "", &[]);
        let path = env.get("PATH").cloned().unwrap_or_default();
        let entry = if program.contains('/') {
            std::path::PathBuf::from(program)
        } else {
            path.split(':')
                .map(|d| Path::new(d).join(program))
                .find(|p| p.is_file())
                .unwrap_or_else(|| program.into())
        };
        let snapshot = core.world.clone();
        core.ctx = Some(ctx);
        drop(core);
        let run = runner::run_args(
            &entry,
            args,
            &self.paths.charm_dir(unit),
            &env,
            self.opts.hook_timeout,
        );
        self.hooks_run += 1;
        let mut core = lock(&shared);
        let Some(ctx) = core.ctx.take() else {
            return Err(SimError::Failed("internal error: exec context lost".into()));
        };
        if run.success() {
            publish(&mut core.world, &snapshot, &ctx);
        } else {
            rollback(&mut core.world, snapshot, &ctx);
        }
        self.record(
            &mut core,
            (None, Some("juju-exec".into()), None),
            env,
            ctx,
            run.clone(),
        )?;
        Ok(run)
    }

    /// `settle` (contract 3): run until idle; then, while something is unsettled, retry failed
    /// hooks, tick update-status once and run until idle again.
    pub fn settle(&mut self, timeout: Duration) -> Result<SettleReport> {
        let start = Instant::now();
        let hooks0 = self.hooks_run;
        let mut ticks = 0;
        self.run_until_idle()?;
        loop {
            let why = {
                let core = lock(&self.shared);
                unsettled(&core.world, &self.paths)
            };
            if why.is_empty() {
                return Ok(SettleReport {
                    ticks,
                    hooks: self.hooks_run - hooks0,
                    seconds: start.elapsed().as_secs_f64(),
                    unsettled: Vec::new(),
                });
            }
            if start.elapsed() >= timeout {
                return Ok(SettleReport {
                    ticks,
                    hooks: self.hooks_run - hooks0,
                    seconds: start.elapsed().as_secs_f64(),
                    unsettled: why,
                });
            }
            let t0 = Instant::now();
            {
                let mut core = lock(&self.shared);
                retry_errors(&mut core.world);
                tick(&mut core.world);
                core.world.save(&self.paths)?;
            }
            ticks += 1;
            self.run_until_idle()?;
            // Pace the ticks a little: work that waits for a process to come up needs time to
            // pass, and a hot loop would only fill the timeline.
            let min = Duration::from_millis(50);
            if let Some(rest) = min.checked_sub(t0.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct SettleReport {
    pub ticks: usize,
    pub hooks: usize,
    pub seconds: f64,
    /// Empty when settled.
    pub unsettled: Vec<String>,
}

/// Pending work per unit (for `status` and tests): the next hook name, if any.
pub fn pending_summary(world: &World) -> BTreeMap<String, String> {
    let mut rng = None;
    world
        .unit_names()
        .into_iter()
        .filter_map(|u| {
            let w = next_work(world, &u, &mut rng)?;
            let what = match w {
                Work::Hook(s) => s.name(),
                Work::Action(id) => format!("action {id}"),
                Work::Resign => "resign leadership".into(),
                Work::LeavePeer(_) => "leave peer relation".into(),
                Work::Bury => "removal".into(),
            };
            Some((u, what))
        })
        .collect()
}
