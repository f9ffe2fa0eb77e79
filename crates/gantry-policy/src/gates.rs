//! What an environment asks of a release: the built-in gates' settings, as the project
//! file states them.

use std::collections::BTreeMap;
use std::sync::Arc;

use gantry_evidence::Severity;
use jiff::{SignedDuration, Timestamp};

use crate::rego::Policy;
use crate::schedule::FreezeWindow;

/// Every gate of one environment. The default asks nothing: a release may enter.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    pub tests: Option<TestsGate>,
    pub vulnerabilities: Option<VulnerabilitiesGate>,
    /// Each component has an SBOM.
    pub sbom: bool,
    pub signed_by: Option<SignedByGate>,
    pub provenance: Option<ProvenanceGate>,
    /// Minimum time the release has spent in each upstream (or, for an entry
    /// environment, since it was created).
    pub soak: Option<SignedDuration>,
    pub approvals: Option<ApprovalsGate>,
    pub freeze: Vec<FreezeWindow>,
    /// Who may pass a freeze or a stopped line, and at what price.
    pub emergency: Option<EmergencyRule>,
    pub metrics: Vec<MetricGate>,
    /// Rego policies, project-wide ones first.
    pub policies: Vec<Arc<Policy>>,
    /// Whose evidence counts, per evidence gate (`tests`, `vulnerabilities`, `sbom`,
    /// `provenance`), as the gate's `from:` names them. A gate not named here takes the
    /// default: see [`Supplier`].
    pub evidence_from: BTreeMap<String, Vec<Supplier>>,
}

/// Who may supply the evidence an evidence gate reads, as its `from:` names them.
///
/// Without `from:`, evidence counts for an environment when whoever handed it in may
/// promote into that environment (a promoter or admin grant over the server, the
/// project or that environment), or when it carries a signature that verifies against
/// the project's `trust:`. Provenance counts only when signed, whoever handed it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supplier {
    /// A user (`alice`) or a service account (`service:scanner`), as it prints.
    Principal(String),
    /// Members of a project group (`group:NAME`).
    Group(String),
    /// Evidence signed by this key of `trust:` (`key:NAME`), whoever handed it in.
    Key(String),
}

impl std::fmt::Display for Supplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Supplier::Principal(principal) => f.write_str(principal),
            Supplier::Group(group) => write!(f, "group:{group}"),
            Supplier::Key(key) => write!(f, "key:{key}"),
        }
    }
}

impl Gates {
    /// Whether a built-in gate reads evidence of `family` (`tests`, `vulnerabilities`,
    /// `sbom`, `provenance`).
    pub fn reads_evidence(&self, family: &str) -> bool {
        match family {
            "tests" => self.tests.is_some(),
            "vulnerabilities" => self.vulnerabilities.is_some(),
            "sbom" => self.sbom,
            "provenance" => self.provenance.is_some(),
            _ => false,
        }
    }

    /// Whose evidence of `family` counts: the gate's `from:` (empty: the default rule).
    pub fn from(&self, family: &str) -> &[Supplier] {
        self.evidence_from.get(family).map_or(&[], Vec::as_slice)
    }

    /// The keyless identities this environment's `signed_by` gate names: the only
    /// identities whose signatures make evidence count here by default.
    pub fn identities(&self) -> &[IdentityRule] {
        self.signed_by
            .as_ref()
            .map_or(&[], |gate| gate.identities.as_slice())
    }

    /// Whether any gate is configured at all.
    pub fn is_empty(&self) -> bool {
        self.tests.is_none()
            && self.vulnerabilities.is_none()
            && !self.sbom
            && self.signed_by.is_none()
            && self.provenance.is_none()
            && self.soak.is_none()
            && self.approvals.is_none()
            && self.freeze.is_empty()
            && self.metrics.is_empty()
            && self.policies.is_empty()
    }
}

/// Test reports must show at most `max_failures` failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestsGate {
    pub max_failures: u64,
    /// Whether tests that failed and then passed on a rerun are acceptable.
    pub allow_flaky: bool,
}

/// Vulnerability scans must show at most so many findings per severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnerabilitiesGate {
    /// Severities not named are not limited.
    pub max: BTreeMap<Severity, u64>,
    /// Findings with no known fix do not count.
    pub ignore_unfixable: bool,
    pub allowlist: Vec<Allowance>,
}

/// A finding accepted until a date, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// `CVE-…`, `GHSA-…`, or a scanner's rule id.
    pub id: String,
    pub expires: Timestamp,
    pub reason: String,
}

/// Each component must carry a verified signature by one of these keys or identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedByGate {
    /// Names of configured public keys.
    pub keys: Vec<String>,
    pub identities: Vec<IdentityRule>,
}

/// A keyless (Sigstore) signer: the OIDC issuer exactly, the subject by pattern (`*`
/// matches any run of characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRule {
    pub issuer: String,
    pub subject: String,
}

/// Each component must have provenance from one of these builders and sources (an
/// empty list allows any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceGate {
    pub builder_ids: Vec<String>,
    pub source_repositories: Vec<String>,
}

/// People who must approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalsGate {
    pub count: u32,
    /// Who may approve; empty means anyone.
    pub from: Vec<Approver>,
    /// Approvals older than this no longer count.
    pub expire_after: Option<SignedDuration>,
}

impl ApprovalsGate {
    /// The approvals an emergency path asks for where no approvals gate is configured:
    /// none but the emergency's extra ones, from anyone who may approve there.
    pub fn emergency_only() -> ApprovalsGate {
        ApprovalsGate {
            count: 0,
            from: Vec::new(),
            expire_after: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approver {
    User(String),
    Group(String),
}

impl std::fmt::Display for Approver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Approver::User(user) => f.write_str(user),
            Approver::Group(group) => write!(f, "group {group}"),
        }
    }
}

/// Members of `group` may ask for an emergency promotion, which passes freeze windows
/// and a stopped line but needs `extra_approvals` more approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyRule {
    pub group: String,
    pub extra_approvals: u32,
}

/// A `PromQL` instant query whose value must meet a threshold at promotion time.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricGate {
    pub name: String,
    pub query: String,
    pub comparison: Comparison,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Below,
    AtMost,
    Above,
    AtLeast,
}

impl Comparison {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
        }
    }

    /// `<`, `<=`, `>` or `>=`.
    pub fn parse(text: &str) -> Option<Comparison> {
        match text {
            "<" => Some(Comparison::Below),
            "<=" => Some(Comparison::AtMost),
            ">" => Some(Comparison::Above),
            ">=" => Some(Comparison::AtLeast),
            _ => None,
        }
    }
}
