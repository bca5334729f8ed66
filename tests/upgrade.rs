//! In-place upgrades (issue 18), end to end under jujusim: `jujusim refresh` between two packs of
//! the charm that carry Debian bookworm's two builds of ZooKeeper 3.8.0 (A: 3.8.0-11+deb12u1,
//! built 2023-10-30; B: 3.8.0-11+deb12u2, built 2024-12-29; `cargo xtask test` packs them as
//! `ZK_CHARM_A` / `ZK_CHARM_B`), real servers, a kazoo writer throughout whose every
//! acknowledged write is read back from every server on its own afterwards.
//!
//! When the older build could not be downloaded, xtask packs two charms that differ in their
//! release only and sets `ZK_UPGRADE_FALLBACK` to why: the tests say so loudly and check a
//! charm-only upgrade (every unit publishes the new release) instead of the builds.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::{client, four_letter, kill_after_relation_set, writer_report, Frozen, Model, Writer};

const APP: &str = "zookeeper";
const BUILT_A: &str = "built on 2023-10-30";
const BUILT_B: &str = "built on 2024-12-29";

fn charm(var: &str, name: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/charm")
            .join(name)
    });
    assert!(
        p.exists(),
        "{} is missing: run the tests with `cargo xtask test` (it packs charms A and B)",
        p.display()
    );
    p
}

/// Why the upgrade carries no workload change (said loudly), or `None`.
fn fallback() -> Option<String> {
    let why = std::env::var("ZK_UPGRADE_FALLBACK")
        .ok()
        .filter(|s| !s.is_empty())?;
    eprintln!(
        "\n*** WARNING: no workload change in this run: {why}; testing a charm-only upgrade ***\n"
    );
    Some(why)
}

fn deploy_a(m: &Model, n: usize, config: &[&str]) {
    let a = charm("ZK_CHARM_A", "upgrade-a.charm");
    let n = n.to_string();
    let mut args = vec!["deploy", a.to_str().unwrap_or_default(), APP, "-n", &n];
    for c in config {
        args.extend(["--config", c]);
    }
    m.ok(&args);
    m.settle_until_active(APP);
}

fn refresh(m: &Model, var: &str, name: &str, wait: bool) {
    let c = charm(var, name);
    let mut args = vec!["refresh", APP, "--path", c.to_str().unwrap_or_default()];
    if !wait {
        args.insert(0, "--no-wait");
    }
    m.ok(&args);
}

/// What each unit's server says it runs (`srvr`'s version line).
fn builds(m: &Model) -> Vec<(String, String)> {
    m.units(APP)
        .into_iter()
        .map(|u| {
            let srvr = four_letter(&format!("{}:2181", m.address(&u)), "srvr");
            let v = srvr
                .lines()
                .find_map(|l| l.strip_prefix("Zookeeper version: "))
                .unwrap_or("")
                .to_string();
            (u, v)
        })
        .collect()
}

/// Every server runs the build of charm `which` ('A' or 'B'); without a workload change, every
/// unit publishes that charm's release instead.
fn all_on(m: &Model, which: char, fallback: bool) -> bool {
    if fallback {
        let want = if which == 'A' {
            "upgrade-a"
        } else {
            "upgrade-b"
        };
        return m.all_serving(APP)
            && m.units(APP).iter().all(|u| {
                unit_peer_bag(m, u)["charm-release"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(want))
            });
    }
    let want = if which == 'A' { BUILT_A } else { BUILT_B };
    m.all_serving(APP) && builds(m).iter().all(|(_, v)| v.contains(want))
}

