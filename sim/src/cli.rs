//! The `jujusim` command line: Juju-like commands on a model directory. This module only parses
//! arguments, calls the model operations (`ops`, which validate fully before they change
//! anything) under a `Session`, and prints (`render`). Every command that changes the model then
//! runs hooks until the model is idle, unless `--no-wait`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::charm::{self, Meta, Role};
use crate::error::{Result, SimError};
use crate::lifecycle;
use crate::model::{parse_unit, ModelLock, Paths, World};
use crate::ops;
use crate::procs;
use crate::render;
use crate::schema;
use crate::session::{read_world, Session};
use crate::timeline;
use crate::tools::server::{self, Pause};
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
  refresh <app> --path <charm dir|.charm> [--force-units]
                       a new revision of the application's charm; each unit deploys it and
                       runs upgrade-charm (units in hook error too with --force-units)
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
  destroy              stop the model's agent and workloads, remove the model
  agent                the model's background agent (the juju front end starts and stops it)
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
/// The global options for the model in `dir`, from the environment otherwise (for the `juju`
/// front end, which names models instead of directories).
pub fn global_for(dir: &std::path::Path) -> Result<Global> {
    let (g, _, _) = parse_global(vec!["--model".into(), dir.to_string_lossy().into_owned()])?;
    Ok(g)
}

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
    // `jujusim juju ...` is the `juju` front end: its options are Juju's, not jujusim's.
    if argv.first().map(String::as_str) == Some("juju") {
        return Ok(crate::juju_cli::main(argv[1..].to_vec()));
    }
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
        "refresh" | "upgrade-charm" => refresh(&g, &args),
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
        "agent" => {
            let a = Args::parse(&args, &[], &[])?;
            check_no_pos(&a, "usage: jujusim agent")?;
            crate::agent::run(&g)
        }
        other => usage!("unknown command {other:?} (see `jujusim help`)"),
    }
}

