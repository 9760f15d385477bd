//! Wiring: the store (opened while the listener answers probes), the
//! engine, the API, the stream and (with `--demo`) the demo workers,
//! served on a listener until a shutdown signal.
//!
//! Like mini-redis, the entry is a plain function that takes a bound
//! listener and a shutdown future, so tests run the real daemon in-process
//! on `127.0.0.1:0`.

use crate::api::auth::Tokens;
use crate::api::{self, ApiState};
use crate::config::{Backoff, Config};
use crate::dispatch::client::WorkerClient;
use crate::engine::{self, EngineConfig};
use crate::storage::{StorageError, Store, StoreConfig};
use crate::stream::hub::EventHub;
use crate::stream::ws::StreamState;
use anyhow::Context;
use crew_core::rules::RetryPolicy;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Runs the daemon on `listener` until `shutdown` completes: stops
/// accepting, stops dispatching, waits for calls in flight (up to the grace
/// period), commits their results, and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    if let Some(dir) = config.db.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        }
    }
    let db = config.db.clone();
    let store_config = StoreConfig {
        event_retention: config.event_retention,
        audit_retention: config.audit_retention,
        cache_bytes: usize::try_from(config.cache_mib.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        checkpoint_every: std::time::Duration::from_millis(config.checkpoint_ms),
        writeback_every: (config.writeback_ms > 0)
            .then(|| std::time::Duration::from_millis(config.writeback_ms)),
    };
    run_opening(listener, config, shutdown, move || {
        Store::open(&db, store_config)
    })
    .await
}

/// [`run`] with the store opened by `open`, on a blocking thread while the
/// listener answers `/livez` ([`crate::opening`]): tests open it slowly.
pub async fn run_opening(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    open: impl FnOnce() -> Result<Store, StorageError> + Send + 'static,
) -> anyhow::Result<()> {
    let (listener, opened) = crate::opening::answer_while(listener, open).await?;
    let store =
        opened.with_context(|| format!("cannot open the database {}", config.db.display()))?;
    run_with_store(listener, config, store, shutdown).await
}

/// [`run`] on a store opened by the caller (tests inject storage faults
/// this way); `config.db` is only used in messages.
pub async fn run_with_store(
    listener: TcpListener,
    mut config: Config,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    // The caller's handles on the store; every other one is ours, and is
    // dropped before this returns.
    let caller_handles = store.handles();
    let addr = listener.local_addr()?;
    if config.demo {
        config.worker_base_url = format!("http://{addr}{}", crate::demo::DEMO_WORKERS_PATH);
    }
    let hub = EventHub::new();
    let client = Arc::new(WorkerClient::new(config.worker_client_config())?);
    let retry_policy = match config.backoff {
        Backoff::Fixed => RetryPolicy::Fixed,
        Backoff::Exponential => RetryPolicy::Exponential {
            cap_secs: config.backoff_cap,
        },
    };
    let (handle, thread) = engine::start(
        store.clone(),
        hub.clone(),
        client,
        EngineConfig {
            retry_policy,
            max_in_flight: config.max_in_flight,
            worker_limits: config.worker_limits(),
            workgroup_limits: config.workgroup_limit_map(),
            worker_timeout: config.worker_timeout(),
            shutdown_grace: config.shutdown_grace(),
            idle_poll: config.idle_poll(),
        },
    )?;
    let tokens = Tokens::new(config.api_tokens());
    if tokens.enabled() {
        // Names and scopes only: secrets are never logged.
        tracing::info!(tokens = ?tokens, "API auth on");
    }
    let state = ApiState {
        engine: handle.clone(),
        store: store.clone(),
        tokens: tokens.clone(),
        hub: hub.clone(),
        max_request_bytes: config.max_request_bytes,
        demo_seeded: config.demo.then(Default::default),
    };
    let demo_seeded = state.demo_seeded.clone();
    let stream_runtime = crate::stream::runtime::StreamRuntime::start()
        .context("cannot start the stream's threads")?;
    let stream = StreamState {
        store: store.clone(),
        hub: hub.clone(),
        tokens,
        runtime: stream_runtime.handle(),
        // A task's input and output, and its errors and fields besides.
        max_event_bytes: config
            .max_request_bytes
            .saturating_add(config.max_response_bytes)
            .saturating_add(1024 * 1024),
    };
    let stream = api::with_json_errors(crate::stream::ws::router(stream), config.max_request_bytes);
    let mut app = api::router(state).merge(stream);
    let demo_loop = if config.demo {
        app = app.merge(crate::demo::worker_routes());
        let (engine, store) = (handle.clone(), store.clone());
        Some(tokio::spawn(async move {
            crate::demo::seed(&engine, &store).await;
            if let Some(seeded) = demo_seeded {
                seeded.store(true, std::sync::atomic::Ordering::Release);
            }
            crate::demo::run_demo_loop(engine, store).await;
        }))
    } else {
        None
    };
    let policy = crate::retention::RetentionPolicy {
        max_age: config
            .retain_finished_for
            .map(std::time::Duration::from_secs),
        max_finished_groups: config.retain_finished_groups,
        every: std::time::Duration::from_secs(config.retention_interval),
    };
    let retention = policy.is_active().then(|| {
        tokio::spawn(crate::retention::run_retention(
            handle.clone(),
            store.clone(),
            policy,
        ))
    });
    let schedules = tokio::spawn(crate::recurring::run_schedules(
        handle.clone(),
        store.clone(),
    ));
    tracing::info!(%addr, db = %config.db.display(), demo = config.demo, "crewd listening");
    // Stream connections stay open until told otherwise: close them when
    // shutdown starts, or the graceful shutdown would wait for them forever.
    let closing_hub = hub.clone();
    let shutdown = async move {
        shutdown.await;
        closing_hub.close_all();
    };
    let served = crate::http::serve(listener, app, Default::default(), shutdown).await;
    for task in [demo_loop, retention, Some(schedules)]
        .into_iter()
        .flatten()
    {
        task.abort();
        // Resolves once the task is dropped, with its handle on the store.
        let _ = task.await;
    }
    thread.shutdown().await;
    release_store(&store, caller_handles).await;
    drop(stream_runtime);
    tracing::info!("crewd stopped");
    served.context("the HTTP server failed")
}

/// Waits (a little) until every handle on the store this daemon made is
/// dropped, so that the file is closed when [`run`] returns: stream
/// connections end on their own tasks after being told to close.
async fn release_store(store: &Store, caller_handles: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.handles() > caller_handles {
        if std::time::Instant::now() > deadline {
            tracing::warn!(
                handles = store.handles() - caller_handles,
                "the store is still in use after shutdown"
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
