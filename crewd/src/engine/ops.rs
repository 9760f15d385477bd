//! The engine's command vocabulary and the handle other shells use.

use super::audit::Actor;
use crew_core::wire::{
    BulkRequest, BulkResult, NewTask, NewTaskGroup, TaskGroupPatch, TaskPatch, WorkerLimit,
};
use crew_core::RuleError;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// An operator command (from the REST API or the console).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Create a group, optionally with its DAG.
    CreateGroup(Box<NewTaskGroup>),
    /// Rename, pause or resume a group.
    UpdateGroup {
        /// Group id.
        id: String,
        /// Changes.
        patch: TaskGroupPatch,
    },
    /// Pause or resume a group (a flag: O(1)).
    SetGroupPaused {
        /// Group id.
        id: String,
        /// New state.
        paused: bool,
    },
    /// Delete a group and its tasks.
    DeleteGroup {
        /// Group id.
        id: String,
    },
    /// Delete a group and its tasks if it is still finished (every task
    /// complete) and has no schedule when the command applies: retention's
    /// delete, chosen from an earlier read (the group may have been given
    /// new work since). A group no longer finished is left alone.
    PruneGroup {
        /// Group id.
        id: String,
    },
    /// Reset a group (seed semantics).
    ResetGroup {
        /// Group id.
        id: String,
        /// Attempts to give (default 5).
        attempts: Option<u32>,
    },
    /// Give a group's incomplete tasks new attempts.
    RetryGroup {
        /// Group id.
        id: String,
        /// Attempts to give (default 5).
        attempts: Option<u32>,
    },
    /// Create tasks in a group as one atomic DAG.
    CreateTasks {
        /// Group id.
        group: String,
        /// The tasks.
        tasks: Vec<NewTask>,
    },
    /// Edit a task.
    UpdateTask {
        /// Task id.
        id: String,
        /// Changes.
        patch: Box<TaskPatch>,
    },
    /// Pause or resume a task.
    SetTaskPaused {
        /// Task id.
        id: String,
        /// New state.
        paused: bool,
    },
    /// Reset a task (continuations deleted, descendants reset).
    ResetTask {
        /// Task id.
        id: String,
        /// Attempts to give (default 5).
        attempts: Option<u32>,
    },
    /// Give a task new attempts.
    RetryTask {
        /// Task id.
        id: String,
        /// Attempts to give (default 5).
        attempts: Option<u32>,
    },
    /// Delete a task and its descendants.
    DeleteTask {
        /// Task id.
        id: String,
    },
    /// Pause a workgroup for a while.
    PauseWorkgroup {
        /// Workgroup name.
        name: String,
        /// How long.
        seconds: f64,
    },
    /// End a workgroup's pause.
    ResumeWorkgroup {
        /// Workgroup name.
        name: String,
    },
    /// Cancel a task's call in flight: the attempt is recorded as
    /// cancelled (none burned) and the task paused.
    CancelTask {
        /// Task id.
        id: String,
    },
    /// Apply one action to every task of a group a filter matches, in one
    /// transaction (or, on a dry run, only count).
    Bulk {
        /// Group id.
        group: String,
        /// The action, filter and options.
        request: Box<BulkRequest>,
    },
    /// Reset a group if its schedule is due (a no-op otherwise).
    ScheduledReset {
        /// Group id.
        id: String,
    },
    /// Change a worker's concurrency limit (live).
    SetWorkerLimit {
        /// Worker name.
        worker: String,
        /// Maximum calls in flight; `None` for no limit.
        max_concurrency: Option<u32>,
    },
    /// Replace a workgroup's limits (live; empty limits clear them).
    SetWorkgroupLimits {
        /// Workgroup name.
        name: String,
        /// The new limits.
        limits: crew_core::WorkgroupLimits,
    },
}

impl Op {
    /// The task a task command acts on.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Op::UpdateTask { id, .. }
            | Op::SetTaskPaused { id, .. }
            | Op::ResetTask { id, .. }
            | Op::RetryTask { id, .. }
            | Op::DeleteTask { id }
            | Op::CancelTask { id } => Some(id),
            _ => None,
        }
    }
}

