//! The `gantry` binary: parse, set up logging, run one command, map the outcome to an
//! exit code. Each command lives in its own file under `commands/`.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod commands;
mod printer;
mod progress;
mod registry_args;
mod server_args;

use cli::Cli;

/// Exit codes, documented in `gantry --help`.
pub(crate) mod exit {
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let printer = printer::Printer::new(cli.global.output);
    // One thread: a copy is I/O-bound (its CPU is a small fraction of one core), and a
    // single thread means a single malloc arena, which keeps peak memory flat however
    // large the image; worker threads each grow an arena of their own.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(commands::run(cli.command, &printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = if error.downcast_ref::<commands::UsageError>().is_some() {
                exit::USAGE
            } else if matches!(
                error.downcast_ref(),
                Some(gantry_api::client::ClientError::Unreachable { .. })
            ) {
                exit::UNREACHABLE
            } else {
                exit::FAILED
            };
            printer.error(&error);
            ExitCode::from(code)
        }
    }
}

/// Logs go to stderr; `-v` shows what Gantry does, `-vv` every request. `GANTRY_LOG`
/// (a tracing filter) overrides both.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,gantry=debug",
        _ => "debug",
    };
    let filter = std::env::var(cli::env::GANTRY_LOG)
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
