//! The worker client against real HTTP servers on 127.0.0.1.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use crew_core::wire::{ParentPayload, WorkerPayload};
use crew_core::worker::WorkerOutcome;
use crewd::dispatch::client::{WorkerClient, WorkerClientConfig};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Serves `app` on a free loopback port and returns its address.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn client_for(addr: SocketAddr) -> WorkerClient {
    client_with(addr, |_| {})
}

fn client_with(addr: SocketAddr, edit: impl FnOnce(&mut WorkerClientConfig)) -> WorkerClient {
    let mut cfg = WorkerClientConfig {
        base_url: format!("http://{addr}/"),
        worker_urls: HashMap::new(),
        authorization: None,
        default_timeout: Duration::from_secs(10),
        max_response_bytes: 64 * 1024,
        signing_secret: None,
    };
    edit(&mut cfg);
    WorkerClient::new(cfg).unwrap()
}

fn payload(worker: &str) -> WorkerPayload {
    WorkerPayload {
        task_id: "t-42".into(),
        worker: worker.into(),
        input: json!({"account": "a1"}),
        parents: vec![ParentPayload {
            task_id: "t-7".into(),
            worker: "list-accounts".into(),
            input: json!({}),
            output: json!({"accounts": ["a1", "a2"]}),
        }],
    }
}

fn failure_message(o: WorkerOutcome) -> String {
    match o {
        WorkerOutcome::Failure { message } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn success_with_children_and_payload() {
    let seen: Arc<Mutex<Option<Value>>> = Arc::default();
    let s = seen.clone();
    let app = Router::new().route(
        "/fetch-insights",
        post(move |axum::Json(body): axum::Json<Value>| {
            let s = s.clone();
            async move {
                *s.lock().unwrap() = Some(body);
                axum::Json(json!({
                    "output": {"rows": 120},
                    "children": [
                        {"id": "t-42-a", "name": "store a1", "worker": "store", "input": {"rows": 120}},
                        {"id": "t-42-b", "name": "notify", "worker": "notify", "parentIds": ["t-42-a"]}
                    ],
                    "childrenDelayInSeconds": 5
                }))
            }
        }),
    );
    let addr = serve(app).await;
    let o = client_for(addr)
        .call(&payload("fetch-insights"), 1, None)
        .await;
    match o {
        WorkerOutcome::Success {
            output,
            children,
            children_delay_secs,
            workgroup_delay_secs,
        } => {
            assert_eq!(output, json!({"rows": 120}));
            assert_eq!(children.len(), 2);
            assert_eq!(
                children[1].parent_ids.as_deref(),
                Some(&["t-42-a".to_string()][..])
            );
            assert_eq!(children_delay_secs, 5.0);
            assert_eq!(workgroup_delay_secs, None);
        }
        other => panic!("{other:?}"),
    }
    let body = seen.lock().unwrap().take().unwrap();
    assert_eq!(
        body,
        json!({"taskId": "t-42", "worker": "fetch-insights", "input": {"account": "a1"},
               "parents": [{"taskId": "t-7", "worker": "list-accounts", "input": {},
                            "output": {"accounts": ["a1", "a2"]}}]})
    );
}

#[tokio::test]
async fn error_field_on_200_is_a_failure() {
    let app = Router::new().route(
        "/w",
        post(|| async { axum::Json(json!({"error": "bad account", "output": null})) }),
    );
    let addr = serve(app).await;
    let msg = failure_message(client_for(addr).call(&payload("w"), 1, None).await);
    assert_eq!(msg, "bad account");
}

#[tokio::test]
async fn server_error_quotes_the_body() {
    let app = Router::new().route(
        "/w",
        post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database is down") }),
    );
    let addr = serve(app).await;
    let msg = failure_message(client_for(addr).call(&payload("w"), 1, None).await);
    assert_eq!(msg, "HTTP 500: database is down");
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let app = Router::new().route(
        "/w",
        post(|| async {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "120")],
                "slow down",
            )
        }),
    );
    let addr = serve(app).await;
    match client_for(addr).call(&payload("w"), 1, None).await {
        WorkerOutcome::RateLimited {
            delay_secs,
            message,
        } => {
            assert_eq!(delay_secs, 120.0);
            assert!(message.contains("429"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn workgroup_delay_is_a_rate_limit() {
    let app = Router::new().route(
        "/w",
        post(|| async {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    json!({"error": "rate limited by the API", "workgroupDelayInSeconds": 900}),
                ),
            )
        }),
    );
    let addr = serve(app).await;
    match client_for(addr).call(&payload("w"), 1, None).await {
        WorkerOutcome::RateLimited {
            delay_secs,
            message,
        } => {
            assert_eq!(delay_secs, 900.0);
            assert!(message.contains("rate limited by the API"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_is_a_readable_failure() {
    let app = Router::new().route("/w", post(|| async { "<html>oops</html>" }));
    let addr = serve(app).await;
    let msg = failure_message(client_for(addr).call(&payload("w"), 1, None).await);
    assert!(msg.contains("HTTP 200"), "{msg}");
    assert!(msg.contains("not a worker response"), "{msg}");
    assert!(msg.contains("<html>oops"), "{msg}");
}

#[tokio::test]
async fn huge_body_is_refused_with_and_without_length() {
    // Declared length over the limit.
    let app = Router::new()
        .route("/sized", post(|| async { vec![b' '; 200 * 1024] }))
        .route(
            "/streamed",
            post(|| async {
                // No Content-Length: chunks until far past the limit.
                let chunks = futures_util::stream::iter(
                    (0..1000).map(|_| Ok::<_, std::io::Error>(vec![b' '; 16 * 1024])),
                );
                Body::from_stream(chunks)
            }),
        );
    let addr = serve(app).await;
    let client = client_for(addr);
    for worker in ["sized", "streamed"] {
        let msg = failure_message(client.call(&payload(worker), 1, None).await);
        assert!(
            msg.contains("larger than the limit of 65536 bytes"),
            "{worker}: {msg}"
        );
    }
}

#[tokio::test]
async fn slow_worker_times_out() {
    let app = Router::new().route(
        "/slow",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "{}"
        }),
    );
    let addr = serve(app).await;
    let client = client_for(addr);
    let started = Instant::now();
    let msg = failure_message(
        client
            .call(&payload("slow"), 1, Some(Duration::from_millis(300)))
            .await,
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(msg.starts_with("timed out after 0.3 s"), "{msg}");
}

#[tokio::test]
async fn slow_body_times_out_too() {
    // Headers arrive at once; the body never ends.
    let app = Router::new().route(
        "/trickle",
        post(|| async {
            let chunks = futures_util::stream::unfold(0u32, |n| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, std::io::Error>(b" ".to_vec()), n + 1))
            });
            Body::from_stream(chunks)
        }),
    );
    let addr = serve(app).await;
    let client = client_with(addr, |c| c.default_timeout = Duration::from_millis(500));
    let msg = failure_message(client.call(&payload("trickle"), 1, None).await);
    assert!(msg.starts_with("timed out after 0.5 s"), "{msg}");
}

#[tokio::test]
async fn connection_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let msg = failure_message(client_for(addr).call(&payload("w"), 1, None).await);
    assert!(msg.contains("connection refused"), "{msg}");
    assert!(msg.contains(&format!("http://{addr}/w")), "{msg}");
}

#[tokio::test]
async fn connection_closed_without_answer() {
    // A server that accepts, reads a little, and closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 64];
            let _ = sock.read(&mut buf).await;
            drop(sock);
        }
    });
    let msg = failure_message(client_for(addr).call(&payload("w"), 1, None).await);
    assert!(!msg.is_empty());
    assert!(!msg.contains("hyper::"), "{msg}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let followed = Arc::new(Mutex::new(false));
    let f = followed.clone();
    let app = Router::new()
        .route(
            "/w",
            post(|| async {
                (StatusCode::FOUND, [("location", "/elsewhere")], "").into_response()
            }),
        )
        .route(
            "/elsewhere",
            any(move || {
                let f = f.clone();
                async move {
                    *f.lock().unwrap() = true;
                    "{}"
                }
            }),
        );
    let addr = serve(app).await;
    let msg = failure_message(client_for(addr).call(&payload("w"), 1, None).await);
    assert_eq!(
        msg,
        "HTTP 302: redirects are not followed (Location: /elsewhere)"
    );
    assert!(!*followed.lock().unwrap());
}

