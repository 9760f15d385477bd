//! `start_attempt` and `interrupt_attempt`.

use crate::common::*;
use crew_core::model::AttemptOutcome;
use crew_core::rules::{self, Start};
use crew_core::wire::NewTask;
use crew_core::TaskStatus;
use serde_json::json;

#[test]
fn started_marks_running_and_sends_the_parents_outputs() {
    let mut w = World::with(vec![
        nt("p1", &[]),
        nt("p2", &[]),
        NewTask {
            input: json!({"account": "a1"}),
            ..nt("c", &["p1", "p2"])
        },
    ]);
    w.run_ok("p1", json!({"accounts": ["a1"]}));
    w.run_ok("p2", json!(7));
    let (attempt, payload) = w.started("c");
    assert_eq!(attempt, 1);
    assert_eq!(payload.task_id, "c");
    assert_eq!(payload.worker, "w");
    assert_eq!(payload.input, json!({"account": "a1"}));
    assert_eq!(payload.parents.len(), 2);
    assert_eq!(payload.parents[0].task_id, "p1");
    assert_eq!(payload.parents[0].output, json!({"accounts": ["a1"]}));
    assert_eq!(payload.parents[1].output, json!(7));
    let t = w.task("c");
    assert!(t.busy_executing);
    assert_eq!(t.attempts, 1);
    let log = t.attempt_log.last().unwrap();
    assert_eq!(
        (log.number, log.outcome, log.started_at),
        (1, AttemptOutcome::Running, w.now)
    );
}

#[test]
fn attempt_numbers_increase() {
    let mut w = World::with(vec![NewTask {
        error_delay_in_seconds: Some(0),
        ..nt("a", &[])
    }]);
    w.run_fail("a", "x");
    let (n, _) = w.started("a");
    assert_eq!(n, 2);
}

fn skipped(w: &mut World, id: &str) -> Option<TaskStatus> {
    match w.start(id) {
        Start::Skipped { status } => status,
        other => panic!("{id} should be skipped, got {other:?}"),
    }
}

#[test]
fn skipped_when_not_ready() {
    let mut w = World::new();
    let later = w.now.plus_seconds(60.0);
    w.create(vec![
        nt("a", &[]),
        nt("waits", &["a"]),
        NewTask {
            is_paused: true,
            ..nt("paused", &[])
        },
        NewTask {
            run_after: Some(later),
            ..nt("delayed", &[])
        },
        NewTask {
            remaining_attempts: Some(0),
            ..nt("failed", &[])
        },
        nt("done", &[]),
    ])
    .unwrap();
    w.run_ok("done", json!(1));
    w.started("a");
    let before = w.g.tasks.clone();
    assert_eq!(skipped(&mut w, "a"), Some(TaskStatus::Running));
    assert_eq!(skipped(&mut w, "waits"), Some(TaskStatus::Waiting));
    assert_eq!(skipped(&mut w, "paused"), Some(TaskStatus::Paused));
    assert_eq!(skipped(&mut w, "delayed"), Some(TaskStatus::Delayed));
    assert_eq!(skipped(&mut w, "failed"), Some(TaskStatus::Failed));
    assert_eq!(skipped(&mut w, "done"), Some(TaskStatus::Completed));
    assert_eq!(skipped(&mut w, "missing"), None);
    assert_eq!(w.g.tasks, before);
}

#[test]
fn skipped_while_its_group_is_paused() {
    let mut w = World::with(vec![nt("a", &[])]);
    let c = rules::set_group_paused(&w.g, G, true);
    w.applied(c).unwrap();
    assert_eq!(skipped(&mut w, "a"), Some(TaskStatus::Paused));
}

#[test]
fn at_most_one_in_flight_per_key_and_group() {
    let mut w = World::with(vec![keyed("a", "k", &[]), keyed("b", "k", &[])]);
    w.add_group("g2");
    w.create_in("g2", vec![keyed("x", "k", &[])]).unwrap();
    w.started("a");
    assert_eq!(skipped(&mut w, "b"), Some(TaskStatus::Running));
    assert!(!w.task("b").busy_executing);
    // Another group's key is another key.
    w.started("x");
}

