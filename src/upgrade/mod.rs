//! In-place upgrades (`juju refresh`): which ZooKeeper build the servers run, decided by the
//! leader on evidence, carried out by the rolling restart (one server at a time, the quorum
//! leader last, each only while every other voter serves).
//!
//! The pieces of peer data (`cluster` relation unless said otherwise):
//! - app `workload-build`: the build every server should run (the **target**; empty: the
//!   distribution's package, as before this feature). It is one of the server's inputs
//!   ([`crate::charm`]'s fingerprint), so a moved target makes every server "behind" and the
//!   existing rolling restart lock restarts them in turn;
//! - unit `charm-release`: the charm this unit's agent runs (its `version` file), and unit
//!   `workload-build`: the build its running server was started with;
//! - app `schema-version`: the peer-data schema the data was written for ([`schema`]);
//! - `upgrade` relation, for Charmed ZooKeeper's tools and operators: app `upgrade-stack`
//!   (units still to upgrade, quorum leader at index 0, the next one on top), app
//!   `dependencies`, unit `state` (`idle`, `ready`, `upgrading`, `completed`, `failed`).
//!
//! Rules of [`decide`] (pure; the first that applies):
//! 1. The charm offers the build the target names: nothing to move (an upgrade in flight is
//!    carried out by the roll; the pause option may hold its next grant).
//! 2. No server ever started (a new deployment): the target is this charm's build at once.
//! 3. Some unit still runs another charm release: wait ("other units upgrading first...").
//! 4. An upgrade to a build this charm does not offer is in flight (some servers run it, some
//!    do not): a rollback. The target moves back at once; the roll restarts servers one at a
//!    time as always (the unit holding the lock keeps it).
//! 5. Otherwise this is a new upgrade: refused while a TLS switch, a password rotation or a
//!    rolling restart is in flight, or while the ensemble is not healthy (no quorum leader,
//!    members syncing, a voter not serving): the automatic pre-upgrade check. Then it moves.

use std::collections::BTreeMap;

use crate::quorum::plan::UnitId;

/// Cluster app key: the build every server should run.
pub const KEY_TARGET: &str = "workload-build";
/// Cluster unit key: the build this unit's running server was started with.
pub const KEY_BUILD: &str = "workload-build";
/// Cluster unit key: the charm release this unit's agent runs.
pub const KEY_RELEASE: &str = "charm-release";
/// Cluster unit key: the build this unit's charm carries ("" = the distribution's package).
pub const KEY_OFFERED: &str = "charm-build";
/// Cluster app key: the leader's count of upgraded units `resume-upgrade` let go on from.
pub const KEY_RESUMED: &str = "upgrade-resumed";
/// Cluster app key: the target moved back to a build servers ran before (no pause applies).
pub const KEY_ROLLBACK: &str = "upgrade-rollback";
/// The `upgrade` peer relation (Charmed ZooKeeper's).
pub const ENDPOINT: &str = "upgrade";
pub const KEY_STACK: &str = "upgrade-stack";
pub const KEY_DEPENDENCIES: &str = "dependencies";
pub const KEY_UNIT_STATE: &str = "state";

/// Charmed ZooKeeper's unit states on the `upgrade` relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitState {
    Idle,
    Ready,
    Upgrading,
    Completed,
    Failed,
}

impl UnitState {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::Idle => "idle",
            UnitState::Ready => "ready",
            UnitState::Upgrading => "upgrading",
            UnitState::Completed => "completed",
            UnitState::Failed => "failed",
        }
    }
}

/// `pause-after-unit-refresh`: hold the upgrade for the operator after upgraded units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pause {
    /// Go on through every unit (Charmed ZooKeeper's behaviour).
    #[default]
    None,
    /// Hold after the first unit until `resume-upgrade`.
    First,
    /// Hold after every unit until `resume-upgrade`.
    All,
}

impl Pause {
    pub fn parse(s: &str) -> Option<Pause> {
        match s.trim() {
            "none" => Some(Pause::None),
            "first" => Some(Pause::First),
            "all" => Some(Pause::All),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Pause::None => "none",
            Pause::First => "first",
            Pause::All => "all",
        }
    }
}

