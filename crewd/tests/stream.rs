//! The event stream, with real WebSocket clients against a real daemon.

mod common;

use common::{echo, TestDaemon, TestWorkers};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(d: &TestDaemon, query: &str) -> Ws {
    let url = format!("{}/api/v1/events{query}", d.url.replace("http://", "ws://"));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    ws
}

/// The next JSON message, skipping pings; `None` on close or timeout.
async fn next(ws: &mut Ws, secs: u64) -> Option<Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(secs), ws.next())
            .await
            .ok()??;
        match m.ok()? {
            Message::Text(t) => return serde_json::from_str(&t).ok(),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

fn tasks(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"id": format!("t{i}"), "worker": "w"}))
            .collect(),
    )
}

/// Applies task events to a map of id -> isComplete.
fn apply(state: &mut HashMap<String, bool>, m: &Value) {
    match m["type"].as_str() {
        Some("task.created") | Some("task.updated") => {
            state.insert(
                m["task"]["id"].as_str().unwrap().to_string(),
                m["task"]["isComplete"].as_bool().unwrap(),
            );
        }
        Some("task.deleted") => {
            state.remove(m["task"]["id"].as_str().unwrap());
        }
        _ => {}
    }
}

#[tokio::test]
async fn events_arrive_in_order_and_complete() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let mut ws = connect(&d, "").await;
    let n = 2000;
    let (s, _) = d
        .post("/task_groups", json!({"id": "g", "tasks": tasks(n)}))
        .await;
    assert_eq!(s, 201);
    let mut last = 0u64;
    let mut state = HashMap::new();
    let mut created = 0;
    while state.values().filter(|c| **c).count() < n {
        let m = next(&mut ws, 10).await.expect("events keep coming");
        let seq = m["seq"].as_u64().unwrap();
        assert!(seq > last, "sequence {seq} after {last}");
        last = seq;
        if m["type"] == "task.created" {
            created += 1;
        }
        apply(&mut state, &m);
    }
    assert_eq!(created, n);
    d.stop().await;
}

#[tokio::test]
async fn a_resumed_client_ends_with_the_rest_snapshot() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let mut ws = connect(&d, "?group=g").await;
    let n = 1500;
    let (s, _) = d
        .post("/task_groups", json!({"id": "g", "tasks": tasks(n)}))
        .await;
    assert_eq!(s, 201);
    let mut state = HashMap::new();
    let mut last = 0;
    let cut = 500 + (rand::random::<u64>() % 2000) as usize;
    for _ in 0..cut {
        let Some(m) = next(&mut ws, 10).await else {
            break;
        };
        last = m["seq"].as_u64().unwrap();
        apply(&mut state, &m);
    }
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    d.wait_group_complete("g", 30).await;
    let mut ws = connect(&d, &format!("?group=g&since={last}")).await;
    while state.values().filter(|c| **c).count() < n {
        let m = next(&mut ws, 10).await.expect("replay and live events");
        let seq = m["seq"].as_u64().unwrap();
        assert_eq!(seq, last + 1, "no gap and no duplicate after resuming");
        assert_ne!(m["type"], "resync");
        last = seq;
        apply(&mut state, &m);
    }
    let (_, list) = d.get("/task_group/g/tasks?pageSize=10000").await;
    let snapshot: HashMap<String, bool> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["isComplete"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(state, snapshot);
    d.stop().await;
}

#[tokio::test]
async fn a_too_old_since_gets_resync() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |c| c.event_retention = 50).await;
    let (s, _) = d
        .post("/task_groups", json!({"id": "g", "tasks": tasks(100)}))
        .await;
    assert_eq!(s, 201);
    d.wait_group_complete("g", 20).await;
    let mut ws = connect(&d, "?since=1").await;
    let m = next(&mut ws, 5).await.unwrap();
    assert_eq!(m["type"], "resync", "{m}");
    assert!(m["seq"].as_u64().unwrap() > 100);
    d.stop().await;
}

