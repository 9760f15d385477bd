//! Keys: what a key press does in each view, in a prompt and in a confirm
//! dialog. Keys map to [`Command`]s through the keymap, so the key bar and
//! the help list exactly what is handled here.

use super::action::{dispatch, on_action, ActionRequest, Target, Verb};
use super::dag::{DagFilter, RowKind};
use super::keymap::{Command, Key};
use super::msg::Effect;
use super::state::{
    group_name, AppState, Input, ListPos, TaskDetail, TaskPane, View, DEFAULT_PAUSE_SECS,
};
use crate::text::short_name;
use crew_core::{TaskStatus, WorkgroupLimits};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A key press: Ctrl-C quits from anywhere; otherwise the help overlay,
/// a confirm dialog or a prompt takes it first, then the view's keymap.
pub(super) fn on_key(state: &mut AppState, k: KeyEvent) -> Vec<Effect> {
    if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
        state.quit = true;
        return vec![Effect::Quit];
    }
    if state.help {
        state.help = false;
        return vec![];
    }
    if state.confirm.is_some() {
        return on_confirm_key(state, k);
    }
    if state.input != Input::None {
        return on_input_key(state, k);
    }
    let key = Key::from_event(&k);
    let Some(cmd) = state.keymap.lookup(state.view.scope(), key) else {
        return vec![];
    };
    on_command(state, cmd)
}

/// Longest text the typed confirmation keeps.
const CONFIRM_TYPED_MAX: usize = 24;

/// Said when the last filter goes while bulk actions were on.
const BULK_ENDED: &str = "no filter left: actions apply to the selected task again";

/// A key in a confirm dialog: focus, typing the count, Yes or No. The
/// buttons read No (left, focused first) and Yes (right).
fn on_confirm_key(state: &mut AppState, k: KeyEvent) -> Vec<Effect> {
    let Some(c) = &mut state.confirm else {
        return vec![];
    };
    let typing = c.expect.is_some();
    match k.code {
        KeyCode::Left | KeyCode::Right | KeyCode::Tab | KeyCode::BackTab => {
            c.ok_focused = !c.ok_focused;
            vec![]
        }
        KeyCode::Backspace if typing => {
            c.typed.pop();
            vec![]
        }
        KeyCode::Char(ch) if typing && !k.modifiers.contains(KeyModifiers::CONTROL) => {
            if c.typed.chars().count() < CONFIRM_TYPED_MAX {
                c.typed.push(ch);
            }
            vec![]
        }
        KeyCode::Char('h') => {
            c.ok_focused = false;
            vec![]
        }
        KeyCode::Char('l') => {
            c.ok_focused = true;
            vec![]
        }
        // Yes at once, where nothing must be typed first.
        KeyCode::Char('y') => {
            c.ok_focused = true;
            confirm_chosen(state)
        }
        KeyCode::Enter => confirm_chosen(state),
        KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('q') => {
            state.confirm = None;
            state.say("cancelled");
            vec![]
        }
        _ => vec![],
    }
}

/// The focused button of the confirm dialog is chosen: Yes acts (once
/// what must be typed is), No closes the dialog.
fn confirm_chosen(state: &mut AppState) -> Vec<Effect> {
    let Some(c) = &state.confirm else {
        return vec![];
    };
    if c.ok_focused && !c.accepted() {
        let want = c.expect.clone().unwrap_or_default();
        state.fail(format!("type {want} or yes to confirm"));
        return vec![];
    }
    let Some(c) = state.confirm.take() else {
        return vec![];
    };
    if c.ok_focused {
        dispatch(state, c.req)
    } else {
        state.say("cancelled");
        vec![]
    }
}

