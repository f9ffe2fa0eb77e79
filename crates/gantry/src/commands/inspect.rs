//! `gantry inspect REF`

use clap::Args;
use gantry_core::Platform;
use gantry_oci::Endpoint;
use serde_json::json;

use super::{UsageError, human_bytes, parse_credentials, parse_reference};
use crate::printer::{Printer, Text, textln};
use crate::registry_args::RegistryArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  gantry inspect registry.dev/team/api:1.4.2\n  \
  gantry inspect --raw registry.dev/team/api:1.4.2 | sha256sum\n  \
  gantry inspect -o json registry.dev/team/api:1.4.2 | jq -r .digest")]
pub struct InspectArgs {
    /// host[:port]/repo[:tag][@digest] or oci:DIR[:tag][@digest].
    pub reference: String,
    /// Print the manifest's bytes exactly as stored (its sha256 is the digest).
    #[arg(long, conflicts_with = "platform")]
    pub raw: bool,
    /// Show the config of this platform's image in an index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
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

pub async fn run(args: InspectArgs, printer: &Printer) -> anyhow::Result<()> {
    let endpoint = Endpoint::new(parse_reference("REFERENCE", &args.reference)?)
        .with_credentials(parse_credentials("--creds", args.creds.as_deref())?);
    let platform = args
        .platform
        .as_deref()
        .map(|p| {
            p.parse::<Platform>()
                .map_err(|e| UsageError(format!("--platform: {e}")))
        })
        .transpose()?;
    let registries = args.registry.registries()?;
    let inspection = gantry_oci::inspect(&registries, &endpoint, platform.as_ref()).await?;
    if args.raw {
        Printer::raw(&inspection.raw);
        return Ok(());
    }
    let mut text = Text::new();
    textln!(text, "reference  {}", inspection.reference);
    textln!(text, "digest     {}", inspection.digest);
    textln!(text, "media type {}", inspection.media_type);
    textln!(text, "size       {}", human_bytes(inspection.size));
    if let Some(artifact_type) = &inspection.artifact_type {
        textln!(text, "artifact   {artifact_type}");
    }
    if !inspection.manifests.is_empty() {
        textln!(text, "platforms");
        for manifest in &inspection.manifests {
            let platform = manifest
                .platform
                .as_ref()
                .map_or_else(|| "-".to_owned(), |p| p.to_platform().to_string());
            textln!(text, "  {platform:<20} {}", manifest.digest);
        }
    } else if let Some(platform) = &inspection.platform {
        textln!(text, "platform   {platform}");
    }
    if let Some(created) = &inspection.created {
        textln!(text, "created    {created}");
    }
    if !inspection.labels.is_empty() {
        match (&inspection.config_source, inspection.manifests.is_empty()) {
            (Some(source), false) => {
                textln!(text, "labels (of {})", source.short());
            }
            _ => textln!(text, "labels"),
        }
        for (key, value) in &inspection.labels {
            textln!(text, "  {key}={value}");
        }
    }
    let manifests: Vec<_> = inspection
        .manifests
        .iter()
        .map(|m| {
            json!({
                "digest": m.digest,
                "media_type": m.media_type,
                "size": m.size,
                "platform": m.platform.as_ref().map(|p| p.to_platform().to_string()),
            })
        })
        .collect();
    printer.result(
        &text,
        &json!({
            "reference": inspection.reference,
            "digest": inspection.digest.as_str(),
            "media_type": inspection.media_type,
            "size": inspection.size,
            "artifact_type": inspection.artifact_type,
            "manifests": manifests,
            "platform": inspection.platform.as_ref().map(ToString::to_string),
            "config_source": inspection.config_source.as_ref().map(gantry_core::Digest::as_str),
            "created": inspection.created,
            "labels": inspection.labels,
            "annotations": inspection.annotations,
        }),
    );
    Ok(())
}
