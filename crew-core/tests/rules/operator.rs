//! Operator actions: reset, retry, delete, update, pause.

use crate::common::*;
use crew_core::graph::Change;
use crew_core::rules;
use crew_core::wire::{NewTask, TaskGroupPatch, TaskPatch};
use crew_core::worker::WorkerOutcome;
use crew_core::{RuleError, TaskStatus};
use serde_json::{json, Value};

fn reset(w: &mut World, id: &str, attempts: Option<u32>) -> Result<crew_core::Changes, RuleError> {
    let r = rules::reset_task(&w.g, id, attempts, w.now);
    w.applied(r)
}

#[test]
fn reset_clears_output_and_errors_restores_attempts_and_runs_now() {
    let mut w = World::with(vec![NewTask {
        error_delay_in_seconds: Some(600),
        ..nt("a", &[])
    }]);
    w.run_fail("a", "boom");
    assert_eq!(w.status("a"), TaskStatus::Delayed);
    reset(&mut w, "a", Some(3)).unwrap();
    let t = w.task("a");
    assert!(t.errors.is_empty());
    assert_eq!(t.remaining_attempts, 3);
    assert_eq!(w.status("a"), TaskStatus::Ready);

    w.run_ok("a", json!(1));
    reset(&mut w, "a", None).unwrap();
    let t = w.task("a");
    assert!(!t.is_complete);
    assert_eq!(t.output, Value::Null);
    assert_eq!(t.remaining_attempts, 5);
}

/// a -> static child s -> static grandchild ss; a created c1 (which has a
/// static child c1x and created cc); s created sc.
fn family() -> World {
    let mut w = World::with(vec![nt("a", &[]), nt("s", &["a"]), nt("ss", &["s"])]);
    w.run_with_children("a", vec![child("c1", &[])]);
    w.create(vec![nt("c1x", &["c1"])]).unwrap();
    w.run_with_children("c1", vec![child("cc", &[])]);
    w.run_with_children("s", vec![child("sc", &[])]);
    w.run_ok("ss", json!("ss"));
    w
}

#[test]
fn reset_deletes_continuations_recursively_and_resets_other_descendants() {
    let mut w = family();
    let c = reset(&mut w, "a", None).unwrap();
    let mut deleted = deleted_ids(&c);
    deleted.sort();
    // c1 and everything under it go; so does sc, which s (reset, so it
    // runs again) will create again.
    assert_eq!(deleted, vec!["c1", "c1x", "cc", "sc"]);
    assert_eq!(c.deleted_tasks(), 4);
    for id in ["a", "s", "ss"] {
        let t = w.task(id);
        assert!(!t.is_complete, "{id}");
        assert_eq!(t.output, Value::Null, "{id}");
    }
    // The re-run creates the same continuations again without a conflict.
    w.run_with_children("a", vec![child("c1", &[])]);
    w.run_with_children("s", vec![child("sc", &[])]);
    assert!(w.task("sc").created_by.as_deref() == Some("s"));
}

#[test]
fn reset_keeps_a_descendant_created_by_an_unrelated_task() {
    // x (outside a's subtree) created y with a as a parent: resetting a
    // resets y but does not delete it, since a will not create it again.
    let mut w = World::with(vec![nt("a", &[]), nt("x", &[])]);
    w.run_with_children("x", vec![child("y", &["a"])]);
    let c = reset(&mut w, "a", None).unwrap();
    assert_eq!(c.deleted_tasks(), 0);
    assert!(w.exists("y"));
}

#[test]
fn reset_is_refused_while_anything_involved_runs() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &["a"])]);
    w.run_ok("a", json!(1));
    w.started("b");
    let before = w.g.tasks.clone();
    let m = assert_conflict(reset(&mut w, "a", None));
    assert!(m.contains("\"b\"") && m.contains("running"), "{m}");
    let m = assert_conflict(reset(&mut w, "b", None));
    assert!(m.contains("running"), "{m}");
    assert_eq!(w.g.tasks, before);
}

#[test]
fn reset_of_a_missing_task_is_not_found() {
    let mut w = World::new();
    assert!(matches!(
        reset(&mut w, "nope", None),
        Err(RuleError::NotFound { what: "task", .. })
    ));
    let r = rules::reset_task(&w.g, "nope", Some(5000), w.now);
    assert!(matches!(r, Err(RuleError::Invalid(_))), "{r:?}");
}

