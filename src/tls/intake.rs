//! One unit's certificate intake (pure): from its memory (key, the request it published, what
//! its stores hold), the provider's answer, what its peers trust and serve, and the time, the
//! one next thing to do. No I/O, no clock.
//!
//! Rules, in order:
//! 1. Without the `certificates` relation: nothing (the stores stay until the switch back
//!    ends; the leader's planner decides that).
//! 2. No key: make one (or take the operator's, `set-tls-private-key`).
//! 3. No request published, or one for another subject (the unit's address or hostname
//!    changed): publish a CSR for the wanted subject.
//! 4. The provider refused the request: block with its reason; the last stores stay.
//! 5. The certificate the stores already hold: renew it (a new CSR, same key) once `now` is
//!    within the margin of its `notAfter`; otherwise only prune the trust store (rule 8).
//! 6. A certificate marked revoked (the provider is rotating its CA): wait for its new one.
//! 7. A new certificate: checked first (key, validity, chain to the CA); a bad one blocks and
//!    the last stores stay. Signed by a CA the stores do not trust yet while they hold a
//!    certificate from another CA (a CA rotation): first trust the new CA next to the old one;
//!    install the new certificate only once every started peer trusts it too (otherwise a peer
//!    still on the old trust would refuse this unit's new certificate on the quorum ports).
//! 8. The old CA leaves the trust store only once every started peer serves a certificate
//!    from the new one.

use super::material::{self, Cert, Subject, TlsInputError, UnitKey};
use super::wire::Answer;

/// What this unit holds (its memory and stores), already parsed.
#[derive(Clone, Debug, Default)]
pub struct Held<'a> {
    pub key: Option<&'a UnitKey>,
    /// The CSR published in the `certificates` unit bag, and the subject it asked for.
    pub requested: Option<(&'a str, &'a Subject)>,
    /// The certificate the key store holds, and the CA it was checked against.
    pub cert: Option<(&'a Cert, &'a Cert)>,
    /// The CAs of the trust store.
    pub trusted: &'a [Cert],
}

/// What the started peers (this unit included) published.
#[derive(Clone, Debug, Default)]
pub struct Peers<'a> {
    /// Per started unit: the fingerprints of the CAs its trust store holds (`tls-trust`).
    pub trust: &'a [Vec<String>],
    /// Per started unit: the fingerprint of the CA of the certificate it serves (`tls-ca`).
    pub serving_ca: &'a [Option<String>],
}

#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub relation: bool,
    pub held: Held<'a>,
    pub wanted: &'a Subject,
    /// The provider's answer to the published CSR.
    pub answer: &'a Answer,
    pub peers: Peers<'a>,
    /// Unix seconds.
    pub now: i64,
    /// Renew this many seconds before `notAfter`.
    pub renew_margin: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    First,
    SubjectChanged,
    Renewal,
}

/// The next thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intake {
    Nothing,
    MakeKey,
    /// Publish a CSR for the wanted subject (same key).
    Request(Why),
    /// Write the stores: the key with `cert` and `chain`, and the trust store with `trust`
    /// (PEM, new CA first); then publish `tls-cert`, `tls-ca`, `tls-trust`.
    Install {
        cert: String,
        chain: Vec<String>,
        ca: String,
        trust: Vec<String>,
    },
    /// Rewrite only the trust store (a CA added before a rotation, or the old one dropped).
    Trust(Vec<String>),
    /// Wait for peers (a rotation under way): how many started peers trust the new CA, of how
    /// many.
    AwaitTrust(usize, usize),
    /// Block with this message; the last stores stay in force.
    Refuse(String),
}

