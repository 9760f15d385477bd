//! Read transactions: listings, views with counts, and the event log.

use super::tables::{
    self, decode_json, get_group, get_state, get_task, get_workgroup, status_from_state, Bucket,
    BUCKETS,
};
use super::StorageError;
use crew_core::wire::{
    search_matches, search_needle, AuditEntry, AuditList, GroupSort, StatusCounts, StreamMessage,
    TaskGroupList, TaskGroupView, TaskList, WorkgroupList, WorkgroupView,
};
use crew_core::{Task, TaskGroup, TaskStatus, Timestamp, Workgroup};
use redb::{ReadOnlyTable, ReadableTable, ReadableTableMetadata};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most audit entries one filtered [`ReadTx::audit`] call looks at.
pub const AUDIT_SCAN_LIMIT: usize = 10_000;

/// A consistent snapshot of the last commit, concurrent with the writer.
pub struct ReadTx {
    pub(super) txn: redb::ReadTransaction,
}

tables::impl_graph_read!(ReadTx);

/// A task listing query (`GET /api/v1/task_group/:id/tasks`).
///
/// Pages follow crew-go: `page` is **1-based** (0 is read as 1) and a
/// `page_size` of 0 means "everything". Tasks come oldest first (by
/// `createdAt`, then id), as in crew-go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskQuery {
    /// 1-based page number (0 is read as 1).
    pub page: u64,
    /// Tasks per page; 0 for all.
    pub page_size: u64,
    /// Case-insensitive substring of the task's name, id or worker (as
    /// the console's filter and bulk actions match).
    pub search: Option<String>,
    /// Only incomplete tasks (read from the incomplete index: completed
    /// tasks are never scanned).
    pub skip_completed: bool,
    /// Only tasks with this derived status.
    pub status: Option<TaskStatus>,
}

impl Default for TaskQuery {
    /// crew-go's defaults: page 1 of 20, no filter.
    fn default() -> Self {
        TaskQuery {
            page: 1,
            page_size: 20,
            search: None,
            skip_completed: false,
            status: None,
        }
    }
}

/// A page of the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct EventsPage {
    /// Events after the requested sequence number, oldest first.
    pub messages: Vec<StreamMessage>,
    /// The smallest sequence number still stored, or the next one when the
    /// log is empty. A client that last saw `s < oldest_kept - 1` missed
    /// events and must resync.
    pub oldest_kept: u64,
    /// The last sequence number written (0 before any event).
    pub last_seq: u64,
}

/// Rows to skip and the page size (`usize::MAX` for all), 1-based pages.
fn page_window(page: u64, page_size: u64) -> (u64, u64) {
    let size = if page_size == 0 { u64::MAX } else { page_size };
    let skip = page.max(1).saturating_sub(1).saturating_mul(page_size);
    (skip, size)
}

/// The group `groups_by_time` names: missing is corruption.
fn indexed_group(groups: &ReadOnlyTable<&str, &[u8]>, id: &str) -> Result<TaskGroup, StorageError> {
    get_group(groups, id)?.ok_or_else(|| StorageError::Corrupt {
        table: "groups_by_time",
        key: id.to_string(),
        detail: "indexed group does not exist".into(),
    })
}

/// A group listing's order: group ids as an index lists them, each with
/// its name where the index holds it.
type GroupOrder<'a> = Box<dyn Iterator<Item = Result<(String, Option<String>), StorageError>> + 'a>;

/// The ids of an index whose key ends with the group id, in its order.
fn ids_of<K: redb::Key + 'static>(
    range: redb::Range<'static, K, ()>,
    id: impl Fn(K::SelfType<'_>) -> String + 'static,
) -> GroupOrder<'static> {
    Box::new(range.map(move |row| {
        let (k, _) = row?;
        Ok((id(k.value()), None))
    }))
}

/// Which groups a listing keeps.
enum Matching {
    /// Every group.
    All,
    /// Those whose name (from the order's index) or id holds this text.
    Text(String),
    /// Those found beforehand.
    Ids(HashSet<String>),
}

/// A listing's search text as the console and bulk actions read it
/// ([`search_needle`]); `None` when there is nothing to match.
fn lower_needle(search: Option<&str>) -> Option<String> {
    search.map(search_needle).filter(|n| !n.is_empty())
}

