//! The real `crewd` binary, killed with SIGKILL at random moments while a
//! DAG with continuations runs, restarted on the same file each time.
//! Afterwards: every task completed, none missing, every continuation's
//! children exist together, and no task was dispatched again unless a crash
//! came between its two calls.

mod common;

use axum::http::StatusCode;
use common::{crewd_command, free_port, wait_ready, Call, TestWorkers};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SPAWNERS: usize = 300;
const CHILDREN_EACH: usize = 5;
const CHAINS: usize = 250;
const CHAIN_LEN: usize = 4;
const CRASHES: usize = 8;

struct Daemon {
    child: Child,
}

/// Starts `crewd`; every other run with the background writeback on
/// (`run` counts from 0), so that crashes find it at work as well.
fn start(db: &std::path::Path, port: u16, workers: &str, run: usize) -> Daemon {
    let writeback_ms = if run % 2 == 1 { "5" } else { "0" };
    let child = crewd_command(db, port, workers)
        .env("CREW_WRITEBACK_MS", writeback_ms)
        .spawn()
        .expect("crewd starts");
    Daemon { child }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing() {
    let calls_at: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let log = calls_at.clone();
    // Calls take a little while, so that crashes find calls in flight.
    let workers = TestWorkers::start_with_delay(
        Arc::new(move |c: &Call| {
            log.lock()
                .unwrap()
                .push((c.task_id.clone(), Instant::now()));
            if c.worker == "spawn" {
                let kids: Vec<Value> = (0..CHILDREN_EACH)
                    .map(|i| {
                        let mut k = json!({"id": format!("{}.c{i}", c.task_id), "worker": "leaf"});
                        if i == CHILDREN_EACH - 1 {
                            let others: Vec<String> =
                                (0..i).map(|j| format!("{}.c{j}", c.task_id)).collect();
                            k["parentIds"] = json!(others);
                        }
                        k
                    })
                    .collect();
                (
                    StatusCode::OK,
                    json!({"output": {"spawned": CHILDREN_EACH}, "children": kids}),
                )
            } else {
                (StatusCode::OK, json!({"output": {"done": c.task_id}}))
            }
        }),
        Duration::from_millis(20),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.redb");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut daemon = start(&db, port, &workers.base_url, 0);
    wait_ready(&http, &base).await;

    let mut tasks = Vec::new();
    for s in 0..SPAWNERS {
        tasks.push(json!({"id": format!("s{s}"), "worker": "spawn"}));
    }
    for c in 0..CHAINS {
        for i in 0..CHAIN_LEN {
            let mut t = json!({"id": format!("ch{c}.{i}"), "worker": "leaf"});
            if i > 0 {
                t["parentIds"] = json!([format!("ch{c}.{}", i - 1)]);
            }
            tasks.push(t);
        }
    }
    let r = http
        .post(format!("{base}/api/v1/task_groups"))
        .json(&json!({"id": "crash", "tasks": tasks}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    // Each crash as a window: from the kill until the restarted daemon is
    // healthy (a call the old process sent may still be read in it).
    let mut kills: Vec<(Instant, Instant)> = Vec::new();
    for crash in 0..CRASHES {
        let wait = 100 + rand::random::<u64>() % 400;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let killed_at = Instant::now();
        daemon.child.kill().unwrap(); // SIGKILL
        let _ = daemon.child.wait();
        daemon = start(&db, port, &workers.base_url, crash + 1);
        wait_ready(&http, &base).await;
        kills.push((killed_at, Instant::now()));
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v: Value = http
            .get(format!("{base}/api/v1/task_group/crash/progress"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["completedPercent"].as_f64() == Some(100.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the group never completed: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected = SPAWNERS * (1 + CHILDREN_EACH) + CHAINS * CHAIN_LEN;
    let list: Value = http
        .get(format!(
            "{base}/api/v1/task_group/crash/tasks?pageSize=10000"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["count"].as_u64(),
        Some(expected as u64),
        "no task missing or extra"
    );
    for t in list["tasks"].as_array().unwrap() {
        assert_eq!(t["isComplete"], true, "{t}");
    }
    for s in 0..SPAWNERS {
        for i in 0..CHILDREN_EACH {
            let id = format!("s{s}.c{i}");
            assert!(
                list["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["id"] == id.as_str()),
                "continuation {id} missing"
            );
        }
    }
    // A task is dispatched again only if a crash came between two calls.
    let calls = calls_at.lock().unwrap().clone();
    let mut by_task: HashMap<String, Vec<Instant>> = HashMap::new();
    for (id, at) in calls {
        by_task.entry(id).or_default().push(at);
    }
    let mut repeats = 0;
    for (id, times) in &by_task {
        for pair in times.windows(2) {
            repeats += 1;
            assert!(
                kills
                    .iter()
                    .any(|(from, to)| *to >= pair[0] && *from <= pair[1]),
                "task {id} was dispatched twice without a crash in between"
            );
        }
    }
    assert_eq!(by_task.len(), expected, "every task was dispatched");
    eprintln!(
        "{} crashes, {} tasks, {repeats} repeated calls",
        kills.len(),
        expected
    );
    let _ = daemon.child.kill();
    let _ = daemon.child.wait();
}
