//! Client tenancy decisions (pure): from the live client relations and their requests, the
//! ownership record ([`super::ownership`]) and what ZooKeeper says about newly requested paths,
//! which znode operations to run, in order, and the record after each.
//!
//! Rules, in the order they apply:
//! 1. **Conflicts** (claims the repair sweep found overlapping): a claim whose relation is gone is
//!    revoked (never the other claims' subtrees; deleted under `client-znode-policy=delete` when
//!    it holds no other claim; left to the claimant around it when it lies inside a live claim);
//!    a claim that no longer overlaps another becomes a grant, every node of its tree given the
//!    relation's ACL (entries of the former claimants go).
//! 2. **Records of relations that are gone**, per policy: `keep` reduces a granted tree to the
//!    super user and keeps it for the application's name; `delete` deletes every tree the
//!    relation held (also those it moved away from). Records kept after a removal stay as they
//!    are whatever the policy says now: changing the policy never deletes data retroactively.
//!    A tree whose revocation did not finish (`revoking`) is revoked again.
//! 3. **Operations started but never recorded** (the journal, [`Started`]: written to ZooKeeper
//!    before each grant and each move's revocation, so any later leader finds what a hook that
//!    died before its record was committed did): one the record accounts for is done; a grant the
//!    relation still asks for is taken up by rule 4, any other is taken back (reduced to super,
//!    kept for the application); a revocation of a chroot the record still grants to the live
//!    relation is undone (its ACL given back), since the move it belonged to never happened.
//! 4. **Requests**, lowest relation id first. A request equal to the relation's grant changes
//!    nothing (or only the roles, on the chroot node). A new path is granted only if it is no
//!    parent the charm created and overlaps no recorded path (a chroot of any state, also one
//!    granted earlier in the same plan, a conflict claim) except a chroot of that exact path kept
//!    for an application of the same name (its data given back). A path not in the record needs ZooKeeper's facts first
//!    ([`Plan::needs_facts`]): it is created when it does not exist under ancestors the charm
//!    created (or that do not exist); an existing one is taken only when the journal says this
//!    relation's grant of it was started and its ACL names exactly this relation. Anything else is refused with the reason; the relation
//!    keeps the chroot it has ("the last working configuration stays in force").
//! 5. **One chroot per relation**: once the new chroot is granted, the previous one is revoked
//!    (data kept whatever the policy says: the client did not leave) and kept for the application.
//!
//! Every plan is checked ([`check`]): each record is valid, every operation acts only on paths the
//! record gives to that relation (grants) or held before or the journal names (revocations,
//! deletions), and no gone relation keeps a grant.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ownership::{Claim, KeptWhy, Owned, Ownership, State, Violation};
use super::request::{Chroot, Parsed, Request, Roles};
use super::{is_locked, named_relations};
use crate::juju::RelationId;
use crate::state::config::ZnodePolicy;
use crate::zk::acl::AclEntry;
use crate::zk::path::{is_within, overlaps};

/// A live client relation and what its application asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub relation: RelationId,
    pub app: String,
    pub request: Parsed,
}

impl Client {
    /// A client whose application bag asks for `database=path` (tests and scenarios).
    pub fn asking(relation: u32, app: &str, path: &str) -> Client {
        let bag = [("database".to_string(), path.to_string())].into();
        Client {
            relation: RelationId(relation),
            app: app.to_string(),
            request: super::request::parse(RelationId(relation), app, &bag),
        }
    }
}

/// An operation the charm started that changes whom a path grants (an entry of the journal in
/// ZooKeeper, written before the operation, removed once the record accounts for it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Started {
    pub op: StartedOp,
    pub path: String,
    pub relation: u32,
    pub app: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartedOp {
    /// The path was given to the relation.
    Grant,
    /// The path was taken back from the relation, which moved to another chroot.
    Revoke,
}

/// What ZooKeeper says about a requested path the record does not give to its requester.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathFacts {
    pub exists: bool,
    /// Client relations its ACL names (`sasl` or `digest` user `relation-<id>`).
    pub named: BTreeSet<u32>,
    /// Its ancestors that exist, outermost first, each with whether its ACL is the one the charm
    /// gives the parents it creates.
    pub ancestors: Vec<(String, bool)>,
}

