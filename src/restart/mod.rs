//! Rolling restarts: a lock on the `restart` peer relation, driven by the leader (pure part).
//!
//! Each unit publishes in its `restart` bag the fingerprint of the inputs its running server
//! loaded (`loaded`: configuration values and the credentials revision; no secret material) and
//! the client users its JAAS file holds (`clients`: relation ids). A unit is *behind* when its
//! `loaded` differs from the current inputs' fingerprint. The leader grants the lock
//! (`granted=<unit>` and `granted-for=<fingerprint>` in the app bag) to one behind unit at a
//! time: the others first, by unit number, the ZooKeeper quorum leader last, and only while
//! every voter is broadcasting and nothing is syncing. The granted unit restarts its server only
//! if the grant is for the inputs it sees itself (a grant read after the inputs changed, before
//! the leader moved the lock on, is not acted on), checks once more that every other voter
//! serves, waits until it broadcasts again, and publishes its new `loaded`; that change wakes the
//! leader, which grants the next one. The lock never leaves a unit that is behind: when the
//! inputs change under a grant, the leader re-issues it to the same unit for the new inputs, so
//! at most one server restarts at a time whatever the units' hooks see and when.
//!
//! Coalescing falls out of the fingerprints: every change that arrives before a unit's turn is
//! picked up by that same restart; a unit restarted earlier in the round is behind again and gets
//! one more turn, so a burst of changes costs at most two rounds.

use std::collections::{BTreeMap, BTreeSet};

use crate::juju::tools::Databag;
use crate::quorum::plan::UnitId;

pub const ENDPOINT: &str = "restart";
pub const KEY_GRANTED: &str = "granted";
/// The fingerprint a grant is for.
pub const KEY_GRANTED_FOR: &str = "granted-for";
pub const KEY_LOADED: &str = "loaded";
pub const KEY_CLIENTS: &str = "clients";

/// FNV-1a 64-bit over the canonical description of the inputs (not security relevant: the
/// inputs hold no secret, only a revision number).
pub fn fingerprint(canonical: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in canonical.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// What one unit's `restart` bag says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitRestart {
    pub loaded: Option<String>,
    pub clients: BTreeSet<u32>,
}

impl UnitRestart {
    pub fn from_bag(bag: &Databag) -> UnitRestart {
        UnitRestart {
            loaded: bag.get(KEY_LOADED).filter(|v| !v.is_empty()).cloned(),
            clients: bag
                .get(KEY_CLIENTS)
                .map(|v| parse_clients(v))
                .unwrap_or_default(),
        }
    }
    pub fn to_bag(&self) -> Databag {
        [
            (
                KEY_LOADED.to_string(),
                self.loaded.clone().unwrap_or_default(),
            ),
            (KEY_CLIENTS.to_string(), format_clients(&self.clients)),
        ]
        .into()
    }
}

pub fn parse_clients(s: &str) -> BTreeSet<u32> {
    s.split(',').filter_map(|x| x.trim().parse().ok()).collect()
}

pub fn format_clients(c: &BTreeSet<u32>) -> String {
    c.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The leader's next move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockStep {
    /// Everyone is current: clear the grant if one is set.
    Idle,
    /// The granted unit is still behind: its restart is under way.
    InProgress(UnitId),
    /// Give the lock to this unit.
    Grant(UnitId),
    /// Someone is behind but restarting now would risk the quorum.
    Wait(String),
}

pub struct LockInput<'a> {
    /// The current inputs' fingerprint.
    pub desired: &'a str,
    /// Started, non-dying units and what their bags say.
    pub units: &'a BTreeMap<UnitId, UnitRestart>,
    pub granted: Option<UnitId>,
    /// The unit whose server leads the quorum (restarted last).
    pub quorum_leader: Option<UnitId>,
    /// Every voter broadcasting, nothing syncing.
    pub healthy: bool,
}

pub fn behind(input: &LockInput<'_>) -> BTreeSet<UnitId> {
    input
        .units
        .iter()
        .filter(|(_, r)| r.loaded.as_deref() != Some(input.desired))
        .map(|(u, _)| *u)
        .collect()
}

