//! The pure scheduling rules of a unit agent: for every unit, compare what it has seen (its
//! `Local` state) with the world and pick its next work with Juju's priorities (reference §4)
//! and the per-relation chooser (§3.4); coalescing falls out of comparing versions. Nothing here
//! runs a process or touches files (except reading a unit's deferred count for `settle`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{app_of, parse_unit, HookKind, HookSpec, Life, Paths, World};
use crate::util::Rng;

/// The next thing a unit's agent would do.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    Hook(HookSpec),
    Action(u64),
    /// Drop local leadership (no hook: Juju 3 never fires leader-deposed).
    Resign,
    /// A dying unit is done with its peer relation (peers get no -broken).
    LeavePeer(u64),
    /// Nothing left for a dying unit: remove it from the model.
    Bury,
    /// Deploy the application's current charm into the unit's charm directory (Juju's upgrade
    /// operation: files only, no hook). Then `upgrade-charm` is queued, unless the unit is not
    /// installed yet (install runs the new charm) or a failed hook waits (`--force-units`:
    /// that hook stays failed and its retry runs the new charm, as Juju restores an
    /// interrupted hook after a deploy).
    Upgrade,
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
pub fn next_work(world: &World, unit: &str, rng: &mut Option<Rng>) -> Option<Work> {
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
        // 3. relation-created for relations the unit has not entered yet, on endpoints its
        // deployed charm declares (a relation on an endpoint of a newer charm waits for the
        // upgrade).
        let fresh: Vec<u64> = world
            .relations
            .values()
            .filter(|r| r.life == Life::Alive && r.involves(&app.name))
            .filter(|r| !l.relations.contains_key(&r.id))
            .filter(|r| {
                r.end(&app.name)
                    .is_some_and(|e| app.declares(l.charm_revision, &e.endpoint))
            })
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
    // 10. a failed hook waits for retry; a refresh with --force-units upgrades the unit even
    // now (Juju's nextOpHookError).
    if let Some(e) = &l.error {
        if app.upgrade_due(u) && app.force_units_revision == Some(app.revision) {
            return Some(Work::Upgrade);
        }
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
    // 12. install, of the application's current charm.
    if !l.installed {
        if app.upgrade_due(u) {
            return Some(Work::Upgrade);
        }
        return Some(Work::Hook(HookSpec::simple(HookKind::Install)));
    }
    // 13. upgrade-charm when the application's charm changed (the files first).
    if app.upgrade_due(u) {
        return Some(Work::Upgrade);
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
                Work::Upgrade => world
                    .apps
                    .get(app_of(&u))
                    .map(|a| format!("upgrade to {}", a.charm_url(a.revision)))
                    .unwrap_or_default(),
            };
            Some((u, what))
        })
        .collect()
}

