//! `POST /api/v1/task_group/:id/bulk` over real HTTP: one action over a
//! filter, in one transaction, all or nothing.

mod common;

use axum::http::StatusCode;
use common::{Call, TestDaemon, TestWorkers};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const FAR: &str = "2100-01-01T00:00:00Z";

/// Workers: `fail` always fails; everything else echoes.
fn behaviour() -> common::Behaviour {
    Arc::new(|c: &Call| {
        if c.worker == "fail" {
            (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "boom"}))
        } else {
            (StatusCode::OK, json!({"output": {"echo": c.task_id}}))
        }
    })
}

/// Group `g`: two paused tasks, two delayed ones, two failed ones and a
/// completed one, with assorted names and workers.
async fn fixture(d: &TestDaemon) {
    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "g", "name": "G", "tasks": [
                {"id": "p1", "name": "Resize photo", "worker": "resize", "isPaused": true},
                {"id": "p2", "name": "Encode video", "worker": "encode", "isPaused": true},
                {"id": "d1", "name": "Resize later", "worker": "resize", "runAfter": FAR},
                {"id": "d2", "name": "Encode later", "worker": "encode", "runAfter": FAR,
                 "workgroup": "gpu"},
                {"id": "f1", "name": "Broken resize", "worker": "fail", "remainingAttempts": 1},
                {"id": "f2", "name": "Broken encode", "worker": "fail", "remainingAttempts": 1},
                {"id": "c1", "name": "Done", "worker": "echo"},
            ]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for id in ["f1", "f2"] {
        d.wait_task(id, 10, |t| t["status"] == "failed").await;
    }
    d.wait_task("c1", 10, |t| t["status"] == "completed").await;
}

/// Every task of `g`, by id.
async fn tasks(d: &TestDaemon) -> BTreeMap<String, Value> {
    let (s, v) = d.get("/task_group/g/tasks?pageSize=1000").await;
    assert_eq!(s, 200, "{v}");
    v["tasks"]
        .as_array()
        .expect("a task list")
        .iter()
        .map(|t| (t["id"].as_str().unwrap_or_default().to_string(), t.clone()))
        .collect()
}

async fn bulk(d: &TestDaemon, body: Value) -> (u16, Value) {
    d.post("/task_group/g/bulk", body).await
}

