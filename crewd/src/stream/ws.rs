//! The WebSocket endpoints: Crew's resumable stream and crew-go's.
//!
//! `GET /api/v1/events?group=<id>&since=<seq>`: with `since`, every stored
//! event after it is replayed first, then the connection goes live with no
//! gap and no duplicate (live events at or below the last replayed sequence
//! are skipped). A `since` older than the kept tail, or ahead of the log
//! (a store replaced or restored from a backup), gets `resync`.
//!
//! `GET /api/v1/task_group/:id/stream/:token`: crew-go's path and message
//! shape (`{"type": "create"|"update"|"delete", "task"|"taskGroup": …}`).

use super::hub::{concerns, EventHub, Subscription};
use crate::api::auth::Tokens;
use crate::storage::Store;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use crew_core::wire::{ErrorBody, Event, StreamMessage};
use crew_core::GraphRead;
use futures_util::SinkExt;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::time::Duration;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Events queued per client before it is cut off and told to resync.
pub const CLIENT_QUEUE: usize = 8192;
/// Most queued events written to a client before one flush: a batch's
/// events go out in a few writes instead of one system call each.
const WRITE_TOGETHER: usize = 256;
/// Largest message a client may send us (we expect only pings and closes).
const MAX_INCOMING_MESSAGE: usize = 64 * 1024;
/// Read buffer per client. Clients send us only pings and closes; the
/// default (128 KiB) is zeroed again on every read of every socket, which
/// cost a third of the daemon's CPU with a hundred clients attached.
const READ_BUFFER: usize = 4 * 1024;
/// Bytes buffered for a client's socket before writes wait.
const WRITE_BUFFER: usize = 128 * 1024;
/// Room in the socket's write buffer beyond the largest event, for the
/// frames queued before it.
const WRITE_BUFFER_SLACK: usize = 4 * 1024 * 1024;
/// How often idle connections are pinged; two missed pongs close them.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Events read from the store per replay page.
const REPLAY_PAGE: usize = 1000;
/// Close code sent to a client cut off for falling behind.
const CLOSE_LAGGED: u16 = 4000;
/// Close code sent when the daemon shuts down (RFC 6455 "going away").
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code sent when the stored log cannot be read (RFC 6455
/// "internal error"): the client may try again.
const CLOSE_INTERNAL: u16 = 1011;

/// A close frame with its code and reason, so that a client can tell a
/// shutdown from a failure or a cut for falling behind.
fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// What the stream endpoints need.
#[derive(Clone)]
pub struct StreamState {
    /// The store, for replay.
    pub store: Store,
    /// Live events.
    pub hub: EventHub,
    /// The API tokens (none: auth off). Any valid token may stream,
    /// read-only ones included.
    pub tokens: Tokens,
    /// Where connections are served once upgraded ([`super::runtime`]).
    pub runtime: tokio::runtime::Handle,
    /// The largest event the daemon can produce: a task whose input is as
    /// large as a request may be and whose output as large as a worker's
    /// answer may be. A socket's write buffer takes one such message, or
    /// the event would cut every client off, again at each resume.
    pub max_event_bytes: usize,
}

/// The stream routes with their OpenAPI description (merged into the
/// API's document by [`crate::api::document`]). Add a route here the way
/// [`crate::api::rest_routes`] says, never with a plain `.route(...)`.
pub fn routes() -> OpenApiRouter<StreamState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(crew_go_stream))
}

/// The stream routes, to merge into the daemon's router.
pub fn router(state: StreamState) -> Router {
    let (router, _) = routes().split_for_parts();
    router.with_state(state)
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Only this task group's events (events about no group, such as
    /// workgroup changes and `resync`, are always sent).
    group: Option<String>,
    /// Replay every stored event after this sequence number first, then go
    /// live with no gap and no duplicate. Older than the kept events, or
    /// ahead of the log (a store replaced or restored from a backup), it
    /// gets `resync` first.
    #[param(minimum = 0)]
    since: Option<u64>,
}

fn error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: msg.to_string(),
        }),
    )
        .into_response()
}

