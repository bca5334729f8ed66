//! What this unit remembers between hooks, in `$JUJU_CHARM_DIR/.zookeeper-unit.json` (written
//! atomically, only when a hook succeeds, like the deferred-event queue). Only memory lives
//! here: copies of what Juju says are the hook tools' read cache
//! ([`crate::juju::cached::CachedTools`]), which knows when they go stale.
//!
//! - `format`: the schema version ([`FORMAT`]); older files are migrated on load
//!   ([`LocalState::load`]).
//! - `departed`: units this unit saw leave (`cluster-relation-departed`). It is the evidence the
//!   planner needs before removing a member: a peer list that comes back empty (Juju
//!   LP#2053055) is not evidence.
//! - `dying`: this unit saw itself as the departing unit; it starts nothing any more.
//! - `addresses`: every peer address seen, so a departed unit's server (which may still be the
//!   quorum leader) can be reached.
//! - `loaded`, `loaded_clients`: the fingerprint of the inputs the running server was started
//!   with, and the client users its JAAS file held then (see [`crate::restart`]).
//! - `starts`: how many times this unit started its server (published, so the leader hears of
//!   restarts after a crash).
//! - `published_restart`: what this unit last wrote to its `restart` bag (to write only changes).
//! - `led`: this unit was the Juju leader in its last finished hook (a unit that leads anew
//!   reads everything an earlier leader may have left half done).
//! - `clients`: per client relation, what the leader last published to it and the secrets it
//!   created for it.
//! - `observe_hosts`: the servers the last hook's first four-letter-word round asked, a guess
//!   at this hook's first round, started early (see [`crate::charm::ensemble_io::EnsembleIo::prefetch`]).
//! - `client_facts`, `journal_checked_at`: the leader's copies of ZooKeeper answers for client
//!   tenancy (see [`crate::clients::plan`]); who owns which znode is never kept here but in the
//!   peer application bag.
//! - `digest_mismatch`, `restart_stalled`: conditions this unit found, to log once and to
//!   resume a stalled restart.
//! - `tls_serving`, `tls_loaded`: the step of the TLS switch and the TLS stores its running
//!   server was started with (published as `tls-serving`; a changed store needs a restart).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::quorum::plan::UnitId;

pub const FILE: &str = ".zookeeper-unit.json";

/// The schema version this charm writes. 1 (no `format` key): the first charm versions, which
/// also kept copies of hook-tool reads here; 2: memory only.
pub const FORMAT: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalState {
    #[serde(default = "format_1")]
    pub format: u32,
    #[serde(default)]
    pub installed: bool,
    #[serde(default)]
    pub dying: bool,
    #[serde(default)]
    pub departed: BTreeSet<UnitId>,
    #[serde(default)]
    pub addresses: BTreeMap<UnitId, String>,
    #[serde(default)]
    pub loaded: Option<String>,
    #[serde(default)]
    pub loaded_clients: BTreeSet<u32>,
    #[serde(default)]
    pub starts: u64,
    #[serde(default)]
    pub published_restart: BTreeMap<String, String>,
    /// Per client relation (by id): what was published to it.
    #[serde(default)]
    pub clients: BTreeMap<u32, ClientCache>,
    /// This unit was the leader in its last finished hook.
    #[serde(default)]
    pub led: bool,
    /// The servers (`host:port`) the last hook's first four-letter-word round asked: the next
    /// hook starts the same round while it reads its hook tools (used only if it asks the same).
    #[serde(default)]
    pub observe_hosts: Option<Vec<String>>,
    /// The leader's copy of what ZooKeeper said about paths clients asked for and did not get
    /// (re-read after a few minutes, or when an operation touches them).
    #[serde(default)]
    pub client_facts: BTreeMap<String, CachedFacts>,
    /// When this unit last read the journal of started znode operations (unix seconds).
    #[serde(default)]
    pub journal_checked_at: u64,
    /// Its server reports digest mismatches (logged when they start).
    #[serde(default)]
    pub digest_mismatch: bool,
    /// A rolling restart of its server for these inputs (fingerprint, client users) that did
    /// not serve within the wait: later hooks look whether it serves before restarting again.
    #[serde(default)]
    pub restart_stalled: Option<(String, BTreeSet<u32>)>,
    /// The step of the TLS switch the running server was started into (`Serving::as_str`;
    /// none before TLS existed: plain).
    #[serde(default)]
    pub tls_serving: Option<String>,
    /// A fingerprint of the TLS stores (key store and trust store) the running server loaded:
    /// a changed store needs a restart (3.8 reloads no client-port certificate).
    #[serde(default)]
    pub tls_loaded: Option<String>,
    /// The fingerprint of the CA of the certificate the running server loaded.
    #[serde(default)]
    pub tls_loaded_ca: Option<String>,
    /// The fingerprints of the CAs the running server's trust store held when it started.
    #[serde(default)]
    pub tls_loaded_trust: Vec<String>,
    /// The last valid `certificate-include-ip-sans` and `certificate-renewal-margin` (kept in
    /// force while the configuration is invalid).
    #[serde(default)]
    pub tls_options: Option<(bool, Option<u64>)>,
    /// The `state` this unit last wrote on the `upgrade` relation.
    #[serde(default)]
    pub upgrade_state: Option<String>,
    /// What the leader last wrote to the `upgrade` application bag (`None`: read it first).
    #[serde(default)]
    pub upgrade_app: Option<BTreeMap<String, String>>,
}

