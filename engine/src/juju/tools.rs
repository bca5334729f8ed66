//! The only way the charm talks to Juju: one trait method per hook tool.
//!
//! Command lines follow `ops/hookcmds` exactly (hook protocol reference §2, §7.E): `--format=json`
//! everywhere, relation/state data as a JSON object on stdin with `--file -`, `-r` as its own
//! argument, secret values passed through files (`key#file=path`) so they never appear in argv, and
//! `null` accepted wherever a list or map is expected. The output parsers are pure functions,
//! tested on the exact JSON shapes Juju prints.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::context::{RelationId, UnitName};

/// A relation or state databag: string keys to string values.
pub type Databag = BTreeMap<String, String>;

/// What a hook tool said it could not find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    Relation,
    Secret,
    Other,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Missing::Relation => "relation",
            Missing::Secret => "secret",
            Missing::Other => "object",
        })
    }
}

/// A failed hook-tool call. The stderr text Juju printed is always kept.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "could not run hook tool {tool}: {source}; hook tools exist only inside a running Juju hook \
         (they are on the PATH Juju gives the hook)"
    )]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool}: {what} not found: {stderr}")]
    NotFound {
        tool: String,
        what: Missing,
        stderr: String,
    },
    #[error("{tool}: permission denied: {stderr}")]
    PermissionDenied { tool: String, stderr: String },
    #[error("{tool}: this unit is not the leader (only the leader may do this): {stderr}")]
    NotLeader { tool: String, stderr: String },
    #[error("{tool} failed (exit code {code}): {stderr}")]
    Failed {
        tool: String,
        code: i32,
        stderr: String,
    },
    #[error("{tool} printed output that could not be parsed ({detail}): {stdout:?}")]
    BadOutput {
        tool: String,
        detail: String,
        stdout: String,
    },
}

impl ToolError {
    /// Maps a non-zero exit to a typed error from the stderr text, as ops classifies them.
    pub fn from_exit(tool: &str, code: i32, stderr: &str) -> ToolError {
        let stderr = stderr.trim().to_string();
        let lower = stderr.to_ascii_lowercase();
        let tool_s = tool.to_string();
        if lower.contains("relation not found") {
            ToolError::NotFound {
                tool: tool_s,
                what: Missing::Relation,
                stderr,
            }
        } else if lower.contains("not the leader")
            || lower.contains("cannot write relation settings")
        {
            ToolError::NotLeader {
                tool: tool_s,
                stderr,
            }
        } else if lower.contains("permission denied") || lower.contains("access denied") {
            ToolError::PermissionDenied {
                tool: tool_s,
                stderr,
            }
        } else if lower.contains("not found") {
            let what = if tool.starts_with("secret-") {
                Missing::Secret
            } else {
                Missing::Other
            };
            ToolError::NotFound {
                tool: tool_s,
                what,
                stderr,
            }
        } else {
            ToolError::Failed {
                tool: tool_s,
                code,
                stderr,
            }
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ToolError::NotFound { .. })
    }
}

pub type ToolResult<T> = Result<T, ToolError>;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    Active,
    Blocked,
    Waiting,
    Maintenance,
    /// Only ever read back (status-get), never set.
    Unknown,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Active => "active",
            StatusKind::Blocked => "blocked",
            StatusKind::Waiting => "waiting",
            StatusKind::Maintenance => "maintenance",
            StatusKind::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> StatusKind {
        match s {
            "active" => StatusKind::Active,
            "blocked" => StatusKind::Blocked,
            "waiting" => StatusKind::Waiting,
            "maintenance" => StatusKind::Maintenance,
            _ => StatusKind::Unknown,
        }
    }
}

/// A workload status: kind plus message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub kind: StatusKind,
    pub message: String,
}

