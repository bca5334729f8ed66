//! Four-letter words over raw TCP (no session, no authentication), and pure parsers for their
//! answers, tested on real ZooKeeper 3.8.0 output (`testdata/`).
//!
//! Until a server reaches "... - broadcast", `srvr`, `mntr`, `stat` and `conf` answer
//! `This ZooKeeper instance is not currently serving requests`; the intermediate peer states are
//! never visible. The parsers return that answer, and an empty one (a server changing state
//! closes the connection without answering), as [`FourLw::NotServing`], a value, so callers
//! read it as "not synced" instead of failing.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::ZkError;
use crate::quorum::member::{EnsembleConfig, MemberError};

/// ZooKeeper's answer while the server is not in broadcast (no quorum, electing, syncing).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Largest answer read (a leader's `mntr` is about 30 KiB).
const MAX_ANSWER: u64 = 4 << 20;

/// Sends `cmd` to `addr` (`host:port`) and reads the answer to EOF; connecting, writing and
/// reading are all bounded by `timeout` together.
pub async fn four_letter_word(addr: &str, cmd: &str, timeout: Duration) -> Result<String, ZkError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(cmd.as_bytes()).await?;
        stream.shutdown().await?;
        let mut buf = Vec::new();
        stream.take(MAX_ANSWER).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let bytes = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => {
            return Err(ZkError::Timeout {
                op: format!("four-letter word {cmd:?}"),
                host: addr.to_string(),
                after: timeout,
            })
        }
        Ok(Err(source)) => {
            return Err(ZkError::Io {
                host: addr.to_string(),
                source,
            })
        }
        Ok(Ok(b)) => b,
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    tracing::debug!(addr, cmd, bytes = text.len(), "four-letter word answered");
    if text
        .trim_end()
        .ends_with("is not executed because it is not in the whitelist.")
    {
        return Err(ZkError::FourLwNotAllowed {
            cmd: cmd.to_string(),
            host: addr.to_string(),
        });
    }
    Ok(text)
}

/// A four-letter-word answer: the parsed value, or "not currently serving requests".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLw<T> {
    Serving(T),
    NotServing,
}

impl<T> FourLw<T> {
    pub fn serving(self) -> Option<T> {
        match self {
            FourLw::Serving(t) => Some(t),
            FourLw::NotServing => None,
        }
    }

    pub fn as_serving(&self) -> Option<&T> {
        match self {
            FourLw::Serving(t) => Some(t),
            FourLw::NotServing => None,
        }
    }
}

/// An answer that is neither a well-formed reply nor "not serving".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {cmd} answer: {detail}")]
pub struct ParseError {
    pub cmd: &'static str,
    pub detail: String,
}

fn malformed(cmd: &'static str, detail: impl Into<String>) -> ParseError {
    ParseError {
        cmd,
        detail: detail.into(),
    }
}

/// "Not serving", or no answer at all: a server tearing down its connections (a leader
/// stepping down, a server shutting down) closes a four-letter-word connection without a word.
fn is_not_serving(text: &str) -> bool {
    let text = text.trim();
    text.is_empty() || text == NOT_SERVING
}

/// True for `leading - broadcast`, `following - broadcast`, `observing - broadcast`.
pub fn is_broadcast(peer_state: &str) -> bool {
    peer_state.trim().ends_with("- broadcast")
}

/// `srvr`'s `Mode:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Leader,
    /// Also a non-voting follower (a joiner not yet in the configuration).
    Follower,
    Observer,
    Standalone,
    ReadOnly,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s.trim() {
            "leader" => Mode::Leader,
            "follower" => Mode::Follower,
            "observer" => Mode::Observer,
            "standalone" => Mode::Standalone,
            "read-only" => Mode::ReadOnly,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::Standalone => "standalone",
            Mode::ReadOnly => "read-only",
        }
    }
}

/// `srvr`, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srvr {
    /// The full `Zookeeper version:` value, e.g. `3.8.0-${mvngit.commit.id}, built on ...`.
    pub version: String,
    pub mode: Mode,
    pub zxid: u64,
    pub node_count: u64,
    /// Every `key: value` line.
    pub raw: BTreeMap<String, String>,
}

impl Srvr {
    /// `3.8.0` from `3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC`.
    pub fn short_version(&self) -> String {
        short_version(&self.version)
    }
}

/// When the server's jar was built: `2024-12-29 17:54 UTC` from `3.8.0-..., built on
/// 2024-12-29 17:54 UTC` (two builds of one release are told apart by it).
pub fn build_date(full: &str) -> Option<String> {
    full.split_once("built on ")
        .map(|(_, d)| d.trim().to_string())
        .filter(|d| !d.is_empty())
}

