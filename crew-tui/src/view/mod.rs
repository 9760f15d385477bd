//! A pure render of [`AppState`]: [`draw`] reads the state and writes a
//! frame, nothing else. Every piece of task-supplied text goes through
//! [`clean`] (that is, [`crate::sanitize`]) on its way to the screen.

pub mod confirm;
pub mod dag;
pub mod events;
pub mod groups;
pub mod help;
pub mod task;
pub mod workgroups;

use crate::app::keymap::Command;
use crate::app::state::{group_name, AppState, ConnState, Input, View};
use crate::sanitize::sanitize_for;
use crate::text::cut_middle;
use crate::theme::{fmt_duration, Theme};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Draws the whole console.
pub fn draw(frame: &mut Frame, state: &AppState) {
    let area = frame.area();
    let [header, body, status, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(status_rows(state, area.width)),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, state);
    match state.view {
        View::Groups => groups::draw(frame, body, state),
        View::Dag => dag::draw(frame, body, state),
        View::Task => task::draw(frame, body, state),
        View::Workgroups => workgroups::draw(frame, body, state),
        View::Events => events::draw(frame, body, state),
    }
    draw_status(frame, status, state);
    draw_keys(frame, keys, state);
    if state.help {
        help::draw(frame, area, state);
    }
    if state.confirm.is_some() {
        confirm::draw(frame, area, state);
    }
}

/// Untrusted text made safe to show (see [`crate::sanitize`]).
pub fn clean(theme: &Theme, s: &str) -> String {
    sanitize_for(s, theme.utf8).into_owned()
}

/// `s` cut or padded to exactly `width` columns (with `…` or `~` when cut).
pub fn fit(theme: &Theme, s: &str, width: usize) -> String {
    let w = s.width();
    if w <= width {
        let mut out = String::with_capacity(s.len() + width - w);
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', width - w));
        return out;
    }
    if width == 0 {
        return String::new();
    }
    let ell = theme.pick("…", "~");
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw > width - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push_str(ell);
    used += 1;
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// `s` cut or padded to exactly `width` columns as [`fit`] does, but cut
/// in its middle ([`cut_middle`]): names that share a long start and
/// differ at their end (`…-00000001`, `…-00000002`) stay apart.
pub fn fit_middle(theme: &Theme, s: &str, width: usize) -> String {
    let mut out = cut_middle(s, width, theme.pick("…", "~"));
    let w = out.width();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}

/// `s` right-aligned in `width` columns (cut when longer).
pub fn fit_right(theme: &Theme, s: &str, width: usize) -> String {
    let w = s.width();
    if w >= width {
        return fit(theme, s, width);
    }
    format!("{}{s}", " ".repeat(width - w))
}

/// The marker column: the selection glyph or blanks.
pub fn marker(theme: &Theme, selected: bool) -> Span<'static> {
    if selected {
        Span::styled(format!("{} ", theme.marker()), theme.title())
    } else {
        Span::raw("  ")
    }
}

