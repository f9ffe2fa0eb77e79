//! `gantry access grant|revoke|list` and `gantry whoami`: who may do what.

use clap::{Args, Subcommand};
use gantry_api::Grant;
use gantry_core::{Principal, Role};

use super::parse_name;
use crate::printer::{Printer, Text, textln};
use crate::server_args::ServerArgs;

#[derive(Debug, Args)]
#[command(after_help = "\
Roles:
  viewer    reads releases, promotions, evidence, decisions, status (and, over the server, the ledger)
  promoter  viewer, and creates releases, hands in evidence, promotes, rolls back, cancels, holds
  approver  viewer, and approves or rejects releases
  admin     everything: stops the line, tokens and grants

A grant covers the whole server (no --project), a project, or one environment of it.
A grant over an environment also lets its holder see that environment's project.

Examples:
  gantry access grant promoter --to service:payments-ci --project payments --environment dev
  gantry access grant approver --to alice --project payments --environment prod
  gantry access grant viewer --to bob --project payments
  gantry access revoke approver --to alice --project payments --environment prod
  gantry access list")]
pub struct AccessArgs {
    #[command(subcommand)]
    pub command: AccessCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// A role, who gets it and where.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// viewer, promoter, approver or admin.
    #[arg(value_parser = |text: &str| text.parse::<Role>().map(|_| text.to_owned()))]
    pub role: String,
    /// A user (alice) or a service account (service:payments-ci).
    #[arg(long, value_name = "PRINCIPAL", value_parser = |text: &str| text.parse::<Principal>().map(|_| text.to_owned()))]
    pub to: String,
    /// The project it covers; without it, the whole server.
    #[arg(long, value_parser = parse_name)]
    pub project: Option<String>,
    /// One environment of the project; without it, the whole project.
    #[arg(long, requires = "project", value_parser = parse_name)]
    pub environment: Option<String>,
}

impl GrantArgs {
    fn wire(self) -> Grant {
        Grant {
            principal: self.to,
            role: self.role,
            project: self.project,
            environment: self.environment,
            granted_by: None,
            granted_at: None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Give a principal a role over the server, a project or an environment.
    Grant(GrantArgs),
    /// Take a grant away.
    Revoke(GrantArgs),
    /// Every grant on the server.
    List,
}

/// Where a grant applies, for people.
fn scope(grant: &Grant) -> String {
    match (&grant.project, &grant.environment) {
        (None, _) => "server".to_owned(),
        (Some(project), None) => project.clone(),
        (Some(project), Some(environment)) => format!("{project}/{environment}"),
    }
}

fn table(grants: &[Grant]) -> Text {
    let mut text = Text::new();
    textln!(
        text,
        "{:<28} {:<9} {:<28} {}",
        "PRINCIPAL",
        "ROLE",
        "SCOPE",
        "GRANTED"
    );
    for grant in grants {
        textln!(
            text,
            "{:<28} {:<9} {:<28} {} by {}",
            grant.principal,
            grant.role,
            scope(grant),
            grant.granted_at.as_deref().unwrap_or("?"),
            grant.granted_by.as_deref().unwrap_or("?"),
        );
    }
    text
}

pub async fn run(args: AccessArgs, printer: &Printer) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.command {
        AccessCommand::Grant(grant) => {
            let kept = client.grant(&grant.wire()).await?;
            printer.result(
                &Text::line(format_args!(
                    "{} is {} over {}",
                    kept.principal,
                    kept.role,
                    scope(&kept)
                )),
                &serde_json::to_value(&kept)?,
            );
        }
        AccessCommand::Revoke(grant) => {
            let grant = grant.wire();
            client.revoke_grant(&grant).await?;
            printer.result(
                &Text::line(format_args!(
                    "{} is no longer {} over {}",
                    grant.principal,
                    grant.role,
                    scope(&grant)
                )),
                &serde_json::to_value(&grant)?,
            );
        }
        AccessCommand::List => {
            let grants = client.grants().await?;
            printer.result(&table(&grants), &serde_json::to_value(&grants)?);
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct WhoAmIArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn whoami(args: WhoAmIArgs, printer: &Printer) -> anyhow::Result<()> {
    let me = args.server.client()?.whoami().await?;
    let mut text = Text::line(format_args!("{}", me.principal));
    if me.grants.is_empty() {
        textln!(
            text,
            "no grants: ask an admin (gantry access grant ROLE --to NAME ...)"
        );
    } else {
        for grant in &me.grants {
            textln!(text, "  {:<9} {}", grant.role, scope(grant));
        }
    }
    printer.result(&text, &serde_json::to_value(&me)?);
    Ok(())
}
