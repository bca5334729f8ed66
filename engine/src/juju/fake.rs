//! In-memory hook tools over a declared Juju state, for charm tests that need neither Juju nor
//! processes.
//!
//! A [`FakeJuju`] declares what one unit sees: its name, leadership, configuration, action
//! parameters, relations with their bags, secrets, its state, goal-state, its address and storage.
//! [`FakeTools`] answers the hook tools from it, applies every write to it and records each
//! call, so a test can assert on the state after a hook (bags, statuses, logs, secrets). Where
//! Juju refuses (an unknown relation, an app-bag or app-status write by a non-leader, an unknown
//! secret or storage) the answer is Juju's error text classified by [`ToolError::from_exit`],
//! exactly as the real tools' errors are.

use std::cell::{Ref, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::context::{RelationId, UnitName};
use super::tools::*;

/// One relation as this unit sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeRelation {
    pub endpoint: String,
    /// The remote application (this application for a peer relation).
    pub remote_app: String,
    /// Remote units that have joined, from this unit's point of view.
    pub units: Vec<UnitName>,
    /// Bags by unit or application name (this unit's and application's included).
    pub bags: BTreeMap<String, Databag>,
}

impl FakeRelation {
    pub fn new(endpoint: &str, remote_app: &str) -> FakeRelation {
        FakeRelation {
            endpoint: endpoint.into(),
            remote_app: remote_app.into(),
            ..FakeRelation::default()
        }
    }

    /// A remote unit that joined, with its bag.
    pub fn with_unit(mut self, unit: &str, bag: &[(&str, &str)]) -> FakeRelation {
        if let Some(u) = UnitName::parse(unit) {
            self.units.push(u);
        }
        self.bags.insert(unit.into(), bag_of(bag));
        self
    }

    /// A bag (of an application, or of this unit).
    pub fn with_bag(mut self, owner: &str, bag: &[(&str, &str)]) -> FakeRelation {
        self.bags.insert(owner.into(), bag_of(bag));
        self
    }
}

/// Merges `data` into `bag` as the tools do: an empty value deletes the key.
fn merge(bag: &mut Databag, data: &Databag) {
    for (k, v) in data {
        if v.is_empty() {
            bag.remove(k);
        } else {
            bag.insert(k.clone(), v.clone());
        }
    }
}

/// `[("k", "v")]` as a bag.
pub fn bag_of(pairs: &[(&str, &str)]) -> Databag {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeSecret {
    pub label: Option<String>,
    /// Owned by this application (else a secret this unit consumes).
    pub owned: bool,
    /// Contents by revision, the latest last (revision n is `revisions[n - 1]`).
    pub revisions: Vec<Databag>,
    /// The revision this unit tracks (consumers: the first one read, until a refresh).
    pub tracked: u64,
    /// Grants: relation and unit (none: the whole remote application).
    pub grants: BTreeSet<(u32, Option<String>)>,
}

/// What one unit sees of its model, and what its hooks wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FakeJuju {
    pub unit: String,
    pub leader: bool,
    pub config: Map<String, Value>,
    pub action_params: Map<String, Value>,
    pub relations: BTreeMap<u32, FakeRelation>,
    pub state: Databag,
    /// By id (`secret:<xid>`).
    pub secrets: BTreeMap<String, FakeSecret>,
    pub goal: BTreeMap<String, String>,
    pub address: String,
    pub storage: BTreeMap<String, StorageInfo>,
    // What the hooks did.
    pub unit_status: Option<Status>,
    pub app_status: Option<Status>,
    /// Every unit status set, in order (a hook may show progress before its final one).
    pub unit_statuses: Vec<Status>,
    pub workload_version: Option<String>,
    pub logs: Vec<(LogLevel, String)>,
    pub action_results: Databag,
    pub action_failed: Option<String>,
    pub action_log: Vec<String>,
    pub ports: BTreeSet<String>,
    /// Every tool called, in order (`relation-get`, `status-set`, ...).
    pub calls: Vec<String>,
    /// The n-th call (1-based, in this hook) of this tool fails as a lost API connection does.
    pub fail_call: Option<(String, usize)>,
}

impl FakeJuju {
    /// A unit (`app/0`) with address 10.0.0.10.
    pub fn unit(unit: &str) -> FakeJuju {
        FakeJuju {
            unit: unit.into(),
            address: "10.0.0.10".into(),
            ..FakeJuju::default()
        }
    }