#[test]
fn reset_group_with_seeds_deletes_non_seeds_and_resets_seeds() {
    let mut w = World::with(vec![
        NewTask {
            is_seed: true,
            ..nt("seed", &[])
        },
        nt("plain", &["seed"]),
    ]);
    w.run_with_children("seed", vec![child("cont", &[])]);
    w.run_ok("plain", json!(1));
    let c = rules::reset_group(&w.g, G, Some(2), w.now);
    let c = w.applied(c).unwrap();
    assert_eq!(c.deleted_tasks(), 2);
    assert_eq!(w.ids(), vec!["seed"]);
    let s = w.task("seed");
    assert!(!s.is_complete);
    assert_eq!(s.remaining_attempts, 2);
    assert_eq!(w.status("seed"), TaskStatus::Ready);
}

/// A seed that depends on a task that is not one: deleting that task
/// deleted the seed with it (it was a descendant of a non-seed), and a
/// group with one such seed reset to nothing. The seeds keep what they
/// depend on, reset too.
#[test]
fn reset_group_keeps_and_resets_what_its_seeds_depend_on() {
    let seed = |id: &str, parents: &[&str]| NewTask {
        is_seed: true,
        ..nt(id, parents)
    };
    let mut w = World::with(vec![
        nt("fetch", &[]),
        seed("seed", &["fetch"]),
        seed("seed2", &[]),
        nt("after", &["seed"]),
    ]);
    w.run_ok("fetch", json!(1));
    w.run_ok("seed", json!(2));
    let c = rules::reset_group(&w.g, G, None, w.now);
    let c = w.applied(c).unwrap();
    assert_eq!(c.deleted_tasks(), 1);
    assert_eq!(w.ids(), vec!["fetch", "seed", "seed2"]);
    assert_eq!(w.status("fetch"), TaskStatus::Ready);
    assert!(!w.task("seed").is_complete);
    assert_eq!(w.status("seed"), TaskStatus::Waiting);

    // A seed that depends on a continuation: its creator's re-run would
    // create it again. Refused, naming it, and nothing changes.
    w.run_with_children("seed2", vec![child("cont", &[])]);
    w.create(vec![seed("late", &["cont"])]).unwrap();
    let m = assert_conflict(rules::reset_group(&w.g, G, None, w.now));
    assert!(m.contains("\"cont\"") && m.contains("\"seed2\""), "{m}");
}

/// A seed that is itself a continuation: kept and reset with its creator,
/// it made the creator's re-run fail on its id (or, without one, doubled
/// it). Refused; and a scheduled reset says so rather than waiting for
/// ever as it does for a running task.
#[test]
fn a_seed_made_by_a_continuation_refuses_the_reset_and_the_schedule_says_so() {
    let mut w = World::with(vec![NewTask {
        is_seed: true,
        ..nt("root", &[])
    }]);
    let patch = crew_core::wire::TaskGroupPatch {
        schedule: Some("0 2 * * *".into()),
        ..Default::default()
    };
    let c = rules::update_group(&w.g, G, patch, w.now);
    w.applied(c).unwrap();
    let due = w.now.plus_seconds(2.0 * 86_400.0);
    // Running: the scheduled reset waits.
    let (n, _) = w.started("root");
    assert!(rules::scheduled_reset(&w.g, G, due)
        .unwrap()
        .changes
        .is_empty());
    let mut spawned = child("made", &[]);
    spawned.is_seed = true;
    w.result_with(
        "root",
        n,
        success_with(json!(1), vec![spawned], 0.0),
        crew_core::rules::RetryPolicy::Fixed,
        0.0,
    );
    assert!(w.exists("made"));
    let m = assert_conflict(rules::reset_group(&w.g, G, None, w.now));
    assert!(
        m.contains("\"made\" is a seed") && m.contains("\"root\""),
        "{m}"
    );
    // Refused: the group records why, once.
    let refused = rules::scheduled_reset(&w.g, G, due).unwrap();
    let m = refused.refused.clone().unwrap_or_default();
    assert!(m.contains("\"made\""), "{m}");
    w.applied(Ok(refused.changes)).unwrap();
    assert_eq!(w.g.groups[G].schedule_refused.as_deref(), Some(m.as_str()));
    assert_eq!(w.g.groups[G].last_scheduled_reset, None, "not reset");
    let again = rules::scheduled_reset(&w.g, G, due).unwrap();
    assert_eq!(again.refused.as_deref(), Some(m.as_str()));
    assert!(again.changes.is_empty(), "said once");
    // Once the operator removes the continuation, the reset runs and the
    // refusal goes.
    let c = rules::delete_task(&w.g, "made");
    w.applied(c).unwrap();
    let ran = rules::scheduled_reset(&w.g, G, due).unwrap();
    assert_eq!(ran.refused, None);
    w.applied(Ok(ran.changes)).unwrap();
    assert_eq!(w.g.groups[G].schedule_refused, None);
    assert_eq!(w.g.groups[G].last_scheduled_reset, Some(due));
}

