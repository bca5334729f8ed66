//! `juju run` and `juju exec`: tasks, printed in Juju 3's task JSON (`{receiver: {id, status,
//! results: {return-code, stdout, stderr, ...}, message, log, unit|machine}}`), with Juju's exit
//! rule: non-zero, and "the following task failed" on stderr, only when a task's return code is
//! 1 or more (an action that called `action-fail` has status `failed` and exits 0).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::{ensure_model, session, Line};
use crate::error::{Result, SimError};
use crate::model::{Action, Paths, World};
use crate::{ops, schema, util};

fn wait_limit(l: &Line) -> Result<Option<Duration>> {
    match l.value(&["--wait"]) {
        None => Ok(None),
        Some(w) => match util::parse_go_duration(w) {
            Some(d) if d.is_zero() => Ok(None),
            Some(d) => Ok(Some(d)),
            None => Err(SimError::Usage(format!(
                "invalid value {w:?} for option --wait: time: invalid duration {w:?}"
            ))),
        },
    }
}

/// A finished task as Juju prints it.
fn task_json(
    id: u64,
    receiver: (&str, &str),
    status: &str,
    results: &Map<String, Value>,
    message: &str,
    log: &[String],
) -> Value {
    let mut results = results.clone();
    results.entry("return-code").or_insert(json!(0));
    for k in ["stdout", "stderr"] {
        if results.get(k).is_some_and(|v| v.as_str() == Some("")) {
            results.remove(k);
        }
    }
    let mut t = json!({"id": id.to_string(), "status": status, "results": results});
    t[receiver.0] = json!(receiver.1);
    if !message.is_empty() {
        t["message"] = json!(message);
    }
    if !log.is_empty() {
        t["log"] = json!(log);
    }
    t
}

fn return_code(t: &Value) -> i64 {
    t["results"]["return-code"].as_i64().unwrap_or(0)
}

/// Prints tasks keyed by receiver and returns Juju's exit code for them.
fn print_tasks(l: &Line, tasks: Vec<(String, Value)>) -> Result<i32> {
    let failed: Vec<(String, i64)> = tasks
        .iter()
        .filter(|(_, t)| return_code(t) >= 1)
        .map(|(_, t)| {
            (
                t["id"].as_str().unwrap_or_default().to_string(),
                return_code(t),
            )
        })
        .collect();
    match l.value(&["--format", "-o", "--output"]) {
        Some("json") => {
            let m: Map<String, Value> = tasks.into_iter().collect();
            println!("{}", Value::Object(m));
        }
        Some("yaml") => {
            let m: Map<String, Value> = tasks.into_iter().collect();
            print!("{}", serde_yaml::to_string(&m).unwrap_or_default());
        }
        None | Some("plain") => {
            // Juju's plain output: the results (without return code and output), then the
            // command's stdout and stderr as they were.
            let many = tasks.len() > 1;
            for (who, t) in &tasks {
                if many {
                    println!("{who}:");
                }
                let mut shown = t["results"].as_object().cloned().unwrap_or_default();
                shown.remove("return-code");
                let out = shown.remove("stdout");
                let err = shown.remove("stderr");
                if !shown.is_empty() {
                    print!("{}", serde_yaml::to_string(&shown).unwrap_or_default());
                }
                if let Some(Value::String(o)) = out {
                    print!("{o}");
                }
                if let Some(Value::String(e)) = err {
                    eprint!("{e}");
                }
                if let Some(m) = t["message"].as_str() {
                    eprintln!("{m}");
                }
            }
        }
        Some(f) => {
            return Err(SimError::Usage(format!(
                "invalid value {f:?} for option --format: unknown format"
            )))
        }
    }
    if failed.is_empty() {
        return Ok(0);
    }
    let lines: Vec<String> = failed
        .iter()
        .map(|(id, rc)| format!(" - id {id:?} with return code {rc}"))
        .collect();
    eprintln!(
        "ERROR the following task{} failed:\n{}\n\nuse 'juju show-task' to inspect the failure{}",
        if failed.len() == 1 { "" } else { "s" },
        lines.join("\n"),
        if failed.len() == 1 { "" } else { "s" },
    );
    Ok(1)
}

