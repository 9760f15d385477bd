//! The timed scenarios over a running daemon and worker.

use super::cpu::CpuSample;
use super::daemon::Daemon;
use super::worker::{lock, Worker, SPAWN_CHILDREN};
use super::{Api, Samples, StreamClients};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a figure must reach.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The median must be at least this.
    AtLeast(f64),
    /// The median must be below this.
    Below(f64),
}

impl Target {
    /// Whether `v` meets the target.
    pub fn met(self, v: f64) -> bool {
        match self {
            Target::AtLeast(t) => v >= t,
            Target::Below(t) => v < t,
        }
    }

    /// `≥ 22000` / `< 0.12`.
    pub fn describe(self) -> String {
        match self {
            Target::AtLeast(t) => format!(">= {}", fmt_num(t)),
            Target::Below(t) => format!("< {}", fmt_num(t)),
        }
    }
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Scenario and figure.
    pub name: String,
    /// Unit of the samples.
    pub unit: &'static str,
    /// One sample per run.
    pub samples: Samples,
    /// The bar, if any.
    pub target: Option<Target>,
    /// Anything else worth printing.
    pub note: String,
}

impl Row {
    /// A row without a note.
    pub fn new(name: &str, unit: &'static str, samples: Samples, target: Option<Target>) -> Row {
        Row {
            name: name.to_string(),
            unit,
            samples,
            target,
            note: String::new(),
        }
    }
}

/// Formats a figure with sensible precision.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn echo_tasks(n: usize, worker: &str) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"name": format!("t{i}"), "worker": worker}))
        .collect()
}

/// Tasks per second from the create request to the last durable
/// completion of `n` independent tasks, with `clients` stream clients.
pub async fn throughput(
    api: &Api,
    daemon: &Daemon,
    n: usize,
    clients: usize,
    runs: usize,
) -> anyhow::Result<Row> {
    let streams = StreamClients::connect(daemon.addr, clients).await?;
    let mut samples = Samples::default();
    // The create request alone, and the rate from its answer on: one
    // transaction creates every task (and starts the first), then the
    // calls and their results flow.
    let mut creating = Samples::default();
    let mut after_create = Samples::default();
    let mut last_done = Instant::now();
    let before = api.engine_counters().await?;
    let cpu_before = CpuSample::take(daemon.pid());
    for run in 0..runs {
        let tasks = echo_tasks(n, "echo");
        let group = format!("tp-{clients}-{run}");
        let t0 = Instant::now();
        let gid = api.create_group(&group, tasks).await?;
        let created = Instant::now();
        let done = api.wait_completed(&gid, n as u64).await?;
        last_done = done;
        samples.push(n as f64 / (done - t0).as_secs_f64());
        creating.push((created - t0).as_secs_f64());
        after_create.push(n as f64 / (done - created).as_secs_f64());
    }
    let mut row = Row::new(
        &format!("throughput, {n} tasks, {clients} stream clients"),
        "tasks/s",
        samples,
        Some(Target::AtLeast(22_000.0)),
    );
    row.note = format!(
        "the create request took {} s, then {} tasks/s from its answer on (medians); {}",
        fmt_num(creating.median()),
        fmt_num(after_create.median()),
        api.engine_counters().await?.describe_since(&before)
    );
    if let (Some(b), Some(a)) = (cpu_before, CpuSample::take(daemon.pid())) {
        row.note += &format!("; {}", a.describe_since(&b));
        row.note += &format!("; {}", a.per_task_since(&b, n * runs));
    }
    if clients > 0 {
        use std::sync::atomic::Ordering;
        let settled = streams
            .settled(Duration::from_millis(300), Duration::from_secs(60))
            .await;
        row.note += &format!(
            "; {} events read per client on average, {} clients closed, {} told to resync (they fell behind); the clients read their last event {} s after the last completion",
            streams.messages.load(Ordering::Relaxed) / clients as u64,
            streams.dropped.load(Ordering::Relaxed),
            streams.resyncs.load(Ordering::Relaxed),
            fmt_num(settled.saturating_duration_since(last_done).as_secs_f64())
        );
    }
    streams.close();
    Ok(row)
}

