//! What a server serves in each step of ZooKeeper's documented no-downtime TLS switch, as
//! `zoo.cfg` keys (pure). The switch on is `Plain -> Unified -> UnifiedQuorum -> Tls`, one
//! rolling restart per step; the switch off walks it back. Port 2181 stays plain throughout, on
//! the unit's address, for the charm's own admin session (secure-only serving and reconfig
//! without a plain port are broken in 3.8: ZOOKEEPER-4276, ZOOKEEPER-3577); clients get TLS on
//! 2182. PEM key and trust stores, no keytool and no passwords in `zoo.cfg`.

use std::path::{Path, PathBuf};

/// The TLS client port.
pub const SECURE_CLIENT_PORT: u16 = 2182;

/// How a server serves, by step of the switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Serving {
    /// No TLS.
    Plain,
    /// Step 1: the quorum ports accept TLS and plaintext (`portUnification`); peers still dial
    /// plaintext; clients may use 2182.
    Unified,
    /// Step 2: peers dial TLS (`sslQuorum`), still accepting plaintext from those not yet
    /// restarted.
    UnifiedQuorum,
    /// Step 3: quorum TLS only.
    Tls,
}

impl Serving {
    /// The steps in order, switching on.
    pub const ORDER: [Serving; 4] = [
        Serving::Plain,
        Serving::Unified,
        Serving::UnifiedQuorum,
        Serving::Tls,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Serving::Plain => "plain",
            Serving::Unified => "unified",
            Serving::UnifiedQuorum => "unified-tls-quorum",
            Serving::Tls => "tls",
        }
    }

    pub fn parse(s: &str) -> Option<Serving> {
        Serving::ORDER.into_iter().find(|p| p.as_str() == s)
    }

    /// The next step towards `target` (one step at a time, either way).
    pub fn toward(self, target: Serving) -> Serving {
        let i = Serving::ORDER.iter().position(|p| *p == self).unwrap_or(0);
        let t = Serving::ORDER
            .iter()
            .position(|p| *p == target)
            .unwrap_or(0);
        Serving::ORDER[match i.cmp(&t) {
            std::cmp::Ordering::Less => i + 1,
            std::cmp::Ordering::Greater => i - 1,
            std::cmp::Ordering::Equal => i,
        }]
    }

    pub fn unified(self) -> bool {
        matches!(self, Serving::Unified | Serving::UnifiedQuorum)
    }

    pub fn ssl_quorum(self) -> bool {
        matches!(self, Serving::UnifiedQuorum | Serving::Tls)
    }
}

/// Where a server's TLS files live: one PEM key store (private key, then the certificate and
/// its chain) and one PEM trust store (every CA the server trusts: two during a CA rotation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub key_store: PathBuf,
    pub trust_store: PathBuf,
}

impl TlsFiles {
    pub fn under(conf_dir: &Path) -> TlsFiles {
        let dir = conf_dir.join("tls");
        TlsFiles {
            key_store: dir.join("server.pem"),
            trust_store: dir.join("trust.pem"),
        }
    }
}

