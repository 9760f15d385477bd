//! The durable store: one redb file holding tasks, groups, workgroups, worker
//! limits, their indexes, per-group counters and the event log.
//!
//! - A store opened on a file keeps a journal beside it
//!   ([`journal`](self), see `journal.rs`): a commit syncs one small
//!   record there and commits to redb without durability, and a durable
//!   redb commit now and then empties it; opening the store replays what a
//!   crash left in it.
//! - [`Store::write`] opens one durable write transaction ([`WriteTx`]): the
//!   engine reads through it (it is a [`crew_core::GraphRead`] that sees its
//!   own writes), applies each rule's [`crew_core::Changes`] with
//!   [`WriteTx::apply`], and commits. Every change appends an event with a
//!   strictly increasing sequence number, written in the same transaction.
//!   Dropping a [`WriteTx`] without committing writes nothing.
//! - [`Store::read`] opens an MVCC snapshot ([`ReadTx`]) that runs
//!   concurrently with the writer and serves listings, views and the event
//!   log.
//!
//! Every operation is a point lookup or a range over an index: no operation
//! lists a whole group to find one thing. The tables are described in
//! [`tables`](self) (see the source of `tables.rs`).

mod error;
mod journal;
mod read;
mod tables;
mod upgrade;
mod write;
mod writeback;

pub use error::StorageError;
pub use read::{EventsPage, IncompleteTask, ReadTx, TaskQuery};
pub use write::{Batch, CommittedEvent, Synced, Unpublished, WriteTx, EVENT_ROW_BYTES};

use journal::Journal;
use redb::{Database, ReadableDatabase, StorageBackend};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The schema version this build writes. Opening a file of an earlier
/// version upgrades it in place:
/// - version 2 stores several events in a row of the event log; version 1
///   stored one, which reads the same;
/// - version 3 no longer keeps the `group_incomplete` index (the per-status
///   index answers it): the table is deleted;
/// - version 4 keys the per-group creation-time indexes by nanosecond, not
///   millisecond, so that tasks created in one request list in its order:
///   both are rebuilt from the tasks;
/// - version 5 indexes the groups by name, progress and failures, so that
///   a listing in those orders reads one page, and the groups with a
///   schedule: the indexes are built from the groups and their counters.
///
/// A file written with any other version is refused with
/// [`StorageError::SchemaMismatch`].
pub const SCHEMA_VERSION: u64 = 5;

/// Older schema versions this build opens (and upgrades, see
/// [`SCHEMA_VERSION`]).
const UPGRADABLE_SCHEMA_VERSIONS: [u64; 4] = [1, 2, 3, 4];

/// Default number of events kept for stream clients that resume.
pub const DEFAULT_EVENT_RETENTION: u64 = 100_000;

/// Default number of audit log entries kept.
pub const DEFAULT_AUDIT_RETENTION: u64 = 100_000;

/// Default size of redb's page cache: 8 MiB. The operating system caches
/// the file as well, so a small cache costs little on the hot path (4 MiB
/// did cost throughput), and it bounds what recovery leaves resident
/// (redb's own default is 1 GiB).
pub const DEFAULT_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Default longest time between two durable redb commits.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Default interval at which the background writeback looks at the
/// journal ([`StoreConfig::writeback_every`]).
pub const DEFAULT_WRITEBACK_EVERY: Duration = Duration::from_millis(100);

/// Settings of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Events kept for resume (the newest ones); older events are trimmed in
    /// the transaction that appends new ones. Default 100 000.
    pub event_retention: u64,
    /// Audit log entries kept (the newest ones), trimmed the same way.
    /// Default 100 000.
    pub audit_retention: u64,
    /// redb's page cache, in bytes (its write buffer is half of it).
    pub cache_bytes: usize,
    /// Longest time a commit made durable by the journal waits for a
    /// durable redb commit to include it: the first commit after that is
    /// one (the engine makes an empty one when it is idle). Longer means
    /// fewer full syncs and more journal to replay after a crash.
    /// Default 1 s.
    pub checkpoint_every: Duration,
    /// How often a thread of its own looks at the journal, to sync the
    /// file once a burst of commits went through it, so that the durable
    /// commit finds little left to write and stalls the engine for less
    /// (`None`: no such thread). Default [`DEFAULT_WRITEBACK_EVERY`].
    pub writeback_every: Option<Duration>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            event_retention: DEFAULT_EVENT_RETENTION,
            audit_retention: DEFAULT_AUDIT_RETENTION,
            cache_bytes: DEFAULT_CACHE_BYTES,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            writeback_every: Some(DEFAULT_WRITEBACK_EVERY),
        }
    }
}

/// Opens (or reopens) the database.
type Opener = Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// The redb file. Cheap to clone: clones share the database.
///
/// After a failed write redb refuses every later operation until the
/// database is closed and opened again; [`Store::reopen`] does that, so the
/// daemon recovers by itself once the disk accepts writes again.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: RwLock<Option<Arc<Database>>>,
    open: Opener,
    path: PathBuf,
    config: StoreConfig,
    /// Records decoded by the last committed write transaction, handed to
    /// the next one ([`write::Decoded`]).
    decoded: write::DecodedSlot,
    /// The journal, for a store on a file (`None` on a custom backend:
    /// every commit is then a durable redb commit).
    journal: Option<Journaled>,
    /// Syncs the file in the background, for a store on a file with a
    /// journal, unless turned off: checkpoints then find little left to
    /// write. Held for its `Drop`, which stops the thread.
    _writeback: Option<writeback::Writeback>,
}

