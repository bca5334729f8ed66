//! Quorum lifecycle: bootstrap, joins in order, additions, removals, crashes, leadership.

use super::super::testing::*;
use charm_engine::juju::tools::{LogLevel, StatusKind};
use charm_engine::juju::Event;

fn active(m: &Model, u: u32) {
    assert_eq!(
        m.status(u).kind,
        StatusKind::Active,
        "unit {u} is {:?}\n{}",
        m.status(u),
        m.describe()
    );
}

#[test]
fn one_unit_bootstraps_and_is_active() {
    let m = Model::deployed(1);
    assert_eq!(m.voters(), [0].into());
    active(&m, 0);
    assert_eq!(m.peer_app().get("0").map(String::as_str), Some("added"));
    assert_eq!(
        m.app_status().map(|s| s.message),
        Some("1/1 members in quorum".into())
    );
}

#[test]
fn three_units_become_three_voters_one_reconfig_each() {
    let m = Model::deployed(3);
    assert_eq!(m.voters(), [0, 1, 2].into(), "{}", m.describe());
    for u in 0..3 {
        active(&m, u);
        assert_eq!(
            m.bag(u, PEER, &unit_name(u))
                .get("state")
                .map(String::as_str),
            Some("started")
        );
    }
    let w = m.world.borrow();
    assert_eq!(
        w.applied.len(),
        2,
        "unit 0 bootstraps, 1 and 2 are added once each"
    );
    assert!(w.servers.values().all(|s| s.starts == 1), "{:?}", w.servers);
}

#[test]
fn five_units_become_five_voters() {
    let m = Model::deployed(5);
    assert_eq!(m.voters(), [0, 1, 2, 3, 4].into(), "{}", m.describe());
    assert_eq!(
        m.app_status().map(|s| s.message),
        Some("5/5 members in quorum".into())
    );
}

#[test]
fn the_peer_bag_carries_the_incumbents_identity_keys() {
    let m = Model::deployed(1);
    let bag = m.bag(0, PEER, &unit_name(0));
    assert_eq!(bag.get("ip"), Some(&address(0)));
    assert!(bag.contains_key("hostname") && bag.contains_key("fqdn"));
    let app = m.peer_app();
    assert!(app
        .get("internal-secret")
        .is_some_and(|u| u.starts_with("secret:")));
}

#[test]
fn a_unit_without_the_peer_relation_says_so() {
    let mut m = Model::new(1);
    m.unit_mut(0).juju.relations.clear();
    m.run(0, Event::Install);
    assert_eq!(m.status(0).message, "no peer relation yet");
    assert!(m.world.borrow().servers.is_empty());
}

#[test]
fn a_non_leader_waits_for_the_credentials() {
    let mut m = Model::new(2);
    m.run(1, Event::Install);
    assert_eq!(
        m.status(1).message,
        "waiting for leader to create internal user credentials"
    );
    assert!(m.world.borrow().servers.is_empty());
}

#[test]
fn a_higher_unit_waits_for_the_lowest_to_bootstrap() {
    let mut m = Model::new(2);
    // Unit 0 leads and creates the passwords, but its server never comes up.
    m.world.borrow_mut().exit_on_start.insert(0);
    m.run(0, Event::LeaderElected);
    m.run(1, Event::Install);
    assert_eq!(
        m.status(1).message,
        "waiting for the lowest-numbered unit to bootstrap the ensemble",
        "{}",
        m.describe()
    );
}

#[test]
fn units_join_in_ascending_order() {
    let mut m = Model::new(3);
    m.run(0, Event::Install);
    m.run(0, Event::LeaderElected);
    assert_eq!(m.voters(), [0].into());
    m.run(2, Event::Install);
    assert_eq!(
        m.status(2).message,
        "other units starting first",
        "{}",
        m.describe()
    );
    assert!(!m.world.borrow().servers.contains_key(&2));
    m.settle();
    assert_eq!(m.voters(), [0, 1, 2].into(), "{}", m.describe());
}

#[test]
fn a_unit_without_an_address_waits_for_it() {
    let mut m = Model::new(1);
    for rel in m.unit_mut(0).juju.relations.values_mut() {
        rel.bags.insert(unit_name(0), Default::default());
    }
    m.run(0, Event::Install);
    assert_eq!(
        m.status(0).message,
        "waiting for unit addresses on the cluster relation",
        "{}",
        m.describe()
    );
}

#[test]
fn adding_a_unit_adds_one_voter() {
    let mut m = Model::deployed(3);
    let u = m.add_unit();
    m.settle();
    assert_eq!(m.voters(), [0, 1, 2, u].into(), "{}", m.describe());
    active(&m, u);
    assert_eq!(
        m.peer_app().get(&u.to_string()).map(String::as_str),
        Some("added")
    );
}

