//! The tables a batch writes, and the upkeep of every index and counter
//! as tasks, groups and workgroups change.

use super::super::tables::{
    self, get_group, get_state, get_task, millis, pair_seconds, Bucket, TaskState, BUCKETS,
};
use super::super::StorageError;
use super::decoded::Decoded;
use crew_core::{Task, TaskGroup, Timestamp, Workgroup};
use redb::{ReadableTable, Table, TableHandle};
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A table opened on first use, then kept open for the rest of one
/// [`WriteTx::apply`](super::WriteTx::apply).
pub(super) struct Lazy<'t, K: redb::Key + 'static, V: redb::Value + 'static> {
    txn: &'t redb::WriteTransaction,
    def: redb::TableDefinition<'static, K, V>,
    /// Opened on first use, by a write or a read, then kept open: a
    /// batch reads through the tables it writes.
    table: OnceCell<Table<'t, K, V>>,
}

impl<'t, K: redb::Key + 'static, V: redb::Value + 'static> Lazy<'t, K, V> {
    fn new(txn: &'t redb::WriteTransaction, def: redb::TableDefinition<'static, K, V>) -> Self {
        Lazy {
            txn,
            def,
            table: OnceCell::new(),
        }
    }

    /// The table for writing, opened if need be.
    pub(super) fn t(&mut self) -> Result<&mut Table<'t, K, V>, StorageError> {
        self.r()?;
        let def = self.def;
        self.table.get_mut().ok_or_else(|| not_open(def.name()))
    }

    /// The table for reading, opened if need be.
    pub(super) fn r(&self) -> Result<&Table<'t, K, V>, StorageError> {
        if self.table.get().is_none() {
            // The cell is not shared across threads: nothing can fill it
            // between this check and the `set`.
            let _ = self.table.set(self.txn.open_table(self.def)?);
        }
        self.table.get().ok_or_else(|| not_open(self.def.name()))
    }

    /// [`Lazy::r`] for the rules' reads.
    pub(super) fn read(&self) -> Result<&Table<'t, K, V>, crew_core::StoreError> {
        self.r().map_err(tables::store_err)
    }
}

fn not_open(table: &str) -> StorageError {
    StorageError::Unavailable(format!("table {table} did not open"))
}

/// The tables one [`Changes`](crew_core::Changes) touches, each opened on its first use (a
/// typical change touches a few of them; opening one costs a lookup).
pub(super) struct Ops<'t> {
    pub(super) now: Timestamp,
    pub(super) tasks: Lazy<'t, &'static str, &'static [u8]>,
    pub(super) state: Lazy<'t, &'static str, (u8, u32)>,
    pub(super) groups: Lazy<'t, &'static str, &'static [u8]>,
    pub(super) groups_by_time: Lazy<'t, (i64, &'static str), ()>,
    pub(super) group_counts: Lazy<'t, &'static str, [u64; BUCKETS]>,
    pub(super) groups_by_name: Lazy<'t, (&'static str, &'static str), ()>,
    pub(super) groups_by_progress: Lazy<'t, (u8, &'static str), ()>,
    pub(super) groups_by_failed: Lazy<'t, (u64, &'static str), ()>,
    pub(super) scheduled_groups: Lazy<'t, &'static str, ()>,
    pub(super) group_finished: Lazy<'t, &'static str, i64>,
    pub(super) group_tasks: Lazy<'t, (&'static str, i64, &'static str), ()>,
    pub(super) group_bucket: Lazy<'t, (&'static str, u8, i64, &'static str), ()>,
    pub(super) children: Lazy<'t, (&'static str, &'static str), ()>,
    pub(super) keys: Lazy<'t, (&'static str, &'static str, &'static str), ()>,
    pub(super) wg_tasks: Lazy<'t, (&'static str, &'static str), ()>,
    pub(super) wg_counts: Lazy<'t, &'static str, u64>,
    pub(super) group_wg_pending: Lazy<'t, (&'static str, &'static str), u64>,
    pub(super) delayed: Lazy<'t, (&'static str, i64, &'static str), &'static str>,
    pub(super) workgroups: Lazy<'t, &'static str, &'static [u8]>,
    pub(super) events: Lazy<'t, u64, &'static [u8]>,
    /// Tasks whose bucket moved between waiting and pending because a parent
    /// changed, with whether they were waiting before this `Changes`.
    pub(super) flips: BTreeMap<String, bool>,
    /// Records decoded or written recently.
    pub(super) decoded: &'t Decoded,
    /// [`WriteTx::forget_reads`](super::WriteTx::forget_reads) not called.
    pub(super) remember_reads: bool,
}

