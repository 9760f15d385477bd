//! [`Batch`]: the write transaction with every table open, which the
//! engine reads through and applies rules' changes with.

use super::super::journal::{Entry, Lines};
use super::super::tables::{self, get_state, pair_seconds, Bucket, BUCKETS};
use super::super::{StorageError, StoreConfig};
use super::event_log::{task_event_json, EventRow};
use super::ops::Ops;
use super::Note;
use crew_core::wire::{AuditEntry, Event, StreamMessage, WorkerLimit};
use crew_core::{Change, Changes, Task, TaskGroup, Timestamp, Workgroup};
use redb::ReadableTable;
use std::borrow::Cow;
use std::collections::HashSet;

/// A [`WriteTx`](super::WriteTx) with every table open ([`WriteTx::batch`](super::WriteTx::batch)): what the
/// engine reads and writes through during one batch. Reads see the
/// batch's own writes.
pub struct Batch<'t> {
    pub(super) ops: Ops<'t>,
    pub(super) txn: &'t redb::WriteTransaction,
    pub(super) events: &'t mut Vec<StreamMessage>,
    pub(super) event_row: &'t mut EventRow,
    pub(super) event_json: &'t mut Option<Vec<String>>,
    pub(super) next_seq: &'t mut u64,
    pub(super) config: StoreConfig,
    pub(super) journal_lines: &'t mut Lines,
}

