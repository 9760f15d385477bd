//! The scheduling rules, as pure functions over a [`GraphRead`] and an
//! injected clock. Each returns the [`Changes`] to apply atomically, or a
//! [`RuleError`] and no changes at all.
//!
//! Each rule reads only what it changes, plus parents and same-key tasks
//! where the rule needs them: completing one task in a 100k-task group reads
//! that task, its children's parents up to the first incomplete one, and
//! tasks sharing its key.

use crate::dag::{self, NewNode};
use crate::error::RuleError;
use crate::graph::{Change, Changes, GraphRead};
use crate::model::{
    derive_status, Attempt, AttemptOutcome, Task, TaskError, TaskGroup, TaskStatus, Workgroup,
    WorkgroupLimits, DEFAULT_ERROR_DELAY_SECS, DEFAULT_REMAINING_ATTEMPTS,
};
use crate::staged::Staged;
use crate::time::Timestamp;
use crate::wire::{
    BulkAction, BulkFilter, NewTask, NewTaskGroup, ParentPayload, TaskGroupPatch, TaskPatch,
    WorkerPayload,
};
use crate::worker::WorkerOutcome;
use std::collections::{HashMap, HashSet, VecDeque};

/// A source of fresh ids for tasks and groups created without one.
pub type IdSource<'a> = &'a mut dyn FnMut() -> String;

/// How the delay after a failure grows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum RetryPolicy {
    /// `errorDelayInSeconds` after every failure (crew-go).
    #[default]
    Fixed,
    /// `errorDelayInSeconds × 2^(failures-1)`, capped, with jitter: the delay
    /// is scaled by a factor between 0.5 and 1.0 drawn by the caller.
    Exponential {
        /// Longest delay, in seconds.
        cap_secs: u64,
    },
}

impl RetryPolicy {
    /// The delay before the next try after the `failures`-th failure.
    /// `jitter` is a number in `[0, 1)` supplied by the caller.
    pub fn delay_secs(&self, error_delay: u64, failures: u32, jitter: f64) -> f64 {
        match *self {
            RetryPolicy::Fixed => error_delay as f64,
            RetryPolicy::Exponential { cap_secs } => {
                let exp = failures.saturating_sub(1).min(40);
                let raw = (error_delay as f64) * 2f64.powi(exp as i32);
                let capped = raw.min(cap_secs as f64);
                capped * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))
            }
        }
    }
}

// ---- status ------------------------------------------------------------------

/// The derived status of `task` at `now`. Reads its group, its workgroup and
/// its parents, stopping at the first incomplete parent.
pub fn status_of<G: GraphRead + ?Sized>(
    g: &G,
    task: &Task,
    now: Timestamp,
) -> Result<TaskStatus, RuleError> {
    let group_paused = g
        .group(&task.task_group_id)?
        .map(|gr| gr.is_paused)
        .unwrap_or(false);
    let workgroup = if task.workgroup.is_empty() {
        None
    } else {
        g.workgroup(&task.workgroup)?
    };
    // Only look at parents when the answer depends on them.
    let quick = derive_status(task, group_paused, workgroup.as_ref(), true, now);
    // A workgroup paused by an operator ranks after `waiting`.
    let workgroup_paused = quick == TaskStatus::Paused && !task.is_paused && !group_paused;
    if matches!(quick, TaskStatus::Ready | TaskStatus::Delayed) || workgroup_paused {
        for p in &task.parent_ids {
            if g.is_complete(p)? != Some(true) {
                return Ok(derive_status(
                    task,
                    group_paused,
                    workgroup.as_ref(),
                    false,
                    now,
                ));
            }
        }
    }
    Ok(quick)
}

// ---- groups --------------------------------------------------------------------

/// Creates a group, with its tasks if the request carries any, atomically.
pub fn create_group<G: GraphRead + ?Sized>(
    g: &G,
    spec: NewTaskGroup,
    now: Timestamp,
    ids: IdSource<'_>,
) -> Result<Changes, RuleError> {
    let id = spec.id.unwrap_or_else(&mut *ids);
    dag::check_safe_name("task group id", &id)?;
    dag::check_text("name", &spec.name)?;
    if g.group(&id)?.is_some() {
        return Err(RuleError::Conflict(format!(
            "task group {id:?} already exists"
        )));
    }
    let schedule = spec.schedule.filter(|s| !s.trim().is_empty());
    if let Some(expr) = &schedule {
        crate::schedule::check(expr)?;
    }
    let group = TaskGroup {
        id: id.clone(),
        name: spec.name,
        is_paused: spec.is_paused,
        created_at: now,
        schedule,
        last_scheduled_reset: None,
        schedule_since: None,
        schedule_refused: None,
    };
    let mut changes = Changes {
        ops: vec![Change::CreateGroup(group.clone())],
        wake: vec![],
    };
    if !spec.tasks.is_empty() {
        let overlay = WithGroup { g, group: &group };
        changes.extend(create_tasks(&overlay, &id, spec.tasks, now, ids)?);
    }
    Ok(changes)
}

/// A graph that also has one group not yet written (for create_group).
struct WithGroup<'a, G: GraphRead + ?Sized> {
    g: &'a G,
    group: &'a TaskGroup,
}

impl<G: GraphRead + ?Sized> GraphRead for WithGroup<'_, G> {
    fn task(&self, id: &str) -> Result<Option<Task>, crate::graph::StoreError> {
        self.g.task(id)
    }
    fn group(&self, id: &str) -> Result<Option<TaskGroup>, crate::graph::StoreError> {
        if id == self.group.id {
            Ok(Some(self.group.clone()))
        } else {
            self.g.group(id)
        }
    }
    fn workgroup(&self, name: &str) -> Result<Option<Workgroup>, crate::graph::StoreError> {
        self.g.workgroup(name)
    }
    fn children(&self, id: &str) -> Result<Vec<String>, crate::graph::StoreError> {
        self.g.children(id)
    }
    fn tasks_with_key(
        &self,
        group: &str,
        key: &str,
    ) -> Result<Vec<String>, crate::graph::StoreError> {
        self.g.tasks_with_key(group, key)
    }
    fn group_task_ids(&self, group: &str) -> Result<Vec<String>, crate::graph::StoreError> {
        self.g.group_task_ids(group)
    }
    fn incomplete_task_ids(&self, group: &str) -> Result<Vec<String>, crate::graph::StoreError> {
        self.g.incomplete_task_ids(group)
    }
}

