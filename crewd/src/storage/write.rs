//! The write transaction: applies rules' changes, keeps every index and
//! counter, and appends events.

use super::journal::{Entry, Journal, Lines};
use super::tables::{
    self, get_group, get_state, get_task, millis, pair_seconds, Bucket, TaskState, BUCKETS,
};
use super::{StorageError, StoreConfig};
use crew_core::wire::{AuditEntry, Event, StreamMessage, WorkerLimit};
use crew_core::{Change, Changes, Task, TaskGroup, Timestamp, Workgroup};
use redb::{ReadableTable, Table, TableHandle};
use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// One durable write transaction.
///
/// Reads through [`crew_core::GraphRead`] see this transaction's own writes.
/// [`WriteTx::commit`] makes everything durable at once and returns the
/// events; dropping the transaction without committing writes nothing. After
/// an error from [`WriteTx::apply`] the transaction may hold part of that
/// change: drop it.
pub struct WriteTx {
    pub(super) txn: redb::WriteTransaction,
    events: Vec<StreamMessage>,
    /// Events appended but not yet written to the log ([`EventRow`]).
    event_row: EventRow,
    /// Each event's JSON as stored, kept for the stream when
    /// [`WriteTx::keep_event_json`] asked for it.
    event_json: Option<Vec<String>>,
    next_seq: u64,
    config: StoreConfig,
    decoded: Decoded,
    /// Whether records this transaction only reads join `decoded`
    /// ([`WriteTx::forget_reads`]).
    remember_reads: bool,
    /// Where `decoded` goes back to once this transaction commits.
    decoded_home: DecodedSlot,
    /// The store's journal, when it has one: the commit then syncs
    /// `journal_lines` there and commits to redb without durability.
    journal: Option<Arc<Mutex<Journal>>>,
    /// What this transaction applied, as journal entries.
    journal_lines: Lines,
}

tables::impl_graph_read!(WriteTx);

/// A committed event and its JSON text (as stored in the event log).
#[derive(Debug)]
pub struct CommittedEvent {
    /// The event.
    pub message: StreamMessage,
    /// `message` as JSON, when it was kept.
    pub json: Option<String>,
}

/// What happened, noted while the tables are open; turned into events once
/// every op of a [`Changes`] is applied.
enum Note {
    Created(Task),
    Updated(Task),
    Deleted(Task),
    Other(Event),
}

impl WriteTx {
    pub(super) fn new(
        txn: redb::WriteTransaction,
        config: StoreConfig,
        decoded_home: DecodedSlot,
        journal: Option<Arc<Mutex<Journal>>>,
    ) -> Result<WriteTx, StorageError> {
        let next_seq = {
            let meta = txn.open_table(tables::META)?;
            let v = meta.get(tables::META_NEXT_SEQ)?;
            v.map(|v| v.value()).ok_or_else(|| StorageError::Corrupt {
                table: "meta",
                key: tables::META_NEXT_SEQ.to_string(),
                detail: "missing".into(),
            })?
        };
        Ok(WriteTx {
            txn,
            events: Vec::new(),
            event_row: EventRow::default(),
            event_json: None,
            next_seq,
            config,
            decoded: decoded_home.take(),
            remember_reads: true,
            decoded_home,
            journal_lines: match journal {
                Some(_) => Lines::Noted(Vec::new()),
                None => Lines::Off,
            },
            journal,
        })
    }

