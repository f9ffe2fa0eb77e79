//! The wire types of Gantry's HTTP API under `/api/v1`: what clients send and receive.
//!
//! Requests refuse unknown fields, so a typo is named in the error instead of ignored.
//! Responses only ever gain fields; readers ignore the ones they do not know.

pub mod client;
pub mod live;
pub mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every error: a stable code, a message for people, and the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `POST /api/v1/projects/{project}/releases`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    /// Component name → `TAG`, `@DIGEST`, or `HOST/REPO:TAG` / `HOST/REPO@DIGEST`, inside
    /// the component's repository (or one its `also_from` names); resolved once.
    pub components: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `POST /api/v1/projects/{project}/promotions` (send an `Idempotency-Key` header to make
/// retries safe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePromotion {
    /// Release id, id prefix or alias.
    pub release: String,
    pub environment: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// Take the emergency path past freeze windows and a stopped line; the environment
    /// says who may and how many more approvals it needs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emergency: bool,
}

/// `POST /api/v1/projects/{project}/environments/{environment}/hold` (and `/unhold`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/projects/{project}/environments/{environment}/rollback`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The release to put back; by default the one held before the current one.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/tokens`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// Whom the token acts for: `alice` (a user) or `service:ci` (a service account);
    /// without it, the user named like the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// How long the token works: `30d`, `12h`, `90m`; without it, until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// A token as `GET /api/v1/tokens` lists it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub name: String,
    /// Whom it acts for: `alice` or `service:ci`.
    pub principal: String,
    pub created_at: String,
    pub created_by: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub revoked_at: Option<String>,
    #[serde(default)]
    pub revoked_by: Option<String>,
}

/// A role over a scope, for a principal: `POST /api/v1/grants`, `POST /api/v1/grants/revoke`,
/// and each item of `GET /api/v1/grants`. No project: the whole server; a project and
/// no environment: the whole project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// `alice` (a user) or `service:ci` (a service account).
    pub principal: String,
    /// `viewer`, `promoter`, `approver` or `admin`.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Who gave it and when; set in answers, ignored in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<String>,
}

/// `GET /api/v1/whoami`: who the token acts for and what they may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub principal: String,
    pub grants: Vec<Grant>,
}

/// The answer to `POST /api/v1/tokens`: the token is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreated {
    pub name: String,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub component: String,
    pub source: String,
    pub digest: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: String,
    pub alias: String,
    pub project: String,
    pub artifacts: Vec<Artifact>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub created_at: String,
    pub created_by: String,
    /// Whether this request created it (false: the same content existed already).
    #[serde(default)]
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: i64,
    pub project: String,
    pub environment: String,
    pub release: String,
    pub release_alias: String,
    /// promote | rollback | automatic
    pub kind: String,
    /// waiting | queued | running | succeeded | failed | cancelled | superseded | rejected
    pub state: String,
    pub requested_by: String,
    pub requested_at: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub previous_release: Option<String>,
    /// Asked for the emergency path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emergency: bool,
    /// What a waiting promotion still needs, from its last decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<String>,
    /// The server replica that runs it, or ran it last (`gantry serve --replica`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
}

/// `POST /api/v1/projects/{project}/releases/{release}/approvals`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApproval {
    pub environment: String,
    /// `false` rejects.
    pub approve: bool,
    #[serde(default)]
    pub comment: Option<String>,
}

/// `POST /api/v1/projects/{project}/stop` and `/resume`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// One environment; the whole project when absent.
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Evidence as kept: `POST /api/v1/projects/{project}/releases/{release}/evidence?kind=K[&component=C]`
/// with the raw report as the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub id: i64,
    pub release: String,
    #[serde(default)]
    pub component: Option<String>,
    pub kind: String,
    /// The SHA-256 of the raw bytes.
    pub digest: String,
    pub size: u64,
    /// The parsed summary (tests, vulnerabilities, sbom, provenance or generic).
    pub summary: serde_json::Value,
    pub source: String,
    pub added_by: String,
    pub added_at: String,
    /// Whether this request added it (false: the same bytes were there already).
    #[serde(default)]
    pub created: bool,
}

