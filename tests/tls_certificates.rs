//! The `certificates` relation, unit side (issue 17), end to end under jujusim with the packed
//! charm and the test provider charm (ops + PyPI charmlibs-interfaces-tls-certificates): every
//! unit makes its key (a 0600 file), asks for a certificate for its address and hostname,
//! installs the checked answer into its PEM stores and publishes the evidence in its peer bag;
//! the operator's own key (set-tls-private-key) gets a certificate of its own (CA rotations:
//! tests/tls_switch_charm.rs). A stub provider sends every bad input: a certificate its CA did
//! not sign, one for another key, a malformed PEM, an expired one, JSON that is not the
//! interface: each blocks the unit with the reason and installs nothing, never a hook error;
//! once a working certificate serves TLS, the same bad answers leave it in force.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::Value;
use support::{tls_provider_charm, Model};
use zookeeper_charm::tls::material::{self, UnitKey};
use zookeeper_charm::tls::wire;

const APP: &str = "zookeeper";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn tls_dir(m: &Model, unit: &str) -> PathBuf {
    m.workload_dir(unit).join("conf/tls")
}

/// (key, certificate, CA it was checked against, trust store CAs) of a unit, from its files.
fn held(
    m: &Model,
    unit: &str,
) -> Option<(UnitKey, material::Cert, material::Cert, Vec<material::Cert>)> {
    let dir = tls_dir(m, unit);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let key = UnitKey::from_stored(&read("unit.key")?).ok()?;
    let store = material::parse_certs(&read("server.pem")?).ok()?;
    let (cert, chain) = store.split_first()?;
    let trust = material::parse_certs(&read("trust.pem")?).ok()?;
    // The CA is the trusted one the certificate chains to.
    let ca = trust
        .iter()
        .find(|ca| material::chains_to(cert, chain, ca))?
        .clone();
    Some((key, cert.clone(), ca, trust))
}

fn provider_ca(m: &Model) -> material::Cert {
    let v = m.json(&["show-data", APP, "certificates"]);
    let bag = &v["tls-provider"]["application-data"];
    let list: Value =
        serde_json::from_str(bag[wire::CERTIFICATES_KEY].as_str().unwrap_or("[]")).expect("json");
    material::parse_cert(list[0]["ca"].as_str().expect("a CA")).expect("CA parses")
}

