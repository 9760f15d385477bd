//! Request extractors whose every rejection is a JSON [`ApiError`]: bodies
//! (size-capped, JSON only), query strings and path parameters.

use super::error::ApiError;
use super::ApiState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use crew_core::object_only::ObjectOnly;
use crew_core::wire::GroupSort;
use crew_core::TaskStatus;
use serde::de::DeserializeOwned;

/// Largest page a listing returns.
pub const MAX_PAGE_SIZE: u64 = 10_000;
/// Page size when the client gives none.
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// Reads a whole body, refusing it (413) past `limit` bytes.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok(b),
        Err(e) => {
            if is_length_limit(&e) {
                Err(ApiError::too_large(limit))
            } else {
                Err(ApiError::bad_request(format!(
                    "cannot read the request body: {e}"
                )))
            }
        }
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Refuses a body whose `Content-Type` is present and not JSON (415). A
/// missing type is accepted. Requiring JSON keeps browsers from posting
/// forms to the API cross-site without a CORS preflight.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the request body must be JSON (Content-Type: application/json), not {:?}",
                crew_core::dag::truncate(&essence, 80)
            ),
        ))
    }
}

/// Decodes JSON: malformed JSON is a 400, wrong types, missing or unknown
/// fields a 422; the message names the field's path
/// (`tasks[2].parentIds`).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        classify(e.into_inner(), &path)
    })?;
    de.end().map_err(|e| classify(e, ""))?;
    Ok(value)
}

fn classify(e: serde_json::Error, path: &str) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data if path.is_empty() || path == "." => {
            ApiError::unprocessable(format!("invalid request body: {e}"))
        }
        Category::Data => ApiError::unprocessable(format!("invalid request body at {path}: {e}")),
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request(format!("malformed JSON: {e}"))
        }
    }
}

/// The body of a request, read under the size limit and checked to be
/// JSON. Empty when the client sent nothing.
pub struct RawJson(pub Bytes);

impl FromRequest<ApiState> for RawJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body, state.max_request_bytes).await?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            check_content_type(&parts.headers)?;
        }
        Ok(RawJson(bytes))
    }
}

impl RawJson {
    /// Whether the body is empty or blank.
    pub fn is_blank(&self) -> bool {
        self.0.iter().all(u8::is_ascii_whitespace)
    }

    /// The first byte that is not whitespace.
    pub fn first_byte(&self) -> Option<u8> {
        self.0.iter().copied().find(|b| !b.is_ascii_whitespace())
    }
}

/// A required JSON object body: 400 when empty, 422 when not an object
/// (serde would read an array field by field).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let raw = RawJson::from_request(req, state).await?;
        if raw.is_blank() {
            return Err(ApiError::bad_request(
                "the request body is empty; a JSON object is expected",
            ));
        }
        decode::<ObjectOnly<T>>(&raw.0).map(|o| JsonBody(o.0))
    }
}

/// An optional JSON body: empty means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<ApiState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let raw = RawJson::from_request(req, state).await?;
        if raw.is_blank() {
            return Ok(OptionalJson(T::default()));
        }
        decode::<ObjectOnly<T>>(&raw.0).map(|o| OptionalJson(o.0))
    }
}

/// Path parameters, with a JSON rejection.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))
    }
}

/// Listing parameters: `page`, `pageSize`, `search`, `skipCompleted`,
/// `status`. Unknown parameters are ignored (crew-go clients send extras).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// 1-based page (0 is read as 1).
    pub page: u64,
    /// Clamped to `1..=MAX_PAGE_SIZE`.
    pub page_size: u64,
    /// Case-insensitive substring; `None` when absent or empty.
    pub search: Option<String>,
    /// Only incomplete tasks.
    pub skip_completed: bool,
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
            search: None,
            skip_completed: false,
            status: None,
        }
    }
}

pub(super) fn parse_count(name: &str, v: &str) -> Result<u64, ApiError> {
    v.trim().parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "query parameter {name} must be a non-negative integer, got {:?}",
            crew_core::dag::truncate(v, 40)
        ))
    })
}

/// The error for a query parameter `name` that is none of `choices`.
fn not_one_of<'a>(name: &str, choices: impl Iterator<Item = &'a str>, got: &str) -> ApiError {
    ApiError::bad_request(format!(
        "query parameter {name} must be one of {}, got {:?}",
        choices.collect::<Vec<_>>().join(", "),
        crew_core::dag::truncate(got, 40)
    ))
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "query parameter {name} must be true or false, got {:?}",
            crew_core::dag::truncate(v, 40)
        ))),
    }
}