/// A client that resumes from a history the daemon does not have (its
/// store was replaced, or restored from a backup) is told to resync, then
/// gets live events: they were held back until the log caught up.
#[tokio::test]
async fn a_since_ahead_of_the_log_gets_resync_then_live_events() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let (s, _) = d
        .post("/task_groups", json!({"id": "g", "tasks": tasks(3)}))
        .await;
    assert_eq!(s, 201);
    d.wait_group_complete("g", 20).await;
    let mut ws = connect(&d, "?since=1000000").await;
    let m = next(&mut ws, 5).await.expect("a resync");
    assert_eq!(m["type"], "resync", "{m}");
    let last = m["seq"].as_u64().expect("the log's last sequence number");
    assert!((9..1000).contains(&last), "{m}");
    let (s, _) = d
        .post(
            "/task_groups",
            json!({"id": "h", "tasks": [{"id": "h0", "worker": "w"}]}),
        )
        .await;
    assert_eq!(s, 201);
    let m = next(&mut ws, 5).await.expect("a live event");
    assert_eq!(m["seq"].as_u64(), Some(last + 1), "{m}");
    d.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_and_does_not_stall_dispatch() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    // A client with a tiny receive buffer, so the server's queue for it
    // fills instead of the kernel's buffers.
    let addr: std::net::SocketAddr = d.url.trim_start_matches("http://").parse().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(addr).await.unwrap();
    let url = format!("{}/api/v1/events", d.url.replace("http://", "ws://"));
    let (mut sleeper, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let n = 8000; // ~24k events: far more than a client queue and the socket hold
    let (s, _) = d
        .post("/task_groups", json!({"id": "g", "tasks": tasks(n)}))
        .await;
    assert_eq!(s, 201);
    d.wait_group_complete("g", 60).await;
    // Now read: after what the socket buffered, the server says resync.
    let mut saw_resync = false;
    while let Some(m) = next(&mut sleeper, 5).await {
        if m["type"] == "resync" {
            saw_resync = true;
            break;
        }
    }
    assert!(saw_resync, "a lagging client is told to resync");
    d.stop().await;
}

