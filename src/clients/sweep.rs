//! The one-time repair of a deployment that predates the ownership record (pure): from every
//! znode's ACL, the live client relations and their requests, and the chroots the previous
//! version remembered (`chroot-<id>` in the credentials secret), the record to start from and
//! the ACLs to repair.
//!
//! - A live relation's current request that exists, and whose ACL names its user or which the
//!   charm published to it as its `database`, is its grant (given back in full when its ACL lost
//!   the user); failing that, the chroot the charm published to it, when it still names it (a
//!   changed request the previous version refused). Unless it overlaps another such claim: overlapping claims are recorded as
//!   conflicts (served to nobody, left as they are, reported) and never resolved by guessing.
//! - The first chroot the previous version remembered for a live relation, if it is another path
//!   that names no other live relation, is kept for the application (it moved away from it).
//! - Every existing ancestor of a recorded path is a parent (the previous version created them).
//! - Every node whose ACL names a client user (`sasl` or `digest` `relation-<id>`) outside that
//!   relation's grant is repaired: inside a grant, the entries naming other relations are
//!   dropped; elsewhere the node is reduced to the super user. Inside a conflict only entries of
//!   relations that are gone are dropped.
//! - A node outside every recorded chroot that lets everyone write (planted under the old open
//!   root) becomes readable by everyone and writable by the super user only.

use std::collections::{BTreeMap, BTreeSet};

use super::ownership::{Claim, KeptWhy, Owned, Ownership, State};
use super::plan::Client;
use super::request::Parsed;
use super::{locked, named_relations, super_only};
use crate::juju::RelationId;
use crate::zk::acl::{AclEntry, Perms};
use crate::zk::path::{ancestors, is_within, overlaps};

pub struct Input<'a> {
    /// Every znode (but `/`, `/zookeeper` and the charm's own) with its ACL.
    pub tree: &'a [(String, Vec<AclEntry>)],
    pub clients: &'a [Client],
    /// `chroot-<id>` values the previous version kept in the credentials secret.
    pub remembered: &'a BTreeMap<u32, String>,
    /// The `database` the charm published to each live relation.
    pub published: &'a BTreeMap<u32, String>,
    pub now: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    pub record: Ownership,
    /// Nodes and the ACL each gets.
    pub repairs: Vec<(String, Vec<AclEntry>)>,
    /// Grants whose chroot lost the relation's ACL: given back (every node of the tree).
    pub regrant: Vec<(String, RelationId)>,
    /// What an operator should read in the log (conflicts, repairs).
    pub notes: Vec<String>,
}

