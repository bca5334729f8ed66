//! Client tenancy end to end (issue 11): clients that change their request, leave, come back,
//! plant data or ask for data that is not theirs, under both `client-znode-policy` values, a
//! leader change, and the one-time repair of a deployment left by an older version. Every test
//! walks the whole tree as the super user afterwards and checks what each ACL grants; clients
//! are kazoo sessions logging in with exactly what their stub received.

mod support;

use serde_json::{json, Value};
use support::{assert_tenancy, client, kazoo, Model};

const APP: &str = "zookeeper";

fn deploy(m: &Model, config: &[&str]) {
    m.deploy_with(3, config);
    assert_eq!(m.settle(), 0);
}

fn sasl(user: &str, pw: &str) -> Value {
    json!({"sasl": [user, pw]})
}

fn digest(user: &str, pw: &str) -> Value {
    json!({"digest": [user, pw]})
}

/// What a stub received: user, password, endpoints, chroot.
struct Creds {
    user: String,
    pw: String,
    eps: String,
    chroot: String,
}

fn creds(m: &Model, app: &str) -> Creds {
    let (user, pw, eps, chroot) = m
        .credentials(app)
        .unwrap_or_else(|| panic!("{app} has no credentials: {}", m.show_data(app, true)));
    Creds {
        user,
        pw,
        eps,
        chroot,
    }
}

/// Runs `ops` (paths absolute, no chroot) as the client over SASL and over digest.
fn both(c: &Creds, ops: Value) -> [Value; 2] {
    [
        client(&c.eps, None, sasl(&c.user, &c.pw), ops.clone()),
        client(&c.eps, None, digest(&c.user, &c.pw), ops),
    ]
}

fn ok(r: &Value, i: usize) -> bool {
    r["results"][i].get("ok").is_some()
}

fn denied(r: &Value, i: usize) -> bool {
    let e = r["results"][i]["error"].as_str().unwrap_or("");
    // A removed client's SASL login fails: the server drops the connection (no session, or
    // every call loses it). That is a denial too.
    !r["connected"].as_bool().unwrap_or(false)
        || matches!(
            e,
            "NoAuthError" | "AuthFailedError" | "ConnectionLoss" | "ConnectionClosedError"
        )
}

/// The client can read, list and create under `path`, over both schemes.
fn assert_access(c: &Creds, path: &str, tag: &str) {
    for r in both(
        c,
        json!([
            ["get", path],
            ["children", path],
            ["create", format!("{path}/{tag}"), tag, "creator"]
        ]),
    ) {
        assert!(ok(&r, 0) && ok(&r, 1), "{} on {path}: {r}", c.user);
        let e = r["results"][2]["error"].as_str().unwrap_or("");
        assert!(
            ok(&r, 2) || e == "NodeExistsError",
            "{} creates in {path}: {r}",
            c.user
        );
    }
}

/// The client can neither read, list nor create under `path`, over either scheme.
fn assert_no_access(c: &Creds, path: &str) {
    for r in both(
        c,
        json!([
            ["get", path],
            ["children", path],
            ["create", format!("{path}/intruder"), "x", "open"]
        ]),
    ) {
        for i in 0..3 {
            let e = r["results"][i]["error"].as_str().unwrap_or("");
            assert!(
                denied(&r, i) || e == "NoNodeError",
                "{} still reaches {path} (op {i}): {r}",
                c.user
            );
        }
    }
}

/// Children the client creates with its creator ACL, over SASL and over digest, and one the
/// way Kafka does (creator plus world read), nested.
fn write_children(c: &Creds, path: &str) {
    let r = client(
        &c.eps,
        None,
        sasl(&c.user, &c.pw),
        json!([
            ["create", format!("{path}/by-sasl"), "s", "creator"],
            ["create", format!("{path}/by-sasl/nested"), "n", "creator"],
            ["create", format!("{path}/brokers"), "k", "kafka"]
        ]),
    );
    assert!(ok(&r, 0) && ok(&r, 1) && ok(&r, 2), "{r}");
    let r = client(
        &c.eps,
        None,
        digest(&c.user, &c.pw),
        json!([["create", format!("{path}/by-digest"), "d", "creator"]]),
    );
    assert!(ok(&r, 0), "{r}");
}

