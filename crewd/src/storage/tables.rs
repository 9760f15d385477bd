//! Table definitions, the per-task bucket, and decoding helpers shared by the
//! read and write paths.
//!
//! | table | key | value | holds |
//! |---|---|---|---|
//! | `meta` | name | u64 | `schema_version`, `next_seq`, `events_from`, `journal_seq` |
//! | `tasks` | task id | JSON [`Task`] (`status` never stored) | every task |
//! | `task_state` | task id | (bucket, incomplete parents) | every task: cheap `is_complete` and counter upkeep |
//! | `groups` | group id | JSON [`TaskGroup`] | every group |
//! | `groups_by_time` | (createdAt ms, group id) | () | group listing, newest first |
//! | `group_counts` | group id | `[u64; 6]` by bucket | counts by status |
//! | `groups_by_name` | (name, group id) | () | group listing by name |
//! | `groups_by_progress` | (whole percent complete, group id) | () | group listing by progress |
//! | `groups_by_failed` | (`u64::MAX` − failed tasks, group id) | () | group listing by failures, most first |
//! | `scheduled_groups` | group id | () | groups with a `schedule`, which the daemon checks every second |
//! | `group_tasks` | (group, createdAt ns, task) | () | a group's tasks, oldest first |
//! | `group_bucket` | (group, bucket, createdAt ns, task) | () | listing by status; a group's incomplete tasks (every bucket after `completed`) |
//! | `children` | (parent, child) | () | every parent edge |
//! | `keys` | (group, key, task) | () | tasks with a non-empty key |
//! | `workgroup_tasks` | (workgroup, task) | () | incomplete tasks of a workgroup |
//! | `workgroup_counts` | workgroup | u64 | incomplete tasks of a workgroup |
//! | `group_workgroup_pending` | (group, workgroup) | u64 | pending tasks of a group in a workgroup |
//! | `delayed` | (group, runAfter ms, task) | workgroup | pending tasks whose runAfter was in the future when written |
//! | `workgroups` | name | JSON [`Workgroup`] | workgroups ever paused |
//! | `worker_limits` | worker | `Option<u32>` | max concurrency per worker |
//! | `events` | seq of the row's first event | JSON [`crew_core::wire::StreamMessage`]s, one a line, in order | the newest `event_retention` events |
//! | `audit` | audit seq | JSON [`crew_core::wire::AuditEntry`] | the newest `audit_retention` operator actions |

use super::StorageError;
use crew_core::{Task, TaskGroup, TaskStatus, Workgroup};
use redb::{ReadableTable, TableDefinition};

/// Schema version and next sequence number.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Key of the schema version in [`META`].
pub(crate) const META_SCHEMA_VERSION: &str = "schema_version";
/// Key of the next event sequence number in [`META`].
pub(crate) const META_NEXT_SEQ: &str = "next_seq";
/// Key in [`META`] of the oldest event kept: the log is trimmed by whole
/// rows, and readers skip the events of the oldest row that come before it
/// (absent: every event in the log is kept).
pub(crate) const META_EVENTS_FROM: &str = "events_from";
/// Key in [`META`] of the last journal record this state includes
/// (absent: none).
pub(crate) const META_JOURNAL_SEQ: &str = "journal_seq";

pub(crate) const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
pub(crate) const TASK_STATE: TableDefinition<&str, (u8, u32)> = TableDefinition::new("task_state");
pub(crate) const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
pub(crate) const GROUPS_BY_TIME: TableDefinition<(i64, &str), ()> =
    TableDefinition::new("groups_by_time");
pub(crate) const GROUP_COUNTS: TableDefinition<&str, [u64; BUCKETS]> =
    TableDefinition::new("group_counts");
pub(crate) const GROUPS_BY_NAME: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("groups_by_name");
pub(crate) const GROUPS_BY_PROGRESS: TableDefinition<(u8, &str), ()> =
    TableDefinition::new("groups_by_progress");
