//! [`HookTools`] over `std::process::Command`: the real hook tools, found on the PATH Juju (or
//! jujusim) gives the hook. Each method first builds an [`Invocation`] (pure, tested for the exact
//! argv), then runs it.

use std::cell::Cell;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Map, Value};

use super::context::{RelationId, UnitName};
use super::tools::*;

/// One hook-tool command line, plus what goes to its stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub tool: &'static str,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

impl Invocation {
    fn new(tool: &'static str, args: &[&str]) -> Invocation {
        Invocation {
            tool,
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: None,
        }
    }
    fn arg(mut self, a: impl Into<String>) -> Invocation {
        self.args.push(a.into());
        self
    }
    fn stdin(mut self, s: String) -> Invocation {
        self.stdin = Some(s);
        self
    }
}

fn json_object(data: &Databag) -> String {
    // A BTreeMap of strings always serializes.
    serde_json::to_string(data).unwrap_or_else(|_| "{}".into())
}

/// Pure builders for every command line the charm runs.
pub mod argv {
    use super::*;

    pub fn relation_ids(endpoint: &str) -> Invocation {
        Invocation::new("relation-ids", &[endpoint, "--format=json"])
    }
    pub fn relation_list(rel: RelationId) -> Invocation {
        Invocation::new("relation-list", &["--format=json", "-r"]).arg(rel.to_string())
    }
    pub fn relation_remote_app(rel: RelationId) -> Invocation {
        Invocation::new("relation-list", &["--format=json", "--app", "-r"]).arg(rel.to_string())
    }
    pub fn relation_get(rel: RelationId, target: &str, app: bool) -> Invocation {
        let mut inv =
            Invocation::new("relation-get", &["--format=json", "-r"]).arg(rel.to_string());
        if app {
            inv = inv.arg("--app");
        }
        inv.arg("-").arg(target)
    }
    pub fn relation_set(rel: RelationId, app: bool, data: &Databag) -> Invocation {
        let mut inv = Invocation::new("relation-set", &["-r"]).arg(rel.to_string());
        if app {
            inv = inv.arg("--app");
        }
        inv.arg("--file").arg("-").stdin(json_object(data))
    }
    pub fn is_leader() -> Invocation {
        Invocation::new("is-leader", &["--format=json"])
    }
    pub fn status_set(app: bool, status: &Status) -> Invocation {
        Invocation::new(
            "status-set",
            &[if app {
                "--application=True"
            } else {
                "--application=False"
            }],
        )
        .arg(status.kind.as_str())
        .arg("--")
        .arg(status.message.clone())
    }
    pub fn status_get(app: bool) -> Invocation {
        Invocation::new(
            "status-get",
            &[
                "--include-data",
                "--format=json",
                if app {
                    "--application=true"
                } else {
                    "--application=false"
                },
            ],
        )
    }
    pub fn application_version_set(version: &str) -> Invocation {
        Invocation::new("application-version-set", &["--", version])
    }
    pub fn config_get() -> Invocation {
        Invocation::new("config-get", &["--format=json"])
    }
    pub fn action_get() -> Invocation {
        Invocation::new("action-get", &["--format=json"])
    }
    pub fn action_set(results: &Databag) -> Invocation {
        let mut inv = Invocation::new("action-set", &[]);
        for (k, v) in results {
            inv = inv.arg(format!("{k}={v}"));
        }
        inv
    }
    pub fn action_fail(message: &str) -> Invocation {
        Invocation::new("action-fail", &["--", message])
    }
    pub fn action_log(message: &str) -> Invocation {
        Invocation::new("action-log", &["--", message])
    }
    pub fn juju_log(level: LogLevel, message: &str) -> Invocation {
        Invocation::new("juju-log", &["--log-level", level.as_str(), "--", message])
    }
    pub fn state_get() -> Invocation {
        Invocation::new("state-get", &["--format=json"])
    }
    pub fn state_set(data: &Databag) -> Invocation {
        Invocation::new("state-set", &["--file", "-"]).stdin(json_object(data))
    }
    pub fn state_delete(key: &str) -> Invocation {
        Invocation::new("state-delete", &["--", key])
    }
    /// Content as `key#file=<dir>/<key>`: the caller writes each value to that file first, so
    /// secret values never appear in a process list.
    pub fn secret_content(content: &Databag, dir: &Path) -> Vec<String> {
        content
            .keys()
            .map(|k| format!("{k}#file={}", dir.join(k).display()))
            .collect()
    }
    pub fn secret_add(content: &Databag, opts: &SecretAddOptions, dir: &Path) -> Invocation {
        let mut inv = Invocation::new("secret-add", &[]);
        if let Some(l) = &opts.label {
            inv = inv.arg("--label").arg(l.clone());
        }
        if let Some(d) = &opts.description {
            inv = inv.arg("--description").arg(d.clone());
        }
        match opts.owner {
            Some(SecretOwner::Application) => inv = inv.arg("--owner").arg("application"),
            Some(SecretOwner::Unit) => inv = inv.arg("--owner").arg("unit"),
            None => {}
        }
        for a in secret_content(content, dir) {
            inv = inv.arg(a);
        }
        inv
    }
    pub fn secret_get(id: Option<&str>, label: Option<&str>, read: SecretRead) -> Invocation {
        let mut inv = Invocation::new("secret-get", &["--format=json"]);
        if let Some(id) = id {
            inv = inv.arg(id);
        }
        if let Some(l) = label {
            inv = inv.arg("--label").arg(l);
        }
        match read {
            SecretRead::Tracked => inv,
            SecretRead::Refresh => inv.arg("--refresh"),
            SecretRead::Peek => inv.arg("--peek"),
        }
    }
    pub fn secret_set(
        id: &str,
        content: Option<&Databag>,
        label: Option<&str>,
        dir: &Path,
    ) -> Invocation {
        let mut inv = Invocation::new("secret-set", &[]);
        if let Some(l) = label {
            inv = inv.arg("--label").arg(l);
        }
        inv = inv.arg(id);
        if let Some(c) = content {
            for a in secret_content(c, dir) {
                inv = inv.arg(a);
            }
        }
        inv
    }
    pub fn secret_grant(id: &str, rel: RelationId, unit: Option<&str>) -> Invocation {
        let mut inv = Invocation::new("secret-grant", &["--relation"]).arg(rel.to_string());
        if let Some(u) = unit {
            inv = inv.arg("--unit").arg(u);
        }
        inv.arg(id)
    }
    pub fn secret_revoke(id: &str, rel: RelationId, unit: Option<&str>) -> Invocation {
        let mut inv = Invocation::new("secret-revoke", &["--relation"]).arg(rel.to_string());
        if let Some(u) = unit {
            inv = inv.arg("--unit").arg(u);
        }
        inv.arg(id)
    }
    pub fn secret_remove(id: &str, revision: Option<u64>) -> Invocation {
        let mut inv = Invocation::new("secret-remove", &[id]);
        if let Some(r) = revision {
            inv = inv.arg("--revision").arg(r.to_string());
        }
        inv
    }
    pub fn secret_ids() -> Invocation {
        Invocation::new("secret-ids", &["--format=json"])
    }
    pub fn secret_info_get(id: Option<&str>, label: Option<&str>) -> Invocation {
        let mut inv = Invocation::new("secret-info-get", &["--format=json"]);
        if let Some(id) = id {
            inv = inv.arg(id);
        }
        if let Some(l) = label {
            inv = inv.arg("--label").arg(l);
        }
        inv
    }
    pub fn network_get(binding: &str, rel: Option<RelationId>) -> Invocation {
        let mut inv = Invocation::new("network-get", &["--format=json"]);
        if let Some(r) = rel {
            inv = inv.arg("-r").arg(r.to_string());
        }
        inv.arg(binding)
    }
    pub fn open_port(spec: &str) -> Invocation {
        Invocation::new("open-port", &[spec])
    }
    pub fn close_port(spec: &str) -> Invocation {
        Invocation::new("close-port", &[spec])
    }
    pub fn goal_state() -> Invocation {
        Invocation::new("goal-state", &["--format=json"])
    }
    pub fn storage_get(id: Option<&str>) -> Invocation {
        let mut inv = Invocation::new("storage-get", &["--format=json"]);
        if let Some(id) = id {
            inv = inv.arg("-s").arg(id);
        }
        inv
    }
}

