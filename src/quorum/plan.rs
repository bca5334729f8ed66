//! The quorum planner: from what the peer relation says and what the ensemble answers, decide
//! what this unit does next. Pure: no I/O, no clock, no ZooKeeper types.
//!
//! The protocol is Charmed ZooKeeper's (peer keys `state=started` on units, app ledger
//! `"<unit id>": added|removed`), with these rules:
//! - **Bootstrap**: while nobody has started a server and the ledger holds no `added` unit, the
//!   lowest-numbered planned unit starts alone as the first participant. Everybody else waits.
//! - **Join order**: units join in ascending order, each after every lower planned unit is a
//!   member. ZooKeeper's quorum SASL needs it (a joiner can only be reached by members with
//!   lower ids); Juju never reuses unit numbers, so later units always come last anyway.
//! - **Join**: a unit that never started its server starts it with the known participants plus
//!   itself as an observer; ZooKeeper then runs it as a non-voting follower. It publishes
//!   `state=started` once its server answers "... - broadcast" (checked by the caller).
//! - **Add** (leader only): started units that are not members are added one at a time, lowest id
//!   first (numerically: unit 10 after unit 2), each only while it is broadcasting and nothing is
//!   syncing. The ledger follows the ensemble's real membership.
//! - **Remove** (any unit that knows): a member is removed only with evidence that its unit
//!   departed (a `-departed` hook was seen for it, or this unit is the one leaving). A
//!   `leader-elected` that sees no peers therefore removes nobody (Juju LP#2053055). A member
//!   whose server merely stopped is restarted, never removed.
//! - **Invariants**, checked on every planned change: a change never leaves the new voter set
//!   without a live majority, never removes the last voter, and never changes more than one
//!   member per reconfig.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A Juju unit number (`zookeeper/3` -> 3). ZooKeeper's server id is this plus one.
pub type UnitId = u32;

/// `myid` / `server.N`: ZooKeeper needs positive ids, so unit N runs server N+1.
pub fn server_id(unit: UnitId) -> u32 {
    unit + 1
}

/// The unit behind a ZooKeeper server id, if any.
pub fn unit_of(server: u32) -> Option<UnitId> {
    server.checked_sub(1)
}

/// The leader's record of a unit's membership (app data `"<unit id>": added|removed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ledger {
    Added,
    Removed,
}

impl Ledger {
    pub fn as_str(self) -> &'static str {
        match self {
            Ledger::Added => "added",
            Ledger::Removed => "removed",
        }
    }
    pub fn parse(s: &str) -> Option<Ledger> {
        match s {
            "added" => Some(Ledger::Added),
            "removed" => Some(Ledger::Removed),
            _ => None,
        }
    }
}

/// What the peer relation says about one unit (this unit included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerUnit {
    /// The address its server listens on (unit data `ip`, else the Juju ingress address).
    pub address: Option<String>,
    /// It published `state=started`: its server is up and was broadcasting.
    pub started: bool,
}

/// This unit's own server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalServer {
    /// It has been started before (its initial configuration exists): never bootstrap again.
    pub initialized: bool,
    /// The process is alive.
    pub running: bool,
}

/// A member of the ensemble's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub address: String,
    pub voting: bool,
}

/// The ensemble as seen through four-letter words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnsembleState {
    /// The unit whose server is the quorum leader; `None`: no leader found (no quorum).
    pub leader: Option<UnitId>,
    /// The members of the committed configuration (from the leader), by unit.
    pub members: BTreeMap<UnitId, Member>,
    pub version: Option<u64>,
    /// The leader reports pending syncs or learners in the handshake, or is not in broadcast.
    pub syncing: bool,
    /// Members that are up but not serving: restarting, catching up with the leader, or hung.
    pub catching_up: BTreeSet<UnitId>,
    /// Units whose server answers "... - broadcast".
    pub broadcasting: BTreeSet<UnitId>,
}

impl EnsembleState {
    /// Members are syncing, for a change that concerns `unit`: a member that is stuck never
    /// blocks its own removal.
    pub fn syncing_for(&self, change: Change) -> bool {
        match change {
            Change::Add(_) => self.syncing || !self.catching_up.is_empty(),
            Change::Remove(u) => self.syncing || self.catching_up.iter().any(|x| *x != u),
        }
    }

    pub fn voters(&self) -> BTreeSet<UnitId> {
        self.members
            .iter()
            .filter(|(_, m)| m.voting)
            .map(|(u, _)| *u)
            .collect()
    }
}

