//! The leader's side of the client relation (`zookeeper` endpoint), in two halves around the
//! rolling restart:
//! - [`ZooKeeperCharm::clients_prepare`]: read the requests (cached per relation), build the
//!   ownership record once ([`crate::clients::sweep`]), then decide ([`crate::clients::plan`],
//!   pure) and apply, one operation at a time, the grants, revocations and deletions, keeping
//!   the record in the peer application bag; give each new client a password (one secret write
//!   per hook);
//! - [`ZooKeeperCharm::clients_publish`]: answer a client only once every server runs a JAAS
//!   file holding its user (the `clients` lists on the restart relation), and refresh every
//!   answer when the endpoints or its chroot change.
//!
//! A refused request (bad `database`, a path that is not free) is never answered (a client that
//! holds a chroot keeps it and its answer); the leader's status and log say why.

use crate::juju::tools::HookTools as _;
use std::collections::{BTreeMap, BTreeSet};

use super::ensemble_io::{Admin, ChangeError};
use super::hook::Snapshot;
use super::reconcile::desired_fingerprint;
use super::{CharmError, ZooKeeperCharm};
use crate::clients::ownership::{self, Ownership, Stored};
use crate::clients::plan::{self, Client, Op, PathFacts, Started};
use crate::clients::request::{self, Request, Roles};
use crate::clients::response::{self, Answer};
use crate::clients::{client_acls, locked, super_only, sweep, ClientUser, CHARM_ROOT, JOURNAL};
use crate::engine::status::UnitCondition;
use crate::juju::tools::{Databag, Missing, SecretAddOptions, SecretOwner};
use crate::juju::{RelationId, ToolError};
use crate::quorum::plan::EnsembleState;
use crate::quorum::plan::UnitId;
use crate::restart::{fingerprint, UnitRestart};
use crate::secret::Secret;
use crate::state::credentials::{self, client_key, Credentials, PASSWORD_LEN};
use crate::state::local::CachedFacts;
use crate::workload::render::CLIENT_PORT;

/// How long the leader trusts what ZooKeeper said about a refused path before asking again
/// (an operator may delete the data meanwhile).
const FACTS_TTL_SECS: u64 = 300;
/// How often the leader looks at the journal of started operations even with no reason to
/// (a leader that lost and regained leadership without a hook in between).
const JOURNAL_TTL_SECS: u64 = 600;
/// In the charm directory: this unit wrote journal entries a later hook must read.
const JOURNAL_MARKER: &str = ".zookeeper-journal-pending";

/// A ZooKeeper answer that ends the tenancy work of this hook ([`ChangeError`]).
type Zk<T> = Result<T, ChangeError>;

