//! The daemon's configuration: command-line flags, each with a `CREW_*`
//! environment variable (crew-go's names where they exist).
//!
//! Secrets (the API token, the worker `Authorization` value) never appear in
//! `Debug` output: they print as `<redacted>`.

use crate::dispatch::client::WorkerClientConfig;
use clap::{Parser, ValueEnum};
pub use crew_core::wire::TokenScope;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The name of the admin token given with `--token`.
pub const DEFAULT_TOKEN_NAME: &str = "default";

/// One MiB.
const MIB: usize = 1024 * 1024;
/// The engine's longest poll before it sleeps, in microseconds.
const DEFAULT_IDLE_POLL_US: u64 = 400;
/// The background writeback's default interval, in milliseconds.
const DEFAULT_WRITEBACK_MS: u64 = crate::storage::DEFAULT_WRITEBACK_EVERY.as_millis() as u64;
/// The store's default page cache, in MiB.
const DEFAULT_CACHE_MIB: u64 = (crate::storage::DEFAULT_CACHE_BYTES / MIB) as u64;

/// How the delay after a failed attempt grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Backoff {
    /// Always the task's `errorDelayInSeconds` (crew-go's behaviour).
    #[default]
    Fixed,
    /// `errorDelayInSeconds` doubled per failed attempt, with jitter, up to
    /// `--backoff-cap`.
    Exponential,
}

/// A per-worker URL given as `NAME=URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerUrl {
    /// The worker name, as tasks carry it in `worker`.
    pub name: String,
    /// The absolute `http` or `https` URL to POST to.
    pub url: String,
}

/// A named API token given as `NAME:SCOPE:SECRET`.
#[derive(Clone, PartialEq, Eq)]
pub struct NamedToken {
    /// A name for logs and `whoami` (the secret is never shown).
    pub name: String,
    /// What the token may do.
    pub scope: TokenScope,
    /// The bearer value clients send.
    pub secret: String,
}

impl fmt::Debug for NamedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedToken")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

/// A per-worker concurrency limit given as `NAME=N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConcurrency {
    /// The worker name.
    pub name: String,
    /// Maximum calls in flight for that worker.
    pub limit: u32,
}

/// A workgroup's limits given as `NAME=concurrency:N,rate:R,burst:B`.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkgroupLimit {
    /// The workgroup name, as tasks carry it in `workgroup`.
    pub name: String,
    /// Its limits.
    pub limits: crew_core::WorkgroupLimits,
}

/// A configuration that parsed but does not make sense as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A worker was given two URLs or two limits.
    #[error("worker {name:?} is given more than one {what}")]
    Duplicate {
        /// "URL" or "concurrency limit".
        what: &'static str,
        /// The worker name.
        name: String,
    },
    /// Some value is present but unusable.
    #[error("{0}")]
    Invalid(String),
}

/// The daemon's configuration.
#[derive(Clone, Parser)]
#[command(
    name = "crewd",
    version,
    about = "The Crew daemon: durable task DAGs executed by HTTP webhook workers."
)]
pub struct Config {
    /// Address the REST API and the event stream listen on.
    #[arg(long, env = "CREW_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: String,

    /// The redb database file.
    #[arg(long, env = "CREW_DB", default_value_os_t = default_db_path())]
    pub db: PathBuf,

