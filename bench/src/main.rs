//! Benchmarks (issue 8): per-hook cost beside an ops floor charm, convergence time beside the
//! same membership changes done directly (harness + admin layer, no Juju), client
//! provisioning at growing client counts, and client tenancy at scale (taking back a removed
//! client's znodes, the one-time repair sweep). Prints a table, writes JSON, exits 0 unless something
//! broke. Run through `cargo xtask bench [quick]`, which builds what it needs and sets:
//! `JUJUSIM_BIN`, `ZK_CHARM_PACKED`, `ZK_TEST_PYTHON` (a Python with kazoo and ops).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zookeeper_charm::harness::{EnsembleOptions, TestEnsemble};
use zookeeper_charm::quorum::member::Role;
use zookeeper_charm::zk::{ManagerOptions, ZooKeeperManager};

type Res<T> = Result<T, String>;

fn env_path(var: &str) -> Res<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{var} is not set: run this through `cargo xtask bench`"))
}

/// A jujusim model (simkit's, destroyed on drop) with the benchmarks' error style.
struct Sim {
    kit: simkit::Sim,
    /// jujusim's --serial mode (every unit on one machine) instead of Juju's concurrency.
    serial: bool,
}

impl Sim {
    fn new(bin: &Path, serial: bool) -> Sim {
        Sim {
            kit: simkit::Sim::new(bin).serial(serial),
            serial,
        }
    }
    fn run(&self, args: &[&str]) -> Res<String> {
        self.kit.run(args)
    }
    fn json(&self, args: &[&str]) -> Res<Value> {
        self.kit.try_json(args)
    }
    fn log(&self) -> Res<Vec<Value>> {
        Ok(self.json(&["log"])?.as_array().cloned().unwrap_or_default())
    }
    fn settle(&self) -> Res<Value> {
        self.kit.try_settle(900)
    }
    fn leader(&self, app: &str) -> Res<String> {
        simkit::leader_in(&self.json(&["status"])?, app).ok_or_else(|| "no leader".to_string())
    }
    fn units(&self, app: &str) -> Res<Vec<String>> {
        Ok(simkit::units_of(&self.json(&["status"])?, app))
    }
}

#[derive(Clone, Copy, Default)]
struct Stat {
    n: usize,
    median: f64,
    max: f64,
}

fn stat(mut v: Vec<f64>) -> Stat {
    if v.is_empty() {
        return Stat::default();
    }
    v.sort_by(f64::total_cmp);
    Stat {
        n: v.len(),
        median: v[v.len() / 2],
        max: v[v.len() - 1],
    }
}

fn stat_json(s: Stat) -> Value {
    json!({"n": s.n, "median": (s.median * 100.0).round() / 100.0, "max": (s.max * 100.0).round() / 100.0})
}

/// Wall, CPU, peak RSS and hook-tool calls of the timeline entries for `hook`.
fn hook_figures(entries: &[Value], hook: &str) -> Value {
    let pick = |f: &dyn Fn(&Value) -> f64| {
        stat(
            entries
                .iter()
                .filter(|e| e["hook"] == hook)
                .map(f)
                .collect(),
        )
    };
    json!({
        "wall_ms": stat_json(pick(&|e| e["duration_ms"].as_f64().unwrap_or(0.0))),
        "cpu_ms": stat_json(pick(&|e| e["cpu_ms"].as_f64().unwrap_or(0.0))),
        "peak_rss_kib": stat_json(pick(&|e| e["max_rss_kib"].as_f64().unwrap_or(0.0))),
        "tool_calls": stat_json(pick(&|e| e["tool_calls"].as_array().map(Vec::len).unwrap_or(0) as f64)),
    })
}

/// Deploys `charm` as `app` with 3 units, then measures converged update-status hooks (ticks) and
/// cluster-relation-changed hooks (a peer write through `exec`, as `juju exec` would).
fn per_hook(bin: &Path, charm: &Path, app: &str, ticks: usize, pokes: usize) -> Res<Value> {
    // One hook at a time (--serial): the cost of a hook, not of three hooks sharing two cores
    // (under concurrency both charms' wall times include waiting for each other's CPU).
    let m = Sim::new(bin, true);
    m.run(&["deploy", &charm.to_string_lossy(), app, "-n", "3"])?;
    m.settle()?;
    let start = m.log()?.len();
    m.run(&["tick", "-n", &ticks.to_string()])?;
    let writer = format!("{app}/1");
    let rel = m
        .run(&["exec", &writer, "--", "relation-ids", "cluster"])?
        .trim()
        .to_string();
    for k in 0..pokes {
        m.run(&[
            "exec",
            &writer,
            "--",
            "relation-set",
            "-r",
            &rel,
            &format!("bench-poke={k}"),
        ])?;
    }
    let entries: Vec<Value> = m.log()?.into_iter().skip(start).collect();
    Ok(json!({
        "update-status": hook_figures(&entries, "update-status"),
        "cluster-relation-changed": hook_figures(&entries, "cluster-relation-changed"),
    }))
}

/// The ops floor charm, with a dispatch that runs the given Python.
fn floor_charm(python: &Path) -> Res<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("floor-charm");
    let dir = std::env::temp_dir().join(format!("zk-bench-floor-charm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    for f in ["metadata.yaml", "src/charm.py"] {
        std::fs::copy(src.join(f), dir.join(f)).map_err(|e| format!("{f}: {e}"))?;
    }
    let dispatch = dir.join("dispatch");
    std::fs::write(
        &dispatch,
        format!("#!/bin/sh\nexec {} ./src/charm.py\n", python.display()),
    )
    .map_err(|e| e.to_string())?;
    std::fs::set_permissions(&dispatch, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(dir)
}

fn count_logged(entries: &[Value], needle: &str) -> usize {
    entries
        .iter()
        .flat_map(|e| e["tool_calls"].as_array().cloned().unwrap_or_default())
        .filter(|c| {
            c["argv"][0] == "juju-log"
                && c["argv"]
                    .as_array()
                    .and_then(|a| a.last())
                    .and_then(Value::as_str)
                    .is_some_and(|m| m.contains(needle))
        })
        .count()
}

/// One charm scenario: command(s), then settle; wall time to settled, hooks, deferrals, ticks.
fn scenario(m: &Sim, name: &str, cmds: &[Vec<String>]) -> Res<Value> {
    let start = m.log().map(|l| l.len()).unwrap_or(0);
    let t = Instant::now();
    for c in cmds {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        m.run(&args)?;
    }
    let settled = m.settle()?;
    let wall = t.elapsed().as_secs_f64();
    let entries: Vec<Value> = m.log()?.into_iter().skip(start).collect();
    // The sum of hook time, and the most hooks that ran at once.
    let hook_ms: u64 = entries
        .iter()
        .filter_map(|e| e["duration_ms"].as_u64())
        .sum();
    let mut edges: Vec<(u64, i32)> = entries
        .iter()
        .flat_map(|e| {
            [
                (e["start_ms"].as_u64().unwrap_or(0), 1),
                (e["end_ms"].as_u64().unwrap_or(0), -1),
            ]
        })
        .collect();
    edges.sort();
    let (mut now, mut overlap) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        overlap = overlap.max(now);
    }
    Ok(json!({
        "scenario": name,
        "mode": if m.serial { "serial" } else { "concurrent" },
        "seconds": (wall * 100.0).round() / 100.0,
        "hook_seconds": (hook_ms as f64 / 10.0).round() / 100.0,
        "max_overlap": overlap,
        "hooks": entries.len(),
        "deferrals": count_logged(&entries, "deferring"),
        "update_status_ticks": settled["ticks"],
    }))
}

