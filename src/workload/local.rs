//! The local substrate (used under jujusim): ZooKeeper from the Debian package, run as
//! `java ... org.apache.zookeeper.server.quorum.QuorumPeerMain <zoo.cfg>`, with config, data and
//! logs under the unit's workload directory, supervised through `zookeeper.pid` there (jujusim's
//! `kill-workload` and `destroy` find the process through that file).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::render::{Flavor, Paths};
use super::{io_err, write_if_changed, Workload, WorkloadError};

pub const JAVA: &str = "/usr/bin/java";
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// The Debian package ships slf4j-api without a binding; slf4j-simple makes the server log.
/// The server's class path: the Debian jar, a logger, and the Netty codec and resolver the TLS
/// ports need (the Debian jar's manifest lists netty-handler but not these; without them the
/// Netty server factory fails with ClassNotFoundException ByteToMessageDecoder).
pub const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:\
/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar";
pub const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

pub struct LocalWorkload {
    dir: PathBuf,
    paths: Paths,
    /// The charm's directory: a charm packed with `--workload` carries its ZooKeeper build
    /// under `workload/` there (see [`LocalWorkload::offered_build`]).
    charm_dir: Option<PathBuf>,
}

/// Where a charm keeps its pinned ZooKeeper build: `workload/build` names it (a Debian
/// version), `workload/zookeeper.jar` and `workload/zookeeper-jute.jar` are its jars.
pub const CHARM_BUILD_DIR: &str = "workload";
/// The jars of one build, first on the class path (the rest comes from the distribution).
pub const BUILD_JARS: &[&str] = &["zookeeper-jute.jar", "zookeeper.jar"];

impl LocalWorkload {
    pub fn new(dir: PathBuf) -> LocalWorkload {
        let paths = Paths {
            conf_dir: dir.join("conf"),
            data_dir: dir.join("data"),
            data_log_dir: dir.join("data-log"),
            log_dir: dir.join("logs"),
        };
        LocalWorkload {
            dir,
            paths,
            charm_dir: None,
        }
    }

    pub fn with_charm_dir(mut self, charm_dir: Option<PathBuf>) -> LocalWorkload {
        self.charm_dir = charm_dir;
        self
    }

    /// The build the next start runs (`conf/workload.build`; "" = the distribution's).
    fn build_file(&self) -> PathBuf {
        self.paths.conf_dir.join("workload.build")
    }

    /// The build the running server was started with.
    fn started_build_file(&self) -> PathBuf {
        self.dir.join("zookeeper.build")
    }

    /// Installed builds: `dist/<build>/` holds its jars.
    fn dist(&self, build: &str) -> PathBuf {
        self.dir.join("dist").join(build)
    }

    fn charm_build_dir(&self) -> Option<PathBuf> {
        self.charm_dir.as_ref().map(|d| d.join(CHARM_BUILD_DIR))
    }

    /// The class path for a build: its jars first (jute first, so the jar's manifest does not
    /// pull the distribution's in before it), then the distribution's.
    fn classpath(&self, build: &str) -> String {
        if build.is_empty() {
            return CLASSPATH.to_string();
        }
        let dist = self.dist(build);
        let mut parts: Vec<String> = BUILD_JARS
            .iter()
            .map(|j| dist.join(j).to_string_lossy().into_owned())
            .collect();
        parts.push(CLASSPATH.to_string());
        parts.join(":")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("zookeeper.pid")
    }

    fn flags_file(&self) -> PathBuf {
        self.paths.conf_dir.join("jvm.flags")
    }

    fn log_file(&self) -> PathBuf {
        self.paths.log_dir.join("zookeeper.log")
    }

    pub fn pid(&self) -> Option<i32> {
        fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// Alive and really a ZooKeeper server: not a zombie, and not a reused PID.
pub fn server_process_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some('Z') | Some('X') | None) {
        return false;
    }
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(MAIN_CLASS))
        .unwrap_or(false)
}

