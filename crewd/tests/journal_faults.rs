//! The journal's disk fails: the real `crewd` binary, with its journal on a
//! device that refuses every write (`/dev/full`), answers 503 and applies
//! nothing; once the journal can be written again it carries on by itself,
//! and what it acknowledged then survives SIGKILL.

mod common;

use common::{crewd_command, echo, free_port, wait_ready, TestWorkers};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// No full sync of the store while the test runs: every commit is made
/// durable by the journal alone.
const NEVER: &str = "3600000";
/// A full sync at every commit: the journal is never needed.
const ALWAYS: &str = "1";

fn start(db: &Path, port: u16, workers: &str) -> Daemon {
    start_with(db, port, workers, NEVER)
}

fn start_with(db: &Path, port: u16, workers: &str, checkpoint_ms: &str) -> Daemon {
    let child = crewd_command(db, port, workers)
        .env("CREW_CHECKPOINT_MS", checkpoint_ms)
        .spawn()
        .expect("crewd starts");
    Daemon(child)
}

/// One test's place: a temporary directory holding the store and its
/// journal, a free port, and a client for it.
struct Site {
    /// Keeps the directory for as long as the test runs.
    _dir: tempfile::TempDir,
    db: PathBuf,
    journal: PathBuf,
    port: u16,
    base: String,
    http: reqwest::Client,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("crew.redb");
        let journal = dir.path().join("crew.redb.journal");
        let port = free_port();
        Site {
            _dir: dir,
            db,
            journal,
            port,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }
}

async fn health(http: &reqwest::Client, base: &str) -> Option<(u16, Value)> {
    let r = http.get(format!("{base}/healthz")).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.unwrap_or(Value::Null)))
}

