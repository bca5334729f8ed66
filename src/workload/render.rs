//! Pure rendering of ZooKeeper's files: `zoo.cfg`, the initial dynamic configuration, `myid`,
//! the JAAS file and the JVM flags. Ordered maps in, stable text out, so the same inputs always
//! give the same bytes and "changed" means a real change.
//!
//! ZooKeeper rewrites `zoo.cfg` itself after the first election (it re-orders the keys and points
//! `dynamicConfigFile` at `zoo.cfg.dynamic.<version>`), so [`cfg_equivalent`] compares key/value
//! sets and ignores that line, and [`keep_dynamic_line`] carries ZooKeeper's current value over.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::quorum::plan::{server_id, UnitId};
use crate::secret::Secret;
use crate::state::config::CharmConfig;
use crate::tls::serve::{self, Serving};

pub const CLIENT_PORT: u16 = 2181;
pub const QUORUM_PORT: u16 = 2888;
pub const ELECTION_PORT: u16 = 3888;
/// The four-letter words the charm uses (`conf` gives membership without a session).
pub const FOUR_LETTER_WORDS: &str = "mntr,srvr,stat,ruok,conf";

/// Where a substrate keeps ZooKeeper's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub conf_dir: PathBuf,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub log_dir: PathBuf,
}

impl Paths {
    pub fn zoo_cfg(&self) -> PathBuf {
        self.conf_dir.join("zoo.cfg")
    }
    pub fn dynamic(&self) -> PathBuf {
        self.conf_dir.join("zookeeper-dynamic.properties")
    }
    pub fn jaas(&self) -> PathBuf {
        self.conf_dir.join("zookeeper-jaas.cfg")
    }
    pub fn client_jaas(&self) -> PathBuf {
        self.conf_dir.join("client-jaas.cfg")
    }
    pub fn myid(&self) -> PathBuf {
        self.data_dir.join("myid")
    }
}

/// What differs between the production snap and the local (jujusim) substrate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// The `charmed-zookeeper` snap on a machine of its own: clients on 0.0.0.0:2181, admin
    /// server on localhost, Prometheus metrics on 7000, JMX exporter on 9998.
    Snap,
    /// Java + the Debian package, several servers on one host, each on its own loopback address:
    /// everything bound to that address, admin server off, no per-IP connection limit (all
    /// loopback clients look like 127.0.0.1 to ZooKeeper).
    Local,
}

/// The quorum (server-to-server) credentials: which users the QuorumServer section accepts, and
/// which one this server's learner logs in with. Two accepted users allow a rotation without a
/// moment where peers cannot authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumAuth {
    pub accepted: BTreeMap<String, Secret>,
    pub learner: (String, Secret),
}

impl QuorumAuth {
    /// The ordinary case: one user, `sync`.
    pub fn single(sync: &Secret) -> QuorumAuth {
        QuorumAuth {
            accepted: [("sync".to_string(), sync.clone())].into(),
            learner: ("sync".into(), sync.clone()),
        }
    }
}

/// Everything the server files depend on.
#[derive(Clone, Debug)]
pub struct ServerSettings<'a> {
    pub config: &'a CharmConfig,
    pub flavor: Flavor,
    pub paths: &'a Paths,
    pub unit: UnitId,
    pub address: &'a str,
    pub super_password: &'a Secret,
    pub quorum: &'a QuorumAuth,
    /// SASL client users (`relation-<id>`) and their passwords.
    pub client_users: &'a BTreeMap<String, Secret>,
    /// The step of the TLS switch this server serves (the stores under `<conf>/tls`).
    pub tls: Serving,
}

/// `server.N=<addr>:2888:3888:<role>;<client bind>:2181`.
pub fn server_line(flavor: Flavor, unit: UnitId, address: &str, participant: bool) -> String {
    let role = if participant {
        "participant"
    } else {
        "observer"
    };
    let client_bind = match flavor {
        Flavor::Snap => "0.0.0.0",
        Flavor::Local => address,
    };
    format!(
        "server.{}={address}:{QUORUM_PORT}:{ELECTION_PORT}:{role};{client_bind}:{CLIENT_PORT}",
        server_id(unit)
    )
}

