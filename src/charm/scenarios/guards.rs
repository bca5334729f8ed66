//! Guards: what is not evidence, and states the charm must refuse to act on.

use super::super::testing::*;
use crate::workload::Workload;
use charm_engine::juju::tools::StatusKind;
use charm_engine::juju::Event;

#[test]
fn an_empty_peer_list_is_not_evidence_of_departure() {
    // LP#2053055: relation-list can come back empty for a moment.
    let mut m = Model::deployed(3);
    for id in [PEER, RESTART] {
        let r = m.unit_mut(0).juju.relations.get_mut(&id).expect("relation");
        r.units.clear();
        r.bags
            .retain(|owner, _| owner == APP || owner == &unit_name(0));
    }
    m.run(0, Event::UpdateStatus);
    m.run(0, Event::LeaderElected);
    assert_eq!(m.voters(), [0, 1, 2].into(), "{}", m.describe());
    assert!(m
        .world
        .borrow()
        .applied
        .iter()
        .all(|c| matches!(c, crate::quorum::plan::Change::Add(_))));
}

#[test]
fn only_a_departure_hook_is_evidence_and_then_the_member_goes() {
    let mut m = Model::deployed(3);
    m.remove_unit(1);
    assert_eq!(m.voters(), [0, 2].into(), "{}", m.describe());
}

#[test]
fn a_non_leader_that_saw_a_departure_may_remove_the_member() {
    let mut m = Model::deployed(3);
    // The leader does not run (its agent is down); unit 1 saw unit 2 depart.
    m.world.borrow_mut().kill(2);
    m.depart(1, 2);
    assert_eq!(m.voters(), [0, 1].into(), "{}", m.describe());
}

#[test]
fn a_unit_lower_than_a_member_cannot_join_and_says_why() {
    let mut m = Model::deployed(3);
    m.remove_unit(1);
    m.settle();
    m.add_unit_as(1);
    m.settle();
    let s = m.status(1);
    assert_eq!(
        s.kind,
        StatusKind::Blocked,
        "{s:?}\n{}",
        m.describe()
            .lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        s.message
            .starts_with("cannot join: unit 2 is already a member"),
        "{s:?}"
    );
    assert!(!m.voters().contains(&1));
}

#[test]
fn invalid_config_blocks_and_keeps_the_last_good_files() {
    let mut m = Model::deployed(3);
    let cfg = m.unit(0).workload.paths().zoo_cfg();
    let before = std::fs::read_to_string(&cfg).expect("zoo.cfg");
    m.config("tick-time", serde_json::json!(5));
    for u in 0..3 {
        let s = m.status(u);
        assert_eq!(s.kind, StatusKind::Blocked, "{s:?}");
        assert!(s.message.starts_with("invalid config tick-time=5"), "{s:?}");
    }
    assert_eq!(std::fs::read_to_string(&cfg).expect("zoo.cfg"), before);
    let app = m.app_status().expect("app status");
    assert_eq!(app.kind, StatusKind::Blocked, "{app:?}");
    m.config("tick-time", serde_json::json!(2000));
    m.settle();
    for u in 0..3 {
        assert_eq!(m.status(u).kind, StatusKind::Active, "{}", m.describe());
    }
}

#[test]
fn a_server_down_under_invalid_config_restarts_with_its_last_good_files() {
    let mut m = Model::deployed(3);
    m.config("init-limit", serde_json::json!(0));
    m.world.borrow_mut().kill(1);
    m.run(1, Event::UpdateStatus);
    assert!(m.world.borrow().servers[&1].running, "{}", m.describe());
    assert!(m
        .status(1)
        .message
        .starts_with("invalid config init-limit=0"));
}

#[test]
fn a_dying_unit_starts_nothing() {
    let mut m = Model::deployed(3);
    m.remove_unit(2);
    // A late hook of the gone unit would find itself dying: modelled by its state file.
    assert!(!m.world.borrow().servers[&2].running);
    assert_eq!(m.world.borrow().servers[&2].starts, 1);
}

#[test]
fn a_corrupt_unit_state_file_is_moved_aside_and_rebuilt() {
    let mut m = Model::deployed(3);
    let dir = m.unit(1).charm_dir.clone();
    std::fs::write(dir.join(".zookeeper-unit.json"), b"{not json").expect("write");
    m.run(1, Event::UpdateStatus);
    // What the server loaded is forgotten: it is restarted once, in turn, to be sure.
    m.settle();
    assert_eq!(
        m.status(1).kind,
        StatusKind::Active,
        "{:?} {}",
        m.status(1),
        m.describe()
    );
    assert!(m.world.borrow().servers[&1].starts <= 2);
    assert_eq!(m.voters(), [0, 1, 2].into());
    let aside = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(aside);
}

#[test]
fn a_corrupt_deferred_queue_is_moved_aside_not_fatal() {
    let mut m = Model::deployed(1);
    let dir = m.unit(0).charm_dir.clone();
    std::fs::write(charm_engine::queue::Queue::path_in(&dir), b"\x00garbage").expect("write");
    let r = m.run(0, Event::UpdateStatus);
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert_eq!(m.status(0).kind, StatusKind::Active);
}
