//! The benchmark's worker: an in-process axum webhook that answers at once.
//!
//! The worker name in the URL picks the behaviour:
//! - `echo`: `{"output": 1}`;
//! - `spawn`: `{"output": 1, "children": [...]}` with
//!   [`SPAWN_CHILDREN`] `echo` children;
//! - `chain`: like `echo`, and records when each call arrived and when its
//!   answer left, with the calling task's first parent;
//! - `hold`: records the first arrival, then never answers (the daemon keeps
//!   the call in flight until it is killed).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Children returned by each `spawn` call.
pub const SPAWN_CHILDREN: usize = 10;

/// One `chain` call: the task, its first parent, arrival and answer times.
#[derive(Clone, Debug)]
pub struct ChainCall {
    /// The task called.
    pub task_id: String,
    /// Its first parent, if any.
    pub parent_id: Option<String>,
    /// When the request was handed to the handler.
    pub received: Instant,
    /// When the handler returned its answer.
    pub answered: Instant,
}

/// What the worker saw; shared with the scenarios.
#[derive(Default)]
pub struct WorkerLog {
    /// Calls answered or held, all workers.
    pub calls: AtomicU64,
    /// `chain` calls, in arrival order.
    pub chain: Mutex<Vec<ChainCall>>,
    /// First arrival of a `hold` call since the last reset.
    pub first_hold: Mutex<Option<Instant>>,
}

impl WorkerLog {
    /// Forgets the chain log and the first `hold` arrival.
    pub fn reset(&self) {
        lock(&self.chain).clear();
        *lock(&self.first_hold) = None;
    }
}

/// Locks a mutex, ignoring poisoning (the bench has no invariants to lose).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A running worker server.
pub struct Worker {
    /// Where it listens; the daemon's worker base URL is `http://{addr}/`.
    pub addr: SocketAddr,
    /// What it saw.
    pub log: Arc<WorkerLog>,
}

/// Starts the worker on a loopback port, on the current runtime.
pub async fn start() -> anyhow::Result<Worker> {
    let log = Arc::new(WorkerLog::default());
    let app = Router::new()
        .route("/{worker}", post(handle))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Worker { addr, log })
}

const ECHO: &str = r#"{"output":1}"#;

async fn handle(
    State(log): State<Arc<WorkerLog>>,
    Path(worker): Path<String>,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    log.calls.fetch_add(1, Ordering::Relaxed);
    match worker.as_str() {
        "echo" => json(ECHO.to_string()),
        "spawn" => json(spawn_answer()),
        "chain" => {
            let (task_id, parent_id) = ids_of(&body);
            let answer = json(ECHO.to_string());
            lock(&log.chain).push(ChainCall {
                task_id,
                parent_id,
                received,
                answered: Instant::now(),
            });
            answer
        }
        "hold" => {
            {
                let mut first = lock(&log.first_hold);
                if first.is_none() {
                    *first = Some(received);
                }
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
            json(ECHO.to_string())
        }
        _ => (StatusCode::NOT_FOUND, "no such worker").into_response(),
    }
}

fn json(body: String) -> Response {
    ([("content-type", "application/json")], body).into_response()
}

fn spawn_answer() -> String {
    let children: Vec<serde_json::Value> = (0..SPAWN_CHILDREN)
        .map(|i| serde_json::json!({"name": format!("child {i}"), "worker": "echo"}))
        .collect();
    serde_json::json!({"output": 1, "children": children}).to_string()
}

/// The task id and first parent id of a worker payload.
fn ids_of(body: &[u8]) -> (String, Option<String>) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let id = v["taskId"].as_str().unwrap_or_default().to_string();
    let parent = v["parents"]
        .get(0)
        .and_then(|p| p["taskId"].as_str())
        .map(str::to_string);
    (id, parent)
}