/// Everything the planner looks at.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub me: UnitId,
    pub is_leader: bool,
    /// This unit is being removed (it saw itself as the departing unit).
    pub dying: bool,
    /// Every unit in the peer relation, this one included.
    pub peers: &'a BTreeMap<UnitId, PeerUnit>,
    pub ledger: &'a BTreeMap<UnitId, Ledger>,
    /// Units this unit saw depart (evidence for removal).
    pub departed: &'a BTreeSet<UnitId>,
    /// The super and sync passwords exist.
    pub credentials: bool,
    pub local: LocalServer,
    /// `None`: not observed (nothing answered).
    pub ensemble: Option<&'a EnsembleState>,
    /// The units Juju plans for the application (goal-state, dying ones left out), this one
    /// included; `None` when not asked (then the related units stand in for it).
    pub planned: Option<&'a BTreeSet<UnitId>>,
}

/// Why this unit cannot start its server yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    Credentials,
    OwnAddress,
    Bootstrap,
    ParticipantAddresses,
    /// Lower-numbered units join first (see [`plan`]'s join order rule).
    OtherUnitsFirst,
    /// A member has a higher id than this unit: with quorum SASL it can never join.
    LowerThanMembers(UnitId),
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wait::Credentials => "waiting for leader to create internal user credentials",
            Wait::OwnAddress => "waiting for this unit's address on the cluster relation",
            Wait::Bootstrap => "waiting for the lowest-numbered unit to bootstrap the ensemble",
            Wait::ParticipantAddresses => "waiting for the addresses of the quorum members",
            Wait::OtherUnitsFirst => "other units starting first",
            Wait::LowerThanMembers(u) => {
                return write!(
                    f,
                    "cannot join: unit {u} is already a member and ZooKeeper's quorum authentication only \
                     lets servers with higher ids than every member join; remove this unit and add a new one"
                )
            }
        })
    }
}

/// What this unit does with its own server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalAction {
    /// Nothing to do (running, or leaving).
    Nothing,
    /// Start alone as the first participant.
    Bootstrap,
    /// First start, knowing these participants (unit -> address); itself as an observer.
    Join {
        participants: BTreeMap<UnitId, String>,
    },
    /// It ran as a member before but the process is gone: start it again with its own files.
    Restart,
    Wait(Wait),
}

/// One membership change: one incremental reconfig.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Add(UnitId),
    Remove(UnitId),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Add(u) => write!(f, "add unit {u} (server.{})", server_id(*u)),
            Change::Remove(u) => write!(f, "remove unit {u} (server.{})", server_id(*u)),
        }
    }
}

/// Why a needed change cannot happen now. The first three are the ensemble answers the charm
/// defers on; the last is a safety hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    NoQuorumLeader,
    MembersSyncing,
    MemberNotReady(UnitId),
    /// Removing it now would leave the new voter set without a live majority (or empty).
    WouldLoseMajority(UnitId),
}

impl Hold {
    /// One of the three ensemble conditions that go away by themselves (defer and retry).
    pub fn is_transient(&self) -> bool {
        !matches!(self, Hold::WouldLoseMajority(_))
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::NoQuorumLeader => f.write_str("no quorum leader"),
            Hold::MembersSyncing => f.write_str("members syncing"),
            Hold::MemberNotReady(u) => {
                write!(f, "member not ready: unit {u}'s server is not broadcasting")
            }
            Hold::WouldLoseMajority(u) => {
                write!(
                    f,
                    "removing unit {u} now would leave the quorum without a live majority"
                )
            }
        }
    }
}

/// The planner's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub local: Option<LocalAction>,
    /// Changes to apply now, in order (the caller applies them one at a time, re-checking).
    pub changes: Vec<Change>,
    /// Changes that are needed but must wait, with the reason.
    pub held: Vec<(Change, Hold)>,
    /// Ledger entries to write (leader only).
    pub ledger: BTreeMap<UnitId, Ledger>,
}

impl Plan {
    /// The first transient hold, the reason to defer.
    pub fn defer_reason(&self) -> Option<&Hold> {
        self.held.iter().map(|(_, h)| h).find(|h| h.is_transient())
    }
}

/// Breaks an invariant: a planning bug, reported rather than applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("quorum plan rejected: {0}")]
pub struct InvariantViolation(pub String);