/// A task with the bucket it is (or was) indexed under.
struct Placed<'a> {
    t: &'a Task,
    bucket: Bucket,
    /// Whether a `delayed` entry is (possibly) present, or must be.
    delayed: bool,
}

impl<'a> Placed<'a> {
    pub(super) fn group(&self) -> &'a str {
        &self.t.task_group_id
    }

    /// The key of the group-by-creation-time indexes.
    fn time_key(&self) -> (&'a str, i64, &'a str) {
        (self.group(), self.created(), &self.t.id)
    }
    fn created(&self) -> i64 {
        self.t.created_at.unix_nanos()
    }
    fn incomplete(&self) -> bool {
        self.bucket != Bucket::Completed
    }
}

/// Removes `before` and inserts `after` in a set table when they differ.
macro_rules! diff_set {
    ($table:expr, $before:expr, $after:expr) => {{
        let (b, a) = ($before, $after);
        if b != a {
            if let Some(k) = b {
                $table.remove(k)?;
            }
            if let Some(k) = a {
                $table.insert(k, ())?;
            }
        }
    }};
}

fn add_delta(v: u64, delta: i64) -> u64 {
    if delta >= 0 {
        v.saturating_add(delta.unsigned_abs())
    } else {
        v.saturating_sub(delta.unsigned_abs())
    }
}

impl<'t> Ops<'t> {
    pub(super) fn open(
        txn: &'t redb::WriteTransaction,
        now: Timestamp,
        decoded: &'t Decoded,
        remember_reads: bool,
    ) -> Result<Self, StorageError> {
        Ok(Ops {
            now,
            tasks: Lazy::new(txn, tables::TASKS),
            state: Lazy::new(txn, tables::TASK_STATE),
            groups: Lazy::new(txn, tables::GROUPS),
            groups_by_time: Lazy::new(txn, tables::GROUPS_BY_TIME),
            group_counts: Lazy::new(txn, tables::GROUP_COUNTS),
            groups_by_name: Lazy::new(txn, tables::GROUPS_BY_NAME),
            groups_by_progress: Lazy::new(txn, tables::GROUPS_BY_PROGRESS),
            groups_by_failed: Lazy::new(txn, tables::GROUPS_BY_FAILED),
            scheduled_groups: Lazy::new(txn, tables::SCHEDULED_GROUPS),
            group_finished: Lazy::new(txn, tables::GROUP_FINISHED),
            group_tasks: Lazy::new(txn, tables::GROUP_TASKS),
            group_bucket: Lazy::new(txn, tables::GROUP_BUCKET),
            children: Lazy::new(txn, tables::CHILDREN),
            keys: Lazy::new(txn, tables::KEYS),
            wg_tasks: Lazy::new(txn, tables::WG_TASKS),
            wg_counts: Lazy::new(txn, tables::WG_COUNTS),
            group_wg_pending: Lazy::new(txn, tables::GROUP_WG_PENDING),
            delayed: Lazy::new(txn, tables::DELAYED),
            workgroups: Lazy::new(txn, tables::WORKGROUPS),
            events: Lazy::new(txn, tables::EVENTS),
            flips: BTreeMap::new(),
            decoded,
            remember_reads,
        })
    }

