//! `gantry token create NAME [--expires 30d]`, `gantry token list`, `gantry token revoke NAME`

use clap::{Args, Subcommand};
use gantry_api::CreateToken;

use super::parse_name;
use crate::printer::{Printer, Text, textln};
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
    #[command(
        after_help = "A token acts for a user or a service account, which may do what its grants \
say (gantry access --help).\n\nExample:\n  gantry token create payments-ci --service-account payments-ci --expires 90d\n  \
gantry access grant promoter --to service:payments-ci --project payments --environment dev\n  \
export GANTRY_TOKEN=...   # in the CI system's secret store"
    )]
    Create {
        #[arg(value_parser = parse_name)]
        name: String,
        /// The user it acts for [default: the user named like the token].
        #[arg(long, value_name = "NAME", conflicts_with = "service_account", value_parser = parse_name)]
        user: Option<String>,
        /// The service account it acts for, e.g. payments-ci.
        #[arg(long, value_name = "NAME", value_parser = parse_name)]
        service_account: Option<String>,
        /// How long it works: 30d, 12h, 90m (or ISO 8601, PT2H); without it, until revoked.
        #[arg(long, value_name = "DURATION", value_parser = |text: &str| {
            gantry_engine::project_file::gates::duration(text).map(|_| text.to_owned())
        })]
        expires: Option<String>,
    },
    /// List the tokens (never their secrets), with when they expire or were revoked.
    List,
    /// Revoke a token: it stops working at once, for good.
    Revoke {
        #[arg(value_parser = parse_name)]
        name: String,
    },
}

pub async fn run(args: TokenArgs, printer: &Printer) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.command {
        TokenCommand::Create {
            name,
            user,
            service_account,
            expires,
        } => {
            let principal = user.or(service_account.map(|account| format!("service:{account}")));
            let created = client
                .create_token(&CreateToken {
                    name,
                    principal,
                    expires_in: expires,
                })
                .await?;
            let mut text = Text::new();
            textln!(text, "token {} (shown once; keep it):", created.name);
            textln!(text, "{}", created.token);
            printer.result(&text, &serde_json::to_value(&created)?);
        }
        TokenCommand::List => {
            let tokens = client.tokens().await?;
            let mut text = Text::new();
            textln!(
                text,
                "{:<24} {:<24} {:<25} {:<12} {}",
                "NAME",
                "FOR",
                "CREATED",
                "BY",
                "STATE"
            );
            for token in &tokens {
                let state = match (&token.revoked_at, &token.expires_at) {
                    (Some(at), _) => format!(
                        "revoked {at} by {}",
                        token.revoked_by.as_deref().unwrap_or("?")
                    ),
                    (None, Some(at)) => format!("expires {at}"),
                    (None, None) => "never expires".to_owned(),
                };
                textln!(
                    text,
                    "{:<24} {:<24} {:<25} {:<12} {state}",
                    token.name,
                    token.principal,
                    token.created_at,
                    token.created_by
                );
            }
            printer.result(&text, &serde_json::to_value(&tokens)?);
        }
        TokenCommand::Revoke { name } => {
            client.revoke_token(&name).await?;
            printer.result(
                &Text::line(format_args!("token {name} revoked")),
                &serde_json::json!({"revoked": name}),
            );
        }
    }
    Ok(())
}