#[test]
fn a_failed_duplicate_lets_the_other_run_after_its_delay() {
    let mut w = World::with(vec![keyed("a", "k", &[]), keyed("b", "k", &[])]);
    let (n, _) = w.started("a");
    let c = w.result("a", n, crew_core::worker::WorkerOutcome::failure("no"));
    assert!(c.wake.contains(&"b".to_string()), "{:?}", c.wake);
    assert_eq!(skipped(&mut w, "b"), Some(TaskStatus::Delayed));
    w.advance(60.0);
    w.started("b");
}

/// Ten duplicates of a failing call: one call per error delay, not ten
/// calls in a row (each failure used to start the next duplicate at once).
#[test]
fn failing_duplicates_are_called_once_per_error_delay() {
    let ids: Vec<String> = (0..10).map(|i| format!("d{i}")).collect();
    let mut w = World::with(
        ids.iter()
            .map(|id| NewTask {
                error_delay_in_seconds: Some(60),
                remaining_attempts: Some(3),
                ..keyed(id, "SAME", &[])
            })
            .collect(),
    );
    let mut calls = Vec::new();
    for round in 0..4 {
        let mut started_this_round = 0;
        for id in &ids {
            if let Start::Started { attempt, .. } = w.start(id) {
                started_this_round += 1;
                calls.push(w.now);
                w.result(
                    id,
                    attempt,
                    crew_core::worker::WorkerOutcome::failure("HTTP 500"),
                );
            }
        }
        assert_eq!(started_this_round, 1, "round {round}: one call per delay");
        // Nothing is due before the delay is over.
        w.advance(59.0);
        for id in &ids {
            assert!(
                matches!(w.start(id), Start::Skipped { .. }),
                "round {round}: {id} started within the delay"
            );
        }
        w.advance(1.0);
    }
    assert_eq!(calls.len(), 4);
}

#[test]
fn a_rate_limited_duplicate_holds_the_others_too() {
    let mut w = World::with(vec![keyed("a", "k", &[]), keyed("b", "k", &[])]);
    let (n, _) = w.started("a");
    w.result("a", n, rate_limited(30.0));
    assert_eq!(skipped(&mut w, "b"), Some(TaskStatus::Delayed));
    assert_eq!(w.task("b").run_after, w.now.plus_seconds(30.0));
    w.advance(30.0);
    assert!(matches!(w.start("a"), Start::Started { .. }));
}

#[test]
fn a_duplicate_that_used_its_last_attempt_still_holds_the_others() {
    let mut w = World::with(vec![
        NewTask {
            remaining_attempts: Some(1),
            error_delay_in_seconds: Some(10),
            ..keyed("a", "k", &[])
        },
        keyed("b", "k", &[]),
    ]);
    w.run_fail("a", "no");
    assert_eq!(w.status("a"), TaskStatus::Failed);
    assert_eq!(skipped(&mut w, "b"), Some(TaskStatus::Delayed));
    w.advance(10.0);
    w.started("b");
}

/// A failure's hold on a duplicate waiting on its parent goes when the
/// key completes: it settled only once the failed task's retry time had
/// passed, holding its children back for nothing (no call is made).
#[test]
fn a_failures_hold_ends_when_the_key_completes() {
    let mut w = World::with(vec![
        nt("slow", &[]),
        NewTask {
            error_delay_in_seconds: Some(3600),
            ..keyed("a", "k", &[])
        },
        keyed("b", "k", &["slow"]),
    ]);
    w.run_fail("a", "no");
    assert!(w.task("b").run_after > w.now, "held by a's failure");
    // a is completed by hand while its retry waits.
    let patch = crew_core::wire::TaskPatch {
        is_complete: Some(true),
        output: Some(json!({"v": 1})),
        ..Default::default()
    };
    let c = rules::update_task(&w.g, "a", patch, w.now);
    w.applied(c).unwrap();
    w.run_ok("slow", json!(0));
    match w.start("b") {
        Start::Settled(_) => {}
        other => panic!("expected Settled at once, got {other:?}"),
    }
    assert_eq!(w.task("b").output, json!({"v": 1}));
}

