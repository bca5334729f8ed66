//! Hardening (issue 13): bad inputs across configuration, actions, client relation data and the
//! unit's local files, each tried on a live 3-unit deployment with a client. For every one: a
//! clear message (status or action failure), no hook error, the ensemble still serving, and the
//! client's data intact. Then the input is undone and the deployment is active again.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{client, Model};

const APP: &str = "zookeeper";

enum Input {
    /// `juju config zookeeper k=v...`, refused by the charm (the units go blocked).
    Config(Vec<(&'static str, String)>),
    /// An action on a unit, that must fail with a message.
    Action(&'static str, &'static str, Vec<String>),
    /// The stub client's application bag; the leader refuses it in its status.
    Relation(Vec<String>),
    /// A unit's local file replaced (path relative to its charm directory, content or a
    /// directory); the next hooks cope with it and log it.
    LocalFile(&'static str, Option<&'static str>),
}

struct Case {
    input: Input,
    /// What the message must say (status, action failure or log).
    says: &'static str,
}

fn config(k: &'static str, v: &str, says: &'static str) -> Case {
    configs(&[(k, v)], says)
}

fn configs(kv: &[(&'static str, &str)], says: &'static str) -> Case {
    Case {
        input: Input::Config(kv.iter().map(|(k, v)| (*k, v.to_string())).collect()),
        says,
    }
}

fn action(unit: &'static str, name: &'static str, params: &[&str], says: &'static str) -> Case {
    Case {
        input: Input::Action(unit, name, params.iter().map(|p| p.to_string()).collect()),
        says,
    }
}

fn relation(kv: &[&str], says: &'static str) -> Case {
    Case {
        input: Input::Relation(kv.iter().map(|p| p.to_string()).collect()),
        says,
    }
}

fn local(file: &'static str, content: Option<&'static str>, says: &'static str) -> Case {
    Case {
        input: Input::LocalFile(file, content),
        says,
    }
}

fn cases() -> Vec<Case> {
    let long_db = format!("database=/{}", "x".repeat(10_000));
    let long_pw = format!("password={}", "p".repeat(300));
    let long_db: &'static str = Box::leak(long_db.into_boxed_str());
    let long_pw: &'static str = Box::leak(long_pw.into_boxed_str());
    vec![
        // Configuration.
        config("tick-time", "0", "tick-time"),
        config("tick-time", "1", "tick-time"),
        config("tick-time", "99", "tick-time"),
        configs(
            &[("tick-time", "100"), ("init-limit", "4")],
            "init-limit x tick-time",
        ),
        configs(
            &[("tick-time", "100"), ("sync-limit", "1")],
            "sync-limit x tick-time",
        ),
        config("tick-time", "60001", "tick-time"),
        config("tick-time", "-5", "tick-time"),
        config("init-limit", "0", "init-limit"),
        config("init-limit", "1001", "init-limit"),
        config("sync-limit", "0", "sync-limit"),
        config("sync-limit", "100000", "sync-limit"),
        config("log-level", "VERBOSE", "log-level"),
        config("log-level", "", "log-level"),
        config("client-znode-policy", "destroy", "client-znode-policy"),
        config("client-znode-policy", "KEEP!", "client-znode-policy"),
        config("server-start-timeout", "0", "server-start-timeout"),
        config("server-start-timeout", "100000", "server-start-timeout"),
        // Actions.
        action(
            "zookeeper/leader",
            "set-password",
            &["username=root"],
            "unknown username",
        ),
        action(
            "zookeeper/leader",
            "set-password",
            &["password="],
            "must not be empty",
        ),
        action(
            "zookeeper/leader",
            "set-password",
            &["password=abc"],
            "has 3 characters",
        ),
        action(
            "zookeeper/leader",
            "set-password",
            &["password=pw${user.name}x"],
            "expands",
        ),
        action(
            "zookeeper/leader",
            "set-password",
            &["password=x${nosuchprop}y"],
            "expands",
        ),
        action(
            "zookeeper/leader",
            "set-password",
            &["password=pässwörd1"],
            "U+00E4",
        ),
        action(
            "zookeeper/leader",
            "set-password",
            &[long_pw],
            "300 characters",
        ),
        action(
            "zookeeper/leader",
            "set-password",
            &["password=with\ttab1"],
            "U+0009",
        ),
        action(
            "zookeeper/leader",
            "set-password",
            &["username=sync", "password=shrt"],
            "has 4 characters",
        ),
        action("zookeeper/1", "set-password", &[], "must run on the leader"),
        action("zookeeper/1", "restart", &[], "must run on the leader"),
        action(
            "zookeeper/leader",
            "release-client-znode",
            &["path=/nothing-kept"],
            "not a chroot the charm keeps",
        ),
        action(
            "zookeeper/leader",
            "release-client-znode",
            &["path=/"],
            "root znode",
        ),
        action(
            "zookeeper/leader",
            "release-client-znode",
            &["path=/zookeeper"],
            "reserved",
        ),
        action(
            "zookeeper/leader",
            "release-client-znode",
            &["path=/app"],
            "granted to application app",
        ),
        action(
            "zookeeper/1",
            "release-client-znode",
            &["path=/app"],
            "must run on the leader",
        ),
        action("zookeeper/leader", "create-backup", &[], "not supported"),
        // Client relation data.
        relation(&["database=/"], "root znode"),
        relation(&["database=/zookeeper"], "reserved"),
        relation(&["database=/zookeeper/config"], "reserved"),
        relation(&["database=/zookeeper-charm/journal"], "bookkeeping"),
        relation(&["database=/a//b"], "empty path segment"),
        relation(&["database=/a/../b"], "\".\" or \"..\""),
        relation(&["database=/\u{1F600}emoji"], "U+1F600"),
        relation(&["database=/tab\there"], "U+0009"),
        relation(&[long_db], "longer than 1024 bytes"),
        relation(
            &["database=/ok", "extra-user-roles=rwxz"],
            "unknown letters",
        ),
        relation(
            &["database=/ok", "requested-secrets=notjson"],
            "not a JSON list",
        ),
        relation(&["database=/app"], "granted to application app"),
        relation(&["database=/app/inside"], "granted to application app"),
        relation(&["chroot=/zookeeper/quota"], "reserved"),
        // The unit's local files.
        local(".zookeeper-unit.json", None, "moved it to"),
        local(".zookeeper-unit.json", Some("{not json"), "moved it to"),
        local(".charm-read-cache.json", Some("{not json"), "moved it to"),
        local(".charm-read-cache.json", None, "moved it to"),
        local(".deferred.json", Some("garbage"), "moved it to"),
        local(
            ".deferred.json",
            Some(
                r#"{"version":1,"entries":[{"event":{"kind":"stop"},"first_seen":0,"last_attempt":0,"attempts":1,"reason":"planted"}]}"#,
            ),
            "never replayed",
        ),
    ]
}

fn sasl(user: &str, pw: &str) -> Value {
    json!({"sasl": [user, pw]})
}

fn statuses(m: &Model) -> String {
    format!("{:?}", m.workload(APP))
}

fn describe(input: &Input) -> String {
    match input {
        Input::Config(kvs) => {
            let kv: Vec<String> = kvs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("config {kv:?}")
        }
        Input::Action(unit, name, params) => format!("run {unit} {name} {params:?}"),
        Input::Relation(kv) => format!(
            "client data {}",
            kv.iter()
                .map(|s| zookeeper_charm::clients::request::shown(s))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Input::LocalFile(file, content) => format!("local file {file} replaced by {content:?}"),
    }
}

/// Applies a case and checks what it must show.
fn try_case(m: &Model, case: &Case, label: &str, intact: &dyn Fn(&str)) {
    match &case.input {
        Input::Config(kvs) => {
            let mut args = vec!["config".to_string(), APP.to_string()];
            args.extend(kvs.iter().map(|(k, v)| format!("{k}={v}")));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            m.ok(&a);
            m.settle();
            let st = m.workload(APP);
            assert!(
                st.iter().all(|(_, s, msg)| s == "blocked"
                    && msg.contains(case.says)
                    && msg.contains("invalid config")),
                "{label}: {st:?}"
            );
            let app_msg = m.status()["applications"][APP]["application-status"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            assert!(
                app_msg.contains("invalid config"),
                "{label}: application status {app_msg:?}"
            );
            assert!(m.all_serving(APP), "{label}: {}", statuses(m));
            intact(label);
        }
        Input::Action(unit, name, params) => {
            let p: Vec<&str> = params.iter().map(String::as_str).collect();
            let a = m.action(unit, name, &p);
            assert_eq!(a["status"], "failed", "{label}: {a}");
            let msg = a["message"].as_str().unwrap_or("");
            assert!(msg.contains(case.says), "{label}: {msg}");
            assert!(msg.len() < 600, "{label}: a bounded message: {msg}");
        }
        Input::Relation(kv) => {
            let p: Vec<&str> = kv.iter().map(String::as_str).collect();
            m.set_data("bad", &p, true);
            m.settle();
            let leader = m.leader(APP);
            let (_, s, msg) = m
                .workload(APP)
                .into_iter()
                .find(|(u, _, _)| *u == leader)
                .unwrap_or_default();
            assert_eq!(s, "blocked", "{label}: {msg}");
            assert!(msg.contains(case.says), "{label}: {msg}");
            assert!(
                msg.chars().count() <= 300,
                "{label}: a bounded status: {msg}"
            );
            assert!(m.credentials("bad").is_none(), "{label}: not answered");
        }
        Input::LocalFile(file, content) => {
            let unit = m.units(APP)[1].clone();
            let path = m
                .model_dir()
                .join("units")
                .join(unit.replace('/', "-"))
                .join("charm")
                .join(file);
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_dir_all(&path);
            match content {
                Some(c) => std::fs::write(&path, c).expect("write the local file"),
                None => std::fs::create_dir(&path).expect("a directory in its place"),
            }
            m.ok(&["tick"]);
            m.settle();
            assert!(
                !m.logged(&unit, case.says).is_empty(),
                "{label}: the log says what happened"
            );
            assert_eq!(
                m.unit_field(&unit, "/workload-status/current"),
                json!("active"),
                "{label}: {}",
                statuses(m)
            );
        }
    }
}

/// Takes a case's input back (whatever happened).
fn undo(m: &Model, case: &Case) {
    match &case.input {
        Input::Config(kvs) => {
            let keys: Vec<&str> = kvs.iter().map(|(k, _)| *k).collect();
            let _ = m.output(&["config", APP, "--reset", &keys.join(",")]);
        }
        Input::Relation(kv) => {
            let keys: Vec<String> = kv
                .iter()
                .map(|k| format!("{}=", k.split('=').next().unwrap_or("")))
                .collect();
            let mut args = vec!["set-data", "bad", "zookeeper"];
            args.extend(keys.iter().map(String::as_str));
            let _ = m.output(&args);
        }
        Input::Action(..) | Input::LocalFile(..) => {}
    }
}

#[test]
fn every_bad_input_is_refused_with_a_message_and_nothing_breaks() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    m.stub("app", true);
    m.set_data("app", &["database=/app"], true);
    m.stub("bad", true);
    assert_eq!(m.settle(), 0);
    let (user, pw, eps, _) = m.credentials("app").expect("app answered");
    let r = client(
        &eps,
        None,
        sasl(&user, &pw),
        json!([["create", "/app/data", "precious", "creator"]]),
    );
    assert!(r["results"][0].get("ok").is_some(), "{r}");
    let super_pw = m.super_password();
    let intact = |what: &str| {
        let r = client(&eps, None, sasl(&user, &pw), json!([["get", "/app/data"]]));
        assert_eq!(
            r["results"][0]["ok"],
            json!("precious"),
            "{what}: client data: {r}"
        );
        let r = support::kazoo(
            json!({"hosts": eps, "auth": sasl("super", &super_pw), "ops": [["exists", "/app"]]}),
        );
        assert_eq!(
            r["results"][0]["ok"],
            json!(true),
            "{what}: super still logs in: {r}"
        );
    };
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        let label = describe(&case.input);
        let errors_before = m.hook_errors().len();
        // Every case runs, and is undone, whatever the one before did: a failure is listed.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            try_case(&m, case, &label, &intact);
            m.settle();
            assert!(m.all_serving(APP), "{label}: {}", statuses(&m));
            let errors = m.hook_errors();
            assert_eq!(
                errors.len(),
                errors_before,
                "{label}: hook errors {errors:?}"
            );
            intact(&label);
        }));
        undo(&m, case);
        match outcome {
            Ok(()) => summary.push(label),
            Err(e) => failures.push(
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or(label),
            ),
        }
        if !failures.is_empty() && m.hook_errors().len() > errors_before {
            // Let the next case start from a unit that is not in error.
            let _ = m.output(&["settle", "--timeout", "120"]);
        }
    }
    eprintln!(
        "{} bad inputs refused or handled:\n  {}",
        summary.len(),
        summary.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs mishandled:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
    // Undone, every unit is active again, the quorum whole.
    assert_eq!(m.settle(), 0);
    m.wait_for("every unit active", Duration::from_secs(60), || {
        m.all_active(APP)
    });
    m.assert_quorum(APP);
    eprintln!(
        "{} bad inputs refused or handled:\n  {}",
        summary.len(),
        summary.join("\n  ")
    );
}
