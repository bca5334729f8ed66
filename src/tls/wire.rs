//! The `tls-certificates` interface, v4 wire format (requirer side), as Canonical's providers
//! (self-signed-certificates, manual-tls-certificates, Vault) and PyPI
//! `charmlibs-interfaces-tls-certificates` speak it. Pure: databags in, values out.
//!
//! - The requirer's **unit** bag: `certificate_signing_requests`, a JSON list of
//!   `{"certificate_signing_request": "<PEM>", "ca": false}`.
//! - The provider's **application** bag: `certificates`, a JSON list of `{"certificate",
//!   "certificate_signing_request", "ca", "chain": [...], "revoked": bool}` (chain and revoked
//!   optional), and `request_errors`, a JSON list of `{"csr", "error": {"name", "message"}}`.
//!   Every value is JSON text in the bag, as the library's `_DatabagModel` dumps it.
//!
//! A provider answers a CSR with the CSR re-encoded, so answers are matched to requests by the
//! DER of the CSR, not by text.

use serde::{Deserialize, Serialize};

use super::material::pem_der;

pub const REQUESTS_KEY: &str = "certificate_signing_requests";
pub const CERTIFICATES_KEY: &str = "certificates";
pub const ERRORS_KEY: &str = "request_errors";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Request {
    certificate_signing_request: String,
    ca: bool,
}

