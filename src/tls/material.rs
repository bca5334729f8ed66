//! Keys, CSRs and certificates (issue 17): the unit's private key and its certificate signing
//! request made in the charm (ECDSA P-256 by default, no openssl subprocess), and what a
//! provider sends back parsed and checked before anything is written: the certificate matches
//! the key, is within its validity, and chains to the CA through the given chain, every
//! signature checked. Every failure is a [`TlsInputError`] with a message an operator can act
//! on; nothing here panics on input.

use std::net::IpAddr;

use rcgen::{CertificateParams, DnType, KeyPair, PublicKeyData, SanType};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Unix seconds as RFC 3339 UTC text (for messages).
pub fn utc(secs: i64) -> String {
    crate::clients::ownership::rfc3339(u64::try_from(secs).unwrap_or(0))
}

/// Why material from the provider or the operator cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsInputError {
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    #[error("no certificate in the PEM text")]
    NoCertificate,
    #[error(
        "the private key is not a PKCS#8 PEM key (\"BEGIN PRIVATE KEY\"): {0}; convert it with `openssl pkcs8 -topk8 -nocrypt`"
    )]
    BadKey(String),
    #[error("the certificate for {subject} does not match this unit's private key")]
    KeyMismatch { subject: String },
    #[error(
        "the certificate for {subject} is not signed by the CA {ca} (nor through the chain given)"
    )]
    NotSignedByCa { subject: String, ca: String },
    #[error("the certificate for {subject} expired at {}", utc(*.not_after))]
    Expired { subject: String, not_after: i64 },
    #[error("the certificate for {subject} is not valid before {}", utc(*.not_before))]
    NotYetValid { subject: String, not_before: i64 },
    #[error("cannot make the certificate signing request: {0}")]
    Csr(String),
}

/// The unit's private key: PKCS#8 PEM (what ZooKeeper's PEM loader reads).
#[derive(Clone, PartialEq, Eq)]
pub struct UnitKey {
    pem: String,
}

impl std::fmt::Debug for UnitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnitKey(<redacted>)")
    }
}

impl UnitKey {
    /// A fresh ECDSA P-256 key (fast enough for a hook; RSA key generation is not).
    pub fn generate() -> Result<UnitKey, TlsInputError> {
        let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| TlsInputError::BadKey(e.to_string()))?;
        Ok(UnitKey {
            pem: kp.serialize_pem(),
        })
    }

    /// A key the operator gave (`set-tls-private-key`): PKCS#8 PEM, or that PEM in base64 (as
    /// the incumbent's action takes it, to pass through `juju run` on one line).
    pub fn from_operator(input: &str) -> Result<UnitKey, TlsInputError> {
        let text = input.trim();
        let pem = if text.starts_with("-----BEGIN") {
            text.to_string()
        } else {
            let compact: String = text.split_whitespace().collect();
            let bytes = base64_decode(&compact).ok_or_else(|| {
                TlsInputError::BadKey("neither PEM nor base64-encoded PEM".into())
            })?;
            String::from_utf8(bytes)
                .map_err(|_| TlsInputError::BadKey("base64 text that is not PEM".into()))?
                .trim()
                .to_string()
        };
        if !pem.contains("-----BEGIN PRIVATE KEY-----") {
            let label = pem
                .lines()
                .next()
                .unwrap_or_default()
                .trim_matches('-')
                .to_string();
            return Err(TlsInputError::BadKey(format!("found {label:?}")));
        }
        let kp = KeyPair::from_pem(&pem).map_err(|e| TlsInputError::BadKey(e.to_string()))?;
        Ok(UnitKey {
            pem: kp.serialize_pem(),
        })
    }

    /// The stored key (peer secret content, file text); checked again on load.
    pub fn from_stored(pem: &str) -> Result<UnitKey, TlsInputError> {
        let kp = KeyPair::from_pem(pem).map_err(|e| TlsInputError::BadKey(e.to_string()))?;
        Ok(UnitKey {
            pem: kp.serialize_pem(),
        })
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }

    fn pair(&self) -> Result<KeyPair, TlsInputError> {
        KeyPair::from_pem(&self.pem).map_err(|e| TlsInputError::BadKey(e.to_string()))
    }

    /// The DER SubjectPublicKeyInfo, as a certificate for this key carries it.
    pub fn public_key_info(&self) -> Result<Vec<u8>, TlsInputError> {
        Ok(self.pair()?.subject_public_key_info())
    }
}

