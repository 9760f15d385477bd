//! The reducer and the key handling, without a terminal.

mod common;

use common::*;
use crew_core::wire::{ActionResult, BulkFilter, Event, GroupSort, StreamMessage};
use crew_core::TaskStatus;
use crew_tui::app::action::{ActionRequest, Target, Verb};
use crew_tui::app::msg::{ConnEvent, Reply};
use crew_tui::app::state::{ConnState, Input, View};
use crew_tui::theme::Theme;
use crew_tui::{Effect, Msg};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

fn selected_id(s: &crew_tui::AppState) -> String {
    s.group
        .as_ref()
        .and_then(|g| g.selected_task())
        .map(|t| t.id.clone())
        .unwrap_or_default()
}

fn ev(seq: u64, event: Event) -> Msg {
    Msg::Stream(StreamMessage {
        seq,
        at: Some(now()),
        event,
    })
}

#[test]
fn quit_with_q_ctrl_c_and_command() {
    for msgs in [
        vec![key('q')],
        vec![Msg::Key(KeyEvent::new(
            KeyCode::Char('c'),
            KeyModifiers::CONTROL,
        ))],
    ] {
        let mut s = loaded(Theme::default(), false);
        assert_eq!(feed(&mut s, msgs), vec![Effect::Quit]);
        assert!(s.quit);
    }
    let mut s = loaded(Theme::default(), false);
    types(&mut s, ":q");
    assert_eq!(feed(&mut s, [code(KeyCode::Enter)]), vec![Effect::Quit]);
}

#[test]
fn key_releases_are_ignored() {
    let mut s = loaded(Theme::default(), false);
    let mut k = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    k.kind = KeyEventKind::Release;
    assert!(feed(&mut s, [Msg::Key(k)]).is_empty());
    assert!(!s.quit);
}

#[test]
fn open_a_group_then_back() {
    let mut s = loaded(Theme::default(), false);
    assert_eq!(s.visible_groups()[0].group.name, "demo");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(fx, vec![Effect::FetchGroup("g-demo".into())]);
    assert_eq!(s.view, View::Dag);
    assert!(s.group.as_ref().is_some_and(|g| g.loading));
    feed(&mut s, [code(KeyCode::Esc)]);
    assert_eq!(s.view, View::Groups);
}

#[test]
fn navigation_moves_and_clamps() {
    let mut s = with_demo(Theme::default(), false);
    assert_eq!(selected_id(&s), "seed");
    types(&mut s, "jj");
    assert_eq!(selected_id(&s), "merge");
    types(&mut s, "G");
    assert_eq!(selected_id(&s), "evil");
    types(&mut s, "j");
    assert_eq!(selected_id(&s), "evil");
    types(&mut s, "g");
    assert_eq!(selected_id(&s), "seed");
    types(&mut s, "k");
    assert_eq!(selected_id(&s), "seed");
}

#[test]
fn reference_rows_jump_to_the_task() {
    let mut s = with_demo(Theme::default(), false);
    // seed, a1, merge, report, store-a1, notify, &notify
    types(&mut s, &"j".repeat(6));
    let g = s.group.as_ref().unwrap();
    let row = g.dag.rows()[g.list.selected];
    assert_eq!(row.kind, crew_tui::app::dag::RowKind::Ref);
    feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(s.view, View::Dag);
    assert_eq!(s.group.as_ref().unwrap().list.selected, 5);
    assert_eq!(selected_id(&s), "notify");
    // On a primary row enter opens the detail; tab and enter follow links.
    feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(s.view, View::Task);
    feed(&mut s, [code(KeyCode::Tab), code(KeyCode::Enter)]);
    assert_eq!(s.detail_task().unwrap().id, "store-a1");
    feed(&mut s, [code(KeyCode::Esc)]);
    assert_eq!(s.view, View::Dag);
}

#[test]
fn destructive_actions_confirm_with_cancel_focused() {
    let mut s = with_demo(Theme::default(), false);
    assert!(types(&mut s, "d").is_empty());
    let c = s.confirm.clone().expect("a confirm dialog");
    assert!(!c.ok_focused);
    assert!(c.message.contains("9 tasks"), "{}", c.message);
    // enter on the default button cancels
    assert!(feed(&mut s, [code(KeyCode::Enter)]).is_empty());
    assert!(s.confirm.is_none());
    // reset (seed and its 8 descendants: the count is typed), switch to OK, confirm
    types(&mut s, "R");
    assert_eq!(s.confirm.as_ref().unwrap().expect.as_deref(), Some("9"));
    types(&mut s, "9");
    let fx = feed(&mut s, [code(KeyCode::Tab), code(KeyCode::Enter)]);
    assert_eq!(
        fx,
        vec![Effect::Act(ActionRequest {
            verb: Verb::Reset,
            target: Target::Task {
                group_id: "g-demo".into(),
                id: "seed".into(),
                name: "list accounts".into()
            },
            seconds: None
        })]
    );
    assert_eq!(s.pending_on("task:seed"), Some(Verb::Reset));
}

#[test]
fn pause_and_retry_need_no_confirmation() {
    let mut s = with_demo(Theme::default(), false);
    let fx = types(&mut s, "p");
    assert!(matches!(&fx[..], [Effect::Act(r)] if r.verb == Verb::Pause));
    let fx = types(&mut s, "t");
    assert!(matches!(&fx[..], [Effect::Act(r)] if r.verb == Verb::Retry));
    assert!(s.confirm.is_none());
}

#[test]
fn group_actions_from_the_groups_view() {
    let mut s = loaded(Theme::default(), false);
    let fx = types(&mut s, "p");
    assert_eq!(
        fx,
        vec![Effect::Act(ActionRequest {
            verb: Verb::Pause,
            target: Target::Group {
                id: "g-demo".into(),
                name: "demo".into()
            },
            seconds: None
        })]
    );
    assert_eq!(s.pending_on("group:g-demo"), Some(Verb::Pause));
    // The stream confirms it: the PAUSING marker goes.
    let mut g = groups().task_groups[1].group.clone();
    g.is_paused = true;
    feed(&mut s, [ev(7, Event::GroupUpdated { task_group: g })]);
    assert_eq!(s.pending_on("group:g-demo"), None);
    assert!(s
        .groups
        .iter()
        .any(|g| g.group.id == "g-demo" && g.group.is_paused));
    types(&mut s, "d");
    assert!(s.confirm.as_ref().unwrap().message.contains("11 tasks"));
}

#[test]
fn read_only_refuses_every_action() {
    let mut s = with_demo(Theme::default(), true);
    for k in ["p", "r", "R", "t", "d"] {
        assert!(types(&mut s, k).is_empty(), "{k}");
        assert!(s.confirm.is_none());
    }
    let mut s = loaded(Theme::default(), true);
    types(&mut s, "2p");
    assert_eq!(s.input, Input::None);
}

/// An action that changes nothing (resuming a task that is not paused)
/// brings no event: its RESUMING marker goes shortly after the daemon's
/// answer rather than staying forever. One that changes something keeps
/// it until its event.
#[test]
fn an_answered_action_does_not_keep_its_marker_forever() {
    let mut s = with_demo(Theme::default(), false);
    let fx = types(&mut s, "r");
    let [Effect::Act(req)] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(s.pending_on("task:seed"), Some(Verb::Resume));
    feed(
        &mut s,
        [Msg::Reply(Reply::Action {
            req: req.clone(),
            result: Ok(ActionResult::default()),
        })],
    );
    feed(&mut s, [Msg::Tick(now().plus_seconds(1.0))]);
    assert_eq!(s.pending_on("task:seed"), Some(Verb::Resume));
    feed(&mut s, [Msg::Tick(now().plus_seconds(2.5))]);
    assert_eq!(s.pending_on("task:seed"), None);

    // Pressed again, the marker is back for the new action, and its event
    // clears it.
    types(&mut s, "p");
    assert_eq!(s.pending_on("task:seed"), Some(Verb::Pause));
    feed(&mut s, [Msg::Tick(now().plus_seconds(10.0))]);
    assert_eq!(s.pending_on("task:seed"), Some(Verb::Pause));
    let mut seed = demo_tasks().remove(0);
    seed.is_paused = true;
    feed(
        &mut s,
        [ev(
            40,
            Event::TaskUpdated {
                task: Box::new(seed),
            },
        )],
    );
    assert_eq!(s.pending_on("task:seed"), None);
}

