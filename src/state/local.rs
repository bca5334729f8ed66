//! What this unit remembers between hooks, in `$JUJU_CHARM_DIR/.zookeeper-unit.json` (written
//! atomically, only when a hook succeeds, like the deferred-event queue).
//!
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
//! - `restart_relation`: the `restart` relation id (peer relation ids never change).
//! - `clients`: the leader's cache of client relations, so a hook reads only the bags that
//!   changed (every bag again on leader-elected and update-status).
//! - `cluster_relation`, `config`, `rendered`, `version_set`, `unit_status`, `app_status`,
//!   `client_relations`, `restart_bags`, `restart_granted`: what cannot have changed since it
//!   was last read or set (a change of it runs a hook that reads it again), so a converged hook
//!   does not ask or set it again (hook tools are process executions).
//! - `observe_hosts`: the servers the last hook's first four-letter-word round asked, a guess
//!   at this hook's first round, started early (see [`crate::charm::ensemble::EnsembleIo::prefetch`]).
//! - `client_facts`, `journal_checked_at`: the leader's copies of ZooKeeper answers for client
//!   tenancy (see [`crate::clients::plan`]); who owns which znode is never kept here but in the
//!   peer application bag.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::quorum::plan::UnitId;

pub const FILE: &str = ".zookeeper-unit.json";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalState {
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
    #[serde(default)]
    pub restart_relation: Option<u32>,
    /// The leader's cache of client relations (by relation id).
    #[serde(default)]
    pub clients: BTreeMap<u32, ClientCache>,
    /// The `cluster` relation id (peer relation ids never change).
    #[serde(default)]
    pub cluster_relation: Option<u32>,
    /// The charm configuration as last read (it only changes with config-changed).
    #[serde(default)]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    /// The input fingerprint the server files on disk were rendered from.
    #[serde(default)]
    pub rendered: Option<String>,
    /// What this unit last set: workload version, unit status, application status.
    #[serde(default)]
    pub version_set: Option<String>,
    #[serde(default)]
    pub unit_status: Option<crate::juju::tools::Status>,
    #[serde(default)]
    pub app_status: Option<crate::juju::tools::Status>,
    /// The client relation ids as last listed (every unit runs their -created and -broken
    /// hooks, so those refresh it).
    #[serde(default)]
    pub client_relations: Option<Vec<u32>>,
    /// The leader's copy of the other units' `restart` bags (refreshed by the restart
    /// relation's hooks, which every change of them triggers) and of the lock it wrote.
    #[serde(default)]
    pub restart_bags: BTreeMap<UnitId, BTreeMap<String, String>>,
    #[serde(default)]
    pub restart_granted: Option<String>,
    /// The fingerprint of that grant.
    #[serde(default)]
    pub restart_granted_for: Option<String>,
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
}

/// [`crate::clients::plan::PathFacts`] and when they were read (unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFacts {
    pub at: u64,
    pub facts: crate::clients::plan::PathFacts,
}

/// What the leader knows of one client relation between hooks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCache {
    /// The remote application.
    #[serde(default)]
    pub app: String,
    /// Its application bag as last read.
    #[serde(default)]
    pub remote: BTreeMap<String, String>,
    /// Fingerprint of what was last published to it.
    #[serde(default)]
    pub published: Option<String>,
    /// Provider-side secrets by data_interfaces group (`user`, `tls`): URI.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

impl LocalState {
    pub fn path(charm_dir: &Path) -> PathBuf {
        charm_dir.join(FILE)
    }

    /// Loads the state; a missing file is a fresh unit. One that cannot be read or parsed (a
    /// directory in its place, garbage) is moved aside with a warning and the unit starts from
    /// an empty state, which every hook rebuilds from Juju and the servers.
    pub fn load(charm_dir: &Path) -> LocalState {
        let path = Self::path(charm_dir);
        let problem = match std::fs::read(&path) {
            Ok(raw) => match serde_json::from_slice(&raw) {
                Ok(state) => return state,
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
}
