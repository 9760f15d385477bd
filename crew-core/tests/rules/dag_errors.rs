//! Bad DAGs are refused whole, with errors naming the offending ids.

use crate::common::*;
use crew_core::dag::{self, NewNode};
use crew_core::RuleError;

#[test]
fn a_cycle_names_its_tasks() {
    let mut w = World::new();
    let r = w.create(vec![
        nt("root", &[]),
        nt("a", &["root", "c"]),
        nt("b", &["a"]),
        nt("c", &["b"]),
    ]);
    let m = assert_invalid_naming(r, &["a", "b", "c"]);
    assert!(m.contains("cycle"), "{m}");
    assert!(!m.contains("root"), "{m}");
    assert!(w.ids().is_empty());
}

#[test]
fn a_two_task_cycle() {
    let mut w = World::new();
    let m = assert_invalid_naming(
        w.create(vec![nt("x", &["y"]), nt("y", &["x"])]),
        &["x", "y"],
    );
    assert!(m.contains("cycle"), "{m}");
}

#[test]
fn an_unknown_parent_names_it_and_its_child() {
    let mut w = World::with(vec![nt("a", &[])]);
    let r = w.create(vec![nt("b", &["a"]), nt("c", &["ghost"])]);
    let m = assert_invalid_naming(r, &["ghost", "c"]);
    assert!(m.contains("unknown"), "{m}");
    assert!(!w.exists("b"));
}

#[test]
fn a_parent_in_another_group_is_refused() {
    let mut w = World::new();
    w.add_group("g2");
    w.create_in("g2", vec![nt("other", &[])]).unwrap();
    let r = w.create(vec![nt("mine", &["other"])]);
    let m = assert_invalid_naming(r, &["other", "mine", "g2"]);
    assert!(m.contains("same group"), "{m}");
    assert!(!w.exists("mine"));
}

#[test]
fn a_task_its_own_parent_is_refused() {
    let mut w = World::new();
    let m = assert_invalid_naming(w.create(vec![nt("selfish", &["selfish"])]), &["selfish"]);
    assert!(m.contains("themselves"), "{m}");
}

#[test]
fn duplicate_ids_in_a_batch_are_refused() {
    let mut w = World::new();
    let m = assert_invalid_naming(
        w.create(vec![nt("a", &[]), nt("b", &[]), nt("a", &[])]),
        &["a"],
    );
    assert!(m.contains("duplicate"), "{m}");
    assert!(w.ids().is_empty());
}

#[test]
fn an_id_already_taken_is_a_conflict_naming_it() {
    let mut w = World::with(vec![nt("a", &[])]);
    // Ids are unique across the daemon, not only within a group.
    w.add_group("g2");
    let m = assert_conflict(w.create_in("g2", vec![nt("fresh", &[]), nt("a", &[])]));
    assert!(m.contains("\"a\"") || m.contains(" a"), "{m}");
    assert!(!w.exists("fresh"));
}

#[test]
fn an_unsafe_id_is_refused() {
    let mut w = World::new();
    for bad in ["", ".hidden", "a/b", "sp ace", &"x".repeat(200)] {
        let r = w.create(vec![nt(bad, &[])]);
        assert!(matches!(r, Err(RuleError::Invalid(_))), "{bad:?}: {r:?}");
    }
}

#[test]
fn long_lists_of_offenders_are_cut_short() {
    let mut w = World::new();
    let tasks = (0..30)
        .map(|i| nt(&format!("t{i}"), &[&format!("ghost{i}")]))
        .collect();
    let m = assert_invalid_naming(w.create(tasks), &["ghost0", "and 20 more"]);
    assert!(m.len() < 1000, "{m}");
}

#[test]
fn validate_batch_accepts_a_chain_and_refuses_a_cycle_directly() {
    let w = World::new();
    let p1 = vec!["a".to_string()];
    let p2 = vec!["b".to_string()];
    let ok = [
        NewNode {
            id: "a",
            parent_ids: &[],
        },
        NewNode {
            id: "b",
            parent_ids: &p1,
        },
    ];
    assert!(dag::validate_batch(&w.g, G, &ok).is_ok());
    let cyclic = [
        NewNode {
            id: "a",
            parent_ids: &p2,
        },
        NewNode {
            id: "b",
            parent_ids: &p1,
        },
    ];
    assert!(dag::validate_batch(&w.g, G, &cyclic).is_err());
}

/// JSON nested past what readers take back is refused where it comes in:
/// a new task's input, an edit's input or output, a child's input.
#[test]
fn json_nested_too_deep_is_refused_on_the_way_in() {
    let nested = |n: usize| -> serde_json::Value {
        let mut v = serde_json::json!(1);
        for _ in 0..n {
            v = serde_json::json!([v]);
        }
        v
    };
    let deep = nested(dag::MAX_JSON_DEPTH + 1);
    let mut w = World::new();
    let mut t = nt("deep", &[]);
    t.input = deep.clone();
    let m = assert_invalid_naming(w.create(vec![nt("fine", &[]), t]), &[]);
    assert!(
        m.contains("input nests arrays and objects 65 levels deep"),
        "{m}"
    );
    assert!(w.ids().is_empty());

    let mut t = nt("edge", &[]);
    t.input = nested(dag::MAX_JSON_DEPTH);
    w.create(vec![t]).unwrap();
    for patch in [
        crew_core::wire::TaskPatch {
            input: Some(deep.clone()),
            ..Default::default()
        },
        crew_core::wire::TaskPatch {
            output: Some(deep.clone()),
            ..Default::default()
        },
    ] {
        let r = crew_core::rules::update_task(&w.g, "edge", patch, w.now);
        assert!(matches!(r, Err(RuleError::Invalid(_))), "{r:?}");
    }

    let mut c = child("c", &[]);
    c.input = deep;
    w.run_with_children("edge", vec![c]);
    let t = w.task("edge");
    assert!(!t.is_complete && !w.exists("c"));
    assert!(
        t.errors
            .last()
            .is_some_and(|e| e.message().contains("65 levels deep")),
        "{:?}",
        t.errors
    );
}
