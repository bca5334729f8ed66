//! Real ZooKeeper 3.8 ensembles for integration tests (cargo feature `harness`).
//!
//! Each [`TestEnsemble`] claims a private loopback range `127.A.B.0/24` (so tests run in parallel on
//! the standard ports 2181/2888/3888) and a private temporary directory, starts server `id` on
//! `127.A.B.(10+id)` straight from the Debian `zookeeper` package (`java ... QuorumPeerMain`, no
//! systemd), and waits for quorum by polling `mntr`.
//!
//! Every JVM runs in its own session (`setsid`), with its output in `<dir>/zk<id>/zk.log`, and
//! is stopped by PID when the `TestEnsemble` is dropped (SIGCONT, SIGTERM, then SIGKILL after a
//! deadline), also while a panic unwinds. Each JVM also gets `PR_SET_PDEATHSIG(SIGKILL)`, so it
//! dies if the test process is killed outright. Linux sends that signal when the *thread* that
//! started the JVM exits: create the `TestEnsemble` on the thread that owns it (a `#[test]`, or a
//! `#[tokio::test]` with its default current-thread runtime), not on a short-lived helper thread.
//!
//! The servers are configured as in `zookeeper-lab.md`: dynamic reconfiguration enabled,
//! `standaloneEnabled=false`, all four-letter words allowed, no admin server, the SASL auth
//! provider, a JAAS file with `user_super` and any extra users, `superDigest` and
//! `superUser=super` (so `super` is super through SASL and through digest).
//!
//! With [`EnsembleOptions::tls`], a throwaway CA is made with `openssl`, and every server also
//! serves TLS on `<ip>:2182` (Netty server factory, PEM key and trust stores, client
//! certificates required); the Debian jar's manifest misses `netty-codec`, which is added to the
//! class path.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::quorum::member::{Role, ServerSpec};
use crate::secret::Secret;
use crate::zk::{self, Auth, FourLw};

pub const JAVA: &str = "/usr/bin/java";
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
pub const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";
pub const CLIENT_PORT: u16 = 2181;
pub const QUORUM_PORT: u16 = 2888;
pub const ELECTION_PORT: u16 = 3888;
/// The TLS client port when [`EnsembleOptions::tls`] is set.
pub const SECURE_CLIENT_PORT: u16 = 2182;
pub const OPENSSL: &str = "/usr/bin/openssl";
/// Added to the class path for TLS (the Netty server factory).
pub const NETTY_TLS_JARS: [&str; 2] = [
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
];

/// Why the harness could not do what a test asked.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0} is missing: install ZooKeeper: apt-get install -y zookeeper")]
    MissingZooKeeper(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("no quorum among servers {ids:?} after {after:?}:\n{detail}")]
    NoQuorum {
        ids: Vec<u32>,
        after: Duration,
        detail: String,
    },
    #[error("server {id}: {reason}")]
    BadServer { id: u32, reason: String },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// How to run the servers.
#[derive(Debug, Clone)]
pub struct EnsembleOptions {
    /// `tickTime` in ms. 500 (the default) detects a hung leader in 2.5 s and allows session
    /// timeouts of 1-10 s.
    pub tick_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// The password of `super` (SASL and digest).
    pub super_password: String,
    /// More SASL users for the JAAS `Server` section: (user, password).
    pub extra_sasl_users: Vec<(String, String)>,
    /// Lines appended to every `zoo.cfg` (later keys override earlier ones).
    pub extra_cfg: Vec<String>,
    /// `-Xmx` value.
    pub heap: String,
    /// Deadline for the first quorum.
    pub quorum_timeout: Duration,
    /// More JVM flags (`-Dkey=value`), after the harness's own.
    pub extra_jvm_flags: Vec<String>,
    /// Also serve TLS on `<ip>:2182` (Netty), with a test CA made by `openssl`: each server's
    /// certificate names its IP, and clients must present a certificate from the same CA
    /// (`ssl.clientAuth=need`). See [`TestEnsemble::tls_ca_pem`] and
    /// [`TestEnsemble::tls_client_pem`]. Four-letter words stay on the plain port.
    pub tls: bool,
}

