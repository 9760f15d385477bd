//! `dag::validate_batch` against a plain reference version of itself: for
//! any batch, the same answer, down to the error kind and the exact message
//! (which ids it names, in which order).

mod common;

use common::*;
use crew_core::dag::{self, NewNode};
use crew_core::{GraphRead, RuleError};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

/// The straightforward version: a `HashMap` of ids, Kahn's algorithm over
/// per-node child lists. Slow on large batches, easy to check by eye.
fn reference<G: GraphRead + ?Sized>(
    g: &G,
    group: &str,
    nodes: &[NewNode<'_>],
) -> Result<(), RuleError> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut duplicates = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        dag::check_safe_name("task id", n.id)?;
        if index.insert(n.id, i).is_some() {
            duplicates.push(n.id.to_string());
        }
    }
    if !duplicates.is_empty() {
        return Err(RuleError::Invalid(format!(
            "duplicate task ids in the request: {}",
            name_ids(&duplicates)
        )));
    }
    let mut taken = Vec::new();
    for n in nodes {
        if g.is_complete(n.id)?.is_some() {
            taken.push(n.id.to_string());
        }
    }
    if !taken.is_empty() {
        return Err(RuleError::Conflict(format!(
            "task ids already exist: {}",
            name_ids(&taken)
        )));
    }
    let mut self_parents = Vec::new();
    let mut unknown = Vec::new();
    let mut foreign = Vec::new();
    let mut children = vec![Vec::new(); nodes.len()];
    let mut indegree = vec![0usize; nodes.len()];
    let mut known_outside = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        for p in n.parent_ids {
            if p == n.id {
                self_parents.push(n.id.to_string());
            } else if let Some(&pi) = index.get(p.as_str()) {
                children[pi].push(i);
                indegree[i] += 1;
            } else if !known_outside.contains(p) {
                match g.task(p)? {
                    None => unknown.push(format!("{} (parent of {})", p, n.id)),
                    Some(t) if t.task_group_id != group => foreign.push(format!(
                        "{} (parent of {}, in group {})",
                        p, n.id, t.task_group_id
                    )),
                    Some(_) => {
                        known_outside.insert(p.clone());
                    }
                }
            }
        }
    }
    for (list, what) in [
        (&self_parents, "tasks name themselves as parent"),
        (&unknown, "unknown parent ids"),
        (&foreign, "parents must be in the same group"),
    ] {
        if !list.is_empty() {
            return Err(RuleError::Invalid(format!("{what}: {}", name_ids(list))));
        }
    }
    let mut queue: Vec<usize> = (0..nodes.len()).filter(|&i| indegree[i] == 0).collect();
    while let Some(i) = queue.pop() {
        for &c in &children[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                queue.push(c);
            }
        }
    }
    let stuck: Vec<String> = (0..nodes.len())
        .filter(|&i| indegree[i] > 0)
        .map(|i| nodes[i].id.to_string())
        .collect();
    if !stuck.is_empty() {
        return Err(RuleError::Invalid(format!(
            "the tasks form a cycle: {}",
            name_ids(&stuck)
        )));
    }
    Ok(())
}

fn name_ids(ids: &[String]) -> String {
    let mut s: Vec<String> = ids.iter().take(10).map(|i| dag::truncate(i, 160)).collect();
    if ids.len() > 10 {
        s.push(format!("and {} more", ids.len() - 10));
    }
    s.join(", ")
}

/// What a generated id or parent reference names.
#[derive(Clone, Debug)]
enum Name {
    /// The batch's own id `b{n}` (ids repeat when several nodes draw the
    /// same number).
    Batch(usize),
    /// A task stored in the group.
    Existing(usize),
    /// A task stored in another group.
    Foreign(usize),
    /// Nothing stored anywhere.
    Ghost(usize),
    /// Not a safe name.
    Unsafe,
}

fn a_name(batch_ids: usize) -> impl Strategy<Value = Name> {
    prop_oneof![
        40 => (0..batch_ids).prop_map(Name::Batch),
        3 => (0..4usize).prop_map(Name::Existing),
        1 => (0..2usize).prop_map(Name::Foreign),
        1 => (0..4usize).prop_map(Name::Ghost),
        1 => Just(Name::Unsafe),
    ]
}

