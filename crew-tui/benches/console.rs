//! Frame and event throughput on a 100k-task group. Run with
//! `cargo bench -p crew-tui --bench console`; prints the figures.

use crew_core::wire::{
    Event, GroupSort, StatusCounts, StreamMessage, TaskGroupList, TaskGroupView,
};
use crew_core::{Task, TaskGroup, TaskStatus, Timestamp};
use crew_tui::app::keymap::KeyMap;
use crew_tui::app::msg::Reply;
use crew_tui::theme::Theme;
use crew_tui::{update, AppState, Msg};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, Instant};

const TASKS: usize = 100_000;
const FAN: usize = 100;

fn task(i: usize, parents: Vec<String>, status: TaskStatus) -> Task {
    let mut t: Task =
        serde_json::from_value(serde_json::json!({"id": format!("t{i}"), "taskGroupId": "big"}))
            .expect("task");
    t.name = format!("fetch insights for account {i}");
    t.worker = "fetch-insights".into();
    t.parent_ids = parents;
    t.status = Some(status);
    t
}

/// One seed, 100 fan-out tasks, then chains under them, with every 50th
/// task also depending on a second parent (a fan-in).
fn big_group() -> Vec<Task> {
    let mut v = Vec::with_capacity(TASKS);
    v.push(task(0, vec![], TaskStatus::Completed));
    for i in 1..TASKS {
        let parent = i.saturating_sub(FAN);
        let mut parents = vec![format!("t{parent}")];
        if i > FAN && i % 50 == 0 {
            parents.push(format!("t{}", i - FAN - 1));
        }
        let status = match i % 10 {
            0..=5 => TaskStatus::Completed,
            6 => TaskStatus::Running,
            7 => TaskStatus::Failed,
            8 => TaskStatus::Waiting,
            _ => TaskStatus::Ready,
        };
        v.push(task(i, parents, status));
    }
    v
}

fn report(label: &str, per: Duration) {
    println!("{label:<58} {:>10.3} ms", per.as_secs_f64() * 1000.0);
}

fn time<T>(label: &str, runs: u32, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(f());
    }
    let per = start.elapsed() / runs;
    report(label, per);
    per
}

/// Times `f` on a fresh copy of `base` each run; the copy is not timed.
fn time_on(label: &str, runs: u32, base: &AppState, mut f: impl FnMut(&mut AppState)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..runs {
        let mut s = base.clone();
        let start = Instant::now();
        f(&mut s);
        total += start.elapsed();
        std::hint::black_box(&s);
    }
    let per = total / runs;
    report(label, per);
    per
}

