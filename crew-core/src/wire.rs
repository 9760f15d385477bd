//! Wire types shared by the daemon and its clients: REST bodies, the worker
//! protocol (crew-go's) and the event stream.

use crate::model::{Task, TaskGroup, TaskStatus, Workgroup, WorkgroupLimits};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---- REST: requests ---------------------------------------------------------

/// A task to create, as a client sends it. Server-owned fields
/// (`isComplete`, `output`, `errors`, `busyExecuting`) are refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTask {
    /// Client-chosen id; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Optional; when present it must name the group in the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_group_id: Option<String>,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// The worker that executes it.
    #[serde(default)]
    pub worker: String,
    /// Rate-limit domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workgroup: String,
    /// Duplicate-merge key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Tries before `failed` (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_attempts: Option<u32>,
    /// Created paused.
    #[serde(default)]
    pub is_paused: bool,
    /// Not before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_after: Option<Timestamp>,
    /// Survives a group reset.
    #[serde(default)]
    pub is_seed: bool,
    /// Delay after a failure (default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_delay_in_seconds: Option<u64>,
    /// Worker call timeout for this task, in seconds (1 to 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_seconds: Option<u64>,
    /// crew-go's priority (kept, unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// crew-go's progress weight (kept, unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_weight: Option<i64>,
    /// Any JSON for the worker.
    #[serde(default)]
    pub input: Value,
    /// Parents in the same group (existing or in the same batch).
    #[serde(default)]
    pub parent_ids: Vec<String>,
}

/// One task or a whole DAG: `POST /api/v1/task_group/:id/tasks` takes either.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum NewTasks {
    /// A JSON array, created atomically as one DAG.
    Many(#[serde(deserialize_with = "crate::object_only::vec")] Vec<NewTask>),
    /// A single task (crew-go's form).
    One(#[serde(deserialize_with = "crate::object_only::boxed")] Box<NewTask>),
}

impl NewTasks {
    /// The tasks as a list.
    pub fn into_vec(self) -> Vec<NewTask> {
        match self {
            NewTasks::Many(v) => v,
            NewTasks::One(t) => vec![*t],
        }
    }
}

/// A group to create, optionally with its whole DAG in the same transaction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTaskGroup {
    /// Client-chosen id; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Created paused.
    #[serde(default)]
    pub is_paused: bool,
    /// Tasks created with the group, atomically.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::object_only::vec"
    )]
    pub tasks: Vec<NewTask>,
    /// A cron expression (UTC) on which the group resets itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// Changes to a group (`PUT /api/v1/task_group/:id`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaskGroupPatch {
    /// Must match the path when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pause or resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_paused: Option<bool>,
    /// Set a recurring reset (a cron expression); an empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// Changes to a task (`PUT .../task/:tid`). crew-go clients send the whole
/// task back: read-only fields are accepted when unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaskPatch {
    /// Must match the path when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Must match the path when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_group_id: Option<String>,
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// New workgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workgroup: Option<String>,
    /// New key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// New attempt budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_attempts: Option<u32>,
    /// Pause or resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_paused: Option<bool>,
    /// Mark complete (with `output`) or incomplete by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_complete: Option<bool>,
    /// New schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_after: Option<Timestamp>,
    /// Seed flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_seed: Option<bool>,
    /// New delay after failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_delay_in_seconds: Option<u64>,
    /// Worker call timeout for this task, in seconds (1 to 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_seconds: Option<u64>,
    /// New input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// New output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Must equal the current parents when present (edges are not edited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_ids: Option<Vec<String>>,
    /// Read-only: when present, must equal the task's (another value means
    /// the body describes another task of that id, deleted and created
    /// again since it was read): 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Read-only: when present, must equal the task's (a body read while
    /// an attempt ran, sent back after it ended, would undo its result):
    /// 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_executing: Option<bool>,
}

/// Body of reset and retry (`{remainingAttempts}`); all optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttemptsRequest {
    /// Attempts to give (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_attempts: Option<u32>,
}

/// Body of a workgroup pause.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PauseRequest {
    /// How long to pause (default: one hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// Body of a worker limit change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkerLimitRequest {
    /// Maximum calls in flight for this worker; `null` for no limit.
    pub max_concurrency: Option<u32>,
}

