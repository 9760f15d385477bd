//! What the audit log says about a command: its action name, target and
//! parameters. The entry itself is written by the engine in the command's
//! own transaction, so it exists exactly when the action was committed.

use super::ops::Op;
use crew_core::wire::{BulkRequest, TaskGroupPatch, TaskPatch};
use std::sync::Arc;

/// Who asks the engine for a command: an API token's name, or a part of the
/// daemon acting on its own (`schedule`, `retention`, `demo`). The audit log
/// names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor(Arc<str>);

impl Actor {
    /// An actor by name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Actor(name.into())
    }

    /// The name the audit log shows.
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// How many tasks an audited action affects, beyond those it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Holds {
    /// The tasks it changed or deleted.
    Changed,
    /// The incomplete tasks of this group (pause and resume are one flag).
    Group(String),
    /// The incomplete tasks of this workgroup.
    Workgroup(String),
    /// No task (a worker limit).
    Nothing,
}

/// An operator action, described before it is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Described {
    /// E.g. `task.reset`.
    pub action: String,
    /// E.g. `task/<id>`.
    pub target: String,
    /// Parameters worth knowing.
    pub detail: Option<String>,
    /// What to count as affected.
    pub holds: Holds,
    /// Recorded only when it changed something (the daemon's own checks,
    /// such as a scheduled reset that was not due, are not actions).
    pub only_if_changed: bool,
}

/// Describes an operator action for the audit log; `None` for commands that
/// are not one (creating groups and tasks is what clients do all day).
pub(super) fn describe(op: &Op) -> Option<Described> {
    let d = |action: &str, target: String, detail: Option<String>, holds: Holds| {
        Some(Described {
            action: action.to_string(),
            target,
            detail,
            holds,
            only_if_changed: false,
        })
    };
    let group = |id: &str| format!("group/{id}");
    let task = |id: &str| format!("task/{id}");
    match op {
        Op::CreateGroup(_) | Op::CreateTasks { .. } => None,
        Op::UpdateGroup { id, patch } => {
            let holds = if patch.is_paused.is_some() {
                Holds::Group(id.clone())
            } else {
                Holds::Changed
            };
            // A patch that changes nothing is no action.
            Some(Described {
                only_if_changed: true,
                ..d("group.update", group(id), group_patch_fields(patch), holds)?
            })
        }
        Op::SetGroupPaused { id, paused } => d(
            if *paused {
                "group.pause"
            } else {
                "group.resume"
            },
            group(id),
            None,
            Holds::Group(id.clone()),
        ),
        Op::DeleteGroup { id } | Op::PruneGroup { id } => {
            d("group.delete", group(id), None, Holds::Changed)
        }
        Op::ResetGroup { id, attempts } => d(
            "group.reset",
            group(id),
            attempts_detail(*attempts),
            Holds::Changed,
        ),
        Op::RetryGroup { id, attempts } => d(
            "group.retry",
            group(id),
            attempts_detail(*attempts),
            Holds::Changed,
        ),
        Op::ScheduledReset { id } => Some(Described {
            only_if_changed: true,
            ..d("group.scheduled-reset", group(id), None, Holds::Changed)?
        }),
        Op::Bulk { group: id, request } => {
            if request.dry_run {
                return None;
            }
            d(
                &format!("bulk.{}", request.action.as_str()),
                group(id),
                Some(bulk_detail(request)),
                Holds::Changed,
            )
        }
        Op::UpdateTask { id, patch } => Some(Described {
            only_if_changed: true,
            ..d(
                "task.update",
                task(id),
                task_patch_fields(patch),
                Holds::Changed,
            )?
        }),
        Op::SetTaskPaused { id, paused } => d(
            if *paused { "task.pause" } else { "task.resume" },
            task(id),
            None,
            Holds::Changed,
        ),
        Op::ResetTask { id, attempts } => d(
            "task.reset",
            task(id),
            attempts_detail(*attempts),
            Holds::Changed,
        ),
        Op::RetryTask { id, attempts } => d(
            "task.retry",
            task(id),
            attempts_detail(*attempts),
            Holds::Changed,
        ),
        Op::DeleteTask { id } => d("task.delete", task(id), None, Holds::Changed),
        Op::CancelTask { id } => d("task.cancel", task(id), None, Holds::Changed),
        Op::PauseWorkgroup { name, seconds } => d(
            "workgroup.pause",
            format!("workgroup/{name}"),
            Some(format!("for {seconds} s")),
            Holds::Workgroup(name.clone()),
        ),
        Op::ResumeWorkgroup { name } => d(
            "workgroup.resume",
            format!("workgroup/{name}"),
            None,
            Holds::Workgroup(name.clone()),
        ),
        Op::SetWorkerLimit {
            worker,
            max_concurrency,
        } => d(
            "worker.limit",
            format!("worker/{worker}"),
            Some(match max_concurrency {
                Some(n) => format!("maxConcurrency {n}"),
                None => "no limit".to_string(),
            }),
            Holds::Nothing,
        ),
        Op::SetWorkgroupLimits { name, limits } => d(
            "workgroup.limit",
            format!("workgroup/{name}"),
            Some(limits.to_string()),
            Holds::Workgroup(name.clone()),
        ),
    }
}

