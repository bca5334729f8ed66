//! Secret tools (Juju 3.6 semantics, reference §2.1 and the jujusim contract):
//! - owner: an application (managed by its leader, readable by all its units) or a unit;
//! - consumers: units of an application granted on a relation; they track the revision they
//!   first read until `--refresh`; `--peek` reads the latest once;
//! - every change is part of the hook's transaction (committed on exit 0).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::flags::{self, b, v, Flag, Parsed};
use super::format::{render, YAML_JSON};
use super::relation::relation_arg;
use super::server::Call;
use super::{check_empty, out, run_err, usage, ToolErr, ToolResult};
use crate::model::{app_of, Consumer, Grant, Secret, SecretOwner, World};
use crate::util;

const UPSERT: &[Flag] = &[
    v(&["expire"]),
    v(&["rotate"]),
    v(&["description"]),
    v(&["label"]),
    v(&["file"]),
    v(&["owner"]),
];

const MAX_VALUE: usize = 8 * 1024;
const MAX_CONTENT: usize = 64 * 1024;

fn valid_key(k: &str) -> bool {
    // ^[a-z](?:-?[a-z0-9]){2,}$
    let b = k.as_bytes();
    if b.is_empty() || !b[0].is_ascii_lowercase() {
        return false;
    }
    let mut count = 0;
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'-' {
            i += 1;
        }
        match b.get(i) {
            Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => count += 1,
            _ => return false,
        }
        i += 1;
    }
    count >= 2
}

/// Go's `time.ParseDuration` for the common units; seconds.
fn parse_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[u_end..];
    }
    Some(total)
}

/// Content arguments `k=v`, `k#base64=v`, `k#file=path` (plus `--file`), base64-encoded as Juju
/// stores them.
fn content(c: &Call, p: &Parsed, args: &[String]) -> Result<BTreeMap<String, String>, ToolErr> {
    let mut raw: Vec<(String, String)> = Vec::new();
    for a in args {
        let stripped = a.trim_end_matches('=');
        let idx = stripped.find('=').unwrap_or(0);
        if idx < 1 {
            return usage(format!("key value {a:?} not valid"));
        }
        let (k, v) = (&a[..idx], &a[idx + 1..]);
        if let Some(k) = k.strip_suffix("#file") {
            let data = std::fs::read_to_string(c.cwd.join(v)).map_err(|e| {
                ToolErr::Usage(format!("reading content for secret key {k:?}: {e}"))
            })?;
            raw.push((k.to_string(), data));
        } else {
            raw.push((k.to_string(), v.to_string()));
        }
    }
    if let Some(f) = p.value("file") {
        let text = std::fs::read_to_string(c.cwd.join(f))
            .map_err(|e| ToolErr::Usage(format!("open {f}: {e}")))?;
        raw.extend(super::relation::settings_from_yaml(&text)?);
    }
    let mut out = BTreeMap::new();
    let mut size = 0;
    for (k, v) in raw {
        if v.len() > MAX_VALUE {
            return usage(format!(
                "secret content for key {k:?} too large: {} bytes",
                v.len()
            ));
        }
        size += v.len();
        if let Some(k) = k.strip_suffix("#base64") {
            if !valid_key(k) {
                return usage(format!("key {k:?} not valid"));
            }
            out.insert(k.to_string(), v);
        } else {
            if !valid_key(&k) {
                return usage(format!("key {k:?} not valid"));
            }
            out.insert(k, util::base64_encode(v.as_bytes()));
        }
    }
    if size > MAX_CONTENT {
        return usage(format!("secret content too large: {size} bytes"));
    }
    Ok(out)
}

