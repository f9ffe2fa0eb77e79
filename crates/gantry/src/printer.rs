//! The one place the binary writes to stdout and stderr: it knows the output format and
//! whether stdout is a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::OutputFormat;

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
    pub fn result(&self, text: &str, json: &serde_json::Value) {
        self.result_written.store(true, Ordering::Relaxed);
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

    /// One line saying what failed and where; in JSON mode also a JSON error on stdout,
    /// unless the command's result is there already (it says what failed).
    pub fn error(&self, error: &anyhow::Error) {
        let message = format!("{error:#}");
        eprintln!("error: {message}");
        if self.is_json() && !self.result_written.load(Ordering::Relaxed) {
            let _ = writeln!(
                std::io::stdout(),
                "{}",
                serde_json::json!({ "error": message })
            );
        }
    }
}
