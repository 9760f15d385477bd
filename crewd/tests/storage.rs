//! The redb store against real temporary files: indexes, counters, events,
//! listings, schema checks. Rules from crew-core produce the changes; a
//! `MemGraph` fed the same changes is the reference model.

use crew_core::rules::{self, RetryPolicy, Start};
use crew_core::wire::{
    ChildTask, Event, GroupSort, NewTask, NewTaskGroup, StatusCounts, TaskGroupView,
};
use crew_core::worker::WorkerOutcome;
use crew_core::{Changes, GraphRead, MemGraph, TaskStatus, Timestamp};
use crewd::storage::{ReadTx, StorageError, Store, StoreConfig, TaskQuery, WriteTx};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

const T0: i64 = 1_700_000_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + secs * 1000)
}

fn open(path: &Path) -> Store {
    Store::open(path, StoreConfig::default()).unwrap()
}

fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("gen-{n}")
    }
}

fn task(id: &str, parents: &[&str]) -> NewTask {
    NewTask {
        id: Some(id.into()),
        name: format!("task {id}"),
        worker: "w".into(),
        parent_ids: parents.iter().map(|p| p.to_string()).collect(),
        ..NewTask::default()
    }
}

/// A store and the reference model, kept in step.
struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Store,
    mem: MemGraph,
    last_seq: u64,
}

impl Fixture {
    fn new() -> Self {
        Self::with_config(StoreConfig::default())
    }

    fn with_config(config: StoreConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crew.redb");
        let store = Store::open(&path, config).unwrap();
        Fixture {
            _dir: dir,
            path,
            store,
            mem: MemGraph::new(),
            last_seq: 0,
        }
    }

    /// Runs a rule against the write transaction, applies, commits, mirrors
    /// into the model, checks the events and every index.
    fn run(
        &mut self,
        now: Timestamp,
        rule: impl FnOnce(&WriteTx) -> Changes,
    ) -> Vec<crew_core::wire::StreamMessage> {
        let mut w = self.store.write().unwrap();
        let changes = rule(&w);
        w.apply(&changes, now).unwrap();
        let events = w.commit().unwrap();
        self.mem.apply(&changes);
        assert!(events.len() >= changes.ops.len());
        for e in &events {
            assert!(e.seq > self.last_seq, "seq strictly increasing");
            self.last_seq = e.seq;
            assert_eq!(e.at, Some(now));
            if let Event::TaskCreated { task } | Event::TaskUpdated { task } = &e.event {
                let expected = rules::status_of(&self.mem, &self.mem.tasks[&task.id], now).unwrap();
                assert_eq!(task.status, Some(expected), "event status of {}", task.id);
            }
        }
        check(&self.store.read().unwrap(), &self.mem, now);
        events
    }

    fn start(&mut self, id: &str, now: Timestamp) -> u32 {
        let mut attempt = 0;
        self.run(now, |w| match rules::start_attempt(w, id, now).unwrap() {
            Start::Started {
                changes,
                attempt: a,
                ..
            } => {
                attempt = a;
                changes
            }
            other => panic!("{id} did not start: {other:?}"),
        });
        attempt
    }

    fn finish(
        &mut self,
        id: &str,
        outcome: WorkerOutcome,
        now: Timestamp,
    ) -> Vec<crew_core::wire::StreamMessage> {
        let attempt = self.start(id, now);
        let mut gen = ids();
        self.run(now, |w| {
            rules::record_result(
                w,
                id,
                attempt,
                outcome,
                now,
                RetryPolicy::Fixed,
                0.0,
                &mut gen,
            )
            .unwrap()
        })
    }

    /// Creates group `id` (named after it) with `tasks`, at `now`.
    fn create_group(&mut self, id: &str, tasks: Vec<NewTask>, now: Timestamp) {
        let mut gen = ids();
        let spec = NewTaskGroup {
            id: Some(id.into()),
            name: id.into(),
            is_paused: false,
            tasks,
            schedule: None,
        };
        self.run(now, |w| {
            rules::create_group(w, spec, now, &mut gen).unwrap()
        });
    }

    /// Closes the file and opens it again.
    fn reopen(&mut self) {
        // The database closes when its last handle goes: swap in a
        // throwaway store first.
        let scratch = tempfile::tempdir().unwrap();
        drop(std::mem::replace(
            &mut self.store,
            open(&scratch.path().join("scratch.redb")),
        ));
        self.store = open(&self.path);
    }
}