#[test]
fn bulk_actions_apply_to_every_filtered_task() {
    let mut s = with_demo(Theme::default(), false);
    // Without a filter there is no bulk mode.
    types(&mut s, "a");
    assert!(s.status.as_ref().unwrap().error);
    types(&mut s, "/fetch");
    feed(&mut s, [code(KeyCode::Enter)]);
    types(&mut s, "a");
    assert!(s.group.as_ref().unwrap().bulk);
    // The daemon counts first (a dry run of the filter the console shows).
    let fx = types(&mut s, "t");
    let [Effect::CountBulk(req)] = &fx[..] else {
        panic!("{fx:?}")
    };
    let Target::Filter {
        group_id,
        filter,
        matched,
    } = &req.target
    else {
        panic!("{req:?}")
    };
    assert_eq!(group_id, "g-demo");
    assert_eq!(
        filter,
        &BulkFilter {
            search: Some("fetch".into()),
            ..Default::default()
        }
    );
    assert_eq!(*matched, 0);
    assert!(s.confirm.is_none(), "no dialog before the daemon's count");
    // The dialog shows the daemon's count, not the console's guess (5).
    dry_run(&mut s, fx, 4, 0, 3);
    let c = s.confirm.clone().expect("bulk asks first");
    assert!(
        c.message.contains("4 filtered tasks (3 changed)"),
        "{}",
        c.message
    );
    let fx = feed(&mut s, [code(KeyCode::Left), code(KeyCode::Enter)]);
    let [Effect::Act(req)] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert!(
        matches!(&req.target, Target::Filter { matched: 4, .. }),
        "{req:?}"
    );
    // One request; the status line reports the daemon's totals.
    feed(
        &mut s,
        [Msg::Reply(Reply::Action {
            req: req.clone(),
            result: Ok(ActionResult {
                deleted: 0,
                updated: 3,
            }),
        })],
    );
    let st = s.status.clone().expect("a status");
    assert!(!st.error);
    assert_eq!(st.text, "retry 4 filtered tasks: 3 updated, 0 deleted");
    // A refused dry run (a matched task running) opens nothing.
    let fx = types(&mut s, "d");
    let [Effect::CountBulk(req)] = &fx[..] else {
        panic!("{fx:?}")
    };
    feed(
        &mut s,
        [Msg::Reply(Reply::BulkCount {
            req: req.clone(),
            result: Err("409 task \"a2\" is running".into()),
        })],
    );
    assert!(s.confirm.is_none());
    let st = s.status.clone().expect("a status");
    assert!(st.error && st.text.contains("\"a2\" is running"), "{st:?}");
    // Nothing matched any more: nothing to confirm.
    let fx = types(&mut s, "p");
    assert!(dry_run(&mut s, fx, 0, 0, 0).is_empty());
    assert!(s.confirm.is_none());
    assert!(s.status.as_ref().unwrap().error);
}

/// Bulk mode ends with the last filter: it stayed on, hidden, and the
/// next filter made `d` a bulk delete nobody had asked for.
#[test]
fn bulk_mode_ends_when_no_filter_is_left() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "f");
    types(&mut s, "a");
    assert!(s.group.as_ref().unwrap().bulk);
    // Round the status filters back to "all".
    for _ in 0..TaskStatus::ALL.len() {
        types(&mut s, "f");
    }
    assert!(!s.group.as_ref().unwrap().dag.filter().active());
    assert!(!s.group.as_ref().unwrap().bulk);
    let said = &s.status.as_ref().unwrap().text;
    assert!(
        said.contains("actions apply to the selected task"),
        "{said}"
    );
    // A new filter does not bring it back.
    types(&mut s, "/fetch");
    feed(&mut s, [code(KeyCode::Enter)]);
    assert!(!s.group.as_ref().unwrap().bulk);
}

#[test]
fn bulk_refuses_a_lineage_filter() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "u");
    types(&mut s, "a");
    assert!(s.group.as_ref().unwrap().bulk);
    assert!(types(&mut s, "p").is_empty());
    assert!(s.confirm.is_none());
    assert!(s.status.as_ref().unwrap().error);
}

#[test]
fn status_filter_shows_failed_only() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "ffffff");
    let g = s.group.as_ref().unwrap();
    assert_eq!(g.dag.filter().status, Some(TaskStatus::Failed));
    let shown: Vec<_> = g
        .dag
        .rows()
        .iter()
        .filter(|r| !r.context)
        .map(|r| g.dag.task(r.node).unwrap().id.clone())
        .collect();
    assert_eq!(shown, ["a3"]);
    // esc clears the filter before it goes back
    types(&mut s, "");
    feed(&mut s, [code(KeyCode::Esc)]);
    assert_eq!(s.view, View::Dag);
    assert!(!s.group.as_ref().unwrap().dag.filter().active());
}

#[test]
fn events_during_the_snapshot_are_buffered_then_applied() {
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [code(KeyCode::Enter)]);
    let mut t = demo_tasks()[3].clone(); // a3 failed in the snapshot...
    t.status = Some(TaskStatus::Ready); // ...but retried since
    t.remaining_attempts = 5;
    let mut new = task("late", "late task", "w", TaskStatus::Ready, &["a3"]);
    new.task_group_id = "g-demo".into();
    feed(
        &mut s,
        [
            ev(10, Event::TaskUpdated { task: Box::new(t) }),
            ev(
                11,
                Event::TaskCreated {
                    task: Box::new(new),
                },
            ),
            ev(
                12,
                Event::TaskDeleted {
                    task: Box::new(demo_tasks()[10].clone()),
                },
            ),
        ],
    );
    assert_eq!(s.group.as_ref().unwrap().dag.len(), 0);
    feed(
        &mut s,
        [Msg::Reply(Reply::Group {
            id: "g-demo".into(),
            result: Ok((groups().task_groups[1].clone(), demo_tasks())),
        })],
    );
    let g = s.group.as_ref().unwrap();
    assert_eq!(g.dag.len(), 11);
    assert_eq!(g.dag.get("a3").unwrap().status, Some(TaskStatus::Ready));
    assert!(g.dag.get("late").is_some());
    assert!(g.dag.get("evil").is_none());
    assert_eq!(g.view.counts.failed, 0);
    assert_eq!(s.last_seq, 12);
}

#[test]
fn live_events_keep_the_selection_on_its_task() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "jj");
    assert_eq!(selected_id(&s), "merge");
    let mut root = task("new-root", "aaa first", "w", TaskStatus::Ready, &[]);
    root.task_group_id = "g-demo".into();
    feed(
        &mut s,
        [ev(
            20,
            Event::TaskCreated {
                task: Box::new(root),
            },
        )],
    );
    assert_eq!(selected_id(&s), "merge");
    feed(
        &mut s,
        [ev(
            21,
            Event::TaskDeleted {
                task: Box::new(demo_tasks()[5].clone()),
            },
        )],
    );
    assert!(!selected_id(&s).is_empty());
}

