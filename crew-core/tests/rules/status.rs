//! `status_of`: the derived status and its precedence.

use crate::common::*;
use crew_core::rules;
use crew_core::wire::NewTask;
use crew_core::TaskStatus;
use serde_json::json;

#[test]
fn a_root_task_is_ready_and_its_child_waits() {
    let w = World::with(vec![nt("a", &[]), nt("b", &["a"])]);
    assert_eq!(w.status("a"), TaskStatus::Ready);
    assert_eq!(w.status("b"), TaskStatus::Waiting);
}

#[test]
fn a_child_is_ready_once_every_parent_completed() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &[]), nt("c", &["a", "b"])]);
    w.run_ok("a", json!(1));
    assert_eq!(w.status("c"), TaskStatus::Waiting);
    w.run_ok("b", json!(2));
    assert_eq!(w.status("c"), TaskStatus::Ready);
}

#[test]
fn running_completed_and_failed() {
    let mut w = World::with(vec![
        nt("a", &[]),
        nt("b", &[]),
        NewTask {
            remaining_attempts: Some(1),
            ..nt("c", &[])
        },
    ]);
    w.started("a");
    assert_eq!(w.status("a"), TaskStatus::Running);
    w.run_ok("b", json!("out"));
    assert_eq!(w.status("b"), TaskStatus::Completed);
    w.run_fail("c", "boom");
    assert_eq!(w.status("c"), TaskStatus::Failed);
}

#[test]
fn zero_attempts_is_failed_even_when_paused() {
    let w = World::with(vec![NewTask {
        remaining_attempts: Some(0),
        is_paused: true,
        ..nt("a", &[])
    }]);
    assert_eq!(w.status("a"), TaskStatus::Failed);
}

#[test]
fn paused_by_the_task_or_its_group_even_while_waiting() {
    let mut w = World::with(vec![
        nt("a", &[]),
        NewTask {
            is_paused: true,
            ..nt("b", &["a"])
        },
    ]);
    assert_eq!(w.status("b"), TaskStatus::Paused);
    let c = rules::set_group_paused(&w.g, G, true);
    w.applied(c).unwrap();
    assert_eq!(w.status("a"), TaskStatus::Paused);
}

#[test]
fn run_after_in_the_future_is_delayed_then_ready() {
    let mut w = World::new();
    let later = w.now.plus_seconds(30.0);
    w.create(vec![NewTask {
        run_after: Some(later),
        ..nt("a", &[])
    }])
    .unwrap();
    assert_eq!(w.status("a"), TaskStatus::Delayed);
    w.advance(30.0);
    assert_eq!(w.status("a"), TaskStatus::Ready);
}

#[test]
fn a_delayed_task_with_an_incomplete_parent_is_waiting() {
    let mut w = World::new();
    let later = w.now.plus_seconds(30.0);
    w.create(vec![
        nt("a", &[]),
        NewTask {
            run_after: Some(later),
            ..nt("b", &["a"])
        },
    ])
    .unwrap();
    assert_eq!(w.status("b"), TaskStatus::Waiting);
}

#[test]
fn a_rate_limited_workgroup_delays_and_an_operator_pause_pauses() {
    let mut w = World::with(vec![in_wg("a", "api"), in_wg("b", "api")]);
    let (n, _) = w.started("a");
    w.result("a", n, rate_limited(60.0));
    assert_eq!(w.status("b"), TaskStatus::Delayed);
    w.advance(61.0);
    assert_eq!(w.status("b"), TaskStatus::Ready);

    let until = w.now.plus_seconds(600.0);
    let c = rules::pause_workgroup(&w.g, "api", until);
    w.applied(c).unwrap();
    assert_eq!(w.status("b"), TaskStatus::Paused);
    w.advance(601.0);
    assert_eq!(w.status("b"), TaskStatus::Ready);
}

#[test]
fn an_operator_paused_workgroup_does_not_hide_waiting() {
    let mut w = World::new();
    w.create(vec![
        nt("a", &[]),
        NewTask {
            workgroup: "api".into(),
            ..nt("b", &["a"])
        },
    ])
    .unwrap();
    let until = w.now.plus_seconds(600.0);
    let c = rules::pause_workgroup(&w.g, "api", until);
    w.applied(c).unwrap();
    assert_eq!(w.status("b"), TaskStatus::Waiting);
}

#[test]
fn status_names_round_trip() {
    for s in TaskStatus::ALL {
        assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
    }
    assert_eq!(TaskStatus::parse("nope"), None);
}
