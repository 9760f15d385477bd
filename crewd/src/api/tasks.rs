//! Task routes.

use super::error::ApiError;
use super::extract::{decode, JsonBody, ListQuery, OptionalJson, PathParams, RawJson};
use super::groups::action;
use super::openapi as doc;
use super::{created, read, ApiState};
use crate::engine::{Actor, Op};
use crate::storage::TaskQuery;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use crew_core::object_only::ObjectOnly;
use crew_core::wire::{ActionResult, AttemptsRequest, NewTask, NewTasks, TaskList, TaskPatch};
use crew_core::{GraphRead, Task};

/// Reads a task with its status, 404 when it is missing or, with `group`,
/// when it belongs to another group.
async fn task(state: &ApiState, group: Option<String>, id: String) -> Result<Task, ApiError> {
    read(state, move |tx, now| {
        let Some(t) = tx.task_with_status(&id, now)? else {
            return Err(match &group {
                Some(g) if tx.group(g)?.is_none() => ApiError::group_not_found(g),
                _ => ApiError::task_not_found(&id),
            });
        };
        match &group {
            Some(g) if t.task_group_id != *g => {
                if tx.group(g)?.is_none() {
                    Err(ApiError::group_not_found(g))
                } else {
                    Err(ApiError::not_found(format!(
                        "task {id:?} not found in task group {g:?}"
                    )))
                }
            }
            _ => Ok(t),
        }
    })
    .await
}