    pub fn app(&self) -> &str {
        self.unit.split('/').next().unwrap_or_default()
    }

    pub fn leader(mut self, leader: bool) -> FakeJuju {
        self.leader = leader;
        self
    }

    pub fn config(mut self, key: &str, value: Value) -> FakeJuju {
        self.config.insert(key.into(), value);
        self
    }

    pub fn relation(mut self, id: u32, relation: FakeRelation) -> FakeJuju {
        self.relations.insert(id, relation);
        self
    }

    /// The messages logged at `level` or above.
    pub fn logged(&self, level: LogLevel) -> Vec<&str> {
        self.logs
            .iter()
            .filter(|(l, _)| *l >= level)
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

/// Juju's refusal for `tool`, classified as the real tools' errors are.
fn refused(tool: &str, stderr: &str) -> ToolError {
    ToolError::from_exit(tool, 1, &format!("ERROR {stderr}"))
}

/// The hook tools over a [`FakeJuju`].
#[derive(Debug, Default)]
pub struct FakeTools {
    juju: RefCell<FakeJuju>,
}

impl FakeTools {
    pub fn new(juju: FakeJuju) -> FakeTools {
        FakeTools {
            juju: RefCell::new(juju),
        }
    }

    /// The state now (after the writes so far).
    pub fn juju(&self) -> Ref<'_, FakeJuju> {
        self.juju.borrow()
    }

    pub fn into_juju(self) -> FakeJuju {
        self.juju.into_inner()
    }

    /// Records a call; fails it if [`FakeJuju::fail_call`] says so.
    fn call(&self, tool: &str) -> ToolResult<()> {
        let mut j = self.juju.borrow_mut();
        j.calls.push(tool.into());
        let n = j.calls.iter().filter(|c| c.as_str() == tool).count();
        if j.fail_call.as_ref() == Some(&(tool.to_string(), n)) {
            return Err(ToolError::from_exit(
                tool,
                1,
                "ERROR connection is shut down (injected by the test)",
            ));
        }
        Ok(())
    }

    fn relation<T>(
        &self,
        tool: &str,
        rel: RelationId,
        f: impl FnOnce(&mut FakeJuju, u32) -> ToolResult<T>,
    ) -> ToolResult<T> {
        self.call(tool)?;
        let mut j = self.juju.borrow_mut();
        if !j.relations.contains_key(&rel.0) {
            return Err(refused(tool, &format!("relation not found: {}", rel.0)));
        }
        f(&mut j, rel.0)
    }

    fn find_secret(j: &FakeJuju, id: Option<&str>, label: Option<&str>) -> Option<String> {
        match (id, label) {
            (Some(id), _) => {
                let bare = id.rsplit('/').next().unwrap_or(id);
                j.secrets
                    .keys()
                    .find(|k| k.as_str() == id || k.rsplit(':').next() == Some(bare))
                    .cloned()
            }
            (None, Some(l)) => j
                .secrets
                .iter()
                .find(|(_, s)| s.label.as_deref() == Some(l))
                .map(|(k, _)| k.clone()),
            (None, None) => None,
        }
    }

    fn secret_mut<T>(
        &self,
        tool: &str,
        id: Option<&str>,
        label: Option<&str>,
        f: impl FnOnce(&mut FakeSecret) -> ToolResult<T>,
    ) -> ToolResult<T> {
        self.call(tool)?;
        let mut j = self.juju.borrow_mut();
        let Some(key) = Self::find_secret(&j, id, label) else {
            return Err(refused(tool, "secret not found"));
        };
        match j.secrets.get_mut(&key) {
            Some(s) => f(s),
            None => Err(refused(tool, "secret not found")),
        }
    }
}

impl HookTools for FakeTools {
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        self.call("relation-ids")?;
        let j = self.juju.borrow();
        Ok(j.relations
            .iter()
            .filter(|(_, r)| r.endpoint == endpoint)
            .map(|(id, _)| RelationId(*id))
            .collect())
    }

    fn relation_list(&self, rel: RelationId) -> ToolResult<Vec<UnitName>> {
        self.relation("relation-list", rel, |j, id| {
            Ok(j.relations[&id].units.clone())
        })
    }

    fn relation_remote_app(&self, rel: RelationId) -> ToolResult<Option<String>> {
        self.relation("relation-list", rel, |j, id| {
            Ok(Some(j.relations[&id].remote_app.clone()))
        })
    }

