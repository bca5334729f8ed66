//! The `jujusim` command line: Juju-like commands on a model directory. Every command that
//! changes the model validates its input fully first (bad input changes nothing), then runs
//! hooks until the model is idle, unless `--no-wait`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::charm::{self, Meta, Role};
use crate::driver::{Driver, Options};
use crate::error::{Result, SimError};
use crate::lifecycle;
use crate::model::{
    app_of, parse_unit, valid_app_name, Action, App, Life, Local, ModelLock, Paths, RelEnd,
    Relation, Settings, Status, StorageInstance, Unit, World,
};
use crate::procs;
use crate::scheduler;
use crate::schema;
use crate::timeline;
use crate::tools::server::{self, Core, Pause, Server};
use crate::util;
use crate::{fail, usage};

const HELP: &str = "\
jujusim: a local Juju 3.6 model that runs real charms through real hook executions.

Usage: jujusim [global options] <command> [args]

Global options (anywhere on the line):
  --model DIR          model directory (default $JUJUSIM_MODEL, else ./.jujusim)
  --seed N             reproducible choice among equally valid orderings (also $JUJUSIM_SEED)
  --shuffle            a fresh random seed, printed so the run can be replayed with --seed
  --hook-timeout S     kill a hook after S seconds (default 600, also $JUJUSIM_HOOK_TIMEOUT)
  --no-wait            change the model but do not run hooks now
  --max-hooks N        give up if one command runs more hooks than this (default 5000)
  --serial             one hook at a time in the whole model (all units on one machine);
                       the default runs units concurrently, as Juju does (also $JUJUSIM_SERIAL=1)
  --pause UNIT:TOOL[:N]  hold the Nth call of TOOL by UNIT's hooks (words after TOOL must be
                       among its arguments or in its stdin: 'zookeeper/0:relation-set --app
                       granted:2') until the rest of the model is idle, or until
                       --release-after UNIT:HOOK committed
  --release-after UNIT:HOOK
  --revoke-leader-at-pause  the held unit's application loses its leader when the call is held
  --at-pause-config k=v     this setting of the held unit's application changes when the call
                       is held (repeatable)
  --at-pause-kill-workload UNIT  that unit's workload processes are killed when the call is held

Commands:
  deploy <charm dir|.charm> [app] [-n N] [--config k=v]... [--to MACHINE]
  deploy-stub <app> (--requires|--provides) <endpoint>:<interface>
  add-unit <app> [-n N] [--to MACHINE]
  remove-unit <unit>...
  remove-application <app>
  integrate <app[:endpoint]> <app[:endpoint]>
  remove-relation <app[:endpoint]> <app[:endpoint]>
  set-data <stub app|stub unit> <endpoint> k=v...
  show-data <app|unit> <endpoint> [--reveal-secrets] [--format json|yaml]
  config <app> [key | k=v... | --reset k1,k2]
  run <unit|app/leader> <action> [k=v...] [--string-args] [--format json|yaml]
  status [--format json|yaml]
  show-unit <unit> [--format json|yaml]
  tick [-n N]
  settle [--timeout S] [--format json]
  step [-n N]          run at most N pending hooks (default 1), for fault injection between hooks
  exec <unit> -- CMD   run CMD in a hook context on the unit (as juju exec --unit)
  resolve <unit> [--no-retry]
  kill-workload <unit>
  revoke-leader <app>  the leader loses its lease; another unit claims it
  log [--unit U] [--format json]
  destroy
";

/// Options that apply to every command.
#[derive(Debug, Clone)]
pub struct Global {
    pub model: PathBuf,
    pub seed: Option<u64>,
    pub hook_timeout: Duration,
    pub no_wait: bool,
    pub max_hooks: usize,
    pub serial: bool,
    pub pause: Option<Pause>,
}

fn parse_secs(s: &str, what: &str) -> Result<Duration> {
    match s.parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(Duration::from_secs_f64(f)),
        _ => usage!("{what} must be a positive number of seconds, got {s:?}"),
    }
}

/// Splits global options from the command and its arguments.
fn parse_global(argv: Vec<String>) -> Result<(Global, bool, Vec<String>)> {
    let mut model = std::env::var_os("JUJUSIM_MODEL").map(PathBuf::from);
    let mut seed = match std::env::var("JUJUSIM_SEED") {
        Ok(s) if !s.is_empty() => match s.parse() {
            Ok(n) => Some(n),
            Err(_) => usage!("JUJUSIM_SEED must be an integer, got {s:?}"),
        },
        _ => None,
    };
    let mut hook_timeout = match std::env::var("JUJUSIM_HOOK_TIMEOUT") {
        Ok(s) if !s.is_empty() => parse_secs(&s, "JUJUSIM_HOOK_TIMEOUT")?,
        _ => Duration::from_secs(600),
    };
    let mut shuffle = false;
    let mut no_wait = false;
    let mut serial = matches!(
        std::env::var("JUJUSIM_SERIAL").as_deref(),
        Ok("1" | "true" | "yes")
    );
    let mut pause: Option<Pause> = None;
    let mut release_after = None;
    let mut revoke_at_pause = false;
    let mut pause_config: Vec<String> = Vec::new();
    let mut pause_kill: Vec<String> = Vec::new();
    let mut max_hooks = 5000;
    let mut rest = Vec::new();
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        if a == "--" {
            rest.push(a);
            rest.extend(it.by_ref());
            break;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |inline: Option<String>| -> Result<String> {
            match inline.or_else(|| it.next()) {
                Some(v) => Ok(v),
                None => usage!("{name} needs a value"),
            }
        };
        match name.as_str() {
            "--model" => model = Some(PathBuf::from(value(inline)?)),
            "--seed" => {
                let v = value(inline)?;
                seed = Some(v.parse().map_err(|_| {
                    SimError::Usage(format!("--seed must be an integer, got {v:?}"))
                })?);
            }
            "--hook-timeout" => hook_timeout = parse_secs(&value(inline)?, "--hook-timeout")?,
            "--max-hooks" => {
                let v = value(inline)?;
                max_hooks = v.parse().map_err(|_| {
                    SimError::Usage(format!("--max-hooks must be a number, got {v:?}"))
                })?;
            }
            "--shuffle" => shuffle = true,
            "--serial" => serial = true,
            "--pause" => {
                let v = value(inline)?;
                pause = Some(Pause::parse(&v).ok_or_else(|| {
                    SimError::Usage(format!(
                        "--pause takes UNIT:TOOL[:N] (e.g. zookeeper/1:relation-set --app:2), got {v:?}"
                    ))
                })?);
            }
            "--release-after" => {
                let v = value(inline)?;
                let Some((u, h)) = v.split_once(':').filter(|(u, _)| parse_unit(u).is_some())
                else {
                    usage!("--release-after takes UNIT:HOOK (e.g. zookeeper/0:config-changed), got {v:?}");
                };
                release_after = Some((u.to_string(), h.to_string()));
            }
            "--revoke-leader-at-pause" => revoke_at_pause = true,
            "--at-pause-kill-workload" => {
                let v = value(inline)?;
                if parse_unit(&v).is_none() {
                    usage!("--at-pause-kill-workload takes a unit, got {v:?}");
                }
                pause_kill.push(v);
            }
            "--at-pause-config" => {
                let v = value(inline)?;
                if !v.contains('=') {
                    usage!("--at-pause-config takes k=v, got {v:?}");
                }
                pause_config.push(v);
            }
            "--no-wait" => no_wait = true,
            _ => rest.push(a),
        }
    }
    if let Some(p) = pause.as_mut() {
        p.release_after = release_after;
        p.revoke_leader = revoke_at_pause;
        p.config = pause_config;
    } else if release_after.is_some()
        || revoke_at_pause
        || !pause_config.is_empty()
        || !pause_kill.is_empty()
    {
        usage!("--release-after and the --at-pause options need --pause");
    }
    if shuffle {
        let s = util::random_u64() >> 1;
        eprintln!("jujusim: --shuffle: using seed {s} (replay with --seed {s})");
        seed = Some(s);
    }
    let model = model.unwrap_or_else(|| PathBuf::from(".jujusim"));
    let model = if model.is_absolute() {
        model
    } else {
        std::env::current_dir()
            .map(|d| d.join(&model))
            .unwrap_or(model)
    };
    if let Some(p) = pause.as_mut() {
        let paths = Paths::new(model.clone());
        p.kill = pause_kill.iter().map(|u| paths.workload_dir(u)).collect();
    }
    Ok((
        Global {
            model,
            seed,
            hook_timeout,
            no_wait,
            max_hooks,
            serial,
            pause,
        },
        shuffle,
        rest,
    ))
}

