//! [`ZooKeeperClient`]: one authenticated session to one server (or a connect string), every
//! call bounded by a timeout.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use zookeeper_client as zkc;

use super::acl::AclEntry;
use super::error::{map_client_error, Ctx, ZkError};
use super::fourlw::{self, Conf, FourLw, Mntr, Srvr};
use super::path::{ancestors, child_path, is_within};
use crate::quorum::member::{EnsembleConfig, ServerSpec};
use crate::secret::Secret;

/// A SASL DIGEST-MD5 login (the charm uses `super`).
#[derive(Debug, Clone)]
pub struct Auth {
    pub user: String,
    pub password: Secret,
}

impl Auth {
    pub fn new(user: &str, password: Secret) -> Auth {
        Auth {
            user: user.to_string(),
            password,
        }
    }
}

/// TLS to the client port: the CA that signed the servers' certificates, and optionally a client
/// certificate and key (all PEM).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub ca_pem: String,
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<Secret>,
    /// Check that the server certificate names the host connected to (default: true). Turn off
    /// only when certificates lack the address used (Charmed ZooKeeper's optional IP SANs).
    pub verify_hostname: bool,
}

impl TlsConfig {
    pub fn new(ca_pem: String) -> TlsConfig {
        TlsConfig {
            ca_pem,
            client_cert_pem: None,
            client_key_pem: None,
            verify_hostname: true,
        }
    }
}

/// How to connect, and how long anything may take.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Negotiated with the server (which clamps it to 2..20 x tickTime).
    pub session_timeout: Duration,
    /// Bound on establishing the session (including SASL).
    pub connect_timeout: Duration,
    /// Bound on every request; a blocked session never hangs a hook.
    pub op_timeout: Duration,
    /// Bound on a four-letter word (connect, send, read).
    pub four_lw_timeout: Duration,
    /// Port for four-letter words when it differs from the session's (e.g. the plain 2181 when
    /// the session uses TLS on 2182).
    pub four_lw_port: Option<u16>,
    pub tls: Option<TlsConfig>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            session_timeout: Duration::from_secs(6),
            connect_timeout: Duration::from_secs(5),
            op_timeout: Duration::from_secs(5),
            four_lw_timeout: Duration::from_secs(2),
            four_lw_port: None,
            tls: None,
        }
    }
}

/// `host:port` for four-letter words from a connect-string entry: drops a `tcp://` or
/// `tcp+tls://` prefix and a chroot, and swaps the port if asked.
pub fn four_lw_addr(host: &str, port: Option<u16>) -> String {
    let first = host.split(',').next().unwrap_or("").trim();
    let first = first
        .strip_prefix("tcp+tls://")
        .or_else(|| first.strip_prefix("tcp://"))
        .unwrap_or(first);
    let first = first.split('/').next().unwrap_or(first);
    match port {
        None => first.to_string(),
        Some(p) => match first.rsplit_once(':') {
            Some((h, _)) => format!("{h}:{p}"),
            None => format!("{first}:{p}"),
        },
    }
}

/// How many requests of one tree walk are sent before their answers are awaited.
const PIPELINE: usize = 256;

/// One session. Cheap to clone (clones share the session); the session closes when the last
/// clone is dropped.
#[derive(Clone)]
pub struct ZooKeeperClient {
    inner: zkc::Client,
    connect_string: String,
    four_lw_addr: String,
    user: String,
    opts: ConnectOptions,
}

impl std::fmt::Debug for ZooKeeperClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZooKeeperClient")
            .field("connect_string", &self.connect_string)
            .field("user", &self.user)
            .field("state", &self.inner.state())
            .finish()
    }
}

impl ZooKeeperClient {
    /// Connects to `addr` (`host:port` or a connect string) with SASL DIGEST-MD5, over TLS if
    /// `opts.tls` is set. A wrong password is [`ZkError::AuthFailed`]; an unreachable or
    /// non-serving server is [`ZkError::ConnectionLoss`] or [`ZkError::Timeout`], never a hang.
    pub async fn connect(
        addr: &str,
        creds: &Auth,
        opts: &ConnectOptions,
    ) -> Result<ZooKeeperClient, ZkError> {
        Self::connect_as(addr, Some(creds), opts).await
    }

