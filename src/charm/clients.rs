//! The leader's side of the client relation (`zookeeper` endpoint), in two halves around the
//! rolling restart:
//! - [`ZooKeeperCharm::clients_prepare`]: read the requests (cached per relation), validate and
//!   arbitrate them, give each granted client a password (one secret write for all new ones),
//!   create its chroot with its ACL on the quorum leader, and revoke clients whose relation is
//!   gone (ACL reduced to super, or the tree deleted, as `client-znode-policy` says);
//! - [`ZooKeeperCharm::clients_publish`]: answer a client only once every server runs a JAAS
//!   file holding its user (the `clients` lists on the restart relation), and refresh every
//!   answer when the endpoints change.
//!
//! A refused request (bad `database`, overlapping chroot) is never answered; the leader's status
//! and log say why.

use std::collections::{BTreeMap, BTreeSet};

use super::ensemble::ChangeError;
use super::reconcile::{desired_fingerprint, Facts};
use super::{CharmError, ZooKeeperCharm};
use crate::clients::request::{self, Chroot, Parsed, Request};
use crate::clients::response::{self, Answer};
use crate::clients::{chroot_key, client_acls, super_only};
use crate::engine::status::UnitCondition;
use crate::juju::tools::{Databag, Missing, SecretAddOptions, SecretOwner};
use crate::juju::{Event, RelationId, RelationPhase, ToolError};
use crate::quorum::plan::Hold;
use crate::restart::fingerprint;
use crate::secret::Secret;
use crate::state::config::ZnodePolicy;
use crate::state::credentials::{self, client_key, PASSWORD_LEN};

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
#[derive(Default)]
pub(super) struct Granted {
    pub requests: Vec<Request>,
}

