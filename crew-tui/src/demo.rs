//! `crew-tui --demo`: a private `crewd --demo` for the console to attach
//! to, stopped when the console exits (also on error or panic).

use anyhow::{bail, Context};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running demo daemon; dropping it kills the process and removes its
/// directory (the database, the journal beside it, the log).
#[derive(Debug)]
pub struct DemoDaemon {
    child: Child,
    /// The daemon's address.
    pub url: String,
    log: PathBuf,
    /// Removed when dropped, after the process is gone (fields drop after
    /// [`Drop::drop`]).
    _dir: tempfile::TempDir,
}

impl Drop for DemoDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `crewd` next to the current executable, else on `PATH`.
pub fn find_crewd() -> Option<PathBuf> {
    let name = format!("crewd{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(&name)))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(&name))
                .find(|p| p.is_file())
        })
    })
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Starts `crewd --demo` on a free port with a temporary database and waits
/// until `/healthz` answers.
pub async fn start() -> anyhow::Result<DemoDaemon> {
    let crewd = find_crewd().context("crewd not found next to crew-tui nor on PATH")?;
    let port = free_port()?;
    let dir = tempfile::Builder::new()
        .prefix("crew-demo-")
        .tempdir()
        .context("creating the demo's directory")?;
    let db = dir.path().join("demo.redb");
    let log = dir.path().join("crewd.log");
    let log_file = std::fs::File::create(&log).context("creating the demo log")?;
    let child = Command::new(&crewd)
        .arg("--demo")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--db")
        .arg(&db)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {}", crewd.display()))?;
    let mut daemon = DemoDaemon {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
        _dir: dir,
    };
    let health = format!("{}/healthz", daemon.url);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let start = Instant::now();
    loop {
        if let Some(status) = daemon.child.try_wait()? {
            bail!("crewd --demo exited ({status}):\n{}", log_tail(&daemon.log));
        }
        if let Ok(r) = http.get(&health).send().await {
            if r.status().is_success() {
                return Ok(daemon);
            }
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!(
                "crewd --demo did not become healthy:\n{}",
                log_tail(&daemon.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