/// Renames, pauses, resumes or reschedules a group. Pausing is the flag
/// alone: O(1). A new schedule comes due first after `now`.
pub fn update_group<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    patch: TaskGroupPatch,
    now: Timestamp,
) -> Result<Changes, RuleError> {
    let mut group = g.group(id)?.ok_or_else(|| RuleError::group_not_found(id))?;
    let before = group.clone();
    if let Some(pid) = &patch.id {
        if pid != id {
            return Err(RuleError::Invalid(format!(
                "the body's id {pid:?} does not match the path's {id:?}"
            )));
        }
    }
    if let Some(name) = patch.name {
        dag::check_text("name", &name)?;
        group.name = name;
    }
    if let Some(p) = patch.is_paused {
        group.is_paused = p;
    }
    if let Some(expr) = patch.schedule {
        if expr.trim().is_empty() {
            group.schedule = None;
        } else {
            crate::schedule::check(&expr)?;
            if before.schedule.as_deref() != Some(expr.as_str()) {
                group.schedule_since = Some(now);
            }
            group.schedule = Some(expr);
        }
        // A refusal spoke of the old schedule's reset; given again, the
        // schedule is tried again at once.
        group.schedule_refused = None;
    }
    // Nothing changed: no write, no event.
    if group == before {
        return Ok(Changes::default());
    }
    Ok(Changes {
        ops: vec![Change::UpdateGroup(group)],
        wake: vec![],
    })
}

/// Pauses or resumes a group: one flag, no task rewritten.
pub fn set_group_paused<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    paused: bool,
) -> Result<Changes, RuleError> {
    // No schedule in the patch: the time is not read.
    update_group(
        g,
        id,
        TaskGroupPatch {
            is_paused: Some(paused),
            ..Default::default()
        },
        Timestamp::zero(),
    )
}

/// Deletes a group and every task in it. Calls in flight are abandoned:
/// their results find no task and are dropped.
pub fn delete_group<G: GraphRead + ?Sized>(g: &G, id: &str) -> Result<Changes, RuleError> {
    let mut s = Staged::new(g);
    let group = s.require_group(id)?;
    for tid in g.group_task_ids(id)? {
        s.delete(&tid)?;
    }
    s.after_tasks(Change::DeleteGroup(group));
    Ok(s.finish())
}

// ---- creating tasks --------------------------------------------------------------

fn check_new_task(t: &NewTask) -> Result<(), RuleError> {
    dag::check_text("name", &t.name)?;
    dag::check_safe_name("worker", &t.worker)?;
    if !t.workgroup.is_empty() {
        dag::check_safe_name("workgroup", &t.workgroup)?;
    }
    dag::check_text("key", &t.key)?;
    dag::check_json_depth("input", &t.input)?;
    if let Some(n) = t.remaining_attempts {
        dag::check_attempts(n)?;
    }
    if let Some(n) = t.error_delay_in_seconds {
        dag::check_error_delay(n)?;
    }
    if let Some(n) = t.timeout_in_seconds {
        dag::check_timeout(n)?;
    }
    Ok(())
}

/// Creates a batch of tasks in `group` as one DAG: validated whole, created
/// all or none. A task whose key already completed in the group completes at
/// once with that output.
pub fn create_tasks<G: GraphRead + ?Sized>(
    g: &G,
    group: &str,
    specs: Vec<NewTask>,
    now: Timestamp,
    ids: IdSource<'_>,
) -> Result<Changes, RuleError> {
    let mut s = Staged::new(g);
    s.require_group(group)?;
    if specs.is_empty() {
        return Err(RuleError::Invalid("no tasks to create".into()));
    }
    let tasks = build_tasks(group, specs, now, None, ids)?;
    insert_batch(&mut s, group, tasks)?;
    Ok(s.finish())
}

fn build_tasks(
    group: &str,
    specs: Vec<NewTask>,
    now: Timestamp,
    created_by: Option<&Task>,
    ids: IdSource<'_>,
) -> Result<Vec<Task>, RuleError> {
    let mut out = Vec::with_capacity(specs.len());
    for (nth, spec) in (0i64..).zip(specs) {
        check_new_task(&spec)?;
        if let Some(gid) = &spec.task_group_id {
            if gid != group {
                return Err(RuleError::Invalid(format!(
                    "task {:?} names group {gid:?} but is created in {group:?}",
                    spec.id.as_deref().unwrap_or("")
                )));
            }
        }
        let mut parent_ids = spec.parent_ids;
        if let Some(creator) = created_by {
            if !parent_ids.iter().any(|p| p == &creator.id) {
                parent_ids.push(creator.id.clone());
            }
        }
        dedup_keep_order(&mut parent_ids);
        out.push(Task {
            id: spec.id.unwrap_or_else(&mut *ids),
            task_group_id: group.to_string(),
            name: spec.name,
            worker: spec.worker,
            workgroup: spec.workgroup,
            key: spec.key,
            remaining_attempts: spec
                .remaining_attempts
                .unwrap_or(DEFAULT_REMAINING_ATTEMPTS),
            is_paused: spec.is_paused,
            is_complete: false,
            priority: spec.priority.unwrap_or(0),
            run_after: spec.run_after.unwrap_or_default(),
            progress_weight: spec.progress_weight.unwrap_or(0),
            is_seed: spec.is_seed,
            error_delay_in_seconds: spec
                .error_delay_in_seconds
                .unwrap_or(DEFAULT_ERROR_DELAY_SECS),
            input: spec.input,
            output: serde_json::Value::Null,
            errors: Vec::new(),
            // A nanosecond apart, in the order given: listings, which go
            // by createdAt, keep the order of the request (or of the
            // worker's children), as crew-go's one-by-one creates did.
            created_at: now.plus_nanos(nth),
            parent_ids,
            busy_executing: false,
            status: None,
            attempts: 0,
            created_by: created_by.map(|c| c.id.clone()),
            attempt_log: Vec::new(),
            timeout_in_seconds: spec.timeout_in_seconds,
            resets: 0,
        });
    }
    Ok(out)
}

