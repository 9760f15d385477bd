//! The journal: a small append-only file beside the redb file that makes a
//! write transaction durable with one sequential write and one
//! `fdatasync`, instead of redb's durable commit (about twenty scattered
//! pages and their sync, the largest part of a chain step's latency).
//!
//! - Each write transaction notes what it applies ([`Entry`]: the rules'
//!   changes, worker limits, audit entries) as one JSON line each.
//! - At commit the lines go to the journal as one record, synced, and only
//!   then does redb commit, *without* durability, with the record's
//!   sequence number in its `meta` table.
//! - Once the oldest record is [`super::StoreConfig::checkpoint_every`] old
//!   (or the journal holds [`CHECKPOINT_BYTES`]), a transaction commits
//!   durably instead (redb also frees pages only then), and the journal
//!   starts over. The engine makes that commit itself when it has nothing
//!   else to do ([`Journal::checkpoint_due_in`]), so that an operator's
//!   command after a quiet spell does not wait for it.
//! - After a crash redb comes back at its last durable commit; opening the
//!   store replays the records written after it, in order, through the same
//!   code that applied them the first time.
//!
//! A record is `len: u32 LE | seq: u64 LE | checksum: 8 bytes | payload`
//! (`len` counts the payload; the checksum is the XXH3 hash of the payload
//! seeded with `seq`, little-endian). Reading stops at the first record
//! that is short, fails its checksum or does not carry the next sequence
//! number: a torn tail is a record whose sync never returned, so nothing it
//! held was acknowledged. Records written by earlier versions carry the
//! start of the SHA-256 of `seq` and the payload instead, and are still
//! read (hashing every record so took a tenth of the engine's time).
//!
//! The file is written with zeros ahead of the records ([`GROW_BY`] at a
//! time) and never shrinks: a sync then writes the record's pages only,
//! not the file's size as well. After a checkpoint, records start again at
//! the beginning, over older ones; those carry lower numbers, so reading
//! stops where the new ones end.

use super::StorageError;
use crew_core::wire::AuditEntry;
use crew_core::{Change, Task, TaskGroup, Timestamp, Workgroup};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Journal size that brings the next durable redb commit forward.
pub const CHECKPOINT_BYTES: u64 = 32 * 1024 * 1024;
/// A transaction that applied more than this commits durably to redb
/// rather than through the journal (a large group's creation): one big
/// record would cost as much as the commit, and then again at replay.
pub const DIRECT_BYTES: usize = 4 * 1024 * 1024;
/// How much the file grows at a time, written with zeros.
const GROW_BY: u64 = 4 * 1024 * 1024;
/// Bytes before a record's payload.
const HEADER: usize = 4 + 8 + 8;
/// A record larger than this is not one we wrote: reading stops there.
const MAX_RECORD: usize = 1 << 30;

/// One applied write, as the journal keeps it: enough to apply it again
/// to the state it was first applied to, and get the same result.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Entry<'a> {
    /// [`super::Batch::apply`] of these changes at `now`.
    Apply {
        /// The transaction's clock.
        now: Timestamp,
        /// The changes, in order.
        ops: Vec<Logged<'a>>,
    },
    /// [`super::Batch::set_worker_limit`].
    WorkerLimit {
        /// The worker.
        worker: Cow<'a, str>,
        /// Its limit, `None` for none.
        max: Option<u32>,
        /// The transaction's clock.
        now: Timestamp,
    },
    /// [`super::Batch::record_audit`], with the entry as it was given.
    Audit {
        /// The operator action.
        entry: Cow<'a, AuditEntry>,
        /// The transaction's clock.
        now: Timestamp,
    },
}