fn success(output: serde_json::Value, children: Vec<ChildTask>) -> WorkerOutcome {
    WorkerOutcome::Success {
        output,
        children,
        children_delay_secs: 0.0,
        workgroup_delay_secs: None,
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Every index and counter of the store agrees with the model.
fn check(r: &ReadTx, mem: &MemGraph, now: Timestamp) {
    let mut wg_counts: BTreeMap<String, u64> = BTreeMap::new();
    for (gid, g) in &mem.groups {
        assert_eq!(r.group(gid).unwrap().as_ref(), Some(g));
        let mut expected = StatusCounts::default();
        let mut by_status: BTreeMap<TaskStatus, Vec<String>> = BTreeMap::new();
        for t in mem.tasks.values().filter(|t| &t.task_group_id == gid) {
            let s = rules::status_of(mem, t, now).unwrap();
            *expected.get_mut(s) += 1;
            by_status.entry(s).or_default().push(t.id.clone());
        }
        let view = r.group_view(gid, now).unwrap().unwrap();
        assert_eq!(view.counts, expected, "counts of {gid}");
        assert_eq!(view.completed_percent, expected.completed_percent());
        assert_eq!(
            sorted(r.group_task_ids(gid).unwrap()),
            sorted(mem.group_task_ids(gid).unwrap())
        );
        assert_eq!(
            sorted(r.incomplete_task_ids(gid).unwrap()),
            sorted(mem.incomplete_task_ids(gid).unwrap())
        );
        for s in TaskStatus::ALL {
            let q = TaskQuery {
                page_size: 0,
                status: Some(s),
                ..TaskQuery::default()
            };
            let list = r.list_tasks(gid, &q, now).unwrap();
            assert_eq!(list.count, expected.get(s), "count of {s} in {gid}");
            let got = sorted(list.tasks.iter().map(|t| t.id.clone()).collect());
            assert_eq!(got, sorted(by_status.remove(&s).unwrap_or_default()), "{s}");
            assert!(list.tasks.iter().all(|t| t.status == Some(s)));
        }
    }
    for (id, t) in &mem.tasks {
        assert_eq!(r.task(id).unwrap().as_ref(), Some(t));
        assert_eq!(r.is_complete(id).unwrap(), Some(t.is_complete));
        assert_eq!(
            sorted(r.children(id).unwrap()),
            sorted(mem.children(id).unwrap())
        );
        if !t.key.is_empty() {
            assert_eq!(
                sorted(r.tasks_with_key(&t.task_group_id, &t.key).unwrap()),
                sorted(mem.tasks_with_key(&t.task_group_id, &t.key).unwrap())
            );
        }
        let with = r.task_with_status(id, now).unwrap().unwrap();
        assert_eq!(with.status, Some(rules::status_of(mem, t, now).unwrap()));
        if !t.is_complete && !t.workgroup.is_empty() {
            *wg_counts.entry(t.workgroup.clone()).or_default() += 1;
        }
    }
    let listed: BTreeMap<String, u64> = r
        .workgroups(now)
        .unwrap()
        .workgroups
        .into_iter()
        .filter(|w| w.incomplete_tasks > 0)
        .map(|w| (w.workgroup.name, w.incomplete_tasks))
        .collect();
    assert_eq!(listed, wg_counts);
    let mut incomplete: Vec<String> = Vec::new();
    r.for_each_incomplete_task(|t| {
        let stored = mem.tasks.get(t.id).expect("an incomplete task exists");
        assert_eq!(t.running, stored.busy_executing, "{}", t.id);
        incomplete.push(t.id.to_string());
        Ok::<_, crewd::storage::StorageError>(())
    })
    .unwrap();
    incomplete.sort();
    let expected: Vec<String> = mem
        .tasks
        .values()
        .filter(|t| !t.is_complete)
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(incomplete, expected);
    check_group_orders(r, mem, now);
    let ids =
        |groups: Vec<crew_core::TaskGroup>| sorted(groups.into_iter().map(|g| g.id).collect());
    let expected: Vec<String> = mem
        .groups
        .values()
        .filter(|g| g.schedule.is_some())
        .map(|g| g.id.clone())
        .collect();
    assert_eq!(
        ids(r.scheduled_groups().unwrap()),
        sorted(expected),
        "scheduled groups"
    );
    let finished = ids(r.finished_groups().unwrap());
    let expected: Vec<String> = mem
        .groups
        .keys()
        .filter(|gid| {
            let mut tasks = mem.tasks.values().filter(|t| &t.task_group_id == *gid);
            let first = tasks.next();
            first.is_some_and(|t| t.is_complete) && tasks.all(|t| t.is_complete)
        })
        .cloned()
        .collect();
    assert_eq!(finished, sorted(expected), "finished groups");
}

/// Every group listing lists each group once, in the order
/// [`GroupSort::compare`] gives their views: the console sorts pages with
/// it, so any difference moves rows under the operator's selection.
fn check_group_orders(r: &ReadTx, mem: &MemGraph, now: Timestamp) {
    let mut views: Vec<TaskGroupView> = mem
        .groups
        .keys()
        .map(|gid| r.group_view(gid, now).unwrap().unwrap())
        .collect();
    for sort in GroupSort::ALL {
        views.sort_by(|a, b| sort.compare(a, b));
        let expected: Vec<&str> = views.iter().map(|v| v.group.id.as_str()).collect();
        let listed = r.list_groups(1, 0, None, sort, now).unwrap();
        let got: Vec<&str> = listed
            .task_groups
            .iter()
            .map(|v| v.group.id.as_str())
            .collect();
        assert_eq!(got, expected, "groups by {}", sort.as_str());
        assert_eq!(listed.count, expected.len() as u64);
    }
}

fn create_dag(f: &mut Fixture, now: Timestamp) {
    let mut gen = ids();
    let mut e = task("e", &[]);
    e.key = "k".into();
    e.run_after = Some(now.plus_seconds(3600.0));
    let mut c = task("c", &["a"]);
    c.key = "k".into();
    let mut a = task("a", &[]);
    a.is_seed = true;
    a.workgroup = "api".into();
    let mut ff = task("f", &[]);
    ff.workgroup = "api".into();
    let spec = NewTaskGroup {
        id: Some("g1".into()),
        name: "First Group".into(),
        is_paused: false,
        tasks: vec![a, task("b", &["a"]), c, task("d", &["b", "c"]), e, ff],
        schedule: None,
    };
    f.run(now, |w| {
        rules::create_group(w, spec, now, &mut gen).unwrap()
    });
}

#[test]
fn lifecycle_keeps_indexes_and_counts_exact() {
    let mut f = Fixture::new();
    let now = at(0);
    create_dag(&mut f, now);
    let counts = |f: &Fixture, now| {
        f.store
            .read()
            .unwrap()
            .group_view("g1", now)
            .unwrap()
            .unwrap()
            .counts
    };
    let c = counts(&f, now);
    assert_eq!((c.ready, c.waiting, c.delayed), (2, 3, 1));

    // a runs and completes with a continuation; b and c are released.
    let events = f.finish(
        "a",
        success(
            json!({"n": 1}),
            vec![ChildTask {
                id: Some("x".into()),
                name: "x".into(),
                worker: "w".into(),
                ..ChildTask::default()
            }],
        ),
        at(1),
    );
    let updated: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::TaskUpdated { task } => Some(task.id.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        updated.contains(&"b") && updated.contains(&"c"),
        "{updated:?}"
    );
    let c = counts(&f, at(1));
    assert_eq!((c.completed, c.ready, c.waiting), (1, 4, 1));

    // b fails its last attempt.
    f.run(at(2), |w| {
        let patch = crew_core::wire::TaskPatch {
            remaining_attempts: Some(1),
            ..Default::default()
        };
        rules::update_task(w, "b", patch, at(2)).unwrap()
    });
    f.finish("b", WorkerOutcome::failure("boom"), at(3));
    assert_eq!(counts(&f, at(3)).failed, 1);

    // c completes; e (same key) completes with it.
    f.finish("c", success(json!("out"), vec![]), at(4));
    let r = f.store.read().unwrap();
    let e = r.task_with_status("e", at(4)).unwrap().unwrap();
    assert!(e.is_complete);
    assert_eq!(e.output, json!("out"));
    drop(r);

    // f is running while the group gets paused: paused counts pending and waiting.
    f.start("f", at(5));
    f.run(at(5), |w| rules::set_group_paused(w, "g1", true).unwrap());
    let c = counts(&f, at(5));
    assert_eq!((c.running, c.paused, c.ready, c.waiting), (1, 2, 0, 0));
    f.run(at(6), |w| rules::set_group_paused(w, "g1", false).unwrap());

    // A rate limit on f pauses workgroup "api": f is delayed, not failed.
    let attempt = f.store.read().unwrap().task("f").unwrap().unwrap().attempts;
    let mut gen = ids();
    f.run(at(7), |w| {
        rules::record_result(
            w,
            "f",
            attempt,
            WorkerOutcome::RateLimited {
                delay_secs: 60.0,
                message: "slow down".into(),
            },
            at(7),
            RetryPolicy::Fixed,
            0.0,
            &mut gen,
        )
        .unwrap()
    });
    let c = counts(&f, at(8));
    assert_eq!(c.delayed, 1);
    check(&f.store.read().unwrap(), &f.mem, at(100));

    // Renamed: listed by its new name only. Scheduled, then not, then
    // again: in the schedule index exactly while it has one.
    f.run(at(8), |w| {
        let patch = crew_core::wire::TaskGroupPatch {
            name: Some("Renamed".into()),
            schedule: Some("0 2 * * *".into()),
            ..Default::default()
        };
        rules::update_group(w, "g1", patch, at(5)).unwrap()
    });
    check(&f.store.read().unwrap(), &f.mem, at(100));
    for schedule in ["", "0 3 * * *"] {
        f.run(at(8), |w| {
            let patch = crew_core::wire::TaskGroupPatch {
                schedule: Some(schedule.into()),
                ..Default::default()
            };
            rules::update_group(w, "g1", patch, at(5)).unwrap()
        });
    }
    assert_eq!(f.store.read().unwrap().scheduled_groups().unwrap().len(), 1);

    // Reset a: x (its continuation) is deleted, b, c, d are reset.
    f.run(at(9), |w| rules::reset_task(w, "a", None, at(9)).unwrap());
    assert!(f.store.read().unwrap().task("x").unwrap().is_none());
    assert!(f
        .store
        .read()
        .unwrap()
        .children("a")
        .unwrap()
        .iter()
        .all(|c| c != "x"));

    // Delete c: d goes with it.
    let events = f.run(at(10), |w| rules::delete_task(w, "c").unwrap());
    let deleted = events
        .iter()
        .filter(|e| matches!(e.event, Event::TaskDeleted { .. }))
        .count();
    assert_eq!(deleted, 2);
    assert!(f.store.read().unwrap().tasks_with_key("g1", "k").unwrap() == vec!["e".to_string()]);

    // Delete the group: nothing of it is left.
    f.run(at(11), |w| rules::delete_group(w, "g1").unwrap());
    let r = f.store.read().unwrap();
    assert!(r.group_view("g1", at(11)).unwrap().is_none());
    assert!(r.group_task_ids("g1").unwrap().is_empty());
    let mut any = false;
    r.for_each_incomplete_task(|_| {
        any = true;
        Ok::<_, crewd::storage::StorageError>(())
    })
    .unwrap();
    assert!(!any, "no incomplete task is left");
    assert!(r.children("a").unwrap().is_empty());
    for sort in GroupSort::ALL {
        let left = r.list_groups(1, 0, None, sort, at(11)).unwrap();
        assert_eq!((left.count, left.task_groups.len()), (0, 0), "{sort:?}");
    }
    assert!(r.scheduled_groups().unwrap().is_empty());
    let wgs = r.workgroups(at(11)).unwrap().workgroups;
    assert!(wgs.iter().all(|w| w.incomplete_tasks == 0), "{wgs:?}");
}

#[test]
fn commit_then_reopen_gives_the_same_state() {
    let mut f = Fixture::new();
    create_dag(&mut f, at(0));
    f.finish("a", success(json!(1), vec![]), at(1));
    let before = f.store.read().unwrap().events_after(0, 1000).unwrap();
    f.reopen();
    let r = f.store.read().unwrap();
    check(&r, &f.mem, at(2));
    let after = r.events_after(0, 1000).unwrap();
    assert_eq!(before, after);
    assert_eq!(r.last_seq().unwrap(), f.last_seq);
    drop(r);
    // Sequence numbers continue after a reopen.
    let events = f.run(at(3), |w| rules::set_group_paused(w, "g1", true).unwrap());
    assert_eq!(events[0].seq, before.last_seq + 1);
}

/// A store that checkpoints only when it opens: every later commit is in
/// its journal alone.
fn journal_only() -> StoreConfig {
    StoreConfig {
        checkpoint_every: std::time::Duration::from_secs(3600),
        ..StoreConfig::default()
    }
}

/// A continuation with a fixed id.
fn spawned() -> ChildTask {
    ChildTask {
        id: Some("spawned".into()),
        name: "spawned".into(),
        worker: "w".into(),
        ..ChildTask::default()
    }
}

/// What a crash leaves of `f`'s store: its file and its journal, copied
/// while it is open. The path is the copied file's.
fn crash_copy(f: &Fixture) -> (tempfile::TempDir, std::path::PathBuf) {
    let crashed = tempfile::tempdir().unwrap();
    let copy = crashed.path().join("crew.redb");
    std::fs::copy(&f.path, &copy).unwrap();
    std::fs::copy(
        f.path.with_extension("redb.journal"),
        copy.with_extension("redb.journal"),
    )
    .unwrap();
    (crashed, copy)
}

/// A copy of the files taken while the store is open is what a crash
/// leaves behind: redb at its last durable commit, and the journal holding
/// every commit after it. Opening the copy applies the journal.
#[test]
fn a_crash_between_checkpoints_is_replayed_from_the_journal() {
    let config = journal_only();
    let mut f = Fixture::with_config(config);
    create_dag(&mut f, at(0));
    f.finish("a", success(json!({"n": 1}), vec![spawned()]), at(1));
    f.run(at(2), |w| rules::set_group_paused(w, "g1", true).unwrap());
    {
        let mut w = f.store.write().unwrap();
        w.set_worker_limit("w", Some(3), at(2)).unwrap();
        w.record_audit(
            crew_core::wire::AuditEntry {
                seq: 0,
                at: at(0),
                actor: "ops".into(),
                action: "worker.limit".into(),
                target: "worker/w".into(),
                affected: 0,
                detail: Some("3".into()),
            },
            at(2),
        )
        .unwrap();
        w.commit().unwrap();
    }
    let r = f.store.read().unwrap();
    let events = r.events_after(0, 1000).unwrap();
    let audit = r.audit(None, 10, None).unwrap();
    drop(r);

    let (_crashed, copy) = crash_copy(&f);
    let journal = copy.with_extension("redb.journal");
    assert!(std::fs::metadata(&journal).unwrap().len() > 0);

    // Without the journal, the copy is only the state at open: empty.
    let bare = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, bare.path().join("crew.redb")).unwrap();
    let alone = Store::open(&bare.path().join("crew.redb"), config).unwrap();
    assert_eq!(alone.read().unwrap().task("a").unwrap(), None);
    drop(alone);

    let recovered = Store::open(&copy, config).unwrap();
    let r = recovered.read().unwrap();
    check(&r, &f.mem, at(3));
    assert_eq!(r.events_after(0, 1000).unwrap(), events);
    assert_eq!(r.audit(None, 10, None).unwrap(), audit);
    assert_eq!(r.worker_limits().unwrap(), vec![("w".to_string(), Some(3))]);
    drop(r);
    // Applied once: a second open changes nothing.
    drop(recovered);
    let again = Store::open(&copy, config).unwrap();
    assert_eq!(again.read().unwrap().events_after(0, 1000).unwrap(), events);
}

/// A transaction too large for the journal commits durably to redb at
/// once: a copy of the database file alone (a crash that also lost the
/// journal) holds it.
/// Earlier versions accepted an input nested as deep as a request could
/// be (126 levels inside a task) and the store wraps it in more: a crash
/// then left a journal the daemon could not read back, and it would not
/// start. Such records are read whatever their depth.
#[test]
fn a_record_nested_past_the_readers_limit_is_still_read_back() {
    let config = journal_only();
    let mut f = Fixture::with_config(config);
    f.create_group("g", vec![task("deep", &[])], at(0));
    f.reopen();
    let mut deep = json!(1);
    for _ in 0..126 {
        deep = json!([deep]);
    }
    let before = f.mem.tasks["deep"].clone();
    let mut after = before.clone();
    after.input = deep.clone();
    f.run(at(1), |_| Changes {
        ops: vec![crew_core::Change::UpdateTask {
            before: Box::new(before),
            after: Box::new(after),
        }],
        wake: vec![],
    });

    let (_crashed, copy) = crash_copy(&f);
    let recovered = Store::open(&copy, config).unwrap();
    let r = recovered.read().unwrap();
    assert_eq!(r.task("deep").unwrap().unwrap().input, deep);
    assert!(r.events_after(0, 1000).unwrap().messages.len() >= 2);
    check(&r, &f.mem, at(2));
}

#[test]
fn a_transaction_too_large_for_the_journal_is_committed_durably() {
    let config = journal_only();
    let mut f = Fixture::with_config(config);
    let big = "x".repeat(100_000);
    let tasks = (0..50)
        .map(|i| {
            let mut t = task(&format!("big{i}"), &[]);
            t.input = json!(big);
            t
        })
        .collect();
    let spec = NewTaskGroup {
        id: Some("large".into()),
        name: "Large".into(),
        is_paused: false,
        tasks,
        schedule: None,
    };
    let mut gen = ids();
    f.run(at(0), |w| {
        rules::create_group(w, spec, at(0), &mut gen).unwrap()
    });
    let crashed = tempfile::tempdir().unwrap();
    let copy = crashed.path().join("crew.redb");
    std::fs::copy(&f.path, &copy).unwrap();
    let alone = Store::open(&copy, config).unwrap();
    let r = alone.read().unwrap();
    check(&r, &f.mem, at(1));
}

/// A database file deleted and created again beside the old journal
/// starts empty: the old records are not applied to it, and they never
/// read as a continuation of its own.
#[test]
fn a_new_database_ignores_a_journal_left_by_another() {
    let config = journal_only();
    let mut old = Fixture::with_config(config);
    create_dag(&mut old, at(0));
    old.finish("a", success(json!(1), vec![]), at(1));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crew.redb");
    std::fs::copy(
        old.path.with_extension("redb.journal"),
        dir.path().join("crew.redb.journal"),
    )
    .unwrap();
    drop(old);

    let store = Store::open(&path, config).unwrap();
    assert_eq!(store.read().unwrap().task("a").unwrap(), None);
    assert_eq!(store.read().unwrap().last_seq().unwrap(), 0);
    // Its own journaled commits survive a crash, and only they are applied.
    let mut w = store.write().unwrap();
    w.set_worker_limit("w", Some(2), at(2)).unwrap();
    w.commit().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    std::fs::copy(&path, crashed.path().join("crew.redb")).unwrap();
    std::fs::copy(
        dir.path().join("crew.redb.journal"),
        crashed.path().join("crew.redb.journal"),
    )
    .unwrap();
    let recovered = Store::open(&crashed.path().join("crew.redb"), config).unwrap();
    let r = recovered.read().unwrap();
    assert_eq!(r.worker_limits().unwrap(), vec![("w".to_string(), Some(2))]);
    assert_eq!(r.task("a").unwrap(), None);
    assert_eq!(r.last_seq().unwrap(), 1);
}

#[test]
fn dropping_a_transaction_writes_nothing() {
    let mut f = Fixture::new();
    create_dag(&mut f, at(0));
    let seq = f.store.read().unwrap().last_seq().unwrap();
    {
        let mut w = f.store.write().unwrap();
        let mut gen = ids();
        let ch = rules::create_tasks(&w, "g1", vec![task("z", &["a"])], at(1), &mut gen).unwrap();
        w.apply(&ch, at(1)).unwrap();
        assert!(w.task("z").unwrap().is_some(), "reads see own writes");
        assert_eq!(w.children("a").unwrap().len(), 3);
        assert_eq!(w.pending_events().len(), 1);
    }
    let w = f.store.write().unwrap();
    let ch = rules::set_group_paused(&w, "g1", true).unwrap();
    drop(ch);
    w.abort().unwrap();
    let r = f.store.read().unwrap();
    assert!(r.task("z").unwrap().is_none());
    assert_eq!(r.last_seq().unwrap(), seq);
    assert!(!r.group("g1").unwrap().unwrap().is_paused);
    check(&r, &f.mem, at(1));
}

/// Records are remembered across transactions (so that a task is decoded
/// once, not once per batch), but only what a commit made durable: an
/// aborted transaction's writes are never served to the next one.
#[test]
fn only_committed_records_are_remembered_across_transactions() {
    let mut f = Fixture::new();
    create_dag(&mut f, at(0));
    let committed = f.store.read().unwrap().task("a").unwrap().unwrap();
    {
        let mut w = f.store.write().unwrap();
        let mut b = w.batch(at(1)).unwrap();
        start_in(&mut b, "a", at(1));
        assert_eq!(b.task("a").unwrap().unwrap().attempts, 1);
        // Dropped without a commit.
    }
    {
        let mut w = f.store.write().unwrap();
        let b = w.batch(at(2)).unwrap();
        assert_eq!(b.task("a").unwrap().unwrap(), committed);
    }
    // A committed write is what the next transaction reads.
    f.start("a", at(3));
    assert_next_transaction_reads_the_started_a(&f, at(4));
}

/// A transaction that does not remember its reads (recovery's pass over
/// every task) still reads its own writes, and the next transaction reads
/// what it committed.
#[test]
fn a_transaction_that_forgets_its_reads_still_sees_its_writes() {
    let mut f = Fixture::new();
    create_dag(&mut f, at(0));
    {
        let mut w = f.store.write().unwrap();
        w.forget_reads();
        let mut b = w.batch(at(1)).unwrap();
        start_in(&mut b, "a", at(1));
        assert_eq!(b.task("a").unwrap().unwrap().attempts, 1);
        drop(b);
        w.commit().unwrap();
    }
    assert_next_transaction_reads_the_started_a(&f, at(2));
}

/// `a` is stored with one attempt, and a write transaction reads it so.
fn assert_next_transaction_reads_the_started_a(f: &Fixture, now: Timestamp) {
    let stored = f.store.read().unwrap().task("a").unwrap().unwrap();
    assert_eq!(stored.attempts, 1);
    let mut w = f.store.write().unwrap();
    let b = w.batch(now).unwrap();
    assert_eq!(b.task("a").unwrap().unwrap(), stored);
}

/// The stream sends the text the store encoded: it must be the event
/// itself, and only texts kept from the start of the transaction count.
#[test]
fn committed_events_carry_their_stored_text_when_asked() {
    let mut f = Fixture::new();
    create_dag(&mut f, at(0));
    let mut w = f.store.write().unwrap();
    w.keep_event_json();
    let ch = rules::set_group_paused(&w, "g1", true).unwrap();
    w.apply(&ch, at(1)).unwrap();
    let events = w.commit_events().unwrap();
    assert!(!events.is_empty());
    assert_texts_are_the_events(&events);

    // Asked for too late: no text rather than a misaligned one.
    let mut w = f.store.write().unwrap();
    let ch = rules::set_group_paused(&w, "g1", false).unwrap();
    w.apply(&ch, at(2)).unwrap();
    w.keep_event_json();
    let events = w.commit_events().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e.json.is_none()));

    // Task events include the task's stored record rather than encoding
    // the task again: the same JSON object (with its status).
    let mut w = f.store.write().unwrap();
    w.keep_event_json();
    let mut b = w.batch(at(3)).unwrap();
    start_in(&mut b, "a", at(3));
    let mut gen = ids();
    let created = rules::create_tasks(&b, "g1", vec![task("late", &[])], at(3), &mut gen).unwrap();
    b.apply(&created, at(3)).unwrap();
    drop(b);
    let events = w.commit_events().unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match &e.message.event {
            Event::TaskCreated { .. } => "created",
            Event::TaskUpdated { .. } => "updated",
            _ => "other",
        })
        .collect();
    assert!(
        kinds.contains(&"created") && kinds.contains(&"updated"),
        "{kinds:?}"
    );
    assert_texts_are_the_events(&events);
}

