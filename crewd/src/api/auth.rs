//! Bearer-token auth and the cross-site write guard.

use super::error::ApiError;
use super::ApiState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// The one route that never needs the token.
const PUBLIC_PATH: &str = "/healthz";

/// Whether `headers` carry `Authorization: Bearer <token>` for this token.
/// The comparison takes the same time wherever the values differ.
pub(crate) fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let scheme = b"bearer ";
    if value.len() < scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return false;
    }
    let given = value[scheme.len()..].trim_ascii();
    bool::from(given.ct_eq(token.as_bytes()))
}

/// A write from a browser page of another origin: refused, so that a page
/// an operator visits cannot drive a daemon on their machine. Clients that
/// are not browsers send no `Origin`.
fn is_cross_origin_write(req: &Request) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        if site.as_bytes() == b"cross-site" || site.as_bytes() == b"same-site" {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host)
}

/// Middleware: refuses a request without the right token (401), except
/// `GET /healthz`, and any cross-origin browser write (403).
pub(crate) async fn require_token(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    if is_cross_origin_write(&req) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-origin requests from browsers are refused",
        )
        .into_response();
    }
    if let Some(token) = &state.token {
        if req.uri().path() != PUBLIC_PATH && !bearer_matches(req.headers(), token) {
            let message = if req.headers().contains_key(header::AUTHORIZATION) {
                "invalid token"
            } else {
                "authentication required: send Authorization: Bearer <token>"
            };
            return ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn bearer_tokens() {
        assert!(bearer_matches(&headers("Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(&headers("bearer  s3cret "), "s3cret"));
        assert!(!bearer_matches(&headers("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&headers("Bearer s3cretX"), "s3cret"));
        assert!(!bearer_matches(&headers("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&headers("s3cret"), "s3cret"));
        assert!(!bearer_matches(&headers("Bearer"), "s3cret"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }

    fn req(method: Method, origin: Option<&str>, host: &str) -> Request {
        let mut b = Request::builder()
            .method(method)
            .uri("/api/v1/task_groups")
            .header(header::HOST, host);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn cross_origin_writes() {
        assert!(!is_cross_origin_write(&req(
            Method::POST,
            None,
            "127.0.0.1:8090"
        )));
        assert!(!is_cross_origin_write(&req(
            Method::POST,
            Some("http://127.0.0.1:8090"),
            "127.0.0.1:8090"
        )));
        assert!(is_cross_origin_write(&req(
            Method::POST,
            Some("https://evil.example"),
            "127.0.0.1:8090"
        )));
        assert!(is_cross_origin_write(&req(
            Method::DELETE,
            Some("null"),
            "127.0.0.1:8090"
        )));
        assert!(!is_cross_origin_write(&req(
            Method::GET,
            Some("https://evil.example"),
            "127.0.0.1:8090"
        )));
    }
}
