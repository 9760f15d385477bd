//! Load: many stream clients (half of which never read) while one large
//! group runs. The daemon keeps dispatching, lagging clients are told to
//! resync, memory stays bounded. CI runs a small variant; the full one is
//! `CREW_LOAD_CLIENTS=1000 CREW_LOAD_TASKS=100000 cargo test --release -p crewd --test load -- --nocapture`.

mod common;

use common::{echo, TestDaemon, TestWorkers};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_stream_clients_do_not_stall_a_large_group() {
    let clients = env_or("CREW_LOAD_CLIENTS", 200);
    let tasks = env_or("CREW_LOAD_TASKS", 10_000);
    let w = TestWorkers::start(echo()).await;
    let d = TestDaemon::start(&w.base_url, |c| c.max_in_flight = 512).await;
    let rss_before = rss_mib();
    let ws_url = format!("{}/api/v1/events", d.url.replace("http://", "ws://"));
    let addr: std::net::SocketAddr = d.url.trim_start_matches("http://").parse().unwrap();

    // Half the clients read everything; half never read (tiny buffers).
    let read_events = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    let mut sleepers = Vec::new();
    for i in 0..clients {
        if i % 2 == 0 {
            let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.clone())
                .await
                .unwrap();
            let n = read_events.clone();
            readers.push(tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if matches!(m, Message::Text(_)) {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        } else {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.set_recv_buffer_size(4096).unwrap();
            let stream = sock.connect(addr).await.unwrap();
            let (ws, _) = tokio_tungstenite::client_async(
                ws_url.clone(),
                tokio_tungstenite::MaybeTlsStream::Plain(stream),
            )
            .await
            .unwrap();
            sleepers.push(ws);
        }
    }

    let started = Instant::now();
    let batch: Vec<Value> = (0..tasks)
        .map(|i| json!({"id": format!("t{i}"), "worker": "w"}))
        .collect();
    let (s, v) = d
        .post("/task_groups", json!({"id": "big", "tasks": batch}))
        .await;
    assert_eq!(s, 201, "{v}");
    d.wait_group_complete("big", 60 + tasks as u64 / 200).await;
    let elapsed = started.elapsed();

    // Every sleeper, once it reads, is told to resync (or was dropped).
    let mut resynced = 0;
    for mut ws in sleepers {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    if t.contains("\"type\":\"resync\"") {
                        resynced += 1;
                        break;
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(None) | Ok(Some(Err(_))) => {
                    resynced += 1;
                    break;
                }
                Err(_) => panic!("a client that never read was neither resynced nor dropped"),
            }
        }
    }
    let rss_after = rss_mib();
    eprintln!(
        "{clients} clients, {tasks} tasks: done in {:.1} s ({:.0} tasks/s); {} events read by readers; {resynced} lagging clients resynced or dropped; RSS {rss_before} -> {rss_after} MiB",
        elapsed.as_secs_f64(),
        tasks as f64 / elapsed.as_secs_f64(),
        read_events.load(Ordering::Relaxed),
    );
    assert_eq!(resynced, clients / 2);
    // Readers that fall behind on a loaded machine are resynced too; what
    // matters is that they were served and that dispatch never waited.
    assert!(read_events.load(Ordering::Relaxed) >= tasks);
    // Bounded by the clients (queues, socket buffers, both ends live in
    // this process), not by the number of tasks or events.
    let bound = 256 + 2 * clients as u64;
    assert!(
        rss_after.saturating_sub(rss_before) < bound,
        "memory grew from {rss_before} to {rss_after} MiB (bound {bound} MiB)"
    );
    for r in readers {
        r.abort();
    }
    d.stop().await;
}