/// The value of the unit bag's `certificate_signing_requests` for these CSRs.
pub fn requests_value(csrs: &[String]) -> String {
    let list: Vec<Request> = csrs
        .iter()
        .map(|c| Request {
            certificate_signing_request: c.trim().to_string(),
            ca: false,
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// One entry of the provider's `certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Provided {
    pub certificate: String,
    pub certificate_signing_request: String,
    pub ca: String,
    #[serde(default)]
    pub chain: Option<Vec<String>>,
    #[serde(default)]
    pub revoked: Option<bool>,
}

impl Provided {
    pub fn revoked(&self) -> bool {
        self.revoked == Some(true)
    }
    pub fn chain(&self) -> &[String] {
        self.chain.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RequestError {
    csr: String,
    error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    message: String,
}

/// What the provider's application bag says about one CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Nothing yet.
    Pending,
    /// A certificate (possibly marked revoked: a CA rotation is under way).
    Certificate(Provided),
    /// The provider refused the request.
    Refused(String),
}

/// Why the provider's bag cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the TLS provider's {key} is not valid JSON of the tls-certificates v4 interface: {reason}"
)]
pub struct WireError {
    pub key: &'static str,
    pub reason: String,
}

/// The entries of a JSON list in the provider's bag, each read on its own: an entry that does
/// not read as `T` is an error only when it is about `csr` (another unit's malformed entry
/// must not stop this unit), and is skipped otherwise.
fn entries<T: serde::de::DeserializeOwned>(
    key: &'static str,
    text: &str,
    csr_field: &str,
    same: &dyn Fn(&str) -> bool,
) -> Result<Vec<T>, WireError> {
    let list: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| WireError {
        key,
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    for v in list {
        match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => out.push(t),
            Err(e) => {
                let ours = v.get(csr_field).and_then(|c| c.as_str()).is_some_and(same);
                if ours {
                    return Err(WireError {
                        key,
                        reason: format!("the entry for this unit's request: {e}"),
                    });
                }
                tracing::debug!("skipping a malformed {key} entry for another request: {e}");
            }
        }
    }
    Ok(out)
}

/// The provider's answer to `csr` in its application bag (`get(key)` reads the bag).
pub fn answer_for<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    csr: &str,
) -> Result<Answer, WireError> {
    let Some(want) = pem_der(csr, "CERTIFICATE REQUEST") else {
        return Ok(Answer::Pending);
    };
    let same = |other: &str| pem_der(other, "CERTIFICATE REQUEST").as_deref() == Some(&want[..]);
    if let Some(text) = get(CERTIFICATES_KEY).filter(|t| !t.trim().is_empty()) {
        let list: Vec<Provided> =
            entries(CERTIFICATES_KEY, text, "certificate_signing_request", &same)?;
        // The last answer wins (a provider appends a re-signed certificate on renewal).
        if let Some(p) = list
            .into_iter()
            .rev()
            .find(|p| same(&p.certificate_signing_request))
        {
            return Ok(Answer::Certificate(p));
        }
    }
    if let Some(text) = get(ERRORS_KEY).filter(|t| !t.trim().is_empty()) {
        let list: Vec<RequestError> = entries(ERRORS_KEY, text, "csr", &same)?;
        if let Some(e) = list.into_iter().find(|e| same(&e.csr)) {
            let what = match (e.error.name.is_empty(), e.error.message.is_empty()) {
                (false, false) => format!("{}: {}", e.error.name, e.error.message),
                (true, false) => e.error.message,
                _ => e.error.name,
            };
            return Ok(Answer::Refused(what));
        }
    }
    Ok(Answer::Pending)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::material::{csr, testing::TestCa, Subject, UnitKey};
    use super::*;

    fn bag(entries: &[(&str, String)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn request() -> String {
        let key = UnitKey::generate().expect("key");
        csr(
            &key,
            &Subject {
                common_name: "u".into(),
                ips: vec![],
                dns: vec!["u".into()],
            },
        )
        .expect("csr")
    }

    #[test]
    fn the_request_is_what_the_library_reads() {
        let c = request();
        let v: serde_json::Value =
            serde_json::from_str(&requests_value(std::slice::from_ref(&c))).expect("json");
        assert_eq!(v[0]["certificate_signing_request"], c.trim());
        assert_eq!(v[0]["ca"], false);
    }

    #[test]
    fn answers_are_matched_by_the_csrs_der_and_bad_json_is_named() {
        let mine = request();
        let theirs = request();
        let ca = TestCa::new("ca");
        let cert = ca.sign(&mine, 0, 4_000_000_000);
        // The provider re-encodes the CSR (CRLF here) and lists another unit's answer first.
        let entries = serde_json::json!([
            {"certificate": "x", "certificate_signing_request": theirs, "ca": ca.pem},
            {"certificate": cert, "certificate_signing_request": mine.replace('\n', "\r\n"), "ca": ca.pem, "chain": [cert, ca.pem]},
        ]);
        let b = bag(&[(CERTIFICATES_KEY, entries.to_string())]);
        let get = |k: &str| b.get(k).map(String::as_str);
        match answer_for(get, &mine).expect("reads") {
            Answer::Certificate(p) => {
                assert_eq!(p.certificate, cert);
                assert_eq!(p.chain().len(), 2);
                assert!(!p.revoked());
            }
            other => panic!("{other:?}"),
        }
        let empty = bag(&[]);
        assert_eq!(
            answer_for(|k| empty.get(k).map(String::as_str), &mine),
            Ok(Answer::Pending)
        );
        let broken = bag(&[(CERTIFICATES_KEY, "[{\"certificate\": 1}".into())]);
        assert!(answer_for(|k| broken.get(k).map(String::as_str), &mine).is_err());
        // Another unit's malformed entry does not stop this one; a malformed one for this
        // unit's request is named.
        let mixed = serde_json::json!([
            {"certificate": 7, "certificate_signing_request": theirs},
            {"certificate": cert, "certificate_signing_request": mine, "ca": ca.pem},
        ]);
        let b = bag(&[(CERTIFICATES_KEY, mixed.to_string())]);
        assert!(matches!(
            answer_for(|k| b.get(k).map(String::as_str), &mine),
            Ok(Answer::Certificate(_))
        ));
        let own_bad = serde_json::json!([{"certificate": 7, "certificate_signing_request": mine}]);
        let b = bag(&[(CERTIFICATES_KEY, own_bad.to_string())]);
        let e = answer_for(|k| b.get(k).map(String::as_str), &mine).expect_err("named");
        assert!(e.reason.contains("this unit's request"), "{e}");
        let refused = bag(&[(
            ERRORS_KEY,
            serde_json::json!([{"csr": mine, "error": {"name": "IP_NOT_ALLOWED", "message": "IP SANs are not allowed"}}]).to_string(),
        )]);
        assert_eq!(
            answer_for(|k| refused.get(k).map(String::as_str), &mine),
            Ok(Answer::Refused(
                "IP_NOT_ALLOWED: IP SANs are not allowed".into()
            ))
        );
    }
}
