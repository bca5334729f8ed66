//! Leader discovery and failover timing on real ZooKeeper 3.8 ensembles. Alone in its test
//! binary (cargo runs test binaries one after the other) and sequential inside it, so no other
//! test's JVMs start while an election is being timed.

use std::time::{Duration, Instant};

use zookeeper_charm::harness::{EnsembleOptions, TestEnsemble};
use zookeeper_charm::quorum::member::Role;
use zookeeper_charm::zk::{self, AclEntry, ManagerOptions, Perms, Retry, ZooKeeperManager};

/// Up to 5 s of looking (100 x 50 ms), so a slow election fails the < 2 s assertion with its
/// figure instead of an opaque QuorumLeaderNotFound.
fn manager_options() -> ManagerOptions {
    ManagerOptions {
        leader_retry: Retry {
            attempts: 100,
            interval: Duration::from_millis(50),
        },
        ..ManagerOptions::default()
    }
}

async fn manager(e: &TestEnsemble, ids: &[u32]) -> ZooKeeperManager {
    ZooKeeperManager::new(e.hosts(ids), e.super_auth(), manager_options())
        .await
        .unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::test]
async fn leader_found_on_3_and_5_servers_and_again_within_2s_after_sigkill() {
    three_servers().await;
    five_servers().await;
}

/// SIGKILLs the leader among `alive` and measures how long a fresh manager takes to find the
/// new one (must be under 2 s). Returns the new leader's id.
async fn kill_leader_and_find_the_next(
    e: &mut TestEnsemble,
    alive: &mut Vec<u32>,
    label: &str,
) -> u32 {
    let old = e.leader(alive).await.unwrap();
    let killed = Instant::now();
    e.kill(old).await.unwrap();
    alive.retain(|&id| id != old);
    let m = ZooKeeperManager::new(e.hosts(alive), e.super_auth(), manager_options())
        .await
        .unwrap();
    let found = killed.elapsed();
    eprintln!(
        "[figure] {label}: SIGKILL of leader {old} -> new leader found in {}",
        ms(found)
    );
    assert!(
        found < Duration::from_secs(2),
        "{label}: new leader found only after {found:?}"
    );
    let new_host = m.leader().unwrap().to_string();
    let new = *alive.iter().find(|&&id| e.host(id) == new_host).unwrap();
    assert_ne!(new, old);
    assert_eq!(
        e.wait_quorum(alive, Duration::from_secs(10)).await.unwrap(),
        new
    );
    new
}

async fn three_servers() {
    let mut e = TestEnsemble::start(3, EnsembleOptions::default())
        .await
        .unwrap();
    eprintln!(
        "[figure] 3 servers: time to quorum {}",
        ms(e.time_to_quorum())
    );
    let all = vec![1, 2, 3];
    let mut m = manager(&e, &all).await;
    let leader = e.leader(&all).await.unwrap();
    assert_eq!(m.leader(), Some(e.host(leader).as_str()));
    assert_eq!(m.get_version().await.unwrap(), "3.8.0");
    let members = m.server_members().await.unwrap();
    assert_eq!(members.keys().copied().collect::<Vec<_>>(), all);
    for id in &all {
        assert_eq!(members[id], e.server_spec(*id, Role::Participant));
    }
    assert_eq!(m.config_version().await.unwrap(), 0x1_0000_0000);
    assert!(!m.members_syncing().await.unwrap());
    assert!(m.members_broadcasting().await);

    // The session-free view agrees.
    let seen = zk::observe(&e.hosts(&all), Duration::from_secs(1)).await;
    assert_eq!(seen.leader.as_deref(), Some(e.host(leader).as_str()));
    assert_eq!(seen.config.as_ref(), Some(&m.config().await.unwrap()));
    assert!(!seen.syncing && seen.all_broadcasting());
    for id in &all {
        assert_eq!(seen.per_host[&e.host(*id)].server_id, Some(*id));
    }

    // SIGKILL the leader: a new manager finds the next one within 2 s ...
    let mut alive = all.clone();
    let new = kill_leader_and_find_the_next(&mut e, &mut alive, "3 servers").await;
    // ... and the old manager recovers on its next call, on the new leader.
    let cfg = m.config().await.unwrap();
    assert_eq!(
        cfg.ids(),
        all,
        "membership does not change when a server dies"
    );
    assert_eq!(m.leader(), Some(e.host(new).as_str()));
    assert!(m
        .create_znode_leader("/after-failover", &[AclEntry::world_anyone(Perms::ALL)])
        .await
        .unwrap());
    assert!(
        !m.members_broadcasting().await,
        "a killed server is not broadcasting"
    );
}

async fn five_servers() {
    let mut e = TestEnsemble::start(5, EnsembleOptions::default())
        .await
        .unwrap();
    eprintln!(
        "[figure] 5 servers: time to quorum {}",
        ms(e.time_to_quorum())
    );
    let mut alive = vec![1, 2, 3, 4, 5];
    let mut m = manager(&e, &alive).await;
    let leader = e.leader(&alive).await.unwrap();
    assert_eq!(m.leader(), Some(e.host(leader).as_str()));
    assert_eq!(m.server_members().await.unwrap().len(), 5);
    let seen = zk::observe(&e.hosts(&alive), Duration::from_secs(1)).await;
    assert_eq!(seen.leader.as_deref(), Some(e.host(leader).as_str()));

    // Two leaders in a row: 3 of 5 still make a quorum.
    kill_leader_and_find_the_next(&mut e, &mut alive, "5 servers, first kill").await;
    let third = kill_leader_and_find_the_next(&mut e, &mut alive, "5 servers, second kill").await;
    assert_eq!(alive.len(), 3);
    assert_eq!(m.config().await.unwrap().ids(), vec![1, 2, 3, 4, 5]);
    assert_eq!(m.leader(), Some(e.host(third).as_str()));
}