/// Body of `PUT /api/v1/workgroup/:name/limit`: the workgroup's limits,
/// replaced whole (`null` or absent: no such limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkgroupLimitRequest {
    /// Most calls in flight at once for the workgroup's tasks.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Most starts per second (a token bucket).
    #[serde(default)]
    pub max_rate: Option<f64>,
    /// Starts allowed at once (only with `maxRate`; default: the rate
    /// rounded up, at least 1).
    #[serde(default)]
    pub burst: Option<u32>,
}

impl From<WorkgroupLimitRequest> for WorkgroupLimits {
    fn from(r: WorkgroupLimitRequest) -> Self {
        WorkgroupLimits {
            max_concurrency: r.max_concurrency,
            max_rate: r.max_rate,
            burst: r.burst,
        }
    }
}

impl From<WorkgroupLimits> for WorkgroupLimitRequest {
    fn from(l: WorkgroupLimits) -> Self {
        WorkgroupLimitRequest {
            max_concurrency: l.max_concurrency,
            max_rate: l.max_rate,
            burst: l.burst,
        }
    }
}

/// What a bulk request does to every task its filter matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum BulkAction {
    /// Pause the tasks (a running task pauses after its attempt).
    Pause,
    /// Resume the tasks.
    Resume,
    /// Reset the tasks, as `POST /task/:id/reset` does one by one.
    Reset,
    /// Give the tasks new attempts, as `POST /task/:id/retry` does.
    Retry,
    /// Delete the tasks and their descendants.
    Delete,
}

impl BulkAction {
    /// The action's name on the wire (`pause`, `reset`...).
    pub fn as_str(&self) -> &'static str {
        match self {
            BulkAction::Pause => "pause",
            BulkAction::Resume => "resume",
            BulkAction::Reset => "reset",
            BulkAction::Retry => "retry",
            BulkAction::Delete => "delete",
        }
    }
}

/// Which tasks of a group a bulk request applies to: every condition given
/// must hold. The console's task filter means the same thing
/// ([`BulkFilter::matches`] is the one definition both use).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkFilter {
    /// The task's derived status is one of these (absent or empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<TaskStatus>,
    /// The task's worker is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The task's workgroup is exactly this (`""`: no workgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workgroup: Option<String>,
    /// Case-insensitive substring of the task's name, id or worker (empty:
    /// any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
}

impl BulkFilter {
    /// Whether `task`, whose derived status is `status`, passes the filter.
    pub fn matches(&self, task: &Task, status: TaskStatus) -> bool {
        if !self.status.is_empty() && !self.status.contains(&status) {
            return false;
        }
        if self.worker.as_deref().is_some_and(|w| w != task.worker) {
            return false;
        }
        if self
            .workgroup
            .as_deref()
            .is_some_and(|w| w != task.workgroup)
        {
            return false;
        }
        match self.search.as_deref().map(search_needle) {
            Some(needle) if !needle.is_empty() => {
                search_matches(&needle, [&task.name, &task.id, &task.worker])
            }
            _ => true,
        }
    }
}

/// A search text as [`search_matches`] expects it: lowercased (not
/// trimmed). An empty needle matches everything.
pub fn search_needle(text: &str) -> String {
    text.to_lowercase()
}

/// The task search the console and bulk actions share: whether one of
/// `fields` (a task's name, id and worker), lowercased, contains `needle`
/// (from [`search_needle`]). A match never spans two fields.
pub fn search_matches<S: AsRef<str>>(needle: &str, fields: [S; 3]) -> bool {
    needle.is_empty()
        || fields
            .iter()
            .any(|f| contains_lowercased(f.as_ref(), needle))
}

/// Whether `field`, lowercased, contains `needle` (lowercased, not empty).
fn contains_lowercased(field: &str, needle: &str) -> bool {
    if field.is_ascii() && needle.is_ascii() {
        // No allocation in the common case.
        let n = needle.as_bytes();
        field
            .as_bytes()
            .windows(n.len())
            .any(|w| w.eq_ignore_ascii_case(n))
    } else {
        field.to_lowercase().contains(needle)
    }
}

