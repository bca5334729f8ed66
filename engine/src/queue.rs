//! The persistent queue of deferred events.
//!
//! A versioned JSON file in the charm directory, written atomically (tempfile in the same
//! directory, fsync, rename). Semantics follow ops (hook protocol reference §5): entries are
//! replayed oldest first before the current event; an entry that defers again keeps its place;
//! an event equal to a queued one is not queued twice. Each entry records when it was first
//! deferred, how often it has been attempted, and the last reason.
//!
//! A file that cannot be read or parsed is moved aside (`<name>.corrupt-<unix time>`) with a
//! warning, and the charm carries on with an empty queue: a bad file must never turn every
//! following hook into an error.
//!
//! jujusim's `settle` reads this file too (a non-empty `entries` list means deferred work remains),
//! so its name and the `entries` key are a documented contract.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::juju::context::Event;

/// File name inside `JUJU_CHARM_DIR`.
pub const QUEUE_FILE: &str = ".deferred.json";
/// Format version written by this code.
pub const QUEUE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub event: Event,
    /// Unix seconds when the event was first deferred.
    pub first_seen: u64,
    /// Unix seconds of the last attempt.
    pub last_attempt: u64,
    /// How many times a handler has run for this event (the first run included).
    pub attempts: u32,
    /// Why it was last deferred.
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    entries: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot write the deferred-event queue {path}: {source}; check that the charm directory is writable and not full")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The queue in memory, plus where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    path: PathBuf,
    entries: Vec<Entry>,
}

/// What loading found, for the caller to log.
#[derive(Debug, PartialEq, Eq)]
pub enum LoadNote {
    Fresh,
    Loaded,
    /// The file was unreadable or corrupt and has been moved to this path.
    MovedAside {
        to: PathBuf,
        problem: String,
    },
}

impl Queue {
    pub fn path_in(charm_dir: &Path) -> PathBuf {
        charm_dir.join(QUEUE_FILE)
    }

    pub fn empty(path: PathBuf) -> Queue {
        Queue {
            path,
            entries: Vec::new(),
        }
    }

