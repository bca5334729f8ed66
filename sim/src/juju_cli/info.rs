//! `show-unit`, `show-model`, `model-config`, `secrets`, `show-secret`, `add-secret`,
//! `grant-secret` and `debug-log`, in Juju 3.6's shapes (those jubilant's `UnitInfo`,
//! `ModelInfo`, `Secret` and `RevealedSecret` parse; see `sim/docs/jubilant-contract.md`).

use std::path::Path;

use serde_json::{json, Map, Value};

use super::{ensure_model, print_as, session, Line};
use crate::error::{Result, SimError};
use crate::model::{app_of, Grant, Paths, Secret, SecretOwner, World};
use crate::{render, util};

/// `juju show-unit <unit>...`: `{unit: {opened-ports, charm, leader, life, machine,
/// public-address, workload-version, relation-info: [{relation-id, endpoint, related-endpoint,
/// application-data (the remote application's), local-unit, related-units}]}}`.
pub fn show_unit(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--format",
        "-o",
        "--output",
        "--app",
        "--endpoint",
        "--related-unit",
    ])?;
    super::refuse(l, &["--app", "--endpoint", "--related-unit"])?;
    let dir = ensure_model(root, l)?;
    if l.pos.is_empty() {
        return Err(SimError::Usage("an unit name must be supplied".into()));
    }
    let paths = Paths::new(dir);
    let w = World::load(&paths)?;
    let mut out = Map::new();
    for unit in &l.pos {
        let v = render::unit_json(&w, &paths, unit)?;
        let u = &v[unit.as_str()];
        let Some(un) = w.unit(unit) else {
            return Err(SimError::Failed(format!("unit {unit:?} not found")));
        };
        let a = w.apps.get(app_of(unit));
        // The charm the unit runs (an older revision until it has upgraded).
        let charm = a.map_or_else(String::new, |a| a.charm_url(un.local.charm_revision));
        let rels: Vec<Value> = u["relation-info"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut r| {
                if let Some(o) = r.as_object_mut() {
                    o.remove("seen-members");
                }
                r
            })
            .collect();
        let mut e = json!({
            "opened-ports": un.ports.iter().map(|p| p.range.clone()).collect::<Vec<_>>(),
            "charm": charm,
            "leader": u["leader"],
            "life": u["life"],
            "machine": u["machine"],
            "public-address": u["public-address"],
            "address": u["public-address"],
        });
        if let Some(v) = u["workload-version"].as_str().filter(|v| !v.is_empty()) {
            e["workload-version"] = json!(v);
        }
        if !rels.is_empty() {
            e["relation-info"] = json!(rels);
        }
        out.insert(unit.clone(), e);
    }
    print_as(l, &Value::Object(out), "yaml")
}

/// `juju show-model [model]`.
pub fn show_model(root: &Path, l: &Line) -> Result<i32> {
    l.only(&["--format", "-o", "--output"])?;
    let (name, dir) = match l.pos.as_slice() {
        [] => l.model(root)?,
        [m] => {
            let n = super::model_name(m).to_string();
            let d = root.join("models").join(&n);
            (n, d)
        }
        _ => return Err(SimError::Usage("show-model takes at most one model".into())),
    };
    let paths = Paths::new(dir);
    if !paths.model_json().is_file() {
        return Err(SimError::Failed(format!("model admin/{name} not found")));
    }
    let w = World::load(&paths)?;
    let v = json!({ name.clone(): {
        "name": format!("admin/{name}"),
        "short-name": name,
        "model-uuid": w.uuid,
        "model-type": "iaas",
        "controller-uuid": "00000000-0000-4000-8000-000000000000",
        "controller-name": "jujusim",
        "is-controller": false,
        "owner": "admin",
        "cloud": "localhost",
        "region": "localhost",
        "type": "jujusim",
        "life": "alive",
        "status": {"current": "available"},
        "agent-version": w.juju_version,
    }});
    print_as(l, &v, "yaml")
}

/// Model settings jujusim knows, with Juju's defaults (`model-config` shows these, and any
/// other key an operator set).
const MODEL_DEFAULTS: &[(&str, &str)] = &[
    ("automatically-retry-hooks", "true"),
    ("default-base", ""),
    ("logging-config", "<root>=INFO"),
    ("update-status-hook-interval", "5m"),
];

fn default_value(key: &str) -> Option<Value> {
    MODEL_DEFAULTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(k, v)| {
            if *k == "automatically-retry-hooks" {
                json!(*v == "true")
            } else {
                json!(v)
            }
        })
}

