//! The REST API (axum), on crew-go's v1 paths with proper status codes.
//!
//! Reads open a storage snapshot ([`Store::read`]); writes go through the
//! engine ([`EngineHandle::execute`]), which answers after the durable
//! commit, and the result is then read back. Every error is JSON
//! `{"error": "..."}` ([`crew_core::wire::ErrorBody`]): unknown routes,
//! wrong methods, malformed bodies and rejections from layers included.
//!
//! When tokens are configured, every route but `GET /healthz` and `GET /livez` needs
//! `Authorization: Bearer <token>`, compared in constant time; read-only
//! tokens may only read ([`auth`]). `GET /metrics` serves Prometheus
//! metrics ([`crate::metrics`]) under the same auth.

pub mod audit;
pub mod auth;
pub mod error;
pub mod extract;
mod groups;
pub mod openapi;
mod tasks;
mod workers;

use crate::engine::EngineHandle;
use crate::storage::{ReadTx, Store};
use crate::stream::hub::EventHub;
use auth::{Identity, Tokens};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use crew_core::wire::{GroupSort, StatusCounts, WhoAmI};
use crew_core::{TaskStatus, Timestamp};
use openapi as doc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// Where writes go.
    pub engine: EngineHandle,
    /// Where reads come from.
    pub store: Store,
    /// The tokens every route but `/healthz` and `/livez` requires (none: auth off).
    pub tokens: Tokens,
    /// The event hub, for the stream client count in metrics.
    pub hub: EventHub,
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// With `--demo`: set once seeding the demo group is over (done, or
    /// failed and logged). `/healthz` waits for it too, so that a console
    /// started with the demo finds the group at once.
    pub demo_seeded: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("tokens", &self.tokens)
            .field("max_request_bytes", &self.max_request_bytes)
            .finish_non_exhaustive()
    }
}

/// Every REST route with its handler: the one list both the router and the
/// OpenAPI document ([`document`]) are built from.
///
/// To add a route: annotate its handler with `#[utoipa::path(...)]`
/// (method, path with `{param}`s, params, request body, every response
/// with its status; see any handler here) and add it below with
/// `.routes(routes!(module::handler))`. Handlers that share a path go in
/// one `routes!` (it serves every listed method on every listed path, so
/// never list handlers of two paths together). Never register a route
/// with a plain `.route(...)`: it would be served undocumented, and
/// `tests/openapi.rs` fails on any route the document lacks.
pub fn rest_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::get_one, groups::update, groups::delete))
        .routes(routes!(groups::pause))
        .routes(routes!(groups::resume))
        .routes(routes!(groups::reset))
        .routes(routes!(groups::retry))
        .routes(routes!(groups::bulk))
        .routes(routes!(groups::progress))
        .routes(routes!(tasks::list, tasks::create))
        .routes(routes!(tasks::get_in_group, tasks::update, tasks::delete))
        .routes(routes!(tasks::reset))
        .routes(routes!(tasks::retry))
        .routes(routes!(tasks::pause))
        .routes(routes!(tasks::resume))
        .routes(routes!(tasks::cancel))
        .routes(routes!(tasks::get_by_id))
        .routes(routes!(workers::list_workgroups))
        .routes(routes!(workers::pause_workgroup))
        .routes(routes!(workers::resume_workgroup))
        .routes(routes!(workers::set_workgroup_limit))
        .routes(routes!(workers::list_workers))
        .routes(routes!(workers::set_limit))
        .routes(routes!(audit::list))
        .routes(routes!(whoami))
        .routes(routes!(openapi_json))
        .routes(routes!(metrics))
        .routes(routes!(healthz))
        .routes(routes!(livez))
}

/// The OpenAPI document of every route: the REST routes and the stream's.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = rest_routes().into_openapi();
    doc.merge(crate::stream::ws::routes().into_openapi());
    doc
}

/// The API's routes, with auth, the body limit, tracing and JSON errors.
/// Only layers and fallbacks here: routes go in [`rest_routes`].
pub fn router(state: ApiState) -> Router {
    let limit = state.max_request_bytes;
    let (api, _) = rest_routes().split_for_parts();
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let api = api
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(middleware::from_fn_with_state(state, auth::require_token));
    with_json_errors(api, limit).layer(TraceLayer::new_for_http())
}

/// Every error `router` answers becomes JSON `{error}`, axum's own
/// rejections (a path that is not UTF-8, a method not allowed) included:
/// for the API's routes and those served beside them (the stream's).
pub fn with_json_errors(router: Router, max_request_bytes: usize) -> Router {
    router.layer(middleware::from_fn_with_state(
        max_request_bytes,
        json_errors,
    ))
}

