//! The live event log, newest first; the operator's own actions marked.

use super::{
    clean, filter_piece, fit, fitted_title_line, heading, list_areas, marker, select_line, Piece,
};
use crate::app::state::{AppState, LogEntry};
use crate::theme::Theme;
use crew_core::TaskStatus;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

/// Width of a row before its DETAIL column, SUBJECT and SEQ excluded.
const ROW_PREFIX: usize = 4 + 9 + 18 + 1;

/// The SEQ column's narrowest width.
const SEQ_MIN: usize = 6;

/// The SEQ column's width: the widest sequence number listed (a daemon
/// past 999,999 events cut every one to `17833…`).
fn seq_width(evs: &[&LogEntry]) -> usize {
    evs.iter()
        .map(|e| e.seq.checked_ilog10().map_or(1, |d| d as usize + 1))
        .max()
        .unwrap_or(0)
        .max(SEQ_MIN)
}

/// Most rows the selected entry's whole text takes below the list.
const SELECTED_ROWS_MAX: usize = 4;

/// An entry's subject as its row shows it, before it is cut to fit.
fn shown_subject(th: &Theme, e: &LogEntry) -> String {
    if e.mine {
        "you".to_string()
    } else {
        clean(th, &e.subject)
    }
}

/// An entry's detail as its row shows it: a task's status with its glyph.
fn shown_detail(th: &Theme, e: &LogEntry) -> String {
    match TaskStatus::parse(&e.detail) {
        Some(s) => format!("{} {}", th.status_glyph(s), e.detail),
        None => clean(th, &e.detail),
    }
}

/// Draws the view.
pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    let (t, h, l) = list_areas(area);
    let evs = state.visible_events();
    // The last sequence number this console saw: none before the first
    // live event (a 0 read as the daemon's log being empty).
    let seen = if state.last_seq > 0 {
        format!(" last seq {}", state.last_seq)
    } else {
        String::new()
    };
    // Short of room, the last seq goes, then the filter's text shortens.
    let mut title = vec![
        Piece::whole(Span::styled(format!("Events ({})", evs.len()), th.title())),
        Piece::Forms(vec![vec![Span::styled(seen, th.title())], vec![]]),
    ];
    if state.events_mine_only {
        title.push(Piece::whole(Span::styled("  mine only", th.warn())));
    }
    title.extend(filter_piece(th, &state.events_filter));
    let filter = title.len() - 1;
    let title = fitted_title_line(th, usize::from(t.width), title, &[1, filter]);
    frame.render_widget(Paragraph::new(title), t);
    let subj_w = if area.width >= 120 { 40 } else { 22 };
    let seq_w = seq_width(&evs);
    frame.render_widget(
        Paragraph::new(heading(
            th,
            format!(
                "    {} {} {} {} {}",
                fit(th, "TIME", 8),
                fit(th, "SEQ", seq_w),
                fit(th, "TYPE", 17),
                fit(th, "SUBJECT", subj_w),
                "DETAIL"
            ),
        )),
        h,
    );
    // The selected entry's subject and detail, whole, below the list when
    // its row cuts them (at 80 columns DETAIL has some 20): an audit
    // entry's filter, an error's reason.
    // Measured as the row shows them: escaped text can be much wider than
    // the raw one.
    let selected = evs.get(state.events_list.selected).and_then(|e| {
        let (subject, detail) = (shown_subject(th, e), shown_detail(th, e));
        let cut = subject.width() > subj_w
            || ROW_PREFIX + seq_w + 1 + subj_w + detail.width() > usize::from(area.width);
        let raw = if e.mine { "you" } else { e.subject.as_str() };
        cut.then(|| clean(th, &format!("{raw}: {}", e.detail)))
    });
    let l = match &selected {
        Some(text) => {
            let width = usize::from(area.width.saturating_sub(2)).max(1);
            let rows = (text.width().div_ceil(width)).clamp(1, SELECTED_ROWS_MAX) as u16;
            let [list, below] =
                Layout::vertical([Constraint::Min(1), Constraint::Length(rows)]).areas(l);
            frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::raw("  "),
                    Span::styled(text.clone(), th.dim()),
                ]))
                .wrap(Wrap { trim: false }),
                below,
            );
            list
        }
        None => l,
    };
    let height = l.height as usize;
    let off = state.events_list.window(evs.len(), height);
    let lines: Vec<Line> = evs
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, e)| {
            let sel = i == state.events_list.selected;
            let mine = if e.mine {
                Span::styled(format!("{} ", th.pick("★", "*")), th.warn())
            } else {
                Span::raw("  ")
            };
            let time = e.at.as_datetime().format("%H:%M:%S").to_string();
            let seq = if e.seq == 0 {
                "-".to_string()
            } else {
                e.seq.to_string()
            };
            let detail_style = if e.error {
                th.error()
            } else if let Some(s) = TaskStatus::parse(&e.detail) {
                th.status_style(s)
            } else {
                Default::default()
            };
            let detail = shown_detail(th, e);
            let subject = shown_subject(th, e);
            let line = Line::from(vec![
                marker(th, sel),
                mine,
                Span::styled(format!("{time} "), th.dim()),
                Span::raw(fit(th, &seq, seq_w)),
                Span::raw(" "),
                Span::raw(fit(th, &e.kind, 17)),
                Span::raw(" "),
                Span::raw(fit(th, &subject, subj_w)),
                Span::raw(" "),
                Span::styled(detail, detail_style),
            ]);
            select_line(th, line, sel)
        })
        .collect();
    if lines.is_empty() {
        frame.render_widget(Paragraph::new(Line::styled("  no events yet", th.dim())), l);
    } else {
        frame.render_widget(Paragraph::new(lines), l);
    }
}
