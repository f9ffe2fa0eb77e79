//! The facts a decision is made from, gathered by the engine. They are also the input
//! document Rego policies see, so their JSON form is part of the policy contract.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex};

use gantry_core::{Digest, glob};
use gantry_evidence::{Kind, Summary};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::gates::{IdentityRule, Supplier};
use crate::rego::Input;

/// Everything known about one release and one environment at one moment.
#[derive(Debug, Clone)]
pub struct Facts {
    pub project: String,
    pub environment: String,
    pub release: ReleaseFacts,
    /// Who asked for the promotion; `None` when automation proposes it.
    pub requested_by: Option<String>,
    /// The request asks for the emergency path.
    pub emergency: bool,
    /// The request puts back a release the environment held before (`gantry rollback`).
    pub rollback: bool,
    pub evidence: Vec<EvidenceFact>,
    /// Signatures that verified, with who signed.
    pub signers: Vec<SignerFact>,
    /// Each person's latest approval or rejection of this release for this environment.
    pub approvals: Vec<ApprovalFact>,
    /// Group name → members.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    pub upstreams: Vec<UpstreamFact>,
    /// Stops in force for the project or this environment.
    pub stops: Vec<StopFact>,
    /// Metric gate name → the query's value, or why it has none.
    pub metrics: BTreeMap<String, Result<f64, String>>,
    pub now: Timestamp,
}

#[derive(Debug, Clone)]
pub struct ReleaseFacts {
    pub id: Digest,
    pub alias: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub labels: BTreeMap<String, String>,
    /// Component → digest.
    pub components: BTreeMap<String, Digest>,
}

