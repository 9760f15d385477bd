//! Operator commands: what each [`Op`] changes, applied inside the
//! engine's batch, with its audit entry in the same transaction.

use super::audit::{self, Actor};
use super::ops::OpOutcome;
use super::run::Engine;
use super::Op;
use crate::storage::Batch;
use crew_core::graph::{Change, Changes};
use crew_core::rules;
use crew_core::wire::AuditEntry;
use crew_core::{RuleError, Timestamp, WorkgroupLimits};

impl Engine {
    /// Applies one command in `tx`: its rule's changes and its audit entry.
    /// A task command `in_group` applies only to a task of that group.
    pub(super) fn apply_op(
        &mut self,
        tx: &mut Batch<'_>,
        op: Op,
        actor: &Actor,
        in_group: Option<&str>,
        now: Timestamp,
    ) -> Result<Applied, ApplyError> {
        if let (Some(group), Some(id)) = (in_group, op.task_id()) {
            use crew_core::GraphRead;
            let task = tx.task(id).map_err(|e| ApplyError::Storage(e.0))?;
            if task.is_none_or(|t| t.task_group_id != group) {
                return Err(ApplyError::Rule(RuleError::NotFound {
                    what: "task",
                    id: id.to_string(),
                }));
            }
        }
        let mut described = audit::describe(&op);
        let mut applied = Applied::default();
        let ids = &mut self.ids;
        let mut gen = || ids.next_id();
        let changes = match op {
            Op::CreateGroup(spec) => {
                let ch = rules::create_group(&*tx, *spec, now, &mut gen)?;
                for c in &ch.ops {
                    match c {
                        Change::CreateGroup(g) => {
                            applied.outcome.created_group_id = Some(g.id.clone())
                        }
                        Change::CreateTask(t) => {
                            applied.outcome.created_task_ids.push(t.id.clone())
                        }
                        _ => {}
                    }
                }
                ch
            }
            Op::UpdateGroup { id, patch } => {
                if patch.is_paused == Some(false) {
                    applied.resumed_group = Some(id.clone());
                }
                rules::update_group(&*tx, &id, patch, now)?
            }
            Op::SetGroupPaused { id, paused } => {
                if !paused {
                    applied.resumed_group = Some(id.clone());
                }
                rules::set_group_paused(&*tx, &id, paused)?
            }
            Op::DeleteGroup { id } => rules::delete_group(&*tx, &id)?,
            Op::PruneGroup { id } => {
                use crew_core::GraphRead;
                let group = tx.group(&id).map_err(|e| ApplyError::Storage(e.0))?;
                let incomplete = tx
                    .group_incomplete_count(&id)
                    .map_err(|e| ApplyError::Storage(e.to_string()))?;
                if group.is_some_and(|g| g.schedule.is_none()) && incomplete == 0 {
                    rules::delete_group(&*tx, &id)?
                } else {
                    // Not an action: nothing to record.
                    described = None;
                    Changes::default()
                }
            }
            Op::ResetGroup { id, attempts } => rules::reset_group(&*tx, &id, attempts, now)?,
            Op::RetryGroup { id, attempts } => rules::retry_group(&*tx, &id, attempts, now)?,
            Op::CreateTasks { group, tasks } => {
                let one = tasks.len() == 1;
                let ch = rules::create_tasks(&*tx, &group, tasks, now, &mut gen)?;
                for c in &ch.ops {
                    if let Change::CreateTask(t) = c {
                        applied.outcome.created_task_ids.push(t.id.clone());
                        if one {
                            applied.outcome.created_task = Some(Box::new(t.clone()));
                        }
                    }
                }
                ch
            }
            Op::UpdateTask { id, patch } => rules::update_task(&*tx, &id, *patch, now)?,
            Op::SetTaskPaused { id, paused } => rules::set_task_paused(&*tx, &id, paused)?,
            Op::ResetTask { id, attempts } => rules::reset_task(&*tx, &id, attempts, now)?,
            Op::RetryTask { id, attempts } => rules::retry_task(&*tx, &id, attempts, now)?,
            Op::DeleteTask { id } => rules::delete_task(&*tx, &id)?,
            Op::PauseWorkgroup { name, seconds } => {
                // Its parked tasks wake at the new end, which may be sooner.
                applied.released_workgroup = Some(name.clone());
                rules::pause_workgroup(&*tx, &name, now.plus_seconds(seconds))?
            }
            Op::ResumeWorkgroup { name } => {
                applied.released_workgroup = Some(name.clone());
                rules::resume_workgroup(&*tx, &name)?
            }
            Op::Bulk { group, request } => {
                let out = rules::bulk(
                    &*tx,
                    &group,
                    request.action,
                    &request.filter,
                    request.remaining_attempts,
                    now,
                )?;
                applied.outcome.bulk = Some(crew_core::wire::BulkResult {
                    matched: out.matched,
                    deleted: out.changes.deleted_tasks(),
                    updated: out.changes.updated_tasks(),
                    dry_run: request.dry_run,
                });
                if request.dry_run {
                    Changes::default()
                } else {
                    out.changes
                }
            }
            Op::ScheduledReset { id } => {
                let due = rules::scheduled_reset(&*tx, &id, now)?;
                if due.refused.is_some() {
                    // Recording the refusal on the group is not an action.
                    described = None;
                }
                applied.outcome.schedule_refused = due.refused;
                due.changes
            }
            Op::CancelTask { id } => {
                applied.cancelled = Some(id.clone());
                rules::cancel_attempt(&*tx, &id, now)?
            }
            Op::SetWorkerLimit {
                worker,
                max_concurrency,
            } => {
                crew_core::dag::check_safe_name("worker", &worker)?;
                check_worker_concurrency(max_concurrency)?;
                tx.set_worker_limit(&worker, max_concurrency, now)
                    .map_err(|e| ApplyError::Storage(e.to_string()))?;
                applied.limit = Some((worker, max_concurrency));
                Changes::default()
            }
            Op::SetWorkgroupLimits { name, limits } => {
                let ch = rules::set_workgroup_limits(&*tx, &name, limits)?;
                applied.workgroup_limits = Some((name, limits));
                ch
            }
        };
        tx.apply(&changes, now)
            .map_err(|e| ApplyError::Storage(e.to_string()))?;
        applied.outcome.deleted = changes.deleted_tasks();
        applied.outcome.updated = changes.updated_tasks();
        if let Some(d) = described {
            record_audit(tx, d, actor, &applied.outcome, &changes, now)
                .map_err(|e| ApplyError::Storage(e.to_string()))?;
        }
        applied.changes = changes;
        Ok(applied)
    }
}

