//! Fixture data built from crew-core types, on a fixed clock.
#![allow(dead_code)]

use crew_core::model::{Attempt, AttemptOutcome, TaskError};
use crew_core::wire::{
    GroupSort, StatusCounts, TaskGroupList, TaskGroupView, WorkgroupList, WorkgroupView,
};
use crew_core::{Task, TaskGroup, TaskStatus, Timestamp, Workgroup};
use crew_tui::app::keymap::KeyMap;
use crew_tui::app::msg::{ConnEvent, Reply};
use crew_tui::theme::Theme;
use crew_tui::{update, AppState, Effect, Msg};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;

/// 2024-03-01T12:00:00Z.
pub fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_709_294_400_000)
}

pub fn ago(secs: f64) -> Timestamp {
    now().plus_seconds(-secs)
}

pub fn task(id: &str, name: &str, worker: &str, status: TaskStatus, parents: &[&str]) -> Task {
    let mut t: Task =
        serde_json::from_value(json!({"id": id, "taskGroupId": "g-demo"})).expect("minimal task");
    t.name = name.into();
    t.worker = worker.into();
    t.status = Some(status);
    t.parent_ids = parents.iter().map(|p| p.to_string()).collect();
    t.created_at = ago(3600.0);
    t.is_complete = status == TaskStatus::Completed;
    t.busy_executing = status == TaskStatus::Running;
    if status == TaskStatus::Failed {
        t.remaining_attempts = 0;
    }
    t
}

pub fn demo_tasks() -> Vec<Task> {
    let mut seed = task(
        "seed",
        "list accounts",
        "list-accounts",
        TaskStatus::Completed,
        &[],
    );
    seed.is_seed = true;
    seed.input = json!({"since": "2024-02-01"});
    seed.output = json!({"accounts": ["a1", "a2", "a3", "a4"]});
    let mut a1 = task(
        "a1",
        "fetch a1",
        "fetch-insights",
        TaskStatus::Completed,
        &["seed"],
    );
    a1.key = "acct-a1".into();
    a1.workgroup = "fb-api".into();
    let mut a2 = task(
        "a2",
        "fetch a2",
        "fetch-insights",
        TaskStatus::Running,
        &["seed"],
    );
    a2.workgroup = "fb-api".into();
    a2.attempts = 1;
    a2.attempt_log.push(Attempt {
        number: 1,
        started_at: ago(4.0),
        finished_at: None,
        outcome: AttemptOutcome::Running,
    });
    let mut a3 = task(
        "a3",
        "fetch a3",
        "fetch-insights",
        TaskStatus::Failed,
        &["seed"],
    );
    a3.workgroup = "fb-api".into();
    a3.attempts = 3;
    a3.input = json!({"account": "a3", "fields": ["spend", "clicks"]});
    a3.errors = vec![
        TaskError::recorded("HTTP 500: upstream timeout", ago(600.0), 1),
        TaskError::recorded("HTTP 500: upstream timeout", ago(480.0), 2),
        TaskError::recorded("invalid token \u{1b}[31mRED\u{1b}[0m", ago(300.0), 3),
    ];
    let mut a4 = task(
        "a4",
        "fetch a4",
        "fetch-insights",
        TaskStatus::Delayed,
        &["seed"],
    );
    a4.run_after = now().plus_seconds(252.0);
    let merge = task(
        "merge",
        "merge insights",
        "merge",
        TaskStatus::Waiting,
        &["a1", "a2", "a3", "a4"],
    );
    let mut store = task(
        "store-a1",
        "store a1",
        "store",
        TaskStatus::Completed,
        &["a1"],
    );
    store.created_by = Some("a1".into());
    let notify = task(
        "notify",
        "notify",
        "notify",
        TaskStatus::Ready,
        &["store-a1", "a1"],
    );
    let report = task(
        "report",
        "weekly report",
        "report",
        TaskStatus::Waiting,
        &["merge"],
    );
    let mut cleanup = task("cleanup", "cleanup", "cleanup", TaskStatus::Paused, &[]);
    cleanup.is_paused = true;
    let evil = task(
        "evil",
        "\u{1b}]0;pwned\u{7}\u{1b}[2Jevil\u{202e}txt.exe\u{9b}31m",
        "fetch-insights",
        TaskStatus::Ready,
        &[],
    );
    vec![
        seed, a1, a2, a3, a4, merge, store, notify, report, cleanup, evil,
    ]
}

pub fn counts_of(tasks: &[Task]) -> StatusCounts {
    let mut c = StatusCounts::default();
    for t in tasks {
        *c.get_mut(t.status.unwrap_or(TaskStatus::Ready)) += 1;
    }
    c
}

pub fn group(id: &str, name: &str, paused: bool, age: f64, counts: StatusCounts) -> TaskGroupView {
    TaskGroupView {
        group: TaskGroup {
            id: id.into(),
            name: name.into(),
            is_paused: paused,
            created_at: ago(age),
            schedule: None,
            last_scheduled_reset: None,
            schedule_since: None,
            schedule_refused: None,
        },
        completed_percent: counts.completed_percent(),
        counts,
    }
}