/// Body of `POST /api/v1/task_group/:id/bulk`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkRequest {
    /// What to do.
    pub action: BulkAction,
    /// To which tasks (absent: every task of the group).
    #[serde(default)]
    pub filter: BulkFilter,
    /// Count the matching tasks and what the action would change, without
    /// changing anything.
    #[serde(default)]
    pub dry_run: bool,
    /// Attempts to give (`reset` and `retry` only; default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_attempts: Option<u32>,
}

// ---- REST: responses --------------------------------------------------------

/// Every API error: `{"error": "..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
}

/// What an API token may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum TokenScope {
    /// Everything: reads, the stream, metrics and every action.
    #[default]
    Admin,
    /// Reads, the stream and metrics; every action is refused (403).
    ReadOnly,
}

impl TokenScope {
    /// The name used in configuration and messages: `admin` or `read-only`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenScope::Admin => "admin",
            TokenScope::ReadOnly => "read-only",
        }
    }
}

/// `GET /api/v1/whoami`: the caller's token name and scope, so a client
/// can adapt (a console switches to read-only mode by itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// The token's configured name (`default` for `--token`, `anonymous`
    /// when auth is off).
    pub name: String,
    /// What the token may do.
    pub scope: TokenScope,
}

/// Number of tasks in each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StatusCounts {
    /// Completed tasks.
    pub completed: u64,
    /// Tasks with a call in flight.
    pub running: u64,
    /// Paused tasks (task, group or workgroup).
    pub paused: u64,
    /// Tasks waiting on parents.
    pub waiting: u64,
    /// Tasks delayed by `runAfter` or a workgroup pause.
    pub delayed: u64,
    /// Tasks ready to run.
    pub ready: u64,
    /// Tasks with no attempts left.
    pub failed: u64,
}

impl StatusCounts {
    /// The count for one status.
    pub fn get(&self, s: TaskStatus) -> u64 {
        match s {
            TaskStatus::Completed => self.completed,
            TaskStatus::Running => self.running,
            TaskStatus::Paused => self.paused,
            TaskStatus::Waiting => self.waiting,
            TaskStatus::Delayed => self.delayed,
            TaskStatus::Ready => self.ready,
            TaskStatus::Failed => self.failed,
        }
    }

    /// Mutable count for one status.
    pub fn get_mut(&mut self, s: TaskStatus) -> &mut u64 {
        match s {
            TaskStatus::Completed => &mut self.completed,
            TaskStatus::Running => &mut self.running,
            TaskStatus::Paused => &mut self.paused,
            TaskStatus::Waiting => &mut self.waiting,
            TaskStatus::Delayed => &mut self.delayed,
            TaskStatus::Ready => &mut self.ready,
            TaskStatus::Failed => &mut self.failed,
        }
    }

    /// All tasks counted.
    pub fn total(&self) -> u64 {
        TaskStatus::ALL.iter().map(|s| self.get(*s)).sum()
    }

    /// Completed share in percent (100 for an empty group).
    pub fn completed_percent(&self) -> f64 {
        completed_percent(self.completed, self.total())
    }

    /// [`whole_percent`] of these counts.
    pub fn whole_percent(&self) -> u8 {
        whole_percent(self.completed, self.total())
    }
}

/// `completed` of `total` tasks in percent (100 for no task): a group's
/// `completedPercent`.
pub fn completed_percent(completed: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        completed as f64 * 100.0 / total as f64
    }
}

/// `completed` of `total` tasks in whole percent, rounded down, so that
/// only a group with every task complete (or none) reads 100: what
/// [`GroupSort::Progress`] orders by, and what the console shows.
pub fn whole_percent(completed: u64, total: u64) -> u8 {
    if total == 0 {
        100
    } else {
        let p = u128::from(completed.min(total)) * 100 / u128::from(total);
        u8::try_from(p).unwrap_or(100)
    }
}

/// A group as the API shows it: crew-go's fields plus counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaskGroupView {
    /// The stored group.
    #[serde(flatten)]
    pub group: TaskGroup,
    /// Tasks by derived status.
    #[serde(default)]
    pub counts: StatusCounts,
    /// Completed share in percent.
    #[serde(default)]
    pub completed_percent: f64,
}

/// `GET /api/v1/task_groups`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaskGroupList {
    /// One page of groups.
    pub task_groups: Vec<TaskGroupView>,
    /// Groups matching the query, over all pages.
    pub count: u64,
}

