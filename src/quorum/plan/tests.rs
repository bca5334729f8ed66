use super::*;

fn peers(list: &[(UnitId, bool)]) -> BTreeMap<UnitId, PeerUnit> {
    list.iter()
        .map(|(u, started)| {
            (
                *u,
                PeerUnit {
                    address: Some(format!("10.0.0.{}", u + 10)),
                    started: *started,
                },
            )
        })
        .collect()
}

fn ledger(list: &[(UnitId, Ledger)]) -> BTreeMap<UnitId, Ledger> {
    list.iter().copied().collect()
}

fn ensemble(leader: Option<UnitId>, voters: &[UnitId], live: &[UnitId]) -> EnsembleState {
    EnsembleState {
        leader,
        members: voters
            .iter()
            .map(|u| {
                (
                    *u,
                    Member {
                        address: format!("10.0.0.{}", u + 10),
                        voting: true,
                    },
                )
            })
            .collect(),
        version: Some(0x100000000),
        syncing: false,
        catching_up: BTreeSet::new(),
        broadcasting: live.iter().copied().collect(),
    }
}

struct Case {
    me: UnitId,
    is_leader: bool,
    dying: bool,
    peers: BTreeMap<UnitId, PeerUnit>,
    ledger: BTreeMap<UnitId, Ledger>,
    departed: BTreeSet<UnitId>,
    credentials: bool,
    local: LocalServer,
    ensemble: Option<EnsembleState>,
    planned: Option<BTreeSet<UnitId>>,
}

impl Case {
    fn new(me: UnitId, is_leader: bool) -> Case {
        Case {
            me,
            is_leader,
            dying: false,
            peers: peers(&[(me, false)]),
            ledger: BTreeMap::new(),
            departed: BTreeSet::new(),
            credentials: true,
            local: LocalServer::default(),
            ensemble: None,
            planned: None,
        }
    }
    fn run(&self) -> Plan {
        plan(&Input {
            me: self.me,
            is_leader: self.is_leader,
            dying: self.dying,
            peers: &self.peers,
            ledger: &self.ledger,
            departed: &self.departed,
            credentials: self.credentials,
            local: self.local,
            ensemble: self.ensemble.as_ref(),
            planned: self.planned.as_ref(),
        })
        .unwrap()
    }
}

const RUNNING: LocalServer = LocalServer {
    initialized: true,
    running: true,
};

#[test]
fn the_lowest_planned_unit_bootstraps_alone_when_nothing_started() {
    let mut c = Case::new(0, false);
    c.peers = peers(&[(0, false), (1, false), (2, false)]);
    assert_eq!(c.run().local, Some(LocalAction::Bootstrap));
    // Another unit waits, even the Juju leader.
    let mut c = Case::new(2, true);
    c.peers = peers(&[(0, false), (1, false), (2, false)]);
    assert_eq!(c.run().local, Some(LocalAction::Wait(Wait::Bootstrap)));
    // Planned units count even before they appear in the relation.
    let mut c = Case::new(1, true);
    c.peers = peers(&[(1, false)]);
    c.planned = Some([0, 1, 2].into());
    assert_eq!(c.run().local, Some(LocalAction::Wait(Wait::Bootstrap)));
    c.planned = Some([1, 2].into());
    assert_eq!(c.run().local, Some(LocalAction::Bootstrap));
}

#[test]
fn units_join_in_ascending_order() {
    let mut c = Case::new(3, false);
    c.peers = peers(&[(0, true), (1, false), (2, false), (3, false)]);
    c.ledger = ledger(&[(0, Ledger::Added)]);
    assert_eq!(
        c.run().local,
        Some(LocalAction::Wait(Wait::OtherUnitsFirst))
    );
    c.ledger = ledger(&[(0, Ledger::Added), (1, Ledger::Added), (2, Ledger::Added)]);
    assert!(matches!(c.run().local, Some(LocalAction::Join { .. })));
    // A departed lower unit is not waited for.
    c.ledger = ledger(&[(0, Ledger::Added), (1, Ledger::Added)]);
    c.departed = [2].into();
    assert!(matches!(c.run().local, Some(LocalAction::Join { .. })));
}

