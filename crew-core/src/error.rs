//! Why a rule refused a command.

use crate::graph::StoreError;

/// A refused command. Each kind maps to one HTTP status in the daemon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The task, group or workgroup does not exist (404).
    #[error("{what} {id:?} not found")]
    NotFound {
        /// "task", "task group"...
        what: &'static str,
        /// The id that was asked for.
        id: String,
    },
    /// The request is malformed or breaks a rule (422).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state, e.g. the task is
    /// running or the id is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// Storage failed; nothing was applied (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RuleError {
    /// A not-found error for a task.
    pub fn task_not_found(id: &str) -> Self {
        RuleError::NotFound {
            what: "task",
            id: id.to_string(),
        }
    }

    /// A not-found error for a group.
    pub fn group_not_found(id: &str) -> Self {
        RuleError::NotFound {
            what: "task group",
            id: id.to_string(),
        }
    }
}
