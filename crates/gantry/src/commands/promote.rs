//! `gantry promote`, `gantry rollback`, `gantry hold` and `gantry unhold`.

use std::time::{Duration, Instant};

use clap::Args;
use gantry_api::client::Client;
use gantry_api::{CreatePromotion, Hold, Promotion, Rollback};

use super::parse_name;
use crate::printer::{Printer, Text, textln};
use crate::server_args::ServerArgs;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  gantry promote --project payments --release 3f9a2c1e07 --to prod --wait --reason \"release 1.4.2\"\n\n\
The request carries an idempotency key (random, or --idempotency-key): a retried request never promotes twice."
)]
pub struct PromoteArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    /// Release id, id prefix or alias.
    #[arg(long)]
    pub release: String,
    /// The environment to promote into.
    #[arg(long = "to", value_name = "ENV", value_parser = parse_name)]
    pub environment: String,
    /// Why, for the ledger.
    #[arg(long)]
    pub reason: Option<String>,
    /// Wait until the promotion ends; exit 1 if it fails.
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait at most with --wait.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    /// Makes retries of this request (e.g. a CI job run again) return the first promotion.
    #[arg(long, value_name = "KEY", env = "GANTRY_IDEMPOTENCY_KEY")]
    pub idempotency_key: Option<String>,
    /// Take the emergency path past freeze windows and a stopped line. Only members of
    /// the environment's emergency group may, it needs more approvals, and the ledger
    /// records it as an emergency.
    #[arg(long)]
    pub emergency: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    #[arg(long = "env", value_name = "ENV", value_parser = parse_name)]
    pub environment: String,
    /// The release to put back (default: the one held before the current one).
    #[arg(long, value_name = "RELEASE")]
    pub to: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    #[arg(long = "env", value_name = "ENV", value_parser = parse_name)]
    pub environment: String,
    /// Why, recorded with who.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    /// The promotion's id (see gantry status or gantry history).
    #[arg(long, value_name = "ID")]
    pub promotion: i64,
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn cancel(args: CancelArgs, printer: &Printer) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let promotion = client
        .cancel(
            &args.project,
            args.promotion,
            &Hold {
                reason: args.reason,
            },
        )
        .await?;
    finish(&client, printer, promotion, false, 0).await
}

fn random_key() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    hex::encode(bytes)
}

pub async fn promote(args: PromoteArgs, printer: &Printer) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let key = args.idempotency_key.unwrap_or_else(random_key);
    let request = CreatePromotion {
        release: args.release,
        environment: args.environment,
        reason: args.reason,
        emergency: args.emergency,
    };
    // The same key on every try: a request lost on the way never promotes twice.
    let mut attempt = 0;
    let promotion = loop {
        attempt += 1;
        match client.promote(&args.project, &request, &key).await {
            Err(gantry_api::client::ClientError::Unreachable { .. }) if attempt < 3 => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => break other?,
        }
    };
    finish(&client, printer, promotion, args.wait, args.timeout).await
}

pub async fn rollback(args: RollbackArgs, printer: &Printer) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let promotion = client
        .rollback(
            &args.project,
            &args.environment,
            &Rollback {
                to: args.to,
                reason: args.reason,
            },
        )
        .await?;
    finish(&client, printer, promotion, args.wait, args.timeout).await
}

pub async fn hold(args: HoldArgs, printer: &Printer, hold: bool) -> anyhow::Result<()> {
    let client = args.server.client()?;
    client
        .hold(
            &args.project,
            &args.environment,
            hold,
            &Hold {
                reason: args.reason,
            },
        )
        .await?;
    let verb = if hold {
        "held: automation paused"
    } else {
        "resumed: automation follows upstream again"
    };
    printer.result(
        &Text::line(format_args!("{} {verb}", args.environment)),
        &serde_json::json!({"project": args.project, "environment": args.environment, "held": hold}),
    );
    Ok(())
}

/// Prints the promotion; with `wait`, first follows it until it ends.
async fn finish(
    client: &Client,
    printer: &Printer,
    mut promotion: Promotion,
    wait: bool,
    timeout: u64,
) -> anyhow::Result<()> {
    if wait {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        while matches!(promotion.state.as_str(), "waiting" | "queued" | "running") {
            anyhow::ensure!(
                Instant::now() < deadline,
                "promotion {} is still {} after {timeout} s",
                promotion.id,
                promotion.state
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            promotion = client.promotion(&promotion.project, promotion.id).await?;
        }
    }
    let mut text = Text::new();
    textln!(
        text,
        "promotion {} of release {} into {}: {}",
        promotion.id,
        promotion.release_alias,
        promotion.environment,
        promotion.state
    );
    if let Some(error) = &promotion.error {
        textln!(text, "error: {error}");
    }
    if promotion.state == "waiting" {
        textln!(
            text,
            "waiting for its gates: see `gantry why --project {} --release {} --to {}`",
            promotion.project,
            promotion.release_alias,
            promotion.environment
        );
    }
    printer.result(&text, &serde_json::to_value(&promotion)?);
    anyhow::ensure!(
        promotion.state != "rejected",
        "promotion {} rejected by its gates: {}",
        promotion.id,
        promotion.error.as_deref().unwrap_or("no reason given")
    );
    anyhow::ensure!(
        !wait || promotion.state == "succeeded",
        "promotion {} {}{}",
        promotion.id,
        promotion.state,
        promotion
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    Ok(())
}