fn local_action(input: &Input<'_>) -> LocalAction {
    if input.dying {
        return LocalAction::Nothing;
    }
    if input.local.initialized {
        if input.local.running {
            return LocalAction::Nothing;
        }
        // A member restarts as the voter it is: the ledger says so, or ZooKeeper does (the
        // leader's reconfig added it, its ledger write has not committed yet, and the server
        // died meanwhile: joining again from a fresh configuration would lose its vote).
        let voter = input
            .ensemble
            .is_some_and(|e| e.voters().contains(&input.me));
        if input.ledger.get(&input.me) == Some(&Ledger::Added) || voter {
            return LocalAction::Restart;
        }
        // Started before but never added: once it synced, ZooKeeper rewrote its dynamic
        // configuration to the leader's, which does not list it, and it would exit at once
        // ("My id is not in the peer list"). It joins again from a fresh configuration.
    }
    if !input.credentials {
        return LocalAction::Wait(Wait::Credentials);
    }
    let my_addr = input.peers.get(&input.me).and_then(|p| p.address.clone());
    if my_addr.is_none() {
        return LocalAction::Wait(Wait::OwnAddress);
    }
    // Participants: units the ledger says were added, plus any unit that already started a
    // server (it may have been added after the ledger we read, or bootstrapped just before a
    // leader change). Never this unit, never a departed unit.
    let known: BTreeSet<UnitId> = input
        .ledger
        .iter()
        .filter(|(_, l)| **l == Ledger::Added)
        .map(|(u, _)| *u)
        .chain(
            input
                .peers
                .iter()
                .filter(|(_, p)| p.started)
                .map(|(u, _)| *u),
        )
        .filter(|u| *u != input.me && !input.departed.contains(u))
        .collect();
    // Join order. With quorum SASL, a member connecting back to a joiner that is not a voter
    // yet skips the SASL handshake (ZooKeeper's QuorumCnxManager authenticates only peers in
    // its voting view), and the joiner drops the connection: a joiner only hears from members
    // with lower ids. So the lowest planned unit bootstraps, and units join in ascending order.
    // Juju never reuses unit numbers, so units added later always come after the members.
    let planned: BTreeSet<UnitId> = input
        .planned
        .cloned()
        .unwrap_or_else(|| input.peers.keys().copied().collect())
        .into_iter()
        .chain(std::iter::once(input.me))
        .filter(|u| !input.departed.contains(u))
        .collect();
    if known.is_empty() {
        return if planned.first() == Some(&input.me) {
            LocalAction::Bootstrap
        } else {
            LocalAction::Wait(Wait::Bootstrap)
        };
    }
    if let Some(higher) = known.iter().copied().filter(|u| *u > input.me).max() {
        return LocalAction::Wait(Wait::LowerThanMembers(higher));
    }
    let ahead = planned
        .iter()
        .any(|u| *u < input.me && input.ledger.get(u) != Some(&Ledger::Added));
    if ahead {
        return LocalAction::Wait(Wait::OtherUnitsFirst);
    }
    let participants: BTreeMap<UnitId, String> = known
        .iter()
        .filter_map(|u| {
            input
                .peers
                .get(u)
                .and_then(|p| p.address.clone())
                .map(|a| (*u, a))
        })
        .collect();
    if participants.is_empty() {
        return LocalAction::Wait(Wait::ParticipantAddresses);
    }
    LocalAction::Join { participants }
}

/// Would the voter set after `change` still have a live majority?
fn keeps_majority(voters: &BTreeSet<UnitId>, live: &BTreeSet<UnitId>, change: Change) -> bool {
    let mut after = voters.clone();
    match change {
        Change::Add(u) => {
            after.insert(u);
        }
        Change::Remove(u) => {
            after.remove(&u);
        }
    }
    if after.is_empty() {
        return false;
    }
    let live_after = after.iter().filter(|u| live.contains(u)).count();
    live_after * 2 > after.len()
}

