//! The model's agent (issue 16): one background process per model that runs its hooks, as
//! Juju's unit agents do, so that the `juju` front end's commands return once the change is
//! recorded and `juju status` polling (jubilant's `wait`) watches the model move.
//!
//! - Started by the `juju` front end on `add-model` and on any later command on a model whose
//!   agent is not running (`ensure`); stopped by `destroy-model` and `jujusim destroy` (`stop`).
//! - Files in the model directory: `agent.lock` (the agent holds a `flock` on it for its whole
//!   life: that, not the PID file, says whether an agent runs), `agent.pid`, `agent.log` (its
//!   stdout and stderr), `agent.stop` (asks it to stop).
//! - The agent takes the model's lock only when there is work: the model changed since its last
//!   pass, update-status is due (model-config `update-status-hook-interval`, 5m by default), or
//!   a failed hook is due for its automatic retry (5 s, doubling up to 5 min, as Juju's
//!   `automatically-retry-hooks`). It then runs hooks until the model is idle, but starts no new
//!   hook while another command waits for the lock (`model::yield_requested`), so commands get
//!   in between hooks. The synchronous commands (`settle`, `step`, ...) keep working: they wait
//!   for the lock like any other command.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::Global;
use crate::error::{Result, SimError};
use crate::lifecycle;
use crate::model::{self, ModelLock, Paths, World};
use crate::session::Session;
use crate::util;

const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// `agent.log` is started afresh when it has grown past this.
const LOG_MAX: u64 = 16 << 20;

fn lock_file(paths: &Paths) -> PathBuf {
    paths.root.join("agent.lock")
}
fn pid_file(paths: &Paths) -> PathBuf {
    paths.root.join("agent.pid")
}
fn stop_file(paths: &Paths) -> PathBuf {
    paths.root.join("agent.stop")
}
/// Written by `destroy` before it stops the agent: no agent starts again.
pub fn destroying_file(paths: &Paths) -> PathBuf {
    paths.root.join("destroying")
}
pub fn log_file(paths: &Paths) -> PathBuf {
    paths.root.join("agent.log")
}

/// The agent should let go of the model: a command waits for its lock, or it is to stop.
pub fn should_yield(paths: &Paths) -> bool {
    stop_file(paths).exists() || model::yield_requested(paths)
}

