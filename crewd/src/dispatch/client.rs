//! The HTTP client that calls workers (crew-go's webhook protocol).
//!
//! One pooled keep-alive [`reqwest::Client`] serves every worker. A call
//! POSTs the [`WorkerPayload`] as JSON, reads the answer with a hard size
//! cap, bounds the whole exchange with a timeout, and turns whatever
//! happened into a [`WorkerOutcome`]: every failure, from a refused
//! connection to an oversized body, is a [`WorkerOutcome::Failure`] with a
//! readable message. Redirects are never followed. The configured
//! `Authorization` value is sent as a sensitive header and never logged.

use crew_core::dag::is_safe_name;
use crew_core::wire::WorkerPayload;
use crew_core::worker::{interpret_response, WorkerOutcome};
use crew_core::Timestamp;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::Url;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// The header carrying the 1-based attempt number.
pub const ATTEMPT_HEADER: &str = "x-crew-attempt";
/// Standard Webhooks: the message id, the same for every attempt of one run
/// of a task, so a worker can drop a duplicate delivery:
/// `msg_<task>.<created>`, and `msg<n>_<task>.<created>` once the task has
/// been reset `n` times (a reset is a new run, never a duplicate).
/// `<created>` is the task's `createdAt` in hexadecimal nanoseconds: a
/// task deleted and created again with its id (a continuation a reset of
/// its creator deleted and the re-run created again) is a new message too.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
/// Standard Webhooks: Unix seconds when the call was signed.
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";
/// The most of a `Location` header a redirect failure quotes.
const QUOTED_LOCATION_CHARS: usize = 200;

/// Settings of a [`WorkerClient`].
#[derive(Clone)]
pub struct WorkerClientConfig {
    /// Workers are called at this URL followed by the worker name
    /// (crew-go's convention: plain concatenation).
    pub base_url: String,
    /// Per-worker URLs that override `base_url + name`.
    pub worker_urls: HashMap<String, String>,
    /// `Authorization` header value sent to every worker.
    pub authorization: Option<String>,
    /// Timeout of a whole call when the caller gives none.
    pub default_timeout: Duration,
    /// Largest response body read; a larger one fails the attempt.
    pub max_response_bytes: usize,
    /// Standard Webhooks signing secret (`whsec_<base64>`, or any other
    /// string used as raw key bytes); when set, every call is signed.
    pub signing_secret: Option<String>,
}

