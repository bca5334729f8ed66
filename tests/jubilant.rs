//! jubilant (Canonical's Juju integration-test library, pinned in the test venv) drives the
//! packed charm through jujusim's `juju` front end (issue 16, in progress), with nothing but its
//! public API: a model added, the charm deployed with three units, `wait(all_active)`, the
//! configuration read and set, a unit added and removed, status read, the model destroyed.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{jujusim_bin, packed_charm, python};

const SCRIPT: &str = r#"
import sys, jubilant
juju = jubilant.Juju(cli_binary=sys.argv[1])
juju.add_model("zk")
juju.deploy(sys.argv[2], "zookeeper", num_units=3)
status = juju.wait(jubilant.all_active, error=jubilant.any_error, timeout=180)
app = status.apps["zookeeper"]
assert len(app.units) == 3, app.units
assert sum(1 for u in app.units.values() if u.leader) == 1, app.units
assert all(u.public_address.startswith("127.") for u in app.units.values()), app.units
assert app.app_status.message == "3/3 members in quorum", app.app_status
assert "cluster" in app.relations, app.relations
assert app.version == "3.8.0", app.version
config = juju.config("zookeeper")
assert config["tick-time"] == 2000 and config["client-znode-policy"] == "keep", config
juju.config("zookeeper", {"client-znode-policy": "delete"})
assert juju.config("zookeeper")["client-znode-policy"] == "delete"
juju.add_unit("zookeeper")
status = juju.wait(lambda s: jubilant.all_active(s) and len(s.apps["zookeeper"].units) == 4, timeout=180)
assert status.apps["zookeeper"].app_status.message == "4/4 members in quorum", status
juju.remove_unit("zookeeper/3")
status = juju.wait(lambda s: jubilant.all_active(s) and len(s.apps["zookeeper"].units) == 3, timeout=180)
juju.destroy_model("zk", destroy_storage=True, force=True)
print("ok", jubilant.__version__)
"#;

/// Destroys the model if the script did not (a failed test leaves nothing running).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let dir = self.0.join("models/zk");
        if dir.exists() {
            let _ = Command::new(jujusim_bin())
                .arg("--model")
                .arg(&dir)
                .arg("destroy")
                .output();
        }
    }
}

fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).expect("symlink");
}

#[test]
fn jubilant_drives_the_charm_through_the_juju_front_end() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let _cleanup = Cleanup(root.clone());
    let juju = tmp.path().join("juju");
    link(&jujusim_bin(), &juju);
    let out = Command::new(python())
        .args(["-c", SCRIPT])
        .arg(&juju)
        .arg(packed_charm())
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
    assert!(!root.join("models/zk").exists(), "destroyed");
}
