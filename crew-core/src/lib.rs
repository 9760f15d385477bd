//! # crew-core
//!
//! Crew's model, DAG validation, scheduling rules and wire types. No I/O:
//! rules are pure functions over a [`graph::GraphRead`] and an injected
//! clock, returning [`graph::Changes`] for the daemon to apply in one
//! transaction.

pub mod dag;
pub mod error;
pub mod graph;
pub mod model;
pub mod object_only;
mod overlay;
pub mod rules;
pub mod schedule;
mod staged;
pub mod time;
pub mod wire;
pub mod worker;

pub use error::RuleError;
pub use graph::{Change, Changes, GraphRead, MemGraph, StoreError};
pub use model::{Task, TaskGroup, TaskStatus, Workgroup, WorkgroupLimits};
pub use time::Timestamp;
