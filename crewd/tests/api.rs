//! The REST API end to end: the real daemon on 127.0.0.1:0 with a temporary
//! redb file, real HTTP workers, and a real HTTP client.

use axum::extract::Path;
use axum::routing::post;
use axum::Router;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const TOKEN: &str = "test-token-0123456789";

/// Workers: `block` never answers in time, `fail` answers 500, anything
/// else succeeds with `{"output": {"done": <worker>}}`.
async fn start_workers() -> String {
    let app = Router::new().route(
        "/{worker}",
        post(|Path(worker): Path<String>| async move {
            match worker.as_str() {
                "block" => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    (axum::http::StatusCode::OK, "{}".to_string())
                }
                "fail" => (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "boom".to_string(),
                ),
                w => (
                    axum::http::StatusCode::OK,
                    json!({"output": {"done": w}}).to_string(),
                ),
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

struct Daemon {
    url: String,
    http: reqwest::Client,
    token: Option<String>,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A request's answer: status and JSON body (`Null` when not JSON).
struct Answer {
    status: u16,
    body: Value,
    content_type: String,
}

impl Daemon {
    async fn start(token: Option<&str>) -> Daemon {
        let workers = start_workers().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = crewd::config::Config::with_db(dir.path().join("crew.redb"));
        config.worker_base_url = workers;
        config.token = token.map(str::to_string);
        config.shutdown_grace = 1;
        config.worker_timeout = 120;
        config.max_request_bytes = 64 * 1024;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(crewd::server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let d = Daemon {
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
            token: token.map(str::to_string),
            _dir: dir,
            stop: Some(stop),
        };
        // Wait until it answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !d
            .http
            .get(format!("{}/healthz", d.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "the daemon did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        d
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
        token: Option<&str>,
    ) -> Answer {
        let probe = path == "/healthz" || path == "/livez";
        let url = if path.starts_with('/') && !path.starts_with("/api") && !probe {
            format!("{}/api/v1{path}", self.url)
        } else {
            format!("{}{path}", self.url)
        };
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some((bytes, content_type)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = res.bytes().await.unwrap();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            content_type,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| (serde_json::to_vec(&b).unwrap(), "application/json"));
        self.send(method, path, body, self.token.as_deref()).await
    }

    async fn raw(&self, method: Method, path: &str, body: &str) -> Answer {
        self.send(
            method,
            path,
            Some((body.as_bytes().to_vec(), "application/json")),
            self.token.as_deref(),
        )
        .await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn post_empty(&self, path: &str) -> Answer {
        self.call(Method::POST, path, None).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a (paused, so nothing runs) group.
    async fn paused_group(&self, id: &str) {
        let a = self
            .post(
                "/task_groups",
                json!({"id": id, "name": format!("group {id}"), "isPaused": true}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
    }

    async fn task_count(&self, group: &str) -> u64 {
        let a = self.get(&format!("/task_group/{group}/tasks")).await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body["count"].as_u64().unwrap()
    }

    async fn group_count(&self) -> u64 {
        let a = self.get("/task_groups").await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body["count"].as_u64().unwrap()
    }

    async fn wait_for_status(&self, task: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let a = self.get(&format!("/task/{task}")).await;
            assert_eq!(a.status, 200, "{}", a.body);
            if a.body["status"] == status {
                return a.body;
            }
            assert!(
                Instant::now() < deadline,
                "task {task} never became {status}: {}",
                a.body
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Asserts a JSON error with this status.
#[track_caller]
fn assert_error(a: &Answer, status: u16) {
    assert_eq!(a.status, status, "{}", a.body);
    assert!(
        a.content_type.starts_with("application/json"),
        "{}",
        a.content_type
    );
    assert!(
        a.body["error"].as_str().is_some_and(|s| !s.is_empty()),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn healthz_and_json_fallbacks() {
    let d = Daemon::start(None).await;
    for probe in ["/healthz", "/livez"] {
        let a = d.get(probe).await;
        assert_eq!(a.status, 200, "{probe}");
        assert_eq!(a.body, json!({"status": "ok"}), "{probe}");
    }

    assert_error(&d.get("/nope").await, 404);
    assert_error(&d.get("/api/v1/nope").await, 404);
    let a = d.delete("/task_groups").await;
    assert_error(&a, 405);
    assert_error(&d.call(Method::PATCH, "/task_group/x", None).await, 405);

    for bad in [
        "/task_groups?pageSize=abc",
        "/task_groups?page=-1",
        "/task_groups?page=1.5",
        "/task_groups?sort=oldest",
    ] {
        assert_error(&d.get(bad).await, 400);
    }
    d.paused_group("g").await;
    assert_error(&d.get("/task_group/g/tasks?status=done").await, 400);
    assert_error(&d.get("/task_group/g/tasks?skipCompleted=maybe").await, 400);
    // Extremes are clamped, not refused.
    let a = d.get("/task_groups?page=0&pageSize=0").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = d.get("/task_groups?pageSize=1000000").await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn auth_is_required_when_a_token_is_set() {
    let d = Daemon::start(Some(TOKEN)).await;
    // The probes need none.
    for probe in ["/healthz", "/livez"] {
        let a = d.send(Method::GET, probe, None, None).await;
        assert_eq!(a.status, 200, "{probe}");
    }
    // Every other route does.
    for (method, path) in [
        (Method::GET, "/task_groups"),
        (Method::POST, "/task_groups"),
        (Method::GET, "/task/x"),
        (Method::GET, "/workgroups"),
        (Method::GET, "/workers"),
        (Method::GET, "/nope"),
    ] {
        let a = d.send(method.clone(), path, None, None).await;
        assert_error(&a, 401);
        let a = d.send(method.clone(), path, None, Some("wrong")).await;
        assert_error(&a, 401);
        let a = d
            .send(method, path, None, Some(&TOKEN[..TOKEN.len() - 1]))
            .await;
        assert_error(&a, 401);
    }
    let a = d
        .send(
            Method::GET,
            "/task_groups",
            None,
            Some(&format!("{TOKEN}x")),
        )
        .await;
    assert_error(&a, 401);
    // A refused write wrote nothing.
    let a = d
        .send(
            Method::POST,
            "/task_groups",
            Some((br#"{"id":"sneaky"}"#.to_vec(), "application/json")),
            None,
        )
        .await;
    assert_error(&a, 401);
    let a = d.get("/task_groups").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["count"], 0);
    // The error message never echoes the token.
    let a = d
        .send(Method::GET, "/task_groups", None, Some("wrong"))
        .await;
    assert!(!a.body.to_string().contains(TOKEN));
}

#[tokio::test]
async fn group_lifecycle() {
    let d = Daemon::start(None).await;
    let a = d
        .post("/task_groups", json!({"id": "g1", "name": "Ads sync"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["id"], "g1");
    assert_eq!(a.body["name"], "Ads sync");
    assert_eq!(a.body["isPaused"], false);
    assert_eq!(a.body["completedPercent"], 100.0);

    // A generated id.
    let a = d.post("/task_groups", json!({"name": "Other"})).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let generated = a.body["id"].as_str().unwrap().to_string();
    assert!(!generated.is_empty());

    assert_error(&d.post("/task_groups", json!({"id": "g1"})).await, 409);
    assert_error(&d.post("/task_groups", json!({"id": "a/b"})).await, 422);
    assert_error(&d.post("/task_groups", json!({"id": 5})).await, 422);
    assert_error(
        &d.post("/task_groups", json!({"id": "g9", "colour": "red"}))
            .await,
        422,
    );
    assert_eq!(d.group_count().await, 2);

    let a = d.get("/task_groups?search=ADS").await;
    assert_eq!(a.body["count"], 1, "{}", a.body);
    assert_eq!(a.body["taskGroups"][0]["id"], "g1");
    let a = d.get("/task_groups?pageSize=1&page=2").await;
    assert_eq!(a.body["count"], 2);
    assert_eq!(a.body["taskGroups"].as_array().unwrap().len(), 1);
    // Sorted over every group, not only a page: by name, "Ads…" comes
    // before "Other" though it is older.
    for (sort, first) in [("newest", generated.as_str()), ("name", "g1")] {
        let a = d.get(&format!("/task_groups?pageSize=1&sort={sort}")).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["taskGroups"][0]["id"], first, "{sort}");
        assert_eq!(a.body["count"], 2);
    }

    let a = d.get("/task_group/g1").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["counts"]["ready"], 0);

    let a = d
        .put("/task_group/g1", json!({"id": "g1", "name": "Renamed"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["name"], "Renamed");
    assert_error(&d.put("/task_group/g1", json!({"id": "g2"})).await, 422);
    assert_error(&d.put("/task_group/nope", json!({"name": "x"})).await, 404);
    assert_error(&d.raw(Method::PUT, "/task_group/g1", "").await, 400);

    let a = d.post_empty("/task_group/g1/pause").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["isPaused"], true);
    let a = d.post_empty("/task_group/g1/resume").await;
    assert_eq!(a.body["isPaused"], false);
    assert_error(&d.post_empty("/task_group/nope/pause").await, 404);

    let a = d.get("/task_group/g1/progress").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, json!({"completedPercent": 100.0}));
    assert_error(&d.get("/task_group/nope/progress").await, 404);

    let a = d.delete("/task_group/g1").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, json!({"deleted": 0, "updated": 0}));
    assert_error(&d.get("/task_group/g1").await, 404);
    assert_error(&d.delete("/task_group/g1").await, 404);
    assert_eq!(d.group_count().await, 1);
}

#[tokio::test]
async fn group_created_with_its_tasks() {
    let d = Daemon::start(None).await;
    let a = d
        .post(
            "/task_groups",
            json!({"id": "g", "isPaused": true, "tasks": [
                {"id": "a", "worker": "w", "isSeed": true},
                {"id": "b", "worker": "w", "parentIds": ["a"]}
            ]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["counts"]["paused"], 2, "{}", a.body);
    // Bad tasks refuse the group too.
    let a = d
        .post(
            "/task_groups",
            json!({"id": "h", "tasks": [{"id": "x", "worker": "w", "parentIds": ["nope"]}]}),
        )
        .await;
    assert_error(&a, 422);
    assert_error(&d.get("/task_group/h").await, 404);
    assert_error(&d.get("/task/x").await, 404);
}

#[tokio::test]
async fn task_routes() {
    let d = Daemon::start(None).await;
    d.paused_group("g").await;
    d.paused_group("other").await;

    // One task object: answered with the task.
    let a = d
        .post(
            "/task_group/g/tasks",
            json!({"id": "a", "name": "fetch", "worker": "w", "input": {"n": 1}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["id"], "a");
    assert_eq!(a.body["taskGroupId"], "g");
    assert_eq!(a.body["status"], "paused");
    assert_eq!(a.body["remainingAttempts"], 5);
    assert_eq!(a.body["input"], json!({"n": 1}));

    // An array: one DAG, answered with the array.
    let a = d
        .post(
            "/task_group/g/tasks",
            json!([
                {"id": "b", "name": "store", "worker": "w", "parentIds": ["a"]},
                {"id": "c", "name": "notify", "worker": "w", "parentIds": ["a", "b"]},
                {"name": "generated id", "worker": "w", "key": "k"}
            ]),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let created = a.body.as_array().unwrap();
    assert_eq!(created.len(), 3);
    assert_eq!(created[0]["id"], "b");
    assert_eq!(created[1]["parentIds"], json!(["a", "b"]));
    assert!(!created[2]["id"].as_str().unwrap().is_empty());
    let a = d
        .post("/task_group/other/tasks", json!({"id": "o", "worker": "w"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);

    // Listing, filters and pages.
    let a = d.get("/task_group/g/tasks").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["count"], 4);
    assert_eq!(a.body["tasks"].as_array().unwrap().len(), 4);
    let a = d.get("/task_group/g/tasks?pageSize=1&page=2").await;
    assert_eq!(a.body["count"], 4);
    assert_eq!(a.body["tasks"].as_array().unwrap().len(), 1);
    let a = d.get("/task_group/g/tasks?search=NOTI").await;
    assert_eq!(a.body["count"], 1, "{}", a.body);
    assert_eq!(a.body["tasks"][0]["id"], "c");
    // The worker matches too, as in the console's filter and bulk actions;
    // the key does not.
    let a = d.get("/task_group/g/tasks?search=W").await;
    assert_eq!(a.body["count"], 4, "{}", a.body);
    let a = d.get("/task_group/g/tasks?search=k").await;
    assert_eq!(a.body["count"], 0, "{}", a.body);
    let a = d.get("/task_group/g/tasks?status=paused").await;
    assert_eq!(a.body["count"], 4, "{}", a.body);
    let a = d.get("/task_group/g/tasks?status=completed").await;
    assert_eq!(a.body["count"], 0, "{}", a.body);
    let a = d.get("/task_group/g/tasks?skipCompleted=true").await;
    assert_eq!(a.body["count"], 4, "{}", a.body);
    assert_error(&d.get("/task_group/nope/tasks").await, 404);

    // One task, in its group or by id alone.
    let a = d.get("/task_group/g/task/a").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["name"], "fetch");
    let a = d.get("/task/b").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["status"], "paused");
    assert_error(&d.get("/task_group/g/task/o").await, 404);
    assert_error(&d.get("/task_group/other/task/a").await, 404);
    assert_error(&d.get("/task_group/nope/task/a").await, 404);
    assert_error(&d.get("/task_group/g/task/nope").await, 404);
    assert_error(&d.get("/task/nope").await, 404);

    // Edit.
    let a = d
        .put(
            "/task_group/g/task/a",
            json!({"name": "fetch v2", "input": {"n": 2}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["name"], "fetch v2");
    assert_eq!(a.body["input"], json!({"n": 2}));
    assert_error(
        &d.put("/task_group/g/task/a", json!({"id": "b"})).await,
        422,
    );
    assert_error(
        &d.put("/task_group/g/task/a", json!({"taskGroupId": "other"}))
            .await,
        422,
    );
    assert_error(
        &d.put("/task_group/other/task/a", json!({"name": "x"}))
            .await,
        404,
    );
    assert_error(
        &d.put("/task_group/g/task/a", json!({"remainingAttempts": "many"}))
            .await,
        422,
    );
    // A crew-go client sends the whole task back: that is accepted.
    let whole = d.get("/task_group/g/task/a").await.body;
    let a = d.put("/task_group/g/task/a", whole).await;
    assert_eq!(a.status, 200, "{}", a.body);

    // Pause and resume a task.
    let a = d.post_empty("/task_group/other/task/o/pause").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["isPaused"], true);
    let a = d.post_empty("/task_group/other/task/o/resume").await;
    assert_eq!(a.body["isPaused"], false);
    assert_error(&d.post_empty("/task_group/g/task/o/pause").await, 404);

    // Retry and reset, with and without a body.
    let a = d.post_empty("/task_group/g/task/a/retry").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["updated"].as_u64().is_some());
    let a = d
        .post(
            "/task_group/g/task/a/reset",
            json!({"remainingAttempts": 3}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = d.get("/task/a").await;
    assert_eq!(a.body["remainingAttempts"], 3);
    assert_error(
        &d.post(
            "/task_group/g/task/a/reset",
            json!({"remainingAttempts": -1}),
        )
        .await,
        422,
    );
    assert_error(
        &d.post("/task_group/g/task/a/retry", json!({"attempts": 2}))
            .await,
        422,
    );
    assert_error(
        &d.post(
            "/task_group/g/task/a/reset",
            json!({"remainingAttempts": 1_000_000}),
        )
        .await,
        422,
    );
    assert_error(&d.post_empty("/task_group/g/task/nope/reset").await, 404);
    assert_error(&d.post_empty("/task_group/other/task/a/retry").await, 404);

    // Group-wide retry and reset.
    let a = d
        .post("/task_group/g/retry", json!({"remainingAttempts": 2}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = d.post_empty("/task_group/g/reset").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_error(&d.post_empty("/task_group/nope/reset").await, 404);

    // Deleting a task deletes its descendants and says how many.
    assert_error(&d.delete("/task_group/other/task/a").await, 404);
    let a = d.delete("/task_group/g/task/a").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["deleted"], 3, "{}", a.body);
    assert_eq!(d.task_count("g").await, 1);
    assert_error(&d.get("/task/c").await, 404);
    assert_error(&d.delete("/task_group/g/task/a").await, 404);

    // Deleting the group deletes its tasks.
    let a = d.delete("/task_group/other").await;
    assert_eq!(a.body["deleted"], 1, "{}", a.body);
    assert_error(&d.get("/task/o").await, 404);
}

#[tokio::test]
async fn refused_requests_write_nothing() {
    let d = Daemon::start(None).await;
    d.paused_group("g").await;
    d.paused_group("g2").await;
    let a = d
        .post("/task_group/g/tasks", json!({"id": "root", "worker": "w"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = d
        .post(
            "/task_group/g2/tasks",
            json!({"id": "elsewhere", "worker": "w"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);

    let huge = format!(
        r#"{{"id":"big","worker":"w","input":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let cases: Vec<(&str, String, u16)> = vec![
        ("malformed JSON", r#"{"name":"#.into(), 400),
        ("not JSON at all", "hello".into(), 400),
        ("empty body", "".into(), 400),
        ("a scalar", "5".into(), 422),
        ("wrong type", r#"{"id":"t1","worker":5}"#.into(), 422),
        ("wrong type in an array", r#"[{"id":"t1","worker":"w"},{"id":"t2","parentIds":"root"}]"#.into(), 422),
        ("unknown field", r#"{"id":"t1","worker":"w","colour":"red"}"#.into(), 422),
        ("server-owned isComplete", r#"{"id":"t1","worker":"w","isComplete":true}"#.into(), 422),
        ("server-owned output", r#"{"id":"t1","worker":"w","output":{"x":1}}"#.into(), 422),
        ("server-owned errors", r#"{"id":"t1","worker":"w","errors":[]}"#.into(), 422),
        ("server-owned busyExecuting", r#"{"id":"t1","worker":"w","busyExecuting":true}"#.into(), 422),
        ("cycle", r#"[{"id":"x","worker":"w","parentIds":["y"]},{"id":"y","worker":"w","parentIds":["x"]}]"#.into(), 422),
        ("its own parent", r#"{"id":"s","worker":"w","parentIds":["s"]}"#.into(), 422),
        ("unknown parent", r#"{"id":"t1","worker":"w","parentIds":["ghost"]}"#.into(), 422),
        ("parent in another group", r#"{"id":"t1","worker":"w","parentIds":["elsewhere"]}"#.into(), 422),
        ("duplicate ids in the batch", r#"[{"id":"d","worker":"w"},{"id":"d","worker":"w"}]"#.into(), 422),
        ("an id that exists", r#"{"id":"root","worker":"w"}"#.into(), 409),
        ("an id that exists in another group", r#"{"id":"elsewhere","worker":"w"}"#.into(), 409),
        ("one bad task spoils the batch", r#"[{"id":"fine","worker":"w"},{"id":"bad","worker":"w","parentIds":["ghost"]}]"#.into(), 422),
        ("unsafe id", r#"{"id":"a/b","worker":"w"}"#.into(), 422),
        ("unsafe worker", r#"{"id":"t1","worker":"../admin"}"#.into(), 422),
        ("group mismatch", r#"{"id":"t1","worker":"w","taskGroupId":"g2"}"#.into(), 422),
        ("empty array", "[]".into(), 422),
        ("a task as an array", r#"[["t1","g","a","w"]]"#.into(), 422),
        ("too many attempts", r#"{"id":"t1","worker":"w","remainingAttempts":100000}"#.into(), 422),
        ("huge body", huge, 413),
    ];
    for (what, body, status) in &cases {
        let a = d.raw(Method::POST, "/task_group/g/tasks", body).await;
        assert_eq!(a.status, *status, "{what}: {}", a.body);
        assert_error(&a, *status);
        assert_eq!(d.task_count("g").await, 1, "{what} wrote something");
    }
    // Not JSON by its content type.
    let a = d
        .send(
            Method::POST,
            "/task_group/g/tasks",
            Some((br#"{"id":"t1","worker":"w"}"#.to_vec(), "text/plain")),
            None,
        )
        .await;
    assert_error(&a, 415);
    // A cross-site browser write.
    let res = d
        .http
        .post(format!("{}/api/v1/task_group/g/tasks", d.url))
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(r#"{"id":"t1","worker":"w"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // Unknown group.
    let a = d
        .post("/task_group/nope/tasks", json!({"id": "t1", "worker": "w"}))
        .await;
    assert_error(&a, 404);

    assert_eq!(d.task_count("g").await, 1);
    assert_eq!(d.task_count("g2").await, 1);
    assert_eq!(d.group_count().await, 2);
    assert_error(&d.get("/task/t1").await, 404);
    assert_error(&d.get("/task/fine").await, 404);
    assert_error(&d.get("/task/nope").await, 404);

    // Huge bodies are refused on every route that reads one.
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(100 * 1024));
    let a = d.raw(Method::POST, "/task_groups", &huge).await;
    assert_error(&a, 413);
    assert!(
        a.body["error"].as_str().unwrap().contains("65536 bytes"),
        "{}",
        a.body
    );
    assert_error(&d.raw(Method::PUT, "/task_group/g", &huge).await, 413);
    assert_eq!(d.group_count().await, 2);

    // serde would read an array field by field: bodies are objects.
    for (method, path, body) in [
        (Method::POST, "/task_groups", "[]"),
        (Method::POST, "/task_groups", r#"["g3","by position"]"#),
        (
            Method::POST,
            "/task_groups",
            r#"{"id":"g3","tasks":[["t1"]]}"#,
        ),
        (Method::PUT, "/task_group/g", r#"["renamed"]"#),
        (Method::PUT, "/worker/w/limit", "[3]"),
        (Method::POST, "/task_group/g/bulk", r#"["pause"]"#),
    ] {
        let a = d.raw(method.clone(), path, body).await;
        assert_error(&a, 422);
        assert!(
            a.body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("expected a JSON object"),
            "{method} {path} {body}: {}",
            a.body
        );
    }
    assert_eq!(d.group_count().await, 2);
    assert_eq!(d.get("/task_group/g").await.body["name"], "group g");
}

#[tokio::test]
async fn a_running_task_cannot_be_deleted_reset_or_edited() {
    let d = Daemon::start(None).await;
    let a = d.post("/task_groups", json!({"id": "g"})).await;
    assert_eq!(a.status, 201);
    let a = d
        .post(
            "/task_group/g/tasks",
            json!([{"id": "slow", "worker": "block"}, {"id": "next", "worker": "w", "parentIds": ["slow"]}]),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    d.wait_for_status("slow", "running").await;

    assert_error(&d.delete("/task_group/g/task/slow").await, 409);
    assert_error(&d.post_empty("/task_group/g/task/slow/reset").await, 409);
    assert_error(
        &d.put("/task_group/g/task/slow", json!({"name": "renamed"}))
            .await,
        409,
    );
    let a = d.get("/task/slow").await;
    assert_eq!(a.body["status"], "running");
    assert_eq!(a.body["name"], "");
    assert_eq!(d.task_count("g").await, 2);
    // Pausing is accepted; it takes effect after the attempt.
    let a = d.post_empty("/task_group/g/task/slow/pause").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["isPaused"], true);
}

#[tokio::test]
async fn tasks_run_and_complete() {
    let d = Daemon::start(None).await;
    let a = d.post("/task_groups", json!({"id": "g"})).await;
    assert_eq!(a.status, 201);
    let a = d
        .post(
            "/task_group/g/tasks",
            json!([{"id": "a", "worker": "one"}, {"id": "b", "worker": "two", "parentIds": ["a"]}]),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let b = d.wait_for_status("b", "completed").await;
    assert_eq!(b["output"], json!({"done": "two"}));
    assert_eq!(b["isComplete"], true);
    let a = d.get("/task_group/g/progress").await;
    assert_eq!(a.body["completedPercent"], 100.0);
    let a = d.get("/task_group/g/tasks?status=completed").await;
    assert_eq!(a.body["count"], 2);
    let a = d.get("/task_group/g/tasks?skipCompleted=true").await;
    assert_eq!(a.body["count"], 0);
    // Completed tasks cannot be retried; they can be reset.
    assert_error(&d.post_empty("/task_group/g/task/b/retry").await, 409);
    let a = d.post_empty("/task_group/g/task/b/reset").await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn workgroups_and_workers() {
    let d = Daemon::start(None).await;
    d.paused_group("g").await;
    let a = d
        .post(
            "/task_group/g/tasks",
            json!({"id": "t", "worker": "w", "workgroup": "api-key-1"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);

    let a = d.get("/workgroups").await;
    assert_eq!(a.status, 200);
    let list = a.body["workgroups"].as_array().unwrap();
    assert!(
        list.iter()
            .any(|w| w["name"] == "api-key-1" && w["incompleteTasks"] == 1),
        "{}",
        a.body
    );

    // Default pause: one hour.
    let a = d.post_empty("/workgroup/api-key-1/pause").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["name"], "api-key-1");
    assert_eq!(a.body["incompleteTasks"], 1);
    let until = a.body["pausedUntil"].as_str().unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    let left = until
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((3500..=3600).contains(&left), "{left}");

    let a = d
        .post("/workgroup/api-key-1/pause", json!({"seconds": 90}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    for bad in [
        json!({"seconds": 0}),
        json!({"seconds": -5}),
        json!({"seconds": 1e12}),
    ] {
        assert_error(&d.post("/workgroup/api-key-1/pause", bad).await, 422);
    }
    // An absurd number is echoed short, not in its 301 digits.
    let a = d
        .post("/workgroup/api-key-1/pause", json!({"seconds": 1e300}))
        .await;
    assert_error(&a, 422);
    assert!(
        a.body["error"].as_str().unwrap().ends_with("got 1e300"),
        "{}",
        a.body
    );
    assert_error(
        &d.post("/workgroup/api-key-1/pause", json!({"seconds": "soon"}))
            .await,
        422,
    );
    assert_error(
        &d.post("/workgroup/api-key-1/pause", json!({"minutes": 5}))
            .await,
        422,
    );
    assert_error(&d.post_empty("/workgroup/bad%20name/pause").await, 422);

    let a = d.post_empty("/workgroup/api-key-1/resume").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.get("pausedUntil").is_none() || a.body["pausedUntil"].is_null() || {
            let t = chrono::DateTime::parse_from_rfc3339(a.body["pausedUntil"].as_str().unwrap())
                .unwrap();
            t <= chrono::Utc::now()
        }
    );
    // A workgroup with no tasks can be paused too.
    let a = d.post_empty("/workgroup/fresh/pause").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["incompleteTasks"], 0);

    // Workers and their limits.
    let a = d.get("/workers").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["workers"].is_array());
    let a = d
        .put("/worker/fetch/limit", json!({"maxConcurrency": 2}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["worker"], "fetch");
    assert_eq!(a.body["maxConcurrency"], 2);
    // The list reflects it (the engine publishes loads right after commits).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = d.get("/workers").await;
        let listed = a.body["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["worker"] == "fetch" && w["maxConcurrency"] == 2);
        if listed {
            break;
        }
        assert!(Instant::now() < deadline, "{}", a.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a = d
        .put("/worker/fetch/limit", json!({"maxConcurrency": null}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["maxConcurrency"].is_null());
    assert_error(
        &d.put("/worker/fetch/limit", json!({"maxConcurrency": "two"}))
            .await,
        422,
    );
    assert_error(
        &d.put("/worker/fetch/limit", json!({"maxConcurrency": -1}))
            .await,
        422,
    );
    // 0 would hold the worker's tasks for ever; past the largest
    // workgroup limit is a typo.
    for n in [0, 100_001, u32::MAX] {
        let a = d
            .put("/worker/fetch/limit", json!({"maxConcurrency": n}))
            .await;
        assert_error(&a, 422);
        assert!(
            a.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("from 1 to 100000")),
            "{}",
            a.body
        );
    }
    assert_error(
        &d.put("/worker/fetch/limit", json!({"limit": 1})).await,
        422,
    );
    assert_error(&d.raw(Method::PUT, "/worker/fetch/limit", "").await, 400);
    assert_error(
        &d.put("/worker/bad%20name/limit", json!({"maxConcurrency": 1}))
            .await,
        422,
    );
}
