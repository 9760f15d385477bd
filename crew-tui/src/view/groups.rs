//! The groups list: name, progress, counts by status, paused, age.

use super::{
    clean, filter_piece, fit, fit_middle, fit_right, fitted_title_line, heading, list_areas,
    marker, select_line, Piece,
};
use crate::app::state::{group_name, AppState};
use crate::theme::{fmt_age, Theme};
use crew_core::wire::{StatusCounts, TaskGroupView};
use crew_core::TaskStatus;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// A text progress bar `width` cells wide, full only at 100 %.
pub fn bar(theme: &Theme, percent: f64, width: usize) -> String {
    let p = if percent.is_finite() {
        percent.clamp(0.0, 100.0)
    } else {
        0.0
    };
    // Rounded down: a group with a task left never looks finished.
    let full = ((p / 100.0) * width as f64).floor() as usize;
    let (on, off) = (theme.pick("█", "#"), theme.pick("░", "."));
    format!("{}{}", on.repeat(full), off.repeat(width - full.min(width)))
}

/// The non-zero counts as glyph + number spans.
pub fn count_spans(theme: &Theme, c: &StatusCounts) -> Vec<Span<'static>> {
    let mut out = Vec::new();
    for s in TaskStatus::ALL {
        let n = c.get(s);
        if n == 0 {
            continue;
        }
        out.push(Span::styled(
            format!("{}{n} ", theme.status_glyph(s)),
            theme.status_style(s),
        ));
    }
    out
}

/// Draws the view.
pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    let (t, h, l) = list_areas(area);
    let groups = state.visible_groups();
    // More than a page: say how many the daemon has (`/` searches them
    // and `s` sorts them), and, until the page in the new order arrives,
    // that the sort orders the page only.
    let truncated = state.groups_total > state.groups.len() as u64;
    let count = if truncated {
        format!("{} of {}", groups.len(), state.groups_total)
    } else {
        groups.len().to_string()
    };
    frame.render_widget(Paragraph::new(title(state, count, truncated, t.width)), t);

    let w = area.width as usize;
    let name_w = if w >= 120 { 36 } else { 22 };
    let bar_w = if w >= 120 { 20 } else { 10 };
    frame.render_widget(
        Paragraph::new(heading(
            th,
            format!(
                "  {} {} {}  {}  {}",
                fit(th, "NAME", name_w),
                fit(th, "PROGRESS", bar_w + 5),
                fit(th, "STATE", 8),
                fit_right(th, "AGE", 4),
                "COUNTS"
            ),
        )),
        h,
    );

    let height = l.height as usize;
    let off = state.groups_list.window(groups.len(), height);
    let lines: Vec<Line> = groups
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, g)| {
            let sel = i == state.groups_list.selected;
            let pending = state.pending_on(&format!("group:{}", g.group.id));
            let (st, st_style) = match (pending, g.group.is_paused) {
                (Some(v), _) => (format!("{}…", v.ing()), th.warn()),
                (None, true) => (
                    format!("{} PAUSED", th.status_glyph(TaskStatus::Paused)),
                    th.warn(),
                ),
                (None, false) if g.counts.failed > 0 => (
                    format!("{} FAILED", th.status_glyph(TaskStatus::Failed)),
                    th.error(),
                ),
                (None, false) if g.counts.total() > 0 && g.counts.completed == g.counts.total() => {
                    (
                        format!("{} DONE", th.status_glyph(TaskStatus::Completed)),
                        th.ok(),
                    )
                }
                (None, false) => (
                    format!("{} active", th.status_glyph(TaskStatus::Running)),
                    Default::default(),
                ),
            };
            let age = fmt_age(g.group.created_at.seconds_until(&state.now));
            let mut spans = vec![
                marker(th, sel),
                Span::raw(fit_middle(th, &group_label(th, g), name_w)),
                Span::raw(" "),
                Span::styled(bar(th, g.completed_percent, bar_w), th.ok()),
                Span::raw(format!("{:>4}% ", g.counts.whole_percent())),
                Span::styled(fit(th, &st, 8), st_style),
                Span::raw("  "),
                Span::raw(fit_right(th, &age, 4)),
                Span::raw("  "),
            ];
            spans.extend(count_spans(th, &g.counts));
            select_line(th, Line::from(spans), sel)
        })
        .collect();
    if lines.is_empty() && state.groups_loaded {
        frame.render_widget(Paragraph::new(Line::styled("  no groups", th.dim())), l);
    } else {
        frame.render_widget(Paragraph::new(lines), l);
    }
}

/// The title, fitted to `width` columns: the count, the sort, the filter
/// and the loading marker. Short of room, the sort's caveat (a page sorted
/// here until the daemon's page in that order arrives) shortens, then the
/// filter's text, then the caveat goes: the filter always shows.
fn title(state: &AppState, count: String, truncated: bool, width: u16) -> Line<'static> {
    let th = &state.theme;
    let sort = state.groups_sort.as_str();
    let mut pieces = vec![Piece::whole(Span::styled(
        format!("Groups ({count}) "),
        th.title(),
    ))];
    let caveat = if truncated && state.groups_sort != state.groups_page_sort {
        let first = state.groups.len();
        let by = state.groups_page_sort.as_str();
        Piece::Forms(vec![
            vec![Span::styled(
                format!("sort: {sort}, among the first {first} by {by}"),
                th.title(),
            )],
            vec![Span::styled(
                format!("sort: {sort}, of the first {first}"),
                th.title(),
            )],
            vec![Span::styled(format!("sort: {sort}*"), th.title())],
        ])
    } else {
        Piece::whole(Span::styled(format!("sort: {sort}"), th.title()))
    };
    pieces.push(caveat);
    let sort_piece = pieces.len() - 1;
    let mut steps = vec![sort_piece];
    if let Some(p) = filter_piece(th, &state.groups_filter) {
        pieces.push(p);
        steps.push(pieces.len() - 1);
    }
    steps.push(sort_piece);
    if !state.groups_loaded {
        pieces.push(Piece::whole(Span::styled("  loading…", th.dim())));
    }
    fitted_title_line(th, usize::from(width), pieces, &steps)
}

/// A group's name, marked when it resets itself on a schedule (and when
/// its schedule's reset was refused: it stopped recurring).
fn group_label(th: &Theme, g: &TaskGroupView) -> String {
    let name = clean(th, group_name(&g.group));
    match (&g.group.schedule, &g.group.schedule_refused) {
        (Some(_), Some(_)) => format!("{} {name}", th.pick("⟳✗", "~!")),
        (Some(_), None) => format!("{} {name}", th.pick("⟳", "~")),
        (None, _) => name,
    }
}
