//! The machine's floor under the daemon's figures: what the worker calls
//! and the journal's sync cost on their own, with no daemon at all.
//!
//! - Every task costs one HTTP call. The bench's own pooled client calls
//!   the bench's worker, as many at a time as the daemon allows by default:
//!   the calls per second and the CPU they take bound any throughput this
//!   machine can reach with one call per task.
//! - A chain step is one HTTP round trip plus one durable commit: calls one
//!   at a time, and a small record written and synced the way the journal
//!   does it, bound the chain's latency from below.

use super::cpu::process_seconds;
use super::scenarios::Row;
use super::Samples;
use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

/// Calls in flight in the throughput floor: the daemon's default window.
const WINDOW: usize = 256;
/// A journal record the size of one chain step's (a completion and a
/// start), in bytes.
const RECORD_BYTES: usize = 1200;

/// A worker payload the size and shape of the daemon's for an `echo` task.
fn payload(i: usize) -> String {
    serde_json::json!({
        "taskId": format!("0000019ac5b1e2f-5d1c0a7e-{i:x}"),
        "worker": "echo",
        "input": null,
        "parents": [],
    })
    .to_string()
}

/// The figures, one row each: calls per second with `WINDOW` in flight
/// (and CPU per call, in its note), the round trip of one call at a time,
/// and the sync of one record.
pub async fn measure(
    worker: SocketAddr,
    dir: &Path,
    calls: usize,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let url = format!("http://{worker}/echo");
    let (mut rate, mut cpu_per_call) = (Samples::default(), Samples::default());
    let (mut rtt_p50, mut sync_p50) = (Samples::default(), Samples::default());
    for _ in 0..runs {
        let cpu_before = process_seconds(std::process::id());
        let t0 = Instant::now();
        let answered = stream::iter(0..calls)
            .map(|i| call(&http, &url, i))
            .buffer_unordered(WINDOW)
            .fold(anyhow::Ok(0usize), |n, r| async move { Ok(n? + r?) })
            .await;
        let secs = t0.elapsed().as_secs_f64();
        let answered: usize = answered?;
        rate.push(answered as f64 / secs);
        if let (Some(a), Some(b)) = (cpu_before, process_seconds(std::process::id())) {
            cpu_per_call.push((b - a) * 1e6 / answered.max(1) as f64);
        }

        let mut rtt = Samples::default();
        for i in 0..1000 {
            let t = Instant::now();
            call(&http, &url, i).await?;
            rtt.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        rtt_p50.push(rtt.quantile(0.5));

        let d = dir.to_path_buf();
        sync_p50.push(tokio::task::spawn_blocking(move || journal_sync(&d, 500)).await??);
    }
    let mut rate_row = Row::new(
        &format!("floor: worker calls alone, {WINDOW} in flight"),
        "calls/s",
        rate,
        None,
    );
    rate_row.note = format!(
        "each call took {:.0} us of CPU (client and worker together, median): this machine's \
         {} cores run at most {:.0} calls/s with nothing else to do",
        cpu_per_call.median(),
        cores(),
        cores() as f64 * 1e6 / cpu_per_call.median().max(1.0)
    );
    Ok(vec![
        rate_row,
        Row::new(
            "floor: one worker call at a time, round trip p50",
            "ms",
            rtt_p50,
            None,
        ),
        Row::new(
            &format!("floor: {RECORD_BYTES}-byte record written and synced, p50"),
            "ms",
            sync_p50,
            None,
        ),
    ])
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One call; `Ok(1)` once its answer is read.
async fn call(http: &reqwest::Client, url: &str, i: usize) -> anyhow::Result<usize> {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(payload(i))
        .send()
        .await?;
    let status = r.status();
    r.bytes().await?;
    anyhow::ensure!(status.is_success(), "worker answered {status}");
    Ok(1)
}

/// Median milliseconds to write a [`RECORD_BYTES`] record at the end of a
/// file written with zeros ahead, and `fdatasync` it: what the journal does
/// once per commit.
fn journal_sync(dir: &Path, n: usize) -> anyhow::Result<f64> {
    let path = dir.join("floor.journal");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let size = (n * RECORD_BYTES) as u64;
    let zeros = vec![0u8; 64 * 1024];
    let mut at = 0;
    while at < size {
        file.write_all_at(&zeros, at)?;
        at += zeros.len() as u64;
    }
    file.sync_all()?;
    let record = vec![b'x'; RECORD_BYTES];
    let mut took = Samples::default();
    for i in 0..n {
        let t = Instant::now();
        file.write_all_at(&record, (i * RECORD_BYTES) as u64)?;
        file.sync_data()?;
        took.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(took.median())
}
