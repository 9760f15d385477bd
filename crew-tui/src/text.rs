//! Shortening untrusted names for sentences and narrow columns.

use crate::sanitize::sanitize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns a name keeps in a sentence (an action's description, a
/// confirmation, an error): with names of hundreds of characters, what
/// follows the name (why an action failed) stayed out of sight.
pub const NAME_IN_TEXT: usize = 40;

/// `s` cut to at most `width` columns in its middle, its start and its end
/// kept with `ellipsis` between: names that differ only at their end (a
/// common prefix, then a number) stay apart. Wide characters count their
/// columns; one that does not fit is left out whole.
pub fn cut_middle(s: &str, width: usize, ellipsis: &str) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let ell = ellipsis.width();
    if width <= ell {
        return take_columns(s.chars(), width).0.into_iter().collect();
    }
    let room = width - ell;
    // The end has the odd column: it is where such names differ most (a
    // number, a date).
    let (head, used) = take_columns(s.chars(), room / 2);
    let (mut tail, _) = take_columns(s.chars().rev(), room - used);
    tail.reverse();
    let mut out: String = head.into_iter().collect();
    out.push_str(ellipsis);
    out.extend(tail);
    out
}

/// The first characters of `chars` that fit in `width` columns, and the
/// columns they take.
fn take_columns(chars: impl Iterator<Item = char>, width: usize) -> (Vec<char>, usize) {
    let mut out = Vec::new();
    let mut used = 0;
    for c in chars {
        let cw = c.width().unwrap_or(0);
        if used + cw > width {
            break;
        }
        out.push(c);
        used += cw;
    }
    (out, used)
}

/// A name as a sentence shows it: escaped ([`sanitize`]), then cut in its
/// middle to [`NAME_IN_TEXT`] columns.
pub fn short_name(name: &str) -> String {
    cut_middle(&sanitize(name), NAME_IN_TEXT, "…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(cut_middle("demo", 10, "…"), "demo");
        assert_eq!(cut_middle("", 0, "…"), "");
    }

    #[test]
    fn long_text_keeps_its_start_and_end() {
        assert_eq!(cut_middle("abcdefghij", 7, "…"), "abc…hij");
        assert_eq!(cut_middle("abcdefghij", 6, "~"), "ab~hij");
        assert_eq!(cut_middle("abcdefghij", 1, "…"), "a");
        let names = ["X".repeat(100) + "00000001", "X".repeat(100) + "00000002"];
        let cut: Vec<String> = names.iter().map(|n| cut_middle(n, 16, "…")).collect();
        assert_ne!(cut[0], cut[1]);
        assert!(cut[0].ends_with("00000001"), "{}", cut[0]);
    }

    #[test]
    fn wide_characters_count_their_columns() {
        let s = "日本語のとても長い名前です";
        for width in 1..s.width() {
            let cut = cut_middle(s, width, "…");
            assert!(cut.width() <= width, "{cut} at {width}");
            assert!(cut.width() + 1 >= width, "{cut} at {width}");
        }
    }

    #[test]
    fn names_in_sentences_are_escaped_then_cut() {
        let long = "L".repeat(300);
        assert_eq!(short_name(&long).width(), NAME_IN_TEXT);
        assert_eq!(short_name("a\u{1b}b"), "a\\u{1b}b");
    }
}
