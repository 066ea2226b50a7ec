//! Characters that forge or disguise text: control characters (C0, DEL, C1) and Unicode's
//! bidirectional controls (U+200E, U+200F, U+061C, U+202A–U+202E, U+2066–U+2069). Stored
//! names and descriptions refuse them; log lines escape them (`telemetry`).

use crate::error::{Error, Result};

/// Whether `c` is a control character or a bidirectional control.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Refuses a stored free-text value (`field` names it in the message) that has an unsafe character.
pub fn check(field: &str, value: &str) -> Result<()> {
    match value.chars().find(|c| is_unsafe_char(*c)) {
        None => Ok(()),
        Some(c) => Err(Error::Invalid(format!(
            "{field} must not contain control characters or bidirectional text controls (found U+{:04X})",
            c as u32
        ))),
    }
}

/// `s` with every unsafe character escaped as Rust does (`\n`, `\u{202e}`).
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_line_breaks_and_bidi_controls() {
        assert_eq!(super::escape("admin"), "admin");
        assert_eq!(super::escape("a\nb\r\u{1b}[2J\u{202e}c\u{85}"), "a\\nb\\r\\u{1b}[2J\\u{202e}c\\u{85}");
        assert_eq!(super::escape("café ✓ 日本"), "café ✓ 日本");
    }

    #[test]
    fn refuses_controls_and_bidi_overrides() {
        for bad in ["a\0b", "a\nb", "\u{202e}txt.exe", "x\u{2067}", "\u{200f}", "\u{9b}"] {
            assert!(super::check("name", bad).is_err(), "{bad:?}");
        }
        for ok in ["release 1.0", "Ünïcödé – fine", "日本語", ""] {
            assert!(super::check("name", ok).is_ok(), "{ok:?}");
        }
    }
}
