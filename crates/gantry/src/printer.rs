//! The one place the binary writes to stdout and stderr: it knows the output format and
//! whether stdout is a terminal.
//!
//! Text for people is built as [`Text`], one record per line, and every record is
//! escaped as a whole ([`gantry_api::text::Escaped`]): a label, a hold reason or a
//! registry's error message cannot move the cursor, set the window title, reorder a line
//! or start a line of its own. JSON is written with the same characters as `\u` escapes.

use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use gantry_api::text::{Escaped, is_unsafe};

use crate::cli::OutputFormat;

/// Text for people: records, one per line, each escaped when it is added. The only text
/// the printer takes, so no command can print outside text raw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn new() -> Text {
        Text::default()
    }

    /// A text of one record.
    pub fn line(args: fmt::Arguments<'_>) -> Text {
        let mut text = Text::new();
        text.push(args);
        text
    }

    /// Adds one record: `args` formatted, its unsafe characters (line breaks included)
    /// escaped, then a line break. Use [`textln!`] to call it.
    pub fn push(&mut self, args: fmt::Arguments<'_>) {
        let record = args.to_string();
        let _ = fmt::Write::write_fmt(&mut self.0, format_args!("{}\n", Escaped(&record)));
    }

    /// Adds the records of `other` after these.
    pub fn append(&mut self, other: &Text) {
        self.0.push_str(&other.0);
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `textln!(text, "format", args…)` adds one escaped record to a [`Text`].
macro_rules! textln {
    ($text:expr, $($arg:tt)*) => {
        $text.push(format_args!($($arg)*))
    };
}
pub(crate) use textln;

#[derive(Debug)]
pub struct Printer {
    format: OutputFormat,
    stderr_is_terminal: bool,
    /// Whether [`Printer::result`] wrote the command's document: a command that shows its
    /// result and then fails (`gantry why`, `gantry policy test`) still writes one JSON
    /// document on stdout, not a second one for the error.
    result_written: AtomicBool,
}

impl Printer {
    pub fn new(format: OutputFormat) -> Printer {
        Printer {
            format,
            stderr_is_terminal: std::io::stderr().is_terminal(),
            result_written: AtomicBool::new(false),
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Progress bars are drawn on stderr, and only on a terminal in text mode.
    pub fn wants_progress(&self) -> bool {
        self.stderr_is_terminal && !self.is_json()
    }

    /// The command's result: `text` for people, or `json` for scripts.
    pub fn result(&self, text: &Text, json: &serde_json::Value) {
        self.result_written.store(true, Ordering::Relaxed);
        let mut stdout = std::io::stdout().lock();
        let _ = if self.is_json() {
            writeln!(stdout, "{}", json_text(json, true))
        } else {
            write!(stdout, "{}", text.as_str())
        };
    }

    /// Raw bytes on stdout, exactly as given (`gantry inspect --raw`, for piping into
    /// `sha256sum`; nothing is escaped).
    pub fn raw(bytes: &[u8]) {
        let _ = std::io::stdout().lock().write_all(bytes);
    }

    /// A note for people on stderr (never mixed into JSON on stdout).
    pub fn note(text: &Text) {
        let _ = std::io::stderr().lock().write_all(text.as_str().as_bytes());
    }

    /// One line saying what failed and where; in JSON mode also a JSON error on stdout,
    /// unless the command's result is there already (it says what failed). The message
    /// may carry a server's or a registry's words: it is one escaped record.
    pub fn error(&self, error: &anyhow::Error) {
        let message = format!("{error:#}");
        Printer::note(&Text::line(format_args!("error: {message}")));
        if self.is_json() && !self.result_written.load(Ordering::Relaxed) {
            let _ = writeln!(
                std::io::stdout(),
                "{}",
                json_text(&serde_json::json!({ "error": message }), false)
            );
        }
    }
}

/// `value` as JSON text, with every unsafe character in a string (`serde_json` escapes
/// only C0 controls) written as a `\u` escape: the same document, safe on a terminal.
fn json_text(value: &serde_json::Value, pretty: bool) -> String {
    use serde::Serialize as _;

    let mut bytes = Vec::new();
    let result = if pretty {
        let mut serializer = serde_json::Serializer::with_formatter(
            &mut bytes,
            EscapingFormatter(serde_json::ser::PrettyFormatter::new()),
        );
        value.serialize(&mut serializer)
    } else {
        let mut serializer = serde_json::Serializer::with_formatter(
            &mut bytes,
            EscapingFormatter(serde_json::ser::CompactFormatter),
        );
        value.serialize(&mut serializer)
    };
    result.expect("a JSON value serializes");
    String::from_utf8(bytes).expect("serde_json writes UTF-8")
}

/// A `serde_json` formatter that writes the characters [`is_unsafe`] leaves to it (DEL, C1
/// controls, bidirectional overrides, line separators) as `\u` escapes.
struct EscapingFormatter<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for EscapingFormatter<F> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(is_unsafe) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().expect("a character");
            // Every unsafe character is in the Basic Multilingual Plane: one \u escape.
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_line_however_many_breaks_its_fields_hold() {
        let reason = "fixing\n  prod       held-by-someone-else\r\u{1b}[1A\u{1b}[2K";
        let mut text = Text::new();
        textln!(text, "  held by alice: {reason}");
        textln!(text, "second {}", "\u{9b}31m\u{202e}txet");
        assert_eq!(
            text.as_str(),
            "  held by alice: fixing\\n  prod       held-by-someone-else\\r\\x1b[1A\\x1b[2K\n\
             second \\u{9b}31m\\u{202e}txet\n"
        );
        assert_eq!(text.as_str().lines().count(), 2);
    }

    #[test]
    fn json_escapes_what_serde_leaves_and_means_the_same() {
        let value = serde_json::json!({
            "label": "a\u{1b}[2K\u{7f}\u{9b}\u{202e}\u{2029}z",
            "plain": ["ünï ✓", 1, null],
        });
        for pretty in [true, false] {
            let text = json_text(&value, pretty);
            assert!(
                !text.chars().any(|c| is_unsafe(c) && c != '\n' && c != ' '),
                "{text:?}"
            );
            assert!(
                text.contains(r"a\u001b[2K\u007f\u009b\u202e\u2029z"),
                "{text}"
            );
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, value);
        }
        assert_eq!(
            json_text(&value, true),
            serde_json::to_string_pretty(&value)
                .unwrap()
                .replace('\u{7f}', r"\u007f")
                .replace('\u{9b}', r"\u009b")
                .replace('\u{202e}', r"\u202e")
                .replace('\u{2029}', r"\u2029"),
            "only the escapes differ from serde_json's own output"
        );
    }
}
