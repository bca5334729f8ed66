//! Ordering, deferral and commit: the one place that decides what runs in a dispatch and what
//! waits for the next one.
//!
//! A dispatch (see [`dispatch`]):
//! 1. load the deferred-event queue (a corrupt file is moved aside, never fatal);
//! 2. replay queued events oldest first (hooks only: an action runs alone, as fast as it can);
//!    an event that defers again keeps its place; an entry the current event stands for
//!    ([`Charm::deferred_as`]) is not replayed: the current event's outcome settles it;
//! 3. handle the current event, unless an equal event was just replayed (ops' duplicate rule);
//!    a deferred current event is queued as [`Charm::deferred_as`] says (at the back, or in the
//!    place of an equal entry);
//! 4. let the charm finish (one status update for the whole dispatch);
//! 5. save the queue, only when the dispatch succeeded: a failing hook leaves the queue exactly as
//!    it was, like Juju drops the hook's relation writes, and Juju retries the hook.
//!
//! Handlers never defer by themselves: they return an [`Outcome`]; the charm maps its errors to
//! outcomes in one function.

use std::fmt;

use crate::juju::context::Event;
use crate::queue::{self, LoadNote, Queue};

/// What handling one event came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Finished (possibly with nothing to do).
    Done,
    /// Could not finish for a reason that goes away by itself; replay at the next dispatch.
    Defer { reason: String },
    /// Cannot proceed until the operator acts; not retried (the next event re-evaluates anyway).
    Blocked { message: String },
}

impl Outcome {
    pub fn defer(reason: impl Into<String>) -> Outcome {
        Outcome::Defer {
            reason: reason.into(),
        }
    }
}

/// What the charm provides to the engine.
pub trait Charm {
    type Error: fmt::Display;
    /// Handles one event. `replayed` is true for a deferred event run again.
    fn handle(&mut self, event: &Event, replayed: bool) -> Result<Outcome, Self::Error>;
    /// Called once after every event of the dispatch ran (e.g. to set the unit status once).
    fn finish(&mut self, summary: &Summary) -> Result<(), Self::Error>;
    /// What a deferred `event` is queued as. By default the event itself; a charm whose
    /// replayed events all run the same reconcile returns [`Event::Reconcile`], so that any
    /// backlog is one entry and a hook runs one reconcile (the current event stands for it).
    fn deferred_as(&self, event: &Event) -> Event {
        event.clone()
    }
}

/// What happened in a dispatch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events handled, in order, with their outcome.
    pub ran: Vec<(Event, Outcome, bool)>,
    /// Events still deferred after this dispatch (oldest first), with their reasons.
    pub still_deferred: Vec<(Event, String)>,
    /// The current event was skipped because an equal queued event already ran.
    pub current_deduplicated: bool,
}