/// What a look at the registry found beside a release's digests
/// (`POST …/releases/{release}/evidence/pull`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulled {
    /// Verified signatures and attestations, and who made them.
    pub signers: Vec<VerifiedSigner>,
    /// Attestations kept as evidence by this look.
    pub evidence_added: usize,
    /// Signatures and attestations that did not verify (recorded in the ledger).
    pub refused: Vec<RefusedSignature>,
    /// Components whose registry could not be read.
    pub unreachable: Vec<Unreachable>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedSigner {
    pub component: String,
    /// The configured key, for a key-based signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The certificate's OIDC issuer and subject, for a keyless one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The digest of the signature or attestation layer.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedSignature {
    pub component: String,
    pub digest: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    pub component: String,
    pub error: String,
}

/// `POST /api/v1/events/registry`, the generic form (registries that cannot send
/// Distribution notification envelopes): a manifest pushed under a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryPush {
    /// `host[:port]/path`.
    pub repository: String,
    pub tag: String,
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
}

/// What a batch of registry events did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAnswer {
    /// Releases made (`created: false`: the same content was released before).
    pub releases: Vec<PushedRelease>,
    /// Pushes a component watches that made no release, and why.
    pub skipped: Vec<PushSkipped>,
    /// Events that are no tagged manifest push (pulls, blob uploads, deletes) or that
    /// no component watches.
    pub ignored: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedRelease {
    pub project: String,
    pub component: String,
    pub alias: String,
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSkipped {
    pub project: String,
    pub component: String,
    pub reason: String,
}

/// One gate's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateOutcome {
    pub gate: String,
    /// pass | pending | fail
    pub state: String,
    pub reason: String,
}

/// A decision about a release entering an environment, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    #[serde(default)]
    pub id: Option<i64>,
    pub release: String,
    pub environment: String,
    /// allow | pending | deny
    pub verdict: String,
    pub gates: Vec<GateOutcome>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What is still needed, when pending.
    #[serde(default)]
    pub needs: String,
    /// Rego policies used: name → digest of the source.
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    /// Digests of the evidence the gates read.
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub emergency: bool,
    /// Every piece of evidence about the release: who supplied it, whether it counted
    /// here, and why (not).
    #[serde(default)]
    pub evidence_use: Vec<EvidenceUse>,
    /// When the gates were looked at.
    #[serde(default)]
    pub decided_at: Option<String>,
    /// The waiting promotion whose requester, emergency flag and kind the gates saw,
    /// when one waits; otherwise they saw a promotion nobody has asked for yet.
    #[serde(default)]
    pub promotion: Option<i64>,
}

/// What one piece of evidence meant to a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceUse {
    pub digest: String,
    pub kind: String,
    #[serde(default)]
    pub component: Option<String>,
    /// The principal that handed it in (`engine` for what was read from the registry).
    pub supplied_by: String,
    /// The key or identity whose signature over it verified against `trust:`, if any.
    #[serde(default)]
    pub signed_by: Option<String>,
    /// Whether a gate read it to decide.
    pub counted: bool,
    /// Why it counted, or why not.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldState {
    pub by: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub since: String,
}

/// One environment on the status board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentStatus {
    pub name: String,
    pub binding: String,
    pub strategy: String,
    #[serde(default)]
    pub upstreams: Vec<String>,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub release_alias: Option<String>,
    /// Component → digest of the release held.
    #[serde(default)]
    pub digests: BTreeMap<String, String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub moved_by: Option<String>,
    #[serde(default)]
    pub hold: Option<HoldState>,
    /// Promotions queued or running here, oldest first.
    #[serde(default)]
    pub pending: Vec<Promotion>,
}

/// `GET /api/v1/projects/{project}/status`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub project: String,
    pub environments: Vec<EnvironmentStatus>,
    /// What the server found wrong that its operators must look at: where the live state
    /// disagrees with the ledger (this project's places by name, the others counted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
