//! Model operations: what `deploy`, `refresh`, `add-unit`, `integrate`, `remove-*`, `config`,
//! `set-data`, `run`, `resolve` and `revoke-leader` do to the world.
//!
//! Each operation validates its whole input first, in a `check_*` function that only reads the
//! world, and mutates only once the operation is known to be valid: a bad input changes nothing.
//! The CLI calls the check on the saved model before it takes the model's lock (a fast answer
//! that never creates or locks a model for a mistyped command), then the operation under the lock
//! (which checks again against the live world). The CLI only parses, calls and prints.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{Map, Value};

use crate::charm::{self, Meta, Role};
use crate::error::{Result, SimError};
use crate::lifecycle;
use crate::model::{
    app_of, parse_unit, valid_app_name, Action, App, Life, Local, Paths, RelEnd, Relation,
    Settings, Status, StorageInstance, Unit, World,
};
use crate::scheduler;
use crate::schema;
use crate::util::{self, Rng};
use crate::{fail, usage};

// ---------------------------------------------------------------- lookups

pub fn require_app<'a>(w: &'a World, app: &str) -> Result<&'a App> {
    match w.apps.get(app) {
        Some(a) => Ok(a),
        None => {
            let known: Vec<&str> = w.apps.keys().map(String::as_str).collect();
            fail!(
                "application {app:?} not found (the model has: {})",
                if known.is_empty() {
                    "no applications".into()
                } else {
                    known.join(", ")
                }
            )
        }
    }
}

pub fn require_unit<'a>(w: &'a World, unit: &str) -> Result<&'a Unit> {
    if parse_unit(unit).is_none() {
        usage!("{unit:?} is not a unit name (expected <application>/<number>)");
    }
    match w.unit(unit) {
        Some(u) => Ok(u),
        None => fail!(
            "unit {unit:?} not found (units: {})",
            w.unit_names().join(", ")
        ),
    }
}

/// The address of machine `m` (that of a unit on it), if a unit is on it.
fn machine_host(world: &World, m: u32) -> Option<u32> {
    world
        .apps
        .values()
        .flat_map(|a| a.units.values())
        .find(|u| u.machine == m)
        .map(|u| u.host)
}

/// The relations of `app` on `endpoint`.
pub fn relations_on(w: &World, app: &str, endpoint: &str) -> Vec<u64> {
    w.relations
        .values()
        .filter(|r| r.end(app).is_some_and(|e| e.endpoint == endpoint))
        .map(|r| r.id)
        .collect()
}

fn split_app_ep(s: &str) -> (String, Option<String>) {
    match s.split_once(':') {
        Some((a, e)) => (a.to_string(), Some(e.to_string())),
        None => (s.to_string(), None),
    }
}

// ---------------------------------------------------------------- units

/// Units to place: `n` new machines, or the first on machine `to` (shared with the units
/// already there: the same address and one machine lock for all of them).
fn check_placement(w: &World, n: u32, to: Option<u32>) -> Result<()> {
    if let Some(m) = to {
        if machine_host(w, m).is_none() {
            fail!("machine {m} not found (--to takes a machine that hosts a unit)");
        }
    }
    let new_hosts = n.saturating_sub(u32::from(to.is_some()));
    if w.next_host + new_hosts > 255 {
        fail!("not enough addresses left in this model's range for {n} more units");
    }
    Ok(())
}

/// A new unit of `app` (checked by the caller: the app exists, addresses are left).
fn new_unit(world: &mut World, paths: &Paths, app: &str, to: Option<u32>) -> Result<String> {
    let (host, machine) = match to.and_then(|m| machine_host(world, m).map(|h| (h, m))) {
        Some(hm) => hm,
        None => {
            let host = world.take_host()?;
            let machine = world.next_machine;
            world.next_machine += 1;
            (host, machine)
        }
    };
    let Some(a) = world.apps.get_mut(app) else {
        fail!("application {app:?} not found");
    };
    let num = a.next_unit;
    a.next_unit += 1;
    let name = format!("{app}/{num}");
    let stub = a.stub;
    let revision = a.revision;
    let storage_meta = a.meta.storage.clone();
    let mut storage = Vec::new();
    for (sname, sm) in &storage_meta {
        let k = world.next_storage.entry(sname.clone()).or_insert(0);
        let id = format!("{sname}/{k}");
        *k += 1;
        let location = paths.storage_dir(&name, &id);
        fs::create_dir_all(&location).map_err(|e| SimError::io("cannot create", &location, e))?;
        storage.push(StorageInstance {
            id,
            name: sname.clone(),
            kind: sm.kind.clone(),
            location: location.to_string_lossy().into_owned(),
            attached: false,
        });
    }
    if !stub {
        let charm_dir = paths.charm_dir(&name);
        let _ = fs::remove_dir_all(&charm_dir);
        charm::copy_dir(&paths.app_charm(app), &charm_dir)?;
        // What was deployed, so that an upgrade knows which files are the charm's own.
        let manifest = charm::manifest(&paths.app_charm(app))?;
        charm::write_manifest(&paths.charm_manifest(&name), &manifest)?;
    }
    let wl = paths.workload_dir(&name);
    fs::create_dir_all(&wl).map_err(|e| SimError::io("cannot create", &wl, e))?;
    let unit = Unit {
        name: name.clone(),
        num,
        host,
        machine,
        life: Life::Alive,
        workload: if stub {
            Status::new("active", "")
        } else {
            Status::new("waiting", "waiting for machine")
        },
        agent: if stub {
            Status::new("idle", "")
        } else {
            Status::new("allocating", "")
        },
        status_set: false,
        state: Default::default(),
        ports: Default::default(),
        storage,
        local: Local {
            charm_revision: revision,
            ..Local::default()
        },
    };
    if let Some(a) = world.apps.get_mut(app) {
        a.units.insert(num, unit);
    }
    Ok(name)
}

