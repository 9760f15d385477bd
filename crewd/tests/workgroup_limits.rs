//! Workgroup limits (max concurrency, max rate) over real HTTP: a real
//! daemon and a real worker that records, per workgroup, how many of its
//! calls ran at once and when each started.

mod common;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use common::TestDaemon;
use crew_core::wire::WorkerPayload;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "adm-3f9c2e7a1b";
const VIEWER: &str = "view-8b1d4a6c0e";

/// What the worker saw, per workgroup (taken from the task's input).
#[derive(Default)]
struct Seen {
    running: HashMap<String, u32>,
    max_running: HashMap<String, u32>,
    starts: HashMap<String, Vec<Instant>>,
}

#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    delay: Duration,
}

impl Recorder {
    /// Starts a worker answering every call after `delay`; its base URL.
    async fn start(delay: Duration) -> (Self, String) {
        let r = Recorder {
            seen: Arc::default(),
            delay,
        };
        let app = Router::new()
            .route("/{worker}", post(call))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (r, format!("http://{addr}/"))
    }

    fn max_running(&self, wg: &str) -> u32 {
        let s = self.seen.lock().unwrap();
        s.max_running.get(wg).copied().unwrap_or(0)
    }

    fn starts(&self, wg: &str) -> Vec<Instant> {
        let s = self.seen.lock().unwrap();
        s.starts.get(wg).cloned().unwrap_or_default()
    }
}

async fn call(State(r): State<Recorder>, Json(p): Json<WorkerPayload>) -> Json<Value> {
    let wg = p.input["wg"].as_str().unwrap_or("").to_string();
    {
        let mut s = r.seen.lock().unwrap();
        let n = s.running.entry(wg.clone()).or_default();
        *n += 1;
        let n = *n;
        let max = s.max_running.entry(wg.clone()).or_default();
        *max = (*max).max(n);
        s.starts.entry(wg.clone()).or_default().push(Instant::now());
    }
    tokio::time::sleep(r.delay).await;
    if let Some(n) = r.seen.lock().unwrap().running.get_mut(&wg) {
        *n -= 1;
    }
    Json(json!({"output": {"done": p.task_id}}))
}

/// `n` tasks of workgroup `wg`, all for worker `w`.
fn tasks(wg: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"id": format!("{wg}-{i}"), "worker": "w", "workgroup": wg, "input": {"wg": wg}}))
        .collect()
}

