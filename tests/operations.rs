//! Operations end to end (issue 7): actions, password rotation without an outage, configuration
//! validation, and what get-quorum-status reports, against real ZooKeeper under jujusim.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{client, conf_members, four_letter, kazoo, peer_state, Model};

const APP: &str = "zookeeper";

fn deploy(m: &Model) {
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    m.assert_quorum(APP);
}

/// Can `super` with this password list `/zookeeper` on the server at `host`?
fn super_works(host: &str, pw: &str) -> bool {
    let r = client(
        host,
        None,
        json!({"sasl": ["super", pw]}),
        json!([["children", "/zookeeper"]]),
    );
    r["results"][0].get("ok").is_some()
}

fn restarts(m: &Model) -> usize {
    m.units(APP)
        .iter()
        .map(|u| m.logged(u, "rolling restart: restarting server").len())
        .sum()
}

#[test]
fn super_password_rotation_keeps_the_charm_in_control() {
    let m = Model::new();
    deploy(&m);
    let old = m.super_password();
    let hosts = m.host_list(APP);
    for h in &hosts {
        assert!(
            super_works(h, &old),
            "get-super-password gives a working super password ({h})"
        );
    }
    let r = m.action(
        "zookeeper/leader",
        "set-password",
        &["username=super", "password=Rotated-Super-1"],
    );
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["results"]["super-password"], "Rotated-Super-1");
    assert_eq!(m.settle(), 0);
    assert_eq!(m.super_password(), "Rotated-Super-1");
    for h in &hosts {
        assert!(
            !super_works(h, &old),
            "the old super password is refused on {h}"
        );
        assert!(
            super_works(h, "Rotated-Super-1"),
            "the new one works on {h}"
        );
    }
    // The charm still manages the ensemble with it.
    m.ok(&["add-unit", APP]);
    assert_eq!(m.settle(), 0);
    m.assert_quorum(APP);
    let first = m.units(APP)[0].clone();
    m.ok(&["remove-unit", &first]);
    assert_eq!(m.settle(), 0);
    m.assert_quorum(APP);
    assert_eq!(m.units(APP).len(), 3);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn sync_rotation_under_writes_loses_nothing_and_keeps_a_leader() {
    let m = Model::new();
    deploy(&m);
    // A writer with its own chroot and digest credentials (digest sessions survive restarts).
    m.stub("writer", true);
    m.set_data("writer", &["database=/writes"], true);
    assert_eq!(m.settle(), 0);
    let (user, pw, eps, chroot) = m.credentials("writer").expect("writer answered");
    let hosts: Vec<String> = eps.split(',').map(str::to_string).collect();

    // Watch for the quorum leader every 25 ms; record the longest stretch without one.
    let stop = Arc::new(AtomicBool::new(false));
    let gaps = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let watcher = {
        let (stop, gaps, hosts) = (stop.clone(), gaps.clone(), hosts.clone());
        std::thread::spawn(move || {
            let mut since: Option<Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                let leader = hosts
                    .iter()
                    .any(|h| four_letter(h, "srvr").contains("Mode: leader"));
                match (leader, since) {
                    (false, None) => since = Some(Instant::now()),
                    (true, Some(t)) => {
                        gaps.lock().unwrap().push(t.elapsed());
                        since = None;
                    }
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    let writer = {
        let spec = json!({"hosts": eps, "chroot": chroot, "auth": {"digest": [user, pw]}, "timeout": 20,
                          "ops": [["write_for", "", 40]]});
        std::thread::spawn(move || kazoo(spec))
    };
    std::thread::sleep(Duration::from_secs(2));
    let before = restarts(&m);
    let t = Instant::now();
    let r = m.action("zookeeper/leader", "set-password", &["username=sync"]);
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(m.settle(), 0);
    let took = t.elapsed();
    let rolled = restarts(&m) - before;
    let written = writer.join().expect("writer");
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    let gaps = gaps.lock().unwrap().clone();
    let longest = gaps.iter().max().copied().unwrap_or_default();
    let acked: Vec<String> = written["results"][0]["ok"]["acked"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    eprintln!(
        "sync rotation: {took:?}, {rolled} server restarts, {} acknowledged writes ({} retried), leaderless stretches {gaps:?}",
        acked.len(),
        written["results"][0]["ok"]["retried"]
    );
    assert!(acked.len() > 50, "the writer kept writing: {written}");
    assert_eq!(rolled, 9, "three staged rolls of three servers");
    // Every acknowledged write is there.
    let present = client(
        &eps,
        Some(&chroot),
        json!({"digest": [user, pw]}),
        json!([["children", "/"]]),
    );
    let present: Vec<String> = present["results"][0]["ok"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(|s| format!("/{s}")))
        .collect();
    for p in &acked {
        assert!(present.contains(p), "acknowledged write {p} lost");
    }
    // Never longer without a leader than one election (an election takes ~0.5 s here; the
    // bound leaves room for a loaded machine).
    assert!(
        longest < Duration::from_secs(4),
        "leaderless for {longest:?}"
    );
    // The new password is the one in force: a fresh quorum of restarted servers formed with it.
    let jaas = std::fs::read_to_string(
        m.model_dir()
            .join("units/zookeeper-0/workload/conf/zookeeper-jaas.cfg"),
    )
    .unwrap_or_default();
    assert!(
        jaas.contains(&format!(
            "user_sync2=\"{}\"",
            r["results"]["sync-password"].as_str().unwrap_or("?")
        )),
        "only the new quorum user remains"
    );
    assert!(
        !jaas.contains("user_sync=\""),
        "the old quorum user is gone"
    );
    m.assert_quorum(APP);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn set_password_refusals_say_what_to_do() {
    let m = Model::new();
    deploy(&m);
    let leader = m.leader(APP);
    let other = m
        .units(APP)
        .into_iter()
        .find(|u| *u != leader)
        .unwrap_or_default();
    let r = m.action(&other, "set-password", &["username=super"]);
    assert_eq!(r["status"], "failed");
    let msg = r["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("must run on the leader") && msg.contains("zookeeper/leader"),
        "{msg}"
    );
    let r = m.action(&leader, "set-password", &["username=bob"]);
    assert_eq!(r["status"], "failed");
    let msg = r["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("\"bob\"") && msg.contains("super, sync"),
        "{msg}"
    );
    // Nothing changed: no restart happened.
    assert_eq!(restarts(&m), 0);
}

#[test]
fn invalid_config_blocks_without_hook_errors_and_one_change_is_one_roll() {
    let m = Model::new();
    deploy(&m);
    m.ok(&["config", APP, "tick-time=0"]);
    for (u, st, msg) in m.workload(APP) {
        assert_eq!(st, "blocked", "{u}");
        assert_eq!(
            msg, "invalid config tick-time=0: must be a whole number from 100 to 60000",
            "{u}"
        );
    }
    // The last good configuration stays in force on every server.
    for u in m.units(APP) {
        assert!(
            four_letter(&format!("{}:2181", m.address(&u)), "conf").contains("tickTime=2000"),
            "{u}"
        );
    }
    m.ok(&["config", APP, "tick-time=2000"]);
    assert_eq!(m.settle(), 0);
    m.assert_quorum(APP);
    // Several options changed at once: one rolling restart (one restart per server).
    let before = restarts(&m);
    m.ok(&[
        "config",
        APP,
        "init-limit=10",
        "sync-limit=4",
        "tick-time=1500",
    ]);
    assert_eq!(m.settle(), 0);
    assert_eq!(
        restarts(&m) - before,
        3,
        "one restart per server for three options"
    );
    for u in m.units(APP) {
        let conf = four_letter(&format!("{}:2181", m.address(&u)), "conf");
        assert!(
            conf.contains("tickTime=1500")
                && conf.contains("initLimit=10")
                && conf.contains("syncLimit=4"),
            "{u}: {conf}"
        );
    }
    m.assert_quorum(APP);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn get_quorum_status_reports_what_zookeeper_says() {
    let m = Model::new();
    deploy(&m);
    let unit = m.units(APP)[1].clone();
    let r = m.action(&unit, "get-quorum-status", &[]);
    assert_eq!(r["status"], "completed", "{r}");
    let res = &r["results"];
    let report: Value =
        serde_json::from_str(res["json"].as_str().unwrap_or("{}")).expect("json result");
    let ql = m.quorum_leader(APP).expect("leader");
    let ql_host = format!("{}:2181", m.address(&ql));
    let (lines, version) = conf_members(&ql_host);
    assert_eq!(
        res["config-version"],
        version.as_str(),
        "the version of /zookeeper/config"
    );
    assert_eq!(
        report["members"].as_array().map(Vec::len),
        Some(lines.len())
    );
    for line in &lines {
        // server.N=host:2888:3888:role;host:2181
        let (id, rest) = line
            .trim_start_matches("server.")
            .split_once('=')
            .unwrap_or_default();
        let role = rest
            .split(':')
            .nth(3)
            .and_then(|r| r.split(';').next())
            .unwrap_or_default();
        let client = rest.split(';').nth(1).unwrap_or_default();
        let key = format!("server-{id}");
        assert_eq!(res["members"][&key]["role"], role, "{line}");
        assert_eq!(res["members"][&key]["address"], client, "{line}");
        assert_eq!(
            res["members"][&key]["state"].as_str(),
            Some(peer_state(client).as_str()),
            "state as mntr says for {client}"
        );
        assert_eq!(res["members"][&key]["reachable"], "true");
    }
    let leader_id = lines
        .iter()
        .find(|l| l.contains(&m.address(&ql)))
        .and_then(|l| l.split('=').next())
        .unwrap_or_default()
        .to_string();
    assert_eq!(res["leader"].as_str(), Some(leader_id.as_str()));
    assert_eq!(res["syncing"], "false");
}

#[test]
fn restart_action_rolls_once_and_refuses_on_non_leaders() {
    let m = Model::new();
    deploy(&m);
    let leader = m.leader(APP);
    let other = m
        .units(APP)
        .into_iter()
        .find(|u| *u != leader)
        .unwrap_or_default();
    let r = m.action(&other, "restart", &[]);
    assert_eq!(r["status"], "failed");
    assert!(
        r["message"].as_str().unwrap_or("").contains("leader"),
        "{r}"
    );
    let before = restarts(&m);
    let ql = m.quorum_leader(APP).expect("a quorum leader");
    let r = m.action(&leader, "restart", &[]);
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(m.settle(), 0);
    assert_eq!(restarts(&m) - before, 3);
    // The quorum leader went last.
    let order: Vec<(u64, String)> = m
        .units(APP)
        .iter()
        .flat_map(|u| {
            m.logged(u, "rolling restart: restarting server")
                .into_iter()
                .map(move |(s, _)| (s, u.clone()))
        })
        .collect();
    let mut order = order;
    order.sort();
    eprintln!("restart order: {order:?}");
    assert_eq!(
        order.last().map(|(_, u)| u.as_str()),
        Some(ql.as_str()),
        "the quorum leader restarts last"
    );
    m.assert_quorum(APP);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}
