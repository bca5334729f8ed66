//! What read-only commands print: `status`, `show-unit`, `show-data`, `log`, action results.
//! Pure functions of the world (or the timeline) to JSON values and tables.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::fail;
use crate::model::{app_of, parse_unit, Action, App, Life, Paths, Relation, Status, Unit, World};
use crate::ops;
use crate::scheduler;
use crate::timeline;
use crate::util;

pub fn action_json(a: &Action) -> Value {
    json!({
        "id": a.id.to_string(),
        "status": a.status,
        "results": a.results,
        "message": a.message,
        "unit": a.unit,
        "log": a.log,
    })
}

pub fn display_status(u: &Unit) -> (Status, Status) {
    match &u.local.error {
        Some(e) => (
            Status {
                status: "error".into(),
                message: format!("hook failed: {:?}", e.hook.name()),
                since: u.agent.since.clone(),
            },
            Status {
                status: "idle".into(),
                message: String::new(),
                since: u.agent.since.clone(),
            },
        ),
        None => {
            let mut agent = u.agent.clone();
            if u.life != Life::Alive {
                agent.status = "executing".into();
                agent.message = "dying".into();
            }
            (u.workload.clone(), agent)
        }
    }
}

fn app_status(a: &App) -> Status {
    if let Some(s) = &a.status {
        return s.clone();
    }
    let rank = |s: &str| match s {
        "error" => 0,
        "blocked" => 1,
        "maintenance" => 2,
        "waiting" => 3,
        "active" => 4,
        _ => 5,
    };
    a.units
        .values()
        .map(|u| display_status(u).0)
        .min_by_key(|s| rank(&s.status))
        .unwrap_or_else(|| Status::new("unknown", ""))
}

pub fn st_json(s: &Status) -> Value {
    json!({"current": s.status, "message": s.message, "since": s.since})
}

pub fn status_json(w: &World) -> Value {
    let mut apps = Map::new();
    for a in w.apps.values() {
        let mut units = Map::new();
        for u in a.units.values() {
            let (wl, ag) = display_status(u);
            let ports: Vec<String> = u.ports.iter().map(|p| p.range.clone()).collect();
            let mut unit = json!({
                "workload-status": st_json(&wl),
                "juju-status": st_json(&ag),
                "leader": w.is_leader(&u.name),
                "machine": u.machine.to_string(),
                "public-address": w.address(u.host),
                "open-ports": ports,
                "life": if u.life == Life::Alive { "alive" } else { "dying" },
            });
            if a.upgrade_due(u) {
                unit["upgrading-from"] = json!(a.charm_url(u.local.charm_revision));
            }
            units.insert(u.name.clone(), unit);
        }
        let mut rels: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in w.relations.values().filter(|r| r.involves(&a.name)) {
            if let (Some(e), Some(remote)) = (r.end(&a.name), r.remote_app(&a.name)) {
                rels.entry(e.endpoint.clone())
                    .or_default()
                    .push(remote.to_string());
            }
        }
        apps.insert(
            a.name.clone(),
            json!({
                "charm": if a.stub { "(stub)".to_string() } else { a.meta.name.clone() },
                "charm-name": a.meta.name,
                "charm-rev": a.revision,
                "stub": a.stub,
                "life": if a.life == Life::Alive { "alive" } else { "dying" },
                "scale": a.units.len(),
                "version": a.workload_version,
                "application-status": st_json(&app_status(a)),
                "relations": rels,
                "units": units,
            }),
        );
    }
    let relations: Vec<Value> = w
        .relations
        .values()
        .map(|r| {
            json!({
                "id": r.id,
                "key": r.key(),
                "interface": r.interface,
                "peer": r.is_peer(),
                "life": if r.life == Life::Alive { "alive" } else { "dying" },
            })
        })
        .collect();
    json!({
        "model": {
            "name": w.name,
            "uuid": w.uuid,
            "version": w.juju_version,
            "addresses": format!("127.{}.{}.0/24", w.range.0, w.range.1),
        },
        "applications": apps,
        "relations": relations,
    })
}

