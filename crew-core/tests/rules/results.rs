//! `record_result`: success, continuations, failure, rate limits, stale
//! results.

use crate::common::*;
use crew_core::graph::Change;
use crew_core::model::{AttemptOutcome, TaskError};
use crew_core::rules::{self, RetryPolicy};
use crew_core::wire::NewTask;
use crew_core::worker::WorkerOutcome;
use crew_core::TaskStatus;
use serde_json::json;

#[test]
fn success_completes_with_the_output() {
    let mut w = World::with(vec![nt("a", &[])]);
    let (n, _) = w.started("a");
    w.advance(2.0);
    w.result("a", n, success(json!({"rows": 120})));
    let t = w.task("a");
    assert!(t.is_complete && !t.busy_executing);
    assert_eq!(t.output, json!({"rows": 120}));
    let log = t.attempt_log.last().unwrap();
    assert_eq!(log.outcome, AttemptOutcome::Succeeded);
    assert_eq!(log.finished_at, Some(w.now));
    assert_eq!(t.remaining_attempts, 5);
}

#[test]
fn continuations_are_created_with_the_completion() {
    let mut w = World::with(vec![nt("x", &[]), nt("a", &[])]);
    let (n, _) = w.started("a");
    let c = w.result(
        "a",
        n,
        success_with(
            json!(1),
            vec![child("c1", &[]), child("c2", &["c1"]), child("c3", &["x"])],
            0.0,
        ),
    );
    // One change set: the completion and every child.
    assert!(c.ops.iter().any(
        |o| matches!(o, Change::UpdateTask { after, .. } if after.id == "a" && after.is_complete)
    ));
    assert_eq!(created_ids(&c), vec!["c1", "c2", "c3"]);
    assert_eq!(w.task("c1").parent_ids, vec!["a"]);
    assert_eq!(w.task("c2").parent_ids, vec!["c1", "a"]);
    assert_eq!(w.task("c3").parent_ids, vec!["x", "a"]);
    for id in ["c1", "c2", "c3"] {
        assert_eq!(w.task(id).created_by.as_deref(), Some("a"), "{id}");
        assert_eq!(w.task(id).task_group_id, G);
    }
    assert_eq!(w.status("c1"), TaskStatus::Ready);
    assert_eq!(w.status("c2"), TaskStatus::Waiting);
    assert_eq!(w.status("c3"), TaskStatus::Waiting);
}

#[test]
fn a_child_naming_its_creator_lists_it_once() {
    let mut w = World::with(vec![nt("a", &[])]);
    w.run_with_children("a", vec![child("c", &["a"])]);
    assert_eq!(w.task("c").parent_ids, vec!["a"]);
}

#[test]
fn children_without_ids_get_generated_ones() {
    let mut w = World::with(vec![nt("a", &[])]);
    let mut ch = child("unused", &[]);
    ch.id = None;
    let c = w.run_with_children("a", vec![ch]);
    let ids = created_ids(&c);
    assert_eq!(ids.len(), 1);
    assert!(ids[0].starts_with("gen-"));
}

#[test]
fn children_delay_sets_run_after() {
    let mut w = World::with(vec![nt("a", &[])]);
    let (n, _) = w.started("a");
    w.result(
        "a",
        n,
        success_with(json!(1), vec![child("c", &[]), child("d", &[])], 5.0),
    );
    for id in ["c", "d"] {
        assert_eq!(w.task(id).run_after, w.now.plus_seconds(5.0));
        assert_eq!(w.status(id), TaskStatus::Delayed);
    }
    w.advance(5.0);
    assert_eq!(w.status("c"), TaskStatus::Ready);
}

#[test]
fn children_delay_keeps_a_later_schedule_of_the_child() {
    let mut w = World::with(vec![nt("a", &[])]);
    let (n, _) = w.started("a");
    let mut late = child("late", &[]);
    late.run_after = Some(w.now.plus_seconds(3600.0));
    w.result("a", n, success_with(json!(1), vec![late], 5.0));
    assert_eq!(w.task("late").run_after, w.now.plus_seconds(3600.0));
}