impl ZooKeeperCharm<'_> {
    /// The relation the current event is about, on the client endpoint.
    fn client_event(&self) -> Option<(RelationId, RelationPhase, Option<String>)> {
        match self.event.as_ref()? {
            Event::Relation {
                endpoint,
                phase,
                id,
                remote_app,
                ..
            } if endpoint == ENDPOINT => Some((*id, *phase, remote_app.clone())),
            _ => None,
        }
    }

    /// Reads the client relations that need it into the cache; returns the live relation ids.
    fn refresh_clients(&mut self) -> Result<Vec<RelationId>, CharmError> {
        let event = self.client_event();
        let broken = event
            .as_ref()
            .filter(|(_, p, _)| *p == RelationPhase::Broken)
            .map(|(r, _, _)| *r);
        let full = matches!(
            self.event,
            Some(Event::LeaderElected | Event::UpdateStatus | Event::UpgradeCharm)
        );
        // The list is kept between hooks: a relation comes and goes with hooks of its own.
        let rels: Vec<RelationId> = match (&self.local.client_relations, full || event.is_some()) {
            (Some(ids), false) => ids.iter().map(|r| RelationId(*r)).collect(),
            _ => self
                .tools
                .relation_ids(ENDPOINT)?
                .into_iter()
                .filter(|r| Some(*r) != broken)
                .collect(),
        };
        let mut live = Vec::new();
        for r in rels {
            let cached = self.local.clients.contains_key(&r.0);
            let this_event = event.as_ref().is_some_and(|(er, _, _)| *er == r);
            if cached && !full && !this_event {
                live.push(r);
                continue;
            }
            let mut entry = self.local.clients.get(&r.0).cloned().unwrap_or_default();
            let read = (|| -> Result<(), ToolError> {
                if entry.app.is_empty() {
                    entry.app = match event
                        .as_ref()
                        .filter(|(er, _, _)| *er == r)
                        .and_then(|(_, _, a)| a.clone())
                    {
                        Some(a) => a,
                        None => self.tools.relation_remote_app(r)?.unwrap_or_default(),
                    };
                }
                if !entry.app.is_empty() {
                    entry.remote = self.tools.relation_get(r, &entry.app, true)?;
                }
                Ok(())
            })();
            match read {
                Ok(()) => {
                    self.local.clients.insert(r.0, entry);
                    live.push(r);
                }
                // Gone since it was listed (its -broken hook is on the way).
                Err(ToolError::NotFound {
                    what: Missing::Relation,
                    ..
                }) => tracing::info!("client relation {r} is gone"),
                Err(e) => return Err(e.into()),
            }
        }
        self.local.client_relations = Some(live.iter().map(|r| r.0).collect());
        Ok(live)
    }

    /// First half (leader): requests, passwords, znodes, revocations. Returns what was granted
    /// and the transient hold met, if any (the event is then deferred).
    pub(super) fn clients_prepare(
        &mut self,
        f: &mut Facts,
    ) -> Result<(Granted, Option<Hold>), CharmError> {
        let Some(config) = f.config.clone() else {
            return Ok((Granted::default(), None));
        };
        if !f.creds_exist {
            return Ok((Granted::default(), None));
        }
        let rels = self.refresh_clients()?;
        let live: BTreeSet<u32> = rels.iter().map(|r| r.0).collect();

        // Parse and arbitrate.
        let mut valid = Vec::new();
        let mut refusals: Vec<(RelationId, String, String)> = Vec::new();
        for r in &rels {
            let Some(c) = self.local.clients.get(&r.0) else {
                continue;
            };
            match request::parse(*r, &c.app, &c.remote) {
                Parsed::NotRequested => {}
                Parsed::Valid(req) => valid.push(req),
                Parsed::Invalid(e) => refusals.push((*r, c.app.clone(), e.to_string())),
            }
        }
        let held: BTreeMap<RelationId, Chroot> = self
            .local
            .clients
            .iter()
            .filter_map(|(r, c)| {
                Some((
                    RelationId(*r),
                    Chroot::parse(c.provisioned.as_deref()?.split('|').next()?).ok()?,
                ))
            })
            .collect();
        let (granted, overlaps) = request::arbitrate(&valid, &held);
        for (r, e) in overlaps {
            let app = self
                .local
                .clients
                .get(&r.0)
                .map(|c| c.app.clone())
                .unwrap_or_default();
            refusals.push((r, app, e.to_string()));
        }
        for (r, app, why) in &refusals {
            tracing::warn!("client relation {r} ({app}) refused: {why}");
            self.conditions.push(UnitCondition::ClientRefused(format!(
                "relation {r} ({app}): {why}"
            )));
        }

        // The credentials secret is read only when something may change: a new leader (it may
        // have missed -broken events), a client relation gone, or a request not provisioned yet.
        let full = matches!(self.event, Some(Event::LeaderElected | Event::UpgradeCharm))
            || self
                .client_event()
                .is_some_and(|(_, p, _)| p == RelationPhase::Broken);
        let cached_gone = self.local.clients.keys().any(|id| !live.contains(id));
        let unprovisioned = granted.iter().any(|req| {
            let want = format!("{}|{}", req.chroot, req.roles.as_str());
            self.local
                .clients
                .get(&req.relation.0)
                .and_then(|c| c.provisioned.as_deref())
                != Some(want.as_str())
        });
        if !full && !cached_gone && !unprovisioned {
            return Ok((Granted { requests: granted }, None));
        }
        let Some(creds) = self.creds()? else {
            return Ok((Granted::default(), None));
        };

        // Clients whose relation is gone (its -broken event, or missed while not the leader).
        let gone: Vec<(u32, Option<String>)> = creds
            .values
            .keys()
            .filter_map(|k| k.strip_prefix("relation-")?.parse::<u32>().ok())
            .filter(|id| !live.contains(id))
            .map(|id| {
                (
                    id,
                    creds
                        .get(&chroot_key(RelationId(id)))
                        .map(|c| c.expose().to_string()),
                )
            })
            .collect();

        // Passwords: one secret write for every new client and every gone one.
        let mut new_creds = creds.clone();
        for req in &granted {
            if new_creds.client_password(req.relation).is_none() {
                let pw = Secret::generate(PASSWORD_LEN)
                    .map_err(credentials::CredentialsError::Random)?;
                new_creds.values.insert(client_key(req.relation), pw);
                new_creds.values.insert(
                    chroot_key(req.relation),
                    Secret::new(req.chroot.as_str().to_string()),
                );
                tracing::info!(
                    "granting {} to {} (relation {}) as user {}",
                    req.chroot,
                    req.app,
                    req.relation,
                    response::username(req.relation)
                );
            }
        }

        // Revoke gone clients first: their chroot key stays until ZooKeeper confirmed.
        let mut hold = None;
        let known = self.address_book(&f.peer);
        let super_pws = creds.super_candidates();
        for (id, chroot) in &gone {
            let r = RelationId(*id);
            if let (Some(chroot), false) = (chroot, super_pws.is_empty()) {
                let delete = config.client_znode_policy == ZnodePolicy::Delete;
                match self
                    .ensemble
                    .revoke(chroot, delete, &super_only(), &known, &super_pws)
                {
                    Ok(()) => tracing::info!(
                        "client relation {r} removed: {} {chroot}",
                        if delete {
                            "deleted"
                        } else {
                            "kept the data of, with an ACL reduced to super,"
                        }
                    ),
                    Err(ChangeError::Transient(h)) => {
                        hold = Some(h);
                        continue;
                    }
                    Err(ChangeError::Failed(m)) => {
                        tracing::error!("revoking relation {r}'s access failed: {m}");
                        self.conditions
                            .push(UnitCondition::Held(format!("revoking relation {r}: {m}")));
                        continue;
                    }
                }
            }
            new_creds.values.remove(&client_key(r));
            new_creds.values.remove(&chroot_key(r));
            if let Some(cache) = self.local.clients.remove(id) {
                for uri in cache.secrets.values() {
                    if let Err(e) = self.tools.secret_remove(uri, None) {
                        tracing::warn!("removing relation {r}'s secret {uri}: {e}");
                    }
                }
            }
        }
        self.local.clients.retain(|id, _| live.contains(id));
        if new_creds.values != creds.values {
            if let Some(peer) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
                credentials::write(self.tools, peer, &new_creds)?;
                f.peer = peer.clone();
            }
            self.set_creds(new_creds.clone());
            f.desired = Some(desired_fingerprint(&config, &f.peer));
            // The JAAS file follows at once; the servers load it at their rolling restart.
            self.write_server_files(f)?;
        }

        // Znodes for granted clients (once per chroot and roles).
        let mut ready = Vec::new();
        for req in granted {
            let want = format!("{}|{}", req.chroot, req.roles.as_str());
            let done = self
                .local
                .clients
                .get(&req.relation.0)
                .and_then(|c| c.provisioned.as_deref())
                == Some(want.as_str());
            if !done {
                let Some(pw) = new_creds.client_password(req.relation).cloned() else {
                    continue;
                };
                let acls = match client_acls(req.relation, &pw, &req.roles) {
                    Ok(a) => a,
                    Err(e) => {
                        self.conditions.push(UnitCondition::ClientRefused(format!(
                            "relation {}: {e}",
                            req.relation
                        )));
                        continue;
                    }
                };
                match self.ensemble.provision(
                    req.chroot.as_str(),
                    &acls,
                    &super_only(),
                    &known,
                    &super_pws,
                ) {
                    Ok(()) => {
                        tracing::info!(
                            "created {} for {} with ACL {}",
                            req.chroot,
                            req.app,
                            acls[0]
                        );
                        if let Some(c) = self.local.clients.get_mut(&req.relation.0) {
                            c.provisioned = Some(want);
                        }
                    }
                    Err(ChangeError::Transient(h)) => {
                        hold = Some(h);
                        continue;
                    }
                    Err(ChangeError::Failed(m)) => {
                        tracing::error!("{m}");
                        self.conditions.push(UnitCondition::Held(m));
                        continue;
                    }
                }
            }
            ready.push(req);
        }
        Ok((Granted { requests: ready }, hold))
    }

    /// Second half (leader): answer every provisioned client whose user every server knows.
    pub(super) fn clients_publish(
        &mut self,
        f: &Facts,
        granted: &Granted,
        version: Option<&str>,
    ) -> Result<(), CharmError> {
        let states = self.restart_states.clone().unwrap_or_default();
        let servers: Vec<u32> = f
            .peer
            .units
            .iter()
            .filter(|(_, d)| d.started())
            .map(|(u, _)| *u)
            .collect();
        let endpoints = response::endpoints(
            f.peer
                .units
                .values()
                .filter(|d| d.started())
                .filter_map(|d| d.address())
                .map(|a| format!("{a}:2181"))
                .collect(),
        );
        let mut waiting = 0;
        for req in &granted.requests {
            let everywhere = !servers.is_empty()
                && servers.iter().all(|u| {
                    if *u == f.me {
                        self.local.loaded_clients.contains(&req.relation.0)
                    } else {
                        states
                            .get(u)
                            .is_some_and(|s| s.clients.contains(&req.relation.0))
                    }
                });
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
                tls_ca: None,
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
                tls_ca: None,
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