/// Buckets a status can come from, given whether the group is paused, and
/// whether the status must still be checked task by task.
fn buckets_for(status: TaskStatus, group_paused: bool) -> (Vec<Bucket>, bool) {
    match status {
        TaskStatus::Completed => (vec![Bucket::Completed], false),
        TaskStatus::Running => (vec![Bucket::Running], false),
        TaskStatus::Failed => (vec![Bucket::Failed], false),
        TaskStatus::Paused if group_paused => (
            vec![Bucket::Paused, Bucket::Waiting, Bucket::Pending],
            false,
        ),
        // A workgroup paused by an operator may show its pending tasks as
        // paused: check those task by task.
        TaskStatus::Paused => (vec![Bucket::Paused, Bucket::Pending], true),
        TaskStatus::Waiting if group_paused => (vec![], false),
        TaskStatus::Waiting => (vec![Bucket::Waiting], false),
        TaskStatus::Delayed | TaskStatus::Ready if group_paused => (vec![], false),
        TaskStatus::Delayed | TaskStatus::Ready => (vec![Bucket::Pending], true),
    }
}

/// The status of a pending task (not complete, running, failed or paused;
/// parents complete; group not paused; no `runAfter`) in workgroup `w`.
fn pending_status_in(w: &Workgroup, now: Timestamp) -> Result<TaskStatus, StorageError> {
    let probe: Task = serde_json::from_value(serde_json::json!({"id": "", "taskGroupId": ""}))
        .map_err(|e| StorageError::Read(e.to_string()))?;
    Ok(crew_core::model::derive_status(
        &probe,
        false,
        Some(w),
        true,
        now,
    ))
}

/// Caches workgroups during one listing.
struct WorkgroupCache<'a> {
    table: &'a ReadOnlyTable<&'static str, &'static [u8]>,
    seen: HashMap<String, Option<Workgroup>>,
}

impl WorkgroupCache<'_> {
    fn get(&mut self, name: &str) -> Result<Option<&Workgroup>, StorageError> {
        if name.is_empty() {
            return Ok(None);
        }
        if !self.seen.contains_key(name) {
            let w = get_workgroup(self.table, name)?;
            self.seen.insert(name.to_string(), w);
        }
        Ok(self.seen.get(name).and_then(Option::as_ref))
    }
}

impl ReadTx {
    pub(super) fn new(txn: redb::ReadTransaction) -> ReadTx {
        ReadTx { txn }
    }

    fn next_seq(&self) -> Result<u64, StorageError> {
        let meta = self.txn.open_table(tables::META)?;
        let v = meta.get(tables::META_NEXT_SEQ)?;
        v.map(|v| v.value()).ok_or_else(|| StorageError::Corrupt {
            table: "meta",
            key: tables::META_NEXT_SEQ.to_string(),
            detail: "missing".into(),
        })
    }

    /// Groups in `sort`'s order, with counts. `page` is 1-based (0 is read
    /// as 1), `page_size` 0 means all; `search` is a case-insensitive
    /// substring of the name or id. Each order has an index, read only up
    /// to the page; a search also reads the name index whole (its keys
    /// hold names and ids), but decodes no group beyond the page.
    pub fn list_groups(
        &self,
        page: u64,
        page_size: u64,
        search: Option<&str>,
        sort: GroupSort,
        now: Timestamp,
    ) -> Result<TaskGroupList, StorageError> {
        let matching = match lower_needle(search) {
            None => Matching::All,
            Some(n) if sort == GroupSort::Name => Matching::Text(n),
            Some(n) => Matching::Ids(self.groups_matching(&n)?),
        };
        let order: GroupOrder = match sort {
            GroupSort::Newest => {
                let t = self.txn.open_table(tables::GROUPS_BY_TIME)?;
                Box::new(t.range::<(i64, &str)>(..)?.rev().map(|row| {
                    let (k, _) = row?;
                    Ok((k.value().1.to_string(), None))
                }))
            }
            GroupSort::Name => {
                let t = self.txn.open_table(tables::GROUPS_BY_NAME)?;
                Box::new(t.range::<(&str, &str)>(..)?.map(|row| {
                    let (k, _) = row?;
                    let (name, id) = k.value();
                    Ok((id.to_string(), Some(name.to_string())))
                }))
            }
            GroupSort::Progress => {
                let t = self.txn.open_table(tables::GROUPS_BY_PROGRESS)?;
                ids_of(t.range::<(u8, &str)>(..)?, |(_, id)| id.to_string())
            }
            GroupSort::Failed => {
                let t = self.txn.open_table(tables::GROUPS_BY_FAILED)?;
                ids_of(t.range::<(u64, &str)>(..)?, |(_, id)| id.to_string())
            }
        };
        self.groups_in_order(order, page_window(page, page_size), matching, now)
    }

