//! Serving the daemon's router over HTTP/1.1, as `axum::serve` does, plus
//! what it leaves out: deadlines for a request's head and for each piece
//! of its body. Without them a client that opens connections and sends
//! headers a byte at a time (or never finishes them), or announces a body
//! it never sends, holds each connection for ever, until the daemon runs
//! out of them.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How long a client may keep the server waiting.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// Longest a client may take to send a request's head (its line and
    /// headers), and to start the next one on a kept-alive connection.
    pub head: Duration,
    /// Longest a request's body may go without sending anything more:
    /// reading it then fails (a 400 `{error}`) and frees the connection.
    pub body_idle: Duration,
    /// Longest shutdown waits for requests being served: past it, their
    /// connections are dropped (a client trickling a body must not hold
    /// the daemon up, nor keep it dispatching meanwhile).
    pub drain: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            head: Duration::from_secs(30),
            body_idle: Duration::from_secs(30),
            drain: Duration::from_secs(5),
        }
    }
}

/// Serves `app` on `listener` within `deadlines`, until `shutdown`
/// completes, then stops accepting, lets each connection finish the request
/// it is serving (for at most `deadlines.drain`), and returns once every
/// connection is closed or dropped. Upgraded connections (the event
/// stream) leave the server when upgraded: they end on their own.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    deadlines: Deadlines,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(RequestBodyTimeoutLayer::new(deadlines.body_idle));
    // Dropped to tell connections to finish; its receivers, one per
    // connection, are all gone once they have.
    let (stop_tx, stop_rx) = watch::channel(());
    let (closed_tx, closed_rx) = watch::channel(());
    // Dropped when the drain runs out: connections still open go.
    let (abort_tx, abort_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        let mut abort = abort_rx.clone();
        let closed = closed_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(deadlines.head);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = abort.changed() => {}
                    }
                }
            }
            drop(closed);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(closed_rx);
    if tokio::time::timeout(deadlines.drain, closed_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still unfinished {:?} after shutdown began: dropped",
            deadlines.drain
        );
        drop(abort_tx);
    }
    Ok(())
}
