//! Bearer-token auth with named, scoped tokens, and the cross-site write
//! guard.
//!
//! Every configured token has a name and a scope: `admin` tokens may do
//! everything, `read-only` tokens may read (every `GET`), follow the stream
//! and scrape metrics, and every other method answers 403. Secrets are
//! compared in constant time and never logged; only names are.

use super::error::ApiError;
use super::ApiState;
use crate::config::NamedToken;
use crate::engine::Actor;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crew_core::wire::TokenScope;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Who made a request: the name and scope of the token it carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The token's name (`anonymous` when auth is off).
    pub name: Arc<str>,
    /// What it may do.
    pub scope: TokenScope,
}

impl Identity {
    /// The caller when auth is off: may do everything.
    pub fn anonymous() -> Self {
        Identity {
            name: Arc::from("anonymous"),
            scope: TokenScope::Admin,
        }
    }
}

/// The configured API tokens. Empty means auth is off. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tokens(Arc<[(Identity, Box<[u8]>)]>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(id, _)| (&id.name, id.scope)))
            .finish()
    }
}

impl Tokens {
    /// The tokens of a configuration ([`crate::config::Config::api_tokens`]).
    pub fn new(tokens: Vec<NamedToken>) -> Self {
        Tokens(
            tokens
                .into_iter()
                .map(|t| {
                    (
                        Identity {
                            name: Arc::from(t.name),
                            scope: t.scope,
                        },
                        t.secret.into_bytes().into_boxed_slice(),
                    )
                })
                .collect(),
        )
    }

    /// Whether auth is on (at least one token is configured).
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The identity whose secret is `given`, if any. Every secret is
    /// compared, each in constant time, whichever matches.
    pub fn identify(&self, given: &[u8]) -> Option<Identity> {
        let mut found = None;
        for (id, secret) in self.0.iter() {
            if bool::from(given.ct_eq(secret)) {
                found = Some(id);
            }
        }
        found.cloned()
    }

    /// The identity of `Authorization: Bearer <secret>` in `headers`.
    pub fn identify_bearer(&self, headers: &HeaderMap) -> Option<Identity> {
        bearer_value(headers).and_then(|b| self.identify(b))
    }
}

/// The value of `Authorization: Bearer <value>` (scheme case-insensitive,
/// surrounding blanks trimmed), if that is what `headers` carry.
pub(crate) fn bearer_value(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = b"bearer ";
    if value.len() < scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return None;
    }
    Some(value[scheme.len()..].trim_ascii())
}

/// Whether `method` only reads (allowed to read-only tokens).
fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The routes that never need the token: the probes.
const PUBLIC_PATHS: [&str; 2] = ["/healthz", "/livez"];

/// Whether `headers` carry `Authorization: Bearer <token>` for this token.
/// The comparison takes the same time wherever the values differ.
#[cfg(test)]
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    bearer_value(headers).is_some_and(|given| bool::from(given.ct_eq(token.as_bytes())))
}

/// A write from a browser page of another origin: refused, so that a page
/// an operator visits cannot drive a daemon on their machine. Clients that
/// are not browsers send no `Origin`.
fn is_cross_origin_write(req: &Request) -> bool {
    if is_read(req.method()) {
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

/// Middleware: refuses a request without a valid token (401), except
/// the probes (`GET /healthz`, `GET /livez`), any action by a read-only token (403) and any
/// cross-origin browser write (403). The caller's [`Identity`] is put in
/// the request's extensions for the handlers.
pub(crate) async fn require_token(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Response {
    if is_cross_origin_write(&req) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-origin requests from browsers are refused",
        )
        .into_response();
    }
    let identity = if !state.tokens.enabled() {
        Identity::anonymous()
    } else if let Some(identity) = state.tokens.identify_bearer(req.headers()) {
        identity
    } else if PUBLIC_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    } else {
        let message = if req.headers().contains_key(header::AUTHORIZATION) {
            "invalid token"
        } else {
            "authentication required: send Authorization: Bearer <token>"
        };
        return ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    };
    if identity.scope == TokenScope::ReadOnly && !is_read(req.method()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} has the read-only scope: {} needs an admin token",
                &*identity.name,
                req.method()
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

/// The caller as the audit log names it: its token's name (`anonymous`
/// when auth is off). Handlers that act take it as an argument.
impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let name = match parts.extensions.get::<Identity>() {
            Some(identity) => identity.name.clone(),
            None => Identity::anonymous().name,
        };
        Ok(Actor::new(name))
    }
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
    fn named_tokens() {
        let t = |name: &str, scope, secret: &str| NamedToken {
            name: name.into(),
            scope,
            secret: secret.into(),
        };
        let tokens = Tokens::new(vec![
            t("ops", TokenScope::Admin, "a-secret"),
            t("viewer", TokenScope::ReadOnly, "r-secret"),
        ]);
        assert!(tokens.enabled());
        assert!(!Tokens::default().enabled());
        let id = tokens.identify_bearer(&headers("Bearer r-secret")).unwrap();
        assert_eq!((&*id.name, id.scope), ("viewer", TokenScope::ReadOnly));
        let id = tokens.identify(b"a-secret").unwrap();
        assert_eq!((&*id.name, id.scope), ("ops", TokenScope::Admin));
        assert!(tokens.identify(b"a-secre").is_none());
        assert!(tokens.identify(b"").is_none());
        assert!(tokens.identify_bearer(&headers("Basic a-secret")).is_none());
        let debug = format!("{tokens:?}");
        assert!(
            debug.contains("viewer") && !debug.contains("secret"),
            "{debug}"
        );
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
