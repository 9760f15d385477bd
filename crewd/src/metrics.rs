//! Prometheus metrics, served by `GET /metrics` in the Prometheus text
//! format (encoded by `prometheus-client`).
//!
//! Two kinds of values:
//!
//! - **Recorded** as things happen, by the engine and its worker calls:
//!   dispatches, attempt outcomes, rate-limit pauses, worker call latency
//!   per worker, commit latency and batch size. The hot path only touches
//!   atomics: counters are pre-created handles and histograms are arrays of
//!   atomic buckets. A worker's latency histogram is looked up once per
//!   call under a read lock that is only ever written the first time a
//!   worker is seen.
//! - **Read at scrape time** ([`Scrape`]): tasks by status (the store's
//!   per-group counters, summed), calls in flight per worker, stream
//!   clients, and events trimmed from the event log.

use crew_core::wire::{StatusCounts, WorkerLimit};
use crew_core::worker::WorkerOutcome;
use crew_core::TaskStatus;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The `Content-Type` of the Prometheus text format.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of latency buckets, in seconds (1 ms to about 5 min).
const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// Upper bounds of commit latency buckets, in seconds (50 µs to 5 s).
const COMMIT_BOUNDS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    5.0,
];

/// Upper bounds of batch size buckets, in messages.
const BATCH_BOUNDS: &[f64] = &[
    0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 8192.0,
];

/// A histogram with fixed buckets, updated with atomics only.
#[derive(Clone, Debug)]
pub struct AtomicHistogram(Arc<HistogramInner>);