/// A peer relation of the app (from model.json): `cluster` or `upgrade`.
fn peer_relation(m: &Model, endpoint: &str) -> Value {
    let model: Value = serde_json::from_str(
        &std::fs::read_to_string(m.model_dir().join("model.json")).unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    for r in model["relations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, r)| r)
    {
        let ends = r["ends"].as_array().cloned().unwrap_or_default();
        if ends.len() == 1 && ends[0]["endpoint"] == endpoint {
            return r.clone();
        }
    }
    Value::Null
}

/// A unit's bag in the `cluster` relation.
fn unit_peer_bag(m: &Model, unit: &str) -> Value {
    peer_relation(m, "cluster")["unit_bags"][unit]["data"].clone()
}

/// Charmed ZooKeeper's `upgrade` relation at rest: every unit `idle`, no stack.
fn upgrade_relation_at_rest(m: &Model) {
    let r = peer_relation(m, "upgrade");
    let stack = r["app_bags"][APP]["data"]["upgrade-stack"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(stack.is_empty() || stack == "[]", "upgrade-stack left: {r}");
    for u in m.units(APP) {
        assert_eq!(
            r["unit_bags"][&u]["data"]["state"], "idle",
            "{u} on the upgrade relation: {r}"
        );
    }
}

/// The epoch of the ensemble (the high 32 bits of the zxid a serving server reports): it grows
/// by one with every leader election.
fn epoch(m: &Model) -> u64 {
    m.units(APP)
        .iter()
        .filter_map(|u| {
            four_letter(&format!("{}:2181", m.address(u)), "srvr")
                .lines()
                .find_map(|l| l.strip_prefix("Zxid: "))
                .and_then(|z| u64::from_str_radix(z.trim_start_matches("0x"), 16).ok())
        })
        .map(|z| z >> 32)
        .max()
        .unwrap_or(0)
}

/// The servers restarted in rolling restarts after timeline position `after`, in order.
fn restarted_after(m: &Model, after: u64) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = m
        .units(APP)
        .iter()
        .flat_map(|u| m.logged(u, "rolling restart: restarting server."))
        .filter(|(seq, _)| *seq > after)
        .collect();
    out.sort();
    out
}

fn last_seq(m: &Model) -> u64 {
    m.log()
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

fn app_message(m: &Model) -> String {
    m.status()["applications"][APP]["application-status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The client's credentials work inside its chroot.
fn client_works(m: &Model, node: &str) {
    let (user, pw, eps, chroot) = m.credentials("client").expect("client credentials");
    let r = client(
        &eps,
        Some(&chroot),
        json!({"sasl": [user, pw]}),
        json!([["create", node, "x", "creator"], ["get", node]]),
    );
    assert!(
        r["results"][0].get("ok").is_some() && r["results"][1].get("ok").is_some(),
        "the client's credentials in {chroot}: {r}"
    );
}

#[test]
fn refresh_upgrades_one_server_at_a_time_the_quorum_leader_last_after_the_pre_check() {
    let fb = fallback();
    let m = Model::new();
    deploy_a(&m, 3, &[]);
    m.stub("client", true);
    m.set_data("client", &["database=/app"], true);
    m.settle();
    client_works(&m, "/before");
    assert!(all_on(&m, 'A', fb.is_some()), "{:?}", builds(&m));

    let auth = json!({"sasl": ["super", m.super_password()]});
    let mut w = Writer::start(&m.hosts(APP), auth.clone(), "/it");
    w.wait_acked(50, Duration::from_secs(60));

    // A follower's JVM paused: the automatic pre-check refuses; no healthy server restarts.
    let qleader = m.quorum_leader(APP).expect("a quorum leader");
    let paused = m
        .units(APP)
        .into_iter()
        .find(|u| *u != qleader)
        .expect("a follower");
    let frozen = Frozen::new(m.workload_pid(&paused).expect("pid"));
    let leader = m.leader(APP);
    let check = m.action(&leader, "pre-upgrade-check", &[]);
    assert_eq!(check["status"], "failed", "{check}");
    assert!(
        check["message"]
            .as_str()
            .is_some_and(|s| s.contains("Pre-upgrade check failed") && s.contains("not serving")),
        "{check}"
    );
    let before = last_seq(&m);
    let epoch_before = epoch(&m);
    // A fault on the way: the leader's hook that moves the target is killed right after the
    // write (Juju forgets it; the hook runs again).
    let armed = fb
        .is_none()
        .then(|| kill_after_relation_set(&m, r#""workload-build":"3.8.0-11+deb12u2""#));
    refresh(&m, "ZK_CHARM_B", "upgrade-b.charm", true);
    assert_eq!(m.status()["applications"][APP]["charm-rev"], json!(1));
    let msg = app_message(&m);
    assert!(
        msg.contains("refused by the pre-upgrade check") && msg.contains("not serving"),
        "the application status says why: {msg}"
    );
    assert!(
        restarted_after(&m, before).is_empty(),
        "no server restarted while one was paused: {:?}",
        restarted_after(&m, before)
    );
    if fb.is_none() {
        let healthy: Vec<_> = builds(&m)
            .into_iter()
            .filter(|(u, _)| *u != paused)
            .collect();
        assert!(
            healthy.iter().all(|(_, v)| v.contains(BUILT_A)),
            "{healthy:?}"
        );
    }

    // It recovers: the upgrade proceeds by itself (a deferred retry, update-status).
    drop(frozen);
    m.wait_for("every server on B", Duration::from_secs(240), || {
        m.settle();
        all_on(&m, 'B', fb.is_some())
    });
    let order = restarted_after(&m, before);
    eprintln!("restart order: {order:?}");
    if let Some(armed) = armed {
        assert!(!armed.exists(), "the hook moving the target was killed");
        let killed = m.hook_errors();
        eprintln!("hooks killed: {killed:?}");
        assert_eq!(killed.len(), 1, "one hook killed: {killed:?}");
    }
    if fb.is_some() {
        // A charm-only upgrade restarts nothing.
        assert!(order.is_empty(), "{order:?}");
        writer_report(&m, &mut w, auth, "charm-only upgrade A -> B");
        client_works(&m, "/after");
        return;
    }
    assert_eq!(order.len(), 3, "each server restarted once: {order:?}");
    let ql_id = m
        .units(APP)
        .iter()
        .position(|u| *u == qleader)
        .map(|i| i + 1)
        .unwrap_or(0);
    assert!(
        order
            .last()
            .is_some_and(|(_, msg)| msg.ends_with(&format!("server.{ql_id}"))),
        "the quorum leader ({qleader}, server.{ql_id}) restarted last: {order:?}"
    );
    let elections = epoch(&m).saturating_sub(epoch_before);
    eprintln!("leader elections during the upgrade: {elections}");
    assert!(
        elections <= 1,
        "at most one election (the quorum leader's restart): {elections}"
    );
    writer_report(&m, &mut w, auth, "upgrade A -> B");
    client_works(&m, "/after");
    // Charmed ZooKeeper's keys: every unit idle again, no stack left.
    upgrade_relation_at_rest(&m);
    let st = m.action(&leader, "get-quorum-status", &[]);
    let json = st["results"]["json"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(json.matches("2024-12-29").count(), 3, "{json}");
}

#[test]
fn a_paused_upgrade_rolls_back_to_the_previous_charm_and_resumes_on_request() {
    let fb = fallback();
    let m = Model::new();
    deploy_a(&m, 3, &["pause-after-unit-refresh=first"]);
    // A rolling restart first (the quorum leader last): the quorum leadership moves off the
    // Juju leader, which then upgrades before the quorum leader (its own restart must count
    // for the pause).
    let leader = m.leader(APP);
    let r = m.action(&leader, "restart", &[]);
    assert_eq!(r["status"], "completed", "{r}");
    m.settle();
    eprintln!(
        "juju leader {leader}, quorum leader {:?}",
        m.quorum_leader(APP)
    );
    let auth = json!({"sasl": ["super", m.super_password()]});
    let mut w = Writer::start(&m.hosts(APP), auth.clone(), "/it");
    w.wait_acked(50, Duration::from_secs(60));

    // B: the first server upgrades, then the upgrade holds for the operator.
    if let Some(why) = fb {
        // A charm-only upgrade restarts no server: nothing to pause after or roll back.
        eprintln!("skipped: the rollback of a workload change needs two builds ({why})");
        return;
    }
    let before = last_seq(&m);
    refresh(&m, "ZK_CHARM_B", "upgrade-b.charm", true);
    m.settle();
    assert_eq!(
        restarted_after(&m, before).len(),
        1,
        "{:?}",
        restarted_after(&m, before)
    );
    let msg = app_message(&m);
    assert!(msg.contains("resume-upgrade"), "{msg}");
    if fb.is_none() {
        let b = builds(&m);
        assert_eq!(
            b.iter().filter(|(_, v)| v.contains(BUILT_B)).count(),
            1,
            "{b:?}"
        );
    }
    // Rollback: refresh to A again; everything ends on A with its data.
    let before = last_seq(&m);
    refresh(&m, "ZK_CHARM_A", "upgrade-a.charm", true);
    m.wait_for("every server on A", Duration::from_secs(240), || {
        m.settle();
        all_on(&m, 'A', fb.is_some())
    });
    assert_eq!(
        restarted_after(&m, before).len(),
        1,
        "only the upgraded server restarts back: {:?}",
        restarted_after(&m, before)
    );
    // B again, resumed by the operator after the first unit.
    let before = last_seq(&m);
    refresh(&m, "ZK_CHARM_B", "upgrade-b.charm", true);
    m.settle();
    assert_eq!(restarted_after(&m, before).len(), 1);
    let r = m.action(&leader, "resume-upgrade", &[]);
    assert_eq!(r["status"], "completed", "{r}");
    m.wait_for("every server on B", Duration::from_secs(240), || {
        m.settle();
        all_on(&m, 'B', fb.is_some())
    });
    assert_eq!(restarted_after(&m, before).len(), 3);
    writer_report(&m, &mut w, auth, "rollback and resume");
    upgrade_relation_at_rest(&m);
    assert!(m.hook_errors().is_empty(), "{:?}", m.hook_errors());
}

#[test]
fn a_pre_check_without_a_refresh_leaves_the_charm_converging() {
    let m = Model::new();
    deploy_a(&m, 3, &[]);
    let leader = m.leader(APP);
    // A server killed: the check refuses and names it; once its unit brought it back (its next
    // hook), the check passes.
    let qleader = m.quorum_leader(APP);
    let victim = m
        .units(APP)
        .into_iter()
        .find(|u| *u != leader && Some(u) != qleader.as_ref())
        .expect("a follower");
    m.kill_workload(&victim);
    let check = m.action(&leader, "pre-upgrade-check", &[]);
    assert_eq!(check["status"], "failed", "{check}");
    let msg = check["message"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.contains("Pre-upgrade check failed")
            && msg.contains(&format!("({victim}) not serving")),
        "{check}"
    );
    m.wait_for("the killed server back", Duration::from_secs(120), || {
        // update-status: its unit finds the server gone and starts it again.
        m.ok(&["tick"]);
        m.settle();
        m.all_serving(APP)
    });
    let check = m.action(&leader, "pre-upgrade-check", &[]);
    assert_eq!(check["status"], "completed", "{check}");
    assert!(
        check["results"]["message"]
            .as_str()
            .is_some_and(|s| s.contains("can upgrade now")),
        "{check}"
    );
    // A stack left behind (as Charmed ZooKeeper's pre-upgrade-check leaves one when no refresh
    // follows): a leader reading it afresh clears it, and nothing waits on it.
    let upgrade_id = m.relation_id_on(&leader, "upgrade");
    m.ok(&[
        "exec",
        &leader,
        "--",
        "relation-set",
        "--app",
        "-r",
        &format!("upgrade:{upgrade_id}"),
        "upgrade-stack=[0,2,1]",
    ]);
    assert_eq!(
        peer_relation(&m, "upgrade")["app_bags"][APP]["data"]["upgrade-stack"],
        "[0,2,1]"
    );
    m.ok(&["revoke-leader", APP]);
    m.settle();
    let leader = m.leader(APP);
    // The charm keeps converging (a unit joins the quorum).
    m.ok(&["add-unit", APP]);
    m.settle_until_active(APP);
    m.wait_for("4 servers in quorum", Duration::from_secs(120), || {
        m.settle();
        m.all_serving(APP) && m.units(APP).len() == 4
    });
    let (members, _) = support::conf_members(&format!("{}:2181", m.address(&leader)));
    assert_eq!(members.len(), 4, "{members:?}");
    upgrade_relation_at_rest(&m);
    // A follower refuses the leader-only actions with a clear message.
    let other = m
        .units(APP)
        .into_iter()
        .find(|u| *u != leader)
        .expect("unit");
    let r = m.action(&other, "resume-upgrade", &[]);
    assert_eq!(r["status"], "failed", "{r}");
    assert!(m.hook_errors().is_empty(), "{:?}", m.hook_errors());
}
