//! Colours and glyphs, chosen once from the terminal's abilities.
//!
//! Status is never shown by colour alone: every status has a glyph, and the
//! selection always has a marker, so the console stays usable with
//! `NO_COLOR`, on 16-colour terminals and without UTF-8.

use crew_core::TaskStatus;
use ratatui::style::{Color, Modifier, Style};

/// How much colour the terminal gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Palette {
    /// No colour at all (`NO_COLOR`, `--no-color`, `TERM=dumb`).
    NoColor,
    /// The 16 ANSI colours (all this console ever uses).
    Ansi16,
}

/// The console's look: palette and character set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    /// Colour support.
    pub palette: Palette,
    /// Whether the terminal shows UTF-8; otherwise ASCII glyphs are used.
    pub utf8: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            palette: Palette::Ansi16,
            utf8: true,
        }
    }
}

impl Theme {
    /// Chooses the palette from `--no-color`, then `NO_COLOR`, then `TERM`,
    /// and the character set from `--ascii`, then the locale variables.
    pub fn detect(no_color_flag: bool, ascii_flag: bool) -> Self {
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let no_color = no_color_flag || !env("NO_COLOR").is_empty() || env("TERM") == "dumb";
        let locale = [env("LC_ALL"), env("LC_CTYPE"), env("LANG")]
            .into_iter()
            .find(|v| !v.is_empty())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let utf8 = !ascii_flag && (locale.contains("utf-8") || locale.contains("utf8"));
        Theme {
            palette: if no_color {
                Palette::NoColor
            } else {
                Palette::Ansi16
            },
            utf8,
        }
    }

    /// A monochrome ASCII theme (for tests of the fallback).
    pub fn plain() -> Self {
        Theme {
            palette: Palette::NoColor,
            utf8: false,
        }
    }

    /// Whether colours are drawn.
    pub fn color(&self) -> bool {
        self.palette != Palette::NoColor
    }

    /// A foreground style, or the default style without colour.
    pub fn fg(&self, c: Color) -> Style {
        if self.color() {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    /// The selected row: reversed in colour, bold without (the marker glyph
    /// carries the selection either way).
    pub fn selected(&self) -> Style {
        if self.color() {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    /// Headings and titles.
    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// Secondary text.
    pub fn dim(&self) -> Style {
        if self.color() {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    /// Errors.
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Success and good news.
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    /// Warnings (reconnecting, paused).
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// Picks the UTF-8 or the ASCII form.
    pub fn pick(&self, utf8: &'static str, ascii: &'static str) -> &'static str {
        if self.utf8 {
            utf8
        } else {
            ascii
        }
    }

    /// The marker in front of the selected row.
    pub fn marker(&self) -> &'static str {
        self.pick("▶", ">")
    }

    /// The glyph of a status (one column wide).
    pub fn status_glyph(&self, s: TaskStatus) -> &'static str {
        match s {
            TaskStatus::Completed => self.pick("✓", "v"),
            TaskStatus::Running => self.pick("●", "*"),
            TaskStatus::Ready => self.pick("○", "o"),
            TaskStatus::Waiting => self.pick("…", "."),
            TaskStatus::Delayed => self.pick("◷", "@"),
            TaskStatus::Paused => self.pick("‖", "="),
            TaskStatus::Failed => self.pick("✗", "x"),
        }
    }

    /// The colour style of a status.
    pub fn status_style(&self, s: TaskStatus) -> Style {
        match s {
            TaskStatus::Completed => self.fg(Color::Green),
            TaskStatus::Running => self.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            TaskStatus::Ready => self.fg(Color::White),
            TaskStatus::Waiting => self.dim(),
            TaskStatus::Delayed => self.fg(Color::Magenta),
            TaskStatus::Paused => self.fg(Color::Yellow),
            TaskStatus::Failed => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }
}

/// Formats a duration in seconds compactly: `42s`, `4m12s`, `3h05m`, `2d04h`,
/// then `364d`, `3y024d` and `12y`: at most 6 columns up to 99,999 years, so
/// that `for `/`in ` and the duration fit the tree's WHEN column.
pub fn fmt_duration(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs.ceil() as u64
    } else {
        0
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => {
            let days = s / 86_400;
            let (years, of_year) = (days / 365, days % 365);
            match days {
                0..=99 => format!("{days}d{:02}h", (s % 86_400) / 3600),
                100..=999 => format!("{days}d"),
                _ if years < 10 => format!("{years}y{of_year:03}d"),
                _ => format!("{years}y"),
            }
        }
    }
}

/// Formats an age (time since) compactly: `42s`, `4m`, `3h`, `2d`.
pub fn fmt_age(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs as u64
    } else {
        0
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(0.2), "1s");
        assert_eq!(fmt_duration(-3.0), "0s");
        assert_eq!(fmt_duration(252.0), "4m12s");
        assert_eq!(fmt_duration(3600.0 * 3.0 + 300.0), "3h05m");
        assert_eq!(fmt_duration(86_400.0 * 2.0 + 3600.0 * 4.0), "2d04h");
        // Far ahead, within 6 columns: `1119d1…` overflowed the tree's WHEN.
        assert_eq!(fmt_duration(86_400.0 * 99.5), "99d12h");
        assert_eq!(fmt_duration(86_400.0 * 364.5), "364d");
        assert_eq!(fmt_duration(86_400.0 * 1119.5), "3y024d");
        assert_eq!(fmt_duration(86_400.0 * 365.0 * 7975.0), "7975y");
        assert_eq!(fmt_age(59.9), "59s");
        assert_eq!(fmt_age(7200.0), "2h");
    }

    #[test]
    fn every_status_has_a_distinct_glyph_in_both_sets() {
        for t in [Theme::default(), Theme::plain()] {
            let mut g: Vec<_> = TaskStatus::ALL.iter().map(|s| t.status_glyph(*s)).collect();
            g.sort();
            g.dedup();
            assert_eq!(g.len(), TaskStatus::ALL.len());
        }
    }
}