/// Starts `id`'s attempt within `b` (it must be startable).
fn start_in(b: &mut crewd::storage::Batch<'_>, id: &str, now: Timestamp) {
    let Start::Started { changes, .. } = rules::start_attempt(&*b, id, now).unwrap() else {
        panic!("{id} did not start");
    };
    b.apply(&changes, now).unwrap();
}

/// Each kept text is the JSON of its event (the same object, whatever
/// the order of its fields).
fn assert_texts_are_the_events(events: &[crewd::storage::CommittedEvent]) {
    for e in events {
        let text = e.json.as_deref().expect("kept");
        let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed, serde_json::to_value(&e.message).unwrap(), "{text}");
    }
}

#[test]
fn reader_sees_a_snapshot() {
    let mut f = Fixture::new();
    create_dag(&mut f, at(0));
    let r = f.store.read().unwrap();
    f.run(at(1), |w| rules::delete_task(w, "a").unwrap());
    assert!(r.task("a").unwrap().is_some());
    assert!(f.store.read().unwrap().task("a").unwrap().is_none());
}

#[test]
fn events_are_persisted_trimmed_and_paged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crew.redb");
    let store = Store::open(
        &path,
        StoreConfig {
            event_retention: 5,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let now = at(0);
    let mut all = Vec::new();
    for i in 0..4 {
        let mut w = store.write().unwrap();
        w.set_worker_limit(&format!("w{i}"), Some(i), now).unwrap();
        w.set_worker_limit(&format!("w{i}"), None, now).unwrap();
        w.set_worker_limit(&format!("w{i}"), Some(i + 1), now)
            .unwrap();
        all.extend(w.commit().unwrap());
    }
    let seqs: Vec<u64> = all.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
    drop(store);
    let store = Store::open(
        &path,
        StoreConfig {
            event_retention: 5,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let r = store.read().unwrap();
    assert_eq!(r.last_seq().unwrap(), 12);
    let page = r.events_after(0, 100).unwrap();
    assert_eq!(page.oldest_kept, 8);
    assert_eq!(page.last_seq, 12);
    assert_eq!(page.messages, all[7..].to_vec());
    let page = r.events_after(9, 2).unwrap();
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![10, 11]
    );
    assert!(r.events_after(12, 10).unwrap().messages.is_empty());
    let limits = r.worker_limits().unwrap();
    assert_eq!(limits[0], ("w0".to_string(), Some(1)));
    assert_eq!(limits.len(), 4);
    match &page.messages[0].event {
        Event::WorkerUpdated { worker } => assert_eq!(worker.worker, "w3"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_log_reports_next_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("crew.redb"));
    let page = store.read().unwrap().events_after(0, 10).unwrap();
    assert_eq!((page.oldest_kept, page.last_seq), (1, 0));
    assert!(page.messages.is_empty());
}

#[test]
fn incomplete_tasks_list_oldest_first_across_statuses() {
    let mut f = Fixture::new();
    let mut gen = ids();
    f.create_group("g", vec![], at(0));
    // t0 oldest; each in another bucket once the calls below are made.
    for i in 0..6 {
        let mut t = task(&format!("t{i}"), if i == 5 { &["t4"] } else { &[] });
        t.is_paused = i == 2;
        f.run(at(i), |w| {
            rules::create_tasks(w, "g", vec![t], at(i), &mut gen).unwrap()
        });
    }
    f.finish("t0", success(json!(0), vec![]), at(11));
    f.start("t1", at(12));
    let r = f.store.read().unwrap();
    let page = |n| {
        let q = TaskQuery {
            page: n,
            page_size: 2,
            skip_completed: true,
            ..TaskQuery::default()
        };
        let l = r.list_tasks("g", &q, at(13)).unwrap();
        assert_eq!(l.count, 5);
        l.tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(page(1), vec!["t1", "t2"]);
    assert_eq!(page(2), vec!["t3", "t4"]);
    assert_eq!(page(3), vec!["t5"]);
    assert_eq!(
        r.incomplete_task_ids("g").unwrap(),
        vec!["t1", "t2", "t3", "t4", "t5"]
    );
}

/// The event log as redb holds it: each row's key, and each of its
/// events' number with the bytes its line takes (newline included).
fn event_rows(path: &Path) -> Vec<(u64, Vec<(u64, usize)>)> {
    use redb::{ReadableDatabase, ReadableTable};
    let db = redb::Database::create(path).unwrap();
    let r = db.begin_read().unwrap();
    let def: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
    let t = r.open_table(def).unwrap();
    t.iter()
        .unwrap()
        .map(|row| {
            let (k, v) = row.unwrap();
            let events = v
                .value()
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let seq = serde_json::from_slice::<serde_json::Value>(l).unwrap()["seq"]
                        .as_u64()
                        .unwrap();
                    (seq, l.len() + 1)
                })
                .collect();
            (k.value(), events)
        })
        .collect()
}

/// `n` worker limit changes in one transaction: `n` events.
fn limit_events(store: &Store, n: u32, now: Timestamp) -> Vec<crew_core::wire::StreamMessage> {
    let mut w = store.write().unwrap();
    for i in 0..n {
        w.set_worker_limit(&format!("w{i}"), Some(i), now).unwrap();
    }
    w.commit().unwrap()
}

#[test]
fn a_transaction_writes_its_events_as_rows_and_reads_resume_inside_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crew.redb");
    let store = open(&path);
    let first = limit_events(&store, 600, at(0));
    let second = limit_events(&store, 2, at(1));
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        all.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=602).collect::<Vec<_>>()
    );
    let r = store.read().unwrap();
    let page = r.events_after(0, 1000).unwrap();
    assert_eq!(page.messages, all);
    assert_eq!((page.oldest_kept, page.last_seq), (1, 602));
    assert_eq!(r.events_after(600, 10).unwrap().messages, second);
    drop(r);
    drop(store);
    // Rows of consecutive events, each as full as the next event allows;
    // the rest of a transaction is a row of its own.
    let rows = event_rows(&path);
    assert!(rows.len() < 602 / 10, "{} rows", rows.len());
    let mut next = 1;
    for (i, (key, events)) in rows.iter().enumerate() {
        assert_eq!(*key, next);
        let seqs: Vec<u64> = events.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (next..next + seqs.len() as u64).collect::<Vec<_>>());
        next += seqs.len() as u64;
        let bytes: usize = events.iter().map(|(_, len)| len).sum();
        assert!(
            bytes <= crewd::storage::EVENT_ROW_BYTES,
            "row {key}: {bytes} bytes"
        );
        let ends_a_transaction = next == 601 || next == 603;
        if !ends_a_transaction {
            let (_, following) = rows[i + 1].1[0];
            assert!(
                bytes + following > crewd::storage::EVENT_ROW_BYTES,
                "row {key}: {bytes} bytes, and the next event ({following}) would have fit"
            );
        }
    }
    assert_eq!(next, 603);
    // From inside a row, across its end and into the next.
    let end_of_first = rows[0].1.last().unwrap().0;
    let store = open(&path);
    let page = store
        .read()
        .unwrap()
        .events_after(end_of_first - 2, 4)
        .unwrap();
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (end_of_first - 1..=end_of_first + 2).collect::<Vec<_>>()
    );
}

