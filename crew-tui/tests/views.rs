//! Every view drawn through `TestBackend` at 80x24 and 160x48.

mod common;

use common::*;
use crew_core::wire::{GroupSort, StatusCounts};
use crew_tui::app::msg::{ConnEvent, Reply};
use crew_tui::theme::Theme;
use crew_tui::Msg;
use crossterm::event::KeyCode;

fn both(name: &str, state: &crew_tui::AppState) {
    insta::assert_snapshot!(format!("{name}_80x24"), render(state, 80, 24));
    insta::assert_snapshot!(format!("{name}_160x48"), render(state, 160, 48));
}

#[test]
fn groups_view() {
    both("groups", &loaded(Theme::default(), false));
}

#[test]
fn groups_beyond_a_page_say_how_many_there_are() {
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [page_of("", groups().task_groups, 1200)]);
    insta::assert_snapshot!("groups_of_many_80x24", render(&s, 80, 24));
    // Another sort orders the page only until the daemon's page in that
    // order arrives: the title says so meanwhile.
    types(&mut s, "ss");
    let screen = render(&s, 80, 24);
    assert!(
        screen.contains("sort: progress, among the first 3 by newest"),
        "{screen}"
    );
    feed(
        &mut s,
        [sorted_page_of(
            "",
            GroupSort::Progress,
            groups().task_groups,
            1200,
        )],
    );
    let screen = render(&s, 80, 24);
    assert!(
        screen.contains("Groups (3 of 1200) sort: progress "),
        "{screen}"
    );
}

/// A group with one task left of 200 reads 99 %, its bar one cell short:
/// rounded, it read 100 % with a full bar, as if it were finished.
#[test]
fn a_group_nearly_done_does_not_look_finished() {
    let mut s = loaded(Theme::default(), false);
    let counts = StatusCounts {
        completed: 199,
        failed: 1,
        ..StatusCounts::default()
    };
    let nearly = group("g-nearly", "nearly", false, 60.0, counts);
    feed(&mut s, [page_of("", vec![nearly], 1)]);
    let screen = render(&s, 80, 24);
    let row = screen
        .lines()
        .find(|l| l.contains("nearly"))
        .unwrap_or_else(|| panic!("no row for the group: {screen}"));
    assert!(row.contains("  99% "), "{row}");
    assert!(row.contains('░'), "the bar is not full: {row}");
}

#[test]
fn groups_filtered_and_sorted() {
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "s/sync");
    feed(&mut s, [code(KeyCode::Enter)]);
    both("groups_filtered", &s);
}

#[test]
fn dag_view() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "jjj");
    both("dag", &s);
}

#[test]
fn dag_failed_only() {
    let mut s = with_demo(Theme::default(), false);
    // Cycle the status filter to "failed".
    types(&mut s, "ffffff");
    both("dag_failed", &s);
}

#[test]
fn dag_lineage() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "jjjju");
    both("dag_lineage", &s);
}

#[test]
fn dag_collapsed_and_ascii_no_color() {
    let mut s = with_demo(Theme::plain(), false);
    types(&mut s, "j j");
    both("dag_plain", &s);
}

#[test]
fn task_view() {
    let mut s = with_demo(Theme::default(), false);
    // The failed task: seed, a1, merge, report, store a1, notify, &notify,
    // a2, &merge, a3.
    types(&mut s, &"j".repeat(9));
    feed(&mut s, [code(KeyCode::Enter)]);
    both("task", &s);
    feed(&mut s, [code(KeyCode::Tab)]);
    types(&mut s, "j");
    both("task_links", &s);
}

#[test]
fn task_view_scrolled() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, &"j".repeat(9));
    feed(&mut s, [code(KeyCode::Enter)]);
    types(&mut s, &"j".repeat(20));
    insta::assert_snapshot!("task_scrolled_80x24", render(&s, 80, 24));
}

#[test]
fn workgroups_view() {
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "2j");
    both("workgroups", &s);
    types(&mut s, "p");
    insta::assert_snapshot!("workgroups_pause_prompt_80x24", render(&s, 80, 24));
}

#[test]
fn schedule_prompt() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "S");
    insta::assert_snapshot!("schedule_prompt_80x24", render(&s, 80, 24));
}