/// A title line for a view.
pub fn title_line(theme: &Theme, parts: Vec<Span<'static>>) -> Line<'static> {
    let mut spans = vec![Span::styled(" ", theme.title())];
    spans.extend(parts);
    Line::from(spans)
}

/// A piece of a title line that [`fitted_title_line`] may narrow.
pub enum Piece {
    /// The forms it may take, widest first; an empty one lets it go.
    Forms(Vec<Vec<Span<'static>>>),
    /// Text that takes the room the other pieces leave, cut with an
    /// ellipsis, but keeps at least the first of its floors (the next ones
    /// as the steps name it).
    Flex(String, Style, Vec<usize>),
}

impl Piece {
    /// A piece that is always shown whole.
    pub fn whole(span: Span<'static>) -> Self {
        Piece::Forms(vec![vec![span]])
    }

    /// Its width in form (or floor) `at`; a flex piece counts its floor.
    fn width(&self, at: usize) -> usize {
        match self {
            Piece::Forms(forms) => forms.get(at).map_or(0, |f| f.iter().map(Span::width).sum()),
            Piece::Flex(text, _, floors) => floors
                .get(at)
                .map_or(text.width(), |f| text.width().min(*f)),
        }
    }

    /// How many forms (or floors) it has.
    fn forms(&self) -> usize {
        match self {
            Piece::Forms(forms) => forms.len(),
            Piece::Flex(_, _, floors) => floors.len(),
        }
    }
}

/// A title line ([`title_line`]) fitted to `width` columns: while it is
/// too wide, the piece at the next of `steps` takes its next form, so that
/// what matters most (warnings) outlasts what matters least. Then the flex
/// piece takes the room left. What still does not fit is cut at the edge.
pub fn fitted_title_line(
    theme: &Theme,
    width: usize,
    pieces: Vec<Piece>,
    steps: &[usize],
) -> Line<'static> {
    let mut at = vec![0usize; pieces.len()];
    // The leading blank of the title line.
    let total = |at: &[usize]| {
        1 + pieces
            .iter()
            .zip(at)
            .map(|(p, a)| p.width(*a))
            .sum::<usize>()
    };
    for &i in steps {
        if total(&at) <= width {
            break;
        }
        if let (Some(a), Some(p)) = (at.get_mut(i), pieces.get(i)) {
            *a = (*a + 1).min(p.forms().saturating_sub(1));
        }
    }
    let fixed = 1 + pieces
        .iter()
        .zip(&at)
        .filter(|(p, _)| matches!(p, Piece::Forms(_)))
        .map(|(p, a)| p.width(*a))
        .sum::<usize>();
    let mut spans = vec![];
    for (p, a) in pieces.into_iter().zip(at) {
        match p {
            Piece::Forms(forms) => spans.extend(forms.into_iter().nth(a).unwrap_or_default()),
            Piece::Flex(text, style, floors) => {
                let floor = floors.get(a).copied().unwrap_or(0);
                let room = width.saturating_sub(fixed).max(floor);
                spans.push(Span::styled(cut(theme, &text, room), style));
            }
        }
    }
    title_line(theme, spans)
}

/// Columns a filter's text keeps in a title when room is short.
pub const FILTER_SHORT: usize = 8;

/// A list's text filter in its title (`  /text`), cut to [`FILTER_SHORT`]
/// columns at its second form; `None` when no filter is set.
pub fn filter_piece(theme: &Theme, filter: &str) -> Option<Piece> {
    if filter.is_empty() {
        return None;
    }
    let text = clean(theme, filter);
    Some(Piece::Forms(vec![
        vec![Span::raw(format!("  /{text}"))],
        vec![Span::raw(format!("  /{}", cut(theme, &text, FILTER_SHORT)))],
    ]))
}

/// A column heading line.
pub fn heading(theme: &Theme, text: String) -> Line<'static> {
    let style = if theme.color() {
        theme.dim().add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    };
    Line::from(Span::styled(text, style))
}

