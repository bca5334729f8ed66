//! Issue 17's facts, checked in the lab on real ZooKeeper 3.8.0 (Debian) with the charm's own
//! TLS code: ECDSA P-256 keys and CSRs made by `tls::material`, signed by a CA, checked before
//! use, written as the PEM stores of `tls::serve` (`TestEnsemble::charm_tls_material`), and the
//! three steps of ZooKeeper's no-downtime switch (`portUnification`, then `sslQuorum`, then
//! unification off) applied by hand on a live 3-server ensemble, one server restart at a time,
//! each gated on the quorum answering again (`TestEnsemble::roll_tls_step`). A writer counts
//! acknowledged writes throughout; afterwards every server holds every one of them, the quorum
//! ports speak TLS only (a plaintext peer is turned away, a TLS handshake verifies against the
//! CA), and a client holding only the CA reads over TLS on 2182. Then back to plaintext the
//! same way. This is the floor the charm's own switch is measured against (`cargo xtask bench`).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::Writer;
use zookeeper_charm::harness::{EnsembleOptions, TestEnsemble, TlsLab};
use zookeeper_charm::tls::serve::Serving;
use zookeeper_charm::zk::{ConnectOptions, TlsConfig, ZooKeeperClient};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
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

fn verified(shake: &str) -> bool {
    shake.contains("Verification: OK") || shake.contains("Verify return code: 0")
}

/// A plaintext peer on a TLS-only quorum port: the server reads garbage where a TLS record
/// should be and closes the connection (no reply: EOF, a reset, or silence).
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

/// Every step of `steps`, one server at a time, with the writer acknowledging writes after
/// each restart. Returns the restarts.
fn walk(
    rt: &tokio::runtime::Runtime,
    e: &mut TestEnsemble,
    lab: &TlsLab,
    steps: &[Serving],
    w: &Writer,
) -> usize {
    let mut restarts = 0;
    for &step in steps {
        for id in e.ids() {
            let one = TlsLab {
                files: lab
                    .files
                    .iter()
                    .filter(|(i, _)| **i == id)
                    .map(|(i, f)| (*i, f.clone()))
                    .collect(),
                ..lab.clone()
            };
            restarts += rt
                .block_on(e.roll_tls_step(&one, step))
                .unwrap_or_else(|err| {
                    let ids = e.ids();
                    let interesting: Vec<String> = ids
                        .iter()
                        .flat_map(|i| {
                            e.log_tail(*i, 3000)
                                .lines()
                                .filter(|l| {
                                    (l.contains("WARN") || l.contains("ERROR"))
                                        && !l.contains("mntr")
                                })
                                .map(|l| format!("server {i}: {l}"))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    let n = interesting.len();
                    panic!(
                        "server {id} into {step:?}: {err}\n{}",
                        interesting[n.saturating_sub(30)..].join("\n")
                    )
                });
            let before = w.acked();
            w.wait_acked(before + 10, Duration::from_secs(60));
        }
    }
    restarts
}

fn assert_nothing_lost(w: &mut Writer, e: &TestEnsemble, auth: serde_json::Value, what: &str) {
    let summary = w.stop();
    let report = w.check(&e.hosts(&e.ids()), auth);
    for (host, s) in report["servers"].as_object().cloned().unwrap_or_default() {
        assert_eq!(
            s["missing_acked"],
            json!(0),
            "{what}: {host} lost acknowledged writes: {s}"
        );
        assert_eq!(s["consistent"], json!(true), "{what}: {host}: {s}");
    }
    eprintln!("[figure] {what}: writer {summary}");
}

#[test]
fn the_three_step_switch_with_the_charms_material_keeps_quorum_and_every_write() {
    let rt = runtime();
    let mut e = rt
        .block_on(TestEnsemble::start(
            3,
            EnsembleOptions {
                // The Netty factory and its jars on the class path; 2182 starts with the
                // harness's own certificates and is taken over by the charm's.
                tls: true,
                ..EnsembleOptions::default()
            },
        ))
        .expect("ensemble");
    let ids = e.ids();
    let lab = e.charm_tls_material().expect("the charm's TLS material");
    let auth = json!({"sasl": ["super", e.options().super_password]});
    let plain_hosts = e.hosts(&ids).join(",");

    let mut w = Writer::start(&plain_hosts, auth.clone(), "/tls-switch");
    w.wait_acked(50, Duration::from_secs(60));
    let started = Instant::now();
    let up = [Serving::Unified, Serving::UnifiedQuorum, Serving::Tls];
    let restarts = walk(&rt, &mut e, &lab, &up, &w);
    let before = w.acked();
    w.wait_acked(before + 50, Duration::from_secs(60));
    eprintln!(
        "[figure] TLS switch by hand on 3 servers: {:.1} s, {restarts} restarts",
        started.elapsed().as_secs_f64()
    );
    assert_nothing_lost(&mut w, &e, auth.clone(), "switch on");

    // The quorum ports speak TLS only, with certificates the CA signed.
    let leader = rt.block_on(e.leader(&ids)).expect("a leader");
    for &id in &ids {
        let ip = e.ip(id);
        let election = format!("{ip}:3888");
        let shake = openssl_handshake(&election, &lab.ca_file);
        assert!(
            verified(&shake),
            "server {id}'s election port over TLS: {shake}"
        );
        assert!(
            plaintext_turned_away(&election),
            "server {id} answered plaintext"
        );
        if id == leader {
            let shake = openssl_handshake(&format!("{ip}:2888"), &lab.ca_file);
            assert!(verified(&shake), "{shake}");
        }
    }
    // A client holding only the CA (ssl.clientAuth=none) reads over TLS on 2182.
    rt.block_on(async {
        let connect = ConnectOptions {
            tls: Some(TlsConfig::new(lab.ca_pem.clone())),
            four_lw_port: Some(2181),
            ..ConnectOptions::default()
        };
        let c = ZooKeeperClient::connect(&format!("{}:2182", e.ip(1)), &e.super_auth(), &connect)
            .await
            .expect("TLS session with the CA only");
        assert!(c.is_ready().await.expect("ready"));
    });

    // And back to plaintext, one step at a time, with the stores kept until the end.
    let mut w = Writer::start(&plain_hosts, auth.clone(), "/tls-switch-back");
    w.wait_acked(50, Duration::from_secs(60));
    let back = Instant::now();
    let down = [Serving::UnifiedQuorum, Serving::Unified, Serving::Plain];
    let restarts = walk(&rt, &mut e, &lab, &down, &w);
    eprintln!(
        "[figure] TLS switch back by hand on 3 servers: {:.1} s, {restarts} restarts",
        back.elapsed().as_secs_f64()
    );
    assert_nothing_lost(&mut w, &e, auth, "switch back");
    let shake = openssl_handshake(&format!("{}:3888", e.ip(1)), &lab.ca_file);
    assert!(!verified(&shake), "plaintext quorum again: {shake}");
}