fn leader_status(m: &Model) -> (String, String) {
    let leader = m.leader(APP);
    m.workload(APP)
        .into_iter()
        .find(|(u, _, _)| *u == leader)
        .map(|(_, s, msg)| (s, msg))
        .unwrap_or_default()
}

fn record_state(m: &Model, path: &str) -> String {
    let rec = m.ownership(APP);
    let o = &rec["chroots"][path];
    match o["state"].as_str() {
        Some(s) => format!("{s}:{}", o["app"].as_str().unwrap_or("")),
        None => "none".into(),
    }
}

#[test]
fn a_changed_request_moves_the_grant_and_removal_revokes_everything_it_held() {
    let m = Model::new();
    deploy(&m, &[]);
    m.stub("kafka", true);
    let rel = m.relation_id("kafka");
    m.set_data("kafka", &["database=/first"], true);
    assert_eq!(m.settle(), 0);
    let c = creds(&m, "kafka");
    assert_eq!(c.chroot, "/first");
    write_children(&c, "/first");
    assert_tenancy(&m.tree_acls(APP), &[(rel, "/first")], &[]);

    // Changed three times: each time the new chroot is granted and the previous taken back,
    // its data kept.
    let mut previous = vec!["/first".to_string()];
    for next in ["/second", "/third/deep", "/fourth"] {
        m.set_data("kafka", &[&format!("database={next}")], true);
        assert_eq!(m.settle(), 0);
        let now = creds(&m, "kafka");
        assert_eq!(now.chroot, next, "the answer follows the request");
        assert_eq!(
            (now.user.as_str(), now.pw.as_str()),
            (c.user.as_str(), c.pw.as_str())
        );
        let d = m.show_data("kafka", false);
        assert!(
            d["application-data"]["uris"]
                .as_str()
                .is_some_and(|u| u.ends_with(next)),
            "{d}"
        );
        write_children(&now, next);
        assert_access(&now, next, "here");
        for p in &previous {
            assert_no_access(&c, p);
            assert_no_access(&c, &format!("{p}/by-sasl"));
            assert_no_access(&c, &format!("{p}/by-digest"));
            assert_eq!(record_state(&m, p), "kept:kafka");
        }
        assert_tenancy(&m.tree_acls(APP), &[(rel, next)], &[]);
        previous.push(next.to_string());
    }
    // The data of every chroot it moved away from is still there, for the super user.
    let r = kazoo(m.super_spec(
        APP,
        json!([["children", "/first"], ["get", "/second/by-sasl/nested"]]),
    ));
    assert_eq!(
        r["results"][0]["ok"],
        json!(["brokers", "by-digest", "by-sasl"]),
        "{r}"
    );
    assert_eq!(r["results"][1]["ok"], json!("n"), "{r}");

    // Removal (keep): nothing grants the removed user any more, by either scheme, anywhere.
    m.ok(&["remove-relation", "kafka", "zookeeper"]);
    assert_eq!(m.settle(), 0);
    assert_tenancy(&m.tree_acls(APP), &[], &[rel]);
    for p in &previous {
        assert_no_access(&c, p);
        assert_no_access(&c, &format!("{p}/brokers"));
        assert_eq!(record_state(&m, p), "kept:kafka");
    }

    // Kafka relates again (a new relation, the same application name): it gets its data back.
    m.ok(&["integrate", "kafka", "zookeeper"]);
    let rel2 = m.relation_id("kafka");
    assert_ne!(rel, rel2);
    m.set_data("kafka", &["database=/fourth"], true);
    assert_eq!(m.settle(), 0);
    let again = creds(&m, "kafka");
    assert_eq!(again.chroot, "/fourth");
    assert_ne!(again.user, c.user);
    let r = client(
        &again.eps,
        None,
        sasl(&again.user, &again.pw),
        json!([
            ["get", "/fourth/by-sasl/nested"],
            ["get", "/fourth/brokers"]
        ]),
    );
    assert_eq!(
        (&r["results"][0]["ok"], &r["results"][1]["ok"]),
        (&json!("n"), &json!("k")),
        "{r}"
    );
    assert_tenancy(&m.tree_acls(APP), &[(rel2, "/fourth")], &[rel]);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn removing_one_client_never_touches_another_under_either_policy() {
    let m = Model::new();
    deploy(&m, &[]);
    // keep: app4 moves /d1 -> /d2; /d1 stays app4's, so app5 cannot have it.
    m.stub("app4", true);
    m.stub("app5", true);
    let (r4, r5) = (m.relation_id("app4"), m.relation_id("app5"));
    m.set_data("app4", &["database=/d1"], true);
    assert_eq!(m.settle(), 0);
    write_children(&creds(&m, "app4"), "/d1");
    m.set_data("app4", &["database=/d2"], true);
    m.set_data("app5", &["database=/d1"], true);
    m.settle();
    let (st, msg) = leader_status(&m);
    assert_eq!(st, "blocked", "{msg}");
    assert!(
        msg.contains("database /d1 is refused") && msg.contains("kept for application app4"),
        "{msg}"
    );
    assert!(m.credentials("app5").is_none(), "app5 is not answered");
    m.set_data("app5", &["database=/d3"], true);
    assert_eq!(m.settle(), 0);
    let c5 = creds(&m, "app5");
    write_children(&c5, "/d3");
    m.ok(&["remove-relation", "app4", "zookeeper"]);
    assert_eq!(m.settle(), 0);
    assert_access(&c5, "/d3", "after");
    let r = client(
        &c5.eps,
        None,
        sasl(&c5.user, &c5.pw),
        json!([["get", "/d3/by-sasl/nested"]]),
    );
    assert_eq!(r["results"][0]["ok"], json!("n"), "{r}");
    assert_tenancy(&m.tree_acls(APP), &[(r5, "/d3")], &[r4]);

    // delete: app6 moves /e1 -> /e2; removing app6 deletes both, and nothing of app7's.
    m.ok(&["config", APP, "client-znode-policy=delete"]);
    m.stub("app6", true);
    m.stub("app7", true);
    let (r6, r7) = (m.relation_id("app6"), m.relation_id("app7"));
    m.set_data("app6", &["database=/e1"], true);
    assert_eq!(m.settle(), 0);
    write_children(&creds(&m, "app6"), "/e1");
    m.set_data("app6", &["database=/e2"], true);
    m.set_data("app7", &["database=/e1"], true);
    m.settle();
    assert!(m.credentials("app7").is_none(), "/e1 is app6's");
    m.set_data("app7", &["database=/e3"], true);
    assert_eq!(m.settle(), 0);
    let c7 = creds(&m, "app7");
    write_children(&c7, "/e3");
    m.ok(&["remove-relation", "app6", "zookeeper"]);
    assert_eq!(m.settle(), 0);
    let r = kazoo(m.super_spec(
        APP,
        json!([["exists", "/e1"], ["exists", "/e2"], ["children", "/e3"]]),
    ));
    assert_eq!(r["results"][0]["ok"], json!(false), "{r}");
    assert_eq!(r["results"][1]["ok"], json!(false), "{r}");
    assert_eq!(
        r["results"][2]["ok"],
        json!(["brokers", "by-digest", "by-sasl"]),
        "{r}"
    );
    assert_access(&c7, "/e3", "after");
    // /e1 is free now: app7 may move there (and finds it empty).
    m.set_data("app7", &["database=/e1"], true);
    assert_eq!(m.settle(), 0);
    assert_eq!(creds(&m, "app7").chroot, "/e1");
    let r = client(
        &c7.eps,
        None,
        sasl(&c7.user, &c7.pw),
        json!([["children", "/e1"]]),
    );
    assert_eq!(r["results"][0]["ok"], json!([]), "{r}");
    assert_tenancy(&m.tree_acls(APP), &[(r5, "/d3"), (r7, "/e1")], &[r4, r6]);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn no_client_can_take_over_data_that_is_not_its_own() {
    let m = Model::new();
    deploy(&m, &[]);
    m.stub("app1", true);
    let r1 = m.relation_id("app1");
    m.set_data("app1", &["database=/app1"], true);
    assert_eq!(m.settle(), 0);
    let c1 = creds(&m, "app1");
    write_children(&c1, "/app1");

    // Nothing can be created outside its chroot: not at the top, not under /zookeeper.
    for r in both(
        &c1,
        json!([
            ["create", "/victim-chroot", "x", "open"],
            ["create", "/victim-chroot", "x", "creator"],
            ["create", "/zookeeper/x", "x", "open"],
            ["create", "/zookeeper/quota/x", "x", "open"],
            ["set", "/", "x"],
            ["set_acls", "/", [["world", "anyone", "cdrwa"]]]
        ]),
    ) {
        for i in 0..6 {
            assert!(denied(&r, i), "op {i}: {r}");
        }
    }
    // A Kafka-style client with a chroot still works: it looks for its chroot from the root
    // (Kafka 3 creates it only when missing), then works inside it.
    let r = client(
        &c1.eps,
        None,
        sasl(&c1.user, &c1.pw),
        json!([["exists", "/app1"], ["children", "/"]]),
    );
    assert!(ok(&r, 0) && ok(&r, 1), "{r}");
    let r = client(
        &c1.eps,
        Some("/app1"),
        sasl(&c1.user, &c1.pw),
        json!([
            ["create", "/cluster", "", "kafka"],
            ["create", "/cluster/id", "x", "kafka"],
            ["get", "/cluster/id"]
        ]),
    );
    assert!(ok(&r, 0) && ok(&r, 1) && ok(&r, 2), "{r}");

    // Operator data is never handed to a client, nor is anything created inside it.
    let r = kazoo(m.super_spec(
        APP,
        json!([
            [
                "create_acl",
                "/probe-data/secret",
                "s3cret",
                [["sasl", "super", "cdrwa"]]
            ],
            ["set_acls", "/probe-data", [["sasl", "super", "cdrwa"]]]
        ]),
    ));
    assert!(ok(&r, 0) && ok(&r, 1), "{r}");
    m.stub("nosy", true);
    for (want, why) in [
        ("/probe-data", "the charm never gave it to this application"),
        (
            "/probe-data/mine",
            "inside /probe-data, which exists and was not created by the charm",
        ),
        ("/app1", "granted to application app1"),
        ("/app1/sub", "granted to application app1"),
        ("/zookeeper-charm", "reserved"),
    ] {
        m.set_data("nosy", &[&format!("database={want}")], true);
        m.settle();
        let (st, msg) = leader_status(&m);
        assert_eq!(st, "blocked", "{want}: {msg}");
        assert!(msg.contains(why), "{want}: {msg}");
        assert!(
            m.credentials("nosy").is_none(),
            "{want}: nosy is not answered"
        );
    }
    let r = kazoo(m.super_spec(
        APP,
        json!([["get_acls", "/probe-data"], ["children", "/probe-data"]]),
    ));
    assert_eq!(
        r["results"][0]["ok"],
        json!(["sasl:super:31"]),
        "untouched: {r}"
    );
    assert_eq!(r["results"][1]["ok"], json!(["secret"]), "{r}");

    // A removed application's kept chroot goes only to an application of the same name.
    m.ok(&["remove-relation", "app1", "zookeeper"]);
    assert_eq!(m.settle(), 0);
    m.set_data("nosy", &["database=/app1"], true);
    m.settle();
    let (_, msg) = leader_status(&m);
    assert!(
        msg.contains("kept for application app1 after its removal"),
        "{msg}"
    );
    assert!(msg.contains("release-client-znode"), "{msg}");
    m.ok(&["integrate", "app1", "zookeeper"]);
    let r1b = m.relation_id("app1");
    m.set_data("app1", &["database=/app1"], true);
    m.settle();
    let c1b = creds(&m, "app1");
    let r = client(
        &c1b.eps,
        None,
        sasl(&c1b.user, &c1b.pw),
        json!([["get", "/app1/by-sasl/nested"]]),
    );
    assert_eq!(r["results"][0]["ok"], json!("n"), "its data back: {r}");
    assert_tenancy(&m.tree_acls(APP), &[(r1b, "/app1")], &[r1]);

    // The operator releases it only once it is kept, and may delete it: then it is free.
    let a = m.action("zookeeper/leader", "release-client-znode", &["path=/app1"]);
    assert_eq!(a["status"], "failed", "{a}");
    assert!(
        a["message"]
            .as_str()
            .unwrap_or("")
            .contains("granted to application app1"),
        "{a}"
    );
    m.ok(&["remove-relation", "app1", "zookeeper"]);
    assert_eq!(m.settle(), 0);
    let a = m.action(
        "zookeeper/leader",
        "release-client-znode",
        &["path=/app1", "delete=true"],
    );
    assert_eq!(a["status"], "completed", "{a}");
    assert_eq!(a["results"]["kept-for"], "app1", "{a}");
    assert_eq!(m.settle(), 0);
    let cn = creds(&m, "nosy");
    assert_eq!(cn.chroot, "/app1");
    let r = client(
        &cn.eps,
        None,
        sasl(&cn.user, &cn.pw),
        json!([["children", "/app1"]]),
    );
    assert_eq!(
        r["results"][0]["ok"],
        json!([]),
        "a fresh, empty chroot: {r}"
    );
    let rn = m.relation_id("nosy");
    assert_tenancy(&m.tree_acls(APP), &[(rn, "/app1")], &[r1, r1b]);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn a_leader_change_between_the_changes_and_the_removal_loses_nothing() {
    let m = Model::with_seed(11);
    deploy(&m, &[]);
    m.stub("app", true);
    let rel = m.relation_id("app");
    m.set_data("app", &["database=/l1"], true);
    assert_eq!(m.settle(), 0);
    let c = creds(&m, "app");
    write_children(&c, "/l1");
    m.set_data("app", &["database=/l2"], true);
    assert_eq!(m.settle(), 0);
    write_children(&c, "/l2");

    let old = m.leader(APP);
    m.ok(&["remove-unit", &old]);
    assert_eq!(m.settle(), 0);
    let new = m.leader(APP);
    assert_ne!(old, new);
    assert_eq!(record_state(&m, "/l1"), "kept:app");
    assert_eq!(record_state(&m, "/l2"), "granted:app");

    m.set_data("app", &["database=/l3"], true);
    assert_eq!(m.settle(), 0);
    assert_eq!(creds(&m, "app").chroot, "/l3");
    assert_no_access(&c, "/l2");
    assert_tenancy(&m.tree_acls(APP), &[(rel, "/l3")], &[]);

    m.ok(&["remove-relation", "app", "zookeeper"]);
    assert_eq!(m.settle(), 0);
    assert_tenancy(&m.tree_acls(APP), &[], &[rel]);
    for p in ["/l1", "/l2", "/l3"] {
        assert_no_access(&c, p);
        assert_eq!(record_state(&m, p), "kept:app");
    }
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}

#[test]
fn the_repair_sweep_fixes_a_deployment_left_by_the_previous_version() {
    let m = Model::new();
    deploy(&m, &[]);
    for (app, path) in [
        ("app1", "/app1"),
        ("app2", "/app2"),
        ("app3", "/nest"),
        ("app4", "/other"),
    ] {
        m.stub(app, true);
        m.set_data(app, &[&format!("database={path}")], true);
    }
    assert_eq!(m.settle(), 0);
    let (r1, r2, r3, r4) = (
        m.relation_id("app1"),
        m.relation_id("app2"),
        m.relation_id("app3"),
        m.relation_id("app4"),
    );
    let (c1, c2, c4) = (creds(&m, "app1"), creds(&m, "app2"), creds(&m, "app4"));
    write_children(&c2, "/app2");

    // The state the previous version left, set by hand: no record, the root and /zookeeper
    // open, app1's first chroot still granting it, data planted by app2 outside its chroot, a
    // removed client's chroot still granting it, app2's own chroot reduced to super by another
    // client's removal, and app4 asking for a path inside app3's chroot that names it.
    let leader = m.leader(APP);
    let cluster = m.peer_app_data(&leader);
    assert!(cluster["client-znodes"].is_string(), "{cluster}");
    let cluster_id = m.relation_id_on(&leader, "cluster");
    m.ok(&[
        "exec",
        &leader,
        "--",
        "relation-set",
        "--app",
        "-r",
        &format!("cluster:{cluster_id}"),
        "client-znodes=",
    ]);
    let names = |rel: u32, pw: &str| {
        json!([
            ["sasl", format!("relation-{rel}"), "cdrwa"],
            ["digest_pw", format!("relation-{rel}"), pw, "cdrwa"]
        ])
    };
    let r = kazoo(m.super_spec(
        APP,
        json!([
            ["set_acls", "/", [["world", "anyone", "cdrwa"]]],
            ["set_acls", "/zookeeper", [["world", "anyone", "cdrwa"]]],
            ["create_acl", "/first/data", "old", names(r1, &c1.pw)],
            ["set_acls", "/first", names(r1, &c1.pw)],
            [
                "create_acl",
                "/victim-chroot/config",
                "planted",
                names(r2, &c2.pw)
            ],
            ["set_acls", "/victim-chroot", names(r2, &c2.pw)],
            ["create_acl", "/gone-chroot/x/y", "left", names(99, "oldpw")],
            ["set_acls", "/gone-chroot", names(99, "oldpw")],
            ["set_acls", "/gone-chroot/x", names(99, "oldpw")],
            ["set_acls", "/app2", [["sasl", "super", "cdrwa"]]],
            ["create_acl", "/nest/inner", "", names(r4, &c4.pw)]
        ]),
    ));
    for i in 0..11 {
        assert!(ok(&r, i), "set-up op {i}: {r}");
    }
    m.set_data("app4", &["database=/nest/inner"], false);
    let sweeps = || m.logged(&m.leader(APP), "client tenancy repair done").len();
    let before = sweeps();
    // Any hook on the leader repairs it (on a real deployment: upgrade-charm).
    m.ok(&["tick"]);
    m.settle();

    let tree = m.tree_acls(APP);
    for node in [
        "/first",
        "/first/data",
        "/victim-chroot",
        "/victim-chroot/config",
        "/gone-chroot",
        "/gone-chroot/x",
        "/gone-chroot/x/y",
    ] {
        assert_eq!(
            tree[node],
            ["sasl:super:cdrwa".to_string()],
            "{node}: {tree:?}"
        );
    }
    assert_access(&c1, "/app1", "after-sweep");
    assert_access(&c2, "/app2", "after-sweep");
    let r = client(
        &c2.eps,
        None,
        sasl(&c2.user, &c2.pw),
        json!([["get", "/app2/by-sasl/nested"]]),
    );
    assert_eq!(r["results"][0]["ok"], json!("n"), "given back in full: {r}");
    // The conflict is reported and left exactly as it was.
    let (st, msg) = leader_status(&m);
    assert_eq!(st, "blocked", "{msg}");
    assert!(msg.contains("remove all but one"), "{msg}");
    assert!(
        tree["/nest/inner"]
            .iter()
            .any(|a| a.starts_with(&format!("sasl:relation-{r4}:"))),
        "{tree:?}"
    );
    assert!(
        tree["/nest"]
            .iter()
            .any(|a| a.starts_with(&format!("sasl:relation-{r3}:"))),
        "{tree:?}"
    );
    let rec = m.ownership(APP);
    assert_eq!(rec["chroots"]["/app1"]["state"], "granted", "{rec}");
    assert_eq!(rec["chroots"]["/app2"]["state"], "granted", "{rec}");
    assert!(
        rec["conflicts"]["/nest"].is_object() && rec["conflicts"]["/nest/inner"].is_object(),
        "{rec}"
    );
    // It ran once, and no later hook walks the tree again.
    m.ok(&["tick"]);
    m.settle();
    assert_eq!(sweeps(), before + 1);

    // Removing one side of the conflict resolves it: the inner claim lay inside app3's
    // chroot, so app3 is granted the whole tree (app4's entries go), and served.
    m.ok(&["remove-relation", "app4", "zookeeper"]);
    assert_eq!(m.settle(), 0);
    let tree = m.tree_acls(APP);
    assert!(
        tree["/nest/inner"]
            .iter()
            .all(|a| support::named_relation(a) == Some(r3)),
        "{tree:?}"
    );
    assert_tenancy(
        &tree,
        &[(r1, "/app1"), (r2, "/app2"), (r3, "/nest")],
        &[r4, 99],
    );
    let c3 = creds(&m, "app3");
    assert_access(&c3, "/nest", "resolved");
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}
