//! Hook tools that remember reads between hooks and forget exactly what an event can have
//! changed, so that a charm's reconcile reads everything it needs every time, whatever the
//! event, and a converged hook still runs few tool processes.
//!
//! [`CachedTools`] wraps any [`HookTools`]. What it keeps, in its own versioned file in the
//! charm directory (saved by [`CachedTools::save`] only when the hook succeeds, like Juju
//! commits a hook's writes only then):
//! - `config-get`;
//! - `relation-ids` per endpoint, each relation's remote application;
//! - the bags of the relations on the endpoints the charm names ([`CachedTools::load`]'s
//!   `cached_endpoints`; the others are read live every time), with this unit's own writes
//!   merged in;
//! - the unit and application status and the workload version last set: setting the same
//!   again is skipped (a converged hook runs no status tool; "since" stays meaningful);
//! - the charm's memos ([`CachedTools::memo`]): facts the charm derived from its own code and
//!   the machine (such as what its files were rendered from).
//!
//! [`forgets`] is the one table of what each event makes stale. It relies on Juju's promise that
//! a change of any of these produces a hook on this unit: config-changed for the configuration,
//! `-created`/`-broken` for a relation's existence, `-changed`/`-joined`/`-departed` of that
//! relation for its bags, upgrade-charm for the charm's code. Periodic and leadership hooks
//! (update-status, leader-elected) and actions read every relation again, a safety net for
//! anything the promise misses (a new leader may have missed hooks); a new leader also lists
//! the relations again.
//!
//! Statuses are immediate in Juju while the file is saved only on success: a marker file
//! present at load says the last hook did not finish, and the statuses it may have shown are
//! forgotten (set again).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::context::{Event, RelationId, RelationPhase, UnitName};
use super::tools::*;

/// The file, in the charm directory.
pub const FILE: &str = ".charm-read-cache.json";
/// Present while a hook runs (see the module documentation).
pub const MARKER: &str = ".charm-hook-running";
/// The file's format; another version is dropped (the cache starts empty: only reads are lost).
pub const FORMAT: u32 = 1;

/// What an event makes stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forget {
    Config,
    /// `relation-ids` of every endpoint.
    AllRelationIds,
    /// Every cached bag.
    AllBags,
    /// `relation-ids` of this endpoint.
    RelationIds(String),
    /// The bags of this relation.
    Relation(RelationId),
    /// The charm's memos.
    Memos,
}

/// The one table: which cached reads `event` makes stale.
pub fn forgets(event: &Event) -> Vec<Forget> {
    use Forget::*;
    match event {
        Event::Install | Event::UpgradeCharm => vec![Config, AllRelationIds, AllBags, Memos],
        Event::Start | Event::ConfigChanged => vec![Config],
        Event::Action { .. } => vec![Config, AllBags],
        Event::LeaderElected => vec![AllRelationIds, AllBags],
        // Relations come and go with hooks of their own; bags are read again as a safety net.
        Event::UpdateStatus => vec![AllBags],
        Event::Relation {
            endpoint,
            phase,
            id,
            ..
        } => match phase {
            RelationPhase::Created | RelationPhase::Broken => {
                vec![RelationIds(endpoint.clone()), Relation(*id)]
            }
            _ => vec![Relation(*id)],
        },
        Event::Stop
        | Event::Remove
        | Event::LeaderSettingsChanged
        | Event::Secret { .. }
        | Event::Storage { .. }
        | Event::Unknown { .. }
        | Event::Reconcile => vec![],
    }
}

/// The cache file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadCache {
    pub format: u32,
    #[serde(default)]
    pub config: Option<Map<String, Value>>,
    #[serde(default)]
    pub relation_ids: BTreeMap<String, Vec<u32>>,
    #[serde(default)]
    pub remote_apps: BTreeMap<u32, String>,
    /// Bags by relation, then by owner (`unit:<name>` or `app:<name>`).
    #[serde(default)]
    pub bags: BTreeMap<u32, BTreeMap<String, Databag>>,
    #[serde(default)]
    pub unit_status: Option<Status>,
    #[serde(default)]
    pub app_status: Option<Status>,
    #[serde(default)]
    pub workload_version: Option<String>,
    #[serde(default)]
    pub memos: BTreeMap<String, String>,
}