/// A command's own arguments: positionals, `--opt value` options, boolean flags.
struct Args {
    pos: Vec<String>,
    opts: BTreeMap<String, Vec<String>>,
    flags: BTreeSet<String>,
}

impl Args {
    fn parse(args: &[String], valued: &[&str], bools: &[&str]) -> Result<Args> {
        let mut a = Args {
            pos: Vec::new(),
            opts: BTreeMap::new(),
            flags: BTreeSet::new(),
        };
        let mut i = 0;
        while i < args.len() {
            let s = &args[i];
            i += 1;
            if s == "--" {
                a.pos.extend(args[i..].iter().cloned());
                break;
            }
            if !s.starts_with('-') || s == "-" {
                a.pos.push(s.clone());
                continue;
            }
            let (name, inline) = match s.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (s.as_str(), None),
            };
            if valued.contains(&name) {
                let v = match inline {
                    Some(v) => v,
                    None => match args.get(i) {
                        Some(v) => {
                            i += 1;
                            v.clone()
                        }
                        None => usage!("{name} needs a value"),
                    },
                };
                a.opts.entry(name.to_string()).or_default().push(v);
            } else if bools.contains(&name) && inline.is_none() {
                a.flags.insert(name.to_string());
            } else {
                usage!("unknown option {name:?} (see `jujusim help`)");
            }
        }
        Ok(a)
    }
    fn opt(&self, name: &str) -> Option<&str> {
        self.opts
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.opts.get(name).cloned().unwrap_or_default()
    }
    fn flag(&self, name: &str) -> bool {
        self.flags.contains(name)
    }
    fn format(&self, allowed: &[&str]) -> Result<Option<String>> {
        match self.opt("--format") {
            None => Ok(None),
            Some(f) if allowed.contains(&f) => Ok(Some(f.to_string())),
            Some(f) => usage!("unknown format {f:?}; use one of {}", allowed.join(", ")),
        }
    }
    fn count(&self) -> Result<u32> {
        match self.opt("-n") {
            None => Ok(1),
            Some(n) => match n.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => usage!("-n must be a positive integer, got {n:?}"),
            },
        }
    }
}

/// Entry point of the CLI; returns the exit code.
pub fn main(argv: Vec<String>) -> i32 {
    match run(argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ERROR {e}");
            e.exit_code()
        }
    }
}

fn run(argv: Vec<String>) -> Result<i32> {
    let (g, _shuffle, rest) = parse_global(argv)?;
    let Some((cmd, args)) = rest.split_first() else {
        print!("{HELP}");
        return Ok(2);
    };
    let args = args.to_vec();
    match cmd.as_str() {
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(0)
        }
        "version" | "--version" => {
            println!(
                "jujusim {} (Juju {})",
                env!("CARGO_PKG_VERSION"),
                crate::model::JUJU_VERSION
            );
            Ok(0)
        }
        "deploy" => deploy(&g, &args),
        "deploy-stub" => deploy_stub(&g, &args),
        "add-unit" => add_unit(&g, &args),
        "remove-unit" => remove_unit(&g, &args),
        "remove-application" => remove_application(&g, &args),
        "integrate" | "relate" => integrate(&g, &args),
        "remove-relation" => remove_relation(&g, &args),
        "set-data" => set_data(&g, &args),
        "show-data" => show_data(&g, &args),
        "config" => config(&g, &args),
        "run" => run_action(&g, &args),
        "status" => status(&g, &args),
        "show-unit" => show_unit(&g, &args),
        "tick" => tick(&g, &args),
        "settle" => settle(&g, &args),
        "step" => step(&g, &args),
        "exec" => exec(&g, &args),
        "resolve" | "resolved" => resolve(&g, &args),
        "kill-workload" => kill_workload(&g, &args),
        "revoke-leader" => revoke_leader(&g, &args),
        "log" | "debug-log" => log(&g, &args),
        "destroy" | "destroy-model" => destroy(&g, &args),
        other => usage!("unknown command {other:?} (see `jujusim help`)"),
    }
}

// ---------------------------------------------------------------- sessions

/// A mutating command's hold on a model: the lock, the world shared with the tool server, and
/// the driver.
struct Session {
    paths: Paths,
    shared: server::Shared,
    driver: Driver,
    no_wait: bool,
    // Dropped last: the server stops before the lock is released.
    _server: Server,
    _lock: ModelLock,
}

fn ensure_tools(paths: &Paths) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| SimError::Failed(format!("cannot find the jujusim executable: {e}")))?;
    let dir = paths.tools();
    fs::create_dir_all(&dir).map_err(|e| SimError::io("cannot create", &dir, e))?;
    let probe = dir.join(crate::tools::TOOL_NAMES[0]);
    if fs::read_link(&probe).ok().as_deref() == Some(exe.as_path()) {
        return Ok(());
    }
    for name in crate::tools::TOOL_NAMES {
        let link = dir.join(name);
        let _ = fs::remove_file(&link);
        if std::os::unix::fs::symlink(&exe, &link).is_err() {
            // Hard link, else a copy.
            if fs::hard_link(&exe, &link).is_err() {
                fs::copy(&exe, &link).map_err(|e| SimError::io("cannot install tool", &link, e))?;
            }
        }
    }
    Ok(())
}

