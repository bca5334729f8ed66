//! Juju 3.6's concurrency (`juju-concurrency.md` §1): hooks of different units overlap, one unit
//! runs one operation at a time, units on one machine share its lock, a hook's writes are seen
//! by nobody until it commits (and never if it fails), an application-bag write needs the lease
//! at call time and at commit, the initial leader is whoever claims first (the seed chooses),
//! and the agent is `executing` while a hook runs. The breakpoint (`--pause`) makes the
//! interleavings exact.

mod common;

use common::*;
use serde_json::Value;

/// Every hook but update-status takes a while, so that units overlap when they can.
const SLOW: &str = r#"if [ "$JUJU_HOOK_NAME" != update-status ]; then sleep 0.2; fi
"#;

fn span(e: &Value) -> (u64, u64) {
    (
        e["start_ms"].as_u64().unwrap_or(0),
        e["end_ms"].as_u64().unwrap_or(0),
    )
}

fn overlap(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Entries of `x` and `y` that ran at the same time.
fn overlapping(log: &[Value], x: &str, y: &str) -> usize {
    let xs: Vec<_> = log.iter().filter(|e| e["unit"] == x).map(span).collect();
    let ys: Vec<_> = log.iter().filter(|e| e["unit"] == y).map(span).collect();
    xs.iter()
        .map(|a| ys.iter().filter(|b| overlap(*a, **b)).count())
        .sum()
}

#[test]
fn hooks_of_different_units_overlap_and_one_unit_runs_one_at_a_time() {
    let sim = Sim::new();
    sim.script(SLOW);
    sim.ok(&["deploy", &fixture("probe"), "-n", "3"]);
    let log = sim.log();
    assert!(log.iter().all(|e| span(e).1 >= span(e).0 && span(e).0 > 0));
    for u in ["probe/0", "probe/1", "probe/2"] {
        let mine: Vec<_> = log.iter().filter(|e| e["unit"] == u).map(span).collect();
        for (i, a) in mine.iter().enumerate() {
            for b in &mine[i + 1..] {
                assert!(!overlap(*a, *b), "{u} ran two hooks at once: {a:?} {b:?}");
            }
        }
    }
    let across = overlapping(&log, "probe/0", "probe/1") + overlapping(&log, "probe/1", "probe/2");
    if serial_mode() {
        assert_eq!(across, 0, "--serial runs one hook at a time");
        assert!(log.iter().all(|e| e.get("overlaps").is_none()));
    } else {
        assert!(across > 0, "units ran one after another");
        // `log` marks the overlaps it found.
        assert!(log
            .iter()
            .any(|e| e["overlaps"].as_array().is_some_and(|o| !o.is_empty())));
    }
    // The commit order is the timeline order.
    let seqs: Vec<u64> = log.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    check_invariants(&log);
}

#[test]
fn units_on_one_machine_never_overlap() {
    let sim = Sim::new();
    sim.script(SLOW);
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    let machine = sim.status()["applications"]["probe"]["units"]["probe/0"]["machine"].clone();
    let m = machine.as_str().unwrap_or_default().to_string();
    assert!(!m.is_empty(), "status shows machines: {machine}");
    // Another unit of the application, and a unit of another application, on probe/0's machine.
    sim.ok(&["add-unit", "probe", "--to", &m]);
    sim.ok(&["deploy", &fixture("probe"), "other", "--to", &m]);
    let st = sim.status();
    assert_eq!(
        st["applications"]["probe"]["units"]["probe/2"]["machine"],
        machine
    );
    assert_eq!(
        st["applications"]["other"]["units"]["other/0"]["machine"],
        machine
    );
    // Same machine, same address.
    assert_eq!(
        st["applications"]["other"]["units"]["other/0"]["public-address"],
        st["applications"]["probe"]["units"]["probe/0"]["public-address"]
    );
    sim.ok(&["config", "probe", "greeting=again"]);
    let log = sim.log();
    for (x, y) in [
        ("probe/0", "probe/2"),
        ("probe/0", "other/0"),
        ("probe/2", "other/0"),
    ] {
        assert_eq!(overlapping(&log, x, y), 0, "{x} and {y} share a machine");
    }
    if !serial_mode() {
        assert!(
            overlapping(&log, "probe/1", "probe/0")
                + overlapping(&log, "probe/1", "probe/2")
                + overlapping(&log, "probe/1", "other/0")
                > 0,
            "a unit on its own machine runs beside the others"
        );
    }
}

/// probe/0's config-changed writes its bag, then (held at the breakpoint while every other
/// unit runs to idle) fails: nobody ever reads what it wrote.
#[test]
fn a_failed_hooks_writes_are_never_seen() {
    let sim = Sim::new();
    sim.script(
        r#"if [ "$JUJU_UNIT_NAME" = probe/0 ] && [ "$JUJU_HOOK_NAME" = config-changed ] && [ ! -f "$JUJUSIM_WORKLOAD_DIR/failed" ]; then
  touch "$JUJUSIM_WORKLOAD_DIR/failed"
  relation-set -r 0 uncommitted=yes
  state-set uncommitted=yes
  juju-log "written; failing"
  exit 1
fi
if [ "$JUJU_UNIT_NAME" != probe/0 ]; then
  relation-get -r 0 uncommitted probe/0 >> "$JUJUSIM_WORKLOAD_DIR/seen" 2>/dev/null
fi
"#,
    );
    sim.ok(&[
        "--pause",
        "probe/0:juju-log:1",
        "deploy",
        &fixture("probe"),
        "-n",
        "3",
    ]);
    let log = sim.log();
    let failed = log
        .iter()
        .find(|e| e["unit"] == "probe/0" && e["hook"] == "config-changed")
        .unwrap();
    assert_eq!(failed["exit_code"], 1);
    for u in ["probe/1", "probe/2"] {
        let seen = sim.read_workload(u, "seen");
        assert!(
            !seen.contains("yes"),
            "{u} read an uncommitted write: {seen:?}"
        );
        // Other units did run hooks (reading the bag) while probe/0's hook was held.
        let reads = log
            .iter()
            .filter(|e| e["unit"] == u && overlap(span(e), span(failed)))
            .count();
        if !serial_mode() {
            assert!(reads > 0, "{u} ran nothing while probe/0's hook was held");
        }
    }
    let show = sim.json(&["show-unit", "probe/1"]);
    let bag = &show["probe/1"]["relation-info"][0]["related-units"]["probe/0"]["data"];
    assert!(bag.get("uncommitted").is_none(), "{bag}");
    // Retried, it commits: now it is seen.
    sim.ok(&["resolve", "probe/0"]);
    let show = sim.json(&["show-unit", "probe/1"]);
    let bag = &show["probe/1"]["relation-info"][0]["related-units"]["probe/0"]["data"];
    assert!(
        bag.get("uncommitted").is_none(),
        "the retry wrote nothing: {bag}"
    );
}

/// The leader writes the application bag when it is elected.
const APP_WRITE: &str = r#"if [ "$JUJU_HOOK_NAME" = leader-elected ]; then
  relation-set -r 0 --app written-by="$JUJU_UNIT_NAME" || { juju-log "relation-set refused"; exit 7; }
  juju-log "app bag written"
fi
"#;

fn app_bag(sim: &Sim, unit: &str) -> Value {
    let show = sim.json(&["show-unit", unit]);
    show[unit]["relation-info"][0]["application-data"].clone()
}

#[test]
fn an_app_bag_write_after_the_lease_was_lost_fails_the_call() {
    if serial_mode() {
        return; // the breakpoint releases at once when nothing else may run
    }
    let sim = Sim::new();
    sim.script(APP_WRITE);
    sim.ok(&[
        "--pause",
        "probe/0:relation-set --app",
        "--revoke-leader-at-pause",
        "deploy",
        &fixture("probe"),
        "-n",
        "2",
    ]);
    let log = sim.log();
    let first = log
        .iter()
        .find(|e| e["unit"] == "probe/0" && e["hook"] == "leader-elected")
        .unwrap();
    assert_eq!(first["exit_code"], 7, "{first}");
    let call = first["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["argv"][0] == "relation-set")
        .unwrap()
        .clone();
    assert_ne!(call["exit"], 0);
    assert!(
        call["stderr"]
            .as_str()
            .unwrap()
            .contains("cannot write relation settings"),
        "{call}"
    );
    // The new leader wrote the bag, the old one nothing.
    let st = sim.status();
    assert_eq!(
        st["applications"]["probe"]["units"]["probe/1"]["leader"],
        true
    );
    // Retried, leader-elected is skipped: probe/0 does not lead (Juju's runHook.Prepare).
    let n = sim.log().len();
    sim.ok(&["resolve", "probe/0"]);
    assert!(
        !sim.log()[n..].iter().any(|e| e["hook"] == "leader-elected"),
        "{:?}",
        sim.events()
    );
    assert_eq!(sim.unit_status("probe/0")["juju-status"]["current"], "idle");
    assert_eq!(app_bag(&sim, "probe/0")["written-by"], "probe/1");
}

#[test]
fn a_hook_whose_unit_lost_the_lease_after_writing_is_not_committed() {
    if serial_mode() {
        return;
    }
    // Held after its app-bag write succeeded: the lease goes meanwhile, the commit is refused.
    let sim = Sim::new().with_global(&["--pause", "probe/0:juju-log", "--revoke-leader-at-pause"]);
    sim.script(APP_WRITE);
    let o = sim.output(&["deploy", &fixture("probe"), "-n", "2"]);
    assert!(o.status.success());
    let log = sim.log();
    let first = log
        .iter()
        .find(|e| e["unit"] == "probe/0" && e["hook"] == "leader-elected")
        .unwrap();
    assert_eq!(first["exit_code"], 0);
    let why = first["commit_error"].as_str().unwrap_or_default();
    assert!(why.contains("not leader"), "{first}");
    let us = sim.unit_status("probe/0");
    assert_eq!(us["workload-status"]["current"], "error", "{us}");
    // What it wrote was never seen; the new leader's write is.
    let bag = app_bag(&sim, "probe/1");
    assert_eq!(bag["written-by"], "probe/1", "{bag}");
    let human = String::from_utf8_lossy(&sim.output(&["log"]).stdout).into_owned();
    assert!(human.contains("COMMIT FAILED"), "{human}");
}

#[test]
fn the_initial_leader_is_whoever_claims_first_and_the_seed_chooses() {
    let mut leaders = std::collections::BTreeSet::new();
    for seed in 1..=8 {
        let sim = Sim::new().with_global(&["--seed", &seed.to_string()]);
        sim.ok(&["--no-wait", "deploy", &fixture("probe"), "-n", "3"]);
        let st = sim.status();
        let units = st["applications"]["probe"]["units"]
            .as_object()
            .unwrap()
            .clone();
        let l: Vec<&String> = units
            .iter()
            .filter(|(_, u)| u["leader"] == true)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(l.len(), 1, "{st}");
        leaders.insert(l[0].clone());
        // The same seed gives the same leader.
        let again = Sim::new().with_global(&["--seed", &seed.to_string()]);
        again.ok(&["--no-wait", "deploy", &fixture("probe"), "-n", "3"]);
        assert_eq!(
            again.status()["applications"]["probe"]["units"][l[0].as_str()]["leader"],
            true
        );
    }
    assert!(leaders.len() > 1, "always {leaders:?}");
    // Without a seed, /0.
    let sim = Sim::new();
    sim.ok(&["--no-wait", "deploy", &fixture("probe"), "-n", "3"]);
    assert_eq!(
        sim.status()["applications"]["probe"]["units"]["probe/0"]["leader"],
        true
    );
}

#[test]
fn the_agent_is_executing_while_a_hook_runs_and_idle_after() {
    let sim = Sim::new();
    sim.script(
        r#"if [ "$JUJU_HOOK_NAME" = config-changed ]; then
  cp "$JUJUSIM_MODEL_DIR/model.json" "$JUJUSIM_WORKLOAD_DIR/during.tmp"
  mv "$JUJUSIM_WORKLOAD_DIR/during.tmp" "$JUJUSIM_WORKLOAD_DIR/during.json"
fi
"#,
    );
    sim.ok(&["deploy", &fixture("probe"), "-n", "2"]);
    let text = sim.read_workload("probe/1", "during.json");
    let during: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("model.json as the hook saw it: {e}: {text:?}"));
    let agent = &during["apps"]["probe"]["units"]["1"]["agent"];
    assert_eq!(agent["status"], "executing", "{agent}");
    assert_eq!(agent["message"], "running config-changed hook");
    for u in ["probe/0", "probe/1"] {
        assert_eq!(sim.unit_status(u)["juju-status"]["current"], "idle");
    }
}