/// A key while text is typed at the bottom line (filter, command, or an
/// action's prompt).
fn on_input_key(state: &mut AppState, k: KeyEvent) -> Vec<Effect> {
    match k.code {
        KeyCode::Esc => {
            if matches!(state.input, Input::Filter(_)) {
                set_filter(state, String::new());
            }
            state.input = Input::None;
            vec![]
        }
        KeyCode::Enter => {
            let input = std::mem::replace(&mut state.input, Input::None);
            match input {
                Input::Filter(_) | Input::None => vec![],
                Input::Command(c) => run_command(state, c.trim()),
                Input::Seconds { workgroup, text } => match Some(text.trim())
                    .filter(|t| !t.is_empty())
                    .unwrap_or(DEFAULT_PAUSE_SECS)
                    .parse::<f64>()
                {
                    Ok(s) if s > 0.0 && s.is_finite() => dispatch(
                        state,
                        ActionRequest {
                            verb: Verb::Pause,
                            target: Target::Workgroup { name: workgroup },
                            seconds: Some(s),
                        },
                    ),
                    _ => {
                        state.fail(format!("not a number of seconds: {text}"));
                        vec![]
                    }
                },
                Input::Schedule {
                    group_id,
                    name,
                    text,
                } => {
                    let schedule = text.trim().to_string();
                    // Checked here too, so a typo is answered at once.
                    match crew_core::schedule::check(&schedule) {
                        Err(e) if !schedule.is_empty() => {
                            state.fail(format!("schedule not set: {e}"));
                            vec![]
                        }
                        _ => dispatch(
                            state,
                            ActionRequest {
                                verb: Verb::Schedule,
                                target: Target::GroupSchedule {
                                    id: group_id,
                                    name,
                                    schedule,
                                },
                                seconds: None,
                            },
                        ),
                    }
                }
                Input::Limits { workgroup, text } => match WorkgroupLimits::parse(&text) {
                    Ok(limits) => dispatch(
                        state,
                        ActionRequest {
                            verb: Verb::Limit,
                            target: Target::WorkgroupLimits {
                                name: workgroup,
                                limits,
                            },
                            seconds: None,
                        },
                    ),
                    Err(e) => {
                        state.fail(format!("limits not set: {e}"));
                        vec![]
                    }
                },
            }
        }
        // ctrl-u clears the line, as in a shell: a prefilled value (the
        // limits, the schedule) otherwise took a backspace a character.
        KeyCode::Backspace | KeyCode::Char('u')
            if k.code == KeyCode::Backspace || k.modifiers.contains(KeyModifiers::CONTROL) =>
        {
            let text = match state.input.text_mut() {
                Some(t) => {
                    if k.code == KeyCode::Backspace {
                        t.pop();
                    } else {
                        t.clear();
                    }
                    t.clone()
                }
                None => String::new(),
            };
            if matches!(state.input, Input::Filter(_)) {
                set_filter(state, text);
            }
            vec![]
        }
        KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
            let text = match state.input.text_mut() {
                Some(t) => {
                    if t.chars().count() < 200 {
                        t.push(c);
                    }
                    t.clone()
                }
                None => String::new(),
            };
            if matches!(state.input, Input::Filter(_)) {
                set_filter(state, text);
            }
            vec![]
        }
        _ => vec![],
    }
}

/// The text filter of the current view.
pub fn current_filter(state: &AppState) -> &str {
    match state.view {
        View::Groups => &state.groups_filter,
        View::Dag => state
            .group
            .as_ref()
            .map(|g| g.dag.filter().text.as_str())
            .unwrap_or(""),
        View::Task => "",
        View::Workgroups => &state.workgroups_filter,
        View::Events => &state.events_filter,
    }
}

fn set_filter(state: &mut AppState, text: String) {
    match state.view {
        View::Groups => {
            state.groups_filter = text;
            state.groups_list = ListPos::default();
            // Beyond the loaded page, the daemon searches (at the next tick).
            if state.groups_need_search() {
                state.groups_dirty = true;
            }
        }
        View::Dag => {
            if let Some(g) = &mut state.group {
                let mut f = g.dag.filter().clone();
                f.text = text;
                if g.filter_by(f) {
                    state.say(BULK_ENDED);
                }
            }
        }
        View::Task => {}
        View::Workgroups => {
            state.workgroups_filter = text;
            state.workgroups_list = ListPos::default();
        }
        View::Events => {
            state.events_filter = text;
            state.events_list = ListPos::default();
        }
    }
}

