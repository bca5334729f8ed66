//! The simulator side of the hook tools: a thread accepting on the model's unix socket while a
//! command runs; each request is served on its own thread against the world and the context
//! of the hook it belongs to (several hooks of different units run at once), and recorded for
//! the timeline. A call of a running hook sees the live world with that hook's own buffered
//! writes laid over it ([`crate::overlay`]).
//!
//! A breakpoint ([`Pause`]) holds one chosen call of one unit until the driver releases it, so
//! that a test can reproduce an interleaving exactly.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::ctx::{HookCtx, ToolCall};
use super::{action, relation, secret, unit, Request, Response, ToolErr, ToolResult};
use crate::error::SimError;
use crate::model::World;

/// A breakpoint: the `nth` call of `tool` (with every word of `args` among its arguments, as
/// `--app` or `--app=...`) made by `unit`'s hooks is held before it runs until the driver
/// releases it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub unit: String,
    pub tool: String,
    pub args: Vec<String>,
    pub nth: usize,
    pub seen: usize,
    pub state: PauseState,
    /// Released once this hook ("unit:hook-name") of another unit committed, else when
    /// everything else is idle.
    pub release_after: Option<(String, String)>,
    /// The held unit's application loses its leader when the call is held.
    pub revoke_leader: bool,
    /// `k=v` settings applied to the held unit's application when the call is held (a
    /// configuration change that arrives mid-hook, as `juju config` can at any time).
    pub config: Vec<String>,
    /// Workload directories whose processes are killed (SIGKILL) when the call is held.
    pub kill: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PauseState {
    Armed,
    /// Holding the call of this context.
    Holding(String),
    Released,
}

impl Pause {
    /// Parses `UNIT:TOOL[:N]`, TOOL possibly followed by words its arguments must include
    /// (`zookeeper/0:relation-set --app:2`).
    pub fn parse(spec: &str) -> Option<Pause> {
        let (unit, rest) = spec.split_once(':')?;
        let (tool, nth) = match rest.rsplit_once(':') {
            Some((t, n)) if n.parse::<usize>().is_ok() => (t, n.parse().ok()?),
            _ => (rest, 1),
        };
        let mut words = tool.split_whitespace().map(str::to_string);
        let tool = words.next()?;
        crate::model::parse_unit(unit)?;
        (nth > 0).then(|| Pause {
            unit: unit.to_string(),
            tool,
            args: words.collect(),
            nth,
            seen: 0,
            state: PauseState::Armed,
            release_after: None,
            revoke_leader: false,
            config: Vec::new(),
            kill: Vec::new(),
        })
    }

    /// Every word is an argument (`--app`, or `--app=...`) or appears in the call's stdin
    /// (`granted`, for data given with `--file -`).
    fn matches(&self, unit: &str, tool: &str, args: &[String], stdin: Option<&str>) -> bool {
        self.state == PauseState::Armed
            && self.unit == unit
            && self.tool == tool
            && self.args.iter().all(|w| {
                args.iter().any(|a| {
                    a == w
                        || a.strip_prefix(w.as_str())
                            .is_some_and(|r| r.starts_with('='))
                }) || stdin.is_some_and(|s| s.contains(w.as_str()))
            })
    }
}

/// What the tool server tells the driver.
#[derive(Debug)]
pub enum Event {
    /// A running operation's process ended (context id, and how it ran).
    Done(crate::driver::Done),
    /// The breakpoint holds a call now.
    Paused,
}

/// The world and the running hooks, shared by the driver and the tool server.
pub struct Core {
    pub world: World,
    /// Running hooks, actions and exec commands by context id.
    pub running: BTreeMap<String, HookCtx>,
    pub pause: Option<Pause>,
    pub events: Option<Sender<Event>>,
}

impl Core {
    pub fn new(world: World) -> Core {
        Core {
            world,
            running: BTreeMap::new(),
            pause: None,
            events: None,
        }
    }
}

pub struct SharedCore {
    core: Mutex<Core>,
    /// Signalled when a held call is released.
    released: Condvar,
}

pub type Shared = Arc<SharedCore>;