/// A peer relation for every peer endpoint of the application's charm that has none yet (all of
/// them at deploy; those a refreshed charm adds).
fn add_peer_relations(w: &mut World, app: &str) {
    let Some(a) = w.apps.get(app) else {
        return;
    };
    let peers: Vec<(String, String)> = a
        .meta
        .endpoints
        .iter()
        .filter(|(_, e)| e.role == Role::Peer)
        .map(|(n, e)| (n.clone(), e.interface.clone()))
        .collect();
    let peers: Vec<(String, String)> = peers
        .into_iter()
        .filter(|(ep, _)| relations_on(w, app, ep).is_empty())
        .collect();
    for (ep, iface) in peers {
        let id = w.next_relation;
        w.next_relation += 1;
        w.relations.insert(
            id,
            Relation {
                id,
                interface: iface,
                ends: vec![RelEnd {
                    app: app.to_string(),
                    endpoint: ep,
                    role: Role::Peer,
                }],
                life: Life::Alive,
                app_bags: BTreeMap::new(),
                unit_bags: BTreeMap::new(),
            },
        );
    }
}

// ---------------------------------------------------------------- deploy

/// A charm application to deploy (its charm already unpacked and read).
pub struct Deploy {
    pub app: String,
    pub meta: Meta,
    pub config: BTreeMap<String, Value>,
    pub n: u32,
    pub to: Option<u32>,
    /// Chooses the initial leader (the first agent to claim the lease); none: unit 0.
    pub seed: Option<u64>,
}

pub fn check_deploy(w: &World, app: &str, n: u32, to: Option<u32>) -> Result<()> {
    if !valid_app_name(app) {
        usage!("{app:?} is not a valid application name (lowercase letters, digits, hyphens)");
    }
    if w.apps.contains_key(app) {
        fail!("application {app:?} already exists; choose another name: jujusim deploy <charm> <name>");
    }
    check_placement(w, n, to)
}

/// Deploys `d` with the charm unpacked at `staged`; returns the new units.
pub fn deploy(w: &mut World, paths: &Paths, staged: &Path, d: Deploy) -> Result<Vec<String>> {
    check_deploy(w, &d.app, d.n, d.to)?;
    let app = d.app;
    let dest = paths.app_charm(&app);
    let _ = fs::remove_dir_all(&dest);
    if let Some(p) = dest.parent() {
        fs::create_dir_all(p).map_err(|e| SimError::io("cannot create", p, e))?;
    }
    charm::copy_dir(staged, &dest)?;
    w.apps
        .insert(app.clone(), App::new(&app, d.meta, false, d.config));
    let mut units = Vec::new();
    for i in 0..d.n {
        units.push(new_unit(w, paths, &app, d.to.filter(|_| i == 0))?);
    }
    // The first agent to claim the lease leads (not always /0): the seed chooses.
    let mut rng = d.seed.map(|seed| {
        Rng::new(
            seed ^ app.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
            }),
        )
    });
    scheduler::ensure_leaders(w, &mut rng);
    add_peer_relations(w, &app);
    Ok(units)
}

pub fn check_deploy_stub(w: &World, app: &str) -> Result<()> {
    if !valid_app_name(app) {
        usage!("{app:?} is not a valid application name");
    }
    if w.apps.contains_key(app) {
        fail!("application {app:?} already exists");
    }
    check_placement(w, 1, None)
}

/// A stub application: one unit whose relation data the test sets from outside.
pub fn deploy_stub(
    w: &mut World,
    paths: &Paths,
    app: &str,
    endpoint: &str,
    role: Role,
    interface: &str,
) -> Result<String> {
    check_deploy_stub(w, app)?;
    w.apps.insert(
        app.to_string(),
        App::new(
            app,
            Meta::stub(app, endpoint, role, interface),
            true,
            BTreeMap::new(),
        ),
    );
    let unit = new_unit(w, paths, app, None)?;
    if let Some(a) = w.apps.get_mut(app) {
        a.leader = Some(unit.clone());
    }
    Ok(unit)
}

// ---------------------------------------------------------------- refresh