/// [`crate::clients::plan::PathFacts`] and when they were read (unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFacts {
    pub at: u64,
    pub facts: crate::clients::plan::PathFacts,
}

/// What the leader published to one client relation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCache {
    /// Fingerprint of what was last published to it.
    #[serde(default)]
    pub published: Option<String>,
    /// Provider-side secrets by data_interfaces group (`user`, `tls`): URI.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

fn format_1() -> u32 {
    1
}

impl Default for LocalState {
    fn default() -> LocalState {
        LocalState {
            format: FORMAT,
            installed: false,
            dying: false,
            departed: BTreeSet::new(),
            addresses: BTreeMap::new(),
            loaded: None,
            loaded_clients: BTreeSet::new(),
            starts: 0,
            published_restart: BTreeMap::new(),
            clients: BTreeMap::new(),
            led: false,
            observe_hosts: None,
            client_facts: BTreeMap::new(),
            journal_checked_at: 0,
            digest_mismatch: false,
            restart_stalled: None,
            tls_serving: None,
            tls_loaded: None,
            tls_loaded_ca: None,
            tls_loaded_trust: Vec::new(),
            tls_options: None,
            upgrade_state: None,
            upgrade_app: None,
        }
    }
}

impl LocalState {
    /// Brings a state read from an older file to [`FORMAT`]. 1 -> 2: the copies of hook-tool
    /// reads (configuration, relation ids and bags, statuses set, what the files were rendered
    /// from) are dropped by parsing (the read cache reads them again); `led` starts false (a
    /// leader then reads everything once more, which is harmless).
    fn migrate(mut self) -> LocalState {
        if self.format < FORMAT {
            tracing::info!(
                "unit state format {} migrated to {FORMAT}: copies of Juju reads are now the hook tools' cache",
                self.format
            );
            self.format = FORMAT;
        }
        self
    }

    pub fn path(charm_dir: &Path) -> PathBuf {
        charm_dir.join(FILE)
    }

