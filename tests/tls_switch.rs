//! Issue 17's facts, checked in the lab on real ZooKeeper 3.8.0 (Debian) with the charm's own
//! TLS code: ECDSA P-256 keys and CSRs made by `tls::material`, signed by a CA, checked before
//! use, written as the PEM stores of `tls::serve`, and the three steps of ZooKeeper's
//! no-downtime switch (`portUnification`, then `sslQuorum`, then unification off) applied by
//! hand on a live 3-server ensemble, one server restart at a time, each gated on the quorum
//! answering again. A writer counts acknowledged writes throughout; afterwards every server
//! holds every one of them, the quorum ports speak TLS only (a plaintext peer is turned away,
//! a TLS handshake shows the unit's certificate), and a client holding only the CA reads over
//! TLS on 2182. This is the floor the charm's own switch is measured against.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, IsCa, Issuer,
    KeyPair,
};
use serde_json::json;
use support::Writer;
use zookeeper_charm::harness::{EnsembleOptions, TestEnsemble};
use zookeeper_charm::tls::material::{self, Subject, UnitKey};
use zookeeper_charm::tls::serve::{self, Serving, TlsFiles};
use zookeeper_charm::zk::{ConnectOptions, TlsConfig, ZooKeeperClient};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A CA that signs like a provider (rcgen's own key type, not the charm's).
struct Ca {
    key: KeyPair,
    params: CertificateParams,
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "tls-switch test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).expect("CA").pem();
        Ca { key, params, pem }
    }

    fn sign(&self, csr: &str) -> String {
        let req = CertificateSigningRequestParams::from_pem(csr).expect("the charm's CSR parses");
        req.signed_by(&Issuer::from_params(&self.params, &self.key))
            .expect("signed")
            .pem()
    }
}