fn render(n: &Name) -> String {
    match n {
        Name::Batch(k) => format!("b{k}"),
        Name::Existing(k) => format!("e{k}"),
        Name::Foreign(k) => format!("o{k}"),
        Name::Ghost(k) => format!("ghost{k}"),
        Name::Unsafe => "not/safe".into(),
    }
}

/// One parent reference: mostly a task earlier in the batch (so that
/// batches are often valid), else any name.
#[derive(Clone, Debug)]
enum Ref {
    Earlier(usize),
    Any(Name),
}

/// A batch: each node's id and its parents. Ids are a shuffled range, so
/// positions and ids differ; about one id or parent per batch is drawn
/// from any kind of name, which is enough for most batches to break one
/// rule and many to break none.
fn a_batch(max: usize) -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
    (1..max).prop_flat_map(|n| {
        let odds = 1.0 / (n as f64 + 1.0);
        let ids = Just((0..n).collect::<Vec<usize>>()).prop_shuffle();
        let odd = prop::collection::vec(prop::option::weighted(odds / 2.0, a_name(n)), n);
        let a_ref = prop_oneof![
            n as u32 => any::<usize>().prop_map(Ref::Earlier),
            1 => a_name(n).prop_map(Ref::Any),
        ];
        let parents = prop::collection::vec(prop::collection::vec(a_ref, 0..4), n);
        (ids, odd, parents).prop_map(|(ids, odd, parents)| {
            let ids: Vec<String> = ids
                .into_iter()
                .zip(odd)
                .map(|(k, odd)| odd.map_or_else(|| format!("b{k}"), |o| render(&o)))
                .collect();
            parents
                .iter()
                .enumerate()
                .map(|(i, refs)| {
                    let ps = refs
                        .iter()
                        .filter_map(|r| match r {
                            Ref::Earlier(k) if i > 0 => Some(ids[k % i].clone()),
                            Ref::Earlier(_) => None,
                            Ref::Any(name) => Some(render(name)),
                        })
                        .collect();
                    (ids[i].clone(), ps)
                })
                .collect()
        })
    })
}

fn world() -> World {
    let mut w = World::new();
    w.create((0..4).map(|i| nt(&format!("e{i}"), &[])).collect())
        .expect("create the group's tasks");
    w.add_group("g2");
    w.create_in("g2", (0..2).map(|i| nt(&format!("o{i}"), &[])).collect())
        .expect("create the other group's tasks");
    w
}

fn check(w: &World, batch: &[(String, Vec<String>)]) -> Result<(), TestCaseError> {
    let nodes: Vec<NewNode<'_>> = batch
        .iter()
        .map(|(id, ps)| NewNode { id, parent_ids: ps })
        .collect();
    prop_assert_eq!(
        dag::validate_batch(&w.g, G, &nodes),
        reference(&w.g, G, &nodes),
        "batch {:?}",
        batch
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn small_batches_get_the_reference_answer(batch in a_batch(12)) {
        check(&world(), &batch)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn larger_batches_get_the_reference_answer(batch in a_batch(400)) {
        check(&world(), &batch)?;
    }
}

/// A long chain in topological order, the same in reverse order, and the
/// first with one more edge that closes a cycle.
#[test]
fn a_long_chain_in_either_order_and_with_a_cycle() {
    let w = world();
    let mut batch: Vec<(String, Vec<String>)> = (0..500)
        .map(|i| {
            let parents = if i == 0 {
                vec!["e0".to_string()]
            } else {
                vec![format!("b{}", i - 1), format!("b{}", i / 2)]
            };
            (format!("b{i}"), parents)
        })
        .collect();
    check(&w, &batch).expect("an ordered batch");
    batch.reverse();
    check(&w, &batch).expect("the batch in reverse order");
    batch.reverse();
    batch[100].1.push("b300".into());
    check(&w, &batch).expect("a batch with a cycle");
}
