//! The charm under Juju's concurrency (issue 14): races between units' hooks reproduced exactly
//! with jujusim's breakpoint (`--pause`), each asserting what must never happen.

mod support;

use support::Model;

const APP: &str = "zookeeper";

/// (unit, hook, charm log messages, what `config-get` answered) of every hook from timeline
/// entry `from` on.
fn hooks_since(m: &Model, from: usize) -> Vec<(String, String, Vec<String>, String)> {
    m.log()[from..]
        .iter()
        .map(|e| {
            let msgs = support::juju_logs(e);
            let config = e["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["argv"][0] == "config-get")
                .and_then(|c| c["stdout"].as_str())
                .unwrap_or_default()
                .to_string();
            (
                e["unit"].as_str().unwrap_or_default().to_string(),
                e["hook"].as_str().unwrap_or_default().to_string(),
                msgs,
                config,
            )
        })
        .collect()
}

/// R4: the leader grants the lock to the next unit while the configuration changes again. The
/// unit whose turn just ended reads the old grant (still naming it) with the new configuration:
/// restarting then would take its server down while the next grantee restarts too.
#[test]
fn a_grant_read_after_the_inputs_changed_is_not_acted_on() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    let leader = m.leader(APP);
    let from = m.log().len();
    // The leader's second grant of the roll is held until every other unit is idle; meanwhile
    // the configuration changes again.
    m.ok(&[
        "--pause",
        &format!("{leader}:relation-set --app granted:2"),
        "--at-pause-config",
        "log-level=WARNING",
        "config",
        APP,
        "log-level=DEBUG",
    ]);
    m.settle();
    let hooks = hooks_since(&m, from);
    // The hooks that ran with the second change while the app bag still held a grant issued for
    // the first: none of them restarts (a grantee whose config-changed read the leader's grant
    // for the first change may restart in it: that grant is for what it sees).
    for (unit, hook, msgs, config) in &hooks {
        if *unit != leader && hook == "config-changed" && config.contains("WARNING") {
            assert!(
                !msgs
                    .iter()
                    .any(|l| l.contains("rolling restart: restarting server")),
                "{unit} restarted under a grant for other inputs in {hook}: {msgs:#?}"
            );
        }
    }
    // It did wait for a grant for the inputs it sees.
    assert!(
        hooks.iter().any(|(_, _, msgs, _)| msgs
            .iter()
            .any(|l| l.contains("the lock was granted for other inputs"))),
        "the interleaving did not happen"
    );
    m.settle_until_active(APP);
    m.assert_quorum(APP);
    assert_eq!(m.hook_errors(), Vec::<String>::new());
    assert_eq!(
        m.ok(&["config", APP, "log-level"]).trim(),
        "WARNING",
        "the change made at the pause is in force"
    );
}

/// R11: the Juju leader is not the unit that bootstraps, and joins last. The unit before it
/// commits its start (`state=started` and its restart bag in one commit, held until everything
/// else is idle); the leader then gets two -changed hooks, and when it handles the restart one
/// first, the cluster one adds that unit and writes the ledger, and no other hook will wake it
/// (no unit gets -changed for its own writes): it must start its own server in that hook rather
/// than wait for update-status. Which of the two hooks runs first depends on timing (about 2 in
/// 3 runs hit it), so the deployment is tried three times.
#[test]
fn a_leader_that_joins_last_does_not_wait_for_update_status() {
    let charm = support::packed_charm();
    for _ in 0..3 {
        let m = Model::with_seed(11);
        m.ok(&[
            "--pause",
            "zookeeper/1:relation-set loaded",
            "deploy",
            &charm.to_string_lossy(),
            APP,
            "-n",
            "3",
        ]);
        assert_eq!(m.leader(APP), "zookeeper/2", "the seed chooses zookeeper/2");
        assert_eq!(m.settle(), 0, "it needed update-status to converge");
        m.assert_quorum(APP);
        assert_eq!(m.hook_errors(), Vec::<String>::new());
    }
}

