//! Client relation end to end (issue 6): stub client applications under jujusim, a real
//! ZooKeeper ensemble, and kazoo (a client nobody here wrote) logging in with what each stub
//! received.

mod support;

use std::time::Instant;

use serde_json::{json, Value};
use support::{client, Model};

const APP: &str = "zookeeper";

fn deploy(m: &Model, config: &[&str]) {
    m.deploy_with(3, config);
    assert_eq!(m.settle(), 0);
    m.assert_quorum(APP);
}

fn sasl(user: &str, pw: &str) -> Value {
    json!({"sasl": [user, pw]})
}

fn digest(user: &str, pw: &str) -> Value {
    json!({"digest": [user, pw]})
}

fn ok(r: &Value, i: usize) -> bool {
    r["results"][i].get("ok").is_some()
}

fn err(r: &Value, i: usize) -> String {
    r["results"][i]["error"].as_str().unwrap_or("").to_string()
}

/// Rolling restarts per unit, from the timeline (what "restart rounds" are counted from).
fn restarts_per_unit(m: &Model) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for u in m.units(APP) {
        out.push((
            u.clone(),
            m.logged(&u, "rolling restart: restarting server").len(),
        ));
    }
    out
}

/// A client's SASL login is refused by every server (each asked on its own).
fn sasl_refused_everywhere(m: &Model, user: &str, pw: &str) {
    for u in m.units(APP) {
        let host = format!("{}:2181", m.address(&u));
        let r = client(&host, None, sasl(user, pw), json!([["exists", "/"]]));
        assert!(
            !r["connected"].as_bool().unwrap_or(false) || !ok(&r, 0),
            "{user} still logs in on {u}: {r}"
        );
    }
}

