//! jubilant (Canonical's Juju integration-test library, pinned in the test venv) reads a model of
//! the real charm through jujusim's `juju` front end (issue 16, first part): its own parser and
//! helpers accept what `juju status --format json` prints.

mod support;

use std::process::Command;

use support::{jujusim_bin, python, Model};

const APP: &str = "zookeeper";

/// jubilant's public API only: `Juju(model=..., cli_binary=...)`, `status()`, `all_active`.
const SCRIPT: &str = r#"
import sys, jubilant
juju = jubilant.Juju(model="zk", cli_binary=sys.argv[1])
status = juju.status()
assert jubilant.all_active(status, "zookeeper"), status
assert not jubilant.any_error(status), status
app = status.apps["zookeeper"]
assert len(app.units) == 3, app.units
assert sum(1 for u in app.units.values() if u.leader) == 1, app.units
assert all(u.public_address.startswith("127.") for u in app.units.values()), app.units
assert app.app_status.message == "3/3 members in quorum", app.app_status
assert "cluster" in app.relations, app.relations
assert app.version == "3.8.0", app.version
print("ok", jubilant.__version__)
"#;

#[test]
fn jubilant_reads_a_deployed_ensemble_through_the_juju_front_end() {
    let m = Model::new();
    m.deploy(3);
    m.settle_until_active(APP);
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("models")).expect("models");
    // The test's model, named zk for the juju front end.
    std::os::unix::fs::symlink(m.model_dir(), root.join("models/zk")).expect("link");
    let juju = tmp.path().join("juju");
    std::os::unix::fs::symlink(jujusim_bin(), &juju).expect("link");
    let out = Command::new(python())
        .args(["-c", SCRIPT])
        .arg(&juju)
        .env("JUJUSIM_ROOT", &root)
        .output()
        .expect("python runs");
    let text = format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok 1.14.0"), "{text}");
}
