//! Every status the charm can show, in one table, in priority order: when several conditions
//! hold, the first one in [`UnitCondition`]'s order is shown. Messages reuse Charmed ZooKeeper's
//! strings where the meaning is the same; the README lists each with what to do.

use crate::juju::tools::Status;

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
    /// A needed change waits on the ensemble (deferred; retried at the next hook).
    Deferred(String),
    /// A safety hold the charm will not force.
    Held(String),
    /// A client's request was refused (bad database, overlapping chroot); nothing was created.
    ClientRefused(String),
    /// The server runs but does not serve yet (no quorum, or still syncing).
    NotServing,
    /// The server serves as a non-voting member; the leader adds it.
    NotInQuorum,
    /// A rolling restart is pending for this unit.
    RestartPending,
    /// This unit is leaving.
    Leaving,
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
            ClientRefused(m) => Status::blocked(format!("client request refused: {m}")),
            NotServing => {
                Status::waiting("zookeeper server not serving requests yet (syncing or no quorum)")
            }
            NotInQuorum => {
                Status::waiting("unit not in the zookeeper quorum yet; the leader is adding it")
            }
            RestartPending => Status::maintenance("waiting for its turn in a rolling restart"),
            Leaving => Status::maintenance("leaving the zookeeper quorum"),
            Active => Status::active(""),
        }
    }
}

/// The most important of several conditions.
pub fn unit_status(conditions: &[UnitCondition]) -> Status {
    conditions
        .iter()
        .min()
        .unwrap_or(&UnitCondition::Active)
        .status()
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
