//! One wrapper around the `jujusim` command line for everything that drives a model from
//! outside: the charm's end-to-end tests (`tests/support`), jujusim's conformance tests
//! (`sim/tests/common`) and the benchmarks (`bench`).
//!
//! A [`Sim`] is a model in its own temporary directory. Every command runs the real binary with
//! `--model` and the model's global options (seed, serial mode). Dropping it runs `destroy`,
//! which stops every process the model started, also when a test fails; with
//! `KEEP_FAILED_MODELS` set, a failing test's model is first copied to
//! `$TMPDIR/failed-model-<pid>` (state, timeline, server logs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Environment variables that choose a model or its behaviour behind a command's back; a
/// hermetic model ignores them (conformance tests), others inherit them (`JUJUSIM_SERIAL=1
/// cargo test` runs the charm's suites in the serial mode).
const JUJUSIM_ENV: [&str; 4] = [
    "JUJUSIM_MODEL",
    "JUJUSIM_SEED",
    "JUJUSIM_HOOK_TIMEOUT",
    "JUJUSIM_SERIAL",
];

pub struct Sim {
    tmp: tempfile::TempDir,
    model: PathBuf,
    bin: PathBuf,
    global: Vec<String>,
    hermetic: bool,
}

/// stdout and stderr of a command, for error messages.
pub fn output_text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Sim {
    /// A new (not yet created) model run by the jujusim binary `bin`.
    pub fn new(bin: impl Into<PathBuf>) -> Sim {
        let tmp = tempfile::Builder::new()
            .prefix("jujusim-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let model = tmp.path().join("model");
        Sim {
            tmp,
            model,
            bin: bin.into(),
            global: Vec::new(),
            hermetic: false,
        }
    }

    /// Global options for every command (e.g. `--seed 7`, `--hook-timeout 5`).
    pub fn global(mut self, args: &[&str]) -> Sim {
        self.global.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// `--seed`: another initial leader and another dispatch order among the valid ones.
    pub fn seed(self, seed: Option<u64>) -> Sim {
        match seed {
            Some(s) => self.global(&["--seed", &s.to_string()]),
            None => self,
        }
    }

    /// `--serial`: one hook at a time in the whole model.
    pub fn serial(self, serial: bool) -> Sim {
        if serial {
            self.global(&["--serial"])
        } else {
            self
        }
    }

    /// Ignore the `JUJUSIM_*` variables of the environment.
    pub fn hermetic(mut self) -> Sim {
        self.hermetic = true;
        self
    }

    /// The temporary directory holding the model (and anything else a test keeps beside it).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn model(&self) -> &Path {
        &self.model
    }

    pub fn unit_dir(&self, unit: &str) -> PathBuf {
        self.model.join("units").join(unit.replace('/', "-"))
    }

    pub fn workload_dir(&self, unit: &str) -> PathBuf {
        self.unit_dir(unit).join("workload")
    }

    pub fn charm_dir(&self, unit: &str) -> PathBuf {
        self.unit_dir(unit).join("charm")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--model")
            .arg(&self.model)
            .args(&self.global)
            .args(args);
        if self.hermetic {
            for v in JUJUSIM_ENV {
                c.env_remove(v);
            }
        }
        c
    }

    /// Runs a command, whatever its outcome.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }

    /// Runs a command; its stdout, or an error with both outputs.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let started = std::time::Instant::now();
        let o = self.output(args);
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            Err(format!(
                "jujusim {args:?} failed ({}) after {:.1?}\n{}",
                o.status,
                started.elapsed(),
                output_text(&o)
            ))
        }
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs a command that must fail; returns its exit code and stderr.
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let o = self.output(args);
        assert!(
            !o.status.success(),
            "jujusim {args:?} should have failed:\n{}",
            output_text(&o)
        );
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// A command's `--format json` output.
    pub fn try_json(&self, args: &[&str]) -> Result<Value, String> {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        let s = self.run(&a)?;
        serde_json::from_str(&s).map_err(|e| format!("jujusim {args:?}: not JSON ({e}): {s}"))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        self.try_json(args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn status(&self) -> Value {
        self.json(&["status"])
    }

    /// The application's units, in order.
    pub fn units(&self, app: &str) -> Vec<String> {
        units_of(&self.status(), app)
    }

    /// The application's leader, if it has one.
    pub fn leader_of(&self, app: &str) -> Option<String> {
        leader_in(&self.status(), app)
    }

    /// The timeline: one entry per hook, action and exec.
    pub fn log(&self) -> Vec<Value> {
        match self.json(&["log"]) {
            Value::Array(v) => v,
            other => panic!("jujusim log: not a list: {other}"),
        }
    }

    /// Runs at most `n` pending hooks; whether the model is idle now.
    pub fn step(&self, n: usize) -> bool {
        self.ok(&["step", "-n", &n.to_string()]).contains("idle")
    }

    /// Stops the model's processes and removes it (also done on drop).
    pub fn destroy(&self) -> Result<String, String> {
        self.run(&["destroy"])
    }
}

/// The units of `app` in a `status --format json` value.
pub fn units_of(status: &Value, app: &str) -> Vec<String> {
    let mut v: Vec<String> = status["applications"][app]["units"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    v.sort_by_key(|u| {
        u.rsplit('/')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    });
    v
}

/// The leader of `app` in a `status --format json` value.
pub fn leader_in(status: &Value, app: &str) -> Option<String> {
    status["applications"][app]["units"]
        .as_object()?
        .iter()
        .find(|(_, u)| u["leader"] == true)
        .map(|(n, _)| n.clone())
}

impl Drop for Sim {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("KEEP_FAILED_MODELS").is_some() {
            let keep = std::env::temp_dir().join(format!("failed-model-{}", std::process::id()));
            let _ = Command::new("cp")
                .arg("-a")
                .arg(&self.model)
                .arg(&keep)
                .status();
            eprintln!("KEEP_FAILED_MODELS: copied the model to {}", keep.display());
        }
        if self.model.exists() {
            let _ = self.destroy();
        }
    }
}

/// Unit statuses, timeline queries and actions, as every driver of a model reads them.
impl Sim {
    /// A field of the unit's entry in `status` (a JSON pointer such as `/public-address`).
    pub fn unit_field(&self, unit: &str, pointer: &str) -> Value {
        let app = unit.split('/').next().unwrap_or_default();
        self.status()["applications"][app]["units"][unit]
            .pointer(pointer)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn address(&self, unit: &str) -> String {
        self.unit_field(unit, "/public-address")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// (unit, workload status, message) of every unit of `app`, sorted.
    pub fn workload(&self, app: &str) -> Vec<(String, String, String)> {
        let s = self.status();
        let mut v: Vec<(String, String, String)> = s["applications"][app]["units"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, u)| {
                        let field = |f: &str| {
                            u["workload-status"][f]
                                .as_str()
                                .unwrap_or_default()
                                .to_string()
                        };
                        (k.clone(), field("current"), field("message"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn all_active(&self, app: &str) -> bool {
        self.workload(app).iter().all(|(_, s, _)| s == "active")
    }

    /// `settle --timeout S --format json`: ticks, hooks, seconds (and what is unsettled).
    pub fn try_settle(&self, timeout_secs: u64) -> Result<Value, String> {
        self.try_json(&["settle", "--timeout", &timeout_secs.to_string()])
    }

    /// Hooks (and execs) that exited non-zero, timed out or failed to commit, as "unit hook".
    pub fn hook_errors(&self) -> Vec<String> {
        hook_errors(&self.log())
    }

    /// Runs an action; the unit's entry of `run --format json` (also when the action fails).
    pub fn action(&self, target: &str, name: &str, params: &[&str]) -> Value {
        let mut args = vec!["run", target, name];
        args.extend(params);
        args.extend(["--format", "json"]);
        let out = self.output(&args);
        let s = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&s)
            .unwrap_or_else(|e| panic!("run {name}: not JSON ({e})\n{}", output_text(&out)));
        v.as_object()
            .and_then(|m| m.values().next().cloned())
            .unwrap_or(Value::Null)
    }
}

/// The failed hooks of a timeline, as "unit hook".
pub fn hook_errors(log: &[Value]) -> Vec<String> {
    log.iter()
        .filter(|e| {
            e["exit_code"].as_i64().unwrap_or(0) != 0
                || e["timed_out"] == Value::Bool(true)
                || e.get("commit_error").is_some_and(|c| !c.is_null())
        })
        .filter(|e| e.get("action").map(|a| a.is_null()).unwrap_or(true))
        .map(|e| {
            format!(
                "{} {}",
                e["unit"].as_str().unwrap_or("?"),
                e["hook"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// The juju-log messages of one timeline entry.
pub fn juju_logs(entry: &Value) -> Vec<String> {
    entry["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .filter(|c| c["argv"][0] == "juju-log")
                .filter_map(|c| c["argv"].as_array()?.last()?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A Python test charm (`src`: `metadata.yaml`, `config.yaml`, `actions.yaml`,
/// `src/charm.py`) copied with a `dispatch` that runs it with `python` (a venv with `ops` and the
/// libraries it imports). The directory goes when the returned guard drops.
pub fn python_charm(src: &Path, python: &Path) -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("python-charm").tempdir()?;
    std::fs::create_dir_all(dir.path().join("src"))?;
    for f in [
        "metadata.yaml",
        "config.yaml",
        "actions.yaml",
        "src/charm.py",
    ] {
        std::fs::copy(src.join(f), dir.path().join(f))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{f}: {e}")))?;
    }
    let dispatch = dir.path().join("dispatch");
    std::fs::write(
        &dispatch,
        format!("#!/bin/sh\nexec {} ./src/charm.py\n", python.display()),
    )?;
    std::fs::set_permissions(&dispatch, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}