impl fmt::Debug for WorkerClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerClientConfig")
            .field("base_url", &self.base_url)
            .field("worker_urls", &self.worker_urls)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("default_timeout", &self.default_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why a [`WorkerClient`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WorkerClientError {
    /// A base or per-worker URL is unusable.
    #[error("invalid worker URL {url:?}: {reason}")]
    Url {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A per-worker URL is configured for a name that is not a valid worker name.
    #[error("invalid worker name {0:?} in the per-worker URLs")]
    Name(String),
    /// The `Authorization` value cannot be sent as a header.
    #[error("the worker Authorization value is not a valid header value")]
    Authorization,
    /// The signing secret is `whsec_` followed by something that is not base64.
    #[error("the worker signing secret starts with whsec_ but is not base64")]
    Secret,
    /// The timeout or size limit is zero.
    #[error("{0}")]
    Limit(&'static str),
    /// reqwest could not build its client (TLS setup...).
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Calls workers. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct WorkerClient {
    http: reqwest::Client,
    base_url: String,
    worker_urls: HashMap<String, String>,
    default_timeout: Duration,
    max_response_bytes: usize,
    signing_key: Option<std::sync::Arc<[u8]>>,
    /// Worker URLs already parsed: parsing one on every call was a visible
    /// share of the dispatch path.
    parsed_urls: std::sync::Arc<std::sync::RwLock<HashMap<String, Url>>>,
}

/// Parsed worker URLs kept at most (worker names are few in practice).
const PARSED_URLS_MAX: usize = 1024;

impl fmt::Debug for WorkerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerClient")
            .field("base_url", &self.base_url)
            .field("worker_urls", &self.worker_urls)
            .field("default_timeout", &self.default_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("signed", &self.signing_key.is_some())
            .finish_non_exhaustive()
    }
}

fn check_url(url: &str) -> Result<Url, WorkerClientError> {
    let bad = |reason: &str| WorkerClientError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    Ok(parsed)
}

impl WorkerClient {
    /// Builds the client: validates the URLs and the `Authorization` value.
    ///
    /// A base URL with no path (`http://host:8091`) gets its `/`, so the
    /// worker name is never glued to the port; otherwise the base URL is
    /// used as written and the worker name appended (crew-go's convention).
    pub fn new(cfg: WorkerClientConfig) -> Result<Self, WorkerClientError> {
        if cfg.default_timeout.is_zero() {
            return Err(WorkerClientError::Limit(
                "the worker timeout must be positive",
            ));
        }
        if cfg.max_response_bytes == 0 {
            return Err(WorkerClientError::Limit(
                "the worker response size limit must be positive",
            ));
        }
        let parsed = check_url(&cfg.base_url)?;
        let base_url = if parsed.path() == "/" && !cfg.base_url.ends_with('/') {
            format!("{}/", cfg.base_url)
        } else {
            cfg.base_url.clone()
        };
        for (name, url) in &cfg.worker_urls {
            if !is_safe_name(name) {
                return Err(WorkerClientError::Name(name.clone()));
            }
            check_url(url)?;
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(auth) = &cfg.authorization {
            let mut v =
                HeaderValue::from_str(auth).map_err(|_| WorkerClientError::Authorization)?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let signing_key = match &cfg.signing_secret {
            None => None,
            Some(secret) => Some(signing_key(secret)?),
        };
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("crewd/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()?;
        Ok(WorkerClient {
            http,
            base_url,
            worker_urls: cfg.worker_urls,
            default_timeout: cfg.default_timeout,
            max_response_bytes: cfg.max_response_bytes,
            signing_key,
            parsed_urls: Default::default(),
        })
    }

    /// `url` parsed, from the cache when it was seen before; `None` when it
    /// does not parse (reqwest then reports it as it would any bad URL).
    fn parsed_url(&self, url: &str) -> Option<Url> {
        if let Ok(cache) = self.parsed_urls.read() {
            if let Some(u) = cache.get(url) {
                return Some(u.clone());
            }
        }
        let parsed = Url::parse(url).ok()?;
        if let Ok(mut cache) = self.parsed_urls.write() {
            if cache.len() < PARSED_URLS_MAX {
                cache.insert(url.to_string(), parsed.clone());
            }
        }
        Some(parsed)
    }

    /// The URL a worker is called at: its own URL when one is configured,
    /// else the base URL followed by the name. Does not check the name:
    /// [`WorkerClient::call`] refuses names outside crew-core's safe charset.
    pub fn url_for(&self, worker: &str) -> String {
        match self.worker_urls.get(worker) {
            Some(url) => url.clone(),
            None => format!("{}{}", self.base_url, worker),
        }
    }

    /// Calls the task's worker once and interprets the answer. `attempt` is
    /// sent as `X-Crew-Attempt`; `timeout` (default: the configured one)
    /// bounds the whole exchange, body included. Never panics: every
    /// problem is a [`WorkerOutcome::Failure`].
    pub async fn call(
        &self,
        payload: &WorkerPayload,
        attempt: u32,
        timeout: Option<Duration>,
    ) -> WorkerOutcome {
        self.call_in_run(payload, attempt, Run::default(), timeout)
            .await
    }

    /// [`WorkerClient::call`] in a given run of a task (see
    /// [`WEBHOOK_ID_HEADER`]).
    pub async fn call_in_run(
        &self,
        payload: &WorkerPayload,
        attempt: u32,
        run: Run,
        timeout: Option<Duration>,
    ) -> WorkerOutcome {
        if !is_safe_name(&payload.worker) {
            return WorkerOutcome::failure(format!(
                "worker name {:?} is not valid; it was not called",
                crew_core::dag::truncate(&payload.worker, 80)
            ));
        }
        let url = self.url_for(&payload.worker);
        let timeout = timeout.unwrap_or(self.default_timeout);
        match tokio::time::timeout(timeout, self.exchange(&url, payload, attempt, run)).await {
            Ok(outcome) => outcome,
            Err(_) => WorkerOutcome::failure(format!(
                "timed out after {} (worker at {})",
                format_duration(timeout),
                display_url(&url)
            )),
        }
    }

    async fn exchange(
        &self,
        url: &str,
        payload: &WorkerPayload,
        attempt: u32,
        run: Run,
    ) -> WorkerOutcome {
        let body = match serde_json::to_vec(payload) {
            Ok(b) => b,
            Err(e) => return WorkerOutcome::failure(format!("cannot encode the payload: {e}")),
        };
        let request = match self.parsed_url(url) {
            Some(parsed) => self.http.post(parsed),
            None => self.http.post(url),
        };
        let mut request = request.header(ATTEMPT_HEADER, attempt);
        if let Some(key) = &self.signing_key {
            let id = run.message_id(&payload.task_id);
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let signature = sign(key, &id, timestamp, &body);
            request = request
                .header(WEBHOOK_ID_HEADER, id)
                .header(WEBHOOK_TIMESTAMP_HEADER, timestamp)
                .header(WEBHOOK_SIGNATURE_HEADER, signature);
        }
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                return WorkerOutcome::failure(format!(
                    "{} (worker at {})",
                    describe_error(&e),
                    display_url(url)
                ))
            }
        };
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .map(|v| quote_header(v.as_bytes()))
                .unwrap_or_else(|| "none".to_string());
            return WorkerOutcome::failure(format!(
                "HTTP {}: redirects are not followed (Location: {location})",
                status.as_u16()
            ));
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = match read_capped(response, self.max_response_bytes).await {
            Ok(b) => b,
            Err(message) => {
                return WorkerOutcome::failure(format!("HTTP {}: {message}", status.as_u16()))
            }
        };
        interpret_response(
            status.as_u16(),
            retry_after.as_deref(),
            &body,
            Timestamp::now(),
        )
    }
}

/// Which run of which task a call belongs to: what its `webhook-id` tells
/// apart (see [`WEBHOOK_ID_HEADER`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// The task's `createdAt` in nanoseconds (0: not known, left out).
    pub created_ns: i64,
    /// The task's resets so far.
    pub resets: u32,
}

impl Run {
    /// The `webhook-id` of the task's calls in this run. A later run's id
    /// starts `msg<n>`, never `msg_`, so it cannot equal a first run's; the
    /// creation time follows the last `.`, which it never contains.
    fn message_id(&self, task_id: &str) -> String {
        let created = if self.created_ns == 0 {
            String::new()
        } else {
            format!(".{:x}", self.created_ns)
        };
        match self.resets {
            0 => format!("msg_{task_id}{created}"),
            n => format!("msg{n}_{task_id}{created}"),
        }
    }
}

/// The key bytes of a signing secret: `whsec_<base64>` is decoded, any
/// other string is used as it is.
fn signing_key(secret: &str) -> Result<std::sync::Arc<[u8]>, WorkerClientError> {
    use base64::Engine as _;
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(Into::into)
            .map_err(|_| WorkerClientError::Secret),
        None if secret.is_empty() => Err(WorkerClientError::Secret),
        None => Ok(secret.as_bytes().into()),
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for part in message {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The Standard Webhooks signature header value for one call.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    use base64::Engine as _;
    let ts = timestamp.to_string();
    let mac = hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    )
}

/// Reads a body chunk by chunk, failing as soon as it passes `limit`.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("the response body is larger than the limit of {limit} bytes");
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(
        response
            .content_length()
            .map_or(0, |n| (n as usize).min(64 * 1024)),
    );
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(format!(
                    "error reading the response body: {}",
                    describe_error(&e)
                ))
            }
        }
    }
}