/// Removes repeated ids, keeping the first of each.
fn dedup_keep_order(ids: &mut Vec<String>) {
    if ids.len() <= 16 {
        let mut i = 0;
        while i < ids.len() {
            if ids[..i].contains(&ids[i]) {
                ids.remove(i);
            } else {
                i += 1;
            }
        }
    } else {
        let mut seen: HashSet<String> = HashSet::with_capacity(ids.len());
        ids.retain(|p| seen.insert(p.clone()));
    }
}

fn insert_batch<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    group: &str,
    tasks: Vec<Task>,
) -> Result<(), RuleError> {
    let nodes: Vec<NewNode<'_>> = tasks
        .iter()
        .map(|t| NewNode {
            id: &t.id,
            parent_ids: &t.parent_ids,
        })
        .collect();
    // Parents outside the batch may have been written by this rule (a
    // continuation's creator): validate against the rule's view.
    dag::validate_batch(&StagedView(s), group, &nodes)?;
    s.reserve(tasks.len());
    // The completed output per key, looked up once per distinct key: tasks
    // of the batch only complete with that same output, so the answer does
    // not change while the batch is inserted.
    let mut done_by_key: HashMap<String, Option<serde_json::Value>> = HashMap::new();
    for mut t in tasks {
        if !t.key.is_empty() {
            let done = match done_by_key.get(&t.key) {
                Some(d) => d.clone(),
                None => {
                    let d = completed_with_key(s, group, &t.key, &t.id)?.map(|d| d.output);
                    done_by_key.insert(t.key.clone(), d.clone());
                    d
                }
            };
            // With a parent incomplete (or created later in the batch) it
            // waits, and settles when it would start.
            if let Some(output) = done {
                if parents_complete(s, &t)? {
                    t.is_complete = true;
                    t.output = output;
                }
            }
        }
        s.put(t);
    }
    Ok(())
}

/// Read access to a [`Staged`] view, for validation inside a rule.
struct StagedView<'s, 'g, G: GraphRead + ?Sized>(&'s Staged<'g, G>);

impl<G: GraphRead + ?Sized> StagedView<'_, '_, G> {
    fn peek(&self, id: &str) -> Result<Option<Task>, crate::graph::StoreError> {
        match self.0.peek(id) {
            Some(t) => Ok(t),
            None => self.0.g.task(id),
        }
    }
}

impl<G: GraphRead + ?Sized> GraphRead for StagedView<'_, '_, G> {
    fn task(&self, id: &str) -> Result<Option<Task>, crate::graph::StoreError> {
        self.peek(id)
    }
    fn group(&self, id: &str) -> Result<Option<TaskGroup>, crate::graph::StoreError> {
        self.0.g.group(id)
    }
    fn workgroup(&self, name: &str) -> Result<Option<Workgroup>, crate::graph::StoreError> {
        self.0.g.workgroup(name)
    }
    fn children(&self, id: &str) -> Result<Vec<String>, crate::graph::StoreError> {
        self.0.g.children(id)
    }
    fn tasks_with_key(
        &self,
        group: &str,
        key: &str,
    ) -> Result<Vec<String>, crate::graph::StoreError> {
        self.0.g.tasks_with_key(group, key)
    }
    fn group_task_ids(&self, group: &str) -> Result<Vec<String>, crate::graph::StoreError> {
        self.0.g.group_task_ids(group)
    }
    fn incomplete_task_ids(&self, group: &str) -> Result<Vec<String>, crate::graph::StoreError> {
        self.0.g.incomplete_task_ids(group)
    }
}

/// Whether every parent of `task` is complete (a parent gone counts as
/// complete, as for its status).
fn parents_complete<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    task: &Task,
) -> Result<bool, RuleError> {
    for p in &task.parent_ids {
        if s.task(p)?.is_some_and(|p| !p.is_complete) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn completed_with_key<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    group: &str,
    key: &str,
    except: &str,
) -> Result<Option<Task>, RuleError> {
    for id in s.tasks_with_key(group, key)? {
        if id == except {
            continue;
        }
        if let Some(t) = s.task(&id)? {
            if t.is_complete {
                return Ok(Some(t));
            }
        }
    }
    Ok(None)
}

// ---- attempts ------------------------------------------------------------------------

/// What [`start_attempt`] decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Start {
    /// The attempt is recorded; POST `payload` to the worker after commit.
    Started {
        /// The task marked running.
        changes: Changes,
        /// The attempt number the result must carry.
        attempt: u32,
        /// What to send.
        payload: WorkerPayload,
    },
    /// A task with the same key already completed: this one completes now
    /// with its output, without a call.
    Settled(Changes),
    /// Not eligible now; `status` says why (a same-key task running shows
    /// as `running`).
    Skipped {
        /// The task's status (or `None` when it no longer exists).
        status: Option<TaskStatus>,
    },
}

/// Records the start of an attempt, if the task is ready: it is marked
/// running and its attempt counted before any call is made. At most one task
/// per key and group is in flight.
pub fn start_attempt<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    now: Timestamp,
) -> Result<Start, RuleError> {
    let Some(mut task) = g.task(id)? else {
        return Ok(Start::Skipped { status: None });
    };
    let status = status_of(g, &task, now)?;
    if status != TaskStatus::Ready {
        return Ok(Start::Skipped {
            status: Some(status),
        });
    }
    let mut s = Staged::new(g);
    if !task.key.is_empty() {
        for other in s.tasks_with_key(&task.task_group_id, &task.key)? {
            if other == task.id {
                continue;
            }
            let Some(o) = s.task(&other)? else { continue };
            if o.is_complete {
                s.task(&task.id)?;
                complete_duplicate(&mut s, task, &o.output, now)?;
                return Ok(Start::Settled(s.finish()));
            }
            if o.busy_executing {
                return Ok(Start::Skipped {
                    status: Some(TaskStatus::Running),
                });
            }
        }
    }
    let mut parents = Vec::with_capacity(task.parent_ids.len());
    for p in &task.parent_ids {
        // Read-only: straight from the graph, not staged.
        if let Some(pt) = g.task(p)? {
            parents.push(ParentPayload {
                task_id: pt.id,
                worker: pt.worker,
                input: pt.input,
                output: pt.output,
            });
        }
    }
    s.task(&task.id)?;
    task.attempts += 1;
    task.busy_executing = true;
    task.log_attempt(Attempt {
        number: task.attempts,
        started_at: now,
        finished_at: None,
        outcome: AttemptOutcome::Running,
    });
    let attempt = task.attempts;
    let payload = WorkerPayload {
        task_id: task.id.clone(),
        worker: task.worker.clone(),
        input: task.input.clone(),
        parents,
    };
    s.put(task);
    Ok(Start::Started {
        changes: s.finish(),
        attempt,
        payload,
    })
}

