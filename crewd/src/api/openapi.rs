//! The OpenAPI 3.1 description of the API, served at
//! `GET /api/v1/openapi.json`.
//!
//! It is generated from the code: each handler carries a
//! `#[utoipa::path(...)]` annotation, the wire types derive
//! `utoipa::ToSchema` (crew-core's `openapi` feature), and the router and
//! the document are built from the same `routes!(...)` list in
//! [`super::router`], so a route cannot be served without being described.
//! `crewd/tests/openapi.rs` checks both directions against a real daemon.

use crew_core::wire::{
    ChildTask, ErrorBody, Event, GroupSort, ParentPayload, StreamMessage, WorkerPayload,
    WorkerResponse,
};
use crew_core::{Task, TaskStatus};
use std::sync::LazyLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToResponse, ToSchema};

/// The name of the bearer-token security scheme in the document.
pub const BEARER: &str = "bearer";

/// The document's root: what no handler says (info, tags, the security
/// scheme, shared responses and the schemas only the stream and the worker
/// protocol use). Paths are added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Crew API",
        description = "Crew, a task orchestrator whose workers are HTTP webhooks: task groups, \
            tasks (a DAG per group), workgroups, workers and a WebSocket event stream. Paths are \
            crew-go's v1 paths. Every error is JSON `{\"error\": \"...\"}`. When the daemon has \
            API tokens, every route but `GET /healthz` and `GET /livez` needs `Authorization: Bearer <token>`; \
            read-only tokens may only read (GET) and follow the stream.",
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    components(
        schemas(ErrorBody, StreamMessage, Event, WorkerPayload, ParentPayload, WorkerResponse, ChildTask, GroupSort),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unprocessable,
            Unavailable
        )
    ),
    tags(
        (name = "task groups", description = "Groups of tasks: one body of work each."),
        (name = "tasks", description = "Tasks: units of work, each run by one webhook worker."),
        (name = "workgroups", description = "Rate-limit domains shared by tasks across groups."),
        (name = "workers", description = "Webhook workers: their load and concurrency limits."),
        (name = "stream", description = "WebSocket event streams."),
        (name = "daemon", description = "Identity, metrics, health and this document."),
    )
)]
pub struct ApiDoc;

/// Adds the bearer-token scheme the document's `security` refers to.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(
            "One of the daemon's API tokens (`--token`, or named tokens with an admin or \
             read-only scope). Not needed when the daemon runs without tokens."
                .into(),
        );
        components.add_security_scheme(BEARER, SecurityScheme::Http(http));
    }
}

// ---- Shared error responses ---------------------------------------------------
//
// Each is `{"error": "..."}` ([`ErrorBody`]); a handler lists the ones it can
// answer (see `error.rs`, `extract.rs` and `auth.rs` for where they come from).

/// The request cannot be read: malformed JSON, an empty body where one is
/// required, a bad query parameter or path.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct BadRequest(ErrorBody);

/// Auth is on and the request carries no valid `Authorization: Bearer`
/// token (the answer has `WWW-Authenticate: Bearer`).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Unauthorized(ErrorBody);

/// The token is read-only and this is an action, or the request is a
/// cross-origin write from a browser.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Forbidden(ErrorBody);

/// The task group or task does not exist.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct NotFound(ErrorBody);

/// The action conflicts with the current state: an id that already
/// exists, or a task whose attempt is running (or, to cancel, is not).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Conflict(ErrorBody);

/// The request body is larger than the daemon's limit.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct PayloadTooLarge(ErrorBody);

/// The request body is not JSON (`Content-Type` other than
/// `application/json` or `*+json`).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct UnsupportedMediaType(ErrorBody);

/// The body was read but breaks a rule or has wrong types, missing or
/// unknown fields; the message names the field (`tasks[2].parentIds`).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Unprocessable(ErrorBody);

/// Storage or the engine cannot serve now (disk trouble, shutting down);
/// retrying later may succeed.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Unavailable(ErrorBody);

// ---- Query parameters ------------------------------------------------------------
//
// The listings parse their query by hand ([`super::extract::ListQuery`]);
// these structs only describe it. Unknown parameters are ignored.

/// Query of `GET /api/v1/task_groups`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct GroupListParams {
    /// 1-based page (default 1; 0 is read as 1).
    #[param(minimum = 0)]
    page: Option<u64>,
    /// Groups per page (default 100, clamped to 1..=10000).
    #[param(rename = "pageSize", minimum = 0)]
    page_size: Option<u64>,
    /// Case-insensitive substring of the group's name or id.
    search: Option<String>,
    /// Order: `newest` (default), `name`, `progress` (least complete
    /// first) or `failed` (most failed tasks first); ties go by id.
    sort: Option<GroupSort>,
}

/// Query of `GET /api/v1/task_group/{id}/tasks`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TaskListParams {
    /// 1-based page (default 1; 0 is read as 1).
    #[param(minimum = 0)]
    page: Option<u64>,
    /// Tasks per page (default 100, clamped to 1..=10000).
    #[param(rename = "pageSize", minimum = 0)]
    page_size: Option<u64>,
    /// Case-insensitive substring of the task's name, id or worker.
    search: Option<String>,
    /// Only incomplete tasks (`true`/`false`; present without a value means
    /// `true`).
    #[param(rename = "skipCompleted")]
    skip_completed: Option<bool>,
    /// Only tasks with this derived status.
    status: Option<TaskStatus>,
}

// ---- Bodies with no wire type of their own ----------------------------------------

/// The answer of `GET /healthz`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: String,
}

/// What `POST /api/v1/task_group/{id}/tasks` answers: the task when one
/// object was sent, the array of tasks when an array was.
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum CreatedTasks {
    /// An array was sent.
    Many(Vec<Task>),
    /// One task object was sent.
    One(Box<Task>),
}

/// The whole document as JSON, built once.
pub fn document_json() -> &'static str {
    static DOC: LazyLock<String> = LazyLock::new(|| {
        super::document().to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "encoding the OpenAPI document failed");
            String::from("{}")
        })
    });
    &DOC
}