/// `GET /api/v1/task_group/:id/tasks?page&pageSize&search&skipCompleted&status`
#[utoipa::path(
    get,
    path = "/api/v1/task_group/{id}/tasks",
    tag = "tasks",
    operation_id = "listTasks",
    summary = "List a group's tasks, one page at a time",
    params(
        ("id" = String, Path, description = "Task group id"),
        doc::TaskListParams
    ),
    responses(
        (status = 200, description = "One page of tasks, each with its status", body = TaskList),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn list(
    State(state): State<ApiState>,
    PathParams(group): PathParams<String>,
    q: ListQuery,
) -> Result<Json<TaskList>, ApiError> {
    read(&state, move |tx, now| {
        if tx.group(&group)?.is_none() {
            return Err(ApiError::group_not_found(&group));
        }
        let query = TaskQuery {
            page: q.page,
            page_size: q.page_size,
            search: q.search,
            skip_completed: q.skip_completed,
            status: q.status,
        };
        Ok(tx.list_tasks(&group, &query, now)?)
    })
    .await
    .map(Json)
}

/// `POST /api/v1/task_group/:id/tasks`: one task object (crew-go; answers
/// 201 with the task) or an array created atomically as one DAG (answers
/// 201 with the array).
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{id}/tasks",
    tag = "tasks",
    operation_id = "createTasks",
    summary = "Create one task, or an array of tasks atomically as one DAG",
    params(
        ("id" = String, Path, description = "Task group id")
    ),
    request_body = NewTasks,
    responses(
        (status = 201, description = "The task, or the array of tasks, as created", body = doc::CreatedTasks),
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
pub(super) async fn create(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(group): PathParams<String>,
    body: RawJson,
) -> Result<Response, ApiError> {
    let (tasks, many) = match body.first_byte() {
        Some(b'[') => {
            let tasks = decode::<Vec<ObjectOnly<NewTask>>>(&body.0)?;
            (tasks.into_iter().map(|t| t.0).collect(), true)
        }
        Some(b'{') => (vec![decode::<NewTask>(&body.0)?], false),
        None => {
            return Err(ApiError::bad_request(
                "the request body is empty; a task object or an array of tasks is expected",
            ))
        }
        Some(_) => {
            // Let serde say what is wrong (malformed JSON, or a scalar).
            decode::<serde_json::Value>(&body.0)?;
            return Err(ApiError::unprocessable(
                "the request body must be a task object or an array of tasks",
            ));
        }
    };
    if tasks.is_empty() {
        return Err(ApiError::unprocessable("the array of tasks is empty"));
    }
    for (i, t) in tasks.iter().enumerate() {
        if let Some(g) = &t.task_group_id {
            if *g != group {
                let at = if many {
                    format!("[{i}].")
                } else {
                    String::new()
                };
                return Err(ApiError::unprocessable(format!(
                    "{at}taskGroupId {g:?} does not match the path's task group {group:?}"
                )));
            }
        }
    }
    let out = state
        .engine
        .execute(
            &actor,
            Op::CreateTasks {
                group: group.clone(),
                tasks,
            },
        )
        .await?;
    let ids = out.created_task_ids;
    let as_committed = out.created_task;
    let mut created_tasks = read(&state, move |tx, now| {
        let mut v = Vec::with_capacity(ids.len());
        for id in &ids {
            // A task may be gone already (deleted right after): skip it.
            if let Some(t) = tx.task_with_status(id, now)? {
                v.push(t);
            }
        }
        Ok(v)
    })
    .await?;
    if many {
        Ok(created(created_tasks))
    } else {
        // Deleted before it could be read back: the create stands, and the
        // answer is the task as it was committed (a 404 hid that it was).
        match created_tasks.pop().or(as_committed.map(|t| *t)) {
            Some(t) => Ok(created(t)),
            None => Err(ApiError::internal("the created task is missing")),
        }
    }
}

/// `GET /api/v1/task_group/:gid/task/:tid`
#[utoipa::path(
    get,
    path = "/api/v1/task_group/{gid}/task/{tid}",
    tag = "tasks",
    operation_id = "getTask",
    summary = "Get a task of a group, with its status",
    params(
        ("gid" = String, Path, description = "Task group id"),
        ("tid" = String, Path, description = "Task id")
    ),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn get_in_group(
    State(state): State<ApiState>,
    PathParams((gid, tid)): PathParams<(String, String)>,
) -> Result<Json<Task>, ApiError> {
    task(&state, Some(gid), tid).await.map(Json)
}

/// `GET /api/v1/task/:tid`
#[utoipa::path(
    get,
    path = "/api/v1/task/{tid}",
    tag = "tasks",
    operation_id = "getTaskById",
    summary = "Get a task by id alone, with its status",
    params(
        ("tid" = String, Path, description = "Task id")
    ),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 401, response = doc::Unauthorized),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn get_by_id(
    State(state): State<ApiState>,
    PathParams(tid): PathParams<String>,
) -> Result<Json<Task>, ApiError> {
    task(&state, None, tid).await.map(Json)
}

/// `PUT /api/v1/task_group/:gid/task/:tid`
#[utoipa::path(
    put,
    path = "/api/v1/task_group/{gid}/task/{tid}",
    tag = "tasks",
    operation_id = "updateTask",
    summary = "Change a task (read-only fields are accepted when unchanged)",
    params(
        ("gid" = String, Path, description = "Task group id"),
        ("tid" = String, Path, description = "Task id")
    ),
    request_body = TaskPatch,
    responses(
        (status = 200, description = "The task as changed", body = Task),
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
pub(super) async fn update(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams((gid, tid)): PathParams<(String, String)>,
    JsonBody(patch): JsonBody<TaskPatch>,
) -> Result<Json<Task>, ApiError> {
    if let Some(id) = &patch.id {
        if *id != tid {
            return Err(ApiError::unprocessable(format!(
                "the body's id {id:?} does not match the path's {tid:?}"
            )));
        }
    }
    if let Some(g) = &patch.task_group_id {
        if *g != gid {
            return Err(ApiError::unprocessable(format!(
                "the body's taskGroupId {g:?} does not match the path's {gid:?}"
            )));
        }
    }
    task(&state, Some(gid.clone()), tid.clone()).await?;
    state
        .engine
        .execute_in_group(
            &actor,
            &gid,
            Op::UpdateTask {
                id: tid.clone(),
                patch: Box::new(patch),
            },
        )
        .await?;
    task(&state, Some(gid), tid).await.map(Json)
}

/// `DELETE /api/v1/task_group/:gid/task/:tid` (with its descendants).
#[utoipa::path(
    delete,
    path = "/api/v1/task_group/{gid}/task/{tid}",
    tag = "tasks",
    operation_id = "deleteTask",
    summary = "Delete a task and its descendants",
    params(
        ("gid" = String, Path, description = "Task group id"),
        ("tid" = String, Path, description = "Task id")
    ),
    responses(
        (status = 200, description = "How many tasks were deleted", body = ActionResult),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn delete(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams((gid, tid)): PathParams<(String, String)>,
) -> Result<Json<ActionResult>, ApiError> {
    act(
        &state,
        &actor,
        gid,
        &tid,
        Op::DeleteTask { id: tid.clone() },
    )
    .await
}

/// Runs an operator action on a task of `gid` (404 when it is not there)
/// and answers how many tasks it touched.
async fn act(
    state: &ApiState,
    actor: &Actor,
    gid: String,
    tid: &str,
    op: Op,
) -> Result<Json<ActionResult>, ApiError> {
    task(state, Some(gid.clone()), tid.to_string()).await?;
    Ok(action(
        state.engine.execute_in_group(actor, &gid, op).await?,
    ))
}

/// Runs an operator action on a task of `gid` and answers the task as the
/// action left it.
async fn act_then_show(
    state: &ApiState,
    actor: &Actor,
    gid: String,
    tid: String,
    op: Op,
) -> Result<Json<Task>, ApiError> {
    task(state, Some(gid.clone()), tid.clone()).await?;
    state.engine.execute_in_group(actor, &gid, op).await?;
    task(state, Some(gid), tid).await.map(Json)
}

/// `POST /api/v1/task_group/:gid/task/:tid/reset`
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{gid}/task/{tid}/reset",
    tag = "tasks",
    operation_id = "resetTask",
    summary = "Reset a task and its descendants to run again",
    params(
        ("gid" = String, Path, description = "Task group id"),
        ("tid" = String, Path, description = "Task id")
    ),
    request_body(content = Option<AttemptsRequest>, description = "Optional; an empty body means the defaults"),
    responses(
        (status = 200, description = "How many tasks were reset", body = ActionResult),
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
    PathParams((gid, tid)): PathParams<(String, String)>,
    OptionalJson(body): OptionalJson<AttemptsRequest>,
) -> Result<Json<ActionResult>, ApiError> {
    let op = Op::ResetTask {
        id: tid.clone(),
        attempts: body.remaining_attempts,
    };
    act(&state, &actor, gid, &tid, op).await
}

/// `POST /api/v1/task_group/:gid/task/:tid/retry`
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{gid}/task/{tid}/retry",
    tag = "tasks",
    operation_id = "retryTask",
    summary = "Give an incomplete task new attempts",
    params(
        ("gid" = String, Path, description = "Task group id"),
        ("tid" = String, Path, description = "Task id")
    ),
    request_body(content = Option<AttemptsRequest>, description = "Optional; an empty body means the defaults"),
    responses(
        (status = 200, description = "How many tasks were retried", body = ActionResult),
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
pub(super) async fn retry(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams((gid, tid)): PathParams<(String, String)>,
    OptionalJson(body): OptionalJson<AttemptsRequest>,
) -> Result<Json<ActionResult>, ApiError> {
    let op = Op::RetryTask {
        id: tid.clone(),
        attempts: body.remaining_attempts,
    };
    act(&state, &actor, gid, &tid, op).await
}

async fn set_paused(
    state: ApiState,
    actor: Actor,
    gid: String,
    tid: String,
    paused: bool,
) -> Result<Json<Task>, ApiError> {
    let op = Op::SetTaskPaused {
        id: tid.clone(),
        paused,
    };
    act_then_show(&state, &actor, gid, tid, op).await
}

/// `POST /api/v1/task_group/:gid/task/:tid/pause`
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{gid}/task/{tid}/pause",
    tag = "tasks",
    operation_id = "pauseTask",
    summary = "Pause a task (a running attempt finishes first)",
    params(
        ("gid" = String, Path, description = "Task group id"),
        ("tid" = String, Path, description = "Task id")
    ),
    responses(
        (status = 200, description = "The task as changed", body = Task),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn pause(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams((gid, tid)): PathParams<(String, String)>,
) -> Result<Json<Task>, ApiError> {
    set_paused(state, actor, gid, tid, true).await
}

/// `POST /api/v1/task_group/:gid/task/:tid/cancel`: abandons the call in
/// flight; the attempt is recorded as cancelled and the task paused.
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{gid}/task/{tid}/cancel",
    tag = "tasks",
    operation_id = "cancelTask",
    summary = "Cancel a task's call in flight (recorded as cancelled, the task paused)",
    params(
        ("gid" = String, Path, description = "Task group id"),
        ("tid" = String, Path, description = "Task id")
    ),
    responses(
        (status = 200, description = "The task as changed", body = Task),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn cancel(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams((gid, tid)): PathParams<(String, String)>,
) -> Result<Json<Task>, ApiError> {
    let op = Op::CancelTask { id: tid.clone() };
    act_then_show(&state, &actor, gid, tid, op).await
}

/// `POST /api/v1/task_group/:gid/task/:tid/resume`
#[utoipa::path(
    post,
    path = "/api/v1/task_group/{gid}/task/{tid}/resume",
    tag = "tasks",
    operation_id = "resumeTask",
    summary = "Resume a task",
    params(
        ("gid" = String, Path, description = "Task group id"),
        ("tid" = String, Path, description = "Task id")
    ),
    responses(
        (status = 200, description = "The task as changed", body = Task),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn resume(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams((gid, tid)): PathParams<(String, String)>,
) -> Result<Json<Task>, ApiError> {
    set_paused(state, actor, gid, tid, false).await
}