/// Applies the selection style to a whole row.
pub fn select_line(theme: &Theme, line: Line<'static>, selected: bool) -> Line<'static> {
    if selected {
        line.patch_style(theme.selected())
    } else {
        line
    }
}

/// Splits a body area into title, column heading and list.
pub fn list_areas(area: Rect) -> (Rect, Rect, Rect) {
    let [t, h, l] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    (t, h, l)
}

fn draw_header(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    let sep = Span::styled(th.pick(" │ ", " | "), th.dim());
    let conn = match &state.conn {
        ConnState::Connected => Span::styled(format!("{} CONNECTED", th.pick("●", "*")), th.ok()),
        ConnState::Connecting => Span::styled("CONNECTING", th.warn()),
        ConnState::Reconnecting {
            attempt,
            next_at,
            refused,
            ..
        } => {
            let secs = fmt_duration(state.now.seconds_until(next_at));
            if *refused {
                Span::styled(format!("TOKEN REFUSED, retry in {secs}"), th.error())
            } else {
                Span::styled(format!("RECONNECTING in {secs} (try {attempt})"), th.warn())
            }
        }
    };
    let crumbs = match state.view {
        View::Groups => "groups".to_string(),
        View::Workgroups => "workgroups".to_string(),
        View::Events => "events".to_string(),
        View::Dag | View::Task => {
            let g = state
                .group
                .as_ref()
                .map(|g| clean(th, group_name(&g.view.group)))
                .unwrap_or_default();
            let arrow = th.pick(" › ", " > ");
            if state.view == View::Task {
                let t = state
                    .detail_task()
                    .map(|t| clean(th, if t.name.is_empty() { &t.id } else { &t.name }))
                    .unwrap_or_default();
                format!("groups{arrow}{g}{arrow}{t}")
            } else {
                format!("groups{arrow}{g}")
            }
        }
    };
    let mut spans = vec![
        Span::styled(" Crew", th.title()),
        sep.clone(),
        Span::raw(clean(th, &state.server)),
        sep.clone(),
        conn,
        sep.clone(),
        Span::styled(crumbs, th.title()),
    ];
    if state.read_only {
        spans.push(sep);
        spans.push(Span::styled("READ-ONLY", th.warn()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The status line's text, as drawn after its leading space.
fn status_text(state: &AppState) -> Option<String> {
    let s = state.status.as_ref()?;
    let prefix = if s.error {
        state.theme.pick("✗ ", "! ")
    } else {
        ""
    };
    Some(format!("{prefix}{}", clean(&state.theme, &s.text)))
}

/// Rows of the view between the header and the status line, at the
/// screen's size: what a view that scrolls by rows may show.
pub fn body_height(state: &AppState) -> u16 {
    let (cols, rows) = state.size;
    rows.saturating_sub(2 + status_rows(state, cols))
}

/// Rows of the status line: an error the daemon explains at length (its
/// limits, the task that is running) wraps onto up to three rather than
/// being cut at the edge.
fn status_rows(state: &AppState, width: u16) -> u16 {
    let Some(text) = status_text(state) else {
        return 1;
    };
    let width = usize::from(width.max(1));
    let needed = (1 + text.width()).div_ceil(width);
    needed.clamp(1, 3) as u16
}

fn draw_status(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    let mut spans = vec![Span::raw(" ")];
    if let (Some(s), Some(text)) = (&state.status, status_text(state)) {
        let style = if s.error {
            th.error()
        } else {
            Style::default()
        };
        spans.push(Span::styled(text, style));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_keys(frame: &mut Frame, area: Rect, state: &AppState) {
    let th = &state.theme;
    let width = usize::from(area.width);
    let line = match &state.input {
        // esc clears a filter already.
        Input::Filter(t) => prompt(
            th,
            width,
            (" /", "", ""),
            t,
            &["  enter: keep  esc: clear"],
            false,
        ),
        Input::Command(t) => prompt(
            th,
            width,
            (" :", "", ""),
            t,
            &["  groups workgroups events group NAME workgroup NAME q"],
            true,
        ),
        Input::Seconds { workgroup, text } => prompt(
            th,
            width,
            (" pause workgroup ", workgroup, " for seconds: "),
            text,
            &[
                &format!(
                    "  enter: pause (empty: {}s)  esc: cancel",
                    crate::app::state::DEFAULT_PAUSE_SECS
                ),
                &format!(
                    "  empty: {}s  esc: cancel",
                    crate::app::state::DEFAULT_PAUSE_SECS
                ),
            ],
            true,
        ),
        Input::Schedule { name, text, .. } => prompt(
            th,
            width,
            (" schedule of group ", name, " (cron, UTC): "),
            text,
            if text.is_empty() {
                &["  e.g. 0 2 * * *  esc: cancel", "  esc: cancel"]
            } else {
                &["  empty: none  esc: cancel", "  esc: cancel"]
            },
            true,
        ),
        // The format when there is nothing to edit; else how to clear.
        Input::Limits { workgroup, text } => prompt(
            th,
            width,
            (" limits of workgroup ", workgroup, ": "),
            text,
            if text.is_empty() {
                &[
                    "  concurrency:N,rate:R,burst:B  esc: cancel",
                    "  esc: cancel",
                ]
            } else {
                &["  empty: none  esc: cancel", "  esc: cancel"]
            },
            true,
        ),
        Input::None => {
            // The actions first: they are what an operator comes for, and
            // what a narrow bar keeps.
            let mut cmds = vec![Command::Help];
            if !state.read_only && state.view != View::Events {
                cmds.extend([Command::Pause, Command::Resume]);
                if state.view != View::Workgroups {
                    cmds.extend([Command::Reset, Command::Retry, Command::Delete]);
                } else {
                    cmds.push(Command::Limit);
                }
            }
            cmds.extend(match state.view {
                View::Groups => vec![Command::Open, Command::Sort],
                View::Dag => vec![
                    Command::Open,
                    Command::ToggleExpand,
                    Command::StatusFilter,
                    Command::Lineage,
                ],
                View::Task => vec![Command::NextPane, Command::Open],
                View::Workgroups => vec![],
                View::Events => vec![Command::MineOnly],
            });
            cmds.extend([Command::Filter, Command::CommandMode]);
            cmds.extend([Command::Back, Command::Quit]);
            let entries: Vec<(Command, String, String)> = cmds
                .into_iter()
                .filter_map(|c| {
                    let key = state.keymap.first_key(c)?.short();
                    Some((c, key, format!(":{} ", key_word(c))))
                })
                .collect();
            // What does not fit is dropped whole, help, back and quit last:
            // help lists the rest.
            let kept = |c: Command| matches!(c, Command::Help | Command::Back | Command::Quit);
            let entry_w = |(_, k, w): &(Command, String, String)| k.width() + w.width();
            let mut room = width.saturating_sub(1).saturating_sub(
                entries
                    .iter()
                    .filter(|e| kept(e.0))
                    .map(entry_w)
                    .sum::<usize>(),
            );
            let mut fits = true;
            let mut spans = vec![Span::raw(" ")];
            for e in &entries {
                if !kept(e.0) {
                    fits = fits && entry_w(e) <= room;
                    if !fits {
                        continue;
                    }
                    room -= entry_w(e);
                }
                spans.push(Span::styled(e.1.clone(), th.title()));
                spans.push(Span::styled(e.2.clone(), th.dim()));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// A command's word on the key bar.
fn key_word(c: Command) -> &'static str {
    match c {
        Command::Help => "help",
        Command::Filter => "filter",
        Command::CommandMode => "cmd",
        Command::Open => "open",
        Command::Sort => "sort",
        Command::ToggleExpand => "fold",
        Command::StatusFilter => "status",
        Command::Lineage => "lineage",
        Command::NextPane => "pane",
        Command::MineOnly => "mine",
        Command::Pause => "pause",
        Command::Resume => "resume",
        Command::Reset => "reset",
        Command::Retry => "retry",
        Command::Delete => "delete",
        Command::Back => "back",
        Command::Quit => "quit",
        _ => c.name(),
    }
}

/// Columns a prompt keeps for a long name, and for what is typed, before
/// it gives up its hint.
const PROMPT_MIN: usize = 8;

/// Added to a prompt's hint when the whole line has room for it: ctrl-u
/// clears what is typed (a prefilled value took a backspace a character).
const CLEAR_HINT: &str = "  ^u: clear";

/// A prompt on the key bar, fitted to `width` columns: `before`, the
/// `name` it is about, `after`, what is typed, the cursor and the first
/// of `hints` that fits. A long name (ids of 128 characters, names of
/// 1024) is cut in its middle, where names that share a start still
/// differ, and long typed text shows its end, so
/// that what is typed, the cursor and a hint stay in sight. With
/// `clearable` and text typed, the hint also names ctrl-u when nothing
/// else has to be cut for it.
fn prompt(
    th: &Theme,
    width: usize,
    (before, name, after): (&str, &str, &str),
    text: &str,
    hints: &[&str],
    clearable: bool,
) -> Line<'static> {
    let name = clean(th, name);
    let text = clean(th, text);
    let fixed = before.width() + after.width() + 1;
    let least = fixed + name.width().min(PROMPT_MIN) + text.width().min(PROMPT_MIN);
    let mut hint = hints
        .iter()
        .find(|h| least + h.width() <= width)
        .copied()
        .unwrap_or("")
        .to_string();
    let whole = fixed + name.width() + text.width() + hint.width() + CLEAR_HINT.width();
    if clearable && !text.is_empty() && !hint.is_empty() && whole <= width {
        hint.push_str(CLEAR_HINT);
    }
    let room = width.saturating_sub(fixed + text.width() + hint.width());
    let name = cut_middle(
        &name,
        room.max(name.width().min(PROMPT_MIN)),
        th.pick("…", "~"),
    );
    let room = width.saturating_sub(fixed + name.width() + hint.width());
    let text = cut_front(th, &text, room);
    Line::from(vec![
        Span::styled(format!("{before}{name}{after}"), th.title()),
        Span::raw(text),
        Span::raw(th.pick("█", "_")),
        Span::styled(hint, th.dim()),
    ])
}

/// `s` cut to at most `width` columns, with an ellipsis when cut.
pub fn cut(theme: &Theme, s: &str, width: usize) -> String {
    if s.width() <= width {
        s.to_string()
    } else {
        fit(theme, s, width)
    }
}

/// `s` cut to at most `width` columns from the front, its end kept, with
/// an ellipsis when cut.
pub fn cut_front(theme: &Theme, s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut kept = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let cw = c.width().unwrap_or(0);
        if used + cw > width - 1 {
            break;
        }
        kept.push(c);
        used += cw;
    }
    let mut out = theme.pick("…", "~").to_string();
    out.extend(kept.into_iter().rev());
    out
}

/// A centred rectangle of at most `w` x `h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// A box of borders drawn with the theme's character set.
pub fn boxed(theme: &Theme, title: String) -> ratatui::widgets::Block<'static> {
    use ratatui::symbols::border;
    let set = if theme.utf8 {
        border::PLAIN
    } else {
        border::Set {
            top_left: "+",
            top_right: "+",
            bottom_left: "+",
            bottom_right: "+",
            vertical_left: "|",
            vertical_right: "|",
            horizontal_top: "-",
            horizontal_bottom: "-",
        }
    };
    ratatui::widgets::Block::bordered()
        .border_set(set)
        .title(Span::styled(title, theme.title()))
}
