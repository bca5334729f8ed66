//! [`EnsembleIo`] over the admin layer ([`crate::zk`]): four-letter words for observation, one
//! SASL `super` session per hook (opened on first need) for membership changes. Owns the hook's
//! tokio current-thread runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::charm::ensemble_io::{
    Admin, ChangeError, EnsembleIo, MemberReport, Probe, QuorumReport,
};
use crate::quorum::member::{EnsembleConfig, Role, ServerSpec};
use crate::quorum::plan::{server_id, unit_of, Change, EnsembleState, Hold, Member, UnitId};
use crate::secret::Secret;
use crate::workload::render::{self, Flavor, CLIENT_PORT};
use crate::zk::acl::AclEntry;
use crate::zk::error::Severity;
use crate::zk::{self, ManagerOptions, ZkError, ZooKeeperManager};

pub struct EnsembleAdmin {
    rt: Option<tokio::runtime::Runtime>,
    flavor: Flavor,
    opts: ManagerOptions,
    manager: Option<ZooKeeperManager>,
    /// A round started early on its own thread ([`EnsembleIo::prefetch`]), for these hosts.
    prefetched: Option<(BTreeSet<String>, std::thread::JoinHandle<zk::Round>)>,
    /// The next round may use the prefetched one ([`EnsembleIo::use_prefetch`]).
    armed: bool,
    /// The hosts of this hook's first round (what the next hook may prefetch).
    first_round: Option<Vec<String>>,
}

impl EnsembleAdmin {
    pub fn new(flavor: Flavor) -> EnsembleAdmin {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Err(e) = &rt {
            tracing::error!("cannot create the async runtime for ZooKeeper calls: {e}");
        }
        EnsembleAdmin {
            rt: rt.ok(),
            flavor,
            opts: ManagerOptions::default(),
            manager: None,
            prefetched: None,
            armed: false,
            first_round: None,
        }
    }

    /// One round of four-letter words on `hosts`: the prefetched one when armed and it asked
    /// exactly these hosts (used once), else a fresh one.
    fn round(&mut self, hosts: &[String]) -> Option<zk::Round> {
        if self.first_round.is_none() {
            self.first_round = Some(hosts.to_vec());
        }
        let armed = std::mem::take(&mut self.armed);
        if let Some((asked, handle)) = self.prefetched.take().filter(|_| armed) {
            if asked == hosts.iter().cloned().collect::<BTreeSet<_>>() {
                if let Ok(round) = handle.join() {
                    return Some(round);
                }
            }
            // Otherwise dropped: the thread finishes on its own within the timeout.
        }
        let timeout = self.four_lw_timeout();
        let rt = self.rt.as_ref()?;
        Some(rt.block_on(zk::ask(hosts, timeout)))
    }

    fn four_lw_timeout(&self) -> Duration {
        self.opts.connect.four_lw_timeout
    }

    /// The ensemble as the servers at `addresses` say, and every member their configuration
    /// names that we had no address for (e.g. a departed unit that is still the quorum leader).
    fn observe_all(&mut self, addresses: &BTreeMap<UnitId, String>) -> Option<zk::Observed> {
        let mut hosts: Vec<String> = addresses.values().map(|a| host(a)).collect();
        let mut obs = zk::interpret(&hosts, self.round(&hosts)?);
        if let Some(cfg) = &obs.config {
            let extra: Vec<String> = cfg
                .members
                .values()
                .map(|s| host(&s.host))
                .filter(|h| !hosts.contains(h))
                .collect();
            if !extra.is_empty() {
                hosts.extend(extra);
                obs = zk::interpret(&hosts, self.round(&hosts)?);
            }
        }
        Some(obs)
    }