/// A duplicate that waited on its parent settles, without a call, with
/// the output its key completed with, once its parent completes: it did
/// not complete with the key while its parent was incomplete (its
/// children would have run before its ancestors).
#[test]
fn a_duplicate_waiting_on_its_parent_settles_when_it_would_start() {
    let mut w = World::with(vec![
        nt("slow", &[]),
        keyed("a", "k", &[]),
        keyed("b", "k", &["slow"]),
        nt("after_b", &["b"]),
    ]);
    w.run_ok("a", json!({"v": 1}));
    assert!(!w.task("b").is_complete, "its parent is still incomplete");
    assert_eq!(w.status("after_b"), TaskStatus::Waiting);
    // Created now, with its parent incomplete, it waits too.
    let c = rules::create_tasks(
        &w.g,
        G,
        vec![keyed("late", "k", &["slow"])],
        w.now,
        &mut gen_id,
    );
    w.applied(c).unwrap();
    assert!(!w.task("late").is_complete);
    w.run_ok("slow", json!(0));
    for id in ["b", "late"] {
        match w.start(id) {
            Start::Settled(_) => {}
            other => panic!("{id}: expected Settled, got {other:?}"),
        }
        let t = w.task(id);
        assert!(t.is_complete && !t.busy_executing, "{id}");
        assert_eq!(t.output, json!({"v": 1}), "{id}");
        assert_eq!(t.attempts, 0, "{id}: no worker call was made");
    }
    assert_eq!(w.status("after_b"), TaskStatus::Ready);
}

/// Duplicates reset with their group run once: the first to complete
/// settles the other. (A duplicate reset on its own settles too, from its
/// key's earlier completion, as in crew-go.)
#[test]
fn duplicates_reset_with_their_group_run_once() {
    let mut w = World::with(vec![keyed("a", "k", &[]), keyed("b", "k", &[])]);
    w.run_ok("a", json!({"v": 1}));
    let c = rules::reset_task(&w.g, "b", None, w.now);
    w.applied(c).unwrap();
    assert!(matches!(w.start("b"), Start::Settled(_)));
    assert_eq!(w.task("b").output, json!({"v": 1}));
    let calls = w.task("b").attempts;
    let c = rules::reset_group(&w.g, G, None, w.now);
    w.applied(c).unwrap();
    w.run_ok("a", json!({"v": 3}));
    assert_eq!(w.task("b").output, json!({"v": 3}));
    assert_eq!(w.task("b").attempts, calls, "b made no call");
}

#[test]
fn interrupt_burns_no_attempt_and_the_task_runs_again() {
    let mut w = World::with(vec![nt("a", &[])]);
    let (n, _) = w.started("a");
    let c = rules::interrupt_attempt(&w.g, "a", w.now);
    w.applied(c).unwrap();
    let t = w.task("a");
    assert!(!t.busy_executing);
    assert_eq!(t.remaining_attempts, 5);
    assert!(t.errors.is_empty());
    assert_eq!(
        t.attempt_log.last().unwrap().outcome,
        AttemptOutcome::Interrupted
    );
    assert_eq!(w.status("a"), TaskStatus::Ready);
    // The interrupted attempt's late result is stale.
    let c = w.result("a", n, success(json!(1)));
    assert!(c.is_empty());
    let (n2, _) = w.started("a");
    assert_eq!(n2, n + 1);
}

#[test]
fn interrupt_of_an_idle_or_missing_task_changes_nothing() {
    let w = World::with(vec![nt("a", &[])]);
    assert!(rules::interrupt_attempt(&w.g, "a", w.now)
        .unwrap()
        .is_empty());
    assert!(rules::interrupt_attempt(&w.g, "zz", w.now)
        .unwrap()
        .is_empty());
}

#[test]
fn interrupt_wakes_same_key_tasks() {
    let mut w = World::with(vec![keyed("a", "k", &[]), keyed("b", "k", &[])]);
    w.started("a");
    let c = rules::interrupt_attempt(&w.g, "a", w.now).unwrap();
    assert!(c.wake.contains(&"b".to_string()), "{:?}", c.wake);
}