/// A new schedule clears a refusal of the old one's reset.
#[test]
fn a_new_schedule_clears_a_refusal() {
    let mut w = World::with(vec![nt("a", &[])]);
    let mut g = w.g.groups[G].clone();
    g.schedule = Some("0 2 * * *".into());
    g.schedule_refused = Some("no".into());
    w.g.groups.insert(G.into(), g);
    let patch = crew_core::wire::TaskGroupPatch {
        name: Some("renamed".into()),
        ..Default::default()
    };
    let c = rules::update_group(&w.g, G, patch, w.now);
    w.applied(c).unwrap();
    assert_eq!(w.g.groups[G].schedule_refused.as_deref(), Some("no"));
    let patch = crew_core::wire::TaskGroupPatch {
        schedule: Some("0 3 * * *".into()),
        ..Default::default()
    };
    let c = rules::update_group(&w.g, G, patch, w.now);
    w.applied(c).unwrap();
    assert_eq!(w.g.groups[G].schedule_refused, None);
}

#[test]
fn reset_group_without_seeds_resets_every_task() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &["a"])]);
    w.run_ok("a", json!(1));
    w.run_fail("b", "x");
    let c = rules::reset_group(&w.g, G, None, w.now);
    let c = w.applied(c).unwrap();
    assert_eq!(c.deleted_tasks(), 0);
    assert_eq!(w.ids(), vec!["a", "b"]);
    for id in ["a", "b"] {
        let t = w.task(id);
        assert!(!t.is_complete && t.errors.is_empty(), "{id}");
        assert_eq!(t.remaining_attempts, 5);
        assert_eq!(t.resets, 1, "a new run: {id}");
    }
    assert_eq!(w.status("a"), TaskStatus::Ready);
    assert_eq!(w.status("b"), TaskStatus::Waiting);
}

#[test]
fn reset_group_without_seeds_deletes_continuations_which_the_rerun_creates_again() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &["a"])]);
    w.run_with_children("a", vec![child("cont", &[]), child("cont2", &["cont"])]);
    w.run_ok("b", json!(1));
    w.run_ok("cont", json!(2));
    // A task added later under a continuation depends on something the
    // re-run replaces: it goes too, as with a task reset.
    w.create(vec![nt("late", &["cont2"])]).unwrap();
    let c = rules::reset_group(&w.g, G, None, w.now);
    let c = w.applied(c).unwrap();
    assert_eq!(c.deleted_tasks(), 3);
    assert_eq!(w.ids(), vec!["a", "b"]);
    assert_eq!(w.status("a"), TaskStatus::Ready);
    assert_eq!(w.status("b"), TaskStatus::Waiting);
    // The re-run creates the same continuations again, without a clash.
    w.run_with_children("a", vec![child("cont", &[]), child("cont2", &["cont"])]);
    assert_eq!(w.ids(), vec!["a", "b", "cont", "cont2"]);
    assert_eq!(w.status("cont"), TaskStatus::Ready);
}

#[test]
fn reset_group_is_refused_while_a_task_runs() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &[])]);
    w.started("b");
    assert_conflict(rules::reset_group(&w.g, G, None, w.now));
    assert!(matches!(
        rules::reset_group(&w.g, "nope", None, w.now),
        Err(RuleError::NotFound { .. })
    ));
}