/// Temporary files a crash left behind while writing model.json (we hold the lock: nobody is
/// writing one now).
fn remove_torn_temp_files(paths: &Paths) {
    if let Ok(entries) = fs::read_dir(&paths.root) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

fn model_name(root: &Path) -> String {
    let base = root
        .file_name()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    if name.is_empty() {
        "default".into()
    } else {
        name
    }
}

impl Session {
    /// Opens an existing model (or creates it when `create`), taking its lock.
    fn open(g: &Global, create: bool) -> Result<Session> {
        let paths = Paths::new(g.model.clone());
        let exists = paths.model_json().is_file();
        if !exists && !create {
            World::load(&paths)?;
        }
        fs::create_dir_all(&paths.root)
            .map_err(|e| SimError::io("cannot create", &paths.root, e))?;
        let lock = ModelLock::acquire(&paths, Duration::from_secs(900))?;
        let mut world = if paths.model_json().is_file() {
            let w = World::load(&paths)?;
            match loopback::Range::reopen_for_dir(w.range.0, w.range.1, &paths.root) {
                Ok(r) => r.keep(),
                Err(e) => eprintln!("jujusim: warning: address range of this model: {e}"),
            }
            w
        } else {
            let range = loopback::Range::claim_for_dir(&paths.root)
                .map_err(|e| SimError::Failed(format!("cannot claim a loopback range: {e}")))?;
            let octets = range.octets();
            range.keep();
            let w = World::new(&model_name(&paths.root), octets);
            w.save(&paths)?;
            w
        };
        ensure_tools(&paths)?;
        remove_torn_temp_files(&paths);
        world.commands += 1;
        let socket = paths.socket(&world.uuid);
        let shared = server::shared(Core::new(world));
        let srv = Server::start(&socket, shared.clone())?;
        let driver = Driver::new(
            shared.clone(),
            paths.clone(),
            Options {
                hook_timeout: g.hook_timeout,
                seed: g.seed,
                max_hooks: g.max_hooks,
                serial: g.serial,
                pause: g.pause.clone(),
            },
        );
        Ok(Session {
            paths,
            shared,
            driver,
            no_wait: g.no_wait,
            _server: srv,
            _lock: lock,
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        server::lock(&self.shared)
    }

    /// Saves the world, then runs hooks until idle (unless --no-wait).
    fn commit(&mut self) -> Result<usize> {
        self.core().world.save(&self.paths)?;
        if self.no_wait {
            return Ok(0);
        }
        let n = self.driver.run_until_idle();
        self.report();
        n
    }

    /// Prints what went wrong in hooks (they do not fail the command, as in Juju).
    fn report(&mut self) {
        for n in self.driver.notes.drain(..) {
            let unit = n.split(':').next().unwrap_or_default().to_string();
            eprintln!("jujusim: {n}; see `jujusim log --unit {unit}`");
        }
    }
}

/// Reads a model without taking its lock (read-only commands).
fn read_world(g: &Global) -> Result<(Paths, World)> {
    let paths = Paths::new(g.model.clone());
    let w = World::load(&paths)?;
    Ok((paths, w))
}

fn print_value(v: &Value, format: Option<&str>) {
    match format {
        Some("yaml") => print!("{}", serde_yaml::to_string(v).unwrap_or_default()),
        _ => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
}

// ---------------------------------------------------------------- units and apps

/// The address of machine `m` (that of a unit on it), if a unit is on it.
fn machine_host(world: &World, m: u32) -> Option<u32> {
    world
        .apps
        .values()
        .flat_map(|a| a.units.values())
        .find(|u| u.machine == m)
        .map(|u| u.host)
}

/// A new unit of `app`, on a new machine or on machine `to` (shared with the units already
/// there: the same address, and one machine lock for all of them).
fn new_unit(world: &mut World, paths: &Paths, app: &str, to: Option<u32>) -> Result<String> {
    let (host, machine) = match to {
        Some(m) => match machine_host(world, m) {
            Some(h) => (h, m),
            None => fail!("machine {m} not found (--to takes a machine that hosts a unit)"),
        },
        None => {
            let host = world.take_host()?;
            let machine = world.next_machine;
            world.next_machine += 1;
            (host, machine)
        }
    };
    let Some(a) = world.apps.get_mut(app) else {
        fail!("application {app:?} not found");
    };
    let num = a.next_unit;
    a.next_unit += 1;
    let name = format!("{app}/{num}");
    let stub = a.stub;
    let storage_meta = a.meta.storage.clone();
    let mut storage = Vec::new();
    for (sname, sm) in &storage_meta {
        let k = world.next_storage.entry(sname.clone()).or_insert(0);
        let id = format!("{sname}/{k}");
        *k += 1;
        let location = paths.storage_dir(&name, &id);
        fs::create_dir_all(&location).map_err(|e| SimError::io("cannot create", &location, e))?;
        storage.push(StorageInstance {
            id,
            name: sname.clone(),
            kind: sm.kind.clone(),
            location: location.to_string_lossy().into_owned(),
            attached: false,
        });
    }
    if !stub {
        let charm_dir = paths.charm_dir(&name);
        let _ = fs::remove_dir_all(&charm_dir);
        charm::copy_dir(&paths.app_charm(app), &charm_dir)?;
    }
    let wl = paths.workload_dir(&name);
    fs::create_dir_all(&wl).map_err(|e| SimError::io("cannot create", &wl, e))?;
    let unit = Unit {
        name: name.clone(),
        num,
        host,
        machine,
        life: Life::Alive,
        workload: if stub {
            Status::new("active", "")
        } else {
            Status::new("waiting", "waiting for machine")
        },
        agent: if stub {
            Status::new("idle", "")
        } else {
            Status::new("allocating", "")
        },
        status_set: false,
        state: Default::default(),
        ports: Default::default(),
        storage,
        local: Local::default(),
    };
    if let Some(a) = world.apps.get_mut(app) {
        a.units.insert(num, unit);
    }
    Ok(name)
}

fn require_app<'a>(w: &'a World, app: &str) -> Result<&'a App> {
    match w.apps.get(app) {
        Some(a) => Ok(a),
        None => {
            let known: Vec<&str> = w.apps.keys().map(String::as_str).collect();
            fail!(
                "application {app:?} not found (the model has: {})",
                if known.is_empty() {
                    "no applications".into()
                } else {
                    known.join(", ")
                }
            )
        }
    }
}

fn require_unit<'a>(w: &'a World, unit: &str) -> Result<&'a Unit> {
    if parse_unit(unit).is_none() {
        usage!("{unit:?} is not a unit name (expected <application>/<number>)");
    }
    match w.unit(unit) {
        Some(u) => Ok(u),
        None => fail!(
            "unit {unit:?} not found (units: {})",
            w.unit_names().join(", ")
        ),
    }
}

fn parse_to(a: &Args) -> Result<Option<u32>> {
    match a.opt("--to") {
        None => Ok(None),
        Some(v) => match v.parse() {
            Ok(m) => Ok(Some(m)),
            Err(_) => usage!("--to takes a machine number, got {v:?}"),
        },
    }
}

fn deploy(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["-n", "--config", "--to"], &[])?;
    let (src, app_arg) = match a.pos.as_slice() {
        [s] => (s.clone(), None),
        [s, app] => (s.clone(), Some(app.clone())),
        _ => usage!(
            "usage: jujusim deploy <charm dir|.charm> [app] [-n N] [--config k=v]... [--to MACHINE]"
        ),
    };
    let n = a.count()?;
    let to = parse_to(&a)?;
    let src = PathBuf::from(&src);
    if !src.exists() {
        fail!(
            "charm {} not found: give a charm directory or a .charm file",
            src.display()
        );
    }
    // Validate everything before touching the model: unpack into a scratch dir first.
    let scratch = tempfile::Builder::new()
        .prefix("jujusim-charm")
        .tempdir()
        .map_err(|e| SimError::Failed(format!("cannot create a temporary directory: {e}")))?;
    let staged = scratch.path().join("charm");
    charm::install(&src, &staged)?;
    let meta = Meta::read(&staged)?;
    let app = app_arg.unwrap_or_else(|| meta.name.clone());
    if !valid_app_name(&app) {
        usage!("{app:?} is not a valid application name (lowercase letters, digits, hyphens)");
    }
    let config = schema::parse_config_pairs(&meta.options, &a.all("--config"))?;
    let paths = Paths::new(g.model.clone());
    if paths.model_json().is_file() {
        let (_, w) = read_world(g)?;
        if w.apps.contains_key(&app) {
            fail!("application {app:?} already exists; choose another name: jujusim deploy <charm> <name>");
        }
        if w.next_host + n > 255 {
            fail!("not enough addresses left in this model for {n} more units");
        }
    }

    let mut s = Session::open(g, true)?;
    {
        let mut core = s.core();
        if core.world.apps.contains_key(&app) {
            fail!("application {app:?} already exists");
        }
        let dest = s.paths.app_charm(&app);
        let _ = fs::remove_dir_all(&dest);
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p).map_err(|e| SimError::io("cannot create", p, e))?;
        }
        charm::copy_dir(&staged, &dest)?;
        let peers: Vec<(String, String)> = meta
            .endpoints
            .iter()
            .filter(|(_, e)| e.role == Role::Peer)
            .map(|(n, e)| (n.clone(), e.interface.clone()))
            .collect();
        core.world
            .apps
            .insert(app.clone(), App::new(&app, meta, false, config));
        let paths = s.paths.clone();
        for i in 0..n {
            new_unit(&mut core.world, &paths, &app, to.filter(|_| i == 0))?;
        }
        // The first agent to claim the lease leads (not always /0): the seed chooses.
        let mut rng = g.seed.map(|seed| {
            util::Rng::new(
                seed ^ app.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
                }),
            )
        });
        scheduler::ensure_leaders(&mut core.world, &mut rng);
        for (ep, iface) in peers {
            let id = core.world.next_relation;
            core.world.next_relation += 1;
            core.world.relations.insert(
                id,
                Relation {
                    id,
                    interface: iface,
                    ends: vec![RelEnd {
                        app: app.clone(),
                        endpoint: ep,
                        role: Role::Peer,
                    }],
                    life: Life::Alive,
                    app_bags: BTreeMap::new(),
                    unit_bags: BTreeMap::new(),
                },
            );
        }
    }
    println!(
        "Deployed {app:?} from {} ({n} unit{})",
        src.display(),
        if n == 1 { "" } else { "s" }
    );
    let hooks = s.commit()?;
    if !s.no_wait {
        println!("ran {hooks} hooks");
    }
    Ok(0)
}