#[test]
fn an_event_larger_than_a_row_is_a_row_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crew.redb");
    let store = open(&path);
    let long = "w".repeat(crewd::storage::EVENT_ROW_BYTES + 1000);
    let mut w = store.write().unwrap();
    for worker in ["a", &long, "b"] {
        w.set_worker_limit(worker, Some(1), at(0)).unwrap();
    }
    let events = w.commit().unwrap();
    assert_eq!(
        store.read().unwrap().events_after(0, 10).unwrap().messages,
        events
    );
    drop(store);
    let rows: Vec<Vec<u64>> = event_rows(&path)
        .into_iter()
        .map(|(_, events)| events.into_iter().map(|(seq, _)| seq).collect())
        .collect();
    assert_eq!(rows, vec![vec![1], vec![2], vec![3]]);
}

#[test]
fn a_version_1_store_is_opened_and_upgraded() {
    use redb::{ReadableDatabase, ReadableTable};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crew.redb");
    let store = open(&path);
    let mut all = limit_events(&store, 5, at(0));
    all.extend(limit_events(&store, 3, at(1)));
    drop(store);
    // Rewrite it as version 1 did: one event a row, no trim mark.
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
            let mut t = w.open_table(def).unwrap();
            let rows: Vec<Vec<u8>> = t
                .iter()
                .unwrap()
                .map(|row| row.unwrap().1.value().to_vec())
                .collect();
            t.retain(|_, _| false).unwrap();
            for line in rows.iter().flat_map(|r| r.split(|b| *b == b'\n')) {
                if line.is_empty() {
                    continue;
                }
                let seq = serde_json::from_slice::<serde_json::Value>(line).unwrap()["seq"]
                    .as_u64()
                    .unwrap();
                t.insert(seq, line).unwrap();
            }
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            let mut m = w.open_table(meta).unwrap();
            m.insert("schema_version", 1).unwrap();
            m.remove("events_from").unwrap();
            // The index versions before 3 kept.
            let old: redb::TableDefinition<(&str, i64, &str), ()> =
                redb::TableDefinition::new("group_incomplete");
            w.open_table(old)
                .unwrap()
                .insert(("g", 0, "t"), ())
                .unwrap();
        }
        w.commit().unwrap();
    }
    assert_eq!(event_rows(&path).len(), 8);
    let store = open(&path);
    let r = store.read().unwrap();
    assert_eq!(r.events_after(0, 100).unwrap().messages, all);
    assert_eq!(r.events_after(5, 2).unwrap().messages, all[5..7].to_vec());
    drop(r);
    let more = limit_events(&store, 2, at(2));
    assert_eq!(more[0].seq, 9);
    drop(store);
    let db = redb::Database::create(&path).unwrap();
    let r = db.begin_read().unwrap();
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    let version = r
        .open_table(meta)
        .unwrap()
        .get("schema_version")
        .unwrap()
        .unwrap()
        .value();
    assert_eq!(version, crewd::storage::SCHEMA_VERSION);
    let tables: Vec<String> = r
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_string())
        .collect();
    assert!(tables.contains(&"events".to_string()), "{tables:?}");
    assert!(
        !tables.contains(&"group_incomplete".to_string()),
        "{tables:?}"
    );
}