    /// One observation round: what the four-letter words said, and the planner's view of it.
    fn observe_raw(
        &mut self,
        addresses: &BTreeMap<UnitId, String>,
    ) -> Option<(zk::Observed, EnsembleState)> {
        let obs = self.observe_all(addresses)?;
        let unit_at = |h: &str| -> Option<UnitId> {
            let st = obs.per_host.get(h)?;
            st.server_id.and_then(unit_of).or_else(|| {
                addresses
                    .iter()
                    .find(|(_, a)| host(a) == h)
                    .map(|(u, _)| *u)
            })
        };
        let members = obs.config.as_ref().map(members_by_unit).unwrap_or_default();
        let ens = EnsembleState {
            leader: obs.leader.as_deref().and_then(unit_at),
            members,
            version: obs.config.as_ref().map(|c| c.version),
            syncing: obs.leader_syncing,
            catching_up: obs.catching_up.iter().filter_map(|h| unit_at(h)).collect(),
            broadcasting: obs
                .per_host
                .iter()
                .filter(|(_, s)| s.serving)
                .filter_map(|(h, _)| unit_at(h))
                .collect(),
        };
        Some((obs, ens))
    }
}

/// This server's own view from a round that asked it: peer state, the configuration it holds,
/// its release.
fn probe_of(round: zk::Round, h: &str) -> Probe {
    let hosts = [h.to_string()];
    let Some(st) = zk::interpret(&hosts, round).per_host.remove(h) else {
        return Probe::default();
    };
    Probe {
        peer_state: st.peer_state,
        members: st.config.as_ref().map(members_by_unit),
        version: st.version,
        digest_mismatches: st.digest_mismatches,
    }
}

fn host(address: &str) -> String {
    format!("{address}:{CLIENT_PORT}")
}

fn members_by_unit(config: &EnsembleConfig) -> BTreeMap<UnitId, Member> {
    config
        .members
        .values()
        .filter_map(|s| {
            Some((
                unit_of(s.id)?,
                Member {
                    address: s.host.clone(),
                    voting: s.role == Role::Participant,
                },
            ))
        })
        .collect()
}

/// An admin-layer error in the planner's vocabulary, by its one [`Severity`]: `about` is the
/// unit a membership change concerns (none for znode work), `what` names the operation.
pub(crate) fn change_error(e: &ZkError, about: Option<UnitId>, what: &str) -> ChangeError {
    match (e.severity(), about) {
        (Severity::MembersSyncing, _) => ChangeError::Transient(Hold::MembersSyncing),
        (Severity::MemberNotReady, Some(u)) => ChangeError::Transient(Hold::MemberNotReady(u)),
        // Znode work names no member; only reconfig answers "not ready".
        (Severity::MemberNotReady | Severity::NoQuorumLeader, _) => {
            ChangeError::Transient(Hold::NoQuorumLeader)
        }
        (Severity::Failed, _) if what.is_empty() => ChangeError::Failed(e.to_string()),
        (Severity::Failed, _) => ChangeError::Failed(format!("{what}: {e}")),
    }
}

fn classify(e: &ZkError, change: Change) -> ChangeError {
    let u = match change {
        Change::Add(u) | Change::Remove(u) => u,
    };
    change_error(e, Some(u), "")
}

impl EnsembleIo for EnsembleAdmin {
    fn probe(&mut self, address: &str) -> Probe {
        let h = host(address);
        let Some(round) = self.round(std::slice::from_ref(&h)) else {
            return Probe::default();
        };
        probe_of(round, &h)
    }

