//! Unit-scoped tools: leadership, status, config, logging, state, networking, ports, storage,
//! goal-state and the rest (reference §2.1).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::ctx::Immediate;
use super::flags::{self, b, v};
use super::format::{render, ALL, YAML_JSON};
use super::relation::{key_values, relation_arg, settings_from_yaml};
use super::server::Call;
use super::{check_empty, out, run_err, usage, ToolErr, ToolResult};
use crate::model::{Port, Status};

pub fn is_leader(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[flags::FORMAT, flags::OUTPUT])?;
    check_empty(&p.positional)?;
    let l = c.ctx.is_leader(c.world);
    render(&p, &json!(l), "smart", ALL, c.cwd)
}

fn bag_value(bag: &crate::model::Bag, key: Option<&str>) -> Value {
    match key {
        None | Some("-") => json!(bag),
        Some(k) => bag.get(k).map(|v| json!(v)).unwrap_or(Value::Null),
    }
}

pub fn leader_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[flags::FORMAT, flags::OUTPUT])?;
    check_empty(p.positional.get(1..).unwrap_or(&[]))?;
    let bag = c
        .world
        .apps
        .get(c.ctx.app())
        .map(|a| a.leader_settings.clone())
        .unwrap_or_default();
    let v = bag_value(&bag, p.positional.first().map(String::as_str));
    render(&p, &v, "smart", ALL, c.cwd)
}

pub fn leader_set(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[v(&["file"])])?;
    let mut settings = match p.value("file") {
        Some(f) => settings_from_yaml(&c.read_file_arg(f)?)?,
        None => Vec::new(),
    };
    settings.extend(key_values(&p.positional)?);
    if !c.ctx.is_leader(c.world) {
        return run_err("cannot write leadership settings: cannot write settings: not the leader");
    }
    let app = c.ctx.app().to_string();
    let mut bag = c
        .world
        .apps
        .get(&app)
        .map(|a| a.leader_settings.clone())
        .unwrap_or_default();
    for (k, v) in settings {
        if v.is_empty() {
            bag.remove(&k);
        } else {
            bag.insert(k, v);
        }
    }
    c.ctx
        .immediate(c.world, Immediate::LeaderSettings(app, bag));
    out(String::new())
}

const STATUSES: [&str; 4] = ["maintenance", "blocked", "waiting", "active"];

pub fn status_set(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[b(&["application"])])?;
    let Some(status) = p.positional.first() else {
        return usage("invalid args, require <status> [message]");
    };
    if !STATUSES.contains(&status.as_str()) {
        return usage(format!(
            "invalid status {status:?}, expected one of [{}]",
            STATUSES.join(" ")
        ));
    }
    let message = p.positional.get(1).cloned().unwrap_or_default();
    check_empty(p.positional.get(2..).unwrap_or(&[]))?;
    let st = Status::new(status, &message);
    if p.flag("application") {
        if !c.ctx.is_leader(c.world) {
            return run_err("this unit is not the leader");
        }
        let app = c.ctx.app().to_string();
        c.ctx.immediate(c.world, Immediate::AppStatus(app, st));
    } else {
        let unit = c.ctx.unit.clone();
        c.ctx.immediate(c.world, Immediate::UnitStatus(unit, st));
    }
    out(String::new())
}

fn status_json(st: &Status) -> Value {
    json!({"message": st.message, "status": st.status, "status-data": {}})
}

