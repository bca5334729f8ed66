//! The `juju` command line (issue 16): the binary run as `juju` (argv[0], or `jujusim juju ...`)
//! answers Juju 3.6's syntax for what jubilant calls, over jujusim models named like Juju's:
//! `add-model`, `destroy-model`, `show-model`, `status`, `version`, `deploy`, `refresh`,
//! `add-unit`, `remove-unit`, `remove-application`, `integrate`/`relate`, `remove-relation`,
//! `config`, `model-config`, `run`, `exec`, `show-unit`, `secrets`, `show-secret`, `add-secret`,
//! `grant-secret`, `debug-log`. Any other command, and any flag that would change meaning,
//! fails as Juju's usage errors do, saying jujusim does not support it.
//!
//! As with Juju, a command that changes the model returns once the change is recorded: the
//! model's agent (`crate::agent`, one background process per model, started on `add-model` or
//! the first command on a model, stopped by `destroy-model`) runs the hooks, and `juju status`
//! polling (jubilant's `wait`) watches them. `juju run` waits for its task, as Juju 3's does.
//!
//! Models live in `<root>/models/<name>`, the root being `$JUJUSIM_ROOT`, else
//! `$JUJU_DATA/jujusim`, else `$HOME/.local/share/juju/jujusim`; the current model (what
//! `juju` without `--model` uses) is named in `<root>/current-model`. `--model` / `-m` take
//! `[controller:][user/]model`, as Juju does; controller and user are accepted and ignored (one
//! controller, one user). Flags may come anywhere on the line, as Go's gnuflag allows.

mod info;
mod tasks;

use std::path::{Path, PathBuf};

use crate::error::{Result, SimError};
use crate::model::{Paths, World, JUJU_VERSION};
use crate::render;

/// Entry point; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ERROR {e}");
            e.exit_code()
        }
    }
}

/// The models' root directory.
pub fn root() -> PathBuf {
    if let Some(r) = std::env::var_os("JUJUSIM_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    if let Some(d) = std::env::var_os("JUJU_DATA").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("jujusim");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".local/share/juju/jujusim")
}

/// `[controller:][user/]model` -> the model's name.
fn model_name(arg: &str) -> &str {
    let no_controller = arg.rsplit_once(':').map_or(arg, |(_, m)| m);
    no_controller
        .rsplit_once('/')
        .map_or(no_controller, |(_, m)| m)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}

/// A parsed command line: the subcommand, its positionals, its flags (name -> values, in order).
struct Line {
    cmd: String,
    pos: Vec<String>,
    flags: Vec<(String, Option<String>)>,
}

impl Line {
    /// `with_value` lists the flags that take a value (`--f v` or `--f=v`); the rest are
    /// booleans. `--model`/`-m` always take one.
    fn parse(args: &[String], with_value: &[&str]) -> Result<Line> {
        let Some((cmd, rest)) = args.split_first() else {
            return Err(SimError::Usage(
                "no command given (jujusim's juju front end answers add-model, destroy-model, status, version)"
                    .into(),
            ));
        };
        let mut pos = Vec::new();
        let mut flags = Vec::new();
        let mut it = rest.iter();
        while let Some(a) = it.next() {
            if a == "--" {
                pos.extend(it.by_ref().cloned());
                break;
            }
            if !a.starts_with('-') || a == "-" {
                pos.push(a.clone());
                continue;
            }
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (a.clone(), None),
            };
            if name == "-o" || name == "--output" {
                return Err(SimError::Usage(format!(
                    "jujusim does not support {name} (writing the output to a file): redirect stdout instead"
                )));
            }
            let takes = name == "--model" || name == "-m" || with_value.contains(&name.as_str());
            let value = match (takes, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => match it.next() {
                    Some(v) => Some(v.clone()),
                    None => {
                        return Err(SimError::Usage(format!("option needs an argument: {name}")))
                    }
                },
                // A boolean flag given a value, as Go's flag package reads it.
                (false, Some(v)) => match v.as_str() {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => None,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => continue,
                    _ => {
                        return Err(SimError::Usage(format!(
                            "invalid boolean value {v:?} for flag {name}"
                        )))
                    }
                },
                (false, None) => None,
            };
            flags.push((name, value));
        }
        Ok(Line {
            cmd: cmd.clone(),
            pos,
            flags,
        })
    }

    fn value(&self, names: &[&str]) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| names.contains(&n.as_str()))
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value of a repeatable flag that takes comma-separated lists (`--reset a,b --reset c`).
    fn list(&self, names: &[&str]) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .filter_map(|(_, v)| v.as_deref())
            .flat_map(|v| v.split(','))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }

    /// Refuses flags this command does not know: never silently ignore one that changes
    /// meaning.
    fn only(&self, known: &[&str]) -> Result<()> {
        for (n, _) in &self.flags {
            if n != "--model" && n != "-m" && !known.contains(&n.as_str()) {
                return Err(SimError::Usage(format!(
                    "option provided but not defined: {n} (jujusim's juju {} does not support it)",
                    self.cmd
                )));
            }
        }
        Ok(())
    }

    /// The model this command is about: `--model`, else the current one.
    fn model(&self, root: &Path) -> Result<(String, PathBuf)> {
        let name = match self.value(&["--model", "-m"]) {
            Some(m) => model_name(m).to_string(),
            None => std::fs::read_to_string(root.join("current-model"))
                .map(|s| s.trim().to_string())
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    SimError::Failed("no current model specified: use --model or add-model".into())
                })?,
        };
        let dir = root.join("models").join(&name);
        Ok((name, dir))
    }
}

