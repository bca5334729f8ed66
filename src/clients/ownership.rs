//! Who owns which znode: the record every grant, revocation and deletion acts on (pure).
//!
//! The leader keeps it as JSON in the peer application bag under [`KEY`], so every future leader
//! reads it in the same `relation-get` it already makes, and an operator sees it with
//! `juju show-unit` (the peer relation's application data). Nothing in it is secret.
//!
//! ```json
//! {"version": 1,
//!  "chroots": {"/kafka": {"app": "kafka", "relation": 7, "roles": "cdrwa",
//!                         "state": "granted", "since": "2026-11-29T10:42:18Z"},
//!              "/old":   {"app": "kafka", "relation": 7, "roles": "cdrwa",
//!                         "state": "kept", "why": "moved", "since": "..."}},
//!  "parents": ["/team"],
//!  "conflicts": {"/nest": {"app": "a", "relation": 3}, "/nest/inner": {"app": "b", "relation": 4}}}
//! ```
//!
//! - `chroots`: every chroot the charm ever gave out and has not let go of. `granted`: the
//!   relation's user has its ACL on it (one per relation); `revoking`: no longer the relation's,
//!   its ACL is being reduced (a step that did not finish in the hook that began it); `kept`: the
//!   data stays with an ACL reduced to the super user, reserved for an application of the same
//!   name (`why`: `moved` when the relation asked for another chroot, `removed` when it left);
//!   `deleting`: the tree is being deleted (the relation left under
//!   `client-znode-policy=delete`).
//! - `parents`: znodes the charm created above chroots (readable by all, writable by none).
//! - `conflicts`: claims found by the one-time repair sweep that overlap each other; none of them
//!   is served until the operator removes all but one of the relations (never resolved by
//!   guessing).
//!
//! No two chroots, claims or a chroot and a claim overlap; a parent is never a chroot; a
//! relation is granted at most one chroot ([`Ownership::check`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::request::Chroot;
use crate::juju::RelationId;
use crate::zk::path::overlaps;

/// The peer app bag key.
pub const KEY: &str = "client-znodes";
pub const VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Granted,
    /// No longer the relation's: its ACL is being reduced to super (then `kept`).
    Revoking,
    Kept,
    Deleting,
}

/// Why a chroot is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeptWhy {
    /// The relation asked for another chroot (it did not leave).
    Moved,
    /// The relation was removed under `client-znode-policy=keep`.
    Removed,
}

/// The owner of one chroot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    pub app: String,
    pub relation: u32,
    #[serde(default)]
    pub roles: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<KeptWhy>,
    /// When it entered this state (UTC, RFC 3339).
    #[serde(default)]
    pub since: String,
}

impl Owned {
    pub fn granted(app: &str, relation: RelationId, roles: &str, since: &str) -> Owned {
        Owned {
            app: app.to_string(),
            relation: relation.0,
            roles: roles.to_string(),
            state: State::Granted,
            why: None,
            since: since.to_string(),
        }
    }

    pub fn is_granted_to(&self, relation: RelationId) -> bool {
        self.state == State::Granted && self.relation == relation.0
    }

    /// "granted to kafka (relation 7)", "kept for kafka after its removal", ...
    pub fn describe(&self) -> String {
        match (self.state, self.why) {
            (State::Granted, _) => format!(
                "granted to application {} (relation {})",
                self.app, self.relation
            ),
            (State::Kept, Some(KeptWhy::Moved)) => format!(
                "kept for application {} since it asked for another chroot",
                self.app
            ),
            (State::Kept, _) => format!("kept for application {} after its removal", self.app),
            (State::Revoking, _) => format!(
                "being taken back from application {} (relation {})",
                self.app, self.relation
            ),
            (State::Deleting, _) => format!("being deleted after application {} left", self.app),
        }
    }
}

/// One side of a conflict found by the repair sweep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub app: String,
    pub relation: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub version: u32,
    #[serde(default)]
    pub chroots: BTreeMap<String, Owned>,
    #[serde(default)]
    pub parents: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conflicts: BTreeMap<String, Claim>,
}

impl Default for Ownership {
    fn default() -> Ownership {
        Ownership {
            version: VERSION,
            chroots: BTreeMap::new(),
            parents: BTreeSet::new(),
            conflicts: BTreeMap::new(),
        }
    }
}

/// What the peer app bag holds under [`KEY`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// No record yet: this deployment predates it (or is new); the repair sweep builds it.
    Absent,
    Valid(Ownership),
    /// Not readable (written by a newer version, or edited by hand): the sweep rebuilds it.
    Unreadable(String),
}

impl Stored {
    pub fn parse(raw: Option<&str>) -> Stored {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Stored::Absent;
        };
        match serde_json::from_str::<Ownership>(raw) {
            Ok(o) if o.version == VERSION => match o.check() {
                Ok(()) => Stored::Valid(o),
                Err(e) => Stored::Unreadable(e.to_string()),
            },
            Ok(o) => Stored::Unreadable(format!("unknown version {}", o.version)),
            Err(e) => Stored::Unreadable(e.to_string()),
        }
    }
}

/// A record that breaks the rules above: a bug, never written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("client znode ownership invariant violated: {0}")]
pub struct Violation(pub String);