/// `juju status --format json` in Juju 3.6's schema (the keys jubilant's `Status` reads;
/// `sim/docs/jubilant-contract.md` §3.1): `model`, `machines`, `applications` with their units
/// and relations. jujusim has no controller, cloud or charm store: it says `jujusim`, `localhost`
/// and `local` there, and the application's local revision (0 at deploy, one more per refresh).
pub fn juju_status_json(w: &World) -> Value {
    let mut machines = Map::new();
    let mut apps = Map::new();
    for a in w.apps.values() {
        let mut units = Map::new();
        for u in a.units.values() {
            let (wl, ag) = display_status(u);
            let address = w.address(u.host);
            let ports: Vec<String> = u.ports.iter().map(|p| p.range.clone()).collect();
            let mut unit = json!({
                "workload-status": st_json(&wl),
                "juju-status": st_json(&ag),
                "machine": u.machine.to_string(),
                "public-address": address,
                "address": address,
            });
            if w.is_leader(&u.name) {
                unit["leader"] = json!(true);
            }
            if !ports.is_empty() {
                unit["open-ports"] = json!(ports);
            }
            // Juju shows the charm a unit still runs while it has not upgraded yet.
            if a.upgrade_due(u) {
                unit["upgrading-from"] = json!(a.charm_url(u.local.charm_revision));
            }
            units.insert(u.name.clone(), unit);
            machines
                .entry(u.machine.to_string())
                .or_insert_with(|| {
                    json!({
                        "juju-status": {"current": "started", "since": ag.since},
                        "hostname": format!("juju-machine-{}", u.machine),
                        "dns-name": address,
                        "ip-addresses": [address],
                        "instance-id": format!("jujusim-{}", u.machine),
                        "machine-status": {"current": "running", "message": "running", "since": ag.since},
                        "base": {"name": "ubuntu", "channel": "22.04"},
                    })
                });
        }
        let mut rels: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for r in w.relations.values().filter(|r| r.involves(&a.name)) {
            if let (Some(e), Some(remote)) = (r.end(&a.name), r.remote_app(&a.name)) {
                rels.entry(e.endpoint.clone()).or_default().push(json!({
                    "related-application": remote,
                    "interface": r.interface,
                    "scope": "global",
                }));
            }
        }
        let mut app = json!({
            "charm": a.charm_url(a.revision),
            "charm-origin": "local",
            "charm-name": if a.stub { a.name.clone() } else { a.meta.name.clone() },
            "charm-rev": a.revision,
            "exposed": false,
            "base": {"name": "ubuntu", "channel": "22.04"},
            "application-status": st_json(&app_status(a)),
            "units": units,
        });
        if !a.workload_version.is_empty() {
            app["version"] = json!(a.workload_version);
        }
        if !rels.is_empty() {
            app["relations"] = json!(rels);
        }
        if a.life != Life::Alive {
            app["life"] = json!("dying");
        }
        apps.insert(a.name.clone(), app);
    }
    json!({
        "model": {
            "name": w.name,
            "type": "iaas",
            "controller": "jujusim",
            "cloud": "localhost",
            "region": "localhost",
            "version": w.juju_version,
            "model-status": {"current": "available", "since": ""},
            "sla": "unsupported",
        },
        "machines": machines,
        "applications": apps,
        "controller": {"timestamp": ""},
    })
}

pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map(|s| s.chars().count()).unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `status` as a table (Juju's tabular format).
pub fn status_table(w: &World) -> String {
    let mut out = table(&[
        vec!["Model".into(), "Juju".into(), "Addresses".into()],
        vec![
            w.name.clone(),
            w.juju_version.clone(),
            format!("127.{}.{}.0/24", w.range.0, w.range.1),
        ],
    ]);
    out.push('\n');
    let mut rows = vec![vec![
        "App".to_string(),
        "Version".into(),
        "Status".into(),
        "Scale".into(),
        "Charm".into(),
        "Rev".into(),
        "Message".into(),
    ]];
    for ap in w.apps.values() {
        let st = app_status(ap);
        rows.push(vec![
            ap.name.clone(),
            ap.workload_version.clone(),
            st.status,
            ap.units.len().to_string(),
            if ap.stub {
                "(stub)".into()
            } else {
                ap.meta.name.clone()
            },
            ap.revision.to_string(),
            st.message,
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![vec![
        "Unit".to_string(),
        "Workload".into(),
        "Agent".into(),
        "Address".into(),
        "Message".into(),
    ]];
    for ap in w.apps.values() {
        for u in ap.units.values() {
            let (wl, ag) = display_status(u);
            let star = if w.is_leader(&u.name) { "*" } else { "" };
            rows.push(vec![
                format!("{}{star}", u.name),
                wl.status,
                ag.status,
                w.address(u.host),
                wl.message,
            ]);
        }
    }
    out.push_str(&table(&rows));
    let rels: Vec<&Relation> = w.relations.values().collect();
    if !rels.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "Integration provider".to_string(),
            "Requirer".into(),
            "Interface".into(),
            "Type".into(),
            "Id".into(),
        ]];
        for r in rels {
            let (p, q) = match r.ends.as_slice() {
                [one] => (
                    format!("{}:{}", one.app, one.endpoint),
                    format!("{}:{}", one.app, one.endpoint),
                ),
                [x, y, ..] => (
                    format!("{}:{}", x.app, x.endpoint),
                    format!("{}:{}", y.app, y.endpoint),
                ),
                [] => continue,
            };
            let kind = if r.is_peer() { "peer" } else { "regular" };
            let life = if r.life == Life::Alive {
                ""
            } else {
                " (dying)"
            };
            rows.push(vec![
                p,
                q,
                r.interface.clone(),
                format!("{kind}{life}"),
                r.id.to_string(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

/// `show-unit`: the unit's statuses, relations as it sees them, state and storage.
pub fn unit_json(w: &World, paths: &Paths, unit: &str) -> Result<Value> {
    let u = ops::require_unit(w, unit)?;
    let app = app_of(unit);
    let mut rels = Vec::new();
    for r in w.relations.values().filter(|r| r.involves(app)) {
        let Some(e) = r.end(app) else { continue };
        let remote = r.remote_app(app).unwrap_or_default();
        let related_ep = r
            .ends
            .iter()
            .find(|x| x.app == remote)
            .map(|x| x.endpoint.clone())
            .unwrap_or_default();
        let mut related = Map::new();
        for m in w.remote_members(r, unit) {
            let bag = r
                .unit_bags
                .get(&m)
                .map(|s| s.data.clone())
                .unwrap_or_default();
            related.insert(m, json!({"in-scope": true, "data": bag}));
        }
        let local = u.local.relations.get(&r.id);
        rels.push(json!({
            "relation-id": r.id,
            "endpoint": e.endpoint,
            "related-endpoint": related_ep,
            "application-data": r.app_bags.get(remote).map(|s| s.data.clone()).unwrap_or_default(),
            "local-unit": {
                "in-scope": w.in_scope(r, unit),
                "data": r.unit_bags.get(unit).map(|s| s.data.clone()).unwrap_or_default(),
            },
            "related-units": related,
            "seen-members": local.map(|l| json!(l.members)).unwrap_or(Value::Null),
        }));
    }
    let (wl, ag) = display_status(u);
    let pending = scheduler::pending_summary(w);
    Ok(json!({ unit: {
        "workload-status": st_json(&wl),
        "juju-status": st_json(&ag),
        "leader": w.is_leader(unit),
        "life": if u.life == Life::Alive { "alive" } else { "dying" },
        "machine": u.machine.to_string(),
        "public-address": w.address(u.host),
        "workload-version": w.apps.get(app).map(|a| a.workload_version.clone()).unwrap_or_default(),
        "opened-ports": u.ports.iter().map(|p| format!("{} ({})", p.range, p.endpoint)).collect::<Vec<_>>(),
        "charm": w.apps.get(app).map(|a| a.charm_url(u.local.charm_revision)).unwrap_or_default(),
        "relation-info": rels,
        "state": u.state,
        "storage": u.storage,
        "agent-state": {
            "installed": u.local.installed,
            "started": u.local.started,
            "error": u.local.error.as_ref().map(|e| e.hook.name()),
            "pending": pending.get(unit),
        },
        "charm-dir": paths.charm_dir(unit),
        "workload-dir": paths.workload_dir(unit),
    }}))
}

/// `show-data`: what `target` (an app, seen by its leader, or a unit) reads on `endpoint`: each
/// remote application's bag and its units' bags; with `reveal`, the secrets the app bag names.
pub fn relation_data_json(w: &World, target: &str, endpoint: &str, reveal: bool) -> Result<Value> {
    let (app, viewer) = if parse_unit(target).is_some() {
        ops::require_unit(w, target)?;
        (app_of(target).to_string(), target.to_string())
    } else {
        let ap = ops::require_app(w, target)?;
        let viewer = ap
            .leader
            .clone()
            .or_else(|| ap.units.values().next().map(|u| u.name.clone()))
            .unwrap_or_default();
        (target.to_string(), viewer)
    };
    if !w.apps[&app].meta.endpoints.contains_key(endpoint) {
        fail!("{app:?} has no endpoint {endpoint:?}");
    }
    let mut outv = Map::new();
    for id in ops::relations_on(w, &app, endpoint) {
        let r = &w.relations[&id];
        let Some(remote) = r.remote_app(&app) else {
            continue;
        };
        let app_data = r
            .app_bags
            .get(remote)
            .map(|s| s.data.clone())
            .unwrap_or_default();
        let mut units = Map::new();
        if let Some(ra) = w.apps.get(remote) {
            for u in ra.units.values() {
                if u.name != viewer && w.in_scope(r, &u.name) {
                    let bag = r
                        .unit_bags
                        .get(&u.name)
                        .map(|s| s.data.clone())
                        .unwrap_or_default();
                    units.insert(u.name.clone(), json!(bag));
                }
            }
        }
        let mut entry = Map::new();
        entry.insert("relation-id".into(), json!(id));
        entry.insert("application-data".into(), json!(app_data));
        entry.insert("units".into(), Value::Object(units));
        if reveal {
            let mut revealed = Map::new();
            for (k, v) in &app_data {
                if !v.starts_with("secret:") {
                    continue;
                }
                let val = match World::parse_secret_ref(v).and_then(|x| w.secrets.get(&x)) {
                    None => json!({"error": "not found"}),
                    Some(s) if crate::tools::secret::granted(w, &viewer, s) => {
                        let bag = s.revisions.get(&s.latest).cloned().unwrap_or_default();
                        let m: Map<String, Value> = bag
                            .iter()
                            .map(|(k, v)| {
                                let text = util::base64_decode(v)
                                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                                    .unwrap_or_else(|| v.clone());
                                (k.clone(), json!(text))
                            })
                            .collect();
                        Value::Object(m)
                    }
                    Some(_) => json!({"error": "permission denied"}),
                };
                revealed.insert(k.clone(), val);
            }
            entry.insert("revealed".into(), Value::Object(revealed));
        }
        outv.insert(remote.to_string(), Value::Object(entry));
    }
    Ok(Value::Object(outv))
}

/// `log` as a table: one row per hook, action or exec, with the entries it overlapped.
pub fn log_table(entries: &[timeline::Entry]) -> String {
    let mut rows = vec![vec![
        "Seq".to_string(),
        "Unit".into(),
        "Hook".into(),
        "Exit".into(),
        "Time".into(),
        "Tools".into(),
        "Overlaps".into(),
        "".into(),
    ]];
    for e in entries {
        let what = match (&e.hook, &e.action) {
            (Some(h), _) => h.clone(),
            (None, Some(a)) => format!("action {a}"),
            _ => String::new(),
        };
        let mark = if e.timed_out {
            "<-- TIMED OUT"
        } else if e.commit_error.is_some() {
            "<-- COMMIT FAILED"
        } else if e.exit_code != 0 {
            "<-- FAILED"
        } else {
            ""
        };
        rows.push(vec![
            e.seq.to_string(),
            e.unit.clone(),
            what,
            e.exit_code.to_string(),
            format!("{}ms", e.duration_ms),
            e.tool_calls.len().to_string(),
            e.overlaps
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
            mark.to_string(),
        ]);
    }
    table(&rows)
}