/// What one unit says in peer data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitView {
    /// Its charm release (`None`: a charm that does not publish it, e.g. Charmed ZooKeeper).
    pub release: Option<String>,
    /// The build its charm carries (`None`: not published).
    pub offered: Option<String>,
    /// The build its running server was started with (`None`: never said; `Some("")`: the
    /// distribution's package).
    pub build: Option<String>,
    /// Its server ran (`state=started`).
    pub started: bool,
}

/// Everything the leader's decision looks at.
#[derive(Clone, Debug, Default)]
pub struct Input<'a> {
    /// This charm's release and the build it offers ("" = the distribution's package).
    pub release: &'a str,
    pub offered: &'a str,
    /// The target in peer data ("" when unset).
    pub target: &'a str,
    pub units: BTreeMap<UnitId, UnitView>,
    /// Why the ensemble is not healthy enough to restart a server (`None`: healthy).
    pub unhealthy: Option<String>,
    /// Other procedures in flight (a TLS switch, a password rotation, a rolling restart).
    pub busy: Option<String>,
    /// The quorum leader, which goes last.
    pub quorum_leader: Option<UnitId>,
    pub pause: Pause,
    /// Upgraded units `resume-upgrade` let go on from.
    pub resumed: usize,
    /// The target was moved back (a rollback): the pause does not apply.
    pub rollback: bool,
}

/// The leader's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No upgrade anywhere: every server runs the target, which this charm offers.
    Idle,
    /// Move the target to this charm's build.
    Move {
        from: String,
        to: String,
        rollback: bool,
    },
    /// The target is this charm's build and servers are still behind: the roll carries it
    /// out. `hold` says why no further unit may start now (the pause option).
    InFlight {
        done: usize,
        of: usize,
        stack: Vec<UnitId>,
        hold: Option<String>,
    },
    /// An upgrade waits (for other units' charms, or refused by a check), with why; `hold`:
    /// servers are still behind the target while units change charms, so the roll must not
    /// restart any more of them (a refresh may be taking the target back).
    Waiting { why: String, hold: bool },
}

/// Units whose server does not (known to) run `target`: the ones still to upgrade.
fn behind(units: &BTreeMap<UnitId, UnitView>, target: &str) -> Vec<UnitId> {
    units
        .iter()
        .filter(|(_, v)| v.started && v.build.as_deref() != Some(target))
        .map(|(u, _)| *u)
        .collect()
}

/// How far an upgrade to `target` is: (started servers running it, started servers).
pub fn progress(units: &BTreeMap<UnitId, UnitView>, target: &str) -> (usize, usize) {
    let started = units.values().filter(|v| v.started);
    let of = started.clone().count();
    let done = started
        .filter(|v| v.build.as_deref() == Some(target))
        .count();
    (done, of)
}

/// Charmed ZooKeeper's stack order: the quorum leader at index 0 (popped last), then the
/// others with the one the roll grants next (the lowest number) on top.
pub fn stack(behind: &[UnitId], quorum_leader: Option<UnitId>) -> Vec<UnitId> {
    let mut others: Vec<UnitId> = behind
        .iter()
        .copied()
        .filter(|u| Some(*u) != quorum_leader)
        .collect();
    others.sort_by(|a, b| b.cmp(a));
    let mut out: Vec<UnitId> = quorum_leader
        .filter(|q| behind.contains(q))
        .into_iter()
        .collect();
    out.extend(others);
    out
}

/// Why an upgrade with `done` servers on the target holds for the operator (`None`: it goes
/// on).
pub fn hold(pause: Pause, done: usize, resumed: usize) -> Option<String> {
    match pause {
        Pause::First if done >= 1 && resumed < 1 => Some(1),
        Pause::All if done >= 1 && resumed < done => Some(done),
        _ => None,
    }
    .map(|n| {
        format!(
            "upgrade paused after {n} unit{} (pause-after-unit-refresh={}): check them, then run resume-upgrade on the leader",
            if n == 1 { "" } else { "s" },
            pause.as_str()
        )
    })
}

/// A build as operators read it.
pub fn label(build: &str) -> &str {
    if build.is_empty() {
        "the distribution's package"
    } else {
        build
    }
}

/// Units whose charm is not this one (another release, or another build carried).
fn other_charms(i: &Input<'_>) -> Vec<String> {
    i.units
        .iter()
        .filter(|(_, v)| {
            v.release.as_deref() != Some(i.release)
                || v.offered.as_deref().is_some_and(|o| o != i.offered)
        })
        .map(|(u, _)| format!("unit {u}"))
        .collect()
}