    /// Bearer token required by every API route but /healthz and /livez (unset: no auth).
    #[arg(long, env = "CREW_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// A named token with a scope, as NAME:SCOPE:SECRET where SCOPE is
    /// `admin` or `read-only` (repeatable; comma-separated in the
    /// environment). Any configured token turns auth on; `--token` is the
    /// admin token named `default`.
    #[arg(
        long = "tokens",
        env = "CREW_TOKENS",
        value_name = "NAME:SCOPE:SECRET",
        value_delimiter = ',',
        value_parser = parse_named_token,
        hide_env_values = true
    )]
    pub tokens: Vec<NamedToken>,

    /// Workers are called at this URL followed by the worker name.
    #[arg(
        long,
        env = "CREW_WORKER_BASE_URL",
        default_value = "http://127.0.0.1:8091/"
    )]
    pub worker_base_url: String,

    /// A worker's own URL, as NAME=URL (repeatable; comma-separated in the
    /// environment).
    #[arg(
        long = "worker-url",
        env = "CREW_WORKER_URLS",
        value_name = "NAME=URL",
        value_delimiter = ',',
        value_parser = parse_worker_url
    )]
    pub worker_urls: Vec<WorkerUrl>,

    /// `Authorization` header value sent to every worker.
    #[arg(
        long = "worker-auth-header",
        env = "CREW_WORKER_AUTHORIZATION_HEADER",
        hide_env_values = true
    )]
    pub worker_auth_header: Option<String>,

    /// Standard Webhooks secret (`whsec_<base64>`): when set, every worker
    /// call carries `webhook-id`, `webhook-timestamp` and `webhook-signature`.
    #[arg(
        long = "worker-signing-secret",
        env = "CREW_WORKER_SIGNING_SECRET",
        hide_env_values = true
    )]
    pub worker_signing_secret: Option<String>,

    /// Seconds a worker call may take, response body included.
    #[arg(
        long,
        env = "CREW_WORKER_TIMEOUT",
        default_value_t = 300,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub worker_timeout: u64,

    /// A worker's maximum calls in flight, as NAME=N (repeatable;
    /// comma-separated in the environment).
    #[arg(
        long = "worker-concurrency",
        env = "CREW_WORKER_CONCURRENCY",
        value_name = "NAME=N",
        value_delimiter = ',',
        value_parser = parse_worker_concurrency
    )]
    pub worker_concurrency: Vec<WorkerConcurrency>,

    /// A workgroup's limits, as NAME=concurrency:N,rate:R,burst:B (any
    /// subset; rate in tasks per second) (repeatable; `;`-separated in the
    /// environment). Written over the stored limits at start; changes made
    /// through the API then persist until the next start.
    #[arg(
        long = "workgroup-limit",
        env = "CREW_WORKGROUP_LIMITS",
        value_name = "NAME=concurrency:N,rate:R,burst:B",
        value_delimiter = ';',
        value_parser = parse_workgroup_limit
    )]
    pub workgroup_limits: Vec<WorkgroupLimit>,

    /// Worker calls in flight across all workers.
    #[arg(
        long,
        env = "CREW_MAX_IN_FLIGHT",
        default_value_t = 256,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_in_flight: u32,

    /// Largest request body the API accepts, in bytes.
    #[arg(
        long,
        env = "CREW_MAX_REQUEST_BYTES",
        default_value_t = 16 * MIB,
        value_parser = parse_byte_limit
    )]
    pub max_request_bytes: usize,

    /// Largest worker response body, in bytes.
    #[arg(
        long,
        env = "CREW_MAX_RESPONSE_BYTES",
        default_value_t = 16 * MIB,
        value_parser = parse_byte_limit
    )]
    pub max_response_bytes: usize,

    /// Events kept for stream clients that resume.
    #[arg(
        long,
        env = "CREW_EVENT_RETENTION",
        default_value_t = 100_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub event_retention: u64,

    /// Memory for the store's page cache, in MiB (the operating system
    /// caches the file too).
    #[arg(
        long,
        env = "CREW_CACHE_MIB",
        default_value_t = DEFAULT_CACHE_MIB,
        value_parser = clap::value_parser!(u64).range(1..=1_048_576)
    )]
    pub cache_mib: u64,

    /// Longest time, in milliseconds, a commit made durable by the journal
    /// beside the store waits for a full sync of the store to include it
    /// (made at the next commit, or by itself when the daemon is idle).
    /// Longer means fewer full syncs and more journal to replay after a
    /// crash.
    #[arg(
        long,
        env = "CREW_CHECKPOINT_MS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..=86_400_000)
    )]
    pub checkpoint_ms: u64,

    /// How often, in milliseconds, a background thread looks at the
    /// journal, to sync the store's file once 4 MiB more went through it:
    /// the full sync then finds little left to write, and holds the engine
    /// up for less. 0 turns it off.
    #[arg(
        long,
        env = "CREW_WRITEBACK_MS",
        default_value_t = DEFAULT_WRITEBACK_MS,
        value_parser = clap::value_parser!(u64).range(0..=86_400_000)
    )]
    pub writeback_ms: u64,

    /// Longest time, in microseconds, the engine polls for its next
    /// message before it sleeps. It polls only as long as recent waits say
    /// one is about to come (a worker that answers at once): waking from
    /// sleep costs tens of microseconds per step. 0 turns it off.
    #[arg(
        long,
        env = "CREW_IDLE_POLL_US",
        default_value_t = DEFAULT_IDLE_POLL_US,
        value_name = "MICROSECONDS",
        value_parser = clap::value_parser!(u64).range(0..=100_000)
    )]
    pub idle_poll_us: u64,

    /// Audit log entries kept (the newest operator actions).
    #[arg(
        long,
        env = "CREW_AUDIT_RETENTION",
        default_value_t = 100_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub audit_retention: u64,

    /// Delete finished groups (every task complete) this many seconds after
    /// they finished; unset keeps them.
    #[arg(long, env = "CREW_RETAIN_FINISHED_FOR", value_name = "SECONDS")]
    pub retain_finished_for: Option<u64>,

    /// Keep at most this many finished groups (the newest); unset keeps all.
    #[arg(long, env = "CREW_RETAIN_FINISHED_GROUPS", value_name = "COUNT")]
    pub retain_finished_groups: Option<usize>,

    /// Seconds between two retention sweeps.
    #[arg(
        long,
        env = "CREW_RETENTION_INTERVAL",
        default_value_t = 60,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub retention_interval: u64,

    /// Seconds to wait for calls in flight on shutdown.
    #[arg(
        long,
        env = "CREW_SHUTDOWN_GRACE",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub shutdown_grace: u64,

    /// Delay after a failed attempt: fixed (the task's errorDelayInSeconds)
    /// or exponential (doubling, with jitter).
    #[arg(long, env = "CREW_BACKOFF", value_enum, default_value_t = Backoff::Fixed)]
    pub backoff: Backoff,

    /// Longest exponential backoff delay, in seconds.
    #[arg(
        long,
        env = "CREW_BACKOFF_CAP",
        default_value_t = 3600,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub backoff_cap: u64,

    /// Start with a demo group and built-in demo workers.
    #[arg(
        long,
        env = "CREW_DEMO",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub demo: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn redacted(v: &Option<String>) -> &'static str {
            match v {
                Some(_) => "Some(<redacted>)",
                None => "None",
            }
        }
        struct Raw(&'static str);
        impl fmt::Debug for Raw {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("db", &self.db)
            .field("token", &Raw(redacted(&self.token)))
            .field("tokens", &self.tokens)
            .field("worker_base_url", &self.worker_base_url)
            .field("worker_urls", &self.worker_urls)
            .field(
                "worker_auth_header",
                &Raw(redacted(&self.worker_auth_header)),
            )
            .field(
                "worker_signing_secret",
                &Raw(redacted(&self.worker_signing_secret)),
            )
            .field("worker_timeout", &self.worker_timeout)
            .field("worker_concurrency", &self.worker_concurrency)
            .field("workgroup_limits", &self.workgroup_limits)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("event_retention", &self.event_retention)
            .field("audit_retention", &self.audit_retention)
            .field("cache_mib", &self.cache_mib)
            .field("checkpoint_ms", &self.checkpoint_ms)
            .field("writeback_ms", &self.writeback_ms)
            .field("idle_poll_us", &self.idle_poll_us)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("backoff", &self.backoff)
            .field("backoff_cap", &self.backoff_cap)
            .field("demo", &self.demo)
            .field("retain_finished_for", &self.retain_finished_for)
            .field("retain_finished_groups", &self.retain_finished_groups)
            .field("retention_interval", &self.retention_interval)
            .finish()
    }
}

