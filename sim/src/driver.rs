//! The dispatcher: a uniter per unit, run as Juju 3.6 runs them (`juju-concurrency.md` §1):
//! every unit's agent on its own, so hooks of different units overlap in time; one operation
//! (hook, action, exec) at a time per unit; a machine lock shared by every unit on a machine;
//! a hook's writes committed when it exits 0 ([`crate::overlay`]), at which point other units
//! see them. Which unit goes next among the ready ones is round-robin, or drawn from a seeded
//! RNG. `--serial` runs one operation at a time in the whole model (every unit on one machine).
//!
//! The rules for what a unit does next are in [`crate::scheduler`]; what a hook does to the
//! world around it (before it runs, at its commit) in [`crate::lifecycle`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::charm;
use crate::error::{Result, SimError};
use crate::lifecycle::{self, before_hook, bury, gc, hook_vars, retry_errors, tick, transition};
use crate::model::{HookError, HookKind, HookSpec, Paths, Status, World};
use crate::runner;
use crate::scheduler::{ensure_leaders, next_work, unsettled, Work};
use crate::timeline;
use crate::tools::ctx::{ActionCtx, HookCtx};
use crate::tools::server::{lock, release, Core, Event, Pause, PauseState, Shared};
use crate::util::Rng;

#[derive(Debug, Clone)]
pub struct Options {
    pub hook_timeout: Duration,
    pub seed: Option<u64>,
    /// Safety net against charms that keep triggering each other forever.
    pub max_hooks: usize,
    /// One operation at a time in the whole model.
    pub serial: bool,
    /// A breakpoint for this command.
    pub pause: Option<Pause>,
    /// The model's background agent: start nothing new while a command waits for the model's
    /// lock (or the agent is asked to stop), so that it gets in once the running hooks end.
    pub yielding: bool,
}

/// A finished operation's process.
#[derive(Debug)]
pub struct Done {
    pub ctx_id: String,
    pub run: runner::Run,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug, Clone)]
enum OpKind {
    Hook(HookSpec),
    Action(u64, String),
}

/// An operation being run.
#[derive(Debug)]
struct Op {
    unit: String,
    machine: u32,
    kind: OpKind,
    env: BTreeMap<String, String>,
}

