//! One test per crew-go defect that pure rules could repeat.

use crate::common::*;
use crew_core::graph::Change;
use crew_core::rules;
use crew_core::worker::WorkerOutcome;
use crew_core::TaskStatus;
use serde_json::json;

/// crew-go's inverted error check skipped `childrenDelayInSeconds`.
#[test]
fn children_delay_is_applied() {
    let mut w = World::with(vec![nt("a", &[])]);
    let (n, _) = w.started("a");
    w.result("a", n, success_with(json!(1), vec![child("c", &[])], 90.0));
    assert_eq!(w.task("c").run_after, w.now.plus_seconds(90.0));
    assert!(matches!(
        w.start("c"),
        rules::Start::Skipped {
            status: Some(TaskStatus::Delayed)
        }
    ));
}

/// crew-go's inverted error check skipped `workgroupDelayInSeconds`.
#[test]
fn workgroup_delay_is_applied() {
    let mut w = World::with(vec![in_wg("a", "api"), in_wg("b", "api")]);
    let (n, _) = w.started("a");
    w.result(
        "a",
        n,
        WorkerOutcome::Success {
            output: json!(1),
            children: vec![],
            children_delay_secs: 0.0,
            workgroup_delay_secs: Some(30.0),
        },
    );
    assert!(matches!(
        w.start("b"),
        rules::Start::Skipped {
            status: Some(TaskStatus::Delayed)
        }
    ));
    w.advance(30.0);
    w.started("b");
}

/// crew-go never released the children of duplicates completed by key.
#[test]
fn duplicates_children_are_released() {
    let mut w = World::with(vec![
        keyed("a", "k", &[]),
        keyed("dup", "k", &[]),
        nt("child_of_dup", &["dup"]),
    ]);
    let c = w.run_ok("a", json!("shared"));
    assert!(c.wake.contains(&"child_of_dup".to_string()), "{:?}", c.wake);
    let (_, payload) = w.started("child_of_dup");
    assert_eq!(payload.parents[0].output, json!("shared"));
}

/// crew-go created children one by one: a failure left some behind.
#[test]
fn children_are_created_atomically() {
    let mut w = World::with(vec![nt("a", &[])]);
    let (n, _) = w.started("a");
    let c = w.result(
        "a",
        n,
        success_with(
            json!(1),
            vec![
                child("c1", &[]),
                child("c2", &["c1"]),
                child("c3", &["nope"]),
            ],
            0.0,
        ),
    );
    assert!(created_ids(&c).is_empty());
    assert!(!w.exists("c1") && !w.exists("c2"));
    assert!(!w.task("a").is_complete);

    // The next attempt's valid children arrive in one change set with the
    // completion.
    w.advance(3600.0);
    let (n, _) = w.started("a");
    let c = w.result(
        "a",
        n,
        success_with(json!(1), vec![child("c1", &[]), child("c2", &["c1"])], 0.0),
    );
    assert_eq!(created_ids(&c), vec!["c1", "c2"]);
    assert!(c.ops.iter().any(
        |o| matches!(o, Change::UpdateTask { after, .. } if after.id == "a" && after.is_complete)
    ));
}

/// crew-go rewrote every task to pause a group.
#[test]
fn pausing_a_group_rewrites_no_task() {
    let mut w = World::with((0..200).map(|i| nt(&format!("t{i}"), &[])).collect());
    for paused in [true, false] {
        let c = rules::set_group_paused(&w.g, G, paused).unwrap();
        assert_eq!(c.ops.len(), 1);
        assert_eq!(c.updated_tasks(), 0);
        assert!(c.wake.is_empty());
        w.applied(Ok(c)).unwrap();
    }
    // Asked again, nothing changes: not even the group is written.
    let c = rules::set_group_paused(&w.g, G, false).unwrap();
    assert!(c.ops.is_empty());
}
