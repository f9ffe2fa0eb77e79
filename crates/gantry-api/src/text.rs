//! What text Gantry will keep and how text is shown: one definition for the server, which
//! refuses these characters in what clients send, and for the command line, which
//! escapes them in everything it prints (text kept before, image labels read from a
//! registry, report contents).
//!
//! The characters are the ones that act on a terminal or on how a line reads instead of
//! being read: C0 controls (NUL, ESC, BEL, CR, line feed, tab), DEL, C1 controls (an
//! 8-bit CSI is U+009B), the bidirectional embeddings, overrides and isolates that
//! reorder a line (U+202A to U+202E, U+2066 to U+2069), and the Unicode line and
//! paragraph separators (U+2028, U+2029).

use std::fmt;

/// Whether `c` is a character Gantry neither keeps in a text field nor prints as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// The first character of `text` that [`is_unsafe`], if any.
pub fn first_unsafe(text: &str) -> Option<char> {
    text.chars().find(|&c| is_unsafe(c))
}

/// Why a text field holding `c` is refused: `contains a control character (U+001B)`.
pub fn refusal(c: char) -> String {
    let kind = if c.is_control() {
        "a control character"
    } else if matches!(c, '\u{2028}' | '\u{2029}') {
        "a line separator"
    } else {
        "a bidirectional override"
    };
    format!("contains {kind} (U+{:04X})", u32::from(c))
}

/// Shows `text` with every [`is_unsafe`] character as a visible escape: `\n`, `\r`,
/// `\t`, `\x1b` for other C0 controls and DEL, `\u{9b}` for C1 controls and the
/// Unicode characters. Everything else is kept as it is.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(is_unsafe) {
            f.write_str(&rest[..at])?;
            let c = rest[at..]
                .chars()
                .next()
                .expect("a character at a char boundary");
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\0'..='\u{7f}' => write!(f, "\\x{:02x}", u32::from(c))?,
                _ => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters_are_escaped_and_the_rest_kept() {
        let check = |input: &str, expect: &str| assert_eq!(Escaped(input).to_string(), expect);
        check("plain text, ünïcödé ✓ ✗", "plain text, ünïcödé ✓ ✗");
        check("a\nb\rc\td", "a\\nb\\rc\\td");
        check("\u{1b}[1A\u{1b}[2K", "\\x1b[1A\\x1b[2K");
        check("\u{1b}]0;title\u{7}", "\\x1b]0;title\\x07");
        check("nul\0del\u{7f}", "nul\\x00del\\x7f");
        check("csi\u{9b}2K", "csi\\u{9b}2K");
        check(
            "abc\u{202e}fed\u{2066}x\u{2069}",
            "abc\\u{202e}fed\\u{2066}x\\u{2069}",
        );
        check("one\u{2028}two", "one\\u{2028}two");
        check("back\\slash", "back\\slash");
        check("", "");
    }

    #[test]
    fn refusals_name_the_character() {
        assert_eq!(first_unsafe("ok"), None);
        assert_eq!(first_unsafe("a\0b\u{1b}"), Some('\0'));
        assert_eq!(refusal('\u{1b}'), "contains a control character (U+001B)");
        assert_eq!(refusal('\u{9b}'), "contains a control character (U+009B)");
        assert_eq!(
            refusal('\u{202e}'),
            "contains a bidirectional override (U+202E)"
        );
        assert_eq!(refusal('\u{2028}'), "contains a line separator (U+2028)");
        // Zero-width joiners and marks that do not reorder a line are text.
        assert!(!is_unsafe('\u{200d}') && !is_unsafe('\u{200f}'));
    }
}
