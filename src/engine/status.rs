//! Every status the charm can show, in one table, in priority order: when several conditions
//! hold, the first one in [`UnitCondition`]'s order is shown. Messages reuse Charmed ZooKeeper's
//! strings where the meaning is the same; the README lists each with what to do.

use crate::juju::tools::{Status, StatusKind};

/// Conditions of a unit, highest priority first (the derive order is the priority).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnitCondition {
    /// Configuration values out of range: nothing is rewritten until fixed.
    InvalidConfig(String),
    /// The software could not be installed.
    InstallFailed(String),
    /// The server was started but is not running.
    ServiceNotRunning(String),
    /// The server's data tree differed from the quorum leader's after some transactions
    /// (`zk_digest_mismatches_count`): one of the two lacks writes.
    DataMismatch,
    NoPeerRelation,
    WaitingCredentials,
    WaitingBootstrap,
    WaitingAddress,
    /// Lower-numbered units join the ensemble first.
    WaitingOtherUnits,
    /// This unit can never join (a member has a higher id): the operator must replace it.
    CannotJoin(String),
    /// This unit's server was restarted onto a new ZooKeeper build and does not serve: the
    /// upgrade stops here (refresh back to the previous charm to roll back).
    UpgradeFailed(String),
    /// This unit restarted its server in a rolling restart and it does not serve again: the
    /// roll waits for it.
    RestartStalled,
    /// A needed change waits on the ensemble (deferred; retried at the next hook).
    Deferred(String),
    /// A safety hold the charm will not force.
    Held(String),
    /// A client's request was refused (bad database, a path that is not free); nothing was
    /// created for it.
    ClientRefused {
        relation: u32,
        app: String,
        why: String,
    },
    /// The TLS provider refused this unit's request, or its certificate is unusable: the last
    /// stores stay in force.
    TlsRefused(String),
    /// The server runs but does not serve yet (no quorum, or still syncing).
    NotServing,
    /// The server serves as a non-voting member; the leader adds it.
    NotInQuorum,
    /// A TLS step waits for the other units (a CA rotation's trust).
    TlsWaiting(String),
    /// An upgrade holds for the operator (`pause-after-unit-refresh`): nothing moves until
    /// `resume-upgrade`.
    UpgradePaused(String),
    /// The ensemble upgrades to a build this unit's charm does not carry yet.
    UpgradeWaitingCharm(String),
    /// An upgrade is in flight and this unit's server waits for its turn.
    UpgradeReady,
    /// A rolling restart is pending for this unit.
    RestartPending,
    /// This unit is leaving.
    Leaving,
    /// This unit's server runs the new build; others still upgrade.
    UpgradeCompleted,
    Active,
}