#[tokio::test]
async fn headers_received() {
    let seen: Arc<Mutex<Option<HeaderMap>>> = Arc::default();
    let s = seen.clone();
    let app = Router::new().route(
        "/custom-path",
        post(move |headers: HeaderMap| {
            let s = s.clone();
            async move {
                *s.lock().unwrap() = Some(headers);
                Response::new(Body::from(r#"{"output":1}"#))
            }
        }),
    );
    let addr = serve(app).await;
    let client = client_with(addr, |c| {
        c.base_url = "http://127.0.0.1:1/".into(); // never used for this worker
        c.worker_urls
            .insert("w".into(), format!("http://{addr}/custom-path"));
        c.authorization = Some("Bearer worker-secret".into());
    });
    let o = client.call(&payload("w"), 3, None).await;
    assert!(matches!(o, WorkerOutcome::Success { .. }), "{o:?}");
    let h = seen.lock().unwrap().take().unwrap();
    assert_eq!(h["authorization"], "Bearer worker-secret");
    assert_eq!(h["x-crew-attempt"], "3");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["accept"], "application/json");
    assert!(h.get("webhook-signature").is_none());
}

#[tokio::test]
async fn signed_calls_verify() {
    type Seen = Option<(HeaderMap, Vec<u8>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = seen.clone();
    let app = Router::new().route(
        "/w",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                *s.lock().unwrap() = Some((headers, body.to_vec()));
                r#"{"output":1}"#
            }
        }),
    );
    let addr = serve(app).await;
    let client = client_with(addr, |c| {
        c.signing_secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
    });
    let o = client.call(&payload("w"), 2, None).await;
    assert!(matches!(o, WorkerOutcome::Success { .. }), "{o:?}");
    let (h, body) = seen.lock().unwrap().take().unwrap();
    let id = h["webhook-id"].to_str().unwrap();
    assert_eq!(id, "msg_t-42", "the same id for every attempt");
    let ts: u64 = h["webhook-timestamp"].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(ts.abs_diff(now) < 60);
    // What a worker does: recompute over the exact bytes it received.
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
            &key,
            format!("{id}.{ts}.{}", String::from_utf8_lossy(&body)).as_bytes()
        ))
    );
    assert_eq!(h["webhook-signature"], expected.as_str());
}

/// HMAC-SHA256 written out from RFC 2104, independent of the daemon's code.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(msg.iter().copied())
        .collect();
    let inner_hash = Sha256::digest(&inner);
    let outer: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner_hash.iter().copied())
        .collect();
    Sha256::digest(&outer).to_vec()
}

#[tokio::test]
async fn keeps_connections_alive() {
    // Several calls in a row succeed over the pooled client.
    let app = Router::new().route("/w", post(|| async { r#"{"output":"ok"}"# }));
    let addr = serve(app).await;
    let client = client_for(addr);
    for attempt in 1..=5 {
        let o = client.call(&payload("w"), attempt, None).await;
        assert!(matches!(o, WorkerOutcome::Success { .. }), "{o:?}");
    }
}