/// The order of `GET /api/v1/task_groups` (its `sort` parameter). Ties go
/// by id, so that pages do not overlap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum GroupSort {
    /// Newest first (the default, and crew-go's order).
    #[default]
    Newest,
    /// By name.
    Name,
    /// Least complete first, in whole percent ([`whole_percent`]).
    Progress,
    /// Most failed tasks first.
    Failed,
}

impl GroupSort {
    /// Every order, in the order the console cycles through them.
    pub const ALL: [GroupSort; 4] = [
        GroupSort::Newest,
        GroupSort::Name,
        GroupSort::Progress,
        GroupSort::Failed,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupSort::Newest => "newest",
            GroupSort::Name => "name",
            GroupSort::Progress => "progress",
            GroupSort::Failed => "failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        GroupSort::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The order after this one in [`GroupSort::ALL`], wrapping around.
    pub fn next(self) -> Self {
        let i = GroupSort::ALL.iter().position(|o| *o == self).unwrap_or(0);
        GroupSort::ALL[(i + 1) % GroupSort::ALL.len()]
    }

    /// Compares two groups in this order: the one to list first is `Less`.
    pub fn compare(&self, a: &TaskGroupView, b: &TaskGroupView) -> std::cmp::Ordering {
        let by_id = || a.group.id.cmp(&b.group.id);
        match self {
            // As the daemon's time index lists them: by whole millisecond,
            // newest first, and ties by id, the greater first.
            GroupSort::Newest => (b.group.created_at.unix_millis(), &b.group.id)
                .cmp(&(a.group.created_at.unix_millis(), &a.group.id)),
            GroupSort::Name => a.group.name.cmp(&b.group.name).then_with(by_id),
            GroupSort::Progress => a
                .counts
                .whole_percent()
                .cmp(&b.counts.whole_percent())
                .then_with(by_id),
            GroupSort::Failed => b.counts.failed.cmp(&a.counts.failed).then_with(by_id),
        }
    }
}

/// `GET /api/v1/task_group/:id/tasks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskList {
    /// One page of tasks (with `status` filled in).
    pub tasks: Vec<Task>,
    /// Tasks matching the query, over all pages.
    pub count: u64,
}

/// `GET /api/v1/task_group/:id/progress`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Completed share in percent.
    pub completed_percent: f64,
}

/// The answer to a delete, reset or retry: how many tasks it touched.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    /// Tasks deleted.
    #[serde(default)]
    pub deleted: u64,
    /// Tasks changed (reset, retried, paused...).
    #[serde(default)]
    pub updated: u64,
}

/// The answer to a bulk request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkResult {
    /// Tasks the filter matched.
    pub matched: u64,
    /// Tasks deleted (descendants included), or that would be on a dry run.
    pub deleted: u64,
    /// Tasks changed, or that would be on a dry run.
    pub updated: u64,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// A workgroup as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkgroupView {
    /// The stored workgroup.
    #[serde(flatten)]
    pub workgroup: Workgroup,
    /// Incomplete tasks that belong to it.
    #[serde(default)]
    pub incomplete_tasks: u64,
    /// Its tasks' worker calls in flight now.
    #[serde(default)]
    pub in_flight: u32,
}

/// `GET /api/v1/workgroups`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkgroupList {
    /// Every workgroup that has tasks or a pause.
    pub workgroups: Vec<WorkgroupView>,
}

/// A worker's limit and its current load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkerLimit {
    /// The worker name.
    pub worker: String,
    /// Maximum calls in flight; `None` for no limit.
    pub max_concurrency: Option<u32>,
    /// Calls in flight now.
    #[serde(default)]
    pub in_flight: u32,
}

/// `GET /api/v1/workers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerList {
    /// Known workers.
    pub workers: Vec<WorkerLimit>,
}

// ---- Audit log ------------------------------------------------------------------

