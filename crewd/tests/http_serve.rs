//! The daemon's HTTP server on a real socket: a client that never finishes
//! a request's head or body is cut off, one that does is served, and
//! shutdown does not wait for idle connections.

use axum::routing::get;
use axum::Router;
use crewd::http::Deadlines;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// `GET /` answers `hello`; `POST /` answers its body's length.
fn app() -> Router {
    Router::new().route(
        "/",
        get(|| async { "hello" })
            .post(|body: axum::body::Bytes| async move { body.len().to_string() }),
    )
}

/// A server within `deadlines`; it stops when the sender is used or dropped.
async fn server(
    deadlines: Deadlines,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(crewd::http::serve(listener, app(), deadlines, async {
        let _ = stopped.await;
    }));
    (addr, stop, served)
}

fn within(secs: u64) -> Deadlines {
    Deadlines {
        head: Duration::from_secs(secs),
        body_idle: Duration::from_secs(secs),
        drain: Duration::from_secs(secs),
    }
}

/// Sends `bytes`, then reads until the server closes the connection (or
/// 10 s pass): what came back, and how long it took.
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let started = Instant::now();
    let mut buf = vec![];
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    (String::from_utf8_lossy(&buf).to_string(), started.elapsed())
}

/// Headers sent in part and never finished held the connection for ever:
/// now it is closed once the deadline passes. A whole request is served.
#[tokio::test]
async fn an_unfinished_request_head_is_cut_off() {
    let (addr, _stop, _) = server(within(1)).await;
    let (_, waited) = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1").await;
    assert!(waited < Duration::from_secs(5), "held for {waited:?}");
    let (answer, _) = exchange(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
        "{answer}"
    );
}

/// A body announced and never sent held the connection for ever: its
/// reading now fails once nothing more came for the deadline.
#[tokio::test]
async fn a_body_that_stops_coming_is_cut_off() {
    let (addr, _stop, _) = server(within(1)).await;
    let (answer, waited) = exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabcd",
    )
    .await;
    assert!(
        waited < Duration::from_secs(5),
        "held for {waited:?}: {answer}"
    );
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (answer, _) = exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\nabcd",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with('4'),
        "{answer}"
    );
}

/// Shutdown stops accepting and returns, an idle kept-alive connection
/// notwithstanding.
#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    let (addr, stop, served) = server(Deadlines::default()).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("shutdown waited for an idle connection")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

/// A client trickling a body (a byte within each body deadline) held
/// shutdown until it gave up: it is dropped once the drain runs out.
#[tokio::test]
async fn shutdown_drops_a_trickling_request_after_the_drain() {
    let deadlines = Deadlines {
        drain: Duration::from_secs(1),
        ..Deadlines::default()
    };
    let (addr, stop, served) = server(deadlines).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if slow.write_all(b"c").await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop.send(());
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("shutdown waited for the trickling request")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    trickle.abort();
}