/// R6: leadership lost in the middle of a restart grant. The leader's hook that grants the lock
/// loses the lease at that very call: its write is refused, its hook fails (and is retried as a
/// non-leader), the new leader takes the roll over and finishes it; every server restarts
/// exactly once for the change.
#[test]
fn leadership_lost_at_a_restart_grant_is_taken_over_without_doing_anything_twice() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    let leader = m.leader(APP);
    let from = m.log().len();
    m.ok(&[
        "--pause",
        &format!("{leader}:relation-set --app granted"),
        "--revoke-leader-at-pause",
        "config",
        APP,
        "log-level=DEBUG",
    ]);
    let new = m.leader(APP);
    assert_ne!(new, leader, "the lease moved");
    let failed = m.hook_errors();
    assert_eq!(failed.len(), 1, "the old leader's hook failed: {failed:?}");
    assert!(failed[0].starts_with(&leader), "{failed:?}");
    m.settle_until_active(APP);
    m.assert_quorum(APP);
    let hooks = hooks_since(&m, from);
    for u in m.units(APP) {
        let restarts = hooks
            .iter()
            .filter(|(unit, _, _, _)| *unit == u)
            .flat_map(|(_, _, msgs, _)| msgs)
            .filter(|l| l.contains("rolling restart: restarting server"))
            .count();
        assert_eq!(restarts, 1, "{u} restarted {restarts} times for one change");
    }
    assert_eq!(m.hook_errors().len(), 1, "{:?}", m.hook_errors());
}

/// R6: leadership lost between a committed reconfig and the ledger write that records it: the
/// old leader's write is refused and its hook fails; the new leader finds the member in
/// ZooKeeper's configuration and records it, without adding it again.
#[test]
fn leadership_lost_after_a_reconfig_is_recorded_by_the_new_leader_without_a_second_reconfig() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    let leader = m.leader(APP);
    let from = m.log().len();
    m.ok(&[
        "--pause",
        &format!("{leader}:relation-set --app added"),
        "--revoke-leader-at-pause",
        "add-unit",
        APP,
    ]);
    assert_ne!(m.leader(APP), leader, "the lease moved");
    m.settle_until_active(APP);
    m.assert_quorum(APP);
    assert_eq!(m.units(APP).len(), 4);
    let adds: Vec<(String, String)> = hooks_since(&m, from)
        .into_iter()
        .flat_map(|(u, _, msgs, _)| msgs.into_iter().map(move |l| (u.clone(), l)))
        .filter(|(_, l)| l.starts_with("committed add unit 3"))
        .collect();
    assert_eq!(adds.len(), 1, "one reconfig adds the unit: {adds:?}");
    let errors = m.hook_errors();
    assert!(
        errors.len() == 1 && errors[0].starts_with(&leader),
        "only the old leader's hook failed: {errors:?}"
    );
}

/// R7: the leader's reconfig added the joiner, and its ledger write (held here) has not
/// committed when the joiner's server dies; the joiner's next hook (a configuration change
/// that needs no restart) finds it down and not in the ledger. ZooKeeper lists it as a voter:
/// it restarts as one, instead of resetting its configuration and joining again as an observer.
#[test]
fn a_joiner_added_but_not_yet_recorded_restarts_as_the_voter_it_is() {
    let m = Model::new();
    m.deploy(3);
    assert_eq!(m.settle(), 0);
    let leader = m.leader(APP);
    let from = m.log().len();
    m.ok(&[
        "--pause",
        &format!("{leader}:relation-set --app added"),
        "--at-pause-kill-workload",
        "zookeeper/3",
        "--at-pause-config",
        "client-znode-policy=delete",
        "add-unit",
        APP,
    ]);
    m.settle_until_active(APP);
    m.assert_quorum(APP);
    let hooks = hooks_since(&m, from);
    let joins: Vec<&String> = hooks
        .iter()
        .filter(|(u, _, _, _)| u == "zookeeper/3")
        .flat_map(|(_, _, msgs, _)| msgs)
        .filter(|l| l.contains("as an observer"))
        .collect();
    assert_eq!(joins.len(), 1, "zookeeper/3 joined again: {joins:?}");
    assert!(
        hooks
            .iter()
            .any(|(u, h, _, _)| u == "zookeeper/3" && h == "config-changed"),
        "the interleaving did not happen"
    );
    assert_eq!(m.hook_errors(), Vec::<String>::new());
}
