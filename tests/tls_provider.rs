//! The `tls-certificates` v4 wire format as Canonical's provider library speaks it (issue 17):
//! the test provider charm (ops + PyPI charmlibs-interfaces-tls-certificates) runs under
//! jujusim; a stub requirer unit publishes CSRs made by the charm's `tls::material`; what the
//! provider answers is read back with `tls::wire` and checked with `tls::material::check` (key,
//! validity, CA signature through the chain). Also: a chain root -> intermediate -> leaf, and a
//! CA rotation (`rotate-ca`: the old certificate marked revoked, the request signed again by
//! the new CA).

mod support;

use serde_json::Value;
use support::{tls_provider_charm, Model};
use zookeeper_charm::tls::material::{self, Subject, UnitKey};
use zookeeper_charm::tls::wire::{self, Answer};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The provider's answer to `csr`, as the requirer reads the provider's application bag.
fn answer(m: &Model, csr: &str) -> Answer {
    let v = m.json(&["show-data", "req", "certificates"]);
    let bag: std::collections::BTreeMap<String, String> = v["tls-provider"]["application-data"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    wire::answer_for(|k| bag.get(k).map(String::as_str), csr).expect("the provider's bag reads")
}

fn request(m: &Model, csrs: &[String]) {
    let value = wire::requests_value(csrs);
    m.ok(&[
        "set-data",
        "req/0",
        "certificates",
        &format!("{}={value}", wire::REQUESTS_KEY),
    ]);
    m.settle();
}

fn certificate(a: Answer) -> wire::Provided {
    match a {
        Answer::Certificate(p) => p,
        other => panic!("no certificate: {other:?}"),
    }
}

#[test]
fn canonicals_provider_library_signs_the_charms_csrs_and_rotates_its_ca() {
    let charm = tls_provider_charm();
    let m = Model::new();
    m.ok(&["deploy", &charm.path().to_string_lossy(), "tls-provider"]);
    m.ok(&[
        "deploy-stub",
        "req",
        "--requires",
        "certificates:tls-certificates",
    ]);
    m.ok(&["integrate", "req", "tls-provider"]);
    m.settle();

    let key = UnitKey::generate().expect("key");
    let subject = Subject {
        common_name: "127.0.0.10".into(),
        ips: vec!["127.0.0.10".parse().expect("ip")],
        dns: vec!["zk-0".into()],
    };
    let csr = material::csr(&key, &subject).expect("csr");
    request(&m, std::slice::from_ref(&csr));
    let p = certificate(answer(&m, &csr));
    assert!(!p.revoked());
    let cert = material::parse_cert(&p.certificate).expect("certificate");
    let ca = material::parse_cert(&p.ca).expect("CA");
    let chain: Vec<_> = p
        .chain()
        .iter()
        .map(|c| material::parse_cert(c).expect("chain"))
        .collect();
    material::check(&cert, &chain, &ca, &key, now()).expect("the certificate checks");
    assert_eq!(cert.ip_sans, subject.ips);
    assert_eq!(cert.dns_sans, subject.dns);
    let first_ca = ca.fingerprint.clone();

    // CA rotation: the old certificate is marked revoked first, then signed again by a new CA.
    let out: Value = m.json(&[
        "run",
        "tls-provider/leader",
        "rotate-ca",
        "--format",
        "json",
    ]);
    assert!(out.to_string().contains("completed"), "{out}");
    m.settle();
    let p = certificate(answer(&m, &csr));
    let ca2 = material::parse_cert(&p.ca).expect("new CA");
    assert_ne!(ca2.fingerprint, first_ca, "a new CA");
    let cert2 = material::parse_cert(&p.certificate).expect("certificate");
    material::check(&cert2, &[], &ca2, &key, now()).expect("signed by the new CA");
    assert!(matches!(
        material::check(&cert2, &[], &ca, &key, now()),
        Err(material::TlsInputError::NotSignedByCa { .. })
    ));

    // A chain through an intermediate: the requirer needs the chain to reach the root.
    m.ok(&["config", "tls-provider", "intermediate=true"]);
    m.settle();
    let csr2 = material::csr(&key, &subject).expect("csr");
    assert_ne!(csr2, csr, "a fresh CSR (rcgen signs with a random nonce)");
    request(&m, std::slice::from_ref(&csr2));
    let p = certificate(answer(&m, &csr2));
    let root = material::parse_cert(&p.ca).expect("root");
    let leaf = material::parse_cert(&p.certificate).expect("leaf");
    let chain: Vec<_> = p
        .chain()
        .iter()
        .map(|c| material::parse_cert(c).expect("chain"))
        .collect();
    assert_eq!(chain.len(), 3, "leaf, intermediate, root");
    material::check(&leaf, &chain, &root, &key, now()).expect("verifies through the chain");
    assert!(material::check(&leaf, &[], &root, &key, now()).is_err());
}
