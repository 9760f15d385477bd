//! A group's tasks as a tree. Only the visible rows are built, so a frame
//! costs the same for 100 tasks and for 100 000.

use super::{
    clean, cut, fit, fit_middle, fit_right, fitted_title_line, heading, list_areas, marker,
    select_line, Piece, FILTER_SHORT,
};
use crate::app::action::tasks;
use crate::app::dag::RowKind;
use crate::app::state::{group_name, task_status, AppState, OpenGroup};
use crate::theme::{fmt_duration, Theme};
use crew_core::{Task, TaskStatus, Timestamp};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// The WHEN column: how long a running task's attempt has been in flight
/// (a call stuck at a worker shows here first), or when a delayed task may
/// run: its `runAfter`, or its workgroup's pause.
pub fn when_text(state: &AppState, t: &Task, now: Timestamp) -> Option<String> {
    match task_status(t) {
        TaskStatus::Running => running_text(t, now),
        TaskStatus::Delayed => delay_text(state, t, now),
        _ => None,
    }
}

/// How long the attempt in flight has run: `for 4m12s`.
fn running_text(t: &Task, now: Timestamp) -> Option<String> {
    let attempt = t.attempt_log.last().filter(|a| a.finished_at.is_none())?;
    Some(format!(
        "for {}",
        fmt_duration(attempt.started_at.seconds_until(&now))
    ))
}

/// When a delayed task may run: its `runAfter`, or its workgroup's pause.
fn delay_text(state: &AppState, t: &Task, now: Timestamp) -> Option<String> {
    if t.is_delayed_at(now) {
        return Some(format!(
            "in {}",
            fmt_duration(now.seconds_until(&t.run_after))
        ));
    }
    let wg = state
        .workgroups
        .iter()
        .find(|w| w.workgroup.name == t.workgroup)?;
    let until = wg.workgroup.paused_until.filter(|u| *u > now)?;
    Some(format!("wg {}", fmt_duration(now.seconds_until(&until))))
}

fn status_span(th: &Theme, t: &Task) -> Span<'static> {
    let s = task_status(t);
    Span::styled(format!("{} ", th.status_glyph(s)), th.status_style(s))
}

/// Draws the view.
pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    let Some(g) = &state.group else {
        frame.render_widget(Paragraph::new(" no group open"), area);
        return;
    };
    let (tree_area, preview) = split(area);
    draw_tree(frame, tree_area, state, g);
    if let Some(p) = preview {
        let block = super::boxed(th, " Selected ".into());
        let inner = block.inner(p);
        frame.render_widget(block, p);
        if let Some(t) = g.selected_task() {
            let lines = super::task::content_lines(t, th, state.now);
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        }
    }
}

/// The tree's area and, on a wide screen, the selected task's beside it.
fn split(area: Rect) -> (Rect, Option<Rect>) {
    if area.width >= 120 {
        let [a, b] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
            .areas(area);
        (a, Some(b))
    } else {
        (area, None)
    }
}

/// Rows of tasks the tree shows at once (a page there): the body less the
/// title, the column heading and a refused schedule's banner.
pub fn tree_rows(state: &AppState) -> usize {
    let body = Rect::new(0, 0, state.size.0, super::body_height(state));
    let (_, _, list) = list_areas(split(body).0);
    let banner = state
        .group
        .as_ref()
        .map_or(0, |g| banner_rows(state, g, list));
    usize::from(list.height.saturating_sub(banner))
}

/// Columns a group's name keeps in the tree's title: at first, and once
/// every marker is as short as it goes.
const NAME_FLOORS: [usize; 2] = [8, 4];

