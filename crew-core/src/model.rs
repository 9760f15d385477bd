//! The model: tasks, task groups, workgroups and the derived status.
//!
//! JSON names are crew-go's (camelCase), so crew-go documents parse and
//! existing clients keep working. Crew's additions are optional fields that
//! crew-go clients ignore.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Attempts a task gets when its creator does not say.
pub const DEFAULT_REMAINING_ATTEMPTS: u32 = 5;
/// Seconds between a failure and the next try when the creator does not say.
pub const DEFAULT_ERROR_DELAY_SECS: u64 = 60;
/// How many attempt records a task keeps (the oldest are dropped).
pub const ATTEMPT_LOG_LIMIT: usize = 32;

fn default_attempts() -> u32 {
    DEFAULT_REMAINING_ATTEMPTS
}
fn default_error_delay() -> u64 {
    DEFAULT_ERROR_DELAY_SECS
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// A unit of work executed by one webhook worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Unique across the daemon.
    pub id: String,
    /// The group this task belongs to.
    pub task_group_id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// The worker that executes it (part of the worker's URL).
    #[serde(default)]
    pub worker: String,
    /// Rate-limit domain shared across groups; empty when none.
    #[serde(default)]
    pub workgroup: String,
    /// Duplicate-merge key within the group; empty when none.
    #[serde(default)]
    pub key: String,
    /// Tries left before the task is `failed`.
    #[serde(default = "default_attempts")]
    pub remaining_attempts: u32,
    /// Paused by an operator (the group and workgroup have their own flags).
    #[serde(default)]
    pub is_paused: bool,
    /// Set once the worker succeeded (or a duplicate with the same key did).
    #[serde(default)]
    pub is_complete: bool,
    /// crew-go's priority; kept for compatibility, not used for ordering.
    #[serde(default)]
    pub priority: i64,
    /// Not before this instant; crew-go's zero time means "not set".
    #[serde(default)]
    pub run_after: Timestamp,
    /// crew-go's progress weight; kept for compatibility.
    #[serde(default)]
    pub progress_weight: i64,
    /// Seed tasks survive a group reset; the others are deleted by it.
    #[serde(default)]
    pub is_seed: bool,
    /// Delay between a failure and the next try.
    #[serde(default = "default_error_delay")]
    pub error_delay_in_seconds: u64,
    /// Any JSON, passed to the worker.
    #[serde(default)]
    pub input: Value,
    /// Any JSON, the worker's output once complete.
    #[serde(default)]
    pub output: Value,
    /// One entry per failed attempt (crew-go wrote bare strings; Crew writes
    /// [`TaskError::Recorded`]).
    #[serde(default, deserialize_with = "null_as_default")]
    pub errors: Vec<TaskError>,
    /// When the task was created.
    #[serde(default)]
    pub created_at: Timestamp,
    /// Tasks that must complete before this one runs (same group).
    #[serde(default, deserialize_with = "null_as_default")]
    pub parent_ids: Vec<String>,
    /// An attempt is in flight.
    #[serde(default)]
    pub busy_executing: bool,

    // ---- Crew's additions -------------------------------------------------
    /// The derived status, filled in when the task is sent to a client;
    /// never stored and ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    /// Attempts started so far (monotonic: it also identifies the attempt in
    /// flight, so a late result for an older attempt is ignored).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub attempts: u32,
    /// The task whose worker response created this one (a continuation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// The latest attempts, oldest first (at most [`ATTEMPT_LOG_LIMIT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_log: Vec<Attempt>,
    /// This task's worker call timeout (the daemon's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_seconds: Option<u64>,
    /// Times the task was reset. Each reset starts a new run: its worker
    /// calls carry a new `webhook-id`, so that a worker deduplicating
    /// deliveries does not take the re-run for a repeat of the last one.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub resets: u32,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Task {
    /// Whether a worker call for this task is in flight.
    pub fn is_running(&self) -> bool {
        self.busy_executing
    }

    /// Whether `runAfter` lies after `now`.
    pub fn is_delayed_at(&self, now: Timestamp) -> bool {
        !self.run_after.is_zero() && self.run_after > now
    }

    /// Appends to the attempt log, dropping the oldest beyond the limit.
    pub fn log_attempt(&mut self, attempt: Attempt) {
        self.attempt_log.push(attempt);
        if self.attempt_log.len() > ATTEMPT_LOG_LIMIT {
            let extra = self.attempt_log.len() - ATTEMPT_LOG_LIMIT;
            self.attempt_log.drain(..extra);
        }
    }

    /// The attempt record of the attempt in flight, if any.
    pub fn current_attempt_mut(&mut self) -> Option<&mut Attempt> {
        let n = self.attempts;
        self.attempt_log
            .iter_mut()
            .rev()
            .find(|a| a.number == n && a.outcome == AttemptOutcome::Running)
    }
}