/// The release number at the start of a ZooKeeper version string.
pub fn short_version(full: &str) -> String {
    full.trim()
        .split(|c: char| c == '-' || c == ',' || c.is_whitespace())
        .next()
        .unwrap_or("")
        .to_string()
}

pub fn parse_srvr(text: &str) -> Result<FourLw<Srvr>, ParseError> {
    if is_not_serving(text) {
        return Ok(FourLw::NotServing);
    }
    let raw: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let get = |k: &str| {
        raw.get(k)
            .ok_or_else(|| malformed("srvr", format!("no {k:?} line")))
    };
    let version = get("Zookeeper version")?.clone();
    let mode_text = get("Mode")?;
    let mode = Mode::parse(mode_text)
        .ok_or_else(|| malformed("srvr", format!("unknown mode {mode_text:?}")))?;
    let zxid_text = get("Zxid")?;
    let zxid = u64::from_str_radix(zxid_text.trim_start_matches("0x"), 16)
        .map_err(|_| malformed("srvr", format!("bad zxid {zxid_text:?}")))?;
    let nc = get("Node count")?;
    let node_count = nc
        .parse()
        .map_err(|_| malformed("srvr", format!("bad node count {nc:?}")))?;
    Ok(FourLw::Serving(Srvr {
        version,
        mode,
        zxid,
        node_count,
        raw,
    }))
}

/// `mntr`: tab-separated `zk_key value` lines, with typed accessors for what the charm uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mntr {
    pub raw: BTreeMap<String, String>,
}

impl Mntr {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw.get(key).map(String::as_str)
    }

    fn number(&self, key: &str) -> Option<u64> {
        let v = self.get(key)?.trim();
        v.parse::<u64>().ok().or_else(|| {
            v.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        })
    }

    /// `leader`, `follower`, `observer`, `standalone`.
    pub fn server_state(&self) -> Option<&str> {
        self.get("zk_server_state")
    }
    /// e.g. `leading - broadcast`.
    pub fn peer_state(&self) -> Option<&str> {
        self.get("zk_peer_state")
    }
    pub fn is_broadcast(&self) -> bool {
        self.peer_state().is_some_and(is_broadcast)
    }
    pub fn is_leader(&self) -> bool {
        self.server_state() == Some("leader")
    }
    pub fn version(&self) -> Option<&str> {
        self.get("zk_version")
    }
    pub fn quorum_size(&self) -> Option<u64> {
        self.number("zk_quorum_size")
    }
    /// Leader only: client `sync` requests waiting for a proposal (what the Python library
    /// calls "syncing"; almost always 0).
    pub fn pending_syncs(&self) -> Option<u64> {
        self.number("zk_pending_syncs")
    }
    /// Transactions whose data-tree digest differed from the leader's since this server started
    /// (`zookeeper.digest.enabled`): its copy of the data is not the leader's.
    pub fn digest_mismatches(&self) -> Option<u64> {
        self.number("zk_digest_mismatches_count")
    }
    /// Leader only: followers the leader forwards to, voting and non-voting (joiners).
    pub fn synced_followers(&self) -> Option<u64> {
        self.number("zk_synced_followers")
    }
    /// Leader only: the part of [`Mntr::synced_followers`] that is not in the configuration
    /// (joiners, removed servers still running).
    pub fn synced_non_voting_followers(&self) -> Option<u64> {
        self.number("zk_synced_non_voting_followers")
    }
    /// Leader only: observers in broadcast.
    pub fn synced_observers(&self) -> Option<u64> {
        self.number("zk_synced_observers")
    }
    /// Leader only: every connected learner, synced or not.
    pub fn learners(&self) -> Option<u64> {
        self.number("zk_learners")
    }

    /// Leader only: learners connected to the leader that it does not forward to yet
    /// (`zk_learners` minus the synced followers and observers): they are
    /// still in the handshake that precedes the data sync. Note that the leader starts
    /// forwarding, and so counts a learner as "synced", *before* it sends the snapshot or diff:
    /// a learner still loading its snapshot shows up only in its own `mntr` (not serving).
    pub fn syncing_learners(&self) -> Option<u64> {
        // zk_synced_followers already includes the non-voting ones.
        let synced = self.synced_followers()? + self.synced_observers().unwrap_or(0);
        Some(self.learners()?.saturating_sub(synced))
    }

    /// Why the ensemble counts as syncing, seen from this (leader's) `mntr`; `None` if it does
    /// not: the server is not a broadcasting leader, client syncs are pending, or learners are
    /// still in the handshake before their sync.
    pub fn syncing_reason(&self) -> Option<String> {
        if !self.is_leader() || !self.is_broadcast() {
            return Some(format!(
                "the leader candidate is {} / {}",
                self.server_state().unwrap_or("?"),
                self.peer_state().unwrap_or("?")
            ));
        }
        if let Some(n) = self.pending_syncs().filter(|n| *n > 0) {
            return Some(format!("zk_pending_syncs is {n}"));
        }
        if let Some(n) = self.syncing_learners().filter(|n| *n > 0) {
            return Some(format!("{n} learner(s) connected but not yet synced"));
        }
        None
    }
}

