//! Client requests on the `zookeeper` relation, parsed and validated (pure).
//!
//! The requirer writes, in its application bag (data_interfaces protocol, as Charmed ZooKeeper):
//! `database` (the chroot; legacy alias `chroot`), optional `extra-user-roles` (letters from
//! `cdrwa`, default all; legacy `chroot-acl`) and optional `requested-secrets` (a JSON list).
//!
//! Validation: a missing leading `/` is added (existing requirers send the app name); `/`,
//! anything under `/zookeeper`, empty segments, `.`/`..` segments, control and other characters
//! ZooKeeper forbids in paths, paths over [`MAX_PATH_LEN`] bytes and unknown role letters are
//! refused with a message saying what is wrong.

use std::collections::BTreeSet;
use std::fmt;

use crate::juju::tools::Databag;
use crate::juju::RelationId;

pub const MAX_PATH_LEN: usize = 1024;
pub const ALL_ROLES: &str = "cdrwa";

/// A validated chroot: absolute, normalised (no trailing `/`), never `/` or under `/zookeeper`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chroot(String);

impl Chroot {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// One of the two contains the other (or they are equal).
    pub fn overlaps(&self, other: &Chroot) -> bool {
        crate::zk::path::overlaps(&self.0, &other.0)
    }

    /// Every ancestor, outermost first (`/a/b/c` -> `/a`, `/a/b`).
    pub fn parents(&self) -> Vec<String> {
        crate::zk::path::ancestors(&self.0)
    }

    pub fn parse(raw: &str) -> Result<Chroot, RequestError> {
        let bad = |why: &str| RequestError::BadChroot {
            value: shown(raw),
            why: why.to_string(),
        };
        if raw.is_empty() {
            return Err(bad("it is empty"));
        }
        let path = if raw.starts_with('/') {
            raw.to_string()
        } else {
            format!("/{raw}")
        };
        if path.len() > MAX_PATH_LEN {
            return Err(bad(&format!("it is longer than {MAX_PATH_LEN} bytes")));
        }
        if let Some((i, c)) = path.chars().enumerate().find(|(_, c)| forbidden_char(*c)) {
            return Err(bad(&format!(
                "it contains the character {c:?} (U+{:04X}, character {i}), which ZooKeeper does not \
                 allow in paths (control characters, U+D800-U+F8FF, U+FFF0-U+FFFF, and anything \
                 beyond U+FFFF such as emoji)",
                c as u32
            )));
        }
        if path == "/" {
            return Err(bad("the root znode cannot be given to a client"));
        }
        let trimmed = path.strip_suffix('/').unwrap_or(&path);
        for seg in trimmed.split('/').skip(1) {
            match seg {
                "" => return Err(bad("it has an empty path segment (//)")),
                "." | ".." => return Err(bad("it has a \".\" or \"..\" segment")),
                _ => {}
            }
        }
        if crate::zk::path::is_within(trimmed, "/zookeeper") {
            return Err(bad("/zookeeper is reserved for ZooKeeper itself"));
        }
        if crate::zk::path::is_within(trimmed, super::CHARM_ROOT) {
            return Err(bad(&format!(
                "{} is reserved for the charm's own bookkeeping",
                super::CHARM_ROOT
            )));
        }
        Ok(Chroot(trimmed.to_string()))
    }
}

impl fmt::Display for Chroot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters ZooKeeper's `PathUtils.validatePath` refuses. It checks Java `char`s (UTF-16 code
/// units): a character beyond U+FFFF is a surrogate pair there, in the refused U+D800-U+F8FF.
fn forbidden_char(c: char) -> bool {
    let u = c as u32;
    u == 0
        || (0x01..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        || u > 0xffff
}

/// A client's value as messages show it: at most 64 characters (statuses stay readable; the
/// log has the rest).
pub fn shown(raw: &str) -> String {
    const MAX: usize = 64;
    let n = raw.chars().count();
    if n <= MAX {
        raw.to_string()
    } else {
        let head: String = raw.chars().take(MAX).collect();
        format!("{head}... ({n} characters)")
    }
}

/// Permission letters, validated and in canonical order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Roles(String);

impl Roles {
    pub fn all() -> Roles {
        Roles(ALL_ROLES.to_string())
    }
    pub fn parse(raw: &str) -> Result<Roles, RequestError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Roles::all());
        }
        let letters: BTreeSet<char> = raw.chars().collect();
        let unknown: String = letters
            .iter()
            .filter(|c| !ALL_ROLES.contains(**c))
            .collect();
        if !unknown.is_empty() {
            return Err(RequestError::BadRoles {
                value: raw.to_string(),
                unknown,
            });
        }
        Ok(Roles(
            ALL_ROLES.chars().filter(|c| letters.contains(c)).collect(),
        ))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("database {value:?} is refused: {why}")]
    BadChroot { value: String, why: String },
    #[error("extra-user-roles {value:?} is refused: unknown letters {unknown:?} (allowed: c, d, r, w, a)")]
    BadRoles { value: String, unknown: String },
    #[error("requested-secrets {value:?} is not a JSON list of field names")]
    BadRequestedSecrets { value: String },
}

/// A valid request from one client relation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub relation: RelationId,
    pub app: String,
    pub chroot: Chroot,
    pub roles: Roles,
    /// `None`: the requirer does not use secrets (everything goes in the databag).
    pub requested_secrets: Option<BTreeSet<String>>,
}

/// What a client relation's remote app bag amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No `database`/`chroot` yet: nothing to do.
    NotRequested,
    Valid(Request),
    Invalid(RequestError),
}

