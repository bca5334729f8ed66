//! The model as a whole: bad input changes nothing, parallel models, workload processes and
//! destroy, crash safety, locking, stub applications, packed charms, human output.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;
use serde_json::json;

#[test]
fn bad_cli_input_is_refused_and_changes_nothing() {
    let sim = Sim::new();
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    sim.ok(&["deploy-stub", "client", "--requires", "db:probedb"]);
    let probe = fixture("probe");
    let cases: &[(&[&str], i32, &str)] = &[
        (&["deploy", "/nonexistent/charm"], 1, "not found"),
        (
            &["deploy", &probe],
            1,
            "application \"probe\" already exists",
        ),
        (
            &["deploy", &probe, "Bad_Name"],
            2,
            "not a valid application name",
        ),
        (
            &["deploy", &probe, "p2", "--config", "count=abc"],
            1,
            "option \"count\" expects an int, got \"abc\"",
        ),
        (
            &["deploy", &probe, "p2", "--config", "nope=1"],
            1,
            "unknown option \"nope\"",
        ),
        (
            &["deploy", &probe, "p2", "--config", "novalue"],
            2,
            "expected key=value",
        ),
        (
            &["deploy", &probe, "p2", "-n", "0"],
            2,
            "-n must be a positive integer",
        ),
        (
            &["deploy-stub", "kafka", "--requires", "nointerface"],
            2,
            "expected <endpoint>:<interface>",
        ),
        (
            &["deploy-stub", "client", "--requires", "db:probedb"],
            1,
            "already exists",
        ),
        (&["add-unit", "nope"], 1, "application \"nope\" not found"),
        (&["add-unit", "client"], 1, "stub"),
        (&["remove-unit", "probe/9"], 1, "unit \"probe/9\" not found"),
        (&["remove-unit", "probe"], 2, "is not a unit name"),
        (&["remove-application", "nope"], 1, "not found"),
        (
            &["integrate", "probe", "nope"],
            1,
            "application \"nope\" not found",
        ),
        (
            &["integrate", "probe:nope", "client"],
            1,
            "has no endpoint \"nope\"",
        ),
        (&["integrate", "probe", "probe"], 1, "to itself"),
        (
            &["remove-relation", "probe", "client"],
            1,
            "no relation between",
        ),
        (&["set-data", "probe", "db", "a=b"], 1, "runs a charm"),
        (
            &["set-data", "client", "db", "a=b"],
            1,
            "integrate it first",
        ),
        (
            &["set-data", "client", "db", "novalue"],
            2,
            "expected key=value",
        ),
        (&["config", "probe", "count=abc"], 1, "expects an int"),
        (&["config", "probe", "flag=maybe"], 1, "expects a boolean"),
        (&["config", "probe", "nope=1"], 1, "unknown option \"nope\""),
        (&["config", "nope"], 1, "not found"),
        (
            &["run", "probe/0", "nope"],
            1,
            "action \"nope\" not defined on unit \"probe/0\"",
        ),
        (
            &["run", "probe/7", "probe"],
            1,
            "unit \"probe/7\" not found",
        ),
        (
            &["run", "probe/0", "typed"],
            1,
            "required parameter \"n\" is missing",
        ),
        (
            &["run", "probe/0", "typed", "n=abc"],
            1,
            "parameter \"n\" must be of type integer",
        ),
        (
            &["run", "probe/0", "typed", "n=1", "mode=medium"],
            1,
            "must be one of",
        ),
        (
            &["run", "probe/0", "typed", "n=1", "zz=1"],
            1,
            "unknown parameter \"zz\"",
        ),
        (&["run", "probe/0", "typed", "n"], 2, "expected key=value"),
        (&["resolve", "probe/0"], 1, "not in an error state"),
        (&["kill-workload", "nope/0"], 1, "not found"),
        (&["show-unit", "nope/0"], 1, "not found"),
        (&["status", "--format", "xml"], 2, "unknown format"),
        (&["frobnicate"], 2, "unknown command"),
        (&["tick", "-n", "x"], 2, "-n must be a positive integer"),
        (
            &["--hook-timeout", "-1", "tick"],
            2,
            "--hook-timeout must be a positive number",
        ),
        (&["deploy", &probe, "p2", "--bogus"], 2, "unknown option"),
    ];
    let before = sim.model_json();
    let log_before = sim.log().len();
    for (args, code, msg) in cases {
        let (c, err) = sim.fails(args);
        assert_eq!(c, *code, "{args:?}: {err}");
        assert!(
            err.starts_with("ERROR ") && err.contains(msg),
            "{args:?}: {err}"
        );
        assert_eq!(sim.model_json(), before, "{args:?} changed the model");
    }
    assert_eq!(sim.log().len(), log_before);
    // A command on a directory without a model says how to start one.
    let empty = Sim::new();
    let (c, err) = empty.fails(&["status"]);
    assert_eq!(c, 1);
    assert!(
        err.contains("no model at") && err.contains("jujusim deploy"),
        "{err}"
    );
}