pub fn groups() -> TaskGroupList {
    let mut demo = group(
        "g-demo",
        "demo",
        false,
        3.0 * 3600.0,
        counts_of(&demo_tasks()),
    );
    // A recurring group: the views mark it and show its schedule.
    demo.group.schedule = Some("0 2 * * *".into());
    let nightly = group(
        "g-nightly",
        "nightly-sync",
        true,
        26.0 * 3600.0,
        StatusCounts {
            completed: 120,
            paused: 80,
            ..Default::default()
        },
    );
    let backfill = group(
        "g-backfill",
        "backfill-2023",
        false,
        9.0 * 86400.0,
        StatusCounts {
            completed: 5000,
            ..Default::default()
        },
    );
    TaskGroupList {
        task_groups: vec![nightly, demo, backfill],
        count: 3,
    }
}

pub fn workgroups() -> WorkgroupList {
    let mut fb = Workgroup::new("fb-api");
    fb.paused_until = Some(now().plus_seconds(252.0));
    let mut crm = Workgroup::new("crm");
    crm.paused_until = Some(now().plus_seconds(3600.0));
    crm.paused_by_operator = true;
    fb.limits = crew_core::WorkgroupLimits::parse("rate:0.5,burst:3").unwrap();
    let mut stripe = Workgroup::new("stripe");
    stripe.limits = crew_core::WorkgroupLimits::parse("concurrency:4,rate:2").unwrap();
    WorkgroupList {
        workgroups: vec![
            WorkgroupView {
                workgroup: fb,
                incomplete_tasks: 7,
                in_flight: 0,
            },
            WorkgroupView {
                workgroup: crm,
                incomplete_tasks: 1200,
                in_flight: 0,
            },
            WorkgroupView {
                workgroup: stripe,
                incomplete_tasks: 9,
                in_flight: 3,
            },
        ],
    }
}

/// The daemon's first page of groups, newest first, with `count` groups
/// in all.
pub fn page_of(search: &str, groups: Vec<TaskGroupView>, count: u64) -> Msg {
    sorted_page_of(search, GroupSort::Newest, groups, count)
}

/// The daemon's first page of groups in `sort`'s order.
pub fn sorted_page_of(
    search: &str,
    sort: GroupSort,
    groups: Vec<TaskGroupView>,
    count: u64,
) -> Msg {
    Msg::Reply(Reply::Groups {
        search: search.into(),
        sort,
        result: Ok(TaskGroupList {
            task_groups: groups,
            count,
        }),
    })
}

pub fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

pub fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// Feeds messages; returns every effect.
pub fn feed(state: &mut AppState, msgs: impl IntoIterator<Item = Msg>) -> Vec<Effect> {
    let mut fx = Vec::new();
    for m in msgs {
        fx.extend(update(state, m));
    }
    state.settle();
    fx
}

pub fn types(state: &mut AppState, s: &str) -> Vec<Effect> {
    feed(state, s.chars().map(key))
}

/// A connected console with groups and workgroups loaded, on the groups view.
pub fn loaded(theme: Theme, read_only: bool) -> AppState {
    let mut s = AppState::new(
        "http://127.0.0.1:8090",
        KeyMap::defaults(read_only),
        theme,
        now(),
    );
    s.start();
    feed(
        &mut s,
        [
            Msg::Conn(ConnEvent::Connected { resumed: false }),
            Msg::Reply(Reply::Groups {
                search: String::new(),
                sort: GroupSort::Newest,
                result: Ok(groups()),
            }),
            Msg::Reply(Reply::Workgroups(Ok(workgroups()))),
        ],
    );
    s
}

/// [`loaded`], with the demo group open.
pub fn with_demo(theme: Theme, read_only: bool) -> AppState {
    let mut s = loaded(theme, read_only);
    let fx = types(&mut s, ":group demo");
    assert!(fx.is_empty());
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(fx, vec![Effect::FetchGroup("g-demo".into())]);
    let view = groups().task_groups[1].clone();
    feed(
        &mut s,
        [Msg::Reply(Reply::Group {
            id: "g-demo".into(),
            result: Ok((view, demo_tasks())),
        })],
    );
    s
}

pub fn render(state: &AppState, w: u16, h: u16) -> String {
    let mut state = state.clone();
    state.size = (w, h);
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| crew_tui::view::draw(f, &state)).expect("draw");
    let buf = t.backend().buffer();
    for c in buf.content() {
        assert!(
            !c.symbol().chars().any(crew_tui::sanitize::is_unsafe),
            "raw control character on screen: {:?}",
            c.symbol()
        );
    }
    t.backend().to_string()
}

/// Answers the dry run a bulk key asked the daemon for (`fx` must be that
/// one request) with its counts; returns what the answer led to.
pub fn dry_run(
    state: &mut AppState,
    fx: Vec<Effect>,
    matched: u64,
    deleted: u64,
    updated: u64,
) -> Vec<Effect> {
    let [Effect::CountBulk(req)] = &fx[..] else {
        panic!("a bulk key asks the daemon to count first, got {fx:?}")
    };
    let result = Ok(crew_core::wire::BulkResult {
        matched,
        deleted,
        updated,
        dry_run: true,
    });
    feed(
        state,
        [Msg::Reply(Reply::BulkCount {
            req: req.clone(),
            result,
        })],
    )
}