impl Default for EnsembleOptions {
    fn default() -> Self {
        EnsembleOptions {
            tick_ms: 500,
            init_limit: 10,
            sync_limit: 5,
            super_password: "super-test-pw".into(),
            extra_sasl_users: Vec::new(),
            extra_cfg: Vec::new(),
            heap: "128m".into(),
            quorum_timeout: Duration::from_secs(60),
            extra_jvm_flags: Vec::new(),
            tls: false,
        }
    }
}

#[derive(Debug)]
struct Server {
    dir: PathBuf,
    child: Option<Child>,
}

/// A running ensemble; dropping it stops every JVM it started.
#[derive(Debug)]
pub struct TestEnsemble {
    range: loopback::Range,
    root: tempfile::TempDir,
    opts: EnsembleOptions,
    servers: BTreeMap<u32, Server>,
    quorum_after: Duration,
}

const POLL: Duration = Duration::from_millis(50);
const FOUR_LW_TIMEOUT: Duration = Duration::from_secs(1);
const STOP_DEADLINE: Duration = Duration::from_secs(10);

impl TestEnsemble {
    /// Starts servers `1..=n` as one ensemble and waits for quorum.
    pub async fn start(n: u32, opts: EnsembleOptions) -> Result<TestEnsemble, HarnessError> {
        for f in [JAVA, ZOOKEEPER_JAR, SLF4J_SIMPLE_JAR] {
            if !Path::new(f).exists() {
                return Err(HarnessError::MissingZooKeeper(f.to_string()));
            }
        }
        let range =
            loopback::Range::claim_for_process().map_err(io_err("claiming a loopback range"))?;
        let root = tempfile::Builder::new()
            .prefix("zk-ensemble-")
            .tempdir()
            .map_err(io_err("creating the ensemble directory"))?;
        let mut e = TestEnsemble {
            range,
            root,
            opts,
            servers: BTreeMap::new(),
            quorum_after: Duration::ZERO,
        };
        let ids: Vec<u32> = (1..=n).collect();
        if e.opts.tls {
            e.make_test_ca()?;
        }
        let started = Instant::now();
        for &id in &ids {
            e.write_config(id, &ids, Role::Participant)?;
        }
        for &id in &ids {
            e.spawn(id)?;
        }
        let timeout = e.opts.quorum_timeout;
        e.wait_quorum(&ids, timeout).await?;
        e.quorum_after = started.elapsed();
        Ok(e)
    }

    /// How long the first quorum took from launching the JVMs.
    pub fn time_to_quorum(&self) -> Duration {
        self.quorum_after
    }

    /// Server `id`'s address, `127.A.B.(10+id)`.
    pub fn ip(&self, id: u32) -> Ipv4Addr {
        self.range.addr((10 + id).min(254) as u8)
    }

    /// Server `id`'s client address, `127.A.B.(10+id):2181`.
    pub fn host(&self, id: u32) -> String {
        format!("{}:{CLIENT_PORT}", self.ip(id))
    }

