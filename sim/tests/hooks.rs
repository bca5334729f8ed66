//! Hook execution: transactions (commit on exit 0, drop otherwise), error state and retries
//! (resolve, settle), hook timeouts, actions and their outcomes, charms without dispatch.

mod common;

use common::*;
use serde_json::json;

/// install writes relation data, state and a port, then fails the first time (marker file).
const FAIL_ONCE: &str = r#"if [ "$JUJU_HOOK_NAME" = config-changed ] && [ ! -f "$JUJUSIM_WORKLOAD_DIR/failed" ]; then
  touch "$JUJUSIM_WORKLOAD_DIR/failed"
  state-set lost=1
  relation-set -r 0 lost=1
  open-port 1234
  status-set blocked "set before failing"
  echo "failing on purpose" >&2
  exit 3
fi
if [ "$JUJU_HOOK_NAME" = config-changed ]; then
  state-get --format=json > "$JUJUSIM_WORKLOAD_DIR/state-on-retry"
  relation-get -r 0 --format=json - "$JUJU_UNIT_NAME" > "$JUJUSIM_WORKLOAD_DIR/bag-on-retry"
  opened-ports --format=json > "$JUJUSIM_WORKLOAD_DIR/ports-on-retry"
fi
"#;

#[test]
fn failed_hook_drops_buffered_writes_and_is_retried_on_resolve() {
    let sim = Sim::new();
    sim.script(FAIL_ONCE);
    let o = sim.output(&["deploy", &fixture("probe"), "-n", "2"]);
    assert!(
        o.status.success(),
        "a failing hook does not fail the command"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("probe/0: hook failed: \"config-changed\""),
        "{err}"
    );
    let us = sim.unit_status("probe/0");
    assert_eq!(us["workload-status"]["current"], "error");
    assert_eq!(
        us["workload-status"]["message"],
        "hook failed: \"config-changed\""
    );
    assert_eq!(us["juju-status"]["current"], "idle");
    // No start, no relation hooks while in error.
    let hooks = sim.hooks("probe/0");
    assert_eq!(hooks.last().unwrap(), "config-changed");
    assert!(!hooks.contains(&"start".to_string()));
    // The failed run is in the timeline with its exit code and stderr.
    let e = sim.last_entry("probe/0", "config-changed");
    assert_eq!(e["exit_code"], 3);
    assert_eq!(e["stderr"], "failing on purpose\n");
    // Other units saw nothing of the dropped relation write.
    let data = sim.json(&["show-unit", "probe/1"]);
    let peer = &data["probe/1"]["relation-info"][0];
    assert!(
        peer["related-units"]["probe/0"].is_null()
            || peer["related-units"]["probe/0"]["data"]
                .get("lost")
                .is_none()
    );
    // status-set is immediate: it survived the failure (shown once the error is resolved).
    let n = sim.log().len();
    sim.ok(&["resolve", "probe/0"]);
    let new = sim.events()[n..].to_vec();
    assert_eq!(
        new[0],
        ("probe/0".to_string(), "config-changed".to_string()),
        "{new:?}"
    );
    assert_eq!(
        new[1],
        ("probe/0".to_string(), "start".to_string()),
        "{new:?}"
    );
    assert_eq!(sim.read_workload("probe/0", "state-on-retry"), "{}\n");
    assert!(!sim
        .read_workload("probe/0", "bag-on-retry")
        .contains("lost"));
    assert_eq!(sim.read_workload("probe/0", "ports-on-retry"), "[]\n");
    assert_eq!(
        sim.unit_status("probe/0")["workload-status"]["current"],
        "active"
    );
    check_invariants(&sim.log());
    // resolve on a healthy unit is an error and changes nothing.
    let before = sim.model_json();
    let (code, err) = sim.fails(&["resolve", "probe/0"]);
    assert_eq!(code, 1);
    assert!(err.contains("not in an error state"), "{err}");
    assert_eq!(sim.model_json(), before);
}

#[test]
fn settle_retries_failed_hooks_and_counts_ticks() {
    let sim = Sim::new();
    sim.script(FAIL_ONCE);
    sim.ok(&["--no-wait", "deploy", &fixture("probe"), "-n", "2"]);
    assert!(sim.log().is_empty(), "--no-wait ran hooks");
    let v = sim.json(&["settle"]);
    assert_eq!(v["ticks"], 1, "{v}");
    assert!(v["hooks"].as_u64().unwrap() > 10);
    for u in ["probe/0", "probe/1"] {
        assert_eq!(sim.unit_status(u)["workload-status"]["current"], "active");
    }
    // A healthy model settles with no tick at all.
    let out = sim.ok(&["settle"]);
    assert_eq!(out.trim(), "settled after 0 ticks");
}