fn convergence_charm(bin: &Path, charm: &Path, full: bool, serial: bool) -> Res<Vec<Value>> {
    let c = charm.to_string_lossy().to_string();
    let m = Sim::new(bin, serial);
    let mut rows = vec![scenario(
        &m,
        "deploy -n 3",
        &[vec![
            "deploy".into(),
            c.clone(),
            "zookeeper".into(),
            "-n".into(),
            "3".into(),
        ]],
    )?];
    if !full {
        return Ok(rows);
    }
    rows.push(scenario(
        &m,
        "add-unit 3 -> 5",
        &[vec![
            "add-unit".into(),
            "zookeeper".into(),
            "-n".into(),
            "2".into(),
        ]],
    )?);
    // Remove the quorum leader and one more unit (the Juju leader when it is another unit).
    let units = m.units("zookeeper")?;
    let status = m.run(&[
        "run",
        "zookeeper/leader",
        "get-quorum-status",
        "--format",
        "json",
    ])?;
    let v: Value = serde_json::from_str(&status).map_err(|e| e.to_string())?;
    let report = v
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or_default();
    let leader_server = report["results"]["leader"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("server.")
        .to_string();
    let ql = leader_server.parse::<u32>().ok().and_then(|s| {
        units
            .iter()
            .find(|u| u.ends_with(&format!("/{}", s - 1)))
            .cloned()
    });
    let jl = m.leader("zookeeper")?;
    let mut leaving: Vec<String> = ql.into_iter().collect();
    for u in std::iter::once(jl).chain(units.iter().cloned()) {
        if leaving.len() < 2 && !leaving.contains(&u) {
            leaving.push(u);
        }
    }
    let mut cmd = vec!["remove-unit".to_string()];
    cmd.extend(leaving);
    rows.push(scenario(&m, "remove-unit 5 -> 3", &[cmd])?);
    let m5 = Sim::new(bin, serial);
    rows.push(scenario(
        &m5,
        "deploy -n 5",
        &[vec![
            "deploy".into(),
            c,
            "zookeeper".into(),
            "-n".into(),
            "5".into(),
        ]],
    )?);
    Ok(rows)
}

/// The floor: the same membership changes with the harness and the admin layer, no Juju.
async fn floor_grow(ens: &mut TestEnsemble, from: u32, to: u32) -> Res<()> {
    for id in from + 1..=to {
        let members: Vec<u32> = (1..=id).collect();
        ens.start_joiner(id, &members).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ens.peer_state(id).await.ends_with("- broadcast") {
            if Instant::now() > deadline {
                return Err(format!("server {id} never synced"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let hosts = ens.hosts(&ens.ids());
        let mut mgr = ZooKeeperManager::new(hosts, ens.super_auth(), ManagerOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        mgr.add_members(&[ens.server_spec(id, Role::Participant)])
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn convergence_floor(full: bool) -> Res<BTreeMap<String, f64>> {
    let opts = EnsembleOptions {
        tick_ms: 2000,
        ..EnsembleOptions::default()
    };
    let mut out = BTreeMap::new();
    let t = Instant::now();
    let mut ens = TestEnsemble::start(1, opts.clone())
        .await
        .map_err(|e| e.to_string())?;
    floor_grow(&mut ens, 1, 3).await?;
    out.insert("deploy -n 3".to_string(), t.elapsed().as_secs_f64());
    if !full {
        return Ok(out);
    }
    let t = Instant::now();
    floor_grow(&mut ens, 3, 5).await?;
    out.insert("add-unit 3 -> 5".to_string(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    let ids = ens.ids();
    let leader = ens.leader(&ids).await.ok_or("no leader")?;
    let other = ids.iter().copied().find(|i| *i != leader).unwrap_or(1);
    let mut mgr =
        ZooKeeperManager::new(ens.hosts(&ids), ens.super_auth(), ManagerOptions::default())
            .await
            .map_err(|e| e.to_string())?;
    mgr.remove_members(&[leader, other])
        .await
        .map_err(|e| e.to_string())?;
    ens.stop(leader).await.map_err(|e| e.to_string())?;
    ens.stop(other).await.map_err(|e| e.to_string())?;
    let rest: Vec<u32> = ids
        .iter()
        .copied()
        .filter(|i| *i != leader && *i != other)
        .collect();
    ens.wait_quorum(&rest, Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    out.insert("remove-unit 5 -> 3".to_string(), t.elapsed().as_secs_f64());
    drop(ens);
    let t = Instant::now();
    let mut ens = TestEnsemble::start(1, opts)
        .await
        .map_err(|e| e.to_string())?;
    floor_grow(&mut ens, 1, 5).await?;
    out.insert("deploy -n 5".to_string(), t.elapsed().as_secs_f64());
    Ok(out)
}

/// `n` stub clients integrated at once; time until all are answered, restarts, leader hook cost.
fn clients(bin: &Path, charm: &Path, python: &Path, n: usize) -> Res<Value> {
    let m = Sim::new(bin, false);
    m.run(&["deploy", &charm.to_string_lossy(), "zookeeper", "-n", "3"])?;
    m.settle()?;
    let leader = m.leader("zookeeper")?;
    let start = m.log()?.len();
    let t = Instant::now();
    for i in 0..n {
        let app = format!("c{i:03}");
        m.run(&[
            "--no-wait",
            "deploy-stub",
            &app,
            "--requires",
            "zookeeper:zookeeper",
        ])?;
        m.run(&["--no-wait", "integrate", &app, "zookeeper"])?;
        m.run(&[
            "--no-wait",
            "set-data",
            &app,
            "zookeeper",
            &format!("database=/{app}"),
        ])?;
    }
    let requested = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let settled = m.settle()?;
    let answered = t.elapsed().as_secs_f64();
    let entries: Vec<Value> = m.log()?.into_iter().skip(start).collect();
    let restarts: BTreeMap<String, usize> = entries
        .iter()
        .filter(|e| {
            e["tool_calls"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["argv"][0] == "juju-log"
                        && c["argv"]
                            .as_array()
                            .and_then(|a| a.last())
                            .and_then(Value::as_str)
                            .is_some_and(|s| s.contains("rolling restart: restarting server"))
                })
            })
        })
        .fold(BTreeMap::new(), |mut acc, e| {
            *acc.entry(e["unit"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
            acc
        });
    let leader_hooks: Vec<&Value> = entries
        .iter()
        .filter(|e| e["unit"] == leader.as_str() && e["hook"].is_string())
        .collect();
    let calls = stat(
        leader_hooks
            .iter()
            .map(|e| e["tool_calls"].as_array().map(Vec::len).unwrap_or(0) as f64)
            .collect(),
    );
    let wall = stat(
        leader_hooks
            .iter()
            .map(|e| e["duration_ms"].as_f64().unwrap_or(0.0))
            .collect(),
    );
    // Every client logs in with what it was given (one kazoo process checks them all).
    let mut creds = Vec::new();
    for i in 0..n {
        let d = m.json(&["show-data", &format!("c{i:03}"), "zookeeper"])?;
        let bag = &d["zookeeper"]["application-data"];
        creds.push(json!([
            bag["endpoints"],
            bag["database"],
            bag["username"],
            bag["password"]
        ]));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/zkclient.py");
    let out = Command::new(python)
        .arg(script)
        .arg(json!({"check_many": creds}).to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let check: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("check_many: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok(json!({
        "clients": n,
        "requests_seconds": (requested * 100.0).round() / 100.0,
        "answered_seconds": (answered * 100.0).round() / 100.0,
        "update_status_ticks": settled["ticks"],
        "rolling_restarts_per_unit": restarts,
        "rolling_restart_rounds": restarts.values().copied().max().unwrap_or(0),
        "leader_hooks": leader_hooks.len(),
        "leader_tool_calls": stat_json(calls),
        "leader_hook_wall_ms": stat_json(wall),
        "working_credentials": check["ok"],
    }))
}

/// Client tenancy at scale: a client holding `nodes` znodes (children it created with its
/// creator ACL) leaves, and the leader takes back every one of them in one hook; then the
/// one-time repair sweep walks the same tree. Figures: the leader's hook, per znode.
fn tenancy(bin: &Path, charm: &Path, python: &Path, nodes: usize) -> Res<Value> {
    let m = Sim::new(bin, false);
    m.run(&["deploy", &charm.to_string_lossy(), "zookeeper", "-n", "3"])?;
    m.settle()?;
    m.run(&["deploy-stub", "app", "--requires", "zookeeper:zookeeper"])?;
    m.run(&["integrate", "app", "zookeeper"])?;
    m.run(&["set-data", "app", "zookeeper", "database=/bench"])?;
    m.settle()?;
    let d = m.json(&["show-data", "app", "zookeeper"])?;
    let bag = &d["zookeeper"]["application-data"];
    let spec = json!({
        "hosts": bag["endpoints"],
        "auth": {"sasl": [bag["username"], bag["password"]]},
        "timeout": 30,
        "ops": [["write_seq", "/bench", nodes]],
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/zkclient.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(spec.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let wrote: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    if wrote["results"][0]["ok"] != json!(nodes) {
        return Err(format!("writing {nodes} znodes: {wrote}"));
    }
    let leader = m.leader("zookeeper")?;
    // The leader logs how long each walk took (its hooks also restart its server in the same
    // roll, which is not the walk's cost).
    let logged_ms = |entries: &[Value], prefix: &str| -> Option<f64> {
        entries
            .iter()
            .filter(|e| e["unit"] == leader.as_str())
            .flat_map(|e| e["tool_calls"].as_array().cloned().unwrap_or_default())
            .filter(|c| c["argv"][0] == "juju-log")
            .filter_map(|c| {
                let msg = c["argv"].as_array()?.last()?.as_str()?.to_string();
                let rest = msg.split_once(prefix)?.1;
                let ms = rest.split(" in ").nth(1)?.split(" ms").next()?;
                ms.trim().parse::<f64>().ok()
            })
            .next_back()
    };
    let hook_ms = |entries: &[Value], hook: &str| {
        entries
            .iter()
            .filter(|e| e["unit"] == leader.as_str() && e["hook"] == hook)
            .filter_map(|e| e["duration_ms"].as_f64())
            .fold(0.0, f64::max)
    };
    let start = m.log()?.len();
    let t = Instant::now();
    m.run(&["remove-relation", "app", "zookeeper"])?;
    m.settle()?;
    let removal = t.elapsed().as_secs_f64();
    let entries: Vec<Value> = m.log()?.into_iter().skip(start).collect();
    let revoke_ms = logged_ms(&entries, "took /bench back:").ok_or("no revocation logged")?;
    let broken_hook_ms = hook_ms(&entries, "zookeeper-relation-broken");

    // The repair sweep over the same tree (the record cleared by hand, as after an upgrade).
    let show = m.json(&["show-unit", &leader])?;
    let cluster = show[&leader]["relation-info"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["endpoint"] == "cluster"))
        .map(|r| r["relation-id"].to_string())
        .ok_or("no cluster relation")?;
    m.run(&[
        "exec",
        &leader,
        "--",
        "relation-set",
        "--app",
        "-r",
        &format!("cluster:{cluster}"),
        "client-znodes=",
    ])?;
    let start = m.log()?.len();
    m.run(&["tick"])?;
    m.settle()?;
    let entries: Vec<Value> = m.log()?.into_iter().skip(start).collect();
    let sweep_ms = logged_ms(&entries, "client tenancy repair done").ok_or("no sweep logged")?;
    let sweep_hook_ms = hook_ms(&entries, "update-status");
    let per = |ms: f64| (ms / nodes as f64 * 1000.0).round() / 1000.0;
    Ok(json!({
        "znodes": nodes,
        "removal_seconds": (removal * 100.0).round() / 100.0,
        "revoke_ms": revoke_ms.round(),
        "revoke_ms_per_znode": per(revoke_ms),
        "broken_hook_ms": broken_hook_ms.round(),
        "sweep_ms": sweep_ms.round(),
        "sweep_ms_per_znode": per(sweep_ms),
        "sweep_hook_ms": sweep_hook_ms.round(),
    }))
}

/// Data integrity's cost (issue 12): how long a restarted follower takes to serve again when
/// the ensemble holds `mb` MB, syncing by DIFF (ZooKeeper's default) or always by a full
/// snapshot (`zookeeper.forceSnapshotSync`, what the charm runs on ZooKeeper 3.8.0).
async fn rejoin(mb: usize, force_snapshot: bool) -> Res<Value> {
    // The charm's default timing (tickTime 2000 ms, initLimit 5: 10 s to sync); a heap that
    // holds the tree (the local substrate's 256 MiB is for tests, not 100 MB of data).
    let mut opts = EnsembleOptions {
        heap: "768m".into(),
        tick_ms: 2000,
        init_limit: 5,
        sync_limit: 2,
        ..EnsembleOptions::default()
    };
    if force_snapshot {
        opts.extra_jvm_flags
            .push("-Dzookeeper.forceSnapshotSync=true".into());
    }
    let mut ens = TestEnsemble::start(3, opts)
        .await
        .map_err(|e| e.to_string())?;
    let ids = ens.ids();
    let leader = ens.leader(&ids).await.ok_or("no leader")?;
    let creds = ens.super_auth();
    let client = zookeeper_charm::zk::ZooKeeperClient::connect(
        &ens.host(leader),
        &creds,
        &zookeeper_charm::zk::ConnectOptions {
            op_timeout: Duration::from_secs(30),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let acl = [zookeeper_charm::zk::acl::AclEntry::sasl(
        "super",
        zookeeper_charm::zk::acl::Perms::ALL,
    )];
    let chunk = vec![b'x'; 512 * 1024];
    let t = Instant::now();
    for i in 0..mb * 2 {
        client
            .create_znode_with(&format!("/bench-data/n{i:05}"), &chunk, &acl, &acl)
            .await
            .map_err(|e| e.to_string())?;
    }
    let wrote = t.elapsed().as_secs_f64();
    let leader = ens.leader(&ids).await.ok_or("no leader")?;
    let follower = *ids.iter().find(|i| **i != leader).ok_or("no follower")?;
    ens.stop(follower).await.map_err(|e| e.to_string())?;
    // A few transactions while it is down: it has to catch up on them.
    for i in 0..10 {
        client
            .create_znode_with(&format!("/bench-data/late{i}"), b"x", &acl, &acl)
            .await
            .map_err(|e| e.to_string())?;
    }
    let lines_before = ens.log_tail(follower, usize::MAX).lines().count();
    let t = Instant::now();
    ens.restart(follower).map_err(|e| e.to_string())?;
    loop {
        if ens.peer_state(follower).await.ends_with("- broadcast") {
            break;
        }
        if t.elapsed() > Duration::from_secs(300) {
            return Err("the restarted follower did not serve within 300 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rejoin = t.elapsed().as_secs_f64();
    // Only what the restarted server logged (not its first start).
    let log = ens.log_tail(follower, usize::MAX);
    let sync: String = log
        .lines()
        .skip(lines_before)
        .collect::<Vec<_>>()
        .join("\n");
    let snaps = sync.matches("Getting a snapshot from leader").count();
    let diffs = sync.matches("Getting a diff from the leader").count();
    let how = match (snaps, diffs) {
        (1, 0) => "snapshot".to_string(),
        (0, 1) => "diff".to_string(),
        (s, d) => format!("{s} snapshot(s), {d} diff(s)"),
    };
    if ens.leader(&ids).await != Some(leader) {
        return Err("the leader changed during the measurement".into());
    }
    Ok(json!({
        "data_mb": mb,
        "sync": if force_snapshot { "forced snapshot" } else { "default (diff)" },
        "observed_sync": how,
        "write_seconds": (wrote * 100.0).round() / 100.0,
        "rejoin_seconds": (rejoin * 100.0).round() / 100.0,
    }))
}

fn machine() -> Value {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal"))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
    });
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    json!({"cores": cores, "memory_gib": mem.and_then(|k| k.parse::<f64>().ok()).map(|k| (k / 1048576.0 * 10.0).round() / 10.0), "cpu": cpu})
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 100.0).round() / 100.0
    } else {
        0.0
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let full = mode != "quick";
    let result = if mode == "tenancy" {
        run_tenancy()
    } else if mode == "hooks" {
        run_hooks()
    } else if mode == "convergence" {
        run_convergence()
    } else if mode == "juju" {
        run_juju()
    } else if mode == "tls" {
        run_tls()
    } else if mode == "upgrade" {
        run_upgrade()
    } else {
        run(full)
    };
    match result {
        Ok(report) => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("report-{mode}.json"));
            let _ = std::fs::write(
                &path,
                serde_json::to_string_pretty(&report).unwrap_or_default(),
            );
            print_table(&report);
            println!("\nJSON: {}", path.display());
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

/// The tenancy figures and their targets.
fn tenancy_rows(
    bin: &Path,
    charm: &Path,
    python: &Path,
    full: bool,
    targets: &mut Vec<Value>,
) -> Res<Vec<Value>> {
    let sizes: &[usize] = if full { &[100, 2000] } else { &[100] };
    let mut rows = Vec::new();
    for n in sizes {
        eprintln!("==> client tenancy: a client with {n} znodes leaves; the repair sweep");
        let row = tenancy(bin, charm, python, *n)?;
        if *n >= 1000 {
            let per = row["revoke_ms_per_znode"].as_f64().unwrap_or(99.0);
            targets.push(json!({"target": format!("taking back a removed client's {n} znodes: at most 1 ms per znode in the leader's hook"), "met": per <= 1.0, "value": per}));
            let per = row["sweep_ms_per_znode"].as_f64().unwrap_or(99.0);
            targets.push(json!({"target": format!("repair sweep over {n} znodes: at most 1 ms per znode, once"), "met": per <= 1.0, "value": per}));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Convergence of the charm under jujusim, concurrent (as Juju runs units) and serial (every
/// unit on one machine), beside the floor (the same ZooKeeper work without Juju).
fn convergence_rows(
    bin: &Path,
    charm: &Path,
    full: bool,
    rt: &tokio::runtime::Runtime,
    targets: &mut Vec<Value>,
) -> Res<Vec<Value>> {
    eprintln!("==> convergence: the charm under jujusim (concurrent, as Juju runs units)");
    let mut conv = convergence_charm(bin, charm, full, false)?;
    eprintln!("==> convergence: the charm under jujusim --serial (every unit on one machine)");
    conv.extend(convergence_charm(bin, charm, full, true)?);
    eprintln!("==> convergence: the floor (harness + admin layer, no Juju)");
    let floor = rt.block_on(convergence_floor(full))?;
    let mut conv_rows = Vec::new();
    for row in conv {
        let name = row["scenario"].as_str().unwrap_or("").to_string();
        let f = floor.get(&name).copied().unwrap_or(0.0);
        let secs = row["seconds"].as_f64().unwrap_or(0.0);
        let r = ratio(secs, f);
        if row["mode"] == "concurrent" {
            targets.push(json!({"target": format!("{name}: within 1.5x of the floor (concurrent)"), "met": r > 0.0 && r <= 1.5, "value": r}));
            targets.push(json!({"target": format!("{name}: 0 update-status ticks"), "met": row["update_status_ticks"] == json!(0), "value": row["update_status_ticks"]}));
        }
        let mut row = row;
        row["floor_seconds"] = json!((f * 100.0).round() / 100.0);
        row["ratio"] = json!(r);
        conv_rows.push(row);
    }

    Ok(conv_rows)
}

/// `bench convergence`: only the convergence figures (all scenarios).
fn run_convergence() -> Res<Value> {
    let bin = env_path("JUJUSIM_BIN")?;
    let charm = env_path("ZK_CHARM_PACKED")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    let rows = convergence_rows(&bin, &charm, true, &rt, &mut targets)?;
    Ok(json!({
        "mode": "convergence",
        "machine": machine(),
        "note": "absolute times vary between runs and machines",
        "convergence": rows,
        "targets": targets,
    }))
}

/// `bench tenancy`: only the tenancy figures (full sizes).
fn run_tenancy() -> Res<Value> {
    let bin = env_path("JUJUSIM_BIN")?;
    let charm = env_path("ZK_CHARM_PACKED")?;
    let python = env_path("ZK_TEST_PYTHON")?;
    let mut targets = Vec::new();
    let rows = tenancy_rows(&bin, &charm, &python, true, &mut targets)?;
    Ok(json!({
        "mode": "tenancy",
        "machine": machine(),
        "note": "absolute times vary between runs and machines",
        "tenancy": rows,
        "targets": targets,
    }))
}

fn run_juju() -> Res<Value> {
    let bin = env_path("JUJUSIM_BIN")?;
    let charm = env_path("ZK_CHARM_PACKED")?;
    let mut targets = Vec::new();
    let row = juju_front_end(&bin, &charm, &mut targets)?;
    Ok(json!({
        "mode": "juju",
        "machine": machine(),
        "note": "absolute times vary between runs and machines",
        "juju": row,
        "targets": targets,
    }))
}

fn run_upgrade() -> Res<Value> {
    let bin = env_path("JUJUSIM_BIN")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    let row = upgrade_row(&bin, &rt, &mut targets)?;
    Ok(json!({
        "mode": "upgrade",
        "machine": machine(),
        "note": "absolute times vary between runs and machines",
        "upgrade": row,
        "targets": targets,
    }))
}

/// The charm's upgrade may take this much longer per unit than a plain restart of that server
/// (each unit also waits for the leader's grant and announces its build).
const UPGRADE_RATIO: f64 = 3.0;

/// In-place upgrade (issue 18): `refresh` of 3 units from charm A (ZooKeeper 3.8.0-11+deb12u1)
/// to B (deb12u2) under jujusim until every server serves B's build, per unit, against the
/// floor: a plain restart of each server by hand (the harness), each waiting for the quorum.
fn upgrade_row(bin: &Path, rt: &tokio::runtime::Runtime, targets: &mut Vec<Value>) -> Res<Value> {
    let a = env_path("ZK_CHARM_A")?;
    let b = env_path("ZK_CHARM_B")?;
    let fallback = std::env::var("ZK_UPGRADE_FALLBACK").unwrap_or_default();
    let n = 3u32;
    eprintln!("==> upgrade floor: a plain restart of each of {n} servers by hand");
    let floor = rt.block_on(async {
        let mut e = TestEnsemble::start(n, EnsembleOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let ids = e.ids();
        let leader = e.leader(&ids).await.unwrap_or(ids[0]);
        let mut order: Vec<u32> = ids.iter().copied().filter(|i| *i != leader).collect();
        order.push(leader);
        let t = Instant::now();
        for id in order {
            e.stop(id).await.map_err(|e| e.to_string())?;
            e.restart(id).map_err(|e| e.to_string())?;
            e.wait_quorum(&ids, Duration::from_secs(120))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<f64, String>(t.elapsed().as_secs_f64() / n as f64)
    })?;
    eprintln!("==> upgrade: the charm on {n} units under jujusim, refresh A -> B");
    let m = Sim::new(bin, false);
    m.run(&[
        "deploy",
        &a.to_string_lossy(),
        "zookeeper",
        "-n",
        &n.to_string(),
    ])?;
    m.settle()?;
    let before = count_logged(&m.log()?, "rolling restart: restarting server.");
    let t = Instant::now();
    m.run(&["refresh", "zookeeper", "--path", &b.to_string_lossy()])?;
    m.settle()?;
    let secs = t.elapsed().as_secs_f64();
    let restarts = count_logged(&m.log()?, "rolling restart: restarting server.") - before;
    let mut on_b = 0;
    for u in m.units("zookeeper")? {
        let addr = m.kit.address(&u);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("echo srvr | nc -q1 {addr} 2181"))
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&out.stdout).contains("built on 2024-12-29") {
            on_b += 1;
        }
    }
    let per_unit = secs / n as f64;
    let r = ratio(per_unit, floor);
    if fallback.is_empty() {
        targets.push(json!({"target": format!("upgrade of {n} units: one restart per unit, every server on the new build"), "met": restarts == n as usize && on_b == n, "value": [restarts, on_b]}));
        targets.push(json!({"target": format!("upgrade per unit within {UPGRADE_RATIO}x of a plain restart of that server"), "met": r > 0.0 && r <= UPGRADE_RATIO, "value": r}));
    } else {
        eprintln!("==> WARNING: no workload change to upgrade to ({fallback}): upgrade targets not judged");
    }
    Ok(json!({
        "units": n,
        "floor_restart_per_server_s": (floor * 100.0).round() / 100.0,
        "charm_upgrade_per_unit_s": (per_unit * 100.0).round() / 100.0,
        "charm_upgrade_total_s": (secs * 10.0).round() / 10.0,
        "restarts": restarts,
        "servers_on_new_build": on_b,
        "fallback": fallback,
        "ratio": r,
    }))
}

fn run_tls() -> Res<Value> {
    let bin = env_path("JUJUSIM_BIN")?;
    let charm = env_path("ZK_CHARM_PACKED")?;
    let python = env_path("ZK_TEST_PYTHON")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    let rows = tls_rows(&bin, &charm, &python, true, &rt, &mut targets)?;
    Ok(json!({
        "mode": "tls",
        "machine": machine(),
        "note": "absolute times vary between runs and machines",
        "tls": rows,
        "targets": targets,
    }))
}

/// The charm's TLS switch under jujusim on `n` units (issue 17): integrate with the test
/// provider charm (ops + charmlibs-interfaces-tls-certificates) and settle until every server
/// serves TLS only (certificates issued, three rolling restarts), then remove the relation and
/// settle back to plaintext. Seconds and rolling restarts each way.
fn tls_charm(bin: &Path, charm: &Path, python: &Path, n: u32) -> Res<Value> {
    let provider_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/charms/tls-provider");
    let provider = simkit::python_charm(&provider_src, python).map_err(|e| e.to_string())?;
    let m = Sim::new(bin, false);
    let c = charm.to_string_lossy().to_string();
    m.run(&["deploy", &c, "zookeeper", "-n", &n.to_string()])?;
    m.settle()?;
    m.run(&["deploy", &provider.path().to_string_lossy(), "tls-provider"])?;
    let restarts = |m: &Sim| -> Res<usize> {
        Ok(count_logged(
            &m.log()?,
            "rolling restart: restarting server.",
        ))
    };
    let serves = |m: &Sim, tls: bool| -> Res<bool> {
        for u in m.units("zookeeper")? {
            let cfg = std::fs::read_to_string(m.kit.workload_dir(&u).join("conf/zoo.cfg"))
                .map_err(|e| format!("{u}'s zoo.cfg: {e}"))?;
            if cfg.contains("sslQuorum=true") != tls || cfg.contains("portUnification") {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let before = restarts(&m)?;
    let t = Instant::now();
    m.run(&["integrate", "zookeeper", "tls-provider"])?;
    m.settle()?;
    let enable = t.elapsed().as_secs_f64();
    if !serves(&m, true)? {
        return Err(format!(
            "{n} units: not every server serves TLS after settling"
        ));
    }
    let on = restarts(&m)? - before;
    let t = Instant::now();
    m.run(&["remove-relation", "zookeeper", "tls-provider"])?;
    m.settle()?;
    let disable = t.elapsed().as_secs_f64();
    if !serves(&m, false)? {
        return Err(format!(
            "{n} units: not every server plaintext after settling"
        ));
    }
    let off = restarts(&m)? - before - on;
    Ok(json!({
        "enable_s": (enable * 10.0).round() / 10.0,
        "disable_s": (disable * 10.0).round() / 10.0,
        "restarts_on": on,
        "restarts_off": off,
    }))
}

/// The TLS rows: the floor (the same three steps by hand with the harness) beside the charm's
/// switch, with their targets.
fn tls_rows(
    bin: &Path,
    charm: &Path,
    python: &Path,
    full: bool,
    rt: &tokio::runtime::Runtime,
    targets: &mut Vec<Value>,
) -> Res<Vec<Value>> {
    let mut rows = rt.block_on(tls_floor_rows(full))?;
    if !full {
        // The quick run proves the floor still runs; the charm's switch takes minutes.
        return Ok(rows);
    }
    for row in &mut rows {
        let n = row["servers"].as_u64().unwrap_or(3) as u32;
        eprintln!("==> TLS switch: the charm on {n} units under jujusim (on, then off)");
        let c = tls_charm(bin, charm, python, n)?;
        let floor = row["floor_enable_s"].as_f64().unwrap_or(0.0);
        let secs = c["enable_s"].as_f64().unwrap_or(0.0);
        let r = ratio(secs, floor);
        targets.push(json!({"target": format!("TLS on {n} units: one rolling restart per unit per step each way ({} restarts)", 3 * n), "met": c["restarts_on"] == json!(3 * n) && c["restarts_off"] == json!(3 * n), "value": [c["restarts_on"].clone(), c["restarts_off"].clone()]}));
        targets.push(json!({"target": format!("TLS on {n} units: within {TLS_RATIO}x of the floor, certificates included"), "met": r > 0.0 && r <= TLS_RATIO, "value": r}));
        row["charm_enable_s"] = c["enable_s"].clone();
        row["charm_disable_s"] = c["disable_s"].clone();
        row["charm_restarts_on"] = c["restarts_on"].clone();
        row["charm_restarts_off"] = c["restarts_off"].clone();
        row["ratio"] = json!(r);
    }
    Ok(rows)
}

/// The charm's switch may take this much longer than the floor: it also obtains the
/// certificates (the provider's Python hooks) and each step waits for the evidence of the last.
const TLS_RATIO: f64 = 2.0;

/// The floor of the TLS switch (issue 17): the same three steps the charm takes
/// (portUnification, sslQuorum, unification off), done by hand with the harness on n servers
/// with the charm's own material, each restart gated on the quorum answering again.
async fn tls_floor_rows(full: bool) -> Res<Vec<Value>> {
    use zookeeper_charm::tls::serve::Serving;
    let sizes: &[u32] = if full { &[3, 5] } else { &[3] };
    let mut rows = Vec::new();
    for &n in sizes {
        eprintln!("==> TLS switch floor: the three steps by hand on {n} servers");
        let mut e = TestEnsemble::start(
            n,
            EnsembleOptions {
                tls: true,
                ..EnsembleOptions::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let lab = e.charm_tls_material().map_err(|e| e.to_string())?;
        let t = Instant::now();
        let mut restarts = 0;
        for step in [Serving::Unified, Serving::UnifiedQuorum, Serving::Tls] {
            restarts += e
                .roll_tls_step(&lab, step)
                .await
                .map_err(|e| e.to_string())?;
        }
        let on = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for step in [Serving::UnifiedQuorum, Serving::Unified, Serving::Plain] {
            restarts += e
                .roll_tls_step(&lab, step)
                .await
                .map_err(|e| e.to_string())?;
        }
        rows.push(json!({
            "servers": n,
            "floor_enable_s": (on * 10.0).round() / 10.0,
            "floor_disable_s": (t.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "rolling_restarts_each_way": restarts / 2,
        }));
    }
    Ok(rows)
}

fn median_max_ms(v: &mut [f64]) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    let r = |x: f64| (x * 10.0).round() / 10.0;
    json!({"n": v.len(), "median": r(v.get(v.len() / 2).copied().unwrap_or(0.0)), "max": r(v.last().copied().unwrap_or(0.0))})
}

/// jujusim's `juju` front end as jubilant uses it: `deploy -n 3` returns once recorded, the
/// model's agent runs the hooks while `status --format json` is polled (as `wait` does) until
/// all three units are active in quorum; then `run` round trips of a quick action, and
/// `destroy-model`, after which no process of the model runs.
fn juju_front_end(bin: &Path, charm: &Path, targets: &mut Vec<Value>) -> Res<Value> {
    eprintln!("==> juju front end: deploy 3, poll status to active, run, destroy-model");
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let juju = tmp.path().join("juju");
    std::os::unix::fs::symlink(bin, &juju).map_err(|e| e.to_string())?;
    let root = tmp.path().join("root");
    let call = |args: &[&str]| -> Res<(f64, std::process::Output)> {
        let t = Instant::now();
        let o = Command::new(&juju)
            .args(args)
            .env("JUJUSIM_ROOT", &root)
            .output()
            .map_err(|e| e.to_string())?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !o.status.success() {
            return Err(format!(
                "juju {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok((ms, o))
    };
    /// Destroys the model also when a step fails (nothing left running).
    struct Destroy(PathBuf, PathBuf);
    impl Drop for Destroy {
        fn drop(&mut self) {
            let _ = Command::new(&self.0)
                .args(["destroy-model", "--no-prompt", "bench"])
                .env("JUJUSIM_ROOT", &self.1)
                .output();
        }
    }
    call(&["add-model", "bench"])?;
    let _guard = Destroy(juju.clone(), root.clone());
    let charm_s = charm.to_string_lossy().into_owned();
    let t0 = Instant::now();
    let (deploy_ms, _) = call(&[
        "deploy",
        "--model",
        "bench",
        &charm_s,
        "zookeeper",
        "-n",
        "3",
    ])?;
    let mut status_ms = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let active_s = loop {
        let (ms, o) = call(&["status", "--model", "bench", "--format", "json"])?;
        status_ms.push(ms);
        let v: Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
        let app = &v["applications"]["zookeeper"];
        let units = app["units"].as_object().cloned().unwrap_or_default();
        let ready = units.len() == 3
            && app["application-status"]["message"] == "3/3 members in quorum"
            && units.values().all(|u| {
                u["workload-status"]["current"] == "active" && u["juju-status"]["current"] == "idle"
            });
        if ready {
            break t0.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            return Err("the juju front end's model did not reach 3/3 in quorum in 300 s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut run_ms = Vec::new();
    for _ in 0..5 {
        let (ms, o) = call(&[
            "run",
            "--model",
            "bench",
            "zookeeper/leader",
            "get-super-password",
            "--format",
            "json",
        ])?;
        let v: Value = serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
        if !v
            .as_object()
            .is_some_and(|m| m.values().all(|t| t["status"] == "completed"))
        {
            return Err(format!("juju run did not complete: {v}"));
        }
        run_ms.push(ms);
    }
    let dir = root.join("models/bench");
    let agent_pid = std::fs::read_to_string(dir.join("agent.pid")).unwrap_or_default();
    let (destroy_ms, _) = call(&["destroy-model", "--no-prompt", "bench"])?;
    let needle = dir.to_string_lossy().into_owned();
    let left = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .count();
    let status = median_max_ms(&mut status_ms);
    let run = median_max_ms(&mut run_ms);
    let st_med = status["median"].as_f64().unwrap_or(f64::MAX);
    let run_med = run["median"].as_f64().unwrap_or(f64::MAX);
    targets.push(json!({"target": "juju deploy -n 3 returns once recorded (hooks run in the background): under 1 s", "met": deploy_ms < 1000.0, "value": (deploy_ms * 10.0).round() / 10.0}));
    targets.push(json!({"target": "juju status --format json (what jubilant's wait polls each second): median under 50 ms", "met": st_med < 50.0, "value": st_med}));
    targets.push(json!({"target": "juju run of a quick action, round trip: median under 500 ms", "met": run_med < 500.0, "value": run_med}));
    targets.push(json!({"target": "destroy-model leaves no process of the model (agent, hooks, ZooKeeper)", "met": left == 0 && !dir.exists(), "value": left}));
    Ok(json!({
        "deploy_ms": (deploy_ms * 10.0).round() / 10.0,
        "deploy_to_active_s": (active_s * 100.0).round() / 100.0,
        "status_ms": status,
        "run_ms": run,
        "destroy_ms": (destroy_ms * 10.0).round() / 10.0,
        "agent_pid": agent_pid.trim(),
        "processes_left": left,
    }))
}

/// Per-hook cost of the charm and of the ops floor, their ratios, and the per-hook targets.
fn hook_rows(
    bin: &Path,
    charm: &Path,
    python: &Path,
    full: bool,
    targets: &mut Vec<Value>,
) -> Res<(Value, Value, BTreeMap<String, Value>)> {
    let (ticks, pokes) = if full { (8, 10) } else { (2, 3) };
    eprintln!("==> per-hook cost: the Rust charm");
    let rust = per_hook(bin, charm, "zookeeper", ticks, pokes)?;
    eprintln!("==> per-hook cost: the ops floor charm");
    let floor_dir = floor_charm(python)?;
    let ops = per_hook(bin, &floor_dir, "floor", ticks, pokes)?;
    let _ = std::fs::remove_dir_all(&floor_dir);
    let mut ratios = BTreeMap::new();
    for hook in ["update-status", "cluster-relation-changed"] {
        let r = ratio(
            ops[hook]["wall_ms"]["median"].as_f64().unwrap_or(0.0),
            rust[hook]["wall_ms"]["median"].as_f64().unwrap_or(0.0),
        );
        let c = ratio(
            ops[hook]["cpu_ms"]["median"].as_f64().unwrap_or(0.0),
            rust[hook]["cpu_ms"]["median"].as_f64().unwrap_or(0.0),
        );
        ratios.insert(hook.to_string(), json!({"wall": r, "cpu": c}));
        targets.push(json!({"target": format!("{hook}: at least 10x faster than the ops floor (median wall)"), "met": r >= 10.0, "value": r}));
        let rss = rust[hook]["peak_rss_kib"]["max"].as_f64().unwrap_or(0.0);
        targets.push(json!({"target": format!("{hook}: peak RSS under 10 MiB"), "met": rss > 0.0 && rss < 10240.0, "value": rss}));
    }
    Ok((rust, ops, ratios))
}

/// `bench hooks`: the per-hook cost alone (a minute or two; for comparing two charm builds on
/// one machine, one right after the other).
fn run_hooks() -> Res<Value> {
    let bin = env_path("JUJUSIM_BIN")?;
    let charm = env_path("ZK_CHARM_PACKED")?;
    let python = env_path("ZK_TEST_PYTHON")?;
    let mut targets = Vec::new();
    let (rust, ops, ratios) = hook_rows(&bin, &charm, &python, true, &mut targets)?;
    Ok(json!({
        "mode": "hooks",
        "machine": machine(),
        "per_hook": {"rust": rust, "ops": ops, "ops_over_rust": ratios},
        "targets": targets,
    }))
}

fn run(full: bool) -> Res<Value> {
    let bin = env_path("JUJUSIM_BIN")?;
    let charm = env_path("ZK_CHARM_PACKED")?;
    let python = env_path("ZK_TEST_PYTHON")?;
    let mut targets = Vec::new();
    let (rust, ops, ratios) = hook_rows(&bin, &charm, &python, full, &mut targets)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let conv_rows = convergence_rows(&bin, &charm, full, &rt, &mut targets)?;

    let counts: &[usize] = if full { &[1, 10, 50, 100] } else { &[1, 3] };
    let mut client_rows = Vec::new();
    for n in counts {
        eprintln!("==> client provisioning: {n} client(s) at once");
        let row = clients(&bin, &charm, &python, *n)?;
        if *n == 50 {
            let rounds = row["rolling_restart_rounds"].as_u64().unwrap_or(99);
            targets.push(json!({"target": "50 clients in at most 2 rolling restarts", "met": rounds <= 2, "value": rounds}));
        }
        client_rows.push(row);
    }
    let tenancy_rows = tenancy_rows(&bin, &charm, &python, full, &mut targets)?;
    let juju_row = juju_front_end(&bin, &charm, &mut targets)?;
    let tls_rows = tls_rows(&bin, &charm, &python, full, &rt, &mut targets)?;
    let upgrade = if full {
        upgrade_row(&bin, &rt, &mut targets)?
    } else {
        Value::Null
    };

    let mb = if full { 100 } else { 10 };
    let mut rejoin_rows = Vec::new();
    for force in [false, true] {
        eprintln!("==> data integrity: a restarted follower rejoins a {mb} MB ensemble (forced snapshot: {force})");
        rejoin_rows.push(rt.block_on(rejoin(mb, force))?);
    }
    if let [diff, snap] = rejoin_rows.as_slice() {
        let (d, s) = (
            diff["rejoin_seconds"].as_f64().unwrap_or(0.0),
            snap["rejoin_seconds"].as_f64().unwrap_or(0.0),
        );
        targets.push(json!({"target": format!("a follower rejoins a {mb} MB ensemble by forced snapshot within 2x of DIFF sync"), "met": d > 0.0 && s <= 2.0 * d, "value": [d, s]}));
    }
    if full {
        // Linear growth: tool calls per leader hook (max) divided by the number of relations
        // must not grow from 10 to 100 clients.
        let per = |n: usize| {
            client_rows
                .iter()
                .find(|r| r["clients"] == json!(n))
                .map(|r| r["leader_tool_calls"]["max"].as_f64().unwrap_or(0.0) / n as f64)
        };
        if let (Some(a), Some(b)) = (per(10), per(100)) {
            targets.push(json!({"target": "leader per-hook cost grows at most linearly with relations (max tool calls per relation, 100 vs 10 clients)", "met": b <= a * 1.1, "value": [a, b]}));
        }
    }

    Ok(json!({
        "mode": if full { "all" } else { "quick" },
        "machine": machine(),
        "note": "absolute times vary between runs and machines; the ratios are the figures to quote",
        "per_hook": {"rust": rust, "ops": ops, "ops_over_rust": ratios},
        "convergence": conv_rows,
        "clients": client_rows,
        "tenancy": tenancy_rows,
        "juju": juju_row,
        "tls": tls_rows,
        "upgrade": upgrade,
        "rejoin": rejoin_rows,
        "targets": targets,
    }))
}

/// A JSON value as a table cell: strings unquoted, so that column widths apply.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_table(r: &Value) {
    let m = &r["machine"];
    println!(
        "\nMachine: {} cores, {} GiB, {}",
        cell(&m["cores"]),
        cell(&m["memory_gib"]),
        m["cpu"].as_str().unwrap_or("?")
    );
    println!("Note: {}\n", r["note"].as_str().unwrap_or(""));
    if !r["per_hook"].is_null() {
        print_main_tables(r);
    } else if !r["convergence"].is_null() {
        print_convergence(r);
    }
    print_tenancy_and_targets(r);
}

fn print_convergence(r: &Value) {
    println!("\nConvergence (command to settled)");
    println!(
        "{:<22} {:<10} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7} {:>10} {:>6}",
        "scenario",
        "mode",
        "charm s",
        "hooks s",
        "floor s",
        "ratio",
        "overlap",
        "hooks",
        "deferrals",
        "ticks"
    );
    for row in r["convergence"].as_array().cloned().unwrap_or_default() {
        println!(
            "{:<22} {:<10} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7} {:>10} {:>6}",
            row["scenario"].as_str().unwrap_or(""),
            row["mode"].as_str().unwrap_or(""),
            cell(&row["seconds"]),
            cell(&row["hook_seconds"]),
            cell(&row["floor_seconds"]),
            cell(&row["ratio"]),
            cell(&row["max_overlap"]),
            cell(&row["hooks"]),
            cell(&row["deferrals"]),
            cell(&row["update_status_ticks"])
        );
    }
}

fn print_main_tables(r: &Value) {
    println!("Per-hook cost (3 units; median / max over n hooks)");
    println!(
        "{:<26} {:<6} {:>5} {:>18} {:>18} {:>18} {:>12}",
        "hook", "charm", "n", "wall ms", "cpu ms", "peak RSS KiB", "tool calls"
    );
    for hook in ["update-status", "cluster-relation-changed"] {
        for charm in ["rust", "ops"] {
            let h = &r["per_hook"][charm][hook];
            let f = |k: &str| format!("{} / {}", cell(&h[k]["median"]), cell(&h[k]["max"]));
            println!(
                "{:<26} {:<6} {:>5} {:>18} {:>18} {:>18} {:>12}",
                hook,
                charm,
                cell(&h["wall_ms"]["n"]),
                f("wall_ms"),
                f("cpu_ms"),
                f("peak_rss_kib"),
                f("tool_calls")
            );
        }
        let x = &r["per_hook"]["ops_over_rust"][hook];
        println!(
            "{:<26} ops/rust: wall {}x, cpu {}x",
            "",
            cell(&x["wall"]),
            cell(&x["cpu"])
        );
    }
    print_convergence(r);
    println!("\nClient provisioning (3 units; n clients integrated at once)");
    println!(
        "{:>7} {:>10} {:>9} {:>8} {:>8} {:>22} {:>20} {:>8}",
        "clients",
        "answered s",
        "restarts",
        "ticks",
        "leader",
        "leader tool calls",
        "leader hook ms",
        "working"
    );
    for row in r["clients"].as_array().cloned().unwrap_or_default() {
        println!(
            "{:>7} {:>10} {:>9} {:>8} {:>8} {:>22} {:>20} {:>8}",
            cell(&row["clients"]),
            cell(&row["answered_seconds"]),
            cell(&row["rolling_restart_rounds"]),
            cell(&row["update_status_ticks"]),
            cell(&row["leader_hooks"]),
            format!(
                "{} / {}",
                cell(&row["leader_tool_calls"]["median"]),
                cell(&row["leader_tool_calls"]["max"])
            ),
            format!(
                "{} / {}",
                cell(&row["leader_hook_wall_ms"]["median"]),
                cell(&row["leader_hook_wall_ms"]["max"])
            ),
            cell(&row["working_credentials"])
        );
    }
}

fn print_tenancy_and_targets(r: &Value) {
    if r["upgrade"].is_object() {
        let u = &r["upgrade"];
        println!(
            "\nUpgrade (refresh A -> B, {} units): floor {} s per server restart, charm {} s per unit ({} s in all), {} restarts, {} servers on the new build, ratio {}",
            cell(&u["units"]),
            cell(&u["floor_restart_per_server_s"]),
            cell(&u["charm_upgrade_per_unit_s"]),
            cell(&u["charm_upgrade_total_s"]),
            cell(&u["restarts"]),
            cell(&u["servers_on_new_build"]),
            cell(&u["ratio"])
        );
    }
    if let Some(rows) = r["tls"].as_array() {
        println!("\nTLS switch (3 steps, one server restart at a time; the charm's time includes obtaining the certificates)");
        println!(
            "{:>8} {:>15} {:>16} {:>18} {:>15} {:>16} {:>20} {:>6}",
            "servers",
            "floor enable s",
            "floor disable s",
            "floor restarts",
            "charm enable s",
            "charm disable s",
            "charm restarts on/off",
            "ratio"
        );
        for row in rows {
            println!(
                "{:>8} {:>15} {:>16} {:>18} {:>15} {:>16} {:>20} {:>6}",
                cell(&row["servers"]),
                cell(&row["floor_enable_s"]),
                cell(&row["floor_disable_s"]),
                cell(&row["rolling_restarts_each_way"]),
                cell(&row["charm_enable_s"]),
                cell(&row["charm_disable_s"]),
                format!(
                    "{}/{}",
                    cell(&row["charm_restarts_on"]),
                    cell(&row["charm_restarts_off"])
                ),
                cell(&row["ratio"])
            );
        }
    }
    if !r["juju"].is_null() {
        let j = &r["juju"];
        let mm = |v: &Value| format!("{} / {}", cell(&v["median"]), cell(&v["max"]));
        println!("\njujusim's juju front end (3 units; median / max)");
        println!(
            "deploy returns {} ms; deploy to 3/3 active {} s; status {} ms (n {}); run {} ms; destroy-model {} ms; processes left {}",
            cell(&j["deploy_ms"]),
            cell(&j["deploy_to_active_s"]),
            mm(&j["status_ms"]),
            cell(&j["status_ms"]["n"]),
            mm(&j["run_ms"]),
            cell(&j["destroy_ms"]),
            cell(&j["processes_left"])
        );
    }
    if let Some(rows) = r["rejoin"].as_array() {
        println!("\nData integrity: a restarted follower rejoins (3 servers, data written as 512 KiB znodes)");
        println!(
            "{:>8} {:>18} {:>9} {:>9} {:>10}",
            "data MB", "learner sync", "observed", "write s", "rejoin s"
        );
        for row in rows {
            println!(
                "{:>8} {:>18} {:>9} {:>9} {:>10}",
                cell(&row["data_mb"]),
                cell(&row["sync"]),
                cell(&row["observed_sync"]),
                cell(&row["write_seconds"]),
                cell(&row["rejoin_seconds"])
            );
        }
    }
    if r["tenancy"].is_null() {
        return print_targets(r);
    }
    println!("\nClient tenancy (a client with n znodes leaves; then the one-time repair sweep)");
    println!(
        "{:>7} {:>10} {:>10} {:>11} {:>16} {:>9} {:>11} {:>14}",
        "znodes",
        "removal s",
        "revoke ms",
        "ms / znode",
        "-broken hook ms",
        "sweep ms",
        "ms / znode",
        "sweep hook ms"
    );
    for row in r["tenancy"].as_array().cloned().unwrap_or_default() {
        println!(
            "{:>7} {:>10} {:>10} {:>11} {:>16} {:>9} {:>11} {:>14}",
            cell(&row["znodes"]),
            cell(&row["removal_seconds"]),
            cell(&row["revoke_ms"]),
            cell(&row["revoke_ms_per_znode"]),
            cell(&row["broken_hook_ms"]),
            cell(&row["sweep_ms"]),
            cell(&row["sweep_ms_per_znode"]),
            cell(&row["sweep_hook_ms"])
        );
    }
    print_targets(r);
}

fn print_targets(r: &Value) {
    println!("\nTargets");
    for t in r["targets"].as_array().cloned().unwrap_or_default() {
        println!(
            "  [{}] {} (value {})",
            if t["met"] == json!(true) {
                "met"
            } else {
                "MISSED"
            },
            t["target"].as_str().unwrap_or(""),
            t["value"]
        );
    }
}