    /// Connects without authentication (tests, and checks of what anonymous clients see).
    pub async fn connect_anonymous(
        addr: &str,
        opts: &ConnectOptions,
    ) -> Result<ZooKeeperClient, ZkError> {
        Self::connect_as(addr, None, opts).await
    }

    async fn connect_as(
        addr: &str,
        creds: Option<&Auth>,
        opts: &ConnectOptions,
    ) -> Result<ZooKeeperClient, ZkError> {
        let user = creds.map(|c| c.user.clone()).unwrap_or_default();
        let ctx = Ctx {
            op: "connect",
            host: addr,
            path: "",
            user: &user,
            timeout: opts.session_timeout,
        };
        let mut connector = zkc::Client::connector()
            .with_session_timeout(opts.session_timeout)
            .with_fail_eagerly();
        if let Some(c) = creds {
            connector = connector.with_sasl(zkc::SaslOptions::digest_md5(
                c.user.clone(),
                c.password.expose().to_string(),
            ));
        }
        let tls = match &opts.tls {
            None => None,
            Some(t) => Some(tls_options(t).map_err(|e| ZkError::BadArguments {
                detail: format!("TLS settings: {e}"),
            })?),
        };
        let connecting = async {
            match tls {
                None => connector.connect(addr).await,
                Some(tls) => connector.with_tls(tls).secure_connect(addr).await,
            }
        };
        let inner = match tokio::time::timeout(opts.connect_timeout, connecting).await {
            Err(_) => {
                return Err(ZkError::Timeout {
                    op: "connect".into(),
                    host: addr.to_string(),
                    after: opts.connect_timeout,
                })
            }
            Ok(Err(e)) => return Err(map_client_error(e, ctx)),
            Ok(Ok(c)) => c,
        };
        tracing::debug!(addr, user, "ZooKeeper session established");
        Ok(ZooKeeperClient {
            inner,
            connect_string: addr.to_string(),
            four_lw_addr: four_lw_addr(addr, opts.four_lw_port),
            user,
            opts: opts.clone(),
        })
    }

    pub fn connect_string(&self) -> &str {
        &self.connect_string
    }

    /// True while the session is connected (not disconnected, expired, closed or failed).
    pub fn is_connected(&self) -> bool {
        self.inner.state() == zkc::SessionState::SyncConnected
    }

