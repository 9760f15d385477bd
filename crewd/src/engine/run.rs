//! The engine thread: batches, one durable commit per batch, then effects.

use super::command::ApplyError;
use super::idle::IdlePoll;
use super::ops::{EngineError, Msg, OpOutcome, WorkerLoads, WorkgroupLoads};
use crate::dispatch::client::{Run, WorkerClient};
use crate::dispatch::scheduler::{Candidate, Placement, Scheduler};
use crate::storage::{Batch, Store};
use crate::stream::hub::EventHub;
use crew_core::graph::{Change, GraphRead};
use crew_core::rules::{self, RetryPolicy, Start};
use crew_core::wire::{WorkerLimit, WorkerPayload};
use crew_core::worker::WorkerOutcome;
use crew_core::{RuleError, TaskStatus, Timestamp, WorkgroupLimits};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Most messages applied in one transaction.
const MAX_BATCH: usize = 8192;
/// Most attempts started in one transaction.
const MAX_STARTS: usize = 4096;
/// How long to wait before retrying after a failed commit.
const STORAGE_RETRY: Duration = Duration::from_millis(500);

/// Settings of the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How delays grow after failures.
    pub retry_policy: RetryPolicy,
    /// Calls in flight across all workers.
    pub max_in_flight: u32,
    /// Worker concurrency limits from the configuration (the store's
    /// live-set limits take precedence).
    pub worker_limits: HashMap<String, u32>,
    /// Workgroup limits from the configuration: written over the stored
    /// ones at start (live changes persist until the next start).
    pub workgroup_limits: HashMap<String, WorkgroupLimits>,
    /// Worker call timeout.
    pub worker_timeout: Duration,
    /// How long shutdown waits for calls in flight.
    pub shutdown_grace: Duration,
    /// Longest the engine polls for its next message before it sleeps
    /// (zero: never). It polls only as long as recent waits say a message
    /// is about to come.
    pub idle_poll: Duration,
}

type Reply = oneshot::Sender<Result<OpOutcome, EngineError>>;

/// A call, told apart from every other: its task, which task of that id
/// (its `createdAt` in nanoseconds, as [`Msg::Result`] carries it), and the
/// attempt.
type CallId = (String, i64, u32);

struct Started {
    worker: String,
    workgroup: String,
    attempt: u32,
    /// The task's `createdAt`, in nanoseconds.
    created: i64,
    /// Resets of the task so far: which run this call belongs to.
    run: u32,
    payload: WorkerPayload,
    /// The task's own timeout, if it has one.
    timeout: Option<Duration>,
}

pub(crate) struct Engine {
    pub store: Store,
    pub hub: EventHub,
    pub client: Arc<WorkerClient>,
    pub config: EngineConfig,
    pub rx: Receiver<Msg>,
    pub tx: Sender<Msg>,
    /// How the engine waits for its next message.
    pub idle: IdlePoll,
    pub loads: WorkerLoads,
    pub workgroup_loads: WorkgroupLoads,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub runtime: tokio::runtime::Handle,
    pub sched: Scheduler,
    pub ids: IdGen,
    /// Calls in flight that an operator may cancel, by task id.
    pub cancels: HashMap<String, Arc<tokio::sync::Notify>>,
    /// Calls in flight whose task was deleted: their results are dropped
    /// when they come. A task created again with the same id starts again
    /// at attempt 1, so without this the old call's answer would complete
    /// the new task.
    pub abandoned: HashSet<CallId>,
    /// Set once recovery has succeeded (`/healthz` answers 200 from then).
    pub ready: super::ops::Ready,
    /// Set when redb refused a batch the journal already holds: the store
    /// must be reopened (which applies it) before the next batch.
    pub reopen_store: bool,
}

/// Fresh ids: time-ordered and random, so they sort by creation and never
/// collide across restarts.
pub(crate) struct IdGen {
    last_ms: i64,
    counter: u32,
    salt: u32,
}

impl IdGen {
    pub fn new() -> Self {
        IdGen {
            last_ms: 0,
            counter: 0,
            salt: rand::random::<u32>(),
        }
    }