/// The real hook tools. Counts its calls (benchmarks report them).
#[derive(Debug, Default)]
pub struct ProcessTools {
    calls: Cell<u32>,
}

impl ProcessTools {
    pub fn new() -> ProcessTools {
        ProcessTools::default()
    }

    pub fn calls(&self) -> u32 {
        self.calls.get()
    }

    /// Runs one invocation; returns stdout on exit 0, a typed error (with stderr) otherwise.
    pub fn run(&self, inv: &Invocation) -> ToolResult<String> {
        let child = self.spawn(inv)?;
        Self::finish(inv.tool, child)
    }

    /// Starts one invocation and feeds its stdin; [`Self::finish`] collects it.
    fn spawn(&self, inv: &Invocation) -> ToolResult<Child> {
        self.calls.set(self.calls.get() + 1);
        let mut cmd = Command::new(inv.tool);
        cmd.args(&inv.args)
            .stdin(if inv.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| ToolError::Spawn {
            tool: inv.tool.to_string(),
            source,
        })?;
        if let Some(input) = &inv.stdin {
            if let Some(mut stdin) = child.stdin.take() {
                // A tool that exits early closes the pipe; its exit status reports the problem.
                let _ = stdin.write_all(input.as_bytes());
            }
        }
        Ok(child)
    }

