//! API errors: every one is JSON `{"error": "..."}` with a status that says
//! whose fault it is. A client's mistake is never a 500.

use crate::engine::EngineError;
use crate::storage::StorageError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use crew_core::wire::ErrorBody;
use crew_core::RuleError;

/// An error answer: a status and a message for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `error` field of the body.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request cannot be read (malformed JSON, bad query).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 422: the request was read but breaks a rule or has wrong types.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 404 for a missing entity.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 404 for a missing task group.
    pub fn group_not_found(id: &str) -> Self {
        RuleError::group_not_found(id).into()
    }

    /// 404 for a missing task.
    pub fn task_not_found(id: &str) -> Self {
        RuleError::task_not_found(id).into()
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 503: storage or the engine cannot serve now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500: a bug on our side (never a client's mistake).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        let status = match &e {
            RuleError::NotFound { .. } => StatusCode::NOT_FOUND,
            RuleError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RuleError::Conflict(_) => StatusCode::CONFLICT,
            RuleError::Store(_) => {
                tracing::warn!(error = %e, "storage failure behind a rule");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rule(r) => r.into(),
            EngineError::Unavailable(_) | EngineError::ShuttingDown => {
                tracing::warn!(error = %e, "command not applied");
                ApiError::unavailable(e.to_string())
            }
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        tracing::warn!(error = %e, "read failed");
        ApiError::unavailable(format!("storage unavailable: {e}"))
    }
}

impl From<crew_core::StoreError> for ApiError {
    fn from(e: crew_core::StoreError) -> Self {
        RuleError::Store(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crew_core::StoreError;

    #[test]
    fn rule_errors_map_to_statuses() {
        let cases = [
            (RuleError::task_not_found("t"), StatusCode::NOT_FOUND),
            (
                RuleError::Invalid("x".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (RuleError::Conflict("x".into()), StatusCode::CONFLICT),
            (
                RuleError::Store(StoreError("disk".into())),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(EngineError::Rule(e)).status, status);
        }
        assert_eq!(
            ApiError::from(EngineError::ShuttingDown).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ApiError::from(EngineError::Unavailable("disk full".into())).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ApiError::from(StorageError::Read("x".into())).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn responses_are_json() {
        let res = ApiError::not_found("task \"t\" not found").into_response();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        let v: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(v.error, "task \"t\" not found");
        let res = ApiError::new(StatusCode::UNAUTHORIZED, "no").into_response();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