/// What the unit asks to be certified for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The subject's common name (the unit's address, as the incumbent).
    pub common_name: String,
    /// IP SANs (the unit's address; `certificate-include-ip-sans`).
    pub ips: Vec<IpAddr>,
    /// DNS SANs (the unit's hostname).
    pub dns: Vec<String>,
}

/// A certificate signing request for `key` (PEM, as the tls-certificates interface carries it).
pub fn csr(key: &UnitKey, subject: &Subject) -> Result<String, TlsInputError> {
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| TlsInputError::Csr(e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, subject.common_name.as_str());
    // A unique identifier, as Canonical's requirer library adds: every request differs, also
    // with keys whose signatures are deterministic (RSA, Ed25519), so a renewal is a new CSR
    // the provider sees.
    let nonce: String = ring_random_hex(16);
    params
        .distinguished_name
        .push(DnType::CustomDnType(vec![2, 5, 4, 45]), nonce.as_str());
    for ip in &subject.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for d in &subject.dns {
        let name = d
            .as_str()
            .try_into()
            .map_err(|e: rcgen::Error| TlsInputError::Csr(format!("DNS name {d:?}: {e}")))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    let req = params
        .serialize_request(&key.pair()?)
        .map_err(|e| TlsInputError::Csr(e.to_string()))?;
    let pem = req.pem().map_err(|e| TlsInputError::Csr(e.to_string()))?;
    Ok(pem.trim().to_string())
}

/// The subject a CSR asks for (common name, IP and DNS SANs), and the SubjectPublicKeyInfo
/// it certifies; `None` for text that is not a CSR.
pub fn csr_subject(text: &str) -> Option<(Subject, Vec<u8>)> {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::extensions::ParsedExtension;
    let der = pem_der(text, "CERTIFICATE REQUEST")?;
    let (_, req) = X509CertificationRequest::from_der(&der).ok()?;
    let info = &req.certification_request_info;
    let common_name = info
        .subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    for ext in req.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for n in &san.general_names {
                match n {
                    GeneralName::IPAddress(b) if b.len() == 4 => {
                        ips.push(IpAddr::from([b[0], b[1], b[2], b[3]]))
                    }
                    GeneralName::IPAddress(b) if b.len() == 16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        ips.push(IpAddr::from(a));
                    }
                    GeneralName::DNSName(d) => dns.push((*d).to_string()),
                    _ => {}
                }
            }
        }
    }
    Some((
        Subject {
            common_name,
            ips,
            dns,
        },
        info.subject_pki.raw.to_vec(),
    ))
}

fn ring_random_hex(n: usize) -> String {
    use ring::rand::SecureRandom;
    let mut b = vec![0u8; n];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The DER of a PEM block with `label` (the first one), for comparing PEM texts that differ only
/// in line breaks (a provider re-encodes the CSR it answers).
pub fn pem_der(text: &str, label: &str) -> Option<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label == label)
        .map(|p| p.contents)
}

/// A parsed certificate: what the charm needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    pub der: Vec<u8>,
    pub subject: String,
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
    pub ip_sans: Vec<IpAddr>,
    pub dns_sans: Vec<String>,
    pub is_ca: bool,
    /// SHA-256 of the DER, lowercase hex (what peer data records of the CA a unit serves).
    pub fingerprint: String,
    /// The DER SubjectPublicKeyInfo.
    pub public_key_info: Vec<u8>,
}