pub fn status_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(
        c.args,
        &[
            b(&["application"]),
            b(&["include-data"]),
            flags::FORMAT,
            flags::OUTPUT,
        ],
    )?;
    check_empty(&p.positional)?;
    let data = p.flag("include-data");
    if p.flag("application") {
        if !c.ctx.is_leader(c.world) {
            return run_err("finding application status: this unit is not the leader");
        }
        let Some(app) = c.world.apps.get(c.ctx.app()) else {
            return run_err("application not found");
        };
        let st = app
            .status
            .clone()
            .unwrap_or_else(|| Status::new("unknown", ""));
        if !data {
            return render(&p, &json!(st.status), "smart", ALL, c.cwd);
        }
        let units: Map<String, Value> = app
            .units
            .values()
            .map(|u| (u.name.clone(), status_json(&u.workload)))
            .collect();
        let mut inner = status_json(&st);
        inner["units"] = Value::Object(units);
        return render(
            &p,
            &json!({ "application-status": inner }),
            "smart",
            ALL,
            c.cwd,
        );
    }
    let Some(u) = c.world.unit(&c.ctx.unit) else {
        return run_err("unit not found");
    };
    let v = if data {
        status_json(&u.workload)
    } else {
        json!(u.workload.status)
    };
    render(&p, &v, "smart", ALL, c.cwd)
}

pub fn config_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[b(&["a", "all"]), flags::FORMAT, flags::OUTPUT])?;
    let key = p.positional.first().cloned();
    check_empty(p.positional.get(1..).unwrap_or(&[]))?;
    if let (true, Some(k)) = (p.flag("a"), &key) {
        return usage(format!("cannot use argument --all together with key {k:?}"));
    }
    let cfg = c
        .world
        .apps
        .get(c.ctx.app())
        .map(|a| a.effective_config())
        .unwrap_or_default();
    let v = match key {
        Some(k) => cfg.get(&k).cloned().unwrap_or(Value::Null),
        None => Value::Object(
            cfg.into_iter()
                .filter(|(_, v)| p.flag("a") || !v.is_null())
                .collect(),
        ),
    };
    render(&p, &v, "smart", ALL, c.cwd)
}

pub fn juju_log(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[b(&["debug"]), v(&["l", "log-level"])])?;
    if p.positional.is_empty() {
        return usage("no message specified");
    }
    // The message is recorded with the tool call in the timeline; unknown levels log at INFO.
    out(String::new())
}

pub fn state_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[b(&["strict"]), flags::FORMAT, flags::OUTPUT])?;
    let key = p.positional.first().cloned();
    check_empty(p.positional.get(1..).unwrap_or(&[]))?;
    let state = c
        .world
        .unit(&c.ctx.unit)
        .map(|u| u.state.clone())
        .unwrap_or_default();
    let v = match key {
        None => json!(state),
        Some(k) => match state.get(&k) {
            Some(v) => json!(v),
            None if p.flag("strict") => return run_err(format!("{k:?} not found")),
            None => json!(""),
        },
    };
    render(&p, &v, "smart", ALL, c.cwd)
}

pub fn state_set(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[v(&["file"])])?;
    let overrides = key_values(&p.positional)?;
    let mut settings = match p.value("file") {
        Some(f) => settings_from_yaml(&c.read_file_arg(f)?)?,
        None => Vec::new(),
    };
    settings.extend(overrides);
    for (k, v) in &settings {
        if k.len() > 256 {
            return run_err(format!("key {k:?} too long: {} bytes (max 256)", k.len()));
        }
        if v.len() > 64 * 1024 {
            return run_err(format!(
                "value for key {k:?} too large: {} bytes (max 65536)",
                v.len()
            ));
        }
    }
    let Some(u) = c.world.unit_mut(&c.ctx.unit) else {
        return run_err("unit not found");
    };
    for (k, v) in settings {
        if v.is_empty() {
            u.state.remove(&k);
        } else {
            u.state.insert(k, v);
        }
    }
    out(String::new())
}

pub fn state_delete(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[])?;
    let Some(key) = p.positional.first().cloned() else {
        return usage("no key specified");
    };
    check_empty(&p.positional[1..])?;
    if let Some(u) = c.world.unit_mut(&c.ctx.unit) {
        u.state.remove(&key);
    }
    out(String::new())
}