/// Removes what schema version 5 added: the groups' ranked and schedule
/// indexes.
fn drop_group_rank_indexes(w: &redb::WriteTransaction) {
    for name in [
        "groups_by_name",
        "groups_by_progress",
        "groups_by_failed",
        "scheduled_groups",
    ] {
        let t: redb::TableDefinition<(u8, &str), ()> = redb::TableDefinition::new(name);
        assert!(w.delete_table(t).unwrap(), "{name} exists");
    }
}

/// Sets the schema version a store says it has.
fn set_schema_version(w: &redb::WriteTransaction, version: u64) {
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    w.open_table(meta)
        .unwrap()
        .insert("schema_version", version)
        .unwrap();
}

/// Rewrites the store at `path` as schema version 3 kept it: the
/// creation-time indexes keyed by millisecond, no ranked group indexes.
fn rewrite_as_version_3(path: &Path) {
    use redb::ReadableTable;
    let db = redb::Database::create(path).unwrap();
    let w = db.begin_write().unwrap();
    drop_group_rank_indexes(&w);
    {
        let ms = |ns: i64| ns.div_euclid(1_000_000);
        let by_time: redb::TableDefinition<(&str, i64, &str), ()> =
            redb::TableDefinition::new("group_tasks");
        let mut t = w.open_table(by_time).unwrap();
        let keys: Vec<(String, i64, String)> = t
            .iter()
            .unwrap()
            .map(|row| {
                let (k, _) = row.unwrap();
                let (g, ns, id) = k.value();
                (g.to_string(), ns, id.to_string())
            })
            .collect();
        t.retain(|_, _| false).unwrap();
        for (g, ns, id) in &keys {
            t.insert((g.as_str(), ms(*ns), id.as_str()), ()).unwrap();
        }
        let by_bucket: redb::TableDefinition<(&str, u8, i64, &str), ()> =
            redb::TableDefinition::new("group_bucket");
        let mut t = w.open_table(by_bucket).unwrap();
        let keys: Vec<(String, u8, i64, String)> = t
            .iter()
            .unwrap()
            .map(|row| {
                let (k, _) = row.unwrap();
                let (g, b, ns, id) = k.value();
                (g.to_string(), b, ns, id.to_string())
            })
            .collect();
        t.retain(|_, _| false).unwrap();
        for (g, b, ns, id) in &keys {
            t.insert((g.as_str(), *b, ms(*ns), id.as_str()), ())
                .unwrap();
        }
    }
    set_schema_version(&w, 3);
    w.commit().unwrap();
}

