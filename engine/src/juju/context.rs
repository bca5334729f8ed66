//! The hook's context and event, parsed from the environment Juju builds for every dispatch.
//!
//! Pure: [`Context::from_env`] takes a map, so every hook kind is table-tested without a process.
//! Rules (Juju 3.6, see the hook protocol reference §1.2):
//! - the event comes from `JUJU_DISPATCH_PATH` (`hooks/<name>` or `actions/<name>`), falling back to
//!   the basename of argv[0] when a legacy `hooks/<name>` entry ran us without dispatch;
//! - `JUJU_REMOTE_UNIT` is present but empty in `-created`, `-broken` and app-data `-changed`;
//! - `JUJU_DEPARTING_UNIT` is set only in `-departed`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why the environment could not be turned into a context. Each variant names the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    #[error(
        "not running under Juju: JUJU_DISPATCH_PATH and JUJU_UNIT_NAME are unset. This binary is \
         a Juju charm; deploy it with `juju deploy` (or `jujusim deploy`) instead of running it directly"
    )]
    NotUnderJuju,
    #[error("environment variable {var} is required for {hook} but is not set")]
    Missing { var: &'static str, hook: String },
    #[error("environment variable {var} has a malformed value {value:?}: {expected}")]
    Malformed {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// A relation id as Juju prints it, `<endpoint>:<n>`; only the number identifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelationId(pub u32);

impl RelationId {
    /// Parses `7`, `db:7` or `anything:7` (the integer after the last `:`), as Juju does.
    pub fn parse(s: &str) -> Option<RelationId> {
        let n = s.rsplit(':').next()?;
        n.parse().ok().map(RelationId)
    }
}

impl fmt::Display for RelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `app/N`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnitName(String);

impl UnitName {
    pub fn parse(s: &str) -> Option<UnitName> {
        let (app, n) = s.split_once('/')?;
        if app.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse::<u32>().ok()?;
        Some(UnitName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn app(&self) -> &str {
        self.0.split_once('/').map(|(a, _)| a).unwrap_or(&self.0)
    }
    /// The number after the slash (checked at parse time).
    pub fn number(&self) -> u32 {
        self.0
            .split_once('/')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0)
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelationPhase {
    Created,
    Joined,
    Changed,
    Departed,
    Broken,
}

impl RelationPhase {
    const ALL: [(RelationPhase, &'static str); 5] = [
        (RelationPhase::Created, "created"),
        (RelationPhase::Joined, "joined"),
        (RelationPhase::Changed, "changed"),
        (RelationPhase::Departed, "departed"),
        (RelationPhase::Broken, "broken"),
    ];
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, s)| *s)
            .unwrap_or("changed")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretPhase {
    Changed,
    Rotate,
    Expired,
    Remove,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoragePhase {
    Attached,
    Detaching,
}

/// One Juju event, with exactly the data that identifies it. Serializable: deferred events are
/// stored as these values, and two events are "the same" when they compare equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    Install,
    Start,
    Stop,
    Remove,
    ConfigChanged,
    UpdateStatus,
    UpgradeCharm,
    LeaderElected,
    LeaderSettingsChanged,
    Relation {
        endpoint: String,
        phase: RelationPhase,
        id: RelationId,
        /// The remote application (for a peer relation: our own application).
        remote_app: Option<String>,
        /// Empty in -created, -broken and app-data -changed.
        remote_unit: Option<UnitName>,
        /// Only in -departed: who is leaving (the remote unit, or this unit when it is dying).
        departing_unit: Option<UnitName>,
    },
    Secret {
        phase: SecretPhase,
        id: String,
        label: Option<String>,
        revision: Option<u32>,
    },
    Storage {
        name: String,
        phase: StoragePhase,
        id: Option<String>,
        location: Option<String>,
    },
    Action {
        name: String,
        uuid: String,
    },
    /// A hook this charm version does not know (a newer Juju, or a future endpoint).
    Unknown {
        hook: String,
    },
    /// Not a Juju event: the deferred-queue entry of a charm whose deferred events all mean
    /// "reconcile again" ([`crate::Charm::deferred_as`]), so that a backlog is one entry.
    Reconcile,
}

impl Event {
    /// The hook name Juju would use (`cluster-relation-changed`), or `action <name>`.
    pub fn hook_name(&self) -> String {
        match self {
            Event::Install => "install".into(),
            Event::Start => "start".into(),
            Event::Stop => "stop".into(),
            Event::Remove => "remove".into(),
            Event::ConfigChanged => "config-changed".into(),
            Event::UpdateStatus => "update-status".into(),
            Event::UpgradeCharm => "upgrade-charm".into(),
            Event::LeaderElected => "leader-elected".into(),
            Event::LeaderSettingsChanged => "leader-settings-changed".into(),
            Event::Relation {
                endpoint, phase, ..
            } => format!("{endpoint}-relation-{}", phase.as_str()),
            Event::Secret { phase, .. } => match phase {
                SecretPhase::Changed => "secret-changed".into(),
                SecretPhase::Rotate => "secret-rotate".into(),
                SecretPhase::Expired => "secret-expired".into(),
                SecretPhase::Remove => "secret-remove".into(),
            },
            Event::Storage { name, phase, .. } => match phase {
                StoragePhase::Attached => format!("{name}-storage-attached"),
                StoragePhase::Detaching => format!("{name}-storage-detaching"),
            },
            Event::Action { name, .. } => format!("action {name}"),
            Event::Unknown { hook } => hook.clone(),
            Event::Reconcile => "reconcile".into(),
        }
    }

    /// A short description for logs: the hook name plus what distinguishes this instance.
    pub fn describe(&self) -> String {
        match self {
            Event::Relation {
                id,
                remote_unit,
                departing_unit,
                ..
            } => {
                let mut s = format!("{} (relation {id}", self.hook_name());
                if let Some(u) = remote_unit {
                    s.push_str(&format!(", remote {u}"));
                }
                if let Some(u) = departing_unit {
                    s.push_str(&format!(", departing {u}"));
                }
                s.push(')');
                s
            }
            _ => self.hook_name(),
        }
    }

    /// ops semantics: actions, stop, remove, secret-rotate/expired cannot be deferred.
    pub fn deferrable(&self) -> bool {
        !matches!(
            self,
            Event::Action { .. }
                | Event::Stop
                | Event::Remove
                | Event::Secret {
                    phase: SecretPhase::Rotate | SecretPhase::Expired,
                    ..
                }
        )
    }

    pub fn relation_id(&self) -> Option<RelationId> {
        match self {
            Event::Relation { id, .. } => Some(*id),
            _ => None,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Everything the hook knows about where and why it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub unit: UnitName,
    pub app: String,
    pub model_name: String,
    pub model_uuid: String,
    pub charm_dir: PathBuf,
    pub juju_version: String,
    /// `hooks/<name>` or `actions/<name>` (after argv[0] fallback).
    pub dispatch_path: String,
    pub event: Event,
}

fn get<'a>(env: &'a BTreeMap<String, String>, var: &str) -> Option<&'a str> {
    env.get(var).map(String::as_str)
}

fn require<'a>(
    env: &'a BTreeMap<String, String>,
    var: &'static str,
    hook: &str,
) -> Result<&'a str, ContextError> {
    match get(env, var) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ContextError::Missing {
            var,
            hook: hook.to_string(),
        }),
    }
}

/// Present-but-empty means "none" (Juju always exports the relation variables in relation hooks).
fn optional(env: &BTreeMap<String, String>, var: &str) -> Option<String> {
    get(env, var).filter(|v| !v.is_empty()).map(str::to_string)
}

fn unit_var(
    env: &BTreeMap<String, String>,
    var: &'static str,
) -> Result<Option<UnitName>, ContextError> {
    match optional(env, var) {
        None => Ok(None),
        Some(v) => UnitName::parse(&v)
            .map(Some)
            .ok_or(ContextError::Malformed {
                var,
                value: v,
                expected: "a unit name such as app/0",
            }),
    }
}

/// The relation endpoints this charm declares, longest first so `s3-credentials` wins over a
/// shorter prefix. Unknown endpoints are still parsed (Juju may add relations the charm ignores).
fn split_relation_hook(name: &str) -> Option<(&str, RelationPhase)> {
    for (phase, suffix) in RelationPhase::ALL {
        if let Some(ep) = name.strip_suffix(&format!("-relation-{suffix}")) {
            if !ep.is_empty() {
                return Some((ep, phase));
            }
        }
    }
    None
}

impl Context {
    /// Parses the process environment. `argv0` is used only when `JUJU_DISPATCH_PATH` is unset: a
    /// legacy entry point `<charm>/hooks/<name>` names the hook; the charm's binary or `dispatch`
    /// run without a dispatch path is refused.
    pub fn from_env(
        env: &BTreeMap<String, String>,
        argv0: Option<&str>,
    ) -> Result<Context, ContextError> {
        let dispatch_path = match optional(env, "JUJU_DISPATCH_PATH") {
            Some(p) => p,
            None => {
                let mut parts = argv0.unwrap_or("").rsplit('/');
                let base = parts.next().unwrap_or("");
                let legacy_hook = !base.is_empty() && parts.next() == Some("hooks");
                if get(env, "JUJU_UNIT_NAME").is_none() {
                    return Err(ContextError::NotUnderJuju);
                }
                if !legacy_hook {
                    return Err(ContextError::Missing {
                        var: "JUJU_DISPATCH_PATH",
                        hook: "dispatch".into(),
                    });
                }
                format!("hooks/{base}")
            }
        };
        let (kind, name) =
            dispatch_path
                .split_once('/')
                .ok_or_else(|| ContextError::Malformed {
                    var: "JUJU_DISPATCH_PATH",
                    value: dispatch_path.clone(),
                    expected: "hooks/<hook-name> or actions/<action-name>",
                })?;
        if name.is_empty() || name.contains('/') || !(kind == "hooks" || kind == "actions") {
            return Err(ContextError::Malformed {
                var: "JUJU_DISPATCH_PATH",
                value: dispatch_path.clone(),
                expected: "hooks/<hook-name> or actions/<action-name>",
            });
        }
        let hook = name.to_string();
        let unit_s = require(env, "JUJU_UNIT_NAME", &hook)?;
        let unit = UnitName::parse(unit_s).ok_or_else(|| ContextError::Malformed {
            var: "JUJU_UNIT_NAME",
            value: unit_s.to_string(),
            expected: "a unit name such as app/0",
        })?;
        let charm_dir = optional(env, "JUJU_CHARM_DIR")
            .or_else(|| optional(env, "CHARM_DIR"))
            .ok_or(ContextError::Missing {
                var: "JUJU_CHARM_DIR",
                hook: hook.clone(),
            })?;
        let model_name = require(env, "JUJU_MODEL_NAME", &hook)?.to_string();
        let model_uuid = require(env, "JUJU_MODEL_UUID", &hook)?.to_string();
        let juju_version = require(env, "JUJU_VERSION", &hook)?.to_string();
        let event = if kind == "actions" {
            Event::Action {
                name: hook.clone(),
                uuid: require(env, "JUJU_ACTION_UUID", &format!("action {hook}"))?.to_string(),
            }
        } else {
            parse_hook(env, &hook)?
        };
        Ok(Context {
            app: unit.app().to_string(),
            unit,
            model_name,
            model_uuid,
            charm_dir: PathBuf::from(charm_dir),
            juju_version,
            dispatch_path,
            event,
        })
    }
}

fn parse_hook(env: &BTreeMap<String, String>, hook: &str) -> Result<Event, ContextError> {
    let simple = match hook {
        "install" => Some(Event::Install),
        "start" => Some(Event::Start),
        "stop" => Some(Event::Stop),
        "remove" => Some(Event::Remove),
        "config-changed" => Some(Event::ConfigChanged),
        "update-status" => Some(Event::UpdateStatus),
        "upgrade-charm" => Some(Event::UpgradeCharm),
        "leader-elected" => Some(Event::LeaderElected),
        "leader-settings-changed" => Some(Event::LeaderSettingsChanged),
        _ => None,
    };
    if let Some(e) = simple {
        return Ok(e);
    }
    let secret_phase = match hook {
        "secret-changed" => Some(SecretPhase::Changed),
        "secret-rotate" => Some(SecretPhase::Rotate),
        "secret-expired" => Some(SecretPhase::Expired),
        "secret-remove" => Some(SecretPhase::Remove),
        _ => None,
    };
    if let Some(phase) = secret_phase {
        let revision = match optional(env, "JUJU_SECRET_REVISION") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| ContextError::Malformed {
                var: "JUJU_SECRET_REVISION",
                value: v.clone(),
                expected: "a revision number",
            })?),
        };
        return Ok(Event::Secret {
            phase,
            id: require(env, "JUJU_SECRET_ID", hook)?.to_string(),
            label: optional(env, "JUJU_SECRET_LABEL"),
            revision,
        });
    }
    if let Some((endpoint, phase)) = split_relation_hook(hook) {
        let rel_s = require(env, "JUJU_RELATION_ID", hook)?;
        let id = RelationId::parse(rel_s).ok_or_else(|| ContextError::Malformed {
            var: "JUJU_RELATION_ID",
            value: rel_s.to_string(),
            expected: "<endpoint>:<number>, e.g. cluster:3",
        })?;
        let departing_unit = unit_var(env, "JUJU_DEPARTING_UNIT")?;
        if phase == RelationPhase::Departed && departing_unit.is_none() {
            return Err(ContextError::Missing {
                var: "JUJU_DEPARTING_UNIT",
                hook: hook.to_string(),
            });
        }
        return Ok(Event::Relation {
            endpoint: endpoint.to_string(),
            phase,
            id,
            remote_app: optional(env, "JUJU_REMOTE_APP"),
            remote_unit: unit_var(env, "JUJU_REMOTE_UNIT")?,
            departing_unit,
        });
    }
    for (suffix, phase) in [
        ("-storage-attached", StoragePhase::Attached),
        ("-storage-detaching", StoragePhase::Detaching),
    ] {
        if let Some(name) = hook.strip_suffix(suffix) {
            if !name.is_empty() {
                return Ok(Event::Storage {
                    name: name.to_string(),
                    phase,
                    id: optional(env, "JUJU_STORAGE_ID"),
                    location: optional(env, "JUJU_STORAGE_LOCATION"),
                });
            }
        }
    }
    Ok(Event::Unknown {
        hook: hook.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(dispatch: &str) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("JUJU_DISPATCH_PATH", dispatch),
            ("JUJU_UNIT_NAME", "zookeeper/2"),
            ("JUJU_MODEL_NAME", "dev"),
            ("JUJU_MODEL_UUID", "cdac5656-2423-4388-8f30-41854b4cca7d"),
            (
                "JUJU_CHARM_DIR",
                "/var/lib/juju/agents/unit-zookeeper-2/charm",
            ),
            ("JUJU_VERSION", "3.6.9"),
            ("JUJU_HOOK_NAME", dispatch.trim_start_matches("hooks/")),
        ] {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn with(mut m: BTreeMap<String, String>, kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        for (k, v) in kv {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn rel_env(hook: &str, remote_unit: &str, departing: Option<&str>) -> BTreeMap<String, String> {
        let mut m = with(
            base(&format!("hooks/{hook}")),
            &[
                ("JUJU_RELATION", "cluster"),
                ("JUJU_RELATION_ID", "cluster:3"),
                ("JUJU_REMOTE_APP", "zookeeper"),
                ("JUJU_REMOTE_UNIT", remote_unit),
            ],
        );
        if let Some(d) = departing {
            m.insert("JUJU_DEPARTING_UNIT".into(), d.into());
        }
        m
    }

    #[test]
    fn simple_hooks_parse() {
        let table = [
            ("install", Event::Install),
            ("start", Event::Start),
            ("stop", Event::Stop),
            ("remove", Event::Remove),
            ("config-changed", Event::ConfigChanged),
            ("update-status", Event::UpdateStatus),
            ("upgrade-charm", Event::UpgradeCharm),
            ("leader-elected", Event::LeaderElected),
            ("leader-settings-changed", Event::LeaderSettingsChanged),
        ];
        for (hook, want) in table {
            let ctx = Context::from_env(&base(&format!("hooks/{hook}")), None).unwrap();
            assert_eq!(ctx.event, want, "{hook}");
            assert_eq!(ctx.event.hook_name(), hook);
            assert_eq!(ctx.unit.as_str(), "zookeeper/2");
            assert_eq!(ctx.unit.number(), 2);
            assert_eq!(ctx.app, "zookeeper");
        }
    }

    #[test]
    fn relation_hooks_with_empty_remote_unit() {
        // -created, -broken and app-data -changed carry an empty JUJU_REMOTE_UNIT.
        for hook in [
            "cluster-relation-created",
            "cluster-relation-broken",
            "cluster-relation-changed",
        ] {
            let ctx = Context::from_env(&rel_env(hook, "", None), None).unwrap();
            match &ctx.event {
                Event::Relation {
                    endpoint,
                    id,
                    remote_unit,
                    remote_app,
                    departing_unit,
                    ..
                } => {
                    assert_eq!(endpoint, "cluster");
                    assert_eq!(*id, RelationId(3));
                    assert_eq!(*remote_unit, None, "{hook}");
                    assert_eq!(remote_app.as_deref(), Some("zookeeper"));
                    assert_eq!(*departing_unit, None);
                }
                e => panic!("{hook}: {e:?}"),
            }
            assert_eq!(ctx.event.hook_name(), hook);
        }
    }

    #[test]
    fn relation_joined_changed_departed() {
        let ctx = Context::from_env(
            &rel_env("cluster-relation-joined", "zookeeper/0", None),
            None,
        )
        .unwrap();
        assert!(
            matches!(&ctx.event, Event::Relation { phase: RelationPhase::Joined, remote_unit: Some(u), .. } if u.as_str() == "zookeeper/0")
        );
        let ctx = Context::from_env(
            &rel_env(
                "cluster-relation-departed",
                "zookeeper/0",
                Some("zookeeper/0"),
            ),
            None,
        )
        .unwrap();
        assert!(
            matches!(&ctx.event, Event::Relation { phase: RelationPhase::Departed, departing_unit: Some(u), .. } if u.as_str() == "zookeeper/0")
        );
        // The dying unit itself sees departing == its own name.
        let ctx = Context::from_env(
            &rel_env(
                "cluster-relation-departed",
                "zookeeper/0",
                Some("zookeeper/2"),
            ),
            None,
        )
        .unwrap();
        assert!(
            matches!(&ctx.event, Event::Relation { departing_unit: Some(u), .. } if *u == ctx.unit)
        );
    }

    #[test]
    fn departed_without_departing_unit_is_an_error() {
        let err = Context::from_env(
            &rel_env("cluster-relation-departed", "zookeeper/0", None),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ContextError::Missing {
                var: "JUJU_DEPARTING_UNIT",
                hook: "cluster-relation-departed".into()
            }
        );
        assert!(err.to_string().contains("JUJU_DEPARTING_UNIT"));
    }

    #[test]
    fn every_endpoint_and_phase() {
        for ep in [
            "cluster",
            "restart",
            "upgrade",
            "zookeeper",
            "cos-agent",
            "certificates",
            "s3-credentials",
        ] {
            for (phase, s) in RelationPhase::ALL {
                let hook = format!("{ep}-relation-{s}");
                let dep = (phase == RelationPhase::Departed).then_some("other/1");
                let env = with(
                    rel_env(&hook, "other/1", dep),
                    &[("JUJU_RELATION_ID", &format!("{ep}:11"))],
                );
                let ctx = Context::from_env(&env, None).unwrap();
                match &ctx.event {
                    Event::Relation {
                        endpoint,
                        phase: p,
                        id,
                        ..
                    } => {
                        assert_eq!(endpoint, ep);
                        assert_eq!(*p, phase);
                        assert_eq!(*id, RelationId(11));
                    }
                    e => panic!("{hook}: {e:?}"),
                }
                assert_eq!(ctx.event.hook_name(), hook);
            }
        }
    }

    #[test]
    fn malformed_relation_id_and_remote_unit() {
        let env = with(
            rel_env("cluster-relation-changed", "zookeeper/0", None),
            &[("JUJU_RELATION_ID", "cluster:x")],
        );
        let err = Context::from_env(&env, None).unwrap_err();
        assert!(
            matches!(
                err,
                ContextError::Malformed {
                    var: "JUJU_RELATION_ID",
                    ..
                }
            ),
            "{err}"
        );
        let env = rel_env("cluster-relation-changed", "not-a-unit", None);
        let err = Context::from_env(&env, None).unwrap_err();
        assert!(
            matches!(
                err,
                ContextError::Malformed {
                    var: "JUJU_REMOTE_UNIT",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn actions_parse_and_need_uuid() {
        let env = with(
            base("actions/get-super-password"),
            &[
                ("JUJU_ACTION_NAME", "get-super-password"),
                ("JUJU_ACTION_UUID", "2"),
                ("JUJU_HOOK_NAME", ""),
            ],
        );
        let ctx = Context::from_env(&env, None).unwrap();
        assert_eq!(
            ctx.event,
            Event::Action {
                name: "get-super-password".into(),
                uuid: "2".into()
            }
        );
        assert!(!ctx.event.deferrable());
        let err = Context::from_env(&base("actions/restart"), None).unwrap_err();
        assert!(matches!(
            err,
            ContextError::Missing {
                var: "JUJU_ACTION_UUID",
                ..
            }
        ));
    }

    #[test]
    fn secret_and_storage_hooks() {
        let env = with(
            base("hooks/secret-changed"),
            &[
                ("JUJU_SECRET_ID", "secret://uuid/abc"),
                ("JUJU_SECRET_LABEL", "cluster.zookeeper.app"),
            ],
        );
        let ctx = Context::from_env(&env, None).unwrap();
        assert_eq!(
            ctx.event,
            Event::Secret {
                phase: SecretPhase::Changed,
                id: "secret://uuid/abc".into(),
                label: Some("cluster.zookeeper.app".into()),
                revision: None
            }
        );
        let env = with(
            base("hooks/secret-remove"),
            &[
                ("JUJU_SECRET_ID", "secret:abc"),
                ("JUJU_SECRET_LABEL", ""),
                ("JUJU_SECRET_REVISION", "4"),
            ],
        );
        let ctx = Context::from_env(&env, None).unwrap();
        assert!(matches!(
            ctx.event,
            Event::Secret {
                phase: SecretPhase::Remove,
                revision: Some(4),
                label: None,
                ..
            }
        ));
        let err = Context::from_env(&base("hooks/secret-changed"), None).unwrap_err();
        assert!(matches!(
            err,
            ContextError::Missing {
                var: "JUJU_SECRET_ID",
                ..
            }
        ));
        let env = with(
            base("hooks/data-storage-attached"),
            &[
                ("JUJU_STORAGE_ID", "data/0"),
                ("JUJU_STORAGE_LOCATION", "/srv/data"),
            ],
        );
        let ctx = Context::from_env(&env, None).unwrap();
        assert_eq!(
            ctx.event,
            Event::Storage {
                name: "data".into(),
                phase: StoragePhase::Attached,
                id: Some("data/0".into()),
                location: Some("/srv/data".into())
            }
        );
        let ctx = Context::from_env(&base("hooks/data-storage-detaching"), None).unwrap();
        assert!(matches!(
            ctx.event,
            Event::Storage {
                phase: StoragePhase::Detaching,
                ..
            }
        ));
    }

    #[test]
    fn unknown_hook_is_an_event_not_an_error() {
        let ctx = Context::from_env(&base("hooks/workload-pebble-ready"), None).unwrap();
        assert_eq!(
            ctx.event,
            Event::Unknown {
                hook: "workload-pebble-ready".into()
            }
        );
    }

    #[test]
    fn argv0_fallback_for_legacy_hooks() {
        let mut env = base("hooks/install");
        env.remove("JUJU_DISPATCH_PATH");
        let ctx = Context::from_env(&env, Some("/charm/hooks/config-changed")).unwrap();
        assert_eq!(ctx.event, Event::ConfigChanged);
        assert_eq!(ctx.dispatch_path, "hooks/config-changed");
        // Run as dispatch or as the binary itself without a dispatch path: refuse, naming the variable.
        let err = Context::from_env(&env, Some("./bin/mycharm")).unwrap_err();
        assert!(matches!(
            Context::from_env(&env, Some("./dispatch")),
            Err(ContextError::Missing { .. })
        ));
        assert!(matches!(
            err,
            ContextError::Missing {
                var: "JUJU_DISPATCH_PATH",
                ..
            }
        ));
    }

    #[test]
    fn no_juju_environment_at_all() {
        let err = Context::from_env(&BTreeMap::new(), Some("mycharm")).unwrap_err();
        assert_eq!(err, ContextError::NotUnderJuju);
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn missing_and_malformed_core_variables_are_named() {
        for var in [
            "JUJU_UNIT_NAME",
            "JUJU_MODEL_NAME",
            "JUJU_MODEL_UUID",
            "JUJU_VERSION",
            "JUJU_CHARM_DIR",
        ] {
            let mut env = base("hooks/install");
            env.remove(var);
            let err = Context::from_env(&env, None).unwrap_err();
            assert!(err.to_string().contains(var), "{var}: {err}");
        }
        let env = with(base("hooks/install"), &[("JUJU_UNIT_NAME", "zookeeper")]);
        assert!(matches!(
            Context::from_env(&env, None).unwrap_err(),
            ContextError::Malformed {
                var: "JUJU_UNIT_NAME",
                ..
            }
        ));
        let env = with(base("hooks/install"), &[("JUJU_DISPATCH_PATH", "install")]);
        assert!(matches!(
            Context::from_env(&env, None).unwrap_err(),
            ContextError::Malformed {
                var: "JUJU_DISPATCH_PATH",
                ..
            }
        ));
        // CHARM_DIR (legacy) is accepted in place of JUJU_CHARM_DIR.
        let mut env = base("hooks/install");
        let dir = env.remove("JUJU_CHARM_DIR").unwrap();
        env.insert("CHARM_DIR".into(), dir);
        assert!(Context::from_env(&env, None).is_ok());
    }

    #[test]
    fn relation_id_parse_takes_last_integer() {
        assert_eq!(RelationId::parse("7"), Some(RelationId(7)));
        assert_eq!(RelationId::parse("db:7"), Some(RelationId(7)));
        assert_eq!(RelationId::parse("a:b:12"), Some(RelationId(12)));
        assert_eq!(RelationId::parse("db:"), None);
        assert_eq!(RelationId::parse("db:x"), None);
    }

    #[test]
    fn events_roundtrip_through_json() {
        let e = Event::Relation {
            endpoint: "cluster".into(),
            phase: RelationPhase::Departed,
            id: RelationId(3),
            remote_app: Some("zookeeper".into()),
            remote_unit: UnitName::parse("zookeeper/1"),
            departing_unit: UnitName::parse("zookeeper/1"),
        };
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&s).unwrap(), e);
    }
}
