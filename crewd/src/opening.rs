//! Answering while the store opens. Opening applies what the journal holds
//! and may upgrade the file: seconds for a store of millions of tasks. A
//! supervisor whose liveness probe gets no answer meanwhile restarts the
//! daemon, which then begins the same work again, and again. So until the
//! store is open, `/livez` answers 200 and every other path 503 with a
//! JSON error; then the listener goes to the daemon's own server.

use crate::api::error::ApiError;
use anyhow::Context;
use axum::routing::get;
use axum::Router;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// How long a connection made while the store opened may keep the
/// listener from the daemon's server once it is open: probes' connections
/// close after their answer, and one held open longer is cut.
const HANDOVER_WAIT: Duration = Duration::from_secs(1);

/// The listener, shared with the server that answers while the store
/// opens, so that it can be had back when that server stops.
struct Shared(Arc<TcpListener>);

impl axum::serve::Listener for Shared {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok(connection) => return connection,
                // Out of file descriptors, or a connection reset before it
                // was taken: wait a little rather than spin.
                Err(e) => {
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// What answers while the store opens.
fn router() -> Router {
    Router::new()
        .route("/livez", get(crate::api::livez))
        .fallback(|| async {
            ApiError::unavailable("opening the store (applying its journal or upgrading it)")
        })
}

/// Runs `open` on a blocking thread while `listener` answers as this
/// module says; gives the listener back with what `open` returned.
pub async fn answer_while<T: Send + 'static>(
    listener: TcpListener,
    open: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<(TcpListener, T)> {
    let shared = Arc::new(listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(
        axum::serve(Shared(shared.clone()), router())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let opened = tokio::task::spawn_blocking(open).await;
    let _ = stop.send(());
    if tokio::time::timeout(HANDOVER_WAIT, &mut server)
        .await
        .is_err()
    {
        server.abort();
        let _ = server.await;
    }
    let listener = Arc::try_unwrap(shared)
        .map_err(|_| anyhow::anyhow!("the listener is still held by the opening server"))?;
    Ok((listener, opened.context("opening the store panicked")?))
}