pub fn shared(core: Core) -> Shared {
    Arc::new(SharedCore {
        core: Mutex::new(core),
        released: Condvar::new(),
    })
}

pub fn lock(shared: &Shared) -> MutexGuard<'_, Core> {
    shared.core.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lets the held call go on.
pub fn release(shared: &Shared, core: &mut Core) {
    if let Some(p) = core.pause.as_mut() {
        if matches!(p.state, PauseState::Holding(_)) {
            p.state = PauseState::Released;
            shared.released.notify_all();
        }
    }
}

/// Serves one request, first holding it if it is the breakpoint's call.
fn serve_request(shared: &Shared, req: Request) -> Response {
    let mut core = lock(shared);
    let unit = core.running.get(&req.context).map(|c| c.unit.clone());
    let hit = match (unit, core.pause.as_mut()) {
        (Some(u), Some(p)) if p.matches(&u, &req.tool, &req.args, req.stdin.as_deref()) => {
            p.seen += 1;
            p.seen == p.nth
        }
        _ => false,
    };
    if hit {
        let revoke = core.pause.as_ref().is_some_and(|p| p.revoke_leader);
        if let Some(p) = core.pause.as_mut() {
            p.state = PauseState::Holding(req.context.clone());
        }
        let app = core
            .running
            .get(&req.context)
            .map(|c| c.app().to_string())
            .unwrap_or_default();
        if revoke {
            crate::scheduler::revoke_leader(&mut core.world, &app, &mut None);
        }
        for dir in core
            .pause
            .as_ref()
            .map(|p| p.kill.clone())
            .unwrap_or_default()
        {
            crate::procs::kill_now(&dir);
        }
        let config = core
            .pause
            .as_ref()
            .map(|p| p.config.clone())
            .unwrap_or_default();
        if let (false, Some(a)) = (config.is_empty(), core.world.apps.get_mut(&app)) {
            match crate::schema::parse_config_pairs(&a.meta.options, &config) {
                Ok(values) => a.config.extend(values),
                Err(e) => eprintln!("jujusim: --at-pause-config: {e}"),
            }
        }
        if let Some(tx) = &core.events {
            let _ = tx.send(Event::Paused);
        }
        while core
            .pause
            .as_ref()
            .is_some_and(|p| matches!(p.state, PauseState::Holding(_)))
        {
            core = shared
                .released
                .wait(core)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
    core.dispatch(req)
}

/// One tool invocation being served.
pub struct Call<'a> {
    pub world: &'a mut World,
    pub ctx: &'a mut HookCtx,
    pub args: &'a [String],
    pub stdin: Option<&'a str>,
    pub cwd: &'a Path,
}

impl Call<'_> {
    /// Reads `--file <path>` (relative to the hook's cwd) or stdin for `-`.
    pub fn read_file_arg(&self, path: &str) -> Result<String, ToolErr> {
        if path == "-" {
            return Ok(self.stdin.unwrap_or_default().to_string());
        }
        std::fs::read_to_string(self.cwd.join(path))
            .map_err(|e| ToolErr::Run(format!("open {path}: {e}")))
    }
}

fn run_tool(tool: &str, c: &mut Call) -> ToolResult {
    match tool {
        "relation-ids" => relation::relation_ids(c),
        "relation-list" => relation::relation_list(c),
        "relation-get" => relation::relation_get(c),
        "relation-set" => relation::relation_set(c),
        "relation-model-get" => relation::relation_model_get(c),
        "is-leader" => unit::is_leader(c),
        "leader-get" => unit::leader_get(c),
        "leader-set" => unit::leader_set(c),
        "status-set" => unit::status_set(c),
        "status-get" => unit::status_get(c),
        "config-get" => unit::config_get(c),
        "juju-log" => unit::juju_log(c),
        "state-get" => unit::state_get(c),
        "state-set" => unit::state_set(c),
        "state-delete" => unit::state_delete(c),
        "unit-get" => unit::unit_get(c),
        "network-get" => unit::network_get(c),
        "open-port" => unit::port(c, true),
        "close-port" => unit::port(c, false),
        "opened-ports" => unit::opened_ports(c),
        "application-version-set" => unit::application_version_set(c),
        "juju-reboot" => unit::juju_reboot(c),
        "goal-state" => unit::goal_state(c),
        "credential-get" => unit::credential_get(c),
        "storage-get" => unit::storage_get(c),
        "storage-list" => unit::storage_list(c),
        "storage-add" => unit::storage_add(c),
        "resource-get" => unit::resource_get(c),
        "action-get" => action::action_get(c),
        "action-set" => action::action_set(c),
        "action-fail" => action::action_fail(c),
        "action-log" => action::action_log(c),
        "secret-add" => secret::secret_add(c),
        "secret-get" => secret::secret_get(c),
        "secret-set" => secret::secret_set(c),
        "secret-info-get" => secret::secret_info_get(c),
        "secret-ids" => secret::secret_ids(c),
        "secret-grant" => secret::secret_grant(c),
        "secret-revoke" => secret::secret_revoke(c),
        "secret-remove" => secret::secret_remove(c),
        other => Err(ToolErr::Run(format!("unknown command {other:?}"))),
    }
}

