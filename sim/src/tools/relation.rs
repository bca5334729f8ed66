//! relation-ids, relation-list, relation-get, relation-set, relation-model-get (reference §2.1,
//! §3.1): who may read and write which bag, the `-r` rules, and the remote-settings cache.

use serde_json::{json, Map, Value};

use super::flags::{self, b, v, Flag, Parsed};
use super::format::{render, ALL};
use super::server::Call;
use super::{check_empty, run_err, usage, ToolErr, ToolResult};
use crate::model::{app_of, parse_unit, valid_app_name, HookKind, Life, World};

const REL: Flag = v(&["r", "relation"]);

/// Relations in this hook's context: the unit's application takes part, and the unit has not
/// finished with it (`-broken` done) — the relation of the running hook always counts.
pub fn in_context(world: &World, c: &super::ctx::HookCtx, id: u64) -> bool {
    let Some(rel) = world.relations.get(&id) else {
        return false;
    };
    if !rel.involves(c.app()) {
        return false;
    }
    if c.relation == Some(id) {
        return true;
    }
    let Some(u) = world.unit(&c.unit) else {
        return false;
    };
    u.local.relations.contains_key(&id) || (rel.life == Life::Alive && u.life == Life::Alive)
}

/// The relation chosen with `-r`/`--relation`, or the hook's own; `None` if neither.
pub fn relation_arg(c: &Call, p: &Parsed) -> Result<Option<u64>, ToolErr> {
    let Some((given, value)) = p.value_as_given("r") else {
        return Ok(c.ctx.relation);
    };
    let tail = value.rsplit(':').next().unwrap_or(value);
    let Ok(id) = tail.parse::<u64>() else {
        return usage(format!(
            "invalid value {value:?} for option {given}: invalid relation id"
        ));
    };
    if !in_context(c.world, c.ctx, id) {
        return usage(format!(
            "invalid value {value:?} for option {given}: relation not found"
        ));
    }
    Ok(Some(id))
}

fn require_relation(c: &Call, p: &Parsed) -> Result<u64, ToolErr> {
    relation_arg(c, p)?.ok_or_else(|| ToolErr::Usage("no relation id specified".into()))
}

pub fn relation_ids(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[flags::FORMAT, flags::OUTPUT])?;
    let endpoint = match p.positional.first() {
        Some(e) => e.clone(),
        None => match &c.ctx.endpoint {
            Some(e) if c.ctx.relation.is_some() => e.clone(),
            _ => return usage("no endpoint name specified"),
        },
    };
    check_empty(p.positional.get(1..).unwrap_or(&[]))?;
    let app = c.ctx.app().to_string();
    let mut ids: Vec<String> = c
        .world
        .relations
        .values()
        .filter(|r| r.end(&app).map(|e| e.endpoint.as_str()) == Some(endpoint.as_str()))
        .filter(|r| in_context(c.world, c.ctx, r.id))
        .map(|r| format!("{endpoint}:{}", r.id))
        .collect();
    ids.sort();
    render(&p, &json!(ids), "smart", ALL, c.cwd)
}

/// Joined remote members as this hook sees them.
fn members(c: &Call, id: u64) -> Vec<String> {
    let in_hook = c.ctx.relation == Some(id);
    if in_hook && c.ctx.kind == Some(HookKind::RelationBroken) {
        return Vec::new();
    }
    let mut m: Vec<String> = c
        .world
        .unit(&c.ctx.unit)
        .and_then(|u| u.local.relations.get(&id))
        .map(|l| l.members.keys().cloned().collect())
        .unwrap_or_default();
    if in_hook {
        match (c.ctx.kind, &c.ctx.remote_unit) {
            (Some(HookKind::RelationJoined), Some(r)) if !m.contains(r) => m.push(r.clone()),
            (Some(HookKind::RelationDeparted), Some(r)) => m.retain(|x| x != r),
            _ => {}
        }
    }
    m.sort();
    m
}

pub fn relation_list(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[REL, b(&["app"]), flags::FORMAT, flags::OUTPUT])?;
    let id = require_relation(c, &p)?;
    check_empty(&p.positional)?;
    if p.flag("app") {
        let remote = c
            .world
            .relations
            .get(&id)
            .and_then(|r| r.remote_app(c.ctx.app()))
            .map(|s| Value::String(s.to_string()))
            .unwrap_or(Value::Null);
        return render(&p, &remote, "smart", ALL, c.cwd);
    }
    render(&p, &json!(members(c, id)), "smart", ALL, c.cwd)
}