#[test]
fn resync_and_first_connection_refetch_snapshots() {
    let mut s = with_demo(Theme::default(), false);
    let fx = feed(
        &mut s,
        [ev(
            0,
            Event::Resync {
                reason: "too far behind".into(),
            },
        )],
    );
    assert!(fx.contains(&Effect::FetchGroups {
        search: String::new(),
        sort: GroupSort::Newest,
    }));
    assert!(fx.contains(&Effect::FetchGroup("g-demo".into())));
    assert!(s.group.as_ref().unwrap().loading);
    // A resync names the daemon's latest sequence, lower than what was
    // seen when it came back with another store.
    let task_group = s.group.as_ref().unwrap().view.group.clone();
    feed(&mut s, [ev(9000, Event::GroupUpdated { task_group })]);
    assert_eq!(s.last_seq, 9000);
    feed(
        &mut s,
        [ev(
            12,
            Event::Resync {
                reason: "another store".into(),
            },
        )],
    );
    assert_eq!(s.last_seq, 12);
    // A reconnect that resumed from `since` fetches what is shown again:
    // the events replay what changed, not a tree that failed to load
    // meanwhile, nor a store whose log runs past the console's.
    let fx = feed(
        &mut s,
        [
            Msg::Conn(ConnEvent::Disconnected {
                error: "reset".into(),
                attempt: 1,
                retry_in_ms: 500,
                refused: false,
            }),
            Msg::Conn(ConnEvent::Connected { resumed: true }),
        ],
    );
    assert!(fx.contains(&Effect::FetchGroup("g-demo".into())), "{fx:?}");
    assert!(fx.contains(&Effect::FetchGroups {
        search: String::new(),
        sort: GroupSort::Newest,
    }));
    assert_eq!(s.conn, ConnState::Connected);
}

#[test]
fn a_refused_token_is_said_once_and_shown_until_it_connects() {
    let mut s = with_demo(Theme::default(), false);
    let refused = |attempt| {
        Msg::Conn(ConnEvent::Disconnected {
            error: "HTTP error: 401 Unauthorized".into(),
            attempt,
            retry_in_ms: 10_000,
            refused: true,
        })
    };
    feed(&mut s, [refused(1)]);
    assert!(matches!(
        s.conn,
        ConnState::Reconnecting { refused: true, .. }
    ));
    let st = s.status.clone().expect("a status");
    assert!(st.error && st.text.contains("refused the token"), "{st:?}");
    assert!(st.text.contains("CREW_AUTH_TOKEN"), "{st:?}");
    // Said once: later refusals do not bring the message back.
    s.status = None;
    feed(&mut s, [refused(2)]);
    assert!(s.status.is_none());
    feed(&mut s, [Msg::Conn(ConnEvent::Connected { resumed: false })]);
    assert_eq!(s.conn, ConnState::Connected);
}

#[test]
fn group_deleted_elsewhere_closes_it() {
    let mut s = with_demo(Theme::default(), false);
    let g = groups().task_groups[1].group.clone();
    feed(&mut s, [ev(30, Event::GroupDeleted { task_group: g })]);
    assert_eq!(s.view, View::Groups);
    assert!(s.group.is_none());
    assert!(s.visible_groups().iter().all(|g| g.group.id != "g-demo"));
}

#[test]
fn errors_from_the_daemon_reach_the_status_line_and_the_log() {
    let mut s = with_demo(Theme::default(), false);
    let fx = types(&mut s, "p");
    let [Effect::Act(req)] = &fx[..] else {
        panic!()
    };
    feed(
        &mut s,
        [Msg::Reply(Reply::Action {
            req: req.clone(),
            result: Err("409 task is running".into()),
        })],
    );
    let st = s.status.clone().unwrap();
    assert!(st.error && st.text.contains("409 task is running"));
    assert!(s.events[0].mine && s.events[0].error);
    assert_eq!(s.pending_on("task:seed"), None);
    feed(
        &mut s,
        [Msg::Reply(Reply::Groups {
            search: String::new(),
            sort: GroupSort::Newest,
            result: Err("cannot connect".into()),
        })],
    );
    assert!(s.status.as_ref().unwrap().text.contains("cannot connect"));
}

#[test]
fn a_workgroup_without_tasks_can_be_named_and_paused_ahead() {
    let mut s = loaded(Theme::default(), false);
    types(&mut s, ":workgroup ads-api");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(fx, vec![Effect::FetchWorkgroups]);
    assert_eq!(s.view, View::Workgroups);
    let names = |s: &crew_tui::AppState| -> Vec<String> {
        s.visible_workgroups()
            .iter()
            .map(|w| w.workgroup.name.clone())
            .collect()
    };
    assert_eq!(names(&s), ["ads-api", "crm", "fb-api", "stripe"]);
    assert_eq!(s.selected_workgroup().unwrap().workgroup.name, "ads-api");
    assert!(s.status.as_ref().unwrap().text.contains("no tasks yet"));
    // The daemon's list, which does not have it, does not drop it.
    feed(&mut s, [Msg::Reply(Reply::Workgroups(Ok(workgroups())))]);
    assert_eq!(names(&s).len(), 4);
    types(&mut s, "p60");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(
        fx,
        vec![Effect::Act(ActionRequest {
            verb: Verb::Pause,
            target: Target::Workgroup {
                name: "ads-api".into()
            },
            seconds: Some(60.0)
        })]
    );
    // Once the daemon lists it (paused), it is shown once.
    let mut list = workgroups();
    let mut paused = crew_core::Workgroup::new("ads-api");
    paused.paused_until = Some(now().plus_seconds(60.0));
    list.workgroups.push(crew_core::wire::WorkgroupView {
        workgroup: paused,
        incomplete_tasks: 0,
        in_flight: 0,
    });
    feed(&mut s, [Msg::Reply(Reply::Workgroups(Ok(list)))]);
    assert_eq!(names(&s), ["ads-api", "crm", "fb-api", "stripe"]);
    assert!(s.visible_workgroups()[0].workgroup.paused_until.is_some());
    // A listed one is only selected.
    types(&mut s, ":wg stripe");
    feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(s.selected_workgroup().unwrap().workgroup.name, "stripe");
    assert_eq!(names(&s).len(), 4);
}

#[test]
fn workgroup_pause_asks_for_seconds() {
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "2");
    assert_eq!(s.view, View::Workgroups);
    types(&mut s, "p");
    assert!(matches!(s.input, Input::Seconds { .. }));
    // What is typed is the answer: nothing is prefilled to append to.
    types(&mut s, "30");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(
        fx,
        vec![Effect::Act(ActionRequest {
            verb: Verb::Pause,
            target: Target::Workgroup { name: "crm".into() },
            seconds: Some(30.0)
        })]
    );
    let fx = types(&mut s, "r");
    assert!(matches!(&fx[..], [Effect::Act(r)] if r.verb == Verb::Resume));
    // An empty answer takes the default.
    types(&mut s, "p");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert!(
        matches!(&fx[..], [Effect::Act(r)] if r.seconds == Some(300.0)),
        "{fx:?}"
    );
    // Under a second, it says what was asked (rounded up, it read "1s").
    let short = ActionRequest {
        verb: Verb::Pause,
        target: Target::Workgroup { name: "crm".into() },
        seconds: Some(0.0001),
    };
    assert_eq!(short.describe(), "pause workgroup crm for 0.0001s");
    let long = ActionRequest {
        seconds: Some(90.0),
        ..short
    };
    assert_eq!(long.describe(), "pause workgroup crm for 1m30s");
}