fn my_address(c: &Call) -> Result<String, ToolErr> {
    c.world
        .unit_address(&c.ctx.unit)
        .ok_or_else(|| ToolErr::Run("unit not found".into()))
}

pub fn unit_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[flags::FORMAT, flags::OUTPUT])?;
    let Some(key) = p.positional.first().cloned() else {
        return usage("no setting specified");
    };
    if key != "private-address" && key != "public-address" {
        return usage(format!("unknown setting {key:?}"));
    }
    check_empty(&p.positional[1..])?;
    let addr = my_address(c)?;
    render(&p, &json!(addr), "smart", ALL, c.cwd)
}

pub fn network_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(
        c.args,
        &[
            v(&["r", "relation"]),
            b(&["primary-address"]),
            b(&["bind-address"]),
            b(&["ingress-address"]),
            b(&["egress-subnets"]),
            flags::FORMAT,
            flags::OUTPUT,
        ],
    )?;
    relation_arg(c, &p)?;
    let Some(binding) = p.positional.first().cloned() else {
        return usage("no arguments specified");
    };
    if binding.is_empty() {
        return usage("no binding name specified");
    }
    check_empty(&p.positional[1..])?;
    let known = c
        .world
        .apps
        .get(c.ctx.app())
        .map(|a| a.meta.has_binding(&binding))
        .unwrap_or(false);
    if !known {
        return run_err(format!("no network config found for binding {binding:?}"));
    }
    let ip = my_address(c)?;
    let (a, bb) = c.world.range;
    let cidr = format!("127.{a}.{bb}.0/24");
    let egress = vec![format!("{ip}/32")];
    if p.flag("primary-address") {
        if p.flag("ingress-address") || p.flag("egress-subnets") || p.flag("bind-address") {
            return run_err("--primary-address must be the only flag specified");
        }
        return render(&p, &json!(ip), "smart", ALL, c.cwd);
    }
    let mut keys: Vec<(&str, Value)> = Vec::new();
    if p.flag("bind-address") {
        keys.push(("bind-address", json!(ip)));
    }
    if p.flag("ingress-address") {
        keys.push(("ingress-address", json!(ip)));
    }
    if p.flag("egress-subnets") {
        keys.push(("egress-subnets", json!(egress)));
    }
    let v = match keys.len() {
        0 => json!({
            "bind-addresses": [{
                "mac-address": "",
                "interface-name": "lo",
                "addresses": [{"hostname": "", "value": ip, "cidr": cidr}],
            }],
            "egress-subnets": egress,
            "ingress-addresses": [ip],
        }),
        1 => keys.remove(0).1,
        _ => Value::Object(keys.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
    };
    render(&p, &v, "smart", ALL, c.cwd)
}