impl Summary {
    /// The most recent blocked message, if any handler reported one.
    pub fn blocked(&self) -> Option<&str> {
        self.ran.iter().rev().find_map(|(_, o, _)| match o {
            Outcome::Blocked { message } => Some(message.as_str()),
            _ => None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError<E: fmt::Display> {
    #[error("handling {event} failed: {error}")]
    Handler { event: String, error: E },
    #[error("finishing the hook failed: {0}")]
    Finish(E),
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
}

/// Runs one dispatch over the queue at `queue`. `now` is unix seconds (injected for tests).
pub fn dispatch<C: Charm>(
    charm: &mut C,
    current: &Event,
    mut queue: Queue,
    now: u64,
) -> Result<Summary, DispatchError<C::Error>> {
    let mut summary = Summary::default();
    let original = queue.clone();
    let mut replayed: Vec<Event> = Vec::new();

    // Actions run alone: they must answer quickly and never wait on deferred work.
    let replay = !matches!(current, Event::Action { .. });
    // The entry the current event would be queued as: its outcome settles that entry.
    let stands_for = current.deferrable().then(|| charm.deferred_as(current));
    if replay && !queue.is_empty() {
        let mut kept = Vec::with_capacity(queue.len());
        for mut entry in queue.entries().to_vec() {
            if stands_for.as_ref() == Some(&entry.event) && &entry.event != current {
                tracing::debug!(event = %entry.event, "settled by the current event");
                kept.push(entry);
                continue;
            }
            tracing::debug!(event = %entry.event, attempts = entry.attempts, "replaying deferred event");
            let outcome =
                charm
                    .handle(&entry.event, true)
                    .map_err(|error| DispatchError::Handler {
                        event: entry.event.describe(),
                        error,
                    })?;
            replayed.push(entry.event.clone());
            entry.attempts += 1;
            entry.last_attempt = now;
            match &outcome {
                Outcome::Defer { reason } => {
                    tracing::info!(
                        "{} still deferred (attempt {}): {reason}",
                        entry.event,
                        entry.attempts
                    );
                    entry.reason = reason.clone();
                    kept.push(entry.clone());
                }
                Outcome::Done => tracing::info!(
                    "deferred {} completed after {} attempts",
                    entry.event,
                    entry.attempts
                ),
                Outcome::Blocked { message } => {
                    tracing::warn!("deferred {} is blocked: {message}", entry.event)
                }
            }
            summary.ran.push((entry.event, outcome, true));
        }
        queue.set_entries(kept);
    }

    if replayed.contains(current) {
        tracing::debug!(event = %current, "an equal deferred event just ran; not running it twice");
        summary.current_deduplicated = true;
    } else {
        let outcome = charm
            .handle(current, false)
            .map_err(|error| DispatchError::Handler {
                event: current.describe(),
                error,
            })?;
        let outcome = match outcome {
            Outcome::Defer { reason } if !current.deferrable() => {
                tracing::warn!("{current} cannot be deferred ({reason}); dropping it");
                Outcome::Done
            }
            other => other,
        };
        match (&outcome, &stands_for) {
            (Outcome::Defer { reason }, Some(queued_as)) => {
                tracing::info!("deferring {current}: {reason}");
                queue.push(queued_as.clone(), reason.clone(), now);
            }
            (_, Some(queued_as)) if queued_as != current && queue.contains(queued_as) => {
                tracing::info!("deferred {queued_as} completed with {current}");
                queue.remove(queued_as);
            }
            _ => {}
        }
        summary.ran.push((current.clone(), outcome, false));
    }

    summary.still_deferred = queue
        .entries()
        .iter()
        .map(|e| (e.event.clone(), e.reason.clone()))
        .collect();
    charm.finish(&summary).map_err(DispatchError::Finish)?;
    if queue != original {
        queue.save()?;
    }
    Ok(summary)
}

/// Loads the queue for a charm directory, logging what loading found.
pub fn load_queue(charm_dir: &std::path::Path) -> Queue {
    let path = Queue::path_in(charm_dir);
    let (queue, note) = Queue::load(&path);
    if let LoadNote::MovedAside { to, problem } = note {
        tracing::warn!(
            "the deferred-event queue {} was {problem}; moved it to {} and started with an empty queue \
             (events deferred before are dropped; the next reconcile re-evaluates everything)",
            path.display(),
            to.display()
        );
    }
    queue
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::context::{RelationId, RelationPhase, UnitName};
    use std::collections::BTreeMap;

    /// A charm whose handler answers from a script: event hook name -> outcomes in order.
    struct Scripted {
        answers: BTreeMap<String, Vec<Outcome>>,
        calls: Vec<(String, bool)>,
        fail_on: Option<String>,
        finished: Option<Summary>,
        /// Queue deferred events as one reconcile entry.
        coalesce: bool,
    }

    impl Scripted {
        fn new(answers: &[(&str, &[Outcome])]) -> Scripted {
            Scripted {
                answers: answers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_vec()))
                    .collect(),
                calls: vec![],
                fail_on: None,
                finished: None,
                coalesce: false,
            }
        }
    }

    impl Charm for Scripted {
        type Error = String;
        fn handle(&mut self, event: &Event, replayed: bool) -> Result<Outcome, String> {
            let name = event.describe();
            self.calls.push((name.clone(), replayed));
            if self.fail_on.as_deref() == Some(name.as_str()) {
                return Err("boom".into());
            }
            let list = self.answers.entry(name).or_default();
            Ok(if list.is_empty() {
                Outcome::Done
            } else {
                list.remove(0)
            })
        }
        fn finish(&mut self, summary: &Summary) -> Result<(), String> {
            self.finished = Some(summary.clone());
            Ok(())
        }
        fn deferred_as(&self, event: &Event) -> Event {
            if self.coalesce {
                Event::Reconcile
            } else {
                event.clone()
            }
        }
    }

    fn changed(unit: u32) -> Event {
        Event::Relation {
            endpoint: "cluster".into(),
            phase: RelationPhase::Changed,
            id: RelationId(1),
            remote_app: Some("zookeeper".into()),
            remote_unit: UnitName::parse(&format!("zookeeper/{unit}")),
            departing_unit: None,
        }
    }

    fn fresh() -> (tempfile::TempDir, Queue) {
        let dir = tempfile::tempdir().unwrap();
        let q = load_queue(dir.path());
        (dir, q)
    }

    fn names(q: &Queue) -> Vec<String> {
        q.entries().iter().map(|e| e.event.describe()).collect()
    }

    #[test]
    fn deferred_events_replay_oldest_first_before_the_current_one() {
        let (dir, q) = fresh();
        let d = || Outcome::defer("no quorum leader");
        // changed(1) defers in dispatch 1 and again when replayed in dispatch 2.
        let mut charm = Scripted::new(&[
            (&changed(1).describe(), &[d(), d()]),
            (&changed(2).describe(), &[d()]),
        ]);
        dispatch(&mut charm, &changed(1), q, 1).unwrap();
        let q = load_queue(dir.path());
        dispatch(&mut charm, &changed(2), q, 2).unwrap();
        let q = load_queue(dir.path());
        assert_eq!(names(&q), [changed(1).describe(), changed(2).describe()]);
        charm.calls.clear();
        dispatch(&mut charm, &Event::UpdateStatus, q, 3).unwrap();
        assert_eq!(
            charm.calls,
            [
                (changed(1).describe(), true),
                (changed(2).describe(), true),
                ("update-status".to_string(), false)
            ]
        );
        assert!(load_queue(dir.path()).is_empty());
        // The file on disk says so too (jujusim's settle reads it).
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(Queue::path_in(dir.path())).unwrap()).unwrap();
        assert_eq!(v["entries"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn redeferred_event_keeps_its_place() {
        let (dir, q) = fresh();
        let d = || Outcome::defer("members syncing");
        // e1 keeps deferring; e2 defers once; the current update-status defers: the queue must be
        // [e1, update-status], e1 still first and with its first-seen time.
        let mut charm = Scripted::new(&[
            (&changed(1).describe(), &[d(), d(), d()]),
            (&changed(2).describe(), &[d()]),
            ("update-status", &[d()]),
        ]);
        dispatch(&mut charm, &changed(1), q, 1).unwrap();
        dispatch(&mut charm, &changed(2), load_queue(dir.path()), 2).unwrap();
        // e1 redefers, e2 completes, current update-status defers -> [e1, update-status]
        dispatch(&mut charm, &Event::UpdateStatus, load_queue(dir.path()), 3).unwrap();
        let q = load_queue(dir.path());
        assert_eq!(
            names(&q),
            [changed(1).describe(), "update-status".to_string()]
        );
        assert_eq!(q.entries()[0].attempts, 3);
        assert_eq!(q.entries()[0].first_seen, 1);
        assert_eq!(q.entries()[0].last_attempt, 3);
    }

    #[test]
    fn identical_current_event_is_not_run_twice_nor_queued_twice() {
        let (dir, q) = fresh();
        let d = || Outcome::defer("member not ready");
        let mut charm = Scripted::new(&[(&changed(1).describe(), &[d(), d()])]);
        dispatch(&mut charm, &changed(1), q, 1).unwrap();
        charm.calls.clear();
        let s = dispatch(&mut charm, &changed(1), load_queue(dir.path()), 2).unwrap();
        assert!(s.current_deduplicated);
        assert_eq!(charm.calls, [(changed(1).describe(), true)]);
        let q = load_queue(dir.path());
        assert_eq!(q.len(), 1);
        assert_eq!(q.entries()[0].attempts, 2);
    }

    #[test]
    fn failing_dispatch_leaves_the_queue_untouched() {
        let (dir, q) = fresh();
        let mut charm = Scripted::new(&[(&changed(1).describe(), &[Outcome::defer("x")])]);
        dispatch(&mut charm, &changed(1), q, 1).unwrap();
        let before = std::fs::read(Queue::path_in(dir.path())).unwrap();
        charm.fail_on = Some("update-status".into());
        let err =
            dispatch(&mut charm, &Event::UpdateStatus, load_queue(dir.path()), 2).unwrap_err();
        assert!(err.to_string().contains("update-status"), "{err}");
        assert_eq!(std::fs::read(Queue::path_in(dir.path())).unwrap(), before);
    }

    #[test]
    fn actions_do_not_replay_and_cannot_defer() {
        let (dir, q) = fresh();
        let mut charm = Scripted::new(&[
            (&changed(1).describe(), &[Outcome::defer("x")]),
            ("action restart", &[Outcome::defer("nope")]),
            ("stop", &[Outcome::defer("nope")]),
        ]);
        dispatch(&mut charm, &changed(1), q, 1).unwrap();
        charm.calls.clear();
        let action = Event::Action {
            name: "restart".into(),
            uuid: "1".into(),
        };
        dispatch(&mut charm, &action, load_queue(dir.path()), 2).unwrap();
        assert_eq!(charm.calls, [("action restart".to_string(), false)]);
        assert_eq!(names(&load_queue(dir.path())), [changed(1).describe()]);
        // stop replays the queue (it is a hook) but is itself never queued.
        charm.calls.clear();
        dispatch(&mut charm, &Event::Stop, load_queue(dir.path()), 3).unwrap();
        assert_eq!(charm.calls.len(), 2);
        assert!(load_queue(dir.path()).is_empty());
    }

    #[test]
    fn finish_sees_the_whole_dispatch() {
        let (_dir, q) = fresh();
        let mut charm = Scripted::new(&[(
            "config-changed",
            &[Outcome::Blocked {
                message: "tick-time must be > 0".into(),
            }],
        )]);
        dispatch(&mut charm, &Event::ConfigChanged, q, 1).unwrap();
        let s = charm.finished.unwrap();
        assert_eq!(s.blocked(), Some("tick-time must be > 0"));
        assert!(s.still_deferred.is_empty());
    }

    #[test]
    fn a_coalescing_charm_keeps_one_entry_and_runs_one_reconcile_per_hook() {
        let (dir, q) = fresh();
        let d = || Outcome::defer("members syncing");
        let mut charm = Scripted::new(&[
            (&changed(1).describe(), &[d()]),
            ("config-changed", &[d()]),
            ("update-status", &[d()]),
        ]);
        charm.coalesce = true;
        dispatch(&mut charm, &changed(1), q, 1).unwrap();
        dispatch(&mut charm, &Event::ConfigChanged, load_queue(dir.path()), 2).unwrap();
        let q = load_queue(dir.path());
        assert_eq!(names(&q), ["reconcile"], "three events deferred, one entry");
        assert_eq!(q.entries()[0].attempts, 2);
        // The current event stands for the entry: one handle per hook, deferred again...
        charm.calls.clear();
        let s = dispatch(&mut charm, &Event::UpdateStatus, load_queue(dir.path()), 3).unwrap();
        assert_eq!(charm.calls, [("update-status".to_string(), false)]);
        assert_eq!(s.still_deferred.len(), 1);
        // ...and done: the entry goes with it.
        charm.calls.clear();
        let s = dispatch(&mut charm, &Event::UpdateStatus, load_queue(dir.path()), 4).unwrap();
        assert_eq!(charm.calls, [("update-status".to_string(), false)]);
        assert!(s.still_deferred.is_empty());
        assert!(load_queue(dir.path()).is_empty());
        // An action neither runs it nor settles it.
        let mut charm = Scripted::new(&[("config-changed", &[d()])]);
        charm.coalesce = true;
        dispatch(&mut charm, &Event::ConfigChanged, load_queue(dir.path()), 5).unwrap();
        let action = Event::Action {
            name: "get".into(),
            uuid: "1".into(),
        };
        dispatch(&mut charm, &action, load_queue(dir.path()), 6).unwrap();
        assert_eq!(names(&load_queue(dir.path())), ["reconcile"]);
        // A hook that cannot be deferred (stop) replays it first.
        charm.calls.clear();
        dispatch(&mut charm, &Event::Stop, load_queue(dir.path()), 7).unwrap();
        assert_eq!(
            charm.calls,
            [("reconcile".to_string(), true), ("stop".to_string(), false)]
        );
        assert!(load_queue(dir.path()).is_empty());
    }
}
