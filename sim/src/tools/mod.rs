//! The fake hook tools. The client side ([`client`]) is the `jujusim` binary started under a tool
//! name; it forwards {context id, tool, args, cwd, stdin} over the model's unix socket to the
//! server side ([`server`]), which runs the tool against the world and the hook's transaction.
//!
//! Each tool follows Juju's jujuc rules (hook protocol reference §2): gnuflag parsing
//! ([`flags`]), smart/yaml/json output ([`format`]), `ERROR <msg>` on stderr with exit code 2 for
//! argument errors and 1 for run-time errors.

pub mod action;
pub mod client;
pub mod ctx;
pub mod flags;
pub mod format;
pub mod relation;
pub mod secret;
pub mod server;
pub mod unit;

use serde::{Deserialize, Serialize};

/// Every tool name installed on the hook's PATH (reference §7.B).
pub const TOOL_NAMES: &[&str] = &[
    "action-fail",
    "action-get",
    "action-log",
    "action-set",
    "application-version-set",
    "close-port",
    "config-get",
    "credential-get",
    "goal-state",
    "is-leader",
    "juju-log",
    "juju-reboot",
    "leader-get",
    "leader-set",
    "network-get",
    "open-port",
    "opened-ports",
    "relation-get",
    "relation-ids",
    "relation-list",
    "relation-model-get",
    "relation-set",
    "resource-get",
    "secret-add",
    "secret-get",
    "secret-grant",
    "secret-ids",
    "secret-info-get",
    "secret-remove",
    "secret-revoke",
    "secret-set",
    "state-delete",
    "state-get",
    "state-set",
    "status-get",
    "status-set",
    "storage-add",
    "storage-get",
    "storage-list",
    "unit-get",
];

pub fn is_tool(name: &str) -> bool {
    TOOL_NAMES.contains(&name)
}

/// Whether this invocation reads stdin (`--file -` on the tools that take `--file`).
pub fn reads_stdin(tool: &str, args: &[String]) -> bool {
    if !matches!(
        tool,
        "relation-set" | "state-set" | "secret-add" | "secret-set"
    ) {
        return false;
    }
    let mut it = args.iter().take_while(|a| *a != "--");
    while let Some(a) = it.next() {
        if a == "--file=-" || a == "-file=-" {
            return true;
        }
        if (a == "--file" || a == "-file") && it.next().map(String::as_str) == Some("-") {
            return true;
        }
    }
    false
}

/// What a tool sends to the simulator.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub context: String,
    pub tool: String,
    pub args: Vec<String>,
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

/// What the simulator answers.
#[derive(Debug, Default, Serialize, Deserialize, Clone)]
pub struct Response {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// A tool error: `Usage` exits 2 (flag parsing, Init), `Run` exits 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolErr {
    Usage(String),
    Run(String),
}

pub type ToolResult = Result<Response, ToolErr>;

pub fn usage<T>(msg: impl Into<String>) -> Result<T, ToolErr> {
    Err(ToolErr::Usage(msg.into()))
}

pub fn run_err<T>(msg: impl Into<String>) -> Result<T, ToolErr> {
    Err(ToolErr::Run(msg.into()))
}

/// Success with this stdout.
pub fn out(stdout: String) -> ToolResult {
    Ok(Response {
        stdout,
        stderr: String::new(),
        code: 0,
    })
}

/// `unrecognized args: ["a" "b"]` (juju/cmd CheckEmpty) when anything is left.
pub fn check_empty(rest: &[String]) -> Result<(), ToolErr> {
    if rest.is_empty() {
        return Ok(());
    }
    let quoted: Vec<String> = rest.iter().map(|a| format!("{a:?}")).collect();
    usage(format!("unrecognized args: [{}]", quoted.join(" ")))
}
