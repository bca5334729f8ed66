//! Output formats of juju/cmd (reference §2.0):
//! - `smart`: a string as-is plus a newline, `""`/nil print nothing, a list of strings one per
//!   line, a bool `True`/`False`, anything else YAML;
//! - `json`: compact JSON plus a newline (`null` for nil);
//! - `yaml`: YAML (nil prints nothing).

use serde_json::Value;

use super::flags::Parsed;
use super::{out, usage, ToolErr, ToolResult};

pub fn yaml(v: &Value) -> String {
    if v.is_null() {
        return String::new();
    }
    serde_yaml::to_string(v).unwrap_or_default()
}

pub fn smart(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if s.is_empty() => String::new(),
        Value::String(s) => format!("{s}\n"),
        Value::Bool(true) => "True\n".into(),
        Value::Bool(false) => "False\n".into(),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| format!("{s}\n"))
            .collect(),
        other => yaml(other),
    }
}

pub fn json(v: &Value) -> String {
    let mut s = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// Renders `v` in the format chosen with `--format` (default `default`; only `allowed` formats
/// are accepted), writing to `-o <file>` (relative to the hook's cwd) when given.
pub fn render(
    p: &Parsed,
    v: &Value,
    default: &str,
    allowed: &[&str],
    cwd: &std::path::Path,
) -> ToolResult {
    let fmt = p.value("format").unwrap_or(default);
    let text = match fmt {
        "smart" if allowed.contains(&"smart") => smart(v),
        "json" if allowed.contains(&"json") => json(v),
        "yaml" if allowed.contains(&"yaml") => yaml(v),
        other => {
            let given = p
                .value_as_given("format")
                .map(|(g, _)| g)
                .unwrap_or("--format");
            return usage(format!(
                "invalid value {other:?} for option {given}: unknown format {other:?}"
            ));
        }
    };
    if let Some(file) = p.value("o") {
        let path = cwd.join(file);
        std::fs::write(&path, text.as_bytes())
            .map_err(|e| ToolErr::Run(format!("cannot write {}: {e}", path.display())))?;
        return out(String::new());
    }
    out(text)
}

pub const ALL: &[&str] = &["smart", "json", "yaml"];
pub const YAML_JSON: &[&str] = &["yaml", "json"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smart_json_yaml() {
        assert_eq!(smart(&json!(null)), "");
        assert_eq!(smart(&json!("")), "");
        assert_eq!(smart(&json!("x")), "x\n");
        assert_eq!(smart(&json!(true)), "True\n");
        assert_eq!(smart(&json!(["a", "b"])), "a\nb\n");
        assert_eq!(smart(&json!([])), "");
        assert_eq!(smart(&json!({"k": "v"})), "k: v\n");
        assert_eq!(json(&json!(null)), "null\n");
        assert_eq!(json(&json!({"a": 1})), "{\"a\":1}\n");
        assert_eq!(yaml(&json!(null)), "");
        assert_eq!(yaml(&json!({})), "{}\n");
    }
}
