//! # crewd
//!
//! The Crew daemon: durable state in redb, webhook dispatch, the REST API and
//! the WebSocket event stream. Thin shells around `crew-core`, joined by
//! channels:
//!
//! - [`storage`]: the redb file, its indexes and the event log;
//! - [`engine`]: the single writer: applies commands and worker results in
//!   batched durable transactions, then publishes events;
//! - [`dispatch`]: the ready queues, limits, timers and the worker client;
//! - [`api`]: the axum REST API;
//! - [`stream`]: the event hub and the WebSocket endpoints;
//! - [`http`]: serving them over HTTP/1.1, with a deadline for requests' heads;
//! - [`metrics`]: the Prometheus metrics behind `GET /metrics`.

pub mod api;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod opening;
pub mod recurring;
pub mod retention;
pub mod server;
pub mod storage;
pub mod stream;
