//! A fault-injecting worker, spoken to through the real daemon: every fault
//! is a recorded failure with a readable message, rate limits pause the
//! workgroup without burning an attempt, a huge body is never read whole,
//! and failures wait out their delay (no hot retry loop).

mod common;

use common::TestDaemon;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Hits = Arc<Mutex<HashMap<String, Vec<std::time::Instant>>>>;

/// Reads one request; returns the worker name from its path.
async fn read_request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let path = head.split_whitespace().nth(1)?.to_string();
    Some(path.trim_start_matches('/').to_string())
}

async fn serve_fault(mut s: TcpStream, hits: Hits) {
    let Some(worker) = read_request(&mut s).await else {
        return;
    };
    hits.lock()
        .unwrap()
        .entry(worker.clone())
        .or_default()
        .push(std::time::Instant::now());
    let respond = |status: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match worker.as_str() {
        "storm" | "storm2" => {
            let _ = s
                .write_all(respond("503 Service Unavailable", "", "upstream overloaded").as_bytes())
                .await;
        }
        "ratelimit" => {
            let _ = s
                .write_all(
                    respond(
                        "429 Too Many Requests",
                        "retry-after: 1\r\n",
                        r#"{"error":"slow down"}"#,
                    )
                    .as_bytes(),
                )
                .await;
        }
        "timeout" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        "drip" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n")
                .await;
            for _ in 0..50 {
                if s.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        "badjson" => {
            let _ = s
                .write_all(respond("200 OK", "", "this is not json").as_bytes())
                .await;
        }
        "huge" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n")
                .await;
            let zeros = vec![b'0'; 64 * 1024];
            for _ in 0..1600 {
                if s.write_all(&zeros).await.is_err() {
                    return;
                }
            }
        }
        "reset" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"output\":")
                .await;
            let _ = s.set_zero_linger();
            drop(s);
        }
        "redirect" => {
            let _ = s
                .write_all(respond("302 Found", "location: /elsewhere\r\n", "").as_bytes())
                .await;
        }
        _ => {
            let _ = s
                .write_all(respond("404 Not Found", "", "").as_bytes())
                .await;
        }
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_fault_is_a_readable_recorded_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits: Hits = Arc::default();
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve_fault(s, h.clone()));
        }
    });
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let d = TestDaemon::start(&format!("http://{addr}/"), |c| {
        c.worker_timeout = 1;
        c.max_response_bytes = 1024 * 1024;
        c.worker_urls = vec![crewd::config::WorkerUrl {
            name: "refused".into(),
            url: format!("http://127.0.0.1:{dead}/refused"),
        }];
    })
    .await;
    let before = rss_kib();
    let faults = [
        "storm", "timeout", "drip", "badjson", "huge", "reset", "redirect", "refused",
    ];
    let mut tasks: Vec<_> = faults
        .iter()
        .map(|f| json!({"id": f, "worker": f, "remainingAttempts": 1}))
        .collect();
    tasks.push(
        json!({"id": "limited", "worker": "ratelimit", "workgroup": "api", "remainingAttempts": 1}),
    );
    tasks.push(json!({"id": "storm2", "worker": "storm2", "remainingAttempts": 3, "errorDelayInSeconds": 1}));
    let (s, v) = d
        .post("/task_groups", json!({"id": "g", "tasks": tasks}))
        .await;
    assert_eq!(s, 201, "{v}");
    let expect = [
        ("storm", "HTTP 503"),
        ("timeout", "timed out"),
        ("drip", "timed out"),
        ("badjson", "not a worker response"),
        ("huge", "limit"),
        ("reset", "connection reset"),
        ("redirect", "redirects are not followed"),
        ("refused", "refused"),
    ];
    for (id, needle) in expect {
        let t = d.wait_task(id, 20, |t| t["status"] == "failed").await;
        let msg = t["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!msg.is_empty() && msg.contains(needle), "{id}: {msg:?}");
        assert!(msg.len() < 4096, "{id}: the message is bounded");
        eprintln!("{id}: {msg}");
    }
    // A rate limit burns nothing and pauses the workgroup.
    let t = d
        .wait_task("limited", 10, |t| {
            t["attemptLog"][0]["outcome"] == "rateLimited" && t["busyExecuting"] == false
        })
        .await;
    assert_eq!(t["remainingAttempts"], 1);
    assert!(t["errors"].as_array().unwrap().is_empty());
    // No hot retry loop: each retry waits out the error delay.
    d.wait_task("storm2", 20, |t| t["status"] == "failed").await;
    let times = hits
        .lock()
        .unwrap()
        .get("storm2")
        .cloned()
        .unwrap_or_default();
    assert_eq!(times.len(), 3, "three attempts, no more");
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "memory grew by {grown} KiB: a body was buffered whole"
    );
    d.stop().await;
}