impl Config {
    /// A configuration with every default (no flags, no environment), for
    /// tests and embedding; `db` is the given file.
    pub fn with_db(db: impl Into<PathBuf>) -> Self {
        Config {
            listen: "127.0.0.1:8090".to_string(),
            db: db.into(),
            token: None,
            tokens: Vec::new(),
            worker_base_url: "http://127.0.0.1:8091/".to_string(),
            worker_urls: Vec::new(),
            worker_auth_header: None,
            worker_signing_secret: None,
            worker_timeout: 300,
            worker_concurrency: Vec::new(),
            workgroup_limits: Vec::new(),
            max_in_flight: 256,
            max_request_bytes: 16 * MIB,
            max_response_bytes: 16 * MIB,
            event_retention: 100_000,
            audit_retention: 100_000,
            cache_mib: DEFAULT_CACHE_MIB,
            checkpoint_ms: 1000,
            writeback_ms: DEFAULT_WRITEBACK_MS,
            idle_poll_us: DEFAULT_IDLE_POLL_US,
            shutdown_grace: 30,
            backoff: Backoff::Fixed,
            backoff_cap: 3600,
            demo: false,
            retain_finished_for: None,
            retain_finished_groups: None,
            retention_interval: 60,
        }
    }

    /// Checks what a single flag's parser cannot: duplicates, empty secrets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(ConfigError::Invalid(
                "the API token (--token / CREW_AUTH_TOKEN) is empty; unset it to disable auth"
                    .into(),
            ));
        }
        // A bearer header cannot carry such a token: every request would
        // be refused. Around it, blanks (a newline from an env file) are
        // dropped, as for --api-token's secrets.
        if self
            .token
            .as_deref()
            .is_some_and(|t| t.trim().bytes().any(|b| !(0x21..0x7f).contains(&b)))
        {
            return Err(ConfigError::Invalid(
                "the API token (--token / CREW_AUTH_TOKEN) must be printable ASCII without spaces"
                    .into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        let mut secrets = std::collections::HashSet::new();
        if let Some(t) = &self.token {
            names.insert(DEFAULT_TOKEN_NAME);
            secrets.insert(t.trim());
        }
        for t in &self.tokens {
            if !names.insert(t.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "token name {:?} is given more than once (`default` is --token's)",
                    t.name
                )));
            }
            if !secrets.insert(t.secret.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "token {:?} has the same secret as another token",
                    t.name
                )));
            }
        }
        if let Some(h) = &self.worker_auth_header {
            if h.is_empty()
                || h.bytes()
                    .any(|b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
            {
                return Err(ConfigError::Invalid(
                    "the worker Authorization header (--worker-auth-header) must be non-empty printable ASCII"
                        .into(),
                ));
            }
        }
        check_url("--worker-base-url", &self.worker_base_url).map_err(ConfigError::Invalid)?;
        let mut seen = std::collections::HashSet::new();
        for w in &self.worker_urls {
            if !seen.insert(w.name.as_str()) {
                return Err(ConfigError::Duplicate {
                    what: "URL",
                    name: w.name.clone(),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        for w in &self.worker_concurrency {
            if !seen.insert(w.name.as_str()) {
                return Err(ConfigError::Duplicate {
                    what: "concurrency limit",
                    name: w.name.clone(),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        for w in &self.workgroup_limits {
            if !seen.insert(w.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "workgroup {:?} is given more than one --workgroup-limit",
                    w.name
                )));
            }
        }
        Ok(())
    }

    /// Every API token: `--token` (the admin token named `default`) first,
    /// then `--tokens`. Empty when auth is off.
    pub fn api_tokens(&self) -> Vec<NamedToken> {
        let mut all = Vec::with_capacity(self.tokens.len() + 1);
        if let Some(t) = &self.token {
            all.push(NamedToken {
                name: DEFAULT_TOKEN_NAME.to_string(),
                scope: TokenScope::Admin,
                secret: t.trim().to_string(),
            });
        }
        all.extend(self.tokens.iter().cloned());
        all
    }

    /// The worker call timeout.
    pub fn worker_timeout(&self) -> Duration {
        Duration::from_secs(self.worker_timeout)
    }

    /// How long shutdown waits for calls in flight.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace)
    }

    /// The engine's longest poll for its next message before it sleeps.
    pub fn idle_poll(&self) -> Duration {
        Duration::from_micros(self.idle_poll_us)
    }

    /// Per-worker URLs by worker name.
    pub fn worker_url_map(&self) -> HashMap<String, String> {
        self.worker_urls
            .iter()
            .map(|w| (w.name.clone(), w.url.clone()))
            .collect()
    }

    /// Per-worker concurrency limits by worker name.
    pub fn worker_limits(&self) -> HashMap<String, u32> {
        self.worker_concurrency
            .iter()
            .map(|w| (w.name.clone(), w.limit))
            .collect()
    }

    /// Workgroup limits by workgroup name.
    pub fn workgroup_limit_map(&self) -> HashMap<String, crew_core::WorkgroupLimits> {
        self.workgroup_limits
            .iter()
            .map(|w| (w.name.clone(), w.limits))
            .collect()
    }

    /// The worker client's settings.
    pub fn worker_client_config(&self) -> WorkerClientConfig {
        WorkerClientConfig {
            base_url: self.worker_base_url.clone(),
            worker_urls: self.worker_url_map(),
            authorization: self.worker_auth_header.clone(),
            default_timeout: self.worker_timeout(),
            max_response_bytes: self.max_response_bytes,
            signing_secret: self.worker_signing_secret.clone(),
        }
    }
}

/// `$XDG_DATA_HOME/crew/crew.redb`, else `~/.local/share/crew/crew.redb`,
/// else `crew.redb` in the working directory.
pub fn default_db_path() -> PathBuf {
    db_path_from(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

fn db_path_from(xdg: Option<std::ffi::OsString>, home: Option<std::ffi::OsString>) -> PathBuf {
    // The XDG spec says relative values are to be ignored.
    let xdg = xdg.map(PathBuf::from).filter(|p| p.is_absolute());
    let home = home.map(PathBuf::from).filter(|p| p.is_absolute());
    let base = match (xdg, home) {
        (Some(x), _) => x,
        (None, Some(h)) => h.join(".local").join("share"),
        (None, None) => return PathBuf::from("crew.redb"),
    };
    base.join("crew").join("crew.redb")
}

fn split_pair<'a>(s: &'a str, what: &str) -> Result<(&'a str, &'a str), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME={what}, got {s:?}"))?;
    let name = name.trim();
    if !crew_core::dag::is_safe_name(name) {
        return Err(format!(
            "worker name {name:?} is not valid: use 1 to {} characters of A-Z a-z 0-9 . _ : - (not starting with a dot)",
            crew_core::dag::MAX_ID_LEN
        ));
    }
    Ok((name, value.trim()))
}

/// Checks that `s` is an absolute `http` or `https` URL.
fn check_url(what: &str, s: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("{what}: {s:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("{what}: scheme {other:?} is not http or https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{what}: {s:?} has no host"));
    }
    Ok(())
}

/// Parses `NAME=URL` (the URL must be absolute `http` or `https`).
pub fn parse_worker_url(s: &str) -> Result<WorkerUrl, String> {
    let (name, url) = split_pair(s, "URL")?;
    check_url(&format!("the URL of worker {name:?}"), url)?;
    Ok(WorkerUrl {
        name: name.to_string(),
        url: url.to_string(),
    })
}

/// Parses `NAME:SCOPE:SECRET`: a safe name, `admin` or `read-only`, and a
/// non-empty printable secret (which may itself contain `:`, not `,`).
pub fn parse_named_token(s: &str) -> Result<NamedToken, String> {
    let mut parts = s.splitn(3, ':');
    let (Some(name), Some(scope), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
        // Never echo the value: it may be a secret given the wrong way.
        return Err("expected NAME:SCOPE:SECRET".to_string());
    };
    let name = name.trim();
    if !crew_core::dag::is_safe_name(name) {
        return Err(format!(
            "token name {name:?} is not valid: use 1 to {} characters of A-Z a-z 0-9 . _ - (not starting with a dot)",
            crew_core::dag::MAX_ID_LEN
        ));
    }
    let scope = match scope.trim().to_ascii_lowercase().as_str() {
        "admin" => TokenScope::Admin,
        "read-only" | "readonly" | "read_only" => TokenScope::ReadOnly,
        other => {
            return Err(format!(
                "the scope of token {name:?} must be admin or read-only, got {other:?}"
            ))
        }
    };
    let secret = secret.trim();
    if secret.is_empty() || secret.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(format!(
            "the secret of token {name:?} must be non-empty printable ASCII without spaces"
        ));
    }
    Ok(NamedToken {
        name: name.to_string(),
        scope,
        secret: secret.to_string(),
    })
}

/// Parses `NAME=N` with N a positive integer.
pub fn parse_worker_concurrency(s: &str) -> Result<WorkerConcurrency, String> {
    let (name, n) = split_pair(s, "N")?;
    let limit: u32 = n.parse().map_err(|_| {
        format!("the concurrency of worker {name:?} must be a positive integer, got {n:?}")
    })?;
    if limit == 0 {
        return Err(format!(
            "the concurrency of worker {name:?} must be at least 1"
        ));
    }
    Ok(WorkerConcurrency {
        name: name.to_string(),
        limit,
    })
}

/// Parses `NAME=concurrency:N,rate:R,burst:B` (any subset of the three, or
/// `none`).
pub fn parse_workgroup_limit(s: &str) -> Result<WorkgroupLimit, String> {
    let (name, spec) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=concurrency:N,rate:R,burst:B, got {s:?}"))?;
    let name = name.trim();
    if !crew_core::dag::is_safe_name(name) {
        return Err(format!(
            "workgroup name {name:?} is not valid: use 1 to {} characters of A-Z a-z 0-9 . _ : - (not starting with a dot)",
            crew_core::dag::MAX_ID_LEN
        ));
    }
    let limits = crew_core::WorkgroupLimits::parse(spec)
        .map_err(|e| format!("the limits of workgroup {name:?}: {e}"))?;
    Ok(WorkgroupLimit {
        name: name.to_string(),
        limits,
    })
}

/// Parses a byte count (at least 1 KiB, at most 1 GiB).
pub fn parse_byte_limit(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number of bytes, got {s:?}"))?;
    if !(1024..=1024 * MIB).contains(&n) {
        return Err(format!(
            "{n} bytes is out of range: use 1024 to {}",
            1024 * MIB
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let mut all = vec!["crewd"];
        all.extend_from_slice(args);
        Config::try_parse_from(all)
    }

    #[test]
    fn clap_definition_is_consistent() {
        Config::command().debug_assert();
    }

    #[test]
    fn defaults() {
        // Only flags are given, so the environment of the test process must
        // not carry CREW_* variables for this to be meaningful; CI does not.
        let c = parse(&["--db", "/tmp/x.redb"]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8090");
        assert_eq!(c.worker_base_url, "http://127.0.0.1:8091/");
        assert_eq!(c.worker_timeout(), Duration::from_secs(300));
        assert_eq!(c.max_in_flight, 256);
        assert_eq!(c.max_request_bytes, 16 * MIB);
        assert_eq!(c.max_response_bytes, 16 * MIB);
        assert_eq!(c.event_retention, 100_000);
        assert_eq!(
            u128::from(c.checkpoint_ms),
            crate::storage::DEFAULT_CHECKPOINT_EVERY.as_millis()
        );
        assert_eq!(
            u128::from(c.writeback_ms),
            crate::storage::DEFAULT_WRITEBACK_EVERY.as_millis()
        );
        assert_eq!(
            parse(&["--db", "x", "--writeback-ms", "0"])
                .unwrap()
                .writeback_ms,
            0,
            "0 turns it off"
        );
        assert_eq!(c.shutdown_grace(), Duration::from_secs(30));
        assert_eq!(c.idle_poll(), Duration::from_micros(400));
        assert_eq!(
            parse(&["--db", "x", "--idle-poll-us", "0"])
                .unwrap()
                .idle_poll(),
            Duration::ZERO,
            "0 turns it off"
        );
        assert!(parse(&["--db", "x", "--idle-poll-us", "200000"]).is_err());
        assert_eq!(c.backoff, Backoff::Fixed);
        assert_eq!(c.backoff_cap, 3600);
        assert!(!c.demo);
        assert!(c.token.is_none());
        c.validate().unwrap();
        let d = Config::with_db("/tmp/x.redb");
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
    }

    #[test]
    fn repeatable_worker_flags() {
        let c = parse(&[
            "--worker-url",
            "fetch=https://w.example/fetch",
            "--worker-url",
            "store=http://10.0.0.1:9000/s?x=1",
            "--worker-concurrency",
            "fetch=4",
            "--worker-concurrency",
            "store=1",
            "--backoff",
            "exponential",
            "--demo",
        ])
        .unwrap();
        assert_eq!(c.worker_url_map()["store"], "http://10.0.0.1:9000/s?x=1");
        assert_eq!(c.worker_limits()["fetch"], 4);
        assert_eq!(c.backoff, Backoff::Exponential);
        assert!(c.demo);
        c.validate().unwrap();
        let wc = c.worker_client_config();
        assert_eq!(wc.worker_urls.len(), 2);
        assert_eq!(wc.default_timeout, Duration::from_secs(300));
    }

    #[test]
    fn comma_separated_values() {
        let c = parse(&["--worker-url", "a=http://h/a,b=http://h/b"]).unwrap();
        assert_eq!(c.worker_urls.len(), 2);
        let c = parse(&["--worker-concurrency", "a=1,b=2"]).unwrap();
        assert_eq!(c.worker_limits()["b"], 2);
    }

    #[test]
    fn pair_parsers_explain_errors() {
        let e = parse_worker_url("fetch").unwrap_err();
        assert!(e.contains("NAME=URL"), "{e}");
        let e = parse_worker_url("../x=http://h/").unwrap_err();
        assert!(e.contains("not valid"), "{e}");
        let e = parse_worker_url("f=ftp://h/").unwrap_err();
        assert!(e.contains("http or https"), "{e}");
        let e = parse_worker_url("f=not a url").unwrap_err();
        assert!(e.contains("not a URL"), "{e}");
        let e = parse_worker_concurrency("f=abc").unwrap_err();
        assert!(e.contains("positive integer"), "{e}");
        let e = parse_worker_concurrency("f=0").unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let e = parse_worker_concurrency("=3").unwrap_err();
        assert!(e.contains("not valid"), "{e}");
        assert_eq!(
            parse_worker_concurrency(" f = 3 ").unwrap(),
            WorkerConcurrency {
                name: "f".into(),
                limit: 3
            }
        );
        assert!(parse(&["--worker-url", "nope"]).is_err());
        assert!(parse(&["--worker-timeout", "0"]).is_err());
        assert!(parse(&["--backoff", "linear"]).is_err());
        assert!(parse(&["--max-request-bytes", "12"]).is_err());
        assert!(parse_byte_limit("2048").is_ok());
    }

    #[test]
    fn workgroup_limits() {
        let c = parse(&[
            "--workgroup-limit",
            "fb=concurrency:2,rate:5,burst:1",
            "--workgroup-limit",
            "crm=rate:0.5;stripe=concurrency:10",
        ])
        .unwrap();
        c.validate().unwrap();
        let m = c.workgroup_limit_map();
        assert_eq!(m.len(), 3);
        assert_eq!(m["fb"].max_concurrency, Some(2));
        assert_eq!(m["fb"].max_rate, Some(5.0));
        assert_eq!(m["fb"].burst, Some(1));
        assert_eq!(m["crm"].effective_burst(), Some(1));
        assert_eq!(m["stripe"].max_rate, None);
        for bad in [
            "fb",
            "=rate:1",
            "fb=concurrency:0",
            "fb=rate:-1",
            "fb=rate:x",
            "fb=speed:2",
        ] {
            let e = parse_workgroup_limit(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        let e = parse_workgroup_limit("fb=concurrency:0").unwrap_err();
        assert!(e.contains("\"fb\"") && e.contains("maxConcurrency"), "{e}");
        let dup = parse(&["--workgroup-limit", "a=rate:1;a=rate:2"]).unwrap();
        assert!(matches!(dup.validate(), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn validate_refuses_duplicates_and_empty_secrets() {
        let c = parse(&[
            "--worker-url",
            "a=http://h/1",
            "--worker-url",
            "a=http://h/2",
        ])
        .unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Duplicate { what: "URL", .. })
        ));
        let c = parse(&["--worker-concurrency", "a=1,a=2"]).unwrap();
        assert!(c.validate().is_err());
        let mut c = Config::with_db("x");
        c.token = Some("  ".into());
        assert!(c.validate().is_err());
        let mut c = Config::with_db("x");
        c.worker_auth_header = Some("Bearer a\nb".into());
        assert!(c.validate().is_err());
        let mut c = Config::with_db("x");
        c.worker_base_url = "localhost:8091".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = parse(&[
            "--token",
            "s3cret-token",
            "--worker-auth-header",
            "Bearer w0rker-secret",
            "--worker-signing-secret",
            "whsec_c2lnbmluZy1rZXk=",
        ])
        .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("s3cret"), "{d}");
        assert!(!d.contains("w0rker"), "{d}");
        assert!(!d.contains("whsec_"), "{d}");
        assert!(d.contains("<redacted>"), "{d}");
    }

    #[test]
    fn named_tokens() {
        let c = parse(&[
            "--token",
            "adm1n",
            "--tokens",
            "viewer:read-only:v-secret,ci:admin:c:secret",
        ])
        .unwrap();
        c.validate().unwrap();
        let all = c.api_tokens();
        let summary: Vec<_> = all.iter().map(|t| (t.name.as_str(), t.scope)).collect();
        assert_eq!(
            summary,
            [
                ("default", TokenScope::Admin),
                ("viewer", TokenScope::ReadOnly),
                ("ci", TokenScope::Admin)
            ]
        );
        assert_eq!(all[2].secret, "c:secret");
        let d = format!("{c:?}");
        assert!(
            d.contains("viewer") && !d.contains("v-secret") && !d.contains("adm1n"),
            "{d}"
        );

        let e = parse_named_token("viewer-only-a-secret").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        let e = parse_named_token("v:owner:x").unwrap_err();
        assert!(e.contains("admin or read-only"), "{e}");
        assert!(parse_named_token("v:admin:").is_err());
        assert!(parse_named_token("v:admin:a b").is_err());
        assert!(parse_named_token("../v:admin:x").is_err());

        let dup_name = parse(&["--tokens", "a:admin:x,a:read-only:y"]).unwrap();
        assert!(dup_name.validate().is_err());
        let dup_default = parse(&["--token", "x", "--tokens", "default:admin:y"]).unwrap();
        assert!(dup_default.validate().is_err());
        let dup_secret = parse(&["--token", "x", "--tokens", "v:read-only:x"]).unwrap();
        assert!(dup_secret.validate().is_err());

        // A newline from an env file is dropped (a bearer header could
        // never carry it); a blank inside is refused.
        let newline = parse(&["--token", "abc\n"]).unwrap();
        newline.validate().unwrap();
        assert_eq!(newline.api_tokens()[0].secret, "abc");
        let inner = parse(&["--token", "a bc"]).unwrap();
        assert!(inner.validate().is_err());
        let dup_trimmed = parse(&["--token", " x", "--tokens", "v:read-only:x"]).unwrap();
        assert!(dup_trimmed.validate().is_err());
    }

    #[test]
    fn db_path_follows_xdg() {
        assert_eq!(
            db_path_from(Some("/data".into()), Some("/home/u".into())),
            PathBuf::from("/data/crew/crew.redb")
        );
        assert_eq!(
            db_path_from(Some("relative".into()), Some("/home/u".into())),
            PathBuf::from("/home/u/.local/share/crew/crew.redb")
        );
        assert_eq!(
            db_path_from(None, Some("/home/u".into())),
            PathBuf::from("/home/u/.local/share/crew/crew.redb")
        );
        assert_eq!(db_path_from(None, None), PathBuf::from("crew.redb"));
    }
}