pub fn parse(relation: RelationId, app: &str, bag: &Databag) -> Parsed {
    let get = |k: &str| bag.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(db) = get("database").or_else(|| get("chroot")) else {
        return Parsed::NotRequested;
    };
    let chroot = match Chroot::parse(db) {
        Ok(c) => c,
        Err(e) => return Parsed::Invalid(e),
    };
    let roles = match Roles::parse(
        get("extra-user-roles")
            .or_else(|| get("chroot-acl"))
            .unwrap_or(""),
    ) {
        Ok(r) => r,
        Err(e) => return Parsed::Invalid(e),
    };
    let requested_secrets = match get("requested-secrets") {
        None => None,
        Some(raw) => match serde_json::from_str::<Vec<String>>(raw) {
            Ok(list) => Some(list.into_iter().collect()),
            Err(_) => {
                return Parsed::Invalid(RequestError::BadRequestedSecrets {
                    value: raw.to_string(),
                })
            }
        },
    };
    Parsed::Valid(Request {
        relation,
        app: app.to_string(),
        chroot,
        roles,
        requested_secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(kv: &[(&str, &str)]) -> Databag {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn chroot_normalisation() {
        assert_eq!(Chroot::parse("kafka").unwrap().as_str(), "/kafka");
        assert_eq!(Chroot::parse("/app1").unwrap().as_str(), "/app1");
        assert_eq!(Chroot::parse("/a/b/").unwrap().as_str(), "/a/b");
        assert_eq!(
            Chroot::parse("/zookeeperx").unwrap().as_str(),
            "/zookeeperx"
        );
        assert_eq!(Chroot::parse("/a/b/c").unwrap().parents(), ["/a", "/a/b"]);
    }

    #[test]
    fn bad_chroots_are_refused_with_a_reason() {
        let long = format!("/{}", "x".repeat(MAX_PATH_LEN));
        let table: &[(&str, &str)] = &[
            ("/", "root znode"),
            ("", "empty"),
            ("/zookeeper", "reserved"),
            ("/zookeeper/config", "reserved"),
            ("zookeeper/quota", "reserved"),
            ("/zookeeper-charm", "bookkeeping"),
            ("/zookeeper-charm/journal", "bookkeeping"),
            ("/a//b", "empty path segment"),
            ("//", "empty path segment"),
            ("/a/./b", "\".\" or \"..\""),
            ("/a/..", "\".\" or \"..\""),
            ("/a\nb", "character"),
            ("/a\u{0}b", "character"),
            ("/a\u{7f}", "character"),
            ("/\u{1F600}emoji", "U+1F600, character 1"),
            ("/a\u{E000}", "U+E000"),
            ("/a\u{FFF5}", "U+FFF5"),
            (long.as_str(), "longer than"),
        ];
        for (raw, why) in table {
            let e = Chroot::parse(raw).unwrap_err();
            assert!(e.to_string().contains(why), "{raw:?}: {e}");
            assert!(e.to_string().starts_with("database "), "{e}");
            assert!(e.to_string().len() < 400, "bounded: {e}");
        }
        // What ZooKeeper accepts, the charm accepts.
        for ok in ["/ünïcödé", "/日本語", "/a b", "/a.b", "/...", "/a-_:@b"] {
            assert!(Chroot::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn roles() {
        assert_eq!(Roles::parse("").unwrap().as_str(), "cdrwa");
        assert_eq!(Roles::parse("rw").unwrap().as_str(), "rw");
        assert_eq!(Roles::parse("awr").unwrap().as_str(), "rwa");
        let e = Roles::parse("rwxz").unwrap_err();
        assert_eq!(
            e.to_string(),
            "extra-user-roles \"rwxz\" is refused: unknown letters \"xz\" (allowed: c, d, r, w, a)"
        );
    }

    #[test]
    fn parse_request_with_legacy_keys_and_secrets() {
        let r = RelationId(7);
        assert_eq!(parse(r, "kafka", &bag(&[])), Parsed::NotRequested);
        assert_eq!(
            parse(r, "kafka", &bag(&[("database", "")])),
            Parsed::NotRequested
        );
        match parse(
            r,
            "kafka",
            &bag(&[("chroot", "kafka"), ("chroot-acl", "rw")]),
        ) {
            Parsed::Valid(req) => {
                assert_eq!(req.chroot.as_str(), "/kafka");
                assert_eq!(req.roles.as_str(), "rw");
                assert_eq!(req.requested_secrets, None);
            }
            p => panic!("{p:?}"),
        }
        match parse(
            r,
            "app",
            &bag(&[
                ("database", "/app1"),
                ("requested-secrets", "[\"username\",\"password\"]"),
            ]),
        ) {
            Parsed::Valid(req) => assert_eq!(
                req.requested_secrets,
                Some(["password".to_string(), "username".to_string()].into())
            ),
            p => panic!("{p:?}"),
        }
        assert!(matches!(
            parse(
                r,
                "a",
                &bag(&[("database", "/x"), ("requested-secrets", "nope")])
            ),
            Parsed::Invalid(RequestError::BadRequestedSecrets { .. })
        ));
        assert!(matches!(
            parse(r, "a", &bag(&[("database", "/")])),
            Parsed::Invalid(RequestError::BadChroot { .. })
        ));
        assert!(matches!(
            parse(
                r,
                "a",
                &bag(&[("database", "/x"), ("extra-user-roles", "q")])
            ),
            Parsed::Invalid(RequestError::BadRoles { .. })
        ));
    }

    #[test]
    fn overlap_rules() {
        let c = |s| Chroot::parse(s).unwrap();
        assert!(c("/a").overlaps(&c("/a")));
        assert!(c("/a").overlaps(&c("/a/b")));
        assert!(c("/a/b").overlaps(&c("/a")));
        assert!(!c("/a").overlaps(&c("/ab")));
        assert!(!c("/a/b").overlaps(&c("/a/c")));
    }
}