/// A `:` command.
fn run_command(state: &mut AppState, cmd: &str) -> Vec<Effect> {
    let (word, arg) = match cmd.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (cmd, ""),
    };
    match word {
        "q" | "quit" | "q!" => {
            state.quit = true;
            vec![Effect::Quit]
        }
        "groups" | "g" | "grp" => {
            state.go(View::Groups);
            vec![]
        }
        "workgroups" | "wg" | "workgroup" if arg.is_empty() => {
            state.go(View::Workgroups);
            vec![Effect::FetchWorkgroups]
        }
        "events" | "ev" | "log" => {
            state.go(View::Events);
            vec![]
        }
        "group" if !arg.is_empty() => state.open_named_group(arg),
        "workgroup" | "wg" if !arg.is_empty() => state.open_named_workgroup(arg),
        "" => vec![],
        _ => {
            state.fail(format!(
                "unknown command :{cmd} (try :groups :workgroups :events :group NAME \
                 :workgroup NAME :q)"
            ));
            vec![]
        }
    }
}

/// Rows in the current view's list.
fn list_len(state: &AppState) -> usize {
    match state.view {
        View::Groups => state.visible_groups().len(),
        View::Dag => state.group.as_ref().map_or(0, |g| g.dag.rows().len()),
        View::Task => 0,
        View::Workgroups => state.visible_workgroups().len(),
        View::Events => state.visible_events().len(),
    }
}

/// Moves the current view's selection by `delta` rows.
/// Rows a page key moves by: those the focused list or pane shows (the
/// task view's panes are shorter than the screen).
fn page_rows(state: &AppState) -> usize {
    let rows = match (state.view, state.task.as_ref().map(|t| t.pane)) {
        (View::Task, Some(TaskPane::Content)) => crate::view::task::content_view_rows(state),
        (View::Task, Some(TaskPane::Links)) => crate::view::task::links_view_rows(state),
        (View::Dag, _) => crate::view::dag::tree_rows(state),
        _ => state.page(),
    };
    rows.max(1)
}

fn move_selection(state: &mut AppState, delta: isize) {
    let len = list_len(state);
    let page = page_rows(state);
    match state.view {
        View::Groups => state.groups_list.step(len, delta, page),
        View::Dag => {
            if let Some(g) = &mut state.group {
                g.list.step(len, delta, page);
                g.selected_node = g.dag.rows().get(g.list.selected).map(|r| r.node);
            }
        }
        View::Task => {
            let links = state.detail_links().len();
            // The bottom is the last screenful, not the last row alone.
            let max_scroll = state
                .detail_task()
                .map(|t| {
                    let width = crate::view::task::content_width(state.size.0);
                    crate::view::task::content_rows(t, &state.theme, state.now, width).len()
                })
                .unwrap_or(0)
                .saturating_sub(crate::view::task::content_view_rows(state));
            if let Some(t) = &mut state.task {
                match t.pane {
                    TaskPane::Content => {
                        let s = (t.scroll as isize + delta).max(0) as usize;
                        t.scroll = s.min(max_scroll);
                    }
                    TaskPane::Links => t.links.step(links, delta, page),
                }
            }
        }
        View::Workgroups => state.workgroups_list.step(len, delta, page),
        View::Events => state.events_list.step(len, delta, page),
    }
}

