//! [`ZooKeeperManager`]: the ensemble. Finds the quorum leader with four-letter words, keeps one
//! session to it, and changes membership one incremental reconfiguration at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::acl::AclEntry;
use super::client::{four_lw_addr, Auth, ConnectOptions, ZooKeeperClient};
use super::error::ZkError;
use super::fourlw::{self, FourLw, Mntr, Mode};
use crate::quorum::member::{EnsembleConfig, ServerSpec};

/// A bounded retry: `attempts` tries, `interval` apart.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub interval: Duration,
}

/// Everything a manager may wait for, bounded.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// How hard to look for the leader (an election takes about 0.4 s).
    pub leader_retry: Retry,
    /// Session and four-letter-word settings (timeouts, TLS).
    pub connect: ConnectOptions,
    /// Extra tries of one reconfiguration after a lost race (BadVersion, ReconfigInProgress)
    /// or a lost connection.
    pub reconfig_retries: u32,
    /// Pause before retrying a reconfiguration that lost a race.
    pub reconfig_backoff: Duration,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            leader_retry: Retry {
                attempts: 3,
                interval: Duration::from_millis(300),
            },
            connect: ConnectOptions::default(),
            reconfig_retries: 3,
            reconfig_backoff: Duration::from_millis(200),
        }
    }
}

/// Asks every host for `srvr` in parallel, `retry.attempts` times, and returns the one whose
/// mode is `leader` (the highest zxid if several claim it during a change of leader). Hosts in
/// `exclude` (servers removed from the ensemble) are never chosen.
pub async fn find_leader(
    hosts: &[String],
    four_lw_port: Option<u16>,
    four_lw_timeout: Duration,
    retry: Retry,
    exclude: &BTreeSet<String>,
) -> Result<String, ZkError> {
    let attempts = retry.attempts.max(1);
    let mut detail = String::new();
    for attempt in 1..=attempts {
        let mut set = JoinSet::new();
        for host in hosts {
            let host = host.clone();
            let addr = four_lw_addr(&host, four_lw_port);
            set.spawn(async move {
                let answer = fourlw::four_letter_word(&addr, "srvr", four_lw_timeout).await;
                (host, answer)
            });
        }
        let mut states = BTreeMap::new();
        let mut best: Option<(u64, String)> = None;
        while let Some(joined) = set.join_next().await {
            let Ok((host, answer)) = joined else { continue };
            let state = match answer.map(|t| fourlw::parse_srvr(&t)) {
                Ok(Ok(FourLw::Serving(s))) => {
                    if s.mode == Mode::Leader
                        && !exclude.contains(&host)
                        && best.as_ref().is_none_or(|(z, _)| s.zxid > *z)
                    {
                        best = Some((s.zxid, host.clone()));
                    }
                    s.mode.as_str().to_string()
                }
                Ok(Ok(FourLw::NotServing)) => "not serving".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(e @ ZkError::FourLwNotAllowed { .. }) => return Err(e),
                Err(ZkError::Io { source, .. }) => source.to_string(),
                Err(e) => e.to_string(),
            };
            states.insert(host, state);
        }
        if let Some((_, leader)) = best {
            tracing::debug!(leader, attempt, "quorum leader found");
            return Ok(leader);
        }
        detail = states
            .iter()
            .map(|(h, s)| format!("{h}: {s}"))
            .collect::<Vec<_>>()
            .join("; ");
        tracing::debug!(attempt, detail, "no quorum leader yet");
        if attempt < attempts {
            tokio::time::sleep(retry.interval).await;
        }
    }
    Err(ZkError::QuorumLeaderNotFound {
        tried: hosts.to_vec(),
        detail: format!("after {attempts} attempt(s): {detail}"),
    })
}