#[test]
fn parallel_models_get_their_own_address_ranges() {
    let handles: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                let sim = Sim::new();
                sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
                let st = sim.status();
                let range = st["model"]["addresses"].as_str().unwrap().to_string();
                let addrs: Vec<String> = ["probe/0", "probe/1"]
                    .iter()
                    .map(|u| {
                        st["applications"]["probe"]["units"][u]["public-address"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    })
                    .collect();
                (range, addrs, sim)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ranges: Vec<&String> = results.iter().map(|r| &r.0).collect();
    ranges.sort();
    ranges.dedup();
    assert_eq!(ranges.len(), 3, "ranges collide: {ranges:?}");
    for (range, addrs, _) in &results {
        let prefix = range.trim_end_matches("0/24");
        assert!(
            addrs
                .iter()
                .all(|a| a.starts_with(prefix) && a.starts_with("127.")),
            "{range} {addrs:?}"
        );
    }
}

fn pid_of(sim: &Sim, unit: &str) -> i32 {
    sim.read_workload(unit, "daemon.pid")
        .trim()
        .parse()
        .expect("pid file")
}

#[test]
fn workload_processes_are_stopped_by_remove_kill_and_destroy() {
    let sim = Sim::new();
    sim.script(
        r#"if [ "$JUJU_HOOK_NAME" = start ] || [ "$JUJU_HOOK_NAME" = update-status ]; then
  # Running = /proc/<pid> exists and is not a zombie (PID 1 may not reap in containers).
  pid="$(cat "$JUJUSIM_WORKLOAD_DIR/daemon.pid" 2>/dev/null)"
  if [ -z "$pid" ] || [ ! -r "/proc/$pid/stat" ] || grep -q ') Z' "/proc/$pid/stat"; then
    sleep 1000 </dev/null >/dev/null 2>&1 &
    echo $! > "$JUJUSIM_WORKLOAD_DIR/daemon.pid"
  fi
fi
"#,
    );
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    let (p0, p1) = (pid_of(&sim, "probe/0"), pid_of(&sim, "probe/1"));
    let guard = Pids(vec![p0, p1]);
    assert!(alive(p0) && alive(p1));
    // remove-unit stops the unit's processes after its remove hook.
    sim.ok(&["remove-unit", "probe/1"]);
    assert!(!alive(p1), "remove-unit left the workload running");
    assert!(alive(p0));
    // kill-workload: SIGKILL, reported.
    let out = sim.ok(&["kill-workload", "probe/0"]);
    assert!(out.contains(&format!("process {p0} (daemon.pid)")), "{out}");
    wait_for("the killed process", Duration::from_secs(5), || {
        (!alive(p0)).then_some(())
    });
    let out = sim.ok(&["kill-workload", "probe/0"]);
    assert!(out.contains("no live workload process"), "{out}");
    // The charm restarts it on the next update-status; destroy stops it and removes the model.
    sim.ok(&["tick"]);
    let p2 = pid_of(&sim, "probe/0");
    let _guard2 = Pids(vec![p2]);
    assert!(alive(p2) && p2 != p0);
    let st = sim.status();
    let range = st["model"]["addresses"]
        .as_str()
        .unwrap()
        .trim_end_matches(".0/24")
        .to_string();
    let out = sim.ok(&["destroy"]);
    assert!(out.contains("stopped 1 workload process"), "{out}");
    assert!(!alive(p2), "destroy left a process behind");
    assert!(!sim.model().exists());
    let claims =
        std::env::var("ZK_LOOPBACK_CLAIMS").unwrap_or_else(|_| "/tmp/zk-charm-loopback".into());
    assert!(
        !std::path::Path::new(&claims).join(&range).exists(),
        "range {range} not released"
    );
    drop(guard);
}

/// Kills leftover PIDs when a test fails half-way.
struct Pids(Vec<i32>);
impl Drop for Pids {
    fn drop(&mut self) {
        for p in &self.0 {
            kill(*p);
        }
    }
}

#[test]
fn a_crash_mid_hook_leaves_a_model_the_next_command_can_use() {
    let sim = Sim::new();
    sim.script(
        r#"if [ "$JUJU_UNIT_NAME" = probe/0 ] && [ "$JUJU_HOOK_NAME" = install ] && [ ! -f "$JUJUSIM_WORKLOAD_DIR/once" ]; then
  touch "$JUJUSIM_WORKLOAD_DIR/once"
  sleep 30 </dev/null >/dev/null 2>&1 &
  echo $! > "$JUJUSIM_WORKLOAD_DIR/sleep.pid"
  echo $$ > "$JUJUSIM_WORKLOAD_DIR/hook.pid"
  wait
fi
"#,
    );
    let mut child = sim
        .command(&["deploy", &fixture("probe"), "-n", "2"])
        .spawn()
        .unwrap();
    let hook_pid: i32 = wait_for("the hook to start", Duration::from_secs(20), || {
        sim.read_workload("probe/0", "hook.pid").trim().parse().ok()
    });
    let sleep_pid: i32 = wait_for("the sleep", Duration::from_secs(5), || {
        sim.read_workload("probe/0", "sleep.pid")
            .trim()
            .parse()
            .ok()
    });
    let _guard = Pids(vec![hook_pid, sleep_pid]);
    // SIGKILL the simulator in the middle of the hook.
    child.kill().unwrap();
    child.wait().unwrap();
    kill(sleep_pid);
    kill(hook_pid);
    // A torn temporary file and a torn log line, as a crash during a write would leave them.
    std::fs::write(sim.model().join(".tmp-crash"), "{\"format\": 1, \"na").unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(sim.model().join("log.jsonl"))
        .unwrap_or_else(|_| std::fs::File::create(sim.model().join("log.jsonl")).unwrap());
    f.write_all(b"{\"seq\": 99, \"uni").unwrap();
    drop(f);
    // The model still reads, and the next command carries on (the interrupted install reruns).
    let st = sim.status();
    assert!(st["applications"]["probe"]["units"]["probe/0"].is_object());
    sim.ok(&["settle"]);
    for u in ["probe/0", "probe/1"] {
        assert_eq!(sim.unit_status(u)["workload-status"]["current"], "active");
    }
    check_invariants(&sim.log());
    assert_eq!(
        sim.hooks("probe/0")
            .iter()
            .filter(|h| *h == "install")
            .count(),
        1
    );
}

#[test]
fn a_second_command_waits_for_the_model_lock() {
    let sim = Sim::new();
    sim.script(
        r#"if [ "$JUJU_HOOK_NAME" = install ]; then
  touch "$JUJUSIM_WORKLOAD_DIR/started"
  while [ ! -f "$JUJUSIM_MODEL_DIR/go" ]; do sleep 0.05; done
fi
"#,
    );
    let mut first = sim
        .command(&["deploy", &fixture("probe")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("install to start", Duration::from_secs(20), || {
        sim.workload_dir("probe/0")
            .join("started")
            .exists()
            .then_some(())
    });
    let second = sim
        .command(&["tick"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read-only commands do not wait.
    assert!(sim.status()["applications"]["probe"].is_object());
    std::fs::write(sim.model().join("go"), "").unwrap();
    assert!(first.wait().unwrap().success());
    let out = second.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another command is running"), "{err}");
    assert_eq!(sim.hooks("probe/0").last().unwrap(), "update-status");
}

#[test]
fn stub_applications_play_a_client() {
    let sim = Sim::new();
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    sim.ok(&["deploy-stub", "client", "--requires", "db:probedb"]);
    sim.ok(&["deploy-stub", "odd", "--requires", "x:nothing"]);
    let (_, err) = sim.fails(&["integrate", "odd", "probe"]);
    assert!(err.contains("no relations found"), "{err}");
    // Endpoint resolution by interface.
    let out = sim.ok(&["integrate", "client", "probe"]);
    assert!(out.contains("probe:db client:db"), "{out}");
    let (_, err) = sim.fails(&["integrate", "client", "probe"]);
    assert!(err.contains("already exists"), "{err}");
    let st = sim.status();
    assert_eq!(
        st["applications"]["client"]["units"]["client/0"]["leader"],
        true
    );
    assert_eq!(st["applications"]["client"]["stub"], true);
    // The probe leader answers through its app bag when the client asks.
    sim.script(
        r#"if [ "$JUJU_HOOK_NAME" = db-relation-changed ] && [ -z "$JUJU_REMOTE_UNIT" ]; then
  is-leader --format=json | grep -q true && relation-set -r "$JUJU_RELATION_ID" --app endpoints="$(relation-get --app database client)-ok"
fi
"#,
    );
    sim.ok(&[
        "set-data",
        "client",
        "db",
        "database=/app1",
        "extra-user-roles=cdrwa",
    ]);
    let v = sim.json(&["show-data", "client", "db"]);
    assert_eq!(v["probe"]["relation-id"], 1);
    assert_eq!(
        v["probe"]["application-data"],
        json!({"endpoints": "/app1-ok"})
    );
    assert_eq!(v["probe"]["units"].as_object().unwrap().len(), 2);
    // The same from the charm's side: its view of the stub.
    let v = sim.json(&["show-data", "probe", "db"]);
    assert_eq!(
        v["client"]["application-data"],
        json!({"database": "/app1", "extra-user-roles": "cdrwa"})
    );
    // Human format is YAML.
    let y = sim.ok(&["show-data", "client", "db"]);
    assert!(
        y.contains("application-data:") && y.contains("endpoints: /app1-ok"),
        "{y}"
    );
    // An empty value deletes the key (and notifies).
    let n = sim.log().len();
    sim.ok(&["set-data", "client", "db", "extra-user-roles="]);
    assert_eq!(sim.log().len(), n + 2);
    let v = sim.json(&["show-data", "probe", "db"]);
    assert_eq!(
        v["client"]["application-data"],
        json!({"database": "/app1"})
    );
    // Removing the stub: the charm units depart and break the relation.
    let n = sim.log().len();
    sim.ok(&["remove-application", "client"]);
    let new = sim.events()[n..].to_vec();
    for u in ["probe/0", "probe/1"] {
        let mine: Vec<&str> = new
            .iter()
            .filter(|(x, _)| x == u)
            .map(|(_, h)| h.as_str())
            .collect();
        assert_eq!(mine, ["db-relation-departed", "db-relation-broken"], "{u}");
    }
    assert!(sim.status()["applications"]["client"].is_null());
}

#[test]
fn remove_application_tears_a_charm_down() {
    let sim = probe_and_client("2");
    sim.ok(&["remove-application", "probe"]);
    check_invariants(&sim.log());
    for u in ["probe/0", "probe/1"] {
        let h = sim.hooks(u);
        assert_eq!(h[h.len() - 2..], ["stop", "remove"], "{u}: {h:?}");
        assert!(h.contains(&"db-relation-broken".to_string()));
    }
    let st = sim.status();
    assert!(st["applications"]["probe"].is_null());
    assert_eq!(st["relations"], json!([]));
    // The name can be used again.
    sim.ok(&["deploy", &fixture("probe")]);
}

#[test]
fn a_packed_charm_zip_deploys_with_its_modes() {
    let sim = Sim::new();
    let zip_path = sim.model().parent().unwrap().join("probe.charm");
    let file = std::fs::File::create(&zip_path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let dir = std::path::PathBuf::from(fixture("probe"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode();
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        zip.start_file(entry.file_name().to_string_lossy(), opts)
            .unwrap();
        zip.write_all(&std::fs::read(entry.path()).unwrap())
            .unwrap();
    }
    zip.finish().unwrap();
    sim.ok(&["deploy", zip_path.to_str().unwrap(), "zipped", "-n", "2"]);
    assert_eq!(
        sim.unit_status("zipped/1")["workload-status"]["message"],
        "ready"
    );
    let mode = std::fs::metadata(sim.charm_dir("zipped/0").join("dispatch"))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o100 != 0, "dispatch lost its exec bit: {mode:o}");
}

#[test]
fn human_status_and_log() {
    let sim = Sim::new();
    sim.script("[ \"$JUJU_UNIT_NAME\" = probe/1 ] && [ \"$JUJU_HOOK_NAME\" = start ] && exit 1\n");
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    let out = sim.ok(&["status"]);
    for s in [
        "App",
        "Unit",
        "Workload",
        "Agent",
        "Address",
        "Message",
        "probe/0*",
        "hook failed: \"start\"",
        "Integration provider",
    ] {
        assert!(out.contains(s), "{s:?} missing in:\n{out}");
    }
    let log = sim.ok(&["log", "--unit", "probe/1"]);
    assert!(
        log.lines()
            .any(|l| l.contains("start") && l.contains("FAILED")),
        "{log}"
    );
    assert!(!log.contains("probe/0"), "{log}");
    let unit = sim.json(&["show-unit", "probe/1"]);
    assert_eq!(unit["probe/1"]["agent-state"]["error"], "start");
    assert_eq!(unit["probe/1"]["relation-info"][0]["endpoint"], "cluster");
}
