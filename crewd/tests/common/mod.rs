//! Shared helpers for crewd's end-to-end tests: a real daemon on
//! 127.0.0.1:0 with a temporary redb file, and real HTTP workers.
#![allow(dead_code)]

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use crew_core::wire::WorkerPayload;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One call a test worker received.
#[derive(Clone, Debug)]
pub struct Call {
    pub worker: String,
    pub task_id: String,
    pub attempt: u32,
    pub payload: WorkerPayload,
    pub headers: HeaderMap,
}

/// Decides a test worker's answer.
pub type Behaviour = Arc<dyn Fn(&Call) -> (StatusCode, Value) + Send + Sync>;

#[derive(Clone)]
struct WorkerState {
    calls: Arc<Mutex<Vec<Call>>>,
    behaviour: Behaviour,
    delay: Duration,
}

/// A real HTTP worker server recording every call.
pub struct TestWorkers {
    pub base_url: String,
    pub calls: Arc<Mutex<Vec<Call>>>,
}

impl TestWorkers {
    pub async fn start(behaviour: Behaviour) -> Self {
        Self::start_with_delay(behaviour, Duration::ZERO).await
    }

    pub async fn start_with_delay(behaviour: Behaviour, delay: Duration) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let state = WorkerState {
            calls: calls.clone(),
            behaviour,
            delay,
        };
        let app = Router::new()
            .route("/{worker}", post(handle))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestWorkers {
            base_url: format!("http://{addr}/"),
            calls,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn calls_for(&self, task: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.task_id == task)
            .collect()
    }
}

async fn handle(
    State(s): State<WorkerState>,
    Path(worker): Path<String>,
    headers: HeaderMap,
    Json(payload): Json<WorkerPayload>,
) -> (StatusCode, Json<Value>) {
    let attempt = headers
        .get("x-crew-attempt")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let call = Call {
        worker,
        task_id: payload.task_id.clone(),
        attempt,
        payload,
        headers,
    };
    s.calls.lock().unwrap().push(call.clone());
    // A task's input may set its own delay (`sleepMs`).
    let delay = call
        .payload
        .input
        .get("sleepMs")
        .and_then(Value::as_u64)
        .map_or(s.delay, Duration::from_millis);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (status, body) = (s.behaviour)(&call);
    (status, Json(body))
}

/// Answers every call with `{"output": {"echo": taskId}}`.
pub fn echo() -> Behaviour {
    Arc::new(|c: &Call| {
        (
            StatusCode::OK,
            serde_json::json!({"output": {"echo": c.task_id}}),
        )
    })
}

/// A daemon running in-process.
pub struct TestDaemon {
    pub url: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestDaemon {
    /// Starts crewd with `worker_base_url` and any further tweaks.
    pub async fn start(
        worker_base_url: &str,
        tweak: impl FnOnce(&mut crewd::config::Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, worker_base_url, tweak).await
    }

    pub async fn start_in(
        dir: tempfile::TempDir,
        worker_base_url: &str,
        tweak: impl FnOnce(&mut crewd::config::Config),
    ) -> Self {
        let mut config = crewd::config::Config::with_db(dir.path().join("crew.redb"));
        config.worker_base_url = worker_base_url.to_string();
        config.shutdown_grace = 5;
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(crewd::server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let d = TestDaemon {
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
            dir,
            stop: Some(stop),
            done: Some(done),
        };
        // Ready: its state is recovered and it dispatches.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = d.http.get(format!("{}/healthz", d.url)).send().await;
            let last = match r {
                Ok(r) if r.status().is_success() => break d,
                Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            if std::time::Instant::now() > deadline {
                let mut d = d;
                let ended = match d.done.take() {
                    Some(done) if done.is_finished() => format!("{:?}", done.await),
                    _ => "still running".to_string(),
                };
                panic!("the daemon did not become ready: {last}; the daemon: {ended}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the daemon gracefully and hands back its directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            d.await.unwrap().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.url, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.api(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.api(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.http.delete(self.api(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates group `id` (named `id`) with `tasks`; asserts the 201.
    pub async fn create_group(&self, id: &str, tasks: Value) {
        let (s, v) = self
            .post(
                "/task_groups",
                serde_json::json!({"id": id, "name": id, "tasks": tasks}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    pub async fn task(&self, id: &str) -> Value {
        let (s, v) = self.get(&format!("/task/{id}")).await;
        assert_eq!(s, 200, "task {id}: {v}");
        v
    }

    /// Polls until `pred` holds for the task, or panics after `secs`.
    pub async fn wait_task(&self, id: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let (s, v) = self.get(&format!("/task/{id}")).await;
            if s == 200 && pred(&v) {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("task {id} did not reach the expected state: {v}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls until every task of the group is complete.
    pub async fn wait_group_complete(&self, group: &str, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let (s, v) = self.get(&format!("/task_group/{group}")).await;
            if s == 200 && v["completedPercent"].as_f64() == Some(100.0) {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("group {group} did not complete: {v}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A free port on 127.0.0.1 for a daemon started as a process.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Waits until the daemon at `base` is ready (`/healthz` answers 200: its
/// state is recovered and it dispatches).
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("crewd did not become ready at {base}");
}

/// The `crewd` binary set up on `db`, listening on 127.0.0.1:`port`, with
/// its workers at `workers`; quiet (`RUST_LOG=warn`, no output kept).
/// Callers add their own settings before spawning.
pub fn crewd_command(db: &std::path::Path, port: u16, workers: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_crewd"));
    c.env("CREW_DB", db)
        .env("CREW_LISTEN", format!("127.0.0.1:{port}"))
        .env("CREW_WORKER_BASE_URL", workers)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}
