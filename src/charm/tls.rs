//! The `certificates` relation, unit side (issue 17): runs the certificate intake
//! ([`crate::tls::intake`]) until it has nothing more to do in this hook: makes the unit's key
//! (a 0600 file next to the stores), publishes the CSR in its `certificates` unit bag,
//! installs a checked certificate into the PEM stores (written atomically, 0600), handles
//! renewal and CA rotation, and publishes the evidence the leader's switch planner reads in
//! the peer bag: `tls-cert` (the certificate's fingerprint), `tls-ca` (its CA's), `tls-trust`
//! (the CAs of the trust store). A refusal or a bad certificate blocks the unit with the reason
//! and leaves the last stores in force. Serving TLS (the switch itself) comes next: until then
//! the stores are ready and unused.

use std::net::IpAddr;
use std::path::PathBuf;

use super::hook::Snapshot;
use super::{CharmError, ZooKeeperCharm};
use crate::engine::status::UnitCondition;
use crate::juju::tools::{Databag, HookTools as _};
use crate::juju::RelationId;
use crate::tls::intake::{self, Intake};
use crate::tls::material::{self, Cert, Subject, UnitKey};
use crate::tls::{serve, wire};

pub(super) const ENDPOINT: &str = "certificates";
pub const KEY_TLS_CERT: &str = "tls-cert";
pub const KEY_TLS_CA: &str = "tls-ca";
pub const KEY_TLS_TRUST: &str = "tls-trust";

/// Renew this long before `notAfter`: a third of the validity, at most a week.
fn renew_margin(cert: &Cert) -> i64 {
    ((cert.not_after - cert.not_before) / 3).clamp(0, 7 * 24 * 3600)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The TLS files of a unit.
struct Files {
    stores: serve::TlsFiles,
    key: PathBuf,
}

impl Files {
    fn under(conf: &std::path::Path) -> Files {
        let stores = serve::TlsFiles::under(conf);
        let dir = stores
            .key_store
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        Files {
            key: dir.join("unit.key"),
            stores,
        }
    }
}

/// Where a unit keeps its TLS private key.
pub(super) fn key_path(conf_dir: &std::path::Path) -> PathBuf {
    Files::under(conf_dir).key
}

/// What a unit's stores hold: its certificate, the trust store's CAs, and the one of them the
/// certificate chains to.
type Held = (Option<Cert>, Vec<Cert>, Option<Cert>);

fn first_csr(bag: &Databag) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(bag.get(wire::REQUESTS_KEY)?).ok()?;
    v.get(0)?
        .get("certificate_signing_request")?
        .as_str()
        .map(str::to_string)
}

