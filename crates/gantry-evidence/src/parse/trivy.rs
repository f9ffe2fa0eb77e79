//! Trivy's JSON report (`trivy image --format json`, schema version 2).
//!
//! Subjects come from `Metadata.RepoDigests` (`repo@sha256:…`), the image's manifest
//! digests as registries know them. `Metadata.ImageID` is deliberately not read: it
//! is the digest of the image's config blob, which no release holds as its digest.

use serde::Deserialize;

use super::json::{self, null_as_default};
use super::{Malformed, Parsed, repository_digest, vulnerabilities};
use crate::summary::{Finding, Severity};

#[derive(Debug, Deserialize)]
struct Report {
    #[serde(rename = "SchemaVersion")]
    schema_version: u64,
    #[serde(rename = "Metadata", default)]
    metadata: Metadata,
    #[serde(rename = "Results", default, deserialize_with = "null_as_default")]
    results: Vec<TargetResult>,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(rename = "RepoDigests", default, deserialize_with = "null_as_default")]
    repo_digests: Vec<String>,
}

/// One scanned target: the OS packages, or one language's lock file.
#[derive(Debug, Deserialize)]
struct TargetResult {
    #[serde(
        rename = "Vulnerabilities",
        default,
        deserialize_with = "null_as_default"
    )]
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Debug, Deserialize)]
struct Vulnerability {
    #[serde(rename = "VulnerabilityID")]
    id: String,
    #[serde(rename = "PkgName")]
    package_name: String,
    #[serde(rename = "InstalledVersion", default)]
    installed_version: Option<String>,
    #[serde(rename = "FixedVersion", default)]
    fixed_version: Option<String>,
    #[serde(rename = "Severity", default)]
    severity: Option<String>,
}

pub(super) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let report: Report = json::read_object(text, "Trivy report")?;
    if report.schema_version != 2 {
        return Err(Malformed::at(
            "SchemaVersion",
            format!(
                "is {}, but Gantry reads Trivy reports of schema version 2 only",
                report.schema_version
            ),
        ));
    }
    let subjects = report
        .metadata
        .repo_digests
        .iter()
        .enumerate()
        .map(|(index, repo_digest)| {
            repository_digest(repo_digest, &format!("Metadata.RepoDigests[{index}]"))
        })
        .collect::<Result<_, _>>()?;
    let findings = report
        .results
        .into_iter()
        .flat_map(|result| result.vulnerabilities)
        .map(|vulnerability| {
            let version = vulnerability.installed_version.unwrap_or_default();
            Finding {
                id: vulnerability.id,
                severity: vulnerability
                    .severity
                    .as_deref()
                    .map_or(Severity::Unknown, Severity::from_word),
                fixable: vulnerability
                    .fixed_version
                    .is_some_and(|fixed| !fixed.is_empty()),
                package: if version.is_empty() {
                    vulnerability.package_name
                } else {
                    format!("{}@{version}", vulnerability.package_name)
                },
            }
        })
        .collect();
    Ok(Parsed {
        summary: vulnerabilities("trivy".to_owned(), findings),
        subjects,
    })
}
