//! The local substrate with the charm's rendered files against real ZooKeeper 3.8: a bootstrap
//! server and a joiner (itself listed as observer) both reach "... - broadcast", and ZooKeeper's
//! rewrite of zoo.cfg is not seen as a change.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use zookeeper_charm::secret::Secret;
use zookeeper_charm::state::config::CharmConfig;
use zookeeper_charm::workload::local::LocalWorkload;
use zookeeper_charm::workload::render::{self, Flavor, QuorumAuth, ServerSettings};
use zookeeper_charm::workload::Workload;

fn four(addr: &str, cmd: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500))
    else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(cmd.as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn peer_state(addr: &str) -> String {
    four(addr, "mntr")
        .lines()
        .find_map(|l| l.strip_prefix("zk_peer_state\t"))
        .unwrap_or("")
        .to_string()
}

fn wait_broadcast(addr: &str, w: &LocalWorkload) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = peer_state(addr);
        if st.ends_with("- broadcast") {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} never reached broadcast (last {st:?}); log:\n{}",
            w.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the servers on drop, also when the test fails.
struct Guard(Vec<LocalWorkload>);
impl Drop for Guard {
    fn drop(&mut self) {
        for w in &self.0 {
            let _ = w.stop();
        }
    }
}

fn prepare(w: &LocalWorkload, unit: u32, address: &str, dynamic: &str) {
    let cfg = CharmConfig {
        tick_time: 500,
        ..CharmConfig::default()
    };
    let sup = Secret::new("superpw".into());
    let quorum = QuorumAuth::single(&Secret::new("syncpw".into()));
    let clients = BTreeMap::new();
    let s = ServerSettings {
        config: &cfg,
        flavor: Flavor::Local,
        paths: w.paths(),
        unit,
        address,
        super_password: &sup,
        quorum: &quorum,
        client_users: &clients,
        tls: zookeeper_charm::tls::serve::Serving::Plain,
    };
    w.install().unwrap();
    for (path, content) in render::server_files(&s) {
        w.write(&path, &content, render::is_private(w.paths(), &path))
            .unwrap();
    }
    w.write(&w.paths().dynamic(), dynamic, false).unwrap();
    w.set_jvm_flags(&render::jvm_flags(&s)).unwrap();
}

#[test]
fn rendered_config_runs_a_bootstrap_server_and_an_observer_joiner() {
    let range = loopback::Range::claim_for_process().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a0, a1) = (range.addr(10).to_string(), range.addr(11).to_string());
    let w0 = LocalWorkload::new(dir.path().join("u0"));
    let w1 = LocalWorkload::new(dir.path().join("u1"));
    let parts: BTreeMap<u32, String> = [(0, a0.clone())].into();
    prepare(
        &w0,
        0,
        &a0,
        &render::initial_dynamic(Flavor::Local, &parts, None),
    );
    prepare(
        &w1,
        1,
        &a1,
        &render::initial_dynamic(Flavor::Local, &parts, Some((1, &a1))),
    );
    let guard = Guard(vec![w0, w1]);
    let (w0, w1) = (&guard.0[0], &guard.0[1]);

    let t = Instant::now();
    w0.start().unwrap();
    assert_eq!(
        wait_broadcast(&format!("{a0}:2181"), w0),
        "leading - broadcast"
    );
    eprintln!("bootstrap server in broadcast after {:?}", t.elapsed());
    let t = Instant::now();
    w1.start().unwrap();
    let st = wait_broadcast(&format!("{a1}:2181"), w1);
    eprintln!("joiner in {st:?} after {:?}", t.elapsed());
    assert!(
        st == "following - broadcast" || st == "observing - broadcast",
        "{st}"
    );
    // The joiner is not a voting member yet: the leader counts it as a non-voting follower.
    let mntr = four(&format!("{a0}:2181"), "mntr");
    assert!(
        mntr.contains("zk_synced_non_voting_followers\t1")
            || mntr.contains("zk_synced_observers\t1"),
        "{mntr}"
    );
    let conf = four(&format!("{a0}:2181"), "conf");
    assert!(
        conf.contains(&format!("server.1={a0}:2888:3888:participant;{a0}:2181")),
        "{conf}"
    );
    assert!(!conf.contains("server.2="), "{conf}");

    // ZooKeeper rewrote zoo.cfg; the charm must not see that as a configuration change.
    let on_disk = std::fs::read_to_string(w0.paths().zoo_cfg()).unwrap();
    let cfg = CharmConfig {
        tick_time: 500,
        ..CharmConfig::default()
    };
    let sup = Secret::new("superpw".into());
    let quorum = QuorumAuth::single(&Secret::new("syncpw".into()));
    let clients = BTreeMap::new();
    let s = ServerSettings {
        config: &cfg,
        flavor: Flavor::Local,
        paths: w0.paths(),
        unit: 0,
        address: &a0,
        super_password: &sup,
        quorum: &quorum,
        client_users: &clients,
        tls: zookeeper_charm::tls::serve::Serving::Plain,
    };
    assert!(
        render::cfg_equivalent(&on_disk, &render::zoo_cfg(&s)),
        "rewritten:\n{on_disk}"
    );

    // Stop by PID: the process is gone and the PID file removed.
    let pid = w1.pid().unwrap();
    w1.stop().unwrap();
    assert!(!w1.alive());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || !zookeeper_charm::workload::local::server_process_alive(pid)
    );
    assert!(!w1.pid_file().exists());
}