/// Checks `--expire`, `--rotate`, `--owner` (Init errors, exit 2).
fn check_upsert_flags(p: &Parsed) -> Result<(), ToolErr> {
    if let Some(e) = p.value("expire") {
        let is_time = e.len() >= 19 && e.as_bytes().get(4) == Some(&b'-') && e.contains('T');
        match parse_duration(e) {
            Some(d) if d <= 0.0 => {
                return usage(format!("negative expire duration {e:?} not valid"))
            }
            Some(_) => {}
            None if is_time => {}
            None => return usage(format!("expire time or duration {e:?} not valid")),
        }
    }
    if let Some(r) = p.value("rotate") {
        if !matches!(
            r,
            "never" | "hourly" | "daily" | "weekly" | "monthly" | "quarterly" | "yearly"
        ) {
            return usage(format!("rotate policy {r:?} not valid"));
        }
    }
    if let Some(o) = p.value("owner") {
        if o != "application" && o != "unit" {
            return usage(format!("secret owner {o:?} not valid"));
        }
    }
    Ok(())
}

fn expire_value(e: &str) -> String {
    match parse_duration(e) {
        Some(d) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|x| x.as_secs())
                .unwrap_or(0);
            util::rfc3339(now + d as u64)
        }
        None => e.to_string(),
    }
}

fn owns(unit: &str, s: &Secret) -> bool {
    match &s.owner {
        SecretOwner::Application(a) => a == app_of(unit),
        SecretOwner::Unit(u) => u == unit,
        SecretOwner::Model(_) => false,
    }
}

/// May this unit manage (set, grant, revoke, remove) the secret?
fn check_manage(c: &mut Call, xid: &str) -> Result<(), ToolErr> {
    let Some(s) = c.world.secrets.get(xid) else {
        return run_err(format!("secret {xid:?} not found"));
    };
    match s.owner.clone() {
        SecretOwner::Unit(u) if u == c.ctx.unit => Ok(()),
        SecretOwner::Application(a) if a == c.ctx.app() => {
            if c.ctx.is_leader(c.world) {
                Ok(())
            } else {
                run_err("this unit is not the leader")
            }
        }
        _ => run_err("permission denied"),
    }
}

/// Is the unit (or its application) granted the secret on a live relation it takes part in
/// (or, for a user secret, granted at all)?
pub fn granted(world: &World, unit: &str, s: &Secret) -> bool {
    let app = app_of(unit);
    let user_secret = matches!(s.owner, SecretOwner::Model(_));
    s.grants.iter().any(|g| {
        (g.target == unit || g.target == app)
            && (user_secret
                || world
                    .relations
                    .get(&g.relation)
                    .is_some_and(|r| r.involves(app)))
    })
}

/// A grant's target as Juju names it in secret access lists: `unit-app-0`, `application-app`.
pub fn access_target(g: &Grant) -> String {
    match crate::model::parse_unit(&g.target) {
        Some(_) => format!("unit-{}", g.target.replace('/', "-")),
        None => format!("application-{}", g.target),
    }
}

fn parse_uri(arg: &str) -> Result<String, ToolErr> {
    World::parse_secret_ref(arg)
        .ok_or_else(|| ToolErr::Usage(format!("secret URI {arg:?} not valid")))
}

fn label_taken(world: &World, owner: &SecretOwner, label: &str, except: Option<&str>) -> bool {
    world.secrets.values().any(|s| {
        &s.owner == owner && s.label.as_deref() == Some(label) && Some(s.xid.as_str()) != except
    })
}

pub fn secret_add(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, UPSERT)?;
    if p.positional.is_empty() && p.value("file").is_none() {
        return usage("missing secret value or filename");
    }
    check_upsert_flags(&p)?;
    let data = content(c, &p, &p.positional)?;
    let owner = if p.value("owner") == Some("unit") {
        SecretOwner::Unit(c.ctx.unit.clone())
    } else {
        if !c.ctx.is_leader(c.world) {
            return run_err("this unit is not the leader");
        }
        SecretOwner::Application(c.ctx.app().to_string())
    };
    if data.is_empty() {
        return run_err("empty secret value not valid");
    }
    let label = p.value("label").map(str::to_string);
    if let Some(l) = &label {
        if label_taken(c.world, &owner, l, None) {
            return run_err(format!("secret with label {l:?} already exists"));
        }
    }
    let xid = util::xid();
    let secret = Secret {
        xid: xid.clone(),
        owner,
        label,
        description: p.value("description").map(str::to_string),
        expire: p.value("expire").map(expire_value),
        rotate: p.value("rotate").map(str::to_string),
        revisions: [(1, data)].into(),
        latest: 1,
        grants: Vec::new(),
        consumers: BTreeMap::new(),
        create_time: util::now_rfc3339(),
    };
    c.world.secrets.insert(xid.clone(), secret);
    c.ctx.created_secrets.insert(xid.clone());
    out(format!("{}\n", c.world.secret_uri(&xid)))
}