#[test]
fn settle_ticks_for_deferred_work_and_waiting_status() {
    let sim = Sim::new();
    // install leaves a deferred entry; update-status clears it. probe/1 also waits until then.
    sim.script(
        r#"case "$JUJU_HOOK_NAME" in
install) echo '{"version":1,"entries":[{"event":"x"}]}' > "$JUJU_CHARM_DIR/.deferred.json" ;;
update-status) echo '{"version":1,"entries":[]}' > "$JUJU_CHARM_DIR/.deferred.json"; touch "$JUJUSIM_WORKLOAD_DIR/ticked" ;;
esac
if [ "$JUJU_UNIT_NAME" = probe/1 ] && [ ! -f "$JUJUSIM_WORKLOAD_DIR/ticked" ]; then
  status-set waiting "not yet"; PROBE_NO_STATUS=1
fi
"#,
    );
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    let v = sim.json(&["settle"]);
    assert_eq!(v["ticks"], 1, "{v}");
    assert_eq!(
        sim.unit_status("probe/1")["workload-status"]["current"],
        "active"
    );
    // Something that never settles: exit 1 after the timeout, saying what is unsettled.
    sim.script("status-set waiting forever; PROBE_NO_STATUS=1\n");
    sim.ok(&["tick"]);
    let (code, err) = sim.fails(&["settle", "--timeout", "0.5"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not settled") && err.contains("probe/0: workload waiting \"forever\""),
        "{err}"
    );
}

#[test]
fn a_hanging_hook_is_killed_and_reported() {
    let sim = Sim::new().with_global(&["--hook-timeout", "1"]);
    sim.script(
        r#"if [ "$JUJU_HOOK_NAME" = start ] && [ ! -f "$JUJUSIM_WORKLOAD_DIR/hung" ]; then
  touch "$JUJUSIM_WORKLOAD_DIR/hung"
  echo $$ > "$JUJUSIM_WORKLOAD_DIR/hook.pid"
  sleep 60 &
  echo $! > "$JUJUSIM_WORKLOAD_DIR/child.pid"
  wait
fi
"#,
    );
    let t0 = std::time::Instant::now();
    let o = sim.output(&["deploy", &fixture("probe")]);
    assert!(o.status.success());
    assert!(t0.elapsed().as_secs() < 20, "the timeout did not fire");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("hook failed: \"start\" (timed out after 1 s)"),
        "{err}"
    );
    let e = sim.last_entry("probe/0", "start");
    assert_eq!(e["timed_out"], true);
    assert!(e["stderr"]
        .as_str()
        .unwrap()
        .contains("timed out after 1 s"));
    assert_eq!(
        sim.unit_status("probe/0")["workload-status"]["current"],
        "error"
    );
    // The whole process group was killed, the child too.
    for f in ["hook.pid", "child.pid"] {
        let pid: i32 = sim.read_workload("probe/0", f).trim().parse().unwrap();
        wait_for(f, std::time::Duration::from_secs(5), || {
            (!alive(pid)).then_some(())
        });
    }
    // The retry (second run does not hang) succeeds.
    sim.ok(&["resolve", "probe/0"]);
    assert_eq!(
        sim.unit_status("probe/0")["workload-status"]["current"],
        "active"
    );
}

#[test]
fn a_daemon_holding_the_hook_pipes_does_not_block_the_simulator() {
    let sim = Sim::new();
    // A careless daemon: it keeps the hook's stdout and stderr open.
    sim.script(
        r#"if [ "$JUJU_HOOK_NAME" = install ]; then
  sleep 30 &
  echo $! > "$JUJUSIM_WORKLOAD_DIR/leaky.pid"
  echo "hello from install"
fi
"#,
    );
    let t0 = std::time::Instant::now();
    sim.ok(&["deploy", &fixture("probe")]);
    assert!(t0.elapsed().as_secs() < 10, "blocked on a leaked pipe");
    let e = sim.last_entry("probe/0", "install");
    assert_eq!(e["stdout"], "hello from install\n");
    // destroy (on drop) stops it through the PID file.
}