impl ZooKeeperCharm<'_> {
    /// The intake, until it has nothing more to do in this hook (at most a few moves).
    pub(super) fn tls_intake(
        &mut self,
        s: &mut Snapshot,
        rel: RelationId,
    ) -> Result<(), CharmError> {
        let Some(address) = s.address.clone() else {
            return Ok(());
        };
        let wanted = Subject {
            common_name: address.clone(),
            ips: address.parse::<IpAddr>().into_iter().collect(),
            dns: vec![s.hostname.clone()],
        };
        let files = Files::under(&self.workload.paths().conf_dir);
        let provider = self
            .tools
            .relation_remote_app(rel)?
            .filter(|a| !a.is_empty());
        let app_bag = match &provider {
            Some(a) => self.tools.relation_get(rel, a, true)?,
            None => Databag::new(),
        };
        let own_bag = self
            .tools
            .relation_get(rel, self.ctx.unit.as_str(), false)?;
        let mut published = first_csr(&own_bag);
        let me = s.me;
        let me_started = s.peer.unit(me).is_some_and(|u| u.started());
        // The other started units' evidence; this unit's own is taken from its stores on each
        // pass (its bag may lag what this hook just wrote).
        let others: Vec<(Vec<String>, Option<String>)> = s
            .peer
            .units
            .iter()
            .filter(|(id, u)| **id != me && u.started())
            .map(|(_, u)| {
                let trust = u
                    .bag
                    .get(KEY_TLS_TRUST)
                    .map(|t| {
                        t.split(',')
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    trust,
                    u.bag.get(KEY_TLS_CA).filter(|c| !c.is_empty()).cloned(),
                )
            })
            .collect();
        for _ in 0..6 {
            let key = self
                .workload
                .read(&files.key)?
                .and_then(|p| UnitKey::from_stored(&p).ok());
            let spki = key.as_ref().and_then(|k| k.public_key_info().ok());
            let asked = published
                .as_deref()
                .and_then(material::csr_subject)
                .filter(|(_, pk)| Some(pk) == spki.as_ref())
                .map(|(subject, _)| subject);
            let answer = match (&published, &asked) {
                (Some(csr), Some(_)) => {
                    match wire::answer_for(|k| app_bag.get(k).map(String::as_str), csr) {
                        Ok(a) => a,
                        Err(e) => {
                            self.tls_refused(e.to_string());
                            break;
                        }
                    }
                }
                _ => wire::Answer::Pending,
            };
            let (held_cert, trusted, held_ca) = self.held(&files)?;
            let mut peer_trust: Vec<Vec<String>> = others.iter().map(|(t, _)| t.clone()).collect();
            let mut peer_ca: Vec<Option<String>> = others.iter().map(|(_, c)| c.clone()).collect();
            if me_started {
                peer_trust.push(trusted.iter().map(|c| c.fingerprint.clone()).collect());
                peer_ca.push(held_ca.as_ref().map(|c| c.fingerprint.clone()));
            }
            let margin = held_cert.as_ref().map(renew_margin).unwrap_or_default();
            let action = intake::decide(&intake::Input {
                relation: true,
                held: intake::Held {
                    key: key.as_ref(),
                    requested: match (&published, &asked) {
                        (Some(c), Some(subject)) => Some((c.as_str(), subject)),
                        _ => None,
                    },
                    cert: held_cert.as_ref().zip(held_ca.as_ref()),
                    trusted: &trusted,
                },
                wanted: &wanted,
                answer: &answer,
                peers: intake::Peers {
                    trust: &peer_trust,
                    serving_ca: &peer_ca,
                },
                now: now(),
                renew_margin: margin,
            });
            tracing::debug!(?action, "TLS intake");
            match action {
                Intake::Nothing => break,
                Intake::MakeKey => {
                    let k = match UnitKey::generate() {
                        Ok(k) => k,
                        Err(e) => {
                            self.tls_refused(format!("cannot make a TLS key: {e}"));
                            break;
                        }
                    };
                    self.workload.write(&files.key, k.pem(), true)?;
                    tracing::info!("made this unit's TLS private key");
                }
                Intake::Request(why) => {
                    let Some(k) = key else { break };
                    let csr = match material::csr(&k, &wanted) {
                        Ok(c) => c,
                        Err(e) => {
                            self.tls_refused(e.to_string());
                            break;
                        }
                    };
                    let data: Databag = [(
                        wire::REQUESTS_KEY.to_string(),
                        wire::requests_value(std::slice::from_ref(&csr)),
                    )]
                    .into();
                    self.tools.relation_set(rel, false, &data)?;
                    tracing::info!("asked the TLS provider for a certificate ({why:?})");
                    published = Some(csr);
                }
                Intake::Install {
                    cert,
                    chain,
                    ca,
                    trust,
                } => {
                    let Some(k) = key else { break };
                    let store = serve::key_store_pem(k.pem(), &cert, &chain, &ca);
                    let trust_refs: Vec<&str> = trust.iter().map(String::as_str).collect();
                    // The trust store first (it must hold the CA before the new certificate
                    // is served), then the key store, then the CA it was checked against.
                    self.workload.write(
                        &files.stores.trust_store,
                        &serve::trust_store_pem(&trust_refs),
                        true,
                    )?;
                    // One rename: the key with the certificate checked against it, and its chain.
                    // The CA it chains to is found again in the trust store, never kept apart.
                    self.workload.write(&files.stores.key_store, &store, true)?;
                    tracing::info!(
                        "installed a TLS certificate from the provider (CA {})",
                        ca.lines().nth(1).unwrap_or_default()
                    );
                }
                Intake::Trust(list) => {
                    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
                    self.workload.write(
                        &files.stores.trust_store,
                        &serve::trust_store_pem(&refs),
                        true,
                    )?;
                    tracing::info!("TLS trust store now holds {} CA(s)", list.len());
                }
                Intake::AwaitTrust(n, of) => {
                    self.conditions.push(UnitCondition::TlsWaiting(format!(
                        "TLS CA rotation: {n} of {of} units trust the new CA"
                    )));
                    break;
                }
                Intake::Refuse(m) => {
                    self.tls_refused(m);
                    break;
                }
            }
        }
        self.publish_tls_evidence(s, &files)
    }

    fn tls_refused(&mut self, message: String) {
        tracing::warn!("{message}");
        self.conditions.push(UnitCondition::TlsRefused(message));
    }

    /// What the stores hold: the certificate (the key store's first), the trust store's CAs,
    /// and which of them the certificate chains to (through the key store's chain).
    fn held(&self, files: &Files) -> Result<Held, CharmError> {
        let store = self
            .workload
            .read(&files.stores.key_store)?
            .and_then(|t| material::parse_certs(&t).ok())
            .unwrap_or_default();
        let trusted = self
            .workload
            .read(&files.stores.trust_store)?
            .and_then(|t| material::parse_certs(&t).ok())
            .unwrap_or_default();
        let Some((cert, chain)) = store.split_first() else {
            return Ok((None, trusted, None));
        };
        let ca = trusted
            .iter()
            .find(|ca| material::chains_to(cert, chain, ca))
            .cloned();
        Ok((Some(cert.clone()), trusted, ca))
    }

    /// `tls-cert`, `tls-ca`, `tls-trust` in this unit's peer bag, from what its stores hold.
    fn publish_tls_evidence(&mut self, s: &mut Snapshot, files: &Files) -> Result<(), CharmError> {
        let (cert, trust, ca) = self.held(files)?;
        let fp = |c: &Option<Cert>| {
            c.as_ref()
                .map(|c| c.fingerprint.clone())
                .unwrap_or_default()
        };
        let trust: Vec<String> = trust.iter().map(|c| c.fingerprint.clone()).collect();
        self.write_unit_bag(
            s,
            [
                (KEY_TLS_CERT.to_string(), fp(&cert)),
                (KEY_TLS_CA.to_string(), fp(&ca)),
                (KEY_TLS_TRUST.to_string(), trust.join(",")),
            ]
            .into(),
        )
    }
}