/// zoo.cfg with the TLS keys of `serving` in place of whatever TLS keys it had.
fn rewrite_cfg(conf: &Path, serving: Serving, files: &TlsFiles, ip: &str) {
    let path = conf.join("zoo.cfg");
    let text = std::fs::read_to_string(&path).expect("zoo.cfg");
    let managed: Vec<String> = serve::zoo_cfg_pairs(Serving::UnifiedQuorum, files, Some(ip))
        .into_iter()
        .map(|(k, _)| k)
        .chain(["portUnification".to_string(), "sslQuorum".to_string()])
        .chain([
            "ssl.clientAuth".to_string(),
            "ssl.quorum.clientAuth".to_string(),
        ])
        .collect();
    let mut out: String = text
        .lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or_default().trim();
            !managed.iter().any(|m| m == key)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    for (k, v) in serve::zoo_cfg_pairs(serving, files, Some(ip)) {
        out.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(&path, out).expect("write zoo.cfg");
}

fn openssl_handshake(addr: &str, ca: &Path) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-CAfile"])
        .arg(ca)
        .args(["-brief"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A plaintext peer on a TLS-only quorum port: the server reads garbage where a TLS record
/// should be and closes the connection (no reply, EOF or reset within a few seconds).
fn plaintext_turned_away(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return true;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    // What a plaintext election peer sends first: its protocol version and server id.
    let _ = s.write_all(&[0xff, 0xff, 0xff, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9]);
    let mut buf = [0u8; 64];
    !matches!(s.read(&mut buf), Ok(n) if n > 0)
}

#[test]
fn the_three_step_switch_with_the_charms_material_keeps_quorum_and_every_write() {
    let rt = runtime();
    let mut e = rt
        .block_on(TestEnsemble::start(
            3,
            EnsembleOptions {
                // The Netty factory and its jars on the class path; 2182 starts with the
                // harness's own certificates and is taken over below.
                tls: true,
                ..EnsembleOptions::default()
            },
        ))
        .expect("ensemble");
    let ids = e.ids();
    let ca = Ca::new();
    let ca_file = e.dir(1).join("charm-ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("ca file");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let mut files = Vec::new();
    for &id in &ids {
        let ip = e.ip(id).to_string();
        let key = UnitKey::generate().expect("key");
        let csr = material::csr(
            &key,
            &Subject {
                common_name: ip.clone(),
                ips: vec![ip.parse().expect("ip")],
                dns: vec![],
            },
        )
        .expect("csr");
        let signed = ca.sign(&csr);
        let cert = material::parse_cert(&signed).expect("certificate");
        let ca_cert = material::parse_cert(&ca.pem).expect("CA");
        material::check(&cert, &[], &ca_cert, &key, now).expect("the certificate checks");
        let f = TlsFiles::under(&e.dir(id).join("conf"));
        std::fs::create_dir_all(f.key_store.parent().expect("dir")).expect("tls dir");
        std::fs::write(
            &f.key_store,
            serve::key_store_pem(key.pem(), &signed, &[], &ca.pem),
        )
        .expect("key store");
        std::fs::write(&f.trust_store, serve::trust_store_pem(&[&ca.pem])).expect("trust");
        files.push((id, ip, f));
    }

    let auth = json!({"sasl": ["super", e.options().super_password]});
    let plain_hosts = e.hosts(&ids).join(",");
    let mut w = Writer::start(&plain_hosts, auth.clone(), "/tls-switch");
    w.wait_acked(50, Duration::from_secs(60));

    let started = Instant::now();
    let mut restarts = 0;
    for step in [Serving::Unified, Serving::UnifiedQuorum, Serving::Tls] {
        for (id, ip, f) in &files {
            rt.block_on(e.stop(*id)).expect("stop");
            rewrite_cfg(&e.dir(*id).join("conf"), step, f, ip);
            e.restart(*id).expect("restart");
            restarts += 1;
            // Gate: the whole ensemble answers with a quorum again, this server in it.
            rt.block_on(e.wait_quorum(&ids, Duration::from_secs(90)))
                .unwrap_or_else(|err| {
                    let interesting: Vec<String> = ids
                        .iter()
                        .flat_map(|i| {
                            e.log_tail(*i, 3000)
                                .lines()
                                .filter(|l| {
                                    (l.contains("WARN")
                                        || l.contains("ERROR")
                                        || l.contains("xception"))
                                        && !l.contains("mntr")
                                })
                                .map(|l| format!("server {i}: {l}"))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    let n = interesting.len();
                    panic!(
                        "no quorum after restarting server {id} into {step:?}: {err}\n{}",
                        interesting[n.saturating_sub(40)..].join("\n")
                    )
                });
            let before = w.acked();
            w.wait_acked(before + 10, Duration::from_secs(60));
        }
        eprintln!(
            "[figure] TLS step {step:?} done after {:.1} s ({restarts} restarts)",
            started.elapsed().as_secs_f64()
        );
    }
    let before = w.acked();
    w.wait_acked(before + 50, Duration::from_secs(60));
    let summary = w.stop();
    let report = w.check(&e.hosts(&ids), auth.clone());
    for (host, s) in report["servers"].as_object().cloned().unwrap_or_default() {
        assert_eq!(
            s["missing_acked"],
            json!(0),
            "{host} lost acknowledged writes: {s}"
        );
        assert_eq!(s["consistent"], json!(true), "{host}: {s}");
    }
    eprintln!(
        "[figure] TLS switch by hand on 3 servers: {:.1} s, {restarts} restarts, writer {summary}",
        started.elapsed().as_secs_f64()
    );

    // The quorum ports speak TLS only, with the unit's certificate.
    let leader = rt.block_on(e.leader(&ids)).expect("a leader");
    for (id, ip, _) in &files {
        let election = format!("{ip}:3888");
        let shake = openssl_handshake(&election, &ca_file);
        assert!(
            shake.contains("Verification: OK") || shake.contains("Verify return code: 0"),
            "server {id}'s election port over TLS: {shake}"
        );
        assert!(
            plaintext_turned_away(&election),
            "server {id} answered plaintext"
        );
        if *id == leader {
            let shake = openssl_handshake(&format!("{ip}:2888"), &ca_file);
            assert!(
                shake.contains("Verification: OK") || shake.contains("Verify return code: 0"),
                "{shake}"
            );
        }
    }

    // A client holding only the CA (ssl.clientAuth=none) reads over TLS on 2182.
    rt.block_on(async {
        let (_, ip, _) = &files[0];
        let connect = ConnectOptions {
            tls: Some(TlsConfig::new(ca.pem.clone())),
            four_lw_port: Some(2181),
            ..ConnectOptions::default()
        };
        let c = ZooKeeperClient::connect(&format!("{ip}:2182"), &e.super_auth(), &connect)
            .await
            .expect("TLS session with the CA only");
        assert!(c.is_ready().await.expect("ready"));
    });

    // And back to plaintext, one step at a time, with the stores kept until the end.
    let mut w = Writer::start(&plain_hosts, auth.clone(), "/tls-switch-back");
    w.wait_acked(50, Duration::from_secs(60));
    let back = Instant::now();
    let mut restarts = 0;
    for step in [Serving::UnifiedQuorum, Serving::Unified, Serving::Plain] {
        for (id, ip, f) in &files {
            rt.block_on(e.stop(*id)).expect("stop");
            rewrite_cfg(&e.dir(*id).join("conf"), step, f, ip);
            e.restart(*id).expect("restart");
            restarts += 1;
            rt.block_on(e.wait_quorum(&ids, Duration::from_secs(90)))
                .unwrap_or_else(|err| panic!("no quorum after {id} -> {step:?}: {err}"));
            let before = w.acked();
            w.wait_acked(before + 10, Duration::from_secs(60));
        }
    }
    let summary = w.stop();
    let report = w.check(&e.hosts(&ids), auth);
    for (host, s) in report["servers"].as_object().cloned().unwrap_or_default() {
        assert_eq!(
            s["missing_acked"],
            json!(0),
            "{host} lost acknowledged writes: {s}"
        );
    }
    eprintln!(
        "[figure] TLS switch back by hand on 3 servers: {:.1} s, {restarts} restarts, writer {summary}",
        back.elapsed().as_secs_f64()
    );
    // Plaintext quorum again: an election port no longer completes a TLS handshake.
    let (_, ip, _) = &files[0];
    let shake = openssl_handshake(&format!("{ip}:3888"), &ca_file);
    assert!(
        !shake.contains("Verification: OK") && !shake.contains("Verify return code: 0"),
        "{shake}"
    );
}