/// A readable description of a reqwest error, without its URL (which may
/// carry a secret in its query) and without internal type names.
fn describe_error(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    let mut io_kind = None;
    let mut innermost = None;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        innermost = Some(s);
        source = s.source();
    }
    match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => return "connection refused".into(),
        Some(std::io::ErrorKind::ConnectionReset) => {
            return "connection reset by the worker".into()
        }
        Some(std::io::ErrorKind::ConnectionAborted) => return "connection aborted".into(),
        Some(std::io::ErrorKind::TimedOut) => return "connection timed out".into(),
        _ => {}
    }
    let detail = innermost.map(|s| s.to_string()).unwrap_or_default();
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "error reading the response"
    } else if e.is_request() {
        "request failed"
    } else {
        "worker call failed"
    };
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

/// A URL for messages: scheme, host, port and path; no credentials, no query.
fn display_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{}://{}:{}{}", u.scheme(), host, p, u.path()),
                None => format!("{}://{}{}", u.scheme(), host, u.path()),
            }
        }
        Err(_) => "(invalid URL)".to_string(),
    }
}

/// A header value for messages: printable ASCII only, truncated.
fn quote_header(v: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(v)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    crew_core::dag::truncate(&text, QUOTED_LOCATION_CHARS)
}

/// "300 s", "1.5 s", "0.25 s".
fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{} s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> WorkerClientConfig {
        WorkerClientConfig {
            base_url: "http://127.0.0.1:8091/".into(),
            worker_urls: HashMap::from([("special".into(), "https://w.example/x?k=1".into())]),
            authorization: Some("Bearer s3cr3t-value".into()),
            default_timeout: Duration::from_secs(300),
            max_response_bytes: 1024,
            signing_secret: None,
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let key = [0xaau8; 131];
        let mac = hmac_sha256(
            &key,
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn standard_webhooks_signature() {
        // The example of the Standard Webhooks reference libraries.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(signing_key("whsec_!!!").is_err());
        assert!(signing_key("").is_err());
        assert_eq!(&*signing_key("raw").unwrap(), b"raw");
    }

    #[test]
    fn urls() {
        let c = WorkerClient::new(cfg()).unwrap();
        assert_eq!(c.url_for("fetch"), "http://127.0.0.1:8091/fetch");
        assert_eq!(c.url_for("special"), "https://w.example/x?k=1");
        let mut no_slash = cfg();
        no_slash.base_url = "http://127.0.0.1:8091".into();
        let c = WorkerClient::new(no_slash).unwrap();
        assert_eq!(c.url_for("fetch"), "http://127.0.0.1:8091/fetch");
        let mut prefix = cfg();
        prefix.base_url = "http://h/workers/w-".into();
        let c = WorkerClient::new(prefix).unwrap();
        assert_eq!(c.url_for("fetch"), "http://h/workers/w-fetch");
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut c = cfg();
        c.base_url = "ftp://h/".into();
        assert!(matches!(
            WorkerClient::new(c),
            Err(WorkerClientError::Url { .. })
        ));
        let mut c = cfg();
        c.authorization = Some("a\nb".into());
        assert!(matches!(
            WorkerClient::new(c),
            Err(WorkerClientError::Authorization)
        ));
        let mut c = cfg();
        c.worker_urls.insert("../x".into(), "http://h/".into());
        assert!(matches!(
            WorkerClient::new(c),
            Err(WorkerClientError::Name(_))
        ));
        let mut c = cfg();
        c.default_timeout = Duration::ZERO;
        assert!(WorkerClient::new(c).is_err());
    }

    #[test]
    fn debug_redacts_authorization() {
        let mut c = cfg();
        c.signing_secret = Some("whsec_c2lnbmluZy1rZXk=".into());
        let d = format!("{c:?}");
        assert!(!d.contains("s3cr3t"), "{d}");
        assert!(!d.contains("whsec_"), "{d}");
        let d = format!("{:?}", WorkerClient::new(c).unwrap());
        assert!(!d.contains("s3cr3t"), "{d}");
        assert!(!d.contains("c2lnbm"), "{d}");
    }

    #[test]
    fn messages() {
        assert_eq!(format_duration(Duration::from_secs(300)), "300 s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(format_duration(Duration::from_millis(250)), "0.25 s");
        assert_eq!(
            display_url("https://user:pw@h.example:8443/p/q?token=x"),
            "https://h.example:8443/p/q"
        );
        assert_eq!(quote_header(b"/a\x1b[2Jb"), "/a[2Jb");
    }

    #[tokio::test]
    async fn unsafe_worker_names_are_not_called() {
        let c = WorkerClient::new(cfg()).unwrap();
        let payload = WorkerPayload {
            task_id: "t".into(),
            worker: "../admin".into(),
            input: serde_json::Value::Null,
            parents: vec![],
        };
        let o = c.call(&payload, 1, None).await;
        assert!(
            matches!(&o, WorkerOutcome::Failure { message } if message.contains("not valid")),
            "{o:?}"
        );
    }
}