#[derive(Debug)]
struct HistogramInner {
    bounds: &'static [f64],
    /// One per bound, plus the `+Inf` bucket; not cumulative.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64]) -> Self {
        AtomicHistogram(Arc::new(HistogramInner {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }))
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let h = &self.0;
        let i = h.bounds.partition_point(|b| *b < v);
        if let Some(bucket) = h.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let _ = h
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
        h.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }

    fn encode_into(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.0;
        let buckets: Vec<(f64, u64)> = h
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(h.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' total, so that a scrape racing an
        // observation stays self-consistent.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = f64::from_bits(h.sum.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.encode_into(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Worker call latency, one histogram per worker.
#[derive(Clone, Debug, Default)]
struct WorkerCalls(Arc<RwLock<BTreeMap<String, AtomicHistogram>>>);

impl WorkerCalls {
    fn get(&self, worker: &str) -> AtomicHistogram {
        if let Some(h) = read_lock(&self.0).get(worker) {
            return h.clone();
        }
        let mut map = match self.0.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.entry(worker.to_string())
            .or_insert_with(|| AtomicHistogram::new(LATENCY_BOUNDS))
            .clone()
    }
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match l.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Collector for WorkerCalls {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let map = read_lock(&self.0);
        if map.is_empty() {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(
            "crew_worker_call_duration_seconds",
            "Worker call latency, from request to parsed response, by worker.",
            None,
            MetricType::Histogram,
        )?;
        for (worker, h) in map.iter() {
            let labels = [("worker", worker.as_str())];
            h.encode_into(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The worker succeeded.
    Succeeded,
    /// The worker or the call failed (an attempt burned).
    Failed,
    /// A rate limit (the workgroup paused, no attempt burned).
    RateLimited,
    /// The call was in flight when the daemon stopped.
    Interrupted,
    /// An operator cancelled the call (no attempt burned).
    Cancelled,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::RateLimited,
        Outcome::Interrupted,
        Outcome::Cancelled,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::RateLimited => "rate_limited",
            Outcome::Interrupted => "interrupted",
            Outcome::Cancelled => "cancelled",
        }
    }

    fn of(outcome: &WorkerOutcome) -> Outcome {
        match outcome {
            WorkerOutcome::Success { .. } => Outcome::Succeeded,
            WorkerOutcome::Failure { .. } => Outcome::Failed,
            WorkerOutcome::RateLimited { .. } => Outcome::RateLimited,
        }
    }
}

/// The daemon's metrics. Shared (`Arc`) by the engine and the API.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    dispatches: Counter,
    outcomes: [Counter; 5],
    rate_limit_pauses: Counter,
    pruned_groups: Counter,
    pruned_tasks: Counter,
    commit_seconds: AtomicHistogram,
    batch_size: AtomicHistogram,
    calls: WorkerCalls,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every recorded metric, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let dispatches = Counter::default();
        registry.register(
            "crew_dispatches",
            "Worker calls started",
            dispatches.clone(),
        );
        let outcome_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let outcomes =
            Outcome::ALL.map(|o| outcome_family.get_or_create_owned(&[("outcome", o.as_str())]));
        registry.register(
            "crew_attempt_outcomes",
            "Attempts ended, by outcome (succeeded, failed, rate_limited, interrupted, cancelled)",
            outcome_family,
        );
        let rate_limit_pauses = Counter::default();
        registry.register(
            "crew_rate_limit_pauses",
            "Worker answers that paused a workgroup (a 429, or workgroupDelayInSeconds)",
            rate_limit_pauses.clone(),
        );
        let pruned_groups = Counter::default();
        registry.register(
            "crew_retention_pruned_groups",
            "Finished groups deleted by retention (age or count)",
            pruned_groups.clone(),
        );
        let pruned_tasks = Counter::default();
        registry.register(
            "crew_retention_pruned_tasks",
            "Tasks of the finished groups retention deleted",
            pruned_tasks.clone(),
        );
        let commit_seconds = AtomicHistogram::new(COMMIT_BOUNDS);
        registry.register(
            "crew_commit_duration_seconds",
            "Durable commit latency of one engine batch",
            commit_seconds.clone(),
        );
        let batch_size = AtomicHistogram::new(BATCH_BOUNDS);
        registry.register(
            "crew_batch_size",
            "Messages (commands and worker results) applied per engine batch",
            batch_size.clone(),
        );
        let calls = WorkerCalls::default();
        registry.register_collector(Box::new(calls.clone()));
        Metrics {
            registry,
            dispatches,
            outcomes,
            rate_limit_pauses,
            pruned_groups,
            pruned_tasks,
            commit_seconds,
            batch_size,
            calls,
        }
    }

    /// A worker call starts: counts it and hands back the worker's latency
    /// histogram, for [`Metrics::call_ended`].
    pub fn call_started(&self, worker: &str) -> AtomicHistogram {
        self.dispatches.inc();
        self.calls.get(worker)
    }

    /// A worker call an operator cancelled after `elapsed`: its latency,
    /// and a `cancelled` outcome (not a failure: it burned no attempt).
    pub fn call_cancelled(&self, latency: &AtomicHistogram, elapsed: Duration) {
        latency.observe_duration(elapsed);
        self.outcome(Outcome::Cancelled);
    }

    /// A worker call ended after `elapsed` with `outcome`.
    pub fn call_ended(
        &self,
        latency: &AtomicHistogram,
        elapsed: Duration,
        outcome: &WorkerOutcome,
    ) {
        latency.observe_duration(elapsed);
        self.outcome(Outcome::of(outcome));
        let paused = match outcome {
            WorkerOutcome::RateLimited { .. } => true,
            WorkerOutcome::Success {
                workgroup_delay_secs,
                ..
            } => workgroup_delay_secs.is_some_and(|d| d > 0.0),
            WorkerOutcome::Failure { .. } => false,
        };
        if paused {
            self.rate_limit_pauses.inc();
        }
    }

    /// Counts one attempt outcome.
    pub fn outcome(&self, o: Outcome) {
        if let Some(i) = Outcome::ALL.iter().position(|x| *x == o) {
            self.outcomes[i].inc();
        }
    }

    /// Attempts found interrupted (in flight when the daemon stopped).
    pub fn interrupted(&self, n: u64) {
        if let Some(i) = Outcome::ALL.iter().position(|x| *x == Outcome::Interrupted) {
            self.outcomes[i].inc_by(n);
        }
    }

    /// Retention deleted one finished group of `tasks` tasks.
    pub fn pruned(&self, tasks: u64) {
        self.pruned_groups.inc();
        self.pruned_tasks.inc_by(tasks);
    }

    /// One engine batch of `messages`, about to be committed.
    pub fn batch(&self, messages: usize) {
        self.batch_size.observe(messages as f64);
    }

    /// One durable commit took `elapsed`.
    pub fn commit(&self, elapsed: Duration) {
        self.commit_seconds.observe_duration(elapsed);
    }

    /// Worker calls started so far.
    pub fn dispatches(&self) -> u64 {
        self.dispatches.get()
    }

    /// The text exposition: recorded metrics, then `scrape`'s.
    pub fn encode(&self, scrape: Scrape) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        let mut now = Registry::default();
        now.register_collector(Box::new(scrape));
        prometheus_client::encoding::prometheus_text::encode(&mut out, &now)?;
        Ok(out)
    }
}

/// Values read when a scrape arrives.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// Tasks by status, summed over every group.
    pub tasks: StatusCounts,
    /// Every known worker with its calls in flight.
    pub workers: Vec<WorkerLimit>,
    /// Stream clients connected now.
    pub stream_clients: u64,
    /// Events removed from the stored event log by retention, over the
    /// database's life.
    pub events_trimmed: u64,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        {
            let mut m = encoder.encode_descriptor(
                "crew_tasks",
                "Tasks by derived status, over every group.",
                None,
                MetricType::Gauge,
            )?;
            for s in TaskStatus::ALL {
                let labels = [("status", s.as_str())];
                ConstGauge::new(self.tasks.get(s) as i64).encode(m.encode_family(&labels)?)?;
            }
        }
        if !self.workers.is_empty() {
            let mut m = encoder.encode_descriptor(
                "crew_worker_calls_in_flight",
                "Worker calls in flight now, by worker.",
                None,
                MetricType::Gauge,
            )?;
            for w in &self.workers {
                let labels = [("worker", w.worker.as_str())];
                ConstGauge::new(i64::from(w.in_flight)).encode(m.encode_family(&labels)?)?;
            }
        }
        ConstGauge::new(self.stream_clients as i64).encode(encoder.encode_descriptor(
            "crew_stream_clients",
            "Event stream clients connected now.",
            None,
            MetricType::Gauge,
        )?)?;
        ConstCounter::new(self.events_trimmed).encode(encoder.encode_descriptor(
            "crew_events_trimmed",
            "Events removed from the stored event log by retention.",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_text() {
        let m = Metrics::new();
        let h = m.call_started("fetch");
        m.call_ended(
            &h,
            Duration::from_millis(30),
            &WorkerOutcome::failure("boom"),
        );
        m.call_ended(
            &h,
            Duration::from_secs(1000),
            &WorkerOutcome::RateLimited {
                delay_secs: 5.0,
                message: String::new(),
            },
        );
        m.batch(3);
        m.commit(Duration::from_micros(700));
        m.interrupted(2);
        let text = m
            .encode(Scrape {
                tasks: StatusCounts {
                    ready: 4,
                    ..Default::default()
                },
                stream_clients: 1,
                ..Default::default()
            })
            .unwrap();
        for line in [
            "crew_dispatches_total 1",
            r#"crew_attempt_outcomes_total{outcome="failed"} 1"#,
            r#"crew_attempt_outcomes_total{outcome="rate_limited"} 1"#,
            r#"crew_attempt_outcomes_total{outcome="interrupted"} 2"#,
            r#"crew_attempt_outcomes_total{outcome="cancelled"} 0"#,
            r#"crew_attempt_outcomes_total{outcome="succeeded"} 0"#,
            "crew_rate_limit_pauses_total 1",
            r#"crew_worker_call_duration_seconds_bucket{worker="fetch",le="0.025"} 0"#,
            r#"crew_worker_call_duration_seconds_bucket{worker="fetch",le="0.05"} 1"#,
            r#"crew_worker_call_duration_seconds_bucket{worker="fetch",le="300"} 1"#,
            r#"crew_worker_call_duration_seconds_bucket{worker="fetch",le="+Inf"} 2"#,
            r#"crew_worker_call_duration_seconds_count{worker="fetch"} 2"#,
            r#"crew_batch_size_bucket{le="4"} 1"#,
            "crew_commit_duration_seconds_count 1",
            r#"crew_tasks{status="ready"} 4"#,
            r#"crew_tasks{status="failed"} 0"#,
            "crew_stream_clients 1",
            "crew_events_trimmed_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(
            text.matches("# TYPE crew_worker_call_duration_seconds histogram")
                .count(),
            1
        );
    }
}