/// `mntr` of every host in parallel (unreachable hosts give their error).
async fn mntr_all(
    hosts: &[String],
    four_lw_port: Option<u16>,
    timeout: Duration,
) -> BTreeMap<String, Result<FourLw<Mntr>, ZkError>> {
    let mut set = JoinSet::new();
    for host in hosts {
        let host = host.clone();
        let addr = four_lw_addr(&host, four_lw_port);
        set.spawn(async move { (host, mntr_of(&addr, timeout).await) });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((host, r)) = joined {
            out.insert(host, r);
        }
    }
    out
}

async fn mntr_of(addr: &str, timeout: Duration) -> Result<FourLw<Mntr>, ZkError> {
    let text = fourlw::four_letter_word(addr, "mntr", timeout).await?;
    fourlw::parse_mntr(&text).map_err(|e| ZkError::Unexpected {
        op: format!("mntr on {addr}"),
        detail: e.detail,
    })
}

/// The first member (id, address) whose own `mntr` says "not serving": it is up, catching up.
fn member_not_serving(
    members: &[(u32, String)],
    answers: &BTreeMap<String, Result<FourLw<Mntr>, ZkError>>,
) -> Option<String> {
    members
        .iter()
        .find_map(|(id, addr)| match answers.get(addr) {
            Some(Ok(FourLw::NotServing)) => Some(format!(
                "server.{id} ({addr}) is up but not serving requests yet"
            )),
            _ => None,
        })
}

/// One membership change, and how to tell from a configuration whether it is in.
#[derive(Debug, Clone)]
enum Change {
    Join(ServerSpec),
    Leave(u32),
}

impl Change {
    fn applied(&self, cfg: &EnsembleConfig) -> bool {
        match self {
            Change::Join(spec) => cfg.members.get(&spec.id) == Some(spec),
            Change::Leave(id) => !cfg.contains(*id),
        }
    }
}

/// Does `addr` (`host:port`, as given to the manager) name this member?
fn is_member_addr(spec: &ServerSpec, addr: &str) -> bool {
    if spec.client_addr().as_deref() == Some(addr) {
        return true;
    }
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == spec.host || host == spec.client_host
}

/// The ensemble, through its quorum leader.
///
/// Holds one session to the leader for its whole life. When that session is lost (leader
/// killed, or removed by this manager) the next call finds the new leader and reconnects once.
#[derive(Debug)]
pub struct ZooKeeperManager {
    hosts: Vec<String>,
    creds: Auth,
    opts: ManagerOptions,
    leader: Option<String>,
    session: Option<ZooKeeperClient>,
    /// Hosts of members this manager removed; they keep running as non-voting followers and
    /// must not be taken for the leader.
    removed: BTreeSet<String>,
}

impl ZooKeeperManager {
    /// `hosts`: the client addresses (`host:port`) of all started units (members this manager
    /// adds are looked at too from then on). Finds the leader and
    /// opens the session; [`ZkError::QuorumLeaderNotFound`] after the bounded retry.
    pub async fn new(
        hosts: Vec<String>,
        creds: Auth,
        opts: ManagerOptions,
    ) -> Result<ZooKeeperManager, ZkError> {
        let mut m = ZooKeeperManager {
            hosts,
            creds,
            opts,
            leader: None,
            session: None,
            removed: BTreeSet::new(),
        };
        m.session().await?;
        Ok(m)
    }