/// Seconds from the create request to the join's durable completion of a
/// root → `width` children → join DAG.
pub async fn fan_in(api: &Api, daemon: &Daemon, width: usize, runs: usize) -> anyhow::Result<Row> {
    let mut samples = Samples::default();
    let mut creating = Samples::default();
    let before = api.engine_counters().await?;
    let cpu_before = CpuSample::take(daemon.pid());
    for run in 0..runs {
        let root = format!("fi{run}-root");
        let mut tasks = vec![json!({"id": root, "name": "root", "worker": "echo"})];
        let kids: Vec<String> = (0..width).map(|i| format!("fi{run}-c{i}")).collect();
        for k in &kids {
            tasks.push(json!({"id": k, "name": "child", "worker": "echo", "parentIds": [root]}));
        }
        tasks.push(
            json!({"id": format!("fi{run}-join"), "name": "join", "worker": "echo", "parentIds": kids}),
        );
        let t0 = Instant::now();
        let gid = api.create_group(&format!("fanin-{run}"), tasks).await?;
        creating.push(t0.elapsed().as_secs_f64());
        let done = api.wait_completed(&gid, width as u64 + 2).await?;
        samples.push((done - t0).as_secs_f64());
    }
    let mut row = Row::new(
        &format!("fan-in, root -> {width} -> join"),
        "s",
        samples,
        Some(Target::Below(0.12)),
    );
    row.note = format!(
        "the create request took {} s (median); {}",
        fmt_num(creating.median()),
        api.engine_counters().await?.describe_since(&before)
    );
    if let (Some(b), Some(a)) = (cpu_before, CpuSample::take(daemon.pid())) {
        row.note += &format!("; {}", a.describe_since(&b));
        row.note += &format!("; {}", a.per_task_since(&b, (width + 2) * runs));
    }
    Ok(row)
}

/// The engine thread's CPU per task between two samples, as a note.
fn engine_per_task(after: &CpuSample, before: &CpuSample, tasks: usize) -> String {
    let micros = 1e6 * after.engine_seconds_since(before) / tasks.max(1) as f64;
    format!("; engine thread CPU per task {} us", fmt_num(micros))
}

/// Latency from a parent's answer to its child's dispatch along a chain
/// of `len` tasks: p50 and p99 rows, plus the chain's total time.
pub async fn chain(
    api: &Api,
    daemon: &Daemon,
    worker: &Worker,
    len: usize,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let (mut p50, mut p99, mut total) =
        (Samples::default(), Samples::default(), Samples::default());
    let before = api.engine_counters().await?;
    let cpu_before = CpuSample::take(daemon.pid());
    for run in 0..runs {
        worker.log.reset();
        let tasks: Vec<Value> = (0..len)
            .map(|i| {
                let parents: Vec<String> = if i == 0 {
                    vec![]
                } else {
                    vec![format!("ch{run}-{}", i - 1)]
                };
                json!({"id": format!("ch{run}-{i}"), "name": "link", "worker": "chain", "parentIds": parents})
            })
            .collect();
        let t0 = Instant::now();
        let gid = api.create_group(&format!("chain-{run}"), tasks).await?;
        let done = api.wait_completed(&gid, len as u64).await?;
        total.push((done - t0).as_secs_f64());
        let calls = lock(&worker.log.chain).clone();
        let answered: HashMap<&str, Instant> = calls
            .iter()
            .map(|c| (c.task_id.as_str(), c.answered))
            .collect();
        let mut lat = Samples::default();
        for c in &calls {
            if let Some(a) = c.parent_id.as_deref().and_then(|p| answered.get(p)) {
                lat.push(c.received.saturating_duration_since(*a).as_secs_f64() * 1000.0);
            }
        }
        p50.push(lat.quantile(0.5));
        p99.push(lat.quantile(0.99));
    }
    let mut p50_row = Row::new(
        &format!("chain of {len}: parent answer -> child call, p50"),
        "ms",
        p50,
        Some(Target::Below(0.5)),
    );
    p50_row.note = api.engine_counters().await?.describe_since(&before);
    if let (Some(b), Some(a)) = (cpu_before, CpuSample::take(daemon.pid())) {
        p50_row.note += &format!("; {}", a.describe_since(&b));
        p50_row.note += &engine_per_task(&a, &b, len * runs);
    }
    Ok(vec![
        p50_row,
        Row::new(
            &format!("chain of {len}: parent answer -> child call, p99"),
            "ms",
            p99,
            None,
        ),
        Row::new(&format!("chain of {len}: total"), "s", total, None),
    ])
}

/// Seconds until `n` tasks that each return [`SPAWN_CHILDREN`] children
/// and all those children are durably complete.
pub async fn continuations(api: &Api, n: usize, runs: usize) -> anyhow::Result<Row> {
    let mut samples = Samples::default();
    let all = (n * (SPAWN_CHILDREN + 1)) as u64;
    for run in 0..runs {
        let t0 = Instant::now();
        let gid = api
            .create_group(&format!("cont-{run}"), echo_tasks(n, "spawn"))
            .await?;
        let done = api.wait_completed(&gid, all).await?;
        samples.push((done - t0).as_secs_f64());
    }
    let mut row = Row::new(
        &format!("continuations, {n} x {SPAWN_CHILDREN} children ({all} tasks)"),
        "s",
        samples,
        None,
    );
    let med = row.samples.median();
    if med > 0.0 {
        row.note = format!("{} tasks/s", fmt_num(all as f64 / med));
    }
    Ok(row)
}