/// Plans the next steps for this unit.
pub fn plan(input: &Input<'_>) -> Result<Plan, InvariantViolation> {
    let mut out = Plan {
        local: Some(local_action(input)),
        ..Plan::default()
    };
    let related: BTreeSet<UnitId> = input.peers.keys().copied().collect();

    let Some(ens) = input.ensemble else {
        // Nothing observed. The leader still must not lose track of work it cannot do now.
        if input.is_leader {
            for u in pending_additions(input, None) {
                out.held.push((Change::Add(u), Hold::NoQuorumLeader));
            }
        }
        for u in pending_removals(input, None) {
            out.held.push((Change::Remove(u), Hold::NoQuorumLeader));
        }
        return Ok(out);
    };

    // Ledger follows real membership (leader only): members are added; former members whose
    // unit is gone are removed.
    if input.is_leader && ens.leader.is_some() {
        for u in ens.members.keys() {
            if input.ledger.get(u) != Some(&Ledger::Added) {
                out.ledger.insert(*u, Ledger::Added);
            }
        }
        for (u, l) in input.ledger {
            let gone = input.departed.contains(u) || !related.contains(u);
            if *l == Ledger::Added && !ens.members.contains_key(u) && gone {
                out.ledger.insert(*u, Ledger::Removed);
            }
        }
    }

    let mut voters = ens.voters();
    let live = &ens.broadcasting;

    // Removals first: a departed member is dead weight in the quorum.
    for u in pending_removals(input, Some(ens)) {
        let change = Change::Remove(u);
        if ens.leader.is_none() {
            out.held.push((change, Hold::NoQuorumLeader));
        } else if ens.syncing_for(change) {
            out.held.push((change, Hold::MembersSyncing));
        } else if voters.contains(&u) && !keeps_majority(&voters, live, change) {
            out.held.push((change, Hold::WouldLoseMajority(u)));
        } else {
            voters.remove(&u);
            out.changes.push(change);
        }
    }

    if input.is_leader && !input.dying {
        let mut blocked = false;
        for u in pending_additions(input, Some(ens)) {
            let change = Change::Add(u);
            // One at a time, in order: once one must wait, the later ones wait behind it.
            let hold = if ens.leader.is_none() {
                Some(Hold::NoQuorumLeader)
            } else if ens.syncing_for(change) {
                Some(Hold::MembersSyncing)
            } else if blocked || !live.contains(&u) {
                Some(Hold::MemberNotReady(u))
            } else if !keeps_majority(&voters, live, change) {
                Some(Hold::WouldLoseMajority(u))
            } else {
                None
            };
            match hold {
                Some(h) => {
                    blocked = true;
                    out.held.push((change, h));
                }
                None => {
                    voters.insert(u);
                    out.changes.push(change);
                }
            }
        }
    }

    check_invariants(input, ens, &out)?;
    Ok(out)
}

/// Started, related units that are not members yet, in numeric order (the leader adds them).
fn pending_additions(input: &Input<'_>, ens: Option<&EnsembleState>) -> Vec<UnitId> {
    input
        .peers
        .iter()
        .filter(|(u, p)| p.started && p.address.is_some() && !input.departed.contains(u))
        .filter(|(u, _)| {
            ens.map(|e| !e.members.get(u).is_some_and(|m| m.voting))
                .unwrap_or(true)
        })
        .map(|(u, _)| *u)
        .collect()
}

/// Members with evidence of departure (numeric order), including this unit when it is leaving.
fn pending_removals(input: &Input<'_>, ens: Option<&EnsembleState>) -> Vec<UnitId> {
    let mut evidence: BTreeSet<UnitId> = input.departed.clone();
    if input.dying {
        evidence.insert(input.me);
    }
    evidence
        .into_iter()
        .filter(|u| match ens {
            Some(e) => e.members.contains_key(u),
            // Unobserved: only the ledger can tell us it was a member.
            None => input.ledger.get(u) == Some(&Ledger::Added),
        })
        .collect()
}

/// Raft-style checks on a computed plan.
pub fn check_invariants(
    input: &Input<'_>,
    ens: &EnsembleState,
    plan: &Plan,
) -> Result<(), InvariantViolation> {
    let mut voters = ens.voters();
    for change in &plan.changes {
        if !keeps_majority(&voters, &ens.broadcasting, *change) {
            return Err(InvariantViolation(format!(
                "{change} would leave no live majority of {voters:?}"
            )));
        }
        match change {
            Change::Add(u) => {
                if !voters.insert(*u) {
                    return Err(InvariantViolation(format!("{change}: already a voter")));
                }
                if !input.is_leader {
                    return Err(InvariantViolation(format!(
                        "{change}: only the leader adds members"
                    )));
                }
            }
            Change::Remove(u) => {
                if !(input.departed.contains(u) || (input.dying && *u == input.me)) {
                    return Err(InvariantViolation(format!(
                        "{change}: no evidence that unit {u} departed"
                    )));
                }
                voters.remove(u);
            }
        }
    }
    let mut seen = BTreeSet::new();
    for c in &plan.changes {
        let u = match c {
            Change::Add(u) | Change::Remove(u) => *u,
        };
        if !seen.insert(u) {
            return Err(InvariantViolation(format!(
                "unit {u} changed twice in one plan"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