fn draw_tree(frame: &mut Frame, area: Rect, state: &AppState, g: &OpenGroup) {
    let th = &state.theme;
    let (t, h, l) = list_areas(area);
    frame.render_widget(Paragraph::new(tree_title(state, g, t.width)), t);
    let (h, l) = refusal_banner(frame, h, l, state, g);

    let w = area.width as usize;
    let worker_w = if w >= 100 { 16 } else { 12 };
    let right_w = 1 + worker_w + 1 + 4 + 1 + 10;
    let left_w = w.saturating_sub(2 + right_w).max(10);
    frame.render_widget(
        Paragraph::new(heading(
            th,
            format!(
                "  {} {} {} {}",
                fit(th, "TASK", left_w),
                fit(th, "WORKER", worker_w),
                fit_right(th, "LEFT", 4),
                fit(th, "WHEN", 10)
            ),
        )),
        h,
    );

    let rows = g.dag.rows();
    let height = l.height as usize;
    let off = g.list.window(rows.len(), height);
    let max_indent = left_w / 3;
    let lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .filter_map(|(i, r)| {
            let t = g.dag.task(r.node)?;
            let sel = i == g.list.selected;
            let indent = (r.depth as usize * 2).min(max_indent);
            let fold = if r.kind == RowKind::Ref {
                th.pick("↪ ", "->")
            } else if !r.has_children {
                "  "
            } else if r.expanded {
                th.pick("▾ ", "- ")
            } else {
                th.pick("▸ ", "+ ")
            };
            let name = clean(th, if t.name.is_empty() { &t.id } else { &t.name });
            let name_w = left_w.saturating_sub(indent + 4);
            // An id (128 characters at most) is cut in its middle: ids
            // made of a shared prefix and a number differ at their end.
            let fit_name = |s: &str, w: usize| {
                if t.name.is_empty() {
                    fit_middle(th, s, w)
                } else {
                    fit(th, s, w)
                }
            };
            let mut spans = vec![
                marker(th, sel),
                Span::raw(" ".repeat(indent)),
                Span::styled(fold, th.dim()),
                status_span(th, t),
            ];
            if r.kind == RowKind::Ref {
                spans.push(Span::styled(
                    fit_name(&format!("{name} {}", "(ref)"), name_w),
                    th.dim(),
                ));
            } else if r.context {
                spans.push(Span::styled(fit_name(&name, name_w), th.dim()));
            } else {
                spans.push(Span::raw(fit_name(&name, name_w)));
            }
            let when = match state.pending_on(&format!("task:{}", t.id)) {
                Some(v) => format!("{}…", v.ing()),
                None => when_text(state, t, state.now).unwrap_or_default(),
            };
            let attempts_left = if t.is_complete {
                String::new()
            } else {
                t.remaining_attempts.to_string()
            };
            spans.extend([
                Span::raw(" "),
                Span::styled(fit(th, &clean(th, &t.worker), worker_w), th.dim()),
                Span::raw(" "),
                // Attempts left: what matters of a task still to run.
                Span::raw(fit_right(th, &attempts_left, 4)),
                Span::raw(" "),
                Span::styled(fit(th, &when, 10), th.fg(ratatui::style::Color::Magenta)),
            ]);
            Some(select_line(th, Line::from(spans), sel))
        })
        .collect();
    if lines.is_empty() && !g.loading {
        let msg = if g.dag.filter().active() {
            "  no task matches the filter"
        } else {
            "  no tasks"
        };
        frame.render_widget(Paragraph::new(Line::styled(msg, th.dim())), l);
    } else {
        frame.render_widget(Paragraph::new(lines), l);
    }
}

/// A recurring group whose due reset was refused stopped recurring until
/// an operator changes its shape: the reason goes under the title (up to
/// two rows, when the list has room for rows below it), moving the
/// heading and the list down. Gives back their new areas.
/// The refused schedule's warning, if the daemon refused one.
fn banner_span(state: &AppState, g: &OpenGroup) -> Option<Span<'static>> {
    let th = &state.theme;
    let reason = g.view.group.schedule_refused.as_ref()?;
    Some(Span::styled(
        format!(
            "{} schedule refused: {}",
            th.pick("⚠", "!"),
            clean(th, reason)
        ),
        th.error(),
    ))
}

/// Rows the refused schedule's banner takes above a tree `list` area: none
/// without one or on a screen too small, else one or two (it wraps).
fn banner_rows(state: &AppState, g: &OpenGroup, list: Rect) -> u16 {
    let Some(span) = banner_span(state, g) else {
        return 0;
    };
    if list.height < 4 || list.width < 10 {
        0
    } else if span.width() <= usize::from(list.width) {
        1
    } else {
        2
    }
}

fn refusal_banner(
    frame: &mut Frame,
    heading: Rect,
    list: Rect,
    state: &AppState,
    g: &OpenGroup,
) -> (Rect, Rect) {
    let Some(span) = banner_span(state, g) else {
        return (heading, list);
    };
    let rows = banner_rows(state, g, list);
    if rows == 0 {
        return (heading, list);
    }
    let banner = Rect {
        height: rows,
        ..heading
    };
    frame.render_widget(Paragraph::new(span).wrap(Wrap { trim: true }), banner);
    let heading = Rect {
        y: heading.y + rows,
        ..heading
    };
    let list = Rect {
        y: list.y + rows,
        height: list.height - rows,
        ..list
    };
    (heading, list)
}

