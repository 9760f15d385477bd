//! The event stream client: subscribes to `/api/v1/events`, forwards every
//! message, and reconnects by itself with a capped backoff, resuming from
//! the last sequence it saw.

use crate::app::msg::{ConnEvent, Msg};
use crew_core::wire::{Event, StreamMessage};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// First retry delay.
pub const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How often the console pings the daemon: its pong shows the connection
/// is alive even when no event comes (the daemon pings only every 20 s).
pub const PING_EVERY: Duration = Duration::from_secs(5);
/// How long the stream may stay silent (no event, ping or pong) before the
/// connection is taken for lost: a frozen daemon or a dead network path
/// never closes it, and the header showed CONNECTED for minutes.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(15);

/// How the stream checks that the daemon is still there.
#[derive(Clone, Copy, Debug)]
struct Liveness {
    /// Ping after this long.
    ping_every: Duration,
    /// Give up after this long without a frame.
    silence: Duration,
}

/// The delay before retry number `attempt` (1-based): doubling, capped.
pub fn backoff(attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    BACKOFF_START.saturating_mul(factor).min(BACKOFF_MAX)
}

/// Where to resume after message `m`, having resumed after `since`: its
/// sequence number, the highest seen. A `resync` restarts from its own: the
/// daemon's log may be behind what the console saw (a store replaced or
/// restored from a backup), and resuming above it would be refused again.
pub fn resume_point(since: Option<u64>, m: &StreamMessage) -> Option<u64> {
    match m.event {
        Event::Resync { .. } => Some(m.seq),
        _ if m.seq > 0 => Some(since.map_or(m.seq, |s| s.max(m.seq))),
        _ => since,
    }
}

/// The stream URL for a daemon at `base`, resuming after `since`.
pub fn events_url(base: &str, since: Option<u64>) -> String {
    let base = base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        format!("ws://{base}")
    };
    match since {
        Some(s) => format!("{ws}/api/v1/events?since={s}"),
        None => format!("{ws}/api/v1/events"),
    }
}

/// Runs until the receiving side is gone.
pub async fn run(base: String, token: Option<String>, tx: mpsc::Sender<Msg>) {
    let live = Liveness {
        ping_every: PING_EVERY,
        silence: SILENCE_LIMIT,
    };
    run_with(base, token, tx, live).await
}

