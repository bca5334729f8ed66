//! `tracing` for the whole charm, forwarded to `juju-log` (with the matching level) and stderr.
//!
//! INFO and above go to `juju-log` (DEBUG too when [`init`] is asked for it); WARN and above
//! also go to stderr, which Juju records in the unit log as warnings. If `juju-log` itself fails
//! (for instance outside a hook), the line goes to stderr instead, so nothing is lost.
//! Passwords never reach a log line: they are held as [`crate::secret::Secret`], whose `Debug`
//! prints `***` and which has no `Display`.

use std::fmt::Write as _;
use std::process::{Command, Stdio};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::juju::process::argv;
use crate::juju::tools::LogLevel;

/// Forwards events to `juju-log`.
pub struct JujuLogLayer {
    threshold: Level,
}

impl JujuLogLayer {
    pub fn new(debug: bool) -> JujuLogLayer {
        JujuLogLayer {
            threshold: if debug { Level::DEBUG } else { Level::INFO },
        }
    }
}

#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

pub fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warning,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

/// Formats an event as one line: message followed by `key=value` fields.
fn format_event(event: &Event<'_>) -> String {
    let mut line = Line::default();
    event.record(&mut line);
    let mut s = line.message;
    s.push_str(&line.fields);
    s
}

fn juju_log(level: LogLevel, message: &str) -> bool {
    let inv = argv::juju_log(level, message);
    Command::new(inv.tool)
        .args(&inv.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl<S: Subscriber> Layer<S> for JujuLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.threshold {
            return;
        }
        let line = format_event(event);
        let lvl = level_of(&level);
        let delivered = juju_log(lvl, &line);
        if !delivered || level <= Level::WARN {
            eprintln!("{} {}", lvl.as_str(), line);
        }
    }
}

/// Installs the juju-log layer as the global subscriber (once per process).
pub fn init(debug: bool) {
    let subscriber = tracing_subscriber::registry().with(JujuLogLayer::new(debug));
    // Already set (tests): keep the first one.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_juju_levels() {
        assert_eq!(level_of(&Level::ERROR), LogLevel::Error);
        assert_eq!(level_of(&Level::WARN), LogLevel::Warning);
        assert_eq!(level_of(&Level::INFO), LogLevel::Info);
        assert_eq!(level_of(&Level::DEBUG), LogLevel::Debug);
        assert_eq!(level_of(&Level::TRACE), LogLevel::Debug);
    }

    /// A layer that records formatted lines, to check the formatting used by JujuLogLayer.
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            self.0.lock().unwrap().push(format_event(event));
        }
    }

    #[test]
    fn events_format_as_one_line_and_secrets_stay_hidden() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry().with(Capture(lines.clone()));
        let pw = crate::secret::Secret::new("hunter2".to_string());
        tracing::subscriber::with_default(sub, || {
            tracing::info!(unit = "zookeeper/1", password = ?pw, "added member {}", 2);
        });
        let got = lines.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("added member 2"), "{}", got[0]);
        assert!(got[0].contains("unit=zookeeper/1"));
        assert!(!got[0].contains("hunter2"), "{}", got[0]);
    }
}
