//! Dispatch: which task starts next, and the HTTP client that calls workers.

pub mod client;
pub mod scheduler;
