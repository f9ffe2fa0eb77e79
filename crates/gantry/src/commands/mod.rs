//! One file per command; each turns its flags into settings and calls one library function.

pub mod access;
pub mod admin;
pub mod board;
pub mod copy;
pub mod gates;
pub mod inspect;
pub mod ledger;
pub mod policy;
pub mod promote;
pub mod release;
pub mod serve;
pub mod tag;
pub mod token;

use gantry_core::Reference;
use gantry_oci::Credentials;

use crate::cli::Command;
use crate::printer::Printer;

/// Bad input on the command line: exit code 2, like clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::error::Error for UsageError {}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub async fn run(command: Command, printer: &Printer) -> anyhow::Result<()> {
    match command {
        Command::Copy(args) => copy::run(args, printer).await,
        Command::Access(args) => access::run(args, printer).await,
        Command::Whoami(args) => access::whoami(args, printer).await,
        Command::Admin(args) => admin::run(args, printer).await,
        Command::Inspect(args) => inspect::run(args, printer).await,
        Command::Tag(args) => tag::run(args, printer).await,
        Command::Ledger(args) => ledger::run(args, printer).await,
        Command::Serve(args) => serve::run(args, printer).await,
        Command::Release(args) => release::run(args, printer).await,
        Command::Show(args) => release::show(args, printer).await,
        Command::Promote(args) => promote::promote(args, printer).await,
        Command::Rollback(args) => promote::rollback(args, printer).await,
        Command::Cancel(args) => promote::cancel(args, printer).await,
        Command::Hold(args) => promote::hold(args, printer, true).await,
        Command::Unhold(args) => promote::hold(args, printer, false).await,
        Command::Status(args) => board::status(args, printer).await,
        Command::History(args) => board::history(args, printer).await,
        Command::Token(args) => token::run(args, printer).await,
        Command::Evidence(args) => gates::evidence(args, printer).await,
        Command::Approve(args) => gates::approve(args, printer, true).await,
        Command::Reject(args) => gates::approve(args, printer, false).await,
        Command::Why(args) => gates::why(args, printer).await,
        Command::Stop(args) => gates::stop(args, printer, true).await,
        Command::Resume(args) => gates::stop(args, printer, false).await,
        Command::Policy(args) => policy::run(args, printer),
    }
}

/// Parses a reference argument; the error names the argument and the wrong part.
pub fn parse_reference(argument: &str, text: &str) -> Result<Reference, UsageError> {
    text.parse()
        .map_err(|e| UsageError(format!("{argument}: {e}")))
}

/// A clap value parser for project, environment and component names: a malformed name
/// is a usage error (exit 2) found before anything is asked of the server.
pub fn parse_name(text: &str) -> Result<String, gantry_core::NameError> {
    text.parse::<gantry_core::Name>().map(|_| text.to_owned())
}

/// Parses `USER:PASSWORD` from a credentials flag without ever echoing it.
pub fn parse_credentials(
    flag: &str,
    text: Option<&str>,
) -> Result<Option<Credentials>, UsageError> {
    text.map(|text| {
        Credentials::parse(text).map_err(|_| {
            UsageError(format!(
                "{flag}: expected USER:PASSWORD (the user must not be empty)"
            ))
        })
    })
    .transpose()
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