    /// The current leader's address, if the session is up.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The live session to the leader, re-finding the leader if it was lost.
    async fn session(&mut self) -> Result<ZooKeeperClient, ZkError> {
        if let Some(s) = &self.session {
            if s.is_connected() {
                return Ok(s.clone());
            }
            tracing::debug!(leader = ?self.leader, "session to the leader lost; finding the leader again");
        }
        self.drop_session();
        // A connection dropped while the session was being opened (a loaded server slow in the
        // TLS handshake, or a leader that just stepped down) is worth one more look for the
        // leader; a refused password or bad TLS settings are not.
        let mut second_try = false;
        loop {
            let leader = find_leader(
                &self.hosts,
                self.opts.connect.four_lw_port,
                self.opts.connect.four_lw_timeout,
                self.opts.leader_retry,
                &self.removed,
            )
            .await?;
            match ZooKeeperClient::connect(&leader, &self.creds, &self.opts.connect).await {
                Ok(client) => {
                    self.leader = Some(leader);
                    self.session = Some(client.clone());
                    return Ok(client);
                }
                Err(e @ ZkError::ConnectionLoss { .. }) if !second_try => {
                    tracing::debug!(%leader, error = %e, "session to the leader not opened; looking again");
                    second_try = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn drop_session(&mut self) {
        self.session = None;
        self.leader = None;
    }

    /// Runs `f` on the leader's session; on session trouble, finds the leader again and runs it
    /// once more (so `f` must be idempotent).
    pub async fn on_leader<T, F, Fut>(&mut self, f: F) -> Result<T, ZkError>
    where
        F: Fn(ZooKeeperClient) -> Fut,
        Fut: Future<Output = Result<T, ZkError>>,
    {
        let client = self.session().await?;
        match f(client).await {
            Err(e) if e.is_session_trouble() => {
                tracing::debug!(error = %e, "leader call failed; retrying once on a fresh leader session");
                self.drop_session();
                let client = self.session().await?;
                let r = f(client).await;
                if matches!(&r, Err(e) if e.is_session_trouble()) {
                    self.drop_session();
                }
                r
            }
            r => r,
        }
    }

    fn leader_four_lw(&self) -> Option<String> {
        self.leader
            .as_deref()
            .map(|l| four_lw_addr(l, self.opts.connect.four_lw_port))
    }

    /// Members and version, read from the leader's `/zookeeper/config`.
    pub async fn config(&mut self) -> Result<EnsembleConfig, ZkError> {
        self.on_leader(|c| async move { c.config().await }).await
    }

    /// Members by id.
    pub async fn server_members(&mut self) -> Result<BTreeMap<u32, ServerSpec>, ZkError> {
        Ok(self.config().await?.members)
    }

    pub async fn config_version(&mut self) -> Result<u64, ZkError> {
        Ok(self.config().await?.version)
    }

    /// Why the ensemble is syncing, or `None`: from the leader's `mntr` (not a broadcasting
    /// leader, pending syncs, learners still in the handshake), then from the members' own
    /// `mntr` (up but not serving yet: restarted, or still loading the leader's snapshot, which
    /// the leader already counts as a synced follower). Members in `skip` are not asked;
    /// unreachable members are down, not syncing.
    async fn syncing_reason(&mut self, skip: &[u32]) -> Result<Option<String>, ZkError> {
        self.session().await?;
        let Some(addr) = self.leader_four_lw() else {
            return Ok(Some("no leader".into()));
        };
        match mntr_of(&addr, self.opts.connect.four_lw_timeout).await {
            Ok(FourLw::Serving(m)) => {
                if let Some(reason) = m.syncing_reason() {
                    return Ok(Some(reason));
                }
            }
            Ok(FourLw::NotServing) => {
                self.drop_session();
                return Ok(Some(format!("the leader {addr} is not serving requests")));
            }
            Err(e) if e.is_session_trouble() => {
                self.drop_session();
                return Ok(Some(format!("the leader {addr} is unreachable: {e}")));
            }
            Err(e) => return Err(e),
        }
        let members: Vec<(u32, String)> = self
            .config()
            .await?
            .members
            .values()
            .filter(|m| !skip.contains(&m.id))
            .filter_map(|m| Some((m.id, m.client_addr()?)))
            .collect();
        let addrs: Vec<String> = members.iter().map(|(_, a)| a.clone()).collect();
        let answers = mntr_all(&addrs, None, self.opts.connect.four_lw_timeout).await;
        Ok(member_not_serving(&members, &answers))
    }

    /// True while the leader is not a broadcasting leader, has pending syncs or learners still
    /// in the handshake, or a member is up but not serving yet.
    pub async fn members_syncing(&mut self) -> Result<bool, ZkError> {
        Ok(self.syncing_reason(&[]).await?.is_some())
    }

    /// True when every host answers `mntr` with "... - broadcast".
    pub async fn members_broadcasting(&self) -> bool {
        mntr_all(
            &self.hosts,
            self.opts.connect.four_lw_port,
            self.opts.connect.four_lw_timeout,
        )
        .await
        .values()
        .all(|r| matches!(r, Ok(FourLw::Serving(m)) if m.is_broadcast()))
    }

    async fn refuse_while_syncing(&mut self, skip: &[u32]) -> Result<(), ZkError> {
        match self.syncing_reason(skip).await? {
            Some(detail) => Err(ZkError::MembersSyncing { detail }),
            None => Ok(()),
        }
    }

    /// The joiner's own `mntr` must say "... - broadcast".
    async fn require_broadcasting(&self, spec: &ServerSpec) -> Result<(), ZkError> {
        let addr = spec.client_addr().ok_or_else(|| ZkError::BadArguments {
            detail: format!("{spec} has no client address, so its readiness cannot be checked"),
        })?;
        let not_ready = |state: String| ZkError::MemberNotReady {
            host: addr.clone(),
            state,
        };
        match mntr_of(&addr, self.opts.connect.four_lw_timeout).await {
            Ok(FourLw::Serving(m)) if m.is_broadcast() => Ok(()),
            Ok(FourLw::Serving(m)) => Err(not_ready(format!(
                "peer state {:?}",
                m.peer_state().unwrap_or("unknown")
            ))),
            Ok(FourLw::NotServing) => Err(not_ready("not serving requests yet".into())),
            Err(e @ ZkError::FourLwNotAllowed { .. }) => Err(e),
            Err(ZkError::Io { source, .. }) => Err(not_ready(format!("unreachable: {source}"))),
            Err(e) => Err(not_ready(format!("unreachable: {e}"))),
        }
    }

    /// Adds members one incremental reconfiguration at a time, in numeric id order, each
    /// against the freshly read version. Refuses while syncing ([`ZkError::MembersSyncing`]);
    /// skips members already present with the same spec; refuses an id present at another
    /// address ([`ZkError::IdConflict`]); requires each joiner to be broadcasting
    /// ([`ZkError::MemberNotReady`]). Same addresses with another role is a role change.
    /// Returns the final configuration.
    pub async fn add_members(&mut self, members: &[ServerSpec]) -> Result<EnsembleConfig, ZkError> {
        let mut sorted = members.to_vec();
        sorted.sort_by_key(|m| m.id);
        if let Some(w) = sorted.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(ZkError::BadArguments {
                detail: format!("server.{} is listed twice", w[0].id),
            });
        }
        self.refuse_while_syncing(&[]).await?;
        let mut cfg = self.config().await?;
        for spec in sorted {
            cfg = self.config().await?;
            if let Some(current) = cfg.members.get(&spec.id) {
                if *current == spec {
                    tracing::debug!(%spec, "already a member");
                    continue;
                }
                if !current.same_addresses(&spec) {
                    return Err(ZkError::IdConflict {
                        id: spec.id,
                        current: current.to_string(),
                        wanted: spec.to_string(),
                    });
                }
            }
            self.require_broadcasting(&spec).await?;
            let addr = spec.client_addr();
            cfg = self.reconfigure(Change::Join(spec)).await?;
            // A new member may become the leader: look for it there too from now on.
            if let Some(addr) = addr.filter(|a| !self.hosts.contains(a)) {
                self.hosts.push(addr);
            }
        }
        Ok(cfg)
    }

    /// Removes members one at a time, in numeric order, each against the fresh version. Ids
    /// that are not members are skipped (a no-op reconfiguration would still bump the
    /// version). Removing the leader commits even when the call sees a lost connection: the
    /// configuration is re-read from the remaining servers to decide, and the new leader is
    /// found before the next call. Returns the final configuration.
    pub async fn remove_members(&mut self, ids: &[u32]) -> Result<EnsembleConfig, ZkError> {
        let ids: BTreeSet<u32> = ids.iter().copied().collect();
        // The members on their way out may be in any state.
        let leaving: Vec<u32> = ids.iter().copied().collect();
        self.refuse_while_syncing(&leaving).await?;
        let mut cfg = self.config().await?;
        for id in ids {
            cfg = self.config().await?;
            let Some(spec) = cfg.members.get(&id).cloned() else {
                tracing::debug!(id, "not a member; nothing to remove");
                continue;
            };
            if cfg.members.len() == 1 {
                return Err(ZkError::BadArguments {
                    detail: format!("server.{id} is the last member and cannot be removed"),
                });
            }
            let leader = self.leader.clone();
            cfg = self.reconfigure(Change::Leave(id)).await?;
            // The removed server keeps running as a non-voting follower: never take it for the
            // leader again, and leave its session if it was the leader.
            if let Some(l) = leader.filter(|l| is_member_addr(&spec, l)) {
                tracing::debug!(
                    leader = l,
                    id,
                    "removed the leader; the next call finds the new one"
                );
                self.removed.insert(l);
                self.drop_session();
            }
            for h in self.hosts.iter().filter(|h| is_member_addr(&spec, h)) {
                self.removed.insert(h.clone());
            }
        }
        Ok(cfg)
    }

    /// Applies one change, retrying a bounded number of times on a lost race or a lost
    /// connection; before every try the configuration is re-read, so a change that committed
    /// despite an error is recognised and not repeated.
    async fn reconfigure(&mut self, change: Change) -> Result<EnsembleConfig, ZkError> {
        let (joining, leaving) = match &change {
            Change::Join(s) => (vec![s.clone()], vec![]),
            Change::Leave(id) => (vec![], vec![*id]),
        };
        let mut last_err = None;
        for attempt in 0..=self.opts.reconfig_retries {
            let cfg = self.config().await?;
            if attempt > 0 && change.applied(&cfg) {
                tracing::debug!(
                    ?change,
                    version = cfg.version_hex(),
                    "the change committed despite the error"
                );
                return Ok(cfg);
            }
            let client = self.session().await?;
            let started = Instant::now();
            match client
                .update_ensemble(&joining, &leaving, Some(cfg.version))
                .await
            {
                Ok(new_cfg) => {
                    tracing::debug!(
                        ?change,
                        from = cfg.version_hex(),
                        to = new_cfg.version_hex(),
                        ms = started.elapsed().as_millis() as u64,
                        "reconfig committed"
                    );
                    return Ok(new_cfg);
                }
                Err(e) if e.is_session_trouble() => {
                    tracing::debug!(?change, error = %e, "reconfig lost its connection; re-reading the configuration");
                    self.drop_session();
                    last_err = Some(e);
                }
                Err(e) if e.is_reconfig_retryable() => {
                    tracing::debug!(?change, error = %e, "reconfig lost a race; retrying");
                    last_err = Some(e);
                    tokio::time::sleep(self.opts.reconfig_backoff).await;
                }
                Err(e) => return Err(e),
            }
        }
        // Last look: the final try may have committed.
        let cfg = self.config().await?;
        if change.applied(&cfg) {
            return Ok(cfg);
        }
        Err(last_err.unwrap_or(ZkError::Unexpected {
            op: format!("{change:?}"),
            detail: "no attempt was made".into(),
        }))
    }

    /// `path` and all its descendants (see [`ZooKeeperClient::get_all_znode_children`]).
    pub async fn leader_znodes(&mut self, path: &str) -> Result<BTreeSet<String>, ZkError> {
        self.on_leader(|c| async move { c.get_all_znode_children(path).await })
            .await
    }

    /// Creates `path` and missing parents with `acls` (idempotent).
    pub async fn create_znode_leader(
        &mut self,
        path: &str,
        acls: &[AclEntry],
    ) -> Result<bool, ZkError> {
        self.on_leader(|c| async move { c.create_znode(path, acls).await })
            .await
    }

    /// Replaces the ACLs of `path`.
    pub async fn set_acls_znode_leader(
        &mut self,
        path: &str,
        acls: &[AclEntry],
    ) -> Result<(), ZkError> {
        self.on_leader(|c| async move { c.set_acls(path, acls).await })
            .await
    }

    /// Deletes `path` recursively (missing is fine).
    pub async fn delete_znode_leader(&mut self, path: &str) -> Result<(), ZkError> {
        self.on_leader(|c| async move { c.delete_znode(path).await })
            .await
    }

    pub async fn get_acls_leader(&mut self, path: &str) -> Result<Vec<AclEntry>, ZkError> {
        self.on_leader(|c| async move { c.get_acls(path).await })
            .await
    }

    /// The leader's ZooKeeper release, e.g. `3.8.0`.
    pub async fn get_version(&mut self) -> Result<String, ZkError> {
        let srvr = self.on_leader(|c| async move { c.srvr().await }).await?;
        match srvr {
            FourLw::Serving(s) => Ok(s.short_version()),
            FourLw::NotServing => {
                self.drop_session();
                Err(ZkError::QuorumLeaderNotFound {
                    tried: self.hosts.clone(),
                    detail: "the leader stopped serving requests".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_addresses_match_client_or_quorum_host() {
        let s =
            ServerSpec::parse("server.1=127.0.0.11:2888:3888:participant;127.0.0.11:2181").unwrap();
        assert!(is_member_addr(&s, "127.0.0.11:2181"));
        assert!(is_member_addr(&s, "127.0.0.11:2182"));
        assert!(!is_member_addr(&s, "127.0.0.12:2181"));
        let s =
            ServerSpec::parse("server.1=zk-0.local:2888:3888:participant;0.0.0.0:2181").unwrap();
        assert!(is_member_addr(&s, "zk-0.local:2181"));
    }

    #[test]
    fn changes_know_when_they_are_applied() {
        let cfg = EnsembleConfig::parse(
            "server.1=127.0.0.11:2888:3888:participant;127.0.0.11:2181\nversion=100000000",
        )
        .unwrap();
        let one = cfg.members[&1].clone();
        assert!(Change::Join(one.clone()).applied(&cfg));
        assert!(!Change::Join(one.with_role(crate::quorum::member::Role::Observer)).applied(&cfg));
        assert!(!Change::Leave(1).applied(&cfg));
        assert!(Change::Leave(2).applied(&cfg));
    }

    #[test]
    fn a_member_up_but_not_serving_is_syncing_a_down_one_is_not() {
        let members = vec![(1, "a:2181".to_string()), (2, "b:2181".to_string())];
        let serving = fourlw::parse_mntr(include_str!("testdata/mntr-follower.txt")).unwrap();
        let mut answers = BTreeMap::new();
        answers.insert("a:2181".to_string(), Ok(serving));
        answers.insert(
            "b:2181".to_string(),
            Err(ZkError::Io {
                host: "b:2181".into(),
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            }),
        );
        assert_eq!(member_not_serving(&members, &answers), None);
        answers.insert("b:2181".to_string(), Ok(FourLw::NotServing));
        assert_eq!(
            member_not_serving(&members, &answers).as_deref(),
            Some("server.2 (b:2181) is up but not serving requests yet")
        );
    }

    #[tokio::test]
    async fn no_leader_among_unreachable_hosts_is_a_bounded_error() {
        // Port 1 on loopback: refused at once.
        let hosts = vec!["127.0.0.1:1".to_string()];
        let started = Instant::now();
        let err = find_leader(
            &hosts,
            None,
            Duration::from_millis(500),
            Retry {
                attempts: 2,
                interval: Duration::from_millis(10),
            },
            &BTreeSet::new(),
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(err.severity(), crate::zk::error::Severity::NoQuorumLeader);
        assert!(matches!(err, ZkError::QuorumLeaderNotFound { ref tried, .. } if tried == &hosts));
    }
}
