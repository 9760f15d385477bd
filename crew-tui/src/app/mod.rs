//! The console's state, its reducer, the task DAG index and the keymap.
//! Nothing here does I/O.

pub mod dag;
pub mod keymap;
pub mod state;