fn run(args: Vec<String>) -> Result<i32> {
    let root = root();
    let cmd = args.first().map(String::as_str).unwrap_or_default();
    match cmd {
        "version" => version(&Line::parse(&args, &["--format", "-o", "--output"])?),
        "add-model" => add_model(
            &root,
            &Line::parse(&args, &["--config", "--controller", "-c", "--credential", "--owner"])?,
        ),
        "destroy-model" => destroy_model(
            &root,
            &Line::parse(&args, &["--timeout", "-t", "--model"])?,
        ),
        "status" => status(&root, &Line::parse(&args, &["--format", "-o", "--output"])?),
        "deploy" => deploy(
            &root,
            &Line::parse(
                &args,
                &[
                    "--config", "-n", "--num-units", "--to", "--base", "--channel", "--constraints",
                    "--bind", "--resource", "--revision", "--storage", "--attach-storage",
                    "--overlay", "--series",
                ],
            )?,
        ),
        "refresh" => refresh(
            &root,
            &Line::parse(
                &args,
                &[
                    "--path", "--channel", "--revision", "--switch", "--base", "--series",
                    "--config", "--resource", "--storage", "--bind",
                ],
            )?,
        ),
        "add-unit" => add_unit(
            &root,
            &Line::parse(&args, &["-n", "--num-units", "--to", "--attach-storage"])?,
        ),
        "remove-unit" => remove_units(&root, &Line::parse(&args, &["--num-units"])?),
        "remove-application" => remove_applications(&root, &Line::parse(&args, &[])?),
        "integrate" | "relate" => relation_change(&root, &Line::parse(&args, &["--via"])?, "integrate"),
        "remove-relation" => relation_change(&root, &Line::parse(&args, &[])?, "remove-relation"),
        "config" => config(&root, &Line::parse(&args, &["--format", "-o", "--output", "--reset", "--file"])?),
        "model-config" => info::model_config(
            &root,
            &Line::parse(&args, &["--format", "-o", "--output", "--reset", "--file"])?,
        ),
        "run" => tasks::run(
            &root,
            &Line::parse(&args, &["--format", "-o", "--output", "--params", "--wait"])?,
        ),
        "exec" => tasks::exec(
            &root,
            &Line::parse(
                &args,
                &[
                    "--format", "-o", "--output", "--unit", "-u", "--machine", "--application",
                    "-a", "--wait", "--execution-group",
                ],
            )?,
        ),
        "show-unit" => info::show_unit(
            &root,
            &Line::parse(&args, &["--format", "-o", "--output", "--app", "--endpoint", "--related-unit"])?,
        ),
        "show-model" => info::show_model(&root, &Line::parse(&args, &["--format", "-o", "--output"])?),
        "secrets" | "list-secrets" => info::secrets(
            &root,
            &Line::parse(&args, &["--format", "-o", "--output", "--owner"])?,
        ),
        "show-secret" => info::show_secret(
            &root,
            &Line::parse(&args, &["--format", "--revision", "-r"])?,
        ),
        "add-secret" => info::add_secret(&root, &Line::parse(&args, &["--file", "--info"])?),
        "grant-secret" => info::grant_secret(&root, &Line::parse(&args, &[])?),
        "debug-log" => info::debug_log(
            &root,
            &Line::parse(&args, &["--limit", "-n", "--lines", "--include", "-i", "--level", "-l"])?,
        ),
        "" => Err(SimError::Usage("no command given".into())),
        other => Err(SimError::Usage(format!(
            "jujusim does not support \"juju {other}\": its juju front end answers add-model, destroy-model, show-model, status, version, deploy, refresh, add-unit, remove-unit, remove-application, integrate, remove-relation, config, model-config, run, exec, show-unit, secrets, show-secret, add-secret, grant-secret and debug-log (see sim/README.md)"
        ))),
    }
}