#[test]
fn removing_a_unit_removes_its_voter_and_stops_its_server() {
    let mut m = Model::deployed(3);
    m.remove_unit(2);
    m.settle();
    assert_eq!(m.voters(), [0, 1].into(), "{}", m.describe());
    assert!(!m.world.borrow().servers[&2].running);
    assert_eq!(m.peer_app().get("2").map(String::as_str), Some("removed"));
}

#[test]
fn removing_the_quorum_leader_moves_leadership_and_membership() {
    let mut m = Model::deployed(3);
    assert_eq!(m.world.borrow().leader, Some(0));
    // Juju leadership goes to unit 1 first, as it would before unit 0 goes.
    m.set_leader(1);
    m.run(1, Event::LeaderElected);
    m.remove_unit(0);
    m.settle();
    assert_eq!(m.voters(), [1, 2].into(), "{}", m.describe());
    assert!(m.world.borrow().leader.is_some_and(|l| l != 0));
}

#[test]
fn a_dying_unit_shows_that_it_leaves() {
    let mut m = Model::deployed(3);
    m.remove_unit(2);
    let last = m
        .history
        .iter()
        .rev()
        .find(|r| r.unit == 2 && r.event == Event::Stop)
        .expect("stop ran");
    assert!(last.result.is_ok());
    // The unit is gone from the model; its last status was set in stop.
    assert!(!m.units.contains_key(&2));
}

#[test]
fn a_crashed_server_is_started_again_by_the_next_hook() {
    let mut m = Model::deployed(3);
    m.world.borrow_mut().kill(1);
    m.run(1, Event::UpdateStatus);
    let w = m.world.borrow();
    assert!(w.servers[&1].running, "{}", m.describe());
    assert_eq!(w.servers[&1].starts, 2);
    assert_eq!(w.voters(), [0, 1, 2].into());
}

#[test]
fn a_server_that_exits_after_start_blocks_with_its_log() {
    let mut m = Model::deployed(3);
    m.world.borrow_mut().kill(2);
    m.world.borrow_mut().exit_on_start.insert(2);
    m.run(2, Event::UpdateStatus);
    let s = m.status(2);
    assert_eq!(s.kind, StatusKind::Blocked, "{s:?}");
    assert!(
        s.message.starts_with("zookeeper service not running"),
        "{s:?}"
    );
}

#[test]
fn a_failed_install_blocks_and_the_next_hook_tries_again() {
    let mut m = Model::new(1);
    m.world.borrow_mut().install_fails.insert(0);
    m.run(0, Event::Install);
    let s = m.status(0);
    assert_eq!(s.kind, StatusKind::Blocked);
    assert!(
        s.message.starts_with("unable to install zookeeper service"),
        "{s:?}"
    );
    m.world.borrow_mut().install_fails.clear();
    m.run(0, Event::UpdateStatus);
    active(&m, 0);
}

#[test]
fn a_server_without_quorum_is_not_serving() {
    let mut m = Model::deployed(3);
    m.world.borrow_mut().kill(0);
    m.world.borrow_mut().freeze(1, true);
    m.run(2, Event::UpdateStatus);
    assert_eq!(
        m.status(2).message,
        "zookeeper server not serving requests yet (syncing or no quorum)",
        "{}",
        m.describe()
    );
}

#[test]
fn the_app_status_counts_serving_voters() {
    let mut m = Model::deployed(3);
    m.world.borrow_mut().freeze(2, true);
    m.run(0, Event::UpdateStatus);
    let app = m.app_status().expect("leader sets it");
    assert_eq!(app.kind, StatusKind::Waiting, "{app:?}");
    assert_eq!(app.message, "2/3 members in quorum");
}

#[test]
fn no_quorum_blocks_the_application() {
    let mut m = Model::deployed(3);
    m.world.borrow_mut().freeze(1, true);
    m.world.borrow_mut().freeze(2, true);
    m.run(0, Event::UpdateStatus);
    let app = m.app_status().expect("leader sets it");
    assert_eq!(app.kind, StatusKind::Blocked, "{app:?}");
    assert!(app.message.starts_with("no quorum"), "{app:?}");
}

