//! The production substrate: the `charmed-zookeeper` snap, as Charmed ZooKeeper runs it on
//! machines (same revision pin and hold, same paths, same service), with `SERVER_JVMFLAGS` in
//! `/etc/environment` quoted and merged with what is already there.

use std::path::PathBuf;
use std::process::Command;

use super::render::{self, Flavor, Paths};
use super::{write_if_changed, Workload, WorkloadError};

pub const SNAP_NAME: &str = "charmed-zookeeper";
pub const SNAP_REVISION: &str = "40";
pub const SERVICE: &str = "charmed-zookeeper.daemon";

pub struct SnapWorkload {
    /// `/` in production; a temporary directory in tests.
    root: PathBuf,
    /// The `snap` command (a stand-in in tests).
    snap: PathBuf,
    paths: Paths,
}

impl SnapWorkload {
    pub fn new(root: PathBuf) -> SnapWorkload {
        Self::with_snap_command(root, PathBuf::from("snap"))
    }

    pub fn with_snap_command(root: PathBuf, snap: PathBuf) -> SnapWorkload {
        let r = |p: &str| root.join(p.trim_start_matches('/'));
        let paths = Paths {
            conf_dir: r("/var/snap/charmed-zookeeper/current/etc/zookeeper"),
            data_dir: r("/var/snap/charmed-zookeeper/common/var/lib/zookeeper/data"),
            data_log_dir: r("/var/snap/charmed-zookeeper/common/var/lib/zookeeper/data-log"),
            log_dir: r("/var/snap/charmed-zookeeper/common/var/log/zookeeper"),
        };
        SnapWorkload { root, snap, paths }
    }

    fn snap_cmd(&self, args: &[&str]) -> Result<String, WorkloadError> {
        let out =
            Command::new(&self.snap)
                .args(args)
                .output()
                .map_err(|e| WorkloadError::Command {
                    command: format!("snap {}", args.join(" ")),
                    status: "not started".into(),
                    stderr: e.to_string(),
                })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(WorkloadError::Command {
                command: format!("snap {}", args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn environment_file(&self) -> PathBuf {
        self.root.join("etc/environment")
    }
}

/// `snap services <svc>` prints `Service  Startup  Current  Notes` then one row per service.
pub fn service_active(output: &str, service: &str) -> bool {
    output.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.first() == Some(&service) && cols.get(2) == Some(&"active")
    })
}

impl Workload for SnapWorkload {
    fn flavor(&self) -> Flavor {
        Flavor::Snap
    }

    fn paths(&self) -> &Paths {
        &self.paths
    }

    fn install(&self) -> Result<(), WorkloadError> {
        if self.snap_cmd(&["list", SNAP_NAME]).is_err() {
            self.snap_cmd(&["install", SNAP_NAME, &format!("--revision={SNAP_REVISION}")])?;
        }
        self.snap_cmd(&["refresh", "--hold", SNAP_NAME])?;
        Ok(())
    }

    fn set_jvm_flags(&self, flags: &[String]) -> Result<bool, WorkloadError> {
        let path = self.environment_file();
        let current = self.read(&path)?.unwrap_or_default();
        write_if_changed(&path, &render::etc_environment(&current, flags), false)
    }

    fn start(&self) -> Result<(), WorkloadError> {
        self.snap_cmd(&["start", "--enable", SERVICE]).map(drop)
    }

    fn stop(&self) -> Result<(), WorkloadError> {
        self.snap_cmd(&["stop", SERVICE]).map(drop)
    }

    fn restart(&self) -> Result<(), WorkloadError> {
        self.snap_cmd(&["restart", SERVICE]).map(drop)
    }

    fn alive(&self) -> bool {
        self.snap_cmd(&["services", SERVICE])
            .map(|o| service_active(&o, SERVICE))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A stand-in `snap` that records its arguments and answers like the real one.
    fn fake_snap(dir: &Path, installed: bool) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let log = dir.join("snap.log");
        let script = dir.join("snap");
        let list_rc = if installed { 0 } else { 1 };
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$1\" in\n  list) exit {list_rc} ;;\n  services) printf 'Service  Startup  Current  Notes\\ncharmed-zookeeper.daemon  enabled  active  -\\n' ;;\nesac\nexit 0\n",
                log = log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("snap.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn install_pins_and_holds_then_service_commands() {
        let dir = tempfile::tempdir().unwrap();
        let w =
            SnapWorkload::with_snap_command(dir.path().join("root"), fake_snap(dir.path(), false));
        w.install().unwrap();
        w.start().unwrap();
        assert!(w.alive());
        w.restart().unwrap();
        w.stop().unwrap();
        assert_eq!(
            calls(dir.path()),
            [
                "list charmed-zookeeper",
                "install charmed-zookeeper --revision=40",
                "refresh --hold charmed-zookeeper",
                "start --enable charmed-zookeeper.daemon",
                "services charmed-zookeeper.daemon",
                "restart charmed-zookeeper.daemon",
                "stop charmed-zookeeper.daemon",
            ]
        );
        // Already installed: no second install.
        let dir = tempfile::tempdir().unwrap();
        let w =
            SnapWorkload::with_snap_command(dir.path().join("root"), fake_snap(dir.path(), true));
        w.install().unwrap();
        assert_eq!(
            calls(dir.path()),
            ["list charmed-zookeeper", "refresh --hold charmed-zookeeper"]
        );
    }

    #[test]
    fn paths_and_environment_under_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/environment"), "PATH=\"/usr/bin\"\n").unwrap();
        let w = SnapWorkload::with_snap_command(root.clone(), fake_snap(dir.path(), true));
        assert_eq!(
            w.paths().zoo_cfg(),
            root.join("var/snap/charmed-zookeeper/current/etc/zookeeper/zoo.cfg")
        );
        assert!(w
            .set_jvm_flags(&["-Dzookeeper.superUser=super".into()])
            .unwrap());
        assert!(!w
            .set_jvm_flags(&["-Dzookeeper.superUser=super".into()])
            .unwrap());
        assert_eq!(
            std::fs::read_to_string(root.join("etc/environment")).unwrap(),
            "PATH=\"/usr/bin\"\nSERVER_JVMFLAGS=\"-Dzookeeper.superUser=super\"\n"
        );
    }

    #[test]
    fn services_output_parsing() {
        assert!(service_active(
            "Service  Startup  Current  Notes\ncharmed-zookeeper.daemon  enabled  active  -\n",
            SERVICE
        ));
        assert!(!service_active(
            "Service  Startup  Current  Notes\ncharmed-zookeeper.daemon  enabled  inactive  -\n",
            SERVICE
        ));
        assert!(!service_active("", SERVICE));
    }
}
