//! Client tenancy: grant, refuse, revoke, release, isolation.

use super::super::testing::*;
use charm_engine::juju::tools::StatusKind;
use charm_engine::juju::Event;

fn acl_ids(m: &Model, path: &str) -> Vec<String> {
    m.world
        .borrow()
        .znodes
        .get(path)
        .map(|(_, acl)| {
            acl.iter()
                .map(|a| format!("{}:{}", a.scheme, a.id))
                .collect()
        })
        .unwrap_or_default()
}

fn granted(id: u32, app: &str, chroot: &str) -> Model {
    let mut m = Model::deployed(3);
    m.relate_client(id, app, &[("database", chroot)]);
    m.settle();
    m
}

#[test]
fn a_client_gets_its_znode_with_its_own_acl_and_credentials() {
    let m = granted(10, "kafka", "/kafka");
    let reply = m.client_reply(10);
    assert_eq!(
        reply.get("username").map(String::as_str),
        Some("relation-10"),
        "{reply:?}\n{}",
        m.describe()
    );
    assert_eq!(reply.get("chroot").map(String::as_str), Some("/kafka"));
    assert_eq!(reply.get("database").map(String::as_str), Some("/kafka"));
    let endpoints = reply.get("endpoints").cloned().unwrap_or_default();
    for u in 0..3 {
        assert!(
            endpoints.contains(&format!("{}:2181", address(u))),
            "{endpoints}"
        );
    }
    assert_eq!(reply.get("uris"), Some(&format!("{endpoints}/kafka")));
    assert!(reply.get("password").is_some_and(|p| p.len() >= 16));
    let ids = acl_ids(&m, "/kafka");
    assert!(ids.contains(&"sasl:relation-10".to_string()), "{ids:?}");
    assert!(!ids.iter().any(|i| i.starts_with("world:")), "{ids:?}");
}

#[test]
fn every_server_knows_the_user_before_the_credentials_are_published() {
    let mut m = Model::deployed(3);
    m.relate_client(10, "kafka", &[("database", "/kafka")]);
    // Right after the relation's hooks, the servers have not all loaded the new user.
    let published_early = m.client_reply(10).contains_key("password");
    m.settle();
    let starts: Vec<u32> = m
        .world
        .borrow()
        .servers
        .values()
        .map(|s| s.starts)
        .collect();
    assert!(
        starts.iter().all(|s| *s == 2),
        "one rolling restart for the new user: {starts:?}"
    );
    assert!(m.client_reply(10).contains_key("password"));
    if published_early {
        panic!(
            "credentials published before every server knew the user:\n{}",
            m.describe()
        );
    }
}