/// The leader's next move (rules in the module documentation).
pub fn decide(i: &Input<'_>) -> Decision {
    let started: Vec<UnitId> = i
        .units
        .iter()
        .filter(|(_, v)| v.started)
        .map(|(u, _)| *u)
        .collect();
    let old = other_charms(i);
    let behind_now = behind(&i.units, i.target);
    let waiting_for_charms = || Decision::Waiting {
        why: format!(
            "other units upgrading first... ({} still run{} another charm)",
            old.join(", "),
            if old.len() == 1 { "s" } else { "" }
        ),
        hold: !behind_now.is_empty(),
    };
    if i.target == i.offered {
        if behind_now.is_empty() {
            return Decision::Idle;
        }
        if !old.is_empty() {
            // Units change charms under a roll toward this target: no more restarts until
            // every unit runs one charm (a refresh may be taking the target elsewhere).
            return waiting_for_charms();
        }
        let (done, of) = progress(&i.units, i.target);
        let hold = if i.rollback {
            None
        } else {
            hold(i.pause, done, i.resumed)
        };
        return Decision::InFlight {
            done,
            of,
            stack: stack(&behind_now, i.quorum_leader),
            hold,
        };
    }
    let to = i.offered.to_string();
    let from = i.target.to_string();
    if started.is_empty() {
        return Decision::Move {
            from,
            to,
            rollback: false,
        };
    }
    if !old.is_empty() {
        return waiting_for_charms();
    }
    // An upgrade to a build this charm does not offer is still in flight: superseded at once
    // (the roll restarts servers one at a time whatever the target). A rollback when servers
    // ran this charm's build before.
    if !behind_now.is_empty() {
        let rollback = started
            .iter()
            .any(|u| i.units[u].build.as_deref() == Some(i.offered));
        return Decision::Move { from, to, rollback };
    }
    if let Some(why) = i.busy.as_ref().or(i.unhealthy.as_ref()) {
        return Decision::Waiting {
            why: format!(
                "upgrade to ZooKeeper {} refused by the pre-upgrade check: {why}",
                label(i.offered)
            ),
            hold: false,
        };
    }
    Decision::Move {
        from,
        to,
        rollback: false,
    }
}

/// Whether a new upgrade would need the pre-upgrade check (rule 5): the target moves, servers
/// run, every unit runs this charm, and no earlier upgrade is in flight.
pub fn needs_check(i: &Input<'_>) -> bool {
    i.target != i.offered
        && i.units.values().any(|v| v.started)
        && other_charms(i).is_empty()
        && behind(&i.units, i.target).is_empty()
}

/// This unit's state on the `upgrade` relation, from what it knows: the target, the build
/// its server runs, whether the leader says an upgrade is in flight, whether its restart in
/// the roll stalled.
pub fn unit_state(
    target: &str,
    running: Option<&str>,
    in_flight: bool,
    stalled: bool,
) -> UnitState {
    if stalled && in_flight && running.is_some() {
        // Its restart in the roll (onto the target) did not serve.
        return UnitState::Failed;
    }
    match running {
        Some(b) if b == target => {
            if in_flight {
                UnitState::Completed
            } else {
                UnitState::Idle
            }
        }
        Some(_) if stalled => UnitState::Failed,
        Some(_) => UnitState::Ready,
        None => UnitState::Idle,
    }
}

/// Charmed ZooKeeper's `dependencies` document for a build.
pub fn dependencies(version: &str) -> String {
    serde_json::json!({
        "service": {
            "name": "zookeeper",
            "version": version,
            "upgrade_supported": "^3.5",
            "dependencies": {}
        }
    })
    .to_string()
}

/// The upgrade-stack as Charmed ZooKeeper writes it (a JSON list of unit numbers).
pub fn stack_json(stack: &[UnitId]) -> String {
    serde_json::to_string(stack).unwrap_or_else(|_| "[]".into())
}

