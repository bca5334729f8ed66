//! In-place upgrades: a refresh swaps every unit's charm (its release and the ZooKeeper build it
//! carries); the leader moves the target on evidence and the rolling restart carries it out.

use super::super::testing::*;
use charm_engine::juju::tools::StatusKind;
use charm_engine::juju::Event;

/// `juju refresh` as one unit sees it: the new charm's files, then `upgrade-charm` and the
/// `config-changed` Juju queues after it.
fn refresh_unit(m: &mut Model, u: u32, release: &str, build: &str) {
    std::fs::write(m.unit(u).charm_dir.join("version"), format!("{release}\n")).expect("version");
    if build.is_empty() {
        m.world.borrow_mut().offered.remove(&u);
    } else {
        m.world.borrow_mut().offered.insert(u, build.to_string());
    }
    m.run(u, Event::UpgradeCharm);
    m.run(u, Event::ConfigChanged);
}

fn refresh(m: &mut Model, release: &str, build: &str) {
    for u in 0..3 {
        refresh_unit(m, u, release, build);
    }
}

fn builds(m: &Model) -> Vec<String> {
    let w = m.world.borrow();
    (0..3)
        .map(|u| {
            w.servers
                .get(&u)
                .map(|s| s.build.clone())
                .unwrap_or_default()
        })
        .collect()
}

fn starts_after(m: &Model, skip: usize) -> Vec<u32> {
    m.world.borrow().started[skip..].to_vec()
}

#[test]
fn an_upgrade_restarts_each_server_once_onto_the_new_build_the_quorum_leader_last() {
    let mut m = Model::deployed(3);
    let before = m.world.borrow().started.len();
    refresh(&mut m, "r2", "b");
    m.settle();
    let order = starts_after(&m, before);
    assert_eq!(order.len(), 3, "{order:?}\n{}", m.describe());
    assert_eq!(order.last(), Some(&0), "the quorum leader last: {order:?}");
    assert_eq!(builds(&m), vec!["b", "b", "b"]);
    assert_eq!(
        m.peer_app().get("workload-build").map(String::as_str),
        Some("b")
    );
    for u in 0..3 {
        assert_eq!(m.status(u).kind, StatusKind::Active, "{}", m.describe());
        let bag = m.bag(u, PEER, &unit_name(u));
        assert_eq!(bag.get("workload-build").map(String::as_str), Some("b"));
        assert_eq!(bag.get("charm-release").map(String::as_str), Some("r2"));
    }
    assert_eq!(
        m.peer_app().get("schema-version").map(String::as_str),
        Some("2")
    );
    let app = m.app_status().expect("app status");
    assert_eq!(app.kind, StatusKind::Active, "{app:?}");
}

#[test]
fn nothing_restarts_until_every_unit_runs_the_new_charm_nor_while_a_roll_is_in_flight() {
    let mut m = Model::deployed(3);
    // A configuration roll under way and stuck: unit 1's server does not serve after its
    // restart (it keeps the lock).
    m.world.borrow_mut().no_serve_on_start.insert(1);
    let before = m.world.borrow().started.len();
    m.config("tick-time", serde_json::json!(3000));
    m.settle();
    // Only the leader has the new charm so far.
    refresh_unit(&mut m, 0, "r2", "b");
    let app = m.app_status().expect("app status").message;
    assert!(app.starts_with("other units upgrading first..."), "{app}");
    assert!(m
        .peer_app()
        .get("workload-build")
        .is_none_or(|t| t.is_empty()));
    refresh_unit(&mut m, 1, "r2", "b");
    refresh_unit(&mut m, 2, "r2", "b");
    m.run(0, Event::UpdateStatus);
    let app = m.app_status().expect("app status").message;
    assert!(
        app.contains("refused by the pre-upgrade check: a rolling restart is in flight"),
        "{app}"
    );
    assert!(m
        .peer_app()
        .get("workload-build")
        .is_none_or(|t| t.is_empty()));
    // Unit 1's server catches up: the roll ends, then the upgrade runs.
    {
        let mut w = m.world.borrow_mut();
        w.no_serve_on_start.clear();
        if let Some(s) = w.servers.get_mut(&1) {
            s.silent = false;
        }
        w.elect();
    }
    m.run(1, Event::UpdateStatus);
    m.settle();
    // The configuration roll first, then the upgrade: each server twice, never two at once.
    let order = starts_after(&m, before);
    assert_eq!(order.len(), 6, "{order:?}\n{}", m.describe());
    assert_eq!(builds(&m), vec!["b", "b", "b"]);
}

#[test]
fn the_pause_holds_after_the_first_server_until_resumed_and_a_rollback_is_never_paused() {
    let mut m = Model::deployed(3);
    m.config("pause-after-unit-refresh", serde_json::json!("first"));
    let before = m.world.borrow().started.len();
    refresh(&mut m, "r2", "b");
    m.settle();
    assert_eq!(starts_after(&m, before).len(), 1, "{}", m.describe());
    let app = m.app_status().expect("app status");
    assert_eq!(app.kind, StatusKind::Blocked, "{app:?}");
    assert!(app.message.contains("resume-upgrade"), "{app:?}");
    let upgraded = (0..3)
        .find(|u| builds(&m)[*u as usize] == "b")
        .expect("one upgraded");
    assert_eq!(m.status(upgraded).kind, StatusKind::Blocked);

    // Roll back: only the upgraded server restarts, with no pause.
    let before = m.world.borrow().started.len();
    refresh(&mut m, "r1", "");
    m.settle();
    assert_eq!(starts_after(&m, before), vec![upgraded], "{}", m.describe());
    assert_eq!(builds(&m), vec!["", "", ""]);
    assert!(m
        .peer_app()
        .get("upgrade-rollback")
        .is_none_or(|v| v.is_empty()));

    // Forward again, resumed after the first.
    refresh(&mut m, "r2", "b");
    m.settle();
    assert_eq!(builds(&m).iter().filter(|b| *b == "b").count(), 1);
    let r = m.act(0, "resume-upgrade", &[]).expect("resumed");
    assert!(r["message"].contains("resumed after 1 of 3"), "{r:?}");
    m.settle();
    assert_eq!(builds(&m), vec!["b", "b", "b"], "{}", m.describe());
    for u in 0..3 {
        assert_eq!(m.status(u).kind, StatusKind::Active, "{}", m.describe());
    }
    // Nothing left to resume.
    assert!(m.act(0, "resume-upgrade", &[]).is_err());
}

#[test]
fn a_stopped_server_holds_the_upgrade_and_the_check_says_why() {
    let mut m = Model::deployed(3);
    let before = m.world.borrow().started.len();
    m.world.borrow_mut().freeze(2, true);
    let r = m.act(0, "pre-upgrade-check", &[]);
    assert!(
        r.as_ref()
            .is_err_and(|e| e.contains("Pre-upgrade check failed") && e.contains("server.3")),
        "{r:?}"
    );
    refresh(&mut m, "r2", "b");
    m.settle();
    assert!(starts_after(&m, before).is_empty(), "{}", m.describe());
    let app = m.app_status().expect("app status");
    assert!(
        app.message.contains("refused by the pre-upgrade check"),
        "{app:?}"
    );
    m.world.borrow_mut().freeze(2, false);
    m.run(0, Event::UpdateStatus);
    m.settle();
    assert_eq!(builds(&m), vec!["b", "b", "b"], "{}", m.describe());
}