    fn relation_get(&self, rel: RelationId, target: &str, app: bool) -> ToolResult<Databag> {
        self.relation("relation-get", rel, |j, id| {
            let own_app = j.app().to_string();
            let r = &j.relations[&id];
            let peer = r.remote_app == own_app;
            if app && target == own_app && !peer && !j.leader {
                return Err(refused(
                    "relation-get",
                    "permission denied: only the leader reads its application's bag",
                ));
            }
            Ok(r.bags.get(target).cloned().unwrap_or_default())
        })
    }

    fn relation_set(&self, rel: RelationId, app: bool, data: &Databag) -> ToolResult<()> {
        self.relation("relation-set", rel, |j, id| {
            if app && !j.leader {
                return Err(refused(
                    "relation-set",
                    "cannot write relation settings: this unit is not the leader",
                ));
            }
            let owner = if app {
                j.app().to_string()
            } else {
                j.unit.clone()
            };
            let bag = j
                .relations
                .get_mut(&id)
                .map(|r| r.bags.entry(owner).or_default());
            if let Some(bag) = bag {
                merge(bag, data);
            }
            Ok(())
        })
    }

    fn is_leader(&self) -> ToolResult<bool> {
        self.call("is-leader")?;
        Ok(self.juju.borrow().leader)
    }

    fn status_set(&self, app: bool, status: &Status) -> ToolResult<()> {
        self.call("status-set")?;
        let mut j = self.juju.borrow_mut();
        if app {
            if !j.leader {
                return Err(refused(
                    "status-set",
                    "setting application status: this unit is not the leader",
                ));
            }
            j.app_status = Some(status.clone());
        } else {
            j.unit_status = Some(status.clone());
            j.unit_statuses.push(status.clone());
        }
        Ok(())
    }

