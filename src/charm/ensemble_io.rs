//! What the charm needs from the ZooKeeper ensemble, as a narrow trait. The real implementation
//! (four-letter words for observation, a SASL `super` session for reconfig) lives with the `zk`
//! module; tests can substitute their own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::quorum::plan::{Change, EnsembleState, Hold, Member, UnitId};
use crate::secret::Secret;
use crate::zk::acl::AclEntry;

/// One server's answer to `mntr` + `conf`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// `zk_peer_state` ("leading - broadcast", ...); `None` if unreachable or not serving.
    pub peer_state: Option<String>,
    /// The membership this server knows (its `conf`), by unit.
    pub members: Option<BTreeMap<UnitId, Member>>,
    /// The ZooKeeper version it reports (e.g. "3.8.0").
    pub version: Option<String>,
    /// Transactions after which its data tree differed from the leader's (`mntr`).
    pub digest_mismatches: Option<u64>,
}

impl Probe {
    pub fn broadcasting(&self) -> bool {
        self.peer_state
            .as_deref()
            .is_some_and(|s| s.ends_with("- broadcast"))
    }
}

/// One member of the configuration as `get-quorum-status` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemberReport {
    pub server_id: u32,
    pub unit: Option<UnitId>,
    pub address: String,
    /// `participant` or `observer`, from the configuration.
    pub role: String,
    /// `zk_peer_state` (`leading - broadcast`, ...), or `not serving` / `unreachable`.
    pub state: String,
    /// The last zxid it reports (hex), when it answers.
    pub zxid: Option<String>,
    pub reachable: bool,
    /// Transactions after which its data tree differed from the leader's (`mntr`).
    pub digest_mismatches: Option<u64>,
    /// Its release and when its jar was built (`srvr`): `3.8.0 built on 2024-12-29 17:54 UTC`.
    pub build: Option<String>,
}

/// The ensemble as `get-quorum-status` reports it: what `/zookeeper/config` (the leader's
/// `conf`) and each server's `mntr`/`srvr` say.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QuorumReport {
    /// `server.N` of the quorum leader.
    pub leader: Option<String>,
    /// The configuration version, hex as ZooKeeper prints it.
    pub config_version: Option<String>,
    pub syncing: bool,
    pub syncing_reason: Option<String>,
    pub members: Vec<MemberReport>,
    /// Servers this unit knows of that are not in the configuration (e.g. joiners), by address.
    pub others: Vec<MemberReport>,
}

/// How to reach the ensemble as the super user: every address this unit knows, and the super
/// passwords to try (current first).
#[derive(Clone, Default)]
pub struct Admin {
    pub known: BTreeMap<UnitId, String>,
    pub super_passwords: Vec<Secret>,
}

/// Why a membership change did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeError {
    /// The ensemble answered members syncing / member not ready / no quorum leader: retry later.
    Transient(Hold),
    /// Anything else, with what the operator can do.
    Failed(String),
}

impl ChangeError {
    pub fn message(&self) -> String {
        match self {
            ChangeError::Transient(h) => h.to_string(),
            ChangeError::Failed(m) => m.clone(),
        }
    }
}

/// What a condition met on the way means for the hook: the one error policy. ZooKeeper errors
/// reach the charm as [`ChangeError`]s (their severity decided once, by
/// [`crate::zk::ZkError::severity`]), the planner's reasons not to act as [`Hold`]s; both become
/// a verdict here and nowhere else, and the charm records it in one place
/// (`ZooKeeperCharm::meet`). Errors of the hook tools, files and processes are not verdicts: they
/// fail the hook, and Juju retries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Goes away by itself: the hook is deferred with this reason (the reconcile runs again at
    /// the next hook).
    Defer(String),
    /// Needs the operator: the unit is blocked with this message until a later hook succeeds.
    Blocked(String),
}

impl From<ChangeError> for Verdict {
    fn from(e: ChangeError) -> Verdict {
        match e {
            ChangeError::Transient(h) => Verdict::from(&h),
            ChangeError::Failed(m) => Verdict::Blocked(m),
        }
    }
}

impl From<&Hold> for Verdict {
    fn from(h: &Hold) -> Verdict {
        if h.is_transient() {
            Verdict::Defer(h.to_string())
        } else {
            Verdict::Blocked(h.to_string())
        }
    }
}

