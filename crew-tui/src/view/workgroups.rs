//! Workgroups: pause countdowns, the tasks waiting on each, calls in
//! flight and the operator's limits.

use super::{
    clean, filter_piece, fit, fit_middle, fit_right, fitted_title_line, heading, list_areas,
    marker, select_line, Piece,
};
use crate::app::state::AppState;
use crate::theme::fmt_duration;
use crew_core::wire::WorkgroupView;
use crew_core::WorkgroupLimits;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Draws the view.
pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    let (t, h, l) = list_areas(area);
    let wgs = state.visible_workgroups();
    let mut title = vec![Piece::whole(Span::styled(
        format!("Workgroups ({})", wgs.len()),
        th.title(),
    ))];
    title.extend(filter_piece(th, &state.workgroups_filter));
    let title = fitted_title_line(th, usize::from(t.width), title, &[1]);
    frame.render_widget(Paragraph::new(title), t);
    let wide = area.width >= 120;
    let (name_w, state_w, count_w) = if wide { (40, 30, 8) } else { (16, 28, 7) };
    // The rate column takes what is left (12 columns at 80).
    let used = 2 + name_w + 2 + state_w + 2 + count_w + 2 + count_w + 2;
    let rate_w = (area.width as usize).saturating_sub(used).clamp(4, 30);
    frame.render_widget(
        Paragraph::new(heading(
            th,
            format!(
                "  {}  {}  {}  {}  {}",
                fit(th, "NAME", name_w),
                fit(th, "STATE", state_w),
                fit_right(th, "WAITING", count_w),
                fit_right(th, "RUNNING", count_w),
                fit(th, "RATE", rate_w)
            ),
        )),
        h,
    );
    let height = l.height as usize;
    let off = state.workgroups_list.window(wgs.len(), height);
    let lines: Vec<Line> = wgs
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, w)| {
            let sel = i == state.workgroups_list.selected;
            let wg = &w.workgroup;
            let pending = state.pending_on(&format!("wg:{}", wg.name));
            let (text, style) = match (pending, wg.paused_until) {
                (Some(v), _) => (format!("{}…", v.ing()), th.warn()),
                (None, Some(until)) if until > state.now => {
                    let left = fmt_duration(state.now.seconds_until(&until));
                    let who = if wg.paused_by_operator {
                        "by operator"
                    } else {
                        "rate limit"
                    };
                    (
                        format!("{} PAUSED {left} ({who})", th.pick("‖", "=")),
                        th.warn(),
                    )
                }
                _ => (format!("{} active", th.pick("○", "o")), th.ok()),
            };
            let line = Line::from(vec![
                marker(th, sel),
                Span::raw(fit_middle(th, &clean(th, &wg.name), name_w)),
                Span::raw("  "),
                Span::styled(fit(th, &text, state_w), style),
                Span::raw("  "),
                Span::raw(fit_right(th, &w.incomplete_tasks.to_string(), count_w)),
                Span::raw("  "),
                Span::raw(fit_right(th, &running(w), count_w)),
                Span::raw("  "),
                Span::styled(fit(th, &rate(&wg.limits), rate_w), th.dim()),
            ]);
            select_line(th, line, sel)
        })
        .collect();
    if lines.is_empty() {
        frame.render_widget(Paragraph::new(Line::styled("  no workgroups", th.dim())), l);
    } else {
        frame.render_widget(Paragraph::new(lines), l);
    }
}

/// Calls in flight, over the concurrency limit when there is one (`3/4`).
fn running(w: &WorkgroupView) -> String {
    match w.workgroup.limits.max_concurrency {
        Some(max) => format!("{}/{max}", w.in_flight),
        None => w.in_flight.to_string(),
    }
}

/// The rate limit (`2/s`, `0.5/s burst 3`), or `-`.
fn rate(l: &WorkgroupLimits) -> String {
    match (l.max_rate, l.burst) {
        (None, _) => "-".to_string(),
        (Some(r), None) => format!("{r}/s"),
        (Some(r), Some(b)) => format!("{r}/s burst {b}"),
    }
}