pub fn parse_mntr(text: &str) -> Result<FourLw<Mntr>, ParseError> {
    if is_not_serving(text) {
        return Ok(FourLw::NotServing);
    }
    let raw: BTreeMap<String, String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once('\t') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (l.trim().to_string(), String::new()),
        })
        .collect();
    if !raw.contains_key("zk_version") {
        return Err(malformed("mntr", "no zk_version line"));
    }
    Ok(FourLw::Serving(Mntr { raw }))
}

/// `conf`: the server's settings (`key=value` before `membership:`) and the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conf {
    pub server_id: Option<u32>,
    pub settings: BTreeMap<String, String>,
    pub config: EnsembleConfig,
}

pub fn parse_conf(text: &str) -> Result<FourLw<Conf>, ParseError> {
    if is_not_serving(text) {
        return Ok(FourLw::NotServing);
    }
    let settings: BTreeMap<String, String> = text
        .lines()
        .take_while(|l| l.trim() != "membership:")
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let config = EnsembleConfig::parse_conf_membership(text)
        .map_err(|e: MemberError| malformed("conf", e.to_string()))?;
    Ok(FourLw::Serving(Conf {
        server_id: settings.get("serverId").and_then(|s| s.parse().ok()),
        settings,
        config,
    }))
}

/// Recorded answers of a real 3.8 ensemble (`testdata/README.md`), for parser and observer tests.
#[cfg(test)]
pub(crate) mod samples {
    pub const SRVR_LEADER: &str = include_str!("testdata/srvr-leader.txt");
    pub const SRVR_FOLLOWER: &str = include_str!("testdata/srvr-follower.txt");
    pub const MNTR_LEADER: &str = include_str!("testdata/mntr-leader.txt");
    pub const MNTR_FOLLOWER: &str = include_str!("testdata/mntr-follower.txt");
    pub const CONF_LEADER: &str = include_str!("testdata/conf-leader.txt");
    pub const CONF_FOLLOWER: &str = include_str!("testdata/conf-follower.txt");
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    const NOT_SERVING_RECORDED: [&str; 3] = [
        include_str!("testdata/mntr-not-serving.txt"),
        include_str!("testdata/srvr-not-serving.txt"),
        include_str!("testdata/conf-not-serving.txt"),
    ];
    const MNTR_PENDING_SYNCS: &str = include_str!("testdata/mntr-leader-pending-syncs.txt");

    #[test]
    fn digest_mismatches_from_mntr() {
        let m = parse_mntr(samples::MNTR_LEADER).unwrap().serving().unwrap();
        assert_eq!(m.digest_mismatches(), Some(0));
        let m = parse_mntr("zk_version\t3.8.0\nzk_digest_mismatches_count\t9642\n")
            .unwrap()
            .serving()
            .unwrap();
        assert_eq!(m.digest_mismatches(), Some(9642));
    }

    #[test]
    fn srvr_samples_parse() {
        let l = parse_srvr(SRVR_LEADER).unwrap().serving().unwrap();
        assert_eq!(l.mode, Mode::Leader);
        assert_eq!(l.zxid, 0x1_0000_0000);
        assert_eq!(l.node_count, 5);
        assert_eq!(l.short_version(), "3.8.0");
        assert_eq!(l.raw["Proposal sizes last/min/max"], "-1/-1/-1");
        let f = parse_srvr(SRVR_FOLLOWER).unwrap().serving().unwrap();
        assert_eq!(f.mode, Mode::Follower);
        assert_eq!(f.zxid, 0);
        assert_eq!(f.raw["Latency min/avg/max"], "0/0.0/0");
        assert!(f.version.starts_with("3.8.0-${mvngit.commit.id}, built on"));
    }

    #[test]
    fn build_dates() {
        assert_eq!(
            build_date("3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC").as_deref(),
            Some("2024-12-29 17:54 UTC")
        );
        assert_eq!(build_date("3.8.0"), None);
    }

    #[test]
    fn short_versions() {
        for (full, want) in [
            (
                "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
                "3.8.0",
            ),
            (
                "3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023, built on 2024-02-12",
                "3.9.2",
            ),
            ("3.8.4, built on 2024-02-12", "3.8.4"),
            ("3.7.1", "3.7.1"),
        ] {
            assert_eq!(short_version(full), want);
        }
    }

