//! The event stream: the hub the engine publishes to, and the WebSocket
//! endpoints clients follow it through.

pub mod hub;
pub mod runtime;
pub mod ws;
