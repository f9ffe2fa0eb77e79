//! The one place the binary writes to stdout and stderr: it knows the output format and
//! whether stdout is a terminal.

use std::io::{IsTerminal as _, Write as _};

use crate::cli::OutputFormat;

#[derive(Debug)]
pub struct Printer {
    format: OutputFormat,
    stderr_is_terminal: bool,
}

impl Printer {
    pub fn new(format: OutputFormat) -> Printer {
        Printer {
            format,
            stderr_is_terminal: std::io::stderr().is_terminal(),
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
    pub fn result(&self, text: &str, json: &serde_json::Value) {
        let mut stdout = std::io::stdout().lock();
        let _ = if self.is_json() {
            writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(json).expect("JSON")
            )
        } else {
            write!(stdout, "{text}")
        };
    }

    /// Raw bytes on stdout, exactly as given.
    pub fn raw(bytes: &[u8]) {
        let _ = std::io::stdout().lock().write_all(bytes);
    }

    /// A note for people on stderr (never mixed into JSON on stdout).
    pub fn note(text: &str) {
        eprintln!("{text}");
    }

    /// One line saying what failed and where; in JSON mode also a JSON error on stdout.
    pub fn error(&self, error: &anyhow::Error) {
        let message = format!("{error:#}");
        eprintln!("error: {message}");
        if self.is_json() {
            let _ = writeln!(
                std::io::stdout(),
                "{}",
                serde_json::json!({ "error": message })
            );
        }
    }
}