/// Where the journal is, and the open journal.
struct Journaled {
    path: PathBuf,
    open: Arc<Mutex<Journal>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// How many handles (clones of this store) are alive: the file is
    /// closed, and may be opened again, once the last one is dropped.
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// Opens the store at `path`, creating the file if it is missing. A new
    /// file gets every table and the current [`SCHEMA_VERSION`]; an existing
    /// one must carry that version or one this build upgrades.
    ///
    /// Its journal is the file at `path` with `.journal` added; what a
    /// crash left there is applied before this returns.
    pub fn open(path: &Path, config: StoreConfig) -> Result<Store, StorageError> {
        let file = path.to_path_buf();
        Self::open_with(
            path,
            config,
            Box::new(move || {
                redb::Builder::new()
                    .set_cache_size(config.cache_bytes)
                    .create(&file)
            }),
            Some(journal::path_for(path)),
        )
    }

    /// Opens the store on a custom redb backend (for fault injection); the
    /// factory is called again on every [`Store::reopen`]. `path` only names
    /// the store in messages.
    pub fn open_with_backend<B, F>(
        path: &Path,
        config: StoreConfig,
        backend: F,
    ) -> Result<Store, StorageError>
    where
        B: StorageBackend,
        F: Fn() -> B + Send + Sync + 'static,
    {
        Self::open_with(
            path,
            config,
            Box::new(move || {
                redb::Builder::new()
                    .set_cache_size(config.cache_bytes)
                    .create_with_backend(backend())
            }),
            None,
        )
    }

    fn open_with(
        path: &Path,
        config: StoreConfig,
        open: Opener,
        journal_path: Option<PathBuf>,
    ) -> Result<Store, StorageError> {
        let db = open_and_prepare(&open, path)?;
        let journal = match journal_path {
            None => None,
            Some(jpath) => Some(Journaled {
                open: Arc::new(Mutex::new(recover(&db, &jpath, config)?)),
                path: jpath,
            }),
        };
        let writeback = match (&journal, config.writeback_every) {
            (Some(j), Some(every)) => {
                let journal = j.open.clone();
                writeback::Writeback::start(path, every, move || lock(&journal).appended())
            }
            _ => None,
        };
        Ok(Store {
            inner: Arc::new(Inner {
                db: RwLock::new(Some(Arc::new(db))),
                open,
                path: path.to_path_buf(),
                config,
                decoded: write::DecodedSlot::default(),
                journal,
                _writeback: writeback,
            }),
        })
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> StoreConfig {
        self.inner.config
    }

    fn db(&self) -> Result<Arc<Database>, StorageError> {
        let guard = match self.inner.db.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard
            .clone()
            .ok_or_else(|| StorageError::Unavailable("reopening after an I/O failure".into()))
    }

    /// Begins the (single) durable write transaction; waits while another
    /// one is open. Its commit returns only once the data is on disk.
    pub fn write(&self) -> Result<WriteTx, StorageError> {
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?;
        WriteTx::new(
            txn,
            self.inner.config,
            self.inner.decoded.clone(),
            self.inner.journal.as_ref().map(|j| j.open.clone()),
        )
    }

    /// How long until the journal's records are due in a durable redb
    /// commit (`Duration::ZERO`: now), or `None` when none are waiting (or
    /// the store has no journal). Any write transaction committed from
    /// then on is that durable commit, even one that writes nothing.
    pub fn checkpoint_due_in(&self) -> Option<Duration> {
        self.inner
            .journal
            .as_ref()
            .and_then(|j| lock(&j.open).checkpoint_due_in())
    }

    /// Begins a read transaction: a consistent snapshot of the last commit,
    /// concurrent with the writer.
    pub fn read(&self) -> Result<ReadTx, StorageError> {
        let txn = self.db()?.begin_read()?;
        Ok(ReadTx::new(txn))
    }

    /// Closes the database and opens it again (redb repairs it if needed).
    /// Call it after a storage failure; call it again later if it fails.
    /// Transactions still open elsewhere must end first: it waits for them
    /// briefly, then gives up and leaves the store closed until next time.
    pub fn reopen(&self) -> Result<(), StorageError> {
        let mut slot = match self.inner.db.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(old) = slot.take() {
            // The file stays locked until the last handle is gone.
            let mut old = old;
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still_shared) if Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(still_shared) => {
                        *slot = Some(still_shared);
                        return Err(StorageError::Unavailable(
                            "the database is still in use; reopening later".into(),
                        ));
                    }
                }
            }
        }
        let db = open_and_prepare(&self.inner.open, &self.inner.path)?;
        // Records the journal kept but redb lost with the failure.
        if let Some(j) = &self.inner.journal {
            let recovered = recover(&db, &j.path, self.inner.config)?;
            *lock(&j.open) = recovered;
        }
        // Remembered records may predate what was just replayed.
        self.inner.decoded.clear();
        *slot = Some(Arc::new(db));
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Opens the journal at `path` and applies, in order, the records written
/// after the last durable commit of `db`; then commits durably and empties
/// the journal.
fn recover(db: &Database, path: &Path, config: StoreConfig) -> Result<Journal, StorageError> {
    let (mut journal, records) = Journal::open(path, config.checkpoint_every)?;
    let applied = {
        let txn = db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        let seq = meta.get(tables::META_JOURNAL_SEQ)?.map(|v| v.value());
        seq
    };
    // A store that never had a journal (new, or written before journals)
    // cannot owe anything to one: a journal already there belongs to
    // another database file (one deleted, say). Its records are left
    // alone, and numbering goes on past them so that they never read as
    // the continuation of new ones.
    let (applied, records) = match applied {
        Some(seq) => (seq, records),
        None => {
            if let Some(r) = records.last() {
                tracing::warn!(
                    path = %path.display(),
                    "the journal belongs to another database file; its records are ignored"
                );
                (r.seq, Vec::new())
            } else {
                (0, records)
            }
        }
    };
    let mut last = applied;
    let mut replayed = 0u64;
    for record in records.into_iter().filter(|r| r.seq > applied) {
        if record.seq != last + 1 {
            return Err(StorageError::Corrupt {
                table: "journal",
                key: record.seq.to_string(),
                detail: format!("the store includes records up to {last} only"),
            });
        }
        let mut txn = db.begin_write()?;
        txn.set_durability(redb::Durability::None)?;
        let mut wtx = WriteTx::new(txn, config, write::DecodedSlot::default(), None)?;
        for entry in journal::entries(record.seq, &record.payload)? {
            match entry {
                journal::Entry::Apply { now, ops } => {
                    let changes = crew_core::Changes {
                        ops: ops.into_iter().map(journal::Logged::into_change).collect(),
                        wake: Vec::new(),
                    };
                    wtx.apply(&changes, now)?;
                }
                journal::Entry::WorkerLimit { worker, max, now } => {
                    wtx.set_worker_limit(&worker, max, now)?;
                }
                journal::Entry::Audit { entry, now } => {
                    wtx.record_audit(entry.into_owned(), now)?;
                }
            }
        }
        wtx.set_journal_seq(record.seq)?;
        wtx.commit()?;
        last = record.seq;
        replayed += 1;
    }
    // One durable commit for all of it; the journal starts over.
    let mut txn = db.begin_write()?;
    txn.set_durability(redb::Durability::Immediate)?;
    txn.open_table(tables::META)?
        .insert(tables::META_JOURNAL_SEQ, last)?;
    txn.commit()?;
    journal.skip_past(last);
    journal.checkpointed();
    if replayed > 0 {
        tracing::info!(replayed, "applied the journal's records after a crash");
    }
    Ok(journal)
}