/// With a filter or "mine only" on, entries the log hides do not move the
/// selection: the same entry stays selected (each new entry moved it down
/// a row, shown or not).
#[test]
fn the_event_log_keeps_its_selection_when_hidden_entries_arrive() {
    let mut s = loaded(Theme::default(), false);
    let demo = groups().task_groups[1].group.clone();
    let fb = workgroups().workgroups[0].workgroup.clone();
    for seq in 1..=3 {
        feed(
            &mut s,
            [ev(
                seq,
                Event::GroupUpdated {
                    task_group: demo.clone(),
                },
            )],
        );
    }
    types(&mut s, ":events");
    feed(&mut s, [code(KeyCode::Enter)]);
    types(&mut s, "/group");
    feed(&mut s, [code(KeyCode::Enter)]);
    types(&mut s, "j");
    let selected = |s: &crew_tui::AppState| s.visible_events()[s.events_list.selected].seq;
    assert_eq!(selected(&s), 2);
    // Hidden by the filter: the selection stays on entry 2.
    for seq in 4..=6 {
        feed(
            &mut s,
            [ev(
                seq,
                Event::WorkgroupUpdated {
                    workgroup: fb.clone(),
                },
            )],
        );
    }
    assert_eq!(selected(&s), 2);
    // Shown: it still stays on entry 2, a row lower.
    feed(
        &mut s,
        [ev(
            7,
            Event::GroupUpdated {
                task_group: demo.clone(),
            },
        )],
    );
    assert_eq!(selected(&s), 2);
    // Mine only: the daemon's entries do not move it.
    types(&mut s, "/");
    feed(&mut s, [code(KeyCode::Esc)]);
    assert!(s.events_filter.is_empty(), "{:?}", s.events_filter);
    let r = ActionRequest::on_task(Verb::Pause, &demo_tasks()[0]);
    for e in ["first", "second"] {
        feed(
            &mut s,
            [Msg::Reply(Reply::Action {
                req: r.clone(),
                result: Err(e.into()),
            })],
        );
    }
    types(&mut s, "m");
    assert!(s.events_mine_only);
    assert_eq!(s.visible_events().len(), 2);
    types(&mut s, "gj");
    let before = s.visible_events()[s.events_list.selected].clone();
    assert!(before.detail.contains("first"), "{before:?}");
    feed(
        &mut s,
        [ev(
            8,
            Event::WorkgroupUpdated {
                workgroup: fb.clone(),
            },
        )],
    );
    assert_eq!(s.visible_events()[s.events_list.selected], &before);
}

/// After a resync, the open group's refetch finds it gone (404): the
/// console leaves it as for a deletion event, rather than keeping the
/// old tree on screen as live data.
#[test]
fn an_open_group_gone_after_a_resync_is_left() {
    let mut s = with_demo(Theme::default(), false);
    let fx = feed(
        &mut s,
        [ev(
            90,
            Event::Resync {
                reason: "the event log was trimmed".into(),
            },
        )],
    );
    assert!(fx.contains(&Effect::FetchGroup("g-demo".into())), "{fx:?}");
    feed(
        &mut s,
        [Msg::Reply(Reply::GroupGone {
            id: "g-demo".into(),
        })],
    );
    assert_eq!(s.view, View::Groups);
    assert!(s.group.is_none());
    assert!(s.visible_groups().iter().all(|g| g.group.id != "g-demo"));
    let st = s.status.clone().unwrap_or_else(|| panic!("no status"));
    assert!(st.text.contains("group demo is gone"), "{st:?}");
}

/// A refetch that fails keeps the old tree, marked as not current, and
/// opening the group again fetches it (the cached tree was reused).
#[test]
fn a_group_whose_refetch_failed_is_fetched_again_when_opened() {
    let mut s = with_demo(Theme::default(), false);
    let fx = feed(&mut s, [Msg::Conn(ConnEvent::Connected { resumed: false })]);
    assert!(fx.contains(&Effect::FetchGroup("g-demo".into())), "{fx:?}");
    feed(
        &mut s,
        [Msg::Reply(Reply::Group {
            id: "g-demo".into(),
            result: Err("cannot connect to the daemon".into()),
        })],
    );
    let g = s.group.as_ref().unwrap_or_else(|| panic!("no group"));
    assert!(g.stale && !g.loading);
    let screen = render(&s, 80, 24);
    assert!(screen.contains("not current"), "{screen}");
    feed(&mut s, [code(KeyCode::Esc)]);
    assert_eq!(s.view, View::Groups);
    types(&mut s, ":group demo");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(fx, vec![Effect::FetchGroup("g-demo".into())]);
    assert!(s.group.as_ref().is_some_and(|g| g.loading));
}

#[test]
fn command_mode_opens_views_and_groups() {
    let mut s = loaded(Theme::default(), false);
    types(&mut s, ":events");
    feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(s.view, View::Events);
    types(&mut s, ":nope");
    feed(&mut s, [code(KeyCode::Enter)]);
    assert!(s.status.as_ref().unwrap().error);
    types(&mut s, ":group nightly");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(fx, vec![Effect::FetchGroup("g-nightly".into())]);
}

#[test]
fn a_group_named_before_the_list_arrives_opens_when_it_does() {
    let mut s = crew_tui::AppState::new(
        "x",
        crew_tui::app::keymap::KeyMap::default(),
        Theme::default(),
        now(),
    );
    s.open_group_when_known("demo");
    let fx = feed(
        &mut s,
        [Msg::Reply(Reply::Groups {
            search: String::new(),
            sort: GroupSort::Newest,
            result: Ok(groups()),
        })],
    );
    assert_eq!(fx, vec![Effect::FetchGroup("g-demo".into())]);
    assert_eq!(s.view, View::Dag);
}

#[test]
fn help_toggles_and_any_key_closes_it() {
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "?");
    assert!(s.help);
    assert!(types(&mut s, "q").is_empty());
    assert!(!s.help && !s.quit);
}

#[test]
fn filter_typing_is_live_and_esc_clears() {
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "/back");
    assert_eq!(s.visible_groups().len(), 1);
    feed(&mut s, [code(KeyCode::Esc)]);
    assert_eq!(s.visible_groups().len(), 3);
    assert_eq!(s.input, Input::None);
}

fn tick(secs: f64) -> Msg {
    Msg::Tick(now().plus_seconds(secs))
}

fn status_of(s: &crew_tui::AppState, id: &str) -> Option<TaskStatus> {
    s.group.as_ref()?.dag.get(id)?.status
}

#[test]
fn delayed_by_run_after_shows_ready_once_it_passes() {
    let mut s = with_demo(Theme::default(), false);
    // a4: delayed, runAfter in 252 s, no workgroup.
    assert_eq!(status_of(&s, "a4"), Some(TaskStatus::Delayed));
    feed(&mut s, [tick(251.0)]);
    assert_eq!(status_of(&s, "a4"), Some(TaskStatus::Delayed));
    feed(&mut s, [tick(253.0)]);
    assert_eq!(status_of(&s, "a4"), Some(TaskStatus::Ready));
    let counts = s.group.as_ref().unwrap().view.counts;
    assert_eq!((counts.delayed, counts.ready), (0, 3));
    // The view draws what the state says; it has no clock of its own.
    let screen = render(&s, 160, 48);
    assert!(!screen.contains("in 4m"), "{screen}");
}

#[test]
fn a_delay_held_by_the_workgroup_or_a_paused_group_stays() {
    let mut s = with_demo(Theme::default(), false);
    let delayed = |id: &str, workgroup: &str, run_after: f64| {
        let mut t = task(id, id, "w", TaskStatus::Delayed, &["seed"]);
        t.workgroup = workgroup.into();
        t.run_after = now().plus_seconds(run_after);
        Box::new(t)
    };
    feed(
        &mut s,
        [
            // fb-api is rate limited for 252 s: past runAfter it still waits.
            ev(
                50,
                Event::TaskCreated {
                    task: delayed("wg-held", "fb-api", 10.0),
                },
            ),
            // crm is paused by an operator for an hour.
            ev(
                51,
                Event::TaskCreated {
                    task: delayed("op-held", "crm", 10.0),
                },
            ),
            // Delayed with runAfter long gone: something else holds it.
            ev(
                52,
                Event::TaskCreated {
                    task: delayed("stale", "", -30.0),
                },
            ),
            // stripe is not paused: runAfter was the only hold.
            ev(
                53,
                Event::TaskCreated {
                    task: delayed("free", "stripe", 10.0),
                },
            ),
        ],
    );
    feed(&mut s, [tick(20.0)]);
    assert_eq!(status_of(&s, "wg-held"), Some(TaskStatus::Delayed));
    assert_eq!(status_of(&s, "op-held"), Some(TaskStatus::Delayed));
    assert_eq!(status_of(&s, "stale"), Some(TaskStatus::Delayed));
    assert_eq!(status_of(&s, "free"), Some(TaskStatus::Ready));
    // A group paused since (no task event says so) keeps its tasks delayed.
    let mut g = groups().task_groups[1].group.clone();
    g.is_paused = true;
    feed(&mut s, [ev(54, Event::GroupUpdated { task_group: g })]);
    feed(&mut s, [tick(300.0)]);
    assert_eq!(status_of(&s, "a4"), Some(TaskStatus::Delayed));
}

