//! The leader's TLS switch (pure): which step of the no-downtime switch the ensemble is asked to
//! serve (`tls-target` in the peer application bag), moved one step at a time on evidence in
//! peer data, never on time. No I/O, no clock.
//!
//! Evidence each unit publishes in its peer bag: whether it **holds a certificate** it checked
//! (`tls-cert`, the certificate's fingerprint) and the step its **running server serves**
//! (`tls-serving`, written once the server, restarted into that step, answers again).
//!
//! Rules, in order:
//! - **Goal**: `Tls` while the `certificates` relation is there, `Plain` otherwise.
//! - **Not formed yet** (no unit runs a server): nothing serves, so there is nothing to switch.
//!   With the relation there, the target becomes `Tls` directly (no three rolling restarts for a
//!   new ensemble); each unit starts once it holds its own certificate (the unit's gate), so a
//!   unit the provider refuses holds back only itself. Without it, `Plain`.
//! - **Formed**: the target moves only when every started unit serves it. Then:
//!   - at the goal: nothing to do;
//!   - towards `Tls`: one step up, once every started unit holds a certificate (a unit without
//!     one could not answer its peers' TLS dials);
//!   - towards `Plain`: one step down (certificates do not matter; the stores stay until the
//!     switch back ends, so a unit restarted into an earlier step still has them).
//! - A unit not started yet does not hold the switch back; it starts serving the current target
//!   (with the target above `Plain`, only once it holds its certificate: the unit's own gate).
//! - **Invariants**, checked on every decision: in a formed ensemble the target moves at most
//!   one step, and never while a started unit serves another step.

use std::collections::BTreeMap;
use std::fmt;

use super::serve::Serving;
use crate::quorum::plan::UnitId;

/// What the peer relation says about one unit's TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitTls {
    /// Its server runs: it published `state=started`, or the step it was started into.
    pub started: bool,
    /// It holds a checked certificate (`tls-cert`).
    pub holds_cert: bool,
    /// The step its running server serves (`tls-serving`); `None` before it said.
    pub serving: Option<Serving>,
}

#[derive(Clone, Debug)]
pub struct Input<'a> {
    /// The `certificates` relation is there (with a provider).
    pub relation: bool,
    /// The current `tls-target` (`Plain` when unset).
    pub target: Serving,
    /// Every unit of the peer relation (planned units included).
    pub units: &'a BTreeMap<UnitId, UnitTls>,
}

/// What the switch waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// Units to hold a certificate: (how many do, of how many).
    Certificates(usize, usize),
    /// Started units to serve the target: (how many do, of how many).
    Restarts(usize, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// At the goal; nothing to do.
    Done,
    /// Write `tls-target` = this step.
    Advance(Serving),
    /// Hold the target where it is.
    Wait(Waiting),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("TLS switch invariant violated: {0}")]
pub struct InvariantViolation(pub String);

/// The step number of `s` on the way up (0 for plain, 3 for TLS).
pub fn step_number(s: Serving) -> usize {
    Serving::ORDER.iter().position(|x| *x == s).unwrap_or(0)
}

/// The leader's decision (see the module's rules).
pub fn decide(input: &Input<'_>) -> Result<Decision, InvariantViolation> {
    let goal = if input.relation {
        Serving::Tls
    } else {
        Serving::Plain
    };
    let started: Vec<&UnitTls> = input.units.values().filter(|u| u.started).collect();
    let d = if started.is_empty() {
        formation(input, goal)
    } else {
        let serving_target = started
            .iter()
            .filter(|u| u.serving == Some(input.target))
            .count();
        if serving_target < started.len() {
            Decision::Wait(Waiting::Restarts(serving_target, started.len()))
        } else if input.target == goal {
            Decision::Done
        } else if goal == Serving::Tls {
            let holding = started.iter().filter(|u| u.holds_cert).count();
            if holding < started.len() {
                Decision::Wait(Waiting::Certificates(holding, started.len()))
            } else {
                Decision::Advance(input.target.toward(goal))
            }
        } else {
            Decision::Advance(input.target.toward(goal))
        }
    };
    check(input, &d)?;
    Ok(d)
}

