//! Which task to start next: ready queues per worker, timers, parked tasks,
//! and the limits (global, per worker, per workgroup). In memory only, and
//! rebuilt from the store on start; it holds ids of incomplete tasks, never
//! tasks themselves.
//!
//! Each worker's ready queue is split into one lane per workgroup, served
//! round-robin, so that a workgroup held by its limits (at its concurrency
//! or out of rate tokens) never blocks another workgroup's tasks on the same
//! worker. A held lane is set aside whole, at O(1), and put back when the
//! workgroup may start again: a call of it ended, its next token is due (a
//! timer), or its limits changed. Its tasks keep their `ready` status.
//!
//! The scheduler may hold stale entries (a task deleted or paused since it
//! was queued): the engine re-checks every candidate with
//! `crew_core::rules::start_attempt` inside its write transaction, so a
//! stale entry costs one lookup and is dropped. A task placed ready for
//! another worker or workgroup than the lane it waits in (an operator
//! changed them, or deleted it and created it again so) moves at once: it
//! is queued in its new lane, which is the one that counts, and its entry
//! in the old lane is skipped when that lane reaches it.

use crew_core::WorkgroupLimits;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

/// Where an evaluated task goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Placement {
    /// Ready now: queue it for its worker.
    Ready {
        /// The task's worker.
        worker: String,
        /// The task's workgroup (`""`: none).
        workgroup: String,
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

/// A task taken to start, counted as in flight for its worker and
/// workgroup until [`Scheduler::finished`] or [`Scheduler::unstarted`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The task.
    pub id: String,
    /// Its worker.
    pub worker: String,
    /// Its workgroup (`""`: none).
    pub workgroup: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Task(String),
    /// A workgroup pause ends.
    Workgroup(String),
    /// A rate-limited workgroup has a token again.
    Tokens(String),
}

/// One workgroup's tasks in one worker's queue.
#[derive(Debug, Default)]
struct Lane {
    /// Which lane this is, for `Scheduler::queued`: a lane that empties is
    /// removed, and one made again for its worker and workgroup is another.
    id: u64,
    /// Shared with `Scheduler::queued`: one copy of each id. An id that
    /// `queued` places in another lane (or none) is stale here.
    ids: VecDeque<Arc<str>>,
    /// In its worker's `active` list (else held by its workgroup's limits).
    active: bool,
}

/// A worker's ready tasks, by workgroup.
#[derive(Debug, Default)]
struct WorkerQueue {
    lanes: HashMap<String, Lane>,
    /// Workgroups whose lane may start now, as far as known, round-robin.
    active: VecDeque<String>,
}

/// A limited workgroup: its limits and its token bucket.
#[derive(Debug)]
struct Gate {
    limits: WorkgroupLimits,
    tokens: f64,
    refilled_ms: i64,
}

/// Why a workgroup cannot start a task now.
enum Hold {
    /// At its concurrency: until one of its calls ends.
    Slot,
    /// Out of tokens: until this time (Unix milliseconds).
    Until(i64),
}

impl Gate {
    fn new(limits: WorkgroupLimits, now_ms: i64) -> Self {
        Gate {
            limits,
            tokens: limits.effective_burst().unwrap_or(0) as f64,
            refilled_ms: now_ms,
        }
    }

    /// Whether one more task may start now, with `in_flight` calls running.
    fn admit(&mut self, in_flight: u32, now_ms: i64) -> Result<(), Hold> {
        if self
            .limits
            .max_concurrency
            .is_some_and(|max| in_flight >= max)
        {
            return Err(Hold::Slot);
        }
        let (Some(rate), Some(burst)) = (self.limits.max_rate, self.limits.effective_burst())
        else {
            return Ok(());
        };
        if now_ms > self.refilled_ms {
            let earned = (now_ms - self.refilled_ms) as f64 * rate / 1000.0;
            self.tokens = (self.tokens + earned).min(burst as f64);
            self.refilled_ms = now_ms;
        }
        // A hair of slack: a timer set for the next token must find it.
        if self.tokens + 1e-9 >= 1.0 {
            Ok(())
        } else {
            let wait_ms = ((1.0 - self.tokens) * 1000.0 / rate).ceil().max(1.0);
            Err(Hold::Until(now_ms.saturating_add(wait_ms as i64)))
        }
    }

    fn take_token(&mut self) {
        if self.limits.max_rate.is_some() {
            self.tokens -= 1.0;
        }
    }