/// 401 unless the bearer header (or crew-go's path token) is a valid token
/// of any scope; 403 for a foreign `Origin`. Runs before the handshake.
fn admit(
    state: &StreamState,
    headers: &HeaderMap,
    path_token: Option<&str>,
) -> Result<(), Box<Response>> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(origin)
            .trim_end_matches('/');
        if origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "cross-origin stream requests are refused",
            )));
        }
    }
    if !state.tokens.enabled() {
        return Ok(());
    }
    let ok = state.tokens.identify_bearer(headers).is_some()
        || path_token.is_some_and(|p| state.tokens.identify(p.as_bytes()).is_some());
    if ok {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token",
        )))
    }
}

/// Buffer sizes and limits of a client's socket. Writes wait once
/// [`WRITE_BUFFER`] bytes are buffered, so the cap is reached only by one
/// message larger than the rest: the largest event must fit.
fn limits(ws: WebSocketUpgrade, max_event_bytes: usize) -> WebSocketUpgrade {
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_INCOMING_MESSAGE)
        .max_frame_size(MAX_INCOMING_MESSAGE)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(max_event_bytes.saturating_add(WRITE_BUFFER_SLACK))
}

/// Each message is one JSON text frame, a `StreamMessage`
/// (`#/components/schemas/StreamMessage`): `seq`, `at`, and the event's
/// `type` (`task.created`, `group.updated`, `resync`...) with the changed
/// entity whole. Any valid token may follow the stream, read-only ones
/// included; it is checked before the handshake.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "stream",
    operation_id = "events",
    summary = "WebSocket stream of every change, resumable with since",
    params(EventsQuery),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now a WebSocket; each text message is a StreamMessage (JSON)", body = StreamMessage),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden)
    )
)]
async fn events(
    State(state): State<StreamState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if let Err(r) = admit(&state, &headers, None) {
        return *r;
    }
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    // Subscribe before reading the log, so nothing falls between the two.
    let sub = state.hub.subscribe(q.group.clone(), CLIENT_QUEUE);
    let runtime = state.runtime.clone();
    limits(ws, state.max_event_bytes).on_upgrade(move |socket| async move {
        let _ = runtime
            .spawn(follow(socket, state, sub, q.group, q.since))
            .await;
    })
}

async fn send_json(socket: &mut WebSocket, m: &StreamMessage) -> bool {
    match serde_json::to_string(m) {
        Ok(text) => socket
            .send(Message::Text(Utf8Bytes::from(text)))
            .await
            .is_ok(),
        Err(_) => true,
    }
}

fn resync(seq: u64, reason: &str) -> StreamMessage {
    StreamMessage {
        seq,
        at: None,
        event: Event::Resync {
            reason: reason.to_string(),
        },
    }
}