#[test]
fn events_view() {
    let mut s = with_demo(Theme::default(), false);
    let mut t = demo_tasks()[4].clone();
    t.status = Some(crew_core::TaskStatus::Ready);
    feed(
        &mut s,
        [
            Msg::Stream(crew_core::wire::StreamMessage {
                seq: 41,
                at: Some(ago(5.0)),
                event: crew_core::wire::Event::TaskUpdated { task: Box::new(t) },
            }),
            Msg::Stream(crew_core::wire::StreamMessage {
                seq: 42,
                at: Some(ago(2.0)),
                event: crew_core::wire::Event::WorkgroupUpdated {
                    workgroup: workgroups().workgroups[0].workgroup.clone(),
                },
            }),
        ],
    );
    // An action of the operator's own.
    types(&mut s, "p");
    let req = match feed(&mut s, []).pop() {
        Some(crew_tui::Effect::Act(r)) => r,
        _ => crew_tui::app::action::ActionRequest {
            verb: crew_tui::app::action::Verb::Pause,
            target: crew_tui::app::action::Target::Task {
                group_id: "g-demo".into(),
                id: "seed".into(),
                name: "list accounts".into(),
            },
            seconds: None,
        },
    };
    feed(
        &mut s,
        [Msg::Reply(Reply::Action {
            req,
            result: Err("409 task is running".into()),
        })],
    );
    types(&mut s, "3");
    both("events", &s);
}

/// A subject whose escaped text, not its raw one, is too wide for its
/// column: the selected entry's whole text is shown below the list (the
/// raw text was measured, so it was not).
#[test]
fn the_event_log_shows_a_subject_cut_by_its_escapes_whole() {
    let mut s = loaded(Theme::default(), false);
    let mut g = groups().task_groups[1].group.clone();
    g.name = "pay\u{1b}[1m\u{1b}[0mrun-eu".into();
    feed(
        &mut s,
        [Msg::Stream(crew_core::wire::StreamMessage {
            seq: 7,
            at: Some(ago(1.0)),
            event: crew_core::wire::Event::GroupUpdated { task_group: g },
        })],
    );
    types(&mut s, "3");
    let screen = render(&s, 80, 24);
    assert!(
        screen.contains("pay\\u{1b}[1m\\u{1b}[0mrun-eu: "),
        "{screen}"
    );
}

#[test]
fn help_overlay() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "?");
    both("help", &s);
}

#[test]
fn help_read_only_hides_actions() {
    let mut s = with_demo(Theme::default(), true);
    types(&mut s, "?");
    let screen = render(&s, 160, 48);
    assert!(!screen.contains("pause"), "{screen}");
    assert!(screen.contains("READ-ONLY"));
    insta::assert_snapshot!("help_read_only_160x48", screen);
}

#[test]
fn confirm_delete() {
    let mut s = with_demo(Theme::default(), false);
    // seed: deleting it removes everything under it.
    types(&mut s, "d");
    both("confirm_delete", &s);
}

#[test]
fn confirm_bulk_delete_asks_for_the_count() {
    let mut s = with_demo(Theme::default(), false);
    types(&mut s, "/fetch");
    feed(&mut s, [code(KeyCode::Enter)]);
    let fx = types(&mut s, "ad");
    dry_run(&mut s, fx, 5, 9, 0);
    types(&mut s, "9");
    both("confirm_bulk_delete", &s);
}

#[test]
fn reconnecting_header() {
    let mut s = loaded(Theme::default(), false);
    feed(
        &mut s,
        [Msg::Conn(ConnEvent::Disconnected {
            error: "connection refused".into(),
            attempt: 3,
            retry_in_ms: 2000,
            refused: false,
        })],
    );
    insta::assert_snapshot!("reconnecting_80x24", render(&s, 80, 24));
}

#[test]
fn token_refused_header() {
    let mut s = loaded(Theme::default(), false);
    feed(
        &mut s,
        [Msg::Conn(ConnEvent::Disconnected {
            error: "HTTP error: 401 Unauthorized".into(),
            attempt: 1,
            retry_in_ms: 10_000,
            refused: true,
        })],
    );
    insta::assert_snapshot!("token_refused_80x24", render(&s, 80, 24));
}