fn unit_message(m: &Model, unit: &str) -> (String, String) {
    let s = m.status();
    let w = &s["applications"][APP]["units"][unit]["workload-status"];
    (
        w["current"].as_str().unwrap_or_default().to_string(),
        w["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn every_unit_obtains_a_checked_certificate_and_one_for_the_operators_key() {
    let charm = tls_provider_charm();
    let m = Model::new();
    m.deploy(2);
    m.ok(&["deploy", &charm.path().to_string_lossy(), "tls-provider"]);
    m.ok(&["integrate", APP, "tls-provider"]);
    m.settle_until_active(APP);
    let ca = provider_ca(&m);
    for unit in m.units(APP) {
        let (key, cert, held_ca, trust) =
            held(&m, &unit).unwrap_or_else(|| panic!("{unit} holds no certificate"));
        let mode = std::fs::metadata(tls_dir(&m, &unit).join("unit.key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{unit}'s key is private: {mode:o}");
        material::check(&cert, &[], &ca, &key, now()).unwrap_or_else(|e| panic!("{unit}: {e}"));
        assert_eq!(held_ca.fingerprint, ca.fingerprint);
        assert_eq!(trust.len(), 1);
        assert_eq!(
            cert.ip_sans,
            vec![m.address(&unit).parse::<std::net::IpAddr>().expect("ip")],
            "{unit}"
        );
    }
    let status = m.status();
    assert_eq!(
        status["applications"][APP]["application-status"]["message"], "2/2 members in quorum",
        "{status}"
    );

    // The operator's own key (set-tls-private-key, PEM): a certificate for it follows.
    let unit = format!("{APP}/1");
    let mine = UnitKey::generate().expect("key");
    let pem = mine.pem().to_string();
    let out = m.action(
        &unit,
        "set-tls-private-key",
        &[&format!("internal-key={pem}")],
    );
    assert_eq!(out["status"], "completed", "{out}");
    m.wait_for(
        "a certificate for the operator's key",
        std::time::Duration::from_secs(60),
        || {
            m.settle();
            held(&m, &unit).is_some_and(|(key, cert, ca, _)| {
                key == mine && material::check(&cert, &[], &ca, &mine, now()).is_ok()
            })
        },
    );
    assert!(m.hook_errors().is_empty(), "{:?}", m.hook_errors());
}

#[test]
fn every_bad_certificate_blocks_and_the_last_working_one_stays_in_force() {
    let m = Model::new();
    m.deploy(1);
    m.ok(&[
        "deploy-stub",
        "prov",
        "--provides",
        "certificates:tls-certificates",
    ]);
    m.ok(&["integrate", APP, "prov"]);
    m.settle_until_active(APP);
    let unit = format!("{APP}/0");
    // A writer throughout: no bad answer costs an acknowledged write.
    let auth = serde_json::json!({"sasl": ["super", m.super_password()]});
    let mut w = support::Writer::start(&m.hosts(APP), auth.clone(), "/bad-inputs");
    w.wait_acked(20, std::time::Duration::from_secs(60));
    // The unit's request, as the provider sees it.
    let v = m.json(&["show-data", "prov", "certificates"]);
    let bag = &v[APP]["units"][&unit];
    let list: Value = serde_json::from_str(
        bag[wire::REQUESTS_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no request: {v}")),
    )
    .expect("json");
    let csr = list[0]["certificate_signing_request"]
        .as_str()
        .expect("a CSR")
        .to_string();
    let (signer, signer_pem) = test_ca("the real signer");
    let (_, stranger_pem) = test_ca("a CA that signed nothing");
    let good = sign(&signer, &csr, now() - 60, now() + 86_400);
    let answer = |cert: &str, ca: &str| {
        serde_json::json!([{"certificate": cert, "certificate_signing_request": csr, "ca": ca, "chain": [cert]}])
            .to_string()
    };
    let provide = |text: String| {
        m.ok(&[
            "set-data",
            "prov",
            "certificates",
            &format!("{}={text}", wire::CERTIFICATES_KEY),
        ]);
        m.settle();
    };
    // Every bad input the provider (or a confused operator behind it) can send: (what, answer,
    // what the unit's message says).
    let other_key = {
        let k = UnitKey::generate().expect("key");
        let other_csr = material::csr(
            &k,
            &material::Subject {
                common_name: m.address(&unit),
                ips: vec![m.address(&unit).parse().expect("ip")],
                dns: vec![],
            },
        )
        .expect("csr");
        sign(&signer, &other_csr, now() - 60, now() + 86_400)
    };
    let expired = sign(&signer, &csr, now() - 7_200, now() - 3_600);
    let bad: Vec<(&str, String, &str)> = vec![
        (
            "a certificate its CA did not sign",
            answer(&good, &stranger_pem),
            "not signed by the CA",
        ),
        (
            "a certificate for another key",
            answer(&other_key, &signer_pem),
            "does not match this unit's private key",
        ),
        (
            "a malformed PEM",
            answer(
                "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
                &signer_pem,
            ),
            "certificate",
        ),
        ("an expired certificate", answer(&expired, &signer_pem), "expired"),
        (
            "JSON that is not the interface",
            r#"[{"certificate": 7, "certificate_signing_request": "x"}"#.to_string(),
            "not valid JSON",
        ),
    ];
    let check_refused = |what: &str, needle: &str| {
        let (current, message) = unit_message(&m, &unit);
        assert_eq!(current, "blocked", "{what}: {message}");
        assert!(message.contains(needle), "{what}: {message}");
        assert!(
            m.hook_errors().is_empty(),
            "{what}: never a hook error: {:?}",
            m.hook_errors()
        );
        eprintln!("{what}: blocked with {message:?}");
    };
    for (what, text, needle) in &bad {
        provide(text.clone());
        check_refused(what, needle);
        assert!(held(&m, &unit).is_none(), "{what}: nothing installed");
    }
    // The right answer: installed, serving TLS, active again.
    provide(answer(&good, &signer_pem));
    m.settle_until_active(APP);
    let (key, c, ca, _) = held(&m, &unit).expect("installed");
    material::check(&c, &[], &ca, &key, now()).expect("checks");
    let serving = |m: &Model| {
        std::fs::read_to_string(m.workload_dir(&unit).join("conf/zoo.cfg"))
            .unwrap_or_default()
            .contains("sslQuorum=true")
    };
    m.wait_for(
        "the unit serving TLS",
        std::time::Duration::from_secs(60),
        || {
            m.settle();
            serving(&m)
        },
    );
    // A bad answer later (the provider re-answers the same request): refused, the working
    // certificate stays in force and the server keeps serving it.
    for (what, text, needle) in bad.iter().skip(1) {
        provide(text.clone());
        check_refused(what, needle);
        let (_, still, _, _) = held(&m, &unit).expect("still installed");
        assert_eq!(
            still.fingerprint, c.fingerprint,
            "{what}: the working certificate stays"
        );
        assert!(
            serving(&m) && m.all_serving(APP),
            "{what}: still serving TLS"
        );
    }
    provide(answer(&good, &signer_pem));
    m.settle_until_active(APP);
    let summary = w.stop();
    let report = w.check(&[format!("{}:2181", m.address(&unit))], auth);
    for (host, r) in report["servers"].as_object().cloned().unwrap_or_default() {
        assert_eq!(r["missing_acked"], serde_json::json!(0), "{host}: {r}");
    }
    eprintln!("bad inputs: writer {summary}; every acknowledged write is there");
}

fn test_ca(cn: &str) -> ((rcgen::KeyPair, rcgen::CertificateParams), String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).expect("CA").pem();
    ((key, params), pem)
}

fn sign(
    ca: &(rcgen::KeyPair, rcgen::CertificateParams),
    csr: &str,
    not_before: i64,
    not_after: i64,
) -> String {
    let mut req = rcgen::CertificateSigningRequestParams::from_pem(csr).expect("the charm's CSR");
    req.params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("time");
    req.params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).expect("time");
    req.signed_by(&rcgen::Issuer::from_params(&ca.1, &ca.0))
        .expect("signed")
        .pem()
}
