//! Errors of the store.

use std::path::PathBuf;

/// A failure of the store. Nothing of the transaction it happened in is
/// committed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file could not be opened or created (permissions, locked by
    /// another process, not a redb file...).
    #[error("cannot open the store {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: redb::DatabaseError,
    },
    /// The file was written by a build with another schema version.
    #[error(
        "the store {} has schema version {found}, but this crewd uses schema version {expected}; \
         use a crewd release matching the file, or start with a new data file",
        path.display()
    )]
    SchemaMismatch {
        /// The file.
        path: PathBuf,
        /// The version stored in the file.
        found: u64,
        /// The version this build uses.
        expected: u64,
    },
    /// The file is a redb database, but not one written by Crew.
    #[error("{} is not a Crew store: {detail}", path.display())]
    NotACrewStore {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// redb failed (I/O, a full disk, a corrupted page...).
    #[error("storage failure: {0}")]
    Redb(#[from] redb::Error),
    /// A record read from the file does not decode.
    #[error("corrupt record in table {table} at {key:?}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The record's key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A change does not fit the stored state (e.g. an update of a task that
    /// does not exist). The transaction must be dropped.
    /// The database is being reopened after an I/O failure.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("inconsistent change: {0}")]
    Inconsistent(String),
    /// A read through [`crew_core::GraphRead`] failed (the message of the
    /// underlying storage error).
    #[error("{0}")]
    Read(String),
    /// A value could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being written.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

macro_rules! from_redb {
    ($($t:ty),+) => {
        $(impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                StorageError::Redb(redb::Error::from(e))
            }
        })+
    };
}

from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl From<StorageError> for crew_core::StoreError {
    fn from(e: StorageError) -> Self {
        crew_core::StoreError(e.to_string())
    }
}

impl From<crew_core::RuleError> for StorageError {
    fn from(e: crew_core::RuleError) -> Self {
        match e {
            crew_core::RuleError::Store(s) => StorageError::Read(s.0),
            other => StorageError::Inconsistent(other.to_string()),
        }
    }
}
