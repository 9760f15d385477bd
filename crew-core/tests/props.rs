//! Property tests: DAG validation against an independent checker, and
//! scheduling invariants over random event sequences.

mod common;

use common::*;
use crew_core::graph::Change;
use crew_core::rules::{self, RetryPolicy, Start};
use crew_core::wire::{ChildTask, NewTask};
use crew_core::worker::WorkerOutcome;
use crew_core::{Changes, GraphRead, MemGraph, RuleError};
use proptest::prelude::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};

// ---- DAG validation ----------------------------------------------------------

/// What a parent reference of a generated batch points at.
#[derive(Clone, Debug)]
enum Ref {
    /// A task earlier in the batch (always acyclic).
    Earlier(usize),
    /// Any task of the batch, itself and later ones included (may cycle).
    Any(usize),
    /// A task already in the group.
    Existing(usize),
    /// A task of another group.
    Foreign(usize),
    /// An id that exists nowhere.
    Ghost(usize),
}

fn a_ref() -> impl Strategy<Value = Ref> {
    prop_oneof![
        12 => (0..64usize).prop_map(Ref::Earlier),
        1 => (0..64usize).prop_map(Ref::Any),
        3 => (0..64usize).prop_map(Ref::Existing),
        1 => (0..64usize).prop_map(Ref::Foreign),
        1 => (0..64usize).prop_map(Ref::Ghost),
    ]
}

/// How a generated task's id is chosen.
#[derive(Clone, Debug)]
enum IdKind {
    Fresh,
    /// The id of an earlier task of the batch.
    Repeat(usize),
    /// The id of a task already stored (in either group).
    Taken(usize),
}

fn an_id_kind() -> impl Strategy<Value = IdKind> {
    prop_oneof![
        30 => Just(IdKind::Fresh),
        1 => (0..64usize).prop_map(IdKind::Repeat),
        1 => (0..64usize).prop_map(IdKind::Taken),
    ]
}

#[derive(Clone, Debug)]
struct BatchCase {
    existing: usize,
    foreign: usize,
    nodes: Vec<(IdKind, Vec<Ref>)>,
}

fn a_batch() -> impl Strategy<Value = BatchCase> {
    (
        0..4usize,
        1..3usize,
        prop::collection::vec((an_id_kind(), prop::collection::vec(a_ref(), 0..4)), 1..24),
    )
        .prop_map(|(existing, foreign, nodes)| BatchCase {
            existing,
            foreign,
            nodes,
        })
}

/// Resolves a generated batch to ids and parent ids.
fn resolve(case: &BatchCase) -> Vec<(String, Vec<String>)> {
    let mut ids: Vec<String> = Vec::new();
    for (i, (kind, _)) in case.nodes.iter().enumerate() {
        let id = match kind {
            IdKind::Repeat(k) if i > 0 => ids[k % i].clone(),
            IdKind::Taken(k) => {
                let stored = case.existing + case.foreign;
                if k % stored < case.existing {
                    format!("e{}", k % stored)
                } else {
                    format!("o{}", k % stored - case.existing)
                }
            }
            _ => format!("b{i}"),
        };
        ids.push(id);
    }
    let n = ids.len();
    case.nodes
        .iter()
        .enumerate()
        .map(|(i, (_, refs))| {
            let parents = refs
                .iter()
                .filter_map(|r| match r {
                    Ref::Earlier(k) if i > 0 => Some(ids[k % i].clone()),
                    Ref::Earlier(_) => None,
                    Ref::Any(k) => Some(ids[k % n].clone()),
                    Ref::Existing(k) if case.existing > 0 => {
                        Some(format!("e{}", k % case.existing))
                    }
                    Ref::Existing(_) => None,
                    Ref::Foreign(k) => Some(format!("o{}", k % case.foreign)),
                    Ref::Ghost(k) => Some(format!("ghost{k}")),
                })
                .collect();
            (ids[i].clone(), parents)
        })
        .collect()
}