pub trait EnsembleIo {
    /// `mntr` + `conf` on one server (`address` without port).
    fn probe(&mut self, address: &str) -> Probe;
    /// The ensemble seen from these servers (and every member their configuration names):
    /// quorum leader, committed membership, syncing, who is broadcasting.
    fn observe(&mut self, addresses: &BTreeMap<UnitId, String>) -> EnsembleState;
    /// [`Self::observe`] and [`Self::probe`] of this unit's server (`address`, one of
    /// `addresses`), in one round of four-letter words where the implementation can.
    fn observe_with_probe(
        &mut self,
        addresses: &BTreeMap<UnitId, String>,
        address: &str,
    ) -> (EnsembleState, Probe) {
        let ens = self.observe(addresses);
        (ens, self.probe(address))
    }
    /// Starts a round of four-letter words on `hosts` (`host:port`) now, in the background, so
    /// that it overlaps the hook-tool reads. Nothing uses it unless [`Self::use_prefetch`] says
    /// so; a round nobody uses is dropped.
    fn prefetch(&mut self, _hosts: &[String]) {}
    /// The next observation or probe may take the prefetched round if it asks exactly the same
    /// hosts (the caller knows that nothing it did since could have changed the answers).
    fn use_prefetch(&mut self) {}
    /// Forgets a prefetched round.
    fn discard_prefetch(&mut self) {}
    /// The hosts this hook's first round asked, for the next hook to prefetch.
    fn first_round(&self) -> Option<Vec<String>> {
        None
    }
    /// One membership change through the quorum leader, as `super`. `address` is the unit's
    /// server address (for an addition). Idempotent: an already-applied change is success.
    fn apply(
        &mut self,
        change: Change,
        address: Option<&str>,
        known: &BTreeMap<UnitId, String>,
        super_passwords: &[Secret],
    ) -> Result<(), ChangeError>;

    /// The ACL of each path on the quorum leader (`None`: it does not exist).
    fn acls_of(
        &mut self,
        paths: &[String],
        admin: &Admin,
    ) -> Result<BTreeMap<String, Option<Vec<AclEntry>>>, ChangeError>;
    /// Every znode (but `/` and the subtrees `skip`) with its ACL, parents first.
    fn tree_acls(
        &mut self,
        skip: &[String],
        admin: &Admin,
    ) -> Result<Vec<(String, Vec<AclEntry>)>, ChangeError>;
    /// Creates `path` holding `data` with `acls` (missing parents with `parent_acls`); false
    /// when it existed (left as it was).
    fn create_znode(
        &mut self,
        path: &str,
        data: &[u8],
        acls: &[AclEntry],
        parent_acls: &[AclEntry],
        admin: &Admin,
    ) -> Result<bool, ChangeError>;
    /// Sets `acls` on `path` and, with `tree`, top down on every node below it except the
    /// subtrees `except` (a node's ACL is set before its children are listed, so nothing a
    /// client creates meanwhile escapes). A missing path is success. Returns how many nodes
    /// were set.
    fn set_acls(
        &mut self,
        path: &str,
        acls: &[AclEntry],
        tree: bool,
        except: &[String],
        admin: &Admin,
    ) -> Result<usize, ChangeError>;
    /// Deletes `path` (with everything below it when `recursive`). A missing path is success.
    fn delete_znode(
        &mut self,
        path: &str,
        recursive: bool,
        admin: &Admin,
    ) -> Result<(), ChangeError>;
    /// The children of `path` with their data (none when it does not exist).
    fn children_data(
        &mut self,
        path: &str,
        admin: &Admin,
    ) -> Result<Vec<(String, Vec<u8>)>, ChangeError>;

    /// Everything `get-quorum-status` shows, from four-letter words only.
    fn report(&mut self, addresses: &BTreeMap<UnitId, String>) -> QuorumReport;

    /// Polls `probe` until the server broadcasts, `timeout` passes, or `alive` says the
    /// process is gone (no point waiting for a server that exited).
    fn wait_broadcast(
        &mut self,
        address: &str,
        timeout: Duration,
        alive: &dyn Fn() -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.probe(address).broadcasting() {
                return true;
            }
            if Instant::now() >= deadline || !alive() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