impl Ownership {
    pub fn to_json(&self) -> String {
        // A struct of strings and maps always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The chroot granted to `relation`, if any.
    pub fn granted_to(&self, relation: RelationId) -> Option<(&str, &Owned)> {
        self.chroots
            .iter()
            .find(|(_, o)| o.is_granted_to(relation))
            .map(|(p, o)| (p.as_str(), o))
    }

    /// Every recorded path that overlaps `path` (equal, inside or around it): chroots first,
    /// then conflict claims, with what holds them.
    pub fn overlapping(&self, path: &Chroot) -> Vec<(String, Holder<'_>)> {
        let mut out: Vec<(String, Holder<'_>)> = self
            .chroots
            .iter()
            .filter(|(p, _)| overlaps(p, path.as_str()))
            .map(|(p, o)| (p.clone(), Holder::Chroot(o)))
            .collect();
        out.extend(
            self.conflicts
                .iter()
                .filter(|(p, _)| overlaps(p, path.as_str()))
                .map(|(p, c)| (p.clone(), Holder::Conflict(c))),
        );
        out
    }

    /// The rules in the module documentation.
    pub fn check(&self) -> Result<(), Violation> {
        let bad = |m: String| Err(Violation(m));
        let mut granted: BTreeMap<u32, &str> = BTreeMap::new();
        let paths: Vec<&str> = self
            .chroots
            .keys()
            .chain(self.conflicts.keys())
            .map(String::as_str)
            .collect();
        for p in &paths {
            if Chroot::parse(p).map(|c| c.as_str() != *p).unwrap_or(true) {
                return bad(format!("{p:?} is not a valid chroot"));
            }
        }
        // Conflict claims overlap each other by definition; nothing else overlaps anything.
        let chroots: Vec<&str> = self.chroots.keys().map(String::as_str).collect();
        for (i, a) in chroots.iter().enumerate() {
            for b in paths.iter().skip(i + 1) {
                if overlaps(a, b) {
                    return bad(format!("{a} and {b} overlap"));
                }
            }
        }
        for (p, o) in &self.chroots {
            if self.parents.contains(p) {
                return bad(format!("{p} is both a chroot and a parent"));
            }
            if o.state == State::Granted {
                if let Some(other) = granted.insert(o.relation, p) {
                    return bad(format!(
                        "relation {} is granted both {other} and {p}",
                        o.relation
                    ));
                }
            }
            if matches!(o.state, State::Kept | State::Revoking) != o.why.is_some() {
                return bad(format!(
                    "{p}: a reason goes with the kept and revoking states only"
                ));
            }
        }
        Ok(())
    }
}

/// What holds a recorded path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder<'a> {
    Chroot(&'a Owned),
    Conflict(&'a Claim),
}

impl fmt::Display for Holder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Chroot(o) => f.write_str(&o.describe()),
            Holder::Conflict(c) => write!(
                f,
                "claimed by application {} (relation {}) in a conflict found when upgrading",
                c.app, c.relation
            ),
        }
    }
}

/// `2026-07-23T10:00:00Z` for a unix time (Howard Hinnant's civil-from-days).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(app: &str, rel: u32, state: State) -> Owned {
        Owned {
            app: app.into(),
            relation: rel,
            roles: "cdrwa".into(),
            state,
            why: (state == State::Kept).then_some(KeptWhy::Moved),
            since: "2026-11-29T00:00:00Z".into(),
        }
    }

    #[test]
    fn stored_record_roundtrips_and_bad_ones_are_named() {
        let mut o = Ownership::default();
        o.chroots
            .insert("/kafka".into(), owned("kafka", 7, State::Granted));
        o.chroots
            .insert("/old".into(), owned("kafka", 7, State::Kept));
        o.parents.insert("/team".into());
        let json = o.to_json();
        assert!(json.contains("\"state\":\"granted\""), "{json}");
        assert!(json.contains("\"why\":\"moved\""), "{json}");
        assert!(
            !json.contains("conflicts"),
            "empty conflicts left out: {json}"
        );
        assert_eq!(Stored::parse(Some(&json)), Stored::Valid(o.clone()));
        assert_eq!(Stored::parse(None), Stored::Absent);
        assert_eq!(Stored::parse(Some("")), Stored::Absent);
        assert!(matches!(
            Stored::parse(Some("{nope")),
            Stored::Unreadable(_)
        ));
        assert!(matches!(
            Stored::parse(Some(r#"{"version":2}"#)),
            Stored::Unreadable(m) if m.contains("version 2")
        ));
        // A record that breaks the rules is not trusted either.
        let mut twice = o.clone();
        twice
            .chroots
            .insert("/other".into(), owned("kafka", 7, State::Granted));
        assert!(matches!(
            Stored::parse(Some(&twice.to_json())),
            Stored::Unreadable(m) if m.contains("granted both")
        ));
    }

    #[test]
    fn invariants() {
        let mut o = Ownership::default();
        o.chroots.insert("/a".into(), owned("x", 1, State::Granted));
        assert!(o.check().is_ok());
        let mut nested = o.clone();
        nested
            .chroots
            .insert("/a/b".into(), owned("y", 2, State::Kept));
        assert!(nested.check().unwrap_err().0.contains("overlap"));
        let mut claim = o.clone();
        claim.conflicts.insert(
            "/a/c".into(),
            Claim {
                app: "z".into(),
                relation: 3,
            },
        );
        assert!(claim.check().is_err());
        let mut parent = o.clone();
        parent.parents.insert("/a".into());
        assert!(parent.check().is_err());
        let mut bad = o.clone();
        bad.chroots.insert("/b/".into(), owned("y", 2, State::Kept));
        assert!(bad.check().unwrap_err().0.contains("not a valid chroot"));
        let mut why = o;
        why.chroots.insert(
            "/c".into(),
            Owned {
                why: None,
                ..owned("y", 2, State::Kept)
            },
        );
        assert!(why.check().is_err());
    }

    #[test]
    fn rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