#[test]
fn a_version_4_store_gets_its_groups_ranked_indexes() {
    let mut f = Fixture::new();
    let once = |id: &str| NewTask {
        remaining_attempts: Some(1),
        ..task(id, &[])
    };
    f.create_group("empty", vec![], at(0));
    f.run(at(0), |w| {
        let patch = crew_core::wire::TaskGroupPatch {
            schedule: Some("0 2 * * *".into()),
            ..Default::default()
        };
        rules::update_group(w, "empty", patch, at(1)).unwrap()
    });
    f.create_group("half", vec![once("h1"), once("h2")], at(1));
    f.create_group("failing", vec![once("f1"), once("f2")], at(2));
    f.finish("h1", success(json!(1), vec![]), at(3));
    f.finish("f1", WorkerOutcome::failure("boom"), at(3));

    let scratch = tempfile::tempdir().unwrap();
    drop(std::mem::replace(
        &mut f.store,
        open(&scratch.path().join("scratch.redb")),
    ));
    {
        let db = redb::Database::create(&f.path).unwrap();
        let w = db.begin_write().unwrap();
        drop_group_rank_indexes(&w);
        set_schema_version(&w, 4);
        w.commit().unwrap();
    }
    f.store = open(&f.path);
    check(&f.store.read().unwrap(), &f.mem, at(4));
    // Later changes move the built entries, not stale ones.
    f.finish("f2", WorkerOutcome::failure("boom"), at(5));
    f.finish("h2", success(json!(1), vec![]), at(5));
    check(&f.store.read().unwrap(), &f.mem, at(6));
    let first = |sort| {
        let l = f.store.read().unwrap().list_groups(1, 1, None, sort, at(6));
        l.unwrap().task_groups[0].group.id.clone()
    };
    assert_eq!(first(GroupSort::Failed), "failing");
    assert_eq!(first(GroupSort::Progress), "failing");
    assert_eq!(first(GroupSort::Name), "empty");
}

#[test]
fn tasks_list_in_the_order_they_were_created_also_after_an_upgrade() {
    let mut f = Fixture::new();
    // One request: every task has the same millisecond.
    let request = ["t2", "t10", "t1", "a", "t3"];
    f.create_group("g", request.iter().map(|id| task(id, &[])).collect(), at(0));
    let order = |r: &ReadTx| {
        let l = r.list_tasks("g", &TaskQuery::default(), at(1)).unwrap();
        l.tasks.into_iter().map(|t| t.id).collect::<Vec<_>>()
    };
    assert_eq!(order(&f.store.read().unwrap()), request);
    f.finish("t10", success(json!(1), vec![]), at(1));

    // A store of version 3 kept milliseconds, so these came by id. Opening
    // it rebuilds both indexes by nanosecond, exactly: later changes move
    // the right entries (the fixture's checks would see a stale one).
    let scratch = tempfile::tempdir().unwrap();
    drop(std::mem::replace(
        &mut f.store,
        open(&scratch.path().join("scratch.redb")),
    ));
    rewrite_as_version_3(&f.path);
    f.store = open(&f.path);
    check(&f.store.read().unwrap(), &f.mem, at(1));
    assert_eq!(order(&f.store.read().unwrap()), request);
    f.finish("t1", success(json!(1), vec![]), at(2));
    f.finish("a", WorkerOutcome::failure("boom"), at(3));
    let q = TaskQuery {
        page_size: 0,
        status: Some(TaskStatus::Completed),
        ..TaskQuery::default()
    };
    let done = f.store.read().unwrap().list_tasks("g", &q, at(3)).unwrap();
    let done: Vec<String> = done.tasks.into_iter().map(|t| t.id).collect();
    assert_eq!(done, ["t10", "t1"]);
}

/// A version 3 store left by a crash: its journal is applied after the
/// upgrade, onto the rebuilt indexes, and moves exactly their entries.
#[test]
fn a_crashed_version_3_store_is_upgraded_then_replayed() {
    let config = journal_only();
    let mut f = Fixture::with_config(config);
    create_dag(&mut f, at(0));
    // Opening again checkpoints the DAG into the file; what follows is
    // journaled only.
    f.reopen();
    f.finish("a", success(json!({"n": 1}), vec![spawned()]), at(1));
    f.finish("b", WorkerOutcome::failure("boom"), at(2));

    let (_crashed, copy) = crash_copy(&f);
    rewrite_as_version_3(&copy);

    let recovered = Store::open(&copy, config).unwrap();
    check(&recovered.read().unwrap(), &f.mem, at(3));
    let order: Vec<String> = recovered
        .read()
        .unwrap()
        .list_tasks("g1", &TaskQuery::default(), at(3))
        .unwrap()
        .tasks
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(order, ["a", "b", "c", "d", "e", "f", "spawned"]);
}

#[test]
fn another_schema_version_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crew.redb");
    drop(open(&path));
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            let mut t = w.open_table(def).unwrap();
            t.insert("schema_version", 999).unwrap();
        }
        w.commit().unwrap();
    }
    let err = Store::open(&path, StoreConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::SchemaMismatch {
                found: 999,
                expected: crewd::storage::SCHEMA_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    let ours = format!("schema version {}", crewd::storage::SCHEMA_VERSION);
    assert!(msg.contains("999") && msg.contains(&ours), "{msg}");
    let core: crew_core::StoreError = err.into();
    assert!(core.0.contains("999"));
}

#[test]
fn a_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("stuff");
            w.open_table(def).unwrap().insert(1, 2).unwrap();
        }
        w.commit().unwrap();
    }
    let err = Store::open(&path, StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StorageError::NotACrewStore { .. }), "{err:?}");
    let text = dir.path().join("text.redb");
    std::fs::write(&text, b"this is not a database at all, just some text").unwrap();
    let err = Store::open(&text, StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StorageError::Open { .. }), "{err:?}");
}

#[test]
fn a_corrupt_record_is_an_error() {
    let mut f = Fixture::new();
    create_dag(&mut f, at(0));
    let path = f.path.clone();
    f.reopen();
    drop(f.store);
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("tasks");
            w.open_table(def)
                .unwrap()
                .insert("a", b"{not json".as_slice())
                .unwrap();
        }
        w.commit().unwrap();
    }
    let store = open(&path);
    let r = store.read().unwrap();
    let err = r.task_with_status("a", at(1)).unwrap_err();
    assert!(
        matches!(err, StorageError::Corrupt { table: "tasks", .. }),
        "{err:?}"
    );
    assert!(r.task("a").is_err());
    assert!(r.list_tasks("g1", &TaskQuery::default(), at(1)).is_err());
}