fn parse_endpoint_spec(s: &str) -> Result<(String, String)> {
    match s.split_once(':') {
        Some((e, i)) if !e.is_empty() && !i.is_empty() => Ok((e.to_string(), i.to_string())),
        _ => usage!("expected <endpoint>:<interface>, got {s:?}"),
    }
}

fn deploy_stub(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--requires", "--provides"], &[])?;
    let [app] = a.pos.as_slice() else {
        usage!("usage: jujusim deploy-stub <app> (--requires|--provides) <endpoint>:<interface>");
    };
    let (role, spec) = match (a.opt("--requires"), a.opt("--provides")) {
        (Some(r), None) => (Role::Requirer, r),
        (None, Some(p)) => (Role::Provider, p),
        _ => usage!("give exactly one of --requires or --provides <endpoint>:<interface>"),
    };
    let (ep, iface) = parse_endpoint_spec(spec)?;
    if !valid_app_name(app) {
        usage!("{app:?} is not a valid application name");
    }
    if Paths::new(g.model.clone()).model_json().is_file() {
        let (_, w) = read_world(g)?;
        if w.apps.contains_key(app) {
            fail!("application {app:?} already exists");
        }
    }
    let mut s = Session::open(g, true)?;
    {
        let mut core = s.core();
        if core.world.apps.contains_key(app) {
            fail!("application {app:?} already exists");
        }
        core.world.apps.insert(
            app.clone(),
            App::new(
                app,
                Meta::stub(app, &ep, role, &iface),
                true,
                BTreeMap::new(),
            ),
        );
        let paths = s.paths.clone();
        new_unit(&mut core.world, &paths, app, None)?;
        if let Some(a) = core.world.apps.get_mut(app.as_str()) {
            a.leader = Some(format!("{app}/0"));
        }
    }
    println!(
        "Deployed stub {app:?} ({} {ep}:{iface}) with unit {app}/0",
        if role == Role::Requirer {
            "requires"
        } else {
            "provides"
        }
    );
    s.commit()?;
    Ok(0)
}

fn add_unit(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["-n", "--to"], &[])?;
    let [app] = a.pos.as_slice() else {
        usage!("usage: jujusim add-unit <app> [-n N] [--to MACHINE]");
    };
    let n = a.count()?;
    let to = parse_to(&a)?;
    let (_, w) = read_world(g)?;
    let ap = require_app(&w, app)?;
    if ap.stub {
        fail!("{app:?} is a stub application: stubs have exactly one unit");
    }
    if ap.life != Life::Alive {
        fail!("application {app:?} is being removed");
    }
    if w.next_host + n > 255 {
        fail!("not enough addresses left in this model's range for {n} more units");
    }
    let mut s = Session::open(g, false)?;
    let mut added = Vec::new();
    {
        let mut core = s.core();
        require_app(&core.world, app)?;
        let paths = s.paths.clone();
        for i in 0..n {
            added.push(new_unit(
                &mut core.world,
                &paths,
                app,
                to.filter(|_| i == 0),
            )?);
        }
    }
    println!("Added {}", added.join(", "));
    s.commit()?;
    Ok(0)
}

fn remove_unit(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    if a.pos.is_empty() {
        usage!("usage: jujusim remove-unit <unit>...");
    }
    let (_, w) = read_world(g)?;
    for u in &a.pos {
        let unit = require_unit(&w, u)?;
        if unit.life != Life::Alive {
            fail!("unit {u:?} is already being removed");
        }
    }
    let mut s = Session::open(g, false)?;
    {
        let mut core = s.core();
        let paths = s.paths.clone();
        for u in &a.pos {
            let stub = core.world.is_stub(app_of(u));
            if let Some(unit) = core.world.unit_mut(u) {
                unit.life = Life::Dying;
            }
            if stub {
                lifecycle::bury(&mut core.world, &paths, u);
            }
        }
    }
    println!("Removing {}", a.pos.join(", "));
    s.commit()?;
    Ok(0)
}

fn remove_application(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    let [app] = a.pos.as_slice() else {
        usage!("usage: jujusim remove-application <app>");
    };
    let (_, w) = read_world(g)?;
    if require_app(&w, app)?.life != Life::Alive {
        fail!("application {app:?} is already being removed");
    }
    let mut s = Session::open(g, false)?;
    {
        let mut core = s.core();
        let paths = s.paths.clone();
        let w = &mut core.world;
        let stub = w.is_stub(app);
        if let Some(ap) = w.apps.get_mut(app.as_str()) {
            ap.life = Life::Dying;
            for u in ap.units.values_mut() {
                u.life = Life::Dying;
            }
        }
        for r in w.relations.values_mut() {
            if r.involves(app) {
                r.life = Life::Dying;
            }
        }
        if stub {
            let units: Vec<String> = w
                .apps
                .get(app.as_str())
                .map(|a| a.units.values().map(|u| u.name.clone()).collect())
                .unwrap_or_default();
            for u in units {
                lifecycle::bury(w, &paths, &u);
            }
        }
        lifecycle::gc(w);
    }
    println!("Removing application {app:?}");
    s.commit()?;
    Ok(0)
}

fn split_app_ep(s: &str) -> (String, Option<String>) {
    match s.split_once(':') {
        Some((a, e)) => (a.to_string(), Some(e.to_string())),
        None => (s.to_string(), None),
    }
}

/// Finds the one endpoint pair that can be related (reference: `juju integrate`).
fn resolve_pair(w: &World, x: &str, y: &str) -> Result<(RelEnd, RelEnd, String)> {
    let (ax, ex) = split_app_ep(x);
    let (ay, ey) = split_app_ep(y);
    let appx = require_app(w, &ax)?;
    let appy = require_app(w, &ay)?;
    if ax == ay {
        fail!("cannot relate application {ax:?} to itself (peer relations exist from deploy)");
    }
    for (app, ep) in [(appx, &ex), (appy, &ey)] {
        if let Some(ep) = ep {
            if !app.meta.endpoints.contains_key(ep) {
                let eps: Vec<&str> = app.meta.endpoints.keys().map(String::as_str).collect();
                fail!(
                    "application {:?} has no endpoint {ep:?} (endpoints: {})",
                    app.name,
                    eps.join(", ")
                );
            }
        }
    }
    let mut found = Vec::new();
    for (nx, epx) in &appx.meta.endpoints {
        if ex.as_ref().is_some_and(|e| e != nx) {
            continue;
        }
        for (ny, epy) in &appy.meta.endpoints {
            if ey.as_ref().is_some_and(|e| e != ny) {
                continue;
            }
            let ok_roles = matches!(
                (epx.role, epy.role),
                (Role::Provider, Role::Requirer) | (Role::Requirer, Role::Provider)
            );
            if ok_roles && epx.interface == epy.interface {
                found.push((
                    RelEnd {
                        app: ax.clone(),
                        endpoint: nx.clone(),
                        role: epx.role,
                    },
                    RelEnd {
                        app: ay.clone(),
                        endpoint: ny.clone(),
                        role: epy.role,
                    },
                    epx.interface.clone(),
                ));
            }
        }
    }
    match found.len() {
        0 => fail!(
            "no relations found between {x:?} and {y:?}: no provides/requires endpoints with a common interface"
        ),
        1 => Ok(found.remove(0)),
        _ => {
            let opts: Vec<String> = found
                .iter()
                .map(|(p, q, _)| format!("\"{}:{} {}:{}\"", p.app, p.endpoint, q.app, q.endpoint))
                .collect();
            fail!(
                "ambiguous relation: {x:?} {y:?} could refer to {}; name the endpoints",
                opts.join("; ")
            )
        }
    }
}