impl Status {
    pub fn new(kind: StatusKind, message: impl Into<String>) -> Status {
        Status {
            kind,
            message: message.into(),
        }
    }
    pub fn active(message: impl Into<String>) -> Status {
        Status::new(StatusKind::Active, message)
    }
    pub fn blocked(message: impl Into<String>) -> Status {
        Status::new(StatusKind::Blocked, message)
    }
    pub fn waiting(message: impl Into<String>) -> Status {
        Status::new(StatusKind::Waiting, message)
    }
    pub fn maintenance(message: impl Into<String>) -> Status {
        Status::new(StatusKind::Maintenance, message)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(self.kind.as_str())
        } else {
            write!(f, "{}: {}", self.kind.as_str(), self.message)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretOwner {
    Application,
    Unit,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretAddOptions {
    pub label: Option<String>,
    pub description: Option<String>,
    /// `None` means Juju's default (application).
    pub owner: Option<SecretOwner>,
}

/// Which revision `secret-get` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretRead {
    /// The tracked revision (the first one read, for a consumer).
    Tracked,
    /// The latest revision, and track it from now on.
    Refresh,
    /// The latest revision, this time only.
    Peek,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretInfo {
    /// The bare id Juju keys the answer by.
    pub id: String,
    pub revision: Option<u64>,
    pub label: Option<String>,
    pub owner: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    pub bind_addresses: Vec<String>,
    pub ingress_addresses: Vec<String>,
    pub egress_subnets: Vec<String>,
}

impl NetworkInfo {
    /// The address peers and clients should use: first ingress address, else first bind address.
    pub fn preferred_address(&self) -> Option<&str> {
        self.ingress_addresses
            .first()
            .or(self.bind_addresses.first())
            .map(String::as_str)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageInfo {
    pub kind: String,
    pub location: String,
}

/// One bag to read with [`HookTools::relation_get_many`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BagRead<'a> {
    pub relation: RelationId,
    /// A unit name, or the application name when `app` is set.
    pub target: &'a str,
    pub app: bool,
}

/// One method per hook tool the charm needs. Implementations: [`super::process::ProcessTools`]
/// (the real commands, used under Juju and jujusim) and in-memory fakes in tests.
pub trait HookTools {
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>>;
    /// Remote units that have joined, from this unit's point of view (never this unit).
    fn relation_list(&self, rel: RelationId) -> ToolResult<Vec<UnitName>>;
    /// The remote application of a relation (`relation-list --app`).
    fn relation_remote_app(&self, rel: RelationId) -> ToolResult<Option<String>>;
    /// All keys of a unit bag (`app == false`, `target` a unit) or app bag (`app == true`).
    fn relation_get(&self, rel: RelationId, target: &str, app: bool) -> ToolResult<Databag>;
    /// Several independent `relation-get`s, in order; implementations may run them at once.
    fn relation_get_many(&self, reads: &[BagRead<'_>]) -> Vec<ToolResult<Databag>> {
        reads
            .iter()
            .map(|r| self.relation_get(r.relation, r.target, r.app))
            .collect()
    }
    /// Merge `data` into this unit's (or, for the leader, this app's) bag; an empty value deletes.
    fn relation_set(&self, rel: RelationId, app: bool, data: &Databag) -> ToolResult<()>;
    fn is_leader(&self) -> ToolResult<bool>;
    fn status_set(&self, app: bool, status: &Status) -> ToolResult<()>;
    fn status_get(&self, app: bool) -> ToolResult<Status>;
    fn application_version_set(&self, version: &str) -> ToolResult<()>;
    fn config_get(&self) -> ToolResult<Map<String, Value>>;
    fn action_get(&self) -> ToolResult<Map<String, Value>>;
    /// Results as flat dotted keys (`a.b=c` nests).
    fn action_set(&self, results: &Databag) -> ToolResult<()>;
    fn action_fail(&self, message: &str) -> ToolResult<()>;
    fn action_log(&self, message: &str) -> ToolResult<()>;
    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()>;
    fn state_get(&self) -> ToolResult<Databag>;
    fn state_set(&self, data: &Databag) -> ToolResult<()>;
    fn state_delete(&self, key: &str) -> ToolResult<()>;
    /// Returns the new secret's URI.
    fn secret_add(&self, content: &Databag, opts: &SecretAddOptions) -> ToolResult<String>;
    fn secret_get(
        &self,
        id: Option<&str>,
        label: Option<&str>,
        read: SecretRead,
    ) -> ToolResult<Databag>;
    /// New revision with `content` (when given), and/or a new label.
    fn secret_set(
        &self,
        id: &str,
        content: Option<&Databag>,
        label: Option<&str>,
    ) -> ToolResult<()>;
    fn secret_grant(&self, id: &str, rel: RelationId, unit: Option<&str>) -> ToolResult<()>;
    fn secret_revoke(&self, id: &str, rel: RelationId, unit: Option<&str>) -> ToolResult<()>;
    fn secret_remove(&self, id: &str, revision: Option<u64>) -> ToolResult<()>;
    fn secret_ids(&self) -> ToolResult<Vec<String>>;
    fn secret_info_get(&self, id: Option<&str>, label: Option<&str>) -> ToolResult<SecretInfo>;
    fn network_get(&self, binding: &str, rel: Option<RelationId>) -> ToolResult<NetworkInfo>;
    /// `spec` as Juju takes it: `2181/tcp`, `8000-8100/udp`, `icmp`.
    fn open_port(&self, spec: &str) -> ToolResult<()>;
    fn close_port(&self, spec: &str) -> ToolResult<()>;
    fn storage_get(&self, id: Option<&str>) -> ToolResult<StorageInfo>;
    /// Every unit of this application Juju plans to have, with its goal status (`dying` for
    /// units on their way out).
    fn goal_state(&self) -> ToolResult<BTreeMap<UnitName, String>>;
}

// ---- pure output parsers -------------------------------------------------------------------

fn bad(tool: &str, detail: impl Into<String>, stdout: &str) -> ToolError {
    ToolError::BadOutput {
        tool: tool.to_string(),
        detail: detail.into(),
        stdout: stdout.to_string(),
    }
}

pub fn parse_json(tool: &str, stdout: &str) -> ToolResult<Value> {
    let t = stdout.trim();
    if t.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(t).map_err(|e| bad(tool, e.to_string(), stdout))
}

/// `["a","b"]` or `null` (as `secret-ids` prints when empty).
pub fn parse_string_list(tool: &str, stdout: &str) -> ToolResult<Vec<String>> {
    match parse_json(tool, stdout)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(bad(tool, format!("expected a string, got {other}"), stdout)),
            })
            .collect(),
        other => Err(bad(tool, format!("expected a list, got {other}"), stdout)),
    }
}

/// `{"k":"v"}` or `null`. Non-string values are rendered as JSON text rather than refused.
pub fn parse_databag(tool: &str, stdout: &str) -> ToolResult<Databag> {
    match parse_json(tool, stdout)? {
        Value::Null => Ok(Databag::new()),
        Value::Object(m) => Ok(m
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k, s)
            })
            .collect()),
        other => Err(bad(tool, format!("expected a map, got {other}"), stdout)),
    }
}

