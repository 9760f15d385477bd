//! The confirm dialog of destructive actions: No and Yes, not Cancel and
//! OK, since one of the actions is to cancel a call. It opens on No; an
//! irreversible bulk action also asks for its count (or `yes`) to be typed
//! before Yes is accepted.

use super::{boxed, centered, clean};
use crate::app::state::AppState;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Widest the dialog gets.
const WIDTH: u16 = 64;

/// Draws the dialog: as tall as its message needs, within the screen; a
/// message too long for the screen (a name of hundreds of characters) is
/// cut with an ellipsis so that the count to type, the buttons and the
/// hint stay visible.
pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let Some(c) = &state.confirm else { return };
    let th = &state.theme;
    let typing = c.expect.is_some();
    // Below the message: a blank row, the count to type and a blank row,
    // the buttons, the hint.
    let below = if typing { 5 } else { 3 };
    let width = WIDTH.min(area.width);
    let inner_w = usize::from(width.saturating_sub(2)).max(1);
    let mut message = wrap_words(&clean(th, &c.message), inner_w);
    let least = if typing { 10 } else { 9 };
    let height = u16::try_from(message.len())
        .unwrap_or(u16::MAX)
        .saturating_add(below + 2)
        .max(least);
    let r = centered(area, width, height);
    frame.render_widget(Clear, r);
    let block = boxed(th, " Confirm ".into());
    let inner = block.inner(r);
    frame.render_widget(block, r);
    // The blank row under the message goes first when rows are short.
    let blank = usize::from(inner.height) > message.len() + usize::from(below) - 1;
    let room = usize::from(inner.height)
        .saturating_sub(usize::from(below) - usize::from(!blank))
        .max(1);
    if message.len() > room {
        message.truncate(room);
        if let Some(last) = message.last_mut() {
            while last.width() >= inner_w && last.pop().is_some() {}
            last.push_str(th.pick("…", "~"));
        }
    }
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
    let mut lines: Vec<Line> = message.into_iter().map(Line::raw).collect();
    if blank {
        lines.push(Line::raw(""));
    }
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
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `s` wrapped at spaces into lines of at most `width` columns; a word
/// wider than a line is broken.
fn wrap_words(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        let w = word.width();
        if used > 0 && used + 1 + w <= width {
            line.push(' ');
            line.push_str(word);
            used += 1 + w;
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        for ch in word.chars() {
            let cw = ch.width().unwrap_or(0);
            if used + cw > width && used > 0 {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(ch);
            used += cw;
        }
    }
    if used > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}