fn integrate(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    let [x, y] = a.pos.as_slice() else {
        usage!("usage: jujusim integrate <app[:endpoint]> <app[:endpoint]>");
    };
    let (_, w) = read_world(g)?;
    let check = |w: &World| -> Result<(RelEnd, RelEnd, String)> {
        let (ex, ey, iface) = resolve_pair(w, x, y)?;
        for e in [&ex, &ey] {
            if w.apps.get(&e.app).map(|a| a.life) != Some(Life::Alive) {
                fail!("application {:?} is being removed", e.app);
            }
        }
        let same = w
            .relations
            .values()
            .any(|r| r.ends.len() == 2 && r.ends.contains(&ex) && r.ends.contains(&ey));
        if same {
            fail!(
                "relation {}:{} {}:{} already exists",
                ex.app,
                ex.endpoint,
                ey.app,
                ey.endpoint
            );
        }
        for e in [&ex, &ey] {
            let limit = w
                .apps
                .get(&e.app)
                .and_then(|a| a.meta.endpoints.get(&e.endpoint))
                .and_then(|m| m.limit);
            if let Some(l) = limit {
                let n = w
                    .relations
                    .values()
                    .filter(|r| r.life == Life::Alive && r.ends.contains(e))
                    .count() as u32;
                if n >= l {
                    fail!(
                        "establishing a new relation for {}:{} would exceed its maximum relation limit of {l}",
                        e.app,
                        e.endpoint
                    );
                }
            }
        }
        Ok((ex, ey, iface))
    };
    check(&w)?;
    let mut s = Session::open(g, false)?;
    {
        let mut core = s.core();
        let (ex, ey, iface) = check(&core.world)?;
        let id = core.world.next_relation;
        core.world.next_relation += 1;
        let mut ends = vec![ex, ey];
        ends.sort_by_key(|e| (e.role != Role::Provider, e.app.clone()));
        core.world.relations.insert(
            id,
            Relation {
                id,
                interface: iface,
                ends: ends.clone(),
                life: Life::Alive,
                app_bags: BTreeMap::new(),
                unit_bags: BTreeMap::new(),
            },
        );
        // Stub units are in scope at once.
        for e in &ends {
            if core.world.is_stub(&e.app) {
                let units: Vec<String> = core
                    .world
                    .apps
                    .get(&e.app)
                    .map(|a| a.units.values().map(|u| u.name.clone()).collect())
                    .unwrap_or_default();
                for u in units {
                    let addr = core.world.unit_address(&u).unwrap_or_default();
                    lifecycle::enter_scope(&mut core.world, id, &u, &addr);
                }
            }
        }
        println!(
            "Integrated {} (relation {id})",
            core.world.relations[&id].key()
        );
    }
    s.commit()?;
    Ok(0)
}

fn remove_relation(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    let [x, y] = a.pos.as_slice() else {
        usage!("usage: jujusim remove-relation <app[:endpoint]> <app[:endpoint]>");
    };
    let find = |w: &World| -> Result<u64> {
        let (ax, ex) = split_app_ep(x);
        let (ay, ey) = split_app_ep(y);
        require_app(w, &ax)?;
        require_app(w, &ay)?;
        let matches = |r: &Relation, app: &str, ep: &Option<String>| {
            r.end(app)
                .is_some_and(|e| ep.as_ref().map_or(true, |ep| *ep == e.endpoint))
        };
        let found: Vec<u64> = w
            .relations
            .values()
            .filter(|r| r.life == Life::Alive && !r.is_peer())
            .filter(|r| matches(r, &ax, &ex) && matches(r, &ay, &ey))
            .map(|r| r.id)
            .collect();
        match found.as_slice() {
            [id] => Ok(*id),
            [] => fail!("no relation between {x:?} and {y:?}"),
            _ => fail!("ambiguous: several relations between {x:?} and {y:?}; name the endpoints"),
        }
    };
    let (_, w) = read_world(g)?;
    find(&w)?;
    let mut s = Session::open(g, false)?;
    {
        let mut core = s.core();
        let id = find(&core.world)?;
        println!("Removing relation {}", core.world.relations[&id].key());
        if let Some(r) = core.world.relations.get_mut(&id) {
            r.life = Life::Dying;
        }
        lifecycle::gc(&mut core.world);
    }
    s.commit()?;
    Ok(0)
}

/// The relations of `app` on `endpoint`.
fn relations_on(w: &World, app: &str, endpoint: &str) -> Vec<u64> {
    w.relations
        .values()
        .filter(|r| r.end(app).is_some_and(|e| e.endpoint == endpoint))
        .map(|r| r.id)
        .collect()
}

fn set_data(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    if a.pos.len() < 3 {
        usage!("usage: jujusim set-data <stub app|stub unit> <endpoint> k=v...");
    }
    let (target, endpoint, pairs) = (&a.pos[0], &a.pos[1], &a.pos[2..]);
    let mut kv = Vec::new();
    for p in pairs {
        match util::split_kv(p) {
            Some((k, v)) => kv.push((k.to_string(), v.to_string())),
            None => usage!("expected key=value, got {p:?}"),
        }
    }
    let check = |w: &World| -> Result<(String, Vec<u64>)> {
        let app = if parse_unit(target).is_some() {
            require_unit(w, target)?;
            app_of(target).to_string()
        } else {
            require_app(w, target)?;
            target.clone()
        };
        if !w.is_stub(&app) {
            fail!(
                "{app:?} runs a charm: only stub applications (deploy-stub) have their data set from outside"
            );
        }
        let ap = &w.apps[&app];
        if !ap.meta.endpoints.contains_key(endpoint.as_str()) {
            fail!("stub {app:?} has no endpoint {endpoint:?}");
        }
        let rels: Vec<u64> = relations_on(w, &app, endpoint)
            .into_iter()
            .filter(|id| w.relations[id].life == Life::Alive)
            .collect();
        if rels.is_empty() {
            fail!("{app:?} has no relation on endpoint {endpoint:?}: integrate it first");
        }
        Ok((app, rels))
    };
    let (_, w) = read_world(g)?;
    check(&w)?;
    let mut s = Session::open(g, false)?;
    {
        let mut core = s.core();
        let (app, rels) = check(&core.world)?;
        let unit_bag = parse_unit(target).is_some();
        for id in rels {
            let Some(r) = core.world.relations.get_mut(&id) else {
                continue;
            };
            let bag: &mut Settings = if unit_bag {
                r.unit_bags.entry(target.clone()).or_default()
            } else {
                r.app_bags.entry(app.clone()).or_default()
            };
            let before = bag.data.clone();
            for (k, v) in &kv {
                if v.is_empty() {
                    bag.data.remove(k);
                } else {
                    bag.data.insert(k.clone(), v.clone());
                }
            }
            if bag.data != before {
                bag.version += 1;
            }
        }
    }
    s.commit()?;
    Ok(0)
}

fn show_data(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--format"], &["--reveal-secrets"])?;
    let fmt = a.format(&["json", "yaml"])?;
    let [target, endpoint] = a.pos.as_slice() else {
        usage!("usage: jujusim show-data <app|unit> <endpoint> [--reveal-secrets] [--format json|yaml]");
    };
    let (_, w) = read_world(g)?;
    let (app, viewer) = if parse_unit(target).is_some() {
        require_unit(&w, target)?;
        (app_of(target).to_string(), target.clone())
    } else {
        let ap = require_app(&w, target)?;
        let viewer = ap
            .leader
            .clone()
            .or_else(|| ap.units.values().next().map(|u| u.name.clone()))
            .unwrap_or_default();
        (target.clone(), viewer)
    };
    if !w.apps[&app].meta.endpoints.contains_key(endpoint.as_str()) {
        fail!("{app:?} has no endpoint {endpoint:?}");
    }
    let mut outv = Map::new();
    for id in relations_on(&w, &app, endpoint) {
        let r = &w.relations[&id];
        let Some(remote) = r.remote_app(&app) else {
            continue;
        };
        let app_data = r
            .app_bags
            .get(remote)
            .map(|s| s.data.clone())
            .unwrap_or_default();
        let mut units = Map::new();
        if let Some(ra) = w.apps.get(remote) {
            for u in ra.units.values() {
                if u.name != viewer && w.in_scope(r, &u.name) {
                    let bag = r
                        .unit_bags
                        .get(&u.name)
                        .map(|s| s.data.clone())
                        .unwrap_or_default();
                    units.insert(u.name.clone(), json!(bag));
                }
            }
        }
        let mut entry = Map::new();
        entry.insert("relation-id".into(), json!(id));
        entry.insert("application-data".into(), json!(app_data));
        entry.insert("units".into(), Value::Object(units));
        if a.flag("--reveal-secrets") {
            let mut revealed = Map::new();
            for (k, v) in &app_data {
                if !v.starts_with("secret:") {
                    continue;
                }
                let val = match World::parse_secret_ref(v).and_then(|x| w.secrets.get(&x)) {
                    None => json!({"error": "not found"}),
                    Some(s) if crate::tools::secret::granted(&w, &viewer, s) => {
                        let bag = s.revisions.get(&s.latest).cloned().unwrap_or_default();
                        let m: Map<String, Value> = bag
                            .iter()
                            .map(|(k, v)| {
                                let text = util::base64_decode(v)
                                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                                    .unwrap_or_else(|| v.clone());
                                (k.clone(), json!(text))
                            })
                            .collect();
                        Value::Object(m)
                    }
                    Some(_) => json!({"error": "permission denied"}),
                };
                revealed.insert(k.clone(), val);
            }
            entry.insert("revealed".into(), Value::Object(revealed));
        }
        outv.insert(remote.to_string(), Value::Object(entry));
    }
    let v = Value::Object(outv);
    match fmt.as_deref() {
        Some("json") => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
        _ => print!("{}", serde_yaml::to_string(&v).unwrap_or_default()),
    }
    Ok(0)
}