#[test]
fn the_confirm_dialog_answers_y_n_and_moves_left_and_right() {
    let mut s = with_demo(Theme::default(), false);
    // A task without descendants: nothing to type, so y and n are answers.
    while selected_id(&s) != "cleanup" {
        types(&mut s, "j");
    }
    // No is on the left, Yes on the right: l moves to Yes, h back to No.
    types(&mut s, "R");
    types(&mut s, "l");
    assert!(s.confirm.as_ref().unwrap().ok_focused);
    types(&mut s, "h");
    assert!(!s.confirm.as_ref().unwrap().ok_focused);
    // n says no; y says yes at once.
    assert!(types(&mut s, "n").is_empty());
    assert!(s.confirm.is_none());
    types(&mut s, "R");
    let fx = types(&mut s, "y");
    assert!(
        matches!(&fx[..], [Effect::Act(r)] if r.verb == Verb::Reset),
        "{fx:?}"
    );
    assert!(s.confirm.is_none());
}

#[test]
fn bulk_delete_needs_the_count_typed() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "/fetch");
    feed(&mut s, [code(KeyCode::Enter)]);
    types(&mut s, "a");
    let fx = types(&mut s, "d");
    assert!(dry_run(&mut s, fx, 5, 9, 0).is_empty());
    let c = s.confirm.clone().expect("a confirm dialog");
    assert!(!c.ok_focused, "opens on No");
    assert_eq!(c.expect.as_deref(), Some("9"), "{}", c.message);
    assert!(c.message.contains("9 tasks in all"), "{}", c.message);
    // OK without the count is refused and the dialog stays.
    assert!(feed(&mut s, [code(KeyCode::Tab), code(KeyCode::Enter)]).is_empty());
    assert!(s.confirm.is_some());
    assert!(s.status.as_ref().unwrap().error);
    // Keys that are shortcuts elsewhere (y included) are text here.
    assert!(types(&mut s, "qnhly").is_empty());
    let c = s.confirm.clone().expect("still open");
    assert_eq!(c.typed, "qnhly");
    assert!(c.ok_focused && !c.accepted());
    assert!(feed(&mut s, [code(KeyCode::Enter)]).is_empty());
    for _ in 0..5 {
        feed(&mut s, [code(KeyCode::Backspace)]);
    }
    types(&mut s, "9");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    assert!(
        matches!(&fx[..], [Effect::Act(r)] if r.verb == Verb::Delete
            && matches!(&r.target, Target::Filter { matched: 5, .. })),
        "{fx:?}"
    );
    assert!(s.confirm.is_none());
}

#[test]
fn bulk_reset_accepts_yes_and_cancel_stays_first() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "/fetch");
    feed(&mut s, [code(KeyCode::Enter)]);
    let fx = types(&mut s, "aR");
    dry_run(&mut s, fx, 5, 0, 5);
    assert_eq!(s.confirm.as_ref().unwrap().expect.as_deref(), Some("5"));
    // Typed, but Cancel still has the focus: enter cancels.
    types(&mut s, "yes");
    assert!(feed(&mut s, [code(KeyCode::Enter)]).is_empty());
    assert!(s.confirm.is_none());
    let fx = types(&mut s, "R");
    dry_run(&mut s, fx, 5, 0, 5);
    types(&mut s, "YES");
    let fx = feed(&mut s, [code(KeyCode::Right), code(KeyCode::Enter)]);
    assert!(
        matches!(&fx[..], [Effect::Act(r)] if r.verb == Verb::Reset),
        "{fx:?}"
    );
    // Esc still cancels a typed confirmation.
    let fx = types(&mut s, "R");
    dry_run(&mut s, fx, 5, 0, 5);
    feed(&mut s, [code(KeyCode::Esc)]);
    assert!(s.confirm.is_none());
}

#[test]
fn single_task_and_group_confirmations() {
    let mut s = with_demo(Theme::default(), false);
    // A task with descendants is many tasks: its count is typed.
    types(&mut s, "d");
    let c = s.confirm.clone().unwrap();
    assert_eq!(c.expect.as_deref(), Some("9"), "{}", c.message);
    feed(&mut s, [code(KeyCode::Esc)]);
    types(&mut s, "R");
    let c = s.confirm.clone().unwrap();
    assert_eq!(c.expect.as_deref(), Some("9"), "{}", c.message);
    assert!(c.message.contains("9 tasks in all"), "{}", c.message);
    feed(&mut s, [code(KeyCode::Esc)]);
    while selected_id(&s) != "cleanup" {
        types(&mut s, "j");
    }
    types(&mut s, "d");
    assert_eq!(
        s.confirm.as_ref().unwrap().expect,
        None,
        "one task alone: no typing"
    );
    feed(&mut s, [code(KeyCode::Esc)]);
    // A whole group's delete is irreversible and in bulk.
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "d");
    assert_eq!(s.confirm.as_ref().unwrap().expect.as_deref(), Some("11"));
}

#[test]
fn cancel_asks_first_and_only_for_a_running_task() {
    let mut s = with_demo(Theme::default(), false);
    // The selected task (seed) is complete: refused, with the reason.
    assert_eq!(selected_id(&s), "seed");
    assert!(types(&mut s, "c").is_empty());
    assert!(s.confirm.is_none());
    let st = s.status.clone().unwrap();
    assert!(st.error && st.text.contains("completed"), "{}", st.text);
    for _ in 0..20 {
        if selected_id(&s) == "a2" {
            break;
        }
        types(&mut s, "j");
    }
    assert_eq!(selected_id(&s), "a2", "the running task is in the tree");
    assert!(types(&mut s, "c").is_empty());
    let c = s.confirm.clone().expect("a confirm dialog");
    assert!(!c.ok_focused);
    assert!(
        c.message.contains("Cancel the running call"),
        "{}",
        c.message
    );
    let fx = feed(&mut s, [code(KeyCode::Tab), code(KeyCode::Enter)]);
    assert_eq!(
        fx,
        vec![Effect::Act(ActionRequest {
            verb: Verb::Cancel,
            target: Target::Task {
                group_id: "g-demo".into(),
                id: "a2".into(),
                name: "fetch a2".into()
            },
            seconds: None
        })]
    );
    assert_eq!(s.pending_on("task:a2"), Some(Verb::Cancel));
}

