//! Test harness: each test gets its own model in a temporary directory, driven through the real
//! `jujusim` binary; dropping the harness runs `destroy`, so every process a model started is
//! stopped even when the test fails.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_jujusim");

/// Copies a fixture charm (a plain tree of files) to `dest`, to change it for a test.
pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("mkdir");
    for e in std::fs::read_dir(src).expect("read_dir") {
        let e = e.expect("entry");
        let to = dest.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Whether these tests run jujusim in its serial mode (`JUJUSIM_TEST_SERIAL=1`, as
/// `cargo xtask test` does in a second pass); the default is Juju's concurrency.
pub fn serial_mode() -> bool {
    std::env::var("JUJUSIM_TEST_SERIAL").is_ok_and(|v| v == "1")
}

/// A model driven through the real `jujusim` binary (simkit's `Sim`, hermetic: the
/// environment's `JUJUSIM_*` variables do not reach it), plus the probe charm's helpers.
pub struct Sim(simkit::Sim);

impl std::ops::Deref for Sim {
    type Target = simkit::Sim;
    fn deref(&self) -> &simkit::Sim {
        &self.0
    }
}

impl Sim {
    pub fn new() -> Sim {
        let sim = simkit::Sim::new(BIN).hermetic().serial(serial_mode());
        std::fs::create_dir_all(sim.model()).expect("model dir");
        Sim(sim)
    }

    /// Extra global options for every command (e.g. `--seed 7`).
    pub fn with_global(self, args: &[&str]) -> Sim {
        Sim(self.0.global(args))
    }

    /// A script every probe unit sources in every hook and action (`$JUJUSIM_MODEL_DIR/probe.sh`).
    pub fn script(&self, body: &str) {
        std::fs::write(self.model().join("probe.sh"), body).expect("write probe.sh");
    }

    /// A script only `unit` sources (`$JUJUSIM_WORKLOAD_DIR/script.sh`).
    pub fn unit_script(&self, unit: &str, body: &str) {
        let dir = self.workload_dir(unit);
        std::fs::create_dir_all(&dir).expect("workload dir");
        std::fs::write(dir.join("script.sh"), body).expect("write script.sh");
    }

    pub fn unit_status(&self, unit: &str) -> Value {
        let app = unit.split('/').next().unwrap_or_default();
        self.status()["applications"][app]["units"][unit].clone()
    }

    /// (unit, hook-or-action) in timeline order.
    pub fn events(&self) -> Vec<(String, String)> {
        self.log()
            .iter()
            .map(|e| {
                let what = e["hook"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("action {}", e["action"].as_str().unwrap_or("")));
                (e["unit"].as_str().unwrap_or("").to_string(), what)
            })
            .collect()
    }

    /// Hooks one unit ran, in order.
    pub fn hooks(&self, unit: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|(u, _)| u == unit)
            .map(|(_, h)| h)
            .collect()
    }

    /// The last timeline entry for `unit` running `hook`.
    pub fn last_entry(&self, unit: &str, hook: &str) -> Value {
        self.log()
            .into_iter()
            .rev()
            .find(|e| e["unit"] == unit && (e["hook"] == hook || e["action"] == hook))
            .unwrap_or_else(|| panic!("no {hook} entry for {unit}"))
    }

    pub fn model_json(&self) -> String {
        std::fs::read_to_string(self.model().join("model.json")).expect("model.json")
    }

    pub fn read_workload(&self, unit: &str, file: &str) -> String {
        std::fs::read_to_string(self.workload_dir(unit).join(file)).unwrap_or_default()
    }
}

/// The probe charm with `n` units and a stub `client` related on `db` (relation 0 is the peer
/// relation, 1 the client's).
pub fn probe_and_client(n: &str) -> Sim {
    let sim = Sim::new();
    sim.ok(&["deploy", &fixture("probe"), "-n", n]);
    sim.ok(&["deploy-stub", "client", "--requires", "db:probedb"]);
    sim.ok(&["integrate", "client", "probe"]);
    sim
}

/// A shell word, single-quoted.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A script line running `argv` with output discarded (the timeline records it).
pub fn call(argv: &[&str]) -> String {
    let words: Vec<String> = argv.iter().map(|a| sh_quote(a)).collect();
    format!("{} </dev/null >/dev/null 2>&1\n", words.join(" "))
}

/// Polls `f` until it returns Some or the deadline passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process is running (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Kills a process by PID if it runs (cleanup for tests that start or orphan processes).
pub fn kill(pid: i32) {
    if alive(pid) {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    }
}

/// Checks Juju's ordering guarantees (reference §4, §7.D) on a timeline's successful hooks:
/// install once and first; config-changed before start, start right after the first
/// config-changed; each -joined(u) followed next (in that relation) by -changed(u); -departed
/// before -broken; nothing after remove.
pub fn check_invariants(log: &[Value]) {
    use std::collections::BTreeMap;
    let mut per_unit: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    // Failed runs are retried; the guarantees are about the hooks that completed.
    for e in log.iter().filter(|e| e["exit_code"] == 0) {
        per_unit
            .entry(e["unit"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(e);
    }
    for (unit, entries) in per_unit {
        let hooks: Vec<&str> = entries.iter().filter_map(|e| e["hook"].as_str()).collect();
        let installs = hooks.iter().filter(|h| **h == "install").count();
        assert!(
            installs <= 1,
            "{unit}: install ran {installs} times: {hooks:?}"
        );
        if installs == 1 {
            let first = hooks
                .iter()
                .position(|h| !h.ends_with("-storage-attached"))
                .unwrap_or(0);
            assert_eq!(
                hooks[first], "install",
                "{unit}: install is not first: {hooks:?}"
            );
        }
        if let Some(s) = hooks.iter().position(|h| *h == "start") {
            let c = hooks.iter().position(|h| *h == "config-changed");
            assert!(
                c.is_some_and(|c| c < s),
                "{unit}: config-changed not before start: {hooks:?}"
            );
            assert_eq!(
                hooks[c.unwrap() + 1],
                "start",
                "{unit}: start not right after the first config-changed: {hooks:?}"
            );
        }
        if let Some(r) = hooks.iter().position(|h| *h == "remove") {
            assert_eq!(r + 1, hooks.len(), "{unit}: hooks after remove: {hooks:?}");
        }
        // Per relation id: joined(u) -> changed(u) next; departed before broken.
        let mut by_rel: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for e in &entries {
            let (Some(h), Some(rid)) = (e["hook"].as_str(), e["env"]["JUJU_RELATION_ID"].as_str())
            else {
                continue;
            };
            let remote = e["env"]["JUJU_REMOTE_UNIT"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            by_rel
                .entry(rid.to_string())
                .or_default()
                .push((h.to_string(), remote));
        }
        for (rid, seq) in by_rel {
            for (i, (h, r)) in seq.iter().enumerate() {
                if h.ends_with("-relation-joined") {
                    let next = seq.get(i + 1);
                    assert!(
                        next.is_some_and(|(nh, nr)| nh.ends_with("-relation-changed") && nr == r),
                        "{unit} {rid}: joined({r}) not followed by changed({r}): {seq:?}"
                    );
                }
                if h.ends_with("-relation-broken") {
                    assert_eq!(
                        i + 1,
                        seq.len(),
                        "{unit} {rid}: hooks after broken: {seq:?}"
                    );
                }
            }
            // Everyone joined has departed before broken.
            if seq.iter().any(|(h, _)| h.ends_with("-relation-broken")) {
                let joined: Vec<&String> = seq
                    .iter()
                    .filter(|(h, _)| h.ends_with("-joined"))
                    .map(|(_, r)| r)
                    .collect();
                for j in joined {
                    assert!(
                        seq.iter().any(|(h, r)| h.ends_with("-departed") && r == j),
                        "{unit} {rid}: {j} joined but never departed before broken: {seq:?}"
                    );
                }
            }
        }
    }
}