#[test]
fn retry_gives_attempts_without_clearing_anything() {
    let mut w = World::with(vec![NewTask {
        remaining_attempts: Some(1),
        ..nt("a", &[])
    }]);
    w.run_fail("a", "boom");
    assert_eq!(w.status("a"), TaskStatus::Failed);
    let c = rules::retry_task(&w.g, "a", Some(3), w.now);
    w.applied(c).unwrap();
    let t = w.task("a");
    assert_eq!(t.remaining_attempts, 3);
    assert_eq!(t.errors.len(), 1, "errors are kept");
    assert_eq!(w.status("a"), TaskStatus::Ready);
}

/// Zero attempts would turn a retry or reset into "mark failed": refused,
/// for one task, a group and a bulk action alike. Creating a task with 0
/// attempts stays allowed (it is failed), as in crew-go.
#[test]
fn retry_and_reset_refuse_zero_attempts() {
    let mut w = World::with(vec![nt("a", &[])]);
    w.run_fail("a", "boom");
    let before = w.g.tasks.clone();
    let refusals = [
        ("retry", rules::retry_task(&w.g, "a", Some(0), w.now)),
        ("reset", rules::reset_task(&w.g, "a", Some(0), w.now)),
        ("retry", rules::retry_group(&w.g, G, Some(0), w.now)),
        ("reset", rules::reset_group(&w.g, G, Some(0), w.now)),
    ];
    for (action, r) in refusals {
        let m = assert_invalid_naming(r, &["remainingAttempts", action]);
        assert!(m.contains("1 to 1000"), "{m}");
    }
    for action in [
        crew_core::wire::BulkAction::Retry,
        crew_core::wire::BulkAction::Reset,
    ] {
        let r = rules::bulk(&w.g, G, action, &Default::default(), Some(0), w.now);
        assert!(matches!(r, Err(RuleError::Invalid(_))), "{r:?}");
    }
    assert_eq!(w.g.tasks, before);
    // One attempt is fine, and so is creating a task with none.
    let c = rules::retry_task(&w.g, "a", Some(1), w.now);
    w.applied(c).unwrap();
    w.create(vec![NewTask {
        remaining_attempts: Some(0),
        ..nt("none", &[])
    }])
    .unwrap();
    assert_eq!(w.status("none"), TaskStatus::Failed);
}

#[test]
fn retry_ends_an_error_delay_but_keeps_a_creators_schedule() {
    let mut w = World::new();
    let later = w.now.plus_seconds(3600.0);
    w.create(vec![
        nt("a", &[]),
        NewTask {
            run_after: Some(later),
            ..nt("scheduled", &[])
        },
    ])
    .unwrap();
    w.run_fail("a", "boom");
    assert_eq!(w.status("a"), TaskStatus::Delayed);
    for id in ["a", "scheduled"] {
        let c = rules::retry_task(&w.g, id, None, w.now);
        w.applied(c).unwrap();
    }
    assert_eq!(w.status("a"), TaskStatus::Ready);
    assert_eq!(w.task("scheduled").run_after, later);
}

#[test]
fn retry_is_refused_for_complete_or_running_tasks() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &[])]);
    w.run_ok("a", json!(1));
    w.started("b");
    let m = assert_conflict(rules::retry_task(&w.g, "a", None, w.now));
    assert!(m.contains("complete"), "{m}");
    assert_conflict(rules::retry_task(&w.g, "b", None, w.now));
}

#[test]
fn retry_group_touches_only_incomplete_idle_tasks() {
    let mut w = World::with(vec![
        NewTask {
            remaining_attempts: Some(1),
            ..nt("failed", &[])
        },
        nt("done", &[]),
        nt("running", &[]),
        nt("idle", &[]),
    ]);
    w.run_fail("failed", "x");
    w.run_ok("done", json!(1));
    w.started("running");
    let c = rules::retry_group(&w.g, G, Some(7), w.now);
    let c = w.applied(c).unwrap();
    let mut touched: Vec<&str> = c.touched_task_ids().collect();
    touched.sort();
    assert_eq!(touched, vec!["failed", "idle"]);
    assert_eq!(w.task("failed").remaining_attempts, 7);
    assert_eq!(w.task("running").remaining_attempts, 5);
    assert_eq!(w.task("done").remaining_attempts, 5);
}