fn finish_attempt(task: &mut Task, outcome: AttemptOutcome, now: Timestamp) {
    task.busy_executing = false;
    if let Some(a) = task.current_attempt_mut() {
        a.outcome = outcome;
        a.finished_at = Some(now);
    }
}

fn complete_duplicate<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    mut task: Task,
    output: &serde_json::Value,
    _now: Timestamp,
) -> Result<(), RuleError> {
    task.is_complete = true;
    task.output = output.clone();
    for c in s.children(&task.id)? {
        s.wake(c);
    }
    s.put(task);
    Ok(())
}

/// Completes, with `done`'s output, every other incomplete and idle task
/// with `done`'s key in its group (their children are woken): duplicates
/// merge whether the task was completed by its worker or by hand. One
/// running now keeps its call, whose result completes it.
///
/// A duplicate whose parents are not all complete waits instead (completed
/// now, its children would run before its ancestors), and settles when it
/// would start ([`start_attempt`]).
fn complete_same_key<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    done: &Task,
    now: Timestamp,
) -> Result<(), RuleError> {
    if done.key.is_empty() {
        return Ok(());
    }
    for other in s.tasks_with_key(&done.task_group_id, &done.key)? {
        if other == done.id {
            continue;
        }
        if let Some(mut o) = s.task(&other)? {
            if o.is_complete || o.busy_executing {
                continue;
            }
            if parents_complete(s, &o)? {
                complete_duplicate(s, o, &done.output, now)?;
            } else if o.run_after > now {
                // It will settle without a call: a delay (a failed
                // duplicate's hold, or its own) would only hold its
                // children back, as it does not for the merged ones.
                o.run_after = now;
                s.put(o);
            }
        }
    }
    Ok(())
}

/// Applies a worker's result to the attempt it belongs to. A result for a
/// task that no longer exists, or for another attempt, changes nothing.
///
/// - success: complete with the output; continuations created in the same
///   changes (all or none; the creator always a parent; delayed by
///   `childrenDelayInSeconds`); every other incomplete task with the same
///   key completes with the same output; children are woken.
/// - failure: an error is recorded, an attempt burned, the next try delayed.
/// - rate limit: the workgroup pauses (or the task, without a workgroup);
///   no attempt is burned.
/// - after a failure or a rate limit, the task's same-key duplicates wait
///   for its next try as well (see `hold_same_key`).
#[allow(clippy::too_many_arguments)]
pub fn record_result<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    attempt: u32,
    outcome: WorkerOutcome,
    now: Timestamp,
    policy: RetryPolicy,
    jitter: f64,
    ids: IdSource<'_>,
) -> Result<Changes, RuleError> {
    let mut s = Staged::new(g);
    let Some(task) = s.task(id)? else {
        return Ok(Changes::default());
    };
    if !task.busy_executing || task.attempts != attempt {
        return Ok(Changes::default());
    }
    match outcome {
        WorkerOutcome::Success {
            output,
            children,
            children_delay_secs,
            workgroup_delay_secs,
        } => {
            let mut done = task.clone();
            finish_attempt(&mut done, AttemptOutcome::Succeeded, now);
            done.is_complete = true;
            done.output = output.clone();
            let group = done.task_group_id.clone();
            let specs: Vec<NewTask> = children
                .into_iter()
                .map(|c| {
                    let mut n = NewTask::from(c);
                    if children_delay_secs > 0.0 {
                        // The delay never brings a child's own schedule forward.
                        let delayed = now.plus_seconds(children_delay_secs);
                        if n.run_after.is_none_or(|t| t < delayed) {
                            n.run_after = Some(delayed);
                        }
                    }
                    n
                })
                .collect();
            let built = build_tasks(&group, specs, now, Some(&done), &mut *ids);
            // Write the creator first so children validate against it.
            s.put(done.clone());
            let created = built.and_then(|tasks| insert_batch(&mut s, &group, tasks));
            if let Err(e) = created {
                // All or none: fail the attempt instead, with the reason.
                let mut s = Staged::new(g);
                s.task(id)?;
                let msg = format!("the worker's children were refused: {e}");
                let next_try = fail(&mut s, task.clone(), msg, now, policy, jitter);
                hold_same_key(&mut s, &task, next_try, now)?;
                return Ok(s.finish());
            }
            for c in s.children(&done.id)? {
                s.wake(c);
            }
            complete_same_key(&mut s, &done, now)?;
            if let Some(d) = workgroup_delay_secs {
                rate_limit_workgroup(&mut s, &done, d, now)?;
            }
        }
        WorkerOutcome::Failure { message } => {
            let next_try = fail(&mut s, task.clone(), message, now, policy, jitter);
            hold_same_key(&mut s, &task, next_try, now)?;
        }
        WorkerOutcome::RateLimited {
            delay_secs,
            message: _,
        } => {
            let mut t = task.clone();
            finish_attempt(&mut t, AttemptOutcome::RateLimited, now);
            let until = now.plus_seconds(delay_secs);
            if t.workgroup.is_empty() {
                // Like a workgroup pause, never shortens a later schedule.
                if t.run_after < until {
                    t.run_after = until;
                }
                s.put(t);
            } else {
                s.put(t.clone());
                rate_limit_workgroup(&mut s, &t, delay_secs, now)?;
            }
            hold_same_key(&mut s, &task, until, now)?;
        }
    }
    Ok(s.finish())
}

