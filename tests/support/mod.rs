//! End-to-end test support: a jujusim model running the packed charm against real ZooKeeper,
//! and a real client (kazoo) to check data and ACLs.
//!
//! Artifacts come from `cargo xtask test` (which builds them first): `JUJUSIM_BIN`,
//! `ZK_CHARM_PACKED`, `ZK_TEST_PYTHON`; without those variables the usual paths under
//! `target/` and `.venv/` are used, and a clear message says how to build them if missing.
//! Every model is destroyed on drop (also when a test fails), which stops every server it started.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
pub use simkit::{juju_logs, Sim};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn artifact(var: &str, default: PathBuf, how: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    assert!(
        p.exists(),
        "{} is missing: {how} (or run everything with `cargo xtask test`)",
        p.display()
    );
    p
}

pub fn jujusim_bin() -> PathBuf {
    artifact(
        "JUJUSIM_BIN",
        root().join("target/release/jujusim"),
        "cargo build --release -p jujusim",
    )
}

pub fn packed_charm() -> PathBuf {
    artifact(
        "ZK_CHARM_PACKED",
        root().join("target/charm/zookeeper.charm"),
        "cargo xtask pack",
    )
}

pub fn python() -> PathBuf {
    artifact(
        "ZK_TEST_PYTHON",
        root().join(".venv/bin/python"),
        "python3 -m venv .venv && .venv/bin/pip install kazoo pure-sasl",
    )
}

/// A jujusim model in a temporary directory running the packed charm (simkit's `Sim`, whose
/// methods it has, plus this charm's helpers).
pub struct Model(Sim);

impl std::ops::Deref for Model {
    type Target = Sim;
    fn deref(&self) -> &Sim {
        &self.0
    }
}

