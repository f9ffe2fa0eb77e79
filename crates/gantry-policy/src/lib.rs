//! Gates: the rules an environment sets for a release before it may enter. Built-in
//! gates (tests, vulnerabilities, SBOM, signatures, provenance, soak, approvals, freeze
//! windows, stop-the-line, metrics) and Rego policies read the same facts and answer
//! pass, fail or pending with reasons; the decision joins them.
//!
//! Architecture invariant: no I/O and no clock. The engine gathers the facts (evidence
//! summaries, verified signers, approvals, pointer history, metric values, the time)
//! and hands them in; the same facts always give the same decision.

mod decision;
mod facts;
mod gates;
pub mod rego;
pub mod schedule;

pub use decision::{Decision, EvidenceUse, GateOutcome, approval_standing, evaluate};
pub use facts::{
    ApprovalFact, EvidenceFact, Facts, ReleaseFacts, Signer, SignerFact, StopFact, UpstreamFact,
};
pub use gates::{
    Allowance, ApprovalsGate, Approver, Comparison, EmergencyRule, Gates, IdentityRule, MetricGate,
    ProvenanceGate, SignedByGate, Supplier, TestsGate, VulnerabilitiesGate,
};
pub use rego::{Policy, PolicyError};
