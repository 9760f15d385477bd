//! Benchmarks of the scheduling rules on a 100k-task group.
//!
//! Run with `cargo bench -p crew-core`. Prints one line per operation: the
//! median time of many runs and its spread (10th and 90th percentiles,
//! minimum and maximum).

use crew_core::dag::{self, NewNode};
use crew_core::graph::Change;
use crew_core::rules::{self, RetryPolicy, Start};
use crew_core::wire::{NewTask, NewTaskGroup};
use crew_core::worker::WorkerOutcome;
use crew_core::{MemGraph, Task, Timestamp};
use serde_json::json;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Tasks in the benchmarked group.
const TASKS: usize = 100_000;
/// Tasks per layer of the DAG (each task has 1 to 3 parents in the layer
/// above).
const WIDTH: usize = 1_000;
/// Runs of the 100k-task validation and creation.
const BIG_RUNS: usize = 11;
/// Tasks completed one by one in the 100k-task group.
const COMPLETIONS: usize = 5_000;
const GROUP: &str = "bench";

/// A small deterministic generator, so every run measures the same DAG.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// A layered DAG of `n` tasks, `width` per layer; every tenth task has a
/// (unique) key so the duplicate-key lookups are exercised too.
fn layered_dag(n: usize, width: usize) -> Vec<NewTask> {
    let mut rng = Lcg(42);
    (0..n)
        .map(|i| {
            let layer = i / width;
            let mut parent_ids = Vec::new();
            if layer > 0 {
                let above = (layer - 1) * width;
                for _ in 0..1 + rng.below(3) {
                    let p = format!("t{}", above + rng.below(width));
                    if !parent_ids.contains(&p) {
                        parent_ids.push(p);
                    }
                }
            }
            NewTask {
                id: Some(format!("t{i}")),
                name: format!("task {i}"),
                worker: "w".into(),
                workgroup: if i % 7 == 0 {
                    "api".into()
                } else {
                    String::new()
                },
                key: if i % 10 == 0 {
                    format!("k{i}")
                } else {
                    String::new()
                },
                input: json!({ "n": i }),
                parent_ids,
                ..Default::default()
            }
        })
        .collect()
}

fn empty_group(now: Timestamp) -> MemGraph {
    let mut g = MemGraph::new();
    let mut ids = || unreachable_id();
    let c = rules::create_group(
        &g,
        NewTaskGroup {
            id: Some(GROUP.into()),
            name: "bench".into(),
            ..Default::default()
        },
        now,
        &mut ids,
    )
    .expect("create the group");
    g.apply(&c);
    g
}

fn unreachable_id() -> String {
    panic!("every benchmarked task has an id")
}

/// CPU time this thread has used, from `/proc/thread-self/schedstat`
/// (Linux), so that time spent waiting for a busy CPU can be told apart
/// from the work itself. `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Wall and CPU time of one call.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Option<Duration>) {
    let c0 = thread_cpu();
    let t0 = Instant::now();
    let out = f();
    let wall = t0.elapsed();
    let cpu = match (c0, thread_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    (out, wall, cpu)
}