/// The independent checker: whether the batch is a valid DAG for the group.
fn acceptable(
    in_group: &HashSet<String>,
    stored: &HashSet<String>,
    batch: &[(String, Vec<String>)],
) -> bool {
    let mut ids = HashSet::new();
    for (id, _) in batch {
        if !ids.insert(id.clone()) || stored.contains(id) {
            return false;
        }
    }
    for (id, parents) in batch {
        for p in parents {
            if p == id || !(ids.contains(p) || in_group.contains(p)) {
                return false;
            }
        }
    }
    // Depth-first search for a back edge among batch tasks.
    let parents: HashMap<&str, Vec<&str>> = batch
        .iter()
        .map(|(id, ps)| {
            (
                id.as_str(),
                ps.iter()
                    .map(String::as_str)
                    .filter(|p| ids.contains(*p))
                    .collect(),
            )
        })
        .collect();
    fn visit<'a>(
        id: &'a str,
        parents: &HashMap<&'a str, Vec<&'a str>>,
        state: &mut HashMap<&'a str, u8>,
    ) -> bool {
        match state.get(id) {
            Some(1) => return false,
            Some(2) => return true,
            _ => {}
        }
        state.insert(id, 1);
        for p in &parents[id] {
            if !visit(p, parents, state) {
                return false;
            }
        }
        state.insert(id, 2);
        true
    }
    let mut state = HashMap::new();
    batch
        .iter()
        .all(|(id, _)| visit(id.as_str(), &parents, &mut state))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn create_tasks_refuses_exactly_the_bad_batches(case in a_batch()) {
        let mut w = World::new();
        w.add_group("g2");
        let existing: Vec<NewTask> = (0..case.existing).map(|i| nt(&format!("e{i}"), &[])).collect();
        if !existing.is_empty() {
            w.create(existing).unwrap();
        }
        w.create_in("g2", (0..case.foreign).map(|i| nt(&format!("o{i}"), &[])).collect())
            .unwrap();
        let in_group: HashSet<String> = w.ids().into_iter().collect();
        let stored: HashSet<String> = w.g.tasks.keys().cloned().collect();

        let batch = resolve(&case);
        let expected = acceptable(&in_group, &stored, &batch);
        let specs: Vec<NewTask> = batch
            .iter()
            .map(|(id, ps)| NewTask {
                parent_ids: ps.clone(),
                ..nt(id, &[])
            })
            .collect();
        let before = w.g.tasks.clone();
        let r = w.create(specs);
        prop_assert_eq!(r.is_ok(), expected, "batch {:?} gave {:?}", batch, r);
        match r {
            Ok(c) => {
                prop_assert_eq!(created_ids(&c).len(), batch.len());
                for (id, _) in &batch {
                    prop_assert!(w.exists(id));
                }
            }
            Err(RuleError::Invalid(m)) | Err(RuleError::Conflict(m)) => {
                prop_assert_eq!(&w.g.tasks, &before);
                prop_assert!(!m.is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected error kind {:?}", e),
        }
    }
}

// ---- Event sequences -----------------------------------------------------------

#[derive(Clone, Debug)]
struct Node {
    parents: Vec<usize>,
    key: u8,
    workgroup: bool,
    seed: bool,
    attempts: u32,
    error_delay: u64,
}

fn a_node() -> impl Strategy<Value = Node> {
    (
        prop::collection::vec(0..64usize, 0..3),
        0..4u8,
        any::<bool>(),
        prop::bool::weighted(0.2),
        1..4u32,
        0..3u64,
    )
        .prop_map(
            |(parents, key, workgroup, seed, attempts, error_delay)| Node {
                parents,
                key,
                workgroup,
                seed,
                attempts,
                error_delay,
            },
        )
}

/// A continuation: a key, and parents among its earlier siblings (`Ok`) or
/// the group's tasks; `Err` is a parent that does not exist.
#[derive(Clone, Debug)]
struct ChildSpec {
    key: u8,
    parents: Vec<Result<(bool, usize), usize>>,
}

fn a_child() -> impl Strategy<Value = ChildSpec> {
    (
        0..4u8,
        prop::collection::vec(
            prop_oneof![
                20 => (any::<bool>(), 0..64usize).prop_map(Ok),
                1 => (0..64usize).prop_map(Err),
            ],
            0..3,
        ),
    )
        .prop_map(|(key, parents)| ChildSpec { key, parents })
}

#[derive(Clone, Debug)]
enum Op {
    Start(usize),
    Succeed(usize, Vec<ChildSpec>, Option<u8>),
    Fail(usize),
    RateLimit(usize, u8),
    Stale(usize),
    Interrupt(usize),
    Reset(usize),
    ResetGroup,
    Retry(usize),
    RetryGroup,
    Delete(usize),
    PauseTask(usize, bool),
    PauseGroup(bool),
    PauseWorkgroup(u8),
    ResumeWorkgroup,
    Advance(u8),
}

fn an_op() -> impl Strategy<Value = Op> {
    let i = || 0..64usize;
    prop_oneof![
        12 => i().prop_map(Op::Start),
        8 => (i(), prop::collection::vec(a_child(), 0..3), prop::option::weighted(0.1, 1..30u8))
            .prop_map(|(t, c, d)| Op::Succeed(t, c, d)),
        3 => i().prop_map(Op::Fail),
        2 => (i(), 1..20u8).prop_map(|(t, d)| Op::RateLimit(t, d)),
        1 => i().prop_map(Op::Stale),
        1 => i().prop_map(Op::Interrupt),
        2 => i().prop_map(Op::Reset),
        1 => Just(Op::ResetGroup),
        1 => i().prop_map(Op::Retry),
        1 => Just(Op::RetryGroup),
        1 => i().prop_map(Op::Delete),
        1 => (i(), any::<bool>()).prop_map(|(t, p)| Op::PauseTask(t, p)),
        1 => any::<bool>().prop_map(Op::PauseGroup),
        1 => (1..30u8).prop_map(Op::PauseWorkgroup),
        1 => Just(Op::ResumeWorkgroup),
        4 => (1..40u8).prop_map(Op::Advance),
    ]
}

fn key_name(k: u8) -> String {
    if k < 2 {
        String::new()
    } else {
        format!("k{k}")
    }
}

/// Applies changes after checking they fit the graph they were computed on.
fn apply_checked(g: &mut MemGraph, c: &Changes) -> Result<(), TestCaseError> {
    for op in &c.ops {
        match op {
            Change::CreateTask(t) => {
                prop_assert!(!g.tasks.contains_key(&t.id), "creates existing {}", t.id)
            }
            Change::UpdateTask { before, after } => {
                prop_assert_eq!(before.id.as_str(), after.id.as_str());
                prop_assert_eq!(g.tasks.get(&before.id), Some(&**before), "stale before");
            }
            Change::DeleteTask(t) => {
                prop_assert_eq!(g.tasks.get(&t.id), Some(t), "deletes a stale version")
            }
            _ => {}
        }
    }
    g.apply(c);
    Ok(())
}

fn check_invariants(g: &MemGraph) -> Result<(), TestCaseError> {
    let mut busy: HashMap<(&str, &str), &str> = HashMap::new();
    for t in g.tasks.values() {
        for p in &t.parent_ids {
            let parent = g.tasks.get(p);
            prop_assert!(parent.is_some(), "{} names missing parent {}", t.id, p);
            prop_assert_eq!(
                parent.map(|p| p.task_group_id.as_str()),
                Some(t.task_group_id.as_str())
            );
            prop_assert!(g.children(p).unwrap().contains(&t.id), "children index");
        }
        if let Some(creator) = &t.created_by {
            prop_assert!(
                t.parent_ids.contains(creator),
                "{} was created by {} but does not name it as a parent",
                t.id,
                creator
            );
        }
        if t.busy_executing && !t.key.is_empty() {
            if let Some(other) = busy.insert((&t.task_group_id, &t.key), &t.id) {
                prop_assert!(
                    false,
                    "{} and {} share key {} and both run",
                    other,
                    t.id,
                    t.key
                );
            }
        }
        prop_assert!(
            !(t.busy_executing && t.is_complete),
            "{} complete and running",
            t.id
        );
    }
    Ok(())
}

fn pick(ids: &[String], i: usize) -> Option<String> {
    (!ids.is_empty()).then(|| ids[i % ids.len()].clone())
}

fn running(w: &World) -> Vec<String> {
    w.g.tasks
        .values()
        .filter(|t| t.busy_executing)
        .map(|t| t.id.clone())
        .collect()
}

fn run_ops(nodes: Vec<Node>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut w = World::new();
    let specs: Vec<NewTask> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| NewTask {
            parent_ids: if i == 0 {
                vec![]
            } else {
                n.parents.iter().map(|p| format!("t{}", p % i)).collect()
            },
            key: key_name(n.key),
            workgroup: if n.workgroup {
                "wg".into()
            } else {
                String::new()
            },
            is_seed: n.seed,
            remaining_attempts: Some(n.attempts),
            error_delay_in_seconds: Some(n.error_delay),
            ..nt(&format!("t{i}"), &[])
        })
        .collect();
    w.create(specs).unwrap();
    check_invariants(&w.g)?;
    let mut fresh = 0usize;
    let policy = RetryPolicy::Exponential { cap_secs: 5 };

    for op in ops {
        let ids = w.ids();
        let now = w.now;
        let r: Result<Changes, RuleError> = match op {
            Op::Start(i) => {
                let Some(id) = pick(&ids, i) else { continue };
                match rules::start_attempt(&w.g, &id, now).unwrap() {
                    Start::Started {
                        changes,
                        attempt,
                        payload,
                    } => {
                        let t = w.task(&id);
                        for p in &t.parent_ids {
                            prop_assert!(
                                w.g.tasks.get(p).is_some_and(|p| p.is_complete),
                                "{} started before its parent {} completed",
                                id,
                                p
                            );
                        }
                        prop_assert_eq!(attempt, t.attempts + 1);
                        prop_assert_eq!(payload.parents.len(), t.parent_ids.len());
                        Ok(changes)
                    }
                    Start::Settled(c) => Ok(c),
                    Start::Skipped { .. } => Ok(Changes::default()),
                }
            }
            Op::Succeed(i, children, wg_delay) => {
                let Some(id) = pick(&running(&w), i) else {
                    continue;
                };
                let attempt = w.task(&id).attempts;
                let bad = children
                    .iter()
                    .any(|c| c.parents.iter().any(|p| p.is_err()));
                let mut names: Vec<String> = vec![];
                let kids: Vec<ChildTask> = children
                    .iter()
                    .map(|c| {
                        fresh += 1;
                        let name = format!("c{fresh}");
                        let parents: Vec<String> = c
                            .parents
                            .iter()
                            .filter_map(|p| match p {
                                Ok((true, k)) if !names.is_empty() => {
                                    Some(names[k % names.len()].clone())
                                }
                                Ok((_, k)) => pick(&ids, *k),
                                Err(k) => Some(format!("ghost{k}")),
                            })
                            .collect();
                        names.push(name.clone());
                        ChildTask {
                            key: key_name(c.key),
                            parent_ids: Some(parents),
                            ..child(&name, &[])
                        }
                    })
                    .collect();
                let count = kids.len();
                let before = w.g.tasks.len();
                let outcome = WorkerOutcome::Success {
                    output: json!({ "by": id }),
                    children: kids,
                    children_delay_secs: 0.0,
                    workgroup_delay_secs: wg_delay.map(f64::from),
                };
                let c = rules::record_result(
                    &w.g,
                    &id,
                    attempt,
                    outcome,
                    now,
                    policy,
                    0.5,
                    &mut gen_id,
                )
                .unwrap();
                apply_checked(&mut w.g, &c)?;
                if bad {
                    prop_assert_eq!(w.g.tasks.len(), before, "refused children were created");
                    prop_assert!(!w.task(&id).is_complete);
                } else {
                    prop_assert_eq!(w.g.tasks.len(), before + count);
                    prop_assert!(w.task(&id).is_complete);
                }
                check_invariants(&w.g)?;
                continue;
            }
            Op::Fail(i) => {
                let Some(id) = pick(&running(&w), i) else {
                    continue;
                };
                let t = w.task(&id);
                let c = rules::record_result(
                    &w.g,
                    &id,
                    t.attempts,
                    WorkerOutcome::failure("x"),
                    now,
                    policy,
                    0.5,
                    &mut gen_id,
                )
                .unwrap();
                apply_checked(&mut w.g, &c)?;
                prop_assert_eq!(w.task(&id).remaining_attempts, t.remaining_attempts - 1);
                prop_assert_eq!(w.task(&id).errors.len(), t.errors.len() + 1);
                check_invariants(&w.g)?;
                continue;
            }
            Op::RateLimit(i, d) => {
                let Some(id) = pick(&running(&w), i) else {
                    continue;
                };
                let t = w.task(&id);
                let c = rules::record_result(
                    &w.g,
                    &id,
                    t.attempts,
                    rate_limited(f64::from(d)),
                    now,
                    policy,
                    0.5,
                    &mut gen_id,
                )
                .unwrap();
                apply_checked(&mut w.g, &c)?;
                prop_assert_eq!(w.task(&id).remaining_attempts, t.remaining_attempts);
                check_invariants(&w.g)?;
                continue;
            }
            Op::Stale(i) => {
                let Some(id) = pick(&ids, i) else { continue };
                let t = w.task(&id);
                let c = rules::record_result(
                    &w.g,
                    &id,
                    t.attempts + 1,
                    success(json!(1)),
                    now,
                    policy,
                    0.5,
                    &mut gen_id,
                )
                .unwrap();
                prop_assert!(c.is_empty());
                continue;
            }
            Op::Interrupt(i) => {
                let Some(id) = pick(&running(&w), i) else {
                    continue;
                };
                rules::interrupt_attempt(&w.g, &id, now)
            }
            Op::Reset(i) => {
                let Some(id) = pick(&ids, i) else { continue };
                rules::reset_task(&w.g, &id, None, now)
            }
            Op::ResetGroup => rules::reset_group(&w.g, G, Some(3), now),
            Op::Retry(i) => {
                let Some(id) = pick(&ids, i) else { continue };
                rules::retry_task(&w.g, &id, Some(2), now)
            }
            Op::RetryGroup => rules::retry_group(&w.g, G, Some(2), now),
            Op::Delete(i) => {
                let Some(id) = pick(&ids, i) else { continue };
                rules::delete_task(&w.g, &id)
            }
            Op::PauseTask(i, p) => {
                let Some(id) = pick(&ids, i) else { continue };
                rules::set_task_paused(&w.g, &id, p)
            }
            Op::PauseGroup(p) => rules::set_group_paused(&w.g, G, p),
            Op::PauseWorkgroup(s) => {
                rules::pause_workgroup(&w.g, "wg", now.plus_seconds(f64::from(s)))
            }
            Op::ResumeWorkgroup => match w.g.workgroups.contains_key("wg") {
                true => rules::resume_workgroup(&w.g, "wg"),
                false => continue,
            },
            Op::Advance(s) => {
                w.advance(f64::from(s));
                continue;
            }
        };
        match r {
            Ok(c) => apply_checked(&mut w.g, &c)?,
            // Refusals (running tasks, complete tasks) leave nothing to apply.
            Err(RuleError::Conflict(_)) => {}
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
        check_invariants(&w.g)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn scheduling_invariants_hold_over_random_events(
        nodes in prop::collection::vec(a_node(), 1..12),
        ops in prop::collection::vec(an_op(), 0..80),
    ) {
        run_ops(nodes, ops)?;
    }
}
