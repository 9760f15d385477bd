//! Task detail: every field, input and output as pretty JSON, errors with
//! time and attempt, and the parents and children to move to.

use super::{clean, fit, marker, select_line};
use crate::app::state::{task_status, AppState, TaskPane};
use crate::theme::{fmt_duration, Theme};
use crew_core::model::{AttemptOutcome, TaskError};
use crew_core::{Task, Timestamp};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use serde_json::Value;
use unicode_width::UnicodeWidthChar;

fn field(th: &Theme, name: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:>20}: "), th.dim()),
        Span::raw(value),
    ])
}

fn time(t: &Timestamp, now: Timestamp) -> String {
    if t.is_zero() {
        return "-".into();
    }
    let d = now.seconds_until(t);
    let rel = if d >= 0.0 {
        format!("in {}", fmt_duration(d))
    } else {
        format!("{} ago", fmt_duration(-d))
    };
    format!("{} ({rel})", t.as_datetime().format("%Y-%m-%d %H:%M:%S"))
}

fn json_lines(th: &Theme, v: &Value, out: &mut Vec<Line<'static>>) {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    for l in text.lines() {
        out.push(Line::raw(format!("  {}", clean(th, l))));
    }
}

/// Every line of the content pane (also the preview of the tree view).
pub fn content_lines(t: &Task, th: &Theme, now: Timestamp) -> Vec<Line<'static>> {
    let s = task_status(t);
    let mut out = vec![
        Line::from(vec![
            Span::styled(format!("{:>20}: ", "status"), th.dim()),
            Span::styled(format!("{} {s}", th.status_glyph(s)), th.status_style(s)),
        ]),
        field(th, "id", clean(th, &t.id)),
        field(th, "name", clean(th, &t.name)),
        field(th, "taskGroupId", clean(th, &t.task_group_id)),
        field(th, "worker", clean(th, &t.worker)),
        field(th, "workgroup", clean(th, &t.workgroup)),
        field(th, "key", clean(th, &t.key)),
        field(th, "remainingAttempts", t.remaining_attempts.to_string()),
        field(th, "attempts", t.attempts.to_string()),
        field(th, "resets", t.resets.to_string()),
        field(th, "isPaused", t.is_paused.to_string()),
        field(th, "isComplete", t.is_complete.to_string()),
        field(th, "busyExecuting", t.busy_executing.to_string()),
        field(th, "runAfter", time(&t.run_after, now)),
        field(th, "isSeed", t.is_seed.to_string()),
        field(
            th,
            "errorDelayInSeconds",
            t.error_delay_in_seconds.to_string(),
        ),
        field(th, "priority", t.priority.to_string()),
        field(th, "progressWeight", t.progress_weight.to_string()),
        field(th, "createdAt", time(&t.created_at, now)),
        field(
            th,
            "createdBy",
            t.created_by
                .as_deref()
                .map(|c| clean(th, c))
                .unwrap_or_else(|| "-".into()),
        ),
        field(th, "parentIds", t.parent_ids.len().to_string()),
        Line::raw(""),
        Line::styled("Input", th.title()),
    ];
    json_lines(th, &t.input, &mut out);
    out.push(Line::raw(""));
    out.push(Line::styled("Output", th.title()));
    json_lines(th, &t.output, &mut out);
    out.push(Line::raw(""));
    out.push(Line::styled(
        format!("Errors ({})", t.errors.len()),
        th.title(),
    ));
    for e in t.errors.iter().rev() {
        match e {
            TaskError::Recorded(r) => {
                out.push(Line::from(vec![
                    Span::styled(format!("  #{} {}  ", r.attempt, time(&r.at, now)), th.dim()),
                    Span::styled(clean(th, &r.message), th.error()),
                ]));
            }
            TaskError::Raw(_) => {
                out.push(Line::styled(
                    format!("  {}", clean(th, &e.message())),
                    th.error(),
                ));
            }
        }
    }
    if !t.attempt_log.is_empty() {
        out.push(Line::raw(""));
        out.push(Line::styled("Attempts", th.title()));
        for a in t.attempt_log.iter().rev() {
            let took = a
                .finished_at
                .map(|f| format!(" took {:.1}s", a.started_at.seconds_until(&f)))
                .unwrap_or_default();
            out.push(Line::styled(
                format!(
                    "  #{} {} {}{took}",
                    a.number,
                    outcome_text(a.outcome),
                    time(&a.started_at, now)
                ),
                th.dim(),
            ));
        }
    }
    out
}

/// Columns a wrapped line's continuation rows are indented by.
const WRAP_INDENT: usize = 4;

/// Columns inside the content pane on a terminal `cols` wide (its borders
/// excluded).
pub fn content_width(cols: u16) -> usize {
    usize::from(cols.saturating_sub(2))
}

/// Rows of the links pane below the content, in a view `height` rows high.
fn links_height(height: u16, links: usize) -> u16 {
    (u16::try_from(links).unwrap_or(u16::MAX).saturating_add(2))
        .clamp(3, 8)
        .min(height / 3)
        .max(3)
}

