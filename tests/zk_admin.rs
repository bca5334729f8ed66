//! The ZooKeeper admin layer against real ZooKeeper 3.8 servers (Debian package). Every test has
//! its own ensemble on its own loopback range, so they run in parallel. Figures are printed with
//! `--nocapture`. The timed leader failovers are in `zk_failover.rs`, alone in their binary.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use zookeeper_charm::harness::{EnsembleOptions, TestEnsemble, QUORUM_PORT};
use zookeeper_charm::quorum::member::{EnsembleConfig, Role, ServerSpec};
use zookeeper_charm::secret::Secret;
use zookeeper_charm::zk::error::Severity;
use zookeeper_charm::zk::{
    self, AclEntry, Auth, ConnectOptions, FourLw, ManagerOptions, Perms, Retry, TlsConfig, ZkError,
    ZooKeeperClient, ZooKeeperManager,
};

/// Patient enough for an election (about 0.4 s), still bounded: 40 x 50 ms.
fn manager_options() -> ManagerOptions {
    ManagerOptions {
        leader_retry: Retry {
            attempts: 40,
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

async fn client(e: &TestEnsemble, id: u32, user: &str, pw: &str) -> ZooKeeperClient {
    ZooKeeperClient::connect(
        &e.host(id),
        &Auth::new(user, Secret::new(pw.into())),
        &ConnectOptions::default(),
    )
    .await
    .unwrap()
}

/// The config every server in `ids` serves (followers apply a commit a moment after the leader).
async fn wait_config_everywhere(e: &TestEnsemble, ids: &[u32], want: &EnsembleConfig) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for &id in ids {
        let c = ZooKeeperClient::connect(&e.host(id), &e.super_auth(), &ConnectOptions::default())
            .await
            .unwrap();
        loop {
            let got = c.config().await.unwrap();
            if &got == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server {id} still serves {got} instead of {want}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Polls `mntr` on `id` until `check` holds.
async fn wait_mntr(e: &TestEnsemble, id: u32, what: &str, check: impl Fn(&zk::Mntr) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = zk::four_letter_word(&e.host(id), "mntr", Duration::from_secs(1)).await;
        if let Ok(t) = &text {
            match zk::parse_mntr(t) {
                Ok(FourLw::Serving(m)) if check(&m) => return,
                Err(err) => eprintln!("DBG unparsable {err}: {t:?}"),
                _ => {}
            }
        }
        assert!(Instant::now() < deadline, "server {id}: {what} never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::test]
async fn add_a_fourth_server_remove_it_then_remove_the_leader() {
    let mut e = TestEnsemble::start(3, EnsembleOptions::default())
        .await
        .unwrap();
    let mut m = manager(&e, &[1, 2, 3]).await;
    let v0 = m.config_version().await.unwrap();
    let four = e.server_spec(4, Role::Participant);

    // The joiner is down: refused before any reconfig (ZooKeeper itself would accept it).
    match m.add_members(std::slice::from_ref(&four)).await {
        Err(ZkError::MemberNotReady { host, state }) => {
            assert_eq!(host, e.host(4));
            assert!(state.contains("unreachable"), "{state}");
        }
        other => panic!("expected MemberNotReady, got {other:?}"),
    }
    assert_eq!(m.config_version().await.unwrap(), v0);

    // Start it as a non-voting member (its config: the members plus itself).
    let leader = e.leader(&[1, 2, 3]).await.unwrap();
    e.start_joiner(4, &[1, 2, 3]).unwrap();
    e.wait_quorum(&[1, 2, 3, 4], Duration::from_secs(30))
        .await
        .unwrap();
    wait_mntr(&e, leader, "one synced non-voting follower", |l| {
        l.synced_non_voting_followers() == Some(1) && l.quorum_size() == Some(3)
    })
    .await;

    let t = Instant::now();
    let cfg = m.add_members(std::slice::from_ref(&four)).await.unwrap();
    eprintln!("[figure] add_members(server.4) took {}", ms(t.elapsed()));
    assert_eq!(cfg.ids(), vec![1, 2, 3, 4]);
    assert_eq!(cfg.members[&4], four);
    assert!(cfg.version > v0);
    let v1 = cfg.version;
    wait_config_everywhere(&e, &[1, 2, 3, 4], &cfg).await;
    wait_mntr(&e, leader, "a quorum of 4, all voting", |l| {
        l.quorum_size() == Some(4)
            && l.synced_non_voting_followers() == Some(0)
            && l.synced_followers() == Some(3)
    })
    .await;

    // Again: nothing to do, no version bump.
    assert_eq!(
        m.add_members(std::slice::from_ref(&four))
            .await
            .unwrap()
            .version,
        v1
    );
    // The same id at another address would silently move server 4: refused.
    let moved = ServerSpec {
        host: e.ip(5).to_string(),
        client_host: e.ip(5).to_string(),
        ..four.clone()
    };
    match m.add_members(&[moved]).await {
        Err(ZkError::IdConflict {
            id: 4,
            current,
            wanted,
        }) => {
            assert_eq!(current, four.to_string());
            assert!(wanted.contains(&e.ip(5).to_string()));
        }
        other => panic!("expected IdConflict, got {other:?}"),
    }
    assert_eq!(m.config_version().await.unwrap(), v1);

    // Restart server 4 with a configuration naming a peer that does not exist: it is up but
    // LOOKING for ever ("not serving"), while 1-3 keep the quorum. That is a member catching
    // up, as far as anyone can tell: changes wait ...
    e.stop(4).await.unwrap();
    e.start_joiner(4, &[9]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = zk::four_letter_word(&e.host(4), "mntr", Duration::from_secs(1)).await;
        if matches!(
            answer.map(|t| zk::parse_mntr(&t).unwrap()),
            Ok(FourLw::NotServing)
        ) {
            break;
        }
        assert!(Instant::now() < deadline, "server 4 never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match m.add_members(std::slice::from_ref(&four)).await {
        Err(ZkError::MembersSyncing { detail }) => {
            assert!(detail.contains("server.4"), "{detail}")
        }
        other => panic!("expected MembersSyncing, got {other:?}"),
    }
    let seen = zk::observe(&e.hosts(&[1, 2, 3, 4]), Duration::from_secs(1)).await;
    assert!(
        seen.syncing
            && seen
                .syncing_reason
                .as_deref()
                .unwrap_or("")
                .contains("server.4")
    );
    // ... except removing that very member.
    let t = Instant::now();
    let cfg = m.remove_members(&[4]).await.unwrap();
    eprintln!(
        "[figure] remove_members(4) (a member stuck not serving) took {}",
        ms(t.elapsed())
    );
    e.stop(4).await.unwrap();
    assert_eq!(cfg.ids(), vec![1, 2, 3]);
    assert!(cfg.version > v1);
    let v2 = cfg.version;
    // Removing a non-member is skipped: ZooKeeper would bump the version for nothing.
    assert_eq!(m.remove_members(&[4, 9]).await.unwrap().version, v2);
    assert_eq!(m.config_version().await.unwrap(), v2);

    // Remove the current leader: the quorum goes on with the two others.
    let leader = e.leader(&[1, 2, 3]).await.unwrap();
    assert_eq!(m.leader(), Some(e.host(leader).as_str()));
    let rest: Vec<u32> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();
    let t = Instant::now();
    let cfg = m.remove_members(&[leader]).await.unwrap();
    eprintln!(
        "[figure] remove_members({leader}) (the leader) took {}",
        ms(t.elapsed())
    );
    assert_eq!(cfg.ids(), rest);
    assert!(cfg.version > v2);
    let t = Instant::now();
    let new_leader = e.wait_quorum(&rest, Duration::from_secs(10)).await.unwrap();
    eprintln!(
        "[figure] after removing the leader, new quorum seen in {}",
        ms(t.elapsed())
    );
    // The manager found the new leader before its next call, and writes go through.
    let after = m.config().await.unwrap();
    assert_eq!(after.ids(), rest);
    assert_eq!(m.leader(), Some(e.host(new_leader).as_str()));
    assert!(m
        .create_znode_leader(
            "/after-leader-removal",
            &[AclEntry::world_anyone(Perms::ALL)]
        )
        .await
        .unwrap());
    wait_config_everywhere(&e, &rest, &after).await;
    let reader = client(&e, rest[0], "super", &e.options().super_password).await;
    assert!(reader.exists("/after-leader-removal").await.unwrap());
    // The removed ex-leader keeps running: for a moment it still says "leading - broadcast"
    // (with no learners; observed up to ~0.3 s), then it follows the new leader as a
    // non-voting follower. The manager never takes it for the leader again.
    wait_mntr(&e, leader, "the ex-leader following", |x| {
        x.peer_state() == Some("following - broadcast")
    })
    .await;
    wait_mntr(
        &e,
        new_leader,
        "the ex-leader among the non-voting followers",
        |l| l.synced_non_voting_followers() == Some(1) && l.quorum_size() == Some(2),
    )
    .await;
}

#[tokio::test]
async fn members_join_in_numeric_order_one_reconfig_each() {
    // server.10 must come after server.2 (the Python library sorted them as text). With 10 down
    // and 2 running, numeric order adds 2 and then stops at 10; text order would stop at once.
    let mut e = TestEnsemble::start(1, EnsembleOptions::default())
        .await
        .unwrap();
    let mut m = manager(&e, &[1]).await;
    let v0 = m.config_version().await.unwrap();
    let ten = e.server_spec(10, Role::Participant);
    let two = e.server_spec(2, Role::Participant);
    e.start_joiner(2, &[1]).unwrap();
    e.wait_quorum(&[1, 2], Duration::from_secs(30))
        .await
        .unwrap();
    match m.add_members(&[ten.clone(), two.clone()]).await {
        Err(ZkError::MemberNotReady { host, .. }) => assert_eq!(host, e.host(10)),
        other => panic!("expected MemberNotReady for server 10, got {other:?}"),
    }
    let cfg = m.config().await.unwrap();
    assert_eq!(cfg.ids(), vec![1, 2]);
    assert!(cfg.version > v0);

    // Now 10 runs (knowing 1 and 2): 2 is skipped, 10 is added.
    e.start_joiner(10, &[1, 2]).unwrap();
    e.wait_quorum(&[1, 2, 10], Duration::from_secs(30))
        .await
        .unwrap();
    let t = Instant::now();
    let cfg = m.add_members(&[ten.clone(), two.clone()]).await.unwrap();
    eprintln!(
        "[figure] add_members(server.10, server.2 already in) took {}",
        ms(t.elapsed())
    );
    assert_eq!(cfg.ids(), vec![1, 2, 10]);
    assert_eq!(
        (cfg.members[&2].clone(), cfg.members[&10].clone()),
        (two, ten)
    );
    wait_config_everywhere(&e, &[1, 2, 10], &cfg).await;
}

#[tokio::test]
async fn quorum_lost_when_two_of_three_stop_is_reported_in_bounded_time() {
    let mut e = TestEnsemble::start(3, EnsembleOptions::default())
        .await
        .unwrap();
    let mut m = manager(&e, &[1, 2, 3]).await;
    let leader = e.leader(&[1, 2, 3]).await.unwrap();
    let follower = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    let last = [1, 2, 3]
        .into_iter()
        .find(|&id| id != leader && id != follower)
        .unwrap();
    e.stop(leader).await.unwrap();
    e.stop(follower).await.unwrap();

    // The survivor answers four-letter words with "not serving": a value, not an error.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = zk::four_letter_word(&e.host(last), "mntr", Duration::from_secs(1))
            .await
            .unwrap();
        if zk::parse_mntr(&text).unwrap() == FourLw::NotServing {
            assert_eq!(text.trim(), zk::fourlw::NOT_SERVING);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server {last} still serves: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A new manager, with the default (3 x 300 ms) retry: QuorumLeaderNotFound, quickly.
    let t = Instant::now();
    let err = ZooKeeperManager::new(
        e.hosts(&[1, 2, 3]),
        e.super_auth(),
        ManagerOptions::default(),
    )
    .await
    .unwrap_err();
    let took = t.elapsed();
    eprintln!(
        "[figure] 2 of 3 stopped: QuorumLeaderNotFound after {}: {err}",
        ms(took)
    );
    assert!(
        matches!(err, ZkError::QuorumLeaderNotFound { .. }),
        "{err:?}"
    );
    assert_eq!(err.severity(), Severity::NoQuorumLeader);
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // The existing manager's session is gone too: a bounded error, no hang.
    let t = Instant::now();
    let err = m.config().await.unwrap_err();
    let took = t.elapsed();
    eprintln!(
        "[figure] 2 of 3 stopped: existing manager's config() failed after {}: {err}",
        ms(took)
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(err.severity().is_transient(), "{err:?}");
    assert!(!m.members_broadcasting().await);

    let seen = zk::observe(&e.hosts(&[1, 2, 3]), Duration::from_secs(1)).await;
    assert_eq!(seen.leader, None);
    assert_eq!(seen.config, None);
    let survivor = &seen.per_host[&e.host(last)];
    assert!(survivor.reachable && !survivor.serving);
    assert!(!seen.per_host[&e.host(leader)].reachable);

    // Restart both: the quorum comes back and the same manager works again.
    e.restart(leader).unwrap();
    e.restart(follower).unwrap();
    let t = Instant::now();
    e.wait_quorum(&[1, 2, 3], Duration::from_secs(30))
        .await
        .unwrap();
    eprintln!("[figure] 2 of 3 restarted -> quorum in {}", ms(t.elapsed()));
    assert_eq!(m.config().await.unwrap().ids(), vec![1, 2, 3]);
}

#[tokio::test]
async fn members_syncing_and_a_joiner_frozen_mid_sync_are_refused() {
    let mut e = TestEnsemble::start(
        1,
        EnsembleOptions {
            heap: "256m".into(),
            ..EnsembleOptions::default()
        },
    )
    .await
    .unwrap();
    let mut options = manager_options();
    options.connect.four_lw_timeout = Duration::from_millis(500);
    let mut m = ZooKeeperManager::new(e.hosts(&[1]), e.super_auth(), options)
        .await
        .unwrap();
    // ~18 MB for a joiner to copy.
    let blob = vec![7u8; 900_000];
    let open = [AclEntry::world_anyone(Perms::ALL)];
    let writer = client(&e, 1, "super", &e.options().super_password).await;
    writer.create_znode("/bulk", &open).await.unwrap();
    for i in 0..20 {
        let p = format!("/bulk/n{i}");
        writer.create_znode(&p, &open).await.unwrap();
        writer.set_data(&p, &blob).await.unwrap();
    }

    // 1. A real joiner, frozen (SIGSTOP) as soon as its log says it entered
    // "following - synchronization".
    let mut frozen = None;
    for joiner in 2..=4 {
        e.start_joiner(joiner, &[1]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if e.log_tail(joiner, 20)
                .contains("Peer state changed: following - synchronization")
            {
                e.pause(joiner).unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if !e.log_tail(joiner, 200).contains("following - broadcast") {
            frozen = Some(joiner);
            break;
        }
        eprintln!("server {joiner} reached broadcast before it was frozen; trying another");
        e.kill(joiner).await.unwrap();
    }
    let joiner = frozen.expect("no joiner frozen mid-sync in 3 tries");
    let spec = e.server_spec(joiner, Role::Participant);
    // The leader already counts it as a synced (non-voting) follower: it starts forwarding to
    // a learner before sending it the snapshot ...
    wait_mntr(&e, 1, "the frozen joiner counted as synced", |l| {
        l.synced_non_voting_followers() == Some(1)
    })
    .await;
    // ... but the joiner is not ready, and its own four-letter words say so.
    let v0 = m.config_version().await.unwrap();
    match m.add_members(std::slice::from_ref(&spec)).await {
        Err(ZkError::MemberNotReady { host, state }) => {
            assert_eq!(host, e.host(joiner));
            eprintln!("[figure] joiner frozen mid-sync: MemberNotReady ({state})");
        }
        other => panic!("expected MemberNotReady, got {other:?}"),
    }
    assert_eq!(m.config_version().await.unwrap(), v0);

    // 2. A learner connection the leader accepted but whose handshake has not finished (a
    // stand-in for a learner stalled before its sync; the leader keeps it for initLimit x
    // tickTime, 5 s here): the leader's mntr shows a learner it does not forward to.
    let stalled = tokio::net::TcpStream::connect((e.ip(1), QUORUM_PORT))
        .await
        .unwrap();
    wait_mntr(&e, 1, "a learner in the handshake", |l| {
        l.syncing_learners() == Some(1)
    })
    .await;
    assert!(m.members_syncing().await.unwrap());
    match m.add_members(std::slice::from_ref(&spec)).await {
        Err(err @ ZkError::MembersSyncing { .. }) => {
            assert_eq!(err.severity(), Severity::MembersSyncing);
            assert!(err.to_string().contains("not yet synced"), "{err}");
        }
        other => panic!("expected MembersSyncing, got {other:?}"),
    }
    match m.remove_members(&[joiner]).await {
        Err(ZkError::MembersSyncing { .. }) => {}
        other => panic!("expected MembersSyncing, got {other:?}"),
    }
    let seen = zk::observe(&e.hosts(&[1]), Duration::from_secs(1)).await;
    assert!(seen.syncing, "{seen:?}");
    drop(stalled);
    wait_mntr(&e, 1, "no learner in the handshake", |l| {
        l.syncing_learners() == Some(0)
    })
    .await;

    // 3. Thaw the joiner: it finishes, broadcasts, and is added.
    e.resume(joiner).unwrap();
    e.wait_quorum(&[1, joiner], Duration::from_secs(30))
        .await
        .unwrap();
    assert!(!m.members_syncing().await.unwrap());
    let cfg = m.add_members(&[spec]).await.unwrap();
    assert_eq!(cfg.ids(), vec![1, joiner]);
}

#[tokio::test]
async fn znode_acls_let_alice_in_and_keep_bob_and_anonymous_out() {
    let opts = EnsembleOptions {
        extra_sasl_users: vec![
            ("alice".into(), "alicepw".into()),
            ("bob".into(), "bobpw".into()),
        ],
        ..EnsembleOptions::default()
    };
    let e = TestEnsemble::start(1, opts).await.unwrap();
    let mut m = manager(&e, &[1]).await;
    let alice_acl = AclEntry::sasl("alice", Perms::parse("cdrwa").unwrap());
    assert_eq!(alice_acl.to_string(), "sasl:alice:cdrwa");

    // Parents are created with the leaf's ACL; creating again is a no-op.
    assert!(m
        .create_znode_leader("/apps/kafka/chroot", std::slice::from_ref(&alice_acl))
        .await
        .unwrap());
    assert!(!m
        .create_znode_leader("/apps/kafka/chroot", std::slice::from_ref(&alice_acl))
        .await
        .unwrap());
    for p in ["/apps", "/apps/kafka", "/apps/kafka/chroot"] {
        assert_eq!(
            m.get_acls_leader(p).await.unwrap(),
            vec![alice_acl.clone()],
            "{p}"
        );
    }

    let alice = client(&e, 1, "alice", "alicepw").await;
    assert!(alice
        .whoami()
        .await
        .unwrap()
        .contains(&"sasl:alice".to_string()));
    alice
        .set_data("/apps/kafka/chroot", b"hello")
        .await
        .unwrap();
    assert_eq!(
        alice.get_data("/apps/kafka/chroot").await.unwrap(),
        b"hello"
    );
    assert!(alice
        .create_znode(
            "/apps/kafka/chroot/topics",
            std::slice::from_ref(&alice_acl)
        )
        .await
        .unwrap());

    let bob = client(&e, 1, "bob", "bobpw").await;
    match bob.get_data("/apps/kafka/chroot").await {
        Err(ZkError::NoAuth { op, path }) => {
            assert_eq!((op.as_str(), path.as_str()), ("get", "/apps/kafka/chroot"))
        }
        other => panic!("bob read: {other:?}"),
    }
    assert!(matches!(
        bob.set_data("/apps/kafka/chroot", b"x").await,
        Err(ZkError::NoAuth { .. })
    ));
    assert!(matches!(
        bob.create_znode(
            "/apps/kafka/chroot/bob",
            &[AclEntry::sasl("bob", Perms::ALL)]
        )
        .await,
        Err(ZkError::NoAuth { .. })
    ));
    let anon = ZooKeeperClient::connect_anonymous(&e.host(1), &ConnectOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        anon.get_data("/apps/kafka/chroot").await,
        Err(ZkError::NoAuth { .. })
    ));
    assert!(
        anon.exists("/apps/kafka/chroot").await.unwrap(),
        "exists needs no permission"
    );

    // Replace the ACLs: bob may now read (only), and a digest user too.
    let carol_pw = Secret::new("carolpw".into());
    let acls = vec![
        alice_acl.clone(),
        AclEntry::sasl("bob", Perms::READ),
        AclEntry::digest("carol", &carol_pw, Perms::READ),
    ];
    m.set_acls_znode_leader("/apps/kafka/chroot", &acls)
        .await
        .unwrap();
    assert_eq!(m.get_acls_leader("/apps/kafka/chroot").await.unwrap(), acls);
    assert_eq!(bob.get_data("/apps/kafka/chroot").await.unwrap(), b"hello");
    assert!(matches!(
        bob.set_data("/apps/kafka/chroot", b"x").await,
        Err(ZkError::NoAuth { .. })
    ));
    assert!(matches!(
        anon.get_data("/apps/kafka/chroot").await,
        Err(ZkError::NoAuth { .. })
    ));
    anon.add_auth_digest("carol", &carol_pw).await.unwrap();
    assert_eq!(anon.get_data("/apps/kafka/chroot").await.unwrap(), b"hello");

    // The tree, without /zookeeper; then a recursive delete (twice: missing is fine).
    let all = m.leader_znodes("/").await.unwrap();
    let want: BTreeSet<String> = [
        "/apps",
        "/apps/kafka",
        "/apps/kafka/chroot",
        "/apps/kafka/chroot/topics",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(all, want);
    assert_eq!(
        m.leader_znodes("/apps/kafka/chroot").await.unwrap().len(),
        2
    );
    m.delete_znode_leader("/apps").await.unwrap();
    m.delete_znode_leader("/apps").await.unwrap();
    assert!(m.leader_znodes("/").await.unwrap().is_empty());
    assert!(!anon.exists("/apps").await.unwrap());
    assert!(matches!(
        m.delete_znode_leader("/zookeeper").await,
        Err(ZkError::BadArguments { .. })
    ));
}

#[tokio::test]
async fn wrong_super_password_is_a_typed_auth_error_not_a_hang() {
    let opts = EnsembleOptions {
        extra_sasl_users: vec![("alice".into(), "alicepw".into())],
        ..EnsembleOptions::default()
    };
    let e = TestEnsemble::start(1, opts).await.unwrap();
    let t = Instant::now();
    let err = ZooKeeperClient::connect(
        &e.host(1),
        &Auth::new("super", Secret::new("not-the-password".into())),
        &ConnectOptions::default(),
    )
    .await
    .unwrap_err();
    eprintln!(
        "[figure] wrong super password -> {err} after {}",
        ms(t.elapsed())
    );
    match &err {
        ZkError::AuthFailed { user, host } => assert_eq!(
            (user.as_str(), host.as_str()),
            ("super", e.host(1).as_str())
        ),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(!format!("{err:?}").contains("not-the-password"));

    let t = Instant::now();
    let err = ZooKeeperManager::new(
        e.hosts(&[1]),
        Auth::new("super", Secret::new("wrong".into())),
        ManagerOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ZkError::AuthFailed { .. }), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let err = ZooKeeperClient::connect(
        &e.host(1),
        &Auth::new("mallory", Secret::new("x".into())),
        &ConnectOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ZkError::AuthFailed { .. }), "{err:?}");

    // Right password but not super: reconfig is NoAuth.
    let alice = client(&e, 1, "alice", "alicepw").await;
    let err = alice.update_ensemble(&[], &[9], None).await.unwrap_err();
    assert!(matches!(err, ZkError::NoAuth { .. }), "{err:?}");
    let sup = client(&e, 1, "super", &e.options().super_password).await;
    let who = sup.whoami().await.unwrap();
    assert!(
        who.contains(&"sasl:super".to_string()) && who.contains(&"super:".to_string()),
        "{who:?}"
    );
}

#[tokio::test]
async fn reconfig_errors_are_typed() {
    let e = TestEnsemble::start(3, EnsembleOptions::default())
        .await
        .unwrap();
    let c = client(&e, 1, "super", &e.options().super_password).await;
    let v0 = c.config().await.unwrap().version;

    // A stale version.
    let err = c
        .update_ensemble(&[], &[9], Some(v0 - 1))
        .await
        .unwrap_err();
    assert!(matches!(err, ZkError::BadVersion { .. }), "{err:?}");
    assert_eq!(c.config().await.unwrap().version, v0);

    // Three joiners that are not running: the new config (6 members) has no synced quorum (-13).
    let down: Vec<ServerSpec> = [5, 6, 7]
        .iter()
        .map(|&id| e.server_spec(id, Role::Participant))
        .collect();
    let err = c.update_ensemble(&down, &[], Some(v0)).await.unwrap_err();
    assert!(matches!(err, ZkError::NewConfigNoQuorum), "{err:?}");

    // ZooKeeper bumps the version even for removing a non-member (the manager skips those).
    let cfg = c.update_ensemble(&[], &[9], Some(v0)).await.unwrap();
    assert_eq!(cfg.ids(), vec![1, 2, 3]);
    assert!(cfg.version > v0);

    // Leaving every server is malformed.
    let err = c.update_ensemble(&[], &[1, 2, 3], None).await.unwrap_err();
    assert!(matches!(err, ZkError::BadArguments { .. }), "{err:?}");

    // A reconfig in flight: the followers are frozen, so the leader cannot commit it. A second
    // reconfig (from another session) meanwhile is refused (-14); once the followers thaw, the
    // first commits.
    let leader = e.leader(&[1, 2, 3]).await.unwrap();
    let followers: Vec<u32> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();
    let on_leader = client(&e, leader, "super", &e.options().super_password).await;
    // Another session: requests of one session are answered in order, so the second would
    // only wait behind the first.
    let other = client(&e, leader, "super", &e.options().super_password).await;
    // The syncing check asks every member; frozen ones never answer, so keep that short
    // (the leader drops followers frozen longer than syncLimit x tickTime, 2.5 s here).
    let mut options = manager_options();
    options.connect.four_lw_timeout = Duration::from_millis(200);
    let mut m = ZooKeeperManager::new(e.hosts(&[1, 2, 3]), e.super_auth(), options)
        .await
        .unwrap();
    let pause = || {
        for &f in &followers {
            e.pause(f).unwrap();
        }
    };
    // Thaws the followers once the leader has made `at` proposals: even a refusal is a
    // transaction the followers must log, so the refused request has been prepared by then and
    // both answers come after the thaw.
    let thaw = |at: u64| {
        let (e, followers) = (&e, &followers);
        async move {
            let prepared = wait_proposals(e, leader, at).await;
            for &f in followers {
                e.resume(f).unwrap();
            }
            assert!(prepared, "the leader never proposed transaction {at}");
        }
    };
    // Sequenced by what the leader shows, not by sleeps: the second request goes out once the
    // first is proposed (its `zoo.cfg.dynamic.next` exists), the followers thaw once the second
    // has been prepared. Another transaction slipping in between (a session opened or closed)
    // would thaw them early and let the first commit before the second arrives; that set-up
    // is retried, the refusal itself is not.
    let mut missed = Vec::new();
    for attempt in 1..=3 {
        let before = m.config_version().await.unwrap();
        let base = proposals(&e, leader).await;
        pause();
        let (first, (second, ())) =
            tokio::join!(on_leader.update_ensemble(&[], &[7], None), async {
                let mark = wait_in_flight(&e, leader, before, base).await;
                tokio::join!(other.update_ensemble(&[], &[8], None), thaw(mark + 1))
            });
        let first = first.unwrap();
        assert!(first.version > before);
        match second {
            Err(ZkError::ReconfigInProgress) => {
                for miss in &missed {
                    eprintln!("[note] {miss}; retried");
                }
                missed.clear();
                break;
            }
            Ok(cfg) if cfg.version > first.version => {
                missed.push(format!(
                    "attempt {attempt}: the first committed ({:x}) before the second was \
                     prepared ({:x})",
                    first.version, cfg.version
                ));
            }
            other => panic!("a reconfig while one is in flight: {other:?}"),
        }
    }
    assert!(
        missed.is_empty(),
        "no attempt met a reconfig in flight: {missed:?}"
    );

    // The manager retries a reconfig that meets one in progress (or a version moved by it).
    let before = m.config_version().await.unwrap();
    let base = proposals(&e, leader).await;
    pause();
    let victim = [followers[0]];
    let (first, removed) = tokio::join!(on_leader.update_ensemble(&[], &[7], None), async {
        let mark = wait_in_flight(&e, leader, before, base).await;
        let t = Instant::now();
        let (removed, ()) = tokio::join!(m.remove_members(&victim), thaw(mark + 1));
        eprintln!(
            "[figure] remove_members waited out a reconfig in flight: {}",
            ms(t.elapsed())
        );
        removed
    });
    let first = first.unwrap();
    let removed = removed.unwrap();
    assert!(removed.version > first.version);
    assert_eq!(
        removed.ids(),
        [1, 2, 3]
            .into_iter()
            .filter(|&id| id != victim[0])
            .collect::<Vec<_>>()
    );
}

/// Waits until the leader has proposed a reconfig newer than `version` that has not committed:
/// ZooKeeper writes `zoo.cfg.dynamic.next` when it proposes one and renames it on commit. Returns
/// the leader's proposal count from then on (at least `base + 1`). Panics after 5 s, with the
/// followers thawed.
async fn wait_in_flight(e: &TestEnsemble, leader: u32, version: u64, base: u64) -> u64 {
    let next = e.dir(leader).join("conf/zoo.cfg.dynamic.next");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let proposed = std::fs::read_to_string(&next)
            .ok()
            .and_then(|text| EnsembleConfig::parse(&text).ok())
            .is_some_and(|cfg| cfg.version > version);
        if proposed {
            let count = proposals(e, leader).await;
            if count > base {
                return count;
            }
        }
        if Instant::now() > deadline {
            for id in e.ids() {
                let _ = e.resume(id);
            }
            panic!(
                "the leader never proposed the reconfig (no newer {})",
                next.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The leader's `zk_proposal_count`.
async fn proposals(e: &TestEnsemble, leader: u32) -> u64 {
    let text = zk::four_letter_word(&e.host(leader), "mntr", Duration::from_secs(1))
        .await
        .unwrap();
    let m = zk::parse_mntr(&text).unwrap().serving().unwrap();
    m.get("zk_proposal_count").unwrap().parse().unwrap()
}

/// Polls until the leader has made `at` proposals (false after 5 s).
async fn wait_proposals(e: &TestEnsemble, leader: u32, at: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if proposals(e, leader).await >= at {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

#[tokio::test]
async fn reconfig_disabled_is_typed() {
    let opts = EnsembleOptions {
        extra_cfg: vec!["reconfigEnabled=false".into()],
        ..EnsembleOptions::default()
    };
    let e = TestEnsemble::start(1, opts).await.unwrap();
    let c = client(&e, 1, "super", &e.options().super_password).await;
    let err = c.update_ensemble(&[], &[9], None).await.unwrap_err();
    assert!(matches!(err, ZkError::ReconfigDisabled), "{err:?}");
    assert!(err.to_string().contains("reconfigEnabled=true"));
}

#[tokio::test]
async fn tls_sessions_check_the_server_and_present_a_client_certificate() {
    let opts = EnsembleOptions {
        tls: true,
        ..EnsembleOptions::default()
    };
    let e = TestEnsemble::start(1, opts).await.unwrap();
    let ca = e.tls_ca_pem().unwrap();
    let (cert, key) = e.tls_client_pem().unwrap();
    let tls = TlsConfig {
        client_cert_pem: Some(cert.clone()),
        client_key_pem: Some(Secret::new(key)),
        ..TlsConfig::new(ca)
    };
    let connect = ConnectOptions {
        tls: Some(tls.clone()),
        four_lw_port: Some(2181), // four-letter words stay on the plain port
        ..ConnectOptions::default()
    };

    let c = ZooKeeperClient::connect(&e.secure_host(1), &e.super_auth(), &connect)
        .await
        .unwrap();
    let who = c.whoami().await.unwrap();
    assert!(who.contains(&"sasl:super".to_string()), "{who:?}");
    assert_eq!(c.config().await.unwrap().ids(), vec![1]);
    assert!(c.is_ready().await.unwrap());

    // The manager over TLS: the leader is found on the plain port, the session is TLS.
    let mut m = ZooKeeperManager::new(
        vec![e.secure_host(1)],
        e.super_auth(),
        ManagerOptions {
            connect: connect.clone(),
            ..manager_options()
        },
    )
    .await
    .unwrap();
    assert_eq!(m.leader(), Some(e.secure_host(1).as_str()));
    assert!(m
        .create_znode_leader("/over-tls", &[AclEntry::sasl("super", Perms::ALL)])
        .await
        .unwrap());
    assert_eq!(m.get_version().await.unwrap(), "3.8.0");

    // A server certificate from another CA is refused, in bounded time.
    let wrong_ca = ConnectOptions {
        tls: Some(TlsConfig {
            ca_pem: cert,
            ..tls.clone()
        }),
        ..connect.clone()
    };
    let t = Instant::now();
    let err = ZooKeeperClient::connect(&e.secure_host(1), &e.super_auth(), &wrong_ca)
        .await
        .unwrap_err();
    eprintln!(
        "[figure] TLS with the wrong CA -> {err} after {}",
        ms(t.elapsed())
    );
    assert!(t.elapsed() < Duration::from_secs(6));
    // Without a client certificate the server (ssl.clientAuth=need) refuses the session.
    let anonymous_cert = ConnectOptions {
        tls: Some(TlsConfig {
            client_cert_pem: None,
            client_key_pem: None,
            ..tls.clone()
        }),
        ..connect.clone()
    };
    assert!(
        ZooKeeperClient::connect(&e.secure_host(1), &e.super_auth(), &anonymous_cert)
            .await
            .is_err()
    );
    // Malformed PEM is a typed, immediate error.
    let bad = ConnectOptions {
        tls: Some(TlsConfig::new("not a certificate".into())),
        ..connect
    };
    let err = ZooKeeperClient::connect(&e.secure_host(1), &e.super_auth(), &bad)
        .await
        .unwrap_err();
    assert!(matches!(err, ZkError::BadArguments { .. }), "{err:?}");
}