/// `80`, `80/tcp`, `8000-8100/udp`, `icmp` -> the normalised form; `None` if malformed.
pub fn parse_port_range(s: &str) -> Option<String> {
    let s = s.to_ascii_lowercase();
    if s == "icmp" {
        return Some(s);
    }
    let (range, proto) = match s.split_once('/') {
        Some((r, p)) => (r.to_string(), p.to_string()),
        None => (s.clone(), "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return None;
    }
    let port = |x: &str| x.parse::<u16>().ok().filter(|p| *p > 0);
    let (from, to) = match range.split_once('-') {
        Some((f, t)) => (port(f)?, port(t)?),
        None => (port(&range)?, port(&range)?),
    };
    if from > to {
        return None;
    }
    Some(if from == to {
        format!("{from}/{proto}")
    } else {
        format!("{from}-{to}/{proto}")
    })
}

fn port_sort_key(r: &str) -> (String, u32, u32) {
    let (range, proto) = r.split_once('/').unwrap_or(("0", r));
    let (f, t) = range.split_once('-').unwrap_or((range, range));
    (
        proto.to_string(),
        f.parse().unwrap_or(0),
        t.parse().unwrap_or(0),
    )
}

pub fn port(c: &mut Call, open: bool) -> ToolResult {
    let p = flags::parse(c.args, &[v(&["endpoints"]), flags::FORMAT])?;
    let Some(spec) = p.positional.first() else {
        return usage("no port or range specified");
    };
    let Some(range) = parse_port_range(spec) else {
        return usage(format!(
            "invalid port range {spec:?}, expected <port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp"
        ));
    };
    check_empty(&p.positional[1..])?;
    let mut stderr = String::new();
    if p.value("format").is_some() {
        stderr = format!(
            "--format flag deprecated for command {:?}",
            if open { "open-port" } else { "close-port" }
        );
    }
    let endpoints: Vec<String> = match p.value("endpoints") {
        None | Some("") => vec!["*".to_string()],
        Some(list) => list.split(',').map(|e| e.trim().to_string()).collect(),
    };
    let meta_ok = c
        .world
        .apps
        .get(c.ctx.app())
        .map(|a| {
            endpoints
                .iter()
                .all(|e| e == "*" || a.meta.endpoints.contains_key(e))
        })
        .unwrap_or(false);
    if !meta_ok {
        return run_err(format!(
            "cannot {} ports for unknown endpoints {:?}",
            if open { "open" } else { "close" },
            endpoints.join(",")
        ));
    }
    let Some(u) = c.world.unit_mut(&c.ctx.unit) else {
        return run_err("unit not found");
    };
    for endpoint in endpoints {
        let port = Port {
            endpoint,
            range: range.clone(),
        };
        if open {
            u.ports.insert(port);
        } else {
            u.ports.remove(&port);
        }
    }
    Ok(super::Response {
        stdout: String::new(),
        stderr,
        code: 0,
    })
}

pub fn opened_ports(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[b(&["endpoints"]), flags::FORMAT, flags::OUTPUT])?;
    check_empty(&p.positional)?;
    let ports = c
        .world
        .unit(&c.ctx.unit)
        .map(|u| u.ports.clone())
        .unwrap_or_default();
    let mut by_range: BTreeMap<(String, u32, u32), (String, Vec<String>)> = BTreeMap::new();
    for port in ports {
        by_range
            .entry(port_sort_key(&port.range))
            .or_insert_with(|| (port.range.clone(), Vec::new()))
            .1
            .push(port.endpoint);
    }
    let list: Vec<String> = by_range
        .into_values()
        .map(|(range, eps)| {
            if p.flag("endpoints") {
                format!("{range} ({})", eps.join(", "))
            } else {
                range
            }
        })
        .collect();
    render(&p, &json!(list), "smart", ALL, c.cwd)
}

pub fn application_version_set(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[])?;
    let Some(version) = p.positional.first().cloned() else {
        return usage("no version specified");
    };
    check_empty(&p.positional[1..])?;
    let app = c.ctx.app().to_string();
    c.ctx
        .immediate(c.world, Immediate::WorkloadVersion(app, version));
    out(String::new())
}

pub fn juju_reboot(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[b(&["now"])])?;
    check_empty(&p.positional)?;
    if c.ctx.action.is_some() {
        return run_err("juju-reboot is not supported when running an action");
    }
    c.ctx.reboot_requested = true;
    out(String::new())
}