/// One operator action, as the audit log keeps it: who did what to which
/// target, when, and how many tasks it affected. Recorded in the same
/// transaction as the action itself, so the log never misses a committed
/// action nor shows one that was refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Strictly increasing across the daemon (its own sequence, not the
    /// event stream's).
    pub seq: u64,
    /// When the action was committed.
    pub at: Timestamp,
    /// The token's name (`anonymous` when auth is off), or the daemon part
    /// that acted on its own (`schedule`, `retention`).
    pub actor: String,
    /// What was done, e.g. `task.reset`, `group.pause`, `bulk.delete`,
    /// `worker.limit`.
    pub action: String,
    /// What it was done to, e.g. `task/<id>`, `group/<id>`,
    /// `workgroup/<name>`, `worker/<name>`.
    pub target: String,
    /// Tasks affected: those changed or deleted, or for a group or
    /// workgroup pause and resume, the incomplete tasks it holds or
    /// releases.
    pub affected: u64,
    /// Parameters worth knowing (pause length, new limit, bulk filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /api/v1/audit`: newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditList {
    /// The entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` to get the next (older) page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

// ---- Worker protocol ----------------------------------------------------------

/// What Crew POSTs to a worker (crew-go's payload).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkerPayload {
    /// The task being executed.
    pub task_id: String,
    /// Its worker.
    pub worker: String,
    /// Its input.
    pub input: Value,
    /// Every parent, with its output.
    pub parents: Vec<ParentPayload>,
}

/// One parent in a [`WorkerPayload`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ParentPayload {
    /// Parent id.
    pub task_id: String,
    /// Parent worker.
    pub worker: String,
    /// Parent input.
    pub input: Value,
    /// Parent output.
    pub output: Value,
}

/// What a worker answers. Lenient: unknown fields are ignored, delays may be
/// fractional, `children` may be `null`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkerResponse {
    /// The task's output.
    #[serde(default)]
    pub output: Value,
    /// Continuations, created atomically with the completion.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::object_only::option_vec"
    )]
    pub children: Option<Vec<ChildTask>>,
    /// Pause the task's workgroup this long (a rate limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workgroup_delay_in_seconds: Option<f64>,
    /// Delay every child this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children_delay_in_seconds: Option<f64>,
    /// Present and not null means failure.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub error: Value,
}

/// A continuation as a worker describes it. Lenient like
/// [`WorkerResponse`]; server-owned fields a worker may echo are ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChildTask {
    /// Chosen id; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Worker.
    #[serde(default)]
    pub worker: String,
    /// Workgroup.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workgroup: String,
    /// Duplicate key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_attempts: Option<u32>,
    /// Created paused.
    #[serde(default)]
    pub is_paused: bool,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_after: Option<Timestamp>,
    /// Seed flag.
    #[serde(default)]
    pub is_seed: bool,
    /// Delay after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_delay_in_seconds: Option<u64>,
    /// Worker call timeout for this task, in seconds (1 to 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_seconds: Option<u64>,
    /// Input.
    #[serde(default)]
    pub input: Value,
    /// Parents: siblings in the same response or tasks of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_ids: Option<Vec<String>>,
}

impl From<ChildTask> for NewTask {
    fn from(c: ChildTask) -> Self {
        NewTask {
            id: c.id,
            task_group_id: None,
            name: c.name,
            worker: c.worker,
            workgroup: c.workgroup,
            key: c.key,
            remaining_attempts: c.remaining_attempts,
            is_paused: c.is_paused,
            run_after: c.run_after,
            is_seed: c.is_seed,
            error_delay_in_seconds: c.error_delay_in_seconds,
            timeout_in_seconds: c.timeout_in_seconds,
            priority: None,
            progress_weight: None,
            input: c.input,
            parent_ids: c.parent_ids.unwrap_or_default(),
        }
    }
}

// ---- Event stream ---------------------------------------------------------------

/// One message on `/api/v1/events`: a sequence number and what happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamMessage {
    /// Strictly increasing across the daemon; for `resync`, the latest
    /// sequence at that moment (resume from it after refetching).
    pub seq: u64,
    /// When the change was committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// A state change, carrying the changed entity whole (under crew-go's keys).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type")]