pub fn sweep(input: &Input<'_>) -> Sweep {
    let acls: BTreeMap<&str, &Vec<AclEntry>> =
        input.tree.iter().map(|(p, a)| (p.as_str(), a)).collect();
    let live: BTreeMap<u32, &Client> = input.clients.iter().map(|c| (c.relation.0, c)).collect();
    let mut notes = Vec::new();

    // Claims: each live relation's current request when it exists and names the relation (or
    // the charm published it to it); else the chroot the charm published to it, when it exists
    // and names it (the request changed and was refused: the client works there still).
    let mut claims: Vec<(String, &Client, String)> = Vec::new();
    for c in input.clients {
        let published = input.published.get(&c.relation.0).map(String::as_str);
        let names = |path: &str| {
            acls.get(path)
                .is_some_and(|a| named_relations(a).contains(&c.relation.0))
        };
        let requested = match &c.request {
            Parsed::Valid(req) => Some((req.chroot.as_str(), req.roles.as_str())),
            _ => None,
        };
        let claim = match (requested, published) {
            (Some((path, roles)), _)
                if acls.contains_key(path) && (names(path) || published == Some(path)) =>
            {
                Some((path, roles))
            }
            (_, Some(path)) if names(path) => Some((path, "")),
            _ => None,
        };
        if let Some((path, roles)) = claim {
            claims.push((path.to_string(), c, roles.to_string()));
        }
    }
    let mut regrant = Vec::new();
    let mut record = Ownership::default();
    for (path, c, roles) in &claims {
        let rivals: Vec<String> = claims
            .iter()
            .filter(|(p, o, _)| o.relation != c.relation && overlaps(p, path))
            .map(|(p, o, _)| format!("{p} (relation {}, {})", o.relation, o.app))
            .collect();
        if rivals.is_empty() {
            record.chroots.insert(
                path.clone(),
                Owned::granted(&c.app, c.relation, roles, input.now),
            );
            if acls
                .get(path.as_str())
                .is_some_and(|a| !named_relations(a).contains(&c.relation.0))
            {
                notes.push(format!(
                    "{path} was published to relation {} ({}) but lost its ACL: given back",
                    c.relation, c.app
                ));
                regrant.push((path.clone(), c.relation));
            }
        } else {
            notes.push(format!(
                "conflict: {path} of relation {} ({}) overlaps {}; left as it is, served to \
                 neither until all but one of these relations are removed",
                c.relation,
                c.app,
                rivals.join(", ")
            ));
            record.conflicts.insert(
                path.clone(),
                Claim {
                    app: c.app.clone(),
                    relation: c.relation.0,
                },
            );
        }
    }

    // First chroots the previous version remembered, for relations that moved away from them.
    for (rel, path) in input.remembered {
        let Some(c) = live.get(rel) else { continue };
        let Some(node) = acls.get(path.as_str()) else {
            continue;
        };
        let others = named_relations(node).into_iter().any(|r| r != *rel);
        let taken = record
            .chroots
            .keys()
            .chain(record.conflicts.keys())
            .any(|p| overlaps(p, path));
        if !others && !taken {
            let mut kept = Owned::granted(&c.app, RelationId(*rel), "", input.now);
            kept.state = State::Kept;
            kept.why = Some(KeptWhy::Moved);
            record.chroots.insert(path.clone(), kept);
        }
    }

    let recorded: Vec<String> = record
        .chroots
        .keys()
        .chain(record.conflicts.keys())
        .cloned()
        .collect();
    for path in &recorded {
        for a in ancestors(path) {
            if acls.contains_key(a.as_str()) && !recorded.contains(&a) {
                record.parents.insert(a);
            }
        }
    }

    // Repairs.
    let granted: Vec<(&str, u32)> = record
        .chroots
        .iter()
        .filter(|(_, o)| o.state == State::Granted)
        .map(|(p, o)| (p.as_str(), o.relation))
        .collect();
    let conflicted: Vec<&String> = record.conflicts.keys().collect();
    let live_ids: BTreeSet<u32> = live.keys().copied().collect();
    let recorded_trees: Vec<&String> = record
        .chroots
        .keys()
        .chain(conflicted.iter().copied())
        .collect();
    let mut repairs = Vec::new();
    let (mut reduced, mut stripped, mut opened) = (0, 0, 0);
    for (node, node_acls) in input.tree {
        let named = named_relations(node_acls);
        let in_conflict = conflicted.iter().any(|c| is_within(node, c));
        // Who may stay named on this node: the relation granted the tree it is in; inside a
        // conflict, every live claimant (left as it is, never resolved by guessing).
        let owner = granted
            .iter()
            .find(|(p, _)| is_within(node, p))
            .map(|(_, r)| *r);
        let allowed = |r: &u32| {
            if in_conflict {
                live_ids.contains(r)
            } else {
                Some(*r) == owner
            }
        };
        let stray: BTreeSet<u32> = named.iter().copied().filter(|r| !allowed(r)).collect();
        let world_writes = node_acls
            .iter()
            .any(|e| e.scheme == "world" && e.perms != Perms::READ && e.perms != Perms::NONE);
        let outside = !recorded_trees.iter().any(|p| is_within(node, p));
        if !stray.is_empty() {
            let kept: Vec<AclEntry> = if owner.is_some() || in_conflict {
                node_acls
                    .iter()
                    .filter(|e| {
                        named_relations(std::slice::from_ref(*e))
                            .iter()
                            .all(|r| !stray.contains(r))
                    })
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            if kept.is_empty() {
                reduced += 1;
                repairs.push((node.clone(), super_only()));
            } else {
                stripped += 1;
                repairs.push((node.clone(), kept));
            }
        } else if outside && world_writes {
            // Planted under the old open root: readable, writable by nobody but the charm.
            opened += 1;
            repairs.push((node.clone(), locked()));
        }
    }
    if reduced + stripped > 0 {
        notes.push(format!(
            "{} znode(s) granted client users outside their current chroot: {reduced} reduced to \
             the super user, {stripped} had foreign entries removed",
            reduced + stripped
        ));
    }
    if opened > 0 {
        notes.push(format!(
            "{opened} znode(s) outside every client chroot were writable by everyone: now \
             readable by everyone, writable by the super user only"
        ));
    }
    Sweep {
        record,
        repairs,
        regrant,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::zk::acl::Perms;

    fn client(rel: u32, app: &str, path: &str) -> Client {
        Client::asking(rel, app, path)
    }

    fn names(rel: u32) -> Vec<AclEntry> {
        let user = format!("relation-{rel}");
        vec![
            AclEntry::sasl(&user, Perms::ALL),
            AclEntry::digest(&user, &Secret::new("pw".into()), Perms::ALL),
        ]
    }

    fn with_world(mut acls: Vec<AclEntry>) -> Vec<AclEntry> {
        acls.push(AclEntry::world_anyone(Perms::READ));
        acls
    }

    #[test]
    fn the_old_state_of_issue_11_is_repaired() {
        let tree: Vec<(String, Vec<AclEntry>)> = vec![
            // kafka (relation 7) moved /first -> /second; the old charm left /first granted.
            ("/first".into(), names(7)),
            ("/first/data".into(), names(7)),
            ("/second".into(), names(7)),
            ("/second/brokers".into(), with_world(names(7))),
            // A removed client's chroot still granting it.
            ("/gone".into(), names(3)),
            ("/gone/x".into(), names(3)),
            // Planted by relation 8 outside its chroot.
            ("/victim-chroot".into(), names(8)),
            ("/victim-chroot/config".into(), names(8)),
            ("/app8".into(), names(8)),
            // Operator data and a parent.
            ("/probe-data".into(), super_only()),
            ("/team".into(), super_only()),
            ("/team/app9".into(), names(9)),
            // A stray entry for relation 8 inside relation 9's chroot.
            ("/team/app9/shared".into(), [names(9), names(8)].concat()),
        ];
        let clients = [
            client(7, "kafka", "/second"),
            client(8, "app8", "/app8"),
            client(9, "app9", "/team/app9"),
        ];
        let remembered: BTreeMap<u32, String> = [(7, "/first".to_string())].into();
        let s = sweep(&Input {
            tree: &tree,
            clients: &clients,
            remembered: &remembered,
            published: &[(9, "/team/app9".to_string())].into(),
            now: "t",
        });
        assert!(s.regrant.is_empty());
        let summary: Vec<String> = s
            .record
            .chroots
            .iter()
            .map(|(p, o)| format!("{p}:{:?}:{}", o.state, o.app))
            .collect();
        assert_eq!(
            summary,
            [
                "/app8:Granted:app8",
                "/first:Kept:kafka",
                "/second:Granted:kafka",
                "/team/app9:Granted:app9"
            ]
        );
        assert_eq!(
            s.record.parents.iter().collect::<Vec<_>>(),
            ["/team"],
            "existing ancestors of recorded chroots"
        );
        let repaired: BTreeMap<&str, String> = s
            .repairs
            .iter()
            .map(|(p, a)| {
                (
                    p.as_str(),
                    a.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                )
            })
            .collect();
        let sup = "sasl:super:cdrwa".to_string();
        assert_eq!(repaired["/first"], sup);
        assert_eq!(repaired["/first/data"], sup);
        assert_eq!(repaired["/gone"], sup);
        assert_eq!(repaired["/gone/x"], sup);
        assert_eq!(repaired["/victim-chroot"], sup);
        assert_eq!(repaired["/victim-chroot/config"], sup);
        assert!(
            repaired["/team/app9/shared"].contains("relation-9")
                && !repaired["/team/app9/shared"].contains("relation-8"),
            "{}",
            repaired["/team/app9/shared"]
        );
        for untouched in [
            "/second",
            "/second/brokers",
            "/app8",
            "/probe-data",
            "/team/app9",
        ] {
            assert!(!repaired.contains_key(untouched), "{untouched}");
        }
        assert!(s.record.check().is_ok());
        assert!(s.record.conflicts.is_empty());
    }

    #[test]
    fn overlapping_claims_are_conflicts_left_as_they_are() {
        let tree: Vec<(String, Vec<AclEntry>)> = vec![
            ("/nest".into(), names(3)),
            ("/nest/inner".into(), names(4)),
            ("/nest/inner/x".into(), names(3)),
            // A client removed under the old charm: its entries go, even inside a conflict.
            ("/nest/old".into(), [names(3), names(99)].concat()),
        ];
        let clients = [client(3, "a", "/nest"), client(4, "b", "/nest/inner")];
        let s = sweep(&Input {
            tree: &tree,
            clients: &clients,
            remembered: &BTreeMap::new(),
            published: &BTreeMap::new(),
            now: "t",
        });
        assert!(s.record.chroots.is_empty());
        assert_eq!(
            s.record.conflicts.keys().collect::<Vec<_>>(),
            ["/nest", "/nest/inner"]
        );
        let repaired: Vec<&str> = s.repairs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(repaired, ["/nest/old"], "nothing guessed");
        assert!(!s.repairs[0]
            .1
            .iter()
            .any(|e| e.id.starts_with("relation-99")));
        assert!(s.repairs[0].1.iter().any(|e| e.id == "relation-3"));
        assert!(
            s.notes.iter().any(|n| n.contains("conflict")),
            "{:?}",
            s.notes
        );
        assert!(s.record.check().is_ok());
    }

    #[test]
    fn a_chroot_published_to_a_client_but_reduced_by_the_old_bug_is_given_back() {
        // Issue 11, 2: app5 was granted /d1, then app4's removal reduced /d1 to super.
        let tree: Vec<(String, Vec<AclEntry>)> = vec![
            ("/d1".into(), super_only()),
            ("/d1/x".into(), super_only()),
            ("/ops".into(), super_only()),
        ];
        let clients = [client(5, "app5", "/d1"), client(6, "nosy", "/ops")];
        let s = sweep(&Input {
            tree: &tree,
            clients: &clients,
            remembered: &BTreeMap::new(),
            published: &[(5, "/d1".to_string())].into(),
            now: "t",
        });
        assert_eq!(s.record.chroots.keys().collect::<Vec<_>>(), ["/d1"]);
        assert_eq!(s.regrant, [("/d1".to_string(), RelationId(5))]);
    }

    #[test]
    fn a_client_whose_changed_request_was_refused_keeps_the_chroot_it_works_in() {
        // Relation 7 was given /a, then asked for /shared/x (refused: relation 4 held /shared).
        let tree: Vec<(String, Vec<AclEntry>)> = vec![
            ("/a".into(), names(7)),
            ("/a/data".into(), names(7)),
            ("/shared".into(), names(4)),
        ];
        let clients = [
            client(7, "kafka", "/shared/x"),
            client(4, "other", "/shared"),
        ];
        let s = sweep(&Input {
            tree: &tree,
            clients: &clients,
            remembered: &BTreeMap::new(),
            published: &[(7, "/a".to_string()), (4, "/shared".to_string())].into(),
            now: "t",
        });
        assert_eq!(
            s.record.chroots.keys().collect::<Vec<_>>(),
            ["/a", "/shared"]
        );
        assert!(s.repairs.is_empty(), "{:?}", s.repairs);
    }

    #[test]
    fn a_fresh_deployment_sweeps_to_an_empty_record() {
        let s = sweep(&Input {
            tree: &[],
            clients: &[],
            remembered: &BTreeMap::new(),
            published: &BTreeMap::new(),
            now: "t",
        });
        assert_eq!(s.record, Ownership::default());
        assert!(s.repairs.is_empty() && s.notes.is_empty());
    }
}
