//! `server.N=host:quorumPort:electionPort:role;clientHost:clientPort` lines and the ensemble
//! configuration they make up, exactly as ZooKeeper 3.5+ writes them in `/zookeeper/config`.
//!
//! Pure: parsing never panics, every refusal is a [`MemberError`] naming the offending text.

use std::collections::BTreeMap;
use std::fmt;

/// Why a server line or an ensemble configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("bad server line {line:?}: {reason}")]
    BadServerLine { line: String, reason: String },
    #[error("bad ensemble configuration: {reason}")]
    BadConfig { reason: String },
}

fn bad_line(line: &str, reason: impl Into<String>) -> MemberError {
    MemberError::BadServerLine {
        line: line.to_string(),
        reason: reason.into(),
    }
}

fn bad_config(reason: impl Into<String>) -> MemberError {
    MemberError::BadConfig {
        reason: reason.into(),
    }
}

/// A member's role: a voting participant or a non-voting observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Participant,
    Observer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Observer => "observer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "participant" => Some(Role::Participant),
            "observer" => Some(Role::Observer),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `server.N=` line.
///
/// `client_port == 0` (and an empty `client_host`) means the line has no `;client` part. A bare
/// `;2181` is read as `0.0.0.0:2181`, which is what ZooKeeper binds and writes back for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    pub id: u32,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: Role,
    pub client_host: String,
    pub client_port: u16,
}

/// The wildcard address ZooKeeper binds for a bare client port.
pub const WILDCARD: &str = "0.0.0.0";

impl ServerSpec {
    /// A participant whose client port listens on the same host (the form the charm writes).
    pub fn new(
        id: u32,
        host: &str,
        quorum_port: u16,
        election_port: u16,
        client_port: u16,
    ) -> Self {
        ServerSpec {
            id,
            host: host.to_string(),
            quorum_port,
            election_port,
            role: Role::Participant,
            client_host: host.to_string(),
            client_port,
        }
    }

    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Parses `server.4=127.0.0.14:2888:3888:participant;127.0.0.14:2181`, also without the role
    /// (participant), without `;client`, with a bare `;2181`, and with `[v6]` hosts.
    pub fn parse(line: &str) -> Result<ServerSpec, MemberError> {
        let trimmed = line.trim();
        let (key, value) = trimmed
            .split_once('=')
            .ok_or_else(|| bad_line(line, "no '='"))?;
        let id_text = key
            .trim()
            .strip_prefix("server.")
            .ok_or_else(|| bad_line(line, "key does not start with 'server.'"))?;
        let id: u32 = id_text
            .parse()
            .map_err(|_| bad_line(line, format!("server id {id_text:?} is not a number")))?;
        let value = value.trim();
        let (server_part, client_part) = match value.split_once(';') {
            Some((s, c)) => (s, Some(c)),
            None => (value, None),
        };
        if server_part.contains('|') {
            return Err(bad_line(
                line,
                "multiple addresses per server are not supported",
            ));
        }
        let (host, rest) = split_host(server_part).map_err(|r| bad_line(line, r))?;
        let fields: Vec<&str> = rest.split(':').collect();
        let (quorum, election, role) = match fields.as_slice() {
            [q, e] => (*q, *e, Role::Participant),
            [q, e, r] => (
                *q,
                *e,
                Role::parse(r).ok_or_else(|| bad_line(line, format!("unknown role {r:?}")))?,
            ),
            _ => {
                return Err(bad_line(
                    line,
                    "expected host:quorumPort:electionPort[:role]",
                ))
            }
        };
        let quorum_port = parse_port(quorum).map_err(|r| bad_line(line, r))?;
        let election_port = parse_port(election).map_err(|r| bad_line(line, r))?;
        let (client_host, client_port) = match client_part.map(str::trim) {
            None => (String::new(), 0),
            Some("") => return Err(bad_line(line, "empty client address after ';'")),
            Some(c) if !c.contains(':') => (
                WILDCARD.to_string(),
                parse_port(c).map_err(|r| bad_line(line, r))?,
            ),
            Some(c) => {
                let (h, p) = split_host(c).map_err(|r| bad_line(line, r))?;
                (h.to_string(), parse_port(p).map_err(|r| bad_line(line, r))?)
            }
        };
        if host.is_empty() {
            return Err(bad_line(line, "empty host"));
        }
        Ok(ServerSpec {
            id,
            host: host.to_string(),
            quorum_port,
            election_port,
            role,
            client_host,
            client_port,
        })
    }