    /// Every table opened once for a run of reads and changes (one engine
    /// batch): rules read through it and it applies their changes, without
    /// reopening a table per call.
    pub fn batch(&mut self, now: Timestamp) -> Result<Batch<'_>, StorageError> {
        let WriteTx {
            txn,
            events,
            event_row,
            event_json,
            next_seq,
            config,
            decoded,
            remember_reads,
            journal_lines,
            ..
        } = self;
        let ops = Ops::open(txn, now, decoded, *remember_reads)?;
        Ok(Batch {
            ops,
            txn,
            events,
            event_row,
            event_json,
            next_seq,
            config: *config,
            journal_lines,
        })
    }

    /// Applies one rule's [`Changes`] ([`Batch::apply`]).
    pub fn apply(&mut self, changes: &Changes, now: Timestamp) -> Result<(), StorageError> {
        self.batch(now)?.apply(changes, now)
    }

    /// Sets (or clears) a worker's limit ([`Batch::set_worker_limit`]).
    pub fn set_worker_limit(
        &mut self,
        worker: &str,
        max_concurrency: Option<u32>,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        self.batch(now)?
            .set_worker_limit(worker, max_concurrency, now)
    }

    /// Records an operator action ([`Batch::record_audit`]).
    pub fn record_audit(
        &mut self,
        entry: AuditEntry,
        now: Timestamp,
    ) -> Result<AuditEntry, StorageError> {
        self.batch(now)?.record_audit(entry, now)
    }

    /// The events this transaction has appended so far, in sequence order.
    pub fn pending_events(&self) -> &[StreamMessage] {
        &self.events
    }

    /// Commits durably (the data is on disk when this returns: in the
    /// journal, or in redb itself) and returns this transaction's events in
    /// sequence order.
    pub fn commit(self) -> Result<Vec<StreamMessage>, StorageError> {
        Ok(self
            .commit_events()?
            .into_iter()
            .map(|e| e.message)
            .collect())
    }

    /// Records this transaction only reads are not remembered for later
    /// ones (those it writes still are): for a pass over every incomplete
    /// task, at recovery, whose records would push out those of calls in
    /// flight and then stay resident.
    pub fn forget_reads(&mut self) {
        self.remember_reads = false;
    }

    /// Keeps each event's JSON text for [`WriteTx::commit_events`] (call it
    /// before any change). Only worth it when someone will send them:
    /// holding a large batch's texts until the commit raises the daemon's
    /// resident memory.
    pub fn keep_event_json(&mut self) {
        self.event_json.get_or_insert_with(Vec::new);
    }

    /// Commits as [`WriteTx::commit`] does; each event comes with its JSON
    /// text as stored when [`WriteTx::keep_event_json`] was called, so that
    /// the stream does not encode it again.
    ///
    /// Should redb refuse the transaction once the journal holds it, this
    /// answers an error, yet the transaction stands: reopening the store
    /// ([`super::Store::reopen`]) applies it from the journal. Whoever
    /// retries after an error must expect that (the engine's recovery
    /// does).
    pub fn commit_events(self) -> Result<Vec<CommittedEvent>, StorageError> {
        self.sync()?.publish().map_err(|u| u.error)
    }

    /// The first half of [`WriteTx::commit_events`]: makes the transaction
    /// durable (syncs it to the journal, or commits it durably to redb) and
    /// returns what [`Synced::publish`] makes visible to readers. Acting on
    /// the transaction may start in between: it is durable.
    pub fn sync(self) -> Result<Synced, StorageError> {
        let WriteTx {
            txn,
            events,
            event_row,
            event_json,
            decoded,
            decoded_home,
            journal,
            journal_lines,
            next_seq,
            config,
            remember_reads: _,
        } = self;
        // The event log is derived from the changes the journal holds (a
        // replay writes it again): with a journal, it is written after the
        // sync, off the path from a result to the next call.
        let visible = VisibleCommit {
            txn,
            event_log: (!events.is_empty()).then_some((
                event_row,
                next_seq,
                config.event_retention,
            )),
            journal_seq: None,
            decoded,
            decoded_home,
        };
        let to_publish = match journal {
            None => visible.make(redb::Durability::Immediate).map(|()| None)?,
            Some(journal) => sync_journaled(visible, &journal, journal_lines)?,
        };
        // Texts line up with events only when they were kept from the start.
        let json = event_json.filter(|j| j.len() == events.len());
        let mut json = json.unwrap_or_default().into_iter();
        let events = events
            .into_iter()
            .map(|message| CommittedEvent {
                message,
                json: json.next(),
            })
            .collect();
        Ok(Synced { to_publish, events })
    }

    /// Records that this state includes journal record `seq` (when
    /// replaying the journal).
    pub(super) fn set_journal_seq(&mut self, seq: u64) -> Result<(), StorageError> {
        self.txn
            .open_table(tables::META)?
            .insert(tables::META_JOURNAL_SEQ, seq)?;
        Ok(())
    }

    /// Discards everything this transaction wrote (as dropping it does).
    pub fn abort(self) -> Result<(), StorageError> {
        self.txn.abort()?;
        Ok(())
    }
}