impl ListQuery {
    /// Parses a raw query string.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut q = ListQuery::default();
        let Some(query) = query else {
            return Ok(q);
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
        for (k, v) in pairs {
            match k.as_str() {
                "page" => q.page = parse_count("page", &v)?.max(1),
                "pageSize" | "page_size" => {
                    q.page_size = parse_count("pageSize", &v)?.clamp(1, MAX_PAGE_SIZE)
                }
                "search" => {
                    let s = v.trim();
                    q.search = (!s.is_empty()).then(|| s.to_string());
                }
                "skipCompleted" | "skip_completed" => {
                    q.skip_completed = parse_bool("skipCompleted", &v)?
                }
                "status" => {
                    q.status = if v.is_empty() {
                        None
                    } else {
                        Some(TaskStatus::parse(v.trim()).ok_or_else(|| {
                            not_one_of("status", TaskStatus::ALL.iter().map(|s| s.as_str()), &v)
                        })?)
                    }
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        ListQuery::parse(parts.uri.query())
    }
}

/// The `sort` parameter of the groups listing (absent: newest first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupSortQuery(pub GroupSort);

impl GroupSortQuery {
    /// Parses a raw query string; other parameters are [`ListQuery`]'s.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
        let mut sort = GroupSort::default();
        for (k, v) in pairs {
            if k == "sort" && !v.trim().is_empty() {
                sort = GroupSort::parse(v.trim()).ok_or_else(|| {
                    not_one_of("sort", GroupSort::ALL.iter().map(|s| s.as_str()), &v)
                })?;
            }
        }
        Ok(GroupSortQuery(sort))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for GroupSortQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        GroupSortQuery::parse(parts.uri.query())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use crew_core::wire::{AttemptsRequest, NewTask};

    #[test]
    fn query_defaults_and_clamps() {
        assert_eq!(ListQuery::parse(None).unwrap(), ListQuery::default());
        let q = ListQuery::parse(Some(
            "page=3&pageSize=99999&search=%20ab%20&skipCompleted=true&status=failed&x=1",
        ))
        .unwrap();
        assert_eq!(q.page, 3);
        assert_eq!(q.page_size, MAX_PAGE_SIZE);
        assert_eq!(q.search.as_deref(), Some("ab"));
        assert!(q.skip_completed);
        assert_eq!(q.status, Some(TaskStatus::Failed));
        let q = ListQuery::parse(Some("page=0&pageSize=0&search=&skipCompleted")).unwrap();
        assert_eq!((q.page, q.page_size), (1, 1));
        assert!(q.search.is_none());
        assert!(q.skip_completed);
    }

    #[test]
    fn bad_query_params_are_400() {
        for bad in [
            "pageSize=abc",
            "page=-1",
            "page=1.5",
            "skipCompleted=maybe",
            "status=done",
            "page=99999999999999999999999",
        ] {
            let e = ListQuery::parse(Some(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let e = ListQuery::parse(Some("pageSize=abc")).unwrap_err();
        assert!(e.message.contains("pageSize"), "{}", e.message);
        let e = ListQuery::parse(Some("status=done")).unwrap_err();
        assert!(e.message.contains("completed"), "{}", e.message);
    }

    #[test]
    fn decode_classifies_errors() {
        let e = decode::<NewTask>(b"{\"name\": ").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.starts_with("malformed JSON"), "{}", e.message);
        let e = decode::<NewTask>(br#"{"name": 5}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("name"), "{}", e.message);
        let e = decode::<NewTask>(br#"{"worker":"w","isComplete":true}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("isComplete"), "{}", e.message);
        let e = decode::<Vec<NewTask>>(br#"[{"worker":"w"},{"worker":"w","parentIds":"a"}]"#)
            .unwrap_err();
        assert!(e.message.contains("[1].parentIds"), "{}", e.message);
        // An array where an object belongs, named by its path.
        let e = decode::<Vec<ObjectOnly<NewTask>>>(br#"[{"worker":"w"},["w"]]"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("at [1]:"), "{}", e.message);
        let e = decode::<ObjectOnly<crew_core::wire::NewTaskGroup>>(
            br#"{"id":"g","tasks":[{"worker":"w"},{"worker":"w","parentIds":"a"}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("tasks[1].parentIds"), "{}", e.message);
        let e = decode::<AttemptsRequest>(br#"{"remainingAttempts": -1}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let e = decode::<AttemptsRequest>(br#"{} trailing"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(decode::<AttemptsRequest>(b" {} ").is_ok());
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            check_content_type(&h).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413() {
        let h = HeaderMap::new();
        let e = read_body(&h, Body::from(vec![b' '; 2000]), 1000)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, "5000".parse().unwrap());
        let e = read_body(&h, Body::empty(), 1000).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let ok = read_body(&HeaderMap::new(), Body::from("{}"), 1000)
            .await
            .unwrap();
        assert_eq!(&ok[..], b"{}");
    }
}