    fn ctx<'a>(&'a self, op: &'a str, path: &'a str) -> Ctx<'a> {
        Ctx {
            op,
            host: &self.connect_string,
            path,
            user: &self.user,
            timeout: self.opts.session_timeout,
        }
    }

    /// Runs one request under the op timeout and maps its error.
    async fn bounded<T>(
        &self,
        op: &str,
        path: &str,
        fut: impl Future<Output = Result<T, zkc::Error>>,
    ) -> Result<T, ZkError> {
        match tokio::time::timeout(self.opts.op_timeout, fut).await {
            Err(_) => Err(ZkError::Timeout {
                op: format!("{op} {path}"),
                host: self.connect_string.clone(),
                after: self.opts.op_timeout,
            }),
            Ok(r) => r.map_err(|e| map_client_error(e, self.ctx(op, path))),
        }
    }

    /// Adds a digest identity to the session (`addauth digest user:password`); ACL entries
    /// made with [`AclEntry::digest`] then match.
    pub async fn add_auth_digest(&self, user: &str, password: &Secret) -> Result<(), ZkError> {
        let auth = format!("{user}:{}", password.expose());
        self.bounded("addauth", "", self.inner.auth("digest", auth.as_bytes()))
            .await
    }

    /// The session's identities, e.g. `["sasl:super", "super:", "ip:127.0.0.1"]`.
    pub async fn whoami(&self) -> Result<Vec<String>, ZkError> {
        let users = self
            .bounded("whoami", "", self.inner.list_auth_users())
            .await?;
        Ok(users
            .iter()
            .map(|u| format!("{}:{}", u.scheme(), u.user()))
            .collect())
    }

    /// Members and version from `/zookeeper/config`.
    pub async fn config(&self) -> Result<EnsembleConfig, ZkError> {
        let (data, stat) = self
            .bounded("get", "/zookeeper/config", self.inner.get_config())
            .await?;
        parse_config_bytes(&data, stat.mzxid, "read /zookeeper/config")
    }

    async fn four_lw(&self, cmd: &str) -> Result<String, ZkError> {
        fourlw::four_letter_word(&self.four_lw_addr, cmd, self.opts.four_lw_timeout).await
    }

    fn parse_failed(&self, e: fourlw::ParseError) -> ZkError {
        ZkError::Unexpected {
            op: format!("{} on {}", e.cmd, self.four_lw_addr),
            detail: e.detail,
        }
    }

    /// `srvr` of this client's (first) server.
    pub async fn srvr(&self) -> Result<FourLw<Srvr>, ZkError> {
        let text = self.four_lw("srvr").await?;
        fourlw::parse_srvr(&text).map_err(|e| self.parse_failed(e))
    }

    /// `mntr` of this client's (first) server.
    pub async fn mntr(&self) -> Result<FourLw<Mntr>, ZkError> {
        let text = self.four_lw("mntr").await?;
        fourlw::parse_mntr(&text).map_err(|e| self.parse_failed(e))
    }

    /// `conf` of this client's (first) server.
    pub async fn conf(&self) -> Result<FourLw<Conf>, ZkError> {
        let text = self.four_lw("conf").await?;
        fourlw::parse_conf(&text).map_err(|e| self.parse_failed(e))
    }

    /// Connected, and the server's peer state is "... - broadcast". An unreachable or
    /// non-serving server is `Ok(false)`; only a refused four-letter word is an error.
    pub async fn is_ready(&self) -> Result<bool, ZkError> {
        if !self.is_connected() {
            return Ok(false);
        }
        match self.mntr().await {
            Ok(FourLw::Serving(m)) => Ok(m.is_broadcast()),
            Ok(FourLw::NotServing) => Ok(false),
            Err(e) if e.is_session_trouble() => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn exists(&self, path: &str) -> Result<bool, ZkError> {
        Ok(self
            .bounded("exists", path, self.inner.check_stat(path))
            .await?
            .is_some())
    }

    pub async fn get_data(&self, path: &str) -> Result<Vec<u8>, ZkError> {
        Ok(self
            .bounded("get", path, self.inner.get_data(path))
            .await?
            .0)
    }

    pub async fn set_data(&self, path: &str, data: &[u8]) -> Result<(), ZkError> {
        self.bounded("set", path, self.inner.set_data(path, data, None))
            .await
            .map(|_| ())
    }

    /// Child names of `path` (not recursive).
    pub async fn children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        self.bounded("list", path, self.inner.list_children(path))
            .await
    }

    /// `path` and every descendant, sorted. Walking from `/` skips `/zookeeper` and does not
    /// list `/` itself. A missing `path` gives an empty set; nodes deleted during the walk are
    /// skipped.
    pub async fn get_all_znode_children(&self, path: &str) -> Result<BTreeSet<String>, ZkError> {
        let mut found = BTreeSet::new();
        let mut level = vec![path.to_string()];
        while !level.is_empty() {
            let mut next = Vec::new();
            for chunk in level.chunks(PIPELINE) {
                let lists: Vec<_> = chunk.iter().map(|p| self.inner.list_children(p)).collect();
                for (p, fut) in chunk.iter().zip(lists) {
                    let names = match self.bounded("list", p, fut).await {
                        Ok(n) => n,
                        Err(ZkError::NoNode { .. }) => continue,
                        Err(e) => return Err(e),
                    };
                    if p != "/" {
                        found.insert(p.clone());
                    }
                    next.extend(
                        names
                            .into_iter()
                            .map(|n| child_path(p, &n))
                            .filter(|c| c != "/zookeeper"),
                    );
                }
            }
            level = next;
        }
        Ok(found)
    }

    /// Creates `path` (empty data) with `acls`, and any missing parents with the same ACLs.
    /// Idempotent: an existing node is fine and keeps its ACLs. Returns whether `path` was
    /// created now.
    pub async fn create_znode(&self, path: &str, acls: &[AclEntry]) -> Result<bool, ZkError> {
        self.create_znode_with(path, &[], acls, acls).await
    }

    /// Creates `path` holding `data` with `acls`, and any missing parents (empty) with
    /// `parent_acls`. Idempotent as [`Self::create_znode`].
    pub async fn create_znode_with(
        &self,
        path: &str,
        data: &[u8],
        acls: &[AclEntry],
        parent_acls: &[AclEntry],
    ) -> Result<bool, ZkError> {
        if acls.is_empty() || parent_acls.is_empty() {
            return Err(ZkError::BadArguments {
                detail: format!("create {path}: an empty ACL list would make the node unusable"),
            });
        }
        let acls: Vec<zkc::Acl> = acls.iter().map(AclEntry::to_client).collect();
        let parent_acls: Vec<zkc::Acl> = parent_acls.iter().map(AclEntry::to_client).collect();
        match self.create_one(path, data, &acls).await {
            Err(ZkError::NoNode { .. }) => {}
            other => return other,
        }
        for parent in ancestors(path) {
            self.create_one(&parent, &[], &parent_acls).await?;
        }
        self.create_one(path, data, &acls).await
    }

    /// One persistent node; `Ok(false)` when it exists already.
    async fn create_one(
        &self,
        path: &str,
        data: &[u8],
        acls: &[zkc::Acl],
    ) -> Result<bool, ZkError> {
        let options = zkc::CreateMode::Persistent.with_acls(zkc::Acls::new(acls));
        match self
            .bounded("create", path, self.inner.create(path, data, &options))
            .await
        {
            Ok(_) => Ok(true),
            Err(ZkError::NodeExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes `path` and everything under it. Missing nodes are fine (also when another client
    /// deletes them concurrently); a child created meanwhile is retried a few times.
    pub async fn delete_znode(&self, path: &str) -> Result<(), ZkError> {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() || trimmed == "/zookeeper" || trimmed.starts_with("/zookeeper/") {
            return Err(ZkError::BadArguments {
                detail: format!("refusing to delete {path:?}"),
            });
        }
        let mut last = None;
        for _ in 0..3 {
            let mut nodes: Vec<String> = self
                .get_all_znode_children(path)
                .await?
                .into_iter()
                .collect();
            if nodes.is_empty() {
                return Ok(());
            }
            // Deepest first, one depth at a time, each depth pipelined.
            nodes.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
            let mut all_gone = true;
            let depth = |p: &String| p.matches('/').count();
            'depths: for group in nodes.chunk_by(|a, b| depth(a) == depth(b)) {
                for chunk in group.chunks(PIPELINE) {
                    let dels: Vec<_> = chunk.iter().map(|n| self.inner.delete(n, None)).collect();
                    for (node, fut) in chunk.iter().zip(dels) {
                        match self.bounded("delete", node, fut).await {
                            Ok(()) | Err(ZkError::NoNode { .. }) => {}
                            Err(e @ ZkError::NotEmpty { .. }) => {
                                all_gone = false;
                                last = Some(e);
                                break 'depths;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
            if all_gone {
                return Ok(());
            }
        }
        Err(last.unwrap_or(ZkError::NotEmpty {
            path: path.to_string(),
        }))
    }

    pub async fn get_acls(&self, path: &str) -> Result<Vec<AclEntry>, ZkError> {
        let (acls, _) = self
            .bounded("getAcl", path, self.inner.get_acl(path))
            .await?;
        Ok(acls.iter().map(AclEntry::from_client).collect())
    }

    /// Replaces the ACLs of `path` (not of its children).
    pub async fn set_acls(&self, path: &str, acls: &[AclEntry]) -> Result<(), ZkError> {
        if acls.is_empty() {
            return Err(ZkError::BadArguments {
                detail: format!("setAcl {path}: an empty ACL list would make the node unusable"),
            });
        }
        let acls: Vec<zkc::Acl> = acls.iter().map(AclEntry::to_client).collect();
        self.bounded("setAcl", path, self.inner.set_acl(path, &acls, None))
            .await
            .map(|_| ())
    }

    /// The ACL of `path`, `None` when it does not exist.
    pub async fn acls_if_exists(&self, path: &str) -> Result<Option<Vec<AclEntry>>, ZkError> {
        match self.get_acls(path).await {
            Ok(a) => Ok(Some(a)),
            Err(ZkError::NoNode { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets `acls` on `path` and, top down, on every node below it except the subtrees `except`.
    /// Each node's ACL is set before its children are listed, so a child created meanwhile by a
    /// client losing its access is either listed or refused: nothing escapes. Nodes deleted
    /// meanwhile are skipped; a missing `path` is success. Requests of one level are pipelined
    /// (the server commits them in groups). Returns how many nodes were set.
    pub async fn set_acls_tree(
        &self,
        path: &str,
        acls: &[AclEntry],
        except: &[String],
    ) -> Result<usize, ZkError> {
        if acls.is_empty() {
            return Err(ZkError::BadArguments {
                detail: format!("setAcl {path}: an empty ACL list would make the node unusable"),
            });
        }
        let client_acls: Vec<zkc::Acl> = acls.iter().map(AclEntry::to_client).collect();
        let skipped = |p: &str| except.iter().any(|e| is_within(p, e));
        let mut level = vec![path.to_string()];
        let mut set = 0;
        while !level.is_empty() {
            level.retain(|p| !skipped(p));
            let mut next = Vec::new();
            for chunk in level.chunks(PIPELINE) {
                // Sent now, in order; awaited below.
                let sets: Vec<_> = chunk
                    .iter()
                    .map(|p| self.inner.set_acl(p, &client_acls, None))
                    .collect();
                let mut present = Vec::new();
                for (p, fut) in chunk.iter().zip(sets) {
                    match self.bounded("setAcl", p, fut).await {
                        Ok(_) => {
                            set += 1;
                            present.push(p);
                        }
                        Err(ZkError::NoNode { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                let lists: Vec<_> = present
                    .iter()
                    .map(|p| self.inner.list_children(p))
                    .collect();
                for (p, fut) in present.iter().zip(lists) {
                    match self.bounded("list", p, fut).await {
                        Ok(names) => next.extend(names.into_iter().map(|n| child_path(p, &n))),
                        Err(ZkError::NoNode { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            level = next;
        }
        Ok(set)
    }

    /// Every node below `root` (not `root` itself when it is `/`) with its ACL, parents before
    /// children, leaving out the subtrees `skip`. Nodes deleted meanwhile are left out. Requests
    /// of one level are pipelined.
    pub async fn acls_tree(
        &self,
        root: &str,
        skip: &[String],
    ) -> Result<Vec<(String, Vec<AclEntry>)>, ZkError> {
        let mut out = Vec::new();
        let mut level = vec![root.to_string()];
        while !level.is_empty() {
            let mut next = Vec::new();
            for chunk in level.chunks(PIPELINE) {
                let acls: Vec<_> = chunk
                    .iter()
                    .map(|p| (p != "/").then(|| self.inner.get_acl(p)))
                    .collect();
                let lists: Vec<_> = chunk.iter().map(|p| self.inner.list_children(p)).collect();
                for ((p, acl), list) in chunk.iter().zip(acls).zip(lists) {
                    if let Some(fut) = acl {
                        match self.bounded("getAcl", p, fut).await {
                            Ok((a, _)) => {
                                out.push((p.clone(), a.iter().map(AclEntry::from_client).collect()))
                            }
                            Err(ZkError::NoNode { .. }) => continue,
                            Err(e) => return Err(e),
                        }
                    }
                    match self.bounded("list", p, list).await {
                        Ok(mut names) => {
                            names.sort();
                            next.extend(
                                names
                                    .into_iter()
                                    .map(|n| child_path(p, &n))
                                    .filter(|c| !skip.iter().any(|s| is_within(c, s))),
                            );
                        }
                        Err(ZkError::NoNode { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            level = next;
        }
        Ok(out)
    }

    /// Deletes the one node `path` (no children); a missing node is success.
    pub async fn delete_one(&self, path: &str) -> Result<(), ZkError> {
        match self
            .bounded("delete", path, self.inner.delete(path, None))
            .await
        {
            Ok(()) | Err(ZkError::NoNode { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One incremental reconfiguration; `from_version` makes it conditional on the current
    /// version (a stale one is [`ZkError::BadVersion`]). Needs the super user.
    pub async fn update_ensemble(
        &self,
        joining: &[ServerSpec],
        leaving: &[u32],
        from_version: Option<u64>,
    ) -> Result<EnsembleConfig, ZkError> {
        let joins: Vec<String> = joining.iter().map(ServerSpec::to_string).collect();
        let leaves: Vec<String> = leaving.iter().map(u32::to_string).collect();
        let expected = match from_version {
            None => None,
            Some(v) => Some(i64::try_from(v).map_err(|_| ZkError::BadArguments {
                detail: format!("configuration version {v:x} is out of range"),
            })?),
        };
        tracing::debug!(?joins, ?leaves, from_version = ?from_version.map(|v| format!("{v:x}")), "reconfig");
        let update = zkc::EnsembleUpdate::Incremental {
            joinings: joins.iter().map(String::as_str),
            leavings: leaves.iter().map(String::as_str),
        };
        let (data, stat) = self
            .bounded(
                "reconfig",
                "/zookeeper/config",
                self.inner.update_ensemble(update, expected),
            )
            .await?;
        parse_config_bytes(&data, stat.mzxid, "read the reconfig answer")
    }
}

/// The config text, with the version taken from the node's mzxid if the text lacks one.
fn parse_config_bytes(data: &[u8], mzxid: i64, op: &str) -> Result<EnsembleConfig, ZkError> {
    let text = String::from_utf8_lossy(data);
    let text = if text.lines().any(|l| l.trim().starts_with("version=")) {
        text.into_owned()
    } else {
        format!("{text}\nversion={mzxid:x}")
    };
    EnsembleConfig::parse(&text).map_err(|e| ZkError::Unexpected {
        op: op.to_string(),
        detail: e.to_string(),
    })
}

fn tls_options(tls: &TlsConfig) -> Result<zkc::TlsOptions, zkc::Error> {
    let mut options = zkc::TlsOptions::new().with_pem_ca(&tls.ca_pem)?;
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => options = options.with_pem_identity(cert, key.expose())?,
        (None, None) => {}
        _ => {
            return Err(zkc::Error::BadArguments(
                &"TLS client certificate and key must be given together",
            ))
        }
    }
    if !tls.verify_hostname {
        // SAFETY: not memory safety: the crate marks this `unsafe` because it allows a
        // man-in-the-middle with a certificate from the same CA. The operator opted in.
        options = unsafe { options.with_no_hostname_verification() };
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_lw_addresses_come_from_the_first_connect_string_entry() {
        for (host, port, want) in [
            ("127.0.0.11:2181", None, "127.0.0.11:2181"),
            ("127.0.0.11:2182", Some(2181), "127.0.0.11:2181"),
            (
                "127.0.0.11:2181,127.0.0.12:2181/chroot",
                None,
                "127.0.0.11:2181",
            ),
            ("tcp+tls://zk-0:2182", Some(2181), "zk-0:2181"),
            ("tcp://zk-0:2181/app", None, "zk-0:2181"),
        ] {
            assert_eq!(four_lw_addr(host, port), want, "{host}");
        }
    }

    #[test]
    fn config_bytes_without_a_version_use_the_mzxid() {
        let cfg =
            parse_config_bytes(b"server.1=h:1:2:participant;h:3", 0x1_0000_0002, "x").unwrap();
        assert_eq!(cfg.version, 0x1_0000_0002);
        let cfg = parse_config_bytes(b"server.1=h:1:2\nversion=100000005", 7, "x").unwrap();
        assert_eq!(cfg.version, 0x1_0000_0005);
        assert!(parse_config_bytes(b"nonsense", 1, "x").is_err());
    }

    #[test]
    fn tls_options_refuse_bad_pem_and_half_identities() {
        assert!(tls_options(&TlsConfig::new("not a pem".into())).is_err());
        let mut t = TlsConfig::new("not a pem".into());
        t.client_cert_pem = Some("x".into());
        assert!(tls_options(&t).is_err());
    }
}