/// Params of `juju run`: the YAML file of `--params`, then `k=v` arguments over it.
fn params(l: &Line, pairs: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(file) = l.value(&["--params"]) {
        let text = std::fs::read_to_string(file)
            .map_err(|e| SimError::io("cannot read params file", Path::new(file), e))?;
        let v: Value = match serde_yaml::from_str::<serde_yaml::Value>(&text) {
            Ok(y) => serde_json::to_value(y)
                .map_err(|e| SimError::Failed(format!("params file {file}: {e}")))?,
            Err(e) => {
                return Err(SimError::Failed(format!(
                    "params file {file}: invalid YAML: {e}"
                )))
            }
        };
        match v {
            Value::Object(m) => out = m,
            Value::Null => {}
            _ => {
                return Err(SimError::Failed(format!(
                    "params file {file} must hold a YAML mapping"
                )))
            }
        }
    }
    for (k, v) in schema::parse_params(pairs, l.has("--string-args"))? {
        out.insert(k, v);
    }
    Ok(out)
}

/// `juju run <unit|app/leader> <action> [k=v...] [--params F] [--format F] [--wait D]`.
pub fn run(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--format",
        "-o",
        "--output",
        "--params",
        "--wait",
        "--string-args",
        "--background",
        "--color",
        "--no-color",
        "--utc",
    ])?;
    super::refuse(l, &["--background"])?;
    let dir = ensure_model(root, l)?;
    let [target, action, pairs @ ..] = l.pos.as_slice() else {
        return Err(SimError::Usage(
            "juju run takes a unit (or app/leader), an action and its parameters".into(),
        ));
    };
    let limit = wait_limit(l)?;
    let params = params(l, pairs)?;
    let paths = Paths::new(dir.clone());
    // As Juju 3: a task that cannot be scheduled (no such unit, action or valid parameters)
    // is reported on stderr with an empty stdout and exit status 0.
    if let Err(e) = ops::check_action(&World::load(&paths)?, target, action, &params) {
        eprintln!("Operation failed to schedule any tasks:\n    {e}");
        return Ok(0);
    }
    let id = {
        let mut s = session(&dir)?;
        let id = match ops::queue_action(&mut s.core().world, target, action, &params) {
            Ok(id) => id,
            Err(e) => {
                eprintln!("Operation failed to schedule any tasks:\n    {e}");
                return Ok(0);
            }
        };
        s.commit()?;
        id
    };
    let start = Instant::now();
    let done = loop {
        let w = World::load(&paths)?;
        let Some(a) = w.actions.get(&id) else {
            return Err(SimError::Failed(format!(
                "task {id} was removed before it ran (its unit was removed)"
            )));
        };
        if !matches!(a.status.as_str(), "pending" | "running") {
            break a.clone();
        }
        // An agent that died while the task ran: a new one marks the task aborted.
        crate::agent::ensure(&dir)?;
        if limit.is_some_and(|d| start.elapsed() >= d) {
            return Err(SimError::Failed(format!(
                "timed out waiting for results from: unit {}",
                a.unit
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let Action {
        unit,
        status,
        results,
        message,
        log,
        ..
    } = done;
    let t = task_json(id, ("unit", &unit), &status, &results, &message, &log);
    print_tasks(l, vec![(unit, t)])
}

/// Juju's `utils.CommandString`: one argument is the command as given; several are joined,
/// each quoted for the shell when it needs it.
fn command_string(args: &[String]) -> String {
    if let [one] = args {
        return one.clone();
    }
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn next_task_id(w: &mut World) -> u64 {
    let id = w.next_action;
    w.next_action += 1;
    id
}

/// `juju exec (--unit U[,U...] | --machine M[,M...] | --application A[,A...]) [--format F]
/// [--wait D] -- command [args...]`. On a unit the command runs in a hook context (the model's
/// hooks are not running meanwhile), as Juju's exec does; on a machine it runs as a plain
/// process on the host (jujusim's machines have no filesystem of their own).
pub fn exec(root: &Path, l: &Line) -> Result<i32> {
    l.only(&[
        "--format",
        "-o",
        "--output",
        "--unit",
        "-u",
        "--machine",
        "--application",
        "-a",
        "--wait",
        "--all",
        "--operator",
        "--color",
        "--no-color",
        "--utc",
        "--execution-group",
        "--parallel",
    ])?;
    super::refuse(
        l,
        &["--all", "--operator", "--execution-group", "--parallel"],
    )?;
    let dir = ensure_model(root, l)?;
    let wait = wait_limit(l)?;
    if l.pos.is_empty() {
        return Err(SimError::Usage("no commands specified".into()));
    }
    let command = command_string(&l.pos);
    let list = |names: &[&str]| -> Vec<String> {
        l.flags
            .iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .filter_map(|(_, v)| v.clone())
            .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut units = list(&["--unit", "-u"]);
    let machines = list(&["--machine"]);
    let apps = list(&["--application", "-a"]);
    if units.is_empty() && machines.is_empty() && apps.is_empty() {
        return Err(SimError::Usage(
            "you must specify a target, either through --all, --machine, --application or --unit"
                .into(),
        ));
    }
    if wait.is_some() && !machines.is_empty() {
        return Err(SimError::Usage(
            "jujusim does not support --wait with --machine".into(),
        ));
    }
    let paths = Paths::new(dir.clone());
    // Targets that do not exist: as for `run`, Juju 3 schedules nothing, says why on stderr,
    // prints nothing and exits 0. `app/leader` is the application's leader.
    let unscheduled = |why: String| {
        eprintln!("Operation failed to schedule any tasks:\n    {why}");
        Ok(0)
    };
    {
        let w = World::load(&paths)?;
        for a in &apps {
            let Some(app) = w.apps.get(a) else {
                return unscheduled(format!("application {a:?} not found"));
            };
            units.extend(app.units.values().map(|u| u.name.clone()));
        }
        for u in units.iter_mut() {
            if let Some(app) = u.strip_suffix("/leader") {
                match w.apps.get(app).and_then(|a| a.leader.clone()) {
                    Some(l) => *u = l,
                    None => return unscheduled(format!("application {app:?} has no leader")),
                }
            }
            if let Err(e) = ops::require_unit(&w, u) {
                return unscheduled(e.to_string());
            }
        }
        for m in &machines {
            let known = m.parse::<u32>().is_ok_and(|m| {
                w.apps
                    .values()
                    .flat_map(|a| a.units.values())
                    .any(|u| u.machine == m)
            });
            if !known {
                return unscheduled(format!("machine {m:?} not found"));
            }
        }
    }
    let mut tasks: BTreeMap<String, Value> = BTreeMap::new();
    if !units.is_empty() {
        let mut s = session(&dir)?;
        if let Some(w) = wait {
            s.driver.opts.hook_timeout = w;
        }
        for u in &units {
            let id = next_task_id(&mut s.core().world);
            let run = s
                .driver
                .run_exec(u, &["/bin/bash".into(), "-c".into(), command.clone()])?;
            if run.timed_out {
                s.commit()?;
                return Err(SimError::Failed(format!(
                    "timed out waiting for results from: unit {u}"
                )));
            }
            let t = exec_task(id, ("unit", u), &run);
            tasks.insert(u.clone(), t);
        }
        s.commit()?;
    }
    for m in &machines {
        let id = {
            let mut s = session(&dir)?;
            let id = next_task_id(&mut s.core().world);
            s.commit()?;
            id
        };
        let out = std::process::Command::new("/bin/bash")
            .args(["-c", &command])
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| SimError::Failed(format!("cannot run /bin/bash: {e}")))?;
        let run = crate::runner::Run {
            exit_code: out.status.code().unwrap_or(-1),
            timed_out: false,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            duration: Duration::ZERO,
            cpu: Duration::ZERO,
            max_rss_kib: 0,
        };
        tasks.insert(m.clone(), exec_task(id, ("machine", m), &run));
    }
    print_tasks(l, tasks.into_iter().collect())
}

fn exec_task(id: u64, receiver: (&str, &str), run: &crate::runner::Run) -> Value {
    let mut results = Map::new();
    results.insert("return-code".into(), json!(run.exit_code));
    results.insert("stdout".into(), json!(run.stdout));
    results.insert("stderr".into(), json!(run.stderr));
    let status = if run.exit_code == 0 {
        "completed"
    } else {
        "failed"
    };
    let message = if run.timed_out { "timed out" } else { "" };
    task_json(id, receiver, status, &results, message, &[])
}
