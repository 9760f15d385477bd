//! Every scheduling rule, driven through `MemGraph` the way the daemon
//! drives its store: call the rule, apply the returned `Changes`.

#[path = "../common/mod.rs"]
mod common;

mod attempts;
mod bulk;
mod create;
mod crew_go_defects;
mod dag_errors;
mod operator;
mod results;
mod status;
