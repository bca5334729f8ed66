//! One error type for everything that talks to ZooKeeper. Each message says what failed and what
//! the operator (or the charm) can do about it.

use std::time::Duration;

use zookeeper_client as zkc;

/// A failed ZooKeeper operation.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error(
        "some ensemble members are still syncing ({detail}); the charm retries at its next hook"
    )]
    MembersSyncing { detail: String },

    #[error("server {host} is not ready to join ({state}): it must be running and in \"... - broadcast\"; the charm retries at its next hook, check that server's log if this persists")]
    MemberNotReady { host: String, state: String },

    #[error("no quorum leader found among {} ({detail}); the ensemble may be electing or has lost its quorum: start the stopped servers, the charm retries at its next hook", tried.join(", "))]
    QuorumLeaderNotFound { tried: Vec<String>, detail: String },

    #[error("not authorised to {op} {path}: the session's user lacks the ACL permission (reconfig needs the super user)")]
    NoAuth { op: String, path: String },

    #[error("authentication of {user:?} to {host} failed: check the user's password and the server's JAAS file")]
    AuthFailed { user: String, host: String },

    #[error("{op} failed: the version changed underneath (another change won the race); re-read and retry")]
    BadVersion { op: String },

    #[error("another reconfiguration is in progress; retry when it has finished")]
    ReconfigInProgress,

    #[error("the new configuration would have no synced quorum: start the joining servers and wait until they are in broadcast before adding them")]
    NewConfigNoQuorum,

    #[error("dynamic reconfiguration is disabled on the servers: set reconfigEnabled=true in zoo.cfg and restart them")]
    ReconfigDisabled,

    #[error("ZooKeeper refused the request as malformed: {detail}")]
    BadArguments { detail: String },

    #[error("lost the connection to {host} (the server is down, the ensemble is electing a leader, or the TLS handshake was refused): retry, and check the server and its TLS settings if it persists")]
    ConnectionLoss { host: String },

    #[error(
        "the ZooKeeper session to {host} expired or was closed; a new session is needed (retry)"
    )]
    SessionExpired { host: String },

    #[error("{op} on {host} timed out after {after:?}; the server may be overloaded, down or without quorum: retry, and check the ensemble if it persists")]
    Timeout {
        op: String,
        host: String,
        after: Duration,
    },

    #[error("znode {path} does not exist")]
    NoNode { path: String },

    #[error("znode {path} already exists")]
    NodeExists { path: String },

    #[error("znode {path} still has children (another client is writing under it); retry")]
    NotEmpty { path: String },

    #[error("server.{id} is already a member as {current:?}; refusing to move it to {wanted:?}: remove it first, or give the new server another id")]
    IdConflict {
        id: u32,
        current: String,
        wanted: String,
    },

    #[error("the four-letter word {cmd:?} is refused by {host}: add it to 4lw.commands.whitelist in zoo.cfg")]
    FourLwNotAllowed { cmd: String, host: String },

    #[error("I/O error talking to {host}: {source}; check that the server runs and listens there")]
    Io {
        host: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{op} failed unexpectedly: {detail}")]
    Unexpected { op: String, detail: String },
}

/// How serious a ZooKeeper error is for the charm: the one classification every caller uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Some member is still syncing with the leader: goes away by itself.
    MembersSyncing,
    /// The server a change concerns is not in broadcast (or the new configuration would have no
    /// synced quorum without it): goes away once it syncs.
    MemberNotReady,
    /// No quorum leader to talk to: the ensemble is electing, lost its quorum, or a session or
    /// race was lost during a leader change. Goes away with the election; the next hook sees
    /// the new state.
    NoQuorumLeader,
    /// Anything else: a refusal (authentication, ACL, disabled reconfig, a conflicting member,
    /// a bad request) that needs the operator or is a bug. Not retried by itself.
    Failed,
}

impl Severity {
    /// One of the three conditions the charm defers on.
    pub fn is_transient(self) -> bool {
        self != Severity::Failed
    }
}

impl ZkError {
    /// This error's [`Severity`].
    pub fn severity(&self) -> Severity {
        match self {
            ZkError::MembersSyncing { .. } => Severity::MembersSyncing,
            ZkError::MemberNotReady { .. } | ZkError::NewConfigNoQuorum => Severity::MemberNotReady,
            ZkError::QuorumLeaderNotFound { .. }
            | ZkError::ConnectionLoss { .. }
            | ZkError::SessionExpired { .. }
            | ZkError::Timeout { .. }
            | ZkError::Io { .. }
            | ZkError::ReconfigInProgress
            | ZkError::BadVersion { .. } => Severity::NoQuorumLeader,
            ZkError::NoAuth { .. }
            | ZkError::AuthFailed { .. }
            | ZkError::ReconfigDisabled
            | ZkError::BadArguments { .. }
            | ZkError::NoNode { .. }
            | ZkError::NodeExists { .. }
            | ZkError::NotEmpty { .. }
            | ZkError::IdConflict { .. }
            | ZkError::FourLwNotAllowed { .. }
            | ZkError::Unexpected { .. } => Severity::Failed,
        }
    }

