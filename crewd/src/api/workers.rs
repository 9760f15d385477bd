//! Workgroup and worker routes.

use super::error::ApiError;
use super::extract::{JsonBody, OptionalJson, PathParams};
use super::openapi as doc;
use super::{read, ApiState};
use crate::engine::{Actor, Op};
use axum::extract::State;
use axum::Json;
use crew_core::dag::check_safe_name;
use crew_core::wire::{
    PauseRequest, WorkerLimit, WorkerLimitRequest, WorkerList, WorkgroupLimitRequest,
    WorkgroupList, WorkgroupView,
};
use crew_core::WorkgroupLimits;

/// Pause used when the request gives none: one hour.
pub const DEFAULT_PAUSE_SECS: f64 = 3600.0;
/// Longest pause an operator may set: 30 days.
pub const MAX_PAUSE_SECS: f64 = 30.0 * 24.0 * 3600.0;

/// Checks a pause duration: finite, positive, at most 30 days.
pub(crate) fn check_pause(seconds: Option<f64>) -> Result<f64, ApiError> {
    let s = seconds.unwrap_or(DEFAULT_PAUSE_SECS);
    if !s.is_finite() || s <= 0.0 || s > MAX_PAUSE_SECS {
        return Err(ApiError::unprocessable(format!(
            "seconds must be a number greater than 0 and at most {MAX_PAUSE_SECS} (30 days), got {}",
            crew_core::dag::fmt_number(s)
        )));
    }
    Ok(s)
}

async fn workgroup_view(state: &ApiState, name: String) -> Result<WorkgroupView, ApiError> {
    let in_flight = state
        .engine
        .workgroup_loads()
        .get(&name)
        .copied()
        .unwrap_or(0);
    // O(1): the stored record and the workgroup's counter, never its tasks
    // (pausing a 100k-task workgroup answers as fast as a small one).
    read(state, move |tx, _now| {
        Ok(WorkgroupView {
            in_flight,
            ..tx.workgroup_view(&name)?
        })
    })
    .await
}

