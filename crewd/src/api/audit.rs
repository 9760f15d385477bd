//! `GET /api/v1/audit`: the operator actions the engine recorded, newest
//! first (see [`crew_core::wire::AuditEntry`]).

use super::error::ApiError;
use super::extract::parse_count;
use super::openapi as doc;
use super::{read, ApiState};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use crew_core::wire::AuditList;

/// Entries per page when the request names no `limit`.
pub const DEFAULT_AUDIT_LIMIT: usize = 100;
/// Most entries one page holds.
pub const MAX_AUDIT_LIMIT: usize = 1000;

/// The audit listing's parameters: `before` (an entry's `seq`: older
/// entries only), `limit`, and `search` (a case-insensitive substring of
/// the actor, action or target). Unknown parameters are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries with a smaller `seq`.
    pub before: Option<u64>,
    /// Clamped to `1..=MAX_AUDIT_LIMIT`.
    pub limit: usize,
    /// `None` when absent or blank.
    pub search: Option<String>,
}

impl AuditQuery {
    /// Parses a raw query string.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut q = AuditQuery {
            before: None,
            limit: DEFAULT_AUDIT_LIMIT,
            search: None,
        };
        let Some(query) = query else {
            return Ok(q);
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
        for (k, v) in pairs {
            match k.as_str() {
                "before" => q.before = Some(parse_count("before", &v)?),
                "limit" => {
                    let n = parse_count("limit", &v)?;
                    q.limit = usize::try_from(n)
                        .unwrap_or(MAX_AUDIT_LIMIT)
                        .clamp(1, MAX_AUDIT_LIMIT);
                }
                "search" => {
                    let s = v.trim();
                    q.search = (!s.is_empty()).then(|| s.to_string());
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        AuditQuery::parse(parts.uri.query())
    }
}

/// The audit listing's query, for the OpenAPI document ([`AuditQuery`]
/// parses it).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditParams {
    /// Only entries with a smaller `seq` (the previous page's `nextBefore`).
    #[param(minimum = 0)]
    before: Option<u64>,
    /// Entries per page (default 100, clamped to 1..=1000).
    #[param(minimum = 0)]
    limit: Option<u64>,
    /// Case-insensitive substring of the actor, action or target.
    search: Option<String>,
}

/// `GET /api/v1/audit?before=&limit=&search=`: newest first; follow
/// `nextBefore` for older pages.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "daemon",
    operation_id = "listAudit",
    summary = "The operator actions recorded in the audit log, newest first",
    params(
        AuditParams
    ),
    responses(
        (status = 200, description = "One page of entries; follow nextBefore for older ones", body = AuditList),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 503, response = doc::Unavailable)
    )
)]
pub(super) async fn list(
    State(state): State<ApiState>,
    query: AuditQuery,
) -> Result<Json<AuditList>, ApiError> {
    read(&state, move |tx, _now| {
        Ok(tx.audit(query.before, query.limit, query.search.as_deref())?)
    })
    .await
    .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_clamps_and_refusals() {
        let q = AuditQuery::parse(None).unwrap();
        assert_eq!(
            (q.before, q.limit, q.search),
            (None, DEFAULT_AUDIT_LIMIT, None)
        );
        let q = AuditQuery::parse(Some("before=9&limit=999999&search=%20Reset%20")).unwrap();
        assert_eq!(q.before, Some(9));
        assert_eq!(q.limit, MAX_AUDIT_LIMIT);
        assert_eq!(q.search.as_deref(), Some("Reset"));
        assert_eq!(AuditQuery::parse(Some("limit=0")).unwrap().limit, 1);
        let e = AuditQuery::parse(Some("before=-1")).unwrap_err();
        assert!(e.message.contains("before"), "{}", e.message);
    }
}