    pub fn hosts(&self, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&id| self.host(id)).collect()
    }

    /// Ids of the servers this ensemble has started (running or not).
    pub fn ids(&self) -> Vec<u32> {
        self.servers.keys().copied().collect()
    }

    /// `server.<id>=<ip>:2888:3888:<role>;<ip>:2181`.
    pub fn server_spec(&self, id: u32, role: Role) -> ServerSpec {
        let ip = self.ip(id).to_string();
        ServerSpec::new(id, &ip, QUORUM_PORT, ELECTION_PORT, CLIENT_PORT).with_role(role)
    }

    /// `super` and its password.
    pub fn super_auth(&self) -> Auth {
        Auth::new("super", Secret::new(self.opts.super_password.clone()))
    }

    pub fn options(&self) -> &EnsembleOptions {
        &self.opts
    }

    /// Server `id`'s directory (`conf/`, `data/`, `zk.log`).
    pub fn dir(&self, id: u32) -> PathBuf {
        self.root.path().join(format!("zk{id}"))
    }

    /// The PID of server `id`'s JVM while it runs.
    pub fn pid(&self, id: u32) -> Option<u32> {
        self.servers.get(&id)?.child.as_ref().map(Child::id)
    }

    /// Every PID this ensemble currently runs.
    pub fn pids(&self) -> Vec<u32> {
        self.servers
            .values()
            .filter_map(|s| s.child.as_ref().map(Child::id))
            .collect()
    }

    /// Starts a new server `id` whose dynamic configuration lists `members` and itself: it
    /// joins as a non-voting follower until a reconfig adds it. Does not wait.
    pub fn start_joiner(&mut self, id: u32, members: &[u32]) -> Result<(), HarnessError> {
        self.start_joiner_as(id, members, Role::Participant)
    }

    /// [`TestEnsemble::start_joiner`], listing itself with `role`.
    pub fn start_joiner_as(
        &mut self,
        id: u32,
        members: &[u32],
        role: Role,
    ) -> Result<(), HarnessError> {
        if self.pid(id).is_some() {
            return Err(HarnessError::BadServer {
                id,
                reason: "already running".into(),
            });
        }
        let mut all: Vec<u32> = members.iter().copied().filter(|m| *m != id).collect();
        all.push(id);
        all.sort_unstable();
        self.write_config(id, &all, role)?;
        self.spawn(id)
    }

    /// Starts a stopped server again on its own (ZooKeeper-rewritten) files.
    pub fn restart(&mut self, id: u32) -> Result<(), HarnessError> {
        if !self.servers.contains_key(&id) {
            return Err(HarnessError::BadServer {
                id,
                reason: "never started".into(),
            });
        }
        if self.pid(id).is_some() {
            return Err(HarnessError::BadServer {
                id,
                reason: "already running".into(),
            });
        }
        self.spawn(id)
    }

    /// SIGTERM, wait, SIGKILL after a deadline; returns when the JVM has exited.
    pub async fn stop(&mut self, id: u32) -> Result<(), HarnessError> {
        self.signal_and_reap(id, libc::SIGTERM).await
    }

    /// SIGKILL; returns when the JVM has exited.
    pub async fn kill(&mut self, id: u32) -> Result<(), HarnessError> {
        self.signal_and_reap(id, libc::SIGKILL).await
    }

    /// SIGSTOP: the JVM hangs (sockets stay open) until [`TestEnsemble::resume`].
    pub fn pause(&self, id: u32) -> Result<(), HarnessError> {
        self.signal(id, libc::SIGSTOP)
    }

    /// SIGCONT after [`TestEnsemble::pause`].
    pub fn resume(&self, id: u32) -> Result<(), HarnessError> {
        self.signal(id, libc::SIGCONT)
    }

    fn signal(&self, id: u32, sig: libc::c_int) -> Result<(), HarnessError> {
        let pid = self.pid(id).ok_or_else(|| HarnessError::BadServer {
            id,
            reason: "not running".into(),
        })?;
        // SAFETY: kill(2) on a PID we spawned and have not reaped (so it cannot be reused).
        if unsafe { libc::kill(pid as libc::pid_t, sig) } != 0 {
            return Err(HarnessError::Io {
                what: format!("signal {sig} to server {id} (pid {pid})"),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    async fn signal_and_reap(&mut self, id: u32, sig: libc::c_int) -> Result<(), HarnessError> {
        let Some(server) = self.servers.get_mut(&id) else {
            return Ok(());
        };
        let Some(mut child) = server.child.take() else {
            return Ok(());
        };
        send(&child, libc::SIGCONT);
        send(&child, sig);
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() >= deadline => {
                    send(&child, libc::SIGKILL);
                    return child
                        .wait()
                        .map(|_| ())
                        .map_err(io_err(format!("waiting for server {id}")));
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => {
                    // Put it back so Drop still tries.
                    server.child = Some(child);
                    return Err(io_err(format!("waiting for server {id}"))(e));
                }
            }
        }
    }

    /// Polls `mntr` on `ids` until exactly one is `leading - broadcast` and the others follow or
    /// observe in broadcast. Returns the leader's id; on timeout, each server's last state and
    /// log tail.
    pub async fn wait_quorum(&self, ids: &[u32], timeout: Duration) -> Result<u32, HarnessError> {
        let started = Instant::now();
        let mut states: BTreeMap<u32, String> = BTreeMap::new();
        loop {
            let mut leaders = Vec::new();
            let mut all_ok = true;
            for &id in ids {
                let state = self.peer_state(id).await;
                match state.as_str() {
                    "leading - broadcast" => leaders.push(id),
                    "following - broadcast" | "observing - broadcast" => {}
                    _ => all_ok = false,
                }
                states.insert(id, state);
            }
            if all_ok && leaders.len() == 1 {
                return Ok(leaders[0]);
            }
            if started.elapsed() >= timeout {
                let detail = states
                    .iter()
                    .map(|(id, s)| format!("server {id}: {s}\n{}", indent(&self.log_tail(*id, 15))))
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(HarnessError::NoQuorum {
                    ids: ids.to_vec(),
                    after: started.elapsed(),
                    detail,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The id among `ids` whose `mntr` says `leading - broadcast`, if any (one pass, no wait).
    pub async fn leader(&self, ids: &[u32]) -> Option<u32> {
        for &id in ids {
            if self.peer_state(id).await == "leading - broadcast" {
                return Some(id);
            }
        }
        None
    }

    /// Server `id`'s peer state from `mntr`, or what prevented reading it.
    pub async fn peer_state(&self, id: u32) -> String {
        match zk::four_letter_word(&self.host(id), "mntr", FOUR_LW_TIMEOUT).await {
            Err(e) => format!("unreachable ({e})"),
            Ok(text) => match zk::parse_mntr(&text) {
                Ok(FourLw::Serving(m)) => m.peer_state().unwrap_or("no zk_peer_state").to_string(),
                Ok(FourLw::NotServing) => "not serving".to_string(),
                Err(e) => format!("unparsable ({e})"),
            },
        }
    }

    /// The last `lines` lines of server `id`'s log.
    pub fn log_tail(&self, id: u32, lines: usize) -> String {
        let text = fs::read(self.dir(id).join("zk.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn write_config(
        &mut self,
        id: u32,
        members: &[u32],
        self_role: Role,
    ) -> Result<(), HarnessError> {
        if id == 0 || id > 244 {
            return Err(HarnessError::BadServer {
                id,
                reason: "ids must be 1..=244".into(),
            });
        }
        let dir = self.dir(id);
        let conf = dir.join("conf");
        let data = dir.join("data");
        for d in [&conf, &data] {
            fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        let write = |path: PathBuf, text: String| {
            fs::write(&path, text).map_err(io_err(format!("writing {}", path.display())))
        };
        write(data.join("myid"), format!("{id}\n"))?;
        let dynamic: String = members
            .iter()
            .map(|&m| {
                let role = if m == id {
                    self_role
                } else {
                    Role::Participant
                };
                format!("{}\n", self.server_spec(m, role))
            })
            .collect();
        write(conf.join("zoo.cfg.dynamic"), dynamic)?;
        let o = &self.opts;
        let mut cfg = format!(
            "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\nreconfigEnabled=true\n\
             standaloneEnabled=false\ndynamicConfigFile={}\n4lw.commands.whitelist=*\n\
             admin.enableServer=false\nmaxClientCnxns=0\n\
             authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
            o.tick_ms,
            o.init_limit,
            o.sync_limit,
            data.display(),
            conf.join("zoo.cfg.dynamic").display()
        );
        if o.tls {
            let tls = conf.join("tls");
            fs::create_dir_all(&tls).map_err(io_err(format!("creating {}", tls.display())))?;
            let server = self.issue_cert(
                &tls.join("server"),
                &format!("zk-server-{id}"),
                Some(self.ip(id)),
            )?;
            cfg.push_str(&format!(
                "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
                 secureClientPort={SECURE_CLIENT_PORT}\nsecureClientPortAddress={}\n\
                 ssl.keyStore.location={}\nssl.keyStore.type=PEM\n\
                 ssl.trustStore.location={}\nssl.trustStore.type=PEM\nssl.clientAuth=need\n",
                self.ip(id),
                server.display(),
                self.tls_dir().join("ca.pem").display(),
            ));
        }
        for line in &o.extra_cfg {
            cfg.push_str(line);
            cfg.push('\n');
        }
        write(conf.join("zoo.cfg"), cfg)?;
        let mut users = vec![("super".to_string(), o.super_password.clone())];
        users.extend(o.extra_sasl_users.iter().cloned());
        let entries: Vec<String> = users
            .iter()
            .map(|(u, p)| {
                format!(
                    "    user_{u}=\"{}\"",
                    p.replace('\\', "\\\\").replace('"', "\\\"")
                )
            })
            .collect();
        write(
            conf.join("jaas.conf"),
            format!(
                "Server {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n{};\n}};\n",
                entries.join("\n")
            ),
        )?;
        self.servers.entry(id).or_insert(Server {
            dir: dir.clone(),
            child: None,
        });
        Ok(())
    }

    fn tls_dir(&self) -> PathBuf {
        self.root.path().join("tls")
    }

    /// Server `id`'s TLS client address, `127.A.B.(10+id):2182` (with [`EnsembleOptions::tls`]).
    pub fn secure_host(&self, id: u32) -> String {
        format!("{}:{SECURE_CLIENT_PORT}", self.ip(id))
    }

    /// The test CA's certificate (PEM), with [`EnsembleOptions::tls`].
    pub fn tls_ca_pem(&self) -> Option<String> {
        fs::read_to_string(self.tls_dir().join("ca.pem")).ok()
    }

    /// A client certificate and its key (PEM) issued by the test CA, with
    /// [`EnsembleOptions::tls`].
    pub fn tls_client_pem(&self) -> Option<(String, String)> {
        let dir = self.tls_dir();
        Some((
            fs::read_to_string(dir.join("client.crt")).ok()?,
            fs::read_to_string(dir.join("client.key")).ok()?,
        ))
    }

    fn openssl(&self, what: &str, args: &[&str]) -> Result<(), HarnessError> {
        if !Path::new(OPENSSL).exists() {
            return Err(HarnessError::MissingZooKeeper(format!(
                "{OPENSSL} (for the TLS test CA: apt-get install -y openssl)"
            )));
        }
        let out = Command::new(OPENSSL)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err(format!("running openssl to {what}")))?;
        if !out.status.success() {
            return Err(HarnessError::Command {
                what: format!("openssl ({what})"),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(())
    }

    /// A throwaway CA, and a client certificate from it.
    fn make_test_ca(&self) -> Result<(), HarnessError> {
        let dir = self.tls_dir();
        fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let key = dir.join("ca.key");
        let pem = dir.join("ca.pem");
        self.openssl(
            "make the test CA",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=zookeeper-charm test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &key.to_string_lossy(),
                "-out",
                &pem.to_string_lossy(),
            ],
        )?;
        self.issue_cert(&dir.join("client"), "zk-test-client", None)?;
        Ok(())
    }

    /// Issues `<base>.key` and `<base>.crt` from the test CA (with an IP SAN if given) and
    /// returns `<base>.pem`, key and certificate together (ZooKeeper's PEM key store).
    fn issue_cert(
        &self,
        base: &Path,
        cn: &str,
        ip: Option<Ipv4Addr>,
    ) -> Result<PathBuf, HarnessError> {
        let ca = self.tls_dir();
        let with = |ext: &str| base.with_extension(ext).to_string_lossy().into_owned();
        let (key, csr, crt, extfile, pem) = (
            with("key"),
            with("csr"),
            with("crt"),
            with("ext"),
            with("pem"),
        );
        let mut ext = String::from(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\n",
        );
        if let Some(ip) = ip {
            ext.push_str(&format!("subjectAltName=IP:{ip}\n"));
        }
        fs::write(&extfile, ext).map_err(io_err(format!("writing {extfile}")))?;
        self.openssl(
            &format!("make a key for {cn}"),
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        )?;
        self.openssl(
            &format!("sign {cn}"),
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-days",
                "2",
                "-CA",
                &ca.join("ca.pem").to_string_lossy(),
                "-CAkey",
                &ca.join("ca.key").to_string_lossy(),
                "-CAcreateserial",
                "-CAserial",
                &ca.join("ca.srl").to_string_lossy(),
                "-extfile",
                &extfile,
                "-out",
                &crt,
            ],
        )?;
        let joined = [&key, &crt]
            .iter()
            .map(|p| fs::read_to_string(p).map_err(io_err(format!("reading {p}"))))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        fs::write(&pem, joined).map_err(io_err(format!("writing {pem}")))?;
        Ok(PathBuf::from(pem))
    }

    fn spawn(&mut self, id: u32) -> Result<(), HarnessError> {
        let dir = self.dir(id);
        let log_path = dir.join("zk.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(io_err("duplicating the log file"))?;
        let super_digest = zk::digest_id("super", &Secret::new(self.opts.super_password.clone()));
        let parent = std::process::id();
        let mut classpath = format!("{ZOOKEEPER_JAR}:{SLF4J_SIMPLE_JAR}");
        if self.opts.tls {
            // The Debian jar's manifest lists netty-handler but not the codec it needs (the
            // Netty server factory fails with ClassNotFoundException ByteToMessageDecoder).
            for jar in NETTY_TLS_JARS {
                classpath.push(':');
                classpath.push_str(jar);
            }
        }
        let mut cmd = Command::new(JAVA);
        cmd.arg("-Xms32m")
            .arg(format!("-Xmx{}", self.opts.heap))
            .arg("-XX:+UseSerialGC")
            .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
            .arg("-Dorg.slf4j.simpleLogger.showDateTime=true")
            .arg("-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS")
            .arg("-Dorg.slf4j.simpleLogger.logFile=System.out")
            .arg(format!(
                "-Djava.security.auth.login.config={}",
                dir.join("conf/jaas.conf").display()
            ))
            .arg(format!(
                "-Dzookeeper.DigestAuthenticationProvider.superDigest={super_digest}"
            ))
            .arg("-Dzookeeper.superUser=super")
            .args(&self.opts.extra_jvm_flags)
            .arg("-cp")
            .arg(classpath)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(dir.join("conf/zoo.cfg"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Own session: a terminal's Ctrl-C does not reach the JVM; we stop it by PID.
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                // Die with the thread that started us (see the module doc).
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl: then nobody would stop us.
                if libc::getppid() as u32 != parent {
                    return Err(io::Error::other("the test process is gone"));
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(io_err(format!("starting server {id} ({JAVA})")))?;
        tracing::debug!(id, pid = child.id(), "started ZooKeeper server");
        if let Some(s) = self.servers.get_mut(&id) {
            s.child = Some(child);
        }
        Ok(())
    }
}

fn send(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our unreaped child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

impl Drop for TestEnsemble {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        // Signal all first so they shut down in parallel, then reap each.
        for s in self.servers.values() {
            if let Some(c) = &s.child {
                send(c, libc::SIGCONT);
                send(c, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        for (id, s) in self.servers.iter_mut() {
            let Some(mut child) = s.child.take() else {
                continue;
            };
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    _ => {
                        send(&child, libc::SIGKILL);
                        let _ = child.wait();
                        break;
                    }
                }
            }
            if panicking {
                let tail = fs::read(s.dir.join("zk.log"))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let lines: Vec<&str> = tail.lines().collect();
                eprintln!(
                    "--- server {id} log tail ({}):\n{}",
                    s.dir.display(),
                    indent(&lines[lines.len().saturating_sub(20)..].join("\n"))
                );
            }
        }
    }
}

/// The charm's own TLS material on every server of an ensemble (issue 17's lab and bench
/// floor): keys and CSRs made by [`crate::tls::material`], signed by a fresh CA (rcgen, as a
/// provider would), checked, and written as the charm's PEM stores ([`crate::tls::serve`]).
#[derive(Debug, Clone)]
pub struct TlsLab {
    /// The CA's certificate (PEM), and the file holding it.
    pub ca_pem: String,
    pub ca_file: PathBuf,
    /// Each server's stores.
    pub files: BTreeMap<u32, crate::tls::serve::TlsFiles>,
}

impl TestEnsemble {
    /// Gives every running server the charm's TLS material (see [`TlsLab`]). The ensemble must
    /// have been started with [`EnsembleOptions::tls`] (the Netty factory and its jars).
    pub fn charm_tls_material(&self) -> Result<TlsLab, HarnessError> {
        use crate::tls::{material, serve};
        let bad = |what: &str, e: String| HarnessError::Command {
            what: what.to_string(),
            detail: e,
        };
        let ca_key = rcgen::KeyPair::generate().map_err(|e| bad("CA key", e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| bad("CA params", e.to_string()))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "zookeeper-charm TLS lab CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_pem = params
            .self_signed(&ca_key)
            .map_err(|e| bad("CA", e.to_string()))?
            .pem();
        let ca_cert = material::parse_cert(&ca_pem).map_err(|e| bad("CA", e.to_string()))?;
        let issuer = rcgen::Issuer::from_params(&params, &ca_key);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let ca_file = self.root.path().join("charm-ca.pem");
        fs::write(&ca_file, &ca_pem).map_err(io_err("writing the lab CA"))?;
        let mut files = BTreeMap::new();
        for id in self.ids() {
            let ip = self.ip(id);
            let key = material::UnitKey::generate().map_err(|e| bad("key", e.to_string()))?;
            let csr = material::csr(
                &key,
                &material::Subject {
                    common_name: ip.to_string(),
                    ips: vec![std::net::IpAddr::V4(ip)],
                    dns: vec![],
                },
            )
            .map_err(|e| bad("CSR", e.to_string()))?;
            let signed = rcgen::CertificateSigningRequestParams::from_pem(&csr)
                .and_then(|r| r.signed_by(&issuer))
                .map_err(|e| bad("signing", e.to_string()))?
                .pem();
            let cert = material::parse_cert(&signed).map_err(|e| bad("cert", e.to_string()))?;
            material::check(&cert, &[], &ca_cert, &key, now)
                .map_err(|e| bad("checking the certificate", e.to_string()))?;
            let f = serve::TlsFiles::under(&self.dir(id).join("conf"));
            if let Some(d) = f.key_store.parent() {
                fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
            }
            fs::write(
                &f.key_store,
                serve::key_store_pem(key.pem(), &signed, &[], &ca_pem),
            )
            .map_err(io_err("writing the key store"))?;
            fs::write(&f.trust_store, serve::trust_store_pem(&[&ca_pem]))
                .map_err(io_err("writing the trust store"))?;
            files.insert(id, f);
        }
        Ok(TlsLab {
            ca_pem,
            ca_file,
            files,
        })
    }

    /// Restarts every server of `lab` into `step` of the TLS switch (zoo.cfg's TLS keys
    /// replaced by the charm's for that step), one at a time, each restart gated on the whole
    /// ensemble answering with a quorum again. Returns the number of restarts.
    pub async fn roll_tls_step(
        &mut self,
        lab: &TlsLab,
        step: crate::tls::serve::Serving,
    ) -> Result<usize, HarnessError> {
        use crate::tls::serve::{self, Serving};
        let ids = self.ids();
        let mut restarts = 0;
        for (&id, files) in &lab.files {
            let ip = self.ip(id).to_string();
            self.stop(id).await?;
            let path = self.dir(id).join("conf/zoo.cfg");
            let text = fs::read_to_string(&path).map_err(io_err("reading zoo.cfg"))?;
            let managed: Vec<String> =
                serve::zoo_cfg_pairs(Serving::UnifiedQuorum, files, Some(&ip))
                    .into_iter()
                    .map(|(k, _)| k)
                    .chain(["portUnification".into(), "sslQuorum".into()])
                    .collect();
            let mut out: String = text
                .lines()
                .filter(|l| {
                    let key = l.split('=').next().unwrap_or_default().trim();
                    !managed.iter().any(|m| m == key)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            for (k, v) in serve::zoo_cfg_pairs(step, files, Some(&ip)) {
                out.push_str(&format!("{k}={v}\n"));
            }
            fs::write(&path, out).map_err(io_err("writing zoo.cfg"))?;
            self.restart(id)?;
            restarts += 1;
            self.wait_quorum(&ids, self.opts.quorum_timeout).await?;
        }
        Ok(restarts)
    }
}