fn formation(input: &Input<'_>, goal: Serving) -> Decision {
    if input.target == goal {
        Decision::Done
    } else {
        Decision::Advance(goal)
    }
}

fn check(input: &Input<'_>, d: &Decision) -> Result<(), InvariantViolation> {
    let Decision::Advance(next) = d else {
        return Ok(());
    };
    let started: Vec<&UnitTls> = input.units.values().filter(|u| u.started).collect();
    if started.is_empty() {
        return Ok(());
    }
    let from = step_number(input.target);
    let to = step_number(*next);
    if from.abs_diff(to) != 1 {
        return Err(InvariantViolation(format!(
            "a formed ensemble moved from {:?} to {next:?} (more than one step)",
            input.target
        )));
    }
    if started.iter().any(|u| u.serving != Some(input.target)) {
        return Err(InvariantViolation(format!(
            "moved to {next:?} while a started unit does not serve {:?}",
            input.target
        )));
    }
    if to > from && started.iter().any(|u| !u.holds_cert) {
        return Err(InvariantViolation(format!(
            "moved up to {next:?} while a started unit holds no certificate"
        )));
    }
    Ok(())
}

/// What the application status says while the switch runs (`None` when there is nothing to
/// say): "enabling TLS: step 2/3, 2 of 3 units", "enabling TLS: waiting for certificates, 1 of
/// 3 units", "disabling TLS: step 1/3, 3 of 3 units".
pub fn progress(input: &Input<'_>, d: &Decision) -> Option<String> {
    let enabling = input.relation;
    let verb = if enabling { "enabling" } else { "disabling" };
    match d {
        Decision::Done => None,
        Decision::Wait(Waiting::Certificates(n, of)) => Some(format!(
            "{verb} TLS: waiting for certificates, {n} of {of} units"
        )),
        Decision::Wait(Waiting::Restarts(n, of)) => Some(format!(
            "{verb} TLS: step {}/3, {n} of {of} units",
            StepDisplay(input.target, enabling)
        )),
        Decision::Advance(next) => Some(format!(
            "{verb} TLS: step {}/3",
            StepDisplay(*next, enabling)
        )),
    }
}

/// A step's number in the direction of travel (1..=3).
struct StepDisplay(Serving, bool);

impl fmt::Display for StepDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = step_number(self.0);
        let shown = if self.1 { n } else { 3 - n };
        write!(f, "{}", shown.clamp(1, 3))
    }
}

/// This unit's own gate: may its server start (or restart) serving `target`? Above `Plain` it
/// needs its certificate first.
pub fn may_serve(target: Serving, holds_cert: bool) -> bool {
    target == Serving::Plain || holds_cert
}

/// Why a new server may not start yet (`None`: it may). Above `Plain` it needs its certificate;
/// with the `certificates` relation there before any server started, the ensemble forms in TLS
/// directly, so nobody starts before the leader's target says `Tls`.
pub fn start_gate(
    relation: bool,
    target: Serving,
    holds_cert: bool,
    formed: bool,
) -> Option<&'static str> {
    if !may_serve(target, holds_cert) {
        Some("waiting for this unit's TLS certificate before starting")
    } else if relation && !formed && target == Serving::Plain {
        Some("waiting for every unit's TLS certificate before the ensemble forms")
    } else {
        None
    }
}

