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
    /// The configuration this server holds (its `conf`), which may lag the leader's.
    pub config: Option<EnsembleConfig>,
    pub zxid: Option<u64>,
    /// The release, e.g. `3.8.0`.
    pub version: Option<String>,
    /// When its jar was built (`srvr`), e.g. `2024-12-29 17:54 UTC`.
    pub built: Option<String>,
    /// The first error met (unreachable, timeout, refused command), if any.
    pub error: Option<String>,
    /// It answered "This ZooKeeper instance is not currently serving requests".
    pub not_serving: bool,
    /// The server accepted the connection but did not answer in time (a frozen or overloaded
    /// process): up, but not keeping up.
    pub hung: bool,
    /// `zk_digest_mismatches_count`: transactions after which its data tree differed from the
    /// leader's (since it started).
    pub digest_mismatches: Option<u64>,
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

/// The raw answers of one round: `(host, word, answer)` for `srvr`, `mntr` and `conf` on every
/// host. Collected by [`ask`], read by [`interpret`]; the split lets a caller start a round early
/// (e.g. on another thread while it reads hook tools) and interpret it later.
pub type Round = Vec<(String, &'static str, Result<String, ZkError>)>;

/// The words of one round.
pub const ROUND_WORDS: [&str; 3] = ["srvr", "mntr", "conf"];

/// Asks every word of [`ROUND_WORDS`] on every host, all in parallel, each bounded by
/// `four_lw_timeout`.
pub async fn ask(hosts: &[String], four_lw_timeout: Duration) -> Round {
    let mut set = JoinSet::new();
    for host in hosts {
        for cmd in ROUND_WORDS {
            let host = host.clone();
            set.spawn(async move {
                let r = fourlw::four_letter_word(&host, cmd, four_lw_timeout).await;
                (host, cmd, r)
            });
        }
    }
    let mut round = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(answer) = joined {
            round.push(answer);
        }
    }
    round
}

/// Observes `hosts` (`host:port` of the plain client port, where four-letter words are served),
/// each command bounded by `four_lw_timeout`; all run in parallel.
pub async fn observe(hosts: &[String], four_lw_timeout: Duration) -> Observed {
    interpret(hosts, ask(hosts, four_lw_timeout).await)
}

/// What a round of answers says about `hosts` (answers from other hosts are ignored).
pub fn interpret(hosts: &[String], round: Round) -> Observed {
    let mut answers: BTreeMap<String, Answers> = hosts
        .iter()
        .map(|h| (h.clone(), Answers::default()))
        .collect();
    for (host, cmd, r) in round {
        let Some(a) = answers.get_mut(&host) else {
            continue;
        };
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
            if best.as_ref().is_none_or(|(z, _)| zxid > *z) {
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
            config: a.conf.as_ref().map(|c| c.config.clone()),
            zxid: a.srvr.as_ref().map(|s| s.zxid),
            version: a.srvr.as_ref().map(Srvr::short_version),
            built: a
                .srvr
                .as_ref()
                .and_then(|s| super::fourlw::build_date(&s.version)),
            error: a.error.clone().or_else(|| {
                a.not_serving
                    .then(|| "not currently serving requests".to_string())
            }),
            not_serving: a.not_serving,
            hung: a.timed_out && !a.answered,
            digest_mismatches: a.mntr.as_ref().and_then(Mntr::digest_mismatches),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::fourlw::samples::*;

    const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

    fn answer(
        host: &str,
        word: &'static str,
        text: &str,
    ) -> (String, &'static str, Result<String, ZkError>) {
        (host.to_string(), word, Ok(text.to_string()))
    }

    #[test]
    fn a_round_is_read_per_host_and_finds_the_leader() {
        let (a, b) = ("127.0.0.11:2181".to_string(), "127.0.0.13:2181".to_string());
        let round = vec![
            answer(&a, "srvr", SRVR_FOLLOWER),
            answer(&a, "mntr", MNTR_FOLLOWER),
            answer(&b, "srvr", SRVR_LEADER),
            answer(&b, "mntr", MNTR_LEADER),
            answer(&b, "conf", CONF_LEADER),
            // Answers from a host nobody asked about are ignored.
            answer("127.0.0.99:2181", "srvr", SRVR_LEADER),
            answer("127.0.0.99:2181", "mntr", MNTR_LEADER),
        ];
        let obs = interpret(&[a.clone(), b.clone()], round);
        assert_eq!(obs.leader.as_deref(), Some(b.as_str()));
        assert_eq!(obs.per_host.len(), 2);
        assert!(obs.per_host[&a].serving && obs.per_host[&b].serving);
        assert!(obs.config.is_some_and(|c| !c.members.is_empty()));
        assert!(!obs.syncing);
    }

    #[test]
    fn a_host_that_is_not_serving_or_silent_is_catching_up_not_serving() {
        let (a, b) = ("127.0.0.11:2181".to_string(), "127.0.0.12:2181".to_string());
        let round = vec![
            answer(&a, "srvr", NOT_SERVING),
            answer(&a, "mntr", NOT_SERVING),
            (
                b.clone(),
                "srvr",
                Err(ZkError::Timeout {
                    op: "srvr".into(),
                    host: b.clone(),
                    after: Duration::from_secs(1),
                }),
            ),
        ];
        let obs = interpret(&[a.clone(), b.clone()], round);
        assert!(obs.leader.is_none());
        assert!(obs.per_host[&a].not_serving && obs.per_host[&a].catching_up());
        assert!(obs.per_host[&b].hung && !obs.per_host[&b].reachable);
    }
}
