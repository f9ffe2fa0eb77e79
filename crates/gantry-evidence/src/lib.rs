//! Evidence: typed facts about a release's digests, parsed from the reports CI tools
//! write (JUnit XML, SARIF, Trivy, Grype, CycloneDX, SPDX, SLSA provenance, declared
//! generic JSON) into small summaries that gates and policies read, and the
//! verification of signatures (cosign, DSSE, Sigstore bundles) before any policy sees
//! them.
//!
//! Architecture invariant: no I/O. Callers hand in bytes and keys; this crate hands
//! back summaries or a refusal that names what is wrong. It never fetches anything.

mod kind;
mod parse;
pub mod signature;
mod summary;

pub use kind::{Kind, KindError};
pub use parse::{EvidenceError, MAX_EVIDENCE_BYTES, Parsed, check_subjects, parse};
pub use summary::{
    Finding, GenericSummary, ProvenanceSummary, SbomFormat, SbomSummary, Severity, Summary,
    TestSummary, VulnerabilitySummary,
};