    /// `host:port` to reach this server's client port (and four-letter words): the client host,
    /// or the quorum host when the client address is the wildcard. `None` without a client part.
    pub fn client_addr(&self) -> Option<String> {
        if self.client_port == 0 {
            return None;
        }
        let host = if self.client_host.is_empty() || self.client_host == WILDCARD {
            &self.host
        } else {
            &self.client_host
        };
        Some(join_host_port(host, self.client_port))
    }

    /// Same server at the same addresses, whatever the role. Adding an id that exists with
    /// other addresses would silently move that server, so callers refuse it.
    pub fn same_addresses(&self, other: &ServerSpec) -> bool {
        self.id == other.id
            && self.host == other.host
            && self.quorum_port == other.quorum_port
            && self.election_port == other.election_port
            && self.client_host == other.client_host
            && self.client_port == other.client_port
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("bad port {s:?}")),
        Ok(p) => Ok(p),
    }
}

/// Splits `host:rest` or `[v6]:rest` at the host.
fn split_host(s: &str) -> Result<(&str, &str), String> {
    let s = s.trim();
    if let Some(after) = s.strip_prefix('[') {
        let (h, rest) = after
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in {s:?}"))?;
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| format!("no port after [{h}]"))?;
        return Ok((h, rest));
    }
    s.split_once(':').ok_or_else(|| format!("no port in {s:?}"))
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server.{}={}:{}:{}",
            self.id,
            join_host_port(&self.host, self.quorum_port),
            self.election_port,
            self.role
        )?;
        if self.client_port != 0 {
            let host = if self.client_host.is_empty() {
                WILDCARD
            } else {
                &self.client_host
            };
            write!(f, ";{}", join_host_port(host, self.client_port))?;
        }
        Ok(())
    }
}

/// The ensemble as ZooKeeper reports it: members by id and the configuration version (the hex
/// zxid of the transaction that committed it, e.g. `100000000`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnsembleConfig {
    pub members: BTreeMap<u32, ServerSpec>,
    pub version: u64,
}

impl EnsembleConfig {
    /// Parses the `/zookeeper/config` text: `server.N=` lines and a `version=<hex>` line. Blank
    /// lines and a trailing newline are fine; `group.`/`weight.` lines (hierarchical quorums) are
    /// skipped; anything else, a duplicate id or a missing version is an error.
    pub fn parse(text: &str) -> Result<EnsembleConfig, MemberError> {
        let mut members = BTreeMap::new();
        let mut version = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("version=") {
                if version.is_some() {
                    return Err(bad_config("more than one version= line"));
                }
                version = Some(
                    u64::from_str_radix(v.trim(), 16)
                        .map_err(|_| bad_config(format!("version {v:?} is not hexadecimal")))?,
                );
            } else if line.starts_with("server.") {
                let spec = ServerSpec::parse(line)?;
                if members.contains_key(&spec.id) {
                    return Err(bad_config(format!("server.{} appears twice", spec.id)));
                }
                members.insert(spec.id, spec);
            } else if line.starts_with("group.") || line.starts_with("weight.") {
                continue;
            } else {
                return Err(bad_config(format!("unexpected line {line:?}")));
            }
        }
        let version = version.ok_or_else(|| bad_config("no version= line"))?;
        Ok(EnsembleConfig { members, version })
    }

    /// Parses the `membership:` section of the `conf` four-letter word (everything after the
    /// `membership:` line).
    pub fn parse_conf_membership(conf: &str) -> Result<EnsembleConfig, MemberError> {
        let mut lines = conf.lines();
        for line in lines.by_ref() {
            if line.trim() == "membership:" {
                let rest: Vec<&str> = lines.collect();
                return EnsembleConfig::parse(&rest.join("\n"));
            }
        }
        Err(bad_config("no 'membership:' section"))
    }

    /// The version as ZooKeeper writes it (`100000000`).
    pub fn version_hex(&self) -> String {
        format!("{:x}", self.version)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.members.contains_key(&id)
    }

    pub fn ids(&self) -> Vec<u32> {
        self.members.keys().copied().collect()
    }

    /// Ids of the voting members.
    pub fn participants(&self) -> Vec<u32> {
        self.members
            .values()
            .filter(|m| m.role == Role::Participant)
            .map(|m| m.id)
            .collect()
    }

    /// The member whose client address (or quorum host) is `addr` (`host:port`).
    pub fn member_at(&self, addr: &str) -> Option<&ServerSpec> {
        self.members
            .values()
            .find(|m| m.client_addr().as_deref() == Some(addr))
    }
}