impl Cert {
    /// PEM text of this certificate (64-column base64, LF).
    pub fn pem(&self) -> String {
        let b64 = crate::zk::acl::base64(&self.der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    fn parsed(&self) -> Result<X509Certificate<'_>, TlsInputError> {
        X509Certificate::from_der(&self.der)
            .map(|(_, c)| c)
            .map_err(|e| TlsInputError::MalformedPem(e.to_string()))
    }

    /// Whether `issuer`'s key signed this certificate.
    pub fn signed_by(&self, issuer: &Cert) -> bool {
        let (Ok(me), Ok(them)) = (self.parsed(), issuer.parsed()) else {
            return false;
        };
        me.issuer().as_raw() == them.subject().as_raw()
            && me.verify_signature(Some(them.public_key())).is_ok()
    }
}

fn parse_one(der: Vec<u8>) -> Result<Cert, TlsInputError> {
    let (_, c) = X509Certificate::from_der(&der)
        .map_err(|e| TlsInputError::MalformedPem(format!("not an X.509 certificate: {e}")))?;
    let mut ip_sans = Vec::new();
    let mut dns_sans = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ip_sans.push(IpAddr::from([b[0], b[1], b[2], b[3]])),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        ip_sans.push(IpAddr::from(a));
                    }
                    _ => {}
                },
                GeneralName::DNSName(d) => dns_sans.push((*d).to_string()),
                _ => {}
            }
        }
    }
    let fingerprint = ring::digest::digest(&ring::digest::SHA256, &der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Cert {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        ip_sans,
        dns_sans,
        is_ca: c.is_ca(),
        fingerprint,
        public_key_info: c.public_key().raw.to_vec(),
        der: der.clone(),
    })
}

/// Every `CERTIFICATE` block of a PEM text, in order. Malformed PEM or a block that is not an
/// X.509 certificate is an error; text with no certificate is [`TlsInputError::NoCertificate`].
pub fn parse_certs(text: &str) -> Result<Vec<Cert>, TlsInputError> {
    let mut out = Vec::new();
    for p in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
        let p = p.map_err(|e| TlsInputError::MalformedPem(e.to_string()))?;
        if p.label == "CERTIFICATE" {
            out.push(parse_one(p.contents)?);
        }
    }
    if out.is_empty() {
        return Err(TlsInputError::NoCertificate);
    }
    Ok(out)
}

/// The first certificate of a PEM text.
pub fn parse_cert(text: &str) -> Result<Cert, TlsInputError> {
    parse_certs(text)?
        .into_iter()
        .next()
        .ok_or(TlsInputError::NoCertificate)
}

/// Checks what a provider sent before the unit uses it: `cert` certifies `key`, is valid at
/// `now` (unix seconds), and chains to `ca` through the certificates of `chain` (in any order;
/// the certificate itself and the CA may appear in it, as providers send them), each signature
/// checked. At most 8 links.
pub fn check(
    cert: &Cert,
    chain: &[Cert],
    ca: &Cert,
    key: &UnitKey,
    now: i64,
) -> Result<(), TlsInputError> {
    if cert.public_key_info != key.public_key_info()? {
        return Err(TlsInputError::KeyMismatch {
            subject: cert.subject.clone(),
        });
    }
    if now > cert.not_after {
        return Err(TlsInputError::Expired {
            subject: cert.subject.clone(),
            not_after: cert.not_after,
        });
    }
    if now < cert.not_before {
        return Err(TlsInputError::NotYetValid {
            subject: cert.subject.clone(),
            not_before: cert.not_before,
        });
    }
    if ca.is_ca && chains_to(cert, chain, ca) {
        return Ok(());
    }
    Err(TlsInputError::NotSignedByCa {
        subject: cert.subject.clone(),
        ca: ca.subject.clone(),
    })
}

