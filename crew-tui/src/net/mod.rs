//! The I/O side: the REST client and the event stream client. Both report
//! to the main loop as [`crate::app::msg::Msg`]s over a channel.

pub mod rest;
pub mod stream;

/// Percent-encodes one URL path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_segments() {
        assert_eq!(super::encode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(super::encode("t-42_x.y~"), "t-42_x.y~");
        assert_eq!(super::encode("é"), "%C3%A9");
    }
}
