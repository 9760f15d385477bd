//! `crewd --demo`: built-in demo workers served by the daemon itself, and a
//! task group named `demo` that shows every feature within a minute —
//! fan-out and fan-in through a continuation, a worker that fails twice then
//! succeeds, a rate-limited workgroup, a duplicate key, a delayed task — and
//! keeps moving by resetting itself a little while after it completes.

use crate::engine::{Actor, EngineError, EngineHandle, Op};
use crate::storage::Store;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use crew_core::wire::{NewTask, NewTaskGroup, WorkerPayload};
use crew_core::{GraphRead, Timestamp};
use serde_json::{json, Value};
use std::time::Duration;

/// The demo group's id.
pub const DEMO_GROUP: &str = "demo";
/// Where the demo workers are served, relative to the daemon's address.
pub const DEMO_WORKERS_PATH: &str = "/demo/workers/";
/// Accounts the demo "lists".
const ACCOUNTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];
/// How long the completed demo stays on screen before it starts over.
const LINGER: Duration = Duration::from_secs(15);

/// The demo workers, to merge into the daemon's router.
pub fn worker_routes() -> Router {
    Router::new().route("/demo/workers/{name}", post(demo_worker))
}

fn attempt_of(headers: &HeaderMap) -> u32 {
    headers
        .get("x-crew-attempt")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

async fn demo_worker(
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(payload): Json<WorkerPayload>,
) -> (StatusCode, Json<Value>) {
    let attempt = attempt_of(&headers);
    let pause = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    match name.as_str() {
        "list-accounts" => {
            pause(800).await;
            let id = &payload.task_id;
            let mut children = Vec::new();
            let mut fetch_ids = Vec::new();
            for acct in ACCOUNTS {
                let cid = format!("{id}.fetch-{acct}");
                fetch_ids.push(cid.clone());
                children.push(json!({
                    "id": cid, "name": format!("fetch insights {acct}"),
                    "worker": "fetch-insights", "workgroup": "ads-api",
                    "key": format!("insights-{acct}"), "input": {"account": acct},
                    "errorDelayInSeconds": 2
                }));
            }
            // The same request again: merged by key, executed once.
            children.push(json!({
                "id": format!("{id}.fetch-acme-again"), "name": "fetch insights acme (duplicate)",
                "worker": "fetch-insights", "workgroup": "ads-api",
                "key": "insights-acme", "input": {"account": "acme"}
            }));
            children.push(json!({
                "id": format!("{id}.report"), "name": "build report",
                "worker": "build-report", "parentIds": fetch_ids
            }));
            children.push(json!({
                "id": format!("{id}.notify"), "name": "notify the team",
                "worker": "notify", "parentIds": [format!("{id}.report")]
            }));
            (
                StatusCode::OK,
                Json(json!({
                    "output": {"accounts": ACCOUNTS},
                    "children": children,
                    "childrenDelayInSeconds": 1
                })),
            )
        }
        "fetch-insights" => {
            pause(1200).await;
            let account = payload.input["account"].as_str().unwrap_or("?").to_string();
            if account == "globex" && attempt == 1 {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(
                        json!({"error": "rate limited by the ads API (demo)", "workgroupDelayInSeconds": 10}),
                    ),
                );
            }
            let rows = account.len() as u64 * 40;
            (
                StatusCode::OK,
                Json(json!({"output": {"account": account, "rows": rows}})),
            )
        }
        "build-report" => {
            pause(1500).await;
            let rows: u64 = payload
                .parents
                .iter()
                .filter_map(|p| p.output["rows"].as_u64())
                .sum();
            (StatusCode::OK, Json(json!({"output": {"totalRows": rows}})))
        }
        "export" => {
            pause(700).await;
            if !attempt.is_multiple_of(3) {
                return (
                    StatusCode::BAD_GATEWAY,
                    Json(json!({"error": format!("upstream timed out (demo, attempt {attempt})")})),
                );
            }
            (
                StatusCode::OK,
                Json(json!({"output": {"exported": true, "attempts": attempt}})),
            )
        }
        "cleanup" | "notify" => {
            pause(600).await;
            (StatusCode::OK, Json(json!({"output": {"ok": true}})))
        }
        other => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no demo worker named {other}")})),
        ),
    }
}

fn seed_tasks(now: Timestamp) -> Vec<NewTask> {
    let task = |id: &str, name: &str, worker: &str| NewTask {
        id: Some(id.to_string()),
        name: name.to_string(),
        worker: worker.to_string(),
        is_seed: true,
        ..Default::default()
    };
    let mut export = task("demo-export", "export yesterday's orders", "export");
    export.error_delay_in_seconds = Some(3);
    let mut cleanup = task("demo-cleanup", "clean up temp files (delayed)", "cleanup");
    cleanup.run_after = Some(now.plus_seconds(20.0));
    vec![
        task("demo-list", "list ad accounts", "list-accounts"),
        export,
        cleanup,
    ]
}

/// Who the demo's changes are made by, in the audit log.
fn demo_actor() -> Actor {
    Actor::new("demo")
}

/// Seeds the demo group if it is missing (a failure is logged). `/healthz`
/// answers 503 until this is over, so that a console started with the demo
/// finds the group at once.
pub async fn seed(engine: &EngineHandle, store: &Store) {
    let actor = demo_actor();
    let exists = store
        .read()
        .ok()
        .and_then(|r| r.group(DEMO_GROUP).ok().flatten())
        .is_some();
    if !exists {
        let spec = NewTaskGroup {
            id: Some(DEMO_GROUP.to_string()),
            name: "demo".to_string(),
            is_paused: false,
            tasks: seed_tasks(Timestamp::now()),
            schedule: None,
        };
        match engine
            .execute(&actor, Op::CreateGroup(Box::new(spec)))
            .await
        {
            Ok(_) => tracing::info!("demo group seeded"),
            Err(e) => tracing::warn!("cannot seed the demo group: {e}"),
        }
    }
}

/// Resets the demo group a while after each completion, forever. Ends when
/// the engine shuts down.
pub async fn run_demo_loop(engine: EngineHandle, store: Store) {
    let actor = demo_actor();
    let mut completed_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = Timestamp::now();
        let view = store
            .read()
            .ok()
            .and_then(|r| r.group_view(DEMO_GROUP, now).ok().flatten());
        let Some(view) = view else { continue };
        let done = view.counts.total() > 0 && view.counts.completed == view.counts.total();
        match (done, completed_since) {
            (true, None) => completed_since = Some(tokio::time::Instant::now()),
            (true, Some(t)) if t.elapsed() >= LINGER => {
                completed_since = None;
                match engine
                    .execute(
                        &actor,
                        Op::ResetGroup {
                            id: DEMO_GROUP.into(),
                            attempts: None,
                        },
                    )
                    .await
                {
                    Ok(_) => {
                        // Keep one task delayed in every round.
                        let patch = crew_core::wire::TaskPatch {
                            run_after: Some(Timestamp::now().plus_seconds(20.0)),
                            ..Default::default()
                        };
                        let _ = engine
                            .execute(
                                &actor,
                                Op::UpdateTask {
                                    id: "demo-cleanup".into(),
                                    patch: Box::new(patch),
                                },
                            )
                            .await;
                    }
                    Err(EngineError::ShuttingDown) => return,
                    Err(e) => tracing::debug!("demo reset refused: {e}"),
                }
            }
            (false, _) => completed_since = None,
            _ => {}
        }
    }
}