impl UnitCondition {
    pub fn status(&self) -> Status {
        use UnitCondition::*;
        match self {
            InvalidConfig(m) => Status::blocked(m.clone()),
            InstallFailed(m) => {
                Status::blocked(format!("unable to install zookeeper service: {m}"))
            }
            ServiceNotRunning(m) => Status::blocked(format!("zookeeper service not running: {m}")),
            DataMismatch => Status::blocked(
                "zookeeper data differs from the quorum leader's (digest mismatches): one of them lacks writes; see get-quorum-status and the README",
            ),
            NoPeerRelation => Status::maintenance("no peer relation yet"),
            WaitingCredentials => {
                Status::waiting("waiting for leader to create internal user credentials")
            }
            WaitingBootstrap => {
                Status::waiting("waiting for the lowest-numbered unit to bootstrap the ensemble")
            }
            WaitingAddress => Status::waiting("waiting for unit addresses on the cluster relation"),
            WaitingOtherUnits => Status::waiting("other units starting first"),
            CannotJoin(m) => Status::blocked(m.clone()),
            Deferred(m) => Status::waiting(format!("{m}; retrying at the next hook")),
            Held(m) => Status::blocked(m.clone()),
            ClientRefused { relation, app, why } => Status::blocked(format!(
                "client request refused: relation {relation} ({app}): {why}"
            )),
            TlsRefused(m) => Status::blocked(m.clone()),
            TlsWaiting(m) => Status::waiting(m.clone()),
            NotServing => {
                Status::waiting("zookeeper server not serving requests yet (syncing or no quorum)")
            }
            NotInQuorum => {
                Status::waiting("unit not in the zookeeper quorum yet; the leader is adding it")
            }
            RestartStalled => Status::blocked(
                "rolling restart stopped: this server does not serve again after its restart (the others are left as they are); check tick-time, init-limit and the server log",
            ),
            RestartPending => Status::maintenance("waiting for its turn in a rolling restart"),
            UpgradeFailed(b) => Status::blocked(format!(
                "upgrade failed: this server does not serve on ZooKeeper {b}; ready to rollback application (juju refresh to the previous charm)"
            )),
            UpgradeWaitingCharm(b) => Status::waiting(format!(
                "waiting for a charm carrying ZooKeeper {b} (the upgrade target)"
            )),
            UpgradeReady => Status::waiting("other units upgrading first..."),
            UpgradePaused(m) => Status::blocked(m.clone()),
            UpgradeCompleted => Status::maintenance("upgrade completed"),
            Leaving => Status::maintenance("leaving the zookeeper quorum"),
            Active => Status::active(""),
        }
    }
}

/// Longest status message shown (the log holds every message in full).
pub const MAX_MESSAGE: usize = 300;

/// The most important of several conditions. Several refused clients are counted and named;
/// a message longer than [`MAX_MESSAGE`] is cut, pointing to the log.
pub fn unit_status(conditions: &[UnitCondition]) -> Status {
    let top = conditions.iter().min().unwrap_or(&UnitCondition::Active);
    let mut status = top.status();
    if matches!(top, UnitCondition::ClientRefused { .. }) {
        let mut others: Vec<(u32, String)> = conditions
            .iter()
            .filter(|c| *c != top)
            .filter_map(|c| match c {
                UnitCondition::ClientRefused { relation, app, .. } => {
                    Some((*relation, format!("{relation} ({app})")))
                }
                _ => None,
            })
            .collect();
        others.sort();
        let others: Vec<String> = others.into_iter().map(|(_, s)| s).collect();
        if !others.is_empty() {
            status.message = format!(
                "{} client requests refused; {}; also relation(s) {}",
                others.len() + 1,
                status
                    .message
                    .trim_start_matches("client request refused: "),
                others.join(", ")
            );
        }
    }
    status.message = bounded(&status.message);
    status
}

/// A message cut to [`MAX_MESSAGE`] characters, saying where the rest is.
pub fn bounded(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE {
        return message.to_string();
    }
    let head: String = message.chars().take(MAX_MESSAGE - 30).collect();
    format!("{head}... (in full: juju debug-log)")
}

/// The application status the leader sets: the quorum summary, and an invalid configuration
/// (which holds every unit back) after it. A refused client shows on the leader unit only: one
/// client's bad request does not turn the whole application blocked.
pub fn app_status_with(quorum: Status, leader_conditions: &[UnitCondition]) -> Status {
    match leader_conditions.iter().min() {
        Some(UnitCondition::InvalidConfig(m)) => {
            Status::blocked(bounded(&format!("{}; {m}", quorum.message)))
        }
        _ => quorum,
    }
}

/// The application status while the TLS switch runs: its progress first ("enabling TLS: step
/// 2/3, 2 of 3 units; 3/3 members in quorum"), maintenance while the quorum is healthy.
pub fn app_status_tls(quorum: Status, progress: &str) -> Status {
    let message = bounded(&format!("{progress}; {}", quorum.message));
    if quorum.kind == StatusKind::Active {
        Status::maintenance(message)
    } else {
        Status { message, ..quorum }
    }
}