pub enum Event {
    /// A task was created.
    #[serde(rename = "task.created")]
    TaskCreated {
        /// The new task, with its status.
        task: Box<Task>,
    },
    /// A task changed.
    #[serde(rename = "task.updated")]
    TaskUpdated {
        /// The task as it is now, with its status.
        task: Box<Task>,
    },
    /// A task was deleted.
    #[serde(rename = "task.deleted")]
    TaskDeleted {
        /// The task as it was.
        task: Box<Task>,
    },
    /// A group was created.
    #[serde(rename = "group.created")]
    GroupCreated {
        /// The new group.
        #[serde(rename = "taskGroup")]
        task_group: TaskGroup,
    },
    /// A group changed (renamed, paused, resumed).
    #[serde(rename = "group.updated")]
    GroupUpdated {
        /// The group as it is now.
        #[serde(rename = "taskGroup")]
        task_group: TaskGroup,
    },
    /// A group and all its tasks were deleted.
    #[serde(rename = "group.deleted")]
    GroupDeleted {
        /// The group as it was.
        #[serde(rename = "taskGroup")]
        task_group: TaskGroup,
    },
    /// A workgroup was paused, resumed or given new limits.
    #[serde(rename = "workgroup.updated")]
    WorkgroupUpdated {
        /// The workgroup as it is now.
        workgroup: Workgroup,
    },
    /// A worker's limit changed.
    #[serde(rename = "worker.updated")]
    WorkerUpdated {
        /// The worker's limit.
        worker: WorkerLimit,
    },
    /// An operator action was committed (see [`AuditEntry`]).
    #[serde(rename = "audit.recorded")]
    AuditRecorded {
        /// The audit log's entry.
        entry: AuditEntry,
    },
    /// The client missed events (too old `since`, or it fell behind):
    /// refetch a snapshot over REST, then resume from `seq`.
    #[serde(rename = "resync")]
    Resync {
        /// Why.
        reason: String,
    },
}

