//! `gantry status` and `gantry history`: what is where, and how it got there.

use clap::Args;

use super::parse_name;
use crate::printer::{Printer, Text, textln};
use crate::server_args::ServerArgs;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    /// Only this environment.
    #[arg(long = "env", value_name = "ENV", value_parser = parse_name)]
    pub environment: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub server: ServerArgs,
}

fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    &hex[..hex.len().min(12)]
}

pub async fn status(args: StatusArgs, printer: &Printer) -> anyhow::Result<()> {
    let board = args.server.client()?.status(&args.project).await?;
    let mut text = Text::new();
    textln!(
        text,
        "{:<14} {:<6} {:<12} {:<25} {:<12} {}",
        "ENVIRONMENT",
        "BIND",
        "RELEASE",
        "SINCE",
        "BY",
        "PENDING"
    );
    for environment in &board.environments {
        let pending: Vec<String> = environment
            .pending
            .iter()
            .map(|p| {
                let on = p
                    .runner
                    .as_deref()
                    .map(|runner| format!(" on {runner}"))
                    .unwrap_or_default();
                format!("{} {}{on} ({})", p.release_alias, p.state, p.kind)
            })
            .collect();
        textln!(
            text,
            "{:<14} {:<6} {:<12} {:<25} {:<12} {}",
            environment.name,
            environment.binding,
            environment.release_alias.as_deref().unwrap_or("-"),
            environment.since.as_deref().unwrap_or("-"),
            environment.moved_by.as_deref().unwrap_or("-"),
            if pending.is_empty() {
                "-".to_owned()
            } else {
                pending.join(", ")
            }
        );
        for (component, digest) in &environment.digests {
            textln!(text, "  {component:<12} {}", short(digest));
        }
        for waiting in &environment.pending {
            if let Some(needs) = &waiting.needs {
                textln!(text, "  {} waits for: {needs}", waiting.release_alias);
            }
        }
        if let Some(hold) = &environment.hold {
            textln!(
                text,
                "  held by {} since {}{}",
                hold.by,
                hold.since,
                hold.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
    }
    // What the server found wrong, last so it is what a reader sees at the bottom.
    for warning in &board.warnings {
        textln!(text, "warning: {warning}");
    }
    printer.result(&text, &serde_json::to_value(&board)?);
    Ok(())
}

pub async fn history(args: HistoryArgs, printer: &Printer) -> anyhow::Result<()> {
    let promotions = args
        .server
        .client()?
        .history(&args.project, args.environment.as_deref(), args.limit)
        .await?;
    let mut text = Text::new();
    textln!(
        text,
        "{:<6} {:<14} {:<12} {:<10} {:<10} {:<25} {}",
        "ID",
        "ENVIRONMENT",
        "RELEASE",
        "KIND",
        "STATE",
        "REQUESTED",
        "BY"
    );
    for p in &promotions {
        textln!(
            text,
            "{:<6} {:<14} {:<12} {:<10} {:<10} {:<25} {}{}",
            p.id,
            p.environment,
            p.release_alias,
            p.kind,
            p.state,
            p.requested_at,
            p.requested_by,
            p.error
                .as_deref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
    printer.result(&text, &serde_json::to_value(&promotions)?);
    Ok(())
}