#[test]
fn requested_secrets_move_the_credentials_into_a_juju_secret() {
    let mut m = Model::deployed(3);
    m.relate_client(
        10,
        "kafka",
        &[
            ("database", "/kafka"),
            ("requested-secrets", r#"["username","password","uris"]"#),
        ],
    );
    m.settle();
    let reply = m.client_reply(10);
    assert!(!reply.contains_key("password"), "{reply:?}");
    let uri = reply.get("secret-user").cloned().expect("secret-user");
    let content = m.secret(&uri).expect("the secret exists");
    assert_eq!(
        content.get("username").map(String::as_str),
        Some("relation-10")
    );
    assert!(content.contains_key("password"));
}

#[test]
fn two_clients_get_disjoint_znodes_and_users() {
    let mut m = granted(10, "kafka", "/kafka");
    m.relate_client(11, "spark", &[("database", "/spark")]);
    m.settle();
    assert!(acl_ids(&m, "/kafka").contains(&"sasl:relation-10".to_string()));
    assert!(!acl_ids(&m, "/kafka").contains(&"sasl:relation-11".to_string()));
    assert!(acl_ids(&m, "/spark").contains(&"sasl:relation-11".to_string()));
    assert!(!acl_ids(&m, "/spark").contains(&"sasl:relation-10".to_string()));
    assert_ne!(
        m.client_reply(10).get("password"),
        m.client_reply(11).get("password")
    );
}

#[test]
fn a_chroot_inside_another_clients_is_refused() {
    let mut m = granted(10, "kafka", "/kafka");
    m.relate_client(11, "spy", &[("database", "/kafka/inner")]);
    m.settle();
    assert!(
        !m.client_reply(11).contains_key("password"),
        "{:?}",
        m.client_reply(11)
    );
    assert!(!m.world.borrow().znodes.contains_key("/kafka/inner"));
    let s = m.status(m.leader());
    assert_eq!(s.kind, StatusKind::Blocked, "{s:?}");
    assert!(
        s.message
            .starts_with("client request refused: relation 11 (spy)"),
        "{s:?}"
    );
}

#[test]
fn a_parent_of_another_clients_chroot_is_refused() {
    let mut m = granted(10, "kafka", "/apps/kafka");
    m.relate_client(11, "greedy", &[("database", "/apps")]);
    m.settle();
    assert!(!m.client_reply(11).contains_key("password"));
    assert!(acl_ids(&m, "/apps/kafka").contains(&"sasl:relation-10".to_string()));
}

#[test]
fn the_zookeeper_tree_and_the_root_are_refused() {
    let mut m = Model::deployed(1);
    m.relate_client(10, "evil", &[("database", "/zookeeper/config")]);
    m.relate_client(11, "root", &[("database", "/")]);
    m.settle();
    assert!(!m.client_reply(10).contains_key("password"));
    assert!(!m.client_reply(11).contains_key("password"));
    let s = m.status(0);
    assert!(s.message.starts_with("2 client requests refused"), "{s:?}");
}

#[test]
fn a_path_with_forbidden_characters_is_refused_with_a_clear_message() {
    let mut m = Model::deployed(1);
    m.relate_client(10, "emoji", &[("database", "/a\u{1F600}")]);
    m.settle();
    let s = m.status(0);
    assert!(
        s.message
            .contains("which ZooKeeper does not allow in paths"),
        "{s:?}"
    );
}

#[test]
fn fixing_a_refused_request_grants_it() {
    let mut m = Model::deployed(1);
    m.relate_client(10, "kafka", &[("database", "/zookeeper")]);
    m.settle();
    assert!(!m.client_reply(10).contains_key("password"));
    m.client_writes(10, &[("database", "/kafka")]);
    m.settle();
    assert!(
        m.client_reply(10).contains_key("password"),
        "{}",
        m.describe()
    );
    assert_eq!(m.status(0).kind, StatusKind::Active);
}

#[test]
fn removing_a_client_with_the_keep_policy_keeps_its_data_for_super_only() {
    let mut m = granted(10, "kafka", "/kafka");
    m.unrelate_client(10);
    m.settle();
    let w = m.world.borrow();
    assert!(w.znodes.contains_key("/kafka"), "kept");
    let ids: Vec<String> = w.znodes["/kafka"]
        .1
        .iter()
        .map(|a| format!("{}:{}", a.scheme, a.id))
        .collect();
    assert!(!ids.contains(&"sasl:relation-10".to_string()), "{ids:?}");
}

#[test]
fn removing_a_client_with_the_delete_policy_deletes_its_tree() {
    let mut m = granted(10, "kafka", "/kafka");
    m.config("client-znode-policy", serde_json::json!("delete"));
    m.settle();
    m.unrelate_client(10);
    m.settle();
    assert!(
        !m.world.borrow().znodes.contains_key("/kafka"),
        "{}",
        m.describe()
    );
}

#[test]
fn kept_data_is_reserved_for_an_application_of_the_same_name() {
    let mut m = granted(10, "kafka", "/kafka");
    m.unrelate_client(10);
    m.settle();
    m.relate_client(11, "thief", &[("database", "/kafka")]);
    m.settle();
    assert!(!m.client_reply(11).contains_key("password"));
    m.relate_client(12, "kafka", &[("database", "/kafka")]);
    m.settle();
    assert!(
        m.client_reply(12).contains_key("password"),
        "{}",
        m.describe()
    );
    assert!(acl_ids(&m, "/kafka").contains(&"sasl:relation-12".to_string()));
}

#[test]
fn the_revoked_user_leaves_the_servers_credentials() {
    let mut m = granted(10, "kafka", "/kafka");
    let creds_uri = m
        .peer_app()
        .get("internal-secret")
        .cloned()
        .expect("secret");
    assert!(m
        .secret(&creds_uri)
        .expect("creds")
        .keys()
        .any(|k| k.contains("relation-10")));
    m.unrelate_client(10);
    m.settle();
    assert!(!m
        .secret(&creds_uri)
        .expect("creds")
        .keys()
        .any(|k| k.contains("relation-10")));
}

#[test]
fn release_client_znode_frees_kept_data_on_the_leader_only() {
    let mut m = granted(10, "kafka", "/kafka");
    m.unrelate_client(10);
    m.settle();
    m.unit_mut(1).juju.action_params = [("path".to_string(), serde_json::json!("/kafka"))]
        .into_iter()
        .collect();
    m.run(1, action("release-client-znode"));
    assert!(m
        .unit(1)
        .juju
        .action_failed
        .as_deref()
        .is_some_and(|f| f.contains("must run on the leader")));
    m.unit_mut(0).juju.action_params = [
        ("path".to_string(), serde_json::json!("/kafka")),
        ("delete".to_string(), serde_json::json!(true)),
    ]
    .into_iter()
    .collect();
    m.run(0, action("release-client-znode"));
    assert!(
        m.unit(0).juju.action_failed.is_none(),
        "{:?}",
        m.unit(0).juju.action_failed
    );
    m.settle();
    assert!(
        !m.world.borrow().znodes.contains_key("/kafka"),
        "{}",
        m.describe()
    );
    m.relate_client(11, "other", &[("database", "/kafka")]);
    m.settle();
    assert!(m.client_reply(11).contains_key("password"));
}

#[test]
fn releasing_a_granted_chroot_is_refused() {
    let mut m = granted(10, "kafka", "/kafka");
    m.unit_mut(0).juju.action_params = [("path".to_string(), serde_json::json!("/kafka"))]
        .into_iter()
        .collect();
    m.run(0, action("release-client-znode"));
    assert!(m.unit(0).juju.action_failed.is_some());
    assert!(acl_ids(&m, "/kafka").contains(&"sasl:relation-10".to_string()));
}

#[test]
fn client_operations_wait_for_a_quorum() {
    let mut m = Model::deployed(3);
    m.world.borrow_mut().freeze(1, true);
    m.world.borrow_mut().freeze(2, true);
    m.relate_client(10, "kafka", &[("database", "/kafka")]);
    assert!(!m.client_reply(10).contains_key("password"));
    assert!(m.world.borrow().znodes.is_empty());
    m.world.borrow_mut().freeze(1, false);
    m.world.borrow_mut().freeze(2, false);
    m.run(0, Event::UpdateStatus);
    m.settle();
    assert!(
        m.client_reply(10).contains_key("password"),
        "{}",
        m.describe()
    );
}

#[test]
fn overlapping_grants_found_when_upgrading_are_served_to_neither() {
    // A deployment from before the ownership record: two clients hold overlapping chroots.
    let mut m = Model::deployed(1);
    m.add_client_quietly(10, "a", &[("database", "/nest")]);
    m.add_client_quietly(11, "b", &[("database", "/nest/inner")]);
    {
        let mut w = m.world.borrow_mut();
        let acl = |u: &str| {
            vec![crate::zk::acl::AclEntry::sasl(
                u,
                crate::zk::acl::Perms::ALL,
            )]
        };
        w.znodes
            .insert("/nest".into(), (Vec::new(), acl("relation-10")));
        w.znodes
            .insert("/nest/inner".into(), (Vec::new(), acl("relation-11")));
    }
    m.unit_mut(0)
        .juju
        .relations
        .get_mut(&PEER)
        .and_then(|r| r.bags.get_mut(APP))
        .map(|b| b.remove(crate::clients::ownership::KEY));
    m.run(0, Event::UpgradeCharm);
    m.settle();
    let s = m.status(0);
    assert_eq!(s.kind, StatusKind::Blocked, "{s:?}");
    assert!(s.message.contains("(found when upgrading)"), "{s:?}");
    assert!(!m.client_reply(10).contains_key("password"));
    assert!(!m.client_reply(11).contains_key("password"));
    // Left as they were: nothing guessed.
    assert_eq!(acl_ids(&m, "/nest"), ["sasl:relation-10"]);
    assert_eq!(acl_ids(&m, "/nest/inner"), ["sasl:relation-11"]);
}