    fn refund_token(&mut self) {
        if let Some(burst) = self.limits.effective_burst() {
            self.tokens = (self.tokens + 1.0).min(burst as f64);
        }
    }
}

/// The dispatcher's in-memory state.
#[derive(Debug, Default)]
pub struct Scheduler {
    ready: HashMap<String, WorkerQueue>,
    /// Every task queued as ready, with the lane it waits in.
    queued: HashMap<Arc<str>, u64>,
    /// Lanes made so far: numbers them.
    lanes_made: u64,
    /// Workers with an active lane, in round-robin order.
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
    /// Workgroups with limits.
    gates: HashMap<String, Gate>,
    /// Calls in flight per workgroup (only those with some).
    workgroup_in_flight: HashMap<String, u32>,
    /// Workers whose lane of a workgroup is held by its limits.
    held: HashMap<String, Vec<String>>,
    /// The earliest token timer pending per workgroup.
    token_wakeups: HashMap<String, i64>,
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
    }

    /// A worker's limit.
    pub fn limit(&self, worker: &str) -> Option<u32> {
        self.limits.get(worker).copied()
    }

    /// Sets (or, with empty limits, clears) a workgroup's limits, and puts
    /// its held lanes back in play. A new rate starts with a full bucket; a
    /// changed one keeps the tokens left, up to the new burst.
    pub fn set_workgroup_limits(&mut self, workgroup: &str, limits: WorkgroupLimits, now_ms: i64) {
        if limits.is_empty() {
            self.gates.remove(workgroup);
        } else {
            match self.gates.get_mut(workgroup) {
                Some(g) if g.limits.max_rate.is_some() && limits.max_rate.is_some() => {
                    let burst = limits.effective_burst().unwrap_or(1) as f64;
                    g.limits = limits;
                    g.tokens = g.tokens.min(burst);
                }
                _ => {
                    self.gates
                        .insert(workgroup.to_string(), Gate::new(limits, now_ms));
                }
            }
        }
        self.release_held(workgroup);
    }

    /// A workgroup's limits (empty when it has none).
    pub fn workgroup_limits(&self, workgroup: &str) -> WorkgroupLimits {
        self.gates
            .get(workgroup)
            .map(|g| g.limits)
            .unwrap_or_default()
    }

    /// Calls in flight for a worker.
    pub fn in_flight(&self, worker: &str) -> u32 {
        self.in_flight.get(worker).copied().unwrap_or(0)
    }

    /// Calls in flight for a workgroup's tasks.
    pub fn workgroup_in_flight(&self, workgroup: &str) -> u32 {
        self.workgroup_in_flight
            .get(workgroup)
            .copied()
            .unwrap_or(0)
    }

    /// Every workgroup with calls in flight, with their number.
    pub fn workgroup_loads(&self) -> HashMap<String, u32> {
        self.workgroup_in_flight.clone()
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
            Placement::Ready { worker, workgroup } => self.push_ready(&worker, &workgroup, id),
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

    fn push_ready(&mut self, worker: &str, workgroup: &str, id: &str) {
        if let Some(&queued_in) = self.queued.get(id) {
            let lane = self.ready.get(worker).and_then(|q| q.lanes.get(workgroup));
            if lane.is_some_and(|l| l.id == queued_in) {
                return;
            }
            // Queued in another lane: it moves to this one.
        }
        let id: Arc<str> = Arc::from(id);
        if !self.seen_workers.contains(worker) {
            self.seen_workers.insert(worker.to_string());
        }
        let q = self.ready.entry(worker.to_string()).or_default();
        let lane = q.lanes.entry(workgroup.to_string()).or_insert_with(|| {
            self.lanes_made += 1;
            Lane {
                id: self.lanes_made,
                ..Lane::default()
            }
        });
        self.queued.insert(id.clone(), lane.id);
        lane.ids.push_back(id);
        if lane.ids.len() == 1 {
            // A new lane starts active: its limits are checked when taken.
            lane.active = true;
            q.active.push_back(workgroup.to_string());
            if q.active.len() == 1 {
                self.rotation.push_back(worker.to_string());
            }
        }
    }

    /// Puts a workgroup's held lanes back in their workers' rotation.
    fn release_held(&mut self, workgroup: &str) {
        for worker in self.held.remove(workgroup).unwrap_or_default() {
            let Some(q) = self.ready.get_mut(&worker) else {
                continue;
            };
            let Some(lane) = q.lanes.get_mut(workgroup) else {
                continue;
            };
            if lane.active {
                continue;
            }
            lane.active = true;
            q.active.push_back(workgroup.to_string());
            if q.active.len() == 1 {
                self.rotation.push_back(worker);
            }
        }
    }

    /// Ids whose timers are due at `now_ms` (tasks to evaluate again,
    /// including those released by a workgroup pause that ended). Lanes
    /// whose workgroup has a token again are put back in play.
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
                Timer::Tokens(name) => {
                    if self.token_wakeups.get(&name) == Some(&at) {
                        self.token_wakeups.remove(&name);
                        self.release_held(&name);
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

    /// Whether some queued task could start now (capacity permitting; a
    /// workgroup's limits are found out by [`Scheduler::take`]).
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

    /// Takes up to `max` candidates at `now_ms`, round-robin across workers
    /// and, within a worker, across workgroups, within every limit, counting
    /// each as in flight. The caller reports back with
    /// [`Scheduler::unstarted`] for every candidate it did not start and
    /// [`Scheduler::finished`] for every call that ended.
    pub fn take(&mut self, max: usize, now_ms: i64) -> Vec<Candidate> {
        let mut out = Vec::new();
        let mut idle_rounds = 0;
        while out.len() < max && self.total_in_flight < self.max_in_flight {
            let Some(worker) = self.rotation.pop_front() else {
                break;
            };
            if !self.has_capacity(&worker) {
                // At its limit: it stays in rotation.
                self.rotation.push_back(worker);
                idle_rounds += 1;
                if idle_rounds > self.rotation.len() {
                    break;
                }
                continue;
            }
            // Every lane it had was held or empty: out of rotation until
            // one is put back.
            let Some((workgroup, id)) = self.pick(&worker, now_ms) else {
                continue;
            };
            idle_rounds = 0;
            self.queued.remove(&*id);
            *self.in_flight.entry(worker.clone()).or_default() += 1;
            self.total_in_flight += 1;
            if !workgroup.is_empty() {
                *self
                    .workgroup_in_flight
                    .entry(workgroup.clone())
                    .or_default() += 1;
            }
            if self
                .ready
                .get(&worker)
                .is_some_and(|q| !q.active.is_empty())
            {
                self.rotation.push_back(worker.clone());
            }
            out.push(Candidate {
                id: id.to_string(),
                worker,
                workgroup,
            });
        }
        out
    }

    /// The next task of a worker whose workgroup may start now; lanes whose
    /// workgroup may not are set aside (held) on the way.
    fn pick(&mut self, worker: &str, now_ms: i64) -> Option<(String, Arc<str>)> {
        let q = self.ready.get_mut(worker)?;
        let mut found = None;
        while let Some(wg) = q.active.pop_front() {
            let Some(lane) = q.lanes.get_mut(&wg) else {
                continue;
            };
            let in_flight = self.workgroup_in_flight.get(&wg).copied().unwrap_or(0);
            if let Some(gate) = self.gates.get_mut(&wg) {
                if let Err(hold) = gate.admit(in_flight, now_ms) {
                    lane.active = false;
                    self.held
                        .entry(wg.clone())
                        .or_default()
                        .push(worker.to_string());
                    if let Hold::Until(at) = hold {
                        let due = self.token_wakeups.entry(wg.clone()).or_insert(i64::MAX);
                        if at < *due {
                            *due = at;
                            self.timers.push(Reverse((at, Timer::Tokens(wg))));
                        }
                    }
                    continue;
                }
            }
            // The lane's first entry that still counts.
            let mut next = None;
            while let Some(id) = lane.ids.pop_front() {
                if self.queued.get(&id) == Some(&lane.id) {
                    next = Some(id);
                    break;
                }
            }
            let Some(id) = next else {
                q.lanes.remove(&wg);
                continue;
            };
            if let Some(gate) = self.gates.get_mut(&wg) {
                gate.take_token();
            }
            if lane.ids.is_empty() {
                q.lanes.remove(&wg);
            } else {
                q.active.push_back(wg.clone());
            }
            found = Some((wg, id));
            break;
        }
        if q.lanes.is_empty() {
            self.ready.remove(worker);
        }
        found
    }

    /// A call ended: its slots are free (and its workgroup's held lanes are
    /// put back in play).
    pub fn finished(&mut self, worker: &str, workgroup: &str) {
        if let Some(n) = self.in_flight.get_mut(worker) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(worker);
            }
        }
        self.total_in_flight = self.total_in_flight.saturating_sub(1);
        if let Some(n) = self.workgroup_in_flight.get_mut(workgroup) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.workgroup_in_flight.remove(workgroup);
            }
        }
        if self.held.contains_key(workgroup) {
            self.release_held(workgroup);
        }
    }

    /// A candidate was not started: as [`Scheduler::finished`], and the
    /// rate token it took is given back.
    pub fn unstarted(&mut self, worker: &str, workgroup: &str) {
        if let Some(gate) = self.gates.get_mut(workgroup) {
            gate.refund_token();
        }
        self.finished(worker, workgroup);
    }

    /// Counts a call as in flight again: its slot was freed by
    /// [`Scheduler::finished`] for a result that was then not committed
    /// (it will be applied, and its slot freed, again).
    pub fn restore(&mut self, worker: &str, workgroup: &str) {
        *self.in_flight.entry(worker.to_string()).or_default() += 1;
        self.total_in_flight += 1;
        if !workgroup.is_empty() {
            *self
                .workgroup_in_flight
                .entry(workgroup.to_string())
                .or_default() += 1;
        }
    }

    /// Ids queued as ready, held lanes included (for tests and metrics).
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(w: &str) -> Placement {
        in_wg(w, "")
    }

    fn in_wg(w: &str, wg: &str) -> Placement {
        Placement::Ready {
            worker: w.into(),
            workgroup: wg.into(),
        }
    }

    fn ids(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.id.as_str()).collect()
    }

    fn limits(spec: &str) -> WorkgroupLimits {
        WorkgroupLimits::parse(spec).unwrap()
    }

    #[test]
    fn round_robin_within_limits() {
        let mut s = Scheduler::new(10);
        s.set_limit("a", Some(1));
        for i in 0..3 {
            s.place(&format!("a{i}"), ready("a"));
            s.place(&format!("b{i}"), ready("b"));
        }
        let got = s.take(10, 0);
        let a = got.iter().filter(|c| c.worker == "a").count();
        assert_eq!(a, 1, "{got:?}");
        assert_eq!(got.len(), 4);
        s.finished("a", "");
        assert!(s.has_startable());
        let more = s.take(10, 0);
        assert_eq!(ids(&more), ["a1"]);
    }

    /// A task placed ready for another worker or workgroup than the lane
    /// it waits in moves at once: taken from its new lane, within its new
    /// limits, and never from the old one.
    #[test]
    fn a_task_placed_for_another_lane_moves_there() {
        let mut s = Scheduler::new(10);
        s.set_limit("a", Some(1));
        s.place("busy", ready("a"));
        assert_eq!(ids(&s.take(10, 0)), ["busy"]);
        s.place("x", ready("a"));
        s.place("y", ready("a"));
        assert!(s.take(10, 0).is_empty(), "a is at its limit");
        // x now belongs to worker b, then to b's workgroup g.
        s.place("x", ready("b"));
        s.place("x", in_wg("b", "g"));
        assert_eq!(s.queued_len(), 2);
        let got = s.take(10, 0);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (
                got[0].id.as_str(),
                got[0].worker.as_str(),
                got[0].workgroup.as_str()
            ),
            ("x", "b", "g")
        );
        s.finished("a", "");
        assert_eq!(ids(&s.take(10, 0)), ["y"], "x is not taken again from a");
        assert_eq!(s.queued_len(), 0);
        // Placed back in its first lane, it is queued there again.
        s.place("x", ready("a"));
        s.finished("a", "");
        assert_eq!(ids(&s.take(10, 0)), ["x"]);
    }

    #[test]
    fn global_limit_and_dedup() {
        let mut s = Scheduler::new(2);
        s.place("x", ready("w"));
        s.place("x", ready("w"));
        s.place("y", ready("w"));
        s.place("z", ready("w"));
        assert_eq!(s.queued_len(), 3);
        assert_eq!(s.take(10, 0).len(), 2);
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

    #[test]
    fn a_workgroup_at_its_concurrency_does_not_block_others_on_the_worker() {
        let mut s = Scheduler::new(100);
        s.set_workgroup_limits("slow", limits("concurrency:1"), 0);
        for i in 0..3 {
            s.place(&format!("s{i}"), in_wg("w", "slow"));
        }
        for i in 0..3 {
            s.place(&format!("f{i}"), in_wg("w", "fast"));
        }
        let got = s.take(100, 0);
        assert_eq!(ids(&got), ["s0", "f0", "f1", "f2"]);
        assert_eq!(got[0].workgroup, "slow");
        assert_eq!(s.workgroup_in_flight("slow"), 1);
        // Only the held lane is left: nothing to start, nothing to spin on.
        assert!(!s.has_startable());
        assert!(s.take(100, 0).is_empty());
        assert_eq!(s.queued_len(), 2, "held tasks stay queued (ready)");
        // Another worker's lane of the same workgroup is held too.
        s.place("s9", in_wg("v", "slow"));
        assert!(s.take(100, 0).is_empty());
        // A call of the workgroup ends: one more may start.
        s.finished("w", "fast");
        assert!(s.take(100, 0).is_empty(), "another workgroup's call");
        s.finished("w", "slow");
        let got = s.take(100, 0);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(s.workgroup_in_flight("slow"), 1);
    }

    #[test]
    fn a_rate_limit_spaces_starts_by_its_token_timer() {
        let mut s = Scheduler::new(100);
        s.set_workgroup_limits("api", limits("rate:5,burst:1"), 1_000);
        for i in 0..3 {
            s.place(&format!("a{i}"), in_wg("w", "api"));
        }
        assert_eq!(ids(&s.take(100, 1_000)), ["a0"]);
        assert!(s.take(100, 1_000).is_empty());
        // The next token is due 200 ms later: a timer, not a poll.
        assert_eq!(s.next_deadline(), Some(1_200));
        assert!(s.due(1_199).is_empty());
        assert!(s.take(100, 1_199).is_empty());
        assert!(s.due(1_200).is_empty(), "tokens wake lanes, not tasks");
        assert_eq!(ids(&s.take(100, 1_200)), ["a1"]);
        // A candidate that was not started gives its token back.
        s.unstarted("w", "api");
        s.place("a1", in_wg("w", "api"));
        assert_eq!(s.take(100, 1_200).len(), 1);
    }

    #[test]
    fn a_burst_allows_that_many_at_once_then_the_rate() {
        let mut s = Scheduler::new(100);
        s.set_workgroup_limits("api", limits("rate:2"), 0);
        for i in 0..5 {
            s.place(&format!("a{i}"), in_wg("w", "api"));
        }
        // Default burst: the rate rounded up.
        assert_eq!(s.take(100, 0).len(), 2);
        assert!(s.take(100, 499).is_empty());
        s.due(500);
        assert_eq!(s.take(100, 500).len(), 1);
        // Idle for long: the bucket holds at most the burst.
        s.due(60_000);
        assert_eq!(s.take(100, 60_000).len(), 2);
    }

    #[test]
    fn raising_or_clearing_a_limit_puts_held_lanes_back() {
        let mut s = Scheduler::new(100);
        s.set_workgroup_limits("wg", limits("concurrency:1"), 0);
        for i in 0..4 {
            s.place(&format!("t{i}"), in_wg("w", "wg"));
        }
        assert_eq!(s.take(100, 0).len(), 1);
        assert!(!s.has_startable());
        s.set_workgroup_limits("wg", limits("concurrency:2"), 0);
        assert!(s.has_startable());
        assert_eq!(s.take(100, 0).len(), 1);
        s.set_workgroup_limits("wg", WorkgroupLimits::default(), 0);
        assert_eq!(s.workgroup_limits("wg"), WorkgroupLimits::default());
        assert_eq!(s.take(100, 0).len(), 2);
        assert_eq!(s.workgroup_in_flight("wg"), 4);
    }

    #[test]
    fn workgroup_and_worker_limits_hold_together() {
        let mut s = Scheduler::new(3);
        s.set_limit("w", Some(2));
        s.set_workgroup_limits("a", limits("concurrency:5"), 0);
        for i in 0..5 {
            s.place(&format!("a{i}"), in_wg("w", "a"));
            s.place(&format!("b{i}"), in_wg("v", "a"));
        }
        let got = s.take(100, 0);
        assert_eq!(got.len(), 3, "global limit");
        assert!(got.iter().filter(|c| c.worker == "w").count() <= 2);
        // A stored call being applied again counts again.
        s.finished("w", "a");
        s.restore("w", "a");
        assert_eq!(s.workgroup_in_flight("a"), 3);
        assert_eq!(s.total_in_flight(), 3);
    }
}
