//! action-get, action-set, action-fail, action-log. In 3.6 they exist in every context and fail
//! with `not running an action` outside one.

use serde_json::{Map, Value};

use super::ctx::ActionCtx;
use super::flags;
use super::format::{render, ALL};
use super::server::Call;
use super::{check_empty, out, usage, ToolErr, ToolResult};

fn action<'a>(c: &'a mut Call) -> Result<&'a mut ActionCtx, ToolErr> {
    c.ctx
        .action
        .as_mut()
        .ok_or_else(|| ToolErr::Run("not running an action".into()))
}

pub fn action_get(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[flags::FORMAT, flags::OUTPUT])?;
    let key = p.positional.first().cloned();
    check_empty(p.positional.get(1..).unwrap_or(&[]))?;
    let params = Value::Object(action(c)?.params.clone());
    let v = match key {
        None => params,
        Some(path) => {
            let mut node = &params;
            for part in path.split('.') {
                match node.get(part) {
                    Some(n) => node = n,
                    None => {
                        node = &Value::Null;
                        break;
                    }
                }
            }
            node.clone()
        }
    };
    render(&p, &v, "smart", ALL, c.cwd)
}

fn valid_key(k: &str) -> bool {
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = k.as_bytes();
    !b.is_empty()
        && ok(b[0])
        && ok(b[b.len() - 1])
        && b.iter().all(|&c| ok(c) || c == b'-' || c == b'.')
        && k.split('.').all(|seg| {
            let s = seg.as_bytes();
            !s.is_empty() && ok(s[0]) && ok(s[s.len() - 1])
        })
}

pub fn action_set(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[])?;
    let mut pairs = Vec::new();
    for a in &p.positional {
        let Some((k, v)) = a.split_once('=') else {
            return usage(format!("argument {a:?} must be of the form key...=value"));
        };
        if !valid_key(k) {
            return usage(format!(
                "key {k:?} must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods"
            ));
        }
        if matches!(
            k,
            "stdout" | "stdout-encoding" | "stderr" | "stderr-encoding"
        ) {
            return usage(format!("cannot set reserved action key {k:?}"));
        }
        pairs.push((k.to_string(), v.to_string()));
    }
    let act = action(c)?;
    for (k, v) in pairs {
        let parts: Vec<&str> = k.split('.').collect();
        let mut node: &mut Map<String, Value> = &mut act.results;
        for part in &parts[..parts.len() - 1] {
            let e = node
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            node = match e {
                Value::Object(m) => m,
                _ => unreachable!("just made an object"),
            };
        }
        node.insert(parts[parts.len() - 1].to_string(), Value::String(v));
    }
    out(String::new())
}

pub fn action_fail(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[])?;
    let msg =
        p.positional.first().cloned().unwrap_or_else(|| {
            "action failed without reason given, check action for errors".into()
        });
    check_empty(p.positional.get(1..).unwrap_or(&[]))?;
    action(c)?.failed = Some(msg);
    out(String::new())
}

pub fn action_log(c: &mut Call) -> ToolResult {
    let p = flags::parse(c.args, &[])?;
    if p.positional.is_empty() {
        return usage("no message specified");
    }
    let msg = p.positional.join(" ");
    let act = action(c)?;
    act.log.push(msg);
    out(String::new())
}