/// Replays the log after `since` (if given), then forwards live events.
async fn follow(
    mut socket: WebSocket,
    state: StreamState,
    mut sub: Subscription,
    group: Option<String>,
    since: Option<u64>,
) {
    let mut last = 0u64;
    if let Some(since) = since {
        last = since;
        loop {
            let page = match state
                .store
                .read()
                .and_then(|r| r.events_after(last, REPLAY_PAGE))
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("stream replay failed: {e}");
                    let _ = socket
                        .send(close(CLOSE_INTERNAL, "reading the event log failed"))
                        .await;
                    return;
                }
            };
            // Part of what the client missed is gone, or the client saw a
            // history this log does not have (the store was replaced, or
            // restored from a backup): it must refetch. Live events go on
            // from this log's last one; above `since`, they would have been
            // held back until the log caught up.
            let why = if last > page.last_seq {
                Some("since is ahead of the daemon's log: the store was replaced or restored")
            } else if page.oldest_kept > last.saturating_add(1) && last < page.last_seq {
                Some("since is older than the kept events")
            } else {
                None
            };
            if let Some(why) = why {
                if !send_json(&mut socket, &resync(page.last_seq, why)).await {
                    return;
                }
                last = page.last_seq;
                break;
            }
            let n = page.messages.len();
            for m in page.messages {
                last = last.max(m.seq);
                if concerns(&group, &m) && !send_json(&mut socket, &m).await {
                    return;
                }
            }
            if n < REPLAY_PAGE {
                break;
            }
        }
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut missed_pongs = 0u32;
    loop {
        tokio::select! {
            live = sub.recv() => match live {
                Some(batch) => {
                    // This commit's events and those queued behind them, in
                    // one write.
                    let mut next = Some(batch);
                    let mut written = 0;
                    while let Some(batch) = next.take() {
                        for m in batch.iter() {
                            if m.message.seq > last && concerns(&group, &m.message) {
                                last = m.message.seq;
                                if socket.feed(Message::Text(m.json.clone())).await.is_err() {
                                    return;
                                }
                                written += 1;
                            }
                        }
                        if written < WRITE_TOGETHER {
                            next = sub.try_recv();
                        }
                    }
                    if socket.flush().await.is_err() {
                        return;
                    }
                }
                None => {
                    if sub.lagged.load(Ordering::Acquire) {
                        // Cut off for falling behind: say so, then resume
                        // live from here; the client refetches a snapshot.
                        if !send_json(&mut socket, &resync(last, "the client fell behind")).await {
                            return;
                        }
                        sub = state.hub.subscribe(group.clone(), CLIENT_QUEUE);
                    } else {
                        let _ = socket.send(close(CLOSE_GOING_AWAY, "the daemon is shutting down")).await;
                        return;
                    }
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Pong(_))) => missed_pongs = 0,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                missed_pongs += 1;
                if missed_pongs > 2 {
                    tracing::debug!("closing a stream client that stopped answering pings");
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// crew-go's stream: `{"type": "create"|"update"|"delete", "task"|"taskGroup": ...}`
/// text frames for one group. The token may be given in the path (`-` for
/// none) or as `Authorization: Bearer`.
#[utoipa::path(
    get,
    path = "/api/v1/task_group/{id}/stream/{token}",
    tag = "stream",
    operation_id = "crewGoStream",
    summary = "crew-go's WebSocket stream of one group's changes",
    params(
        ("id" = String, Path, description = "Task group id"),
        ("token" = String, Path, description = "An API token, or `-` to send it as a bearer header instead")
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now a WebSocket; each text message is a JSON object with `type` (create, update, delete) and the `task` or `taskGroup`"),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 404, response = crate::api::openapi::NotFound),
        (status = 503, response = crate::api::openapi::Unavailable)
    )
)]
async fn crew_go_stream(
    State(state): State<StreamState>,
    Path((group, token)): Path<(String, String)>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let path_token = if token == "-" {
        None
    } else {
        Some(token.as_str())
    };
    if let Err(r) = admit(&state, &headers, path_token) {
        return *r;
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    // Like every `/task_group/:id` path: a group that does not exist is a
    // 404, not a stream that never says anything.
    let found = match state.store.read() {
        Ok(r) => r.group(&group).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match found {
        Ok(Some(_)) => {}
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("task group {group:?} not found"),
            )
        }
        Err(e) => {
            tracing::warn!("stream: cannot read the store: {e}");
            return error(StatusCode::SERVICE_UNAVAILABLE, "cannot read the store");
        }
    }
    let sub = state.hub.subscribe(Some(group.clone()), CLIENT_QUEUE);
    let runtime = state.runtime.clone();
    limits(ws, state.max_event_bytes).on_upgrade(move |socket| async move {
        let _ = runtime.spawn(follow_crew_go(socket, sub, group)).await;
    })
}

/// crew-go's shape for one event, or `None` for events it had no shape for.
pub fn crew_go_message(event: &Event) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match event {
        Event::TaskCreated { task } => json!({"type": "create", "task": task}),
        Event::TaskUpdated { task } => json!({"type": "update", "task": task}),
        Event::TaskDeleted { task } => json!({"type": "delete", "task": task}),
        Event::GroupCreated { task_group } => json!({"type": "create", "taskGroup": task_group}),
        Event::GroupUpdated { task_group } => json!({"type": "update", "taskGroup": task_group}),
        Event::GroupDeleted { task_group } => json!({"type": "delete", "taskGroup": task_group}),
        _ => return None,
    })
}

async fn follow_crew_go(mut socket: WebSocket, mut sub: Subscription, group: String) {
    let group = Some(group);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            live = sub.recv() => match live {
                Some(batch) => {
                    for m in batch.iter().filter(|m| concerns(&group, &m.message)) {
                        if let Some(v) = crew_go_message(&m.message.event) {
                            if socket.send(Message::Text(Utf8Bytes::from(v.to_string()))).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                None => {
                    let frame = if sub.lagged.load(Ordering::Acquire) {
                        close(CLOSE_LAGGED, "client fell behind")
                    } else {
                        close(CLOSE_GOING_AWAY, "the daemon is shutting down")
                    };
                    let _ = socket.send(frame).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}
