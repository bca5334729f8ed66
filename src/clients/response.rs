//! What the leader publishes to a client relation (pure), field for field as Charmed ZooKeeper
//! and data_interfaces do: `username` (`relation-<id>`), `password`, `endpoints` (sorted
//! `host:port` of every started unit), `database` and `chroot` (the granted path), `uris`
//! (endpoints + chroot), `tls` (`enabled`/`disabled`), `tls-ca` (with TLS) and `version`.
//!
//! Fields the requirer lists in `requested-secrets` go into a Juju secret per data_interfaces
//! group (`user`: username, password, uris; `tls`: tls, tls-ca), whose URI the databag carries as
//! `secret-user` / `secret-tls`; everything else goes in the databag itself.

use std::collections::{BTreeMap, BTreeSet};

use super::request::Request;
use crate::juju::tools::Databag;
use crate::juju::RelationId;
use crate::quorum::plan::UnitId;
use crate::restart::UnitRestart;
use crate::secret::Secret;

/// data_interfaces' secret groups and their fields.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("user", &["username", "password", "uris"]),
    ("tls", &["tls", "tls-ca"]),
];

/// Label of the provider-side secret of a group (data_interfaces naming).
pub fn secret_label(app: &str, rel: RelationId, group: &str) -> String {
    format!("{app}.{}.{group}.secret", rel.0)
}

pub fn username(rel: RelationId) -> String {
    super::ClientUser::of(rel).to_string()
}

/// Everything the client needs, before the split into databag and secrets.
pub struct Answer<'a> {
    pub request: &'a Request,
    pub password: &'a Secret,
    /// `host:port` of every started unit.
    pub endpoints: &'a [String],
    pub version: Option<&'a str>,
    pub tls_ca: Option<&'a str>,
}

/// The published form: plain databag fields, and the content of each secret group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub databag: Databag,
    pub secrets: BTreeMap<&'static str, Databag>,
}

/// Whether a client may be answered: every started server's JAAS file holds its user
/// (`relation`), this unit's as its running server loaded it (`mine`), the others' as their
/// `restart` bags say. Before that, a client given its credentials could fail to authenticate to
/// a server that does not know it yet. No started server at all: not yet.
pub fn known_everywhere(
    relation: u32,
    me: UnitId,
    servers: &[UnitId],
    mine: &BTreeSet<u32>,
    others: &BTreeMap<UnitId, UnitRestart>,
) -> bool {
    !servers.is_empty()
        && servers.iter().all(|u| {
            if *u == me {
                mine.contains(&relation)
            } else {
                others.get(u).is_some_and(|s| s.clients.contains(&relation))
            }
        })
}

pub fn endpoints(mut hosts: Vec<String>) -> Vec<String> {
    hosts.sort();
    hosts.dedup();
    hosts
}

pub fn publish(a: &Answer<'_>) -> Published {
    let r = a.request;
    let endpoints = a.endpoints.join(",");
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    fields.insert("username", username(r.relation));
    fields.insert("password", a.password.expose().to_string());
    fields.insert("endpoints", endpoints.clone());
    fields.insert("database", r.chroot.as_str().to_string());
    fields.insert("chroot", r.chroot.as_str().to_string());
    fields.insert("uris", format!("{endpoints}{}", r.chroot));
    fields.insert(
        "tls",
        if a.tls_ca.is_some() {
            "enabled".into()
        } else {
            "disabled".into()
        },
    );
    if let Some(ca) = a.tls_ca {
        fields.insert("tls-ca", ca.to_string());
    }
    if let Some(v) = a.version {
        fields.insert("version", v.to_string());
    }
    let mut secrets: BTreeMap<&'static str, Databag> = BTreeMap::new();
    if let Some(requested) = &r.requested_secrets {
        for (group, members) in GROUPS {
            for f in *members {
                if requested.contains(*f) {
                    if let Some(v) = fields.remove(f) {
                        secrets.entry(group).or_default().insert(f.to_string(), v);
                    }
                }
            }
        }
    }
    let databag = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Published { databag, secrets }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::request::{Chroot, Roles};

    fn req(secrets: Option<&[&str]>) -> Request {
        Request {
            relation: RelationId(7),
            app: "kafka".into(),
            chroot: Chroot::parse("kafka").unwrap(),
            roles: Roles::all(),
            requested_secrets: secrets.map(|s| s.iter().map(|x| x.to_string()).collect()),
        }
    }

    #[test]
    fn a_client_is_answered_only_once_every_started_server_knows_its_user() {
        let restart = |clients: &[u32]| UnitRestart {
            loaded: Some("x".into()),
            clients: clients.iter().copied().collect(),
        };
        let others: BTreeMap<UnitId, UnitRestart> =
            [(1, restart(&[7, 8])), (2, restart(&[8]))].into();
        let mine: BTreeSet<u32> = [7, 8].into();
        let table: [(u32, &[UnitId], &BTreeSet<u32>, bool); 6] = [
            (8, &[0, 1, 2], &mine, true),
            (7, &[0, 1, 2], &mine, false), // unit 2 has not loaded it yet
            (7, &[0, 1], &mine, true),     // unit 2 is not started: not asked
            (9, &[0], &mine, false),       // this unit's server does not know it
            (8, &[0, 3], &mine, false),    // unit 3 published no restart bag yet
            (8, &[], &mine, false),        // no server at all
        ];
        for (rel, servers, mine, want) in table {
            assert_eq!(
                known_everywhere(rel, 0, servers, mine, &others),
                want,
                "relation {rel} on {servers:?}"
            );
        }
    }

    #[test]
    fn plain_databag_without_requested_secrets() {
        let r = req(None);
        let pw = Secret::new("pw".into());
        let eps = endpoints(vec!["10.0.0.2:2181".into(), "10.0.0.1:2181".into()]);
        let p = publish(&Answer {
            request: &r,
            password: &pw,
            endpoints: &eps,
            version: Some("3.8.0"),
            tls_ca: None,
        });
        assert!(p.secrets.is_empty());
        let want: Databag = [
            ("username", "relation-7"),
            ("password", "pw"),
            ("endpoints", "10.0.0.1:2181,10.0.0.2:2181"),
            ("database", "/kafka"),
            ("chroot", "/kafka"),
            ("uris", "10.0.0.1:2181,10.0.0.2:2181/kafka"),
            ("tls", "disabled"),
            ("version", "3.8.0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(p.databag, want);
    }

    #[test]
    fn requested_fields_go_to_their_group_secret() {
        let r = req(Some(&["username", "password", "tls", "tls-ca", "uris"]));
        let pw = Secret::new("pw".into());
        let eps = vec!["10.0.0.1:2181".to_string()];
        let p = publish(&Answer {
            request: &r,
            password: &pw,
            endpoints: &eps,
            version: None,
            tls_ca: None,
        });
        assert_eq!(
            p.secrets["user"].keys().collect::<Vec<_>>(),
            ["password", "uris", "username"]
        );
        assert_eq!(p.secrets["tls"].keys().collect::<Vec<_>>(), ["tls"]);
        assert!(!p.databag.contains_key("password") && !p.databag.contains_key("username"));
        assert_eq!(p.databag["endpoints"], "10.0.0.1:2181");
        assert_eq!(p.databag["database"], "/kafka");
        assert_eq!(
            secret_label("zookeeper", RelationId(7), "user"),
            "zookeeper.7.user.secret"
        );
    }
}