pub fn parse_object(tool: &str, stdout: &str) -> ToolResult<Map<String, Value>> {
    match parse_json(tool, stdout)? {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m),
        other => Err(bad(tool, format!("expected a map, got {other}"), stdout)),
    }
}

pub fn parse_bool(tool: &str, stdout: &str) -> ToolResult<bool> {
    match parse_json(tool, stdout)? {
        Value::Bool(b) => Ok(b),
        other => Err(bad(
            tool,
            format!("expected true or false, got {other}"),
            stdout,
        )),
    }
}

/// `relation-list --app`: `"postgresql"`, or `null`/empty when unknown.
pub fn parse_optional_string(tool: &str, stdout: &str) -> ToolResult<Option<String>> {
    match parse_json(tool, stdout)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(bad(tool, format!("expected a string, got {other}"), stdout)),
    }
}

pub fn parse_relation_ids(stdout: &str) -> ToolResult<Vec<RelationId>> {
    parse_string_list("relation-ids", stdout)?
        .iter()
        .map(|s| {
            RelationId::parse(s)
                .ok_or_else(|| bad("relation-ids", format!("bad relation id {s:?}"), stdout))
        })
        .collect()
}

pub fn parse_unit_list(stdout: &str) -> ToolResult<Vec<UnitName>> {
    parse_string_list("relation-list", stdout)?
        .iter()
        .map(|s| {
            UnitName::parse(s)
                .ok_or_else(|| bad("relation-list", format!("bad unit name {s:?}"), stdout))
        })
        .collect()
}

