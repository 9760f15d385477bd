//! Property test: arbitrary JSON and arbitrary bytes thrown at every write
//! endpoint of a real daemon never produce a 5xx or a non-JSON error, and
//! the daemon keeps serving.

mod common;

use common::{echo, TestDaemon, TestWorkers};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const FIELDS: &[&str] = &[
    "id",
    "name",
    "worker",
    "workgroup",
    "key",
    "remainingAttempts",
    "isPaused",
    "isComplete",
    "runAfter",
    "isSeed",
    "errorDelayInSeconds",
    "input",
    "output",
    "parentIds",
    "taskGroupId",
    "tasks",
    "seconds",
    "maxConcurrency",
    "errors",
    "busyExecuting",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-z0-9./:_-]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        Just(json!("2023-05-01T12:00:00.123456789+02:00")),
        Just(json!("t1")),
        Just(json!("g")),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(FIELDS).prop_map(str::to_string), inner),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/task_groups"),
    ("POST", "/task_group/g/tasks"),
    ("PUT", "/task_group/g/task/t1"),
    ("PUT", "/task_group/g"),
    ("POST", "/task_group/g/reset"),
    ("POST", "/task_group/g/retry"),
    ("POST", "/task_group/g/task/t1/reset"),
    ("POST", "/task_group/g/task/t1/retry"),
    ("POST", "/workgroup/w/pause"),
    ("PUT", "/worker/w/limit"),
];

async fn check(d: &TestDaemon, method: &str, path: &str, body: Vec<u8>) {
    let req = match method {
        "PUT" => d.http.put(d.api(path)),
        _ => d.http.post(d.api(path)),
    };
    let r = req
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(
        status < 500,
        "{method} {path} answered {status} to {:?}: {text}",
        String::from_utf8_lossy(&body)
    );
    if status >= 400 {
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON error: {text}"));
        assert!(v["error"].is_string(), "{text}");
    }
}

#[test]
fn arbitrary_bodies_never_cause_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (d, _w) = rt.block_on(async {
        let w = TestWorkers::start(echo()).await;
        let d = TestDaemon::start(&w.base_url, |_| {}).await;
        let (s, _) = d
            .post(
                "/task_groups",
                json!({"id": "g", "isPaused": true, "tasks": [{"id": "t1", "worker": "w"}]}),
            )
            .await;
        assert_eq!(s, 201);
        (d, w)
    });
    let cases = std::env::var("CREW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        prop::sample::select(ENDPOINTS),
        prop_oneof![
            3 => value().prop_map(|v| v.to_string().into_bytes()),
            1 => prop::collection::vec(any::<u8>(), 0..64),
        ],
    );
    runner
        .run(&strategy, |((method, path), body)| {
            rt.block_on(check(&d, method, path, body));
            Ok(())
        })
        .unwrap();
    rt.block_on(async {
        let (s, _) = d.get("/task_groups").await;
        assert_eq!(s, 200, "the daemon still serves");
        d.stop().await;
    });
}