#[test]
fn two_clients_are_isolated_and_removal_revokes_for_good() {
    let m = Model::new();
    deploy(&m, &[]);
    m.stub("app1", true);
    m.stub("app2", true);
    let t = Instant::now();
    m.set_data("app1", &["database=/app1"], false);
    m.set_data(
        "app2",
        &[
            "database=app2",
            "requested-secrets=[\"username\",\"password\",\"uris\"]",
        ],
        false,
    );
    assert_eq!(m.settle(), 0);
    eprintln!(
        "two clients provisioned in {:?}; restarts per unit {:?}",
        t.elapsed(),
        restarts_per_unit(&m)
    );

    // app1 asked for no secret: everything is in the databag. app2 did: its user fields come
    // in a Juju secret it can read, not in the databag.
    let d1 = m.show_data("app1", false);
    assert_eq!(
        d1["application-data"]["username"]
            .as_str()
            .map(|s| s.starts_with("relation-")),
        Some(true),
        "{d1}"
    );
    assert_eq!(d1["application-data"]["database"], "/app1");
    assert_eq!(d1["application-data"]["chroot"], "/app1");
    assert_eq!(d1["application-data"]["tls"], "disabled");
    let d2 = m.show_data("app2", true);
    assert!(
        d2["application-data"].get("password").is_none(),
        "no password in app2's databag: {d2}"
    );
    assert!(
        d2["application-data"]["secret-user"]
            .as_str()
            .is_some_and(|u| u.starts_with("secret:")),
        "{d2}"
    );
    assert!(
        d2["revealed"]["secret-user"]["password"].as_str().is_some(),
        "app2 can read its secret: {d2}"
    );
    assert_eq!(
        d2["application-data"]["database"], "/app2",
        "a missing leading / is added"
    );

    let (u1, p1, eps, c1) = m.credentials("app1").expect("app1 answered");
    let (u2, p2, eps2, c2) = m.credentials("app2").expect("app2 answered");
    assert_eq!(eps, eps2);
    assert_eq!(eps.split(',').count(), 3, "{eps}");
    assert_eq!(
        d1["application-data"]["uris"].as_str(),
        Some(format!("{eps}/app1").as_str())
    );

    // Each writes under its own chroot, over SASL and over digest.
    for (u, p, c) in [(&u1, &p1, &c1), (&u2, &p2, &c2)] {
        let r = client(
            &eps,
            Some(c),
            sasl(u, p),
            json!([
                ["create", "/sasl-data", "x", "creator"],
                ["get", "/sasl-data"]
            ]),
        );
        assert!(ok(&r, 0) && ok(&r, 1), "{u} over SASL in {c}: {r}");
        let r = client(
            &eps,
            Some(c),
            digest(u, p),
            json!([
                ["create", "/digest-data", "x", "creator"],
                ["children", "/"]
            ]),
        );
        assert!(ok(&r, 0) && ok(&r, 1), "{u} over digest in {c}: {r}");
    }
    // ... and nowhere else.
    for (u, p, other) in [(&u1, &p1, "/app2"), (&u2, &p2, "/app1")] {
        for auth in [sasl(u, p), digest(u, p)] {
            let r = client(
                &eps,
                None,
                auth.clone(),
                json!([
                    ["get", other],
                    ["children", other],
                    ["create", format!("{other}/intruder"), "x", "open"]
                ]),
            );
            assert_eq!(
                (err(&r, 0), err(&r, 1), err(&r, 2)),
                (
                    "NoAuthError".into(),
                    "NoAuthError".into(),
                    "NoAuthError".into()
                ),
                "{u} ({auth}) on {other}: {r}"
            );
        }
    }
    // Anonymous clients are refused outright (enforce.auth), super reads everything.
    let r = client(&eps, None, json!({}), json!([["get", "/app1"]]));
    assert!(
        !r["connected"].as_bool().unwrap_or(false) || !ok(&r, 0),
        "anonymous: {r}"
    );
    let su = m.super_spec(
        APP,
        json!([
            ["children", "/app1"],
            ["children", "/app2"],
            ["get_acls", "/app1"]
        ]),
    );
    let r = support::kazoo(su);
    assert_eq!(
        r["results"][0]["ok"],
        json!(["digest-data", "sasl-data"]),
        "{r}"
    );
    assert_eq!(
        r["results"][1]["ok"],
        json!(["digest-data", "sasl-data"]),
        "{r}"
    );
    let acls: Vec<String> = r["results"][2]["ok"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    assert_eq!(acls.len(), 2, "sasl + digest for app1's user: {acls:?}");
    assert!(
        acls[0].starts_with(&format!("sasl:{u1}:"))
            && acls[1].starts_with(&format!("digest:{u1}:")),
        "{acls:?}"
    );

    // Removing app1 (policy keep): its password stops working over both schemes, its data stays
    // for super; app2 is unaffected.
    m.ok(&["remove-relation", "app1", "zookeeper"]);
    assert_eq!(m.settle(), 0);
    sasl_refused_everywhere(&m, &u1, &p1);
    let r = client(
        &eps,
        None,
        digest(&u1, &p1),
        json!([
            ["get", "/app1"],
            ["children", "/app1"],
            ["get", "/app1/digest-data"]
        ]),
    );
    assert_eq!(
        (err(&r, 0), err(&r, 1), err(&r, 2)),
        (
            "NoAuthError".into(),
            "NoAuthError".into(),
            "NoAuthError".into()
        ),
        "{r}"
    );
    let r = support::kazoo(m.super_spec(
        APP,
        json!([["children", "/app1"], ["get_acls", "/app1/sasl-data"]]),
    ));
    assert_eq!(
        r["results"][0]["ok"],
        json!(["digest-data", "sasl-data"]),
        "kept for super: {r}"
    );
    assert_eq!(
        r["results"][1]["ok"],
        json!(["sasl:super:31"]),
        "every node reduced to super: {r}"
    );
    let r = client(
        &eps,
        Some(&c2),
        sasl(&u2, &p2),
        json!([["get", "/sasl-data"]]),
    );
    assert!(ok(&r, 0), "app2 unaffected: {r}");
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn delete_policy_removes_the_tree() {
    let m = Model::new();
    deploy(&m, &["client-znode-policy=delete"]);
    m.stub("app1", true);
    m.set_data("app1", &["database=/team/app1"], true);
    assert_eq!(m.settle(), 0);
    let (u, p, eps, c) = m.credentials("app1").expect("answered");
    let r = client(
        &eps,
        Some(&c),
        sasl(&u, p.as_str()),
        json!([["create", "/d", "x", "creator"]]),
    );
    assert!(ok(&r, 0), "{r}");
    m.ok(&["remove-relation", "app1", "zookeeper"]);
    assert_eq!(m.settle(), 0);
    let r =
        support::kazoo(m.super_spec(APP, json!([["exists", "/team/app1"], ["exists", "/team"]])));
    assert_eq!(
        r["results"][0]["ok"],
        json!(false),
        "the client's tree is gone: {r}"
    );
    assert_eq!(
        r["results"][1]["ok"],
        json!(true),
        "the parent the charm created stays: {r}"
    );
    sasl_refused_everywhere(&m, &u, &p);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn bad_requests_are_refused_with_a_reason_and_nothing_created() {
    let m = Model::new();
    deploy(&m, &[]);
    m.stub("bad", true);
    let leader = m.leader(APP);
    let long = format!("/{}", "x".repeat(1100));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["database=/".into()], "root znode"),
        (vec!["database=/zookeeper".into()], "reserved"),
        (vec!["database=/zookeeper/config".into()], "reserved"),
        (vec!["database=/a//b".into()], "empty path segment"),
        (vec!["database=/a/./b".into()], "\".\" or \"..\""),
        (vec!["database=/a/../b".into()], "\".\" or \"..\""),
        (vec!["database=/a\u{1}b".into()], "character"),
        (vec![format!("database={long}")], "longer than"),
        (
            vec!["database=/ok".into(), "extra-user-roles=rwx".into()],
            "unknown letters",
        ),
    ];
    for (kv, why) in &cases {
        let kv: Vec<&str> = kv.iter().map(String::as_str).collect();
        m.set_data("bad", &kv, true);
        m.settle();
        let st = m
            .workload(APP)
            .into_iter()
            .find(|(u, _, _)| *u == leader)
            .unwrap_or_default();
        assert_eq!(st.1, "blocked", "{kv:?}: {st:?}");
        assert!(
            st.2.contains("client request refused") && st.2.contains(why),
            "{kv:?}: {st:?}"
        );
        assert!(
            m.logged(&leader, why)
                .iter()
                .any(|(_, msg)| msg.contains("refused")),
            "{kv:?}: logged"
        );
        let d = m.show_data("bad", false);
        assert!(
            d["application-data"].get("password").is_none()
                && d["application-data"].get("username").is_none(),
            "{kv:?}: unanswered {d}"
        );
        m.set_data("bad", &["database=", "extra-user-roles="], true);
    }
    // Nothing was created: the tree holds only what ZooKeeper itself has.
    let r = support::kazoo(m.super_spec(
        APP,
        json!([["children", "/"], ["exists", "/a"], ["exists", "/ok"]]),
    ));
    assert_eq!(r["results"][0]["ok"], json!(["zookeeper"]), "{r}");
    // A valid request afterwards is served and the leader is active again.
    m.set_data("bad", &["database=/fixed"], true);
    assert_eq!(m.settle(), 0);
    assert!(m.credentials("bad").is_some());
    m.assert_quorum(APP);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn overlapping_chroots_are_refused_for_the_later_application() {
    let m = Model::new();
    deploy(&m, &[]);
    m.stub("first", true);
    m.set_data("first", &["database=/shared"], true);
    assert_eq!(m.settle(), 0);
    m.stub("nested", true);
    m.set_data("nested", &["database=/shared/inner"], true);
    m.stub("same", true);
    m.set_data("same", &["database=/shared"], true);
    m.settle();
    assert!(m.credentials("first").is_some());
    for app in ["nested", "same"] {
        let d = m.show_data(app, false);
        assert!(
            d["application-data"].get("password").is_none(),
            "{app} must not share /shared: {d}"
        );
    }
    let leader = m.leader(APP);
    let st = m
        .workload(APP)
        .into_iter()
        .find(|(u, _, _)| *u == leader)
        .unwrap_or_default();
    assert!(st.2.contains("overlaps /shared"), "{st:?}");
    // first's ACL was not touched by the refused requests.
    let (u, p, eps, c) = m.credentials("first").expect("first");
    let r = client(
        &eps,
        Some(&c),
        sasl(&u, &p),
        json!([["create", "/still-mine", "x", "creator"]]),
    );
    assert!(ok(&r, 0), "{r}");
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn twenty_clients_at_once_get_working_credentials_in_at_most_two_rolling_restarts() {
    let m = Model::new();
    deploy(&m, &[]);
    let before = restarts_per_unit(&m);
    let t = Instant::now();
    for i in 0..20 {
        let app = format!("c{i:02}");
        m.stub(&app, false);
        m.set_data(&app, &[&format!("database=/c{i:02}")], false);
    }
    // One command runs everything that follows.
    assert_eq!(m.settle(), 0);
    let took = t.elapsed();
    let after = restarts_per_unit(&m);
    let rounds = after
        .iter()
        .zip(&before)
        .map(|((_, a), (_, b))| a - b)
        .max()
        .unwrap_or(0);
    eprintln!("20 clients: all answered in {took:?}; rolling restarts per unit {after:?} -> {rounds} round(s)");
    for i in 0..20 {
        let app = format!("c{i:02}");
        let (u, p, eps, c) = m
            .credentials(&app)
            .unwrap_or_else(|| panic!("{app} answered"));
        let r = client(
            &eps,
            Some(&c),
            sasl(&u, &p),
            json!([["create", "/hello", &app, "creator"], ["get", "/hello"]]),
        );
        assert_eq!(r["results"][1], json!({"ok": app}), "{app}: {r}");
    }
    assert!(rounds <= 2, "{rounds} rolling restarts for 20 clients");
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn scaling_keeps_every_client_endpoints_current_and_data_intact() {
    let m = Model::new();
    deploy(&m, &[]);
    for app in ["s1", "s2"] {
        m.stub(app, true);
        m.set_data(app, &[&format!("database=/{app}")], true);
    }
    assert_eq!(m.settle(), 0);
    for app in ["s1", "s2"] {
        let (u, p, eps, c) = m.credentials(app).expect(app);
        let r = client(
            &eps,
            Some(&c),
            sasl(&u, &p),
            json!([["create", "/kept", app, "creator"]]),
        );
        assert!(ok(&r, 0), "{r}");
    }
    let check = |n: usize| {
        let want: Vec<String> = {
            let mut v: Vec<String> = m
                .units(APP)
                .iter()
                .map(|u| format!("{}:2181", m.address(u)))
                .collect();
            v.sort();
            v
        };
        assert_eq!(want.len(), n);
        for app in ["s1", "s2"] {
            let (u, p, eps, c) = m.credentials(app).expect(app);
            assert_eq!(eps, want.join(","), "{app}'s endpoints follow the units");
            let r = client(&eps, Some(&c), sasl(&u, &p), json!([["get", "/kept"]]));
            assert_eq!(r["results"][0], json!({"ok": app}), "{app}: {r}");
        }
    };
    m.ok(&["add-unit", APP, "-n", "2"]);
    assert_eq!(m.settle(), 0);
    m.assert_quorum(APP);
    check(5);
    let leaving: Vec<String> = m.units(APP).into_iter().take(2).collect();
    let mut args = vec!["remove-unit"];
    args.extend(leaving.iter().map(String::as_str));
    m.ok(&args);
    assert_eq!(m.settle(), 0);
    m.assert_quorum(APP);
    check(3);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}