#[test]
fn a_long_error_wraps_instead_of_being_cut() {
    let mut s = with_demo(Theme::default(), false);
    let fx = types(&mut s, "p");
    let [crew_tui::Effect::Act(req)] = &fx[..] else {
        panic!("{fx:?}")
    };
    let why = "422 seconds must be a number greater than 0 and at most 2592000 (30 days), \
               got 1000000000";
    feed(
        &mut s,
        [Msg::Reply(Reply::Action {
            req: req.clone(),
            result: Err(why.into()),
        })],
    );
    let screen = render(&s, 80, 24);
    let rows: Vec<&str> = screen.lines().collect();
    // The last row is the key bar; the error takes the two above it, whole.
    let status = format!("{}{}", rows[rows.len() - 3], rows[rows.len() - 2]);
    assert!(status.contains("got 1000000000"), "{screen}");
    assert!(rows[rows.len() - 1].contains("?:help"), "{screen}");
}

#[test]
fn the_event_log_names_no_sequence_before_it_has_seen_one() {
    let mut s = loaded(Theme::default(), false);
    types(&mut s, "3");
    let screen = render(&s, 80, 24);
    assert!(screen.contains("Events ("), "{screen}");
    assert!(!screen.contains("last seq"), "{screen}");
}

/// The key bar's last line at 80x24.
fn key_bar(s: &crew_tui::AppState) -> String {
    let screen = render(s, 80, 24);
    screen.lines().last().unwrap_or_default().to_string()
}

/// Prompts about a workgroup or group with a long name keep what is typed,
/// the cursor and a hint in sight at 80 columns: the name is cut with an
/// ellipsis in its middle (it ran to the edge and hid them).
#[test]
fn prompts_keep_what_is_typed_in_sight_beside_a_long_name() {
    let mut s = loaded(Theme::default(), false);
    let wg = format!("acct-{}", "q".repeat(120));
    types(&mut s, &format!(":workgroup {wg}"));
    feed(&mut s, [code(KeyCode::Enter)]);
    types(&mut s, "p42");
    let bar = key_bar(&s);
    assert!(bar.contains(" pause workgroup acct-qq"), "{bar}");
    assert!(bar.contains("acct-qq"), "{bar}");
    assert!(bar.contains("…qq"), "{bar}");
    assert!(bar.contains("qq for seconds: 42█"), "{bar}");
    assert!(bar.contains("esc: cancel"), "{bar}");
    feed(&mut s, [code(KeyCode::Esc)]);

    types(&mut s, "l");
    let bar = key_bar(&s);
    assert!(bar.contains("…qq") && bar.contains("qq: █"), "{bar}");
    assert!(
        bar.contains("concurrency:N,rate:R,burst:B  esc: cancel"),
        "{bar}"
    );
    types(&mut s, "concurrency:4");
    let bar = key_bar(&s);
    assert!(
        bar.contains("…qq") && bar.contains("qq: concurrency:4█"),
        "{bar}"
    );
    assert!(bar.contains("esc: cancel"), "{bar}");
    feed(&mut s, [code(KeyCode::Esc)]);

    let mut s = loaded(Theme::default(), false);
    let mut long = groups().task_groups;
    long[1].group.name = format!("demo-{}", "x".repeat(105));
    feed(&mut s, [page_of("", long, 3)]);
    types(&mut s, "gS");
    let bar = key_bar(&s);
    assert!(
        bar.contains("…xx") && bar.contains("xx (cron, UTC): 0 2 * * *█"),
        "{bar}"
    );
    assert!(bar.contains("esc: cancel"), "{bar}");
    // A long typed text shows its end.
    types(&mut s, &" 1".repeat(40));
    let bar = key_bar(&s);
    assert!(bar.contains(" 1 1 1█"), "{bar}");
}

