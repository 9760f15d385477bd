//! CPU time by thread, read from `/proc`: which thread a scenario kept
//! busy. A figure bound by one busy thread is not moved by more cores,
//! and one with idle cores left over is not bound by CPU at all. The
//! kernel's scheduler statistics also tell how long the engine thread was
//! ready to run but waited for a core: the part of its time the other
//! threads (the daemon's, the bench's) took from it.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// CPU seconds of each group of threads, when the sample was taken.
#[derive(Clone, Debug)]
pub struct CpuSample {
    at: Instant,
    seconds: BTreeMap<&'static str, f64>,
    /// Seconds the engine thread has waited for a core so far, where the
    /// kernel keeps scheduler statistics.
    engine_waiting: Option<f64>,
}

/// The daemon's engine thread.
const ENGINE: &str = "engine thread";
/// The daemon's other threads: HTTP server and worker calls.
const DAEMON_REST: &str = "daemon's other threads";
/// This process: the benchmark's client and its worker.
const BENCH: &str = "bench client + worker";

impl CpuSample {
    /// CPU time so far of the daemon `daemon_pid` (its engine thread and
    /// the rest) and of this process. `None` where `/proc` cannot tell.
    pub fn take(daemon_pid: u32) -> Option<CpuSample> {
        let mut seconds = BTreeMap::new();
        let mut engine_waiting = None;
        for t in threads(daemon_pid)? {
            let group = if t.name == "crew-engine" {
                engine_waiting = t.waiting;
                ENGINE
            } else {
                DAEMON_REST
            };
            *seconds.entry(group).or_insert(0.0) += t.running;
        }
        seconds.insert(BENCH, process_seconds(std::process::id())?);
        Some(CpuSample {
            at: Instant::now(),
            seconds,
            engine_waiting,
        })
    }

    /// CPU seconds the daemon's engine thread used between `before` and
    /// this sample. Other work on the machine moves it less than it moves
    /// wall time (by a tenth rather than a third), though not to nothing.
    pub fn engine_seconds_since(&self, before: &CpuSample) -> f64 {
        let at = |s: &CpuSample| s.seconds.get(ENGINE).copied().unwrap_or(0.0);
        at(self) - at(before)
    }