    fn status_get(&self, app: bool) -> ToolResult<Status> {
        self.call("status-get")?;
        let j = self.juju.borrow();
        let s = if app { &j.app_status } else { &j.unit_status };
        Ok(s.clone()
            .unwrap_or_else(|| Status::new(StatusKind::Unknown, "")))
    }

    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.call("application-version-set")?;
        self.juju.borrow_mut().workload_version = Some(version.into());
        Ok(())
    }

    fn config_get(&self) -> ToolResult<Map<String, Value>> {
        self.call("config-get")?;
        Ok(self.juju.borrow().config.clone())
    }

    fn action_get(&self) -> ToolResult<Map<String, Value>> {
        self.call("action-get")?;
        Ok(self.juju.borrow().action_params.clone())
    }

    fn action_set(&self, results: &Databag) -> ToolResult<()> {
        self.call("action-set")?;
        self.juju
            .borrow_mut()
            .action_results
            .extend(results.clone());
        Ok(())
    }

    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.call("action-fail")?;
        self.juju.borrow_mut().action_failed = Some(message.into());
        Ok(())
    }

    fn action_log(&self, message: &str) -> ToolResult<()> {
        self.call("action-log")?;
        self.juju.borrow_mut().action_log.push(message.into());
        Ok(())
    }

    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        self.call("juju-log")?;
        self.juju.borrow_mut().logs.push((level, message.into()));
        Ok(())
    }

    fn state_get(&self) -> ToolResult<Databag> {
        self.call("state-get")?;
        Ok(self.juju.borrow().state.clone())
    }

    fn state_set(&self, data: &Databag) -> ToolResult<()> {
        self.call("state-set")?;
        merge(&mut self.juju.borrow_mut().state, data);
        Ok(())
    }

    fn state_delete(&self, key: &str) -> ToolResult<()> {
        self.call("state-delete")?;
        self.juju.borrow_mut().state.remove(key);
        Ok(())
    }

    fn secret_add(&self, content: &Databag, opts: &SecretAddOptions) -> ToolResult<String> {
        self.call("secret-add")?;
        let mut j = self.juju.borrow_mut();
        if opts.owner != Some(SecretOwner::Unit) && !j.leader {
            return Err(refused(
                "secret-add",
                "permission denied: only the leader adds application secrets",
            ));
        }
        let id = format!("secret:fake{:04}", j.secrets.len() + 1);
        j.secrets.insert(
            id.clone(),
            FakeSecret {
                label: opts.label.clone(),
                owned: true,
                revisions: vec![content.clone()],
                tracked: 1,
                grants: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    fn secret_get(
        &self,
        id: Option<&str>,
        label: Option<&str>,
        read: SecretRead,
    ) -> ToolResult<Databag> {
        self.secret_mut("secret-get", id, label, |s| {
            let latest = s.revisions.len() as u64;
            let rev = match read {
                SecretRead::Tracked if !s.owned && s.tracked > 0 => s.tracked,
                SecretRead::Tracked | SecretRead::Peek => latest,
                SecretRead::Refresh => {
                    s.tracked = latest;
                    latest
                }
            };
            if s.tracked == 0 {
                s.tracked = rev;
            }
            Ok(s.revisions
                .get(rev.saturating_sub(1) as usize)
                .cloned()
                .unwrap_or_default())
        })
    }

    fn secret_set(
        &self,
        id: &str,
        content: Option<&Databag>,
        label: Option<&str>,
    ) -> ToolResult<()> {
        self.secret_mut("secret-set", Some(id), None, |s| {
            if let Some(c) = content {
                s.revisions.push(c.clone());
            }
            if let Some(l) = label {
                s.label = Some(l.into());
            }
            Ok(())
        })
    }

    fn secret_grant(&self, id: &str, rel: RelationId, unit: Option<&str>) -> ToolResult<()> {
        self.secret_mut("secret-grant", Some(id), None, |s| {
            s.grants.insert((rel.0, unit.map(str::to_string)));
            Ok(())
        })
    }

    fn secret_revoke(&self, id: &str, rel: RelationId, unit: Option<&str>) -> ToolResult<()> {
        self.secret_mut("secret-revoke", Some(id), None, |s| {
            s.grants.remove(&(rel.0, unit.map(str::to_string)));
            Ok(())
        })
    }

    fn secret_remove(&self, id: &str, revision: Option<u64>) -> ToolResult<()> {
        self.call("secret-remove")?;
        let mut j = self.juju.borrow_mut();
        let Some(key) = Self::find_secret(&j, Some(id), None) else {
            return Err(refused("secret-remove", "secret not found"));
        };
        match revision {
            None => {
                j.secrets.remove(&key);
            }
            Some(r) => {
                if let Some(s) = j.secrets.get_mut(&key) {
                    if let Some(bag) = s.revisions.get_mut(r.saturating_sub(1) as usize) {
                        bag.clear();
                    }
                }
            }
        }
        Ok(())
    }

    fn secret_ids(&self) -> ToolResult<Vec<String>> {
        self.call("secret-ids")?;
        let j = self.juju.borrow();
        Ok(j.secrets
            .iter()
            .filter(|(_, s)| s.owned)
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn secret_info_get(&self, id: Option<&str>, label: Option<&str>) -> ToolResult<SecretInfo> {
        self.call("secret-info-get")?;
        let j = self.juju.borrow();
        let found = Self::find_secret(&j, id, label)
            .and_then(|k| j.secrets.get(&k).map(|s| (k, s)))
            .filter(|(_, s)| s.owned);
        match found {
            Some((k, s)) => Ok(SecretInfo {
                id: k.rsplit(':').next().unwrap_or(&k).to_string(),
                revision: Some(s.revisions.len() as u64),
                label: s.label.clone(),
                owner: Some("application".into()),
            }),
            None => Err(refused("secret-info-get", "secret not found")),
        }
    }

    fn network_get(&self, _binding: &str, _rel: Option<RelationId>) -> ToolResult<NetworkInfo> {
        self.call("network-get")?;
        let a = self.juju.borrow().address.clone();
        Ok(NetworkInfo {
            bind_addresses: vec![a.clone()],
            ingress_addresses: vec![a.clone()],
            egress_subnets: vec![format!("{a}/32")],
        })
    }

    fn open_port(&self, spec: &str) -> ToolResult<()> {
        self.call("open-port")?;
        self.juju.borrow_mut().ports.insert(spec.into());
        Ok(())
    }

    fn close_port(&self, spec: &str) -> ToolResult<()> {
        self.call("close-port")?;
        self.juju.borrow_mut().ports.remove(spec);
        Ok(())
    }

    fn storage_get(&self, id: Option<&str>) -> ToolResult<StorageInfo> {
        self.call("storage-get")?;
        let j = self.juju.borrow();
        let found = match id {
            Some(id) => j.storage.get(id),
            None => j.storage.values().next(),
        };
        found
            .cloned()
            .ok_or_else(|| refused("storage-get", "storage not found"))
    }

    fn goal_state(&self) -> ToolResult<BTreeMap<UnitName, String>> {
        self.call("goal-state")?;
        Ok(self
            .juju
            .borrow()
            .goal
            .iter()
            .filter_map(|(u, s)| Some((UnitName::parse(u)?, s.clone())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> FakeTools {
        FakeTools::new(
            FakeJuju::unit("app/1")
                .config("greeting", Value::String("hi".into()))
                .relation(
                    0,
                    FakeRelation::new("peers", "app")
                        .with_unit("app/0", &[("ip", "10.0.0.9")])
                        .with_bag("app", &[("ledger", "x")]),
                )
                .relation(
                    3,
                    FakeRelation::new("db", "client").with_bag("client", &[("database", "/a")]),
                ),
        )
    }

    #[test]
    fn reads_answer_from_the_declared_state() {
        let t = model();
        assert_eq!(t.relation_ids("db").unwrap(), [RelationId(3)]);
        assert_eq!(
            t.relation_list(RelationId(0)).unwrap(),
            [UnitName::parse("app/0").unwrap()]
        );
        assert_eq!(
            t.relation_get(RelationId(0), "app/0", false).unwrap()["ip"],
            "10.0.0.9"
        );
        assert_eq!(
            t.relation_get(RelationId(0), "app", true).unwrap()["ledger"],
            "x"
        );
        assert_eq!(
            t.relation_get(RelationId(3), "client", true).unwrap()["database"],
            "/a"
        );
        assert_eq!(t.config_get().unwrap()["greeting"], "hi");
        assert!(!t.is_leader().unwrap());
        assert_eq!(
            t.network_get("peers", None).unwrap().preferred_address(),
            Some("10.0.0.10")
        );
    }

    #[test]
    fn juju_refusals_are_classified_as_the_real_tools_errors() {
        let t = model();
        assert!(matches!(
            t.relation_get(RelationId(9), "app/0", false),
            Err(ToolError::NotFound {
                what: Missing::Relation,
                ..
            })
        ));
        assert!(matches!(
            t.relation_set(RelationId(0), true, &bag_of(&[("k", "v")])),
            Err(ToolError::NotLeader { .. })
        ));
        assert!(matches!(
            t.relation_get(RelationId(3), "app", true),
            Err(ToolError::PermissionDenied { .. })
        ));
        assert!(matches!(
            t.status_set(true, &Status::active("")),
            Err(ToolError::NotLeader { .. })
        ));
        assert!(matches!(
            t.secret_get(Some("secret:nope"), None, SecretRead::Peek),
            Err(ToolError::NotFound {
                what: Missing::Secret,
                ..
            })
        ));
    }

    #[test]
    fn writes_land_in_the_state_and_calls_are_recorded() {
        let t = FakeTools::new(FakeJuju::unit("app/0").leader(true).relation(
            0,
            FakeRelation::new("peers", "app").with_bag("app/0", &[("old", "1")]),
        ));
        t.relation_set(
            RelationId(0),
            false,
            &bag_of(&[("state", "started"), ("old", "")]),
        )
        .unwrap();
        t.relation_set(RelationId(0), true, &bag_of(&[("0", "added")]))
            .unwrap();
        t.status_set(false, &Status::waiting("joining")).unwrap();
        t.juju_log(LogLevel::Warning, "careful").unwrap();
        let id = t
            .secret_add(&bag_of(&[("pw", "a")]), &SecretAddOptions::default())
            .unwrap();
        t.secret_set(&id, Some(&bag_of(&[("pw", "b")])), None)
            .unwrap();
        assert_eq!(
            t.secret_get(Some(&id), None, SecretRead::Peek).unwrap()["pw"],
            "b"
        );
        let j = t.into_juju();
        assert_eq!(
            j.relations[&0].bags["app/0"],
            bag_of(&[("state", "started")])
        );
        assert_eq!(j.relations[&0].bags["app"], bag_of(&[("0", "added")]));
        assert_eq!(j.unit_status, Some(Status::waiting("joining")));
        assert_eq!(j.logged(LogLevel::Warning), ["careful"]);
        assert_eq!(
            j.calls,
            [
                "relation-set",
                "relation-set",
                "status-set",
                "juju-log",
                "secret-add",
                "secret-set",
                "secret-get"
            ]
        );
    }
}