/// The confirm dialog grows to its message within the screen, and cuts a
/// message too long for it, so that the buttons, the hint and the count to
/// type stay visible (a long name pushed them out of its fixed box).
#[test]
fn the_confirm_dialog_keeps_its_buttons_beside_a_long_name() {
    let mut s = with_demo(Theme::default(), false);
    let name = format!("export {}end", "ab ".repeat(106));
    if let Some(g) = s.group.as_mut() {
        let mut t = demo_tasks()[0].clone();
        t.name = name.clone();
        g.dag.upsert(t);
    }
    s.settle();
    types(&mut s, "gd");
    let screen = render(&s, 80, 24);
    assert!(screen.contains("[ Yes ]"), "{screen}");
    // seed has descendants: its count is typed.
    assert!(screen.contains("Type 9 or yes to confirm"), "{screen}");
    assert!(screen.contains("esc: no"), "{screen}");
    assert!(screen.contains("ab end and its"), "{screen}");
    // A short screen: the name is cut in its middle, so the question and
    // the buttons show whole.
    let screen = render(&s, 80, 8);
    assert!(screen.contains("[ Yes ]"), "{screen}");
    assert!(screen.contains("Type 9 or yes to confirm"), "{screen}");
    assert!(screen.contains("esc: no"), "{screen}");
    assert!(screen.contains("ab …b ab"), "{screen}");
    assert!(screen.contains("9 tasks in all?"), "{screen}");

    // A group's delete asks for its count to be typed.
    let mut s = loaded(Theme::default(), false);
    let mut long = groups().task_groups;
    long[1].group.name = format!("demo-{}", "x".repeat(600));
    feed(&mut s, [page_of("", long, 3)]);
    types(&mut s, "gd");
    for h in [24, 14] {
        let screen = render(&s, 80, h);
        assert!(screen.contains("Type 11 or yes to confirm"), "{screen}");
        assert!(screen.contains("[ Yes ]"), "{screen}");
        assert!(screen.contains("esc: no"), "{screen}");
    }
}

/// A long error (or output) in the task detail wraps rather than being cut
/// at the edge, and scrolling reaches its last row.
#[test]
fn the_task_detail_wraps_long_lines() {
    let mut s = with_demo(Theme::default(), false);
    let message = format!("upstream said: {} THE-END", "0123456789".repeat(25));
    if let Some(g) = s.group.as_mut() {
        let mut t = demo_tasks()[0].clone();
        t.errors = vec![crew_core::model::TaskError::recorded(
            message.as_str(),
            ago(60.0),
            1,
        )];
        g.dag.upsert(t);
    }
    s.settle();
    types(&mut s, "g");
    feed(&mut s, [code(KeyCode::Enter)]);
    assert_eq!(s.view, crew_tui::app::state::View::Task);
    // To the bottom: the last screenful, the whole error in sight, its end
    // not past the edge (the last row alone was shown at the top).
    for bottom in ["G", &"j".repeat(100)] {
        types(&mut s, "g");
        types(&mut s, bottom);
        let screen = render(&s, 80, 24);
        assert!(screen.contains("upstream said: 0123"), "{screen}");
        assert!(screen.contains("THE-END"), "{screen}");
    }
    // One row up moves the view at once (no presses spent past the end).
    let before = render(&s, 80, 24);
    types(&mut s, "k");
    assert_ne!(render(&s, 80, 24), before);
}

/// At 80 columns the key bar drops whole entries that do not fit, keeping
/// help, back and quit (it was cut mid-word, hiding esc:back and q:quit);
/// a wide screen shows them all.
#[test]
fn the_key_bar_fits_whole_entries() {
    let mut s = with_demo(Theme::default(), false);
    let bars = |s: &crew_tui::AppState| {
        let narrow = key_bar(s);
        let wide = render(s, 160, 48);
        let wide = wide.lines().last().unwrap_or_default().to_string();
        (narrow, wide)
    };
    // The tree, a task, the groups, the workgroups, the event log.
    for view in ["", "enter", "1", "4", "3"] {
        if view == "enter" {
            feed(&mut s, [code(KeyCode::Enter)]);
        } else {
            types(&mut s, view);
        }
        let (narrow, wide) = bars(&s);
        assert!(narrow.starts_with("\" ?:help "), "{narrow}");
        assert!(narrow.contains(" esc:back q:quit "), "{narrow}");
        // Every entry shown is whole: a key, a colon and a word.
        for entry in narrow.trim_matches('"').split_whitespace() {
            let word = entry.split_once(':').map_or("", |(_, w)| w);
            assert!(
                wide.contains(&format!(" {entry} ")),
                "{entry} is cut: {narrow}"
            );
            assert!(!word.is_empty(), "{entry} is cut: {narrow}");
        }
    }
    // The actions come first, so that a narrow bar keeps them.
    types(&mut s, "1");
    let (narrow, wide) = bars(&s);
    let actions = " ?:help p:pause r:resume R:reset t:retry d:delete ";
    assert!(narrow.contains(actions), "{narrow}");
    assert!(wide.contains(" ::cmd esc:back q:quit "), "{wide}");
}