#[test]
fn audit_entries_reach_the_event_log_live_and_from_history() {
    use crew_core::wire::{AuditEntry, AuditList};
    let entry = |seq: u64, action: &str, affected: u64, detail: Option<&str>| AuditEntry {
        seq,
        at: now(),
        actor: "ops".into(),
        action: action.into(),
        target: format!("group/g{seq}"),
        affected,
        detail: detail.map(str::to_string),
    };
    let mut s = crew_tui::AppState::new(
        "http://127.0.0.1:8090",
        crew_tui::app::keymap::KeyMap::defaults(false),
        Theme::default(),
        now(),
    );
    assert!(s.start().contains(&Effect::FetchAudit));
    // One action arrives live before the history answers.
    feed(
        &mut s,
        [ev(
            40,
            Event::AuditRecorded {
                entry: entry(7, "group.reset", 3, Some("remainingAttempts 2")),
            },
        )],
    );
    // The history repeats it: only the older entries are added, after it.
    feed(
        &mut s,
        [Msg::Reply(Reply::Audit(Ok(AuditList {
            entries: vec![
                entry(7, "group.reset", 3, Some("remainingAttempts 2")),
                entry(6, "group.pause", 1, None),
            ],
            next_before: None,
        })))],
    );
    let audit: Vec<(u64, &str, &str)> = s
        .events
        .iter()
        .filter(|e| e.kind == "audit")
        .map(|e| (e.seq, e.subject.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        audit,
        vec![
            (
                40,
                "group/g7",
                "group.reset by ops, 3 tasks, remainingAttempts 2"
            ),
            (0, "group/g6", "group.pause by ops, 1 task"),
        ]
    );
}

#[test]
fn a_group_schedule_is_edited_from_a_prompt() {
    let mut s = with_demo(Theme::default(), false);
    let backspaces = |n: usize| std::iter::repeat_n(code(KeyCode::Backspace), n);
    // The prompt starts with the current schedule, to edit.
    assert!(types(&mut s, "S").is_empty());
    assert_eq!(
        s.input,
        Input::Schedule {
            group_id: "g-demo".into(),
            name: "demo".into(),
            text: "0 2 * * *".into()
        }
    );
    // A typo is answered in the console; nothing is sent.
    types(&mut s, "x");
    assert!(feed(&mut s, [code(KeyCode::Enter)]).is_empty());
    let st = s.status.clone().unwrap();
    assert!(
        st.error && st.text.contains("schedule not set"),
        "{}",
        st.text
    );
    // A new expression is sent whole.
    types(&mut s, "S");
    feed(&mut s, backspaces(9));
    types(&mut s, "*/5 * * * *");
    let fx = feed(&mut s, [code(KeyCode::Enter)]);
    let schedule = |cron: &str| {
        vec![Effect::Act(ActionRequest {
            verb: Verb::Schedule,
            target: Target::GroupSchedule {
                id: "g-demo".into(),
                name: "demo".into(),
                schedule: cron.into(),
            },
            seconds: None,
        })]
    };
    assert_eq!(fx, schedule("*/5 * * * *"));
    // Emptied, it removes the schedule.
    types(&mut s, "S");
    feed(&mut s, backspaces(9));
    assert_eq!(feed(&mut s, [code(KeyCode::Enter)]), schedule(""));
    // Read-only consoles do not offer it.
    let mut ro = with_demo(Theme::default(), true);
    types(&mut ro, "S");
    assert_eq!(ro.input, Input::None);
}

/// Types `:group NAME` and Enter; returns the effects.
fn open_by_name(s: &mut crew_tui::AppState, name: &str) -> Vec<Effect> {
    types(s, &format!(":group {name}"));
    feed(s, [code(KeyCode::Enter)])
}

/// The request for the first page of groups matching `search`, newest
/// first.
fn search_for(search: &str) -> Vec<Effect> {
    sorted_search_for(search, GroupSort::Newest)
}

/// The request for the first page of groups matching `search` in `sort`'s
/// order.
fn sorted_search_for(search: &str, sort: GroupSort) -> Vec<Effect> {
    vec![Effect::FetchGroups {
        search: search.into(),
        sort,
    }]
}

#[test]
fn a_group_beyond_the_first_page_is_asked_for_and_opened() {
    let mut s = loaded(Theme::default(), false);
    // The daemon has 1,200 groups; the console holds the newest page.
    feed(&mut s, [page_of("", groups().task_groups, 1200)]);
    assert_eq!(s.groups_total, 1200);
    assert_eq!(open_by_name(&mut s, "archive-7"), search_for("archive-7"));
    let archive = group(
        "g-archive-7",
        "archive-7",
        false,
        90.0 * 86400.0,
        Default::default(),
    );
    let fx = feed(&mut s, [page_of("archive-7", vec![archive], 1)]);
    assert_eq!(fx, vec![Effect::FetchGroup("g-archive-7".into())]);
    assert_eq!(s.view, View::Dag);
    // The groups view goes back to its own page at the next tick.
    assert_eq!(feed(&mut s, [tick(0.5)]), search_for(""));
}

#[test]
fn a_partial_name_is_matched_only_once_every_candidate_is_known() {
    let mut s = loaded(Theme::default(), false);
    // "demo" is on the page, but the daemon has more groups: one of
    // those may be named exactly "dem".
    feed(&mut s, [page_of("", groups().task_groups, 1200)]);
    assert_eq!(open_by_name(&mut s, "dem"), search_for("dem"));
    let dem = group("g-dem", "dem", false, 60.0, Default::default());
    let page = vec![groups().task_groups[0].clone(), dem];
    let fx = feed(&mut s, [page_of("dem", page, 2)]);
    assert_eq!(fx, vec![Effect::FetchGroup("g-dem".into())]);
}

#[test]
fn a_group_the_daemon_does_not_have_is_refused_after_asking_once() {
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [page_of("", groups().task_groups, 1200)]);
    assert_eq!(open_by_name(&mut s, "nope"), search_for("nope"));
    let fx = feed(&mut s, [page_of("nope", vec![], 0)]);
    assert!(fx.is_empty(), "{fx:?}");
    let st = s.status.clone().expect("a status");
    assert!(
        st.error && st.text.contains("no group named nope"),
        "{st:?}"
    );
    // With every group loaded, the console answers by itself.
    feed(&mut s, [page_of("", groups().task_groups, 3)]);
    let fx = open_by_name(&mut s, "nope");
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn the_filter_asks_the_daemon_only_beyond_the_first_page() {
    // Every group loaded: filtering them is enough.
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "/nightly");
    let fx = feed(&mut s, [tick(0.5)]);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(s.visible_groups().len(), 1);

    // More than a page: the daemon searches, at the next tick.
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [page_of("", groups().task_groups, 1200)]);
    types(&mut s, "/nightly");
    assert_eq!(feed(&mut s, [tick(0.5)]), search_for("nightly"));
    // Its answer is the page for that search: no more asking while it
    // stands, even when the daemon has more than a page of matches.
    feed(&mut s, [page_of("nightly", groups().task_groups, 900)]);
    let fx = feed(&mut s, [tick(1.0)]);
    assert!(fx.is_empty(), "{fx:?}");
}

/// A filter typed with a trailing space: the daemon searches it trimmed,
/// and so does the list (it showed none of the daemon's 900 matches).
#[test]
fn a_filter_with_a_trailing_space_shows_what_the_daemon_found() {
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [page_of("", groups().task_groups, 1200)]);
    types(&mut s, "/nightly ");
    assert_eq!(feed(&mut s, [tick(0.5)]), search_for("nightly"));
    feed(&mut s, [page_of("nightly", groups().task_groups, 900)]);
    let shown: Vec<&str> = s
        .visible_groups()
        .iter()
        .map(|g| g.group.name.as_str())
        .collect();
    assert!(shown.iter().any(|n| n.contains("nightly")), "{shown:?}");
}

/// `s` to "failed" on a page of 1,200 groups: the request at the tick
/// `at` seconds in, and the daemon's answer.
fn sort_by_failures_beyond_the_page(s: &mut crew_tui::AppState, at: f64) {
    types(s, "sss");
    assert_eq!(s.groups_sort, GroupSort::Failed);
    assert_eq!(
        feed(s, [tick(at)]),
        sorted_search_for("", GroupSort::Failed)
    );
    feed(
        s,
        [sorted_page_of(
            "",
            GroupSort::Failed,
            groups().task_groups,
            1200,
        )],
    );
}

#[test]
fn sorting_beyond_the_first_page_asks_the_daemon_for_that_order() {
    // Every group loaded: sorting them is enough.
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "s");
    let fx = feed(&mut s, [tick(0.5)]);
    assert!(fx.is_empty(), "{fx:?}");

    // More than a page: the first page of the new order, searched as the
    // filter says, at the next tick.
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [page_of("", groups().task_groups, 1200)]);
    sort_by_failures_beyond_the_page(&mut s, 0.5);
    let fx = feed(&mut s, [tick(1.0)]);
    assert!(fx.is_empty(), "{fx:?}");
    // A filter typed then is searched in that order too.
    types(&mut s, "/nightly");
    assert_eq!(
        feed(&mut s, [tick(1.5)]),
        sorted_search_for("nightly", GroupSort::Failed)
    );
}