#[test]
fn a_converged_update_status_writes_nothing() {
    let mut m = Model::deployed(3);
    for u in 0..3 {
        let r = m.run(u, Event::UpdateStatus);
        let writes: Vec<&String> = r
            .calls
            .iter()
            .filter(|c| {
                [
                    "relation-set",
                    "status-set",
                    "secret-set",
                    "secret-add",
                    "application-version-set",
                ]
                .contains(&c.as_str())
            })
            .collect();
        assert!(writes.is_empty(), "unit {u} wrote {writes:?}");
        assert!(
            r.calls.len() <= 10,
            "unit {u} made {} calls: {:?}",
            r.calls.len(),
            r.calls
        );
    }
}

#[test]
fn a_new_juju_leader_takes_over_without_changes() {
    let mut m = Model::deployed(3);
    m.set_leader(2);
    m.run(2, Event::LeaderElected);
    m.settle();
    assert_eq!(m.voters(), [0, 1, 2].into());
    assert_eq!(m.world.borrow().applied.len(), 2, "no membership change");
    assert_eq!(
        m.app_status().map(|s| s.message),
        Some("3/3 members in quorum".into())
    );
}

#[test]
fn the_workload_version_is_set_once() {
    let mut m = Model::deployed(1);
    assert_eq!(m.unit(0).juju.workload_version.as_deref(), Some("3.8.0"));
    let r = m.run(0, Event::UpdateStatus);
    assert!(!r.calls.contains(&"application-version-set".to_string()));
}

#[test]
fn nothing_is_logged_as_an_error_in_a_clean_deployment() {
    let m = Model::deployed(3);
    for u in 0..3 {
        assert!(
            m.logs(u, LogLevel::Error).is_empty(),
            "unit {u}: {:?}",
            m.logs(u, LogLevel::Error)
        );
    }
}

/// What converged hooks cost in hook tools (the bench measures the same under jujusim). Before
/// the read cache moved into the hook tools: 10 / 6 / 6 / 7 for the leader and 6 / 6 / 7 for
/// another unit.
#[test]
fn converged_hooks_make_no_more_tool_calls_than_before() {
    let mut m = Model::deployed(3);
    let one = charm_engine::juju::UnitName::parse("zookeeper/1");
    let changed = relation_event(
        "cluster",
        charm_engine::juju::RelationPhase::Changed,
        PEER,
        one.as_ref(),
    );
    let table = [
        (0, Event::UpdateStatus, 9),
        (0, changed.clone(), 6),
        (0, Event::ConfigChanged, 7),
        (1, Event::UpdateStatus, 6),
        (1, changed, 6),
        (1, Event::ConfigChanged, 7),
    ];
    for (u, ev, most) in table {
        m.run(u, ev.clone());
        let r = m.run(u, ev.clone());
        assert!(
            r.calls.len() <= most,
            "unit {u} {ev}: {} calls, at most {most}: {:?}",
            r.calls.len(),
            r.calls
        );
    }
}

#[test]
fn a_server_whose_data_differs_from_the_leaders_blocks_until_it_no_longer_does() {
    let mut m = Model::deployed(3);
    m.world.borrow_mut().digest_mismatches.insert(2, 5);
    m.run(2, Event::UpdateStatus);
    let s = m.status(2);
    assert_eq!(s.kind, StatusKind::Blocked, "{s:?}");
    assert!(
        s.message
            .starts_with("zookeeper data differs from the quorum leader's (digest mismatches)"),
        "{s:?}"
    );
    m.world.borrow_mut().digest_mismatches.clear();
    m.run(2, Event::UpdateStatus);
    assert_eq!(m.status(2).kind, StatusKind::Active);
}

#[test]
fn a_joined_server_the_leader_has_not_added_says_so() {
    let mut m = Model::deployed(3);
    for _ in 0..20 {
        m.world
            .borrow_mut()
            .refusals
            .push_back(super::super::ensemble_io::ChangeError::Failed(
                "refused".into(),
            ));
    }
    let u = m.add_unit();
    m.settle();
    assert!(!m.voters().contains(&u), "{}", m.describe());
    assert_eq!(
        m.status(u).message,
        "unit not in the zookeeper quorum yet; the leader is adding it"
    );
    m.world.borrow_mut().refusals.clear();
    m.run(m.leader(), Event::UpdateStatus);
    m.run(u, Event::UpdateStatus);
    assert!(m.voters().contains(&u));
    assert_eq!(m.status(u).kind, StatusKind::Active);
}

#[test]
fn starting_servers_show_what_they_do() {
    let m = Model::deployed(2);
    assert!(
        m.shown(0)
            .contains(&"starting zookeeper server (bootstrapping the ensemble)".to_string()),
        "{:?}",
        m.shown(0)
    );
    assert!(
        m.shown(1)
            .contains(&"starting zookeeper server (joining the ensemble)".to_string()),
        "{:?}",
        m.shown(1)
    );
}
