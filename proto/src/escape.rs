//! Making untrusted text safe to print on one line: every control character
//! (and every bidi override) becomes a visible escape, so a string from an
//! agent or an API server can neither forge a log or audit line nor send
//! terminal escape sequences.

use std::{borrow::Cow, fmt::Write};

/// True for characters that must not reach a terminal or a line-based log
/// raw: C0 and C1 controls, DEL, and the bidi marks and overrides.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with `\n`, `\r`, `\t` and `\\` written as such, other controls as
/// `\x1b` (up to U+00FF) or `\u{202e}`; borrowed when nothing needs escaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || is_invisible(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x100 && is_invisible(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_and_plain_text_is_borrowed() {
        assert!(matches!(escape("shop/web-1 ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\nb\r\t\\\u{1b}[2J\u{7f}\u{85}\u{202e}"),
            "a\\nb\\r\\t\\\\\\x1b[2J\\x7f\\x85\\u{202e}"
        );
        assert!(!escape("x\u{0}\u{9b}\u{2066}").chars().any(is_invisible));
    }
}