#[derive(Debug, Clone)]
pub struct EvidenceFact {
    /// The digest of the raw bytes as stored.
    pub digest: Digest,
    pub kind: Kind,
    /// The component it is about; `None` means the whole release.
    pub component: Option<String>,
    pub summary: Summary,
    pub added_at: Timestamp,
    /// Who handed it in: a principal (`alice`, `service:ci`), or `engine` for what the
    /// engine itself read from the registry.
    pub supplied_by: String,
    /// Whether the supplier may promote into the environment the facts are about.
    pub supplier_may_promote: bool,
    /// The signature over these exact bytes that verified against `trust:`, if any.
    pub signer: Option<Signer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerFact {
    pub component: String,
    pub signer: Signer,
    /// What was verified: the digest of the signature or attestation layer.
    pub digest: Digest,
}

/// Who a verified signature belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Signer {
    /// A configured public key, by name.
    Key(String),
    /// A certificate identity (Sigstore keyless).
    Identity { issuer: String, subject: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalFact {
    pub user: String,
    /// `false` is a rejection.
    pub approve: bool,
    pub comment: Option<String>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFact {
    pub environment: String,
    /// When the release first reached it; `None` if it has not.
    pub reached_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopFact {
    /// `None` stops the whole project.
    pub environment: Option<String>,
    pub reason: String,
    pub by: String,
    pub since: Timestamp,
}

impl EvidenceFact {
    /// Whether this evidence counts for a gate whose `from:` is `from` (empty: the
    /// default rule, see [`Supplier`]), in `groups`; `Err` says why not.
    ///
    /// A signature counts by default when it is by a key of `trust:`, or by a keyless
    /// identity the environment's own `signed_by` gate names (`identities`): the project
    /// verifies bundles against every environment's identities, and one environment's
    /// signers must not vouch for another's evidence.
    pub fn counts(
        &self,
        from: &[Supplier],
        groups: &BTreeMap<String, BTreeSet<String>>,
        identities: &[IdentityRule],
    ) -> Result<(), String> {
        let signed_by_key = match &self.signer {
            Some(Signer::Key(key)) => Some(key.as_str()),
            _ => None,
        };
        if self.kind.family() == "provenance" && self.signer.is_none() {
            return Err(
                "unsigned: provenance counts only with a signature that verifies against trust:"
                    .to_owned(),
            );
        }
        if from.is_empty() {
            let trusted_signature = match &self.signer {
                Some(Signer::Key(_)) => true,
                Some(Signer::Identity { issuer, subject }) => identities
                    .iter()
                    .any(|rule| &rule.issuer == issuer && glob(&rule.subject, subject)),
                None => false,
            };
            if self.supplier_may_promote || trusted_signature {
                return Ok(());
            }
            return Err(format!(
                "{} may not promote into {{environment}} and it is not signed by a key in trust:",
                self.supplied_by
            ));
        }
        let admitted = from.iter().any(|supplier| match supplier {
            Supplier::Principal(principal) => principal == &self.supplied_by,
            Supplier::Group(group) => groups
                .get(group)
                .is_some_and(|members| members.contains(&self.supplied_by)),
            Supplier::Key(key) => signed_by_key == Some(key.as_str()),
        });
        if admitted {
            Ok(())
        } else {
            Err(format!(
                "not from {} (supplied by {}{})",
                from.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or "),
                self.supplied_by,
                signed_by_key
                    .map(|k| format!(", signed by key {k}"))
                    .unwrap_or_default()
            ))
        }
    }
}

impl Facts {
    /// Why `evidence` does not count for the gate reading `family` (`Ok` when it does).
    pub(crate) fn evidence_counts(
        &self,
        evidence: &EvidenceFact,
        from: &[Supplier],
        identities: &[IdentityRule],
    ) -> Result<(), String> {
        evidence
            .counts(from, &self.groups, identities)
            .map_err(|reason| reason.replace("{environment}", &self.environment))
    }

    /// The latest evidence of a family for each component (component-specific evidence
    /// first, release-wide evidence otherwise), keeping one per kind. Only evidence that
    /// counts (`from`, see [`Supplier`]) is considered at all: what does not count can
    /// neither pass a gate nor replace a failing report from a supplier that counts.
    pub(crate) fn latest(
        &self,
        family: &str,
        component: &str,
        from: &[Supplier],
        identities: &[IdentityRule],
    ) -> Vec<&EvidenceFact> {
        let mut by_kind: BTreeMap<&Kind, &EvidenceFact> = BTreeMap::new();
        let mut candidates: Vec<&EvidenceFact> = self
            .evidence
            .iter()
            .filter(|e| e.kind.family() == family)
            .filter(|e| e.component.as_deref().is_none_or(|c| c == component))
            .filter(|e| self.evidence_counts(e, from, identities).is_ok())
            .collect();
        // Component-specific beats release-wide; newer beats older.
        candidates.sort_by_key(|e| (e.component.is_some(), e.added_at));
        for evidence in candidates {
            by_kind.insert(&evidence.kind, evidence);
        }
        by_kind.into_values().collect()
    }

    /// The input document of a Rego policy.
    pub fn to_input(&self) -> Value {
        let mut input = self.input_without_evidence();
        input["evidence"] = self.evidence.iter().map(evidence_input).collect();
        input
    }

    /// [`Facts::to_input`] in the evaluator's form, made once per decision. Evidence
    /// is content-addressed and never changes, so each piece's converted form is kept
    /// (a few thousand at most) and reused by the next decision that reads it: the
    /// reports with hundreds of findings are the bulk of the input.
    pub fn to_policy_input(&self) -> Result<Input, String> {
        let mut input = Input::from_json(&self.input_without_evidence())?;
        let mut evidence = Vec::with_capacity(self.evidence.len());
        for fact in &self.evidence {
            evidence.push(converted_evidence(fact)?);
        }
        input.0.as_object_mut().map_err(|e| e.to_string())?.insert(
            regorus::Value::from("evidence"),
            regorus::Value::from(evidence),
        );
        Ok(input)
    }

    fn input_without_evidence(&self) -> Value {
        let signers: Vec<Value> = self
            .signers
            .iter()
            .map(|s| match &s.signer {
                Signer::Key(name) => {
                    json!({"component": s.component, "key": name, "digest": s.digest.as_str()})
                }
                Signer::Identity { issuer, subject } => json!({
                    "component": s.component,
                    "issuer": issuer,
                    "subject": subject,
                    "digest": s.digest.as_str(),
                }),
            })
            .collect();
        let approvals: Vec<Value> = self
            .approvals
            .iter()
            .map(|a| json!({"user": a.user, "approve": a.approve, "comment": a.comment, "at": a.at.to_string()}))
            .collect();
        let upstreams: Vec<Value> = self
            .upstreams
            .iter()
            .map(|u| json!({"environment": u.environment, "reached_at": u.reached_at.map(|t| t.to_string())}))
            .collect();
        let stops: Vec<Value> = self
            .stops
            .iter()
            .map(|s| json!({"environment": s.environment, "reason": s.reason, "by": s.by, "since": s.since.to_string()}))
            .collect();
        let metrics: serde_json::Map<String, Value> = self
            .metrics
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Ok(number) => json!({"value": number}),
                    Err(error) => json!({"error": error}),
                };
                (name.clone(), value)
            })
            .collect();
        json!({
            "project": self.project,
            "environment": self.environment,
            "release": {
                "id": self.release.id.as_str(),
                "alias": self.release.alias,
                "created_by": self.release.created_by,
                "created_at": self.release.created_at.to_string(),
                "labels": self.release.labels,
                "components": self.release.components.iter().map(|(c, d)| (c.clone(), Value::from(d.as_str()))).collect::<serde_json::Map<_, _>>(),
            },
            "requested_by": self.requested_by,
            "emergency": self.emergency,
            "rollback": self.rollback,
            "evidence": [],
            "signers": signers,
            "approvals": approvals,
            "groups": self.groups,
            "upstreams": upstreams,
            "stops": stops,
            "metrics": metrics,
            "now": self.now.to_string(),
            "now_ns": self.now.as_nanosecond().to_string(),
        })
    }
}

/// A summary as policies see it: the stored form, plus counts a policy would otherwise
/// have to compute.
fn summary_input(summary: &Summary) -> Value {
    let mut value = serde_json::to_value(summary).unwrap_or(Value::Null);
    if let (Summary::Vulnerabilities(scan), Value::Object(object)) = (summary, &mut value) {
        let counts = |map: BTreeMap<gantry_evidence::Severity, u64>| {
            map.into_iter()
                .map(|(s, n)| (s.as_str().to_owned(), Value::from(n)))
                .collect::<serde_json::Map<_, _>>()
        };
        object.insert("by_severity".into(), counts(scan.by_severity()).into());
        object.insert(
            "fixable_by_severity".into(),
            counts(scan.fixable_by_severity()).into(),
        );
    }
    value
}

fn evidence_input(e: &EvidenceFact) -> Value {
    let signer = match &e.signer {
        None => Value::Null,
        Some(Signer::Key(name)) => json!({"key": name}),
        Some(Signer::Identity { issuer, subject }) => {
            json!({"issuer": issuer, "subject": subject})
        }
    };
    json!({
        "digest": e.digest.as_str(),
        "kind": e.kind.name(),
        "component": e.component,
        "summary": summary_input(&e.summary),
        "added_at": e.added_at.to_string(),
        "supplied_by": e.supplied_by,
        "signed_by": signer,
        // The default rule, keys only: its supplier may promote here, or a key of
        // trust: signed it.
        "trusted": e.supplier_may_promote || matches!(e.signer, Some(Signer::Key(_))),
    })
}

/// How many converted pieces of evidence are kept; past it the cache starts afresh.
const CONVERTED_EVIDENCE_LIMIT: usize = 4096;

/// Everything the converted form holds besides the summary, which the digest and kind
/// determine.
#[derive(PartialEq, Eq, Hash)]
struct EvidenceKey {
    digest: Digest,
    kind: String,
    component: Option<String>,
    added_at: Timestamp,
    supplied_by: String,
    supplier_may_promote: bool,
    signer: Option<Signer>,
}

static CONVERTED_EVIDENCE: LazyLock<Mutex<HashMap<EvidenceKey, regorus::Value>>> =
    LazyLock::new(Mutex::default);

/// One piece of evidence in the evaluator's form, converted once. The key is everything
/// the form holds besides the summary, which the digest and kind determine.
fn converted_evidence(fact: &EvidenceFact) -> Result<regorus::Value, String> {
    let key = EvidenceKey {
        digest: fact.digest.clone(),
        kind: fact.kind.name(),
        component: fact.component.clone(),
        added_at: fact.added_at,
        supplied_by: fact.supplied_by.clone(),
        supplier_may_promote: fact.supplier_may_promote,
        signer: fact.signer.clone(),
    };
    if let Some(value) = CONVERTED_EVIDENCE.lock().expect("lock").get(&key) {
        return Ok(value.clone());
    }
    let value = Input::from_json(&evidence_input(fact))?.0;
    let mut cache = CONVERTED_EVIDENCE.lock().expect("lock");
    if cache.len() >= CONVERTED_EVIDENCE_LIMIT {
        cache.clear();
    }
    cache.insert(key, value.clone());
    Ok(value)
}