fn try_flock(f: &fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// The PID of the model's running agent, if one runs.
pub fn running(paths: &Paths) -> Option<i32> {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(lock_file(paths))
        .ok()?;
    if try_flock(&f) {
        return None; // nobody holds it (dropping `f` lets go again)
    }
    fs::read_to_string(pid_file(paths))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .or(Some(0))
}

/// Starts the model's agent unless one runs; returns once it holds its lock.
pub fn ensure(dir: &Path) -> Result<()> {
    let paths = Paths::new(dir.to_path_buf());
    for _ in 0..3 {
        if running(&paths).is_some() {
            return Ok(());
        }
        if destroying_file(&paths).exists() {
            return Err(SimError::Failed(format!(
                "model {} is being destroyed",
                paths.root.display()
            )));
        }
        if spawn(&paths)? {
            return Ok(());
        }
    }
    Err(SimError::Failed(format!(
        "the model's agent did not start; see {}",
        log_file(&paths).display()
    )))
}

/// Starts an agent; true once one runs (false: it exited at once, try again).
fn spawn(paths: &Paths) -> Result<bool> {
    let dir = &paths.root;
    let _ = fs::remove_file(stop_file(paths));
    if fs::metadata(log_file(paths)).is_ok_and(|m| m.len() > LOG_MAX) {
        let _ = fs::remove_file(log_file(paths));
    }
    let exe = std::env::current_exe()
        .map_err(|e| SimError::Failed(format!("cannot find the jujusim executable: {e}")))?;
    let log_path = log_file(paths);
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| SimError::io("cannot open", &log_path, e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| SimError::io("cannot open", &log_path, e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--model")
        .arg(dir)
        .arg("agent")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: setsid() is async-signal-safe; the agent leaves the caller's session, so that
    // the caller (jubilant's subprocess.run, a terminal) neither waits for it nor signals it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| SimError::Failed(format!("cannot start the model's agent: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if running(paths).is_some_and(|p| p != 0) {
            return Ok(true);
        }
        if let Ok(Some(st)) = child.try_wait() {
            // Lost a race with another command's agent (it exits at once), or failed.
            if running(paths).is_some() {
                return Ok(true);
            }
            if st.success() {
                return Ok(false);
            }
            return Err(SimError::Failed(format!(
                "the model's agent exited ({st}); see {}",
                log_path.display()
            )));
        }
        if Instant::now() > deadline {
            return Err(SimError::Failed(format!(
                "the model's agent did not start within 10 s; see {}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops the model's agent if one runs: it finishes its running hooks and exits (killed, with
/// its process group, if that takes longer than `grace`: a hook's timeout and a little more).
/// Returns its PID.
pub fn stop(paths: &Paths, grace: Duration) -> Option<i32> {
    let _ = fs::write(stop_file(paths), b"");
    let pid = running(paths)?;
    let deadline = Instant::now() + grace;
    while running(paths).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The PID file may lag the lock by a moment.
    let pid = match pid {
        0 => fs::read_to_string(pid_file(paths))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
        p => p,
    };
    if running(paths).is_some() && pid > 1 {
        // SAFETY: kill(2) on the agent's process group (it called setsid) and on itself.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(paths).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = fs::remove_file(stop_file(paths));
    Some(pid)
}

/// What says the model changed: model.json is replaced on every save.
fn stamp(paths: &Paths) -> Option<(u64, i64, i64)> {
    let m = fs::metadata(paths.model_json()).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec()))
}

/// The agent's settings, from model-config.
struct Settings {
    update_status: Duration,
    auto_retry: bool,
}

fn settings(w: &World) -> Settings {
    let update_status = w
        .model_config
        .get("update-status-hook-interval")
        .and_then(|v| v.as_str())
        .and_then(util::parse_go_duration)
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(300));
    let auto_retry = w
        .model_config
        .get("automatically-retry-hooks")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    Settings {
        update_status,
        auto_retry,
    }
}

fn say(msg: &str) {
    let now = util::now_rfc3339();
    let mut out = std::io::stderr().lock();
    let _ = writeln!(out, "{now} {msg}");
}

/// `jujusim --model DIR agent`: the agent's loop (see the module's documentation).
pub fn run(g: &Global) -> Result<i32> {
    let paths = Paths::new(g.model.clone());
    let lock_path = lock_file(&paths);
    let own = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| SimError::io("cannot open", &lock_path, e))?;
    // `running` (any command's check) holds the lock for an instant: try for a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !try_flock(&own) {
        if Instant::now() > deadline {
            return Ok(0); // another agent runs this model
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let own_ino = own.metadata().map(|m| m.ino()).ok();
    let pid = std::process::id();
    util::atomic_write(&pid_file(&paths), format!("{pid}\n").as_bytes())
        .map_err(|e| SimError::io("cannot write", &pid_file(&paths), e))?;
    say(&format!(
        "jujusim agent {pid} started for model {}",
        paths.root.display()
    ));
    let mut seen = None;
    let mut last_tick = Instant::now();
    let mut retry: Option<(Instant, Duration)> = None;
    let mut conf = Settings {
        update_status: Duration::from_secs(300),
        auto_retry: true,
    };
    let mut first = true;
    loop {
        if stop_file(&paths).exists() || !paths.model_json().is_file() {
            break;
        }
        // The model was removed and made again under the same name (another agent's now), or
        // the binary was rebuilt (its hook tools would point at a deleted file): leave.
        if fs::metadata(&lock_path).map(|m| m.ino()).ok() != own_ino
            || fs::read_link("/proc/self/exe")
                .is_ok_and(|e| e.to_string_lossy().ends_with(" (deleted)"))
        {
            say("jujusim agent: model or binary replaced; leaving");
            break;
        }
        if model::yield_requested(&paths) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let now = Instant::now();
        let tick_due = now >= last_tick + conf.update_status;
        let retry_due = retry.is_some_and(|(at, _)| now >= at);
        if stamp(&paths) == seen && seen.is_some() && !tick_due && !retry_due {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let lock = match ModelLock::try_acquire(&paths) {
            Ok(Some(l)) => l,
            Ok(None) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => {
                say(&format!("jujusim agent: {e}"));
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let mut s = match Session::open_locked(g, lock) {
            Ok(s) => s,
            Err(e) => {
                say(&format!("jujusim agent: cannot open the model: {e}"));
                seen = stamp(&paths);
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        s.driver.opts.yielding = true;
        let pass = (|| -> Result<bool> {
            {
                let mut core = s.core();
                conf = settings(&core.world);
                if first {
                    // Tasks a previous agent was running when it died: they ended unfinished.
                    for a in core.world.actions.values_mut() {
                        if a.status == "running" {
                            a.status = "aborted".into();
                            a.message = "the unit's agent stopped while the task ran".into();
                        }
                    }
                }
                if tick_due {
                    lifecycle::tick(&mut core.world);
                    last_tick = now;
                }
                if retry_due {
                    lifecycle::retry_errors(&mut core.world);
                }
                core.world.save(&s.paths)?;
            }
            s.driver.run_until_idle()?;
            let core = s.core();
            Ok(core
                .world
                .apps
                .values()
                .flat_map(|a| a.units.values())
                .any(|u| u.local.error.is_some()))
        })();
        s.report();
        first = false;
        match pass {
            Ok(in_error) => {
                retry = match (in_error && conf.auto_retry, retry) {
                    (false, _) => None,
                    (true, Some((at, d))) if retry_due || at > now => {
                        if retry_due {
                            let next = (d * 2).min(RETRY_MAX);
                            Some((Instant::now() + next, next))
                        } else {
                            Some((at, d))
                        }
                    }
                    (true, _) => Some((Instant::now() + RETRY_FIRST, RETRY_FIRST)),
                };
            }
            Err(e) => say(&format!("jujusim agent: {e}")),
        }
        // Let a waiting command in before looking again; and if it made no change, the work
        // the agent left for it is still pending: look again anyway.
        let yielded = should_yield(&paths);
        let after = stamp(&paths);
        drop(s);
        seen = if yielded { None } else { after };
    }
    let _ = fs::remove_file(pid_file(&paths));
    say(&format!("jujusim agent {pid} stopped"));
    Ok(0)
}