/// Records a failed attempt and returns when the next try of the same call
/// may be made (the task's new runAfter; for a task with no attempts left,
/// the time it would have been, which its same-key duplicates wait for).
fn fail<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    mut task: Task,
    message: String,
    now: Timestamp,
    policy: RetryPolicy,
    jitter: f64,
) -> Timestamp {
    finish_attempt(&mut task, AttemptOutcome::Failed, now);
    task.errors
        .push(TaskError::recorded(message, now, task.attempts));
    task.remaining_attempts = task.remaining_attempts.saturating_sub(1);
    let failures = task.errors.len() as u32;
    let delay = policy.delay_secs(task.error_delay_in_seconds, failures, jitter);
    let next_try = now.plus_seconds(delay);
    if task.remaining_attempts > 0 {
        task.run_after = next_try;
    }
    s.put(task);
    next_try
}

/// After a failed or rate-limited attempt of a keyed task, every idle,
/// incomplete task with the same key in its group is held until `until`,
/// the failed task's next try: duplicates stand for one call, so the call
/// is backed off once for all of them instead of being made again at once
/// by each duplicate in turn. A later runAfter of theirs is kept. They are
/// woken, since the key no longer holds them (at most one call per key at a
/// time still holds: the first to be due starts, the others wait for it).
fn hold_same_key<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    task: &Task,
    until: Timestamp,
    now: Timestamp,
) -> Result<(), RuleError> {
    if task.key.is_empty() {
        return Ok(());
    }
    for other in s.tasks_with_key(&task.task_group_id, &task.key)? {
        if other == task.id {
            continue;
        }
        if until > now {
            if let Some(mut o) = s.task(&other)? {
                if !o.is_complete && !o.busy_executing && o.run_after < until {
                    o.run_after = until;
                    s.put(o);
                }
            }
        }
        s.wake(other);
    }
    Ok(())
}

fn wake_same_key<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    task: &Task,
) -> Result<(), RuleError> {
    if !task.key.is_empty() {
        for other in s.tasks_with_key(&task.task_group_id, &task.key)? {
            if other != task.id {
                s.wake(other);
            }
        }
    }
    Ok(())
}

fn rate_limit_workgroup<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    task: &Task,
    delay_secs: f64,
    now: Timestamp,
) -> Result<(), RuleError> {
    if task.workgroup.is_empty() {
        return Ok(());
    }
    let mut wg =
        s.g.workgroup(&task.workgroup)?
            .unwrap_or_else(|| Workgroup::new(task.workgroup.clone()));
    let until = now.plus_seconds(delay_secs);
    // A rate limit never shortens a pause already in force.
    if wg.paused_until.is_some_and(|t| t >= until) {
        return Ok(());
    }
    wg.paused_until = Some(until);
    wg.paused_by_operator = false;
    s.before_tasks(Change::PutWorkgroup(wg));
    Ok(())
}

/// Recovery after a restart: the attempt in flight when the daemon died is
/// recorded as interrupted (no attempt burned) and the task runs again.
pub fn interrupt_attempt<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    now: Timestamp,
) -> Result<Changes, RuleError> {
    let mut s = Staged::new(g);
    let Some(mut task) = s.task(id)? else {
        return Ok(Changes::default());
    };
    if !task.busy_executing {
        return Ok(Changes::default());
    }
    finish_attempt(&mut task, AttemptOutcome::Interrupted, now);
    s.put(task.clone());
    wake_same_key(&mut s, &task)?;
    Ok(s.finish())
}

/// Cancels the attempt in flight: the call is abandoned (the daemon drops
/// it after the commit), the attempt is recorded as cancelled without
/// burning an attempt, and the task is paused so it does not start again
/// until an operator resumes it. Refused when nothing is running.
pub fn cancel_attempt<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    now: Timestamp,
) -> Result<Changes, RuleError> {
    let mut s = Staged::new(g);
    let mut task = s.require(id)?;
    if !task.busy_executing {
        return Err(RuleError::Conflict(format!(
            "task {id:?} is not running; there is no call to cancel"
        )));
    }
    finish_attempt(&mut task, AttemptOutcome::Cancelled, now);
    task.is_paused = true;
    let woken = task.clone();
    s.put(task);
    wake_same_key(&mut s, &woken)?;
    Ok(s.finish())
}

// ---- operator actions ------------------------------------------------------------------

fn refuse_running(task: &Task, action: &str) -> Result<(), RuleError> {
    if task.busy_executing {
        Err(RuleError::Conflict(format!(
            "task {:?} is running; it cannot be {action} until its attempt ends",
            task.id
        )))
    } else {
        Ok(())
    }
}

/// Pauses or resumes a task. Pausing a running task takes effect after its
/// current attempt.
pub fn set_task_paused<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    paused: bool,
) -> Result<Changes, RuleError> {
    let mut s = Staged::new(g);
    let mut t = s.require(id)?;
    t.is_paused = paused;
    s.put(t);
    Ok(s.finish())
}

