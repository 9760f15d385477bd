//! Which task to start next: ready queues per worker, timers, parked tasks,
//! and concurrency limits. In memory only, and rebuilt from the store on
//! start; it holds ids of incomplete tasks, never tasks themselves.
//!
//! The scheduler may hold stale entries (a task deleted or paused since it
//! was queued): the engine re-checks every candidate with
//! `crew_core::rules::start_attempt` inside its write transaction, so a
//! stale entry costs one lookup and is dropped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

/// Where an evaluated task goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Placement {
    /// Ready now: queue it for its worker.
    Ready {
        /// The task's worker.
        worker: String,
    },
    /// Delayed until a time (its `runAfter`).
    At {
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// Held by a workgroup pause until it ends (or an operator resumes it).
    Workgroup {
        /// The workgroup.
        name: String,
        /// When the pause ends, in Unix milliseconds.
        until_ms: i64,
    },
    /// Held by its group's pause until the group is resumed.
    Group {
        /// The group.
        id: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Task(String),
    Workgroup(String),
}

/// The dispatcher's in-memory state.
#[derive(Debug, Default)]
pub struct Scheduler {
    ready: HashMap<String, VecDeque<String>>,
    queued: HashSet<String>,
    /// Workers with a non-empty queue, in round-robin order.
    rotation: VecDeque<String>,
    timers: BinaryHeap<Reverse<(i64, Timer)>>,
    parked_by_group: HashMap<String, Vec<String>>,
    parked_by_workgroup: HashMap<String, Vec<String>>,
    workgroup_wakeups: HashMap<String, i64>,
    in_flight: HashMap<String, u32>,
    total_in_flight: u32,
    limits: HashMap<String, u32>,
    max_in_flight: u32,
    /// Every worker a task was queued for (a handful of names).
    seen_workers: std::collections::BTreeSet<String>,
}

impl Scheduler {
    /// A scheduler with a global in-flight limit.
    pub fn new(max_in_flight: u32) -> Self {
        Scheduler {
            max_in_flight: max_in_flight.max(1),
            ..Default::default()
        }
    }

    /// Sets (or clears) a worker's concurrency limit.
    pub fn set_limit(&mut self, worker: &str, max: Option<u32>) {
        match max {
            Some(n) => {
                self.limits.insert(worker.to_string(), n);
            }
            None => {
                self.limits.remove(worker);
            }
        }
        if self.ready.get(worker).is_some_and(|q| !q.is_empty())
            && !self.rotation.iter().any(|w| w == worker)
        {
            self.rotation.push_back(worker.to_string());
        }
    }

    /// A worker's limit.
    pub fn limit(&self, worker: &str) -> Option<u32> {
        self.limits.get(worker).copied()
    }

    /// Calls in flight for a worker.
    pub fn in_flight(&self, worker: &str) -> u32 {
        self.in_flight.get(worker).copied().unwrap_or(0)
    }

    /// Calls in flight in total.
    pub fn total_in_flight(&self) -> u32 {
        self.total_in_flight
    }

    /// Workers known to the scheduler (limited, or ever queued since start).
    pub fn known_workers(&self) -> Vec<String> {
        let mut w: Vec<String> = self
            .limits
            .keys()
            .chain(self.seen_workers.iter())
            .cloned()
            .collect();
        w.sort();
        w.dedup();
        w
    }

    /// Places an evaluated task.
    pub fn place(&mut self, id: &str, placement: Placement) {
        match placement {
            Placement::Ready { worker } => self.push_ready(&worker, id),
            Placement::At { at_ms } => self.timers.push(Reverse((at_ms, Timer::Task(id.into())))),
            Placement::Workgroup { name, until_ms } => {
                self.parked_by_workgroup
                    .entry(name.clone())
                    .or_default()
                    .push(id.to_string());
                let due = self
                    .workgroup_wakeups
                    .entry(name.clone())
                    .or_insert(i64::MAX);
                if until_ms < *due {
                    *due = until_ms;
                    self.timers
                        .push(Reverse((until_ms, Timer::Workgroup(name))));
                }
            }
            Placement::Group { id: group } => self
                .parked_by_group
                .entry(group)
                .or_default()
                .push(id.to_string()),
        }
    }

    fn push_ready(&mut self, worker: &str, id: &str) {
        if !self.queued.insert(id.to_string()) {
            return;
        }
        if !self.seen_workers.contains(worker) {
            self.seen_workers.insert(worker.to_string());
        }
        let q = self.ready.entry(worker.to_string()).or_default();
        if q.is_empty() && !self.rotation.iter().any(|w| w == worker) {
            self.rotation.push_back(worker.to_string());
        }
        q.push_back(id.to_string());
    }

    /// Ids whose timers are due at `now_ms` (tasks to evaluate again,
    /// including those released by a workgroup pause that ended).
    pub fn due(&mut self, now_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now_ms {
                break;
            }
            let Some(Reverse((at, timer))) = self.timers.pop() else {
                break;
            };
            match timer {
                Timer::Task(id) => out.push(id),
                Timer::Workgroup(name) => {
                    if self.workgroup_wakeups.get(&name) == Some(&at) {
                        self.workgroup_wakeups.remove(&name);
                        out.extend(self.parked_by_workgroup.remove(&name).unwrap_or_default());
                    }
                }
            }
        }
        out
    }

    /// Tasks parked by a group's pause (the group was resumed).
    pub fn release_group(&mut self, group: &str) -> Vec<String> {
        self.parked_by_group.remove(group).unwrap_or_default()
    }

    /// Tasks parked by a workgroup's pause (the workgroup was resumed).
    pub fn release_workgroup(&mut self, name: &str) -> Vec<String> {
        self.workgroup_wakeups.remove(name);
        self.parked_by_workgroup.remove(name).unwrap_or_default()
    }

    /// The earliest timer, in Unix milliseconds.
    pub fn next_deadline(&self) -> Option<i64> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Whether some queued task could start now (capacity permitting).
    pub fn has_startable(&self) -> bool {
        self.total_in_flight < self.max_in_flight
            && self.rotation.iter().any(|w| self.has_capacity(w))
    }

    fn has_capacity(&self, worker: &str) -> bool {
        match self.limits.get(worker) {
            Some(&max) => self.in_flight(worker) < max,
            None => true,
        }
    }

    /// Takes up to `max` candidates, round-robin across workers, within the
    /// limits, counting each as in flight. The caller reports back with
    /// [`Scheduler::finished`] for every candidate it did not start and for
    /// every call that ended.
    pub fn take(&mut self, max: usize) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut idle_rounds = 0;
        while out.len() < max && self.total_in_flight < self.max_in_flight {
            let Some(worker) = self.rotation.pop_front() else {
                break;
            };
            let can = self.has_capacity(&worker);
            let next = if can {
                self.ready.get_mut(&worker).and_then(|q| q.pop_front())
            } else {
                None
            };
            match next {
                Some(id) => {
                    idle_rounds = 0;
                    self.queued.remove(&id);
                    *self.in_flight.entry(worker.clone()).or_default() += 1;
                    self.total_in_flight += 1;
                    out.push((worker.clone(), id));
                    if self.ready.get(&worker).is_some_and(|q| !q.is_empty()) {
                        self.rotation.push_back(worker);
                    } else {
                        self.ready.remove(&worker);
                    }
                }
                None => {
                    // At its limit (keep it in rotation) or empty (drop it).
                    if self.ready.get(&worker).is_some_and(|q| !q.is_empty()) {
                        self.rotation.push_back(worker);
                        idle_rounds += 1;
                        if idle_rounds > self.rotation.len() {
                            break;
                        }
                    } else {
                        self.ready.remove(&worker);
                    }
                }
            }
        }
        out
    }

    /// A candidate was not started, or a call ended: its slot is free.
    pub fn finished(&mut self, worker: &str) {
        if let Some(n) = self.in_flight.get_mut(worker) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(worker);
            }
        }
        self.total_in_flight = self.total_in_flight.saturating_sub(1);
    }

    /// Counts a call as in flight again: its slot was freed by
    /// [`Scheduler::finished`] for a result that was then not committed
    /// (it will be applied, and its slot freed, again).
    pub fn restore(&mut self, worker: &str) {
        *self.in_flight.entry(worker.to_string()).or_default() += 1;
        self.total_in_flight += 1;
    }

    /// Ids queued as ready (for tests and metrics).
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(w: &str) -> Placement {
        Placement::Ready { worker: w.into() }
    }

    #[test]
    fn round_robin_within_limits() {
        let mut s = Scheduler::new(10);
        s.set_limit("a", Some(1));
        for i in 0..3 {
            s.place(&format!("a{i}"), ready("a"));
            s.place(&format!("b{i}"), ready("b"));
        }
        let got = s.take(10);
        let a = got.iter().filter(|(w, _)| w == "a").count();
        assert_eq!(a, 1, "{got:?}");
        assert_eq!(got.len(), 4);
        s.finished("a");
        assert!(s.has_startable());
        let more = s.take(10);
        assert_eq!(more, vec![("a".to_string(), "a1".to_string())]);
    }

    #[test]
    fn global_limit_and_dedup() {
        let mut s = Scheduler::new(2);
        s.place("x", ready("w"));
        s.place("x", ready("w"));
        s.place("y", ready("w"));
        s.place("z", ready("w"));
        assert_eq!(s.queued_len(), 3);
        assert_eq!(s.take(10).len(), 2);
        assert!(!s.has_startable());
    }

    #[test]
    fn timers_and_parking() {
        let mut s = Scheduler::new(5);
        s.place("t", Placement::At { at_ms: 100 });
        s.place(
            "p",
            Placement::Workgroup {
                name: "wg".into(),
                until_ms: 50,
            },
        );
        s.place("g", Placement::Group { id: "G".into() });
        assert_eq!(s.next_deadline(), Some(50));
        assert!(s.due(10).is_empty());
        assert_eq!(s.due(60), vec!["p".to_string()]);
        assert_eq!(s.due(100), vec!["t".to_string()]);
        assert_eq!(s.release_group("G"), vec!["g".to_string()]);
        s.place(
            "q",
            Placement::Workgroup {
                name: "wg".into(),
                until_ms: 500,
            },
        );
        assert_eq!(s.release_workgroup("wg"), vec!["q".to_string()]);
        // The stale workgroup timer releases nothing.
        assert!(s.due(1000).is_empty());
    }
}
