//! The `gantry` binary: parse, set up logging, run one command, map the outcome to an
//! exit code. Each command lives in its own file under `commands/`.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod commands;
mod logging;
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
    logging::init(cli.global.verbose);
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