impl PathFacts {
    /// From the ACLs of `path` and of its ancestors (`None`: the node does not exist; a path
    /// not asked about counts as missing).
    pub fn from_acls(path: &str, acls: &BTreeMap<String, Option<Vec<AclEntry>>>) -> PathFacts {
        let of = |p: &str| acls.get(p).and_then(Option::as_ref);
        PathFacts {
            exists: of(path).is_some(),
            named: of(path).map(|a| named_relations(a)).unwrap_or_default(),
            ancestors: crate::zk::path::ancestors(path)
                .into_iter()
                .filter_map(|a| {
                    let locked = is_locked(of(&a)?);
                    Some((a, locked))
                })
                .collect(),
        }
    }
}

pub struct Input<'a> {
    /// Every live client relation (sorted or not).
    pub clients: &'a [Client],
    pub record: &'a Ownership,
    /// Facts for paths the last plan asked for ([`Plan::needs_facts`]).
    pub facts: &'a BTreeMap<String, PathFacts>,
    /// The grant journal as ZooKeeper holds it (empty when not read: nothing was started since
    /// the last hook that emptied it).
    pub journal: &'a [Started],
    pub policy: ZnodePolicy,
    /// Now, for the record's `since` (RFC 3339).
    pub now: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Give `path` to the relation: create it (and missing parents) when it does not exist;
    /// when `existing` (a kept chroot given back, an interrupted grant taken up), set the
    /// relation's ACL on every node of its tree.
    Grant {
        path: String,
        relation: RelationId,
        roles: Roles,
        existing: bool,
    },
    /// The relation's roles changed: its ACL on the chroot node.
    SetRoles {
        path: String,
        relation: RelationId,
        roles: Roles,
    },
    /// Reduce every node of the tree to the super user, top down, leaving the subtrees `except`.
    Revoke { path: String, except: Vec<String> },
    /// Reduce the tree to the super user, then delete it.
    Delete { path: String },
}

impl Op {
    pub fn path(&self) -> &str {
        match self {
            Op::Grant { path, .. }
            | Op::SetRoles { path, .. }
            | Op::Revoke { path, .. }
            | Op::Delete { path } => path,
        }
    }
}

/// One operation and the record once it succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    pub after: Ownership,
    /// The record to keep when the operation fails part way (a deletion under way).
    pub if_failed: Option<Ownership>,
    /// Written to the journal before the operation runs.
    pub journal: Option<Started>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub relation: RelationId,
    pub app: String,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// The record once every step succeeded.
    pub record: Ownership,
    pub refusals: Vec<Refusal>,
    /// Requested paths to ask ZooKeeper about before they can be decided.
    pub needs_facts: BTreeSet<String>,
    /// Journal entries to remove once every step succeeded (confirmed by the record, or taken
    /// back).
    pub journal_done: Vec<Started>,
}

impl Plan {
    /// The relations a grant in this plan needs a password for.
    pub fn granting(&self) -> BTreeSet<RelationId> {
        self.steps
            .iter()
            .filter_map(|s| match &s.op {
                Op::Grant { relation, .. } | Op::SetRoles { relation, .. } => Some(*relation),
                _ => None,
            })
            .collect()
    }
}

struct Planner<'a> {
    input: &'a Input<'a>,
    live: BTreeMap<u32, &'a Client>,
    rec: Ownership,
    steps: Vec<Step>,
    refusals: Vec<Refusal>,
    needs_facts: BTreeSet<String>,
    journal_done: Vec<Started>,
}

pub fn plan(input: &Input<'_>) -> Result<Plan, Violation> {
    let mut p = Planner {
        input,
        live: input.clients.iter().map(|c| (c.relation.0, c)).collect(),
        rec: input.record.clone(),
        steps: Vec::new(),
        refusals: Vec::new(),
        needs_facts: BTreeSet::new(),
        journal_done: Vec::new(),
    };
    p.conflicts();
    p.journal_confirmed();
    p.gone();
    p.journal();
    p.requests();
    p.journal_leftovers();
    let plan = Plan {
        steps: p.steps,
        record: p.rec,
        refusals: p.refusals,
        needs_facts: p.needs_facts,
        journal_done: p.journal_done,
    };
    check(input, &plan)?;
    Ok(plan)
}