async fn create_group(http: &reqwest::Client, base: &str, id: &str) -> (u16, Value) {
    let tasks: Vec<Value> = (0..5)
        .map(|i| json!({"id": format!("{id}-{i}"), "worker": "echo", "input": {"i": i}}))
        .collect();
    let r = http
        .post(format!("{base}/api/v1/task_groups"))
        .json(&json!({"id": id, "name": id, "tasks": tasks}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn group_ids(http: &reqwest::Client, base: &str) -> Vec<String> {
    let v = get(http, format!("{base}/api/v1/task_groups?pageSize=100")).await;
    v["taskGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_complete(http: &reqwest::Client, base: &str, group: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = get(http, format!("{base}/api/v1/task_group/{group}/progress")).await;
        if v["completedPercent"].as_f64() == Some(100.0) {
            return;
        }
        assert!(Instant::now() < deadline, "{group} never completed: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The store holds `group` alone (as [`create_group`] made it), every
/// task completed by the echo worker.
async fn assert_only_completed_group(http: &reqwest::Client, base: &str, group: &str) {
    assert_eq!(group_ids(http, base).await, vec![group.to_string()]);
    let tasks = get(
        http,
        format!("{base}/api/v1/task_group/{group}/tasks?pageSize=100"),
    )
    .await;
    assert_eq!(tasks["count"], 5);
    for t in tasks["tasks"].as_array().unwrap() {
        assert_eq!(t["isComplete"], true, "{t}");
        assert_eq!(t["output"]["echo"], t["id"], "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_written_answers_503_and_loses_nothing() {
    let workers = TestWorkers::start(echo()).await;
    let site = Site::new();
    let (db, journal, port, base, http) =
        (&site.db, &site.journal, site.port, &site.base, &site.http);
    std::os::unix::fs::symlink("/dev/full", journal).unwrap();
    let daemon = start(db, port, &workers.base_url);
    wait_ready(http, base).await;

    // Every write to the journal fails: the request is refused, whole.
    let (status, body) = create_group(http, base, "refused").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    let (status, body) = create_group(http, base, "refused-again").await;
    assert_eq!(status, 503, "{body}");
    assert!(group_ids(http, base).await.is_empty());
    assert!(workers.calls().is_empty(), "nothing was dispatched");

    // The journal can be written again: the daemon reopens it by itself.
    std::fs::remove_file(journal).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = create_group(http, base, "kept").await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503, "only a storage failure: {body}");
        assert!(Instant::now() < deadline, "the daemon never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_complete(http, base, "kept").await;
    assert!(
        std::fs::symlink_metadata(journal)
            .unwrap()
            .file_type()
            .is_file(),
        "a real journal replaced the device"
    );

    // What was acknowledged survives a crash (no full sync has happened
    // since: the journal alone holds it); what was refused never appears.
    drop(daemon);
    let _daemon = start(db, port, &workers.base_url);
    wait_ready(http, base).await;
    assert_only_completed_group(http, base, "kept").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_that_cannot_write_is_retried_and_health_says_so_meanwhile() {
    let site = Site::new();
    let (db, journal, port, base, http) =
        (&site.db, &site.journal, site.port, &site.base, &site.http);

    // A call in flight when the daemon dies: recovery must record it as
    // interrupted, which is a write. (Every commit here is a full sync, so
    // the journal holds nothing the next run needs.)
    let slow = TestWorkers::start_with_delay(echo(), Duration::from_secs(60)).await;
    let daemon = start_with(db, port, &slow.base_url, ALWAYS);
    wait_ready(http, base).await;
    let (status, body) = create_group(http, base, "g").await;
    assert_eq!(status, 201, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while slow.calls().len() < 5 {
        assert!(Instant::now() < deadline, "the calls never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(daemon); // SIGKILL

    // Restarted with a journal that refuses every write: the daemon
    // serves, but says it is not ready, and dispatches nothing.
    std::fs::remove_file(journal).unwrap();
    std::os::unix::fs::symlink("/dev/full", journal).unwrap();
    let fast = TestWorkers::start(echo()).await;
    let _daemon = start(db, port, &fast.base_url);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        if let Some(h) = health(http, base).await {
            break h;
        }
        assert!(Instant::now() < deadline, "crewd did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("recovering")),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(health(http, base).await.map(|h| h.0), Some(503));
    // Alive all the same: a liveness probe must not have it restarted.
    let live = http.get(format!("{base}/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(
        fast.calls().is_empty(),
        "nothing dispatched before recovery"
    );

    // Writable again: recovery is retried, succeeds, and the interrupted
    // calls are made again.
    std::fs::remove_file(journal).unwrap();
    wait_ready(http, base).await;
    wait_complete(http, base, "g").await;
    assert_eq!(fast.calls().len(), 5);
    let tasks = get(
        http,
        format!("{base}/api/v1/task_group/g/tasks?pageSize=100"),
    )
    .await;
    for t in tasks["tasks"].as_array().unwrap() {
        let outcomes: Vec<&str> = t["attemptLog"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, vec!["interrupted", "succeeded"], "{t}");
    }
}

/// A daemon left idle makes the durable commit its journal's records are
/// due for by itself, rather than leave it to the next command: once it
/// has, the store alone holds everything, without the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_commits_its_journal_to_the_store_by_itself() {
    let workers = TestWorkers::start(echo()).await;
    let site = Site::new();
    let (db, journal, port, base, http) =
        (&site.db, &site.journal, site.port, &site.base, &site.http);
    let daemon = start_with(db, port, &workers.base_url, "300");
    wait_ready(http, base).await;
    let (status, body) = create_group(http, base, "quiet").await;
    assert_eq!(status, 201, "{body}");
    wait_complete(http, base, "quiet").await;

    // Nothing more arrives; the oldest record falls due 300 ms after it
    // was written.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(daemon);
    std::fs::remove_file(journal).unwrap();
    let _daemon = start(db, port, &workers.base_url);
    wait_ready(http, base).await;
    assert_only_completed_group(http, base, "quiet").await;
}