pub fn next_step(input: &LockInput<'_>) -> LockStep {
    let behind = behind(input);
    if behind.is_empty() {
        return LockStep::Idle;
    }
    if let Some(g) = input.granted {
        if behind.contains(&g) {
            return LockStep::InProgress(g);
        }
    }
    if !input.healthy {
        return LockStep::Wait("waiting for every member to serve before the next restart".into());
    }
    let next = behind
        .iter()
        .copied()
        .filter(|u| Some(*u) != input.quorum_leader)
        .min()
        .or(input.quorum_leader.filter(|q| behind.contains(q)));
    match next {
        Some(u) => LockStep::Grant(u),
        None => LockStep::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(list: &[(UnitId, &str)]) -> BTreeMap<UnitId, UnitRestart> {
        list.iter()
            .map(|(u, fp)| {
                (
                    *u,
                    UnitRestart {
                        loaded: Some(fp.to_string()),
                        clients: BTreeSet::new(),
                    },
                )
            })
            .collect()
    }

    fn step(
        list: &[(UnitId, &str)],
        granted: Option<UnitId>,
        ql: Option<UnitId>,
        healthy: bool,
    ) -> LockStep {
        let u = units(list);
        next_step(&LockInput {
            desired: "new",
            units: &u,
            granted,
            quorum_leader: ql,
            healthy,
        })
    }

    #[test]
    fn grants_one_at_a_time_quorum_leader_last() {
        assert_eq!(
            step(&[(0, "old"), (1, "old"), (2, "old")], None, Some(0), true),
            LockStep::Grant(1)
        );
        assert_eq!(
            step(
                &[(0, "old"), (1, "old"), (2, "old")],
                Some(1),
                Some(0),
                true
            ),
            LockStep::InProgress(1)
        );
        assert_eq!(
            step(
                &[(0, "old"), (1, "new"), (2, "old")],
                Some(1),
                Some(0),
                true
            ),
            LockStep::Grant(2)
        );
        assert_eq!(
            step(
                &[(0, "old"), (1, "new"), (2, "new")],
                Some(2),
                Some(0),
                true
            ),
            LockStep::Grant(0)
        );
        assert_eq!(
            step(
                &[(0, "new"), (1, "new"), (2, "new")],
                Some(0),
                Some(0),
                true
            ),
            LockStep::Idle
        );
    }

    #[test]
    fn waits_while_the_ensemble_is_not_healthy() {
        assert!(matches!(
            step(&[(0, "new"), (1, "old")], None, Some(0), false),
            LockStep::Wait(_)
        ));
        // A grant in progress stays in progress even then.
        assert_eq!(
            step(&[(0, "new"), (1, "old")], Some(1), Some(0), false),
            LockStep::InProgress(1)
        );
    }

    #[test]
    fn single_unit_restarts_itself() {
        assert_eq!(step(&[(0, "old")], None, Some(0), true), LockStep::Grant(0));
    }

    #[test]
    fn a_unit_that_never_published_is_behind() {
        let mut u = units(&[(0, "new")]);
        u.insert(1, UnitRestart::default());
        assert_eq!(
            next_step(&LockInput {
                desired: "new",
                units: &u,
                granted: None,
                quorum_leader: Some(0),
                healthy: true
            }),
            LockStep::Grant(1)
        );
    }

    #[test]
    fn bags_roundtrip_and_fingerprints_are_stable() {
        let r = UnitRestart {
            loaded: Some("ab".into()),
            clients: [7, 12].into(),
        };
        assert_eq!(r.to_bag()["clients"], "7,12");
        assert_eq!(UnitRestart::from_bag(&r.to_bag()), r);
        assert_eq!(fingerprint("x"), fingerprint("x"));
        assert_ne!(
            fingerprint("tick=2000|rev=1"),
            fingerprint("tick=2000|rev=2")
        );
        assert_eq!(fingerprint("").len(), 16);
    }
}