impl Planner<'_> {
    fn push(&mut self, op: Op, if_failed: Option<Ownership>) {
        self.steps.push(Step {
            op,
            after: self.rec.clone(),
            if_failed,
            journal: None,
        });
    }

    /// [`Self::push`] of an operation written to the journal first.
    fn push_journaled(&mut self, op: Op, kind: StartedOp, c: &Client) {
        let journal = Started {
            op: kind,
            path: op.path().to_string(),
            relation: c.relation.0,
            app: c.app.clone(),
        };
        self.steps.push(Step {
            op,
            after: self.rec.clone(),
            if_failed: None,
            journal: Some(journal),
        });
    }

    fn is_live(&self, relation: u32) -> bool {
        self.live.contains_key(&relation)
    }

    fn delete_policy(&self) -> bool {
        self.input.policy == ZnodePolicy::Delete
    }

    /// Rule 1.
    fn conflicts(&mut self) {
        let gone: Vec<String> = self
            .rec
            .conflicts
            .iter()
            .filter(|(_, c)| !self.is_live(c.relation))
            .map(|(p, _)| p.clone())
            .collect();
        for path in &gone {
            self.rec.conflicts.remove(path);
        }
        for path in gone {
            // Inside a live claim: that claimant gets the whole tree when it is granted.
            if self.rec.conflicts.keys().any(|p| is_within(&path, p)) {
                continue;
            }
            let holds: Vec<String> = self
                .rec
                .conflicts
                .keys()
                .filter(|p| is_within(p, &path))
                .cloned()
                .collect();
            if holds.is_empty() && self.delete_policy() {
                self.push(Op::Delete { path }, None);
            } else {
                if !holds.is_empty() {
                    // It holds other claims: what is left of it is a parent of theirs.
                    self.rec.parents.insert(path.clone());
                }
                self.push(
                    Op::Revoke {
                        path,
                        except: holds,
                    },
                    None,
                );
            }
        }
        let alone: Vec<(String, Claim)> = self
            .rec
            .conflicts
            .iter()
            .filter(|(p, _)| self.rec.conflicts.keys().filter(|q| overlaps(p, q)).count() == 1)
            .map(|(p, c)| (p.clone(), c.clone()))
            .collect();
        for (path, claim) in alone {
            self.rec.conflicts.remove(&path);
            let relation = RelationId(claim.relation);
            let roles = match self.live.get(&claim.relation).map(|c| &c.request) {
                Some(Parsed::Valid(r)) => r.roles.clone(),
                _ => Roles::all(),
            };
            self.rec.chroots.insert(
                path.clone(),
                Owned::granted(&claim.app, relation, roles.as_str(), self.input.now),
            );
            // Every node of the tree gets its ACL: entries of the former claimants go.
            self.push(
                Op::Grant {
                    path,
                    relation,
                    roles,
                    existing: true,
                },
                None,
            );
        }
    }

    /// Rule 2, and unfinished revocations.
    fn gone(&mut self) {
        let records: Vec<(String, Owned)> = self
            .rec
            .chroots
            .iter()
            .map(|(p, o)| (p.clone(), o.clone()))
            .collect();
        for (path, o) in records {
            let live = self.is_live(o.relation);
            let delete = !live && self.delete_policy();
            match o.state {
                State::Kept if live || o.why == Some(KeptWhy::Removed) => {}
                State::Granted if live => {}
                State::Deleting => self.delete(&path),
                // Gone under `delete`: every tree it held.
                State::Granted | State::Revoking | State::Kept if delete => self.delete(&path),
                State::Kept => self.set(&path, State::Kept, Some(KeptWhy::Removed)),
                State::Granted | State::Revoking => {
                    let why = if live {
                        o.why.unwrap_or(KeptWhy::Moved)
                    } else {
                        KeptWhy::Removed
                    };
                    self.set(&path, State::Kept, Some(why));
                    self.push(
                        Op::Revoke {
                            path,
                            except: Vec::new(),
                        },
                        None,
                    );
                }
            }
        }
    }

    fn set(&mut self, path: &str, state: State, why: Option<KeptWhy>) {
        let now = self.input.now.to_string();
        if let Some(o) = self.rec.chroots.get_mut(path) {
            o.state = state;
            o.why = why;
            o.since = now;
        }
    }

    fn delete(&mut self, path: &str) {
        let mut deleting = self.rec.clone();
        if let Some(o) = deleting.chroots.get_mut(path) {
            if o.state != State::Deleting {
                o.state = State::Deleting;
                o.why = None;
                o.since = self.input.now.to_string();
            }
        }
        self.rec.chroots.remove(path);
        self.push(
            Op::Delete {
                path: path.to_string(),
            },
            Some(deleting),
        );
    }

    /// Rule 3, first against the committed record (before anything else changes the working
    /// copy): the entries it accounts for.
    fn journal_confirmed(&mut self) {
        for e in self.input.journal {
            let recorded = self
                .input
                .record
                .chroots
                .get(&e.path)
                .is_some_and(|o| o.is_granted_to(RelationId(e.relation)));
            let confirmed = match e.op {
                StartedOp::Grant => recorded,
                StartedOp::Revoke => !recorded || !self.is_live(e.relation),
            };
            if confirmed {
                self.journal_done.push(e.clone());
            }
        }
    }

    /// Rule 3, once the records of gone relations are handled: grants nobody asks for now are
    /// taken back; moves that were never recorded are undone (the record still grants the old
    /// chroot). A started grant is acted on only while ZooKeeper shows it (the path exists and
    /// its ACL names exactly that relation); otherwise the grant never happened, or the node is
    /// not the charm's any more, and the entry is dropped.
    fn journal(&mut self) {
        for e in self.input.journal {
            if self.journal_done.contains(e) {
                continue;
            }
            match e.op {
                StartedOp::Grant => {
                    if self.started_grant_shows(e) == Some(true) && !self.wants(e) {
                        self.take_back(e);
                    }
                }
                StartedOp::Revoke => {
                    let roles = self.rec.chroots.get(&e.path).map(|o| o.roles.clone());
                    self.journal_done.push(e.clone());
                    self.push(
                        Op::Grant {
                            path: e.path.clone(),
                            relation: RelationId(e.relation),
                            roles: roles
                                .and_then(|r| Roles::parse(&r).ok())
                                .unwrap_or_else(Roles::all),
                            existing: true,
                        },
                        None,
                    );
                }
            }
        }
    }

    /// Whether ZooKeeper still shows a started grant (`None`: its facts are asked for first). An
    /// entry it does not show is done.
    fn started_grant_shows(&mut self, e: &Started) -> Option<bool> {
        let Some(f) = self.input.facts.get(&e.path) else {
            self.needs_facts.insert(e.path.clone());
            return None;
        };
        let shows = f.exists && f.named == BTreeSet::from([e.relation]);
        if !shows {
            self.journal_done.push(e.clone());
        }
        Some(shows)
    }

    /// Rule 3, after the requests: a grant still asked for but not given in this plan (refused
    /// now) is taken back too.
    fn journal_leftovers(&mut self) {
        for e in self.input.journal {
            let granted = self
                .rec
                .chroots
                .get(&e.path)
                .is_some_and(|o| o.is_granted_to(RelationId(e.relation)));
            if e.op == StartedOp::Grant
                && !granted
                && !self.journal_done.contains(e)
                && self.input.facts.contains_key(&e.path)
                && self.wants(e)
            {
                self.take_back(e);
            }
        }
    }

    fn wants(&self, e: &Started) -> bool {
        self.live
            .get(&e.relation)
            .is_some_and(|c| matches!(&c.request, Parsed::Valid(r) if r.chroot.as_str() == e.path))
    }

    /// A started grant nobody holds (ZooKeeper shows the relation's ACL on it): reduced to super
    /// and kept for its application (deleted when its relation left under `delete`), as if it
    /// had been recorded. A path granted to anyone, recorded for another application, or
    /// overlapping anything recorded is left alone.
    fn take_back(&mut self, e: &Started) {
        self.journal_done.push(e.clone());
        let ours = match self.rec.chroots.get(&e.path) {
            Some(o) => o.state != State::Granted && o.app == e.app,
            None => Chroot::parse(&e.path).is_ok_and(|c| {
                self.rec.overlapping(&c).is_empty()
                    && !self.rec.parents.iter().any(|p| is_within(p, &e.path))
            }),
        };
        if !ours {
            return;
        }
        let live = self.is_live(e.relation);
        if !live && self.delete_policy() {
            self.delete(&e.path);
            return;
        }
        let why = if live {
            KeptWhy::Moved
        } else {
            KeptWhy::Removed
        };
        let mut kept = Owned::granted(&e.app, RelationId(e.relation), "", self.input.now);
        if let Some(o) = self.rec.chroots.get(&e.path) {
            kept.roles = o.roles.clone();
        }
        kept.state = State::Kept;
        kept.why = Some(why);
        self.rec.chroots.insert(e.path.clone(), kept);
        self.push(
            Op::Revoke {
                path: e.path.clone(),
                except: Vec::new(),
            },
            None,
        );
    }

    /// Rules 4 and 5.
    fn requests(&mut self) {
        let mut clients: Vec<&Client> = self.input.clients.iter().collect();
        clients.sort_by_key(|c| c.relation);
        for c in clients {
            let req = match &c.request {
                Parsed::NotRequested => continue,
                Parsed::Invalid(e) => {
                    self.refuse(c, e.to_string());
                    continue;
                }
                Parsed::Valid(r) => r,
            };
            let want = req.chroot.as_str();
            let current = self
                .rec
                .granted_to(c.relation)
                .map(|(p, o)| (p.to_string(), o.roles.clone()));
            if let Some((path, roles)) = &current {
                if path == want {
                    if roles != req.roles.as_str() {
                        if let Some(o) = self.rec.chroots.get_mut(path) {
                            o.roles = req.roles.as_str().to_string();
                        }
                        self.push(
                            Op::SetRoles {
                                path: path.clone(),
                                relation: c.relation,
                                roles: req.roles.clone(),
                            },
                            None,
                        );
                    }
                    continue;
                }
            }
            let Some(existing) = self.admissible(c, req) else {
                continue;
            };
            self.rec.chroots.insert(
                want.to_string(),
                Owned::granted(&c.app, c.relation, req.roles.as_str(), self.input.now),
            );
            for parent in req.chroot.parents() {
                self.rec.parents.insert(parent);
            }
            if let Some((prev, _)) = &current {
                // Rule 5: the previous chroot is taken back once the new one is granted.
                self.set(prev, State::Revoking, Some(KeptWhy::Moved));
            }
            self.push_journaled(
                Op::Grant {
                    path: want.to_string(),
                    relation: c.relation,
                    roles: req.roles.clone(),
                    existing,
                },
                StartedOp::Grant,
                c,
            );
            if let Some((prev, _)) = current {
                self.set(&prev, State::Kept, Some(KeptWhy::Moved));
                self.push_journaled(
                    Op::Revoke {
                        path: prev,
                        except: Vec::new(),
                    },
                    StartedOp::Revoke,
                    c,
                );
            }
        }
    }

    /// Whether `req` may be granted now: `Some(existing)` (whether the path exists already), or
    /// `None` after recording a refusal or a need for facts.
    fn admissible(&mut self, c: &Client, req: &Request) -> Option<bool> {
        let want = req.chroot.as_str();
        if let Some((path, _)) = self
            .rec
            .conflicts
            .iter()
            .find(|(_, claim)| claim.relation == c.relation.0)
        {
            let others: Vec<String> = self
                .rec
                .conflicts
                .iter()
                .filter(|(p, claim)| overlaps(p, path) && claim.relation != c.relation.0)
                .map(|(p, claim)| format!("{p} of {} (relation {})", claim.app, claim.relation))
                .collect();
            self.refuse(
                c,
                format!(
                    "database {want} is refused: its chroot {path} overlaps {} (found when upgrading); \
                     remove all but one of these relations to resolve it",
                    others.join(", ")
                ),
            );
            return None;
        }
        if let Some(parent) = self.rec.parents.iter().find(|p| is_within(p, want)) {
            self.refuse(
                c,
                format!(
                    "database {want} is refused: it {} {parent}, which the charm created as a \
                     parent of other chroots",
                    if parent == want { "is" } else { "contains" }
                ),
            );
            return None;
        }
        let mut regrant = false;
        for (path, holder) in self.rec.overlapping(&req.chroot) {
            match holder {
                super::ownership::Holder::Chroot(o)
                    if path == want
                        && matches!(o.state, State::Kept | State::Revoking)
                        && o.app == c.app =>
                {
                    regrant = true;
                }
                super::ownership::Holder::Chroot(o) if o.is_granted_to(c.relation) => {
                    self.refuse(
                        c,
                        format!(
                            "database {want} is refused: it overlaps {path}, which this application \
                             holds now; a chroot cannot move inside or around the one it replaces"
                        ),
                    );
                    return None;
                }
                holder => {
                    let hint = match holder {
                        super::ownership::Holder::Chroot(o) if o.state == State::Kept => {
                            format!(
                                "; an operator can release it with `release-client-znode path={path}`"
                            )
                        }
                        _ => "; choose a path that is neither inside nor around it".to_string(),
                    };
                    self.refuse(
                        c,
                        format!("database {want} is refused: it overlaps {path}, {holder}{hint}"),
                    );
                    return None;
                }
            }
        }
        if regrant {
            return Some(true);
        }
        let Some(facts) = self.input.facts.get(want) else {
            self.needs_facts.insert(want.to_string());
            return None;
        };
        if let Some((anc, _)) = facts
            .ancestors
            .iter()
            .find(|(a, parent_acl)| !parent_acl && !self.rec.parents.contains(a))
        {
            self.refuse(
                c,
                format!(
                    "database {want} is refused: it is inside {anc}, which exists and was not \
                     created by the charm (operator data); choose another path"
                ),
            );
            return None;
        }
        if !facts.exists {
            return Some(false);
        }
        let started = self
            .input
            .journal
            .iter()
            .any(|e| e.op == StartedOp::Grant && e.path == want && e.relation == c.relation.0);
        if started && facts.named == BTreeSet::from([c.relation.0]) {
            // This relation's grant, started by a hook that died before its record was written.
            return Some(true);
        }
        let others: Vec<u32> = facts
            .named
            .iter()
            .copied()
            .filter(|r| *r != c.relation.0 && self.is_live(*r))
            .collect();
        let why = if others.is_empty() {
            "it exists and the charm never gave it to this application (operator data, or data \
             of a former client that an operator released); choose another path, or delete it \
             from ZooKeeper first"
                .to_string()
        } else {
            format!(
                "it exists and its ACL names the user of relation(s) {others:?} of other \
                 applications; choose another path"
            )
        };
        self.refuse(c, format!("database {want} is refused: {why}"));
        None
    }

    fn refuse(&mut self, c: &Client, why: String) {
        self.refusals.push(Refusal {
            relation: c.relation,
            app: c.app.clone(),
            why,
        });
    }
}

