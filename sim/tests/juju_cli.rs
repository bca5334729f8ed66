//! The `juju` front end (issue 16, first part): models by name, `status --format json` in Juju
//! 3.6's schema (the keys jubilant's `Status` requires), `version`, and refusals of what it does
//! not support yet.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_jujusim");

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `juju <args>` against the models under `root`, through the binary named `juju`.
fn juju(root: &Path, juju_bin: &Path, args: &[&str]) -> Output {
    Command::new(juju_bin)
        .args(args)
        .env("JUJUSIM_ROOT", root)
        .env_remove("JUJU_DATA")
        .output()
        .expect("juju runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Destroys the model on drop (stops its workloads), also when a test fails.
struct Models<'a> {
    root: &'a Path,
    juju: &'a Path,
    names: Vec<String>,
}

impl Drop for Models<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = juju(self.root, self.juju, &["destroy-model", "--no-prompt", n]);
        }
    }
}

#[test]
fn status_speaks_jujus_schema_for_a_model_made_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    // The multi-call binary, named juju (as jubilant finds it on PATH).
    let juju_bin = tmp.path().join("bin/juju");
    std::fs::create_dir_all(tmp.path().join("bin")).expect("bin");
    std::os::unix::fs::symlink(BIN, &juju_bin).expect("symlink");
    let _models = Models {
        root: &root,
        juju: &juju_bin,
        names: vec!["jubilant-0a1b2c3d".into()],
    };
    let o = juju(
        &root,
        &juju_bin,
        &["add-model", "--no-switch", "jubilant-0a1b2c3d"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let again = juju(&root, &juju_bin, &["add-model", "jubilant-0a1b2c3d"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    // Deploy with jujusim's own command line into the same model (the juju front end's deploy
    // comes next).
    let dir = root.join("models/jubilant-0a1b2c3d");
    let d = Command::new(BIN)
        .args([
            "--model",
            &dir.to_string_lossy(),
            "deploy",
            &fixture("probe"),
            "-n",
            "2",
        ])
        .output()
        .expect("deploy");
    assert!(d.status.success(), "{}", text(&d));
    let s = juju(
        &root,
        &juju_bin,
        &[
            "status",
            "--model",
            "admin/jubilant-0a1b2c3d",
            "--format",
            "json",
        ],
    );
    assert!(s.status.success(), "{}", text(&s));
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).expect("json");
    for k in ["name", "type", "controller", "cloud", "version"] {
        assert!(v["model"][k].is_string(), "model.{k} in {v}");
    }
    assert_eq!(v["model"]["name"], "jubilant-0a1b2c3d");
    assert!(v["machines"].is_object());
    let app = &v["applications"]["probe"];
    for k in ["charm", "charm-origin", "charm-name"] {
        assert!(app[k].is_string(), "{k} in {app}");
    }
    assert!(
        app["charm-rev"].is_u64() && app["exposed"].is_boolean(),
        "{app}"
    );
    assert!(app["application-status"]["current"].is_string(), "{app}");
    let units = app["units"].as_object().expect("units");
    assert_eq!(units.len(), 2);
    let leaders = units.values().filter(|u| u["leader"] == true).count();
    assert_eq!(leaders, 1, "{app}");
    for (name, u) in units {
        assert!(u["workload-status"]["current"].is_string(), "{name}: {u}");
        assert!(u["juju-status"]["current"].is_string(), "{name}: {u}");
        let m = u["machine"].as_str().expect("machine");
        assert!(v["machines"][m].is_object(), "machine {m} of {name} listed");
        assert!(u["public-address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.")));
    }
    // Relations as Juju 3.6 prints them: endpoint -> [{related-application, interface, scope}].
    let peers = &app["relations"]["cluster"][0];
    assert_eq!(peers["related-application"], "probe", "{app}");
    assert!(
        peers["interface"].is_string() && peers["scope"] == "global",
        "{app}"
    );
    let gone = juju(
        &root,
        &juju_bin,
        &[
            "destroy-model",
            "--no-prompt",
            "--destroy-storage",
            "--force",
            "jubilant-0a1b2c3d",
        ],
    );
    assert!(gone.status.success(), "{}", text(&gone));
    assert!(!dir.exists());
}

#[test]
fn version_and_refusals_are_jujus() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = Command::new(BIN)
        .args(["juju", "version", "--format", "json", "--all"])
        .env("JUJUSIM_ROOT", tmp.path())
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        v["version"].as_str().is_some_and(|s| s.starts_with("3.6.")),
        "{v}"
    );
    for (args, says) in [
        (
            vec!["juju", "offer", "x"],
            "does not support \"juju offer\" yet",
        ),
        (
            vec!["juju", "deploy", "./x", "--model", "none"],
            "model \"admin/none\" not found",
        ),
        (
            vec!["juju", "status", "--frobnicate"],
            "option provided but not defined: --frobnicate",
        ),
        (
            vec!["juju", "status", "--format", "json"],
            "no current model",
        ),
        (vec!["juju", "add-model", "Bad_Name"], "not a valid name"),
        (vec!["juju", "destroy-model", "nope"], "not found"),
    ] {
        let o = Command::new(BIN)
            .args(&args)
            .env("JUJUSIM_ROOT", tmp.path())
            .output()
            .expect("runs");
        assert!(!o.status.success(), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
}