/// A long group name is cut so that the tree's title keeps its filters
/// and the bulk warning in sight: they came last and were cut off.
#[test]
fn the_tree_title_keeps_its_warnings_beside_a_long_name() {
    let mut s = with_demo(Theme::default(), false);
    if let Some(g) = s.group.as_mut() {
        g.view.group.name = format!("nightly-reconciliation-{}", "x".repeat(60));
    }
    types(&mut s, "f");
    types(&mut s, "a");
    let screen = render(&s, 80, 24);
    let title = screen
        .lines()
        .find(|l| l.contains(" tasks) "))
        .unwrap_or_else(|| panic!("no title: {screen}"));
    assert!(title.contains("[BULK: "), "{title}");
    assert!(title.contains("[status "), "{title}");
    assert!(title.contains('…'), "the name is cut: {title}");
}

/// Every marker at once beside a 55-column name, at 80 columns and in the
/// tree pane of a 120-column screen (60 % of it): the markers shorten and
/// the counts go before any warning is cut at the edge ("[not current"
/// lost its end at 80 columns, and at 120 the bulk warning went too).
#[test]
fn the_tree_title_keeps_every_warning_when_they_all_show() {
    let mut s = with_demo(Theme::default(), false);
    if let Some(g) = s.group.as_mut() {
        g.view.group.name = format!("alpha-batch-0-{}", "x".repeat(41));
    }
    types(&mut s, "f");
    types(&mut s, "/fetch");
    feed(&mut s, [code(KeyCode::Enter)]);
    types(&mut s, "a");
    // A refetch that failed: the tree is not current.
    feed(
        &mut s,
        [Msg::Reply(Reply::Group {
            id: "g-demo".into(),
            result: Err("cannot connect to the daemon".into()),
        })],
    );
    for (w, h) in [(80, 24), (120, 30)] {
        let screen = render(&s, w, h);
        let title = screen
            .lines()
            .nth(1)
            .map(|l| l.split('┌').next().unwrap_or(l).to_string())
            .unwrap_or_default();
        assert!(title.contains(" alp"), "{w}: {title}");
        assert!(title.contains('…'), "{w}: the name is cut: {title}");
        for marker in ["[status running]", "[/fetch]", "[BULK: 1", "[not current"] {
            assert!(title.contains(marker), "{w}: {marker} in {title}");
        }
        let end = title.trim_end_matches(['"', ' ']);
        assert!(end.ends_with(']'), "{w}: cut at the edge: {title}");
    }
}

/// A recurring group whose due reset was refused has stopped recurring:
/// the tree says why above its rows, and the groups list marks it.
#[test]
fn a_refused_schedule_says_why() {
    let mut s = with_demo(Theme::default(), false);
    let mut g = groups().task_groups[1].group.clone();
    g.schedule = Some("0 2 * * *".into());
    g.schedule_refused = Some(
        "task \"made\" is a seed, and task \"root\" created it when it ran: a reset would \
         keep it and the re-run create it again"
            .into(),
    );
    feed(
        &mut s,
        [Msg::Stream(crew_core::wire::StreamMessage {
            seq: 9,
            at: Some(now()),
            event: crew_core::wire::Event::GroupUpdated { task_group: g },
        })],
    );
    both("dag_schedule_refused", &s);
    feed(&mut s, [code(KeyCode::Esc)]);
    let screen = render(&s, 80, 24);
    assert!(screen.contains("⟳✗ demo"), "{screen}");
}