    pub fn next_id(&mut self) -> String {
        let ms = Timestamp::now().unix_millis();
        if ms == self.last_ms {
            self.counter = self.counter.wrapping_add(1);
        } else {
            self.last_ms = ms;
            self.counter = 0;
        }
        format!("{:011x}-{:08x}-{:x}", ms, self.salt, self.counter)
    }
}

impl Engine {
    /// Runs until shutdown. Blocking: call it on its own thread.
    pub fn run(mut self) {
        // Until recovery succeeds nothing is scheduled: it is retried with
        // the storage, and `/healthz` says so meanwhile.
        let mut storage_broken = !self.try_recover();
        let mut shutting_down: Option<Instant> = None;
        let mut pending: Vec<Msg> = Vec::new();
        loop {
            if let Some(since) = shutting_down {
                if self.sched.total_in_flight() == 0
                    || since.elapsed() >= self.config.shutdown_grace
                {
                    break;
                }
            }
            let busy =
                !pending.is_empty() || (shutting_down.is_none() && self.sched.has_startable());
            let wait = if busy {
                Duration::ZERO
            } else {
                let now = Timestamp::now().unix_millis();
                let until_timer = self
                    .sched
                    .next_deadline()
                    .map(|d| Duration::from_millis((d - now).max(0) as u64))
                    .unwrap_or(Duration::from_secs(3600));
                if shutting_down.is_some() {
                    until_timer.min(Duration::from_millis(50))
                } else {
                    until_timer
                }
            };
            let wait = if storage_broken {
                wait.min(STORAGE_RETRY)
            } else {
                wait
            };
            // The journal's records are due in a durable redb commit: an
            // idle engine makes it (an empty batch) rather than leave it to
            // the next command, which would wait for the full sync.
            let wait = match self.store.checkpoint_due_in() {
                Some(due) => wait.min(due),
                None => wait,
            };
            let mut batch = std::mem::take(&mut pending);
            if batch.is_empty() || wait.is_zero() {
                match if wait.is_zero() {
                    self.rx.try_recv().map_err(|e| match e {
                        std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                        std::sync::mpsc::TryRecvError::Disconnected => {
                            RecvTimeoutError::Disconnected
                        }
                    })
                } else {
                    self.idle.recv(&self.rx, wait, self.sched.total_in_flight())
                } {
                    Ok(m) => batch.push(m),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            if batch.iter().any(|m| matches!(m, Msg::Shutdown)) && shutting_down.is_none() {
                tracing::info!(
                    in_flight = self.sched.total_in_flight(),
                    "stopping dispatch; waiting for calls in flight"
                );
                shutting_down = Some(Instant::now());
            }
            if let Err(retry) = self.step(batch, shutting_down.is_none()) {
                pending = retry;
                storage_broken = true;
            }
            if std::mem::take(&mut self.reopen_store) {
                storage_broken = true;
            }
            // After a storage failure redb refuses everything until the
            // database is reopened: keep trying until the disk works again.
            if storage_broken {
                std::thread::sleep(STORAGE_RETRY);
                match self.store.reopen() {
                    Ok(()) => {
                        tracing::info!("storage reopened; resuming");
                        storage_broken = !self.ready.get() && !self.try_recover();
                    }
                    Err(e) => tracing::warn!("storage still unavailable: {e}"),
                }
            }
        }
        tracing::info!(abandoned = self.sched.total_in_flight(), "engine stopped");
    }

    /// [`Engine::recover`], logged; marks the engine ready when it succeeds.
    fn try_recover(&mut self) -> bool {
        match self.recover() {
            Ok(()) => {
                self.ready.set();
                true
            }
            Err(e) => {
                tracing::error!("recovery failed (retried): {e}");
                false
            }
        }
    }

    /// Rebuilds the scheduler from the store: interrupted attempts are
    /// recorded and every incomplete task is evaluated.
    fn recover(&mut self) -> Result<(), EngineError> {
        let read = self.store.read().map_err(unavailable)?;
        for (worker, max) in read.worker_limits().map_err(unavailable)? {
            if max == Some(0) {
                // Earlier versions accepted 0, which held the worker's tasks
                // for ever; the API refuses it now.
                tracing::warn!(worker = %worker, "a stored limit of 0 is ignored: set 1 or more");
                continue;
            }
            self.sched.set_limit(&worker, max);
        }
        for (worker, max) in &self.config.worker_limits {
            if self.sched.limit(worker).is_none() {
                self.sched.set_limit(worker, Some(*max));
            }
        }
        let now = Timestamp::now();
        let mut workgroup_limits: HashMap<String, WorkgroupLimits> = read
            .workgroups(now)
            .map_err(unavailable)?
            .workgroups
            .into_iter()
            .filter(|w| !w.workgroup.limits.is_empty())
            .map(|w| (w.workgroup.name, w.workgroup.limits))
            .collect();
        // Tasks whose call was in flight when the daemon stopped (a few).
        let mut running = Vec::new();
        read.for_each_incomplete_task(|t| {
            if t.running {
                running.push(t.id.to_string());
            }
            Ok::<_, crate::storage::StorageError>(())
        })
        .map_err(unavailable)?;
        let mut wtx = self.store.write().map_err(unavailable)?;
        wtx.forget_reads();
        let mut tx = wtx.batch(now).map_err(unavailable)?;
        // The configuration's workgroup limits win over the stored ones.
        for (name, limits) in &self.config.workgroup_limits {
            if workgroup_limits.get(name) != Some(limits) {
                let ch = rules::set_workgroup_limits(&tx, name, *limits)?;
                tx.apply(&ch, now).map_err(unavailable)?;
                workgroup_limits.insert(name.clone(), *limits);
            }
        }
        for (name, limits) in &workgroup_limits {
            self.sched
                .set_workgroup_limits(name, *limits, now.unix_millis());
        }
        let interrupted = running.len() as u64;
        for id in &running {
            let ch = rules::interrupt_attempt(&tx, id, now)?;
            tx.apply(&ch, now).map_err(unavailable)?;
        }
        // Every incomplete task, from the snapshot taken before the
        // interrupts (they change no task's completeness), placed as it is
        // evaluated in the write transaction. Should the commit fail, the
        // scheduler holds stale entries, which every start re-checks.
        let mut incomplete = 0u64;
        read.for_each_incomplete_task(|t| {
            incomplete += 1;
            if let Some((p, _)) = evaluate(&tx, t.id, now)? {
                self.sched.place(t.id, p);
            }
            Ok::<_, EngineError>(())
        })?;
        drop(read);
        drop(tx);
        let events = wtx.commit_events().map_err(unavailable)?;
        self.metrics.interrupted(interrupted);
        self.hub.publish(events);
        self.publish_loads();
        tracing::info!(
            incomplete,
            interrupted,
            ready = self.sched.queued_len(),
            "recovered state from the store"
        );
        Ok(())
    }

    /// One batch: apply everything in one transaction, commit, then act.
    /// On a storage failure nothing of the batch is kept: commands are
    /// answered 503 and worker results are handed back to retry.
    fn step(&mut self, batch: Vec<Msg>, dispatching: bool) -> Result<(), Vec<Msg>> {
        let now = Timestamp::now();
        let retry: Vec<Msg> = batch
            .iter()
            .filter_map(|m| match m {
                Msg::Result {
                    task_id,
                    worker,
                    workgroup,
                    attempt,
                    created,
                    outcome,
                } => Some(Msg::Result {
                    task_id: task_id.clone(),
                    worker: worker.clone(),
                    workgroup: workgroup.clone(),
                    attempt: *attempt,
                    created: *created,
                    outcome: outcome.clone(),
                }),
                _ => None,
            })
            .collect();
        let mut work = BatchWork {
            touched: self.sched.due(now.unix_millis()),
            ..Default::default()
        };
        match self.apply_batch(batch, dispatching, now, &mut work) {
            Ok(synced) => {
                // Durable: now, and only now, act on it. (Slots of ended
                // calls were freed while applying, so that their successors
                // could start in this same transaction.) The calls leave
                // first, before redb makes the batch visible: a child's
                // call waits for its parent's result to be on disk, not
                // for anything after. Cancelled attempts go before them:
                // a task cancelled and started again in one batch keeps
                // its new call.
                for id in &work.cancelled {
                    if let Some(cancel) = self.cancels.remove(id) {
                        cancel.notify_one();
                    }
                }
                for call in &work.dropped {
                    self.abandoned.remove(call);
                }
                for call in std::mem::take(&mut work.abandoned) {
                    self.cancels.remove(&call.0);
                    self.abandoned.insert(call);
                }
                for s in std::mem::take(&mut work.started) {
                    self.spawn_call(s);
                }
                let events = match synced.publish() {
                    Ok(events) => events,
                    Err(unpublished) => {
                        // The journal holds the batch: it stands, and
                        // reopening the store applies it to redb.
                        tracing::error!(
                            "storage failed after the batch was made durable: {}",
                            unpublished.error
                        );
                        self.reopen_store = true;
                        unpublished.events
                    }
                };
                if let Some(started) = work.commit_started {
                    self.metrics.commit(started.elapsed());
                }
                for (worker, max) in work.limits {
                    self.sched.set_limit(&worker, max);
                }
                for (name, limits) in work.workgroup_limits {
                    self.sched
                        .set_workgroup_limits(&name, limits, now.unix_millis());
                }
                for (id, p) in work.placements {
                    self.sched.place(&id, p);
                }
                self.publish_loads();
                // Events first: a client that subscribes once it has its
                // answer never receives the events of its own request.
                self.hub.publish(events);
                for (reply, r) in work.replies {
                    let _ = reply.send(Ok(r));
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!("storage failed, batch not applied: {e}");
                for (reply, _) in work.replies {
                    let _ = reply.send(Err(EngineError::Unavailable(e.clone())));
                }
                for s in &work.started {
                    self.sched.unstarted(&s.worker, &s.workgroup);
                }
                for (w, wg) in &work.not_started {
                    self.sched.unstarted(w, wg);
                }
                // The results are handed back: their calls count as in
                // flight until they are applied.
                for (w, wg) in &work.finished {
                    self.sched.restore(w, wg);
                }
                // Look at everything again once storage works.
                for id in work.evaluated.into_iter().chain(work.touched) {
                    self.sched.place(&id, Placement::At { at_ms: 0 });
                }
                Err(retry)
            }
        }
    }

    fn apply_batch(
        &mut self,
        batch: Vec<Msg>,
        dispatching: bool,
        now: Timestamp,
        work: &mut BatchWork,
    ) -> Result<crate::storage::Synced, String> {
        let mut wtx = self.store.write().map_err(|e| e.to_string())?;
        if self.hub.client_count() > 0 {
            wtx.keep_event_json();
        }
        // Every table stays open for the whole batch.
        let mut tx = wtx.batch(now).map_err(|e| e.to_string())?;
        self.metrics.batch(batch.len());
        for msg in batch {
            match msg {
                Msg::Command {
                    op,
                    actor,
                    in_group,
                    reply,
                } => match self.apply_op(&mut tx, op, &actor, in_group.as_deref(), now) {
                    Ok(applied) => {
                        work.touched
                            .extend(applied.changes.touched_task_ids().map(str::to_string));
                        work.abandoned
                            .extend(applied.changes.ops.iter().filter_map(|c| match c {
                                Change::DeleteTask(t) if t.busy_executing => {
                                    Some((t.id.clone(), t.created_at.unix_nanos(), t.attempts))
                                }
                                _ => None,
                            }));
                        if let Some(g) = applied.resumed_group {
                            work.touched.extend(self.sched.release_group(&g));
                        }
                        if let Some(w) = applied.released_workgroup {
                            work.touched.extend(self.sched.release_workgroup(&w));
                        }
                        work.limits.extend(applied.limit);
                        work.workgroup_limits.extend(applied.workgroup_limits);
                        work.cancelled.extend(applied.cancelled);
                        work.replies.push((reply, applied.outcome));
                    }
                    Err(ApplyError::Rule(e)) => {
                        let _ = reply.send(Err(EngineError::Rule(e)));
                    }
                    Err(ApplyError::Storage(e)) => {
                        let _ = reply.send(Err(EngineError::Unavailable(e.clone())));
                        return Err(e);
                    }
                },
                Msg::Result {
                    task_id,
                    worker,
                    workgroup,
                    attempt,
                    created,
                    outcome,
                } => {
                    let call = (task_id, created, attempt);
                    if self.abandoned.contains(&call) || work.abandoned.contains(&call) {
                        // Its task was deleted: nothing to record, the slot
                        // is free.
                        self.sched.finished(&worker, &workgroup);
                        work.finished.push((worker, workgroup));
                        work.dropped.push(call);
                        continue;
                    }
                    let (task_id, _, attempt) = call;
                    self.cancels.remove(&task_id);
                    let jitter = rand::random::<f64>();
                    let ids = &mut self.ids;
                    let r = rules::record_result(
                        &tx,
                        &task_id,
                        attempt,
                        outcome,
                        now,
                        self.config.retry_policy,
                        jitter,
                        &mut || ids.next_id(),
                    );
                    // The call has ended: its slot is free for a start in
                    // this same transaction.
                    self.sched.finished(&worker, &workgroup);
                    work.finished.push((worker, workgroup));
                    match r {
                        Ok(ch) => {
                            tx.apply(&ch, now).map_err(|e| e.to_string())?;
                            work.touched
                                .extend(ch.touched_task_ids().map(str::to_string));
                        }
                        Err(RuleError::Store(e)) => return Err(e.0),
                        Err(e) => tracing::warn!(task = %task_id, "worker result not applied: {e}"),
                    }
                }
                Msg::Shutdown => {}
            }
        }

        // Where does every touched task go now? Placed at once, so that a
        // task this batch made ready starts in this same transaction (one
        // durable commit from a parent's result to its child's call). If
        // the commit fails, the scheduler holds stale entries, which every
        // start re-checks.
        self.place_touched(&tx, work, now)?;

        // Start attempts for ready tasks, within the limits.
        if dispatching {
            for c in self.sched.take(MAX_STARTS, now.unix_millis()) {
                let Candidate {
                    id,
                    worker,
                    workgroup,
                } = c;
                let started = match rules::start_attempt(&tx, &id, now) {
                    Ok(s) => s,
                    Err(RuleError::Store(e)) => {
                        work.not_started.push((worker, workgroup));
                        return Err(e.0);
                    }
                    Err(e) => {
                        tracing::warn!(task = %id, "cannot start: {e}");
                        work.not_started.push((worker, workgroup));
                        continue;
                    }
                };
                match started {
                    Start::Started {
                        changes,
                        attempt,
                        payload,
                    } => {
                        let started = changes.ops.iter().find_map(|c| match c {
                            Change::UpdateTask { after, .. } if after.id == id => Some(after),
                            _ => None,
                        });
                        // Taken from a lane that is no longer its own (its
                        // worker or workgroup changed since it was queued):
                        // counted against the wrong limits, it would
                        // overrun its own. Not started; placed again.
                        if started.is_some_and(|t| t.worker != worker || t.workgroup != workgroup) {
                            work.not_started.push((worker, workgroup));
                            work.touched.push(id);
                            continue;
                        }
                        let (timeout, run, created) = started
                            .map(|t| {
                                (
                                    t.timeout_in_seconds.map(Duration::from_secs),
                                    t.resets,
                                    t.created_at.unix_nanos(),
                                )
                            })
                            .unwrap_or((None, 0, 0));
                        tx.apply(&changes, now).map_err(|e| e.to_string())?;
                        work.started.push(Started {
                            worker,
                            workgroup,
                            attempt,
                            created,
                            run,
                            payload,
                            timeout,
                        });
                    }
                    Start::Settled(changes) => {
                        work.not_started.push((worker, workgroup));
                        tx.apply(&changes, now).map_err(|e| e.to_string())?;
                        work.touched
                            .extend(changes.touched_task_ids().map(str::to_string));
                    }
                    Start::Skipped { status } => {
                        work.not_started.push((worker, workgroup));
                        // Not ready after all (paused, delayed...): place it
                        // where it belongs now. A task whose key is busy is
                        // woken when that call ends.
                        if status.is_some() && status != Some(TaskStatus::Running) {
                            work.touched.push(id);
                        }
                    }
                }
            }
        }
        // Candidates that did not start free their slot at once.
        for (w, wg) in std::mem::take(&mut work.not_started) {
            self.sched.unstarted(&w, &wg);
        }

        // Tasks settled or skipped by the starts: placed after the commit.
        for (i, p) in evaluate_touched(&tx, &mut work.touched, now)? {
            work.placements.push((work.touched[i].clone(), p));
        }
        drop(tx);
        work.commit_started = Some(Instant::now());
        wtx.sync().map_err(|e| e.to_string())
    }

    /// Evaluates every touched task in `tx` and places it in the scheduler
    /// now; the ids move to `work.evaluated`.
    fn place_touched(
        &mut self,
        tx: &Batch<'_>,
        work: &mut BatchWork,
        now: Timestamp,
    ) -> Result<(), String> {
        for (i, p) in evaluate_touched(tx, &mut work.touched, now)? {
            self.sched.place(&work.touched[i], p);
        }
        work.evaluated.append(&mut work.touched);
        Ok(())
    }

    fn spawn_call(&mut self, s: Started) {
        let client = self.client.clone();
        let tx = self.tx.clone();
        let timeout = s.timeout.unwrap_or(self.config.worker_timeout);
        let run = Run {
            created_ns: s.created,
            resets: s.run,
        };
        let metrics = self.metrics.clone();
        let latency = metrics.call_started(&s.worker);
        let cancel = Arc::new(tokio::sync::Notify::new());
        self.cancels
            .insert(s.payload.task_id.clone(), cancel.clone());
        self.runtime.spawn(async move {
            let call_started = Instant::now();
            // A cancelled call is dropped mid-flight; its result still comes
            // back (as a stale one, ignored) so the slot accounting holds.
            let outcome = tokio::select! {
                outcome = client.call_in_run(&s.payload, s.attempt, run, Some(timeout)) => {
                    metrics.call_ended(&latency, call_started.elapsed(), &outcome);
                    outcome
                }
                _ = cancel.notified() => {
                    metrics.call_cancelled(&latency, call_started.elapsed());
                    WorkerOutcome::failure("cancelled by an operator")
                }
            };
            let _ = tx.send(Msg::Result {
                task_id: s.payload.task_id,
                worker: s.worker,
                workgroup: s.workgroup,
                attempt: s.attempt,
                created: s.created,
                outcome,
            });
        });
    }

    fn publish_loads(&self) {
        let loads: Vec<WorkerLimit> = self
            .sched
            .known_workers()
            .into_iter()
            .map(|w| WorkerLimit {
                max_concurrency: self.sched.limit(&w),
                in_flight: self.sched.in_flight(&w),
                worker: w,
            })
            .collect();
        if let Ok(mut l) = self.loads.0.lock() {
            *l = loads;
        }
        let by_workgroup = self.sched.workgroup_loads();
        if let Ok(mut l) = self.workgroup_loads.0.lock() {
            *l = by_workgroup;
        }
    }
}

/// Evaluates the touched tasks `ids` (repeats removed) and answers where
/// each goes, as (index in `ids`, placement), oldest first: a parent's
/// children, woken in the order of their ids, are queued in the order they
/// were created, and a request's tasks in the order it gave them.
fn evaluate_touched(
    tx: &Batch<'_>,
    ids: &mut Vec<String>,
    now: Timestamp,
) -> Result<Vec<(usize, Placement)>, String> {
    dedup_in_order(ids);
    let mut placed = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        match evaluate(tx, id, now) {
            Ok(Some((p, created))) => placed.push((created, i, p)),
            Ok(None) => {}
            Err(RuleError::Store(e)) => return Err(e.0),
            Err(e) => tracing::warn!(task = %id, "cannot evaluate: {e}"),
        }
    }
    // Stable, and by position among equals.
    placed.sort_by_key(|(created, i, _)| (*created, *i));
    Ok(placed.into_iter().map(|(_, i, p)| (i, p)).collect())
}

/// Removes repeated ids, keeping the first of each where it was: touched
/// tasks are placed, and so dispatched, in the order they were touched (a
/// request's tasks in the order it gave them), not by id.
fn dedup_in_order(ids: &mut Vec<String>) {
    let keep: Vec<bool> = {
        let mut seen = HashSet::with_capacity(ids.len());
        ids.iter().map(|id| seen.insert(id.as_str())).collect()
    };
    let mut keep = keep.into_iter();
    ids.retain(|_| keep.next().unwrap_or(false));
}

/// What one batch produced, acted on only after its commit.
#[derive(Default)]
struct BatchWork {
    /// When its commit began.
    commit_started: Option<Instant>,
    /// Tasks whose call an operator cancelled.
    cancelled: Vec<String>,
    /// Calls whose task this batch deleted.
    abandoned: HashSet<CallId>,
    /// Results of abandoned calls this batch dropped.
    dropped: Vec<CallId>,
    replies: Vec<(Reply, OpOutcome)>,
    touched: Vec<String>,
    /// Touched tasks already evaluated and placed in this batch.
    evaluated: Vec<String>,
    placements: Vec<(String, Placement)>,
    limits: Vec<(String, Option<u32>)>,
    workgroup_limits: Vec<(String, WorkgroupLimits)>,
    started: Vec<Started>,
    /// Workers (and workgroups) whose call ended in this batch.
    finished: Vec<(String, String)>,
    /// Workers (and workgroups) of candidates taken but not started.
    not_started: Vec<(String, String)>,
}

fn unavailable(e: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable(e.to_string())
}

/// Where a task belongs now, or `None` when nothing needs to happen until
/// another change (completed, running, failed, paused by its own flag,
/// waiting on parents, deleted).
fn evaluate(
    g: &Batch<'_>,
    id: &str,
    now: Timestamp,
) -> Result<Option<(Placement, Timestamp)>, RuleError> {
    // Only a pending task can be ready, delayed or held. The others
    // (complete, running, failed, paused by their own flag, or waiting on a
    // parent, woken again when the last one completes) have nowhere to go:
    // answered from the stored bucket, without decoding the task. Every
    // completion passes here, and so does each child of a large fan-in.
    if g.is_pending(id)
        .map_err(|e| RuleError::Store(crew_core::StoreError(e.to_string())))?
        != Some(true)
    {
        return Ok(None);
    }
    let Some(task) = g.task(id)? else {
        return Ok(None);
    };
    let status = rules::status_of(g, &task, now)?;
    let held_by_workgroup = |g: &Batch<'_>| -> Result<Option<Placement>, RuleError> {
        let until = if task.workgroup.is_empty() {
            None
        } else {
            g.workgroup(&task.workgroup)?
                .and_then(|w| w.paused_until)
                .filter(|t| *t > now)
        };
        Ok(until.map(|t| Placement::Workgroup {
            name: task.workgroup.clone(),
            until_ms: t.unix_millis(),
        }))
    };
    let placement = match status {
        TaskStatus::Ready => Some(Placement::Ready {
            worker: task.worker.clone(),
            workgroup: task.workgroup.clone(),
        }),
        TaskStatus::Delayed if task.is_delayed_at(now) => Some(Placement::At {
            at_ms: task.run_after.unix_millis(),
        }),
        // Held by a workgroup pause (a rate limit shows as delayed, an
        // operator's pause as paused): released when it ends or is resumed.
        TaskStatus::Delayed => held_by_workgroup(g)?,
        TaskStatus::Paused if !task.is_paused => {
            let group_paused = g.group(&task.task_group_id)?.is_some_and(|gr| gr.is_paused);
            if group_paused {
                Some(Placement::Group {
                    id: task.task_group_id.clone(),
                })
            } else {
                held_by_workgroup(g)?
            }
        }
        _ => None,
    };
    Ok(placement.map(|p| (p, task.created_at)))
}