fn attempts_detail(attempts: Option<u32>) -> Option<String> {
    attempts.map(|n| format!("remainingAttempts {n}"))
}

fn bulk_detail(request: &BulkRequest) -> String {
    let filter = serde_json::to_string(&request.filter).unwrap_or_default();
    match request.remaining_attempts {
        Some(n) => format!("filter {filter}, remainingAttempts {n}"),
        None => format!("filter {filter}"),
    }
}

/// The names of the fields a group edit sets.
fn group_patch_fields(p: &TaskGroupPatch) -> Option<String> {
    let set = [
        ("name", p.name.is_some()),
        ("isPaused", p.is_paused.is_some()),
        ("schedule", p.schedule.is_some()),
    ];
    fields(&set)
}

/// The names of the fields a task edit sets (values may be large or
/// private: the task's own history has them).
fn task_patch_fields(p: &TaskPatch) -> Option<String> {
    let set = [
        ("name", p.name.is_some()),
        ("worker", p.worker.is_some()),
        ("workgroup", p.workgroup.is_some()),
        ("key", p.key.is_some()),
        ("remainingAttempts", p.remaining_attempts.is_some()),
        ("isPaused", p.is_paused.is_some()),
        ("isComplete", p.is_complete.is_some()),
        ("runAfter", p.run_after.is_some()),
        ("isSeed", p.is_seed.is_some()),
        ("errorDelayInSeconds", p.error_delay_in_seconds.is_some()),
        ("timeoutInSeconds", p.timeout_in_seconds.is_some()),
        ("input", p.input.is_some()),
        ("output", p.output.is_some()),
        ("parentIds", p.parent_ids.is_some()),
    ];
    fields(&set)
}

fn fields(set: &[(&str, bool)]) -> Option<String> {
    let names: Vec<&str> = set.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
    (!names.is_empty()).then(|| format!("set {}", names.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_are_not_audited_and_dry_runs_neither() {
        let create = Op::CreateTasks {
            group: "g".into(),
            tasks: vec![],
        };
        assert_eq!(describe(&create), None);
        let dry: BulkRequest =
            serde_json::from_str(r#"{"action":"delete","dryRun":true}"#).unwrap();
        let op = Op::Bulk {
            group: "g".into(),
            request: Box::new(dry),
        };
        assert_eq!(describe(&op), None);
    }

    #[test]
    fn bulk_names_action_and_filter() {
        let req: BulkRequest =
            serde_json::from_str(r#"{"action":"reset","filter":{"status":["failed"]}}"#).unwrap();
        let d = describe(&Op::Bulk {
            group: "g1".into(),
            request: Box::new(req),
        })
        .unwrap();
        assert_eq!(d.action, "bulk.reset");
        assert_eq!(d.target, "group/g1");
        assert_eq!(d.detail.as_deref(), Some(r#"filter {"status":["failed"]}"#));
    }

    #[test]
    fn edits_name_fields_not_values() {
        let patch: TaskPatch =
            serde_json::from_str(r#"{"name":"secret-ish","input":{"k":1}}"#).unwrap();
        let d = describe(&Op::UpdateTask {
            id: "t".into(),
            patch: Box::new(patch),
        })
        .unwrap();
        assert_eq!(d.detail.as_deref(), Some("set name, input"));
    }
}