/// The requests to answer: every live relation with a valid request and a granted chroot, with
/// the chroot and roles it was granted (which may differ from a refused newer request).
pub fn served(record: &Ownership, clients: &[Client]) -> Vec<Request> {
    let mut out: Vec<Request> = clients
        .iter()
        .filter_map(|c| {
            let Parsed::Valid(req) = &c.request else {
                return None;
            };
            let (path, o) = record.granted_to(c.relation)?;
            Some(Request {
                chroot: Chroot::parse(path).ok()?,
                roles: Roles::parse(&o.roles).unwrap_or_else(|_| req.roles.clone()),
                ..req.clone()
            })
        })
        .collect();
    out.sort_by_key(|r| r.relation);
    out
}

/// The invariants every plan keeps (a violation is a bug: the hook fails and nothing is done).
pub fn check(input: &Input<'_>, plan: &Plan) -> Result<(), Violation> {
    let bad = |m: String| Err(Violation(m));
    plan.record.check()?;
    let live: BTreeSet<u32> = input.clients.iter().map(|c| c.relation.0).collect();
    for (path, o) in &plan.record.chroots {
        if o.state == State::Granted && !live.contains(&o.relation) {
            return bad(format!(
                "{path} stays granted to relation {}, which is gone",
                o.relation
            ));
        }
    }
    let before: BTreeSet<&String> = input
        .record
        .chroots
        .keys()
        .chain(input.record.conflicts.keys())
        .chain(input.journal.iter().map(|e| &e.path))
        .collect();
    for step in &plan.steps {
        step.after.check()?;
        if let Some(f) = &step.if_failed {
            f.check()?;
        }
        match &step.op {
            Op::Grant { path, relation, .. } | Op::SetRoles { path, relation, .. } => {
                if !step
                    .after
                    .chroots
                    .get(path)
                    .is_some_and(|o| o.is_granted_to(*relation))
                {
                    return bad(format!(
                        "a grant of {path} to relation {relation} not in the record"
                    ));
                }
            }
            Op::Revoke { path, .. } | Op::Delete { path } => {
                if !before.contains(path) {
                    return bad(format!(
                        "taking back {path}, which neither the record nor the journal holds"
                    ));
                }
                if step
                    .after
                    .chroots
                    .get(path)
                    .is_some_and(|o| o.state == State::Granted)
                {
                    return bad(format!("taking back {path} while it stays granted"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
