//! End-to-end scheduling through a real daemon and real HTTP workers.

mod common;

use axum::http::StatusCode;
use common::{echo, Behaviour, Call, TestDaemon, TestWorkers};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn a_diamond_runs_in_order_with_parent_outputs() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group(
        "g",
        json!([
            {"id": "a", "worker": "w", "input": {"n": 1}},
            {"id": "b", "worker": "w", "parentIds": ["a"]},
            {"id": "c", "worker": "w", "parentIds": ["a"]},
            {"id": "d", "worker": "w", "parentIds": ["b", "c"]}
        ]),
    )
    .await;
    d.wait_group_complete("g", 10).await;
    let calls = w.calls();
    let pos = |id: &str| calls.iter().position(|c| c.task_id == id).unwrap();
    assert!(pos("a") < pos("b") && pos("a") < pos("c"));
    assert!(pos("b") < pos("d") && pos("c") < pos("d"));
    let dcall = &calls[pos("d")];
    let mut parents: Vec<_> = dcall
        .payload
        .parents
        .iter()
        .map(|p| p.task_id.clone())
        .collect();
    parents.sort();
    assert_eq!(parents, vec!["b", "c"]);
    assert_eq!(
        dcall.payload.parents[0].output["echo"],
        dcall.payload.parents[0].task_id.as_str()
    );
    assert_eq!(calls.len(), 4, "each task runs once");
    let a = d.task("a").await;
    assert_eq!(a["status"], "completed");
    assert_eq!(a["output"], json!({"echo": "a"}));
    d.stop().await;
}

#[tokio::test]
async fn continuations_are_created_with_the_completion() {
    let w = TestWorkers::start(Arc::new(|c: &Call| {
        if c.worker == "spawn" {
            (
                StatusCode::OK,
                json!({"output": 1, "children": [
                    {"id": "c1", "name": "one", "worker": "w"},
                    {"id": "c2", "name": "two", "worker": "w", "parentIds": ["c1"]}
                ]}),
            )
        } else {
            (StatusCode::OK, json!({"output": c.task_id}))
        }
    }))
    .await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group("g", json!([{"id": "s", "worker": "spawn"}]))
        .await;
    let c2 = d.wait_task("c2", 10, |t| t["isComplete"] == true).await;
    let mut parents: Vec<String> = serde_json::from_value(c2["parentIds"].clone()).unwrap();
    parents.sort();
    assert_eq!(parents, vec!["c1", "s"], "the creator is always a parent");
    assert_eq!(c2["createdBy"], "s");
    d.stop().await;
}

/// Fails every task's first attempt ("boom"), then succeeds.
fn fails_first_attempt() -> common::Behaviour {
    Arc::new(|c: &Call| {
        if c.attempt == 1 {
            (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "boom"}))
        } else {
            (StatusCode::OK, json!({"output": "ok"}))
        }
    })
}

