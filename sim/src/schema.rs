//! Validation of operator input: config values against `config.yaml` option types, and action
//! parameters against the JSON-schema subset of `actions.yaml` (type, enum, required, default,
//! additionalProperties, which defaults to true as in Juju 3.6).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::charm::{ActionSpec, ConfigOption};
use crate::error::{Result, SimError};
use crate::{fail, usage};

/// Parses a CLI config value for an option of the given type.
pub fn parse_config_value(key: &str, opt: &ConfigOption, raw: &str) -> Result<Value> {
    let bad = |what: &str| {
        SimError::Failed(format!(
            "option {key:?} expects {what}, got {raw:?}; nothing was changed"
        ))
    };
    Ok(match opt.kind.as_str() {
        "int" => Value::from(raw.trim().parse::<i64>().map_err(|_| bad("an int"))?),
        "float" => {
            let f: f64 = raw.trim().parse().map_err(|_| bad("a float"))?;
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| bad("a finite float"))?
        }
        "boolean" => match raw.trim() {
            "true" | "True" | "TRUE" | "yes" | "on" => Value::Bool(true),
            "false" | "False" | "FALSE" | "no" | "off" => Value::Bool(false),
            _ => return Err(bad("a boolean (true or false)")),
        },
        "secret" => {
            if !raw.is_empty() && crate::model::World::parse_secret_ref(raw).is_none() {
                return Err(bad(
                    "a secret URI (secret://<model-uuid>/<id> or secret:<id>)",
                ));
            }
            Value::String(raw.to_string())
        }
        _ => Value::String(raw.to_string()),
    })
}

/// An operator's setting under an option of a refreshed charm: kept as it is when it fits the
/// option's type, converted when Juju's checkers would coerce it (a string holding an int for
/// an `int` option, an int for a `float` one, "true" for a `boolean`), else `None`: Juju's
/// `FilterSettings` drops it and the option goes back to its default.
pub fn coerce_config_value(opt: &ConfigOption, v: &Value) -> Option<Value> {
    let fits = match opt.kind.as_str() {
        "int" => v.is_i64() || v.is_u64(),
        "float" => v.is_number(),
        "boolean" => v.is_boolean(),
        "secret" => v
            .as_str()
            .is_some_and(|s| s.is_empty() || crate::model::World::parse_secret_ref(s).is_some()),
        _ => v.is_string(),
    };
    if fits {
        return Some(v.clone());
    }
    match (opt.kind.as_str(), v) {
        ("int" | "float" | "boolean", Value::String(s)) => parse_config_value("", opt, s).ok(),
        _ => None,
    }
}

/// Parses `k=v` pairs for `config`/`deploy --config` against the charm's options.
pub fn parse_config_pairs(
    options: &BTreeMap<String, ConfigOption>,
    pairs: &[String],
) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let Some((k, v)) = crate::util::split_kv(p) else {
            usage!("expected key=value, got {p:?}");
        };
        let Some(opt) = options.get(k) else {
            let known: Vec<&str> = options.keys().map(String::as_str).collect();
            fail!(
                "unknown option {k:?}; this charm has: {}",
                if known.is_empty() {
                    "no options".to_string()
                } else {
                    known.join(", ")
                }
            );
        };
        out.insert(k.to_string(), parse_config_value(k, opt, v)?);
    }
    Ok(out)
}

/// A CLI action parameter value, read as a YAML scalar like `juju run` does (`n=3` is an int,
/// `true` a bool, `[a, b]` a list); with `string_args` every value stays a string.
pub fn parse_param_value(raw: &str, string_args: bool) -> Value {
    if string_args || raw.is_empty() {
        return Value::String(raw.to_string());
    }
    match serde_yaml::from_str::<serde_yaml::Value>(raw) {
        Ok(y) => serde_json::to_value(&y).unwrap_or_else(|_| Value::String(raw.to_string())),
        Err(_) => Value::String(raw.to_string()),
    }
}

/// `a.b=1 c=x` -> `{"a": {"b": 1}, "c": "x"}`.
pub fn parse_params(pairs: &[String], string_args: bool) -> Result<Map<String, Value>> {
    let mut root = Map::new();
    for p in pairs {
        let Some((k, v)) = crate::util::split_kv(p) else {
            usage!("expected key=value, got {p:?}");
        };
        let parts: Vec<&str> = k.split('.').collect();
        if parts.iter().any(|s| s.is_empty()) {
            usage!("bad parameter name {k:?}");
        }
        let mut node = &mut root;
        for part in &parts[..parts.len() - 1] {
            let entry = node
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            node = match entry {
                Value::Object(m) => m,
                _ => unreachable!("just made an object"),
            };
        }
        node.insert(
            parts[parts.len() - 1].to_string(),
            parse_param_value(v, string_args),
        );
    }
    Ok(root)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn matches_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn check_value(action: &str, path: &str, schema: &Value, v: &Value) -> Result<()> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| matches_type(v, t)) {
            let hint = if types.contains(&"string") {
                format!(" (values are read as YAML: quote it, e.g. {path}='\"{}\"', or pass --string-args)", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            } else {
                String::new()
            };
            fail!(
                "action {action:?}: parameter {path:?} must be of type {}, got {} {v}{hint}",
                types.join(" or "),
                type_name(v),
            );
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(v) {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            fail!(
                "action {action:?}: parameter {path:?} must be one of [{}], got {v}",
                list.join(", ")
            );
        }
    }
    if let (Some(props), Some(obj)) = (schema.get("properties"), v.as_object()) {
        check_object(action, path, schema, props, obj)?;
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check_value(action, &format!("{path}[{i}]"), items, item)?;
        }
    }
    Ok(())
}