/// A [`Change`] as the journal keeps it. An update keeps only the new
/// version: applying a change reads the stored one (it never trusts the
/// `before` a change carries).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Logged<'a> {
    /// [`Change::CreateTask`].
    CreateTask(Cow<'a, Task>),
    /// [`Change::UpdateTask`], its `after`.
    UpdateTask(Cow<'a, Task>),
    /// [`Change::DeleteTask`].
    DeleteTask(Cow<'a, Task>),
    /// [`Change::CreateGroup`].
    CreateGroup(Cow<'a, TaskGroup>),
    /// [`Change::UpdateGroup`].
    UpdateGroup(Cow<'a, TaskGroup>),
    /// [`Change::DeleteGroup`].
    DeleteGroup(Cow<'a, TaskGroup>),
    /// [`Change::PutWorkgroup`].
    PutWorkgroup(Cow<'a, Workgroup>),
}

impl<'a> Logged<'a> {
    /// How `change` is journaled (borrowing it).
    pub(crate) fn of(change: &'a Change) -> Logged<'a> {
        match change {
            Change::CreateTask(t) => Logged::CreateTask(Cow::Borrowed(t)),
            Change::UpdateTask { after, .. } => Logged::UpdateTask(Cow::Borrowed(after)),
            Change::DeleteTask(t) => Logged::DeleteTask(Cow::Borrowed(t)),
            Change::CreateGroup(g) => Logged::CreateGroup(Cow::Borrowed(g)),
            Change::UpdateGroup(g) => Logged::UpdateGroup(Cow::Borrowed(g)),
            Change::DeleteGroup(g) => Logged::DeleteGroup(Cow::Borrowed(g)),
            Change::PutWorkgroup(w) => Logged::PutWorkgroup(Cow::Borrowed(w)),
        }
    }

    /// The change to apply again.
    pub(crate) fn into_change(self) -> Change {
        match self {
            Logged::CreateTask(t) => Change::CreateTask(t.into_owned()),
            Logged::UpdateTask(t) => {
                let after = Box::new(t.into_owned());
                Change::UpdateTask {
                    // Never read when applying (the stored version is).
                    before: after.clone(),
                    after,
                }
            }
            Logged::DeleteTask(t) => Change::DeleteTask(t.into_owned()),
            Logged::CreateGroup(g) => Change::CreateGroup(g.into_owned()),
            Logged::UpdateGroup(g) => Change::UpdateGroup(g.into_owned()),
            Logged::DeleteGroup(g) => Change::DeleteGroup(g.into_owned()),
            Logged::PutWorkgroup(w) => Change::PutWorkgroup(w.into_owned()),
        }
    }
}

/// What a write transaction has applied so far, for the journal.
#[derive(Debug)]
pub(crate) enum Lines {
    /// The store has no journal.
    Off,
    /// One JSON [`Entry`] per line.
    Noted(Vec<u8>),
    /// More than [`DIRECT_BYTES`]: the transaction commits durably to
    /// redb, and is not noted further.
    TooLarge,
}

fn encode_err(source: serde_json::Error) -> StorageError {
    StorageError::Encode {
        what: "journal entry",
        source,
    }
}

impl Lines {
    /// Ends a line just written; past [`DIRECT_BYTES`], stops noting.
    fn end_line(&mut self) {
        if let Lines::Noted(lines) = self {
            lines.push(b'\n');
            if lines.len() > DIRECT_BYTES {
                *self = Lines::TooLarge;
            }
        }
    }

    /// Notes the entry `entry` builds, unless there is no journal or the
    /// transaction is already too large for it.
    pub(crate) fn note<'e>(
        &mut self,
        entry: impl FnOnce() -> Entry<'e>,
    ) -> Result<(), StorageError> {
        let Lines::Noted(lines) = self else {
            return Ok(());
        };
        serde_json::to_writer(&mut *lines, &entry()).map_err(encode_err)?;
        self.end_line();
        Ok(())
    }

    /// Notes [`Entry::Apply`] of `ops` at `now`. `records[i]`, when given,
    /// is the stored record of the task `ops[i]` creates or updates: the
    /// same JSON, written as is rather than encoded again.
    pub(crate) fn note_apply(
        &mut self,
        now: Timestamp,
        ops: &[Change],
        records: &[Option<Vec<u8>>],
    ) -> Result<(), StorageError> {
        let Lines::Noted(lines) = self else {
            return Ok(());
        };
        lines.extend_from_slice(b"{\"Apply\":{\"now\":");
        serde_json::to_writer(&mut *lines, &now).map_err(encode_err)?;
        lines.extend_from_slice(b",\"ops\":[");
        for (i, op) in ops.iter().enumerate() {
            if i > 0 {
                lines.push(b',');
            }
            let record = records.get(i).and_then(Option::as_deref);
            let tag: &[u8] = match op {
                Change::CreateTask(_) => b"{\"CreateTask\":",
                Change::UpdateTask { .. } => b"{\"UpdateTask\":",
                _ => b"",
            };
            match record {
                Some(record) if !tag.is_empty() => {
                    lines.extend_from_slice(tag);
                    lines.extend_from_slice(record);
                    lines.push(b'}');
                }
                _ => serde_json::to_writer(&mut *lines, &Logged::of(op)).map_err(encode_err)?,
            }
        }
        lines.extend_from_slice(b"]}}");
        self.end_line();
        Ok(())
    }
}

/// The entries of one record's payload, in order.
pub(crate) fn entries(seq: u64, payload: &[u8]) -> Result<Vec<Entry<'static>>, StorageError> {
    payload
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            super::tables::from_stored_json::<Entry<'static>>(line).map_err(|e| {
                StorageError::Corrupt {
                    table: "journal",
                    key: seq.to_string(),
                    detail: e.to_string(),
                }
            })
        })
        .collect()
}

/// A record read back: its sequence number and payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// Its JSON lines.
    pub payload: Vec<u8>,
}