#[tokio::test]
async fn a_failure_is_recorded_and_retried_after_the_delay() {
    let w = TestWorkers::start(fails_first_attempt()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group(
        "g",
        json!([{"id": "t", "worker": "w", "errorDelayInSeconds": 1}]),
    )
    .await;
    let t = d.wait_task("t", 10, |t| t["isComplete"] == true).await;
    assert_eq!(t["remainingAttempts"], 4);
    assert_eq!(t["errors"].as_array().unwrap().len(), 1);
    assert_eq!(t["errors"][0]["attempt"], 1);
    assert!(t["errors"][0]["message"].as_str().unwrap().contains("boom"));
    let calls = w.calls_for("t");
    assert_eq!(calls.len(), 2);
    d.stop().await;
}

#[tokio::test]
async fn a_task_out_of_attempts_is_failed() {
    let w = TestWorkers::start(Arc::new(|_: &Call| {
        (StatusCode::BAD_GATEWAY, json!({"error": "down"}))
    }))
    .await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group(
        "g",
        json!([{"id": "t", "worker": "w", "remainingAttempts": 2, "errorDelayInSeconds": 0},
               {"id": "child", "worker": "w", "parentIds": ["t"]}]),
    )
    .await;
    let t = d.wait_task("t", 10, |t| t["status"] == "failed").await;
    assert_eq!(t["errors"].as_array().unwrap().len(), 2);
    assert_eq!(d.task("child").await["status"], "waiting");
    assert!(w.calls_for("child").is_empty());
    d.stop().await;
}

#[tokio::test]
async fn a_rate_limit_pauses_the_workgroup_without_burning_attempts() {
    let first = Arc::new(AtomicUsize::new(0));
    let f = first.clone();
    let w = TestWorkers::start(Arc::new(move |c: &Call| {
        if c.task_id == "a" && f.fetch_add(1, Ordering::SeqCst) == 0 {
            (StatusCode::TOO_MANY_REQUESTS, json!({"error": "slow down"}))
        } else {
            (StatusCode::OK, json!({"output": "ok"}))
        }
    }))
    .await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group("g", json!([{"id": "a", "worker": "w", "workgroup": "api"}]))
        .await;
    // The 429 carries no Retry-After: the default pause is long, so shorten
    // it through the operator API once it is in force.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = d.get("/workgroups").await;
        let paused = v["workgroups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "api" && w["pausedUntil"].is_string());
        if paused {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "workgroup never paused: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = d.task("a").await;
    assert_eq!(t["remainingAttempts"], 5, "a rate limit burns no attempt");
    assert_eq!(t["status"], "delayed");
    // Another task of the workgroup, in another group, waits too.
    d.create_group(
        "g2",
        json!([{"id": "b", "worker": "w", "workgroup": "api"}]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        w.calls_for("b").is_empty(),
        "the workgroup is paused across groups"
    );
    let (s, v) = d.post("/workgroup/api/resume", json!({})).await;
    assert_eq!(s, 200, "{v}");
    d.wait_task("a", 10, |t| t["isComplete"] == true).await;
    d.wait_task("b", 10, |t| t["isComplete"] == true).await;
    d.stop().await;
}

#[tokio::test]
async fn duplicates_by_key_run_once_and_share_the_output() {
    let w = TestWorkers::start_with_delay(echo(), Duration::from_millis(100)).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group(
        "g",
        json!([
            {"id": "x1", "worker": "w", "key": "k"},
            {"id": "x2", "worker": "w", "key": "k"},
            {"id": "after2", "worker": "w", "parentIds": ["x2"]}
        ]),
    )
    .await;
    d.wait_group_complete("g", 10).await;
    let keyed = w
        .calls()
        .into_iter()
        .filter(|c| c.task_id.starts_with('x'))
        .count();
    assert_eq!(keyed, 1, "one execution per key");
    assert_eq!(d.task("x1").await["output"], d.task("x2").await["output"]);
    // A new task whose key already completed completes at once.
    let (s, v) = d
        .post(
            "/task_group/g/tasks",
            json!({"id": "x3", "worker": "w", "key": "k"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(d.task("x3").await["isComplete"], true);
    d.stop().await;
}

#[tokio::test]
async fn worker_concurrency_limits_hold() {
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (c2, p2) = (current.clone(), peak.clone());
    // The behaviour runs after the worker's delay, so count around a sleep
    // of our own inside a blocking section.
    let w = TestWorkers::start(Arc::new(move |_: &Call| {
        let now = c2.fetch_add(1, Ordering::SeqCst) + 1;
        p2.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        c2.fetch_sub(1, Ordering::SeqCst);
        (StatusCode::OK, json!({"output": 1}))
    }))
    .await;
    let d = TestDaemon::start(&w.base_url, |c| {
        c.worker_concurrency = vec![crewd::config::WorkerConcurrency {
            name: "w".into(),
            limit: 2,
        }];
    })
    .await;
    let tasks: Vec<Value> = (0..20)
        .map(|i| json!({"id": format!("t{i}"), "worker": "w"}))
        .collect();
    d.create_group("g", Value::Array(tasks)).await;
    d.wait_group_complete("g", 20).await;
    assert!(
        peak.load(Ordering::SeqCst) <= 2,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    let (_, workers) = d.get("/workers").await;
    let w0 = &workers["workers"][0];
    assert_eq!(w0["worker"], "w");
    assert_eq!(w0["maxConcurrency"], 2);
    d.stop().await;
}

#[tokio::test]
async fn tasks_are_dispatched_in_the_order_they_were_created() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |c| {
        c.worker_concurrency = vec![crewd::config::WorkerConcurrency {
            name: "w".into(),
            limit: 1,
        }];
    })
    .await;
    // Not the order of their ids.
    let order = ["t2", "t10", "t1", "a", "t3"];
    let tasks: Vec<Value> = order
        .iter()
        .map(|id| json!({"id": id, "worker": "w"}))
        .collect();
    d.create_group("g", Value::Array(tasks)).await;
    d.wait_group_complete("g", 10).await;
    let calls: Vec<String> = w.calls().into_iter().map(|c| c.task_id).collect();
    assert_eq!(calls, order);
    let (_, listed) = d.get("/task_group/g/tasks").await;
    let listed: Vec<&str> = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, order);

    // Children woken together by their parent go in the order they were
    // created too.
    let mut tasks = vec![json!({"id": "root", "worker": "w"})];
    let children = ["c2", "c10", "c1"];
    tasks.extend(
        children
            .iter()
            .map(|id| json!({"id": id, "worker": "w", "parentIds": ["root"]})),
    );
    d.create_group("g2", Value::Array(tasks)).await;
    d.wait_group_complete("g2", 10).await;
    let calls: Vec<String> = w.calls().into_iter().map(|c| c.task_id).collect();
    assert_eq!(calls[order.len()..], ["root", "c2", "c10", "c1"]);
    d.stop().await;
}

#[tokio::test]
async fn a_paused_group_runs_nothing_until_resumed() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "g", "isPaused": true, "tasks": [{"id": "t", "worker": "w"}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(w.calls().is_empty());
    assert_eq!(d.task("t").await["status"], "paused");
    let (s, _) = d.post("/task_group/g/resume", json!({})).await;
    assert_eq!(s, 200);
    d.wait_task("t", 10, |t| t["isComplete"] == true).await;
    d.stop().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let later = crew_core::Timestamp::now().plus_seconds(1.5).to_string();
    d.create_group(
        "g",
        json!([{"id": "now", "worker": "w"}, {"id": "later", "worker": "w", "runAfter": later}]),
    )
    .await;
    d.wait_task("now", 10, |t| t["isComplete"] == true).await;
    let dir = d.stop().await;
    let d = TestDaemon::start_in(dir, &w.base_url, |_| {}).await;
    assert_eq!(d.task("now").await["status"], "completed");
    d.wait_task("later", 10, |t| t["isComplete"] == true).await;
    assert_eq!(
        w.calls_for("now").len(),
        1,
        "a completed task is never dispatched again"
    );
    d.stop().await;
}

#[tokio::test]
async fn an_operator_workgroup_pause_holds_tasks_until_resumed() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let (s, v) = d
        .post("/workgroup/api/pause", json!({"seconds": 600}))
        .await;
    assert_eq!(s, 200, "{v}");
    d.create_group("g", json!([{"id": "t", "worker": "w", "workgroup": "api"}]))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(w.calls().is_empty());
    assert_eq!(d.task("t").await["status"], "paused");
    let (s, _) = d.post("/workgroup/api/resume", json!({})).await;
    assert_eq!(s, 200);
    d.wait_task("t", 10, |t| t["isComplete"] == true).await;
    // A short pause ends by itself.
    let (s, _) = d
        .post("/workgroup/api/pause", json!({"seconds": 0.5}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = d
        .post(
            "/task_group/g/tasks",
            json!({"id": "u", "worker": "w", "workgroup": "api"}),
        )
        .await;
    assert_eq!(s, 201);
    d.wait_task("u", 10, |t| t["isComplete"] == true).await;
    d.stop().await;
}

#[tokio::test]
async fn retention_deletes_finished_groups_beyond_the_count() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |c| {
        c.retain_finished_groups = Some(1);
        c.retention_interval = 1;
    })
    .await;
    // A recurring group is finished between its runs only: never pruned.
    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "nightly", "schedule": "0 2 * * *",
                   "tasks": [{"id": "n", "worker": "w", "isSeed": true}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    d.wait_group_complete("nightly", 10).await;
    for g in ["old", "new"] {
        d.create_group(g, json!([{"id": format!("{g}-t"), "worker": "w"}]))
            .await;
        d.wait_group_complete(g, 10).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Unfinished groups are never pruned.
    let (s, _) = d
        .post(
            "/task_groups",
            json!({"id": "busy", "isPaused": true, "tasks": [{"id": "b", "worker": "w"}]}),
        )
        .await;
    assert_eq!(s, 201);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = d.get("/task_group/old").await;
        if s == 404 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the older finished group was kept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        d.get("/task_group/new").await.0,
        200,
        "the newest finished group stays"
    );
    assert_eq!(
        d.get("/task_group/busy").await.0,
        200,
        "an unfinished group stays"
    );
    assert_eq!(
        d.get("/task_group/nightly").await.0,
        200,
        "a recurring group stays"
    );
    assert_eq!(d.get("/task/old-t").await.0, 404, "its tasks went with it");
    // Visible in metrics and in the audit log.
    let text = d
        .http
        .get(format!("{}/metrics", d.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "crew_retention_pruned_groups_total 1",
        "crew_retention_pruned_tasks_total 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    let (_, audit) = d.get("/audit").await;
    assert_eq!(audit["entries"][0]["actor"], "retention", "{audit}");
    assert_eq!(audit["entries"][0]["action"], "group.delete");
    assert_eq!(audit["entries"][0]["target"], "group/old");
    assert_eq!(audit["entries"][0]["affected"], 1);
    d.stop().await;
}

#[tokio::test]
async fn a_scheduled_group_resets_itself() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "g", "name": "every two seconds", "schedule": "*/2 * * * * *",
                   "tasks": [{"id": "seed", "worker": "w", "isSeed": true}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["schedule"], "*/2 * * * * *");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while w.calls_for("seed").len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the schedule never reset the group"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, g) = d.get("/task_group/g").await;
    assert!(g["lastScheduledReset"].is_string(), "{g}");
    let (_, audit) = d.get("/audit?search=scheduled").await;
    let first = &audit["entries"][0];
    assert_eq!(
        (&first["actor"], &first["target"]),
        (&json!("schedule"), &json!("group/g")),
        "{audit}"
    );
    // A bad expression is refused with a readable error.
    let (s, v) = d
        .post("/task_groups", json!({"id": "bad", "schedule": "at noon"}))
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("cron"), "{v}");
    // So is one that never comes due (the 30th of February).
    let (s, v) = d
        .post(
            "/task_groups",
            json!({"id": "never", "schedule": "0 0 30 2 *"}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("never comes due"),
        "{v}"
    );
    d.stop().await;
}

/// A due reset the group's shape refuses (a seed made by a continuation)
/// is recorded on the group, where the console and clients see it, and
/// goes once the operator fixes the shape and the reset runs.
#[tokio::test]
async fn a_refused_scheduled_reset_shows_on_the_group_until_it_runs() {
    let behaviour: Behaviour = Arc::new(|c: &Call| {
        let children = if c.task_id == "root" {
            json!([{"id": "made", "worker": "w", "isSeed": true}])
        } else {
            json!([])
        };
        (StatusCode::OK, json!({"output": 1, "children": children}))
    });
    let w = TestWorkers::start(behaviour).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group("g", json!([{"id": "root", "worker": "w", "isSeed": true}]))
        .await;
    d.wait_group_complete("g", 10).await;
    let (s, v) = d
        .put("/task_group/g", json!({"schedule": "* * * * * *"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let (_, g) = d.get("/task_group/g").await;
        if let Some(r) = g["scheduleRefused"].as_str() {
            break r.to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "never refused: {g}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(refused.contains("\"made\""), "{refused}");
    assert_eq!(w.calls_for("root").len(), 1, "not reset");
    // The operator removes the continuation; a new schedule clears the
    // refusal, and the next reset runs.
    let (s, v) = d.delete("/task_group/g/task/made").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = d
        .put("/task_group/g", json!({"schedule": "*/2 * * * * *"}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("scheduleRefused").is_none(), "{v}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.calls_for("root").len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "never reset");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, g) = d.get("/task_group/g").await;
    assert!(g.get("scheduleRefused").is_none(), "{g}");
    d.stop().await;
}

#[tokio::test]
async fn a_task_timeout_applies_and_a_running_call_can_be_cancelled() {
    let w = TestWorkers::start_with_delay(echo(), Duration::from_secs(3)).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    d.create_group(
        "g",
        json!([
            {"id": "quick", "worker": "w", "timeoutInSeconds": 1, "remainingAttempts": 1},
            {"id": "slow", "worker": "w"}
        ]),
    )
    .await;
    let q = d.wait_task("quick", 10, |t| t["status"] == "failed").await;
    assert!(
        q["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("timed out after 1 s"),
        "{q}"
    );
    d.wait_task("slow", 10, |t| t["status"] == "running").await;
    let (s, t) = d.post("/task_group/g/task/slow/cancel", json!({})).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["status"], "paused");
    assert_eq!(t["isPaused"], true);
    assert_eq!(
        t["remainingAttempts"], 5,
        "a cancelled attempt burns nothing"
    );
    assert_eq!(t["attemptLog"][0]["outcome"], "cancelled");
    // Counted as cancelled in the metrics, not as a failure.
    let metrics = d
        .http
        .get(format!("{}/metrics", d.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"crew_attempt_outcomes_total{outcome="cancelled"} 1"#,
        r#"crew_attempt_outcomes_total{outcome="failed"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    // Nothing to cancel any more: 409.
    let (s, v) = d.post("/task_group/g/task/slow/cancel", json!({})).await;
    assert_eq!(s, 409, "{v}");
    // The abandoned call's late answer changes nothing.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(d.task("slow").await["isComplete"], false);
    // A bad timeout is refused.
    let (s, _) = d
        .post(
            "/task_group/g/tasks",
            json!({"id": "bad", "worker": "w", "timeoutInSeconds": 0}),
        )
        .await;
    assert_eq!(s, 422);
    d.stop().await;
}

#[tokio::test]
async fn webhook_ids_hold_across_retries_and_change_with_a_reset() {
    let w = TestWorkers::start(fails_first_attempt()).await;
    let d = TestDaemon::start(&w.base_url, |c| {
        c.worker_signing_secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
    })
    .await;
    d.create_group(
        "g",
        json!([{"id": "t", "worker": "w", "errorDelayInSeconds": 0}]),
    )
    .await;
    d.wait_task("t", 10, |t| t["isComplete"] == true).await;
    for _ in 0..2 {
        let n = w.calls_for("t").len();
        let (s, v) = d.post("/task_group/g/task/t/reset", json!({})).await;
        assert_eq!(s, 200, "{v}");
        d.wait_task("t", 10, |t| t["isComplete"] == true).await;
        assert_eq!(w.calls_for("t").len(), n + 1);
    }
    let ids: Vec<String> = w
        .calls_for("t")
        .iter()
        .map(|c| c.headers["webhook-id"].to_str().unwrap().to_string())
        .collect();
    // The retry is the same message; each reset is a new one.
    let created = |t: &Value| {
        let at = crew_core::Timestamp::parse(t["createdAt"].as_str().unwrap()).unwrap();
        format!("{:x}", at.unix_nanos())
    };
    let first = d.task("t").await;
    let x = created(&first);
    assert_eq!(
        ids,
        [
            format!("msg_t.{x}"),
            format!("msg_t.{x}"),
            format!("msg1_t.{x}"),
            format!("msg2_t.{x}")
        ]
    );
    assert_eq!(first["resets"], 2);
    // Deleted and created again with its id, it is a new message: a
    // worker dropping duplicates by id skipped it.
    let (s, v) = d.delete("/task_group/g").await;
    assert_eq!(s, 200, "{v}");
    d.create_group(
        "g",
        json!([{"id": "t", "worker": "w", "errorDelayInSeconds": 0}]),
    )
    .await;
    let again = d.wait_task("t", 10, |t| t["isComplete"] == true).await;
    let y = created(&again);
    assert_ne!(x, y);
    let last = w.calls_for("t").last().unwrap().headers["webhook-id"].clone();
    assert_eq!(last.to_str().unwrap(), format!("msg_t.{y}"));
    d.stop().await;
}

/// A group deleted while its task's call is in flight, then created again
/// with the same ids: the old call's late answer belongs to a task that is
/// gone. The new task starts again at attempt 1, so the answer matched it,
/// completed it with the old output and created the old call's children;
/// and when the new call answered first, its answer was the one dropped.
#[tokio::test]
async fn a_deleted_tasks_late_answer_does_not_complete_its_namesake() {
    let answer: common::Behaviour = Arc::new(|c: &Call| {
        let input = &c.payload.input;
        (
            StatusCode::OK,
            json!({"output": input["answer"], "children": input["children"]}),
        )
    });
    let w = TestWorkers::start(answer).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    // The old call answers after the new one, then before it.
    for (g, old_ms, new_ms) in [("rc", 1500, 0), ("rd", 800, 1600)] {
        let id = format!("{g}-1");
        let old_child =
            json!([{"id": format!("{g}-old-child"), "worker": "w", "input": {"answer": 1}}]);
        let old = json!({"answer": "OLD", "children": old_child, "sleepMs": old_ms});
        d.create_group(g, json!([{"id": id, "worker": "w", "input": old}]))
            .await;
        d.wait_task(&id, 10, |t| t["status"] == "running").await;
        let (s, v) = d.delete(&format!("/task_group/{g}")).await;
        assert_eq!(s, 200, "{v}");
        let new = json!({"answer": "NEW", "sleepMs": new_ms});
        d.create_group(g, json!([{"id": id, "worker": "w", "input": new}]))
            .await;
        let t = d.wait_task(&id, 10, |t| t["isComplete"] == true).await;
        assert_eq!(t["output"], "NEW", "{t}");
        // Both calls have answered: the old one changed nothing.
        tokio::time::sleep(Duration::from_millis(old_ms.max(new_ms) + 200)).await;
        let t = d.task(&id).await;
        assert_eq!(
            (t["output"].as_str(), t["attempts"].as_u64()),
            (Some("NEW"), Some(1)),
            "{t}"
        );
        assert_eq!(w.calls_for(&id).len(), 2);
        let (s, v) = d.get(&format!("/task/{g}-old-child")).await;
        assert_eq!(s, 404, "{v}");
    }
    d.stop().await;
}

/// Earlier versions accepted a worker limit of 0 and stored it: the
/// worker's tasks then waited for ever, whatever the configuration said.
/// A stored 0 is ignored.
#[tokio::test]
async fn a_stored_worker_limit_of_zero_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let config = crewd::storage::StoreConfig::default();
        let store = crewd::storage::Store::open(&dir.path().join("crew.redb"), config).unwrap();
        let mut w = store.write().unwrap();
        w.set_worker_limit("w", Some(0), crew_core::Timestamp::now())
            .unwrap();
        w.commit().unwrap();
    }
    let workers = TestWorkers::start(echo()).await;
    let d = TestDaemon::start_in(dir, &workers.base_url, |_| {}).await;
    d.create_group("z", json!([{"id": "z1", "worker": "w"}]))
        .await;
    d.wait_task("z1", 10, |t| t["isComplete"] == true).await;
    d.stop().await;
}

/// Pausing a workgroup again for less time wakes its tasks at the new
/// end: they stayed parked until the first pause would have ended.
#[tokio::test]
async fn a_shorter_workgroup_pause_wakes_its_tasks_sooner() {
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |_| {}).await;
    let (s, v) = d
        .post("/workgroup/ws/pause", json!({"seconds": 3600}))
        .await;
    assert_eq!(s, 200, "{v}");
    d.create_group("g", json!([{"id": "t", "worker": "w", "workgroup": "ws"}]))
        .await;
    d.wait_task("t", 5, |t| t["status"] == "paused").await;
    let (s, v) = d.post("/workgroup/ws/pause", json!({"seconds": 1})).await;
    assert_eq!(s, 200, "{v}");
    d.wait_task("t", 10, |t| t["isComplete"] == true).await;
    d.stop().await;
}

/// An engine on its own, without the API in front: for what a test cannot
/// bring about through the API (a race between two requests).
async fn engine_alone(
    w: &TestWorkers,
) -> (
    crewd::engine::EngineHandle,
    crewd::engine::EngineThread,
    crewd::storage::Store,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        crewd::storage::Store::open(&dir.path().join("db.redb"), Default::default()).unwrap();
    let client =
        crewd::dispatch::client::WorkerClient::new(crewd::dispatch::client::WorkerClientConfig {
            base_url: w.base_url.clone(),
            worker_urls: Default::default(),
            authorization: None,
            default_timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            signing_secret: None,
        })
        .unwrap();
    let config = crewd::engine::EngineConfig {
        retry_policy: crew_core::rules::RetryPolicy::Fixed,
        max_in_flight: 10,
        worker_limits: Default::default(),
        workgroup_limits: Default::default(),
        worker_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(1),
        idle_poll: Duration::ZERO,
    };
    let (engine, thread) = crewd::engine::start(
        store.clone(),
        crewd::stream::hub::EventHub::new(),
        Arc::new(client),
        config,
    )
    .unwrap();
    (engine, thread, store, dir)
}

/// Creates a group from its JSON spec through an engine on its own.
async fn create_group_alone(engine: &crewd::engine::EngineHandle, spec: Value) {
    let spec = serde_json::from_value(spec).unwrap();
    let op = crewd::engine::Op::CreateGroup(Box::new(spec));
    engine
        .execute(&crewd::engine::Actor::new("test"), op)
        .await
        .unwrap();
}

/// Creates `tasks` (JSON) in `group` through an engine on its own.
async fn create_tasks_alone(
    engine: &crewd::engine::EngineHandle,
    group: &str,
    tasks: Value,
) -> crewd::engine::OpOutcome {
    let op = crewd::engine::Op::CreateTasks {
        group: group.into(),
        tasks: serde_json::from_value(tasks).unwrap(),
    };
    engine
        .execute(&crewd::engine::Actor::new("test"), op)
        .await
        .unwrap()
}

/// A create of one task answers with the task as committed: the API
/// answers with it when the task is deleted before it can be read back
/// (it answered 404, hiding that the create was committed).
#[tokio::test]
async fn a_create_of_one_task_hands_back_the_task_as_committed() {
    let w = TestWorkers::start(echo()).await;
    let (engine, thread, _store, _dir) = engine_alone(&w).await;
    create_group_alone(&engine, json!({"id": "g", "isPaused": true})).await;
    let one = create_tasks_alone(
        &engine,
        "g",
        json!([{"id": "x", "worker": "w", "input": 7}]),
    )
    .await;
    let t = one.created_task.expect("the task as committed");
    assert_eq!((t.id.as_str(), &t.input), ("x", &json!(7)));
    let two = create_tasks_alone(
        &engine,
        "g",
        json!([{"id": "y", "worker": "w"}, {"id": "z", "worker": "w"}]),
    )
    .await;
    assert!(two.created_task.is_none(), "kept for a create of one only");
    thread.shutdown().await;
}

/// A task command addressed through a group applies only to a task of that
/// group when it commits: the API checks the group in a read of its own
/// first, and a task of that id deleted and created in another group in
/// between was changed through the first group's path.
#[tokio::test]
async fn a_task_command_through_a_group_never_reaches_another_groups_task() {
    use crewd::engine::{Actor, EngineError, Op};
    let w = TestWorkers::start(echo()).await;
    let (engine, thread, store, _dir) = engine_alone(&w).await;
    let actor = Actor::new("test");
    for (group, paused) in [("a", false), ("b", true)] {
        create_group_alone(&engine, json!({"id": group, "isPaused": paused})).await;
    }
    create_tasks_alone(&engine, "b", json!([{"id": "x", "worker": "w"}])).await;
    let ops = || {
        [
            Op::SetTaskPaused {
                id: "x".into(),
                paused: true,
            },
            Op::RetryTask {
                id: "x".into(),
                attempts: Some(2),
            },
            Op::ResetTask {
                id: "x".into(),
                attempts: None,
            },
            Op::DeleteTask { id: "x".into() },
        ]
    };
    for op in ops() {
        let e = engine.execute_in_group(&actor, "a", op).await.unwrap_err();
        assert!(
            matches!(e, EngineError::Rule(crew_core::RuleError::NotFound { .. })),
            "{e}"
        );
    }
    let read = store.read().unwrap();
    let x = crew_core::GraphRead::task(&read, "x").unwrap().unwrap();
    assert!(
        !x.is_paused && x.remaining_attempts == 5,
        "unchanged: {x:?}"
    );
    drop(read);
    // Through its own group, it applies.
    let op = Op::SetTaskPaused {
        id: "x".into(),
        paused: true,
    };
    engine.execute_in_group(&actor, "b", op).await.unwrap();
    thread.shutdown().await;
}

/// Retention's delete applies only to a group still finished and without
/// a schedule when it commits: a group given new work after the sweep
/// chose it was deleted with that work.
#[tokio::test]
async fn retention_spares_a_group_given_work_after_it_was_chosen() {
    use crewd::engine::{Actor, Op};
    let w = TestWorkers::start(echo()).await;
    let (engine, thread, store, _dir) = engine_alone(&w).await;
    let actor = Actor::new("test");
    create_group_alone(
        &engine,
        json!({"id": "g", "tasks": [{"id": "t", "worker": "w"}]}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !crew_core::GraphRead::task(&store.read().unwrap(), "t")
        .unwrap()
        .is_some_and(|t| t.is_complete)
    {
        assert!(tokio::time::Instant::now() < deadline, "t never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // New work arrives after the sweep read the group as finished.
    create_tasks_alone(
        &engine,
        "g",
        json!([{"id": "new", "worker": "w", "isPaused": true}]),
    )
    .await;
    let out = engine
        .execute(&actor, Op::PruneGroup { id: "g".into() })
        .await
        .unwrap();
    assert_eq!(out.deleted, 0);
    assert!(crew_core::GraphRead::task(&store.read().unwrap(), "new")
        .unwrap()
        .is_some());
    // So is a group given a schedule.
    engine
        .execute(&actor, Op::DeleteTask { id: "new".into() })
        .await
        .unwrap();
    // Given a schedule `expr` ("" removes it), then pruned: tasks deleted.
    let schedule_then_prune = |expr: &'static str| {
        let (engine, actor) = (&engine, &actor);
        async move {
            let patch = crew_core::wire::TaskGroupPatch {
                schedule: Some(expr.into()),
                ..Default::default()
            };
            let id = "g".to_string();
            engine
                .execute(
                    actor,
                    Op::UpdateGroup {
                        id: id.clone(),
                        patch,
                    },
                )
                .await
                .unwrap();
            engine
                .execute(actor, Op::PruneGroup { id })
                .await
                .unwrap()
                .deleted
        }
    };
    assert_eq!(schedule_then_prune("0 2 * * *").await, 0);
    // Finished and unscheduled again, it goes.
    assert_eq!(schedule_then_prune("").await, 1);
    thread.shutdown().await;
}
