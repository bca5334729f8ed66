//! The jubilant suite (`tests/jubilant/`, pytest, jubilant's public API only) against jujusim's
//! `juju` front end: the packed charm deployed with three units, `wait(all_active)`, actions
//! through `run`, `exec`, a client charm integrated and its data read through `show_unit` (and
//! used against ZooKeeper with kazoo), config and model-config, secrets, scaling, removal and
//! `destroy_model`. The same suite runs against a real controller with `JUJU` unset (see
//! `tests/jubilant/conftest.py`). Afterwards no model, agent or ZooKeeper of the run is left.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{jujusim_bin, packed_charm, python};

/// Destroys whatever models the suite left (a failed test leaves nothing running).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(models) = std::fs::read_dir(self.0.join("models")) else {
            return;
        };
        for m in models.flatten() {
            let _ = Command::new(jujusim_bin())
                .arg("--model")
                .arg(m.path())
                .arg("destroy")
                .output();
        }
    }
}

/// Processes whose command line or working directory mentions `root`.
fn processes_under(root: &Path) -> Vec<String> {
    let needle = root.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
        if cmdline.contains(&needle) || cwd.starts_with(root) {
            out.push(format!("{pid}: {cmdline}"));
        }
    }
    out
}

#[test]
fn the_jubilant_suite_passes_against_the_juju_front_end() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let _cleanup = Cleanup(root.clone());
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let juju = bin.join("juju");
    std::os::unix::fs::symlink(jujusim_bin(), &juju).expect("symlink");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(python())
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/jubilant",
        ])
        .current_dir(repo)
        .env("JUJU", &juju)
        .env("PATH", path)
        .env("JUJUSIM_ROOT", &root)
        .env("ZK_CHARM_PACKED", packed_charm())
        .env_remove("JUJU_DATA")
        .output()
        .expect("pytest runs");
    let text = format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" passed"), "{text}");
    assert!(!text.contains("skipped"), "nothing skipped: {text}");
    let left: Vec<_> = std::fs::read_dir(root.join("models"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "models left behind: {left:?}");
    let running = processes_under(&root);
    assert!(running.is_empty(), "processes left behind: {running:?}");
}
