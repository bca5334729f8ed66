//! The ZooKeeper admin layer: the only code that opens ZooKeeper connections, and the only async
//! code in the charm (run on the `current_thread` tokio runtime the charm creates).
//!
//! It offers everything Charmed ZooKeeper's Python `charms.zookeeper.v0.client` does, and fixes
//! that library's weak spots. The design:
//!
//! - **Pure parsers, tested on real answers.** Four-letter words (`srvr`, `mntr`, `conf`) are
//!   parsed by pure functions in [`fourlw`], checked against output recorded from ZooKeeper 3.8.0
//!   (`src/zk/testdata/`). The answer "This ZooKeeper instance is not currently serving requests"
//!   is a value ([`FourLw::NotServing`]), never an error deep inside a caller. Server lines and
//!   `/zookeeper/config` are parsed by [`crate::quorum::member`], which has no I/O at all.
//! - **Typed errors.** [`ZkError`] names what failed and what the operator can do. The client
//!   crate's errors are mapped in one function (the reconfig codes -13 and -14, which the crate
//!   reports as unexpected codes, become [`ZkError::NewConfigNoQuorum`] and
//!   [`ZkError::ReconfigInProgress`]). Every error has one [`error::Severity`]
//!   ([`ZkError::severity`]): one of the three conditions the charm defers on (members syncing,
//!   a member not ready, no quorum leader, which also covers sessions and races lost during a
//!   leader change) or failed (needs the operator). Callers classify through it and nothing
//!   else.
//! - **One session per manager.** [`ZooKeeperManager`] finds the quorum leader by asking every
//!   host for `srvr` in parallel (a bounded, configurable retry instead of the Python library's
//!   fixed 3 s sleep) and keeps one SASL session to it. If the session is lost (leader killed, or
//!   removed by the manager itself), the next call finds the new leader and reconnects.
//! - **Every call bounded.** Connecting, every request and every four-letter word run under a
//!   timeout ([`ConnectOptions`]); a blocked session or a lost quorum gives
//!   [`ZkError::Timeout`], [`ZkError::ConnectionLoss`] or [`ZkError::QuorumLeaderNotFound`],
//!   never a hung hook. A wrong password is [`ZkError::AuthFailed`] at connect time.
//! - **Safe membership changes**, from measured ZooKeeper 3.8 behaviour:
//!   one incremental reconfig per member, in numeric id order (`server.10` after `server.2`),
//!   each against the freshly read version; a joiner must itself be in "... - broadcast" (a
//!   reconfig naming a stopped joiner can succeed); an id already present at another address is
//!   refused ([`ZkError::IdConflict`]) because ZooKeeper would silently move that server; ids
//!   that are not members are not "removed" (a no-op reconfig still bumps the version); after a
//!   lost connection (typical when removing the leader, which commits anyway) the configuration
//!   is re-read to decide; BadVersion and ReconfigInProgress are retried a bounded number of
//!   times. "Syncing" means the leader is not in broadcast, has pending syncs, or has learners
//!   connected that are still in the handshake (`zk_learners` minus the synced ones), or a member
//!   is up but not serving yet. `zk_pending_syncs` alone (what the Python library checked)
//!   counts client `sync` calls and is almost always 0, and the leader counts a learner as
//!   "synced" as soon as it starts sending it the snapshot, so a member still loading data is
//!   seen only through its own `mntr`.
//! - **Session-free observation.** [`observe`] reads `srvr`/`mntr`/`conf` from every host in
//!   parallel, without authentication: the leader, the membership and version (from the leader's
//!   `conf`), per-host states and whether the ensemble is syncing. Cheap enough for every hook.
//! - **TLS** ([`TlsConfig`]): the session can run over TLS, checking the server's certificate
//!   against the CA and the address dialled, with an optional client certificate; four-letter
//!   words go to the plain port ([`ConnectOptions::four_lw_port`]; Charmed ZooKeeper keeps 2181
//!   plain, see ZOOKEEPER-3577).
//!
//! Reconfiguration needs the super user (SASL `superUser` or digest `superDigest`) and
//! `reconfigEnabled=true`; `observe` needs `conf`, `srvr` and `mntr` in
//! `4lw.commands.whitelist`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zookeeper_charm::zk::ZkError> {
//! use zookeeper_charm::secret::Secret;
//! use zookeeper_charm::zk::{AclEntry, Auth, ManagerOptions, Perms, ZooKeeperManager};
//! use zookeeper_charm::quorum::member::ServerSpec;
//!
//! let hosts = vec!["10.0.0.1:2181".to_string(), "10.0.0.2:2181".to_string()];
//! let creds = Auth::new("super", Secret::new("...".into()));
//! let mut zk = ZooKeeperManager::new(hosts, creds, ManagerOptions::default()).await?;
//! let joiner = ServerSpec::parse("server.3=10.0.0.3:2888:3888:participant;10.0.0.3:2181").unwrap();
//! let config = zk.add_members(&[joiner]).await?;
//! zk.create_znode_leader("/kafka", &[AclEntry::sasl("relation-7", Perms::ALL)]).await?;
//! # let _ = config; Ok(()) }
//! ```

pub mod acl;
pub mod admin;
pub mod client;
pub mod error;
pub mod fourlw;
pub mod manager;
pub mod observe;
pub mod path;

pub use acl::{digest_id, AclEntry, AclError, Perms};
pub use client::{Auth, ConnectOptions, TlsConfig, ZooKeeperClient};
pub use error::ZkError;
pub use fourlw::{
    four_letter_word, is_broadcast, parse_conf, parse_mntr, parse_srvr, Conf, FourLw, Mntr, Mode,
    Srvr,
};
pub use manager::{find_leader, ManagerOptions, Retry, ZooKeeperManager};
pub use observe::{ask, interpret, observe, HostState, Observed, Round};
