//! Every hook kind on a converged ensemble, and the hooks that carry their own meaning.

use super::super::testing::*;
use charm_engine::juju::context::{SecretPhase, StoragePhase};
use charm_engine::juju::tools::StatusKind;
use charm_engine::juju::{Event, RelationPhase, UnitName};

fn quiet_hooks() -> Vec<Event> {
    let one = UnitName::parse("zookeeper/1");
    let two = UnitName::parse("zookeeper/2");
    vec![
        Event::Install,
        Event::Start,
        Event::ConfigChanged,
        Event::UpdateStatus,
        Event::UpgradeCharm,
        Event::LeaderSettingsChanged,
        relation_event("cluster", RelationPhase::Created, PEER, None),
        relation_event("cluster", RelationPhase::Joined, PEER, two.as_ref()),
        relation_event("cluster", RelationPhase::Changed, PEER, one.as_ref()),
        relation_event("cluster", RelationPhase::Changed, PEER, None),
        relation_event("restart", RelationPhase::Changed, RESTART, two.as_ref()),
        Event::Secret {
            phase: SecretPhase::Changed,
            id: "secret:fake0001".into(),
            label: None,
            revision: Some(1),
        },
        Event::Storage {
            name: "data".into(),
            phase: StoragePhase::Attached,
            id: Some("data/0".into()),
            location: None,
        },
        Event::Unknown {
            hook: "pre-series-upgrade".into(),
        },
    ]
}

#[test]
fn every_quiet_hook_on_a_converged_ensemble_changes_nothing() {
    for leader in [false, true] {
        let mut m = Model::deployed(3);
        let u = if leader { 0 } else { 1 };
        let world_before = format!("{:?}", m.world.borrow());
        for ev in quiet_hooks() {
            let r = m.run(u, ev.clone());
            assert!(r.result.is_ok(), "{ev}: {:?}", r.result);
            assert_eq!(r.deferred(), None, "{ev}");
            assert_eq!(
                m.status(u).kind,
                StatusKind::Active,
                "{ev}: {:?}",
                m.status(u)
            );
            let writes: Vec<&String> = r
                .calls
                .iter()
                .filter(|c| ["relation-set", "secret-set", "secret-add"].contains(&c.as_str()))
                .collect();
            assert!(writes.is_empty(), "{ev} on unit {u} wrote: {writes:?}");
        }
        m.settle();
        assert_eq!(
            format!("{:?}", m.world.borrow()),
            world_before,
            "leader={leader}"
        );
    }
}

#[test]
fn an_unknown_hook_is_done_without_a_reconcile() {
    let mut m = Model::deployed(1);
    let r = m.run(
        0,
        Event::Unknown {
            hook: "future-hook".into(),
        },
    );
    assert!(r.result.is_ok());
    assert!(!r.calls.iter().any(|c| c == "is-leader"), "{:?}", r.calls);
}

#[test]
fn storage_detaching_makes_the_unit_leave_the_quorum() {
    let mut m = Model::deployed(3);
    m.run(
        2,
        Event::Storage {
            name: "data".into(),
            phase: StoragePhase::Detaching,
            id: Some("data/2".into()),
            location: None,
        },
    );
    assert_eq!(
        m.status(2).message,
        "leaving the zookeeper quorum",
        "{}",
        m.describe()
    );
    assert_eq!(
        m.voters(),
        [0, 1].into(),
        "it removed itself: {}",
        m.describe()
    );
}

#[test]
fn stop_leaves_the_quorum_and_stops_the_server() {
    let mut m = Model::deployed(3);
    let r = m.run(1, Event::Stop);
    assert!(r.result.is_ok());
    assert!(!m.world.borrow().servers[&1].running);
    assert_eq!(m.voters(), [0, 2].into(), "{}", m.describe());
    assert_eq!(m.status(1).message, "leaving the zookeeper quorum");
}

#[test]
fn remove_stops_the_server() {
    let mut m = Model::deployed(1);
    m.run(0, Event::Remove);
    assert!(!m.world.borrow().servers[&0].running);
}

#[test]
fn upgrade_charm_rerenders_the_files_without_a_restart_when_nothing_changed() {
    let mut m = Model::deployed(3);
    let cfg = crate::workload::Workload::paths(&m.unit(1).workload).zoo_cfg();
    std::fs::write(&cfg, "tickTime=1\n").expect("write");
    let before = m.world.borrow().started.len();
    m.run(1, Event::UpgradeCharm);
    let text = std::fs::read_to_string(&cfg).expect("read");
    assert!(text.contains("tickTime=2000"), "{text}");
    assert_eq!(m.world.borrow().started.len(), before);
}

#[test]
fn a_hook_that_dies_after_a_reconfig_commits_nothing_and_the_next_one_records_it() {
    let mut m = Model::deployed(3);
    let u = m.add_unit();
    // The leader's next bag write (the ledger, after the reconfig) fails: the hook errors.
    m.unit_mut(0).juju.fail_call = Some(("relation-set".into(), 1));
    m.settle();
    let failed = m
        .history
        .iter()
        .find(|r| r.unit == 0 && r.result.is_err())
        .expect("the leader's hook failed");
    assert!(failed
        .result
        .as_ref()
        .is_err_and(|e| e.contains("connection is shut down")));
    // Juju retries the failed hook; here the next hook does the same.
    m.run(0, Event::UpdateStatus);
    m.settle();
    assert!(m.voters().contains(&u), "{}", m.describe());
    assert_eq!(
        m.peer_app().get(&u.to_string()).map(String::as_str),
        Some("added")
    );
    assert_eq!(
        m.bag(1, PEER, APP).get(&u.to_string()).map(String::as_str),
        Some("added")
    );
    assert_eq!(
        m.world
            .borrow()
            .applied
            .iter()
            .filter(|c| **c == crate::quorum::plan::Change::Add(u))
            .count(),
        1,
        "one reconfig"
    );
    assert_eq!(m.status(u).kind, StatusKind::Active);
}