pub(crate) const GROUPS_BY_FAILED: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("groups_by_failed");
pub(crate) const SCHEDULED_GROUPS: TableDefinition<&str, ()> =
    TableDefinition::new("scheduled_groups");
pub(crate) const GROUP_TASKS: TableDefinition<(&str, i64, &str), ()> =
    TableDefinition::new("group_tasks");
pub(crate) const GROUP_BUCKET: TableDefinition<(&str, u8, i64, &str), ()> =
    TableDefinition::new("group_bucket");
pub(crate) const CHILDREN: TableDefinition<(&str, &str), ()> = TableDefinition::new("children");
pub(crate) const KEYS: TableDefinition<(&str, &str, &str), ()> = TableDefinition::new("keys");
pub(crate) const WG_TASKS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("workgroup_tasks");
pub(crate) const WG_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("workgroup_counts");
pub(crate) const GROUP_WG_PENDING: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("group_workgroup_pending");
pub(crate) const DELAYED: TableDefinition<(&str, i64, &str), &str> =
    TableDefinition::new("delayed");
pub(crate) const WORKGROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("workgroups");
pub(crate) const WORKER_LIMITS: TableDefinition<&str, Option<u32>> =
    TableDefinition::new("worker_limits");
/// When each group last became finished (every task complete), in Unix
/// milliseconds: retention's age. Kept when the group is reset (it is
/// written again when the group finishes again); absent for groups that
/// finished before it existed.
pub(crate) const GROUP_FINISHED: TableDefinition<&str, i64> =
    TableDefinition::new("group_finished");
/// The event log. A row holds the events of one stretch of a transaction
/// (several, so that a batch costs one insert per row rather than one per
/// event); stores of schema version 1 hold one event a row, which reads
/// the same.
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
pub(crate) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// Creates every table (a no-op for those that exist).
pub(crate) fn create_all(txn: &redb::WriteTransaction) -> Result<(), StorageError> {
    txn.open_table(META)?;
    txn.open_table(TASKS)?;
    txn.open_table(TASK_STATE)?;
    txn.open_table(GROUPS)?;
    txn.open_table(GROUPS_BY_TIME)?;
    txn.open_table(GROUP_COUNTS)?;
    txn.open_table(GROUPS_BY_NAME)?;
    txn.open_table(GROUPS_BY_PROGRESS)?;
    txn.open_table(GROUPS_BY_FAILED)?;
    txn.open_table(SCHEDULED_GROUPS)?;
    txn.open_table(GROUP_TASKS)?;
    txn.open_table(GROUP_BUCKET)?;
    txn.open_table(CHILDREN)?;
    txn.open_table(KEYS)?;
    txn.open_table(WG_TASKS)?;
    txn.open_table(WG_COUNTS)?;
    txn.open_table(GROUP_WG_PENDING)?;
    txn.open_table(DELAYED)?;
    txn.open_table(WORKGROUPS)?;
    txn.open_table(WORKER_LIMITS)?;
    txn.open_table(GROUP_FINISHED)?;
    txn.open_table(EVENTS)?;
    txn.open_table(AUDIT)?;
    Ok(())
}

/// Number of buckets.
pub(crate) const BUCKETS: usize = 6;

/// A group's key in `groups_by_progress`, from its counts by bucket: its
/// whole percent complete, which changes at most a hundred times while the
/// group runs (not at every completion, which would cost the hot path an
/// index write).
pub(crate) fn progress_rank(counts: &[u64; BUCKETS]) -> u8 {
    crew_core::wire::whole_percent(counts[Bucket::Completed.idx()], counts.iter().sum())
}

/// A group's key in `groups_by_failed`, from its counts by bucket: the
/// most failures sort first.
pub(crate) fn failed_rank(counts: &[u64; BUCKETS]) -> u64 {
    u64::MAX - counts[Bucket::Failed.idx()]
}

