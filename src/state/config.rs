//! The charm's configuration, validated. An invalid value never fails a hook: it becomes a
//! [`ConfigError`] that names the option and the accepted values, the unit goes `blocked` with
//! that message, and the last good configuration stays in force.

use serde_json::{Map, Value};

/// ZooKeeper server log levels, as the `log-level` option spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Debug,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "ERROR",
            LogLevel::Warning => "WARNING",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
        }
    }
    /// The name log4j/slf4j use (`WARNING` is `WARN` there).
    pub fn java_name(self) -> &'static str {
        match self {
            LogLevel::Warning => "WARN",
            other => other.as_str(),
        }
    }
}

/// What happens to a client's znode when its relation is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZnodePolicy {
    /// Keep the data; reduce the ACL to the super user.
    Keep,
    /// Delete the client's whole tree.
    Delete,
}

impl ZnodePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ZnodePolicy::Keep => "keep",
            ZnodePolicy::Delete => "delete",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharmConfig {
    pub init_limit: u32,
    pub sync_limit: u32,
    pub tick_time: u32,
    pub log_level: LogLevel,
    pub client_znode_policy: ZnodePolicy,
    /// Seconds a hook waits for a starting server to reach broadcast.
    pub server_start_timeout: u32,
    /// Certificate requests carry the unit's IP address as a SAN (`certificate-include-ip-sans`).
    pub include_ip_sans: bool,
    /// Renew a certificate this long before its `notAfter` (seconds; `None`: a third of its
    /// validity, at most a week).
    pub renewal_margin: Option<u64>,
    /// `pause-after-unit-refresh`: hold an upgrade for the operator after upgraded units.
    pub pause_after_unit_refresh: crate::upgrade::Pause,
}

impl Default for CharmConfig {
    fn default() -> CharmConfig {
        CharmConfig {
            init_limit: 5,
            sync_limit: 2,
            tick_time: 2000,
            log_level: LogLevel::Info,
            client_znode_policy: ZnodePolicy::Keep,
            server_start_timeout: 60,
            include_ip_sans: true,
            renewal_margin: None,
            pause_after_unit_refresh: crate::upgrade::Pause::None,
        }
    }
}

/// A duration as `certificate-renewal-margin` takes it: whole numbers with units `d`, `h`, `m`,
/// `s`, one or more (`7d`, `12h`, `1h30m`, `90s`); seconds.
pub fn parse_margin(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        num.clear();
    }
    (num.is_empty() && total > 0).then_some(total)
}

/// One bad option value (there may be several).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid config {option}={value}: {expected}")]
pub struct ConfigError {
    pub option: &'static str,
    pub value: String,
    pub expected: String,
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn int_option(
    cfg: &Map<String, Value>,
    option: &'static str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    let Some(v) = cfg.get(option) else {
        return Ok(default);
    };
    let bad = || ConfigError {
        option,
        value: show(v),
        expected: format!("must be a whole number from {min} to {max}"),
    };
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(bad)?,
        // Juju types int options, but be lenient with a numeric string.
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if n < i64::from(min) || n > i64::from(max) {
        return Err(bad());
    }
    Ok(n as u32)
}

fn str_option<'a>(
    cfg: &'a Map<String, Value>,
    option: &'static str,
) -> Option<Result<&'a str, ConfigError>> {
    cfg.get(option).map(|v| {
        v.as_str().ok_or_else(|| ConfigError {
            option,
            value: show(v),
            expected: "must be a string".into(),
        })
    })
}