impl Model {
    /// A model; `ZK_TEST_SEED` (as `cargo xtask test` sets in its seeded pass) gives it a seed.
    pub fn new() -> Model {
        let seed = std::env::var("ZK_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok());
        Model(Sim::new(jujusim_bin()).seed(seed))
    }

    /// Equally valid orderings chosen by this seed (jujusim --seed).
    pub fn with_seed(seed: u64) -> Model {
        Model(Sim::new(jujusim_bin()).seed(Some(seed)))
    }

    pub fn deploy(&self, n: usize) {
        self.deploy_with(n, &[]);
    }

    /// Deploys with `--config k=v` options.
    pub fn deploy_with(&self, n: usize, config: &[&str]) {
        let charm = packed_charm();
        let n = n.to_string();
        let mut args = vec![
            "deploy",
            charm.to_str().unwrap_or_default(),
            "zookeeper",
            "-n",
            &n,
        ];
        for c in config {
            args.extend(["--config", c]);
        }
        self.ok(&args);
    }

    pub fn leader(&self, app: &str) -> String {
        self.leader_of(app).expect("a leader")
    }

    /// `host:2181` of every unit of the app, comma-separated.
    pub fn hosts(&self, app: &str) -> String {
        self.host_list(app).join(",")
    }

    /// `host:2181` of every unit of the app.
    pub fn host_list(&self, app: &str) -> Vec<String> {
        self.units(app)
            .iter()
            .map(|u| format!("{}:2181", self.address(u)))
            .collect()
    }

    /// `settle`: returns the number of update-status ticks it needed.
    pub fn settle(&self) -> u64 {
        let v = self.try_settle(240).unwrap_or_else(|e| panic!("{e}"));
        v["ticks"]
            .as_u64()
            .unwrap_or_else(|| panic!("settle output: {v}"))
    }

    /// juju-log messages the charm wrote, as (unit, hook, message).
    pub fn charm_logs(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for e in self.log() {
            let hook = e["hook"]
                .as_str()
                .or(e["action"].as_str())
                .unwrap_or("")
                .to_string();
            let unit = e["unit"].as_str().unwrap_or("").to_string();
            for msg in juju_logs(&e) {
                out.push((unit.clone(), hook.clone(), msg));
            }
        }
        out
    }

    pub fn super_password(&self) -> String {
        let r = self.action("zookeeper/leader", "get-super-password", &[]);
        r["results"]["super-password"]
            .as_str()
            .unwrap_or_else(|| panic!("get-super-password: {r}"))
            .to_string()
    }

    /// Settles (retrying failed hooks, ticking update-status) until every unit of `app` is
    /// active, for at most two minutes.
    pub fn settle_until_active(&self, app: &str) {
        self.wait_for("every unit active", Duration::from_secs(120), || {
            self.settle();
            self.all_active(app)
        });
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

/// Runs kazoo with a JSON spec (see zkclient.py); returns its JSON answer.
pub fn kazoo(spec: Value) -> Value {
    let script = root().join("tests/support/zkclient.py");
    let out = Command::new(python())
        .arg(script)
        .arg(spec.to_string())
        .output()
        .expect("run python");
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(s.trim())
        .unwrap_or_else(|e| panic!("zkclient.py: not JSON ({e})\n{}", simkit::output_text(&out)))
}

/// Four-letter word to one server (no authentication needed).
pub fn four_letter(addr: &str, cmd: &str) -> String {
    use std::io::{Read, Write};
    let Ok(sock) = addr.parse() else {
        return String::new();
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(500)) else {
        return String::new();
    };
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
    let members = conf
        .lines()
        .filter(|l| l.starts_with("server."))
        .map(str::to_string)
        .collect();
    let version = conf
        .lines()
        .find_map(|l| l.strip_prefix("version="))
        .unwrap_or_default()
        .to_string();
    (members, version)
}

pub fn peer_state(addr: &str) -> String {
    four_letter(addr, "mntr")
        .lines()
        .find_map(|l| l.strip_prefix("zk_peer_state\t"))
        .unwrap_or("")
        .to_string()
}

impl Model {
    pub fn model_dir(&self) -> PathBuf {
        self.model().to_path_buf()
    }

    /// PID of the unit's ZooKeeper server (from the local substrate's PID file).
    pub fn workload_pid(&self, unit: &str) -> Option<i32> {
        let d = self.workload_dir(unit).join("zookeeper.pid");
        std::fs::read_to_string(d).ok()?.trim().parse().ok()
    }

    pub fn kill_workload(&self, unit: &str) {
        self.ok(&["kill-workload", unit]);
    }

    /// The unit whose server leads the quorum.
    pub fn quorum_leader(&self, app: &str) -> Option<String> {
        self.units(app)
            .into_iter()
            .find(|u| peer_state(&format!("{}:2181", self.address(u))) == "leading - broadcast")
    }

    /// Every server of the application in broadcast, exactly one leading (from each server's
    /// own `mntr`).
    pub fn all_serving(&self, app: &str) -> bool {
        let states: Vec<String> = self
            .units(app)
            .iter()
            .map(|u| peer_state(&format!("{}:2181", self.address(u))))
            .collect();
        states
            .iter()
            .filter(|s| *s == "leading - broadcast")
            .count()
            == 1
            && states.iter().all(|s| s.ends_with("- broadcast"))
    }

    /// Every unit active; one server leading, every other following; every unit a voting
    /// participant in the configuration every server reports, at the same version.
    pub fn assert_quorum(&self, app: &str) {
        let units = self.units(app);
        for (u, st, msg) in self.workload(app) {
            assert_eq!(st, "active", "{u}: {st} {msg:?}\n{:?}", self.workload(app));
        }
        let mut leaders = 0;
        let mut seen: Option<(Vec<String>, String)> = None;
        for u in &units {
            let addr = format!("{}:2181", self.address(u));
            match peer_state(&addr).as_str() {
                "leading - broadcast" => leaders += 1,
                "following - broadcast" => {}
                other => panic!("{u} ({addr}) is {other:?}"),
            }
            let (mut members, version) = conf_members(&addr);
            members.sort();
            if let Some((m, v)) = &seen {
                assert_eq!(
                    (&members, &version),
                    (m, v),
                    "{u} sees another configuration"
                );
            }
            seen = Some((members, version));
        }
        assert_eq!(leaders, 1, "exactly one quorum leader among {units:?}");
        let (members, _) = seen.unwrap_or_default();
        let mut want: Vec<String> = units
            .iter()
            .map(|u| {
                let n: u32 = u
                    .rsplit('/')
                    .next()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0);
                let a = self.address(u);
                format!("server.{}={a}:2888:3888:participant;{a}:2181", n + 1)
            })
            .collect();
        want.sort();
        assert_eq!(members, want, "membership");
    }

    /// A kazoo spec authenticated as the super user (SASL), against every unit.
    pub fn super_spec(&self, app: &str, ops: Value) -> Value {
        serde_json::json!({"hosts": self.hosts(app), "auth": {"sasl": ["super", self.super_password()]}, "ops": ops})
    }

    /// juju-log messages of one unit containing `needle`, as (seq, message).
    pub fn logged(&self, unit: &str, needle: &str) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for e in self.log() {
            if e["unit"].as_str() != Some(unit) {
                continue;
            }
            let seq = e["seq"].as_u64().unwrap_or(0);
            for call in e["tool_calls"].as_array().cloned().unwrap_or_default() {
                let argv: Vec<&str> = call["argv"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                if argv.first() == Some(&"juju-log")
                    && argv.last().is_some_and(|m| m.contains(needle))
                {
                    out.push((seq, argv.last().map(|s| s.to_string()).unwrap_or_default()));
                }
            }
        }
        out
    }

    /// Did `unit` write `key=value` to a relation bag (relation-set with JSON on stdin)?
    pub fn wrote(&self, unit: &str, key: &str, value: &str) -> bool {
        let want = format!("\"{key}\":\"{value}\"");
        self.log()
            .iter()
            .filter(|e| e["unit"].as_str() == Some(unit))
            .any(|e| {
                e["exit_code"].as_i64() == Some(0)
                    && e["tool_calls"].as_array().is_some_and(|calls| {
                        calls.iter().any(|c| {
                            c["argv"][0].as_str() == Some("relation-set")
                                && c["stdin"].as_str().is_some_and(|s| s.contains(&want))
                        })
                    })
            })
    }
}

/// SIGSTOPs a process; SIGCONTs it on drop (also when the test fails).
pub struct Frozen(pub i32);

impl Frozen {
    pub fn new(pid: i32) -> Frozen {
        // SAFETY: signalling a process this test started (through the charm).
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        Frozen(pid)
    }
}

/// SIGSTOPs a process for `d` from now, whatever the test is doing meanwhile (a thread
/// SIGCONTs it; so does dropping the guard, also when the test fails).
pub struct FrozenFor(Option<std::thread::JoinHandle<()>>, i32);

impl FrozenFor {
    pub fn new(pid: i32, d: Duration) -> FrozenFor {
        let frozen = Frozen::new(pid);
        FrozenFor(
            Some(std::thread::spawn(move || {
                std::thread::sleep(d);
                drop(frozen);
            })),
            pid,
        )
    }
}

impl Drop for FrozenFor {
    fn drop(&mut self) {
        // SAFETY: as for Frozen (a process this test started).
        unsafe { libc::kill(self.1, libc::SIGCONT) };
        if let Some(t) = self.0.take() {
            if std::thread::panicking() {
                return;
            }
            let _ = t.join();
        }
    }
}

/// A jujusim command running in the background (while the test acts on the model); killed
/// on drop if it is still running, so that a failing test does not leave it holding the model.
pub struct Background(std::process::Child);

impl Model {
    pub fn background(&self, args: &[&str]) -> Background {
        Background(self.command(args).spawn().expect("run jujusim"))
    }
}

impl Background {
    /// Waits for the command to end.
    pub fn wait(mut self) {
        let _ = self.0.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// A stub client application on the `zookeeper` endpoint.
impl Model {
    /// Deploys a stub requirer and integrates it with zookeeper (both without running hooks
    /// when `wait` is false).
    pub fn stub(&self, app: &str, wait: bool) {
        let nw: &[&str] = if wait { &[] } else { &["--no-wait"] };
        let run = |args: &[&str]| {
            let mut a = nw.to_vec();
            a.extend(args);
            self.ok(&a);
        };
        run(&["deploy-stub", app, "--requires", "zookeeper:zookeeper"]);
        run(&["integrate", app, "zookeeper"]);
    }

    /// Writes the stub's application bag (`k=v` pairs).
    pub fn set_data(&self, app: &str, kv: &[&str], wait: bool) {
        let mut a: Vec<&str> = if wait { vec![] } else { vec!["--no-wait"] };
        a.extend(["set-data", app, "zookeeper"]);
        a.extend(kv);
        self.ok(&a);
    }

    /// What the stub sees from zookeeper: `{"relation-id", "application-data", "units", "revealed"}`.
    pub fn show_data(&self, app: &str, reveal: bool) -> Value {
        let mut a = vec!["show-data", app, "zookeeper"];
        if reveal {
            a.push("--reveal-secrets");
        }
        self.json(&a)["zookeeper"].clone()
    }

    /// Every field zookeeper answered a stub with: its databag, and the content of each secret
    /// it was given (`secret-user`, `secret-tls`) for the fields it asked to get that way.
    pub fn answer(&self, app: &str) -> std::collections::BTreeMap<String, String> {
        let d = self.show_data(app, true);
        let mut out = std::collections::BTreeMap::new();
        let groups = d["revealed"].as_object().cloned().unwrap_or_default();
        for source in std::iter::once(&d["application-data"]).chain(groups.values()) {
            for (k, v) in source.as_object().into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    // The databag comes first and wins, as before the secrets.
                    out.entry(k.clone()).or_insert_with(|| v.to_string());
                }
            }
        }
        out
    }

    /// (username, password, endpoints, chroot) as a stub received them (from the databag, or
    /// from the `user` secret when it asked for one).
    pub fn credentials(&self, app: &str) -> Option<(String, String, String, String)> {
        let answer = self.answer(app);
        let field = |k: &str| answer.get(k).cloned();
        Some((
            field("username")?,
            field("password")?,
            field("endpoints")?,
            field("database")?,
        ))
    }
}

/// kazoo spec for a client of `hosts` (optionally inside `chroot`) with the given auth.
pub fn client(hosts: &str, chroot: Option<&str>, auth: Value, ops: Value) -> Value {
    let mut spec = serde_json::json!({"hosts": hosts, "auth": auth, "timeout": 8, "ops": ops});
    if let Some(c) = chroot {
        spec["chroot"] = Value::String(c.to_string());
    }
    kazoo(spec)
}

/// Client tenancy checks: what every znode's ACL grants, read as the super user.
impl Model {
    /// Every znode with its ACL as `scheme:id:perms` strings (perms as `cdrwa` letters).
    pub fn tree_acls(&self, app: &str) -> std::collections::BTreeMap<String, Vec<String>> {
        let r = kazoo(self.super_spec(
            app,
            serde_json::json!([["tree_acls", "/"], ["tree_acls", "/zookeeper"]]),
        ));
        let mut tree: std::collections::BTreeMap<String, Vec<String>> =
            serde_json::from_value(r["results"][0]["ok"].clone())
                .unwrap_or_else(|e| panic!("tree_acls: {e}: {r}"));
        let zk: std::collections::BTreeMap<String, Vec<String>> =
            serde_json::from_value(r["results"][1]["ok"].clone())
                .unwrap_or_else(|e| panic!("tree_acls /zookeeper: {e}: {r}"));
        tree.extend(zk);
        tree
    }

    /// The relation id of a stub client's relation with zookeeper.
    pub fn relation_id(&self, client: &str) -> u32 {
        let d = self.show_data(client, false);
        d["relation-id"]
            .as_u64()
            .or_else(|| {
                d["relation-id"]
                    .as_str()
                    .and_then(|s| s.rsplit(':').next()?.parse().ok())
            })
            .unwrap_or_else(|| panic!("no relation id for {client}: {d}")) as u32
    }

    /// The peer relation's application data as the unit sees it.
    pub fn peer_app_data(&self, unit: &str) -> Value {
        let v = self.json(&["show-unit", unit]);
        v[unit]["relation-info"]
            .as_array()
            .and_then(|rels| rels.iter().find(|r| r["endpoint"] == "cluster"))
            .map(|r| r["application-data"].clone())
            .unwrap_or(Value::Null)
    }

    /// The client znode ownership record the leader keeps (`client-znodes`).
    pub fn ownership(&self, app: &str) -> Value {
        let leader = self.leader(app);
        let raw = self.peer_app_data(&leader)["client-znodes"]
            .as_str()
            .unwrap_or("null")
            .to_string();
        serde_json::from_str(&raw).unwrap_or(Value::Null)
    }
}

/// The client relation an ACL entry names (`sasl:relation-7:...`, `digest:relation-7:...`).
pub fn named_relation(entry: &str) -> Option<u32> {
    let rest = entry
        .strip_prefix("sasl:relation-")
        .or_else(|| entry.strip_prefix("digest:relation-"))?;
    rest.split(':').next()?.parse().ok()
}

/// `node` is `chroot` or below it.
pub fn within(node: &str, chroot: &str) -> bool {
    node == chroot || node.starts_with(&format!("{chroot}/"))
}

/// The tenancy rules over a whole tree: no node grants a removed relation; a live relation is
/// granted only inside its current chroot; the root and `/zookeeper` are writable by nobody
/// but the super user.
pub fn assert_tenancy(
    tree: &std::collections::BTreeMap<String, Vec<String>>,
    live: &[(u32, &str)],
    removed: &[u32],
) {
    for (node, acls) in tree {
        for a in acls {
            let Some(rel) = named_relation(a) else {
                continue;
            };
            assert!(
                !removed.contains(&rel),
                "{node} still grants removed relation-{rel}: {acls:?}"
            );
            match live.iter().find(|(r, _)| *r == rel) {
                Some((_, chroot)) => assert!(
                    within(node, chroot),
                    "{node} grants relation-{rel} outside its chroot {chroot}: {acls:?}"
                ),
                None => panic!("{node} grants relation-{rel}, not a live client: {acls:?}"),
            }
        }
    }
    for locked in ["/", "/zookeeper"] {
        let mut got = tree.get(locked).cloned().unwrap_or_default();
        got.sort();
        assert_eq!(
            got,
            ["sasl:super:cdrwa", "world:anyone:r"],
            "{locked} is writable by the super user only"
        );
    }
}

/// CPU busy loops (`sh -c 'while :; do :; done'`), killed by PID on drop (also on failure): the
/// load under which ZooKeeper's timing bugs show.
pub struct BusyLoops(Vec<std::process::Child>);

impl BusyLoops {
    pub fn start(n: usize) -> BusyLoops {
        BusyLoops(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("start a busy loop")
                })
                .collect(),
        )
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client making one multi-operation transaction per write (`tests/support/writes.py`),
/// recording every acknowledged write in a file; stopped through a stop file, killed by PID on
/// drop.
pub struct Writer {
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
    pub root: String,
}

impl Writer {
    pub fn start(hosts: &str, auth: Value, znode: &str) -> Writer {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = serde_json::json!({
            "hosts": hosts,
            "auth": auth,
            "root": znode,
            "acked": dir.path().join("acked.txt"),
            "stop": dir.path().join("stop"),
        });
        // stderr to a file: kazoo warns at every lost connection, and a pipe nobody reads
        // would fill and block the writer.
        let stderr = std::fs::File::create(dir.path().join("writer.err")).expect("writer log");
        let child = Command::new(python())
            .arg(root().join("tests/support/writes.py"))
            .arg("write")
            .arg(spec.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the writer");
        Writer {
            child: Some(child),
            dir,
            root: znode.to_string(),
        }
    }

    pub fn acked_file(&self) -> PathBuf {
        self.dir.path().join("acked.txt")
    }

    /// How many writes are acknowledged so far.
    pub fn acked(&self) -> usize {
        std::fs::read_to_string(self.acked_file())
            .map(|s| s.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0)
    }

    /// Polls until `n` writes are acknowledged (or panics after `timeout`).
    pub fn wait_acked(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.acked() < n {
            assert!(
                Instant::now() < deadline,
                "only {} writes acknowledged after {timeout:?}",
                self.acked()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the writer (through its stop file) and returns its summary.
    pub fn stop(&mut self) -> Value {
        let _ = std::fs::write(self.dir.path().join("stop"), b"");
        let Some(child) = self.child.take() else {
            return Value::Null;
        };
        let out = child.wait_with_output().expect("writer output");
        serde_json::from_slice(&out.stdout).unwrap_or_else(
            |_| serde_json::json!({"error": String::from_utf8_lossy(&out.stderr).to_string()}),
        )
    }

    /// Reads every server on its own: acknowledged writes each lacks, counters, gaps.
    pub fn check(&self, hosts: &[String], auth: Value) -> Value {
        let spec = serde_json::json!({
            "hosts": hosts,
            "auth": auth,
            "root": self.root,
            "acked": self.acked_file(),
        });
        let mut child = Command::new(python())
            .arg(root().join("tests/support/writes.py"))
            .arg("check")
            .arg(spec.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the checker");
        let deadline = Instant::now() + Duration::from_secs(180);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the checker did not finish within 180 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = child.wait_with_output().expect("checker output");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "writes.py check: not JSON ({e})\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let servers = report["servers"].as_object().map(|m| m.len()).unwrap_or(0);
        assert_eq!(servers, hosts.len(), "a report for every server: {report}");
        report
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The TLS provider test charm (`tests/charms/tls-provider`, ops + PyPI
/// charmlibs-interfaces-tls-certificates), copied with a `dispatch` that runs it with the test
/// venv's Python. The directory goes when the returned guard drops.
pub fn tls_provider_charm() -> tempfile::TempDir {
    simkit::python_charm(&root().join("tests/charms/tls-provider"), &python())
        .unwrap_or_else(|e| panic!("the TLS provider test charm: {e}"))
}

/// Arms a one-time fault: the next `relation-set` whose data (the JSON the charm sends on
/// stdin) contains `needle` writes, then kills the hook that called it (as a machine losing
/// power right after would). Returns the file whose absence says it fired.
pub fn kill_after_relation_set(m: &Model, needle: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let real = m.model_dir().join("real-tools");
    std::fs::create_dir_all(&real).expect("real-tools");
    std::os::unix::fs::symlink(jujusim_bin(), real.join("relation-set")).expect("link");
    let armed = m.dir().join("kill-after-relation-set");
    std::fs::write(&armed, b"").expect("armed");
    let wrapper = m.model_dir().join("tools").join("relation-set");
    std::fs::remove_file(&wrapper).expect("the tool");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ndata=$(cat)\nprintf '%s' \"$data\" | \"{}\" \"$@\"; rc=$?\n\
             case \"$data\" in *'{needle}'*) rm \"{}\" 2>/dev/null && kill -9 $PPID;; esac\n\
             exit $rc\n",
            real.join("relation-set").display(),
            armed.display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    armed
}

/// Stops a bounded writer and checks every server on its own: each holds every acknowledged
/// write, the writer wrote, and writes never stopped for long (one server restarts at a time: a
/// gap is at most one election, never a whole phase).
pub fn writer_report(m: &Model, w: &mut Writer, auth: Value, what: &str) {
    let summary = w.stop();
    let report = w.check(&m.host_list("zookeeper"), auth);
    for (host, s) in report["servers"].as_object().cloned().unwrap_or_default() {
        assert!(s.get("error").is_none(), "{what}: {host}: {s}");
        assert_eq!(
            s["missing_acked"],
            serde_json::json!(0),
            "{what}: {host} lacks acknowledged writes: {s}"
        );
    }
    let gap = summary["max_gap_s"].as_f64().unwrap_or(f64::MAX);
    eprintln!(
        "{what}: writer {summary}; every server holds all {} acknowledged writes; longest gap between acknowledged writes {gap:.1} s",
        report["acked"]
    );
    assert!(
        summary["acked"].as_u64().unwrap_or(0) > 0,
        "{what}: the writer wrote: {summary}"
    );
    assert!(gap < 20.0, "{what}: writes stopped for {gap} s");
}

impl Model {
    /// The id of `unit`'s relation on `endpoint` (from `show-unit`), e.g. for `relation-set -r`.
    pub fn relation_id_on(&self, unit: &str, endpoint: &str) -> Value {
        let v = self.json(&["show-unit", unit]);
        v[unit]["relation-info"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["endpoint"] == endpoint))
            .map(|r| r["relation-id"].clone())
            .unwrap_or_else(|| panic!("{unit} has no {endpoint} relation: {v}"))
    }
}