#[test]
fn inconsistent_changes_are_refused() {
    let mut f = Fixture::new();
    create_dag(&mut f, at(0));
    let stored = f.store.read().unwrap().task("a").unwrap().unwrap();
    let mut w = f.store.write().unwrap();
    let mut ghost = stored.clone();
    ghost.id = "ghost".into();
    let err = w
        .apply(
            &Changes {
                ops: vec![crew_core::Change::UpdateTask {
                    before: Box::new(ghost.clone()),
                    after: Box::new(ghost),
                }],
                wake: vec![],
            },
            at(1),
        )
        .unwrap_err();
    assert!(matches!(err, StorageError::Inconsistent(_)), "{err:?}");
    drop(w);
    let mut w = f.store.write().unwrap();
    let err = w
        .apply(
            &Changes {
                ops: vec![crew_core::Change::CreateTask(stored)],
                wake: vec![],
            },
            at(1),
        )
        .unwrap_err();
    assert!(matches!(err, StorageError::Inconsistent(_)), "{err:?}");
    let g = w.group("g1").unwrap().unwrap();
    let err = w
        .apply(
            &Changes {
                ops: vec![crew_core::Change::DeleteGroup(g)],
                wake: vec![],
            },
            at(1),
        )
        .unwrap_err();
    assert!(err.to_string().contains("still has"), "{err}");
}

#[test]
fn task_listing_pages_searches_and_filters() {
    let mut f = Fixture::new();
    let mut gen = ids();
    f.run(at(0), |w| {
        rules::create_group(
            w,
            NewTaskGroup {
                id: Some("g".into()),
                name: "G".into(),
                ..Default::default()
            },
            at(0),
            &mut gen,
        )
        .unwrap()
    });
    // 25 tasks created one second apart: t00 oldest.
    for i in 0..25 {
        let mut t = task(&format!("t{i:02}"), &[]);
        t.name = if i % 5 == 0 {
            format!("Special {i}")
        } else {
            format!("plain {i}")
        };
        f.run(at(i), |w| {
            rules::create_tasks(w, "g", vec![t], at(i), &mut gen).unwrap()
        });
    }
    for i in [0, 3, 6] {
        f.finish(&format!("t{i:02}"), success(json!(i), vec![]), at(30));
    }
    let r = f.store.read().unwrap();
    let now = at(31);
    let names =
        |l: &crew_core::wire::TaskList| l.tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>();

    let q = TaskQuery {
        page: 1,
        page_size: 10,
        ..TaskQuery::default()
    };
    let l = r.list_tasks("g", &q, now).unwrap();
    assert_eq!(l.count, 25);
    assert_eq!(names(&l)[0], "t00");
    assert_eq!(names(&l).len(), 10);
    assert!(l.tasks.iter().all(|t| t.status.is_some()));
    let q0 = TaskQuery {
        page: 0,
        ..q.clone()
    };
    assert_eq!(
        r.list_tasks("g", &q0, now).unwrap(),
        l,
        "page 0 reads as page 1"
    );
    let l3 = r
        .list_tasks(
            "g",
            &TaskQuery {
                page: 3,
                ..q.clone()
            },
            now,
        )
        .unwrap();
    assert_eq!(
        names(&l3),
        (20..25).map(|i| format!("t{i:02}")).collect::<Vec<_>>()
    );
    assert_eq!(l3.count, 25);
    let beyond = r
        .list_tasks(
            "g",
            &TaskQuery {
                page: 9,
                ..q.clone()
            },
            now,
        )
        .unwrap();
    assert!(beyond.tasks.is_empty());
    assert_eq!(beyond.count, 25);

    let skip = TaskQuery {
        page_size: 0,
        skip_completed: true,
        ..TaskQuery::default()
    };
    let l = r.list_tasks("g", &skip, now).unwrap();
    assert_eq!(l.count, 22);
    assert!(!names(&l).contains(&"t03".to_string()));

    let search = TaskQuery {
        page_size: 2,
        search: Some("SPECIAL".into()),
        ..TaskQuery::default()
    };
    let l = r.list_tasks("g", &search, now).unwrap();
    assert_eq!(l.count, 5);
    assert_eq!(names(&l), vec!["t00", "t05"]);
    let by_id = TaskQuery {
        page_size: 0,
        search: Some("t1".into()),
        ..TaskQuery::default()
    };
    assert_eq!(r.list_tasks("g", &by_id, now).unwrap().count, 10);
    let both = TaskQuery {
        page_size: 0,
        search: Some("special".into()),
        skip_completed: true,
        ..TaskQuery::default()
    };
    assert_eq!(
        names(&r.list_tasks("g", &both, now).unwrap()),
        vec!["t05", "t10", "t15", "t20"]
    );

    let done = TaskQuery {
        page_size: 2,
        status: Some(TaskStatus::Completed),
        ..TaskQuery::default()
    };
    let l = r.list_tasks("g", &done, now).unwrap();
    assert_eq!(
        (l.count, names(&l)),
        (3, vec!["t00".to_string(), "t03".to_string()])
    );
    let ready = TaskQuery {
        page: 2,
        page_size: 20,
        status: Some(TaskStatus::Ready),
        ..TaskQuery::default()
    };
    let l = r.list_tasks("g", &ready, now).unwrap();
    assert_eq!((l.count, l.tasks.len()), (22, 2));
    let none = TaskQuery {
        status: Some(TaskStatus::Completed),
        skip_completed: true,
        ..TaskQuery::default()
    };
    assert_eq!(r.list_tasks("g", &none, now).unwrap().count, 0);
    assert_eq!(
        r.list_tasks("nope", &TaskQuery::default(), now)
            .unwrap()
            .count,
        0
    );
}

#[test]
fn group_listing_is_newest_first_paged_and_searchable() {
    let mut f = Fixture::new();
    let mut gen = ids();
    for i in 0..7 {
        let spec = NewTaskGroup {
            id: Some(format!("grp-{i}")),
            name: if i % 2 == 0 {
                format!("Even {i}")
            } else {
                format!("odd {i}")
            },
            ..Default::default()
        };
        f.run(at(i), |w| {
            rules::create_group(w, spec, at(i), &mut gen).unwrap()
        });
    }
    let r = f.store.read().unwrap();
    let ids_of = |l: &crew_core::wire::TaskGroupList| {
        l.task_groups
            .iter()
            .map(|g| g.group.id.clone())
            .collect::<Vec<_>>()
    };
    let l = r
        .list_groups(1, 3, None, GroupSort::Newest, at(10))
        .unwrap();
    assert_eq!(l.count, 7);
    assert_eq!(ids_of(&l), vec!["grp-6", "grp-5", "grp-4"]);
    let l = r
        .list_groups(3, 3, None, GroupSort::Newest, at(10))
        .unwrap();
    assert_eq!(ids_of(&l), vec!["grp-0"]);
    let l = r
        .list_groups(1, 0, Some("EVEN"), GroupSort::Newest, at(10))
        .unwrap();
    assert_eq!(
        (l.count, ids_of(&l)),
        (
            4,
            vec![
                "grp-6".into(),
                "grp-4".into(),
                "grp-2".into(),
                "grp-0".into()
            ]
        )
    );
    let l = r
        .list_groups(2, 1, Some("grp-1"), GroupSort::Newest, at(10))
        .unwrap();
    assert_eq!((l.count, l.task_groups.len()), (1, 0));
    // Searched in every order: the count is of every match, the page the
    // order's (the groups are empty, so progress and failures go by id).
    for (sort, second_page) in [
        (GroupSort::Newest, ["grp-2", "grp-0"]),
        (GroupSort::Name, ["grp-4", "grp-6"]),
        (GroupSort::Progress, ["grp-4", "grp-6"]),
        (GroupSort::Failed, ["grp-4", "grp-6"]),
    ] {
        let l = r.list_groups(2, 2, Some("even"), sort, at(10)).unwrap();
        assert_eq!(
            (l.count, ids_of(&l)),
            (4, second_page.map(String::from).to_vec()),
            "{sort:?}"
        );
    }
    assert_eq!(
        r.list_groups(1, 10, None, GroupSort::Newest, at(10))
            .unwrap()
            .task_groups[0]
            .completed_percent,
        100.0
    );
}