fn main() {
    let now = Timestamp::from_unix_millis(1_709_294_400_000);
    let tasks = big_group();
    let view = TaskGroupView {
        group: TaskGroup {
            id: "big".into(),
            name: "big".into(),
            is_paused: false,
            created_at: now,
            schedule: None,
            last_scheduled_reset: None,
            schedule_since: None,
            schedule_refused: None,
        },
        counts: StatusCounts::default(),
        completed_percent: 0.0,
    };
    let mut state = AppState::new("bench", KeyMap::default(), Theme::default(), now);
    update(
        &mut state,
        Msg::Reply(Reply::Groups {
            search: String::new(),
            sort: GroupSort::Newest,
            result: Ok(TaskGroupList {
                task_groups: vec![view.clone()],
                count: 1,
            }),
        }),
    );
    update(
        &mut state,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );

    println!("crew-tui console benchmark: {TASKS} tasks");
    let mut total = Duration::ZERO;
    for _ in 0..5 {
        let mut s = state.clone();
        let msg = Msg::Reply(Reply::Group {
            id: "big".into(),
            result: Ok((view.clone(), tasks.clone())),
        });
        let start = Instant::now();
        update(&mut s, msg);
        s.settle();
        total += start.elapsed();
    }
    report("load snapshot + index + build rows (100k tasks)", total / 5);
    update(
        &mut state,
        Msg::Reply(Reply::Group {
            id: "big".into(),
            result: Ok((view.clone(), tasks.clone())),
        }),
    );
    state.settle();
    let rows = state.group.as_ref().map_or(0, |g| g.dag.rows().len());
    println!("{:<55} {rows:>10}", "visible rows");

    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    time("draw one frame 160x48 (tree + preview)", 200, || {
        term.draw(|f| crew_tui::view::draw(f, &state)).map(|_| ())
    });
    let mut small = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    time("draw one frame 80x24", 200, || {
        small.draw(|f| crew_tui::view::draw(f, &state)).map(|_| ())
    });

    // Jump to the middle of the tree, then draw there.
    for _ in 0..500 {
        update(
            &mut state,
            Msg::Key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE)),
        );
    }
    time("draw one frame 160x48, scrolled deep", 200, || {
        term.draw(|f| crew_tui::view::draw(f, &state)).map(|_| ())
    });

    let updates: Vec<Msg> = (0..10_000)
        .map(|k| {
            let i = (k * 7919) % TASKS;
            let mut t = tasks[i].clone();
            t.status = Some(if k % 2 == 0 {
                TaskStatus::Completed
            } else {
                TaskStatus::Failed
            });
            Msg::Stream(StreamMessage {
                seq: k as u64 + 1,
                at: Some(now),
                event: Event::TaskUpdated { task: Box::new(t) },
            })
        })
        .collect();
    time_on("apply 10k task.updated events + settle", 5, &state, |s| {
        for m in updates.iter().cloned() {
            update(s, m);
        }
        s.settle();
    });
    let creates: Vec<Msg> = (0..10_000)
        .map(|k| {
            let t = task(TASKS + k, vec![format!("t{}", k * 3)], TaskStatus::Ready);
            Msg::Stream(StreamMessage {
                seq: 20_000 + k as u64,
                at: Some(now),
                event: Event::TaskCreated { task: Box::new(t) },
            })
        })
        .collect();
    time_on(
        "apply 10k task.created events + settle (one rebuild)",
        5,
        &state,
        |s| {
            for m in creates.iter().cloned() {
                update(s, m);
            }
            s.settle();
        },
    );
    time_on(
        "status filter 'running' on 100k (key f + settle)",
        5,
        &state,
        |s| {
            update(
                s,
                Msg::Key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::NONE)),
            );
            s.settle();
        },
    );
    let per = time_on(
        "text filter '/4242' on 100k (rows rebuilt per key)",
        3,
        &state,
        |s| {
            for c in "/4242".chars() {
                update(
                    s,
                    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
                );
            }
            s.settle();
        },
    );
    println!(
        "{:<58} {:>10.3} ms",
        "  = per filter key (4 keys)",
        per.as_secs_f64() * 1000.0 / 4.0
    );
    // One keystroke into a filter already typed: what the operator waits
    // for. A narrow needle (a handful of rows) and one every task matches
    // (every row rebuilt).
    for (typed, key, label) in [
        (
            "/424",
            '2',
            "text filter: one key on 100k, few matches ('/424'+'2')",
        ),
        (
            "/fetc",
            'h',
            "text filter: one key on 100k, all match ('/fetc'+'h')",
        ),
    ] {
        let mut base = state.clone();
        for c in typed.chars() {
            update(
                &mut base,
                Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
            );
        }
        base.settle();
        time_on(label, 10, &base, |s| {
            update(
                s,
                Msg::Key(KeyEvent::new(KeyCode::Char(key), KeyModifiers::NONE)),
            );
            s.settle();
        });
    }
    let per = time_on(
        "1000 keys (j) on 100k, settled after each",
        3,
        &state,
        |s| {
            for _ in 0..1000 {
                update(
                    s,
                    Msg::Key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE)),
                );
            }
        },
    );
    println!(
        "{:<58} {:>10.3} us",
        "  = per key",
        per.as_secs_f64() * 1000.0
    );
}