/// Peer-data schema versions: what this charm writes, and how it takes data written for
/// another version.
pub mod schema {
    /// Cluster app key.
    pub const KEY: &str = "schema-version";
    /// 1: Charmed ZooKeeper's keys and wave 1's (no key written); 2: with the upgrade keys.
    pub const CURRENT: u32 = 2;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Compat {
        /// Written by this charm's schema.
        Same,
        /// Written by an older charm (or Charmed ZooKeeper): read as is; the leader marks it
        /// current once it wrote what this schema adds.
        Older(u32),
        /// Written by a newer charm (a rollback): keys this charm does not know are left
        /// alone, the ones it knows mean what they meant.
        Newer(u32),
    }

    /// How to take data marked `found` (`None`: no mark, the oldest schema).
    pub fn compat(found: Option<&str>) -> Compat {
        let v = found
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1);
        match v.cmp(&CURRENT) {
            std::cmp::Ordering::Equal => Compat::Same,
            std::cmp::Ordering::Less => Compat::Older(v),
            std::cmp::Ordering::Greater => Compat::Newer(v),
        }
    }

    /// What the leader writes: its own version, never lowering a newer one.
    pub fn to_write(found: Option<&str>) -> Option<String> {
        match compat(found) {
            Compat::Older(_) => Some(CURRENT.to_string()),
            _ if found.is_none() => Some(CURRENT.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3.8.0-11+deb12u1";
    const B: &str = "3.8.0-11+deb12u2";

    fn units(spec: &[(&str, &str)]) -> BTreeMap<UnitId, UnitView> {
        spec.iter()
            .enumerate()
            .map(|(u, (release, build))| {
                (
                    u as UnitId,
                    UnitView {
                        release: Some(release.to_string()),
                        offered: None,
                        build: Some(build.to_string()),
                        started: true,
                    },
                )
            })
            .collect()
    }

    fn input<'a>(offered: &'a str, target: &'a str, us: &[(&str, &str)]) -> Input<'a> {
        Input {
            release: "r2",
            offered,
            target,
            units: units(us),
            quorum_leader: Some(0),
            ..Input::default()
        }
    }

    #[test]
    fn a_new_deployment_takes_the_charms_build_at_once() {
        let mut i = input(B, "", &[]);
        i.units.insert(
            0,
            UnitView {
                release: Some("r2".into()),
                offered: None,
                build: None,
                started: false,
            },
        );
        assert_eq!(
            decide(&i),
            Decision::Move {
                from: "".into(),
                to: B.into(),
                rollback: false
            }
        );
    }

    #[test]
    fn the_target_waits_for_every_units_charm() {
        let i = input(B, A, &[("r2", A), ("r1", A), ("r2", A)]);
        match decide(&i) {
            Decision::Waiting { why, hold } => {
                assert!(!hold, "nothing is behind the target");
                assert!(why.starts_with("other units upgrading first..."), "{why}");
                assert!(why.contains("unit 1"), "{why}");
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn a_new_upgrade_is_refused_while_unhealthy_or_busy_and_moves_otherwise() {
        let mut i = input(B, A, &[("r2", A), ("r2", A), ("r2", A)]);
        i.unhealthy = Some("server.2 not serving".into());
        match decide(&i) {
            Decision::Waiting { why, .. } => {
                assert!(
                    why.contains("pre-upgrade check: server.2 not serving"),
                    "{why}"
                )
            }
            d => panic!("{d:?}"),
        }
        i.unhealthy = None;
        i.busy = Some("a TLS switch is in flight".into());
        assert!(matches!(decide(&i), Decision::Waiting { why, .. } if why.contains("TLS switch")));
        i.busy = None;
        assert_eq!(
            decide(&i),
            Decision::Move {
                from: A.into(),
                to: B.into(),
                rollback: false
            }
        );
    }

    #[test]
    fn a_rollback_moves_back_at_once_even_mid_roll() {
        // Unit 1 already runs B; the charm (A again) offers A.
        let mut i = input(A, B, &[("r2", A), ("r2", B), ("r2", A)]);
        i.busy = Some("a rolling restart is in flight".into());
        i.unhealthy = Some("members syncing".into());
        assert_eq!(
            decide(&i),
            Decision::Move {
                from: B.into(),
                to: A.into(),
                rollback: true
            }
        );
    }

    #[test]
    fn charms_changing_under_a_roll_hold_it_and_a_third_build_supersedes_without_pause() {
        // Unit 1 upgraded to B; unit 2 already runs charm r3: the roll holds.
        let mut i = input(B, B, &[("r2", A), ("r2", B), ("r3", A)]);
        assert!(matches!(decide(&i), Decision::Waiting { hold: true, .. }));
        // Same release, another build carried: still another charm.
        i.units.get_mut(&2).unwrap().release = Some("r2".into());
        i.units.get_mut(&2).unwrap().offered = Some(A.into());
        assert!(matches!(decide(&i), Decision::Waiting { hold: true, .. }));
        // A charm offering C mid-upgrade to B: superseded at once, not a rollback.
        let c = "3.9.0";
        let j = input(c, B, &[("r2", A), ("r2", B), ("r2", A)]);
        assert_eq!(
            decide(&j),
            Decision::Move {
                from: B.into(),
                to: c.into(),
                rollback: false
            }
        );
        assert!(!needs_check(&j));
        // A rollback is never paused.
        let mut k = input(A, A, &[("r2", A), ("r2", B), ("r2", A)]);
        k.pause = Pause::First;
        k.rollback = true;
        assert!(matches!(decide(&k), Decision::InFlight { hold: None, .. }));
    }

    #[test]
    fn in_flight_the_stack_has_the_quorum_leader_at_the_bottom_and_the_next_on_top() {
        let mut i = input(B, B, &[("r2", A), ("r2", B), ("r2", A), ("r2", A)]);
        i.quorum_leader = Some(2);
        assert_eq!(
            decide(&i),
            Decision::InFlight {
                done: 1,
                of: 4,
                stack: vec![2, 3, 0],
                hold: None
            }
        );
        let i = input(B, B, &[("r2", B), ("r2", B)]);
        assert_eq!(decide(&i), Decision::Idle);
    }

    #[test]
    fn the_pause_holds_after_the_first_or_every_unit_until_resumed() {
        let mut i = input(B, B, &[("r2", A), ("r2", B), ("r2", A)]);
        i.pause = Pause::First;
        let hold = |i: &Input<'_>| match decide(i) {
            Decision::InFlight { hold, .. } => hold,
            d => panic!("{d:?}"),
        };
        assert!(hold(&i).is_some_and(|h| h.contains("resume-upgrade")));
        i.resumed = 1;
        assert_eq!(hold(&i), None);
        // Nothing upgraded yet: the first unit goes.
        let mut j = input(B, B, &[("r2", A), ("r2", A), ("r2", A)]);
        j.pause = Pause::All;
        assert_eq!(hold(&j), None);
        let mut k = input(B, B, &[("r2", B), ("r2", B), ("r2", A)]);
        k.pause = Pause::All;
        k.resumed = 1;
        assert!(hold(&k).is_some());
        k.resumed = 2;
        assert_eq!(hold(&k), None);
    }

    #[test]
    fn unit_states_follow_the_running_build() {
        assert_eq!(unit_state(B, Some(B), false, false), UnitState::Idle);
        assert_eq!(unit_state(B, Some(B), true, false), UnitState::Completed);
        assert_eq!(unit_state(B, Some(A), true, false), UnitState::Ready);
        assert_eq!(unit_state(B, Some(A), true, true), UnitState::Failed);
        // Started on the new build, it did not serve: failed, not completed.
        assert_eq!(unit_state(B, Some(B), true, true), UnitState::Failed);
        assert_eq!(unit_state(B, None, true, false), UnitState::Idle);
    }

    #[test]
    fn schema_versions_are_read_forwards_and_backwards() {
        use schema::*;
        assert_eq!(compat(None), Compat::Older(1));
        assert_eq!(compat(Some("2")), Compat::Same);
        assert_eq!(compat(Some("7")), Compat::Newer(7));
        assert_eq!(compat(Some("garbage")), Compat::Older(1));
        assert_eq!(to_write(None), Some("2".into()));
        assert_eq!(to_write(Some("1")), Some("2".into()));
        assert_eq!(to_write(Some("2")), None);
        // A rollback never lowers the mark a newer charm wrote.
        assert_eq!(to_write(Some("7")), None);
    }

    #[test]
    fn dependencies_and_stack_are_charmed_zookeepers_json() {
        let d: serde_json::Value = serde_json::from_str(&dependencies("3.8.0")).unwrap();
        assert_eq!(d["service"]["name"], "zookeeper");
        assert_eq!(d["service"]["upgrade_supported"], "^3.5");
        assert_eq!(stack_json(&[2, 1, 0]), "[2,1,0]");
    }
}
