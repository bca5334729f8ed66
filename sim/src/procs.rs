//! Workload processes of a unit (contract 2): each PID a charm started is in a `*.pid` file under
//! `$JUJUSIM_WORKLOAD_DIR`. `kill-workload` SIGKILLs them; removal and `destroy` SIGTERM them,
//! wait up to 10 s, then SIGKILL. A PID is signalled only while /proc/<pid> shows a live process.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const TERM_GRACE: Duration = Duration::from_secs(10);

/// A PID found in a PID file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidEntry {
    pub pid: i32,
    pub file: PathBuf,
}

/// Live processes named by `*.pid` files directly under `dir`.
pub fn live_pids(dir: &Path) -> Vec<PidEntry> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("pid") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(pid) = text.trim().parse::<i32>() else {
            continue;
        };
        if pid > 1 && alive(pid) {
            out.push(PidEntry { pid, file: path });
        }
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// /proc/<pid> exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "pid (comm) S ...": the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

fn signal(pid: i32, sig: libc::c_int) {
    if alive(pid) {
        // SAFETY: kill(2) with a PID we just saw alive in /proc.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// SIGKILL every live workload PID; returns what was killed.
pub fn kill_now(dir: &Path) -> Vec<PidEntry> {
    let pids = live_pids(dir);
    for p in &pids {
        signal(p.pid, libc::SIGKILL);
    }
    pids
}

/// SIGTERM every live PID of these directories, wait up to 10 s, then SIGKILL what is left.
/// Returns the PIDs that were signalled.
pub fn stop_all(dirs: &[PathBuf]) -> Vec<PidEntry> {
    let pids: Vec<PidEntry> = dirs.iter().flat_map(|d| live_pids(d)).collect();
    for p in &pids {
        signal(p.pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + TERM_GRACE;
    while pids.iter().any(|p| alive(p.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in &pids {
        signal(p.pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while pids.iter().any(|p| alive(p.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    pids
}
