//! `gantry tag REF NEWTAG...`

use clap::Args;
use gantry_core::{Reference, Tag};
use gantry_oci::Endpoint;
use serde_json::json;

use super::{UsageError, parse_credentials, parse_reference};
use crate::printer::{Printer, Text, textln};
use crate::registry_args::RegistryArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  gantry tag registry.example/team/api:sha-4f2c1e9 staging\n  \
  gantry tag registry.example/team/api@sha256:… prod prod-2026-11-21\n\n\
One manifest read, then one write per tag; each write's digest is checked. No blob moves.")]
pub struct TagArgs {
    /// What to tag: host[:port]/repo[:tag][@digest].
    pub reference: String,
    /// The new tags, in the same repository.
    #[arg(required = true, value_name = "NEWTAG")]
    pub tags: Vec<String>,
    /// Credentials for the registry (USER:PASSWORD).
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "GANTRY_CREDS",
        hide_env_values = true
    )]
    pub creds: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: TagArgs, printer: &Printer) -> anyhow::Result<()> {
    let reference = parse_reference("REFERENCE", &args.reference)?;
    if let Reference::Layout(_) = reference {
        return Err(UsageError("REFERENCE: gantry tag works inside a registry repository; use gantry copy for OCI layouts".to_owned()).into());
    }
    let tags = args
        .tags
        .iter()
        .map(|t| {
            t.parse::<Tag>()
                .map_err(|reason| UsageError(format!("NEWTAG {t:?} {reason}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let endpoint = Endpoint::new(reference)
        .with_credentials(parse_credentials("--creds", args.creds.as_deref())?);
    let registries = args.registry.registries()?;
    let report = gantry_oci::tag(&registries, &endpoint, &tags).await?;
    let names: Vec<&str> = report.tags.iter().map(Tag::as_str).collect();
    let mut text = Text::new();
    textln!(text, "tagged {} as {}", report.source, names.join(", "));
    textln!(text, "digest {}", report.digest);
    printer.result(
        &text,
        &json!({"source": report.source, "digest": report.digest.as_str(), "media_type": report.media_type, "tags": names}),
    );
    Ok(())
}