/// One entry of a task's `errors` list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum TaskError {
    /// What Crew records: the message, when, and which attempt.
    Recorded(RecordedError),
    /// Anything else (crew-go stored whatever the worker sent as `error`).
    Raw(Value),
}

/// A failure as Crew records it. Unknown fields make it a
/// [`TaskError::Raw`] instead, so foreign documents round-trip unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordedError {
    /// Readable description of the failure.
    pub message: String,
    /// When the failure was recorded.
    pub at: Timestamp,
    /// The attempt number that failed.
    pub attempt: u32,
}

impl TaskError {
    /// A Crew error record.
    pub fn recorded(message: impl Into<String>, at: Timestamp, attempt: u32) -> Self {
        TaskError::Recorded(RecordedError {
            message: message.into(),
            at,
            attempt,
        })
    }

    /// A readable one-line message, whatever the shape.
    pub fn message(&self) -> String {
        match self {
            TaskError::Recorded(r) => r.message.clone(),
            TaskError::Raw(Value::String(s)) => s.clone(),
            TaskError::Raw(v) => v.to_string(),
        }
    }
}

/// How an attempt ended (or that it is still running).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum AttemptOutcome {
    /// The call is in flight.
    Running,
    /// The worker succeeded.
    Succeeded,
    /// The worker failed; an attempt was burned.
    Failed,
    /// The worker answered a rate limit; no attempt was burned.
    RateLimited,
    /// The daemon stopped while the call was in flight; it is made again.
    Interrupted,
    /// An operator cancelled the call; the task was paused, no attempt burned.
    Cancelled,
}

/// The record of one attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1-based attempt number (the task's `attempts` when it started).
    pub number: u32,
    /// When the call was started.
    pub started_at: Timestamp,
    /// When the result was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// The status the console and API show, derived from the task, its group,
/// its workgroup, its parents and the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum TaskStatus {
    /// The worker succeeded (or a duplicate did).
    Completed,
    /// An attempt is in flight.
    Running,
    /// The task, its group or its workgroup is paused.
    Paused,
    /// A parent is not complete.
    Waiting,
    /// `runAfter` or a workgroup pause lies in the future.
    Delayed,
    /// Eligible to run now.
    Ready,
    /// No attempts left.
    Failed,
}

impl TaskStatus {
    /// Every status, in display order.
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Running,
        TaskStatus::Ready,
        TaskStatus::Delayed,
        TaskStatus::Waiting,
        TaskStatus::Paused,
        TaskStatus::Failed,
        TaskStatus::Completed,
    ];

    /// The lower-case name used on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskStatus::Completed => "completed",
            TaskStatus::Running => "running",
            TaskStatus::Paused => "paused",
            TaskStatus::Waiting => "waiting",
            TaskStatus::Delayed => "delayed",
            TaskStatus::Ready => "ready",
            TaskStatus::Failed => "failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        TaskStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A collection of tasks that make up one body of work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaskGroup {
    /// Unique id.
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Pausing a group is this flag alone: no task is rewritten.
    #[serde(default)]
    pub is_paused: bool,
    /// When the group was created.
    #[serde(default)]
    pub created_at: Timestamp,
    /// A cron expression (UTC) on which the group resets itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// When the schedule last reset the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_reset: Option<Timestamp>,
    /// When the schedule was set or last changed: it comes due first after
    /// that (counted from the group's creation, a schedule added to an old
    /// group reset it at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_since: Option<Timestamp>,
    /// Why the schedule's due reset was refused (the group's shape forbids
    /// it), so an operator sees that the group stopped recurring. Cleared
    /// by the next scheduled reset that runs, or a new schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_refused: Option<String>,
}

/// A rate-limit domain shared by tasks across groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Workgroup {
    /// The name tasks carry in `workgroup`.
    pub name: String,
    /// No task of this workgroup starts before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<Timestamp>,
    /// Whether the last pause came from an operator (or a worker's rate limit).
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused_by_operator: bool,
    /// The operator's limits on how fast its tasks start (none by default).
    #[serde(flatten)]
    pub limits: WorkgroupLimits,
}