pub struct Driver {
    pub shared: Shared,
    pub paths: Paths,
    pub opts: Options,
    rng: Option<Rng>,
    /// Hooks and actions run by this driver.
    pub hooks_run: usize,
    /// Things the CLI should tell the operator (hook failures, timeouts).
    pub notes: Vec<String>,
    running: BTreeMap<String, Op>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    /// The most operations that ran at once.
    pub max_overlap: usize,
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn context_id(world: &mut World, unit: &str, what: &str) -> String {
    let n = world.next_context;
    world.next_context += 1;
    format!("{unit}-{what}-{n}")
}

/// The agent status Juju shows while an operation runs (not for update-status).
fn executing(spec: Option<&HookSpec>, action: Option<&str>) -> Option<Status> {
    match (spec, action) {
        (Some(s), _) if s.kind == HookKind::UpdateStatus => None,
        (Some(s), _) => Some(Status::new(
            "executing",
            &match &s.remote_unit {
                Some(r) if s.relation.is_some() => format!("running {} hook for {r}", s.name()),
                _ => format!("running {} hook", s.name()),
            },
        )),
        (None, Some(a)) => Some(Status::new("executing", &format!("running action {a}"))),
        _ => None,
    }
}

impl Driver {
    pub fn new(shared: Shared, paths: Paths, opts: Options) -> Driver {
        let rng = opts.seed.map(|s| {
            let commands = lock(&shared).world.commands;
            Rng::new(s ^ commands.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        });
        let (tx, rx) = channel();
        {
            let mut core = lock(&shared);
            core.events = Some(tx.clone());
            core.pause = opts.pause.clone();
        }
        Driver {
            shared,
            paths,
            opts,
            rng,
            hooks_run: 0,
            notes: Vec::new(),
            running: BTreeMap::new(),
            tx,
            rx,
            max_overlap: 0,
        }
    }

    /// The seeded RNG of this command (deploy's initial leader).
    pub fn rng(&mut self) -> &mut Option<Rng> {
        &mut self.rng
    }

    /// Runs hooks until no unit has anything to do. Returns the number of hooks and actions run.
    pub fn run_until_idle(&mut self) -> Result<usize> {
        self.pump(None)
    }

    /// Starts at most `n` hooks or actions of pending work and waits for them (fault-injection
    /// tests stop between hooks this way). Returns how many ran; fewer than `n` means the model
    /// is idle.
    pub fn run_steps(&mut self, n: usize) -> Result<usize> {
        self.pump(Some(n))
    }

    /// The dispatcher loop: start every ready unit's next operation (one per unit, one per
    /// machine, one in all when serial), wait for one to end, commit it, again; until nothing
    /// runs and nothing is ready.
    fn pump(&mut self, limit: Option<usize>) -> Result<usize> {
        let start = self.hooks_run;
        let mut started = 0usize;
        loop {
            {
                let shared = self.shared.clone();
                let mut core = lock(&shared);
                let mut ready_left = false;
                loop {
                    if limit.is_some_and(|l| started >= l)
                        || (self.opts.serial && !self.running.is_empty())
                        || (self.opts.yielding && crate::agent::should_yield(&self.paths))
                    {
                        ready_left = true;
                        break;
                    }
                    let Some((unit, work)) = self.pick(&mut core) else {
                        break;
                    };
                    if self.launch(&mut core, &unit, work)? {
                        started += 1;
                    }
                }
                self.max_overlap = self.max_overlap.max(self.running.len());
                // A held call goes on once the hook it waits for committed, or when nothing
                // else can happen (serial: at once, nothing else may run meanwhile).
                let held = core.pause.as_ref().and_then(|p| match &p.state {
                    PauseState::Holding(id) => Some(id.clone()),
                    _ => None,
                });
                if let Some(id) = held {
                    let alone = self.running.keys().all(|k| *k == id) && !ready_left;
                    if alone || self.opts.serial {
                        release(&shared, &mut core);
                    }
                }
                if self.running.is_empty() {
                    core.world.save(&self.paths)?;
                    break;
                }
            }
            match self.rx.recv() {
                Ok(Event::Done(d)) => self.finish(d)?,
                Ok(Event::Paused) => {}
                Err(_) => {
                    return Err(SimError::Failed(
                        "internal error: dispatcher channel".into(),
                    ))
                }
            }
            if self.hooks_run - start > self.opts.max_hooks {
                self.drain()?;
                return Err(SimError::Failed(format!(
                    "the model did not become idle after {} hooks: charms may be triggering each \
                     other in a loop (see `jujusim log`); raise the limit with --max-hooks",
                    self.opts.max_hooks
                )));
            }
        }
        Ok(self.hooks_run - start)
    }

    /// Waits for every running operation (an error path: nothing new starts).
    fn drain(&mut self) -> Result<()> {
        let shared = self.shared.clone();
        release(&shared, &mut lock(&shared));
        while !self.running.is_empty() {
            match self.rx.recv() {
                Ok(Event::Done(d)) => self.finish(d)?,
                Ok(Event::Paused) => release(&shared, &mut lock(&shared)),
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// The next unit to start and its work: zero-cost transitions first (resign, leave a peer
    /// relation, burial), then one ready unit (not running anything, its machine free).
    fn pick(&mut self, core: &mut Core) -> Option<(String, Work)> {
        let busy: BTreeSet<String> = self.running.values().map(|o| o.unit.clone()).collect();
        let machines: BTreeSet<u32> = self.running.values().map(|o| o.machine).collect();
        let mut candidates = 'outer: loop {
            ensure_leaders(&mut core.world, &mut self.rng);
            let mut candidates: Vec<(String, Work)> = Vec::new();
            for unit in core.world.unit_names() {
                if busy.contains(&unit) {
                    continue;
                }
                match next_work(&core.world, &unit, &mut self.rng) {
                    Some(Work::Resign) => {
                        if let Some(u) = core.world.unit_mut(&unit) {
                            u.local.leader = false;
                        }
                        continue 'outer;
                    }
                    Some(Work::LeavePeer(id)) => {
                        if let Some(u) = core.world.unit_mut(&unit) {
                            u.local.relations.remove(&id);
                        }
                        gc(&mut core.world);
                        continue 'outer;
                    }
                    Some(Work::Bury) => {
                        bury(&mut core.world, &self.paths, &unit);
                        continue 'outer;
                    }
                    Some(w) => {
                        let machine = core.world.unit(&unit).map(|u| u.machine);
                        if !machine.is_some_and(|m| machines.contains(&m)) {
                            candidates.push((unit, w));
                        }
                    }
                    None => {
                        // Nothing left to do: the agent is idle (Juju's OnIdle).
                        if let Some(u) = core.world.unit_mut(&unit) {
                            if u.agent.status == "executing" {
                                u.agent = Status::new("idle", "");
                            }
                        }
                    }
                }
            }
            break candidates;
        };
        if candidates.is_empty() {
            return None;
        }
        let idx = match self.rng.as_mut() {
            Some(r) => r.below(candidates.len()),
            None => {
                let order = core.world.unit_names();
                let last = core
                    .world
                    .last_unit
                    .as_ref()
                    .and_then(|l| order.iter().position(|u| u == l));
                let pos = |u: &str| order.iter().position(|x| x == u).unwrap_or(0);
                match last {
                    Some(lp) => candidates
                        .iter()
                        .position(|(u, _)| pos(u) > lp)
                        .unwrap_or(0),
                    None => 0,
                }
            }
        };
        Some(candidates.swap_remove(idx))
    }

    /// Starts `unit`'s work on its own thread. False when there was nothing to run (a hook
    /// the charm lacks counts as done at once; a vanished action).
    fn launch(&mut self, core: &mut Core, unit: &str, work: Work) -> Result<bool> {
        core.world.last_unit = Some(unit.to_string());
        let prepared = match work {
            Work::Hook(spec) => self.prepare_hook(core, unit, spec)?,
            Work::Action(id) => self.prepare_action(core, unit, id)?,
            Work::Upgrade => {
                self.deploy_charm(core, unit)?;
                None
            }
            Work::Resign | Work::LeavePeer(_) | Work::Bury => None,
        };
        let Some((ctx, kind, entry, env)) = prepared else {
            return Ok(false);
        };
        let status = match &kind {
            OpKind::Hook(s) => executing(Some(s), None),
            OpKind::Action(_, name) => executing(None, Some(name)),
        };
        let machine = core.world.unit(unit).map(|u| u.machine).unwrap_or(0);
        if let (Some(st), Some(u)) = (status, core.world.unit_mut(unit)) {
            u.agent = st;
        }
        core.world.save(&self.paths)?;
        let id = ctx.id.clone();
        core.running.insert(id.clone(), ctx);
        self.running.insert(
            id.clone(),
            Op {
                unit: unit.to_string(),
                machine,
                kind,
                env: env.clone(),
            },
        );
        let charm_dir = self.paths.charm_dir(unit);
        let timeout = self.opts.hook_timeout;
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name(format!("jujusim-op-{id}"))
            .spawn(move || {
                let t0 = SystemTime::now();
                let run = runner::run(&entry, &charm_dir, &env, timeout);
                let _ = tx.send(Event::Done(Done {
                    ctx_id: id,
                    run,
                    start_ms: epoch_ms(t0),
                    end_ms: epoch_ms(SystemTime::now()),
                }));
            })
            .map_err(|e| SimError::Failed(format!("cannot start a hook thread: {e}")))?;
        Ok(true)
    }

    /// Juju's upgrade operation for `unit`: the application's current charm is deployed over
    /// the unit's charm directory with the manifest semantics ([`charm::deploy_over`]: files of
    /// the previous charm the new one lacks go, the charm's own files stay), the new manifest is
    /// kept, and the unit's local state records the revision (queuing `upgrade-charm`). No
    /// process runs; the unit is not busy meanwhile, so no hook of it sees half a charm.
    fn deploy_charm(&mut self, core: &mut Core, unit: &str) -> Result<()> {
        let app = crate::model::app_of(unit).to_string();
        let Some(revision) = core.world.apps.get(&app).map(|a| a.revision) else {
            return Ok(());
        };
        let manifest_path = self.paths.charm_manifest(unit);
        let old = charm::read_manifest(&manifest_path)?;
        let new = charm::deploy_over(
            &self.paths.app_charm(&app),
            &self.paths.charm_dir(unit),
            old.as_deref(),
        )?;
        charm::write_manifest(&manifest_path, &new)?;
        lifecycle::upgraded(&mut core.world, unit, revision);
        core.world.save(&self.paths)
    }

    #[allow(clippy::type_complexity)]
    fn prepare_hook(
        &mut self,
        core: &mut Core,
        unit: &str,
        spec: HookSpec,
    ) -> Result<Option<(HookCtx, OpKind, PathBuf, BTreeMap<String, String>)>> {
        let name = spec.name();
        let dispatch_path = format!("hooks/{name}");
        if spec.kind == HookKind::LeaderElected && !core.world.is_leader(unit) {
            // Juju's runHook.Prepare skips a leader-elected (a retried one too) of a unit that
            // no longer leads.
            if let Some(u) = core.world.unit_mut(unit) {
                u.local.error = None;
                if u.agent.status == "error" {
                    u.agent = Status::new("idle", "");
                }
            }
            return Ok(None);
        }
        before_hook(&mut core.world, unit, &spec);
        let Some(entry) = charm::entry_point(&self.paths.charm_dir(unit), &dispatch_path) else {
            // A missing hook: skipped silently and committed as if it ran.
            if let Some(u) = core.world.unit_mut(unit) {
                u.local.error = None;
            }
            transition(&mut core.world, &self.paths, unit, &spec);
            return Ok(None);
        };
        let ctx_id = context_id(&mut core.world, unit, &name);
        let mut ctx = HookCtx::new(ctx_id.clone(), unit);
        ctx.kind = Some(spec.kind);
        let storage = matches!(
            spec.kind,
            HookKind::StorageAttached | HookKind::StorageDetaching
        );
        ctx.relation = spec.relation.filter(|_| !storage);
        ctx.storage_id = spec.id.clone().filter(|_| storage);
        ctx.endpoint = spec.endpoint.clone();
        ctx.remote_app = spec.remote_app.clone();
        ctx.remote_unit = spec.remote_unit.clone();
        ctx.departing = spec.departing.clone();
        let extra = hook_vars(&core.world, unit, &spec);
        let env = runner::hook_env(
            &core.world,
            &self.paths,
            unit,
            &ctx_id,
            &dispatch_path,
            &name,
            &extra,
        );
        Ok(Some((ctx, OpKind::Hook(spec), entry, env)))
    }

    #[allow(clippy::type_complexity)]
    fn prepare_action(
        &mut self,
        core: &mut Core,
        unit: &str,
        id: u64,
    ) -> Result<Option<(HookCtx, OpKind, PathBuf, BTreeMap<String, String>)>> {
        let Some(action) = core.world.actions.get_mut(&id) else {
            return Ok(None);
        };
        action.status = "running".into();
        let name = action.name.clone();
        let params = action.params.as_object().cloned().unwrap_or_default();
        let dispatch_path = format!("actions/{name}");
        let Some(entry) = charm::entry_point(&self.paths.charm_dir(unit), &dispatch_path) else {
            if let Some(a) = core.world.actions.get_mut(&id) {
                a.status = "failed".into();
                a.message = format!("action not implemented on unit {unit:?}");
            }
            return Ok(None);
        };
        let ctx_id = context_id(&mut core.world, unit, &format!("run-action-{id}"));
        let mut ctx = HookCtx::new(ctx_id.clone(), unit);
        ctx.action = Some(ActionCtx {
            params,
            results: Default::default(),
            failed: None,
            log: Vec::new(),
        });
        let extra = [
            ("JUJU_ACTION_NAME", name.clone()),
            ("JUJU_ACTION_UUID", id.to_string()),
            ("JUJU_ACTION_TAG", format!("action-{id}")),
        ];
        let env = runner::hook_env(
            &core.world,
            &self.paths,
            unit,
            &ctx_id,
            &dispatch_path,
            "",
            &extra,
        );
        Ok(Some((ctx, OpKind::Action(id, name), entry, env)))
    }

    /// An operation's process ended: commit it (or drop its writes), record it.
    fn finish(&mut self, done: Done) -> Result<()> {
        let shared = self.shared.clone();
        let mut core = lock(&shared);
        let (Some(ctx), Some(op)) = (
            core.running.remove(&done.ctx_id),
            self.running.remove(&done.ctx_id),
        ) else {
            return Err(SimError::Failed("internal error: hook context lost".into()));
        };
        self.hooks_run += 1;
        let run = done.run;
        let committed = if run.success() {
            lifecycle::commit(&mut core.world, &ctx)
        } else {
            Err(if run.timed_out {
                format!("timed out after {} s", self.opts.hook_timeout.as_secs_f64())
            } else {
                format!("exit code {}", run.exit_code)
            })
        };
        let commit_error = match &committed {
            Err(e) if run.success() => Some(e.clone()),
            _ => None,
        };
        let unit = op.unit.clone();
        let label = match &op.kind {
            OpKind::Hook(spec) => {
                let name = spec.name();
                match &committed {
                    Ok(()) => {
                        if let Some(u) = core.world.unit_mut(&unit) {
                            u.local.error = None;
                        }
                        transition(&mut core.world, &self.paths, &unit, spec);
                        let more = next_work(&core.world, &unit, &mut None).is_some();
                        if let Some(u) = core.world.unit_mut(&unit) {
                            if !more || u.agent.status == "error" {
                                u.agent = Status::new("idle", "");
                            }
                        }
                    }
                    Err(why) => {
                        self.notes
                            .push(format!("{unit}: hook failed: {name:?} ({why})"));
                        if let Some(u) = core.world.unit_mut(&unit) {
                            u.local.error = Some(HookError {
                                hook: spec.clone(),
                                retry: false,
                            });
                            u.agent = Status::new("error", &format!("hook failed: {name:?}"));
                        }
                    }
                }
                (Some(name), None, None)
            }
            OpKind::Action(id, name) => {
                if let (Some(a), Some(act)) = (core.world.actions.get_mut(id), &ctx.action) {
                    let mut results = act.results.clone();
                    results.insert("return-code".into(), json!(run.exit_code));
                    if !run.stdout.is_empty() {
                        results.insert("stdout".into(), json!(run.stdout));
                    }
                    if !run.stderr.is_empty() {
                        results.insert("stderr".into(), json!(run.stderr));
                    }
                    a.results = results;
                    a.log = act.log.clone();
                    (a.status, a.message) = if run.timed_out {
                        (
                            "failed".into(),
                            format!("timed out after {} s", self.opts.hook_timeout.as_secs_f64()),
                        )
                    } else if run.exit_code != 0 {
                        ("failed".into(), format!("exit status {}", run.exit_code))
                    } else if let Some(e) = &commit_error {
                        ("failed".into(), e.clone())
                    } else if let Some(m) = &act.failed {
                        ("failed".into(), m.clone())
                    } else {
                        ("completed".into(), String::new())
                    };
                }
                // The unit goes back to what it was doing (an action does not change it).
                let more = next_work(&core.world, &unit, &mut None).is_some();
                if let Some(u) = core.world.unit_mut(&unit) {
                    if !more && u.agent.status == "executing" {
                        u.agent = Status::new("idle", "");
                    }
                }
                (None, Some(name.clone()), Some(*id))
            }
        };
        // A hook the breakpoint waited for has committed: the held call goes on.
        let after = core.pause.as_ref().and_then(|p| p.release_after.clone());
        if let (Some((u, h)), OpKind::Hook(spec)) = (after, &op.kind) {
            if u == unit && h == spec.name() && committed.is_ok() {
                release(&shared, &mut core);
            }
        }
        self.record(
            &mut core,
            label,
            op.env,
            ctx,
            run,
            (done.start_ms, done.end_ms, commit_error),
        )
    }

    /// Saves the world and appends the run to the timeline (its seq is the commit order).
    fn record(
        &self,
        core: &mut Core,
        (hook, action, action_id): (Option<String>, Option<String>, Option<u64>),
        env: BTreeMap<String, String>,
        ctx: HookCtx,
        run: runner::Run,
        (start_ms, end_ms, commit_error): (u64, u64, Option<String>),
    ) -> Result<()> {
        let seq = core.world.next_seq;
        core.world.next_seq += 1;
        let entry = timeline::Entry {
            seq,
            unit: ctx.unit,
            hook,
            action,
            action_id,
            env,
            tool_calls: ctx.calls,
            exit_code: run.exit_code,
            duration_ms: run.duration.as_millis() as u64,
            cpu_ms: run.cpu.as_secs_f64() * 1000.0,
            max_rss_kib: run.max_rss_kib,
            stdout: run.stdout,
            stderr: run.stderr,
            timed_out: run.timed_out,
            start_ms,
            end_ms,
            commit_error,
            overlaps: Vec::new(),
        };
        // The commit is saved first: a crash in between loses a log line, never runs a
        // committed hook again.
        core.world.save(&self.paths)?;
        timeline::append(&self.paths, &entry)
    }

    /// `exec` (as `juju exec --unit`): runs a command in a hook context on `unit` (when the
    /// model is idle), its relation and state writes committed if it exits 0. Recorded in the
    /// timeline as action `juju-exec`.
    pub fn run_exec(&mut self, unit: &str, argv: &[String]) -> Result<runner::Run> {
        let Some((program, args)) = argv.split_first() else {
            return Err(SimError::Usage("exec needs a command after --".into()));
        };
        let shared = self.shared.clone();
        let (env, id) = {
            let mut core = lock(&shared);
            core.world.last_unit = Some(unit.to_string());
            let ctx_id = context_id(&mut core.world, unit, "exec");
            let ctx = HookCtx::new(ctx_id.clone(), unit);
            let env = runner::hook_env(&core.world, &self.paths, unit, &ctx_id, "", "", &[]);
            core.running.insert(ctx_id.clone(), ctx);
            (env, ctx_id)
        };
        let path = env.get("PATH").cloned().unwrap_or_default();
        let entry = if program.contains('/') {
            PathBuf::from(program)
        } else {
            path.split(':')
                .map(|d| Path::new(d).join(program))
                .find(|p| p.is_file())
                .unwrap_or_else(|| program.into())
        };
        let t0 = SystemTime::now();
        let run = runner::run_args(
            &entry,
            args,
            &self.paths.charm_dir(unit),
            &env,
            self.opts.hook_timeout,
        );
        let t1 = SystemTime::now();
        self.hooks_run += 1;
        let mut core = lock(&shared);
        let Some(ctx) = core.running.remove(&id) else {
            return Err(SimError::Failed("internal error: exec context lost".into()));
        };
        let commit_error = if run.success() {
            lifecycle::commit(&mut core.world, &ctx).err()
        } else {
            None
        };
        self.record(
            &mut core,
            (None, Some("juju-exec".into()), None),
            env,
            ctx,
            run.clone(),
            (epoch_ms(t0), epoch_ms(t1), commit_error),
        )?;
        Ok(run)
    }

    /// `settle` (contract 3): run until idle; then, while something is unsettled, retry failed
    /// hooks, tick update-status once and run until idle again.
    pub fn settle(&mut self, timeout: Duration) -> Result<SettleReport> {
        let start = Instant::now();
        let hooks0 = self.hooks_run;
        let mut ticks = 0;
        self.run_until_idle()?;
        loop {
            let why = {
                let core = lock(&self.shared);
                unsettled(&core.world, &self.paths)
            };
            if why.is_empty() || start.elapsed() >= timeout {
                return Ok(SettleReport {
                    ticks,
                    hooks: self.hooks_run - hooks0,
                    seconds: start.elapsed().as_secs_f64(),
                    unsettled: why,
                });
            }
            let t0 = Instant::now();
            {
                let mut core = lock(&self.shared);
                retry_errors(&mut core.world);
                tick(&mut core.world);
                core.world.save(&self.paths)?;
            }
            ticks += 1;
            self.run_until_idle()?;
            // Pace the ticks a little: work that waits for a process to come up needs time to
            // pass, and a hot loop would only fill the timeline.
            let min = Duration::from_millis(50);
            if let Some(rest) = min.checked_sub(t0.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct SettleReport {
    pub ticks: usize,
    pub hooks: usize,
    pub seconds: f64,
    /// Empty when settled.
    pub unsettled: Vec<String>,
}