/// `juju model-config [--format F] [key] | k=v... | --reset k1,k2`.
pub fn model_config(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--format",
        "-o",
        "--output",
        "--reset",
        "--file",
        "--ignore-read-only-fields",
    ])?;
    super::refuse(l, &["--file", "--ignore-read-only-fields"])?;
    let dir = ensure_model(root, l)?;
    let sets: Vec<&String> = l.pos.iter().filter(|p| p.contains('=')).collect();
    let resets = l.list(&["--reset"]);
    if !sets.is_empty() || !resets.is_empty() {
        if sets.len() != l.pos.len() {
            return Err(SimError::Usage(
                "cannot mix getting and setting model configuration".into(),
            ));
        }
        let mut values = Vec::new();
        for p in sets {
            let Some((k, v)) = util::split_kv(p) else {
                return Err(SimError::Usage(format!("expected key=value, got {p:?}")));
            };
            values.push((k.to_string(), model_value(k, v)?));
        }
        for k in &resets {
            read_only(k)?;
        }
        let mut s = session(&dir)?;
        {
            let mut core = s.core();
            for (k, v) in values {
                core.world.model_config.insert(k, v);
            }
            for k in &resets {
                core.world.model_config.remove(k);
            }
        }
        s.commit()?;
        return Ok(0);
    }
    let w = World::load(&Paths::new(dir))?;
    let mut out = Map::new();
    let fixed = [
        ("name", json!(w.name)),
        ("type", json!("jujusim")),
        ("uuid", json!(w.uuid)),
        ("agent-version", json!(w.juju_version)),
    ];
    for (k, v) in fixed {
        out.insert(k.into(), json!({"Value": v, "Source": "model"}));
    }
    for (k, _) in MODEL_DEFAULTS {
        out.insert(
            (*k).into(),
            json!({"Value": default_value(k), "Source": "default"}),
        );
    }
    for (k, v) in &w.model_config {
        out.insert(k.clone(), json!({"Value": v, "Source": "model"}));
    }
    match l.pos.as_slice() {
        [] => print_as(l, &Value::Object(out), "yaml"),
        [key] => match out.get(key) {
            Some(e) => {
                match l.value(&["--format", "-o", "--output"]) {
                    Some("json") => println!("{}", e["Value"]),
                    _ => match &e["Value"] {
                        Value::String(s) => println!("{s}"),
                        v => println!("{v}"),
                    },
                }
                Ok(0)
            }
            None => Err(SimError::Failed(format!(
                "key {key:?} not found in {:?} model",
                w.name
            ))),
        },
        _ => Err(SimError::Usage(
            "can only retrieve a single value, or all values".into(),
        )),
    }
}

fn read_only(k: &str) -> Result<()> {
    if ["name", "type", "uuid", "agent-version"].contains(&k) {
        return Err(SimError::Failed(format!(
            "cannot set or reset {k:?}: it is read-only"
        )));
    }
    Ok(())
}

pub(super) fn model_value(k: &str, v: &str) -> Result<Value> {
    read_only(k)?;
    match k {
        "automatically-retry-hooks" => match v {
            "true" => Ok(json!(true)),
            "false" => Ok(json!(false)),
            _ => Err(SimError::Failed(format!(
                "automatically-retry-hooks: expected bool, got string({v:?})"
            ))),
        },
        "update-status-hook-interval" => match util::parse_go_duration(v) {
            Some(d) if d >= std::time::Duration::from_secs(1) => Ok(json!(v)),
            _ => Err(SimError::Failed(format!(
                "update-status-hook-interval: {v:?} is not a valid duration of at least 1s"
            ))),
        },
        _ => {
            if !MODEL_DEFAULTS.iter().any(|(d, _)| *d == k) {
                eprintln!("WARNING key {k:?} is not defined in the known model configuration: possible misspelling");
            }
            Ok(json!(v))
        }
    }
}

fn owner_name(s: &Secret) -> String {
    match &s.owner {
        SecretOwner::Application(a) => a.clone(),
        SecretOwner::Unit(u) => u.clone(),
        SecretOwner::Model(_) => "<model>".into(),
    }
}

fn timestamp(s: &Secret) -> String {
    if s.create_time.is_empty() {
        util::now_rfc3339()
    } else {
        s.create_time.clone()
    }
}