impl CharmConfig {
    /// Validates `config-get --format=json` output. Returns every problem, not just the first.
    pub fn from_json(cfg: &Map<String, Value>) -> Result<CharmConfig, Vec<ConfigError>> {
        let d = CharmConfig::default();
        let mut errors = Vec::new();
        let mut take = |r: Result<u32, ConfigError>, default: u32| {
            r.unwrap_or_else(|e| {
                errors.push(e);
                default
            })
        };
        let init_limit = take(
            int_option(cfg, "init-limit", d.init_limit, 1, 1000),
            d.init_limit,
        );
        let sync_limit = take(
            int_option(cfg, "sync-limit", d.sync_limit, 1, 1000),
            d.sync_limit,
        );
        let tick_time = take(
            int_option(cfg, "tick-time", d.tick_time, TICK_MIN, 60000),
            d.tick_time,
        );
        let server_start_timeout = take(
            int_option(cfg, "server-start-timeout", d.server_start_timeout, 5, 3600),
            d.server_start_timeout,
        );
        let log_level = match str_option(cfg, "log-level") {
            None => d.log_level,
            Some(Err(e)) => {
                errors.push(e);
                d.log_level
            }
            Some(Ok(s)) => match s.trim().to_ascii_uppercase().as_str() {
                "ERROR" => LogLevel::Error,
                "WARNING" | "WARN" => LogLevel::Warning,
                "INFO" => LogLevel::Info,
                "DEBUG" => LogLevel::Debug,
                _ => {
                    errors.push(ConfigError {
                        option: "log-level",
                        value: format!("{s:?}"),
                        expected: "must be one of ERROR, WARNING, INFO, DEBUG".into(),
                    });
                    d.log_level
                }
            },
        };
        let client_znode_policy = match str_option(cfg, "client-znode-policy") {
            None => d.client_znode_policy,
            Some(Err(e)) => {
                errors.push(e);
                d.client_znode_policy
            }
            Some(Ok(s)) => match s.trim() {
                "keep" => ZnodePolicy::Keep,
                "delete" => ZnodePolicy::Delete,
                _ => {
                    errors.push(ConfigError {
                        option: "client-znode-policy",
                        value: format!("{s:?}"),
                        expected: "must be keep or delete".into(),
                    });
                    d.client_znode_policy
                }
            },
        };
        let include_ip_sans = match cfg.get("certificate-include-ip-sans") {
            None => d.include_ip_sans,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.trim() == "true" => true,
            Some(Value::String(s)) if s.trim() == "false" => false,
            Some(v) => {
                errors.push(ConfigError {
                    option: "certificate-include-ip-sans",
                    value: show(v),
                    expected: "must be true or false".into(),
                });
                d.include_ip_sans
            }
        };
        let renewal_margin = match str_option(cfg, "certificate-renewal-margin") {
            None => d.renewal_margin,
            Some(Err(e)) => {
                errors.push(e);
                d.renewal_margin
            }
            Some(Ok(s)) if s.trim().is_empty() => None,
            Some(Ok(s)) => match parse_margin(s) {
                Some(secs) => Some(secs),
                None => {
                    errors.push(ConfigError {
                        option: "certificate-renewal-margin",
                        value: format!("{s:?}"),
                        expected:
                            "must be empty (automatic) or a duration such as 7d, 12h, 1h30m or 90s"
                                .into(),
                    });
                    d.renewal_margin
                }
            },
        };
        let pause_after_unit_refresh = match str_option(cfg, "pause-after-unit-refresh") {
            None => d.pause_after_unit_refresh,
            Some(Err(e)) => {
                errors.push(e);
                d.pause_after_unit_refresh
            }
            Some(Ok(s)) => crate::upgrade::Pause::parse(s).unwrap_or_else(|| {
                errors.push(ConfigError {
                    option: "pause-after-unit-refresh",
                    value: format!("{s:?}"),
                    expected: "must be none, first or all".into(),
                });
                d.pause_after_unit_refresh
            }),
        };
        if errors.is_empty() {
            errors.extend(timing_errors(init_limit, sync_limit, tick_time));
        }
        if errors.is_empty() {
            Ok(CharmConfig {
                init_limit,
                sync_limit,
                tick_time,
                log_level,
                client_znode_policy,
                server_start_timeout,
                include_ip_sans,
                renewal_margin,
                pause_after_unit_refresh,
            })
        } else {
            Err(errors)
        }
    }
}

/// Shortest tick accepted (ms). Measured here (3 units, quorum SASL, with and without two CPU
/// busy loops): at 1 ms no joiner ever syncs, 5 ms is flaky, from 10 ms up an ensemble forms,
/// keeps its quorum and rolls. 100 ms is the floor because a client's session can last at most
/// 20 ticks: below it, under 2 s, any pause of a client expires its session.
pub const TICK_MIN: u32 = 100;
/// `init-limit` x `tick-time` (ms) at least: a learner connects, authenticates and syncs in that
/// time. Joins here failed at 5 ms and were flaky at 25 ms; 500 ms leaves a wide margin (a 100
/// MB snapshot takes about 1.5 s: large data sets want more, which stays the operator's call).
pub const INIT_MS_MIN: u64 = 500;
/// `sync-limit` x `tick-time` (ms) at least: a follower lagging longer is dropped (at 2-10 ms a
/// loaded machine drops followers all the time).
pub const SYNC_MS_MIN: u64 = 200;

/// The options' products that bound ZooKeeper's timing.
fn timing_errors(init: u32, sync: u32, tick: u32) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let product = |n: u32| u64::from(n) * u64::from(tick);
    if product(init) < INIT_MS_MIN {
        out.push(ConfigError {
            option: "init-limit",
            value: format!("{init} (with tick-time={tick})"),
            expected: format!(
                "init-limit x tick-time is {} ms, must be at least {INIT_MS_MIN} ms (a joining server \
                 must connect, authenticate and sync in that time); raise init-limit or tick-time",
                product(init)
            ),
        });
    }
    if product(sync) < SYNC_MS_MIN {
        out.push(ConfigError {
            option: "sync-limit",
            value: format!("{sync} (with tick-time={tick})"),
            expected: format!(
                "sync-limit x tick-time is {} ms, must be at least {SYNC_MS_MIN} ms (a follower lagging \
                 longer is dropped); raise sync-limit or tick-time",
                product(sync)
            ),
        });
    }
    out
}

