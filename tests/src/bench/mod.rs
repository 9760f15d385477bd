//! The benchmark harness: a real `crewd` child process, a real HTTP worker
//! in this process, and scenarios that time them over loopback.
//!
//! Run it with `cargo build --release --bins && ./target/release/crew-bench`.

pub mod cpu;
pub mod daemon;
pub mod floor;
pub mod scale;
pub mod scenarios;
pub mod worker;

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for one scenario run to finish.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How often completion is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(2);

/// Samples of one figure, reported as median and spread.
#[derive(Clone, Debug, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    /// Adds a sample.
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (0 when empty).
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The `q` quantile (0..=1), nearest rank.
    pub fn quantile(&self, q: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return 0.0;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// Smallest and largest sample.
    pub fn range(&self) -> (f64, f64) {
        let v = self.sorted();
        (
            v.first().copied().unwrap_or(0.0),
            v.last().copied().unwrap_or(0.0),
        )
    }
}

/// The machine the figures come from.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs, {model}")
}

/// The 1-minute load average, when /proc has it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// A REST client for one daemon.
#[derive(Clone)]
pub struct Api {
    /// `http://addr/api/v1`.
    pub base: String,
    /// One pooled keep-alive client.
    pub http: reqwest::Client,
}

impl Api {
    /// A client for the API at `base`.
    pub fn new(base: String) -> Api {
        Api {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs JSON and returns the JSON answer; fails on a non-2xx status.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?;
        answer(r).await
    }

    /// GETs JSON; fails on a non-2xx status.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await?;
        answer(r).await
    }

    /// Creates a group holding `tasks`, atomically; returns its id.
    pub async fn create_group(&self, id: &str, tasks: Vec<Value>) -> anyhow::Result<String> {
        let body = serde_json::json!({"id": id, "name": id, "tasks": tasks});
        let v = self.post("/task_groups", &body).await?;
        Ok(v["id"].as_str().unwrap_or(id).to_string())
    }

    /// Completed tasks of a group.
    pub async fn completed(&self, group: &str) -> anyhow::Result<u64> {
        let v = self.get(&format!("/task_group/{group}")).await?;
        Ok(v["counts"]["completed"].as_u64().unwrap_or(0))
    }

    /// The daemon's engine counters from `/metrics`: commits, seconds
    /// spent committing, and messages applied.
    pub async fn engine_counters(&self) -> anyhow::Result<EngineCounters> {
        // `/metrics` sits beside the API, not under it.
        let root = self.base.trim_end_matches("/api/v1");
        let r = self.http.get(format!("{root}/metrics")).send().await?;
        let text = r.error_for_status()?.text().await?;
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        Ok(EngineCounters {
            commits: value("crew_commit_duration_seconds_count"),
            commit_seconds: value("crew_commit_duration_seconds_sum"),
            messages: value("crew_batch_size_sum"),
        })
    }

    /// Polls until `n` tasks of `group` are completed (durably: the API
    /// reads committed state); returns when that was first seen.
    pub async fn wait_completed(&self, group: &str, n: u64) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let done = self.completed(group).await?;
            if done >= n {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("group {group}: {done} of {n} completed after {RUN_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// Cumulative engine counters read from the daemon's metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineCounters {
    /// Durable commits.
    pub commits: f64,
    /// Seconds spent in those commits.
    pub commit_seconds: f64,
    /// Commands and worker results applied.
    pub messages: f64,
}

impl EngineCounters {
    /// What happened between `before` and `self`, in words: commits, mean
    /// commit time and mean batch size.
    pub fn describe_since(&self, before: &EngineCounters) -> String {
        let commits = self.commits - before.commits;
        if commits <= 0.0 {
            return "no commits".to_string();
        }
        format!(
            "{commits:.0} commits, {:.2} ms each on average, {:.1} messages per batch",
            (self.commit_seconds - before.commit_seconds) * 1000.0 / commits,
            (self.messages - before.messages) / commits
        )
    }
}

async fn answer(r: reqwest::Response) -> anyhow::Result<Value> {
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {text}");
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))
}

/// Stream clients that read every event until stopped.
pub struct StreamClients {
    stop: Arc<AtomicBool>,
    /// Messages read, all clients.
    pub messages: Arc<AtomicU64>,
    /// Clients the daemon closed before the stop.
    pub dropped: Arc<AtomicU64>,
    /// Times a client was told to resync: it fell behind, and the events
    /// it missed were skipped.
    pub resyncs: Arc<AtomicU64>,
    /// When a client last read a message, in microseconds since `started`.
    last_read_us: Arc<AtomicU64>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl StreamClients {
    /// Connects `n` clients to `ws://addr/api/v1/events`.
    pub async fn connect(addr: std::net::SocketAddr, n: usize) -> anyhow::Result<StreamClients> {
        let stop = Arc::new(AtomicBool::new(false));
        let messages = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let resyncs = Arc::new(AtomicU64::new(0));
        let last_read_us = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events"))
                .await
                .context("stream client cannot connect")?;
            let (stop, messages, dropped) = (stop.clone(), messages.clone(), dropped.clone());
            let (last_read_us, resyncs) = (last_read_us.clone(), resyncs.clone());
            tasks.push(tokio::spawn(async move {
                let (_, mut read) = ws.split();
                while let Some(m) = read.next().await {
                    match m {
                        Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => {
                            if !stop.load(Ordering::Relaxed) {
                                dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                        Ok(m) => {
                            messages.fetch_add(1, Ordering::Relaxed);
                            if let tokio_tungstenite::tungstenite::Message::Text(t) = &m {
                                if t.contains(r#""type":"resync""#) {
                                    resyncs.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            let at =
                                u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                            last_read_us.fetch_max(at, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        Ok(StreamClients {
            stop,
            messages,
            dropped,
            resyncs,
            last_read_us,
            started,
            tasks,
        })
    }

    /// Waits until no client has read anything for `quiet` (at most
    /// `limit`), and returns when the last message was read: how long the
    /// clients took to catch up with a burst.
    pub async fn settled(&self, quiet: Duration, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            let last =
                self.started + Duration::from_micros(self.last_read_us.load(Ordering::Relaxed));
            if last.elapsed() >= quiet || Instant::now() >= deadline {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Disconnects every client.
    pub fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.abort();
        }
    }
}