    /// The session (or the server behind it) is in trouble: a new leader and a new session may
    /// be needed before the next call.
    pub fn is_session_trouble(&self) -> bool {
        matches!(
            self,
            ZkError::ConnectionLoss { .. }
                | ZkError::SessionExpired { .. }
                | ZkError::Timeout { .. }
                | ZkError::Io { .. }
        )
    }

    /// A reconfiguration lost a race and can be retried against a fresh version.
    pub fn is_reconfig_retryable(&self) -> bool {
        matches!(
            self,
            ZkError::BadVersion { .. } | ZkError::ReconfigInProgress
        )
    }
}

/// What an operation was doing, to name it in the error.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub op: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub user: &'a str,
    /// How long the client crate waited before its own `Timeout` (the session timeout).
    pub timeout: Duration,
}

/// ZooKeeper's reconfig error codes the client crate has no variant for.
pub const NEW_CONFIG_NO_QUORUM: i32 = -13;
pub const RECONFIG_IN_PROGRESS: i32 = -14;
pub const RECONFIG_DISABLED: i32 = -123;

/// Maps the client crate's error; the only place that knows its variants.
pub fn map_client_error(err: zkc::Error, ctx: Ctx<'_>) -> ZkError {
    use zkc::Error as E;
    let host = ctx.host.to_string();
    match err {
        E::NoAuth => ZkError::NoAuth {
            op: ctx.op.into(),
            path: ctx.path.into(),
        },
        E::AuthFailed => ZkError::AuthFailed {
            user: ctx.user.into(),
            host,
        },
        E::BadVersion => ZkError::BadVersion { op: ctx.op.into() },
        E::UnexpectedErrorCode(NEW_CONFIG_NO_QUORUM) => ZkError::NewConfigNoQuorum,
        E::UnexpectedErrorCode(RECONFIG_IN_PROGRESS) => ZkError::ReconfigInProgress,
        E::UnexpectedErrorCode(RECONFIG_DISABLED) | E::ReconfigDisabled => {
            ZkError::ReconfigDisabled
        }
        E::BadArguments(detail) => ZkError::BadArguments {
            detail: format!("{} ({})", detail, ctx.op),
        },
        E::ConnectionLoss | E::NoHosts => ZkError::ConnectionLoss { host },
        // What broke the connection under an in-flight request (an I/O error, or no answer
        // within the connection timeout): the session itself may survive.
        E::Custom(detail) => {
            tracing::debug!(host, %detail, op = ctx.op, "connection broken under a request");
            ZkError::ConnectionLoss { host }
        }
        E::SessionExpired | E::SessionMoved | E::ClientClosed => ZkError::SessionExpired { host },
        E::Timeout => ZkError::Timeout {
            op: ctx.op.into(),
            host,
            after: ctx.timeout,
        },
        E::NoNode => ZkError::NoNode {
            path: ctx.path.into(),
        },
        E::NodeExists => ZkError::NodeExists {
            path: ctx.path.into(),
        },
        E::NotEmpty => ZkError::NotEmpty {
            path: ctx.path.into(),
        },
        other => ZkError::Unexpected {
            op: format!("{} {} on {}", ctx.op, ctx.path, ctx.host),
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            op: "reconfig",
            host: "127.0.0.11:2181",
            path: "/zookeeper/config",
            user: "super",
            timeout: Duration::from_secs(6),
        }
    }

    /// The crate builds `Custom` errors only internally; take one from its public API (an
    /// unreadable CA).
    fn custom_error() -> zkc::Error {
        let pem = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        match zkc::TlsOptions::new().with_pem_ca(pem) {
            Err(e @ zkc::Error::Custom(_)) => e,
            other => panic!("expected a Custom error, got {other:?}"),
        }
    }

    #[test]
    fn client_errors_map_to_typed_variants() {
        use zkc::Error as E;
        let table: Vec<(zkc::Error, &str)> = vec![
            (E::NoAuth, "NoAuth"),
            (E::AuthFailed, "AuthFailed"),
            (E::BadVersion, "BadVersion"),
            (E::UnexpectedErrorCode(-13), "NewConfigNoQuorum"),
            (E::UnexpectedErrorCode(-14), "ReconfigInProgress"),
            (E::UnexpectedErrorCode(-123), "ReconfigDisabled"),
            (E::ReconfigDisabled, "ReconfigDisabled"),
            (E::BadArguments(&"server error"), "BadArguments"),
            (E::ConnectionLoss, "ConnectionLoss"),
            (E::NoHosts, "ConnectionLoss"),
            (E::SessionExpired, "SessionExpired"),
            (E::ClientClosed, "SessionExpired"),
            (E::Timeout, "Timeout"),
            (E::NoNode, "NoNode"),
            (E::NodeExists, "NodeExists"),
            (E::NotEmpty, "NotEmpty"),
            (E::UnexpectedErrorCode(-999), "Unexpected"),
            (custom_error(), "ConnectionLoss"),
            (E::InvalidAcl, "Unexpected"),
        ];
        for (input, want) in table {
            let shown = input.to_string();
            let got = map_client_error(input, ctx());
            let name = format!("{got:?}");
            assert!(name.starts_with(want), "{shown} -> {name}, wanted {want}");
        }
        match map_client_error(E::AuthFailed, ctx()) {
            ZkError::AuthFailed { user, host } => {
                assert_eq!((user.as_str(), host.as_str()), ("super", "127.0.0.11:2181"))
            }
            other => panic!("{other:?}"),
        }
        match map_client_error(E::Timeout, ctx()) {
            ZkError::Timeout { after, .. } => assert_eq!(after, Duration::from_secs(6)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_error_has_one_severity() {
        let h = || "h".to_string();
        let table: Vec<(ZkError, Severity)> = vec![
            (
                ZkError::MembersSyncing { detail: h() },
                Severity::MembersSyncing,
            ),
            (
                ZkError::MemberNotReady {
                    host: h(),
                    state: "not serving".into(),
                },
                Severity::MemberNotReady,
            ),
            // A member of the new configuration is not in sync: like a member not ready.
            (ZkError::NewConfigNoQuorum, Severity::MemberNotReady),
            (
                ZkError::QuorumLeaderNotFound {
                    tried: vec!["a:1".into()],
                    detail: h(),
                },
                Severity::NoQuorumLeader,
            ),
            // Lost sessions and races during a leader change: the next hook sees the new state.
            (
                ZkError::ConnectionLoss { host: h() },
                Severity::NoQuorumLeader,
            ),
            (
                ZkError::SessionExpired { host: h() },
                Severity::NoQuorumLeader,
            ),
            (
                ZkError::Timeout {
                    op: "x".into(),
                    host: h(),
                    after: Duration::from_secs(1),
                },
                Severity::NoQuorumLeader,
            ),
            (
                ZkError::Io {
                    host: h(),
                    source: std::io::Error::other("refused"),
                },
                Severity::NoQuorumLeader,
            ),
            (ZkError::ReconfigInProgress, Severity::NoQuorumLeader),
            (
                ZkError::BadVersion { op: "x".into() },
                Severity::NoQuorumLeader,
            ),
            (
                ZkError::NoAuth {
                    op: "get".into(),
                    path: "/a".into(),
                },
                Severity::Failed,
            ),
            (
                ZkError::AuthFailed {
                    user: "super".into(),
                    host: h(),
                },
                Severity::Failed,
            ),
            (ZkError::ReconfigDisabled, Severity::Failed),
            (
                ZkError::IdConflict {
                    id: 1,
                    current: "a".into(),
                    wanted: "b".into(),
                },
                Severity::Failed,
            ),
            (ZkError::NotEmpty { path: "/a".into() }, Severity::Failed),
        ];
        for (e, want) in &table {
            assert_eq!(e.severity(), *want, "{e}");
            assert_eq!(e.severity().is_transient(), *want != Severity::Failed);
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = ZkError::MembersSyncing {
            detail: "1 learner syncing".into(),
        };
        assert_eq!(
            e.to_string(),
            "some ensemble members are still syncing (1 learner syncing); the charm retries at its next hook"
        );
        let e = ZkError::QuorumLeaderNotFound {
            tried: vec!["127.0.0.11:2181".into(), "127.0.0.12:2181".into()],
            detail: "all not serving".into(),
        };
        let s = e.to_string();
        assert!(
            s.contains("127.0.0.11:2181, 127.0.0.12:2181")
                && s.contains("start the stopped servers"),
            "{s}"
        );
        assert!(ZkError::ReconfigDisabled
            .to_string()
            .contains("reconfigEnabled=true"));
    }
}