/// Edits a task. crew-go clients send the whole task: read-only fields are
/// accepted when they do not change. While the task runs, an edit is
/// refused unless the only field it changes is `isPaused` (crew-go clients
/// pause by PUT): that pause or resume takes effect after the current
/// attempt, as [`set_task_paused`] does.
pub fn update_task<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    patch: TaskPatch,
    now: Timestamp,
) -> Result<Changes, RuleError> {
    let mut s = Staged::new(g);
    let mut t = s.require(id)?;
    let before = t.clone();
    if patch.id.as_deref().is_some_and(|p| p != id) {
        return Err(RuleError::Invalid("a task's id cannot be changed".into()));
    }
    if patch
        .task_group_id
        .as_deref()
        .is_some_and(|p| p != t.task_group_id)
    {
        return Err(RuleError::Invalid(
            "a task's group cannot be changed".into(),
        ));
    }
    // A whole task sent back (as crew-go clients do) may be stale: read
    // before an attempt started or ended, or before the task was deleted
    // and created again. Applied, it would undo what happened since.
    if patch.created_at.is_some_and(|c| c != t.created_at)
        || patch.busy_executing.is_some_and(|b| b != t.busy_executing)
    {
        return Err(RuleError::Conflict(format!(
            "task {id:?} changed since this body was read (an attempt started or ended, \
             or the task was created again); read it again and send the change"
        )));
    }
    if patch
        .parent_ids
        .as_ref()
        .is_some_and(|p| p != &t.parent_ids)
    {
        return Err(RuleError::Invalid(
            "a task's parents cannot be changed; delete it and create it again".into(),
        ));
    }
    if let Some(v) = patch.name {
        dag::check_text("name", &v)?;
        t.name = v;
    }
    if let Some(v) = patch.worker {
        dag::check_safe_name("worker", &v)?;
        t.worker = v;
    }
    if let Some(v) = patch.workgroup {
        if !v.is_empty() {
            dag::check_safe_name("workgroup", &v)?;
        }
        t.workgroup = v;
    }
    if let Some(v) = patch.key {
        dag::check_text("key", &v)?;
        t.key = v;
    }
    if let Some(v) = patch.remaining_attempts {
        dag::check_attempts(v)?;
        t.remaining_attempts = v;
    }
    if let Some(v) = patch.error_delay_in_seconds {
        dag::check_error_delay(v)?;
        t.error_delay_in_seconds = v;
    }
    if let Some(v) = patch.timeout_in_seconds {
        dag::check_timeout(v)?;
        t.timeout_in_seconds = Some(v);
    }
    if let Some(v) = patch.is_paused {
        t.is_paused = v;
    }
    if let Some(v) = patch.run_after {
        t.run_after = v;
    }
    if let Some(v) = patch.is_seed {
        t.is_seed = v;
    }
    if let Some(v) = patch.input {
        dag::check_json_depth("input", &v)?;
        t.input = v;
    }
    if let Some(v) = patch.output {
        dag::check_json_depth("output", &v)?;
        t.output = v;
    }
    if let Some(v) = patch.is_complete {
        if !v && t.is_complete {
            refuse_rerun_of_continuations(&mut s, id)?;
        }
        if v && !t.is_complete {
            for c in s.children(id)? {
                s.wake(c);
            }
        }
        t.is_complete = v;
    }
    if before.busy_executing {
        // Fields sent with their current values are no change.
        let mut pause_aside = t.clone();
        pause_aside.is_paused = before.is_paused;
        if pause_aside != before {
            return Err(RuleError::Conflict(format!(
                "task {id:?} is running; it cannot be edited until its attempt ends \
                 (isPaused alone may change: a pause takes effect after the attempt)"
            )));
        }
        return set_task_paused(g, id, t.is_paused);
    }
    let completed_now = t.is_complete && !before.is_complete;
    s.put(t.clone());
    if completed_now {
        // As a worker's completion does.
        complete_same_key(&mut s, &t, now)?;
    }
    Ok(s.finish())
}

/// Refuses to make the completed task `id` incomplete (run again) while
/// the tasks its run created are there: the new run would create them a
/// second time, which fails on their ids (or, without ids, doubles them).
/// A reset deletes them first.
fn refuse_rerun_of_continuations<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    id: &str,
) -> Result<(), RuleError> {
    let mut created = 0;
    for c in s.children(id)? {
        if s.require(&c)?.created_by.as_deref() == Some(id) {
            created += 1;
        }
    }
    if created == 0 {
        return Ok(());
    }
    Err(RuleError::Conflict(format!(
        "task {id:?} created {created} task(s) when it ran, which running it again would \
         create again: reset it instead (POST .../task/{id}/reset), which deletes them first"
    )))
}

/// Every descendant of `roots` (not the roots), breadth first.
fn descendants<G: GraphRead + ?Sized>(
    s: &mut Staged<'_, G>,
    roots: &[String],
) -> Result<Vec<String>, RuleError> {
    let mut seen: HashSet<String> = roots.iter().cloned().collect();
    let mut queue: VecDeque<String> = roots.iter().cloned().collect();
    let mut out = Vec::new();
    while let Some(id) = queue.pop_front() {
        for c in s.children(&id)? {
            if seen.insert(c.clone()) {
                out.push(c.clone());
                queue.push_back(c);
            }
        }
    }
    Ok(out)
}

fn reset_fields(t: &mut Task, attempts: u32, now: Timestamp) {
    t.resets = t.resets.saturating_add(1);
    t.is_complete = false;
    t.output = serde_json::Value::Null;
    t.errors.clear();
    t.remaining_attempts = attempts;
    t.run_after = now;
}

/// Resets a task: output and errors cleared, attempts restored, runs now.
/// The continuations its earlier execution created are deleted (with their
/// descendants: the re-run creates them again); its other descendants are
/// reset too, and since they re-run as well, the continuations they created
/// are deleted the same way. Refused if any of them is running.
pub fn reset_task<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    attempts: Option<u32>,
    now: Timestamp,
) -> Result<Changes, RuleError> {
    let attempts = attempts.unwrap_or(DEFAULT_REMAINING_ATTEMPTS);
    dag::check_given_attempts("reset", attempts)?;
    let mut s = Staged::new(g);
    let root = s.require(id)?;
    refuse_running(&root, "reset")?;
    // Every descendant re-runs (it is reset or deleted), so every
    // continuation created by the task or by one of its descendants will be
    // created again: those are deleted, with whatever depends on them.
    let all = descendants(&mut s, &[id.to_string()])?;
    let mut rerun: HashSet<&str> = all.iter().map(String::as_str).collect();
    rerun.insert(id);
    let mut continuations = Vec::new();
    for d in &all {
        let creator = s.require(d)?.created_by;
        if creator.is_some_and(|c| rerun.contains(c.as_str())) {
            continuations.push(d.clone());
        }
    }
    let mut doomed: Vec<String> = continuations.clone();
    doomed.extend(descendants(&mut s, &continuations)?);
    let doomed_set: HashSet<&String> = doomed.iter().collect();
    let reset: Vec<String> = all
        .iter()
        .filter(|d| !doomed_set.contains(d))
        .cloned()
        .collect();
    for d in doomed.iter().chain(reset.iter()) {
        let t = s.require(d)?;
        refuse_running(&t, "reset")?;
    }
    for d in &doomed {
        s.delete(d)?;
    }
    let mut root = root;
    reset_fields(&mut root, attempts, now);
    s.put(root);
    for r in reset {
        let mut t = s.require(&r)?;
        reset_fields(&mut t, attempts, now);
        s.put(t);
    }
    Ok(s.finish())
}

