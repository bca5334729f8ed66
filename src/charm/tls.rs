//! The `certificates` relation, unit side (issue 17): runs the certificate intake
//! ([`crate::tls::intake`]) until it has nothing more to do in this hook: makes the unit's key
//! (a 0600 file next to the stores), publishes the CSR in its `certificates` unit bag,
//! installs a checked certificate into the PEM stores (written atomically, 0600), handles
//! renewal and CA rotation, and publishes the evidence the leader's switch planner reads in
//! the peer bag: `tls-cert` (the certificate's fingerprint), `tls-ca` (its CA's), `tls-trust`
//! (the CAs of the trust store). A refusal or a bad certificate blocks the unit with the reason
//! and leaves the last stores in force.
//!
//! The switch ([`ZooKeeperCharm::tls_switch`], the leader): `tls-target` in the peer application
//! bag moves one step of [`crate::tls::phase`] at a time on the units' evidence (`tls-cert`,
//! and `tls-serving`: the step each running server was started into, published once it serves
//! again). The target is one of the server's inputs: a moved target renders every unit's files
//! again and the rolling restart takes them in, one server at a time. A server serving TLS whose
//! stores changed (a renewal, a CA rotation) is behind too, and restarts in turn (3.8 reloads
//! no client-port certificate). Clients are moved to 2182 with the CAs once every server serves
//! it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use super::hook::Snapshot;
use super::{CharmError, ZooKeeperCharm};
use crate::engine::status::UnitCondition;
use crate::juju::tools::{Databag, HookTools as _};
use crate::juju::RelationId;
use crate::quorum::plan::UnitId;
use crate::state::peer::{self, PeerState};
use crate::tls::intake::{self, Intake};
use crate::tls::material::{self, Cert, Subject, UnitKey};
use crate::tls::phase;
use crate::tls::serve::Serving;
use crate::tls::{serve, wire};

pub(super) const ENDPOINT: &str = "certificates";
pub const KEY_TLS_CERT: &str = "tls-cert";
pub const KEY_TLS_CA: &str = "tls-ca";
pub const KEY_TLS_TRUST: &str = "tls-trust";
/// Peer application bag (leader): the step of the switch every server is asked to serve.
pub const KEY_TLS_TARGET: &str = "tls-target";
/// Peer unit bag: the step this unit's running server serves (absent: plain).
pub const KEY_TLS_SERVING: &str = "tls-serving";
/// The incumbent's keys, kept for the tools and charms that read them: app `tls`
/// (`enabled` while the relation is there) and `switching-encryption` (`started` while the
/// switch runs); app and unit `quorum` (`ssl` once peers dial TLS); unit `unified` (`true`
/// while the unit serves with `portUnification`).
const KEY_APP_TLS: &str = "tls";
const KEY_APP_SWITCHING: &str = "switching-encryption";
const KEY_UNIFIED: &str = "unified";

/// What clients are told about TLS ([`ZooKeeperCharm::clients_tls`]).
pub(super) enum ClientsTls {
    Plain,
    /// The CAs to trust (PEM).
    Tls(String),
    Unknown,
}

/// The step the leader asks every server to serve (plain when unset or unreadable).
pub(super) fn target(peer: &PeerState) -> Serving {
    peer.app
        .get(KEY_TLS_TARGET)
        .and_then(|v| Serving::parse(v))
        .unwrap_or(Serving::Plain)
}

/// The unit published a certificate it checked and installed.
pub(super) fn holds_cert(bag: &Databag) -> bool {
    bag.get(KEY_TLS_CERT).is_some_and(|v| !v.is_empty())
}

/// What the peer relation says about each unit's TLS, for the switch planner. A unit's server
/// runs once it said what it was started into (at the start, before it serves) or announced
/// `state=started`; a started unit that never said what it serves runs a server started before
/// TLS existed: plain.
pub(super) fn switch_units(peer: &PeerState) -> BTreeMap<UnitId, phase::UnitTls> {
    peer.units
        .iter()
        .map(|(id, u)| {
            let said = u.bag.get(KEY_TLS_SERVING).filter(|v| !v.is_empty());
            let serving = match said {
                Some(v) => Serving::parse(v),
                None => Some(Serving::Plain),
            };
            (
                *id,
                phase::UnitTls {
                    started: u.started() || said.is_some(),
                    holds_cert: holds_cert(&u.bag),
                    serving,
                },
            )
        })
        .collect()
}