    fn finish(tool: &str, child: Child) -> ToolResult<String> {
        let out = child
            .wait_with_output()
            .map_err(|source| ToolError::Spawn {
                tool: tool.to_string(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(ToolError::from_exit(
                tool,
                out.status.code().unwrap_or(-1),
                &stderr,
            ))
        }
    }

    /// Writes secret values to private files in a fresh temporary directory.
    fn with_secret_files<T>(
        &self,
        content: &Databag,
        f: impl FnOnce(&Path) -> ToolResult<T>,
    ) -> ToolResult<T> {
        let io_err = |source| ToolError::Spawn {
            tool: "secret-add".into(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix("charm-secret")
            .tempdir()
            .map_err(io_err)?;
        for (k, v) in content {
            let mut file = tempfile::NamedTempFile::new_in(dir.path()).map_err(io_err)?;
            file.write_all(v.as_bytes()).map_err(io_err)?;
            file.persist(dir.path().join(k))
                .map_err(|e| io_err(e.error))?;
        }
        f(dir.path())
    }
}

impl HookTools for ProcessTools {
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        parse_relation_ids(&self.run(&argv::relation_ids(endpoint))?)
    }
    fn relation_list(&self, rel: RelationId) -> ToolResult<Vec<UnitName>> {
        parse_unit_list(&self.run(&argv::relation_list(rel))?)
    }
    fn relation_remote_app(&self, rel: RelationId) -> ToolResult<Option<String>> {
        parse_optional_string("relation-list", &self.run(&argv::relation_remote_app(rel))?)
    }
    fn relation_get(&self, rel: RelationId, target: &str, app: bool) -> ToolResult<Databag> {
        parse_databag(
            "relation-get",
            &self.run(&argv::relation_get(rel, target, app))?,
        )
    }
    /// Starts every `relation-get` at once and then collects them: the reads are independent
    /// and the agent serves each connection on its own, so a hook pays about one round trip.
    fn relation_get_many(&self, reads: &[BagRead<'_>]) -> Vec<ToolResult<Databag>> {
        let started: Vec<_> = reads
            .iter()
            .map(|r| self.spawn(&argv::relation_get(r.relation, r.target, r.app)))
            .collect();
        started
            .into_iter()
            .map(|child| parse_databag("relation-get", &Self::finish("relation-get", child?)?))
            .collect()
    }
    fn relation_set(&self, rel: RelationId, app: bool, data: &Databag) -> ToolResult<()> {
        self.run(&argv::relation_set(rel, app, data)).map(drop)
    }
    fn is_leader(&self) -> ToolResult<bool> {
        parse_bool("is-leader", &self.run(&argv::is_leader())?)
    }
    fn status_set(&self, app: bool, status: &Status) -> ToolResult<()> {
        self.run(&argv::status_set(app, status)).map(drop)
    }
    fn status_get(&self, app: bool) -> ToolResult<Status> {
        parse_status(&self.run(&argv::status_get(app))?, app)
    }
    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.run(&argv::application_version_set(version)).map(drop)
    }
    fn config_get(&self) -> ToolResult<Map<String, Value>> {
        parse_object("config-get", &self.run(&argv::config_get())?)
    }
    fn action_get(&self) -> ToolResult<Map<String, Value>> {
        parse_object("action-get", &self.run(&argv::action_get())?)
    }
    fn action_set(&self, results: &Databag) -> ToolResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        self.run(&argv::action_set(results)).map(drop)
    }
    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.run(&argv::action_fail(message)).map(drop)
    }
    fn action_log(&self, message: &str) -> ToolResult<()> {
        self.run(&argv::action_log(message)).map(drop)
    }
    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        self.run(&argv::juju_log(level, message)).map(drop)
    }
    fn state_get(&self) -> ToolResult<Databag> {
        parse_databag("state-get", &self.run(&argv::state_get())?)
    }
    fn state_set(&self, data: &Databag) -> ToolResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.run(&argv::state_set(data)).map(drop)
    }
    fn state_delete(&self, key: &str) -> ToolResult<()> {
        self.run(&argv::state_delete(key)).map(drop)
    }
    fn secret_add(&self, content: &Databag, opts: &SecretAddOptions) -> ToolResult<String> {
        self.with_secret_files(content, |dir| {
            parse_secret_uri(&self.run(&argv::secret_add(content, opts, dir))?)
        })
    }
    fn secret_get(
        &self,
        id: Option<&str>,
        label: Option<&str>,
        read: SecretRead,
    ) -> ToolResult<Databag> {
        parse_databag("secret-get", &self.run(&argv::secret_get(id, label, read))?)
    }
    fn secret_set(
        &self,
        id: &str,
        content: Option<&Databag>,
        label: Option<&str>,
    ) -> ToolResult<()> {
        let empty = Databag::new();
        self.with_secret_files(content.unwrap_or(&empty), |dir| {
            self.run(&argv::secret_set(id, content, label, dir))
                .map(drop)
        })
    }
    fn secret_grant(&self, id: &str, rel: RelationId, unit: Option<&str>) -> ToolResult<()> {
        self.run(&argv::secret_grant(id, rel, unit)).map(drop)
    }
    fn secret_revoke(&self, id: &str, rel: RelationId, unit: Option<&str>) -> ToolResult<()> {
        self.run(&argv::secret_revoke(id, rel, unit)).map(drop)
    }
    fn secret_remove(&self, id: &str, revision: Option<u64>) -> ToolResult<()> {
        self.run(&argv::secret_remove(id, revision)).map(drop)
    }
    fn secret_ids(&self) -> ToolResult<Vec<String>> {
        parse_string_list("secret-ids", &self.run(&argv::secret_ids())?)
    }
    fn secret_info_get(&self, id: Option<&str>, label: Option<&str>) -> ToolResult<SecretInfo> {
        parse_secret_info(&self.run(&argv::secret_info_get(id, label))?)
    }
    fn network_get(&self, binding: &str, rel: Option<RelationId>) -> ToolResult<NetworkInfo> {
        parse_network(&self.run(&argv::network_get(binding, rel))?)
    }
    fn open_port(&self, spec: &str) -> ToolResult<()> {
        self.run(&argv::open_port(spec)).map(drop)
    }
    fn close_port(&self, spec: &str) -> ToolResult<()> {
        self.run(&argv::close_port(spec)).map(drop)
    }
    fn storage_get(&self, id: Option<&str>) -> ToolResult<StorageInfo> {
        parse_storage(&self.run(&argv::storage_get(id))?)
    }
    fn goal_state(&self) -> ToolResult<std::collections::BTreeMap<UnitName, String>> {
        parse_goal_state(&self.run(&argv::goal_state())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn line(inv: &Invocation) -> String {
        std::iter::once(inv.tool.to_string())
            .chain(inv.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn command_lines_match_ops_hookcmds() {
        let r = RelationId(7);
        let bag: Databag = [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), String::new()),
        ]
        .into();
        let cases = [
            (
                argv::relation_ids("cluster"),
                "relation-ids cluster --format=json",
            ),
            (argv::relation_list(r), "relation-list --format=json -r 7"),
            (
                argv::relation_remote_app(r),
                "relation-list --format=json --app -r 7",
            ),
            (
                argv::relation_get(r, "zookeeper/0", false),
                "relation-get --format=json -r 7 - zookeeper/0",
            ),
            (
                argv::relation_get(r, "kafka", true),
                "relation-get --format=json -r 7 --app - kafka",
            ),
            (
                argv::relation_set(r, true, &bag),
                "relation-set -r 7 --app --file -",
            ),
            (argv::is_leader(), "is-leader --format=json"),
            (
                argv::status_set(false, &Status::active("")),
                "status-set --application=False active -- ",
            ),
            (
                argv::status_set(true, &Status::waiting("2/3 members")),
                "status-set --application=True waiting -- 2/3 members",
            ),
            (
                argv::status_get(true),
                "status-get --include-data --format=json --application=true",
            ),
            (
                argv::application_version_set("3.8.0"),
                "application-version-set -- 3.8.0",
            ),
            (argv::config_get(), "config-get --format=json"),
            (argv::action_get(), "action-get --format=json"),
            (argv::action_fail("no"), "action-fail -- no"),
            (
                argv::juju_log(LogLevel::Warning, "-x"),
                "juju-log --log-level WARNING -- -x",
            ),
            (argv::state_get(), "state-get --format=json"),
            (argv::state_set(&bag), "state-set --file -"),
            (argv::state_delete("k"), "state-delete -- k"),
            (
                argv::secret_get(Some("secret:x"), None, SecretRead::Refresh),
                "secret-get --format=json secret:x --refresh",
            ),
            (
                argv::secret_get(None, Some("l"), SecretRead::Peek),
                "secret-get --format=json --label l --peek",
            ),
            (
                argv::secret_grant("secret:x", r, None),
                "secret-grant --relation 7 secret:x",
            ),
            (
                argv::secret_revoke("secret:x", r, Some("kafka/0")),
                "secret-revoke --relation 7 --unit kafka/0 secret:x",
            ),
            (
                argv::secret_remove("secret:x", Some(3)),
                "secret-remove secret:x --revision 3",
            ),
            (argv::secret_ids(), "secret-ids --format=json"),
            (
                argv::secret_info_get(None, Some("l")),
                "secret-info-get --format=json --label l",
            ),
            (
                argv::network_get("cluster", None),
                "network-get --format=json cluster",
            ),
            (
                argv::network_get("zookeeper", Some(r)),
                "network-get --format=json -r 7 zookeeper",
            ),
            (argv::open_port("2181/tcp"), "open-port 2181/tcp"),
            (
                argv::storage_get(Some("data/0")),
                "storage-get --format=json -s data/0",
            ),
        ];
        for (inv, want) in cases {
            assert_eq!(line(&inv), want);
        }
        // Data goes on stdin as one JSON object; an empty value deletes the key.
        assert_eq!(
            argv::relation_set(r, false, &bag).stdin.as_deref(),
            Some("{\"a\":\"1\",\"b\":\"\"}")
        );
        assert_eq!(
            argv::state_set(&bag).stdin.as_deref(),
            Some("{\"a\":\"1\",\"b\":\"\"}")
        );
        // -r is its own argument, never "-r 7" in one element.
        assert!(argv::relation_get(r, "u/0", false)
            .args
            .iter()
            .all(|a| a != "-r 7"));
    }

    #[test]
    fn secret_values_never_reach_argv() {
        let content: Databag = [("super-password".to_string(), "s3cr3t".to_string())].into();
        let dir = PathBuf::from("/tmp/x");
        let opts = SecretAddOptions {
            label: Some("cluster.zookeeper.app".into()),
            description: None,
            owner: Some(SecretOwner::Application),
        };
        let inv = argv::secret_add(&content, &opts, &dir);
        assert_eq!(line(&inv), "secret-add --label cluster.zookeeper.app --owner application super-password#file=/tmp/x/super-password");
        assert!(!line(&inv).contains("s3cr3t"));
        let inv = argv::secret_set("secret:x", Some(&content), None, &dir);
        assert_eq!(
            line(&inv),
            "secret-set secret:x super-password#file=/tmp/x/super-password"
        );
    }

    #[test]
    fn missing_tool_is_a_spawn_error_naming_the_tool() {
        let tools = ProcessTools::new();
        let inv = Invocation::new("definitely-not-a-hook-tool", &[]);
        let err = tools.run(&inv).unwrap_err();
        assert!(matches!(err, ToolError::Spawn { .. }));
        assert!(err.to_string().contains("definitely-not-a-hook-tool"));
        assert_eq!(tools.calls(), 1);
    }
}
