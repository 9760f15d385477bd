//! `rules::bulk`: one action over a filter, all or nothing.

use crate::common::*;
use crew_core::rules::{self, BulkOutcome};
use crew_core::wire::{BulkAction, BulkFilter};
use crew_core::{RuleError, TaskStatus};

fn bulk(w: &World, action: BulkAction, filter: &BulkFilter) -> Result<BulkOutcome, RuleError> {
    rules::bulk(&w.g, G, action, filter, None, w.now)
}

fn status(s: TaskStatus) -> BulkFilter {
    BulkFilter {
        status: vec![s],
        ..Default::default()
    }
}

#[test]
fn deletes_overlapping_matches_once() {
    // a -> b -> c, plus d: deleting a and b deletes c once.
    let mut w = World::with(vec![
        nt("a", &[]),
        nt("b", &["a"]),
        nt("c", &["b"]),
        nt("d", &[]),
    ]);
    let f = BulkFilter {
        search: Some("TASK A".into()),
        ..Default::default()
    };
    let out = bulk(&w, BulkAction::Delete, &f).expect("bulk");
    assert_eq!(out.matched, 1);
    assert_eq!(out.changes.deleted_tasks(), 3);
    let f = BulkFilter::default();
    let out = bulk(&w, BulkAction::Delete, &f).expect("bulk");
    assert_eq!(out.matched, 4);
    assert_eq!(out.changes.deleted_tasks(), 4);
    w.g.apply(&out.changes);
    assert!(w.ids().is_empty());
}

#[test]
fn retries_only_failed_tasks() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &[])]);
    let mut t = w.task("a");
    t.remaining_attempts = 1;
    w.g.tasks.insert("a".into(), t);
    w.run_fail("a", "boom");
    assert_eq!(w.status("a"), TaskStatus::Failed);
    let out = bulk(&w, BulkAction::Retry, &status(TaskStatus::Failed)).expect("bulk");
    assert_eq!((out.matched, out.changes.updated_tasks()), (1, 1));
    w.g.apply(&out.changes);
    assert_eq!(w.status("a"), TaskStatus::Ready);
    assert_eq!(w.task("b").remaining_attempts, 5);
}

#[test]
fn one_running_match_refuses_everything() {
    let w = {
        let mut w = World::with(vec![nt("a", &[]), nt("b", &[])]);
        w.started("b");
        w
    };
    for action in [BulkAction::Reset, BulkAction::Retry, BulkAction::Delete] {
        let e = bulk(&w, action, &BulkFilter::default()).expect_err("refused");
        assert!(
            matches!(&e, RuleError::Conflict(m) if m.contains("\"b\"")),
            "{e}"
        );
    }
    // Pausing a running task is allowed (it takes effect after the attempt).
    let out = bulk(&w, BulkAction::Pause, &BulkFilter::default()).expect("pause");
    assert_eq!(out.changes.updated_tasks(), 2);
}

#[test]
fn unknown_group_and_misplaced_attempts() {
    let w = World::with(vec![nt("a", &[])]);
    let f = BulkFilter::default();
    let e = rules::bulk(&w.g, "nope", BulkAction::Pause, &f, None, w.now).expect_err("404");
    assert!(matches!(e, RuleError::NotFound { .. }));
    let e = rules::bulk(&w.g, G, BulkAction::Pause, &f, Some(2), w.now).expect_err("422");
    assert!(matches!(e, RuleError::Invalid(_)));
}
