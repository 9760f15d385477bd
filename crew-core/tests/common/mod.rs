//! Shared helpers: a [`World`] holding a [`MemGraph`] and a clock, applying
//! every rule's changes the way the daemon applies them to its store.
#![allow(dead_code)]

use crew_core::graph::Change;
use crew_core::rules::{self, RetryPolicy, Start};
use crew_core::wire::{ChildTask, NewTask, NewTaskGroup, WorkerPayload};
use crew_core::worker::WorkerOutcome;
use crew_core::{Changes, MemGraph, RuleError, Task, TaskStatus, Timestamp};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh generated id.
pub fn gen_id() -> String {
    format!("gen-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// The group every test starts with.
pub const G: &str = "g1";

/// A graph, a clock, and helpers that apply what rules return.
pub struct World {
    pub g: MemGraph,
    pub now: Timestamp,
}

impl World {
    /// One empty group, [`G`], at a fixed instant.
    pub fn new() -> Self {
        let mut w = World {
            g: MemGraph::new(),
            now: Timestamp::from_unix_millis(1_700_000_000_000),
        };
        w.add_group(G);
        w
    }

    /// A world with the tasks already created in [`G`].
    pub fn with(tasks: Vec<NewTask>) -> Self {
        let mut w = World::new();
        w.create(tasks).expect("create the fixture tasks");
        w
    }

    pub fn add_group(&mut self, id: &str) {
        let c = rules::create_group(
            &self.g,
            NewTaskGroup {
                id: Some(id.into()),
                name: format!("group {id}"),
                ..Default::default()
            },
            self.now,
            &mut gen_id,
        )
        .expect("create group");
        self.g.apply(&c);
    }

    /// Applies a rule's answer when it is a success, and passes it on.
    pub fn applied(&mut self, r: Result<Changes, RuleError>) -> Result<Changes, RuleError> {
        if let Ok(c) = &r {
            self.g.apply(c);
        }
        r
    }

    /// `create_tasks` in [`G`], applied.
    pub fn create(&mut self, tasks: Vec<NewTask>) -> Result<Changes, RuleError> {
        self.create_in(G, tasks)
    }

    /// `create_tasks` in `group`, applied.
    pub fn create_in(&mut self, group: &str, tasks: Vec<NewTask>) -> Result<Changes, RuleError> {
        let r = rules::create_tasks(&self.g, group, tasks, self.now, &mut gen_id);
        self.applied(r)
    }

    /// `start_attempt`, applied.
    pub fn start(&mut self, id: &str) -> Start {
        let s = rules::start_attempt(&self.g, id, self.now).expect("start_attempt");
        match &s {
            Start::Started { changes, .. } | Start::Settled(changes) => self.g.apply(changes),
            Start::Skipped { .. } => {}
        }
        s
    }

    /// Starts a task that must start; returns the attempt and payload.
    pub fn started(&mut self, id: &str) -> (u32, WorkerPayload) {
        match self.start(id) {
            Start::Started {
                attempt, payload, ..
            } => (attempt, payload),
            other => panic!("{id} should start, got {other:?}"),
        }
    }

    /// `record_result` with the fixed policy, applied.
    pub fn result(&mut self, id: &str, attempt: u32, outcome: WorkerOutcome) -> Changes {
        self.result_with(id, attempt, outcome, RetryPolicy::Fixed, 0.0)
    }

    /// `record_result` with a policy and jitter, applied.
    pub fn result_with(
        &mut self,
        id: &str,
        attempt: u32,
        outcome: WorkerOutcome,
        policy: RetryPolicy,
        jitter: f64,
    ) -> Changes {
        let c = rules::record_result(
            &self.g,
            id,
            attempt,
            outcome,
            self.now,
            policy,
            jitter,
            &mut gen_id,
        )
        .expect("record_result");
        self.g.apply(&c);
        c
    }

    /// Starts `id` and records a success with `output`.
    pub fn run_ok(&mut self, id: &str, output: Value) -> Changes {
        let (a, _) = self.started(id);
        self.result(id, a, success(output))
    }

    /// Starts `id` and records a success with continuations.
    pub fn run_with_children(&mut self, id: &str, children: Vec<ChildTask>) -> Changes {
        let (a, _) = self.started(id);
        self.result(id, a, success_with(Value::Null, children, 0.0))
    }

    /// Starts `id` and records a failure.
    pub fn run_fail(&mut self, id: &str, message: &str) -> Changes {
        let (a, _) = self.started(id);
        self.result(id, a, WorkerOutcome::failure(message))
    }

    pub fn task(&self, id: &str) -> Task {
        self.g
            .tasks
            .get(id)
            .cloned()
            .unwrap_or_else(|| panic!("task {id} should exist"))
    }

    pub fn exists(&self, id: &str) -> bool {
        self.g.tasks.contains_key(id)
    }

    pub fn status(&self, id: &str) -> TaskStatus {
        rules::status_of(&self.g, &self.task(id), self.now).expect("status_of")
    }

    pub fn advance(&mut self, secs: f64) {
        self.now = self.now.plus_seconds(secs);
    }

    /// Ids of the tasks in [`G`], sorted.
    pub fn ids(&self) -> Vec<String> {
        self.g
            .tasks
            .values()
            .filter(|t| t.task_group_id == G)
            .map(|t| t.id.clone())
            .collect()
    }
}

/// A new task with a worker and parents.
pub fn nt(id: &str, parents: &[&str]) -> NewTask {
    NewTask {
        id: Some(id.into()),
        name: format!("task {id}"),
        worker: "w".into(),
        parent_ids: parents.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}

/// A new task with a key.
pub fn keyed(id: &str, key: &str, parents: &[&str]) -> NewTask {
    NewTask {
        key: key.into(),
        ..nt(id, parents)
    }
}

/// A new task in a workgroup.
pub fn in_wg(id: &str, workgroup: &str) -> NewTask {
    NewTask {
        workgroup: workgroup.into(),
        ..nt(id, &[])
    }
}

/// A continuation as a worker would describe it.
pub fn child(id: &str, parents: &[&str]) -> ChildTask {
    ChildTask {
        id: Some(id.into()),
        name: format!("child {id}"),
        worker: "w".into(),
        parent_ids: if parents.is_empty() {
            None
        } else {
            Some(parents.iter().map(|p| p.to_string()).collect())
        },
        ..Default::default()
    }
}

/// A plain success.
pub fn success(output: Value) -> WorkerOutcome {
    success_with(output, vec![], 0.0)
}

/// A success with continuations and a children delay.
pub fn success_with(output: Value, children: Vec<ChildTask>, delay: f64) -> WorkerOutcome {
    WorkerOutcome::Success {
        output,
        children,
        children_delay_secs: delay,
        workgroup_delay_secs: None,
    }
}

/// A rate limit of `secs`.
pub fn rate_limited(secs: f64) -> WorkerOutcome {
    WorkerOutcome::RateLimited {
        delay_secs: secs,
        message: "slow down".into(),
    }
}

/// Ids the changes create.
pub fn created_ids(c: &Changes) -> Vec<String> {
    c.ops
        .iter()
        .filter_map(|o| match o {
            Change::CreateTask(t) => Some(t.id.clone()),
            _ => None,
        })
        .collect()
}

/// Ids the changes delete.
pub fn deleted_ids(c: &Changes) -> Vec<String> {
    c.ops
        .iter()
        .filter_map(|o| match o {
            Change::DeleteTask(t) => Some(t.id.clone()),
            _ => None,
        })
        .collect()
}

/// Asserts a rule error's kind and that its message names every id.
pub fn assert_invalid_naming(r: Result<Changes, RuleError>, ids: &[&str]) -> String {
    match r {
        Err(RuleError::Invalid(m)) => {
            for id in ids {
                assert!(m.contains(id), "{m:?} should name {id}");
            }
            m
        }
        other => panic!("expected Invalid naming {ids:?}, got {other:?}"),
    }
}

/// Asserts a Conflict error.
pub fn assert_conflict(r: Result<Changes, RuleError>) -> String {
    match r {
        Err(RuleError::Conflict(m)) => m,
        other => panic!("expected Conflict, got {other:?}"),
    }
}