/// A worker's limit runs from 1 to a workgroup's largest, as
/// `--worker-concurrency` and workgroup limits do: at 0 the worker's tasks
/// would wait for ever (pausing their workgroup is the way to hold them).
fn check_worker_concurrency(n: Option<u32>) -> Result<(), RuleError> {
    let max = crew_core::model::MAX_WORKGROUP_CONCURRENCY;
    match n {
        Some(n) if !(1..=max).contains(&n) => Err(RuleError::Invalid(format!(
            "maxConcurrency must be from 1 to {max} (or null for no limit), got {n}"
        ))),
        _ => Ok(()),
    }
}

#[derive(Default)]
/// What a command changed, and what the engine does about it after the
/// commit.
pub(super) struct Applied {
    pub(super) cancelled: Option<String>,
    pub(super) outcome: OpOutcome,
    pub(super) changes: Changes,
    pub(super) resumed_group: Option<String>,
    /// A workgroup whose parked tasks are placed again: resumed, or paused
    /// until another time.
    pub(super) released_workgroup: Option<String>,
    pub(super) limit: Option<(String, Option<u32>)>,
    pub(super) workgroup_limits: Option<(String, WorkgroupLimits)>,
}

/// Why a command was not applied: the rule refused it, or the storage
/// failed (the batch is then dropped).
pub(super) enum ApplyError {
    Rule(RuleError),
    Storage(String),
}

impl From<RuleError> for ApplyError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Store(s) => ApplyError::Storage(s.0),
            other => ApplyError::Rule(other),
        }
    }
}

/// Writes the audit entry of an action, in the action's own transaction.
fn record_audit(
    tx: &mut Batch<'_>,
    d: audit::Described,
    actor: &Actor,
    outcome: &OpOutcome,
    changes: &Changes,
    now: Timestamp,
) -> Result<(), crate::storage::StorageError> {
    if d.only_if_changed && changes.is_empty() {
        return Ok(());
    }
    let affected = match &d.holds {
        audit::Holds::Changed => outcome.deleted + outcome.updated,
        audit::Holds::Group(id) => tx.group_incomplete_count(id)?,
        audit::Holds::Workgroup(name) => tx.workgroup_incomplete_count(name)?,
        audit::Holds::Nothing => 0,
    };
    tx.record_audit(
        AuditEntry {
            seq: 0,
            at: now,
            actor: actor.name().to_string(),
            action: d.action,
            target: d.target,
            affected,
            detail: d.detail,
        },
        now,
    )?;
    Ok(())
}