impl Batch<'_> {
    /// Applies one rule's [`Changes`], in order: writes tasks, groups and
    /// workgroups, keeps every index and counter, and appends one event per
    /// change (sequence numbers strictly increasing, stored in this
    /// transaction).
    ///
    /// The stored version of a task is authoritative for index upkeep (the
    /// `before` an update carries is not trusted). Task events carry the task
    /// with its status derived after every op of `changes` is applied.
    /// A task whose status changed only because a parent completed or
    /// stopped being complete (the children `changes.wake` names, typically)
    /// gets a `task.updated` event too, unless its group is paused (its
    /// status stays `paused`).
    pub fn apply(&mut self, changes: &Changes, now: Timestamp) -> Result<(), StorageError> {
        if changes.ops.is_empty() {
            return Ok(());
        }
        let mut notes = Vec::with_capacity(changes.ops.len());
        // Task records as stored, one entry per op (`None` for those that
        // wrote no task), for the journal and the events, which would
        // otherwise encode each task again.
        let mut records: Vec<Option<Vec<u8>>> = Vec::with_capacity(changes.ops.len());
        self.ops.now = now;
        let flips = {
            let ops = &mut self.ops;
            for op in &changes.ops {
                let note = match op {
                    Change::CreateTask(t) => {
                        records.push(Some(ops.create_task(t)?));
                        Note::Created(t.clone())
                    }
                    Change::UpdateTask { after, .. } => {
                        records.push(Some(ops.update_task(after)?));
                        Note::Updated((**after).clone())
                    }
                    Change::DeleteTask(t) => Note::Deleted(ops.delete_task(&t.id)?),
                    Change::CreateGroup(g) => {
                        ops.create_group(g)?;
                        Note::Other(Event::GroupCreated {
                            task_group: g.clone(),
                        })
                    }
                    Change::UpdateGroup(g) => {
                        ops.update_group(g)?;
                        Note::Other(Event::GroupUpdated {
                            task_group: g.clone(),
                        })
                    }
                    Change::DeleteGroup(g) => Note::Other(Event::GroupDeleted {
                        task_group: ops.delete_group(&g.id)?,
                    }),
                    Change::PutWorkgroup(w) => {
                        ops.put_workgroup(w)?;
                        Note::Other(Event::WorkgroupUpdated {
                            workgroup: w.clone(),
                        })
                    }
                };
                if records.len() == notes.len() {
                    records.push(None);
                }
                notes.push(note);
            }
            std::mem::take(&mut ops.flips)
        };
        self.journal_lines.note_apply(now, &changes.ops, &records)?;

        let mut events = Vec::with_capacity(notes.len());
        let mut has_event: HashSet<String> = HashSet::new();
        for (note, record) in notes.into_iter().zip(records) {
            let event = match note {
                Note::Created(t) => Event::TaskCreated {
                    task: Box::new(self.with_status(t, now, &mut has_event)?),
                },
                Note::Updated(t) => Event::TaskUpdated {
                    task: Box::new(self.with_status(t, now, &mut has_event)?),
                },
                Note::Deleted(t) => Event::TaskDeleted {
                    task: Box::new(self.with_status(t, now, &mut has_event)?),
                },
                Note::Other(e) => e,
            };
            events.push((event, record));
        }
        for (id, was_waiting) in flips {
            if has_event.contains(&id) {
                continue;
            }
            let state = get_state(self.ops.state.t()?, &id)?;
            let Some(state) = state else { continue };
            if (state.bucket == Bucket::Waiting) == was_waiting {
                continue;
            }
            let task = self.ops.task(&id)?;
            let Some(mut task) = task else { continue };
            let status = crew_core::rules::status_of(self, &task, now)?;
            if status == crew_core::TaskStatus::Paused {
                continue;
            }
            task.status = Some(status);
            let event = Event::TaskUpdated {
                task: Box::new(task),
            };
            events.push((event, None));
        }
        self.append_with_records(events, now)
    }

    fn with_status(
        &self,
        mut t: Task,
        now: Timestamp,
        seen: &mut HashSet<String>,
    ) -> Result<Task, StorageError> {
        seen.insert(t.id.clone());
        t.status = Some(crew_core::rules::status_of(self, &t, now)?);
        Ok(t)
    }

    /// Sets (or clears, with `None`) a worker's concurrency limit, with a
    /// `worker.updated` event.
    pub fn set_worker_limit(
        &mut self,
        worker: &str,
        max_concurrency: Option<u32>,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        self.journal_lines.note(|| Entry::WorkerLimit {
            worker: Cow::Borrowed(worker),
            max: max_concurrency,
            now,
        })?;
        {
            let mut t = self.txn.open_table(tables::WORKER_LIMITS)?;
            t.insert(worker, max_concurrency)?;
        }
        self.append(
            vec![Event::WorkerUpdated {
                worker: WorkerLimit {
                    worker: worker.to_string(),
                    max_concurrency,
                    in_flight: 0,
                },
            }],
            now,
        )
    }

    /// Records an operator action in the audit log (with the next audit
    /// sequence number and `now`), trims the log to its retention, and
    /// appends an `audit.recorded` event. `entry.seq` and `entry.at` are
    /// set here.
    pub fn record_audit(
        &mut self,
        mut entry: AuditEntry,
        now: Timestamp,
    ) -> Result<AuditEntry, StorageError> {
        self.journal_lines.note(|| Entry::Audit {
            entry: Cow::Borrowed(&entry),
            now,
        })?;
        {
            let mut log = self.txn.open_table(tables::AUDIT)?;
            // The newest entry is never trimmed, so the last key always
            // gives the next number.
            entry.seq = log.last()?.map_or(1, |(k, _)| k.value() + 1);
            entry.at = now;
            log.insert(
                entry.seq,
                tables::encode_json("audit entry", &entry)?.as_slice(),
            )?;
            let keep_from = (entry.seq + 1).saturating_sub(self.config.audit_retention.max(1));
            for row in log.extract_from_if(..keep_from, |_, _| true)? {
                row?;
            }
        }
        self.append(
            vec![Event::AuditRecorded {
                entry: entry.clone(),
            }],
            now,
        )?;
        Ok(entry)
    }

    /// Whether a task is stored as pending, the only bucket whose tasks
    /// may be ready, delayed or held by a group or workgroup pause; the
    /// others are complete, running, failed, paused by their own flag, or
    /// waiting on a parent. Read from the task's state, without decoding
    /// it. `None`: no such task.
    pub fn is_pending(&self, id: &str) -> Result<Option<bool>, StorageError> {
        let state = get_state(self.ops.state.r()?, id)?;
        Ok(state.map(|s| s.bucket == Bucket::Pending))
    }

    /// Incomplete tasks of a group (0 for an unknown group), from its
    /// counters: O(1).
    pub fn group_incomplete_count(&mut self, id: &str) -> Result<u64, StorageError> {
        let c = self
            .ops
            .group_counts
            .t()?
            .get(id)?
            .map_or([0; BUCKETS], |c| c.value());
        Ok(c.iter().sum::<u64>() - c[Bucket::Completed.idx()])
    }

    /// Incomplete tasks of a workgroup, from its counter: O(1).
    pub fn workgroup_incomplete_count(&mut self, name: &str) -> Result<u64, StorageError> {
        let n = self.ops.wg_counts.t()?.get(name)?.map_or(0, |c| c.value());
        Ok(n)
    }

    /// Stores events with the next sequence numbers.
    fn append(&mut self, events: Vec<Event>, now: Timestamp) -> Result<(), StorageError> {
        self.append_with_records(events.into_iter().map(|e| (e, None)).collect(), now)
    }

    /// Stores events with the next sequence numbers; a task event may come
    /// with its task's record as stored, which its JSON then includes
    /// instead of encoding the task again.
    fn append_with_records(
        &mut self,
        events: Vec<(Event, Option<Vec<u8>>)>,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        let log = self.ops.events.t()?;
        let encode_err = |source| StorageError::Encode {
            what: "event",
            source,
        };
        for (event, record) in events {
            let msg = StreamMessage {
                seq: *self.next_seq,
                at: Some(now),
                event,
            };
            let spliced = match record {
                Some(record) => task_event_json(&msg, record).map_err(encode_err)?,
                None => None,
            };
            let json = match spliced {
                Some(json) => json,
                None => serde_json::to_string(&msg).map_err(encode_err)?,
            };
            self.event_row.push(log, *self.next_seq, &json)?;
            *self.next_seq += 1;
            self.events.push(msg);
            if let Some(kept) = self.event_json.as_mut() {
                kept.push(json);
            }
        }
        // The last row is written, the log trimmed and `next_seq` stored
        // once, at commit.
        Ok(())
    }
}

