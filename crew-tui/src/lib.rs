//! # crew-tui
//!
//! The Crew operator console, in three parts that are tested alone:
//!
//! - [`app`]: the state and its reducer ([`app::update::update`]) over keys,
//!   server messages and ticks, plus the keymap. No I/O.
//! - [`view`]: a pure render of the state ([`view::draw`]).
//! - [`net`] and [`run`]: the I/O tasks (REST client, event stream with
//!   reconnect, terminal input) joined to the main loop by channels.

pub mod app;
pub mod demo;
pub mod net;
pub mod run;
pub mod sanitize;
pub mod text;
pub mod theme;
pub mod view;

pub use app::msg::{Effect, Msg};
pub use app::state::AppState;
pub use app::update::update;
