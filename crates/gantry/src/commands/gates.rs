//! `gantry evidence add`, `gantry evidence pull`, `gantry approve`, `gantry reject`, `gantry why`,
//! `gantry stop` and `gantry resume`: gates from the command line.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use gantry_api::{CreateApproval, Decision, Stop};

use super::{UsageError, parse_name};
use crate::printer::{Printer, Text, textln};
use crate::server_args::ServerArgs;

#[derive(Debug, Args)]
pub struct EvidenceArgs {
    #[command(subcommand)]
    pub command: EvidenceCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Hand in a report about a release (or one component of it). It is parsed, checked
    /// to be about the release's digests, kept by digest, and its gates look again.
    #[command(
        after_help = "Kinds: junit, sarif, trivy, grype, cyclonedx, spdx, slsa-provenance, generic:TYPE\n\nExample:\n  gantry evidence add --project payments --release 4f2c1e9a0b --component api --kind junit target/surefire-reports/TEST-api.xml"
    )]
    Add {
        #[arg(long, value_parser = parse_name)]
        project: String,
        /// Release id, id prefix or alias.
        #[arg(long)]
        release: String,
        /// The component it is about; without it, the whole release.
        #[arg(long, value_parser = parse_name)]
        component: Option<String>,
        #[arg(long)]
        kind: String,
        /// The report; `-` reads standard input.
        file: PathBuf,
    },
    /// Look at the registry now for signatures and attestations beside the release's
    /// digests (referrers, or cosign's `.sig` and `.att` tags). What verifies against
    /// the project's `trust:` counts for `signed_by` gates, and signed SLSA
    /// provenance is kept as evidence; what does not verify is refused and recorded.
    /// Gates also look by themselves when they decide; run this right after signing
    /// in CI so waiting promotions move at once.
    #[command(
        after_help = "Example:\n  cosign sign --key cosign.key registry.example/payments/api@sha256:…\n  gantry evidence pull --project payments --release 4f2c1e9a0b"
    )]
    Pull {
        #[arg(long, value_parser = parse_name)]
        project: String,
        /// Release id, id prefix or alias.
        #[arg(long)]
        release: String,
    },
}

pub async fn evidence(args: EvidenceArgs, printer: &Printer) -> anyhow::Result<()> {
    let (project, release, component, kind, file) = match args.command {
        EvidenceCommand::Add {
            project,
            release,
            component,
            kind,
            file,
        } => (project, release, component, kind, file),
        EvidenceCommand::Pull { project, release } => {
            return pull(&args.server, &project, &release, printer).await;
        }
    };
    let bytes = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| UsageError(format!("reading standard input: {e}")))?;
        bytes
    } else {
        std::fs::read(&file)
            .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?
    };
    let client = args.server.client()?;
    let evidence = client
        .add_evidence(&project, &release, &kind, component.as_deref(), bytes)
        .await?;
    let mut text = Text::new();
    textln!(
        text,
        "{} evidence {} for {}{}: {}",
        if evidence.created {
            "kept"
        } else {
            "already had"
        },
        evidence.kind,
        release,
        evidence
            .component
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default(),
        evidence.digest
    );
    textln!(text, "  {}", evidence.summary);
    printer.result(&text, &serde_json::to_value(&evidence)?);
    Ok(())
}