fn status_from(tool: &str, v: &Value, stdout: &str) -> ToolResult<Status> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad(tool, "expected a status map", stdout))?;
    let kind = obj
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(tool, "no \"status\" key", stdout))?;
    let message = obj.get("message").and_then(Value::as_str).unwrap_or("");
    Ok(Status::new(StatusKind::parse(kind), message))
}

/// Unit form `{"message":..,"status":..,"status-data":{}}`; app form
/// `{"application-status":{...,"units":{...}}}` (units may also sit at the top level).
pub fn parse_status(stdout: &str, app: bool) -> ToolResult<Status> {
    let v = parse_json("status-get", stdout)?;
    if app {
        let inner = v
            .get("application-status")
            .ok_or_else(|| bad("status-get", "no \"application-status\" key", stdout))?;
        status_from("status-get", inner, stdout)
    } else {
        status_from("status-get", &v, stdout)
    }
}

/// `{"<xid>":{"revision":1,"label":"x","owner":"application",...}}`
pub fn parse_secret_info(stdout: &str) -> ToolResult<SecretInfo> {
    let m = parse_object("secret-info-get", stdout)?;
    let (id, v) = m
        .into_iter()
        .next()
        .ok_or_else(|| bad("secret-info-get", "empty answer", stdout))?;
    Ok(SecretInfo {
        id,
        revision: v.get("revision").and_then(Value::as_u64),
        label: v
            .get("label")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        owner: v.get("owner").and_then(Value::as_str).map(str::to_string),
    })
}

/// network-get's JSON; empty lists are omitted by Juju.
pub fn parse_network(stdout: &str) -> ToolResult<NetworkInfo> {
    let v = parse_json("network-get", stdout)?;
    let strings = |key: &str| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut bind = Vec::new();
    if let Some(ifaces) = v.get("bind-addresses").and_then(Value::as_array) {
        for iface in ifaces {
            if let Some(addrs) = iface.get("addresses").and_then(Value::as_array) {
                for a in addrs {
                    if let Some(val) = a.get("value").and_then(Value::as_str) {
                        bind.push(val.to_string());
                    }
                }
            }
        }
    }
    Ok(NetworkInfo {
        bind_addresses: bind,
        ingress_addresses: strings("ingress-addresses"),
        egress_subnets: strings("egress-subnets"),
    })
}

pub fn parse_storage(stdout: &str) -> ToolResult<StorageInfo> {
    let v = parse_json("storage-get", stdout)?;
    let get = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(StorageInfo {
        kind: get("kind").unwrap_or_default(),
        location: get("location")
            .ok_or_else(|| bad("storage-get", "no \"location\" key", stdout))?,
    })
}

/// `goal-state`: `{"units":{"app/0":{"status":"active","since":".."}},"relations":{..}}`.
pub fn parse_goal_state(stdout: &str) -> ToolResult<BTreeMap<UnitName, String>> {
    let v = parse_json("goal-state", stdout)?;
    let mut out = BTreeMap::new();
    if let Some(units) = v.get("units").and_then(Value::as_object) {
        for (name, u) in units {
            let unit = UnitName::parse(name)
                .ok_or_else(|| bad("goal-state", format!("bad unit name {name:?}"), stdout))?;
            out.insert(
                unit,
                u.get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            );
        }
    }
    Ok(out)
}