struct Row {
    name: &'static str,
    samples: Vec<Duration>,
    /// CPU time per run, for the long operations (the kernel updates it
    /// too coarsely for microsecond ones).
    cpu: Vec<Duration>,
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn print_table(rows: &mut [Row]) {
    println!();
    println!(
        "{:<46} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11}",
        "operation", "runs", "median", "p10", "p90", "min", "max", "cpu median"
    );
    println!("{}", "-".repeat(119));
    for r in rows.iter_mut() {
        r.samples.sort();
        r.cpu.sort();
        let s = &r.samples;
        let cpu = if r.cpu.is_empty() {
            "-".to_string()
        } else {
            fmt(pct(&r.cpu, 50))
        };
        println!(
            "{:<46} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11}",
            r.name,
            s.len(),
            fmt(pct(s, 50)),
            fmt(pct(s, 10)),
            fmt(pct(s, 90)),
            fmt(s[0]),
            fmt(s[s.len() - 1]),
            cpu,
        );
    }
    println!();
    println!(
        "median/p10/p90/min/max: wall-clock time per operation; cpu median: time \
         this thread was on a CPU (excludes waiting for a busy machine)."
    );
    println!(
        "The reference row times only a std HashMap insert per task and a lookup \
         per edge of the same DAG: a yardstick for this machine's speed."
    );
    println!();
}

fn main() {
    let now = Timestamp::from_unix_millis(1_700_000_000_000);
    let specs = layered_dag(TASKS, WIDTH);
    let empty = empty_group(now);
    // (a) validating and creating a 100k-task DAG in an empty group.
    let nodes: Vec<NewNode<'_>> = specs
        .iter()
        .map(|t| NewNode {
            id: t.id.as_deref().unwrap_or_default(),
            parent_ids: &t.parent_ids,
        })
        .collect();
    let mut reference = Row {
        name: "reference: HashMap 100k inserts + edge lookups",
        samples: vec![],
        cpu: vec![],
    };
    let mut validate = Row {
        name: "dag::validate_batch, 100k-task DAG",
        samples: vec![],
        cpu: vec![],
    };
    let mut create = Row {
        name: "rules::create_tasks, 100k-task DAG",
        samples: vec![],
        cpu: vec![],
    };
    let mut created = None;
    for _ in 0..BIG_RUNS {
        let (found, wall, cpu) = timed(|| {
            let mut index: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
            for (i, n) in nodes.iter().enumerate() {
                index.insert(n.id, i);
            }
            nodes
                .iter()
                .flat_map(|n| n.parent_ids.iter())
                .filter(|p| index.contains_key(p.as_str()))
                .count()
        });
        black_box(found);
        reference.samples.push(wall);
        reference.cpu.extend(cpu);

        let (r, wall, cpu) = timed(|| dag::validate_batch(&empty, GROUP, black_box(&nodes)));
        r.expect("the benchmark DAG is valid");
        validate.samples.push(wall);
        validate.cpu.extend(cpu);

        let batch = specs.clone();
        let mut ids = || unreachable_id();
        let (c, wall, cpu) =
            timed(|| rules::create_tasks(&empty, GROUP, black_box(batch), now, &mut ids));
        let c = c.expect("the benchmark DAG is created");
        assert_eq!(c.ops.len(), TASKS);
        create.samples.push(wall);
        create.cpu.extend(cpu);
        // The previous run's changes are dropped here, outside the timing.
        created = Some(c);
    }

    // (b) completing tasks one by one in the stored 100k-task group.
    let mut g = empty;
    g.apply(&created.expect("created at least once"));
    let mut start = Vec::with_capacity(COMPLETIONS);
    let mut record = Vec::with_capacity(COMPLETIONS);
    let mut total = Vec::with_capacity(COMPLETIONS);
    let mut ids = || unreachable_id();
    for i in 0..COMPLETIONS {
        let id = format!("t{i}");
        let t0 = Instant::now();
        let s = rules::start_attempt(&g, black_box(&id), now).expect("start");
        let t1 = Instant::now();
        let Start::Started {
            changes, attempt, ..
        } = s
        else {
            panic!("task {id} did not start: {s:?}");
        };
        g.apply(&changes);
        let t2 = Instant::now();
        let done = rules::record_result(
            &g,
            &id,
            attempt,
            WorkerOutcome::Success {
                output: json!({ "done": i }),
                children: vec![],
                children_delay_secs: 0.0,
                workgroup_delay_secs: None,
            },
            now,
            RetryPolicy::Fixed,
            0.0,
            &mut ids,
        )
        .expect("record");
        let t3 = Instant::now();
        g.apply(&done);
        let t4 = Instant::now();
        assert!(done
            .ops
            .iter()
            .any(|c| matches!(c, Change::UpdateTask { after, .. } if is_done(after))));
        start.push(t1 - t0);
        record.push(t3 - t2);
        total.push(t4 - t0);
    }

    let row = |name, samples| Row {
        name,
        samples,
        cpu: vec![],
    };
    let mut rows = vec![
        reference,
        validate,
        create,
        row("rules::start_attempt, 100k-task group", start),
        row("rules::record_result (success), 100k group", record),
        row("complete one task (both rules + 2 applies)", total),
    ];
    print_table(&mut rows);
}

fn is_done(t: &Task) -> bool {
    t.is_complete && !t.busy_executing
}
