//! What happens to the world around a hook: the uniter's effects before it runs (scope entry,
//! cache invalidation, statuses), the unit's local state after it committed, secret-changed for
//! consumers of new revisions, and removing dead units, applications and relations.

use crate::model::{app_of, parse_unit, HookKind, HookSpec, Life, Paths, Status, World};
use crate::procs;
use crate::tools::ctx::HookCtx;

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

/// Advances a unit's local state after `spec` ran (or was skipped as missing).
pub fn transition(world: &mut World, paths: &Paths, unit: &str, spec: &HookSpec) {
    if spec.kind == HookKind::Remove {
        bury(world, paths, unit);
        return;
    }
    let lsv = world
        .apps
        .get(app_of(unit))
        .map(|a| a.leader_settings_version)
        .unwrap_or(0);
    let config = crate::scheduler::config_text(world, app_of(unit));
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
        // Juju queues config-changed after upgrade-charm, whether the config changed or not.
        HookKind::UpgradeCharm => {
            l.queued = Some(HookSpec {
                config: Some(config),
                ..HookSpec::simple(HookKind::ConfigChanged)
            })
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

/// The application's charm (`revision`) is now deployed in the unit's charm directory (Juju's
/// deploy operation committed): `upgrade-charm` runs next, unless the unit is not installed yet
/// (install runs the new charm) or a failed hook waits (a forced upgrade: the hook stays failed
/// and is retried with the new charm, Juju's interrupted hook).
pub fn upgraded(world: &mut World, unit: &str, revision: u32) {
    let Some(u) = world.unit_mut(unit) else {
        return;
    };
    let l = &mut u.local;
    l.charm_revision = revision;
    if l.installed && l.error.is_none() && l.queued.is_none() {
        l.queued = Some(HookSpec::simple(HookKind::UpgradeCharm));
    }
}

/// `resolve --no-retry`: the failed hook counts as done without running again.
pub fn skip(world: &mut World, paths: &Paths, unit: &str, spec: &HookSpec) {
    transition(world, paths, unit, spec);
}

/// Effects the uniter applies before a hook runs, whatever its outcome.
pub fn before_hook(world: &mut World, unit: &str, spec: &HookSpec) {
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

pub fn hook_vars(world: &World, unit: &str, spec: &HookSpec) -> Vec<(&'static str, String)> {
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

/// Commits a hook that exited 0: its buffered writes go to the world as it is now (changed bags
/// get new versions, so other units get -changed), consumers tracking an older revision of a
/// secret it revised get secret-changed. Refused, with nothing written, when the hook wrote an
/// application bag and its unit no longer leads (Juju checks the lease inside the commit's
/// transaction).
pub fn commit(world: &mut World, ctx: &HookCtx) -> Result<(), String> {
    if ctx.overlay.writes_app_bags() && !world.is_leader(&ctx.unit) {
        return Err(format!(
            "committing requested changes failed: {:?} is not leader of {:?}",
            ctx.unit,
            ctx.app()
        ));
    }
    ctx.overlay.commit(world, &ctx.unit);
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
    Ok(())
}