/// The initial dynamic configuration: the given participants, plus (for a joiner) itself as an
/// observer. ZooKeeper owns the file after the first start.
pub fn initial_dynamic(
    flavor: Flavor,
    participants: &BTreeMap<UnitId, String>,
    joiner: Option<(UnitId, &str)>,
) -> String {
    let mut lines: Vec<String> = participants
        .iter()
        .map(|(u, a)| server_line(flavor, *u, a, true))
        .collect();
    if let Some((u, a)) = joiner {
        lines.push(server_line(flavor, u, a, false));
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// zoo.cfg as ordered key/value pairs.
pub fn zoo_cfg_pairs(s: &ServerSettings<'_>) -> Vec<(String, String)> {
    let p = s.paths;
    let mut kv: Vec<(&str, String)> = vec![
        ("initLimit", s.config.init_limit.to_string()),
        ("syncLimit", s.config.sync_limit.to_string()),
        ("tickTime", s.config.tick_time.to_string()),
        ("syncEnabled", "true".into()),
        (
            "maxClientCnxns",
            if s.flavor == Flavor::Local {
                "0".into()
            } else {
                "60".into()
            },
        ),
        ("minSessionTimeout", "4000".into()),
        ("maxSessionTimeout", "40000".into()),
        // Charmed ZooKeeper leaves autopurge off (purgeInterval=0) and disks fill up.
        ("autopurge.snapRetainCount", "3".into()),
        ("autopurge.purgeInterval", "1".into()),
        ("reconfigEnabled", "true".into()),
        ("standaloneEnabled", "false".into()),
        ("4lw.commands.whitelist", FOUR_LETTER_WORDS.into()),
        ("quorum.auth.enableSasl", "true".into()),
        ("quorum.auth.learnerRequireSasl", "true".into()),
        ("quorum.auth.serverRequireSasl", "true".into()),
        (
            "authProvider.sasl",
            "org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into(),
        ),
        ("enforce.auth.enabled", "true".into()),
        ("enforce.auth.schemes", "sasl,digest".into()),
        ("audit.enable", "true".into()),
        ("dataDir", p.data_dir.display().to_string()),
        ("dataLogDir", p.data_log_dir.display().to_string()),
        ("dynamicConfigFile", p.dynamic().display().to_string()),
    ];
    match s.flavor {
        Flavor::Snap => {
            kv.push(("admin.serverAddress", "localhost".into()));
            kv.push((
                "metricsProvider.className",
                "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider".into(),
            ));
            kv.push(("metricsProvider.httpPort", "7000".into()));
        }
        Flavor::Local => {
            kv.push(("admin.enableServer", "false".into()));
            // The quorum and election listeners bind the server's own address, not 0.0.0.0.
            kv.push(("quorumListenOnAllIPs", "false".into()));
        }
    }
    let mut out: Vec<(String, String)> = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    // The TLS client port binds the unit's address where several servers share a host.
    let bind = (s.flavor == Flavor::Local).then_some(s.address);
    out.extend(serve::zoo_cfg_pairs(
        s.tls,
        &serve::TlsFiles::under(&p.conf_dir),
        bind,
    ));
    out
}

pub fn render_pairs(pairs: &[(String, String)]) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push('\n');
    }
    s
}

pub fn zoo_cfg(s: &ServerSettings<'_>) -> String {
    render_pairs(&zoo_cfg_pairs(s))
}

fn cfg_set(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        // ZooKeeper manages these itself after the first start.
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "dynamicConfigFile" | "clientPort" | "secureClientPort" | "clientPortAddress"
            )
        })
        .collect()
}

/// Same settings, whatever order and whatever dynamicConfigFile ZooKeeper wrote.
pub fn cfg_equivalent(current: &str, desired: &str) -> bool {
    cfg_set(current) == cfg_set(desired)
}