/// Rows of content the view shows at once: the furthest scroll is the
/// content's length less these, so that the bottom is a full screen.
pub fn content_view_rows(state: &AppState) -> usize {
    let height = super::body_height(state);
    let links = links_height(height, state.detail_links().len());
    // The content pane's borders.
    usize::from(height.saturating_sub(links).saturating_sub(2))
}

/// Rows of links the links pane shows at once: a page there.
pub fn links_view_rows(state: &AppState) -> usize {
    let height = super::body_height(state);
    // The links pane's borders.
    usize::from(links_height(height, state.detail_links().len()).saturating_sub(2))
}

/// The content pane's rows at `width` columns: [`content_lines`] with the
/// long ones (an output, an error) wrapped rather than cut at the edge.
/// Scrolling counts these rows.
pub fn content_rows(t: &Task, th: &Theme, now: Timestamp, width: usize) -> Vec<Line<'static>> {
    content_lines(t, th, now)
        .into_iter()
        .flat_map(|l| wrap_line(l, width))
        .collect()
}

/// `line` broken into rows of at most `width` columns, keeping its styles;
/// the rows after the first are indented.
fn wrap_line(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    if line.width() <= width || width <= WRAP_INDENT * 2 {
        return vec![line];
    }
    let style = line.style;
    let mut rows = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for span in line.spans {
        let mut piece = String::new();
        for c in span.content.chars() {
            let cw = c.width().unwrap_or(0);
            if used + cw > width {
                if !piece.is_empty() {
                    spans.push(Span::styled(std::mem::take(&mut piece), span.style));
                }
                rows.push(Line::from(std::mem::take(&mut spans)).style(style));
                spans.push(Span::raw(" ".repeat(WRAP_INDENT)));
                used = WRAP_INDENT;
            }
            piece.push(c);
            used += cw;
        }
        if !piece.is_empty() {
            spans.push(Span::styled(piece, span.style));
        }
    }
    if !spans.is_empty() {
        rows.push(Line::from(spans).style(style));
    }
    rows
}

/// An attempt's outcome in words.
fn outcome_text(o: AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Running => "running",
        AttemptOutcome::Succeeded => "succeeded",
        AttemptOutcome::Failed => "failed",
        AttemptOutcome::RateLimited => "rate limited",
        AttemptOutcome::Interrupted => "interrupted",
        AttemptOutcome::Cancelled => "cancelled",
    }
}

/// Draws the view.
pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    let (Some(d), Some(t)) = (&state.task, state.detail_task()) else {
        frame.render_widget(
            Paragraph::new(" the task no longer exists (esc: back)"),
            area,
        );
        return;
    };
    let links = state.detail_links();
    let links_h = links_height(area.height, links.len());
    let [content_area, links_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(links_h)]).areas(area);

    let focus = |p: TaskPane| {
        if d.pane == p {
            th.pick(" ◆", " *")
        } else {
            ""
        }
    };
    let lines = content_rows(t, th, state.now, content_width(content_area.width));
    // At most the last screenful (a resize can leave the scroll past it).
    let shown = usize::from(content_area.height.saturating_sub(2));
    let scroll = d.scroll.min(lines.len().saturating_sub(shown));
    let block = super::boxed(
        th,
        format!(
            " Task {} {}/{}{} ",
            clean(th, if t.name.is_empty() { &t.id } else { &t.name }),
            scroll + 1,
            lines.len(),
            focus(TaskPane::Content)
        ),
    );
    let inner = block.inner(content_area);
    frame.render_widget(block, content_area);
    let visible: Vec<Line> = lines
        .into_iter()
        .skip(scroll)
        .take(inner.height as usize)
        .collect();
    frame.render_widget(Paragraph::new(visible), inner);

    let parents = links.iter().filter(|(p, _)| *p).count();
    let block = super::boxed(
        th,
        format!(
            " Parents ({parents}) / children ({}){} ",
            links.len() - parents,
            focus(TaskPane::Links)
        ),
    );
    let inner = block.inner(links_area);
    frame.render_widget(block, links_area);
    let height = inner.height as usize;
    let off = d.links.window(links.len(), height);
    let g = state.group.as_ref();
    let rows: Vec<Line> = links
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, (is_parent, id))| {
            let sel = d.pane == TaskPane::Links && i == d.links.selected;
            let task = g.and_then(|g| g.dag.get(id));
            let (glyph, style) = match task {
                Some(x) => {
                    let s = task_status(x);
                    (th.status_glyph(s), th.status_style(s))
                }
                None => ("?", th.dim()),
            };
            let name = task
                .map(|x| if x.name.is_empty() { &x.id } else { &x.name })
                .map(|n| clean(th, n))
                .unwrap_or_else(|| format!("{} (not loaded)", clean(th, id)));
            let line = Line::from(vec![
                marker(th, sel),
                Span::styled(
                    if *is_parent {
                        th.pick("↑ parent ", "^ parent ")
                    } else {
                        th.pick("↓ child  ", "v child  ")
                    },
                    th.dim(),
                ),
                Span::styled(format!("{glyph} "), style),
                Span::raw(fit(th, &name, (inner.width as usize).saturating_sub(14))),
            ]);
            select_line(th, line, sel)
        })
        .collect();
    frame.render_widget(Paragraph::new(rows), inner);
}
