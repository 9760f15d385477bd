//! The confirm dialog of destructive actions: No and Yes, not Cancel and
//! OK, since one of the actions is to cancel a call. It opens on No; an
//! irreversible bulk action also asks for its count (or `yes`) to be typed
//! before Yes is accepted.

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
    let typing = c.expect.is_some();
    let r = centered(area, 64, if typing { 10 } else { 9 });
    frame.render_widget(Clear, r);
    let block = boxed(th, " Confirm ".into());
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let accepted = c.accepted();
    let button = |label: &str, focused: bool, enabled: bool| {
        if focused {
            let style = th.selected().patch(th.title());
            let style = if enabled {
                style
            } else {
                style.patch(th.dim())
            };
            Span::styled(format!("{} {label} ", th.marker()), style)
        } else if enabled {
            Span::raw(format!("[ {label} ]"))
        } else {
            Span::styled(format!("[ {label} ]"), th.dim())
        }
    };
    let mut lines = vec![Line::raw(clean(th, &c.message)), Line::raw("")];
    if let Some(want) = &c.expect {
        lines.push(
            Line::from(vec![
                Span::raw(format!("Type {want} or yes to confirm: ")),
                Span::styled(clean(th, &c.typed), th.title()),
                Span::raw(th.pick("█", "_")),
            ])
            .alignment(Alignment::Center),
        );
        lines.push(Line::raw(""));
    }
    lines.push(
        Line::from(vec![
            button("No", !c.ok_focused, true),
            Span::raw("    "),
            button("Yes", c.ok_focused, accepted),
        ])
        .alignment(Alignment::Center),
    );
    let hint = if typing {
        "type, then tab: Yes   enter: choose   esc: no"
    } else {
        "y: yes   n/esc: no   tab/arrows: switch   enter: choose"
    };
    lines.push(Line::styled(hint, th.dim()).alignment(Alignment::Center));
    if inner.height < 6 {
        lines.remove(1);
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}