    /// The ids of the groups whose name or id holds `needle`, from the
    /// name index's keys.
    fn groups_matching(&self, needle: &str) -> Result<HashSet<String>, StorageError> {
        let by_name = self.txn.open_table(tables::GROUPS_BY_NAME)?;
        let mut ids = HashSet::new();
        for row in by_name.iter()? {
            let (k, _) = row?;
            let (name, id) = k.value();
            if search_matches(needle, [name, id, ""]) {
                ids.insert(id.to_string());
            }
        }
        Ok(ids)
    }

    /// One page of the groups `order` lists that `matching` keeps, and how
    /// many it keeps in all. Unless that count needs the whole order (a
    /// search by name), reading stops at the page.
    fn groups_in_order(
        &self,
        order: GroupOrder,
        (skip, size): (u64, u64),
        matching: Matching,
        now: Timestamp,
    ) -> Result<TaskGroupList, StorageError> {
        let groups = self.txn.open_table(tables::GROUPS)?;
        let known_count = match &matching {
            Matching::All => Some(groups.len()?),
            Matching::Ids(ids) => Some(ids.len() as u64),
            Matching::Text(_) => None,
        };
        let mut count = 0u64;
        let mut page = Vec::new();
        for row in order {
            let (id, name) = row?;
            let kept = match &matching {
                Matching::All => true,
                Matching::Ids(ids) => ids.contains(&id),
                Matching::Text(needle) => {
                    let name = name.as_deref().unwrap_or_default();
                    search_matches(needle, [name, id.as_str(), ""])
                }
            };
            if !kept {
                continue;
            }
            if known_count.is_some() && count >= skip.saturating_add(size) {
                break;
            }
            if count >= skip && (page.len() as u64) < size {
                page.push(id);
            }
            count += 1;
        }
        let mut views = Vec::with_capacity(page.len());
        for id in page {
            views.push(self.view_of(indexed_group(&groups, &id)?, now)?);
        }
        Ok(TaskGroupList {
            task_groups: views,
            count: known_count.unwrap_or(count),
        })
    }

    /// The groups with a `schedule`, from their index: O(such groups),
    /// however many groups there are.
    pub fn scheduled_groups(&self) -> Result<Vec<TaskGroup>, StorageError> {
        let scheduled = self.txn.open_table(tables::SCHEDULED_GROUPS)?;
        let groups = self.txn.open_table(tables::GROUPS)?;
        let mut out = Vec::new();
        for row in scheduled.iter()? {
            let (id, _) = row?;
            out.push(indexed_group(&groups, id.value())?);
        }
        Ok(out)
    }

