//! Actions: answers, refusals, and that a refused action changes nothing.

use super::super::testing::*;
use serde_json::json;

#[test]
fn get_super_password_answers_on_any_unit() {
    let mut m = Model::deployed(3);
    let a = m.act(0, "get-super-password", &[]).expect("ok");
    let b = m.act(2, "get-super-password", &[]).expect("ok");
    let pw = a.get("super-password").cloned().expect("super-password");
    assert!(pw.len() >= 16);
    assert_eq!(b.get("super-password"), Some(&pw));
    let creds = m.secret(&m.peer_app()["internal-secret"]).expect("secret");
    assert_eq!(creds.get("super-password"), Some(&pw));
}

#[test]
fn get_sync_password_answers() {
    let mut m = Model::deployed(1);
    let a = m.act(0, "get-sync-password", &[]).expect("ok");
    assert!(a.get("sync-password").is_some_and(|p| p.len() >= 16));
}

#[test]
fn passwords_before_they_exist_are_refused_clearly() {
    let mut m = Model::new(2);
    let r = m.act(1, "get-super-password", &[]);
    assert!(
        r.as_ref().is_err_and(|e| e.contains("do not exist yet")),
        "{r:?}"
    );
}

#[test]
fn set_password_changes_super_through_one_roll() {
    let mut m = Model::deployed(3);
    let before = m.world.borrow().started.len();
    m.act(
        0,
        "set-password",
        &[
            ("username", json!("super")),
            ("password", json!("a-new-Passw0rd")),
        ],
    )
    .expect("ok");
    m.settle();
    let a = m.act(1, "get-super-password", &[]).expect("ok");
    assert_eq!(
        a.get("super-password").map(String::as_str),
        Some("a-new-Passw0rd")
    );
    assert_eq!(
        m.world.borrow().started.len() - before,
        3,
        "{}",
        m.describe()
    );
}

#[test]
fn set_password_refuses_what_jaas_would_expand_and_changes_nothing() {
    let mut m = Model::deployed(1);
    let creds_before = m.secret(&m.peer_app()["internal-secret"]);
    let r = m.act(
        0,
        "set-password",
        &[
            ("username", json!("super")),
            ("password", json!("abc${x}defgh")),
        ],
    );
    assert!(r.as_ref().is_err_and(|e| e.contains("${")), "{r:?}");
    assert_eq!(m.secret(&m.peer_app()["internal-secret"]), creds_before);
}

#[test]
fn set_password_on_a_non_leader_is_refused() {
    let mut m = Model::deployed(3);
    let r = m.act(1, "set-password", &[("username", json!("super"))]);
    assert!(
        r.as_ref()
            .is_err_and(|e| e.contains("juju run zookeeper/leader")),
        "{r:?}"
    );
}

#[test]
fn set_password_for_an_unknown_user_is_refused() {
    let mut m = Model::deployed(1);
    let r = m.act(0, "set-password", &[("username", json!("root"))]);
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn get_quorum_status_reports_every_member() {
    let mut m = Model::deployed(3);
    let r = m.act(1, "get-quorum-status", &[]).expect("ok");
    let json: serde_json::Value =
        serde_json::from_str(r.get("json").expect("json")).expect("valid json");
    assert_eq!(json["leader"], "server.1", "{json}");
    assert_eq!(json["members"].as_array().map(Vec::len), Some(3), "{json}");
}

#[test]
fn not_yet_implemented_actions_fail_and_change_nothing() {
    let mut m = Model::deployed(1);
    let app = m.peer_app();
    for a in ["create-backup", "list-backups", "restore"] {
        let r = m.act(0, a, &[]);
        assert!(
            r.as_ref()
                .is_err_and(|e| e.contains("not supported by this charm yet")),
            "{a}: {r:?}"
        );
    }
    assert_eq!(m.peer_app(), app);
}

#[test]
fn set_tls_private_key_takes_pkcs8_pem_or_base64_and_refuses_the_rest() {
    let mut m = Model::deployed(1);
    let app = m.peer_app();
    let key_file = m.unit_dir(0).join("workload/conf/tls/unit.key");
    // Generated when left out.
    m.act(0, "set-tls-private-key", &[]).expect("a new key");
    let first = std::fs::read_to_string(&key_file).expect("key file");
    assert!(first.starts_with("-----BEGIN PRIVATE KEY-----"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "private: {mode:o}");
    // A PKCS#1 RSA key: refused with the command that converts it; the key stays.
    let r = m.act(
        0,
        "set-tls-private-key",
        &[(
            "internal-key",
            serde_json::json!(
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"
            ),
        )],
    );
    assert!(
        r.as_ref().is_err_and(|e| e.contains("openssl pkcs8")),
        "{r:?}"
    );
    assert_eq!(std::fs::read_to_string(&key_file).expect("key"), first);
    // Another good key, as PEM.
    let other = crate::tls::material::UnitKey::generate().expect("key");
    m.act(
        0,
        "set-tls-private-key",
        &[("internal-key", serde_json::json!(other.pem()))],
    )
    .expect("taken");
    assert_eq!(
        std::fs::read_to_string(&key_file).expect("key"),
        other.pem()
    );
    assert_eq!(m.peer_app(), app, "nothing else changed");
}

#[test]
fn an_unknown_action_fails() {
    let mut m = Model::deployed(1);
    let r = m.act(0, "format-disk", &[]);
    assert!(
        r.as_ref()
            .is_err_and(|e| e.contains("unknown action format-disk")),
        "{r:?}"
    );
}