#[test]
fn children_of_the_completed_task_are_woken() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &["a"]), nt("c", &["a"])]);
    let c = w.run_ok("a", json!(1));
    assert!(c.wake.contains(&"b".to_string()), "{:?}", c.wake);
    assert!(c.wake.contains(&"c".to_string()), "{:?}", c.wake);
    assert_eq!(w.status("b"), TaskStatus::Ready);
}

#[test]
fn same_key_duplicates_complete_and_release_their_children() {
    let mut w = World::with(vec![
        keyed("a", "k", &[]),
        keyed("b", "k", &[]),
        NewTask {
            is_paused: true,
            ..keyed("c", "k", &[])
        },
        nt("after_b", &["b"]),
        keyed("other", "k2", &[]),
    ]);
    let c = w.run_ok("a", json!({"shared": true}));
    for id in ["b", "c"] {
        let t = w.task(id);
        assert!(t.is_complete, "{id}");
        assert_eq!(t.output, json!({"shared": true}));
    }
    assert!(!w.task("other").is_complete);
    assert!(c.wake.contains(&"after_b".to_string()), "{:?}", c.wake);
    assert_eq!(w.status("after_b"), TaskStatus::Ready);
}

#[test]
fn a_success_with_a_workgroup_delay_pauses_the_workgroup() {
    let mut w = World::with(vec![in_wg("a", "api"), in_wg("b", "api")]);
    let (n, _) = w.started("a");
    w.result(
        "a",
        n,
        WorkerOutcome::Success {
            output: json!(1),
            children: vec![],
            children_delay_secs: 0.0,
            workgroup_delay_secs: Some(120.0),
        },
    );
    assert!(w.task("a").is_complete);
    let wg = w.g.workgroups.get("api").unwrap();
    assert_eq!(wg.paused_until, Some(w.now.plus_seconds(120.0)));
    assert!(!wg.paused_by_operator);
    assert_eq!(w.status("b"), TaskStatus::Delayed);
}

#[test]
fn invalid_children_fail_the_attempt_and_create_nothing() {
    let mut w = World::with(vec![
        nt("taken", &[]),
        keyed("a", "k", &[]),
        keyed("twin", "k", &[]),
    ]);
    let cases = vec![
        (vec![child("ok", &[]), child("bad", &["ghost"])], "ghost"),
        (vec![child("dup", &[]), child("dup", &[])], "dup"),
        (vec![child("taken", &[])], "taken"),
        (
            vec![child("loop1", &["loop2"]), child("loop2", &["loop1"])],
            "loop1",
        ),
        (
            vec![{
                let mut c = child("noworker", &[]);
                c.worker = String::new();
                c
            }],
            "worker",
        ),
    ];
    let before = w.ids();
    let mut remaining = 5;
    for (i, (children, named)) in cases.into_iter().enumerate() {
        w.advance(3600.0);
        let (n, _) = w.started("a");
        let c = w.result("a", n, success_with(json!(1), children, 0.0));
        assert!(created_ids(&c).is_empty(), "case {i}");
        assert_eq!(w.ids(), before, "case {i}: nothing created");
        let t = w.task("a");
        assert!(!t.is_complete && !t.busy_executing, "case {i}");
        remaining -= 1;
        assert_eq!(t.remaining_attempts, remaining, "case {i}");
        let msg = t.errors.last().unwrap().message();
        assert!(msg.contains("children were refused"), "case {i}: {msg}");
        assert!(msg.contains(named), "case {i}: {msg} should name {named}");
        assert_eq!(
            t.attempt_log.last().unwrap().outcome,
            AttemptOutcome::Failed
        );
        // The duplicate held back by the key may run now.
        assert!(
            c.wake.contains(&"twin".to_string()),
            "case {i}: {:?}",
            c.wake
        );
        assert!(!w.task("twin").is_complete);
    }
}

