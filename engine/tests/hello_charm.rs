//! A complete minimal charm on this crate (the one the README shows), run through a real dispatch
//! with the real `ProcessTools` against stand-in hook tools (shell scripts that record their
//! arguments): proof that the engine carries a charm that is not ZooKeeper.

use std::collections::BTreeMap;
use std::path::Path;

use charm_engine::dispatch::{dispatch, load_queue, Charm, Outcome, Summary};
use charm_engine::juju::context::{Context, Event};
use charm_engine::juju::process::ProcessTools;
use charm_engine::juju::tools::{HookTools, Status, ToolError};

/// Greets with its `greeting` option; waits (defers) while the option is empty.
struct Hello<'a> {
    tools: &'a dyn HookTools,
    greeting: Option<String>,
}

impl Charm for Hello<'_> {
    type Error = ToolError;

    fn handle(&mut self, _event: &Event, _replayed: bool) -> Result<Outcome, ToolError> {
        let config = self.tools.config_get()?;
        match config.get("greeting").and_then(|v| v.as_str()) {
            Some(g) if !g.is_empty() => {
                self.greeting = Some(g.to_string());
                Ok(Outcome::Done)
            }
            _ => Ok(Outcome::defer("no greeting configured yet")),
        }
    }

    fn finish(&mut self, summary: &Summary) -> Result<(), ToolError> {
        let status = match (&self.greeting, summary.still_deferred.first()) {
            (Some(g), _) => Status::active(g.clone()),
            (None, Some((_, why))) => Status::waiting(why.clone()),
            (None, None) => Status::waiting(""),
        };
        self.tools.status_set(false, &status)
    }
}

/// Stand-in hook tools: `config-get` prints `$HELLO_CONFIG`, the others append their arguments
/// to `calls.log`.
fn fake_tools(dir: &Path) {
    let log = dir.join("calls.log");
    for tool in ["status-set", "juju-log"] {
        let body = format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\n", log.display());
        write_exec(&dir.join(tool), &body);
    }
    write_exec(
        &dir.join("config-get"),
        "#!/bin/sh\necho \"$HELLO_CONFIG\"\n",
    );
}

fn write_exec(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn env(charm_dir: &Path, hook: &str) -> BTreeMap<String, String> {
    [
        ("JUJU_DISPATCH_PATH", format!("hooks/{hook}")),
        ("JUJU_UNIT_NAME", "hello/0".into()),
        ("JUJU_MODEL_NAME", "dev".into()),
        (
            "JUJU_MODEL_UUID",
            "cdac5656-2423-4388-8f30-41854b4cca7d".into(),
        ),
        ("JUJU_CHARM_DIR", charm_dir.display().to_string()),
        ("JUJU_VERSION", "3.6.9".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One dispatch of `hook`, as `main` would run it.
fn run(charm_dir: &Path, hook: &str) -> Summary {
    let ctx = Context::from_env(&env(charm_dir, hook), None).unwrap();
    let tools = ProcessTools::new();
    let mut charm = Hello {
        tools: &tools,
        greeting: None,
    };
    dispatch(
        &mut charm,
        &ctx.event,
        load_queue(&ctx.charm_dir),
        1_700_000_000,
    )
    .unwrap()
}

#[test]
fn a_minimal_charm_defers_then_completes() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let charm_dir = dir.path().join("charm");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&charm_dir).unwrap();
    fake_tools(&bin);
    // The only test in this binary: nothing else reads the environment meanwhile.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);
    let calls = || std::fs::read_to_string(bin.join("calls.log")).unwrap_or_default();

    std::env::set_var("HELLO_CONFIG", r#"{"greeting": ""}"#);
    let s = run(&charm_dir, "install");
    assert_eq!(s.still_deferred.len(), 1, "{s:?}");
    assert!(
        calls().contains("status-set --application=False waiting -- no greeting configured yet")
    );

    // The option is set: the deferred install is replayed first, then config-changed runs.
    std::env::set_var("HELLO_CONFIG", r#"{"greeting": "hello, world"}"#);
    let s = run(&charm_dir, "config-changed");
    assert!(s.still_deferred.is_empty(), "{s:?}");
    let events: Vec<String> = s.ran.iter().map(|(e, _, _)| e.to_string()).collect();
    assert_eq!(events, ["install", "config-changed"]);
    assert!(calls().ends_with("status-set --application=False active -- hello, world\n"));
}