/// Stores `next_seq` and trims the event log to the newest `retention`
/// events: once per transaction, after its events are written. Rows go
/// whole, so the row holding the oldest event kept stays; readers skip the
/// events in it that are older ([`tables::META_EVENTS_FROM`]).
fn end_event_log(
    txn: &redb::WriteTransaction,
    mut log: redb::Table<'_, u64, &'static [u8]>,
    next_seq: u64,
    retention: u64,
) -> Result<(), StorageError> {
    let keep_from = next_seq.saturating_sub(retention);
    let boundary = match log.range(..=keep_from)?.next_back() {
        Some(row) => row?.0.value(),
        None => 0,
    };
    for row in log.extract_from_if(..boundary, |_, _| true)? {
        row?;
    }
    drop(log);
    let mut meta = txn.open_table(tables::META)?;
    meta.insert(tables::META_NEXT_SEQ, next_seq)?;
    meta.insert(tables::META_EVENTS_FROM, keep_from)?;
    Ok(())
}

/// Events appended by a transaction and not yet in the log: they are
/// written as rows of several events ([`tables::EVENTS`]), one insert per
/// row rather than per event.
#[derive(Debug, Default)]
struct EventRow {
    /// Sequence number of the first event in `lines`.
    first_seq: u64,
    /// Events as JSON, each followed by a newline.
    lines: Vec<u8>,
}

/// The most bytes a row holds, unless one event alone is larger: exactly
/// what one of redb's 4 KiB leaf pages takes (its 4-byte header, the
/// value's 4-byte length and the 8-byte key). Appended rows go one to a
/// leaf, so a row that stops short of this leaves the rest of its page
/// empty and costs another insert sooner. (Rows of two pages took about
/// 3% less of the engine's time in a fan-in, but the daemon held 1 MiB
/// more after recovering a million-task store, where memory per task has
/// a budget.)
pub const EVENT_ROW_BYTES: usize = 4096 - 4 - 4 - 8;

impl EventRow {
    /// Adds event `seq`'s JSON, first writing the row to `log` if the
    /// event would take it past [`EVENT_ROW_BYTES`].
    fn push(
        &mut self,
        log: &mut redb::Table<'_, u64, &'static [u8]>,
        seq: u64,
        json: &str,
    ) -> Result<(), StorageError> {
        if self.lines.len() + json.len() + 1 > EVENT_ROW_BYTES {
            self.write(log)?;
        }
        if self.lines.is_empty() {
            self.first_seq = seq;
        }
        self.lines.extend_from_slice(json.as_bytes());
        self.lines.push(b'\n');
        Ok(())
    }

    /// Writes the events held so far as one row, if there are any.
    fn write(&mut self, log: &mut redb::Table<'_, u64, &'static [u8]>) -> Result<(), StorageError> {
        if !self.lines.is_empty() {
            log.insert(self.first_seq, self.lines.as_slice())?;
            self.lines.clear();
        }
        Ok(())
    }
}

/// A transaction durable on disk, not yet visible to readers
/// ([`WriteTx::sync`]).
#[must_use = "a synced transaction must be published"]
pub struct Synced {
    /// The redb commit still to make, when the journal made it durable.
    to_publish: Option<VisibleCommit>,
    events: Vec<CommittedEvent>,
}