/// Whether clients are told to use TLS: the relation is there and every started server serves
/// the TLS client port (every step above `Plain`). Told before the walk back down begins, so
/// clients leave 2182 while it is still served.
pub fn clients_use_tls(relation: bool, units: &BTreeMap<UnitId, UnitTls>) -> bool {
    let mut started = units.values().filter(|u| u.started).peekable();
    relation
        && started.peek().is_some()
        && started.all(|u| u.serving.is_some_and(|s| s != Serving::Plain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Serving::*;

    fn u(started: bool, cert: bool, serving: Option<Serving>) -> UnitTls {
        UnitTls {
            started,
            holds_cert: cert,
            serving,
        }
    }

    fn units(list: &[UnitTls]) -> BTreeMap<UnitId, UnitTls> {
        list.iter()
            .enumerate()
            .map(|(i, x)| (i as UnitId, *x))
            .collect()
    }

    fn run(relation: bool, target: Serving, list: &[UnitTls]) -> Decision {
        let us = units(list);
        decide(&Input {
            relation,
            target,
            units: &us,
        })
        .expect("invariants hold")
    }

    #[test]
    fn table() {
        let all = |s: Serving, cert: bool| vec![u(true, cert, Some(s)); 3];
        // (relation, target, units, expected)
        let cases: Vec<(bool, Serving, Vec<UnitTls>, Decision)> = vec![
            // Enabling on a live ensemble: waits for every certificate, then one step at a time.
            (
                true,
                Plain,
                vec![
                    u(true, true, Some(Plain)),
                    u(true, false, Some(Plain)),
                    u(true, true, Some(Plain)),
                ],
                Decision::Wait(Waiting::Certificates(2, 3)),
            ),
            (true, Plain, all(Plain, true), Decision::Advance(Unified)),
            (
                true,
                Unified,
                vec![
                    u(true, true, Some(Unified)),
                    u(true, true, Some(Plain)),
                    u(true, true, Some(Plain)),
                ],
                Decision::Wait(Waiting::Restarts(1, 3)),
            ),
            (
                true,
                Unified,
                all(Unified, true),
                Decision::Advance(UnifiedQuorum),
            ),
            (
                true,
                UnifiedQuorum,
                all(UnifiedQuorum, true),
                Decision::Advance(Tls),
            ),
            (true, Tls, all(Tls, true), Decision::Done),
            // Disabling: one step down at a time, certificates or not.
            (
                false,
                Tls,
                all(Tls, false),
                Decision::Advance(UnifiedQuorum),
            ),
            (
                false,
                UnifiedQuorum,
                all(UnifiedQuorum, true),
                Decision::Advance(Unified),
            ),
            (false, Unified, all(Unified, true), Decision::Advance(Plain)),
            (
                false,
                Unified,
                vec![
                    u(true, true, Some(Plain)),
                    u(true, true, Some(Unified)),
                    u(true, true, Some(Unified)),
                ],
                Decision::Wait(Waiting::Restarts(2, 3)),
            ),
            (false, Plain, all(Plain, false), Decision::Done),
            // Reversal mid-way: back down from where it is, once every unit serves it.
            (
                false,
                UnifiedQuorum,
                all(UnifiedQuorum, true),
                Decision::Advance(Unified),
            ),
            // A new ensemble with the relation: TLS directly (each unit starts once it holds its
            // own certificate: one the provider refuses holds back only itself).
            (
                true,
                Plain,
                vec![
                    u(false, true, None),
                    u(false, false, None),
                    u(false, true, None),
                ],
                Decision::Advance(Tls),
            ),
            (
                false,
                Tls,
                vec![u(false, true, None); 3],
                Decision::Advance(Plain),
            ),
            (true, Tls, vec![u(false, true, None); 3], Decision::Done),
            // A unit joining under TLS does not hold the ensemble back.
            (
                true,
                Tls,
                vec![
                    u(true, true, Some(Tls)),
                    u(true, true, Some(Tls)),
                    u(false, false, None),
                ],
                Decision::Done,
            ),
            // A unit whose server has not said what it serves yet is waited for.
            (
                true,
                Unified,
                vec![u(true, true, Some(Unified)), u(true, true, None)],
                Decision::Wait(Waiting::Restarts(1, 2)),
            ),
        ];
        for (i, (relation, target, list, want)) in cases.into_iter().enumerate() {
            assert_eq!(run(relation, target, &list), want, "case {i}");
        }
    }

    #[test]
    fn every_decision_keeps_the_invariants_over_all_small_inputs() {
        let opts = [
            None,
            Some(Plain),
            Some(Unified),
            Some(UnifiedQuorum),
            Some(Tls),
        ];
        let mut checked = 0;
        for relation in [false, true] {
            for target in Serving::ORDER {
                for a in opts {
                    for b in opts {
                        for (sa, ca, sb, cb) in [
                            (true, true, true, true),
                            (true, false, true, true),
                            (true, true, false, false),
                            (false, true, false, false),
                        ] {
                            let list = [u(sa, ca, a), u(sb, cb, b)];
                            let us = units(&list);
                            let input = Input {
                                relation,
                                target,
                                units: &us,
                            };
                            decide(&input).unwrap_or_else(|e| panic!("{e}: {list:?}"));
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 300);
    }

    #[test]
    fn the_switch_walks_to_tls_and_back_in_three_rolls_each() {
        // Simulate: each Advance is followed by a roll where every unit restarts into it.
        let mut target = Plain;
        let mut list = vec![u(true, true, Some(Plain)); 3];
        let mut rolls = 0;
        for relation in [true, false] {
            loop {
                match run(relation, target, &list) {
                    Decision::Advance(next) => {
                        target = next;
                        for x in &mut list {
                            x.serving = Some(next);
                        }
                        rolls += 1;
                    }
                    Decision::Done => break,
                    Decision::Wait(w) => panic!("stuck: {w:?}"),
                }
            }
        }
        assert_eq!(rolls, 6);
        assert_eq!(target, Plain);
    }

    #[test]
    fn status_says_the_step_and_progress() {
        let us = units(&[
            u(true, true, Some(Unified)),
            u(true, true, Some(Plain)),
            u(true, true, Some(Plain)),
        ]);
        let input = Input {
            relation: true,
            target: Unified,
            units: &us,
        };
        let d = decide(&input).expect("ok");
        assert_eq!(
            progress(&input, &d).as_deref(),
            Some("enabling TLS: step 1/3, 1 of 3 units")
        );
        let us = units(&[u(true, true, Some(Tls)); 3]);
        let input = Input {
            relation: false,
            target: Tls,
            units: &us,
        };
        let d = decide(&input).expect("ok");
        assert_eq!(
            progress(&input, &d).as_deref(),
            Some("disabling TLS: step 1/3")
        );
        assert!(may_serve(Plain, false) && may_serve(Tls, true) && !may_serve(Unified, false));
    }

    #[test]
    fn new_servers_start_only_with_what_they_need() {
        // (relation, target, holds, formed) -> may start
        for (relation, target, holds, formed, may) in [
            (false, Plain, false, false, true),
            (true, Plain, true, false, false),
            (true, Tls, true, false, true),
            (true, Tls, false, true, false),
            (true, Plain, false, true, true),
            (false, Unified, false, true, false),
            (false, Unified, true, true, true),
        ] {
            assert_eq!(
                start_gate(relation, target, holds, formed).is_none(),
                may,
                "{relation} {target:?} {holds} {formed}"
            );
        }
    }

    #[test]
    fn clients_move_to_tls_once_every_server_serves_it() {
        let some = units(&[u(true, true, Some(Unified)), u(true, true, Some(Tls))]);
        assert!(clients_use_tls(true, &some));
        assert!(!clients_use_tls(false, &some));
        let one_plain = units(&[u(true, true, Some(Unified)), u(true, true, Some(Plain))]);
        assert!(!clients_use_tls(true, &one_plain));
        let unknown = units(&[u(true, true, Some(Tls)), u(true, true, None)]);
        assert!(!clients_use_tls(true, &unknown));
        let joining = units(&[u(true, true, Some(Tls)), u(false, false, None)]);
        assert!(clients_use_tls(true, &joining));
        assert!(!clients_use_tls(true, &units(&[])));
    }
}