    /// How a stored task is indexed: a `delayed` entry may exist for any
    /// pending task with a runAfter (it was future when written).
    fn placed_stored<'a>(&self, t: &'a Task, bucket: Bucket) -> Placed<'a> {
        Placed {
            t,
            bucket,
            delayed: bucket == Bucket::Pending && !t.run_after.is_zero(),
        }
    }

    /// How a task being written must be indexed at `now`.
    fn placed_new<'a>(&self, t: &'a Task, bucket: Bucket) -> Placed<'a> {
        Placed {
            t,
            bucket,
            delayed: bucket == Bucket::Pending && t.is_delayed_at(self.now),
        }
    }

    /// A task as stored or as this transaction wrote it ([`Decoded`]).
    pub(super) fn task(&self, id: &str) -> Result<Option<Task>, StorageError> {
        let tasks = self.tasks.r()?;
        self.decoded
            .tasks
            .get_or_load(id, self.remember_reads, || get_task(tasks, id))
    }

    /// A group as stored or as this transaction wrote it ([`Decoded`]).
    pub(super) fn group(&self, id: &str) -> Result<Option<TaskGroup>, StorageError> {
        let groups = self.groups.r()?;
        self.decoded
            .groups
            .get_or_load(id, self.remember_reads, || get_group(groups, id))
    }

    fn required_state(&mut self, id: &str) -> Result<TaskState, StorageError> {
        get_state(self.state.t()?, id)?.ok_or_else(|| StorageError::Corrupt {
            table: "task_state",
            key: id.to_string(),
            detail: "a stored task has no state row".into(),
        })
    }

    /// Parents (each counted once) that are missing or not complete.
    fn incomplete_parents(&mut self, t: &Task) -> Result<u32, StorageError> {
        let mut seen = HashSet::new();
        let mut n = 0u32;
        for p in &t.parent_ids {
            if !seen.insert(p.as_str()) {
                continue;
            }
            let complete =
                get_state(self.state.t()?, p)?.is_some_and(|s| s.bucket == Bucket::Completed);
            if !complete {
                n = n.saturating_add(1);
            }
        }
        Ok(n)
    }

    /// Inserts a task; returns its record as stored.
    pub(super) fn create_task(&mut self, t: &Task) -> Result<Vec<u8>, StorageError> {
        if self.tasks.t()?.get(t.id.as_str())?.is_some() {
            return Err(StorageError::Inconsistent(format!(
                "task {:?} already exists",
                t.id
            )));
        }
        let n = self.incomplete_parents(t)?;
        let bucket = Bucket::of(t, n);
        let record = tables::encode_task(t)?;
        self.tasks.t()?.insert(t.id.as_str(), record.as_slice())?;
        self.decoded.put_task(&t.id, Some(t));
        let st = TaskState {
            bucket,
            incomplete_parents: n,
        };
        self.state.t()?.insert(t.id.as_str(), st.encode())?;
        let after = self.placed_new(t, bucket);
        self.reindex(None, Some(&after))?;
        if bucket == Bucket::Completed {
            self.adjust_children(&t.id, -1)?;
        }
        Ok(record)
    }

    /// Replaces a task; returns its record as stored.
    pub(super) fn update_task(&mut self, after: &Task) -> Result<Vec<u8>, StorageError> {
        let id = after.id.as_str();
        let before = self.task(id)?.ok_or_else(|| {
            StorageError::Inconsistent(format!("update of task {id:?}, which does not exist"))
        })?;
        let old = self.required_state(id)?;
        let same_parents = before.parent_ids.iter().collect::<BTreeSet<_>>()
            == after.parent_ids.iter().collect::<BTreeSet<_>>();
        let n = if same_parents {
            old.incomplete_parents
        } else {
            self.incomplete_parents(after)?
        };
        let bucket = Bucket::of(after, n);
        let record = tables::encode_task(after)?;
        self.tasks.t()?.insert(id, record.as_slice())?;
        self.decoded.put_task(id, Some(after));
        let st = TaskState {
            bucket,
            incomplete_parents: n,
        };
        self.state.t()?.insert(id, st.encode())?;
        let b = self.placed_stored(&before, old.bucket);
        let a = self.placed_new(after, bucket);
        self.reindex(Some(&b), Some(&a))?;
        let (was, is) = (old.bucket == Bucket::Completed, bucket == Bucket::Completed);
        if was != is {
            self.adjust_children(id, if is { -1 } else { 1 })?;
        }
        Ok(record)
    }

    /// Deletes a task; returns it as it was stored.
    pub(super) fn delete_task(&mut self, id: &str) -> Result<Task, StorageError> {
        let before = self.task(id)?.ok_or_else(|| {
            StorageError::Inconsistent(format!("delete of task {id:?}, which does not exist"))
        })?;
        let old = self.required_state(id)?;
        self.tasks.t()?.remove(id)?;
        self.decoded.put_task(id, None);
        self.state.t()?.remove(id)?;
        let b = self.placed_stored(&before, old.bucket);
        self.reindex(Some(&b), None)?;
        if old.bucket == Bucket::Completed {
            self.adjust_children(id, 1)?;
        }
        Ok(before)
    }

    /// A parent's completeness changed: `delta` to each child's count of
    /// incomplete parents, moving children between waiting and pending.
    fn adjust_children(&mut self, parent: &str, delta: i64) -> Result<(), StorageError> {
        for child in pair_seconds(self.children.t()?, parent)? {
            let Some(old) = get_state(self.state.t()?, &child)? else {
                continue;
            };
            let n = u32::try_from(add_delta(u64::from(old.incomplete_parents), delta))
                .unwrap_or(u32::MAX);
            let mut new = TaskState {
                bucket: old.bucket,
                incomplete_parents: n,
            };
            let crosses_zero = (old.incomplete_parents == 0) != (n == 0);
            if crosses_zero && matches!(old.bucket, Bucket::Waiting | Bucket::Pending) {
                let task = self.task(&child)?.ok_or_else(|| StorageError::Corrupt {
                    table: "tasks",
                    key: child.clone(),
                    detail: "a task_state row has no task".into(),
                })?;
                new.bucket = Bucket::of(&task, n);
                let b = self.placed_stored(&task, old.bucket);
                let a = self.placed_new(&task, new.bucket);
                self.reindex(Some(&b), Some(&a))?;
                self.flips
                    .entry(child.clone())
                    .or_insert(old.bucket == Bucket::Waiting);
            }
            self.state.t()?.insert(child.as_str(), new.encode())?;
        }
        Ok(())
    }

    /// Moves a task's index entries and counters from `before` to `after`
    /// (`None`: absent), touching only what differs.
    fn reindex<'a>(
        &mut self,
        before: Option<&Placed<'a>>,
        after: Option<&Placed<'a>>,
    ) -> Result<(), StorageError> {
        // Keys borrow from the tasks: nothing is allocated for them.
        let tk_b = before.map(Placed::time_key);
        let tk_a = after.map(Placed::time_key);
        diff_set!(self.group_tasks.t()?, tk_b, tk_a);
        let bucket_key = |p: &Placed<'a>| (p.group(), p.bucket as u8, p.created(), p.t.id.as_str());
        diff_set!(
            self.group_bucket.t()?,
            before.map(bucket_key),
            after.map(bucket_key)
        );
        let key_key = |p: &Placed<'a>| {
            (!p.t.key.is_empty()).then_some((p.group(), p.t.key.as_str(), p.t.id.as_str()))
        };
        diff_set!(
            self.keys.t()?,
            before.and_then(key_key),
            after.and_then(key_key)
        );

        // Workgroup membership of incomplete tasks, and its counter.
        let wg_of = |p: &Placed<'a>| {
            (p.incomplete() && !p.t.workgroup.is_empty())
                .then_some((p.t.workgroup.as_str(), p.t.id.as_str()))
        };
        let (wb, wa) = (before.and_then(wg_of), after.and_then(wg_of));
        if wb != wa {
            if let Some(k) = wb {
                self.wg_tasks.t()?.remove(k)?;
                bump(self.wg_counts.t()?, k.0, -1)?;
            }
            if let Some(k) = wa {
                self.wg_tasks.t()?.insert(k, ())?;
                bump(self.wg_counts.t()?, k.0, 1)?;
            }
        }

        // Pending tasks per (group, workgroup).
        let gwp = |p: &Placed<'a>| {
            (p.bucket == Bucket::Pending && !p.t.workgroup.is_empty())
                .then_some((p.group(), p.t.workgroup.as_str()))
        };
        let (pb, pa) = (before.and_then(gwp), after.and_then(gwp));
        if pb != pa {
            if let Some((g, w)) = pb {
                bump_pair(self.group_wg_pending.t()?, g, w, -1)?;
            }
            if let Some((g, w)) = pa {
                bump_pair(self.group_wg_pending.t()?, g, w, 1)?;
            }
        }

        // Delayed pending tasks.
        let dl = |p: &Placed<'a>| {
            p.delayed.then(|| {
                (
                    p.group(),
                    millis(&p.t.run_after),
                    p.t.id.as_str(),
                    p.t.workgroup.as_str(),
                )
            })
        };
        let (db, da) = (before.and_then(dl), after.and_then(dl));
        if db != da {
            if let Some((g, ms, id, _)) = db {
                self.delayed.t()?.remove((g, ms, id))?;
            }
        }
        if let Some((g, ms, id, wg)) = da {
            // Idempotent; also repairs an entry skipped under an earlier clock.
            self.delayed.t()?.insert((g, ms, id), wg)?;
        }

        // Counters by bucket (a move within a group is one update).
        let cb = before.map(|p| (p.group(), p.bucket));
        let ca = after.map(|p| (p.group(), p.bucket));
        match (cb, ca) {
            _ if cb == ca => {}
            (Some((gb, bb)), Some((ga, ba))) if gb == ga => {
                self.adjust_counts(gb, &[(bb, -1), (ba, 1)])?;
            }
            _ => {
                if let Some((g, b)) = cb {
                    self.adjust_counts(g, &[(b, -1)])?;
                }
                if let Some((g, b)) = ca {
                    self.adjust_counts(g, &[(b, 1)])?;
                }
            }
        }

        // Parent edges (they belong to the child).
        let parents = |p: Option<&Placed<'a>>| -> BTreeSet<&'a str> {
            p.map(|p| p.t.parent_ids.iter().map(String::as_str).collect())
                .unwrap_or_default()
        };
        let (eb, ea) = (parents(before), parents(after));
        let id_b = before.map(|p| p.t.id.as_str());
        let id_a = after.map(|p| p.t.id.as_str());
        if let Some(id) = id_b {
            for p in &eb {
                if id_a != Some(id) || !ea.contains(p) {
                    self.children.t()?.remove((*p, id))?;
                }
            }
        }
        if let Some(id) = id_a {
            for p in &ea {
                if id_b != Some(id) || !eb.contains(p) {
                    self.children.t()?.insert((*p, id), ())?;
                }
            }
        }
        Ok(())
    }

    /// Applies `deltas` to a group's counts by bucket; notes the time when
    /// they make the group finished (every task complete).
    fn adjust_counts(&mut self, group: &str, deltas: &[(Bucket, i64)]) -> Result<(), StorageError> {
        let before = self
            .group_counts
            .t()?
            .get(group)?
            .map(|v| v.value())
            .unwrap_or([0; BUCKETS]);
        let mut counts = before;
        for &(bucket, delta) in deltas {
            let i = bucket.idx();
            counts[i] = add_delta(counts[i], delta);
        }
        self.group_counts.t()?.insert(group, counts)?;
        self.rerank(group, &before, &counts)?;
        let finished = |c: &[u64; BUCKETS]| {
            let total: u64 = c.iter().sum();
            total > 0 && c[Bucket::Completed.idx()] == total
        };
        if finished(&counts) && !finished(&before) {
            self.group_finished
                .t()?
                .insert(group, self.now.unix_millis())?;
        }
        Ok(())
    }

    /// Moves a group in the ranked listings' indexes when its counts move
    /// it (rarely: see [`tables::progress_rank`]).
    fn rerank(
        &mut self,
        group: &str,
        before: &[u64; BUCKETS],
        after: &[u64; BUCKETS],
    ) -> Result<(), StorageError> {
        let (pb, pa) = (tables::progress_rank(before), tables::progress_rank(after));
        if pb != pa {
            let t = self.groups_by_progress.t()?;
            t.remove((pb, group))?;
            t.insert((pa, group), ())?;
        }
        let (fb, fa) = (tables::failed_rank(before), tables::failed_rank(after));
        if fb != fa {
            let t = self.groups_by_failed.t()?;
            t.remove((fb, group))?;
            t.insert((fa, group), ())?;
        }
        Ok(())
    }

    /// Adds (`present`) or removes a group's entries in the
    /// ranked listings' indexes.
    fn rank_entries(
        &mut self,
        g: &TaskGroup,
        counts: &[u64; BUCKETS],
        present: bool,
    ) -> Result<(), StorageError> {
        let id = g.id.as_str();
        let name = (g.name.as_str(), id);
        let progress = (tables::progress_rank(counts), id);
        let failed = (tables::failed_rank(counts), id);
        if present {
            self.groups_by_name.t()?.insert(name, ())?;
            self.groups_by_progress.t()?.insert(progress, ())?;
            self.groups_by_failed.t()?.insert(failed, ())?;
        } else {
            self.groups_by_name.t()?.remove(name)?;
            self.groups_by_progress.t()?.remove(progress)?;
            self.groups_by_failed.t()?.remove(failed)?;
        }
        Ok(())
    }

    pub(super) fn create_group(&mut self, g: &TaskGroup) -> Result<(), StorageError> {
        if self.groups.t()?.get(g.id.as_str())?.is_some() {
            return Err(StorageError::Inconsistent(format!(
                "task group {:?} already exists",
                g.id
            )));
        }
        self.groups
            .t()?
            .insert(g.id.as_str(), tables::encode_json("group", g)?.as_slice())?;
        self.decoded.put_group(&g.id, Some(g));
        self.groups_by_time
            .t()?
            .insert((millis(&g.created_at), g.id.as_str()), ())?;
        if g.schedule.is_some() {
            self.scheduled_groups.t()?.insert(g.id.as_str(), ())?;
        }
        // A new group has no tasks yet: what its counts' absence reads as.
        self.rank_entries(g, &[0; BUCKETS], true)
    }

    pub(super) fn update_group(&mut self, g: &TaskGroup) -> Result<(), StorageError> {
        let before = self.group(&g.id)?.ok_or_else(|| {
            StorageError::Inconsistent(format!(
                "update of task group {:?}, which does not exist",
                g.id
            ))
        })?;
        let (tb, ta) = (millis(&before.created_at), millis(&g.created_at));
        if tb != ta {
            self.groups_by_time.t()?.remove((tb, g.id.as_str()))?;
            self.groups_by_time.t()?.insert((ta, g.id.as_str()), ())?;
        }
        match (before.schedule.is_some(), g.schedule.is_some()) {
            (false, true) => {
                self.scheduled_groups.t()?.insert(g.id.as_str(), ())?;
            }
            (true, false) => {
                self.scheduled_groups.t()?.remove(g.id.as_str())?;
            }
            _ => {}
        }
        if before.name != g.name {
            let id = g.id.as_str();
            self.groups_by_name
                .t()?
                .remove((before.name.as_str(), id))?;
            self.groups_by_name.t()?.insert((g.name.as_str(), id), ())?;
        }
        self.groups
            .t()?
            .insert(g.id.as_str(), tables::encode_json("group", g)?.as_slice())?;
        self.decoded.put_group(&g.id, Some(g));
        Ok(())
    }

    /// Deletes a group whose tasks are already deleted; returns it as stored.
    pub(super) fn delete_group(&mut self, id: &str) -> Result<TaskGroup, StorageError> {
        let before = self.group(id)?.ok_or_else(|| {
            StorageError::Inconsistent(format!("delete of task group {id:?}, which does not exist"))
        })?;
        let counts = self
            .group_counts
            .t()?
            .get(id)?
            .map_or([0; BUCKETS], |v| v.value());
        let left: u64 = counts.iter().sum();
        if left > 0 {
            return Err(StorageError::Inconsistent(format!(
                "task group {id:?} still has {left} tasks; delete them first"
            )));
        }
        self.groups.t()?.remove(id)?;
        self.decoded.put_group(id, None);
        self.groups_by_time
            .t()?
            .remove((millis(&before.created_at), id))?;
        self.group_counts.t()?.remove(id)?;
        self.group_finished.t()?.remove(id)?;
        self.rank_entries(&before, &counts, false)?;
        self.scheduled_groups.t()?.remove(id)?;
        Ok(before)
    }

    pub(super) fn put_workgroup(&mut self, w: &Workgroup) -> Result<(), StorageError> {
        self.workgroups.t()?.insert(
            w.name.as_str(),
            tables::encode_json("workgroup", w)?.as_slice(),
        )?;
        Ok(())
    }
}

/// Adds `delta` to a counter, removing it at zero.
fn bump(t: &mut Table<'_, &'static str, u64>, key: &str, delta: i64) -> Result<(), StorageError> {
    let cur = t.get(key)?.map(|v| v.value()).unwrap_or(0);
    let new = add_delta(cur, delta);
    if new == 0 {
        t.remove(key)?;
    } else {
        t.insert(key, new)?;
    }
    Ok(())
}

/// Adds `delta` to a counter keyed by a pair, removing it at zero.
fn bump_pair(
    t: &mut Table<'_, (&'static str, &'static str), u64>,
    a: &str,
    b: &str,
    delta: i64,
) -> Result<(), StorageError> {
    let cur = t.get((a, b))?.map(|v| v.value()).unwrap_or(0);
    let new = add_delta(cur, delta);
    if new == 0 {
        t.remove((a, b))?;
    } else {
        t.insert((a, b), new)?;
    }
    Ok(())
}
