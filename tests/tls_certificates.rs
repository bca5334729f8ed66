//! The `certificates` relation, unit side (issue 17), end to end under jujusim with the packed
//! charm and the test provider charm (ops + PyPI charmlibs-interfaces-tls-certificates): every
//! unit makes its key (a 0600 file), asks for a certificate for its address and hostname,
//! installs the checked answer into its PEM stores and publishes the evidence in its peer bag;
//! the operator's own key (set-tls-private-key) gets a certificate of its own (CA rotations:
//! tests/tls_switch_charm.rs); a provider that answers with a certificate its CA did not sign blocks
//! the unit with the reason, installs nothing, and the unit recovers once the answer is right.
//! The ensemble keeps serving throughout (and switches to TLS: see tests/tls_switch_charm.rs).

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
fn a_certificate_its_ca_did_not_sign_blocks_and_installs_nothing() {
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
    let cert = sign(&signer, &csr);
    let answer = |ca: &str| {
        serde_json::json!([{"certificate": cert, "certificate_signing_request": csr, "ca": ca, "chain": [cert]}])
            .to_string()
    };
    m.ok(&[
        "set-data",
        "prov",
        "certificates",
        &format!("{}={}", wire::CERTIFICATES_KEY, answer(&stranger_pem)),
    ]);
    m.settle();
    let (current, message) = unit_message(&m, &unit);
    assert_eq!(current, "blocked", "{message}");
    assert!(message.contains("not signed by the CA"), "{message}");
    assert!(held(&m, &unit).is_none(), "nothing installed");
    assert!(
        m.hook_errors().is_empty(),
        "never a hook error: {:?}",
        m.hook_errors()
    );
    // The right CA: installed, active again.
    m.ok(&[
        "set-data",
        "prov",
        "certificates",
        &format!("{}={}", wire::CERTIFICATES_KEY, answer(&signer_pem)),
    ]);
    m.settle_until_active(APP);
    let (key, c, ca, _) = held(&m, &unit).expect("installed");
    material::check(&c, &[], &ca, &key, now()).expect("checks");
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

fn sign(ca: &(rcgen::KeyPair, rcgen::CertificateParams), csr: &str) -> String {
    rcgen::CertificateSigningRequestParams::from_pem(csr)
        .expect("the charm's CSR")
        .signed_by(&rcgen::Issuer::from_params(&ca.1, &ca.0))
        .expect("signed")
        .pem()
}