/// The `zoo.cfg` keys of `serving` (none when plain). `bind` is the address 2182 binds (the
/// unit's address on a shared host; `None` for all interfaces).
pub fn zoo_cfg_pairs(
    serving: Serving,
    files: &TlsFiles,
    bind: Option<&str>,
) -> Vec<(String, String)> {
    if serving == Serving::Plain {
        return Vec::new();
    }
    let key = files.key_store.display().to_string();
    let trust = files.trust_store.display().to_string();
    let mut kv: Vec<(&str, String)> = vec![
        ("secureClientPort", SECURE_CLIENT_PORT.to_string()),
        (
            "serverCnxnFactory",
            "org.apache.zookeeper.server.NettyServerCnxnFactory".into(),
        ),
        ("ssl.keyStore.location", key.clone()),
        ("ssl.keyStore.type", "PEM".into()),
        ("ssl.trustStore.location", trust.clone()),
        ("ssl.trustStore.type", "PEM".into()),
        // Clients are given the CA only (tls-ca), no certificate of their own.
        ("ssl.clientAuth", "none".into()),
        ("ssl.enabledProtocols", "TLSv1.3,TLSv1.2".into()),
        ("ssl.quorum.keyStore.location", key),
        ("ssl.quorum.keyStore.type", "PEM".into()),
        ("ssl.quorum.trustStore.location", trust),
        ("ssl.quorum.trustStore.type", "PEM".into()),
        ("ssl.quorum.enabledProtocols", "TLSv1.3,TLSv1.2".into()),
        // The dialing peer checks the server's certificate (its IP SAN against the address it
        // dials); the accepting side asks for no certificate: it would check the dialer's
        // against the connection's source address, which is not the unit's address on a
        // shared loopback host nor on a multi-homed machine (seen in the lab: "Certificate for
        // <127.0.0.1> doesn't match any of the subject alternative names"). Peers still
        // authenticate each other with the quorum SASL user.
        ("ssl.quorum.clientAuth", "none".into()),
        // Renewed quorum certificates are picked up without a restart (3.8 has no such
        // reload for the client port: a changed certificate there needs a restart).
        ("sslQuorumReloadCertFiles", "true".into()),
    ];
    if let Some(a) = bind {
        kv.push(("secureClientPortAddress", a.to_string()));
    }
    if serving.unified() {
        kv.push(("portUnification", "true".into()));
    }
    if serving.ssl_quorum() {
        kv.push(("sslQuorum", "true".into()));
    }
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The key store's text: the private key, then the certificate and its chain (without the
/// certificate repeated, without the CA: that goes in the trust store).
pub fn key_store_pem(key_pem: &str, cert_pem: &str, chain: &[String], ca_pem: &str) -> String {
    let norm = |s: &str| s.trim().replace("\r\n", "\n");
    let mut out = norm(key_pem);
    out.push('\n');
    let mut seen = vec![norm(cert_pem), norm(ca_pem)];
    out.push_str(&seen[0]);
    out.push('\n');
    for c in chain {
        let c = norm(c);
        if !c.is_empty() && !seen.contains(&c) {
            out.push_str(&c);
            out.push('\n');
            seen.push(c);
        }
    }
    out
}

/// The trust store's text: each CA once, in order.
pub fn trust_store_pem(cas: &[&str]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for c in cas {
        let c = c.trim().replace("\r\n", "\n");
        if !c.is_empty() && !seen.contains(&c) {
            seen.push(c);
        }
    }
    let mut out = seen.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: Serving) -> Vec<String> {
        zoo_cfg_pairs(s, &TlsFiles::under(Path::new("/c")), Some("127.0.0.10"))
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    #[test]
    fn each_step_serves_what_the_documented_switch_says() {
        // (step, portUnification, sslQuorum)
        for (s, unified, quorum) in [
            (Serving::Unified, true, false),
            (Serving::UnifiedQuorum, true, true),
            (Serving::Tls, false, true),
        ] {
            let k = keys(s);
            assert_eq!(k.contains(&"portUnification=true".into()), unified, "{s:?}");
            assert_eq!(k.contains(&"sslQuorum=true".into()), quorum, "{s:?}");
            for must in [
                "secureClientPort=2182",
                "secureClientPortAddress=127.0.0.10",
                "ssl.keyStore.type=PEM",
                "ssl.quorum.trustStore.location=/c/tls/trust.pem",
                "sslQuorumReloadCertFiles=true",
                "ssl.clientAuth=none",
                "ssl.quorum.clientAuth=none",
            ] {
                assert!(k.contains(&must.to_string()), "{s:?} lacks {must}: {k:?}");
            }
            assert!(
                k.iter().all(|l| !l.to_lowercase().contains("password")),
                "{k:?}"
            );
        }
        assert!(keys(Serving::Plain).is_empty());
    }

    #[test]
    fn the_switch_moves_one_step_at_a_time_either_way() {
        assert_eq!(Serving::Plain.toward(Serving::Tls), Serving::Unified);
        assert_eq!(
            Serving::Unified.toward(Serving::Tls),
            Serving::UnifiedQuorum
        );
        assert_eq!(Serving::UnifiedQuorum.toward(Serving::Tls), Serving::Tls);
        assert_eq!(Serving::Tls.toward(Serving::Tls), Serving::Tls);
        assert_eq!(Serving::Tls.toward(Serving::Plain), Serving::UnifiedQuorum);
        assert_eq!(Serving::Unified.toward(Serving::Plain), Serving::Plain);
        for s in Serving::ORDER {
            assert_eq!(Serving::parse(s.as_str()), Some(s));
        }
        assert_eq!(Serving::parse("bogus"), None);
    }

    #[test]
    fn stores_hold_each_certificate_once() {
        let k = key_store_pem(
            "KEY\n",
            "CERT\r\n",
            &["CERT".into(), "INTER".into(), "CA".into()],
            "CA",
        );
        assert_eq!(k, "KEY\nCERT\nINTER\n");
        assert_eq!(trust_store_pem(&["OLD", "NEW", "OLD\n"]), "OLD\nNEW\n");
    }
}