/// A key the keymap bound to `cmd` in the current view.
fn on_command(state: &mut AppState, cmd: Command) -> Vec<Effect> {
    let page = page_rows(state) as isize;
    match cmd {
        Command::Help => {
            state.help = true;
            vec![]
        }
        Command::Quit => {
            state.quit = true;
            vec![Effect::Quit]
        }
        Command::CommandMode => {
            state.input = Input::Command(String::new());
            vec![]
        }
        Command::Filter => {
            if state.view != View::Task {
                state.input = Input::Filter(current_filter(state).to_string());
            }
            vec![]
        }
        Command::Back => {
            let filtered = match state.view {
                View::Dag => state
                    .group
                    .as_ref()
                    .is_some_and(|g| g.dag.filter().active()),
                _ => !current_filter(state).is_empty(),
            };
            if filtered {
                if let Some(g) = state.group.as_mut().filter(|_| state.view == View::Dag) {
                    g.filter_by(DagFilter::default());
                } else {
                    set_filter(state, String::new());
                }
                state.say("filter cleared");
            } else {
                state.back();
            }
            vec![]
        }
        Command::Up => {
            move_selection(state, -1);
            vec![]
        }
        Command::Down => {
            move_selection(state, 1);
            vec![]
        }
        Command::PageUp => {
            move_selection(state, -page);
            vec![]
        }
        Command::PageDown => {
            move_selection(state, page);
            vec![]
        }
        Command::Top => {
            move_selection(state, isize::MIN / 2);
            vec![]
        }
        Command::Bottom => {
            move_selection(state, isize::MAX / 2);
            vec![]
        }
        Command::NextPane => {
            if let Some(t) = &mut state.task {
                if state.view == View::Task {
                    t.pane = match t.pane {
                        TaskPane::Content => TaskPane::Links,
                        TaskPane::Links => TaskPane::Content,
                    };
                }
            }
            vec![]
        }
        Command::Refresh => {
            state.say("refreshing");
            state.refetch_all()
        }
        Command::Groups => {
            state.go(View::Groups);
            vec![]
        }
        Command::Workgroups => {
            state.go(View::Workgroups);
            vec![Effect::FetchWorkgroups]
        }
        Command::Events => {
            state.go(View::Events);
            vec![]
        }
        Command::Open => on_open(state),
        Command::Sort => {
            // The selected group stays selected in its new place.
            let anchor = state.group_anchor();
            state.groups_sort = state.groups_sort.next();
            state.reselect_group(anchor);
            // Beyond the loaded page, the daemon sorts (at the next tick).
            if state.groups_need_search() {
                state.groups_dirty = true;
            }
            vec![]
        }
        Command::ToggleExpand => {
            if let Some(g) = &mut state.group {
                if let Some(r) = g.dag.rows().get(g.list.selected).copied() {
                    if r.kind == RowKind::Primary && r.has_children && !g.dag.filter().active() {
                        g.dag.toggle(r.node);
                    }
                }
            }
            vec![]
        }
        Command::ExpandAll => {
            if let Some(g) = &mut state.group {
                g.dag.expand_all();
            }
            vec![]
        }
        Command::CollapseAll => {
            if let Some(g) = &mut state.group {
                g.dag.collapse_all();
            }
            vec![]
        }
        Command::StatusFilter => {
            if let Some(g) = &mut state.group {
                let mut f = g.dag.filter().clone();
                f.status = match f.status {
                    None => Some(TaskStatus::ALL[0]),
                    Some(s) => TaskStatus::ALL
                        .iter()
                        .position(|x| *x == s)
                        .and_then(|i| TaskStatus::ALL.get(i + 1).copied()),
                };
                let label = f.status.map_or("all".to_string(), |s| s.to_string());
                let mut said = format!("status filter: {label}");
                if g.filter_by(f) {
                    said = format!("{said}; {BULK_ENDED}");
                }
                state.say(said);
            }
            vec![]
        }
        Command::Lineage => {
            if let Some(g) = &mut state.group {
                let mut f = g.dag.filter().clone();
                if f.lineage.is_some() {
                    f.lineage = None;
                } else if let Some(t) = g.selected_task() {
                    f.lineage = Some(t.id.clone());
                }
                if g.filter_by(f) {
                    state.say(BULK_ENDED);
                }
            }
            vec![]
        }
        Command::BulkTarget => {
            if let Some(g) = &mut state.group {
                if g.dag.filter().active() {
                    g.bulk = !g.bulk;
                    let msg = if g.bulk {
                        "actions now apply to every filtered task"
                    } else {
                        "actions now apply to the selected task"
                    };
                    state.say(msg);
                } else {
                    state.fail("bulk actions need a filter (/, f or u) first");
                }
            }
            vec![]
        }
        Command::Limit => on_limit(state),
        Command::Schedule => on_schedule(state),
        Command::MineOnly => {
            state.events_mine_only = !state.events_mine_only;
            state.events_list = ListPos::default();
            vec![]
        }
        Command::Pause
        | Command::Resume
        | Command::Reset
        | Command::Retry
        | Command::Delete
        | Command::Cancel => match Verb::from_command(cmd) {
            Some(v) => on_action(state, v),
            None => vec![],
        },
    }
}