/// Opens the database, checks its schema version and creates missing tables.
fn open_and_prepare(open: &Opener, path: &Path) -> Result<Database, StorageError> {
    let db = open().map_err(|source| StorageError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let found = check_schema(&db, path)?;
    let mut txn = db.begin_write()?;
    txn.set_durability(redb::Durability::Immediate)?;
    tables::create_all(&txn)?;
    if let Some(v) = found.filter(|v| *v < SCHEMA_VERSION) {
        upgrade::upgrade(&txn, v)?;
    }
    if found != Some(SCHEMA_VERSION) {
        let mut meta = txn.open_table(tables::META)?;
        meta.insert(tables::META_SCHEMA_VERSION, SCHEMA_VERSION)?;
        if found.is_none() {
            meta.insert(tables::META_NEXT_SEQ, 1u64)?;
        }
    }
    txn.commit()?;
    Ok(db)
}

/// The file's schema version, `None` when it is new (no table at all).
/// Errors when it holds a version this build neither writes nor upgrades,
/// or is not a Crew store.
fn check_schema(db: &Database, path: &Path) -> Result<Option<u64>, StorageError> {
    let txn = db.begin_read()?;
    let not_crew = |detail: String| StorageError::NotACrewStore {
        path: PathBuf::from(path),
        detail,
    };
    let meta = match txn.open_table(tables::META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            let has_tables = txn.list_tables()?.next().is_some();
            return if has_tables {
                Err(not_crew("it has tables but no schema version".into()))
            } else {
                Ok(None)
            };
        }
        Err(e @ redb::TableError::TableTypeMismatch { .. }) => return Err(not_crew(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    match meta.get(tables::META_SCHEMA_VERSION)? {
        Some(v)
            if v.value() == SCHEMA_VERSION || UPGRADABLE_SCHEMA_VERSIONS.contains(&v.value()) =>
        {
            Ok(Some(v.value()))
        }
        Some(v) => Err(StorageError::SchemaMismatch {
            path: PathBuf::from(path),
            found: v.value(),
            expected: SCHEMA_VERSION,
        }),
        None => Err(not_crew("its meta table has no schema version".into())),
    }
}