/// `expr` is a `Result<Zk<T>, CharmError>`: a hook-tool error fails the hook, a ZooKeeper one
/// ends the tenancy work with it.
macro_rules! zk {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

pub const ENDPOINT: &str = "zookeeper";

/// Keys this charm writes in a client's databag (others are never touched).
const MANAGED: &[&str] = &[
    "username",
    "password",
    "endpoints",
    "database",
    "chroot",
    "uris",
    "tls",
    "tls-ca",
    "version",
    "secret-user",
    "secret-tls",
];

/// The granted requests of this hook, for the publish half.
#[derive(Debug, Default)]
pub(super) struct Granted {
    pub requests: Vec<Request>,
}

/// What one hook's tenancy work reads once: the credentials as the hook leaves them (passwords
/// added for new grants, removed for relations gone), and how to reach the ensemble as super.
#[derive(Default)]
struct Work {
    creds: Option<Credentials>,
    before: Option<Credentials>,
    admin: Option<Admin>,
}

impl ZooKeeperCharm<'_> {
    /// The live client relations and what each asks for (the hook tools keep the bags between
    /// hooks and read again what an event may have changed). Each live relation has an entry in
    /// the unit's memory of what was published to it.
    fn client_requests(&mut self) -> Result<Vec<Client>, CharmError> {
        let mut clients = Vec::new();
        for r in self.tools.relation_ids(ENDPOINT)? {
            let read = (|| -> Result<Option<(String, Databag)>, ToolError> {
                let Some(app) = self.tools.relation_remote_app(r)?.filter(|a| !a.is_empty()) else {
                    return Ok(None);
                };
                let bag = self.tools.relation_get(r, &app, true)?;
                Ok(Some((app, bag)))
            })();
            match read {
                Ok(Some((app, bag))) => {
                    self.local.clients.entry(r.0).or_default();
                    clients.push(Client {
                        relation: r,
                        request: request::parse(r, &app, &bag),
                        app,
                    });
                }
                Ok(None) => {}
                // Gone since it was listed (its -broken hook is on the way).
                Err(ToolError::NotFound {
                    what: Missing::Relation,
                    ..
                }) => tracing::info!("client relation {r} is gone"),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(clients)
    }

    /// First half (leader): build the ownership record once ([`crate::clients::sweep`]), then
    /// decide ([`crate::clients::plan`]) and apply grants, revocations and deletions one
    /// operation at a time, keeping the record in the peer application bag; give new clients a
    /// password. Returns the requests to answer and the transient hold met, if any (the event
    /// is then deferred).
    pub(super) fn clients_prepare(
        &mut self,
        f: &mut Snapshot,
        ens: Option<&EnsembleState>,
    ) -> Result<Granted, CharmError> {
        let Some(config) = f.config.clone() else {
            return Ok(Granted::default());
        };
        if !f.creds_exist {
            return Ok(Granted::default());
        }
        let clients = self.client_requests()?;
        let now = ownership::rfc3339(self.opts.now);
        let stored = Stored::parse(f.peer.app.get(ownership::KEY).map(String::as_str));
        let mut work = Work::default();
        let mut record = match &stored {
            Stored::Valid(r) => Some(r.clone()),
            // Built once the ensemble serves: never a reason to defer a deployment.
            _ if ens.is_none_or(|e| e.leader.is_none()) => None,
            other => {
                if let Stored::Unreadable(why) = other {
                    tracing::warn!(
                        "the client znode record ({}) is not readable ({why}); rebuilding it from ZooKeeper",
                        ownership::KEY
                    );
                }
                match self.repair_sweep(&clients, &now, &mut work)? {
                    Ok(r) => Some(r),
                    Err(e) => {
                        self.meet(e.into());
                        return Ok(Granted::default());
                    }
                }
            }
        };
        let Some(rec) = record.as_mut() else {
            return Ok(Granted::default());
        };
        let mut refusals = Vec::new();
        if let Err(e) = self.apply_tenancy(
            &clients,
            rec,
            config.client_znode_policy,
            &now,
            &mut work,
            &mut refusals,
        )? {
            self.meet(e.into());
        }
        for r in &refusals {
            tracing::warn!(
                "client relation {} ({}) refused: {}",
                r.relation,
                r.app,
                r.why
            );
            self.conditions.push(UnitCondition::ClientRefused {
                relation: r.relation.0,
                app: r.app.clone(),
                why: r.why.clone(),
            });
        }
        let served = plan::served(rec, &clients);
        let rec = rec.clone();
        self.finish_tenancy(f, &rec, &stored, &clients, &mut work)?;
        Ok(Granted { requests: served })
    }

    /// Decide, apply the operations in order (each moving the record on only once ZooKeeper
    /// confirmed it), decide again on what they changed, until nothing is left.
    fn apply_tenancy(
        &mut self,
        clients: &[Client],
        record: &mut Ownership,
        policy: crate::state::config::ZnodePolicy,
        now: &str,
        work: &mut Work,
        refusals: &mut Vec<plan::Refusal>,
    ) -> Result<Zk<()>, CharmError> {
        let mut wrote_journal = false;
        for round in 0..4 {
            // The journal is read in the first round only (a later one would confirm entries
            // against a record not committed yet), and only when it may hold something: an
            // earlier hook of this unit wrote to it, this unit has just become the leader, the
            // last look is old, or this hook talks to ZooKeeper anyway.
            let journal = if round == 0 && self.journal_may_hold(clients, record, policy, now)? {
                let j = zk!(self.read_journal(work));
                self.local.journal_checked_at = self.opts.now;
                j
            } else {
                Vec::new()
            };
            let decide = |facts: &BTreeMap<String, PathFacts>, record: &Ownership| {
                plan::plan(&plan::Input {
                    clients,
                    record,
                    facts,
                    journal: &journal,
                    policy,
                    now,
                })
            };
            let facts = self.fresh_facts();
            let mut p = decide(&facts, record)?;
            let missing: Vec<String> = p
                .needs_facts
                .iter()
                .filter(|n| !facts.contains_key(*n))
                .cloned()
                .collect();
            if !missing.is_empty() {
                zk!(self.fetch_facts(&missing, work));
                p = decide(&self.fresh_facts(), record)?;
            }
            *refusals = p.refusals.clone();
            self.ensure_passwords(&p.granting(), work)?;
            for step in &p.steps {
                if let Some(e) = &step.journal {
                    if !wrote_journal {
                        // On disk before ZooKeeper: a hook that dies after this still makes
                        // the next one read the journal.
                        self.journal_marker(true);
                        wrote_journal = true;
                    }
                    zk!(self.write_journal(e, work));
                }
                let result = self.execute_znode_op(&step.op, work)?;
                self.local
                    .client_facts
                    .retain(|path, _| !crate::zk::path::overlaps(path, step.op.path()));
                match result {
                    Ok(()) => *record = step.after.clone(),
                    Err(e) => {
                        if let Some(r) = &step.if_failed {
                            *record = r.clone();
                        }
                        tracing::warn!("{} did not finish: {}", describe(&step.op), e.message());
                        return Ok(Err(e));
                    }
                }
            }
            if round == 0 {
                for e in &p.journal_done {
                    zk!(self.remove_journal(e, work));
                }
                if !wrote_journal && journal.len() == p.journal_done.len() {
                    // Nothing left in the journal that a later hook must look at.
                    self.journal_marker(false);
                }
            }
            *record = p.record;
            if p.steps.is_empty() {
                break;
            }
        }
        Ok(Ok(()))
    }

    /// Whether the journal may hold something this hook must act on (see
    /// [`Self::apply_tenancy`]).
    fn journal_may_hold(
        &self,
        clients: &[Client],
        record: &Ownership,
        policy: crate::state::config::ZnodePolicy,
        now: &str,
    ) -> Result<bool, CharmError> {
        if self.journal_marker_set()
            || self.leading_anew()
            || self.opts.now.saturating_sub(self.local.journal_checked_at) >= JOURNAL_TTL_SECS
        {
            return Ok(true);
        }
        let facts = self.fresh_facts();
        let p = plan::plan(&plan::Input {
            clients,
            record,
            facts: &facts,
            journal: &[],
            policy,
            now,
        })?;
        Ok(!p.steps.is_empty() || p.needs_facts.iter().any(|n| !facts.contains_key(n)))
    }

    fn journal_marker_path(&self) -> std::path::PathBuf {
        self.ctx.charm_dir.join(JOURNAL_MARKER)
    }

    fn journal_marker_set(&self) -> bool {
        self.journal_marker_path().exists()
    }

    /// Sets (durably, at once) or clears the marker saying this unit wrote journal entries that
    /// a later hook must read. A marker that cannot be written is logged: the periodic look at
    /// the journal still finds the entries.
    fn journal_marker(&self, set: bool) {
        let path = self.journal_marker_path();
        let result = if set {
            std::fs::File::create(&path).and_then(|f| f.sync_all())
        } else {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        };
        if let Err(e) = result {
            tracing::warn!("journal marker {}: {e}", path.display());
        }
    }

    /// Runs one planned operation on the quorum leader.
    fn execute_znode_op(&mut self, op: &Op, work: &mut Work) -> Result<Zk<()>, CharmError> {
        let admin = self.admin(work)?;
        let client_acl = |rel: RelationId, roles: &Roles, creds: Option<&Credentials>| {
            let pw = creds.and_then(|c| c.client_password(rel)).cloned();
            match pw {
                Some(pw) => client_acls(rel, &pw, roles)
                    .map_err(|e| ChangeError::Failed(format!("relation {rel}: {e}"))),
                None => Err(ChangeError::Failed(format!(
                    "relation {rel} has no password yet"
                ))),
            }
        };
        let started = std::time::Instant::now();
        let ms = || started.elapsed().as_millis();
        let result = match op {
            Op::Grant {
                path,
                relation,
                roles,
                existing,
            } => {
                let acls = match client_acl(*relation, roles, work.creds.as_ref()) {
                    Ok(a) => a,
                    Err(e) => return Ok(Err(e)),
                };
                match self
                    .ensemble
                    .create_znode(path, &[], &acls, &locked(), &admin)
                {
                    Ok(true) => {
                        tracing::info!(
                            "granted {path} to relation {relation} (created, ACL {})",
                            acls[0]
                        );
                        Ok(())
                    }
                    Ok(false) if *existing => self
                        .ensemble
                        .set_acls(path, &acls, true, &[], &admin)
                        .map(|n| {
                            tracing::info!(
                                "granted {path} to relation {relation}: {n} existing znodes given its ACL {} in {} ms",
                                acls[0],
                                ms()
                            )
                        }),
                    Ok(false) => {
                        // Not created by this grant: the journal must not claim it.
                        let _ = self.ensemble.delete_znode(
                            &journal_path(&Started {
                                op: plan::StartedOp::Grant,
                                path: path.clone(),
                                relation: relation.0,
                                app: String::new(),
                            }),
                            false,
                            &admin,
                        );
                        Err(ChangeError::Failed(format!(
                            "{path} appeared while it was being granted to relation {relation}; the next hook looks again"
                        )))
                    }
                    Err(e) => Err(e),
                }
            }
            Op::SetRoles {
                path,
                relation,
                roles,
            } => match client_acl(*relation, roles, work.creds.as_ref()) {
                Ok(acls) => self
                    .ensemble
                    .set_acls(path, &acls, false, &[], &admin)
                    .map(|_| {
                        tracing::info!(
                            "relation {relation}'s roles on {path} are now {}",
                            roles.as_str()
                        )
                    }),
                Err(e) => Err(e),
            },
            Op::Revoke { path, except } => self
                .ensemble
                .set_acls(path, &super_only(), true, except, &admin)
                .map(|n| {
                    tracing::info!(
                        "took {path} back: {n} znodes reduced to super in {} ms{}; the data is kept",
                        ms(),
                        if except.is_empty() {
                            String::new()
                        } else {
                            format!(" (all but {})", except.join(", "))
                        }
                    )
                }),
            Op::Delete { path } => self
                .ensemble
                .set_acls(path, &super_only(), true, &[], &admin)
                .and_then(|n| {
                    self.ensemble
                        .delete_znode(path, true, &admin)
                        .map(|()| n)
                })
                .map(|n| tracing::info!("deleted {path}: {n} znodes in {} ms", ms())),
        };
        Ok(result)
    }

    /// The journal entries in ZooKeeper (unreadable ones are removed with a warning).
    fn read_journal(&mut self, work: &mut Work) -> Result<Zk<Vec<Started>>, CharmError> {
        let admin = self.admin(work)?;
        let entries = match self.ensemble.children_data(JOURNAL, &admin) {
            Ok(e) => e,
            Err(e) => return Ok(Err(e)),
        };
        let mut out = Vec::new();
        for (name, data) in entries {
            match serde_json::from_slice::<Started>(&data) {
                Ok(e) => out.push(e),
                Err(err) => {
                    tracing::warn!("dropping unreadable journal entry {name}: {err}");
                    let path = crate::zk::path::child_path(JOURNAL, &name);
                    if let Err(e) = self.ensemble.delete_znode(&path, false, &admin) {
                        return Ok(Err(e));
                    }
                }
            }
        }
        if !out.is_empty() {
            tracing::info!(
                "{} operation(s) started by an earlier hook: {out:?}",
                out.len()
            );
        }
        Ok(Ok(out))
    }

    fn write_journal(&mut self, e: &Started, work: &mut Work) -> Result<Zk<()>, CharmError> {
        let admin = self.admin(work)?;
        let data = serde_json::to_vec(e).unwrap_or_default();
        Ok(self
            .ensemble
            .create_znode(
                &journal_path(e),
                &data,
                &super_only(),
                &super_only(),
                &admin,
            )
            .map(|_| ()))
    }

    fn remove_journal(&mut self, e: &Started, work: &mut Work) -> Result<Zk<()>, CharmError> {
        let admin = self.admin(work)?;
        Ok(self.ensemble.delete_znode(&journal_path(e), false, &admin))
    }

    /// Facts about refused or new paths this unit read recently.
    fn fresh_facts(&self) -> BTreeMap<String, PathFacts> {
        self.local
            .client_facts
            .iter()
            .filter(|(_, c)| self.opts.now.saturating_sub(c.at) < FACTS_TTL_SECS)
            .map(|(p, c)| (p.clone(), c.facts.clone()))
            .collect()
    }

    /// Asks ZooKeeper about `paths` and their ancestors.
    fn fetch_facts(&mut self, paths: &[String], work: &mut Work) -> Result<Zk<()>, CharmError> {
        let admin = self.admin(work)?;
        let mut ask: BTreeSet<String> = BTreeSet::new();
        for p in paths {
            ask.insert(p.clone());
            ask.extend(crate::zk::path::ancestors(p));
        }
        let ask: Vec<String> = ask.into_iter().collect();
        let acls = match self.ensemble.acls_of(&ask, &admin) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        for p in paths {
            let facts = PathFacts::from_acls(p, &acls);
            self.local.client_facts.insert(
                p.clone(),
                CachedFacts {
                    at: self.opts.now,
                    facts,
                },
            );
        }
        Ok(Ok(()))
    }

    /// Every address this unit knows and the super passwords, read once per hook.
    fn admin(&mut self, work: &mut Work) -> Result<Admin, CharmError> {
        if work.admin.is_none() {
            let peer = self.view.as_ref().and_then(|v| v.peer.clone());
            work.admin = Some(Admin {
                known: match peer {
                    Some(p) => self.address_book(&p),
                    None => self.local.addresses.clone(),
                },
                super_passwords: self.super_candidates()?,
            });
        }
        Ok(work.admin.clone().unwrap_or_default())
    }

    /// The credentials this hook works on (read once).
    fn work_creds(&mut self, work: &mut Work) -> Result<Option<Credentials>, CharmError> {
        if work.creds.is_none() {
            work.before = self.creds()?;
            work.creds = work.before.clone();
        }
        Ok(work.creds.clone())
    }

    /// A password for every relation about to be granted something that has none.
    fn ensure_passwords(
        &mut self,
        rels: &BTreeSet<RelationId>,
        work: &mut Work,
    ) -> Result<(), CharmError> {
        if rels.is_empty() {
            return Ok(());
        }
        let Some(mut creds) = self.work_creds(work)? else {
            return Ok(());
        };
        for r in rels {
            if creds.client_password(*r).is_none() {
                let pw = Secret::generate(PASSWORD_LEN)
                    .map_err(credentials::CredentialsError::Random)?;
                creds.values.insert(client_key(*r), pw);
                tracing::info!(
                    "created a password for relation {r}'s user {}",
                    response::username(*r)
                );
            }
        }
        work.creds = Some(creds);
        Ok(())
    }

    /// The one-time repair of a deployment that predates the record ([`sweep`]): locks the root,
    /// walks the tree once, repairs ACLs, and returns the record to start from.
    fn repair_sweep(
        &mut self,
        clients: &[Client],
        now: &str,
        work: &mut Work,
    ) -> Result<Zk<Ownership>, CharmError> {
        let admin = self.admin(work)?;
        if admin.super_passwords.is_empty() {
            return Ok(Err(ChangeError::Failed("no super password yet".into())));
        }
        let started = std::time::Instant::now();
        for p in ["/", "/zookeeper", "/zookeeper/quota"] {
            if let Err(e) = self.ensemble.set_acls(p, &locked(), false, &[], &admin) {
                return Ok(Err(e));
            }
        }
        let skip = ["/zookeeper".to_string(), CHARM_ROOT.to_string()];
        let tree = match self.ensemble.tree_acls(&skip, &admin) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let remembered: BTreeMap<u32, String> = self
            .work_creds(work)?
            .as_ref()
            .map(|c| {
                c.values
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.strip_prefix("chroot-")?.parse().ok()?,
                            v.expose().to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut published = BTreeMap::new();
        for c in clients {
            match self.tools.relation_get(c.relation, &self.ctx.app, true) {
                Ok(bag) => {
                    if let Some(db) = bag.get("database").filter(|d| !d.is_empty()) {
                        published.insert(c.relation.0, db.clone());
                    }
                }
                Err(ToolError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let s = sweep::sweep(&sweep::Input {
            tree: &tree,
            clients,
            remembered: &remembered,
            published: &published,
            now,
        });
        for (node, acls) in &s.repairs {
            if let Err(e) = self.ensemble.set_acls(node, acls, false, &[], &admin) {
                return Ok(Err(e));
            }
        }
        // Chroots published to a client whose ACL lost it: given back in full.
        let rels: BTreeSet<RelationId> = s.regrant.iter().map(|(_, r)| *r).collect();
        self.ensure_passwords(&rels, work)?;
        for (path, rel) in &s.regrant {
            let roles = s
                .record
                .chroots
                .get(path)
                .and_then(|o| Roles::parse(&o.roles).ok())
                .unwrap_or_else(Roles::all);
            let grant = Op::Grant {
                path: path.clone(),
                relation: *rel,
                roles,
                existing: true,
            };
            zk!(self.execute_znode_op(&grant, work));
        }
        for note in &s.notes {
            tracing::warn!("client tenancy repair: {note}");
        }
        tracing::info!(
            "client tenancy repair done in {} ms: locked /, /zookeeper and /zookeeper/quota (super all, world read); \
             examined {} znodes, repaired {}, gave back {}; recorded {} chroot(s), {} parent(s), {} conflict claim(s)",
            started.elapsed().as_millis(),
            tree.len(),
            s.repairs.len(),
            s.regrant.len(),
            s.record.chroots.len(),
            s.record.parents.len(),
            s.record.conflicts.len()
        );
        // The previous version's memory of first chroots is in the record now.
        if let Some(c) = work.creds.as_mut() {
            c.values.retain(|k, _| !k.starts_with("chroot-"));
        }
        Ok(Ok(s.record))
    }

    /// Writes what the tenancy work changed: the record (peer app bag), the credentials (one
    /// secret write: new passwords, passwords of relations gone, legacy keys), and forgets the
    /// answers of relations gone.
    fn finish_tenancy(
        &mut self,
        f: &mut Snapshot,
        record: &Ownership,
        stored: &Stored,
        clients: &[Client],
        work: &mut Work,
    ) -> Result<(), CharmError> {
        if *stored != Stored::Valid(record.clone()) {
            let data: Databag = [(ownership::KEY.to_string(), record.to_json())].into();
            if let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
                self.tools.relation_set(peer.relation, true, &data)?;
                peer.apply_app_write(&data);
                f.peer = peer.clone();
            }
        }
        let live: BTreeSet<u32> = clients.iter().map(|c| c.relation.0).collect();
        // Passwords of relations gone, once nothing grants them any more.
        let granted: BTreeSet<u32> = record
            .chroots
            .values()
            .filter(|o| o.state == ownership::State::Granted)
            .map(|o| o.relation)
            .collect();
        let stale = |creds: &Credentials| -> Vec<String> {
            creds
                .values
                .keys()
                .filter(|k| {
                    ClientUser::parse(k)
                        .is_some_and(|u| !live.contains(&u.0) && !granted.contains(&u.0))
                })
                .cloned()
                .collect()
        };
        let cached_gone = self.local.clients.keys().any(|id| !live.contains(id));
        // A new leader may have missed the -broken hooks of relations gone.
        let maybe_stale = work.creds.is_some() || cached_gone || self.leading_anew();
        if maybe_stale {
            if let Some(mut creds) = self.work_creds(work)? {
                for k in stale(&creds) {
                    tracing::info!(
                        "relation {} is gone: its user leaves the servers' JAAS files",
                        &k["relation-".len()..]
                    );
                    creds.values.remove(&k);
                }
                work.creds = Some(creds);
            }
        }
        if let (Some(new), Some(old)) = (&work.creds, &work.before) {
            if new.values != old.values {
                let jaas = new.client_users() != old.client_users();
                if let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
                    if jaas {
                        credentials::write(self.tools, peer, new)?;
                    } else {
                        credentials::write_quietly(self.tools, new)?;
                    }
                    f.peer = peer.clone();
                }
                self.set_creds(new.clone());
                if jaas {
                    if let Some(config) = &f.config {
                        f.desired = Some(desired_fingerprint(config, &f.peer));
                    }
                    // The JAAS file follows at once; the servers load it at their rolling restart.
                    self.write_server_files(f)?;
                }
            }
        }
        // Provider-side secrets of relations gone.
        let gone: Vec<u32> = self
            .local
            .clients
            .keys()
            .filter(|id| !live.contains(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(cache) = self.local.clients.remove(&id) {
                for uri in cache.secrets.values() {
                    if let Err(e) = self.tools.secret_remove(uri, None) {
                        tracing::warn!("removing relation {id}'s secret {uri}: {e}");
                    }
                }
            }
        }
        Ok(())
    }

    /// Second half (leader): answer every provisioned client whose user every server knows.
    pub(super) fn clients_publish(
        &mut self,
        f: &Snapshot,
        granted: &Granted,
        states: &BTreeMap<UnitId, UnitRestart>,
        version: Option<&str>,
    ) -> Result<(), CharmError> {
        let servers: Vec<u32> = f
            .peer
            .units
            .iter()
            .filter(|(_, d)| d.started())
            .map(|(u, _)| *u)
            .collect();
        // With TLS on every server, clients are sent to the TLS port with the CAs to trust.
        let tls_ca = match self.clients_tls(f)? {
            super::tls::ClientsTls::Plain => None,
            super::tls::ClientsTls::Tls(ca) => Some(ca),
            super::tls::ClientsTls::Unknown => {
                tracing::warn!(
                    "every server serves TLS but this unit holds no trust store yet: the clients' answers stay as they are"
                );
                return Ok(());
            }
        };
        let port = if tls_ca.is_some() {
            crate::tls::serve::SECURE_CLIENT_PORT
        } else {
            CLIENT_PORT
        };
        let endpoints = response::endpoints(
            f.peer
                .units
                .values()
                .filter(|d| d.started())
                .filter_map(|d| d.address())
                .map(|a| format!("{a}:{port}"))
                .collect(),
        );
        let mut waiting = 0;
        for req in &granted.requests {
            let everywhere = response::known_everywhere(
                req.relation.0,
                f.me,
                &servers,
                &self.local.loaded_clients,
                states,
            );
            if !everywhere {
                waiting += 1;
                continue;
            }
            // A client's password never changes, so the answer's fingerprint leaves it out:
            // the secret is read only when an answer changes.
            let shape = response::publish(&Answer {
                request: req,
                password: &Secret::new(String::new()),
                endpoints: &endpoints,
                version,
                tls_ca: tls_ca.as_deref(),
            });
            let fp = fingerprint(&format!("{:?}|{:?}", shape.databag, shape.secrets));
            let cache = self
                .local
                .clients
                .get(&req.relation.0)
                .cloned()
                .unwrap_or_default();
            if cache.published.as_deref() == Some(fp.as_str()) {
                continue;
            }
            let Some(pw) = self
                .creds()?
                .and_then(|c| c.client_password(req.relation).cloned())
            else {
                continue;
            };
            let published = response::publish(&Answer {
                request: req,
                password: &pw,
                endpoints: &endpoints,
                version,
                tls_ca: tls_ca.as_deref(),
            });
            let mut bag: Databag = published.databag.clone();
            let mut secrets = cache.secrets.clone();
            for (group, content) in &published.secrets {
                let uri = match secrets.get(*group) {
                    Some(uri) => {
                        self.tools.secret_set(uri, Some(content), None)?;
                        uri.clone()
                    }
                    None => {
                        let opts = SecretAddOptions {
                            label: Some(response::secret_label(ENDPOINT, req.relation, group)),
                            description: Some(format!(
                                "ZooKeeper {group} credentials for {}",
                                req.app
                            )),
                            owner: Some(SecretOwner::Application),
                        };
                        let uri = self.tools.secret_add(content, &opts)?;
                        self.tools.secret_grant(&uri, req.relation, None)?;
                        secrets.insert(group.to_string(), uri.clone());
                        uri
                    }
                };
                bag.insert(format!("secret-{group}"), uri);
            }
            for k in MANAGED {
                bag.entry(k.to_string()).or_default();
            }
            self.tools.relation_set(req.relation, true, &bag)?;
            tracing::info!(
                "published credentials and endpoints to {} (relation {})",
                req.app,
                req.relation
            );
            if let Some(c) = self.local.clients.get_mut(&req.relation.0) {
                c.published = Some(fp);
                c.secrets = secrets;
            }
        }
        if waiting > 0 {
            tracing::info!(
                "{waiting} client(s) wait for every server to load their user (rolling restart)"
            );
        }
        Ok(())
    }
}

/// A journal entry's node: one per operation, relation and path.
fn journal_path(e: &Started) -> String {
    let op = match e.op {
        plan::StartedOp::Grant => "grant",
        plan::StartedOp::Revoke => "revoke",
    };
    let hex: String = e.path.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{JOURNAL}/{op}-{}-{hex}", e.relation)
}

fn describe(op: &Op) -> String {
    match op {
        Op::Grant { path, relation, .. } => format!("granting {path} to relation {relation}"),
        Op::SetRoles { path, relation, .. } => {
            format!("setting relation {relation}'s roles on {path}")
        }
        Op::Revoke { path, .. } => format!("taking {path} back"),
        Op::Delete { path } => format!("deleting {path}"),
    }
}
