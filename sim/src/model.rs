//! The world: model, applications, units, relations (bags with versions), secrets, actions, and
//! each unit's driver state (what the unit agent has seen so far). Persisted as one JSON file,
//! `<model>/model.json`, written atomically after every committed hook and every CLI mutation.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::charm::{Meta, Role};
use crate::error::{Result, SimError};
use crate::fail;
use crate::util;

pub const FORMAT: u32 = 1;
pub const JUJU_VERSION: &str = "3.6.9";
/// Host part of the first unit address (`127.A.B.10`).
pub const FIRST_HOST: u32 = 10;

pub type Bag = BTreeMap<String, String>;

/// Where a model keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn new(root: PathBuf) -> Paths {
        Paths { root }
    }
    pub fn model_json(&self) -> PathBuf {
        self.root.join("model.json")
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }
    pub fn log(&self) -> PathBuf {
        self.root.join("log.jsonl")
    }
    pub fn tools(&self) -> PathBuf {
        self.root.join("tools")
    }
    pub fn app_charm(&self, app: &str) -> PathBuf {
        self.root.join("charms").join(app)
    }
    pub fn unit_dir(&self, unit: &str) -> PathBuf {
        self.root.join("units").join(unit.replace('/', "-"))
    }
    pub fn charm_dir(&self, unit: &str) -> PathBuf {
        self.unit_dir(unit).join("charm")
    }
    /// The charm files deployed in the unit's charm directory (one relative path a line, as
    /// Juju keeps a manifest per deployed charm): an upgrade deletes those the new charm lacks
    /// and keeps every file the charm wrote itself.
    pub fn charm_manifest(&self, unit: &str) -> PathBuf {
        self.unit_dir(unit).join("charm.manifest")
    }
    pub fn workload_dir(&self, unit: &str) -> PathBuf {
        self.unit_dir(unit).join("workload")
    }
    pub fn storage_dir(&self, unit: &str, storage_id: &str) -> PathBuf {
        self.unit_dir(unit)
            .join("storage")
            .join(storage_id.replace('/', "-"))
    }
    /// The hook-tool socket: in the model directory, unless that path is too long for a unix
    /// socket (108 bytes), then in /tmp under the model's uuid.
    pub fn socket(&self, uuid: &str) -> PathBuf {
        let p = self.root.join("agent.sock");
        if p.as_os_str().len() < 100 {
            p
        } else {
            std::env::temp_dir().join(format!("jujusim-{uuid}.sock"))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Life {
    #[default]
    Alive,
    Dying,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub status: String,
    pub message: String,
    pub since: String,
}

impl Status {
    pub fn new(status: &str, message: &str) -> Status {
        Status {
            status: status.to_string(),
            message: message.to_string(),
            since: util::now_rfc3339(),
        }
    }
}

/// A settings bag with the version Juju compares to decide on `-changed` hooks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub data: Bag,
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub name: String,
    pub meta: Meta,
    /// No charm: a stub application played by the test (`deploy-stub`).
    #[serde(default)]
    pub stub: bool,
    /// Values set by the operator (defaults are applied on read).
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    pub leader: Option<String>,
    #[serde(default)]
    pub leader_settings: Bag,
    pub leader_settings_version: u64,
    /// Application status, set by the leader (`status-set --application`).
    pub status: Option<Status>,
    #[serde(default)]
    pub workload_version: String,
    pub next_unit: u32,
    pub units: BTreeMap<u32, Unit>,
    #[serde(default)]
    pub life: Life,
    /// The charm's revision in the model: 0 at deploy, one more at each `refresh` (Juju's
    /// `local:<name>-<revision>`).
    #[serde(default)]
    pub revision: u32,
    /// `refresh --force-units` to this revision: units in hook error take it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_units_revision: Option<u32>,
    /// The endpoints each revision's charm declares, for the revisions units still run: a unit
    /// enters no relation on an endpoint its deployed charm does not know (Juju's relation
    /// state tracker skips them) until it has upgraded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revisions: BTreeMap<u32, Vec<String>>,
}

impl App {
    /// A new application without units; the caller adds units and names the leader.
    pub fn new(name: &str, meta: Meta, stub: bool, config: BTreeMap<String, Value>) -> App {
        App {
            name: name.to_string(),
            meta,
            stub,
            config,
            leader: None,
            leader_settings: Bag::new(),
            // Non-leaders run leader-settings-changed once at startup (their agents start at 0).
            leader_settings_version: 1,
            status: None,
            workload_version: String::new(),
            next_unit: 0,
            units: BTreeMap::new(),
            life: Life::Alive,
            revision: 0,
            force_units_revision: None,
            revisions: BTreeMap::new(),
        }
    }

    /// Juju's charm URL of one of this application's revisions (`local:zookeeper-1`).
    pub fn charm_url(&self, revision: u32) -> String {
        let name = if self.stub {
            &self.name
        } else {
            &self.meta.name
        };
        format!("local:{name}-{revision}")
    }

    /// Whether the charm of `revision` declares `endpoint`: the current charm's metadata, an
    /// older revision's recorded endpoints (an older model without the record: the current
    /// metadata).
    pub fn declares(&self, revision: u32, endpoint: &str) -> bool {
        match self.revisions.get(&revision) {
            Some(eps) if revision != self.revision => eps.iter().any(|e| e == endpoint),
            _ => self.meta.endpoints.contains_key(endpoint),
        }
    }

    /// Whether `unit` runs another revision than the application's (it has an upgrade to do).
    pub fn upgrade_due(&self, unit: &Unit) -> bool {
        !self.stub && unit.local.charm_revision != self.revision
    }

    /// Config as `config-get --all` sees it: operator values over charm defaults.
    pub fn effective_config(&self) -> BTreeMap<String, Value> {
        self.meta
            .options
            .iter()
            .map(|(k, o)| {
                let v = self
                    .config
                    .get(k)
                    .cloned()
                    .or_else(|| o.default.clone())
                    .unwrap_or(Value::Null);
                (k.clone(), v)
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageInstance {
    /// `data/0`.
    pub id: String,
    pub name: String,
    pub kind: String,
    pub location: String,
    /// storage-attached has run.
    pub attached: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Port {
    /// `*` for all endpoints.
    pub endpoint: String,
    /// `80/tcp`, `8000-8100/udp`, `icmp`.
    pub range: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub name: String,
    pub num: u32,
    /// Host part of `127.A.B.<host>`.
    pub host: u32,
    pub machine: u32,
    #[serde(default)]
    pub life: Life,
    pub workload: Status,
    pub agent: Status,
    /// The charm has called status-set for this unit at least once.
    #[serde(default)]
    pub status_set: bool,
    #[serde(default)]
    pub state: Bag,
    #[serde(default)]
    pub ports: BTreeSet<Port>,
    #[serde(default)]
    pub storage: Vec<StorageInstance>,
    /// What this unit's agent has seen so far (the driver compares it with the world).
    pub local: Local,
}

/// What a unit's agent knows (Juju's uniter "local state").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Local {
    pub installed: bool,
    pub started: bool,
    pub leader: bool,
    pub leader_settings_version: u64,
    /// The effective config (as JSON text) last delivered by config-changed.
    pub config_seen: Option<String>,
    /// A hook queued by the previous one (`start` after the first `config-changed`).
    pub queued: Option<HookSpec>,
    /// A failed hook waiting for retry or resolution.
    pub error: Option<HookError>,
    pub update_status_pending: bool,
    /// Relations this unit has entered (ran `-created`), by id.
    pub relations: BTreeMap<u64, LocalRelation>,
    /// Secrets with a `secret-changed` pending, by xid.
    pub secret_changed: BTreeSet<String>,
    /// The application revision whose charm is deployed in the unit's charm directory.
    #[serde(default)]
    pub charm_revision: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalRelation {
    /// Remote members joined from this unit's point of view, with the settings version seen.
    pub members: BTreeMap<String, u64>,
    /// `-changed` owed right after `-joined`.
    pub changed_pending: Option<String>,
    /// Remote application bag version seen.
    pub app_version: u64,
    /// Remote unit settings as read in an earlier hook (Juju's uniter cache), cleared before
    /// `-joined`/`-changed` for that unit.
    #[serde(default)]
    pub cache: BTreeMap<String, Bag>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookError {
    pub hook: HookSpec,
    /// Retry requested (`resolve`, or a settle step).
    pub retry: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookKind {
    Install,
    Start,
    ConfigChanged,
    UpgradeCharm,
    UpdateStatus,
    Stop,
    Remove,
    LeaderElected,
    LeaderSettingsChanged,
    RelationCreated,
    RelationJoined,
    RelationChanged,
    RelationDeparted,
    RelationBroken,
    SecretChanged,
    StorageAttached,
    StorageDetaching,
}

/// One hook to run, with what the driver observed when it chose it (so the commit records
/// exactly what was delivered).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookSpec {
    pub kind: HookKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<u64>,
    /// The endpoint name (relation hooks) or storage name (storage hooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departing: Option<String>,
    /// Settings version delivered (relation/leader-settings hooks).
    #[serde(default)]
    pub version: u64,
    /// Secret xid (secret hooks) or storage id (storage hooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Config delivered (config-changed), as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

impl HookSpec {
    pub fn simple(kind: HookKind) -> HookSpec {
        HookSpec {
            kind,
            relation: None,
            endpoint: None,
            remote_app: None,
            remote_unit: None,
            departing: None,
            version: 0,
            id: None,
            config: None,
        }
    }

    /// The hook name Juju uses (`install`, `db-relation-changed`, `data-storage-attached`).
    pub fn name(&self) -> String {
        let ep = self.endpoint.as_deref().unwrap_or("");
        match self.kind {
            HookKind::Install => "install".into(),
            HookKind::Start => "start".into(),
            HookKind::ConfigChanged => "config-changed".into(),
            HookKind::UpgradeCharm => "upgrade-charm".into(),
            HookKind::UpdateStatus => "update-status".into(),
            HookKind::Stop => "stop".into(),
            HookKind::Remove => "remove".into(),
            HookKind::LeaderElected => "leader-elected".into(),
            HookKind::LeaderSettingsChanged => "leader-settings-changed".into(),
            HookKind::RelationCreated => format!("{ep}-relation-created"),
            HookKind::RelationJoined => format!("{ep}-relation-joined"),
            HookKind::RelationChanged => format!("{ep}-relation-changed"),
            HookKind::RelationDeparted => format!("{ep}-relation-departed"),
            HookKind::RelationBroken => format!("{ep}-relation-broken"),
            HookKind::SecretChanged => "secret-changed".into(),
            HookKind::StorageAttached => format!("{ep}-storage-attached"),
            HookKind::StorageDetaching => format!("{ep}-storage-detaching"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelEnd {
    pub app: String,
    pub endpoint: String,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    pub id: u64,
    pub interface: String,
    /// One end for a peer relation, two otherwise.
    pub ends: Vec<RelEnd>,
    #[serde(default)]
    pub life: Life,
    pub app_bags: BTreeMap<String, Settings>,
    pub unit_bags: BTreeMap<String, Settings>,
}

impl Relation {
    pub fn is_peer(&self) -> bool {
        self.ends.len() == 1
    }
    pub fn end(&self, app: &str) -> Option<&RelEnd> {
        self.ends.iter().find(|e| e.app == app)
    }
    /// The application on the other side (the same one for a peer relation).
    pub fn remote_app(&self, app: &str) -> Option<&str> {
        if self.is_peer() {
            return self.end(app).map(|e| e.app.as_str());
        }
        self.end(app)?;
        self.ends
            .iter()
            .find(|e| e.app != app)
            .map(|e| e.app.as_str())
    }
    pub fn involves(&self, app: &str) -> bool {
        self.end(app).is_some()
    }
    /// `zookeeper:zookeeper kafka:zookeeper`, provider first, as Juju prints relation keys.
    pub fn key(&self) -> String {
        let mut ends: Vec<&RelEnd> = self.ends.iter().collect();
        ends.sort_by_key(|e| (e.role != Role::Provider, e.app.clone()));
        ends.iter()
            .map(|e| format!("{}:{}", e.app, e.endpoint))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum SecretOwner {
    Application(String),
    Unit(String),
    /// A user secret (`juju add-secret`): owned by the model, read by the applications it is
    /// granted to (`juju grant-secret`), with no relation needed.
    Model(String),
}

impl SecretOwner {
    pub fn app(&self) -> &str {
        match self {
            SecretOwner::Application(a) => a,
            SecretOwner::Unit(u) => app_of(u),
            SecretOwner::Model(_) => "",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub relation: u64,
    /// An application name or a unit name.
    pub target: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Revision this consumer tracks (0 = never read).
    pub revision: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    pub xid: String,
    pub owner: SecretOwner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Option<String>,
    /// Revision -> content (values base64-encoded, as Juju stores them).
    pub revisions: BTreeMap<u32, Bag>,
    pub latest: u32,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Consumer units: label and tracked revision.
    #[serde(default)]
    pub consumers: BTreeMap<String, Consumer>,
    #[serde(default)]
    pub create_time: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: u64,
    pub unit: String,
    pub name: String,
    pub params: Value,
    /// pending, running, completed, failed.
    pub status: String,
    #[serde(default)]
    pub results: serde_json::Map<String, Value>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub log: Vec<String>,
}

/// The persisted world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct World {
    pub format: u32,
    pub name: String,
    pub uuid: String,
    pub juju_version: String,
    /// The claimed loopback range `127.A.B.0/24`.
    pub range: (u8, u8),
    pub next_host: u32,
    pub next_machine: u32,
    pub next_relation: u64,
    pub next_action: u64,
    pub next_context: u64,
    pub next_seq: u64,
    #[serde(default)]
    pub next_storage: BTreeMap<String, u32>,
    /// Last unit that ran a hook (round-robin fairness).
    #[serde(default)]
    pub last_unit: Option<String>,
    /// Commands that ran on this model (mixed into a `--seed` so each command draws fresh).
    #[serde(default)]
    pub commands: u64,
    pub apps: BTreeMap<String, App>,
    pub relations: BTreeMap<u64, Relation>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
    #[serde(default)]
    pub actions: BTreeMap<u64, Action>,
    /// `juju model-config` settings an operator set (the rest have Juju's defaults).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_config: BTreeMap<String, Value>,
}

pub fn app_of(unit: &str) -> &str {
    unit.split_once('/').map(|(a, _)| a).unwrap_or(unit)
}

/// `app/N` -> (`app`, N).
pub fn parse_unit(s: &str) -> Option<(&str, u32)> {
    let (app, n) = s.split_once('/')?;
    if !valid_app_name(app) || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((app, n.parse().ok()?))
}

/// Juju application names: lowercase letters, digits and hyphens, starting with a letter, no
/// hyphen followed by only digits.
pub fn valid_app_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !s.ends_with('-')
        && !s.contains("--")
        && !s
            .split('-')
            .skip(1)
            .any(|part| !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()))
}

impl World {
    pub fn new(name: &str, range: (u8, u8)) -> World {
        World {
            format: FORMAT,
            name: name.to_string(),
            uuid: util::uuid4(),
            juju_version: JUJU_VERSION.to_string(),
            range,
            next_host: FIRST_HOST,
            next_machine: 0,
            next_relation: 0,
            next_action: 1,
            next_context: 1,
            next_seq: 1,
            next_storage: BTreeMap::new(),
            last_unit: None,
            commands: 0,
            apps: BTreeMap::new(),
            relations: BTreeMap::new(),
            secrets: BTreeMap::new(),
            actions: BTreeMap::new(),
            model_config: BTreeMap::new(),
        }
    }

    pub fn address(&self, host: u32) -> String {
        format!("127.{}.{}.{}", self.range.0, self.range.1, host)
    }

    pub fn unit_address(&self, unit: &str) -> Option<String> {
        self.unit(unit).map(|u| self.address(u.host))
    }

    pub fn unit(&self, name: &str) -> Option<&Unit> {
        let (app, n) = parse_unit(name)?;
        self.apps.get(app)?.units.get(&n)
    }

    pub fn unit_mut(&mut self, name: &str) -> Option<&mut Unit> {
        let (app, n) = parse_unit(name)?;
        self.apps.get_mut(app)?.units.get_mut(&n)
    }

    /// Every unit name, in the fixed order (application name, then unit number).
    pub fn unit_names(&self) -> Vec<String> {
        self.apps
            .values()
            .flat_map(|a| a.units.values().map(|u| u.name.clone()))
            .collect()
    }

    pub fn is_leader(&self, unit: &str) -> bool {
        self.apps
            .get(app_of(unit))
            .and_then(|a| a.leader.as_deref())
            == Some(unit)
    }

    pub fn is_stub(&self, app: &str) -> bool {
        self.apps.get(app).map(|a| a.stub).unwrap_or(false)
    }

    /// Whether `unit` is in the relation's scope, as other units see it: alive, the relation
    /// alive, and (for charm units) it ran `-created`.
    pub fn in_scope(&self, rel: &Relation, unit: &str) -> bool {
        if rel.life != Life::Alive {
            return false;
        }
        let Some(u) = self.unit(unit) else {
            return false;
        };
        if u.life != Life::Alive || !rel.involves(app_of(unit)) {
            return false;
        }
        self.is_stub(app_of(unit)) || u.local.relations.contains_key(&rel.id)
    }

    /// Remote members of `rel` from `unit`'s point of view (sorted).
    pub fn remote_members(&self, rel: &Relation, unit: &str) -> Vec<String> {
        let me = app_of(unit);
        let Some(remote) = rel.remote_app(me) else {
            return Vec::new();
        };
        if rel.life != Life::Alive || self.unit(unit).map(|u| u.life) != Some(Life::Alive) {
            return Vec::new();
        }
        let Some(app) = self.apps.get(remote) else {
            return Vec::new();
        };
        let mut v: Vec<String> = app
            .units
            .values()
            .filter(|u| u.name != unit && self.in_scope(rel, &u.name))
            .map(|u| u.name.clone())
            .collect();
        v.sort();
        v
    }

    /// Claims the next unit address; errors when the /24 is exhausted.
    pub fn take_host(&mut self) -> Result<u32> {
        if self.next_host > 254 {
            fail!(
                "no address left in this model's range 127.{}.{}.0/24 (units get .{FIRST_HOST} to .254); \
                 use a new model for more units",
                self.range.0,
                self.range.1
            );
        }
        let h = self.next_host;
        self.next_host += 1;
        Ok(h)
    }

    pub fn secret_uri(&self, xid: &str) -> String {
        format!("secret://{}/{}", self.uuid, xid)
    }

    /// `secret://<uuid>/<xid>`, `secret:<xid>` or a bare xid -> xid.
    pub fn parse_secret_ref(s: &str) -> Option<String> {
        let id = if let Some(rest) = s.strip_prefix("secret://") {
            rest.rsplit('/').next()?
        } else if let Some(rest) = s.strip_prefix("secret:") {
            rest
        } else {
            s
        };
        (id.len() == 20
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)))
        .then(|| id.to_string())
    }

    // ---- persistence ----

    pub fn load(paths: &Paths) -> Result<World> {
        let path = paths.model_json();
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => fail!(
                "no model at {}: start one with `jujusim deploy <charm>` (or choose another with --model DIR or $JUJUSIM_MODEL)",
                paths.root.display()
            ),
            Err(e) => return Err(SimError::io("cannot read", &path, e)),
        };
        let world: World = serde_json::from_slice(&text).map_err(|e| {
            SimError::Failed(format!(
                "{} is not a jujusim model file ({e}); if it was edited by hand, fix it or `jujusim destroy` the model",
                path.display()
            ))
        })?;
        if world.format != FORMAT {
            fail!(
                "{} has format {}, this jujusim reads format {FORMAT}",
                path.display(),
                world.format
            );
        }
        Ok(world)
    }

    pub fn save(&self, paths: &Paths) -> Result<()> {
        let path = paths.model_json();
        let data = serde_json::to_vec(self)
            .map_err(|e| SimError::Failed(format!("cannot serialise the model: {e}")))?;
        util::atomic_write(&path, &data).map_err(|e| SimError::io("cannot write", &path, e))
    }
}

/// An exclusive lock on a model for the duration of one mutating command.
pub struct ModelLock {
    _file: fs::File,
}

/// While a command waits for the model's lock it says so with a file `.yield-<pid>` in the model
/// directory, on which it holds a `flock` for as long as it waits: the model's agent (which runs
/// hooks in the background for the `juju` front end) then starts no new hook and lets go of the
/// lock once its running hooks end. A file nobody holds (its command was killed) is removed.
pub fn yield_requested(paths: &Paths) -> bool {
    let Ok(entries) = fs::read_dir(&paths.root) else {
        return false;
    };
    let mut asked = false;
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(".yield-") {
            continue;
        }
        let Ok(f) = fs::File::open(e.path()) else {
            continue;
        };
        // SAFETY: flock on a file descriptor we own.
        let free = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        if free {
            let _ = fs::remove_file(e.path());
        } else {
            asked = true;
        }
    }
    asked
}

/// The `.yield-<pid>` file of a waiting command, locked while it waits (the open file holds
/// the `flock`), removed after.
struct YieldRequest {
    path: PathBuf,
    _held: Option<fs::File>,
}

impl YieldRequest {
    fn new(paths: &Paths) -> YieldRequest {
        let p = paths.root.join(format!(".yield-{}", std::process::id()));
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .ok()
            .filter(try_flock);
        YieldRequest { path: p, _held: f }
    }
}

impl Drop for YieldRequest {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn open_lock_file(paths: &Paths) -> Result<fs::File> {
    let path = paths.lock();
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SimError::io("cannot open", &path, e))
}

fn try_flock(file: &fs::File) -> bool {
    // SAFETY: flock on a file descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

impl ModelLock {
    /// Takes the lock, waiting up to `timeout` if another command (or the model's agent) holds
    /// it, and saying so on stderr (when the model has an agent, only after two seconds: the
    /// agent lets go between hooks).
    pub fn acquire(paths: &Paths, timeout: Duration) -> Result<ModelLock> {
        let file = open_lock_file(paths)?;
        if try_flock(&file) {
            return Ok(ModelLock { _file: file });
        }
        let _asking = YieldRequest::new(paths);
        let start = Instant::now();
        let quiet_for = if crate::agent::running(paths).is_some() {
            Duration::from_secs(2)
        } else {
            Duration::ZERO
        };
        let mut said = false;
        loop {
            std::thread::sleep(Duration::from_millis(20));
            if try_flock(&file) {
                return Ok(ModelLock { _file: file });
            }
            if !said && start.elapsed() >= quiet_for {
                said = true;
                eprintln!(
                    "jujusim: another command is running on model {}; waiting up to {} s",
                    paths.root.display(),
                    timeout.as_secs()
                );
            }
            if start.elapsed() > timeout {
                fail!(
                    "model {} is still busy after {} s (another jujusim command holds {}); try again later",
                    paths.root.display(),
                    timeout.as_secs(),
                    paths.lock().display()
                );
            }
        }
    }

    /// The lock of an existing model if nobody holds it now (the agent: it never waits, never
    /// asks to be let in, and never creates a model, even half of one being removed).
    pub fn try_acquire(paths: &Paths) -> Result<Option<ModelLock>> {
        let path = paths.lock();
        let file = match fs::OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SimError::io("cannot open", &path, e)),
        };
        if !try_flock(&file) {
            return Ok(None);
        }
        if !paths.model_json().is_file() {
            return Ok(None);
        }
        Ok(Some(ModelLock { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yield_request_counts_only_while_its_command_waits() {
        let dir = tempfile::tempdir().expect("tmp");
        let paths = Paths::new(dir.path().to_path_buf());
        // Left by a killed command (nobody holds it): removed, not obeyed.
        std::fs::write(dir.path().join(".yield-1"), b"").expect("write");
        assert!(!yield_requested(&paths));
        assert!(!dir.path().join(".yield-1").exists());
        let asking = YieldRequest::new(&paths);
        assert!(yield_requested(&paths));
        drop(asking);
        assert!(!yield_requested(&paths));
    }

    /// A realistic 5-unit model: peer relation with data, a client relation, secrets, state.
    fn five_unit_world() -> World {
        let mut w = World::new("perf", (10, 20));
        let mut meta = Meta {
            name: "zookeeper".into(),
            ..Meta::default()
        };
        for (ep, role) in [("cluster", Role::Peer), ("zookeeper", Role::Provider)] {
            meta.endpoints.insert(
                ep.into(),
                crate::charm::Endpoint {
                    role,
                    interface: ep.into(),
                    limit: None,
                },
            );
        }
        let mut units = BTreeMap::new();
        let mut peer = Relation {
            id: 0,
            interface: "cluster".into(),
            ends: vec![RelEnd {
                app: "zookeeper".into(),
                endpoint: "cluster".into(),
                role: Role::Peer,
            }],
            life: Life::Alive,
            app_bags: BTreeMap::new(),
            unit_bags: BTreeMap::new(),
        };
        for n in 0..5u32 {
            let name = format!("zookeeper/{n}");
            let mut local = Local::default();
            local.relations.insert(
                0,
                LocalRelation {
                    members: (0..5).map(|m| (format!("zookeeper/{m}"), 3)).collect(),
                    ..LocalRelation::default()
                },
            );
            let bag: Bag = (0..10)
                .map(|k| (format!("key-{k}"), "x".repeat(40)))
                .collect();
            peer.unit_bags.insert(
                name.clone(),
                Settings {
                    data: bag.clone(),
                    version: 3,
                },
            );
            units.insert(
                n,
                Unit {
                    name,
                    num: n,
                    host: 10 + n,
                    machine: n,
                    life: Life::Alive,
                    workload: Status::new("active", "ready"),
                    agent: Status::new("idle", ""),
                    status_set: true,
                    state: bag,
                    ports: BTreeSet::new(),
                    storage: Vec::new(),
                    local,
                },
            );
        }
        peer.app_bags.insert(
            "zookeeper".into(),
            Settings {
                data: (0..20)
                    .map(|k| (format!("app-{k}"), "y".repeat(60)))
                    .collect(),
                version: 9,
            },
        );
        w.relations.insert(0, peer);
        w.apps.insert(
            "zookeeper".into(),
            App {
                name: "zookeeper".into(),
                meta,
                stub: false,
                config: BTreeMap::new(),
                leader: Some("zookeeper/0".into()),
                leader_settings: Bag::new(),
                leader_settings_version: 1,
                status: None,
                workload_version: "3.8.0".into(),
                next_unit: 5,
                units,
                life: Life::Alive,
                revision: 0,
                force_units_revision: None,
                revisions: BTreeMap::new(),
            },
        );
        w
    }

    #[test]
    fn a_five_unit_model_saves_and_loads_quickly() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path().to_path_buf());
        let w = five_unit_world();
        let n = 50;
        let t = std::time::Instant::now();
        for _ in 0..n {
            w.save(&paths).unwrap();
        }
        let save = t.elapsed() / n;
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert_eq!(World::load(&paths).unwrap(), w);
        }
        let load = t.elapsed() / n;
        let size = std::fs::metadata(paths.model_json()).unwrap().len();
        eprintln!("5-unit model: {size} bytes, save {save:?}, load {load:?}");
        // Generous bound (debug build, shared machine); release figures are in the README.
        assert!(
            save.as_millis() < 50 && load.as_millis() < 50,
            "save {save:?} load {load:?}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(parse_unit("zookeeper/10"), Some(("zookeeper", 10)));
        assert_eq!(parse_unit("zookeeper"), None);
        assert_eq!(parse_unit("Zoo/1"), None);
        assert!(valid_app_name("kafka-k8s"));
        assert!(!valid_app_name("kafka-1"));
        assert!(!valid_app_name("1kafka"));
        let xid = "cq0a1b2c3d4e5f6g7h8i";
        assert_eq!(
            World::parse_secret_ref(&format!("secret://abc/{xid}")).as_deref(),
            Some(xid)
        );
        assert_eq!(
            World::parse_secret_ref(&format!("secret:{xid}")).as_deref(),
            Some(xid)
        );
        assert_eq!(World::parse_secret_ref("secret:short"), None);
    }
}