#[test]
fn actions_results_failures_and_rollback() {
    let sim = Sim::new();
    sim.script(
        r#"case "${JUJU_ACTION_NAME-}" in
probe)
  action-get --format=json > "$JUJUSIM_WORKLOAD_DIR/params"
  action-set result.nested=1 top=x
  action-set Bad=1 2> "$JUJUSIM_WORKLOAD_DIR/bad-key"
  action-set stdout=x 2> "$JUJUSIM_WORKLOAD_DIR/reserved"
  action-log "working on it"
  state-set kept=1
  if [ -f "$JUJUSIM_WORKLOAD_DIR/crash" ]; then state-set dropped=1; echo boom; exit 4; fi
  action-fail "because I said so"
  ;;
typed) action-get --format=json > "$JUJUSIM_WORKLOAD_DIR/typed" ;;
esac
if [ "$JUJU_HOOK_NAME" = update-status ]; then state-get --format=json > "$JUJUSIM_WORKLOAD_DIR/state"; fi
"#,
    );
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    // exit 0 + action-fail: failed, results and changes kept.
    let o = sim.output(&["run", "probe/leader", "probe", "x=1", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["probe/0"];
    assert_eq!(r["status"], "failed");
    assert_eq!(r["message"], "because I said so");
    assert_eq!(r["unit"], "probe/0");
    assert_eq!(
        r["results"],
        json!({"result": {"nested": "1"}, "top": "x", "return-code": 0})
    );
    assert!(r["id"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(r["log"], json!(["working on it"]));
    assert_eq!(sim.read_workload("probe/0", "params"), "{\"x\":1}\n");
    assert!(sim
        .read_workload("probe/0", "bad-key")
        .starts_with("ERROR key \"Bad\" must start and end with lowercase alphanumeric"));
    assert_eq!(
        sim.read_workload("probe/0", "reserved"),
        "ERROR cannot set reserved action key \"stdout\"\n"
    );
    sim.ok(&["tick"]);
    assert_eq!(sim.read_workload("probe/0", "state"), "{\"kept\":\"1\"}\n");
    // Non-zero exit: failed with "exit status N", changes dropped, unit not in error.
    std::fs::write(sim.workload_dir("probe/1").join("crash"), "").unwrap();
    let o = sim.output(&["run", "probe/1", "probe", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["probe/1"]["status"], "failed");
    assert_eq!(v["probe/1"]["message"], "exit status 4");
    assert_eq!(v["probe/1"]["results"]["return-code"], 4);
    assert_eq!(v["probe/1"]["results"]["stdout"], "boom\n");
    sim.ok(&["tick"]);
    assert_eq!(sim.read_workload("probe/1", "state"), "{}\n");
    assert_eq!(
        sim.unit_status("probe/1")["workload-status"]["current"],
        "active"
    );
    // Params: YAML-typed, defaults filled, completed exit 0; human output is YAML.
    let o = sim.output(&["run", "probe/0", "typed", "n=2", "tags=[a, b]"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let typed: serde_json::Value =
        serde_json::from_str(&sim.read_workload("probe/0", "typed")).unwrap();
    assert_eq!(
        typed,
        json!({"n": 2, "mode": "fast", "flag": true, "tags": ["a", "b"]})
    );
    // The action is in the timeline with its tool calls.
    let e = sim.last_entry("probe/0", "typed");
    assert_eq!(e["env"]["JUJU_ACTION_NAME"], "typed");
    assert_eq!(
        e["tool_calls"][0]["argv"],
        json!(["action-get", "--format=json"])
    );
}

#[test]
fn actions_run_while_the_unit_is_in_hook_error() {
    let sim = Sim::new();
    sim.script("[ \"$JUJU_HOOK_NAME\" = install ] && exit 1\n");
    sim.ok(&["deploy", &fixture("probe")]);
    assert_eq!(
        sim.unit_status("probe/0")["workload-status"]["current"],
        "error"
    );
    let v = sim.json(&["run", "probe/0", "probe"]);
    assert_eq!(v["probe/0"]["status"], "completed");
    // Still in error: the action did not resolve anything.
    assert_eq!(
        sim.unit_status("probe/0")["workload-status"]["current"],
        "error"
    );
    assert_eq!(sim.hooks("probe/0"), ["install", "action probe"]);
}

#[test]
fn a_charm_without_dispatch_uses_hooks_and_skips_missing_ones() {
    let sim = Sim::new();
    sim.ok(&["deploy", &fixture("legacy")]);
    // Storage is attached before install; hooks without a file are skipped silently.
    assert_eq!(
        sim.hooks("legacy/0"),
        ["data-storage-attached", "install", "start"]
    );
    let e = sim.last_entry("legacy/0", "data-storage-attached");
    assert_eq!(e["env"]["JUJU_STORAGE_ID"], "data/0");
    assert_eq!(e["env"]["JUJU_STORAGE_KIND"], "filesystem");
    assert_eq!(
        e["env"]["JUJU_DISPATCH_PATH"],
        "hooks/data-storage-attached"
    );
    let install = sim.last_entry("legacy/0", "install");
    let msg = install["tool_calls"][1]["argv"][3]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("storage at /") && msg.contains("data-0"),
        "{msg}"
    );
    assert_eq!(
        sim.unit_status("legacy/0")["workload-status"]["message"],
        "started"
    );
    let v = sim.json(&["run", "legacy/0", "hello"]);
    assert_eq!(v["legacy/0"]["results"]["greeting"], "hello");
    let o = sim.output(&["run", "legacy/0", "absent", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["legacy/0"]["message"],
        "action not implemented on unit \"legacy/0\""
    );
    // Removal: detaching storage comes first.
    sim.ok(&["remove-unit", "legacy/0"]);
    // Only existing hooks and the implemented action ever ran (stop/remove/... are missing).
    assert_eq!(
        sim.hooks("legacy/0"),
        ["data-storage-attached", "install", "start", "action hello"]
    );
    assert!(sim.status()["applications"]["legacy"]["units"]["legacy/0"].is_null());
}

#[test]
fn step_runs_at_most_n_pending_hooks_and_every_entry_has_its_cost() {
    let sim = Sim::new().with_global(&["--no-wait"]);
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    assert!(sim.log().is_empty(), "--no-wait ran hooks");
    let out = sim.ok(&["step", "-n", "3"]);
    assert!(
        out.contains("ran 3 hook(s)") && !out.contains("idle"),
        "{out}"
    );
    assert_eq!(sim.log().len(), 3);
    let out = sim.ok(&["step", "-n", "1000"]);
    assert!(out.contains("; idle"), "{out}");
    let log = sim.log();
    assert!(log.len() > 3);
    check_invariants(&log);
    for e in &log {
        assert!(e["cpu_ms"].as_f64().is_some_and(|c| c >= 0.0), "{e}");
        assert!(e["max_rss_kib"].as_u64().is_some_and(|r| r > 0), "{e}");
    }
}

#[test]
fn exec_runs_in_a_hook_context_and_its_writes_trigger_hooks() {
    let sim = Sim::new();
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    let rel = sim.ok(&["exec", "probe/0", "--", "relation-ids", "cluster"]);
    let rel = rel.trim().to_string();
    assert_eq!(
        sim.ok(&["exec", "probe/0", "--", "sh", "-c", "echo $JUJU_UNIT_NAME"])
            .trim(),
        "probe/0"
    );
    let n = sim.log().len();
    sim.ok(&[
        "exec",
        "probe/0",
        "--",
        "relation-set",
        "-r",
        &rel,
        "poke=1",
    ]);
    let new = sim.events()[n..].to_vec();
    assert!(
        new.contains(&(
            "probe/1".to_string(),
            "cluster-relation-changed".to_string()
        )),
        "{new:?}"
    );
    assert!(
        !new.contains(&(
            "probe/0".to_string(),
            "cluster-relation-changed".to_string()
        )),
        "the writer got its own change: {new:?}"
    );
    let bag = sim.ok(&[
        "exec",
        "probe/1",
        "--",
        "relation-get",
        "-r",
        &rel,
        "poke",
        "probe/0",
    ]);
    assert_eq!(bag.trim(), "1");
    // A failing command is reported, its writes dropped.
    let (code, _) = sim.fails(&[
        "exec",
        "probe/0",
        "--",
        "sh",
        "-c",
        "relation-set -r 0 lost=1; exit 4",
    ]);
    assert_eq!(code, 4);
    let lost = sim.ok(&[
        "exec",
        "probe/1",
        "--",
        "relation-get",
        "-r",
        &rel,
        "lost",
        "probe/0",
    ]);
    assert_eq!(lost.trim(), "");
}
