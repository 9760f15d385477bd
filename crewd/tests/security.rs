//! Secrets stay out of logs; worker names from responses cannot steer calls.

mod common;

use axum::http::StatusCode;
use common::{echo, Call, TestDaemon, TestWorkers};
use serde_json::json;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "tok-9f3a7c1e5b";
const WORKER_AUTH: &str = "Bearer wkr-4d2b8e6f0a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_worker_credentials_never_reach_the_logs() {
    let w = TestWorkers::start(echo()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = common::crewd_command(&dir.path().join("s.redb"), port, &w.base_url)
        .env("CREW_AUTH_TOKEN", TOKEN)
        .env("CREW_WORKER_AUTHORIZATION_HEADER", WORKER_AUTH)
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    common::wait_ready(&http, &base).await;
    // Wrong and right tokens, and work that makes worker calls.
    let r = http
        .get(format!("{base}/api/v1/task_groups"))
        .bearer_auth("wrong-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(format!("{base}/api/v1/task_groups"))
        .bearer_auth(TOKEN)
        .json(&json!({"id": "g", "tasks": [{"id": "t", "worker": "w"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.calls_for("t").is_empty() {
        assert!(Instant::now() < deadline, "the worker was never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let call = &w.calls_for("t")[0];
    assert_eq!(
        call.headers["authorization"], WORKER_AUTH,
        "the worker gets its credentials"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SIGTERM, then read everything it logged.
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
    for secret in [TOKEN, "wkr-4d2b8e6f0a", "wrong-token-value"] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
}

#[tokio::test]
async fn a_worker_name_from_a_response_cannot_change_host_or_path() {
    let w = TestWorkers::start(Arc::new(|c: &Call| {
        if c.worker == "spawn" {
            (
                StatusCode::OK,
                json!({"output": 1, "children": [
                    {"id": "evil", "worker": "../../admin"},
                    {"id": "evil2", "worker": "http://elsewhere.example/x"}
                ]}),
            )
        } else {
            (StatusCode::OK, json!({"output": 1}))
        }
    }))
    .await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let (s, _) = d
        .post(
            "/task_groups",
            json!({"id": "g", "tasks": [{"id": "s", "worker": "spawn", "remainingAttempts": 1}]}),
        )
        .await;
    assert_eq!(s, 201);
    let t = d.wait_task("s", 10, |t| t["status"] == "failed").await;
    let msg = t["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("children were refused") && msg.contains("worker"),
        "{msg}"
    );
    let (s, _) = d.get("/task/evil").await;
    assert_eq!(s, 404, "no child was created");
    assert!(w.calls().iter().all(|c| c.worker == "spawn"));
    d.stop().await;
}
