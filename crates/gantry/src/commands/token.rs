//! `gantry token create NAME`

use clap::{Args, Subcommand};
use gantry_api::CreateToken;

use crate::printer::Printer;
use crate::server_args::ServerArgs;

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; it is printed this once and stored only as a hash.
    Create { name: String },
}

pub async fn run(args: TokenArgs, printer: &Printer) -> anyhow::Result<()> {
    let TokenCommand::Create { name } = args.command;
    let created = args
        .server
        .client()?
        .create_token(&CreateToken { name })
        .await?;
    printer.result(
        &format!(
            "token {} (shown once; keep it):\n{}\n",
            created.name, created.token
        ),
        &serde_json::to_value(&created)?,
    );
    Ok(())
}
