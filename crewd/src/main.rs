//! `crewd`: the Crew daemon.

use clap::Parser;
use crewd::config::Config;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// mimalloc rather than the system allocator: the engine thread allocates
/// and frees a task's strings many times per change, and glibc's `malloc`
/// and `free` were about a quarter of its time (mimalloc measured 12-15%
/// less CPU per task, on the engine and the HTTP threads alike). Without
/// transparent huge pages (`no_thp`): with them, resident memory at scale
/// grew by two thirds instead of a seventh.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Colours only for a terminal: logs sent to a file or journald would
    // otherwise be full of escape codes.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let config = Config::parse();
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    crewd::server::run(listener, config, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