/// The journal file, open for appending.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    /// Bytes of valid records: the next one is written here.
    len: u64,
    /// Bytes of the file (records, then older records or zeros).
    allocated: u64,
    /// Sequence number of the next record.
    next_seq: u64,
    /// Bytes appended since the journal was opened: unlike `len`, it does
    /// not start over at a checkpoint.
    appended: u64,
    /// When the oldest record not yet in a durable redb commit was
    /// written (`None`: there is none).
    oldest_record_at: Option<Instant>,
    checkpoint_every: Duration,
}

/// The journal's file name for a store at `db`: beside it, `.journal` added.
pub(crate) fn path_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".journal");
    PathBuf::from(p)
}

fn checksum(seq: u64, payload: &[u8]) -> [u8; 8] {
    xxhash_rust::xxh3::xxh3_64_with_seed(payload, seq).to_le_bytes()
}

/// The checksum journals written by earlier versions carry: the start of
/// the SHA-256 of `seq` and the payload. Accepted when reading, so that
/// records written before an upgrade are replayed after it.
fn legacy_checksum(seq: u64, payload: &[u8]) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(seq.to_le_bytes());
    h.update(payload);
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("journal {}: {what}: {e}", path.display()))
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads its valid
    /// records. Whatever follows them (a torn record) is overwritten by the
    /// next append.
    pub(crate) fn open(
        path: &Path,
        checkpoint_every: Duration,
    ) -> Result<(Journal, Vec<Record>), StorageError> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_err(path, "cannot open", e))?;
        if !existed {
            // A new file's name must outlive a crash as well as its records.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_err(path, "cannot sync its directory", e))?;
            }
        }
        let read = file
            .metadata()
            .and_then(|m| Ok((m.len(), read_records(&file, m.len())?)));
        let (size, (records, len)) = read.map_err(|e| io_err(path, "cannot read", e))?;
        let next_seq = records.last().map_or(1, |r| r.seq + 1);
        Ok((
            Journal {
                file,
                path: path.to_path_buf(),
                len,
                allocated: size,
                next_seq,
                appended: 0,
                // The records read here are applied and committed durably
                // as the store opens.
                oldest_record_at: None,
                checkpoint_every,
            },
            records,
        ))
    }

    /// Bytes appended since the journal was opened.
    pub(crate) fn appended(&self) -> u64 {
        self.appended
    }

    /// Sequence number of the next record.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Makes sure the next record's number is above `seq` (the last one a
    /// durable commit includes), so numbers never repeat.
    pub(crate) fn skip_past(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq + 1);
    }

    /// Whether the next commit should be a durable one.
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.checkpoint_due_in() == Some(Duration::ZERO)
    }

    /// How long until a durable commit is due (`Duration::ZERO`: now), or
    /// `None` while every record is in one already.
    pub(crate) fn checkpoint_due_in(&self) -> Option<Duration> {
        let since = self.oldest_record_at?;
        if self.len >= CHECKPOINT_BYTES {
            return Some(Duration::ZERO);
        }
        Some(self.checkpoint_every.saturating_sub(since.elapsed()))
    }

    /// Writes one record and syncs it; returns once it is on disk. On
    /// failure the journal is as it was (what was written is cut off).
    pub(crate) fn append(&mut self, seq: u64, payload: &[u8]) -> Result<(), StorageError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|n| (*n as usize) < MAX_RECORD)
            .ok_or_else(|| {
                StorageError::Unavailable(format!(
                    "journal record of {} bytes is too large",
                    payload.len()
                ))
            })?;
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..12].copy_from_slice(&seq.to_le_bytes());
        header[12..].copy_from_slice(&checksum(seq, payload));
        let end = self.len + (HEADER + payload.len()) as u64;
        let written = self
            .grow_to(end)
            .and_then(|()| self.file.write_all_at(&header, self.len))
            .and_then(|()| self.file.write_all_at(payload, self.len + HEADER as u64))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.cut_back();
            return Err(io_err(&self.path, "cannot append", e));
        }
        self.appended += end - self.len;
        self.len = end;
        self.next_seq = seq + 1;
        self.oldest_record_at.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Extends the file with zeros so that it holds at least `end` bytes.
    fn grow_to(&mut self, end: u64) -> std::io::Result<()> {
        if end <= self.allocated {
            return Ok(());
        }
        let target = end.div_ceil(GROW_BY) * GROW_BY;
        // Small writes from one static block: no large buffer is allocated
        // (freeing one would make the allocator keep later ones resident).
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let mut at = self.allocated;
        while at < target {
            let n = (target - at).min(ZEROS.len() as u64) as usize;
            self.file.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        self.allocated = target;
        Ok(())
    }

    /// Ends the journal at its valid records: zeros over whatever record
    /// header follows them.
    fn cut_back(&mut self) {
        let cut = self
            .file
            .write_all_at(&[0u8; HEADER], self.len)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = cut {
            tracing::warn!(path = %self.path.display(), "cannot cut the journal back: {e}");
        }
    }

    /// A durable commit includes every record: the next one goes at the
    /// start. Nothing needs writing: the older records there carry numbers
    /// at or below the one that commit stored, so they are skipped, and a
    /// new record written over them ends them.
    pub(crate) fn checkpointed(&mut self) {
        self.oldest_record_at = None;
        self.len = 0;
    }

    /// Bytes of valid records.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

/// The valid records at the start of `file` (`size` bytes), and the
/// bytes they take. Reads record by record: the zeros that follow them are
/// never read into memory.
fn read_records(file: &File, size: u64) -> std::io::Result<(Vec<Record>, u64)> {
    let mut records: Vec<Record> = Vec::new();
    let mut at = 0u64;
    let mut header = [0u8; HEADER];
    while at + HEADER as u64 <= size {
        file.read_exact_at(&mut header, at)?;
        let mut len4 = [0u8; 4];
        len4.copy_from_slice(&header[..4]);
        let len = u32::from_le_bytes(len4) as usize;
        let mut seq8 = [0u8; 8];
        seq8.copy_from_slice(&header[4..12]);
        let seq = u64::from_le_bytes(seq8);
        let end = at + (HEADER + len) as u64;
        if len >= MAX_RECORD || end > size {
            break;
        }
        if records.last().is_some_and(|r| r.seq + 1 != seq) {
            break;
        }
        let mut payload = vec![0u8; len];
        file.read_exact_at(&mut payload, at + HEADER as u64)?;
        let sum = &header[12..HEADER];
        if sum != checksum(seq, &payload) && sum != legacy_checksum(seq, &payload) {
            break;
        }
        records.push(Record { seq, payload });
        at = end;
    }
    Ok((records, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn tmp() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("crew.redb.journal");
        (dir, path)
    }

    #[test]
    fn records_read_back_in_order() {
        let (_dir, path) = tmp();
        let (mut j, records) = Journal::open(&path, HOUR).expect("open");
        assert!(records.is_empty());
        assert_eq!(j.next_seq(), 1);
        j.append(1, b"one\n").expect("append");
        j.append(2, b"two\n").expect("append");
        drop(j);
        let (j, records) = Journal::open(&path, HOUR).expect("reopen");
        assert_eq!(
            records,
            vec![
                Record {
                    seq: 1,
                    payload: b"one\n".to_vec()
                },
                Record {
                    seq: 2,
                    payload: b"two\n".to_vec()
                },
            ]
        );
        assert_eq!(j.next_seq(), 3);
    }

    #[test]
    fn a_torn_or_damaged_tail_ends_the_journal() {
        let (_dir, path) = tmp();
        let (mut j, _) = Journal::open(&path, HOUR).expect("open");
        j.append(7, b"kept\n").expect("append");
        j.append(8, b"damaged\n").expect("append");
        let good = HEADER + 5;
        drop(j);
        let mut bytes = std::fs::read(&path).expect("read");
        // Flip a payload byte of the second record.
        bytes[good + HEADER + 1] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let (mut j, records) = Journal::open(&path, HOUR).expect("reopen");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].seq, 7);
        assert_eq!(j.len(), good as u64);
        // The next record goes over the damaged one.
        j.append(8, b"again\n").expect("append");
        let end = j.len() as usize;
        drop(j);
        // A header whose payload never reached the disk is ignored too.
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[end..end + 4].copy_from_slice(&100u32.to_le_bytes());
        bytes[end + 4..end + 12].copy_from_slice(&9u64.to_le_bytes());
        bytes[end + 12..end + HEADER].copy_from_slice(b"checksum");
        std::fs::write(&path, &bytes).expect("write");
        let (_, records) = Journal::open(&path, HOUR).expect("reopen");
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![7, 8]);
        assert_eq!(records[1].payload, b"again\n");
    }

    /// Records written before the checksum changed are replayed after an
    /// upgrade, followed by the new ones.
    #[test]
    fn records_with_the_earlier_checksum_are_read() {
        let (_dir, path) = tmp();
        let mut bytes = Vec::new();
        for (seq, payload) in [(1u64, b"old one\n".as_slice()), (2, b"old two\n")] {
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&seq.to_le_bytes());
            bytes.extend_from_slice(&legacy_checksum(seq, payload));
            bytes.extend_from_slice(payload);
        }
        std::fs::write(&path, &bytes).expect("write");
        let (mut j, records) = Journal::open(&path, HOUR).expect("open");
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].payload, b"old two\n");
        j.append(3, b"new\n").expect("append");
        drop(j);
        let (_, records) = Journal::open(&path, HOUR).expect("reopen");
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn a_gap_in_numbers_ends_the_journal() {
        let (_dir, path) = tmp();
        let (mut j, _) = Journal::open(&path, HOUR).expect("open");
        j.append(3, b"a\n").expect("append");
        j.append(5, b"b\n").expect("append");
        drop(j);
        let (_, records) = Journal::open(&path, HOUR).expect("reopen");
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn after_a_checkpoint_records_start_over_and_numbers_go_on() {
        let (_dir, path) = tmp();
        let (mut j, _) = Journal::open(&path, HOUR).expect("open");
        j.append(1, b"a\n").expect("append");
        j.append(2, b"b\n").expect("append");
        let appended = j.appended();
        assert_eq!(appended, 2 * (HEADER as u64 + 2));
        j.checkpointed();
        assert_eq!(j.len(), 0);
        assert_eq!(j.appended(), appended, "counts on past a checkpoint");
        let next = j.next_seq();
        assert_eq!(next, 3);
        // Written over record 1; record 2 follows it, out of sequence.
        j.append(next, b"c\n").expect("append");
        drop(j);
        let (_, records) = Journal::open(&path, HOUR).expect("reopen");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].seq, 3);
    }

    #[test]
    fn a_checkpoint_is_due_once_the_oldest_record_is_old_enough() {
        let (_dir, path) = tmp();
        let every = Duration::from_millis(300);
        let (mut j, _) = Journal::open(&path, every).expect("open");
        // Nothing written: nothing is owed, however long it stays so.
        std::thread::sleep(every);
        assert_eq!(j.checkpoint_due_in(), None);
        assert!(!j.checkpoint_due());
        // The clock starts with the first record, not the last checkpoint.
        j.append(1, b"a\n").expect("append");
        let due = j.checkpoint_due_in().expect("a record is waiting");
        assert!(due > Duration::ZERO && due <= every, "{due:?}");
        assert!(!j.checkpoint_due());
        // A later record does not push it back.
        std::thread::sleep(every / 2);
        j.append(2, b"b\n").expect("append");
        let later = j.checkpoint_due_in().expect("records are waiting");
        assert!(later < due, "{later:?} after {due:?}");
        std::thread::sleep(every / 2);
        assert_eq!(j.checkpoint_due_in(), Some(Duration::ZERO));
        assert!(j.checkpoint_due());
        j.checkpointed();
        assert_eq!(j.checkpoint_due_in(), None);
        assert!(!j.checkpoint_due());
    }
}
