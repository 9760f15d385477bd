//! The write transaction: applies rules' changes, keeps every index and
//! counter, and appends events.
//!
//! - [`WriteTx`] (here): the transaction, its journal lines and its commit.
//! - [`Batch`] (`batch.rs`): the transaction with every table open, through
//!   which the engine reads and applies changes.
//! - `ops.rs`: the tables and the upkeep of every index and counter.
//! - `event_log.rs`: events stored as rows of several.
//! - `decoded.rs`: records decoded by one transaction, handed to the next.

mod batch;
mod decoded;
mod event_log;
mod ops;

pub use batch::Batch;
pub(crate) use decoded::{Decoded, DecodedSlot};
pub use event_log::EVENT_ROW_BYTES;

use super::journal::{Journal, Lines};
use super::tables;
use super::{StorageError, StoreConfig};
use crew_core::wire::{AuditEntry, Event, StreamMessage};
use crew_core::{Changes, Task, Timestamp};
use event_log::{end_event_log, EventRow};
use ops::Ops;
use redb::ReadableTable;
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