/// SIGTERM, wait, SIGKILL after `grace`; reaps the process if it is our child.
pub fn stop_pid(pid: i32, grace: Duration) {
    let reap = || {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on a pid; harmless if it is not our child.
        unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    };
    // SAFETY: sending a signal to a pid we verified is a ZooKeeper server.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while server_process_alive(pid) && Instant::now() < deadline {
        reap();
        std::thread::sleep(Duration::from_millis(20));
    }
    if server_process_alive(pid) {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while server_process_alive(pid) && Instant::now() < deadline {
            reap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    reap();
}

impl Workload for LocalWorkload {
    fn flavor(&self) -> Flavor {
        Flavor::Local
    }

    fn paths(&self) -> &Paths {
        &self.paths
    }

    fn install(&self) -> Result<(), WorkloadError> {
        for f in [JAVA, ZOOKEEPER_JAR] {
            if !Path::new(f).exists() {
                return Err(WorkloadError::Missing {
                    what: f.to_string(),
                    hint: "install ZooKeeper from the distribution: apt-get install -y zookeeper"
                        .into(),
                });
            }
        }
        for d in [
            &self.paths.conf_dir,
            &self.paths.data_dir,
            &self.paths.data_log_dir,
            &self.paths.log_dir,
        ] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        Ok(())
    }

    fn set_jvm_flags(&self, flags: &[String]) -> Result<bool, WorkloadError> {
        write_if_changed(&self.flags_file(), &(flags.join("\n") + "\n"), false)
    }

    fn start(&self) -> Result<(), WorkloadError> {
        if self.alive() {
            return Ok(());
        }
        self.install()?;
        let flags_path = self.flags_file();
        let flags: Vec<String> = fs::read_to_string(&flags_path)
            .map_err(io_err(&flags_path))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        let log_path = self.log_file();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        let log2 = log.try_clone().map_err(io_err(&log_path))?;
        let build = fs::read_to_string(self.build_file())
            .map(|b| b.trim().to_string())
            .unwrap_or_default();
        if !self.build_available(&build) {
            return Err(WorkloadError::Missing {
                what: format!("ZooKeeper build {build}"),
                hint: "this charm does not carry it: refresh to a charm packed with it".into(),
            });
        }
        let mut cmd = Command::new(JAVA);
        cmd.args(&flags)
            .arg("-cp")
            .arg(self.classpath(&build))
            .arg(MAIN_CLASS)
            .arg(self.paths.zoo_cfg())
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        // SAFETY: setsid is async-signal-safe; the server gets its own session so it outlives the
        // hook and is not hit by signals sent to the hook's process group.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| WorkloadError::StartFailed {
            detail: format!("cannot run {JAVA}: {e}"),
        })?;
        write_if_changed(&self.pid_file(), &format!("{}\n", child.id()), false)?;
        write_if_changed(&self.started_build_file(), &format!("{build}\n"), false)?;
        Ok(())
    }

    fn offered_build(&self) -> String {
        self.charm_build_dir()
            .and_then(|d| fs::read_to_string(d.join("build")).ok())
            .map(|b| b.trim().to_string())
            .unwrap_or_default()
    }

    fn build_available(&self, build: &str) -> bool {
        if build.is_empty() {
            return Path::new(ZOOKEEPER_JAR).exists();
        }
        let installed = BUILD_JARS
            .iter()
            .all(|j| self.dist(build).join(j).is_file());
        installed
            || (self.offered_build() == build
                && self
                    .charm_build_dir()
                    .is_some_and(|d| BUILD_JARS.iter().all(|j| d.join(j).is_file())))
    }

    fn set_build(&self, build: &str) -> Result<bool, WorkloadError> {
        if !build.is_empty() {
            let dist = self.dist(build);
            if !BUILD_JARS.iter().all(|j| dist.join(j).is_file()) {
                let src = match self.charm_build_dir() {
                    Some(d) if self.offered_build() == build => d,
                    _ => {
                        return Err(WorkloadError::Missing {
                            what: format!("ZooKeeper build {build}"),
                            hint: format!(
                                "this charm carries {}: refresh to a charm packed with {build}",
                                crate::upgrade::label(&self.offered_build())
                            ),
                        })
                    }
                };
                // Installed whole or not at all: copied into a scratch directory, renamed.
                let parent = self.dir.join("dist");
                fs::create_dir_all(&parent).map_err(io_err(&parent))?;
                let scratch = tempfile::Builder::new()
                    .prefix(".install-")
                    .tempdir_in(&parent)
                    .map_err(io_err(&parent))?;
                for j in BUILD_JARS {
                    let from = src.join(j);
                    fs::copy(&from, scratch.path().join(j)).map_err(io_err(&from))?;
                }
                let _ = fs::remove_dir_all(&dist);
                let tmp = scratch.keep();
                fs::rename(&tmp, &dist).map_err(io_err(&dist))?;
                tracing::info!("installed ZooKeeper build {build} in {}", dist.display());
            }
        }
        write_if_changed(&self.build_file(), &format!("{build}\n"), false)
    }

    fn started_build(&self) -> Option<String> {
        fs::read_to_string(self.started_build_file())
            .ok()
            .map(|b| b.trim().to_string())
    }

    fn stop(&self) -> Result<(), WorkloadError> {
        if let Some(pid) = self.pid() {
            if server_process_alive(pid) {
                stop_pid(pid, Duration::from_secs(10));
            }
        }
        match fs::remove_file(self.pid_file()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.pid_file())(e)),
        }
    }

    fn alive(&self) -> bool {
        self.pid().is_some_and(server_process_alive)
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.log_file()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A charm directory carrying build `b` (fake jars).
    fn charm_with(dir: &Path, b: &str) -> PathBuf {
        let c = dir.join("charm");
        fs::create_dir_all(c.join(CHARM_BUILD_DIR)).unwrap();
        fs::write(c.join(CHARM_BUILD_DIR).join("build"), format!("{b}\n")).unwrap();
        for j in BUILD_JARS {
            fs::write(c.join(CHARM_BUILD_DIR).join(j), format!("{b} {j}")).unwrap();
        }
        c
    }

    #[test]
    fn a_pinned_build_is_installed_from_the_charm_and_comes_first_on_the_class_path() {
        let tmp = tempfile::tempdir().unwrap();
        let charm = charm_with(tmp.path(), "3.8.0-11+deb12u2");
        let w = LocalWorkload::new(tmp.path().join("w")).with_charm_dir(Some(charm));
        assert_eq!(w.offered_build(), "3.8.0-11+deb12u2");
        assert!(w.build_available("3.8.0-11+deb12u2"));
        assert!(!w.build_available("3.8.0-11+deb12u1"));
        // Another build: refused with what this charm carries.
        let e = w.set_build("3.8.0-11+deb12u1").unwrap_err().to_string();
        assert!(e.contains("this charm carries 3.8.0-11+deb12u2"), "{e}");
        assert!(w.set_build("3.8.0-11+deb12u2").unwrap());
        assert!(!w.set_build("3.8.0-11+deb12u2").unwrap(), "unchanged");
        let dist = tmp.path().join("w/dist/3.8.0-11+deb12u2");
        assert_eq!(
            fs::read_to_string(dist.join("zookeeper.jar")).unwrap(),
            "3.8.0-11+deb12u2 zookeeper.jar"
        );
        let cp = w.classpath("3.8.0-11+deb12u2");
        assert!(
            cp.starts_with(
                &dist
                    .join("zookeeper-jute.jar")
                    .to_string_lossy()
                    .into_owned()
            ),
            "{cp}"
        );
        assert!(cp.ends_with(CLASSPATH), "{cp}");
        assert_eq!(w.classpath(""), CLASSPATH);
        // Installed once, it stays available to a charm that no longer carries it.
        let other = charm_with(&tmp.path().join("o"), "3.8.0-11+deb12u1");
        let w2 = LocalWorkload::new(tmp.path().join("w")).with_charm_dir(Some(other));
        assert!(w2.build_available("3.8.0-11+deb12u2"));
        assert!(w2.build_available("3.8.0-11+deb12u1"));
    }

    #[test]
    fn without_a_pin_the_distributions_package_is_the_build() {
        let tmp = tempfile::tempdir().unwrap();
        let w = LocalWorkload::new(tmp.path().join("w"));
        assert_eq!(w.offered_build(), "");
        assert!(w.set_build("").is_ok());
        assert!(w.build_available("") == Path::new(ZOOKEEPER_JAR).exists());
        assert_eq!(w.started_build(), None);
    }
}