/// What `refresh` does to an application's settings and revision.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshPlan {
    /// The application's revision after the refresh.
    pub revision: u32,
    /// The operator's settings the new charm keeps (converted to its option types).
    pub config: BTreeMap<String, Value>,
    /// Settings the new charm cannot take (its option is gone, or the value does not fit the
    /// option's new type): dropped, as Juju's `FilterSettings` drops them; the option, if it
    /// still exists, goes back to its default.
    pub dropped: Vec<String>,
}

/// Whether `app` can move to the charm `meta` (Juju's local charm refresher and
/// `Application.SetCharm`): same charm name, every relation still implemented (endpoint, role
/// and interface), no storage in use removed or changed in kind. Returns what will change.
pub fn check_refresh(w: &World, app: &str, meta: &Meta) -> Result<RefreshPlan> {
    let ap = require_app(w, app)?;
    if ap.stub {
        fail!("{app:?} is a stub application: it has no charm to refresh");
    }
    if ap.life != Life::Alive {
        fail!("application {app:?} is being removed");
    }
    if meta.name != ap.meta.name {
        fail!("cannot refresh {:?} to {:?}", ap.meta.name, meta.name);
    }
    let revision = ap.revision + 1;
    let url = ap.charm_url(revision);
    for r in w.relations.values().filter(|r| r.involves(app)) {
        let Some(end) = r.end(app) else { continue };
        let implemented = meta
            .endpoints
            .get(&end.endpoint)
            .is_some_and(|e| e.role == end.role && e.interface == r.interface);
        // Juju lets a single unit's peer relation go (a unit related only to itself).
        let alone = r.is_peer() && ap.units.len() == 1;
        if !implemented && !alone {
            fail!(
                "cannot upgrade application {app:?} to charm {url:?}: would break relation {:?}",
                r.key()
            );
        }
    }
    for (name, old) in &ap.meta.storage {
        match meta.storage.get(name) {
            Some(new) if new.kind != old.kind => fail!(
                "cannot upgrade application {app:?} to charm {url:?}: existing storage {name:?} type changed from {:?} to {:?}",
                old.kind,
                new.kind
            ),
            None if ap
                .units
                .values()
                .any(|u| u.storage.iter().any(|s| &s.name == name)) =>
            {
                fail!("cannot upgrade application {app:?} to charm {url:?}: in-use storage {name:?} removed")
            }
            _ => {}
        }
    }
    let mut config = BTreeMap::new();
    let mut dropped = Vec::new();
    for (k, v) in &ap.config {
        match meta.options.get(k) {
            None => dropped.push(format!("{k}={v}: the new charm has no option {k:?}")),
            Some(o) => match schema::coerce_config_value(o, v) {
                Some(v) => {
                    config.insert(k.clone(), v);
                }
                None => dropped.push(format!(
                    "{k}={v}: option {k:?} is of type {} in the new charm (back to its default)",
                    o.kind
                )),
            },
        }
    }
    Ok(RefreshPlan {
        revision,
        config,
        dropped,
    })
}