fn config(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--reset", "--format"], &[])?;
    let Some((app, rest)) = a.pos.split_first() else {
        usage!("usage: jujusim config <app> [key | k=v... | --reset k1,k2]");
    };
    let (_, w) = read_world(g)?;
    let ap = require_app(&w, app)?;
    if ap.stub {
        fail!("{app:?} is a stub application: it has no configuration");
    }
    let resets: Vec<String> = a
        .all("--reset")
        .iter()
        .flat_map(|s| s.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let sets: Vec<String> = rest.iter().filter(|s| s.contains('=')).cloned().collect();
    if sets.is_empty() && resets.is_empty() {
        let cfg = ap.effective_config();
        match rest {
            [] => {
                let v = json!(cfg);
                match a.opt("--format") {
                    Some("json") => {
                        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
                    }
                    _ => print!("{}", serde_yaml::to_string(&v).unwrap_or_default()),
                }
            }
            [key] => match cfg.get(key) {
                Some(Value::String(s)) => println!("{s}"),
                Some(Value::Null) => println!(),
                Some(v) => println!("{v}"),
                None => fail!("unknown option {key:?}"),
            },
            _ => usage!("give one key to read, or k=v pairs to set"),
        }
        return Ok(0);
    }
    if sets.len() != rest.len() {
        usage!("mixing keys to read with k=v pairs to set");
    }
    let parsed = schema::parse_config_pairs(&ap.meta.options, &sets)?;
    for r in &resets {
        if !ap.meta.options.contains_key(r) {
            fail!("unknown option {r:?}");
        }
    }
    let mut s = Session::open(g, false)?;
    {
        let mut core = s.core();
        if let Some(ap) = core.world.apps.get_mut(app.as_str()) {
            for r in &resets {
                ap.config.remove(r);
            }
            ap.config.extend(parsed);
        }
    }
    s.commit()?;
    Ok(0)
}

fn action_json(a: &Action) -> Value {
    json!({
        "id": a.id.to_string(),
        "status": a.status,
        "results": a.results,
        "message": a.message,
        "unit": a.unit,
        "log": a.log,
    })
}

fn run_action(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--format"], &["--string-args"])?;
    let fmt = a.format(&["json", "yaml"])?;
    if a.pos.len() < 2 {
        usage!("usage: jujusim run <unit|app/leader> <action> [k=v...]");
    }
    let (target, action, pairs) = (&a.pos[0], &a.pos[1], &a.pos[2..]);
    let params = schema::parse_params(pairs, a.flag("--string-args"))?;
    let resolve = |w: &World| -> Result<(String, Map<String, Value>)> {
        let unit = match target.strip_suffix("/leader") {
            Some(app) => {
                let ap = require_app(w, app)?;
                match &ap.leader {
                    Some(l) => l.clone(),
                    None => fail!("application {app:?} has no leader"),
                }
            }
            None => {
                require_unit(w, target)?;
                target.clone()
            }
        };
        let ap = &w.apps[app_of(&unit)];
        let Some(spec) = ap.meta.actions.get(action.as_str()) else {
            fail!("action {action:?} not defined on unit {unit:?}");
        };
        let p = schema::validate_action(action, spec, params.clone())?;
        Ok((unit, p))
    };
    let (_, w) = read_world(g)?;
    resolve(&w)?;
    let mut s = Session::open(g, false)?;
    let id = {
        let mut core = s.core();
        let (unit, p) = resolve(&core.world)?;
        let id = core.world.next_action;
        core.world.next_action += 1;
        core.world.actions.insert(
            id,
            Action {
                id,
                unit,
                name: action.clone(),
                params: Value::Object(p),
                status: "pending".into(),
                results: Map::new(),
                message: String::new(),
                log: Vec::new(),
            },
        );
        id
    };
    s.no_wait = false;
    s.commit()?;
    let act = s.core().world.actions.get(&id).cloned();
    let Some(act) = act else {
        fail!("action {id} vanished (its unit was removed)");
    };
    if act.status == "pending" {
        eprintln!(
            "ERROR action {id} is still pending: unit {} cannot run it now (not installed yet, or removed)",
            act.unit
        );
        return Ok(1);
    }
    match fmt.as_deref() {
        Some("json") => {
            let v = json!({ act.unit.clone(): action_json(&act) });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Some("yaml") => {
            let v = json!({ act.unit.clone(): action_json(&act) });
            print!("{}", serde_yaml::to_string(&v).unwrap_or_default());
        }
        _ => {
            for l in &act.log {
                eprintln!("{l}");
            }
            let mut shown = act.results.clone();
            shown.remove("return-code");
            let stdout = shown.remove("stdout");
            let stderr = shown.remove("stderr");
            if !shown.is_empty() {
                print!("{}", serde_yaml::to_string(&shown).unwrap_or_default());
            }
            if let Some(Value::String(o)) = stdout {
                print!("{o}");
            }
            if let Some(Value::String(e)) = stderr {
                eprint!("{e}");
            }
            if act.status != "completed" {
                eprintln!(
                    "ERROR action {} failed on {}: {}",
                    act.id, act.unit, act.message
                );
            }
        }
    }
    Ok(if act.status == "completed" { 0 } else { 1 })
}

// ---------------------------------------------------------------- status

fn display_status(u: &Unit) -> (Status, Status) {
    match &u.local.error {
        Some(e) => (
            Status {
                status: "error".into(),
                message: format!("hook failed: {:?}", e.hook.name()),
                since: u.agent.since.clone(),
            },
            Status {
                status: "idle".into(),
                message: String::new(),
                since: u.agent.since.clone(),
            },
        ),
        None => {
            let mut agent = u.agent.clone();
            if u.life != Life::Alive {
                agent.status = "executing".into();
                agent.message = "dying".into();
            }
            (u.workload.clone(), agent)
        }
    }
}

fn app_status(a: &App) -> Status {
    if let Some(s) = &a.status {
        return s.clone();
    }
    let rank = |s: &str| match s {
        "error" => 0,
        "blocked" => 1,
        "maintenance" => 2,
        "waiting" => 3,
        "active" => 4,
        _ => 5,
    };
    a.units
        .values()
        .map(|u| display_status(u).0)
        .min_by_key(|s| rank(&s.status))
        .unwrap_or_else(|| Status::new("unknown", ""))
}

fn st_json(s: &Status) -> Value {
    json!({"current": s.status, "message": s.message, "since": s.since})
}

pub fn status_json(w: &World) -> Value {
    let mut apps = Map::new();
    for a in w.apps.values() {
        let mut units = Map::new();
        for u in a.units.values() {
            let (wl, ag) = display_status(u);
            let ports: Vec<String> = u.ports.iter().map(|p| p.range.clone()).collect();
            units.insert(
                u.name.clone(),
                json!({
                    "workload-status": st_json(&wl),
                    "juju-status": st_json(&ag),
                    "leader": w.is_leader(&u.name),
                    "machine": u.machine.to_string(),
                    "public-address": w.address(u.host),
                    "open-ports": ports,
                    "life": if u.life == Life::Alive { "alive" } else { "dying" },
                }),
            );
        }
        let mut rels: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in w.relations.values().filter(|r| r.involves(&a.name)) {
            if let (Some(e), Some(remote)) = (r.end(&a.name), r.remote_app(&a.name)) {
                rels.entry(e.endpoint.clone())
                    .or_default()
                    .push(remote.to_string());
            }
        }
        apps.insert(
            a.name.clone(),
            json!({
                "charm": if a.stub { "(stub)".to_string() } else { a.meta.name.clone() },
                "charm-name": a.meta.name,
                "stub": a.stub,
                "life": if a.life == Life::Alive { "alive" } else { "dying" },
                "scale": a.units.len(),
                "version": a.workload_version,
                "application-status": st_json(&app_status(a)),
                "relations": rels,
                "units": units,
            }),
        );
    }
    let relations: Vec<Value> = w
        .relations
        .values()
        .map(|r| {
            json!({
                "id": r.id,
                "key": r.key(),
                "interface": r.interface,
                "peer": r.is_peer(),
                "life": if r.life == Life::Alive { "alive" } else { "dying" },
            })
        })
        .collect();
    json!({
        "model": {
            "name": w.name,
            "uuid": w.uuid,
            "version": w.juju_version,
            "addresses": format!("127.{}.{}.0/24", w.range.0, w.range.1),
        },
        "applications": apps,
        "relations": relations,
    })
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map(|s| s.chars().count()).unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn status(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--format"], &[])?;
    let fmt = a.format(&["json", "yaml", "tabular"])?;
    let (_, w) = read_world(g)?;
    let v = status_json(&w);
    match fmt.as_deref() {
        Some("json") => {
            println!("{}", serde_json::to_string(&v).unwrap_or_default());
            return Ok(0);
        }
        Some("yaml") => {
            print!("{}", serde_yaml::to_string(&v).unwrap_or_default());
            return Ok(0);
        }
        _ => {}
    }
    let mut out = table(&[
        vec!["Model".into(), "Juju".into(), "Addresses".into()],
        vec![
            w.name.clone(),
            w.juju_version.clone(),
            format!("127.{}.{}.0/24", w.range.0, w.range.1),
        ],
    ]);
    out.push('\n');
    let mut rows = vec![vec![
        "App".to_string(),
        "Version".into(),
        "Status".into(),
        "Scale".into(),
        "Charm".into(),
        "Message".into(),
    ]];
    for ap in w.apps.values() {
        let st = app_status(ap);
        rows.push(vec![
            ap.name.clone(),
            ap.workload_version.clone(),
            st.status,
            ap.units.len().to_string(),
            if ap.stub {
                "(stub)".into()
            } else {
                ap.meta.name.clone()
            },
            st.message,
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![vec![
        "Unit".to_string(),
        "Workload".into(),
        "Agent".into(),
        "Address".into(),
        "Message".into(),
    ]];
    for ap in w.apps.values() {
        for u in ap.units.values() {
            let (wl, ag) = display_status(u);
            let star = if w.is_leader(&u.name) { "*" } else { "" };
            rows.push(vec![
                format!("{}{star}", u.name),
                wl.status,
                ag.status,
                w.address(u.host),
                wl.message,
            ]);
        }
    }
    out.push_str(&table(&rows));
    let rels: Vec<&Relation> = w.relations.values().collect();
    if !rels.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "Integration provider".to_string(),
            "Requirer".into(),
            "Interface".into(),
            "Type".into(),
            "Id".into(),
        ]];
        for r in rels {
            let (p, q) = match r.ends.as_slice() {
                [one] => (
                    format!("{}:{}", one.app, one.endpoint),
                    format!("{}:{}", one.app, one.endpoint),
                ),
                [x, y, ..] => (
                    format!("{}:{}", x.app, x.endpoint),
                    format!("{}:{}", y.app, y.endpoint),
                ),
                [] => continue,
            };
            let kind = if r.is_peer() { "peer" } else { "regular" };
            let life = if r.life == Life::Alive {
                ""
            } else {
                " (dying)"
            };
            rows.push(vec![
                p,
                q,
                r.interface.clone(),
                format!("{kind}{life}"),
                r.id.to_string(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    print!("{out}");
    Ok(0)
}

fn show_unit(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--format"], &[])?;
    let fmt = a.format(&["json", "yaml"])?;
    let [unit] = a.pos.as_slice() else {
        usage!("usage: jujusim show-unit <unit> [--format json|yaml]");
    };
    let (_, w) = read_world(g)?;
    let u = require_unit(&w, unit)?;
    let app = app_of(unit);
    let mut rels = Vec::new();
    for r in w.relations.values().filter(|r| r.involves(app)) {
        let Some(e) = r.end(app) else { continue };
        let remote = r.remote_app(app).unwrap_or_default();
        let related_ep = r
            .ends
            .iter()
            .find(|x| x.app == remote)
            .map(|x| x.endpoint.clone())
            .unwrap_or_default();
        let mut related = Map::new();
        for m in w.remote_members(r, unit) {
            let bag = r
                .unit_bags
                .get(&m)
                .map(|s| s.data.clone())
                .unwrap_or_default();
            related.insert(m, json!({"in-scope": true, "data": bag}));
        }
        let local = u.local.relations.get(&r.id);
        rels.push(json!({
            "relation-id": r.id,
            "endpoint": e.endpoint,
            "related-endpoint": related_ep,
            "application-data": r.app_bags.get(remote).map(|s| s.data.clone()).unwrap_or_default(),
            "local-unit": {
                "in-scope": w.in_scope(r, unit),
                "data": r.unit_bags.get(unit).map(|s| s.data.clone()).unwrap_or_default(),
            },
            "related-units": related,
            "seen-members": local.map(|l| json!(l.members)).unwrap_or(Value::Null),
        }));
    }
    let (wl, ag) = display_status(u);
    let pending = scheduler::pending_summary(&w);
    let v = json!({ unit.clone(): {
        "workload-status": st_json(&wl),
        "juju-status": st_json(&ag),
        "leader": w.is_leader(unit),
        "life": if u.life == Life::Alive { "alive" } else { "dying" },
        "machine": u.machine.to_string(),
        "public-address": w.address(u.host),
        "workload-version": w.apps.get(app).map(|a| a.workload_version.clone()).unwrap_or_default(),
        "opened-ports": u.ports.iter().map(|p| format!("{} ({})", p.range, p.endpoint)).collect::<Vec<_>>(),
        "relation-info": rels,
        "state": u.state,
        "storage": u.storage,
        "agent-state": {
            "installed": u.local.installed,
            "started": u.local.started,
            "error": u.local.error.as_ref().map(|e| e.hook.name()),
            "pending": pending.get(unit.as_str()),
        },
        "charm-dir": Paths::new(g.model.clone()).charm_dir(unit),
        "workload-dir": Paths::new(g.model.clone()).workload_dir(unit),
    }});
    print_value(&v, fmt.as_deref().or(Some("yaml")));
    Ok(0)
}

// ---------------------------------------------------------------- time and faults

fn tick(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["-n"], &[])?;
    check_no_pos(&a, "usage: jujusim tick [-n N]")?;
    let n = a.count()?;
    let mut s = Session::open(g, false)?;
    let mut hooks = 0;
    for _ in 0..n {
        lifecycle::tick(&mut s.core().world);
        hooks += s.commit()?;
    }
    println!("ran {n} update-status tick(s) ({hooks} hooks)");
    Ok(0)
}

/// `exec <unit> -- <command> [args...]`: as `juju exec --unit`, runs a command in a hook
/// context on the unit (hook tools on its PATH); its writes are committed if it exits 0, and the
/// hooks they trigger run before the command returns (unless --no-wait).
fn exec(g: &Global, args: &[String]) -> Result<i32> {
    let Some(sep) = args.iter().position(|a| a == "--") else {
        usage!("usage: jujusim exec <unit> -- <command> [args...]");
    };
    let [unit] = &args[..sep] else {
        usage!("usage: jujusim exec <unit> -- <command> [args...]");
    };
    let argv = &args[sep + 1..];
    if argv.is_empty() {
        usage!("usage: jujusim exec <unit> -- <command> [args...]");
    }
    let mut s = Session::open(g, false)?;
    {
        let core = s.core();
        require_unit(&core.world, unit)?;
    }
    s.commit()?;
    let run = s.driver.run_exec(unit, argv)?;
    print!("{}", run.stdout);
    eprint!("{}", run.stderr);
    s.commit()?;
    Ok(if run.success() {
        0
    } else {
        run.exit_code.max(1)
    })
}

/// `step [-n N]`: runs at most N pending hooks (default 1) and stops, so a test can inject a
/// fault between two hooks. Prints how many ran and whether the model is now idle.
fn step(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["-n"], &[])?;
    check_no_pos(&a, "usage: jujusim step [-n N]")?;
    let n = a.count()? as usize;
    let mut s = Session::open(g, false)?;
    let ran = s.driver.run_steps(n);
    s.report();
    let ran = ran?;
    s.core().world.save(&s.paths)?;
    println!("ran {ran} hook(s){}", if ran < n { "; idle" } else { "" });
    Ok(0)
}

fn check_no_pos(a: &Args, usage_text: &str) -> Result<()> {
    if !a.pos.is_empty() {
        usage!("{usage_text}");
    }
    Ok(())
}

fn settle(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--timeout", "--format"], &[])?;
    check_no_pos(&a, "usage: jujusim settle [--timeout S] [--format json]")?;
    let fmt = a.format(&["json"])?;
    let timeout = match a.opt("--timeout") {
        Some(t) => parse_secs(t, "--timeout")?,
        None => Duration::from_secs(300),
    };
    let mut s = Session::open(g, false)?;
    let report = s.driver.settle(timeout);
    s.report();
    let report = report?;
    let ok = report.unsettled.is_empty();
    if fmt.as_deref() == Some("json") {
        let mut v = json!({"ticks": report.ticks, "hooks": report.hooks, "seconds": (report.seconds * 1000.0).round() / 1000.0});
        if !ok {
            v["unsettled"] = json!(report.unsettled);
        }
        println!("{v}");
    } else if ok {
        println!("settled after {} ticks", report.ticks);
    }
    if !ok {
        eprintln!(
            "ERROR not settled after {:.1} s ({} ticks, {} hooks); still unsettled:\n  {}",
            report.seconds,
            report.ticks,
            report.hooks,
            report.unsettled.join("\n  ")
        );
        return Ok(1);
    }
    Ok(0)
}

fn resolve(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &["--no-retry"])?;
    let [unit] = a.pos.as_slice() else {
        usage!("usage: jujusim resolve <unit> [--no-retry]");
    };
    let (_, w) = read_world(g)?;
    if require_unit(&w, unit)?.local.error.is_none() {
        fail!("unit {unit:?} is not in an error state");
    }
    let mut s = Session::open(g, false)?;
    {
        let mut core = s.core();
        let paths = s.paths.clone();
        let mut skipped = None;
        if let Some(u) = core.world.unit_mut(unit) {
            if a.flag("--no-retry") {
                // Skip the failed hook: its local-state change is committed without running it.
                skipped = u.local.error.take().map(|e| e.hook);
                u.agent = Status::new("idle", "");
            } else if let Some(e) = &mut u.local.error {
                e.retry = true;
            }
        }
        if let Some(spec) = skipped {
            lifecycle::skip(&mut core.world, &paths, unit, &spec);
        }
    }
    s.commit()?;
    Ok(0)
}

fn kill_workload(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    let [unit] = a.pos.as_slice() else {
        usage!("usage: jujusim kill-workload <unit>");
    };
    let (paths, w) = read_world(g)?;
    require_unit(&w, unit)?;
    let killed = procs::kill_now(&paths.workload_dir(unit));
    if killed.is_empty() {
        println!("no live workload process for {unit}");
    }
    for p in killed {
        println!(
            "killed {unit} workload process {} ({})",
            p.pid,
            p.file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
    }
    Ok(0)
}

fn log(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--unit", "--format"], &[])?;
    check_no_pos(&a, "usage: jujusim log [--unit U] [--format json]")?;
    let fmt = a.format(&["json"])?;
    let paths = Paths::new(g.model.clone());
    if !paths.model_json().is_file() {
        World::load(&paths)?;
    }
    let mut entries = timeline::read(&paths)?;
    timeline::mark_overlaps(&mut entries);
    if let Some(u) = a.opt("--unit") {
        entries.retain(|e| e.unit == u);
    }
    if fmt.as_deref() == Some("json") {
        println!(
            "{}",
            serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into())
        );
        return Ok(0);
    }
    let mut rows = vec![vec![
        "Seq".to_string(),
        "Unit".into(),
        "Hook".into(),
        "Exit".into(),
        "Time".into(),
        "Tools".into(),
        "Overlaps".into(),
        "".into(),
    ]];
    for e in &entries {
        let what = match (&e.hook, &e.action) {
            (Some(h), _) => h.clone(),
            (None, Some(a)) => format!("action {a}"),
            _ => String::new(),
        };
        let mark = if e.timed_out {
            "<-- TIMED OUT"
        } else if e.commit_error.is_some() {
            "<-- COMMIT FAILED"
        } else if e.exit_code != 0 {
            "<-- FAILED"
        } else {
            ""
        };
        rows.push(vec![
            e.seq.to_string(),
            e.unit.clone(),
            what,
            e.exit_code.to_string(),
            format!("{}ms", e.duration_ms),
            e.tool_calls.len().to_string(),
            e.overlaps
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
            mark.to_string(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

/// `revoke-leader <app>`: the leader's agent cannot renew its lease; another alive unit claims
/// it (Juju 3 runs no leader-deposed: the old leader only sees `is-leader` false).
fn revoke_leader(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    let [app] = a.pos.as_slice() else {
        usage!("usage: jujusim revoke-leader <app>");
    };
    let mut s = Session::open(g, false)?;
    let new = {
        let mut core = server::lock(&s.shared);
        let w = &mut core.world;
        let ap = require_app(w, app)?;
        if ap.stub {
            fail!("{app:?} is a stub application: it has no agents");
        }
        scheduler::revoke_leader(w, app, s.driver.rng())
    };
    s.commit()?;
    match new {
        Some(u) => println!("{u} leads {app} now"),
        None => println!("{app} has no leader now"),
    }
    Ok(0)
}

fn destroy(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    check_no_pos(&a, "usage: jujusim destroy")?;
    let paths = Paths::new(g.model.clone());
    if !paths.root.exists() {
        println!("no model at {}: nothing to destroy", paths.root.display());
        return Ok(0);
    }
    let looks_like_model =
        paths.model_json().exists() || paths.lock().exists() || paths.root.join("units").is_dir();
    if !looks_like_model {
        fail!(
            "{} does not look like a jujusim model (no model.json): not removing it",
            paths.root.display()
        );
    }
    let _lock = ModelLock::acquire(&paths, Duration::from_secs(900))?;
    let world = World::load(&paths).ok();
    let mut dirs = Vec::new();
    if let Ok(entries) = fs::read_dir(paths.root.join("units")) {
        for e in entries.flatten() {
            dirs.push(e.path().join("workload"));
        }
    }
    let stopped = procs::stop_all(&dirs);
    if let Some(w) = &world {
        if let Ok(r) = loopback::Range::reopen_for_dir(w.range.0, w.range.1, &paths.root) {
            r.release();
        }
        let sock = paths.socket(&w.uuid);
        if !sock.starts_with(&paths.root) {
            let _ = fs::remove_file(sock);
        }
    }
    fs::remove_dir_all(&paths.root).map_err(|e| SimError::io("cannot remove", &paths.root, e))?;
    println!(
        "destroyed model {} (stopped {} workload process{})",
        paths.root.display(),
        stopped.len(),
        if stopped.len() == 1 { "" } else { "es" }
    );
    Ok(0)
}