#[test]
fn a_unit_below_an_existing_member_cannot_join() {
    let mut c = Case::new(1, false);
    c.peers = peers(&[(0, true), (1, false), (2, true)]);
    c.ledger = ledger(&[(0, Ledger::Added), (2, Ledger::Added)]);
    assert_eq!(
        c.run().local,
        Some(LocalAction::Wait(Wait::LowerThanMembers(2)))
    );
    assert!(Wait::LowerThanMembers(2)
        .to_string()
        .contains("remove this unit and add a new one"));
}

#[test]
fn no_credentials_or_address_means_wait() {
    let mut c = Case::new(0, true);
    c.credentials = false;
    assert_eq!(c.run().local, Some(LocalAction::Wait(Wait::Credentials)));
    let mut c = Case::new(0, true);
    c.peers.get_mut(&0).unwrap().address = None;
    assert_eq!(c.run().local, Some(LocalAction::Wait(Wait::OwnAddress)));
}

#[test]
fn joiner_lists_added_and_started_units_as_participants() {
    let mut c = Case::new(2, false);
    c.peers = peers(&[(0, true), (1, true), (2, false), (3, false)]);
    c.ledger = ledger(&[(0, Ledger::Added), (1, Ledger::Added)]);
    match c.run().local {
        Some(LocalAction::Join { participants }) => {
            assert_eq!(participants.keys().copied().collect::<Vec<_>>(), [0, 1]);
            assert_eq!(participants[&0], "10.0.0.10");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_unit_joins_instead_of_bootstrapping_when_another_unit_started() {
    // The bootstrap server is up but the ledger was not written yet: never a second ensemble.
    let mut c = Case::new(1, true);
    c.peers = peers(&[(0, true), (1, false)]);
    c.ledger = ledger(&[(0, Ledger::Added)]);
    assert!(matches!(c.run().local, Some(LocalAction::Join { .. })));
    c.ledger = ledger(&[]);
    assert_eq!(
        c.run().local,
        Some(LocalAction::Wait(Wait::OtherUnitsFirst)),
        "unit 0 is started but not a member yet"
    );
}

#[test]
fn departed_units_are_not_participants() {
    let mut c = Case::new(3, false);
    c.peers = peers(&[(1, true), (3, false)]);
    c.ledger = ledger(&[(0, Ledger::Added), (1, Ledger::Added)]);
    c.departed = [0, 2].into();
    match c.run().local {
        Some(LocalAction::Join { participants }) => {
            assert_eq!(participants.keys().copied().collect::<Vec<_>>(), [1])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn crashed_server_is_restarted_not_removed() {
    let mut c = Case::new(1, true);
    c.peers = peers(&[(0, true), (1, true), (2, true)]);
    c.ledger = ledger(&[(0, Ledger::Added), (1, Ledger::Added), (2, Ledger::Added)]);
    c.local = LocalServer {
        initialized: true,
        running: false,
    };
    c.ensemble = Some(ensemble(Some(2), &[0, 1, 2], &[0, 2]));
    let p = c.run();
    assert_eq!(p.local, Some(LocalAction::Restart));
    assert!(p.changes.is_empty(), "{p:?}");
    assert!(p.held.is_empty(), "{p:?}");
}

/// Unit 3 started a server before (as a joiner), the ledger does not list it, and its server
/// is down.
fn crashed_joiner() -> Case {
    let mut c = Case::new(3, false);
    c.peers = peers(&[(0, true), (1, true), (2, true), (3, true)]);
    c.ledger = ledger(&[(0, Ledger::Added), (1, Ledger::Added), (2, Ledger::Added)]);
    c.local = LocalServer {
        initialized: true,
        running: false,
    };
    c
}

#[test]
fn a_crashed_joiner_that_was_never_added_joins_again() {
    let mut c = crashed_joiner();
    match c.run().local {
        Some(LocalAction::Join { participants }) => {
            assert_eq!(participants.keys().copied().collect::<Vec<_>>(), [0, 1, 2])
        }
        other => panic!("{other:?}"),
    }
    // Once the ledger lists it, a crash is a plain restart.
    c.ledger.insert(3, Ledger::Added);
    assert_eq!(c.run().local, Some(LocalAction::Restart));
}

/// R7 (issue 14): the leader's reconfig added the joiner, its ledger write has not committed,
/// and the joiner's server died: ZooKeeper lists it as a voter, so it restarts as one.
#[test]
fn a_crashed_joiner_that_zookeeper_lists_as_a_voter_restarts_as_one() {
    let mut c = crashed_joiner();
    c.ensemble = Some(ensemble(Some(0), &[0, 1, 2, 3], &[0, 1, 2]));
    assert_eq!(c.run().local, Some(LocalAction::Restart));
}

#[test]
fn leader_adds_started_units_in_numeric_order() {
    let mut c = Case::new(0, true);
    let mut list = vec![(0, true)];
    for u in [2, 10, 3] {
        list.push((u, true));
    }
    c.peers = peers(&list);
    c.local = RUNNING;
    c.ledger = ledger(&[(0, Ledger::Added)]);
    c.ensemble = Some(ensemble(Some(0), &[0], &[0, 2, 3, 10]));
    let p = c.run();
    assert_eq!(p.changes, [Change::Add(2), Change::Add(3), Change::Add(10)]);
    assert!(p.held.is_empty());
}

#[test]
fn an_unready_joiner_holds_itself_and_everyone_after_it() {
    let mut c = Case::new(0, true);
    c.peers = peers(&[(0, true), (1, true), (2, true)]);
    c.local = RUNNING;
    c.ensemble = Some(ensemble(Some(0), &[0], &[0, 2]));
    let p = c.run();
    assert!(p.changes.is_empty());
    assert_eq!(
        p.held,
        [
            (Change::Add(1), Hold::MemberNotReady(1)),
            (Change::Add(2), Hold::MemberNotReady(2))
        ]
    );
    assert_eq!(p.defer_reason(), Some(&Hold::MemberNotReady(1)));
}

#[test]
fn no_leader_or_syncing_holds_changes() {
    let mut c = Case::new(0, true);
    c.peers = peers(&[(0, true), (1, true)]);
    c.local = RUNNING;
    c.ensemble = Some(ensemble(None, &[0], &[1]));
    assert_eq!(c.run().defer_reason(), Some(&Hold::NoQuorumLeader));
    let mut e = ensemble(Some(0), &[0], &[0, 1]);
    e.syncing = true;
    c.ensemble = Some(e);
    assert_eq!(c.run().defer_reason(), Some(&Hold::MembersSyncing));
    // Unobserved entirely: work is still held, not forgotten.
    c.ensemble = None;
    assert_eq!(
        c.run().held,
        [
            (Change::Add(0), Hold::NoQuorumLeader),
            (Change::Add(1), Hold::NoQuorumLeader)
        ]
    );
}

#[test]
fn a_member_catching_up_holds_changes_but_not_its_own_removal() {
    // 4 voters, unit 1 up but not serving (restarting or hung), unit 3 departed, 4 waiting.
    let mut c = Case::new(0, true);
    c.peers = peers(&[(0, true), (1, true), (2, true), (4, true)]);
    c.local = RUNNING;
    c.departed = [3].into();
    let mut e = ensemble(Some(0), &[0, 1, 2, 3], &[0, 2, 3, 4]);
    e.catching_up = [1].into();
    c.ensemble = Some(e.clone());
    let p = c.run();
    assert!(p.changes.is_empty(), "{p:?}");
    assert_eq!(
        p.held,
        [
            (Change::Remove(3), Hold::MembersSyncing),
            (Change::Add(4), Hold::MembersSyncing)
        ]
    );
    // The stuck member itself departed: its removal goes ahead (majority permitting).
    c.departed = [1].into();
    c.peers = peers(&[(0, true), (2, true), (3, true)]);
    let p = c.run();
    assert_eq!(p.changes, [Change::Remove(1)]);
}

#[test]
fn non_leaders_add_nobody() {
    let mut c = Case::new(1, false);
    c.peers = peers(&[(0, true), (1, true), (2, true)]);
    c.local = RUNNING;
    c.ensemble = Some(ensemble(Some(0), &[0, 1], &[0, 1, 2]));
    let p = c.run();
    assert!(
        p.changes.is_empty() && p.held.is_empty() && p.ledger.is_empty(),
        "{p:?}"
    );
}

#[test]
fn leader_elected_with_no_peers_removes_nobody() {
    // Juju LP#2053055: leadership moved and relation-list came back empty.
    let mut c = Case::new(0, true);
    c.peers = peers(&[(0, true)]);
    c.local = RUNNING;
    c.ledger = ledger(&[(0, Ledger::Added), (1, Ledger::Added), (2, Ledger::Added)]);
    c.ensemble = Some(ensemble(Some(2), &[0, 1, 2], &[0, 1, 2]));
    let p = c.run();
    assert!(p.changes.is_empty(), "{p:?}");
    assert!(p.ledger.is_empty(), "{p:?}");
}

#[test]
fn departed_member_is_removed_by_whoever_saw_it_go() {
    for is_leader in [true, false] {
        let mut c = Case::new(1, is_leader);
        c.peers = peers(&[(0, true), (1, true)]);
        c.local = RUNNING;
        c.ledger = ledger(&[(0, Ledger::Added), (1, Ledger::Added), (2, Ledger::Added)]);
        c.departed = [2].into();
        c.ensemble = Some(ensemble(Some(2), &[0, 1, 2], &[0, 1, 2]));
        let p = c.run();
        assert_eq!(p.changes, [Change::Remove(2)], "leader={is_leader}");
    }
}

#[test]
fn ledger_marks_removed_only_after_the_member_is_gone() {
    let mut c = Case::new(0, true);
    c.peers = peers(&[(0, true), (1, true), (2, true)]);
    c.local = RUNNING;
    c.ledger = ledger(&[
        (0, Ledger::Added),
        (1, Ledger::Added),
        (2, Ledger::Added),
        (3, Ledger::Added),
    ]);
    c.departed = [3].into();
    c.ensemble = Some(ensemble(Some(0), &[0, 1, 2, 3], &[0, 1, 2, 3]));
    let p = c.run();
    assert_eq!(p.changes, [Change::Remove(3)]);
    assert!(p.ledger.is_empty(), "still a member: {p:?}");
    c.ensemble = Some(ensemble(Some(0), &[0, 1, 2], &[0, 1, 2]));
    assert_eq!(c.run().ledger, ledger(&[(3, Ledger::Removed)]));
}

#[test]
fn ledger_records_members_added_by_earlier_hooks() {
    let mut c = Case::new(0, true);
    c.peers = peers(&[(0, true), (1, true)]);
    c.local = RUNNING;
    c.ensemble = Some(ensemble(Some(0), &[0, 1], &[0, 1]));
    assert_eq!(
        c.run().ledger,
        ledger(&[(0, Ledger::Added), (1, Ledger::Added)])
    );
}

#[test]
fn dying_unit_removes_itself_and_starts_nothing() {
    let mut c = Case::new(2, false);
    c.dying = true;
    c.peers = peers(&[(0, true), (1, true), (2, true)]);
    c.local = RUNNING;
    c.ensemble = Some(ensemble(Some(2), &[0, 1, 2], &[0, 1, 2]));
    let p = c.run();
    assert_eq!(p.local, Some(LocalAction::Nothing));
    assert_eq!(p.changes, [Change::Remove(2)]);
}

#[test]
fn removal_that_would_lose_the_majority_is_held() {
    // Voters 0,1,2; 1 is down; removing departed 2 leaves {0,1} with one live: no majority.
    let mut c = Case::new(0, true);
    c.peers = peers(&[(0, true), (1, true)]);
    c.local = RUNNING;
    c.departed = [2].into();
    c.ensemble = Some(ensemble(Some(0), &[0, 1, 2], &[0, 2]));
    let p = c.run();
    assert!(p.changes.is_empty());
    assert_eq!(p.held, [(Change::Remove(2), Hold::WouldLoseMajority(2))]);
    assert_eq!(
        p.defer_reason(),
        None,
        "a safety hold is not an ensemble error"
    );
    // The last voter is never removed.
    let mut c = Case::new(0, false);
    c.dying = true;
    c.local = RUNNING;
    c.ensemble = Some(ensemble(Some(0), &[0], &[0]));
    assert_eq!(
        c.run().held,
        [(Change::Remove(0), Hold::WouldLoseMajority(0))]
    );
}

#[test]
fn two_departures_at_once_are_removed_in_order_while_a_majority_stays() {
    // 5 -> 3, removing the quorum leader (4) and the old Juju leader (0) in one command.
    let mut c = Case::new(1, true);
    c.peers = peers(&[(1, true), (2, true), (3, true)]);
    c.local = RUNNING;
    c.departed = [0, 4].into();
    c.ensemble = Some(ensemble(Some(4), &[0, 1, 2, 3, 4], &[1, 2, 3, 4]));
    let p = c.run();
    assert_eq!(p.changes, [Change::Remove(0), Change::Remove(4)]);
}

#[test]
fn invariants_reject_a_hand_made_bad_plan() {
    let c = Case::new(0, false);
    let e = ensemble(Some(0), &[0, 1, 2], &[0, 1, 2]);
    let input = Input {
        me: 0,
        is_leader: false,
        dying: false,
        peers: &c.peers,
        ledger: &c.ledger,
        departed: &c.departed,
        credentials: true,
        local: RUNNING,
        ensemble: Some(&e),
        planned: None,
    };
    let bad = Plan {
        changes: vec![Change::Remove(1)],
        ..Plan::default()
    };
    assert!(check_invariants(&input, &e, &bad)
        .unwrap_err()
        .0
        .contains("no evidence"));
    let bad = Plan {
        changes: vec![Change::Add(3)],
        ..Plan::default()
    };
    assert!(check_invariants(&input, &e, &bad).is_err());
}

#[test]
fn server_ids_are_unit_plus_one() {
    assert_eq!(server_id(0), 1);
    assert_eq!(unit_of(1), Some(0));
    assert_eq!(unit_of(0), None);
}

// ---- randomized event sequences ------------------------------------------------------------

use crate::testutil::Rng;

/// A toy model of Juju units and a ZooKeeper ensemble, just rich enough to drive the planner.
#[derive(Default)]
struct World {
    next_unit: UnitId,
    related: BTreeSet<UnitId>,
    started_flag: BTreeSet<UnitId>,
    initialized: BTreeSet<UnitId>,
    running: BTreeSet<UnitId>,
    voters: BTreeSet<UnitId>,
    ledger: BTreeMap<UnitId, Ledger>,
    departed_seen: BTreeMap<UnitId, BTreeSet<UnitId>>,
    departed_ever: BTreeSet<UnitId>,
    leader: Option<UnitId>,
}

impl World {
    fn has_quorum(&self) -> bool {
        self.tolerates_loss_of(None)
    }
    /// Would the voters keep a live majority if `u` (also) went down? The operator-side rule the
    /// generator follows: no fault beyond what the ensemble tolerates, since nothing can recover
    /// from that automatically (a 2-voter ensemble that loses one is stuck).
    fn tolerates_loss_of(&self, u: Option<UnitId>) -> bool {
        let live = self
            .voters
            .iter()
            .filter(|x| self.running.contains(x) && Some(**x) != u)
            .count();
        !self.voters.is_empty() && live * 2 > self.voters.len()
    }
    /// Broadcasting: running, and the ensemble has a quorum (joiners sync only then). A joiner
    /// (not a voter) must have a higher id than every voter: with quorum SASL the members with
    /// higher ids cannot reach it (see `plan`'s join order rule), and it never syncs.
    fn broadcasting(&self) -> BTreeSet<UnitId> {
        if !self.has_quorum() {
            return BTreeSet::new();
        }
        let top = self.voters.iter().max().copied();
        self.running
            .iter()
            .copied()
            .filter(|u| self.voters.contains(u) || top.is_none_or(|t| *u > t))
            .collect()
    }
    fn ensemble(&self) -> Option<EnsembleState> {
        if self.voters.is_empty() {
            return None;
        }
        let live = self.broadcasting();
        Some(EnsembleState {
            leader: if self.has_quorum() {
                self.voters.iter().find(|u| live.contains(u)).copied()
            } else {
                None
            },
            members: self
                .voters
                .iter()
                .map(|u| {
                    (
                        *u,
                        Member {
                            address: format!("a{u}"),
                            voting: true,
                        },
                    )
                })
                .collect(),
            version: Some(1),
            syncing: false,
            catching_up: BTreeSet::new(),
            broadcasting: live,
        })
    }
    fn peers(&self) -> BTreeMap<UnitId, PeerUnit> {
        self.related
            .iter()
            .map(|u| {
                (
                    *u,
                    PeerUnit {
                        address: Some(format!("a{u}")),
                        started: self.started_flag.contains(u),
                    },
                )
            })
            .collect()
    }
    fn add_unit(&mut self) {
        let u = self.next_unit;
        self.next_unit += 1;
        self.related.insert(u);
        if self.leader.is_none() {
            self.leader = Some(u);
        }
    }
    fn remove_unit(&mut self, u: UnitId) {
        // The dying unit's own hook: it removes itself if it safely can, then stops.
        self.hook(u, true);
        self.related.remove(&u);
        self.running.remove(&u);
        self.started_flag.remove(&u);
        self.departed_ever.insert(u);
        for other in self.related.clone() {
            self.departed_seen.entry(other).or_default().insert(u);
        }
        if self.leader == Some(u) {
            self.leader = self.related.iter().next().copied();
        }
    }
    /// One hook on unit `u`: plan, then apply like the charm does.
    fn hook(&mut self, u: UnitId, dying: bool) {
        let peers = self.peers();
        let departed = self.departed_seen.get(&u).cloned().unwrap_or_default();
        let ens = self.ensemble();
        let before_quorum = self.has_quorum();
        let input = Input {
            me: u,
            is_leader: self.leader == Some(u),
            dying,
            peers: &peers,
            ledger: &self.ledger.clone(),
            departed: &departed,
            credentials: true,
            local: LocalServer {
                initialized: self.initialized.contains(&u),
                running: self.running.contains(&u),
            },
            ensemble: ens.as_ref(),
            planned: None,
        };
        let plan = plan(&input).unwrap_or_else(|e| panic!("invariant: {e}"));
        match &plan.local {
            Some(LocalAction::Bootstrap) => {
                assert!(
                    self.voters.is_empty(),
                    "bootstrap while an ensemble exists: {:?}",
                    self.voters
                );
                self.initialized.insert(u);
                self.running.insert(u);
                self.voters.insert(u);
                self.started_flag.insert(u);
            }
            Some(LocalAction::Join { .. }) => {
                self.initialized.insert(u);
                self.running.insert(u);
                if self.broadcasting().contains(&u) {
                    self.started_flag.insert(u);
                }
            }
            Some(LocalAction::Restart) => {
                self.running.insert(u);
            }
            _ => {}
        }
        if !dying && self.broadcasting().contains(&u) && self.initialized.contains(&u) {
            self.started_flag.insert(u);
        }
        for change in &plan.changes {
            // ZooKeeper's own rule: the new config needs a live majority.
            let mut after = self.voters.clone();
            match change {
                Change::Add(x) => {
                    after.insert(*x);
                }
                Change::Remove(x) => {
                    after.remove(x);
                }
            }
            let live = after.iter().filter(|x| self.running.contains(x)).count();
            assert!(before_quorum, "planned {change} without a quorum");
            assert!(
                live * 2 > after.len(),
                "{change} breaks the majority: {after:?}"
            );
            if let Change::Remove(x) = change {
                assert!(
                    self.departed_ever.contains(x) || (dying && *x == u),
                    "removed unit {x} that never departed"
                );
            }
            self.voters = after;
        }
        for (x, l) in plan.ledger {
            self.ledger.insert(x, l);
        }
    }
}

#[test]
fn random_event_sequences_keep_the_invariants_and_converge() {
    for seed in 1..=300u64 {
        let mut rng = Rng::new(seed);
        let mut w = World::default();
        for _ in 0..(1 + rng.below(3)) {
            w.add_unit();
        }
        for _step in 0..60 {
            let units: Vec<UnitId> = w.related.iter().copied().collect();
            match rng.below(10) {
                0 if w.related.len() < 7 => w.add_unit(),
                1 if w.related.len() > 1 => {
                    let u = units[rng.below(units.len())];
                    if w.voters.is_empty() || w.tolerates_loss_of(Some(u)) {
                        w.remove_unit(u);
                    }
                }
                2 => {
                    // A crash (kill-workload), within what the ensemble tolerates.
                    let u = units[rng.below(units.len())];
                    if w.tolerates_loss_of(Some(u)) {
                        w.running.remove(&u);
                    }
                }
                _ => {
                    let u = units[rng.below(units.len())];
                    w.hook(u, false);
                }
            }
        }
        // Heal: hooks on every unit until nothing changes.
        for _round in 0..20 {
            for u in w.related.clone() {
                w.hook(u, false);
            }
        }
        let want: BTreeSet<UnitId> = w.related.clone();
        assert_eq!(
            w.voters, want,
            "seed {seed}: voters {:?} != units {:?}",
            w.voters, want
        );
        assert!(w.has_quorum(), "seed {seed}");
        for u in &want {
            assert_eq!(
                w.ledger.get(u),
                Some(&Ledger::Added),
                "seed {seed}: ledger {:?}",
                w.ledger
            );
        }
    }
}