/// What a task's status is made of, apart from its group, its workgroup and
/// the clock: the part the per-group counters count. It follows
/// [`crew_core::model::derive_status`]'s precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Bucket {
    /// `isComplete`.
    Completed = 0,
    /// `busyExecuting`.
    Running = 1,
    /// No attempts left.
    Failed = 2,
    /// Paused by its own flag.
    Paused = 3,
    /// A parent is missing or incomplete.
    Waiting = 4,
    /// Ready, delayed (runAfter, workgroup pause) or paused by its group:
    /// decided at read time.
    Pending = 5,
}

impl Bucket {
    /// The bucket of `task` with `incomplete_parents` parents not complete.
    pub(crate) fn of(task: &Task, incomplete_parents: u32) -> Bucket {
        if task.is_complete {
            Bucket::Completed
        } else if task.busy_executing {
            Bucket::Running
        } else if task.remaining_attempts == 0 {
            Bucket::Failed
        } else if task.is_paused {
            Bucket::Paused
        } else if incomplete_parents > 0 {
            Bucket::Waiting
        } else {
            Bucket::Pending
        }
    }

    /// Decodes a stored bucket.
    pub(crate) fn from_u8(b: u8) -> Option<Bucket> {
        Some(match b {
            0 => Bucket::Completed,
            1 => Bucket::Running,
            2 => Bucket::Failed,
            3 => Bucket::Paused,
            4 => Bucket::Waiting,
            5 => Bucket::Pending,
            _ => return None,
        })
    }

    /// The counter index.
    pub(crate) fn idx(self) -> usize {
        self as usize
    }
}

/// A task's row in `task_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskState {
    /// Its bucket.
    pub bucket: Bucket,
    /// Parents that are missing or not complete.
    pub incomplete_parents: u32,
}

impl TaskState {
    pub(crate) fn encode(self) -> (u8, u32) {
        (self.bucket as u8, self.incomplete_parents)
    }
}

/// Milliseconds of a timestamp, as index keys use them.
pub(crate) fn millis(t: &crew_core::Timestamp) -> i64 {
    t.unix_millis()
}

/// Reads stored JSON back whatever its depth. Earlier versions accepted
/// inputs and outputs nested up to serde_json's limit of 128 levels, and
/// the store wraps them in a few more: read with that limit, such a record
/// could not be read back, and a journal holding one kept the daemon from
/// starting. What is stored now nests far less
/// ([`crew_core::dag::MAX_JSON_DEPTH`]), so the recursion stays shallow.
pub(crate) fn from_stored_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let v = T::deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    from_stored_json(bytes).map_err(|e| StorageError::Corrupt {
        table,
        key: key.to_string(),
        detail: e.to_string(),
    })
}

pub(crate) fn encode_json<T: serde::Serialize>(
    what: &'static str,
    v: &T,
) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(v).map_err(|source| StorageError::Encode { what, source })
}

/// Encodes a task for storage (its derived status is never stored).
pub(crate) fn encode_task(t: &Task) -> Result<Vec<u8>, StorageError> {
    if t.status.is_some() {
        let mut c = t.clone();
        c.status = None;
        encode_json("task", &c)
    } else {
        encode_json("task", t)
    }
}

// ---- point reads, generic over read-only and writable tables ----------------