/// [`Synced::publish`] failed: redb refused the transaction, which the
/// journal holds nevertheless (reopening the store applies it).
#[derive(Debug)]
pub struct Unpublished {
    /// Why redb refused it.
    pub error: StorageError,
    /// The transaction's events: it stands.
    pub events: Vec<CommittedEvent>,
}

impl Synced {
    /// Makes the transaction visible to readers (redb's commit, without
    /// durability when the journal holds it) and returns its events in
    /// sequence order.
    pub fn publish(self) -> Result<Vec<CommittedEvent>, Unpublished> {
        let Synced { to_publish, events } = self;
        match to_publish.map(|c| c.make(redb::Durability::None)) {
            Some(Err(error)) => Err(Unpublished { error, events }),
            _ => Ok(events),
        }
    }
}

/// redb's commit of a transaction: the writes to the event log and the
/// journal's mark still to make in it, and the decoded records it leaves
/// for the next transaction.
struct VisibleCommit {
    txn: redb::WriteTransaction,
    /// The events' last row, the next sequence number and the retention,
    /// when the transaction appended events.
    event_log: Option<(EventRow, u64, u64)>,
    /// The journal record that holds this transaction, if one does.
    journal_seq: Option<u64>,
    decoded: Decoded,
    decoded_home: DecodedSlot,
}

impl VisibleCommit {
    fn make(self, durability: redb::Durability) -> Result<(), StorageError> {
        let VisibleCommit {
            mut txn,
            event_log,
            journal_seq,
            decoded,
            decoded_home,
        } = self;
        if let Some((mut row, next_seq, retention)) = event_log {
            let mut log = txn.open_table(tables::EVENTS)?;
            row.write(&mut log)?;
            end_event_log(&txn, log, next_seq, retention)?;
        }
        if let Some(seq) = journal_seq {
            txn.open_table(tables::META)?
                .insert(tables::META_JOURNAL_SEQ, seq)?;
        }
        txn.set_durability(durability)?;
        Ok(decoded_home.commit(decoded, || txn.commit())?)
    }
}

/// Makes `commit`, whose journal entries are `lines`, durable: synced to
/// the journal, leaving redb's commit (without durability) to
/// [`Synced::publish`]; or, when a checkpoint is due or the transaction is
/// too large for the journal, committed durably to redb at once, which
/// includes every journaled transaction before it, and the journal starts
/// over.
fn sync_journaled(
    mut commit: VisibleCommit,
    journal: &Mutex<Journal>,
    lines: Lines,
) -> Result<Option<VisibleCommit>, StorageError> {
    let mut journal = match journal.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let lines = match lines {
        Lines::Noted(lines) if !journal.checkpoint_due() => lines,
        _ => {
            commit.make(redb::Durability::Immediate)?;
            journal.checkpointed();
            return Ok(None);
        }
    };
    if !lines.is_empty() {
        let seq = journal.next_seq();
        journal.append(seq, &lines)?;
        commit.journal_seq = Some(seq);
    }
    // (With nothing written, there is nothing to make durable.)
    Ok(Some(commit))
}

/// A [`WriteTx`] with every table open ([`WriteTx::batch`]): what the
/// engine reads and writes through during one batch. Reads see the
/// batch's own writes.
pub struct Batch<'t> {
    ops: Ops<'t>,
    txn: &'t redb::WriteTransaction,
    events: &'t mut Vec<StreamMessage>,
    event_row: &'t mut EventRow,
    event_json: &'t mut Option<Vec<String>>,
    next_seq: &'t mut u64,
    config: StoreConfig,
    journal_lines: &'t mut Lines,
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