/// Resets a group. With seed tasks: the seeds, and the tasks they depend
/// on, are reset; every other task is deleted. Without: every task is
/// reset, except continuations (and what depends on them), which are
/// deleted since the re-run creates them again. Refused while any task of
/// the group runs, and when a seed depends on a continuation (its creator's
/// re-run would create it again, next to the one kept).
pub fn reset_group<G: GraphRead + ?Sized>(
    g: &G,
    group: &str,
    attempts: Option<u32>,
    now: Timestamp,
) -> Result<Changes, RuleError> {
    let attempts = attempts.unwrap_or(DEFAULT_REMAINING_ATTEMPTS);
    dag::check_given_attempts("reset", attempts)?;
    let mut s = Staged::new(g);
    s.require_group(group)?;
    let ids = g.group_task_ids(group)?;
    let mut tasks = Vec::with_capacity(ids.len());
    for id in &ids {
        let t = s.require(id)?;
        refuse_running(&t, "reset")?;
        tasks.push(t);
    }
    let has_seeds = tasks.iter().any(|t| t.is_seed);
    // With seeds, everything but them and what they need goes: deleting a
    // seed's parent would leave the seed waiting for ever. Without, every
    // task re-runs, so the continuations earlier runs created will be
    // created again: they go, with whatever depends on them (as in a task
    // reset).
    let kept = if has_seeds {
        seeds_and_their_ancestors(&tasks)?
    } else {
        HashSet::new()
    };
    let roots: Vec<String> = tasks
        .iter()
        .filter(|t| {
            if has_seeds {
                !kept.contains(t.id.as_str())
            } else {
                t.created_by.is_some()
            }
        })
        .map(|t| t.id.clone())
        .collect();
    let mut doomed: HashSet<String> = descendants(&mut s, &roots)?.into_iter().collect();
    doomed.extend(roots);
    for mut t in tasks {
        if doomed.contains(&t.id) {
            s.delete(&t.id)?;
        } else {
            reset_fields(&mut t, attempts, now);
            s.put(t);
        }
    }
    Ok(s.finish())
}

/// The ids of a group's seeds and of every task they depend on (all of
/// `tasks` being the group's). A continuation among those (a seed itself
/// included) is a conflict: kept, it would be created again by its
/// creator's re-run.
fn seeds_and_their_ancestors(tasks: &[Task]) -> Result<HashSet<&str>, RuleError> {
    let by_id: HashMap<&str, &Task> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut kept: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&Task> = tasks.iter().filter(|t| t.is_seed).collect();
    while let Some(t) = todo.pop() {
        if !kept.insert(t.id.as_str()) {
            continue;
        }
        if let Some(creator) = &t.created_by {
            let what = if t.is_seed {
                "is a seed"
            } else {
                "a seed depends on it"
            };
            return Err(RuleError::Conflict(format!(
                "task {:?} {what}, and task {creator:?} created it when it ran: \
                 a reset would keep it and the re-run create it again; \
                 delete the seeds that are or depend on continuations, or reset tasks one by one",
                t.id
            )));
        }
        todo.extend(t.parent_ids.iter().filter_map(|p| by_id.get(p.as_str())));
    }
    Ok(kept)
}

/// What a group's schedule asks for at `now` ([`scheduled_reset`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScheduledReset {
    /// The reset, and the group remembering when (or that it was refused);
    /// empty when nothing is due.
    pub changes: Changes,
    /// Why a due reset was refused: the group's shape forbids it, and will
    /// until an operator changes it.
    pub refused: Option<String>,
}

/// The reset a group's schedule asks for, if it is due at `now`: the group
/// resets (seed semantics) and remembers when, in the same changes. Not
/// due, no schedule, or a task running (it fires once the group is idle):
/// no changes. A reset the group's shape refuses is not an error of the
/// caller's: the group records why (once, while the reason stays the same),
/// so that the refusal shows wherever the group does.
pub fn scheduled_reset<G: GraphRead + ?Sized>(
    g: &G,
    group: &str,
    now: Timestamp,
) -> Result<ScheduledReset, RuleError> {
    let Some(mut gr) = g.group(group)? else {
        return Err(RuleError::group_not_found(group));
    };
    let Some(expr) = gr.schedule.clone() else {
        return Ok(ScheduledReset::default());
    };
    let since = gr.schedule_counts_from();
    match crate::schedule::next_after(&expr, since)? {
        Some(due) if due <= now => {}
        _ => return Ok(ScheduledReset::default()),
    }
    let mut changes = match reset_group(g, group, None, now) {
        Ok(c) => c,
        // A task running: the reset fires once the group is idle. Any other
        // conflict (a seed that is a continuation, or depends on one) would
        // not pass by itself.
        Err(RuleError::Conflict(reason)) => {
            for id in g.incomplete_task_ids(group)? {
                if g.task(&id)?.is_some_and(|t| t.busy_executing) {
                    return Ok(ScheduledReset::default());
                }
            }
            let mut changes = Changes::default();
            if gr.schedule_refused.as_deref() != Some(reason.as_str()) {
                gr.schedule_refused = Some(reason.clone());
                changes.ops.push(Change::UpdateGroup(gr));
            }
            return Ok(ScheduledReset {
                changes,
                refused: Some(reason),
            });
        }
        Err(e) => return Err(e),
    };
    gr.last_scheduled_reset = Some(now);
    gr.schedule_refused = None;
    changes.ops.push(Change::UpdateGroup(gr));
    Ok(ScheduledReset {
        changes,
        refused: None,
    })
}

fn retry_fields(t: &mut Task, attempts: u32, now: Timestamp) {
    t.remaining_attempts = attempts;
    // A task waiting out an error delay runs now; a schedule set by its
    // creator is kept.
    if !t.errors.is_empty() && t.is_delayed_at(now) {
        t.run_after = now;
    }
}

/// Gives an incomplete task new attempts without clearing anything.
pub fn retry_task<G: GraphRead + ?Sized>(
    g: &G,
    id: &str,
    attempts: Option<u32>,
    now: Timestamp,
) -> Result<Changes, RuleError> {
    let attempts = attempts.unwrap_or(DEFAULT_REMAINING_ATTEMPTS);
    dag::check_given_attempts("retry", attempts)?;
    let mut s = Staged::new(g);
    let mut t = s.require(id)?;
    if t.is_complete {
        return Err(RuleError::Conflict(format!(
            "task {id:?} is complete; reset it to run it again"
        )));
    }
    refuse_running(&t, "retried")?;
    retry_fields(&mut t, attempts, now);
    s.put(t);
    Ok(s.finish())
}

