//! Operator features over real HTTP: Prometheus metrics, and named tokens
//! with admin and read-only scopes (with `whoami`).

mod common;

use axum::http::StatusCode;
use common::{Call, TestDaemon, TestWorkers};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ADMIN: &str = "adm-7c1e5b9f3a";
const OPS: &str = "ops-2b8e6f0a4d";
const VIEWER: &str = "view-5d9a1c7e3b";

/// Sample lines of a Prometheus text exposition, by `name{labels}`.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

async fn scrape(d: &TestDaemon, token: Option<&str>) -> (String, HashMap<String, f64>) {
    let mut req = d.http.get(format!("{}/metrics", d.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.unwrap();
    let s = samples(&text);
    (text, s)
}

fn value(s: &HashMap<String, f64>, key: &str) -> f64 {
    *s.get(key)
        .unwrap_or_else(|| panic!("{key} is missing from {s:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_present_and_move_after_a_small_run() {
    let w = TestWorkers::start(Arc::new(|c: &Call| match c.task_id.as_str() {
        "bad" => (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "boom"})),
        "rl" => (
            StatusCode::OK,
            json!({"error": "slow down", "workgroupDelayInSeconds": 600}),
        ),
        _ => (StatusCode::OK, json!({"output": {"ok": c.task_id}})),
    }))
    .await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;

    let (text, before) = scrape(&d, None).await;
    assert_eq!(value(&before, "crew_dispatches_total"), 0.0);
    assert_eq!(value(&before, r#"crew_tasks{status="ready"}"#), 0.0);
    assert_eq!(value(&before, "crew_stream_clients"), 0.0);
    assert!(text.contains("# TYPE crew_commit_duration_seconds histogram"));
    assert!(text.contains("# TYPE crew_attempt_outcomes_total counter"));

    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "g", "tasks": [
                {"id": "a", "worker": "w"},
                {"id": "b", "worker": "w", "parentIds": ["a"]},
                {"id": "c", "worker": "w"},
                {"id": "bad", "worker": "w", "remainingAttempts": 1},
                {"id": "rl", "worker": "limited", "workgroup": "wg"},
            ]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for id in ["a", "b", "c"] {
        d.wait_task(id, 10, |t| t["status"] == "completed").await;
    }
    d.wait_task("bad", 10, |t| t["status"] == "failed").await;
    d.wait_task("rl", 10, |t| t["status"] == "delayed").await;

    // A stream client shows in the gauge.
    let ws = format!("{}/api/v1/events", d.url.replace("http://", "ws://"));
    let (_client, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let (_, after) = scrape(&d, None).await;
        let settled = value(&after, "crew_stream_clients") == 1.0
            && value(
                &after,
                r#"crew_attempt_outcomes_total{outcome="rate_limited"}"#,
            ) >= 1.0;
        if settled || Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(value(&after, "crew_stream_clients"), 1.0);

    // Tasks by status, summed over groups.
    assert_eq!(value(&after, r#"crew_tasks{status="completed"}"#), 3.0);
    assert_eq!(value(&after, r#"crew_tasks{status="failed"}"#), 1.0);
    assert_eq!(value(&after, r#"crew_tasks{status="delayed"}"#), 1.0);
    assert_eq!(value(&after, r#"crew_tasks{status="running"}"#), 0.0);
    assert_eq!(value(&after, r#"crew_tasks{status="ready"}"#), 0.0);

    // Dispatches and outcomes.
    assert_eq!(value(&after, "crew_dispatches_total"), 5.0);
    let outcome = |o: &str| {
        value(
            &after,
            &format!(r#"crew_attempt_outcomes_total{{outcome="{o}"}}"#),
        )
    };
    assert_eq!(outcome("succeeded"), 3.0);
    assert_eq!(outcome("failed"), 1.0);
    assert_eq!(outcome("rate_limited"), 1.0);
    assert_eq!(outcome("interrupted"), 0.0);
    assert_eq!(value(&after, "crew_rate_limit_pauses_total"), 1.0);

    // Worker call latency, per worker, with buckets.
    assert_eq!(
        value(
            &after,
            r#"crew_worker_call_duration_seconds_count{worker="w"}"#
        ),
        4.0
    );
    assert_eq!(
        value(
            &after,
            r#"crew_worker_call_duration_seconds_count{worker="limited"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"crew_worker_call_duration_seconds_bucket{worker="w",le="+Inf"}"#
        ),
        4.0
    );
    assert!(after.contains_key(r#"crew_worker_call_duration_seconds_bucket{worker="w",le="0.1"}"#));
    assert!(
        value(
            &after,
            r#"crew_worker_call_duration_seconds_sum{worker="w"}"#
        ) > 0.0
    );

    // Calls in flight per worker: known workers, none running now.
    assert_eq!(
        value(&after, r#"crew_worker_calls_in_flight{worker="w"}"#),
        0.0
    );

    // Engine batches and commits.
    let commits = value(&after, "crew_commit_duration_seconds_count");
    assert!(commits >= 3.0, "{commits}");
    assert_eq!(
        value(&after, r#"crew_commit_duration_seconds_bucket{le="+Inf"}"#),
        commits
    );
    assert!(value(&after, "crew_batch_size_count") >= commits);
    assert!(value(&after, "crew_batch_size_sum") >= 5.0);
    assert_eq!(value(&after, "crew_events_trimmed_total"), 0.0);
    d.stop().await;
}

#[tokio::test]
async fn metrics_follow_the_api_auth() {
    let w = TestWorkers::start(common::echo()).await;
    let d = TestDaemon::start(&w.base_url, |c| c.token = Some(ADMIN.into())).await;
    let r = d
        .http
        .get(format!("{}/metrics", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = d
        .http
        .get(format!("{}/metrics", d.url))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    scrape(&d, Some(ADMIN)).await;
    d.stop().await;
}

fn scoped(c: &mut crewd::config::Config) {
    c.token = Some(ADMIN.into());
    c.tokens = vec![
        crewd::config::parse_named_token(&format!("viewer:read-only:{VIEWER}")).unwrap(),
        crewd::config::parse_named_token(&format!("ops:admin:{OPS}")).unwrap(),
    ];
}

async fn send(
    d: &TestDaemon,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = d.http.request(method, format!("{}{path}", d.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn read_only_tokens_read_and_stream_but_cannot_act() {
    let w = TestWorkers::start(common::echo()).await;
    let d = TestDaemon::start(&w.base_url, scoped).await;
    use reqwest::Method;

    // whoami for each token, and without one.
    let (s, v) = send(&d, Method::GET, "/api/v1/whoami", Some(VIEWER), None).await;
    assert_eq!(
        (s, v),
        (200, json!({"name": "viewer", "scope": "readOnly"}))
    );
    let (s, v) = send(&d, Method::GET, "/api/v1/whoami", Some(OPS), None).await;
    assert_eq!((s, v), (200, json!({"name": "ops", "scope": "admin"})));
    let (s, v) = send(&d, Method::GET, "/api/v1/whoami", Some(ADMIN), None).await;
    assert_eq!((s, v), (200, json!({"name": "default", "scope": "admin"})));
    let (s, v) = send(&d, Method::GET, "/api/v1/whoami", None, None).await;
    assert_eq!(s, 401, "{v}");
    assert!(v["error"].is_string(), "{v}");
    let (s, _) = send(&d, Method::GET, "/api/v1/whoami", Some("wrong"), None).await;
    assert_eq!(s, 401);

    // An admin token acts.
    let (s, v) = send(
        &d,
        Method::POST,
        "/api/v1/task_groups",
        Some(OPS),
        Some(json!({"id": "g", "name": "G", "tasks": [{"id": "t", "worker": "w"}]})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, t) = send(&d, Method::GET, "/api/v1/task/t", Some(OPS), None).await;
        if t["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "t did not complete: {t}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Every read answers the read-only token.
    for path in [
        "/api/v1/task_groups",
        "/api/v1/task_group/g",
        "/api/v1/task_group/g/progress",
        "/api/v1/task_group/g/tasks",
        "/api/v1/task_group/g/task/t",
        "/api/v1/task/t",
        "/api/v1/workgroups",
        "/api/v1/workers",
        "/api/v1/whoami",
        "/metrics",
        "/healthz",
    ] {
        let (s, v) = send(&d, Method::GET, path, Some(VIEWER), None).await;
        assert_eq!(s, 200, "GET {path}: {v}");
    }

    // Every action is refused with a JSON error naming the scope.
    let writes: &[(Method, &str, Value)] = &[
        (Method::POST, "/api/v1/task_groups", json!({"id": "g2"})),
        (Method::PUT, "/api/v1/task_group/g", json!({"name": "x"})),
        (Method::DELETE, "/api/v1/task_group/g", Value::Null),
        (Method::POST, "/api/v1/task_group/g/pause", json!({})),
        (Method::POST, "/api/v1/task_group/g/resume", json!({})),
        (Method::POST, "/api/v1/task_group/g/reset", json!({})),
        (Method::POST, "/api/v1/task_group/g/retry", json!({})),
        (
            Method::POST,
            "/api/v1/task_group/g/tasks",
            json!([{"id": "t2", "worker": "w"}]),
        ),
        (
            Method::PUT,
            "/api/v1/task_group/g/task/t",
            json!({"name": "x"}),
        ),
        (Method::DELETE, "/api/v1/task_group/g/task/t", Value::Null),
        (Method::POST, "/api/v1/task_group/g/task/t/reset", json!({})),
        (Method::POST, "/api/v1/task_group/g/task/t/retry", json!({})),
        (Method::POST, "/api/v1/task_group/g/task/t/pause", json!({})),
        (
            Method::POST,
            "/api/v1/task_group/g/task/t/resume",
            json!({}),
        ),
        (
            Method::POST,
            "/api/v1/workgroup/wg/pause",
            json!({"seconds": 60}),
        ),
        (Method::POST, "/api/v1/workgroup/wg/resume", json!({})),
        (
            Method::PUT,
            "/api/v1/worker/w/limit",
            json!({"maxConcurrency": 1}),
        ),
    ];
    for (method, path, body) in writes {
        let body = (!body.is_null()).then(|| body.clone());
        let (s, v) = send(&d, method.clone(), path, Some(VIEWER), body).await;
        assert_eq!(s, 403, "{method} {path}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains("read-only") && msg.contains("viewer"),
            "{method} {path}: {v}"
        );
    }
    // Nothing changed.
    let (s, v) = send(&d, Method::GET, "/api/v1/task_group/g", Some(VIEWER), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["name"], "G", "{v}");
    assert_eq!(v["isPaused"], false, "{v}");
    let (s, _) = send(&d, Method::GET, "/api/v1/task/t", Some(VIEWER), None).await;
    assert_eq!(s, 200);

    // The read-only token streams, on both paths.
    let base = d.url.replace("http://", "ws://");
    let mut req = format!("{base}/api/v1/events")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {VIEWER}").parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    let go = format!("{base}/api/v1/task_group/g/stream/{VIEWER}");
    assert!(tokio_tungstenite::connect_async(go).await.is_ok());
    let wrong = format!("{base}/api/v1/task_group/g/stream/wrong");
    assert!(tokio_tungstenite::connect_async(wrong).await.is_err());

    // The default admin token acts too; a wrong token is 401 for reads and
    // writes alike.
    let (s, v) = send(
        &d,
        Method::POST,
        "/api/v1/task_group/g/pause",
        Some(ADMIN),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for (method, path) in [
        (Method::GET, "/api/v1/task_groups"),
        (Method::POST, "/api/v1/task_group/g/resume"),
    ] {
        let (s, v) = send(&d, method, path, Some("wrong"), Some(json!({}))).await;
        assert_eq!(s, 401, "{v}");
        assert!(v["error"].is_string(), "{v}");
    }
    d.stop().await;
}

#[tokio::test]
async fn whoami_without_auth_is_an_anonymous_admin() {
    let w = TestWorkers::start(common::echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let (s, v) = d.get("/whoami").await;
    assert_eq!(
        (s, v),
        (200, json!({"name": "anonymous", "scope": "admin"}))
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_tokens_never_reach_the_logs() {
    let w = TestWorkers::start(common::echo()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = common::crewd_command(&dir.path().join("s.redb"), port, &w.base_url)
        .env("CREW_AUTH_TOKEN", ADMIN)
        .env(
            "CREW_TOKENS",
            format!("viewer:read-only:{VIEWER},ops:admin:{OPS}"),
        )
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    common::wait_ready(&http, &base).await;
    for token in [ADMIN, OPS, VIEWER, "wrong-token-value"] {
        for url in [format!("{base}/api/v1/whoami"), format!("{base}/metrics")] {
            http.get(url).bearer_auth(token).send().await.unwrap();
        }
        let r = http
            .post(format!("{base}/api/v1/task_groups"))
            .bearer_auth(token)
            .json(&json!({"tasks": [{"worker": "w"}]}))
            .send()
            .await
            .unwrap();
        let expected = match token {
            VIEWER => 403,
            "wrong-token-value" => 401,
            _ => 201,
        };
        assert_eq!(r.status().as_u16(), expected, "{token}");
    }
    let r = http
        .get(format!("{base}/api/v1/whoami"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    let who: Value = r.json().await.unwrap();
    assert_eq!(who, json!({"name": "viewer", "scope": "readOnly"}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
    assert!(logs.contains("crewd listening"), "logs were captured");
    // Logs that do not go to a terminal (a file, journald) carry no
    // colour codes.
    assert!(
        !logs.contains('\x1b'),
        "terminal escapes in piped logs: {logs:?}"
    );
    assert!(logs.contains("viewer"), "token names are logged: {logs}");
    for secret in [ADMIN, OPS, VIEWER, "wrong-token-value"] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
}