/// One status line for a list of config errors.
pub fn describe(errors: &[ConfigError]) -> String {
    let parts: Vec<String> = errors.iter().map(ConfigError::to_string).collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<CharmConfig, Vec<ConfigError>> {
        CharmConfig::from_json(v.as_object().unwrap())
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse(json!({})).unwrap(), CharmConfig::default());
        let c = parse(json!({"init-limit": 10, "sync-limit": 5, "tick-time": 500, "log-level": "debug", "client-znode-policy": "delete"})).unwrap();
        assert_eq!((c.init_limit, c.sync_limit, c.tick_time), (10, 5, 500));
        // The smallest tick with limits that fit it; configurations that worked before stay valid.
        assert!(parse(json!({"tick-time": 100, "init-limit": 5, "sync-limit": 2})).is_ok());
        assert!(parse(json!({"tick-time": 1000, "init-limit": 1, "sync-limit": 1})).is_ok());
        assert!(parse(json!({"tick-time": 400, "sync-limit": 2})).is_ok());
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.client_znode_policy, ZnodePolicy::Delete);
        assert_eq!(
            parse(json!({"log-level": "WARNING"}))
                .unwrap()
                .log_level
                .java_name(),
            "WARN"
        );
        // Options this charm ignores (K8s-only ones) are accepted.
        assert!(parse(json!({"expose-external": "false"})).is_ok());
        let tls = parse(
            json!({"certificate-include-ip-sans": false, "certificate-renewal-margin": "1h30m"}),
        )
        .unwrap();
        assert!(!tls.include_ip_sans);
        assert_eq!(tls.renewal_margin, Some(5400));
        assert_eq!(
            parse(json!({"certificate-renewal-margin": ""}))
                .unwrap()
                .renewal_margin,
            None
        );
        for (text, secs) in [("7d", Some(604_800)), ("90s", Some(90)), ("2h", Some(7200))] {
            assert_eq!(parse_margin(text), secs, "{text}");
        }
        for bad in ["7", "1x", "0s", "-5m", "m"] {
            assert_eq!(parse_margin(bad), None, "{bad}");
        }
        assert!(parse(json!({"certificate-renewal-margin": "soon"})).is_err());
        assert!(parse(json!({"certificate-include-ip-sans": "yes"})).is_err());
    }

    #[test]
    fn invalid_values_name_the_option_and_the_range() {
        let table = [
            (
                json!({"tick-time": 0}),
                "invalid config tick-time=0: must be a whole number from 100 to 60000",
            ),
            (
                json!({"tick-time": -5}),
                "invalid config tick-time=-5: must be a whole number from 100 to 60000",
            ),
            (
                json!({"tick-time": 1}),
                "invalid config tick-time=1: must be a whole number from 100 to 60000",
            ),
            (
                json!({"tick-time": 100, "init-limit": 4, "sync-limit": 5}),
                "invalid config init-limit=4 (with tick-time=100): init-limit x tick-time is 400 ms, must be at least 500 ms (a joining server must connect, authenticate and sync in that time); raise init-limit or tick-time",
            ),
            (
                json!({"tick-time": 100, "sync-limit": 1}),
                "invalid config sync-limit=1 (with tick-time=100): sync-limit x tick-time is 100 ms, must be at least 200 ms (a follower lagging longer is dropped); raise sync-limit or tick-time",
            ),
            (
                json!({"init-limit": "abc"}),
                "invalid config init-limit=\"abc\": must be a whole number from 1 to 1000",
            ),
            (
                json!({"sync-limit": 1.5}),
                "invalid config sync-limit=1.5: must be a whole number from 1 to 1000",
            ),
            (
                json!({"log-level": "LOUD"}),
                "invalid config log-level=\"LOUD\": must be one of ERROR, WARNING, INFO, DEBUG",
            ),
            (
                json!({"client-znode-policy": "shred"}),
                "invalid config client-znode-policy=\"shred\": must be keep or delete",
            ),
        ];
        for (cfg, want) in table {
            let errs = parse(cfg.clone()).unwrap_err();
            assert_eq!(describe(&errs), want, "{cfg}");
        }
        let errs = parse(json!({"tick-time": 0, "sync-limit": 0})).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(
            describe(&errs).contains("sync-limit=0") && describe(&errs).contains("tick-time=0")
        );
    }
}
