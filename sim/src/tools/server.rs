//! The simulator side of the hook tools: a thread accepting on the model's unix socket while a
//! command runs; each request is run against the world and the running hook's context, and
//! recorded for the timeline.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::ctx::{HookCtx, ToolCall};
use super::{action, relation, secret, unit, Request, Response, ToolErr, ToolResult};
use crate::error::SimError;
use crate::model::World;

/// The world and the running hook, shared by the driver and the tool server.
pub struct Core {
    pub world: World,
    pub ctx: Option<HookCtx>,
}

pub type Shared = Arc<Mutex<Core>>;

pub fn lock(shared: &Shared) -> MutexGuard<'_, Core> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
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
    /// Serves one request: refused unless its context is the running hook's.
    pub fn dispatch(&mut self, req: Request) -> Response {
        let Some(ctx) = self.ctx.as_mut().filter(|c| c.id == req.context) else {
            return Response {
                stdout: String::new(),
                stderr: format!(
                    "ERROR bad request: no running hook with context ID {:?} (hook tools work only while their hook runs)\n",
                    req.context
                ),
                code: 1,
            };
        };
        let mut call = Call {
            world: &mut self.world,
            ctx,
            args: &req.args,
            stdin: req.stdin.as_deref(),
            cwd: Path::new(&req.cwd),
        };
        let resp = match run_tool(&req.tool, &mut call) {
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
        Ok(req) => lock(shared).dispatch(req),
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
