//! The charm binary as Juju runs it: through `dispatch` in a packed charm, with a clean environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_zookeeper-charm");

fn juju_env(cmd: &mut Command, dispatch_path: &str, charm_dir: &Path) {
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("JUJU_DISPATCH_PATH", dispatch_path)
        .env("JUJU_UNIT_NAME", "zookeeper/0")
        .env("JUJU_MODEL_NAME", "test")
        .env("JUJU_MODEL_UUID", "00000000-0000-4000-8000-000000000000")
        .env("JUJU_CHARM_DIR", charm_dir)
        .env("JUJU_VERSION", "3.6.9")
        .current_dir(charm_dir);
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Packs the charm around the freshly built binary and unpacks it, as Juju would.
fn packed_charm() -> (tempfile::TempDir, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("zookeeper.charm");
    xtask::write_charm(root, Path::new(BIN), &tmp.path().join("staged"), &zip).unwrap();
    let unpacked = tmp.path().join("unpacked");
    xtask::unpack(&zip, &unpacked).unwrap();
    (tmp, unpacked)
}

#[test]
fn without_juju_it_explains_in_one_line_and_fails() {
    let out = Command::new(BIN).env_clear().output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not running under Juju"), "{stderr}");
}

#[test]
fn missing_variable_is_named_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    juju_env(&mut cmd, "hooks/install", dir.path());
    cmd.env_remove("JUJU_MODEL_UUID");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("JUJU_MODEL_UUID"), "{}", text(&out));
}

#[test]
fn packed_charm_layout_runs_the_binary_through_dispatch() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, charm) = packed_charm();
    for exe in [
        "dispatch",
        "bin/zookeeper-charm",
        "hooks/install",
        "hooks/zookeeper-relation-broken",
    ] {
        let mode = std::fs::metadata(charm.join(exe))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{exe} is not executable ({mode:o})");
    }
    for f in [
        "metadata.yaml",
        "config.yaml",
        "actions.yaml",
        "manifest.yaml",
    ] {
        assert!(charm.join(f).is_file(), "{f}");
    }
    let dispatch = std::fs::read_to_string(charm.join("dispatch")).unwrap();
    assert_eq!(dispatch.lines().count(), 2);
    assert_eq!(
        dispatch.lines().last().unwrap(),
        "exec ./bin/zookeeper-charm"
    );

    // An unknown hook: exit 0 and say that nothing handles it (juju-log is absent here, so the
    // line falls back to stderr).
    let mut cmd = Command::new("./dispatch");
    juju_env(&mut cmd, "hooks/workload-pebble-ready", &charm);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no handler for hook \"workload-pebble-ready\""),
        "{}",
        text(&out)
    );

    // A legacy hooks/<name> entry without JUJU_DISPATCH_PATH still reaches the binary.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("cp hooks/install hooks/no-such-hook && ./hooks/no-such-hook");
    juju_env(&mut cmd, "", &charm);
    cmd.env_remove("JUJU_DISPATCH_PATH");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no handler for hook \"no-such-hook\""),
        "{}",
        text(&out)
    );
}