impl Event {
    /// The group this event concerns, if any (for per-group subscriptions).
    pub fn group_id(&self) -> Option<&str> {
        match self {
            Event::TaskCreated { task }
            | Event::TaskUpdated { task }
            | Event::TaskDeleted { task } => Some(&task.task_group_id),
            Event::GroupCreated { task_group }
            | Event::GroupUpdated { task_group }
            | Event::GroupDeleted { task_group } => Some(&task_group.id),
            Event::WorkgroupUpdated { .. }
            | Event::WorkerUpdated { .. }
            | Event::AuditRecorded { .. }
            | Event::Resync { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, name: &str, worker: &str, workgroup: &str) -> Task {
        serde_json::from_value(serde_json::json!({
            "id": id, "taskGroupId": "g", "name": name,
            "worker": worker, "workgroup": workgroup,
        }))
        .unwrap()
    }

    /// Newest first as the daemon's time index lists groups: by whole
    /// millisecond, ties by id, the greater first. The console re-sorts
    /// pages with this: a difference moved rows under the selection.
    #[test]
    fn newest_first_orders_as_the_daemon_lists() {
        let view = |id: &str, at: &str| TaskGroupView {
            group: serde_json::from_value(serde_json::json!({
                "id": id, "createdAt": at,
            }))
            .unwrap(),
            counts: StatusCounts::default(),
            completed_percent: 0.0,
        };
        let mut views = [
            view("a", "2026-01-01T00:00:00.000900Z"),
            view("c", "2026-01-01T00:00:00.000100Z"),
            view("b", "2026-01-01T00:00:00.000500Z"),
            view("old", "2025-01-01T00:00:00Z"),
            view("new", "2026-01-01T00:00:00.001Z"),
        ];
        views.sort_by(|x, y| GroupSort::Newest.compare(x, y));
        let ids: Vec<&str> = views.iter().map(|v| v.group.id.as_str()).collect();
        assert_eq!(ids, ["new", "c", "b", "a", "old"]);
    }

    #[test]
    fn whole_percent_reads_100_only_when_every_task_is_complete() {
        assert_eq!(whole_percent(0, 0), 100);
        assert_eq!(whole_percent(0, 3), 0);
        assert_eq!(whole_percent(1, 3), 33);
        assert_eq!(whole_percent(2, 3), 66);
        assert_eq!(whole_percent(199, 200), 99);
        assert_eq!(whole_percent(999_999, 1_000_000), 99);
        assert_eq!(whole_percent(7, 7), 100);
        assert_eq!(whole_percent(u64::MAX - 1, u64::MAX), 99);
        assert_eq!(whole_percent(5, 2), 100, "more than all is all");
    }

    #[test]
    fn bulk_filter_predicate() {
        let t = task("Img-42", "Resize Photo", "Thumbnailer", "cdn");
        let any = BulkFilter::default();
        assert!(any.matches(&t, TaskStatus::Failed));
        let search = |s: &str| BulkFilter {
            search: Some(s.into()),
            ..Default::default()
        };
        // Case-insensitive substring of the name, the id or the worker.
        for hit in ["photo", "RESIZE", "img-4", "thumb", "", "e p"] {
            assert!(search(hit).matches(&t, TaskStatus::Ready), "{hit:?}");
        }
        // Not the workgroup, never across two fields, not trimmed.
        for miss in ["cdn", "photoimg", " photo ", "x"] {
            assert!(!search(miss).matches(&t, TaskStatus::Ready), "{miss:?}");
        }
        // Non-ASCII text lowercases the same way.
        let u = task("t", "ÉTÉ Ölçek", "w", "");
        assert!(search("été ö").matches(&u, TaskStatus::Ready));
        assert!(search("ÖLÇ").matches(&u, TaskStatus::Ready));
        let status = BulkFilter {
            status: vec![TaskStatus::Failed, TaskStatus::Paused],
            ..Default::default()
        };
        assert!(status.matches(&t, TaskStatus::Paused));
        assert!(!status.matches(&t, TaskStatus::Ready));
        let exact = BulkFilter {
            worker: Some("Thumbnailer".into()),
            workgroup: Some("cdn".into()),
            ..Default::default()
        };
        assert!(exact.matches(&t, TaskStatus::Ready));
        let wrong_case = BulkFilter {
            worker: Some("thumbnailer".into()),
            ..Default::default()
        };
        assert!(!wrong_case.matches(&t, TaskStatus::Ready));
        let no_workgroup = BulkFilter {
            workgroup: Some(String::new()),
            ..Default::default()
        };
        assert!(!no_workgroup.matches(&t, TaskStatus::Ready));
        assert!(no_workgroup.matches(&u, TaskStatus::Ready));
    }

    #[test]
    fn bulk_request_is_strict() {
        let r: BulkRequest = serde_json::from_str(
            r#"{"action":"retry","filter":{"status":["failed"],"search":"x"},"dryRun":true,"remainingAttempts":2}"#,
        )
        .unwrap();
        assert_eq!(r.action, BulkAction::Retry);
        assert_eq!(r.filter.status, vec![TaskStatus::Failed]);
        assert!(r.dry_run);
        for bad in [
            r#"{"action":"explode"}"#,
            r#"{"action":"pause","extra":1}"#,
            r#"{"action":"pause","filter":{"name":"x"}}"#,
            r#"{"action":"pause","filter":{"status":["nope"]}}"#,
            r#"{"filter":{}}"#,
        ] {
            assert!(serde_json::from_str::<BulkRequest>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn worker_response_is_lenient() {
        let r: WorkerResponse = serde_json::from_str(
            r#"{"output":{"rows":1},"children":null,"workgroupDelayInSeconds":1.5,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.workgroup_delay_in_seconds, Some(1.5));
        assert!(r.children.is_none());
        assert!(r.error.is_null());
    }

    #[test]
    fn new_task_refuses_server_owned_fields() {
        let e = serde_json::from_str::<NewTask>(r#"{"name":"a","worker":"w","isComplete":true}"#)
            .unwrap_err();
        assert!(e.to_string().contains("isComplete"), "{e}");
    }

    #[test]
    fn one_or_many_tasks() {
        let one: NewTasks = serde_json::from_str(r#"{"name":"a","worker":"w"}"#).unwrap();
        assert_eq!(one.into_vec().len(), 1);
        let many: NewTasks = serde_json::from_str(r#"[{"worker":"w"},{"worker":"x"}]"#).unwrap();
        assert_eq!(many.into_vec().len(), 2);
    }

    #[test]
    fn stream_message_shape() {
        let m = StreamMessage {
            seq: 7,
            at: None,
            event: Event::WorkgroupUpdated {
                workgroup: Workgroup::new("api-key-1"),
            },
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["type"], "workgroup.updated");
        assert_eq!(v["workgroup"]["name"], "api-key-1");
        let back: StreamMessage = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }
}