    /// A group with its counts by status, or `None`.
    pub fn group_view(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<TaskGroupView>, StorageError> {
        let groups = self.txn.open_table(tables::GROUPS)?;
        match get_group(&groups, id)? {
            Some(g) => Ok(Some(self.view_of(g, now)?)),
            None => Ok(None),
        }
    }

    fn view_of(&self, group: TaskGroup, now: Timestamp) -> Result<TaskGroupView, StorageError> {
        let counts = self.counts(&group, now)?;
        Ok(TaskGroupView {
            completed_percent: counts.completed_percent(),
            counts,
            group,
        })
    }

    /// Tasks of a group running now, from its counters: O(1).
    pub fn running_tasks(&self, group: &str) -> Result<u64, StorageError> {
        Ok(self.raw_counts(group)?[Bucket::Running.idx()])
    }

    fn raw_counts(&self, group: &str) -> Result<[u64; BUCKETS], StorageError> {
        let t = self.txn.open_table(tables::GROUP_COUNTS)?;
        let v = t.get(group)?;
        Ok(v.map(|v| v.value()).unwrap_or([0; BUCKETS]))
    }

    /// Counts by status of a group's tasks.
    ///
    /// Completed, running, failed, paused and waiting come from counters kept
    /// per change (O(1)). Pending tasks are split at `now`: those in a
    /// workgroup paused at `now` (a counter per group and workgroup) take
    /// the status that pause gives (`paused` or `delayed`); those whose
    /// `runAfter` lies after `now` (a range over the delayed index:
    /// O(delayed tasks of the group)) are `delayed`; the rest `ready`. Approximation: `runAfter` is compared at millisecond
    /// precision, so a task due within the current millisecond counts as
    /// ready.
    pub fn counts(&self, group: &TaskGroup, now: Timestamp) -> Result<StatusCounts, StorageError> {
        let raw = self.raw_counts(&group.id)?;
        let get = |b: Bucket| raw[b.idx()];
        let mut c = StatusCounts {
            completed: get(Bucket::Completed),
            running: get(Bucket::Running),
            failed: get(Bucket::Failed),
            ..StatusCounts::default()
        };
        let pending = get(Bucket::Pending);
        if group.is_paused {
            c.paused = get(Bucket::Paused) + get(Bucket::Waiting) + pending;
            return Ok(c);
        }
        c.paused = get(Bucket::Paused);
        c.waiting = get(Bucket::Waiting);
        let id = group.id.as_str();
        let wgs = self.txn.open_table(tables::WORKGROUPS)?;
        let per_wg = self.txn.open_table(tables::GROUP_WG_PENDING)?;
        let mut paused_wgs: HashSet<String> = HashSet::new();
        let mut delayed = 0u64;
        let mut wg_paused = 0u64;
        for row in per_wg.range((id, "")..)? {
            let (k, v) = row?;
            let (g, wg) = k.value();
            if g != id {
                break;
            }
            let Some(w) = get_workgroup(&wgs, wg)? else {
                continue;
            };
            if w.is_paused_at(now) {
                paused_wgs.insert(wg.to_string());
                // Every pending task of a paused workgroup has the status a
                // plain pending task would have there (the pause ranks
                // before runAfter).
                match pending_status_in(&w, now)? {
                    TaskStatus::Paused => wg_paused += v.value(),
                    _ => delayed += v.value(),
                }
            }
        }
        let index = self.txn.open_table(tables::DELAYED)?;
        let from = tables::millis(&now).saturating_add(1);
        for row in index.range((id, from, "")..)? {
            let (k, v) = row?;
            let (g, _, _) = k.value();
            if g != id {
                break;
            }
            if !paused_wgs.contains(v.value()) {
                delayed += 1;
            }
        }
        let wg_paused = wg_paused.min(pending);
        c.paused += wg_paused;
        c.delayed = delayed.min(pending - wg_paused);
        c.ready = pending - wg_paused - c.delayed;
        Ok(c)
    }

    /// A page of a group's tasks with `status` filled in (see
    /// [`TaskQuery`]). An unknown group gives an empty list.
    ///
    /// Without `search`, and with a status filter other than `delayed` or
    /// `ready`, only the page is decoded and `count` comes from the
    /// counters. `search` decodes every candidate task; `delayed`/`ready`
    /// decode the group's pending tasks.
    pub fn list_tasks(
        &self,
        group: &str,
        q: &TaskQuery,
        now: Timestamp,
    ) -> Result<TaskList, StorageError> {
        let groups = self.txn.open_table(tables::GROUPS)?;
        let Some(gr) = get_group(&groups, group)? else {
            return Ok(TaskList {
                tasks: Vec::new(),
                count: 0,
            });
        };
        let tasks = self.txn.open_table(tables::TASKS)?;
        let states = self.txn.open_table(tables::TASK_STATE)?;
        let wg_table = self.txn.open_table(tables::WORKGROUPS)?;
        let mut wgs = WorkgroupCache {
            table: &wg_table,
            seen: HashMap::new(),
        };
        let raw = self.raw_counts(group)?;
        let needle = lower_needle(q.search.as_deref());
        let (skip, size) = page_window(q.page, q.page_size);

        // Candidate ids, in listing order, and their total when exact.
        let (ids, exact_total, check_status): (Vec<String>, Option<u64>, bool) = match q.status {
            Some(status) => {
                let (buckets, check) = buckets_for(status, gr.is_paused);
                let buckets: Vec<Bucket> = buckets
                    .into_iter()
                    .filter(|b| !(q.skip_completed && *b == Bucket::Completed))
                    .collect();
                let total: u64 = buckets.iter().map(|b| raw[b.idx()]).sum();
                let t = self.txn.open_table(tables::GROUP_BUCKET)?;
                let ids = tables::bucket_ids(&t, group, buckets.iter().map(|b| *b as u8), None)?;
                (ids, (!check).then_some(total), check)
            }
            None => {
                let total: u64 = raw.iter().sum::<u64>()
                    - if q.skip_completed {
                        raw[Bucket::Completed.idx()]
                    } else {
                        0
                    };
                let limit = if needle.is_none() {
                    Some(skip.saturating_add(size))
                } else {
                    None
                };
                let ids = if q.skip_completed {
                    let t = self.txn.open_table(tables::GROUP_BUCKET)?;
                    tables::incomplete_ids(&t, group, limit)?
                } else {
                    time_ids(&self.txn.open_table(tables::GROUP_TASKS)?, group, limit)?
                };
                (ids, Some(total), false)
            }
        };

        let filtering = needle.is_some() || check_status;
        let mut count = 0u64;
        let mut out = Vec::new();
        for id in ids {
            let in_page = count >= skip && (out.len() as u64) < size;
            if !filtering && !in_page {
                if count >= skip {
                    break;
                }
                count += 1;
                continue;
            }
            let task = get_task(&tasks, &id)?.ok_or_else(|| StorageError::Corrupt {
                table: "group index",
                key: id.clone(),
                detail: "indexed task does not exist".into(),
            })?;
            if let Some(n) = &needle {
                if !search_matches(n, [&task.name, &task.id, &task.worker]) {
                    continue;
                }
            }
            let state = get_state(&states, &id)?.ok_or_else(|| StorageError::Corrupt {
                table: "task_state",
                key: id.clone(),
                detail: "a stored task has no state row".into(),
            })?;
            let status =
                status_from_state(&task, state, gr.is_paused, wgs.get(&task.workgroup)?, now);
            if q.status.is_some_and(|s| s != status) {
                continue;
            }
            if in_page {
                let mut task = task;
                task.status = Some(status);
                out.push(task);
            }
            count += 1;
        }
        let count = match (filtering, exact_total) {
            (false, Some(total)) => total,
            _ => count,
        };
        Ok(TaskList { tasks: out, count })
    }

    /// A task with its derived status, or `None`.
    pub fn task_with_status(&self, id: &str, now: Timestamp) -> Result<Option<Task>, StorageError> {
        let tasks = self.txn.open_table(tables::TASKS)?;
        let Some(mut task) = get_task(&tasks, id)? else {
            return Ok(None);
        };
        let states = self.txn.open_table(tables::TASK_STATE)?;
        let state = get_state(&states, id)?.ok_or_else(|| StorageError::Corrupt {
            table: "task_state",
            key: id.to_string(),
            detail: "a stored task has no state row".into(),
        })?;
        let groups = self.txn.open_table(tables::GROUPS)?;
        let paused = get_group(&groups, &task.task_group_id)?.is_some_and(|g| g.is_paused);
        let wgs = self.txn.open_table(tables::WORKGROUPS)?;
        let wg = if task.workgroup.is_empty() {
            None
        } else {
            get_workgroup(&wgs, &task.workgroup)?
        };
        task.status = Some(status_from_state(&task, state, paused, wg.as_ref(), now));
        Ok(Some(task))
    }

    /// Every workgroup that has incomplete tasks or a stored record, by
    /// name, with its number of incomplete tasks. (`now` is accepted for
    /// symmetry; stored pauses are returned as they are, expired or not.)
    pub fn workgroups(&self, _now: Timestamp) -> Result<WorkgroupList, StorageError> {
        let mut all: BTreeMap<String, WorkgroupView> = BTreeMap::new();
        let stored = self.txn.open_table(tables::WORKGROUPS)?;
        for row in stored.range::<&str>(..)? {
            let (k, v) = row?;
            let name = k.value();
            let w: Workgroup = decode_json("workgroups", name, v.value())?;
            all.insert(
                name.to_string(),
                WorkgroupView {
                    workgroup: w,
                    incomplete_tasks: 0,
                    in_flight: 0,
                },
            );
        }
        let counts = self.txn.open_table(tables::WG_COUNTS)?;
        for row in counts.range::<&str>(..)? {
            let (k, v) = row?;
            let name = k.value();
            all.entry(name.to_string())
                .or_insert_with(|| WorkgroupView {
                    workgroup: Workgroup::new(name),
                    incomplete_tasks: 0,
                    in_flight: 0,
                })
                .incomplete_tasks = v.value();
        }
        Ok(WorkgroupList {
            workgroups: all.into_values().collect(),
        })
    }

    /// Ids of the incomplete tasks of a workgroup (any group).
    pub fn workgroup_task_ids(&self, workgroup: &str) -> Result<Vec<String>, StorageError> {
        let t = self.txn.open_table(tables::WG_TASKS)?;
        tables::pair_seconds(&t, workgroup)
    }

    /// The number of incomplete tasks of a workgroup (a counter: O(1)).
    pub fn workgroup_incomplete_count(&self, workgroup: &str) -> Result<u64, StorageError> {
        let t = self.txn.open_table(tables::WG_COUNTS)?;
        let v = t.get(workgroup)?;
        Ok(v.map(|v| v.value()).unwrap_or(0))
    }

    /// One workgroup as the API shows it: its stored record (or an unpaused
    /// one) with its incomplete task count. O(1).
    pub fn workgroup_view(&self, name: &str) -> Result<WorkgroupView, StorageError> {
        let stored = self.txn.open_table(tables::WORKGROUPS)?;
        let workgroup = get_workgroup(&stored, name)?.unwrap_or_else(|| Workgroup::new(name));
        Ok(WorkgroupView {
            workgroup,
            incomplete_tasks: self.workgroup_incomplete_count(name)?,
            // Calls in flight are the engine's to know; the API fills it.
            in_flight: 0,
        })
    }

    /// The finished groups (tasks, every one complete), newest first as
    /// the group listing orders them: those at 100 % in the progress index
    /// that have tasks. O(finished groups), however many others there are.
    pub fn finished_groups(&self) -> Result<Vec<TaskGroup>, StorageError> {
        let by_progress = self.txn.open_table(tables::GROUPS_BY_PROGRESS)?;
        let groups = self.txn.open_table(tables::GROUPS)?;
        let mut out = Vec::new();
        for row in by_progress.range::<(u8, &str)>((100, "")..)? {
            let (k, _) = row?;
            let (_, id) = k.value();
            if self.raw_counts(id)?.iter().sum::<u64>() > 0 {
                out.push(indexed_group(&groups, id)?);
            }
        }
        // Newest first, ties by id as the time index lists them.
        out.sort_by(|a, b| {
            (tables::millis(&b.created_at), &b.id).cmp(&(tables::millis(&a.created_at), &a.id))
        });
        Ok(out)
    }

    /// When the group last became finished (every task complete); `None`
    /// if it is not known (it finished before finish times were kept).
    pub fn group_finished_at(&self, id: &str) -> Result<Option<Timestamp>, StorageError> {
        let t = self.txn.open_table(tables::GROUP_FINISHED)?;
        Ok(t.get(id)?.map(|v| Timestamp::from_unix_millis(v.value())))
    }

    /// Every worker with a stored limit (`None`: no limit), by name.
    pub fn worker_limits(&self) -> Result<Vec<(String, Option<u32>)>, StorageError> {
        let t = self.txn.open_table(tables::WORKER_LIMITS)?;
        let mut out = Vec::new();
        for row in t.range::<&str>(..)? {
            let (k, v) = row?;
            out.push((k.value().to_string(), v.value()));
        }
        Ok(out)
    }

    /// Up to `limit` audit entries older than `before` (every entry when
    /// `None`), newest first, optionally only those whose actor, action or
    /// target contains `text` (ASCII case-insensitive). Scans at most
    /// `AUDIT_SCAN_LIMIT` entries per call when filtering, so a page may
    /// come back short with `next_before` set: ask again from there.
    pub fn audit(
        &self,
        before: Option<u64>,
        limit: usize,
        text: Option<&str>,
    ) -> Result<AuditList, StorageError> {
        let log = self.txn.open_table(tables::AUDIT)?;
        let needle = text.map(str::to_ascii_lowercase);
        let mut entries = Vec::new();
        let mut next_before = None;
        for (scanned, row) in log.range(..before.unwrap_or(u64::MAX))?.rev().enumerate() {
            let (k, v) = row?;
            let seq = k.value();
            if entries.len() >= limit || scanned >= AUDIT_SCAN_LIMIT {
                next_before = Some(seq + 1);
                break;
            }
            let e: AuditEntry = decode_json("audit", &seq.to_string(), v.value())?;
            let keep = needle.as_deref().is_none_or(|n| {
                [&e.actor, &e.action, &e.target]
                    .iter()
                    .any(|f| f.to_ascii_lowercase().contains(n))
            });
            if keep {
                entries.push(e);
            }
        }
        Ok(AuditList {
            entries,
            next_before,
        })
    }

    /// Up to `limit` events with a sequence number above `seq`, oldest first.
    pub fn events_after(&self, seq: u64, limit: usize) -> Result<EventsPage, StorageError> {
        let next = self.next_seq()?;
        let log = self.txn.open_table(tables::EVENTS)?;
        let trimmed_below = self
            .txn
            .open_table(tables::META)?
            .get(tables::META_EVENTS_FROM)?
            .map_or(0, |v| v.value());
        let oldest_kept = match log.first()? {
            Some((k, _)) => k.value().max(trimmed_below),
            None => next,
        };
        let from = seq.saturating_add(1).max(oldest_kept);
        let mut messages = Vec::new();
        if limit > 0 {
            // The row holding `from` may start before it.
            let start = match log.range(..=from)?.next_back() {
                Some(row) => row?.0.value(),
                None => from,
            };
            'rows: for row in log.range(start..)? {
                let (k, v) = row?;
                let key = k.value().to_string();
                for line in v.value().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let m: StreamMessage = decode_json("events", &key, line)?;
                    if m.seq < from {
                        continue;
                    }
                    messages.push(m);
                    if messages.len() >= limit {
                        break 'rows;
                    }
                }
            }
        }
        Ok(EventsPage {
            messages,
            oldest_kept,
            last_seq: next.saturating_sub(1),
        })
    }

    /// The last sequence number written (0 before any event).
    pub fn last_seq(&self) -> Result<u64, StorageError> {
        Ok(self.next_seq()?.saturating_sub(1))
    }

    /// Calls `f` with every incomplete task of every group, from the
    /// indexes alone: recovery on start decodes one task at a time and
    /// never holds them, nor their ids, all at once. Within a group, tasks
    /// come by bucket (running ones first), then oldest first; a group's
    /// completed tasks are skipped with one seek, not read.
    pub fn for_each_incomplete_task<E>(
        &self,
        mut f: impl FnMut(IncompleteTask<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<StorageError>,
    {
        let index = self
            .txn
            .open_table(tables::GROUP_BUCKET)
            .map_err(StorageError::from)?;
        let completed = Bucket::Completed as u8;
        let mut rows = index
            .range::<(&str, u8, i64, &str)>(..)
            .map_err(StorageError::from)?;
        while let Some(row) = rows.next() {
            let (k, _) = row.map_err(StorageError::from)?;
            let (group, bucket, _, id) = k.value();
            if bucket == completed {
                // Completed tasks sort first in their group: go past them.
                rows = index
                    .range::<(&str, u8, i64, &str)>((group, completed + 1, i64::MIN, "")..)
                    .map_err(StorageError::from)?;
                continue;
            }
            f(IncompleteTask {
                id,
                running: bucket == Bucket::Running as u8,
            })?;
        }
        Ok(())
    }
}

/// An incomplete task as recovery sees it
/// ([`ReadTx::for_each_incomplete_task`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncompleteTask<'a> {
    /// Its id.
    pub id: &'a str,
    /// An attempt was in flight when the daemon stopped.
    pub running: bool,
}

/// Task ids of one group from a `(group, ms, task)` index, oldest first, at
/// most `limit` of them.
fn time_ids(
    t: &ReadOnlyTable<(&'static str, i64, &'static str), ()>,
    group: &str,
    limit: Option<u64>,
) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    for row in t.range((group, i64::MIN, "")..)? {
        if limit.is_some_and(|l| out.len() as u64 >= l) {
            break;
        }
        let (k, _) = row?;
        let (g, _, id) = k.value();
        if g != group {
            break;
        }
        out.push(id.to_string());
    }
    Ok(out)
}
