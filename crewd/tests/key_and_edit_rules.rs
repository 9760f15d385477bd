//! Same-key duplicates, retry and reset budgets, and task edits, through a
//! real daemon: the scheduling rules as a crew-go client meets them.

mod common;

use axum::http::StatusCode;
use common::{echo, Call, TestDaemon, TestWorkers};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn failing_duplicates_make_one_call_per_error_delay() {
    let w = TestWorkers::start(Arc::new(|_: &Call| {
        (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "down"}))
    }))
    .await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let tasks: Vec<Value> = (0..10)
        .map(|i| {
            json!({"id": format!("d{i}"), "worker": "w", "key": "SAME",
                   "errorDelayInSeconds": 60, "remainingAttempts": 3})
        })
        .collect();
    d.create_group("g", Value::Array(tasks)).await;
    // The first call fails; every duplicate then waits out its delay.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.calls().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no call made");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.calls().len(), 1, "{:?}", w.calls());
    for i in 1..10 {
        assert_eq!(d.task(&format!("d{i}")).await["status"], "delayed");
    }
    d.stop().await;
}

#[tokio::test]
async fn retry_and_reset_with_zero_attempts_are_refused() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group("g", json!([{"id": "a", "worker": "w", "isPaused": true}]))
        .await;
    for path in [
        "/task_group/g/task/a/retry",
        "/task_group/g/task/a/reset",
        "/task_group/g/retry",
        "/task_group/g/reset",
    ] {
        let (s, v) = d.post(path, json!({"remainingAttempts": 0})).await;
        assert_eq!(s, 422, "{path}: {v}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|m| m.contains("remainingAttempts")),
            "{path}: {v}"
        );
    }
    assert_eq!(d.task("a").await["remainingAttempts"], 5);
    d.stop().await;
}

#[tokio::test]
async fn a_whole_task_put_back_with_is_paused_pauses_a_running_task() {
    // Each call takes 2 s: time to edit the task while it runs.
    let w = TestWorkers::start_with_delay(
        Arc::new(|_: &Call| (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "no"}))),
        Duration::from_secs(2),
    )
    .await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group(
        "g",
        json!([{"id": "slow", "worker": "w", "errorDelayInSeconds": 1}]),
    )
    .await;
    let mut t = d.wait_task("slow", 10, |t| t["status"] == "running").await;
    // A real edit is refused while it runs.
    let mut renamed = t.clone();
    renamed["name"] = json!("renamed");
    let (s, v) = d.put("/task_group/g/task/slow", renamed).await;
    assert_eq!(s, 409, "{v}");
    // The task as served, with isPaused set: a pause after the attempt.
    t["isPaused"] = json!(true);
    let (s, v) = d.put("/task_group/g/task/slow", t).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "running", "{v}");
    let t = d
        .wait_task("slow", 10, |t| t["busyExecuting"] == false)
        .await;
    assert_eq!(t["status"], "paused", "{t}");
    assert_eq!(t["name"], "");
    // Past its error delay, it stays paused: no second call.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.calls().len(), 1);
    d.stop().await;
}

#[tokio::test]
async fn a_task_completed_by_hand_completes_its_duplicates() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group(
        "g",
        json!([
            {"id": "a", "worker": "w", "key": "k", "isPaused": true},
            {"id": "b", "worker": "w", "key": "k", "isPaused": true},
            {"id": "after_b", "worker": "w", "parentIds": ["b"]}
        ]),
    )
    .await;
    let (s, v) = d
        .put(
            "/task_group/g/task/a",
            json!({"isComplete": true, "output": {"v": 1}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let b = d.task("b").await;
    assert_eq!(
        (b["isComplete"].clone(), b["output"].clone()),
        (json!(true), json!({"v": 1}))
    );
    d.wait_task("after_b", 10, |t| t["isComplete"] == true)
        .await;
    d.stop().await;
}
