//! The test harness itself: no JVM outlives its test, whether the test panics or its whole
//! process is SIGKILLed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zookeeper_charm::harness::{EnsembleOptions, TestEnsemble};

/// Alive and not a zombie.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // "pid (comm) S ..." - the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn dropping_an_ensemble_stops_its_jvms_even_when_the_test_panics() {
    let pids = Arc::new(Mutex::new(Vec::new()));
    let seen = pids.clone();
    let outcome = std::panic::catch_unwind(move || {
        runtime().block_on(async move {
            let e = TestEnsemble::start(1, EnsembleOptions::default())
                .await
                .unwrap();
            seen.lock().unwrap().extend(e.pids());
            assert!(e.pids().iter().all(|&p| running(p)));
            panic!("deliberate panic with a running ensemble");
        })
    });
    assert!(outcome.is_err());
    let pids = pids.lock().unwrap().clone();
    assert_eq!(pids.len(), 1);
    for pid in pids {
        assert!(!running(pid), "JVM {pid} survived the panic");
    }
}

#[test]
fn stop_restart_and_the_leader() {
    runtime().block_on(async {
        let mut e = TestEnsemble::start(3, EnsembleOptions::default())
            .await
            .unwrap();
        let leader = e.leader(&[1, 2, 3]).await.unwrap();
        let pid = e.pid(leader).unwrap();
        e.stop(leader).await.unwrap();
        assert!(!running(pid));
        assert_eq!(e.pid(leader), None);
        assert!(e.restart(leader).is_ok());
        assert!(
            e.restart(leader).is_err(),
            "a running server is not started twice"
        );
        e.wait_quorum(&[1, 2, 3], Duration::from_secs(30))
            .await
            .unwrap();
        assert!(e.log_tail(leader, 200).contains("QuorumPeer"));
        assert!(e.dir(leader).join("data/myid").exists());
        let spec = e.server_spec(2, zookeeper_charm::quorum::member::Role::Participant);
        assert_eq!(spec.client_addr().unwrap(), e.host(2));
        assert!(e.ip(1).is_loopback() && e.ip(1).octets()[3] == 11);
    });
}

const CHILD_ENV: &str = "ZK_HARNESS_CHILD_OUT";

/// Not a test on its own: the body of `jvms_die_with_a_sigkilled_test_process`, run in a child
/// process. Starts an ensemble, reports its JVM's PID and directory, then waits to be killed.
#[test]
#[ignore = "run by jvms_die_with_a_sigkilled_test_process in a child process"]
fn harness_child_holds_an_ensemble() {
    let Some(out) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    runtime().block_on(async {
        let e = TestEnsemble::start(1, EnsembleOptions::default())
            .await
            .unwrap();
        let tmp = PathBuf::from(&out).with_extension("tmp");
        let [_, a, b, _] = e.ip(1).octets();
        std::fs::write(
            &tmp,
            format!(
                "{} {} 127.{a}.{b}\n",
                e.pid(1).unwrap(),
                e.dir(1).parent().unwrap().display()
            ),
        )
        .unwrap();
        std::fs::rename(&tmp, &out).unwrap();
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

#[test]
fn jvms_die_with_a_sigkilled_test_process() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("child");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "harness_child_holds_an_ensemble",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, &out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.exists() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child never reported its ensemble");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = std::fs::read_to_string(&out).unwrap();
    let fields: Vec<&str> = report.split_whitespace().collect();
    let [pid, dir, range] = fields[..] else {
        panic!("bad report {report:?}")
    };
    let pid: u32 = pid.parse().unwrap();
    assert!(running(pid));

    child.kill().unwrap(); // SIGKILL: no Drop runs in the child
    child.wait().unwrap();
    let killed = Instant::now();
    while running(pid) {
        if killed.elapsed() > Duration::from_secs(10) {
            // SAFETY: kill(2); the JVM is not ours to reap, stop it so the failure leaks nothing.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = std::fs::remove_dir_all(dir);
            panic!("JVM {pid} outlived its test process");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "[figure] JVM gone {:?} after its test process was SIGKILLed",
        killed.elapsed()
    );
    // The child could not clean up its directory and loopback claim (the claim would only be
    // reclaimed lazily, as its owner is dead).
    if Path::new(dir).starts_with(std::env::temp_dir()) {
        let _ = std::fs::remove_dir_all(dir);
    }
    let claim = loopback::claim_dir().join(range);
    if std::fs::read_to_string(&claim).ok().as_deref() == Some(&format!("pid {}\n", child.id())) {
        let _ = std::fs::remove_file(claim);
    }
}
