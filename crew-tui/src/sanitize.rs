//! Renders untrusted text inert.
//!
//! Task names, inputs, outputs and errors come from workers and clients we do
//! not control. Written raw, an escape sequence in them could move the cursor,
//! change the title, hide text or rewrite the operator's screen. Every view
//! passes such text through [`sanitize`] before it reaches a widget.

use std::borrow::Cow;

/// Whether a character must never reach the terminal raw.
///
/// That is every C0 control (including ESC, CR, LF and TAB), DEL, every C1
/// control (U+0080..=U+009F, among them the one-byte CSI and OSC), the
/// bidirectional overrides, embeddings and isolates, the line and paragraph
/// separators, and the zero-width and invisible formatting characters that
/// can hide text.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{061c}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
    )
}

/// Returns `s` with every unsafe character (see [`is_unsafe`]) replaced by
/// its visible escape, `\u{1b}` for ESC and so on. Borrowed when nothing had
/// to change, which is the common case.
///
/// The escape is plain ASCII, so it reads the same on every terminal, and it
/// cannot be mistaken for the character itself.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`sanitize`], then, when the terminal cannot show UTF-8, every other
/// non-ASCII character as `?`.
pub fn sanitize_for(s: &str, utf8: bool) -> Cow<'_, str> {
    let clean = sanitize(s);
    if utf8 || clean.is_ascii() {
        return clean;
    }
    Cow::Owned(
        clean
            .chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(sanitize("fetch insights"), Cow::Borrowed(_)));
        assert_eq!(sanitize("données ✓ 日本"), "données ✓ 日本");
    }

    #[test]
    fn csi_and_osc_are_inert() {
        let s = sanitize("\x1b[2J\x1b]0;pwned\x07ok");
        assert_eq!(s, "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}ok");
        assert!(!s.chars().any(|c| c.is_control()));
    }

    #[test]
    fn c1_controls_are_inert() {
        // U+009B is a one-character CSI, U+009D a one-character OSC.
        assert_eq!(sanitize("a\u{9b}31mb\u{9d}x"), "a\\u{9b}31mb\\u{9d}x");
        assert_eq!(sanitize("\u{85}"), "\\u{85}");
    }

    #[test]
    fn bidi_and_invisible_characters_are_shown() {
        assert_eq!(sanitize("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(sanitize("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        assert_eq!(sanitize("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(sanitize("\u{feff}"), "\\u{feff}");
    }

    #[test]
    fn line_breaks_and_tabs_cannot_break_a_row() {
        assert_eq!(sanitize("a\nb\rc\td"), "a\\u{a}b\\u{d}c\\u{9}d");
        assert_eq!(sanitize("a\u{2028}b"), "a\\u{2028}b");
    }

    #[test]
    fn ascii_mode_folds_the_rest() {
        assert_eq!(sanitize_for("é\x1b", false), "?\\u{1b}");
        assert_eq!(sanitize_for("é\x1b", true), "é\\u{1b}");
    }

    #[test]
    fn output_never_contains_an_unsafe_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!sanitize(&all).chars().any(is_unsafe));
    }
}