/// `secret-add` prints the URI (`secret://<model>/<xid>` on 3.x, `secret:<xid>` before).
pub fn parse_secret_uri(stdout: &str) -> ToolResult<String> {
    let uri = stdout.trim();
    if uri.starts_with("secret:") {
        Ok(uri.to_string())
    } else {
        Err(bad("secret-add", "expected a secret URI", stdout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_accept_null_and_sort_as_given() {
        assert_eq!(
            parse_string_list("secret-ids", "null\n").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_string_list("secret-ids", "").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_relation_ids("[\"db:10\",\"db:9\"]\n").unwrap(),
            vec![RelationId(10), RelationId(9)]
        );
        assert_eq!(parse_relation_ids("[]\n").unwrap(), vec![]);
        let units = parse_unit_list("[\"postgresql/0\",\"postgresql/1\"]\n").unwrap();
        assert_eq!(
            units.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
            ["postgresql/0", "postgresql/1"]
        );
        assert!(parse_relation_ids("[\"db:x\"]").is_err());
        assert!(parse_string_list("relation-ids", "{\"a\":1}").is_err());
    }

    #[test]
    fn databags_accept_null_and_empty() {
        assert_eq!(
            parse_databag("relation-get", "null\n").unwrap(),
            Databag::new()
        );
        assert_eq!(
            parse_databag("relation-get", "{}\n").unwrap(),
            Databag::new()
        );
        let bag = parse_databag(
            "relation-get",
            "{\"egress-subnets\":\"127.0.0.11/32\",\"ingress-address\":\"127.0.0.11\",\"private-address\":\"127.0.0.11\",\"state\":\"started\"}\n",
        )
        .unwrap();
        assert_eq!(bag["state"], "started");
        assert_eq!(bag["ingress-address"], "127.0.0.11");
        assert!(parse_databag("relation-get", "[1]").is_err());
        assert!(parse_databag("relation-get", "{oops").is_err());
    }

    #[test]
    fn state_get_empty_forms() {
        // 3.6 prints {} for empty state, 4.0 prints null.
        assert!(parse_databag("state-get", "{}\n").unwrap().is_empty());
        assert!(parse_databag("state-get", "null\n").unwrap().is_empty());
    }

    #[test]
    fn booleans_and_optional_strings() {
        assert!(parse_bool("is-leader", "true\n").unwrap());
        assert!(!parse_bool("is-leader", "false\n").unwrap());
        assert!(parse_bool("is-leader", "True\n").is_err());
        assert_eq!(
            parse_optional_string("relation-list", "\"postgresql\"\n")
                .unwrap()
                .as_deref(),
            Some("postgresql")
        );
        assert_eq!(
            parse_optional_string("relation-list", "null\n").unwrap(),
            None
        );
    }

    #[test]
    fn status_get_shapes() {
        let unit = parse_status(
            "{\"message\":\"2/3 members\",\"status\":\"waiting\",\"status-data\":{}}\n",
            false,
        )
        .unwrap();
        assert_eq!(unit, Status::waiting("2/3 members"));
        let app = parse_status(
            "{\"application-status\":{\"message\":\"\",\"status\":\"active\",\"status-data\":{},\"units\":{\"zookeeper/0\":{\"message\":\"\",\"status\":\"active\",\"status-data\":{}}}}}\n",
            true,
        )
        .unwrap();
        assert_eq!(app, Status::active(""));
        assert_eq!(
            parse_status("{\"status\":\"error\",\"message\":\"x\"}", false)
                .unwrap()
                .kind,
            StatusKind::Unknown
        );
        assert!(parse_status("{}", true).is_err());
    }

    #[test]
    fn network_get_shape() {
        let n = parse_network(
            "{\"bind-addresses\":[{\"mac-address\":\"00:16:3e:00:00:01\",\"interface-name\":\"eth0\",\"addresses\":[{\"hostname\":\"\",\"value\":\"10.0.0.5\",\"cidr\":\"10.0.0.0/24\"}]}],\"egress-subnets\":[\"10.0.0.5/32\"],\"ingress-addresses\":[\"10.0.0.6\"]}\n",
        )
        .unwrap();
        assert_eq!(n.bind_addresses, ["10.0.0.5"]);
        assert_eq!(n.ingress_addresses, ["10.0.0.6"]);
        assert_eq!(n.preferred_address(), Some("10.0.0.6"));
        // Empty lists are omitted.
        let n =
            parse_network("{\"bind-addresses\":[{\"addresses\":[{\"value\":\"127.0.1.11\"}]}]}")
                .unwrap();
        assert_eq!(n.preferred_address(), Some("127.0.1.11"));
        assert_eq!(parse_network("{}").unwrap().preferred_address(), None);
    }

    #[test]
    fn secret_shapes() {
        let info = parse_secret_info(
            "{\"cq3ogq7mp25c77ie8hrg\":{\"revision\":2,\"label\":\"cluster.zookeeper.app\",\"owner\":\"application\",\"rotation\":\"never\"}}\n",
        )
        .unwrap();
        assert_eq!(info.id, "cq3ogq7mp25c77ie8hrg");
        assert_eq!(info.revision, Some(2));
        assert_eq!(info.label.as_deref(), Some("cluster.zookeeper.app"));
        assert_eq!(
            parse_secret_uri("secret://a1b2/cq3ogq7mp25c77ie8hrg\n").unwrap(),
            "secret://a1b2/cq3ogq7mp25c77ie8hrg"
        );
        assert_eq!(
            parse_secret_uri("secret:cq3ogq7mp25c77ie8hrg\n").unwrap(),
            "secret:cq3ogq7mp25c77ie8hrg"
        );
        assert!(parse_secret_uri("oops").is_err());
    }

    #[test]
    fn goal_state_shape() {
        let g = parse_goal_state(
            "{\"units\":{\"zookeeper/0\":{\"status\":\"active\",\"since\":\"2024-05-01T10:00:00Z\"},\"zookeeper/2\":{\"status\":\"dying\",\"since\":\"x\"}},\"relations\":{}}\n",
        )
        .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[&UnitName::parse("zookeeper/2").unwrap()], "dying");
        assert!(parse_goal_state("{}").unwrap().is_empty());
    }

    #[test]
    fn storage_shape() {
        let s = parse_storage("{\"kind\":\"filesystem\",\"location\":\"/srv/data\"}\n").unwrap();
        assert_eq!(
            s,
            StorageInfo {
                kind: "filesystem".into(),
                location: "/srv/data".into()
            }
        );
    }

    #[test]
    fn error_strings_map_to_typed_errors() {
        type Case = (&'static str, i32, &'static str, fn(&ToolError) -> bool);
        let cases: &[Case] = &[
            (
                "relation-get",
                2,
                "ERROR invalid value \"db:99\" for option -r: relation not found",
                |e| {
                    matches!(
                        e,
                        ToolError::NotFound {
                            what: Missing::Relation,
                            ..
                        }
                    )
                },
            ),
            (
                "relation-set",
                1,
                "ERROR cannot write relation settings",
                |e| matches!(e, ToolError::NotLeader { .. }),
            ),
            ("status-set", 1, "ERROR this unit is not the leader", |e| {
                matches!(e, ToolError::NotLeader { .. })
            }),
            (
                "status-get",
                1,
                "ERROR finding application status: this unit is not the leader",
                |e| matches!(e, ToolError::NotLeader { .. }),
            ),
            ("secret-get", 1, "ERROR permission denied", |e| {
                matches!(e, ToolError::PermissionDenied { .. })
            }),
            ("relation-get", 1, "ERROR permission denied", |e| {
                matches!(e, ToolError::PermissionDenied { .. })
            }),
            (
                "secret-info-get",
                1,
                "ERROR secret \"cq3o\" not found",
                |e| {
                    matches!(
                        e,
                        ToolError::NotFound {
                            what: Missing::Secret,
                            ..
                        }
                    )
                },
            ),
            ("state-get", 1, "ERROR \"k\" not found", |e| {
                matches!(
                    e,
                    ToolError::NotFound {
                        what: Missing::Other,
                        ..
                    }
                )
            }),
            ("action-get", 1, "ERROR not running an action", |e| {
                matches!(e, ToolError::Failed { code: 1, .. })
            }),
            (
                "status-set",
                2,
                "ERROR invalid status \"x\", expected one of [maintenance blocked waiting active]",
                |e| matches!(e, ToolError::Failed { code: 2, .. }),
            ),
        ];
        for (tool, code, stderr, check) in cases {
            let e = ToolError::from_exit(tool, *code, &format!("{stderr}\n"));
            assert!(check(&e), "{tool} {stderr}: {e:?}");
            // The text Juju printed is kept in the message.
            assert!(
                e.to_string().contains(stderr.trim_start_matches("ERROR ")),
                "{e}"
            );
        }
    }
}
