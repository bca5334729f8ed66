//! End-to-end test support: a jujusim model running the packed charm against real ZooKeeper,
//! and a real client (kazoo) to check data and ACLs.
//!
//! Artifacts come from `cargo xtask test` (which builds them first): `JUJUSIM_BIN`,
//! `ZK_CHARM_PACKED`, `ZK_TEST_PYTHON`; without those variables the usual paths under
//! `target/` and `.venv/` are used, and a clear message says how to build them if missing.
//! Every model is destroyed on drop (also when a test fails), which stops every server it started.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn artifact(var: &str, default: PathBuf, how: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    assert!(p.exists(), "{} is missing: {how} (or run everything with `cargo xtask test`)", p.display());
    p
}

pub fn jujusim_bin() -> PathBuf {
    artifact("JUJUSIM_BIN", root().join("target/release/jujusim"), "cargo build --release -p jujusim")
}

pub fn packed_charm() -> PathBuf {
    artifact("ZK_CHARM_PACKED", root().join("target/charm/zookeeper.charm"), "cargo xtask pack")
}

pub fn python() -> PathBuf {
    artifact("ZK_TEST_PYTHON", root().join(".venv/bin/python"), "python3 -m venv .venv && .venv/bin/pip install kazoo pure-sasl")
}

fn text(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A jujusim model in a temporary directory.
pub struct Model {
    dir: tempfile::TempDir,
    bin: PathBuf,
    seed: Option<u64>,
}

impl Model {
    pub fn new() -> Model {
        Model { dir: tempfile::tempdir().expect("temp dir"), bin: jujusim_bin(), seed: None }
    }

    /// Equally valid orderings chosen by this seed (jujusim --seed).
    pub fn with_seed(seed: u64) -> Model {
        Model { seed: Some(seed), ..Model::new() }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--model").arg(self.dir.path().join("model"));
        if let Some(s) = self.seed {
            c.arg("--seed").arg(s.to_string());
        }
        c.args(args);
        c
    }

    pub fn try_run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run jujusim")
    }

    /// Runs a command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let t = Instant::now();
        let out = self.try_run(args);
        assert!(out.status.success(), "jujusim {args:?} failed after {:?}\n{}", t.elapsed(), text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        let s = self.ok(&a);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("jujusim {args:?}: not JSON ({e}): {s}"))
    }

    pub fn deploy(&self, n: usize) {
        let charm = packed_charm();
        self.ok(&["deploy", charm.to_str().unwrap_or_default(), "zookeeper", "-n", &n.to_string()]);
    }

    pub fn status(&self) -> Value {
        self.json(&["status"])
    }

    pub fn units(&self, app: &str) -> Vec<String> {
        let s = self.status();
        let mut u: Vec<String> = s["applications"][app]["units"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        u.sort_by_key(|n| n.rsplit('/').next().and_then(|x| x.parse::<u32>().ok()).unwrap_or(0));
        u
    }

    pub fn unit_field(&self, unit: &str, pointer: &str) -> Value {
        let app = unit.split('/').next().unwrap_or_default();
        self.status()["applications"][app]["units"][unit].pointer(pointer).cloned().unwrap_or(Value::Null)
    }

    pub fn leader(&self, app: &str) -> String {
        let s = self.status();
        s["applications"][app]["units"]
            .as_object()
            .and_then(|m| m.iter().find(|(_, v)| v["leader"] == Value::Bool(true)).map(|(k, _)| k.clone()))
            .expect("a leader")
    }

    pub fn address(&self, unit: &str) -> String {
        self.unit_field(unit, "/public-address").as_str().unwrap_or_default().to_string()
    }

    /// `host:2181` of every unit of the app.
    pub fn hosts(&self, app: &str) -> String {
        self.units(app).iter().map(|u| format!("{}:2181", self.address(u))).collect::<Vec<_>>().join(",")
    }

    /// Workload status (current, message) of every unit.
    pub fn workload(&self, app: &str) -> Vec<(String, String, String)> {
        let s = self.status();
        let mut v: Vec<(String, String, String)> = s["applications"][app]["units"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, u)| {
                        (
                            k.clone(),
                            u["workload-status"]["current"].as_str().unwrap_or_default().to_string(),
                            u["workload-status"]["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn all_active(&self, app: &str) -> bool {
        self.workload(app).iter().all(|(_, s, _)| s == "active")
    }

    /// `settle`: returns the number of update-status ticks it needed.
    pub fn settle(&self) -> u64 {
        let v = self.json(&["settle", "--timeout", "240"]);
        v["ticks"].as_u64().unwrap_or_else(|| panic!("settle output: {v}"))
    }

    pub fn log(&self) -> Vec<Value> {
        self.json(&["log"]).as_array().cloned().unwrap_or_default()
    }

    /// Hooks that exited non-zero (or timed out), as "unit hook".
    pub fn hook_errors(&self) -> Vec<String> {
        self.log()
            .iter()
            .filter(|e| e["exit_code"].as_i64().unwrap_or(0) != 0 || e["timed_out"] == Value::Bool(true))
            .filter(|e| e.get("action").map(|a| a.is_null()).unwrap_or(true))
            .map(|e| format!("{} {}", e["unit"].as_str().unwrap_or("?"), e["hook"].as_str().unwrap_or("?")))
            .collect()
    }

    /// juju-log messages the charm wrote, as (unit, hook, message).
    pub fn charm_logs(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for e in self.log() {
            let hook = e["hook"].as_str().or(e["action"].as_str()).unwrap_or("").to_string();
            let unit = e["unit"].as_str().unwrap_or("").to_string();
            for call in e["tool_calls"].as_array().cloned().unwrap_or_default() {
                let argv: Vec<String> = call["argv"].as_array().cloned().unwrap_or_default().iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
                if argv.first().map(String::as_str) == Some("juju-log") {
                    if let Some(msg) = argv.last() {
                        out.push((unit.clone(), hook.clone(), msg.clone()));
                    }
                }
            }
        }
        out
    }

    /// Runs an action; returns the unit's entry of `run --format json`.
    pub fn action(&self, target: &str, name: &str, params: &[&str]) -> Value {
        let mut args = vec!["run", target, name];
        args.extend(params);
        args.extend(["--format", "json"]);
        let out = self.try_run(&args);
        let s = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&s).unwrap_or_else(|e| panic!("run {name}: not JSON ({e})\n{}", text(&out)));
        v.as_object().and_then(|m| m.values().next().cloned()).unwrap_or(Value::Null)
    }

    pub fn super_password(&self) -> String {
        let r = self.action("zookeeper/leader", "get-super-password", &[]);
        r["results"]["super-password"].as_str().unwrap_or_else(|| panic!("get-super-password: {r}")).to_string()
    }

    /// Polls `cond` until it holds or `timeout` passes.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        let _ = self.cmd(&["destroy"]).output();
    }
}

/// Runs kazoo with a JSON spec (see zkclient.py); returns its JSON answer.
pub fn kazoo(spec: Value) -> Value {
    let script = root().join("tests/support/zkclient.py");
    let out = Command::new(python()).arg(script).arg(spec.to_string()).output().expect("run python");
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("zkclient.py: not JSON ({e})\n{}", text(&out)))
}

/// Four-letter word to one server (no authentication needed).
pub fn four_letter(addr: &str, cmd: &str) -> String {
    use std::io::{Read, Write};
    let Ok(sock) = addr.parse() else { return String::new() };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(500)) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(cmd.as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// (membership lines, version) from the `conf` of the server at `addr`.
pub fn conf_members(addr: &str) -> (Vec<String>, String) {
    let conf = four_letter(addr, "conf");
    let members = conf.lines().filter(|l| l.starts_with("server.")).map(str::to_string).collect();
    let version = conf.lines().find_map(|l| l.strip_prefix("version=")).unwrap_or_default().to_string();
    (members, version)
}

pub fn peer_state(addr: &str) -> String {
    four_letter(addr, "mntr").lines().find_map(|l| l.strip_prefix("zk_peer_state\t")).unwrap_or("").to_string()
}
