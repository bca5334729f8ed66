//! The context of one running hook or action: who runs, what for, and the transaction.
//!
//! Transaction model (Juju 3.6, `juju-concurrency.md` §1.3): a hook's writes are buffered in its
//! [`Overlay`] over live reads, and committed when it exits 0 (see [`crate::overlay`]); a failed
//! hook's writes are dropped and were never seen by anyone. The [`Immediate`] changes (status,
//! application version, leader settings) go to the world at once, whatever the exit code.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{Bag, HookKind, Status, World};
use crate::overlay::Overlay;

/// A change Juju applies immediately, not at commit.
#[derive(Debug, Clone)]
pub enum Immediate {
    UnitStatus(String, Status),
    AppStatus(String, Status),
    WorkloadVersion(String, String),
    LeaderSettings(String, Bag),
}

impl Immediate {
    pub fn apply(&self, world: &mut World) {
        match self {
            Immediate::UnitStatus(unit, st) => {
                if let Some(u) = world.unit_mut(unit) {
                    u.workload = st.clone();
                    u.status_set = true;
                }
            }
            Immediate::AppStatus(app, st) => {
                if let Some(a) = world.apps.get_mut(app) {
                    a.status = Some(st.clone());
                }
            }
            Immediate::WorkloadVersion(app, v) => {
                if let Some(a) = world.apps.get_mut(app) {
                    a.workload_version = v.clone();
                }
            }
            Immediate::LeaderSettings(app, bag) => {
                if let Some(a) = world.apps.get_mut(app) {
                    if a.leader_settings != *bag {
                        a.leader_settings = bag.clone();
                        a.leader_settings_version += 1;
                    }
                }
            }
        }
    }
}

/// One recorded tool call (for the timeline).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolCall {
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
    /// When the call was answered (milliseconds since the epoch, as the hook's `start_ms`).
    #[serde(default)]
    pub at_ms: u64,
}

#[derive(Debug, Clone)]
pub struct ActionCtx {
    pub params: Map<String, Value>,
    pub results: Map<String, Value>,
    pub failed: Option<String>,
    pub log: Vec<String>,
}

#[derive(Debug)]
pub struct HookCtx {
    pub id: String,
    pub unit: String,
    /// `None` for actions.
    pub kind: Option<HookKind>,
    /// The hook's relation (relation hooks): the default for `-r`.
    pub relation: Option<u64>,
    pub endpoint: Option<String>,
    pub remote_app: Option<String>,
    pub remote_unit: Option<String>,
    pub departing: Option<String>,
    pub storage_id: Option<String>,
    pub action: Option<ActionCtx>,
    /// `is-leader` answer cached once false ("false stays false" within a hook).
    pub leader_false: bool,
    /// Secrets that got a new revision in this hook (xid).
    pub new_revisions: BTreeSet<String>,
    /// Secrets created in this hook (xid).
    pub created_secrets: BTreeSet<String>,
    pub immediates: Vec<Immediate>,
    pub calls: Vec<ToolCall>,
    pub reboot_requested: bool,
    /// This hook's buffered writes.
    pub overlay: Overlay,
}

impl HookCtx {
    pub fn new(id: String, unit: &str) -> HookCtx {
        HookCtx {
            id,
            unit: unit.to_string(),
            kind: None,
            relation: None,
            endpoint: None,
            remote_app: None,
            remote_unit: None,
            departing: None,
            storage_id: None,
            action: None,
            leader_false: false,
            new_revisions: BTreeSet::new(),
            created_secrets: BTreeSet::new(),
            immediates: Vec::new(),
            calls: Vec::new(),
            reboot_requested: false,
            overlay: Overlay::default(),
        }
    }

    pub fn app(&self) -> &str {
        crate::model::app_of(&self.unit)
    }

    /// Leadership as this hook sees it: the world's leader, except that once the answer was
    /// false it stays false for the rest of the hook.
    pub fn is_leader(&mut self, world: &World) -> bool {
        if self.leader_false {
            return false;
        }
        let l = world.is_leader(&self.unit);
        if !l {
            self.leader_false = true;
        }
        l
    }

    /// Records and applies an immediate change.
    pub fn immediate(&mut self, world: &mut World, change: Immediate) {
        change.apply(world);
        self.immediates.push(change);
    }
}