#[test]
fn group_listing_sorts_every_group_by_name_progress_or_failures() {
    let mut f = Fixture::new();
    let once = |id: &str| NewTask {
        remaining_attempts: Some(1),
        ..task(id, &[])
    };
    // Created in this order, so that newest first is none of the others.
    f.create_group("c", vec![], at(0));
    f.create_group("a", vec![once("a1"), once("a2")], at(1));
    f.create_group("d", vec![once("d1")], at(2));
    f.create_group("b", vec![once("b1"), once("b2"), once("b3")], at(3));
    f.finish("a1", success(json!(1), vec![]), at(4));
    f.finish("a2", WorkerOutcome::failure("boom"), at(4));
    f.finish("d1", success(json!(1), vec![]), at(4));
    f.finish("b1", WorkerOutcome::failure("boom"), at(4));
    f.finish("b2", WorkerOutcome::failure("boom"), at(4));
    let r = f.store.read().unwrap();
    let list = |sort, page, size, search| {
        let l = r.list_groups(page, size, search, sort, at(5)).unwrap();
        let ids: Vec<String> = l.task_groups.iter().map(|g| g.group.id.clone()).collect();
        (l.count, ids.join(" "))
    };
    assert_eq!(list(GroupSort::Newest, 1, 0, None), (4, "b d a c".into()));
    assert_eq!(list(GroupSort::Name, 1, 0, None), (4, "a b c d".into()));
    // b 0 %, a 50 %; c (empty) and d are both at 100 %, so by id.
    assert_eq!(list(GroupSort::Progress, 1, 0, None), (4, "b a c d".into()));
    assert_eq!(list(GroupSort::Failed, 1, 0, None), (4, "b a c d".into()));
    // Pages of the whole order, and searched.
    assert_eq!(list(GroupSort::Failed, 1, 1, None), (4, "b".into()));
    assert_eq!(list(GroupSort::Failed, 2, 2, None), (4, "c d".into()));
    assert_eq!(list(GroupSort::Name, 3, 2, None), (4, "".into()));
    assert_eq!(list(GroupSort::Progress, 1, 0, Some("D")), (1, "d".into()));
    // Each page still carries the full counts.
    let l = r.list_groups(1, 1, None, GroupSort::Failed, at(5)).unwrap();
    assert_eq!(
        (
            l.task_groups[0].counts.failed,
            l.task_groups[0].counts.ready
        ),
        (2, 1)
    );
}

#[test]
fn delayed_and_workgroup_pauses_split_pending() {
    let mut f = Fixture::new();
    let mut later = task("later", &[]);
    later.run_after = Some(at(100));
    let mut in_wg = task("in-wg", &[]);
    in_wg.workgroup = "acct".into();
    let mut both = task("both", &[]);
    both.workgroup = "acct".into();
    both.run_after = Some(at(50));
    f.create_group("g", vec![later, in_wg, both, task("now", &[])], at(0));
    let counts = |f: &Fixture, t| {
        f.store
            .read()
            .unwrap()
            .group_view("g", at(t))
            .unwrap()
            .unwrap()
            .counts
    };
    assert_eq!((counts(&f, 1).delayed, counts(&f, 1).ready), (2, 2));
    assert_eq!((counts(&f, 60).delayed, counts(&f, 60).ready), (1, 3));
    assert_eq!((counts(&f, 200).delayed, counts(&f, 200).ready), (0, 4));
    // A worker's rate limit: the workgroup's pending tasks are delayed.
    f.run(at(1), |_| Changes {
        ops: vec![crew_core::Change::PutWorkgroup(crew_core::Workgroup {
            name: "acct".into(),
            paused_until: Some(at(80)),
            paused_by_operator: false,
            limits: Default::default(),
        })],
        wake: vec![],
    });
    // "both" is delayed twice over but counted once.
    assert_eq!((counts(&f, 2).delayed, counts(&f, 2).ready), (3, 1));
    assert_eq!((counts(&f, 90).delayed, counts(&f, 90).ready), (1, 3));
    check(&f.store.read().unwrap(), &f.mem, at(2));
    check(&f.store.read().unwrap(), &f.mem, at(60));
    check(&f.store.read().unwrap(), &f.mem, at(90));
    let wgs = f
        .store
        .read()
        .unwrap()
        .workgroups(at(2))
        .unwrap()
        .workgroups;
    assert_eq!(wgs.len(), 1);
    assert_eq!(wgs[0].incomplete_tasks, 2);
    assert_eq!(wgs[0].workgroup.paused_until, Some(at(80)));
    let r = f.store.read().unwrap();
    assert_eq!(r.workgroup_incomplete_count("acct").unwrap(), 2);
    assert_eq!(r.workgroup_view("acct").unwrap(), wgs[0]);
    assert_eq!(r.workgroup_view("none").unwrap().incomplete_tasks, 0);
    drop(r);
    // An operator's pause: whatever status the rules give it, counts and
    // listings agree with them.
    f.run(at(3), |w| {
        rules::pause_workgroup(w, "acct", at(80)).unwrap()
    });
    for t in [4, 60, 90] {
        check(&f.store.read().unwrap(), &f.mem, at(t));
    }
    assert_eq!(
        f.store.read().unwrap().workgroup_task_ids("acct").unwrap(),
        vec!["both", "in-wg"]
    );
}

#[test]
fn release_events_follow_parent_completion() {
    let mut f = Fixture::new();
    f.create_group(
        "g",
        vec![task("p", &[]), task("q", &[]), task("kid", &["p", "q"])],
        at(0),
    );
    let updated_kid = |events: &[crew_core::wire::StreamMessage]| {
        events.iter().find_map(|e| match &e.event {
            Event::TaskUpdated { task } if task.id == "kid" => task.status,
            _ => None,
        })
    };
    // One parent of two: still waiting, no event for kid.
    let events = f.finish("p", success(json!(1), vec![]), at(1));
    assert_eq!(updated_kid(&events), None);
    let events = f.finish("q", success(json!(2), vec![]), at(2));
    assert_eq!(updated_kid(&events), Some(TaskStatus::Ready));
    // Resetting q makes kid wait again (kid is reset too, with an event).
    let events = f.run(at(3), |w| rules::reset_task(w, "q", None, at(3)).unwrap());
    assert_eq!(updated_kid(&events), Some(TaskStatus::Waiting));
}

#[test]
fn retention_counts_a_groups_age_from_when_it_finished() {
    use crewd::retention::{doomed_groups, RetentionPolicy};
    let mut f = Fixture::new();
    f.create_group("g", vec![task("a", &[]), task("b", &["a"])], at(0));
    let policy = RetentionPolicy {
        max_age: Some(std::time::Duration::from_secs(60)),
        max_finished_groups: None,
        every: std::time::Duration::from_secs(1),
    };
    let doomed = |f: &Fixture, now| doomed_groups(&f.store, &policy, now).unwrap();
    let finished_at = |f: &Fixture| f.store.read().unwrap().group_finished_at("g").unwrap();

    f.finish("a", success(json!(1), vec![]), at(10));
    assert_eq!(finished_at(&f), None);
    assert!(doomed(&f, at(100)).is_empty(), "not finished");
    // Finished at 100 s, created at 0: kept until 160 s.
    f.finish("b", success(json!(2), vec![]), at(100));
    assert_eq!(finished_at(&f), Some(at(100)));
    assert!(doomed(&f, at(150)).is_empty());
    assert_eq!(doomed(&f, at(170)), vec!["g".to_string()]);

    // Reset, it counts from when it finishes again.
    f.run(at(200), |w| {
        rules::reset_group(w, "g", None, at(200)).unwrap()
    });
    assert!(doomed(&f, at(1000)).is_empty(), "running again");
    f.finish("a", success(json!(1), vec![]), at(300));
    f.finish("b", success(json!(2), vec![]), at(310));
    assert_eq!(finished_at(&f), Some(at(310)));
    assert!(doomed(&f, at(360)).is_empty());
    assert_eq!(doomed(&f, at(371)), vec!["g".to_string()]);

    // The time survives a reopen and goes with the group.
    f.reopen();
    assert_eq!(finished_at(&f), Some(at(310)));
    f.run(at(400), |w| rules::delete_group(w, "g").unwrap());
    assert_eq!(finished_at(&f), None);
}
