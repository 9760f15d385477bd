//! The scale scenario: a store holding a million tasks in one group, built
//! offline with the daemon's own storage and rules, then served by the real
//! binary.
//!
//! The file is written in big transactions: each batch of tasks is made by
//! `crew_core::rules::create_tasks` (validated like an API request), and the
//! tasks meant to be history are marked complete (with an output) in the
//! changes before they are applied, as if their worker had answered. The
//! incomplete tasks call the worker `hold`, which never answers, in the
//! workgroup [`WORKGROUP`]: after a restart the daemon fills its in-flight
//! limit with them and then idles with the rest queued.

use super::daemon::Daemon;
use super::scenarios::{Row, Target};
use super::worker::{lock, Worker};
use super::{Api, Samples};
use anyhow::{bail, Context};
use crew_core::rules;
use crew_core::wire::{NewTask, NewTaskGroup};
use crew_core::{Change, Timestamp};
use crewd::storage::{Store, StoreConfig};
use std::path::Path;
use std::time::{Duration, Instant};

/// The group holding every task.
pub const GROUP: &str = "scale";
/// The workgroup of the incomplete tasks.
pub const WORKGROUP: &str = "scale-wg";
/// Tasks per write transaction while building.
const BATCH: usize = 50_000;
/// Pause/resume calls timed per restart.
const PAUSE_CALLS: usize = 10;

/// Writes `total` tasks into a new store at `path`, the last `incomplete`
/// of them incomplete; returns the seconds it took.
pub fn build(path: &Path, total: usize, incomplete: usize) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let store = Store::open(path, StoreConfig::default())?;
    let now = Timestamp::now();
    let mut n = 0u64;
    let mut gen = || {
        n += 1;
        format!("scale-gen-{n}")
    };
    let mut tx = store.write()?;
    let spec = NewTaskGroup {
        id: Some(GROUP.into()),
        name: GROUP.into(),
        ..Default::default()
    };
    let ch = rules::create_group(&tx, spec, now, &mut gen)?;
    tx.apply(&ch, now)?;
    tx.commit()?;
    let first_incomplete = total.saturating_sub(incomplete);
    let mut start = 0;
    while start < total {
        let end = (start + BATCH).min(total);
        let specs: Vec<NewTask> = (start..end)
            .map(|i| {
                let live = i >= first_incomplete;
                NewTask {
                    id: Some(format!("s{i:08}")),
                    name: format!("task {i}"),
                    worker: if live { "hold" } else { "echo" }.into(),
                    workgroup: if live { WORKGROUP } else { "" }.into(),
                    input: serde_json::json!({"n": i}),
                    ..Default::default()
                }
            })
            .collect();
        let mut tx = store.write()?;
        let mut ch = rules::create_tasks(&tx, GROUP, specs, now, &mut gen)?;
        for op in &mut ch.ops {
            if let Change::CreateTask(t) = op {
                if t.worker == "echo" {
                    t.is_complete = true;
                    t.output = serde_json::json!(1);
                }
            }
        }
        tx.apply(&ch, now)?;
        tx.commit()?;
        start = end;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Restarts the daemon over the built store `runs` times and times
/// recovery, memory and pauses.
pub async fn measure(
    worker: &Worker,
    db: &Path,
    incomplete: usize,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let mut restart = Samples::default();
    let mut rss = Samples::default();
    let mut per_task = Samples::default();
    let mut per_task_above_empty = Samples::default();
    let empty = empty_daemon_rss(worker, db).await?;
    let mut group_pause = Samples::default();
    let mut group_resume = Samples::default();
    let mut wg_pause = Samples::default();
    let mut wg_resume = Samples::default();
    for _ in 0..runs {
        worker.log.reset();
        let mut d = Daemon::spawn(db, worker.addr)?;
        let first = wait_first_hold(worker).await?;
        restart.push((first - d.spawned).as_secs_f64());
        d.wait_healthy().await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let bytes = d.rss_bytes().context("no VmRSS in /proc")? as f64;
        rss.push(bytes / (1024.0 * 1024.0));
        per_task.push(bytes / incomplete.max(1) as f64);
        per_task_above_empty.push((bytes - empty) / incomplete.max(1) as f64);
        let api = Api::new(d.api());
        for _ in 0..PAUSE_CALLS {
            group_pause.push(timed_post(&api, &format!("/task_group/{GROUP}/pause"), None).await?);
            group_resume
                .push(timed_post(&api, &format!("/task_group/{GROUP}/resume"), None).await?);
            let body = serde_json::json!({"seconds": 3600});
            wg_pause.push(
                timed_post(&api, &format!("/workgroup/{WORKGROUP}/pause"), Some(body)).await?,
            );
            wg_resume
                .push(timed_post(&api, &format!("/workgroup/{WORKGROUP}/resume"), None).await?);
        }
        stop(&mut d).await;
    }
    let k = incomplete / 1000;
    Ok(vec![
        Row::new(
            "scale: restart to first dispatch",
            "s",
            restart,
            Some(Target::Below(5.0)),
        ),
        Row::new("scale: resident memory after recovery", "MiB", rss, None),
        Row::new(
            "scale: resident bytes per incomplete task",
            "B",
            per_task,
            Some(Target::Below(500.0)),
        ),
        Row::new(
            "scale: the same, above an empty store's daemon",
            "B",
            per_task_above_empty,
            None,
        ),
        Row::new(
            "scale: pause group (1M tasks)",
            "ms",
            group_pause,
            Some(Target::Below(5.0)),
        ),
        Row::new(
            "scale: resume group (1M tasks)",
            "ms",
            group_resume,
            Some(Target::Below(5.0)),
        ),
        Row::new(
            &format!("scale: pause workgroup ({k}k tasks)"),
            "ms",
            wg_pause,
            Some(Target::Below(5.0)),
        ),
        Row::new(
            &format!("scale: resume workgroup ({k}k tasks)"),
            "ms",
            wg_resume,
            Some(Target::Below(5.0)),
        ),
    ])
}

/// Resident bytes of the daemon serving an empty store (beside `db`):
/// what it holds whatever it stores (its code, runtime and page cache).
async fn empty_daemon_rss(worker: &Worker, db: &Path) -> anyhow::Result<f64> {
    let empty = db.with_extension("empty.redb");
    let mut d = Daemon::start(&empty, worker.addr).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bytes = d.rss_bytes().context("no VmRSS in /proc")? as f64;
    stop(&mut d).await;
    Ok(bytes)
}

async fn wait_first_hold(worker: &Worker) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + super::RUN_TIMEOUT;
    loop {
        if let Some(t) = *lock(&worker.log.first_hold) {
            return Ok(t);
        }
        if Instant::now() > deadline {
            bail!("no dispatch within {:?} of the restart", super::RUN_TIMEOUT);
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Milliseconds one POST took, answer included.
async fn timed_post(api: &Api, path: &str, body: Option<serde_json::Value>) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    api.post(path, &body.unwrap_or(serde_json::json!({})))
        .await?;
    Ok(t0.elapsed().as_secs_f64() * 1000.0)
}

/// Stops the daemon cleanly (SIGTERM: it commits and closes the file), so
/// the next start is an ordinary restart rather than crash recovery.
async fn stop(d: &mut Daemon) {
    let pid = d.pid().to_string();
    let sent = tokio::process::Command::new("kill")
        .arg("-TERM")
        .arg(&pid)
        .status()
        .await
        .is_ok_and(|s| s.success());
    if sent {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && Path::new(&format!("/proc/{pid}/status")).exists() {
            if d.try_exited() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    d.kill();
}
