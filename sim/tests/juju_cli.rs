//! The `juju` front end (issue 16): models by name, `status --format json` in Juju 3.6's schema
//! (the keys jubilant's `Status` requires), `version`, the model's background agent (commands
//! return once the change is recorded; hooks run behind them; destroy-model stops it), `run` and
//! `exec` in Juju 3's task JSON and exit codes, secrets, and refusals of what it does not
//! support. The whole jubilant suite runs in the top-level `tests/jubilant.rs`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{copy_tree, fixture, BIN};

/// `juju <args>` against the models under `root`, through the binary named `juju`.
fn juju(root: &Path, juju_bin: &Path, args: &[&str]) -> Output {
    Command::new(juju_bin)
        .args(args)
        .env("JUJUSIM_ROOT", root)
        .env_remove("JUJU_DATA")
        .output()
        .expect("juju runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Destroys the model on drop (stops its workloads), also when a test fails.
struct Models<'a> {
    root: &'a Path,
    juju: &'a Path,
    names: Vec<String>,
}

impl Drop for Models<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = juju(self.root, self.juju, &["destroy-model", "--no-prompt", n]);
        }
    }
}

#[test]
fn status_speaks_jujus_schema_for_a_model_made_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    // The multi-call binary, named juju (as jubilant finds it on PATH).
    let juju_bin = tmp.path().join("bin/juju");
    std::fs::create_dir_all(tmp.path().join("bin")).expect("bin");
    std::os::unix::fs::symlink(BIN, &juju_bin).expect("symlink");
    let _models = Models {
        root: &root,
        juju: &juju_bin,
        names: vec!["jubilant-0a1b2c3d".into()],
    };
    let o = juju(
        &root,
        &juju_bin,
        &["add-model", "--no-switch", "jubilant-0a1b2c3d"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let again = juju(&root, &juju_bin, &["add-model", "jubilant-0a1b2c3d"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    // Deploy with jujusim's own command line into the same model (the juju front end's deploy
    // comes next).
    let dir = root.join("models/jubilant-0a1b2c3d");
    let d = Command::new(BIN)
        .args([
            "--model",
            &dir.to_string_lossy(),
            "deploy",
            &fixture("probe"),
            "-n",
            "2",
        ])
        .output()
        .expect("deploy");
    assert!(d.status.success(), "{}", text(&d));
    let s = juju(
        &root,
        &juju_bin,
        &[
            "status",
            "--model",
            "admin/jubilant-0a1b2c3d",
            "--format",
            "json",
        ],
    );
    assert!(s.status.success(), "{}", text(&s));
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).expect("json");
    for k in ["name", "type", "controller", "cloud", "version"] {
        assert!(v["model"][k].is_string(), "model.{k} in {v}");
    }
    assert_eq!(v["model"]["name"], "jubilant-0a1b2c3d");
    assert!(v["machines"].is_object());
    let app = &v["applications"]["probe"];
    for k in ["charm", "charm-origin", "charm-name"] {
        assert!(app[k].is_string(), "{k} in {app}");
    }
    assert!(
        app["charm-rev"].is_u64() && app["exposed"].is_boolean(),
        "{app}"
    );
    assert!(app["application-status"]["current"].is_string(), "{app}");
    let units = app["units"].as_object().expect("units");
    assert_eq!(units.len(), 2);
    let leaders = units.values().filter(|u| u["leader"] == true).count();
    assert_eq!(leaders, 1, "{app}");
    for (name, u) in units {
        assert!(u["workload-status"]["current"].is_string(), "{name}: {u}");
        assert!(u["juju-status"]["current"].is_string(), "{name}: {u}");
        let m = u["machine"].as_str().expect("machine");
        assert!(v["machines"][m].is_object(), "machine {m} of {name} listed");
        assert!(u["public-address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.")));
    }
    // Relations as Juju 3.6 prints them: endpoint -> [{related-application, interface, scope}].
    let peers = &app["relations"]["cluster"][0];
    assert_eq!(peers["related-application"], "probe", "{app}");
    assert!(
        peers["interface"].is_string() && peers["scope"] == "global",
        "{app}"
    );
    let gone = juju(
        &root,
        &juju_bin,
        &[
            "destroy-model",
            "--no-prompt",
            "--destroy-storage",
            "--force",
            "jubilant-0a1b2c3d",
        ],
    );
    assert!(gone.status.success(), "{}", text(&gone));
    assert!(!dir.exists());
}

#[test]
fn version_and_refusals_are_jujus() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = Command::new(BIN)
        .args(["juju", "version", "--format", "json", "--all"])
        .env("JUJUSIM_ROOT", tmp.path())
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        v["version"].as_str().is_some_and(|s| s.starts_with("3.6.")),
        "{v}"
    );
    for (args, says) in [
        (
            vec!["juju", "offer", "x"],
            "does not support \"juju offer\"",
        ),
        (
            vec!["juju", "deploy", "./x", "--model", "none"],
            "model \"admin/none\" not found",
        ),
        (
            vec!["juju", "status", "--frobnicate"],
            "option provided but not defined: --frobnicate",
        ),
        (
            vec!["juju", "status", "--format", "json"],
            "no current model",
        ),
        (vec!["juju", "add-model", "Bad_Name"], "not a valid name"),
        (vec!["juju", "destroy-model", "nope"], "not found"),
    ] {
        let o = Command::new(BIN)
            .args(&args)
            .env("JUJUSIM_ROOT", tmp.path())
            .output()
            .expect("runs");
        assert!(!o.status.success(), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn the_models_agent_runs_hooks_behind_commands_and_tasks_report_as_juju_3() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let juju_bin = tmp.path().join("bin/juju");
    std::fs::create_dir_all(tmp.path().join("bin")).expect("bin");
    std::os::unix::fs::symlink(BIN, &juju_bin).expect("symlink");
    let _models = Models {
        root: &root,
        juju: &juju_bin,
        names: vec!["bg".into()],
    };
    let j = |args: &[&str]| juju(&root, &juju_bin, args);
    let o = j(&["add-model", "bg"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = root.join("models/bg");
    let pid: i32 = std::fs::read_to_string(dir.join("agent.pid"))
        .expect("agent.pid recorded")
        .trim()
        .parse()
        .expect("a pid");
    assert!(alive(pid), "the agent runs");
    // Install hooks wait for a file: deploy must return while they are still running.
    std::fs::write(
        dir.join("probe.sh"),
        "if [ \"$JUJU_HOOK_NAME\" = install ]; then\n  i=0; while [ ! -f \"$JUJUSIM_MODEL_DIR/go\" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\nfi\n",
    )
    .expect("probe.sh");
    let o = j(&["deploy", "--model", "bg", &fixture("probe"), "-n", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let busy = poll("an install hook running", || {
        let v = json_of(&j(&["status", "--format", "json"]));
        let units = v["applications"]["probe"]["units"].as_object()?.clone();
        units
            .values()
            .any(|u| u["juju-status"]["message"] == "running install hook")
            .then_some(units)
    });
    assert!(
        busy.values()
            .all(|u| u["workload-status"]["current"] != "active"),
        "deploy returned before the hooks ran: {busy:?}"
    );
    std::fs::write(dir.join("go"), b"").expect("go");
    poll("both units active and idle", || {
        let v = json_of(&j(&["status", "--format", "json"]));
        let units = v["applications"]["probe"]["units"].as_object()?.clone();
        (units.len() == 2
            && units.values().all(|u| {
                u["workload-status"]["current"] == "active" && u["juju-status"]["current"] == "idle"
            }))
        .then_some(())
    });
    // jujusim's synchronous commands still work next to the agent.
    let settle = Command::new(BIN)
        .args([
            "--model",
            &dir.to_string_lossy(),
            "settle",
            "--timeout",
            "30",
        ])
        .output()
        .expect("settle");
    assert!(settle.status.success(), "{}", text(&settle));

    // juju run: Juju 3's task JSON keyed by the resolved unit.
    let o = j(&["run", "probe/leader", "typed", "n=3", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v = json_of(&o);
    let (unit, task) = v
        .as_object()
        .and_then(|m| m.iter().next())
        .expect("one task");
    assert!(unit.starts_with("probe/"), "{v}");
    assert_eq!(task["status"], "completed", "{v}");
    assert_eq!(task["unit"], unit.as_str(), "{v}");
    assert!(
        task["id"].is_string() && task["results"]["return-code"] == 0,
        "{v}"
    );
    // An action that cannot be scheduled: empty stdout, exit 0, the reason on stderr (Juju 3).
    for bad in [["probe/0", "nope"], ["probe/7", "typed"]] {
        let o = j(&["run", bad[0], bad[1], "n=1", "--format", "json"]);
        assert!(o.status.success() && o.stdout.is_empty(), "{}", text(&o));
        assert!(text(&o).contains("failed to schedule"), "{}", text(&o));
    }
    // --params: a YAML file, as jubilant writes it.
    let params = tmp.path().join("params.yaml");
    std::fs::write(&params, "mode: slow\nn: 4\ntags:\n- a\n").expect("params");
    let o = j(&[
        "run",
        "--format",
        "json",
        "probe/0",
        "typed",
        "--params",
        &params.to_string_lossy(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        json_of(&o)["probe/0"]["status"],
        "completed",
        "{}",
        text(&o)
    );

    // juju exec: output keyed by unit; a failing command exits 1 with "task failed" and the
    // task JSON still on stdout.
    let o = j(&[
        "exec", "--format", "json", "--unit", "probe/1", "--", "echo", "bar baz",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_of(&o)["probe/1"]["results"]["stdout"], "bar baz\n");
    let o = j(&[
        "exec",
        "--unit",
        "probe/0",
        "--format",
        "json",
        "--",
        "is-leader",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(json_of(&o)["probe/0"]["results"]["stdout"]
        .as_str()
        .is_some_and(|s| s == "True\n" || s == "False\n"));
    let o = j(&[
        "exec", "--format", "json", "--unit", "probe/0", "--", "exit 3",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("task failed"), "{}", text(&o));
    assert_eq!(json_of(&o)["probe/0"]["results"]["return-code"], 3);

    // exec on a target that does not exist schedules nothing (empty stdout, exit 0, as Juju
    // 3); app/leader is the leader.
    let o = j(&[
        "exec", "--format", "json", "--unit", "probe/9", "--", "true",
    ]);
    assert!(o.status.success() && o.stdout.is_empty(), "{}", text(&o));
    assert!(text(&o).contains("failed to schedule"), "{}", text(&o));
    let o = j(&[
        "exec",
        "--format",
        "json",
        "--unit",
        "probe/leader",
        "--",
        "is-leader",
    ]);
    let v = json_of(&o);
    let (leader, t) = v
        .as_object()
        .and_then(|m| m.iter().next())
        .expect("one task");
    assert!(
        leader.starts_with("probe/") && t["results"]["stdout"] == "True\n",
        "{v}"
    );
    // Flags Juju reads differently are refused or read as Go does, never ignored.
    let o = j(&["status", "-o", "out.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = j(&[
        "exec", "--unit", "probe/0", "--wait", "0.2s", "--format", "json", "--", "sleep 5",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("timed out"),
        "{}",
        text(&o)
    );

    // User secrets: add (prints the URI), grant, show --reveal (content.Data).
    let o = j(&["add-secret", "creds", "user=alice", "--info", "test"]);
    assert!(o.status.success(), "{}", text(&o));
    let uri = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(uri.starts_with("secret:"), "{uri}");
    let o = j(&["grant-secret", &uri, "probe"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = j(&["show-secret", "creds", "--reveal", "--format", "json"]);
    let v = json_of(&o);
    let s = v
        .as_object()
        .and_then(|m| m.values().next())
        .expect("one secret");
    assert_eq!(s["content"]["Data"]["user"], "alice", "{v}");
    assert_eq!(s["access"][0]["target"], "application-probe", "{v}");
    let o = j(&["show-secret", "creds", "--reveal=false", "--format", "json"]);
    let v = json_of(&o);
    assert!(
        v.as_object()
            .and_then(|m| m.values().next())
            .is_some_and(|s| s.get("content").is_none()),
        "{v}"
    );
    // A granted unit reads it with secret-get.
    let o = j(&[
        "exec",
        "--format",
        "json",
        "--unit",
        "probe/0",
        "--",
        &format!("secret-get {uri} user"),
    ]);
    assert_eq!(
        json_of(&o)["probe/0"]["results"]["stdout"],
        "alice\n",
        "{}",
        text(&o)
    );

    // destroy-model stops the agent and leaves nothing behind.
    let o = j(&["destroy-model", "--no-prompt", "bg"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!dir.exists());
    poll("the agent gone", || (!alive(pid)).then_some(()));
}

/// `juju refresh <app> --path <charm>`: the change is recorded at once, the model's agent runs
/// each unit's upgrade-charm and config-changed, status and show-unit name the new revision;
/// Charmhub refreshes and other names are refused.
#[test]
fn juju_refresh_moves_every_unit_to_the_new_revision() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let juju_bin = tmp.path().join("bin/juju");
    std::fs::create_dir_all(tmp.path().join("bin")).expect("bin");
    std::os::unix::fs::symlink(BIN, &juju_bin).expect("symlink");
    let _models = Models {
        root: &root,
        juju: &juju_bin,
        names: vec!["rf".into()],
    };
    let j = |args: &[&str]| juju(&root, &juju_bin, args);
    // Revision 1: the probe with a config option more.
    let v1 = tmp.path().join("probe-v1");
    copy_tree(Path::new(&fixture("probe")), &v1);
    let cfg = std::fs::read_to_string(v1.join("config.yaml")).expect("config");
    std::fs::write(
        v1.join("config.yaml"),
        format!("{cfg}  fresh:\n    type: string\n    default: v1\n"),
    )
    .expect("config");
    let other = tmp.path().join("other");
    copy_tree(&v1, &other);
    let md = std::fs::read_to_string(other.join("metadata.yaml")).expect("metadata");
    std::fs::write(
        other.join("metadata.yaml"),
        md.replace("name: probe", "name: other"),
    )
    .expect("metadata");

    let o = j(&["add-model", "rf"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = j(&["deploy", &fixture("probe"), "-n", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let settled = |rev: u64| {
        poll(&format!("both units idle on revision {rev}"), || {
            let v = json_of(&j(&["status", "--format", "json"]));
            let app = v["applications"]["probe"].clone();
            let units = app["units"].as_object()?.clone();
            (app["charm-rev"] == rev
                && units.len() == 2
                && units.values().all(|u| {
                    u["workload-status"]["current"] == "active"
                        && u["juju-status"]["current"] == "idle"
                        && u.get("upgrading-from").is_none()
                }))
            .then_some(app)
        })
    };
    settled(0);
    let o = j(&["refresh", "probe", "--path", &v1.to_string_lossy()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("Added local charm \"probe\", revision 1, to the model"),
        "{}",
        text(&o)
    );
    let app = settled(1);
    assert_eq!(app["charm"], "local:probe-1", "{app}");
    let o = j(&["show-unit", "probe/1", "--format", "json"]);
    assert_eq!(
        json_of(&o)["probe/1"]["charm"],
        "local:probe-1",
        "{}",
        text(&o)
    );
    let o = j(&["config", "probe", "--format", "json"]);
    assert_eq!(
        json_of(&o)["settings"]["fresh"]["value"],
        "v1",
        "{}",
        text(&o)
    );
    // Each unit ran upgrade-charm then config-changed (the agent's timeline).
    let log = Command::new(BIN)
        .args([
            "--model",
            &root.join("models/rf").to_string_lossy(),
            "log",
            "--format",
            "json",
        ])
        .output()
        .expect("log");
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&log.stdout).expect("log json");
    for u in ["probe/0", "probe/1"] {
        let hooks: Vec<&str> = entries
            .iter()
            .filter(|e| e["unit"] == u)
            .filter_map(|e| e["hook"].as_str())
            .collect();
        let at = hooks.iter().position(|h| *h == "upgrade-charm");
        assert!(
            at.is_some_and(|i| hooks.get(i + 1) == Some(&"config-changed")),
            "{u}: {hooks:?}"
        );
    }
    // Refused: no --path (Charmhub), store flags, another charm's name.
    for (args, code, says) in [
        (vec!["refresh", "probe"], 2, "local charms only"),
        (
            vec!["refresh", "probe", "--channel", "edge"],
            2,
            "does not support --channel",
        ),
        (
            vec!["refresh", "probe", "--revision", "3", "--path", "/x"],
            2,
            "does not support --revision",
        ),
        (
            vec!["refresh", "probe", "--path", &other.to_string_lossy()],
            1,
            "cannot refresh \"probe\" to \"other\"",
        ),
    ] {
        let o = j(&args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    assert_eq!(
        json_of(&j(&["status", "--format", "json"]))["applications"]["probe"]["charm-rev"],
        1
    );
}
