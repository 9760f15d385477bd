//! `create_group` and `create_tasks`: one task, DAG batches, key merges.

use crate::common::*;
use crew_core::graph::Change;
use crew_core::model::{DEFAULT_ERROR_DELAY_SECS, DEFAULT_REMAINING_ATTEMPTS};
use crew_core::rules;
use crew_core::wire::{NewTask, NewTaskGroup};
use crew_core::{RuleError, TaskStatus};
use serde_json::{json, Value};

#[test]
fn one_task_takes_the_defaults() {
    let mut w = World::new();
    let c = w
        .create(vec![NewTask {
            input: json!({"account": "a1"}),
            ..nt("a", &[])
        }])
        .unwrap();
    assert_eq!(c.ops.len(), 1);
    assert!(matches!(&c.ops[0], Change::CreateTask(t) if t.id == "a"));
    let t = w.task("a");
    assert_eq!(t.task_group_id, G);
    assert_eq!(t.remaining_attempts, DEFAULT_REMAINING_ATTEMPTS);
    assert_eq!(t.error_delay_in_seconds, DEFAULT_ERROR_DELAY_SECS);
    assert_eq!(t.created_at, w.now);
    assert_eq!(t.input, json!({"account": "a1"}));
    assert!(!t.is_complete && !t.busy_executing && t.errors.is_empty());
    assert_eq!(t.attempts, 0);
    assert_eq!(t.created_by, None);
    assert_eq!(w.status("a"), TaskStatus::Ready);
}

#[test]
fn a_task_without_an_id_gets_a_generated_one() {
    let mut w = World::new();
    let c = w
        .create(vec![NewTask {
            id: None,
            ..nt("x", &[])
        }])
        .unwrap();
    let ids = created_ids(&c);
    assert_eq!(ids.len(), 1);
    assert!(ids[0].starts_with("gen-"), "{ids:?}");
}

#[test]
fn a_dag_batch_may_list_children_before_parents() {
    let mut w = World::new();
    let c = w
        .create(vec![
            nt("d", &["b", "c"]),
            nt("b", &["a"]),
            nt("c", &["a"]),
            nt("a", &[]),
        ])
        .unwrap();
    assert_eq!(c.ops.len(), 4);
    assert_eq!(w.status("a"), TaskStatus::Ready);
    for id in ["b", "c", "d"] {
        assert_eq!(w.status(id), TaskStatus::Waiting, "{id}");
    }
    assert_eq!(w.task("d").parent_ids, vec!["b", "c"]);
}

#[test]
fn a_batch_may_name_parents_already_in_the_group() {
    let mut w = World::with(vec![nt("a", &[])]);
    w.create(vec![nt("b", &["a"]), nt("c", &["b", "a"])])
        .unwrap();
    assert_eq!(w.task("c").parent_ids, vec!["b", "a"]);
}

#[test]
fn repeated_parent_ids_are_kept_once() {
    let w = World::with(vec![nt("a", &[]), nt("b", &["a", "a"])]);
    assert_eq!(w.task("b").parent_ids, vec!["a"]);
}

#[test]
fn a_key_already_completed_completes_the_new_task_at_once() {
    let mut w = World::with(vec![keyed("a", "k", &[])]);
    w.run_ok("a", json!({"rows": 3}));
    w.create(vec![keyed("b", "k", &[]), keyed("c", "other", &[])])
        .unwrap();
    let b = w.task("b");
    assert!(b.is_complete);
    assert_eq!(b.output, json!({"rows": 3}));
    assert_eq!(w.status("b"), TaskStatus::Completed);
    assert!(!w.task("c").is_complete);
}

#[test]
fn a_key_completed_in_another_group_does_not_count() {
    let mut w = World::with(vec![keyed("a", "k", &[])]);
    w.run_ok("a", json!(1));
    w.add_group("g2");
    w.create_in("g2", vec![keyed("b", "k", &[])]).unwrap();
    assert!(!w.task("b").is_complete);
}

#[test]
fn an_incomplete_task_with_the_same_key_does_not_complete_it() {
    let w = World::with(vec![keyed("a", "k", &[]), keyed("b", "k", &[])]);
    assert!(!w.task("a").is_complete);
    assert!(!w.task("b").is_complete);
}

#[test]
fn unknown_group_is_not_found() {
    let w = World::new();
    let r = rules::create_tasks(&w.g, "nope", vec![nt("a", &[])], w.now, &mut gen_id);
    assert!(
        matches!(r, Err(RuleError::NotFound { what: "task group", ref id }) if id == "nope"),
        "{r:?}"
    );
}

#[test]
fn an_empty_batch_is_refused() {
    let w = World::new();
    let r = rules::create_tasks(&w.g, G, vec![], w.now, &mut gen_id);
    assert!(matches!(r, Err(RuleError::Invalid(_))), "{r:?}");
}

