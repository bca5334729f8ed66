//! The rolling-restart lock on the `restart` relation.

use super::super::testing::*;
use charm_engine::juju::tools::StatusKind;
use charm_engine::juju::Event;

/// Server starts after `skip` earlier ones.
fn starts_after(m: &Model, skip: usize) -> Vec<u32> {
    m.world.borrow().started[skip..].to_vec()
}

#[test]
fn a_config_change_restarts_each_server_once_the_quorum_leader_last() {
    let mut m = Model::deployed(3);
    let before = m.world.borrow().started.len();
    m.config("tick-time", serde_json::json!(3000));
    m.settle();
    let order = starts_after(&m, before);
    assert_eq!(order.len(), 3, "{order:?}\n{}", m.describe());
    assert_eq!(
        *order.last().expect("one"),
        0,
        "the quorum leader last: {order:?}"
    );
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 1, 2]);
    for u in 0..3 {
        assert_eq!(m.status(u).kind, StatusKind::Active, "{}", m.describe());
        let cfg = std::fs::read_to_string(
            crate::workload::Workload::paths(&m.unit(u).workload).zoo_cfg(),
        )
        .expect("zoo.cfg");
        assert!(cfg.contains("tickTime=3000"), "{cfg}");
    }
}

#[test]
fn a_unit_waiting_for_its_turn_says_so() {
    let mut m = Model::deployed(3);
    m.config("sync-limit", serde_json::json!(4));
    let waiting =
        (0..3).any(|u| m.status(u).message == "waiting for its turn in a rolling restart");
    assert!(
        waiting,
        "{:?}",
        (0..3).map(|u| m.status(u)).collect::<Vec<_>>()
    );
    m.settle();
}

#[test]
fn the_grant_names_one_unit_and_the_inputs_it_is_for() {
    let mut m = Model::deployed(3);
    m.config("log-level", serde_json::json!("DEBUG"));
    let app = m.bag(m.leader(), RESTART, APP);
    let granted = app.get("granted").cloned().expect("a grant");
    assert!(
        ["zookeeper/1", "zookeeper/2"].contains(&granted.as_str()),
        "the others before the quorum leader: {app:?}"
    );
    assert!(
        app.get("granted-for").is_some_and(|f| f.len() == 16),
        "{app:?}"
    );
    m.settle();
    let app = m.bag(m.leader(), RESTART, APP);
    assert!(!app.contains_key("granted"), "released at the end: {app:?}");
}

#[test]
fn a_znode_policy_change_restarts_nothing() {
    let mut m = Model::deployed(3);
    let before = m.world.borrow().started.len();
    m.config("client-znode-policy", serde_json::json!("delete"));
    m.settle();
    assert_eq!(m.world.borrow().started.len(), before);
}

#[test]
fn changes_that_arrive_together_cost_one_restart_per_server() {
    let mut m = Model::deployed(3);
    let before = m.world.borrow().started.len();
    m.set_config("tick-time", serde_json::json!(2500));
    m.set_config("init-limit", serde_json::json!(7));
    m.config("sync-limit", serde_json::json!(3));
    m.settle();
    let order = starts_after(&m, before);
    for u in 0..3 {
        let n = order.iter().filter(|x| **x == u).count();
        assert_eq!(n, 1, "unit {u} restarted {n} times: {order:?}");
    }
}

#[test]
fn a_grant_for_other_inputs_is_not_acted_on() {
    // R4: the grant was written for the inputs before a change that this unit already sees.
    let mut m = Model::deployed(3);
    m.set_config("tick-time", serde_json::json!(3000));
    m.run(0, Event::ConfigChanged);
    let granted: u32 = m
        .bag(m.leader(), RESTART, APP)
        .get("granted")
        .and_then(|g| g.strip_prefix("zookeeper/")?.parse().ok())
        .expect("a grant");
    let starts = m.world.borrow().servers[&granted].starts;
    // The granted unit sees a newer configuration than the grant was for.
    m.unit_mut(granted)
        .juju
        .config
        .insert("tick-time".into(), serde_json::json!(4000));
    m.unit_mut(granted).pending.clear();
    m.run(granted, Event::ConfigChanged);
    assert_eq!(
        m.world.borrow().servers[&granted].starts,
        starts,
        "restarted under a grant for other inputs\n{}",
        m.describe()
    );
}

#[test]
fn the_granted_unit_does_not_restart_while_another_voter_is_down() {
    let mut m = Model::deployed(3);
    m.set_config("tick-time", serde_json::json!(3000));
    m.run(0, Event::ConfigChanged);
    let granted: u32 = m
        .bag(m.leader(), RESTART, APP)
        .get("granted")
        .and_then(|g| g.strip_prefix("zookeeper/")?.parse().ok())
        .expect("a grant");
    let other = [1, 2].into_iter().find(|u| *u != granted).expect("other");
    m.world.borrow_mut().freeze(other, true);
    let starts = m.world.borrow().servers[&granted].starts;
    let r = m.run(granted, Event::ConfigChanged);
    assert_eq!(
        m.world.borrow().servers[&granted].starts,
        starts,
        "{}",
        m.describe()
    );
    assert!(r.deferred().is_some(), "deferred: {:?}", r.result);
    m.world.borrow_mut().freeze(other, false);
    m.settle();
    assert!(m.world.borrow().servers[&granted].starts > starts);
}

#[test]
fn a_server_that_does_not_serve_after_its_restart_stops_the_roll() {
    let mut m = Model::deployed(3);
    let before = m.world.borrow().started.len();
    m.world.borrow_mut().no_serve_on_start.insert(1);
    m.world.borrow_mut().no_serve_on_start.insert(2);
    m.config("tick-time", serde_json::json!(3000));
    m.settle();
    let order = starts_after(&m, before);
    assert_eq!(
        order.len(),
        1,
        "the roll stops at the first: {order:?}\n{}",
        m.describe()
    );
    let stuck = order[0];
    let s = m.status(stuck);
    assert_eq!(s.kind, StatusKind::Blocked, "{s:?}");
    assert!(s.message.starts_with("rolling restart stopped"), "{s:?}");
}

#[test]
fn the_restart_action_rolls_every_server_once() {
    let mut m = Model::deployed(3);
    let before = m.world.borrow().started.len();
    let r = m.act(0, "restart", &[]);
    assert!(r.is_ok(), "{r:?}");
    m.settle();
    let order = starts_after(&m, before);
    assert_eq!(order.len(), 3, "{order:?}");
    assert_eq!(order.last(), Some(&0));
}

#[test]
fn the_restart_action_runs_on_the_leader_only() {
    let mut m = Model::deployed(3);
    let r = m.act(1, "restart", &[]);
    assert!(
        r.as_ref()
            .is_err_and(|e| e.contains("must run on the leader")),
        "{r:?}"
    );
}