fn version(l: &Line) -> Result<i32> {
    l.only(&["--format", "-o", "--output", "--all"])?;
    let full = format!("{JUJU_VERSION}-genericlinux-amd64");
    match (l.value(&["--format"]), l.has("--all")) {
        (Some("json"), true) => println!(
            "{}",
            serde_json::json!({
                "version": full,
                "git-commit": format!("jujusim-{}", env!("CARGO_PKG_VERSION")),
                "git-tree-state": "clean",
                "compiler": "jujusim",
                "go-version": "none (jujusim)",
                "official-build": false,
            })
        ),
        (Some("json"), false) => println!("{}", serde_json::json!(full)),
        (Some("yaml"), _) => println!("{full}"),
        (Some(f), _) if f != "smart" => {
            return Err(SimError::Usage(format!(
                "invalid value {f:?} for option --format: unknown format"
            )))
        }
        _ => println!("{full}"),
    }
    Ok(0)
}

fn add_model(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--no-switch",
        "--config",
        "--controller",
        "-c",
        "--credential",
        "--owner",
    ])?;
    let [name, ..] = l.pos.as_slice() else {
        return Err(SimError::Usage("model name required".into()));
    };
    if l.pos.len() > 2 {
        return Err(SimError::Usage(format!(
            "unrecognized args: {:?}",
            &l.pos[2..]
        )));
    }
    let mut config = Vec::new();
    for (f, v) in &l.flags {
        if let ("--config", Some(v)) = (f.as_str(), v) {
            if std::path::Path::new(v).is_file() || !v.contains('=') {
                return Err(SimError::Usage(format!(
                    "jujusim takes --config as key=value only, not a file ({v:?})"
                )));
            }
            let (k, val) = v.split_once('=').unwrap_or((v, ""));
            config.push((k.to_string(), info::model_value(k, val)?));
        }
    }
    if !valid_name(name) {
        return Err(SimError::Failed(format!(
            "{name:?} is not a valid name: model names may only contain lowercase letters, digits and hyphens"
        )));
    }
    let dir = root.join("models").join(name);
    if Paths::new(dir.clone()).model_json().is_file() {
        return Err(SimError::Failed(format!(
            "failed to create new model: model \"admin/{name}\" already exists"
        )));
    }
    std::fs::create_dir_all(root.join("models"))
        .map_err(|e| SimError::io("cannot create", &root.join("models"), e))?;
    let g = crate::cli::global_for(&dir)?;
    {
        let mut s = crate::session::Session::open(&g, true)?;
        s.core().world.model_config.extend(config);
        s.no_wait = true;
        s.commit()?;
    }
    crate::agent::ensure(&dir)?;
    if !l.has("--no-switch") {
        std::fs::write(root.join("current-model"), format!("{name}\n"))
            .map_err(|e| SimError::io("cannot write", &root.join("current-model"), e))?;
    }
    eprintln!(
        "Added '{name}' model on localhost/localhost with credential 'jujusim' for user 'admin'"
    );
    Ok(0)
}

fn destroy_model(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--no-prompt",
        "-y",
        "--destroy-storage",
        "--release-storage",
        "--force",
        "--no-wait",
        "--timeout",
        "-t",
    ])?;
    let [arg] = l.pos.as_slice() else {
        return Err(SimError::Usage("no model specified".into()));
    };
    let name = model_name(arg);
    let dir = root.join("models").join(name);
    if !Paths::new(dir.clone()).model_json().is_file() {
        return Err(SimError::Failed(format!("model admin/{name} not found")));
    }
    let code = crate::cli::main(vec![
        "--model".into(),
        dir.to_string_lossy().into_owned(),
        "destroy".into(),
    ]);
    if code == 0 {
        let current = root.join("current-model");
        if std::fs::read_to_string(&current).is_ok_and(|c| c.trim() == name) {
            let _ = std::fs::remove_file(current);
        }
    }
    Ok(code)
}

