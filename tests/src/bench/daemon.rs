//! The real `crewd` release binary, run as a child process on loopback.

use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to answer `/healthz` (a restart over a big
/// store included).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The `crewd` binary next to the running bench executable.
pub fn crewd_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the bench executable")?;
    let dir = exe
        .parent()
        .context("the bench executable has no directory")?;
    let bin = dir.join(format!("crewd{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!(
            "{} is missing: run `cargo build --release --bins` first",
            bin.display()
        );
    }
    Ok(bin)
}

/// A running daemon; killed when dropped.
pub struct Daemon {
    child: Child,
    /// Where its API listens.
    pub addr: SocketAddr,
    /// When the process was spawned.
    pub spawned: Instant,
}

impl Daemon {
    /// Spawns `crewd` on a free loopback port with the store at `db`, its
    /// workers at `worker`, and waits until it answers `/healthz`.
    pub async fn start(db: &Path, worker: SocketAddr) -> anyhow::Result<Daemon> {
        let d = Daemon::spawn(db, worker)?;
        d.wait_healthy().await?;
        Ok(d)
    }

    /// Spawns `crewd` without waiting for it.
    pub fn spawn(db: &Path, worker: SocketAddr) -> anyhow::Result<Daemon> {
        let addr = free_port()?;
        let child = Command::new(crewd_binary()?)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--db")
            .arg(db)
            .arg("--worker-base-url")
            .arg(format!("http://{worker}/"))
            .arg("--shutdown-grace")
            .arg("1")
            .env("RUST_LOG", "warn")
            .env_remove("CREW_AUTH_TOKEN")
            .env_remove("CREW_DEMO")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start crewd")?;
        Ok(Daemon {
            child,
            addr,
            spawned: Instant::now(),
        })
    }

    /// Waits until `/healthz` answers 200.
    pub async fn wait_healthy(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let url = format!("http://{}/healthz", self.addr);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!("crewd did not become healthy within {START_TIMEOUT:?}")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in bytes (VmRSS), when /proc has it.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// The API base URL, `http://addr/api/v1`.
    pub fn api(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    /// Whether the process has exited (reaps it).
    pub fn try_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}