fn decoded(bag: &BTreeMap<String, String>) -> Map<String, Value> {
    bag.iter()
        .map(|(k, v)| {
            let text = util::base64_decode(v)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|| v.clone());
            (k.clone(), Value::String(text))
        })
        .collect()
}

pub fn secret_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(
        c.args,
        &[
            v(&["label"]),
            b(&["peek"]),
            b(&["refresh"]),
            flags::FORMAT,
            flags::OUTPUT,
        ],
    )?;
    let mut args = p.positional.iter();
    let uri = match args.next() {
        Some(a) => Some(parse_uri(a)?),
        None => None,
    };
    let label = p.value("label").map(str::to_string);
    if uri.is_none() && label.is_none() {
        return usage("require either a secret URI or label");
    }
    if p.flag("peek") && p.flag("refresh") {
        return usage("specify one of --peek or --refresh but not both");
    }
    let key = args.next().cloned();
    check_empty(&args.cloned().collect::<Vec<_>>())?;
    let unit = c.ctx.unit.clone();

    // Resolve the secret.
    let xid = match &uri {
        Some(x) => {
            if !c.world.secrets.contains_key(x) {
                return run_err(format!("secret {x:?} not found"));
            }
            x.clone()
        }
        None => {
            let l = label.as_deref().unwrap_or_default();
            let owned = c
                .world
                .secrets
                .values()
                .find(|s| owns(&unit, s) && s.label.as_deref() == Some(l));
            let consumed = c.world.secrets.values().find(|s| {
                s.consumers
                    .get(&unit)
                    .is_some_and(|k| k.label.as_deref() == Some(l))
            });
            match owned.or(consumed) {
                Some(s) => s.xid.clone(),
                None => return run_err(format!("secret with label {l:?} not found")),
            }
        }
    };
    let is_owner = c.world.secrets.get(&xid).is_some_and(|s| owns(&unit, s));
    let allowed = is_owner
        || c.world
            .secrets
            .get(&xid)
            .is_some_and(|s| granted(c.world, &unit, s));
    if !allowed {
        return run_err("permission denied");
    }
    let Some(s) = c.world.secrets.get_mut(&xid) else {
        return run_err(format!("secret {xid:?} not found"));
    };
    let revision = if is_owner {
        if uri.is_some() {
            if let Some(l) = &label {
                s.label = Some(l.clone());
            }
        }
        s.latest
    } else {
        let latest = s.latest;
        let consumer = s
            .consumers
            .entry(unit.clone())
            .or_insert_with(Consumer::default);
        if uri.is_some() {
            if let Some(l) = &label {
                consumer.label = Some(l.clone());
            }
        }
        if p.flag("peek") {
            latest
        } else {
            if p.flag("refresh") || consumer.revision == 0 {
                consumer.revision = latest;
            }
            consumer.revision
        }
    };
    let bag = s
        .revisions
        .get(&revision)
        .or_else(|| s.revisions.get(&s.latest))
        .cloned()
        .unwrap_or_default();
    let v = match key {
        None => Value::Object(decoded(&bag)),
        Some(k) => {
            if let Some(raw) = k.strip_suffix("#base64") {
                match bag.get(raw) {
                    Some(v) => json!(v),
                    None => return run_err(format!("secret key {raw:?} not found")),
                }
            } else {
                match decoded(&bag).remove(&k) {
                    Some(v) => v,
                    None => return run_err(format!("secret key {k:?} not found")),
                }
            }
        }
    };
    render(&p, &v, "yaml", YAML_JSON, c.cwd)
}