impl fmt::Display for EnsembleConfig {
    /// The `/zookeeper/config` text (no trailing newline, as ZooKeeper serves it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in self.members.values() {
            writeln!(f, "{m}")?;
        }
        write!(f, "version={:x}", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: u32, host: &str, role: Role, chost: &str, cport: u16) -> ServerSpec {
        ServerSpec {
            id,
            host: host.into(),
            quorum_port: 2888,
            election_port: 3888,
            role,
            client_host: chost.into(),
            client_port: cport,
        }
    }

    #[test]
    fn server_lines_parse_and_format() {
        use Role::*;
        // (input, parsed, canonical display)
        let table: Vec<(&str, ServerSpec, &str)> = vec![
            (
                "server.4=127.0.0.14:2888:3888:participant;127.0.0.14:2181",
                spec(4, "127.0.0.14", Participant, "127.0.0.14", 2181),
                "server.4=127.0.0.14:2888:3888:participant;127.0.0.14:2181",
            ),
            (
                "server.10=10.1.2.3:2888:3888:observer;10.1.2.3:2181",
                spec(10, "10.1.2.3", Observer, "10.1.2.3", 2181),
                "server.10=10.1.2.3:2888:3888:observer;10.1.2.3:2181",
            ),
            (
                "server.1=zk-0.example:2888:3888:participant;0.0.0.0:2181",
                spec(1, "zk-0.example", Participant, "0.0.0.0", 2181),
                "server.1=zk-0.example:2888:3888:participant;0.0.0.0:2181",
            ),
            (
                "server.2=127.0.0.12:2888:3888;2181",
                spec(2, "127.0.0.12", Participant, "0.0.0.0", 2181),
                "server.2=127.0.0.12:2888:3888:participant;0.0.0.0:2181",
            ),
            (
                "server.3=127.0.0.13:2888:3888:participant",
                spec(3, "127.0.0.13", Participant, "", 0),
                "server.3=127.0.0.13:2888:3888:participant",
            ),
            (
                "server.5=127.0.0.15:2888:3888",
                spec(5, "127.0.0.15", Participant, "", 0),
                "server.5=127.0.0.15:2888:3888:participant",
            ),
            (
                "  server.6=[::1]:2888:3888:participant;[::1]:2181 \n",
                spec(6, "::1", Participant, "::1", 2181),
                "server.6=[::1]:2888:3888:participant;[::1]:2181",
            ),
        ];
        for (input, want, display) in table {
            let got = ServerSpec::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
            assert_eq!(got.to_string(), display, "{input}");
            assert_eq!(
                ServerSpec::parse(display).unwrap(),
                want,
                "round trip {display}"
            );
        }
    }

    #[test]
    fn bad_server_lines_are_refused_with_the_line() {
        for bad in [
            "",
            "server.4",
            "servr.4=127.0.0.14:2888:3888",
            "server.x=127.0.0.14:2888:3888",
            "server.-1=127.0.0.14:2888:3888",
            "server.4=127.0.0.14:2888",
            "server.4=127.0.0.14:2888:3888:voter",
            "server.4=127.0.0.14:2888:3888:participant:extra",
            "server.4=127.0.0.14:99999:3888",
            "server.4=127.0.0.14:0:3888",
            "server.4=:2888:3888",
            "server.4=127.0.0.14:2888:3888;",
            "server.4=127.0.0.14:2888:3888;127.0.0.14:",
            "server.4=[::1:2888:3888",
            "server.4=a:2888:3888|b:2888:3888",
        ] {
            match ServerSpec::parse(bad) {
                Err(MemberError::BadServerLine { line, .. }) => assert_eq!(line, bad),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn client_addr_prefers_the_client_host_and_falls_back_on_the_wildcard() {
        let s = ServerSpec::parse("server.1=10.0.0.1:2888:3888;2181").unwrap();
        assert_eq!(s.client_addr().as_deref(), Some("10.0.0.1:2181"));
        let s = ServerSpec::parse("server.1=10.0.0.1:2888:3888;10.0.0.9:2182").unwrap();
        assert_eq!(s.client_addr().as_deref(), Some("10.0.0.9:2182"));
        let s = ServerSpec::parse("server.1=10.0.0.1:2888:3888").unwrap();
        assert_eq!(s.client_addr(), None);
        let a = ServerSpec::new(4, "127.0.0.14", 2888, 3888, 2181);
        assert_eq!(
            a.to_string(),
            "server.4=127.0.0.14:2888:3888:participant;127.0.0.14:2181"
        );
        assert!(a.same_addresses(&a.clone().with_role(Role::Observer)));
        assert!(!a.same_addresses(&ServerSpec::new(4, "127.0.0.24", 2888, 3888, 2181)));
    }

    const CONFIG: &str = "server.1=127.0.0.11:2888:3888:participant;127.0.0.11:2181\n\
                          server.2=127.0.0.12:2888:3888:participant;127.0.0.12:2181\n\
                          server.3=127.0.0.13:2888:3888:participant;127.0.0.13:2181\n\
                          version=100000000";

    #[test]
    fn ensemble_configs_parse_from_the_config_node() {
        let table: Vec<(String, Vec<u32>, u64)> = vec![
            (CONFIG.to_string(), vec![1, 2, 3], 0x1_0000_0000),
            (format!("{CONFIG}\n"), vec![1, 2, 3], 0x1_0000_0000),
            (format!("\n{CONFIG}\n\n"), vec![1, 2, 3], 0x1_0000_0000),
            (
                // numeric order, not text order
                "server.10=h10:2888:3888:participant;h10:2181\nserver.2=h2:2888:3888:observer;h2:2181\nversion=200000003".into(),
                vec![2, 10],
                0x2_0000_0003,
            ),
            ("version=0".into(), vec![], 0),
            (
                "server.1=h:1:2\ngroup.1=1\nweight.1=1\nversion=a".into(),
                vec![1],
                10,
            ),
        ];
        for (text, ids, version) in table {
            let cfg = EnsembleConfig::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(cfg.ids(), ids, "{text:?}");
            assert_eq!(cfg.version, version, "{text:?}");
        }
        let cfg = EnsembleConfig::parse(CONFIG).unwrap();
        assert_eq!(cfg.to_string(), CONFIG);
        assert_eq!(cfg.version_hex(), "100000000");
        assert_eq!(cfg.participants(), vec![1, 2, 3]);
        assert_eq!(cfg.member_at("127.0.0.12:2181").map(|m| m.id), Some(2));
        assert!(cfg.member_at("127.0.0.12:2888").is_none());
    }

    #[test]
    fn bad_ensemble_configs_are_refused() {
        for bad in [
            "",
            "\n",
            "server.1=127.0.0.11:2888:3888:participant;127.0.0.11:2181",
            "server.1=127.0.0.11:2888:3888\nversion=xyz",
            "server.1=127.0.0.11:2888:3888\nversion=1\nversion=2",
            "server.1=a:1:2\nserver.1=b:1:2\nversion=1",
            "server.1=a:1:2\nclientPort=2181\nversion=1",
            "server.1=a:1\nversion=1",
        ] {
            assert!(EnsembleConfig::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn conf_membership_section_parses() {
        let conf = include_str!("../zk/testdata/conf-leader.txt");
        let cfg = EnsembleConfig::parse_conf_membership(conf).unwrap();
        assert_eq!(cfg.ids(), vec![1, 2, 3]);
        assert_eq!(cfg.version, 0x1_0000_0000);
        assert_eq!(cfg, EnsembleConfig::parse(CONFIG).unwrap());
        assert!(EnsembleConfig::parse_conf_membership("clientPort=2181\n").is_err());
    }
}