#[test]
fn one_bad_field_refuses_the_whole_batch() {
    let mut w = World::new();
    let bad = NewTask {
        worker: "../etc".into(),
        ..nt("b", &[])
    };
    let m = assert_invalid_naming(w.create(vec![nt("a", &[]), bad]), &["worker"]);
    assert!(m.contains("../etc"), "{m}");
    assert!(w.ids().is_empty());

    let r = w.create(vec![NewTask {
        remaining_attempts: Some(1_000_000),
        ..nt("a", &[])
    }]);
    assert_invalid_naming(r, &["remainingAttempts"]);
    let r = w.create(vec![NewTask {
        task_group_id: Some("elsewhere".into()),
        ..nt("a", &[])
    }]);
    assert_invalid_naming(r, &["elsewhere"]);
    assert!(w.ids().is_empty());
}

#[test]
fn a_worker_is_required() {
    let mut w = World::new();
    let r = w.create(vec![NewTask {
        worker: String::new(),
        ..nt("a", &[])
    }]);
    assert_invalid_naming(r, &["worker"]);
}

#[test]
fn create_group_with_its_dag_is_one_change_set() {
    let mut w = World::new();
    let c = rules::create_group(
        &w.g,
        NewTaskGroup {
            id: Some("g2".into()),
            name: "second".into(),
            is_paused: false,
            tasks: vec![nt("x", &[]), nt("y", &["x"])],
            schedule: None,
        },
        w.now,
        &mut gen_id,
    );
    let c = w.applied(c).unwrap();
    assert!(matches!(&c.ops[0], Change::CreateGroup(g) if g.id == "g2"));
    assert_eq!(created_ids(&c), vec!["x", "y"]);
    assert_eq!(w.task("y").task_group_id, "g2");

    let again = rules::create_group(
        &w.g,
        NewTaskGroup {
            id: Some("g2".into()),
            ..Default::default()
        },
        w.now,
        &mut gen_id,
    );
    assert!(matches!(again, Err(RuleError::Conflict(_))), "{again:?}");
}

#[test]
fn create_group_with_a_bad_dag_creates_nothing() {
    let w = World::new();
    let r = rules::create_group(
        &w.g,
        NewTaskGroup {
            id: Some("g2".into()),
            tasks: vec![nt("x", &["ghost"])],
            ..Default::default()
        },
        w.now,
        &mut gen_id,
    );
    assert_invalid_naming(r, &["ghost", "x"]);
}

#[test]
fn created_tasks_output_starts_null() {
    let w = World::with(vec![nt("a", &[])]);
    assert_eq!(w.task("a").output, Value::Null);
}

#[test]
fn a_scheduled_group_resets_itself_when_due_and_only_then() {
    use crew_core::{wire::TaskGroupPatch, Timestamp};
    let mut w = World::new();
    let c = rules::create_group(
        &w.g,
        NewTaskGroup {
            id: Some("nightly".into()),
            tasks: vec![nt("seed", &[])],
            schedule: Some("not cron".into()),
            ..Default::default()
        },
        w.now,
        &mut gen_id,
    );
    assert!(matches!(c, Err(RuleError::Invalid(_))), "{c:?}");
    let c = rules::create_group(
        &w.g,
        NewTaskGroup {
            id: Some("nightly".into()),
            tasks: vec![nt("seed", &[])],
            schedule: Some("0 2 * * *".into()),
            ..Default::default()
        },
        w.now,
        &mut gen_id,
    );
    w.applied(c).unwrap();
    let created = w.g.groups["nightly"].created_at;
    let next = crew_core::schedule::next_after("0 2 * * *", created)
        .unwrap()
        .unwrap();
    let before: Timestamp = next.plus_millis(-1);
    let none = rules::scheduled_reset(&w.g, "nightly", before).unwrap();
    assert!(none.changes.is_empty(), "not due yet");
    let due = rules::scheduled_reset(&w.g, "nightly", next).unwrap();
    assert_eq!(due.refused, None);
    let due = w.applied(Ok(due.changes)).unwrap();
    assert!(due
        .ops
        .iter()
        .any(|c| matches!(c, Change::UpdateGroup(g) if g.last_scheduled_reset == Some(next))));
    assert!(
        rules::scheduled_reset(&w.g, "nightly", next.plus_millis(1))
            .unwrap()
            .changes
            .is_empty(),
        "fires once"
    );
    // Removing the schedule stops it.
    let c = rules::update_group(
        &w.g,
        "nightly",
        TaskGroupPatch {
            schedule: Some(String::new()),
            ..Default::default()
        },
        w.now,
    );
    w.applied(c).unwrap();
    assert_eq!(w.g.groups["nightly"].schedule, None);
}