/// What a command did, once committed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpOutcome {
    /// Ids of the tasks created, in request order.
    pub created_task_ids: Vec<String>,
    /// Id of the group created, if any.
    pub created_group_id: Option<String>,
    /// Tasks deleted.
    pub deleted: u64,
    /// Tasks changed.
    pub updated: u64,
    /// What a bulk action matched and did (or would do, on a dry run).
    pub bulk: Option<BulkResult>,
    /// Why a due scheduled reset was refused (the group now says so too).
    pub schedule_refused: Option<String>,
    /// The task a create of one task made, as committed: the answer when
    /// it is deleted before it can be read back.
    pub created_task: Option<Box<crew_core::Task>>,
}

/// Why a command was not applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The rules refused it (404, 409 or 422).
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// Storage could not commit; nothing was applied (503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The daemon is stopping (503).
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

impl From<crate::storage::StorageError> for EngineError {
    fn from(e: crate::storage::StorageError) -> Self {
        EngineError::Unavailable(e.to_string())
    }
}

/// Everything that reaches the engine thread.
pub(crate) enum Msg {
    /// An operator command waiting for its commit.
    Command {
        op: Op,
        actor: Actor,
        /// A task command addressed through a group applies only to a task
        /// of that group, checked in the command's own transaction.
        in_group: Option<String>,
        reply: oneshot::Sender<Result<OpOutcome, EngineError>>,
    },
    /// A worker call ended.
    Result {
        task_id: String,
        worker: String,
        /// The workgroup the call was counted against.
        workgroup: String,
        attempt: u32,
        /// The task's `createdAt` (nanoseconds) when the call started: which
        /// task of that id it was for, should the task be deleted and
        /// created again meanwhile (the new one starts at attempt 1 too).
        created: i64,
        outcome: crew_core::worker::WorkerOutcome,
    },
    /// Stop dispatching, wait for calls in flight (up to the grace period),
    /// then exit.
    Shutdown,
}

/// Live view of worker limits and calls in flight, shared with the API.
#[derive(Clone, Default)]
pub(crate) struct WorkerLoads(pub Arc<Mutex<Vec<WorkerLimit>>>);

/// Set once the engine has recovered its state from the store (every
/// incomplete task placed, interrupted calls recorded), shared with the API.
#[derive(Clone, Default)]
pub(crate) struct Ready(Arc<std::sync::atomic::AtomicBool>);

impl Ready {
    pub fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Live calls in flight per workgroup (only those with some), shared with
/// the API.
#[derive(Clone, Default)]
pub(crate) struct WorkgroupLoads(pub Arc<Mutex<HashMap<String, u32>>>);

/// How the API and the console's actions reach the engine. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    pub(crate) commands: mpsc::Sender<Msg>,
    pub(crate) loads: WorkerLoads,
    pub(crate) workgroup_loads: WorkgroupLoads,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    pub(crate) ready: Ready,
}

impl EngineHandle {
    /// Whether the engine has recovered its state from the store (every
    /// incomplete task placed, interrupted calls recorded) and dispatches.
    pub fn is_ready(&self) -> bool {
        self.ready.get()
    }

    /// Applies a command on behalf of `actor`; returns once it is durably
    /// committed (or refused). Operator actions are recorded in the audit
    /// log under the actor's name, in the same transaction.
    pub async fn execute(&self, actor: &Actor, op: Op) -> Result<OpOutcome, EngineError> {
        self.send_command(actor, op, None).await
    }

    /// [`EngineHandle::execute`] for a task command addressed through
    /// `group`: not found unless the task belongs to that group when the
    /// command applies (a check made before, in its own read, could see
    /// another task of that id: one deleted and created in another group
    /// meanwhile).
    pub async fn execute_in_group(
        &self,
        actor: &Actor,
        group: &str,
        op: Op,
    ) -> Result<OpOutcome, EngineError> {
        self.send_command(actor, op, Some(group.to_string())).await
    }

    async fn send_command(
        &self,
        actor: &Actor,
        op: Op,
        in_group: Option<String>,
    ) -> Result<OpOutcome, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Msg::Command {
                op,
                actor: actor.clone(),
                in_group,
                reply,
            })
            .map_err(|_| EngineError::ShuttingDown)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// The metrics the engine records.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Every known worker with its limit and calls in flight now.
    pub fn worker_loads(&self) -> Vec<WorkerLimit> {
        match self.loads.0.lock() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Calls in flight now per workgroup (absent: none).
    pub fn workgroup_loads(&self) -> HashMap<String, u32> {
        match self.workgroup_loads.0.lock() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