/// A task event's JSON with the task's stored record (the task without its
/// status) spliced in: the same JSON object `serde_json` would write for
/// `msg`, with the task's `status` first, for the price of copying the
/// record rather than encoding the task a second time. `None` when `msg`
/// is not a task's creation or update with a status, or the record is not
/// a JSON object.
fn task_event_json(
    msg: &StreamMessage,
    record: Vec<u8>,
) -> Result<Option<String>, serde_json::Error> {
    let (kind, task) = match &msg.event {
        Event::TaskCreated { task } => ("task.created", task),
        Event::TaskUpdated { task } => ("task.updated", task),
        // Deleted tasks have no record to splice.
        _ => return Ok(None),
    };
    let Some(status) = task.status else {
        return Ok(None);
    };
    let Ok(record) = String::from_utf8(record) else {
        return Ok(None);
    };
    let Some(fields) = record.strip_prefix('{') else {
        return Ok(None);
    };
    let mut json = String::with_capacity(record.len() + 96);
    json.push_str("{\"seq\":");
    json.push_str(&msg.seq.to_string());
    if let Some(at) = &msg.at {
        json.push_str(",\"at\":");
        json.push_str(&serde_json::to_string(at)?);
    }
    json.push_str(",\"type\":\"");
    json.push_str(kind);
    json.push_str("\",\"task\":{\"status\":");
    json.push_str(&serde_json::to_string(&status)?);
    if !fields.starts_with('}') {
        json.push(',');
    }
    json.push_str(fields);
    json.push('}');
    Ok(Some(json))
}

/// Reads through the batch's open tables (the same answers as
/// [`WriteTx`]'s reads, without opening a table per call).
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

// ---- applying ops ------------------------------------------------------------

/// A table opened on first use, then kept open for the rest of one
/// [`WriteTx::apply`].
struct Lazy<'t, K: redb::Key + 'static, V: redb::Value + 'static> {
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
    fn t(&mut self) -> Result<&mut Table<'t, K, V>, StorageError> {
        self.r()?;
        let def = self.def;
        self.table.get_mut().ok_or_else(|| not_open(def.name()))
    }

    /// The table for reading, opened if need be.
    fn r(&self) -> Result<&Table<'t, K, V>, StorageError> {
        if self.table.get().is_none() {
            // The cell is not shared across threads: nothing can fill it
            // between this check and the `set`.
            let _ = self.table.set(self.txn.open_table(self.def)?);
        }
        self.table.get().ok_or_else(|| not_open(self.def.name()))
    }

    /// [`Lazy::r`] for the rules' reads.
    fn read(&self) -> Result<&Table<'t, K, V>, crew_core::StoreError> {
        self.r().map_err(tables::store_err)
    }
}

fn not_open(table: &str) -> StorageError {
    StorageError::Unavailable(format!("table {table} did not open"))
}

/// The tables one [`Changes`] touches, each opened on its first use (a
/// typical change touches a few of them; opening one costs a lookup).
struct Ops<'t> {
    now: Timestamp,
    tasks: Lazy<'t, &'static str, &'static [u8]>,
    state: Lazy<'t, &'static str, (u8, u32)>,
    groups: Lazy<'t, &'static str, &'static [u8]>,
    groups_by_time: Lazy<'t, (i64, &'static str), ()>,
    group_counts: Lazy<'t, &'static str, [u64; BUCKETS]>,
    group_finished: Lazy<'t, &'static str, i64>,
    group_tasks: Lazy<'t, (&'static str, i64, &'static str), ()>,
    group_bucket: Lazy<'t, (&'static str, u8, i64, &'static str), ()>,
    children: Lazy<'t, (&'static str, &'static str), ()>,
    keys: Lazy<'t, (&'static str, &'static str, &'static str), ()>,
    wg_tasks: Lazy<'t, (&'static str, &'static str), ()>,
    wg_counts: Lazy<'t, &'static str, u64>,
    group_wg_pending: Lazy<'t, (&'static str, &'static str), u64>,
    delayed: Lazy<'t, (&'static str, i64, &'static str), &'static str>,
    workgroups: Lazy<'t, &'static str, &'static [u8]>,
    events: Lazy<'t, u64, &'static [u8]>,
    /// Tasks whose bucket moved between waiting and pending because a parent
    /// changed, with whether they were waiting before this `Changes`.
    flips: BTreeMap<String, bool>,
    /// Records decoded or written recently.
    decoded: &'t Decoded,
    /// [`WriteTx::forget_reads`] not called.
    remember_reads: bool,
}