/// `GET /healthz`: no auth; 200 once the daemon has recovered its state
/// and dispatches (and, with `--demo`, seeded the demo group), 503 before
/// (a large store takes a moment).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "daemon",
    operation_id = "healthz",
    summary = "Health: ready once state is recovered; needs no token",
    security(()),
    responses(
        (status = 200, description = "The daemon is up and dispatching", body = inline(doc::Health)),
        (status = 503, response = doc::Unavailable)
    )
)]
async fn healthz(State(state): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.engine.is_ready() {
        return Err(ApiError::unavailable(
            "recovering state from the store; not dispatching yet",
        ));
    }
    let seeded = |s: &Arc<AtomicBool>| s.load(Ordering::Acquire);
    if !state.demo_seeded.as_ref().is_none_or(seeded) {
        return Err(ApiError::unavailable("seeding the demo group"));
    }
    Ok(livez().await)
}

/// `GET /livez`: no auth; 200 whenever the daemon answers HTTP, recovering
/// or not, and while its store opens ([`crate::opening`]). A supervisor's
/// liveness probe: `/healthz` says whether it is ready, and answers 503
/// while a large store is recovered.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "daemon",
    operation_id = "livez",
    summary = "Liveness: the daemon answers; needs no token",
    security(()),
    responses(
        (status = 200, description = "The daemon is running", body = inline(doc::Health)),
    )
)]
pub(crate) async fn livez() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /api/v1/whoami`: the caller's token name and scope.
#[utoipa::path(
    get,
    path = "/api/v1/whoami",
    tag = "daemon",
    operation_id = "whoami",
    summary = "The caller's token name and scope",
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, response = doc::Unauthorized)
    )
)]
async fn whoami(identity: Option<Extension<Identity>>) -> Json<WhoAmI> {
    let Extension(id) = identity.unwrap_or_else(|| Extension(Identity::anonymous()));
    Json(WhoAmI {
        name: id.name.to_string(),
        scope: id.scope,
    })
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "daemon",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, response = doc::Unauthorized),
        (status = 503, response = doc::Unavailable)
    )
)]
async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let (tasks, events_trimmed) = read(&state, |tx, now| {
        let mut tasks = StatusCounts::default();
        for g in tx
            .list_groups(1, 0, None, GroupSort::Newest, now)?
            .task_groups
        {
            for s in TaskStatus::ALL {
                *tasks.get_mut(s) += g.counts.get(s);
            }
        }
        let log = tx.events_after(u64::MAX, 0)?;
        Ok((tasks, log.oldest_kept.saturating_sub(1)))
    })
    .await?;
    let scrape = crate::metrics::Scrape {
        tasks,
        workers: state.engine.worker_loads(),
        stream_clients: state.hub.client_count() as u64,
        events_trimmed,
    };
    let text = state.engine.metrics().encode(scrape).map_err(|_| {
        tracing::error!("encoding metrics failed");
        ApiError::internal("encoding metrics failed")
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        )],
        text,
    )
        .into_response())
}

/// `GET /api/v1/openapi.json`: the document, under the same auth as the
/// other reads.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "daemon",
    operation_id = "openapi",
    summary = "This document: the API's OpenAPI 3.1 description",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json"),
        (status = 401, response = doc::Unauthorized)
    )
)]
async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        openapi::document_json(),
    )
        .into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no such route: {} {}",
        req.method(),
        crew_core::dag::truncate(req.uri().path(), 200)
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} is not allowed on {}",
            req.method(),
            crew_core::dag::truncate(req.uri().path(), 200)
        ),
    )
}

/// Turns any error response that is not JSON (from a layer or an axum
/// default) into `{"error": ...}`, keeping its status and headers.
async fn json_errors(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit).message
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string()
    } else {
        crew_core::dag::truncate(&text, 512)
    };
    let body = serde_json::to_vec(&crew_core::wire::ErrorBody { error: message })
        .unwrap_or_else(|_| br#"{"error":"request failed"}"#.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Runs a read on a storage snapshot, off the async workers.
pub(crate) async fn read<T, F>(state: &ApiState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&ReadTx, Timestamp) -> Result<T, ApiError> + Send + 'static,
{
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let tx = store.read()?;
        f(&tx, Timestamp::now())
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "a read task failed");
        Err(ApiError::internal("the read failed unexpectedly"))
    })
}

/// `201 Created` with a JSON body.
pub(crate) fn created<T: serde::Serialize>(body: T) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}