/// Opens the schedule prompt for the selected group (groups view) or the
/// open one, with its current schedule to edit.
fn on_schedule(state: &mut AppState) -> Vec<Effect> {
    if state.read_only {
        state.fail("read-only: actions are disabled");
        return vec![];
    }
    let group = match state.view {
        View::Groups => state.selected_group().map(|g| g.group.clone()),
        View::Dag | View::Task => state.group.as_ref().map(|g| g.view.group.clone()),
        View::Workgroups | View::Events => None,
    };
    let Some(g) = group else {
        return vec![];
    };
    state.input = Input::Schedule {
        name: group_name(&g).to_string(),
        group_id: g.id,
        text: g.schedule.unwrap_or_default(),
    };
    vec![]
}

/// Opens the limits prompt for the selected workgroup, with its current
/// limits to edit.
fn on_limit(state: &mut AppState) -> Vec<Effect> {
    if state.read_only {
        state.fail("read-only: actions are disabled");
        return vec![];
    }
    if state.view != View::Workgroups {
        return vec![];
    }
    let Some(w) = state.selected_workgroup() else {
        return vec![];
    };
    let limits = w.workgroup.limits;
    state.input = Input::Limits {
        workgroup: w.workgroup.name.clone(),
        text: if limits.is_empty() {
            String::new()
        } else {
            limits.to_string()
        },
    };
    vec![]
}

/// Enter: opens what is selected (a group, a task, a linked task).
fn on_open(state: &mut AppState) -> Vec<Effect> {
    match state.view {
        View::Groups => {
            let id = state.selected_group().map(|g| g.group.id.clone());
            match id {
                Some(id) => state.open_group(&id),
                None => vec![],
            }
        }
        View::Dag => {
            let page = state.page();
            let Some(g) = &mut state.group else {
                return vec![];
            };
            let Some(row) = g.dag.rows().get(g.list.selected).copied() else {
                return vec![];
            };
            if row.kind == RowKind::Ref {
                // Jump to where the task is expanded.
                g.dag.reveal(row.node);
                g.dag.settle();
                if let Some(r) = g.dag.primary_row(row.node) {
                    g.list.selected = r;
                    g.list.follow(page);
                    g.selected_node = Some(row.node);
                }
                return vec![];
            }
            if let Some(id) = g.dag.task(row.node).map(|t| t.id.clone()) {
                state.open_task(&id);
            }
            vec![]
        }
        View::Task => {
            let Some(t) = &state.task else {
                return vec![];
            };
            if t.pane != TaskPane::Links {
                return vec![];
            }
            let sel = t.links.selected;
            if let Some((_, id)) = state.detail_links().get(sel).cloned() {
                if state
                    .group
                    .as_ref()
                    .is_some_and(|g| g.dag.get(&id).is_some())
                {
                    // Replace, don't stack: esc goes back to the tree.
                    state.task = Some(TaskDetail {
                        id,
                        scroll: 0,
                        pane: TaskPane::Links,
                        links: ListPos::default(),
                    });
                } else {
                    state.fail(format!("task {} is not in this group", short_name(&id)));
                }
            }
            vec![]
        }
        View::Workgroups | View::Events => vec![],
    }
}
