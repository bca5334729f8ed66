//! Hardening (issue 13) beyond single bad inputs: a unit added under an invalid configuration,
//! a rolling restart whose restarted server does not serve again, several refused clients at
//! once, a hook killed right after showing a status (statuses are set again), and get-quorum-status without a
//! quorum.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Frozen, Model};

const APP: &str = "zookeeper";

fn status_of(m: &Model, unit: &str) -> (String, String) {
    m.workload(APP)
        .into_iter()
        .find(|(u, _, _)| u == unit)
        .map(|(_, s, msg)| (s, msg))
        .unwrap_or_default()
}

fn app_bag(m: &Model, unit: &str, endpoint: &str) -> Value {
    let v = m.json(&["show-unit", unit]);
    v[unit]["relation-info"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["endpoint"] == endpoint))
        .map(|r| r["application-data"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn a_unit_added_under_an_invalid_configuration_waits_and_joins_once_it_is_fixed() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    m.ok(&["config", APP, "tick-time=0"]);
    m.settle();
    m.ok(&["add-unit", APP]);
    m.settle();
    assert_eq!(m.hook_errors(), Vec::<String>::new());
    let new = m.units(APP).last().cloned().expect("a new unit");
    let (st, msg) = status_of(&m, &new);
    assert_eq!(st, "blocked", "{msg}");
    assert!(msg.contains("invalid config tick-time=0"), "{msg}");
    assert!(
        m.workload_pid(&new).is_none(),
        "nothing started under an invalid configuration"
    );
    m.ok(&["config", APP, "--reset", "tick-time"]);
    assert_eq!(m.settle(), 0);
    m.assert_quorum(APP);
    assert_eq!(m.units(APP).len(), 4);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn a_restarted_server_that_does_not_serve_again_stops_the_roll() {
    let m = Model::new();
    m.deploy_with(3, &["server-start-timeout=15"]);
    assert_eq!(m.settle(), 0);
    let leader = m.leader(APP);
    m.ok(&["--no-wait", "config", APP, "log-level=DEBUG"]);
    // Run hooks one at a time until the leader grants the lock to another unit.
    let mut granted = String::new();
    for _ in 0..200 {
        m.step(1);
        granted = app_bag(&m, &leader, "restart")["granted"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !granted.is_empty() && granted != leader {
            break;
        }
    }
    assert!(!granted.is_empty() && granted != leader, "no grant seen");
    // The granted unit checks that every other voter serves, then restarts: once its server is
    // a new process, every other server is paused, so it cannot rejoin a quorum.
    let old_pid = m.workload_pid(&granted).expect("pid");
    let steps = m.background(&["step", "-n", "20"]);
    let started = std::time::Instant::now();
    while m.workload_pid(&granted).is_none_or(|p| p == old_pid) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{granted} was not restarted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let others: Vec<String> = m.units(APP).into_iter().filter(|u| *u != granted).collect();
    let pids: Vec<(String, i32)> = others
        .iter()
        .map(|u| (u.clone(), m.workload_pid(u).expect("pid")))
        .collect();
    {
        let _frozen: Vec<Frozen> = pids.iter().map(|(_, p)| Frozen::new(*p)).collect();
        steps.wait();
        m.wait_for("the granted unit stalls", Duration::from_secs(120), || {
            m.step(1);
            status_of(&m, &granted)
                .1
                .contains("rolling restart stopped")
        });
        // A few more hooks: nobody else is granted or restarted meanwhile.
        for _ in 0..10 {
            m.step(1);
        }
        let now = app_bag(&m, &leader, "restart")["granted"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert_eq!(now, granted, "the lock stays with the stalled unit");
        for (u, p) in &pids {
            assert_eq!(m.workload_pid(u), Some(*p), "{u} was not restarted");
        }
    }
    // Resumed, the roll completes.
    assert_eq!(m.hook_errors(), Vec::<String>::new());
    m.settle_until_active(APP);
    m.assert_quorum(APP);
}

#[test]
fn several_refused_clients_are_counted_and_named() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    for (app, db) in [("bad1", "/"), ("bad2", "/zookeeper"), ("bad3", "/a//b")] {
        m.stub(app, false);
        m.set_data(app, &[&format!("database={db}")], false);
    }
    m.settle();
    let (st, msg) = status_of(&m, &m.leader(APP));
    assert_eq!(st, "blocked");
    assert!(msg.starts_with("3 client requests refused;"), "{msg}");
    for app in ["bad1", "bad2", "bad3"] {
        assert!(msg.contains(app), "{app} named: {msg}");
    }
    // One client's bad request does not turn the whole application blocked.
    let app = &m.status()["applications"][APP]["application-status"];
    assert_eq!(app["current"], "active", "{app}");
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn a_hook_killed_right_after_showing_a_status_leaves_no_stale_status() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    // The unit's status-set shows the status and then kills the hook that called it, once: the
    // hook dies between showing "waiting for its turn" and remembering that it showed it.
    let real = m.model_dir().join("real-tools");
    std::fs::create_dir_all(&real).unwrap();
    std::os::unix::fs::symlink(support::jujusim_bin(), real.join("status-set")).unwrap();
    let armed = m.dir().join("kill-after-status-set");
    std::fs::write(&armed, b"").unwrap();
    let wrapper = m.model_dir().join("tools").join("status-set");
    std::fs::remove_file(&wrapper).unwrap();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\"{}\" \"$@\"; rc=$?\n\
             case \"$*\" in *'waiting for its turn'*) rm \"{}\" 2>/dev/null && kill -9 $PPID;; esac\n\
             exit $rc\n",
            real.join("status-set").display(),
            armed.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    // A change that needs a rolling restart, run hook by hook until a unit waiting for its turn
    // was killed; then the change is reverted before that unit's turn came.
    m.ok(&["--no-wait", "config", APP, "log-level=DEBUG"]);
    for _ in 0..100 {
        if !armed.exists() || m.step(1) {
            break;
        }
    }
    assert!(!armed.exists(), "no hook showed 'waiting for its turn'");
    let killed: Vec<String> = m
        .hook_errors()
        .into_iter()
        .map(|e| e.split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(killed.len(), 1, "one hook was killed: {killed:?}");
    let killed = killed[0].clone();
    m.ok(&["--no-wait", "config", APP, "--reset", "log-level"]);
    m.ok(&["resolve", &killed]);
    // The others finish the roll (back to the old value); the killed unit's own turn never
    // comes, so nothing but a status set afresh clears what it showed.
    m.wait_for("the other units active", Duration::from_secs(120), || {
        m.settle();
        m.workload(APP)
            .iter()
            .all(|(u, st, _)| *u == killed || st == "active")
            && m.all_serving(APP)
    });
    m.settle();
    for (u, st, msg) in m.workload(APP) {
        assert_eq!((st.as_str(), msg.as_str()), ("active", ""), "{u}");
    }
    assert_eq!(m.hook_errors().len(), 1, "{:?}", m.hook_errors());
    m.assert_quorum(APP);
}

#[test]
fn get_quorum_status_without_a_quorum_says_what_each_server_says() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    let units = m.units(APP);
    // Remove one unit first: it must not show up as a server with id 0.
    m.ok(&["add-unit", APP]);
    assert_eq!(m.settle(), 0);
    let extra = m.units(APP).last().cloned().expect("extra unit");
    m.ok(&["remove-unit", &extra]);
    assert_eq!(m.settle(), 0);
    let r = m.action(&units[0], "get-quorum-status", &[]);
    assert_eq!(r["status"], "completed", "{r}");
    let json: Value = serde_json::from_str(r["results"]["json"].as_str().unwrap_or("{}")).unwrap();
    assert_eq!(
        json["others"],
        Value::Array(vec![]),
        "no removed unit listed: {json}"
    );

    // Two of three servers paused: no quorum; the third unit still reports.
    let pids: Vec<i32> = units[1..]
        .iter()
        .map(|u| m.workload_pid(u).expect("pid"))
        .collect();
    let _frozen: Vec<Frozen> = pids.iter().map(|p| Frozen::new(*p)).collect();
    m.wait_for("no quorum", Duration::from_secs(60), || {
        support::peer_state(&format!("{}:2181", m.address(&units[0]))) != "leading - broadcast"
            && !support::peer_state(&format!("{}:2181", m.address(&units[0])))
                .ends_with("broadcast")
    });
    let r = m.action(&units[0], "get-quorum-status", &[]);
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["results"]["leader"], "none", "{r}");
    assert!(
        r["results"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("no quorum leader"),
        "{r}"
    );
    let json: Value = serde_json::from_str(r["results"]["json"].as_str().unwrap_or("{}")).unwrap();
    let members = json["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        members.len(),
        3,
        "every member, from a server's own configuration: {json}"
    );
    assert!(
        members
            .iter()
            .filter(|s| s["reachable"] == Value::Bool(false) || s["state"] == "not answering")
            .count()
            >= 2,
        "{json}"
    );
}

#[test]
fn a_password_with_every_kind_of_punctuation_works_for_a_real_login() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    // `$` without `{`, quotes, backslashes, braces, spaces: written so that Java reads them
    // literally.
    let pw = r#"a$b"c\d}e f!{g'h"#;
    let param = format!("password={pw}");
    let r = m.action("zookeeper/leader", "set-password", &[param.as_str()]);
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(m.settle(), 0);
    assert_eq!(m.super_password(), pw);
    let login = support::kazoo(serde_json::json!({
        "hosts": m.hosts(APP),
        "auth": {"sasl": ["super", pw]},
        "ops": [["create", "/literal", "x", "open"], ["get", "/literal"]]
    }));
    assert_eq!(login["results"][1]["ok"], "x", "{login}");
    m.assert_quorum(APP);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}