impl TaskGroup {
    /// The instant after which the schedule's next reset comes due: its
    /// last reset, or when it was set, whichever is later (the group's
    /// creation when neither is known).
    pub fn schedule_counts_from(&self) -> Timestamp {
        match (self.last_scheduled_reset, self.schedule_since) {
            (Some(a), Some(b)) => a.max(b),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => self.created_at,
        }
    }
}

impl Workgroup {
    /// A workgroup with no pause.
    pub fn new(name: impl Into<String>) -> Self {
        Workgroup {
            name: name.into(),
            paused_until: None,
            paused_by_operator: false,
            limits: WorkgroupLimits::default(),
        }
    }

    /// Whether the workgroup holds its tasks back at `now`.
    pub fn is_paused_at(&self, now: Timestamp) -> bool {
        self.paused_until.is_some_and(|t| t > now)
    }
}

/// Largest `maxConcurrency` and `burst` of a workgroup.
pub const MAX_WORKGROUP_CONCURRENCY: u32 = 100_000;
/// Largest `maxRate` of a workgroup, in tasks per second.
pub const MAX_WORKGROUP_RATE: f64 = 100_000.0;
/// Smallest `maxRate` of a workgroup: one task in about 2.8 hours.
pub const MIN_WORKGROUP_RATE: f64 = 0.0001;

/// An operator's limits on a workgroup: calls in flight at once, and starts
/// per second (a token bucket of `burst` tokens refilled at `maxRate`).
/// Every field is optional; none means no limit.
///
/// Written as text (`--workgroup-limit`, the console's prompt) it reads
/// `concurrency:N,rate:R,burst:B`, any subset, or `none`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkgroupLimits {
    /// Most calls in flight at once for the workgroup's tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Most starts per second, on average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<f64>,
    /// Starts allowed at once after an idle spell (only with `maxRate`;
    /// default: `maxRate` rounded up, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

impl WorkgroupLimits {
    /// No limit at all.
    pub fn is_empty(&self) -> bool {
        self.max_concurrency.is_none() && self.max_rate.is_none()
    }

    /// The token bucket's size when a rate is set: `burst`, else the rate
    /// rounded up (at least 1).
    pub fn effective_burst(&self) -> Option<u32> {
        let rate = self.max_rate?;
        Some(
            self.burst
                .unwrap_or_else(|| rate.ceil().clamp(1.0, MAX_WORKGROUP_CONCURRENCY as f64) as u32),
        )
    }

    /// Checks every value: a concurrency and burst from 1 to
    /// [`MAX_WORKGROUP_CONCURRENCY`], a finite rate from
    /// [`MIN_WORKGROUP_RATE`] to [`MAX_WORKGROUP_RATE`], a burst only with a
    /// rate.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(n) = self.max_concurrency {
            if !(1..=MAX_WORKGROUP_CONCURRENCY).contains(&n) {
                return Err(format!(
                    "maxConcurrency must be from 1 to {MAX_WORKGROUP_CONCURRENCY}, got {n}"
                ));
            }
        }
        if let Some(r) = self.max_rate {
            if !r.is_finite() || !(MIN_WORKGROUP_RATE..=MAX_WORKGROUP_RATE).contains(&r) {
                return Err(format!(
                    "maxRate must be a number of tasks per second from {MIN_WORKGROUP_RATE} to {MAX_WORKGROUP_RATE}, got {}",
                    crate::dag::fmt_number(r)
                ));
            }
        }
        if let Some(b) = self.burst {
            if self.max_rate.is_none() {
                return Err("burst needs a maxRate".to_string());
            }
            if !(1..=MAX_WORKGROUP_CONCURRENCY).contains(&b) {
                return Err(format!(
                    "burst must be from 1 to {MAX_WORKGROUP_CONCURRENCY}, got {b}"
                ));
            }
        }
        Ok(())
    }

    /// Parses `concurrency:N,rate:R,burst:B` (any subset, any order), or
    /// `none` (or an empty text) for no limit, and validates the result.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let mut l = WorkgroupLimits::default();
        if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
            return Ok(l);
        }
        for part in spec.split(',') {
            let (key, value) = part.split_once(':').ok_or_else(|| {
                format!(
                    "expected concurrency:N, rate:R or burst:B, got {:?}",
                    part.trim()
                )
            })?;
            let (key, value) = (key.trim(), value.trim());
            let int = |what: &str| {
                value
                    .parse::<u32>()
                    .map_err(|_| format!("{what} must be a whole number, got {value:?}"))
            };
            let slot_taken = match key {
                "concurrency" => l.max_concurrency.replace(int("concurrency")?).is_some(),
                "rate" => {
                    let r = value
                        .parse::<f64>()
                        .map_err(|_| format!("rate must be tasks per second, got {value:?}"))?;
                    l.max_rate.replace(r).is_some()
                }
                "burst" => l.burst.replace(int("burst")?).is_some(),
                other => {
                    return Err(format!(
                        "unknown limit {other:?}: use concurrency, rate or burst"
                    ))
                }
            };
            if slot_taken {
                return Err(format!("{key} is given twice"));
            }
        }
        l.validate()?;
        Ok(l)
    }
}