fn check_object(
    action: &str,
    prefix: &str,
    schema: &Map<String, Value>,
    props: &Value,
    obj: &Map<String, Value>,
) -> Result<()> {
    let empty = Map::new();
    let props = props.as_object().unwrap_or(&empty);
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    if let Some(Value::Array(req)) = schema.get("required") {
        for r in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                fail!(
                    "action {action:?}: required parameter {:?} is missing",
                    join(r)
                );
            }
        }
    }
    let additional = schema
        .get("additionalProperties")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    for (k, v) in obj {
        match props.get(k) {
            Some(s) => check_value(action, &join(k), s, v)?,
            None if !additional => {
                let known: Vec<&str> = props.keys().map(String::as_str).collect();
                fail!(
                    "action {action:?}: unknown parameter {:?} (additionalProperties is false; known: {})",
                    join(k),
                    known.join(", ")
                );
            }
            None => {}
        }
    }
    Ok(())
}

/// Validates `params` against the action's schema and fills in top-level defaults.
pub fn validate_action(
    name: &str,
    spec: &ActionSpec,
    mut params: Map<String, Value>,
) -> Result<Map<String, Value>> {
    let schema = spec.schema.as_object().cloned().unwrap_or_default();
    let props = schema
        .get("properties")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    check_object(name, "", &schema, &props, &params)?;
    if let Some(props) = props.as_object() {
        for (k, s) in props {
            if let Some(d) = s.get("default") {
                params.entry(k.clone()).or_insert_with(|| d.clone());
            }
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(schema: Value) -> ActionSpec {
        ActionSpec {
            description: String::new(),
            schema,
        }
    }

    #[test]
    fn params_are_yaml_typed_nested_and_validated() {
        let p = parse_params(&["n=3".into(), "b=true".into(), "a.b=x".into()], false).unwrap();
        assert_eq!(json!(p), json!({"n": 3, "b": true, "a": {"b": "x"}}));
        let s = spec(json!({"type": "object", "properties": {
            "n": {"type": "integer"}, "mode": {"type": "string", "enum": ["a", "b"], "default": "a"}
        }, "required": ["n"]}));
        let ok = validate_action("x", &s, parse_params(&["n=2".into()], false).unwrap()).unwrap();
        assert_eq!(json!(ok), json!({"n": 2, "mode": "a"}));
        let e = validate_action("x", &s, parse_params(&["n=abc".into()], false).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"n\" must be of type integer"), "{e}");
        assert!(validate_action("x", &s, Map::new())
            .unwrap_err()
            .to_string()
            .contains("required parameter \"n\""));
        assert!(validate_action(
            "x",
            &s,
            parse_params(&["n=1".into(), "mode=c".into()], false).unwrap()
        )
        .is_err());
        let closed =
            spec(json!({"type": "object", "properties": {}, "additionalProperties": false}));
        assert!(
            validate_action("x", &closed, parse_params(&["z=1".into()], false).unwrap()).is_err()
        );
    }

    #[test]
    fn config_values_follow_option_types() {
        let int = ConfigOption {
            kind: "int".into(),
            default: None,
        };
        assert_eq!(parse_config_value("n", &int, "5").unwrap(), json!(5));
        assert!(parse_config_value("n", &int, "five").is_err());
        let b = ConfigOption {
            kind: "boolean".into(),
            default: None,
        };
        assert_eq!(parse_config_value("b", &b, "false").unwrap(), json!(false));
        // A refreshed charm's option types: what fits stays, what Juju coerces is converted,
        // the rest is dropped.
        let float = ConfigOption {
            kind: "float".into(),
            default: None,
        };
        let s = ConfigOption {
            kind: "string".into(),
            default: None,
        };
        assert_eq!(coerce_config_value(&int, &json!(7)), Some(json!(7)));
        assert_eq!(coerce_config_value(&int, &json!("7")), Some(json!(7)));
        assert_eq!(coerce_config_value(&int, &json!(1.5)), None);
        assert_eq!(coerce_config_value(&float, &json!(2)), Some(json!(2)));
        assert_eq!(coerce_config_value(&b, &json!("true")), Some(json!(true)));
        assert_eq!(coerce_config_value(&s, &json!(3)), None);
    }
}