pub fn secret_set(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, UPSERT)?;
    let Some(first) = p.positional.first() else {
        return usage("missing secret URI");
    };
    let xid = parse_uri(first)?;
    check_upsert_flags(&p)?;
    let data = content(c, &p, &p.positional[1..])?;
    check_manage(c, &xid)?;
    let owner = c.world.secrets.get(&xid).map(|s| s.owner.clone());
    if let (Some(l), Some(o)) = (p.value("label"), &owner) {
        if label_taken(c.world, o, l, Some(&xid)) {
            return run_err(format!("secret with label {l:?} already exists"));
        }
    }
    let fresh = c.ctx.created_secrets.contains(&xid);
    let bumped = c.ctx.new_revisions.contains(&xid);
    let Some(s) = c.world.secrets.get_mut(&xid) else {
        return run_err(format!("secret {xid:?} not found"));
    };
    if let Some(l) = p.value("label") {
        s.label = Some(l.to_string());
    }
    if let Some(d) = p.value("description") {
        s.description = Some(d.to_string());
    }
    if let Some(e) = p.value("expire") {
        s.expire = Some(expire_value(e));
    }
    if let Some(r) = p.value("rotate") {
        s.rotate = Some(r.to_string());
    }
    let mut new_revision = false;
    if !data.is_empty() && s.revisions.get(&s.latest) != Some(&data) {
        if fresh || bumped {
            // Still one pending revision within this hook.
            s.revisions.insert(s.latest, data);
        } else {
            s.latest += 1;
            s.revisions.insert(s.latest, data);
            new_revision = true;
        }
    }
    if new_revision {
        c.ctx.new_revisions.insert(xid);
    }
    out(String::new())
}

fn find_owned_by_label(c: &Call, label: &str) -> Option<String> {
    c.world
        .secrets
        .values()
        .find(|s| owns(&c.ctx.unit, s) && s.label.as_deref() == Some(label))
        .map(|s| s.xid.clone())
}

pub fn secret_info_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[v(&["label"]), flags::FORMAT, flags::OUTPUT])?;
    let uri = match p.positional.first() {
        Some(a) => Some(parse_uri(a)?),
        None => None,
    };
    check_empty(p.positional.get(1..).unwrap_or(&[]))?;
    let xid = match (&uri, p.value("label")) {
        (Some(x), _) => x.clone(),
        (None, Some(l)) => match find_owned_by_label(c, l) {
            Some(x) => x,
            None => return run_err(format!("secret {l:?} not found")),
        },
        (None, None) => return usage("require either a secret URI or label"),
    };
    let Some(s) = c.world.secrets.get(&xid).filter(|s| owns(&c.ctx.unit, s)) else {
        return run_err(format!("secret {xid:?} not found"));
    };
    let mut info = Map::new();
    info.insert("revision".into(), json!(s.latest));
    if let Some(l) = &s.label {
        info.insert("label".into(), json!(l));
    }
    info.insert(
        "owner".into(),
        json!(match s.owner {
            SecretOwner::Application(_) => "application",
            SecretOwner::Unit(_) => "unit",
            SecretOwner::Model(_) => "model",
        }),
    );
    if let Some(d) = &s.description {
        info.insert("description".into(), json!(d));
    }
    if let Some(e) = &s.expire {
        info.insert("expiry".into(), json!(e));
    }
    info.insert(
        "rotation".into(),
        json!(s.rotate.clone().unwrap_or_else(|| "never".into())),
    );
    let access: Vec<Value> = s
        .grants
        .iter()
        .map(|g| {
            let target = access_target(g);
            let scope = c
                .world
                .relations
                .get(&g.relation)
                .map(|r| format!("relation-{}", r.key().replace(' ', "#")))
                .unwrap_or_default();
            json!({"target": target, "scope": scope, "role": "view"})
        })
        .collect();
    if !access.is_empty() {
        info.insert("access".into(), Value::Array(access));
    }
    let v = json!({ xid: Value::Object(info) });
    render(&p, &v, "yaml", YAML_JSON, c.cwd)
}

