//! Task group routes.

use super::error::ApiError;
use super::extract::{GroupSortQuery, JsonBody, ListQuery, OptionalJson, PathParams};
use super::openapi as doc;
use super::{created, read, ApiState};
use crate::engine::{Actor, Op, OpOutcome};
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use crew_core::wire::{
    ActionResult, AttemptsRequest, BulkRequest, BulkResult, NewTaskGroup, Progress, TaskGroupList,
    TaskGroupPatch, TaskGroupView,
};

/// Reads a group's view, 404 when it is gone.
pub(super) async fn view(state: &ApiState, id: String) -> Result<TaskGroupView, ApiError> {
    read(state, move |tx, now| {
        tx.group_view(&id, now)?
            .ok_or_else(|| ApiError::group_not_found(&id))
    })
    .await
}

/// The answer to a delete, reset or retry.
pub(super) fn action(outcome: OpOutcome) -> Json<ActionResult> {
    Json(ActionResult {
        deleted: outcome.deleted,
        updated: outcome.updated,
    })
}

/// `GET /api/v1/task_groups?page&pageSize&search&sort`
#[utoipa::path(
    get,
    path = "/api/v1/task_groups",
    tag = "task groups",
    operation_id = "listTaskGroups",
    summary = "List task groups, one page at a time",
    params(
        doc::GroupListParams
    ),
    responses(
        (status = 200, description = "One page of groups", body = TaskGroupList),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn list(
    State(state): State<ApiState>,
    q: ListQuery,
    GroupSortQuery(sort): GroupSortQuery,
) -> Result<Json<TaskGroupList>, ApiError> {
    read(&state, move |tx, now| {
        Ok(tx.list_groups(q.page, q.page_size, q.search.as_deref(), sort, now)?)
    })
    .await
    .map(Json)
}

/// `POST /api/v1/task_groups` (optionally with its tasks) -> 201.
#[utoipa::path(
    post,
    path = "/api/v1/task_groups",
    tag = "task groups",
    operation_id = "createTaskGroup",
    summary = "Create a task group, optionally with its tasks",
    request_body = NewTaskGroup,
    responses(
        (status = 201, description = "The group as created", body = TaskGroupView),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 409, response = doc::Conflict),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::Unprocessable),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn create(
    State(state): State<ApiState>,
    actor: Actor,
    JsonBody(body): JsonBody<NewTaskGroup>,
) -> Result<Response, ApiError> {
    let out = state
        .engine
        .execute(&actor, Op::CreateGroup(Box::new(body)))
        .await?;
    let id = out
        .created_group_id
        .ok_or_else(|| ApiError::internal("the engine created no group"))?;
    Ok(created(view(&state, id).await?))
}

