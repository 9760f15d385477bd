//! The confirm dialog of destructive actions. It opens on Cancel.

use super::{boxed, centered, clean};
use crate::app::state::AppState;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

/// Draws the dialog.
pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let Some(c) = &state.confirm else { return };
    let th = &state.theme;
    let r = centered(area, 64, 9);
    frame.render_widget(Clear, r);
    let block = boxed(th, " Confirm ".into());
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let button = |label: &str, focused: bool| {
        if focused {
            Span::styled(
                format!("{} {label} ", th.marker()),
                th.selected().patch(th.title()),
            )
        } else {
            Span::raw(format!("[ {label} ]"))
        }
    };
    let mut lines = vec![
        Line::raw(clean(th, &c.message)),
        Line::raw(""),
        Line::from(vec![
            button("Cancel", !c.ok_focused),
            Span::raw("    "),
            button("OK", c.ok_focused),
        ])
        .alignment(Alignment::Center),
        Line::styled("tab/arrows: switch   enter: choose   esc: cancel", th.dim())
            .alignment(Alignment::Center),
    ];
    if inner.height < 6 {
        lines.remove(1);
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}