impl Core {
    /// Serves one request: refused unless its context is a running hook's. The tool runs on
    /// a view (the live world with the hook's overlay); what it wrote goes to the overlay, the
    /// immediate changes to the world.
    pub fn dispatch(&mut self, req: Request) -> Response {
        let Some(ctx) = self.running.get_mut(&req.context) else {
            return Response {
                stdout: String::new(),
                stderr: format!(
                    "ERROR bad request: no running hook with context ID {:?} (hook tools work only while their hook runs)\n",
                    req.context
                ),
                code: 1,
            };
        };
        let mut view = self.world.clone();
        ctx.overlay.apply(&mut view, &ctx.unit);
        let before = view.clone();
        let immediates = ctx.immediates.len();
        let mut call = Call {
            world: &mut view,
            ctx,
            args: &req.args,
            stdin: req.stdin.as_deref(),
            cwd: Path::new(&req.cwd),
        };
        let result = run_tool(&req.tool, &mut call);
        ctx.overlay.absorb(&before, &view, &ctx.unit);
        for i in &ctx.immediates[immediates..] {
            i.apply(&mut self.world);
        }
        // Counters are the model's, not the hook's: two hooks never get the same number.
        if view.next_storage != before.next_storage {
            self.world.next_storage = view.next_storage;
        }
        let resp = match result {
            Ok(r) => r,
            Err(ToolErr::Usage(m)) => Response {
                stdout: String::new(),
                stderr: format!("ERROR {m}\n"),
                code: 2,
            },
            Err(ToolErr::Run(m)) => Response {
                stdout: String::new(),
                stderr: format!("ERROR {m}\n"),
                code: 1,
            },
        };
        let mut argv = Vec::with_capacity(req.args.len() + 1);
        argv.push(req.tool);
        argv.extend(req.args);
        ctx.calls.push(ToolCall {
            argv,
            stdin: req.stdin,
            exit: resp.code,
            stdout: resp.stdout.clone(),
            stderr: resp.stderr.clone(),
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        });
        resp
    }
}

/// The accepting thread; stopped and the socket removed on drop.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(path: &Path, shared: Shared) -> crate::error::Result<Server> {
        // A socket left by a crashed command: nobody listens on it any more (we hold the lock).
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).map_err(|e| SimError::io("cannot listen on", path, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("jujusim-tools".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("jujusim-tool-call".into())
                        .spawn(move || serve(conn, &shared));
                }
            })
            .map_err(|e| SimError::Failed(format!("cannot start the tool server: {e}")))?;
        Ok(Server {
            path: path.to_path_buf(),
            stop,
            handle: Some(handle),
        })
    }
}

fn serve(mut conn: UnixStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = Vec::new();
    if conn.read_to_end(&mut buf).is_err() {
        return;
    }
    let resp = match serde_json::from_slice::<Request>(&buf) {
        Ok(req) => serve_request(shared, req),
        Err(e) => Response {
            stdout: String::new(),
            stderr: format!("ERROR bad request: {e}\n"),
            code: 1,
        },
    };
    if let Ok(body) = serde_json::to_vec(&resp) {
        let _ = conn.write_all(&body);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