/// A unit's peer-bag keys for the step its running server serves.
pub(super) fn serving_keys(serving: Serving) -> Databag {
    [
        (KEY_TLS_SERVING.to_string(), serving.as_str().to_string()),
        (
            KEY_UNIFIED.to_string(),
            if serving.unified() { "true" } else { "" }.to_string(),
        ),
        (
            peer::KEY_QUORUM.to_string(),
            if serving.ssl_quorum() { "ssl" } else { "" }.to_string(),
        ),
    ]
    .into()
}

/// Renew this long before `notAfter`: the operator's margin (`certificate-renewal-margin`), or
/// a third of the validity, at most a week; never more than half the validity (a longer margin
/// would renew every certificate as soon as it arrives, forever).
fn renew_margin(cert: &Cert, configured: Option<u64>) -> i64 {
    let validity = (cert.not_after - cert.not_before).max(0);
    let margin = match configured {
        Some(secs) => i64::try_from(secs).unwrap_or(i64::MAX),
        None => (validity / 3).min(7 * 24 * 3600),
    };
    margin.clamp(0, validity / 2)
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
        // An invalid configuration keeps the last valid TLS options (a subject that changed
        // with it would send new requests, and again once it is fixed).
        if let Some(c) = &s.config {
            self.local.tls_options = Some((c.include_ip_sans, c.renewal_margin));
        }
        let (include_ips, configured_margin) = self.local.tls_options.unwrap_or((true, None));
        let wanted = Subject {
            common_name: address.clone(),
            ips: if include_ips {
                address.parse::<IpAddr>().into_iter().collect()
            } else {
                Vec::new()
            },
            dns: Some(s.hostname.clone())
                .filter(|h| !h.is_empty())
                .into_iter()
                .collect(),
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
                let (ca, trust) = self.serving_evidence(held_ca.as_ref(), &trusted);
                peer_trust.push(trust);
                peer_ca.push(ca);
            }
            let margin = held_cert
                .as_ref()
                .map(|c| renew_margin(c, configured_margin))
                .unwrap_or_default();
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
                    // Name the units whose running server does not trust the new CA yet.
                    let new_ca = match &answer {
                        wire::Answer::Certificate(p) => {
                            material::parse_cert(&p.ca).ok().map(|c| c.fingerprint)
                        }
                        _ => None,
                    };
                    let behind: Vec<&str> = s
                        .peer
                        .units
                        .iter()
                        .filter(|(id, u)| **id != me && u.started())
                        .filter(|(_, u)| {
                            new_ca.as_ref().is_some_and(|fp| {
                                !u.bag
                                    .get(KEY_TLS_TRUST)
                                    .is_some_and(|t| t.split(',').any(|x| x == fp))
                            })
                        })
                        .map(|(_, u)| u.name.as_str())
                        .collect();
                    let waiting = if behind.is_empty() {
                        String::new()
                    } else {
                        format!(" (waiting for {})", behind.join(", "))
                    };
                    self.conditions.push(UnitCondition::TlsWaiting(format!(
                        "TLS CA rotation: {n} of {of} units trust the new CA{waiting}"
                    )));
                    break;
                }
                Intake::Refuse(m) => {
                    self.tls_refused(m);
                    break;
                }
            }
        }
        // A certificate that expired while its renewal went unanswered: its peers refuse it
        // (and a restart would not come back): say so, whatever the rest said.
        if let (Some(cert), _, _) = self.held(&files)? {
            if cert.not_after <= now() {
                self.tls_refused(format!(
                    "this unit's TLS certificate expired (notAfter {}); the TLS provider has not \
                     answered its renewal",
                    material::utc(cert.not_after)
                ));
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

    /// The CA of the certificate this unit serves and the CAs it trusts, as its running
    /// server loaded them when it serves TLS (stores changed since take effect only after its
    /// restart: a CA rotation moves on only once every server runs with what it needs), else
    /// as its stores hold them.
    fn serving_evidence(
        &self,
        held_ca: Option<&Cert>,
        trusted: &[Cert],
    ) -> (Option<String>, Vec<String>) {
        let serving = self.served_step();
        if serving == Serving::Plain {
            (
                held_ca.map(|c| c.fingerprint.clone()),
                trusted.iter().map(|c| c.fingerprint.clone()).collect(),
            )
        } else {
            (
                self.local.tls_loaded_ca.clone(),
                self.local.tls_loaded_trust.clone(),
            )
        }
    }

    /// The step of the switch this unit's running server was started into (plain before TLS
    /// existed).
    pub(super) fn served_step(&self) -> Serving {
        self.local
            .tls_serving
            .as_deref()
            .and_then(Serving::parse)
            .unwrap_or(Serving::Plain)
    }

    /// The fingerprints of the CA the key store's certificate chains to and of the trust
    /// store's CAs (what a server starting now loads; for [`Self::mark_loaded`]).
    pub(super) fn stores_cas(&self) -> Result<(Option<String>, Vec<String>), CharmError> {
        let files = Files::under(&self.workload.paths().conf_dir);
        let (_, trust, ca) = self.held(&files)?;
        Ok((
            ca.map(|c| c.fingerprint),
            trust.into_iter().map(|c| c.fingerprint).collect(),
        ))
    }

    /// `tls-cert` (an unexpired certificate the stores hold), `tls-ca` (the CA of the one it
    /// serves), `tls-trust` (the trust store's CAs) in this unit's peer bag.
    fn publish_tls_evidence(&mut self, s: &mut Snapshot, files: &Files) -> Result<(), CharmError> {
        let (cert, trust, ca) = self.held(files)?;
        let cert = cert
            .filter(|c| c.not_after > now())
            .map(|c| c.fingerprint)
            .unwrap_or_default();
        let (serving_ca, trust) = self.serving_evidence(ca.as_ref(), &trust);
        let serving_ca = serving_ca.unwrap_or_default();
        self.write_unit_bag(
            s,
            [
                (KEY_TLS_CERT.to_string(), cert),
                (KEY_TLS_CA.to_string(), serving_ca),
                (KEY_TLS_TRUST.to_string(), trust.join(",")),
            ]
            .into(),
        )
    }

    /// The relation is gone and this unit's server serves plaintext again under a plain
    /// target: its certificate and trust store go (the key stays: an operator's own key is
    /// used again with the next provider), and so does its evidence, so that a provider
    /// related later starts from nothing (never from certificates of the last one).
    pub(super) fn tls_forget(&mut self, s: &mut Snapshot) -> Result<(), CharmError> {
        let files = Files::under(&self.workload.paths().conf_dir);
        for path in [&files.stores.key_store, &files.stores.trust_store] {
            if self.workload.read(path)?.is_some() {
                self.workload.remove(path)?;
                tracing::info!("TLS is off: removed {}", path.display());
            }
        }
        self.write_unit_bag(
            s,
            [
                (KEY_TLS_CERT.to_string(), String::new()),
                (KEY_TLS_CA.to_string(), String::new()),
                (KEY_TLS_TRUST.to_string(), String::new()),
            ]
            .into(),
        )
    }
}

impl ZooKeeperCharm<'_> {
    /// The leader's switch: moves `tls-target` one step when the evidence says so (see
    /// [`crate::tls::phase`]), keeps the incumbent's keys in line, and says the progress for
    /// the application status. A moved target changes every server's inputs: the files are
    /// rendered again and the rolling restart takes them in, one server at a time.
    /// Returns whether the target moved.
    /// A TLS switch is under way (the target is not where the relation says, or a server does
    /// not serve it yet).
    pub(super) fn tls_in_flight(&self, s: &Snapshot) -> bool {
        let units = switch_units(&s.peer);
        let input = phase::Input {
            relation: s.tls.is_some(),
            target: s.tls_target,
            units: &units,
        };
        !matches!(phase::decide(&input), Ok(phase::Decision::Done))
    }

    pub(super) fn tls_switch(&mut self, s: &mut Snapshot) -> Result<bool, CharmError> {
        let units = switch_units(&s.peer);
        let input = phase::Input {
            relation: s.tls.is_some(),
            target: s.tls_target,
            units: &units,
        };
        let decision = match phase::decide(&input) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("{e}; the TLS switch holds where it is");
                return Ok(false);
            }
        };
        self.tls_progress = phase::progress(&input, &decision);
        let target = match decision {
            phase::Decision::Advance(next) => {
                tracing::info!(
                    "TLS switch: every server serves {}; asking for {}",
                    s.tls_target.as_str(),
                    next.as_str()
                );
                next
            }
            _ => s.tls_target,
        };
        let switching = !matches!(decision, phase::Decision::Done);
        let want: Databag = [
            (
                KEY_TLS_TARGET.to_string(),
                if target == Serving::Plain {
                    ""
                } else {
                    target.as_str()
                }
                .to_string(),
            ),
            (
                KEY_APP_TLS.to_string(),
                if s.tls.is_some() { "enabled" } else { "" }.to_string(),
            ),
            (
                peer::KEY_QUORUM.to_string(),
                if target.ssl_quorum() { "ssl" } else { "" }.to_string(),
            ),
            (
                KEY_APP_SWITCHING.to_string(),
                if switching { "started" } else { "" }.to_string(),
            ),
        ]
        .into();
        let diff: Databag = want
            .into_iter()
            .filter(|(k, v)| s.peer.app.get(k).map(String::as_str).unwrap_or("") != v.as_str())
            .collect();
        if diff.is_empty() {
            return Ok(false);
        }
        self.tools.relation_set(s.peer.relation, true, &diff)?;
        s.peer.apply_app_write(&diff);
        if let Some(pv) = self.view.as_mut().and_then(|v| v.peer.as_mut()) {
            pv.apply_app_write(&diff);
        }
        let moved = s.tls_target != target;
        s.tls_target = target;
        if let Some(config) = &s.config {
            if s.desired.is_some() {
                s.desired = Some(super::reconcile::desired_fingerprint(config, &s.peer));
            }
        }
        Ok(moved)
    }

    /// A fingerprint of this unit's TLS stores as they are on disk (`None` without them). The
    /// trust store counts: a changed one is taken in by a restart, never left to ZooKeeper's
    /// file watching (in the lab a rotated trust store was not picked up by the quorum
    /// ports, and the quorum lost its leader once peers presented new-CA certificates).
    pub(super) fn tls_stores_fingerprint(&self) -> Result<Option<String>, CharmError> {
        let files = serve::TlsFiles::under(&self.workload.paths().conf_dir);
        let key = self.workload.read(&files.key_store)?;
        let trust = self.workload.read(&files.trust_store)?;
        Ok(match (key, trust) {
            (None, None) => None,
            (k, t) => Some(crate::restart::fingerprint(&format!(
                "{}\u{0}{}",
                k.unwrap_or_default(),
                t.unwrap_or_default()
            ))),
        })
    }

    /// The running server serves TLS from stores that changed since it started (a renewal,
    /// a CA rotation): it is behind and takes a turn in the rolling restart (3.8 reloads no
    /// client-port certificate).
    pub(super) fn tls_stores_changed(&self) -> Result<bool, CharmError> {
        let serving = self.served_step();
        if serving == Serving::Plain {
            return Ok(false);
        }
        Ok(self.tls_stores_fingerprint()? != self.local.tls_loaded)
    }

    /// What clients are told: plaintext, or TLS with the CAs this unit trusts (two during a
    /// CA rotation). `Unknown` when every server serves TLS but this unit has no trust store
    /// to give (a leader that has not installed its own yet): the answers stay as they are.
    pub(super) fn clients_tls(&self, s: &Snapshot) -> Result<ClientsTls, CharmError> {
        if !phase::clients_use_tls(s.tls.is_some(), &switch_units(&s.peer)) {
            return Ok(ClientsTls::Plain);
        }
        let files = serve::TlsFiles::under(&self.workload.paths().conf_dir);
        Ok(match self.workload.read(&files.trust_store)? {
            Some(t) if t.contains("BEGIN CERTIFICATE") => ClientsTls::Tls(t),
            _ => ClientsTls::Unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(validity: i64) -> Cert {
        Cert {
            der: Vec::new(),
            subject: String::new(),
            issuer: String::new(),
            not_before: 1_000,
            not_after: 1_000 + validity,
            ip_sans: Vec::new(),
            dns_sans: Vec::new(),
            is_ca: false,
            fingerprint: String::new(),
            public_key_info: Vec::new(),
        }
    }

    #[test]
    fn the_renewal_margin_is_the_operators_within_half_the_validity() {
        let day = 86_400;
        // Automatic: a third of the validity, at most a week.
        assert_eq!(renew_margin(&cert(90), None), 30);
        assert_eq!(renew_margin(&cert(90 * day), None), 7 * day);
        // The operator's margin, unless it exceeds half the validity.
        assert_eq!(
            renew_margin(&cert(90 * day), Some(14 * day as u64)),
            14 * day
        );
        assert_eq!(renew_margin(&cert(120), Some(600)), 60);
        assert_eq!(renew_margin(&cert(0), Some(600)), 0);
    }
}