#[tokio::test]
async fn auth_and_origin_are_checked_before_the_handshake() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |c| c.token = Some("s3cret".into())).await;
    let url = format!("{}/api/v1/events", d.url.replace("http://", "ws://"));
    let status_of = |e: tokio_tungstenite::tungstenite::Error| match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    };
    let e = tokio_tungstenite::connect_async(url.clone())
        .await
        .unwrap_err();
    assert_eq!(status_of(e), 401);
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer wrong".parse().unwrap());
    assert_eq!(
        status_of(tokio_tungstenite::connect_async(req).await.unwrap_err()),
        401
    );
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer s3cret".parse().unwrap());
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    assert_eq!(
        status_of(tokio_tungstenite::connect_async(req).await.unwrap_err()),
        403
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer s3cret".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    // crew-go's path token, on a group that exists.
    let r = reqwest::Client::new()
        .post(d.api("/task_groups"))
        .bearer_auth("s3cret")
        .json(&json!({"id": "g"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let go = format!(
        "{}/api/v1/task_group/g/stream/",
        d.url.replace("http://", "ws://")
    );
    assert_eq!(
        status_of(
            tokio_tungstenite::connect_async(format!("{go}-"))
                .await
                .unwrap_err()
        ),
        401
    );
    assert!(tokio_tungstenite::connect_async(format!("{go}s3cret"))
        .await
        .is_ok());
    d.stop().await;
}

#[tokio::test]
async fn crew_go_stream_shape() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let (s, _) = d.post("/task_groups", json!({"id": "g"})).await;
    assert_eq!(s, 201);
    let url = format!(
        "{}/api/v1/task_group/g/stream/-",
        d.url.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (s, _) = d
        .post("/task_group/g/tasks", json!({"id": "t", "worker": "w"}))
        .await;
    assert_eq!(s, 201);
    let m = next(&mut ws, 5).await.unwrap();
    assert_eq!(m["type"], "create");
    assert_eq!(m["task"]["id"], "t");
    assert!(m.get("seq").is_none());
    let mut saw_complete = false;
    while let Some(m) = next(&mut ws, 5).await {
        assert_eq!(m["type"], "update");
        if m["task"]["isComplete"] == true {
            saw_complete = true;
            break;
        }
    }
    assert!(saw_complete);
    // A group that does not exist is a 404, as on every `/task_group/:id`
    // path, before any handshake.
    let url = format!(
        "{}/api/v1/task_group/nope/stream/-",
        d.url.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 404);
            let body = r.body().as_deref().unwrap_or_default();
            let v: Value = serde_json::from_slice(body).expect("a JSON error");
            assert_eq!(v["error"], "task group \"nope\" not found");
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    d.stop().await;
}

/// The group a task or group event is about.
fn group_of(m: &Value) -> Option<&str> {
    m["task"]["taskGroupId"]
        .as_str()
        .or_else(|| m["taskGroup"]["id"].as_str())
}

#[tokio::test]
async fn a_group_stream_carries_that_group_only() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    for g in ["g", "other"] {
        let (s, _) = d.post("/task_groups", json!({"id": g})).await;
        assert_eq!(s, 201);
    }
    let mut native = connect(&d, "?group=g").await;
    let url = format!(
        "{}/api/v1/task_group/g/stream/-",
        d.url.replace("http://", "ws://")
    );
    let (mut crew_go, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // Both groups' tasks at once, so that commits hold events of both.
    let n = 40;
    let add = |g: &'static str| {
        let d = &d;
        async move {
            for i in 0..n {
                let (s, _) = d
                    .post(
                        &format!("/task_group/{g}/tasks"),
                        json!({"id": format!("{g}-{i}"), "worker": "w"}),
                    )
                    .await;
                assert_eq!(s, 201);
            }
        }
    };
    tokio::join!(add("g"), add("other"));
    d.wait_group_complete("other", 30).await;
    for ws in [&mut native, &mut crew_go] {
        let mut done = std::collections::HashSet::new();
        while done.len() < n {
            let m = next(ws, 10).await.expect("the group's events");
            assert_eq!(group_of(&m), Some("g"), "{m}");
            if m["task"]["isComplete"] == true {
                done.insert(m["task"]["id"].as_str().unwrap().to_string());
            }
        }
    }
    d.stop().await;
}

#[tokio::test]
async fn shutdown_closes_stream_clients() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let mut ws = connect(&d, "").await;
    tokio::time::timeout(Duration::from_secs(15), d.stop())
        .await
        .expect("graceful shutdown does not wait for stream clients");
    // Told why: "going away", not a close without a code.
    let mut code = None;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        if let Message::Close(frame) = m {
            code = frame.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(code, Some(1001));
}

/// An event larger than the socket's former write cap (4 MiB), such as a
/// task whose input is 5 MB, reaches live and resuming clients, and the
/// events after it flow: it cut every client off, again at each resume.
#[tokio::test]
async fn an_event_of_megabytes_reaches_every_client() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let mut live = connect(&d, "").await;
    let blob = "x".repeat(5_000_000);
    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "big", "tasks": [{"id": "b1", "worker": "w", "isPaused": true,
                                           "input": {"blob": blob}}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = d
        .post("/task_groups", json!({"id": "after", "isPaused": true}))
        .await;
    assert_eq!(s, 201, "{v}");
    let expected = [
        "group.created big",
        "task.created b1",
        "group.created after",
    ];
    assert_eq!(events_until_after(&mut live).await, expected);
    let mut resumed = connect(&d, "?since=0").await;
    assert_eq!(events_until_after(&mut resumed).await, expected);
    d.stop().await;
}

/// `type id` of each event up to the creation of group `after`; a
/// task's 5 MB input arrives whole.
async fn events_until_after(ws: &mut Ws) -> Vec<String> {
    let mut seen = vec![];
    while let Some(m) = next(ws, 10).await {
        let id = m["task"]["id"]
            .as_str()
            .or(m["taskGroup"]["id"].as_str())
            .unwrap_or_default()
            .to_string();
        if m["type"] == "task.created" {
            let len = m["task"]["input"]["blob"].as_str().map(str::len);
            assert_eq!(len, Some(5_000_000));
        }
        seen.push(format!("{} {id}", m["type"].as_str().unwrap_or_default()));
        if id == "after" {
            break;
        }
    }
    seen
}

/// The stream's routes answer errors as JSON `{error}` like every other
/// route: a wrong method and a path that is not UTF-8 were plain text or
/// empty.
#[tokio::test]
async fn stream_routes_answer_errors_as_json() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let r = d.http.post(d.api("/events")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(v["error"].is_string(), "{v}");
    let r = d
        .http
        .get(d.api("/task_group/%ff/stream/-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(
        v["error"].as_str().unwrap_or_default().contains("UTF-8"),
        "{v}"
    );
    d.stop().await;
}
