//! Workgroups: pause countdowns and the tasks waiting on each.

use super::{clean, fit, fit_right, heading, list_areas, marker, select_line, title_line};
use crate::app::state::AppState;
use crate::theme::fmt_duration;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Draws the view.
pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    let (t, h, l) = list_areas(area);
    let wgs = state.visible_workgroups();
    let mut title = vec![Span::styled(
        format!("Workgroups ({})", wgs.len()),
        th.title(),
    )];
    if !state.workgroups_filter.is_empty() {
        title.push(Span::raw(format!(
            "  /{}",
            clean(th, &state.workgroups_filter)
        )));
    }
    frame.render_widget(Paragraph::new(title_line(th, title)), t);
    let name_w = if area.width >= 120 { 40 } else { 28 };
    frame.render_widget(
        Paragraph::new(heading(
            th,
            format!(
                "  {}  {}  {}",
                fit(th, "NAME", name_w),
                fit(th, "STATE", 30),
                fit_right(th, "WAITING", 8)
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
                Span::raw(fit(th, &clean(th, &wg.name), name_w)),
                Span::raw("  "),
                Span::styled(fit(th, &text, 30), style),
                Span::raw("  "),
                Span::raw(fit_right(th, &w.incomplete_tasks.to_string(), 8)),
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