#[test]
fn failure_records_the_error_burns_an_attempt_and_delays() {
    let mut w = World::with(vec![NewTask {
        error_delay_in_seconds: Some(30),
        ..nt("a", &[])
    }]);
    let (n, _) = w.started("a");
    w.result("a", n, WorkerOutcome::failure("HTTP 500: boom"));
    let t = w.task("a");
    assert!(!t.busy_executing && !t.is_complete);
    assert_eq!(t.remaining_attempts, 4);
    match &t.errors[..] {
        [TaskError::Recorded(e)] => {
            assert_eq!(e.message, "HTTP 500: boom");
            assert_eq!(e.at, w.now);
            assert_eq!(e.attempt, n);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.run_after, w.now.plus_seconds(30.0));
    assert_eq!(w.status("a"), TaskStatus::Delayed);
    w.advance(30.0);
    assert_eq!(w.status("a"), TaskStatus::Ready);
}

#[test]
fn the_last_failure_leaves_the_task_failed() {
    let mut w = World::with(vec![NewTask {
        remaining_attempts: Some(2),
        error_delay_in_seconds: Some(1),
        ..nt("a", &[])
    }]);
    w.run_fail("a", "one");
    w.advance(1.0);
    w.run_fail("a", "two");
    let t = w.task("a");
    assert_eq!(t.remaining_attempts, 0);
    assert_eq!(t.errors.len(), 2);
    assert_eq!(w.status("a"), TaskStatus::Failed);
    w.advance(1e6);
    assert!(matches!(
        w.start("a"),
        rules::Start::Skipped {
            status: Some(TaskStatus::Failed)
        }
    ));
}

#[test]
fn exponential_backoff_doubles_is_capped_and_jittered() {
    let policy = RetryPolicy::Exponential { cap_secs: 100 };
    let mut w = World::with(vec![NewTask {
        remaining_attempts: Some(10),
        error_delay_in_seconds: Some(10),
        ..nt("a", &[])
    }]);
    let mut delays = vec![];
    for _ in 0..6 {
        let (n, _) = w.started("a");
        w.result_with("a", n, WorkerOutcome::failure("x"), policy, 1.0);
        delays.push(w.now.seconds_until(&w.task("a").run_after));
        w.advance(1000.0);
    }
    assert_eq!(delays, vec![10.0, 20.0, 40.0, 80.0, 100.0, 100.0]);

    // Jitter scales the delay between one half and all of it.
    assert_eq!(policy.delay_secs(10, 3, 0.0), 20.0);
    assert_eq!(policy.delay_secs(10, 3, 0.5), 30.0);
    assert_eq!(policy.delay_secs(10, 3, 7.0), 40.0);
    assert_eq!(policy.delay_secs(10, 1000, 1.0), 100.0);
    assert_eq!(RetryPolicy::Fixed.delay_secs(10, 5, 0.3), 10.0);
}

/// A backoff with no useful cap doubles past the year 9999: the task's
/// runAfter saturates there, and the task still reads back (written as
/// `+10000-…`, it could not be, and the daemon's recovery failed on it).
#[test]
fn a_backoff_past_the_year_9999_saturates_and_reads_back() {
    let policy = RetryPolicy::Exponential {
        cap_secs: 1_000_000_000_000,
    };
    let mut w = World::with(vec![NewTask {
        remaining_attempts: Some(100),
        error_delay_in_seconds: Some(2_592_000),
        ..nt("a", &[])
    }]);
    for _ in 0..40 {
        let (n, _) = w.started("a");
        w.result_with("a", n, WorkerOutcome::failure("x"), policy, 1.0);
        let run_after = w.task("a").run_after;
        w.now = run_after;
    }
    let t = w.task("a");
    assert_eq!(t.run_after, crew_core::Timestamp::max());
    let text = serde_json::to_string(&t).unwrap();
    let back: crew_core::Task = serde_json::from_str(&text).unwrap();
    assert_eq!(back.run_after, t.run_after);
}

#[test]
fn a_rate_limit_pauses_the_workgroup_and_burns_no_attempt() {
    let mut w = World::with(vec![in_wg("a", "api"), in_wg("b", "api")]);
    w.add_group("g2");
    w.create_in("g2", vec![in_wg("elsewhere", "api")]).unwrap();
    let (n, _) = w.started("a");
    w.result("a", n, rate_limited(900.0));
    let t = w.task("a");
    assert_eq!(t.remaining_attempts, 5);
    assert!(t.errors.is_empty());
    assert!(!t.busy_executing);
    assert_eq!(
        t.attempt_log.last().unwrap().outcome,
        AttemptOutcome::RateLimited
    );
    assert_eq!(
        w.g.workgroups.get("api").unwrap().paused_until,
        Some(w.now.plus_seconds(900.0))
    );
    for id in ["a", "b", "elsewhere"] {
        assert_eq!(w.status(id), TaskStatus::Delayed, "{id}");
    }
    w.advance(900.0);
    let (n2, _) = w.started("a");
    assert_eq!(n2, n + 1);
}

#[test]
fn a_rate_limit_without_a_workgroup_delays_the_task_itself() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &[])]);
    let (n, _) = w.started("a");
    let c = w.result("a", n, rate_limited(45.0));
    assert!(!c.ops.iter().any(|o| matches!(o, Change::PutWorkgroup(_))));
    let t = w.task("a");
    assert_eq!(t.remaining_attempts, 5);
    assert_eq!(t.run_after, w.now.plus_seconds(45.0));
    assert_eq!(w.status("a"), TaskStatus::Delayed);
    assert_eq!(w.status("b"), TaskStatus::Ready);
}

