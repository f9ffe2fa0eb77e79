//! `gantry copy SRC DST`

use std::sync::Arc;

use clap::Args;
use gantry_core::Platform;
use gantry_oci::{CopyOptions, Endpoint, NoProgress, Progress};
use serde_json::json;

use super::{UsageError, human_bytes, parse_credentials, parse_reference};
use crate::printer::{Printer, Text, textln};
use crate::progress::Bars;
use crate::registry_args::RegistryArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  gantry copy registry.dev/team/api:1.4.2 registry.prod/team/api:1.4.2\n  \
  gantry copy registry.dev/team/api@sha256:… oci:/tmp/api-layout:1.4.2\n  \
  gantry copy --platform linux/arm64 docker.io/library/alpine:3.20 127.0.0.1:5000/alpine:3.20-arm64\n\n\
Order is blobs, then child manifests, then the index, then the tag: a tag never names \
incomplete content. The digest written is read back and compared; a copy with nothing to do \
makes one manifest request on each side.")]
pub struct CopyArgs {
    /// What to copy: host[:port]/repo[:tag][@digest] or oci:DIR[:tag][@digest].
    pub source: String,
    /// Where to: the same forms. A target digest, if given, must equal the source's.
    pub target: String,
    /// Copy only this platform's manifest out of an index (os/arch[/variant]). The
    /// copied digest is then that platform's manifest, not the index's.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Do not copy signatures, SBOMs and attestations attached to the digest.
    #[arg(long)]
    pub no_referrers: bool,
    /// Blobs transferred at once.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Credentials for the source registry (USER:PASSWORD).
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "GANTRY_SRC_CREDS",
        hide_env_values = true
    )]
    pub src_creds: Option<String>,
    /// Credentials for the target registry (USER:PASSWORD).
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "GANTRY_DEST_CREDS",
        hide_env_values = true
    )]
    pub dest_creds: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: CopyArgs, printer: &Printer) -> anyhow::Result<()> {
    let source = Endpoint::new(parse_reference("SOURCE", &args.source)?)
        .with_credentials(parse_credentials("--src-creds", args.src_creds.as_deref())?);
    let target = Endpoint::new(parse_reference("TARGET", &args.target)?).with_credentials(
        parse_credentials("--dest-creds", args.dest_creds.as_deref())?,
    );
    let platform = args
        .platform
        .as_deref()
        .map(|p| {
            p.parse::<Platform>()
                .map_err(|e| UsageError(format!("--platform: {e}")))
        })
        .transpose()?;
    let options = CopyOptions {
        platform,
        referrers: !args.no_referrers,
        jobs: usize::from(args.jobs),
        ..CopyOptions::default()
    };
    let registries = args.registry.registries()?;
    let bars = printer.wants_progress().then(|| Arc::new(Bars::new()));
    let progress: Arc<dyn Progress> = match &bars {
        Some(bars) => bars.clone(),
        None => Arc::new(NoProgress),
    };
    let result = gantry_oci::copy(&registries, &source, &target, &options, progress).await;
    if let Some(bars) = &bars {
        bars.finish();
    }
    let report = result?;
    let mut text = Text::new();
    if let Some(platform) = &report.platform {
        Printer::note(&Text::line(format_args!(
            "note: copied only {platform}: the digest at the target is that platform's manifest {}, not the index {}",
            report.target_digest, report.source_digest
        )));
    }
    let seconds = report.duration.as_secs_f64();
    if report.up_to_date {
        textln!(
            text,
            "{} already holds {}: nothing to copy",
            report.target,
            report.target_digest
        );
    } else {
        textln!(text, "copied {} -> {}", report.source, report.target);
        textln!(text, "digest  {}", report.target_digest);
        textln!(
            text,
            "blobs   {} copied ({}), {} already there, {} mounted{}",
            report.blobs_copied,
            human_bytes(report.bytes_copied),
            report.blobs_skipped,
            report.blobs_mounted,
            if report.blobs_foreign > 0 {
                format!(", {} foreign (not copied)", report.blobs_foreign)
            } else {
                String::new()
            },
        );
    }
    if report.referrers_copied > 0 {
        textln!(text, "referrers {} copied", report.referrers_copied);
    }
    textln!(text, "time    {seconds:.2}s");
    printer.result(
        &text,
        &json!({
            "source": report.source,
            "target": report.target,
            "source_digest": report.source_digest.as_str(),
            "target_digest": report.target_digest.as_str(),
            "media_type": report.media_type,
            "platform": report.platform.as_ref().map(ToString::to_string),
            "up_to_date": report.up_to_date,
            "manifests": {"written": report.manifests_written, "present": report.manifests_present},
            "blobs": {
                "copied": report.blobs_copied,
                "skipped": report.blobs_skipped,
                "mounted": report.blobs_mounted,
                "foreign": report.blobs_foreign,
            },
            "bytes_copied": report.bytes_copied,
            "referrers_copied": report.referrers_copied,
            "duration_ms": report.duration.as_millis() as u64,
        }),
    );
    Ok(())
}
