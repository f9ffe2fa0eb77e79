//! Logs on stderr, through `tracing`. Coloured only on a terminal (and never with
//! `NO_COLOR`), and every field escaped: a log line quotes outside text (a registry's
//! error, a tag, a token's claims), which must neither drive the terminal nor start a
//! line of its own in a log file.

use std::io::IsTerminal as _;

use gantry_api::text::Escaped;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt as _;

use crate::cli::env;

/// Logs go to stderr; `-v` shows what Gantry does, `-vv` every request. `GANTRY_LOG`
/// (a tracing filter) overrides both.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,gantry=debug",
        _ => "debug",
    };
    let filter = std::env::var(env::GANTRY_LOG)
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let no_color = std::env::var_os(env::NO_COLOR).is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .fmt_fields(fields())
        .init();
}

/// How fields are written: `name=value`, the message bare, each value escaped whether it
/// was recorded with `%` (Display, which tracing writes as it is) or `?` (Debug).
fn fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + 'static {
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            write!(writer, "{}", Escaped(&text))
        } else {
            write!(writer, "{}={}", field.name(), Escaped(&text))
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn outside_text_in_a_log_field_stays_on_its_line_and_inert() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_target(false)
            .fmt_fields(super::fields())
            .finish();
        let forged = "a\n2030-01-01T00:00:00Z  INFO forged line\r\u{1b}[2K\u{9b}1A\u{202e}";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", path = %forged);
            let _entered = span.enter();
            tracing::warn!(error = %forged, tag = forged, "cannot read {forged}");
        });
        let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(logged.lines().count(), 1, "{logged}");
        assert!(
            !logged.trim_end().chars().any(gantry_api::text::is_unsafe),
            "{logged:?}"
        );
        assert!(
            logged.contains(
                r"error=a\n2030-01-01T00:00:00Z  INFO forged line\r\x1b[2K\u{9b}1A\u{202e}"
            ),
            "{logged}"
        );
        assert!(logged.contains("WARN request{path=a\\n"), "{logged}");
    }
}
