//! ZooKeeper's process and files: pure rendering ([`render`]), and the two substrates that run
//! the server behind one trait ([`Workload`]).
//!
//! How the charm picks the substrate: when the hook environment has `JUJUSIM_WORKLOAD_DIR` (set by
//! jujusim for every hook), the **local** substrate runs ZooKeeper from the Debian package
//! (`java ... QuorumPeerMain`) with its files under that directory and its PID in
//! `zookeeper.pid` there. Otherwise the **snap** substrate manages the `charmed-zookeeper` snap,
//! as Charmed ZooKeeper does on machines. `ZOOKEEPER_CHARM_SUBSTRATE=snap|local` overrides the
//! choice (with `local`, `ZOOKEEPER_CHARM_WORKLOAD_DIR` names the directory).

pub mod local;
pub mod render;
pub mod snap;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use render::{Flavor, Paths};

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{what} is missing: {hint}")]
    Missing { what: String, hint: String },
    #[error("the ZooKeeper server did not start: {detail}")]
    StartFailed { detail: String },
}

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WorkloadError + '_ {
    move |source| WorkloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A place where a ZooKeeper server runs.
pub trait Workload {
    fn flavor(&self) -> Flavor;
    fn paths(&self) -> &Paths;
    /// Makes the software available (install the snap / check java and the jar). Idempotent.
    fn install(&self) -> Result<(), WorkloadError>;
    /// Stores the JVM flags where the server's start picks them up; true if they changed.
    fn set_jvm_flags(&self, flags: &[String]) -> Result<bool, WorkloadError>;
    fn start(&self) -> Result<(), WorkloadError>;
    fn stop(&self) -> Result<(), WorkloadError>;
    fn restart(&self) -> Result<(), WorkloadError> {
        self.stop()?;
        self.start()
    }
    /// The server process is running.
    fn alive(&self) -> bool;

    /// The ZooKeeper build this charm carries ("" = the distribution's package, the only one
    /// the snap substrate knows today: its revision is pinned at install).
    fn offered_build(&self) -> String {
        String::new()
    }
    /// The build can be started here (installed before, or carried by this charm).
    fn build_available(&self, build: &str) -> bool {
        build.is_empty()
    }
    /// Installs `build` if needed and makes it the one the next start runs; true if that
    /// changed.
    fn set_build(&self, build: &str) -> Result<bool, WorkloadError> {
        if build.is_empty() {
            Ok(false)
        } else {
            Err(WorkloadError::Missing {
                what: format!("ZooKeeper build {build}"),
                hint: "this substrate runs the pinned snap revision only".into(),
            })
        }
    }
    /// The build the running server was started with (`None`: not recorded, a server started
    /// before builds were recorded, which ran the distribution's package).
    fn started_build(&self) -> Option<String> {
        None
    }
    /// The last lines of the server log, for error messages.
    fn log_tail(&self, _lines: usize) -> String {
        String::new()
    }

