//! A cheap, session-free look at the ensemble for every hook: `srvr`, `mntr` and `conf` on every
//! host in parallel. No authentication, nothing changed.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinSet;

use super::error::ZkError;
use super::fourlw::{self, Conf, Mntr, Mode, Srvr};
use crate::quorum::member::EnsembleConfig;

/// What one host said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostState {
    /// It answered at least one four-letter word.
    pub reachable: bool,
    /// It is in broadcast (serving requests).
    pub serving: bool,
    pub mode: Option<Mode>,
    /// e.g. `following - broadcast`.
    pub peer_state: Option<String>,
    /// From `conf`.
    pub server_id: Option<u32>,
    pub zxid: Option<u64>,
    /// The release, e.g. `3.8.0`.
    pub version: Option<String>,
    /// The first error met (unreachable, timeout, refused command), if any.
    pub error: Option<String>,
    /// It answered "This ZooKeeper instance is not currently serving requests".
    pub not_serving: bool,
    /// The server accepted the connection but did not answer in time (a frozen or overloaded
    /// process): up, but not keeping up.
    pub hung: bool,
}

impl HostState {
    /// Up (it answered "not serving", or accepted and stayed silent) but not in broadcast.
    pub fn catching_up(&self) -> bool {
        !self.serving && (self.not_serving || self.hung)
    }
}

/// The ensemble as the four-letter words show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub per_host: BTreeMap<String, HostState>,
    /// The host whose `srvr` and `mntr` both say leader.
    pub leader: Option<String>,
    /// Membership and version from the leader's `conf`.
    pub config: Option<EnsembleConfig>,
    /// The leader has pending syncs or learners still in the handshake, or is not in
    /// broadcast, or an observed member is up but not serving yet.
    pub syncing: bool,
    pub syncing_reason: Option<String>,
    /// The leader's own reason to call the ensemble syncing (not in broadcast, pending syncs,
    /// learners in the handshake), without looking at other members.
    pub leader_syncing: bool,
    /// Members of the configuration that are up but not serving (restarting, catching up, or
    /// hung), by host.
    pub catching_up: Vec<String>,
}

impl Observed {
    /// Every host serving in broadcast.
    pub fn all_broadcasting(&self) -> bool {
        !self.per_host.is_empty() && self.per_host.values().all(|h| h.serving)
    }
}

#[derive(Default)]
struct Answers {
    srvr: Option<Srvr>,
    mntr: Option<Mntr>,
    conf: Option<Conf>,
    not_serving: bool,
    answered: bool,
    timed_out: bool,
    error: Option<String>,
}

/// Observes `hosts` (`host:port` of the plain client port, where four-letter words are served),
/// each command bounded by `four_lw_timeout`; all run in parallel.
pub async fn observe(hosts: &[String], four_lw_timeout: Duration) -> Observed {
    let mut set = JoinSet::new();
    for host in hosts {
        for cmd in ["srvr", "mntr", "conf"] {
            let host = host.clone();
            set.spawn(async move {
                let r = fourlw::four_letter_word(&host, cmd, four_lw_timeout).await;
                (host, cmd, r)
            });
        }
    }
    let mut answers: BTreeMap<String, Answers> = hosts
        .iter()
        .map(|h| (h.clone(), Answers::default()))
        .collect();
    while let Some(joined) = set.join_next().await {
        let Ok((host, cmd, r)) = joined else { continue };
        let a = answers.entry(host).or_default();
        let text = match r {
            Ok(t) => t,
            Err(e) => {
                if matches!(e, ZkError::FourLwNotAllowed { .. }) {
                    a.answered = true;
                }
                if matches!(e, ZkError::Timeout { .. }) {
                    a.timed_out = true;
                }
                a.error.get_or_insert_with(|| match e {
                    ZkError::Io { source, .. } => format!("{cmd}: {source}"),
                    other => other.to_string(),
                });
                continue;
            }
        };
        a.answered = true;
        let parsed = match cmd {
            "srvr" => fourlw::parse_srvr(&text).map(|r| r.serving().map(|s| a.srvr = Some(s))),
            "mntr" => fourlw::parse_mntr(&text).map(|r| r.serving().map(|m| a.mntr = Some(m))),
            _ => fourlw::parse_conf(&text).map(|r| r.serving().map(|c| a.conf = Some(c))),
        };
        match parsed {
            Ok(Some(())) => {}
            Ok(None) => a.not_serving = true,
            Err(e) => {
                a.error.get_or_insert(e.to_string());
            }
        }
    }

    let mut observed = Observed::default();
    let mut best: Option<(u64, String)> = None;
    for (host, a) in &answers {
        let is_leader = a.srvr.as_ref().is_some_and(|s| s.mode == Mode::Leader)
            && a.mntr.as_ref().is_some_and(Mntr::is_leader);
        if is_leader {
            let zxid = a.srvr.as_ref().map_or(0, |s| s.zxid);
            if best.as_ref().map_or(true, |(z, _)| zxid > *z) {
                best = Some((zxid, host.clone()));
            }
        }
        let state = HostState {
            reachable: a.answered,
            serving: !a.not_serving && a.mntr.as_ref().is_some_and(Mntr::is_broadcast),
            mode: a.srvr.as_ref().map(|s| s.mode),
            peer_state: a
                .mntr
                .as_ref()
                .and_then(|m| m.peer_state())
                .map(str::to_string),
            server_id: a.conf.as_ref().and_then(|c| c.server_id),
            zxid: a.srvr.as_ref().map(|s| s.zxid),
            version: a.srvr.as_ref().map(Srvr::short_version),
            error: a.error.clone().or_else(|| {
                a.not_serving
                    .then(|| "not currently serving requests".to_string())
            }),
            not_serving: a.not_serving,
            hung: a.timed_out && !a.answered,
        };
        observed.per_host.insert(host.clone(), state);
    }
    if let Some((_, leader)) = best {
        let a = &answers[&leader];
        observed.config = a.conf.as_ref().map(|c| c.config.clone());
        observed.syncing_reason = a.mntr.as_ref().and_then(Mntr::syncing_reason);
        observed.leader_syncing = observed.syncing_reason.is_some();
        if let Some(cfg) = &observed.config {
            observed.catching_up = cfg
                .members
                .values()
                .filter_map(|m| m.client_addr())
                .filter(|addr| {
                    observed
                        .per_host
                        .get(addr)
                        .is_some_and(HostState::catching_up)
                })
                .collect();
        }
        // A member that is up but not serving is catching up (restarted, or loading the
        // leader's snapshot, which the leader already counts as synced).
        if observed.syncing_reason.is_none() {
            observed.syncing_reason = observed.config.as_ref().and_then(|cfg| {
                cfg.members.values().find_map(|m| {
                    let addr = m.client_addr()?;
                    answers.get(&addr).filter(|a| a.not_serving).map(|_| {
                        format!(
                            "server.{} ({addr}) is up but not serving requests yet",
                            m.id
                        )
                    })
                })
            });
        }
        observed.syncing = observed.syncing_reason.is_some();
        observed.leader = Some(leader);
    }
    tracing::debug!(leader = ?observed.leader, syncing = observed.syncing, "observed the ensemble");
    observed
}