/// Puts the charm unpacked at `staged` in place of the application's charm: copied beside it
/// first, then swapped in by renames (a failed copy leaves the old charm as it was).
fn stage_app_charm(paths: &Paths, app: &str, staged: &Path) -> Result<()> {
    let dest = paths.app_charm(app);
    let parent = paths.root.join("charms");
    // Application names never start with a dot: these cannot be another application's charm.
    let new = parent.join(format!(".{app}.new"));
    let old = parent.join(format!(".{app}.old"));
    let _ = fs::remove_dir_all(&new);
    let _ = fs::remove_dir_all(&old);
    charm::copy_dir(staged, &new)?;
    fs::rename(&dest, &old).map_err(|e| SimError::io("cannot move", &dest, e))?;
    if let Err(e) = fs::rename(&new, &dest) {
        let _ = fs::rename(&old, &dest);
        return Err(SimError::io("cannot move", &new, e));
    }
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// `refresh`: the application moves to the charm unpacked at `staged` (Juju's `SetCharm`): a
/// new revision, the new metadata (endpoints, options, actions), the settings the new charm
/// keeps, a peer relation for each new peer endpoint. Units move one by one, as their agents
/// get to it (the scheduler: deploy the files, then `upgrade-charm`); with `force_units`, also
/// units in hook error. Leadership does not change.
pub fn refresh(
    w: &mut World,
    paths: &Paths,
    staged: &Path,
    app: &str,
    meta: Meta,
    force_units: bool,
) -> Result<RefreshPlan> {
    let plan = check_refresh(w, app, &meta)?;
    stage_app_charm(paths, app, staged)?;
    let Some(ap) = w.apps.get_mut(app) else {
        fail!("application {app:?} not found");
    };
    // Units still on the old charm know only its endpoints until they upgrade.
    let old = ap.revision;
    let old_endpoints: Vec<String> = ap.meta.endpoints.keys().cloned().collect();
    ap.revisions.entry(old).or_insert(old_endpoints);
    ap.meta = meta;
    ap.config = plan.config.clone();
    ap.revision = plan.revision;
    ap.force_units_revision = force_units.then_some(plan.revision);
    let running: std::collections::BTreeSet<u32> =
        ap.units.values().map(|u| u.local.charm_revision).collect();
    let current = ap.revision;
    ap.revisions
        .retain(|r, _| *r != current && running.contains(r));
    add_peer_relations(w, app);
    Ok(plan)
}

// ---------------------------------------------------------------- scale

pub fn check_add_units(w: &World, app: &str, n: u32, to: Option<u32>) -> Result<()> {
    let ap = require_app(w, app)?;
    if ap.stub {
        fail!("{app:?} is a stub application: stubs have exactly one unit");
    }
    if ap.life != Life::Alive {
        fail!("application {app:?} is being removed");
    }
    check_placement(w, n, to)
}

pub fn add_units(
    w: &mut World,
    paths: &Paths,
    app: &str,
    n: u32,
    to: Option<u32>,
) -> Result<Vec<String>> {
    check_add_units(w, app, n, to)?;
    let mut added = Vec::new();
    for i in 0..n {
        added.push(new_unit(w, paths, app, to.filter(|_| i == 0))?);
    }
    Ok(added)
}

pub fn check_remove_units(w: &World, units: &[String]) -> Result<()> {
    for u in units {
        if require_unit(w, u)?.life != Life::Alive {
            fail!("unit {u:?} is already being removed");
        }
    }
    Ok(())
}

/// Marks the units dying (their agents then run the departure hooks); stubs go at once.
pub fn remove_units(w: &mut World, paths: &Paths, units: &[String]) -> Result<()> {
    check_remove_units(w, units)?;
    for u in units {
        let stub = w.is_stub(app_of(u));
        if let Some(unit) = w.unit_mut(u) {
            unit.life = Life::Dying;
        }
        if stub {
            lifecycle::bury(w, paths, u);
        }
    }
    Ok(())
}

pub fn check_remove_application(w: &World, app: &str) -> Result<()> {
    if require_app(w, app)?.life != Life::Alive {
        fail!("application {app:?} is already being removed");
    }
    Ok(())
}

pub fn remove_application(w: &mut World, paths: &Paths, app: &str) -> Result<()> {
    check_remove_application(w, app)?;
    let stub = w.is_stub(app);
    if let Some(ap) = w.apps.get_mut(app) {
        ap.life = Life::Dying;
        for u in ap.units.values_mut() {
            u.life = Life::Dying;
        }
    }
    for r in w.relations.values_mut() {
        if r.involves(app) {
            r.life = Life::Dying;
        }
    }
    if stub {
        let units: Vec<String> = w
            .apps
            .get(app)
            .map(|a| a.units.values().map(|u| u.name.clone()).collect())
            .unwrap_or_default();
        for u in units {
            lifecycle::bury(w, paths, &u);
        }
    }
    lifecycle::gc(w);
    Ok(())
}

// ---------------------------------------------------------------- relations

/// The one endpoint pair that can be related (reference: `juju integrate`).
fn resolve_pair(w: &World, x: &str, y: &str) -> Result<(RelEnd, RelEnd, String)> {
    let (ax, ex) = split_app_ep(x);
    let (ay, ey) = split_app_ep(y);
    let appx = require_app(w, &ax)?;
    let appy = require_app(w, &ay)?;
    if ax == ay {
        fail!("cannot relate application {ax:?} to itself (peer relations exist from deploy)");
    }
    for (app, ep) in [(appx, &ex), (appy, &ey)] {
        if let Some(ep) = ep {
            if !app.meta.endpoints.contains_key(ep) {
                let eps: Vec<&str> = app.meta.endpoints.keys().map(String::as_str).collect();
                fail!(
                    "application {:?} has no endpoint {ep:?} (endpoints: {})",
                    app.name,
                    eps.join(", ")
                );
            }
        }
    }
    let mut found = Vec::new();
    for (nx, epx) in &appx.meta.endpoints {
        if ex.as_ref().is_some_and(|e| e != nx) {
            continue;
        }
        for (ny, epy) in &appy.meta.endpoints {
            if ey.as_ref().is_some_and(|e| e != ny) {
                continue;
            }
            let ok_roles = matches!(
                (epx.role, epy.role),
                (Role::Provider, Role::Requirer) | (Role::Requirer, Role::Provider)
            );
            if ok_roles && epx.interface == epy.interface {
                found.push((
                    RelEnd {
                        app: ax.clone(),
                        endpoint: nx.clone(),
                        role: epx.role,
                    },
                    RelEnd {
                        app: ay.clone(),
                        endpoint: ny.clone(),
                        role: epy.role,
                    },
                    epx.interface.clone(),
                ));
            }
        }
    }
    match found.len() {
        0 => fail!(
            "no relations found between {x:?} and {y:?}: no provides/requires endpoints with a common interface"
        ),
        1 => Ok(found.remove(0)),
        _ => {
            let opts: Vec<String> = found
                .iter()
                .map(|(p, q, _)| format!("\"{}:{} {}:{}\"", p.app, p.endpoint, q.app, q.endpoint))
                .collect();
            fail!(
                "ambiguous relation: {x:?} {y:?} could refer to {}; name the endpoints",
                opts.join("; ")
            )
        }
    }
}

/// The relation `integrate x y` would create: its two ends and interface.
pub fn check_integrate(w: &World, x: &str, y: &str) -> Result<(RelEnd, RelEnd, String)> {
    let (ex, ey, iface) = resolve_pair(w, x, y)?;
    for e in [&ex, &ey] {
        if w.apps.get(&e.app).map(|a| a.life) != Some(Life::Alive) {
            fail!("application {:?} is being removed", e.app);
        }
    }
    let same = w
        .relations
        .values()
        .any(|r| r.ends.len() == 2 && r.ends.contains(&ex) && r.ends.contains(&ey));
    if same {
        fail!(
            "relation {}:{} {}:{} already exists",
            ex.app,
            ex.endpoint,
            ey.app,
            ey.endpoint
        );
    }
    for e in [&ex, &ey] {
        let limit = w
            .apps
            .get(&e.app)
            .and_then(|a| a.meta.endpoints.get(&e.endpoint))
            .and_then(|m| m.limit);
        if let Some(l) = limit {
            let n = w
                .relations
                .values()
                .filter(|r| r.life == Life::Alive && r.ends.contains(e))
                .count() as u32;
            if n >= l {
                fail!(
                    "establishing a new relation for {}:{} would exceed its maximum relation limit of {l}",
                    e.app,
                    e.endpoint
                );
            }
        }
    }
    Ok((ex, ey, iface))
}

/// Relates `x` and `y`; returns the new relation's id.
pub fn integrate(w: &mut World, x: &str, y: &str) -> Result<u64> {
    let (ex, ey, iface) = check_integrate(w, x, y)?;
    let id = w.next_relation;
    w.next_relation += 1;
    let mut ends = vec![ex, ey];
    ends.sort_by_key(|e| (e.role != Role::Provider, e.app.clone()));
    w.relations.insert(
        id,
        Relation {
            id,
            interface: iface,
            ends: ends.clone(),
            life: Life::Alive,
            app_bags: BTreeMap::new(),
            unit_bags: BTreeMap::new(),
        },
    );
    // Stub units are in scope at once.
    for e in &ends {
        if w.is_stub(&e.app) {
            let units: Vec<String> = w
                .apps
                .get(&e.app)
                .map(|a| a.units.values().map(|u| u.name.clone()).collect())
                .unwrap_or_default();
            for u in units {
                let addr = w.unit_address(&u).unwrap_or_default();
                lifecycle::enter_scope(w, id, &u, &addr);
            }
        }
    }
    Ok(id)
}

/// The one live relation between `x` and `y`.
pub fn check_remove_relation(w: &World, x: &str, y: &str) -> Result<u64> {
    let (ax, ex) = split_app_ep(x);
    let (ay, ey) = split_app_ep(y);
    require_app(w, &ax)?;
    require_app(w, &ay)?;
    let matches = |r: &Relation, app: &str, ep: &Option<String>| {
        r.end(app)
            .is_some_and(|e| ep.as_ref().is_none_or(|ep| *ep == e.endpoint))
    };
    let found: Vec<u64> = w
        .relations
        .values()
        .filter(|r| r.life == Life::Alive && !r.is_peer())
        .filter(|r| matches(r, &ax, &ex) && matches(r, &ay, &ey))
        .map(|r| r.id)
        .collect();
    match found.as_slice() {
        [id] => Ok(*id),
        [] => fail!("no relation between {x:?} and {y:?}"),
        _ => fail!("ambiguous: several relations between {x:?} and {y:?}; name the endpoints"),
    }
}

/// Marks the relation dying; returns its id.
pub fn remove_relation(w: &mut World, x: &str, y: &str) -> Result<u64> {
    let id = check_remove_relation(w, x, y)?;
    if let Some(r) = w.relations.get_mut(&id) {
        r.life = Life::Dying;
    }
    lifecycle::gc(w);
    Ok(id)
}

/// The stub application `target` (a stub app or unit) and its live relations on `endpoint`.
pub fn check_set_data(w: &World, target: &str, endpoint: &str) -> Result<(String, Vec<u64>)> {
    let app = if parse_unit(target).is_some() {
        require_unit(w, target)?;
        app_of(target).to_string()
    } else {
        require_app(w, target)?;
        target.to_string()
    };
    if !w.is_stub(&app) {
        fail!(
            "{app:?} runs a charm: only stub applications (deploy-stub) have their data set from outside"
        );
    }
    let ap = &w.apps[&app];
    if !ap.meta.endpoints.contains_key(endpoint) {
        fail!("stub {app:?} has no endpoint {endpoint:?}");
    }
    let rels: Vec<u64> = relations_on(w, &app, endpoint)
        .into_iter()
        .filter(|id| w.relations[id].life == Life::Alive)
        .collect();
    if rels.is_empty() {
        fail!("{app:?} has no relation on endpoint {endpoint:?}: integrate it first");
    }
    Ok((app, rels))
}

/// Sets (or, with an empty value, deletes) keys in a stub's app bag (`target` an app) or unit
/// bag (`target` a unit) on every relation of `endpoint`; bags that change get a new version.
pub fn set_data(
    w: &mut World,
    target: &str,
    endpoint: &str,
    kv: &[(String, String)],
) -> Result<()> {
    let (app, rels) = check_set_data(w, target, endpoint)?;
    let unit_bag = parse_unit(target).is_some();
    for id in rels {
        let Some(r) = w.relations.get_mut(&id) else {
            continue;
        };
        let bag: &mut Settings = if unit_bag {
            r.unit_bags.entry(target.to_string()).or_default()
        } else {
            r.app_bags.entry(app.clone()).or_default()
        };
        let before = bag.data.clone();
        for (k, v) in kv {
            if v.is_empty() {
                bag.data.remove(k);
            } else {
                bag.data.insert(k.clone(), v.clone());
            }
        }
        if bag.data != before {
            bag.version += 1;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- config, actions, errors

/// The settings `config app k=v... --reset k...` would apply: values typed by the schema.
pub fn check_config(
    w: &World,
    app: &str,
    sets: &[String],
    resets: &[String],
) -> Result<BTreeMap<String, Value>> {
    let ap = require_app(w, app)?;
    if ap.stub {
        fail!("{app:?} is a stub application: it has no configuration");
    }
    let parsed = schema::parse_config_pairs(&ap.meta.options, sets)?;
    for r in resets {
        if !ap.meta.options.contains_key(r) {
            fail!("unknown option {r:?}");
        }
    }
    Ok(parsed)
}

pub fn set_config(w: &mut World, app: &str, sets: &[String], resets: &[String]) -> Result<()> {
    let parsed = check_config(w, app, sets, resets)?;
    if let Some(ap) = w.apps.get_mut(app) {
        for r in resets {
            ap.config.remove(r);
        }
        ap.config.extend(parsed);
    }
    Ok(())
}

/// The unit that runs `action` for `target` (a unit or `<app>/leader`) and its validated
/// parameters.
pub fn check_action(
    w: &World,
    target: &str,
    action: &str,
    params: &Map<String, Value>,
) -> Result<(String, Map<String, Value>)> {
    let unit = match target.strip_suffix("/leader") {
        Some(app) => {
            let ap = require_app(w, app)?;
            match &ap.leader {
                Some(l) => l.clone(),
                None => fail!("application {app:?} has no leader"),
            }
        }
        None => {
            require_unit(w, target)?;
            target.to_string()
        }
    };
    let ap = &w.apps[app_of(&unit)];
    let Some(spec) = ap.meta.actions.get(action) else {
        fail!("action {action:?} not defined on unit {unit:?}");
    };
    let p = schema::validate_action(action, spec, params.clone())?;
    Ok((unit, p))
}

/// Queues the action; returns its id.
pub fn queue_action(
    w: &mut World,
    target: &str,
    action: &str,
    params: &Map<String, Value>,
) -> Result<u64> {
    let (unit, p) = check_action(w, target, action, params)?;
    let id = w.next_action;
    w.next_action += 1;
    w.actions.insert(
        id,
        Action {
            id,
            unit,
            name: action.to_string(),
            params: Value::Object(p),
            status: "pending".into(),
            results: Map::new(),
            message: String::new(),
            log: Vec::new(),
        },
    );
    Ok(id)
}

pub fn check_resolve(w: &World, unit: &str) -> Result<()> {
    if require_unit(w, unit)?.local.error.is_none() {
        fail!("unit {unit:?} is not in an error state");
    }
    Ok(())
}

/// `resolve`: the failed hook is retried, or with `no_retry` skipped (its local-state change is
/// committed without running it).
pub fn resolve(w: &mut World, paths: &Paths, unit: &str, no_retry: bool) -> Result<()> {
    check_resolve(w, unit)?;
    let mut skipped = None;
    if let Some(u) = w.unit_mut(unit) {
        if no_retry {
            skipped = u.local.error.take().map(|e| e.hook);
            u.agent = Status::new("idle", "");
        } else if let Some(e) = &mut u.local.error {
            e.retry = true;
        }
    }
    if let Some(spec) = skipped {
        lifecycle::skip(w, paths, unit, &spec);
    }
    Ok(())
}

/// The leader's agent cannot renew its lease; another alive unit claims it. Returns the new
/// leader, if any unit can lead.
pub fn revoke_leader(w: &mut World, app: &str, rng: &mut Option<Rng>) -> Result<Option<String>> {
    if require_app(w, app)?.stub {
        fail!("{app:?} is a stub application: it has no agents");
    }
    Ok(scheduler::revoke_leader(w, app, rng))
}

/// `k=v` pairs (an empty value deletes the key).
pub fn parse_pairs(pairs: &[String]) -> Result<Vec<(String, String)>> {
    let mut kv = Vec::new();
    for p in pairs {
        match util::split_kv(p) {
            Some((k, v)) => kv.push((k.to_string(), v.to_string())),
            None => usage!("expected key=value, got {p:?}"),
        }
    }
    Ok(kv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, endpoints: &str) -> Meta {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("metadata.yaml"),
            format!("name: {name}\n{endpoints}"),
        )
        .unwrap();
        Meta::read(dir.path()).unwrap()
    }

    /// A world with `zk` (3 units, a `zookeeper` provider endpoint, a peer) and a stub client.
    fn world(paths: &Paths) -> World {
        let mut w = World::new("t", (1, 2));
        let staged = tempfile::tempdir().unwrap();
        let m = meta(
            "zk",
            "provides:\n  zookeeper:\n    interface: zookeeper\n  other:\n    interface: zookeeper\npeers:\n  cluster:\n    interface: cluster\n",
        );
        let d = Deploy {
            app: "zk".into(),
            meta: m,
            config: BTreeMap::new(),
            n: 3,
            to: None,
            seed: None,
        };
        deploy(&mut w, paths, staged.path(), d).unwrap();
        deploy_stub(
            &mut w,
            paths,
            "client",
            "zookeeper",
            Role::Requirer,
            "zookeeper",
        )
        .unwrap();
        w
    }

    fn snapshot(w: &World) -> String {
        serde_json::to_string(w).unwrap()
    }

    #[test]
    fn bad_inputs_change_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path().join("model"));
        let mut w = world(&paths);
        let before = snapshot(&w);
        let charm_before = charm::manifest(&paths.app_charm("zk")).unwrap();
        let staged = tempfile::tempdir().unwrap();
        std::fs::write(staged.path().join("new-file"), "x").unwrap();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let zk = "provides:\n  zookeeper:\n    interface: zookeeper\npeers:\n  cluster:\n    interface: cluster\n";
        let mut refresh_to = |app: &str, m: Meta| {
            refresh(&mut w, &paths, staged.path(), app, m, false)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let said = [
            refresh_to("zk", meta("other", zk)),
            refresh_to("nope", meta("zk", zk)),
            refresh_to("client", meta("client", zk)),
            // The peer relation of three units: its endpoint gone, or its interface changed.
            refresh_to("zk", meta("zk", "provides:\n  zookeeper:\n    interface: zookeeper\n")),
            refresh_to(
                "zk",
                meta("zk", "provides:\n  zookeeper:\n    interface: zookeeper\npeers:\n  cluster:\n    interface: c2\n"),
            ),
        ];
        assert_eq!(said[0], "cannot refresh \"zk\" to \"other\"");
        assert!(
            said[1].contains("not found") && said[2].contains("stub"),
            "{said:?}"
        );
        for s in &said[3..] {
            assert_eq!(
                s,
                "cannot upgrade application \"zk\" to charm \"local:zk-1\": would break relation \"zk:cluster\""
            );
        }
        assert_eq!(
            charm::manifest(&paths.app_charm("zk")).unwrap(),
            charm_before
        );
        let errors = [
            add_units(&mut w, &paths, "nope", 1, None).err(),
            add_units(&mut w, &paths, "zk", 1, Some(99)).err(),
            add_units(&mut w, &paths, "zk", 300, None).err(),
            add_units(&mut w, &paths, "client", 1, None).err(),
            remove_units(&mut w, &paths, &s(&["zk/0", "zk/9"])).err(),
            remove_units(&mut w, &paths, &s(&["zk"])).err(),
            remove_application(&mut w, &paths, "nope").err(),
            integrate(&mut w, "zk", "client").err(),
            integrate(&mut w, "zk", "zk").err(),
            integrate(&mut w, "zk:nope", "client").err(),
            remove_relation(&mut w, "zk", "client").err(),
            set_data(&mut w, "zk", "zookeeper", &[]).err(),
            set_data(&mut w, "client", "zookeeper", &[]).err(),
            set_config(&mut w, "zk", &s(&["nope=1"]), &[]).err(),
            set_config(&mut w, "zk", &[], &s(&["nope"])).err(),
            set_config(&mut w, "client", &[], &[]).err(),
            queue_action(&mut w, "zk/0", "nope", &Map::new()).err(),
            queue_action(&mut w, "nope/leader", "x", &Map::new()).err(),
            resolve(&mut w, &paths, "zk/1", false).err(),
            revoke_leader(&mut w, "client", &mut None).err(),
        ];
        for (i, e) in errors.iter().enumerate() {
            assert!(e.is_some(), "case {i} should have failed");
        }
        assert_eq!(snapshot(&w), before, "a failed operation changed the world");
    }

    #[test]
    fn refresh_swaps_the_charm_and_keeps_what_fits() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path().join("model"));
        let mut w = world(&paths);
        let opts =
            "options:\n  a:\n    type: int\n  b:\n    type: string\n  c:\n    type: string\n";
        let with_config = |m: &mut Meta, yaml: &str| {
            let dir = tempfile::tempdir().unwrap();
            fs::write(
                dir.path().join("metadata.yaml"),
                format!("name: {}\n", m.name),
            )
            .unwrap();
            fs::write(dir.path().join("config.yaml"), yaml).unwrap();
            m.options = Meta::read(dir.path()).unwrap().options;
        };
        if let Some(a) = w.apps.get_mut("zk") {
            with_config(&mut a.meta, opts);
            a.config = [
                ("a".to_string(), serde_json::json!(1)),
                ("b".to_string(), serde_json::json!("x")),
                ("c".to_string(), serde_json::json!("7")),
            ]
            .into();
        }
        let mut m = meta(
            "zk",
            "provides:\n  zookeeper:\n    interface: zookeeper\npeers:\n  cluster:\n    interface: cluster\n  more:\n    interface: more\n",
        );
        // a: now a string (an int does not fit); b: gone; c: now an int ("7" converts).
        with_config(
            &mut m,
            "options:\n  a:\n    type: string\n  c:\n    type: int\n  d:\n    type: int\n    default: 4\n",
        );
        let staged = tempfile::tempdir().unwrap();
        fs::write(staged.path().join("v1"), "").unwrap();
        let leader = w.apps["zk"].leader.clone();
        // A related endpoint must stay.
        integrate(&mut w, "zk:other", "client").unwrap();
        let before = snapshot(&w);
        assert_eq!(
            refresh(&mut w, &paths, staged.path(), "zk", m.clone(), true)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            "cannot upgrade application \"zk\" to charm \"local:zk-1\": would break relation \"zk:other client:zookeeper\""
        );
        assert_eq!(snapshot(&w), before);
        remove_relation(&mut w, "zk", "client").unwrap();
        w.relations.retain(|_, r| r.life == Life::Alive);
        let plan = refresh(&mut w, &paths, staged.path(), "zk", m, true).unwrap();
        assert_eq!(plan.revision, 1);
        assert_eq!(plan.dropped.len(), 2, "{:?}", plan.dropped);
        let a = &w.apps["zk"];
        assert_eq!((a.revision, a.force_units_revision), (1, Some(1)));
        assert_eq!(a.config, [("c".to_string(), serde_json::json!(7))].into());
        assert_eq!(a.effective_config()["d"], serde_json::json!(4));
        assert_eq!(a.leader, leader);
        // The units still run revision 0, whose endpoints are remembered.
        assert!(a.declares(0, "other") && !a.declares(0, "more"));
        assert!(a.declares(1, "more") && !a.declares(1, "other"));
        assert!(a.upgrade_due(&a.units[&0]));
        // The new peer endpoint has its relation; the old peer relation stays the only one on
        // its endpoint.
        assert_eq!(relations_on(&w, "zk", "more").len(), 1);
        assert_eq!(relations_on(&w, "zk", "cluster").len(), 1);
        assert!(paths.app_charm("zk").join("v1").is_file());
        // A unit added now runs the new charm at once.
        let added = add_units(&mut w, &paths, "zk", 1, None).unwrap();
        let u = w.unit(&added[0]).unwrap();
        assert_eq!(u.local.charm_revision, 1);
        assert!(paths.charm_dir(&added[0]).join("v1").is_file());
        assert_eq!(
            charm::read_manifest(&paths.charm_manifest(&added[0])).unwrap(),
            Some(vec!["v1".to_string()])
        );
    }

    #[test]
    fn operations_do_what_they_say() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path().join("model"));
        let mut w = world(&paths);
        assert_eq!(w.apps["zk"].leader.as_deref(), Some("zk/0"));
        assert_eq!(w.relations.len(), 1, "the peer relation");
        let id = integrate(&mut w, "zk:zookeeper", "client").unwrap();
        assert!(
            w.in_scope(&w.relations[&id], "client/0"),
            "stubs join at once"
        );
        assert!(
            integrate(&mut w, "zk:zookeeper", "client").is_err(),
            "twice"
        );
        set_data(
            &mut w,
            "client",
            "zookeeper",
            &[("database".into(), "/a".into())],
        )
        .unwrap();
        assert_eq!(w.relations[&id].app_bags["client"].data["database"], "/a");
        let placed = add_units(&mut w, &paths, "zk", 2, Some(0)).unwrap();
        assert_eq!(placed, ["zk/3", "zk/4"]);
        let (m3, m4) = (&w.apps["zk"].units[&3], &w.apps["zk"].units[&4]);
        assert_eq!((m3.machine, m3.host), (0, w.apps["zk"].units[&0].host));
        assert_ne!(m4.machine, 0);
        remove_units(&mut w, &paths, &["zk/3".to_string()]).unwrap();
        assert_eq!(w.apps["zk"].units[&3].life, Life::Dying);
        assert_eq!(remove_relation(&mut w, "zk", "client").unwrap(), id);
    }
}