/// One secret as `juju secrets` / `show-secret` print it (`reveal` adds `content.Data`).
fn secret_json(s: &Secret, reveal: bool, revision: Option<u32>, revisions: bool) -> Result<Value> {
    let mut v = json!({
        "revision": s.latest,
        "owner": owner_name(s),
        "created": timestamp(s),
        "updated": timestamp(s),
        "rotation": s.rotate.clone().unwrap_or_else(|| "never".into()),
    });
    if let Some(l) = &s.label {
        let key = if matches!(s.owner, SecretOwner::Model(_)) {
            "name"
        } else {
            "label"
        };
        v[key] = json!(l);
    }
    if let Some(d) = &s.description {
        v["description"] = json!(d);
    }
    if let Some(e) = &s.expire {
        v["expires"] = json!(e);
    }
    let access: Vec<Value> = s
        .grants
        .iter()
        .map(|g| {
            let target = crate::tools::secret::access_target(g);
            let scope = match &s.owner {
                SecretOwner::Model(uuid) => format!("model-{uuid}"),
                _ => format!("relation-{}", g.relation),
            };
            json!({"target": target, "scope": scope, "role": "view"})
        })
        .collect();
    if !access.is_empty() {
        v["access"] = json!(access);
    }
    if revisions {
        v["revisions"] = json!(s
            .revisions
            .keys()
            .map(|r| json!({"revision": r, "created": timestamp(s), "updated": timestamp(s)}))
            .collect::<Vec<_>>());
    }
    if let Some(r) = revision {
        if !s.revisions.contains_key(&r) {
            return Err(SimError::Failed(format!("secret revision {r} not found")));
        }
        v["revision"] = json!(r);
    }
    if reveal {
        let rev = revision.unwrap_or(s.latest);
        let Some(bag) = s.revisions.get(&rev) else {
            return Err(SimError::Failed(format!("secret revision {rev} not found")));
        };
        let mut data = Map::new();
        for (k, b64) in bag {
            let plain = util::base64_decode(b64)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            data.insert(k.clone(), json!(plain));
        }
        v["content"] = json!({"Data": data});
    }
    Ok(v)
}

/// A secret named by `secret:<xid>`, `<xid>`, or its name (user secrets) / label.
fn find_secret<'a>(w: &'a World, id: &str) -> Result<&'a Secret> {
    let bare = id.strip_prefix("secret:").unwrap_or(id);
    let bare = bare.rsplit('/').next().unwrap_or(bare);
    w.secrets
        .get(bare)
        .or_else(|| w.secrets.values().find(|s| s.label.as_deref() == Some(id)))
        .ok_or_else(|| SimError::Failed(format!("secret {id:?} not found")))
}

/// `juju secrets [--owner O]`.
pub fn secrets(root: &Path, l: &Line) -> Result<i32> {
    l.only(&["--format", "-o", "--output", "--owner"])?;
    let dir = ensure_model(root, l)?;
    let w = World::load(&Paths::new(dir))?;
    let owner = l.value(&["--owner"]);
    let mut out = Map::new();
    for s in w.secrets.values() {
        if owner.is_some_and(|o| o != owner_name(s)) {
            continue;
        }
        out.insert(s.xid.clone(), secret_json(s, false, None, false)?);
    }
    print_as(l, &Value::Object(out), "tabular-as-yaml")
}

/// `juju show-secret <id|name> [--reveal] [--revision N] [--revisions]`.
pub fn show_secret(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--format",
        "-o",
        "--output",
        "--reveal",
        "-r",
        "--revision",
        "--revisions",
    ])?;
    let dir = ensure_model(root, l)?;
    let [id] = l.pos.as_slice() else {
        return Err(SimError::Usage("secret URI or name is required".into()));
    };
    let revision =
        match l.value(&["--revision"]) {
            None => None,
            Some(r) => Some(r.parse::<u32>().map_err(|_| {
                SimError::Usage(format!("invalid value {r:?} for option --revision"))
            })?),
        };
    let w = World::load(&Paths::new(dir))?;
    let s = find_secret(&w, id)?;
    let reveal = l.has("--reveal");
    let v = json!({ s.xid.clone(): secret_json(s, reveal, revision, l.has("--revisions"))? });
    print_as(l, &v, "yaml")
}

/// Key/values of a user secret: `k=v` arguments or the YAML mapping of `--file`.
fn secret_content(l: &Line, pairs: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(file) = l.value(&["--file"]) {
        let text = std::fs::read_to_string(file)
            .map_err(|e| SimError::io("cannot read", Path::new(file), e))?;
        let y: serde_yaml::Value = serde_yaml::from_str(&text)
            .map_err(|e| SimError::Failed(format!("{file}: invalid YAML: {e}")))?;
        match serde_json::to_value(y) {
            Ok(Value::Object(m)) => out = m,
            _ => return Err(SimError::Failed(format!("{file} must hold a YAML mapping"))),
        }
    }
    for p in pairs {
        let Some((k, v)) = util::split_kv(p) else {
            return Err(SimError::Usage(format!("expected key=value, got {p:?}")));
        };
        out.insert(k.to_string(), json!(v));
    }
    if out.is_empty() {
        return Err(SimError::Usage("missing secret value or filename".into()));
    }
    for (k, v) in &out {
        let valid = k.len() >= 3
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !k.starts_with('-')
            && !k.ends_with('-');
        if !valid {
            return Err(SimError::Failed(format!("invalid key {k:?}")));
        }
        if !v.is_string() {
            return Err(SimError::Failed(format!(
                "secret value for {k:?} must be a string"
            )));
        }
    }
    Ok(out)
}