impl ReadCache {
    fn forget(&mut self, f: &Forget) {
        match f {
            Forget::Config => self.config = None,
            Forget::AllRelationIds => self.relation_ids.clear(),
            Forget::AllBags => self.bags.clear(),
            Forget::RelationIds(ep) => {
                self.relation_ids.remove(ep);
            }
            Forget::Relation(r) => {
                self.bags.remove(&r.0);
            }
            Forget::Memos => self.memos.clear(),
        }
    }
}

fn owner(target: &str, app: bool) -> String {
    format!("{}:{target}", if app { "app" } else { "unit" })
}

/// [`HookTools`] with a read cache (see the module documentation).
pub struct CachedTools<'t> {
    inner: &'t dyn HookTools,
    dir: PathBuf,
    cache: RefCell<ReadCache>,
    loaded: ReadCache,
    /// Endpoints whose bags are cached.
    cached_endpoints: BTreeSet<String>,
    /// A relation being broken in this hook: gone from `relation-ids` (as ops shows it).
    broken: Option<(String, RelationId)>,
    me: Option<UnitName>,
}

impl<'t> CachedTools<'t> {
    /// Loads the cache of the charm directory `dir` and forgets what `event` made stale. Bags
    /// are cached for relations on `cached_endpoints` only. `me` is this unit (own writes are
    /// merged into its cached bag).
    pub fn load(
        inner: &'t dyn HookTools,
        dir: &Path,
        event: &Event,
        me: Option<&UnitName>,
        cached_endpoints: &[&str],
    ) -> CachedTools<'t> {
        let path = dir.join(FILE);
        let mut cache = match std::fs::read(&path) {
            Ok(raw) => match serde_json::from_slice::<ReadCache>(&raw) {
                Ok(c) if c.format == FORMAT => c,
                Ok(c) => {
                    tracing::info!(
                        "{} has format {} (this charm reads {FORMAT}); starting with an empty read cache",
                        path.display(),
                        c.format
                    );
                    ReadCache::default()
                }
                Err(e) => {
                    let (_, moved) = crate::files::move_aside(&path);
                    tracing::warn!(
                        "{} is not valid ({e}); {moved}; starting with an empty read cache",
                        path.display()
                    );
                    ReadCache::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ReadCache::default(),
            Err(e) => {
                // A directory in its place, unreadable: out of the way, so that saving works.
                let (_, moved) = crate::files::move_aside(&path);
                tracing::warn!(
                    "{} is unreadable ({e}); {moved}; starting with an empty read cache",
                    path.display()
                );
                ReadCache::default()
            }
        };
        cache.format = FORMAT;
        let marker = dir.join(MARKER);
        if marker.exists() {
            tracing::info!("the previous hook did not finish; statuses are set afresh");
            cache.unit_status = None;
            cache.app_status = None;
            cache.workload_version = None;
        } else if let Err(e) = std::fs::write(&marker, b"") {
            tracing::debug!("cannot write {}: {e}", marker.display());
        }
        for f in forgets(event) {
            cache.forget(&f);
        }
        let broken = match event {
            Event::Relation {
                endpoint,
                phase: RelationPhase::Broken,
                id,
                ..
            } => Some((endpoint.clone(), *id)),
            _ => None,
        };
        if let Event::Relation {
            id,
            remote_app: Some(app),
            ..
        } = event
        {
            cache.remote_apps.insert(id.0, app.clone());
        }
        CachedTools {
            inner,
            dir: dir.to_path_buf(),
            loaded: cache.clone(),
            cache: RefCell::new(cache),
            cached_endpoints: cached_endpoints.iter().map(|e| e.to_string()).collect(),
            broken,
            me: me.cloned(),
        }
    }

    /// Saves the cache (when it changed) and clears the marker: call once the hook succeeded.
    pub fn save(&self) -> std::io::Result<()> {
        let cache = self.cache.borrow();
        if *cache != self.loaded || !self.dir.join(FILE).exists() {
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            tmp.write_all(&serde_json::to_vec_pretty(&*cache).map_err(std::io::Error::other)?)?;
            tmp.as_file().sync_all()?;
            tmp.persist(self.dir.join(FILE)).map_err(|e| e.error)?;
        }
        let _ = std::fs::remove_file(self.dir.join(MARKER));
        Ok(())
    }

    /// A memo the charm kept (forgotten on install and upgrade-charm).
    pub fn memo(&self, key: &str) -> Option<String> {
        self.cache.borrow().memos.get(key).cloned()
    }

    pub fn set_memo(&self, key: &str, value: Option<String>) {
        let mut c = self.cache.borrow_mut();
        match value {
            Some(v) => c.memos.insert(key.to_string(), v),
            None => c.memos.remove(key),
        };
    }

    /// Forgets the application status last set (a unit that no longer leads: another leader
    /// may have set its own since).
    pub fn forget_app_status(&self) {
        self.cache.borrow_mut().app_status = None;
    }

    /// The cache as it stands (for tests and diagnostics).
    pub fn snapshot(&self) -> ReadCache {
        self.cache.borrow().clone()
    }

    /// Whether bags of relation `rel` are cached: its endpoint is one of the cached ones.
    fn caches(&self, rel: RelationId) -> bool {
        let c = self.cache.borrow();
        c.relation_ids
            .iter()
            .any(|(ep, ids)| self.cached_endpoints.contains(ep) && ids.contains(&rel.0))
    }

    fn cached_bag(&self, rel: RelationId, target: &str, app: bool) -> Option<Databag> {
        if !self.caches(rel) {
            return None;
        }
        self.cache
            .borrow()
            .bags
            .get(&rel.0)?
            .get(&owner(target, app))
            .cloned()
    }

    fn keep_bag(&self, rel: RelationId, target: &str, app: bool, bag: &Databag) {
        if self.caches(rel) {
            self.cache
                .borrow_mut()
                .bags
                .entry(rel.0)
                .or_default()
                .insert(owner(target, app), bag.clone());
        }
    }
}

impl HookTools for CachedTools<'_> {
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        let cached = self.cache.borrow().relation_ids.get(endpoint).cloned();
        let ids = match cached {
            Some(ids) => ids,
            None => {
                // Juju still lists a relation in its own -broken hook; it is gone for every
                // later hook, so it is never remembered.
                let ids: Vec<u32> = self
                    .inner
                    .relation_ids(endpoint)?
                    .into_iter()
                    .filter(|r| {
                        !self
                            .broken
                            .as_ref()
                            .is_some_and(|(ep, b)| ep == endpoint && b == r)
                    })
                    .map(|r| r.0)
                    .collect();
                self.cache
                    .borrow_mut()
                    .relation_ids
                    .insert(endpoint.to_string(), ids.clone());
                ids
            }
        };
        Ok(ids.into_iter().map(RelationId).collect())
    }

    fn relation_list(&self, rel: RelationId) -> ToolResult<Vec<UnitName>> {
        self.inner.relation_list(rel)
    }

    fn relation_remote_app(&self, rel: RelationId) -> ToolResult<Option<String>> {
        if let Some(a) = self.cache.borrow().remote_apps.get(&rel.0) {
            return Ok(Some(a.clone()));
        }
        let app = self.inner.relation_remote_app(rel)?;
        if let Some(a) = &app {
            self.cache.borrow_mut().remote_apps.insert(rel.0, a.clone());
        }
        Ok(app)
    }

    fn relation_get(&self, rel: RelationId, target: &str, app: bool) -> ToolResult<Databag> {
        if let Some(bag) = self.cached_bag(rel, target, app) {
            return Ok(bag);
        }
        let bag = self.inner.relation_get(rel, target, app)?;
        self.keep_bag(rel, target, app, &bag);
        Ok(bag)
    }

    fn relation_get_many(&self, reads: &[BagRead<'_>]) -> Vec<ToolResult<Databag>> {
        let mut out: Vec<Option<ToolResult<Databag>>> = reads
            .iter()
            .map(|r| self.cached_bag(r.relation, r.target, r.app).map(Ok))
            .collect();
        let missing: Vec<usize> = (0..reads.len()).filter(|i| out[*i].is_none()).collect();
        if !missing.is_empty() {
            let asked: Vec<BagRead<'_>> = missing.iter().map(|i| reads[*i]).collect();
            for (i, got) in missing.iter().zip(self.inner.relation_get_many(&asked)) {
                if let Ok(bag) = &got {
                    let r = &reads[*i];
                    self.keep_bag(r.relation, r.target, r.app, bag);
                }
                out[*i] = Some(got);
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Ok(Databag::new())))
            .collect()
    }

    fn relation_set(&self, rel: RelationId, app: bool, data: &Databag) -> ToolResult<()> {
        self.inner.relation_set(rel, app, data)?;
        let target = match (app, &self.me) {
            (true, Some(me)) => me.app().to_string(),
            (false, Some(me)) => me.as_str().to_string(),
            (_, None) => return Ok(()),
        };
        let mut c = self.cache.borrow_mut();
        if let Some(bag) = c
            .bags
            .get_mut(&rel.0)
            .and_then(|b| b.get_mut(&owner(&target, app)))
        {
            for (k, v) in data {
                if v.is_empty() {
                    bag.remove(k);
                } else {
                    bag.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(())
    }

    fn is_leader(&self) -> ToolResult<bool> {
        self.inner.is_leader()
    }

    fn status_set(&self, app: bool, status: &Status) -> ToolResult<()> {
        {
            let c = self.cache.borrow();
            let last = if app { &c.app_status } else { &c.unit_status };
            if last.as_ref() == Some(status) {
                return Ok(());
            }
        }
        self.inner.status_set(app, status)?;
        let mut c = self.cache.borrow_mut();
        if app {
            c.app_status = Some(status.clone());
        } else {
            c.unit_status = Some(status.clone());
        }
        Ok(())
    }

    fn status_get(&self, app: bool) -> ToolResult<Status> {
        self.inner.status_get(app)
    }

    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        if self.cache.borrow().workload_version.as_deref() == Some(version) {
            return Ok(());
        }
        self.inner.application_version_set(version)?;
        self.cache.borrow_mut().workload_version = Some(version.to_string());
        Ok(())
    }

    fn config_get(&self) -> ToolResult<Map<String, Value>> {
        if let Some(c) = &self.cache.borrow().config {
            return Ok(c.clone());
        }
        let c = self.inner.config_get()?;
        self.cache.borrow_mut().config = Some(c.clone());
        Ok(c)
    }

    fn action_get(&self) -> ToolResult<Map<String, Value>> {
        self.inner.action_get()
    }
    fn action_set(&self, results: &Databag) -> ToolResult<()> {
        self.inner.action_set(results)
    }
    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.inner.action_fail(message)
    }
    fn action_log(&self, message: &str) -> ToolResult<()> {
        self.inner.action_log(message)
    }
    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        self.inner.juju_log(level, message)
    }
    fn state_get(&self) -> ToolResult<Databag> {
        self.inner.state_get()
    }
    fn state_set(&self, data: &Databag) -> ToolResult<()> {
        self.inner.state_set(data)
    }
    fn state_delete(&self, key: &str) -> ToolResult<()> {
        self.inner.state_delete(key)
    }
    fn secret_add(&self, content: &Databag, opts: &SecretAddOptions) -> ToolResult<String> {
        self.inner.secret_add(content, opts)
    }
    fn secret_get(
        &self,
        id: Option<&str>,
        label: Option<&str>,
        read: SecretRead,
    ) -> ToolResult<Databag> {
        self.inner.secret_get(id, label, read)
    }
    fn secret_set(
        &self,
        id: &str,
        content: Option<&Databag>,
        label: Option<&str>,
    ) -> ToolResult<()> {
        self.inner.secret_set(id, content, label)
    }
    fn secret_grant(&self, id: &str, rel: RelationId, unit: Option<&str>) -> ToolResult<()> {
        self.inner.secret_grant(id, rel, unit)
    }
    fn secret_revoke(&self, id: &str, rel: RelationId, unit: Option<&str>) -> ToolResult<()> {
        self.inner.secret_revoke(id, rel, unit)
    }
    fn secret_remove(&self, id: &str, revision: Option<u64>) -> ToolResult<()> {
        self.inner.secret_remove(id, revision)
    }
    fn secret_ids(&self) -> ToolResult<Vec<String>> {
        self.inner.secret_ids()
    }
    fn secret_info_get(&self, id: Option<&str>, label: Option<&str>) -> ToolResult<SecretInfo> {
        self.inner.secret_info_get(id, label)
    }
    fn network_get(&self, binding: &str, rel: Option<RelationId>) -> ToolResult<NetworkInfo> {
        self.inner.network_get(binding, rel)
    }
    fn open_port(&self, spec: &str) -> ToolResult<()> {
        self.inner.open_port(spec)
    }
    fn close_port(&self, spec: &str) -> ToolResult<()> {
        self.inner.close_port(spec)
    }
    fn storage_get(&self, id: Option<&str>) -> ToolResult<StorageInfo> {
        self.inner.storage_get(id)
    }
    fn goal_state(&self) -> ToolResult<BTreeMap<UnitName, String>> {
        self.inner.goal_state()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeJuju, FakeRelation, FakeTools};
    use super::*;

    fn juju() -> FakeJuju {
        FakeJuju::unit("app/0")
            .leader(true)
            .config("x", Value::from(1))
            .relation(
                3,
                FakeRelation::new("db", "client").with_bag("client", &[("want", "a")]),
            )
            .relation(
                0,
                FakeRelation::new("peers", "app").with_unit("app/1", &[("k", "v")]),
            )
    }

    fn changed(id: u32) -> Event {
        Event::Relation {
            endpoint: "db".into(),
            phase: RelationPhase::Changed,
            id: RelationId(id),
            remote_app: Some("client".into()),
            remote_unit: None,
            departing_unit: None,
        }
    }

    /// Runs `f` in one hook of `event` over `fake`, saving the cache; returns the tools called.
    fn hook(
        dir: &Path,
        fake: &FakeTools,
        event: &Event,
        f: impl FnOnce(&CachedTools<'_>),
    ) -> Vec<String> {
        let before = fake.juju().calls.len();
        let me = UnitName::parse("app/0");
        let t = CachedTools::load(fake, dir, event, me.as_ref(), &["db"]);
        f(&t);
        t.save().expect("save");
        fake.juju().calls[before..].to_vec()
    }

    fn read_all(t: &CachedTools<'_>) {
        t.config_get().expect("config");
        for r in t.relation_ids("db").expect("ids") {
            t.relation_get(r, "client", true).expect("bag");
        }
        for r in t.relation_ids("peers").expect("ids") {
            t.relation_get(r, "app/1", false).expect("bag");
        }
    }

    #[test]
    fn the_table_decides_what_is_read_again() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = FakeTools::new(juju());
        let first = hook(dir.path(), &fake, &Event::Install, read_all);
        assert_eq!(
            first,
            [
                "config-get",
                "relation-ids",
                "relation-get",
                "relation-ids",
                "relation-get"
            ]
        );
        // Nothing it cached changed: only the live endpoint's bag is read.
        let quiet = hook(dir.path(), &fake, &Event::LeaderSettingsChanged, read_all);
        assert_eq!(quiet, ["relation-get"]);
        let cfg = hook(dir.path(), &fake, &Event::ConfigChanged, read_all);
        assert_eq!(cfg, ["config-get", "relation-get"]);
        let rel = hook(dir.path(), &fake, &changed(3), read_all);
        assert_eq!(rel, ["relation-get", "relation-get"]);
        let periodic = hook(dir.path(), &fake, &Event::UpdateStatus, read_all);
        assert_eq!(periodic, ["relation-get", "relation-get"]);
        let leader = hook(dir.path(), &fake, &Event::LeaderElected, read_all);
        assert_eq!(
            leader,
            [
                "relation-ids",
                "relation-get",
                "relation-ids",
                "relation-get"
            ]
        );
    }

    #[test]
    fn own_writes_are_kept_and_a_failed_hook_keeps_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = FakeTools::new(juju());
        hook(dir.path(), &fake, &Event::Install, read_all);
        hook(dir.path(), &fake, &changed(3), |t| {
            t.relation_get(RelationId(3), "app", true)
                .expect("own app bag");
            t.relation_set(
                RelationId(3),
                true,
                &[("answer".into(), "42".into())].into(),
            )
            .expect("set");
        });
        let calls = hook(dir.path(), &fake, &Event::LeaderSettingsChanged, |t| {
            let bag = t.relation_get(RelationId(3), "app", true).expect("bag");
            assert_eq!(bag.get("answer").map(String::as_str), Some("42"));
        });
        assert!(calls.is_empty(), "{calls:?}");
        // A hook that dies (no save): its cached reads and writes are gone with it.
        {
            let t = CachedTools::load(&fake, dir.path(), &Event::ConfigChanged, None, &["db"]);
            t.config_get().expect("config");
        }
        let calls = hook(dir.path(), &fake, &Event::LeaderSettingsChanged, |t| {
            t.config_get().expect("config");
        });
        assert!(
            calls.is_empty(),
            "the config read before the death was not saved"
        );
    }

    #[test]
    fn statuses_are_set_once_and_again_after_a_hook_that_died() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = FakeTools::new(juju());
        let set = |t: &CachedTools<'_>| {
            t.status_set(false, &Status::active("")).expect("status");
        };
        assert_eq!(hook(dir.path(), &fake, &Event::Start, set), ["status-set"]);
        assert!(hook(dir.path(), &fake, &Event::UpdateStatus, set).is_empty());
        {
            let t = CachedTools::load(&fake, dir.path(), &Event::UpdateStatus, None, &[]);
            t.status_set(false, &Status::maintenance("restarting"))
                .expect("status");
            // Dies here: no save.
        }
        assert_eq!(
            hook(dir.path(), &fake, &Event::UpdateStatus, set),
            ["status-set"],
            "the dead hook's status is replaced"
        );
    }

    #[test]
    fn a_broken_relation_is_not_listed_and_the_remote_app_comes_from_the_event() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = FakeTools::new(juju());
        let broken = Event::Relation {
            endpoint: "db".into(),
            phase: RelationPhase::Broken,
            id: RelationId(3),
            remote_app: Some("client".into()),
            remote_unit: None,
            departing_unit: None,
        };
        let calls = hook(dir.path(), &fake, &broken, |t| {
            assert!(t.relation_ids("db").expect("ids").is_empty());
            assert_eq!(
                t.relation_remote_app(RelationId(3))
                    .expect("app")
                    .as_deref(),
                Some("client")
            );
        });
        assert_eq!(calls, ["relation-ids"]);
        // Gone for the hooks after it too (the fake still lists it: only the cache can say).
        let later = Event::Relation {
            endpoint: "peers".into(),
            phase: RelationPhase::Changed,
            id: RelationId(0),
            remote_app: Some("app".into()),
            remote_unit: None,
            departing_unit: None,
        };
        hook(dir.path(), &fake, &later, |t| {
            assert!(t.relation_ids("db").expect("ids").is_empty());
        });
    }

    #[test]
    fn memos_last_until_the_charm_changes() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = FakeTools::new(juju());
        hook(dir.path(), &fake, &Event::Start, |t| {
            t.set_memo("rendered", Some("abc".into()))
        });
        hook(dir.path(), &fake, &Event::UpdateStatus, |t| {
            assert_eq!(t.memo("rendered").as_deref(), Some("abc"))
        });
        hook(dir.path(), &fake, &Event::UpgradeCharm, |t| {
            assert_eq!(t.memo("rendered"), None)
        });
    }

    #[test]
    fn another_format_or_garbage_starts_empty() {
        let dir = tempfile::tempdir().expect("dir");
        let fake = FakeTools::new(juju());
        std::fs::write(
            dir.path().join(FILE),
            br#"{"format": 99, "config": {"x": 2}}"#,
        )
        .expect("write");
        let calls = hook(dir.path(), &fake, &Event::UpdateStatus, |t| {
            assert_eq!(t.config_get().expect("config")["x"], 1);
        });
        assert_eq!(calls, ["config-get"]);
        std::fs::write(dir.path().join(FILE), b"garbage").expect("write");
        let calls = hook(dir.path(), &fake, &Event::UpdateStatus, |t| {
            t.config_get().expect("config");
        });
        assert_eq!(calls, ["config-get"]);
        // A directory in its place is moved aside and the cache saved again.
        std::fs::remove_file(dir.path().join(FILE)).expect("rm");
        std::fs::create_dir(dir.path().join(FILE)).expect("mkdir");
        hook(dir.path(), &fake, &Event::UpdateStatus, |t| {
            t.config_get().expect("config");
        });
        assert!(dir.path().join(FILE).is_file());
    }
}