/// The tree's title, fitted to `width` columns: the name, the size, the
/// group's state, its schedule, the counts, then the filters and warnings.
/// When space is short the name is cut first and the schedule goes, then
/// the markers shorten, so that the filters, the bulk warning and a
/// failed load stay in sight (they came last and were cut at the edge).
fn tree_title(state: &AppState, g: &OpenGroup, width: u16) -> Line<'static> {
    let th = &state.theme;
    let f = g.dag.filter();
    let warn = |text: String| vec![Span::styled(text, th.warn())];
    let mut pieces = vec![];
    let mut add = |p: Piece| {
        pieces.push(p);
        pieces.len() - 1
    };
    let name = add(Piece::Flex(
        clean(th, group_name(&g.view.group)),
        th.title(),
        NAME_FLOORS.to_vec(),
    ));
    let n = g.dag.len();
    let size = add(Piece::Forms(vec![
        vec![Span::styled(format!(" ({}) ", tasks(n)), th.title())],
        vec![Span::styled(format!(" ({n}) "), th.title())],
    ]));
    if let Some(v) = state.pending_on(&format!("group:{}", g.view.group.id)) {
        add(Piece::whole(Span::styled(
            format!("{}… ", v.ing()),
            th.warn(),
        )));
    } else if g.view.group.is_paused {
        add(Piece::whole(Span::styled(
            format!("{} PAUSED ", th.status_glyph(TaskStatus::Paused)),
            th.warn(),
        )));
    }
    // A recurring group: when it resets itself (cron, UTC).
    let cron = g.view.group.schedule.as_ref().map(|cron| {
        add(Piece::Forms(vec![
            vec![Span::styled(
                format!("{} {} UTC ", th.pick("⟳", "cron"), clean(th, cron)),
                th.dim(),
            )],
            vec![],
        ]))
    });
    // Short, the counts lose their blanks; last of all they go (the rows
    // show each task's status).
    let counts = super::groups::count_spans(th, &g.view.counts);
    let packed: Vec<Span<'static>> = counts
        .iter()
        .map(|s| Span::styled(s.content.trim_end().to_string(), s.style))
        .collect();
    let counts = add(Piece::Forms(vec![counts, packed, vec![]]));
    if let Some(s) = f.status {
        add(Piece::Forms(vec![warn(format!(" [status {s}]"))]));
    }
    let text = (!f.text.is_empty()).then(|| {
        let text = clean(th, &f.text);
        add(Piece::Forms(vec![
            warn(format!(" [/{text}]")),
            warn(format!(" [/{}]", cut(th, &text, FILTER_SHORT))),
        ]))
    });
    let lineage = f.lineage.as_ref().map(|id| {
        let id = clean(th, id);
        add(Piece::Forms(vec![
            warn(format!(" [lineage {id}]")),
            warn(format!(" [lineage {}]", cut(th, &id, FILTER_SHORT))),
        ]))
    });
    let bulk = (g.bulk && f.active()).then(|| {
        let n = g.bulk_ids().len();
        add(Piece::Forms(vec![
            vec![Span::styled(format!(" [BULK: {}]", tasks(n)), th.error())],
            vec![Span::styled(format!(" [BULK: {n}]"), th.error())],
        ]))
    });
    let mut stale = None;
    if g.loading {
        add(Piece::whole(Span::styled(" loading…", th.dim())));
    } else if g.stale {
        stale = Some(add(Piece::Forms(vec![
            vec![Span::styled(" [not current: loading failed]", th.error())],
            vec![Span::styled(" [not current]", th.error())],
        ])));
    }
    // What gives way first: the schedule, the words, the filters' text,
    // the name down to its last floor, the blanks of the counts, then the
    // counts themselves: never a warning.
    let steps: Vec<usize> = [
        cron,
        Some(size),
        stale,
        text,
        lineage,
        Some(name),
        Some(counts),
        bulk,
        Some(counts),
    ]
    .into_iter()
    .flatten()
    .collect();
    fitted_title_line(th, usize::from(width), pieces, &steps)
}