/// `juju add-secret <name> [k=v...] [--file F] [--info I]`: prints the new secret's URI.
pub fn add_secret(root: &Path, l: &Line) -> Result<i32> {
    l.only(&["--file", "--info"])?;
    let dir = ensure_model(root, l)?;
    let [name, pairs @ ..] = l.pos.as_slice() else {
        return Err(SimError::Usage("missing secret name".into()));
    };
    let content = secret_content(l, pairs)?;
    let mut s = session(&dir)?;
    let xid = {
        let mut core = s.core();
        let w = &mut core.world;
        if w.secrets.values().any(|s| {
            matches!(s.owner, SecretOwner::Model(_)) && s.label.as_deref() == Some(name.as_str())
        }) {
            return Err(SimError::Failed(format!(
                "secret with name {name:?} already exists"
            )));
        }
        let xid = util::xid();
        let bag = content
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    util::base64_encode(v.as_str().unwrap_or_default().as_bytes()),
                )
            })
            .collect();
        let model = w.uuid.clone();
        w.secrets.insert(
            xid.clone(),
            Secret {
                xid: xid.clone(),
                owner: SecretOwner::Model(model),
                label: Some(name.clone()),
                description: l.value(&["--info"]).map(str::to_string),
                expire: None,
                rotate: None,
                revisions: [(1, bag)].into_iter().collect(),
                latest: 1,
                grants: Vec::new(),
                consumers: Default::default(),
                create_time: util::now_rfc3339(),
            },
        );
        xid
    };
    s.commit()?;
    println!("secret:{xid}");
    Ok(0)
}

/// `juju grant-secret <id|name> app1,app2`.
pub fn grant_secret(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[])?;
    let dir = ensure_model(root, l)?;
    let [id, apps] = l.pos.as_slice() else {
        return Err(SimError::Usage(
            "grant-secret takes a secret and a comma-separated list of applications".into(),
        ));
    };
    let mut s = session(&dir)?;
    {
        let mut core = s.core();
        let w = &mut core.world;
        let xid = find_secret(w, id)?.xid.clone();
        let names: Vec<&str> = apps.split(',').filter(|a| !a.is_empty()).collect();
        for a in &names {
            if !w.apps.contains_key(*a) {
                return Err(SimError::Failed(format!("application {a:?} not found")));
            }
        }
        let Some(sec) = w.secrets.get_mut(&xid) else {
            return Err(SimError::Failed(format!("secret {id:?} not found")));
        };
        if !matches!(sec.owner, SecretOwner::Model(_)) {
            return Err(SimError::Failed(format!(
                "secret {id:?} is owned by {}: only user secrets can be granted with juju grant-secret",
                owner_name(sec)
            )));
        }
        for a in names {
            let g = Grant {
                relation: 0,
                target: a.to_string(),
            };
            if !sec.grants.contains(&g) {
                sec.grants.push(g);
            }
        }
    }
    s.commit()?;
    Ok(0)
}

/// `juju debug-log [--limit N] [--include U]...`: the hook timeline, oldest first (it returns:
/// jujusim does not tail).
pub fn debug_log(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--limit",
        "-n",
        "--lines",
        "--include",
        "-i",
        "--replay",
        "--no-tail",
        "--level",
        "-l",
    ])?;
    super::refuse(l, &["--level", "-l"])?;
    let dir = ensure_model(root, l)?;
    let paths = Paths::new(dir);
    let mut entries = crate::timeline::read(&paths)?;
    let include: Vec<&str> = l
        .flags
        .iter()
        .filter(|(n, _)| n == "--include" || n == "-i")
        .filter_map(|(_, v)| v.as_deref())
        .collect();
    if !include.is_empty() {
        // A unit (`app/0`, `unit-app-0`) or an application (`app`), as Juju's --include.
        entries.retain(|e| {
            include.iter().any(|i| {
                e.unit == *i
                    || e.unit.replace('/', "-") == i.trim_start_matches("unit-")
                    || app_of(&e.unit) == *i
            })
        });
    }
    let limit = match l.value(&["--limit", "-n", "--lines"]) {
        None => 0,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| SimError::Usage(format!("invalid value {n:?} for option --limit")))?,
    };
    if limit > 0 && entries.len() > limit {
        entries.drain(..entries.len() - limit);
    }
    print!("{}", render::log_table(&entries));
    Ok(0)
}