    fn prefetch(&mut self, hosts: &[String]) {
        if hosts.is_empty() || self.prefetched.is_some() {
            return;
        }
        let asked: Vec<String> = hosts.to_vec();
        let timeout = self.four_lw_timeout();
        let spawned = std::thread::Builder::new()
            .name("zk-prefetch".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(zk::ask(&asked, timeout)),
                    Err(_) => Vec::new(),
                }
            });
        match spawned {
            Ok(handle) => self.prefetched = Some((hosts.iter().cloned().collect(), handle)),
            Err(e) => tracing::debug!("no early observation round: {e}"),
        }
    }

    fn use_prefetch(&mut self) {
        self.armed = self.prefetched.is_some();
    }

    fn discard_prefetch(&mut self) {
        self.prefetched = None;
        self.armed = false;
    }

    fn first_round(&self) -> Option<Vec<String>> {
        self.first_round.clone()
    }

    fn observe(&mut self, addresses: &BTreeMap<UnitId, String>) -> EnsembleState {
        self.observe_raw(addresses)
            .map(|(_, ens)| ens)
            .unwrap_or_default()
    }

    fn observe_with_probe(
        &mut self,
        addresses: &BTreeMap<UnitId, String>,
        address: &str,
    ) -> (EnsembleState, Probe) {
        let Some((obs, ens)) = self.observe_raw(addresses) else {
            return (EnsembleState::default(), Probe::default());
        };
        // The round answered for this server too; only without a quorum leader (no committed
        // membership to show) is its own `conf` worth another round.
        match obs.per_host.get(&host(address)) {
            Some(st) if !ens.members.is_empty() => {
                let probe = Probe {
                    peer_state: st.peer_state.clone(),
                    members: Some(ens.members.clone()),
                    version: st.version.clone(),
                    digest_mismatches: st.digest_mismatches,
                };
                (ens, probe)
            }
            _ => {
                let probe = self.probe(address);
                (ens, probe)
            }
        }
    }

    fn apply(
        &mut self,
        change: Change,
        address: Option<&str>,
        known: &BTreeMap<UnitId, String>,
        super_passwords: &[Secret],
    ) -> Result<(), ChangeError> {
        if let Err(e) = self.connect(known, super_passwords) {
            return Err(classify(&e, change));
        }
        let (Some(rt), Some(manager)) = (&self.rt, self.manager.as_mut()) else {
            return Err(ChangeError::Failed("no session".into()));
        };
        let result = match change {
            Change::Add(u) => {
                let Some(addr) = address else {
                    return Err(ChangeError::Failed(format!("no address for unit {u}")));
                };
                let line = render::server_line(self.flavor, u, addr, true);
                let spec = ServerSpec::parse(&line)
                    .map_err(|e| ChangeError::Failed(format!("bad server line {line}: {e}")))?;
                rt.block_on(manager.add_members(&[spec]))
            }
            Change::Remove(u) => rt.block_on(manager.remove_members(&[server_id(u)])),
        };
        match result {
            Ok(cfg) => {
                tracing::info!("committed {change}: ensemble version {}", cfg.version_hex());
                Ok(())
            }
            Err(e) => {
                tracing::warn!("{change} did not happen: {e}");
                Err(classify(&e, change))
            }
        }
    }

    fn report(&mut self, addresses: &BTreeMap<UnitId, String>) -> QuorumReport {
        let Some(obs) = self.observe_all(addresses) else {
            return QuorumReport::default();
        };
        let unit_name = |h: &str| -> Option<UnitId> {
            addresses
                .iter()
                .find(|(_, a)| host(a) == h)
                .map(|(u, _)| *u)
        };
        let describe = |h: &str, server_id: u32, role: &str| {
            let st = obs.per_host.get(h).cloned().unwrap_or_default();
            MemberReport {
                server_id,
                unit: unit_name(h),
                address: h.to_string(),
                role: role.to_string(),
                state: st.peer_state.clone().unwrap_or_else(|| {
                    if st.not_serving {
                        "not serving".into()
                    } else if st.hung {
                        "not answering".into()
                    } else {
                        "unreachable".into()
                    }
                }),
                zxid: st.zxid.map(|z| format!("0x{z:x}")),
                reachable: st.reachable,
                digest_mismatches: st.digest_mismatches,
                build: st.version.as_ref().map(|v| match &st.built {
                    Some(b) => format!("{v} built on {b}"),
                    None => v.clone(),
                }),
            }
        };
        // Without a quorum leader there is no committed configuration to show: take the newest
        // one a server holds, so that an operator still sees every member and what it says.
        let config = obs.config.clone().or_else(|| {
            obs.per_host
                .values()
                .filter_map(|st| st.config.clone())
                .max_by_key(|c| c.version)
        });
        let members: Vec<MemberReport> = match config.as_ref() {
            Some(c) => c
                .members
                .values()
                .map(|m| describe(&host(&m.host), m.id, m.role.as_str()))
                .collect(),
            // No server answers with a configuration (none serves): every unit's server, as
            // far as it answers at all.
            None => addresses
                .iter()
                .map(|(u, a)| describe(&host(a), server_id(*u), "unknown"))
                .collect(),
        };
        let in_config: Vec<String> = members.iter().map(|m| m.address.clone()).collect();
        // Servers outside the configuration that answer (joiners); an address of a unit that
        // left and does not answer is not a server any more.
        let others = obs
            .per_host
            .iter()
            .filter(|(h, st)| !in_config.contains(h) && st.reachable)
            .filter_map(|(h, st)| Some(describe(h, st.server_id?, "none")))
            .collect();
        let leader = obs
            .leader
            .as_deref()
            .and_then(|l| {
                obs.config
                    .as_ref()?
                    .members
                    .values()
                    .find(|m| host(&m.host) == l)
            })
            .map(|m| format!("server.{}", m.id));
        QuorumReport {
            leader,
            config_version: config.as_ref().map(|c| c.version_hex()),
            syncing: obs.syncing,
            syncing_reason: obs.syncing_reason.clone(),
            members,
            others,
        }
    }

    fn acls_of(
        &mut self,
        paths: &[String],
        admin: &Admin,
    ) -> Result<BTreeMap<String, Option<Vec<AclEntry>>>, ChangeError> {
        self.znodes("reading ACLs", admin, async |m| {
            let mut out = BTreeMap::new();
            for p in paths {
                let acls = m
                    .on_leader(|c| async move { c.acls_if_exists(p).await })
                    .await?;
                out.insert(p.clone(), acls);
            }
            Ok(out)
        })
    }

    fn tree_acls(
        &mut self,
        skip: &[String],
        admin: &Admin,
    ) -> Result<Vec<(String, Vec<AclEntry>)>, ChangeError> {
        self.znodes("walking the znode tree", admin, async |m| {
            m.on_leader(|c| async move { c.acls_tree("/", skip).await })
                .await
        })
    }

    fn create_znode(
        &mut self,
        path: &str,
        data: &[u8],
        acls: &[AclEntry],
        parent_acls: &[AclEntry],
        admin: &Admin,
    ) -> Result<bool, ChangeError> {
        self.znodes(&format!("creating {path}"), admin, async |m| {
            m.on_leader(|c| async move { c.create_znode_with(path, data, acls, parent_acls).await })
                .await
        })
    }

    fn set_acls(
        &mut self,
        path: &str,
        acls: &[AclEntry],
        tree: bool,
        except: &[String],
        admin: &Admin,
    ) -> Result<usize, ChangeError> {
        self.znodes(&format!("setting the ACL of {path}"), admin, async |m| {
            m.on_leader(|c| async move {
                if tree {
                    c.set_acls_tree(path, acls, except).await
                } else {
                    match c.set_acls(path, acls).await {
                        Ok(()) => Ok(1),
                        Err(ZkError::NoNode { .. }) => Ok(0),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
        })
    }

    fn delete_znode(
        &mut self,
        path: &str,
        recursive: bool,
        admin: &Admin,
    ) -> Result<(), ChangeError> {
        self.znodes(&format!("deleting {path}"), admin, async |m| {
            m.on_leader(|c| async move {
                if recursive {
                    c.delete_znode(path).await
                } else {
                    c.delete_one(path).await
                }
            })
            .await
        })
    }

    fn children_data(
        &mut self,
        path: &str,
        admin: &Admin,
    ) -> Result<Vec<(String, Vec<u8>)>, ChangeError> {
        self.znodes(&format!("reading {path}"), admin, async |m| {
            m.on_leader(|c| async move {
                let names = match c.children(path).await {
                    Ok(n) => n,
                    Err(ZkError::NoNode { .. }) => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                let mut out = Vec::new();
                for n in names {
                    match c.get_data(&crate::zk::path::child_path(path, &n)).await {
                        Ok(d) => out.push((n, d)),
                        Err(ZkError::NoNode { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            })
            .await
        })
    }
}

impl EnsembleAdmin {
    /// The hook's one super session to the quorum leader, opened on first need.
    fn connect(
        &mut self,
        known: &BTreeMap<UnitId, String>,
        super_passwords: &[Secret],
    ) -> Result<(), ZkError> {
        if self.manager.is_some() {
            return Ok(());
        }
        let Some(rt) = &self.rt else {
            return Err(ZkError::Unexpected {
                op: "connect".into(),
                detail: "no async runtime".into(),
            });
        };
        let hosts: Vec<String> = known.values().map(|a| host(a)).collect();
        // The current super password first; during a rotation the servers not yet restarted
        // still know only the previous one.
        let mut last = ZkError::Unexpected {
            op: "connect".into(),
            detail: "no super password".into(),
        };
        for pw in super_passwords {
            let creds = zk::Auth::new("super", pw.clone());
            match rt.block_on(ZooKeeperManager::new(
                hosts.clone(),
                creds,
                self.opts.clone(),
            )) {
                Ok(m) => {
                    self.manager = Some(m);
                    return Ok(());
                }
                Err(e @ ZkError::AuthFailed { .. }) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Runs znode work on the quorum leader; admin-layer errors become change errors.
    fn znodes<T>(
        &mut self,
        what: &str,
        admin: &Admin,
        work: impl AsyncFnOnce(&mut ZooKeeperManager) -> Result<T, ZkError>,
    ) -> Result<T, ChangeError> {
        let classify_znode = |e: ZkError| change_error(&e, None, what);
        self.connect(&admin.known, &admin.super_passwords)
            .map_err(classify_znode)?;
        let (Some(rt), Some(manager)) = (&self.rt, self.manager.as_mut()) else {
            return Err(ChangeError::Failed("no session".into()));
        };
        rt.block_on(work(manager)).map_err(classify_znode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::fourlw::samples::*;

    #[test]
    fn a_probe_reads_only_its_own_servers_answers() {
        let me = "127.0.0.11:2181";
        let round: zk::Round = vec![
            (me.into(), "mntr", Ok(MNTR_FOLLOWER.into())),
            (me.into(), "srvr", Ok(SRVR_FOLLOWER.into())),
            (me.into(), "conf", Ok(CONF_FOLLOWER.into())),
            ("127.0.0.13:2181".into(), "mntr", Ok(MNTR_LEADER.into())),
        ];
        let probe = probe_of(round, me);
        assert_eq!(probe.peer_state.as_deref(), Some("following - broadcast"));
        assert_eq!(probe.version.as_deref(), Some("3.8.0"));
        assert!(probe.members.is_some_and(|m| !m.is_empty()));
        assert_eq!(probe_of(Vec::new(), me), Probe::default());
    }

    /// R3 (issue 14): a reconfig refused because the new configuration lacks a synced quorum
    /// (a member restarting meanwhile) is deferred like a member that is not ready, not a
    /// permanent failure.
    #[test]
    fn a_new_configuration_without_a_synced_quorum_is_transient() {
        assert_eq!(
            classify(&ZkError::NewConfigNoQuorum, Change::Add(3)),
            ChangeError::Transient(Hold::MemberNotReady(3))
        );
        assert!(matches!(
            classify(&ZkError::NewConfigNoQuorum, Change::Remove(1)),
            ChangeError::Transient(_)
        ));
    }
}