/// `GET /api/v1/workgroups`
#[utoipa::path(
    get,
    path = "/api/v1/workgroups",
    tag = "workgroups",
    operation_id = "listWorkgroups",
    summary = "List the workgroups that have tasks or a pause",
    responses(
        (status = 200, description = "Every workgroup", body = WorkgroupList),
        (status = 401, response = doc::Unauthorized),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn list_workgroups(
    State(state): State<ApiState>,
) -> Result<Json<WorkgroupList>, ApiError> {
    let mut list = read(&state, |tx, now| Ok(tx.workgroups(now)?)).await?;
    // Calls in flight are the engine's view, not the store's.
    let loads = state.engine.workgroup_loads();
    for w in &mut list.workgroups {
        w.in_flight = loads.get(&w.workgroup.name).copied().unwrap_or(0);
    }
    Ok(Json(list))
}

/// `POST /api/v1/workgroup/:name/pause` with optional `{seconds}`.
#[utoipa::path(
    post,
    path = "/api/v1/workgroup/{name}/pause",
    tag = "workgroups",
    operation_id = "pauseWorkgroup",
    summary = "Pause a workgroup for a while (default one hour, at most 30 days)",
    params(
        ("name" = String, Path, description = "Workgroup name")
    ),
    request_body(content = Option<PauseRequest>, description = "Optional; an empty body pauses for one hour"),
    responses(
        (status = 200, description = "The workgroup as changed", body = WorkgroupView),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::Unprocessable),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn pause_workgroup(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(name): PathParams<String>,
    OptionalJson(body): OptionalJson<PauseRequest>,
) -> Result<Json<WorkgroupView>, ApiError> {
    check_safe_name("workgroup", &name)?;
    let seconds = check_pause(body.seconds)?;
    state
        .engine
        .execute(
            &actor,
            Op::PauseWorkgroup {
                name: name.clone(),
                seconds,
            },
        )
        .await?;
    workgroup_view(&state, name).await.map(Json)
}

/// `POST /api/v1/workgroup/:name/resume`
#[utoipa::path(
    post,
    path = "/api/v1/workgroup/{name}/resume",
    tag = "workgroups",
    operation_id = "resumeWorkgroup",
    summary = "Resume a paused workgroup",
    params(
        ("name" = String, Path, description = "Workgroup name")
    ),
    responses(
        (status = 200, description = "The workgroup as changed", body = WorkgroupView),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 422, response = doc::Unprocessable),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn resume_workgroup(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(name): PathParams<String>,
) -> Result<Json<WorkgroupView>, ApiError> {
    check_safe_name("workgroup", &name)?;
    state
        .engine
        .execute(&actor, Op::ResumeWorkgroup { name: name.clone() })
        .await?;
    workgroup_view(&state, name).await.map(Json)
}

/// `PUT /api/v1/workgroup/:name/limit` with `{maxConcurrency, maxRate,
/// burst}`: replaces the workgroup's limits (`null` or absent: no such
/// limit), durably, before answering.
#[utoipa::path(
    put,
    path = "/api/v1/workgroup/{name}/limit",
    tag = "workgroups",
    operation_id = "setWorkgroupLimit",
    summary = "Set or remove a workgroup's concurrency and rate limits",
    params(
        ("name" = String, Path, description = "Workgroup name")
    ),
    request_body = WorkgroupLimitRequest,
    responses(
        (status = 200, description = "The workgroup as changed", body = WorkgroupView),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::Unprocessable),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn set_workgroup_limit(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<WorkgroupLimitRequest>,
) -> Result<Json<WorkgroupView>, ApiError> {
    check_safe_name("workgroup", &name)?;
    let limits = WorkgroupLimits::from(body);
    limits.validate().map_err(ApiError::unprocessable)?;
    state
        .engine
        .execute(
            &actor,
            Op::SetWorkgroupLimits {
                name: name.clone(),
                limits,
            },
        )
        .await?;
    workgroup_view(&state, name).await.map(Json)
}

/// `GET /api/v1/workers`
#[utoipa::path(
    get,
    path = "/api/v1/workers",
    tag = "workers",
    operation_id = "listWorkers",
    summary = "List known workers with their limits and load",
    responses(
        (status = 200, description = "Every known worker", body = WorkerList),
        (status = 401, response = doc::Unauthorized)
    )
)]
pub(super) async fn list_workers(State(state): State<ApiState>) -> Json<WorkerList> {
    Json(WorkerList {
        workers: state.engine.worker_loads(),
    })
}

/// `PUT /api/v1/worker/:name/limit` with `{maxConcurrency}` (`null`: none).
#[utoipa::path(
    put,
    path = "/api/v1/worker/{name}/limit",
    tag = "workers",
    operation_id = "setWorkerLimit",
    summary = "Set or remove a worker's concurrency limit",
    params(
        ("name" = String, Path, description = "Worker name")
    ),
    request_body = WorkerLimitRequest,
    responses(
        (status = 200, description = "The worker's limit and load", body = WorkerLimit),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::Unprocessable),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn set_limit(
    State(state): State<ApiState>,
    actor: Actor,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<WorkerLimitRequest>,
) -> Result<Json<WorkerLimit>, ApiError> {
    check_safe_name("worker", &name)?;
    state
        .engine
        .execute(
            &actor,
            Op::SetWorkerLimit {
                worker: name.clone(),
                max_concurrency: body.max_concurrency,
            },
        )
        .await?;
    // The limit is what was just committed; the load is the engine's view.
    let in_flight = state
        .engine
        .worker_loads()
        .into_iter()
        .find(|w| w.worker == name)
        .map_or(0, |w| w.in_flight);
    Ok(Json(WorkerLimit {
        worker: name,
        max_concurrency: body.max_concurrency,
        in_flight,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_bounds() {
        assert_eq!(check_pause(None).unwrap(), DEFAULT_PAUSE_SECS);
        assert_eq!(check_pause(Some(1.5)).unwrap(), 1.5);
        assert_eq!(check_pause(Some(MAX_PAUSE_SECS)).unwrap(), MAX_PAUSE_SECS);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_PAUSE_SECS + 1.0] {
            assert!(check_pause(Some(bad)).is_err(), "{bad}");
        }
    }
}