/// Reads through the batch's open tables (the same answers as
/// [`WriteTx`](super::WriteTx)'s reads, without opening a table per call).
impl crew_core::GraphRead for Batch<'_> {
    fn task(&self, id: &str) -> Result<Option<Task>, crew_core::StoreError> {
        self.ops.task(id).map_err(tables::store_err)
    }

    fn group(&self, id: &str) -> Result<Option<TaskGroup>, crew_core::StoreError> {
        self.ops.group(id).map_err(tables::store_err)
    }

    fn workgroup(&self, name: &str) -> Result<Option<Workgroup>, crew_core::StoreError> {
        tables::get_workgroup(self.ops.workgroups.read()?, name).map_err(tables::store_err)
    }

    fn children(&self, id: &str) -> Result<Vec<String>, crew_core::StoreError> {
        pair_seconds(self.ops.children.read()?, id).map_err(tables::store_err)
    }

    fn tasks_with_key(&self, group: &str, key: &str) -> Result<Vec<String>, crew_core::StoreError> {
        tables::key_ids(self.ops.keys.read()?, group, key).map_err(tables::store_err)
    }

    fn group_task_ids(&self, group: &str) -> Result<Vec<String>, crew_core::StoreError> {
        tables::group_time_ids(self.ops.group_tasks.read()?, group).map_err(tables::store_err)
    }

    fn incomplete_task_ids(&self, group: &str) -> Result<Vec<String>, crew_core::StoreError> {
        tables::incomplete_ids(self.ops.group_bucket.read()?, group, None)
            .map_err(tables::store_err)
    }

    fn incomplete_parents(&self, id: &str) -> Result<Option<u32>, crew_core::StoreError> {
        Ok(get_state(self.ops.state.read()?, id)
            .map_err(tables::store_err)?
            .map(|s| s.incomplete_parents))
    }

    fn is_complete(&self, id: &str) -> Result<Option<bool>, crew_core::StoreError> {
        Ok(get_state(self.ops.state.read()?, id)
            .map_err(tables::store_err)?
            .map(|s| s.bucket == Bucket::Completed))
    }
}
