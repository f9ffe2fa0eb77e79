//! `gantry release create|show`

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use gantry_api::{CreateRelease, Release};
use gantry_core::{Name, ReleaseSource};

use super::{UsageError, parse_name};
use crate::printer::{Printer, Text, textln};
use crate::server_args::ServerArgs;

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(subcommand)]
    pub command: ReleaseCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Resolve every component's reference to a digest once and record an immutable
    /// release. The same digests again return the existing release.
    #[command(
        after_help = "Example:\n  gantry release create --project payments api=sha-4f2c1e9 \\\n      worker=registry.dev/payments/worker@sha256:0c7a… --label ci.run=8812\n\n\
A component comes from its `source` in the project file: name a tag (api=TAG) or a digest \
(api=@sha256:…) there, or write the repository out (api=HOST/REPO:TAG, api=HOST/REPO@sha256:…). \
Other repositories need `also_from:` on the component; OCI layouts (oci:DIR) are for `gantry copy`. \
A reference without a tag or digest is refused, never read as latest."
    )]
    Create {
        #[arg(long, value_parser = parse_name)]
        project: String,
        /// COMPONENT=TAG, COMPONENT=@DIGEST or COMPONENT=HOST/REPO:TAG, for every component
        /// of the project.
        #[arg(required = true, value_name = "COMPONENT=REF")]
        components: Vec<String>,
        /// KEY=VALUE metadata (a CI run, a ticket). Repeatable.
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
    },
    /// Show a release by id, id prefix or alias.
    Show {
        #[arg(long, value_parser = parse_name)]
        project: String,
        release: String,
    },
}

fn pairs(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>, UsageError> {
    let mut map = BTreeMap::new();
    for item in items {
        let (key, value) = item
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| UsageError(format!("{flag} {item:?}: expected KEY=VALUE")))?;
        if map.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(UsageError(format!("{flag}: {key} is given twice")));
        }
    }
    Ok(map)
}

/// Checks every COMPONENT=REF for its form before the request: a malformed name or
/// reference is a usage error (exit 2). Whether the component may come from there is
/// the project's rule, which the server applies (and records when it refuses).
fn check_components(components: &BTreeMap<String, String>) -> Result<(), UsageError> {
    for (component, reference) in components {
        component
            .parse::<Name>()
            .map_err(|e| UsageError(format!("COMPONENT=REF: component {e}")))?;
        reference
            .parse::<ReleaseSource>()
            .map_err(|reason| UsageError(format!("{component}: {reason}")))?;
    }
    Ok(())
}

pub async fn run(args: ReleaseArgs, printer: &Printer) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let release = match args.command {
        ReleaseCommand::Create {
            project,
            components,
            labels,
        } => {
            let request = CreateRelease {
                components: pairs("COMPONENT=REF", &components)?,
                labels: pairs("--label", &labels)?,
            };
            check_components(&request.components)?;
            client.create_release(&project, &request).await?
        }
        ReleaseCommand::Show { project, release } => client.release(&project, &release).await?,
    };
    printer.result(&describe(&release), &serde_json::to_value(&release)?);
    Ok(())
}

pub fn describe(release: &Release) -> Text {
    let mut text = Text::new();
    textln!(
        text,
        "release {}{}",
        release.alias,
        if release.created { " (new)" } else { "" }
    );
    textln!(text, "id      {}", release.id);
    textln!(
        text,
        "created {} by {}",
        release.created_at,
        release.created_by
    );
    for artifact in &release.artifacts {
        textln!(
            text,
            "  {:<12} {}  from {}",
            artifact.component,
            artifact.digest,
            artifact.source
        );
        if let Some(revision) = artifact.labels.get("org.opencontainers.image.revision") {
            textln!(text, "  {:<12} revision {revision}", "");
        }
    }
    for (key, value) in &release.labels {
        textln!(text, "  label {key}={value}");
    }
    text
}

/// `gantry show --project P --release R`: the same as `gantry release show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    /// Release id, id prefix or alias.
    #[arg(long)]
    pub release: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn show(args: ShowArgs, printer: &Printer) -> anyhow::Result<()> {
    let release = args
        .server
        .client()?
        .release(&args.project, &args.release)
        .await?;
    printer.result(&describe(&release), &serde_json::to_value(&release)?);
    Ok(())
}