/// The model a command works on: it must exist (as in Juju, where a model is added before
/// anything is deployed to it), and its agent runs (started if it does not).
fn ensure_model(root: &Path, l: &Line) -> Result<PathBuf> {
    let (name, dir) = l.model(root)?;
    if !Paths::new(dir.clone()).model_json().is_file() {
        return Err(SimError::Failed(format!(
            "model \"admin/{name}\" not found"
        )));
    }
    crate::agent::ensure(&dir)?;
    Ok(dir)
}

/// Runs jujusim's own command line on the model in `dir`, recording the change only: the
/// model's agent runs the hooks.
fn sim(dir: &Path, args: Vec<String>) -> i32 {
    let mut argv = vec![
        "--model".to_string(),
        dir.to_string_lossy().into_owned(),
        "--no-wait".to_string(),
    ];
    argv.extend(args);
    crate::cli::main(argv)
}

/// The model's lock and world, for a change that the agent will act on (no hooks run here).
fn session(dir: &Path) -> Result<crate::session::Session> {
    let mut g = crate::cli::global_for(dir)?;
    g.no_wait = true;
    crate::session::Session::open(&g, false)
}

/// Prints `v` as `--format` asks: `json` (one line, as Juju), else YAML (Juju's default for
/// these commands).
fn print_as(l: &Line, v: &serde_json::Value, _default: &str) -> Result<i32> {
    match l.value(&["--format", "-o", "--output"]) {
        Some("json") => println!("{}", serde_json::to_string(v).unwrap_or_default()),
        None | Some("yaml") | Some("tabular") | Some("summary") => {
            print!("{}", serde_yaml::to_string(v).unwrap_or_default())
        }
        Some(f) => {
            return Err(SimError::Usage(format!(
                "invalid value {f:?} for option --format: unknown format"
            )))
        }
    }
    Ok(0)
}

/// Flags jujusim cannot honour: refused, with what it does not model.
fn refuse(l: &Line, flags: &[&str]) -> Result<()> {
    for f in flags {
        if l.has(f) {
            return Err(SimError::Usage(format!(
                "jujusim does not support {f} for juju {} yet",
                l.cmd
            )));
        }
    }
    Ok(())
}

fn count(l: &Line) -> Result<Option<String>> {
    match l.value(&["-n", "--num-units"]) {
        None => Ok(None),
        Some(n) if n.parse::<u32>().is_ok_and(|n| n >= 1) => Ok(Some(n.to_string())),
        Some(n) => Err(SimError::Usage(format!(
            "invalid value {n:?} for option -n: must be a positive number"
        ))),
    }
}

fn deploy(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--config",
        "-n",
        "--num-units",
        "--to",
        "--base",
        "--channel",
        "--constraints",
        "--bind",
        "--resource",
        "--revision",
        "--storage",
        "--attach-storage",
        "--overlay",
        "--series",
        "--trust",
        "--force",
    ])?;
    // --trust grants the charm cloud credentials, which jujusim has none of (accepted: the
    // charm sees no difference until it asks, and credential-get fails either way); --channel
    // chooses what a store would serve, and jujusim deploys local charms only. Every machine
    // is ubuntu 22.04 (status says so): another base is refused, not ignored.
    for (flag, ours) in [("--base", "ubuntu@22.04"), ("--series", "jammy")] {
        if let Some(b) = l.value(&[flag]) {
            if b != ours {
                return Err(SimError::Usage(format!(
                    "jujusim's machines are {ours}: it does not support deploying with {flag} {b}"
                )));
            }
        }
    }
    refuse(
        l,
        &[
            "--constraints",
            "--bind",
            "--resource",
            "--revision",
            "--storage",
            "--attach-storage",
            "--overlay",
            "--channel",
        ],
    )?;
    let dir = ensure_model(root, l)?;
    let (charm, app) = match l.pos.as_slice() {
        [c] => (c.clone(), None),
        [c, a] => (c.clone(), Some(a.clone())),
        _ => {
            return Err(SimError::Usage(
                "deploy takes a charm and an optional application name".into(),
            ))
        }
    };
    if !(charm.starts_with('.') || charm.starts_with('/')) {
        return Err(SimError::Usage(format!(
            "jujusim deploys local charms only (a path starting with ./ or /), not {charm:?} from Charmhub"
        )));
    }
    let mut args = vec!["deploy".to_string(), charm];
    args.extend(app);
    if let Some(n) = count(l)? {
        args.extend(["-n".into(), n]);
    }
    for (f, v) in &l.flags {
        if let ("--config", Some(v)) = (f.as_str(), v) {
            args.extend(["--config".into(), v.clone()]);
        }
    }
    if let Some(to) = l.value(&["--to"]) {
        args.extend(["--to".into(), to.to_string()]);
    }
    Ok(sim(&dir, args))
}