/// Tasks and groups as last read or written, so that the rules, the index
/// upkeep and the events decode each record once, and a task decoded when
/// its call started is not decoded again when its result comes back.
///
/// It lives across write transactions but only through commits: a
/// transaction takes it from its [`DecodedSlot`] and puts it back when its
/// commit succeeds, so an aborted or failed transaction's writes are never
/// remembered. Two generations bound it: when the newer one is full it
/// replaces the older one.
#[derive(Default)]
pub(crate) struct Decoded {
    /// `None`: known to be absent.
    tasks: Generations<Task>,
    groups: Generations<TaskGroup>,
}

/// A bounded map of recent records: lookups try the newer generation
/// first, so an older entry never shadows a newer write.
struct Generations<T> {
    newer: RefCell<HashMap<String, Option<T>>>,
    older: RefCell<HashMap<String, Option<T>>>,
}

impl<T> Default for Generations<T> {
    fn default() -> Self {
        Generations {
            newer: RefCell::new(HashMap::new()),
            older: RefCell::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Generations<T> {
    fn get(&self, id: &str) -> Option<Option<T>> {
        if let Some(v) = self.newer.borrow().get(id) {
            return Some(v.clone());
        }
        self.older.borrow().get(id).cloned()
    }

    /// The remembered record, or `load`'s answer, remembered if
    /// `remember` and the newer generation has room (only writes rotate).
    fn get_or_load(
        &self,
        id: &str,
        remember: bool,
        load: impl FnOnce() -> Result<Option<T>, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        if let Some(v) = self.get(id) {
            return Ok(v);
        }
        let v = load()?;
        // A read fills free room only: a scan over many records (a large
        // creation's evaluation) must not push out what was just written.
        if remember && self.newer.borrow().len() < DECODED_MAX {
            self.put(id, v.clone());
        }
        Ok(v)
    }

    fn put(&self, id: &str, v: Option<T>) {
        let mut newer = self.newer.borrow_mut();
        if newer.len() >= DECODED_MAX && !newer.contains_key(id) {
            // Sized up front: growing it again would rehash it every time.
            let full = std::mem::replace(&mut *newer, HashMap::with_capacity(DECODED_MAX));
            *self.older.borrow_mut() = full;
        }
        newer.insert(id.to_string(), v);
    }
}

/// The store's slot for [`Decoded`] between write transactions.
#[derive(Clone, Default)]
pub(crate) struct DecodedSlot(Arc<Mutex<Option<Decoded>>>);

impl DecodedSlot {
    fn take(&self) -> Decoded {
        match self.0.lock() {
            Ok(mut g) => g.take().unwrap_or_default(),
            Err(_) => Decoded::default(),
        }
    }

    /// Forgets every remembered record.
    pub(crate) fn clear(&self) {
        match self.0.lock() {
            Ok(mut g) => *g = None,
            Err(p) => *p.into_inner() = None,
        }
    }

    /// Runs `commit` and, when it succeeds, keeps `d` for the next
    /// transaction. The slot stays locked throughout, so that the next
    /// transaction (which may begin as soon as redb's commit returns) waits
    /// for these records rather than starting without them and then
    /// having them put back over its own newer ones.
    fn commit<E>(&self, d: Decoded, commit: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let mut slot = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        commit()?;
        *slot = Some(d);
        Ok(())
    }
}

/// Records one generation of [`Decoded`] holds: enough for the tasks of
/// every call in flight to be found again when their results come back
/// (a few batches of starts and results), at the default in-flight limit
/// and well above it. Two generations of tasks are a few MiB at most;
/// recovery's pass over every incomplete task does not fill them
/// ([`WriteTx::forget_reads`]).
const DECODED_MAX: usize = 4096;

impl Decoded {
    fn put_task(&self, id: &str, t: Option<&Task>) {
        let t = t.map(|t| {
            let mut t = t.clone();
            // As stored: the derived status is never part of a record.
            t.status = None;
            t
        });
        self.tasks.put(id, t);
    }

    fn put_group(&self, id: &str, g: Option<&TaskGroup>) {
        self.groups.put(id, g.cloned());
    }
}

/// A task with the bucket it is (or was) indexed under.
struct Placed<'a> {
    t: &'a Task,
    bucket: Bucket,
    /// Whether a `delayed` entry is (possibly) present, or must be.
    delayed: bool,
}

impl<'a> Placed<'a> {
    fn group(&self) -> &'a str {
        &self.t.task_group_id
    }

    /// The key of the group-by-creation-time indexes.
    fn time_key(&self) -> (&'a str, i64, &'a str) {
        (self.group(), self.created(), &self.t.id)
    }
    fn created(&self) -> i64 {
        millis(&self.t.created_at)
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
    fn open(
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
    fn task(&self, id: &str) -> Result<Option<Task>, StorageError> {
        let tasks = self.tasks.r()?;
        self.decoded
            .tasks
            .get_or_load(id, self.remember_reads, || get_task(tasks, id))
    }

    /// A group as stored or as this transaction wrote it ([`Decoded`]).
    fn group(&self, id: &str) -> Result<Option<TaskGroup>, StorageError> {
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
    fn create_task(&mut self, t: &Task) -> Result<Vec<u8>, StorageError> {
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
    fn update_task(&mut self, after: &Task) -> Result<Vec<u8>, StorageError> {
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
    fn delete_task(&mut self, id: &str) -> Result<Task, StorageError> {
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

    fn create_group(&mut self, g: &TaskGroup) -> Result<(), StorageError> {
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
        Ok(())
    }

    fn update_group(&mut self, g: &TaskGroup) -> Result<(), StorageError> {
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
        self.groups
            .t()?
            .insert(g.id.as_str(), tables::encode_json("group", g)?.as_slice())?;
        self.decoded.put_group(&g.id, Some(g));
        Ok(())
    }

    /// Deletes a group whose tasks are already deleted; returns it as stored.
    fn delete_group(&mut self, id: &str) -> Result<TaskGroup, StorageError> {
        let before = self.group(id)?.ok_or_else(|| {
            StorageError::Inconsistent(format!("delete of task group {id:?}, which does not exist"))
        })?;
        let left: u64 = self
            .group_counts
            .t()?
            .get(id)?
            .map(|v| v.value().iter().sum())
            .unwrap_or(0);
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
        Ok(before)
    }

    fn put_workgroup(&mut self, w: &Workgroup) -> Result<(), StorageError> {
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

#[cfg(test)]
mod tests {
    use super::{Generations, DECODED_MAX};

    fn load(v: u32) -> impl FnOnce() -> Result<Option<u32>, super::StorageError> {
        move || Ok(Some(v))
    }

    #[test]
    fn writes_rotate_generations_and_reads_only_fill_free_room() {
        let g: Generations<u32> = Generations::default();
        for i in 0..DECODED_MAX as u32 {
            g.put(&format!("w{i}"), Some(i));
        }
        // The newer generation is full: a read is answered, not remembered,
        // and nothing written is pushed out by it.
        assert_eq!(g.get_or_load("r0", true, load(7)).ok(), Some(Some(7)));
        assert_eq!(g.get("r0"), None);
        assert_eq!(g.get("w0"), Some(Some(0)));
        // A write rotates: the older generation still answers.
        g.put("w-next", Some(1));
        assert_eq!(g.get("w0"), Some(Some(0)));
        assert_eq!(g.get("w-next"), Some(Some(1)));
        // With room again, a read is remembered (unless told not to).
        assert_eq!(g.get_or_load("r1", true, load(8)).ok(), Some(Some(8)));
        assert_eq!(g.get("r1"), Some(Some(8)));
        assert_eq!(g.get_or_load("r2", false, load(9)).ok(), Some(Some(9)));
        assert_eq!(g.get("r2"), None);
    }
}