/// Gives every incomplete, idle task of a group new attempts.
pub fn retry_group<G: GraphRead + ?Sized>(
    g: &G,
    group: &str,
    attempts: Option<u32>,
    now: Timestamp,
) -> Result<Changes, RuleError> {
    let attempts = attempts.unwrap_or(DEFAULT_REMAINING_ATTEMPTS);
    dag::check_given_attempts("retry", attempts)?;
    let mut s = Staged::new(g);
    s.require_group(group)?;
    for id in g.incomplete_task_ids(group)? {
        let mut t = s.require(&id)?;
        if t.busy_executing || t.is_complete {
            continue;
        }
        retry_fields(&mut t, attempts, now);
        s.put(t);
    }
    Ok(s.finish())
}

/// Deletes a task and every descendant (they could never run). Refused if
/// any of them is running. [`Changes::deleted_tasks`] is the count.
pub fn delete_task<G: GraphRead + ?Sized>(g: &G, id: &str) -> Result<Changes, RuleError> {
    let mut s = Staged::new(g);
    let root = s.require(id)?;
    refuse_running(&root, "deleted")?;
    let desc = descendants(&mut s, &[id.to_string()])?;
    for d in &desc {
        let t = s.require(d)?;
        refuse_running(&t, "deleted (it depends on the task being deleted)")?;
    }
    s.delete(id)?;
    for d in desc {
        s.delete(&d)?;
    }
    Ok(s.finish())
}

/// Pauses a workgroup until `until` (an operator's pause replaces any
/// pause in force).
pub fn pause_workgroup<G: GraphRead + ?Sized>(
    g: &G,
    name: &str,
    until: Timestamp,
) -> Result<Changes, RuleError> {
    dag::check_safe_name("workgroup", name)?;
    let mut wg = g.workgroup(name)?.unwrap_or_else(|| Workgroup::new(name));
    wg.paused_until = Some(until);
    wg.paused_by_operator = true;
    Ok(Changes {
        ops: vec![Change::PutWorkgroup(wg)],
        wake: vec![],
    })
}

/// Ends a workgroup's pause now.
pub fn resume_workgroup<G: GraphRead + ?Sized>(g: &G, name: &str) -> Result<Changes, RuleError> {
    dag::check_safe_name("workgroup", name)?;
    let mut wg = g.workgroup(name)?.ok_or_else(|| RuleError::NotFound {
        what: "workgroup",
        id: name.to_string(),
    })?;
    wg.paused_until = None;
    wg.paused_by_operator = false;
    Ok(Changes {
        ops: vec![Change::PutWorkgroup(wg)],
        wake: vec![],
    })
}

/// Replaces a workgroup's limits (an empty set clears them). Its pause, if
/// any, is kept.
pub fn set_workgroup_limits<G: GraphRead + ?Sized>(
    g: &G,
    name: &str,
    limits: WorkgroupLimits,
) -> Result<Changes, RuleError> {
    dag::check_safe_name("workgroup", name)?;
    limits.validate().map_err(RuleError::Invalid)?;
    let mut wg = g.workgroup(name)?.unwrap_or_else(|| Workgroup::new(name));
    wg.limits = limits;
    Ok(Changes {
        ops: vec![Change::PutWorkgroup(wg)],
        wake: vec![],
    })
}

// ---- bulk actions ------------------------------------------------------------------

/// What [`bulk`] decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BulkOutcome {
    /// Tasks the filter matched.
    pub matched: u64,
    /// The whole action, to apply atomically.
    pub changes: Changes,
}

/// Applies one action to every task of `group` that `filter` matches (the
/// derived status at `now`), as the per-task rules do one by one, but all or
/// nothing: if the rule refuses any matched task (e.g. a running task for
/// reset, retry or delete, a complete one for retry), the whole request is
/// refused with that task's error. A matched task already deleted by an
/// earlier one (a descendant, a continuation) is skipped.
pub fn bulk<G: GraphRead + ?Sized>(
    g: &G,
    group: &str,
    action: BulkAction,
    filter: &BulkFilter,
    attempts: Option<u32>,
    now: Timestamp,
) -> Result<BulkOutcome, RuleError> {
    if g.group(group)?.is_none() {
        return Err(RuleError::group_not_found(group));
    }
    if attempts.is_some() && !matches!(action, BulkAction::Reset | BulkAction::Retry) {
        return Err(RuleError::Invalid(format!(
            "remainingAttempts applies to reset and retry, not {}",
            action.as_str()
        )));
    }
    if let Some(n) = attempts {
        dag::check_given_attempts(action.as_str(), n)?;
    }
    let matched = matching_tasks(g, group, filter, now)?;
    let mut o = crate::overlay::Overlay::new(g);
    for id in &matched {
        if o.task(id)?.is_none() {
            continue;
        }
        let ch = match action {
            BulkAction::Pause => set_task_paused(&o, id, true)?,
            BulkAction::Resume => set_task_paused(&o, id, false)?,
            BulkAction::Reset => reset_task(&o, id, attempts, now)?,
            BulkAction::Retry => retry_task(&o, id, attempts, now)?,
            BulkAction::Delete => delete_task(&o, id)?,
        };
        o.apply(ch)?;
    }
    Ok(BulkOutcome {
        matched: matched.len() as u64,
        changes: o.finish(),
    })
}

/// Ids of the tasks of `group` that `filter` matches at `now`, in the
/// group's order.
pub fn matching_tasks<G: GraphRead + ?Sized>(
    g: &G,
    group: &str,
    filter: &BulkFilter,
    now: Timestamp,
) -> Result<Vec<String>, RuleError> {
    // The search and exact fields are checked first: they need no reads.
    let any_status = BulkFilter {
        status: Vec::new(),
        ..filter.clone()
    };
    let mut out = Vec::new();
    for id in g.group_task_ids(group)? {
        let Some(t) = g.task(&id)? else { continue };
        if !any_status.matches(&t, TaskStatus::Ready) {
            continue;
        }
        if filter.status.is_empty() || filter.matches(&t, status_of(g, &t, now)?) {
            out.push(id);
        }
    }
    Ok(out)
}