/// The application status while an upgrade waits or runs: its progress first ("upgrading
/// ZooKeeper to 3.8.0-11+deb12u2: 1 of 3 servers; 3/3 members in quorum"), of the progress's
/// kind unless the quorum is worse off.
pub fn app_status_upgrade(quorum: Status, progress: &Status) -> Status {
    let message = bounded(&format!("{}; {}", progress.message, quorum.message));
    if quorum.kind == StatusKind::Active {
        Status {
            message,
            ..progress.clone()
        }
    } else {
        Status { message, ..quorum }
    }
}

/// The leader's application status: how much of the ensemble is healthy.
pub fn app_status(serving_voters: usize, units: usize, has_leader: bool) -> Status {
    let summary = format!("{serving_voters}/{units} members in quorum");
    if !has_leader {
        Status::blocked(format!("no quorum: {summary}"))
    } else if serving_voters == units {
        Status::active(summary)
    } else {
        Status::waiting(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::tools::StatusKind;

    #[test]
    fn first_condition_wins() {
        let s = unit_status(&[
            UnitCondition::NotInQuorum,
            UnitCondition::InvalidConfig("invalid config tick-time=0: x".into()),
        ]);
        assert_eq!(s, Status::blocked("invalid config tick-time=0: x"));
        assert_eq!(unit_status(&[]), Status::active(""));
        assert_eq!(
            unit_status(&[
                UnitCondition::Active,
                UnitCondition::Deferred("no quorum leader".into())
            ])
            .kind,
            StatusKind::Waiting
        );
    }

    #[test]
    fn refused_clients_are_counted_and_messages_bounded() {
        let refused = |r: u32, why: &str| UnitCondition::ClientRefused {
            relation: r,
            app: format!("app{r}"),
            why: why.into(),
        };
        let s = unit_status(&[
            UnitCondition::Active,
            refused(9, "database /x is refused: a"),
            refused(4, "database /y is refused: b"),
            refused(7, "database /z is refused: c"),
        ]);
        assert_eq!(s.kind, StatusKind::Blocked);
        assert!(
            s.message
                .starts_with("3 client requests refused; relation 4 (app4): database /y"),
            "{}",
            s.message
        );
        assert!(
            s.message.ends_with("also relation(s) 7 (app7), 9 (app9)"),
            "{}",
            s.message
        );
        let long = unit_status(&[refused(1, &"x".repeat(10_000))]);
        assert!(
            long.message.chars().count() <= MAX_MESSAGE,
            "{}",
            long.message.len()
        );
        assert!(long.message.ends_with("(in full: juju debug-log)"));
    }

    #[test]
    fn app_status_shows_what_blocks_the_whole_application() {
        let quorum = app_status(3, 3, true);
        assert_eq!(
            app_status_with(quorum.clone(), &[UnitCondition::Active]),
            quorum
        );
        let s = app_status_with(
            quorum.clone(),
            &[UnitCondition::InvalidConfig(
                "invalid config tick-time=0: x".into(),
            )],
        );
        assert_eq!(s.kind, StatusKind::Blocked);
        assert_eq!(
            s.message,
            "3/3 members in quorum; invalid config tick-time=0: x"
        );
        // A unit-only condition, or one client's refusal, leaves the summary.
        assert_eq!(
            app_status_with(quorum.clone(), &[UnitCondition::NotInQuorum]),
            quorum
        );
        let refused = UnitCondition::ClientRefused {
            relation: 3,
            app: "a".into(),
            why: "w".into(),
        };
        assert_eq!(app_status_with(quorum.clone(), &[refused]), quorum);
    }

    #[test]
    fn app_summary() {
        assert_eq!(
            app_status(3, 3, true),
            Status::active("3/3 members in quorum")
        );
        assert_eq!(
            app_status(2, 3, true),
            Status::waiting("2/3 members in quorum")
        );
        assert_eq!(
            app_status(1, 3, false),
            Status::blocked("no quorum: 1/3 members in quorum")
        );
    }
}
