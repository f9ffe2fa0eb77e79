//! Parsed summaries: the small facts gates and policies read. They serialize to JSON
//! because they are stored beside the raw bytes and handed to Rego as input.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What a piece of evidence says, in a form gates can compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum Summary {
    Tests(TestSummary),
    Vulnerabilities(VulnerabilitySummary),
    Sbom(SbomSummary),
    Provenance(ProvenanceSummary),
    Generic(GenericSummary),
}

/// Test results. `flaky` counts tests that failed and then passed on a rerun
/// (JUnit `flakyFailure`/`flakyError`, or a rerun attribute); they are not in `failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSummary {
    pub total: u64,
    pub failed: u64,
    pub skipped: u64,
    pub flaky: u64,
}

/// How bad a finding is, in the common five-step scale; scanners' own words map here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Negligible,
        Severity::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Negligible => "negligible",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// A scanner's severity word, case-insensitive; anything unrecognised is `Unknown`.
    pub fn from_word(word: &str) -> Severity {
        match word.to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" | "info" | "informational" | "none" => Severity::Negligible,
            _ => Severity::Unknown,
        }
    }
}

/// One vulnerability (or scanner finding) in one package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// `CVE-2024-1234`, `GHSA-…`, or a SARIF rule id.
    pub id: String,
    pub severity: Severity,
    /// A fixed version is known.
    pub fixable: bool,
    /// The affected package (name, or name@version), empty when the format has none.
    pub package: String,
}

/// A vulnerability scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnerabilitySummary {
    /// The tool that produced it (`trivy`, `grype`, or SARIF's `tool.driver.name`).
    pub scanner: String,
    /// Each distinct (id, package) once, sorted.
    pub findings: Vec<Finding>,
}

impl VulnerabilitySummary {
    /// Findings per severity, every severity present (zero when none).
    pub fn by_severity(&self) -> BTreeMap<Severity, u64> {
        let mut counts: BTreeMap<Severity, u64> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
        for finding in &self.findings {
            *counts.entry(finding.severity).or_default() += 1;
        }
        counts
    }

    /// Fixable findings per severity, every severity present.
    pub fn fixable_by_severity(&self) -> BTreeMap<Severity, u64> {
        let mut counts: BTreeMap<Severity, u64> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
        for finding in self.findings.iter().filter(|f| f.fixable) {
            *counts.entry(finding.severity).or_default() += 1;
        }
        counts
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SbomFormat {
    CycloneDx,
    Spdx,
}

/// A software bill of materials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomSummary {
    pub format: SbomFormat,
    /// The format's spec version: `1.5`, `SPDX-2.3`.
    pub spec_version: String,
    /// Components (CycloneDX, nested ones included) or packages (SPDX).
    pub components: u64,
    /// Licence ids and expressions named anywhere, sorted, each once.
    pub licenses: BTreeSet<String>,
}

/// SLSA provenance v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceSummary {
    /// `runDetails.builder.id`.
    pub builder_id: String,
    /// `buildDefinition.buildType`.
    pub build_type: String,
    /// The source repository, from the resolved dependencies or the external
    /// parameters (a `git+https://…` URI or a GitHub workflow's repository).
    pub source_repository: Option<String>,
    /// The source commit (a `gitCommit` or `sha1` digest of that dependency).
    pub commit: Option<String>,
}

/// A JSON document of a type its producer declares; kept whole for policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenericSummary {
    pub declared_type: String,
    pub document: serde_json::Value,
}