    #[test]
    fn not_serving_is_a_value_for_every_parser() {
        let extra = [
            NOT_SERVING,
            "  This ZooKeeper instance is not currently serving requests\n",
            "",
            "\n",
        ];
        for text in NOT_SERVING_RECORDED.into_iter().chain(extra) {
            assert_eq!(parse_srvr(text).unwrap(), FourLw::NotServing);
            assert_eq!(parse_mntr(text).unwrap(), FourLw::NotServing);
            assert_eq!(parse_conf(text).unwrap(), FourLw::NotServing);
        }
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        for text in ["imok", "garbage\n\n", "Mode: leader\n"] {
            assert!(parse_srvr(text).is_err(), "{text:?}");
        }
        let bad_mode = SRVR_FOLLOWER.replace("Mode: follower", "Mode: dancing");
        assert!(parse_srvr(&bad_mode).is_err());
        assert!(parse_mntr("imok").is_err());
        assert!(parse_conf("clientPort=2181\n").is_err());
    }

    #[test]
    fn mntr_samples_parse() {
        let l = parse_mntr(MNTR_LEADER).unwrap().serving().unwrap();
        assert_eq!(l.server_state(), Some("leader"));
        assert_eq!(l.peer_state(), Some("leading - broadcast"));
        assert!(l.is_broadcast() && l.is_leader());
        assert_eq!(l.pending_syncs(), Some(0));
        assert_eq!(l.synced_followers(), Some(2));
        assert_eq!(l.synced_non_voting_followers(), Some(0));
        assert_eq!(l.synced_observers(), Some(0));
        assert_eq!(l.learners(), Some(2));
        assert_eq!(l.syncing_learners(), Some(0));
        assert_eq!(l.quorum_size(), Some(3));
        assert_eq!(l.syncing_reason(), None);
        assert!(l.version().unwrap().starts_with("3.8.0"));
        assert_eq!(l.get("zk_avg_latency"), Some("0.0"));

        let f = parse_mntr(MNTR_FOLLOWER).unwrap().serving().unwrap();
        assert_eq!(f.server_state(), Some("follower"));
        assert_eq!(f.peer_state(), Some("following - broadcast"));
        assert!(f.is_broadcast() && !f.is_leader());
        assert_eq!(f.pending_syncs(), None);
        assert_eq!(f.syncing_learners(), None);
        assert!(f.syncing_reason().unwrap().contains("follower"));
    }

    #[test]
    fn mntr_with_pending_syncs_means_syncing() {
        let m = parse_mntr(MNTR_PENDING_SYNCS).unwrap().serving().unwrap();
        assert_eq!(m.pending_syncs(), Some(2));
        assert_eq!(m.syncing_reason().as_deref(), Some("zk_pending_syncs is 2"));
        // A learner connected but not synced (zk_learners 3, 2 synced).
        let joining = MNTR_LEADER.replace("zk_learners\t2", "zk_learners\t3");
        let m = parse_mntr(&joining).unwrap().serving().unwrap();
        assert_eq!(m.syncing_learners(), Some(1));
        assert!(m.syncing_reason().unwrap().contains("1 learner"));
        // A synced joiner is a synced follower *and* a synced non-voting follower (measured on
        // 3.8.0: one member plus one joiner gives learners 1, synced 1, non-voting 1).
        let joined = MNTR_LEADER
            .replace("zk_learners\t2", "zk_learners\t3")
            .replace("zk_synced_followers\t2", "zk_synced_followers\t3")
            .replace(
                "zk_synced_non_voting_followers\t0",
                "zk_synced_non_voting_followers\t1",
            );
        let m = parse_mntr(&joined).unwrap().serving().unwrap();
        assert_eq!(m.syncing_learners(), Some(0));
        assert_eq!(m.syncing_reason(), None);
        // Float values (older servers) still read as numbers.
        let float = MNTR_LEADER.replace("zk_pending_syncs\t0", "zk_pending_syncs\t1.0");
        let m = parse_mntr(&float).unwrap().serving().unwrap();
        assert_eq!(m.pending_syncs(), Some(1));
    }

    #[test]
    fn broadcast_states() {
        for s in [
            "leading - broadcast",
            "following - broadcast",
            "observing - broadcast",
        ] {
            assert!(is_broadcast(s), "{s}");
        }
        for s in [
            "looking",
            "following - synchronization",
            "leading - discovery",
            "",
        ] {
            assert!(!is_broadcast(s), "{s}");
        }
    }

    #[test]
    fn conf_samples_parse() {
        for (text, id) in [(CONF_LEADER, 3), (CONF_FOLLOWER, 1)] {
            let c = parse_conf(text).unwrap().serving().unwrap();
            assert_eq!(c.server_id, Some(id));
            assert_eq!(c.settings["tickTime"], "2000");
            assert_eq!(c.config.ids(), vec![1, 2, 3]);
            assert_eq!(c.config.version, 0x1_0000_0000);
            assert!(!c.settings.contains_key("version"));
        }
    }
}
