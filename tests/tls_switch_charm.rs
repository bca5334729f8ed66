//! The TLS switch driven by the charm (issue 17), end to end under jujusim with the packed charm,
//! the test provider charm (ops + PyPI charmlibs-interfaces-tls-certificates), real ZooKeeper
//! servers and kazoo clients; a bounded writer counts acknowledged writes throughout and every
//! server is read back on its own afterwards.
//!
//! - Enable on a live 3-unit ensemble: three rolling restarts (one per step), then every server
//!   speaks TLS on 2182 and on its election port (a verified `openssl s_client` handshake; a
//!   plaintext probe gets no ZooKeeper answer), the related client is moved to 2182 with the
//!   CA (`tls-ca` in its `tls` secret) and kazoo connects over TLS with it; then the relation
//!   goes and the same walk back ends in plaintext. No acknowledged write lost either way.
//! - The relation there before the ensemble forms: every server starts in TLS directly (no
//!   switch); two-minute certificates renew on update-status and every server serves the
//!   renewed one; the provider rotates to a new root signing through an intermediate; scale
//!   3 -> 5 -> 3 under TLS. One writer throughout.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{client, kill_after_relation_set, tls_provider_charm, writer_report, Model, Writer};

const APP: &str = "zookeeper";
const ELECTION_PORT: u16 = 3888;

/// A verified TLS handshake with `addr:port` (the certificate chains to `ca` and names the
/// address): `openssl s_client`, bounded.
fn tls_handshake(addr: &str, port: u16, ca: &Path) -> bool {
    let out = Command::new("timeout")
        .args([
            "10",
            "openssl",
            "s_client",
            "-brief",
            "-verify_return_error",
        ])
        .arg("-connect")
        .arg(format!("{addr}:{port}"))
        .arg("-verify_ip")
        .arg(addr)
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::null())
        .output()
        .expect("openssl");
    out.status.success()
}

