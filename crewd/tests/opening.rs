//! While the store opens (its journal applied, or an upgrade: seconds for a
//! large store), the daemon answers `/livez`, and 503 to everything else;
//! then its own server takes the listener over.

mod common;

use crewd::storage::{Store, StoreConfig};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

async fn answer(http: &reqwest::Client, method: reqwest::Method, url: &str) -> (u16, Value) {
    let r = http
        .request(method, url)
        .json(&json!({"id": "g", "name": "g"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn livez_answers_while_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crew.redb");
    let config = crewd::config::Config::with_db(db.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // The store opens when the test says so.
    let (open_now, may_open) = std::sync::mpsc::channel::<()>();
    let (stop, stopped) = oneshot::channel::<()>();
    let daemon = tokio::spawn(crewd::server::run_opening(
        listener,
        config,
        async move {
            let _ = stopped.await;
        },
        move || {
            let _ = may_open.recv();
            Store::open(&db, StoreConfig::default())
        },
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    let (status, body) = answer(&http, get.clone(), &format!("{base}/livez")).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    for (method, path) in [
        (get.clone(), "/healthz"),
        (get.clone(), "/api/v1/task_groups"),
        (post.clone(), "/api/v1/task_groups"),
    ] {
        let (status, body) = answer(&http, method.clone(), &format!("{base}{path}")).await;
        assert_eq!(status, 503, "{method} {path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("opening the store"),
            "{method} {path}: {body}"
        );
    }

    open_now.send(()).unwrap();
    // The same client, whose pooled connection the opening server closed.
    common::wait_ready(&http, &base).await;
    let (status, body) = answer(&http, post, &format!("{base}/api/v1/task_groups")).await;
    assert_eq!(status, 201, "{body}");
    // Refused while opening, the first create wrote nothing: this one is
    // the only group.
    let (status, body) = answer(&http, get, &format!("{base}/api/v1/task_groups")).await;
    assert_eq!((status, body["count"].clone()), (200, json!(1)), "{body}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .expect("the daemon stops")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_store_that_cannot_open_stops_the_daemon_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crew.redb");
    std::fs::write(&db, b"not a database").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let err = crewd::server::run(
        listener,
        crewd::config::Config::with_db(db),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot open the database"),
        "{err:#}"
    );
    // The port is free again.
    TcpListener::bind(addr).await.unwrap();
}
