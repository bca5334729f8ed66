//! The three deferral reasons, the queue, and the holds that are not transient.

use super::super::ensemble_io::ChangeError;
use super::super::testing::*;
use crate::quorum::plan::Hold;
use charm_engine::juju::tools::StatusKind;
use charm_engine::juju::Event;

/// A 3-unit ensemble where the leader's next membership change gets `answer`.
fn refused_addition(answer: Hold) -> (Model, u32) {
    let mut m = Model::deployed(3);
    m.world
        .borrow_mut()
        .refusals
        .push_back(ChangeError::Transient(answer));
    let u = m.add_unit();
    (m, u)
}

fn deferred_with(m: &Model, u: u32, reason: &str) {
    let q = queue_of(&m.unit(u).charm_dir);
    assert!(
        q.iter().any(|(_, r)| r.contains(reason)),
        "unit {u}'s queue: {q:?}\n{}",
        m.describe()
    );
    let s = m.status(u);
    assert_eq!(s.kind, StatusKind::Waiting, "{s:?}");
    assert!(
        s.message.contains(reason) && s.message.ends_with("retrying at the next hook"),
        "{s:?}"
    );
}

/// Runs the hooks Juju owes until the scripted refusal was given.
fn leader_hook_until_deferred(m: &mut Model) {
    for _ in 0..20 {
        if m.world.borrow().refusals.is_empty() {
            return;
        }
        let Some((u, p)) = m
            .units
            .iter()
            .find_map(|(u, x)| x.pending.iter().next().map(|p| (*u, p.clone())))
        else {
            return;
        };
        m.unit_mut(u).pending.remove(&p);
        let ev = relation_event(
            if p.0 == PEER { "cluster" } else { "restart" },
            charm_engine::juju::RelationPhase::Changed,
            p.0,
            charm_engine::juju::UnitName::parse(&p.1).as_ref(),
        );
        m.run(u, ev);
    }
}

#[test]
fn members_syncing_defers_and_the_replay_completes() {
    let (mut m, u) = refused_addition(Hold::MembersSyncing);
    leader_hook_until_deferred(&mut m);
    deferred_with(&m, 0, "members syncing");
    m.settle();
    assert!(m.voters().contains(&u), "{}", m.describe());
    assert!(queue_of(&m.unit(0).charm_dir).is_empty());
    assert_eq!(m.status(0).kind, StatusKind::Active);
}

#[test]
fn no_quorum_leader_defers() {
    let (mut m, u) = refused_addition(Hold::NoQuorumLeader);
    leader_hook_until_deferred(&mut m);
    deferred_with(&m, 0, "no quorum leader");
    m.settle();
    assert!(m.voters().contains(&u));
}

/// A joiner that said it started and stopped serving before the leader adds it.
fn stalled_joiner() -> (Model, u32) {
    let mut m = Model::deployed(3);
    let u = m.add_unit();
    m.world.borrow_mut().freeze(u, true);
    m.settle();
    (m, u)
}

#[test]
fn member_not_ready_defers_until_the_joiner_serves() {
    let (mut m, u) = stalled_joiner();
    assert!(!m.voters().contains(&u));
    deferred_with(&m, 0, "member not ready");
    m.world.borrow_mut().freeze(u, false);
    m.run(0, Event::UpdateStatus);
    assert!(m.voters().contains(&u), "{}", m.describe());
    assert!(queue_of(&m.unit(0).charm_dir).is_empty());
}

#[test]
fn a_refused_change_that_is_not_transient_blocks_without_deferring() {
    let mut m = Model::deployed(3);
    m.world
        .borrow_mut()
        .refusals
        .push_back(ChangeError::Failed("authentication failed".into()));
    let u = m.add_unit();
    leader_hook_until_deferred(&mut m);
    let s = m.status(0);
    assert_eq!(s.kind, StatusKind::Blocked, "{s:?}\n{}", m.describe());
    assert!(s.message.contains("authentication failed"), "{s:?}");
    assert!(queue_of(&m.unit(0).charm_dir).is_empty());
    // The next hook tries again.
    m.run(0, Event::UpdateStatus);
    assert!(m.voters().contains(&u));
}

#[test]
fn a_backlog_of_deferred_events_is_one_entry_and_one_reconcile_per_hook() {
    let (mut m, u) = stalled_joiner();
    // More events arrive while the joiner does not serve.
    m.run(0, Event::ConfigChanged);
    let r = m.run(0, Event::UpdateStatus);
    let q = queue_of(&m.unit(0).charm_dir);
    assert_eq!(
        q.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
        [Event::Reconcile],
        "{q:?}"
    );
    let summary = r.result.expect("ok");
    assert_eq!(summary.ran.len(), 1, "one reconcile: {:?}", summary.ran);
    m.world.borrow_mut().freeze(u, false);
    let r = m.run(0, Event::UpdateStatus);
    assert!(
        queue_of(&m.unit(0).charm_dir).is_empty(),
        "{}",
        m.describe()
    );
    let summary = r.result.expect("ok");
    assert_eq!(summary.ran.len(), 1);
    assert!(summary
        .ran
        .iter()
        .all(|(_, o, _)| *o == charm_engine::Outcome::Done));
    assert!(m.voters().contains(&u));
}

#[test]
fn an_action_never_defers_nor_replays_the_queue() {
    let (mut m, _) = stalled_joiner();
    let before = queue_of(&m.unit(0).charm_dir);
    assert!(!before.is_empty());
    let r = m.run(0, action("get-quorum-status"));
    let summary = r.result.expect("ok");
    assert_eq!(
        summary.ran.len(),
        1,
        "only the action ran: {:?}",
        summary.ran
    );
    assert_eq!(queue_of(&m.unit(0).charm_dir), before);
}

#[test]
fn removing_a_member_that_would_lose_the_majority_is_held_not_deferred() {
    let mut m = Model::deployed(5);
    m.world.borrow_mut().freeze(1, true);
    m.world.borrow_mut().freeze(2, true);
    // Without 4 the voters would be 0-3, of which only 0 and 3 serve.
    m.depart(0, 4);
    let s = m.status(0);
    assert_eq!(s.kind, StatusKind::Blocked, "{s:?}\n{}", m.describe());
    assert_eq!(
        s.message,
        "removing unit 4 now would leave the quorum without a live majority"
    );
    assert!(m.voters().contains(&4));
    assert!(
        queue_of(&m.unit(0).charm_dir).is_empty(),
        "held, not deferred"
    );
    m.world.borrow_mut().freeze(1, false);
    m.run(0, Event::UpdateStatus);
    assert_eq!(m.voters(), [0, 1, 2, 3].into(), "{}", m.describe());
}