/// What a plaintext client gets from `addr:port` for a ZooKeeper four-letter word: the first
/// bytes of the answer (empty when the server closed without one).
fn plaintext_answer(addr: &str, port: u16) -> Vec<u8> {
    let Ok(sock) = format!("{addr}:{port}").parse() else {
        return Vec::new();
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = s.write_all(b"ruok");
    let mut buf = vec![0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    buf.truncate(n);
    buf
}

fn zoo_cfg(m: &Model, unit: &str) -> String {
    std::fs::read_to_string(m.workload_dir(unit).join("conf/zoo.cfg")).unwrap_or_default()
}

/// How many rolling restarts the units' servers went through so far.
fn restarts(m: &Model) -> usize {
    m.units(APP)
        .iter()
        .map(|u| m.logged(u, "rolling restart: restarting server.").len())
        .sum()
}

fn app_message(m: &Model) -> String {
    m.status()["applications"][APP]["application-status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every unit's server configuration says `step` (sslQuorum and portUnification as the step
/// has them) and the leader's target is it.
fn every_server_in(m: &Model, tls: bool) -> bool {
    let target = m.peer_app_data(&m.leader(APP))["tls-target"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let want_target = if tls { "tls" } else { "" };
    target == want_target
        && m.units(APP).iter().all(|u| {
            let cfg = zoo_cfg(m, u);
            cfg.contains("sslQuorum=true") == tls
                && !cfg.contains("portUnification")
                && cfg.contains("secureClientPort=2182") == tls
        })
        && m.all_serving(APP)
}

/// The client's view: (tls field, endpoints, tls-ca) from its databag and revealed secrets.
fn client_tls(m: &Model, app: &str) -> (String, String, Option<String>) {
    let mut answer = m.answer(app);
    (
        answer.remove("tls").unwrap_or_default(),
        answer.remove("endpoints").unwrap_or_default(),
        answer.remove("tls-ca"),
    )
}

#[test]
fn tls_switches_on_and_off_on_a_live_ensemble_without_losing_a_write() {
    let provider = tls_provider_charm();
    let m = Model::new();
    m.deploy(3);
    m.settle_until_active(APP);
    // A client with the tls group in a secret, as the data-platform libraries ask.
    m.stub("client", true);
    m.set_data(
        "client",
        &[
            "database=/app",
            r#"requested-secrets=["username","password","tls","tls-ca","uris"]"#,
        ],
        true,
    );
    m.settle();
    let (tls, endpoints, ca) = client_tls(&m, "client");
    assert_eq!(tls, "disabled");
    assert!(endpoints.contains(":2181") && ca.is_none(), "{endpoints}");
    let units = m.units(APP);
    for u in &units {
        assert!(
            !plaintext_answer(&m.address(u), 2181).is_empty(),
            "{u} answers plaintext on 2181"
        );
    }

    let auth = json!({"sasl": ["super", m.super_password()]});
    let mut w = Writer::start(&m.hosts(APP), auth.clone(), "/it");
    w.wait_acked(50, Duration::from_secs(60));
    let before = restarts(&m);

    // Faults on the way: the hook that asks for step 2 is killed right after writing it (Juju
    // then forgets the write, the hook runs again), and a follower's JVM is paused for a while
    // during step 1.
    let armed = kill_after_relation_set(&m, r#""tls-target":"unified-tls-quorum""#);

    // The switch on.
    m.ok(&["deploy", &provider.path().to_string_lossy(), "tls-provider"]);
    m.ok(&["--no-wait", "integrate", APP, "tls-provider"]);
    // One hook at a time, to see what the application status says on the way.
    let mut seen = std::collections::BTreeSet::new();
    let mut frozen: Option<support::FrozenFor> = None;
    let mut paused = false;
    m.wait_for(
        "every server serving TLS only",
        Duration::from_secs(300),
        || {
            if m.step(1) {
                m.settle();
            }
            let message = app_message(&m);
            if !paused && message.starts_with("enabling TLS: step 1/3") {
                let follower = units.iter().find(|u| {
                    support::peer_state(&format!("{}:2181", m.address(u)))
                        == "following - broadcast"
                });
                if let Some(pid) = follower.and_then(|u| m.workload_pid(u)) {
                    eprintln!("pausing a follower's JVM (pid {pid}) for 8 s during step 1");
                    frozen = Some(support::FrozenFor::new(pid, Duration::from_secs(8)));
                    paused = true;
                }
            }
            seen.insert(message);
            every_server_in(&m, true)
        },
    );
    drop(frozen);
    assert!(paused, "a follower was paused during step 1");
    assert!(!armed.exists(), "the hook writing step 2 was killed");
    let killed = m.hook_errors();
    eprintln!("hooks killed: {killed:?}");
    assert_eq!(killed.len(), 1, "one hook killed: {killed:?}");
    m.settle();
    let rolled = restarts(&m) - before;
    eprintln!("enabling: {rolled} rolling restarts; application status on the way: {seen:?}");
    assert_eq!(
        rolled,
        3 * units.len(),
        "one rolling restart per unit per step"
    );
    assert!(
        seen.iter().any(|s| s.starts_with("enabling TLS: step")),
        "the status says the step: {seen:?}"
    );
    assert!(m.all_active(APP), "{}", m.status());

    // The client is moved to TLS with the CA, without doing anything.
    let (tls, endpoints, ca) = client_tls(&m, "client");
    assert_eq!(tls, "enabled");
    let ca = ca.expect("tls-ca in the client's tls secret");
    assert!(
        endpoints.split(',').all(|e| e.ends_with(":2182")),
        "{endpoints}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).expect("ca file");
    for u in &units {
        let a = m.address(u);
        assert!(tls_handshake(&a, 2182, &ca_file), "{u}: TLS on 2182");
        assert!(
            tls_handshake(&a, ELECTION_PORT, &ca_file),
            "{u}: TLS on the election port"
        );
        let answer = plaintext_answer(&a, ELECTION_PORT);
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "{u}: a plaintext probe of the election port gets no ZooKeeper answer: {answer:?}"
        );
        assert!(
            plaintext_answer(&a, 2182).is_empty(),
            "{u}: 2182 answers no plaintext"
        );
    }
    let (user, pw, _, chroot) = m.credentials("client").expect("credentials");
    let r = client(
        &endpoints,
        Some(&chroot),
        json!({"sasl": [user, pw], "tls_ca": ca_file}),
        json!([["create", "/over-tls", "yes"], ["get", "/over-tls"]]),
    );
    assert_eq!(r["connected"], true, "{r}");
    assert_eq!(r["results"][1]["ok"], "yes", "{r}");
    // Without the CA, the client does not trust the servers.
    let stranger = client(
        &endpoints,
        Some(&chroot),
        json!({"sasl": [user, pw], "tls_ca": "/etc/ssl/certs/ca-certificates.crt"}),
        json!([["exists", "/"]]),
    );
    assert_eq!(stranger["connected"], false, "{stranger}");
    writer_report(&m, &mut w, auth.clone(), "enabling");

    // The switch off: the relation goes; the same three steps back.
    let mut w = Writer::start(&m.hosts(APP), auth.clone(), "/it2");
    w.wait_acked(50, Duration::from_secs(60));
    let before = restarts(&m);
    m.ok(&["remove-relation", APP, "tls-provider"]);
    m.wait_for("every server plaintext", Duration::from_secs(300), || {
        m.settle();
        every_server_in(&m, false)
    });
    m.settle();
    let rolled = restarts(&m) - before;
    eprintln!("disabling: {rolled} rolling restarts");
    assert_eq!(rolled, 3 * units.len());
    let (tls, endpoints, ca) = client_tls(&m, "client");
    assert_eq!(tls, "disabled");
    assert!(
        endpoints.split(',').all(|e| e.ends_with(":2181")) && ca.is_none(),
        "{endpoints}"
    );
    for u in &units {
        assert!(
            !tls_handshake(&m.address(u), ELECTION_PORT, &ca_file),
            "{u}: the election port is plaintext again"
        );
    }
    assert!(m.all_active(APP), "{}", m.status());
    assert_eq!(m.hook_errors().len(), 1, "{:?}", m.hook_errors());
    writer_report(&m, &mut w, auth, "disabling");
}

/// SHA-256 fingerprint (lowercase hex) of the certificate `addr:port` serves.
fn served_fingerprint(addr: &str, port: u16) -> Option<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "timeout 10 openssl s_client -connect {addr}:{port} </dev/null 2>/dev/null \
             | openssl x509 -noout -fingerprint -sha256"
        ))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fp = text
        .trim()
        .split_once('=')?
        .1
        .replace(':', "")
        .to_lowercase();
    (!fp.is_empty()).then_some(fp)
}

/// (certificate, its chain, the trust store's CAs) a unit's stores hold.
fn stores(
    m: &Model,
    unit: &str,
) -> Option<(
    zookeeper_charm::tls::material::Cert,
    Vec<zookeeper_charm::tls::material::Cert>,
    Vec<zookeeper_charm::tls::material::Cert>,
)> {
    use zookeeper_charm::tls::material;
    let dir = m.workload_dir(unit).join("conf/tls");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let mut store = material::parse_certs(&read("server.pem")?).ok()?;
    let trust = material::parse_certs(&read("trust.pem")?).ok()?;
    if store.is_empty() {
        return None;
    }
    let cert = store.remove(0);
    Some((cert, store, trust))
}

#[test]
fn with_the_relation_first_the_ensemble_forms_in_tls_renews_rotates_and_scales() {
    let provider = tls_provider_charm();
    let m = Model::new();
    let charm = support::packed_charm();
    // Two-minute certificates: renewed a third of the validity before they expire. (With
    // one-minute ones the CA rotation below, three rolling restarts, outlasts them: servers
    // whose certificate expired mid-rotation cannot rejoin.)
    m.ok(&[
        "deploy",
        &provider.path().to_string_lossy(),
        "tls-provider",
        "--config",
        "validity-minutes=2",
    ]);
    m.ok(&[
        "--no-wait",
        "deploy",
        &charm.to_string_lossy(),
        APP,
        "-n",
        "3",
    ]);
    m.ok(&["integrate", APP, "tls-provider"]);
    m.wait_for("an ensemble serving TLS", Duration::from_secs(240), || {
        m.settle();
        m.all_active(APP) && every_server_in(&m, true)
    });
    for u in m.units(APP) {
        assert!(
            m.logged(&u, "rolling restart").is_empty(),
            "{u}: no switch, TLS from the first start"
        );
    }
    let units = m.units(APP);
    let first: Vec<String> = units
        .iter()
        .map(|u| stores(&m, u).expect("stores").0.fingerprint)
        .collect();
    let auth = json!({"sasl": ["super", m.super_password()]});
    let mut w = Writer::start(&m.hosts(APP), auth.clone(), "/tls");
    w.wait_acked(50, Duration::from_secs(60));

    // Time passes (update-status): every unit renews, and its server serves the new one.
    m.wait_for(
        "every unit serving a renewed certificate",
        Duration::from_secs(180),
        || {
            m.ok(&["tick"]);
            m.settle();
            units.iter().zip(&first).all(|(u, old)| {
                let Some((cert, _, _)) = stores(&m, u) else {
                    return false;
                };
                cert.fingerprint != *old
                    && served_fingerprint(&m.address(u), 2182).as_deref()
                        == Some(cert.fingerprint.as_str())
            })
        },
    );
    assert!(m.all_serving(APP), "{}", m.status());

    // The provider moves to a new root CA signing through an intermediate (a CA rotation, with
    // a chain), with day-long certificates again.
    let old_root = stores(&m, &units[0]).expect("stores").2[0]
        .fingerprint
        .clone();
    m.ok(&[
        "config",
        "tls-provider",
        "intermediate=true",
        "validity-minutes=1440",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let root_file = dir.path().join("root.pem");
    let on_new_root = |m: &Model, u: &str| {
        let Some((cert, chain, trust)) = stores(m, u) else {
            return false;
        };
        let new_root = trust.len() == 1 && trust[0].fingerprint != old_root;
        if new_root {
            std::fs::write(&root_file, trust[0].pem()).expect("root file");
        }
        new_root
            && chain.len() == 1
            && chain[0].is_ca
            && cert.issuer == chain[0].subject
            && tls_handshake(&m.address(u), 2182, &root_file)
            && tls_handshake(&m.address(u), ELECTION_PORT, &root_file)
    };
    m.wait_for(
        "every unit on the new root through the intermediate",
        Duration::from_secs(300),
        || {
            m.ok(&["tick"]);
            m.settle();
            units.iter().all(|u| on_new_root(&m, u))
        },
    );
    m.settle();
    m.assert_quorum(APP);

    // Scale 3 -> 5 -> 3 under TLS: the new units start only with their certificates.
    m.ok(&["add-unit", APP, "-n", "2"]);
    m.wait_for("5 voters serving TLS", Duration::from_secs(240), || {
        m.settle();
        m.units(APP).len() == 5 && m.all_active(APP) && every_server_in(&m, true)
    });
    m.assert_quorum(APP);
    for u in m.units(APP) {
        assert!(on_new_root(&m, &u), "{u}: on the new root");
    }
    let mut newest = m.units(APP);
    newest.sort_by_key(|u| {
        u.rsplit('/')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    for u in newest.iter().rev().take(2) {
        m.ok(&["remove-unit", u]);
    }
    m.wait_for("3 voters serving TLS", Duration::from_secs(240), || {
        m.settle();
        m.units(APP).len() == 3 && m.all_active(APP) && every_server_in(&m, true)
    });
    m.assert_quorum(APP);
    assert!(m.hook_errors().is_empty(), "{:?}", m.hook_errors());
    writer_report(
        &m,
        &mut w,
        auth,
        "renewal, CA rotation and scaling under TLS",
    );
}