    /// Loads the state; a missing file is a fresh unit. One that cannot be read or parsed (a
    /// directory in its place, garbage) is moved aside with a warning and the unit starts from
    /// an empty state, which every hook rebuilds from Juju and the servers.
    pub fn load(charm_dir: &Path) -> LocalState {
        let path = Self::path(charm_dir);
        let problem = match std::fs::read(&path) {
            Ok(raw) => match serde_json::from_slice::<LocalState>(&raw) {
                Ok(state) if state.format <= FORMAT => return state.migrate(),
                Ok(state) => format!(
                    "of format {}, newer than this charm's {FORMAT} (a downgrade)",
                    state.format
                ),
                Err(e) => format!("not valid ({e})"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return LocalState::default(),
            Err(e) => format!("unreadable ({e})"),
        };
        let (_, moved) = crate::files::move_aside(&path);
        tracing::warn!(
            "{} is {problem}; {moved}; starting from an empty unit state, rebuilt from Juju and the servers",
            path.display()
        );
        LocalState::default()
    }

    pub fn save(&self, charm_dir: &Path) -> std::io::Result<()> {
        let path = Self::path(charm_dir);
        let mut tmp = tempfile::NamedTempFile::new_in(charm_dir)?;
        tmp.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LocalState::load(dir.path()), LocalState::default());
        let s = LocalState {
            installed: true,
            departed: [4].into(),
            addresses: [(4, "127.0.0.14".into())].into(),
            loaded: Some("abc".into()),
            starts: 2,
            ..LocalState::default()
        };
        s.save(dir.path()).unwrap();
        assert_eq!(LocalState::load(dir.path()), s);
        std::fs::write(LocalState::path(dir.path()), b"garbage").unwrap();
        assert_eq!(LocalState::load(dir.path()), LocalState::default());
        // A directory in its place is moved aside, and saving works again.
        std::fs::remove_file(LocalState::path(dir.path())).ok();
        std::fs::create_dir(LocalState::path(dir.path())).unwrap();
        assert_eq!(LocalState::load(dir.path()), LocalState::default());
        s.save(dir.path()).unwrap();
        assert_eq!(LocalState::load(dir.path()), s);
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .count();
        assert_eq!(aside, 2, "both bad ones kept for a look");
    }

    /// A file written by the charm before format 2 (commit 5a344c0), with every field it had.
    const FORMAT_1: &str = r#"{
  "installed": true,
  "dying": false,
  "departed": [3],
  "addresses": {"0": "127.0.1.10", "3": "127.0.1.13"},
  "loaded": "0123456789abcdef",
  "loaded_clients": [7],
  "starts": 2,
  "published_restart": {"loaded": "0123456789abcdef", "clients": "7", "starts": "2"},
  "restart_relation": 1,
  "clients": {"7": {"app": "kafka", "remote": {"database": "/kafka"}, "published": "fp", "secrets": {"user": "secret:abc"}}},
  "cluster_relation": 0,
  "config": {"tick-time": 2000},
  "rendered": "0123456789abcdef@127.0.1.10",
  "version_set": "3.8.0",
  "unit_status": {"kind": "active", "message": ""},
  "app_status": {"kind": "active", "message": "3/3 members in quorum"},
  "client_relations": [7],
  "restart_bags": {"1": {"loaded": "x"}},
  "restart_granted": "",
  "restart_granted_for": "",
  "observe_hosts": ["127.0.1.10:2181"],
  "client_facts": {},
  "journal_checked_at": 1700000000,
  "digest_mismatch": false,
  "restart_stalled": null
}"#;

    #[test]
    fn a_format_1_file_keeps_its_memory_and_drops_its_copies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(LocalState::path(dir.path()), FORMAT_1).unwrap();
        let s = LocalState::load(dir.path());
        assert_eq!(s.format, FORMAT);
        assert!(s.installed);
        assert_eq!(s.departed, [3].into());
        assert_eq!(s.addresses.get(&3).map(String::as_str), Some("127.0.1.13"));
        assert_eq!(s.loaded.as_deref(), Some("0123456789abcdef"));
        assert_eq!(s.loaded_clients, [7].into());
        assert_eq!(s.starts, 2);
        assert_eq!(s.published_restart.len(), 3);
        let c = &s.clients[&7];
        assert_eq!(c.published.as_deref(), Some("fp"));
        assert_eq!(
            c.secrets.get("user").map(String::as_str),
            Some("secret:abc")
        );
        assert_eq!(s.observe_hosts, Some(vec!["127.0.1.10:2181".to_string()]));
        assert_eq!(s.journal_checked_at, 1_700_000_000);
        assert!(!s.led);
        // Saved again, it is format 2 and nothing of the copies is written back.
        s.save(dir.path()).unwrap();
        let raw = std::fs::read_to_string(LocalState::path(dir.path())).unwrap();
        assert!(raw.contains("\"format\": 2"), "{raw}");
        for gone in [
            "\"config\"",
            "restart_bags",
            "unit_status",
            "rendered",
            "\"remote\"",
        ] {
            assert!(!raw.contains(gone), "{gone} in {raw}");
        }
        assert_eq!(LocalState::load(dir.path()), s);
    }

    #[test]
    fn a_newer_format_is_moved_aside_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            LocalState::path(dir.path()),
            r#"{"format": 3, "starts": 9}"#,
        )
        .unwrap();
        assert_eq!(LocalState::load(dir.path()), LocalState::default());
    }
}