/// Over more than a page, sorted other than the daemon's page, with a
/// long filter: the title shortens the sort's caveat, then the filter's
/// text, so that the filter stays in sight at 80 columns (it was pushed
/// past the edge).
#[test]
fn the_groups_title_keeps_the_filter_in_sight() {
    let mut s = loaded(Theme::default(), false);
    feed(&mut s, [page_of("", groups().task_groups, 1200)]);
    types(&mut s, "ss/nightly-exports-eu-west");
    feed(&mut s, [code(KeyCode::Enter)]);
    let title = |s: &crew_tui::AppState, w: u16| {
        let screen = render(s, w, 24);
        screen.lines().nth(1).unwrap_or_default().to_string()
    };
    let wide = title(&s, 160);
    assert!(
        wide.contains("sort: progress, among the first 3 by newest  /nightly-exports-eu-west"),
        "{wide}"
    );
    let narrow = title(&s, 80);
    assert!(narrow.contains("/nightly-exports-eu-west"), "{narrow}");
    assert!(
        narrow.contains("sort: progress, of the first 3"),
        "{narrow}"
    );
    let narrower = title(&s, 50);
    assert!(
        narrower.contains("sort: progress*  /nightly…"),
        "{narrower}"
    );
}

/// With a name of 300 characters, why an action on it failed is still in
/// sight, on the status line and under the event log's list: the name in
/// the sentence is cut (its three rows were full before the reason).
#[test]
fn the_reason_an_action_failed_shows_beside_a_long_name() {
    let mut s = loaded(Theme::default(), false);
    let long = "L".repeat(300);
    let page = vec![group("g-long", &long, false, 60.0, StatusCounts::default())];
    feed(&mut s, [page_of("", page, 1)]);
    let fx = types(&mut s, "p");
    let [crew_tui::Effect::Act(req)] = &fx[..] else {
        panic!("{fx:?}")
    };
    let why = "409 the group is being reset by another operator";
    feed(
        &mut s,
        [Msg::Reply(Reply::Action {
            req: req.clone(),
            result: Err(why.into()),
        })],
    );
    let flat = |screen: &str| {
        screen
            .lines()
            .map(|l| l.trim_matches('"').trim())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let screen = render(&s, 80, 24);
    assert!(
        flat(&screen).contains("reset by another operator"),
        "{screen}"
    );
    types(&mut s, "3");
    let screen = render(&s, 80, 24);
    assert!(
        flat(&screen).contains("reset by another operator"),
        "{screen}"
    );
    // The confirmation asks its question whole.
    types(&mut s, "1d");
    let c = s.confirm.clone().expect("delete asks first");
    assert!(c.message.len() < 100, "{}", c.message);
    assert!(c.message.ends_with("and its 0 tasks?"), "{}", c.message);
}

/// A group without a name (empty or blank) goes by its id, as a task does:
/// in its row, in the tree's title and header, in the event log and in
/// what an action on it asks and says (its row's NAME was empty, and the
/// dialog read "Delete group and its 0 tasks?").
#[test]
fn a_group_without_a_name_goes_by_its_id() {
    let mut s = loaded(Theme::default(), false);
    let page = vec![
        group("g-unnamed", "", false, 60.0, StatusCounts::default()),
        group("g-blank", "   ", false, 120.0, StatusCounts::default()),
    ];
    feed(&mut s, [page_of("", page, 2)]);
    let screen = render(&s, 80, 24);
    assert!(screen.contains("▶ g-unnamed"), "{screen}");
    assert!(screen.contains("  g-blank"), "{screen}");
    types(&mut s, "d");
    let c = s.confirm.clone().expect("delete asks first");
    assert_eq!(c.message, "Delete group g-unnamed and its 0 tasks?");
    feed(&mut s, [code(KeyCode::Esc)]);
    let fx = types(&mut s, "jp");
    let [crew_tui::Effect::Act(req)] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(req.describe(), "pause group g-blank");
    let blank = s.selected_group().expect("selected").group.clone();
    let updated = Msg::Stream(crew_core::wire::StreamMessage {
        seq: 5,
        at: Some(now()),
        event: crew_core::wire::Event::GroupUpdated { task_group: blank },
    });
    feed(&mut s, [updated]);
    feed(&mut s, [code(KeyCode::Enter)]);
    let screen = render(&s, 80, 24);
    assert!(screen.contains("groups › g-blank"), "{screen}");
    assert!(screen.contains(" g-blank (0 tasks)"), "{screen}");
    types(&mut s, "3");
    let screen = render(&s, 80, 24);
    assert!(screen.contains("group.updated     g-blank"), "{screen}");
}

/// Workgroups whose long names differ only at their end can be told
/// apart: the NAME column (16 columns at 80) and the pause prompt cut them
/// in their middle (every one read "XXXXXXXXXXXXXXX…"). So do the groups
/// list and the tree for a task that goes by a long id.
#[test]
fn long_names_that_differ_at_their_end_stay_apart() {
    let mut s = loaded(Theme::default(), false);
    let name = |i: u32| format!("{}{i:08}", "X".repeat(100));
    let list = crew_core::wire::WorkgroupList {
        workgroups: (1..=3)
            .map(|i| crew_core::wire::WorkgroupView {
                workgroup: crew_core::Workgroup::new(name(i)),
                incomplete_tasks: 1,
                in_flight: 0,
            })
            .collect(),
    };
    feed(&mut s, [Msg::Reply(Reply::Workgroups(Ok(list)))]);
    types(&mut s, "2");
    let screen = render(&s, 80, 24);
    for i in 1..=3 {
        assert!(screen.contains(&format!("…{i:08} ")), "{screen}");
    }
    types(&mut s, "jp");
    let bar = key_bar(&s);
    assert!(bar.contains("X00000002 for seconds"), "{bar}");

    let mut s = loaded(Theme::default(), false);
    let page = (1..=3)
        .map(|i| {
            group(
                &format!("g-{i}"),
                &name(i),
                false,
                60.0,
                StatusCounts::default(),
            )
        })
        .collect();
    feed(&mut s, [page_of("", page, 3)]);
    let screen = render(&s, 80, 24);
    for i in 1..=3 {
        assert!(screen.contains(&format!("X{i:08} ")), "{screen}");
    }

    let mut s = with_demo(Theme::default(), false);
    if let Some(g) = s.group.as_mut() {
        for i in 1..=2 {
            let t = task(&name(i), "", "w", crew_core::TaskStatus::Ready, &[]);
            g.dag.upsert(t);
        }
    }
    s.settle();
    let screen = render(&s, 80, 24);
    for i in 1..=2 {
        assert!(screen.contains(&format!("X{i:08} ")), "{screen}");
    }
}

/// Sequence numbers past 999,999 show whole: the SEQ column was 6 wide and
/// every row read `17833…`.
#[test]
fn the_event_log_shows_long_sequence_numbers_whole() {
    let mut s = with_demo(Theme::default(), false);
    feed(
        &mut s,
        [1_783_301_234_u64, 1_783_301_235].map(|seq| {
            Msg::Stream(crew_core::wire::StreamMessage {
                seq,
                at: Some(ago(2.0)),
                event: crew_core::wire::Event::WorkgroupUpdated {
                    workgroup: workgroups().workgroups[0].workgroup.clone(),
                },
            })
        }),
    );
    types(&mut s, "3");
    let screen = render(&s, 80, 24);
    assert!(screen.contains(" 1783301234 "), "{screen}");
    assert!(screen.contains(" 1783301235 "), "{screen}");
    assert!(screen.contains("SEQ        TYPE"), "{screen}");
}

/// A task due years ahead shows when in the tree's WHEN column whole (it
/// read `in 1119d1…`).
#[test]
fn the_tree_fits_a_far_run_after_in_its_when_column() {
    let mut s = with_demo(Theme::default(), false);
    if let Some(g) = s.group.as_mut() {
        let mut t = g.dag.get("a4").cloned().expect("a4");
        t.run_after = now().plus_seconds(86_400.0 * 1119.5);
        g.dag.upsert(t);
    }
    s.settle();
    let screen = render(&s, 80, 24);
    assert!(screen.contains("in 3y024d"), "{screen}");
    assert!(!screen.contains("d1…"), "{screen}");
}