#[test]
fn a_page_searched_over_many_groups_is_refreshed_less_often() {
    let mut s = loaded(Theme::default(), false);
    let changed = |seq| {
        ev(
            seq,
            Event::TaskUpdated {
                task: Box::new(demo_tasks()[1].clone()),
            },
        )
    };
    // The newest page of 1,200 groups: events refetch it every 2 s.
    feed(
        &mut s,
        [page_of("", groups().task_groups, 1200), changed(1)],
    );
    assert_eq!(feed(&mut s, [tick(2.5)]), search_for(""));
    feed(&mut s, [page_of("", groups().task_groups, 1200)]);

    // Ranked by failures, the daemon reads its index up to the page: still
    // every 2 s.
    sort_by_failures_beyond_the_page(&mut s, 3.0);
    feed(&mut s, [changed(2)]);
    assert_eq!(
        feed(&mut s, [tick(5.5)]),
        sorted_search_for("", GroupSort::Failed)
    );
    feed(
        &mut s,
        [sorted_page_of(
            "",
            GroupSort::Failed,
            groups().task_groups,
            1200,
        )],
    );

    // Searched, the daemon passes over every group: every 10 s.
    types(&mut s, "/nightly");
    assert_eq!(
        feed(&mut s, [tick(6.0)]),
        sorted_search_for("nightly", GroupSort::Failed)
    );
    feed(
        &mut s,
        [sorted_page_of(
            "nightly",
            GroupSort::Failed,
            groups().task_groups,
            900,
        )],
    );
    feed(&mut s, [changed(3)]);
    let fx = feed(&mut s, [tick(9.0)]);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(
        feed(&mut s, [tick(16.5)]),
        sorted_search_for("nightly", GroupSort::Failed)
    );
}

/// Counts read as words: "1 task", not "1 tasks".
#[test]
fn one_task_is_a_task() {
    use crew_tui::app::action::tasks;
    assert_eq!(
        (tasks(0), tasks(1), tasks(2)),
        ("0 tasks".into(), "1 task".into(), "2 tasks".into())
    );
}

/// A bulk action on one filtered task says "1 filtered task", in its
/// dialog and on the status line once done ("1 filtered tasks").
#[test]
fn a_bulk_action_on_one_task_says_one_task() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "/fetch");
    feed(&mut s, [code(KeyCode::Enter)]);
    types(&mut s, "a");
    let fx = types(&mut s, "t");
    dry_run(&mut s, fx, 1, 0, 1);
    let c = s.confirm.clone().expect("bulk asks first");
    assert!(c.message.contains("the 1 filtered task "), "{}", c.message);
    let fx = feed(&mut s, [code(KeyCode::Left), code(KeyCode::Enter)]);
    let [Effect::Act(req)] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(
        s.status.as_ref().map(|st| st.text.as_str()),
        Some("retry 1 filtered task…")
    );
    feed(
        &mut s,
        [Msg::Reply(Reply::Action {
            req: req.clone(),
            result: Ok(ActionResult {
                deleted: 0,
                updated: 1,
            }),
        })],
    );
    assert_eq!(
        s.status.as_ref().map(|st| st.text.as_str()),
        Some("retry 1 filtered task: 1 updated, 0 deleted")
    );
}

/// The id of the group an action in the groups view would hit.
fn selected_group_id(s: &crew_tui::AppState) -> String {
    s.selected_group()
        .map(|g| g.group.id.clone())
        .unwrap_or_default()
}

/// The groups list selects a group, not a row: groups that arrive with a
/// refreshed page, from the stream or in another order move the rows, and
/// `p` still pauses the group the operator selected (it paused the group
/// that took its row). A selected group that is gone leaves the selection
/// on its row.
#[test]
fn the_groups_selection_stays_on_its_group_as_rows_move() {
    let mut s = loaded(Theme::default(), false);
    // Newest first: demo, nightly-sync, backfill-2023.
    types(&mut s, "jj");
    assert_eq!(selected_group_id(&s), "g-backfill");
    let mut page = groups().task_groups;
    page.push(group("g-new1", "new1", false, 10.0, Default::default()));
    page.push(group("g-new2", "new2", false, 20.0, Default::default()));
    feed(&mut s, [page_of("", page, 5)]);
    assert_eq!(selected_group_id(&s), "g-backfill");
    let fx = types(&mut s, "p");
    assert!(
        matches!(&fx[..], [Effect::Act(ActionRequest { target: Target::Group { id, .. }, .. })] if id == "g-backfill"),
        "{fx:?}"
    );
    // A group created on the stream.
    let newest = group("g-new3", "new3", false, 1.0, Default::default()).group;
    feed(&mut s, [ev(8, Event::GroupCreated { task_group: newest })]);
    assert_eq!(selected_group_id(&s), "g-backfill");
    // Another order.
    types(&mut s, "s");
    assert_eq!(s.groups_sort, GroupSort::Name);
    assert_eq!(selected_group_id(&s), "g-backfill");
    // Live counts move rows under "failed".
    types(&mut s, "ss");
    assert_eq!(s.groups_sort, GroupSort::Failed);
    let mut page = groups().task_groups;
    page[0].counts.failed = 9;
    feed(&mut s, [page_of("", page, 3)]);
    assert_eq!(selected_group_id(&s), "g-backfill");
    // Gone: the row stays, clamped.
    let row = s.groups_list.selected;
    let gone = groups().task_groups[2].group.clone();
    feed(&mut s, [ev(9, Event::GroupDeleted { task_group: gone })]);
    assert_eq!(s.groups_list.selected, row.min(1));
    assert_ne!(selected_group_id(&s), "g-backfill");
}

/// The workgroups list selects a workgroup, not a row: a workgroup created
/// meanwhile (in the daemon's list, or on the stream) does not move the
/// selection onto another one.
#[test]
fn the_workgroups_selection_stays_on_its_workgroup_as_rows_move() {
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "2jj");
    let selected = |s: &crew_tui::AppState| {
        s.selected_workgroup()
            .map(|w| w.workgroup.name.clone())
            .unwrap_or_default()
    };
    // By name: crm, fb-api, stripe.
    assert_eq!(selected(&s), "stripe");
    let mut list = workgroups();
    list.workgroups.push(crew_core::wire::WorkgroupView {
        workgroup: crew_core::Workgroup::new("ads-api"),
        incomplete_tasks: 1,
        in_flight: 0,
    });
    feed(&mut s, [Msg::Reply(Reply::Workgroups(Ok(list)))]);
    assert_eq!(selected(&s), "stripe");
    let created = crew_core::Workgroup::new("billing");
    feed(
        &mut s,
        [ev(3, Event::WorkgroupUpdated { workgroup: created })],
    );
    assert_eq!(selected(&s), "stripe");
    let fx = types(&mut s, "r");
    assert!(
        matches!(&fx[..], [Effect::Act(ActionRequest { target: Target::Workgroup { name }, .. })] if name == "stripe"),
        "{fx:?}"
    );
}

/// `n` workgroup events from sequence `from` on.
fn workgroup_events(from: u64, n: u64) -> Vec<Msg> {
    let fb = workgroups().workgroups[0].workgroup.clone();
    (from..from + n)
        .map(|seq| {
            ev(
                seq,
                Event::WorkgroupUpdated {
                    workgroup: fb.clone(),
                },
            )
        })
        .collect()
}

/// A full event log drops its oldest entries; the selection stays on its
/// entry, and on the last one when its own was dropped (it pointed past
/// the end, and the log showed "no events yet").
#[test]
fn a_full_event_log_keeps_its_selection_in_range() {
    let limit = crew_tui::app::state::EVENT_LOG_LIMIT as u64;
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, workgroup_events(1, limit));
    types(&mut s, "3G");
    let selected = |s: &crew_tui::AppState| {
        s.visible_events()
            .get(s.events_list.selected)
            .map(|e| e.seq)
    };
    assert_eq!(selected(&s), Some(1));
    feed(&mut s, workgroup_events(limit + 1, 5));
    assert_eq!(s.events.len(), limit as usize);
    assert_eq!(selected(&s), Some(6), "the oldest left");
    assert!(!render(&s, 80, 24).contains("no events yet"));
    // In the middle, it stays on its entry.
    types(&mut s, "gjjj");
    let before = selected(&s);
    feed(&mut s, workgroup_events(limit + 6, 5));
    assert_eq!(selected(&s), before);
    // With a filter that shows the dropped entries too.
    types(&mut s, "/workgroup");
    feed(&mut s, [code(KeyCode::Enter)]);
    types(&mut s, "G");
    feed(&mut s, workgroup_events(limit + 11, 3));
    assert_eq!(selected(&s), Some(14));
}

