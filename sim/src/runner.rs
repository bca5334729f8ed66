//! Runs one hook or action as Juju does (reference §1.1, §7.C): a fresh process with no argv,
//! cwd = the unit's charm dir, a clean environment with exactly the Juju variables, the fake
//! tools first on PATH, its own session and process group, stdout/stderr captured, and a
//! timeout after which the whole group is SIGKILLed.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{Paths, World};

/// The standard PATH after the tools directory.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long to keep reading a hook's stdout/stderr after it exited (a daemon it started may
/// hold the pipes open).
const DRAIN: Duration = Duration::from_millis(200);

/// The environment of a hook (§1.2) plus the two jujusim variables; `extra` holds the
/// per-kind variables (relation, action, secret, storage).
pub fn hook_env(
    world: &World,
    paths: &Paths,
    unit: &str,
    context_id: &str,
    dispatch_path: &str,
    hook_name: &str,
    extra: &[(&str, String)],
) -> BTreeMap<String, String> {
    let charm_dir = paths.charm_dir(unit).to_string_lossy().into_owned();
    let machine = world
        .unit(unit)
        .map(|u| u.machine.to_string())
        .unwrap_or_default();
    let mut env: BTreeMap<String, String> = [
        ("JUJU_DISPATCH_PATH", dispatch_path.to_string()),
        ("JUJU_HOOK_NAME", hook_name.to_string()),
        ("JUJU_UNIT_NAME", unit.to_string()),
        ("JUJU_MODEL_NAME", world.name.clone()),
        ("JUJU_MODEL_UUID", world.uuid.clone()),
        ("JUJU_CHARM_DIR", charm_dir.clone()),
        ("CHARM_DIR", charm_dir),
        ("JUJU_VERSION", world.juju_version.clone()),
        ("JUJU_CONTEXT_ID", context_id.to_string()),
        (
            "JUJU_AGENT_SOCKET_ADDRESS",
            paths.socket(&world.uuid).to_string_lossy().into_owned(),
        ),
        ("JUJU_AGENT_SOCKET_NETWORK", "unix".to_string()),
        ("JUJU_API_ADDRESSES", format!("{}:17070", world.address(1))),
        ("JUJU_MACHINE_ID", machine),
        ("JUJU_PRINCIPAL_UNIT", String::new()),
        ("JUJU_AVAILABILITY_ZONE", String::new()),
        ("CLOUD_API_VERSION", String::new()),
        ("JUJU_CHARM_HTTP_PROXY", String::new()),
        ("JUJU_CHARM_HTTPS_PROXY", String::new()),
        ("JUJU_CHARM_FTP_PROXY", String::new()),
        ("JUJU_CHARM_NO_PROXY", String::new()),
        (
            "PATH",
            format!("{}:{SYSTEM_PATH}", paths.tools().to_string_lossy()),
        ),
        ("LANG", "C.UTF-8".to_string()),
        ("TERM", "tmux-256color".to_string()),
        ("DEBIAN_FRONTEND", "noninteractive".to_string()),
        ("APT_LISTCHANGES_FRONTEND", "none".to_string()),
        (
            "JUJUSIM_WORKLOAD_DIR",
            paths.workload_dir(unit).to_string_lossy().into_owned(),
        ),
        (
            "JUJUSIM_MODEL_DIR",
            paths.root.to_string_lossy().into_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.clone());
    }
    env
}

/// What a process run produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code; -1 when killed by a signal or not started.
    pub exit_code: i32,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
    /// User + system CPU of the hook process and the children it waited for (its hook tools).
    pub cpu: Duration,
    /// Peak resident set of that process tree (the largest of them), KiB.
    pub max_rss_kib: u64,
}

impl Run {
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out
    }
}

/// A pipe reader that can be abandoned: the bytes read so far stay available.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Capture {
    fn start(mut r: impl Read + Send + 'static) -> Capture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let b2 = buf.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => b2
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]),
                }
            }
            let _ = tx.send(());
        });
        Capture { buf, done }
    }

    /// Waits for EOF until `deadline`, then takes whatever was read.
    fn finish(self, deadline: Instant) -> String {
        let wait = deadline.saturating_duration_since(Instant::now());
        let _ = self.done.recv_timeout(wait);
        let bytes = std::mem::take(&mut *self.buf.lock().unwrap_or_else(|e| e.into_inner()));
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Runs `entry` with `env` in `cwd`; kills its process group after `timeout`.
pub fn run(entry: &Path, cwd: &Path, env: &BTreeMap<String, String>, timeout: Duration) -> Run {
    run_args(entry, &[], cwd, env, timeout)
}

/// [`run`] with arguments (`jujusim exec`).
pub fn run_args(
    entry: &Path,
    args: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Run {
    let start = Instant::now();
    let mut cmd = Command::new(entry);
    cmd.args(args)
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; it only detaches the child into its own session and
    // process group so that a timeout can kill everything the hook started.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Run {
                exit_code: -1,
                timed_out: false,
                stdout: String::new(),
                stderr: format!("jujusim: cannot run {}: {e}\n", entry.display()),
                duration: start.elapsed(),
                cpu: Duration::ZERO,
                max_rss_kib: 0,
            }
        }
    };
    let pid = child.id() as libc::pid_t;
    let out = child.stdout.take().map(Capture::start);
    let err = child.stderr.take().map(Capture::start);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // wait4 rather than Child::wait: it also reports the CPU time and peak RSS.
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain data; wait4 fills it for our own child `pid`.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        drop(child);
        let _ = tx.send((r == pid).then_some((status, ru)));
    });
    let (waited, timed_out) = match rx.recv_timeout(timeout) {
        Ok(w) => (w, false),
        Err(_) => {
            // SAFETY: kill(2) on the hook's own process group (it called setsid, so pgid == pid).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            (rx.recv().ok().flatten(), true)
        }
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    let (exit_code, cpu, max_rss_kib) = match waited {
        Some((status, ru)) => (
            if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            },
            tv(ru.ru_utime) + tv(ru.ru_stime),
            ru.ru_maxrss.max(0) as u64,
        ),
        None => (-1, Duration::ZERO, 0),
    };
    let deadline = Instant::now() + DRAIN;
    let stdout = out.map(|c| c.finish(deadline)).unwrap_or_default();
    let mut stderr = err.map(|c| c.finish(deadline)).unwrap_or_default();
    if timed_out {
        stderr.push_str(&format!(
            "jujusim: timed out after {} s; killed the hook's process group\n",
            timeout.as_secs_f64()
        ));
    }
    Run {
        exit_code,
        timed_out,
        stdout,
        stderr,
        duration: start.elapsed(),
        cpu,
        max_rss_kib,
    }
}