pub fn goal_state(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[flags::FORMAT, flags::OUTPUT])?;
    check_empty(&p.positional)?;
    let w = &*c.world;
    let my_app = c.ctx.app();
    let unit_goal = |u: &crate::model::Unit| {
        let status = if u.life != crate::model::Life::Alive {
            "dying".to_string()
        } else if u.local.error.is_some() {
            "error".to_string()
        } else {
            u.workload.status.clone()
        };
        json!({"status": status, "since": u.workload.since})
    };
    let units: Map<String, Value> = w
        .apps
        .get(my_app)
        .map(|a| {
            a.units
                .values()
                .map(|u| (u.name.clone(), unit_goal(u)))
                .collect()
        })
        .unwrap_or_default();
    let mut relations: Map<String, Value> = Map::new();
    for rel in w.relations.values() {
        let Some(end) = rel.end(my_app) else { continue };
        let Some(remote) = rel.remote_app(my_app) else {
            continue;
        };
        let entry = relations
            .entry(end.endpoint.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let since = crate::util::now_rfc3339();
        if let Some(obj) = entry.as_object_mut() {
            if !rel.is_peer() {
                obj.insert(
                    remote.to_string(),
                    json!({"status": if rel.life == crate::model::Life::Alive {"joined"} else {"dying"}, "since": since}),
                );
            }
            if let Some(a) = w.apps.get(remote) {
                for u in a.units.values() {
                    if u.name != c.ctx.unit {
                        obj.insert(u.name.clone(), unit_goal(u));
                    }
                }
            }
        }
    }
    render(
        &p,
        &json!({"units": units, "relations": relations}),
        "yaml",
        YAML_JSON,
        c.cwd,
    )
}

pub fn credential_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[flags::FORMAT, flags::OUTPUT])?;
    check_empty(&p.positional)?;
    run_err("cannot access cloud credentials: permission denied")
}

pub fn storage_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[v(&["s"]), flags::FORMAT, flags::OUTPUT])?;
    let id = match p.value("s") {
        Some(s) => s.to_string(),
        None => match &c.ctx.storage_id {
            Some(s) => s.clone(),
            None => return usage("no storage instance specified"),
        },
    };
    let key = p.positional.first().cloned();
    check_empty(p.positional.get(1..).unwrap_or(&[]))?;
    let Some(inst) = c
        .world
        .unit(&c.ctx.unit)
        .and_then(|u| u.storage.iter().find(|s| s.id == id))
    else {
        return run_err(format!("storage instance {id:?} not found"));
    };
    let all = json!({"kind": inst.kind, "location": inst.location});
    let v = match key {
        None => all,
        Some(k) => all.get(&k).cloned().unwrap_or(Value::Null),
    };
    render(&p, &v, "smart", ALL, c.cwd)
}

pub fn storage_list(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[flags::FORMAT, flags::OUTPUT])?;
    let name = p.positional.first().cloned();
    check_empty(p.positional.get(1..).unwrap_or(&[]))?;
    let ids: Vec<String> = c
        .world
        .unit(&c.ctx.unit)
        .map(|u| {
            u.storage
                .iter()
                .filter(|s| name.as_ref().is_none_or(|n| *n == s.name))
                .map(|s| s.id.clone())
                .collect()
        })
        .unwrap_or_default();
    render(&p, &json!(ids), "smart", ALL, c.cwd)
}

pub fn storage_add(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[])?;
    if p.positional.is_empty() {
        return usage("storage add requires a storage directive");
    }
    let meta = c
        .world
        .apps
        .get(c.ctx.app())
        .map(|a| a.meta.storage.clone())
        .unwrap_or_default();
    for d in &p.positional {
        let name = d.split('=').next().unwrap_or(d);
        if !meta.contains_key(name) {
            return run_err(format!("storage {name:?} not found"));
        }
    }
    // Accepted and ignored: jujusim provisions one instance per declared storage at deploy.
    out(String::new())
}

pub fn resource_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[])?;
    let Some(name) = p.positional.first().cloned() else {
        return usage("missing required resource name");
    };
    check_empty(&p.positional[1..])?;
    let declared = c
        .world
        .apps
        .get(c.ctx.app())
        .map(|a| a.meta.resources.contains(&name))
        .unwrap_or(false);
    if !declared {
        return run_err(format!("resource {name:?} not found"));
    }
    run_err(format!(
        "could not download resource: resource#{}/{name} not found (jujusim does not serve resources)",
        c.ctx.app()
    ))
}
