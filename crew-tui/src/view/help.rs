//! The help overlay, generated from the keymap the handler uses.

use super::{boxed, centered};
use crate::app::keymap::Scope;
use crate::app::state::AppState;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

fn rows(state: &AppState, scope: Scope) -> Vec<Line<'static>> {
    let th = &state.theme;
    let mut out = vec![Line::styled(scope.title().to_string(), th.title())];
    let rows = state.keymap.help_rows(scope);
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (keys, desc) in rows {
        out.push(Line::from(vec![
            Span::styled(format!("{keys:>w$} "), th.title()),
            Span::raw(desc),
        ]));
    }
    out
}

/// Draws the overlay.
pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    // Below the header (which says READ-ONLY), above the key bar.
    let below = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(2),
        ..area
    };
    let r = centered(below, area.width.saturating_sub(2).min(120), below.height);
    frame.render_widget(Clear, r);
    let title = if state.read_only {
        " Keys (read-only: actions hidden) - any key closes "
    } else {
        " Keys - any key closes "
    };
    let block = boxed(th, title.into());
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    frame.render_widget(Paragraph::new(rows(state, Scope::Global)), left);
    frame.render_widget(Paragraph::new(rows(state, state.view.scope())), right);
}
