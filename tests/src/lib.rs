//! Helpers for end-to-end tests, and the benchmark harness behind the
//! `crew-bench` binary.

pub mod bench;