    /// CPU per task of each group of threads between `before` and this
    /// sample, and in all, as a note; with what the machine's cores could
    /// do at that cost, were they kept busy: a ceiling on throughput that
    /// no change of threads or scheduling lifts, only less CPU per task.
    pub fn per_task_since(&self, before: &CpuSample, tasks: usize) -> String {
        let tasks = tasks.max(1) as f64;
        let mut parts = Vec::new();
        let mut total = 0.0;
        for (group, now) in &self.seconds {
            let used = now - before.seconds.get(group).copied().unwrap_or(0.0);
            total += used;
            parts.push(format!("{group} {:.1}", 1e6 * used / tasks));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let per_task = total / tasks;
        format!(
            "CPU per task (us): {}, {:.1} in all; at that, the machine's {cores} cores allow at most {:.0} tasks/s",
            parts.join(", "),
            1e6 * per_task,
            cores / per_task.max(1e-9)
        )
    }

    /// How busy each group was between `before` and this sample, in
    /// percent of one core, and how much of the machine stayed idle.
    pub fn describe_since(&self, before: &CpuSample) -> String {
        let wall = self
            .at
            .duration_since(before.at)
            .max(Duration::from_millis(1));
        let mut parts = Vec::new();
        let mut total = 0.0;
        for (group, now) in &self.seconds {
            let used = now - before.seconds.get(group).copied().unwrap_or(0.0);
            total += used;
            parts.push(format!("{group} {:.0}%", 100.0 * used / wall.as_secs_f64()));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let idle = (100.0 * (1.0 - total / (wall.as_secs_f64() * cores))).max(0.0);
        let mut text = format!(
            "busy (% of one core): {}; {idle:.0}% of the machine's {cores} cores idle",
            parts.join(", ")
        );
        if let (Some(now), Some(then)) = (self.engine_waiting, before.engine_waiting) {
            text += &format!(
                "; the engine thread waited for a core {:.0}% of the time",
                100.0 * (now - then) / wall.as_secs_f64()
            );
        }
        text
    }
}

/// CPU seconds (user + system) of the whole process `pid` so far.
pub fn process_seconds(pid: u32) -> Option<f64> {
    Some(threads(pid)?.iter().map(|t| t.running).sum())
}

/// One thread's name and times so far.
struct ThreadTimes {
    name: String,
    /// Seconds on a core (user + system).
    running: f64,
    /// Seconds ready to run but waiting for a core, when known.
    waiting: Option<f64>,
}

/// Each thread of `pid`. Times come from `schedstat` (nanoseconds) where
/// the kernel keeps scheduler statistics, else from `stat` (clock ticks,
/// a hundredth of a second: coarse against a run of a few seconds).
fn threads(pid: u32) -> Option<Vec<ThreadTimes>> {
    let ticks = clock_ticks();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (name) state ...`: the name may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        // `schedstat`: nanoseconds on a core, nanoseconds waiting for one,
        // and the number of time slices.
        let sched: Option<Vec<f64>> = std::fs::read_to_string(entry.path().join("schedstat"))
            .ok()
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|f| f.parse().ok())
                    .collect()
            });
        if let Some([running, waiting, ..]) = sched.as_deref() {
            out.push(ThreadTimes {
                name,
                running: running / 1e9,
                waiting: Some(waiting / 1e9),
            });
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line; 11 and 12
        // after the name.
        let ticks_used = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (ticks_used(11), ticks_used(12)) {
            out.push(ThreadTimes {
                name,
                running: (user + system) / ticks,
                waiting: None,
            });
        }
    }
    Some(out)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when unknown).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(engine: f64, rest: f64, bench: f64) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            seconds: BTreeMap::from([(ENGINE, engine), (DAEMON_REST, rest), (BENCH, bench)]),
            engine_waiting: None,
        }
    }

    #[test]
    fn cpu_per_task_adds_up_and_bounds_throughput() {
        let before = sample(1.0, 2.0, 0.5);
        let after = sample(1.5, 2.3, 0.7);
        let note = after.per_task_since(&before, 10_000);
        assert!(note.contains("engine thread 50.0"), "{note}");
        assert!(note.contains("daemon's other threads 30.0"), "{note}");
        assert!(note.contains("bench client + worker 20.0"), "{note}");
        assert!(note.contains("100.0 in all"), "{note}");
        // 100 us a task: 10,000 tasks/s per core.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let ceiling = format!("allow at most {} tasks/s", cores * 10_000);
        assert!(note.contains(&ceiling), "{note}");
    }

    #[test]
    fn a_busy_thread_shows_its_time_on_a_core() {
        let me = std::process::id();
        let before = process_seconds(me).expect("this process's threads");
        // Busy on this thread until /proc shows a twentieth of a second
        // more, however loaded the machine is (or ten seconds pass).
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut after = before;
        while after - before < 0.05 && Instant::now() < give_up {
            let until = Instant::now() + Duration::from_millis(10);
            let mut spins = 0u64;
            while Instant::now() < until {
                spins = std::hint::black_box(spins + 1);
            }
            after = process_seconds(me).expect("this process's threads");
        }
        assert!(after - before >= 0.05, "{before} s, then {after} s");
        let threads = threads(me).expect("this process's threads");
        assert!(threads.iter().all(|t| t.running >= 0.0));
        // Where the kernel keeps scheduler statistics, every thread has
        // its waiting time too.
        if std::path::Path::new("/proc/self/schedstat").exists() {
            assert!(threads.iter().all(|t| t.waiting.is_some()));
        }
    }
}