/// Whether `cert` chains to `ca` through certificates of `chain` (in any order), every
/// signature checked, every intermediate a CA; at most 8 links.
pub fn chains_to(cert: &Cert, chain: &[Cert], ca: &Cert) -> bool {
    let mut current = cert;
    for _ in 0..8 {
        if current.signed_by(ca) {
            return true;
        }
        match chain
            .iter()
            .find(|c| c.is_ca && c.der != current.der && c.der != ca.der && current.signed_by(c))
        {
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The decoding side of [`crate::zk::acl::base64`] (for an operator's base64 PEM key).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A CA for tests: signs the charm's CSRs as a provider would.
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, IsCa, Issuer,
        KeyPair,
    };

    pub struct TestCa {
        pub key: KeyPair,
        pub params: CertificateParams,
        pub pem: String,
    }

    impl TestCa {
        pub fn new(cn: &str) -> TestCa {
            let key = KeyPair::generate().expect("ca key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let pem = params.self_signed(&key).expect("self-signed").pem();
            TestCa { key, params, pem }
        }

        /// An intermediate CA signed by this one.
        pub fn intermediate(&self, cn: &str) -> TestCa {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let issuer = Issuer::from_params(&self.params, &self.key);
            let pem = params.signed_by(&key, &issuer).expect("signed").pem();
            TestCa { key, params, pem }
        }

        /// Signs a CSR, valid from `not_before` to `not_after` (unix seconds).
        pub fn sign(&self, csr: &str, not_before: i64, not_after: i64) -> String {
            let mut req = CertificateSigningRequestParams::from_pem(csr).expect("csr parses");
            req.params.not_before =
                time::OffsetDateTime::from_unix_timestamp(not_before).expect("time");
            req.params.not_after =
                time::OffsetDateTime::from_unix_timestamp(not_after).expect("time");
            let issuer = Issuer::from_params(&self.params, &self.key);
            req.signed_by(&issuer).expect("signed").pem()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestCa;
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn subject() -> Subject {
        Subject {
            common_name: "127.1.2.10".into(),
            ips: vec!["127.1.2.10".parse().expect("ip")],
            dns: vec!["vm".into()],
        }
    }

    #[test]
    fn a_csr_carries_the_units_address_and_hostname_and_its_certificate_checks() {
        let key = UnitKey::generate().expect("key");
        assert!(key.pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        let request = csr(&key, &subject()).expect("csr");
        assert!(request.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        let ca = TestCa::new("test CA");
        let signed = ca.sign(&request, NOW - 60, NOW + 3600);
        let cert = parse_cert(&signed).expect("parses");
        assert_eq!(cert.ip_sans, subject().ips);
        assert_eq!(cert.dns_sans, ["vm"]);
        assert!(cert.subject.contains("127.1.2.10"), "{}", cert.subject);
        let ca_cert = parse_cert(&ca.pem).expect("ca");
        assert!(ca_cert.is_ca && !cert.is_ca);
        assert_eq!(check(&cert, &[], &ca_cert, &key, NOW), Ok(()));
        // Round trip through PEM text keeps the DER.
        assert_eq!(parse_cert(&cert.pem()).expect("again").der, cert.der);
        assert_eq!(cert.fingerprint.len(), 64);
    }

    #[test]
    fn every_bad_input_is_named() {
        let key = UnitKey::generate().expect("key");
        let other = UnitKey::generate().expect("other key");
        let ca = TestCa::new("CA one");
        let stranger = TestCa::new("CA two");
        let ca_cert = parse_cert(&ca.pem).expect("ca");
        let good = parse_cert(&ca.sign(&csr(&key, &subject()).expect("csr"), NOW - 60, NOW + 60))
            .expect("cert");
        // A certificate for another key.
        let theirs =
            parse_cert(&ca.sign(&csr(&other, &subject()).expect("csr"), NOW - 60, NOW + 60))
                .expect("cert");
        assert!(matches!(
            check(&theirs, &[], &ca_cert, &key, NOW),
            Err(TlsInputError::KeyMismatch { .. })
        ));
        // Signed by another CA.
        let foreign =
            parse_cert(&stranger.sign(&csr(&key, &subject()).expect("csr"), NOW - 60, NOW + 60))
                .expect("cert");
        assert!(matches!(
            check(&foreign, &[], &ca_cert, &key, NOW),
            Err(TlsInputError::NotSignedByCa { .. })
        ));
        // Expired, and not yet valid.
        assert!(matches!(
            check(&good, &[], &ca_cert, &key, NOW + 120),
            Err(TlsInputError::Expired { .. })
        ));
        assert!(matches!(
            check(&good, &[], &ca_cert, &key, NOW - 120),
            Err(TlsInputError::NotYetValid { .. })
        ));
        // Malformed PEM, and PEM with no certificate.
        let torn = ca.pem.replace("-----END CERTIFICATE-----", "");
        assert!(parse_certs(&torn).is_err());
        let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            parse_certs(garbage),
            Err(TlsInputError::MalformedPem(_))
        ));
        assert_eq!(parse_certs("hello"), Err(TlsInputError::NoCertificate));
        // Error messages say what to do.
        let e = UnitKey::from_operator(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
        )
        .expect_err("PKCS#1 refused");
        assert!(e.to_string().contains("openssl pkcs8"), "{e}");
        assert!(UnitKey::from_operator("not a key at all!").is_err());
    }

    #[test]
    fn a_chain_through_an_intermediate_verifies_and_a_broken_one_does_not() {
        let key = UnitKey::generate().expect("key");
        let root = TestCa::new("root");
        let inter = root.intermediate("intermediate");
        let leaf =
            parse_cert(&inter.sign(&csr(&key, &subject()).expect("csr"), NOW - 60, NOW + 60))
                .expect("leaf");
        let root_cert = parse_cert(&root.pem).expect("root");
        let inter_cert = parse_cert(&inter.pem).expect("inter");
        // Providers send chain = [leaf, intermediate, root].
        let chain = vec![leaf.clone(), inter_cert.clone(), root_cert.clone()];
        assert_eq!(check(&leaf, &chain, &root_cert, &key, NOW), Ok(()));
        assert!(matches!(
            check(&leaf, &[], &root_cert, &key, NOW),
            Err(TlsInputError::NotSignedByCa { .. })
        ));
    }

    #[test]
    fn the_operators_key_is_taken_as_pem_or_base64_pem() {
        let key = UnitKey::generate().expect("key");
        assert_eq!(UnitKey::from_operator(key.pem()).expect("pem"), key);
        let b64 = crate::zk::acl::base64(key.pem().as_bytes());
        assert_eq!(UnitKey::from_operator(&b64).expect("base64"), key);
        assert_eq!(base64_decode(&b64).expect("decodes"), key.pem().as_bytes());
        assert!(format!("{key:?}").contains("redacted"));
        // The same key makes CSRs its certificates match.
        let again = UnitKey::from_stored(key.pem()).expect("stored");
        assert_eq!(
            again.public_key_info().expect("spki"),
            key.public_key_info().expect("spki")
        );
    }

    #[test]
    fn pem_texts_that_differ_in_line_breaks_compare_equal_by_der() {
        let key = UnitKey::generate().expect("key");
        let request = csr(&key, &subject()).expect("csr");
        let rewrapped = request.replace('\n', "\r\n") + "\n";
        assert_eq!(
            pem_der(&request, "CERTIFICATE REQUEST"),
            pem_der(&rewrapped, "CERTIFICATE REQUEST")
        );
        assert!(pem_der(&request, "CERTIFICATE REQUEST").is_some());
        let (asked, spki) = csr_subject(&request).expect("a CSR");
        assert_eq!(asked, subject());
        assert_eq!(spki, key.public_key_info().expect("spki"));
        assert!(csr_subject("nothing").is_none());
    }
}
