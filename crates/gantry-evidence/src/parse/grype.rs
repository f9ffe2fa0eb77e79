//! Grype's JSON report (`grype -o json`).
//!
//! Subjects come from `source.target` when Grype scanned an image: its
//! `manifestDigest` and its `repoDigests` (`repo@sha256:…`). A scan of a directory
//! or a file has a plain string as its target and names no subject; `imageID` (the
//! config blob's digest) is deliberately not read.

use serde::Deserialize;
use serde_json::Value;

use super::json::{self, null_as_default};
use super::{Malformed, Parsed, repository_digest, vulnerabilities};
use crate::summary::{Finding, Severity};

#[derive(Debug, Deserialize)]
struct Report {
    #[serde(deserialize_with = "null_as_default")]
    matches: Vec<Match>,
    #[serde(default)]
    source: Option<Source>,
}

#[derive(Debug, Deserialize)]
struct Match {
    vulnerability: Vulnerability,
    artifact: Artifact,
}

#[derive(Debug, Deserialize)]
struct Vulnerability {
    id: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    fix: Option<Fix>,
}

#[derive(Debug, Deserialize)]
struct Fix {
    #[serde(default)]
    state: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    versions: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Artifact {
    name: String,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Source {
    /// An object for an image; a path string for a directory or a file.
    #[serde(default)]
    target: Value,
}

pub(super) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let report: Report = json::read_object(text, "Grype report")?;
    let subjects = match report.source.as_ref().map(|source| &source.target) {
        Some(Value::Object(target)) => image_subjects(target)?,
        _ => Vec::new(),
    };
    let findings = report
        .matches
        .into_iter()
        .map(|found| {
            let vulnerability = found.vulnerability;
            let version = found.artifact.version.unwrap_or_default();
            Finding {
                id: vulnerability.id,
                severity: vulnerability
                    .severity
                    .as_deref()
                    .map_or(Severity::Unknown, Severity::from_word),
                fixable: vulnerability.fix.is_some_and(|fix| {
                    fix.state.as_deref() == Some("fixed") || !fix.versions.is_empty()
                }),
                package: if version.is_empty() {
                    found.artifact.name
                } else {
                    format!("{}@{version}", found.artifact.name)
                },
            }
        })
        .collect();
    Ok(Parsed {
        summary: vulnerabilities("grype".to_owned(), findings),
        subjects,
    })
}

fn image_subjects(
    target: &serde_json::Map<String, Value>,
) -> Result<Vec<gantry_core::Digest>, Malformed> {
    let mut subjects = Vec::new();
    match target.get("manifestDigest") {
        None | Some(Value::Null) => {}
        Some(Value::String(digest)) if digest.is_empty() => {}
        Some(Value::String(digest)) => subjects.push(
            digest
                .parse()
                .map_err(|error| Malformed::digest("source.target.manifestDigest", &error))?,
        ),
        Some(_) => {
            return Err(Malformed::at(
                "source.target.manifestDigest",
                "is not a string",
            ));
        }
    }
    match target.get("repoDigests") {
        None | Some(Value::Null) => {}
        Some(Value::Array(repo_digests)) => {
            for (index, repo_digest) in repo_digests.iter().enumerate() {
                let at = format!("source.target.repoDigests[{index}]");
                let Value::String(repo_digest) = repo_digest else {
                    return Err(Malformed::at(at, "is not a string"));
                };
                subjects.push(repository_digest(repo_digest, &at)?);
            }
        }
        Some(_) => {
            return Err(Malformed::at(
                "source.target.repoDigests",
                "is not an array",
            ));
        }
    }
    Ok(subjects)
}
