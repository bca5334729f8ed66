//! Hook tools (reference §2, §7.B): exact error strings and exit codes, smart/json/yaml output,
//! `null` outputs, permission rules, relation-hook defaults, the hook environment.

mod common;

use common::*;
use serde_json::{json, Value};

/// (argv, exit code, stdout, stderr); `*` at the end of an expected string means "starts with".
type Case<'a> = (&'a [&'a str], i32, &'a str, &'a str);

fn matches(got: &str, want: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => got == want,
    }
}

/// Runs `cases` on `unit` during update-status and checks every call's outcome.
fn check_cases(sim: &Sim, unit: &str, cases: &[Case]) {
    let mut script = String::from("if [ \"$JUJU_HOOK_NAME\" = update-status ]; then\n");
    for (argv, ..) in cases {
        script.push_str(&call(argv));
    }
    script.push_str("fi\n");
    sim.unit_script(unit, &script);
    sim.ok(&["tick"]);
    let e = sim.last_entry(unit, "update-status");
    let calls = e["tool_calls"].as_array().expect("tool calls");
    for (i, (argv, code, out, err)) in cases.iter().enumerate() {
        let c = &calls[i];
        let got_argv: Vec<&str> = c["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(got_argv, *argv, "call {i}");
        let (gc, go, ge) = (
            c["exit"].as_i64().unwrap() as i32,
            c["stdout"].as_str().unwrap(),
            c["stderr"].as_str().unwrap(),
        );
        assert!(
            gc == *code && matches(go, out) && matches(ge, err),
            "{argv:?}\n  want: {code} {out:?} {err:?}\n  got:  {gc} {go:?} {ge:?}"
        );
    }
    sim.unit_script(unit, "");
}

fn addr(sim: &Sim, unit: &str) -> String {
    sim.unit_status(unit)["public-address"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn errors_exit_codes_and_permissions_for_a_non_leader() {
    let sim = probe_and_client("2");
    let nf = "ERROR secret \"aaaaaaaaaaaaaaaaaaaa\" not found\n";
    let cases: &[Case] = &[
        (&["relation-set", "-r", "1", "--app", "x=1"], 1, "", "ERROR cannot write relation settings\n"),
        (&["status-set", "--application=True", "active", "x"], 1, "", "ERROR this unit is not the leader\n"),
        (&["status-get", "--application=true", "--format=json"], 1, "", "ERROR finding application status: this unit is not the leader\n"),
        (&["leader-set", "a=b"], 1, "", "ERROR cannot write leadership settings: cannot write settings: not the leader\n"),
        (&["action-get"], 1, "", "ERROR not running an action\n"),
        (&["action-set", "a=b"], 1, "", "ERROR not running an action\n"),
        (&["action-fail", "x"], 1, "", "ERROR not running an action\n"),
        (&["action-log", "x"], 1, "", "ERROR not running an action\n"),
        (&["relation-get", "-r", "99", "-", "probe/0"], 2, "", "ERROR invalid value \"99\" for option -r: relation not found\n"),
        (&["relation-get", "--relation=db:99", "-", "probe/0"], 2, "", "ERROR invalid value \"db:99\" for option --relation: relation not found\n"),
        (&["relation-get", "-r", "db:x", "-", "probe/0"], 2, "", "ERROR invalid value \"db:x\" for option -r: invalid relation id\n"),
        (&["relation-list", "--format=json"], 2, "", "ERROR no relation id specified\n"),
        (&["relation-set", "x=1"], 2, "", "ERROR no relation id specified\n"),
        (&["relation-ids"], 2, "", "ERROR no endpoint name specified\n"),
        // Own non-peer app bag: leader only. Peer app bag: readable by all.
        (&["relation-get", "--format=json", "-r", "1", "--app", "-", "probe"], 1, "", "ERROR permission denied\n"),
        (&["relation-get", "--format=json", "-r", "0", "--app", "-", "probe"], 0, "{}\n", ""),
        (&["relation-get", "--format=json", "-r", "1", "-", "nobody/0"], 1, "", "ERROR permission denied\n"),
        (&["status-set", "error", "x"], 2, "", "ERROR invalid status \"error\", expected one of [maintenance blocked waiting active]\n"),
        (&["status-set"], 2, "", "ERROR invalid args, require <status> [message]\n"),
        (&["status-set", "active", "a", "b"], 2, "", "ERROR unrecognized args: [\"b\"]\n"),
        (&["status-set", "--application=maybe", "active"], 2, "", "ERROR invalid value \"maybe\" for option --application: strconv.ParseBool: parsing \"maybe\": invalid syntax\n"),
        (&["relation-get", "--foo"], 2, "", "ERROR option provided but not defined: --foo\n"),
        (&["relation-get", "-z"], 2, "", "ERROR option provided but not defined: -z\n"),
        (&["is-leader", "--format"], 2, "", "ERROR option needs an argument: --format\n"),
        (&["is-leader", "--format=toml"], 2, "", "ERROR invalid value \"toml\" for option --format: unknown format \"toml\"\n"),
        (&["unit-get", "foo"], 2, "", "ERROR unknown setting \"foo\"\n"),
        (&["network-get", "nope", "--format=json"], 1, "", "ERROR no network config found for binding \"nope\"\n"),
        (&["credential-get"], 1, "", "ERROR cannot access cloud credentials: permission denied\n"),
        (&["secret-info-get", "secret:aaaaaaaaaaaaaaaaaaaa"], 1, "", nf),
        (&["secret-get", "secret:aaaaaaaaaaaaaaaaaaaa"], 1, "", nf),
        (&["secret-grant", "-r", "1", "secret:aaaaaaaaaaaaaaaaaaaa"], 1, "", nf),
        (&["secret-add", "password=x"], 1, "", "ERROR this unit is not the leader\n"),
        (&["secret-add"], 2, "", "ERROR missing secret value or filename\n"),
        (&["secret-add", "--owner", "unit", "ab=1"], 2, "", "ERROR key \"ab\" not valid\n"),
        (&["secret-get", "--peek", "--refresh", "secret:aaaaaaaaaaaaaaaaaaaa"], 2, "", "ERROR specify one of --peek or --refresh but not both\n"),
        (&["secret-get", "not-a-uri"], 2, "", "ERROR secret URI \"not-a-uri\" not valid\n"),
        (&["secret-get"], 2, "", "ERROR require either a secret URI or label\n"),
        (&["storage-get"], 2, "", "ERROR no storage instance specified\n"),
        (&["juju-log"], 2, "", "ERROR no message specified\n"),
        (&["application-version-set"], 2, "", "ERROR no version specified\n"),
        (&["open-port", "nonsense"], 2, "", "ERROR invalid port range \"nonsense\"*"),
        (&["open-port"], 2, "", "ERROR no port or range specified\n"),
        (&["relation-set", "-r", "0", "novalue"], 2, "", "ERROR expected \"key=value\", got \"novalue\"\n"),
        (&["config-get", "-a", "greeting"], 2, "", "ERROR cannot use argument --all together with key \"greeting\"\n"),
        (&["state-get", "--strict", "missing"], 1, "", "ERROR \"missing\" not found\n"),
        (&["goal-state", "--format=smart"], 2, "", "ERROR invalid value \"smart\" for option --format: unknown format \"smart\"\n"),
        (&["juju-reboot"], 0, "", ""),
    ];
    check_cases(&sim, "probe/1", cases);
    // None of that changed anything: the non-leader is still fine, no app data was written.
    assert_eq!(
        sim.unit_status("probe/1")["workload-status"]["current"],
        "active"
    );
    let data = sim.json(&["show-data", "client", "db"]);
    assert_eq!(data["probe"]["application-data"], json!({}));
}

#[test]
fn outputs_in_smart_json_and_yaml() {
    let sim = probe_and_client("2");
    let a0 = addr(&sim, "probe/0");
    let a1 = addr(&sim, "probe/1");
    let q0 = format!("\"{a0}\"\n");
    let l1 = format!("{a1}\n");
    let own = format!(
        "{{\"egress-subnets\":\"{a1}/32\",\"ingress-address\":\"{a1}\",\"private-address\":\"{a1}\"}}\n"
    );
    let cases: &[Case] = &[
        (&["secret-ids", "--format=json"], 0, "null\n", ""),
        (&["secret-ids"], 0, "", ""),
        (&["is-leader"], 0, "False\n", ""),
        (&["is-leader", "--format=json"], 0, "false\n", ""),
        (&["is-leader", "--format=yaml"], 0, "false\n", ""),
        (
            &["config-get", "--format=json"],
            0,
            "{\"count\":3,\"flag\":false,\"greeting\":\"hi\"}\n",
            "",
        ),
        (
            &["config-get", "--all", "--format=json"],
            0,
            "{\"count\":3,\"flag\":false,\"greeting\":\"hi\",\"ratio\":null}\n",
            "",
        ),
        (&["config-get", "ratio", "--format=json"], 0, "null\n", ""),
        (&["config-get", "ratio"], 0, "", ""),
        (&["config-get", "greeting"], 0, "hi\n", ""),
        (&["config-get", "count"], 0, "3\n", ""),
        (
            &["config-get"],
            0,
            "count: 3\nflag: false\ngreeting: hi\n",
            "",
        ),
        (&["state-get", "--format=json"], 0, "{}\n", ""),
        (&["state-get", "missing"], 0, "", ""),
        (&["state-get", "missing", "--format=json"], 0, "\"\"\n", ""),
        (
            &["relation-ids", "cluster", "--format=json"],
            0,
            "[\"cluster:0\"]\n",
            "",
        ),
        (
            &["relation-ids", "cluster", "--format=yaml"],
            0,
            "- cluster:0\n",
            "",
        ),
        (&["relation-ids", "cluster"], 0, "cluster:0\n", ""),
        (&["relation-ids", "nope", "--format=json"], 0, "[]\n", ""),
        (
            &["relation-list", "-r", "0", "--format=json"],
            0,
            "[\"probe/0\"]\n",
            "",
        ),
        (
            &["relation-list", "-r", "1", "--app", "--format=json"],
            0,
            "\"client\"\n",
            "",
        ),
        (&["relation-list", "-r", "db:1"], 0, "client/0\n", ""),
        (
            &["relation-list", "-r=anything:1", "--format=json"],
            0,
            "[\"client/0\"]\n",
            "",
        ),
        (
            &[
                "relation-get",
                "-r",
                "0",
                "--format=json",
                "private-address",
                "probe/0",
            ],
            0,
            &q0,
            "",
        ),
        (
            &[
                "relation-get",
                "-r",
                "0",
                "--format=json",
                "missing",
                "probe/0",
            ],
            0,
            "null\n",
            "",
        ),
        (
            &["relation-get", "-r", "0", "missing", "probe/0"],
            0,
            "",
            "",
        ),
        (
            &["relation-get", "-r", "0", "--format=json", "-", "probe/1"],
            0,
            &own,
            "",
        ),
        (
            &["relation-get", "-r", "0", "-", "probe"],
            2,
            "",
            "ERROR expected unit name, got application name \"probe\"\n",
        ),
        (
            &["relation-get", "-r", "0"],
            2,
            "",
            "ERROR no unit or application specified\n",
        ),
        (
            &[
                "relation-get",
                "-r",
                "1",
                "--format=json",
                "--app",
                "-",
                "client",
            ],
            0,
            "{}\n",
            "",
        ),
        (
            &[
                "relation-get",
                "-r",
                "1",
                "--format=json",
                "--app",
                "-",
                "client/0",
            ],
            0,
            "{}\n",
            "",
        ),
        (&["opened-ports", "--format=json"], 0, "[]\n", ""),
        (&["unit-get", "private-address"], 0, &l1, ""),
        (
            &["unit-get", "public-address", "--format=json"],
            0,
            &format!("\"{a1}\"\n"),
            "",
        ),
        (&["status-get", "--format=json"], 0, "\"active\"\n", ""),
        (&["status-get"], 0, "active\n", ""),
        (
            &["status-get", "--include-data", "--format=json"],
            0,
            "{\"message\":\"ready\",\"status\":\"active\",\"status-data\":{}}\n",
            "",
        ),
        (&["juju-log", "--log-level", "INFO", "--", "-x"], 0, "", ""),
        (&["juju-log", "-l", "NOPE", "msg"], 0, "", ""),
        (&["leader-get", "--format=json"], 0, "{}\n", ""),
        (&["leader-get", "--format=json", "k"], 0, "null\n", ""),
        (
            &["relation-model-get", "-r", "1", "--format=json"],
            0,
            "{\"uuid\":*",
            "",
        ),
        (
            &[
                "network-get",
                "cluster",
                "--ingress-address",
                "--format=json",
            ],
            0,
            &format!("\"{a1}\"\n"),
            "",
        ),
        (
            &["network-get", "-r", "1", "db", "--egress-subnets"],
            0,
            &format!("{a1}/32\n"),
            "",
        ),
        (&["storage-list", "--format=json"], 0, "[]\n", ""),
    ];
    check_cases(&sim, "probe/1", cases);

    // network-get, full form.
    sim.unit_script(
        "probe/1",
        &format!(
            "[ \"$JUJU_HOOK_NAME\" = update-status ] && {}",
            call(&["network-get", "db", "--format=json"])
        ),
    );
    sim.ok(&["tick"]);
    let e = sim.last_entry("probe/1", "update-status");
    let ng: Value = serde_json::from_str(e["tool_calls"][0]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(ng["ingress-addresses"], json!([a1]));
    assert_eq!(ng["egress-subnets"], json!([format!("{a1}/32")]));
    assert_eq!(ng["bind-addresses"][0]["addresses"][0]["value"], json!(a1));
    // goal-state parses and lists the peers and the client.
    sim.unit_script(
        "probe/1",
        &format!(
            "[ \"$JUJU_HOOK_NAME\" = update-status ] && {}",
            call(&["goal-state", "--format=json"])
        ),
    );
    sim.ok(&["tick"]);
    let e = sim.last_entry("probe/1", "update-status");
    let gs: Value = serde_json::from_str(e["tool_calls"][0]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(gs["units"]["probe/0"]["status"], "active");
    assert_eq!(gs["relations"]["db"]["client"]["status"], "joined");
    assert_eq!(gs["relations"]["cluster"]["probe/0"]["status"], "active");
}

#[test]
fn the_leader_writes_and_reads_its_pending_writes() {
    let sim = probe_and_client("2");
    let a0 = addr(&sim, "probe/0");
    sim.unit_script(
        "probe/0",
        r#"if [ "$JUJU_HOOK_NAME" = update-status ]; then
echo '{"k": "v", "gone": ""}' | relation-set -r 1 --app --file -
relation-get --format=json -r 1 --app - probe
printf 'a: "1"\nb: two\n' | state-set --file -
state-get a
state-set c=3
state-delete b
state-get --format=json
status-set --application=True active "app ok"
status-get --application=true --include-data --format=json
is-leader
open-port 8080/tcp
open-port 9000-9010/udp --endpoints db
opened-ports --format=json
opened-ports --endpoints --format=json
close-port 8080
opened-ports --format=json
leader-set a=b
leader-get --format=json
application-version-set 1.2.3
relation-set -r 0 --format=json x=1
fi
"#,
    );
    sim.ok(&["tick"]);
    let e = sim.last_entry("probe/0", "update-status");
    let out: Vec<(&str, i64, &str)> = e["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["stdout"].as_str().unwrap(),
                c["exit"].as_i64().unwrap(),
                c["stderr"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        e["tool_calls"][0]["stdin"],
        "{\"k\": \"v\", \"gone\": \"\"}\n"
    );
    assert_eq!(out[1].0, "{\"k\":\"v\"}\n");
    assert_eq!(out[3].0, "1\n");
    assert_eq!(out[6].0, "{\"a\":\"1\",\"c\":\"3\"}\n");
    let app: Value = serde_json::from_str(out[8].0).unwrap();
    assert_eq!(app["application-status"]["message"], "app ok");
    assert_eq!(
        app["application-status"]["units"]["probe/1"]["status"],
        "active"
    );
    assert_eq!(out[9].0, "True\n");
    assert_eq!(out[12].0, "[\"8080/tcp\",\"9000-9010/udp\"]\n");
    assert_eq!(out[13].0, "[\"8080/tcp (*)\",\"9000-9010/udp (db)\"]\n");
    assert_eq!(out[15].0, "[\"9000-9010/udp\"]\n");
    assert_eq!(out[17].0, "{\"a\":\"b\"}\n");
    // relation-set accepts --format and says it is deprecated.
    assert_eq!(out[19].1, 0);
    assert_eq!(
        out[19].2,
        "--format flag deprecated for command \"relation-set\""
    );
    // Committed: the client sees the app data; ports and version show in status.
    let data = sim.json(&["show-data", "client", "db"]);
    assert_eq!(data["probe"]["application-data"], json!({"k": "v"}));
    assert_eq!(
        data["probe"]["units"]["probe/0"]["private-address"],
        json!(a0)
    );
    let st = sim.status();
    assert_eq!(st["applications"]["probe"]["version"], "1.2.3");
    assert_eq!(
        st["applications"]["probe"]["application-status"]["message"],
        "app ok"
    );
    assert_eq!(
        st["applications"]["probe"]["units"]["probe/0"]["open-ports"],
        json!(["9000-9010/udp"])
    );
    // The peer leader-settings write reached the other unit as leader-settings-changed.
    let last = sim.hooks("probe/1");
    assert!(last.contains(&"leader-settings-changed".to_string()));
}

#[test]
fn relation_hook_defaults_and_membership() {
    let sim = Sim::new();
    sim.script(
        r#"case "$JUJU_HOOK_NAME" in cluster-relation-*)
relation-list --format=json >/dev/null 2>&1
relation-get --format=json >/dev/null 2>&1
relation-ids --format=json >/dev/null 2>&1
relation-get --format=json -r "$JUJU_RELATION_ID" - "$JUJU_UNIT_NAME" >/dev/null 2>&1
;; esac
"#,
    );
    sim.ok(&["deploy", &fixture("probe"), "-n", "3"]);
    sim.ok(&["remove-unit", "probe/2"]);
    let log = sim.log();
    let calls = |unit: &str, hook: &str, remote: &str| -> Vec<(String, i64)> {
        let e = log
            .iter()
            .find(|e| {
                e["unit"] == unit && e["hook"] == hook && e["env"]["JUJU_REMOTE_UNIT"] == remote
            })
            .unwrap_or_else(|| panic!("{unit} {hook} {remote}"));
        e["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["stdout"].as_str().unwrap().to_string(),
                    c["exit"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let a0 = addr(&sim, "probe/0");
    // -created: no members yet; relation-get defaults to the remote app's bag (empty remote unit).
    let c = calls("probe/1", "cluster-relation-created", "");
    assert_eq!(c[0].0, "[]\n");
    assert_eq!(c[1], ("{}\n".to_string(), 0));
    assert_eq!(c[2].0, "[\"cluster:0\"]\n");
    // The unit's own bag already has the Juju-written keys.
    assert!(c[3].0.contains("private-address"), "{c:?}");
    // -joined: the joining unit is listed; relation-get defaults to it.
    let c = calls("probe/1", "cluster-relation-joined", "probe/0");
    let listed: Vec<String> = serde_json::from_str(&c[0].0).unwrap();
    assert!(listed.contains(&"probe/0".to_string()), "{listed:?}");
    let bag: Value = serde_json::from_str(&c[1].0).unwrap();
    assert_eq!(bag["private-address"], json!(a0));
    // -departed: the departing unit is already gone from relation-list.
    let c = calls("probe/0", "cluster-relation-departed", "probe/2");
    assert_eq!(c[0].0, "[\"probe/1\"]\n");
    // The departing unit's data stays readable.
    assert!(c[1].0.contains("private-address"), "{c:?}");
    // The leaving unit lists nobody once it departed everyone.
    let c = calls("probe/2", "cluster-relation-departed", "probe/1");
    assert_eq!(c[0].0, "[]\n");
    // Departing unit variable: the remote unit for the others, itself for the leaving unit.
    let dep = |u: &str, r: &str| {
        log.iter()
            .find(|e| {
                e["unit"] == u
                    && e["hook"] == "cluster-relation-departed"
                    && e["env"]["JUJU_REMOTE_UNIT"] == r
            })
            .map(|e| e["env"]["JUJU_DEPARTING_UNIT"].clone())
            .unwrap()
    };
    assert_eq!(dep("probe/0", "probe/2"), "probe/2");
    assert_eq!(dep("probe/2", "probe/0"), "probe/2");
}

#[test]
fn hook_environment_is_exactly_jujus() {
    let sim = Sim::new();
    sim.script(
        r#"if [ "$JUJU_HOOK_NAME" = install ] || [ -n "${JUJU_ACTION_NAME-}" ]; then
env > "$JUJUSIM_WORKLOAD_DIR/env-${JUJU_ACTION_NAME:-$JUJU_HOOK_NAME}"
pwd > "$JUJUSIM_WORKLOAD_DIR/pwd"
fi
"#,
    );
    let out = sim
        .command(&["deploy", &fixture("probe")])
        .env("RUST_LOG", "debug")
        .env("CARGO_TEST_LEAK", "1")
        .env("HOME", "/root")
        .output()
        .unwrap();
    assert!(out.status.success());
    let env = sim.read_workload("probe/0", "env-install");
    let mut keys: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| !matches!(*k, "PWD" | "SHLVL" | "_" | "OLDPWD"))
        .collect();
    keys.sort();
    let mut want = vec![
        "APT_LISTCHANGES_FRONTEND",
        "CHARM_DIR",
        "CLOUD_API_VERSION",
        "DEBIAN_FRONTEND",
        "JUJUSIM_MODEL_DIR",
        "JUJUSIM_WORKLOAD_DIR",
        "JUJU_AGENT_SOCKET_ADDRESS",
        "JUJU_AGENT_SOCKET_NETWORK",
        "JUJU_API_ADDRESSES",
        "JUJU_AVAILABILITY_ZONE",
        "JUJU_CHARM_DIR",
        "JUJU_CHARM_FTP_PROXY",
        "JUJU_CHARM_HTTPS_PROXY",
        "JUJU_CHARM_HTTP_PROXY",
        "JUJU_CHARM_NO_PROXY",
        "JUJU_CONTEXT_ID",
        "JUJU_DISPATCH_PATH",
        "JUJU_HOOK_NAME",
        "JUJU_MACHINE_ID",
        "JUJU_MODEL_NAME",
        "JUJU_MODEL_UUID",
        "JUJU_PRINCIPAL_UNIT",
        "JUJU_UNIT_NAME",
        "JUJU_VERSION",
        "LANG",
        "PATH",
        "TERM",
    ];
    want.sort();
    assert_eq!(keys, want, "{env}");
    let get = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(get("JUJU_DISPATCH_PATH"), "hooks/install");
    assert_eq!(get("JUJU_UNIT_NAME"), "probe/0");
    assert!(get("JUJU_VERSION").starts_with("3.6."));
    assert_eq!(get("LANG"), "C.UTF-8");
    assert_eq!(get("JUJU_AGENT_SOCKET_NETWORK"), "unix");
    let charm_dir = sim.charm_dir("probe/0");
    assert_eq!(get("JUJU_CHARM_DIR"), charm_dir.to_string_lossy());
    assert_eq!(get("CHARM_DIR"), charm_dir.to_string_lossy());
    assert_eq!(
        sim.read_workload("probe/0", "pwd").trim(),
        charm_dir.to_string_lossy()
    );
    assert_eq!(
        get("JUJUSIM_WORKLOAD_DIR"),
        sim.workload_dir("probe/0").to_string_lossy()
    );
    let path = get("PATH");
    assert!(path.starts_with(&sim.model().join("tools").to_string_lossy().into_owned()));
    assert!(path.ends_with(":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));

    // Actions: JUJU_HOOK_NAME set and empty, action variables present.
    sim.ok(&["run", "probe/0", "probe"]);
    let env = sim.read_workload("probe/0", "env-probe");
    assert!(env.lines().any(|l| l == "JUJU_HOOK_NAME="), "{env}");
    assert!(env.lines().any(|l| l == "JUJU_DISPATCH_PATH=actions/probe"));
    assert!(env.lines().any(|l| l == "JUJU_ACTION_NAME=probe"));
    assert!(env.lines().any(|l| l.starts_with("JUJU_ACTION_UUID=")));
    assert!(env
        .lines()
        .any(|l| l.starts_with("JUJU_ACTION_TAG=action-")));

    // Relation hooks: remote unit present but empty in -created.
    let log = sim.log();
    let created = log
        .iter()
        .find(|e| e["hook"] == "cluster-relation-created")
        .unwrap();
    assert_eq!(created["env"]["JUJU_REMOTE_UNIT"], "");
    assert_eq!(created["env"]["JUJU_REMOTE_APP"], "probe");
    assert_eq!(created["env"]["JUJU_RELATION"], "cluster");
    assert_eq!(created["env"]["JUJU_RELATION_ID"], "cluster:0");
    assert!(created["env"].get("JUJU_DEPARTING_UNIT").is_none());
}

#[test]
fn tools_refuse_calls_outside_their_hook() {
    let sim = Sim::new();
    sim.script(
        r#"case "$JUJU_HOOK_NAME" in
install) echo "$JUJU_CONTEXT_ID" > "$JUJUSIM_WORKLOAD_DIR/ctx" ;;
start) JUJU_CONTEXT_ID="$(cat "$JUJUSIM_WORKLOAD_DIR/ctx")" is-leader > "$JUJUSIM_WORKLOAD_DIR/late.out" 2> "$JUJUSIM_WORKLOAD_DIR/late.err"; echo $? > "$JUJUSIM_WORKLOAD_DIR/late.rc" ;;
esac
"#,
    );
    sim.ok(&["deploy", &fixture("probe")]);
    assert_eq!(sim.read_workload("probe/0", "late.rc").trim(), "1");
    assert_eq!(sim.read_workload("probe/0", "late.out"), "");
    assert!(
        sim.read_workload("probe/0", "late.err")
            .starts_with("ERROR bad request"),
        "{}",
        sim.read_workload("probe/0", "late.err")
    );
    // Without JUJU_CONTEXT_ID at all.
    let out = std::process::Command::new(sim.model().join("tools/is-leader"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ERROR JUJU_CONTEXT_ID not set\n"
    );
}

#[test]
fn secrets_owner_consumer_grants_revisions_and_labels() {
    let sim = Sim::new();
    // The probe leader creates a secret when the consumer joins, grants it on that relation
    // only, and publishes the URI in its app bag (for the consumer and for the stub client).
    sim.script(
        r#"if [ "$JUJU_UNIT_NAME" = probe/0 ] && [ "$JUJU_HOOK_NAME" = db-relation-joined ]; then
  uri="$(cat "$JUJUSIM_MODEL_DIR/uri" 2>/dev/null)"
  if [ -z "$uri" ]; then
    printf s3cret > "$JUJUSIM_WORKLOAD_DIR/pw"
    uri="$(secret-add --label creds password#file="$JUJUSIM_WORKLOAD_DIR/pw")"
    echo "$uri" > "$JUJUSIM_MODEL_DIR/uri"
    secret-get "$uri" --format=json > "$JUJUSIM_WORKLOAD_DIR/same-hook"
  fi
  if [ "$JUJU_REMOTE_APP" = consumer ]; then secret-grant --relation "$JUJU_RELATION_ID" "$uri"; fi
  relation-set -r "$JUJU_RELATION_ID" --app secret="$uri"
fi
if [ "$JUJU_UNIT_NAME" = consumer/0 ]; then
  uri="$(cat "$JUJUSIM_MODEL_DIR/uri" 2>/dev/null)"
  case "$JUJU_HOOK_NAME" in
  backend-relation-changed) [ -z "$JUJU_REMOTE_UNIT" ] && secret-get "$uri" --label mine --format=json > "$JUJUSIM_WORKLOAD_DIR/first" ;;
  secret-changed)
    echo "$JUJU_SECRET_ID $JUJU_SECRET_LABEL" > "$JUJUSIM_WORKLOAD_DIR/changed-env"
    secret-get "$uri" --format=json > "$JUJUSIM_WORKLOAD_DIR/tracked"
    secret-get "$uri" --peek --format=json > "$JUJUSIM_WORKLOAD_DIR/peek"
    secret-get --label mine --format=json > "$JUJUSIM_WORKLOAD_DIR/by-label"
    secret-get "$uri" --refresh password > "$JUJUSIM_WORKLOAD_DIR/refreshed"
    secret-get "$uri" --format=json > "$JUJUSIM_WORKLOAD_DIR/after"
    ;;
  update-status) secret-get "$uri" --format=json > "$JUJUSIM_WORKLOAD_DIR/revoked.out" 2> "$JUJUSIM_WORKLOAD_DIR/revoked.err" ;;
  esac
fi
"#,
    );
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    sim.ok(&["deploy", &fixture("probe"), "consumer"]);
    sim.ok(&["deploy-stub", "client", "--requires", "db:probedb"]);
    sim.ok(&["integrate", "probe:db", "consumer:backend"]);
    sim.ok(&["integrate", "probe:db", "client:db"]);
    // Relation ids: 0 and 1 are the peer relations, 2 probe-consumer, 3 probe-client.
    let uri = std::fs::read_to_string(sim.model().join("uri"))
        .unwrap()
        .trim()
        .to_string();
    assert!(uri.starts_with("secret://"), "{uri}");
    let xid = uri.rsplit('/').next().unwrap().to_string();
    assert_eq!(xid.len(), 20);
    assert_eq!(
        sim.read_workload("probe/0", "same-hook"),
        "{\"password\":\"s3cret\"}\n"
    );
    assert_eq!(
        sim.read_workload("consumer/0", "first"),
        "{\"password\":\"s3cret\"}\n"
    );

    // Owner application: every unit reads it; only the leader manages it.
    check_cases(
        &sim,
        "probe/1",
        &[
            (
                &["secret-get", &uri, "--format=json"],
                0,
                "{\"password\":\"s3cret\"}\n",
                "",
            ),
            (
                &["secret-get", "--label", "creds", "--format=json"],
                0,
                "{\"password\":\"s3cret\"}\n",
                "",
            ),
            // As in Juju, the first positional is always the URI.
            (
                &["secret-get", "--label", "creds", "password"],
                2,
                "",
                "ERROR secret URI \"password\" not valid\n",
            ),
            (
                &["secret-set", &uri, "password=x"],
                1,
                "",
                "ERROR this unit is not the leader\n",
            ),
            (
                &["secret-grant", "-r", "2", &uri],
                1,
                "",
                "ERROR this unit is not the leader\n",
            ),
            (
                &["secret-ids", "--format=json"],
                0,
                &format!("[\"{xid}\"]\n"),
                "",
            ),
        ],
    );
    check_cases(
        &sim,
        "probe/0",
        &[
            (
                &["secret-info-get", &uri, "--format=json"],
                0,
                &format!("{{\"{xid}\":{{*"),
                "",
            ),
            (
                &[
                    "secret-grant",
                    "--relation",
                    "3",
                    "--unit",
                    "consumer/0",
                    &uri,
                ],
                1,
                "",
                "ERROR cannot specify unit \"consumer/0\" in relation to application \"client\"\n",
            ),
        ],
    );
    // The stub client was not granted; the consumer was.
    let shown = sim.json(&[
        "show-data",
        "client",
        "db",
        "--reveal-secrets",
        "--format",
        "json",
    ]);
    assert_eq!(shown["probe"]["application-data"]["secret"], json!(uri));
    assert_eq!(
        shown["probe"]["revealed"]["secret"],
        json!({"error": "permission denied"})
    );
    let shown = sim.json(&[
        "show-data",
        "consumer",
        "backend",
        "--reveal-secrets",
        "--format",
        "json",
    ]);
    assert_eq!(
        shown["probe"]["revealed"]["secret"],
        json!({"password": "s3cret"})
    );

    // A new revision (committed) -> secret-changed on the consumer, with its label; it keeps
    // reading the tracked revision until --refresh.
    sim.unit_script(
        "probe/0",
        &format!("[ \"$JUJU_HOOK_NAME\" = update-status ] && secret-set {uri} password=n3w\n"),
    );
    let before = sim.log().len();
    sim.ok(&["tick"]);
    let new = sim.events()[before..].to_vec();
    assert!(
        new.contains(&("consumer/0".to_string(), "secret-changed".to_string())),
        "{new:?}"
    );
    assert!(!new
        .iter()
        .any(|(u, h)| u.starts_with("probe/") && h == "secret-changed"));
    assert_eq!(
        sim.read_workload("consumer/0", "changed-env").trim(),
        format!("{uri} mine")
    );
    assert_eq!(
        sim.read_workload("consumer/0", "tracked"),
        "{\"password\":\"s3cret\"}\n"
    );
    assert_eq!(
        sim.read_workload("consumer/0", "peek"),
        "{\"password\":\"n3w\"}\n"
    );
    assert_eq!(
        sim.read_workload("consumer/0", "by-label"),
        "{\"password\":\"s3cret\"}\n"
    );
    assert_eq!(sim.read_workload("consumer/0", "refreshed"), "n3w\n");
    assert_eq!(
        sim.read_workload("consumer/0", "after"),
        "{\"password\":\"n3w\"}\n"
    );

    // Revoking removes access.
    sim.unit_script(
        "probe/0",
        &format!("[ \"$JUJU_HOOK_NAME\" = update-status ] && secret-revoke --relation 2 {uri}\n"),
    );
    sim.ok(&["tick"]);
    sim.unit_script("probe/0", "");
    sim.ok(&["tick"]);
    assert_eq!(
        sim.read_workload("consumer/0", "revoked.err"),
        "ERROR permission denied\n"
    );
    assert_eq!(sim.read_workload("consumer/0", "revoked.out"), "");
}

#[test]
fn secret_changes_in_a_failed_hook_are_dropped() {
    let sim = Sim::new();
    sim.script(
        r#"if [ "$JUJU_HOOK_NAME" = install ]; then
  secret-add --owner unit --label mine token=abc > "$JUJUSIM_WORKLOAD_DIR/uri"
  exit 1
fi
"#,
    );
    sim.ok(&["deploy", &fixture("probe")]);
    assert!(sim.read_workload("probe/0", "uri").starts_with("secret://"));
    std::fs::write(sim.model().join("probe.sh"), "").unwrap();
    sim.unit_script(
        "probe/0",
        "[ \"$JUJU_HOOK_NAME\" = install ] && secret-ids --format=json > \"$JUJUSIM_WORKLOAD_DIR/ids\"\n",
    );
    sim.ok(&["resolve", "probe/0"]);
    assert_eq!(sim.read_workload("probe/0", "ids"), "null\n");
}