/// `juju refresh <app> --path <charm> [--force-units]`: a local charm only (jujusim has no
/// Charmhub: `--channel`, `--revision`, `--switch` are refused, as is a refresh without
/// `--path`); `--force` (LXD profiles), `--force-base` and `--trust` change nothing here.
fn refresh(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--path",
        "--force-units",
        "--force",
        "--force-base",
        "--force-series",
        "--trust",
        "--channel",
        "--revision",
        "--switch",
        "--base",
        "--series",
        "--config",
        "--resource",
        "--storage",
        "--bind",
    ])?;
    for (flag, ours) in [("--base", "ubuntu@22.04"), ("--series", "jammy")] {
        if let Some(b) = l.value(&[flag]) {
            if b != ours {
                return Err(SimError::Usage(format!(
                    "jujusim's machines are {ours}: it does not support refreshing with {flag} {b}"
                )));
            }
        }
    }
    for f in ["--channel", "--revision", "--switch"] {
        if l.has(f) {
            return Err(SimError::Usage(format!(
                "jujusim does not support {f} for juju refresh: it has no charm store; refresh a local charm with --path"
            )));
        }
    }
    refuse(l, &["--config", "--resource", "--storage", "--bind"])?;
    let [app] = l.pos.as_slice() else {
        return Err(SimError::Usage("refresh takes one application name".into()));
    };
    let Some(path) = l.value(&["--path"]) else {
        return Err(SimError::Usage(format!(
            "jujusim refreshes local charms only: give --path <charm> (refreshing {app:?} from Charmhub is not supported)"
        )));
    };
    let dir = ensure_model(root, l)?;
    let mut args = vec![
        "refresh".to_string(),
        app.clone(),
        "--path".into(),
        path.to_string(),
    ];
    if l.has("--force-units") {
        args.push("--force-units".into());
    }
    Ok(sim(&dir, args))
}

fn add_unit(root: &Path, l: &Line) -> Result<i32> {
    l.only(&["-n", "--num-units", "--to", "--attach-storage"])?;
    refuse(l, &["--attach-storage"])?;
    let dir = ensure_model(root, l)?;
    let [app] = l.pos.as_slice() else {
        return Err(SimError::Usage("add-unit takes one application".into()));
    };
    let mut args = vec!["add-unit".to_string(), app.clone()];
    if let Some(n) = count(l)? {
        args.extend(["-n".into(), n]);
    }
    if let Some(to) = l.value(&["--to"]) {
        args.extend(["--to".into(), to.to_string()]);
    }
    Ok(sim(&dir, args))
}

fn remove_units(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--no-prompt",
        "-y",
        "--destroy-storage",
        "--force",
        "--no-wait",
        "--num-units",
    ])?;
    // --num-units removes units of a Kubernetes application: jujusim models machines.
    refuse(l, &["--num-units"])?;
    let dir = ensure_model(root, l)?;
    if l.pos.is_empty() || l.pos.iter().any(|u| !u.contains('/')) {
        return Err(SimError::Usage(
            "remove-unit takes unit names (app/N) on a machine model".into(),
        ));
    }
    let mut args = vec!["remove-unit".to_string()];
    args.extend(l.pos.iter().cloned());
    Ok(sim(&dir, args))
}

fn remove_applications(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--no-prompt",
        "-y",
        "--destroy-storage",
        "--force",
        "--no-wait",
    ])?;
    let dir = ensure_model(root, l)?;
    if l.pos.is_empty() {
        return Err(SimError::Usage("no application specified".into()));
    }
    for app in &l.pos {
        let code = sim(&dir, vec!["remove-application".into(), app.clone()]);
        if code != 0 {
            return Ok(code);
        }
    }
    Ok(0)
}