fn print_value(v: &Value, format: Option<&str>) {
    match format {
        Some("yaml") => print!("{}", serde_yaml::to_string(v).unwrap_or_default()),
        _ => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
}

// ---------------------------------------------------------------- model operations

fn parse_to(a: &Args) -> Result<Option<u32>> {
    match a.opt("--to") {
        None => Ok(None),
        Some(v) => match v.parse() {
            Ok(m) => Ok(Some(m)),
            Err(_) => usage!("--to takes a machine number, got {v:?}"),
        },
    }
}

/// Validates a charm before anything touches the model: unpacked (or copied) into a scratch
/// directory and its metadata read. The scratch directory goes when the first value drops.
fn stage_charm(src: &Path) -> Result<(tempfile::TempDir, PathBuf, Meta)> {
    if !src.exists() {
        fail!(
            "charm {} not found: give a charm directory or a .charm file",
            src.display()
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("jujusim-charm")
        .tempdir()
        .map_err(|e| SimError::Failed(format!("cannot create a temporary directory: {e}")))?;
    let staged = scratch.path().join("charm");
    charm::install(src, &staged)?;
    let meta = Meta::read(&staged)?;
    Ok((scratch, staged, meta))
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
    let (scratch, staged, meta) = stage_charm(&src)?;
    let app = app_arg.unwrap_or_else(|| meta.name.clone());
    let config = schema::parse_config_pairs(&meta.options, &a.all("--config"))?;
    let fresh = World::new("", (0, 0));
    let saved = if Paths::new(g.model.clone()).model_json().is_file() {
        Some(read_world(g)?.1)
    } else {
        None
    };
    ops::check_deploy(saved.as_ref().unwrap_or(&fresh), &app, n, to)?;
    let mut s = Session::open(g, true)?;
    {
        let paths = s.paths.clone();
        let d = ops::Deploy {
            app: app.clone(),
            meta,
            config,
            n,
            to,
            seed: g.seed,
        };
        ops::deploy(&mut s.core().world, &paths, &staged, d)?;
    }
    // The charm is in the model now: the scratch copy goes before the hooks run, so a deploy
    // killed while its hooks run leaves nothing behind in the temporary directory.
    drop(scratch);
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

/// `refresh <app> --path <charm> [--force-units]` (Juju's `juju refresh --path`): like
/// deploy, the charm is unpacked and read in a scratch directory and checked against the
/// application (same charm name, no relation or storage in use dropped) before the model
/// changes; then the application has a new revision and its units upgrade as their agents get
/// to it (files, then upgrade-charm, then config-changed).
fn refresh(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--path"], &["--force-units"])?;
    let [app] = a.pos.as_slice() else {
        usage!("usage: jujusim refresh <app> --path <charm dir|.charm> [--force-units]");
    };
    let Some(src) = a.opt("--path") else {
        usage!(
            "refresh needs --path <charm dir|.charm>: jujusim has no charm store to refresh from"
        );
    };
    let src = PathBuf::from(src);
    let (scratch, staged, meta) = stage_charm(&src)?;
    ops::check_refresh(&read_world(g)?.1, app, &meta)?;
    let name = meta.name.clone();
    let mut s = Session::open(g, false)?;
    let plan = {
        let paths = s.paths.clone();
        ops::refresh(
            &mut s.core().world,
            &paths,
            &staged,
            app,
            meta,
            a.flag("--force-units"),
        )?
    };
    drop(scratch);
    for d in &plan.dropped {
        eprintln!("jujusim: setting dropped by the refresh: {d}");
    }
    println!(
        "Added local charm {name:?}, revision {}, to the model",
        plan.revision
    );
    println!("refreshing application {app:?}");
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
    if Paths::new(g.model.clone()).model_json().is_file() {
        ops::check_deploy_stub(&read_world(g)?.1, app)?;
    } else {
        ops::check_deploy_stub(&World::new("", (0, 0)), app)?;
    }
    let mut s = Session::open(g, true)?;
    let unit = {
        let paths = s.paths.clone();
        ops::deploy_stub(&mut s.core().world, &paths, app, &ep, role, &iface)?
    };
    println!(
        "Deployed stub {app:?} ({} {ep}:{iface}) with unit {unit}",
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
    ops::check_add_units(&read_world(g)?.1, app, n, to)?;
    let mut s = Session::open(g, false)?;
    let added = {
        let paths = s.paths.clone();
        ops::add_units(&mut s.core().world, &paths, app, n, to)?
    };
    println!("Added {}", added.join(", "));
    s.commit()?;
    Ok(0)
}

fn remove_unit(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    if a.pos.is_empty() {
        usage!("usage: jujusim remove-unit <unit>...");
    }
    ops::check_remove_units(&read_world(g)?.1, &a.pos)?;
    let mut s = Session::open(g, false)?;
    {
        let paths = s.paths.clone();
        ops::remove_units(&mut s.core().world, &paths, &a.pos)?;
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
    ops::check_remove_application(&read_world(g)?.1, app)?;
    let mut s = Session::open(g, false)?;
    {
        let paths = s.paths.clone();
        ops::remove_application(&mut s.core().world, &paths, app)?;
    }
    println!("Removing application {app:?}");
    s.commit()?;
    Ok(0)
}

fn integrate(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    let [x, y] = a.pos.as_slice() else {
        usage!("usage: jujusim integrate <app[:endpoint]> <app[:endpoint]>");
    };
    ops::check_integrate(&read_world(g)?.1, x, y)?;
    let mut s = Session::open(g, false)?;
    {
        let mut core = s.core();
        let id = ops::integrate(&mut core.world, x, y)?;
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
    ops::check_remove_relation(&read_world(g)?.1, x, y)?;
    let mut s = Session::open(g, false)?;
    {
        let mut core = s.core();
        let key = ops::check_remove_relation(&core.world, x, y)
            .map(|id| core.world.relations[&id].key())?;
        ops::remove_relation(&mut core.world, x, y)?;
        println!("Removing relation {key}");
    }
    s.commit()?;
    Ok(0)
}

fn set_data(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &[], &[])?;
    if a.pos.len() < 3 {
        usage!("usage: jujusim set-data <stub app|stub unit> <endpoint> k=v...");
    }
    let (target, endpoint, pairs) = (&a.pos[0], &a.pos[1], &a.pos[2..]);
    let kv = ops::parse_pairs(pairs)?;
    ops::check_set_data(&read_world(g)?.1, target, endpoint)?;
    let mut s = Session::open(g, false)?;
    ops::set_data(&mut s.core().world, target, endpoint, &kv)?;
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
    let v = render::relation_data_json(&w, target, endpoint, a.flag("--reveal-secrets"))?;
    print_value(&v, fmt.as_deref().or(Some("yaml")));
    Ok(0)
}

fn config(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--reset", "--format"], &[])?;
    let Some((app, rest)) = a.pos.split_first() else {
        usage!("usage: jujusim config <app> [key | k=v... | --reset k1,k2]");
    };
    let (_, w) = read_world(g)?;
    let ap = ops::require_app(&w, app)?;
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
    ops::check_config(&w, app, &sets, &resets)?;
    let mut s = Session::open(g, false)?;
    ops::set_config(&mut s.core().world, app, &sets, &resets)?;
    s.commit()?;
    Ok(0)
}

fn run_action(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--format"], &["--string-args"])?;
    let fmt = a.format(&["json", "yaml"])?;
    if a.pos.len() < 2 {
        usage!("usage: jujusim run <unit|app/leader> <action> [k=v...]");
    }
    let (target, action, pairs) = (&a.pos[0], &a.pos[1], &a.pos[2..]);
    let params = schema::parse_params(pairs, a.flag("--string-args"))?;
    ops::check_action(&read_world(g)?.1, target, action, &params)?;
    let mut s = Session::open(g, false)?;
    let id = ops::queue_action(&mut s.core().world, target, action, &params)?;
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
            let v = json!({ act.unit.clone(): render::action_json(&act) });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Some("yaml") => {
            let v = json!({ act.unit.clone(): render::action_json(&act) });
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

fn status(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--format"], &[])?;
    let fmt = a.format(&["json", "yaml", "tabular"])?;
    let (_, w) = read_world(g)?;
    let v = render::status_json(&w);
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
    print!("{}", render::status_table(&w));
    Ok(0)
}

fn show_unit(g: &Global, args: &[String]) -> Result<i32> {
    let a = Args::parse(args, &["--format"], &[])?;
    let fmt = a.format(&["json", "yaml"])?;
    let [unit] = a.pos.as_slice() else {
        usage!("usage: jujusim show-unit <unit> [--format json|yaml]");
    };
    let (paths, w) = read_world(g)?;
    let v = render::unit_json(&w, &paths, unit)?;
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
        ops::require_unit(&core.world, unit)?;
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
    ops::check_resolve(&read_world(g)?.1, unit)?;
    let mut s = Session::open(g, false)?;
    {
        let paths = s.paths.clone();
        ops::resolve(&mut s.core().world, &paths, unit, a.flag("--no-retry"))?;
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
    ops::require_unit(&w, unit)?;
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
    print!("{}", render::log_table(&entries));
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
        let rng = s.driver.rng();
        ops::revoke_leader(&mut server::lock(&s.shared).world, app, rng)?
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
    let _ = fs::write(crate::agent::destroying_file(&paths), b"");
    let agent = crate::agent::stop(&paths, g.hook_timeout + Duration::from_secs(30));
    let _lock = match ModelLock::acquire(&paths, Duration::from_secs(900)) {
        Ok(l) => l,
        Err(e) => {
            let _ = fs::remove_file(crate::agent::destroying_file(&paths));
            return Err(e);
        }
    };
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
        "destroyed model {} (stopped {} workload process{}{})",
        paths.root.display(),
        stopped.len(),
        if stopped.len() == 1 { "" } else { "es" },
        match agent {
            Some(pid) if pid > 0 => format!(" and agent {pid}"),
            _ => String::new(),
        }
    );
    Ok(0)
}
