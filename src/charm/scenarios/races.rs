//! The races fixed under concurrency (issue 14), as states a hook can meet.

use super::super::testing::*;
use charm_engine::juju::tools::StatusKind;
use charm_engine::juju::Event;

#[test]
fn r7_a_crashed_joiner_that_zookeeper_lists_restarts_as_the_voter_it_is() {
    let mut m = Model::deployed(3);
    let u = m.add_unit();
    m.settle();
    assert!(m.voters().contains(&u));
    // The leader's ledger write has not reached unit 3 (it committed the reconfig, not yet the
    // bag), and unit 3's server died.
    m.unit_mut(u)
        .juju
        .relations
        .get_mut(&PEER)
        .and_then(|r| r.bags.get_mut(APP))
        .map(|b| b.remove(&u.to_string()));
    m.world.borrow_mut().kill(u);
    m.unit_mut(u).juju.unit_statuses.clear();
    m.run(u, Event::UpdateStatus);
    let shown = m.shown(u);
    assert!(
        shown
            .iter()
            .any(|s| s == "restarting zookeeper server (it was not running)"),
        "{shown:?}"
    );
    assert!(!shown.iter().any(|s| s.contains("joining")), "{shown:?}");
    assert!(m.voters().contains(&u));
}

#[test]
fn a_deployment_led_by_a_higher_unit_converges_without_update_status() {
    // In several hook orders (R11's exact order, the leader's last hook being the one that
    // adds the unit before it, is reproduced end to end in tests/races.rs).
    for (leader, first, restart_first) in [
        (1, None, false),
        (2, None, false),
        (1, Some(1), true),
        (2, Some(2), true),
    ] {
        let mut m = Model::new(3);
        m.set_leader(leader);
        m.first = first;
        m.restart_hooks_first = restart_first;
        m.deploy_hooks();
        m.settle();
        assert_eq!(
            m.voters(),
            [0, 1, 2].into(),
            "leader {leader}, first {first:?}, restart first {restart_first}: {}",
            m.describe()
        );
        assert!(
            !m.history.iter().any(|r| r.event == Event::UpdateStatus),
            "needed update-status"
        );
        for u in 0..3 {
            assert_eq!(m.status(u).kind, StatusKind::Active);
        }
    }
}

#[test]
fn r4_a_roll_interrupted_by_a_new_change_re_issues_the_grant_to_the_same_unit() {
    let mut m = Model::deployed(3);
    m.set_config("tick-time", serde_json::json!(3000));
    m.run(0, Event::ConfigChanged);
    let first = m.bag(0, RESTART, APP);
    m.set_config("tick-time", serde_json::json!(4000));
    m.run(0, Event::ConfigChanged);
    let second = m.bag(0, RESTART, APP);
    assert_eq!(first.get("granted"), second.get("granted"));
    assert_ne!(first.get("granted-for"), second.get("granted-for"));
    m.settle();
    let w = m.world.borrow();
    assert!(w.servers.values().all(|s| s.starts <= 3), "{:?}", w.servers);
}

#[test]
fn leadership_moving_mid_roll_finishes_the_roll_once() {
    let mut m = Model::deployed(3);
    let before = m.world.borrow().started.len();
    m.set_config("init-limit", serde_json::json!(9));
    m.run(0, Event::ConfigChanged);
    m.set_leader(2);
    m.run(2, Event::LeaderElected);
    m.run(1, Event::ConfigChanged);
    m.run(2, Event::ConfigChanged);
    m.settle();
    let started = m.world.borrow().started[before..].to_vec();
    let mut sorted = started.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 1, 2], "{started:?}\n{}", m.describe());
}