fn parse(p: &super::wire::Provided) -> Result<(Cert, Vec<Cert>, Cert), TlsInputError> {
    let cert = material::parse_cert(&p.certificate)?;
    let ca = material::parse_cert(&p.ca)?;
    let chain = p
        .chain()
        .iter()
        .map(|c| material::parse_cert(c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((cert, chain, ca))
}

/// The next step of the intake (see the module's rules).
pub fn decide(input: &Input<'_>) -> Intake {
    if !input.relation {
        return Intake::Nothing;
    }
    let Some(key) = input.held.key else {
        return Intake::MakeKey;
    };
    match input.held.requested {
        None => return Intake::Request(Why::First),
        Some((_, subject)) if subject != input.wanted => {
            return Intake::Request(Why::SubjectChanged)
        }
        Some(_) => {}
    }
    let p = match input.answer {
        Answer::Refused(why) => {
            return Intake::Refuse(format!(
                "the TLS provider refused this unit's certificate request: {why}"
            ))
        }
        // Nothing to compare with: the trust store stays as it is.
        Answer::Pending => return Intake::Nothing,
        Answer::Certificate(p) => p,
    };
    let (cert, chain, ca) = match parse(p) {
        Ok(x) => x,
        Err(e) => {
            return Intake::Refuse(format!("the TLS provider's certificate is unusable: {e}"))
        }
    };
    if let Some((held, _)) = input.held.cert {
        if held.der == cert.der {
            if input.now >= held.not_after - input.renew_margin {
                return Intake::Request(Why::Renewal);
            }
            return prune(input, &ca);
        }
    }
    if p.revoked() {
        return Intake::Nothing;
    }
    if let Err(e) = material::check(&cert, &chain, &ca, key, input.now) {
        return Intake::Refuse(format!("the TLS provider's certificate is unusable: {e}"));
    }
    let missing: Vec<String> = input
        .wanted
        .ips
        .iter()
        .filter(|ip| !cert.ip_sans.contains(ip))
        .map(|ip| format!("IP {ip}"))
        .chain(
            input
                .wanted
                .dns
                .iter()
                .filter(|d| !cert.dns_sans.contains(d))
                .map(|d| format!("DNS {d}")),
        )
        .collect();
    if !missing.is_empty() {
        return Intake::Refuse(format!(
            "the TLS provider's certificate does not name this unit ({} missing from its subject alternative names); ZooKeeper's peers check it",
            missing.join(", ")
        ));
    }
    let trusted_fps: Vec<&str> = input
        .held
        .trusted
        .iter()
        .map(|c| c.fingerprint.as_str())
        .collect();
    let rotating = input
        .held
        .cert
        .is_some_and(|(_, old_ca)| old_ca.fingerprint != ca.fingerprint);
    if rotating {
        if !trusted_fps.contains(&ca.fingerprint.as_str()) {
            let mut trust = vec![ca.pem()];
            trust.extend(input.held.trusted.iter().map(Cert::pem));
            return Intake::Trust(trust);
        }
        let n = input.peers.trust.len();
        let ready = input
            .peers
            .trust
            .iter()
            .filter(|t| t.contains(&ca.fingerprint))
            .count();
        if ready < n {
            return Intake::AwaitTrust(ready, n);
        }
    }
    let mut trust = vec![ca.pem()];
    trust.extend(
        input
            .held
            .trusted
            .iter()
            .filter(|c| c.fingerprint != ca.fingerprint)
            .map(Cert::pem),
    );
    Intake::Install {
        cert: cert.pem(),
        chain: chain.iter().map(Cert::pem).collect(),
        ca: ca.pem(),
        trust,
    }
}

/// Rule 8: drop CAs no started peer serves any more (the own CA always stays), and only while
/// the provider issues from the own CA (mid-rotation, the new CA must stay).
fn prune(input: &Input<'_>, provider_ca: &Cert) -> Intake {
    let Some((_, own_ca)) = input.held.cert else {
        return Intake::Nothing;
    };
    if provider_ca.fingerprint != own_ca.fingerprint {
        return Intake::Nothing;
    }
    if input.held.trusted.len() <= 1 {
        return Intake::Nothing;
    }
    let everyone_on_own = input
        .peers
        .serving_ca
        .iter()
        .all(|c| c.as_deref() == Some(own_ca.fingerprint.as_str()));
    if !everyone_on_own {
        return Intake::Nothing;
    }
    Intake::Trust(vec![own_ca.pem()])
}

#[cfg(test)]
mod tests {
    use super::super::material::testing::TestCa;
    use super::super::wire::Provided;
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn subject(ip: &str) -> Subject {
        Subject {
            common_name: ip.into(),
            ips: vec![ip.parse().expect("ip")],
            dns: vec![],
        }
    }

    fn provided(ca: &TestCa, csr: &str, until: i64, revoked: bool) -> Provided {
        let cert = ca.sign(csr, NOW - 60, until);
        Provided {
            certificate: cert.clone(),
            certificate_signing_request: csr.into(),
            ca: ca.pem.clone(),
            chain: Some(vec![cert, ca.pem.clone()]),
            revoked: Some(revoked),
        }
    }

    #[test]
    fn from_nothing_to_an_installed_certificate_and_its_renewal() {
        let key = UnitKey::generate().expect("key");
        let want = subject("127.0.0.10");
        let other = subject("127.0.0.99");
        let csr = material::csr(&key, &want).expect("csr");
        let ca = TestCa::new("ca");
        let pending = Answer::Pending;
        let mk = |held: Held<'_>, answer: &Answer| {
            decide(&Input {
                relation: true,
                held,
                wanted: &want,
                answer,
                peers: Peers::default(),
                now: NOW,
                renew_margin: 3600,
            })
        };
        // No relation: nothing, whatever is held.
        assert_eq!(
            decide(&Input {
                relation: false,
                held: Held::default(),
                wanted: &want,
                answer: &pending,
                peers: Peers::default(),
                now: NOW,
                renew_margin: 0
            }),
            Intake::Nothing
        );
        assert_eq!(mk(Held::default(), &pending), Intake::MakeKey);
        let with_key = Held {
            key: Some(&key),
            ..Held::default()
        };
        assert_eq!(mk(with_key.clone(), &pending), Intake::Request(Why::First));
        let asked_other = Held {
            requested: Some((&csr, &other)),
            ..with_key.clone()
        };
        assert_eq!(
            mk(asked_other, &pending),
            Intake::Request(Why::SubjectChanged)
        );
        let asked = Held {
            requested: Some((&csr, &want)),
            ..with_key.clone()
        };
        assert_eq!(mk(asked.clone(), &pending), Intake::Nothing);
        assert!(matches!(
            mk(asked.clone(), &Answer::Refused("IP SANs not allowed".into())),
            Intake::Refuse(m) if m.contains("IP SANs not allowed")
        ));
        // The answer: installed with the CA as the only trust.
        let p = provided(&ca, &csr, NOW + 7200, false);
        let got = mk(asked.clone(), &Answer::Certificate(p.clone()));
        let Intake::Install { trust, .. } = &got else {
            panic!("{got:?}")
        };
        assert_eq!(trust.len(), 1);
        // Once held: nothing until the renewal margin, then a renewal.
        let cert = material::parse_cert(&p.certificate).expect("cert");
        let ca_cert = material::parse_cert(&ca.pem).expect("ca");
        let trusted = vec![ca_cert.clone()];
        let holding = Held {
            cert: Some((&cert, &ca_cert)),
            trusted: &trusted,
            ..asked.clone()
        };
        assert_eq!(
            mk(holding.clone(), &Answer::Certificate(p.clone())),
            Intake::Nothing
        );
        let late = decide(&Input {
            relation: true,
            held: holding,
            wanted: &want,
            answer: &Answer::Certificate(p),
            peers: Peers::default(),
            now: NOW + 7200 - 100,
            renew_margin: 3600,
        });
        assert_eq!(late, Intake::Request(Why::Renewal));
    }

    #[test]
    fn bad_certificates_block_and_keep_the_last_stores() {
        let key = UnitKey::generate().expect("key");
        let other_key = UnitKey::generate().expect("key");
        let want = subject("127.0.0.10");
        let csr = material::csr(&key, &want).expect("csr");
        let ca = TestCa::new("ca");
        let asked = Held {
            key: Some(&key),
            requested: Some((&csr, &want)),
            ..Held::default()
        };
        let run = |p: Provided| {
            decide(&Input {
                relation: true,
                held: asked.clone(),
                wanted: &want,
                answer: &Answer::Certificate(p),
                peers: Peers::default(),
                now: NOW,
                renew_margin: 0,
            })
        };
        let wrong_key = provided(
            &ca,
            &material::csr(&other_key, &want).expect("csr"),
            NOW + 60,
            false,
        );
        let expired = provided(&ca, &csr, NOW - 1, false);
        let mut torn = provided(&ca, &csr, NOW + 60, false);
        torn.certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----".into();
        let elsewhere = provided(
            &ca,
            &material::csr(&key, &subject("127.0.0.99")).expect("csr"),
            NOW + 60,
            false,
        );
        let mut foreign = provided(&ca, &csr, NOW + 60, false);
        foreign.ca = TestCa::new("another").pem;
        foreign.chain = None;
        for (name, p, says) in [
            ("wrong key", wrong_key, "does not match"),
            ("expired", expired, "expired"),
            ("malformed", torn, "malformed"),
            ("foreign CA", foreign, "not signed by the CA"),
            ("another address", elsewhere, "does not name this unit"),
        ] {
            match run(p) {
                Intake::Refuse(m) => assert!(m.contains(says), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_ca_rotation_trusts_both_then_swaps_then_drops_the_old_one() {
        let key = UnitKey::generate().expect("key");
        let want = subject("127.0.0.10");
        let csr = material::csr(&key, &want).expect("csr");
        let old = TestCa::new("old");
        let new = TestCa::new("new");
        let old_cert = material::parse_cert(&old.sign(&csr, NOW - 60, NOW + 9999)).expect("c");
        let old_ca = material::parse_cert(&old.pem).expect("ca");
        let new_ca = material::parse_cert(&new.pem).expect("ca");
        let p = provided(&new, &csr, NOW + 9999, false);
        let only_old = vec![old_ca.clone()];
        let both = vec![new_ca.clone(), old_ca.clone()];
        let run = |trusted: &[Cert],
                   peer_trust: &[Vec<String>],
                   serving: &[Option<String>],
                   answer: &Answer| {
            decide(&Input {
                relation: true,
                held: Held {
                    key: Some(&key),
                    requested: Some((&csr, &want)),
                    cert: Some((&old_cert, &old_ca)),
                    trusted,
                },
                wanted: &want,
                answer,
                peers: Peers {
                    trust: peer_trust,
                    serving_ca: serving,
                },
                now: NOW,
                renew_margin: 60,
            })
        };
        let (o, n) = (old_ca.fingerprint.clone(), new_ca.fingerprint.clone());
        // The provider marked the old certificate revoked: wait for the new one.
        let mut revoked = provided(&old, &csr, NOW + 9999, true);
        revoked.certificate = old.sign(&csr, NOW - 60, NOW + 9999);
        assert_eq!(
            run(
                &only_old,
                &[vec![o.clone()]],
                &[Some(o.clone())],
                &Answer::Certificate(revoked)
            ),
            Intake::Nothing
        );
        // The new certificate: first trust the new CA next to the old one.
        let got = run(
            &only_old,
            &[vec![o.clone()]],
            &[Some(o.clone())],
            &Answer::Certificate(p.clone()),
        );
        assert_eq!(got, Intake::Trust(vec![new_ca.pem(), old_ca.pem()]));
        // Then wait for every peer to trust it.
        let peers_half = [vec![n.clone(), o.clone()], vec![o.clone()]];
        assert_eq!(
            run(
                &both,
                &peers_half,
                &[Some(o.clone()), Some(o.clone())],
                &Answer::Certificate(p.clone())
            ),
            Intake::AwaitTrust(1, 2)
        );
        // Everyone trusts it: install, still trusting the old CA.
        let peers_all = [vec![n.clone(), o.clone()], vec![n.clone(), o.clone()]];
        let got = run(
            &both,
            &peers_all,
            &[Some(o.clone()), Some(o.clone())],
            &Answer::Certificate(p.clone()),
        );
        let Intake::Install { trust, .. } = &got else {
            panic!("{got:?}")
        };
        assert_eq!(trust, &vec![new_ca.pem(), old_ca.pem()]);
        // Installed; the old CA goes only once every started unit serves the new one.
        let new_cert = material::parse_cert(&p.certificate).expect("c");
        let installed = |serving: &[Option<String>]| {
            decide(&Input {
                relation: true,
                held: Held {
                    key: Some(&key),
                    requested: Some((&csr, &want)),
                    cert: Some((&new_cert, &new_ca)),
                    trusted: &both,
                },
                wanted: &want,
                answer: &Answer::Certificate(p.clone()),
                peers: Peers {
                    trust: &peers_all,
                    serving_ca: serving,
                },
                now: NOW,
                renew_margin: 60,
            })
        };
        assert_eq!(
            installed(&[Some(n.clone()), Some(o.clone())]),
            Intake::Nothing
        );
        assert_eq!(
            installed(&[Some(n.clone()), Some(n.clone())]),
            Intake::Trust(vec![new_ca.pem()])
        );
    }
}
