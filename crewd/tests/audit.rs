//! The audit log over real HTTP: every operator action is recorded with its
//! actor, target and count, in the action's own transaction; refused actions,
//! dry runs and plain task creation are not; entries survive a restart,
//! reach the event stream, page newest first and are trimmed to retention.

mod common;

use common::{echo, TestDaemon, TestWorkers};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const OPS: &str = "ops-4e2a9c7b1f";
const VIEWER: &str = "view-8b3d6f0e2c";

fn scoped(c: &mut crewd::config::Config) {
    c.tokens = vec![
        crewd::config::parse_named_token(&format!("ops:admin:{OPS}")).unwrap(),
        crewd::config::parse_named_token(&format!("viewer:read-only:{VIEWER}")).unwrap(),
    ];
}

async fn send(
    d: &TestDaemon,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = d.http.request(method, d.api(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn audit(d: &TestDaemon, query: &str, token: &str) -> Value {
    let (s, v) = send(
        d,
        reqwest::Method::GET,
        &format!("/audit{query}"),
        token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// `(actor, action, target, affected)` of every entry, newest first.
fn summary(list: &Value) -> Vec<(String, String, String, u64)> {
    list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
                e["affected"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(actor: &str, action: &str, target: &str, affected: u64) -> (String, String, String, u64) {
    (actor.into(), action.into(), target.into(), affected)
}

/// A paused group of four tasks in workgroup `wg`: nothing runs, so every
/// count is exact.
async fn paused_group(d: &TestDaemon) {
    let tasks: Vec<Value> = (1..=4)
        .map(|i| json!({"id": format!("t{i}"), "name": format!("t{i}"), "worker": "w", "workgroup": "wg"}))
        .collect();
    let (s, v) = send(
        d,
        reqwest::Method::POST,
        "/task_groups",
        OPS,
        Some(json!({"id": "g", "name": "g", "isPaused": true, "tasks": tasks})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test]
async fn operator_actions_are_recorded_with_actor_target_and_count() {
    use reqwest::Method;
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, scoped).await;
    paused_group(&d).await;

    // Creating work is not an operator action.
    assert_eq!(audit(&d, "", VIEWER).await["entries"], json!([]));

    let act = |method: Method, path: &'static str, body: Option<Value>| {
        let d = &d;
        async move {
            let (s, v) = send(d, method, path, OPS, body).await;
            assert!(s < 300, "{path}: {s} {v}");
        }
    };
    act(Method::POST, "/task_group/g/task/t1/pause", None).await;
    act(
        Method::POST,
        "/task_group/g/task/t2/reset",
        Some(json!({"remainingAttempts": 2})),
    )
    .await;
    // A dry run changes nothing and is not recorded.
    act(
        Method::POST,
        "/task_group/g/bulk",
        Some(json!({"action": "retry", "dryRun": true})),
    )
    .await;
    act(
        Method::POST,
        "/task_group/g/bulk",
        Some(json!({"action": "pause", "filter": {"search": "t3"}})),
    )
    .await;
    act(
        Method::POST,
        "/workgroup/wg/pause",
        Some(json!({"seconds": 60})),
    )
    .await;
    act(Method::POST, "/workgroup/wg/resume", None).await;
    act(
        Method::PUT,
        "/worker/w/limit",
        Some(json!({"maxConcurrency": 3})),
    )
    .await;
    act(
        Method::PUT,
        "/task_group/g",
        Some(json!({"name": "renamed"})),
    )
    .await;
    // Edits that change nothing are not actions (they were recorded, and
    // the group's sent as updated).
    act(
        Method::PUT,
        "/task_group/g",
        Some(json!({"name": "renamed"})),
    )
    .await;
    act(Method::PUT, "/task_group/g/task/t3", Some(json!({}))).await;
    act(Method::DELETE, "/task_group/g/task/t4", None).await;

    // Refused actions leave no entry: a read-only token, an unknown task.
    let (s, _) = send(&d, Method::POST, "/task_group/g/reset", VIEWER, None).await;
    assert_eq!(s, 403);
    let (s, _) = send(&d, Method::POST, "/task_group/g/task/nope/reset", OPS, None).await;
    assert_eq!(s, 404);

    let list = audit(&d, "", VIEWER).await;
    assert_eq!(
        summary(&list),
        vec![
            row("ops", "task.delete", "task/t4", 1),
            row("ops", "group.update", "group/g", 0),
            row("ops", "worker.limit", "worker/w", 0),
            row("ops", "workgroup.resume", "workgroup/wg", 4),
            row("ops", "workgroup.pause", "workgroup/wg", 4),
            row("ops", "bulk.pause", "group/g", 1),
            row("ops", "task.reset", "task/t2", 1),
            row("ops", "task.pause", "task/t1", 1),
        ]
    );
    let entries = list["entries"].as_array().unwrap();
    let details: Vec<&str> = entries
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        details,
        vec![
            "",
            "set name",
            "maxConcurrency 3",
            "",
            "for 60 s",
            r#"filter {"search":"t3"}"#,
            "remainingAttempts 2",
            "",
        ]
    );
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=8).rev().collect::<Vec<_>>());
    assert!(entries.iter().all(|e| e["at"].is_string()));
    assert!(list.get("nextBefore").is_none(), "{list}");

    // Pages, newest first, and a search over actor, action and target.
    let page = audit(&d, "?limit=3", VIEWER).await;
    assert_eq!(summary(&page).len(), 3);
    assert_eq!(page["nextBefore"], 6);
    let older = audit(&d, "?limit=3&before=6", VIEWER).await;
    assert_eq!(older["entries"][0]["seq"], 5);
    let found = audit(&d, "?search=WORKGROUP/", VIEWER).await;
    assert_eq!(
        summary(&found).into_iter().map(|r| r.1).collect::<Vec<_>>(),
        vec!["workgroup.resume", "workgroup.pause"]
    );
    let (s, v) = send(&d, Method::GET, "/audit?limit=ten", VIEWER, None).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("limit"), "{v}");
    d.stop().await;
}

#[tokio::test]
async fn entries_survive_a_restart_reach_the_stream_and_are_trimmed() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |c| {
        scoped(c);
        c.audit_retention = 3;
    })
    .await;
    paused_group(&d).await;

    let mut req = format!("{}/api/v1/events", d.url.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {VIEWER}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    let (s, _) = send(
        &d,
        reqwest::Method::POST,
        "/task_group/g/task/t1/pause",
        OPS,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let recorded = loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an audit event arrives")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "audit.recorded" {
                break v;
            }
        }
    };
    assert_eq!(recorded["entry"]["action"], "task.pause");
    assert_eq!(recorded["entry"]["actor"], "ops");
    assert_eq!(recorded["entry"]["seq"], 1);

    for t in ["t2", "t3", "t4"] {
        let path = format!("/task_group/g/task/{t}/pause");
        let (s, _) = send(&d, reqwest::Method::POST, &path, OPS, None).await;
        assert_eq!(s, 200);
    }
    let dir = d.stop().await;
    let d = TestDaemon::start_in(dir, &w.base_url, |c| {
        scoped(c);
        c.audit_retention = 3;
    })
    .await;
    let (s, _) = send(&d, reqwest::Method::POST, "/task_group/g/resume", OPS, None).await;
    assert_eq!(s, 200);
    let list = audit(&d, "", OPS).await;
    assert_eq!(
        summary(&list),
        vec![
            row("ops", "group.resume", "group/g", 4),
            row("ops", "task.pause", "task/t4", 1),
            row("ops", "task.pause", "task/t3", 1),
        ]
    );
    assert_eq!(list["entries"][0]["seq"], 5);
    d.stop().await;
}