#[test]
fn a_rate_limit_never_shortens_a_longer_pause() {
    let mut w = World::with(vec![in_wg("a", "api"), in_wg("b", "api")]);
    let (na, _) = w.started("a");
    let (nb, _) = w.started("b");
    let until = w.now.plus_seconds(3600.0);
    let c = rules::pause_workgroup(&w.g, "api", until);
    w.applied(c).unwrap();
    let c = w.result("a", na, rate_limited(60.0));
    assert!(!c.ops.iter().any(|o| matches!(o, Change::PutWorkgroup(_))));
    let wg = w.g.workgroups.get("api").unwrap().clone();
    assert_eq!(wg.paused_until, Some(until));
    assert!(wg.paused_by_operator);
    // A longer one extends it.
    w.result("b", nb, rate_limited(7200.0));
    assert_eq!(
        w.g.workgroups.get("api").unwrap().paused_until,
        Some(w.now.plus_seconds(7200.0))
    );
}

#[test]
fn stale_results_change_nothing() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &[])]);
    let (n, _) = w.started("a");
    let before = w.g.tasks.clone();
    for outcome in [
        success(json!(1)),
        WorkerOutcome::failure("x"),
        rate_limited(10.0),
    ] {
        let c = rules::record_result(
            &w.g,
            "a",
            n + 1,
            outcome,
            w.now,
            RetryPolicy::Fixed,
            0.0,
            &mut gen_id,
        )
        .unwrap();
        assert!(c.is_empty());
    }
    // b is not running: any result for it is stale.
    let c = rules::record_result(
        &w.g,
        "b",
        0,
        success(json!(1)),
        w.now,
        RetryPolicy::Fixed,
        0.0,
        &mut gen_id,
    )
    .unwrap();
    assert!(c.is_empty());
    // The same result twice: the second is stale.
    w.result("a", n, success(json!(1)));
    let c = rules::record_result(
        &w.g,
        "a",
        n,
        WorkerOutcome::failure("late"),
        w.now,
        RetryPolicy::Fixed,
        0.0,
        &mut gen_id,
    )
    .unwrap();
    assert!(c.is_empty());
    assert_eq!(w.task("b"), before["b"]);
}

#[test]
fn a_result_for_a_deleted_task_changes_nothing() {
    let mut w = World::with(vec![nt("a", &[])]);
    let (n, _) = w.started("a");
    let c = rules::delete_group(&w.g, G);
    w.applied(c).unwrap();
    let c = rules::record_result(
        &w.g,
        "a",
        n,
        success_with(json!(1), vec![child("c", &[])], 0.0),
        w.now,
        RetryPolicy::Fixed,
        0.0,
        &mut gen_id,
    )
    .unwrap();
    assert!(c.is_empty());
}