#[test]
fn delete_removes_descendants_and_counts_them() {
    let mut w = World::with(vec![
        nt("a", &[]),
        nt("b", &["a"]),
        nt("c", &["b"]),
        nt("d", &["a", "x"]),
        nt("x", &[]),
    ]);
    let c = rules::delete_task(&w.g, "a");
    let c = w.applied(c).unwrap();
    assert_eq!(c.deleted_tasks(), 4);
    assert_eq!(w.ids(), vec!["x"]);
    let c = rules::delete_task(&w.g, "a");
    assert!(matches!(c, Err(RuleError::NotFound { .. })));
}

#[test]
fn delete_is_refused_while_it_or_a_descendant_runs() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &[]), nt("c", &["b"])]);
    w.started("a");
    assert_conflict(rules::delete_task(&w.g, "a"));
    w.run_ok("b", json!(1));
    w.started("c");
    let m = assert_conflict(rules::delete_task(&w.g, "b"));
    assert!(m.contains("\"c\""), "{m}");
    assert_eq!(w.ids().len(), 3);
}

#[test]
fn delete_group_removes_it_and_its_tasks() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &["a"])]);
    w.add_group("g2");
    w.create_in("g2", vec![nt("keep", &[])]).unwrap();
    let c = rules::delete_group(&w.g, G);
    let c = w.applied(c).unwrap();
    assert_eq!(c.deleted_tasks(), 2);
    assert!(matches!(c.ops.last(), Some(Change::DeleteGroup(g)) if g.id == G));
    assert!(!w.g.groups.contains_key(G));
    assert!(w.ids().is_empty());
    assert!(w.exists("keep"));
    assert!(matches!(
        rules::delete_group(&w.g, G),
        Err(RuleError::NotFound { .. })
    ));
}

