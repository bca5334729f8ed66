//! `tracing` for the whole charm, forwarded to `juju-log` (with the matching level) and stderr.
//!
//! INFO and above go to `juju-log` (DEBUG too when [`init`] is asked for it); WARN and above
//! also go to stderr, which Juju records in the unit log as warnings. If `juju-log` itself fails
//! (for instance outside a hook), the line goes to stderr instead, so nothing is lost.
//! Passwords never reach a log line: they are held as [`crate::secret::Secret`], whose `Debug`
//! prints `***` and which has no `Display`. Lines reach Juju through the hook-tool seam
//! ([`HookTools::juju_log`] of [`ProcessTools`], or any sink given to [`init_with`]).

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::juju::process::ProcessTools;
use crate::juju::tools::{HookTools, LogLevel};

/// Where log lines go: true when delivered.
pub type LogSink = Box<dyn Fn(LogLevel, &str) -> bool + Send + Sync>;

/// Forwards events to `juju-log`.
pub struct JujuLogLayer {
    threshold: Level,
    sink: LogSink,
}

impl JujuLogLayer {
    /// Lines go to the real `juju-log` hook tool.
    pub fn new(debug: bool) -> JujuLogLayer {
        JujuLogLayer::with_sink(debug, Box::new(juju_log))
    }

    pub fn with_sink(debug: bool, sink: LogSink) -> JujuLogLayer {
        JujuLogLayer {
            threshold: if debug { Level::DEBUG } else { Level::INFO },
            sink,
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

/// `juju-log` through the hook tools (their own instance: the charm's count of tool calls is
/// about its hook's work, not its logging).
fn juju_log(level: LogLevel, message: &str) -> bool {
    ProcessTools::new().juju_log(level, message).is_ok()
}

impl<S: Subscriber> Layer<S> for JujuLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.threshold {
            return;
        }
        let line = format_event(event);
        let lvl = level_of(&level);
        let delivered = (self.sink)(lvl, &line);
        if !delivered || level <= Level::WARN {
            eprintln!("{} {}", lvl.as_str(), line);
        }
    }
}

/// Installs the juju-log layer as the global subscriber (once per process).
pub fn init(debug: bool) {
    init_with(debug, Box::new(juju_log));
}

/// [`init`] with another sink (tests, or a charm that logs elsewhere too).
pub fn init_with(debug: bool, sink: LogSink) {
    let subscriber = tracing_subscriber::registry().with(JujuLogLayer::with_sink(debug, sink));
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

    #[test]
    fn events_go_through_the_sink_as_one_line_and_secrets_stay_hidden() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let got = lines.clone();
        let sink: LogSink = Box::new(move |level, line| {
            got.lock().unwrap().push((level, line.to_string()));
            true
        });
        let sub = tracing_subscriber::registry().with(JujuLogLayer::with_sink(false, sink));
        let pw = crate::secret::Secret::new("hunter2".to_string());
        tracing::subscriber::with_default(sub, || {
            tracing::info!(unit = "zookeeper/1", password = ?pw, "added member {}", 2);
            tracing::debug!("below the threshold");
            tracing::error!("failed");
        });
        let got = lines.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, LogLevel::Info);
        assert!(got[0].1.starts_with("added member 2"), "{}", got[0].1);
        assert!(got[0].1.contains("unit=zookeeper/1"));
        assert!(!got[0].1.contains("hunter2"), "{}", got[0].1);
        assert_eq!(got[1], (LogLevel::Error, "failed".to_string()));
    }
}