async fn pull(
    server: &ServerArgs,
    project: &str,
    release: &str,
    printer: &Printer,
) -> anyhow::Result<()> {
    let pulled = server.client()?.pull_evidence(project, release).await?;
    let mut text = Text::new();
    for signer in &pulled.signers {
        let who = match (&signer.key, &signer.issuer, &signer.subject) {
            (Some(key), _, _) => format!("key {key}"),
            (None, Some(issuer), Some(subject)) => format!("{subject} ({issuer})"),
            _ => "unknown signer".to_owned(),
        };
        textln!(
            text,
            "✓ {}: signed by {who} ({})",
            signer.component,
            signer.digest
        );
    }
    for refused in &pulled.refused {
        textln!(
            text,
            "✗ {}: {} refused: {}",
            refused.component,
            refused.digest,
            refused.reason
        );
    }
    for unreachable in &pulled.unreachable {
        textln!(text, "? {}: {}", unreachable.component, unreachable.error);
    }
    textln!(
        text,
        "{} verified, {} refused, {} attestation(s) kept as evidence",
        pulled.signers.len(),
        pulled.refused.len(),
        pulled.evidence_added
    );
    printer.result(&text, &serde_json::to_value(&pulled)?);
    if pulled.unreachable.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "the registry of {} could not be read",
            pulled
                .unreachable
                .iter()
                .map(|u| u.component.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    /// Release id, id prefix or alias.
    #[arg(long)]
    pub release: String,
    #[arg(long = "env", value_name = "ENV", value_parser = parse_name)]
    pub environment: String,
    /// Why, for the ledger and the people waiting.
    #[arg(long)]
    pub comment: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `gantry approve` (`approve = true`) and `gantry reject`.
pub async fn approve(args: ApproveArgs, printer: &Printer, approve: bool) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let decision = client
        .approve(
            &args.project,
            &args.release,
            &CreateApproval {
                environment: args.environment,
                approve,
                comment: args.comment,
            },
        )
        .await?;
    let mut text = Text::new();
    textln!(
        text,
        "{} release {} for {}",
        if approve { "approved" } else { "rejected" },
        args.release,
        decision.environment
    );
    text.append(&describe(&decision));
    printer.result(&text, &serde_json::to_value(&decision)?);
    Ok(())
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    /// Release id, id prefix or alias.
    #[arg(long)]
    pub release: String,
    #[arg(long = "to", value_name = "ENV", value_parser = parse_name)]
    pub environment: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Evaluates the gates now and explains: exit 0 when the release may go, 1 otherwise.
pub async fn why(args: WhyArgs, printer: &Printer) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let decision = client
        .decision(&args.project, &args.release, &args.environment)
        .await?;
    printer.result(&describe(&decision), &serde_json::to_value(&decision)?);
    anyhow::ensure!(
        decision.verdict == "allow",
        "release {} may not enter {} yet ({})",
        args.release,
        args.environment,
        decision.verdict
    );
    Ok(())
}

/// A decision for people: the verdict, then one line per gate.
pub fn describe(decision: &Decision) -> Text {
    let mut text = Text::new();
    textln!(
        text,
        "{} → {}: {}{}",
        decision.release,
        decision.environment,
        decision.verdict,
        if decision.emergency {
            " (emergency)"
        } else {
            ""
        }
    );
    for gate in &decision.gates {
        let mark = match gate.state.as_str() {
            "pass" => "✓",
            "fail" => "✗",
            _ => "…",
        };
        textln!(text, "  {mark} {:<16} {}", gate.gate, gate.reason);
    }
    if decision.gates.is_empty() {
        textln!(text, "  no gates: any release may enter");
    }
    for warning in &decision.warnings {
        textln!(text, "  ! {warning}");
    }
    for (name, digest) in &decision.policies {
        textln!(text, "  policy {name} {digest}");
    }
    if !decision.evidence_use.is_empty() {
        textln!(text, "  evidence:");
    }
    for evidence in &decision.evidence_use {
        let short = evidence.digest.get(..19).unwrap_or(&evidence.digest);
        let about = evidence.component.as_deref().unwrap_or("release");
        let signed = evidence
            .signed_by
            .as_deref()
            .map_or_else(|| "unsigned".to_owned(), |s| format!("signed by {s}"));
        textln!(
            text,
            "    {} {} {about} {short} from {}, {signed}: {}",
            if evidence.counted { "✓" } else { "✗" },
            evidence.kind,
            evidence.supplied_by,
            if evidence.counted {
                format!("counts ({})", evidence.reason)
            } else {
                format!("does not count: {}", evidence.reason)
            }
        );
    }
    if let Some(at) = &decision.decided_at {
        let seen_as = decision.promotion.map_or_else(
            || "a promotion nobody has asked for yet".to_owned(),
            |id| format!("waiting promotion {id}"),
        );
        textln!(text, "  looked at {at}, for {seen_as}");
    }
    text
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[arg(long, value_parser = parse_name)]
    pub project: String,
    /// One environment; without it, the whole project.
    #[arg(long = "env", value_name = "ENV", value_parser = parse_name)]
    pub environment: Option<String>,
    /// Why (required to stop), for the people it stops and the ledger.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `gantry stop` (`stop = true`) and `gantry resume`.
pub async fn stop(args: StopArgs, printer: &Printer, stop: bool) -> anyhow::Result<()> {
    if stop && args.reason.is_none() {
        return Err(UsageError("--reason is required to stop the line".to_owned()).into());
    }
    let client = args.server.client()?;
    client
        .stop(
            &args.project,
            stop,
            &Stop {
                environment: args.environment.clone(),
                reason: args.reason,
            },
        )
        .await?;
    let scope = args.environment.map_or_else(
        || format!("project {}", args.project),
        |e| format!("environment {e}"),
    );
    let verb = if stop {
        "stopped: no promotion enters except by the emergency path or a rollback"
    } else {
        "resumed"
    };
    printer.result(
        &Text::line(format_args!("the line of {scope} is {verb}")),
        &serde_json::json!({"project": args.project, "scope": scope, "stopped": stop}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A failing gate whose reason quotes outside text (a report's test name, a label)
    /// cannot erase itself or print a passing line in its place.
    #[test]
    fn a_gate_reason_cannot_hide_a_failing_gate() {
        let decision: gantry_api::Decision = serde_json::from_value(serde_json::json!({
            "release": "4f2c1e9a0b",
            "environment": "prod",
            "verdict": "deny",
            "gates": [
                {
                    "gate": "tests",
                    "state": "fail",
                    "reason": "1 failed: login\u{1b}[1A\u{1b}[2K\r  ✓ tests            all 212 passed",
                },
                {"gate": "approvals", "state": "pass", "reason": "2 of 2\n  ✓ vulnerabilities  none"},
            ],
        }))
        .expect("a decision");
        let text = super::describe(&decision);
        let lines: Vec<&str> = text.as_str().lines().collect();
        assert_eq!(
            lines,
            [
                "4f2c1e9a0b → prod: deny",
                r"  ✗ tests            1 failed: login\x1b[1A\x1b[2K\r  ✓ tests            all 212 passed",
                r"  ✓ approvals        2 of 2\n  ✓ vulnerabilities  none",
            ]
        );
    }
}