/// The application's leader loses its lease (its agent could not renew it): another alive unit
/// claims it (the lowest, or a seeded choice); the old one may still be running a hook that
/// believes it leads until it asks again. Returns the new leader.
pub fn revoke_leader(world: &mut World, app: &str, rng: &mut Option<Rng>) -> Option<String> {
    let a = world.apps.get_mut(app)?;
    let old = a.leader.take();
    let others: Vec<String> = a
        .units
        .values()
        .filter(|u| u.life == Life::Alive && Some(&u.name) != old.as_ref())
        .map(|u| u.name.clone())
        .collect();
    a.leader = match (others.is_empty(), rng.as_mut()) {
        (true, _) => None,
        (false, Some(r)) => Some(others[r.below(others.len())].clone()),
        (false, None) => Some(others[0].clone()),
    };
    a.leader_settings_version += 1;
    a.leader.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charm::{Meta, Role};
    use crate::model::{App, HookError, LocalRelation, RelEnd, Relation, Settings, Status, Unit};

    /// Application `a` with units /0../n-1 (installed, started, config seen, in the peer
    /// relation 0 with every other unit seen at bag version 1), /0 leading.
    fn world(n: u32) -> World {
        let mut w = World::new("m", (10, 20));
        let mut app = App::new(
            "a",
            Meta::stub("a", "peers", Role::Peer, "p"),
            false,
            BTreeMap::new(),
        );
        app.leader = Some("a/0".into());
        w.apps.insert("a".into(), app);
        let mut rel = Relation {
            id: 0,
            interface: "p".into(),
            ends: vec![RelEnd {
                app: "a".into(),
                endpoint: "peers".into(),
                role: Role::Peer,
            }],
            life: Life::Alive,
            app_bags: BTreeMap::new(),
            unit_bags: BTreeMap::new(),
        };
        for i in 0..n {
            rel.unit_bags.insert(
                format!("a/{i}"),
                Settings {
                    data: BTreeMap::new(),
                    version: 1,
                },
            );
        }
        w.relations.insert(0, rel);
        let cfg = config_text(&w, "a");
        let lsv = w.apps["a"].leader_settings_version;
        for i in 0..n {
            let members = (0..n)
                .filter(|j| *j != i)
                .map(|j| (format!("a/{j}"), 1))
                .collect();
            let unit = Unit {
                name: format!("a/{i}"),
                num: i,
                host: 10 + i,
                machine: i,
                life: Life::Alive,
                workload: Status::new("active", ""),
                agent: Status::new("idle", ""),
                status_set: true,
                state: BTreeMap::new(),
                ports: Default::default(),
                storage: Vec::new(),
                local: crate::model::Local {
                    installed: true,
                    started: true,
                    leader: i == 0,
                    config_seen: Some(cfg.clone()),
                    leader_settings_version: lsv,
                    relations: [(
                        0,
                        LocalRelation {
                            members,
                            ..Default::default()
                        },
                    )]
                    .into(),
                    ..Default::default()
                },
            };
            if let Some(a) = w.apps.get_mut("a") {
                a.units.insert(i, unit);
                a.next_unit = n;
            }
        }
        w
    }

    fn local<'w>(w: &'w mut World, u: &str) -> &'w mut crate::model::Local {
        &mut w.unit_mut(u).unwrap().local
    }

    /// The leader wrote the peer relation's application bag.
    fn app_bag_written(w: &mut World) {
        w.relations.get_mut(&0).unwrap().app_bags.insert(
            "a".into(),
            Settings {
                data: [("k".to_string(), "v".to_string())].into(),
                version: 1,
            },
        );
    }

    /// What the unit does next, as a short name ("config-changed", "peers-relation-joined
    /// a/2", "resign", "idle", ...).
    fn next(w: &World, u: &str) -> String {
        match next_work(w, u, &mut None) {
            None => "idle".into(),
            Some(Work::Hook(s)) => match &s.remote_unit {
                Some(r) => format!("{} {r}", s.name()),
                None => s.name(),
            },
            Some(Work::Action(id)) => format!("action {id}"),
            Some(Work::Resign) => "resign".into(),
            Some(Work::LeavePeer(id)) => format!("leave {id}"),
            Some(Work::Bury) => "bury".into(),
            Some(Work::Upgrade) => "upgrade".into(),
        }
    }

    /// The application's charm moved to revision 1 (units still run 0); with `force`, by
    /// `refresh --force-units`.
    fn refreshed(w: &mut World, force: bool) {
        let a = w.apps.get_mut("a").unwrap();
        a.revision = 1;
        a.force_units_revision = force.then_some(1);
    }

    fn failed(w: &mut World, u: &str, retry: bool) {
        local(w, u).error = Some(HookError {
            hook: HookSpec::simple(HookKind::ConfigChanged),
            retry,
        });
    }

    /// Upgrades (Juju's resolver: after install, before config-changed; never over a queued
    /// hook, a failed one (unless forced), leadership, or for a dying unit), one row per
    /// situation as above.
    #[test]
    fn a_refreshed_charm_is_deployed_at_priority_13() {
        type Change = fn(&mut World);
        let rows: Vec<(&str, Change, &str)> = vec![
            ("refreshed", |w| refreshed(w, false), "upgrade"),
            (
                "after the upgrade: nothing (its upgrade-charm is queued by the deploy)",
                |w| {
                    refreshed(w, false);
                    local(w, "a/1").charm_revision = 1;
                },
                "idle",
            ),
            (
                "upgrade before config-changed",
                |w| {
                    refreshed(w, false);
                    local(w, "a/1").config_seen = Some("an older configuration".into());
                },
                "upgrade",
            ),
            (
                "a queued hook first",
                |w| {
                    refreshed(w, false);
                    local(w, "a/1").queued = Some(HookSpec::simple(HookKind::Start));
                },
                "start",
            ),
            (
                "leadership first",
                |w| {
                    refreshed(w, false);
                    w.apps.get_mut("a").unwrap().leader = Some("a/1".into());
                },
                "leader-elected",
            ),
            (
                "not installed: the new charm is deployed, then installed",
                |w| {
                    refreshed(w, false);
                    local(w, "a/1").installed = false;
                },
                "upgrade",
            ),
            (
                "in hook error: waits",
                |w| {
                    refreshed(w, false);
                    failed(w, "a/1", false);
                },
                "idle",
            ),
            (
                "in hook error, resolved: the failed hook first",
                |w| {
                    refreshed(w, false);
                    failed(w, "a/1", true);
                },
                "config-changed",
            ),
            (
                "in hook error, --force-units: upgrades anyway",
                |w| {
                    refreshed(w, true);
                    failed(w, "a/1", false);
                },
                "upgrade",
            ),
            (
                "forced, upgraded: the failed hook still waits",
                |w| {
                    refreshed(w, true);
                    failed(w, "a/1", false);
                    local(w, "a/1").charm_revision = 1;
                },
                "idle",
            ),
            (
                "--force-units of an older revision does not apply",
                |w| {
                    refreshed(w, true);
                    w.apps.get_mut("a").unwrap().revision = 2;
                    failed(w, "a/1", false);
                },
                "idle",
            ),
            (
                "dying: no upgrade",
                |w| {
                    refreshed(w, false);
                    w.unit_mut("a/1").unwrap().life = Life::Dying;
                    local(w, "a/1").relations.clear();
                },
                "stop",
            ),
        ];
        let mut failures = Vec::new();
        for (what, change, want) in rows {
            let mut w = world(3);
            change(&mut w);
            let got = next(&w, "a/1");
            if got != want {
                failures.push(format!("{what}: a/1 does {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// A relation on an endpoint the unit's deployed charm does not declare is entered only
    /// once the unit runs a charm that does.
    #[test]
    fn a_relation_of_a_newer_charm_waits_for_the_upgrade() {
        let mut w = world(1);
        let a = w.apps.get_mut("a").unwrap();
        a.revisions.insert(0, vec!["peers".into()]);
        a.meta.endpoints.insert(
            "more".into(),
            crate::charm::Endpoint {
                role: Role::Peer,
                interface: "m".into(),
                limit: None,
            },
        );
        a.revision = 1;
        w.relations.insert(
            1,
            Relation {
                id: 1,
                interface: "m".into(),
                ends: vec![RelEnd {
                    app: "a".into(),
                    endpoint: "more".into(),
                    role: Role::Peer,
                }],
                life: Life::Alive,
                app_bags: BTreeMap::new(),
                unit_bags: BTreeMap::new(),
            },
        );
        assert_eq!(next(&w, "a/0"), "upgrade");
        local(&mut w, "a/0").charm_revision = 1;
        assert_eq!(next(&w, "a/0"), "more-relation-created");
        assert!(w.apps["a"].declares(0, "peers") && !w.apps["a"].declares(0, "more"));
    }

    /// Juju's priorities (reference §4), one row per situation: the change made to a converged
    /// 3-unit world, the unit asked, what it does next.
    #[test]
    fn the_next_work_follows_the_uniters_priorities() {
        type Change = fn(&mut World);
        let rows: Vec<(&str, Change, &str, &str)> = vec![
            ("converged", |_| {}, "a/1", "idle"),
            (
                "not installed",
                |w| local(w, "a/1").installed = false,
                "a/1",
                "install",
            ),
            (
                "the config changed",
                |w| {
                    local(w, "a/1").config_seen = Some("an older configuration".into());
                },
                "a/1",
                "config-changed",
            ),
            (
                "a peer's bag moved",
                |w| {
                    w.relations
                        .get_mut(&0)
                        .unwrap()
                        .unit_bags
                        .get_mut("a/2")
                        .unwrap()
                        .version = 2;
                },
                "a/1",
                "peers-relation-changed a/2",
            ),
            (
                "a new peer",
                |w| {
                    local(w, "a/1")
                        .relations
                        .get_mut(&0)
                        .unwrap()
                        .members
                        .remove("a/2");
                },
                "a/1",
                "peers-relation-joined a/2",
            ),
            (
                "-changed right after -joined, before the config",
                |w| {
                    local(w, "a/1")
                        .relations
                        .get_mut(&0)
                        .unwrap()
                        .changed_pending = Some("a/2".into());
                    local(w, "a/1").config_seen = Some("an older configuration".into());
                },
                "a/1",
                "config-changed",
            ),
            (
                "lost leadership: resign before anything",
                |w| {
                    w.apps.get_mut("a").unwrap().leader = Some("a/1".into());
                },
                "a/0",
                "resign",
            ),
            (
                "gained leadership",
                |w| {
                    w.apps.get_mut("a").unwrap().leader = Some("a/1".into());
                },
                "a/1",
                "leader-elected",
            ),
            (
                "the app bag of a peer relation: no event for the leader",
                app_bag_written,
                "a/0",
                "idle",
            ),
            (
                "the app bag of a peer relation: -changed for the others",
                app_bag_written,
                "a/1",
                "peers-relation-changed",
            ),
            (
                "a failed hook waits for resolve",
                |w| {
                    local(w, "a/1").error = Some(HookError {
                        hook: HookSpec::simple(HookKind::Start),
                        retry: false,
                    });
                    local(w, "a/1").config_seen = Some("an older configuration".into());
                },
                "a/1",
                "idle",
            ),
            (
                "a resolved hook runs again first",
                |w| {
                    local(w, "a/1").error = Some(HookError {
                        hook: HookSpec::simple(HookKind::Start),
                        retry: true,
                    });
                    local(w, "a/1").config_seen = Some("an older configuration".into());
                },
                "a/1",
                "start",
            ),
            (
                "update-status when ticked",
                |w| local(w, "a/1").update_status_pending = true,
                "a/1",
                "update-status",
            ),
            (
                "update-status last",
                |w| {
                    local(w, "a/1").update_status_pending = true;
                    local(w, "a/1").config_seen = Some("an older configuration".into());
                },
                "a/1",
                "config-changed",
            ),
            (
                "dying: departs its peers first",
                |w| w.unit_mut("a/1").unwrap().life = Life::Dying,
                "a/1",
                "peers-relation-departed a/0",
            ),
            (
                "dying, relations gone: stop",
                |w| {
                    w.unit_mut("a/1").unwrap().life = Life::Dying;
                    local(w, "a/1").relations.clear();
                },
                "a/1",
                "stop",
            ),
            (
                "dying, stopped: remove",
                |w| {
                    w.unit_mut("a/1").unwrap().life = Life::Dying;
                    local(w, "a/1").relations.clear();
                    local(w, "a/1").started = false;
                },
                "a/1",
                "remove",
            ),
        ];
        let mut failures = Vec::new();
        for (what, change, unit, want) in rows {
            let mut w = world(3);
            change(&mut w);
            let got = next(&w, unit);
            if got != want {
                failures.push(format!("{what}: {unit} does {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn revoking_the_lease_gives_it_to_another_alive_unit() {
        let mut w = world(3);
        let v = w.apps["a"].leader_settings_version;
        assert_eq!(
            revoke_leader(&mut w, "a", &mut None).as_deref(),
            Some("a/1")
        );
        assert_eq!(w.apps["a"].leader_settings_version, v + 1);
        assert_eq!(next(&w, "a/0"), "resign");
        let mut one = world(1);
        assert_eq!(revoke_leader(&mut one, "a", &mut None), None);
    }
}
