//! The console's state and its reducer, the task DAG index and the keymap.
//! Nothing here does I/O.
//!
//! - [`state`]: what the console knows and shows.
//! - [`msg`]: what the reducer takes in and the effects it asks for.
//! - [`update`]: the reducer, and the daemon's messages.
//! - [`input`]: keys, prompts and confirm dialogs.
//! - [`action`]: operator actions and their confirmation.

pub mod action;
pub mod dag;
pub mod input;
pub mod keymap;
pub mod msg;
pub mod state;
pub mod update;
