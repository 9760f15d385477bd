//! The event log's rows: several events a row, each row filling at most
//! one redb page, trimmed to the retention at commit.

use super::super::tables;
use super::super::StorageError;
use crew_core::wire::{Event, StreamMessage};
use redb::ReadableTable;

/// Stores `next_seq` and trims the event log to the newest `retention`
/// events: once per transaction, after its events are written. Rows go
/// whole, so the row holding the oldest event kept stays; readers skip the
/// events in it that are older ([`tables::META_EVENTS_FROM`]).
pub(super) fn end_event_log(
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
pub(super) struct EventRow {
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
    pub(super) fn push(
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
    pub(super) fn write(
        &mut self,
        log: &mut redb::Table<'_, u64, &'static [u8]>,
    ) -> Result<(), StorageError> {
        if !self.lines.is_empty() {
            log.insert(self.first_seq, self.lines.as_slice())?;
            self.lines.clear();
        }
        Ok(())
    }
}

/// A task event's JSON with the task's stored record (the task without its
/// status) spliced in: the same JSON object `serde_json` would write for
/// `msg`, with the task's `status` first, for the price of copying the
/// record rather than encoding the task a second time. `None` when `msg`
/// is not a task's creation or update with a status, or the record is not
/// a JSON object.
pub(super) fn task_event_json(
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