/// `GET /api/v1/task_group/:id`
#[utoipa::path(
    get,
    path = "/api/v1/task_group/{id}",
    tag = "task groups",
    operation_id = "getTaskGroup",
    summary = "Get a task group with its counts",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    responses(
        (status = 200, description = "The group", body = TaskGroupView),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn get_one(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<TaskGroupView>, ApiError> {
    view(&state, id).await.map(Json)
}

/// `PUT /api/v1/task_group/:id` (rename, pause, resume).
#[utoipa::path(
    put,
    path = "/api/v1/task_group/{id}",
    tag = "task groups",
    operation_id = "updateTaskGroup",
    summary = "Rename, pause, resume or reschedule a task group",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    request_body = TaskGroupPatch,
    responses(
        (status = 200, description = "The group as changed", body = TaskGroupView),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::Unprocessable),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn update(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(id): PathParams<String>,
    JsonBody(patch): JsonBody<TaskGroupPatch>,
) -> Result<Json<TaskGroupView>, ApiError> {
    if let Some(body_id) = &patch.id {
        if *body_id != id {
            return Err(ApiError::unprocessable(format!(
                "the body's id {body_id:?} does not match the path's {id:?}"
            )));
        }
    }
    state
        .engine
        .execute(
            &actor,
            Op::UpdateGroup {
                id: id.clone(),
                patch,
            },
        )
        .await?;
    view(&state, id).await.map(Json)
}

/// `DELETE /api/v1/task_group/:id`
#[utoipa::path(
    delete,
    path = "/api/v1/task_group/{id}",
    tag = "task groups",
    operation_id = "deleteTaskGroup",
    summary = "Delete a task group and all its tasks",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    responses(
        (status = 200, description = "How many tasks were deleted", body = ActionResult),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn delete(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(id): PathParams<String>,
) -> Result<Json<ActionResult>, ApiError> {
    let out = state.engine.execute(&actor, Op::DeleteGroup { id }).await?;
    Ok(action(out))
}

async fn set_paused(
    state: ApiState,
    actor: Actor,
    id: String,
    paused: bool,
) -> Result<Json<TaskGroupView>, ApiError> {
    state
        .engine
        .execute(
            &actor,
            Op::SetGroupPaused {
                id: id.clone(),
                paused,
            },
        )
        .await?;
    view(&state, id).await.map(Json)
}

/// `POST /api/v1/task_group/:id/pause`
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{id}/pause",
    tag = "task groups",
    operation_id = "pauseTaskGroup",
    summary = "Pause a task group",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    responses(
        (status = 200, description = "The group as changed", body = TaskGroupView),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn pause(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(id): PathParams<String>,
) -> Result<Json<TaskGroupView>, ApiError> {
    set_paused(state, actor, id, true).await
}

/// `POST /api/v1/task_group/:id/resume`
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{id}/resume",
    tag = "task groups",
    operation_id = "resumeTaskGroup",
    summary = "Resume a task group",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    responses(
        (status = 200, description = "The group as changed", body = TaskGroupView),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn resume(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(id): PathParams<String>,
) -> Result<Json<TaskGroupView>, ApiError> {
    set_paused(state, actor, id, false).await
}

/// `POST /api/v1/task_group/:id/reset` with optional `{remainingAttempts}`.
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{id}/reset",
    tag = "task groups",
    operation_id = "resetTaskGroup",
    summary = "Reset a task group: non-seed tasks deleted, seeds made to run again",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    request_body(content = Option<AttemptsRequest>, description = "Optional; an empty body means the defaults"),
    responses(
        (status = 200, description = "How many tasks were deleted and reset", body = ActionResult),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::Unprocessable),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn reset(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(id): PathParams<String>,
    OptionalJson(body): OptionalJson<AttemptsRequest>,
) -> Result<Json<ActionResult>, ApiError> {
    let out = state
        .engine
        .execute(
            &actor,
            Op::ResetGroup {
                id,
                attempts: body.remaining_attempts,
            },
        )
        .await?;
    Ok(action(out))
}

/// `POST /api/v1/task_group/:id/retry` with optional `{remainingAttempts}`.
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{id}/retry",
    tag = "task groups",
    operation_id = "retryTaskGroup",
    summary = "Give every incomplete, idle task of a group new attempts",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    request_body(content = Option<AttemptsRequest>, description = "Optional; an empty body means the defaults"),
    responses(
        (status = 200, description = "How many tasks were retried", body = ActionResult),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::Unprocessable),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn retry(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(id): PathParams<String>,
    OptionalJson(body): OptionalJson<AttemptsRequest>,
) -> Result<Json<ActionResult>, ApiError> {
    let out = state
        .engine
        .execute(
            &actor,
            Op::RetryGroup {
                id,
                attempts: body.remaining_attempts,
            },
        )
        .await?;
    Ok(action(out))
}

/// `POST /api/v1/task_group/:id/bulk`: one action over every task a filter
/// matches, in one transaction (all or nothing), or only counted with
/// `dryRun`.
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{id}/bulk",
    tag = "task groups",
    operation_id = "bulkTaskAction",
    summary = "Apply one action to every task a filter matches, atomically (or count them with dryRun)",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    request_body = BulkRequest,
    responses(
        (status = 200, description = "What the action matched and changed", body = BulkResult),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::Unprocessable),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn bulk(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<BulkRequest>,
) -> Result<Json<BulkResult>, ApiError> {
    let dry_run = body.dry_run;
    let out = state
        .engine
        .execute(
            &actor,
            Op::Bulk {
                group: id,
                request: Box::new(body),
            },
        )
        .await?;
    Ok(Json(out.bulk.unwrap_or(BulkResult {
        matched: 0,
        deleted: out.deleted,
        updated: out.updated,
        dry_run,
    })))
}

/// `GET /api/v1/task_group/:id/progress`
#[utoipa::path(
    get,
    path = "/api/v1/task_group/{id}/progress",
    tag = "task groups",
    operation_id = "getTaskGroupProgress",
    summary = "Get a task group's completed share",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    responses(
        (status = 200, description = "The completed share", body = Progress),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn progress(
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Progress>, ApiError> {
    let v = view(&state, id).await?;
    Ok(Json(Progress {
        completed_percent: v.completed_percent,
    }))
}