    /// Loads the queue, moving a corrupt file aside. Never fails: worst case an empty queue.
    pub fn load(path: &Path) -> (Queue, LoadNote) {
        let raw = match std::fs::read(path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (Queue::empty(path.to_path_buf()), LoadNote::Fresh)
            }
            Err(e) => return Self::move_aside(path, format!("unreadable: {e}")),
        };
        match serde_json::from_slice::<File>(&raw) {
            Ok(f) if f.version == QUEUE_VERSION => (
                Queue {
                    path: path.to_path_buf(),
                    entries: f.entries,
                },
                LoadNote::Loaded,
            ),
            Ok(f) => Self::move_aside(
                path,
                format!(
                    "unknown format version {} (this charm writes {QUEUE_VERSION})",
                    f.version
                ),
            ),
            Err(e) => Self::move_aside(path, format!("not valid queue JSON: {e}")),
        }
    }

    fn move_aside(path: &Path, problem: String) -> (Queue, LoadNote) {
        let (to, said) = crate::files::move_aside(path);
        let note = match to {
            Some(to) => LoadNote::MovedAside { to, problem },
            None => LoadNote::MovedAside {
                to: PathBuf::new(),
                problem: format!("{problem}; {said}"),
            },
        };
        (Queue::empty(path.to_path_buf()), note)
    }

    /// Atomic write: temp file in the same directory, fsync, rename over the old file.
    pub fn save(&self) -> Result<(), QueueError> {
        let err = |source| QueueError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let body = serde_json::to_vec_pretty(&File {
            version: QUEUE_VERSION,
            entries: self.entries.clone(),
        })
        .map_err(|e| err(std::io::Error::other(e)))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        tmp.write_all(&body).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&self.path).map_err(|e| err(e.error))?;
        Ok(())
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, event: &Event) -> bool {
        self.entries.iter().any(|e| &e.event == event)
    }

    /// Appends a newly deferred event, unless an equal one is already queued (then that entry is
    /// updated in place and keeps its position). Returns whether a new entry was added.
    pub fn push(&mut self, event: Event, reason: String, now: u64) -> bool {
        if let Some(e) = self.entries.iter_mut().find(|e| e.event == event) {
            e.attempts += 1;
            e.last_attempt = now;
            e.reason = reason;
            return false;
        }
        self.entries.push(Entry {
            event,
            first_seen: now,
            last_attempt: now,
            attempts: 1,
            reason,
        });
        true
    }

    /// Drops the entry equal to `event`, if any.
    pub fn remove(&mut self, event: &Event) {
        self.entries.retain(|e| &e.event != event);
    }

    pub(crate) fn set_entries(&mut self, entries: Vec<Entry>) {
        self.entries = entries;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::context::{RelationId, RelationPhase};

    fn rel(n: u32) -> Event {
        Event::Relation {
            endpoint: "cluster".into(),
            phase: RelationPhase::Changed,
            id: RelationId(3),
            remote_app: Some("zookeeper".into()),
            remote_unit: crate::juju::context::UnitName::parse(&format!("zookeeper/{n}")),
            departing_unit: None,
        }
    }

    #[test]
    fn push_dedups_and_keeps_position() {
        let mut q = Queue::empty("/nonexistent/q".into());
        assert!(q.push(rel(1), "a".into(), 10));
        assert!(q.push(rel(2), "b".into(), 11));
        assert!(!q.push(rel(1), "c".into(), 12));
        assert_eq!(q.len(), 2);
        assert_eq!(q.entries()[0].event, rel(1));
        assert_eq!(q.entries()[0].attempts, 2);
        assert_eq!(q.entries()[0].first_seen, 10);
        assert_eq!(q.entries()[0].last_attempt, 12);
        assert_eq!(q.entries()[0].reason, "c");
    }

    #[test]
    fn persists_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = Queue::path_in(dir.path());
        let (mut q, note) = Queue::load(&path);
        assert_eq!(note, LoadNote::Fresh);
        q.push(rel(1), "members syncing".into(), 100);
        q.push(Event::UpdateStatus, "no quorum leader".into(), 101);
        q.save().unwrap();
        let (q2, note) = Queue::load(&path);
        assert_eq!(note, LoadNote::Loaded);
        assert_eq!(q2, q);
        // The file is the documented shape.
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["entries"].as_array().unwrap().len(), 2);
        assert_eq!(v["entries"][1]["event"]["kind"], "update-status");
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = Queue::path_in(dir.path());
        std::fs::write(&path, b"{ not json").unwrap();
        let (q, note) = Queue::load(&path);
        assert!(q.is_empty());
        match note {
            LoadNote::MovedAside { to, problem } => {
                assert!(to.to_string_lossy().contains(".deferred.json.corrupt-"));
                assert!(to.exists());
                assert!(problem.contains("not valid queue JSON"), "{problem}");
            }
            n => panic!("{n:?}"),
        }
        assert!(!path.exists());
        // The next load starts fresh, and saving works again.
        let (mut q, note) = Queue::load(&path);
        assert_eq!(note, LoadNote::Fresh);
        q.push(Event::Start, "x".into(), 43);
        q.save().unwrap();
        assert_eq!(Queue::load(&path).0.len(), 1);
    }

    #[test]
    fn unknown_version_and_unknown_event_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = Queue::path_in(dir.path());
        std::fs::write(&path, br#"{"version":99,"entries":[]}"#).unwrap();
        let (_, note) = Queue::load(&path);
        assert!(
            matches!(note, LoadNote::MovedAside { ref problem, .. } if problem.contains("version 99"))
        );
        std::fs::write(&path, br#"{"version":1,"entries":[{"event":{"kind":"teleport"},"first_seen":1,"last_attempt":1,"attempts":1,"reason":""}]}"#).unwrap();
        let (q, note) = Queue::load(&path);
        assert!(q.is_empty());
        assert!(matches!(note, LoadNote::MovedAside { .. }));
    }

    #[test]
    fn unreadable_path_is_moved_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = Queue::path_in(dir.path());
        std::fs::create_dir(&path).unwrap(); // a directory where the file should be
        let (q, note) = Queue::load(&path);
        assert!(q.is_empty());
        assert!(matches!(note, LoadNote::MovedAside { .. }), "{note:?}");
    }
}