fn bag_json(bag: &crate::model::Bag) -> Value {
    Value::Object(
        bag.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

pub fn relation_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[REL, b(&["app"]), flags::FORMAT, flags::OUTPUT])?;
    let id = require_relation(c, &p)?;
    let mut args = p.positional.clone().into_iter();
    let key = match args.next() {
        Some(k) if k == "-" => None,
        Some(k) => Some(k),
        None => None,
    };
    let mut app_mode = p.flag("app");
    let target: String = match args.next() {
        Some(t) => {
            if app_mode {
                if parse_unit(&t).is_some() {
                    app_of(&t).to_string()
                } else {
                    t
                }
            } else if parse_unit(&t).is_none() {
                if valid_app_name(&t) {
                    return usage(format!("expected unit name, got application name {t:?}"));
                }
                return usage(format!("invalid unit name {t:?}"));
            } else {
                t
            }
        }
        None => {
            let remote_unit = c.ctx.remote_unit.clone().filter(|u| !u.is_empty());
            match (app_mode, remote_unit, c.ctx.remote_app.clone()) {
                (true, _, Some(a)) => a,
                (false, Some(u), _) => u,
                (false, None, Some(a)) => {
                    app_mode = true;
                    a
                }
                _ => return usage("no unit or application specified"),
            }
        }
    };
    let rest: Vec<String> = args.collect();
    check_empty(&rest)?;

    let me = c.ctx.unit.clone();
    let my_app = c.ctx.app().to_string();
    let Some(rel) = c.world.relations.get(&id) else {
        return run_err("relation not found");
    };
    let is_peer = rel.is_peer();
    let remote_app = rel.remote_app(&my_app).map(str::to_string);
    let data: crate::model::Bag = if app_mode {
        if target == my_app {
            if !is_peer && !c.ctx.is_leader(c.world) {
                return run_err("permission denied");
            }
        } else if Some(&target) != remote_app.as_ref() {
            return run_err("permission denied");
        }
        rel.app_bags
            .get(&target)
            .map(|s| s.data.clone())
            .unwrap_or_default()
    } else if target == me {
        rel.unit_bags
            .get(&me)
            .map(|s| s.data.clone())
            .unwrap_or_default()
    } else {
        let unit_app = app_of(&target);
        if !rel.involves(unit_app) {
            return run_err("permission denied");
        }
        let Some(current) = rel.unit_bags.get(&target).map(|s| s.data.clone()) else {
            return run_err("permission denied");
        };
        // Juju's uniter cache: a remote unit's settings as of the last hook that read them,
        // refreshed only by a -joined/-changed for that unit.
        match c
            .world
            .unit_mut(&me)
            .and_then(|u| u.local.relations.get_mut(&id))
        {
            Some(l) => l.cache.entry(target.clone()).or_insert(current).clone(),
            None => current,
        }
    };
    let v = match key {
        None => bag_json(&data),
        Some(k) => data.get(&k).map(|s| json!(s)).unwrap_or(Value::Null),
    };
    render(&p, &v, "smart", ALL, c.cwd)
}

/// Parses `k=v` arguments (Juju's keyvalues.Parse with empty values allowed).
pub fn key_values(args: &[String]) -> Result<Vec<(String, String)>, ToolErr> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in args {
        let Some((k, v)) = a.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return usage(format!("expected \"key=value\", got {a:?}"));
        };
        if out.iter().any(|(x, _)| x == k) {
            return usage(format!("key {k:?} specified more than once"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// A YAML (or JSON) map of settings, values read as strings.
pub fn settings_from_yaml(text: &str) -> Result<Vec<(String, String)>, ToolErr> {
    let y: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| ToolErr::Run(format!("yaml: {e}")))?;
    let map = match y {
        serde_yaml::Value::Null => return Ok(Vec::new()),
        serde_yaml::Value::Mapping(m) => m,
        _ => {
            return run_err(
                "yaml: unmarshal errors: cannot unmarshal a non-mapping into map[string]string",
            )
        }
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let k = scalar_string(&k)?;
        let v = scalar_string(&v)?;
        out.push((k, v));
    }
    Ok(out)
}

fn scalar_string(y: &serde_yaml::Value) -> Result<String, ToolErr> {
    Ok(match y {
        serde_yaml::Value::Null => String::new(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::String(s) => s.clone(),
        _ => {
            return run_err(
                "yaml: unmarshal errors: cannot unmarshal a non-scalar value into string",
            )
        }
    })
}

pub fn relation_set(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[REL, v(&["file"]), b(&["app"]), flags::FORMAT])?;
    let id = require_relation(c, &p)?;
    let overrides = key_values(&p.positional)?;
    let mut stderr = String::new();
    if p.value("format").is_some() {
        stderr.push_str("--format flag deprecated for command \"relation-set\"");
    }
    let mut settings = match p.value("file") {
        Some(f) => settings_from_yaml(&c.read_file_arg(f)?)?,
        None => Vec::new(),
    };
    for (k, v) in overrides {
        settings.retain(|(x, _)| *x != k);
        settings.push((k, v));
    }
    let owner = if p.flag("app") {
        if !c.ctx.is_leader(c.world) {
            return run_err("cannot write relation settings");
        }
        c.ctx.app().to_string()
    } else {
        c.ctx.unit.clone()
    };
    let app_bag = p.flag("app");
    let Some(rel) = c.world.relations.get_mut(&id) else {
        return run_err("relation not found");
    };
    let bag = if app_bag {
        rel.app_bags.entry(owner.clone()).or_default()
    } else {
        rel.unit_bags.entry(owner.clone()).or_default()
    };
    for (k, v) in settings {
        if v.is_empty() {
            bag.data.remove(&k);
        } else {
            bag.data.insert(k, v);
        }
    }
    Ok(super::Response {
        stdout: String::new(),
        stderr,
        code: 0,
    })
}

pub fn relation_model_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[REL, flags::FORMAT, flags::OUTPUT])?;
    require_relation(c, &p)?;
    check_empty(&p.positional)?;
    render(&p, &json!({"uuid": c.world.uuid}), "smart", ALL, c.cwd)
}