fn relation_change(root: &Path, l: &Line, what: &str) -> Result<i32> {
    l.only(&["--via", "--force"])?;
    refuse(l, &["--via"])?;
    let dir = ensure_model(root, l)?;
    let [a, b] = l.pos.as_slice() else {
        return Err(SimError::Usage(format!(
            "{what} takes two applications (app[:endpoint])"
        )));
    };
    Ok(sim(&dir, vec![what.to_string(), a.clone(), b.clone()]))
}

fn config(root: &Path, l: &Line) -> Result<i32> {
    l.only(&["--format", "-o", "--output", "--reset", "--file"])?;
    refuse(l, &["--file", "-o", "--output"])?;
    let dir = ensure_model(root, l)?;
    let Some((app, rest)) = l.pos.split_first() else {
        return Err(SimError::Usage("no application name specified".into()));
    };
    let resets = l.list(&["--reset"]);
    if !rest.is_empty() || !resets.is_empty() {
        let mut args = vec!["config".to_string(), app.clone()];
        args.extend(rest.iter().cloned());
        if !resets.is_empty() {
            args.extend(["--reset".into(), resets.join(",")]);
        }
        return Ok(sim(&dir, args));
    }
    // Juju's `config --format json`: every option with its type, description, default, source
    // and (when it has one) value; the application's own settings under application-config.
    let w = World::load(&Paths::new(dir))?;
    let Some(a) = w.apps.get(app.as_str()) else {
        return Err(SimError::Failed(format!("application {app:?} not found")));
    };
    let mut settings = serde_json::Map::new();
    for (k, o) in &a.meta.options {
        let mut e = serde_json::json!({
            "type": o.kind,
            "description": "",
            "source": if a.config.contains_key(k) { "user" } else { "default" },
        });
        if let Some(d) = &o.default {
            e["default"] = d.clone();
        }
        if let Some(v) = a
            .config
            .get(k)
            .or(o.default.as_ref())
            .filter(|v| !v.is_null())
        {
            e["value"] = v.clone();
        }
        settings.insert(k.clone(), e);
    }
    let v = serde_json::json!({
        "application": app,
        "charm": a.meta.name,
        "application-config": {
            "trust": {"default": false, "description": "Does this application have access to trusted credentials", "source": "default", "type": "bool", "value": false}
        },
        "settings": settings,
    });
    match l.value(&["--format"]) {
        Some("json") => println!("{}", serde_json::to_string(&v).unwrap_or_default()),
        None | Some("yaml") => print!("{}", serde_yaml::to_string(&v).unwrap_or_default()),
        Some(f) => {
            return Err(SimError::Usage(format!(
                "invalid value {f:?} for option --format: unknown format"
            )))
        }
    }
    Ok(0)
}

fn status(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--format",
        "-o",
        "--output",
        "--relations",
        "--storage",
        "--color",
        "--no-color",
        "--utc",
    ])?;
    let dir = ensure_model(root, l)?;
    let w = World::load(&Paths::new(dir))?;
    match l.value(&["--format"]) {
        Some("json") => println!(
            "{}",
            serde_json::to_string(&render::juju_status_json(&w)).unwrap_or_default()
        ),
        Some("yaml") => print!(
            "{}",
            serde_yaml::to_string(&render::juju_status_json(&w)).unwrap_or_default()
        ),
        None | Some("tabular") => print!("{}", render::status_table(&w)),
        Some(f) => {
            return Err(SimError::Usage(format!(
                "invalid value {f:?} for option --format: unknown format"
            )))
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> Line {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Line::parse(&args, &["--format"]).expect("parses")
    }

    #[test]
    fn flags_anywhere_and_model_names_as_juju_takes_them() {
        let l = line(&[
            "status",
            "--model",
            "ctl:admin/m1",
            "--format=json",
            "extra",
        ]);
        assert_eq!(l.value(&["--format"]), Some("json"));
        assert_eq!(l.pos, ["extra"]);
        assert_eq!(model_name(l.value(&["--model"]).unwrap_or_default()), "m1");
        let l = line(&["status", "--format", "json", "-m", "m2"]);
        assert_eq!(model_name(l.value(&["-m"]).unwrap_or_default()), "m2");
        assert!(line(&["status", "--bogus"]).only(&["--format"]).is_err());
        assert!(valid_name("jubilant-0a1b2c3d"));
        assert!(!valid_name("Bad_Name"));
    }
}