pub(crate) fn get_task(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Task>, StorageError> {
    match t.get(id)? {
        Some(v) => {
            let mut task: Task = decode_json("tasks", id, v.value())?;
            task.status = None;
            Ok(Some(task))
        }
        None => Ok(None),
    }
}

pub(crate) fn get_group(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<TaskGroup>, StorageError> {
    match t.get(id)? {
        Some(v) => Ok(Some(decode_json("groups", id, v.value())?)),
        None => Ok(None),
    }
}

pub(crate) fn get_workgroup(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<Workgroup>, StorageError> {
    match t.get(name)? {
        Some(v) => Ok(Some(decode_json("workgroups", name, v.value())?)),
        None => Ok(None),
    }
}

pub(crate) fn get_state(
    t: &impl ReadableTable<&'static str, (u8, u32)>,
    id: &str,
) -> Result<Option<TaskState>, StorageError> {
    match t.get(id)? {
        Some(v) => {
            let (b, n) = v.value();
            let bucket = Bucket::from_u8(b).ok_or_else(|| StorageError::Corrupt {
                table: "task_state",
                key: id.to_string(),
                detail: format!("unknown bucket {b}"),
            })?;
            Ok(Some(TaskState {
                bucket,
                incomplete_parents: n,
            }))
        }
        None => Ok(None),
    }
}

/// Second components of `(first, _)` keys, in order.
pub(crate) fn pair_seconds(
    t: &impl ReadableTable<(&'static str, &'static str), ()>,
    first: &str,
) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    for row in t.range((first, "")..)? {
        let (k, _) = row?;
        let (a, b) = k.value();
        if a != first {
            break;
        }
        out.push(b.to_string());
    }
    Ok(out)
}

/// The table schema versions before 3 kept: each group's incomplete tasks
/// by creation, which [`GROUP_BUCKET`] answers as well. Deleted when such a
/// file is opened.
pub(crate) const RETIRED_GROUP_INCOMPLETE: TableDefinition<(&str, i64, &str), ()> =
    TableDefinition::new("group_incomplete");

/// Buckets of incomplete tasks: every one after [`Bucket::Completed`].
const INCOMPLETE_BUCKETS: std::ops::RangeInclusive<u8> =
    (Bucket::Completed as u8 + 1)..=(Bucket::Pending as u8);

/// Ids of the incomplete tasks of `group`, oldest first (by creation, then
/// id), from [`GROUP_BUCKET`]; at most `limit` of them.
pub(crate) fn incomplete_ids(
    t: &impl ReadableTable<(&'static str, u8, i64, &'static str), ()>,
    group: &str,
    limit: Option<u64>,
) -> Result<Vec<String>, StorageError> {
    bucket_ids(t, group, INCOMPLETE_BUCKETS, limit)
}

/// Ids of the tasks of `group` in `buckets`, oldest first (by creation,
/// then id), from [`GROUP_BUCKET`]; at most `limit` of them, reading at
/// most `limit` from each bucket.
pub(crate) fn bucket_ids(
    t: &impl ReadableTable<(&'static str, u8, i64, &'static str), ()>,
    group: &str,
    buckets: impl IntoIterator<Item = u8>,
    limit: Option<u64>,
) -> Result<Vec<String>, StorageError> {
    let per_bucket = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut keyed: Vec<(i64, String)> = Vec::new();
    for b in buckets {
        for row in t.range((group, b, i64::MIN, "")..)?.take(per_bucket) {
            let (k, _) = row?;
            let (g, kb, ms, id) = k.value();
            if g != group || kb != b {
                break;
            }
            keyed.push((ms, id.to_string()));
        }
    }
    keyed.sort();
    keyed.truncate(per_bucket);
    Ok(keyed.into_iter().map(|(_, id)| id).collect())
}

/// Task ids of `(group, ms, task)` keys for one group, in order.
pub(crate) fn group_time_ids(
    t: &impl ReadableTable<(&'static str, i64, &'static str), ()>,
    group: &str,
) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    for row in t.range((group, i64::MIN, "")..)? {
        let (k, _) = row?;
        let (g, _, id) = k.value();
        if g != group {
            break;
        }
        out.push(id.to_string());
    }
    Ok(out)
}

/// Ids of the tasks of `group` with `key`.
pub(crate) fn key_ids(
    t: &impl ReadableTable<(&'static str, &'static str, &'static str), ()>,
    group: &str,
    key: &str,
) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    for row in t.range((group, key, "")..)? {
        let (k, _) = row?;
        let (g, kk, id) = k.value();
        if g != group || kk != key {
            break;
        }
        out.push(id.to_string());
    }
    Ok(out)
}

/// The status of `task` from its stored state: the same answer as
/// [`crew_core::rules::status_of`], without reading its parents.
pub(crate) fn status_from_state(
    task: &Task,
    state: TaskState,
    group_paused: bool,
    workgroup: Option<&Workgroup>,
    now: crew_core::Timestamp,
) -> TaskStatus {
    crew_core::model::derive_status(
        task,
        group_paused,
        workgroup,
        state.incomplete_parents == 0,
        now,
    )
}

/// Converts any storage failure into the rules' error type.
pub(crate) fn store_err<E: Into<StorageError>>(e: E) -> crew_core::StoreError {
    crew_core::StoreError::from(e.into())
}

/// Implements [`crew_core::GraphRead`] for a type with a `txn` field that
/// has `open_table` (a redb read or write transaction).
macro_rules! impl_graph_read {
    ($ty:ty) => {
        impl crew_core::GraphRead for $ty {
            fn task(&self, id: &str) -> Result<Option<crew_core::Task>, crew_core::StoreError> {
                use $crate::storage::tables as t;
                let table = self.txn.open_table(t::TASKS).map_err(t::store_err)?;
                t::get_task(&table, id).map_err(t::store_err)
            }

            fn group(
                &self,
                id: &str,
            ) -> Result<Option<crew_core::TaskGroup>, crew_core::StoreError> {
                use $crate::storage::tables as t;
                let table = self.txn.open_table(t::GROUPS).map_err(t::store_err)?;
                t::get_group(&table, id).map_err(t::store_err)
            }

            fn workgroup(
                &self,
                name: &str,
            ) -> Result<Option<crew_core::Workgroup>, crew_core::StoreError> {
                use $crate::storage::tables as t;
                let table = self.txn.open_table(t::WORKGROUPS).map_err(t::store_err)?;
                t::get_workgroup(&table, name).map_err(t::store_err)
            }

            fn children(&self, id: &str) -> Result<Vec<String>, crew_core::StoreError> {
                use $crate::storage::tables as t;
                let table = self.txn.open_table(t::CHILDREN).map_err(t::store_err)?;
                t::pair_seconds(&table, id).map_err(t::store_err)
            }

            fn tasks_with_key(
                &self,
                group: &str,
                key: &str,
            ) -> Result<Vec<String>, crew_core::StoreError> {
                use $crate::storage::tables as t;
                let table = self.txn.open_table(t::KEYS).map_err(t::store_err)?;
                t::key_ids(&table, group, key).map_err(t::store_err)
            }

            fn group_task_ids(&self, group: &str) -> Result<Vec<String>, crew_core::StoreError> {
                use $crate::storage::tables as t;
                let table = self.txn.open_table(t::GROUP_TASKS).map_err(t::store_err)?;
                t::group_time_ids(&table, group).map_err(t::store_err)
            }

            fn incomplete_task_ids(
                &self,
                group: &str,
            ) -> Result<Vec<String>, crew_core::StoreError> {
                use $crate::storage::tables as t;
                let table = self.txn.open_table(t::GROUP_BUCKET).map_err(t::store_err)?;
                t::incomplete_ids(&table, group, None).map_err(t::store_err)
            }

            /// Answered from `task_state`, without decoding the task.
            fn incomplete_parents(&self, id: &str) -> Result<Option<u32>, crew_core::StoreError> {
                use $crate::storage::tables as t;
                let table = self.txn.open_table(t::TASK_STATE).map_err(t::store_err)?;
                Ok(t::get_state(&table, id)
                    .map_err(t::store_err)?
                    .map(|s| s.incomplete_parents))
            }

            /// Answered from `task_state`, without decoding the task.
            fn is_complete(&self, id: &str) -> Result<Option<bool>, crew_core::StoreError> {
                use $crate::storage::tables as t;
                let table = self.txn.open_table(t::TASK_STATE).map_err(t::store_err)?;
                Ok(t::get_state(&table, id)
                    .map_err(t::store_err)?
                    .map(|s| s.bucket == t::Bucket::Completed))
            }
        }
    };
}

pub(crate) use impl_graph_read;