/// `desired` with the `dynamicConfigFile` value of the file on disk (ZooKeeper's rewrite).
pub fn keep_dynamic_line(desired: &str, current: Option<&str>) -> String {
    let Some(value) = current.and_then(|c| {
        c.lines()
            .filter_map(|l| l.trim().strip_prefix("dynamicConfigFile="))
            .map(str::to_string)
            .next_back()
    }) else {
        return desired.to_string();
    };
    desired
        .lines()
        .map(|l| {
            if l.starts_with("dynamicConfigFile=") {
                format!("dynamicConfigFile={value}")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect()
}

fn jaas_value(s: &str) -> String {
    // JAAS string literal: escape backslash and double quote.
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The server JAAS file: quorum users, the learner login, and the SASL client users + super.
pub fn jaas(s: &ServerSettings<'_>) -> String {
    const MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule required";
    let mut out = String::new();
    out.push_str(&format!("QuorumServer {{\n    {MODULE}"));
    for (user, pw) in &s.quorum.accepted {
        out.push_str(&format!(
            "\n    user_{user}=\"{}\"",
            jaas_value(pw.expose())
        ));
    }
    out.push_str(";\n};\n\n");
    let (luser, lpw) = &s.quorum.learner;
    out.push_str(&format!(
        "QuorumLearner {{\n    {MODULE}\n    username=\"{luser}\"\n    password=\"{}\";\n}};\n\n",
        jaas_value(lpw.expose())
    ));
    out.push_str(&format!("Server {{\n    {MODULE}"));
    for (user, pw) in s.client_users {
        out.push_str(&format!(
            "\n    user_{user}=\"{}\"",
            jaas_value(pw.expose())
        ));
    }
    out.push_str(&format!(
        "\n    user_super=\"{}\";\n}};\n",
        jaas_value(s.super_password.expose())
    ));
    out
}

/// JAAS for command-line clients on the unit (zkCli as super).
pub fn client_jaas(super_password: &Secret) -> String {
    format!(
        "Client {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    username=\"super\"\n    password=\"{}\";\n}};\n",
        jaas_value(super_password.expose())
    )
}

pub fn myid(unit: UnitId) -> String {
    format!("{}\n", server_id(unit))
}

/// JVM flags for the server (passwords are never here: they live in the JAAS file).
///
/// Data integrity: ZooKeeper before 3.8.4 and 3.9.2 can lose acknowledged writes on a follower
/// that synchronises with the leader by DIFF (ZOOKEEPER-4785, a race in
/// `Learner.syncWithLeader`): the follower acknowledges transactions it has applied but not yet
/// logged, and a restart soon after brings it back without them while it believes it is up to
/// date. The Debian 3.8.0 build the local substrate runs has it, so there every learner sync is
/// a full snapshot (`zookeeper.forceSnapshotSync`, which makes the learner take a snapshot of
/// what it received before it serves). The snap (ZooKeeper 3.9.2) has the fix and keeps DIFF
/// sync. Both keep the data-tree digest on, so that a server whose tree differs from the
/// leader's counts mismatches (`zk_digest_mismatches_count`), which the charm reports.
pub fn jvm_flags(s: &ServerSettings<'_>) -> Vec<String> {
    let p = s.paths;
    let mut flags = vec![
        "-Dzookeeper.superUser=super".to_string(),
        format!("-Djava.security.auth.login.config={}", p.jaas().display()),
        "-Dzookeeper.digest.enabled=true".to_string(),
    ];
    if !diff_sync_is_safe(s.flavor) {
        flags.push("-Dzookeeper.forceSnapshotSync=true".to_string());
    }
    match s.flavor {
        Flavor::Snap => {
            flags.insert(
                0,
                format!(
                    "-Dcharmed.zookeeper.log.level={}",
                    s.config.log_level.java_name()
                ),
            );
            flags.push("-Dcom.sun.management.jmxremote".into());
            flags.push(format!(
                "-javaagent:/snap/charmed-zookeeper/current/opt/zookeeper/lib/jmx_prometheus_javaagent.jar=9998:{}",
                p.conf_dir.join("jmx_prometheus.yaml").display()
            ));
        }
        Flavor::Local => {
            flags.extend([
                "-Xms32m".to_string(),
                "-Xmx256m".to_string(),
                "-XX:+UseSerialGC".to_string(),
                format!("-Dzookeeper.log.dir={}", p.log_dir.display()),
                format!(
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel={}",
                    s.config.log_level.java_name().to_ascii_lowercase()
                ),
                "-Dorg.slf4j.simpleLogger.showDateTime=true".to_string(),
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS".to_string(),
                "-Dorg.slf4j.simpleLogger.logFile=System.out".to_string(),
            ]);
        }
    }
    flags
}

/// Whether the ZooKeeper a substrate runs synchronises learners by DIFF without losing
/// acknowledged writes (ZOOKEEPER-4785 fixed: 3.8.4+, 3.9.2+).
pub fn diff_sync_is_safe(flavor: Flavor) -> bool {
    match flavor {
        // charmed-zookeeper snap revision 40: ZooKeeper 3.9.2.
        Flavor::Snap => true,
        // Debian's zookeeper package: 3.8.0.
        Flavor::Local => false,
    }
}

/// `/etc/environment` with `SERVER_JVMFLAGS` set (quoted) and every other line kept as it was.
pub fn etc_environment(current: &str, flags: &[String]) -> String {
    let value = flags.join(" ").replace('\\', "\\\\").replace('"', "\\\"");
    let mut out: Vec<String> = current
        .lines()
        .filter(|l| !l.trim_start().starts_with("SERVER_JVMFLAGS="))
        .map(str::to_string)
        .collect();
    out.push(format!("SERVER_JVMFLAGS=\"{value}\""));
    out.join("\n") + "\n"
}

/// All the files a server needs, as (path, content).
pub fn server_files(s: &ServerSettings<'_>) -> Vec<(PathBuf, String)> {
    let p = s.paths;
    vec![
        (p.zoo_cfg(), zoo_cfg(s)),
        (p.jaas(), jaas(s)),
        (p.client_jaas(), client_jaas(s.super_password)),
        (p.myid(), myid(s.unit)),
    ]
}

/// Whether `path` is one of the secret-bearing files (written with mode 0600).
pub fn is_private(paths: &Paths, path: &Path) -> bool {
    path == paths.jaas() || path == paths.client_jaas()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Paths {
        Paths {
            conf_dir: "/w/conf".into(),
            data_dir: "/w/data".into(),
            data_log_dir: "/w/data-log".into(),
            log_dir: "/w/logs".into(),
        }
    }

    fn with_settings<T>(flavor: Flavor, f: impl FnOnce(&ServerSettings<'_>) -> T) -> T {
        let cfg = CharmConfig::default();
        let p = paths();
        let sup = Secret::new("superpw".into());
        let q = QuorumAuth::single(&Secret::new("syncpw".into()));
        let clients: BTreeMap<String, Secret> =
            [("relation-7".to_string(), Secret::new("c\"7".into()))].into();
        let s = ServerSettings {
            config: &cfg,
            flavor,
            paths: &p,
            unit: 2,
            address: "127.5.6.12",
            super_password: &sup,
            quorum: &q,
            client_users: &clients,
            tls: Serving::Plain,
        };
        f(&s)
    }

    #[test]
    fn server_lines_and_initial_dynamic() {
        assert_eq!(
            server_line(Flavor::Local, 2, "127.5.6.12", true),
            "server.3=127.5.6.12:2888:3888:participant;127.5.6.12:2181"
        );
        assert_eq!(
            server_line(Flavor::Snap, 0, "10.1.2.3", false),
            "server.1=10.1.2.3:2888:3888:observer;0.0.0.0:2181"
        );
        let parts: BTreeMap<UnitId, String> = [
            (0, "127.0.0.10".to_string()),
            (10, "127.0.0.20".into()),
            (2, "127.0.0.12".into()),
        ]
        .into();
        assert_eq!(
            initial_dynamic(Flavor::Local, &parts, Some((3, "127.0.0.13"))),
            "server.1=127.0.0.10:2888:3888:participant;127.0.0.10:2181\n\
             server.3=127.0.0.12:2888:3888:participant;127.0.0.12:2181\n\
             server.11=127.0.0.20:2888:3888:participant;127.0.0.20:2181\n\
             server.4=127.0.0.13:2888:3888:observer;127.0.0.13:2181\n"
        );
    }

    #[test]
    fn zoo_cfg_has_charmed_settings_and_autopurge() {
        let text = with_settings(Flavor::Snap, zoo_cfg);
        for line in [
            "initLimit=5",
            "syncLimit=2",
            "tickTime=2000",
            "reconfigEnabled=true",
            "standaloneEnabled=false",
            "4lw.commands.whitelist=mntr,srvr,stat,ruok,conf",
            "quorum.auth.enableSasl=true",
            "enforce.auth.schemes=sasl,digest",
            "autopurge.purgeInterval=1",
            "dataDir=/w/data",
            "dynamicConfigFile=/w/conf/zookeeper-dynamic.properties",
            "admin.serverAddress=localhost",
            "metricsProvider.httpPort=7000",
            "maxClientCnxns=60",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        let local = with_settings(Flavor::Local, zoo_cfg);
        assert!(
            local.contains("admin.enableServer=false\n") && local.contains("maxClientCnxns=0\n")
        );
        assert!(!local.contains("metricsProvider"));
        // Deterministic.
        assert_eq!(with_settings(Flavor::Local, zoo_cfg), local);
    }

    #[test]
    fn zookeeper_rewrites_are_not_changes() {
        let desired = with_settings(Flavor::Local, zoo_cfg);
        // What ZooKeeper writes back: keys re-ordered, dynamic file renamed.
        let mut lines: Vec<&str> = desired
            .lines()
            .filter(|l| !l.starts_with("dynamicConfigFile"))
            .collect();
        lines.reverse();
        let rewritten = format!(
            "{}\ndynamicConfigFile=/w/conf/zookeeper-dynamic.properties.100000002\n",
            lines.join("\n")
        );
        assert!(cfg_equivalent(&rewritten, &desired));
        let kept = keep_dynamic_line(&desired, Some(&rewritten));
        assert!(kept.contains("dynamicConfigFile=/w/conf/zookeeper-dynamic.properties.100000002\n"));
        assert!(cfg_equivalent(&kept, &desired));
        // A real change is one.
        assert!(!cfg_equivalent(
            &rewritten.replace("tickTime=2000", "tickTime=500"),
            &desired
        ));
        assert_eq!(keep_dynamic_line(&desired, None), desired);
    }

    #[test]
    fn jaas_lists_quorum_users_clients_and_super() {
        let text = with_settings(Flavor::Local, jaas);
        assert!(text.contains("QuorumServer {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    user_sync=\"syncpw\";\n};"), "{text}");
        assert!(text.contains("QuorumLearner {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    username=\"sync\"\n    password=\"syncpw\";\n};"), "{text}");
        assert!(
            text.contains("user_relation-7=\"c\\\"7\""),
            "quote escaped: {text}"
        );
        assert!(
            text.trim_end().ends_with("user_super=\"superpw\";\n};"),
            "{text}"
        );
    }

    #[test]
    fn two_quorum_users_during_rotation() {
        let cfg = CharmConfig::default();
        let p = paths();
        let sup = Secret::new("s".into());
        let q = QuorumAuth {
            accepted: [
                ("sync".to_string(), Secret::new("old".into())),
                ("sync-1".to_string(), Secret::new("new".into())),
            ]
            .into(),
            learner: ("sync-1".into(), Secret::new("new".into())),
        };
        let clients = BTreeMap::new();
        let s = ServerSettings {
            config: &cfg,
            flavor: Flavor::Snap,
            paths: &p,
            unit: 0,
            address: "a",
            super_password: &sup,
            quorum: &q,
            client_users: &clients,
            tls: Serving::Plain,
        };
        let text = jaas(&s);
        assert!(
            text.contains("user_sync=\"old\"\n    user_sync-1=\"new\";"),
            "{text}"
        );
        assert!(
            text.contains("username=\"sync-1\"\n    password=\"new\""),
            "{text}"
        );
    }

    #[test]
    fn jvm_flags_never_carry_passwords_and_environment_is_quoted_and_merged() {
        let flags = with_settings(Flavor::Snap, jvm_flags);
        assert!(flags
            .iter()
            .all(|f| !f.contains("superpw") && !f.contains("syncpw")));
        assert!(flags.contains(&"-Dzookeeper.superUser=super".to_string()));
        assert!(flags[0].starts_with("-Dcharmed.zookeeper.log.level=INFO"));
        let env = etc_environment("PATH=\"/usr/bin\"\nSERVER_JVMFLAGS=old\nLANG=C\n", &flags);
        assert!(
            env.starts_with("PATH=\"/usr/bin\"\nLANG=C\nSERVER_JVMFLAGS=\"-Dcharmed"),
            "{env}"
        );
        assert_eq!(env.matches("SERVER_JVMFLAGS").count(), 1);
        assert!(env.ends_with("\"\n"));
        let local = with_settings(Flavor::Local, jvm_flags);
        assert!(local
            .iter()
            .any(|f| f == "-Dorg.slf4j.simpleLogger.defaultLogLevel=info"));
        // ZOOKEEPER-4785: the Debian 3.8.0 build syncs learners by snapshot only; the snap's
        // 3.9.2 has the fix. Both keep the digest.
        assert!(local.contains(&"-Dzookeeper.forceSnapshotSync=true".to_string()));
        assert!(!flags.iter().any(|f| f.contains("forceSnapshotSync")));
        for f in [&flags, &local] {
            assert!(f.contains(&"-Dzookeeper.digest.enabled=true".to_string()));
        }
    }

    #[test]
    fn myid_is_unit_plus_one() {
        assert_eq!(myid(0), "1\n");
        assert_eq!(myid(9), "10\n");
    }
}