#[test]
fn update_changes_fields_and_refuses_read_only_ones() {
    let mut w = World::with(vec![nt("p", &[]), nt("a", &["p"])]);
    let c = rules::update_task(
        &w.g,
        "a",
        TaskPatch {
            name: Some("renamed".into()),
            remaining_attempts: Some(9),
            input: Some(json!({"x": 1})),
            // crew-go clients echo read-only fields unchanged.
            id: Some("a".into()),
            task_group_id: Some(G.into()),
            parent_ids: Some(vec!["p".into()]),
            ..Default::default()
        },
        w.now,
    );
    w.applied(c).unwrap();
    let t = w.task("a");
    assert_eq!(
        (t.name.as_str(), t.remaining_attempts, t.input.clone()),
        ("renamed", 9, json!({"x": 1}))
    );

    for (patch, what) in [
        (
            TaskPatch {
                id: Some("other".into()),
                ..Default::default()
            },
            "id",
        ),
        (
            TaskPatch {
                task_group_id: Some("g2".into()),
                ..Default::default()
            },
            "group",
        ),
        (
            TaskPatch {
                parent_ids: Some(vec![]),
                ..Default::default()
            },
            "parents",
        ),
        (
            TaskPatch {
                worker: Some("a b".into()),
                ..Default::default()
            },
            "worker",
        ),
    ] {
        let r = rules::update_task(&w.g, "a", patch, w.now);
        match r {
            Err(RuleError::Invalid(m)) => assert!(m.contains(what), "{m} should mention {what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn update_is_refused_while_running() {
    let mut w = World::with(vec![nt("a", &[])]);
    w.started("a");
    let m = assert_conflict(rules::update_task(
        &w.g,
        "a",
        TaskPatch {
            name: Some("x".into()),
            ..Default::default()
        },
        w.now,
    ));
    assert!(m.contains("running"), "{m}");
}

/// A whole task read while an attempt ran, sent back once it ended, is
/// refused: applied, it undid the attempt's result (the task was made
/// incomplete again while its children had run). So is a body of a task
/// deleted and created again since.
#[test]
fn a_stale_whole_task_is_refused() {
    let mut w = World::with(vec![nt("a", &[])]);
    let (n, _) = w.started("a");
    let mut stale = serde_json::to_value(w.task("a")).unwrap();
    w.result("a", n, success(json!(1)));
    assert!(w.task("a").is_complete);
    stale["isPaused"] = json!(true);
    let patch: TaskPatch = serde_json::from_value(stale).unwrap();
    let m = assert_conflict(rules::update_task(&w.g, "a", patch, w.now));
    assert!(m.contains("changed since this body was read"), "{m}");
    assert!(w.task("a").is_complete && !w.task("a").is_paused);
    // Read now, the same change applies.
    let mut fresh = serde_json::to_value(w.task("a")).unwrap();
    fresh["isPaused"] = json!(true);
    let patch: TaskPatch = serde_json::from_value(fresh.clone()).unwrap();
    let c = rules::update_task(&w.g, "a", patch, w.now);
    w.applied(c).unwrap();
    assert!(w.task("a").is_paused);
    // Another task of that id: refused.
    fresh["createdAt"] = json!("2000-01-01T00:00:00Z");
    let patch: TaskPatch = serde_json::from_value(fresh).unwrap();
    assert_conflict(rules::update_task(&w.g, "a", patch, w.now));
}

/// crew-go clients pause by PUT with the whole task: on a running task,
/// that is a pause after the attempt, as POST .../pause is; a real change
/// of another field is still refused.
#[test]
fn a_put_that_only_pauses_a_running_task_is_a_pause() {
    let mut w = World::with(vec![nt("p", &[]), nt("a", &["p"])]);
    w.run_ok("p", json!(1));
    let (n, _) = w.started("a");
    let t = w.task("a");
    let whole = TaskPatch {
        id: Some(t.id.clone()),
        task_group_id: Some(t.task_group_id.clone()),
        name: Some(t.name.clone()),
        worker: Some(t.worker.clone()),
        workgroup: Some(t.workgroup.clone()),
        key: Some(t.key.clone()),
        remaining_attempts: Some(t.remaining_attempts),
        is_paused: Some(true),
        is_complete: Some(false),
        run_after: Some(t.run_after),
        is_seed: Some(t.is_seed),
        error_delay_in_seconds: Some(t.error_delay_in_seconds),
        timeout_in_seconds: None,
        input: Some(t.input.clone()),
        output: Some(t.output.clone()),
        parent_ids: Some(t.parent_ids.clone()),
        created_at: Some(t.created_at),
        busy_executing: Some(true),
    };
    let c = rules::update_task(&w.g, "a", whole.clone(), w.now);
    w.applied(c).unwrap();
    let t = w.task("a");
    assert!(t.is_paused && t.busy_executing);
    assert_eq!(w.status("a"), TaskStatus::Running);
    // Another field really changed: refused, and nothing applied.
    let renamed = TaskPatch {
        name: Some("renamed".into()),
        is_paused: Some(false),
        ..whole.clone()
    };
    let m = assert_conflict(rules::update_task(&w.g, "a", renamed, w.now));
    assert!(m.contains("running") && m.contains("isPaused"), "{m}");
    assert!(w.task("a").is_paused);
    // The task as the API serves it, sent back with isPaused flipped.
    let mut echoed = serde_json::to_value(w.task("a")).unwrap();
    echoed["isPaused"] = json!(false);
    let echoed: TaskPatch = serde_json::from_value(echoed).unwrap();
    let c = rules::update_task(&w.g, "a", echoed, w.now);
    w.applied(c).unwrap();
    assert!(!w.task("a").is_paused);
    let c = rules::update_task(&w.g, "a", whole, w.now);
    w.applied(c).unwrap();
    // The pause holds once the attempt ends; a PUT resumes it.
    w.result("a", n, WorkerOutcome::failure("x"));
    w.advance(3600.0);
    assert_eq!(w.status("a"), TaskStatus::Paused);
    let resume = TaskPatch {
        is_paused: Some(false),
        ..Default::default()
    };
    let c = rules::update_task(&w.g, "a", resume, w.now);
    w.applied(c).unwrap();
    assert_eq!(w.status("a"), TaskStatus::Ready);
}

#[test]
fn marking_a_task_complete_by_hand_wakes_its_children() {
    let mut w = World::with(vec![nt("a", &[]), nt("b", &["a"])]);
    let c = rules::update_task(
        &w.g,
        "a",
        TaskPatch {
            is_complete: Some(true),
            ..Default::default()
        },
        w.now,
    );
    let c = w.applied(c).unwrap();
    assert_eq!(c.wake, vec!["b"]);
    assert_eq!(w.status("b"), TaskStatus::Ready);
}

/// A task completed by hand merges into its same-key duplicates as a
/// worker's completion does: they complete with its output and their
/// children are released.
#[test]
fn completing_a_keyed_task_by_hand_completes_its_duplicates() {
    let mut w = World::with(vec![
        keyed("a", "k", &[]),
        keyed("b", "k", &[]),
        keyed("busy", "k", &[]),
        nt("after_b", &["b"]),
        keyed("other", "k2", &[]),
    ]);
    let (n, _) = w.started("busy");
    let c = rules::update_task(
        &w.g,
        "a",
        TaskPatch {
            is_complete: Some(true),
            output: Some(json!({"v": 1})),
            ..Default::default()
        },
        w.now,
    );
    let c = w.applied(c).unwrap();
    assert!(c.wake.contains(&"after_b".to_string()), "{:?}", c.wake);
    let b = w.task("b");
    assert!(b.is_complete);
    assert_eq!(b.output, json!({"v": 1}));
    assert_eq!(w.status("after_b"), TaskStatus::Ready);
    assert!(!w.task("other").is_complete);
    // The call in flight keeps going and its result completes it.
    assert!(!w.task("busy").is_complete);
    w.result("busy", n, success(json!({"v": 2})));
    assert!(w.task("busy").is_complete);
}

#[test]
fn running_again_by_hand_is_refused_while_its_continuations_are_there() {
    let mut w = World::with(vec![nt("a", &[]), nt("plain", &[])]);
    w.run_with_children("a", vec![child("c1", &[])]);
    w.run_with_children("plain", vec![]);
    let again = || TaskPatch {
        is_complete: Some(false),
        ..Default::default()
    };
    // A new run would create c1 a second time: reset is the way.
    let m = assert_conflict(rules::update_task(&w.g, "a", again(), w.now));
    assert!(m.contains("created 1 task") && m.contains("reset"), "{m}");
    assert!(w.task("a").is_complete);
    // A task that created nothing runs again.
    let c = rules::update_task(&w.g, "plain", again(), w.now);
    w.applied(c).unwrap();
    assert_eq!(w.status("plain"), TaskStatus::Ready);
    // Other edits of a task with continuations are not affected.
    let c = rules::update_task(
        &w.g,
        "a",
        TaskPatch {
            name: Some("renamed".into()),
            is_complete: Some(true),
            ..Default::default()
        },
        w.now,
    );
    w.applied(c).unwrap();
}

#[test]
fn pausing_a_task_holds_it_and_resuming_releases_it() {
    let mut w = World::with(vec![nt("a", &[]), nt("r", &[])]);
    let c = rules::set_task_paused(&w.g, "a", true);
    w.applied(c).unwrap();
    assert_eq!(w.status("a"), TaskStatus::Paused);
    let c = rules::set_task_paused(&w.g, "a", false);
    w.applied(c).unwrap();
    assert_eq!(w.status("a"), TaskStatus::Ready);

    // Pausing a running task takes effect after its attempt.
    let (n, _) = w.started("r");
    let c = rules::set_task_paused(&w.g, "r", true);
    w.applied(c).unwrap();
    assert_eq!(w.status("r"), TaskStatus::Running);
    w.result("r", n, WorkerOutcome::failure("x"));
    w.advance(3600.0);
    assert_eq!(w.status("r"), TaskStatus::Paused);
}

#[test]
fn pausing_a_group_is_one_flag() {
    let mut w = World::with((0..50).map(|i| nt(&format!("t{i}"), &[])).collect());
    let tasks_before = w.g.tasks.clone();
    let c = rules::set_group_paused(&w.g, G, true).unwrap();
    assert_eq!(c.ops.len(), 1);
    assert!(matches!(&c.ops[0], Change::UpdateGroup(g) if g.is_paused));
    w.g.apply(&c);
    assert_eq!(w.g.tasks, tasks_before);
    assert_eq!(w.status("t7"), TaskStatus::Paused);
    let c = rules::set_group_paused(&w.g, G, false).unwrap();
    assert_eq!(c.ops.len(), 1);
    w.g.apply(&c);
    assert_eq!(w.status("t7"), TaskStatus::Ready);

    let r = rules::update_group(
        &w.g,
        G,
        TaskGroupPatch {
            id: Some("other".into()),
            ..Default::default()
        },
        w.now,
    );
    assert!(matches!(r, Err(RuleError::Invalid(_))));
    assert!(matches!(
        rules::set_group_paused(&w.g, "nope", true),
        Err(RuleError::NotFound { .. })
    ));
}

#[test]
fn pause_and_resume_a_workgroup() {
    let mut w = World::with(vec![in_wg("a", "api")]);
    let until = w.now.plus_seconds(300.0);
    let c = rules::pause_workgroup(&w.g, "api", until).unwrap();
    assert_eq!(c.ops.len(), 1);
    w.g.apply(&c);
    let wg = w.g.workgroups.get("api").unwrap();
    assert_eq!(wg.paused_until, Some(until));
    assert!(wg.paused_by_operator);
    assert!(matches!(
        w.start("a"),
        rules::Start::Skipped {
            status: Some(TaskStatus::Paused)
        }
    ));
    let c = rules::resume_workgroup(&w.g, "api");
    w.applied(c).unwrap();
    assert_eq!(w.g.workgroups.get("api").unwrap().paused_until, None);
    w.started("a");

    assert!(matches!(
        rules::resume_workgroup(&w.g, "never-paused"),
        Err(RuleError::NotFound {
            what: "workgroup",
            ..
        })
    ));
    assert!(matches!(
        rules::pause_workgroup(&w.g, "bad name", until),
        Err(RuleError::Invalid(_))
    ));
}

#[test]
fn workgroup_limits_keep_the_pause_and_never_hold_a_task() {
    let mut w = World::with(vec![in_wg("a", "api")]);
    let until = w.now.plus_seconds(300.0);
    w.g.apply(&rules::pause_workgroup(&w.g, "api", until).unwrap());
    let limits = crew_core::WorkgroupLimits::parse("concurrency:2,rate:5").unwrap();
    let c = rules::set_workgroup_limits(&w.g, "api", limits).unwrap();
    w.g.apply(&c);
    let wg = w.g.workgroups.get("api").unwrap();
    assert_eq!(wg.limits, limits);
    assert_eq!(wg.paused_until, Some(until), "the pause is kept");
    // Limits are the dispatcher's business: the status ignores them.
    w.applied(rules::resume_workgroup(&w.g, "api")).unwrap();
    w.started("a");

    let cleared = rules::set_workgroup_limits(&w.g, "api", Default::default()).unwrap();
    w.g.apply(&cleared);
    assert!(w.g.workgroups.get("api").unwrap().limits.is_empty());

    let zero = crew_core::WorkgroupLimits {
        max_concurrency: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        rules::set_workgroup_limits(&w.g, "api", zero),
        Err(RuleError::Invalid(_))
    ));
    assert!(matches!(
        rules::set_workgroup_limits(&w.g, "bad name", limits),
        Err(RuleError::Invalid(_))
    ));
}

/// A schedule added to a group made long ago comes due first after it was
/// added: counted from the group's creation, it was due at once, and the
/// reset (which deletes non-seed tasks) ran the moment it was set.
#[test]
fn a_schedule_added_later_comes_due_after_it_was_added() {
    let mut w = World::with(vec![nt("a", &[])]);
    w.advance(3.0 * 86_400.0);
    let patch = crew_core::wire::TaskGroupPatch {
        schedule: Some("0 2 * * *".into()),
        ..Default::default()
    };
    let c = rules::update_group(&w.g, G, patch, w.now);
    w.applied(c).unwrap();
    let set = w.now;
    let next = crew_core::schedule::next_after("0 2 * * *", set)
        .unwrap()
        .unwrap();
    let early = rules::scheduled_reset(&w.g, G, set.plus_seconds(1.0)).unwrap();
    assert!(early.changes.is_empty(), "not due yet");
    let due = rules::scheduled_reset(&w.g, G, next).unwrap();
    assert!(
        !due.changes.is_empty(),
        "due at its next time after being set"
    );
    // The same schedule given again does not move it.
    let again = crew_core::wire::TaskGroupPatch {
        schedule: Some("0 2 * * *".into()),
        ..Default::default()
    };
    let c = rules::update_group(&w.g, G, again, next);
    w.applied(c).unwrap();
    assert_eq!(w.g.groups[G].schedule_since, Some(set));
}