/// [`run`], checking the connection's life as `live` says.
async fn run_with(base: String, token: Option<String>, tx: mpsc::Sender<Msg>, live: Liveness) {
    let mut since: Option<u64> = None;
    let mut attempt = 0u32;
    loop {
        let (error, refused) = match connect(&base, token.as_deref(), since).await {
            Ok(mut ws) => {
                attempt = 0;
                let resumed = since.is_some();
                if tx
                    .send(Msg::Conn(ConnEvent::Connected { resumed }))
                    .await
                    .is_err()
                {
                    return;
                }
                let mut heard = Instant::now();
                let mut ping = tokio::time::interval_at(heard + live.ping_every, live.ping_every);
                ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    let deadline = heard + live.silence;
                    let next = tokio::select! {
                        next = ws.next() => next,
                        _ = ping.tick() => {
                            // Bounded too: a peer that reads nothing fills
                            // the socket's buffer, and the send waits.
                            let sent = tokio::time::timeout_at(
                                deadline,
                                ws.send(Message::Ping(Default::default())),
                            )
                            .await;
                            match sent {
                                Ok(Ok(())) => continue,
                                Ok(Err(e)) => break (e.to_string(), false),
                                Err(_) => break (silent(live.silence), false),
                            }
                        }
                        _ = tokio::time::sleep_until(deadline) => {
                            break (silent(live.silence), false)
                        }
                    };
                    heard = Instant::now();
                    match next {
                        Some(Ok(Message::Text(text))) => {
                            match serde_json::from_str::<StreamMessage>(text.as_str()) {
                                Ok(m) => {
                                    since = resume_point(since, &m);
                                    if tx.send(Msg::Stream(m)).await.is_err() {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    let msg = format!("unreadable stream message: {e}");
                                    if tx.send(Msg::Internal(msg)).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                        Some(Ok(Message::Close(_))) | None => {
                            break ("closed by the daemon".to_string(), false)
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break (e.to_string(), false),
                    }
                }
            }
            Err(e) => (e.message, e.refused),
        };
        attempt = attempt.saturating_add(1);
        // A refused token stays refused until someone changes it: no
        // need to knock often.
        let delay = if refused {
            BACKOFF_MAX
        } else {
            backoff(attempt)
        };
        let ev = ConnEvent::Disconnected {
            error,
            attempt,
            retry_in_ms: delay.as_millis() as u64,
            refused,
        };
        if tx.send(Msg::Conn(ev)).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

/// Why a silent connection was given up.
fn silent(limit: Duration) -> String {
    format!(
        "no word from the daemon for {}",
        crate::theme::fmt_duration(limit.as_secs_f64())
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why the stream could not connect.
struct ConnectError {
    message: String,
    /// The daemon answered the handshake with 401 or 403.
    refused: bool,
}

impl From<String> for ConnectError {
    fn from(message: String) -> Self {
        ConnectError {
            message,
            refused: false,
        }
    }
}

async fn connect(base: &str, token: Option<&str>, since: Option<u64>) -> Result<Ws, ConnectError> {
    let url = events_url(base, since);
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(t) = token {
        let v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|e| e.to_string())?;
        req.headers_mut().insert("Authorization", v);
    }
    let fut = tokio_tungstenite::connect_async(req);
    match tokio::time::timeout(Duration::from_secs(10), fut).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(ConnectError {
            refused: is_refusal(&e),
            message: e.to_string(),
        }),
        Err(_) => Err(String::from("timed out connecting").into()),
    }
}

/// Whether the handshake's answer was 401 or 403.
fn is_refusal(e: &tokio_tungstenite::tungstenite::Error) -> bool {
    use tokio_tungstenite::tungstenite::http::StatusCode;
    matches!(e, tokio_tungstenite::tungstenite::Error::Http(r)
        if r.status() == StatusCode::UNAUTHORIZED || r.status() == StatusCode::FORBIDDEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resume_point_follows_the_log_and_a_resync() {
        let at = |seq, event| StreamMessage {
            seq,
            at: None,
            event,
        };
        let resync = |seq| {
            at(
                seq,
                Event::Resync {
                    reason: "since is ahead of the daemon's log".into(),
                },
            )
        };
        let other = |seq| {
            at(
                seq,
                Event::WorkgroupUpdated {
                    workgroup: crew_core::Workgroup::new("api"),
                },
            )
        };
        assert_eq!(resume_point(None, &other(5)), Some(5));
        assert_eq!(resume_point(Some(7), &other(5)), Some(7));
        // A restored store's log ends below what was seen: start over there.
        assert_eq!(resume_point(Some(1_000), &resync(42)), Some(42));
        assert_eq!(resume_point(Some(42), &other(43)), Some(43));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(10), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn urls() {
        assert_eq!(events_url("http://h:1/", None), "ws://h:1/api/v1/events");
        assert_eq!(
            events_url("https://h", Some(7)),
            "wss://h/api/v1/events?since=7"
        );
        assert_eq!(
            events_url("https://crew.example.com:8443/", None),
            "wss://crew.example.com:8443/api/v1/events"
        );
        assert_eq!(events_url("h:8090", None), "ws://h:8090/api/v1/events");
    }

    /// Quick timings, for tests.
    const QUICK: Liveness = Liveness {
        ping_every: Duration::from_millis(50),
        silence: Duration::from_millis(300),
    };

    /// A daemon on a local port whose one stream client `serve` is handed
    /// after the handshake; the console's stream runs against it.
    async fn against<F, Fut>(serve: F) -> (mpsc::Receiver<Msg>, tokio::task::JoinHandle<()>)
    where
        F: FnOnce(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut
            + Send
            + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let port = listener.local_addr().expect("local address").port();
        tokio::spawn(async move {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
                return;
            };
            serve(ws).await;
        });
        let (tx, rx) = mpsc::channel(16);
        let client = tokio::spawn(run_with(
            format!("http://127.0.0.1:{port}"),
            None,
            tx,
            QUICK,
        ));
        (rx, client)
    }

    /// The next connection change the stream reports within `within`.
    async fn next_conn(rx: &mut mpsc::Receiver<Msg>, within: Duration) -> Option<ConnEvent> {
        let wait = async {
            loop {
                match rx.recv().await? {
                    Msg::Conn(c) => return Some(c),
                    _ => continue,
                }
            }
        };
        tokio::time::timeout(within, wait).await.ok().flatten()
    }

    /// A daemon that stops answering (frozen, or its host gone) without
    /// closing the connection is taken for lost once the stream has been
    /// silent too long: it reconnects, and the header says so (it showed
    /// CONNECTED for as long as the socket stayed open).
    #[tokio::test]
    async fn a_silent_daemon_is_taken_for_lost() {
        let (mut rx, client) = against(|ws| async move {
            // Holds the connection open and never reads: no pong.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(ws);
        })
        .await;
        let first = next_conn(&mut rx, Duration::from_secs(5)).await;
        assert_eq!(first, Some(ConnEvent::Connected { resumed: false }));
        let lost = next_conn(&mut rx, Duration::from_secs(5)).await;
        client.abort();
        match lost {
            Some(ConnEvent::Disconnected { error, .. }) => {
                assert!(error.contains("no word from the daemon"), "{error}")
            }
            other => panic!("still connected: {other:?}"),
        }
    }

    /// A daemon that sends no event but answers the console's pings stays
    /// connected, well past the silence limit.
    #[tokio::test]
    async fn a_daemon_that_answers_pings_stays_connected() {
        let (mut rx, client) = against(|mut ws| async move {
            // Reading answers pings.
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        let first = next_conn(&mut rx, Duration::from_secs(5)).await;
        assert_eq!(first, Some(ConnEvent::Connected { resumed: false }));
        let after = next_conn(&mut rx, QUICK.silence * 4).await;
        client.abort();
        assert_eq!(after, None);
    }

    /// An `https://` daemon is spoken to over TLS: the first byte the
    /// server receives opens a TLS handshake record (a build without TLS
    /// support connects and hangs up without sending anything).
    #[tokio::test]
    async fn https_servers_get_a_tls_handshake() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let port = listener.local_addr().expect("local address").port();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.ok()?;
            let mut first = [0u8; 1];
            let n = sock.read(&mut first).await.ok()?;
            (n == 1).then_some(first[0])
        });
        let result = connect(&format!("https://127.0.0.1:{port}"), None, None).await;
        assert!(result.is_err(), "no TLS server listens there");
        let first = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server saw the client")
            .expect("server task");
        assert_eq!(first, Some(0x16), "a TLS handshake record");
    }
}