impl std::fmt::Display for WorkgroupLimits {
    /// The text [`WorkgroupLimits::parse`] reads back (`none` for no limit).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(n) = self.max_concurrency {
            parts.push(format!("concurrency:{n}"));
        }
        if let Some(r) = self.max_rate {
            parts.push(format!("rate:{r}"));
        }
        if let Some(b) = self.burst {
            parts.push(format!("burst:{b}"));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// Derives a task's status from what it depends on.
///
/// `parents_complete` is whether every parent is complete; `group_paused`
/// and `workgroup` describe the task's group and workgroup at `now`.
pub fn derive_status(
    task: &Task,
    group_paused: bool,
    workgroup: Option<&Workgroup>,
    parents_complete: bool,
    now: Timestamp,
) -> TaskStatus {
    if task.is_complete {
        TaskStatus::Completed
    } else if task.busy_executing {
        TaskStatus::Running
    } else if task.remaining_attempts == 0 {
        TaskStatus::Failed
    } else if task.is_paused || group_paused {
        TaskStatus::Paused
    } else if !parents_complete {
        TaskStatus::Waiting
    } else if workgroup.is_some_and(|w| w.paused_by_operator && w.is_paused_at(now)) {
        // An operator's pause of the workgroup shows as a pause; a worker's
        // rate limit shows as a delay.
        TaskStatus::Paused
    } else if task.is_delayed_at(now) || workgroup.is_some_and(|w| w.is_paused_at(now)) {
        TaskStatus::Delayed
    } else {
        TaskStatus::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREW_GO_TASK: &str = r#"{
        "id": "t-42", "taskGroupId": "g1", "name": "fetch", "worker": "fetch-insights",
        "workgroup": "", "key": "", "remainingAttempts": 3, "isPaused": false,
        "isComplete": false, "priority": 0, "runAfter": "2023-05-01T12:00:00.123456789+02:00",
        "progressWeight": 0, "isSeed": true, "errorDelayInSeconds": 30,
        "input": {"account": "a1", "n": [1, 2.5, null]}, "output": null,
        "errors": ["boom", {"code": 7}], "createdAt": "2023-05-01T09:59:59.5Z",
        "parentIds": null, "busyExecuting": false
    }"#;

    #[test]
    fn crew_go_task_parses_and_round_trips() {
        let t: Task = serde_json::from_str(CREW_GO_TASK).unwrap();
        assert_eq!(t.remaining_attempts, 3);
        assert!(t.is_seed);
        assert!(t.parent_ids.is_empty());
        assert_eq!(t.errors[0].message(), "boom");
        assert_eq!(t.errors[1].message(), r#"{"code":7}"#);
        let again: Task = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(t, again);
        assert_eq!(
            serde_json::to_value(&again).unwrap()["runAfter"],
            "2023-05-01T12:00:00.123456789+02:00"
        );
    }

    #[test]
    fn missing_optional_fields_take_crew_go_defaults() {
        let t: Task = serde_json::from_str(r#"{"id":"a","taskGroupId":"g"}"#).unwrap();
        assert_eq!(t.remaining_attempts, DEFAULT_REMAINING_ATTEMPTS);
        assert_eq!(t.error_delay_in_seconds, DEFAULT_ERROR_DELAY_SECS);
        assert!(t.run_after.is_zero());
        assert_eq!(t.input, Value::Null);
    }

    #[test]
    fn recorded_errors_round_trip() {
        let e = TaskError::recorded("HTTP 500: oops", Timestamp::from_unix_millis(5), 2);
        let v = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<TaskError>(&v).unwrap(), e);
        let foreign = r#"{"message":"m","at":"2023-01-01T00:00:00Z","attempt":1,"extra":true}"#;
        let raw: TaskError = serde_json::from_str(foreign).unwrap();
        assert!(matches!(raw, TaskError::Raw(_)));
    }

    #[test]
    fn workgroup_limits_parse_print_and_validate() {
        let l = WorkgroupLimits::parse(" concurrency:2, rate:0.5 ,burst:3").unwrap();
        assert_eq!(
            l,
            WorkgroupLimits {
                max_concurrency: Some(2),
                max_rate: Some(0.5),
                burst: Some(3)
            }
        );
        assert_eq!(l.to_string(), "concurrency:2,rate:0.5,burst:3");
        assert_eq!(WorkgroupLimits::parse(&l.to_string()).unwrap(), l);
        assert_eq!(
            WorkgroupLimits::parse("none").unwrap(),
            WorkgroupLimits::default()
        );
        assert_eq!(WorkgroupLimits::parse("").unwrap().to_string(), "none");
        assert_eq!(
            WorkgroupLimits::parse("rate:2.5")
                .unwrap()
                .effective_burst(),
            Some(3)
        );
        assert_eq!(
            WorkgroupLimits::parse("rate:0.2")
                .unwrap()
                .effective_burst(),
            Some(1)
        );
        assert_eq!(
            WorkgroupLimits::parse("concurrency:1")
                .unwrap()
                .effective_burst(),
            None
        );
        for bad in [
            "concurrency:0",
            "concurrency:-1",
            "concurrency:1.5",
            "rate:0",
            "rate:-2",
            "rate:NaN",
            "rate:inf",
            "rate:1e9",
            "burst:2",
            "rate:1,burst:0",
            "speed:3",
            "concurrency",
            "concurrency:1,concurrency:2",
        ] {
            assert!(WorkgroupLimits::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_absurd_rate_is_echoed_compactly() {
        for (rate, shown) in [(1e-300, "1e-300"), (1e300, "1e300"), (-2.5, "-2.5")] {
            let limits = WorkgroupLimits {
                max_rate: Some(rate),
                ..Default::default()
            };
            let m = limits.validate().unwrap_err();
            assert!(m.ends_with(&format!("got {shown}")), "{m}");
            assert!(m.contains("from 0.0001 to 100000"), "{m}");
        }
        let m = WorkgroupLimits::parse("rate:1e300").unwrap_err();
        assert!(m.len() < 120, "{m}");
    }

    #[test]
    fn workgroup_limits_are_optional_fields() {
        // Records stored before limits existed (and crew-go's) still parse.
        let old: Workgroup = serde_json::from_str(r#"{"name":"w","pausedUntil":null}"#).unwrap();
        assert!(old.limits.is_empty());
        assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"name":"w"}"#);
        let mut w = Workgroup::new("w");
        w.limits.max_concurrency = Some(4);
        w.limits.max_rate = Some(1.5);
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "w", "maxConcurrency": 4, "maxRate": 1.5})
        );
        assert_eq!(serde_json::from_value::<Workgroup>(v).unwrap(), w);
    }

    #[test]
    fn status_precedence() {
        let now = Timestamp::from_unix_millis(10_000);
        let mut t: Task = serde_json::from_str(r#"{"id":"a","taskGroupId":"g"}"#).unwrap();
        assert_eq!(derive_status(&t, false, None, true, now), TaskStatus::Ready);
        assert_eq!(
            derive_status(&t, false, None, false, now),
            TaskStatus::Waiting
        );
        assert_eq!(derive_status(&t, true, None, true, now), TaskStatus::Paused);
        let mut wg = Workgroup::new("w");
        wg.paused_until = Some(now.plus_seconds(5.0));
        assert_eq!(
            derive_status(&t, false, Some(&wg), true, now),
            TaskStatus::Delayed
        );
        t.run_after = now.plus_seconds(1.0);
        assert_eq!(
            derive_status(&t, false, None, true, now),
            TaskStatus::Delayed
        );
        t.remaining_attempts = 0;
        assert_eq!(derive_status(&t, true, None, true, now), TaskStatus::Failed);
        t.busy_executing = true;
        assert_eq!(
            derive_status(&t, false, None, true, now),
            TaskStatus::Running
        );
        t.is_complete = true;
        assert_eq!(
            derive_status(&t, false, None, true, now),
            TaskStatus::Completed
        );
    }
}