async fn put(d: &TestDaemon, path: &str, body: Value) -> (u16, Value) {
    let r = d.http.put(d.api(path)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn workgroup(d: &TestDaemon, name: &str) -> Value {
    let (s, v) = d.get("/workgroups").await;
    assert_eq!(s, 200, "{v}");
    v["workgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("workgroup {name} is not listed: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_holds_without_blocking_other_workgroups() {
    let (w, url) = Recorder::start(Duration::from_millis(150)).await;
    let d = TestDaemon::start(&url, |_| {}).await;
    let (s, v) = put(&d, "/workgroup/slow/limit", json!({"maxConcurrency": 2})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "slow");
    assert_eq!(v["maxConcurrency"], 2);

    // The limited workgroup's tasks come first on the worker's queue.
    let mut all = tasks("slow", 8);
    all.extend(tasks("fast", 8));
    let (s, v) = d
        .post("/task_groups", json!({"id": "g", "tasks": all}))
        .await;
    assert_eq!(s, 201, "{v}");

    // While it runs, the list shows the limit and at most that many calls.
    let mut seen_in_flight = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let slow = workgroup(&d, "slow").await;
        assert_eq!(slow["maxConcurrency"], 2, "{slow}");
        let n = slow["inFlight"].as_u64().unwrap();
        assert!(n <= 2, "{slow}");
        seen_in_flight = seen_in_flight.max(n);
        let (_, g) = d.get("/task_group/g").await;
        if g["completedPercent"].as_f64() == Some(100.0) {
            break;
        }
        assert!(Instant::now() < deadline, "group did not complete: {g}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen_in_flight >= 1);
    assert!(w.max_running("slow") <= 2, "{}", w.max_running("slow"));
    assert_eq!(w.max_running("slow"), 2, "the limit is used in full");
    // The other workgroup on the same worker was not held behind it.
    assert!(w.max_running("fast") > 2, "{}", w.max_running("fast"));
    let fast_done = *w.starts("fast").iter().max().unwrap();
    let slow_done = *w.starts("slow").iter().max().unwrap();
    assert!(fast_done < slow_done, "fast tasks waited for slow ones");
    assert_eq!(workgroup(&d, "slow").await["inFlight"], 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_spaces_the_starts() {
    let (w, url) = Recorder::start(Duration::ZERO).await;
    let d = TestDaemon::start(&url, |_| {}).await;
    let (s, v) = put(
        &d,
        "/workgroup/api/limit",
        json!({"maxRate": 5, "burst": 1}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["maxRate"].as_f64(), v["burst"].as_u64()),
        (Some(5.0), Some(1))
    );

    let n = 6;
    let mut all = tasks("api", n);
    all.extend(tasks("free", 10));
    let (s, v) = d
        .post("/task_groups", json!({"id": "g", "tasks": all}))
        .await;
    assert_eq!(s, 201, "{v}");
    d.wait_group_complete("g", 20).await;

    let starts = w.starts("api");
    assert_eq!(starts.len(), n);
    let span = *starts.iter().max().unwrap() - *starts.iter().min().unwrap();
    // 5 per second with a burst of 1: n starts take at least (n-1)/5 s.
    // A lower bound with slack for timers, never a tight timing.
    let want = Duration::from_millis((n as u64 - 1) * 200 * 9 / 10);
    assert!(
        span >= want,
        "{n} starts in {span:?}, want at least {want:?}"
    );
    // The unlimited workgroup on the same worker went at full speed.
    let free = w.starts("free");
    let free_span = *free.iter().max().unwrap() - *free.iter().min().unwrap();
    assert!(free_span < span, "{free_span:?} vs {span:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_change_takes_effect_is_streamed_and_persists() {
    let (w, url) = Recorder::start(Duration::from_millis(250)).await;
    let d = TestDaemon::start(&url, |_| {}).await;
    let ws_url = format!("{}/api/v1/events", d.url.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();

    let (s, _) = put(&d, "/workgroup/x/limit", json!({"maxConcurrency": 1})).await;
    assert_eq!(s, 200);
    // The change is published as a workgroup.updated event.
    let event = loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "workgroup.updated" {
                break v;
            }
        }
    };
    assert_eq!(event["workgroup"]["name"], "x");
    assert_eq!(event["workgroup"]["maxConcurrency"], 1);

    let (s, v) = d
        .post("/task_groups", json!({"id": "g", "tasks": tasks("x", 8)}))
        .await;
    assert_eq!(s, 201, "{v}");
    // One at a time while the limit holds...
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.starts("x").len() < 2 {
        assert!(Instant::now() < deadline, "no second call");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.max_running("x"), 1);
    // ...and the held tasks are ready, not paused or delayed.
    let t = d.task("x-7").await;
    assert_eq!(t["status"], "ready", "{t}");
    // Clearing it releases the held tasks at once.
    let (s, v) = put(&d, "/workgroup/x/limit", json!({"maxConcurrency": null})).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("maxConcurrency").is_none(), "{v}");
    d.wait_group_complete("g", 20).await;
    assert!(w.max_running("x") >= 3, "{}", w.max_running("x"));

    // Persisted: a restart keeps the live value.
    let (s, _) = put(
        &d,
        "/workgroup/x/limit",
        json!({"maxConcurrency": 3, "maxRate": 0.5}),
    )
    .await;
    assert_eq!(s, 200);
    let dir = d.stop().await;
    let d = TestDaemon::start_in(dir, &url, |_| {}).await;
    let x = workgroup(&d, "x").await;
    assert_eq!(
        (x["maxConcurrency"].as_u64(), x["maxRate"].as_f64()),
        (Some(3), Some(0.5))
    );
    let dir = d.stop().await;

    // The configuration wins at start, and is stored as the live value.
    let d = TestDaemon::start_in(dir, &url, |c| {
        c.workgroup_limits = vec![crewd::config::parse_workgroup_limit("x=concurrency:5").unwrap()];
    })
    .await;
    // Written by the engine's recovery, which runs as the API starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    let x = loop {
        let x = workgroup(&d, "x").await;
        if x["maxConcurrency"] == 5 || Instant::now() > deadline {
            break x;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(x["maxConcurrency"], 5, "{x}");
    assert!(x.get("maxRate").is_none(), "{x}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limits_are_refused_with_a_json_error() {
    let d = TestDaemon::start("http://127.0.0.1:9/", |c| {
        c.tokens = vec![
            crewd::config::parse_named_token(&format!("ops:admin:{ADMIN}")).unwrap(),
            crewd::config::parse_named_token(&format!("viewer:read-only:{VIEWER}")).unwrap(),
        ];
    })
    .await;
    let send = |token: &'static str, path: &str, body: String| {
        let req = d
            .http
            .put(d.api(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for (body, status) in [
        (r#"{"maxConcurrency": 0}"#, 422),
        (r#"{"maxConcurrency": -1}"#, 422),
        (r#"{"maxConcurrency": 1.5}"#, 422),
        (r#"{"maxConcurrency": 100000000000}"#, 422),
        (r#"{"maxConcurrency": 100001}"#, 422),
        (r#"{"maxRate": 0}"#, 422),
        (r#"{"maxRate": -3}"#, 422),
        (r#"{"maxRate": 1e300}"#, 422),
        (r#"{"maxRate": "fast"}"#, 422),
        (r#"{"burst": 2}"#, 422),
        (r#"{"maxRate": 1, "burst": 0}"#, 422),
        (r#"{"maxConcurrency": 2, "max": 1}"#, 422),
        (r#"{"maxConcurrency": "#, 400),
    ] {
        let (s, v) = send(ADMIN, "/workgroup/api/limit", body.to_string()).await;
        assert_eq!(s, status, "{body}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}: {v}"
        );
    }
    let (s, v) = send(ADMIN, "/workgroup/bad%20name/limit", "{}".into()).await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"].is_string());
    // Read-only tokens may not change limits.
    let (s, v) = send(
        VIEWER,
        "/workgroup/api/limit",
        r#"{"maxConcurrency": 2}"#.into(),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(v["error"].is_string());
    // Nothing was stored by the refused requests.
    let r = d
        .http
        .get(d.api("/workgroups"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["workgroups"], json!([]), "{list}");
    // An empty body clears (and so is valid).
    let (s, v) = send(ADMIN, "/workgroup/api/limit", "{}".into()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "api");
    d.stop().await;
}

/// A queued task given another worker by an operator waits in its new
/// worker's queue, within that worker's limit: it stayed in its old
/// worker's queue and, when that worker had room, was sent to the new one
/// beside the call its limit allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_task_moved_to_another_worker_keeps_that_workers_limit() {
    let (w, url) = Recorder::start(Duration::from_millis(1500)).await;
    let d = TestDaemon::start(&url, |_| {}).await;
    for worker in ["wa", "wb"] {
        let (s, v) = put(
            &d,
            &format!("/worker/{worker}/limit"),
            json!({"maxConcurrency": 1}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let task = |id: &str, worker: &str, label: &str| json!({"id": id, "worker": worker, "input": {"wg": label}});
    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "first", "tasks": [task("v0", "wa", "A")]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    // v2 runs on wb; v3 waits behind v0 on wa, then moves to wb.
    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "g", "tasks": [task("v2", "wb", "B"), task("v3", "wa", "B")]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = put(&d, "/task_group/g/task/v3", json!({"worker": "wb"})).await;
    assert_eq!(s, 200, "{v}");
    d.wait_group_complete("g", 20).await;
    assert_eq!(w.max_running("B"), 1, "wb ran two calls at once");
    assert_eq!(d.task("v3").await["output"]["done"], "v3");
    d.stop().await;
}