/// The operator's failed action, as the event log records it.
fn failed_action(why: &str) -> Msg {
    Msg::Reply(Reply::Action {
        req: ActionRequest::on_task(Verb::Pause, &demo_tasks()[0]),
        result: Err(why.into()),
    })
}

/// The operator's own actions (and audit entries) have their own cap in
/// the event log: task events, however many, do not push them out ("mine
/// only" showed none after minutes on a busy daemon), and the oldest of
/// them goes only past their cap, the selection staying on its entry.
#[test]
fn own_actions_outlast_the_daemon_events_in_the_event_log() {
    use crew_tui::app::state::{EVENT_LOG_LIMIT, OWN_LOG_LIMIT};
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [failed_action("first")]);
    feed(&mut s, workgroup_events(1, EVENT_LOG_LIMIT as u64 + 500));
    assert_eq!(s.events.len(), EVENT_LOG_LIMIT + 1);
    types(&mut s, "3m");
    let mine: Vec<String> = s
        .visible_events()
        .iter()
        .map(|e| e.detail.clone())
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert!(mine[0].contains("first"), "{mine:?}");
    types(&mut s, "m");

    // Past their cap, the oldest own entry goes: the selected one, here,
    // so the one above takes the selection.
    let sel = s.events.len() - 1;
    for i in 0..OWN_LOG_LIMIT - 1 {
        feed(&mut s, [failed_action(&format!("action {i}"))]);
    }
    types(&mut s, "G");
    assert_eq!(s.events_list.selected, sel + OWN_LOG_LIMIT - 1);
    feed(&mut s, [failed_action("one more")]);
    assert_eq!(s.events.len(), EVENT_LOG_LIMIT + OWN_LOG_LIMIT);
    let own = s.events.iter().filter(|e| e.mine).count();
    assert_eq!(own, OWN_LOG_LIMIT);
    assert!(!s.events.iter().any(|e| e.detail.contains("first")));
    let selected = |s: &crew_tui::AppState| s.visible_events()[s.events_list.selected].clone();
    assert_eq!(selected(&s).seq, 501);
    // The next goes from above the selection: it stays on its entry.
    feed(&mut s, [failed_action("and another")]);
    assert!(!s.events.iter().any(|e| e.detail.ends_with("action 0")));
    assert_eq!(selected(&s).seq, 501);
    // And from below it.
    types(&mut s, "gjjj");
    let before = selected(&s);
    feed(&mut s, [failed_action("and a last")]);
    assert_eq!(selected(&s), before);
}

/// `:workgroup NAME` checks the name as the daemon does, and says why it
/// is refused, rather than listing a workgroup no task can have and no
/// pause can reach (spaces, emoji).
#[test]
fn a_workgroup_name_the_daemon_refuses_is_refused_at_once() {
    for bad in ["ads api", "ads-🚀", ".hidden"] {
        let mut s = loaded(Theme::default(), false);
        types(&mut s, &format!(":workgroup {bad}"));
        let fx = feed(&mut s, [code(KeyCode::Enter)]);
        assert!(fx.is_empty(), "{bad}: {fx:?}");
        assert!(s.workgroups_named.is_empty(), "{bad}");
        assert_eq!(s.view, View::Groups, "{bad}");
        let status = s.status.clone().expect("says why");
        assert!(status.error, "{bad}");
        assert!(status.text.contains("is not valid"), "{}", status.text);
    }
    let mut s = loaded(Theme::default(), false);
    types(&mut s, ":workgroup ads-api.v2");
    feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(s.workgroups_named.len(), 1);
}

/// A page in the task detail is its focused pane's visible rows: at 80x24
/// the links pane shows 5 children, and page down moved by the screen's
/// 18, skipping 13 never seen (the fields pane skipped lines likewise).
#[test]
fn page_keys_in_the_task_detail_move_by_the_pane_shown() {
    let mut s = with_demo(Theme::default(), false);
    if let Some(g) = s.group.as_mut() {
        let mut t = g.dag.get("cleanup").cloned().expect("cleanup");
        t.output = serde_json::json!((0..100).collect::<Vec<_>>());
        g.dag.upsert(t);
        for i in 0..3000 {
            let id = format!("child-{i}");
            g.dag
                .upsert(task(&id, &id, "w", TaskStatus::Ready, &["cleanup"]));
        }
    }
    s.settle();
    feed(&mut s, [Msg::Resize(80, 24)]);
    while selected_id(&s) != "cleanup" {
        types(&mut s, "j");
    }
    feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(s.view, View::Task);
    let fields = crew_tui::view::task::content_view_rows(&s);
    let links = crew_tui::view::task::links_view_rows(&s);
    assert_eq!(links, 5);
    feed(&mut s, [code(KeyCode::PageDown)]);
    assert_eq!(s.task.as_ref().unwrap().scroll, fields);
    feed(&mut s, [code(KeyCode::Tab), code(KeyCode::PageDown)]);
    assert_eq!(s.task.as_ref().unwrap().links.selected, links);
    feed(&mut s, [code(KeyCode::PageDown), code(KeyCode::PageUp)]);
    assert_eq!(s.task.as_ref().unwrap().links.selected, links);
    let screen = render(&s, 80, 24);
    assert!(screen.contains("child-5 "), "{screen}");
}

/// A page in the tree is the rows it shows: a refused schedule's banner
/// (two rows at 80 columns) takes its rows from the list, not from the page.
#[test]
fn page_keys_in_the_tree_leave_out_the_refused_schedule_banner() {
    let mut s = with_demo(Theme::default(), false);
    if let Some(g) = s.group.as_mut() {
        g.view.group.schedule_refused = Some(format!("no such day {}", "x".repeat(80)));
        for i in 0..100 {
            let id = format!("extra-{i:03}");
            g.dag.upsert(task(&id, &id, "w", TaskStatus::Ready, &[]));
        }
    }
    s.settle();
    feed(&mut s, [Msg::Resize(80, 24)]);
    // 24 rows: header, status line and keys, title, heading and banner.
    assert_eq!(crew_tui::view::dag::tree_rows(&s), 24 - 3 - 2 - 2);
    feed(&mut s, [code(KeyCode::PageDown)]);
    assert_eq!(s.group.as_ref().unwrap().list.selected, 17);
}

/// A dropped stream says why on the status line, once per cause: after a
/// frozen daemon it still read "connected again" from the outage before.
#[test]
fn a_disconnect_says_why() {
    let mut s = with_demo(Theme::default(), false);
    let down = |error: &str, attempt| {
        Msg::Conn(ConnEvent::Disconnected {
            error: error.into(),
            attempt,
            retry_in_ms: 500,
            refused: false,
        })
    };
    feed(
        &mut s,
        [
            down("connection refused", 1),
            Msg::Conn(ConnEvent::Connected { resumed: true }),
        ],
    );
    assert_eq!(s.status.clone().expect("a status").text, "connected again");
    feed(&mut s, [down("no word from the daemon for 15s", 1)]);
    let st = s.status.clone().expect("a status");
    assert!(
        st.error && st.text.contains("no word from the daemon for 15s"),
        "{st:?}"
    );
    // The same cause at the next try is not said again; a new one is.
    s.status = None;
    feed(&mut s, [down("no word from the daemon for 15s", 2)]);
    assert!(s.status.is_none());
    feed(&mut s, [down("connection refused", 3)]);
    let st = s.status.clone().expect("a status");
    assert!(st.text.contains("connection refused"), "{st:?}");
}