#[tokio::test]
async fn dry_run_counts_without_changing_anything() {
    let w = TestWorkers::start(behaviour()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    fixture(&d).await;
    let before = tasks(&d).await;
    let (s, v) = bulk(
        &d,
        json!({"action": "delete", "filter": {"search": "RESIZE"}, "dryRun": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // p1, d1 and f1 (by name or worker), whatever their status.
    assert_eq!(
        v,
        json!({"matched": 3, "deleted": 3, "updated": 0, "dryRun": true})
    );
    let (s, v) = bulk(
        &d,
        json!({"action": "retry", "filter": {"status": ["failed"]}, "dryRun": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"matched": 2, "deleted": 0, "updated": 2, "dryRun": true})
    );
    assert_eq!(tasks(&d).await, before);
    d.stop().await;
}

#[tokio::test]
async fn each_action_touches_exactly_the_filtered_tasks() {
    let w = TestWorkers::start(behaviour()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    fixture(&d).await;

    // pause: the delayed resize task only (worker and status).
    let before = tasks(&d).await;
    let (s, v) = bulk(
        &d,
        json!({"action": "pause", "filter": {"worker": "resize", "status": ["delayed"]}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"matched": 1, "deleted": 0, "updated": 1, "dryRun": false})
    );
    let after = tasks(&d).await;
    assert_eq!(after["d1"]["isPaused"], true);
    for id in ["p1", "p2", "d2", "f1", "f2", "c1"] {
        assert_eq!(after[id], before[id], "{id} untouched");
    }

    // resume: the paused tasks whose name, id or worker contains "encode".
    let before = after;
    let (s, v) = bulk(
        &d,
        json!({"action": "resume", "filter": {"status": ["paused"], "search": "Encode"}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["matched"], 1, "{v}");
    let after = d.wait_task("p2", 10, |t| t["status"] == "completed").await;
    assert_eq!(after["isPaused"], false);
    let after = tasks(&d).await;
    for id in ["p1", "d1", "d2", "f1", "f2", "c1"] {
        assert_eq!(after[id], before[id], "{id} untouched");
    }

    // retry with attempts: failed tasks of the `fail` worker named *encode*.
    let before = after;
    let (s, v) = bulk(
        &d,
        json!({"action": "retry", "filter": {"status": ["failed"], "search": "broken ENC"},
               "remainingAttempts": 1}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"matched": 1, "deleted": 0, "updated": 1, "dryRun": false})
    );
    d.wait_task("f2", 10, |t| {
        t["status"] == "failed" && t["errors"].as_array().is_some_and(|e| e.len() == 2)
    })
    .await;
    let after = tasks(&d).await;
    for id in ["p1", "p2", "d1", "d2", "f1", "c1"] {
        assert_eq!(after[id], before[id], "{id} untouched");
    }

    // reset: the workgroup's tasks only.
    let before = after;
    let (s, v) = bulk(
        &d,
        json!({"action": "reset", "filter": {"workgroup": "gpu"}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["matched"], 1, "{v}");
    d.wait_task("d2", 10, |t| t["status"] == "completed").await;
    let after = tasks(&d).await;
    for id in ["p1", "p2", "d1", "f1", "f2", "c1"] {
        assert_eq!(after[id], before[id], "{id} untouched");
    }

    // delete: the completed tasks.
    let (s, v) = bulk(
        &d,
        json!({"action": "delete", "filter": {"status": ["completed"]}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"matched": 3, "deleted": 3, "updated": 0, "dryRun": false})
    );
    let left: Vec<String> = tasks(&d).await.into_keys().collect();
    assert_eq!(left, ["d1", "f1", "f2", "p1"]);
    d.stop().await;
}

#[tokio::test]
async fn a_running_match_refuses_the_whole_request() {
    let w = TestWorkers::start_with_delay(behaviour(), Duration::from_secs(20)).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "g", "name": "G", "tasks": [
                {"id": "a", "name": "idle", "worker": "w", "isPaused": true},
                {"id": "r", "name": "busy", "worker": "w"},
            ]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    d.wait_task("r", 10, |t| t["status"] == "running").await;
    let before = tasks(&d).await;
    for action in ["delete", "reset", "retry"] {
        let (s, v) = bulk(&d, json!({"action": action})).await;
        assert_eq!(s, 409, "{action}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains("\"r\""), "{action}: {msg}");
        assert_eq!(tasks(&d).await, before, "{action} changed nothing");
    }
    // Its dry run is refused the same way.
    let (s, _) = bulk(&d, json!({"action": "delete", "dryRun": true})).await;
    assert_eq!(s, 409);
    // Excluding the running task by filter is fine.
    let (s, v) = bulk(
        &d,
        json!({"action": "delete", "filter": {"status": ["paused"]}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["deleted"], 1);
}

#[tokio::test]
async fn admin_scope_and_strict_bodies() {
    const ADMIN: &str = "bulk-admin-secret";
    const VIEWER: &str = "bulk-viewer-secret";
    let w = TestWorkers::start(behaviour()).await;
    let d = TestDaemon::start(&w.base_url, |c| {
        c.token = Some(ADMIN.into());
        c.tokens = vec![
            crewd::config::parse_named_token(&format!("viewer:read-only:{VIEWER}"))
                .expect("a token"),
        ];
    })
    .await;
    let send = |token: &'static str, path: &'static str, body: Value| {
        let req = d
            .http
            .post(d.api(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        async move {
            let r = req.send().await.expect("a response");
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = send(
        ADMIN,
        "/task_groups",
        json!({"id": "g", "name": "G", "tasks": [
            {"id": "a", "worker": "w", "isPaused": true}
        ]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    let (s, v) = send(VIEWER, "/task_group/g/bulk", json!({"action": "delete"})).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = send(
        VIEWER,
        "/task_group/g/bulk",
        json!({"action": "delete", "dryRun": true}),
    )
    .await;
    assert_eq!(s, 403, "{v}");

    for bad in [
        json!({"action": "explode"}),
        json!({"action": "pause", "unknown": 1}),
        json!({"action": "pause", "filter": {"name": "a"}}),
        json!({"action": "pause", "filter": {"status": ["sleeping"]}}),
        json!({"action": "pause", "filter": {"status": "paused"}}),
        json!({"action": "pause", "dryRun": "yes"}),
        json!({"action": "pause", "remainingAttempts": 3}),
        json!({"action": "retry", "remainingAttempts": -1}),
        json!({"filter": {}}),
    ] {
        let (s, v) = send(ADMIN, "/task_group/g/bulk", bad.clone()).await;
        assert_eq!(s, 422, "{bad}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }

    let (s, v) = send(ADMIN, "/task_group/nope/bulk", json!({"action": "pause"})).await;
    assert_eq!(s, 404, "{v}");

    // Nothing was changed by any of those.
    let (s, v) = send(
        ADMIN,
        "/task_group/g/bulk",
        json!({"action": "resume", "dryRun": true}),
    )
    .await;
    assert_eq!((s, v["matched"].clone()), (200, json!(1)));
    let t = d
        .http
        .get(d.api("/task/a"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("a response")
        .json::<Value>()
        .await
        .unwrap_or(Value::Null);
    assert_eq!(t["isPaused"], true, "{t}");
}