    /// Reads a file; `None` if it does not exist. One that cannot be read (a directory in its
    /// place, not text) is moved aside with a warning and counts as missing: the charm renders
    /// it again.
    fn read(&self, path: &Path) -> Result<Option<String>, WorkloadError> {
        match std::fs::read_to_string(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                let (_, said) = crate::files::move_aside(path);
                tracing::warn!(
                    "{} is unreadable ({e}); {said}; it is written again",
                    path.display()
                );
                Ok(None)
            }
        }
    }

    /// Removes a file (nothing when it is not there).
    fn remove(&self, path: &Path) -> Result<(), WorkloadError> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path)(e)),
            _ => Ok(()),
        }
    }

    /// Writes `content` atomically unless the file already holds it; true if it changed.
    /// Private files (JAAS: passwords) are created with mode 0600.
    fn write(&self, path: &Path, content: &str, private: bool) -> Result<bool, WorkloadError> {
        write_if_changed(path, content, private)
    }

    /// The server was started before (its initial dynamic configuration exists).
    fn initialized(&self) -> bool {
        self.paths().dynamic().exists()
    }

    /// Forgets the dynamic configuration ZooKeeper wrote (`<dynamic>.<version>` files and the
    /// `dynamicConfigFile` line pointing at them), for a server that must join again from a
    /// fresh initial configuration.
    fn reset_dynamic_config(&self) -> Result<(), WorkloadError> {
        let paths = self.paths();
        let base = paths.dynamic();
        let prefix = format!(
            "{}.",
            base.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        if let Ok(entries) = std::fs::read_dir(&paths.conf_dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let p = e.path();
                    std::fs::remove_file(&p).map_err(io_err(&p))?;
                }
            }
        }
        let cfg = paths.zoo_cfg();
        if let Some(text) = self.read(&cfg)? {
            let fixed: String = text
                .lines()
                .map(|l| {
                    if l.starts_with("dynamicConfigFile=") {
                        format!("dynamicConfigFile={}", base.display())
                    } else {
                        l.to_string()
                    }
                })
                .map(|l| l + "\n")
                .collect();
            self.write(&cfg, &fixed, false)?;
        }
        Ok(())
    }
}

pub fn write_if_changed(path: &Path, content: &str, private: bool) -> Result<bool, WorkloadError> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(current) = std::fs::read(path) {
        if current == content.as_bytes() {
            return Ok(false);
        }
    }
    if path.is_dir() {
        let (_, said) = crate::files::move_aside(path);
        tracing::warn!(
            "{} is a directory; {said}; writing the file",
            path.display()
        );
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(dir))?;
    tmp.write_all(content.as_bytes()).map_err(io_err(path))?;
    let mode = if private { 0o600 } else { 0o644 };
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(true)
}

/// The substrate for this hook, from the environment (see the module doc).
pub fn from_env(env: &BTreeMap<String, String>) -> Box<dyn Workload> {
    let choice = env.get("ZOOKEEPER_CHARM_SUBSTRATE").map(String::as_str);
    let local_dir = env
        .get("ZOOKEEPER_CHARM_WORKLOAD_DIR")
        .or_else(|| env.get("JUJUSIM_WORKLOAD_DIR"))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    match (choice, local_dir) {
        (Some("snap"), _) | (None, None) => Box::new(snap::SnapWorkload::new(PathBuf::from("/"))),
        (_, Some(dir)) => Box::new(
            local::LocalWorkload::new(dir).with_charm_dir(
                env.get("JUJU_CHARM_DIR")
                    .or_else(|| env.get("CHARM_DIR"))
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from),
            ),
        ),
        (Some(_), None) => Box::new(snap::SnapWorkload::new(PathBuf::from("/"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substrate_choice() {
        let env = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(from_env(&env(&[])).flavor(), Flavor::Snap);
        assert_eq!(
            from_env(&env(&[("JUJUSIM_WORKLOAD_DIR", "/tmp/w")])).flavor(),
            Flavor::Local
        );
        assert_eq!(
            from_env(&env(&[
                ("JUJUSIM_WORKLOAD_DIR", "/tmp/w"),
                ("ZOOKEEPER_CHARM_SUBSTRATE", "snap")
            ]))
            .flavor(),
            Flavor::Snap
        );
        assert_eq!(
            from_env(&env(&[
                ("ZOOKEEPER_CHARM_SUBSTRATE", "local"),
                ("ZOOKEEPER_CHARM_WORKLOAD_DIR", "/tmp/x")
            ]))
            .flavor(),
            Flavor::Local
        );
    }

    #[test]
    fn writes_only_on_change_and_keeps_secrets_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conf/jaas.cfg");
        assert!(write_if_changed(&p, "a", true).unwrap());
        assert!(!write_if_changed(&p, "a", true).unwrap());
        assert!(write_if_changed(&p, "b", true).unwrap());
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