pub fn secret_ids(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[flags::FORMAT, flags::OUTPUT])?;
    check_empty(&p.positional)?;
    let ids: Vec<Value> = c
        .world
        .secrets
        .values()
        .filter(|s| owns(&c.ctx.unit, s))
        .map(|s| json!(s.xid))
        .collect();
    let v = if ids.is_empty() {
        Value::Null
    } else {
        Value::Array(ids)
    };
    render(&p, &v, "smart", super::format::ALL, c.cwd)
}

fn grant_args(c: &mut Call, extra: &[Flag]) -> Result<(Parsed, String, u64), ToolErr> {
    let mut spec = vec![v(&["r", "relation"]), v(&["unit"])];
    spec.extend_from_slice(extra);
    let p = flags::parse(c.args, &spec)?;
    let Some(first) = p.positional.first() else {
        return usage("missing secret URI");
    };
    let xid = parse_uri(first)?;
    check_empty(&p.positional[1..])?;
    let Some(rel) = relation_arg(c, &p)? else {
        return usage("missing relation");
    };
    Ok((p, xid, rel))
}

/// The application on the other side of relation `rel`.
fn remote_app(c: &Call, rel: u64) -> String {
    c.world
        .relations
        .get(&rel)
        .and_then(|r| r.remote_app(c.ctx.app()))
        .unwrap_or_default()
        .to_string()
}

pub fn secret_grant(c: &mut Call) -> ToolResult {
    let (p, xid, rel) = grant_args(c, &[])?;
    check_manage(c, &xid)?;
    let remote = remote_app(c, rel);
    let target = match p.value("unit") {
        Some(u) => {
            if app_of(u) != remote || crate::model::parse_unit(u).is_none() {
                return run_err(format!(
                    "cannot specify unit {u:?} in relation to application {remote:?}"
                ));
            }
            u.to_string()
        }
        None => remote,
    };
    if let Some(s) = c.world.secrets.get_mut(&xid) {
        let g = Grant {
            relation: rel,
            target,
        };
        if !s.grants.contains(&g) {
            s.grants.push(g);
        }
    }
    out(String::new())
}

pub fn secret_revoke(c: &mut Call) -> ToolResult {
    let (p, xid, rel) = grant_args(c, &[v(&["app", "application"])])?;
    check_manage(c, &xid)?;
    let remote = remote_app(c, rel);
    let target = p
        .value("unit")
        .or(p.value("app"))
        .map(str::to_string)
        .unwrap_or(remote);
    if let Some(s) = c.world.secrets.get_mut(&xid) {
        s.grants
            .retain(|g| !(g.relation == rel && g.target == target));
        let still: Vec<String> = s.consumers.keys().cloned().collect();
        let snapshot = s.clone();
        let gone: Vec<String> = still
            .into_iter()
            .filter(|u| !granted(c.world, u, &snapshot))
            .collect();
        if let Some(s) = c.world.secrets.get_mut(&xid) {
            for u in gone {
                s.consumers.remove(&u);
            }
        }
    }
    out(String::new())
}

pub fn secret_remove(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[v(&["revision"])])?;
    let Some(first) = p.positional.first() else {
        return usage("missing secret URI");
    };
    let xid = parse_uri(first)?;
    check_empty(&p.positional[1..])?;
    let revision = match p.value("revision") {
        Some(r) => match r.parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => return usage(format!("revision {r:?} not valid")),
        },
        None => None,
    };
    check_manage(c, &xid)?;
    match revision {
        None => {
            c.world.secrets.remove(&xid);
        }
        Some(r) => {
            let Some(s) = c.world.secrets.get_mut(&xid) else {
                return run_err(format!("secret {xid:?} not found"));
            };
            if s.revisions.remove(&r).is_none() {
                return run_err(format!("secret revision {r} not found"));
            }
            if s.revisions.is_empty() {
                c.world.secrets.remove(&xid);
            }
        }
    }
    out(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_durations() {
        assert!(valid_key("super-password"));
        assert!(valid_key("abc"));
        assert!(!valid_key("ab"));
        assert!(!valid_key("a--b"));
        assert!(!valid_key("Abc"));
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_duration("x"), None);
    }
}
